"""Coverage study of the sampled-space attribution (``method = fanova`` rows of
``sweep.analysis.variance.decompose``): simulated studies whose configurations are sampled (lr
log-uniform, hidden and init uniform over three values each), with known shares.

Run: ``.venv/bin/python tools/validate_sampled.py [--sims 200] [--draws 1000] [--jobs 2]`` (part of
``make validate``). For every design and row it prints the truth, the Monte Carlo mean of the estimate
(and its bias in percentage points), the smallest estimate, the coverage of the 95% CI, "OK" when the
coverage is within 93-97% and "OUT" otherwise, the share of CIs entirely below / above the truth, the
mean and smallest CI width. Rows whose truth is 0 (an absent interaction, nothing unexplained) are
printed as "boundary": their figure is the share of intervals that reach 0.

The truth of a design: the outcome of a configuration is ``f(log10 lr, hidden, init) + d_c + e``,
with ``f`` a peaked curve in log lr, level effects for hidden and init, optionally an lr x hidden
interaction (the slope in log lr differs by hidden size), ``d_c ~ N(0, tau^2)`` a configuration's own
deviation (what no surface explains) and ``e ~ N(0, sigma^2)`` the seed (in one design part of the
seed effect is shared by every configuration, as a data split or data order is). The share of a term is its
functional-ANOVA variance under the sampling distribution (lr log-uniform on [1e-4, 1], hidden and init
uniform), computed on a 4001-point grid, over the total variance of one run.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sweep.analysis import prepare  # noqa: E402
from sweep.analysis.variance import decompose  # noqa: E402

HIDDEN = np.array([3, 8, 32])
INITS = np.array(["xavier_normal", "he_normal", "normal:0.01"])
H_EFF = np.array([-1.0, 0.3, 0.7])
I_EFF = np.array([0.5, 0.5, -1.0])
SLOPE = np.array([-1.0, 0.0, 1.0])
ROWS = ["lr", "hidden", "init", "lr × hidden", "lr × init", "hidden × init", "unexplained by the surface",
        "seed (within configuration)"]

DESIGNS = {   # name: (configurations, seeds, parameters)
    "additive, 40 x 10": (40, 10, dict(a=0.1, b=0.08, c=0.08, d=0.0, tau=0.0, sigma=0.06)),
    "additive, 100 x 20": (100, 20, dict(a=0.1, b=0.08, c=0.08, d=0.0, tau=0.0, sigma=0.06)),
    "lr x hidden, 40 x 10": (40, 10, dict(a=0.1, b=0.08, c=0.08, d=0.05, tau=0.0, sigma=0.06)),
    "lr x hidden, 100 x 5": (100, 5, dict(a=0.1, b=0.08, c=0.08, d=0.05, tau=0.0, sigma=0.06)),
    "lr x hidden, 60 x 20, noisy seeds": (60, 20, dict(a=0.1, b=0.08, c=0.08, d=0.05, tau=0.0, sigma=0.15)),
    "lr x hidden + unexplained, 40 x 10": (40, 10, dict(a=0.1, b=0.08, c=0.08, d=0.05, tau=0.03, sigma=0.06)),
    "lr x hidden, 60 x 10, shared seed effects": (60, 10, dict(a=0.1, b=0.08, c=0.08, d=0.05, tau=0.0, sigma=0.045,
                                                               shared=0.04)),
}


def f_true(u: np.ndarray, h: np.ndarray, i: np.ndarray, p: dict) -> np.ndarray:
    """Noise-free mean outcome at log10 lr ``u`` and level indices ``h``, ``i`` (broadcasting)."""
    return (0.85 - p["a"] * (u + 2.3) ** 2 + p["b"] * H_EFF[h] + p["c"] * I_EFF[i]
            + p["d"] * (u + 2.0) * SLOPE[h])


def truth(p: dict) -> dict[str, float]:
    """Shares of every row under the sampling distribution (functional ANOVA on a fine grid)."""
    u = np.linspace(-4, 0, 4001)
    F = f_true(u[:, None, None], np.arange(3)[None, :, None], np.arange(3)[None, None, :], p)
    m = F.mean()
    fu, fh, fi = F.mean(axis=(1, 2)) - m, F.mean(axis=(0, 2)) - m, F.mean(axis=(0, 1)) - m
    V = {"lr": (fu ** 2).mean(), "hidden": (fh ** 2).mean(), "init": (fi ** 2).mean(),
         "lr × hidden": ((F.mean(axis=2) - m - fu[:, None] - fh[None, :]) ** 2).mean(),
         "lr × init": ((F.mean(axis=1) - m - fu[:, None] - fi[None, :]) ** 2).mean(),
         "hidden × init": ((F.mean(axis=0) - m - fh[:, None] - fi[None, :]) ** 2).mean(),
         "unexplained by the surface": p["tau"] ** 2,
         "seed (within configuration)": p["sigma"] ** 2 + p.get("shared", 0.0) ** 2}
    total = sum(V.values())
    return {k: float(v / total) for k, v in V.items()}


def simulate(sim: int, C: int, S: int, p: dict) -> pd.DataFrame:
    """One simulated study: ``C`` sampled configurations x ``S`` replicate seeds."""
    rng = np.random.default_rng(7919 * sim + C * 31 + S)
    u = rng.uniform(-4, 0, C)
    h, i = rng.integers(0, 3, C), rng.integers(0, 3, C)
    mu = f_true(u, h, i, p) + rng.normal(0, p["tau"], C)
    shared = rng.normal(0, p.get("shared", 0.0), S)          # the same for every configuration
    y = mu[:, None] + shared[None, :] + rng.normal(0, p["sigma"], (C, S))
    return pd.DataFrame({"lr": np.repeat(10 ** u, S), "hidden": np.repeat(HIDDEN[h], S),
                         "init": np.repeat(INITS[i], S), "seed": np.tile(np.arange(S), C),
                         "val_acc": y.ravel()})


def one(args) -> pd.DataFrame:
    sim, C, S, p, draws = args
    df = simulate(sim, C, S, p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = decompose(prepare(df, "val_acc", ["lr", "hidden", "init"], ["seed"]), n_boot=draws, seed=sim,
                        conditional=False)
    out = out[out["method"] == "fanova"][["source", "share", "ci_low", "ci_high"]]
    return out.assign(sim=sim)


def summarize(res: pd.DataFrame, true: dict[str, float]) -> pd.DataFrame:
    lines = []
    for src in ROWS:
        r = res[res["source"] == src]
        if r.empty:
            continue
        t = true[src]
        cov = float(((r["ci_low"] <= t + 1e-12) & (t - 1e-12 <= r["ci_high"])).mean())
        boundary = t < 1e-9
        lines.append({"row": src, "truth": t, "mean": r["share"].mean(), "bias_pp": 100 * (r["share"].mean() - t),
                      "min": r["share"].min(), "coverage": cov,
                      "verdict": "boundary" if boundary else ("OK" if 0.93 <= cov <= 0.97 else "OUT"),
                      "below": float((r["ci_high"] < t - 1e-12).mean()), "above": float((r["ci_low"] > t + 1e-12).mean()),
                      "width": (r["ci_high"] - r["ci_low"]).mean(), "min_width": (r["ci_high"] - r["ci_low"]).min()})
    return pd.DataFrame(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sims", type=int, default=200)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--design", action="append", help="run only these designs (name prefix)")
    args = ap.parse_args(argv)
    pd.set_option("display.width", 200)
    for name, (C, S, p) in DESIGNS.items():
        if args.design and not any(name.startswith(d) for d in args.design):
            continue
        t0 = time.time()
        with ProcessPoolExecutor(args.jobs) as ex:
            res = pd.concat(ex.map(one, [(k, C, S, p, args.draws) for k in range(args.sims)]), ignore_index=True)
        table = summarize(res, truth(p))
        print(f"\n== sampled: {name} ({args.sims} simulations, {args.draws} draws, {time.time() - t0:.0f} s)")
        print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
