"""The general fused kernel: any number of hidden layers, binary or softmax output, full batch or
minibatches, one network at a time.

Every network of the chunk runs its whole budget inside one compiled call, one network after the
other: its parameters, moments and work arrays stay in the core's caches for all its iterations.
Per iteration: the network gathers its own minibatch rows (the permutations come from the same
``order`` streams as the numpy loop's, drawn in Python), one matrix product per layer forward
(``np.dot``, scipy's BLAS) with bias and activation in one pass, the output pass (loss, accuracy and
the output delta), one product per layer for the gradient and one for the delta sent back, and the
optimizer step over the network's flat parameter vector. Same formulas and rules as
``loop.numpy_loop`` (divergence, freezing, clipping, logging, the minibatch objective as each
epoch's mean); agrees with it to rounding (``tests/test_engine_fused.py``).

Layout of one network's parameters (a row of ``theta``): every layer's weights ``(fan_out, fan_in)``
row-major, layer after layer, then every layer's biases. Work arrays: samples on the last axis,
``(units, m)``; a layer's activations are overwritten by its deltas in the backward pass.
Imports numba: imported by ``fused.run_loop`` only.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .loop import Batch, Evaluation, LoopState, new_state
from .vmath import _FAST, _JIT, _pow, vexp_neg, vexpm1_neg, vlog1p_unit, vlog_ge1

OPT_CODES = {"sgd": 0, "momentum": 1, "rmsprop": 2, "adam": 3, "adamw": 4}
ACT_CODES = {"sigmoid": 0, "tanh": 1, "relu": 2}
PERM_BUDGET = 1 << 23     # permutation entries drawn ahead per call (int32: 32 MiB)


# ---------------------------------------------------------------------------------------------
# Row passes (vectorised over the samples).
# ---------------------------------------------------------------------------------------------
@njit(fastmath=_FAST, **_JIT)
def _bias_act(Z, b, act, one, zero):
    """``Z[h] = f(Z[h] + b[h])`` in place, ``Z`` ``(units, m)``; ``act`` -1 = identity (logits)."""
    fo, m = Z.shape
    for h in range(fo):
        zr = Z[h]
        bh = b[h]
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
def _act_logit(Z, b, act, w, b_out, lg, one, zero):
    """The last hidden layer before a binary output: ``Z[h] = f(Z[h] + b[h])`` in place and the
    logit ``lg = b_out + sum_h w[h] Z[h]`` ``(m,)``, in one pass."""
    fo, m = Z.shape
    for i in range(m):
        lg[i] = b_out
    for h in range(fo):
        zr = Z[h]
        bh = b[h]
        wh = w[h]
        if act == 0:
            for i in range(m):
                z = zr[i] + bh
                e = vexp_neg(-abs(z))
                a = (one if z >= zero else e) / (one + e)
                zr[i] = a
                lg[i] += wh * a
        elif act == 1:
            for i in range(m):
                z = zr[i] + bh
                em = vexpm1_neg(-(abs(z) + abs(z)))
                t = -em / ((one + one) + em)
                a = t if z >= zero else -t
                zr[i] = a
                lg[i] += wh * a
        else:
            for i in range(m):
                z = zr[i] + bh
                a = zero if z < zero else z
                zr[i] = a
                lg[i] += wh * a


@njit(fastmath=_FAST, **_JIT)
def _back_logit(A, D, w, Gw, act, one, zero):
    """Back through a binary output: ``Gw[h] = sum_i D[i] A[h, i]`` and the hidden deltas
    ``(w_h D) f'(A)`` written over the activations ``A`` ``(H, m)``."""
    fo, m = A.shape
    for h in range(fo):
        ar = A[h]
        wh = w[h]
        s = zero
        if act == 0:
            for i in range(m):
                a = ar[i]
                d = D[i]
                s += d * a
                ar[i] = ((wh * d) * a) * (one - a)
        elif act == 1:
            for i in range(m):
                a = ar[i]
                d = D[i]
                s += d * a
                ar[i] = (wh * d) * (one - a * a)
        else:
            for i in range(m):
                a = ar[i]
                d = D[i]
                s += d * a
                ar[i] = (wh * d) * (one if a > zero else zero)
        Gw[h] = s


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


# ---------------------------------------------------------------------------------------------
# Forward, backward, evaluation of one network.
# ---------------------------------------------------------------------------------------------
@njit(**_JIT)
def _layer(buf, ofs, rows, m):
    return buf[ofs:ofs + rows * m].reshape((rows, m))


