"""Where the variance of a metric comes from: configurations vs seeds, factors and their
interactions, the seed sources (init / order / split), and Optuna's hyperparameter importances.

Definitions follow ``../shared/STATISTICS.md`` sections 1-4. Notation: ``Y`` is the ``(C, S)`` matrix
of outcomes (configurations x seed tuples, NaN where a run is missing), ``B`` the number of bootstrap
draws. Every bootstrap statistic is computed from a weight matrix ``W`` of shape ``(1 + B, S)``: row 0
is all ones (the point estimate), row ``b`` counts how often each seed tuple was drawn. Applying one
row to every configuration keeps the pairing of common seeds; in a crossed seed design the weight of
a tuple is the product of its init / order / split counts (the pigeonhole bootstrap).

Confidence intervals (95%; which one each row carries is also said in its ``note``):

* ``eta2`` rows (observed shares; global, factorial and conditional) and ``typeII`` rows: **basic
  (pivotal) bootstrap on the logit scale, bias-corrected and expanded**. Interval
  ``expit(logit(est) - (logit(q_hi) - logit(pivot)))`` to ``expit(logit(est) - (logit(q_lo) -
  logit(pivot)))``, where ``q`` are percentiles of the bootstrap shares and the pivot is the
  bootstrap population's own expected observed share, E*[SS*] / E*[SS*_total] (ratio of the bootstrap
  means). Resampling seeds adds seed noise to the configuration means a second time, so the bootstrap
  shares of between-configuration terms sit high; comparing them with the pivot instead of the
  estimate removes that shift (the percentile interval does not, and under-covered: 0.88-0.92).
  The percentile levels are Hesterberg's (2015) expansion for S resampled seed tuples,
  Phi(+-sqrt(S/(S-1)) t_{S-1, 0.975}) (1.6% / 98.4% at S = 20), which corrects the bootstrap's too
  small spread with few seeds. Target: the expected observed share at this S, E[SS_X] / E[SS_total]
  (STATISTICS.md section 1), not the S -> infinity share.
* ``component`` rows of scope global (one-way components and ICC): **basic bootstrap of the
  untruncated component share, bias-corrected and expanded** (levels as above): the pivot is the
  bootstrap population's own share, configuration variance MS_between / n0 (the observed means' spread;
  = MS_between / S balanced) and seed variance SS_within / N (= MS_within (S-1)/S); bounds clipped to
  [0, 1]. Target: sigma2_config / (sigma2_config + sigma2_seed).
* ``component`` rows of scope "seed sources" (crossed design): **basic bootstrap of the untruncated
  share, bias-corrected, from a random-effects bootstrap** (:func:`_crossed_bootstrap`; no expansion):
  each term's ANOVA effects are rescaled so the bootstrap population's components equal the truncated
  estimates and resampled independently, the same draw for every configuration; the pivot is the
  estimated share. Approximate (see below).
* ``sd`` / ``variance`` rows (conditional scopes): plain 2.5 / 97.5% percentile bootstrap.

Measured coverage (``tools/validate_variance.py``, 1000 draws per simulation). Realistic design (3 x 4
grid, 20 seeds, between-configuration share ~0.5; 1000 simulations): global eta2 rows 0.934-0.967,
components / ICC 0.958, conditional rows 0.958-0.960. Three factors (3 x 4 x 2, 20 seeds, 400
simulations): 0.933-0.958, "higher-order interactions" 0.945, except a near-zero interaction share
(0.3%) at 0.91: CIs of tiny, noise-dominated shares tend to sit high. Unbalanced (Type II, 12 of 240
runs missing, 400 simulations): 0.938-0.970. Crossed seed sources (5 x 4 x 3 levels, effects
independent across configurations, 400 simulations): 0.943-0.970 (zero components ~1.0: the truth is
on the boundary), but only 0.60-0.80 when every configuration shares the same seed effects -- 3-5
levels per source are too few for any bootstrap then. Not validated: the global rows of crossed
designs (pigeonhole weights over seed tuples). Designs where every share is small (~1-6%) reached
0.91-0.94 in side studies.

Public functions: :func:`decompose` (the ``variance.csv`` table), :func:`factorial_ss` (balanced sums
of squares) and :func:`optuna_importance`.
"""
from __future__ import annotations

import itertools
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .ranges import cut
from .sampled import SurfaceFit, surface_rows
from .table import SEED_COLS, AnalysisError, Runs

__all__ = ["COLUMNS", "decompose", "decompose_fit", "factorial_ss", "optuna_importance"]

COLUMNS: list[str] = ["scope", "source", "share", "ci_low", "ci_high", "method", "note"]
IMPORTANCE_COLUMNS: list[str] = ["evaluator", "factor", "importance_mean", "importance_sd", "repeats", "note"]

GLOBAL = "global"
SEED_SCOPE = "seed sources"
BETWEEN = "between configurations"
WITHIN = "seed (within configuration)"
RESIDUAL = "seed (residual)"
HIGHER = "higher-order interactions"
ICC = "reliability (ICC)"
REPLICATE_NOTE = ("replicate design: init and order were drawn together and the data split was held fixed; "
                  "use a crossed design ([seeds] init/order/split) to separate them")
_SOURCE_NAMES = {"seed_init": "init", "seed_order": "order", "seed_split": "split"}
_TIMES = " \u00d7 "  # " × "


# --------------------------------------------------------------------------------------------- rows

# Which interval each row carries (also written, shortened, into every row's ``note``). The measured
# coverages are in the module docstring and come from ``tools/validate_variance.py``.
ETA_CI = ("CI: basic bootstrap (logit scale, expanded for S seeds), bias-corrected: pivot = the resampled "
          "seeds' expected observed share; covers E[SS]/E[SS_total] at this S")
COMP_CI = ("CI: basic bootstrap of the untruncated share (expanded for S seeds), bias-corrected: pivot = the "
           "resampled population's components (MS_between/S, MS_within (S-1)/S)")
TYPEII_CI = ("CI: basic bootstrap as for eta2 (logit scale, expanded, bias-corrected); approximate for Type II SS: "
             "measured coverage 0.94-0.97 in tools/validate_variance.py")
PCT_CI = "CI: percentile bootstrap"
SOURCES_COVERAGE = ("approximate: measured coverage 0.94-0.97 with seed effects independent across "
                    "configurations, 0.60-0.80 when all configurations share them (tools/validate_variance.py)")
_LOGIT_EPS = 1e-12


