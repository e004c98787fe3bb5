"""``make bench`` / ``sweep bench``: seconds per network-run of sweep's engine against the tools a user
would otherwise reach for, the machine's compute floor, and the reference sweep end to end.

Reference workload: standardised breast cancer (all 569 samples x 30 features), one hidden layer of
``H`` sigmoid units, one sigmoid output with binary cross-entropy, 1000 full-batch Adam iterations at
lr 0.01 (beta 0.9 / 0.999, eps 1e-8, no L2).

Measured in ONE process, INTERLEAVED: every repeat runs each implementation once, round-robin (the
order rotates from repeat to repeat), and the table reports medians over repeats, so a slow spell of
the machine hits every implementation alike. Implementations:

* ``sweep``: ``sweep.engine.train`` with N = 1, 8, 64, 256 networks per call (``chunk=N``), float64
  and float32; seconds per network-run = call time / N. A combination whose call would take more than
  ``--max-call-s`` (estimated from the smaller N already measured) is skipped and says so.
* ``scikit-learn``: ``MLPClassifier`` (logistic, adam, batch = all samples, ``tol=0``,
  ``n_iter_no_change > max_iter``, no L2, no shuffling), one network per fit; ``n_iter_`` is checked.
* ``numpy``: :func:`numpy_reference_train`, a plain, clean one-network numpy loop written here.
* ``torch``: PyTorch CPU, one network at a time (only if ``import torch`` works; never a dependency).

BLAS is capped at ``--blas-threads`` (default 1) threads for every BLAS in the process (threadpoolctl,
after scipy/scikit-learn are imported); PyTorch gets ``torch.set_num_threads`` alike.

The compute floor (see :func:`flops_per_iteration`, :func:`elements_per_iteration`) is the time the
workload's matrix products would take at this machine's large-GEMM rate plus its elementwise work at
this machine's in-cache ``exp`` rate: no implementation can be expected to beat it.

Output: one printed table, the target lines, ``<out>/bench.csv`` (one row per implementation x
dtype x N x hidden), ``<out>/machine.json``, ``<out>/sweep.csv`` (end-to-end sweep) and
``<out>/report.txt`` (what was printed). Performance is reported, never asserted.
"""
from __future__ import annotations

import argparse
import csv
import gc
import inspect
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import numpy as np

LR = 0.01
ITERATIONS = 1000
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8
FULL_NS = (1, 8, 64, 256)
QUICK_NS = (1, 64)
FULL_SIZES = (3, 32, 256)
QUICK_SIZES = (3, 32)
SWEEP_HIDDEN = (3, 16, 64, 256)
SWEEP_LRS = (0.0003, 0.001, 0.003, 0.01)
SWEEP_INITS = ("xavier_normal", "he_normal", "normal:0.01")
SWEEP_SEEDS = 20

# Elementwise work per iteration, in "exp-equivalents" (one element through one exp-like pass; see
# ``elements_per_iteration``).
C_HIDDEN = 1   # per hidden unit and sample: its sigmoid (the derivative a(1-a)dA is a few mults, free)
C_OUTPUT = 2   # per sample: the output's exp (sigmoid and loss share it) and the loss's log1p
C_PARAM = 1    # per parameter: Adam's sqrt and division, one fused pass

CSV_COLUMNS = ("implementation", "dtype", "N", "hidden", "seconds_per_run", "vs_sklearn", "vs_floor",
               "min_s", "max_s", "repeats", "final_acc", "note", "cpu_model", "cores", "blas")
SWEEP_COLUMNS = ("dtype", "n_jobs", "runs", "iterations", "wall_s", "runner_wall_s", "engine_s",
                 "outside_share", "ok", "note")

# Targets (issue 7): float64 speed-up over scikit-learn at the best N, per hidden size.
SKLEARN_TARGETS = {3: 20.0, 32: 5.0, 256: 3.5}
F32_TARGET, F32_ACC_PP = 1.7, 0.5
SWEEP_F64_S, SWEEP_F32_S, OUTSIDE_MAX, PARALLEL_MIN = 90.0, 50.0, 0.05, 1.7


# ----------------------------------------------------------------------------------------- workload

def load_reference() -> tuple[np.ndarray, np.ndarray]:
    """Breast cancer, all 569 x 30, each feature standardised (mean 0, sd 1); labels 0/1 int64."""
    from sklearn.datasets import load_breast_cancer
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X.mean(axis=0)) / X.std(axis=0)
    return np.ascontiguousarray(X, dtype=np.float64), y.astype(np.int64)


def reference_split(X: np.ndarray, y: np.ndarray) -> SimpleNamespace:
    """The engine's data: everything is training data (validation and test parts empty)."""
    return SimpleNamespace(X_train=X, y_train=y, X_val=X[:0], y_val=y[:0], X_test=X[:0], y_test=y[:0],
                           n_classes=2)


def n_params(d: int, H: int) -> int:
    """Parameters of a d-H-1 network: (d + 1) H first layer (with biases) + H + 1 output."""
    return (d + 1) * H + H + 1


def flops_per_iteration(n: int, d: int, H: int) -> int:
    """Floating-point operations of the matrix products of one full-batch iteration (d-H-1 network).

    With the bias folded into the products (a column of ones, as the engine does), a GEMM of
    ``(a x k) @ (k x b)`` counts ``2 a k b``:

    * forward:  hidden ``2 n (d+1) H`` + output ``2 n (H+1)``;
    * backward: first-layer gradient ``2 n (d+1) H`` + output-layer gradient ``2 n (H+1)`` + the
      delta sent back to the hidden layer ``2 n H`` (an outer product, counted as a GEMM with k = 1);
      no gradient for the inputs.

    Total: ``4 n (d+1) H + 4 n (H+1) + 2 n H``.
    """
    return 4 * n * (d + 1) * H + 4 * n * (H + 1) + 2 * n * H