@njit(**_JIT)
def _forward(th, dims, wofs, bofs, Xb, m, acts, aofs, act, one, zero):
    """Forward pass of one network on ``Xb`` ``(m, d)``: each layer's activations (the last
    layer's logits) into ``acts``. Returns the logits ``(K, m)``. A binary output's logit is summed
    in the last hidden layer's activation pass (no product of one row)."""
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
        if l == L - 2 and K == 1:
            wo = wofs[L - 1]
            _act_logit(Z, b, act, th[wo:wo + fo], th[bofs[L - 1]], acts[aofs[L - 1]:aofs[L - 1] + m], one, zero)
        else:
            _bias_act(Z, b, act, one, zero)
    fi = dims[L - 1]
    Zout = _layer(acts, aofs[L - 1], K, m)
    if K > 1:
        np.dot(_layer(th, wofs[L - 1], K, fi), _layer(acts, aofs[L - 2], fi, m), Zout)
        _bias_act(Zout, th[bofs[L - 1]:bofs[L - 1] + K], -1, one, zero)
    return Zout


@njit(fastmath=_FAST, **_JIT)
def _row_sums(D, out, zero):
    for h in range(D.shape[0]):
        s = zero
        for i in range(D.shape[1]):
            s += D[h, i]
        out[h] = s


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
    if K == 1:
        _back_logit(A, D[0], th[wo:wo + fi], G[wo:wo + fi], act, one, zero)
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


# ---------------------------------------------------------------------------------------------
# Gradient finishing and the optimizer step over a flat parameter vector.
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# The loop.
# ---------------------------------------------------------------------------------------------
@njit(**_JIT)
def _gather(X, y, perm, a0, m, Xb, yb):
    """Rows ``perm[a0:a0+m]`` of ``X`` and ``y`` into ``Xb`` ``(m, d)`` and ``yb``."""
    d = X.shape[1]
    for i in range(m):
        src = perm[a0 + i]
        xr = X[src]
        for j in range(d):
            Xb[i, j] = xr[j]
        yb[i] = y[src]


