"""Findings about configurations: the best one against the runner-up, how precisely it is known, a
single configuration's spread, the study's baseline and what changing one factor from it does (grids
and named baselines only), and for sampled spaces the best region of the fitted surface and the
expected best against the number of trials."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .base import Finding
from .words import ci, diff, num, pct, row, val


def best_vs_runner_up(a) -> Finding | None:
    r = a.ranking
    if len(r) < 2 or a.comparisons is None or a.comparisons.empty:
        return None
    best, second = r.iloc[0], r.iloc[1]
    c = row(a.comparisons, a=best["config"], b=second["config"])
    if c is None:
        return None
    text = (f"Best configuration: {best['config']}, mean {a.metric} {val(a, best['mean'])} "
            f"({ci(best['ci_low'], best['ci_high'], as_pct=a.is_accuracy)}). "
            f"Against the runner-up ({second['config']}, {val(a, second['mean'])}) it wins on "
            f"{pct(c['p_a_beats_b'], 0)} of {'common ' if c['paired'] else ''}seeds "
            f"({ci(c['p_ci_low'], c['p_ci_high'], decimals=0)}); mean difference {diff(a, c['mean_diff'])} "
            f"(95% CI {diff(a, c['diff_ci_low'])} to {diff(a, c['diff_ci_high'])}), "
            f"Wilcoxon p = {num(c['wilcoxon_p'], 2)}. ")
    if bool(c["separable"]) and np.isfinite(c["seeds_needed"]):
        text += (f"Telling them apart at 95% with 80% power takes about {int(c['seeds_needed'])} seeds "
                 f"(this study has {len(a.runs.seeds)}).")
    else:
        text += "They cannot be told apart at any feasible number of seeds: treat them as equally good."
    if a.sampled:
        text += (f" The best of {len(a.runs.configs)} sampled configurations is optimistic by selection: "
                 f"confirm it on fresh seeds (sweep confirm).")
    return Finding(text, "halfwidth", "comparison", 7)


def precision(a) -> Finding | None:
    r = a.ranking
    if r.empty or not a.is_accuracy:
        return None
    best = r.iloc[0]
    sd = best["sd"]
    if not (np.isfinite(sd) and sd > 0):
        return None
    need = max(2, math.ceil((1.96 * sd / 0.01) ** 2))
    h = 1.96 * sd / math.sqrt(best["n"])
    text = (f"With {int(best['n'])} seeds the best configuration's mean is known to ±{100 * h:.1f} pp "
            f"(normal approximation, seed sd {100 * sd:.1f} pp); ")
    text += f"±1 pp would take about {need} seeds." if h > 0.01 else f"{need} seeds would already give ±1 pp."
    return Finding(text, "halfwidth", "seeds", 5)


def one_configuration(a) -> Finding | None:
    if len(a.runs.configs) != 1:
        return None
    y = a.runs.df[a.metric].to_numpy(dtype=float)
    p5, p95 = np.percentile(y, [5, 95])
    top = a.top_factors[0] if a.top_factors else None
    return Finding(f"All {len(y)} runs share one configuration, so all of their spread is the seed: {a.metric} ranges "
                   f"from {val(a, y.min())} to {val(a, y.max())} (5th–95th percentile {val(a, p5)}–{val(a, p95)}, "
                   f"sd {diff(a, y.std(ddof=1))}).", f"ecdf_{top or 'all'}", "spread", 9.5)


def _levels(a) -> pd.DataFrame:
    factors = list(a.runs.factors)
    return a.runs.first()[factors].astype(str)


def baseline_config(a) -> str | None:
    """The config label of the study's baseline cell, when it is one of the configurations (a grid's
    cell; never in a sampled space, where no configuration has the spec's own values)."""
    factors = list(a.runs.factors)
    if not a.baseline or not factors or a.sampled:
        return None
    first = a.runs.first()[factors]
    same = pd.concat([_equal(first[f], a.baseline.get(f)) for f in factors], axis=1).all(axis=1)
    match = first.index[same.to_numpy()]
    return match[0] if len(match) == 1 else None


