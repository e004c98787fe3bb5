"""Figures for a seed-variance study: one function per figure.

Every figure is split in two:

* a pure ``prepare_*`` function that turns the input table into exactly the numbers drawn (a
  DataFrame, testable without pixels), and
* a drawing function ``name(data..., *, ax) -> Axes`` that makes seaborn axes-level calls on the axes
  it is given and returns them.

Nothing here touches pyplot's global state: :func:`new_figure` builds a ``matplotlib.figure.Figure``
directly (Agg canvas, headless-safe) and :func:`save` writes it as a PNG. Empty input never raises in a
drawing function: it draws an axes that says "no data".

Inputs (produced by other modules, formats fixed):

* runs: one row per run with the factor columns and the metric (``runs.csv`` or ``Runs.df``);
* curves: long ``run_id, step, split, loss, acc`` joined to runs on ``run_id``;
* variance: ``scope, source, share, ci_low, ci_high, method`` (``note`` optional);
* halfwidth: ``config, k, halfwidth, kind`` (``kind`` in ``normal``/``bootstrap``);
* failures: ``config`` plus share columns among :data:`FAILURE_MODES`.
"""
from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, PercentFormatter

from .analysis.diagnose import FAILURE_MODES

__all__ = [
    "DPI", "FAILURE_MODES", "SHARE_METHODS",
    "new_figure", "save", "metric_label",
    "prepare_outcome", "outcome_by_factor",
    "prepare_heatmap", "heatmap",
    "ecdf_by_level",
    "prepare_curves", "summarize_curves", "learning_curves",
    "prepare_variance_shares", "variance_shares",
    "prepare_halfwidth", "halfwidth_vs_seeds",
    "prepare_failures", "failure_modes",
]

DPI = 110
PALETTE = "colorblind"
SHARE_METHODS = ("eta2", "typeII", "component", "fanova")
METHOD_LABELS = {
    "eta2": "observed share (η²)",
    "typeII": "Type II SS share (unbalanced)",
    "component": "variance component",
    "fanova": "component of the fitted surface",
}
FAILURE_LABELS = {
    "stagnated": "stagnated (loss plateau)",
    "diverged": "diverged",
    "saturated": "saturated units",
    "single_class": "predicts one class",
    "at_untrained": "accuracy at untrained level",
}
MAX_POINTS = 3000       # runs drawn as points in a violin figure (evenly spaced over the runs); violins use all
MAX_RUN_LINES = 60      # faint per-run lines per level in a learning-curve figure (the rest: in the band)
_SPLITS = {"train": "training", "val": "validation", "test": "test"}
_QUANTITIES = {"acc": "accuracy", "loss": "loss (cross-entropy)"}
_RC = {
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.title_fontsize": 8,
    "legend.frameon": False,
    "grid.linewidth": 0.6,
    "grid.alpha": 0.35,
}


# ------------------------------------------------------------------------------------------ figure I/O
def new_figure(width: float = 6.4, height: float = 4.0, nrows: int = 1, ncols: int = 1):
    """A ``(Figure, Axes)`` pair (``Axes`` array when ``nrows * ncols > 1``) on an Agg canvas, with
    constrained layout and the module's style; never touches pyplot."""
    with mpl.rc_context(_RC):
        fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(nrows, ncols, squeeze=True)
    return fig, axes


def save(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG (tight bounding box, dpi 110); creates parent folders; returns the path."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI, bbox_inches="tight", pad_inches=0.05,
                metadata={"Software": None})
    return path


# ------------------------------------------------------------------------------------------ helpers
def metric_label(metric: str) -> str:
    """A readable axis label for a metric column: ``val_acc`` -> ``validation accuracy (val_acc)``."""
    parts = str(metric).split("_", 1)
    if len(parts) == 2 and parts[0] in _SPLITS and parts[1] in _QUANTITIES:
        return f"{_SPLITS[parts[0]]} {_QUANTITIES[parts[1]]} ({metric})"
    return str(metric)


def _short_metric(metric: str) -> str:
    """``val_acc`` -> ``Validation accuracy`` (for titles)."""
    parts = str(metric).split("_", 1)
    if len(parts) == 2 and parts[0] in _SPLITS and parts[1] in _QUANTITIES:
        text = f"{_SPLITS[parts[0]]} {_QUANTITIES[parts[1]].split(' (')[0]}"
        return text[0].upper() + text[1:]
    return str(metric)


_NUM = re.compile(r"([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)")


def _natural_key(label) -> tuple:
    """Sort key that orders numbers inside labels by value (``lr=0.0003`` before ``lr=0.003``)."""
    out = []
    for part in _NUM.split(str(label)):
        if not part:
            continue
        try:
            out.append((0, float(part), ""))
        except ValueError:
            out.append((1, 0.0, part))
    return tuple(out)


