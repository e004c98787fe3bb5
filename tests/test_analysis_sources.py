"""Tests of ``sweep.analysis.sources``: seed layouts under any column names, the mixed model of
configurations x seed sources (shared and configuration-specific parts) against known components and
textbook expected mean squares, the generalized intervals and the seed-design planner."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sweep.analysis import AnalysisError, prepare
from sweep.analysis import sources as SR
from sweep.analysis.variance import decompose
from sweep.findings import attribution

X = " \u00d7 "


def _exact_var(rng: np.random.Generator, n: int, var: float) -> np.ndarray:
    x = rng.normal(size=n)
    x -= x.mean()
    return x * np.sqrt(var / x.var(ddof=1))


def crossed_table(rng, C=20, levels=(8, 8, 6), shared=None, specific=None, error=1.0, cols=SR.SOURCE_NAMES):
    """Runs of C configurations on every init x order x split tuple; ``shared`` / ``specific`` map a
    source (0, 1, 2) to the variance of its shared effect (the same for every configuration, exact
    sample variance) / its per-configuration effect (exact sample variance in each configuration)."""
    grids = np.meshgrid(*[np.arange(n) for n in levels], indexing="ij")
    common = sum(_exact_var(rng, levels[j], v)[grids[j]] for j, v in (shared or {}).items())
    names = list(cols)
    frames = []
    for c in range(C):
        own = sum(_exact_var(rng, levels[j], v)[grids[j]] for j, v in (specific or {}).items())
        y = 0.3 * c + common + own + rng.normal(0, np.sqrt(error), grids[0].shape)
        frames.append(pd.DataFrame({"lr": c, **{names[j]: grids[j].ravel() for j in range(3)}, "y": y.ravel()}))
    return pd.concat(frames, ignore_index=True)


def rows(out, scope="seed sources"):
    return out[out["scope"] == scope].set_index("source")


# ------------------------------------------------------------------------------------ layouts

def test_layouts_under_any_names():
    rng = np.random.default_rng(0)
    df = crossed_table(rng, C=3, levels=(3, 2, 2), shared={0: 1.0}, cols=["plate", "sample", "day"])
    d = SR.seed_design(prepare(df, "y", ["lr"], ["plate", "sample", "day"]))
    assert (d.kind, d.names, d.n_levels) == ("crossed", ["plate", "sample", "day"], [3, 2, 2])
    assert d.layout == "crossed: plate 3 × sample 2 × day 2"
    # sample nested in plate: labels unique across plates, 4 per plate
    nest = df.assign(sample=df["plate"] * 10 + df["sample"] * 2 + df["day"]).drop(columns="day")
    d = SR.seed_design(prepare(nest, "y", ["lr"], ["plate", "sample"]))
    assert (d.kind, d.parent, d.n_levels) == ("nested", [None, 0], [3, 4])
    assert d.source_label(1) == "sample within plate"
    # two columns that change together (a bijection of labels) are one source: a replicate design
    rep = df[(df["sample"] == 0) & (df["day"] == 0)].assign(b=lambda t: t["plate"] + 100)
    d = SR.seed_design(prepare(rep, "y", ["lr"], ["plate", "b"]))
    assert (d.kind, d.columns) == ("replicate", [("plate", "b")])


def test_bad_seed_columns_are_refused_by_name():
    rng = np.random.default_rng(1)
    df = crossed_table(rng, C=2, levels=(3, 3, 2), cols=["a", "b", "c"])
    with pytest.raises(AnalysisError, match="'c'.*single value"):
        prepare(df[df["c"] == 0], "y", ["lr"], ["a", "b", "c"])
    part = df[(df["a"] + df["b"]) % 2 == 0]          # not a crossing, not a nesting
    with pytest.raises(AnalysisError, match="seed columns a, b.*no layout"):
        prepare(part[part["c"] == 0].drop(columns="c"), "y", ["lr"], ["a", "b"])
    with pytest.raises(AnalysisError, match="no finite value"):
        prepare(df.assign(y=np.nan), "y", ["lr"], ["a", "b", "c"])


# ------------------------------------------------------------------------------- mixed model

def test_shared_and_specific_parts_recover_known_components():
    # split shared by every configuration (var 3), init specific to each configuration (var 2), order
    # shared (var 1), error 1: shares of the seed variance 3/7, 2/7, 1/7, 1/7, everything else 0
    rng = np.random.default_rng(2)
    df = crossed_table(rng, shared={2: 3.0, 1: 1.0}, specific={0: 2.0}, levels=(8, 8, 6))
    out = decompose(prepare(df, "y", ["lr"]), n_boot=50, conditional=False)
    seed = rows(out)
    truth = {"split (shared)": 3 / 7, "init" + X + "configuration": 2 / 7, "order (shared)": 1 / 7,
             "residual (configuration × init × order × split interaction and error)": 1 / 7,
             "init (shared)": 0.0, "order" + X + "configuration": 0.0, "split" + X + "configuration": 0.0,
             "interactions of seed sources (shared)": 0.0, "interactions of seed sources" + X + "configuration": 0.0}
    assert set(seed.index) == set(truth)
    for src, t in truth.items():
        assert seed.loc[src, "share"] == pytest.approx(t, abs=0.025), src
    assert seed["share"].sum() == pytest.approx(1.0, abs=1e-12)
    assert (seed["ci_low"] <= seed["share"] + 1e-12).all() and (seed["share"] <= seed["ci_high"] + 1e-12).all()
    assert "generalized confidence interval" in seed.loc["split (shared)", "note"]
    # shared effects cancel between configurations: the global component row uses the mixed model
    comp = out[(out["scope"] == "global") & (out["method"] == "component")].set_index("source")
    theta = (0.3 ** 2) * np.var(np.arange(20), ddof=1)
    assert comp.loc["reliability (ICC)", "share"] == pytest.approx(theta / (theta + 7.0), abs=0.03)
    assert "mixed model" in comp.loc["reliability (ICC)", "note"]


def test_components_exact_without_noise():
    # the same shared effects in every configuration, nothing else: each shared row is the source's
    # sample variance, every configuration-specific row and the residual exactly 0
    ui, uo, us = np.array([0.0, 1.0, 3.0, -1.0]), np.array([2.0, -2.0, 0.5]), np.array([1.0, -1.0])
    A = ui[:, None, None] + uo[None, :, None] + us[None, None, :]
    Y = np.stack([A.ravel() + c for c in range(3)])
    d = SR.SeedDesign("crossed", ["init", "order", "split"], [], np.array(np.unravel_index(np.arange(24), (4, 3, 2))).T,
                      [4, 3, 2], [None, None, None])
    fit = SR.fit_mixed(Y, d)
    comps = dict(zip(fit.structure.terms, fit.comps))
    assert comps[frozenset({1})] == pytest.approx(ui.var(ddof=1))
    assert comps[frozenset({2})] == pytest.approx(uo.var(ddof=1))
    assert comps[frozenset({3})] == pytest.approx(us.var(ddof=1))
    assert all(v == 0.0 for t, v in comps.items() if len(t) > 1)
    assert fit.theta == pytest.approx(np.var([0.0, 1.0, 2.0], ddof=1))


def test_expected_mean_squares_are_the_textbook_ones():
    # two crossed random sources A (a levels), B (b levels), one configuration: E[MS_A] = b s2_A + s2_AB,
    # E[MS_B] = a s2_B + s2_AB, E[MS_AB] = s2_AB (Montgomery, two-factor random model, n = 1)
    st = SR._structure(1, [4, 3], [None, None])
    assert st.terms == [frozenset({0}), frozenset({1}), frozenset({0, 1})]
    np.testing.assert_array_equal(st.K, [[3, 0, 1], [0, 4, 1], [0, 0, 1]])
    np.testing.assert_array_equal(st.df, [3, 2, 6])
    # B nested in A, configurations crossed: A, B(A), c x A, c x B(A) = residual (C = 5)
    st = SR._structure(5, [4, 3], [None, 0])
    assert st.terms == [frozenset({1}), frozenset({0, 1}), frozenset({1, 2}), frozenset({0, 1, 2})]
    np.testing.assert_array_equal(st.df, [3, 12, 8, 32])
    np.testing.assert_array_equal(st.K, [[15, 3, 5, 1], [0, 3, 0, 1], [0, 0, 5, 1], [0, 0, 0, 1]])
    assert (st.fixed_df, st.fixed_k) == (4, 12.0)


def test_noncentrality_pivot_covers_the_truth():
    rng = np.random.default_rng(3)
    df, lam = 3, 12.0
    q = stats.ncx2.rvs(df, lam, size=150, random_state=rng)
    draws = SR.noncentrality_pivots(np.repeat(q[:, None], 400, axis=1), df, rng)
    lo, hi = np.percentile(draws, [2.5, 97.5], axis=1)
    cover = np.mean((lo <= lam) & (lam <= hi))
    assert 0.88 <= cover <= 1.0
    assert np.all(SR.noncentrality_pivots(np.zeros(50), df, rng) == 0.0)


def test_one_configuration_and_foreign_names_get_the_decomposition():
    rng = np.random.default_rng(4)
    df = crossed_table(rng, C=1, levels=(6, 5, 4), shared={0: 2.0, 1: 1.0}, cols=["plate", "sample", "day"])
    df = df.drop(columns="lr")
    runs = prepare(df, "y", [], ["plate", "sample", "day"])
    out = decompose(runs, n_boot=50, conditional=False)
    seed = rows(out)
    assert "plate" in seed.index and "sample" in seed.index and "day" in seed.index
    assert "one configuration" in seed.loc["plate", "note"]
    assert seed.loc["plate", "share"] == pytest.approx(0.5, abs=0.2)


# ------------------------------------------------------------------------------------ planner

def test_planner_needs_more_levels_for_shared_parts():
    rng = np.random.default_rng(5)
    df = crossed_table(rng, C=12, levels=(5, 4, 3), shared={2: 3.0}, specific={0: 2.0})
    runs = prepare(df, "y", ["lr"])
    fit = SR.fit_mixed(runs.matrix(), SR.seed_design(runs))
    plan = SR.plan(fit).set_index("row")
    assert list(plan.reset_index().columns) == ["row", "source", *SR.PLAN_COLUMNS[2:]]
    assert plan.index[0] == "init (shared)"
    # a specific part is estimated from every configuration, a shared part only from its own levels:
    # its interval is wider and it needs more levels; +-5 pp never needs fewer than +-10 pp
    spec, shared = plan.loc["init" + X + "configuration"], plan.loc["split (shared)"]
    assert spec["halfwidth_now"] < shared["halfwidth_now"]
    assert shared["halfwidth_now"] > 0.10 and not shared["levels_10pp_all"] <= 3   # NaN (> 50) or more than now
    # without shared effects every part is pinned mostly by the configurations: fewer levels suffice
    df = crossed_table(rng, C=12, levels=(5, 4, 3), specific={0: 2.0, 2: 1.0})
    runs = prepare(df, "y", ["lr"])
    easy = SR.plan(SR.fit_mixed(runs.matrix(), SR.seed_design(runs))).set_index("row")
    assert easy.loc["init" + X + "configuration", "levels_10pp_all"] <= 10
    ok = plan.dropna(subset=["levels_10pp_all", "levels_5pp_all"])
    assert (ok["levels_5pp_all"] >= ok["levels_10pp_all"]).all()


def test_finding_says_which_source_dominates_and_whether_it_is_shared():
    class A:  # the parts of an Analysis the rule reads
        pass

    rng = np.random.default_rng(6)
    for shared, specific, word in [({2: 4.0}, {}, "it is shared"), ({}, {2: 4.0}, "differently for each")]:
        df = crossed_table(rng, C=8, levels=(4, 3, 5), shared=shared, specific=specific, error=0.5)
        a = A()
        a.variance = decompose(prepare(df, "y", ["lr"]), n_boot=20, conditional=False)
        a.seed_layout = "crossed: init 4 × order 3 × split 5"
        text = attribution.sources(a).text
        assert "split is the largest source" in text and word in text, text