def _levels(n_units: int | None) -> tuple[float, float]:
    """Percentile levels (in %) of a 95% interval from ``n_units`` resampled units: Hesterberg's
    (2015) expansion, Phi(+-sqrt(n / (n - 1)) t_{n-1, 0.975}), which undoes the bootstrap's 1/n (not
    1/(n - 1)) variance and the t-like extra uncertainty of a spread estimated from n units
    (S = 20: 1.6% / 98.4%). ``None`` or n < 2: the plain 2.5% / 97.5%."""
    if n_units is None or n_units < 2:
        return 2.5, 97.5
    from scipy.stats import norm, t

    z = math.sqrt(n_units / (n_units - 1)) * float(t.ppf(0.975, n_units - 1))
    return 100 * float(norm.cdf(-z)), 100 * float(norm.cdf(z))


def _logit(x: np.ndarray | float) -> np.ndarray:
    x = np.clip(np.asarray(x, dtype=float), _LOGIT_EPS, 1 - _LOGIT_EPS)
    return np.log(x) - np.log1p(-x)


def _percentile_ci(draws: np.ndarray, levels: tuple[float, float] = (2.5, 97.5)) -> tuple[float, float]:
    """Percentiles ``levels`` (default 2.5 / 97.5) of the bootstrap draws ``(B,)`` (NaN when there
    are none)."""
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(draws, levels)
    return float(lo), float(hi)


def _basic_ci(est: float, draws: np.ndarray, pivot: float, levels: tuple[float, float] = (2.5, 97.5),
              logit: bool = False) -> tuple[float, float]:
    """Basic (pivotal) bootstrap interval ``[est - (q_hi - pivot), est - (q_lo - pivot)]`` of a share,
    clipped to [0, 1]; with ``logit`` computed on the logit scale and mapped back. ``pivot`` is the
    value the statistic estimates in the bootstrap population (the resampled data taken as the truth),
    so ``draws - pivot`` mimics ``est - truth`` including its bias: an estimator that reads high in the
    bootstrap world is corrected down by the same amount."""
    if not (np.isfinite(est) and np.isfinite(pivot)):
        return math.nan, math.nan
    if logit:
        lo, hi = _percentile_ci(_logit(draws[np.isfinite(draws)]), levels)
        if not np.isfinite(lo):
            return math.nan, math.nan
        e, p = float(_logit(est)), float(_logit(pivot))
        out = 1.0 / (1.0 + np.exp(-np.array([e - (hi - p), e - (lo - p)])))
        out = np.where(out <= 2 * _LOGIT_EPS, 0.0, np.where(out >= 1 - 2 * _LOGIT_EPS, 1.0, out))
        return float(out[0]), float(out[1])
    lo, hi = _percentile_ci(draws, levels)
    if not np.isfinite(lo):
        return math.nan, math.nan
    return float(np.clip(est - (hi - pivot), 0.0, 1.0)), float(np.clip(est - (lo - pivot), 0.0, 1.0))


def _row(scope: str, source: str, values: np.ndarray | float, method: str, note: str = "",
         ci: bool = True, pivot: float | None = None, raw: np.ndarray | None = None,
         levels: tuple[float, float] = (2.5, 97.5), logit: bool = False) -> dict:
    """One output row from ``values`` of shape ``(1 + B,)``: entry 0 is the estimate, the rest draws.

    CI: percentile of ``values[1:]`` when ``pivot`` is None, else the basic interval (:func:`_basic_ci`)
    of ``raw`` (default ``values``; e.g. the untruncated share of a truncated component) around
    ``pivot``; ``levels`` are the percentile levels used."""
    values = np.atleast_1d(np.asarray(values, dtype=float))
    if not ci or values.size < 2:
        lo, hi = math.nan, math.nan
    elif pivot is None:
        lo, hi = _percentile_ci(values[1:], levels)
    else:
        r = values if raw is None else np.atleast_1d(np.asarray(raw, dtype=float))
        lo, hi = _basic_ci(float(r[0]), r[1:], float(pivot), levels, logit)
    return {"scope": scope, "source": source, "share": float(values[0]), "ci_low": lo, "ci_high": hi,
            "method": method, "note": note}


def _eta_row(scope: str, source: str, ss: np.ndarray, total: np.ndarray, method: str, note: str = "",
             n_units: int | None = None) -> dict:
    """An observed-share row ``ss / total`` (each ``(1 + B,)``) with the basic bootstrap interval on
    the logit scale, expanded for ``n_units`` resampled seed tuples (:func:`_levels`), whose pivot is
    the bootstrap population's expected observed share E*[SS*] / E*[SS*_total], estimated by the ratio
    of the bootstrap means of the two sums of squares. (Resampling seeds adds seed noise to the
    configuration means a second time, so SS*_between reads high by about the seed noise; the pivot
    carries the same excess, and the basic interval subtracts it.)"""
    share = _safe_div(ss, total)
    pivot = None
    if share.size > 1:
        ok = np.isfinite(ss[1:]) & np.isfinite(total[1:])
        den = float(total[1:][ok].mean()) if ok.any() else math.nan
        pivot = float(ss[1:][ok].mean()) / den if ok.any() and den > 0 else math.nan
    ci = (TYPEII_CI if method == "typeII" else ETA_CI) if pivot is not None else ""
    return _row(scope, source, share, method, "; ".join(filter(None, [note, ci])), pivot=pivot,
                levels=_levels(n_units), logit=True)


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


# ----------------------------------------------------------------------------------- seed designs

@dataclass
class _SeedDesign:
    """How the seed tuples (matrix columns) are built from the seed sources.

    ``kind``: "crossed" (>= 2 varying sources, full crossing), "replicate" (init == order, one split),
    "single" (one varying source), "other" (several sources, not crossed), "none" (no standard seed
    columns or a single seed tuple). ``names`` are the varying sources, ``codes`` ``(S, m)`` the level
    index of each seed tuple in each varying source, ``n_levels`` ``(m,)``.
    """

    kind: str
    names: list[str]
    codes: np.ndarray
    n_levels: list[int]


def _seed_design(runs: Runs) -> _SeedDesign:
    cols = [c for c in SEED_COLS if c in runs.seed_cols]
    seeds = runs.seeds
    empty = _SeedDesign("none", [], np.zeros((len(seeds), 0), int), [])
    if not cols or len(seeds) < 2:
        return empty
    tuples = runs.df.drop_duplicates("seed").set_index("seed").loc[seeds, cols]
    sources: dict[str, pd.Series] = {}
    merged = ("seed_init" in cols and "seed_order" in cols
              and bool((runs.df["seed_init"].astype(str) == runs.df["seed_order"].astype(str)).all()))
    for c in cols:
        if merged and c == "seed_order":
            continue
        name = "init+order" if merged and c == "seed_init" else _SOURCE_NAMES[c]
        sources[name] = tuples[c].astype(str)
    varying = {k: v for k, v in sources.items() if v.nunique() > 1}
    names = list(varying)
    codes = np.column_stack([pd.factorize(v, sort=True)[0] for v in varying.values()]) if names else \
        np.zeros((len(seeds), 0), int)
    n_levels = [int(v.nunique()) for v in varying.values()]
    if not names:
        return empty
    if merged and names == ["init+order"]:
        return _SeedDesign("replicate", names, codes, n_levels)
    if len(names) == 1:
        return _SeedDesign("single", names, codes, n_levels)
    full = len(seeds) == int(np.prod(n_levels)) and len({tuple(r) for r in codes}) == len(seeds)
    return _SeedDesign("crossed" if full else "other", names, codes, n_levels)


