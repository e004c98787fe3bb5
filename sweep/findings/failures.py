"""Findings about runs that did not train: stagnation, failure modes, configurations that only look
stable, bimodal outcomes, and spreads that are mostly the finite evaluation set
(``../shared/STATISTICS.md`` section 7)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from .base import Finding
from .words import diff, num, pct

STAGNATION_NEEDS = {"stagnation_step", "train_acc", "init_train_acc", "rel_weight_change", "grad_norm_first",
                    "grad_norm_last", "steps"}


def _tolerance(d: pd.DataFrame) -> str:
    """The runs' stagnation tolerance as the findings print it (``1e-6``), if the table records one."""
    tol = pd.to_numeric(d.get("stagnation_tol", pd.Series(dtype=float)), errors="coerce").dropna().unique()
    if len(tol) != 1:
        return "the stagnation tolerance"
    text = f"{tol[0]:.3g}"
    if "e" in text:
        mant, exp = text.split("e")
        text = f"{mant}e{int(exp)}"
    return text


def _steps(s: pd.Series) -> str:
    """``5 (median; 4–5)``: the (lower, so a step some run has) median and the range of runs' steps."""
    return f"{s.quantile(0.5, interpolation='lower'):.0f} (median; {s.min():.0f}–{s.max():.0f})"


def frozen_clause(d: pd.DataFrame) -> str:
    """", and was bit-for-bit frozen ... from step S on" plus what a printed cost shows; empty without a
    ``frozen_step`` column (older or foreign tables)."""
    if "frozen_step" not in d:
        return ""
    fr = pd.to_numeric(d["frozen_step"], errors="coerce").dropna()
    if fr.empty:
        return ("; it was never bit-for-bit frozen (the same float to the end), so a cost printed in full "
                "still changes in its last digits")
    return (f", and was bit-for-bit frozen (exactly the same float to the end) in {pct(len(fr) / len(d), 0)} of "
            f"runs, from step {_steps(fr)} on. A cost printed in full (as Python prints a float) looks "
            f"stagnant from the frozen step, not from the tolerance step")


def stagnation(a) -> Finding | None:
    """When most runs stopped changing their loss: from when (by the tolerance, and bit-for-bit when
    ``frozen_step`` is recorded), whether they trained at all, and why."""
    d = a.runs.df
    if not STAGNATION_NEEDS <= set(d.columns) or len(d) == 0:
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
    text = (f"The training loss stopped changing by more than {_tolerance(d)} (relative) in {pct(share, 0)} of "
            f"runs, from step {_steps(st)} {of}{frozen_clause(d)}. In {pct(same.mean(), 0)} of all runs the "
            f"trained network's training accuracy equals the untrained network's.")
    if np.isfinite(moved) and moved < 0.05:
        text += f" The weights barely moved (median ‖W−W₀‖/‖W₀‖ = {num(moved, 2)})"
        text += (f" although the gradient did not vanish (median last/first gradient norm {ratio:.2f}): the "
                 f"optimiser's steps shrank to nothing, not the gradient." if np.isfinite(ratio) and ratio > 0.3
                 else ".")
    return Finding(text, "curves_train_loss", "stagnation", 9.8)


def _weights(f: pd.DataFrame) -> pd.Series:
    return f["n"] / f["n"].sum()


def failure_modes(a) -> Finding | None:
    f = a.failures
    if f is None or f.empty:
        return None
    w = _weights(f)
    parts = []
    for col, words in (("at_untrained", "ended at their untrained accuracy"),
                       ("stagnated", "stopped changing their loss before the end"),
                       ("diverged", "diverged"), ("single_class", "predict a single class")):
        if col in f and f[col].notna().any():
            share = float((f[col].fillna(0) * w).sum())
            if share > 0:
                worst = f.loc[f[col].idxmax()]
                parts.append(f"{pct(share, 0)} of runs {words} (worst: {worst['config']}, {pct(worst[col], 0)})")
    if not parts:
        return None
    text = "Failure modes: " + "; ".join(parts) + "."
    if np.isfinite(a.stagnation_share) and a.stagnation_share > 0:
        text += f" Runs that stagnated account for {pct(a.stagnation_share, 0)} of the total spread."
    heavy = any(float((f[c].fillna(0) * w).sum()) >= 0.2 for c in ("at_untrained", "diverged") if c in f)
    return Finding(text, "failures", "failures", 8.5 if heavy else 4)


