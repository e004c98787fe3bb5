"""The report: findings generated from the numbers, and the HTML checked in a real headless browser."""
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sweep.cli import main
from sweep.render import figure_file, slug
from sweep.report import analyze, findings, write_report
from test_runner import write_spec


def _table(rng, configs, n_seeds=20):
    """A runs table: configs = {name: (mean, sd, single_class_share, bimodal)}."""
    rows = []
    for name, (mean, sd, single, bimodal) in configs.items():
        for s in range(n_seeds):
            if bimodal:
                value = (0.9 if s % 2 else 0.55) + rng.normal(0, 0.005)
            else:
                value = mean + rng.normal(0, sd) if sd else mean
            rows.append({"config_id": name, "arch": name, "seed_init": s, "seed_order": s, "seed_split": 0,
                         "val_acc": value, "train_acc": value, "init_train_acc": 0.6,
                         "single_class": s < single * n_seeds, "stagnation_step": np.nan, "diverged": False,
                         "rel_weight_change": 0.5, "n_val": 200})
    return pd.DataFrame(rows)


def test_single_class_trap_and_bimodal_are_in_the_findings():
    rng = np.random.default_rng(0)
    df = _table(rng, {"good": (0.93, 0.01, 0.0, False), "majority": (0.627, 0.0, 1.0, False),
                      "coinflip": (0.0, 0.0, 0.0, True)})
    a = analyze(df, metric="val_acc", factors=["arch"], n_boot=200)
    texts = [f.text for f in findings(a)]
    assert any("arch=majority looks stable" in t and "100% of its runs predict a single class" in t for t in texts)
    assert any(t.startswith("arch=coinflip: the outcomes are bimodal") for t in texts)
    assert not any("arch=good looks stable" in t or "arch=good: the outcomes are bimodal" in t for t in texts)
    best = [t for t in texts if t.startswith("Best configuration")]
    assert best and "arch=good" in best[0]


def test_findings_follow_the_data_not_a_template():
    """Same code, two tables: the seed-dominated one must say so, the factor-dominated one must not."""
    rng = np.random.default_rng(1)
    noisy = _table(rng, {"a": (0.80, 0.08, 0, False), "b": (0.81, 0.08, 0, False)})
    clear = _table(rng, {"a": (0.70, 0.005, 0, False), "b": (0.90, 0.005, 0, False)})
    t_noisy = findings(analyze(noisy, metric="val_acc", factors=["arch"], n_boot=200))[0].text
    t_clear = findings(analyze(clear, metric="val_acc", factors=["arch"], n_boot=200))[0].text
    assert "the seed explains most" in t_noisy
    assert "the configuration explains most" in t_clear
    sep = [f.text for f in findings(analyze(clear, metric="val_acc", factors=["arch"], n_boot=200))
           if f.text.startswith("Best")][0]
    assert "takes about" in sep and "wins on 100%" in sep


def _browser():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install chromium (.ci/run does)")
        pytest.skip("no chromium on this machine (CI installs it)")
    return path


def test_report_opens_in_headless_chromium(tmp_path):
    spec = write_spec(tmp_path, iterations=60)
    out = tmp_path / "res"
    assert main(["run", str(spec), "--out", str(out), "--n-jobs", "1", "--quiet"]) == 0
    assert main(["report", str(out)]) == 0
    html = out / "report.html"
    assert (out / "report.md").exists() and (out / "variance.csv").exists() and (out / "summary.csv").exists()
    from playwright.sync_api import sync_playwright
    views = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=_browser(), args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        for width in (1280, 800):
            page = browser.new_page(viewport={"width": width, "height": 800})
            page.goto(html.resolve().as_uri())
            page.wait_for_load_state("load")
            views[width] = page.evaluate("""() => ({
                scroll: document.documentElement.scrollWidth - document.documentElement.clientWidth,
                images: Array.from(document.images).map(i => [i.complete, i.naturalWidth]),
                figures: Array.from(document.querySelectorAll('figure')).map(f => f.id),
                sections: Array.from(document.querySelectorAll('section')).map(s => s.id),
                headline: document.querySelector('#headline').getBoundingClientRect().bottom,
                headImage: document.querySelector('#headline img').getBoundingClientRect().bottom,
                findings: document.querySelectorAll('#findings .finding').length})""")
            views[width]["title"] = page.title()
            page.close()
        browser.close()
    wide, narrow = views[1280], views[800]
    assert wide["sections"] == ["headline", "findings", "figures", "details", "methods", "spec", "meta"]
    assert wide["scroll"] == 0 and narrow["scroll"] == 0              # no horizontal scroll of the page
    assert len(wide["images"]) >= 6 and all(ok and w > 100 for ok, w in wide["images"]), wide["images"]
    assert wide["headline"] <= 800 and wide["headImage"] <= 800        # the answer above the fold
    expected = {"fig-" + slug(k) for k in ("variance_global", "outcome_lr", "outcome_init", "halfwidth")}
    assert expected <= set(wide["figures"]), wide["figures"]
    assert wide["findings"] >= 3 and "small" in wide["title"]


