"""The runner end to end through the public CLI: determinism over n_jobs, kill -9 and resume,
divergence, spec changes, Optuna storage compatibility."""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

from sweep.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from small_study import write_small_spec  # noqa: E402

GRID_SPACE = '"train.lr" = { values = [0.003, 0.03] }\n"model.init" = { values = ["xavier_normal", "he_normal"] }'


def write_spec(tmp_path, name="small", sampler="grid", n_trials=None, aggregate="mean", batch=2,
               iterations=40, space=GRID_SPACE):
    return write_small_spec(tmp_path, name, space=space, iterations=iterations, sampler=sampler,
                            n_trials=n_trials, aggregate=aggregate, batch=batch)


def run_cli(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "sweep", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, timeout=300, env=env)


# The kill and Ctrl-C tests need a study that lasts several seconds: they use the numpy reference engine
# (the fused one finishes their study before the first kill). Results are engine-independent anyway.
SLOW_ENV = {**os.environ, "SWEEP_ENGINE": "numpy"}


def runs_without_duration(path):
    return pd.read_csv(path).drop(columns=["duration_s"])


def test_n_jobs_does_not_change_runs(tmp_path):
    spec = write_spec(tmp_path)
    assert main(["run", str(spec), "--out", str(tmp_path / "one"), "--n-jobs", "1", "--quiet"]) == 0
    assert main(["run", str(spec), "--out", str(tmp_path / "two"), "--n-jobs", "2", "--quiet"]) == 0
    one, two = (tmp_path / "one" / "runs.csv").read_text(), (tmp_path / "two" / "runs.csv").read_text()
    a, b = runs_without_duration(tmp_path / "one" / "runs.csv"), runs_without_duration(tmp_path / "two" / "runs.csv")
    assert len(a) == 4 * 3 and a["run_id"].is_unique
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert (tmp_path / "one" / "curves.csv").read_bytes() == (tmp_path / "two" / "curves.csv").read_bytes()
    assert one != "" and two != ""
    # designed columns, one per varied parameter named by the key's last part
    assert {"lr", "init", "seed_init", "seed_order", "seed_split", "val_acc", "stagnation_step"} <= set(a.columns)
    assert sorted(a["lr"].unique()) == [0.003, 0.03]


def test_resume_is_a_no_op_and_changed_spec_is_refused(tmp_path, capsys):
    spec = write_spec(tmp_path)
    out = tmp_path / "r"
    assert main(["run", str(spec), "--out", str(out), "--n-jobs", "1", "--quiet"]) == 0
    first = runs_without_duration(out / "runs.csv")
    capsys.readouterr()
    assert main(["run", str(spec), "--out", str(out), "--n-jobs", "1", "--quiet"]) == 0
    assert "0 trials trained now" in capsys.readouterr().out
    pd.testing.assert_frame_equal(first, runs_without_duration(out / "runs.csv"))
    changed = write_spec(tmp_path, iterations=41)
    assert main(["run", str(changed), "--out", str(out), "--quiet"]) == 2
    assert "different spec" in capsys.readouterr().err
    assert main(["run", str(changed), "--out", str(out), "--quiet", "--fresh"]) == 0
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("r.old-")]
    assert len(aside) == 1 and (aside[0] / "runs.csv").exists()    # moved aside, not deleted


