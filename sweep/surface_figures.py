"""Figures for sampled studies: the outcome against a continuous factor on its sampling scale with
the fitted partial-dependence curve, the seed sd along the factor, a contour of the fitted mean over
two continuous factors, and the expected best against the number of trials. Same split as ``figures.py``: a pure ``prepare_*`` that
computes exactly what is drawn, and a draw function ``(data, *, ax) -> Axes``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from .analysis.sampled import SurfaceFit, strongest_categorical  # noqa: F401  (re-exported)
from .figures import _finish, _get_ax, _legend_outside, _no_data, _palette, _short_metric, metric_label

__all__ = ["prepare_partial_dependence", "partial_dependence", "prepare_seed_sd", "seed_sd_along",
           "prepare_contour", "contour", "expected_best", "selection_vs_confirmed"]

GRID = 80
MAX_DOTS = 4000         # runs drawn as dots in the partial-dependence figure
AVERAGE_OVER = 300      # configurations the partial dependence averages over (an even subset when more)


def _others(s) -> dict[str, np.ndarray]:
    """The configurations' factor values to average over (at most AVERAGE_OVER, evenly spaced)."""
    C = len(s.y)
    idx = np.arange(C) if C <= AVERAGE_OVER else np.linspace(0, C - 1, AVERAGE_OVER).round().astype(int)
    return {f: np.asarray(v)[idx] for f, v in s.values.items()}


def _axis_grid(fit: SurfaceFit, factor: str, n: int = GRID) -> np.ndarray:
    m = fit.surface.mains[fit.surface.names.index(factor)]
    u = np.linspace(m.lo, m.hi, n)
    return 10 ** u if m.log else u


def prepare_partial_dependence(fit: SurfaceFit, factor: str, color: str | None) -> pd.DataFrame:
    """The fitted mean along ``factor`` (grid over its observed range; for each level of ``color``
    the range that level covered), averaged over the configurations' values of the other factors,
    one curve per level of ``color`` (one curve when None): columns ``x, level, fit, lo, hi``
    (``lo``/``hi``: 95% bootstrap band)."""
    s = fit.surface
    levels = list(s.mains[s.names.index(color)].levels) if color else [None]
    base = _others(s)
    C = len(next(iter(base.values())))
    keys, rows = [], []
    for level in levels:
        xs = _axis_grid(fit, factor)
        if color:       # each curve only where the study has configurations of that level
            x_obs = np.asarray(s.values[factor], dtype=float)[np.asarray(s.values[color] == level, dtype=bool)]
            xs = xs[(xs >= x_obs.min() * (1 - 1e-9)) & (xs <= x_obs.max() * (1 + 1e-9))] if x_obs.size else xs[:0]
        for x in xs:
            values = dict(base)
            values[factor] = np.full(C, x)
            if color:
                values[color] = np.array([level] * C, dtype=object)
            rows.append(s.design(values).mean(axis=0))      # averaging the design rows = averaging the fits
            keys.append((x, "all" if level is None else str(level)))
    pred = np.array(rows) @ s.raw(fit.beta).T                # (G, 1 + B)
    if pred.shape[1] > 1:
        lo, hi = np.percentile(pred[:, 1:], [2.5, 97.5], axis=1)
    else:
        lo = hi = np.full(len(pred), np.nan)
    return pd.DataFrame({"x": [k[0] for k in keys], "level": [k[1] for k in keys], "fit": pred[:, 0],
                         "lo": lo, "hi": hi})


