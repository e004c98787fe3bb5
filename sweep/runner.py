"""The Optuna runner: each process owns its asks and tells; loky processes (or Dask) train.

One trial = one configuration on the whole seed set. A grid study keeps every worker busy: a trial is
asked as soon as a worker is free, from a queue ordered costliest first (``evaluate.estimate_cost``),
so the workers finish together. A sampler study asks generations of a fixed size (``study.batch``),
trains them in parallel and tells them all before asking again: with one `sweep run` process the sampler's
sequence depends on the spec only, never on ``n_jobs``, the backend or timing. The storage is the
truth: asking starts by failing trials whose process died (same host: its PID is gone; any host: its
heartbeat is stale) and re-enqueueing every designed configuration that has no finished, running or
waiting trial (when asking: at the start, when the queue runs short, and when the last look is
older than a heartbeat interval).
So a killed sweep, run again, finishes exactly the designed set: nothing lost, nothing run twice.

Several workers (``sweep worker``, any number of hosts, one shared storage): the decisions that must
not race (failing dead trials, enqueueing missing configurations, counting a random/TPE budget, asking
a generation) are taken under a study-wide lock held in the database (``store.study_lock``), so each
designed configuration is enqueued exactly once and a budget ends exactly at ``n_trials``. A trial
popped for a configuration that already has a finished or running trial is failed before it runs
(``duplicate_of``), so even a foreign process bypassing the lock cannot produce a duplicate run. A
worker leaves only when the design is complete: while others' trials run it waits, and fails and
re-runs them if their heartbeats stop. With several workers, TPE's proposals depend on when each
worker asks (the history it sees); the set of runs for a grid does not.
"""
from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import os
import warnings
import shutil
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import optuna
from optuna.trial import TrialState

from . import design
from .evaluate import aggregate, estimate_cost, run_config, warm_up
from .spec import SpecError, StudySpec
from .store import (default_storage, disk_full_error, export, leave_wal, mask_secrets, mask_url, named_in_errors,
                    open_storage, study_lock)

log = logging.getLogger("sweep")
# We record heartbeats ourselves (ask/tell), which Optuna warns is meant for Study.optimize.
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
HOST = os.environ.get("SWEEP_HOST") or socket.gethostname()
BACKENDS = ("loky", "dask")


def _host_id() -> str:
    """Who can check whose PIDs: host name, kernel boot id and PID namespace. Two processes with the
    same id see the same PIDs; a trial owned by another id is judged by its heartbeat only (containers
    sharing a host name, or a reused host name, never get a live trial failed by a PID check)."""
    parts = [HOST]
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    with contextlib.suppress(OSError):
        parts.append(str(os.stat("/proc/self/ns/pid").st_ino))
    return "/".join(parts)


HOST_ID = _host_id()


#: Set by the command line's SIGINT/SIGTERM handler: the run stops at the next check (after a job
#: returns, before anything is told), failing its trials in flight.
STOP = threading.Event()


def _check_stop() -> None:
    if STOP.is_set():
        raise KeyboardInterrupt


class SpecChangedError(SpecError):
    """The results folder / storage holds a study made from a different spec."""


@dataclass
class RunSummary:
    out_dir: Path
    storage: str
    n_trials_run: int
    n_runs: int
    wall_s: float
    engine_s: float
    paths: dict[str, Path]
    storage_s: float = 0.0          # time this process spent in storage calls (lock, recover, ask, tell)
    export_s: float = 0.0           # the final export (reads every trial back, writes the CSVs)
    discarded: int = 0              # trials trained here but failed meanwhile by another worker (stale)
    backend: str = "loky"
    extra: dict[str, Any] = field(default_factory=dict)


def _retry(fn: Callable, *args, tries: int = 6, **kwargs):
    """Call a storage operation, retrying transient failures with exponential backoff."""
    for k in range(tries):
        try:
            return fn(*args, **kwargs)
        except optuna.exceptions.StorageInternalError as exc:
            if k == tries - 1 or disk_full_error(exc) is not None:     # a full disk stays full
                raise
            time.sleep(0.2 * 2 ** k)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _rdb(study: optuna.Study):
    """The RDBStorage under Optuna's cache wrapper (for the lock and the heartbeats)."""
    return getattr(study._storage, "_backend", study._storage)


