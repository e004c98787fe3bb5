"""Figures: the prepared numbers exactly, then what landed on the axes (headless Agg)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import LineCollection, PathCollection, PolyCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sweep import figures as F  # noqa: E402


# ------------------------------------------------------------------------------------------ fixtures
def make_runs() -> pd.DataFrame:
    """2 lr x 2 hidden x 2 act configurations x 3 seeds; val_acc = base(lr, hidden) + 0.01*act + seed
    offset, one run's metric missing."""
    rows = []
    base = {(0.1, 2): 0.60, (0.1, 8): 0.70, (0.01, 2): 0.80, (0.01, 8): 0.90}
    cid = 0
    for lr in (0.1, 0.01):
        for hidden in (2, 8):
            for act in (0, 1):
                for s, off in enumerate((-0.02, 0.0, 0.05)):
                    rows.append(dict(run_id=f"c{cid}-s{s}", config_id=f"c{cid}", lr=lr, hidden=hidden,
                                     act=act, seed_init=s, val_acc=base[(lr, hidden)] + 0.01 * act + off))
                cid += 1
    df = pd.DataFrame(rows)
    df.loc[df["run_id"] == "c0-s2", "val_acc"] = np.nan          # lr=0.1, hidden=2, act=0
    return df


def make_curves(runs: pd.DataFrame, steps=(0, 1, 10, 100, 1000)) -> pd.DataFrame:
    rows = []
    for i, rid in enumerate(runs["run_id"]):
        for st in steps:
            for split in ("train", "val"):
                loss = 1.0 / (1 + st) + 0.001 * i + (0.5 if split == "val" else 0.0)
                rows.append(dict(run_id=rid, step=st, split=split, loss=loss, acc=1 - loss / 2))
    return pd.DataFrame(rows)


@pytest.fixture
def runs():
    return make_runs()


@pytest.fixture
def fig_ax():
    return F.new_figure(6.4, 4.0)


def texts(items):
    return [t.get_text() for t in items]


def legend_texts(ax):
    leg = ax.get_legend()
    assert leg is not None
    return texts(leg.get_texts())


def check_labelled(ax, x=True, y=True):
    assert ax.get_title()
    if x:
        assert ax.get_xlabel()
    if y:
        assert ax.get_ylabel()


def is_no_data(ax):
    return "no data" in " ".join(texts(ax.texts))


# ------------------------------------------------------------------------------------------ I/O
def test_new_figure_is_not_pyplot_and_save_writes_png(tmp_path):
    import matplotlib.pyplot as plt
    before = plt.get_fignums()
    fig, ax = F.new_figure(8.0, 4.0)
    assert isinstance(fig, Figure) and fig.axes == [ax]
    assert plt.get_fignums() == before
    ax.plot([0, 1], [0, 1])
    ax.set_title("t")
    path = F.save(fig, tmp_path / "sub" / "fig.png")
    assert path.exists() and path.stat().st_size > 0
    img = mpimg.imread(path)
    h, w = img.shape[:2]
    assert w / h == pytest.approx(8.0 / 4.0, rel=0.15)
    assert w == pytest.approx(8.0 * F.DPI, rel=0.15)
    fig2, axes = F.new_figure(6, 3, nrows=1, ncols=2)
    assert axes.shape == (2,)


def test_metric_label():
    assert F.metric_label("val_acc") == "validation accuracy (val_acc)"
    assert F.metric_label("train_loss").startswith("training loss")
    assert F.metric_label("weird") == "weird"


# ------------------------------------------------------------------------------------------ 1. outcome
def test_prepare_outcome_orders_levels_and_drops_nan(runs):
    d = F.prepare_outcome(runs, "lr", "val_acc")
    assert list(d["level"].cat.categories) == ["0.01", "0.1"]            # numeric order, not text order
    assert len(d) == len(runs) - 1 and d.attrs["dropped"] == 1
    hand = runs.dropna(subset=["val_acc"])
    np.testing.assert_allclose(np.sort(d.loc[d["level"] == "0.1", "value"]),
                               np.sort(hand.loc[hand["lr"] == 0.1, "val_acc"]))
    d = F.prepare_outcome(runs, None, "val_acc")
    assert list(d["level"].cat.categories) == ["all runs"]


