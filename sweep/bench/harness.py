"""The interleaved harness: every implementation on every workload, round-robin, medians over repeats.

Every repeat runs each case once (the order rotates from repeat to repeat), so a slow spell of the
machine hits every implementation alike; seconds per network-run are the call's time divided by
its N networks. Only the training is timed (data loading, initial weights and JAX's compilation are
not; drawing the data order is).
"""
from __future__ import annotations

import contextlib
import gc
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import peers
from .workloads import BETA1, BETA2, EPS, Workload, as_split, layer_dims, load

IMPLS = ("sklearn", "numpy", "torch", "jax", "sweep")
LABELS = {"sklearn": "scikit-learn MLPClassifier", "numpy": "numpy, one at a time",
          "torch": "PyTorch CPU, one at a time", "jax": "JAX CPU, jit + vmap", "sweep": "sweep engine"}


@dataclass
class Case:
    """One implementation x dtype x networks per call x workload, and what was measured."""

    impl: str
    dtype: str
    N: int
    workload: str
    times: list[float] = field(default_factory=list)     # seconds per network-run, one per repeat
    acc: float = float("nan")                            # mean final training accuracy (last repeat)
    accs: np.ndarray | None = None                       # per network (sweep, JAX)
    skipped: str | None = None
    path: str | None = None                              # sweep: which engine path ran

    @property
    def label(self) -> str:
        return LABELS[self.impl] + (f" ({self.path})" if self.path else "")

    @property
    def median(self) -> float:
        return float(np.median(self.times)) if self.times else float("nan")


def engine_config(w: Workload, dtype: str):
    """The engine's ``TrainConfig`` for a workload: Adam, curves at steps 0 and T only (the peers
    log none; a study's logged steps cost an evaluation each with minibatches)."""
    from ..engine import OptimConfig, TrainConfig
    return TrainConfig(OptimConfig("adam", beta1=BETA1, beta2=BETA2, eps=EPS), iterations=w.iterations,
                       epochs=w.epochs, batch_size=w.batch_size, dtype=dtype, log_points=2)


def engine_path(w: Workload, dtype: str, n: int, d: int, n_classes: int) -> str:
    """``numpy``, ``fused wide`` or ``fused net``: what ``train`` runs for this workload."""
    from ..engine import Arch
    from ..engine.train import resolve_engine
    arch = Arch.for_data(d, n_classes, w.hidden, w.activation)
    cfg = engine_config(w, dtype)
    if resolve_engine("auto", arch, cfg, n) == "numpy":
        return "numpy"
    from ..engine.fused import kernel
    return f"fused {kernel(arch, cfg, n)}"


@contextlib.contextmanager
def one_core():
    """Every thread of this process on one CPU for the duration (JAX's runtime has threads of its
    own); the previous affinities are restored afterwards."""
    try:
        tids = [int(t) for t in os.listdir("/proc/self/task")]
        old = {t: os.sched_getaffinity(t) for t in tids}
        cpu = min(os.sched_getaffinity(0))
        for t in tids:
            os.sched_setaffinity(t, {cpu})
    except (OSError, AttributeError):
        yield
        return
    try:
        yield
    finally:
        for t, cpus in old.items():
            with contextlib.suppress(OSError):
                os.sched_setaffinity(t, cpus)


