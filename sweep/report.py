"""The answer: analysis tables, figures and plain-language findings, as one self-contained HTML file
(figures embedded) and a Markdown file for a repository.

Every sentence is generated from the study's numbers by a rule that checks the numbers first (a
finding that does not hold for the data is not emitted), and names the figure that shows it.
"""
from __future__ import annotations

import base64
import html
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .analysis import Runs, prepare
from .analysis import compare, diagnose, summary, variance

ACC_PREFIXES = ("acc", "accuracy")


@dataclass
class Analysis:
    """Everything the report says, as tables (each also written as a CSV)."""

    runs: Runs
    df: pd.DataFrame
    curves: pd.DataFrame | None
    higher_is_better: bool
    summary: pd.DataFrame
    variance: pd.DataFrame
    importance: pd.DataFrame
    ranking: pd.DataFrame
    comparisons: pd.DataFrame
    halfwidth: pd.DataFrame
    failures: pd.DataFrame
    top_factors: list[str]
    stagnation_share: float
    seconds: float = 0.0
    baseline: dict | None = None   # factor -> level of the study's reference configuration (spec's fixed values)

    @property
    def metric(self) -> str:
        return self.runs.metric

    @property
    def is_accuracy(self) -> bool:
        return self.metric.endswith("acc") or "accuracy" in self.metric


@dataclass
class Finding:
    text: str
    figure: str | None
    kind: str
    weight: float = 0.0


def analyze(df: pd.DataFrame, *, metric: str = "val_acc", factors=None, seed_cols=None,
            curves: pd.DataFrame | None = None, higher_is_better: bool | None = None,
            n_boot: int = 1000, seed: int = 0, baseline: dict | None = None) -> Analysis:
    """Run every analysis on a runs table (see ``sweep.analysis.prepare`` for the columns).
    ``baseline`` (factor -> level) names a reference configuration, e.g. the spec's fixed values."""
    t0 = time.perf_counter()
    runs = prepare(df, metric, factors, seed_cols)
    hib = (not metric.endswith("loss")) if higher_is_better is None else higher_is_better
    factors = list(runs.factors)
    summ = summary.summarize(runs.df, factors, n_boot=n_boot, seed=seed) if factors else pd.DataFrame()
    var = variance.decompose(runs, n_boot=n_boot, seed=seed)
    try:
        imp = variance.optuna_importance(runs, seed=seed) if factors and len(runs.configs) > 1 else pd.DataFrame()
    except Exception as exc:   # importance is a cross-check; never let it sink the report
        imp = pd.DataFrame({"evaluator": ["optuna"], "factor": [""], "importance_mean": [np.nan],
                            "importance_sd": [np.nan], "repeats": [0], "note": [f"not computed: {exc}"]})
    ranking = compare.rank(runs, n_boot=n_boot, seed=seed, higher_is_better=hib)
    top = ranking["config"].head(4).tolist()
    pairs = compare.compare_pairs(runs, top, n_boot=n_boot, seed=seed, higher_is_better=hib) if len(top) > 1 \
        else pd.DataFrame()
    half = pd.concat([compare.ci_halfwidth(runs, c, seed=seed) for c in top[:3]], ignore_index=True)
    fails = diagnose.failure_modes(runs.df, factors, metric=metric)
    main = var[(var["scope"] == "global") & var["method"].isin(["eta2", "typeII"])
               & var["source"].isin(factors)].sort_values("share", ascending=False)
    top_factors = main["source"].tolist() or factors
    stag = diagnose.stagnation_share_of_spread(runs.df, factors, metric) if "stagnation_step" in runs.df else np.nan
    return Analysis(runs, df, curves, hib, summ, var, imp, ranking, pairs, half, fails, top_factors, stag,
                    time.perf_counter() - t0, baseline)


# ----------------------------------------------------------------------------------- wording helpers
def _pct(x: float) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{100 * x:.0f}%"


def _ci(lo: float, hi: float, pct: bool = True, digits: int = 0) -> str:
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return "no CI"
    if pct:
        return f"95% CI {100 * lo:.{digits}f}%–{100 * hi:.{digits}f}%"
    return f"95% CI {lo:.3g}–{hi:.3g}"


def _val(a: Analysis, x: float) -> str:
    """A metric value: accuracies as percentages, everything else to 3 significant digits."""
    if x is None or not np.isfinite(x):
        return "n/a"
    return f"{100 * x:.1f}%" if a.is_accuracy else f"{x:.3g}"


def _diff(a: Analysis, x: float) -> str:
    if not np.isfinite(x):
        return "n/a"
    return f"{100 * x:.1f} pp" if a.is_accuracy else f"{x:.3g}"


