"""diagnose.py on tiny hand-made tables with exact answers."""
import numpy as np
import pandas as pd
import pytest

from sweep.analysis.diagnose import failure_modes, is_bimodal, sarle_coefficient, stagnation_share_of_spread

MODES = ["stagnated", "frozen", "diverged", "saturated", "dead", "single_class", "at_untrained", "not_training"]


def _table():
    nan = np.nan
    return pd.DataFrame({
        "cfg": ["trap"] * 5 + ["stable"] * 5 + ["mixed"] * 4,
        "val_acc": [0.6] * 5 + [0.9] * 5 + [0.5, 0.7, 0.8, 0.9],
        "train_acc": [0.6] * 5 + [0.95] * 5 + [0.55, 0.75, 0.85, 0.95],
        "init_train_acc": [0.6] * 5 + [0.5] * 5 + [0.55, 0.5, 0.5, 0.5],
        "rel_weight_change": [0.5] * 5 + [0.4] * 5 + [0.3, 1e-4, 0.3, 0.3],
        "stagnation_step": [10.0] * 5 + [nan] * 5 + [5.0, 7.0, nan, nan],
        "diverged": [False] * 5 + [False] * 5 + [False, False, False, True],
        "single_class": [True] * 5 + [False] * 5 + [True, False, False, False],
        "saturated_frac": [0.0] * 5 + [0.0] * 5 + [0.6, nan, 0.7, 0.2],
        "n_val": [100] * 14,
    })


def test_failure_modes_on_hand_table():
    out = failure_modes(_table(), ["cfg"])
    assert list(out.columns) == ["config", "cfg", "n", *MODES, "bimodal", "bimodal_gap", "sd",
                                 "mean", "robust_looking_but_degenerate"]
    out = out.set_index("cfg")
    trap, stable, mixed = out.loc["trap"], out.loc["stable"], out.loc["mixed"]
    assert trap["config"] == "cfg=trap" and trap["n"] == 5 and mixed["n"] == 4
    assert (trap["stagnated"], trap["single_class"], trap["at_untrained"], trap["not_training"]) == (1, 1, 1, 1)
    # the single-class trap: sd 0 across seeds, but every run predicts the majority class
    assert trap["sd"] == 0 and trap["robust_looking_but_degenerate"]
    # a genuinely stable configuration is not flagged
    assert stable["sd"] == 0 and stable["single_class"] == 0 and not stable["robust_looking_but_degenerate"]
    assert stable["at_untrained"] == 0 and stable["not_training"] == 0
    assert mixed["stagnated"] == 0.5 and mixed["diverged"] == 0.25 and mixed["single_class"] == 0.25
    assert mixed["saturated"] == pytest.approx(2 / 3)  # over the 3 runs with a finite saturated_frac
    assert mixed["at_untrained"] == 0.25  # 0.55 -> 0.55
    assert mixed["not_training"] == 0.5  # untrained, or rel_weight_change < 1e-3
    assert np.isnan(trap["dead"]) and out["frozen"].isna().all()  # no dead_frac or frozen_step column
    assert mixed["mean"] == pytest.approx(0.725) and not mixed["robust_looking_but_degenerate"]
    assert not out["bimodal"].any() and out["bimodal_gap"].isna().all()


def test_degenerate_below_half_the_noise_floor():
    # sd ~0.006 < 0.5 * sqrt(0.6 * 0.4 / 100) = 0.0245, and most runs predict one class
    df = pd.DataFrame({"cfg": "x", "val_acc": [0.6, 0.61, 0.6, 0.59, 0.6], "n_val": 100,
                       "single_class": [True, False, True, True, True]})
    assert failure_modes(df, ["cfg"])["robust_looking_but_degenerate"].iloc[0]
    df["single_class"] = [True, False, False, True, False]
    assert not failure_modes(df, ["cfg"])["robust_looking_but_degenerate"].iloc[0]


