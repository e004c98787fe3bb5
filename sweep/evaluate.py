"""One trial: a configuration trained on the study's whole seed set (runs in a worker process).

Seeds travel as integers; every random stream is built here, in the worker. Networks that share a
data split train in one batched engine call. Returns plain Python data (lists/floats), ready for
the Optuna storage.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import threading
import time
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from .data import Split, load_dataset, shape_hint, split_dataset
from .engine import Arch, Legacy, OptimConfig, TrainConfig, init_params, log_steps, train
from .engine.loop import budget
from .spec import DataSection, StudySpec

CURVE_POINTS = 20  # logged steps kept per run in the storage (first and last always)
PANDAS_DELAY_S = 5.0  # prefetch_export_imports: when the parent imports pandas for the export


@functools.lru_cache(maxsize=8)
def _split(data: DataSection, seed_split: int, root: int, dtype: str) -> Split:
    ds = load_dataset(data.dataset, n_samples=data.n_samples, noise=data.noise, balance=data.balance,
                      seed=data.seed, root=root, target=data.target, features=data.features)
    return split_dataset(ds, val_size=data.val_size, test_size=data.test_size, scale=data.scale,
                         seed=seed_split, root=root, dtype=dtype)


def _networks(spec: StudySpec, seed_split: int, init_seeds: list[int], dtype: str):
    """The split for ``seed_split``, the architecture and the initial weights of one network per init
    seed: ``(split, arch, W0)``."""
    root = spec.seeds.root
    split = _split(spec.data, seed_split, root, dtype)
    arch = Arch.for_data(split.X_train.shape[1], split.n_classes, spec.model.hidden, spec.model.activation)
    scheme = "posted" if spec.model.legacy.posted_init else spec.model.init
    W0 = init_params(arch.n_in, arch.hidden, arch.n_out, scheme, init_seeds, root=root,
                     bias_init=spec.model.bias_init, dtype=dtype)
    return split, arch, W0


def engine_config(spec: StudySpec) -> TrainConfig:
    """The engine's ``TrainConfig`` for an (effective) spec."""
    t, leg = spec.train, spec.model.legacy
    legacy = Legacy(**{k: getattr(leg, k) for k in Legacy.SWITCHES}, clip_threshold=leg.clip_threshold)
    opt = OptimConfig(t.optimizer, beta1=t.beta1, beta2=t.beta2, eps=t.eps, momentum=t.momentum,
                      nesterov=t.nesterov, rho=t.rho, weight_decay=t.weight_decay,
                      compounding_bias_correction=leg.compounding_bias_correction,
                      update_times_grad=leg.update_times_grad)
    return TrainConfig(opt, iterations=t.iterations, epochs=t.epochs, batch_size=t.batch_size, l2=t.l2,
                       clip_norm=t.clip_norm, log_every=t.log_every, log_points=t.log_points,
                       stagnation_tol=t.stagnation_tol, divergence_factor=t.divergence_factor,
                       dtype=t.dtype, legacy=legacy)


def _thin(n_steps: int, keep: int = CURVE_POINTS) -> np.ndarray:
    """Indices of at most ``keep`` of ``n_steps`` logged steps, evenly spread, ends included."""
    return np.unique(np.round(np.linspace(0, n_steps - 1, min(keep, n_steps))).astype(int))


def stored_steps(cfg: TrainConfig, n_train: int) -> TrainConfig:
    """``cfg`` logging only the steps the storage keeps (``CURVE_POINTS`` of the logged ones, as
    ``_thin`` picks them): the same curves there, fewer evaluations (with minibatches each logged
    step is a pass over the training and validation sets)."""
    steps = log_steps(budget(cfg, n_train)[0], every=cfg.log_every, points=cfg.log_points)
    return dataclasses.replace(cfg, log_at=tuple(int(v) for v in steps[_thin(len(steps))]))