def _fmt_level(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:g}"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return str(v)


def _levels(values: pd.Series) -> pd.Categorical:
    """String labels of a factor column as an ordered categorical: numeric factors in value order,
    others in natural label order; missing values become ``n/a`` (last)."""
    if isinstance(values.dtype, pd.CategoricalDtype) and values.cat.ordered:     # e.g. ranges of a factor
        cats = [str(c) for c in values.cat.categories]
        out = values.astype(str).where(values.notna(), "n/a")
        extra = ["n/a"] if values.isna().any() else []
        return pd.Categorical(out, categories=cats + extra, ordered=True)
    present = values.dropna()
    uniq = list(pd.unique(present))
    if pd.api.types.is_bool_dtype(present) or pd.api.types.is_numeric_dtype(present):
        uniq.sort()
    else:
        uniq.sort(key=_natural_key)
    labels = [_fmt_level(v) for v in uniq]
    if len(set(labels)) < len(labels):          # formatting merged two values: use the full repr
        labels = [str(v) for v in uniq]
    mapping = dict(zip(uniq, labels))
    out = [mapping[v] if not _isna(v) else "n/a" for v in values]
    cats = labels + (["n/a"] if len(present) < len(values) else [])
    return pd.Categorical(out, categories=cats, ordered=True)


def _isna(v) -> bool:
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def _palette(n: int):
    """Colour-blind-safe colours: seaborn's ``colorblind`` up to 10, ``viridis`` beyond."""
    return sns.color_palette(PALETTE if n <= 10 else "viridis", max(n, 1))


def _get_ax(ax: Axes | None) -> Axes:
    return new_figure()[1] if ax is None else ax


def _no_data(ax: Axes, title: str, message: str = "no data") -> Axes:
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", fontsize=11, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    return ax


def _finish(ax: Axes, title: str, xlabel: str, ylabel: str) -> Axes:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(xlabel, fontsize=9)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.tick_params(labelsize=8)
    return ax


def _tidy_categorical(ax: Axes, axis: str = "x", max_labels: int = 40) -> None:
    """Make categorical tick labels legible: rotate long or many labels, shrink and thin out very many."""
    get_ticks = ax.get_xticks if axis == "x" else ax.get_yticks
    ticks = list(get_ticks())
    labels = [t.get_text() for t in (ax.get_xticklabels() if axis == "x" else ax.get_yticklabels())]
    n = len(labels)
    if n == 0:
        return
    if n > max_labels:                          # keep every step-th label
        step = math.ceil(n / max_labels)
        ticks, labels = ticks[::step], labels[::step]
    size = 8 if n <= 24 else 7 if n <= 40 else 6
    if axis == "x":
        longest = max(len(s) for s in labels)
        ax.set_xticks(ticks)
        if n > 12 or (n > 4 and longest > 20):
            ax.set_xticklabels(labels, rotation=90, fontsize=size)
        elif longest * n > 60 or longest > 12:
            ax.set_xticklabels(labels, rotation=35, ha="right", rotation_mode="anchor", fontsize=size)
        else:
            ax.set_xticklabels(labels, fontsize=size)
    else:
        ax.set_yticks(ticks)
        ax.set_yticklabels(labels, rotation=0, fontsize=size)


def _legend_outside(ax: Axes, handles, labels, title: str | None = None, ncol: int = 1):
    """Legend right of the axes; below them (two columns) when labels are long."""
    n = len(handles)
    size = 8 if n <= 15 else 6
    if max((len(str(t)) for t in labels), default=0) > 28:
        return ax.legend(handles, labels, title=title, loc="upper center", bbox_to_anchor=(0.5, -0.18),
                         borderaxespad=0.0, frameon=False, ncol=2 if n > 1 else 1, fontsize=size,
                         title_fontsize=8)
    return ax.legend(handles, labels, title=title, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                     borderaxespad=0.0, frameon=False, ncol=ncol, fontsize=size, title_fontsize=8)


def _require(df: pd.DataFrame, cols: Sequence[str], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {', '.join(map(repr, missing))}; "
                         f"columns: {', '.join(map(str, df.columns))}")


