"""Coverage study of the bootstrap CIs in ``sweep.analysis.variance.decompose``.

Run: ``.venv/bin/python tools/validate_variance.py [--sims 1000] [--other-sims 400] [--crossed-sims 400] [--draws 1000]
[--jobs 2]`` (``make validate``): about 11 minutes on 2 idle cores, 9 of them the five crossed studies (longer
when the cores are shared with other jobs). For every checked row it prints the truth
that row's CI targets, the Monte Carlo mean of the estimate, the coverage of that truth, "OK" when the
coverage is within 93-97% and "OUT" otherwise (Monte Carlo SE of a coverage near 95%: 0.7 points at
1000 simulations, 1.1 points at 400), the share of CIs entirely below / above the truth, the mean CI
width and the runtime of each study.

The truths (each row's ``target``):

* ``E[SS]/E[SS_tot]`` (``method = eta2 / typeII``): the expected observed share at this number of
  seeds, E[SS_X] / E[SS_total], with E[SS_X] = SS_X(mu) + df_X sigma^2 (SS_X(mu): the sums of squares
  of the noise-free table, df_X: the term's degrees of freedom; for Type II the rank difference of the
  two models) and E[SS_total] = SS_total(mu) + (N - 1) sigma^2. An observed share is biased upward by
  seed noise (STATISTICS.md section 1); this is the value it estimates. Printed for information:
  ``cov_inf``, the coverage of the S -> infinity share V_X / (V_total + sigma^2), which these CIs do
  not target.
* ``component share`` (``method = component``, scope global): sigma2_config / (sigma2_config +
  sigma^2) with sigma2_config = sum_c n_c (mu_c - mu_n)^2 / ((C - 1) n0) (= sum_c (mu_c - mu)^2 /
  (C - 1) when balanced), what (MS_between - MS_within) / n0 estimates for fixed configurations.
* ``population share`` (scope "seed sources"): the variance of each seed-source part (shared or
  configuration-specific; interactions lumped as the report lumps them) over the total seed variance,
  as simulated. In crossed designs the eta2 truths account for shared effects, which cancel between
  configurations (``crossed_truth``).

Studies:

1. ``replicate``: factors lr (3 levels) x hidden (4), 20 seed tuples in a replicate design, fixed
   effects on an accuracy-like scale and independent seed noise, y[c, s] = mu_c + e[c, s],
   e ~ N(0, 0.02^2); global rows and the conditional rows within each level of lr.
2. ``three factors``: lr x hidden x optimizer (3 x 4 x 2) with a three-way interaction, 10 seeds:
   the "higher-order interactions" row.
3. ``unbalanced``: design 1 with the same 12 of 240 runs missing in every simulation: Type II rows
   and the n0 components.
4. ``crossed, ...``: design 1's grid (12 configurations) on a crossed init x order x split seed design
   (the same seed tuples for every configuration), five studies: ``shared`` (every seed effect the same
   for every configuration: a hard split is hard for all of them; variances init 2, order 1, split 4,
   init x split 1/2, error 1, in units of SIGMA^2), ``independent`` (the same variances drawn afresh per
   configuration), and ``mix`` (shared init 1, order 1/2, split 3, init x split 0.3; per configuration
   init 2, order 1/2, split 1/2, init x order 0.3; error 1) at 5 x 4 x 3, 3 x 3 x 3 and 10 x 5 x 4
   levels. Checked: every seed-source row (shares of the seed variance: each source's shared part, its
   configuration-specific part, the interactions, the residual; generalized intervals of the mixed
   model) and the global rows (eta2 and component, whose intervals in crossed designs also come from
   the mixed model). Rows whose truth is 0 are on the boundary (an interval reaching 0 covers them).
"""
from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sweep.analysis import variance as V  # noqa: E402
from sweep.analysis.table import prepare  # noqa: E402
from sweep.analysis.variance import decompose  # noqa: E402