def _equal(column: pd.Series, value) -> pd.Series:
    """Which entries of a factor column equal the baseline's value: numerically when both are numbers
    (16 and 16.0 are the same level), else as text."""
    num = pd.to_numeric(column, errors="coerce")
    try:
        target = float(value)
    except (TypeError, ValueError):
        target = None
    if target is not None and num.notna().all():
        return num == target
    return column.astype(str) == str(value)


def baseline(a) -> Finding | None:
    """The study's baseline configuration: its spread over seeds, and the seed's share at its level of
    the most important factor."""
    cfg = baseline_config(a)
    if cfg is None or not a.top_factors:
        return None
    d = a.runs.df[a.runs.df["config"] == cfg]
    y = d[a.metric].to_numpy(dtype=float)
    top = a.top_factors[0]
    scope = f"{top}={a.baseline.get(top)}"
    seed_row = row(a.variance, scope=scope, source="seed (within configuration)")
    text = (f"At the study's baseline ({cfg}): mean {a.metric} {val(a, y.mean())}, seed sd {diff(a, y.std(ddof=1))}, "
            f"range {val(a, y.min())}–{val(a, y.max())} over {len(y)} seeds")
    if "single_class" in d:
        text += f"; {pct(d['single_class'].astype(bool).mean(), 0)} of its runs predict a single class"
    text += "."
    n_level = int((a.runs.first()[top].astype(str) == str(a.baseline.get(top))).sum())
    if seed_row is not None and np.isfinite(seed_row["share"]) and n_level > 1:
        text += (f" Among the {n_level} configurations with {scope}, the seed explains {pct(seed_row['share'])} of the "
                 f"variance ({ci(seed_row['ci_low'], seed_row['ci_high'])}).")
    return Finding(text, f"outcome_{top}", "baseline", 8.7)


def _fewest_changes(a, r, levels, w, best, dist) -> str:
    good = r[r["mean"] >= best["ci_low"]] if a.higher_is_better else r[r["mean"] <= best["ci_high"]]
    n_changes = good["config"].map(dist)
    fewest = good[n_changes == n_changes.min()]
    sets = []
    for _, g in fewest.iterrows():
        ch = [f"{f} → {levels.loc[g['config'], f]}" for f in levels.columns if levels.loc[g["config"], f] != w[f]]
        sets.append(f"{', '.join(ch)} (mean {val(a, g['mean'])})")
    return (f" The fewest changes that reach the best level (mean within its 95% CI): {int(n_changes.min())}, "
            f"namely " + " or ".join(sets[:3]) + ("" if len(sets) <= 3 else f", or {len(sets) - 3} other sets") + ".")


def single_change(a) -> Finding | None:
    """Is one change enough? From the study's baseline configuration (or the worst one), the best
    configuration reachable by changing a single factor, against the best overall. Grids only."""
    r, factors = a.ranking, list(a.runs.factors)
    if len(factors) < 2 or len(r) < 3 or a.sampled:
        return None
    levels = _levels(a)
    best, worst = r.iloc[0], r.iloc[-1]
    start_name = "the worst configuration"
    base = baseline_config(a)
    if base is not None and base in set(r["config"]):
        worst, start_name = r[r["config"] == base].iloc[0], "the study's baseline"
    if worst["config"] == best["config"]:
        return None          # the baseline is the best configuration: there is nothing to change
    w = levels.loc[worst["config"]]
    dist = (levels != w).sum(axis=1)
    singles = r[r["config"].map(dist) == 1]
    if singles.empty:
        return None
    s1 = singles.iloc[0]
    changed = [f for f in factors if levels.loc[s1["config"], f] != w[f]][0]
    text = (f"Is one change enough? From {start_name} ({worst['config']}, mean {val(a, worst['mean'])}), "
            f"the best single change is {changed} {w[changed]} → {levels.loc[s1['config'], changed]} "
            f"(mean {val(a, s1['mean'])}). ")
    reaches = s1["mean"] >= best["ci_low"] if a.higher_is_better else s1["mean"] <= best["ci_high"]
    if reaches:
        text += f"That alone reaches the best configuration's level ({val(a, best['mean'])}, within its 95% CI)."
    else:
        needed = [f"{f} {w[f]} → {levels.loc[best['config'], f]}" for f in factors
                  if levels.loc[best["config"], f] != w[f]]
        text += (f"No single change reaches the best configuration ({val(a, best['mean'])}, "
                 f"{ci(best['ci_low'], best['ci_high'], as_pct=a.is_accuracy)}), which differs from it in: "
                 f"{'; '.join(needed)}.")
        text += _fewest_changes(a, r, levels, w, best, dist)
    return Finding(text, f"outcome_{changed}", "ablation", 9.6)


