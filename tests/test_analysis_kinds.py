"""kinds.py and ranges.py: what kind each factor is, and continuous factors cut into labelled ranges."""
import numpy as np
import pandas as pd
import pytest

from sweep.analysis import AnalysisError, prepare
from sweep.analysis.kinds import (FactorKind, KindError, format_value, format_values, infer_kind,
                                  kind_from_dimension, parse_overrides, resolve_kinds)
from sweep.analysis.ranges import cut, range_labels, range_words


def test_kinds_from_the_spec():
    assert kind_from_dimension(None, 1e-4, 1.0, True, False) == FactorKind("continuous", True, True, "spec", 1e-4, 1.0)
    assert kind_from_dimension(None, 2, 64, False, True).kind == "discrete"
    cat = kind_from_dimension((3, 8, 32), None, None, False, False)
    assert cat.kind == "categorical" and cat.ordered
    assert not kind_from_dimension(("a", "b"), None, None, False, False).ordered
    assert FactorKind.from_dict(cat.to_dict()) == cat


def test_inferred_kinds_of_a_foreign_table():
    rng = np.random.default_rng(0)
    lr = pd.Series(10 ** rng.uniform(-4, 0, 40))
    assert infer_kind(lr, 40) == FactorKind("continuous", log=True, ordered=True)
    assert infer_kind(pd.Series(rng.uniform(0, 1, 40)), 40).log is False
    assert infer_kind(pd.Series(rng.integers(1, 200, 40)), 40).kind == "discrete"
    assert infer_kind(pd.Series([3, 8, 32] * 10), 30) == FactorKind("categorical", ordered=True)
    assert infer_kind(pd.Series(["a", "b"] * 10), 20).kind == "categorical"


def test_overrides_and_their_errors():
    first = pd.DataFrame({"lr": [0.1, 0.01, 0.001], "act": ["relu", "tanh", "relu"], "wd": [0.0, 0.1, 0.2]})
    kinds = resolve_kinds(first, ["lr", "act", "wd"], overrides=parse_overrides(["lr", "wd"], []))
    assert kinds["lr"].kind == "continuous" and kinds["lr"].log and not kinds["wd"].log
    with pytest.raises(KindError, match="--continuous act: column 'act' is not numeric"):
        resolve_kinds(first, ["lr", "act"], overrides=parse_overrides(["act"], []))
    with pytest.raises(KindError, match="'wd' has values <= 0"):
        resolve_kinds(first, ["wd"], overrides=parse_overrides(["wd:log"], []))
    with pytest.raises(KindError, match="both as --continuous and as --categorical"):
        parse_overrides(["lr"], ["lr"])
    with pytest.raises(KindError, match="'depth', which is not a factor"):
        resolve_kinds(first, ["lr"], overrides=parse_overrides(["depth"], []))
    # through prepare: an AnalysisError naming the column
    df = first.assign(y=1.0)
    with pytest.raises(AnalysisError, match="column 'act' is not numeric"):
        prepare(df, "y", ["lr", "act"], overrides=parse_overrides(["act"], []))


def test_labels_are_short_and_unique():
    assert format_value(0.00020194502) == "0.000202" and format_value(3.0) == "3" and format_value(96.63) == "96.6"
    labels = format_values([0.00011003, 0.000110041, 0.0024584])
    assert labels == {0.00011003: "0.00011003", 0.000110041: "0.00011004", 0.0024584: "0.00246"}
    df = pd.DataFrame({"lr": [0.0002019450244810229, 0.05], "seed": [0, 0], "y": [0.5, 0.6]})
    assert prepare(df, "y", ["lr"], ["seed"]).configs == ["lr=0.000202", "lr=0.05"]


def test_ranges_hold_enough_configurations_and_read_well():
    rng = np.random.default_rng(1)
    x = pd.Series(10 ** rng.uniform(-4, 0, 40))
    c = cut(x, FactorKind("continuous", log=True), "lr")
    assert 4 <= len(c.categories) <= 6
    counts = pd.Series(c).value_counts()
    assert counts.min() >= 3 and counts.sum() == 40
    assert c.categories[0].startswith("lr < ") and c.categories[-1].startswith("lr ≥ ")
    # every value in its range
    for v, lab in zip(x, c):
        if " ≤ " in lab:
            lo, hi = float(lab.split(" ≤ ")[0]), float(lab.split(" < ")[1])
            assert lo <= v < hi
    assert range_labels([0.0003, 0.003], "lr") == ["lr < 0.0003", "0.0003 ≤ lr < 0.003", "lr ≥ 0.003"]
    assert range_words("0.0003 ≤ lr < 0.003") == "for lr from 0.0003 to 0.003"
    assert range_words("lr < 0.0003") == "for lr below 0.0003" and range_words("lr ≥ 0.003") == "for lr above 0.003"


def test_inferred_scale_follows_how_the_values_were_sampled():
    """Four decades do not make a factor log-scaled: a uniform [0, 0.1] weight decay is linear, a
    log-uniform learning rate and a log-spaced grid are log."""
    rng = np.random.default_rng(0)
    wd = pd.Series(rng.uniform(0, 0.1, 200))
    lr = pd.Series(10 ** rng.uniform(-4, 0, 200))
    grid = pd.Series(10.0 ** np.arange(-5, 1, 0.5))                # 12 configurations, log-spaced
    assert wd.min() / wd.max() < 1e-2 and not infer_kind(wd, 200).log
    assert infer_kind(lr, 200).log and infer_kind(grid, 12).log
