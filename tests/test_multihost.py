"""Many hosts: several workers on one PostgreSQL study (exact runs, no duplicate from the enqueue race,
exact TPE budget), a worker killed mid-trial (failed by its stale heartbeat and re-run by the others),
joblib on Dask (identical to loky, also when a Dask worker is killed), and storage passwords that
appear in no output file and no log line.

PostgreSQL: ``SWEEP_TEST_PG`` (set by .ci/run), else a private cluster started by tests/pg.py, else
skipped (failed in CI). Workers are separate processes, as on separate hosts; a killed worker's trial
is made to look like another host's (``SWEEP_HOST``), so only its heartbeat can tell it is dead.
"""
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import optuna
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
import pg  # noqa: E402
from small_study import write_small_spec  # noqa: E402

from sweep.store import mask_secrets, mask_url, open_storage, url_password  # noqa: E402

# 5 x 3 x 2 = 30 configurations x 3 seeds
GRID30 = ('"train.lr" = { values = [0.001, 0.003, 0.01, 0.03, 0.1] }\n'
          '"model.init" = { values = ["xavier_normal", "he_normal", "lecun_normal"] }\n'
          '"model.hidden" = { values = [[4], [8]] }')
GRID8 = '"train.lr" = { values = [0.001, 0.003, 0.01, 0.03] }\n"model.init" = { values = ["xavier_normal", "he_normal"] }'
TPE = '"train.lr" = { low = 0.0001, high = 0.3, log = true }\n"model.init" = { values = ["xavier_normal", "he_normal"] }'
DROP = ["study", "trial", "duration_s"]      # the study name differs per test; trial numbers differ after re-runs


@pytest.fixture(scope="module")
def pg_url():
    yield from pg.pg_url_or_skip()


def write_spec(directory: Path, name: str, *, space=GRID30, iterations=3000, batch=2, sampler="grid",
               n_trials=None) -> Path:
    return write_small_spec(directory, name, space=space, iterations=iterations, batch=batch, sampler=sampler,
                            n_trials=n_trials)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def sweep_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "sweep", *map(str, args)]


def run_cli(*args, env=None, cwd=None, timeout=300):
    return subprocess.run(sweep_cmd(*args), capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)


def env_with(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "SWEEP_STORAGE"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def start_workers(spec, url, n, tmp_path, *, extra_env=None, args=()):
    """``n`` ``sweep worker`` processes started at once, each in its own session (killable as a group)."""
    procs = []
    for i in range(n):
        env = env_with(SWEEP_STORAGE=url, **((extra_env or {}).get(i, {})))
        out = open(tmp_path / f"worker{i}.out", "w")
        err = open(tmp_path / f"worker{i}.err", "w")
        procs.append(subprocess.Popen(sweep_cmd("worker", spec, "--out", tmp_path / f"w{i}", "--n-jobs", 1, "--quiet",
                                                *args), stdout=out, stderr=err, env=env, start_new_session=True))
    return procs


def wait_all(procs, timeout=240):
    deadline = time.time() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            for q in procs:
                kill_group(q)
            raise
    return [p.returncode for p in procs]


def kill_group(p):
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    p.wait()


def load(name, url):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name=name, storage=open_storage(url))


def runs(path) -> pd.DataFrame:
    df = pd.read_csv(path)
    return df.drop(columns=[c for c in DROP if c in df.columns]).sort_values("run_id").reset_index(drop=True)


def reference(tmp_path, spec_kwargs, storage=None, n_jobs=2) -> pd.DataFrame:
    """The runs of the same design run by one process alone (loky)."""
    spec = write_spec(tmp_path, unique("ref"), **spec_kwargs)
    extra = ("--storage", storage) if storage else ()
    res = run_cli("run", spec, "--out", tmp_path / "ref", "--n-jobs", n_jobs, "--quiet", *extra)
    assert res.returncode == 0, mask_secrets(res.stderr, storage)
    return runs(tmp_path / "ref" / "runs.csv")


