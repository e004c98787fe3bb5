"""summary.py on tiny hand-made tables with exact answers."""
import math

import numpy as np
import pandas as pd
import pytest

from sweep.analysis import AnalysisError, prepare
from sweep.analysis.summary import bootstrap_mean_ci, describe, noise_floor, summarize


def test_percentiles_and_iqm_on_known_array():
    s = describe([1, 2, 3, 4, 5], n_boot=50)
    assert (s["n"], s["n_missing"]) == (5, 0)
    assert s["mean"] == 3 and s["min"] == 1 and s["max"] == 5
    assert s["sd"] == pytest.approx(math.sqrt(2.5))
    # linear interpolation between order statistics: p = 1 + q * (n - 1)
    assert (s["p5"], s["p25"], s["p50"], s["p75"], s["p95"]) == pytest.approx((1.2, 2, 3, 4, 4.8))
    # IQM of 8 values drops 2 from each end: mean(2, 3, 4, 5)
    s = describe([0, 1, 2, 3, 4, 5, 6, 100], n_boot=50)
    assert s["iqm"] == pytest.approx(3.5)
    assert s["mean"] == pytest.approx(121 / 8)


def test_non_finite_values_are_counted_and_excluded():
    s = describe([1.0, np.nan, 3.0, np.inf], n_boot=50)
    assert (s["n"], s["n_missing"], s["mean"]) == (2, 2, 2.0)
    s = describe([np.nan], n_boot=50)
    assert s["n"] == 0 and np.isnan(s["mean"]) and np.isnan(s["ci_low"])
    assert np.isnan(describe([7.0], n_boot=50)["sd"])


def test_noise_floor_formula():
    assert noise_floor(0.75, 300) == pytest.approx(0.025)
    assert noise_floor(0.5, 100) == pytest.approx(0.05)
    assert noise_floor(1.0, 10) == 0.0
    assert np.isnan(noise_floor(0.5, 0)) and np.isnan(noise_floor(1.5, 10)) and np.isnan(noise_floor(np.nan, 10))


def test_bootstrap_ci_contains_mean_and_is_deterministic():
    x = np.array([0.1, 0.4, 0.35, 0.8, 0.62, 0.5, 0.27])
    lo, hi = bootstrap_mean_ci(x, n_boot=1000, seed=3)
    assert lo < x.mean() < hi
    assert (lo, hi) == bootstrap_mean_ci(x, n_boot=1000, seed=3)
    assert (lo, hi) != bootstrap_mean_ci(x, n_boot=1000, seed=4)
    assert bootstrap_mean_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
    assert all(np.isnan(bootstrap_mean_ci([])))


def _table():
    return pd.DataFrame({
        "lr": [0.1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01, 0.01],
        "seed_init": [0, 1, 2, 3, 0, 1, 2, 3],
        "val_acc": [0.7, 0.8, 0.75, 0.75, 0.5, 0.6, np.nan, 0.55],
        "val_loss": [0.5, 0.4, 0.45, 0.45, 0.9, 0.8, np.nan, 0.85],
        "n_val": [300] * 8,
    })


def test_summarize_rows_columns_and_floor():
    df = _table()
    out = summarize(df, ["lr"], n_boot=200)
    assert list(out.columns) == ["config", "lr", "metric", "n", "n_missing", "mean", "sd", "min", "p5", "p25",
                                 "p50", "p75", "p95", "max", "iqm", "ci_low", "ci_high", "noise_floor",
                                 "sd_over_floor"]
    assert list(out["metric"]) == ["val_acc", "val_loss"] * 2  # only the columns present, in default order
    # labels are the ones table.prepare builds
    assert list(dict.fromkeys(out["config"])) == prepare(df, "val_loss", ["lr"]).configs
    acc = out[(out["lr"] == 0.1) & (out["metric"] == "val_acc")].iloc[0]
    assert acc["n"] == 4 and acc["mean"] == pytest.approx(0.75)
    assert acc["noise_floor"] == pytest.approx(0.025)
    assert acc["sd"] == pytest.approx(math.sqrt(0.005 / 3))
    assert acc["sd_over_floor"] == pytest.approx(math.sqrt(0.005 / 3) / 0.025)
    loss = out[(out["lr"] == 0.1) & (out["metric"] == "val_loss")].iloc[0]
    assert np.isnan(loss["noise_floor"]) and np.isnan(loss["sd_over_floor"])
    low = out[(out["lr"] == 0.01) & (out["metric"] == "val_acc")].iloc[0]
    assert (low["n"], low["n_missing"]) == (3, 1)


def test_summarize_without_eval_size_and_unknown_column():
    df = _table().drop(columns="n_val")
    out = summarize(df, ["lr"], ["val_acc"], n_boot=50)
    assert out["noise_floor"].isna().all() and len(out) == 2
    with pytest.raises(AnalysisError):
        summarize(df, ["lr"], ["test_acc"])
    with pytest.raises(AnalysisError):
        summarize(df, ["width"])
    assert list(summarize(df, [], ["val_acc"], n_boot=50)["config"]) == ["all runs"]


def test_describe_groups_equals_describe_of_each_group():
    """The vectorised per-group summary is :func:`describe` of each group, bootstrap CI included."""
    from sweep.analysis.summary import describe_groups
    rng = np.random.default_rng(3)
    sizes = [5, 5, 8, 1, 3]
    values = np.concatenate([rng.normal(k, 1 + k, n) for k, n in enumerate(sizes)])
    values[2] = np.nan                                   # a missing run
    code = np.repeat(np.arange(len(sizes)), sizes)
    table = describe_groups(values, code, len(sizes), n_boot=200, seed=4)
    for g in range(len(sizes)):
        one = describe(values[code == g], n_boot=200, seed=4)
        for col in table.columns:
            a, b = float(table.iloc[g][col]), float(one[col])
            assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12, abs=1e-12), (g, col)
