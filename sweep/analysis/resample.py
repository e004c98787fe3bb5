"""The one bootstrap of the analysis (``../shared/STATISTICS.md`` section 4): resampled indices (seed
tuples paired across configurations, or the values of one sample), the counts they give, and the
interval types built from the draws (percentile, basic on the raw or logit scale, Hesterberg's
expanded levels).

Every resampling in ``sweep.analysis`` draws its indices here, with ``rng.integers(0, n, size=(B, n))``
from ``np.random.default_rng(seed)``: a fixed seed makes a report reproducible, and the same indices
applied to every configuration keep the pairing of common seeds.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["LOGIT_EPS", "basic_ci", "counts", "expanded_levels", "indices", "logit", "mean_draws",
           "percentile_ci", "percentiles", "seed_weights"]

LOGIT_EPS = 1e-12


def indices(rng: np.random.Generator, n: int, n_boot: int, k: int | None = None) -> np.ndarray:
    """``(n_boot, k)`` indices drawn with replacement from ``range(n)`` (``k`` defaults to ``n``)."""
    return rng.integers(0, n, size=(n_boot, n if k is None else k))


def counts(ix: np.ndarray, n: int) -> np.ndarray:
    """Per-row counts ``(B, n)`` of the indices ``ix (B, k)``."""
    B = ix.shape[0]
    flat = (ix + n * np.arange(B)[:, None]).ravel()
    return np.bincount(flat, minlength=B * n).reshape(B, n).astype(float)


def seed_weights(n_seeds: int, n_boot: int, rng: np.random.Generator, *, codes: np.ndarray | None = None,
                 n_levels: list[int] | None = None) -> np.ndarray:
    """Bootstrap weights ``W (1 + B, S)`` over the ``S`` seed tuples: row 0 all ones (the estimate),
    row ``b`` how often each tuple was drawn. With ``codes (S, m)`` / ``n_levels`` (a crossed design)
    each source's levels are drawn independently and a tuple's weight is the product of its levels'
    counts (the pigeonhole bootstrap)."""
    if codes is not None and n_levels:
        W = np.ones((n_boot, n_seeds))
        for j, n in enumerate(n_levels):
            W *= counts(indices(rng, n, n_boot), n)[:, codes[:, j]]
        return np.vstack([np.ones(n_seeds), W])
    return np.vstack([np.ones(n_seeds), counts(indices(rng, n_seeds, n_boot), n_seeds)])


def mean_draws(x: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap means ``(n_boot,)`` of the sample ``x (n,)``."""
    return x[indices(rng, x.size, n_boot)].mean(axis=1)


def expanded_levels(n_units: int | None) -> tuple[float, float]:
    """Percentile levels (in %) of a 95% interval from ``n_units`` resampled units: Hesterberg's
    (2015) expansion, Phi(+-sqrt(n / (n - 1)) t_{n-1, 0.975}), which undoes the bootstrap's 1/n (not
    1/(n - 1)) variance and the t-like extra uncertainty of a spread estimated from n units.
    ``None`` or n < 2: the plain 2.5% / 97.5%."""
    if n_units is None or n_units < 2:
        return 2.5, 97.5
    from scipy.stats import norm, t

    z = math.sqrt(n_units / (n_units - 1)) * float(t.ppf(0.975, n_units - 1))
    return 100 * float(norm.cdf(-z)), 100 * float(norm.cdf(z))


def logit(x: np.ndarray | float) -> np.ndarray:
    x = np.clip(np.asarray(x, dtype=float), LOGIT_EPS, 1 - LOGIT_EPS)
    return np.log(x) - np.log1p(-x)


def percentiles(draws: np.ndarray, axis: int = -1,
                levels: tuple[float, float] = (2.5, 97.5)) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of the draws along ``axis``, NaN draws ignored (NaN where all are)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # all-NaN slices give NaN
        lo, hi = np.nanpercentile(draws, levels, axis=axis)
    return lo, hi


def percentile_ci(draws: np.ndarray, levels: tuple[float, float] = (2.5, 97.5)) -> tuple[float, float]:
    """Percentile interval of the finite draws ``(B,)`` (NaN when there are none)."""
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(draws, levels)
    return float(lo), float(hi)


def basic_ci(est: float, draws: np.ndarray, pivot: float, levels: tuple[float, float] = (2.5, 97.5),
             on_logit: bool = False) -> tuple[float, float]:
    """Basic (pivotal) bootstrap interval ``[est - (q_hi - pivot), est - (q_lo - pivot)]`` of a share,
    clipped to [0, 1]; with ``on_logit`` computed on the logit scale and mapped back. ``pivot`` is the
    value the statistic estimates in the bootstrap population, so ``draws - pivot`` mimics
    ``est - truth`` including its bias."""
    if not (np.isfinite(est) and np.isfinite(pivot)):
        return math.nan, math.nan
    if on_logit:
        lo, hi = percentile_ci(logit(draws[np.isfinite(draws)]), levels)
        if not np.isfinite(lo):
            return math.nan, math.nan
        e, p = float(logit(est)), float(logit(pivot))
        out = 1.0 / (1.0 + np.exp(-np.array([e - (hi - p), e - (lo - p)])))
        out = np.where(out <= 2 * LOGIT_EPS, 0.0, np.where(out >= 1 - 2 * LOGIT_EPS, 1.0, out))
        return float(out[0]), float(out[1])
    lo, hi = percentile_ci(draws, levels)
    if not np.isfinite(lo):
        return math.nan, math.nan
    return float(np.clip(est - (hi - pivot), 0.0, 1.0)), float(np.clip(est - (lo - pivot), 0.0, 1.0))
