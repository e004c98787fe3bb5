"""Seed sources (``../shared/STATISTICS.md`` section 3): which seed columns a table has, how their
levels are laid out (crossed, nested, replicate, one source), and how much of the seed variance each
source explains, split into the part shared by every configuration and the configuration-specific part.

Model: y[c, i_1..i_m] = mu_c + sum over random terms U of u_U. Configurations are fixed; every term
holding a seed source is random: a source's shared effect ("this split is hard for everyone"), its
configuration-specific part (configuration x source), interactions, and the residual (the highest
interaction, confounded with error at one run per cell). A nested source (each of its levels belongs to
one level of another source, e.g. ``sample`` within ``plate``) has no main effect of its own: its term
pools the crossed terms it cannot be told apart from. Balanced ANOVA (expected-mean-squares)
estimators, from the configurations that have every seed tuple.

Intervals (95%): generalized confidence intervals (Weerahandi 1993; Hamada & Weerahandi 2000; Burdick,
Borror & Montgomery 2005, ch. 3-5). Each mean square gives a pivot R_U = ms_U df_U / W_U with W_U ~
chi2(df_U); a component's pivot is the same linear combination of the R_U as its estimator of the ms_U,
truncated at 0, and a share's interval is the 2.5 / 97.5 percentiles of its pivot. They assume normal
effects and the same seed variance in every configuration. With 3-5 levels per source they are wide
(``plan`` says how many levels would narrow them). Measured coverage: ``docs/validation_sources.md``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .factorial import _term_ss
from .table import Runs

__all__ = ["SOURCE_NAMES", "MixedFit", "Pivots", "SeedDesign", "expected_ss_pivots", "fit_mixed", "noncentrality_pivots",
           "pivot_draws", "plan", "row_groups", "seed_design", "share_pivots"]

SOURCE_NAMES = {"seed_init": "init", "seed_order": "order", "seed_split": "split"}
_TIMES = " \u00d7 "


@dataclass(frozen=True)
class SeedDesign:
    """The seed sources of a table and their layout.

    ``kind``: "crossed" (every combination of the sources' levels once), "nested" (some source's levels
    each belong to one level of another; balanced), "replicate" (several columns drawn together as one
    source), "single" (one varying source), "other" (several sources in no recognisable layout), "none"
    (no seed columns or a single seed tuple). ``names`` the varying sources, ``columns`` each source's
    table columns, ``codes`` ``(S, m)`` each seed tuple's level in each source (its index within the
    parent's level when nested), ``n_levels`` ``(m,)`` (per parent level when nested), ``parent`` the
    source each is nested in (None: crossed with the others).
    """

    kind: str
    names: list[str]
    columns: list[tuple[str, ...]]
    codes: np.ndarray
    n_levels: list[int]
    parent: list[int | None]

    @property
    def layout(self) -> str:
        """The layout in words, e.g. "crossed: init 5 × order 4 × split 3"."""
        parts = []
        for j, name in enumerate(self.names):
            p = self.parent[j]
            parts.append(f"{name} {self.n_levels[j]}" + (f" per {self.names[p]}" if p is not None else ""))
        sep = _TIMES if self.kind == "crossed" else ", "
        return f"{self.kind}: {sep.join(parts)}" if parts else self.kind

    def source_label(self, j: int) -> str:
        p = self.parent[j]
        return self.names[j] if p is None else f"{self.names[j]} within {self.names[p]}"


def _display(col: str) -> str:
    return SOURCE_NAMES.get(col, col)


def seed_design(runs: Runs) -> SeedDesign:
    """Detect the layout of ``runs.seed_cols`` over the table's seed tuples (``runs.seeds``)."""
    cols, seeds = list(runs.seed_cols), runs.seeds
    none = SeedDesign("none", [], [], np.zeros((len(seeds), 0), int), [], [])
    if not cols or len(seeds) < 2:
        return none
    tuples = runs.df.drop_duplicates("seed").set_index("seed").loc[seeds, cols].astype(str)
    groups: list[list[str]] = []          # columns that are one source relabelled (a bijection of levels)
    first_codes: list[np.ndarray] = []
    for c in cols:
        code = pd.factorize(tuples[c])[0]
        for g, fc in zip(groups, first_codes):
            if np.array_equal(code, fc):
                g.append(c)
                break
        else:
            groups.append([c])
            first_codes.append(code)
    varying = [g for g in groups if tuples[g[0]].nunique() > 1]
    if not varying:
        return none
    names = ["+".join(_display(runs.original(c)) for c in g) for g in varying]
    raw = np.column_stack([pd.factorize(tuples[g[0]], sort=True)[0] for g in varying])
    nl = [int(raw[:, j].max()) + 1 for j in range(len(varying))]
    columns = [tuple(g) for g in varying]
    if len(varying) == 1:
        return SeedDesign("replicate" if len(varying[0]) > 1 else "single", names, columns, raw, nl, [None])
    return _layout(names, columns, raw, nl)