# ------------------------------------------------------------------------------------------ 1. outcome
def prepare_outcome(df: pd.DataFrame, factor: str | None, metric: str) -> pd.DataFrame:
    """One row per run with a finite metric: columns ``level`` (ordered categorical of the factor's
    labels; only levels that keep a value) and ``value``. ``factor=None`` puts every run in one level
    ``all runs``. ``.attrs["dropped"]`` counts runs whose metric is missing or not finite."""
    _require(df, [metric] + ([factor] if factor else []), "runs table")
    values = pd.to_numeric(df[metric], errors="coerce").to_numpy(dtype=float)
    level = (_levels(df[factor]) if factor else
             pd.Categorical(["all runs"] * len(df), categories=["all runs"], ordered=True))
    out = pd.DataFrame({"level": level, "value": values})
    keep = np.isfinite(values)
    out = out[keep].reset_index(drop=True)
    out["level"] = out["level"].cat.remove_unused_categories()
    out.attrs["dropped"] = int((~keep).sum())
    return out


def _excluded_note(dropped: int) -> str:
    return f"; {dropped} run{'s' if dropped != 1 else ''} without a value excluded" if dropped else ""


def outcome_by_factor(df: pd.DataFrame, factor: str | None, metric: str, *, ax: Axes | None = None) -> Axes:
    """Distribution of ``metric`` per level of ``factor``: light violins (cut at the data range, no
    inner marks) and every run as a jittered point."""
    ax = _get_ax(ax)
    d = prepare_outcome(df, factor, metric)
    name = factor or "all runs"
    title = f"{_short_metric(metric)} by {name}"
    if d.empty:
        return _no_data(ax, title)
    order = list(d["level"].cat.categories)
    pal = _palette(len(order))
    n_before = len(ax.collections)
    sns.violinplot(data=d, x="level", y="value", hue="level", order=order, hue_order=order,
                   palette=pal, legend=False, dodge=False, cut=0, inner=None, density_norm="width",
                   linewidth=0.8, saturation=1.0, ax=ax)
    for coll in ax.collections[n_before:]:      # light fill, full-colour outline
        coll.set_alpha(None)
        fc = coll.get_facecolor()
        if len(fc):
            fc = fc.copy()
            fc[:, 3] = 0.35
            coll.set_facecolor(fc)
    n_violins = len(ax.collections)
    size = 3.0 if len(d) <= 400 else 2.0
    pts = d if len(d) <= MAX_POINTS else d.iloc[np.linspace(0, len(d) - 1, MAX_POINTS).round().astype(int)]
    sns.stripplot(data=pts, x="level", y="value", order=order, color="0.15", size=size, alpha=0.5,
                  jitter=0.18, linewidth=0, dodge=False, ax=ax)
    for coll in ax.collections[n_violins:]:
        coll.set_zorder(3)
    ax.grid(axis="y")
    ax.set_axisbelow(True)
    _tidy_categorical(ax, "x")
    n_levels = len(order)
    shown = "" if len(pts) == len(d) else f", {len(pts)} of them as points"
    return _finish(ax, f"{title} ({len(d)} runs{shown}, {n_levels} level{'s' if n_levels != 1 else ''}"
                       f"{_excluded_note(d.attrs['dropped'])})",
                   name if factor else "", metric_label(metric))


# ------------------------------------------------------------------------------------------ 2. heatmap
def _config_key(df: pd.DataFrame, factors: Sequence[str] | None) -> list[str] | None:
    if factors:
        return list(factors)
    for c in ("config", "config_id"):
        if c in df.columns:
            return [c]
    return None


def prepare_heatmap(df: pd.DataFrame, row_factor: str, col_factor: str, metric: str, stat: str = "mean",
                    factors: Sequence[str] | None = None) -> pd.DataFrame:
    """Pivot table (index: ``row_factor`` levels, columns: ``col_factor`` levels, ordered) of:

    * ``stat="mean"``: the mean of ``metric`` over the configurations in the cell, each configuration
      first averaged over its seeds (so other factors' levels weigh equally; equal to the plain mean
      of the cell's runs in a balanced design);
    * ``stat="sd"``: the seed sd (ddof=1) within each configuration, averaged over the configurations
      in the cell (configurations with one run have no sd and are left out).

    A configuration is identified by ``factors`` if given, else the ``config`` (``Runs.df``) or
    ``config_id`` (``runs.csv``) column, else by the cell alone. Runs without a finite metric are
    dropped; a cell without data is NaN."""
    if stat not in ("mean", "sd"):
        raise ValueError(f"stat must be 'mean' or 'sd', not {stat!r}")
    if row_factor == col_factor:
        raise ValueError("row_factor and col_factor must differ")
    _require(df, [row_factor, col_factor, metric], "runs table")
    key = _config_key(df, factors)
    d = pd.DataFrame({
        "row": _levels(df[row_factor]),
        "col": _levels(df[col_factor]),
        "value": pd.to_numeric(df[metric], errors="coerce").to_numpy(dtype=float),
    })
    if key:
        cfg = df[key].astype(str).agg("|".join, axis=1) if len(key) > 1 else df[key[0]].astype(str)
        d["cfg"] = cfg.to_numpy()
    else:
        d["cfg"] = "cell"
    d = d[np.isfinite(d["value"])]
    rows = [c for c in d["row"].cat.categories if (d["row"] == c).any()]
    cols = [c for c in d["col"].cat.categories if (d["col"] == c).any()]
    if d.empty:
        return pd.DataFrame(index=pd.Index([], name=row_factor), columns=pd.Index([], name=col_factor),
                            dtype=float)
    per_cfg = d.groupby(["row", "col", "cfg"], observed=True)["value"]
    per_cfg = per_cfg.mean() if stat == "mean" else per_cfg.std(ddof=1)
    cell = per_cfg.groupby(level=["row", "col"], observed=True).mean()     # NaN sds skipped
    table = cell.unstack("col").reindex(index=rows, columns=cols).astype(float)
    table.index = pd.Index([str(r) for r in table.index], name=row_factor)
    table.columns = pd.Index([str(c) for c in table.columns], name=col_factor)
    return table


