"""The machine: its large-GEMM and exp rates (the compute floor's), its BLAS, its CPU."""
from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np


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
    """Best elements/s of an in-cache exp over ``size`` elements (about one hidden layer's work), the
    faster of numpy's ``np.exp`` and the engine's vectorised exp (``engine.vmath``; numpy's float64 exp
    is a scalar loop on CPUs without AVX-512), ``calls`` calls, best of ``repeats``."""
    a = -np.random.default_rng(1).uniform(0, 5, size).astype(dtype)
    b = np.empty_like(a)
    runs = [lambda: np.exp(a, out=b)]
    vexp = _vectorised_exp()
    if vexp is not None:
        runs.append(lambda: vexp(a, b))
    best = float("inf")
    for run in runs:
        run()
        for _ in range(repeats):
            t0 = time.perf_counter()
            for _ in range(calls):
                run()
            best = min(best, (time.perf_counter() - t0) / calls)
    return size / best


_VEXP = []


def _vectorised_exp():
    """``f(a, out)``: out = exp(a) for a <= 0 with the engine's vectorisable exp; None without numba."""
    if not _VEXP:
        try:
            from numba import njit

            from ..engine.vmath import vexp_neg

            @njit(fastmath={"contract"}, error_model="numpy", cache=True)
            def vexp(a, out):
                for i in range(a.shape[0]):
                    out[i] = vexp_neg(a[i])
            _VEXP.append(vexp)
        except ImportError:
            _VEXP.append(None)
    return _VEXP[0]


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


def blas_text(summary: list[dict]) -> str:
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
    """CPU, cores, SIMD flags, memory, Python, package versions, BLAS."""
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    from importlib import metadata
    versions = {}
    for pkg in ("numpy", "scipy", "scikit-learn", "threadpoolctl", "numba", "torch", "jax", "jaxlib", "joblib",
                "optuna"):
        try:
            versions[pkg] = metadata.version(pkg)      # no import: jax must be imported after its flags
        except metadata.PackageNotFoundError:
            versions[pkg] = None
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