def partial_dependence(runs: pd.DataFrame, fit: SurfaceFit, factor: str, metric: str, color: str | None, *,
                       log: bool, ax: Axes | None = None) -> Axes:
    """Every run as a faint point, configuration means as open circles, and the fitted partial
    dependence with its 95% band, coloured by ``color``; log x axis for a log-scale factor."""
    ax = _get_ax(ax)
    title = f"{_short_metric(metric)} against {factor}"
    d = runs[[factor, metric, "config"] + ([color] if color else [])].dropna(subset=[metric])
    if d.empty:
        return _no_data(ax, title)
    pd_ = prepare_partial_dependence(fit, factor, color)
    levels = list(dict.fromkeys(pd_["level"]))
    pal = _palette(len(levels))
    means = d.groupby("config", sort=False).agg(x=(factor, "first"), y=(metric, "mean"),
                                                 **({"c": (color, "first")} if color else {}))
    lo, hi = float(d[metric].min()), float(d[metric].max())
    if len(d) > MAX_DOTS:            # an even subset of the runs as dots; every configuration mean is drawn
        d = d.iloc[np.linspace(0, len(d) - 1, MAX_DOTS).round().astype(int)]
    handles = []
    for k, level in enumerate(levels):
        sel = (d[color].astype(str) == level) if color else np.ones(len(d), bool)
        msel = (means["c"].astype(str) == level) if color else np.ones(len(means), bool)
        ax.scatter(d.loc[sel, factor], d.loc[sel, metric], s=5, color=pal[k], alpha=0.18, linewidths=0)
        ax.scatter(means.loc[msel, "x"], means.loc[msel, "y"], s=22, facecolors="none", edgecolors=pal[k],
                   linewidths=0.9, zorder=3)
        c = pd_[pd_["level"] == level]
        ax.fill_between(c["x"], c["lo"], c["hi"], color=pal[k], alpha=0.2, linewidth=0)
        (line,) = ax.plot(c["x"], c["fit"], color=pal[k], linewidth=1.8, zorder=4)
        handles.append(line)
    if log:
        ax.set_xscale("log")
    pad = 0.05 * (hi - lo) if hi > lo else 0.05
    ax.set_ylim(lo - pad, hi + pad)  # the runs' range: a band where data are sparse does not flatten them
    ax.grid(True)
    ax.set_axisbelow(True)
    if color:
        _legend_outside(ax, handles, levels, title=color)
    return _finish(ax, f"{title}: runs (dots), configuration means (circles), fitted partial dependence "
                       f"with 95% band", factor + (" (log scale)" if log else ""), metric_label(metric))


