"""Failure modes and traps per configuration: STATISTICS.md section 7.

Aggregates the engine's per-run diagnostics (stagnation, divergence, saturation, dead units, single-class
predictions, untrained accuracy, weight change), flags bimodal outcomes, and catches the trap of a zero
seed spread that only means every run predicts one class.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .summary import config_labels, eval_size_column, is_accuracy, noise_floor
from .table import AnalysisError

ABS_TOL = 1e-9
"""Gaps and spreads at or below this are treated as zero (identical values never make two groups)."""
SARLE_THRESHOLD = 5.0 / 9.0
SARLE_MIN_N = 10
UNTRAINED_TOL = 1e-12
TINY_WEIGHT_CHANGE = 1e-3
MAJORITY = 0.5
FAILURE_MODES = ("stagnated", "diverged", "saturated", "single_class", "at_untrained")   # drawn in the failure figure
MAX_FAILURE_ROWS = 25   # configurations drawn one per row in the failure-mode figure; the rest as one aggregate row


def _numeric(df: pd.DataFrame, column: str) -> np.ndarray | None:
    """A column as floats (non-numeric -> NaN), or None when the table has no such column."""
    if column not in df.columns:
        return None
    return pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=float)


def _boolean(df: pd.DataFrame, column: str) -> np.ndarray | None:
    """A flag column as floats 1/0 with NaN where unknown (accepts bools, 0/1 and "True"/"False")."""
    if column not in df.columns:
        return None
    mapping = {"true": 1.0, "false": 0.0, "1": 1.0, "0": 0.0, "1.0": 1.0, "0.0": 0.0}

    def one(v) -> float:
        if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA:
            return float("nan")
        if isinstance(v, (bool, np.bool_, int, np.integer, float, np.floating)):
            return float(bool(v))
        return mapping.get(str(v).strip().lower(), float("nan"))

    return np.array([one(v) for v in df[column].tolist()], dtype=float)


def _share(flags: np.ndarray | None) -> float:
    """Mean of 1/0 flags over the rows where they are known (NaN if none is)."""
    if flags is None:
        return float("nan")
    known = flags[np.isfinite(flags)]
    return float(known.mean()) if known.size else float("nan")


def _threshold_flags(values: np.ndarray | None, cut: float, above: bool) -> np.ndarray | None:
    """1 where value > cut (or < cut), 0 otherwise, NaN where the value is not finite."""
    if values is None:
        return None
    hit = values > cut if above else values < cut
    return np.where(np.isfinite(values), hit.astype(float), np.nan)


def sarle_coefficient(x) -> float:
    """Sarle's bimodality coefficient b = (g^2 + 1) / (k + 3(n-1)^2 / ((n-2)(n-3))) with bias-corrected
    skewness g and excess kurtosis k. (n,) -> float; NaN for n < 4 or a constant sample."""
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    n = x.size
    if n < 4 or float(np.ptp(x)) <= ABS_TOL:
        return float("nan")
    g = float(stats.skew(x, bias=False))
    k = float(stats.kurtosis(x, fisher=True, bias=False))
    return (g * g + 1.0) / (k + 3.0 * (n - 1) ** 2 / ((n - 2) * (n - 3)))


def _largest_gap_split(x: np.ndarray, min_gap: float, require_separation: bool) -> float:
    """Largest gap > ``min_gap`` between consecutive sorted values that leaves >= 2 values on each
    side; with ``require_separation`` it must also exceed 3 x max(sd of the two groups, ddof=1).
    x must be sorted. NaN if no gap qualifies."""
    best = float("nan")
    for i in range(2, x.size - 1):
        gap = float(x[i] - x[i - 1])
        if gap <= min_gap:
            continue
        if require_separation:
            spread = max(float(x[:i].std(ddof=1)), float(x[i:].std(ddof=1)))
            if gap <= 3.0 * spread:
                continue
        if not gap <= best:  # also true while best is NaN
            best = gap
    return best


def is_bimodal(x, min_gap: float = ABS_TOL) -> tuple[bool, float, float]:
    """Bimodal outcomes (some seeds train, some do not). (n,) -> (flag, gap, coefficient).

    Flag when the sorted outcomes split into two groups (each >= 2 values) whose gap exceeds 3x the
    larger of the two groups' sds (ddof=1) and ``min_gap``, or when Sarle's coefficient > 5/9 with
    n >= 10 and some split (>= 2 values per side) has a gap > ``min_gap`` (a lone outlier or one
    distinct value is not a second mode). ``gap`` is the largest qualifying gap (NaN when not bimodal);
    ``coefficient`` is Sarle's b (NaN if n < 4 or constant).
    """
    x = np.asarray(x, dtype=float)
    x = np.sort(x[np.isfinite(x)])
    min_gap = max(float(min_gap), ABS_TOL)
    coef = sarle_coefficient(x)
    gap = _largest_gap_split(x, min_gap, require_separation=True)
    if np.isfinite(gap):
        return True, gap, coef
    if x.size >= SARLE_MIN_N and np.isfinite(coef) and coef > SARLE_THRESHOLD:
        gap = _largest_gap_split(x, min_gap, require_separation=False)
        if np.isfinite(gap):
            return True, gap, coef
    return False, float("nan"), coef


def _untrained_flags(df: pd.DataFrame, acc_col: str) -> np.ndarray | None:
    """1 where the final accuracy equals the untrained network's (``init_<acc_col>``) within 1e-12."""
    final, init = _numeric(df, acc_col), _numeric(df, f"init_{acc_col}")
    if final is None or init is None:
        return None
    known = np.isfinite(final) & np.isfinite(init)
    return np.where(known, (np.abs(final - init) <= UNTRAINED_TOL).astype(float), np.nan)