def test_outcome_by_factor_draws_violins_and_every_run(runs, fig_ax):
    fig, ax = fig_ax
    out = F.outcome_by_factor(runs, "hidden", "val_acc", ax=ax)
    assert out is ax
    violins = [c for c in ax.collections if isinstance(c, PolyCollection)]
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(violins) == 2
    assert sum(len(c.get_offsets()) for c in points) == runs["val_acc"].notna().sum()
    assert texts(ax.get_xticklabels()) == ["2", "8"]
    assert ax.get_xlabel() == "hidden"
    assert ax.get_ylabel() == "validation accuracy (val_acc)"
    assert "1 run without a value excluded" in ax.get_title()
    # y positions of the points are exactly the finite metric values
    ys = np.concatenate([np.asarray(c.get_offsets())[:, 1] for c in points])
    np.testing.assert_allclose(np.sort(ys), np.sort(runs["val_acc"].dropna()))


def test_outcome_edge_cases(runs):
    _, ax = F.new_figure()
    F.outcome_by_factor(runs.assign(one="x"), "one", "val_acc", ax=ax)          # one level
    assert texts(ax.get_xticklabels()) == ["x"]
    _, ax = F.new_figure()
    F.outcome_by_factor(runs.assign(val_acc=np.nan), "lr", "val_acc", ax=ax)    # nothing finite
    assert is_no_data(ax) and ax.get_title()
    _, ax = F.new_figure()
    F.outcome_by_factor(runs.iloc[:0], "lr", "val_acc", ax=ax)                  # empty
    assert is_no_data(ax)
    many = pd.DataFrame({"f": np.repeat(np.arange(15), 2), "m": np.arange(30, dtype=float)})
    _, ax = F.new_figure()
    F.outcome_by_factor(many, "f", "m", ax=ax)                                  # many levels: rotated
    labels = ax.get_xticklabels()
    assert texts(labels) == [str(i) for i in range(15)]
    assert all(t.get_rotation() == 90 for t in labels)
    assert isinstance(F.outcome_by_factor(runs, "lr", "val_acc"), matplotlib.axes.Axes)   # ax=None
    with pytest.raises(ValueError, match="nope"):
        F.prepare_outcome(runs, "nope", "val_acc")


# ------------------------------------------------------------------------------------------ 2. heatmap
def test_prepare_heatmap_mean_and_sd_by_hand(runs):
    t = F.prepare_heatmap(runs, "lr", "hidden", "val_acc", stat="mean")
    assert list(t.index) == ["0.01", "0.1"] and list(t.columns) == ["2", "8"]
    assert t.index.name == "lr" and t.columns.name == "hidden"
    cell = runs[(runs["lr"] == 0.01) & (runs["hidden"] == 8)]["val_acc"]
    assert t.loc["0.01", "8"] == pytest.approx(cell.mean())                    # balanced cell: plain mean
    # unbalanced cell (one run missing): mean of the two configurations' seed means
    c0 = runs[(runs["config_id"] == "c0")]["val_acc"].dropna().mean()
    c1 = runs[(runs["config_id"] == "c1")]["val_acc"].mean()
    assert t.loc["0.1", "2"] == pytest.approx((c0 + c1) / 2)
    s = F.prepare_heatmap(runs, "lr", "hidden", "val_acc", stat="sd")
    sd0 = np.std([0.60 - 0.02, 0.60], ddof=1)
    sd1 = np.std([0.61 - 0.02, 0.61, 0.61 + 0.05], ddof=1)
    assert s.loc["0.1", "2"] == pytest.approx((sd0 + sd1) / 2)
    assert s.loc["0.01", "8"] == pytest.approx(sd1)                            # same seed offsets
    with pytest.raises(ValueError):
        F.prepare_heatmap(runs, "lr", "hidden", "val_acc", stat="median")
    with pytest.raises(ValueError):
        F.prepare_heatmap(runs, "lr", "lr", "val_acc")