def test_analyze_cli_on_a_foreign_csv(tmp_path, capsys):
    rng = np.random.default_rng(2)
    rows = [{"width": w, "lr": lr, "seed": s, "acc": 0.7 + 0.05 * (w == 64) + rng.normal(0, 0.02)}
            for w in (16, 64) for lr in (0.01, 0.1) for s in range(10)]
    csv = tmp_path / "torch_runs.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    assert main(["analyze", str(csv), "--metric", "acc", "--factors", "width,lr", "--seed-cols", "seed"]) == 0
    out = tmp_path / "torch_runs-analysis"
    v = pd.read_csv(out / "variance.csv")
    width = v[(v["scope"] == "global") & (v["source"] == "width")]["share"].iloc[0]
    lr = v[(v["scope"] == "global") & (v["source"] == "lr")]["share"].iloc[0]
    assert width > 0.5 > lr
    assert (out / "report.html").exists()
    capsys.readouterr()
    assert main(["analyze", str(csv), "--metric", "accuracy", "--factors", "width"]) == 2
    assert "no column 'accuracy'" in capsys.readouterr().err
    assert main(["analyze", str(csv), "--metric", "acc", "--factors", "width,depth"]) == 2
    assert "'depth' not in the runs table" in capsys.readouterr().err


def _sampled_csv(tmp_path, n_configs=30, n_seeds=6):
    rng = np.random.default_rng(5)
    rows = []
    for c in range(n_configs):
        lr, width, act = 10 ** rng.uniform(-4, -1), int(rng.choice([16, 64])), str(rng.choice(["relu", "tanh"]))
        mu = 0.9 - 0.05 * (np.log10(lr) + 2.5) ** 2 + 0.03 * (width == 64)
        rows += [{"lr": lr, "width": width, "act": act, "wd": float(rng.choice([0.0, 0.1])), "seed": s,
                  "acc": mu + rng.normal(0, 0.03 if lr < 1e-3 else 0.005)} for s in range(n_seeds)]
    path = tmp_path / "sampled_runs.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_analyze_cli_on_a_sampled_foreign_csv(tmp_path, capsys):
    """A foreign table whose lr has one value per configuration: lr is inferred continuous (log), the
    attribution is the fitted surface's, the figures draw lr on a log axis and the findings speak in
    ranges; overrides and their errors."""
    csv = _sampled_csv(tmp_path)
    assert main(["analyze", str(csv), "--metric", "acc", "--factors", "lr,width,act", "--seed-cols", "seed"]) == 0
    out = tmp_path / "sampled_runs-analysis"
    v = pd.read_csv(out / "variance.csv")
    fan = v[v["method"] == "fanova"].set_index("source")
    assert {"lr", "width", "act", "lr × width", "seed (within configuration)"} <= set(fan.index)
    assert fan.loc["lr", "share"] > fan.loc["width", "share"] > 0.02
    assert not (v["method"] == "typeII").any()
    assert (out / "figures" / figure_file("surface_lr")).exists() and (out / "figures" / figure_file("seed_sd_lr")).exists()
    text = (out / "findings.txt").read_text()
    assert "lr matters most" in text and "Where the seed matters: most for lr" in text
    assert "lr=0.000" in text and "lr=0.0002019" not in text          # 3 significant digits
    capsys.readouterr()
    assert main(["analyze", str(csv), "--metric", "acc", "--factors", "lr,act", "--seed-cols", "seed",
                 "--continuous", "act"]) == 2
    assert "--continuous act: column 'act' is not numeric" in capsys.readouterr().err
    assert main(["analyze", str(csv), "--metric", "acc", "--factors", "lr,wd", "--seed-cols", "seed",
                 "--continuous", "wd:log"]) == 2
    assert "'wd' has values <= 0" in capsys.readouterr().err
    one = pd.read_csv(csv).assign(const=1.0)
    one.to_csv(tmp_path / "const.csv", index=False)
    assert main(["analyze", str(tmp_path / "const.csv"), "--metric", "acc", "--factors", "lr,const",
                 "--seed-cols", "seed"]) == 2
    assert "--factors const: column(s) with a single value (const=1.0)" in capsys.readouterr().err
    # --categorical turns the grid-like reading back on: width as levels, lr still continuous
    assert main(["analyze", str(csv), "--metric", "acc", "--factors", "lr,width", "--seed-cols", "seed",
                 "--categorical", "width", "--out", str(tmp_path / "o2")]) == 0
    v2 = pd.read_csv(tmp_path / "o2" / "variance.csv")
    assert "width" in set(v2[v2["method"] == "fanova"]["source"])


