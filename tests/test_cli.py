"""The command line: every malformed spec exits 2 with its message and writes nothing."""
import pytest

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
