"""Row passes of the per-network kernel (``fused_net``): elementwise work on ``(units, m)`` arrays,
samples on the last (contiguous) axis so every inner loop vectorises; the output layers' losses and
deltas; gradient finishing and the optimizer step over a flat parameter vector. Same formulas and
order of operations as ``layers.py`` and ``optim.py``. Imports numba.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .vmath import _FAST, _JIT, vexp_neg, vexpm1_neg, vlog1p_unit, vlog_ge1


@njit(fastmath=_FAST, **_JIT)
def _bias_act(Z, b, act, one, zero):
    """``Z[h] = f(Z[h] + b[h])`` in place, ``Z`` ``(units, m)``; ``act`` -1 = identity (logits)."""
    for h in range(Z.shape[0]):
        _bias_act_row(Z[h], b[h], act, one, zero)


@njit(fastmath=_FAST, **_JIT)
def _bias_act_row(zr, bh, act, one, zero):
    """One row of ``_bias_act``."""
    m = zr.shape[0]
    if act == 0:
        for i in range(m):
            z = zr[i] + bh
            e = vexp_neg(-abs(z))
            zr[i] = (one if z >= zero else e) / (one + e)
    elif act == 1:
        for i in range(m):
            z = zr[i] + bh
            em = vexpm1_neg(-(abs(z) + abs(z)))
            t = -em / ((one + one) + em)
            zr[i] = t if z >= zero else -t
    elif act == 2:
        for i in range(m):
            z = zr[i] + bh
            zr[i] = zero if z < zero else z
    else:
        for i in range(m):
            zr[i] = zr[i] + bh


@njit(fastmath=_FAST, **_JIT)
def _act_back(A, dA, act, one, zero):
    """``A = dA * f'(A)`` in place (``A`` holds activations, becomes the layer's delta), in
    ``layers.backward``'s order: ``(dA a)(1 - a)``, ``dA (1 - a^2)``, ``dA [a > 0]``."""
    fo, m = A.shape
    for h in range(fo):
        ar = A[h]
        dr = dA[h]
        if act == 0:
            for i in range(m):
                a = ar[i]
                ar[i] = (dr[i] * a) * (one - a)
        elif act == 1:
            for i in range(m):
                a = ar[i]
                ar[i] = dr[i] * (one - a * a)
        else:
            for i in range(m):
                ar[i] = dr[i] * (one if ar[i] > zero else zero)


@njit(fastmath=_FAST, **_JIT)
def _act_out(Z, b, act, Wo, bo, LG, one, zero):
    """The last hidden layer and a small output layer in one pass: ``Z[h] = f(Z[h] + b[h])`` in
    place and the logits ``LG = bo + Wo Z`` ``(K, m)``, each activation row added into every logit
    row while it is in cache (no matrix product of a few rows)."""
    fo, m = Z.shape
    K = LG.shape[0]
    for c in range(K):
        lr = LG[c]
        for i in range(m):
            lr[i] = bo[c]
    for h in range(fo):
        zr = Z[h]
        _bias_act_row(zr, b[h], act, one, zero)
        for c in range(K):
            w = Wo[c, h]
            lr = LG[c]
            for i in range(m):
                lr[i] += w * zr[i]


@njit(fastmath=_FAST, **_JIT)
def _back_out(A, D, Wo, Go, act, dsum, one, zero):
    """Back through a small output layer in one pass over the hidden rows: ``Go[c, h] = sum_i
    D[c, i] A[h, i]`` and the hidden deltas ``(sum_c Wo[c, h] D[c]) f'(A[h])`` written over the
    activations ``A`` ``(H, m)`` (``layers.backward``'s order; one output: ``((w d) a)(1 - a)``)."""
    fo, m = A.shape
    K = D.shape[0]
    for h in range(fo):
        ar = A[h]
        for i in range(m):
            dsum[i] = zero
        for c in range(K):
            w = Wo[c, h]
            dr = D[c]
            s = zero
            for i in range(m):
                s += dr[i] * ar[i]
                dsum[i] += w * dr[i]
            Go[c, h] = s
        if act == 0:
            for i in range(m):
                a = ar[i]
                ar[i] = (dsum[i] * a) * (one - a)
        elif act == 1:
            for i in range(m):
                a = ar[i]
                ar[i] = dsum[i] * (one - a * a)
        else:
            for i in range(m):
                ar[i] = dsum[i] * (one if ar[i] > zero else zero)


@njit(fastmath=_FAST, **_JIT)
def _out_binary(Z, yb, m, one, zero):
    """Binary output on logits ``Z`` ``(1, m)``: returns (summed cross-entropy as float64, number
    correct) and overwrites ``Z`` with ``sigmoid(z) - y``."""
    zr = Z[0]
    loss = 0.0
    correct = 0
    for i in range(m):
        z = zr[i]
        yi = one if yb[i] != 0 else zero
        e = vexp_neg(-abs(z))
        zr[i] = (one if z >= zero else e) / (one + e) - yi
        u = -z if yi != zero else z             # softplus(u) = max(u, 0) + log1p(exp(-|u|))
        loss += np.float64((zero if u < zero else u) + vlog1p_unit(e))
        correct += (z > zero) == (yi != zero)
    return loss, correct