def _row(df: pd.DataFrame, **eq) -> pd.Series | None:
    m = np.ones(len(df), bool)
    for k, v in eq.items():
        m &= (df[k] == v).to_numpy()
    return df[m].iloc[0] if m.any() else None


# ----------------------------------------------------------------------------------------- findings
def findings(a: Analysis) -> list[Finding]:
    """Plain-language statements, most important first, each only when the numbers support it."""
    out: list[Finding] = []
    v = a.variance
    n_runs, n_seeds, n_cfg = len(a.runs.df), len(a.runs.seeds), len(a.runs.configs)
    between = _row(v, scope="global", source="between configurations", method="eta2")
    within = _row(v, scope="global", source="seed (within configuration)", method="eta2")
    if between is not None and within is not None and n_cfg > 1:
        lead, lead_row, other, other_row = (("the seed", within, "the configuration", between)
                                            if within["share"] > between["share"]
                                            else ("the configuration", between, "the seed", within))
        word = "most" if lead_row["share"] > 0.5 else "the larger part"
        text = (f"Across {n_runs} runs ({n_cfg} configurations × {n_seeds} seeds), {lead} explains {word} of the "
                f"variance in {a.metric}: {_pct(lead_row['share'])} ({_ci(lead_row['ci_low'], lead_row['ci_high'])}); "
                f"{other} {_pct(other_row['share'])} ({_ci(other_row['ci_low'], other_row['ci_high'])}).")
        icc = _row(v, scope="global", source="reliability (ICC)")
        if icc is not None and np.isfinite(icc["share"]):
            text += (f" As variance components, the reliability (share that is not seed) is "
                     f"{icc['share']:.2f} ({_ci(icc['ci_low'], icc['ci_high'], pct=False)}).")
        out.append(Finding(text, "variance_global", "attribution", 10))
    factors = list(a.runs.factors)
    fac = v[(v["scope"] == "global") & v["method"].isin(["eta2", "typeII"])]
    mains = fac[fac["source"].isin(factors)].sort_values("share", ascending=False)
    if len(mains) >= 1 and n_cfg > 1:
        f1 = mains.iloc[0]
        text = (f"{f1['source']} matters most: {_pct(f1['share'])} of the variance "
                f"({_ci(f1['ci_low'], f1['ci_high'])}).")
        if len(mains) > 1:
            rest = ", ".join(f"{r['source']} {_pct(r['share'])}" for _, r in mains.iloc[1:].iterrows())
            text += f" The other factors: {rest}."
        inter = fac[fac["source"].str.contains(" × ", regex=False)].sort_values("share", ascending=False)
        if len(inter) and inter.iloc[0]["share"] >= 0.05:
            i1 = inter.iloc[0]
            text += (f" The {i1['source']} interaction adds {_pct(i1['share'])} "
                     f"({_ci(i1['ci_low'], i1['ci_high'])}): the best value of one depends on the other.")
        if (fac["method"] == "typeII").any():
            text += (f" (Type II sums of squares: the design is unbalanced, {a.runs.dropped} runs had no value; "
                     f"shares need not add to 100%.)")
        out.append(Finding(text, f"outcome_{f1['source']}", "factor", 9))
    top = a.top_factors[0] if a.top_factors else None
    if top is not None:
        sds = v[(v["source"] == "seed sd") & v["scope"].str.startswith(f"{top}=")]
        shares = v[(v["source"] == "seed (within configuration)") & v["scope"].str.startswith(f"{top}=")]
        if len(sds) >= 2 and sds["share"].max() > 0:
            hi, lo = sds.loc[sds["share"].idxmax()], sds.loc[sds["share"].idxmin()]
            sh_hi = shares[shares["scope"] == hi["scope"]]
            extra = ""
            if len(sh_hi) and len(factors) > 1 and np.isfinite(sh_hi.iloc[0]["share"]):
                extra = f", {_pct(sh_hi.iloc[0]['share'])} of the variance at that level"
            ratio = hi["share"] / lo["share"] if lo["share"] > 0 else math.inf
            text = (f"Where the seed matters: at {hi['scope']} the seed sd is {_diff(a, hi['share'])}{extra}; "
                    f"at {lo['scope']} it is {_diff(a, lo['share'])}"
                    + (f" ({ratio:.1f}× smaller)." if np.isfinite(ratio) and ratio >= 1.5 else ".")
                    + " A single global share hides this.")
            out.append(Finding(text, f"outcome_{top}", "conditional", 8))
    if n_cfg == 1:
        y = a.runs.df[a.metric].to_numpy(dtype=float)
        p5, p95 = np.percentile(y, [5, 95])
        out.append(Finding(
            f"All {len(y)} runs share one configuration, so all of their spread is the seed: {a.metric} ranges "
            f"from {_val(a, y.min())} to {_val(a, y.max())} (5th–95th percentile {_val(a, p5)}–{_val(a, p95)}, "
            f"sd {_diff(a, y.std(ddof=1))}).", f"ecdf_{top or 'all'}", "spread", 9.5))
    stag = _stagnation_finding(a)
    if stag is not None:
        out.append(stag)
    single = _single_change_finding(a)
    if single is not None:
        out.append(single)
    base = _baseline_finding(a)
    if base is not None:
        out.append(base)
    r = a.ranking
    if len(r) >= 2 and len(a.comparisons):
        best, second = r.iloc[0], r.iloc[1]
        c = _row(a.comparisons, a=best["config"], b=second["config"])
        if c is not None:
            text = (f"Best configuration: {best['config']}, mean {a.metric} {_val(a, best['mean'])} "
                    f"({_ci(best['ci_low'], best['ci_high'], pct=a.is_accuracy, digits=1)}). "
                    f"Against the runner-up ({second['config']}, {_val(a, second['mean'])}) it wins on "
                    f"{_pct(c['p_a_beats_b'])} of {'common ' if c['paired'] else ''}seeds "
                    f"({_ci(c['p_ci_low'], c['p_ci_high'])}); mean difference {_diff(a, c['mean_diff'])} "
                    f"({'95% CI ' + _diff(a, c['diff_ci_low']) + ' to ' + _diff(a, c['diff_ci_high'])}), "
                    f"Wilcoxon p = {c['wilcoxon_p']:.2g}. ")
            if bool(c["separable"]) and np.isfinite(c["seeds_needed"]):
                text += (f"Telling them apart at 95% with 80% power takes about {int(c['seeds_needed'])} seeds "
                         f"(this study has {n_seeds}).")
            else:
                text += "They cannot be told apart at any feasible number of seeds: treat them as equally good."
            out.append(Finding(text, "halfwidth", "comparison", 7))
    if len(r) and a.is_accuracy:
        best = r.iloc[0]
        sd = best["sd"]
        if np.isfinite(sd) and sd > 0:
            need = max(2, math.ceil((1.96 * sd / 0.01) ** 2))
            h = 1.96 * sd / math.sqrt(best["n"])
            text = (f"With {int(best['n'])} seeds the best configuration's mean is known to ±{100 * h:.1f} pp "
                    f"(normal approximation, seed sd {100 * sd:.1f} pp); ")
            text += (f"±1 pp would take about {need} seeds." if h > 0.01 else
                     f"{need} seeds would already give ±1 pp.")
            out.append(Finding(text, "halfwidth", "seeds", 5))
    f = a.failures
    if len(f):
        w = f["n"] / f["n"].sum()
        parts = []
        for col, words in (("at_untrained", "ended at their untrained accuracy"),
                           ("stagnated", "stopped changing their loss before the end"),
                           ("diverged", "diverged"), ("single_class", "predict a single class")):
            if col in f and f[col].notna().any():
                share = float((f[col].fillna(0) * w).sum())
                if share > 0:
                    worst = f.loc[f[col].idxmax()]
                    parts.append(f"{_pct(share)} of runs {words} (worst: {worst['config']}, {_pct(worst[col])})")
        if parts:
            text = "Failure modes: " + "; ".join(parts) + "."
            if np.isfinite(a.stagnation_share) and a.stagnation_share > 0:
                text += f" Runs that stagnated account for {_pct(a.stagnation_share)} of the total spread."
            weight = 8.5 if any(float((f[c].fillna(0) * w).sum()) >= 0.2 for c in ("at_untrained", "diverged")
                                if c in f) else 4
            out.append(Finding(text, "failures", "failures", weight))
        traps = f[f.get("robust_looking_but_degenerate", pd.Series(False, index=f.index)).fillna(False).astype(bool)]
        if len(traps) == 1:
            row = traps.iloc[0]
            out.append(Finding(
                f"{row['config']} looks stable (sd of {a.metric} {_diff(a, row['sd'])}) but {_pct(row['single_class'])} "
                f"of its runs predict a single class: that is not robustness, the network is not learning.",
                "failures", "trap", 8.8))
        elif len(traps) > 1:
            shown = _first_three(traps, lambda r_: f"{r_['config']} (sd {_diff(a, r_['sd'])}, "
                                                   f"{_pct(r_['single_class'])} single-class)")
            out.append(Finding(
                f"{len(traps)} configurations look stable (near-zero sd of {a.metric}) only because most of their runs "
                f"predict a single class, which is not robustness: the networks are not learning. {shown}.",
                "failures", "trap", 8.8))
        bim = f[f["bimodal"].fillna(False).astype(bool)].sort_values("bimodal_gap", ascending=False)
        if len(bim) == 1:
            row = bim.iloc[0]
            out.append(Finding(
                f"{row['config']}: the outcomes are bimodal (two groups of seeds, gap {_diff(a, row['bimodal_gap'])}"
                f"), so its mean describes no actual run{_bimodal_why(a, row['config'])}.",
                f"ecdf_{top or 'all'}", "bimodal", 7.5))
        elif len(bim) > 1:
            shown = _first_three(bim, lambda r_: f"{r_['config']} (gap {_diff(a, r_['bimodal_gap'])}"
                                                 f"{_bimodal_why(a, r_['config'])})")
            out.append(Finding(
                f"{len(bim)} of {n_cfg} configurations have bimodal outcomes (two groups of seeds), so their means "
                f"describe no actual run: {shown}.", f"ecdf_{top or 'all'}", "bimodal", 7.5))
    s = a.summary
    if len(s) and len(r) and a.is_accuracy:
        row = s[(s["config"] == r.iloc[0]["config"]) & (s["metric"] == a.metric)]
        if len(row) and np.isfinite(row.iloc[0]["noise_floor"]) and row.iloc[0]["noise_floor"] > 0:
            ratio = row.iloc[0]["sd"] / row.iloc[0]["noise_floor"]
            if ratio < 1.5:
                out.append(Finding(
                    f"For the best configuration the seed sd ({_diff(a, row.iloc[0]['sd'])}) is only {ratio:.1f}× "
                    f"the evaluation noise floor ({_diff(a, row.iloc[0]['noise_floor'])}, from the size of the "
                    f"evaluation set): much of its spread is the finite {a.metric.split('_')[0]} set, not training.",
                    "halfwidth", "noise", 4.5))
    src = v[v["scope"] == "seed sources"]
    if len(src):
        if len(src) == 1:
            out.append(Finding(f"Seed sources: {src.iloc[0]['note'].rstrip('.')}.", None, "sources", 2))
        else:
            parts = ", ".join(f"{r_['source']} {_pct(r_['share'])}" for _, r_ in
                              src.sort_values("share", ascending=False).iterrows())
            out.append(Finding(f"Of the seed variance (variance components, crossed design): {parts}.",
                               "variance_sources", "sources", 6))
    imp = a.importance
    if len(imp) and "importance_mean" in imp and imp["importance_mean"].notna().any() and len(mains):
        pieces = []
        for ev, g in imp.dropna(subset=["importance_mean"]).groupby("evaluator"):
            g = g.sort_values("importance_mean", ascending=False)
            spread = (f" ± {g.iloc[0]['importance_sd']:.2f} over {int(g.iloc[0]['repeats'])} evaluations"
                      if np.isfinite(g.iloc[0]["importance_sd"]) else ", a single deterministic evaluation")
            pieces.append(f"{ev} ranks {g.iloc[0]['factor']} first ({g.iloc[0]['importance_mean']:.2f}{spread})")
        agree = all(p.split(" ranks ")[1].startswith(mains.iloc[0]["source"] + " ") for p in pieces)
        out.append(Finding("Optuna's importance on configuration means: " + "; ".join(pieces)
                           + (" — the same ranking as the ANOVA." if agree else
                              " — not the ANOVA's top factor: the importances ignore seed noise, read them with care."),
                           "variance_global", "importance", 3))
    out.sort(key=lambda x: -x.weight)
    return out