def test_frozen_share_from_the_optional_frozen_step():
    df = _table().assign(frozen_step=[15.0] * 5 + [np.nan] * 5 + [16.0, np.nan, np.nan, np.nan])
    out = failure_modes(df, ["cfg"]).set_index("cfg")
    assert out["frozen"].tolist() == [1.0, 0.0, 0.25]
    assert out["stagnated"].tolist() == [1.0, 0.0, 0.5]     # stagnated and frozen are separate flags


def test_missing_optional_columns_give_nan_shares():
    df = pd.DataFrame({"cfg": ["a", "a", "b"], "val_acc": [0.5, 0.6, 0.7]})
    out = failure_modes(df, ["cfg"])
    assert out[MODES].isna().all().all()
    assert list(out["n"]) == [2, 1] and not out["robust_looking_but_degenerate"].any()


def test_bimodal_two_clusters_flagged():
    x = np.r_[[0.5] * 10, [0.9] * 10] + np.random.default_rng(0).normal(0, 1e-4, 20)
    flag, gap, coef = is_bimodal(x)
    assert flag and gap == pytest.approx(0.4, abs=1e-3) and coef > 5 / 9
    df = pd.DataFrame({"cfg": "x", "val_acc": x})
    row = failure_modes(df, ["cfg"]).iloc[0]
    assert row["bimodal"] and row["bimodal_gap"] == pytest.approx(gap)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n", [20, 50])
def test_normal_samples_not_bimodal(seed, n):
    flag, gap, _ = is_bimodal(np.random.default_rng(seed).normal(0.9, 0.01, n))
    assert not flag and np.isnan(gap)


def test_identical_values_and_lone_outliers_are_not_two_modes():
    assert is_bimodal([0.6] * 10)[0] is False
    assert is_bimodal([0.6] * 5 + [0.7] * 5)[0] is True  # two groups of sd 0 with a real gap
    assert is_bimodal([0.0] * 19 + [1.0])[0] is False  # Sarle's b is high, but one value is no mode
    # min_gap: a one-example step of a discrete accuracy is not a second mode
    x = [133 / 142] * 10 + [134 / 142] * 10
    assert is_bimodal(x)[0] and not is_bimodal(x, min_gap=0.02)[0]


def test_sarle_coefficient_by_hand():
    # x = [0, 0, 0, 1]: bias-corrected skewness G1 = 2, excess kurtosis G2 = 4, n = 4
    # b = (2^2 + 1) / (4 + 3 * 3^2 / (2 * 1)) = 5 / 17.5 = 2/7
    assert sarle_coefficient([0, 0, 0, 1]) == pytest.approx(2 / 7)
    x = np.array([0.1, 0.4, 0.35, 0.8, 0.62, 0.5, 0.27, 0.9, 0.05, 0.33, 0.71])
    n, m = x.size, x - x.mean()
    m2, m3, m4 = (m ** 2).mean(), (m ** 3).mean(), (m ** 4).mean()
    g = np.sqrt(n * (n - 1)) / (n - 2) * m3 / m2 ** 1.5
    k = (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * (m4 / m2 ** 2 - 3) + 6)
    expected = (g ** 2 + 1) / (k + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3)))
    assert sarle_coefficient(x) == pytest.approx(expected)
    assert is_bimodal(x)[2] == pytest.approx(expected)
    assert np.isnan(sarle_coefficient([1, 2, 3])) and np.isnan(sarle_coefficient([2.0] * 6))


def test_stagnation_share_of_spread():
    df = pd.DataFrame({"cfg": ["a", "a", "b", "b"], "val_acc": [0.1, 0.5, 0.5, 0.9],
                       "stagnation_step": [3.0, np.nan, 4.0, np.nan]})
    # grand mean 0.5; squares [0.16, 0, 0, 0.16]; the stagnated runs hold 0.16 of 0.32
    assert stagnation_share_of_spread(df, ["cfg"], "val_acc") == pytest.approx(0.5)
    df["stagnation_step"] = np.nan
    assert stagnation_share_of_spread(df, ["cfg"], "val_acc") == 0.0
    assert np.isnan(stagnation_share_of_spread(df.drop(columns="stagnation_step"), ["cfg"], "val_acc"))
