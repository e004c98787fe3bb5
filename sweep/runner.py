"""The Optuna runner: the parent process owns the study (ask/tell), joblib processes train.

One trial = one configuration on the whole seed set. Trials are asked in generations of a fixed size
(``study.batch``), trained in parallel, then told, so the sampler's sequence depends on the spec only,
never on ``n_jobs`` or timing. The storage is the truth: every generation starts by failing trials
whose process died (same host: its PID is gone; any host: its heartbeat is stale) and re-enqueueing
every designed configuration that has no finished, running or waiting trial. So a killed sweep, run
again, finishes exactly the designed set: nothing lost, nothing run twice.
"""
from __future__ import annotations

import logging
import os
import warnings
import shutil
import socket
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import optuna
from joblib import Parallel, delayed
from optuna.trial import TrialState

from . import design
from .evaluate import aggregate, run_config
from .spec import SpecError, StudySpec
from .store import default_storage, export, mask_url, open_storage

log = logging.getLogger("sweep")
# We record heartbeats ourselves (ask/tell), which Optuna warns is meant for Study.optimize.
warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
HOST = socket.gethostname()


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


def _retry(fn: Callable, *args, tries: int = 6, **kwargs):
    """Call a storage operation, retrying transient failures with exponential backoff."""
    for k in range(tries):
        try:
            return fn(*args, **kwargs)
        except optuna.exceptions.StorageInternalError:
            if k == tries - 1:
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


def recover(study: optuna.Study, spec: StudySpec) -> list[int]:
    """Fail dead trials, re-enqueue configurations that need (re)running; return failed numbers."""
    failed = []
    for t in _retry(study.get_trials, deepcopy=False, states=(TrialState.RUNNING,)):
        owner = t.user_attrs.get("host"), t.user_attrs.get("pid")
        if owner[0] == HOST and owner[1] not in (None, os.getpid()) and not _pid_alive(int(owner[1])):
            try:
                _retry(study.tell, t.number, state=TrialState.FAIL, skip_if_finished=True)
                failed.append(t.number)
            except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
                pass
    _retry(optuna.storages.fail_stale_trials, study)
    trials = _retry(study.get_trials, deepcopy=False)
    covered = {t.user_attrs.get("config_id") for t in trials
               if t.state in (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)}
    wanted: dict[str, dict[str, Any]] = {}
    if spec.study.sampler == "grid":
        wanted = dict(design.grid(spec))
    else:
        for t in trials:
            if t.state == TrialState.FAIL and "config_id" in t.user_attrs:
                wanted.setdefault(t.user_attrs["config_id"], t.params)
    for cid, params in wanted.items():
        if cid not in covered:
            _retry(study.enqueue_trial, params, user_attrs={"config_id": cid})
    return failed


def _ask_generation(study: optuna.Study, spec: StudySpec) -> list[tuple[optuna.trial.Trial, dict]]:
    """Ask up to ``spec.study.batch`` trials: enqueued (waiting) ones first, then fresh proposals."""
    trials = _retry(study.get_trials, deepcopy=False)
    waiting = sum(t.state == TrialState.WAITING for t in trials)
    started = {t.user_attrs.get("config_id") for t in trials} - {None}
    fresh = 0 if spec.study.sampler == "grid" else max(0, design.n_configs(spec) - len(started))
    asked = []
    for _ in range(spec.study.batch):
        if waiting > 0:
            waiting -= 1
        elif fresh > 0:
            fresh -= 1
            # Re-seeded from the number of trials so far: the proposals depend on the history only.
            study.sampler = design.make_sampler(spec, spec.study.sampler_seed * 1_000_003 + len(trials) + len(asked))
        else:
            break
        trial = _retry(study.ask)
        params = design.suggest(trial, spec)
        if "config_id" not in trial.user_attrs:
            trial.set_user_attr("config_id", f"t{trial.number:04d}")
        trial.set_user_attr("host", HOST)
        trial.set_user_attr("pid", os.getpid())
        if hasattr(study._storage, "record_heartbeat"):
            _retry(study._storage.record_heartbeat, trial._trial_id)
        asked.append((trial, params))
    return asked


class _Heartbeat:
    """Records a heartbeat for the trials in flight every few seconds, from a background thread."""

    def __init__(self, storage, interval: float = 5.0):
        self.storage, self.interval = storage, interval
        self.trial_ids: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

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