def _first_three(rows: pd.DataFrame, describe) -> str:
    """The first three rows described, "; "-joined, and how many more there are (in failures.csv)."""
    shown = "; ".join(describe(r_) for _, r_ in rows.head(3).iterrows())
    return shown + (f", and {len(rows) - 3} more (failures.csv)" if len(rows) > 3 else "")


def _bimodal_why(a: Analysis, config: str) -> str:
    """What tells the two groups apart, from the diagnostics (empty when nothing does)."""
    d = a.runs.df[a.runs.df["config"] == config]
    y = np.sort(d[a.metric].to_numpy(dtype=float))
    if len(y) < 4:
        return ""
    k = int(np.argmax(np.diff(y)))
    low = d[a.metric] <= y[k]
    parts = []
    if "init_train_acc" in d and "train_acc" in d:
        untrained = np.isclose(d["train_acc"], d["init_train_acc"], atol=1e-12, rtol=0)
        lo_u, hi_u = untrained[low].mean(), untrained[~low].mean()
        if abs(lo_u - hi_u) >= 0.5:
            parts.append("some seeds train and some do not")
        elif lo_u >= 0.9 and hi_u >= 0.9:
            parts.append("neither group trained: both stay at their untrained accuracy")
    if "single_class" in d:
        sc = d["single_class"].astype(bool)
        if sc.mean() >= 0.5:
            parts.append(f"{_pct(sc.mean())} of the runs predict a single class, so the groups are largely "
                         f"the class shares")
    return "; " + "; ".join(parts) if parts else ""