def test_heatmap_annotations_equal_cells(runs):
    for stat, cmap in (("mean", "viridis"), ("sd", "rocket_r")):
        fig, ax = F.new_figure()
        assert F.heatmap(runs, "lr", "hidden", "val_acc", stat=stat, ax=ax) is ax
        t = F.prepare_heatmap(runs, "lr", "hidden", "val_acc", stat=stat)
        assert texts(ax.texts) == [f"{v:.3f}" for v in t.to_numpy().ravel()]
        mesh = ax.collections[0]
        assert mesh.get_cmap().name == cmap
        assert texts(ax.get_xticklabels()) == ["2", "8"]
        assert texts(ax.get_yticklabels()) == ["0.01", "0.1"]
        assert ax.get_xlabel() == "hidden" and ax.get_ylabel() == "lr"
        assert ("Seed sd" if stat == "sd" else "Mean") in ax.get_title()
        assert len(fig.axes) == 2                                               # heatmap + colorbar
    _, ax = F.new_figure()
    F.heatmap(runs.iloc[:0], "lr", "hidden", "val_acc", ax=ax)
    assert is_no_data(ax)


# ------------------------------------------------------------------------------------------ 3. ECDF
def test_ecdf_by_level(runs, fig_ax):
    _, ax = fig_ax
    F.ecdf_by_level(runs, "lr", "val_acc", ax=ax)
    assert len(ax.lines) == 2
    assert legend_texts(ax) == ["0.01 (n=12)", "0.1 (n=11)"]
    assert ax.get_legend().get_title().get_text() == "lr"
    check_labelled(ax)
    # each step line ends at 1 and has the level's values as steps
    for line in ax.lines:
        y = np.asarray(line.get_ydata(), dtype=float)
        assert np.nanmax(y) == pytest.approx(1.0)
    _, ax = F.new_figure()
    F.ecdf_by_level(runs.iloc[:0], "lr", "val_acc", ax=ax)
    assert is_no_data(ax)


# ------------------------------------------------------------------------------------------ 4. curves
def test_prepare_and_summarize_curves(runs):
    curves = make_curves(runs)
    d = F.prepare_curves(curves, runs, "hidden", split="train", value="loss")
    assert list(d.columns) == ["run_id", "level", "step", "value"]
    assert len(d) == len(runs) * 5
    assert list(d["level"].cat.categories) == ["2", "8"]
    one = d[(d["run_id"] == "c0-s0")]
    np.testing.assert_allclose(one["value"], 1.0 / (1 + np.array([0, 1, 10, 100, 1000])))
    s = F.summarize_curves(d)
    sub = d[(d["level"] == "8") & (d["step"] == 10)]["value"]
    row = s[(s["level"] == "8") & (s["step"] == 10)].iloc[0]
    assert row["median"] == pytest.approx(np.median(sub))
    assert row["q25"] == pytest.approx(np.quantile(sub, 0.25))
    assert row["q75"] == pytest.approx(np.quantile(sub, 0.75))
    assert row["n"] == 12
    v = F.prepare_curves(curves, runs.iloc[:3], "lr", split="val", value="acc")   # only joined runs
    assert set(v["run_id"]) == set(runs["run_id"].iloc[:3]) and len(v) == 15


