"""Per-configuration summary of a runs table (``summary.csv``): STATISTICS.md section 6.

One row per (configuration, outcome column): n, mean, sd, quantiles, IQM, a bootstrap CI of the mean
and, for accuracies, the evaluation noise floor sqrt(p(1 - p)/n_eval).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from . import resample
from .table import AnalysisError
from .table import config_labels as table_labels

DEFAULT_COLUMNS: tuple[str, ...] = ("train_acc", "val_acc", "test_acc", "train_loss", "val_loss", "test_loss")
STAT_COLUMNS: tuple[str, ...] = ("n", "n_missing", "mean", "sd", "min", "p5", "p25", "p50", "p75", "p95", "max",
                                 "iqm", "ci_low", "ci_high", "noise_floor", "sd_over_floor")


def config_labels(df: pd.DataFrame, factors: Sequence[str]) -> pd.Series:
    """The ``config`` label of every row, exactly as ``table.prepare`` builds it ("f1=v1, f2=v2";
    "all runs" without factors). (N,) -> (N,) strings."""
    factors = list(factors)
    missing = [f for f in factors if f not in df.columns]
    if missing:
        raise AnalysisError(f"factor column(s) {', '.join(map(repr, missing))} not in the runs table; "
                            f"columns: {', '.join(map(str, df.columns))}")
    return table_labels(df, factors)


def is_accuracy(column: str) -> bool:
    """Whether an outcome column is an accuracy in [0, 1] (``acc``, ``*_acc``, ``*accuracy*``)."""
    c = column.lower()
    return c == "acc" or c.endswith("_acc") or "accuracy" in c


def eval_size_column(column: str) -> str:
    """The column holding the evaluation-set size of an accuracy column: ``val_acc`` -> ``n_val``."""
    prefix = column.lower().removesuffix("_accuracy").removesuffix("_acc")
    return f"n_{prefix}"


def noise_floor(p: float, n_eval: float) -> float:
    """Evaluation noise floor sqrt(p(1 - p)/n_eval) of an accuracy p measured on n_eval examples; NaN
    when p is outside [0, 1] or n_eval is not positive."""
    if not (np.isfinite(p) and np.isfinite(n_eval)) or not 0.0 <= p <= 1.0 or n_eval <= 0:
        return float("nan")
    return float(np.sqrt(p * (1.0 - p) / n_eval))


def bootstrap_mean_ci(x, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """95% percentile bootstrap CI of the mean of x (non-finite values dropped), resampling values with
    replacement ``n_boot`` times with ``np.random.default_rng(seed)``. (n,) -> (lo, hi); NaN if empty."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    means = resample.mean_draws(x, n_boot, np.random.default_rng(seed))
    alpha = (1.0 - level) / 2.0
    return resample.percentile_ci(means, (100 * alpha, 100 * (1 - alpha)))


