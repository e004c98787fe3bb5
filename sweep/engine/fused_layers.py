"""One network's passes through its layers for the per-network kernel (``fused_net``): forward,
backward, evaluation on a whole data set, the trained network's final evaluation. Matrix products
through ``np.dot`` (scipy's BLAS); a small output layer (up to ``SMALL_OUT`` units) is fused into the
last hidden layer's row passes. Imports numba.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .fused_passes import (_act_back, _act_out, _back_out, _bias_act, _out_binary, _out_softmax, _row_sums,
                           _unit_counts)
from .vmath import _JIT

SMALL_OUT = 4             # output layers up to this width go through the fused passes, wider ones through BLAS


@njit(**_JIT)
def _layer(buf, ofs, rows, m):
    return buf[ofs:ofs + rows * m].reshape((rows, m))


@njit(**_JIT)
def _forward(th, dims, wofs, bofs, Xb, m, acts, aofs, act, one, zero):
    """Forward pass of one network on ``Xb`` ``(m, d)``: each layer's activations (the last
    layer's logits) into ``acts``. Returns the logits ``(K, m)``. A small output layer (up to
    ``SMALL_OUT`` units) is summed in the last hidden layer's activation pass (``_act_out``)."""
    L = dims.shape[0] - 1
    K = dims[L]
    for l in range(L - 1):
        fi, fo = dims[l], dims[l + 1]
        Z = _layer(acts, aofs[l], fo, m)
        if l == 0:
            np.dot(_layer(th, wofs[0], fo, fi), Xb.T, Z)
        else:
            np.dot(_layer(th, wofs[l], fo, fi), _layer(acts, aofs[l - 1], fi, m), Z)
        b = th[bofs[l]:bofs[l] + fo]
        if l == L - 2 and K <= SMALL_OUT:
            _act_out(Z, b, act, _layer(th, wofs[L - 1], K, fo), th[bofs[L - 1]:bofs[L - 1] + K],
                     _layer(acts, aofs[L - 1], K, m), one, zero)
        else:
            _bias_act(Z, b, act, one, zero)
    fi = dims[L - 1]
    Zout = _layer(acts, aofs[L - 1], K, m)
    if K > SMALL_OUT:
        np.dot(_layer(th, wofs[L - 1], K, fi), _layer(acts, aofs[L - 2], fi, m), Zout)
        _bias_act(Zout, th[bofs[L - 1]:bofs[L - 1] + K], -1, one, zero)
    return Zout


@njit(**_JIT)
def _backward(th, G, dims, wofs, bofs, Xb, m, acts, aofs, tmp, act, one, zero):
    """Gradients of the summed loss into ``G`` (the layout of ``th``); the output delta is in the
    last layer's slot of ``acts``, the hidden layers' deltas overwrite their activations."""
    L = dims.shape[0] - 1
    K = dims[L]
    fi = dims[L - 1]
    D = _layer(acts, aofs[L - 1], K, m)
    A = _layer(acts, aofs[L - 2], fi, m)
    wo, bo = wofs[L - 1], bofs[L - 1]
    _row_sums(D, G[bo:bo + K], zero)
    if K <= SMALL_OUT:
        _back_out(A, D, _layer(th, wo, K, fi), _layer(G, wo, K, fi), act, tmp, one, zero)
    else:
        np.dot(D, A.T, _layer(G, wo, K, fi))
        dA = _layer(tmp, 0, fi, m)
        np.dot(_layer(th, wo, K, fi).T, D, dA)
        _act_back(A, dA, act, one, zero)
    for l in range(L - 2, 0, -1):
        fi, fo = dims[l], dims[l + 1]
        D = _layer(acts, aofs[l], fo, m)
        A = _layer(acts, aofs[l - 1], fi, m)
        np.dot(D, A.T, _layer(G, wofs[l], fo, fi))
        _row_sums(D, G[bofs[l]:bofs[l] + fo], zero)
        dA = _layer(tmp, 0, fi, m)
        np.dot(_layer(th, wofs[l], fo, fi).T, D, dA)
        _act_back(A, dA, act, one, zero)
    fo = dims[1]
    D = _layer(acts, aofs[0], fo, m)
    np.dot(D, Xb, _layer(G, wofs[0], fo, dims[0]))
    _row_sums(D, G[bofs[0]:bofs[0] + fo], zero)


@njit(**_JIT)
def _eval_set(th, dims, wofs, bofs, X, y, mmax, acts, aofs, act, work, iwork, one, zero):
    """(mean cross-entropy as float64, accuracy) of one network on all of ``X``, ``y``, in blocks
    of ``mmax`` samples (the softmax/binary passes write deltas into the logits: not used)."""
    n = y.shape[0]
    K = dims[dims.shape[0] - 1]
    loss, correct = 0.0, 0
    for i0 in range(0, n, mmax):
        i1 = min(i0 + mmax, n)
        m = i1 - i0
        Z = _forward(th, dims, wofs, bofs, X[i0:i1], m, acts, aofs, act, one, zero)
        if K == 1:
            s, c = _out_binary(Z, y[i0:i1], m, one, zero)
        else:
            s, c = _out_softmax(Z, y[i0:i1], m, work[0], work[1], work[2], iwork, one, zero)
        loss += s
        correct += c
    return loss / n, correct / n


@njit(**_JIT)
def _final(th, dims, wofs, bofs, X, y, mmax, acts, aofs, act, work, iwork, counts, lo, hi, one, zero, out):
    """The trained network on its training set (``loop.Evaluation``'s train fields): ``out`` =
    (summed cross-entropy as float64, accuracy, 1 if every prediction is one class, saturated
    share, dead share)."""
    n = y.shape[0]
    L = dims.shape[0] - 1
    K = dims[L]
    nh = 0
    for l in range(1, L):
        nh += dims[l]
    counts[:nh] = 0
    loss, correct, first, same = 0.0, 0, -1, True
    for i0 in range(0, n, mmax):
        i1 = min(i0 + mmax, n)
        m = i1 - i0
        Z = _forward(th, dims, wofs, bofs, X[i0:i1], m, acts, aofs, act, one, zero)
        u = 0
        for l in range(L - 1):
            _unit_counts(_layer(acts, aofs[l], dims[l + 1], m), act, lo, hi, counts, u)
            u += dims[l + 1]
        for i in range(m):
            if K == 1:
                p = 1 if Z[0, i] > zero else 0
            else:
                p, best = 0, Z[0, i]
                for c in range(1, K):
                    v = Z[c, i]
                    if v > best or (v != v and best == best):
                        p, best = c, v
            if first < 0:
                first = p
            same = same and p == first
        if K == 1:
            s, c = _out_binary(Z, y[i0:i1], m, one, zero)
        else:
            s, c = _out_softmax(Z, y[i0:i1], m, work[0], work[1], work[2], iwork, one, zero)
        loss += s
        correct += c
    hits = 0
    for u in range(nh):
        hits += counts[u] == 0 if act == 2 else counts[u] / n >= 0.95
    out[0] = loss
    out[1] = correct / n
    out[2] = 1.0 if same else 0.0
    out[3] = np.nan if act == 2 else hits / nh
    out[4] = hits / nh if act == 2 else np.nan