def heatmap(df: pd.DataFrame, row_factor: str, col_factor: str, metric: str, stat: str = "mean", *,
            ax: Axes | None = None, factors: Sequence[str] | None = None) -> Axes:
    """Annotated heatmap of the mean (viridis) or the seed sd (rocket_r: darker = noisier) of ``metric``
    for each (``row_factor``, ``col_factor``) cell, averaged over the other factors."""
    ax = _get_ax(ax)
    table = prepare_heatmap(df, row_factor, col_factor, metric, stat, factors)
    what = "Mean" if stat == "mean" else "Seed sd of"
    title = f"{what} {_short_metric(metric).lower()} by {row_factor} × {col_factor}"
    if table.empty or not np.isfinite(table.to_numpy(dtype=float)).any():
        return _no_data(ax, title)
    n_cells = table.size
    annot = n_cells <= 400
    annot_size = 9 if n_cells <= 30 else 7 if n_cells <= 100 else 5
    cbar_label = (f"mean {metric}" if stat == "mean" else f"sd of {metric} over seeds")
    sns.heatmap(table, annot=annot, fmt=".3f", annot_kws={"fontsize": annot_size},
                cmap="viridis" if stat == "mean" else "rocket_r", linewidths=0.5, linecolor="white",
                cbar_kws={"label": cbar_label}, square=False, ax=ax)
    ax.grid(False)
    cbar = ax.collections[0].colorbar if ax.collections else None
    if cbar is not None:
        cbar.ax.tick_params(labelsize=8)
        cbar.ax.yaxis.label.set_size(8)
    _tidy_categorical(ax, "x")
    _tidy_categorical(ax, "y")
    sub = ("seeds averaged within each configuration, then over the other factors" if stat == "mean"
           else "sd over seeds within each configuration, averaged over the other factors")
    return _finish(ax, f"{title}\n({sub})", col_factor, row_factor)


# ------------------------------------------------------------------------------------------ 3. ECDF
def ecdf_by_level(df: pd.DataFrame, factor: str | None, metric: str, *, ax: Axes | None = None) -> Axes:
    """Empirical CDF of ``metric`` for each level of ``factor`` (data: :func:`prepare_outcome`)."""
    ax = _get_ax(ax)
    d = prepare_outcome(df, factor, metric)
    name = factor or "all runs"
    title = f"Empirical CDF of {_short_metric(metric).lower()} by {name}"
    if d.empty:
        return _no_data(ax, title)
    order = list(d["level"].cat.categories)
    pal = dict(zip(order, _palette(len(order))))
    sns.ecdfplot(data=d, x="value", hue="level", hue_order=order, palette=pal, linewidth=1.6,
                 legend=False, ax=ax)
    counts = d["level"].value_counts()
    handles = [Line2D([], [], color=pal[lv], lw=1.6) for lv in order]
    labels = [f"{lv} (n={counts[lv]})" for lv in order]
    _legend_outside(ax, handles, labels, title=name, ncol=1 if len(order) <= 15 else 2)
    ax.set_ylim(0, 1.02)
    ax.grid(True)
    ax.set_axisbelow(True)
    dropped = d.attrs["dropped"]
    if dropped:
        title += f" ({dropped} run{'s' if dropped != 1 else ''} without a value excluded)"
    return _finish(ax, title, metric_label(metric), "fraction of runs ≤ value")