def _baseline_config(a: Analysis) -> str | None:
    """The config label of the study's baseline cell, when it is one of the configurations."""
    factors = list(a.runs.factors)
    if not a.baseline or not factors:
        return None
    levels = a.runs.df.drop_duplicates("config").set_index("config")[factors].astype(str)
    match = levels[(levels == pd.Series({f: str(a.baseline.get(f)) for f in factors})).all(axis=1)]
    return match.index[0] if len(match) == 1 else None


def _baseline_finding(a: Analysis) -> Finding | None:
    """The study's baseline configuration: its spread over seeds, and the seed's share at its level of
    the most important factor."""
    cfg = _baseline_config(a)
    if cfg is None or not a.top_factors:
        return None
    d = a.runs.df[a.runs.df["config"] == cfg]
    y = d[a.metric].to_numpy(dtype=float)
    top = a.top_factors[0]
    scope = f"{top}={a.baseline.get(top)}"
    v = a.variance
    seed_row = _row(v, scope=scope, source="seed (within configuration)")
    text = (f"At the study's baseline ({cfg}): mean {a.metric} {_val(a, y.mean())}, seed sd {_diff(a, y.std(ddof=1))}, "
            f"range {_val(a, y.min())}–{_val(a, y.max())} over {len(y)} seeds")
    if "single_class" in d:
        text += f"; {_pct(d['single_class'].astype(bool).mean())} of its runs predict a single class"
    text += "."
    if seed_row is not None and np.isfinite(seed_row["share"]):
        text += (f" Among all configurations with {scope}, the seed explains {_pct(seed_row['share'])} of the "
                 f"variance ({_ci(seed_row['ci_low'], seed_row['ci_high'])}).")
    return Finding(text, f"outcome_{top}", "baseline", 8.7)


