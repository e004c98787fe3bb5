"""Selection-time against confirmed results (``sweep confirm``): the study's top configurations, their
means on the study's seeds (where they were selected) and on fresh seeds, and whether the ranking held.

CIs: 95% percentile bootstrap of each mean over its seeds; the drop (confirmed minus selection-time
mean, oriented so that positive = got worse) by resampling both seed sets independently (the seeds
are different, so nothing is paired)."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from . import resample
from .table import Runs

__all__ = ["COLUMNS", "confirm_table", "kendall"]

COLUMNS = ["config", "config_id", "selection_rank", "selection_mean", "selection_ci_low", "selection_ci_high",
           "n_selection", "confirmed_rank", "confirmed_mean", "confirmed_ci_low", "confirmed_ci_high",
           "n_confirmed", "drop", "drop_ci_low", "drop_ci_high"]


_boot_means = resample.mean_draws


def confirm_table(runs: Runs, confirm: pd.DataFrame, *, higher_is_better: bool = True, n_boot: int = 1000,
                  seed: int = 0) -> pd.DataFrame:
    """One row per confirmed configuration (joined on ``config_id``), in selection order; empty when
    the tables share no configuration or lack ``config_id``."""
    metric = runs.metric
    if "config_id" not in runs.df or "config_id" not in confirm or metric not in confirm:
        return pd.DataFrame(columns=COLUMNS)
    label = runs.df.drop_duplicates("config_id").set_index("config_id")["config"]
    ids = [c for c in dict.fromkeys(confirm["config_id"]) if c in label.index]
    if not ids:
        return pd.DataFrame(columns=COLUMNS)
    rng = np.random.default_rng(seed)
    sign = 1.0 if higher_is_better else -1.0
    rows = []
    for cid in ids:
        a = runs.df.loc[runs.df["config_id"] == cid, metric].to_numpy(dtype=float)
        b = pd.to_numeric(confirm.loc[confirm["config_id"] == cid, metric], errors="coerce").to_numpy(dtype=float)
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        if a.size == 0 or b.size == 0:
            continue
        ba, bb = _boot_means(a, n_boot, rng), _boot_means(b, n_boot, rng)
        drop = sign * (ba - bb)
        rows.append({"config": label[cid], "config_id": cid, "selection_mean": a.mean(),
                     "selection_ci_low": np.percentile(ba, 2.5), "selection_ci_high": np.percentile(ba, 97.5),
                     "n_selection": a.size, "confirmed_mean": b.mean(), "confirmed_ci_low": np.percentile(bb, 2.5),
                     "confirmed_ci_high": np.percentile(bb, 97.5), "n_confirmed": b.size,
                     "drop": sign * (a.mean() - b.mean()), "drop_ci_low": np.percentile(drop, 2.5),
                     "drop_ci_high": np.percentile(drop, 97.5)})
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=COLUMNS)
    out["selection_rank"] = (-sign * out["selection_mean"]).rank(method="min").astype(int)
    out["confirmed_rank"] = (-sign * out["confirmed_mean"]).rank(method="min").astype(int)
    return out.sort_values("selection_rank", kind="stable")[COLUMNS].reset_index(drop=True)


def kendall(table: pd.DataFrame) -> float:
    """Kendall's tau between the selection-time and the confirmed means (NaN below 3 configurations)."""
    if len(table) < 3:
        return float("nan")
    return float(stats.kendalltau(table["selection_mean"], table["confirmed_mean"]).statistic)