class Bench:
    """The data, initial weights and compiled peers of every workload; ``run_case`` times one case once."""

    def __init__(self, workloads: list[Workload]):
        self.workloads = {w.key: w for w in workloads}
        self.data = {w.key: load(w) for w in workloads}
        self._W0: dict[tuple[str, int], list[np.ndarray]] = {}
        self._jax: dict[tuple[str, int, str], object] = {}

    def shape(self, key: str) -> tuple[int, int, int]:
        """``(n, d, classes)`` of a workload's training data."""
        X, y = self.data[key]
        return X.shape[0], X.shape[1], int(y.max()) + 1

    def W0(self, key: str, N: int) -> list[np.ndarray]:
        """xavier_normal weights of networks 0..N-1 (zero biases), float64; the same every repeat."""
        if (key, N) not in self._W0:
            from ..engine import init_params
            n, d, k = self.shape(key)
            dims = layer_dims(d, self.workloads[key].hidden, k)
            self._W0[(key, N)] = init_params(d, dims[1:-1], dims[-1], "xavier_normal", seeds=range(N))
        return self._W0[(key, N)]

    def prepare(self, case: Case) -> None:
        """What must exist before timing: the path sweep takes; JAX's compiled program."""
        w = self.workloads[case.workload]
        if case.impl == "sweep":
            case.path = engine_path(w, case.dtype, *self.shape(case.workload))
        if case.impl == "jax" and (case.workload, case.N, case.dtype) not in self._jax:
            from .jaxpeer import JaxTrainer
            X, y = self.data[case.workload]
            with one_core():
                self._jax[(case.workload, case.N, case.dtype)] = JaxTrainer(w, X, y, self.W0(case.workload, case.N),
                                                                           case.dtype)

    def run_case(self, case: Case, scale: float = 1.0) -> float:
        """Train once (``scale``: a fraction of the budget, for warming up); return seconds per
        network-run (only the training is timed)."""
        w, (X, y) = self.workloads[case.workload].scaled(scale), self.data[case.workload]
        if case.impl == "sweep":
            from ..engine import Arch, train
            W0 = self.W0(case.workload, case.N)
            arch = Arch.for_data(X.shape[1], int(y.max()) + 1, w.hidden, w.activation)
            t0 = time.perf_counter()
            res = train(W0, as_split(X, y), arch, engine_config(w, case.dtype), lr=w.lr,
                        order_seeds=range(case.N), chunk=case.N)
            dt = time.perf_counter() - t0
            case.accs = np.asarray(res.diagnostics["train_acc"], dtype=float)
        elif case.impl == "jax":
            trainer = self._jax[(case.workload, case.N, case.dtype)]
            with one_core():
                t0 = time.perf_counter()
                case.accs = trainer.run(self.W0(case.workload, case.N))
                dt = time.perf_counter() - t0
        elif case.impl == "sklearn":
            t0 = time.perf_counter()
            clf = peers.sklearn_train(X, y, w)
            dt = time.perf_counter() - t0
            case.acc = float(clf.score(X, y))
        else:
            layers = peers.engine_to_layers(self.W0(case.workload, 1))
            order = peers.orders(w, X.shape[0])
            t0 = time.perf_counter()
            if case.impl == "numpy":
                case.acc = peers.numpy_train(X, y, layers, w, order)[2]
            else:
                case.acc = peers.torch_train(X, y, layers, w, case.dtype)
            dt = time.perf_counter() - t0
        if case.accs is not None:
            case.acc = float(np.nanmean(case.accs))
        return dt / case.N


def build_cases(workloads: list[Workload], peers_on: dict[str, bool], ns: dict[str, tuple[int, ...]]) -> list[Case]:
    """Workload-major; within one workload the peers first, then JAX and sweep by dtype and N."""
    cases = []
    for w in workloads:
        cases.append(Case("sklearn", "float64", 1, w.key))
        cases.append(Case("numpy", "float64", 1, w.key))
        if peers_on.get("torch"):
            cases += [Case("torch", dt, 1, w.key) for dt in ("float64", "float32")]
        for impl in ("jax", "sweep"):
            if impl == "jax" and not peers_on.get("jax"):
                continue
            for dt in ("float64", "float32"):
                cases += [Case(impl, dt, N, w.key) for N in sorted(ns[w.key])]
    return cases


def measure(bench: Bench, cases: list[Case], repeats: int, max_call_s: float,
            log: Callable[[str], None] = print, after_round: Callable[[], None] | None = None) -> None:
    """Prepare every case (JAX compiles), warm up every implementation x dtype x workload on a
    twentieth of the budget (imports, compiled code, first touch), then ``repeats`` interleaved
    rounds over all cases (``after_round`` is called after each, e.g. to re-measure the machine's
    rates). In the first round, a case whose call would take longer than ``max_call_s`` (estimated
    from the same implementation's smaller N) is skipped and says so."""
    for c in cases:
        bench.prepare(c)
    warm = {}
    for c in cases:
        if c.impl != "jax":
            warm.setdefault((c.impl, c.dtype, c.workload), c)
    for c in warm.values():
        bench.run_case(Case(c.impl, c.dtype, 1, c.workload), scale=0.05)
    shift = max(1, len(cases) // max(repeats, 1))
    for r in range(repeats):
        order = cases[(r * shift) % len(cases):] + cases[:(r * shift) % len(cases)]
        t_round = time.perf_counter()
        for c in order:
            if c.skipped or (r == 0 and _too_long(c, cases, max_call_s)):
                continue
            gc.collect()
            c.times.append(bench.run_case(c))
        if after_round is not None:
            after_round()
        log(f"  repeat {r + 1}/{repeats}: {time.perf_counter() - t_round:.1f} s "
            f"(load average {os.getloadavg()[0]:.2f})")


def _too_long(c: Case, cases: list[Case], max_call_s: float) -> bool:
    smaller = [o.median for o in cases if (o.impl, o.dtype, o.workload) == (c.impl, c.dtype, c.workload)
               and o.N < c.N and o.times]
    if smaller and min(smaller) * c.N > max_call_s:
        c.skipped = f"skipped: about {min(smaller) * c.N:.0f} s per call (> {max_call_s:g} s, from the smaller N)"
        return True
    return False