def describe(x, *, n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """The summary statistics of one sample (non-finite values counted in ``n_missing`` and dropped):
    (n,) -> dict with the keys of ``STAT_COLUMNS`` except the noise floor. sd uses ddof=1."""
    x = np.asarray(x, dtype=float)
    finite = x[np.isfinite(x)]
    out: dict[str, float] = {"n": int(finite.size), "n_missing": int(x.size - finite.size)}
    if finite.size == 0:
        out.update({k: float("nan") for k in STAT_COLUMNS[2:14]})
        return out
    q = np.percentile(finite, [5, 25, 50, 75, 95])
    lo, hi = bootstrap_mean_ci(finite, n_boot=n_boot, seed=seed)
    out.update({
        "mean": float(finite.mean()),
        "sd": float(finite.std(ddof=1)) if finite.size > 1 else float("nan"),
        "min": float(finite.min()),
        "p5": float(q[0]), "p25": float(q[1]), "p50": float(q[2]), "p75": float(q[3]), "p95": float(q[4]),
        "max": float(finite.max()),
        "iqm": float(stats.trim_mean(finite, 0.25)),
        "ci_low": lo, "ci_high": hi,
    })
    return out


def summarize(df: pd.DataFrame, factors: Sequence[str], columns: Sequence[str] | None = None, *,
              n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """``summary.csv``: one row per (configuration, outcome column), configurations in order of first
    appearance. Columns: config, *factors, metric, n, n_missing, mean, sd, min, p5..p95, max, iqm,
    ci_low, ci_high, noise_floor, sd_over_floor."""
    factors = list(factors)
    if columns is None:
        columns = [c for c in DEFAULT_COLUMNS if c in df.columns]
    else:
        columns = list(columns)
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise AnalysisError(f"column(s) {', '.join(map(repr, missing))} not in the runs table; "
                                f"columns: {', '.join(map(str, df.columns))}")
    labels = (df["config"] if "config" in df.columns else config_labels(df, factors)).to_numpy()
    header = ["config", *factors, "metric", *STAT_COLUMNS]
    order = list(dict.fromkeys(labels))
    pos = pd.Series(np.arange(len(order)), index=order)
    code = pos[labels].to_numpy()
    first = df.iloc[pd.Series(np.arange(len(df))).groupby(code).min().to_numpy()] if len(df) else df
    parts = []
    for column in columns:
        values = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float)
        stats_ = describe_groups(values, code, len(order), n_boot=n_boot, seed=seed)
        stats_.insert(0, "metric", column)
        for f in reversed(factors):
            stats_.insert(0, f, first[f].to_numpy())
        stats_.insert(0, "config", order)
        floor = np.full(len(order), np.nan)
        n_col = eval_size_column(column)
        if is_accuracy(column) and n_col in df.columns:
            sizes = pd.Series(pd.to_numeric(df[n_col], errors="coerce").to_numpy(dtype=float)).groupby(code).median()
            sizes = sizes.reindex(range(len(order))).to_numpy()
            floor = np.array([noise_floor(m, n) for m, n in zip(stats_["mean"], sizes)])
        stats_["noise_floor"] = floor
        with np.errstate(divide="ignore", invalid="ignore"):
            stats_["sd_over_floor"] = np.where(np.isfinite(floor) & (floor > 0), stats_["sd"] / floor, np.nan)
        stats_["_c"] = np.arange(len(order))
        parts.append(stats_)
    if not parts:
        return pd.DataFrame(columns=header)
    out = pd.concat(parts, ignore_index=True)
    out["_m"] = np.repeat(np.arange(len(parts)), len(order))
    return out.sort_values(["_c", "_m"], kind="stable").drop(columns=["_c", "_m"])[header].reset_index(drop=True)


def describe_groups(values: np.ndarray, code: np.ndarray, n_groups: int, *, n_boot: int = 1000,
                    seed: int = 0) -> pd.DataFrame:
    """:func:`describe` of every group at once: ``values (N,)`` with group index ``code (N,)`` ->
    one row per group ``(n_groups, STAT_COLUMNS[:14])``. Each group's bootstrap draws the same indices
    as :func:`bootstrap_mean_ci` with ``seed`` would for a sample of its size (groups of equal size
    share one draw, applied as counts)."""
    finite = np.isfinite(values)
    cols = {k: np.full(n_groups, np.nan) for k in STAT_COLUMNS[:14]}
    n = np.bincount(code[finite], minlength=n_groups)
    cols["n"] = n.astype(int)
    cols["n_missing"] = np.bincount(code[~finite], minlength=n_groups).astype(int)
    order = np.lexsort((np.arange(len(values)), code))          # stable: each group's values in row order
    order = order[finite[order]]
    vals, grp = values[order], code[order]
    starts = np.r_[0, np.cumsum(n)]
    for size in np.unique(n[n > 0]):
        g = np.flatnonzero(n == size)
        X = np.stack([vals[starts[i]:starts[i + 1]] for i in g])         # (G, size)
        q = np.percentile(X, [5, 25, 50, 75, 95], axis=1)
        cols["mean"][g] = X.mean(axis=1)
        cols["sd"][g] = X.std(axis=1, ddof=1) if size > 1 else np.nan
        cols["min"][g], cols["max"][g] = X.min(axis=1), X.max(axis=1)
        for k, qk in zip(("p5", "p25", "p50", "p75", "p95"), q):
            cols[k][g] = qk
        cols["iqm"][g] = stats.trim_mean(X, 0.25, axis=1)
        counts = resample.counts(resample.indices(np.random.default_rng(seed), size, n_boot), size)
        means = X @ counts.T / size                                      # (G, n_boot)
        cols["ci_low"][g], cols["ci_high"][g] = np.percentile(means, [2.5, 97.5], axis=1)
    out = pd.DataFrame(cols)
    out["n"] = out["n"].astype(int)
    out["n_missing"] = out["n_missing"].astype(int)
    return out