@njit(fastmath=_FAST, **_JIT)
def _out_softmax(Z, yb, m, mx, sm, zy, am, one, zero):
    """Softmax output on logits ``Z`` ``(K, m)``: returns (summed cross-entropy ``logsumexp(z) - z_y``
    as float64, number correct; argmax as numpy's, first maximum, NaN first) and overwrites ``Z``
    with ``softmax(z) - onehot(y)``. ``mx, sm, zy, am``: work rows of length >= m."""
    K = Z.shape[0]
    for i in range(m):
        mx[i] = Z[0, i]
        am[i] = 0
        zy[i] = Z[yb[i], i]
    for c in range(1, K):
        zr = Z[c]
        for i in range(m):
            v = zr[i]
            if v > mx[i] or (v != v and mx[i] == mx[i]):
                mx[i] = v
                am[i] = c
    for i in range(m):
        sm[i] = zero
    for c in range(K):
        zr = Z[c]
        for i in range(m):
            e = vexp_neg(zr[i] - mx[i])
            zr[i] = e
            sm[i] += e
    loss = 0.0
    correct = 0
    for i in range(m):
        loss += np.float64((mx[i] + vlog_ge1(sm[i])) - zy[i])
        correct += am[i] == yb[i]
        sm[i] = one / sm[i]
    for c in range(K):
        zr = Z[c]
        for i in range(m):
            zr[i] *= sm[i]
    for i in range(m):
        Z[yb[i], i] -= one
    return loss, correct


@njit(fastmath=_FAST, **_JIT)
def _row_sums(D, out, zero):
    for h in range(D.shape[0]):
        s = zero
        for i in range(D.shape[1]):
            s += D[h, i]
        out[h] = s


@njit(fastmath=_FAST, **_JIT)
def _unit_counts(A, act, lo, hi, counts, u):
    """Add to ``counts[u + h]`` each unit's samples near a bound (sigmoid/tanh: ``a < lo`` or
    ``a > hi``) or active (relu: not ``a <= 0``) in the block ``A`` ``(units, m)``."""
    fo, m = A.shape
    for h in range(fo):
        ar = A[h]
        c = 0
        if act == 2:
            for i in range(m):
                c += not (ar[i] <= 0)
        else:
            for i in range(m):
                c += (ar[i] < lo) | (ar[i] > hi)
        counts[u + h] += c


@njit(fastmath=_FAST, **_JIT)
def _sumsq(v, a, b):
    s = 0.0
    for j in range(a, b):
        x = np.float64(v[j])
        s += x * x
    return s


@njit(**_JIT)
def _finish(th, G, nW, P, l2, inv_m, use_l2):
    """``G = (G + l2 W) / m`` on the weights ``[0, nW)``, ``G / m`` on the biases ``[nW, P)``."""
    if use_l2:
        for j in range(nW):
            G[j] = (G[j] + l2 * th[j]) * inv_m
    else:
        for j in range(nW):
            G[j] = G[j] * inv_m
    for j in range(nW, P):
        G[j] = G[j] * inv_m


@njit(**_JIT)
def _opt(w, G, s1, s2, a, b, opt, nesterov, lr, scale, use_scale, c, decay):
    """One optimizer step on ``w[a:b]`` (``optim.Optimizer.step``'s formulas; ``decay``: AdamW's
    weight decay applies here). ``c`` as ``fused_wide._opt_rows``'s."""
    mu, rho, omr, b1, omb1, b2, omb2, eps, lrwd, ibc1, ibc2 = c
    if opt == 0:
        for j in range(a, b):
            g = G[j] * scale if use_scale else G[j]
            w[j] = w[j] - lr * g
    elif opt == 1:
        for j in range(a, b):
            g = G[j] * scale if use_scale else G[j]
            v = mu * s1[j] + g
            s1[j] = v
            upd = lr * (g + mu * v) if nesterov else lr * v
            w[j] = w[j] - upd
    elif opt == 2:
        for j in range(a, b):
            g = G[j] * scale if use_scale else G[j]
            s = rho * s1[j] + omr * (g * g)
            s1[j] = s
            w[j] = w[j] - (lr * g) / (np.sqrt(s) + eps)
    else:
        for j in range(a, b):
            g = G[j] * scale if use_scale else G[j]
            m = b1 * s1[j] + omb1 * g
            v = b2 * s2[j] + omb2 * (g * g)
            s1[j] = m
            s2[j] = v
            upd = (lr * (m * ibc1)) / (np.sqrt(v * ibc2) + eps)
            if decay:
                upd = upd + lrwd * w[j]
            w[j] = w[j] - upd
