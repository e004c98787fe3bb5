"""The training loop's contract, and the numpy reference loop.

``prepare`` turns one vectorised batch (initial weights, data, configuration, learning rates, order
seeds) into a :class:`Batch`; a loop (``numpy_loop`` here, ``fused.run_loop`` compiled) runs its
iterations ``0 .. T-1``, updating ``batch.W`` in place, and returns a :class:`LoopState`;
``train.finish`` evaluates the trained networks and computes the diagnostics. Both loops run the
same algorithm: same formulas, same divergence, freezing, clipping and logging rules, and the same
data order (network ``i``'s minibatches come from ``stream("order", order_seeds[i], root)``, one
permutation of the training set per epoch).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..seeding import stream
from .config import TrainConfig
from .layers import Arch, accuracy, add_ones_row, forward, l2_penalty, loss_and_grads, output_loss, predict
from .optim import Optimizer


def log_steps(total: int, *, every: int | None = None, points: int = 50, at=None) -> np.ndarray:
    """Sorted unique steps in ``[0, total]``: the steps ``at``, or every ``every``-th, or ``points``
    log-spaced; 0 and ``total`` always included."""
    if at is not None:
        s = [int(v) for v in at if v <= total]
    elif every is not None:
        s = np.arange(0, total + 1, every)
    else:
        s = np.round(np.geomspace(1, total, max(points - 1, 1))).astype(np.int64) if total >= 1 else []
    return np.unique(np.concatenate([[0, total], s]).astype(np.int64))


@dataclass
class Batch:
    """One vectorised batch of N networks, ready for a loop.

    ``W``: working parameters ``[(N, fan_out, fan_in + 1)]`` in the config's dtype (updated in place
    by the loop), ``W_start`` a copy of the initial ones. ``X_aug`` ``(n, d + 1)`` training inputs
    with a leading column of ones, ``y`` ``(n,)``; ``X_val_aug``/``y_val`` and ``X_test_aug``/``y_test``
    alike. ``lr`` ``(N,)`` in the dtype. ``T`` iterations of batches of ``B`` rows (``B = n``: full
    batch), ``per_epoch`` batches per epoch. ``steps`` ``(S,)`` logged steps, ``obj_steps`` ``(P,)``
    the steps of the objective's rows (every step for full batch, each epoch's end for minibatches).
    ``order_seeds`` and ``root``: the data order of each network (minibatches only).
    """

    arch: Arch
    config: TrainConfig
    W: list[np.ndarray]
    W_start: list[np.ndarray]
    X_aug: np.ndarray
    y: np.ndarray
    X_val_aug: np.ndarray
    y_val: np.ndarray
    X_test_aug: np.ndarray
    y_test: np.ndarray
    lr: np.ndarray
    T: int
    B: int
    per_epoch: int
    steps: np.ndarray
    obj_steps: np.ndarray
    order_seeds: Sequence[int] | None
    root: int

    @property
    def N(self) -> int:
        return self.W[0].shape[0]

    @property
    def full(self) -> bool:
        return self.B == self.y.shape[0]

    def order_streams(self) -> list[np.random.Generator]:
        """One fresh data-order stream per network (each loop draws ``permutation(n)`` per epoch)."""
        return [stream("order", s, self.root) for s in self.order_seeds]


@dataclass
class Evaluation:
    """The trained networks on each part of the data, each ``(N,)`` (NaN for an empty part):
    training objective (with the penalty), loss and accuracy; validation and test loss and
    accuracy; ``single_class`` (every training prediction is one class); ``saturated`` (share of the
    hidden units within 1e-2 of a sigmoid/tanh bound on >= 95% of the training samples) and ``dead``
    (share of relu units never active); NaN for the other activations."""

    train_obj: np.ndarray
    train_loss: np.ndarray
    train_acc: np.ndarray
    val_loss: np.ndarray
    val_acc: np.ndarray
    test_loss: np.ndarray
    test_acc: np.ndarray
    single_class: np.ndarray
    saturated: np.ndarray
    dead: np.ndarray


@dataclass
class LoopState:
    """What a loop leaves for ``train.finish``, for N networks.

    ``done``: the step where every network had diverged (the loop stopped there), else T.
    ``objective`` ``(P, N)`` and ``curves`` (name -> ``(S, N)``, ``train_loss, train_acc, val_loss,
    val_acc``): rows of steps before ``done`` filled (the rest is overwritten by ``finish``).
    ``frozen`` ``(N,)`` bool (diverged during the loop), ``diverged_step`` ``(N,)`` (NaN: never),
    ``limit`` ``(N,)`` the divergence limit (None without a divergence factor), ``grad_first`` and
    ``grad_last`` ``(N,)`` global gradient norms before clipping at steps 0 and T - 1 (NaN if the
    loop stopped before). ``final``: the trained networks' :class:`Evaluation` if the loop made it
    (the fused loops do, in the same compiled call), else None (``numpy_evaluation`` then makes it).
    """

    done: int
    objective: np.ndarray
    curves: dict[str, np.ndarray]
    frozen: np.ndarray
    diverged_step: np.ndarray
    limit: np.ndarray | None
    grad_first: np.ndarray
    grad_last: np.ndarray
    final: Evaluation | None = None


def budget(config: TrainConfig, n_train: int) -> tuple[int, int, int]:
    """``(T, B, per_epoch)``: parameter updates, rows per batch, batches per epoch."""
    B = n_train if config.batch_size is None else min(config.batch_size, n_train)
    per_epoch = math.ceil(n_train / B)
    return (config.iterations if config.iterations is not None else config.epochs * per_epoch), B, per_epoch


def prepare(W0: Sequence[np.ndarray], data, arch: Arch, config: TrainConfig, lr, order_seeds,
            root: int) -> Batch:
    """Validate shapes, copy the weights into the dtype, lay out the data, fix the budget and logs."""
    c = config
    dtype = np.dtype(c.dtype)
    N = W0[0].shape[0]
    W = [np.array(w, dtype=dtype, order="C", copy=True) for w in W0]
    expected = [(N, fo, fi + 1) for fi, fo in zip((arch.n_in, *arch.hidden), (*arch.hidden, arch.n_out))]
    if [w.shape for w in W] != expected:
        raise ValueError(f"parameter shapes {[w.shape for w in W]} do not match {arch}: {expected}")
    y = np.asarray(data.y_train, dtype=np.int64)
    n = y.shape[0]
    T, B, per_epoch = budget(c, n)
    if B < n and (order_seeds is None or len(order_seeds) != N):
        raise ValueError(f"minibatch training needs one order seed per network ({N})")
    if B == n:
        obj_steps = np.arange(T + 1)
    else:
        obj_steps = np.unique(np.append(np.arange(per_epoch, T + 1, per_epoch), T))
    return Batch(
        arch=arch, config=c, W=W, W_start=[w.copy() for w in W],
        X_aug=add_ones_row(np.asarray(data.X_train, dtype=dtype)), y=y,
        X_val_aug=add_ones_row(np.asarray(data.X_val, dtype=dtype)), y_val=np.asarray(data.y_val, dtype=np.int64),
        X_test_aug=add_ones_row(np.asarray(data.X_test, dtype=dtype)),
        y_test=np.asarray(data.y_test, dtype=np.int64),
        lr=np.broadcast_to(np.asarray(lr, dtype=dtype), (N,)).copy(), T=T, B=B, per_epoch=per_epoch,
        steps=log_steps(T, every=c.log_every, points=c.log_points, at=c.log_at), obj_steps=obj_steps,
        order_seeds=None if order_seeds is None else list(order_seeds), root=root)


def new_state(batch: Batch) -> LoopState:
    """A state before the first iteration: nothing logged, nothing diverged."""
    N, S = batch.N, len(batch.steps)
    return LoopState(
        done=batch.T, objective=np.full((len(batch.obj_steps), N), np.nan),
        curves={k: np.full((S, N), np.nan) for k in ("train_loss", "train_acc", "val_loss", "val_acc")},
        frozen=np.zeros(N, dtype=bool), diverged_step=np.full(N, np.nan),
        limit=None, grad_first=np.full(N, np.nan), grad_last=np.full(N, np.nan))


def evaluate(W, XT, y, act, normalize, per_network=False):
    """(loss (N,), acc (N,), logits) on one part of the data; NaN when the part is empty."""
    N = W[0].shape[0]
    if y.shape[0] == 0:
        nan = np.full(N, np.nan)
        return nan, nan, None
    logits, _ = forward(W, XT, act, normalize, per_network)
    return output_loss(logits, y), accuracy(logits, y), logits


def hidden_health(acts: list[np.ndarray], act: str) -> tuple[np.ndarray, np.ndarray]:
    """Saturated share (sigmoid/tanh) and dead share (relu) of all hidden units, ``(N,)`` each, from
    ``forward``'s layer inputs ``acts``."""
    hidden = [a[:, 1:, :] for a in acts[1:]]
    nan = np.full(acts[1].shape[0], np.nan)
    if act == "relu":
        dead = np.concatenate([(a <= 0).all(axis=2) for a in hidden], axis=1)
        return nan, dead.mean(axis=1)
    lo = 0.01 if act == "sigmoid" else -0.99
    sat = np.concatenate([((a < lo) | (a > 0.99)).mean(axis=2) >= 0.95 for a in hidden], axis=1)
    return sat.mean(axis=1), nan


