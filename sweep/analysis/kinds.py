"""What kind of variable each factor is: categorical, discrete numeric or continuous (on a linear or
log scale). The kind decides how a factor is analysed (``../shared/STATISTICS.md`` section 8): a
factor with one value per configuration cannot be a factorial term, it gets a smooth effect on its
sampling scale; it decides how it is drawn (an axis, log where it was sampled on a log scale) and
how it is worded (ranges, not levels).

Sources, strongest first: the user's overrides (``--continuous lr,wd``, ``--categorical hidden``,
``lr:log``), the study spec as recorded in ``meta.json`` (a ``low``/``high`` range is continuous, log
when ``log = true``, integer ranges discrete; a ``values`` list is categorical, and ordered when
numeric), else inference from the table (a numeric column with many distinct values relative to the
configurations is continuous).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

__all__ = ["KINDS", "FactorKind", "infer_kind", "resolve_kinds", "parse_overrides", "format_value",
           "format_values", "kind_from_dimension", "KindError", "smooth"]

KINDS = ("categorical", "discrete", "continuous")
SMOOTH_MIN_LEVELS = 6        # fewer distinct values: analysed as levels even when numeric


class KindError(ValueError):
    """A factor kind that cannot apply to its column; the message names the column."""


@dataclass(frozen=True)
class FactorKind:
    """``kind``: categorical | discrete | continuous; ``log``: sampled (and drawn) on a log scale;
    ``ordered``: the levels have a numeric order (numeric columns); ``source``: where it came from
    (override / spec / inferred); ``low`` / ``high``: the spec's range, when known."""

    kind: str
    log: bool = False
    ordered: bool = False
    source: str = "inferred"
    low: float | None = None
    high: float | None = None

    @property
    def numeric(self) -> bool:
        return self.kind != "categorical" or self.ordered

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_dict(cls, d: Mapping) -> "FactorKind":
        if d.get("kind") not in KINDS:
            raise KindError(f"kind {d.get('kind')!r} is not one of {', '.join(KINDS)}")
        return cls(**{k: d[k] for k in ("kind", "log", "ordered", "source", "low", "high") if k in d})


def kind_from_dimension(values: tuple | None, low: float | None, high: float | None, log: bool,
                        integer: bool) -> FactorKind:
    """The kind of one ``[space]`` dimension of a study spec."""
    if values is not None:
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        return FactorKind("categorical", ordered=numeric, source="spec")
    return FactorKind("discrete" if integer else "continuous", log=bool(log), ordered=True, source="spec",
                      low=float(low), high=float(high))


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _log_scale(x: np.ndarray) -> bool:
    """Positive values spanning two decades or more that are spread evenly on a log scale rather than
    on a linear one (their median is nearer the middle of the range in log than in linear units: a
    uniform [0, 0.1] weight decay spans four decades but is linear): drawn and smoothed on a log scale."""
    x = np.unique(x[np.isfinite(x)])
    if not (x.size and x.min() > 0 and x.max() / x.min() >= 100):
        return False
    lx = np.log(x)
    off_log = abs(np.median(lx) - (lx.min() + lx.max()) / 2) / (lx.max() - lx.min())
    off_lin = abs(np.median(x) - (x.min() + x.max()) / 2) / (x.max() - x.min())
    return bool(off_log <= off_lin)


def infer_kind(values: pd.Series, n_configs: int) -> FactorKind:
    """The kind of a factor column ``values`` (one value per configuration, ``(C,)``) of a foreign table:
    numeric with at least ``SMOOTH_MIN_LEVELS`` distinct values and more than half as many distinct
    values as configurations is continuous (discrete when every value is an integer); other numeric
    columns are ordered categorical; everything else categorical."""
    if not _is_numeric(values):
        return FactorKind("categorical")
    x = values.to_numpy(dtype=float)
    n_distinct = len(np.unique(x[np.isfinite(x)]))
    if n_distinct >= SMOOTH_MIN_LEVELS and n_distinct > 0.5 * n_configs:
        integer = bool(np.all(np.mod(x[np.isfinite(x)], 1) == 0))
        return FactorKind("discrete" if integer else "continuous", log=_log_scale(x), ordered=True)
    return FactorKind("categorical", ordered=True)