def owner(t: optuna.trial.FrozenTrial) -> dict[str, Any] | None:
    """Who asked a trial: ``{"host", "id", "pid"}`` (older trials: separate host/pid attributes)."""
    o = t.user_attrs.get("owner")
    if o is None and "host" in t.user_attrs:
        o = {"host": t.user_attrs["host"], "id": None, "pid": t.user_attrs.get("pid")}
    return o


def _owned_here(o: dict[str, Any]) -> bool:
    return o["id"] == HOST_ID if o.get("id") is not None else o.get("host") == HOST


def _fail(study: optuna.Study, number: int, **attrs: Any) -> bool:
    """Fail a trial (skipped if it finished meanwhile); True when this call failed it."""
    try:
        trial_id = study._storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
        for key, value in attrs.items():
            _retry(study._storage.set_trial_user_attr, trial_id, key, value)
        _retry(study._storage.set_trial_state_values, trial_id, state=TrialState.FAIL)
        return True
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
        return False


def recover(study: optuna.Study, spec: StudySpec, limit: int | None = None) -> list[int]:
    """Fail dead trials, (re-)enqueue configurations that need running, costliest first (until
    ``limit`` trials wait in the queue; None: all of them); return the failed trials' numbers.

    Call under ``study_lock``: every sweep process asks (and labels its trials with host, PID and
    a first heartbeat) under the same lock, so a RUNNING trial without an owner seen here belongs to
    a process that died in the middle of asking."""
    failed = []
    for t in _retry(study.get_trials, deepcopy=False, states=(TrialState.RUNNING,)):
        o = owner(t)
        if o is None:
            if _fail(study, t.number, failed_by="no owner: its process died while asking"):
                failed.append(t.number)
        elif _owned_here(o) and o.get("pid") not in (None, os.getpid()) and not _pid_alive(int(o["pid"])):
            if _fail(study, t.number, failed_by=f"{HOST}: process {o['pid']} is gone"):
                failed.append(t.number)
    _retry(optuna.storages.fail_stale_trials, study)        # any host: heartbeat older than the grace period
    trials = _retry(study.get_trials, deepcopy=False)
    covered = {t.user_attrs.get("config_id") for t in trials
               if t.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)}
    wanted: dict[str, dict[str, Any]] = {}
    if spec.study.sampler == "grid":
        wanted = dict(design.grid(spec))
    else:
        for t in trials:
            if t.state == TrialState.FAIL and "config_id" in t.user_attrs and "duplicate_of" not in t.user_attrs:
                params = t.params or t.system_attrs.get("fixed_params")
                if params:
                    wanted.setdefault(t.user_attrs["config_id"], params)
    missing = [(cid, params) for cid, params in wanted.items() if cid not in covered]
    if len(missing) > 1:    # costliest first: the workers finish together (longest processing time first)
        n_seeds = len(spec.seeds.tuples())
        cost = {cid: estimate_cost(design.apply(spec, params), n_seeds) for cid, params in missing}
        missing.sort(key=lambda item: -cost[item[0]])       # stable: grid order among equal costs
    if limit is not None:       # top the queue up to ``limit`` waiting designed trials
        queued = sum(t.state == TrialState.WAITING and "config_id" in t.user_attrs for t in trials)
        missing = missing[:max(0, limit - queued)]
    for cid, params in missing:
        _retry(study.enqueue_trial, params, user_attrs={"config_id": cid})
    return failed