def numpy_evaluation(batch: Batch) -> Evaluation:
    """The trained networks (``batch.W``) evaluated with numpy: one forward pass over each part."""
    c, leg, W = batch.config, batch.config.legacy, batch.W
    act, norm = batch.arch.activation, leg.normalize_hidden
    logits, acts = forward(W, batch.X_aug.T, act, norm, leg.any)
    loss = output_loss(logits, batch.y)
    obj = loss
    l2 = np.asarray(c.l2, dtype=W[0].dtype)
    if np.any(l2 != 0):     # as loss_and_grads forms it
        obj = loss + l2.reshape(-1) / (2 * logits.shape[2]) * l2_penalty(W, sum_wtw=leg.sum_wtw_regularizer)
    preds = predict(logits)
    sat, dead = hidden_health(acts, act)
    va_loss, va_acc, _ = evaluate(W, batch.X_val_aug.T, batch.y_val, act, norm, leg.any)
    te_loss, te_acc, _ = evaluate(W, batch.X_test_aug.T, batch.y_test, act, norm, leg.any)
    return Evaluation(obj, loss, accuracy(logits, batch.y), va_loss, va_acc, te_loss, te_acc,
                      (preds == preds[:, :1]).all(axis=1), sat, dead)


def _global_norm(grads: list[np.ndarray]) -> np.ndarray:
    return np.sqrt(sum(np.einsum("nij,nij->n", g, g) for g in grads))


