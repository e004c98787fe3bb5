"""Tests of ``sweep.analysis.variance`` against simulations with known components, exact hand-made
cases and statsmodels. Definitions: ``../shared/STATISTICS.md`` sections 1-4."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.formula.api import ols
from statsmodels.stats.anova import anova_lm

from sweep.analysis.table import AnalysisError, prepare
from sweep.analysis import resample
from sweep.analysis import variance as V
from sweep.analysis.variance import COLUMNS, decompose, factorial_ss, optuna_importance

X = " \u00d7 "  # the interaction separator in source names: "a × b"

# Fixed effects of a 3 x 4 grid. alpha and beta are centred, gamma is double-centred (rows and
# columns sum to 0), so with every cell weighted equally the population variance each source adds is
# the mean of its squared effects over the 12 cells: V_A = mean(alpha^2) = 2/3, V_B = mean(beta^2) =
# 0.3125, V_AB = mean(gamma^2) = 0.14, and sigma^2 = 1 for the seeds. Population (S -> infinity)
# shares are V_X / (V_A + V_B + V_AB + sigma^2). The expected observed share at S seeds differs by
# df_X * sigma^2 / N in the numerator (E[SS_X] = N V_X + df_X sigma^2), below 0.1 percentage point at
# S = 1000, so the population shares are the truth the estimates are checked against.
ALPHA = np.array([-1.0, 0.0, 1.0])
BETA = np.array([-0.75, -0.25, 0.25, 0.75])
_G = np.array([[1.0, -1.0, 0.5, -0.5], [-0.5, 0.5, -1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]) * 0.6
GAMMA = _G - _G.mean(0, keepdims=True) - _G.mean(1, keepdims=True) + _G.mean()


def grid_table(mu: np.ndarray, S: int, sd, rng: np.random.Generator) -> pd.DataFrame:
    """Replicate-design runs table for configuration means ``mu (La, Lb)``: factors ``a, b``, seed
    tuples ``(s, s, 0)``, metric ``y``; ``sd`` a scalar or one seed sd per level of ``a``."""
    a, b, s = np.meshgrid(np.arange(mu.shape[0]), np.arange(mu.shape[1]), np.arange(S), indexing="ij")
    sd_a = np.broadcast_to(np.asarray(sd, dtype=float), (mu.shape[0],))
    y = mu[a, b] + rng.normal(size=a.shape) * sd_a[a]
    return pd.DataFrame({"a": a.ravel(), "b": b.ravel(), "seed_init": s.ravel(), "seed_order": s.ravel(),
                         "seed_split": 0, "y": y.ravel()})


def rows(out: pd.DataFrame, scope: str = "global", method: str | None = None) -> pd.DataFrame:
    sel = out["scope"] == scope
    if method is not None:
        sel &= out["method"] == method
    return out[sel].set_index("source")


# ------------------------------------------------------------------------- known components


def test_factorial_shares_recover_known_components():
    rng = np.random.default_rng(0)
    mu = ALPHA[:, None] + BETA[None, :] + GAMMA
    runs = prepare(grid_table(mu, 1000, 1.0, rng), "y", ["a", "b"])
    out = decompose(runs, n_boot=0, conditional=False)
    assert list(out.columns) == COLUMNS
    va, vb, vab, s2 = (ALPHA ** 2).mean(), (BETA ** 2).mean(), (GAMMA ** 2).mean(), 1.0
    tot = va + vb + vab + s2
    eta = rows(out, method="eta2")
    for src, truth in [("a", va), ("b", vb), ("a" + X + "b", vab), ("seed (residual)", s2),
                       ("between configurations", va + vb + vab), ("seed (within configuration)", s2)]:
        assert eta.loc[src, "share"] == pytest.approx(truth / tot, abs=0.02), src
    # component: sigma2_config = sum_c (mu_c - mu)^2 / (C - 1) for fixed configurations
    s2cfg = ((mu - mu.mean()) ** 2).sum() / (mu.size - 1)
    comp = rows(out, method="component")
    assert comp.loc["reliability (ICC)", "share"] == pytest.approx(s2cfg / (s2cfg + s2), abs=0.02)
    assert comp.loc["between configurations", "share"] == comp.loc["reliability (ICC)", "share"]


def _exact_var(rng: np.random.Generator, n: int, var: float) -> np.ndarray:
    x = rng.normal(size=n)
    x -= x.mean()
    return x * np.sqrt(var / x.var(ddof=1))


# ------------------------------------------------------------------ exact sums of squares


def _three_factor_table(rng: np.random.Generator, S: int = 5) -> pd.DataFrame:
    a, b, c, s = np.meshgrid(np.arange(3), np.arange(2), np.arange(4), np.arange(S), indexing="ij")
    y = 0.5 * a + np.sin(b + c) + 0.3 * a * b * c + rng.normal(size=a.shape)
    return pd.DataFrame({"a": a.ravel(), "b": b.ravel(), "c": c.ravel(), "seed_init": s.ravel(),
                         "seed_order": s.ravel(), "seed_split": 7, "y": y.ravel()})


def test_factorial_ss_matches_statsmodels_two_factors():
    rng = np.random.default_rng(3)
    df = grid_table(ALPHA[:, None] + BETA[None, :] + GAMMA, 6, 1.0, rng)
    ss = factorial_ss(prepare(df, "y", ["a", "b"])).set_index("source")
    sm = anova_lm(ols("y ~ C(a)*C(b)", df).fit(), typ=2)
    assert ss.loc["a", "ss"] == pytest.approx(sm.loc["C(a)", "sum_sq"], abs=1e-9)
    assert ss.loc["b", "ss"] == pytest.approx(sm.loc["C(b)", "sum_sq"], abs=1e-9)
    assert ss.loc["a" + X + "b", "ss"] == pytest.approx(sm.loc["C(a):C(b)", "sum_sq"], abs=1e-9)
    assert ss.loc["seed (residual)", "ss"] == pytest.approx(sm.loc["Residual", "sum_sq"], abs=1e-9)
    assert ss.loc["a" + X + "b", "df"] == 6 and ss.loc["seed (residual)", "df"] == 12 * 5
    assert "higher-order interactions" not in ss.index
    assert ss.drop("total")["ss"].sum() == pytest.approx(ss.loc["total", "ss"], abs=1e-9)


def test_factorial_ss_matches_statsmodels_three_factors():
    df = _three_factor_table(np.random.default_rng(4))
    ss = factorial_ss(prepare(df, "y", ["a", "b", "c"])).set_index("source")
    sm = anova_lm(ols("y ~ C(a)*C(b)*C(c)", df).fit(), typ=2)
    pairs = {"a": "C(a)", "b": "C(b)", "c": "C(c)", "a" + X + "b": "C(a):C(b)", "a" + X + "c": "C(a):C(c)",
             "b" + X + "c": "C(b):C(c)", "higher-order interactions": "C(a):C(b):C(c)",
             "seed (residual)": "Residual"}
    for ours, theirs in pairs.items():
        assert ss.loc[ours, "ss"] == pytest.approx(sm.loc[theirs, "sum_sq"], abs=1e-9), ours
        assert ss.loc[ours, "df"] == sm.loc[theirs, "df"], ours
    assert ss.drop("total")["ss"].sum() == pytest.approx(ss.loc["total", "ss"], abs=1e-9)


def test_factorial_ss_refuses_unbalanced():
    df = _three_factor_table(np.random.default_rng(5)).iloc[1:]
    with pytest.raises(AnalysisError, match="balanced"):
        factorial_ss(prepare(df, "y", ["a", "b", "c"]))


def test_balanced_shares_add_to_one():
    for df, factors in [(grid_table(ALPHA[:, None] + BETA + GAMMA, 5, 1.0, np.random.default_rng(6)), ["a", "b"]),
                        (_three_factor_table(np.random.default_rng(7)), ["a", "b", "c"])]:
        out = decompose(prepare(df, "y", factors), n_boot=50, conditional=False)
        eta = rows(out, method="eta2")
        fact = eta.drop(["between configurations", "seed (within configuration)"])
        assert abs(fact["share"].sum() - 1.0) < 1e-12
        assert abs(eta.loc["between configurations", "share"]
                   + eta.loc["seed (within configuration)", "share"] - 1.0) < 1e-12
        assert ("higher-order interactions" in fact.index) == (len(factors) >= 3)
        assert fact[["ci_low", "ci_high"]].notna().all().all()


def test_single_factor_main_effect_equals_between():
    df = grid_table(ALPHA[:, None] + np.zeros((1, 1)), 10, 1.0, np.random.default_rng(8))
    out = decompose(prepare(df.drop(columns="b"), "y", ["a"]), n_boot=20)
    eta = rows(out, method="eta2")
    assert eta.loc["a", "share"] == pytest.approx(eta.loc["between configurations", "share"], abs=1e-12)
    # conditional on the only factor: every level is one configuration
    lvl = rows(out, "a=0")
    assert lvl.loc["seed (within configuration)", "share"] == 1.0
    assert lvl.loc["seed variance", "method"] == "variance"
    y0 = df.loc[df["a"] == 0, "y"]
    assert lvl.loc["seed variance", "share"] == pytest.approx(y0.var(ddof=1), rel=1e-12)
    assert lvl.loc["seed sd", "share"] == pytest.approx(y0.std(ddof=1), rel=1e-12)
    assert lvl.loc["seed sd", "method"] == "sd"


# ------------------------------------------------------------------------- unbalanced designs


def test_unbalanced_uses_type_ii_with_warning():
    rng = np.random.default_rng(9)
    df = grid_table(ALPHA[:, None] + BETA + GAMMA, 8, 1.0, rng)
    df.loc[[3, 40, 41], "y"] = np.nan            # diverged runs: excluded and counted
    df = df.drop(index=[70])                       # a run that never finished
    runs = prepare(df, "y", ["a", "b"])
    assert not runs.balanced
    with pytest.warns(UserWarning, match="unbalanced"):
        out = decompose(runs, n_boot=100)
    fact = out[(out["scope"] == "global") & (out["method"] == "typeII")].set_index("source")
    assert list(fact.index) == ["a", "b", "a" + X + "b", "seed (residual)"]
    assert fact["note"].str.contains("unbalanced").all()
    assert fact["note"].str.contains("4 of 96 runs missing").all()
    assert fact["note"].str.contains("need not add to 1").all()
    assert fact[["ci_low", "ci_high"]].notna().all().all()
    # point estimates are statsmodels' Type II SS over the total SS
    d = runs.df
    sm = anova_lm(ols("y ~ C(a)*C(b)", d).fit(), typ=2)
    total = ((d["y"] - d["y"].mean()) ** 2).sum()
    assert fact.loc["a", "share"] == pytest.approx(sm.loc["C(a)", "sum_sq"] / total, rel=1e-9)
    assert fact.loc["a" + X + "b", "share"] == pytest.approx(sm.loc["C(a):C(b)", "sum_sq"] / total, rel=1e-9)
    # the one-way components use n0 for unequal group sizes
    comp = rows(out, method="component")
    assert "n0" in comp.loc["between configurations", "note"]
    n = d.groupby("config").size().to_numpy(float)
    N, C = n.sum(), len(n)
    m = d.groupby("config")["y"].mean()
    ssb = (d.groupby("config").size() * (m - d["y"].mean()) ** 2).sum()
    ssw = ((d["y"] - d.groupby("config")["y"].transform("mean")) ** 2).sum()
    n0 = (N - (n ** 2).sum() / N) / (C - 1)
    s2c = max(0.0, (ssb / (C - 1) - ssw / (N - C)) / n0)
    icc = s2c / (s2c + ssw / (N - C))
    assert comp.loc["reliability (ICC)", "share"] == pytest.approx(icc, rel=1e-9)


def test_weighted_type_ii_matches_statsmodels_three_factors():
    # the bootstrap path recomputes Type II SS by weighted least squares; its unit-weight value must
    # be statsmodels' (model with all two-way interactions)
    df = _three_factor_table(np.random.default_rng(10)).iloc[3:]
    runs = prepare(df, "y", ["a", "b", "c"])
    fac = V._factors(runs)
    Y = runs.matrix()
    ss, ssr2, _ = V._typeII(Y, np.ones((1, Y.shape[1])), fac)
    fit = ols("y ~ (C(a) + C(b) + C(c))**2", runs.df).fit()
    sm = anova_lm(fit, typ=2)
    for T, name in [((0,), "C(a)"), ((1,), "C(b)"), ((2,), "C(c)"), ((0, 1), "C(a):C(b)"),
                    ((0, 2), "C(a):C(c)"), ((1, 2), "C(b):C(c)")]:
        assert ss[T][0] == pytest.approx(sm.loc[name, "sum_sq"], rel=1e-9, abs=1e-9), name
    assert ssr2[0] == pytest.approx(fit.ssr, rel=1e-9)
    # doubling every weight doubles every SS
    ss2, _, _ = V._typeII(Y, np.full((1, Y.shape[1]), 2.0), fac)
    assert ss2[(0, 1)][0] == pytest.approx(2 * ss[(0, 1)][0], rel=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = decompose(runs, n_boot=50, conditional=False)
    assert "higher-order interactions" in set(out["source"])


# ------------------------------------------------------------------------------- ICC


def test_icc_zero_config_effect_is_truncated():
    rng = np.random.default_rng(11)
    noise = rng.normal(size=(6, 10))
    noise -= noise.mean(axis=1, keepdims=True)      # identical configuration means: MS_between = 0
    df = pd.DataFrame({"a": np.repeat(np.arange(6), 10), "seed_init": np.tile(np.arange(10), 6),
                       "seed_order": np.tile(np.arange(10), 6), "seed_split": 0, "y": noise.ravel()})
    out = decompose(prepare(df, "y", ["a"]), n_boot=50)
    comp = rows(out, method="component")
    assert comp.loc["reliability (ICC)", "share"] == 0.0
    assert "truncated" in comp.loc["reliability (ICC)", "note"]
    assert comp.loc["seed (within configuration)", "share"] == 1.0


def test_icc_zero_seed_noise_is_one():
    df = grid_table(ALPHA[:, None] + BETA + GAMMA, 5, 0.0, np.random.default_rng(12))
    out = decompose(prepare(df, "y", ["a", "b"]), n_boot=20)
    comp = rows(out, method="component")
    assert comp.loc["reliability (ICC)", "share"] == 1.0
    assert rows(out, method="eta2").loc["between configurations", "share"] == pytest.approx(1.0, abs=1e-12)


# ----------------------------------------------------------------------- seed sources, scopes


def test_replicate_design_row():
    df = grid_table(ALPHA[:, None] + BETA + GAMMA, 5, 1.0, np.random.default_rng(13))
    out = decompose(prepare(df, "y", ["a", "b"]), n_boot=10)
    seed = rows(out, "seed sources")
    assert list(seed.index) == ["seed (init and order together)"]
    assert seed["share"].iloc[0] == 1.0 and seed["method"].iloc[0] == "component"
    assert seed["note"].iloc[0] == V.REPLICATE_NOTE
    assert "init and order were drawn together" in seed["note"].iloc[0]
    assert "split was held fixed" in seed["note"].iloc[0]


def test_conditional_seed_sd_larger_where_noise_is_larger():
    # seed sd 0.5, 0.5, 2.0 at the three levels of a; a has the largest effect
    rng = np.random.default_rng(14)
    df = grid_table(3 * ALPHA[:, None] + BETA + GAMMA, 30, [0.5, 0.5, 2.0], rng)
    out = decompose(prepare(df, "y", ["a", "b"]), n_boot=100)
    scopes = [s for s in out["scope"].unique() if s.startswith("a=")]
    assert scopes == ["a=0", "a=1", "a=2"]
    sd = {s: rows(out, s).loc["seed sd", "share"] for s in scopes}
    assert sd["a=2"] > 3 * max(sd["a=0"], sd["a=1"])
    assert sd["a=2"] == pytest.approx(2.0, rel=0.1) and sd["a=0"] == pytest.approx(0.5, rel=0.1)
    lvl = rows(out, "a=0")
    assert {"between configurations", "seed (within configuration)", "b", "seed sd"} <= set(lvl.index)
    assert lvl.loc["between configurations", "share"] + lvl.loc["seed (within configuration)", "share"] \
        == pytest.approx(1.0, abs=1e-12)
    assert lvl.loc["seed sd", "ci_low"] < lvl.loc["seed sd", "share"] < lvl.loc["seed sd", "ci_high"]


def test_bootstrap_is_reproducible_and_keeps_pairing():
    df = grid_table(ALPHA[:, None] + BETA + GAMMA, 10, 1.0, np.random.default_rng(15))
    runs = prepare(df, "y", ["a", "b"])
    a, b = decompose(runs, n_boot=200, seed=3), decompose(runs, n_boot=200, seed=3)
    pd.testing.assert_frame_equal(a, b)
    # a shared seed effect (same for every configuration) cancels from every configuration
    # difference; with pairing kept, the between-configuration SS does not move across draws
    shared = np.random.default_rng(16).normal(0, 5, size=10)
    Y = np.tile(np.arange(12.0)[:, None], (1, 10)) + shared[None, :]
    W = resample.seed_weights(10, 100, np.random.default_rng(0))
    ow = V._oneway(Y, W)
    np.testing.assert_allclose(ow.ss_between, 10 * ((np.arange(12.0) - 5.5) ** 2).sum(), rtol=1e-9)


# ----------------------------------------------------------------------------- coverage


def _coverage_truths(mu: np.ndarray, S: int) -> dict[tuple[str, str], float]:
    """What each CI targets, for a balanced a x b grid with seed sd 1: eta2 rows the expected observed
    share at S seeds, E[SS_X] / E[SS_total] with E[SS_X] = S * sum over cells of effect_X^2 + df_X
    (sigma^2 = 1) and E[SS_total] = S * sum (mu_c - mu)^2 + (N - 1); component rows the component
    share sigma2_config / (sigma2_config + 1), sigma2_config = sum (mu_c - mu)^2 / (C - 1)."""
    C, N = mu.size, mu.size * S
    ss = V._term_ss(mu[None], [(0,), (1,), (0, 1)])
    e_tot = S * ((mu - mu.mean()) ** 2).sum() + (N - 1)
    s2cfg = ((mu - mu.mean()) ** 2).sum() / (C - 1)
    return {("eta2", "a"): (S * ss[(0,)][0] + 2) / e_tot, ("eta2", "b"): (S * ss[(1,)][0] + 3) / e_tot,
            ("eta2", "a" + X + "b"): (S * ss[(0, 1)][0] + 6) / e_tot,
            ("eta2", "seed (residual)"): C * (S - 1) / e_tot,
            ("component", "reliability (ICC)"): s2cfg / (s2cfg + 1.0)}


def test_bootstrap_coverage_of_the_targeted_truths():
    # Fast version of tools/validate_variance.py (which runs 1000 simulations x 1000 draws and reports
    # 0.93-0.97 for every global row). eta2 rows: basic bootstrap on the logit scale pivoting on the
    # resampled seeds' expected observed share, covering E[SS_X] / E[SS_total] at this S (not the
    # S -> infinity share); ICC: basic bootstrap of the untruncated share pivoting on the resampled
    # population's components, covering the component share. Both expanded for S seeds. Design: the
    # validate script's effect-to-noise ratio (3 x 4 grid, 20 seeds, between-configuration share
    # ~0.5). 150 simulations x 200 draws, five rows: the pooled coverage has a Monte Carlo SE of about
    # 1 point (rows are correlated); with 200 draws it is ~0.945 (measured over 2000 simulations).
    S, sims = 20, 150
    mu = ALPHA[:, None] + BETA + GAMMA
    truth = _coverage_truths(mu, S)
    hits = {k: 0 for k in truth}
    for i in range(sims):
        df = grid_table(mu, S, 1.0, np.random.default_rng(1000 + i))
        out = decompose(prepare(df, "y", ["a", "b"]), n_boot=200, seed=i, conditional=False)
        g = out[out["scope"] == "global"].set_index(["method", "source"])
        for k, t in truth.items():
            hits[k] += g.loc[k, "ci_low"] <= t <= g.loc[k, "ci_high"]
    cov = {k: h / sims for k, h in hits.items()}
    pooled = sum(hits.values()) / (sims * len(hits))
    print("coverage:", {f"{m} {s}": round(c, 3) for (m, s), c in cov.items()}, f"pooled {pooled:.3f}")
    assert 0.91 <= pooled <= 0.985
    assert all(0.87 <= c <= 1.0 for c in cov.values()), cov


def test_interval_kinds_are_stated_and_bias_corrected():
    # every row with a CI says which interval it is; the eta2 interval of the between share sits below
    # the percentile interval of the same draws (resampling re-adds seed noise; the pivot removes it)
    df = grid_table(ALPHA[:, None] + BETA + GAMMA, 12, 1.0, np.random.default_rng(21))
    runs = prepare(df, "y", ["a", "b"])
    out = decompose(runs, n_boot=400, seed=1)
    with_ci = out[out["ci_low"].notna()]
    assert with_ci["note"].str.contains("CI: ").all()
    g = rows(out, method="eta2")
    assert "basic bootstrap (logit scale" in g.loc["between configurations", "note"]
    assert "percentile" in rows(out, "a=0").loc["seed sd", "note"]
    assert "basic bootstrap of the untruncated share" in rows(out, method="component").loc["reliability (ICC)", "note"]
    # complementary rows get complementary intervals
    b, w = g.loc["between configurations"], g.loc["seed (within configuration)"]
    assert b["ci_low"] == pytest.approx(1 - w["ci_high"], abs=1e-9)
    assert b["ci_high"] == pytest.approx(1 - w["ci_low"], abs=1e-9)
    Y = runs.matrix()
    W = resample.seed_weights(Y.shape[1], 400, np.random.default_rng(1))
    ow = V._oneway(Y, W)
    pct = np.percentile(ow.ss_between[1:] / ow.ss_total[1:], [2.5, 97.5])
    assert b["ci_low"] < pct[0] and b["ci_high"] < pct[1]
    assert b["ci_low"] <= b["share"] <= b["ci_high"]
    # Hesterberg's expanded levels for 20 seeds
    lo, hi = V._levels(20)
    assert lo == pytest.approx(1.59, abs=0.02) and hi == pytest.approx(98.41, abs=0.02)
    assert V._levels(None) == (2.5, 97.5)


# ----------------------------------------------------------------------------- optuna


def test_optuna_importance_ranks_the_larger_effect_first():
    rng = np.random.default_rng(17)
    # a: 4 numeric levels spanning 1000x (log distribution), large effect; b: 4 categories, small effect
    lr = np.array([1e-4, 1e-3, 1e-2, 1e-1])
    mu = np.array([0.0, 1.5, 3.0, 4.5])[:, None] + np.array([0.0, 0.2, -0.1, 0.1])[None, :]
    df = grid_table(mu, 5, 0.1, rng)
    df["lr"] = lr[df["a"]]
    df["act"] = np.array(["relu", "tanh", "gelu", "sigmoid"])[df["b"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        imp = optuna_importance(prepare(df, "y", ["lr", "act"]), repeats=3, seed=0)
    assert list(imp.columns) == V.IMPORTANCE_COLUMNS
    for ev in ["fanova", "ped_anova"]:
        sub = imp[imp["evaluator"] == ev].set_index("factor")
        assert sub.loc["lr", "importance_mean"] > sub.loc["act", "importance_mean"], ev
    fan = imp[imp["evaluator"] == "fanova"]
    assert (fan["repeats"] == 3).all() and fan["importance_sd"].notna().all()
    # too little to compute: one configuration
    one = prepare(df[(df["a"] == 0) & (df["b"] == 0)], "y", [])
    assert optuna_importance(one).empty
    assert optuna_importance(prepare(df[(df["a"] == 0) & (df["b"] == 0)], "y", ["lr", "act"])).empty