def _single_change_finding(a: Analysis) -> Finding | None:
    """Is one change enough? From the study's baseline configuration (the spec's fixed values, when that
    cell is in the grid; else the worst configuration), the best configuration reachable by changing a
    single factor, compared with the best overall (its 95% CI)."""
    r, factors = a.ranking, list(a.runs.factors)
    if len(factors) < 2 or len(r) < 3:
        return None
    levels = a.runs.df.drop_duplicates("config").set_index("config")[factors].astype(str)
    best, worst = r.iloc[0], r.iloc[-1]
    start_name = "the worst configuration"
    base = _baseline_config(a)
    if base is not None and base in set(r["config"]):
        worst = r[r["config"] == base].iloc[0]
        start_name = "the study's baseline"
    w = levels.loc[worst["config"]]
    diff = (levels != w).sum(axis=1)
    singles = r[r["config"].map(diff) == 1]
    if singles.empty:
        return None
    s1 = singles.iloc[0]
    changed = [f for f in factors if levels.loc[s1["config"], f] != w[f]][0]
    needed = [f"{f} {w[f]} → {levels.loc[best['config'], f]}" for f in factors
              if levels.loc[best["config"], f] != w[f]]
    text = (f"Is one change enough? From {start_name} ({worst['config']}, mean {_val(a, worst['mean'])}), "
            f"the best single change is {changed} {w[changed]} → {levels.loc[s1['config'], changed]} "
            f"(mean {_val(a, s1['mean'])}). ")
    reaches = s1["mean"] >= best["ci_low"] if a.higher_is_better else s1["mean"] <= best["ci_high"]
    if reaches:
        text += f"That alone reaches the best configuration's level ({_val(a, best['mean'])}, within its 95% CI)."
    else:
        text += (f"No single change reaches the best configuration ({_val(a, best['mean'])}, "
                 f"{_ci(best['ci_low'], best['ci_high'], pct=a.is_accuracy, digits=1)}), which differs from it in: "
                 f"{'; '.join(needed)}.")
        good = r[r["mean"] >= best["ci_low"]] if a.higher_is_better else r[r["mean"] <= best["ci_high"]]
        n_changes = good["config"].map(diff)
        fewest = good[n_changes == n_changes.min()]
        sets = []
        for _, g in fewest.iterrows():
            ch = [f"{f} → {levels.loc[g['config'], f]}" for f in factors if levels.loc[g["config"], f] != w[f]]
            sets.append(f"{', '.join(ch)} (mean {_val(a, g['mean'])})")
        text += (f" The fewest changes that reach the best level (mean within its 95% CI): {int(n_changes.min())}, "
                 f"namely " + " or ".join(sets[:3]) + ("" if len(sets) <= 3 else f", or {len(sets) - 3} other sets")
                 + ".")
    return Finding(text, f"outcome_{changed}", "ablation", 9.6)