def _function_of(y: np.ndarray, x: np.ndarray) -> bool:
    """Each level of ``y`` occurs with a single level of ``x``."""
    return bool((pd.Series(x).groupby(y).nunique() == 1).all())


def _layout(names: list[str], columns: list[tuple[str, ...]], raw: np.ndarray, nl: list[int]) -> SeedDesign:
    m, S = len(names), raw.shape[0]
    parent: list[int | None] = [None] * m
    for j in range(m):
        cands = [k for k in range(m) if k != j and nl[k] < nl[j] and _function_of(raw[:, j], raw[:, k])]
        if cands:
            parent[j] = max(cands, key=lambda k: nl[k])
    codes, n_levels = raw.copy(), list(nl)
    for j, p in enumerate(parent):
        if p is None:
            continue
        within = pd.Series(raw[:, j]).groupby(raw[:, p]).transform(lambda s: pd.factorize(s, sort=True)[0])
        per = pd.Series(raw[:, j]).groupby(raw[:, p]).nunique()
        if per.nunique() != 1:
            return SeedDesign("other", names, columns, raw, nl, parent)
        codes[:, j], n_levels[j] = within.to_numpy(), int(per.iloc[0])
    full = S == int(np.prod(n_levels)) and len({tuple(r) for r in codes}) == S
    kind = ("nested" if any(p is not None for p in parent) else "crossed") if full else "other"
    return SeedDesign(kind, names, columns, codes, n_levels, parent)


# ------------------------------------------------------------------------------- mixed model

@dataclass
class _Structure:
    """The balanced mixed model of a cell array with axes ``n`` (configuration first when ``cfg``):
    random ``terms`` (sets of axes, residual last), their ``df``, the EMS matrix ``K`` (E[ms] = K sigma2),
    the crossed terms pooled into each, and the fixed configuration term's df / coefficients."""

    n: tuple[int, ...]
    cfg: bool
    terms: list[frozenset]
    df: np.ndarray
    K: np.ndarray
    pooled: list[list[tuple[int, ...]]]
    fixed_df: int
    fixed_k: float
    fixed_row: np.ndarray


def _structure(n_cfg: int, n_levels: list[int], parent: list[int | None]) -> _Structure:
    cfg = n_cfg >= 2
    off = 1 if cfg else 0
    n = ((n_cfg,) if cfg else ()) + tuple(n_levels)
    par = {j + off: p + off for j, p in enumerate(parent) if p is not None}

    def closure(T: tuple[int, ...]) -> frozenset:
        out = set(T)
        while True:
            extra = {par[a] for a in out if a in par} - out
            if not extra:
                return frozenset(out)
            out |= extra

    axes = range(len(n))
    groups: dict[frozenset, list[tuple[int, ...]]] = {}
    for r in range(1, len(n) + 1):
        for T in itertools.combinations(axes, r):
            groups.setdefault(closure(T), []).append(T)
    fixed = frozenset({0}) if cfg else None
    terms = sorted((t for t in groups if t != fixed), key=lambda t: (len(t), sorted(t)))
    df = np.array([sum(int(np.prod([n[a] - 1 for a in T])) for T in groups[t]) for t in terms], float)
    K = np.array([[float(np.prod([n[a] for a in axes if a not in u])) if t <= u else 0.0 for u in terms]
                  for t in terms])
    fixed_df = n_cfg - 1 if cfg else 0
    fixed_k = float(np.prod(n_levels)) if cfg else 0.0
    fixed_row = np.array([float(np.prod([n[a] for a in axes if a not in u])) if cfg and 0 in u else 0.0
                          for u in terms])
    return _Structure(n, cfg, terms, df, K, [groups[t] for t in terms], fixed_df, fixed_k, fixed_row)


