"""sweep confirm end to end: a sampled study's top configurations re-trained on fresh seeds, stored in
the same storage as a study of their own, resumable, and read by the report."""
import json
import sqlite3
import sys
from pathlib import Path

import pandas as pd

from sweep.cli import main
from sweep.confirm import SEED_START
from sweep.render import figure_file

sys.path.insert(0, str(Path(__file__).parent))
from small_study import write_small_spec  # noqa: E402

SAMPLED = '"train.lr" = { low = 0.001, high = 0.3, log = true }\n"model.init" = { values = ["xavier_normal", "he_normal"] }'


def test_confirm_retrains_the_top_configurations_on_fresh_seeds(tmp_path, capsys):
    spec = write_small_spec(tmp_path, "sampled", space=SAMPLED, iterations=30, sampler="random", n_trials=8, batch=4)
    out = tmp_path / "res"
    assert main(["run", str(spec), "--out", str(out), "--n-jobs", "1", "--quiet"]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["analysis"]["factors"]["lr"] == {"kind": "continuous", "log": True, "ordered": True,
                                                 "source": "spec", "low": 0.001, "high": 0.3}
    assert meta["analysis"]["sampler"] == "random"
    assert main(["confirm", str(out), "--top", "3", "--seeds", "4", "--n-jobs", "1", "--quiet"]) == 0
    study = pd.read_csv(out / "runs.csv")
    fresh = pd.read_csv(out / "confirm" / "runs.csv")
    assert len(fresh) == 3 * 4 and fresh["seed_init"].min() == SEED_START and (fresh["seed_split"] == 0).all()
    means = study.groupby("config_id")["val_acc"].mean().sort_values(ascending=False, kind="stable")
    assert set(fresh["config_id"]) == set(means.index[:3])           # the three best, by the objective
    first = study.drop_duplicates("config_id").set_index("config_id")
    for cid, g in fresh.groupby("config_id"):
        assert g["lr"].iloc[0] == first.loc[cid, "lr"] and g["init"].iloc[0] == first.loc[cid, "init"]
    # stored beside the study, under its own name; running it again trains nothing new
    con = sqlite3.connect(out / "study.db")
    names = {r[0] for r in con.execute("select study_name from studies")}
    con.close()
    assert names == {"sampled", "sampled.confirm-top3-seeds4"}
    capsys.readouterr()
    assert main(["confirm", str(out), "--top", "3", "--seeds", "4", "--n-jobs", "1", "--quiet"]) == 0
    assert "0 trials trained now" in capsys.readouterr().out
    # the report compares selection-time and confirmed means
    assert main(["report", str(out)]) == 0
    table = pd.read_csv(out / "confirm.csv")
    assert list(table["selection_rank"]) == [1, 2, 3] and (table["n_confirmed"] == 4).all()
    findings = (out / "findings.txt").read_text()
    assert "Winner's curse check (sweep confirm: the top 3 re-trained on 4 fresh seeds)" in findings
    assert (out / "figures" / figure_file("confirm")).exists() and (out / "figures" / figure_file("surface_lr")).exists()


def test_confirm_needs_a_finished_study(tmp_path, capsys):
    spec = write_small_spec(tmp_path, "nothing", space=SAMPLED, iterations=30, sampler="random", n_trials=4)
    assert main(["confirm", str(spec), "--top", "2", "--seeds", "3", "--quiet"]) == 2
    assert "no study 'nothing'" in capsys.readouterr().err
