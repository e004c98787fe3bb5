"""The training loop: N networks, one vectorised pass per step, with curves and diagnostics.

``train`` takes initial parameters ``W[l]`` of shape ``(N, fan_out, fan_in + 1)`` (see
``sweep.engine.init``), one data split shared by all N networks, a ``TrainConfig`` shared by all,
and per-network learning rates and data-order seeds. It never raises on a diverging network: the
network is frozen where it diverged and recorded as diverged.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..seeding import stream
from .layers import Arch, accuracy, add_ones_row, forward, loss_and_grads, output_loss, predict
from .optim import OptimConfig, Optimizer


@dataclass(frozen=True)
class Legacy:
    """The posted code's quirks, each a separate switch (all off = a correct network).

    1. ``compounding_bias_correction``: Adam's bias correction written back into the moments,
       skipped at the first step and using ``i`` instead of ``i + 1``.
    2. ``update_times_grad``: the Adam step multiplied by the gradient a second time.
    3. ``normalize_hidden``: per-sample L2 normalisation of the hidden pre-activations, whose
       gradient the backward pass ignores.
    4. ``clip_typo``: with per-matrix clipping at ``clip_threshold``, the first layer's gradient is
       rescaled by the LAST layer's norm and the last layer is never clipped. Off (with a threshold):
       each matrix clipped by its own norm.
    5. ``sum_wtw_regularizer``: the reported cost's regulariser is ``sum(WᵀW)``, not ``sum(W**2)``.
       Only the cost changes (the gradient uses ``l2 * W`` either way), and only when ``l2 > 0``.
    6. ``posted_init``: the bias column inside the weight matrices, initialised with them by Xavier
       scaled with fan-in + fan-out including the bias (init scheme ``posted``).
    """

    compounding_bias_correction: bool = False
    update_times_grad: bool = False
    normalize_hidden: bool = False
    clip_typo: bool = False
    sum_wtw_regularizer: bool = False
    posted_init: bool = False
    clip_threshold: float | None = None

    SWITCHES = ("compounding_bias_correction", "update_times_grad", "normalize_hidden", "clip_typo",
                "sum_wtw_regularizer", "posted_init")

    def __post_init__(self) -> None:
        if self.clip_typo and self.clip_threshold is None:
            raise ValueError("legacy clip_typo needs clip_threshold (the posted code uses 4.5)")
        if self.clip_threshold is not None and not self.clip_threshold > 0:
            raise ValueError(f"clip_threshold must be > 0, got {self.clip_threshold!r}")

    @classmethod
    def posted(cls, **off: bool) -> "Legacy":
        """Every quirk on, per-matrix clipping at 4.5, as posted; keyword ``name=False`` turns one off."""
        kw = {name: True for name in cls.SWITCHES}
        kw.update(off)
        return cls(clip_threshold=4.5, **kw)

    @property
    def any(self) -> bool:
        return any(getattr(self, s) for s in self.SWITCHES) or self.clip_threshold is not None


@dataclass(frozen=True)
class TrainConfig:
    """Everything but the learning rate and the seeds, shared by the N networks of one call.

    Budget: ``iterations`` (parameter updates) or ``epochs`` (passes over the training set), not
    both; neither means 1000 iterations. ``batch_size=None`` is full batch. ``l2`` adds ``l2 / (2 m) * sum(W**2)`` (biases free).
    ``clip_norm`` rescales each network's gradient to at most that global L2 norm. Curves are
    logged at ``log_points`` log-spaced steps, or every ``log_every`` steps; step 0 (untrained) and
    the last step always. A run has stagnated from the first iteration after which its training
    objective stays within ``stagnation_tol`` (relative to its final value) up to the end, if that
    stretch covers at least a tenth of the run. A run has diverged when its training objective or
    weights become non-finite, or the objective exceeds ``divergence_factor`` times its untrained
    value (a loss that blew up: with a stable loss, huge weights give a huge but finite loss).
    """

    optimizer: OptimConfig = field(default_factory=OptimConfig)
    iterations: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    l2: float = 0.0
    clip_norm: float | None = None
    log_every: int | None = None
    log_points: int = 50
    stagnation_tol: float = 1e-6
    divergence_factor: float | None = 100.0
    dtype: str = "float64"
    legacy: Legacy = field(default_factory=Legacy)

    def __post_init__(self) -> None:
        if self.iterations is not None and self.epochs is not None:
            raise ValueError("give exactly one of iterations or epochs, not both")
        if self.iterations is None and self.epochs is None:
            object.__setattr__(self, "iterations", 1000)
        budget = self.iterations if self.iterations is not None else self.epochs
        if not isinstance(budget, int) or budget < 1:
            raise ValueError(f"iterations/epochs must be an integer >= 1, got {budget!r}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 or None (full batch), got {self.batch_size!r}")
        if self.l2 < 0 or (self.clip_norm is not None and self.clip_norm <= 0):
            raise ValueError("l2 must be >= 0 and clip_norm > 0 (or None)")
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")
        if self.divergence_factor is not None and not self.divergence_factor > 1:
            raise ValueError(f"divergence_factor must be > 1 (or None), got {self.divergence_factor!r}")
        if self.log_every is not None and self.log_every < 1:
            raise ValueError("log_every must be >= 1")
        leg = self.legacy
        if leg.compounding_bias_correction != self.optimizer.compounding_bias_correction or \
                leg.update_times_grad != self.optimizer.update_times_grad:
            object.__setattr__(self, "optimizer", _with_legacy(self.optimizer, leg))


def _with_legacy(opt: OptimConfig, leg: Legacy) -> OptimConfig:
    from dataclasses import replace
    return replace(opt, compounding_bias_correction=leg.compounding_bias_correction,
                   update_times_grad=leg.update_times_grad)


class SplitLike(Protocol):
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int


@dataclass
class TrainResult:
    """What one call returns, for N networks.

    ``params``: final ``[W_l]``, ``(N, fan_out, fan_in + 1)``. ``steps``: ``(S,)`` logged steps
    (0 = untrained). ``curves``: ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, each
    ``(S, N)`` (cross-entropy without penalty). ``objective``: ``(P, N)`` training objective (with
    the penalty, as the posted code's cost) at ``objective_steps`` ``(P,)``: every step for full
    batch, each epoch's mean for minibatches. ``diagnostics``: name -> ``(N,)`` (see ``train``).
    """

    params: list[np.ndarray]
    steps: np.ndarray
    curves: dict[str, np.ndarray]
    objective: np.ndarray
    objective_steps: np.ndarray
    diagnostics: dict[str, np.ndarray]


def log_steps(total: int, *, every: int | None = None, points: int = 50) -> np.ndarray:
    """Sorted unique steps in ``[0, total]``: every ``every``-th, or ``points`` log-spaced; 0 and
    ``total`` always included."""
    if every is not None:
        s = np.arange(0, total + 1, every)
    else:
        s = np.round(np.geomspace(1, total, max(points - 1, 1))).astype(np.int64) if total >= 1 else []
    return np.unique(np.concatenate([[0, total], s]).astype(np.int64))


def stagnation_step(objective: np.ndarray, steps: np.ndarray, tol: float) -> np.ndarray:
    """First step after which each column of ``objective`` ``(P, N)`` stays within
    ``tol * |final|`` up to the end, ``(N,)`` float (NaN: never, or the stagnant stretch is shorter
    than a tenth of the run)."""
    P = objective.shape[0]
    rev = objective[::-1]
    with np.errstate(invalid="ignore"):   # inf - inf in diverged runs: NaN, never "stagnant"
        span = (np.maximum.accumulate(rev, axis=0) - np.minimum.accumulate(rev, axis=0))[::-1]
    thr = tol * np.maximum(np.abs(objective[-1]), 1e-12)
    ok = span <= thr
    first = np.where(ok.any(axis=0), ok.argmax(axis=0), P)
    min_tail = max(2, math.ceil(0.1 * P))
    good = (P - first) >= min_tail
    return np.where(good, steps[np.minimum(first, P - 1)].astype(float), np.nan)


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


def _evaluate(W, XT, y, act, normalize, per_network=False):
    """(loss (N,), acc (N,), logits) on one part of the data; NaN when the part is empty."""
    N = W[0].shape[0]
    if y.shape[0] == 0:
        nan = np.full(N, np.nan)
        return nan, nan, None
    logits, _ = forward(W, XT, act, normalize, per_network)
    return output_loss(logits, y), accuracy(logits, y), logits


def _hidden_health(W, XT, act, normalize, per_network=False) -> tuple[np.ndarray, np.ndarray]:
    """Saturated share (sigmoid/tanh) and dead share (relu) of all hidden units, ``(N,)`` each."""
    _, acts = forward(W, XT, act, normalize, per_network)
    hidden = [a[:, 1:, :] for a in acts[1:]]
    N = W[0].shape[0]
    nan = np.full(N, np.nan)
    if act == "relu":
        dead = np.concatenate([(a <= 0).all(axis=2) for a in hidden], axis=1)
        return nan, dead.mean(axis=1)
    lo = 0.01 if act == "sigmoid" else -0.99
    sat = np.concatenate([((a < lo) | (a > 0.99)).mean(axis=2) >= 0.95 for a in hidden], axis=1)
    return sat.mean(axis=1), nan


ENGINES: tuple[str, ...] = ("auto", "numpy", "fused")


def _fused():
    from . import fused   # imports numba: only when the fused path may run
    return fused


def resolve_engine(engine: str, arch: Arch, config: TrainConfig, n_train: int) -> str:
    """``"numpy"`` or ``"fused"``: what ``train(..., engine=engine)`` runs for this batch."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; allowed: {', '.join(ENGINES)}")
    if engine == "auto":
        env = os.environ.get("SWEEP_ENGINE", "auto").strip().lower() or "auto"
        if env not in ENGINES:
            raise ValueError(f"SWEEP_ENGINE={env!r}; allowed: {', '.join(ENGINES)}")
        engine = env
    if engine == "numpy":
        return "numpy"
    try:
        why = _fused().supported(arch, config, n_train)
    except ImportError as exc:   # pragma: no cover - numba missing or broken
        why = f"numba is not importable ({exc})"
    if why is None:
        return "fused"
    if engine == "fused":
        raise ValueError(f"engine 'fused' cannot run this batch: {why}")
    return "numpy"