def _ask_generation(study: optuna.Study, spec: StudySpec, in_flight: list | None = None,
                    limit: int | None = None) -> list[tuple[optuna.trial.Trial, dict]]:
    """Ask up to ``limit`` (default ``spec.study.batch``) trials: enqueued (waiting) ones first, then
    fresh proposals. Call under ``study_lock`` (the counts below are then exact). Every trial asked
    is appended to ``in_flight`` at once, so an interrupt in the middle of asking still fails it."""
    in_flight = [] if in_flight is None else in_flight
    trials = _retry(study.get_trials, deepcopy=False)
    waiting = sum(t.state == TrialState.WAITING for t in trials)
    started = {t.user_attrs.get("config_id") for t in trials} - {None}
    taken = {t.user_attrs.get("config_id"): t.number for t in trials
             if t.state in (TrialState.COMPLETE, TrialState.RUNNING)}
    fresh = 0 if spec.study.sampler == "grid" else max(0, design.n_configs(spec) - len(started))
    storage = _rdb(study)
    asked = []
    limit = spec.study.batch if limit is None else limit
    while len(asked) < limit:       # ends: every pass takes one waiting trial or one fresh proposal
        from_queue = waiting > 0
        if waiting > 0:
            waiting -= 1
        elif fresh > 0:
            fresh -= 1
            # Re-seeded from the number of trials so far: the proposals depend on the history only.
            study.sampler = design.make_sampler(spec, spec.study.sampler_seed * 1_000_003 + len(trials) + len(asked))
        else:
            break
        trial = _retry(study.ask)
        in_flight.append(trial)
        # Heartbeat and owner first: from here on a dead owner is detectable (stale beat / gone PID).
        if hasattr(storage, "record_heartbeat"):
            _retry(storage.record_heartbeat, trial._trial_id)
        trial.set_user_attr("owner", {"host": HOST, "id": HOST_ID, "pid": os.getpid()})
        cid = trial.user_attrs.get("config_id")
        if from_queue and cid is None:
            # Not one of ours: a trial enqueued by hand or by another tool (or taken by a process
            # outside the lock, so Optuna made a fresh one). Failed unrun; the next one is asked.
            _fail(study, trial.number, discarded="not a designed configuration")
            in_flight.remove(trial)
            continue
        params = design.suggest(trial, spec)
        if cid is None:
            cid = f"t{trial.number:04d}"
            trial.set_user_attr("config_id", cid)
        if cid in taken:              # never run a configuration twice: fail the duplicate unrun
            _fail(study, trial.number, duplicate_of=taken[cid])
            in_flight.remove(trial)
            log.warning("trial %d duplicates trial %d (%s): failed without running", trial.number, taken[cid], cid)
            continue
        taken[cid] = trial.number
        asked.append((trial, params))
    return asked


class _Heartbeat:
    """Records a heartbeat for the trials in flight every few seconds, from a background thread."""

    def __init__(self, storage, interval: float = 5.0):
        self.storage, self.interval = storage, interval
        self.trial_ids: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name="sweep-heartbeat")

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            for tid in list(self.trial_ids):
                try:
                    self.storage.record_heartbeat(tid)
                except Exception:   # a missed beat only makes the trial look stale later
                    pass

    def __enter__(self):
        if hasattr(self.storage, "record_heartbeat"):
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()


class _InProcess(concurrent.futures.Executor):
    """One job at a time in this process (``n_jobs=1`` on loky): no worker start-up at all."""

    def submit(self, fn, /, *args, **kwargs):
        future: concurrent.futures.Future = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:    # KeyboardInterrupt and SystemExit propagate at once
            future.set_exception(exc)
        return future


@contextlib.contextmanager
def executor(backend: str, n_jobs: int, scheduler: str | None = None):
    """Where training jobs run: loky processes on this host (this process itself for one job), or a
    Dask cluster (``scheduler`` = ``tcp://HOST:PORT``; none: a ``LocalCluster`` of ``n_jobs``
    one-thread workers). Yields ``(executor, slots, description)``: a ``concurrent.futures``
    executor and a function giving how many jobs to keep submitted now (the jobs it runs at once,
    plus one queued ahead when it runs them elsewhere; Dask's count follows workers that join or
    leave). Results do not depend on the backend: every job
    builds its own random streams from integer seeds and runs with one BLAS thread."""
    if backend == "loky":
        if n_jobs == 1:
            yield _InProcess(), lambda: 1, "in this process"
            return
        from joblib.externals.loky import get_reusable_executor
        pool = get_reusable_executor(max_workers=n_jobs, timeout=60)
        try:    # one job queued ahead: a worker that finishes starts its next job without waiting for our tell
            yield pool, lambda: n_jobs + 1, f"loky, {n_jobs} processes"
        except BaseException:
            # Interrupted or failed: stop the jobs still running (their trials are failed by the caller).
            pool.shutdown(wait=False, kill_workers=True)
            raise
        return
    if backend != "dask":
        raise SpecError(f"--backend {backend!r} is not allowed; allowed: {', '.join(BACKENDS)}")
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise SpecError("--backend dask needs dask.distributed: pip install 'sweep[cluster]'") from None
    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout="30s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise SpecError(f"cannot reach the Dask scheduler at {mask_secrets(scheduler)}: "
                            f"{mask_secrets(str(exc))}") from None
        where = f"dask, scheduler {mask_secrets(scheduler)}"
    else:
        cluster = LocalCluster(n_workers=n_jobs, threads_per_worker=1, processes=True, dashboard_address=":0",
                               silence_logs=logging.ERROR)
        client = Client(cluster)
        where = f"dask, local cluster of {n_jobs} workers"
    try:
        client.wait_for_workers(1, timeout=120)
        def slots() -> int:
            try:
                return max(1, sum(client.nthreads().values())) + 1
            except Exception:       # the scheduler is briefly unreachable: keep going with one job
                return 1
        pool = client.get_executor(pure=False)
        try:
            yield pool, slots, f"{where} ({slots() - 1} threads at the start)"
        finally:
            with contextlib.suppress(Exception):
                pool.shutdown(wait=False)       # cancels the jobs still queued or running
    finally:
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()


