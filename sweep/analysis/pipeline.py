"""The report's analysis pipeline: every table the findings and figures use, computed once from a
runs table (pure pandas; no file is read here). ``analyze`` is what ``sweep report`` and
``sweep analyze`` run.
"""
from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from . import compare, diagnose, sources, summary, variance
from .budget import INDEPENDENT_SAMPLERS, expected_best
from .confirm import confirm_table
from .kinds import FactorKind
from .sampled import SurfaceFit
from .table import Runs, prepare

__all__ = ["Analysis", "analyze"]


@dataclass
class Analysis:
    """Everything the report says, as tables (each also written as a CSV)."""

    runs: Runs
    df: pd.DataFrame
    curves: pd.DataFrame | None
    higher_is_better: bool
    summary: pd.DataFrame
    variance: pd.DataFrame
    importance: pd.DataFrame
    ranking: pd.DataFrame
    comparisons: pd.DataFrame
    halfwidth: pd.DataFrame
    failures: pd.DataFrame
    top_factors: list[str]
    stagnation_share: float
    seconds: float = 0.0
    baseline: dict | None = None   # factor -> level of the study's reference configuration (spec's fixed values)
    surface: SurfaceFit | None = None
    budget: pd.DataFrame = field(default_factory=pd.DataFrame)
    sampler: str | None = None     # grid / random / tpe / qmc (a sweep study), None for a foreign table
    confirm: pd.DataFrame = field(default_factory=pd.DataFrame)   # confirm.confirm_table (sweep confirm)
    seed_plan: pd.DataFrame = field(default_factory=pd.DataFrame)  # sources.plan (crossed / nested seed designs)
    seed_layout: str = ""          # the seed design in words, e.g. "crossed: init 5 × order 4 × split 3"

    @property
    def metric(self) -> str:
        return self.runs.metric

    @property
    def is_accuracy(self) -> bool:
        return self.metric.endswith("acc") or "accuracy" in self.metric

    @property
    def kinds(self) -> dict[str, FactorKind]:
        return self.runs.kinds

    @property
    def sampled(self) -> bool:
        """Some factor is continuous: the attribution is the fitted surface's, not a factorial one."""
        return self.surface is not None


def _importance(runs: Runs, factors: list[str], seed: int, hib: bool) -> pd.DataFrame:
    if not factors or len(runs.configs) < 2:
        return pd.DataFrame()
    try:
        return variance.optuna_importance(runs, seed=seed, direction="maximize" if hib else "minimize")
    except Exception as exc:   # importance is a cross-check; never let it sink the report
        return pd.DataFrame({"evaluator": ["optuna"], "factor": [""], "importance_mean": [np.nan],
                             "importance_sd": [np.nan], "repeats": [0], "note": [f"not computed: {exc}"]})


def _top_factors(var: pd.DataFrame, factors: list[str]) -> list[str]:
    main = var[(var["scope"] == "global") & var["method"].isin(["eta2", "typeII", "fanova"])
               & var["source"].isin(factors)].sort_values("share", ascending=False)
    return main["source"].tolist() or factors


def analyze(df: pd.DataFrame, *, metric: str = "val_acc", factors=None, seed_cols=None,
            curves: pd.DataFrame | None = None, higher_is_better: bool | None = None,
            n_boot: int = 1000, seed: int = 0, baseline: dict | None = None,
            kinds: Mapping[str, FactorKind] | None = None, overrides: Mapping[str, FactorKind] | None = None,
            sampler: str | None = None, confirm: pd.DataFrame | None = None) -> Analysis:
    """Run every analysis on a runs table (see ``sweep.analysis.prepare`` for the columns).
    ``baseline`` (factor -> level) names a reference configuration, e.g. the spec's fixed values;
    ``kinds`` / ``overrides`` the factor kinds (``kinds.py``); ``sampler`` the study's sampler (the
    expected-best curve is drawn for independent samplers only); ``confirm`` the runs of
    ``sweep confirm`` (fresh seeds for the top configurations)."""
    with threadpool_limits(limits=1):   # small matrices throughout: BLAS threads only contend
        return _analyze(df, metric, factors, seed_cols, curves, higher_is_better, n_boot, seed, baseline, kinds,
                        overrides, sampler, confirm)


def _analyze(df, metric, factors, seed_cols, curves, higher_is_better, n_boot, seed, baseline, kinds, overrides,
             sampler, confirm) -> Analysis:
    t0 = time.perf_counter()
    runs = prepare(df, metric, factors, seed_cols, kinds=kinds, overrides=overrides)
    hib = (not metric.endswith("loss")) if higher_is_better is None else higher_is_better
    factors = list(runs.factors)
    columns = [runs.metric] + [c for c in summary.DEFAULT_COLUMNS if c in runs.df.columns and c != runs.metric]
    summ = summary.summarize(runs.df, factors, columns, n_boot=n_boot, seed=seed)
    var, surface = variance.decompose_fit(runs, n_boot=n_boot, seed=seed)
    imp = _importance(runs, factors, seed, hib)
    ranking = compare.rank(runs, n_boot=n_boot, seed=seed, higher_is_better=hib)
    top = ranking["config"].head(4).tolist()
    pairs = compare.compare_pairs(runs, top, n_boot=n_boot, seed=seed, higher_is_better=hib) if len(top) > 1 \
        else pd.DataFrame()
    half = pd.concat([compare.ci_halfwidth(runs, c, seed=seed) for c in top[:3]], ignore_index=True)
    fails = diagnose.failure_modes(runs.df, factors, metric=metric)
    stag = diagnose.stagnation_share_of_spread(runs.df, factors, metric) if "stagnation_step" in runs.df else np.nan
    budget = pd.DataFrame()
    if sampler in INDEPENDENT_SAMPLERS and len(runs.configs) >= 2:
        means = runs.df.groupby("config", sort=False)[metric].mean()
        budget = expected_best(means.to_numpy(), higher_is_better=hib, n_boot=n_boot, seed=seed)
    conf = confirm_table(runs, confirm, higher_is_better=hib, n_boot=n_boot, seed=seed) if confirm is not None \
        else pd.DataFrame()
    design = sources.seed_design(runs)
    plan = pd.DataFrame()
    if design.kind in ("crossed", "nested") and n_boot:
        fit = sources.fit_mixed(runs.matrix(), design)
        plan = sources.plan(fit, seed=seed) if fit is not None else plan
    return Analysis(runs, df, curves, hib, summ, var, imp, ranking, pairs, half, fails, _top_factors(var, factors),
                    stag, time.perf_counter() - t0, baseline, surface, budget, sampler, conf, plan, design.layout)