def test_learning_curves_lines_band_and_scale(runs, fig_ax):
    _, ax = fig_ax
    curves = make_curves(runs)
    F.learning_curves(curves, runs, "hidden", split="train", value="loss", ax=ax)
    n_levels, runs_per_level = 2, 12
    assert len(ax.lines) == n_levels * (runs_per_level + 1)
    bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
    assert len(bands) == n_levels
    thin = [ln for ln in ax.lines if ln.get_linewidth() < 1]
    assert len(thin) == n_levels * runs_per_level
    assert all(ln.get_alpha() <= 0.3 for ln in thin)
    medians = [ln for ln in ax.lines if ln.get_linewidth() >= 2]
    s = F.summarize_curves(F.prepare_curves(curves, runs, "hidden"))
    np.testing.assert_allclose(medians[0].get_ydata(), s[s["level"] == "2"]["median"])
    assert medians[0].get_color() == thin[0].get_color()                      # same colour per level
    assert ax.get_xscale() == "symlog"                                          # 0..1000 keeps step 0
    assert "symlog" in ax.get_xlabel()
    assert legend_texts(ax) == ["2 (median, n=12)", "8 (median, n=12)",
                                "25–75% quantiles over seeds", "individual runs"]
    assert "25–75% quantiles" in ax.get_title()
    check_labelled(ax)

    _, ax = F.new_figure()
    F.learning_curves(make_curves(runs, steps=(0, 5, 10, 20)), runs, "lr", split="val", value="acc", ax=ax)
    assert ax.get_xscale() == "linear" and ax.get_ylabel() == "validation accuracy"
    _, ax = F.new_figure()
    F.learning_curves(curves, runs, "lr", ax=ax, xscale="log")
    assert ax.get_xscale() == "log" and "step 0 not shown" in ax.get_xlabel()
    assert min(np.min(ln.get_xdata()) for ln in ax.lines) == 1
    _, ax = F.new_figure()
    F.learning_curves(curves.iloc[:0], runs, "lr", ax=ax)
    assert is_no_data(ax)
    _, ax = F.new_figure()
    F.learning_curves(curves, runs, None, ax=ax)                                # one group
    assert len(ax.lines) == len(runs) + 1


# ------------------------------------------------------------------------------------------ 5. variance
def make_variance() -> pd.DataFrame:
    return pd.DataFrame({
        "scope": ["global"] * 5 + ["seed sources"] * 2,
        "source": ["lr", "hidden", "lr:hidden", "seed (residual)", "seed (residual)", "init", "order"],
        "share": [0.5, 0.1, 0.05, 0.35, 0.02, 0.7, 0.3],
        "ci_low": [0.4, 0.0, np.nan, 0.3, np.nan, 0.5, 0.1],
        "ci_high": [0.6, 0.2, np.nan, 0.45, np.nan, 0.9, 0.5],
        "method": ["eta2", "eta2", "eta2", "eta2", "sd", "component", "component"],
    })


def errorbar_segments(ax):
    segs = [s for c in ax.collections if isinstance(c, LineCollection) for s in c.get_segments()]
    return sorted((round(s[0][0], 9), round(s[1][0], 9)) for s in segs)


def test_prepare_variance_shares_filters_methods():
    d = F.prepare_variance_shares(make_variance(), "global")
    assert list(d["source"]) == ["lr", "hidden", "lr:hidden", "seed (residual)"]   # "sd" row skipped
    assert list(d["share"]) == [0.5, 0.1, 0.05, 0.35]
    assert F.prepare_variance_shares(make_variance(), "nowhere").empty