def _stagnation_finding(a: Analysis) -> Finding | None:
    """When most runs stopped changing their loss: from when, whether they trained at all, and why."""
    d = a.runs.df
    need = {"stagnation_step", "train_acc", "init_train_acc", "rel_weight_change", "grad_norm_first",
            "grad_norm_last", "steps"}
    if not need <= set(d.columns) or len(d) == 0:
        return None
    stagnated = d["stagnation_step"].notna()
    share = stagnated.mean()
    if share < 0.5:
        return None
    st = d.loc[stagnated, "stagnation_step"]
    same = np.isclose(d["train_acc"], d["init_train_acc"], atol=1e-12, rtol=0)
    moved = d.loc[stagnated, "rel_weight_change"].median()
    ratio = (d["grad_norm_last"] / d["grad_norm_first"]).median()
    budgets = sorted(d["steps"].dropna().unique())
    of = f"of {budgets[0]:.0f}" if len(budgets) == 1 else f"(runs of {budgets[0]:.0f} to {budgets[-1]:.0f} steps)"
    text = (f"The training loss stopped changing (relative change below the stagnation tolerance to the end) in "
            f"{_pct(share)} of runs, from step {st.median():.0f} (median; {st.min():.0f}–{st.max():.0f}) {of}. "
            f"In {_pct(same.mean())} of all runs the trained network's training accuracy equals the untrained "
            f"network's.")
    if np.isfinite(moved) and moved < 0.05:
        text += f" The weights barely moved (median ‖W−W₀‖/‖W₀‖ = {moved:.2g})"
        text += (f" although the gradient did not vanish (median last/first gradient norm {ratio:.2f}): the "
                 f"optimiser's steps shrank to nothing, not the gradient." if np.isfinite(ratio) and ratio > 0.3
                 else ".")
    return Finding(text, "curves_train_loss", "stagnation", 9.8)


# ------------------------------------------------------------------------------------------ figures
def build_figures(a: Analysis, fig_dir: Path) -> dict[str, Path]:
    """Draw every figure the report uses into ``fig_dir``; returns ``{key: path}``."""
    from . import figures as F
    fig_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    def draw(key, fn, *args, w=6.4, h=4.0, **kw):
        fig, ax = F.new_figure(w, h)
        fn(*args, ax=ax, **kw)
        paths[key] = F.save(fig, fig_dir / f"{key}.png")

    df, m = a.runs.df, a.metric
    draw("variance_global", F.variance_shares, a.variance, scope="global", h=3.6)
    if (a.variance["scope"] == "seed sources").sum() > 1:
        draw("variance_sources", F.variance_shares, a.variance, scope="seed sources", h=3.0)
    for f in a.runs.factors:
        draw(f"outcome_{f}", F.outcome_by_factor, df, f, m)
    top = a.top_factors[:2]
    if len(top) == 2:
        draw("heatmap_mean", F.heatmap, df, top[0], top[1], m, stat="mean")
        draw("heatmap_sd", F.heatmap, df, top[0], top[1], m, stat="sd")
    first = top[0] if top else None          # None: every run in one group
    draw(f"ecdf_{first or 'all'}", F.ecdf_by_level, df, first, m)
    if a.curves is not None and len(a.curves) and "run_id" in df:
        draw("curves_train_loss", F.learning_curves, a.curves, df, first, split="train", value="loss")
        draw("curves_val_acc", F.learning_curves, a.curves, df, first, split="val", value="acc")
    if len(a.halfwidth):
        draw("halfwidth", F.halfwidth_vs_seeds, a.halfwidth)
    if len(a.failures):
        draw("failures", F.failure_modes, a.failures, h=max(3.0, 0.28 * len(a.failures) + 1.5))
    return paths


# ------------------------------------------------------------------------------------------ writing
SECTIONS = [("findings", "Findings"), ("variance", "Where the variance comes from"),
            ("comparisons", "Which configuration is reliably best"), ("failures", "Failure modes"),
            ("figures", "Figures"), ("summary", "Per-configuration summary"), ("spec", "Study spec"),
            ("meta", "Run information")]