def prepare_seed_sd(runs: pd.DataFrame, variance: pd.DataFrame, factor: str, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per configuration: ``x`` (the factor) and ``sd`` (seed sd of the metric over its runs); per
    range of the factor (the conditional ``seed sd`` rows of ``variance``): ``scope, sd, lo, hi``."""
    per = runs.groupby("config", sort=False).agg(x=(factor, "first"), sd=(metric, "std")).dropna()
    rng = variance[(variance["source"] == "seed sd") & (variance["scope"] != "global")]
    return per, rng[["scope", "share", "ci_low", "ci_high"]].rename(columns={"share": "sd", "ci_low": "lo",
                                                                           "ci_high": "hi"})


def _range_bounds(scope: str, xmin: float, xmax: float) -> tuple[float, float]:
    if " ≤ " in scope and " < " in scope:
        lo, rest = scope.split(" ≤ ", 1)
        return float(lo), float(rest.split(" < ", 1)[1])
    if " < " in scope:
        return xmin, float(scope.split(" < ", 1)[1])
    if " ≥ " in scope:
        return float(scope.split(" ≥ ", 1)[1]), xmax
    return xmin, xmax


def seed_sd_along(runs: pd.DataFrame, variance: pd.DataFrame, factor: str, metric: str, *, log: bool,
                  ax: Axes | None = None) -> Axes:
    """Where along the factor the seed matters: each configuration's seed sd (points) and the pooled
    seed sd of each range with its 95% CI (bars spanning the range)."""
    ax = _get_ax(ax)
    per, ranges = prepare_seed_sd(runs, variance, factor, metric)
    title = f"Seed sd of {_short_metric(metric).lower()} along {factor}"
    if per.empty:
        return _no_data(ax, title)
    ax.scatter(per["x"], per["sd"], s=14, color="0.35", alpha=0.7, linewidths=0, label="one configuration")
    xmin, xmax = float(per["x"].min()), float(per["x"].max())
    for _, r in ranges.iterrows():
        try:
            a, b = _range_bounds(str(r["scope"]), xmin, xmax)
        except ValueError:
            continue
        ax.hlines(r["sd"], a, b, color="C3", linewidth=2.2, zorder=4)
        mid = np.sqrt(a * b) if log and a > 0 else (a + b) / 2
        if np.isfinite(r["lo"]) and np.isfinite(r["hi"]):
            ax.vlines(mid, r["lo"], r["hi"], color="C3", linewidth=1.0, zorder=4)
    if log:
        ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.grid(True)
    ax.set_axisbelow(True)
    return _finish(ax, f"{title}: configurations (dots), pooled per range with 95% CI (red)",
                   factor + (" (log scale)" if log else ""), f"seed sd of {metric}")


def prepare_contour(fit: SurfaceFit, fx: str, fy: str, n: int = 40) -> pd.DataFrame:
    """The fitted mean on an ``n x n`` grid of two continuous factors, averaged over the
    configurations' values of the others: columns ``x, y, fit``."""
    s = fit.surface
    xs, ys = _axis_grid(fit, fx, n), _axis_grid(fit, fy, n)
    base = _others(s)
    C = len(next(iter(base.values())))
    rows, keys = [], []
    for x in xs:
        for y in ys:
            values = dict(base)
            values[fx], values[fy] = np.full(C, x), np.full(C, y)
            rows.append(s.design(values).mean(axis=0))
            keys.append((x, y))
    fitted = np.array(rows) @ s.raw()
    return pd.DataFrame({"x": [k[0] for k in keys], "y": [k[1] for k in keys], "fit": fitted})


def contour(runs: pd.DataFrame, fit: SurfaceFit, fx: str, fy: str, metric: str, *, logx: bool, logy: bool,
            ax: Axes | None = None) -> Axes:
    """Filled contours of the fitted mean over two continuous factors, configurations overlaid."""
    ax = _get_ax(ax)
    d = prepare_contour(fit, fx, fy)
    nx = d["x"].nunique()
    X = d["x"].to_numpy().reshape(nx, -1)
    Yg = d["y"].to_numpy().reshape(nx, -1)
    Z = d["fit"].to_numpy().reshape(nx, -1)
    y = runs[metric].dropna()
    if len(y):              # a fitted mean beyond every run is extrapolation: shown at the runs' range
        Z = np.clip(Z, float(y.min()), float(y.max()))
    cs = ax.contourf(X, Yg, Z, levels=12, cmap="viridis")
    ax.figure.colorbar(cs, ax=ax, label=f"fitted {metric}")
    first = runs.drop_duplicates("config")
    ax.scatter(first[fx], first[fy], s=10, color="white", edgecolors="0.2", linewidths=0.5, zorder=3)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    return _finish(ax, f"Fitted {_short_metric(metric).lower()} over {fx} and {fy} (others averaged, "
                       f"clipped to the runs' range); configurations as dots",
                   fx + (" (log scale)" if logx else ""), fy + (" (log scale)" if logy else ""))


def expected_best(budget: pd.DataFrame, metric: str, sampler: str, *, ax: Axes | None = None) -> Axes:
    """Expected best of ``n`` trials against ``n`` with its 95% bootstrap band (``budget.expected_best``)."""
    ax = _get_ax(ax)
    title = f"Expected best {_short_metric(metric).lower()} against the number of {sampler} trials"
    if budget is None or budget.empty:
        return _no_data(ax, title)
    ax.fill_between(budget["n"], budget["ci_low"], budget["ci_high"], color="C0", alpha=0.2, linewidth=0,
                    label="95% bootstrap band")
    ax.plot(budget["n"], budget["expected"], color="C0", linewidth=1.8, label="expected best of n")
    ax.grid(True)
    ax.set_axisbelow(True)
    ax.legend(loc="lower right")
    return _finish(ax, f"{title} (Dodge et al. 2019)", "number of trials n", metric_label(metric))


def selection_vs_confirmed(table: pd.DataFrame, metric: str, *, ax: Axes | None = None) -> Axes:
    """Each confirmed configuration: its mean on the study's seeds and on fresh seeds, 95% CIs."""
    ax = _get_ax(ax)
    title = f"{_short_metric(metric)}: at selection and on fresh seeds"
    if table is None or table.empty:
        return _no_data(ax, title)
    y = np.arange(len(table))[::-1]
    for dy, (pre, color, label) in ((0.12, ("selection", "0.45", "study's seeds (selection)")),
                                    (-0.12, ("confirmed", "C0", "fresh seeds (confirmed)"))):
        m = table[f"{pre}_mean"]
        err = np.vstack([m - table[f"{pre}_ci_low"], table[f"{pre}_ci_high"] - m]).clip(0)
        ax.errorbar(m, y + dy, xerr=err, fmt="o", color=color, capsize=3, label=label)
    ax.set_yticks(y)
    ax.set_yticklabels(table["config"], fontsize=7)
    ax.grid(axis="x")
    ax.set_axisbelow(True)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.08), ncol=2, frameon=False)
    return _finish(ax, title, metric_label(metric), "")