def elements_per_iteration(n: int, d: int, H: int) -> int:
    """Elementwise work of one iteration in exp-equivalents (elements through one exp-like pass).

    ``C_HIDDEN n H + C_OUTPUT n + C_PARAM P`` with ``C_HIDDEN = 1`` (each hidden unit's sigmoid; its
    derivative ``a (1 - a) dA`` is a few multiplications, counted free), ``C_OUTPUT = 2`` (the
    output's exp, shared by sigmoid and loss, and the loss's log1p), ``C_PARAM = 1`` (Adam's sqrt and
    division, one fused pass over the ``P = n_params(d, H)`` parameters). A lower bound on purpose:
    a fused kernel could do exactly this, numpy does several passes.
    """
    return C_HIDDEN * n * H + C_OUTPUT * n + C_PARAM * n_params(d, H)


def floor_seconds(n: int, d: int, H: int, iterations: int, gemm_flops_per_s: float,
                  elements_per_s: float) -> float:
    """Compute floor of one network-run: matrix products at the large-GEMM rate + elementwise work at
    the in-cache exp rate."""
    return iterations * (flops_per_iteration(n, d, H) / gemm_flops_per_s
                         + elements_per_iteration(n, d, H) / elements_per_s)


# ----------------------------------------------------------------------------- machine measurements

def gemm_rate(dtype: str, size: int = 2000, repeats: int = 3) -> float:
    """Best FLOP/s of a ``size x size`` matrix product (``2 size^3`` FLOPs) over ``repeats``."""
    rng = np.random.default_rng(0)
    A = rng.standard_normal((size, size)).astype(dtype)
    B = rng.standard_normal((size, size)).astype(dtype)
    C = np.empty_like(A)
    np.matmul(A, B, out=C)                                     # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(A, B, out=C)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * size ** 3 / best


