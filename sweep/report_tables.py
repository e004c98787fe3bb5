"""The report's tables as text: numbers formatted as people read them (shares as percentages with one
decimal, 2-3 significant digits elsewhere, exact zeros as 0), long tables cut to the rows that matter
with the full CSV named, and the variance table's per-row notes replaced by references to Methods.

Cells are plain strings; escaping is the template's job (``render.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .findings.words import num, pct

__all__ = ["Table", "cell", "report_tables", "variance_notes"]

# columns that hold shares or probabilities, per table (shown as percentages)
PCT_COLUMNS = {
    "variance": {"share", "ci_low", "ci_high"},
    "comparisons": {"p_a_beats_b", "p_ci_low", "p_ci_high"},
    "failures": {"stagnated", "frozen", "diverged", "saturated", "dead", "single_class", "at_untrained",
                 "not_training"},
    "seed_plan": {"halfwidth_now"},
}
NOT_SHARES = {"variance", "sd"}        # variance.csv methods whose value is not a share
FAILURE_FLAGS = ["stagnated", "frozen", "diverged", "saturated", "dead", "single_class", "at_untrained", "not_training",
                 "bimodal", "robust_looking_but_degenerate"]


@dataclass
class Table:
    """One table of the report: ``columns`` and ``rows`` of display strings, ``numeric`` per column
    (right-aligned), how many rows the full table has (``total``) and the CSV that holds them."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[str]]
    numeric: list[bool]
    total: int
    csv: str
    intro: str = ""
    empty: str = "(none)"
    extra: dict = field(default_factory=dict)

    @property
    def more(self) -> int:
        return self.total - len(self.rows)


def cell(x, as_pct: bool = False) -> str:
    """One value as text: '' for missing, yes/no for booleans, integers as integers, shares as
    percentages (one decimal), other numbers to 3 significant digits, exact zeros as 0."""
    if x is None or (isinstance(x, float | np.floating) and math.isnan(x)):
        return ""
    if isinstance(x, bool | np.bool_):
        return "yes" if x else "no"
    if isinstance(x, int | np.integer):
        return str(int(x))
    if isinstance(x, float | np.floating):
        x = float(x)
        if as_pct:
            return pct(x)
        if x.is_integer() and abs(x) < 1e6:
            return str(int(x))
        if 1e3 <= abs(x) < 1e6:
            return f"{x:,.0f}"
        return num(x)
    return str(x)


def _table(key: str, title: str, df: pd.DataFrame | None, max_rows: int, *, pct_rows=None, intro: str = "",
           empty: str = "(none)", total: int | None = None) -> Table:
    """``df`` cut to ``max_rows`` rows and formatted; ``pct_rows``: a boolean mask of the rows whose
    percentage columns really are shares (default all)."""
    df = pd.DataFrame() if df is None else df
    shown = df.head(max_rows)
    pcts = PCT_COLUMNS.get(key, set())
    mask = np.ones(len(shown), bool) if pct_rows is None else np.asarray(pct_rows)[: len(shown)]
    rows = [[cell(v, c in pcts and bool(mask[i])) for c, v in zip(shown.columns, r)]
            for i, r in enumerate(shown.itertuples(index=False))]
    numeric = [pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c]) for c in df.columns]
    return Table(key, title, [str(c) for c in df.columns], rows, numeric, len(df) if total is None else total,
                 f"{key}.csv", intro, empty)


def variance_notes(variance: pd.DataFrame) -> list[str]:
    """The distinct per-row notes of the variance table, in order of first use (Methods lists them)."""
    if variance is None or variance.empty or "note" not in variance:
        return []
    return list(dict.fromkeys(n for n in variance["note"].fillna("").astype(str) if n))