def test_variance_shares_bars_and_error_bars(fig_ax):
    _, ax = fig_ax
    F.variance_shares(make_variance(), scope="global", ax=ax)
    widths = [p.get_width() for p in ax.patches]
    assert widths == pytest.approx([0.5, 0.1, 0.05, 0.35])
    assert texts(ax.get_yticklabels()) == ["lr", "hidden", "lr:hidden", "seed (residual)"]
    assert errorbar_segments(ax) == [(0.0, 0.2), (0.3, 0.45), (0.4, 0.6)]       # NaN CI: no bar
    assert ax.get_xlim() == (0.0, 1.0)
    assert ax.xaxis.get_major_formatter()(0.5, 0) == "50%"
    assert ax.get_xlabel() == "share of variance"
    assert "η²" in ax.get_title() and "global" in ax.get_title()
    assert "50.0%" in texts(ax.texts)

    _, ax = F.new_figure()
    F.variance_shares(make_variance(), scope="seed sources", ax=ax)
    assert "variance component" in ax.get_title()
    assert errorbar_segments(ax) == [(0.1, 0.5), (0.5, 0.9)]


def test_variance_shares_grouped_methods_and_empty():
    v = make_variance()
    extra = v.iloc[:2].assign(method="component", share=[0.45, 0.05], ci_low=[0.3, 0.0], ci_high=[0.55, 0.1])
    v = pd.concat([v, extra], ignore_index=True)
    _, ax = F.new_figure()
    F.variance_shares(v, scope="global", ax=ax)
    assert len(ax.patches) == 6
    assert sorted(p.get_width() for p in ax.patches) == pytest.approx(sorted([0.5, 0.1, 0.05, 0.35, 0.45, 0.05]))
    assert legend_texts(ax) == ["observed share (η²)", "variance component"]
    assert errorbar_segments(ax) == [(0.0, 0.1), (0.0, 0.2), (0.3, 0.45), (0.3, 0.55), (0.4, 0.6)]
    # each error bar sits on its own bar: the bar of width = share at the same height
    bars = {(round(p.get_y() + p.get_height() / 2, 9)): p.get_width() for p in ax.patches}
    for c in ax.collections:
        if isinstance(c, LineCollection):
            for (x0, y0), (x1, _) in c.get_segments():
                assert x0 <= bars[round(y0, 9)] <= x1
    _, ax = F.new_figure()
    F.variance_shares(v, scope="nowhere", ax=ax)
    assert "no variance shares" in " ".join(texts(ax.texts))


# ------------------------------------------------------------------------------------------ 6. seeds
def make_halfwidth() -> pd.DataFrame:
    rows = []
    for cfg, sd in (("lr=0.1", 0.1), ("lr=0.01", 0.05)):
        for k in range(2, 11):
            rows.append(dict(config=cfg, k=k, halfwidth=1.96 * sd / np.sqrt(k), kind="normal"))
            rows.append(dict(config=cfg, k=k, halfwidth=2.1 * sd / np.sqrt(k), kind="bootstrap"))
    return pd.DataFrame(rows)


def test_halfwidth_vs_seeds(fig_ax):
    _, ax = fig_ax
    hw = make_halfwidth()
    d = F.prepare_halfwidth(hw)
    assert list(dict.fromkeys(d["config"])) == ["lr=0.01", "lr=0.1"]            # natural order
    F.halfwidth_vs_seeds(hw, ax=ax)
    assert len(ax.lines) == 4
    styles = sorted(ln.get_linestyle() for ln in ax.lines)
    assert styles == ["-", "-", "--", "--"]
    solid = [ln for ln in ax.lines if ln.get_linestyle() == "-"]
    ys = sorted(tuple(np.round(ln.get_ydata(), 12)) for ln in solid)
    want = sorted(tuple(np.round(1.96 * sd / np.sqrt(np.arange(2, 11)), 12)) for sd in (0.1, 0.05))
    assert ys == want
    dashed = sorted(tuple(np.round(ln.get_ydata(), 12)) for ln in ax.lines if ln.get_linestyle() == "--")
    assert dashed == sorted(tuple(np.round(2.1 * sd / np.sqrt(np.arange(2, 11)), 12)) for sd in (0.1, 0.05))
    assert ax.get_ylabel() == "95% CI half-width of the mean (metric units)"
    assert ax.get_xlabel() == "number of seeds k"
    assert legend_texts(ax)[:2] == ["lr=0.01", "lr=0.1"]
    assert len(legend_texts(ax)) == 4
    _, ax = F.new_figure()
    F.halfwidth_vs_seeds(hw[hw["kind"] == "normal"], ax=ax)
    assert len(ax.lines) == 2 and len(legend_texts(ax)) == 3
    _, ax = F.new_figure()
    F.halfwidth_vs_seeds(hw.iloc[:0], ax=ax)
    assert is_no_data(ax)


