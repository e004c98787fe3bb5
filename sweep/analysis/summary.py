"""Per-configuration summary of a runs table (``summary.csv``): STATISTICS.md section 6.

One row per (configuration, outcome column): n, mean, sd, quantiles, IQM, a bootstrap CI of the mean
and, for accuracies, the evaluation noise floor sqrt(p(1 - p)/n_eval).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .table import AnalysisError

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
    if not factors:
        return pd.Series("all runs", index=df.index, dtype=object)
    if len(df) == 0:
        return pd.Series([], index=df.index, dtype=object)
    return df[factors].astype(str).apply(lambda r: ", ".join(f"{f}={v}" for f, v in r.items()), axis=1)


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
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.percentile(means, [100 * alpha, 100 * (1 - alpha)])
    return float(lo), float(hi)


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
    labels = config_labels(df, factors)
    header = ["config", *factors, "metric", *STAT_COLUMNS]
    rows: list[dict] = []
    for label in dict.fromkeys(labels):
        group = df[(labels == label).to_numpy()]
        first = group.iloc[0]
        for column in columns:
            values = pd.to_numeric(group[column], errors="coerce").to_numpy(dtype=float)
            row = {"config": label, **{f: first[f] for f in factors}, "metric": column,
                   **describe(values, n_boot=n_boot, seed=seed)}
            floor = float("nan")
            n_col = eval_size_column(column)
            if is_accuracy(column) and n_col in group.columns:
                sizes = pd.to_numeric(group[n_col], errors="coerce").to_numpy(dtype=float)
                sizes = sizes[np.isfinite(sizes)]
                if sizes.size:
                    floor = noise_floor(row["mean"], float(np.median(sizes)))
            row["noise_floor"] = floor
            row["sd_over_floor"] = row["sd"] / floor if np.isfinite(floor) and floor > 0 else float("nan")
            rows.append(row)
    return pd.DataFrame(rows, columns=header)