def run_config(spec: StudySpec, seeds: list[tuple[int, int, int]]) -> dict[str, Any]:
    """Train the effective ``spec`` on every ``(seed_init, seed_order, seed_split)``.

    Returns ``{"runs": [one dict per seed tuple, in the given order], "curves": {"steps": [...],
    "<split>_<metric>": [[per step] per run]}, "n_eval": {...}}``.
    """
    root = spec.seeds.root
    cfg = engine_config(spec)
    runs: list[dict[str, Any]] = [None] * len(seeds)  # type: ignore[list-item]
    curves: dict[str, list] = {}
    by_split: dict[int, list[int]] = {}
    for k, (_, _, s) in enumerate(seeds):
        by_split.setdefault(s, []).append(k)
    with threadpool_limits(limits=1):   # one BLAS thread: no oversubscription, same sums whatever n_jobs
        for s, idx in sorted(by_split.items()):
            split, arch, W0 = _networks(spec, s, [seeds[k][0] for k in idx], cfg.dtype)
            t0 = time.perf_counter()
            res = train(W0, split, arch, stored_steps(cfg, len(split.y_train)), lr=spec.train.lr,
                        order_seeds=[seeds[k][1] for k in idx], root=root)
            per_run = (time.perf_counter() - t0) / len(idx)
            keep = _thin(len(res.steps))
            curves["steps"] = res.steps[keep].tolist()
            for j, k in enumerate(idx):
                rec = {"seed_init": seeds[k][0], "seed_order": seeds[k][1], "seed_split": seeds[k][2]}
                for name, arr in res.diagnostics.items():
                    v = arr[j]
                    rec[name] = bool(v) if arr.dtype == bool else int(v) if name == "steps" else float(v)
                rec.update(n_train=len(split.y_train), n_val=len(split.y_val), n_test=len(split.y_test),
                           stagnation_tol=cfg.stagnation_tol, duration_s=per_run)
                runs[k] = rec
                for name, arr in res.curves.items():
                    curves.setdefault(name, [None] * len(seeds))[k] = arr[keep, j].tolist()
    return {"runs": runs, "curves": curves}


def warm_up(spec: StudySpec) -> float:
    """Prepare a fresh worker process for ``spec``'s trials while the parent opens the study: import
    what they import, load the data and its first split, and load the compiled training loop (a two-step
    run of one network). Returns the seconds it took. Nothing here changes any result."""
    t0 = time.perf_counter()
    cfg = engine_config(spec)
    with threadpool_limits(limits=1):
        split, arch, W0 = _networks(spec, spec.seeds.tuples()[0][2], [0], cfg.dtype)
        tiny = dataclasses.replace(cfg, iterations=2, epochs=None)
        train(W0, split, arch, tiny, lr=spec.train.lr, order_seeds=[0], root=spec.seeds.root)
    return time.perf_counter() - t0


def prefetch_export_imports(delay: float | None = None) -> None:
    """Import pandas, which only the final export needs, in a background thread ``delay`` seconds
    from now (default ``PANDAS_DELAY_S``), while the workers train, rather than at the end while
    they sit idle. Nothing here changes any result; a study shorter than the delay just imports it
    at the export, as before."""
    timer = threading.Timer(PANDAS_DELAY_S if delay is None else delay, importlib.import_module, ("pandas",))
    timer.daemon = True
    timer.start()


def estimate_cost(spec: StudySpec, n_seeds: int) -> float:
    """Relative training cost of a configuration on ``n_seeds`` seeds (arbitrary units, for ordering
    only; the data set is not loaded): steps x (samples per step x (6 x weights + 20 x hidden units)
    + a fixed per-step cost). Dispatching the costliest trials first balances the workers (longest
    processing time first)."""
    n, d = shape_hint(spec.data.dataset, spec.data.n_samples, spec.data.features)
    t = spec.train
    rows = min(t.batch_size or n, n)
    if t.epochs is not None:
        steps = t.epochs * -(-n // rows)
    else:
        steps = t.iterations if t.iterations is not None else 1000
    dims = [d, *spec.model.hidden, 1]
    weights = sum((a + 1) * b for a, b in zip(dims[:-1], dims[1:]))
    return float(n_seeds * steps * (rows * (6 * weights + 20 * sum(spec.model.hidden)) + 5000))


def aggregate(values: list[float], how: str, direction: str) -> float:
    """A trial's value for the sampler from its seeds' objective values (non-finite ones excluded).

    ``lcb``: mean - 1.96 standard errors when maximising, mean + 1.96 SE when minimising (a bound that
    is pessimistic either way). No finite value at all: the worst possible value (+-inf).
    """
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if x.size == 0:
        return float("-inf") if direction == "maximize" else float("inf")
    if how == "mean":
        return float(x.mean())
    if how == "median":
        return float(np.median(x))
    if how == "iqm":
        from scipy.stats import trim_mean
        return float(trim_mean(x, 0.25))
    se = x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else 0.0
    return float(x.mean() - 1.96 * se if direction == "maximize" else x.mean() + 1.96 * se)
