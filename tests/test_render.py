"""The renderer: safe with hostile names (parsed with a real HTML parser), nothing written outside
``--out``, the reading order, number formatting, and the headline."""
from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sweep.cli import main
from sweep.findings import Finding
from sweep.render import figure_file, first_sentence, headline, slug
from sweep.report_tables import cell

HOSTILE = {
    "quote": "x' onmouseover='alert(1)",
    "tags": '"><script>alert(2)</script><img src=x onerror=alert(5)>',
    "path": "../../../../escaped_A",
    "unicode": "学习率 λ ünïcödé ✓",
    "long": "<b>" + "L" * 297,
}
LEVEL = "<img src=x onerror=alert(3)>"
METRIC = "acc</title><script>alert(4)</script>"
TAGS = {"html", "head", "meta", "title", "style", "body", "main", "header", "h1", "h2", "h3", "p", "b", "a",
        "section", "div", "figure", "img", "figcaption", "article", "span", "details", "summary", "table",
        "thead", "tbody", "tr", "th", "td", "pre", "ol", "ul", "li"}
ATTRS = {"lang", "charset", "http-equiv", "content", "name", "class", "id", "href", "src", "alt", "open"}


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, attrs))

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, attrs))

    def handle_data(self, data):
        self.text.append(data)


def _hostile_table() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    names = list(HOSTILE.values())
    levels = [[LEVEL, "plain"], [1, 2], ["a", "b"], ["p", "q"], ["u", "v"]]
    grid = pd.MultiIndex.from_product(levels, names=names).to_frame(index=False)
    rows = grid.loc[grid.index.repeat(4)].reset_index(drop=True)
    rows["seed"] = np.tile(np.arange(4), len(grid))
    rows[METRIC] = 0.7 + 0.1 * (rows[names[0]] == LEVEL) + 0.02 * rows[names[1]] + rng.normal(0, 0.03, len(rows))
    return rows


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_hostile_names_inject_nothing_and_write_nothing_outside_out(tmp_path):
    work = tmp_path / "a" / "b" / "c" / "d"
    work.mkdir(parents=True)
    csv = work / "runs.csv"
    _hostile_table().to_csv(csv, index=False)
    out = work / "out"
    before = _files(tmp_path)
    assert main(["analyze", str(csv), "--metric", METRIC, "--seed-cols", "seed", "--factors", ",".join(HOSTILE.values()),
                 "--out", str(out)]) == 0
    new = _files(tmp_path) - before
    assert new and all(out in p.parents for p in new), sorted(map(str, new - {p for p in new if out in p.parents}))
    assert not list(tmp_path.rglob("escaped_A*"))
    page = (out / "report.html").read_text()
    parser = _Collect()
    parser.feed(page)
    tags = {t for t, _ in parser.elements}
    assert tags <= TAGS, tags - TAGS                     # no <script>, no injected <img> outside figures
    for tag, attrs in parser.elements:
        for name, value in attrs:
            assert name in ATTRS, (tag, name)            # no onmouseover / onerror
            if name == "href":
                assert re.fullmatch(r"#[a-z0-9_-]+|[a-z_]+\.csv", value), value
            if name == "src":
                assert tag == "img" and value.startswith("data:image/png;base64,"), value[:40]
            if name == "id":
                assert re.fullmatch(r"[a-z0-9_-]+", value), value
    csp = [dict(a) for t, a in parser.elements if t == "meta" and dict(a).get("http-equiv")]
    assert csp and "default-src 'none'" in csp[0]["content"] and "script-src" not in csp[0]["content"]
    text = "".join(parser.text)
    for name in HOSTILE.values():                        # the names are shown, as text
        assert name in text, name
    assert LEVEL in text and METRIC in text
    md = (out / "report.md").read_text()
    assert "<script" not in md and "<img" not in md and "&lt;script&gt;" in md
    figures = sorted(p.name for p in (out / "figures").iterdir())
    assert all(re.fullmatch(r"[a-z0-9_]+-[0-9a-f]{8}\.png", f) for f in figures), figures


def test_slugs_are_safe_short_and_distinct():
    assert slug("outcome_../../x") != slug("outcome_x") and "/" not in slug("../../x") and "." not in slug("../x")
    assert re.fullmatch(r"[a-z0-9_]{1,40}-[0-9a-f]{8}", slug("outcome_" + "é" * 300))
    assert slug("学习率").startswith("figure-") and figure_file("variance_global").startswith("variance_global-")


def test_cells_format_as_people_read_them():
    assert [cell(0.7399), cell(0.7399, True), cell(0.0, True), cell(0.0), cell(4.55e-08), cell(30.0)] == \
        ["0.74", "74.0%", "0%", "0", "4.55e-08", "30"]
    assert [cell(np.nan), cell(True), cell(np.int64(7)), cell(12345.6), cell("a<b")] == ["", "yes", "7", "12,346", "a<b"]


def test_headline_is_the_answer_not_a_question():
    finds = [Finding("Is one change enough? From the worst, lr fixes it.", None, "ablation", 9.6),
             Finding("lr matters most: 44.6% of the variance (95% CI 17.1–60.3%). Other factors: none.", None, "factor", 9),
             Finding("Across 480 runs, the seed explains most: 61.0%. As components 0.6.", None, "attribution", 10),
             Finding("Best configuration: lr=0.01, mean 97.5%. Against the runner-up it wins.", None, "comparison", 7)]
    assert headline(finds) == ["Across 480 runs, the seed explains most: 61.0%.",
                               "lr matters most: 44.6% of the variance (95% CI 17.1–60.3%).",
                               "Best configuration: lr=0.01, mean 97.5%."]
    assert first_sentence("Is it? No. Yes.") == "No."


@pytest.fixture(scope="module")
def small_report(tmp_path_factory):
    rng = np.random.default_rng(1)
    rows = [{"width": w, "lr": lr, "seed": s, "acc": 0.6 + 0.1 * (w == 64) + 0.05 * (lr == 0.1) + rng.normal(0, 0.03)}
            for w in (16, 64) for lr in (0.01, 0.1) for s in range(8)]
    folder = tmp_path_factory.mktemp("small")
    pd.DataFrame(rows).to_csv(folder / "t.csv", index=False)
    assert main(["analyze", str(folder / "t.csv"), "--metric", "acc", "--seed-cols", "seed", "--factors", "width,lr",
                 "--out", str(folder / "o")]) == 0
    return folder / "o"


def test_report_order_and_details_collapsed(small_report):
    page = (small_report / "report.html").read_text()
    order = [page.index(f'id="{s}"') for s in ("headline", "findings", "details", "methods", "spec", "meta")]
    assert order == sorted(order)
    assert "seed columns: seed." in page and "seed_" not in page.split("<main>")[1].split("</header>")[0]
    assert page.count("<details") >= 5 and "<table>" in page and "variance.csv" in page
    head = page[page.index('id="headline"'):page.index('id="findings"')]
    assert '<img src="data:image/png;base64,' in head and 'src="figures/' not in page     # embedded, not linked
    md = (small_report / "report.md").read_text()
    md_order = [md.index(h) for h in ("## Findings", "## Details", "## Methods", "## Study spec")]
    assert md_order == sorted(md_order) and "](figures/variance_global-" in md
    methods = page[page.index('id="methods"'):page.index('id="spec"')]
    notes = pd.read_csv(small_report / "variance.csv")["note"].dropna().unique()
    assert "Notes on the rows" in methods and all(n.replace("'", "&#39;") in methods for n in notes)
    assert "bootstrap over seeds with 1000 draws" in methods and "Type II" in methods
