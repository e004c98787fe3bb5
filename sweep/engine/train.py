"""Training N networks: engine choice, chunking, and the final evaluation and diagnostics.

``train`` takes initial parameters ``W[l]`` of shape ``(N, fan_out, fan_in + 1)`` (see
``sweep.engine.init``), one data split shared by all N networks, a ``TrainConfig`` shared by all,
and per-network learning rates and data-order seeds. It never raises on a diverging network: the
network is frozen where it diverged and recorded as diverged. One batch runs in three parts
(``sweep.engine.loop``): ``prepare`` (data and budget), a loop (the numpy reference
``loop.numpy_loop`` or the compiled ``fused.run_loop``, both returning a ``LoopState``) and
``finish`` here (final evaluation and diagnostics, numpy, whatever the loop).
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .config import Legacy, TrainConfig
from .layers import Arch
from .loop import Batch, LoopState, log_steps, numpy_evaluation, numpy_loop, prepare

__all__ = ["ENGINES", "Legacy", "SplitLike", "TrainConfig", "TrainResult", "auto_chunk", "log_steps",
           "frozen_step", "resolve_engine", "stagnation_step", "train"]


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


def frozen_step(objective: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """First of ``steps`` from which each column of ``objective`` ``(P, N)`` equals its final value
    exactly (the same float) up to the end, ``(N,)`` float; NaN: never, only the last row, or a
    non-finite final value. At the resolution of ``steps`` (``objective_steps``: every step for full
    batch, epoch ends for minibatches), not of the logged curves (``log_steps``)."""
    P = objective.shape[0]
    last = objective[-1]
    tail = np.logical_and.accumulate((objective == last)[::-1], axis=0)[::-1]   # equal from row p on
    first = tail.argmax(axis=0)
    good = np.isfinite(last) & (first < P - 1)   # NaN or inf at the end: never frozen
    return np.where(good, steps[first].astype(float), np.nan)


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
    ``frozen_step`` (the training objective the loop computed exactly constant from there on: each
    step's cost before its update for full batch, each epoch's mean for minibatches; NaN = never,
    and for diverged networks; exact, so the two engines, equal to rounding, agree on it when the
    weights stop moving outright, not always when updates sit at the weights' last bit);
    ``diverged`` and ``diverged_step`` (see ``TrainConfig``; the network is frozen there);
    ``single_class`` (one predicted class on the training set); ``saturated_frac`` (sigmoid/tanh
    units within 1e-2 of their bounds on >= 95% of training samples; NaN for relu) and ``dead_frac``
    (relu units never active; NaN otherwise); ``rel_weight_change`` = ||W - W0|| / ||W0|| (NaN when
    W0 = 0); ``grad_norm_first``, ``grad_norm_last`` (global, before clipping); ``steps``.

    The N networks are trained ``chunk`` at a time (default ``auto_chunk(arch)``, or
    ``fused.fused_chunk`` on the fused path); every network's result is the same whatever the
    chunk (each network only ever touches its own slices), up to the order in which BLAS sums a
    row for another matrix height (rounding).

    ``engine``: ``"numpy"`` (the reference), ``"fused"`` (the numba loops of ``sweep.engine.fused``:
    every architecture, output, batch size, optimizer and dtype, but no legacy quirk of the loop;
    ValueError for a batch outside that scope) or ``"auto"`` (default: fused when it supports the
    batch and numba imports, else numpy). The environment variable ``SWEEP_ENGINE`` sets what
    ``"auto"`` means: ``numpy`` forces the reference path everywhere, ``fused`` makes every batch
    outside the fused scope an error (to check that a sweep really runs fused), ``auto`` (or unset)
    is the default.
    """
    N = W0[0].shape[0]
    engine = resolve_engine(engine, arch, config, np.shape(data.y_train)[0])
    if chunk is None:
        n_train = np.shape(data.y_train)[0]
        chunk = auto_chunk(arch) if engine == "numpy" else _fused().fused_chunk(arch, config, n_train)
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
    """``train`` for one vectorised batch: prepare, loop, finish."""
    batch = prepare(W0, data, arch, config, lr, order_seeds, root)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        state = _fused().run_loop(batch) if engine == "fused" else numpy_loop(batch)
        return finish(batch, state)


def finish(batch: Batch, st: LoopState) -> TrainResult:
    """Final evaluation (after the last update, or where every network had diverged) and diagnostics."""
    c, W, done, T = batch.config, batch.W, st.done, batch.T
    ev = st.final if st.final is not None else numpy_evaluation(batch)
    tr_obj, tr_loss, tr_acc = ev.train_obj, ev.train_loss, ev.train_acc.copy()
    va_loss, va_acc, te_loss, te_acc = ev.val_loss, ev.val_acc.copy(), ev.test_loss, ev.test_acc.copy()
    objective, curves, frozen, diverged_step = st.objective, st.curves, st.frozen, st.diverged_step
    if batch.full:
        objective[done:] = tr_obj
    elif done < T:
        objective[np.searchsorted(batch.obj_steps, done):] = tr_obj
    newly = ~np.isfinite(tr_obj) & ~frozen
    if c.divergence_factor is not None and T > 0:
        newly |= (tr_obj > st.limit) & ~frozen
    diverged_step[newly] = done
    frozen |= newly
    late = batch.steps >= done
    for key, val in (("train_loss", tr_loss), ("train_acc", tr_acc), ("val_loss", va_loss), ("val_acc", va_acc)):
        curves[key][late] = val
    finite_w = np.all([np.isfinite(w).all(axis=(1, 2)) for w in W], axis=0)
    for arr in (tr_acc, va_acc, te_acc):
        arr[~finite_w] = np.nan
    single = ev.single_class & finite_w
    dW = np.sqrt(sum(np.einsum("nij,nij->n", w - w0, w - w0) for w, w0 in zip(W, batch.W_start)))
    nW0 = np.sqrt(sum(np.einsum("nij,nij->n", w0, w0) for w0 in batch.W_start))
    rel = np.where(nW0 > 0, dW / np.where(nW0 > 0, nW0, 1), np.nan)
    # the loop's own objective rows (full batch: the costs before each update, as the posted code prints
    # them); the final evaluation is a separate computation that may differ in the last bit
    loop_rows = slice(0, T) if batch.full else slice(None)
    diagnostics = {
        "train_acc": tr_acc, "val_acc": va_acc, "test_acc": te_acc,
        "train_loss": tr_loss, "val_loss": va_loss, "test_loss": te_loss,
        "init_train_acc": curves["train_acc"][0].copy(), "init_val_acc": curves["val_acc"][0].copy(),
        "stagnation_step": stagnation_step(objective, batch.obj_steps, c.stagnation_tol),
        "frozen_step": np.where(frozen, np.nan, frozen_step(objective[loop_rows], batch.obj_steps[loop_rows])),
        "diverged": frozen.copy(), "diverged_step": diverged_step,
        "single_class": single, "saturated_frac": ev.saturated, "dead_frac": ev.dead,
        "rel_weight_change": rel, "grad_norm_first": st.grad_first, "grad_norm_last": st.grad_last,
        "steps": np.full(batch.N, T),
    }
    diagnostics = {k: np.asarray(v, dtype=bool if v.dtype == bool else float) for k, v in diagnostics.items()}
    return TrainResult(W, batch.steps, curves, objective, batch.obj_steps, diagnostics)
