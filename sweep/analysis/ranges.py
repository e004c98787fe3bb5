"""Continuous factors cut into a few labelled ranges (at most ~6), for the conditional rows of
``variance.csv``, for violins and heatmaps of a continuous factor, and for findings worded in ranges
("lr below 3e-4"). Edges sit at quantiles of the configurations' values on the factor's sampling scale,
rounded to two significant digits so that labels read well; every range holds at least
``min_configs`` configurations.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .kinds import FactorKind, format_value

__all__ = ["cut", "range_labels", "range_words"]


def _round2(x: float) -> float:
    if x == 0 or not np.isfinite(x):
        return x
    return float(f"{x:.2g}")


def _edges(values: np.ndarray, log: bool, n_bins: int, min_configs: int) -> list[float]:
    """Inner edges (sorted, rounded) splitting ``values (C,)`` into at most ``n_bins`` ranges of at
    least ``min_configs`` values each."""
    u = np.log10(values) if log else values
    k = int(max(1, min(n_bins, len(values) // max(min_configs, 1))))
    qs = np.quantile(u, np.linspace(0, 1, k + 1)[1:-1]) if k > 1 else []
    edges = []
    for q in qs:
        e = _round2(10 ** q if log else q)
        if (not edges or e > edges[-1]) and values.min() < e <= values.max():
            edges.append(e)
    # merge ranges that rounding left too small
    while edges:
        counts = np.bincount(np.searchsorted(edges, values, side="right"), minlength=len(edges) + 1)
        small = int(np.argmin(counts))
        if counts[small] >= min_configs:
            break
        edges.pop(min(small, len(edges) - 1) if small > 0 else 0)
    return edges


def range_labels(edges: list[float], name: str) -> list[str]:
    """Labels of the ranges cut at ``edges``: "lr < 3e-04", "3e-04 ≤ lr < 0.003", "lr ≥ 0.003"."""
    f = [format_value(e, 2) for e in edges]
    if not edges:
        return [f"all {name}"]
    out = [f"{name} < {f[0]}"]
    out += [f"{a} ≤ {name} < {b}" for a, b in zip(f[:-1], f[1:])]
    out.append(f"{name} ≥ {f[-1]}")
    return out


def range_words(label: str) -> str:
    """A range label in words: "lr < 3e-04" -> "for lr below 3e-04", "a ≤ lr < b" -> "for lr from a
    to b", "lr ≥ b" -> "for lr above b"."""
    if " ≤ " in label and " < " in label:
        lo, rest = label.split(" ≤ ", 1)
        name, hi = rest.split(" < ", 1)
        return f"for {name} from {lo} to {hi}"
    if " < " in label:
        name, hi = label.split(" < ", 1)
        return f"for {name} below {hi}"
    if " ≥ " in label:
        name, lo = label.split(" ≥ ", 1)
        return f"for {name} above {lo}"
    return f"for {label}"


def cut(values: pd.Series, kind: FactorKind, name: str, *, n_bins: int = 6,
        min_configs: int = 3) -> pd.Categorical:
    """The range of every value ``(n,)`` of a numeric factor as an ordered categorical whose
    categories are :func:`range_labels`; edges from the distinct values (one per configuration)."""
    x = values.to_numpy(dtype=float)
    uniq = np.unique(x[np.isfinite(x)])
    log = bool(kind.log and uniq.size and uniq.min() > 0)
    edges = _edges(uniq, log, n_bins, min_configs)
    labels = range_labels(edges, name)
    idx = np.searchsorted(edges, x, side="right")
    return pd.Categorical.from_codes(idx, categories=labels, ordered=True)
