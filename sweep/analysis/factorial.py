"""One-way and factorial sums of squares of a ``(C, S)`` outcome matrix under bootstrap weights
(``../shared/STATISTICS.md`` sections 1-2): the one-way configurations / seeds split, balanced
factorial terms (exact) and Type II terms (weighted least squares, unbalanced or incomplete grids).

``Y`` is ``(C, S)`` (configurations x seed tuples, NaN where a run is missing); ``W`` is ``(1 + B, S)``,
row 0 all ones (the estimate), row ``b`` the counts of a bootstrap draw of seed tuples
(``resample.seed_weights``). Every statistic comes out per draw, ``(1 + B,)``.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .table import AnalysisError, Runs

__all__ = ["HIGHER", "RESIDUAL", "factorial_ss"]

HIGHER = "higher-order interactions"
RESIDUAL = "seed (residual)"
_TIMES = " \u00d7 "  # " × "


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


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