def budget(a) -> Finding | None:
    """Expected best against the number of trials (random and QMC studies)."""
    b = a.budget
    if b is None or b.empty or len(b) < 4:
        return None
    N = int(b["n"].max())
    k = max(2, min(10, N // 4))
    at_k, at_n = b[b["n"] == k].iloc[0], b[b["n"] == N].iloc[0]
    word = "best" if a.higher_is_better else "lowest"
    text = (f"Expected {word} {a.metric} against the number of {a.sampler} trials (Dodge et al. 2019): {k} trials "
            f"would have reached {val(a, at_k['expected'])} in expectation "
            f"({ci(at_k['ci_low'], at_k['ci_high'], as_pct=a.is_accuracy)}); all {N} reach {val(a, at_n['expected'])} "
            f"({ci(at_n['ci_low'], at_n['ci_high'], as_pct=a.is_accuracy)}).")
    gain = abs(at_n["expected"] - at_k["expected"])
    text += f" Going from {k} to {N} trials gained {diff(a, gain)}."
    return Finding(text, "budget", "budget", 6.5)


def confirmed(a) -> Finding | None:
    """The winner's curse: selection-time against confirmed means of the top configurations."""
    from ..analysis.confirm import kendall
    t = a.confirm
    if t is None or t.empty:
        return None
    best = t.iloc[0]
    sign = 1.0 if a.higher_is_better else -1.0
    new_best = t.loc[(sign * t["confirmed_mean"]).idxmax()]
    text = (f"Winner's curse check (sweep confirm: the top {len(t)} re-trained on {int(best['n_confirmed'])} fresh "
            f"seeds): the best at selection, {best['config']}, had mean {a.metric} {val(a, best['selection_mean'])} "
            f"on the study's {int(best['n_selection'])} seeds and {val(a, best['confirmed_mean'])} on fresh ones "
            f"({ci(best['confirmed_ci_low'], best['confirmed_ci_high'], as_pct=a.is_accuracy)}); ")
    if best["drop_ci_low"] > 0:
        text += f"it lost {diff(a, best['drop'])} (95% CI {diff(a, best['drop_ci_low'])} to {diff(a, best['drop_ci_high'])}): selection luck."
    else:
        text += (f"the change, {diff(a, -best['drop'])} (95% CI {diff(a, -best['drop_ci_high'])} to "
                 f"{diff(a, -best['drop_ci_low'])}), is within noise.")
    tau = kendall(t)
    held = new_best["config"] == best["config"] or sign * best["confirmed_mean"] >= sign * (
        new_best["confirmed_ci_low"] if sign > 0 else new_best["confirmed_ci_high"])
    if held:
        text += " The ranking held: the selected best is (tied for) the best on fresh seeds"
    else:
        text += (f" The ranking did not hold: on fresh seeds {new_best['config']} is best "
                 f"({val(a, new_best['confirmed_mean'])}, {ci(new_best['confirmed_ci_low'], new_best['confirmed_ci_high'], as_pct=a.is_accuracy)})")
    text += f" (Kendall τ between the two orders {num(tau, 2)})." if np.isfinite(tau) else "."
    return Finding(text, "confirm", "confirm", 8.95)


RULES = [best_vs_runner_up, precision, one_configuration, baseline, single_change, budget, confirmed]