@dataclass
class MixedFit:
    """Mean squares and ANOVA estimates of the mixed model of one seed design (see the module
    docstring). ``comps`` ``(K,)`` untruncated components of ``structure.terms``; ``theta`` the
    configurations' (fixed-effect) variance sum_c (mu_c - mu)^2 / (C - 1), NaN with one configuration;
    ``n_configs`` used and ``left_out`` (configurations missing some seed tuple)."""

    design: SeedDesign
    structure: _Structure
    ms: np.ndarray
    ms_fixed: float
    comps: np.ndarray
    theta: float
    n_configs: int
    left_out: int


def fit_mixed(Y: np.ndarray, design: SeedDesign) -> MixedFit | None:
    """Fit the mixed model to the complete configurations of ``Y (C, S)`` (columns in the order of
    ``design.codes``); None when no configuration has every seed tuple."""
    complete = np.isfinite(Y).all(axis=1)
    C = int(complete.sum())
    if C == 0:
        return None
    A = np.full((C, *design.n_levels), np.nan)
    A[(slice(None), *design.codes.T)] = Y[complete]
    st = _structure(C, design.n_levels, design.parent)
    G = (A if st.cfg else A[0])[None]
    crossed = [T for group in st.pooled for T in group] + ([(0,)] if st.cfg else [])
    ss = {T: float(v[0]) for T, v in _term_ss(G, crossed).items()}
    ms = np.array([sum(ss[T] for T in group) for group in st.pooled]) / st.df
    comps = np.linalg.solve(st.K, ms)
    scale = max(float(np.max(ms)), 0.0)
    comps = np.where(np.abs(comps) <= 1e-12 * scale, 0.0, comps)       # rounding noise of exact zeros
    ms_fixed, theta = np.nan, np.nan
    if st.cfg:
        ms_fixed = ss[(0,)] / st.fixed_df
        theta = (ms_fixed - float(st.fixed_row @ comps)) / st.fixed_k
    return MixedFit(design, st, ms, ms_fixed, comps, theta, C, int((~complete).sum()))


def _pivot_components(st: _Structure, ms: np.ndarray, n_draws: int, rng: np.random.Generator,
                      raw: bool = False) -> tuple[np.ndarray, ...]:
    """Generalized pivots for mean squares ``ms (..., K)``: of the components ``(..., n_draws, K)``
    (truncated at 0) and of the expected mean squares ``R (..., n_draws, K)``."""
    ms = np.asarray(ms, float)
    shape = ms.shape[:-1] + (n_draws,)
    R = ms[..., None, :] * st.df / rng.chisquare(st.df, size=shape + (len(st.df),))
    comps = np.linalg.solve(st.K, np.moveaxis(R, -1, 0).reshape(len(st.df), -1))
    comps = np.moveaxis(comps.reshape(len(st.df), *shape), 0, -1)
    return (np.maximum(comps, 0.0), R, comps) if raw else (np.maximum(comps, 0.0), R)


def noncentrality_pivots(q: np.ndarray, df: float, rng: np.random.Generator, steps: int = 40) -> np.ndarray:
    """Fiducial draws of the noncentrality lambda of ``q ~ chi2'(df, lambda)``, one per entry of ``q``:
    lambda* solves F(q; df, lambda*) = U with U uniform (0 where F(q; df, 0) <= U), by bisection. A
    fixed effect's sum of squares over the noise's expected mean square is such a q."""
    from scipy.stats import ncx2

    q = np.maximum(np.asarray(q, float), 0.0)
    u = rng.uniform(size=q.shape)
    lo = np.zeros_like(q)
    hi = q + 20.0 * np.sqrt(q + df) + 50.0
    zero = ncx2.cdf(q, df, 1e-12) <= u
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        above = ncx2.cdf(q, df, np.maximum(mid, 1e-12)) > u       # the cdf falls as lambda grows
        lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
    return np.where(zero, 0.0, 0.5 * (lo + hi))


