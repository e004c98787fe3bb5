"""The command line: every malformed spec exits 2 with its message and writes nothing; a full disk
exits 1 with one line saying what to do."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import optuna
import pandas as pd
import pytest

from small_study import write_small_spec
from sweep.cli import main
from test_spec import BASE, CASES, _case_file


@pytest.mark.parametrize("edits,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_spec_exits_2_and_writes_nothing(tmp_path, monkeypatch, capsys, edits, expected):
    text = BASE
    for old, new in edits:
        text = text.replace(old, new, 1)
    spec = _case_file(tmp_path, text)
    before = sorted(p.name for p in tmp_path.iterdir())
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(spec), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and expected in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before and "results" not in before


def test_missing_spec_and_non_results_folder(tmp_path, capsys):
    assert main(["run", str(tmp_path / "nope.toml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["export", str(tmp_path)]) == 2
    assert "not a results folder" in capsys.readouterr().err


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("run", "export", "show"):
        assert cmd in out


COMMANDS = [["run", "{spec}"], ["worker", "{spec}", "--storage", "sqlite:///{tmp}/w.db"], ["export", "{spec}"],
            ["show", "{spec}"], ["report", "{spec}"], ["confirm", "{spec}"]]


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_non_utf8_spec_exits_2_naming_the_file(tmp_path, monkeypatch, capsys, command):
    spec = tmp_path / "x.toml"
    spec.write_bytes(b"\xff\xfe\x00binary")
    monkeypatch.chdir(tmp_path)
    assert main([a.format(spec=spec, tmp=tmp_path) for a in command]) == 2
    assert capsys.readouterr().err == (f"error: spec {spec} is not a UTF-8 text file (byte 0xff at position 0): "
                                       "save it as UTF-8 TOML\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.toml"]


def test_results_folder_with_a_non_utf8_spec_exits_2(tmp_path, capsys):
    (tmp_path / "spec.toml").write_bytes("name = 'caf\u00e9'".encode("utf-16"))
    assert main(["show", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"error: spec {tmp_path / 'spec.toml'} is not a UTF-8 text file "
                                       "(byte 0xff at position 0): save it as UTF-8 TOML\n")


# --- a full disk: exit 1, one line saying what to do, the traceback only with SWEEP_LOG=DEBUG -----------

FULL = ("sweep: the disk is full writing {path} ({reason}). Free space and re-run the same command: the sweep "
        "resumes where it stopped, nothing already stored is lost.\n")
NO_SPACE = "No space left on device"


def _sweep(*args, env=None):
    return subprocess.run([sys.executable, "-m", "sweep", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def _dev_full_fails_with_enospc() -> bool:
    try:
        with open("/dev/full", "w") as fh:
            fh.write("x")
    except OSError as exc:
        return exc.errno == 28
    return False


@pytest.mark.skipif(not _dev_full_fails_with_enospc(), reason="needs /dev/full (writes to it fail with ENOSPC)")
def test_full_disk_in_the_results_folder_exits_1_and_the_rerun_resumes(tmp_path):
    spec = write_small_spec(tmp_path, "full", space='"train.lr" = { values = [0.003, 0.03] }', iterations=20)
    out = tmp_path / "out"
    out.mkdir()
    (out / "spec.toml").symlink_to("/dev/full")       # the first file the run writes there: a full disk
    failed = _sweep("run", spec, "--out", out, "--n-jobs", "1", "--quiet")
    assert failed.returncode == 1
    assert failed.stderr == FULL.format(path=out / "spec.toml", reason=NO_SPACE)
    debug = _sweep("run", spec, "--out", out, "--n-jobs", "1", "--quiet", env={"SWEEP_LOG": "DEBUG"})
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr and "OSError: [Errno 28]" in debug.stderr
    assert debug.stderr.endswith(FULL.format(path=out / "spec.toml", reason=NO_SPACE))
    (out / "spec.toml").unlink()                      # space freed
    done = _sweep("run", spec, "--out", out, "--n-jobs", "1", "--quiet")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"6 runs in {out}/runs.csv (2 trials trained now")
    assert len(pd.read_csv(out / "runs.csv")) == 2 * 3


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 1 MB tmpfs (a real small disk) mounted for the test; ``remount(size)`` grows it."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")

    def remount(size: str) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size}", str(disk)], check=True)

    yield disk, remount
    subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(disk: Path, leave: int) -> Path:
    """A file taking all but ``leave`` bytes of the free space of ``disk``."""
    st = os.statvfs(disk)
    filler = disk / "filler"
    filler.write_bytes(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
    return filler


def test_full_sqlite_storage_and_full_export_on_a_small_tmpfs(tmp_path, small_tmpfs):
    disk, remount = small_tmpfs
    space = '"train.lr" = { values = [0.001, 0.003, 0.01, 0.03, 0.1, 0.3] }\n' \
            '"model.init" = { values = ["xavier_normal", "he_normal"] }'
    spec = write_small_spec(tmp_path, "full", space=space, iterations=40)
    out = disk / "out"
    failed = _sweep("run", spec, "--out", out, "--n-jobs", "1", "--quiet")
    assert failed.returncode == 1
    assert failed.stderr == FULL.format(path=out / "study.db", reason="database or disk is full")
    remount("16m")                                     # space freed
    study = optuna.load_study(study_name="full", storage=f"sqlite:///{out / 'study.db'}")
    stored = sum(t.state == optuna.trial.TrialState.COMPLETE for t in study.get_trials())
    assert 0 < stored < 12                             # the disk filled in the middle of the sweep
    resumed = _sweep("run", spec, "--out", out, "--n-jobs", "1", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.startswith(f"36 runs in {out}/runs.csv ({12 - stored} trials trained now")
    assert _sweep("run", spec, "--out", tmp_path / "ref", "--n-jobs", "1", "--quiet").returncode == 0
    ignore = ["trial", "duration_s"]
    runs = pd.read_csv(out / "runs.csv")
    reference = pd.read_csv(tmp_path / "ref" / "runs.csv")
    pd.testing.assert_frame_equal(runs.drop(columns=ignore), reference.drop(columns=ignore))

    for name in ("runs.csv", "curves.csv"):            # now the export finds the disk full
        (out / name).unlink()
    filler = _fill(disk, leave=16 * 1024)
    export = _sweep("export", out)
    assert export.returncode == 1 and "Traceback" not in export.stderr
    assert export.stderr in {FULL.format(path=out / name, reason=NO_SPACE) for name in ("runs.csv", "curves.csv")}
    assert not list(out.glob(".*.tmp"))                # no half-written temporary file left behind
    filler.unlink()
    assert _sweep("export", out).returncode == 0
    pd.testing.assert_frame_equal(pd.read_csv(out / "runs.csv"), runs)