@njit(**_JIT)
def _run(X, y, Xv, yv, Xt, yt, perms, e0, theta, S1, S2, lr, dims, wofs, bofs, log_row, obj_row,
         objective, curves, frozen, diverged_step, limit, grad_first, grad_last, epoch_sum, epoch_n,
         frozen_vals, final, ints, hp, hpt):
    """Iterations ``it0 .. it1-1`` of every network of the chunk, one network after the other.

    ``X`` ``(n, d)``, ``y`` ``(n,)`` int64 (training), ``Xv``, ``yv`` (validation); ``perms``
    ``(N, epochs, n)`` the data order of epochs ``e0 ..`` (minibatches). ``theta``, ``S1``, ``S2``
    ``(N, P)`` parameters and optimizer moments (updated in place). ``log_row`` ``(T + 1,)``: curve
    row of a logged step, else -1; ``obj_row`` ``(T + 1,)``: objective row written at the end of a
    step (minibatches: the epoch's), else -1. ``epoch_sum``/``epoch_n`` ``(N,)`` carry an epoch
    over calls; ``frozen_vals`` ``(N, 4)``: objective, loss, accuracy and gradient norm of a
    network frozen in a full-batch run (its later steps repeat them, its weights no longer move).
    ``final`` ``(N, 10)``: after the last step, the trained network's ``loop.Evaluation`` (train
    objective, loss, accuracy; validation and test loss and accuracy; single class, saturated and
    dead shares), test data ``Xt``, ``yt``. ``ints``: (it0, it1, T, activation, optimizer, nesterov, divergence on, clipping on, l2 on, B,
    per epoch). ``hp`` (float64): (beta1, beta2). ``hpt`` (dtype): (1, 0, l2, 1e-3, factor, clip,
    mu, rho, 1 - rho, b1, 1 - b1, b2, 1 - b2, eps, weight decay, saturation bounds lo and hi).
    """
    it0, it1, T, act, opt, nesterov = ints[0], ints[1], ints[2], ints[3], ints[4], ints[5] != 0
    has_div, has_clip, use_l2, B, per_epoch = ints[6] != 0, ints[7] != 0, ints[8] != 0, ints[9], ints[10]
    one, zero, l2, floor3, factor, clip = hpt[0], hpt[1], hpt[2], hpt[3], hpt[4], hpt[5]
    mu, rho, omr, b1, omb1, b2, omb2, eps, wd = hpt[6], hpt[7], hpt[8], hpt[9], hpt[10], hpt[11], \
        hpt[12], hpt[13], hpt[14]
    lo, hi = hpt[15], hpt[16]
    N, P = theta.shape
    L = dims.shape[0] - 1
    nW = bofs[0]
    n, d = X.shape
    nv = yv.shape[0]
    full = B >= n
    mmax = B if not full else n
    mmax = max(mmax, min(256, max(n, nv)))      # evaluation blocks
    width = 0
    for l in range(1, L + 1):
        width = max(width, dims[l])
    aofs = np.zeros(L, dtype=np.int64)
    for l in range(1, L):
        aofs[l] = aofs[l - 1] + dims[l] * mmax
    acts = np.empty(aofs[L - 1] + dims[L] * mmax, dtype=theta.dtype)
    tmp = np.empty(width * mmax, dtype=theta.dtype)
    work = np.empty((3, mmax), dtype=theta.dtype)
    iwork = np.empty(mmax, dtype=np.int64)
    Xb = np.empty((B, d), dtype=theta.dtype)
    yb = np.empty(B, dtype=np.int64)
    G = np.zeros(P, dtype=theta.dtype)
    cast = np.empty(1, dtype=theta.dtype)
    counts = np.zeros(width * L, dtype=np.int64)
    fout = np.empty(5)
    K = dims[L]
    for k in range(N):
        th, s1, s2 = theta[k], S1[k], S2[k]
        for it in range(it0, it1):
            row = log_row[it]
            if row >= 0:
                if nv > 0:
                    vl, va = _eval_set(th, dims, wofs, bofs, Xv, yv, mmax, acts, aofs, act, work, iwork, one, zero)
                    cast[0] = vl
                    curves[2, row, k] = cast[0]
                    curves[3, row, k] = va
                if not full:
                    tl, ta = _eval_set(th, dims, wofs, bofs, X, y, mmax, acts, aofs, act, work, iwork, one, zero)
                    cast[0] = tl
                    curves[0, row, k] = cast[0]
                    curves[1, row, k] = ta
            if full and frozen[k]:          # same weights, same data: the same numbers again
                objective[it, k] = frozen_vals[k, 0]
                if row >= 0:
                    curves[0, row, k] = frozen_vals[k, 1]
                    curves[1, row, k] = frozen_vals[k, 2]
                continue
            if full:
                m = n
                Xm, ym = X, y
            else:
                e = it // per_epoch
                a0 = (it - e * per_epoch) * B
                m = min(B, n - a0)
                _gather(X, y, perms[k, e - e0], a0, m, Xb, yb)
                Xm, ym = Xb[:m], yb[:m]
            Z = _forward(th, dims, wofs, bofs, Xm, m, acts, aofs, act, one, zero)
            if K == 1:
                ce, correct = _out_binary(Z, ym, m, one, zero)
            else:
                ce, correct = _out_softmax(Z, ym, m, work[0], work[1], work[2], iwork, one, zero)
            cast[0] = ce / m
            loss = cast[0]
            obj = loss
            if use_l2:
                cast[0] = m + m
                coef = l2 / cast[0]
                cast[0] = _sumsq(th, 0, nW)
                obj = loss + coef * cast[0]
            if full:
                objective[it, k] = obj
                if row >= 0:
                    curves[0, row, k] = loss
                    curves[1, row, k] = correct / m
            else:
                cast[0] = obj * m
                epoch_sum[k] += cast[0]
                epoch_n[k] += m
                if obj_row[it + 1] >= 0:
                    objective[obj_row[it + 1], k] = epoch_sum[k] / epoch_n[k]
                    epoch_sum[k] = 0.0
                    epoch_n[k] = 0
            if it == 0 and has_div:
                limit[k] = factor * (floor3 if obj < floor3 else obj)
            newly = False
            if not frozen[k]:
                if not np.isfinite(obj) or (has_div and obj > limit[k]):
                    diverged_step[k] = it
                    frozen[k] = True
                    newly = True
            if frozen[k] and not newly and it != T - 1:
                continue                    # minibatches: the objective only
            _backward(th, G, dims, wofs, bofs, Xm, m, acts, aofs, tmp, act, one, zero)
            cast[0] = m
            _finish(th, G, nW, P, l2, one / cast[0], use_l2)
            scale = one
            if has_clip or it == 0 or it == T - 1 or newly:
                cast[0] = np.sqrt(_sumsq(G, 0, P))
                gnorm = cast[0]
                if it == 0:
                    grad_first[k] = gnorm
                if it == T - 1:
                    grad_last[k] = gnorm
                if newly and full:
                    frozen_vals[k, 0] = obj
                    frozen_vals[k, 1] = loss
                    frozen_vals[k, 2] = correct / m
                    frozen_vals[k, 3] = gnorm
                if has_clip:
                    s = clip / (gnorm if gnorm > zero else one)
                    scale = s if s < one else one
            if frozen[k]:
                continue
            t = it + 1
            cast[0] = 1.0 - _pow(hp[0], t)
            ibc1 = one / cast[0]
            cast[0] = 1.0 - _pow(hp[1], t)
            ibc2 = one / cast[0]
            lrk = lr[k]
            c = (mu, rho, omr, b1, omb1, b2, omb2, eps, lrk * wd, ibc1, ibc2)
            _opt(th, G, s1, s2, 0, nW, opt, nesterov, lrk, scale, has_clip, c, opt == 4)
            _opt(th, G, s1, s2, nW, P, opt, nesterov, lrk, scale, has_clip, c, False)
        if full and frozen[k] and it1 == T:
            grad_last[k] = frozen_vals[k, 3]
        if it1 == T:
            _final(th, dims, wofs, bofs, X, y, mmax, acts, aofs, act, work, iwork, counts, lo, hi, one, zero, fout)
            cast[0] = fout[0] / n
            tl = cast[0]
            obj = tl
            if use_l2:
                cast[0] = n + n
                coef = l2 / cast[0]
                cast[0] = _sumsq(th, 0, nW)
                obj = tl + coef * cast[0]
            final[k, 0], final[k, 1], final[k, 2] = obj, tl, fout[1]
            for j, (Xe, ye) in enumerate(((Xv, yv), (Xt, yt))):
                if ye.shape[0] > 0:
                    el, ea = _eval_set(th, dims, wofs, bofs, Xe, ye, mmax, acts, aofs, act, work, iwork, one, zero)
                    cast[0] = el
                    final[k, 3 + 2 * j], final[k, 4 + 2 * j] = cast[0], ea
            final[k, 7], final[k, 8], final[k, 9] = fout[2], fout[3], fout[4]