def _draws(design: _SeedDesign, n_seeds: int, n_boot: int,
           rng: np.random.Generator) -> tuple[np.ndarray, list[np.ndarray] | None]:
    """Bootstrap weights ``W (1 + B, S)`` over seed tuples; for crossed designs also each source's
    resampled level indices (list of ``(B, n_levels)``), else None."""
    if design.kind == "crossed":
        idx = [rng.integers(0, n, size=(n_boot, n)) for n in design.n_levels]
        W = np.ones((n_boot, n_seeds))
        for j, (ix, n) in enumerate(zip(idx, design.n_levels)):
            counts = _counts(ix, n)  # (B, n)
            W *= counts[:, design.codes[:, j]]
        return np.vstack([np.ones(n_seeds), W]), idx
    ix = rng.integers(0, n_seeds, size=(n_boot, n_seeds))
    return np.vstack([np.ones(n_seeds), _counts(ix, n_seeds)]), None


def _counts(ix: np.ndarray, n: int) -> np.ndarray:
    """Per-row counts ``(B, n)`` of the indices ``ix (B, k)``."""
    B = ix.shape[0]
    flat = (ix + n * np.arange(B)[:, None]).ravel()
    return np.bincount(flat, minlength=B * n).reshape(B, n).astype(float)


# -------------------------------------------------------------------------------- one-way pieces

@dataclass
class _OneWay:
    """Weighted one-way statistics per draw, each ``(1 + B,)``: ``n`` ``(C, 1 + B)`` run counts,
    ``mean`` ``(C, 1 + B)`` configuration means, sums of squares and the number of groups."""

    n: np.ndarray
    mean: np.ndarray
    ss_within: np.ndarray
    ss_between: np.ndarray
    ss_total: np.ndarray
    groups: np.ndarray


def _oneway(Y: np.ndarray, W: np.ndarray) -> _OneWay:
    """One-way (configurations) decomposition of ``Y (C, S)`` under weights ``W (1 + B, S)``."""
    mask = np.isfinite(Y)
    center = np.array([np.mean(r[m]) if m.any() else 0.0 for r, m in zip(Y, mask)])
    Yc = np.where(mask, Y - center[:, None], 0.0)
    M = mask.astype(float)
    n = M @ W.T                                     # (C, 1+B)
    s1 = Yc @ W.T
    s2 = (Yc * Yc) @ W.T
    mean_c = _safe_div(s1, n)                       # centered config means
    ss_within = np.nansum(np.where(n > 0, s2 - s1 * np.nan_to_num(mean_c), 0.0), axis=0)
    ss_within = np.maximum(ss_within, 0.0)
    mean = mean_c + center[:, None]
    N = n.sum(axis=0)
    grand = _safe_div(np.nansum(np.where(n > 0, n * mean, 0.0), axis=0), N)
    dev = np.where(n > 0, mean - grand, 0.0)
    ss_between = (n * dev ** 2).sum(axis=0)
    return _OneWay(n, mean, ss_within, ss_between, ss_between + ss_within, (n > 0).sum(axis=0))