def prepare_out_dir(spec: StudySpec, out: str | Path | None, storage: str | None, fresh: bool) -> Path:
    """Results folder (``results/<name>`` by default); ``fresh`` moves an existing one aside."""
    out_dir = Path(out) if out else Path("results") / spec.study.name
    if fresh and out_dir.exists():
        if storage:
            raise SpecError("--fresh with --storage: the old study lives in that storage; use another study name")
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        aside = out_dir.with_name(f"{out_dir.name}.old-{stamp}")
        shutil.move(str(out_dir), str(aside))
        print(f"moved the previous results aside to {aside}", file=sys.stderr)
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def open_study(spec: StudySpec, url: str, heartbeat_interval: int = 5, grace_period: int = 20) -> optuna.Study:
    """Create or load the study; refuse a study made from another spec. Safe when many workers start
    at once: creating the study and recording its spec happen under the study lock."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period, wal=True)
    with study_lock(storage, spec.study.name):
        study = _retry(optuna.create_study, storage=storage, study_name=spec.study.name,
                       direction=spec.study.direction, load_if_exists=True,
                       sampler=design.make_sampler(spec, spec.study.sampler_seed))
        stored = study.user_attrs.get("spec_hash")
        if stored is None:
            study.set_user_attr("spec_hash", spec.hash())
            study.set_user_attr("spec_toml", spec.source)
    if stored is not None and stored != spec.hash():
        raise SpecChangedError(
            f"study {spec.study.name!r} in {mask_url(url)} was made from a different spec "
            f"(hash {stored}, this spec {spec.hash()}); results are never mixed. Run with --fresh to "
            f"move the old results aside, or give the study another name / --out.")
    return study


def write_run_info(out_dir: Path, spec: StudySpec, url: str) -> None:
    """spec.toml and a first meta.json, so ``sweep export DIR`` works even after a crash."""
    import json
    with named_in_errors(out_dir / "spec.toml"):
        (out_dir / "spec.toml").write_text(spec.source)
    meta = out_dir / "meta.json"
    if not meta.exists():
        with named_in_errors(meta):
            meta.write_text(json.dumps({"study": spec.study.name, "storage": mask_url(url),
                                        "spec_hash": spec.hash()}, indent=2) + "\n")


def run_study(spec: StudySpec, *, out: str | Path | None = None, storage: str | None = None,
              n_jobs: int | None = None, fresh: bool = False, progress: bool = True,
              command: str = "", backend: str = "loky", scheduler: str | None = None,
              heartbeat_interval: int = 5, grace_period: int = 20, export_results: bool = True,
              role: str = "run") -> RunSummary:
    """Run (or resume, or join) a study until every designed configuration has a finished trial, then
    export. Any number of processes may run this at once on one storage (``role="worker"``)."""
    start = time.time()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if grace_period <= heartbeat_interval:
        raise SpecError(f"--grace-period {grace_period} must be longer than --heartbeat-interval {heartbeat_interval}")
    n_jobs = n_jobs or os.cpu_count() or 1
    if backend != "loky":     # a wrong storage or spec is reported before a Dask cluster is started
        out_dir = prepare_out_dir(spec, out, storage, fresh) if export_results else Path(out or Path("results") / spec.study.name)
        checked = open_study(spec, storage or default_storage(out_dir), heartbeat_interval, grace_period)
        _rdb(checked).engine.dispose()      # no idle connection left (SQLite leaves WAL mode at the end)
        fresh = False
    with executor(backend, n_jobs, scheduler) as (pool, slots, where):
        if backend == "loky" and n_jobs > 1:
            # fresh worker processes import, load the data and the compiled loop while we open the study
            for _ in range(n_jobs):
                pool.submit(warm_up, spec)
        def release() -> None:      # the work is done: let the worker processes exit while we export
            if backend == "loky" and n_jobs > 1:
                pool.shutdown(wait=False, kill_workers=True)
        return _run(spec, pool, slots, where, out=out, storage=storage, n_jobs=n_jobs, fresh=fresh,
                    progress=progress, command=command, backend=backend, scheduler=scheduler,
                    heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                    export_results=export_results, role=role, start=start, started_at=started_at,
                    release=release)


def _run(spec: StudySpec, pool: concurrent.futures.Executor, slots: Callable[[], int], where: str, *, out,
         storage, n_jobs,
         fresh, progress, command, backend, scheduler, heartbeat_interval, grace_period, export_results, role,
         start, started_at, release: Callable[[], None]) -> RunSummary:
    """``run_study`` once its executor exists (``release`` is called when no job is left to run)."""
    out_dir = prepare_out_dir(spec, out, storage, fresh) if export_results else Path(out or Path("results") / spec.study.name)
    url = storage or default_storage(out_dir)
    study = open_study(spec, url, heartbeat_interval, grace_period)
    if export_results:
        write_run_info(out_dir, spec, url)
    seeds = spec.seeds.tuples()
    total_runs = design.n_configs(spec) * len(seeds)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=total_runs, unit="run", desc=spec.study.name, file=sys.stderr)
    n_trials_run, engine_s, storage_s, discarded = 0, 0.0, 0.0, 0
    poll = min(2.0, max(0.5, heartbeat_interval / 2))      # while waiting for other processes' trials
    rdb = _rdb(study)
    in_flight: list[optuna.trial.Trial] = []
    waiting_since = None
    short, recovered_at = True, 0.0
    stream = spec.study.sampler == "grid"    # no sampler to feed: keep every worker busy, no generations
    pending: dict[concurrent.futures.Future, tuple[optuna.trial.Trial, dict]] = {}
    with _Heartbeat(rdb, heartbeat_interval) as hb:
        log.info("%s %s: %s, storage %s, host %s, pid %d", role, spec.study.name, where, mask_url(url), HOST,
                 os.getpid())
        try:
            while True:
                _check_stop()
                # Grid: ask one trial per free slot as soon as one frees up. Samplers: a generation of
                # ``batch`` trials, asked only when the previous one is told (the history each ask
                # sees is then fixed by the spec, whatever the number of workers or their speed).
                free = slots() - len(pending) if stream else 0
                # (a dry queue is looked at again after ``poll`` seconds, not at every wake-up)
                if not pending or (free > 0 and (not short or time.time() - recovered_at >= poll)):
                    t0 = time.perf_counter()
                    want = max(1, free) if stream else spec.study.batch
                    queue = 2 * (len(pending) + want) if stream else None
                    with study_lock(rdb, spec.study.name):
                        # Dead trials and missing configurations: looked for at the start, when the
                        # queue ran short, and when the last look is older than a heartbeat
                        # interval. The queue holds a few trials at a time (a commit each).
                        fresh_look = short or time.time() - recovered_at > heartbeat_interval
                        if fresh_look:
                            recover(study, spec, limit=queue)
                            recovered_at = time.time()
                        asked = _ask_generation(study, spec, in_flight, limit=want)
                        if len(asked) < want and not fresh_look:     # the queue ran short: refill it
                            recover(study, spec, limit=queue)
                            recovered_at = time.time()
                            asked += _ask_generation(study, spec, in_flight, limit=want - len(asked))
                        short = len(asked) < want
                        hb.trial_ids = [t._trial_id for t in in_flight]
                        others = [] if asked or pending else _retry(study.get_trials, deepcopy=False,
                                                                    states=(TrialState.RUNNING,))
                    if bar is not None and not pending:
                        done = sum(t.state == TrialState.COMPLETE for t in _retry(study.get_trials, deepcopy=False))
                        bar.n = done * len(seeds)
                        bar.refresh()
                    storage_s += time.perf_counter() - t0
                    if not stream and len(asked) > 1:   # a generation: costliest first (a grid's queue is already)
                        cost = [estimate_cost(design.apply(spec, p), len(seeds)) for _, p in asked]
                        asked = [asked[i] for i in sorted(range(len(asked)), key=lambda i: -cost[i])]
                    for trial, params in asked:
                        pending[pool.submit(run_config, design.apply(spec, params), seeds)] = (trial, params)
                if not pending:
                    if not others:
                        break
                    # The design is not complete while other processes' trials run: wait for them,
                    # and take over (after the grace period) any whose heartbeat stops.
                    if waiting_since is None:
                        waiting_since = time.time()
                        log.info("waiting for %d trial(s) running in other processes", len(others))
                    time.sleep(poll)
                    continue
                waiting_since = None
                # A timeout, so a stop request (see STOP) and workers joining a Dask cluster are
                # noticed within a second even while every job runs for minutes.
                finished, _ = concurrent.futures.wait(pending, timeout=1.0,
                                                      return_when=concurrent.futures.FIRST_COMPLETED)
                _check_stop()
                t0 = time.perf_counter()
                for future in sorted(finished, key=lambda f: pending[f][0].number):
                    trial, _ = pending.pop(future)
                    result = future.result()        # a job's exception ends the run (trials failed below)
                    values = [r[spec.study.objective] for r in result["runs"]]
                    finite = [v for v in values if np.isfinite(v)]
                    engine_s += sum(r["duration_s"] for r in result["runs"])
                    try:
                        trial.set_user_attr("result", result)
                        trial.set_user_attr("objective_mean", float(np.mean(finite)) if finite else None)
                        trial.set_user_attr("objective_sd", float(np.std(finite, ddof=1)) if len(finite) > 1 else None)
                        told = _retry(study.tell, trial, aggregate(values, spec.study.aggregate, spec.study.direction),
                                      skip_if_finished=True)
                        ok = told.state == TrialState.COMPLETE
                    except optuna.exceptions.UpdateFinishedTrialError:
                        ok = False
                    in_flight.remove(trial)
                    hb.trial_ids = [t._trial_id for t in in_flight]
                    if not ok:
                        # Another worker failed it (our heartbeat looked stale) and re-enqueued its
                        # configuration: that re-run is the one kept, this result is dropped.
                        discarded += 1
                        log.warning("trial %d was failed by another worker meanwhile (stale heartbeat?); "
                                    "its configuration is run again there, this result is dropped", trial.number)
                        continue
                    n_trials_run += 1
                    if bar is not None:
                        bar.update(len(seeds))
                storage_s += time.perf_counter() - t0
        except BaseException:
            # Ctrl-C, SIGTERM or a failing job: fail every trial in flight at once, so a resume (or
            # another worker) re-runs them without waiting for their heartbeats to go stale.
            hb.trial_ids = []
            for future in pending:
                future.cancel()
            for t in in_flight:
                try:
                    study.tell(t, state=TrialState.FAIL, skip_if_finished=True)
                except Exception:
                    pass
            raise
        finally:
            if bar is not None:
                bar.close()
    release()
    meta = {"command": command, "storage": url, "n_jobs": n_jobs, "backend": backend, "role": role,
            "scheduler": scheduler, "started_at": started_at,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    paths: dict[str, Path] = {}
    n_runs, export_s = 0, 0.0
    if export_results:
        t0 = time.perf_counter()
        paths = export(study, spec, out_dir, meta)
        export_s = time.perf_counter() - t0
        n_runs = sum(1 for _ in open(paths["runs"])) - 1
    else:
        n_runs = len(seeds) * sum(t.state == TrialState.COMPLETE for t in study.get_trials(deepcopy=False))
    leave_wal(rdb)
    return RunSummary(out_dir, mask_url(url), n_trials_run, n_runs, time.time() - start, engine_s, paths,
                      storage_s=storage_s, export_s=export_s, discarded=discarded, backend=backend)
