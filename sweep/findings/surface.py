"""Findings from the fitted surface of a sampled study: the best region in the language of ranges
("lr from 0.0012 to 0.0065 with hidden=8")."""
from __future__ import annotations

import itertools

import numpy as np

from ..analysis.kinds import format_value
from .base import Finding
from .words import ci, val

GRID_POINTS = {1: 80, 2: 30, 3: 12}


def support(s, factor: str, fixed: dict) -> tuple[float, float] | None:
    """The range of a smooth ``factor`` over the configurations that share each of the ``fixed``
    categorical levels (the intersection over those factors), or None when it is empty: the surface
    is read only where the study has data."""
    x = np.asarray(s.values[factor], dtype=float)
    lo, hi = float(x.min()), float(x.max())
    for f, level in fixed.items():
        sel = np.asarray(s.values[f] == level, dtype=bool)
        if not sel.any():
            return None
        lo, hi = max(lo, float(x[sel].min())), min(hi, float(x[sel].max()))
    return (lo, hi) if lo <= hi else None


def grid(s) -> dict[str, np.ndarray]:
    """Every combination of each categorical factor's levels with a grid over each smooth factor
    (sampling scale) inside the range the study covered for those levels (:func:`support`):
    factor -> ``(G,)``."""
    n_smooth = sum(m.smooth for m in s.mains)
    k = GRID_POINTS.get(n_smooth, 8)
    cats = [f for f, m in zip(s.names, s.mains) if not m.smooth]
    combos = itertools.product(*[list(s.mains[s.names.index(f)].levels) for f in cats])
    points = []
    for combo in combos:
        fixed = dict(zip(cats, combo))
        axes = []
        for f, m in zip(s.names, s.mains):
            if not m.smooth:
                axes.append([fixed[f]])
                continue
            rng = support(s, f, fixed)
            if rng is None:
                break
            a, b = (np.log10(rng[0]), np.log10(rng[1])) if m.log else rng
            u = np.linspace(a, b, k)
            axes.append(list(10 ** u if m.log else u))
        else:
            points += list(itertools.product(*axes))
    return {f: np.array([c[j] for c in points], dtype=object if not s.mains[j].smooth else float)
            for j, f in enumerate(s.names)}


def _bounded(a, x: float) -> float:
    return float(np.clip(x, 0.0, 1.0)) if a.is_accuracy else float(x)


def _contiguous(ok: np.ndarray, pos: int) -> tuple[int, int]:
    """The run of True values in ``ok`` around index ``pos``."""
    lo = hi = pos
    while lo > 0 and ok[lo - 1]:
        lo -= 1
    while hi < len(ok) - 1 and ok[hi + 1]:
        hi += 1
    return lo, hi


def best_region(a) -> Finding | None:
    """Where the fitted surface is reliably best: the grid point (inside the study's data) with the
    best lower bound of its 95% bootstrap interval (upper bound for a loss), its fitted mean with that
    interval, and the range of each continuous factor around it whose fitted mean is at least that
    bound."""
    fit = a.surface
    if fit is None or fit.beta.shape[0] < 2:
        return None
    s = fit.surface
    g = grid(s)
    if not len(g[s.names[0]]):
        return None
    pred = s.predict(g, fit.beta)                       # (G, 1 + B)
    sign = 1.0 if a.higher_is_better else -1.0
    lo, hi = np.percentile(pred[:, 1:], [2.5, 97.5], axis=1)
    bound = lo if sign > 0 else hi
    best = int(np.argmax(sign * bound))
    where = [f"{f} ≈ {format_value(g[f][best], 2)}" if m.smooth else f"{f}={g[f][best]}"
             for f, m in zip(s.names, s.mains)]
    text = (f"Where the fitted surface is reliably {'best' if sign > 0 else 'lowest'} (the best lower end of "
            f"a 95% bootstrap interval): {', '.join(where)}, fitted mean {a.metric} {val(a, pred[best, 0])} "
            f"({ci(_bounded(a, lo[best]), _bounded(a, hi[best]), as_pct=a.is_accuracy)}).")
    ranges = []
    for j, f in enumerate(s.names):
        if not s.mains[j].smooth:
            continue
        same = np.ones(len(pred), bool)
        for k, other in enumerate(s.names):
            if k != j:
                same &= g[other] == g[other][best]
        idx = np.flatnonzero(same)
        ok = sign * pred[idx, 0] >= sign * bound[best]
        a_, b_ = _contiguous(ok, int(np.flatnonzero(idx == best)[0]))
        ranges.append(f"{f} from {format_value(g[f][idx[a_]], 2)} to {format_value(g[f][idx[b_]], 2)}")
    if ranges:
        others = [w for w, m in zip(where, s.mains) if not m.smooth]
        text += (f" The fitted mean stays at least that good for {'; '.join(ranges)}"
                 + (f" (with {', '.join(others)})" if others else "") + ".")
    first_smooth = next(f for f, m in zip(s.names, s.mains) if m.smooth)
    return Finding(text, f"surface_{first_smooth}", "region", 8.9)


RULES = [best_region]