def _legacy_clip(grads: list[np.ndarray], thr: float, typo: bool) -> None:
    """Per-matrix clipping as posted (``np.linalg.norm`` of each network's matrix)."""
    first, last = grads[0], grads[-1]
    for i in range(first.shape[0]):
        n_first = np.linalg.norm(first[i])
        if abs(n_first) > thr:
            first[i] = first[i] * thr / n_first
        if typo:
            n_last = np.linalg.norm(last[i])
            if abs(n_last) > thr:
                first[i] = first[i] * thr / n_last
        else:
            for g in grads[1:]:
                n = np.linalg.norm(g[i])
                if abs(n) > thr:
                    g[i] = g[i] * thr / n


def _minibatches(batch: Batch):
    """Yield ``(it, XbT, yb, m)`` for every iteration: the whole set, or each network's own rows."""
    XT, y, n = batch.X_aug.T, batch.y, batch.y.shape[0]
    if batch.full:
        for it in range(batch.T):
            yield it, XT, y, n
        return
    rngs, B = batch.order_streams(), batch.B
    for it in range(batch.T):
        b = it % batch.per_epoch
        if b == 0:
            perms = np.stack([r.permutation(n) for r in rngs])
        idx = perms[:, b * B:(b + 1) * B]
        yield it, batch.X_aug[idx].transpose(0, 2, 1), y[idx], idx.shape[1]