LR = [0.001, 0.01, 0.1]
HIDDEN = [3, 16, 64, 256]
OPT = ["adam", "sgd"]
S = 20
SIGMA = 0.02
ALPHA = np.array([-0.02, 0.0, 0.02])
BETA = np.array([-0.015, -0.005, 0.005, 0.015])
_G = np.array([[1.0, -1.0, 0.5, -0.5], [-0.5, 0.5, -1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]) * 0.008
GAMMA = _G - _G.mean(0, keepdims=True) - _G.mean(1, keepdims=True) + _G.mean()
MU = 0.9 + ALPHA[:, None] + BETA[None, :] + GAMMA          # (3, 4) configuration means
# three factors: adds an optimizer effect, its interaction with lr and a three-way interaction
S3 = int(os.environ.get("VALIDATE_SEEDS3", 20))
_D = np.array([-0.01, 0.01])
_H = np.array([[[1, -1], [-1, 1], [0, 0], [0, 0]], [[-1, 1], [1, -1], [1, -1], [-1, 1]],
               [[0, 0], [0, 0], [-1, 1], [1, -1]]], dtype=float) * 0.006
MU3 = MU[:, :, None] + _D[None, None, :] + np.array([0.004, 0.0, -0.004])[:, None, None] * np.array([1, -1]) + _H
# unbalanced: the same missing runs (config index, seed index) in every simulation
MISSING = [(0, 1), (0, 7), (1, 3), (2, 2), (2, 15), (4, 9), (5, 0), (6, 18), (8, 4), (9, 11), (10, 6), (11, 19)]
# crossed seed design: variances (in units of SIGMA^2) and levels
RESIDUAL_LABEL = "residual (configuration × init × order × split interaction and error)"

INTERVAL = {"eta2": "basic, logit, bias-corr., expanded", "typeII": "basic, logit, bias-corr., expanded",
            "component": "basic, bias-corr., expanded", "gpq": "generalized (GPQ)",
            "sd": "percentile"}


# ------------------------------------------------------------------------------------- helpers

def grid_frame(mu: np.ndarray, names: list[str], levels: list[list], n_seeds: int, y: np.ndarray) -> pd.DataFrame:
    """Replicate-design runs table: ``mu`` only fixes the grid shape, ``y`` has shape (*grid, n_seeds)."""
    idx = np.meshgrid(*[np.arange(n) for n in mu.shape], np.arange(n_seeds), indexing="ij")
    df = pd.DataFrame({name: pd.Series(lv).to_numpy()[ix.ravel()] for name, lv, ix in zip(names, levels, idx)})
    s = idx[-1].ravel()
    df["seed_init"], df["seed_order"], df["seed_split"] = s, s, 0
    df["val_acc"] = y.ravel()
    return df


def expected_shares(mu: np.ndarray, names: list[str], levels: list[list], n_seeds: int,
                    missing: list[tuple[int, int]] = ()) -> dict[tuple[str, str, str], float]:
    """Truths of the eta2 / typeII / component rows: ``{(scope, source, method): value}`` from the
    noise-free table (every run = its configuration mean) and sigma^2 = SIGMA^2."""
    s2 = SIGMA ** 2
    y = np.repeat(mu[..., None], n_seeds, axis=-1)
    df = grid_frame(mu, names, levels, n_seeds, y)
    C = mu.size
    drop = [c * n_seeds + s for c, s in missing]
    df = df.drop(index=drop).reset_index(drop=True)
    runs = prepare(df, "val_acc", names)
    Y = runs.matrix()
    N = int(np.isfinite(Y).sum())
    ow = V._oneway(Y, np.ones((1, Y.shape[1])))
    e_tot = float(ow.ss_total[0]) + (N - 1) * s2
    out = {("global", V.BETWEEN, "eta2"): (float(ow.ss_between[0]) + (C - 1) * s2) / e_tot,
           ("global", V.WITHIN, "eta2"): (N - C) * s2 / e_tot}
    n = np.isfinite(Y).sum(axis=1).astype(float)
    n0 = (N - (n ** 2).sum() / N) / (C - 1)
    m = np.nanmean(Y, axis=1)
    mn = (n * m).sum() / N
    s2cfg = (n * (m - mn) ** 2).sum() / ((C - 1) * n0)
    icc = s2cfg / (s2cfg + s2)
    out[("global", V.BETWEEN, "component")] = icc
    out[("global", V.WITHIN, "component")] = 1 - icc
    out[("global", V.ICC, "component")] = icc
    fac = V._factors(runs)
    if runs.balanced:
        ss = V.factorial_ss(runs).set_index("source")
        for src, r in ss.drop("total").iterrows():
            out[("global", src, "eta2")] = (r["ss"] + r["df"] * s2) / e_tot
        # conditional scopes: within each level of the first factor, one-way over the other factors
        a = 0
        for li, lv in enumerate(fac.levels[a]):
            sel = fac.codes[:, a] == li
            Ys = Y[sel]
            ows = V._oneway(Ys, np.ones((1, Y.shape[1])))
            Cs, Ns = Ys.shape[0], Ys.size
            et = float(ows.ss_total[0]) + (Ns - 1) * s2
            scope = f"{names[a]}={lv}"
            out[(scope, V.BETWEEN, "eta2")] = (float(ows.ss_between[0]) + (Cs - 1) * s2) / et
            out[(scope, V.WITHIN, "eta2")] = (Ns - Cs) * s2 / et
            if len(names) == 2:       # the other factor's one-way share is the between share
                out[(scope, names[1], "eta2")] = out[(scope, V.BETWEEN, "eta2")]
    else:
        ss, _, _ = V._typeII(Y, np.ones((1, Y.shape[1])), fac)
        X, terms, index = V._design(fac, np.nonzero(np.isfinite(Y))[0])
        allcols = np.arange(X.shape[1])
        for i, T in enumerate(terms):
            containing = [j for j, U in enumerate(terms) if set(T) <= set(U)]
            without = np.setdiff1d(allcols, np.concatenate([index[j] for j in containing]))
            df_t = np.linalg.matrix_rank(X[:, np.union1d(without, index[i])]) - np.linalg.matrix_rank(X[:, without])
            out[("global", V._term_label(T, names), "typeII")] = (float(ss[T][0]) + df_t * s2) / e_tot
        out[("global", V.RESIDUAL, "typeII")] = (N - C) * s2 / e_tot
    return out


def population_shares(mu: np.ndarray) -> dict[str, float]:
    """S -> infinity shares of the balanced factorial terms and between/within (information only)."""
    s2 = SIGMA ** 2
    k = mu.ndim
    terms = [(a,) for a in range(k)] + list(itertools.combinations(range(k), 2))
    ss = V._term_ss(mu[None], terms)
    var = {T: float(v[0]) / mu.size for T, v in ss.items()}
    vcfg = float(((mu - mu.mean()) ** 2).mean())
    tot = vcfg + s2
    names = ["lr", "hidden", "opt"][:k]
    out = {V._term_label(T, names): v / tot for T, v in var.items()}
    if k >= 3:
        out[V.HIGHER] = (vcfg - sum(var.values())) / tot
    out[V.BETWEEN], out[V.WITHIN], out[V.RESIDUAL] = vcfg / tot, s2 / tot, s2 / tot
    return out


def _decompose(df: pd.DataFrame, factors: list[str], draws: int, seed: int, conditional: bool) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = decompose(prepare(df, "val_acc", factors), n_boot=draws, seed=seed, conditional=conditional)
    return out[out["method"].isin(["eta2", "typeII", "component"])]


# ------------------------------------------------------------------------------------- studies

def sim_replicate(i: int, draws: int) -> pd.DataFrame:
    rng = np.random.default_rng(10_000 + i)
    y = MU[..., None] + rng.normal(0.0, SIGMA, size=(*MU.shape, S))
    out = _decompose(grid_frame(MU, ["lr", "hidden"], [LR, HIDDEN], S, y), ["lr", "hidden"], draws, i, True)
    return out.assign(sim=i)


def sim_three(i: int, draws: int) -> pd.DataFrame:
    rng = np.random.default_rng(20_000 + i)
    y = MU3[..., None] + rng.normal(0.0, SIGMA, size=(*MU3.shape, S3))
    out = _decompose(grid_frame(MU3, ["lr", "hidden", "opt"], [LR, HIDDEN, OPT], S3, y),
                     ["lr", "hidden", "opt"], draws, i, False)
    return out[out["scope"] == "global"].assign(sim=i)


def sim_unbalanced(i: int, draws: int) -> pd.DataFrame:
    rng = np.random.default_rng(30_000 + i)
    y = MU[..., None] + rng.normal(0.0, SIGMA, size=(*MU.shape, S))
    df = grid_frame(MU, ["lr", "hidden"], [LR, HIDDEN], S, y)
    df = df.drop(index=[c * S + s for c, s in MISSING])
    out = _decompose(df, ["lr", "hidden"], draws, i, False)
    return out[out["scope"] == "global"].assign(sim=i)


SOURCES = ("init", "order", "split")


def _label(key: tuple[str, ...]) -> str:
    """The variance.csv row a simulated term belongs to: key = ("s" shared | "c" per configuration, sources...)."""
    kind, srcs = key[0], key[1:]
    if kind == "c" and len(srcs) == len(SOURCES):
        return RESIDUAL_LABEL
    if len(srcs) >= 2:
        return "interactions of seed sources" + (" (shared)" if kind == "s" else " × configuration")
    return f"{srcs[0]} (shared)" if kind == "s" else f"{srcs[0]} × configuration"


def crossed_truth(var: dict[tuple[str, ...], float], levels: tuple[int, ...]) -> dict:
    """Truths of a crossed study: seed-source shares of the total seed variance, the global component
    rows sigma2_config / (sigma2_config + sigma2_seed) and the global eta2 rows E[SS] / E[SS_total]
    (shared effects cancel between configurations: a configuration mean's noise is the sum over the
    configuration-specific terms of sigma2_U / (levels of U's sources))."""
    tot = sum(var.values())
    out: dict = {}
    for key, v in var.items():
        out[_label(key)] = out.get(_label(key), 0.0) + v / tot
    for lab in {_label(("s", s)) for s in SOURCES} | {_label(("c", s)) for s in SOURCES}:
        out.setdefault(lab, 0.0)
    s2 = SIGMA ** 2
    C, S = MU.size, int(np.prod(levels))
    n_of = dict(zip(SOURCES, levels))
    theta = float(((MU - MU.mean()) ** 2).sum() / (C - 1)) / s2
    icc = theta / (theta + tot)
    for src, val in ((V.BETWEEN, icc), (V.WITHIN, 1 - icc), (V.ICC, icc)):
        out[("global", src, "component")] = val
    v_mean = sum(v / np.prod([n_of[x] for x in k[1:]]) for k, v in var.items() if k[0] == "c")
    e_within = C * S * sum(v * (1 - 1 / np.prod([n_of[x] for x in k[1:]])) for k, v in var.items())
    ss_mu = {"between": S * float(((MU - MU.mean()) ** 2).sum()) / s2}
    terms = [(0,), (1,), (0, 1)]
    for T, v in V._term_ss(MU[None], terms).items():
        ss_mu[V._term_label(T, ["lr", "hidden"])] = float(v[0]) * S / s2
    dfs = {"lr": 2, "hidden": 3, "lr × hidden": 6}
    e_between = ss_mu["between"] + (C - 1) * S * v_mean
    e_tot = e_between + e_within
    out[("global", V.BETWEEN, "eta2")] = e_between / e_tot
    out[("global", V.WITHIN, "eta2")] = e_within / e_tot
    out[("global", V.RESIDUAL, "eta2")] = e_within / e_tot
    for src, d in dfs.items():
        out[("global", src, "eta2")] = (ss_mu[src] + d * S * v_mean) / e_tot
    return out


# variances in units of SIGMA^2: ("s", ...) shared by every configuration, ("c", ...) drawn per configuration
_SHARED = {("s", "init"): 2.0, ("s", "order"): 1.0, ("s", "split"): 4.0, ("s", "init", "split"): 0.5,
           ("c", "init", "order", "split"): 1.0}
_INDEP = {("c",) + k[1:]: v for k, v in _SHARED.items()}
_MIX = {("s", "init"): 1.0, ("s", "order"): 0.5, ("s", "split"): 3.0, ("c", "init"): 2.0, ("c", "order"): 0.5,
        ("c", "split"): 0.5, ("s", "init", "split"): 0.3, ("c", "init", "order"): 0.3,
        ("c", "init", "order", "split"): 1.0}
CROSSED_STUDIES = {"crossed, shared 5x4x3": (_SHARED, (5, 4, 3)), "crossed, independent 5x4x3": (_INDEP, (5, 4, 3)),
                   "crossed, mix 5x4x3": (_MIX, (5, 4, 3)), "crossed, mix 3x3x3": (_MIX, (3, 3, 3)),
                   "crossed, mix 10x5x4": (_MIX, (10, 5, 4))}


def sim_crossed(i: int, draws: int, study: str) -> pd.DataFrame:
    var, levels = CROSSED_STUDIES[study]
    rng = np.random.default_rng([70_000, list(CROSSED_STUDIES).index(study), i])
    grids = np.meshgrid(*[np.arange(n) for n in levels], indexing="ij")
    n_of = dict(zip(SOURCES, levels))
    C = MU.size
    y = np.broadcast_to(MU.reshape(C, *[1] * len(levels)), (C, *levels)).copy()
    for key, v in var.items():
        srcs = key[1:]
        ix = tuple(grids[SOURCES.index(x)] for x in srcs)
        eff = rng.normal(0.0, SIGMA * np.sqrt(v), size=(C if key[0] == "c" else 1, *[n_of[x] for x in srcs]))
        y += eff[(slice(None), *ix)]
    li, hi = np.unravel_index(np.arange(C), MU.shape)
    frames = [pd.DataFrame({"lr": LR[li[c]], "hidden": HIDDEN[hi[c]], "seed_init": grids[0].ravel(),
                            "seed_order": grids[1].ravel(), "seed_split": grids[2].ravel(), "val_acc": y[c].ravel()})
              for c in range(C)]
    out = decompose(prepare(pd.concat(frames, ignore_index=True), "val_acc", ["lr", "hidden"]), n_boot=draws,
                    seed=i, conditional=False)
    keep = (out["scope"] == V.SEED_SCOPE) | ((out["scope"] == "global") & out["method"].isin(["eta2", "component"]))
    return out[keep].assign(sim=i)


# ------------------------------------------------------------------------------------- summary

def summarize(study: str, res: pd.DataFrame, truth: dict, info: dict | None = None) -> pd.DataFrame:
    """One line per (scope, source, method): coverage of ``truth[(scope, source, method)]``."""
    lines = []
    for (scope, src, method), g in res.groupby(["scope", "source", "method"], sort=False):
        key = (scope, src, method) if (scope, src, method) in truth else src
        if key not in truth:
            continue
        t = truth[key]
        cov = float(((g["ci_low"] <= t) & (t <= g["ci_high"])).mean())
        row = {"study": study, "scope": scope, "source": src, "method": method,
               "interval": INTERVAL["gpq" if "generalized" in g["note"].iloc[0] else method],
               "target": ("population share" if scope == V.SEED_SCOPE else
                          "component share" if method == "component" else "E[SS]/E[SS_tot]"),
               "truth": t, "mc_mean": g["share"].mean(), "n": len(g), "coverage": cov,
               "band": ("OK" if 0.93 <= cov <= 0.97 else "OUT") + (" (truth 0: boundary)" if t == 0 else ""),
               "below": float((g["ci_high"] < t).mean()), "above": float((g["ci_low"] > t).mean()),
               "width": float((g["ci_high"] - g["ci_low"]).mean())}
        if info is not None and scope == "global" and method == "eta2" and src in info:
            row["cov_inf"] = float(((g["ci_low"] <= info[src]) & (info[src] <= g["ci_high"])).mean())
        lines.append(row)
    return pd.DataFrame(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sims", type=int, default=1000, help="simulations of the replicate study")
    ap.add_argument("--draws", type=int, default=1000, help="bootstrap draws per simulation")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--other-sims", type=int, default=400,
                    help="simulations of the three-factor, unbalanced and crossed studies")
    ap.add_argument("--crossed-sims", type=int, default=400, help="simulations of each crossed seed-source study")
    args = ap.parse_args()
    t_start = time.perf_counter()
    studies = [("replicate", sim_replicate, args.sims,
                expected_shares(MU, ["lr", "hidden"], [LR, HIDDEN], S), population_shares(MU)),
               ("three factors", sim_three, args.other_sims,
                expected_shares(MU3, ["lr", "hidden", "opt"], [LR, HIDDEN, OPT], S3), population_shares(MU3)),
               ("unbalanced", sim_unbalanced, args.other_sims,
                expected_shares(MU, ["lr", "hidden"], [LR, HIDDEN], S, MISSING), None),
               *[(name, partial(sim_crossed, study=name), args.crossed_sims, crossed_truth(*CROSSED_STUDIES[name]),
                  None) for name in CROSSED_STUDIES]]
    tables, times = [], []
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for name, fn, n, truth, info in studies:
            if n <= 0:
                continue
            t0 = time.perf_counter()
            parts = list(pool.map(fn, range(n), [args.draws] * n, chunksize=max(1, n // (8 * args.jobs))))
            tables.append(summarize(name, pd.concat(parts, ignore_index=True), truth, info))
            times.append((name, n, time.perf_counter() - t0))
    table = pd.concat(tables, ignore_index=True)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    pd.set_option("display.max_colwidth", 60)
    print(f"coverage of the 95% CIs of sweep.analysis.variance.decompose: {args.draws} bootstrap draws per "
          "simulation; band OK = coverage within 93-97%; below/above: CI entirely below/above the truth; "
          "cov_inf (information only): coverage of the S -> infinity share, which eta2 CIs do not target")
    for name, n, sec in times:
        sub = table[table["study"] == name].drop(columns="study")
        print(f"\n== {name}: {n} simulations, {sec:.1f} s")
        print(sub.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep=""))
    n_out = int((~table["band"].str.startswith("OK")).sum())
    n_bound = int(table["band"].str.contains("boundary").sum())
    print(f"\n{len(table)} rows, {len(table) - n_out} OK, {n_out} OUT ({n_bound} of them with the truth at the "
          f"boundary 0)")
    print(f"runtime: {time.perf_counter() - t_start:.1f} s ({args.jobs} processes)")


if __name__ == "__main__":
    main()
