"""compare.py on tiny hand-made tables with exact answers."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sweep.analysis import AnalysisError, prepare
from sweep.analysis.compare import ci_halfwidth, compare_pairs, rank, seeds_needed

Z = 1.959963984540054 + 0.8416212335729143  # z_.975 + z_.8


def runs_of(values: dict, seeds: dict | None = None):
    """A Runs with one config per key (label "cfg=<key>"), seeds 0..n-1 unless given."""
    rows = [{"cfg": c, "seed": s, "acc": v}
            for c, ys in values.items() for s, v in zip((seeds or {}).get(c, range(len(ys))), ys)]
    return prepare(pd.DataFrame(rows), "acc", ["cfg"], ["seed"])


def test_rank_order_and_columns():
    runs = runs_of({"a": [0.5, 0.6, 0.7], "b": [0.9, 0.8, 0.85], "c": [0.7, 0.7, 0.7]})
    out = rank(runs, n_boot=200)
    assert list(out.columns) == ["rank", "config", "n", "mean", "sd", "ci_low", "ci_high"]
    assert list(out["config"]) == ["cfg=b", "cfg=c", "cfg=a"] and list(out["rank"]) == [1, 2, 3]
    assert out["mean"].tolist() == pytest.approx([0.85, 0.7, 0.6])
    assert out["sd"].iloc[2] == pytest.approx(0.1)
    assert (out["ci_low"] <= out["mean"]).all() and (out["mean"] <= out["ci_high"]).all()
    low = rank(runs, n_boot=200, higher_is_better=False)
    assert list(low["config"]) == ["cfg=a", "cfg=c", "cfg=b"]


def test_rank_resamples_seeds_jointly():
    base = [0.1, 0.5, 0.2, 0.9, 0.4, 0.7]
    runs = runs_of({"a": base, "b": [v + 1 for v in base]})
    out = rank(runs, n_boot=500, seed=1).set_index("config")
    # the same seed indices in every draw: b's bootstrap means are a's plus exactly 1
    assert out.loc["cfg=b", "ci_low"] - out.loc["cfg=a", "ci_low"] == pytest.approx(1.0, abs=1e-12)
    assert out.loc["cfg=b", "ci_high"] - out.loc["cfg=a", "ci_high"] == pytest.approx(1.0, abs=1e-12)
    again = rank(runs, n_boot=500, seed=1).set_index("config")
    assert again.equals(out)


def test_p_a_beats_b_ties_count_half():
    runs = runs_of({"a": [1, 2, 3, 4], "b": [1, 1, 4, 2]})
    row = compare_pairs(runs, ["cfg=a", "cfg=b"], n_boot=300).iloc[0]
    # d = [0, 1, -1, 2]: two wins, one tie, one loss
    assert row["p_a_beats_b"] == 0.625
    assert row["paired"] and row["n_common"] == 4
    assert row["mean_diff"] == 0.5
    assert row["diff_ci_low"] <= 0.5 <= row["diff_ci_high"]
    assert 0 <= row["p_ci_low"] <= 0.625 <= row["p_ci_high"] <= 1
    assert row["wilcoxon_p"] == pytest.approx(stats.wilcoxon([0, 1, -1, 2], zero_method="zsplit").pvalue)
    # sd(d) = sqrt(5/3); n = (Z * sd / 0.5)^2 = 52.33 -> 53
    assert row["seeds_needed"] == 53 == math.ceil((Z * math.sqrt(5 / 3) / 0.5) ** 2)
    assert row["separable"]


def test_seeds_needed_formula():
    d = np.array([0.01, 0.03, -0.01, 0.02, 0.05])
    expected = math.ceil((Z * d.std(ddof=1) / abs(d.mean())) ** 2)
    assert seeds_needed(d) == expected == seeds_needed(-d)
    assert np.isnan(seeds_needed(np.zeros(5))) and np.isnan(seeds_needed([1.0]))
    assert seeds_needed([1.0, 1.0, 1.0]) == 2  # sd 0: floor of two seeds


def test_lower_is_better_flips_the_sign():
    runs = runs_of({"a": [0.1, 0.2, 0.3], "b": [0.2, 0.4, 0.5]})
    row = compare_pairs(runs, ["cfg=a", "cfg=b"], n_boot=100, higher_is_better=False).iloc[0]
    assert row["mean_diff"] == pytest.approx(0.5 / 3) and row["p_a_beats_b"] == 1.0


def test_not_separable_when_all_differences_are_zero():
    runs = runs_of({"a": [0.6, 0.7, 0.8], "b": [0.6, 0.7, 0.8]})
    row = compare_pairs(runs, ["cfg=a", "cfg=b"], n_boot=100).iloc[0]
    assert row["mean_diff"] == 0 and row["p_a_beats_b"] == 0.5 and row["wilcoxon_p"] == 1.0
    assert np.isnan(row["seeds_needed"]) and not row["separable"]
    assert (row["diff_ci_low"], row["diff_ci_high"]) == (0.0, 0.0)


def test_not_separable_beyond_feasible_seeds():
    runs = runs_of({"a": [1.0, 2.0, 3.0, 4.0], "b": [1.001, 1.0, 4.0, 3.998]})  # mean(d) tiny, sd large
    row = compare_pairs(runs, ["cfg=a", "cfg=b"], n_boot=100).iloc[0]
    assert row["seeds_needed"] > 1000 and not row["separable"]


def test_unpaired_fallback_without_common_seeds():
    a, b = [1, 2, 3, 4], [0.5, 2, 5, 6]
    runs = runs_of({"a": a, "b": b}, seeds={"a": [0, 1, 2, 3], "b": [4, 5, 6, 7]})
    row = compare_pairs(runs, ["cfg=a", "cfg=b"], n_boot=200).iloc[0]
    assert not row["paired"] and row["n_common"] == 0
    # pairs a beats b: 1 + 1.5 + 2 + 2 = 6.5 of 16
    assert row["p_a_beats_b"] == 6.5 / 16
    mw = stats.mannwhitneyu(a, b, alternative="two-sided")
    assert row["p_a_beats_b"] == mw.statistic / 16
    assert row["wilcoxon_p"] == pytest.approx(mw.pvalue)
    assert row["mean_diff"] == pytest.approx(2.5 - 3.375)


def test_pairs_are_consecutive_then_best_against_rest():
    runs = runs_of({k: [i, i + 1, i + 0.5] for i, k in enumerate("wxyz")})
    out = compare_pairs(runs, ["cfg=z", "cfg=y", "cfg=x", "cfg=w"], n_boot=50)
    assert list(zip(out["a"], out["b"])) == [("cfg=z", "cfg=y"), ("cfg=y", "cfg=x"), ("cfg=x", "cfg=w"),
                                             ("cfg=z", "cfg=x"), ("cfg=z", "cfg=w")]
    assert (out["mean_diff"] > 0).all() and (out["p_a_beats_b"] == 1).all()
    with pytest.raises(AnalysisError):
        compare_pairs(runs, ["cfg=z", "cfg=nope"])


def test_halfwidth_normal_curve_and_bootstrap_rows():
    runs = runs_of({"a": [1, 2, 3, 4, 5]})
    out = ci_halfwidth(runs, "cfg=a", n_boot=300)
    assert list(out.columns) == ["config", "k", "halfwidth", "kind"]
    normal = out[out["kind"] == "normal"].set_index("k")["halfwidth"]
    assert list(normal.index) == list(range(2, 51))
    sd = math.sqrt(2.5)
    assert normal[4] == pytest.approx(1.96 * sd / 2)
    assert normal[25] == pytest.approx(1.96 * sd / 5)
    boot = out[out["kind"] == "bootstrap"].set_index("k")["halfwidth"]
    assert list(boot.index) == [2, 3, 4, 5] and (boot > 0).all()
    assert boot[5] < boot[2]
    with pytest.raises(AnalysisError):
        ci_halfwidth(runs, "cfg=b")


@pytest.mark.parametrize("n", [3, 6, 10, 13, 20])
def test_fast_wilcoxon_equals_scipy(n):
    """The vectorised sign-flip enumeration (ties, n <= 13) gives scipy's own p-value."""
    from sweep.analysis.compare import _wilcoxon_p
    rng = np.random.default_rng(n)
    for _ in range(5):
        d = np.round(rng.normal(0.3, 1, n))            # ties and zeros
        assert _wilcoxon_p(d) == pytest.approx(stats.wilcoxon(d, zero_method="zsplit").pvalue, rel=1e-12)