def _plates(rng, n_cfg=3):
    """A table from another field: treatments under a column named ``config`` (sweep's own internal name),
    random factors plate (5) x sample (4) crossed and shared by every treatment, metric ``acc``."""
    plate, sample = rng.normal(0, 0.03, 5), rng.normal(0, 0.01, 4)
    return pd.DataFrame([{"config": f"t{c}", "plate": p, "sample": s,
                          "acc": 0.8 + 0.02 * c + plate[p] + sample[s] + rng.normal(0, 0.005)}
                         for c in range(n_cfg) for p in range(5) for s in range(4)])


def test_analyze_cli_any_seed_columns_one_configuration_and_internal_names(tmp_path, capsys):
    rng = np.random.default_rng(11)
    csv = tmp_path / "plates.csv"
    _plates(rng).to_csv(csv, index=False)
    assert main(["analyze", str(csv), "--metric", "acc", "--factors", "config", "--seed-cols", "plate,sample",
                 "--out", str(tmp_path / "a")]) == 0
    v = pd.read_csv(tmp_path / "a" / "variance.csv")
    src = v[v["scope"] == "seed sources"].set_index("source")
    assert {"plate (shared)", "plate × configuration", "sample (shared)"} <= set(src.index)
    assert src.loc["plate (shared)", "share"] == src["share"].max()
    summ = pd.read_csv(tmp_path / "a" / "summary.csv")          # was header-only for --metric acc
    assert len(summ) == 3 and set(summ["metric"]) == {"acc"} and summ["mean"].notna().all()
    assert "crossed: plate 5 × sample 4" in (tmp_path / "a" / "findings.txt").read_text()
    # one configuration, no factor column at all: inferred, and --factors none says the same
    one = tmp_path / "one.csv"
    _plates(rng, 1).drop(columns="config").to_csv(one, index=False)
    for extra in ([], ["--factors", "none"]):
        out = tmp_path / f"one{len(extra)}"
        assert main(["analyze", str(one), "--metric", "acc", "--seed-cols", "plate,sample", "--out", str(out),
                     *extra]) == 0
        v = pd.read_csv(out / "variance.csv")
        assert {"plate", "sample"} <= set(v[v["scope"] == "seed sources"]["source"])
    capsys.readouterr()
    bad = _plates(rng)
    bad[bad["sample"] == 0].to_csv(csv, index=False)
    assert main(["analyze", str(csv), "--metric", "acc", "--factors", "config", "--seed-cols", "plate,sample"]) == 2
    assert "'sample' take a single value" in capsys.readouterr().err
    bad.assign(acc=np.nan).to_csv(csv, index=False)
    assert main(["analyze", str(csv), "--metric", "acc", "--factors", "config", "--seed-cols", "plate,sample"]) == 2
    assert "no finite value" in capsys.readouterr().err


def test_importance_follows_the_direction_of_a_minimised_metric():
    # the lowest losses are set by a alone, the highest by b: PED-ANOVA's top set must be the low ones
    from sweep.analysis import prepare
    from sweep.analysis.importance import optuna_importance
    rows = [{"config_id": f"{a}-{b}", "a": a, "b": b, "seed_init": s, "seed_order": s, "seed_split": 0,
             "val_loss": 1.0 - 0.8 * (a == 0) + 0.1 * b + 0.001 * s}
            for a in range(6) for b in range(6) for s in range(3)]
    df = pd.DataFrame(rows)
    a = analyze(df, metric="val_loss", factors=["a", "b"], n_boot=50)
    assert not a.higher_is_better
    ped = a.importance[a.importance["evaluator"] == "ped_anova"].set_index("factor")["importance_mean"]
    runs = prepare(df, "val_loss", ["a", "b"])
    low = optuna_importance(runs, direction="minimize")
    want = low[low["evaluator"] == "ped_anova"].set_index("factor")["importance_mean"]
    pd.testing.assert_series_equal(ped, want)
    assert ped["a"] > ped["b"]
    high = optuna_importance(runs, direction="maximize")
    assert high[high["evaluator"] == "ped_anova"].set_index("factor")["importance_mean"]["a"] < ped["a"]