def elementwise_rate(dtype: str, size: int = 1 << 16, calls: int = 200, repeats: int = 5) -> float:
    """Best elements/s of ``np.exp(a, out=b)`` over an in-cache array of ``size`` elements (the size
    of the workload's hidden layer: 569 x 256 = 145,664), timed as ``calls`` calls, best of ``repeats``."""
    a = np.random.default_rng(1).uniform(-5, 5, size).astype(dtype)
    b = np.empty_like(a)
    np.exp(a, out=b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            np.exp(a, out=b)
        best = min(best, (time.perf_counter() - t0) / calls)
    return size / best


def blas_summary(info: list[dict] | None = None) -> list[dict[str, Any]]:
    """What threadpoolctl sees: library, internal API, version, threads, architecture, file."""
    if info is None:
        from threadpoolctl import threadpool_info
        info = threadpool_info()
    keep = ("user_api", "internal_api", "version", "num_threads", "architecture", "threading_layer", "prefix")
    out = []
    for lib in info:
        row = {k: lib.get(k) for k in keep if lib.get(k) is not None}
        row["file"] = os.path.basename(lib.get("filepath", ""))
        out.append(row)
    return out


def _blas_text(summary: list[dict]) -> str:
    return "; ".join(f"{b.get('internal_api', b.get('user_api'))} {b.get('version') or ''} "
                     f"({b.get('file')}, {b.get('num_threads')} thread{'s' if b.get('num_threads') != 1 else ''})"
                     for b in summary) or "none found"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(blas: list[dict]) -> dict[str, Any]:
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    versions = {}
    for mod in ("numpy", "scipy", "sklearn", "threadpoolctl", "torch", "numba", "joblib", "optuna"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:
            versions[mod] = None
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = None
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = round(int(line.split()[1]) / 1024 ** 2, 1)
    except OSError:
        pass
    return {
        "cpu_model": cpu_model(), "cores": os.cpu_count(), "cores_available": affinity,
        "simd": sorted(f for f in flags if f in {"avx2", "fma", "avx512f", "avx512_fp16", "amx_tile"}),
        "memory_gib": mem, "python": platform.python_version(), "platform": platform.platform(),
        "versions": versions, "blas": blas,
    }


# ---------------------------------------------------------------------------- the implementations

def numpy_reference_train(X: np.ndarray, y: np.ndarray, W1: np.ndarray, w2: np.ndarray, *,
                          iterations: int = ITERATIONS, lr: float = LR) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """One d-H-1 sigmoid network trained with full-batch Adam: plain numpy, float64, vectorised over
    the samples, buffers preallocated, parameters in one flat buffer so Adam is a few whole-array ops.

    ``W1`` is ``(d + 1, H)`` (row 0 = biases), ``w2`` is ``(H + 1,)`` (entry 0 = bias). Returns the
    final ``W1``, ``w2``, the mean binary cross-entropy before each update and after the last one
    ``(iterations + 1,)``, and the final training accuracy.
    """
    X = np.asarray(X, dtype=np.float64)
    n, d = X.shape
    H = W1.shape[1]
    Xa = np.empty((n, d + 1))
    Xa[:, 0] = 1.0
    Xa[:, 1:] = X
    yf = y.astype(np.float64)
    sign = 1.0 - 2.0 * yf                      # loss term: softplus(z) for y = 0, softplus(-z) for y = 1

    P1 = (d + 1) * H
    theta = np.empty(P1 + H + 1)               # [W1 (d+1, H) | b2 | w2 (H,)]
    W1v, b2v, w2v = theta[:P1].reshape(d + 1, H), theta[P1:P1 + 1], theta[P1 + 1:]
    W1v[...] = W1
    theta[P1:] = w2
    grad = np.empty_like(theta)
    g1, gb2, gw2 = grad[:P1].reshape(d + 1, H), grad[P1:P1 + 1], grad[P1 + 1:]
    m, v, tmp = np.zeros_like(theta), np.zeros_like(theta), np.empty_like(theta)

    A = np.empty((n, H))                       # hidden activations
    D = np.empty((n, H))                       # hidden deltas
    z, u, dz = np.empty(n), np.empty(n), np.empty(n)
    losses = np.empty(iterations + 1)

    def forward() -> None:
        np.matmul(Xa, W1v, out=A)
        np.negative(A, out=A)                  # sigmoid in place: 1 / (1 + exp(-Z))
        np.exp(A, out=A)
        np.add(A, 1.0, out=A)
        np.reciprocal(A, out=A)
        np.matmul(A, w2v, out=z)
        np.add(z, b2v[0], out=z)

    def loss() -> float:                       # mean softplus(sign * z), stably
        np.multiply(z, sign, out=u)
        t = np.maximum(u, 0.0)
        np.abs(u, out=u)
        np.negative(u, out=u)
        np.exp(u, out=u)
        np.log1p(u, out=u)
        np.add(u, t, out=u)
        return float(u.mean())

    for t in range(1, iterations + 1):
        forward()
        losses[t - 1] = loss()
        # output delta (p - y) / n
        np.negative(z, out=dz)
        np.exp(dz, out=dz)
        dz += 1.0
        np.reciprocal(dz, out=dz)
        dz -= yf
        dz /= n
        gb2[0] = dz.sum()
        np.matmul(dz, A, out=gw2)
        # hidden delta dz w2 * a (1 - a)
        np.subtract(1.0, A, out=D)
        D *= A
        D *= w2v
        D *= dz[:, None]
        np.matmul(Xa.T, D, out=g1)
        # Adam (Kingma & Ba), bias corrections folded into the step size and epsilon
        m *= BETA1
        np.multiply(grad, 1.0 - BETA1, out=tmp)
        m += tmp
        v *= BETA2
        np.multiply(grad, grad, out=tmp)
        tmp *= 1.0 - BETA2
        v += tmp
        c2 = np.sqrt(1.0 - BETA2 ** t)
        step = lr * c2 / (1.0 - BETA1 ** t)
        np.sqrt(v, out=tmp)
        tmp += EPS * c2
        np.divide(m, tmp, out=tmp)
        tmp *= step
        theta -= tmp
    forward()
    losses[iterations] = loss()
    acc = float(((z > 0) == (y == 1)).mean())
    return W1v.copy(), theta[P1:].copy(), losses, acc


def engine_to_reference(W0: list[np.ndarray], i: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Network ``i`` of the engine's ``[(N, H, d+1), (N, 1, H+1)]`` as ``(W1 (d+1, H), w2 (H+1,))``."""
    return np.ascontiguousarray(W0[0][i].T, dtype=np.float64), np.array(W0[1][i, 0], dtype=np.float64)


def sklearn_classifier(H: int, iterations: int = ITERATIONS, seed: int = 0, lr: float = LR):
    """The peer a user would pick, configured so that all ``iterations`` full-batch steps run."""
    from sklearn.neural_network import MLPClassifier
    return MLPClassifier(hidden_layer_sizes=(H,), activation="logistic", solver="adam", batch_size=569,
                         max_iter=iterations, tol=0.0, n_iter_no_change=iterations + 1,
                         learning_rate_init=lr, alpha=0.0, shuffle=False, early_stopping=False,
                         beta_1=BETA1, beta_2=BETA2, epsilon=EPS, random_state=seed)


def sklearn_train(X: np.ndarray, y: np.ndarray, H: int, iterations: int = ITERATIONS, seed: int = 0):
    """Fit one ``MLPClassifier``; raise if it did not run exactly ``iterations`` iterations."""
    from sklearn.exceptions import ConvergenceWarning
    clf = sklearn_classifier(H, iterations, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    if clf.n_iter_ != iterations:
        raise RuntimeError(f"scikit-learn ran {clf.n_iter_} iterations, not {iterations}: the benchmark "
                           "would compare unequal work")
    return clf


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except Exception:
        return False
    return True


def torch_train(X: np.ndarray, y: np.ndarray, W1: np.ndarray, w2: np.ndarray, dtype: str, *,
                iterations: int = ITERATIONS, lr: float = LR) -> float:
    """PyTorch CPU, plain ``nn.Linear`` + ``Sigmoid`` + Adam (fused where the build has it); final
    training accuracy."""
    import torch
    from torch import nn
    tdt = torch.float64 if dtype == "float64" else torch.float32
    Xt = torch.as_tensor(X, dtype=tdt)
    yt = torch.as_tensor(y, dtype=tdt)
    l1, l2 = nn.Linear(X.shape[1], W1.shape[1], dtype=tdt), nn.Linear(W1.shape[1], 1, dtype=tdt)
    with torch.no_grad():
        l1.weight.copy_(torch.as_tensor(W1[1:].T))
        l1.bias.copy_(torch.as_tensor(W1[0]))
        l2.weight.copy_(torch.as_tensor(w2[1:][None, :]))
        l2.bias.copy_(torch.as_tensor(w2[:1]))
    model = nn.Sequential(l1, nn.Sigmoid(), l2)
    try:
        opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(BETA1, BETA2), eps=EPS, fused=True)
    except (RuntimeError, TypeError, ValueError):
        opt = torch.optim.Adam(model.parameters(), lr=lr, betas=(BETA1, BETA2), eps=EPS, foreach=True)
    loss_fn = nn.BCEWithLogitsLoss()
    for _ in range(iterations):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(Xt).squeeze(1), yt)
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(((model(Xt).squeeze(1) > 0) == (yt > 0.5)).double().mean())


def engine_supports(keyword: str) -> bool:
    from .engine import train
    return keyword in inspect.signature(train).parameters


def engine_path(H: int, dtype: str, engine: str | None = None, n_train: int = 569, d: int = 30) -> str | None:
    """Which path ``train`` takes for this workload (``numpy`` / ``fused``), if the engine says."""
    from .engine import train as train_mod
    resolve = getattr(sys.modules[train_mod.__module__], "resolve_engine", None)
    if resolve is None:
        return None
    from .engine import Arch, OptimConfig, TrainConfig
    cfg = TrainConfig(OptimConfig("adam", beta1=BETA1, beta2=BETA2, eps=EPS), dtype=dtype)
    try:
        return resolve(engine or "auto", Arch(d, (H,), 1, "sigmoid"), cfg, n_train)
    except Exception as exc:    # report, do not fail the benchmark
        return f"unknown ({exc})"


def engine_fingerprint() -> str:
    """Short hash of the engine's source files, to notice an engine changed during a run."""
    import hashlib
    h = hashlib.sha256()
    for f in sorted((Path(__file__).parent / "engine").glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def engine_train(split, W0: list[np.ndarray], H: int, dtype: str, *, iterations: int = ITERATIONS,
                 lr: float = LR, engine: str | None = None):
    """One ``train`` call of sweep's engine on all of ``W0``'s networks at once (``chunk = N``)."""
    from .engine import Arch, OptimConfig, TrainConfig, train
    arch = Arch.for_data(split.X_train.shape[1], 2, [H], "sigmoid")
    cfg = TrainConfig(OptimConfig("adam", beta1=BETA1, beta2=BETA2, eps=EPS), iterations=iterations, dtype=dtype)
    kw = {} if engine is None else {"engine": engine}
    return train(W0, split, arch, cfg, lr=lr, chunk=W0[0].shape[0], **kw)


# ------------------------------------------------------------------------------------ measurement

@dataclass
class Case:
    impl: str                 # sweep | sklearn | numpy | torch
    dtype: str
    N: int
    hidden: int
    engine: str | None = None
    times: list[float] = field(default_factory=list)     # seconds per network-run, one per repeat
    acc: float = float("nan")                            # mean final training accuracy (last repeat)
    accs: np.ndarray | None = None                       # per network (sweep)
    skipped: str | None = None
    path: str | None = None                              # which engine path ran, if the engine says

    @property
    def label(self) -> str:
        names = {"sklearn": "scikit-learn MLPClassifier", "numpy": "numpy, one at a time",
                 "torch": "PyTorch CPU, one at a time", "sweep": "sweep engine"}
        name = names[self.impl]
        if self.impl == "sweep" and self.engine not in (None, "auto"):
            name += f" [{self.engine}]"
        if self.impl == "sweep" and self.path:
            name += f" ({self.path})"
        return name

    @property
    def key(self) -> tuple:
        return (self.impl, self.engine, self.dtype, self.N)

    @property
    def median(self) -> float:
        return float(np.median(self.times)) if self.times else float("nan")


class Bench:
    """Holds the data, initial weights and cases; ``run_case`` measures one case once."""

    def __init__(self, iterations: int):
        self.X, self.y = load_reference()
        self.split = reference_split(self.X, self.y)
        self.iterations = iterations
        self._W0: dict[tuple[int, int], list[np.ndarray]] = {}

    def W0(self, H: int, N: int) -> list[np.ndarray]:
        """xavier_normal weights of networks 0..N-1 (zero biases), float64; the same every repeat."""
        if (H, N) not in self._W0:
            from .engine import init_params
            self._W0[(H, N)] = init_params(self.X.shape[1], [H], 1, "xavier_normal", seeds=range(N))
        return self._W0[(H, N)]

    def run_case(self, case: Case, iterations: int | None = None) -> float:
        """Train once; return seconds per network-run (only the training is timed)."""
        T = iterations or self.iterations
        H = case.hidden
        if case.impl == "sweep":
            W0 = self.W0(H, case.N)
            t0 = time.perf_counter()
            res = engine_train(self.split, W0, H, case.dtype, iterations=T, engine=case.engine)
            dt = time.perf_counter() - t0
            case.accs = np.asarray(res.diagnostics["train_acc"], dtype=float)
            case.acc = float(np.nanmean(case.accs))
            return dt / case.N
        if case.impl == "sklearn":
            t0 = time.perf_counter()
            clf = sklearn_train(self.X, self.y, H, T)
            dt = time.perf_counter() - t0
            case.acc = float(clf.score(self.X, self.y))
            return dt
        W1, w2 = engine_to_reference(self.W0(H, 1))
        if case.impl == "numpy":
            t0 = time.perf_counter()
            *_, acc = numpy_reference_train(self.X, self.y, W1, w2, iterations=T)
            dt = time.perf_counter() - t0
        else:
            t0 = time.perf_counter()
            acc = torch_train(self.X, self.y, W1, w2, case.dtype, iterations=T)
            dt = time.perf_counter() - t0
        case.acc = acc
        return dt


def build_cases(sizes, Ns, engines, with_torch: bool) -> list[Case]:
    """H-major; within one H the peers first, then the engine by dtype and ascending N."""
    cases = []
    for H in sizes:
        cases.append(Case("sklearn", "float64", 1, H))
        cases.append(Case("numpy", "float64", 1, H))
        if with_torch:
            cases += [Case("torch", dt, 1, H) for dt in ("float64", "float32")]
        for eng in engines:
            for dt in ("float64", "float32"):
                cases += [Case("sweep", dt, N, H, engine=eng) for N in sorted(Ns)]
    return cases


def measure(bench: Bench, cases: list[Case], repeats: int, max_call_s: float,
            log: Callable[[str], None] = print, after_round: Callable[[], None] | None = None) -> None:
    """Warm up each implementation, then ``repeats`` interleaved rounds over all cases
    (``after_round`` is called after each, e.g. to re-measure the machine's rates)."""
    for c in cases:
        if c.impl == "sweep":
            c.path = engine_path(c.hidden, c.dtype, c.engine, bench.X.shape[0], bench.X.shape[1])
    warm = {}
    for c in cases:
        warm.setdefault((c.impl, c.engine, c.dtype), c)
    for c in warm.values():                       # imports, JIT compilation, first-touch
        bench.run_case(Case(c.impl, c.dtype, 1, c.hidden, engine=c.engine), iterations=min(5, bench.iterations))
    shift = max(1, len(cases) // max(repeats, 1))
    for r in range(repeats):
        order = cases[(r * shift) % len(cases):] + cases[:(r * shift) % len(cases)]
        t_round = time.perf_counter()
        for c in order:
            if c.skipped:
                continue
            if r == 0 and c.impl == "sweep" and c.N > 1:
                smaller = [o.median for o in cases if o.impl == "sweep" and o.engine == c.engine
                           and o.dtype == c.dtype and o.hidden == c.hidden and o.N < c.N and o.times]
                if smaller and min(smaller) * c.N > max_call_s:
                    c.skipped = (f"skipped: about {min(smaller) * c.N:.0f} s per call "
                                 f"(> {max_call_s:g} s, estimated from the smaller N)")
                    continue
            gc.collect()
            c.times.append(bench.run_case(c))
        if after_round is not None:
            after_round()
        log(f"  repeat {r + 1}/{repeats}: {time.perf_counter() - t_round:.1f} s "
            f"(load average {os.getloadavg()[0]:.2f})")


# ------------------------------------------------------------------------------------------ report

def best(cases: list[Case], impl: str, dtype: str, H: int, engine: str | None = None) -> Case | None:
    found = [c for c in cases if c.impl == impl and c.dtype == dtype and c.hidden == H and c.times
             and (impl != "sweep" or c.engine == engine)]
    return min(found, key=lambda c: c.median) if found else None


def table_rows(cases: list[Case], floors: dict[tuple[str, int], float], machine: dict[str, Any]) -> list[dict]:
    """One CSV row per case (skipped ones too) plus one compute-floor row per dtype and size."""
    skl = {c.hidden: c.median for c in cases if c.impl == "sklearn" and c.times}
    common = {"cpu_model": machine.get("cpu_model", ""), "cores": machine.get("cores", ""),
              "blas": _blas_text(machine.get("blas", []))}
    rows = []
    for c in cases:
        s = c.median
        note = c.skipped or ""
        rows.append({"implementation": c.label, "dtype": c.dtype, "N": c.N, "hidden": c.hidden,
                     "seconds_per_run": s, "vs_sklearn": skl.get(c.hidden, np.nan) / s if c.times else np.nan,
                     "vs_floor": s / floors[(c.dtype, c.hidden)] if c.times else np.nan,
                     "min_s": min(c.times) if c.times else np.nan, "max_s": max(c.times) if c.times else np.nan,
                     "repeats": len(c.times), "final_acc": c.acc, "note": note, **common})
    for (dt, H), f in sorted(floors.items(), key=lambda kv: (kv[0][1], kv[0][0] == "float32")):
        rows.append({"implementation": "compute floor", "dtype": dt, "N": "", "hidden": H,
                     "seconds_per_run": f, "vs_sklearn": skl.get(H, np.nan) / f, "vs_floor": 1.0,
                     "min_s": "", "max_s": "", "repeats": "", "final_acc": "",
                     "note": "GEMM FLOPs at the large-GEMM rate + elementwise work at the exp rate", **common})
    return rows


def _fmt(v: Any, spec: str = ".4g") -> str:
    if v is None or v == "" or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    return format(v, spec) if isinstance(v, (float, np.floating)) else str(v)


def write_csv(path: Path, rows: list[dict], columns=CSV_COLUMNS) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        for row in rows:
            w.writerow({k: _fmt(row.get(k, ""), ".6g") for k in columns})


def format_table(rows: list[dict], sizes) -> str:
    """Implementation x hidden size: s/network-run, x sklearn (> 1 = faster), x floor (time / floor)."""
    keyed: dict[tuple, dict[int, dict]] = {}
    for r in rows:
        keyed.setdefault((r["implementation"], r["dtype"], r["N"]), {})[r["hidden"]] = r
    name_w = max(len(k[0]) for k in keyed) + 1
    head = f"{'implementation':<{name_w}} {'dtype':<8}{'N':>4} "
    sub = " " * len(head)
    for H in sizes:
        head += f"| {'H = ' + str(H):^27} "
        sub += f"| {'s/run':>9} {'x sklearn':>9} {'x floor':>7} "
    lines = [head.rstrip(), sub.rstrip(), "-" * len(sub.rstrip())]
    for (name, dt, N), by_h in keyed.items():
        line = f"{name:<{name_w}} {dt:<8}{str(N):>4} "
        for H in sizes:
            r = by_h.get(H)
            if r is None:
                line += f"| {'':>27} "
            elif r.get("repeats") == 0:
                line += f"| {'skipped (> max call)':>27} "
            else:
                line += (f"| {_fmt(r['seconds_per_run'], '9.4f'):>9} {_fmt(r['vs_sklearn'], '8.2f') + 'x':>9} "
                         f"{_fmt(r['vs_floor'], '6.2f') + 'x':>7} ")
        lines.append(line.rstrip())
    return "\n".join(lines)


def target_lines(cases: list[Case], engine: str | None) -> list[str]:
    out = []
    for H, goal in SKLEARN_TARGETS.items():
        skl = best(cases, "sklearn", "float64", H)
        sw = best(cases, "sweep", "float64", H, engine)
        what = f"target >={goal:g}x sklearn at H={H} (float64, best N)"
        if skl is None or sw is None:
            out.append(f"{what}: NOT MEASURED")
            continue
        ratio = skl.median / sw.median
        out.append(f"{what}: {'MET' if ratio >= goal else 'MISSED'} ({ratio:.1f}x, N={sw.N})")
    parts, ok, measured = [], True, False
    for H in (32, 256):
        c64, c32 = best(cases, "sweep", "float64", H, engine), best(cases, "sweep", "float32", H, engine)
        if c64 is None or c32 is None:
            parts.append(f"H={H}: not measured")
            ok = False
            continue
        measured = True
        ratio = c64.median / c32.median
        # accuracy: float32 vs float64 at the largest N measured in both dtypes (same initial weights)
        both = [c.N for c in cases if c.impl == "sweep" and c.engine == engine and c.hidden == H
                and c.dtype == "float64" and c.accs is not None
                and any(o.N == c.N and o.dtype == "float32" and o.accs is not None and o.engine == engine
                        and o.hidden == H for o in cases if o.impl == "sweep")]
        if not both:
            parts.append(f"H={H}: {ratio:.2f}x, accuracy not comparable (no N measured in both dtypes)")
            ok = False
            continue
        N = max(both)
        a64 = next(c for c in cases if c.impl == "sweep" and c.engine == engine and c.hidden == H
                   and c.dtype == "float64" and c.N == N)
        a32 = next(c for c in cases if c.impl == "sweep" and c.engine == engine and c.hidden == H
                   and c.dtype == "float32" and c.N == N)
        dpp = 100 * abs(np.nanmean(a32.accs) - np.nanmean(a64.accs))
        worst = 100 * np.nanmax(np.abs(a32.accs - a64.accs))
        ok &= ratio >= F32_TARGET and dpp <= F32_ACC_PP
        parts.append(f"H={H}: {ratio:.2f}x (N={c64.N}/{c32.N}), accuracy {100 * np.nanmean(a64.accs):.2f}% vs "
                     f"{100 * np.nanmean(a32.accs):.2f}%, {dpp:.2f} pp apart (N={N}; one network at most "
                     f"{worst:.2f} pp)")
    status = ("MET" if ok else "MISSED") if measured else "NOT MEASURED"
    out.append(f"target float32 >={F32_TARGET:g}x float64 at H=32 and 256, final accuracy within "
               f"{F32_ACC_PP:g} pp: {status} ({'; '.join(parts)})")
    return out


# ------------------------------------------------------------------------------- end-to-end sweep

def reference_spec(*, dtype: str = "float64", iterations: int = ITERATIONS, lrs=SWEEP_LRS,
                   hidden=SWEEP_HIDDEN, inits=SWEEP_INITS, seeds: int = SWEEP_SEEDS,
                   name: str = "bench_reference") -> str:
    """The reference sweep as a study file (breast cancer, the spec's default 60/20/20 split)."""
    def tl(xs):
        return "[" + ", ".join(json.dumps(x) for x in xs) + "]"
    return f"""# written by sweep.bench: the reference sweep of issue 7
[study]
name = "{name}"
sampler = "grid"
objective = "val_acc"
aggregate = "mean"

[data]
dataset = "breast_cancer"
scale = "standard"

[model]
hidden = [3]
activation = "sigmoid"
init = "xavier_normal"

[train]
optimizer = "adam"
lr = 0.01
iterations = {iterations}
dtype = "{dtype}"

[space]
"train.lr" = {{ values = {tl(lrs)} }}
"model.hidden" = {{ values = {tl([[h] for h in hidden])} }}
"model.init" = {{ values = {tl(inits)} }}

[seeds]
replicates = {seeds}
root = 0
"""


_RUNS = re.compile(r"(\d+) runs in ")
_TRIALS = re.compile(r"(\d+) trials trained now")
_WALL = re.compile(r"([\d.]+) s wall")
_ENGINE = re.compile(r"([\d.]+) s in the engine")


def parse_run_output(text: str) -> dict[str, float] | None:
    """``runs``, ``trials``, ``runner_wall_s``, ``engine_s`` from ``sweep run``'s closing line (each
    field found on its own, so an added field does not break the parse); None when one is missing."""
    found = [rx.search(text) for rx in (_RUNS, _TRIALS, _WALL, _ENGINE)]
    if not all(found):
        return None
    runs, trials, wall, engine = (m.group(1) for m in found)
    return {"runs": int(runs), "trials": int(trials), "runner_wall_s": float(wall), "engine_s": float(engine)}


def run_sweep(spec_text: str, n_jobs: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run a study through the public CLI in a fresh temporary folder; wall time of the whole process."""
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        spec = Path(tmp) / "reference.toml"
        spec.write_text(spec_text)
        cmd = [sys.executable, "-m", "sweep", "run", str(spec), "--out", str(Path(tmp) / "out"),
               "--n-jobs", str(n_jobs), "--quiet"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        wall = time.perf_counter() - t0
    parsed = parse_run_output(proc.stdout)
    row: dict[str, Any] = {"n_jobs": n_jobs, "wall_s": wall, "ok": proc.returncode == 0 and parsed is not None}
    if parsed:
        row.update(parsed)
        row["outside_share"] = 1.0 - parsed["engine_s"] / (n_jobs * wall)
    if not row["ok"]:
        row["note"] = f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-300:]}"
        log(f"  sweep run failed: {row['note']}")
    return row


def sweep_section(quick: bool, iterations: int, log: Callable[[str], None]) -> tuple[list[dict], list[str]]:
    """The 960-run reference sweep (quick: 1/8 of its work) with 1 and 2 workers, float64 and float32."""
    if quick:   # 2 of the 4 learning rates and a quarter of the iterations: 1/8 of the work
        kw = dict(lrs=(0.001, 0.01), iterations=max(1, iterations // 4))
        scale, label = 1 / 8, "quick: 1/8-size sweep (2 learning rates, a quarter of the iterations)"
    else:
        kw = dict(iterations=iterations)
        scale, label = iterations / ITERATIONS, "reference sweep"
    n_runs = len(kw.get("lrs", SWEEP_LRS)) * len(SWEEP_HIDDEN) * len(SWEEP_INITS) * SWEEP_SEEDS
    log(f"{label}: {n_runs} runs of {kw['iterations']} iterations, breast cancer, through `sweep run`")
    rows = []
    for dtype, jobs in (("float64", 1), ("float64", 2), ("float32", 2)):
        t0 = time.perf_counter()
        r = run_sweep(reference_spec(dtype=dtype, **kw), jobs, log)
        r.update(dtype=dtype, iterations=kw["iterations"])
        rows.append(r)
        log(f"  {dtype}, {jobs} worker{'s' if jobs > 1 else ''}: {r['wall_s']:.1f} s wall "
            f"(runner {r.get('runner_wall_s', float('nan')):.1f} s), engine {r.get('engine_s', float('nan')):.1f} s "
            f"summed, outside the engine {100 * r.get('outside_share', float('nan')):.1f}% "
            f"[{time.perf_counter() - t0:.0f} s]")
    w1, w2, w32 = rows
    lines = []
    sfx = f" (time targets scaled by {scale:g})" if scale != 1 else ""

    def status(ok):
        return "MET" if ok else "MISSED"

    if all(r["ok"] for r in rows):
        lines.append(f"target reference sweep <={SWEEP_F64_S:g} s float64 on 2 cores{sfx}: "
                     f"{status(w2['wall_s'] <= SWEEP_F64_S * scale)} ({w2['wall_s']:.1f} s)")
        lines.append(f"target reference sweep <={SWEEP_F32_S:g} s float32 on 2 cores{sfx}: "
                     f"{status(w32['wall_s'] <= SWEEP_F32_S * scale)} ({w32['wall_s']:.1f} s)")
        shares = [r["outside_share"] for r in rows]
        lines.append(f"target outside the engine <={100 * OUTSIDE_MAX:g}% of wall time: "
                     f"{status(max(shares) <= OUTSIDE_MAX)} (float64 1 worker {100 * shares[0]:.1f}%, "
                     f"2 workers {100 * shares[1]:.1f}%, float32 2 workers {100 * shares[2]:.1f}%)")
        speed = w1["wall_s"] / w2["wall_s"]
        lines.append(f"target 2 workers >={PARALLEL_MIN:g}x one (float64): {status(speed >= PARALLEL_MIN)} "
                     f"({speed:.2f}x: {w1['wall_s']:.1f} s -> {w2['wall_s']:.1f} s)")
    else:
        lines.append("targets of the reference sweep: NOT MEASURED (a sweep run failed, see above)")
    return rows, lines


# -------------------------------------------------------------------------------------------- main

def _int_list(text: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError(f"{text!r}: give integers >= 1, e.g. 3,32,256")
    return vals


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sweep bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="fast look: 2 repeats, sizes 3 and 32, N in {1, 64}, a 1/8-size sweep")
    p.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 5; at least 5 unless --quick)")
    p.add_argument("--out", default="results/bench", help="output folder (default results/bench)")
    p.add_argument("--skip-sweep", action="store_true", help="skip the end-to-end reference sweep")
    p.add_argument("--sizes", type=_int_list, default=None, help="hidden sizes (default 3,32,256; quick 3,32)")
    p.add_argument("--ns", type=_int_list, default=None,
                   help="networks per engine call (default 1,8,64,256; quick 1,64)")
    p.add_argument("--engine", default=None,
                   help="engine path(s) of sweep.engine.train, comma-separated, e.g. auto,numpy "
                        "(default: train's own choice); needs train(..., engine=...)")
    p.add_argument("--max-call-s", type=float, default=60.0,
                   help="skip an engine combination whose one call would take longer (default 60 s)")
    p.add_argument("--blas-threads", type=int, default=1, help="BLAS threads in this process (default 1)")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if it is installed")
    p.add_argument("--iterations", type=int, default=ITERATIONS, help=argparse.SUPPRESS)   # tests
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.repeats < 1 or (args.repeats < 5 and not args.quick):
        parser.error(f"--repeats {args.repeats}: at least 5 (or use --quick for a fast look)")
    if args.iterations < 1:
        parser.error("--iterations must be >= 1")
    sizes = args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)
    Ns = args.ns or (QUICK_NS if args.quick else FULL_NS)
    engines: list[str | None] = [None]
    if args.engine:
        if not engine_supports("engine"):
            print(f"warning: this sweep.engine.train has no engine= keyword; --engine {args.engine} ignored",
                  file=sys.stderr)
        else:
            engines = [e.strip() for e in args.engine.split(",") if e.strip()]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    printed: list[str] = []

    def log(msg: str = "") -> None:
        print(msg, flush=True)
        printed.append(msg)

    t_start = time.perf_counter()
    # Import every BLAS user first, then cap them all (threadpoolctl only sees loaded libraries).
    import scipy.linalg  # noqa: F401
    import sklearn.neural_network  # noqa: F401
    from . import engine as _engine  # noqa: F401
    with_torch = not args.no_torch and torch_available()
    if with_torch:
        import torch
        torch.set_num_threads(args.blas_threads)
    from threadpoolctl import threadpool_limits
    limiter = threadpool_limits(limits=args.blas_threads)   # noqa: F841  (held for the whole run)
    blas = blas_summary()
    machine = machine_info(blas)
    machine["loadavg_start"] = os.getloadavg()
    machine["engine_source"] = engine_fingerprint()
    machine["engine_keyword"] = engine_supports("engine")
    machine["engine_paths"] = {f"{dt} H={H}": engine_path(H, dt) for dt in ("float64", "float32")
                               for H in (args.sizes or FULL_SIZES)}
    log(f"sweep bench ({'quick' if args.quick else 'full'}): {machine['cpu_model']}, {machine['cores']} cores, "
        f"{', '.join(machine['simd'])}; Python {machine['python']}")
    log("versions: " + ", ".join(f"{k} {v}" for k, v in machine["versions"].items() if v))
    log(f"BLAS (threadpoolctl): {_blas_text(blas)}")
    log(f"engine: train(..., engine=) {'supported' if engine_supports('engine') else 'not present'}, "
        f"paths {sorted(set(machine['engine_paths'].values()), key=str)}, source {machine['engine_source']}; "
        f"PyTorch {'measured (' + torch.__version__ + ', ' + str(torch.get_num_threads()) + ' thread)' if with_torch else 'not installed: left out'}")
    log(f"load average at start {machine['loadavg_start'][0]:.2f} (other processes share this machine: "
        "timings are noisy)")

    # compute floor: the machine's rates, measured now and again after every repeat; the best counts
    gemm_n = 1000 if args.quick else 2000
    rates: dict[str, list[float]] = {}

    def measure_rates() -> None:
        for dt in ("float64", "float32"):
            g, e = gemm_rate(dt, gemm_n), elementwise_rate(dt)
            old = rates.get(dt, [0.0, 0.0])
            rates[dt] = [max(old[0], g), max(old[1], e)]

    def rates_text() -> str:
        return "; ".join(f"{dt} GEMM {r[0] / 1e9:.1f} GFLOP/s ({gemm_n}x{gemm_n}), exp {r[1] / 1e9:.2f} Gelem/s"
                         for dt, r in rates.items())

    measure_rates()
    log("machine rates now: " + rates_text())
    n, d = load_reference()[0].shape

    # per-network-run timings, interleaved
    bench = Bench(args.iterations)
    cases = build_cases(sizes, Ns, engines, with_torch)
    log(f"measuring {len(cases)} cases x {args.repeats} interleaved repeats, {args.iterations} iterations each")
    measure(bench, cases, args.repeats, args.max_call_s, log, after_round=measure_rates)
    machine["loadavg_end"] = os.getloadavg()
    machine["gemm_gflops"] = {dt: r[0] / 1e9 for dt, r in rates.items()}
    machine["gemm_size"] = gemm_n
    machine["exp_gelem_per_s"] = {dt: r[1] / 1e9 for dt, r in rates.items()}
    floors = {(dt, H): floor_seconds(n, d, H, args.iterations, *rates[dt]) for dt in rates for H in sizes}
    log(f"compute floor from the best rates seen over {args.repeats + 1} measurements: " + rates_text())
    for H in sizes:
        log(f"  H={H}: {flops_per_iteration(n, d, H):,} FLOPs + {elements_per_iteration(n, d, H):,} "
            f"exp-equivalents per iteration -> floor {floors[('float64', H)]:.3g} s (float64), "
            f"{floors[('float32', H)]:.3g} s (float32) per run of {args.iterations} iterations")
    machine["engine_source_after_table"] = engine_fingerprint()
    if machine["engine_source_after_table"] != machine["engine_source"]:
        log(f"WARNING: the engine's source files changed on disk during the measurement (now "
            f"{machine['engine_source_after_table']}); this process measured the version it imported at "
            f"the start ({machine['engine_source']}), but anything run later imports the new one")
    rows = table_rows(cases, floors, machine)
    write_csv(out / "bench.csv", rows)
    log("")
    log(f"seconds per network-run (median of {args.repeats}); x sklearn = sklearn time / time (> 1 = faster); "
        "x floor = time / compute floor")
    log(format_table(rows, sizes))
    for c in cases:
        if c.skipped:
            log(f"  {c.label} {c.dtype} N={c.N} H={c.hidden}: {c.skipped}")
    accs = {c.hidden: [] for c in cases}
    for c in cases:
        if np.isfinite(c.acc):
            accs[c.hidden].append(c.acc)
    log("final training accuracy, range over implementations: " + ", ".join(
        f"H={H} {100 * min(a):.1f}-{100 * max(a):.1f}%" for H, a in accs.items() if a))
    log("")
    lines = target_lines(cases, engines[0])
    for line in lines:
        log(line)

    sweep_rows: list[dict] = []
    if not args.skip_sweep:
        log("")
        sweep_rows, sweep_lines = sweep_section(args.quick, args.iterations, log)
        write_csv(out / "sweep.csv", sweep_rows, SWEEP_COLUMNS)
        for line in sweep_lines:
            log(line)
        machine["engine_source_after_sweep"] = engine_fingerprint()
        if machine["engine_source_after_sweep"] != machine["engine_source_after_table"]:
            log(f"WARNING: the engine's source files changed on disk during the end-to-end sweep "
                f"({machine['engine_source_after_table']} -> {machine['engine_source_after_sweep']}): its "
                "runs may mix engine versions; re-run for clean numbers")
        elif machine["engine_source_after_table"] != machine["engine_source"]:
            log(f"note: the end-to-end sweep ran engine version {machine['engine_source_after_table']}, "
                f"the table above version {machine['engine_source']}")
    machine.update(command=" ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
                   finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                   repeats=args.repeats, iterations=args.iterations, quick=args.quick,
                   bench_seconds=time.perf_counter() - t_start, sweep=sweep_rows)
    (out / "machine.json").write_text(json.dumps(machine, indent=2, default=str) + "\n")
    log("")
    log(f"wrote {out / 'bench.csv'}, {out / 'machine.json'}"
        + (f", {out / 'sweep.csv'}" if sweep_rows else "") + f" ({time.perf_counter() - t_start:.0f} s)")
    (out / "report.txt").write_text("\n".join(printed) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