def test_kill_minus_nine_and_resume_gives_the_clean_runs(tmp_path):
    spec = write_spec(tmp_path, space='"train.lr" = { values = [0.001, 0.003, 0.01, 0.03] }\n'
                                      '"model.init" = { values = ["xavier_normal", "he_normal"] }\n'
                                      '"model.hidden" = { values = [[4], [8]] }',
                      iterations=20000, batch=2)
    clean = run_cli("run", spec, "--out", tmp_path / "clean", "--n-jobs", "2", "--quiet", env=SLOW_ENV)
    assert clean.returncode == 0, clean.stderr
    expected = runs_without_duration(tmp_path / "clean" / "runs.csv")
    assert len(expected) == 16 * 3
    out = tmp_path / "killed"
    rng = random.Random(0)
    kills = 0
    for attempt in range(12):
        errors = open(tmp_path / f"stderr{attempt}.txt", "w")
        proc = subprocess.Popen([sys.executable, "-m", "sweep", "run", str(spec), "--out", str(out), "--n-jobs",
                                 "2", "--quiet"], stdout=subprocess.DEVNULL, stderr=errors,
                                start_new_session=True, env=SLOW_ENV)
        time.sleep(rng.uniform(2.0, 3.0))
        if proc.poll() is not None:      # finished before the kill
            assert proc.returncode == 0, (tmp_path / f"stderr{attempt}.txt").read_text()
            break
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        if kills >= 5:
            break
    assert kills >= 5
    final = run_cli("run", spec, "--out", out, "--n-jobs", "2", "--quiet", env=SLOW_ENV)
    assert final.returncode == 0, final.stderr
    got = runs_without_duration(out / "runs.csv")
    assert got["run_id"].is_unique and sorted(got["run_id"]) == sorted(expected["run_id"])
    cols = [c for c in expected.columns if c != "trial"]   # trial numbers differ after re-runs
    pd.testing.assert_frame_equal(got[cols].reset_index(drop=True), expected[cols].reset_index(drop=True),
                                  check_exact=True)
    study = optuna.load_study(study_name="small", storage=f"sqlite:///{out / 'study.db'}")
    states = [t.state for t in study.get_trials()]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 16
    assert states.count(optuna.trial.TrialState.FAIL) >= 1      # some kills hit trials in flight: re-run


def test_diverging_learning_rate_is_recorded(tmp_path):
    spec = write_spec(tmp_path, space='"train.lr" = { values = [1000.0, 1.0] }\n'
                                      '"train.optimizer" = { values = ["sgd"] }', iterations=100)
    assert main(["run", str(spec), "--out", str(tmp_path / "d"), "--n-jobs", "1", "--quiet"]) == 0
    runs = pd.read_csv(tmp_path / "d" / "runs.csv")
    assert runs.loc[runs["lr"] == 1000.0, "diverged"].all()
    assert not runs.loc[runs["lr"] == 1.0, "diverged"].any()
    assert runs.loc[runs["lr"] == 1.0, "val_acc"].min() > 0.7


def test_tpe_budget_is_exact_and_independent_of_n_jobs(tmp_path):
    space = '"train.lr" = { low = 0.0001, high = 0.3, log = true }\n"model.init" = { values = ["xavier_normal", "he_normal"] }'
    spec = write_spec(tmp_path, sampler="tpe", n_trials=7, aggregate="lcb", batch=3, iterations=20, space=space)
    assert main(["run", str(spec), "--out", str(tmp_path / "a"), "--n-jobs", "1", "--quiet"]) == 0
    assert main(["run", str(spec), "--out", str(tmp_path / "b"), "--n-jobs", "2", "--quiet"]) == 0
    a, b = runs_without_duration(tmp_path / "a" / "runs.csv"), runs_without_duration(tmp_path / "b" / "runs.csv")
    assert a["config_id"].nunique() == 7 and len(a) == 21
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    study = optuna.load_study(study_name="small", storage=f"sqlite:///{tmp_path / 'a' / 'study.db'}")
    t = study.trials[0]
    vals = t.user_attrs["result"]["runs"]
    import numpy as np
    x = np.array([r["val_acc"] for r in vals])
    assert t.value == pytest.approx(x.mean() - 1.96 * x.std(ddof=1) / np.sqrt(3))   # lcb told to Optuna