def wait_for_study(name, url, timeout=60):
    deadline = time.time() + timeout
    while True:
        try:
            return load(name, url)
        except KeyError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def assert_exact(study, n_configs: int):
    """COMPLETE trials: exactly one per designed configuration; nothing left running or waiting."""
    trials = study.get_trials()
    states = [t.state for t in trials]
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    cids = [t.user_attrs["config_id"] for t in complete]
    assert len(cids) == n_configs and len(set(cids)) == n_configs, sorted(cids)


TrialState = optuna.trial.TrialState
GRID30_KW = dict(space=GRID30, iterations=8000, batch=2)       # about 0.2 s a trial


@pytest.fixture(scope="module")
def grid30_reference(tmp_path_factory, pg_url):
    return reference(tmp_path_factory.mktemp("ref30"), GRID30_KW, storage=pg_url)


def test_masking_of_urls_and_text():
    assert mask_url("postgresql://sweep:s3cr#t@db:5432/sweep") == "postgresql://sweep:***@db:5432/sweep"
    assert mask_url("postgresql://:pw@db/x") == "postgresql://:***@db/x"
    assert mask_url("postgresql://u:p@ss/w@db/x") == "postgresql://u:***@db/x"      # unencoded '@' and '/'
    assert mask_url("postgresql://db/x?user=u&password=abc123&sslmode=require") == \
        "postgresql://db/x?user=u&password=***&sslmode=require"
    assert mask_url("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
    assert url_password("postgresql://u:p%40ss%2Fw@db/x") == "p@ss/w"
    text = "failed for postgresql://u:Zq9-pass@h/db; password Zq9-pass rejected"
    masked = mask_secrets(text, "postgresql://u:Zq9-pass@h/db")
    assert "Zq9" not in masked and "postgresql://u:***@h/db" in masked


def test_three_workers_at_once_run_the_grid_exactly_once(pg_url, tmp_path, grid30_reference):
    name = unique("grid3")
    spec = write_spec(tmp_path, name, **GRID30_KW)
    procs = start_workers(spec, pg_url, 3, tmp_path)
    codes = wait_all(procs)
    errs = [(tmp_path / f"worker{i}.err").read_text() for i in range(3)]
    assert codes == [0, 0, 0], errs
    study = load(name, pg_url)
    trials = study.get_trials()
    # the grid was enqueued once: 30 trials in all, none failed, none discarded as a duplicate
    assert len(trials) == 30 and all(t.state == TrialState.COMPLETE for t in trials)
    assert_exact(study, 30)
    owners = {t.user_attrs["owner"]["pid"] for t in trials}
    assert len(owners) >= 2, "the work was not shared between the workers"
    # every worker exported the complete study; all exports equal the single-process reference
    for i in range(3):
        got = runs(tmp_path / f"w{i}" / "runs.csv")
        assert got["run_id"].is_unique and len(got) == 90
        pd.testing.assert_frame_equal(got, grid30_reference, check_exact=True)


def test_concurrent_enqueue_is_race_free(pg_url, tmp_path):
    """Four processes that opened the same new study enqueue the grid at the same instant."""
    name = unique("race")
    spec = write_spec(tmp_path, name, **GRID30_KW)
    go = tmp_path / "go"
    code = (
        "import os, sys, time\n"
        "from sweep.spec import load_spec\n"
        "from sweep.runner import open_study, recover, _rdb\n"
        "from sweep.store import study_lock\n"
        "spec = load_spec(sys.argv[1])\n"
        "study = open_study(spec, sys.argv[2])\n"
        "print('ready', flush=True)\n"
        "while not os.path.exists(sys.argv[3]): time.sleep(0.001)\n"
        "with study_lock(_rdb(study), spec.study.name):\n"
        "    recover(study, spec)\n")
    # (without the lock, four processes enqueued 111 trials for these 30 cells in a trial run)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(spec), pg_url, str(go)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for p in procs:                                   # all imported and waiting: then all at once
        assert p.stdout.readline().strip() == "ready", mask_secrets(p.stderr.read(), pg_url)
    go.touch()
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [mask_secrets(e, pg_url) for _, e in outs]
    trials = load(name, pg_url).get_trials()
    cids = [t.user_attrs["config_id"] for t in trials]
    assert all(t.state == TrialState.WAITING for t in trials)
    assert len(cids) == 30 and len(set(cids)) == 30


def test_tpe_budget_is_exact_with_three_workers(pg_url, tmp_path):
    name = unique("tpe3")
    spec = write_spec(tmp_path, name, space=TPE, sampler="tpe", n_trials=7, batch=3, iterations=200)
    codes = wait_all(start_workers(spec, pg_url, 3, tmp_path))
    assert codes == [0, 0, 0], [(tmp_path / f"worker{i}.err").read_text() for i in range(3)]
    trials = load(name, pg_url).get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == 7 == len(trials)                 # not one trial over the budget
    assert len({t.user_attrs["config_id"] for t in complete}) == 7
    assert len(pd.read_csv(tmp_path / "w0" / "runs.csv")) == 21


def test_worker_killed_mid_trial_is_failed_by_heartbeat_and_rerun(pg_url, tmp_path, grid30_reference):
    """Kill -9 one of three workers while its trial runs. It claims another host (SWEEP_HOST), so
    the survivors cannot check its PID: its heartbeat goes stale, the trial is failed and re-run."""
    name = unique("kill")
    spec = write_spec(tmp_path, name, **GRID30_KW)
    hb = ("--heartbeat-interval", 1, "--grace-period", 6)
    procs = start_workers(spec, pg_url, 3, tmp_path, args=hb, extra_env={1: {"SWEEP_HOST": "other-host"}})
    victim = procs[1]
    try:
        study = wait_for_study(name, pg_url)
        deadline, killed_trials = time.time() + 120, []
        while time.time() < deadline and not killed_trials:
            assert victim.poll() is None, (tmp_path / "worker1.err").read_text()
            running = [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                       if (t.user_attrs.get("owner") or {}).get("pid") == victim.pid]
            if running:
                os.killpg(victim.pid, signal.SIGKILL)
                victim.wait()
                killed_trials = [t.number for t in running]
            else:
                time.sleep(0.05)
        assert killed_trials, "the victim never ran a trial"
        codes = wait_all([procs[0], procs[2]])
    finally:
        for p in procs:
            if p.poll() is None:
                kill_group(p)
    assert codes == [0, 0], [(tmp_path / f"worker{i}.err").read_text() for i in (0, 2)]
    study = load(name, pg_url)
    trials = study.get_trials()
    by_number = {t.number: t for t in trials}
    complete_cids = {t.user_attrs["config_id"] for t in trials if t.state == TrialState.COMPLETE}
    for number in killed_trials:
        t = by_number[number]
        assert t.state == TrialState.FAIL                    # failed by the stale heartbeat ...
        assert "failed_by" not in t.user_attrs               # ... not by a PID check (other host)
        assert t.user_attrs["config_id"] in complete_cids    # ... and its configuration re-run
    assert_exact(study, 30)
    for i in (0, 2):
        pd.testing.assert_frame_equal(runs(tmp_path / f"w{i}" / "runs.csv"), grid30_reference, check_exact=True)


DASK_KW = dict(space=GRID8, iterations=20000, batch=4)


@pytest.fixture(scope="module")
def dask_reference(tmp_path_factory):
    return reference(tmp_path_factory.mktemp("refdask"), DASK_KW)


def test_dask_local_cluster_gives_the_loky_runs(tmp_path, dask_reference):
    pytest.importorskip("distributed")
    spec = write_spec(tmp_path, unique("dl"), **DASK_KW)
    res = run_cli("run", spec, "--out", tmp_path / "d", "--backend", "dask", "--n-jobs", 2, "--quiet")
    assert res.returncode == 0, res.stderr
    pd.testing.assert_frame_equal(runs(tmp_path / "d" / "runs.csv"), dask_reference, check_exact=True)
    meta = json.loads((tmp_path / "d" / "meta.json").read_text())
    assert meta["backend"] == "dask"


def test_killing_a_dask_worker_mid_run_still_gives_the_loky_runs(tmp_path, dask_reference):
    distributed = pytest.importorskip("distributed")
    sched_file = tmp_path / "scheduler.json"
    log = open(tmp_path / "dask.log", "w")
    dask = [sys.executable, "-m", "dask"]
    cluster = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                 "--scheduler-file", sched_file], stdout=log, stderr=log, start_new_session=True)]
    client = None
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)
        address = json.loads(sched_file.read_text())["address"]
        for _ in range(2):
            cluster.append(subprocess.Popen([*dask, "worker", "--scheduler-file", sched_file, "--host", "127.0.0.1",
                                             "--nthreads", "1", "--nworkers", "1", "--no-dashboard"],
                                            stdout=log, stderr=log, start_new_session=True))
        client = distributed.Client(address, timeout=60)
        client.wait_for_workers(2, timeout=90)
        pids = client.run(os.getpid)                          # worker address -> process id
        spec = write_spec(tmp_path, unique("dk"), **DASK_KW)
        run = subprocess.Popen(sweep_cmd("run", spec, "--out", tmp_path / "d", "--scheduler", address, "--quiet"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        victim, deadline = None, time.time() + 120
        while victim is None and time.time() < deadline and run.poll() is None:
            busy = [a for a, keys in client.processing().items() if keys]
            if len(busy) == 2:                                # both workers are training: kill one
                time.sleep(0.2)
                victim = busy[0]
                os.killpg(os.getpgid(pids[victim]), signal.SIGKILL)
            else:
                time.sleep(0.05)
        out, err = run.communicate(timeout=240)
        assert victim is not None, "no moment with both workers busy"
        assert run.returncode == 0, err
        assert victim not in client.scheduler_info()["workers"]          # the worker is gone for good
        pd.testing.assert_frame_equal(runs(tmp_path / "d" / "runs.csv"), dask_reference, check_exact=True)
    finally:
        if client is not None:
            client.close()
        for p in cluster:
            kill_group(p)


def test_password_appears_in_no_file_and_no_output(pg_url, tmp_path):
    password = url_password(pg_url)
    if not password or len(password) < 4:
        pytest.skip("SWEEP_TEST_PG has no password to look for")
    wrong = pg_url.replace(f":{password}@", ":Wr0ng-pa55word@") if f":{password}@" in pg_url else None
    name = unique("pw")
    spec = write_spec(tmp_path, name, space=GRID8, iterations=100, batch=4)
    debug = env_with(SWEEP_LOG="DEBUG")
    outputs = []

    def cli(*args, env=None, cwd=None, ok=True):
        res = run_cli(*args, env=env or debug, cwd=cwd)
        outputs.append((args, res))
        if ok:
            assert res.returncode == 0, mask_secrets(res.stderr, pg_url)
        return res

    out = tmp_path / "out"
    cli("run", spec, "--out", out, "--storage", pg_url)                  # the URL on the command line
    cli("worker", spec, "--out", tmp_path / "w", env=env_with(SWEEP_LOG="DEBUG", SWEEP_STORAGE=pg_url))
    cli("export", out, "--storage", pg_url)
    cli("export", out, env=env_with(SWEEP_STORAGE=pg_url))               # the password from the environment
    cli("show", out, "--storage", pg_url)
    cli("report", spec, "--storage", pg_url, cwd=tmp_path, env=env_with())   # from the storage, on any host
    # error paths: a wrong password, a folder whose storage password is not known, a bad URL
    if wrong:
        bad = cli("run", spec, "--out", tmp_path / "bad", "--storage", wrong, ok=False)
        assert bad.returncode == 1 and "password authentication failed" in bad.stderr
        assert mask_url(wrong) in bad.stderr and "Wr0ng-pa55word" not in bad.stderr + bad.stdout
        bad = cli("worker", spec, "--out", tmp_path / "bad", env=env_with(SWEEP_STORAGE=wrong), ok=False)
        assert bad.returncode == 1 and "Wr0ng-pa55word" not in bad.stderr + bad.stdout
    nopw = cli("export", out, env=env_with(), ok=False)
    assert nopw.returncode == 1 and "SWEEP_STORAGE" in nopw.stderr
    broken = cli("show", out, "--storage", pg_url.replace("postgresql", "postgresql+nodriver"), ok=False)
    assert broken.returncode == 1 and "***" in broken.stderr

    assert (tmp_path / "results" / name / "report.html").exists()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["storage"] == mask_url(pg_url) and "***" in meta["storage"]
    secrets = {password, quote(password, safe="")}
    for args, res in outputs:
        for secret in secrets:
            assert secret not in res.stdout and secret not in res.stderr, f"password printed by sweep {args[0]}"
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "runs.csv" for p in files) and any(p.name == "report.md" for p in files)
    for path in files:
        if path.suffix == ".toml" and path.parent == tmp_path:
            continue                                          # the spec we wrote
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, f"password written to {path}"
    # nor into the storage itself
    study = load(name, pg_url)
    stored = json.dumps(study.user_attrs) + json.dumps(study._storage.get_study_system_attrs(study._study_id),
                                                       default=str)
    assert password not in stored


def test_worker_options_are_checked(tmp_path, monkeypatch, capsys):
    from sweep.cli import main
    monkeypatch.delenv("SWEEP_STORAGE", raising=False)
    spec = write_spec(tmp_path, "opts", space=GRID8, iterations=10)
    assert main(["worker", str(spec)]) == 2
    assert "needs the shared storage" in capsys.readouterr().err
    assert main(["run", str(spec), "--heartbeat-interval", "5", "--grace-period", "5"]) == 2
    assert "--grace-period" in capsys.readouterr().err
    assert main(["run", str(spec), "--backend", "loky", "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert not (tmp_path / "results").exists() and not Path("results/opts").exists()


def test_two_workers_share_a_sqlite_study_and_sigterm_fails_trials_at_once(tmp_path):
    """Same host, SQLite: the lock is a flock next to the database. SIGTERM stops a worker like
    Ctrl-C: its trials are failed at once. The stopped worker claims another host and the grace period
    is long, so nothing else could have failed them by the time it exits. Both workers use the numpy
    engine: its trials last long enough that the one seen training is still training when the signal
    lands (with the fused engine, a trial is often told between the look and the signal)."""
    name = unique("lite")
    spec = write_spec(tmp_path, name, **GRID30_KW)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    args = ("--grace-period", 60)
    victim = start_workers(spec, url, 1, tmp_path, args=args,
                           extra_env={0: {"SWEEP_HOST": "other-host", "SWEEP_ENGINE": "numpy"}})[0]
    procs = [victim]

    def trials_of(proc, training=False):
        return [t for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.COMPLETE))
                if (t.user_attrs.get("owner") or {}).get("pid") == proc.pid
                and (not training or (t.state == TrialState.RUNNING and "result" not in t.user_attrs))]

    def wait_until(condition, what):
        deadline = time.time() + 120
        while time.time() < deadline and victim.poll() is None:
            found = condition()
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{what} (victim exit code {victim.poll()}): {(tmp_path / 'worker0.err').read_text()}")

    try:
        study = wait_for_study(name, url)
        wait_until(lambda: trials_of(victim, training=True), "the first worker never trained")
        other = subprocess.Popen(sweep_cmd("worker", spec, "--out", tmp_path / "w1", "--n-jobs", 1, "--quiet", *args),
                                 stdout=subprocess.DEVNULL, stderr=open(tmp_path / "worker1.err", "w"),
                                 env=env_with(SWEEP_STORAGE=url, SWEEP_ENGINE="numpy"), start_new_session=True)
        procs.append(other)
        wait_until(lambda: trials_of(other), "the second worker never took a trial")    # both at work now
        stopped = [t.number for t in wait_until(lambda: trials_of(victim, training=True), "no training to stop")]
        victim.send_signal(signal.SIGTERM)
        assert victim.wait(timeout=60) == 130, (tmp_path / "worker0.err").read_text()
        mine = [t for t in load(name, url).get_trials() if (t.user_attrs.get("owner") or {}).get("pid") == victim.pid]
        assert TrialState.RUNNING not in [t.state for t in mine]          # failed at once, not after 60 s
        states = [t.state for t in mine if t.number in stopped]
        assert TrialState.FAIL in states and set(states) <= {TrialState.FAIL, TrialState.COMPLETE}
        assert wait_all([other]) == [0], (tmp_path / "worker1.err").read_text()
    finally:
        for p in procs:
            if p.poll() is None:
                kill_group(p)
    assert_exact(load(name, url), 30)
    got = pd.read_csv(tmp_path / "w1" / "runs.csv")
    assert len(got) == 90 and got["run_id"].is_unique
