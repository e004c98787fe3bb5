"""The answer: analysis tables, figures and plain-language findings, as one self-contained HTML file
(figures embedded) and a Markdown file for a repository.

Every sentence is generated from the study's numbers by a rule that checks the numbers first (a
finding that does not hold for the data is not emitted), and names the figure that shows it.
"""
from __future__ import annotations

import base64
import html
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .analysis.kinds import FactorKind
from .analysis.pipeline import Analysis, analyze
from .findings import Finding, findings

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


def build_figures(a: Analysis, fig_dir: Path) -> dict[str, Path]:
    """Draw every figure the report uses into ``fig_dir`` (in ``SWEEP_REPORT_JOBS`` processes; the
    same files whatever the number); returns ``{key: path}``."""
    from .analysis.diagnose import MAX_FAILURE_ROWS
    from .analysis.sampled import strongest_categorical
    F, SF = _Module("sweep.figures"), _Module("sweep.surface_figures")
    fig_dir.mkdir(parents=True, exist_ok=True)
    jobs: dict[str, tuple] = {}

    def draw(key, fn, *args, w=6.4, h=4.0, **kw):
        jobs[key] = (fn, args, kw, w, h, fig_dir / f"{key}.png")

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
    if len(a.failures):
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
SECTIONS = [("findings", "Findings"), ("variance", "Where the variance comes from"),
            ("comparisons", "Which configuration is reliably best"), ("failures", "Failure modes"),
            ("figures", "Figures"), ("summary", "Per-configuration summary"), ("spec", "Study spec"),
            ("meta", "Run information")]