# ------------------------------------------------------------------------------------------ 7. failures
def make_failures() -> pd.DataFrame:
    return pd.DataFrame({
        "config": ["lr=0.1", "lr=0.01", "lr=1"],
        "stagnated": [0.2, 0.0, 0.5],
        "diverged": [0.0, 0.0, 0.0],
        "saturated": [np.nan, np.nan, np.nan],
        "single_class": [0.1, 0.0, 0.4],
        "at_untrained": [0.2, 0.1, 0.6],
        "n": [10, 10, 10],
    })


def test_prepare_failures():
    d = F.prepare_failures(make_failures())
    assert list(d.columns) == ["config", "mode", "share"]
    assert list(dict.fromkeys(d["config"])) == ["lr=0.01", "lr=0.1", "lr=1"]
    assert list(dict.fromkeys(d["mode"])) == ["stagnated", "diverged", "single_class", "at_untrained"]
    assert d.set_index(["config", "mode"]).loc[("lr=1", "single_class"), "share"] == 0.4
    assert F.prepare_failures(make_failures()[["config", "saturated"]]).empty


def test_failure_modes(fig_ax):
    _, ax = fig_ax
    F.failure_modes(make_failures(), ax=ax)
    assert len(ax.patches) == 3 * 4
    assert sorted(p.get_width() for p in ax.patches) == pytest.approx(
        sorted([0.2, 0.0, 0.5, 0.0, 0.0, 0.0, 0.1, 0.0, 0.4, 0.2, 0.1, 0.6]))
    assert texts(ax.get_yticklabels()) == ["lr=0.01", "lr=0.1", "lr=1"]
    assert ax.yaxis_inverted()                                                  # first config on top
    assert legend_texts(ax) == ["stagnated (loss plateau)", "diverged (none)", "predicts one class",
                                "accuracy at untrained level"]
    assert ax.get_xlim() == (0.0, 1.0)
    check_labelled(ax, y=False)
    _, ax = F.new_figure()
    F.failure_modes(make_failures().iloc[:1], ax=ax)                            # single configuration
    assert texts(ax.get_yticklabels()) == ["lr=0.1"]
    _, ax = F.new_figure()
    F.failure_modes(make_failures().iloc[:0], ax=ax)
    assert is_no_data(ax)


def test_every_figure_saves_headless(runs, tmp_path):
    import matplotlib.pyplot as plt
    before = plt.get_fignums()
    curves = make_curves(runs)
    calls = [
        (F.outcome_by_factor, (runs, "lr", "val_acc"), {}),
        (F.heatmap, (runs, "lr", "hidden", "val_acc"), {"stat": "sd"}),
        (F.ecdf_by_level, (runs, "hidden", "val_acc"), {}),
        (F.learning_curves, (curves, runs, "lr"), {"split": "val", "value": "acc"}),
        (F.variance_shares, (make_variance(),), {"scope": "global"}),
        (F.halfwidth_vs_seeds, (make_halfwidth(),), {}),
        (F.failure_modes, (make_failures(),), {}),
    ]
    for i, (fn, args, kw) in enumerate(calls):
        fig, ax = F.new_figure(6.4, 4.0)
        assert fn(*args, ax=ax, **kw) is ax
        path = F.save(fig, tmp_path / f"f{i}.png")
        img = mpimg.imread(path)
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
        assert path.stat().st_size < 400_000
    assert plt.get_fignums() == before