@dataclass
class Pivots:
    """Generalized pivots of one seed design's mixed model, ``n_draws`` each: ``comps (n_draws, K)``
    (truncated), the expected within-configuration sum of squares ``within (n_draws,)``, the noise
    expected mean square of a configuration-level contrast ``noise (n_draws,)`` and the
    configurations' variance ``theta (n_draws,)`` (NaN with one configuration), and the total seed
    variance ``total (n_draws,)``: the sum of the untruncated component pivots (a sum of truncated ones
    would inflate it by every near-zero component's positive half, and push every share's interval low)."""

    comps: np.ndarray
    within: np.ndarray
    noise: np.ndarray
    theta: np.ndarray
    total: np.ndarray


def pivot_draws(fit: MixedFit, n_draws: int, rng: np.random.Generator) -> Pivots:
    """Draw the pivots of ``fit``. The configurations are fixed: their sum of squares is noncentral
    chi-square over the noise (``noncentrality_pivots``), not a random-effects mean square."""
    st = fit.structure
    comps, R, raw = _pivot_components(st, fit.ms, n_draws, rng, raw=True)
    within = R @ st.df
    noise = comps @ st.fixed_row if st.cfg else np.full(n_draws, np.nan)
    theta = np.full(n_draws, np.nan)
    if st.cfg:
        lam = noncentrality_pivots(fit.ms_fixed * st.fixed_df / np.maximum(noise, 1e-300), st.fixed_df, rng)
        theta = lam * noise / (st.fixed_k * st.fixed_df)
    total = np.maximum(raw.sum(axis=-1), 1e-12 * max(float(np.max(fit.ms)), 1e-300))
    return Pivots(comps, within, noise, theta, total)


def expected_ss_pivots(piv: Pivots, ss: float, df: int, rng: np.random.Generator) -> np.ndarray:
    """Pivots ``(n_draws,)`` of E[SS_X] = noise (lambda_X + df) of a fixed term X of the configurations
    (a factor, an interaction, all of them) with observed ``ss`` on ``df`` degrees of freedom."""
    lam = noncentrality_pivots(ss / np.maximum(piv.noise, 1e-300), df, rng)
    return piv.noise * (lam + df)


# -------------------------------------------------------------------------------- report rows

def row_groups(fit_or_st: MixedFit | _Structure, design: SeedDesign) -> list[tuple[str, list[int], str, int | None]]:
    """The reported rows: ``(label, term indices, kind, source index)``, kind one of "shared",
    "specific", "interactions", "residual"; labels name each source's shared and
    configuration-specific parts (just the source with one configuration, which cannot split them)."""
    st = fit_or_st.structure if isinstance(fit_or_st, MixedFit) else fit_or_st
    off = 1 if st.cfg else 0
    index = {t: i for i, t in enumerate(st.terms)}
    full = st.terms[-1]
    used = {full}
    rows: list[tuple[str, list[int], str, int | None]] = []
    for j in range(len(design.names)):
        own = _own_axes(design, j, off)
        label = design.source_label(j)
        if own != full:
            rows.append((f"{label} (shared)" if st.cfg else label, [index[own]], "shared", j))
            used.add(own)
        if st.cfg and own | {0} != full:
            rows.append((f"{label}{_TIMES}configuration", [index[own | {0}]], "specific", j))
            used.add(own | {0})
    inter = [i for i, t in enumerate(st.terms) if t not in used and not (st.cfg and 0 in t)]
    if inter:
        rows.append(("interactions of seed sources" + (" (shared)" if st.cfg else ""), inter, "interactions", None))
    inter_c = [i for i, t in enumerate(st.terms) if t not in used and st.cfg and 0 in t]
    if inter_c:
        rows.append((f"interactions of seed sources{_TIMES}configuration", inter_c, "interactions", None))
    what = _TIMES.join((["configuration"] if st.cfg else []) + [design.source_label(j)
                                                               for j in range(len(design.names))])
    rows.append((f"residual ({what} interaction and error)", [index[full]], "residual", None))
    return rows


