"""Every finding rule (``sweep.findings.RULES``) on the smallest deterministic runs table that makes it
speak: its exact sentence, figure key and kind, with the numbers in the expected sentence computed here
independently (numpy / scipy on the table itself) wherever that is practical, and a table whose numbers
do not support the rule, where it must stay silent.

Intervals that come out of the analysis's own bootstraps or simulations (variance shares, mixed-model
intervals, the seed planner, Optuna's importances, the fitted surface) are read from the analysis
tables, but formatted here, and the point estimates beside them are recomputed.
"""
from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sweep.analysis.confirm import confirm_table
from sweep.analysis.kinds import FactorKind
from sweep.analysis.pipeline import analyze
from sweep.findings import RULES
from sweep.findings.attribution import factors, global_split, importance, seed_plan, sources, where_seed_matters
from sweep.findings.configs import (baseline, best_vs_runner_up, budget, confirmed, one_configuration, precision,
                                    single_change)
from sweep.findings.failures import bimodal, failure_modes, noise_floor, stagnation, traps
from sweep.findings.surface import best_region

B = 200          # bootstrap draws everywhere: intervals appear, each analysis stays well under a second
Z975, Z80 = stats.norm.ppf(0.975), stats.norm.ppf(0.80)


# ------------------------------------------------------------------------------ formatting (the spec)

def pc(x: float, d: int = 1) -> str:
    """A share as the findings print it: ``61.3%``, an exact 0 as ``0%``."""
    return "0%" if x == 0 else f"{100 * x:.{d}f}%"


def ci(lo: float, hi: float, d: int = 1) -> str:
    return f"95% CI {pc(lo, d)[:-1]}–{pc(hi, d)[:-1]}%"


def acc(x: float) -> str:
    return f"{100 * x:.1f}%"


def pp(x: float) -> str:
    return f"{100 * x:.1f} pp"


def sig(x: float, d: int = 3) -> str:
    """``d`` significant digits, integers as integers, an exact 0 as 0."""
    x = float(x)
    if x == 0:
        return "0"
    return str(int(x)) if x.is_integer() and abs(x) < 1e6 else f"{x:.{d}g}"


# ------------------------------------------------------------------------------------------ tables

def exact(rng: np.random.Generator, n: int, sd: float) -> np.ndarray:
    """``n`` normal draws shifted and scaled to mean exactly 0 and sample sd (ddof=1) exactly ``sd``."""
    x = rng.normal(size=n)
    x -= x.mean()
    return x * (sd / x.std(ddof=1)) if sd else np.zeros(n)


def one_factor(means: dict, sd, n_seeds: int, seed: int = 0, **extra) -> pd.DataFrame:
    """Configurations ``arch`` = the keys of ``means``, ``n_seeds`` seeds each (column ``seed``), val_acc
    with mean exactly ``means[k]`` and sample sd exactly ``sd`` (a number or a dict per arch)."""
    rng = np.random.default_rng(seed)
    rows = []
    for k, m in means.items():
        s = sd[k] if isinstance(sd, dict) else sd
        for i, y in enumerate(m + exact(rng, n_seeds, s)):
            rows.append({"arch": k, "seed": i, "val_acc": y, **extra})
    return pd.DataFrame(rows)


def grid(cells: dict, sd, n_seeds: int, seed: int = 0) -> pd.DataFrame:
    """A full lr x hidden grid: ``cells`` maps (lr, hidden) to the cell mean; exact sd per cell (a number
    or a dict per cell)."""
    rng = np.random.default_rng(seed)
    rows = []
    for (lr, h), m in cells.items():
        s = sd[(lr, h)] if isinstance(sd, dict) else sd
        for i, y in enumerate(m + exact(rng, n_seeds, s)):
            rows.append({"lr": lr, "hidden": h, "seed": i, "val_acc": y})
    return pd.DataFrame(rows)


