"""The results folder and the storage: paths, storage URLs (passwords masked), and the export of
a study's runs from the Optuna storage to ``runs.csv``, ``curves.csv`` and ``meta.json``.

The storage is the single source of truth; the CSVs are exports, rewritten from it every time.
Rows are sorted by stable ids (config, then seeds), so the bytes do not depend on ``n_jobs``.
"""
from __future__ import annotations

import json
import os
import platform
import re
import socket
import sys
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import optuna
import pandas as pd

from .design import columns

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)   # heartbeat options

RUN_COLUMNS_FIRST = ["study", "trial", "run_id", "config_id"]
SEED_COLUMNS = ["seed_init", "seed_order", "seed_split"]
METRIC_COLUMNS = ["train_acc", "val_acc", "test_acc", "train_loss", "val_loss", "test_loss"]


def mask_url(url: str) -> str:
    """The storage URL with any password replaced by ``***``."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def default_storage(out_dir: Path) -> str:
    """SQLite file inside the results folder."""
    return f"sqlite:///{(out_dir / 'study.db').resolve()}"


def storage_url_for(out_dir: Path) -> str:
    """The storage a results folder was written from (``meta.json``), else its SQLite file.
    A masked password in meta.json is filled in from ``SWEEP_STORAGE`` when that names the same URL."""
    meta = out_dir / "meta.json"
    if meta.exists():
        url = json.loads(meta.read_text()).get("storage")
        env = os.environ.get("SWEEP_STORAGE")
        if url and "***" in url and env and mask_url(env) == url:
            return env
        if url and "***" not in url:
            return url
    return default_storage(out_dir)


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An RDB storage with heartbeats (so a killed process's trials can be failed and re-run)."""
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    return optuna.storages.RDBStorage(url, heartbeat_interval=5, grace_period=20, **kwargs)


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for pkg in ("sweep", "numpy", "scipy", "pandas", "optuna", "joblib", "scikit-learn"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def runs_frame(study: optuna.Study, spec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per run and the long curves table, from the COMPLETE trials of the study."""
    cols = columns(spec)
    rows, curve_rows = [], []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        result = t.user_attrs.get("result")
        if result is None:
            continue
        cid = t.user_attrs["config_id"]
        params = {cols[k]: v for k, v in t.params.items() if k in cols}
        steps = result["curves"].get("steps", [])
        for k, run in enumerate(result["runs"]):
            run_id = f"{cid}-i{run['seed_init']}-o{run['seed_order']}-s{run['seed_split']}"
            rows.append({"study": spec.study.name, "trial": t.number, "run_id": run_id, "config_id": cid,
                         **params, **run})
            for split in ("train", "val"):
                loss = result["curves"][f"{split}_loss"][k]
                acc = result["curves"][f"{split}_acc"][k]
                for step, lo, ac in zip(steps, loss, acc):
                    curve_rows.append({"run_id": run_id, "step": step, "split": split, "loss": lo, "acc": ac})
    runs = pd.DataFrame(rows)
    if runs.empty:
        return runs, pd.DataFrame(columns=["run_id", "step", "split", "loss", "acc"])
    first = RUN_COLUMNS_FIRST + [c for c in cols.values()] + SEED_COLUMNS + METRIC_COLUMNS
    rest = [c for c in runs.columns if c not in first and c != "duration_s"]
    runs = runs[first + rest + ["duration_s"]]
    runs = runs.sort_values(["config_id", "seed_split", "seed_init", "seed_order"], kind="stable")
    curves = pd.DataFrame(curve_rows)
    order = {r: i for i, r in enumerate(runs["run_id"])}
    curves = curves.assign(_o=curves["run_id"].map(order)).sort_values(["_o", "split", "step"], kind="stable")
    return runs.reset_index(drop=True), curves.drop(columns="_o").reset_index(drop=True)


def export(study: optuna.Study, spec, out_dir: Path, meta: dict[str, Any]) -> dict[str, Path]:
    """Write runs.csv, curves.csv, meta.json and spec.toml into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    runs, curves = runs_frame(study, spec)
    paths = {"runs": out_dir / "runs.csv", "curves": out_dir / "curves.csv", "meta": out_dir / "meta.json"}
    runs.to_csv(paths["runs"], index=False)
    curves.to_csv(paths["curves"], index=False)
    (out_dir / "spec.toml").write_text(spec.source)
    full = {
        "study": spec.study.name, "spec_hash": spec.hash(), "n_runs": int(len(runs)),
        "host": socket.gethostname(), "platform": platform.platform(), "versions": versions(), **meta,
    }
    full["storage"] = mask_url(full.get("storage", ""))
    paths["meta"].write_text(json.dumps(full, indent=2, sort_keys=True, default=str) + "\n")
    return paths