def _components(ow: _OneWay) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-way random-effects components ``(sigma2_config, sigma2_seed, raw_sigma2_config)`` per draw;
    ``n0 = (N - sum n_c^2 / N) / (C - 1)`` handles unequal group sizes (= S when balanced)."""
    N = ow.n.sum(axis=0)
    C = ow.groups
    ms_b = _safe_div(ow.ss_between, (C - 1).astype(float))
    ms_w = _safe_div(ow.ss_within, (N - C).astype(float))
    n0 = _safe_div(N - _safe_div((ow.n ** 2).sum(axis=0), N), (C - 1).astype(float))
    raw = _safe_div(ms_b - ms_w, n0)
    return np.maximum(raw, 0.0), ms_w, raw


# ------------------------------------------------------------------------------------ factorial

@dataclass
class _Factors:
    """Factor levels of the configurations: ``names``, ``levels`` (sorted values per factor),
    ``codes`` ``(C, k)`` level index of each configuration, ``full_grid`` every combination present
    exactly once."""

    names: list[str]
    levels: list[list]
    codes: np.ndarray
    full_grid: bool


def _sorted_levels(values: pd.Series) -> list:
    uniq = list(pd.unique(values))
    try:
        return sorted(uniq)
    except TypeError:
        return sorted(uniq, key=str)


def _factors(runs: Runs) -> _Factors:
    first = runs.df.drop_duplicates("config").set_index("config").loc[runs.configs]
    names = [f for f in runs.factors if first[f].nunique(dropna=False) > 1]
    levels, codes = [], []
    for f in names:
        lv = _sorted_levels(first[f])
        pos = {v: i for i, v in enumerate(lv)}
        levels.append(lv)
        codes.append([pos[v] for v in first[f]])
    codes_arr = np.array(codes, dtype=int).T if names else np.zeros((len(first), 0), int)
    full = bool(names) and len(first) == int(np.prod([len(lv) for lv in levels])) and \
        len({tuple(r) for r in codes_arr}) == len(first)
    return _Factors(names, levels, codes_arr, full)


def _subsets(T: tuple[int, ...]):
    for r in range(len(T) + 1):
        yield from itertools.combinations(T, r)


def _term_effects(G: np.ndarray, terms: Sequence[tuple[int, ...]]) -> dict[tuple[int, ...], np.ndarray]:
    """Balanced ANOVA effects of the cell array ``G (batch, L1, ..., Lk)``: for each term ``T`` (tuple
    of factor axes, 0-based) effect_T = sum over V subset of T of (-1)^(|T|-|V|) * (mean of G over the
    axes not in V), shape ``(batch, L_a for a in T, 1 elsewhere)``. The effects of different terms are
    orthogonal and each sums to 0 over any one of its axes."""
    k = G.ndim - 1
    cache: dict[tuple[int, ...], np.ndarray] = {}

    def marginal(V: tuple[int, ...]) -> np.ndarray:
        if V not in cache:
            other = tuple(a + 1 for a in range(k) if a not in V)
            cache[V] = G.mean(axis=other, keepdims=True) if other else G
        return cache[V]

    return {T: sum((-1) ** (len(T) - len(V)) * marginal(V) for V in _subsets(T)) for T in terms}


def _term_ss(G: np.ndarray, terms: Sequence[tuple[int, ...]]) -> dict[tuple[int, ...], np.ndarray]:
    """Balanced ANOVA sums of squares of the cell array ``G (batch, L1, ..., Lk)`` (one value per
    cell): for each term ``T`` the sum over cells of the squared effect (:func:`_term_effects`).
    Returns ``{T: (batch,)}``; multiply by the per-cell count for data sums of squares."""
    k = G.ndim - 1
    n_cells = int(np.prod(G.shape[1:]))
    out = {}
    for T, eff in _term_effects(G, terms).items():
        reps = n_cells / int(np.prod([G.shape[a + 1] for a in T]))
        out[T] = (eff ** 2).sum(axis=tuple(range(1, k + 1))) * reps
    return out


def _term_label(T: tuple[int, ...], names: Sequence[str]) -> str:
    return _TIMES.join(names[a] for a in T)


def _balanced_factorial(ow: _OneWay, fac: _Factors) -> dict[str, np.ndarray]:
    """Exact balanced factorial sums of squares per draw ``{source: (1 + B,)}`` (mains, two-way,
    higher-order when k >= 3, seed residual, total); requires a full grid with equal counts."""
    k = len(fac.names)
    shape = [len(lv) for lv in fac.levels]
    flat = np.ravel_multi_index(tuple(fac.codes.T), shape)
    nb = ow.mean.shape[1]
    G = np.empty((nb, int(np.prod(shape))))
    G[:, flat] = ow.mean.T
    G = G.reshape([nb, *shape])
    n_cell = ow.n[0]                      # equal in every cell (balanced)
    terms = [(a,) for a in range(k)] + list(itertools.combinations(range(k), 2))
    ss = _term_ss(G, terms)
    out: dict[str, np.ndarray] = {}
    explained = np.zeros(nb)
    for T in terms:
        out[_term_label(T, fac.names)] = ss[T] * n_cell
        explained += ss[T] * n_cell
    if k >= 3:
        out[HIGHER] = np.maximum(ow.ss_between - explained, 0.0)
    out[RESIDUAL] = ow.ss_within
    out["total"] = ow.ss_total
    return out


def _balanced_df(fac: _Factors, C: int, N: int) -> dict[str, int]:
    k = len(fac.names)
    L = [len(lv) for lv in fac.levels]
    out, used = {}, 0
    for T in [(a,) for a in range(k)] + list(itertools.combinations(range(k), 2)):
        d = int(np.prod([L[a] - 1 for a in T]))
        out[_term_label(T, fac.names)] = d
        used += d
    if k >= 3:
        out[HIGHER] = C - 1 - used
    out[RESIDUAL] = N - C
    out["total"] = N - 1
    return out


def factorial_ss(runs: Runs) -> pd.DataFrame:
    """Exact sums of squares of a balanced design (full grid of the factors x the same seeds).

    Returns columns ``source, ss, df``: one row per main effect (the factor's name), per two-way
    interaction ("A × B"), one "higher-order interactions" row when there are >= 3 factors, "seed
    (residual)" (within-configuration) and "total"; all rows but "total" add up to the total. Factors
    with a single value are left out. Raises ``AnalysisError`` when the design is not balanced.
    """
    fac = _factors(runs)
    if not fac.names:
        raise AnalysisError("factorial sums of squares need at least one factor with two or more values")
    if not (runs.balanced and fac.full_grid):
        raise AnalysisError("factorial sums of squares need a balanced design (every combination of the "
                            "factors on every seed, nothing missing); use decompose() for Type II SS")
    Y = runs.matrix()
    ow = _oneway(Y, np.ones((1, Y.shape[1])))
    ss = _balanced_factorial(ow, fac)
    dfs = _balanced_df(fac, Y.shape[0], Y.size)
    return pd.DataFrame({"source": list(ss), "ss": [float(v[0]) for v in ss.values()],
                         "df": [dfs[s] for s in ss]})


# ------------------------------------------------------------------------------------- Type II

def _design(fac: _Factors, cfg: np.ndarray) -> tuple[np.ndarray, list[tuple[int, ...]], list[np.ndarray]]:
    """Treatment-coded design matrix ``(N, p)`` for runs of configurations ``cfg (N,)``: intercept,
    main effects and all two-way interactions; also the terms and each term's column indices."""
    k = len(fac.names)
    cols = [np.ones(len(cfg))]
    dummies = []
    for a in range(k):
        code = fac.codes[cfg, a]
        dummies.append(np.column_stack([(code == l).astype(float) for l in range(1, len(fac.levels[a]))]))
    terms: list[tuple[int, ...]] = [(a,) for a in range(k)] + list(itertools.combinations(range(k), 2))
    blocks = []
    for T in terms:
        if len(T) == 1:
            blocks.append(dummies[T[0]])
        else:
            da, db = dummies[T[0]], dummies[T[1]]
            blocks.append((da[:, :, None] * db[:, None, :]).reshape(len(cfg), -1))
    index, start = [], 1
    for b in blocks:
        index.append(np.arange(start, start + b.shape[1]))
        start += b.shape[1]
    return np.column_stack(cols + blocks), terms, index


def _typeII(Y: np.ndarray, W: np.ndarray, fac: _Factors,
            chunk: int = 200) -> tuple[dict[tuple[int, ...], np.ndarray], np.ndarray, int]:
    """Type II sums of squares (model: mains + two-way interactions) under weights ``W (1 + B, S)``,
    by weighted least squares on the present runs. Returns ``({term: (1 + B,)}, SSR of the two-way
    model (1 + B,), rank of the design)``."""
    cfg, sd = np.nonzero(np.isfinite(Y))
    y = Y[cfg, sd]
    y = y - y.mean()
    X, terms, index = _design(fac, cfg)
    rank = int(np.linalg.matrix_rank(X))
    p = X.shape[1]
    nb = W.shape[0]
    ss = {T: np.empty(nb) for T in terms}
    ssr_full = np.empty(nb)
    allcols = np.arange(p)
    models: dict[tuple[int, ...], np.ndarray] = {}
    for i, T in enumerate(terms):
        containing = [j for j, U in enumerate(terms) if set(T) <= set(U)]
        without = np.setdiff1d(allcols, np.concatenate([index[j] for j in containing]))
        with_t = np.union1d(without, index[i])
        models[("-",) + T] = without
        models[("+",) + T] = with_t
    for start in range(0, nb, chunk):
        w = W[start:start + chunk][:, sd]              # (b, N)
        A = np.swapaxes(w[:, :, None] * X[None], 1, 2) @ X      # (b, p, p) = X' diag(w) X
        bvec = (w * y) @ X                                      # (b, p) = X' diag(w) y
        yy = w @ (y * y)

        def ssr(J: np.ndarray) -> np.ndarray:
            AJ = A[:, J][:, :, J]
            bJ = bvec[:, J]
            coef = np.einsum("bpq,bq->bp", np.linalg.pinv(AJ, rcond=1e-10, hermitian=True), bJ)
            return yy - np.einsum("bp,bp->b", bJ, coef)

        full = ssr(allcols)
        ssr_full[start:start + chunk] = full
        for T in terms:
            ss[T][start:start + chunk] = ssr(models[("-",) + T]) - ssr(models[("+",) + T])
    tiny = 1e-12 * (W[:, sd] @ (y * y))           # below this: rounding noise of aliased terms
    return ({T: np.where(v > tiny, v, 0.0) for T, v in ss.items()}, np.maximum(ssr_full, 0.0), rank)


def _statsmodels_typeII(runs: Runs, fac: _Factors) -> dict[tuple[int, ...], float]:
    """Type II SS of ``y ~ (C(f0) + C(f1) + ...)**2`` from statsmodels ``anova_lm(typ=2)``."""
    from statsmodels.formula.api import ols
    from statsmodels.stats.anova import anova_lm

    k = len(fac.names)
    cfg_index = {c: i for i, c in enumerate(runs.configs)}
    ci = runs.df["config"].map(cfg_index).to_numpy()
    data = pd.DataFrame({f"f{a}": fac.codes[ci, a] for a in range(k)})
    data["y"] = runs.df[runs.metric].to_numpy(dtype=float)
    rhs = " + ".join(f"C(f{a})" for a in range(k))
    formula = f"y ~ ({rhs})**2" if k >= 2 else f"y ~ {rhs}"
    table = anova_lm(ols(formula, data).fit(), typ=2)
    out = {}
    for T in [(a,) for a in range(k)] + list(itertools.combinations(range(k), 2)):
        out[T] = float(table.loc[":".join(f"C(f{a})" for a in T), "sum_sq"])
    return out


# ----------------------------------------------------------------------------- crossed sources

def _crossed_array(Y: np.ndarray, design: _SeedDesign) -> tuple[np.ndarray, int]:
    """The complete configurations as ``(C', n_1, ..., n_m)`` arrays over the varying seed sources,
    and the number of configurations left out because runs are missing."""
    complete = np.isfinite(Y).all(axis=1)
    A = np.full((int(complete.sum()), *design.n_levels), np.nan)
    A[(slice(None), *design.codes.T)] = Y[complete]
    return A, int((~complete).sum())


def _crossed_terms(m: int) -> tuple[list[tuple[int, ...]], list[tuple[int, ...]]]:
    """All ANOVA terms of ``m`` crossed sources, and the reported ones in output order: every source,
    every two-way interaction (except the full one when m = 2), then the full m-way term (residual)."""
    full = tuple(range(m))
    all_terms = [T for r in range(1, m + 1) for T in itertools.combinations(range(m), r)]
    return all_terms, [T for T in all_terms if len(T) <= 2 and T != full] + [full]


def _crossed_components_batch(A: np.ndarray, scale: float = 0.0) -> np.ndarray:
    """:func:`_crossed_components` for a batch ``A (b, C', n_1, ..., n_m)``: components ``(b, K)``.
    Components below 1e-12 of the largest mean square (or of ``scale``, e.g. the original data's
    variance, when larger) are rounding noise and set to exactly 0."""
    b, cp = A.shape[:2]
    n = A.shape[2:]
    m = len(n)
    all_terms, order = _crossed_terms(m)
    ss = _term_ss(A.reshape(b * cp, *n), all_terms)
    ms = {T: ss[T].reshape(b, cp).mean(axis=1) / int(np.prod([n[a] - 1 for a in T])) for T in all_terms}
    comps = []
    for T in order[:-1]:
        sup = [U for U in all_terms if set(T) <= set(U)]
        val = sum((-1) ** (len(U) - len(T)) * ms[U] for U in sup)
        comps.append(val / int(np.prod([n[a] for a in range(m) if a not in T])))
    comps.append(ms[order[-1]])
    out = np.column_stack(comps)
    tiny = 1e-12 * np.maximum(np.max(np.column_stack(list(ms.values())), axis=1, keepdims=True), scale)
    return np.where(np.abs(out) <= tiny, 0.0, out)


def _crossed_components(A: np.ndarray) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Random-effects variance components of a balanced crossed layout (one run per cell), ANOVA
    (expected-mean-squares) estimators, mean squares averaged over the configurations first.

    ``A``: ``(C', n_1, ..., n_m)``. Terms: every source and every two-way interaction; the last
    component is the residual (the m-way interaction with error, which one run per cell cannot
    separate). With E[MS_T] = sum over U containing T of (prod of n_f, f not in U) sigma2_U,
    sigma2_T = sum over U containing T of (-1)^(|U|-|T|) MS_U / prod(n_f, f not in T).
    Returns the terms and the untruncated components ``(len(terms) + 1,)``."""
    order = _crossed_terms(A.ndim - 1)[1]
    return order[:-1], _crossed_components_batch(A[None])[0]


def _crossed_bootstrap(A: np.ndarray, est: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Random-effects ("effects") bootstrap of the crossed components: ``(n_boot, K)`` draws.

    The bootstrap population is the random-effects model itself: each configuration's array is split
    into its orthogonal ANOVA effects (one array per term of :func:`_crossed_terms`, the full m-way term
    being the residual), each term's effects are rescaled by one factor so that their plug-in variance
    (mean square over configurations and cells) equals the estimated component truncated at 0, and a
    draw rebuilds every configuration from independently resampled effects of every term: a new
    level's effect for a source, a new cell's effect for an interaction or the residual, drawn with
    replacement from that term's rescaled effects. The same indices are used for every configuration
    (pairing, as for the seed tuples). The population's components are therefore the truncated
    estimates exactly. (Davison & Hinkley 1997, sec. 3.8; resampling the levels themselves -- the
    pigeonhole bootstrap -- duplicates levels, which inflates the spread of the interaction and
    residual estimates and shrinks the population's components by (n - 1)/n per resampled source.)"""
    cp, n = A.shape[0], A.shape[1:]
    m = len(n)
    order = _crossed_terms(m)[1]
    eff = _term_effects(A, order)
    target = np.maximum(est, 0.0)
    scale = float(np.mean(A.var(axis=tuple(range(1, m + 1))))) if A.size else 0.0
    parts = []
    for j, T in enumerate(order):
        e = eff[T].reshape(cp, -1)                      # (C', cells of T)
        plug = float(np.mean(e ** 2))
        f = math.sqrt(target[j] / plug) if plug > 1e-24 * max(scale, 1e-300) else 0.0
        parts.append((T, f * e, [n[a] if a in T else 1 for a in range(m)]))
    out = np.empty((n_boot, len(order)))
    chunk = max(1, int(2_000_000 // max(1, A.size)))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        Yb = np.zeros((b, cp, *n))
        for T, e, shape in parts:
            ix = rng.integers(0, e.shape[1], size=(b, *[n[a] for a in T]))
            Yb += np.moveaxis(e[:, ix], 0, 1).reshape(b, cp, *shape)
        out[start:start + b] = _crossed_components_batch(Yb, scale)
    return out


SOURCES_CI = ("CI: basic bootstrap, bias-corrected, from a random-effects bootstrap of the rescaled ANOVA effects "
              "(same draw for every configuration)")


def _seed_source_rows(Y: np.ndarray, design: _SeedDesign, n_boot: int, rng: np.random.Generator) -> list[dict]:
    if design.kind == "replicate":
        return [_row(SEED_SCOPE, "seed (init and order together)", 1.0, "component", REPLICATE_NOTE, ci=False)]
    if design.kind == "single":
        name = design.names[0]
        return [_row(SEED_SCOPE, f"seed ({name})", 1.0, "component",
                     f"only the {name} seed varied; the other seed sources were held fixed", ci=False)]
    if design.kind == "other":
        return [_row(SEED_SCOPE, "seed (all sources together)", 1.0, "component",
                     f"the seed sources ({', '.join(design.names)}) vary but do not form a full crossing "
                     "within configurations, so their shares cannot be separated", ci=False)]
    if design.kind != "crossed":
        return []
    A, left_out = _crossed_array(Y, design)
    if A.shape[0] == 0:
        return [_row(SEED_SCOPE, "seed (all sources together)", 1.0, "component",
                     "no configuration has the full crossing of seed sources (runs missing)", ci=False)]
    terms, est = _crossed_components(A)
    labels = [_term_label(T, design.names) for T in terms]
    labels.append(f"residual ({_TIMES.join(design.names)} interaction and error)")
    draws = _crossed_bootstrap(A, est, n_boot, rng) if n_boot else np.empty((0, len(labels)))
    allv = np.vstack([est, draws])                      # (1+B, K)
    trunc = np.maximum(allv, 0.0)
    shares = _safe_div(trunc, trunc.sum(axis=1, keepdims=True))
    raw = _safe_div(allv, allv.sum(axis=1, keepdims=True))   # untruncated shares: no pile-up at 0
    base = (f"share of the seed variance; ANOVA estimators of a crossed random-effects model "
            f"({' x '.join(map(str, design.n_levels))} levels), averaged over {A.shape[0]} configurations")
    if left_out:
        base += f"; {left_out} configurations with missing runs left out"
    ci = f"{SOURCES_CI}; {SOURCES_COVERAGE}" if n_boot else ""
    rows = []
    for j, label in enumerate(labels):
        note = base
        if est[j] < 0:
            note += f"; estimate negative ({est[j]:.3g}), truncated at 0"
        raw_j = raw[:, j] if np.isfinite(raw[0, j]) else shares[:, j]
        rows.append(_row(SEED_SCOPE, label, shares[:, j], "component", "; ".join(filter(None, [note, ci])),
                         pivot=shares[0, j], raw=raw_j))
    return rows


# -------------------------------------------------------------------------------------- decompose

def _share_rows(scope: str, ow: _OneWay, single: bool, note0: str = "", n_units: int | None = None) -> list[dict]:
    """eta2 rows: between configurations and seed within configuration, ``(1 + B,)`` each."""
    tot = ow.ss_total
    zero = np.all(tot[:1] <= 0)
    note_zero = "no variation at all: shares undefined" if zero else ""
    if single:
        return [_row(scope, WITHIN, 1.0, "eta2", "single configuration: all variation is seed variation",
                     ci=False)]
    return [_eta_row(scope, BETWEEN, ow.ss_between, tot, "eta2", note0 or note_zero, n_units),
            _eta_row(scope, WITHIN, ow.ss_within, tot, "eta2", note_zero, n_units)]


def _component_rows(ow: _OneWay, n_units: int | None = None) -> list[dict]:
    s_cfg, s_seed, raw = _components(ow)
    tot = s_cfg + s_seed
    note_c = ""
    if np.isfinite(raw[0]) and raw[0] < 0:
        note_c = f"negative estimate ({raw[0]:.3g}) truncated at 0"
    if not np.isfinite(s_seed[0]):
        note = "needs two or more configurations and two or more runs in some configuration"
        return [_row(GLOBAL, s, math.nan, "component", note, ci=False) for s in (BETWEEN, WITHIN, ICC)]
    share_c = _safe_div(s_cfg, tot)
    share_s = _safe_div(s_seed, tot)
    # basic interval on the untruncated share (no pile-up at 0), pivoting on the bootstrap
    # population's own components: its configurations' means are the observed means (variance
    # MS_between / n0) and its seed variance is the plug-in one, SS_within / N (= MS_within (S-1)/S)
    raw_c = _safe_div(raw, raw + s_seed)
    N, C = float(ow.n[:, 0].sum()), int(ow.groups[0])
    pivot_c = math.nan
    if C >= 2 and N > C:
        n0 = (N - float((ow.n[:, 0] ** 2).sum()) / N) / (C - 1)
        v_cfg, v_seed = float(ow.ss_between[0]) / (C - 1) / n0, float(ow.ss_within[0]) / N
        pivot_c = v_cfg / (v_cfg + v_seed) if v_cfg + v_seed > 0 else math.nan
    balanced = np.all(ow.n[:, 0] == ow.n[0, 0])
    how = "one-way random effects, (MS_between - MS_within) / S" if balanced else \
        "one-way random effects, (MS_between - MS_within) / n0 (unequal group sizes)"
    ci = COMP_CI if balanced else COMP_CI.replace("MS_between/S,", "MS_between/n0,").replace("MS_within (S-1)/S",
                                                                                          "SS_within/N")
    lv = _levels(n_units)
    return [_row(GLOBAL, BETWEEN, share_c, "component", "; ".join(filter(None, [how, note_c, ci])),
                 pivot=pivot_c, raw=raw_c, levels=lv),
            _row(GLOBAL, WITHIN, share_s, "component", "; ".join([how, ci]), pivot=1.0 - pivot_c,
                 raw=1.0 - raw_c, levels=lv),
            _row(GLOBAL, ICC, share_c, "component",
                 "; ".join(filter(None, ["sigma2_config / (sigma2_config + sigma2_seed)", note_c, ci])),
                 pivot=pivot_c, raw=raw_c, levels=lv)]


def _factorial_rows(runs: Runs, Y: np.ndarray, W: np.ndarray, ow: _OneWay,
                    fac: _Factors) -> tuple[list[dict], dict[str, float]]:
    """Factorial rows and the point estimate of each factor's main-effect share."""
    k = len(fac.names)
    if k == 0:
        return [], {}
    if runs.balanced and fac.full_grid:
        ss = _balanced_factorial(ow, fac)
        tot = ss.pop("total")
        rows = [_eta_row(GLOBAL, src, v, tot, "eta2",
                         "everything between cells not explained by main effects and two-way interactions"
                         if src == HIGHER else "", W.shape[1])
                for src, v in ss.items()]
        return rows, {f: rows[a]["share"] for a, f in enumerate(fac.names)}

    n_missing = int(np.isnan(Y).sum())
    why = []
    if not runs.balanced:
        why.append(f"design unbalanced: {n_missing} of {Y.size} runs missing/excluded "
                   f"({runs.dropped} excluded for an undefined metric)")
    if not fac.full_grid:
        why.append("the configurations do not cover every combination of the factors")
    ss, ssr2, rank = _typeII(Y, W, fac)
    note = "; ".join(why) + "; Type II SS (OLS up to two-way interactions) / total SS; shares need not add to 1"
    X, _, _ = _design(fac, np.arange(Y.shape[0]))
    if rank == X.shape[1] and np.isfinite(Y).any(axis=1).all():
        try:
            sm = _statsmodels_typeII(runs, fac)
            for T in ss:
                ss[T][0] = sm[T]
        except Exception as exc:  # pragma: no cover - statsmodels failure: keep the numpy values
            note += f"; statsmodels failed ({exc}), SS from weighted least squares"
    else:
        note += "; some terms are confounded (design rank-deficient): their SS are the part not shared"
    warnings.warn(f"variance decomposition: {'; '.join(why)}; using Type II sums of squares, shares need "
                  "not add to 1", stacklevel=3)
    tot = ow.ss_total
    S = W.shape[1]
    rows = [_eta_row(GLOBAL, _term_label(T, fac.names), v, tot, "typeII", note, S) for T, v in ss.items()]
    if k >= 3:
        rows.append(_eta_row(GLOBAL, HIGHER, np.maximum(ssr2 - ow.ss_within, 0.0), tot, "typeII",
                             note + "; residual SS of the two-way model minus the within-configuration SS", S))
    rows.append(_eta_row(GLOBAL, RESIDUAL, ow.ss_within, tot, "typeII", note, S))
    return rows, {f: rows[a]["share"] for a, f in enumerate(fac.names)}


def _conditional_rows(runs: Runs, Y: np.ndarray, W: np.ndarray, fac: _Factors,
                      main: dict[str, float]) -> list[dict]:
    """Per level of the most important factor: eta2 shares of what remains, seed sd (and seed
    variance when the level is a single configuration)."""
    if not main:
        return []
    shares = {f: (s if np.isfinite(s) else -np.inf) for f, s in main.items()}
    top = max(shares, key=shares.get)
    a = fac.names.index(top)
    smooth = set(runs.smooth_factors)
    rest = [j for j in range(len(fac.names)) if j != a and fac.names[j] not in smooth]
    if top in smooth:       # a continuous factor: its ranges, not its (one-configuration) values
        bins = cut(runs.first()[top], runs.kinds[top], top)
        top_codes, scopes = np.asarray(bins.codes), list(bins.categories)
    else:
        top_codes, scopes = fac.codes[:, a], [f"{top}={level}" for level in fac.levels[a]]
    rows = []
    for li, scope in enumerate(scopes):
        sel = top_codes == li
        if not sel.any():
            continue
        Ys = Y[sel]
        ow = _oneway(Ys, W)
        single = Ys.shape[0] == 1
        rows += _share_rows(scope, ow, single, n_units=W.shape[1])
        if not single:
            for j in rest:
                codes = fac.codes[sel, j]
                if len(np.unique(codes)) < 2:
                    continue
                ss = _group_ss(ow, codes)
                note = "" if runs.balanced and fac.full_grid else "one-way (marginal) share; design unbalanced"
                rows.append(_eta_row(scope, fac.names[j], ss, ow.ss_total, "eta2", note, W.shape[1]))
        N = ow.n.sum(axis=0)
        var = _safe_div(ow.ss_within, N - ow.groups)
        if single:
            rows.append(_row(scope, "seed variance", var, "variance",
                             "absolute variance of the metric over seeds; " + PCT_CI))
        rows.append(_row(scope, "seed sd", np.sqrt(var), "sd",
                         "absolute sd of the metric, pooled within configurations at this level; " + PCT_CI))
    return rows


def _group_ss(ow: _OneWay, codes: np.ndarray) -> np.ndarray:
    """Between-group SS ``(1 + B,)`` for groups of configurations labelled ``codes (C,)``."""
    n, mean = ow.n, np.where(ow.n > 0, ow.mean, 0.0)
    N = n.sum(axis=0)
    grand = _safe_div((n * mean).sum(axis=0), N)
    out = np.zeros(n.shape[1])
    for g in np.unique(codes):
        ng = n[codes == g].sum(axis=0)
        mg = _safe_div((n[codes == g] * mean[codes == g]).sum(axis=0), ng)
        out += np.where(ng > 0, ng * (np.nan_to_num(mg) - grand) ** 2, 0.0)
    return out


def decompose(runs: Runs, *, n_boot: int = 1000, seed: int = 0, conditional: bool = True) -> pd.DataFrame:
    """The ``variance.csv`` table (see :func:`decompose_fit`)."""
    return decompose_fit(runs, n_boot=n_boot, seed=seed, conditional=conditional)[0]


def decompose_fit(runs: Runs, *, n_boot: int = 1000, seed: int = 0,
                  conditional: bool = True) -> tuple[pd.DataFrame, SurfaceFit | None]:
    """The ``variance.csv`` table: where the variance of ``runs.metric`` comes from.

    Columns ``scope, source, share, ci_low, ci_high, method, note``. Scope "global": observed shares
    (``method="eta2"``: between configurations / seed within configuration, adding to 1), one-way
    random-effects components as shares of their sum plus "reliability (ICC)" (``"component"``),
    and the factorial decomposition (factor main effects, "A × B" interactions, "higher-order
    interactions" with >= 3 factors, "seed (residual)"; ``"eta2"`` when balanced and adding to 1,
    ``"typeII"`` with a warning otherwise); when a factor is continuous (``Runs.smooth_factors``) the
    factorial rows are replaced by the functional ANOVA of a fitted surface (``"fanova"``,
    ``sampled.py``), and the surface is returned with its bootstrap. Scope "seed sources": crossed init/order/split
    components, or one row for a replicate design. Scopes "factor=level" (``conditional``): the
    same shares within each level of the most important factor (within each of its ranges when it is
    continuous, ``ranges.cut``), with absolute "seed sd" (and "seed variance" when the level is one
    configuration).

    CIs: 95% bootstrap over seed tuples (``n_boot`` draws, ``np.random.default_rng(seed)``), one draw
    of seed indices applied to every configuration (pigeonhole draws of init / order / split for the
    global rows of crossed designs). eta2 and typeII rows: basic bootstrap on the logit scale,
    bias-corrected (pivot: the resampled seeds' own expected observed share) and expanded for S seeds;
    they target the expected observed share at this S, E[SS_X] / E[SS_total]. Global component / ICC
    rows: basic bootstrap of the untruncated share around the bootstrap population's own components,
    expanded. Seed-source rows: basic bootstrap from a random-effects bootstrap of the rescaled ANOVA
    effects (approximate). sd / variance rows: percentile. Details and measured coverage: module
    docstring and ``tools/validate_variance.py``.
    """
    Y = runs.matrix()
    C, S = Y.shape
    rng = np.random.default_rng(seed)
    design = _seed_design(runs)
    n_draws = max(int(n_boot), 0) if S >= 2 else 0      # one seed tuple: nothing to resample
    W, _ = _draws(design, S, n_draws, rng)
    fac = _factors(runs)
    ow = _oneway(Y, W)

    boot = "init/order/split levels drawn independently (pigeonhole)" if design.kind == "crossed" else \
        "seed tuples, paired across configurations"
    if n_draws:
        ci_note = f"{n_draws} bootstrap draws of {boot}"
    else:
        ci_note = "no CI: a single seed tuple" if S < 2 else "no CI (n_boot=0)"
    note0 = f"SS_between / SS_total (includes seed noise); {ci_note}"
    rows = _share_rows(GLOBAL, ow, False, note0, S)
    if C >= 2:
        rows += _component_rows(ow, S)
    surface = None
    if runs.smooth_factors and C >= 2:
        frows, main, surface = surface_rows(runs, Y, W, rng, ci_note, replicate=design.kind != "crossed")
    else:
        frows, main = _factorial_rows(runs, Y, W, ow, fac)
    rows += frows
    rows += _seed_source_rows(Y, design, n_draws, rng)
    if conditional:
        rows += _conditional_rows(runs, Y, W, fac, main)
    out = pd.DataFrame(rows, columns=COLUMNS)
    out["note"] = out["note"].fillna("").astype(str)
    return out, surface


# ------------------------------------------------------------------------------ optuna importance

def _distribution(values: pd.Series):
    """Optuna distribution and per-configuration param values for one factor (``values (C,)``)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        v = values.to_numpy(dtype=float)
        lo, hi = float(v.min()), float(v.max())
        log = bool(lo > 0 and hi / lo > 10)
        if pd.api.types.is_integer_dtype(values):
            return IntDistribution(int(lo), int(hi), log=log), [int(x) for x in v]
        return FloatDistribution(lo, hi, log=log), [float(x) for x in v]
    s = values.astype(str)
    return CategoricalDistribution(tuple(sorted(s.unique()))), list(s)


IMPORTANCE_MAX_CONFIGS = 200    # Optuna's evaluators grow fast with trials; a cross-check needs no more
FANOVA_FOREST = {"n_trees": 32, "max_depth": 16}   # Optuna's default 64 x 64 costs 5x for the same ranking


def optuna_importance(runs: Runs, *, repeats: int = 3, seed: int = 0, direction: str = "maximize",
                      max_configs: int = IMPORTANCE_MAX_CONFIGS) -> pd.DataFrame:
    """Optuna hyperparameter importances computed on configuration means (one trial per
    configuration, value = mean of the metric over its seeds).

    fANOVA (``FanovaImportanceEvaluator(seed=seed + k, **FANOVA_FOREST)``, k < ``repeats``; mean and sd
    over repeats)
    and PED-ANOVA (deterministic: one evaluation; its top quantile is widened so that it holds at
    least 5 configurations, said in ``note``). With more than ``max_configs`` configurations, a fixed
    random subset of that many is used (said in ``note``). Returns columns ``evaluator, factor, importance_mean,
    importance_sd, repeats, note``; empty with fewer than 2 configurations or no varying factor.
    """
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    first = runs.df.drop_duplicates("config").set_index("config").loc[runs.configs]
    factors = [f for f in runs.factors if first[f].nunique(dropna=False) > 1]
    if len(first) < 2 or not factors:
        return pd.DataFrame(columns=IMPORTANCE_COLUMNS)
    means = runs.df.groupby("config")[runs.metric].mean().reindex(runs.configs).to_numpy(dtype=float)
    subset = ""
    if len(first) > max_configs:
        keep = np.sort(np.random.default_rng(seed).choice(len(first), size=max_configs, replace=False))
        first, means = first.iloc[keep], means[keep]
        subset = f"a random subset of {max_configs} of {len(runs.configs)} configurations; "
    dists, params = {}, {}
    for f in factors:
        dists[f], params[f] = _distribution(first[f])
    trials = [optuna.trial.create_trial(params={f: params[f][i] for f in factors},
                                        distributions=dict(dists), value=float(means[i]))
              for i in range(len(first))]
    old = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)
    try:
        study = optuna.create_study(direction=direction)
    finally:
        optuna.logging.set_verbosity(old)
    study.add_trials(trials)
    n = len(trials)
    rows: list[dict] = []

    def run(evaluator) -> tuple[dict[str, float] | None, str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = optuna.importance.get_param_importances(study, evaluator=evaluator)
            except Exception as exc:  # noqa: BLE001 - report any evaluator failure as NaN
                return None, f"failed: {type(exc).__name__}: {exc}"
        msgs = sorted({str(w.message) for w in caught if "experimental" not in str(w.message).lower()})
        return res, "; ".join(msgs)

    fan = [run(FanovaImportanceEvaluator(seed=seed + k, **FANOVA_FOREST)) for k in range(max(repeats, 1))]
    ok = [r for r, _ in fan if r is not None]
    note = f"on {n} configuration means; {subset}" + (fan[0][1] or "")
    for f in factors:
        vals = np.array([r[f] for r in ok]) if ok else np.array([np.nan])
        rows.append({"evaluator": "fanova", "factor": f, "importance_mean": float(np.mean(vals)),
                     "importance_sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan,
                     "repeats": len(ok), "note": note.rstrip("; ")})

    q = min(0.5, max(0.1, 5.0 / n))
    res, msg = run(PedAnovaImportanceEvaluator(target_quantile=q))
    note = (f"on {n} configuration means; {subset}deterministic (one evaluation); target quantile {q:.2g} "
            f"(top {math.ceil(q * n)} configurations)")
    if q > 0.1:
        note += "; widened from 0.1 to hold >= 5 configurations"
    if msg:
        note += "; " + msg
    for f in factors:
        rows.append({"evaluator": "ped_anova", "factor": f,
                     "importance_mean": math.nan if res is None else float(res[f]),
                     "importance_sd": math.nan, "repeats": 0 if res is None else 1, "note": note})
    return pd.DataFrame(rows, columns=IMPORTANCE_COLUMNS)