def _variance(a) -> Table:
    v = a.variance
    notes = variance_notes(v)
    shown = v.drop(columns=["note"], errors="ignore").copy()
    if "note" in v:
        shown["note"] = [f"[{notes.index(n) + 1}]" if n else "" for n in v["note"].fillna("").astype(str)]
    shares = ~(v["method"].isin(NOT_SHARES) | (v["source"] == "reliability (ICC)")) if len(v) else None
    return _table("variance", "Where the variance comes from", shown, 40, pct_rows=shares,
                  intro="share: observed share (eta2, typeII, fanova) or variance component (component) with its "
                        "95% interval; seed variance and seed sd in the metric's units; [n]: the row's method "
                        "note in Methods.")


def _failures(a) -> Table:
    f = a.failures
    intro = "Configurations with any failure mode (share of their runs), worst first; modes that no run shows are left out."
    if f is None or f.empty:
        return _table("failures", "Failure modes", f, 0, intro=intro, empty="No failure modes were measured.")
    flags = [c for c in FAILURE_FLAGS if c in f]
    values = f[flags].apply(pd.to_numeric, errors="coerce").fillna(0)
    hit = values.gt(0).any(axis=1)
    cols = ["config", "n"] + [c for c in flags if values[c].gt(0).any()] + \
        [c for c in ("bimodal_gap", "mean", "sd") if c in f and hit.any()]
    rows = f[hit].assign(_w=values[hit].sum(axis=1)).sort_values("_w", ascending=False)[cols]
    return _table("failures", "Failure modes", rows, 25, intro=intro, total=int(hit.sum()),
                  empty=f"None of the {len(f)} configurations shows a failure mode "
                        f"({', '.join(flags)}: all zero).")


def _summary(a) -> Table:
    s = a.summary[a.summary["metric"] == a.metric] if len(a.summary) else a.summary
    if len(s) > 30 and "mean" in s:
        s = s.sort_values("mean", ascending=not a.higher_is_better, kind="stable")
    drop = [c for c in a.runs.factors if c in s] + ["metric"]
    return _table("summary", f"Per-configuration summary of {a.metric}", s.drop(columns=drop, errors="ignore"),
                  30, intro="Every configuration's runs (all metrics: summary.csv), best first when the table is "
                            "cut; CI: bootstrap of the mean.")


def _plan(a) -> Table:
    p = a.seed_plan.copy() if len(a.seed_plan) else a.seed_plan
    for c in [c for c in p.columns if c.startswith("levels_") and c != "levels_now"]:
        p[c] = [">50" if pd.isna(x) else str(int(x)) for x in p[c]]
    intro = (f"Seed-design planner ({a.seed_layout}): levels needed to pin each seed-source share to ±10 / ±5 "
             "percentage points (median 95% interval half-width over studies simulated from the fitted "
             "components); levels_*: this source alone changed, levels_*_all: every source with that many levels.")
    return _table("seed_plan", "How many seed levels", p, 40, intro=intro)


def report_tables(a) -> list[Table]:
    """Every table of the report's details section, in reading order (empty ones left out, except
    failure modes, whose absence is news)."""
    tables = [_variance(a)]
    if len(a.seed_plan):
        tables.append(_plan(a))
    if len(a.importance):
        tables.append(_table("importance", "Optuna hyperparameter importance", a.importance, 20,
                             intro="On configuration means; spread over repeated evaluations (a cross-check of "
                                   "the attribution's ranking)."))
    tables.append(_table("ranking", "Configurations ranked by mean", a.ranking, 20,
                         intro="Top configurations by mean with a bootstrap CI over seeds."))
    if len(a.comparisons):
        tables.append(_table("comparisons", "The top configurations compared", a.comparisons, 20,
                             intro="Paired over common seeds: mean difference, P(a beats b), Wilcoxon p, seeds "
                                   "needed to tell them apart."))
    if a.confirm is not None and len(a.confirm):
        tables.append(_table("confirm", "Confirmation on fresh seeds", a.confirm, 20))
    tables.append(_failures(a))
    if len(a.summary):
        tables.append(_summary(a))
    return tables