FIGURE_CAPTIONS = {
    "variance_global": "Variance shares with 95% bootstrap CIs (seeds resampled jointly across configurations).",
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
    if key.startswith("ecdf_"):
        return f"Empirical CDF of the outcome per level of {key[5:]}: a step or plateau marks bimodal seeds."
    return FIGURE_CAPTIONS.get(key, key)


def _fmt_table(df: pd.DataFrame, max_rows: int = 60) -> pd.DataFrame:
    out = df.head(max_rows).copy()
    for c in out.columns:
        if pd.api.types.is_float_dtype(out[c]):
            out[c] = out[c].map(lambda x: "" if pd.isna(x) else f"{x:.4g}")
    return out


def _md_table(df: pd.DataFrame, max_rows: int = 60) -> str:
    if df is None or df.empty:
        return "_(none)_\n"
    t = _fmt_table(df, max_rows).astype(str)
    lines = ["| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
    lines += ["| " + " | ".join(v.replace("|", "\\|") for v in row) + " |" for row in t.to_numpy()]
    return "\n".join(lines) + "\n"


def _html_table(df: pd.DataFrame, max_rows: int = 60) -> str:
    if df is None or df.empty:
        return "<p><em>(none)</em></p>"
    return _fmt_table(df, max_rows).to_html(index=False, border=0, classes="t", escape=True)


CSS = """body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:2em}ol.findings li{margin:.5em 0}table.t{border-collapse:collapse;font-size:.85em;margin:.5em 0}
table.t td,table.t th{padding:.2em .6em;border-bottom:1px solid #eee;text-align:right}table.t th{background:#f6f6f6}
figure{display:inline-block;margin:.5em;vertical-align:top;max-width:520px}figure img{max-width:100%}
figcaption{font-size:.85em;color:#555}pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:.85em}
.note{color:#555;font-size:.9em}"""


def render(a: Analysis, finds: list[Finding], figs: dict[str, Path], *, title: str,
           spec_text: str | None, meta: dict | None, fig_rel: str = "figures") -> tuple[str, str]:
    """(HTML with embedded figures, Markdown with relative figure links)."""
    def img64(p: Path) -> str:
        return "data:image/png;base64," + base64.b64encode(p.read_bytes()).decode()

    esc = html.escape
    h = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
         f"<style>{CSS}</style></head><body>", f"<h1>{esc(title)}</h1>",
         f"<p class='note'>{len(a.runs.df)} runs, metric <b>{esc(a.metric)}</b> "
         f"({'higher' if a.higher_is_better else 'lower'} is better), factors: {esc(', '.join(a.runs.factors) or 'none')}, "
         f"seed columns: {esc(', '.join(a.runs.seed_cols) or 'row order')}. Every number below is computed from "
         f"these runs; CIs are 95% bootstrap intervals over seeds (seeds resampled jointly across configurations, "
         f"1000 draws, fixed generator seed; crossed and nested seed designs: generalized intervals of the mixed "
         f"model; the interval type of each variance share is in its note).</p>"]
    md = [f"# {title}\n", f"{len(a.runs.df)} runs, metric **{a.metric}**, factors: {', '.join(a.runs.factors) or 'none'}. "
          "Every number is computed from these runs; CIs are 95% bootstrap intervals over seeds.\n"]
    if a.runs.dropped:
        note = (f"{a.runs.dropped} runs have no value of {a.metric} (diverged with undefined weights) and are "
                f"excluded; the design is then unbalanced.")
        h.append(f"<p class='note'>{esc(note)}</p>")
        md.append(f"_{note}_\n")

    def section(key: str) -> None:
        name = dict(SECTIONS)[key]
        h.append(f"<section id='{key}'><h2>{esc(name)}</h2>")
        md.append(f"\n## {name}\n")

    section("findings")
    h.append("<ol class='findings'>")
    for f in finds:
        link = f" <a href='#fig-{f.figure}'>(figure)</a>" if f.figure in figs else ""
        h.append(f"<li>{esc(f.text)}{link}</li>")
        md.append(f"1. {f.text}" + (f" ![]({fig_rel}/{f.figure}.png)" if f.figure in figs else "") + "\n")
    h.append("</ol></section>")
    section("variance")
    h.append(_html_table(a.variance, 200))
    md.append(_md_table(a.variance, 200))
    if len(a.seed_plan):
        intro = (f"Seed-design planner ({a.seed_layout}): levels needed to pin each seed-source share to "
                 "±10 / ±5 percentage points (median 95% interval half-width over studies simulated from the "
                 "fitted components); levels_*: this source alone changed, levels_*_all: every source with "
                 "that many levels; empty: more than 50.")
        h.append(f"<p>{esc(intro)}</p>" + _html_table(a.seed_plan))
        md.append(f"\n{intro}\n\n" + _md_table(a.seed_plan))
    if len(a.importance):
        h.append("<p>Optuna hyperparameter importance on configuration means (spread over repeated evaluations):</p>")
        h.append(_html_table(a.importance))
        md.append("\nOptuna importance on configuration means:\n\n" + _md_table(a.importance))
    h.append("</section>")
    section("comparisons")
    h.append(_html_table(a.ranking, 20) + _html_table(a.comparisons) + "</section>")
    md.append(_md_table(a.ranking, 20) + "\n" + _md_table(a.comparisons))
    section("failures")
    cols = [c for c in a.failures.columns if c not in a.runs.factors]
    h.append(_html_table(a.failures[cols], 100) + "</section>")
    md.append(_md_table(a.failures[cols], 100))
    section("figures")
    for key, p in figs.items():
        h.append(f"<figure id='fig-{key}'><img src='{img64(p)}' alt='{esc(key)}'>"
                 f"<figcaption>{esc(_caption(key))}</figcaption></figure>")
        md.append(f"![{_caption(key)}]({fig_rel}/{p.name})\n")
    h.append("</section>")
    section("summary")
    s = a.summary[a.summary["metric"] == a.metric] if len(a.summary) else a.summary
    h.append(_html_table(s, 200) + "<p class='note'>All metrics: summary.csv.</p></section>")
    md.append(_md_table(s, 200))
    section("spec")
    h.append(f"<pre>{esc(spec_text or '(not a sweep study: no spec)')}</pre></section>")
    md.append(f"```toml\n{spec_text or '(no spec)'}\n```\n")
    section("meta")
    meta_text = json.dumps(meta or {}, indent=2, sort_keys=True, default=str)
    h.append(f"<pre>{esc(meta_text)}</pre><p class='note'>Analysis took {a.seconds:.1f} s.</p></section>")
    md.append(f"```json\n{meta_text}\n```\n")
    h.append("</body></html>")
    return "\n".join(h), "\n".join(md)


def write_report(out_dir: Path, a: Analysis, *, title: str, spec_text: str | None = None,
                 meta: dict | None = None) -> dict[str, Path]:
    """Write the analysis CSVs, figures, report.html and report.md into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, table in (("summary", a.summary), ("variance", a.variance), ("importance", a.importance),
                        ("ranking", a.ranking), ("comparisons", a.comparisons), ("halfwidth", a.halfwidth),
                        ("failures", a.failures), ("budget", a.budget), ("confirm", a.confirm),
                        ("seed_plan", a.seed_plan)):
        if name in ("budget", "confirm", "seed_plan") and (table is None or table.empty):
            continue                    # only studies that have them (independent samplers; sweep confirm)
        paths[name] = out_dir / f"{name}.csv"
        table.to_csv(paths[name], index=False)
    figs = build_figures(a, out_dir / "figures")
    finds = findings(a)
    html_text, md_text = render(a, finds, figs, title=title, spec_text=spec_text, meta=meta)
    paths["html"] = out_dir / "report.html"
    paths["md"] = out_dir / "report.md"
    paths["html"].write_text(html_text)
    paths["md"].write_text(md_text)
    (out_dir / "findings.txt").write_text("\n".join(f"{i + 1}. {f.text}" for i, f in enumerate(finds)) + "\n")
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
    spec_text = spec_path.read_text() if spec_path.exists() else None
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    info = meta.get("analysis", {})
    metric = metric or info.get("objective", "val_acc")
    kinds = {f: FactorKind.from_dict(k) for f, k in info.get("factors", {}).items()}
    hib = None if "direction" not in info or metric != info.get("objective") else info["direction"] == "maximize"
    a = analyze(runs, metric=metric, curves=curves, baseline=info.get("baseline"), kinds=kinds,
                higher_is_better=hib, sampler=info.get("sampler"), confirm=_confirm_runs(directory))
    name = meta.get("study", directory.name)
    return write_report(directory, a, title=f"sweep report: {name}", spec_text=spec_text, meta=meta)
