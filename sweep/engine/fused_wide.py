"""The fused kernel of the reference workload: one hidden layer, binary output, full batch.

The networks share their inputs, so their first layers form one "wide" matrix and a block of
networks goes through the hidden layer in one matrix product forward and one backward. Same
algorithm as the numpy loop (``loop.numpy_loop``), agreeing with it to rounding
(``tests/test_engine_fused.py``). Imports numba: imported by ``fused.run_loop`` only.

Design (measured on the project's machine, see ``shared/PERFORMANCE.md``):

* samples on the last axis, as in ``layers.py``: the first layer of a block of networks is one
  matrix product forward, ``Z = W0 @ XT`` with ``W0`` viewed as ``(N * H, d + 1)``, and one
  backward, ``dW0 = dZ @ X`` (``np.dot``, i.e. scipy's BLAS);
* the networks go through the hidden layer a block at a time, each product cut into pieces of at
  most ``R`` rows with ``R n (d + 1) <= 1e6`` (54 rows here): OpenBLAS then takes its small-matrix
  kernels (no packing), 20-30% faster on these thin products than its packed path (which one
  product of all N H rows takes as soon as N H > 54: that made N = 64 12% slower than N = 16 at
  H = 3, and one H = 256 network 18% slower). The block's work rows stay in cache in between;
* per network, one pass over its H rows of ``Z`` computes the activation in place and accumulates
  the output logits; one pass over the samples computes probability, loss, accuracy and the
  output delta; one pass over the rows again computes the output-layer gradient and overwrites
  the activations with the hidden deltas, ready for the backward product. Every inner loop runs
  over the samples, contiguous, so it vectorises whatever H and N are;
* ``exp``, ``expm1`` and ``log1p`` are written out (range reduction + polynomial in Estrin's
  scheme, no libm call), so these loops vectorise; they are within 1-2 ulp of numpy's. Row loops
  may use 512-bit vectors (``_wide_vectors``); reductions may reassociate (``fastmath`` reassoc +
  contract, row kernel only);
* per network, two short loops over its parameters: gradient finishing (penalty, times 1/m, norm
  for clipping and the first/last gradient norms), then the optimizer update with the clipping
  scale folded in; Adam multiplies by its bias corrections' reciprocals (its sqrt and division
  bound it);
* padding, all zeros: the inputs and first-layer weights get columns up to a multiple of 8 (BLAS
  is markedly faster so), the output-layer weights too, and the samples up to a multiple of 8 in
  64-byte aligned arrays (every row of the work array aligned for 512-bit loads, no remainder
  loops: 4-12% at H = 3). The parameter loops run over the padded rows (whole vectors; no scalar
  remainder with its sqrt and division: the Adam step 30% faster at H = 3): the padding's gradient
  is set to exactly 0 after each backward product, so every optimizer (penalty, weight decay,
  clipping included) keeps the padding weights and moments exactly 0; the padding samples'
  activations and deltas are set to exactly 0 by the row passes; norms and penalties sum over the
  real columns only. So the padding changes no sum;
* the logged curves (train and validation loss and accuracy) are computed inside the loop at the
  logged steps, from the same forward pass; the final diagnostics are left to numpy (``train.py``).

Where the time goes (one thread, float64, n = 569, d = 30, Adam; measured by leaving each phase
out of the loop): H = 256, one network, ~370 us per iteration: the two matrix products ~58% (at
75-80 GFLOP/s in <= 54-row pieces; one 256-row product ran at ~60), the sigmoid row pass ~29% (the
written-out exp and the division, whose throughput bounds the pass), the backward row pass ~7%,
Adam ~6%. H = 3, 64 networks, ~5.4 us per network-iteration: the two products ~2.4 us (45%), the
sigmoid pass ~1.2 us (22%), the output pass (exp, log1p, two divisions per sample) ~1.1 us
(20%), the backward pass ~0.25 us and gradient finishing + Adam ~0.25 us. The elementwise passes
are bound by 512-bit arithmetic throughput and the divider, not by memory: sharing one division
between two sigmoids, or Newton reciprocals instead of divisions, did not make them faster.

Bit-for-bit: the same inputs give the same bits, run after run and process after process
(no threads in the kernel; BLAS sums in a fixed order); a network's result does not depend on its
neighbours in the batch beyond what BLAS does with the matrix sizes (to rounding).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .loop import Batch, LoopState
from .vmath import _FAST, _JIT, _pow, vexp_neg, vexpm1_neg, vlog1p_unit, wide_vectors

OPT_CODES = {"sgd": 0, "momentum": 1, "rmsprop": 2, "adam": 3, "adamw": 4}
ACT_CODES = {"sigmoid": 0, "tanh": 1, "relu": 2}


# ------------------------------------------------------------------------------------------
# The row kernel: one network's share of the forward and backward passes.
# ------------------------------------------------------------------------------------------
@njit(fastmath=_FAST, **_JIT)
def _hidden_forward(Z, W1, k, act, lg, n, one, zero):
    """Activate network ``k``'s rows ``Z`` (its pre-activations, ``(H, n8)``) in place and set
    ``lg`` (n8,) to its output logits ``b + sum_h w_h a_h``. The loops run over all ``n8``
    columns (a multiple of 8: no remainder loop); the padding samples' activations are then set
    to 0 (their pre-activation ``W0 @ 0`` is NaN for a non-finite weight)."""
    wide_vectors()
    H = Z.shape[0]
    n8 = lg.shape[0]
    b = W1[k, 0]
    for i in range(n8):
        lg[i] = b
    for h in range(H):
        zr = Z[h]
        w = W1[k, 1 + h]
        if act == 0:        # sigmoid, as 1 / (1 + e) or e / (1 + e) with e = exp(-|z|)
            for i in range(n8):
                z = zr[i]
                e = vexp_neg(-abs(z))
                a = (one if z >= zero else e) / (one + e)
                zr[i] = a
                lg[i] += w * a
        elif act == 1:      # tanh(|x|) = -expm1(-2|x|) / (2 + expm1(-2|x|))
            for i in range(n8):
                z = zr[i]
                em = vexpm1_neg(-(abs(z) + abs(z)))
                t = -em / ((one + one) + em)
                a = t if z >= zero else -t
                zr[i] = a
                lg[i] += w * a
        else:               # relu, NaN kept (np.maximum)
            for i in range(n8):
                z = zr[i]
                a = zero if z < zero else z
                zr[i] = a
                lg[i] += w * a
        for i in range(n, n8):
            zr[i] = zero


@njit(fastmath=_FAST, **_JIT)
def _output(lg, y, D, one, zero):
    """Binary output: returns (summed cross-entropy as float64, number correct) and sets
    ``D = sigmoid(logit) - y``, the gradient of the summed loss w.r.t. the logits, over the ``n``
    real samples (``D``'s padding stays 0)."""
    wide_vectors()
    n = y.shape[0]
    loss = 0.0
    correct = 0
    for i in range(n):
        z = lg[i]
        yi = y[i]
        e = vexp_neg(-abs(z))
        D[i] = (one if z >= zero else e) / (one + e) - yi
        u = -z if yi != zero else z             # softplus(u) = max(u, 0) + log1p(exp(-|u|))
        loss += np.float64((zero if u < zero else u) + vlog1p_unit(e))
        correct += (z > zero) == (yi != zero)
    return loss, correct


@njit(fastmath=_FAST, **_JIT)
def _hidden_backward(Z, W1, G1, k, act, D, n, one, zero):
    """Network ``k``'s output-layer gradient into ``G1[k]`` (summed over samples) and its hidden
    deltas written over its activations ``Z`` (``(H, n8)``): ``(w d) a (1 - a)``,
    ``(w d)(1 - a^2)``, ``(w d)[a > 0]`` as ``layers.backward`` orders them. Over all ``n8``
    columns: ``D`` and the activations are 0 in the padding, the deltas are set to 0 there after
    each row (``w d`` would be NaN for ``w = inf``)."""
    wide_vectors()
    H = Z.shape[0]
    n8 = D.shape[0]
    s = zero
    for i in range(n8):
        s += D[i]
    G1[k, 0] = s
    for h in range(H):
        ar = Z[h]
        w = W1[k, 1 + h]
        s = zero
        if act == 0:
            for i in range(n8):
                a = ar[i]
                d = D[i]
                s += d * a
                ar[i] = ((w * d) * a) * (one - a)
        elif act == 1:
            for i in range(n8):
                a = ar[i]
                d = D[i]
                s += d * a
                ar[i] = (w * d) * (one - a * a)
        else:
            for i in range(n8):
                a = ar[i]
                d = D[i]
                s += d * a
                ar[i] = (w * d) * (one if a > zero else zero)
        G1[k, 1 + h] = s
        for i in range(n, n8):
            ar[i] = zero


@njit(fastmath=_FAST, **_JIT)
def _sumsq(M, r0, r1, c0, c1):
    """Sum of squares (float64) of ``M[r0:r1, c0:c1]``."""
    wide_vectors()
    s = 0.0
    for r in range(r0, r1):
        row = M[r]
        for c in range(c0, c1):
            v = np.float64(row[c])
            s += v * v
    return s


# ------------------------------------------------------------------------------------------
# Gradient finishing and the optimizer step, per network (numpy's formulas, no fast-math).
# ------------------------------------------------------------------------------------------
@njit(**_JIT)
def _finish_grads(W, G, r0, r1, cols, l2, inv_m, use_l2):
    """``G = (G + l2 W) / m`` on ``[r0:r1, :cols]``, the bias column 0 unpenalised (times
    ``inv_m = 1 / m``: divisions are what bounds these loops)."""
    wide_vectors()
    for r in range(r0, r1):
        for c in range(cols):
            g = G[r, c]
            if use_l2 and c > 0:
                g = g + l2 * W[r, c]
            G[r, c] = g * inv_m


@njit(**_JIT)
def _opt_rows(W, G, S1, S2, r0, r1, cols, opt, nesterov, lr, scale, use_scale, c):
    """One optimizer step on ``[r0:r1, :cols]`` of one layer (``optim.Optimizer.step``'s formulas).

    ``c``: ``(mu, rho, 1 - rho, b1, 1 - b1, b2, 1 - b2, eps, lr wd, 1 / (1 - b1^t), 1 / (1 - b2^t))``
    typed. Adam's bias corrections multiply by their reciprocals (one division per parameter
    instead of three; within an ulp of the divisions)."""
    wide_vectors()
    mu, rho, omr, b1, omb1, b2, omb2, eps, lrwd, ibc1, ibc2 = c
    for r in range(r0, r1):
        if opt == 0:
            for j in range(cols):
                g = G[r, j] * scale if use_scale else G[r, j]
                W[r, j] = W[r, j] - lr * g
        elif opt == 1:
            for j in range(cols):
                g = G[r, j] * scale if use_scale else G[r, j]
                v = mu * S1[r, j] + g
                S1[r, j] = v
                upd = lr * (g + mu * v) if nesterov else lr * v
                W[r, j] = W[r, j] - upd
        elif opt == 2:
            for j in range(cols):
                g = G[r, j] * scale if use_scale else G[r, j]
                s = rho * S1[r, j] + omr * (g * g)
                S1[r, j] = s
                W[r, j] = W[r, j] - (lr * g) / (np.sqrt(s) + eps)
        else:
            for j in range(cols):
                g = G[r, j] * scale if use_scale else G[r, j]
                m = b1 * S1[r, j] + omb1 * g
                v = b2 * S2[r, j] + omb2 * (g * g)
                S1[r, j] = m
                S2[r, j] = v
                upd = (lr * (m * ibc1)) / (np.sqrt(v * ibc2) + eps)
                w = W[r, j]
                if opt == 4 and j > 0:
                    upd = upd + lrwd * w
                W[r, j] = w - upd


# ------------------------------------------------------------------------------------------
# The loop.
# ------------------------------------------------------------------------------------------
@njit(**_JIT)
def _aligned_zeros(rows, cols, like):
    """A zeroed C-contiguous ``(rows, cols)`` array of ``like``'s dtype starting on a 64-byte
    boundary (numba aligns to 32 only), so that with ``cols`` a multiple of 8 every row is
    aligned for 512-bit loads."""
    size = rows * cols
    buf = np.zeros(size + 64 // like.itemsize, dtype=like.dtype)
    off = ((-buf.ctypes.data) % 64) // like.itemsize
    return buf[off:off + size].reshape((rows, cols))


@njit(**_JIT)
def _dot_rows(A, a0, B, C, c0, rows, R):
    """``C[c0:c0+rows] = A[a0:a0+rows] @ B`` as products of at most ``R`` rows each (near-equal
    pieces): OpenBLAS's small-matrix kernels (no packing; taken for M N K <= 1e6) run these thin
    products 20-30% faster than the packed path (measured, 48-54-row pieces of a 256 x 32 x 576
    product: 75-83 GFLOP/s against 63 forward, 67-68 against 56 backward)."""
    pieces = (rows + R - 1) // R
    step = (rows + pieces - 1) // pieces
    for p in range(0, rows, step):
        q = min(p + step, rows)
        np.dot(A[a0 + p:a0 + q], B, C[c0 + p:c0 + q])


@njit(**_JIT)
def _eval_into(W0f, W1, XT, y, Z, lg, D, act, H, R, one, zero, loss_out, acc_out, cast):
    """Mean cross-entropy (rounded to the dtype) and accuracy of every network on (XT, y);
    ``Z``: work rows for a block of networks (see ``_loop``)."""
    wide_vectors()
    N = W1.shape[0]
    per = Z.shape[0] // H
    n = y.shape[0]
    for k0 in range(0, N, per):
        k1 = min(k0 + per, N)
        _dot_rows(W0f, k0 * H, XT, Z, 0, (k1 - k0) * H, R)
        for k in range(k0, k1):
            _hidden_forward(Z[(k - k0) * H:(k - k0 + 1) * H], W1, k, act, lg, n, one, zero)
            loss, correct = _output(lg, y, D, one, zero)
            cast[0] = loss / n
            loss_out[k] = cast[0]
            acc_out[k] = correct / n


@njit(**_JIT)
def _loop(XT, X, y, XvT, yv, W0f, W1, S1a, S1b, S2a, S2b, lr, frozen, diverged_step, limit,
          grad_first, grad_last, objective, log_row, curves, ints, hp, hpt):
    """Iterations ``0 .. T-1`` of ``train._train_batch`` for a supported batch. Updates the
    weights and moments in place, fills ``objective`` rows, ``curves[:, row]`` at logged steps,
    ``frozen``/``diverged_step``/``limit``/``grad_first``/``grad_last``; returns the step where
    every network had diverged (then stops, like the numpy loop), or T.

    ``ints``: (T, activation, optimizer, nesterov, divergence on, clipping on, l2 on, d + 1, rows
    per matrix product, H).
    ``W0f`` and the inputs may carry zero columns past ``d + 1`` (padding for BLAS); they stay 0.
    ``hp`` (float64): (divergence factor, clip norm, beta1, beta2).
    ``hpt`` (dtype): (1, 0, l2, m, l2/(2m), 1e-3, factor, clip, mu, rho, 1-rho, b1, 1-b1, b2,
    1-b2, eps, wd)."""
    wide_vectors()
    T, act, opt, nesterov, has_div, has_clip, use_l2 = ints[0], ints[1], ints[2], ints[3] != 0, \
        ints[4] != 0, ints[5] != 0, ints[6] != 0
    d1, R, H = ints[7], ints[8], ints[9]
    dp = W0f.shape[1]
    H1p = W1.shape[1]
    one, zero, l2, m_t, coef, floor3, factor, clip = hpt[0], hpt[1], hpt[2], hpt[3], hpt[4], hpt[5], \
        hpt[6], hpt[7]
    mu, rho, omr, b1, omb1, b2, omb2, eps, wd = hpt[8], hpt[9], hpt[10], hpt[11], hpt[12], hpt[13], \
        hpt[14], hpt[15], hpt[16]
    N = W1.shape[0]
    H1 = H + 1
    n = y.shape[0]
    nv = yv.shape[0]
    inv_m = one / m_t
    n8, nv8 = XT.shape[1], XvT.shape[1]
    # Networks go through the hidden layer a block at a time: products of at most R rows (see
    # _dot_rows), and the block's work rows stay in the core's caches from the forward product
    # to the backward one.
    per = max(1, min(N, R // H))
    Z = _aligned_zeros(per * H, n8, W0f)
    Zv = _aligned_zeros(per * H, nv8, W0f)
    G0 = np.zeros_like(W0f)
    G1 = np.zeros_like(W1)      # its padding columns stay 0
    lg = _aligned_zeros(1, n8, W0f)[0]
    D = _aligned_zeros(1, n8, W0f)[0]
    lgv = _aligned_zeros(1, nv8, W0f)[0]
    Dv = _aligned_zeros(1, nv8, W0f)[0]
    ce = np.empty(N)
    correct = np.empty(N, dtype=np.int64)
    cast = np.empty(1, dtype=W0f.dtype)
    vl = np.empty(N)
    va = np.empty(N)
    for it in range(T):
        row = log_row[it]
        if row >= 0 and nv > 0:
            _eval_into(W0f, W1, XvT, yv, Zv, lgv, Dv, act, H, R, one, zero, vl, va, cast)
            for k in range(N):
                curves[2, row, k] = vl[k]
                curves[3, row, k] = va[k]
        # forward + backward through the hidden layer, every network, a block at a time
        for k0 in range(0, N, per):
            k1 = min(k0 + per, N)
            _dot_rows(W0f, k0 * H, XT, Z, 0, (k1 - k0) * H, R)
            for k in range(k0, k1):
                Zk = Z[(k - k0) * H:(k - k0 + 1) * H]
                _hidden_forward(Zk, W1, k, act, lg, n, one, zero)
                ce[k], correct[k] = _output(lg, y, D, one, zero)
                _hidden_backward(Zk, W1, G1, k, act, D, n, one, zero)
            _dot_rows(Z, 0, X, G0, k0 * H, (k1 - k0) * H, R)
        for r in range(N * H):  # the padding columns' gradient (0 * NaN is NaN) must be 0
            for j in range(d1, dp):
                G0[r, j] = zero
        # objective, curves, divergence
        all_frozen = True
        for k in range(N):
            cast[0] = ce[k] / n
            loss = cast[0]
            obj = loss
            if use_l2:
                cast[0] = _sumsq(W0f, k * H, (k + 1) * H, 1, d1) + _sumsq(W1, k, k + 1, 1, H1)
                obj = loss + coef * cast[0]
            objective[it, k] = obj
            if row >= 0:
                curves[0, row, k] = loss
                curves[1, row, k] = correct[k] / n
            if it == 0 and has_div:
                limit[k] = factor * (floor3 if obj < floor3 else obj)
            if not frozen[k]:
                if not np.isfinite(obj) or (has_div and obj > limit[k]):
                    diverged_step[k] = it
                    frozen[k] = True
            if not frozen[k]:
                all_frozen = False
        if all_frozen:
            return it
        # gradients: penalty, mean, norm, clipping; optimizer step
        need_norm = has_clip or it == 0 or it == T - 1
        t = it + 1
        cast[0] = 1.0 - _pow(hp[2], t)
        ibc1 = one / cast[0]
        cast[0] = 1.0 - _pow(hp[3], t)
        ibc2 = one / cast[0]
        for k in range(N):
            # over the padded rows (whole vectors); the padding stays exactly 0 (module notes)
            _finish_grads(W0f, G0, k * H, (k + 1) * H, dp, l2, inv_m, use_l2)
            _finish_grads(W1, G1, k, k + 1, H1p, l2, inv_m, use_l2)
            scale = one
            if need_norm:
                cast[0] = np.sqrt(_sumsq(G0, k * H, (k + 1) * H, 0, d1) + _sumsq(G1, k, k + 1, 0, H1))
                gnorm = cast[0]
                if it == 0:
                    grad_first[k] = gnorm
                if it == T - 1:
                    grad_last[k] = gnorm
                if has_clip:
                    s = clip / (gnorm if gnorm > zero else one)
                    scale = s if s < one else one
            if frozen[k]:
                continue
            lrk = lr[k]
            c = (mu, rho, omr, b1, omb1, b2, omb2, eps, lrk * wd, ibc1, ibc2)
            _opt_rows(W0f, G0, S1a, S2a, k * H, (k + 1) * H, dp, opt, nesterov, lrk, scale, has_clip, c)
            _opt_rows(W1, G1, S1b, S2b, k, k + 1, H1p, opt, nesterov, lrk, scale, has_clip, c)
    return T


def _padded(A: np.ndarray, rows: int, cols: int, dtype) -> np.ndarray:
    """``A`` (r, c) as a C-contiguous ``(rows, cols)`` array of ``dtype`` starting on a 64-byte
    boundary, zeros past row r and column c."""
    dtype = np.dtype(dtype)
    size = rows * cols
    buf = np.zeros(size + 64 // dtype.itemsize, dtype=dtype)
    off = (-buf.ctypes.data) % 64 // dtype.itemsize
    out = buf[off:off + size].reshape(rows, cols)
    out[:A.shape[0], :A.shape[1]] = A
    return out


def run_wide(batch: Batch) -> LoopState:
    """Iterations ``0 .. T-1`` of a supported batch (``fused.supported``; one hidden layer, binary
    output, full batch), updating ``batch.W`` in place."""
    c, o, arch, T, steps = batch.config, batch.config.optimizer, batch.arch, batch.T, batch.steps
    X_aug, y, X_val_aug, y_val = batch.X_aug, batch.y, batch.X_val_aug, batch.y_val
    dtype = np.dtype(c.dtype)
    W0, W1 = batch.W
    N, H, d1 = W0.shape
    n = X_aug.shape[0]
    # BLAS runs markedly faster when the inner dimension is a multiple of 8 (measured: the backward
    # product 25-35% faster at d + 1 = 32 than at 31): pad inputs and first-layer weights with zero
    # columns; the loop never updates the padding, so it stays exactly 0 and changes no sum.
    # The samples are padded too, to a multiple of 8 with zero rows, so that every row of the
    # ``(N H, n8)`` work array starts on a 64-byte boundary and the row loops have no remainder;
    # the kernel keeps the padding samples' activations and deltas exactly 0.
    dp = -(-d1 // 8) * 8
    n8, nv8 = -(-n // 8) * 8, -(-X_val_aug.shape[0] // 8) * 8
    W0f = _padded(W0.reshape(N * H, d1), N * H, dp, dtype)
    H1p = -(-(H + 1) // 8) * 8
    W1f = _padded(W1.reshape(N, H + 1), N, H1p, dtype)
    X = _padded(X_aug, n8, dp, dtype)
    XT = _padded(X_aug.T, dp, n8, dtype)
    XvT = _padded(X_val_aug.T, dp, nv8, dtype)
    yf = np.ascontiguousarray(y, dtype=dtype)
    yvf = np.ascontiguousarray(y_val, dtype=dtype)
    slots = {"sgd": 0, "momentum": 1, "rmsprop": 1, "adam": 2, "adamw": 2}[o.name]
    S1a, S2a = (np.zeros_like(W0f) if slots > i else np.zeros((0, dp), dtype) for i in (0, 1))
    S1b, S2b = (np.zeros_like(W1f) if slots > i else np.zeros((0, H1p), dtype) for i in (0, 1))
    frozen = np.zeros(N, dtype=bool)
    diverged_step = np.full(N, np.nan)
    limit = np.full(N, np.nan, dtype=dtype)
    grad_first = np.full(N, np.nan)
    grad_last = np.full(N, np.nan)
    objective = np.full((T + 1, N), np.nan)
    log_row = np.full(T + 1, -1, dtype=np.int64)
    log_row[np.asarray(steps, dtype=np.int64)] = np.arange(len(steps))
    curves = np.full((4, len(steps), N), np.nan)
    has_div = c.divergence_factor is not None
    has_clip = c.clip_norm is not None
    l2 = dtype.type(c.l2)
    opt = OPT_CODES[o.name]
    if o.name == "adamw" and not o.weight_decay:
        opt = OPT_CODES["adam"]          # as Optimizer.step: no decay term at all
    # Rows per matrix product: OpenBLAS's small-matrix kernels take M N K <= 1e6 (see _dot_rows);
    # when that leaves fewer than 8 rows (large data), one product per block of 64 rows instead.
    R = 1_000_000 // (n8 * dp)
    if R < 8:
        R = 64
    ints = np.array([T, ACT_CODES[arch.activation], opt, int(o.nesterov), int(has_div),
                     int(has_clip), int(l2 != 0), d1, R, H], dtype=np.int64)
    hp = np.array([c.divergence_factor or 0.0, c.clip_norm or 0.0, o.beta1, o.beta2], dtype=np.float64)
    # Typed constants exactly as numpy forms them: Python floats meet arrays of the dtype.
    hpt = np.array([1, 0, c.l2, n, 0, 1e-3, c.divergence_factor or 0.0, c.clip_norm or 0.0,
                    o.momentum, o.rho, 1 - o.rho, o.beta1, 1 - o.beta1, o.beta2, 1 - o.beta2, o.eps,
                    o.weight_decay], dtype=dtype)
    hpt[4] = (np.asarray(l2, dtype=dtype).reshape(-1) / (2 * n))[0]     # l2 / (2 m) in the dtype
    lr = np.ascontiguousarray(batch.lr)
    done = _loop(XT, X, yf, XvT, yvf, W0f, W1f, S1a, S1b, S2a, S2b, lr, frozen, diverged_step, limit,
                 grad_first, grad_last, objective, log_row, curves, ints, hp, hpt)
    W0[...] = W0f[:, :d1].reshape(N, H, d1)
    W1[...] = W1f[:, :H + 1].reshape(N, 1, H + 1)
    names = ("train_loss", "train_acc", "val_loss", "val_acc")
    return LoopState(int(done), objective, {k: curves[i] for i, k in enumerate(names)}, frozen, diverged_step,
                     limit, grad_first, grad_last)
