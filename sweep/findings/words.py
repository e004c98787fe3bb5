"""Numbers and intervals as the findings print them: shares as percentages with one decimal, every
other number to 2-3 significant digits, exact zeros as 0 (``../shared/STATISTICS.md`` section 9)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..analysis.kinds import format_value

__all__ = ["num", "pct", "ci", "val", "diff", "row", "finite"]


def finite(x) -> bool:
    try:
        return x is not None and bool(np.isfinite(float(x)))
    except (TypeError, ValueError):
        return False


def num(x, digits: int = 3) -> str:
    """A number to ``digits`` significant digits; ``n/a`` when missing."""
    if not finite(x):
        return "n/a"
    x = float(x)
    return "0" if x == 0 else format_value(x, digits)


def pct(x, decimals: int = 1) -> str:
    """A share as a percentage: ``61.3%``; exact 0 as ``0%``."""
    if not finite(x):
        return "n/a"
    x = float(x)
    if x == 0:
        return "0%"
    return f"{100 * x:.{decimals}f}%"


def ci(lo, hi, as_pct: bool = True, decimals: int = 1) -> str:
    """``95% CI 53.8–76.1%`` (or 3 significant digits when not a percentage); ``no CI`` when missing."""
    if not (finite(lo) and finite(hi)):
        return "no CI"
    if as_pct:
        a, b = (pct(v, decimals).rstrip("%") for v in (lo, hi))
        return f"95% CI {a}–{b}%"
    return f"95% CI {num(lo)}–{num(hi)}"


def val(a, x) -> str:
    """A metric value: accuracies as percentages (one decimal), everything else to 3 significant digits."""
    if not finite(x):
        return "n/a"
    return f"{100 * float(x):.1f}%" if a.is_accuracy else num(x)


def diff(a, x) -> str:
    """A difference of the metric: percentage points for accuracies."""
    if not finite(x):
        return "n/a"
    return f"{100 * float(x):.1f} pp" if a.is_accuracy else num(x)


def row(df: pd.DataFrame, **eq) -> pd.Series | None:
    """The first row of ``df`` whose columns equal ``eq``, or None."""
    if df is None or len(df) == 0:
        return None
    m = np.ones(len(df), bool)
    for k, v in eq.items():
        if k not in df:
            return None
        m &= (df[k] == v).to_numpy()
    return df[m].iloc[0] if m.any() else None


def ratio_text(hi: float, lo: float) -> str:
    """``, 4× smaller`` when the ratio is at least 1.5, else empty."""
    r = hi / lo if lo > 0 else math.inf
    return f", {num(r, 2)}× smaller" if np.isfinite(r) and r >= 1.5 else ""