def auto_chunk(arch: Arch) -> int:
    """Networks per vectorised pass: numpy batching pays while the stacked hidden layer stays a few
    hundred units wide and loses once the arrays fall out of cache (measured, PERFORMANCE.md)."""
    return max(2, min(64, 256 // max(arch.hidden)))


def train(W0: Sequence[np.ndarray], data: SplitLike, arch: Arch, config: TrainConfig, *,
          lr: float | Sequence[float] | np.ndarray, order_seeds: Sequence[int] | None = None,
          root: int = 0, chunk: int | None = None, engine: str = "auto") -> TrainResult:
    """Train N networks from ``W0`` on ``data``; network ``i`` uses ``lr[i]`` and, with minibatches,
    a data order drawn from ``stream("order", order_seeds[i], root)`` (full batch ignores order).

    Diagnostics, each ``(N,)``: ``train_acc, val_acc, test_acc, train_loss, val_loss, test_loss``
    (final); ``init_train_acc, init_val_acc`` (untrained); ``stagnation_step`` (NaN = none);
    ``diverged`` and ``diverged_step`` (see ``TrainConfig``; the network is frozen there);
    ``single_class`` (one predicted class on the training set); ``saturated_frac`` (sigmoid/tanh
    units within 1e-2 of their bounds on >= 95% of training samples; NaN for relu) and ``dead_frac``
    (relu units never active; NaN otherwise); ``rel_weight_change`` = ||W - W0|| / ||W0|| (NaN when
    W0 = 0); ``grad_norm_first``, ``grad_norm_last`` (global, before clipping); ``steps``.

    The N networks are trained ``chunk`` at a time (default ``auto_chunk(arch)``, or
    ``fused.fused_chunk(arch)`` on the fused path); every network's result is the same whatever the
    chunk (each network only ever touches its own slices), up to the order in which BLAS sums a
    row for another matrix height (rounding).

    ``engine``: ``"numpy"`` (the reference), ``"fused"`` (the numba loop of ``sweep.engine.fused``:
    one hidden layer, binary output, full batch, no loop quirk; ValueError for a batch outside that
    scope) or ``"auto"`` (default: fused when it supports the batch and numba imports, else numpy).
    The environment variable ``SWEEP_ENGINE`` sets what ``"auto"`` means: ``numpy`` forces the
    reference path everywhere, ``fused`` makes every batch outside the fused scope an error (to check
    that a sweep really runs fused), ``auto`` (or unset) is the default.
    """
    N = W0[0].shape[0]
    engine = resolve_engine(engine, arch, config, np.shape(data.y_train)[0])
    if chunk is None:
        chunk = auto_chunk(arch) if engine == "numpy" else _fused().fused_chunk(arch)
    chunk = int(chunk)
    lr_all = np.broadcast_to(np.asarray(lr, dtype=float), (N,))
    if N <= chunk:
        return _train_batch(W0, data, arch, config, lr_all, order_seeds, root, engine)
    parts = []
    for a in range(0, N, chunk):
        b = min(a + chunk, N)
        parts.append(_train_batch([w[a:b] for w in W0], data, arch, config, lr_all[a:b],
                                  None if order_seeds is None else list(order_seeds)[a:b], root, engine))
    first = parts[0]
    return TrainResult(
        params=[np.concatenate([p.params[k] for p in parts]) for k in range(len(first.params))],
        steps=first.steps,
        curves={k: np.concatenate([p.curves[k] for p in parts], axis=1) for k in first.curves},
        objective=np.concatenate([p.objective for p in parts], axis=1),
        objective_steps=first.objective_steps,
        diagnostics={k: np.concatenate([p.diagnostics[k] for p in parts]) for k in first.diagnostics},
    )


def _train_batch(W0, data, arch, config, lr, order_seeds, root, engine="numpy") -> TrainResult:
    """``train`` for one vectorised batch."""
    c, leg = config, config.legacy
    dtype = np.dtype(c.dtype)
    N = W0[0].shape[0]
    W = [np.array(w, dtype=dtype, order="C", copy=True) for w in W0]
    W_start = [w.copy() for w in W]
    expected = [(N, fo, fi + 1) for fi, fo in zip((arch.n_in, *arch.hidden), (*arch.hidden, arch.n_out))]
    if [w.shape for w in W] != expected:
        raise ValueError(f"parameter shapes {[w.shape for w in W]} do not match {arch}: {expected}")
    lr = np.broadcast_to(np.asarray(lr, dtype=dtype), (N,)).copy()
    act, norm = arch.activation, leg.normalize_hidden

    X_aug = add_ones_row(np.asarray(data.X_train, dtype=dtype))
    XT = X_aug.T
    y = np.asarray(data.y_train, dtype=np.int64)
    XT_val = add_ones_row(np.asarray(data.X_val, dtype=dtype)).T
    y_val = np.asarray(data.y_val, dtype=np.int64)
    n = y.shape[0]

    B = n if c.batch_size is None else min(c.batch_size, n)
    per_epoch = math.ceil(n / B)
    T = c.iterations if c.iterations is not None else c.epochs * per_epoch
    full = B == n
    if not full:
        if order_seeds is None or len(order_seeds) != N:
            raise ValueError(f"minibatch training needs one order seed per network ({N})")
        order_rngs = [stream("order", s, root) for s in order_seeds]

    steps = log_steps(T, every=c.log_every, points=c.log_points)
    log_at = {int(s): k for k, s in enumerate(steps)}
    curves = {k: np.full((len(steps), N), np.nan) for k in ("train_loss", "train_acc", "val_loss", "val_acc")}
    if full:
        obj_steps = np.arange(T + 1)
    else:
        obj_steps = np.unique(np.append(np.arange(per_epoch, T + 1, per_epoch), T))
    objective = np.full((len(obj_steps), N), np.nan)
    epoch_sum = np.zeros(N)
    epoch_n = 0

    opt = Optimizer(c.optimizer, W, lr)
    frozen = np.zeros(N, dtype=bool)
    diverged_step = np.full(N, np.nan)
    grad_first = grad_last = np.full(N, np.nan)
    done = T
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if engine == "fused":
            # The same loop, compiled (sweep.engine.fused): fills the same variables.
            done, objective, fused_curves, frozen, diverged_step, limit, grad_first, grad_last = \
                _fused().run_loop(W, X_aug, y, XT_val.T, y_val, c, arch, lr, steps, T)
            for key, val in fused_curves.items():
                curves[key][:] = val
        else:
            for it in range(T):
                if it in log_at:
                    k = log_at[it]
                    curves["val_loss"][k], curves["val_acc"][k], _ = _evaluate(W, XT_val, y_val, act, norm, leg.any)
                    if not full:
                        curves["train_loss"][k], curves["train_acc"][k], _ = _evaluate(W, XT, y, act, norm, leg.any)
                if full:
                    Xb, yb, m = XT, y, n
                else:
                    e, b = divmod(it, per_epoch)
                    if b == 0:
                        perms = np.stack([r.permutation(n) for r in order_rngs])
                    idx = perms[:, b * B:(b + 1) * B]
                    Xb, yb, m = X_aug[idx].transpose(0, 2, 1), y[idx], idx.shape[1]
                obj, grads, logits = loss_and_grads(W, Xb, yb, act, l2=c.l2, normalize_hidden=norm,
                                                    sum_wtw=leg.sum_wtw_regularizer, per_network=leg.any)
                if full:
                    objective[it] = obj
                    if it in log_at:
                        k = log_at[it]
                        curves["train_loss"][k] = output_loss(logits, yb)
                        curves["train_acc"][k] = accuracy(logits, yb)
                else:
                    epoch_sum += obj * m
                    epoch_n += m
                    if (it + 1) % per_epoch == 0 or it + 1 == T:
                        objective[np.searchsorted(obj_steps, it + 1)] = epoch_sum / epoch_n
                        epoch_sum[:] = 0
                        epoch_n = 0
                if it == 0 and c.divergence_factor is not None:
                    limit = c.divergence_factor * np.maximum(obj, 1e-3)
                bad = ~np.isfinite(obj) & ~frozen
                if c.divergence_factor is not None:
                    bad |= (obj > limit) & ~frozen
                if bad.any():
                    diverged_step[bad] = it
                    frozen |= bad
                    if frozen.all():
                        done = it
                        break
                if it == 0 or it == T - 1 or c.clip_norm is not None:
                    gnorm = _global_norm(grads)
                    if it == 0:
                        grad_first = gnorm
                    if it == T - 1:
                        grad_last = gnorm
                    if c.clip_norm is not None:
                        scale = np.minimum(1.0, c.clip_norm / np.where(gnorm > 0, gnorm, 1.0))
                        for g in grads:
                            g *= scale.astype(dtype).reshape(-1, 1, 1)
                if leg.clip_threshold is not None:
                    _legacy_clip(grads, leg.clip_threshold, leg.clip_typo)
                opt.step(W, grads, frozen if frozen.any() else None)

        # Final evaluation (after the last update, or where every network had diverged).
        tr_obj, _, tr_logits = loss_and_grads(W, XT, y, act, l2=c.l2, normalize_hidden=norm,
                                              sum_wtw=leg.sum_wtw_regularizer, per_network=leg.any)
        tr_loss, tr_acc = output_loss(tr_logits, y), accuracy(tr_logits, y)
        va_loss, va_acc, _ = _evaluate(W, XT_val, y_val, act, norm, leg.any)
        te_loss, te_acc, _ = _evaluate(W, add_ones_row(np.asarray(data.X_test, dtype=dtype)).T,
                                       np.asarray(data.y_test, dtype=np.int64), act, norm, leg.any)
        if full:
            objective[done:] = tr_obj
        elif done < T:
            objective[np.searchsorted(obj_steps, done):] = tr_obj
        newly = ~np.isfinite(tr_obj) & ~frozen
        if c.divergence_factor is not None and T > 0:
            newly |= (tr_obj > limit) & ~frozen
        diverged_step[newly] = done
        frozen |= newly
        for k, s in enumerate(steps):
            if s >= done:
                for key, val in (("train_loss", tr_loss), ("train_acc", tr_acc),
                                 ("val_loss", va_loss), ("val_acc", va_acc)):
                    curves[key][k] = val
        finite_w = np.all([np.isfinite(w).all(axis=(1, 2)) for w in W], axis=0)
        for arr in (tr_acc, va_acc, te_acc):
            arr[~finite_w] = np.nan
        sat, dead = _hidden_health(W, XT, act, norm, leg.any)
        preds = predict(tr_logits)
        single = (preds == preds[:, :1]).all(axis=1) & finite_w
        dW = np.sqrt(sum(np.einsum("nij,nij->n", w - w0, w - w0) for w, w0 in zip(W, W_start)))
        nW0 = np.sqrt(sum(np.einsum("nij,nij->n", w0, w0) for w0 in W_start))
        rel = np.where(nW0 > 0, dW / np.where(nW0 > 0, nW0, 1), np.nan)

    diagnostics = {
        "train_acc": tr_acc, "val_acc": va_acc, "test_acc": te_acc,
        "train_loss": tr_loss, "val_loss": va_loss, "test_loss": te_loss,
        "init_train_acc": curves["train_acc"][0].copy(), "init_val_acc": curves["val_acc"][0].copy(),
        "stagnation_step": stagnation_step(objective, obj_steps, c.stagnation_tol),
        "diverged": frozen.copy(), "diverged_step": diverged_step,
        "single_class": single, "saturated_frac": sat, "dead_frac": dead,
        "rel_weight_change": rel, "grad_norm_first": grad_first, "grad_norm_last": grad_last,
        "steps": np.full(N, T),
    }
    diagnostics = {k: np.asarray(v, dtype=bool if v.dtype == bool else float) for k, v in diagnostics.items()}
    return TrainResult(W, steps, curves, objective, obj_steps, diagnostics)