def run(df: pd.DataFrame, factors_=("arch",), **kw):
    kw.setdefault("n_boot", B)
    kw.setdefault("seed_cols", ["seed"] if "seed" in df else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return analyze(df, metric=kw.pop("metric", "val_acc"), factors=list(factors_), **kw)


def vrow(a, scope: str, source: str, method: str | None = None) -> pd.Series:
    v = a.variance
    m = (v["scope"] == scope) & (v["source"] == source)
    if method is not None:
        m &= v["method"] == method
    assert m.sum() >= 1, (scope, source, method)
    return v[m].iloc[0]


def eta(df: pd.DataFrame, by, y: str = "val_acc") -> float:
    """Observed between-group share SS_between / SS_total of ``y`` for the groups ``by``."""
    g = df.groupby(list(by) if not isinstance(by, str) else by)[y]
    grand = df[y].mean()
    ss_between = float((g.count() * (g.mean() - grand) ** 2).sum())
    return ss_between / float(((df[y] - grand) ** 2).sum())


def boot_mean_ci(x: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap of the mean with the analysis's draws: ``default_rng(seed).integers(0, n, (B, n))``."""
    idx = np.random.default_rng(seed).integers(0, x.size, size=(B, x.size))
    lo, hi = np.percentile(x[idx].mean(axis=1), [2.5, 97.5])
    return float(lo), float(hi)


def test_every_rule_has_a_test_here():
    """This file names every rule of RULES (a new rule needs its test)."""
    tested = {"global_split", "factors", "where_seed_matters", "sources", "seed_plan", "importance",
              "best_region", "best_vs_runner_up", "precision", "one_configuration", "baseline", "single_change",
              "budget", "confirmed", "stagnation", "failure_modes", "traps", "bimodal", "noise_floor"}
    assert {r.__name__ for r in RULES} == tested


# --------------------------------------------------------------------------------------- attribution

def test_global_split_configuration_explains_most():
    df = one_factor({"a": 0.70, "b": 0.80, "c": 0.90}, 0.02, 8)
    a = run(df)
    f = global_split(a)
    between = eta(df, "arch")
    C, S = 3, 8
    g = df.groupby("arch")["val_acc"]
    ms_b = S * ((g.mean() - df["val_acc"].mean()) ** 2).sum() / (C - 1)
    ms_w = ((df["val_acc"] - g.transform("mean")) ** 2).sum() / (C * S - C)
    s_cfg = (ms_b - ms_w) / S
    icc = s_cfg / (s_cfg + ms_w)
    rb = vrow(a, "global", "between configurations", "eta2")
    rw = vrow(a, "global", "seed (within configuration)", "eta2")
    ri = vrow(a, "global", "reliability (ICC)")
    assert rb["share"] == pytest.approx(between) and ri["share"] == pytest.approx(icc)
    assert rb["ci_low"] <= between <= rb["ci_high"] and ri["ci_low"] <= icc <= ri["ci_high"]
    assert f.text == (
        f"Across 24 runs (3 configurations × 8 seeds), the configuration explains most of the variance in val_acc: "
        f"{pc(between)} ({ci(rb['ci_low'], rb['ci_high'])}); the seed {pc(1 - between)} "
        f"({ci(rw['ci_low'], rw['ci_high'])}) (observed shares). As variance components, the reliability (share "
        f"that is not seed) is {sig(icc, 2)} (95% CI {sig(ri['ci_low'])}–{sig(ri['ci_high'])}).")
    assert (f.figure, f.kind) == ("variance_global", "attribution")


def test_global_split_seed_explains_most():
    df = one_factor({"a": 0.80, "b": 0.81}, 0.05, 10)
    a = run(df)
    within = 1 - eta(df, "arch")
    assert within > 0.5
    rb = vrow(a, "global", "between configurations", "eta2")
    rw = vrow(a, "global", "seed (within configuration)", "eta2")
    ri = vrow(a, "global", "reliability (ICC)")
    assert global_split(a).text == (
        f"Across 20 runs (2 configurations × 10 seeds), the seed explains most of the variance in val_acc: "
        f"{pc(within)} ({ci(rw['ci_low'], rw['ci_high'])}); the configuration {pc(1 - within)} "
        f"({ci(rb['ci_low'], rb['ci_high'])}) (observed shares). As variance components, the reliability (share "
        f"that is not seed) is {sig(ri['share'], 2)} (95% CI {sig(ri['ci_low'])}–{sig(ri['ci_high'])}).")


def test_global_split_silent_for_one_configuration():
    df = one_factor({"a": 0.8}, 0.02, 10).drop(columns="arch")
    assert global_split(run(df, factors_=())) is None


INTERACTING = {(0.01, 4): 0.70, (0.01, 16): 0.80, (0.1, 4): 0.90, (0.1, 16): 0.84}


def _factor_shares(df: pd.DataFrame) -> tuple[float, float, float]:
    """Balanced two-way shares of lr, hidden and their interaction, from the cell means."""
    lr, hidden = eta(df, "lr"), eta(df, "hidden")
    return lr, hidden, eta(df, ["lr", "hidden"]) - lr - hidden


def test_factors_with_an_interaction():
    df = grid(INTERACTING, 0.02, 6)
    a = run(df, ("lr", "hidden"))
    f = factors(a)
    lr, hidden, inter = _factor_shares(df)
    assert lr > hidden and inter >= 0.05
    r_lr, r_h, r_i = (vrow(a, "global", s, "eta2") for s in ("lr", "hidden", "lr × hidden"))
    assert (r_lr["share"], r_h["share"], r_i["share"]) == pytest.approx((lr, hidden, inter))
    assert f.text == (
        f"lr matters most: {pc(lr)} of the variance ({ci(r_lr['ci_low'], r_lr['ci_high'])}). The other factors: "
        f"hidden {pc(hidden)} ({ci(r_h['ci_low'], r_h['ci_high'])}). The lr × hidden interaction adds {pc(inter)} "
        f"({ci(r_i['ci_low'], r_i['ci_high'])}): the best value of one depends on the other. (observed shares.)")
    assert (f.figure, f.kind) == ("outcome_lr", "factor")


def test_factors_additive_grid_has_no_interaction_sentence():
    df = grid({(0.01, 4): 0.70, (0.01, 16): 0.73, (0.1, 4): 0.80, (0.1, 16): 0.83}, 0.02, 6)
    a = run(df, ("lr", "hidden"))
    lr, hidden, inter = _factor_shares(df)
    assert inter == pytest.approx(0.0, abs=1e-12)
    r_lr, r_h = vrow(a, "global", "lr", "eta2"), vrow(a, "global", "hidden", "eta2")
    assert factors(a).text == (
        f"lr matters most: {pc(lr)} of the variance ({ci(r_lr['ci_low'], r_lr['ci_high'])}). The other factors: "
        f"hidden {pc(hidden)} ({ci(r_h['ci_low'], r_h['ci_high'])}). (observed shares.)")


def test_factors_one_factor_and_one_configuration():
    df = one_factor({"a": 0.7, "b": 0.9}, 0.02, 6)
    a = run(df)
    r = vrow(a, "global", "arch", "eta2")
    assert r["share"] == pytest.approx(eta(df, "arch"))
    assert factors(a).text == (f"arch matters most: {pc(eta(df, 'arch'))} of the variance "
                               f"({ci(r['ci_low'], r['ci_high'])}). (observed shares.)")
    assert factors(run(df[df["arch"] == "a"].drop(columns="arch"), factors_=())) is None


def test_where_seed_matters_along_one_factor():
    df = one_factor({"a": 0.80, "b": 0.82, "c": 0.85}, {"a": 0.01, "b": 0.05, "c": 0.02}, 8)
    a = run(df)
    sd = df.groupby("arch")["val_acc"].std(ddof=1)
    assert sd.idxmax() == "b" and sd.idxmin() == "a"
    f = where_seed_matters(a)
    assert f.text == (f"Where the seed matters: most at arch=b (seed sd {pp(sd['b'])}), least at arch=a "
                      f"({pp(sd['a'])}, {sig(sd['b'] / sd['a'], 2)}× smaller). A single global share hides this.")
    assert (f.figure, f.kind) == ("outcome_arch", "conditional")


def test_where_seed_matters_with_the_share_among_a_levels_configurations():
    sd = {(0.01, 4): 0.04, (0.01, 16): 0.04, (0.1, 4): 0.01, (0.1, 16): 0.01}
    df = grid({(0.01, 4): 0.70, (0.01, 16): 0.72, (0.1, 4): 0.90, (0.1, 16): 0.91}, sd, 6)
    a = run(df, ("lr", "hidden"))
    lvl = df[df["lr"] == 0.01]
    pooled = math.sqrt(((lvl["val_acc"] - lvl.groupby("hidden")["val_acc"].transform("mean")) ** 2).sum()
                       / (len(lvl) - 2))
    share = 1 - eta(lvl, "hidden")
    assert where_seed_matters(a).text == (
        f"Where the seed matters: most at lr=0.01 (seed sd {pp(pooled)}, {pc(share)} of the variance among those "
        f"configurations), least at lr=0.1 ({pp(0.01)}, 4× smaller). A single global share hides this.")


def test_where_seed_matters_silent_without_seed_spread():
    df = one_factor({"a": 0.80, "b": 0.82, "c": 0.85}, 0.0, 6)
    a = run(df)
    assert where_seed_matters(a) is None
    assert where_seed_matters(run(df[df["arch"] == "a"].drop(columns="arch"), factors_=())) is None


# Three calm configurations whose seed effects are exactly shared (init, order and split effects with known
# sample variances, nothing else), and one unstable configuration with large configuration-specific noise.
UI, UO, US = np.array([0.0, 0.03, -0.03]), np.array([0.01, -0.01]), np.array([0.005, -0.005])


@pytest.fixture(scope="module")
def crossed():
    rng = np.random.default_rng(7)
    noise = exact(rng, 12, 0.12).reshape(3, 2, 2)
    rows = []
    for c, arch in enumerate("abcd"):
        for i in range(3):
            for o in range(2):
                for s in range(2):
                    y = 0.6 + 0.05 * c + UI[i] + UO[o] + US[s] + (noise[i, o, s] if arch == "d" else 0.0)
                    rows.append({"config_id": c, "arch": arch, "seed_init": i, "seed_order": o, "seed_split": s,
                                 "val_acc": y})
    df = pd.DataFrame(rows)
    return df, run(df, seed_cols=None)


def _parts(a, scope: str) -> pd.DataFrame:
    return a.variance[a.variance["scope"] == scope].set_index("source")


def test_sources_names_the_shared_source_and_the_unstable_configuration(crossed):
    df, a = crossed
    assert a.seed_layout == "crossed: init 3 × order 2 × split 2"
    pooled, robust = _parts(a, "seed sources"), _parts(a, "seed sources, without the noisiest configurations")
    # without arch=d every seed effect is shared and exact: each source's share is its sample variance
    v = {"init": UI.var(ddof=1), "order": UO.var(ddof=1), "split": US.var(ddof=1)}
    total = sum(v.values())
    for k in v:
        assert robust.loc[f"{k} (shared)", "share"] == pytest.approx(v[k] / total)
        assert robust.loc[f"{k} × configuration", "share"] == pytest.approx(0.0, abs=1e-12)
    var = df.groupby("arch")["val_acc"].var(ddof=1)
    ratio = var["d"] / var.median()
    assert ratio > 10

    def dominant(t):
        tot = {k: t.loc[f"{k} (shared)", "share"] + t.loc[f"{k} × configuration", "share"] for k in v}
        top = max(tot, key=tot.get)
        sh, sp = t.loc[f"{top} (shared)"], t.loc[f"{top} × configuration"]
        word = (f"it is shared, the same {top} is hard or easy for every configuration" if sh["share"] > 2 * sp["share"]
                else "it matters differently for each configuration" if sp["share"] > 2 * sh["share"]
                else "partly shared, partly configuration-specific")
        rest = ", ".join(f"{k} {pc(tot[k])}" for k in sorted(tot, key=lambda k: -tot[k]) if k != top)
        resid = t[t.index.str.startswith("residual")]["share"].iloc[0]
        return (f"{top} is the largest source, {pc(tot[top])} (shared by every configuration {pc(sh['share'])}, "
                f"{ci(sh['ci_low'], sh['ci_high'])}; configuration-specific {pc(sp['share'])}, "
                f"{ci(sp['ci_low'], sp['ci_high'])}): {word}. Then {rest}; residual {pc(resid)}")

    f = sources(a)
    assert f.text == (
        f"Seed sources (crossed: init 3 × order 2 × split 2), as shares of the seed variance: {dominant(pooled)}. "
        f"Pooled shares weight each configuration by its seed variance, so one unstable configuration can decide "
        f"them for all: without the configuration arch=d (seed variance up to {ratio:.0f}x the median "
        f"configuration's), {dominant(robust)}.")
    assert "without the configuration arch=d" in f.text and f"init is the largest source, {pc(v['init'] / total)}" in f.text
    assert (f.figure, f.kind) == ("variance_sources", "sources")


def test_sources_one_row_for_a_replicate_design_and_silent_without_seed_columns():
    df = one_factor({"a": 0.7, "b": 0.8}, 0.02, 5)
    df = df.assign(seed_init=df["seed"], seed_order=df["seed"], seed_split=0).drop(columns="seed")
    f = sources(run(df, seed_cols=None))
    assert f.text == ("Seed sources: replicate design: init and order were drawn together and the data split was held "
                      "fixed; use a crossed design ([seeds] init/order/split) to separate them.")
    assert (f.figure, f.kind) == (None, "sources")
    assert sources(run(df.drop(columns=["seed_init", "seed_order", "seed_split"]), seed_cols=None)) is None


def test_seed_plan_for_the_dominant_source(crossed):
    _, a = crossed
    plan = a.seed_plan
    mine = plan[plan["source"] == "init"]
    assert set(mine["row"]) == {"init (shared)", "init × configuration"} and (mine["levels_now"] == 3).all()
    r = mine.sort_values("halfwidth_now", ascending=False).iloc[0]

    def lv(x):
        return f"{int(x)}" if np.isfinite(x) else "more than 50"

    f = seed_plan(a)
    assert f.text == (
        f"How many seed levels: with 3 levels the interval of {r['row']} is ±{sig(100 * r['halfwidth_now'], 2)} pp "
        f"wide. Pinning it to ±10 pp would take {lv(r['levels_10pp'])} levels of init with the other sources as now, "
        f"or {lv(r['levels_10pp_all'])} levels of every source ({lv(r['levels_5pp_all'])} for ±5 pp); a share is a "
        "ratio, so every source's few levels widen it (seed_plan.csv, simulated from the fitted components).")
    assert (f.figure, f.kind) == (None, "seed_plan")


def test_seed_plan_silent_without_a_crossed_or_nested_design():
    df = one_factor({"a": 0.7, "b": 0.8}, 0.02, 5)
    a = run(df)
    assert a.seed_plan.empty and seed_plan(a) is None


def test_importance_agrees_with_the_anova():
    df = grid({(0.01, 4): 0.70, (0.01, 16): 0.73, (0.1, 4): 0.85, (0.1, 16): 0.88}, 0.02, 6)
    a = run(df, ("lr", "hidden"))
    assert eta(df, "lr") > eta(df, "hidden")          # lr first, by the ANOVA of the runs
    imp = a.importance.dropna(subset=["importance_mean"])
    pieces = []
    for ev, g in imp.groupby("evaluator"):
        top = g.sort_values("importance_mean", ascending=False).iloc[0]
        assert top["factor"] == "lr"
        spread = (f" ± {sig(top['importance_sd'], 2)} over {int(top['repeats'])} evaluations"
                  if np.isfinite(top["importance_sd"]) else ", a single deterministic evaluation")
        pieces.append(f"{ev} ranks lr first ({sig(top['importance_mean'], 2)}{spread})")
    assert len(pieces) >= 1
    f = importance(a)
    assert f.text == ("Optuna's importance on configuration means: " + "; ".join(pieces)
                      + " — the same top factor as the ANOVA.")
    assert (f.figure, f.kind) == ("variance_global", "importance")


def test_importance_silent_for_one_configuration():
    a = run(one_factor({"a": 0.7}, 0.02, 6).drop(columns="arch"), factors_=())
    assert a.importance.empty and importance(a) is None


# ------------------------------------------------------------------------------------ configurations

def _vs_text(df: pd.DataFrame, best: str, second: str) -> str:
    """best_vs_runner_up's sentence, every number from the table: the means, the best's bootstrap interval
    over seeds, the paired differences, their wins, bootstrap intervals, Wilcoxon p and seeds needed."""
    y = {k: g.sort_values("seed")["val_acc"].to_numpy() for k, g in df.groupby("arch")}
    d = y[best] - y[second]
    n = d.size
    wins = (d > 0) + 0.5 * (d == 0)
    idx = np.random.default_rng(0).integers(0, n, size=(B, n))
    d_lo, d_hi = np.percentile(d[idx].mean(axis=1), [2.5, 97.5])
    p_lo, p_hi = np.percentile(wins[idx].mean(axis=1), [2.5, 97.5])
    lo, hi = boot_mean_ci(y[best])
    need = max(2, math.ceil(((Z975 + Z80) * d.std(ddof=1) / abs(d.mean())) ** 2))
    text = (f"Best configuration: arch={best}, mean val_acc {acc(y[best].mean())} ({ci(lo, hi)}). Against the "
            f"runner-up (arch={second}, {acc(y[second].mean())}) it wins on {pc(wins.mean(), 0)} of common seeds "
            f"({ci(p_lo, p_hi, 0)}); mean difference {pp(d.mean())} (95% CI {pp(d_lo)} to {pp(d_hi)}), "
            f"Wilcoxon p = {sig(stats.wilcoxon(d).pvalue, 2)}. ")
    if need <= 1000:
        return text + f"Telling them apart at 95% with 80% power takes about {need} seeds (this study has {n})."
    return text + "They cannot be told apart at any feasible number of seeds: treat them as equally good."


def test_best_vs_runner_up_separable():
    df = one_factor({"a": 0.70, "b": 0.80, "c": 0.83}, 0.02, 8, seed=3)
    f = best_vs_runner_up(run(df))
    assert f.text == _vs_text(df, "c", "b")
    assert "takes about" in f.text
    assert (f.figure, f.kind) == ("halfwidth", "comparison")


def test_best_vs_runner_up_not_separable():
    rng = np.random.default_rng(4)
    base = 0.8 + exact(rng, 10, 0.03)
    d = 0.001 + exact(rng, 10, 0.05)            # a mean difference 50 times smaller than its sd
    df = pd.DataFrame({"arch": ["a"] * 10 + ["b"] * 10, "seed": list(range(10)) * 2,
                       "val_acc": np.r_[base + d, base]})
    text = best_vs_runner_up(run(df)).text
    assert text == _vs_text(df, "a", "b")
    assert text.endswith("They cannot be told apart at any feasible number of seeds: treat them as equally good.")


def test_best_vs_runner_up_silent_for_one_configuration():
    assert best_vs_runner_up(run(one_factor({"a": 0.8}, 0.02, 6))) is None


@pytest.mark.parametrize("sd, n", [(0.02, 8), (0.01, 20)], ids=["needs more seeds", "already enough"])
def test_precision(sd, n):
    df = one_factor({"a": 0.70, "b": 0.85}, {"a": 0.05, "b": sd}, n)
    f = precision(run(df))
    h = 1.96 * sd / math.sqrt(n)
    need = math.ceil((1.96 * sd / 0.01) ** 2)
    tail = f"±1 pp would take about {need} seeds." if h > 0.01 else f"{need} seeds would already give ±1 pp."
    assert f.text == (f"With {n} seeds the best configuration's mean is known to ±{100 * h:.1f} pp (normal "
                      f"approximation, seed sd {100 * sd:.1f} pp); {tail}")
    assert (f.figure, f.kind) == ("halfwidth", "seeds")


def test_precision_silent_for_a_loss_and_for_no_spread():
    df = one_factor({"a": 0.70, "b": 0.85}, 0.02, 8).rename(columns={"val_acc": "val_loss"})
    assert precision(run(df, metric="val_loss")) is None
    assert precision(run(one_factor({"a": 0.70, "b": 0.85}, {"a": 0.02, "b": 0.0}, 8))) is None


def test_one_configuration():
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"seed": range(12), "val_acc": 0.8 + rng.normal(0, 0.02, 12)})
    f = one_configuration(run(df, factors_=()))
    y = df["val_acc"].to_numpy()
    p5, p95 = np.percentile(y, [5, 95])
    assert f.text == (f"All 12 runs share one configuration, so all of their spread is the seed: val_acc ranges from "
                      f"{acc(y.min())} to {acc(y.max())} (5th–95th percentile {acc(p5)}–{acc(p95)}, sd "
                      f"{pp(y.std(ddof=1))}).")
    assert (f.figure, f.kind) == ("ecdf_all", "spread")
    assert one_configuration(run(one_factor({"a": 0.7, "b": 0.8}, 0.02, 6))) is None


