"""The renderer: the analysis, its findings and figures as ``report.html`` (one self-contained file,
figures embedded, no scripts) and ``report.md`` (figures linked), both in the same reading order:
headline, findings each with its figure, details (tables), Methods, spec and run information.

Safe by construction: every string is rendered through Jinja2 with autoescaping (HTML) or the
Markdown escape filter; ids and figure file names derived from data are slugs plus a short hash
(``slug``), never paths; a Content-Security-Policy forbids scripts and any load but embedded images.
"""
from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import jinja2

from .report_methods import methods
from .report_tables import report_tables

__all__ = ["slug", "figure_file", "headline", "render"]

CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; form-action 'none'; base-uri 'none'"


def slug(key: str, width: int = 40) -> str:
    """A file-name- and id-safe name for a data-derived key: its ASCII letters and digits (at most
    ``width``), then 8 hex digits of its SHA-1, so distinct keys never share a name."""
    ascii_ = unicodedata.normalize("NFKD", key).encode("ascii", "ignore").decode().lower()
    base = re.sub(r"[^a-z0-9]+", "_", ascii_).strip("_")[:width].strip("_") or "figure"
    return f"{base}-{hashlib.sha1(key.encode('utf-8')).hexdigest()[:8]}"


def figure_file(key: str) -> str:
    """The PNG file name of figure ``key`` (inside the report's ``figures`` folder)."""
    return slug(key) + ".png"


@dataclass
class FigureView:
    key: str
    id: str
    caption: str
    file: str          # relative to the report folder
    data_uri: str      # the PNG, embedded


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
# the kinds of finding that answer the study's question, in the order the headline says them
HEADLINE_KINDS = ["attribution", "spread", "stagnation", "factor", "region", "comparison", "sources", "failures"]


def first_sentence(text: str) -> str:
    """The first sentence of a finding that is not a question (a full stop, question or exclamation
    mark followed by a capital letter ends a sentence)."""
    sentences = _SENTENCE_END.split(text.strip())
    return next((s for s in sentences if not s.endswith("?")), sentences[0])


def headline(finds, n: int = 3) -> list[str]:
    """The answer in ``n`` sentences: the first sentence of the heaviest finding of each headline kind
    (what explains the spread, whether training is broken, which factor, which configuration), then
    of the heaviest other findings."""
    return [first_sentence(f.text) for f in _ranked(finds)[:n]]


def _ranked(finds) -> list:
    """The findings in headline order: by ``HEADLINE_KINDS``, then heaviest first."""
    return sorted(finds, key=lambda f: (HEADLINE_KINDS.index(f.kind) if f.kind in HEADLINE_KINDS
                                        else len(HEADLINE_KINDS), -f.weight))


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("sweep", "templates"), autoescape=jinja2.select_autoescape(
        enabled_extensions=("html", "html.j2"), default_for_string=True, default=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["md"] = md_escape
    env.filters["md_cell"] = lambda s: md_escape(s).replace("|", "\\|").replace("\n", " ")
    return env


def md_escape(text) -> str:
    """Text for Markdown: HTML special characters as entities (GitHub shows them as typed), no newlines
    that would break a list item."""
    return html.escape(str(text), quote=False).replace("\r", " ")


def _figures(figs: dict[str, Path], captions, fig_rel: str) -> dict[str, FigureView]:
    out = {}
    for key, path in figs.items():
        uri = "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()
        out[key] = FigureView(key, "fig-" + slug(key), captions(key), f"{fig_rel}/{Path(path).name}", uri)
    return out


def _finding_views(finds, figures: dict[str, FigureView], shown: set[str]) -> list[dict]:
    """Each finding with its figure, drawn beside the first finding that cites it; later ones link it."""
    views = []
    for f in finds:
        fig = figures.get(f.figure) if f.figure else None
        views.append({"text": f.text, "figure": fig if fig and fig.key not in shown else None,
                      "ref": fig if fig and fig.key in shown else None})
        if fig:
            shown.add(fig.key)
    return views


def _headline_figure(a, finds, figures: dict[str, FigureView]) -> FigureView | None:
    """The variance shares; for a single configuration (all of its spread is the seed) the figure of
    the first headline finding instead."""
    if len(a.runs.configs) > 1 or not finds:
        return figures.get("variance_global")
    return next((figures[f.figure] for f in _ranked(finds) if f.figure in figures), figures.get("variance_global"))


def render(a, finds, figs: dict[str, Path], *, title: str, spec_text: str | None, meta: dict | None,
           captions, fig_rel: str = "figures") -> tuple[str, str]:
    """(HTML, Markdown) of the report; ``captions(key)`` gives a figure's caption."""
    figures = _figures(figs, captions, fig_rel)
    head_fig = _headline_figure(a, finds, figures)
    shown = {head_fig.key} if head_fig else set()
    finding_views = _finding_views(finds, figures, shown)
    context = {
        "title": title, "csp": CSP, "a": a, "n_runs": len(a.runs.df), "metric": a.runs.original(a.metric),
        "direction": "higher" if a.higher_is_better else "lower",
        "factors": ", ".join(map(a.runs.original, a.runs.factors)) or "none",
        "seed_cols": ", ".join(map(a.runs.original, a.runs.seed_cols)) or "row order",
        "headline": headline(finds), "head_fig": head_fig, "findings": finding_views,
        "other_figures": [f for k, f in figures.items() if k not in shown],
        "tables": report_tables(a), "methods": methods(a),
        "spec_text": spec_text or "(not a sweep study: no spec)",
        "meta_text": json.dumps(meta or {}, indent=2, sort_keys=True, default=str),
        "seconds": f"{a.seconds:.1f}",
    }
    env = _env()
    return env.get_template("report.html.j2").render(context), env.get_template("report.md.j2").render(context)
