"""Variance attribution for sampled search spaces (``../shared/STATISTICS.md`` section 8): the
``method = "fanova"`` rows of ``variance.csv``, used whenever a factor is continuous (one value per
configuration, so it cannot be a factorial term).

Model: the configuration means are a fitted surface (``surface.py``: smooth main effects on the
sampling scale, categorical effects, pairwise interactions; REML) plus what the surface does not
explain; the seed is the within-configuration variance. Shares are of the total
``sum_T V_T + sigma2_unexplained + sigma2_seed`` (variance components, not observed shares), with
``V_T`` the functional-ANOVA variance of term T (``fanova.py``).

Intervals (95%): one bootstrap of ``B`` draws that resamples configurations (each with all its runs)
for the surface, refitted with the smoothing parameters of the fit, and resamples the seed tuples
(paired across configurations; pigeonhole for crossed designs) together with the configurations for
the seed variance. Term and seed rows: BCa interval (Efron 1987) of the untruncated share, the
acceleration from a jackknife over configurations. A term that Wood's (2013) Wald test cannot tell
from zero (p > 0.05) gets a lower end of 0 and as its upper end the 97.5th percentile of a second set
of draws in which the smoothing parameters are chosen again (Fellner-Schall): with fixed smoothing a
term near zero cannot come out of its penalty's null space, and its upper end would be too low. The
test uses each configuration's own seed noise, moderated towards the pooled noise (a sandwich
covariance). In replicate designs the
resampled seed variance is rescaled by ``n_c / (n_c - 1)``, the resampling bias of a sample variance
(with 5 seeds the draws are otherwise 20% low and the interval misses high truths). The unexplained
row: normal approximation (lower end) and Satterthwaite chi-square (upper end) of its moment estimator,
widened by the total's spread (``_unexplained_row``); resampled configurations would count their
duplicates as independent.
Measured coverage: ``docs/validation.md`` (``make validate``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from . import resample
from .fanova import term_variances
from .surface import Surface, fit_surface
from .table import Runs

__all__ = ["UNEXPLAINED", "SurfaceFit", "surface_rows", "fit_runs", "pd_curves", "strongest_categorical"]

UNEXPLAINED = "unexplained by the surface"
SEED = "seed (within configuration)"
TIMES = " \u00d7 "
MIN_CONFIGS_INTERACTIONS = 20     # fewer configurations: main effects only (said in the notes)
FANOVA_NOTE = ("functional ANOVA of a fitted surface (smooth terms on the sampling scale, pairwise interactions, "
               "REML); share of the total variance (components)")


def fit_runs(runs: Runs, Y: np.ndarray) -> Surface:
    """The surface fitted to the configuration means of ``Y (C, S)`` (NaN: missing runs)."""
    first = runs.first()
    factors = [f for f in runs.factors if first[f].nunique(dropna=False) > 1]
    smooth = set(runs.smooth_factors)
    values = {f: first[f].to_numpy() for f in factors}
    n = np.isfinite(Y).sum(axis=1)
    ybar = np.nanmean(np.where(n[:, None] > 0, Y, 0.0), axis=1)
    return fit_surface(values, ybar, n, smooth={f: f in smooth for f in factors},
                       log={f: bool(runs.kinds[f].log) and f in smooth for f in factors},
                       interactions=len(ybar) >= MIN_CONFIGS_INTERACTIONS)


def _term_label(s: Surface, factors: tuple[int, ...]) -> str:
    return TIMES.join(s.names[j] for j in factors)


def _within(Y: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Within-configuration sums of squares and degrees of freedom ``(B, C)`` under seed weights
    ``W (B, S)``."""
    M = np.isfinite(Y).astype(float)
    Y0 = np.where(M > 0, Y, 0.0)
    n = W @ M.T
    s1 = W @ Y0.T
    s2 = W @ (Y0 * Y0).T
    ss = np.maximum(s2 - np.divide(s1 * s1, n, out=np.zeros_like(s1), where=n > 0), 0.0)
    return ss, np.maximum(n - 1.0, 0.0)


@dataclass
class SurfaceFit:
    """The fitted surface with its bootstrap: coefficients ``beta (1 + B, p)`` (row 0 the fit) and
    configuration multiplicities ``V (1 + B, C)`` of every draw."""

    surface: Surface
    beta: np.ndarray
    V: np.ndarray