ADDITIVE = {(0.01, 4): 0.70, (0.01, 16): 0.72, (0.1, 4): 0.895, (0.1, 16): 0.90}


def test_baseline():
    df = grid(ADDITIVE, 0.02, 6)
    df["single_class"] = (df["lr"] == 0.01) & (df["hidden"] == 4) & (df["seed"] < 2)
    a = run(df, ("lr", "hidden"), baseline={"lr": 0.01, "hidden": 4})
    f = baseline(a)
    y = df[(df["lr"] == 0.01) & (df["hidden"] == 4)]["val_acc"]
    level = df[df["lr"] == 0.01]
    share = 1 - eta(level, "hidden")
    r = vrow(a, "lr=0.01", "seed (within configuration)")
    assert r["share"] == pytest.approx(share)
    assert f.text == (
        f"At the study's baseline (lr=0.01, hidden=4): mean val_acc {acc(y.mean())}, seed sd {pp(y.std(ddof=1))}, "
        f"range {acc(y.min())}–{acc(y.max())} over 6 seeds; 33% of its runs predict a single class. Among the 2 "
        f"configurations with lr=0.01, the seed explains {pc(share)} of the variance ({ci(r['ci_low'], r['ci_high'])}).")
    assert (f.figure, f.kind) == ("outcome_lr", "baseline")