def test_grid_trials_run_costliest_first(tmp_path):
    """Longest processing time first: the grid queue is ordered by the estimated cost, so the widest,
    longest configurations are handed out first and the workers finish together."""
    from sweep import design
    from sweep.evaluate import estimate_cost
    from sweep.spec import load_spec
    space = '"model.hidden" = { values = [[2], [16]] }\n"train.iterations" = { values = [20, 60] }'
    path = write_spec(tmp_path, space=space)
    spec = load_spec(path)
    cost = {cid: estimate_cost(design.apply(spec, params), 3) for cid, params in design.grid(spec)}
    assert cost["c003"] > cost["c002"] > cost["c001"] > cost["c000"]      # (16, 60), (16, 20), (2, 60), (2, 20)
    assert estimate_cost(spec, 6) == 2 * estimate_cost(spec, 3)
    assert main(["run", str(path), "--out", str(tmp_path / "o"), "--n-jobs", "2", "--quiet"]) == 0
    study = optuna.load_study(study_name="small", storage=f"sqlite:///{tmp_path / 'o' / 'study.db'}")
    by_number = [t.user_attrs["config_id"] for t in sorted(study.trials, key=lambda t: t.number)]
    assert by_number == ["c003", "c002", "c001", "c000"]


def test_study_db_alone_holds_the_finished_study(tmp_path):
    """SQLite runs in WAL mode while the sweep writes and is folded back at the end: study.db alone
    (no -wal/-shm beside it) is the whole study, readable from a copy."""
    import shutil
    import sqlite3
    spec = write_spec(tmp_path, iterations=10)
    assert main(["run", str(spec), "--out", str(tmp_path / "o"), "--n-jobs", "2", "--quiet"]) == 0
    assert not list((tmp_path / "o").glob("study.db-*"))
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(tmp_path / "o" / "study.db", copy / "study.db")
    with sqlite3.connect(f"file:{copy / 'study.db'}?mode=ro", uri=True) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert conn.execute("SELECT count(*) FROM trials WHERE state = 'COMPLETE'").fetchone()[0] == 4


def test_foreign_waiting_trials_do_not_stop_the_grid(tmp_path):
    """Trials enqueued by hand (no config_id) are failed unrun; every designed configuration still runs."""
    spec = write_spec(tmp_path, iterations=10)
    out = tmp_path / "f"
    out.mkdir()
    study = optuna.create_study(study_name="small", storage=f"sqlite:///{out / 'study.db'}", direction="maximize")
    for lr in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
        study.enqueue_trial({"train.lr": lr})
    assert main(["run", str(spec), "--out", str(out), "--n-jobs", "1", "--quiet"]) == 0
    got = runs_without_duration(out / "runs.csv")
    assert sorted(got["config_id"].unique()) == ["c000", "c001", "c002", "c003"] and len(got) == 12
    trials = optuna.load_study(study_name="small", storage=f"sqlite:///{out / 'study.db'}").get_trials()
    foreign = [t for t in trials if "config_id" not in t.user_attrs]
    assert len(foreign) == 6
    assert all(t.state == optuna.trial.TrialState.FAIL and "discarded" in t.user_attrs for t in foreign)


def test_optuna_loads_the_study_by_url_in_a_fresh_process(tmp_path):
    spec = write_spec(tmp_path, iterations=10)
    assert main(["run", str(spec), "--out", str(tmp_path / "o"), "--n-jobs", "1", "--quiet"]) == 0
    url = f"sqlite:///{(tmp_path / 'o' / 'study.db').resolve()}"
    code = ("import optuna; s = optuna.load_study(study_name='small', storage=%r); "
            "print(len(s.trials), sorted(s.trials[0].params))" % url)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "4 ['model.init', 'train.lr']"