# ------------------------------------------------------------------------------------------ 4. curves
def prepare_curves(curves: pd.DataFrame, runs: pd.DataFrame, factor: str | None, split: str = "train",
                   value: str = "loss") -> pd.DataFrame:
    """Long curves of one ``split`` and one ``value`` column joined to the runs' ``factor`` on
    ``run_id``: columns ``run_id, level, step, value`` (``level`` ordered categorical), sorted by level,
    run and step; rows without a finite value, and runs absent from ``runs``, are dropped."""
    _require(curves, ["run_id", "step", "split", value], "curves table")
    _require(runs, ["run_id"] + ([factor] if factor else []), "runs table")
    c = curves.loc[curves["split"] == split, ["run_id", "step", value]]
    r = runs[["run_id"] + ([factor] if factor else [])].drop_duplicates("run_id").copy()
    r["level"] = (_levels(r[factor]) if factor else
                  pd.Categorical(["all runs"] * len(r), categories=["all runs"], ordered=True))
    out = c.merge(r[["run_id", "level"]], on="run_id", how="inner")
    out = out.rename(columns={value: "value"})
    out["value"] = pd.to_numeric(out["value"], errors="coerce").astype(float)
    out["step"] = pd.to_numeric(out["step"], errors="coerce")
    out = out[np.isfinite(out["value"]) & np.isfinite(out["step"])]
    out["level"] = out["level"].cat.remove_unused_categories()
    out = out.sort_values(["level", "run_id", "step"], kind="stable").reset_index(drop=True)
    return out[["run_id", "level", "step", "value"]]


def summarize_curves(prepared: pd.DataFrame) -> pd.DataFrame:
    """Per level and step of :func:`prepare_curves` output: ``median, q25, q75, n`` over runs (the
    numbers the median line and the 25–75% band show)."""
    g = prepared.groupby(["level", "step"], observed=True)["value"]
    out = pd.DataFrame({"median": g.median(), "q25": g.quantile(0.25), "q75": g.quantile(0.75),
                        "n": g.size()})
    return out.reset_index()


def _step_scale(steps: np.ndarray) -> str:
    """``symlog`` (step 0 present) or ``log`` when the positive steps span two decades or more, else
    ``linear``."""
    pos = steps[steps > 0]
    if len(pos) and pos.max() / pos.min() >= 100:
        return "symlog" if (steps <= 0).any() else "log"
    return "linear"


def learning_curves(curves: pd.DataFrame, runs: pd.DataFrame, factor: str | None, *, split: str = "train",
                    value: str = "loss", ax: Axes | None = None, xscale: str = "auto") -> Axes:
    """Per level of ``factor``: every run as a faint thin line, the median over runs as a thick line,
    and a band between the 25% and 75% quantiles over seeds (same colour). ``xscale="auto"`` puts the
    step axis on a symlog scale (linear between 0 and 1, so step 0 is kept) when the steps span two
    decades or more; ``"linear"``, ``"log"`` (drops step 0) or ``"symlog"`` force one."""
    ax = _get_ax(ax)
    split_name = _SPLITS.get(split, split)
    quantity = _QUANTITIES.get(value, value)
    name = factor or "all runs"
    title = f"{split_name[0].upper() + split_name[1:]} {quantity.split(' (')[0]} during training by {name}"
    d = prepare_curves(curves, runs, factor, split, value)
    if d.empty:
        return _no_data(ax, title)
    scale = _step_scale(d["step"].to_numpy(dtype=float)) if xscale == "auto" else xscale
    if scale == "log":
        d = d[d["step"] > 0]
        if d.empty:
            return _no_data(ax, title, "no data at step > 0")
    order = list(d["level"].cat.categories)
    pal = dict(zip(order, _palette(len(order))))
    per_level = d.groupby("level", observed=True)["run_id"].nunique()
    alpha = float(np.clip(1.6 / max(per_level.max(), 1), 0.08, 0.3))
    shown = 0
    for lv in order:                      # faint lines: every run, at most MAX_RUN_LINES per level
        sub = d[d["level"] == lv]
        ids = list(dict.fromkeys(sub["run_id"]))
        if len(ids) > MAX_RUN_LINES:
            ids = [ids[i] for i in np.linspace(0, len(ids) - 1, MAX_RUN_LINES).round().astype(int)]
        for rid, g in sub[sub["run_id"].isin(ids)].groupby("run_id", sort=False):
            ax.plot(g["step"], g["value"], color=pal[lv], linewidth=0.5, alpha=alpha)
        shown += len(ids)
    summ = summarize_curves(d)
    for lv in order:
        g = summ[summ["level"] == lv]
        ax.fill_between(g["step"], g["q25"], g["q75"], color=pal[lv], alpha=0.22, linewidth=0)
        ax.plot(g["step"], g["median"], color=pal[lv], linewidth=2.0)
    if scale == "symlog":
        ax.set_xscale("symlog", linthresh=1, linscale=0.4)
        ax.set_xlim(left=0)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        xlabel = "training step (symlog axis: linear from 0 to 1, log above)"
    elif scale == "log":
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        xlabel = "training step (log axis; step 0 not shown)"
    else:
        xlabel = "training step"
    if value == "acc":
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    handles = [Line2D([], [], color=pal[lv], lw=2.0) for lv in order]
    labels = [f"{lv} (median, n={per_level[lv]})" for lv in order]
    handles += [Patch(facecolor="0.55", alpha=0.35, linewidth=0), Line2D([], [], color="0.4", lw=0.5)]
    n_runs = int(per_level.sum())
    labels += ["25–75% quantiles over seeds",
               "individual runs" if shown == n_runs else f"individual runs ({shown} of {n_runs})"]
    _legend_outside(ax, handles, labels, title=name, ncol=1 if len(order) <= 15 else 2)
    ax.grid(True)
    ax.set_axisbelow(True)
    return _finish(ax, f"{title}\n(median over runs, band = 25–75% quantiles over seeds)", xlabel,
                   f"{split_name} {quantity}")


