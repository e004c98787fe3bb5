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
epoch's mean); agrees with it to rounding (``tests/test_engine_fused_net.py``).

Layout of one network's parameters (a row of ``theta``): every layer's weights ``(fan_out, fan_in)``
row-major, layer after layer, then every layer's biases. Work arrays: samples on the last axis,
``(units, m)``; a layer's activations are overwritten by its deltas in the backward pass.
Imports numba: imported by ``fused.run_loop`` only.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .fused_layers import _backward, _eval_set, _final, _forward
from .fused_passes import _finish, _opt, _out_binary, _out_softmax, _sumsq
from .loop import Batch, Evaluation, LoopState, new_state
from .vmath import _JIT, _pow

OPT_CODES = {"sgd": 0, "momentum": 1, "rmsprop": 2, "adam": 3, "adamw": 4}
ACT_CODES = {"sigmoid": 0, "tanh": 1, "relu": 2}
PERM_BUDGET = 1 << 23     # permutation entries drawn ahead per call (int32: 32 MiB)


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
def _objective(th, ce, m, nW, l2, use_l2, cast):
    """(loss, objective) in the dtype from the summed cross-entropy ``ce`` of ``m`` samples:
    ``ce / m`` and ``ce / m + l2 / (2 m) sum(W^2)`` (biases free), as ``layers.loss_and_grads``."""
    cast[0] = ce / m
    loss = cast[0]
    if not use_l2:
        return loss, loss
    cast[0] = m + m
    coef = l2 / cast[0]
    cast[0] = _sumsq(th, 0, nW)
    return loss, loss + coef * cast[0]


@njit(**_JIT)
def _log_evals(th, net, X, y, Xv, yv, mmax, curves, row, k, full, cast):
    """The curves of a logged step measured before its update: validation loss and accuracy and,
    with minibatches, the whole training set's (full batch: from the step's own forward pass)."""
    dims, wofs, bofs, acts, aofs, act, work, iwork, tmp, one, zero = net
    for part, (Xe, ye) in enumerate(((X, y), (Xv, yv))):
        if ye.shape[0] > 0 and (part == 1 or not full):
            el, ea = _eval_set(th, dims, wofs, bofs, Xe, ye, mmax, acts, aofs, act, work, iwork, one, zero)
            cast[0] = el
            curves[2 * part, row, k] = cast[0]
            curves[2 * part + 1, row, k] = ea


@njit(**_JIT)
def _update(th, G, s1, s2, nW, opt, nesterov, lrk, scale, use_scale, hpt, ibc1, ibc2):
    """One optimizer step of one network (weights with AdamW's decay, then biases)."""
    c = (hpt[6], hpt[7], hpt[8], hpt[9], hpt[10], hpt[11], hpt[12], hpt[13], lrk * hpt[14], ibc1, ibc2)
    P = th.shape[0]
    _opt(th, G, s1, s2, 0, nW, opt, nesterov, lrk, scale, use_scale, c, opt == 4)
    _opt(th, G, s1, s2, nW, P, opt, nesterov, lrk, scale, use_scale, c, False)


@njit(**_JIT)
def _final_into(out, th, net, X, y, Xv, yv, Xt, yt, mmax, counts, nW, l2, use_l2, lo, hi, cast, fout):
    """``out`` ``(10,)``: the trained network's ``loop.Evaluation`` (train objective, loss,
    accuracy; validation and test loss and accuracy; single class, saturated and dead shares)."""
    dims, wofs, bofs, acts, aofs, act, work, iwork, tmp, one, zero = net
    _final(th, dims, wofs, bofs, X, y, mmax, acts, aofs, act, work, iwork, counts, lo, hi, one, zero, fout)
    tl, obj = _objective(th, fout[0], y.shape[0], nW, l2, use_l2, cast)
    out[0], out[1], out[2] = obj, tl, fout[1]
    for j, (Xe, ye) in enumerate(((Xv, yv), (Xt, yt))):
        if ye.shape[0] > 0:
            el, ea = _eval_set(th, dims, wofs, bofs, Xe, ye, mmax, acts, aofs, act, work, iwork, one, zero)
            cast[0] = el
            out[3 + 2 * j], out[4 + 2 * j] = cast[0], ea
    out[7], out[8], out[9] = fout[2], fout[3], fout[4]


@njit(**_JIT)
def _buffers(dims, n, nv, B, d, dtype_like):
    """Work arrays of one network: layer activations/deltas ``acts`` (offsets ``aofs``), ``tmp``,
    softmax rows ``work``/``iwork``, the minibatch ``Xb``/``yb``, the gradient ``G``; blocks of
    ``mmax`` samples."""
    L = dims.shape[0] - 1
    mmax = max(min(B, n), min(256, max(n, nv)))
    width = 0
    for l in range(1, L + 1):
        width = max(width, dims[l])
    aofs = np.zeros(L, dtype=np.int64)
    for l in range(1, L):
        aofs[l] = aofs[l - 1] + dims[l] * mmax
    acts = np.empty(aofs[L - 1] + dims[L] * mmax, dtype=dtype_like.dtype)
    return (mmax, width, aofs, acts, np.empty(width * mmax, dtype=dtype_like.dtype),
            np.empty((3, mmax), dtype=dtype_like.dtype), np.empty(mmax, dtype=np.int64),
            np.empty((B, d), dtype=dtype_like.dtype), np.empty(B, dtype=np.int64))