FIGURE_CAPTIONS = {
    "variance_global": "Variance shares with 95% bootstrap CIs (seeds resampled jointly across configurations).",
    "variance_sources": "Seed variance split by source (crossed design, variance components).",
    "heatmap_mean": "Mean of the metric for the two most important factors (other factors averaged).",
    "heatmap_sd": "Seed standard deviation for the two most important factors.",
    "curves_train_loss": "Training loss over steps: median over seeds, 25–75% band, each run faint.",
    "curves_val_acc": "Validation accuracy over steps: median over seeds, 25–75% band, each run faint.",
    "halfwidth": "95% CI half-width of a configuration's mean vs number of seeds (normal and bootstrap).",
    "failures": "Failure modes per configuration: share of runs.",
}


def _caption(key: str) -> str:
    if key.startswith("outcome_"):
        return f"Distribution of the outcome per level of {key[8:]} (violin) with every run (points)."
    if key.startswith("ecdf_"):
        return f"Empirical CDF of the outcome per level of {key[5:]}: a step or plateau marks bimodal seeds."
    return FIGURE_CAPTIONS.get(key, key)


def _fmt_table(df: pd.DataFrame, max_rows: int = 60) -> pd.DataFrame:
    out = df.head(max_rows).copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].map(lambda x: "" if pd.isna(x) else f"{x:.4g}")
    return out