def test_baseline_silent_when_it_is_not_a_configuration():
    df = grid(ADDITIVE, 0.02, 6)
    assert baseline(run(df, ("lr", "hidden"), baseline={"lr": 0.03, "hidden": 4})) is None
    assert baseline(run(df, ("lr", "hidden"))) is None


def _cell(df, lr, h):
    return df[(df["lr"] == lr) & (df["hidden"] == h)].sort_values("seed")["val_acc"].to_numpy()


def test_single_change_that_reaches_the_best():
    df = grid(ADDITIVE, 0.02, 6)
    f = single_change(run(df, ("lr", "hidden")))
    best, one = _cell(df, 0.1, 16), _cell(df, 0.1, 4)
    assert one.mean() >= boot_mean_ci(best)[0]       # the single change is within the best one's interval
    assert f.text == (f"Is one change enough? From the worst configuration (lr=0.01, hidden=4, mean "
                      f"{acc(_cell(df, 0.01, 4).mean())}), the best single change is lr 0.01 → 0.1 (mean "
                      f"{acc(one.mean())}). That alone reaches the best configuration's level ({acc(best.mean())}, "
                      f"within its 95% CI).")
    assert (f.figure, f.kind) == ("outcome_lr", "ablation")


def test_single_change_from_the_baseline_that_does_not_reach_the_best():
    df = grid({(0.01, 4): 0.70, (0.01, 16): 0.73, (0.1, 4): 0.80, (0.1, 16): 0.84}, 0.015, 6)
    f = single_change(run(df, ("lr", "hidden"), baseline={"lr": 0.01, "hidden": 4}))
    best = _cell(df, 0.1, 16)
    lo, hi = boot_mean_ci(best)
    assert _cell(df, 0.1, 4).mean() < lo
    assert f.text == (
        f"Is one change enough? From the study's baseline (lr=0.01, hidden=4, mean {acc(_cell(df, 0.01, 4).mean())}), "
        f"the best single change is lr 0.01 → 0.1 (mean {acc(_cell(df, 0.1, 4).mean())}). No single change reaches "
        f"the best configuration ({acc(best.mean())}, {ci(lo, hi)}), which differs from it in: lr 0.01 → 0.1; "
        f"hidden 4 → 16. The fewest changes that reach the best level (mean within its 95% CI): 2, namely lr → 0.1, "
        f"hidden → 16 (mean {acc(best.mean())}).")