def _draws(s: Surface, Y: np.ndarray, W: np.ndarray, V: np.ndarray,
           select: bool = True, replicate: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Components ``(1 + B, n_terms + 2)`` per draw: the terms' variances, the unexplained variance
    (untruncated) and the seed variance, and the coefficients ``(1 + B, p)``. Row 0 is the estimate
    (all weights one). ``select``: smoothing parameters chosen again in every draw; ``replicate``:
    ``W`` resamples seed tuples (multinomial), whose variance bias is then corrected.

    The unexplained variance is a moment estimator that allows every configuration its own seed
    noise: ``(sum_c r_c^2 - sum_c D_cc s2_c / n_c) / sum_c D_cc`` (``Surface.residual_weights``), with
    ``s2_c / n_c`` the variance of configuration c's mean."""
    ss, df = _within(Y, W)
    if replicate and len(W) > 1:            # resampled seeds: E[s2*] = s2 (n - 1) / n
        n = np.isfinite(Y).sum(axis=1).astype(float)
        ss[1:] *= np.divide(n, n - 1.0, out=np.ones_like(n), where=n > 1)
    sig2 = (V * ss).sum(axis=1) / np.maximum((V * df).sum(axis=1), 1e-300)
    iterations = select_iterations(len(s.y)) if select else 0
    if len(V) > 1 and iterations:
        beta, _, _ = s.refit_select(np.broadcast_to(s.y, V[1:].shape), V[1:] * s.w, iterations=iterations)
        beta = np.vstack([s.beta, beta])
    elif len(V) > 1:
        beta = np.vstack([s.beta, s.refit(np.broadcast_to(s.y, V[1:].shape), V[1:] * s.w)])
    else:
        beta = s.beta[None]
    tv = term_variances(s, beta, V)
    r = s.y[None, :] - beta @ s.X.T
    noise = _mean_noise(ss, df)
    D = s.residual_weights()
    unexplained = ((V * r * r).sum(axis=1) - (V * noise * D).sum(axis=1)) / np.maximum((V * D).sum(axis=1), 1e-300)
    return np.column_stack([tv, unexplained, sig2]), beta


def select_iterations(n_configs: int) -> int:
    """Fellner-Schall updates per bootstrap draw: the smoothing choice varies from draw to draw with
    few configurations and hardly at all with many (then the smoothing parameters stay fixed)."""
    return 30 if n_configs < 200 else 10 if n_configs < 1000 else 0


def _mean_noise(ss: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Variance of each configuration's mean ``(B, C)`` from its own runs: ``s2_c / n_c``."""
    n = df + 1.0
    return np.divide(ss, df * n, out=np.zeros_like(ss), where=df > 0)


PRIOR_DF = 4.0   # pooled degrees of freedom each configuration's seed variance is moderated with


def _moderated_noise(ss: np.ndarray, df: np.ndarray) -> np.ndarray:
    """Variance of each configuration's mean ``(C,)`` for the Wald test: its own seed variance
    moderated towards the pooled one with ``PRIOR_DF`` degrees of freedom (Smyth 2004), so a
    configuration whose seeds all gave the same value (a network that predicts one class) does not
    count as a mean known exactly."""
    pooled = float(ss.sum() / df.sum()) if df.sum() > 0 else 0.0
    s2 = (ss + PRIOR_DF * pooled) / (df + PRIOR_DF)
    return s2 / (df + 1.0)


def _jackknife(s: Surface, Y: np.ndarray, rng: np.random.Generator, max_groups: int = 100) -> np.ndarray:
    """Shares ``(G, n_terms + 2)`` with each of ``G`` groups of configurations left out in turn
    (delete-one for up to ``max_groups`` configurations, else a random partition into that many
    groups), smoothing parameters fixed: the acceleration of the BCa intervals."""
    C = Y.shape[0]
    G = min(C, max_groups)
    group = np.arange(C) if G == C else rng.permutation(np.arange(C) % G)
    V = np.vstack([np.ones(C), (group[None, :] != np.arange(G)[:, None]).astype(float)])
    comps, _ = _draws(s, Y, np.ones((len(V), Y.shape[1])), V, select=False)
    return (comps / comps.sum(axis=1, keepdims=True))[1:]


def _bca(raw: np.ndarray, jack: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """BCa interval (Efron 1987) of an untruncated share from its bootstrap draws ``raw[1:]``
    (``raw[0]`` the estimate) and jackknife values ``jack (G,)``, clipped to [0, 1]: the percentiles
    shifted for the draws' median bias and skewness, so a skewed share keeps its shape."""
    from scipy.stats import norm
    d = raw[1:][np.isfinite(raw[1:])]
    if d.size < 10 or not np.isfinite(raw[0]):
        return math.nan, math.nan
    frac = (np.sum(d < raw[0]) + 0.5 * np.sum(d == raw[0])) / d.size
    z0 = norm.ppf(np.clip(frac, 1.0 / d.size, 1 - 1.0 / d.size))
    dev = jack.mean() - jack
    den = 6.0 * np.sum(dev ** 2) ** 1.5
    acc = float(np.sum(dev ** 3) / den) if den > 0 else 0.0
    z = norm.ppf([(1 - level) / 2, (1 + level) / 2])
    q = norm.cdf(z0 + (z0 + z) / (1 - acc * (z0 + z)))
    lo, hi = np.percentile(d, 100 * q)
    return float(np.clip(lo, 0, 1)), float(np.clip(hi, 0, 1))


def _resample(rng: np.random.Generator, n_boot: int, C: int) -> np.ndarray:
    """Configuration multiplicities ``(1 + B, C)``; row 0 all ones."""
    if n_boot == 0:
        return np.ones((1, C))
    return np.vstack([np.ones(C), resample.counts(resample.indices(rng, C, n_boot), C)])


def surface_rows(runs: Runs, Y: np.ndarray, W: np.ndarray, rng: np.random.Generator,
                 ci_note: str, replicate: bool = True) -> tuple[list[dict], dict[str, float], SurfaceFit]:
    """The fANOVA rows of ``variance.csv`` for ``Y (C, S)`` with seed weights ``W (1 + B, S)`` (row 0
    all ones; the same draws as the other global rows), the main-effect share of every factor, and
    the fitted surface with its bootstrap (fixed smoothing). ``replicate``: ``W`` resamples seed
    tuples (not a pigeonhole design)."""
    with threadpool_limits(limits=1):       # many small solves: BLAS threads only contend
        return _surface_rows(runs, Y, W, rng, ci_note, replicate)


def _surface_rows(runs: Runs, Y: np.ndarray, W: np.ndarray, rng: np.random.Generator,
                  ci_note: str, replicate: bool) -> tuple[list[dict], dict[str, float], SurfaceFit]:
    s = fit_runs(runs, Y)
    C, n_boot = Y.shape[0], W.shape[0] - 1
    V = _resample(rng, n_boot, C)
    comps, beta = _draws(s, Y, W, V, select=False, replicate=replicate)
    est = comps[0].copy()
    est[-2] = max(est[-2], 0.0)
    total = float(est.sum())
    raw = comps / comps.sum(axis=1, keepdims=True)
    ss, df = _within(Y, np.ones((1, Y.shape[1])))
    tests = s.term_tests(_moderated_noise(ss[0], df[0]) + max(est[-2], 0.0))
    jack = _jackknife(s, Y, rng) if n_boot else np.zeros((0, raw.shape[1]))
    upper = _upper_ends(s, Y, W, V, raw, [p for _, p in tests], replicate)
    labels = [_term_label(s, T.factors) for T in s.terms]
    note = f"{FANOVA_NOTE}; {ci_note}; configurations resampled too"
    if Y.shape[0] < MIN_CONFIGS_INTERACTIONS and len(s.names) > 1:
        note += f"; main effects only (fewer than {MIN_CONFIGS_INTERACTIONS} configurations for interactions)"
    rows = []
    for j, label in enumerate(labels):
        edf, p = tests[j]
        lo, hi = (0.0, upper[j]) if p > 0.05 and n_boot else _bca(raw[:, j], jack[:, j])
        rows.append(_row(label, est[j] / total, lo, hi,
                         f"{note}; edf {edf:.2g}; Wald test of zero p = {p:.2g}" +
                         ("; lower end 0: not distinguishable from 0" if p > 0.05 else "")))
    rows.append(_unexplained_row(s, Y, est, total, comps))
    lo, hi = _bca(raw[:, -1], jack[:, -1]) if n_boot else (math.nan, math.nan)
    rows.append(_row(SEED, est[-1] / total, lo, hi, f"{note}; pooled within-configuration variance"))
    main = {labels[j]: rows[j]["share"] for j, T in enumerate(s.terms) if len(T.factors) == 1}
    return rows, main, SurfaceFit(s, beta, V)


def _row(source: str, share: float, lo: float, hi: float, note: str) -> dict:
    return {"scope": "global", "source": source, "share": float(share), "ci_low": lo, "ci_high": hi,
            "method": "fanova", "note": note}


def _upper_ends(s: Surface, Y: np.ndarray, W: np.ndarray, V: np.ndarray, raw: np.ndarray,
                p: list[float], replicate: bool) -> np.ndarray:
    """Upper ends ``(n_terms,)`` for terms not distinguishable from zero: the 97.5th percentile of
    draws whose smoothing parameters are chosen again (the fixed-smoothing ``raw`` where every term
    is significant, or where many configurations make the choice stable)."""
    if not any(q > 0.05 for q in p) or len(V) < 2:
        draws = raw
    elif select_iterations(len(s.y)):
        comps, _ = _draws(s, Y, W, V, select=True, replicate=replicate)
        draws = comps / comps.sum(axis=1, keepdims=True)
    else:
        draws = raw
    d = draws[1:, :len(p)]
    return np.clip(np.nanpercentile(d, 97.5, axis=0), 0, 1) if len(d) else np.full(len(p), math.nan)


def _unexplained_row(s: Surface, Y: np.ndarray, est: np.ndarray, total: float, comps: np.ndarray) -> dict:
    """The unexplained component ``tau2`` (moment estimator, clipped at 0) with its interval. With
    ``a = sum_c r_c^2 / sum D`` and ``b = sum_c D_cc v_c / sum D`` (``v_c = s2_c / n_c`` from the
    configuration's own ``n_c - 1`` degrees of freedom), ``tau2 = a - b``. Lower end: normal
    approximation of ``a - b`` (residuals independent, each with variance ``D_cc (tau2 + v_c)``);
    upper end: the upper end of ``a`` minus the lower end of ``b``, each a scaled chi-square
    (Satterthwaite), which keeps their skew and stays wide when a few noisy configurations carry
    ``b``. Both divided
    by the total and widened by the total's own spread on the log scale (configuration draws
    ``comps (1 + B, k)``)."""
    from scipy.stats import chi2
    ss, df = _within(Y, np.ones((1, Y.shape[1])))
    v, dfc = _mean_noise(ss, df)[0], df[0]
    D = s.residual_weights()
    r = s.y - s.X @ s.beta
    a, b = float(r @ r) / D.sum(), float(D @ v) / D.sum()
    tau2 = a - b
    var_a = float(np.sum(2.0 * (D * (max(tau2, 0.0) + v)) ** 2)) / D.sum() ** 2
    var_b = float(np.sum(np.divide(2.0 * (D * v) ** 2, dfc, out=np.zeros_like(v), where=dfc > 0))) / D.sum() ** 2
    lo = max(tau2 - 1.96 * math.sqrt(var_a + var_b), 0.0)
    m = b + max(tau2, 0.0)                   # E[a] under the fitted components (a itself can be ~0)
    nu = 2 * m * m / var_a if var_a > 0 else math.inf
    nu_b = 2 * b * b / var_b if var_b > 0 else math.inf
    b_lo = nu_b * b / chi2.ppf(0.975, nu_b) if math.isfinite(nu_b) else b   # a few noisy configurations: b uncertain
    hi = max((nu * a / chi2.ppf(0.025, nu) if math.isfinite(nu) else a) - b_lo, 0.0)
    tot = comps.sum(axis=1)
    spread = float(np.std(np.log(tot[1:] / tot[0]))) if len(tot) > 2 and np.all(tot > 0) else 0.0
    return _row(UNEXPLAINED, est[-2] / total, lo / total * math.exp(-1.96 * spread),
                hi / total * math.exp(1.96 * spread),
                "variance of the configuration means around the surface beyond their own seed noise "
                "(each configuration's s2/n); negative estimates truncated at 0; CI: normal approximation (lower end) "
                "and Satterthwaite chi-square (upper end) of the moment estimator, widened by the total's bootstrap spread")


def pd_curves(s: Surface, factor: str, beta: np.ndarray, n_points: int = 80) -> pd.DataFrame:
    """Partial dependence of the surface on ``factor``: the fitted mean at each grid value of the
    factor, averaged over the other factors' observed values (``beta (B, p)`` gives one curve per
    draw). Returns ``x`` ``(n_points,)`` and ``curves`` ``(B, n_points)`` as a long frame."""
    j = s.names.index(factor)
    m = s.mains[j]
    if m.smooth:
        t = np.linspace(0, 1, n_points)
        u = m.lo + t * (m.hi - m.lo)
        grid = 10 ** u if m.log else u
    else:
        grid = np.array(m.levels, dtype=object)
    C = len(s.y)
    rows = []
    for g in grid:
        values = {f: (np.full(C, g, dtype=object if not m.smooth else float) if f == factor else s.values[f])
                  for f in s.names}
        pred = s.predict(values, beta)                  # (C, B)
        rows.append(pred.mean(axis=0))
    curves = np.array(rows).T                            # (B, n_points)
    return pd.DataFrame({"x": np.repeat(grid[None, :], len(curves), axis=0).ravel(),
                         "draw": np.repeat(np.arange(len(curves)), len(grid)), "mean": curves.ravel()})


def strongest_categorical(fit: SurfaceFit, variance: pd.DataFrame) -> str | None:
    """The categorical factor with the largest share (the curves' colour), or None."""
    s = fit.surface
    cats = [f for f, m in zip(s.names, s.mains) if not m.smooth]
    if not cats:
        return None
    v = variance[(variance["scope"] == "global") & (variance["method"] == "fanova")].set_index("source")["share"]
    return max(cats, key=lambda f: float(v.get(f, 0.0)))