def _md_table(df: pd.DataFrame, max_rows: int = 60) -> str:
    if df is None or df.empty:
        return "_(none)_\n"
    t = _fmt_table(df, max_rows).astype(str)
    lines = ["| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
    lines += ["| " + " | ".join(v.replace("|", "\\|") for v in row) + " |" for row in t.to_numpy()]
    return "\n".join(lines) + "\n"


def _html_table(df: pd.DataFrame, max_rows: int = 60) -> str:
    if df is None or df.empty:
        return "<p><em>(none)</em></p>"
    return _fmt_table(df, max_rows).to_html(index=False, border=0, classes="t", escape=True)


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:2em}ol.findings li{margin:.5em 0}table.t{border-collapse:collapse;font-size:.85em;margin:.5em 0}
table.t td,table.t th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:right}table.t th{background:#f6f6f6}
figure{display:inline-block;margin:.5em;vertical-align:top;max-width:520px}figure img{max-width:100%}
figcaption{font-size:.85em;color:#555}pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:.85em}
.note{color:#555;font-size:.9em}"""


def render(a: Analysis, finds: list[Finding], figs: dict[str, Path], *, title: str,
           spec_text: str | None, meta: dict | None, fig_rel: str = "figures") -> tuple[str, str]:
    """(HTML with embedded figures, Markdown with relative figure links)."""
    def img64(p: Path) -> str:
        return "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode()

    esc = html.escape
    h = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
         f"<style>{CSS}</style></head><body>", f"<h1>{esc(title)}</h1>",
         f"<p class='note'>{len(a.runs.df)} runs, metric <b>{esc(a.metric)}</b> "
         f"({'higher' if a.higher_is_better else 'lower'} is better), factors: {esc(', '.join(a.runs.factors) or 'none')}, "
         f"seed columns: {esc(', '.join(a.runs.seed_cols) or 'row order')}. Every number below is computed from "
         f"these runs; CIs are 95% bootstrap intervals over seeds (seeds resampled jointly across configurations, "
         f"1000 draws, fixed generator seed; the interval type of each variance share is in its note).</p>"]
    md = [f"# {title}\n", f"{len(a.runs.df)} runs, metric **{a.metric}**, factors: {', '.join(a.runs.factors) or 'none'}. "
          "Every number is computed from these runs; CIs are 95% bootstrap intervals over seeds.\n"]
    if a.runs.dropped:
        note = (f"{a.runs.dropped} runs have no value of {a.metric} (diverged with undefined weights) and are "
                f"excluded; the design is then unbalanced.")
        h.append(f"<p class='note'>{esc(note)}</p>")
        md.append(f"_{note}_\n")

    def section(key: str) -> None:
        name = dict(SECTIONS)[key]
        h.append(f"<section id='{key}'><h2>{esc(name)}</h2>")
        md.append(f"\n## {name}\n")

    section("findings")
    h.append("<ol class='findings'>")
    for f in finds:
        link = f" <a href='#fig-{f.figure}'>(figure)</a>" if f.figure in figs else ""
        h.append(f"<li>{esc(f.text)}{link}</li>")
        md.append(f"1. {f.text}" + (f" ![]({fig_rel}/{f.figure}.png)" if f.figure in figs else "") + "\n")
    h.append("</ol></section>")
    section("variance")
    h.append(_html_table(a.variance, 200))
    md.append(_md_table(a.variance, 200))
    if len(a.importance):
        h.append("<p>Optuna hyperparameter importance on configuration means (spread over repeated evaluations):</p>")
        h.append(_html_table(a.importance))
        md.append("\nOptuna importance on configuration means:\n\n" + _md_table(a.importance))
    h.append("</section>")
    section("comparisons")
    h.append(_html_table(a.ranking, 20) + _html_table(a.comparisons) + "</section>")
    md.append(_md_table(a.ranking, 20) + "\n" + _md_table(a.comparisons))
    section("failures")
    cols = [c for c in a.failures.columns if c not in a.runs.factors]
    h.append(_html_table(a.failures[cols], 100) + "</section>")
    md.append(_md_table(a.failures[cols], 100))
    section("figures")
    for key, p in figs.items():
        h.append(f"<figure id='fig-{key}'><img src='{img64(p)}' alt='{esc(key)}'>"
                 f"<figcaption>{esc(_caption(key))}</figcaption></figure>")
        md.append(f"![{_caption(key)}]({fig_rel}/{p.name})\n")
    h.append("</section>")
    section("summary")
    s = a.summary[a.summary["metric"] == a.metric] if len(a.summary) else a.summary
    h.append(_html_table(s, 200) + "<p class='note'>All metrics: summary.csv.</p></section>")
    md.append(_md_table(s, 200))
    section("spec")
    h.append(f"<pre>{esc(spec_text or '(not a sweep study: no spec)')}</pre></section>")
    md.append(f"```toml\n{spec_text or '(no spec)'}\n```\n")
    section("meta")
    meta_text = json.dumps(meta or {}, indent=2, sort_keys=True, default=str)
    h.append(f"<pre>{esc(meta_text)}</pre><p class='note'>Analysis took {a.seconds:.1f} s.</p></section>")
    md.append(f"```json\n{meta_text}\n```\n")
    h.append("</body></html>")
    return "\n".join(h), "\n".join(md)


def write_report(out_dir: Path, a: Analysis, *, title: str, spec_text: str | None = None,
                 meta: dict | None = None) -> dict[str, Path]:
    """Write the analysis CSVs, figures, report.html and report.md into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, table in (("summary", a.summary), ("variance", a.variance), ("importance", a.importance),
                        ("ranking", a.ranking), ("comparisons", a.comparisons), ("halfwidth", a.halfwidth),
                        ("failures", a.failures)):
        paths[name] = out_dir / f"{name}.csv"
        table.to_csv(paths[name], index=False)
    figs = build_figures(a, out_dir / "figures")
    finds = findings(a)
    html_text, md_text = render(a, finds, figs, title=title, spec_text=spec_text, meta=meta)
    paths["html"] = out_dir / "report.html"
    paths["md"] = out_dir / "report.md"
    paths["html"].write_text(html_text)
    paths["md"].write_text(md_text)
    (out_dir / "findings.txt").write_text("\n".join(f"{i + 1}. {f.text}" for i, f in enumerate(finds)) + "\n")
    return paths


def _spec_baseline(spec_text: str | None) -> dict | None:
    """factor column -> label of the spec's fixed value, for each varied key (None without a spec)."""
    if not spec_text:
        return None
    from .design import columns, label
    from .spec import parse_spec
    try:
        spec = parse_spec(spec_text)
    except Exception:
        return None
    out = {}
    for key, col in columns(spec).items():
        obj = spec
        for part in key.split("."):
            obj = getattr(obj, part)
        out[col] = label(obj)
    return out


def report_dir(directory: Path, *, metric: str | None = None) -> dict[str, Path]:
    """``sweep report DIR``: the report of a sweep results folder (runs.csv, curves.csv, spec, meta)."""
    import tomllib
    runs = pd.read_csv(directory / "runs.csv")
    curves_path = directory / "curves.csv"
    curves = pd.read_csv(curves_path) if curves_path.exists() else None
    spec_path, meta_path = directory / "spec.toml", directory / "meta.json"
    spec_text = spec_path.read_text() if spec_path.exists() else None
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    if metric is None:
        metric = tomllib.loads(spec_text)["study"].get("objective", "val_acc") if spec_text else "val_acc"
    a = analyze(runs, metric=metric, curves=curves, baseline=_spec_baseline(spec_text))
    name = meta.get("study", directory.name)
    return write_report(directory, a, title=f"sweep report: {name}", spec_text=spec_text, meta=meta)
