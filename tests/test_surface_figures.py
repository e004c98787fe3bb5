"""Figures for continuous factors (headless Agg): the axes' content, not only that they render."""
import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from sweep import surface_figures as SF  # noqa: E402
from sweep.analysis import prepare  # noqa: E402
from sweep.analysis.budget import expected_best  # noqa: E402
from sweep.analysis.variance import decompose_fit  # noqa: E402


def _study(C=40, S=6, seed=0, wd=False):
    rng = np.random.default_rng(seed)
    u = rng.uniform(-4, 0, C)
    h = rng.integers(0, 3, C)
    w = rng.uniform(-5, -1, C)
    mu = 0.85 - 0.05 * (u + 2.3) ** 2 + 0.03 * np.array([-1.0, 0.2, 0.8])[h] + (0.02 * (w + 3) if wd else 0)
    y = mu[:, None] + rng.normal(0, 0.02 * (1 + (u < -3))[:, None], (C, S))   # noisier seeds at small lr
    df = pd.DataFrame({"lr": np.repeat(10 ** u, S), "hidden": np.repeat(np.array([3, 8, 32])[h], S),
                       "seed": np.tile(np.arange(S), C), "val_acc": y.ravel()})
    if wd:
        df["wd"] = np.repeat(10 ** w, S)
    factors = ["lr", "hidden"] + (["wd"] if wd else [])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runs = prepare(df, "val_acc", factors, ["seed"])
        variance, fit = decompose_fit(runs, n_boot=60)
    return runs.df, variance, fit


@pytest.fixture(scope="module")
def study():
    return _study()


def test_partial_dependence_on_a_log_axis_with_one_curve_per_level(study):
    df, variance, fit = study
    color = SF.strongest_categorical(fit, variance)
    assert color == "hidden"
    ax = SF.partial_dependence(df, fit, "lr", "val_acc", color, log=True)
    assert ax.get_xscale() == "log"
    assert len(ax.get_lines()) == 3                       # one fitted curve per hidden size
    lo, hi = ax.get_ylim()
    assert lo <= df["val_acc"].min() and hi >= df["val_acc"].max()
    assert hi - lo < 1.2 * (df["val_acc"].max() - df["val_acc"].min())   # the runs' range, not the bands'
    curves = SF.prepare_partial_dependence(fit, "lr", color)
    assert (curves["lo"] <= curves["fit"] + 1e-12).all() and (curves["fit"] <= curves["hi"] + 1e-12).all()
    peak = curves.loc[curves["fit"].idxmax(), "x"]
    assert 10 ** -3.3 < peak < 10 ** -1.3                 # the simulated optimum is at lr = 10^-2.3
    plt.close(ax.figure)


def test_seed_sd_along_the_factor_shows_where_the_seed_matters(study):
    df, variance, fit = study
    ax = SF.seed_sd_along(df, variance, "lr", "val_acc", log=True)
    assert ax.get_xscale() == "log" and ax.get_ylim()[0] == 0
    per, ranges = SF.prepare_seed_sd(df, variance, "lr", "val_acc")
    assert len(per) == 40 and 3 <= len(ranges) <= 6
    assert ranges["sd"].iloc[0] > 1.4 * ranges["sd"].iloc[-1]     # seed sd doubled below lr = 1e-3
    plt.close(ax.figure)


def test_contour_of_two_continuous_factors():
    df, variance, fit = _study(C=60, wd=True, seed=2)
    ax = SF.contour(df, fit, "lr", "wd", "val_acc", logx=True, logy=True)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    grid = SF.prepare_contour(fit, "lr", "wd")
    assert len(grid) == 40 * 40
    at_peak = grid[np.isclose(np.log10(grid["x"]), -2.3, atol=0.2)]
    assert at_peak.sort_values("y")["fit"].iloc[-1] > at_peak.sort_values("y")["fit"].iloc[0]   # wd helps
    plt.close(ax.figure)


def test_expected_best_curve_rises_to_the_best_trial():
    values = np.random.default_rng(0).uniform(0.5, 0.9, 30)
    b = expected_best(values)
    ax = SF.expected_best(b, "val_acc", "random")
    (line,) = ax.get_lines()
    y = line.get_ydata()
    v, N = np.sort(values), len(values)
    i = np.arange(1, N + 1)
    dodge = np.sum(v * ((i / N) ** N - ((i - 1) / N) ** N))   # n draws with replacement (Dodge et al. 2019)
    assert np.all(np.diff(y) >= -1e-12) and y[-1] == pytest.approx(dodge) and y[-1] < values.max()
    assert y[0] == pytest.approx(values.mean())
    plt.close(ax.figure)


def test_contour_does_not_extrapolate_beyond_the_runs():
    df, variance, fit = _study(C=60, wd=True, seed=2)
    ax = SF.contour(df, fit, "lr", "wd", "val_acc", logx=True, logy=True)
    cs = [c for c in ax.get_children() if hasattr(c, "levels")][0]
    assert cs.zmax <= df["val_acc"].max() + 1e-12 and cs.zmin >= df["val_acc"].min() - 1e-12
    assert "log scale" in ax.get_xlabel() and "log scale" in ax.get_ylabel()
    plt.close(ax.figure)