def test_export_and_show(tmp_path, capsys):
    spec = write_spec(tmp_path, iterations=10)
    out = tmp_path / "e"
    assert main(["run", str(spec), "--out", str(out), "--n-jobs", "1", "--quiet"]) == 0
    before = runs_without_duration(out / "runs.csv")
    (out / "runs.csv").unlink()
    assert main(["export", str(out)]) == 0
    pd.testing.assert_frame_equal(before, runs_without_duration(out / "runs.csv"))
    capsys.readouterr()
    assert main(["show", str(out)]) == 0
    text = capsys.readouterr().out
    assert "4 of 4 configurations done" in text and "top configurations by mean val_acc" in text
    assert main(["show", str(tmp_path)]) == 2


def test_ctrl_c_stops_cleanly_and_resumes(tmp_path):
    spec = write_spec(tmp_path, space='"train.lr" = { values = [0.001, 0.003, 0.01, 0.03] }\n'
                                      '"model.init" = { values = ["xavier_normal", "he_normal"] }',
                      iterations=10000, batch=2)
    out = tmp_path / "c"
    proc = subprocess.Popen([sys.executable, "-m", "sweep", "run", str(spec), "--out", str(out), "--n-jobs", "1",
                             "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=SLOW_ENV)
    time.sleep(3.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "run the same command again to resume" in err
    study = optuna.load_study(study_name="small", storage=f"sqlite:///{out / 'study.db'}")
    states = [t.state for t in study.get_trials()]
    assert optuna.trial.TrialState.RUNNING not in states and optuna.trial.TrialState.FAIL in states
    assert run_cli("run", spec, "--out", out, "--n-jobs", "1", "--quiet", env=SLOW_ENV).returncode == 0
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 8 * 3 and runs["run_id"].is_unique


# --- a full disk: found in a worker process's exception and in the storage, never retried -------------

def _dev_full_fails_with_enospc() -> bool:
    try:
        _write_dev_full()
    except OSError as exc:
        return exc.errno == 28
    return False


def _write_dev_full() -> None:
    with open("/dev/full", "w") as fh:
        fh.write("x")


def _write_dev_full_wrapped() -> None:
    try:
        _write_dev_full()
    except OSError as exc:
        raise RuntimeError("the job could not save its output") from exc


def _fill_sqlite(path: str) -> None:
    """A real SQLite "database or disk is full": a database capped at its current size, written."""
    import sqlite3
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    con.execute(f"PRAGMA max_page_count = {pages}")
    con.execute("INSERT INTO t VALUES (?)", ("x" * 100_000,))


@pytest.mark.skipif(not _dev_full_fails_with_enospc(), reason="needs /dev/full (writes to it fail with ENOSPC)")
def test_a_full_disk_in_a_worker_process_is_found_in_the_parent(tmp_path):
    """A job's exception comes back from a loky worker pickled: its type, errno and message survive,
    its own chain only as the remote traceback's text, which is searched too."""
    import sqlite3
    from sweep.runner import executor
    from sweep.store import disk_full_error
    with executor("loky", 2) as (pool, _, _):
        with pytest.raises(OSError) as plain:
            pool.submit(_write_dev_full).result()
        with pytest.raises(RuntimeError) as wrapped:
            pool.submit(_write_dev_full_wrapped).result()
        with pytest.raises(sqlite3.OperationalError) as full:
            pool.submit(_fill_sqlite, str(tmp_path / "w.db")).result()
    assert plain.value.errno == 28 and disk_full_error(plain.value) is plain.value
    assert "[Errno 28]" in str(disk_full_error(wrapped.value))
    assert str(full.value) == "database or disk is full" and disk_full_error(full.value) is full.value
    assert disk_full_error(RuntimeError("the job could not save its output")) is None


def test_a_full_sqlite_storage_is_not_retried(tmp_path):
    from sweep.runner import _retry
    from test_store import capped_study
    trial = capped_study(tmp_path / "s.db").ask()
    calls = []

    def store_result() -> None:
        calls.append(1)
        trial.set_user_attr("result", "x" * 100_000)

    with pytest.raises(optuna.exceptions.StorageInternalError):
        _retry(store_result)
    assert len(calls) == 1              # a full disk stays full: no five retries over six seconds
