"""A fitted surface over the configuration space: the mean outcome of a configuration as
``mu + sum_j f_j(x_j) + sum_{j<k} f_jk(x_j, x_k)``, by penalised least squares on the configuration
means (``../shared/STATISTICS.md`` section 8).

* A **smooth** factor (continuous, or numeric with many values) gets cubic B-splines on its sampling
  scale (log10 for a log range) with equally spaced knots and a second-order difference penalty
  (P-splines, Eilers & Marx 1996). A **categorical** factor gets one indicator per level.
* Interactions are tensor products of the two factors' (smaller) bases, ``ti()``-style: every basis
  is centred on the configurations first, so an interaction carries nothing of the main effects.
* Every term is penalised twice (Marra & Wood 2011): its wiggliness, and the part the wiggliness
  penalty leaves free (a straight line; all of a categorical effect, as a ridge), so REML can shrink a
  term that the data do not support to zero. Each basis is rotated so that its penalties are
  diagonal: the fit and its REML criterion need one Cholesky factorisation per evaluation.
* Smoothing parameters: restricted maximum likelihood (REML, Wood 2011) with an analytic gradient,
  by L-BFGS-B over ``log lambda``. Weights: the number of runs behind each configuration mean.

Why not a library: statsmodels' ``GLMGam`` fits additive smooths only (no tensor interactions) and is
marked experimental for weights; pyGAM has tensor terms but pins scipy below 1.17 and refits in
Python loops; the bootstrap here needs the fit as a fixed linear smoother applied to 1000 resampled
tables, which a hand-built penalised least squares gives directly.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import BSpline
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import OptimizeResult, minimize

__all__ = ["Margin", "Surface", "fit_surface", "margin"]

DEGREE = 3
MAIN_BASIS = 10          # B-splines of a smooth main effect (at most)
PAIR_BASIS = 6           # B-splines of a smooth factor inside an interaction (at most)
LOG_LAMBDA = (-14.0, 14.0)


@dataclass(frozen=True)
class Margin:
    """One factor's basis on the configurations it was built from, centred and rotated.

    ``smooth``: cubic B-splines of ``t = (scale(x) - lo) / (hi - lo)`` (scale = log10 when ``log``),
    else indicators of ``levels``. ``rot`` ``(p_raw, p)`` maps raw basis columns to the centred,
    penalty-diagonal ones; ``eig`` ``(p,)`` is the wiggliness penalty in that basis (zeros: the
    null space, e.g. the straight line; all zeros for a categorical factor)."""

    name: str
    smooth: bool
    log: bool
    lo: float
    hi: float
    knots: np.ndarray | None
    levels: tuple
    rot: np.ndarray
    eig: np.ndarray

    @property
    def size(self) -> int:
        return self.rot.shape[1]

    def scaled(self, x: np.ndarray) -> np.ndarray:
        """Positions on [0, 1] of the sampling scale (smooth factors only), clipped."""
        u = np.log10(np.asarray(x, dtype=float)) if self.log else np.asarray(x, dtype=float)
        return np.clip((u - self.lo) / (self.hi - self.lo), 0.0, 1.0)

    def raw(self, x) -> np.ndarray:
        """Raw basis ``(n, p_raw)`` at values ``x (n,)``."""
        if self.smooth:
            return BSpline.design_matrix(self.scaled(x), self.knots, DEGREE).toarray()
        pos = {v: i for i, v in enumerate(self.levels)}
        idx = np.array([pos[v] for v in x])
        out = np.zeros((len(idx), len(self.levels)))
        out[np.arange(len(idx)), idx] = 1.0
        return out

    def __call__(self, x) -> np.ndarray:
        """Centred basis ``(n, p)`` at values ``x (n,)``."""
        return self.raw(x) @ self.rot


def _difference_penalty(k: int, order: int = 2) -> np.ndarray:
    D = np.diff(np.eye(k), n=order, axis=0)
    return D.T @ D


def margin(name: str, x: np.ndarray, *, smooth: bool, log: bool = False, n_basis: int = MAIN_BASIS) -> Margin:
    """The basis of factor ``name`` built on the configurations' values ``x (C,)``: centred so that
    its functions average to 0 over the configurations, rotated so that its penalty is diagonal."""
    x = np.asarray(x)
    if smooth:
        u = np.log10(x.astype(float)) if log else x.astype(float)
        lo, hi = float(u.min()), float(u.max())
        if not hi > lo:
            raise ValueError(f"{name}: a smooth factor needs two or more distinct values")
        k = int(min(n_basis, max(DEGREE + 2, len(np.unique(u)) - 1)))
        inner = np.linspace(0.0, 1.0, k - DEGREE + 1)
        knots = np.r_[[0.0] * DEGREE, inner, [1.0] * DEGREE]
        levels: tuple = ()
        m = Margin(name, True, log, lo, hi, knots, levels, np.eye(k), np.zeros(k))
        P = _difference_penalty(k)
    else:
        levels = tuple(_sorted_unique(x))
        m = Margin(name, False, False, 0.0, 1.0, None, levels, np.eye(len(levels)), np.zeros(len(levels)))
        P = np.zeros((len(levels), len(levels)))
    B = m.raw(x)
    mean = B.mean(axis=0)
    Q, _ = np.linalg.qr(np.column_stack([mean, np.eye(len(mean))]))
    null = Q[:, 1:len(mean)]                      # coefficient directions with mean function 0
    e, U = np.linalg.eigh(null.T @ P @ null)
    e = np.where(e > 1e-9 * max(e.max(), 1e-300), e, 0.0)
    rot = null @ U
    Z = B @ rot
    if e.any():                                   # penalty on the scale of the data (mgcv's normalisation)
        e = e * np.linalg.norm(Z.T @ Z) / np.linalg.norm(e)
    return Margin(name, m.smooth, log, m.lo, m.hi, m.knots, levels, rot, e)


def _sorted_unique(x: np.ndarray) -> list:
    uniq = list(dict.fromkeys(x.tolist()))
    try:
        return sorted(uniq)
    except TypeError:
        return sorted(uniq, key=str)


@dataclass(frozen=True)
class Term:
    """One term of the surface: ``factors`` (one index: main effect; two: interaction), its columns
    ``cols`` in the design matrix, and its penalties ``pens`` ``(n_pen, p_T)`` (diagonal)."""

    factors: tuple[int, ...]
    cols: np.ndarray
    pens: np.ndarray


@dataclass
class Surface:
    """A fitted surface. ``X`` ``(C, p)`` design on the configurations (``X_raw @ R``: see
    :func:`_build`; ``raw`` maps coefficients back to the tensor-product terms), ``w`` ``(C,)`` weights,
    ``penalty`` ``(p,)`` the diagonal of ``sum_i lambda_i S_i`` at the chosen ``lam``, ``beta`` ``(p,)``,
    ``edf`` the effective degrees of freedom, ``rss`` the weighted residual sum of squares."""

    names: list[str]
    values: dict[str, np.ndarray]
    mains: list[Margin]
    pairs: list[Margin]
    terms: list[Term]
    X: np.ndarray
    R: np.ndarray
    y: np.ndarray
    w: np.ndarray
    lam: np.ndarray
    penalty: np.ndarray
    beta: np.ndarray
    edf: float
    rss: float
    converged: bool = True
    notes: list[str] = field(default_factory=list)

    def raw(self, beta: np.ndarray | None = None) -> np.ndarray:
        """Coefficients of the raw (tensor-product) terms, ``(p,)`` or ``(B, p)`` like ``beta``."""
        return (self.beta if beta is None else beta) @ self.R.T

    def design(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """Raw design matrix ``(n, p)`` at new points (``values``: factor -> ``(n,)``)."""
        return _design(self.mains, self.pairs, self.terms, [np.asarray(values[f]) for f in self.names])

    def predict(self, values: dict[str, np.ndarray], beta: np.ndarray | None = None) -> np.ndarray:
        """Fitted mean ``(n,)`` (or ``(n, B)`` for ``beta (B, p)``) at new points."""
        return self.design(values) @ self.raw(beta).T

    def refit(self, y: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Coefficients ``(B, p)`` for responses ``y (B, C)`` with weights ``w (B, C)``, smoothing
        parameters held at the fitted ones (one ``p x p`` solve per row)."""
        return refit(self.X, self.penalty, y, w)[0]

    @property
    def scale(self) -> float:
        """Residual variance of a configuration mean of weight 1: ``rss / (C - edf)``."""
        return self.rss / max(len(self.y) - self.edf, 1.0)

    def residual_weights(self) -> np.ndarray:
        """``D_kk (C,)``: the squared column norms of ``I - A`` (``A = X H^-1 X'W`` the smoother), so that
        ``E[sum_c r_c^2] = sum_k D_kk Var(y_k)`` when the surface is right: how much of each
        configuration's noise the residuals keep."""
        G = (self.X * self.w[:, None]).T @ self.X
        Hinv = np.linalg.inv(G + np.diag(self.penalty))
        Xh = self.X @ Hinv                                          # (C, p)
        lev = np.einsum("cp,cp->c", Xh, self.X) * self.w            # A_kk
        M = Hinv @ (self.X.T @ self.X) @ Hinv
        col = np.einsum("cp,pq,cq->c", self.X, M, self.X) * self.w ** 2   # sum_c A_ck^2
        return 1.0 - 2.0 * lev + col

    def term_tests(self, var_y: np.ndarray | None = None) -> list[tuple[float, float]]:
        """``(edf, p-value)`` of every term, ``terms`` order: Wood's (2013) Wald test of "the term is
        zero" with the rank-``r`` pseudo-inverse of the coefficients' covariance, ``r`` the term's
        effective degrees of freedom rounded (at least 1). Covariance: ``scale (X'WX + S)^-1``, or with
        ``var_y (C,)`` (each configuration mean's own variance) the sandwich ``H^-1 X'W diag(var_y) W X
        H^-1``, which holds when the seed noise differs between configurations."""
        from scipy.stats import chi2
        G = (self.X * self.w[:, None]).T @ self.X
        Hinv = np.linalg.inv(G + np.diag(self.penalty))
        F = np.einsum("ij,ji->i", Hinv, G)
        if var_y is None:
            V = self.scale * Hinv
        else:
            XW = self.X * (self.w * np.sqrt(np.maximum(var_y, 0.0)))[:, None]
            V = Hinv @ (XW.T @ XW) @ Hinv
        out = []
        for T in self.terms:
            c = T.cols
            edf = float(F[c].sum())
            r = int(min(len(c), max(1, round(edf))))
            e, U = np.linalg.eigh(V[np.ix_(c, c)])
            e, U = e[::-1][:r], U[:, ::-1][:, :r]
            stat = float(((U.T @ self.beta[c]) ** 2 / np.maximum(e, 1e-300)).sum())
            out.append((edf, float(chi2.sf(stat, r))))
        return out

    def refit_select(self, y: np.ndarray, w: np.ndarray, **kw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """As :func:`refit_select`, started from the fitted smoothing parameters."""
        return refit_select(self.X, self.terms, np.log(self.lam), y, w, **kw)


def _design(mains: list[Margin], pairs: list[Margin], terms: list[Term], x: list[np.ndarray]) -> np.ndarray:
    n = len(x[0]) if x else 0
    main_z = [m(v) for m, v in zip(mains, x)]
    pair_z = [m(v) for m, v in zip(pairs, x)]
    cols = [np.ones((n, 1))]
    for T in terms:
        if len(T.factors) == 1:
            cols.append(main_z[T.factors[0]])
        else:
            a, b = T.factors
            cols.append((pair_z[a][:, :, None] * pair_z[b][:, None, :]).reshape(n, -1))
    return np.hstack(cols)


def _term_penalties(ms: list[Margin], scale: float, shrink: bool) -> np.ndarray:
    """Penalties ``(n_pen, p_T)`` of a term over margins ``ms`` (coefficients in row-major tensor
    order): one wiggliness penalty per smooth margin, and with ``shrink`` the null-space (or ridge)
    penalty that lets the whole term shrink to zero. Main effects are not shrunk (a categorical main
    effect is not penalised at all, a smooth one only in its wiggliness), as in an ANOVA."""
    grids = np.meshgrid(*[m.eig for m in ms], indexing="ij")
    pens = [g.ravel() for g, m in zip(grids, ms) if m.smooth]
    if shrink:
        pens.append(np.all([g.ravel() == 0 for g in grids], axis=0).astype(float) * scale)
    size = int(np.prod([m.size for m in ms]))
    return np.array(pens).reshape(len(pens), size)


def _build(names: list[str], x: list[np.ndarray], smooth: list[bool], log: list[bool], w: np.ndarray,
           interactions: bool) -> tuple[list[Margin], list[Margin], list[Term], np.ndarray, np.ndarray]:
    """Margins, terms, the fitting design ``X (C, p)`` and ``R (p, p)`` with ``X = X_raw @ R``: the
    interaction columns are made orthogonal (weights ``w``) to the intercept and main effects, so an
    interaction fits only what the main effects leave and can never take them over."""
    mains = [margin(f, v, smooth=s, log=lg) for f, v, s, lg in zip(names, x, smooth, log)]
    pairs = [margin(f, v, smooth=s, log=lg, n_basis=PAIR_BASIS) if s else mains[j]
             for j, (f, v, s, lg) in enumerate(zip(names, x, smooth, log))]
    order = [(j,) for j in range(len(names))]
    if interactions:
        order += list(itertools.combinations(range(len(names)), 2))
    terms, start = [], 1
    parts = []
    for T in order:
        ms = [mains[T[0]]] if len(T) == 1 else [pairs[a] for a in T]
        size = int(np.prod([m.size for m in ms]))
        parts.append((T, ms, np.arange(start, start + size)))
        start += size
    X = _design(mains, pairs, [Term(T, c, np.zeros((0, len(c)))) for T, _, c in parts], x)
    for T, ms, c in parts:
        Z = X[:, c]
        scale = float(np.mean(np.einsum("ij,ij->j", Z, Z))) or 1.0
        terms.append(Term(T, c, _term_penalties(ms, scale, shrink=len(T) == 2)))
    R = np.eye(X.shape[1])
    main_cols = np.concatenate([[0]] + [T.cols for T in terms if len(T.factors) == 1])
    sw = np.sqrt(w)[:, None]
    M = X[:, main_cols] * sw
    for T in terms:
        if len(T.factors) == 2:
            gamma, *_ = np.linalg.lstsq(M, X[:, T.cols] * sw, rcond=None)
            R[np.ix_(main_cols, T.cols)] = -gamma
    return mains, pairs, terms, X @ R, R


def _penalty(terms: list[Term], rho: np.ndarray, p: int) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Diagonal ``(p,)`` of ``sum_i exp(rho_i) S_i`` and each penalty as ``(cols, diag)``."""
    s = np.zeros(p)
    each, i = [], 0
    for T in terms:
        for pen in T.pens:
            lam = float(np.exp(rho[i]))
            s[T.cols] += lam * pen
            each.append((T.cols, pen))
            i += 1
    return s, each


def _reml(rho: np.ndarray, XtWX: np.ndarray, XtWy: np.ndarray, yWy: float, terms: list[Term],
          n: int) -> tuple[float, np.ndarray]:
    """REML criterion (scale profiled out) and its gradient in ``rho = log lambda``:
    ``(n - M) log D_p + log|X'WX + S| - log|S|_+`` with ``D_p = y'Wy - beta'X'Wy`` and ``M`` the
    number of unpenalised coefficients."""
    p = XtWX.shape[0]
    s, each = _penalty(terms, rho, p)
    free = n - int(np.sum(s <= 0))
    H = XtWX + np.diag(s)
    try:
        c = cho_factor(H, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return 1e300, np.zeros_like(rho)
    beta = cho_solve(c, XtWy, check_finite=False)
    Dp = max(yWy - float(beta @ XtWy), 1e-300)
    logdet_H = 2.0 * float(np.log(np.diag(c[0])).sum())
    logdet_S = float(np.log(s[s > 0]).sum())
    Hinv_diag = np.diag(cho_solve(c, np.eye(p), check_finite=False))
    grad = np.empty_like(rho)
    for i, (cols, pen) in enumerate(each):
        lam = float(np.exp(rho[i]))
        b = beta[cols]
        grad[i] = lam * (free * float(pen @ (b * b)) / Dp + float(pen @ Hinv_diag[cols])
                         - float(np.divide(pen, s[cols], out=np.zeros_like(pen), where=pen > 0).sum()))
    return free * float(np.log(Dp)) + logdet_H - logdet_S, grad


def fit_surface(values: dict[str, np.ndarray], y: np.ndarray, w: np.ndarray | None = None, *,
                smooth: dict[str, bool], log: dict[str, bool] | None = None,
                interactions: bool = True) -> Surface:
    """Fit the surface to configuration means ``y (C,)`` at factor values ``values`` (factor ->
    ``(C,)``) with weights ``w (C,)`` (runs per configuration; default 1), main effects of every
    factor and (``interactions``) every pairwise interaction; smoothing parameters by REML."""
    names = list(values)
    x = [np.asarray(values[f]) for f in names]
    y = np.asarray(y, dtype=float)
    C = len(y)
    w = np.ones(C) if w is None else np.asarray(w, dtype=float) / np.mean(w)
    log = log or {}
    mains, pairs, terms, X, R = _build(names, x, [smooth[f] for f in names], [log.get(f, False) for f in names],
                                       w, interactions and len(names) >= 2)
    Xw = X * w[:, None]
    XtWX, XtWy, yWy = _gram(X, w[None])[0], Xw.T @ y, float((w * y) @ y)
    res = _select(terms, XtWX, XtWy, yWy, C)
    s, _ = _penalty(terms, res.x, X.shape[1])
    H = XtWX + np.diag(s)
    c = cho_factor(H, lower=True)
    beta = cho_solve(c, XtWy)
    edf = float(np.trace(cho_solve(c, XtWX)))
    r = y - X @ beta
    notes = [] if res.success else [f"smoothing-parameter search stopped early: {res.message}"]
    return Surface(names, dict(zip(names, x)), mains, pairs, terms, X, R, y, w, np.exp(res.x), s, beta, edf, float((w * r) @ r),
                   bool(res.success), notes)


RIDGE = 1e-9       # relative ridge on every coefficient: a resampled table may leave a level without data


def _gram(X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``X' diag(w_b) X`` for every row of ``w (B, C)`` plus a negligible ridge: ``(B, p, p)``."""
    G = np.stack([(X * wb[:, None]).T @ X for wb in w])
    scale = np.maximum(np.einsum("bpp->b", G) / G.shape[1], 1e-300)
    return G + (RIDGE * scale)[:, None, None] * np.eye(G.shape[1])


def _starts(terms: list[Term]) -> list[np.ndarray]:
    """Starting points of the smoothing-parameter search: REML can have several local optima (an
    interaction can take over its factors' main effects when the configurations are unbalanced), so
    the search starts from a neutral point, from "main effects free, interactions off" and from
    "everything free", and keeps the best."""
    is_pair = np.array([len(T.factors) == 2 for T in terms for _ in T.pens], dtype=bool)
    return [np.zeros(len(is_pair)), np.where(is_pair, 6.0, -3.0), np.full(len(is_pair), -3.0)]


def _select(terms: list[Term], XtWX: np.ndarray, XtWy: np.ndarray, yWy: float, n: int):
    """The REML-optimal ``log lambda`` (an ``OptimizeResult``) over :func:`_starts`."""
    best = None
    if not any(len(T.pens) for T in terms):
        return OptimizeResult(x=np.zeros(0), fun=0.0, success=True, message="nothing to smooth")
    for rho0 in _starts(terms):
        res = minimize(_reml, rho0, args=(XtWX, XtWy, yWy, terms, n), jac=True, method="L-BFGS-B",
                       bounds=[LOG_LAMBDA] * len(rho0), options={"maxiter": 500})
        if best is None or res.fun < best.fun - 1e-9:
            best = res
    return best


def refit(X: np.ndarray, penalty: np.ndarray, y: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Penalised least squares at a fixed penalty, ``(p,)`` or one per row ``(B, p)``: coefficients
    ``beta (B, p)`` for ``y (B, C)`` with weights ``w (B, C)``, and their effective degrees of
    freedom ``(B,)``."""
    G = _gram(X, w)
    s = np.broadcast_to(penalty, (len(G), G.shape[1]))
    Hinv = np.linalg.inv(G + s[:, :, None] * np.eye(G.shape[1]))
    beta = np.einsum("bpq,bq->bp", Hinv, (w * y) @ X)
    return beta, G.shape[1] - np.einsum("bpp,bp->b", Hinv, s)


def refit_select(X: np.ndarray, terms: list[Term], rho: np.ndarray, y: np.ndarray, w: np.ndarray, *,
                 iterations: int = 30, chunk: int = 250, tol: float = 0.01) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Refit ``y (B, C)`` with weights ``w (B, C)``, choosing the smoothing parameters again for every
    row by the extended Fellner-Schall update (Wood & Fasiolo 2017; it climbs the same REML criterion
    as :func:`fit_surface`), started from ``rho (n_pen,)``: the bootstrap then carries the uncertainty
    of the smoothing choice (a term REML switched off can come back, and the reverse). Stops after
    ``iterations`` updates, or once no smoothing parameter of a chunk moves by more than ``tol`` (in
    log). Returns ``beta (B, p)``, the effective degrees of freedom ``(B,)`` and the penalties ``(B, p)``."""
    B, p = y.shape[0], X.shape[1]
    pens = []
    for T in terms:
        for pen in T.pens:
            full = np.zeros(p)
            full[T.cols] = pen
            pens.append(full)
    P = np.array(pens)                                   # (n_pen, p)
    beta, edf, pen_out = np.empty((B, p)), np.empty(B), np.empty((B, p))
    n = y.shape[1]
    for a in range(0, B, chunk):
        yb, wb = y[a:a + chunk], w[a:a + chunk]
        G = _gram(X, wb)                                 # (b, p, p)
        Xy = np.einsum("bc,cp->bp", wb * yb, X)
        yy = np.einsum("bc,bc->b", wb * yb, yb)
        lam = np.exp(np.broadcast_to(rho, (len(yb), len(rho)))).copy()
        done = False
        for it in range(iterations + 1):
            s = lam @ P                                   # (b, p)
            Hinv = np.linalg.inv(G + s[:, :, None] * np.eye(p))
            bt = np.einsum("bpq,bq->bp", Hinv, Xy)
            hd = np.einsum("bpp->bp", Hinv)
            df = p - np.einsum("bp,bp->b", hd, s)
            rss = yy - 2 * np.einsum("bp,bp->b", bt, Xy) + np.einsum("bp,bpq,bq->b", bt, G, bt)
            if it == iterations or done:
                break
            phi = np.maximum(rss, 1e-300) / np.maximum(n - df, 1.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                num = np.einsum("ip,bp->bi", P, 1.0 / np.where(s > 0, s, np.inf)) - hd @ P.T
                den = np.einsum("ip,bp->bi", P, bt * bt) / phi[:, None]
                ratio = np.where(den > 0, np.maximum(num, 0.0) / den, np.inf)
            new = np.clip(lam * ratio, np.exp(LOG_LAMBDA[0]), np.exp(LOG_LAMBDA[1]))
            done = bool(np.max(np.abs(np.log(new / lam)), initial=0.0) < tol)    # every row settled
            lam = new
        beta[a:a + chunk], edf[a:a + chunk], pen_out[a:a + chunk] = bt, df, s
    return beta, edf, pen_out