def numpy_loop(batch: Batch) -> LoopState:
    """The reference loop (numpy, every legacy quirk): iterations ``0 .. T-1`` of ``batch``."""
    c, leg, arch, W = batch.config, batch.config.legacy, batch.arch, batch.W
    act, norm, full = arch.activation, leg.normalize_hidden, batch.full
    st = new_state(batch)
    log_at = {int(s): k for k, s in enumerate(batch.steps)}
    XT, XT_val = batch.X_aug.T, batch.X_val_aug.T
    epoch_sum, epoch_n = np.zeros(batch.N), 0
    opt = Optimizer(c.optimizer, W, batch.lr)
    frozen = st.frozen
    for it, Xb, yb, m in _minibatches(batch):
        k = log_at.get(it)
        if k is not None:
            st.curves["val_loss"][k], st.curves["val_acc"][k], _ = evaluate(W, XT_val, batch.y_val, act, norm, leg.any)
            if not full:
                st.curves["train_loss"][k], st.curves["train_acc"][k], _ = evaluate(W, XT, batch.y, act, norm, leg.any)
        obj, grads, logits = loss_and_grads(W, Xb, yb, act, l2=c.l2, normalize_hidden=norm,
                                            sum_wtw=leg.sum_wtw_regularizer, per_network=leg.any)
        if full:
            st.objective[it] = obj
            if k is not None:
                st.curves["train_loss"][k] = output_loss(logits, yb)
                st.curves["train_acc"][k] = accuracy(logits, yb)
        else:
            epoch_sum += obj * m
            epoch_n += m
            if (it + 1) % batch.per_epoch == 0 or it + 1 == batch.T:
                st.objective[np.searchsorted(batch.obj_steps, it + 1)] = epoch_sum / epoch_n
                epoch_sum[:] = 0
                epoch_n = 0
        if it == 0 and c.divergence_factor is not None:
            st.limit = c.divergence_factor * np.maximum(obj, 1e-3)
        bad = ~np.isfinite(obj) & ~frozen
        if c.divergence_factor is not None:
            bad |= (obj > st.limit) & ~frozen
        if bad.any():
            st.diverged_step[bad] = it
            frozen |= bad
            if frozen.all():
                st.done = it
                break
        _clip_and_step(batch, st, opt, grads, it)
    return st


def _clip_and_step(batch: Batch, st: LoopState, opt: Optimizer, grads: list[np.ndarray], it: int) -> None:
    """Gradient norms (first/last step, clipping), clipping, the legacy clipping, one optimizer step."""
    c, leg = batch.config, batch.config.legacy
    if it == 0 or it == batch.T - 1 or c.clip_norm is not None:
        gnorm = _global_norm(grads)
        if it == 0:
            st.grad_first = gnorm
        if it == batch.T - 1:
            st.grad_last = gnorm
        if c.clip_norm is not None:
            scale = np.minimum(1.0, c.clip_norm / np.where(gnorm > 0, gnorm, 1.0))
            for g in grads:
                g *= scale.astype(g.dtype).reshape(-1, 1, 1)
    if leg.clip_threshold is not None:
        _legacy_clip(grads, leg.clip_threshold, leg.clip_typo)
    opt.step(batch.W, grads, st.frozen if st.frozen.any() else None)