def test_single_change_silent_with_one_factor():
    assert single_change(run(one_factor({"a": 0.7, "b": 0.8, "c": 0.9}, 0.02, 6))) is None


LR_KIND = {"lr": FactorKind("continuous", log=True, ordered=True, source="spec", low=1e-4, high=1e-1)}


def _true_acc(lr):
    return 0.9 - 0.05 * (np.log10(lr) + 2.5) ** 2          # best at lr = 10^-2.5 ≈ 0.0032


@pytest.fixture(scope="module")
def sampled():
    """A random-search study: 16 log-uniform learning rates, 4 seeds each, and its top three configurations
    re-trained on 5 fresh seeds (the selected best loses 3 pp there, the runner-up gains 0.5 pp)."""
    rng = np.random.default_rng(5)
    lrs = 10 ** rng.uniform(-4, -1, 16)
    df = pd.DataFrame([{"config_id": c, "lr": lr, "seed": s, "val_acc": _true_acc(lr) + rng.normal(0, 0.01)}
                       for c, lr in enumerate(lrs) for s in range(4)])
    means = df.groupby("config_id")["val_acc"].mean().sort_values(ascending=False, kind="stable")
    conf = pd.DataFrame([{"config_id": cid, "seed": 100 + s, "val_acc": means[cid] + shift + e}
                         for cid, shift in zip(means.index[:3], (-0.03, 0.005, 0.0))
                         for s, e in enumerate(exact(rng, 5, 0.01))])
    a = run(df, ("lr",), sampler="random", kinds=LR_KIND, confirm=conf)
    return df, conf, a