def _any_flags(*flags: np.ndarray | None) -> np.ndarray | None:
    """Row-wise OR of 1/0/NaN flags: 1 if any known flag is 1, 0 if some are known and none is 1,
    NaN if none is known. None when no flag column exists."""
    present = [f for f in flags if f is not None]
    if not present:
        return None
    stacked = np.vstack(present)
    known = np.isfinite(stacked).any(axis=0)
    hit = (np.nan_to_num(stacked, nan=0.0) > 0).any(axis=0)
    return np.where(known, hit.astype(float), np.nan)


def failure_modes(df: pd.DataFrame, factors: Sequence[str], *, metric: str = "val_acc",
                  acc_col: str = "train_acc", bimodal_above_noise: bool = True) -> pd.DataFrame:
    """Per configuration (order of first appearance): config, *factors, n, stagnated, frozen, diverged,
    saturated, dead, single_class, at_untrained, not_training, bimodal, bimodal_gap, sd, mean,
    robust_looking_but_degenerate. Shares are over the runs where the diagnostic is known (NaN when
    the column is missing or never finite; ``frozen``, from the optional ``frozen_step``, is over all
    runs, NaN meaning never frozen); n counts all runs of the configuration.

    With ``bimodal_above_noise`` (default) the bimodality gap must also exceed the configuration's
    evaluation noise floor (accuracy metrics with an ``n_<split>`` column), so outcomes one or two
    evaluation examples apart are not called two modes."""
    if metric not in df.columns:
        raise AnalysisError(f"no column {metric!r} in the runs table; columns: {', '.join(map(str, df.columns))}")
    factors = list(factors)
    labels = df["config"] if "config" in df.columns else config_labels(df, factors)
    header = ["config", *factors, "n", "stagnated", "frozen", "diverged", "saturated", "dead", "single_class",
              "at_untrained", "not_training", "bimodal", "bimodal_gap", "sd", "mean",
              "robust_looking_but_degenerate"]
    n_col = eval_size_column(metric)
    if df.empty:
        return pd.DataFrame(columns=header)
    code, order = pd.factorize(labels, sort=False)
    stagnation, frozen = _numeric(df, "stagnation_step"), _numeric(df, "frozen_step")
    untrained = _untrained_flags(df, acc_col)
    flags = {
        "stagnated": None if stagnation is None else np.isfinite(stagnation).astype(float),
        "frozen": None if frozen is None else np.isfinite(frozen).astype(float),
        "diverged": _boolean(df, "diverged"),
        "saturated": _threshold_flags(_numeric(df, "saturated_frac"), MAJORITY, above=True),
        "dead": _threshold_flags(_numeric(df, "dead_frac"), MAJORITY, above=True),
        "single_class": _boolean(df, "single_class"),
        "at_untrained": untrained,
        "not_training": _any_flags(untrained, _threshold_flags(_numeric(df, "rel_weight_change"),
                                                                TINY_WEIGHT_CHANGE, above=False)),
    }
    out = pd.DataFrame({"config": list(order)})
    first = df.iloc[pd.Series(np.arange(len(df))).groupby(code).min().to_numpy()]
    for f in factors:
        out[f] = first[f].to_numpy()
    out["n"] = np.bincount(code, minlength=len(order))
    for name, fl in flags.items():       # share over the runs where the diagnostic is known
        out[name] = np.nan if fl is None else pd.Series(fl).groupby(code).mean().reindex(range(len(order))).to_numpy()
    y = _numeric(df, metric)
    sizes = _numeric(df, n_col)
    groups = pd.Series(y).groupby(code)
    out["mean"] = groups.mean().to_numpy()
    out["sd"] = groups.std(ddof=1).to_numpy()
    med = pd.Series(sizes).groupby(code).median().to_numpy() if sizes is not None else np.full(len(order), np.nan)
    bim, gaps, traps = [], [], []
    values = [v[np.isfinite(v)] for _, v in groups]
    for k, yk in enumerate(values):
        floor = noise_floor(out["mean"][k], med[k]) if is_accuracy(metric) and np.isfinite(med[k]) else float("nan")
        use_floor = bimodal_above_noise and np.isfinite(floor)
        b, gap, _ = is_bimodal(yk, min_gap=floor if use_floor else ABS_TOL)
        sd, sc = out["sd"][k], out["single_class"][k]
        flat = np.isfinite(sd) and (sd <= ABS_TOL or (np.isfinite(floor) and sd < 0.5 * floor))
        bim.append(bool(b))
        gaps.append(gap)
        traps.append(bool(flat and np.isfinite(sc) and sc >= MAJORITY))
    out["bimodal"], out["bimodal_gap"], out["robust_looking_but_degenerate"] = bim, gaps, traps
    return out[header]


def stagnation_share_of_spread(df: pd.DataFrame, factors: Sequence[str], metric: str) -> float:
    """"Runs that stagnated account for X of the spread": sum over stagnated runs (finite
    ``stagnation_step``) of (y - grand mean)^2 divided by the total sum of squares of the metric around
    the grand mean, over runs with a finite metric. 0 if none stagnated; NaN without a
    ``stagnation_step`` column or when the total is 0. ``factors`` are only validated."""
    config_labels(df.iloc[:0], factors)  # validates the factor columns
    if metric not in df.columns:
        raise AnalysisError(f"no column {metric!r} in the runs table; columns: {', '.join(map(str, df.columns))}")
    stagnation = _numeric(df, "stagnation_step")
    if stagnation is None:
        return float("nan")
    y = _numeric(df, metric)
    keep = np.isfinite(y)
    y, stagnated = y[keep], np.isfinite(stagnation[keep])
    if y.size == 0:
        return float("nan")
    sq = (y - y.mean()) ** 2
    total = float(sq.sum())
    if total <= 0:
        return float("nan")
    return float(sq[stagnated].sum() / total)