# ------------------------------------------------------------------------------------------ 5. variance
def prepare_variance_shares(variance: pd.DataFrame, scope: str = "global") -> pd.DataFrame:
    """Rows of ``variance`` in ``scope`` whose ``method`` is a share (:data:`SHARE_METHODS`) and whose
    share is finite: columns ``source, method, share, ci_low, ci_high`` (+ ``note`` if present),
    sources in input order, methods in :data:`SHARE_METHODS` order."""
    _require(variance, ["scope", "source", "share", "ci_low", "ci_high", "method"], "variance table")
    cols = ["source", "method", "share", "ci_low", "ci_high"] + (["note"] if "note" in variance.columns else [])
    d = variance.loc[(variance["scope"] == scope) & variance["method"].isin(SHARE_METHODS), cols].copy()
    for c in ("share", "ci_low", "ci_high"):
        d[c] = pd.to_numeric(d[c], errors="coerce").astype(float)
    d = d[np.isfinite(d["share"])]
    d["source"] = d["source"].astype(str)
    src_order = list(dict.fromkeys(d["source"]))
    d["_s"] = d["source"].map({s: i for i, s in enumerate(src_order)})
    d["_m"] = d["method"].map({m: i for i, m in enumerate(SHARE_METHODS)})
    return d.sort_values(["_s", "_m"], kind="stable").drop(columns=["_s", "_m"]).reset_index(drop=True)


def variance_shares(variance: pd.DataFrame, *, scope: str = "global", ax: Axes | None = None) -> Axes:
    """Horizontal bars of each source's share of the variance in one ``scope``, with the CI as an error
    bar (none where the CI is NaN) and the share written next to the bar; several methods in one
    scope are grouped (hue = method)."""
    ax = _get_ax(ax)
    d = prepare_variance_shares(variance, scope)
    title = f"Share of variance by source ({scope})"
    if d.empty:
        return _no_data(ax, title, f"no variance shares for scope {scope!r}")
    methods = [m for m in SHARE_METHODS if (d["method"] == m).any()]
    sources = list(dict.fromkeys(d["source"]))
    d["method label"] = pd.Categorical(d["method"].map(METHOD_LABELS),
                                       categories=[METHOD_LABELS[m] for m in methods], ordered=True)
    n_before = len(ax.containers)
    pal = _palette(len(methods))
    if len(methods) > 1:
        sns.barplot(data=d, y="source", x="share", hue="method label", order=sources, orient="h",
                    palette=pal, errorbar=None, saturation=1.0, legend=False, ax=ax)
    else:
        sns.barplot(data=d, y="source", x="share", order=sources, orient="h", color=pal[0],
                    errorbar=None, saturation=1.0, ax=ax)
    # where each bar landed: one container per method (in order), bars at category positions
    centers = {}
    for m, cont in zip(methods, ax.containers[n_before:]):
        for bar in cont:
            i = int(round(bar.get_y() + bar.get_height() / 2))
            centers[(sources[i], m)] = bar.get_y() + bar.get_height() / 2
    d["y"] = [centers.get((s, m), np.nan) for s, m in zip(d["source"], d["method"])]
    ci = d[np.isfinite(d["ci_low"]) & np.isfinite(d["ci_high"]) & np.isfinite(d["y"])]
    if len(ci):
        lo = np.clip(ci["share"] - ci["ci_low"], 0, None)
        hi = np.clip(ci["ci_high"] - ci["share"], 0, None)
        ax.errorbar(ci["share"], ci["y"], xerr=np.vstack([lo, hi]), fmt="none", ecolor="0.15",
                    elinewidth=1.0, capsize=3 if len(d) <= 12 else 1.5, zorder=3)
    small = len(d) > 16
    for s, m, share, high, y in zip(d["source"], d["method"], d["share"], d["ci_high"], d["y"]):
        if not np.isfinite(y):
            continue
        text = f"{share:.1%}"
        right = max(share, high if np.isfinite(high) else share)
        if right <= 0.86:
            ax.text(right + 0.012, y, text, va="center", ha="left", fontsize=6 if small else 7.5, color="0.15")
        else:
            ax.text(max(min(share, 1.0) - 0.012, 0.0), y, text, va="center", ha="right",
                    fontsize=6 if small else 7.5, color="white", fontweight="bold")
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.grid(axis="x")
    ax.set_axisbelow(True)
    if len(methods) > 1:
        handles = [Patch(facecolor=c) for c in pal]
        ax.legend(handles, [METHOD_LABELS[m] for m in methods], title="method", loc="upper center",
                  bbox_to_anchor=(0.5, -0.16), ncol=len(methods), frameon=False)
        method_text = "methods compared"
    else:
        method_text = METHOD_LABELS[methods[0]]
    _tidy_categorical(ax, "y")
    return _finish(ax, f"{title}: {method_text}" + (", bars = 95% CI" if len(ci) else ""),
                   "share of variance", "")