def test_best_region(sampled):
    df, _, a = sampled
    assert a.sampled
    f = best_region(a)
    # the fitted surface's bootstrap, not recomputed here; what it says must agree with the truth
    assert f.text == (
        "Where the fitted surface is reliably best (the best lower end of a 95% bootstrap interval): lr ≈ 0.003, "
        "fitted mean val_acc 90.2% (95% CI 89.6–90.8%). The fitted mean stays at least that good for lr from "
        "0.002 to 0.0089.")
    # the place is near the true optimum, its interval covers the true value there, the range holds the optimum
    assert abs(math.log10(0.003) + 2.5) < 0.05 and 0.896 <= _true_acc(0.003) <= 0.908
    assert 0.002 <= 10 ** -2.5 <= 0.0089
    lo, hi = df["lr"].min(), df["lr"].max()
    assert lo < 0.002 and 0.0089 < hi                     # read inside the study's data
    assert (f.figure, f.kind) == ("surface_lr", "region")


def test_factors_and_best_vs_runner_up_in_a_sampled_study(sampled):
    _, _, a = sampled
    r = vrow(a, "global", "lr", "fanova")
    f = factors(a)
    assert f.text == (f"lr matters most: {pc(r['share'])} of the variance ({ci(r['ci_low'], r['ci_high'])}). "
                      "(variance components of a fitted surface.)")
    assert f.figure == "surface_lr"
    assert best_vs_runner_up(a).text.endswith(
        " The best of 16 sampled configurations is optimistic by selection: confirm it on fresh seeds (sweep confirm).")


def test_best_region_silent_for_a_grid():
    assert best_region(run(grid(ADDITIVE, 0.02, 6), ("lr", "hidden"))) is None


