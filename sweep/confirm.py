"""``sweep confirm``: re-train a study's top configurations on fresh seeds (the winner's curse).

The best of 40 sampled configurations is optimistic by selection: it was picked because its seeds
happened to do well. The top ``K`` configurations (by the study's own objective value, in its
direction) are trained again on ``M`` seeds that no run of the study used (replicate seeds starting at
:data:`SEED_START`, on the study's first data split, so the comparison is on the same data), as a
study of their own in the same storage (named ``<study>.confirm-top<K>-seeds<M>``, so different
requests never mix and each resumes like any sweep), exported to ``results/<study>/confirm/``. The
report then shows selection-time against confirmed means.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import optuna

from .spec import SpecError, StudySpec

__all__ = ["SEED_START", "confirm_spec", "top_configs", "run_confirm"]

SEED_START = 1_000_000      # far above any study's seeds: the confirmation's seeds are fresh


def top_configs(study: optuna.Study, k: int) -> list[tuple[str, dict]]:
    """The ``k`` best finished trials' ``(config_id, params)``, best first (ties: earlier trial)."""
    done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            if t.value is not None and "config_id" in t.user_attrs]
    if not done:
        raise SpecError(f"study {study.study_name!r} has no finished trial to confirm: run it first")
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    done.sort(key=lambda t: (sign * t.value, t.number))
    return [(t.user_attrs["config_id"], dict(t.params)) for t in done[:k]]


def confirm_spec(spec: StudySpec, configs: list[tuple[str, dict]], n_seeds: int) -> StudySpec:
    """The confirmation study: the same spec, the given configurations as a grid, ``n_seeds`` fresh
    replicate seeds from :data:`SEED_START`."""
    name = f"{spec.study.name}.confirm-top{len(configs)}-seeds{n_seeds}"
    seeds = replace(spec.seeds, replicates=n_seeds, init=None, order=None, split=None, start=SEED_START)
    frozen = tuple((cid, tuple(sorted(params.items()))) for cid, params in configs)
    return replace(spec, study=replace(spec.study, name=name, sampler="grid", n_trials=None), seeds=seeds,
                   configs=frozen)


def run_confirm(spec: StudySpec, study: optuna.Study, url: str, *, top: int, seeds: int, out_dir: Path,
                **run_options):
    """Pick the top configurations of ``study`` (in the storage ``url``) and run their confirmation
    into ``out_dir / "confirm"``; returns the runner's summary."""
    from .runner import run_study
    if top < 1 or seeds < 2:
        raise SpecError(f"--top {top} --seeds {seeds} is not allowed; allowed: --top >= 1 and --seeds >= 2")
    configs = top_configs(study, top)
    cspec = confirm_spec(spec, configs, seeds)
    return run_study(cspec, out=out_dir / "confirm", storage=url, role="confirm", **run_options)