def _own_axes(design: SeedDesign, j: int, off: int) -> frozenset:
    """The axes of source ``j``'s own term: itself and the sources it is nested in."""
    out, p = {off + j}, design.parent[j]
    while p is not None:
        out.add(off + p)
        p = design.parent[p]
    return frozenset(out)


def share_pivots(groups: list[tuple], comps: np.ndarray, total: np.ndarray | None = None) -> np.ndarray:
    """Shares of the seed variance of each row group, ``(..., len(groups))``, from truncated
    components ``(..., K)``, of their sum or of ``total (...)`` (then clipped to [0, 1])."""
    if total is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            sums = np.stack([comps[..., g[1]].sum(axis=-1) for g in groups], axis=-1)
            return np.clip(sums / total[..., None], 0.0, 1.0)
    total = comps.sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        sums = np.stack([comps[..., g[1]].sum(axis=-1) for g in groups], axis=-1)
        return np.where(total > 0, sums / np.where(total > 0, total, 1.0), np.nan)


# ------------------------------------------------------------------------------------ planner

PLAN_LEVELS: tuple[int, ...] = (3, 4, 5, 6, 8, 10, 15, 20, 30, 50)
PLAN_COLUMNS = ["source", "row", "levels_now", "halfwidth_now", "levels_10pp", "levels_5pp", "levels_10pp_all",
                "levels_5pp_all"]


def _halfwidths(fit: MixedFit, levels: list[int], sims: int, draws: int, rng: np.random.Generator) -> dict[str, float]:
    """Median half-width of every row's 95% interval over ``sims`` studies simulated from the fitted
    components (truncated) with ``levels`` per source: ``{row label: half-width}``."""
    design, truth = fit.design, np.maximum(fit.comps, 0.0)
    st = _structure(fit.n_configs, levels, design.parent)
    groups = row_groups(st, design)
    ms = (st.K @ truth) * rng.chisquare(st.df, size=(sims, len(st.df))) / st.df
    comps, _, raw = _pivot_components(st, ms, draws, rng, raw=True)
    sh = share_pivots(groups, comps, np.maximum(raw.sum(axis=-1), 1e-300))   # (sims, draws, rows)
    lo, hi = np.nanpercentile(sh, [2.5, 97.5], axis=1)
    return dict(zip([g[0] for g in groups], np.nanmedian((hi - lo) / 2, axis=0)))


def plan(fit: MixedFit, *, targets: tuple[float, float] = (0.10, 0.05), candidates: tuple[int, ...] = PLAN_LEVELS,
         sims: int = 60, draws: int = 250, seed: int = 0) -> pd.DataFrame:
    """Seed-design planner: how many levels pin each source's shares (shared and configuration-specific)
    to +-10 and +-5 percentage points, judged by the median half-width of the 95% interval over
    ``sims`` studies simulated with the fitted components (truncated) as the truth. ``levels_*pp``:
    this source's levels alone changed (the others as now); ``levels_*pp_all``: every source with that
    many levels (a share is a ratio, so the other sources' few levels can keep it wide however many
    levels this one gets). NaN: more than the largest candidate. Columns ``PLAN_COLUMNS``."""
    design = fit.design
    rng = np.random.default_rng(seed)
    grid = sorted({*candidates, *design.n_levels})
    every = {n: _halfwidths(fit, [n] * len(design.names), sims, draws, rng) for n in grid}
    now = _halfwidths(fit, list(design.n_levels), sims, draws, rng)
    out = []
    for j, name in enumerate(design.names):
        mine = [g[0] for g in row_groups(fit, design) if g[3] == j]
        if not mine:
            continue
        alone = {}
        for n in grid:
            levels = list(design.n_levels)
            levels[j] = n
            alone[n] = now if n == design.n_levels[j] else _halfwidths(fit, levels, sims, draws, rng)
        for label in mine:
            need = [next((n for n in grid if w[n][label] <= t), np.nan) for w in (alone, every) for t in targets]
            out.append({"source": name, "row": label, "levels_now": design.n_levels[j],
                        "halfwidth_now": float(now[label]), "levels_10pp": need[0], "levels_5pp": need[1],
                        "levels_10pp_all": need[2], "levels_5pp_all": need[3]})
    return pd.DataFrame(out, columns=PLAN_COLUMNS)