def test_budget(sampled):
    df, _, a = sampled
    v = np.sort(df.groupby("config_id")["val_acc"].mean().to_numpy())
    N = v.size
    i = np.arange(1, N + 1)

    def expected(n):   # Dodge et al. 2019: expected maximum of n draws with replacement
        return float(v @ ((i / N) ** n - ((i - 1) / N) ** n))

    k = max(2, min(10, N // 4))
    b = a.budget.set_index("n")
    assert (b.loc[k, "expected"], b.loc[N, "expected"]) == pytest.approx((expected(k), expected(N)))
    f = budget(a)
    assert f.text == (
        f"Expected best val_acc against the number of random trials (Dodge et al. 2019): {k} trials would have "
        f"reached {acc(expected(k))} in expectation ({ci(b.loc[k, 'ci_low'], b.loc[k, 'ci_high'])}); all {N} reach "
        f"{acc(expected(N))} ({ci(b.loc[N, 'ci_low'], b.loc[N, 'ci_high'])}). Going from {k} to {N} trials gained "
        f"{pp(expected(N) - expected(k))}.")
    assert (f.figure, f.kind) == ("budget", "budget")


def test_budget_silent_for_a_grid_and_for_tpe():
    df = one_factor({k: 0.7 + 0.02 * j for j, k in enumerate("abcdef")}, 0.02, 4)
    assert budget(run(df)) is None
    assert budget(run(df, sampler="tpe")) is None
    assert budget(run(df, sampler="random")) is not None          # the same table, an independent sampler


def test_confirmed_selection_luck_and_the_ranking_did_not_hold(sampled):
    df, conf, a = sampled
    sel = df.groupby("config_id")["val_acc"].mean()
    top = list(dict.fromkeys(conf["config_id"]))
    fresh = conf.groupby("config_id")["val_acc"].mean()
    label = a.runs.df.drop_duplicates("config_id").set_index("config_id")["config"]
    rng = np.random.default_rng(0)             # the analysis's draws, in confirm order: study seeds, then fresh
    boots = {}
    for cid in top:
        ya, yb = df[df["config_id"] == cid]["val_acc"].to_numpy(), conf[conf["config_id"] == cid]["val_acc"].to_numpy()
        ba = ya[rng.integers(0, ya.size, size=(B, ya.size))].mean(axis=1)
        bb = yb[rng.integers(0, yb.size, size=(B, yb.size))].mean(axis=1)
        boots[cid] = (bb, ba - bb)
    first, new = top[0], fresh[top].idxmax()
    assert new != first
    bb, drop = boots[first]
    d_lo, d_hi = np.percentile(drop, [2.5, 97.5])
    assert d_lo > 0
    tau = stats.kendalltau(sel[top], fresh[top]).statistic
    f = confirmed(a)
    assert f.text == (
        f"Winner's curse check (sweep confirm: the top 3 re-trained on 5 fresh seeds): the best at selection, "
        f"{label[first]}, had mean val_acc {acc(sel[first])} on the study's 4 seeds and {acc(fresh[first])} on fresh "
        f"ones ({ci(*np.percentile(bb, [2.5, 97.5]))}); it lost {pp(sel[first] - fresh[first])} (95% CI {pp(d_lo)} "
        f"to {pp(d_hi)}): selection luck. The ranking did not hold: on fresh seeds {label[new]} is best "
        f"({acc(fresh[new])}, {ci(*np.percentile(boots[new][0], [2.5, 97.5]))}) (Kendall τ between the two orders "
        f"{sig(tau, 2)}).")
    assert (f.figure, f.kind) == ("confirm", "confirm")


def test_confirmed_within_noise_and_the_ranking_held(sampled):
    df, conf, a = sampled
    sel = df.groupby("config_id")["val_acc"].mean()
    same = conf.assign(val_acc=conf["val_acc"] - conf.groupby("config_id")["val_acc"].transform("mean")
                       + conf["config_id"].map(sel))               # fresh means = the selection means
    b = dataclasses.replace(a, confirm=confirm_table(a.runs, same, n_boot=B))
    text = confirmed(b).text
    first = same["config_id"].iloc[0]
    assert "the change, 0.0 pp (95% CI " in text and "is within noise." in text
    assert text.endswith(" The ranking held: the selected best is (tied for) the best on fresh seeds (Kendall τ "
                         "between the two orders 1).")
    assert f"had mean val_acc {acc(sel[first])} on the study's 4 seeds and {acc(sel[first])} on fresh ones" in text


def test_confirmed_silent_without_confirm_runs(sampled):
    df, _, a = sampled
    assert confirmed(dataclasses.replace(a, confirm=pd.DataFrame())) is None


# ------------------------------------------------------------------------------------------ failures

def failing(n_seeds: int = 10, seed: int = 3) -> pd.DataFrame:
    """Four configurations of 10 seeds, with per-run diagnostics: ``good`` trains; ``stuck`` predicts one
    class at its untrained accuracy with no spread; ``flip`` trains on odd seeds only (two groups 33 pp
    apart) and stagnates on the others; ``wild`` spreads widely and diverges on 3 seeds."""
    rng = np.random.default_rng(seed)
    rows = []
    for arch in ("good", "stuck", "flip", "wild"):
        noise = {"good": exact(rng, n_seeds, 0.01), "wild": exact(rng, n_seeds, 0.05),
                 "flip": exact(rng, n_seeds, 0.005)}.get(arch, np.zeros(n_seeds))
        for s in range(n_seeds):
            r = {"arch": arch, "seed": s, "n_val": 200, "init_train_acc": 0.6, "train_acc": 0.9, "diverged": False,
                 "single_class": False, "stagnation_step": np.nan, "val_acc": 0.9 + noise[s]}
            if arch == "stuck":
                r.update(val_acc=0.625, train_acc=0.6, single_class=True, stagnation_step=5.0)
            elif arch == "flip" and s % 2 == 0:
                r.update(val_acc=0.55 + noise[s], train_acc=0.6, stagnation_step=8.0)
            elif arch == "flip":
                r.update(val_acc=0.88 + noise[s])
            elif arch == "wild":
                r.update(val_acc=0.75 + noise[s], diverged=s < 3)
            rows.append(r)
    return pd.DataFrame(rows)


def test_failure_modes():
    df = failing()
    a = run(df)
    df["untrained"] = df["train_acc"] == df["init_train_acc"]
    df["stagnated"] = df["stagnation_step"].notna()
    parts = []
    for col, words in (("untrained", "ended at their untrained accuracy"),
                       ("stagnated", "stopped changing their loss before the end"),
                       ("diverged", "diverged"), ("single_class", "predict a single class")):
        per = df.groupby("arch", sort=False)[col].mean()
        parts.append(f"{pc(df[col].mean(), 0)} of runs {words} (worst: arch={per.idxmax()}, {pc(per.max(), 0)})")
    y = df["val_acc"]
    spread = float(((y - y.mean())[df["stagnated"]] ** 2).sum() / ((y - y.mean()) ** 2).sum())
    f = failure_modes(a)
    assert f.text == ("Failure modes: " + "; ".join(parts)
                      + f". Runs that stagnated account for {pc(spread, 0)} of the total spread.")
    assert f.text.startswith("Failure modes: 38% of runs ended at their untrained accuracy (worst: arch=stuck, 100%)")
    assert (f.figure, f.kind, f.weight) == ("failures", "failures", 8.5)   # 38% untrained: a heavy finding


def test_failure_modes_silent_when_every_run_trained():
    df = failing()
    df = df[df["arch"].isin(["good", "wild"])].assign(diverged=False)
    assert failure_modes(run(df)) is None


def test_traps_one_configuration():
    df = failing()
    f = traps(run(df))
    stuck = df[df["arch"] == "stuck"]
    assert f.text == (f"arch=stuck looks stable (sd of val_acc {pp(stuck['val_acc'].std(ddof=1))}) but "
                      f"{pc(stuck['single_class'].mean(), 0)} of its runs predict a single class: that is not "
                      f"robustness, the network is not learning.")
    assert (f.figure, f.kind) == ("failures", "trap")


def test_traps_several_configurations():
    df = failing()
    more = df[df["arch"] == "stuck"].assign(arch="frozen", val_acc=0.5, single_class=[True] * 8 + [False] * 2)
    f = traps(run(pd.concat([df, more], ignore_index=True)))
    assert f.text == ("2 configurations look stable (near-zero sd of val_acc) only because most of their runs predict "
                      "a single class, which is not robustness: the networks are not learning. arch=stuck (sd 0.0 pp, "
                      "100% single-class); arch=frozen (sd 0.0 pp, 80% single-class).")


def test_traps_silent_when_single_class_runs_still_spread():
    df = failing()
    df.loc[df["arch"] == "wild", "single_class"] = True       # single-class, but a 5 pp seed spread
    df = df[df["arch"] != "stuck"]
    assert 0.05 >= 0.5 * math.sqrt(0.75 * 0.25 / 200)           # well above half the evaluation noise floor
    assert traps(run(df)) is None


def test_bimodal_one_configuration():
    df = failing()
    f = bimodal(run(df))
    y = np.sort(df[df["arch"] == "flip"]["val_acc"].to_numpy())
    gap = np.diff(y).max()
    assert f.text == (f"arch=flip: the outcomes are bimodal (two groups of seeds, gap {pp(gap)}), so its mean "
                      f"describes no actual run; some seeds train and some do not.")
    assert (f.figure, f.kind) == ("ecdf_arch", "bimodal")


def test_bimodal_several_configurations():
    df = failing()
    twin = df[df["arch"] == "flip"].assign(arch="flop", val_acc=lambda d: d["val_acc"] + 0.1 * (d["seed"] % 2))
    f = bimodal(run(pd.concat([df, twin], ignore_index=True)))
    gap = {k: np.diff(np.sort(g.to_numpy())).max() for k, g in
           pd.concat([df, twin]).groupby("arch")["val_acc"]}
    assert f.text == (f"2 of 5 configurations have bimodal outcomes (two groups of seeds), so their means describe no "
                      f"actual run: arch=flop (gap {pp(gap['flop'])}; some seeds train and some do not); arch=flip "
                      f"(gap {pp(gap['flip'])}; some seeds train and some do not).")


def test_bimodal_silent_for_unimodal_outcomes():
    df = failing()
    assert bimodal(run(df[df["arch"] != "flip"])) is None


def test_noise_floor():
    df = one_factor({"a": 0.70, "b": 0.85}, {"a": 0.05, "b": 0.02}, 10, n_val=300)
    f = noise_floor(run(df))
    floor = math.sqrt(0.85 * 0.15 / 300)
    assert f.text == (f"For the best configuration the seed sd (2.0 pp) is only {0.02 / floor:.1f}× the evaluation "
                      f"noise floor ({pp(floor)}, from the size of the evaluation set): much of its spread is the "
                      f"finite val set, not training.")
    assert (f.figure, f.kind) == ("halfwidth", "noise")


def test_noise_floor_silent_above_the_floor_and_without_the_set_size():
    df = one_factor({"a": 0.70, "b": 0.85}, {"a": 0.05, "b": 0.04}, 10, n_val=300)
    assert 0.04 / math.sqrt(0.85 * 0.15 / 300) >= 1.5
    assert noise_floor(run(df)) is None
    assert noise_floor(run(one_factor({"a": 0.70, "b": 0.85}, 0.02, 10))) is None       # no n_val column


# ---------------------------------------------------------------------------------------- stagnation

def stagnating(**over) -> pd.DataFrame:
    """Two configurations of 4 seeds and 50 steps: 6 of the 8 runs stopped changing their loss by the
    tolerance (steps 4-7), 4 of those were bit-for-bit frozen later (steps 15-20); the weights of the
    stagnated runs barely moved while the gradient kept its size."""
    d = {"arch": ["a"] * 4 + ["b"] * 4, "seed": list(range(4)) * 2,
         "val_acc": [0.62, 0.61, 0.63, 0.62, 0.80, 0.64, 0.85, 0.86],
         "stagnation_step": [4.0, 5.0, 5.0, 6.0, 5.0, 7.0, np.nan, np.nan],
         "frozen_step": [15.0, 16.0, np.nan, 18.0, 20.0, np.nan, np.nan, np.nan],
         "stagnation_tol": 1e-6, "steps": 50,
         "train_acc": [0.6, 0.6, 0.6, 0.6, 0.8, 0.6, 0.9, 0.9], "init_train_acc": 0.6,
         "rel_weight_change": [0.001, 0.002, 0.001, 0.003, 0.004, 0.001, 0.5, 0.4],
         "grad_norm_first": 2.0, "grad_norm_last": [1.8, 1.8, 1.9, 1.7, 1.8, 2.0, 0.1, 0.2]}
    d.update(over)
    return pd.DataFrame(d)


def _lower_median(x) -> float:
    x = np.sort(np.asarray(x, dtype=float)[np.isfinite(x)])
    return float(x[(x.size - 1) // 2])


def test_stagnation_by_the_tolerance_and_bit_for_bit():
    df = stagnating()
    f = stagnation(run(df))
    st, fr = df["stagnation_step"].dropna(), df["frozen_step"].dropna()
    untrained = (df["train_acc"] == df["init_train_acc"]).mean()
    moved = df.loc[df["stagnation_step"].notna(), "rel_weight_change"].median()
    ratio = (df["grad_norm_last"] / df["grad_norm_first"]).median()
    assert (len(st), len(fr), untrained, moved, round(ratio, 2)) == (6, 4, 0.625, 0.0015, 0.9)
    assert f.text == (
        f"The training loss stopped changing by more than 1e-6 (relative) in {pc(len(st) / 8, 0)} of runs, from step "
        f"{_lower_median(st):.0f} (median; {st.min():.0f}–{st.max():.0f}) of 50, and was bit-for-bit frozen (exactly "
        f"the same float to the end) in {pc(len(fr) / 8, 0)} of runs, from step {_lower_median(fr):.0f} (median; "
        f"{fr.min():.0f}–{fr.max():.0f}) on. A cost printed in full (as Python prints a float) looks stagnant from the "
        f"frozen step, not from the tolerance step. In {pc(untrained, 0)} of all runs the trained network's training "
        f"accuracy equals the untrained network's. The weights barely moved (median ‖W−W₀‖/‖W₀‖ = {sig(moved, 2)}) "
        f"although the gradient did not vanish (median last/first gradient norm {ratio:.2f}): the optimiser's steps "
        f"shrank to nothing, not the gradient.")
    assert f.text.startswith("The training loss stopped changing by more than 1e-6 (relative) in 75% of runs, from "
                             "step 5 (median; 4–7) of 50, and was bit-for-bit frozen (exactly the same float to the "
                             "end) in 50% of runs, from step 16 (median; 15–20) on.")
    assert (f.figure, f.kind) == ("curves_train_loss", "stagnation")


def test_stagnation_never_frozen_and_without_the_new_columns():
    never = stagnation(run(stagnating(frozen_step=np.nan))).text
    assert never.startswith("The training loss stopped changing by more than 1e-6 (relative) in 75% of runs, from "
                            "step 5 (median; 4–7) of 50; it was never bit-for-bit frozen (the same float to the end), "
                            "so a cost printed in full still changes in its last digits. In 62% of all runs")
    older = stagnation(run(stagnating().drop(columns=["frozen_step", "stagnation_tol"]))).text
    assert older.startswith("The training loss stopped changing by more than the stagnation tolerance (relative) in "
                            "75% of runs, from step 5 (median; 4–7) of 50. In 62% of all runs")


def test_stagnation_silent_when_most_runs_kept_changing_or_without_diagnostics():
    df = stagnating(stagnation_step=[4.0, 5.0, 5.0, np.nan, np.nan, np.nan, np.nan, np.nan])
    assert stagnation(run(df)) is None                             # 3 of 8 runs stagnated
    assert stagnation(run(stagnating().drop(columns="grad_norm_last"))) is None


def test_single_change_silent_when_the_baseline_is_the_best():
    """From the best configuration there is nothing to change (it used to recommend a change away from it)."""
    df = grid(ADDITIVE, 0.02, 6)
    assert single_change(run(df, ("lr", "hidden"), baseline={"lr": 0.1, "hidden": 16})) is None


def test_baseline_matches_numbers_whatever_their_type():
    """A baseline of hidden = 16 (an int from the spec) is the level 16.0 of a float column."""
    df = grid(ADDITIVE, 0.02, 6)
    df["hidden"] = df["hidden"].astype(float)
    f = baseline(run(df, ("lr", "hidden"), baseline={"lr": 0.01, "hidden": 4}))
    assert f is not None and "lr=0.01, hidden=4" in f.text


def test_where_seed_matters_silent_when_the_seed_sd_is_the_same_everywhere():
    df = one_factor({"a": 0.80, "b": 0.82, "c": 0.85}, 0.02, 8)
    assert where_seed_matters(run(df)) is None
