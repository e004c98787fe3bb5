"""Sampled search spaces (STATISTICS.md section 8): truth tests of the functional-ANOVA attribution on
simulated studies whose configurations are sampled (lr log-uniform, hidden and init uniform), with
known shares. The coverage study with >= 200 simulations per design is ``make validate``."""
import warnings

import numpy as np
import pandas as pd
import pytest

from sweep.analysis import prepare
from sweep.analysis.variance import decompose, decompose_fit

H_EFF, I_EFF, SLOPE = np.array([-1.0, 0.3, 0.7]), np.array([0.5, 0.5, -1.0]), np.array([-1.0, 0.0, 1.0])


def f_true(u, h, i, d):
    return 0.85 - 0.1 * (u + 2.3) ** 2 + 0.08 * H_EFF[h] + 0.08 * I_EFF[i] + d * (u + 2.0) * SLOPE[h]


def truth(d, sigma=0.06):
    u = np.linspace(-4, 0, 4001)
    F = f_true(u[:, None, None], np.arange(3)[None, :, None], np.arange(3)[None, None, :], d)
    m = F.mean()
    fu, fh, fi = F.mean(axis=(1, 2)) - m, F.mean(axis=(0, 2)) - m, F.mean(axis=(0, 1)) - m
    V = {"lr": (fu ** 2).mean(), "hidden": (fh ** 2).mean(), "init": (fi ** 2).mean(),
         "lr × hidden": ((F.mean(axis=2) - m - fu[:, None] - fh[None, :]) ** 2).mean(),
         "seed (within configuration)": sigma ** 2}
    V["rest"] = ((F - m) ** 2).mean() - sum(v for k, v in V.items() if k != "seed (within configuration)")
    total = sum(V.values())
    return {k: v / total for k, v in V.items()}


def simulate(seed, C, S, d, sigma=0.06):
    rng = np.random.default_rng(seed)
    u, h, i = rng.uniform(-4, 0, C), rng.integers(0, 3, C), rng.integers(0, 3, C)
    y = f_true(u, h, i, d)[:, None] + rng.normal(0, sigma, (C, S))
    return pd.DataFrame({"lr": np.repeat(10 ** u, S), "hidden": np.repeat(np.array([3, 8, 32])[h], S),
                         "init": np.repeat(np.array(["xavier", "he", "small"])[i], S),
                         "seed": np.tile(np.arange(S), C), "val_acc": y.ravel()})


def _fanova(df, n_boot=200, seed=0):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = decompose(prepare(df, "val_acc", ["lr", "hidden", "init"], ["seed"]), n_boot=n_boot, seed=seed,
                        conditional=False)
    return out[out["method"] == "fanova"].set_index("source")


@pytest.mark.parametrize("d, C, S", [(0.0, 100, 10), (0.05, 60, 5)], ids=["additive", "lr x hidden"])
def test_shares_recover_the_truth(d, C, S):
    """Shares within 5 pp of the truth on average; a factor with >= 10% never below 3%; every factor's
    interval has a width; the shares add to 1."""
    T = truth(d)
    tabs = [_fanova(simulate(k, C, S, d), seed=k) for k in range(6)]
    for src in ("lr", "hidden", "init", "lr × hidden", "seed (within configuration)"):
        mean = np.mean([t.loc[src, "share"] for t in tabs])
        assert abs(mean - T[src]) < 0.05, (src, mean, T[src])
    for t in tabs:
        assert t["share"].sum() == pytest.approx(1.0)
        for src in ("lr", "hidden", "init"):
            assert t.loc[src, "share"] >= 0.03
            assert t.loc[src, "ci_high"] - t.loc[src, "ci_low"] > 0.005
            assert t.loc[src, "ci_low"] <= t.loc[src, "share"] <= t.loc[src, "ci_high"]


def test_a_continuous_factor_is_not_the_configuration_identity():
    """The issue's failure: as factorial terms, lr (one value per configuration) took everything and
    hidden and init got 0.0% (CI 0.0-0.0). With the fitted surface, both get their share."""
    T = truth(0.0)
    t = _fanova(simulate(11, 40, 10, 0.0))
    assert t.loc["hidden", "share"] > 0.05 and t.loc["init", "share"] > 0.05
    assert T["hidden"] > 0.1 and T["init"] > 0.1
    assert not (decompose(prepare(simulate(11, 40, 10, 0.0), "val_acc", ["lr", "hidden", "init"], ["seed"]),
                          n_boot=20, conditional=False)["method"] == "typeII").any()


def test_conditional_rows_are_ranges_of_the_continuous_factor():
    df = simulate(3, 40, 10, 0.0)
    out, fit = decompose_fit(prepare(df, "val_acc", ["lr", "hidden", "init"], ["seed"]), n_boot=50)
    scopes = [s for s in dict.fromkeys(out["scope"]) if s not in ("global", "seed sources")]
    assert 3 <= len(scopes) <= 6 and scopes[0].startswith("lr < ") and scopes[-1].startswith("lr ≥ ")
    sd = out[out["source"] == "seed sd"]
    assert len(sd) == len(scopes) and np.allclose(sd["share"], 0.06, rtol=0.3)
    assert fit is not None and fit.beta.shape == (51, fit.surface.X.shape[1])


def test_resampled_seed_variance_is_centred_on_the_estimate():
    """Resampling 5 seeds puts the draws' sample variance 20% low (E[s2*] = s2 (n - 1) / n); the
    replicate correction centres them on the estimate, so the interval does not sit too high."""
    from sweep.analysis import sampled as SA
    from sweep.analysis.resample import seed_weights
    runs = prepare(simulate(5, 60, 5, 0.0), "val_acc", ["lr", "hidden", "init"], ["seed"])
    Y = runs.matrix()
    rng = np.random.default_rng(0)
    W = seed_weights(Y.shape[1], 400, rng)
    s = SA.fit_runs(runs, Y)
    V = SA._resample(rng, 400, Y.shape[0])
    plain, _ = SA._draws(s, Y, W, V, select=False)
    fixed, _ = SA._draws(s, Y, W, V, select=False, replicate=True)
    assert plain[0, -1] == fixed[0, -1]
    assert plain[1:, -1].mean() / plain[0, -1] == pytest.approx(0.8, abs=0.03)
    assert fixed[1:, -1].mean() / fixed[0, -1] == pytest.approx(1.0, abs=0.03)