def first_three(rows: pd.DataFrame, describe) -> str:
    """The first three rows described, "; "-joined, and how many more there are (in failures.csv)."""
    shown = "; ".join(describe(r_) for _, r_ in rows.head(3).iterrows())
    return shown + (f", and {len(rows) - 3} more (failures.csv)" if len(rows) > 3 else "")


def traps(a) -> Finding | None:
    """Configurations that look stable only because their runs predict a single class."""
    f = a.failures
    if f is None or f.empty or "robust_looking_but_degenerate" not in f:
        return None
    t = f[f["robust_looking_but_degenerate"].fillna(False).astype(bool)]
    if len(t) == 1:
        r = t.iloc[0]
        return Finding(f"{r['config']} looks stable (sd of {a.metric} {diff(a, r['sd'])}) but {pct(r['single_class'], 0)} "
                       f"of its runs predict a single class: that is not robustness, the network is not learning.",
                       "failures", "trap", 8.8)
    if len(t) > 1:
        shown = first_three(t, lambda r_: f"{r_['config']} (sd {diff(a, r_['sd'])}, {pct(r_['single_class'], 0)} single-class)")
        return Finding(f"{len(t)} configurations look stable (near-zero sd of {a.metric}) only because most of their runs "
                       f"predict a single class, which is not robustness: the networks are not learning. {shown}.",
                       "failures", "trap", 8.8)
    return None


def bimodal_why(a, config: str) -> str:
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
            parts.append(f"{pct(sc.mean(), 0)} of the runs predict a single class, so the groups are largely "
                         f"the class shares")
    return "; " + "; ".join(parts) if parts else ""


def bimodal(a) -> Finding | None:
    f = a.failures
    if f is None or f.empty or "bimodal" not in f:
        return None
    top = a.top_factors[0] if a.top_factors else None
    fig = f"ecdf_{top or 'all'}"
    bim = f[f["bimodal"].fillna(False).astype(bool)].sort_values("bimodal_gap", ascending=False)
    if len(bim) == 1:
        r = bim.iloc[0]
        return Finding(f"{r['config']}: the outcomes are bimodal (two groups of seeds, gap {diff(a, r['bimodal_gap'])}"
                       f"), so its mean describes no actual run{bimodal_why(a, r['config'])}.", fig, "bimodal", 7.5)
    if len(bim) > 1:
        shown = first_three(bim, lambda r_: f"{r_['config']} (gap {diff(a, r_['bimodal_gap'])}{bimodal_why(a, r_['config'])})")
        return Finding(f"{len(bim)} of {len(a.runs.configs)} configurations have bimodal outcomes (two groups of seeds), "
                       f"so their means describe no actual run: {shown}.", fig, "bimodal", 7.5)
    return None


def noise_floor(a) -> Finding | None:
    """When the best configuration's seed sd is close to the evaluation set's own noise."""
    s, r = a.summary, a.ranking
    if s is None or s.empty or r.empty or not a.is_accuracy:
        return None
    row = s[(s["config"] == r.iloc[0]["config"]) & (s["metric"] == a.metric)]
    if row.empty or not (np.isfinite(row.iloc[0]["noise_floor"]) and row.iloc[0]["noise_floor"] > 0):
        return None
    ratio = row.iloc[0]["sd"] / row.iloc[0]["noise_floor"]
    if ratio >= 1.5:
        return None
    return Finding(f"For the best configuration the seed sd ({diff(a, row.iloc[0]['sd'])}) is only {ratio:.1f}× "
                   f"the evaluation noise floor ({diff(a, row.iloc[0]['noise_floor'])}, from the size of the "
                   f"evaluation set): much of its spread is the finite {a.metric.split('_')[0]} set, not training.",
                   "halfwidth", "noise", 4.5)


RULES = [stagnation, failure_modes, traps, bimodal, noise_floor]
