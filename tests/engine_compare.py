"""Helpers shared by the fused-vs-numpy tests: run both paths, compare everything they return."""
import numpy as np

from sweep.engine import train

CURVE_TOL, WEIGHT_TOL = 1e-10, 1e-9


def _both(data, arch, cfg, W0, lr, **kw):
    ref = train(W0, data, arch, cfg, lr=lr, engine="numpy", **kw)
    got = train(W0, data, arch, cfg, lr=lr, engine="fused", **kw)
    return ref, got


def _max_abs(a, b):
    """Largest |a - b| / max(1, |a|) where both are finite (absolute below 1, relative above: diverged
    runs reach 1e6); NaN/inf must sit in the same places with the same values."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    fa, fb = np.isfinite(a), np.isfinite(b)
    assert np.array_equal(fa, fb), "non-finite entries differ"
    assert np.array_equal(a[~fa], b[~fb], equal_nan=True), "non-finite values differ"
    return float((np.abs(a[fa] - b[fb]) / np.maximum(1.0, np.abs(a[fa]))).max(initial=0.0))


def _compare(ref, got, curve_tol=CURVE_TOL, weight_tol=WEIGHT_TOL):
    """Max differences (objective, curves, weights, diagnostics); asserts shapes, steps and flags."""
    assert np.array_equal(ref.steps, got.steps) and np.array_equal(ref.objective_steps, got.objective_steps)
    assert [p.shape for p in ref.params] == [p.shape for p in got.params]
    assert all(p.dtype == q.dtype for p, q in zip(ref.params, got.params))
    d_obj = _max_abs(ref.objective, got.objective)
    d_curves = max(_max_abs(ref.curves[k], got.curves[k]) for k in ref.curves)
    d_w = max(_max_abs(p, q) for p, q in zip(ref.params, got.params))
    assert set(ref.diagnostics) == set(got.diagnostics)
    d_diag = 0.0
    for key, val in ref.diagnostics.items():
        other = got.diagnostics[key]
        if val.dtype == bool or key in ("diverged_step", "steps", "stagnation_step", "frozen_step"):
            assert np.array_equal(val, other, equal_nan=True), (key, val, other)
        else:
            d_diag = max(d_diag, _max_abs(val, other))
    assert d_obj <= curve_tol and d_curves <= curve_tol, (d_obj, d_curves)
    assert d_w <= weight_tol, d_w
    assert d_diag <= curve_tol, d_diag
    return d_obj, d_curves, d_w, d_diag
