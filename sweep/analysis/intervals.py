"""Confidence intervals built from the distributions of mean squares (no resampling), for variance
components that a bootstrap cannot pin down (few levels, or a residual after a fit).

Burdick & Graybill, *Confidence Intervals on Variance Components* (1992), section 3: for
``theta = c1 E[MS1] - c2 E[MS2]`` (c1, c2 > 0) with independent mean squares ``MS_i ~ E[MS_i]
chi2(n_i) / n_i``, the modified large-sample (MLS) interval of Ting, Burdick, Graybill, Jeyaratnam &
Lu (1990); for a positive combination ``sum_i c_i E[MS_i]`` the MLS interval of Graybill & Wang (1980).
Both hold their level closely even with few degrees of freedom, where Satterthwaite's does not.
"""
from __future__ import annotations

import math

from scipy.stats import chi2, f as f_dist

__all__ = ["mls_difference", "mls_sum"]


def _g_h(df: float, alpha: float) -> tuple[float, float]:
    """``G = 1 - 1/F(alpha; df, inf)`` and ``H = 1/F(1 - alpha; df, inf) - 1`` (F upper points)."""
    if not math.isfinite(df):
        return 0.0, 0.0
    return 1.0 - df / float(chi2.isf(alpha, df)), df / float(chi2.ppf(alpha, df)) - 1.0


def mls_difference(c1: float, ms1: float, df1: float, c2: float, ms2: float, df2: float,
                   level: float = 0.95) -> tuple[float, float, float]:
    """Estimate and two-sided ``level`` MLS interval of ``c1 E[MS1] - c2 E[MS2]``; bounds not
    truncated (the caller clips at 0). NaN when a degree of freedom is not positive."""
    if not (df1 > 0 and df2 > 0):
        return math.nan, math.nan, math.nan
    a = (1.0 - level) / 2.0
    g1, h1 = _g_h(df1, a)
    g2, h2 = _g_h(df2, a)
    f1 = float(f_dist.isf(a, df1, df2))          # upper a point
    f2 = float(f_dist.ppf(a, df1, df2))          # lower a point
    g12 = ((f1 - 1.0) ** 2 - g1 ** 2 * f1 ** 2 - h2 ** 2) / f1
    h12 = ((1.0 - f2) ** 2 - h1 ** 2 * f2 ** 2 - g2 ** 2) / f2
    s1, s2 = c1 * ms1, c2 * ms2
    est = s1 - s2
    lo = est - math.sqrt(max(g1 ** 2 * s1 ** 2 + h2 ** 2 * s2 ** 2 + g12 * s1 * s2, 0.0))
    hi = est + math.sqrt(max(h1 ** 2 * s1 ** 2 + g2 ** 2 * s2 ** 2 + h12 * s1 * s2, 0.0))
    return est, lo, hi


def mls_sum(terms: list[tuple[float, float, float]], level: float = 0.95) -> tuple[float, float, float]:
    """Estimate and two-sided ``level`` Graybill-Wang interval of ``sum c_i E[MS_i]`` for terms
    ``(c_i, MS_i, df_i)`` with ``c_i >= 0``."""
    a = (1.0 - level) / 2.0
    est = sum(c * ms for c, ms, _ in terms)
    lo2 = hi2 = 0.0
    for c, ms, df in terms:
        g, h = _g_h(df, a)
        lo2 += (g * c * ms) ** 2
        hi2 += (h * c * ms) ** 2
    return est, est - math.sqrt(lo2), est + math.sqrt(hi2)
