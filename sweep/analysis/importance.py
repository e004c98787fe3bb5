"""Optuna's hyperparameter importances (fANOVA, PED-ANOVA) on the configuration means: a cross-check
of the attribution, which ignores seed noise (``importance.csv``)."""
from __future__ import annotations

import logging
import math
import warnings

import numpy as np
import pandas as pd

from .table import Runs

__all__ = ["IMPORTANCE_COLUMNS", "optuna_importance"]

IMPORTANCE_COLUMNS: list[str] = ["evaluator", "factor", "importance_mean", "importance_sd", "repeats", "note"]


def _distribution(values: pd.Series):
    """Optuna distribution and per-configuration param values for one factor (``values (C,)``)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        v = values.to_numpy(dtype=float)
        lo, hi = float(v.min()), float(v.max())
        log = bool(lo > 0 and hi / lo > 10)
        if pd.api.types.is_integer_dtype(values):
            return IntDistribution(int(lo), int(hi), log=log), [int(x) for x in v]
        return FloatDistribution(lo, hi, log=log), [float(x) for x in v]
    s = values.astype(str)
    return CategoricalDistribution(tuple(sorted(s.unique()))), list(s)


IMPORTANCE_MAX_CONFIGS = 200    # Optuna's evaluators grow fast with trials; a cross-check needs no more
FANOVA_FOREST = {"n_trees": 32, "max_depth": 16}   # Optuna's default 64 x 64 costs 5x for the same ranking


def optuna_importance(runs: Runs, *, repeats: int = 3, seed: int = 0, direction: str = "maximize",
                      max_configs: int = IMPORTANCE_MAX_CONFIGS) -> pd.DataFrame:
    """Optuna hyperparameter importances computed on configuration means (one trial per
    configuration, value = mean of the metric over its seeds).

    fANOVA (``FanovaImportanceEvaluator(seed=seed + k, **FANOVA_FOREST)``, k < ``repeats``; mean and sd
    over repeats)
    and PED-ANOVA (deterministic: one evaluation; its top quantile is widened so that it holds at
    least 5 configurations, said in ``note``). With more than ``max_configs`` configurations, a fixed
    random subset of that many is used (said in ``note``). Returns columns ``evaluator, factor, importance_mean,
    importance_sd, repeats, note``; empty with fewer than 2 configurations or no varying factor.
    """
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, PedAnovaImportanceEvaluator

    first = runs.df.drop_duplicates("config").set_index("config").loc[runs.configs]
    factors = [f for f in runs.factors if first[f].nunique(dropna=False) > 1]
    if len(first) < 2 or not factors:
        return pd.DataFrame(columns=IMPORTANCE_COLUMNS)
    means = runs.df.groupby("config")[runs.metric].mean().reindex(runs.configs).to_numpy(dtype=float)
    subset = ""
    if len(first) > max_configs:
        keep = np.sort(np.random.default_rng(seed).choice(len(first), size=max_configs, replace=False))
        first, means = first.iloc[keep], means[keep]
        subset = f"a random subset of {max_configs} of {len(runs.configs)} configurations; "
    dists, params = {}, {}
    for f in factors:
        dists[f], params[f] = _distribution(first[f])
    trials = [optuna.trial.create_trial(params={f: params[f][i] for f in factors},
                                        distributions=dict(dists), value=float(means[i]))
              for i in range(len(first))]
    old = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(logging.WARNING)
    try:
        study = optuna.create_study(direction=direction)
    finally:
        optuna.logging.set_verbosity(old)
    study.add_trials(trials)
    n = len(trials)
    rows: list[dict] = []

    def run(evaluator) -> tuple[dict[str, float] | None, str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                res = optuna.importance.get_param_importances(study, evaluator=evaluator)
            except Exception as exc:  # noqa: BLE001 - report any evaluator failure as NaN
                return None, f"failed: {type(exc).__name__}: {exc}"
        msgs = sorted({str(w.message) for w in caught if "experimental" not in str(w.message).lower()})
        return res, "; ".join(msgs)

    fan = [run(FanovaImportanceEvaluator(seed=seed + k, **FANOVA_FOREST)) for k in range(max(repeats, 1))]
    ok = [r for r, _ in fan if r is not None]
    note = f"on {n} configuration means; {subset}" + (fan[0][1] or "")
    for f in factors:
        vals = np.array([r[f] for r in ok]) if ok else np.array([np.nan])
        rows.append({"evaluator": "fanova", "factor": f, "importance_mean": float(np.mean(vals)),
                     "importance_sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan,
                     "repeats": len(ok), "note": note.rstrip("; ")})

    q = min(0.5, max(0.1, 5.0 / n))
    res, msg = run(PedAnovaImportanceEvaluator(target_quantile=q))
    note = (f"on {n} configuration means; {subset}deterministic (one evaluation); target quantile {q:.2g} "
            f"(top {math.ceil(q * n)} configurations)")
    if q > 0.1:
        note += "; widened from 0.1 to hold >= 5 configurations"
    if msg:
        note += "; " + msg
    for f in factors:
        rows.append({"evaluator": "ped_anova", "factor": f,
                     "importance_mean": math.nan if res is None else float(res[f]),
                     "importance_sd": math.nan, "repeats": 0 if res is None else 1, "note": note})
    return pd.DataFrame(rows, columns=IMPORTANCE_COLUMNS)