# ---------------------------------------------------------------------------------------------
# Python side: layout, segments of epochs, the state back in the engine's layout.
# ---------------------------------------------------------------------------------------------
def _pack(W: list[np.ndarray], dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``[(N, fo, fi + 1)]`` -> ``theta (N, P)`` (weights of every layer, then every bias),
    ``dims``, weight and bias offsets."""
    N = W[0].shape[0]
    dims = np.array([W[0].shape[2] - 1] + [w.shape[1] for w in W], dtype=np.int64)
    sizes_w = [w.shape[1] * (w.shape[2] - 1) for w in W]
    nW = sum(sizes_w)
    wofs = np.cumsum([0] + sizes_w[:-1]).astype(np.int64)
    bofs = (nW + np.cumsum([0] + [w.shape[1] for w in W[:-1]])).astype(np.int64)
    theta = np.empty((N, nW + sum(w.shape[1] for w in W)), dtype=dtype)
    for w, a, b in zip(W, wofs, bofs):
        fo, fi = w.shape[1], w.shape[2] - 1
        theta[:, a:a + fo * fi] = w[:, :, 1:].reshape(N, fo * fi)
        theta[:, b:b + fo] = w[:, :, 0]
    return theta, dims, wofs, bofs


def _unpack(theta: np.ndarray, W: list[np.ndarray], wofs, bofs) -> None:
    N = theta.shape[0]
    for w, a, b in zip(W, wofs, bofs):
        fo, fi = w.shape[1], w.shape[2] - 1
        w[:, :, 1:] = theta[:, a:a + fo * fi].reshape(N, fo, fi)
        w[:, :, 0] = theta[:, b:b + fo]


def _constants(batch: Batch, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c, o = batch.config, batch.config.optimizer
    opt = OPT_CODES[o.name]
    if o.name == "adamw" and not o.weight_decay:
        opt = OPT_CODES["adam"]          # as Optimizer.step: no decay term at all
    ints = np.array([0, 0, batch.T, ACT_CODES[batch.arch.activation], opt, int(o.nesterov),
                     int(c.divergence_factor is not None), int(c.clip_norm is not None), int(c.l2 != 0),
                     batch.B, batch.per_epoch], dtype=np.int64)
    hp = np.array([o.beta1, o.beta2], dtype=np.float64)
    # Typed constants exactly as numpy forms them: Python floats meet arrays of the dtype.
    lo = 0.01 if batch.arch.activation == "sigmoid" else -0.99      # as loop.hidden_health
    hpt = np.array([1, 0, c.l2, 1e-3, c.divergence_factor or 0.0, c.clip_norm or 0.0, o.momentum, o.rho,
                    1 - o.rho, o.beta1, 1 - o.beta1, o.beta2, 1 - o.beta2, o.eps, o.weight_decay, lo, 0.99],
                   dtype=dtype)
    return ints, hp, hpt


def run_net(batch: Batch, perm_budget: int = PERM_BUDGET) -> LoopState:
    """Iterations ``0 .. T-1`` of a supported batch, updating ``batch.W`` in place. Minibatches: the
    data order is drawn ahead at most ``perm_budget`` permutation entries (whole epochs) at a time."""
    dtype = np.dtype(batch.config.dtype)
    N, T, n = batch.N, batch.T, batch.y.shape[0]
    theta, dims, wofs, bofs = _pack(batch.W, dtype)
    S1, S2 = np.zeros_like(theta), np.zeros_like(theta)
    X = np.ascontiguousarray(batch.X_aug[:, 1:])
    Xv = np.ascontiguousarray(batch.X_val_aug[:, 1:])
    Xt = np.ascontiguousarray(batch.X_test_aug[:, 1:])
    st = new_state(batch)
    limit = np.full(N, np.nan, dtype=dtype)
    log_row = np.full(T + 1, -1, dtype=np.int64)
    log_row[batch.steps] = np.arange(len(batch.steps))
    obj_row = np.full(T + 1, -1, dtype=np.int64)
    if not batch.full:
        obj_row[batch.obj_steps] = np.arange(len(batch.obj_steps))
    curves = np.full((4, len(batch.steps), N), np.nan)
    epoch_sum, epoch_n = np.zeros(N), np.zeros(N, dtype=np.int64)
    frozen_vals = np.full((N, 4), np.nan)
    final = np.full((N, 10), np.nan)
    ints, hp, hpt = _constants(batch, dtype)
    per_epoch = batch.per_epoch
    epochs = -(-T // per_epoch)
    step = epochs if batch.full else max(1, min(epochs, perm_budget // max(1, N * n)))
    rngs = None if batch.full else batch.order_streams()
    for e0 in range(0, epochs, step):
        e1 = min(epochs, e0 + step)
        if rngs is None:
            perms = np.zeros((N, 1, 1), dtype=np.int32)
        else:
            perms = np.empty((N, e1 - e0, n), dtype=np.int32)
            for k, r in enumerate(rngs):
                for e in range(e1 - e0):
                    perms[k, e] = r.permutation(n)
        ints[0], ints[1] = e0 * per_epoch, min(T, e1 * per_epoch)
        _run(X, batch.y, Xv, batch.y_val, Xt, batch.y_test, perms, e0, theta, S1, S2, batch.lr, dims, wofs, bofs, log_row,
             obj_row, st.objective, curves, st.frozen, st.diverged_step, limit, st.grad_first, st.grad_last,
             epoch_sum, epoch_n, frozen_vals, final, ints, hp, hpt)
    _unpack(theta, batch.W, wofs, bofs)
    for i, key in enumerate(("train_loss", "train_acc", "val_loss", "val_acc")):
        st.curves[key][:] = curves[i]
    st.limit = limit
    f = final.T
    st.final = Evaluation(f[0].astype(dtype), f[1].astype(dtype), f[2], f[3].astype(dtype), f[4], f[5].astype(dtype),
                          f[6], f[7] == 1, f[8], f[9])
    if st.frozen.all():     # the numpy loop stops at the step where the last network diverged
        st.done = int(np.nanmax(st.diverged_step))
        st.grad_last[:] = np.nan
        if st.done == 0:
            st.grad_first[:] = np.nan
    return st