# ------------------------------------------------------------------------------------------ 6. seeds
def prepare_halfwidth(halfwidth: pd.DataFrame) -> pd.DataFrame:
    """Finite rows of ``config, k, halfwidth, kind``, configurations as strings in natural order, sorted
    by config, kind (``normal`` first) and k."""
    _require(halfwidth, ["config", "k", "halfwidth", "kind"], "half-width table")
    d = halfwidth[["config", "k", "halfwidth", "kind"]].copy()
    d["k"] = pd.to_numeric(d["k"], errors="coerce").astype(float)
    d["halfwidth"] = pd.to_numeric(d["halfwidth"], errors="coerce").astype(float)
    d = d[np.isfinite(d["k"]) & np.isfinite(d["halfwidth"])]
    d["config"] = d["config"].astype(str)
    d["kind"] = d["kind"].astype(str)
    cfgs = sorted(dict.fromkeys(d["config"]), key=_natural_key)
    kinds = sorted(dict.fromkeys(d["kind"]), key=lambda k: ({"normal": 0, "bootstrap": 1}.get(k, 2), k))
    d["_c"] = d["config"].map({c: i for i, c in enumerate(cfgs)})
    d["_k"] = d["kind"].map({k: i for i, k in enumerate(kinds)})
    return d.sort_values(["_c", "_k", "k"]).drop(columns=["_c", "_k"]).reset_index(drop=True)


_KIND_LABELS = {"normal": "normal: 1.96·sd/√k", "bootstrap": "bootstrap (percentile)"}