def parse_overrides(continuous: Iterable[str] = (), categorical: Iterable[str] = ()) -> dict[str, FactorKind]:
    """``--continuous lr,wd:linear`` / ``--categorical hidden`` as kinds. ``name:log`` or
    ``name:linear`` fixes the scale of a continuous factor (default: log when its values are positive
    and span two decades). Raises ``KindError`` for a factor named twice."""
    out: dict[str, FactorKind] = {}
    for item in continuous:
        name, _, scale = item.partition(":")
        if scale not in ("", "log", "linear"):
            raise KindError(f"--continuous {item!r}: the scale after ':' must be 'log' or 'linear'")
        out[name] = FactorKind("continuous", log=scale == "log", ordered=True, source="override" + (":" + scale if scale else ""))
    for name in categorical:
        if name in out:
            raise KindError(f"{name!r} is given both as --continuous and as --categorical")
        out[name] = FactorKind("categorical", source="override")
    return out


def _check_override(name: str, kind: FactorKind, values: pd.Series) -> FactorKind:
    if kind.kind == "categorical":
        return FactorKind("categorical", ordered=_is_numeric(values), source="override")
    if not _is_numeric(values):
        sample = ", ".join(map(repr, list(pd.unique(values))[:3]))
        raise KindError(f"--continuous {name}: column {name!r} is not numeric (values such as {sample}); "
                        f"allowed: a numeric column, or --categorical {name}")
    x = values.to_numpy(dtype=float)
    log = kind.log if kind.source.endswith((":log", ":linear")) else _log_scale(x)
    if log and not (np.isfinite(x).all() and x.min() > 0):
        raise KindError(f"--continuous {name}:log: column {name!r} has values <= 0 (min {np.nanmin(x):g}); "
                        f"a log scale needs every value > 0; allowed: {name}:linear")
    return FactorKind("continuous", log=log, ordered=True, source="override")


def resolve_kinds(first: pd.DataFrame, factors: Iterable[str], declared: Mapping[str, FactorKind] | None = None,
                  overrides: Mapping[str, FactorKind] | None = None) -> dict[str, FactorKind]:
    """The kind of every factor, from one row per configuration ``first`` (``(C, ...)``): overrides
    first, then the spec's (``declared``, e.g. from ``meta.json``), else inferred. Raises ``KindError``
    naming the column for an override that cannot apply (non-numeric continuous, log of values <= 0)
    and for a declared log range whose values are not all > 0."""
    declared, overrides = dict(declared or {}), dict(overrides or {})
    unknown = [f for f in overrides if f not in factors]
    if unknown:
        raise KindError(f"--continuous/--categorical name {', '.join(map(repr, unknown))}, which "
                        f"{'is' if len(unknown) == 1 else 'are'} not a factor; factors: {', '.join(factors) or 'none'}")
    out = {}
    for f in factors:
        values = first[f]
        if f in overrides:
            out[f] = _check_override(f, overrides[f], values)
        elif f in declared:
            k = declared[f]
            if k.log and _is_numeric(values) and not (values.to_numpy(dtype=float) > 0).all():
                raise KindError(f"factor {f!r} is declared on a log scale but has values <= 0")
            out[f] = k
        else:
            out[f] = infer_kind(values, len(first))
    return out


def smooth(kind: FactorKind, values: pd.Series) -> bool:
    """Whether a factor gets a smooth effect (continuous or discrete, with enough distinct values)."""
    if kind.kind == "categorical" or not _is_numeric(values):
        return False
    return len(pd.unique(values.dropna())) >= SMOOTH_MIN_LEVELS


def format_value(x, digits: int = 3) -> str:
    """A number for people: 3 significant digits (``0.000202``, ``96.6``, ``3e-05``), integers as
    integers, everything else as ``str``."""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, (float, np.floating)):
        v = float(x)
        if not math.isfinite(v):
            return str(v)
        if v.is_integer() and abs(v) < 1e6:
            return str(int(v))
        return f"{v:.{digits}g}"
    return str(x)


def format_values(values: Iterable, digits: int = 3) -> dict:
    """``{value: label}`` with 3 significant digits, more only for values that would otherwise share
    a label, so labels of sampled values stay short and unique."""
    uniq = list(dict.fromkeys(values))
    prec = {v: digits for v in uniq}
    for _ in range(16):
        labels = {v: format_value(v, prec[v]) for v in uniq}
        seen: dict[str, list] = {}
        for v, lab in labels.items():
            seen.setdefault(lab, []).append(v)
        clash = [v for group in seen.values() if len(group) > 1 for v in group]
        if not clash:
            return labels
        for v in clash:
            prec[v] += 1
    return {v: str(v) for v in uniq}