@njit(**_JIT)
def _run(X, y, Xv, yv, Xt, yt, perms, e0, theta, S1, S2, lr, dims, wofs, bofs, log_row, obj_row,
         objective, curves, frozen, diverged_step, limit, grad_first, grad_last, epoch_sum, epoch_n,
         frozen_vals, final, ints, hp, hpt):
    """Iterations ``it0 .. it1-1`` of every network of the chunk, one network after the other.

    ``X`` ``(n, d)``, ``y`` ``(n,)`` int64 (training), ``Xv``, ``yv`` (validation), ``Xt``, ``yt``
    (test); ``perms`` ``(N, epochs, n)`` the data order of epochs ``e0 ..`` (minibatches).
    ``theta``, ``S1``, ``S2`` ``(N, P)`` parameters and optimizer moments (updated in place).
    ``log_row`` ``(T + 1,)``: curve row of a logged step, else -1; ``obj_row`` ``(T + 1,)``: objective
    row written at the end of a step (minibatches: the epoch's), else -1. ``epoch_sum``/``epoch_n``
    ``(N,)`` carry an epoch over calls; ``frozen_vals`` ``(N, 4)``: objective, loss, accuracy and
    gradient norm of a network frozen in a full-batch run (its later steps repeat them: its weights
    no longer move). ``final`` ``(N, 10)``: after the last step, ``_final_into``'s evaluation.
    ``ints``: (it0, it1, T, activation, optimizer, nesterov, divergence on, clipping on, l2 on, B,
    per epoch). ``hp`` (float64): (beta1, beta2). ``hpt`` (dtype): (1, 0, l2, 1e-3, factor, clip,
    mu, rho, 1 - rho, b1, 1 - b1, b2, 1 - b2, eps, weight decay, saturation bounds lo and hi).
    """
    it0, it1, T, act, opt, nesterov = ints[0], ints[1], ints[2], ints[3], ints[4], ints[5] != 0
    has_div, has_clip, use_l2, B, per_epoch = ints[6] != 0, ints[7] != 0, ints[8] != 0, ints[9], ints[10]
    one, zero, l2, floor3, factor, clip = hpt[0], hpt[1], hpt[2], hpt[3], hpt[4], hpt[5]
    N, P = theta.shape
    nW = bofs[0]
    n, d = X.shape
    full = B >= n
    mmax, width, aofs, acts, tmp, work, iwork, Xb, yb = _buffers(dims, n, yv.shape[0], B, d, theta)
    net = (dims, wofs, bofs, acts, aofs, act, work, iwork, tmp, one, zero)
    G = np.zeros(P, dtype=theta.dtype)
    cast = np.empty(1, dtype=theta.dtype)
    counts = np.zeros(width * dims.shape[0], dtype=np.int64)
    fout = np.empty(5)
    K = dims[dims.shape[0] - 1]
    for k in range(N):
        th, s1, s2 = theta[k], S1[k], S2[k]
        for it in range(it0, it1):
            row = log_row[it]
            if row >= 0:
                _log_evals(th, net, X, y, Xv, yv, mmax, curves, row, k, full, cast)
            if full and frozen[k]:          # same weights, same data: the same numbers again
                objective[it, k] = frozen_vals[k, 0]
                if row >= 0:
                    curves[0, row, k], curves[1, row, k] = frozen_vals[k, 1], frozen_vals[k, 2]
                continue
            m = n
            if not full:
                e = it // per_epoch
                a0 = (it - e * per_epoch) * B
                m = min(B, n - a0)
                _gather(X, y, perms[k, e - e0], a0, m, Xb, yb)
            Xm, ym = (X, y) if full else (Xb[:m], yb[:m])
            Z = _forward(th, dims, wofs, bofs, Xm, m, acts, aofs, act, one, zero)
            if K == 1:
                ce, correct = _out_binary(Z, ym, m, one, zero)
            else:
                ce, correct = _out_softmax(Z, ym, m, work[0], work[1], work[2], iwork, one, zero)
            loss, obj = _objective(th, ce, m, nW, l2, use_l2, cast)
            if full:
                objective[it, k] = obj
                if row >= 0:
                    curves[0, row, k], curves[1, row, k] = loss, correct / m
            else:
                cast[0] = obj * m
                epoch_sum[k] += cast[0]
                epoch_n[k] += m
                if obj_row[it + 1] >= 0:
                    objective[obj_row[it + 1], k] = epoch_sum[k] / epoch_n[k]
                    epoch_sum[k], epoch_n[k] = 0.0, 0
            if it == 0 and has_div:
                limit[k] = factor * (floor3 if obj < floor3 else obj)
            newly = not frozen[k] and (not np.isfinite(obj) or (has_div and obj > limit[k]))
            if newly:
                diverged_step[k] = it
                frozen[k] = True
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
                    frozen_vals[k, 0], frozen_vals[k, 1], frozen_vals[k, 2], frozen_vals[k, 3] = \
                        obj, loss, correct / m, gnorm
                if has_clip:
                    s = clip / (gnorm if gnorm > zero else one)
                    scale = s if s < one else one
            if not frozen[k]:
                cast[0] = 1.0 - _pow(hp[0], it + 1)
                ibc1 = one / cast[0]
                cast[0] = 1.0 - _pow(hp[1], it + 1)
                _update(th, G, s1, s2, nW, opt, nesterov, lr[k], scale, has_clip, hpt, ibc1, one / cast[0])
        if it1 == T:
            if full and frozen[k]:
                grad_last[k] = frozen_vals[k, 3]
            _final_into(final[k], th, net, X, y, Xv, yv, Xt, yt, mmax, counts, nW, l2, use_l2, hpt[15], hpt[16],
                        cast, fout)


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
        _run(X, batch.y, Xv, batch.y_val, Xt, batch.y_test, perms, e0, theta, S1, S2, batch.lr, dims, wofs,
             bofs, log_row, obj_row, st.objective, curves, st.frozen, st.diverged_step, limit, st.grad_first,
             st.grad_last, epoch_sum, epoch_n, frozen_vals, final, ints, hp, hpt)
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