def halfwidth_vs_seeds(halfwidth: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """95% CI half-width of a configuration's mean against the number of seeds k: one line per
    configuration (colour) and kind (normal solid, bootstrap dashed)."""
    ax = _get_ax(ax)
    d = prepare_halfwidth(halfwidth)
    title = "How many seeds? 95% CI half-width of a configuration's mean vs k"
    if d.empty:
        return _no_data(ax, title)
    cfgs = list(dict.fromkeys(d["config"]))
    kinds = list(dict.fromkeys(d["kind"]))
    pal = dict(zip(cfgs, _palette(len(cfgs))))
    dashes = {k: "" if k == "normal" else (4, 2) if k == "bootstrap" else (1, 1.5) for k in kinds}
    sns.lineplot(data=d, x="k", y="halfwidth", hue="config", hue_order=cfgs, palette=pal, style="kind",
                 style_order=kinds, dashes=dashes, estimator=None, units=None, sort=True,
                 linewidth=1.5, legend=False, ax=ax)
    handles = [Line2D([], [], color=pal[c], lw=1.8) for c in cfgs]
    labels = list(cfgs)
    for k in kinds:
        ls = "-" if dashes[k] == "" else (0, dashes[k])
        handles.append(Line2D([], [], color="0.35", lw=1.5, linestyle=ls))
        labels.append(_KIND_LABELS.get(k, k))
    _legend_outside(ax, handles, labels, title="configuration / CI", ncol=1 if len(handles) <= 18 else 2)
    ax.set_ylim(bottom=0)
    ax.set_xlim(left=max(0.0, d["k"].min() - 1))
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(True)
    ax.set_axisbelow(True)
    return _finish(ax, title, "number of seeds k", "95% CI half-width of the mean (metric units)")


# ------------------------------------------------------------------------------------------ 7. failures
from .analysis.diagnose import MAX_FAILURE_ROWS  # noqa: E402  (configurations drawn one per row; the rest aggregated)


def _top_failures(failures: pd.DataFrame, modes: list[str], top: int) -> pd.DataFrame:
    """The ``top`` configurations with the largest failure share (any mode) and one row
    "all N others" with the run-weighted mean share of each mode over the rest."""
    worst = failures[modes].apply(pd.to_numeric, errors="coerce").max(axis=1).fillna(0.0)
    keep = worst.sort_values(ascending=False, kind="stable").index[:top]
    rest = failures.drop(index=keep)
    w = pd.to_numeric(rest["n"], errors="coerce").fillna(1.0) if "n" in rest else pd.Series(1.0, index=rest.index)
    agg = {"config": f"all {len(rest)} others (mean)"}
    for m in modes:
        v = pd.to_numeric(rest[m], errors="coerce")
        ok = v.notna()
        agg[m] = float((v[ok] * w[ok]).sum() / w[ok].sum()) if ok.any() else np.nan
    return pd.concat([failures.loc[keep], pd.DataFrame([agg])], ignore_index=True)


def prepare_failures(failures: pd.DataFrame, top: int | None = MAX_FAILURE_ROWS) -> pd.DataFrame:
    """Long table ``config, mode, share`` of the failure-mode columns present in ``failures`` that are
    not all NaN (in :data:`FAILURE_MODES` order), configurations in natural order; NaN shares dropped.
    With more than ``top`` configurations: the ``top`` worst and an "all N others (mean)" row (last)."""
    _require(failures, ["config"], "failures table")
    modes = [m for m in FAILURE_MODES if m in failures.columns
             and pd.to_numeric(failures[m], errors="coerce").notna().any()]
    if not modes or failures.empty:
        return pd.DataFrame({"config": pd.Series(dtype=str), "mode": pd.Series(dtype=str),
                             "share": pd.Series(dtype=float)})
    aggregate = None
    if top is not None and len(failures) > top:
        failures = _top_failures(failures, modes, top)
        aggregate = failures["config"].iloc[-1]
    wide = failures[["config"] + modes].copy()
    wide["config"] = wide["config"].astype(str)
    for m in modes:
        wide[m] = pd.to_numeric(wide[m], errors="coerce").astype(float)
    cfgs = sorted((c for c in dict.fromkeys(wide["config"]) if c != aggregate), key=_natural_key)
    cfgs += [aggregate] if aggregate else []
    long = wide.melt(id_vars="config", value_vars=modes, var_name="mode", value_name="share")
    long = long[np.isfinite(long["share"])]
    long["_c"] = long["config"].map({c: i for i, c in enumerate(cfgs)})
    long["_m"] = long["mode"].map({m: i for i, m in enumerate(modes)})
    return long.sort_values(["_c", "_m"]).drop(columns=["_c", "_m"]).reset_index(drop=True)


def failure_modes(failures: pd.DataFrame, *, ax: Axes | None = None) -> Axes:
    """Per configuration, grouped horizontal bars of the share of runs in each failure mode. Grouped,
    not stacked: the modes are not exclusive (a stagnated run is often also at the untrained accuracy).
    Give the figure about 0.28 in per configuration (+1.5 in)."""
    ax = _get_ax(ax)
    d = prepare_failures(failures)
    title = "Failure modes per configuration (share of runs)"
    if d.empty:
        return _no_data(ax, title)
    modes = [m for m in FAILURE_MODES if (d["mode"] == m).any()]
    cfgs = list(dict.fromkeys(d["config"]))
    pal = _palette(len(modes))
    d["mode label"] = pd.Categorical(d["mode"].map(FAILURE_LABELS),
                                     categories=[FAILURE_LABELS[m] for m in modes], ordered=True)
    sns.barplot(data=d, y="config", x="share", hue="mode label", order=cfgs, orient="h", palette=pal,
                errorbar=None, saturation=1.0, legend=False, ax=ax)
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.grid(axis="x")
    ax.set_axisbelow(True)
    if not ax.yaxis_inverted():                 # first configuration on top
        ax.invert_yaxis()
    handles = [Patch(facecolor=c) for c in pal]
    none = {m for m in modes if not (d.loc[d["mode"] == m, "share"] > 0).any()}
    labels = [FAILURE_LABELS[m] + (" (none)" if m in none else "") for m in modes]
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.1),
              ncol=min(len(modes), 3), frameon=False, fontsize=8)
    _tidy_categorical(ax, "y")
    if cfgs and cfgs[-1].endswith(" others (mean)"):
        title = f"Failure modes of the {len(cfgs) - 1} configurations with the most failing runs, and the rest"
    if not (d["share"] > 0).any():
        title += ": none detected"
    return _finish(ax, title, "share of runs in the configuration", "")
