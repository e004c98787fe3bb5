"""The benchmark's workloads, their data, and their compute floors.

A workload is one training setting studies run: data (breast cancer or digits, standardised), the
network (hidden widths, activation, binary or softmax output from the data), full batch or
minibatches, the budget, Adam's hyperparameters. The reference workload (all of breast cancer, one
hidden layer of H sigmoid units, 1000 full-batch iterations) comes in three sizes; the others use
the training part of the bundled set as ``sweep run`` splits it by default (60/20/20, split seed 0).

The compute floor of a workload is what its arithmetic costs at this machine's best rates: its
matrix products' FLOPs at the large-GEMM rate plus its elementwise work at the fastest in-cache exp
rate (numpy's or the engine's vectorised one). No implementation can be expected to beat it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8

# Elementwise work in "exp-equivalents" (one element through one exp-like pass):
C_HIDDEN = 1    # per sigmoid/tanh unit and sample: its exp (derivatives are a few mults, free); relu 0
C_BINARY = 2    # per sample, binary output: the exp (sigmoid and loss share it) and the loss's log1p
C_PARAM = 1     # per parameter and update: Adam's sqrt and division, one fused pass


@dataclass(frozen=True)
class Workload:
    """One training setting. ``part``: ``"all"`` (every sample, standardised) or ``"train"`` (the
    training part of the default split). Budget: ``iterations`` (full batch) or ``epochs``."""

    key: str
    title: str
    dataset: str
    part: str
    hidden: tuple[int, ...]
    activation: str
    lr: float
    iterations: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    sklearn_target: float = 1.0
    ns: tuple[int, ...] = (1, 8, 64)

    def scaled(self, factor: float) -> "Workload":
        """The same workload with its budget multiplied by ``factor`` (at least one step or epoch)."""
        from dataclasses import replace
        if self.iterations is not None:
            return replace(self, iterations=max(1, round(self.iterations * factor)))
        return replace(self, epochs=max(1, round(self.epochs * factor)))


def reference(H: int) -> Workload:
    return Workload(f"ref{H}", f"reference H={H}", "breast_cancer", "all", (H,), "sigmoid", 0.01,
                    iterations=1000, sklearn_target={3: 20.0, 32: 5.0, 256: 4.5}.get(H, 1.0),
                    ns=(1, 8, 64, 256))


WORKLOADS: dict[str, Workload] = {w.key: w for w in (
    reference(3), reference(32), reference(256),
    Workload("digits", "digits softmax [32] mb32", "digits", "train", (32,), "sigmoid", 0.001, epochs=20,
             batch_size=32, sklearn_target=6.0),
    Workload("deep", "cancer [64,64] tanh full", "breast_cancer", "train", (64, 64), "tanh", 0.01,
             iterations=500, sklearn_target=1.6, ns=(1, 8, 32)),
    Workload("mini", "cancer [32] mb64", "breast_cancer", "train", (32,), "sigmoid", 0.001, epochs=30,
             batch_size=64, sklearn_target=6.0),
)}
FLOOR_TARGET = 1.6


def load(w: Workload) -> tuple[np.ndarray, np.ndarray]:
    """Training inputs ``(n, d)`` float64 (standardised) and labels ``(n,)`` int64."""
    if w.part == "all":
        from sklearn.datasets import load_breast_cancer
        X, y = load_breast_cancer(return_X_y=True)
        X = (X - X.mean(axis=0)) / X.std(axis=0)
        return np.ascontiguousarray(X, dtype=np.float64), y.astype(np.int64)
    from ..data import load_dataset, split_dataset
    s = split_dataset(load_dataset(w.dataset), val_size=0.2, test_size=0.2, seed=0)
    return np.ascontiguousarray(s.X_train, dtype=np.float64), np.asarray(s.y_train, dtype=np.int64)


def as_split(X: np.ndarray, y: np.ndarray) -> SimpleNamespace:
    """The engine's data: everything is training data (validation and test parts empty)."""
    return SimpleNamespace(X_train=X, y_train=y, X_val=X[:0], y_val=y[:0], X_test=X[:0], y_test=y[:0],
                           n_classes=int(y.max()) + 1)


def layer_dims(d: int, hidden, n_classes: int) -> list[int]:
    """``[d, h1, ..., K]`` with ``K = 1`` for binary data (one sigmoid output), else the classes."""
    return [d, *hidden, 1 if n_classes == 2 else n_classes]


def steps(w: Workload, n: int) -> tuple[int, list[int]]:
    """``(parameter updates, rows of each update within one epoch)``: full batch ``(iterations,
    [n])``, minibatches ``(epochs * ceil(n / B), [B, B, ..., rest])``."""
    if w.batch_size is None or w.batch_size >= n:
        return (w.iterations if w.iterations is not None else w.epochs), [n]
    B = w.batch_size
    per_epoch = math.ceil(n / B)
    rows = [B] * (per_epoch - 1) + [n - B * (per_epoch - 1)]
    return w.epochs * per_epoch, rows


def n_params(dims: list[int]) -> int:
    """Weights and biases of a network with layer sizes ``dims``."""
    return sum((a + 1) * b for a, b in zip(dims[:-1], dims[1:]))


def flops_per_sample(dims: list[int]) -> int:
    """Matrix-product FLOPs of one sample through one training step (bias folded in as a column of
    ones, a ``(a x k) @ (k x b)`` product counting ``2 a k b``): per layer ``fan_in -> fan_out``,
    forward ``2 (fan_in + 1) fan_out`` and gradient ``2 (fan_in + 1) fan_out``; every layer but the
    first also sends its delta back, ``2 fan_in fan_out``. For d-H-1: ``4 (d+1) H + 4 (H+1) + 2 H``."""
    total = 0
    for layer, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        total += 4 * (a + 1) * b + (2 * a * b if layer > 0 else 0)
    return total


def elements_per_sample(dims: list[int], activation: str) -> int:
    """Elementwise exp-equivalents of one sample: ``C_HIDDEN`` per sigmoid/tanh hidden unit (relu:
    none), and the output: binary ``C_BINARY``, softmax of K classes K exps and one log."""
    hidden = sum(dims[1:-1]) * (C_HIDDEN if activation != "relu" else 0)
    K = dims[-1]
    return hidden + (C_BINARY if K == 1 else K + 1)


def work(w: Workload, n: int, d: int, n_classes: int) -> tuple[float, float]:
    """``(FLOPs, elementwise exp-equivalents)`` of one network-run: the per-sample work times the
    samples of every update, plus ``C_PARAM`` per parameter and update. A lower bound on purpose: a
    fused kernel could do exactly this."""
    dims = layer_dims(d, w.hidden, n_classes)
    updates, rows = steps(w, n)
    samples = updates * n if len(rows) == 1 else updates // len(rows) * n
    return (float(flops_per_sample(dims)) * samples,
            float(elements_per_sample(dims, w.activation)) * samples + C_PARAM * n_params(dims) * updates)


def floor_seconds(flops: float, elements: float, gemm_flops_per_s: float, elements_per_s: float) -> float:
    """Compute floor: matrix products at the large-GEMM rate + elementwise work at the exp rate."""
    return flops / gemm_flops_per_s + elements / elements_per_s