def open_study(spec: StudySpec, url: str) -> optuna.Study:
    """Create or load the study; refuse a study made from another spec."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url)
    study = _retry(optuna.create_study, storage=storage, study_name=spec.study.name,
                   direction=spec.study.direction, load_if_exists=True,
                   sampler=design.make_sampler(spec, spec.study.sampler_seed))
    stored = study.user_attrs.get("spec_hash")
    if stored is None:
        study.set_user_attr("spec_hash", spec.hash())
        study.set_user_attr("spec_toml", spec.source)
    elif stored != spec.hash():
        raise SpecChangedError(
            f"study {spec.study.name!r} in {mask_url(url)} was made from a different spec "
            f"(hash {stored}, this spec {spec.hash()}); results are never mixed. Run with --fresh to "
            f"move the old results aside, or give the study another name / --out.")
    return study


def write_run_info(out_dir: Path, spec: StudySpec, url: str) -> None:
    """spec.toml and a first meta.json, so ``sweep export DIR`` works even after a crash."""
    import json
    (out_dir / "spec.toml").write_text(spec.source)
    meta = out_dir / "meta.json"
    if not meta.exists():
        meta.write_text(json.dumps({"study": spec.study.name, "storage": mask_url(url),
                                    "spec_hash": spec.hash()}, indent=2) + "\n")


def run_study(spec: StudySpec, *, out: str | Path | None = None, storage: str | None = None,
              n_jobs: int | None = None, fresh: bool = False, progress: bool = True,
              command: str = "") -> RunSummary:
    """Run (or resume) a study until every designed configuration has a finished trial, then export."""
    start = time.time()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    out_dir = prepare_out_dir(spec, out, storage, fresh)
    url = storage or default_storage(out_dir)
    study = open_study(spec, url)
    write_run_info(out_dir, spec, url)
    n_jobs = n_jobs or os.cpu_count() or 1
    seeds = spec.seeds.tuples()
    total_runs = design.n_configs(spec) * len(seeds)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=total_runs, unit="run", desc=spec.study.name, file=sys.stderr)
    n_trials_run, engine_s = 0, 0.0
    in_flight: list[optuna.trial.Trial] = []
    with _Heartbeat(study._storage) as hb, Parallel(n_jobs=n_jobs, backend="loky") as pool:
        try:
            while True:
                recover(study, spec)
                if bar is not None:
                    done = sum(t.state == TrialState.COMPLETE for t in _retry(study.get_trials, deepcopy=False))
                    bar.n = done * len(seeds)
                    bar.refresh()
                asked = _ask_generation(study, spec)
                if not asked:
                    break
                in_flight = [t for t, _ in asked]
                hb.trial_ids = [t._trial_id for t in in_flight]
                results = pool(delayed(run_config)(design.apply(spec, params), seeds) for _, params in asked)
                for (trial, _), result in zip(asked, results):
                    values = [r[spec.study.objective] for r in result["runs"]]
                    finite = [v for v in values if np.isfinite(v)]
                    trial.set_user_attr("result", result)
                    trial.set_user_attr("objective_mean", float(np.mean(finite)) if finite else None)
                    trial.set_user_attr("objective_sd", float(np.std(finite, ddof=1)) if len(finite) > 1 else None)
                    _retry(study.tell, trial, aggregate(values, spec.study.aggregate, spec.study.direction))
                    engine_s += sum(r["duration_s"] for r in result["runs"])
                    n_trials_run += 1
                    if bar is not None:
                        bar.update(len(seeds))
                in_flight, hb.trial_ids = [], []
        except KeyboardInterrupt:
            for t in in_flight:
                try:
                    study.tell(t, state=TrialState.FAIL, skip_if_finished=True)
                except Exception:
                    pass
            raise
        finally:
            if bar is not None:
                bar.close()
    meta = {"command": command, "storage": url, "n_jobs": n_jobs, "started_at": started_at,
            "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    paths = export(study, spec, out_dir, meta)
    n_runs = sum(1 for _ in open(paths["runs"])) - 1
    return RunSummary(out_dir, mask_url(url), n_trials_run, n_runs, time.time() - start, engine_s, paths)
