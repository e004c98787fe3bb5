"""Functional ANOVA of a fitted surface (``surface.py``): how much of the between-configuration
variance each factor and each pair of factors explains, for sampled search spaces where a factor has
one value per configuration (``../shared/STATISTICS.md`` section 8).

The decomposition is taken under the product of the factors' observed distributions (each factor's
values over the configurations, independently; Hutter, Hoos & Leyton-Brown 2014 use the uniform
distribution over the space, which a random sampler's configurations estimate). A main effect is
``E[f | x_j] - E f``, an interaction what ``E[f | x_j, x_k]`` adds to its two main effects; with only
main effects and pairwise terms in the surface their variances add up to the surface's variance.

Shapes: ``C`` configurations, ``B`` bootstrap draws (row 0 the point estimate), ``p`` coefficients.
"""
from __future__ import annotations

import numpy as np

from .surface import Surface

__all__ = ["term_variances", "factor_blocks"]


def factor_blocks(s: Surface) -> list[tuple[np.ndarray, slice, slice]]:
    """Per factor: the stacked basis ``H (C, q)`` of its main and interaction margins at the
    configurations, and the column blocks of each margin inside ``H`` (the same block for a
    categorical factor, whose interaction margin is its main one)."""
    out = []
    for j, f in enumerate(s.names):
        xm = s.mains[j]
        x = _values(s, j)
        Zm = xm(x)
        if s.pairs[j] is xm:
            out.append((Zm, slice(0, Zm.shape[1]), slice(0, Zm.shape[1])))
        else:
            Zp = s.pairs[j](x)
            out.append((np.hstack([Zm, Zp]), slice(0, Zm.shape[1]), slice(Zm.shape[1], Zm.shape[1] + Zp.shape[1])))
    return out


def _values(s: Surface, j: int) -> np.ndarray:
    return s.values[s.names[j]]


def _moments(H: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(B, q)`` and covariance ``(B, q, q)`` of the basis rows ``H (C, q)`` under
    configuration weights ``v (B, C)`` (each row normalised to sum 1)."""
    vn = v / v.sum(axis=1, keepdims=True)
    q = H.shape[1]
    mean = vn @ H
    second = (vn @ (H[:, :, None] * H[:, None, :]).reshape(len(H), q * q)).reshape(-1, q, q)
    return mean, second - mean[:, :, None] * mean[:, None, :]


def term_variances(s: Surface, beta: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Variance of every term of the surface ``(B, n_terms)``, in ``s.terms`` order, for coefficients
    ``beta (B, p)`` (the fitting parameterisation) under the product of the factors' distributions weighted by ``v (B, C)`` (how often
    each configuration was drawn; all ones: the observed configurations)."""
    beta = s.raw(beta)
    blocks = factor_blocks(s)
    moments = [_moments(H, v) for H, _, _ in blocks]
    B = beta.shape[0]
    k = len(s.names)
    coef = [np.zeros((B, H.shape[1])) for H, _, _ in blocks]     # each factor's main-effect function
    out = np.zeros((B, len(s.terms)))
    for t, T in enumerate(s.terms):
        b = beta[:, T.cols]
        if len(T.factors) == 1:
            j = T.factors[0]
            coef[j][:, blocks[j][1]] += b
            continue
        a, c = T.factors
        pa, pc = blocks[a][2], blocks[c][2]
        theta = b.reshape(B, pa.stop - pa.start, pc.stop - pc.start)
        Ga = moments[a][1][:, pa, pa]
        Gc = moments[c][1][:, pc, pc]
        out[:, t] = np.einsum("bij,bjk,blk,bli->b", theta, Gc, theta, Ga, optimize=True)
        # averaging over one factor leaves a function of the other: part of its main effect
        coef[a][:, pa] += np.einsum("bij,bj->bi", theta, moments[c][0][:, pc])
        coef[c][:, pc] += np.einsum("bij,bi->bj", theta, moments[a][0][:, pa])
    for t, T in enumerate(s.terms):
        if len(T.factors) == 1:
            j = T.factors[0]
            out[:, t] = np.einsum("bi,bij,bj->b", coef[j], moments[j][1], coef[j])
    assert k == len(blocks)
    return out
