"""What a study runs: configurations (grid cells or sampler proposals) and the seed set.

A configuration is a dict ``{dotted key: value}`` over the spec's ``[space]``. Optuna only stores
None/bool/int/float/str, so categorical values are stored as *labels* (``(16, 16)`` -> ``"16x16"``);
``label``/``value_of`` translate. ``apply`` turns a configuration into the effective spec sections.
"""
from __future__ import annotations

import itertools
from dataclasses import replace
from typing import Any

import optuna

from .spec import Dimension, StudySpec


def label(value: Any) -> Any:
    """Optuna-storable label of a categorical value: tuples of ints become ``"16x16"``."""
    if isinstance(value, (tuple, list)):
        return "x".join(str(v) for v in value)
    return value


def value_of(dim: Dimension, stored: Any) -> Any:
    """The spec value behind a stored label (ranges are stored as themselves)."""
    if dim.values is None:
        return int(stored) if dim.integer else float(stored)
    for v in dim.values:
        if label(v) == stored:
            return v
    raise KeyError(f"{dim.key}: stored value {stored!r} is not one of {dim.values!r}")


def grid(spec: StudySpec) -> list[tuple[str, dict[str, Any]]]:
    """Every cell of a grid study as ``(config_id, {key: label})``, in a fixed order (a spec with
    explicit ``configs``: those)."""
    if spec.configs is not None:
        return [(cid, dict(params)) for cid, params in spec.configs]
    dims = spec.space
    cells = itertools.product(*[[label(v) for v in d.values] for d in dims]) if dims else [()]
    return [(f"c{i:03d}", dict(zip([d.key for d in dims], cell))) for i, cell in enumerate(cells)]


def n_configs(spec: StudySpec) -> int:
    """Configurations the study is designed to complete."""
    return len(grid(spec)) if spec.study.sampler == "grid" else int(spec.study.n_trials)


def suggest(trial: optuna.trial.Trial, spec: StudySpec) -> dict[str, Any]:
    """Ask the trial for every dimension (returns fixed values for enqueued trials)."""
    params = {}
    for d in spec.space:
        if d.values is not None:
            params[d.key] = trial.suggest_categorical(d.key, [label(v) for v in d.values])
        elif d.integer:
            params[d.key] = trial.suggest_int(d.key, int(d.low), int(d.high), log=d.log)
        else:
            params[d.key] = trial.suggest_float(d.key, d.low, d.high, log=d.log)
    return params


def make_sampler(spec: StudySpec, seed: int) -> optuna.samplers.BaseSampler:
    """The study's sampler, seeded; grid cells are enqueued, so grid uses a (never consulted) random one."""
    name = spec.study.sampler
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "qmc":
        return optuna.samplers.QMCSampler(seed=spec.study.sampler_seed, scramble=True)
    return optuna.samplers.RandomSampler(seed=seed)


def apply(spec: StudySpec, config: dict[str, Any]) -> StudySpec:
    """The spec with the configuration's values written into their sections."""
    dims = {d.key: d for d in spec.space}
    out = spec
    for key, stored in config.items():
        value = value_of(dims[key], stored)
        parts = key.split(".")
        if parts[0] == "model" and len(parts) == 3:          # model.legacy.<switch>
            out = replace(out, model=replace(out.model, legacy=replace(out.model.legacy, **{parts[2]: value})))
        else:
            section = getattr(out, parts[0])
            out = replace(out, **{parts[0]: replace(section, **{parts[1]: value})})
    return out


def baseline(spec: StudySpec) -> dict[str, Any]:
    """runs.csv column -> label of the spec's own (fixed) value of every varied key: the study's
    reference configuration."""
    out = {}
    for key, col in columns(spec).items():
        obj: Any = spec
        for part in key.split("."):
            obj = getattr(obj, part)
        out[col] = label(obj)
    return out


def analysis_info(spec: StudySpec) -> dict[str, Any]:
    """What the analysis needs to know about a study beyond its runs (written into ``meta.json``):
    the kind of every factor (from the ``[space]`` dimension: a range is continuous, log when
    ``log = true``, integer ranges discrete; a values list categorical), the baseline configuration,
    the sampler, the objective and its direction."""
    from .analysis.kinds import kind_from_dimension
    cols = columns(spec)
    kinds = {cols[d.key]: kind_from_dimension(d.values, d.low, d.high, d.log, d.integer).to_dict()
             for d in spec.space}
    return {"factors": kinds, "baseline": baseline(spec), "sampler": spec.study.sampler,
            "objective": spec.study.objective, "direction": spec.study.direction,
            "n_trials": n_configs(spec)}


def columns(spec: StudySpec) -> dict[str, str]:
    """runs.csv column for each varied key: its last part, or the whole key where last parts clash."""
    last = [d.column for d in spec.space]
    return {d.key: (d.column if last.count(d.column) == 1 else d.key) for d in spec.space}
