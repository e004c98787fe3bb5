"""The answer: the report of a study, from its exported files to report.html, report.md, the
analysis CSVs and the figures. Three parts, the data flowing one way: the analysis pipeline
(``analysis/pipeline.py``, pure pandas), the findings (``findings/``: small rules that check the numbers
before they speak and name the figure that shows them) and the renderer (``render.py`` with
``report_tables.py`` and ``report_methods.py``: Jinja2 templates, everything from data escaped). This
module draws the figures and writes the files.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd

from .analysis.kinds import FactorKind
from .analysis.pipeline import Analysis, analyze
from .findings import Finding, findings
from .render import figure_file, render

__all__ = ["Analysis", "Finding", "analyze", "findings", "build_figures", "render", "write_report", "report_dir"]


# ------------------------------------------------------------------------------------------ figures
def _binned(a: Analysis) -> pd.DataFrame:
    """The runs with every continuous factor replaced by its ranges (for violins, heatmaps, ECDFs and
    learning curves, which need a few groups)."""
    from .analysis.ranges import cut
    df = a.runs.df.copy()
    for f in a.runs.smooth_factors:
        df[f] = cut(df[f], a.kinds[f], f)
    return df


def _figure_workers() -> int:
    """Processes that draw the figures: ``SWEEP_REPORT_JOBS``, default the cores (at most 4)."""
    env = os.environ.get("SWEEP_REPORT_JOBS", "")
    return max(1, int(env)) if env.isdigit() else min(os.cpu_count() or 1, 4)


def _warm() -> None:
    """Import the figure modules and draw one small figure: the fonts and the first layout are slow."""
    import io
    from . import figures as F
    from . import surface_figures  # noqa: F401
    fig, ax = F.new_figure(2, 2)
    ax.plot([0, 1], [0, 1], label="x")
    ax.legend()
    ax.set_title("warm")
    fig.savefig(io.BytesIO(), format="png", bbox_inches="tight")


def warm_figure_workers() -> None:
    """Start the drawing processes and their matplotlib import while the analysis runs."""
    if _figure_workers() > 1:
        from joblib.externals.loky import get_reusable_executor
        ex = get_reusable_executor(max_workers=_figure_workers())
        for _ in range(_figure_workers()):
            ex.submit(_warm)


class _Module:
    """Names the figure functions without importing matplotlib in this process: ``F.heatmap`` is
    ``("sweep.figures", "heatmap")``, imported where the figure is drawn."""

    def __init__(self, name: str):
        self.name = name

    def __getattr__(self, attr: str) -> tuple[str, str]:
        return (self.name, attr)


def _draw_one(fn: tuple[str, str], args: tuple, kw: dict, w: float, h: float, path: Path) -> Path:
    import importlib
    from . import figures as F
    fig, ax = F.new_figure(w, h)
    getattr(importlib.import_module(fn[0]), fn[1])(*args, ax=ax, **kw)
    return F.save(fig, path)


def _any_failure(failures: pd.DataFrame) -> bool:
    """Some run shows a failure mode the failure figure draws (else it would be an empty chart)."""
    from .analysis.diagnose import FAILURE_MODES
    cols = [c for c in FAILURE_MODES if c in failures]
    return bool(len(failures) and cols and failures[cols].apply(pd.to_numeric, errors="coerce").fillna(0).gt(0).any().any())


def build_figures(a: Analysis, fig_dir: Path) -> dict[str, Path]:
    """Draw every figure the report uses into ``fig_dir`` (in ``SWEEP_REPORT_JOBS`` processes; the
    same files whatever the number); returns ``{key: path}``."""
    from .analysis.diagnose import MAX_FAILURE_ROWS
    from .analysis.sampled import strongest_categorical
    F, SF = _Module("sweep.figures"), _Module("sweep.surface_figures")
    fig_dir.mkdir(parents=True, exist_ok=True)
    jobs: dict[str, tuple] = {}

    def draw(key, fn, *args, w=6.4, h=4.0, **kw):
        jobs[key] = (fn, args, kw, w, h, fig_dir / figure_file(key))

    df, m = a.runs.df, a.metric
    smooth = set(a.runs.smooth_factors)
    binned = _binned(a) if smooth else df
    draw("variance_global", F.variance_shares, a.variance, scope="global", h=3.6 if not smooth else 4.6)
    if (a.variance["scope"] == "seed sources").sum() > 1:
        draw("variance_sources", F.variance_shares, a.variance, scope="seed sources", h=3.0)
    top = a.top_factors[:2]
    if a.surface is not None:
        color = strongest_categorical(a.surface, a.variance)
        for f in smooth:
            draw(f"surface_{f}", SF.partial_dependence, df, a.surface, f, m, color if color != f else None,
                 log=a.kinds[f].log, w=7.2)
        if top and top[0] in smooth:
            draw(f"seed_sd_{top[0]}", SF.seed_sd_along, df, a.variance, top[0], m, log=a.kinds[top[0]].log)
        pair = [f for f in a.top_factors if f in smooth][:2]
        if len(pair) == 2:
            draw("contour", SF.contour, df, a.surface, pair[0], pair[1], m, logx=a.kinds[pair[0]].log,
                 logy=a.kinds[pair[1]].log)
    for f in a.runs.factors:
        draw(f"outcome_{f}", F.outcome_by_factor, binned, f, m)
    if len(top) == 2 and not (top[0] in smooth and top[1] in smooth):
        draw("heatmap_mean", F.heatmap, binned, top[0], top[1], m, stat="mean")
        draw("heatmap_sd", F.heatmap, binned, top[0], top[1], m, stat="sd")
    first = top[0] if top else None          # None: every run in one group
    draw(f"ecdf_{first or 'all'}", F.ecdf_by_level, binned, first, m)
    if a.curves is not None and len(a.curves) and "run_id" in df:
        draw("curves_train_loss", F.learning_curves, a.curves, binned, first, split="train", value="loss")
        draw("curves_val_acc", F.learning_curves, a.curves, binned, first, split="val", value="acc")
    if len(a.halfwidth):
        draw("halfwidth", F.halfwidth_vs_seeds, a.halfwidth)
    if a.confirm is not None and len(a.confirm):
        draw("confirm", SF.selection_vs_confirmed, a.confirm, m, h=max(3.0, 0.45 * len(a.confirm) + 1.6), w=7.2)
    if a.budget is not None and len(a.budget):
        draw("budget", SF.expected_best, a.budget, m, a.sampler or "random")
    if _any_failure(a.failures):
        rows = min(len(a.failures), MAX_FAILURE_ROWS + 1)
        draw("failures", F.failure_modes, a.failures, h=max(3.0, 0.28 * rows + 1.5))
    n = min(_figure_workers(), len(jobs))
    if n <= 1:
        return {k: _draw_one(*job) for k, job in jobs.items()}
    from joblib.externals.loky import get_reusable_executor
    executor = get_reusable_executor(max_workers=_figure_workers())
    futures = {k: executor.submit(_draw_one, *job) for k, job in jobs.items()}
    return {k: futures[k].result() for k in jobs}


# ------------------------------------------------------------------------------------------ writing
FIGURE_CAPTIONS = {
    "variance_global": "Where the variance comes from: shares with their 95% confidence intervals (Methods says which interval each is).",
    "variance_sources": "Seed variance split by source (crossed design, variance components).",
    "heatmap_mean": "Mean of the metric for the two most important factors (other factors averaged).",
    "heatmap_sd": "Seed standard deviation for the two most important factors.",
    "curves_train_loss": "Training loss over steps: median over seeds, 25–75% band, each run faint.",
    "curves_val_acc": "Validation accuracy over steps: median over seeds, 25–75% band, each run faint.",
    "halfwidth": "95% CI half-width of a configuration's mean vs number of seeds (normal and bootstrap).",
    "failures": "Failure modes per configuration: share of runs.",
    "budget": "Expected best value against the number of trials (Dodge et al. 2019), with a 95% bootstrap band.",
    "contour": "Fitted mean over the two most important continuous factors (others averaged).",
    "confirm": "The top configurations: mean at selection (the study's seeds) and on fresh seeds (sweep confirm), 95% CIs.",
}


def _caption(key: str) -> str:
    if key.startswith("surface_"):
        return (f"The outcome against {key[8:]} on its sampling scale: every run (dots), configuration means "
                f"(circles), the fitted partial dependence with its 95% bootstrap band.")
    if key.startswith("seed_sd_"):
        return f"Seed sd along {key[8:]}: each configuration, and pooled per range with its 95% CI."
    if key.startswith("outcome_"):
        return f"Distribution of the outcome per level of {key[8:]} (violin) with every run (points)."
    if key == "ecdf_all":
        return "Empirical CDF of the outcome over all runs: a step or plateau marks bimodal seeds."
    if key.startswith("ecdf_"):
        return f"Empirical CDF of the outcome per level of {key[5:]}: a step or plateau marks bimodal seeds."
    return FIGURE_CAPTIONS.get(key, key)


_OUR_FIGURE = re.compile(r"[a-z0-9_]+(-[0-9a-f]{8})?\.png")


def _remove_stale_figures(fig_dir: Path, keep: set[Path]) -> None:
    """Delete the figures an earlier report of this folder drew and this one did not (only files
    named as sweep names its figures), so ``figures/`` holds exactly what the report shows."""
    for p in fig_dir.glob("*.png"):
        if p not in keep and _OUR_FIGURE.fullmatch(p.name):
            p.unlink()


def write_report(out_dir: Path, a: Analysis, *, title: str, spec_text: str | None = None,
                 meta: dict | None = None) -> dict[str, Path]:
    """Write the analysis CSVs, figures, report.html and report.md into ``out_dir``."""
    from .store import named_in_errors
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, table in (("summary", a.summary), ("variance", a.variance), ("importance", a.importance),
                        ("ranking", a.ranking), ("comparisons", a.comparisons), ("halfwidth", a.halfwidth),
                        ("failures", a.failures), ("budget", a.budget), ("confirm", a.confirm),
                        ("seed_plan", a.seed_plan)):
        if name in ("budget", "confirm", "seed_plan") and (table is None or table.empty):
            continue                    # only studies that have them (independent samplers; sweep confirm)
        paths[name] = out_dir / f"{name}.csv"
        with named_in_errors(paths[name]):
            table.to_csv(paths[name], index=False)
    figs = build_figures(a, out_dir / "figures")
    _remove_stale_figures(out_dir / "figures", set(figs.values()))
    finds = findings(a)
    html_text, md_text = render(a, finds, figs, title=title, spec_text=spec_text, meta=meta, captions=_caption)
    paths["html"], paths["md"] = out_dir / "report.html", out_dir / "report.md"
    texts = {paths["html"]: html_text, paths["md"]: md_text,
             out_dir / "findings.txt": "\n".join(f"{i + 1}. {f.text}" for i, f in enumerate(finds)) + "\n"}
    for path, text in texts.items():
        with named_in_errors(path):
            path.write_text(text, encoding="utf-8")
    return paths


def _confirm_runs(directory: Path) -> pd.DataFrame | None:
    path = directory / "confirm" / "runs.csv"
    return pd.read_csv(path) if path.exists() else None


def report_dir(directory: Path, *, metric: str | None = None) -> dict[str, Path]:
    """``sweep report DIR``: the report of a sweep results folder. Reads only the exported files:
    ``runs.csv``, ``curves.csv``, ``meta.json`` (objective, factor kinds, baseline, sampler) and, when
    ``sweep confirm`` ran, ``confirm/runs.csv``; ``spec.toml`` is shown, never parsed."""
    warm_figure_workers()
    runs = pd.read_csv(directory / "runs.csv")
    curves_path = directory / "curves.csv"
    curves = pd.read_csv(curves_path) if curves_path.exists() else None
    spec_path, meta_path = directory / "spec.toml", directory / "meta.json"
    spec_text = spec_path.read_text(encoding="utf-8", errors="replace") if spec_path.exists() else None
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else {}
    info = meta.get("analysis", {})
    metric = metric or info.get("objective", "val_acc")
    kinds = {f: FactorKind.from_dict(k) for f, k in info.get("factors", {}).items()}
    hib = None if "direction" not in info or metric != info.get("objective") else info["direction"] == "maximize"
    a = analyze(runs, metric=metric, curves=curves, baseline=info.get("baseline"), kinds=kinds,
                higher_is_better=hib, sampler=info.get("sampler"), confirm=_confirm_runs(directory))
    name = meta.get("study", directory.name)
    return write_report(directory, a, title=f"sweep report: {name}", spec_text=spec_text, meta=meta)
