"""Study specs: ``studies/*.toml`` read with ``tomllib`` into frozen dataclasses, every field validated.

A spec names the data, the model, the training, what varies (``[space]``, dotted keys into the
other sections) and the seed design. ``load_spec`` raises ``SpecError`` with ONE clear message naming
the field, the bad value and what is allowed; nothing is run or written before a spec is valid.
See ``studies/example.toml`` for every field with comments.
"""
from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class SpecError(ValueError):
    """A spec problem the user must fix; the message names the field."""


OBJECTIVES = ("train_acc", "val_acc", "test_acc", "train_loss", "val_loss")
AGGREGATES = ("mean", "median", "iqm", "lcb")
SAMPLERS = ("grid", "random", "tpe", "qmc")


@dataclass(frozen=True)
class StudySection:
    name: str
    sampler: str = "grid"
    n_trials: int | None = None          # required for random/tpe/qmc; ignored by grid
    objective: str = "val_acc"
    aggregate: str = "mean"
    direction: str = "maximize"           # default: maximize for *_acc, minimize for *_loss
    sampler_seed: int = 0
    batch: int = 8                        # sampler trials asked per generation (fixed, so TPE never depends on n_jobs); grid: unused


@dataclass(frozen=True)
class DataSection:
    dataset: str = "breast_cancer"
    target: str | None = None
    features: tuple[str, ...] | None = None
    n_samples: int = 400
    noise: float = 0.1
    balance: float = 0.5
    seed: int = 0                         # generation seed for synthetic sets (fixed per study)
    val_size: float | int = 0.2
    test_size: float | int = 0.2
    scale: str = "standard"


@dataclass(frozen=True)
class LegacySection:
    compounding_bias_correction: bool = False
    update_times_grad: bool = False
    normalize_hidden: bool = False
    clip_typo: bool = False
    sum_wtw_regularizer: bool = False
    posted_init: bool = False
    clip_threshold: float | None = None


@dataclass(frozen=True)
class ModelSection:
    hidden: tuple[int, ...] = (3,)
    activation: str = "sigmoid"
    init: str = "xavier_normal"
    bias_init: str = "zeros"
    legacy: LegacySection = field(default_factory=LegacySection)


@dataclass(frozen=True)
class TrainSection:
    optimizer: str = "adam"
    lr: float = 0.001
    iterations: int | None = None         # exactly one of iterations / epochs (neither: 1000 iterations)
    epochs: int | None = None
    batch_size: int | None = None         # None: full batch
    l2: float = 0.0
    clip_norm: float | None = None
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    momentum: float = 0.9
    nesterov: bool = False
    rho: float = 0.9
    weight_decay: float = 0.01
    dtype: str = "float64"
    log_points: int = 50
    log_every: int | None = None
    stagnation_tol: float = 1e-6
    divergence_factor: float = 100.0      # diverged: objective above this times its untrained value


@dataclass(frozen=True)
class Dimension:
    """One varied field: ``values`` (categorical, any sampler) or a ``low``/``high`` range."""
    key: str                              # dotted path, e.g. "train.lr", "model.legacy.normalize_hidden"
    values: tuple[Any, ...] | None = None  # lists (e.g. hidden [16, 16]) are stored as tuples
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False                 # range of integers (the field is an int field)

    @property
    def column(self) -> str:
        """Column name in runs.csv: the key's last part."""
        return self.key.rsplit(".", 1)[-1]


@dataclass(frozen=True)
class SeedSection:
    replicates: int | None = 10           # replicate design: seed s -> (init=s, order=s, split=0)
    init: int | None = None               # crossed design: init x order x split
    order: int | None = None
    split: int | None = None
    root: int = 0
    start: int = 0                        # first replicate seed (not in study files: sweep confirm's fresh seeds)

    @property
    def crossed(self) -> bool:
        return self.replicates is None

    def tuples(self) -> list[tuple[int, int, int]]:
        """The seed set ``[(seed_init, seed_order, seed_split), ...]`` used for every configuration."""
        if not self.crossed:
            return [(self.start + s, self.start + s, 0) for s in range(self.replicates)]
        return [(i, o, s) for s in range(self.split) for i in range(self.init) for o in range(self.order)]


@dataclass(frozen=True)
class StudySpec:
    study: StudySection
    data: DataSection
    model: ModelSection
    train: TrainSection
    space: tuple[Dimension, ...]
    seeds: SeedSection
    source: str = ""                      # the TOML text, kept for results/<name>/spec.toml
    # explicit configurations ((config_id, ((key, stored value), ...)), ...) run as a grid instead of the
    # [space]'s: sweep confirm's top configurations (never set by a study file)
    configs: tuple | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("source")
        if d["configs"] is None:            # absent fields keep the hash of every existing study
            d.pop("configs")
        if d["seeds"]["start"] == 0:
            d["seeds"].pop("start")
        return d

    def hash(self) -> str:
        """Hash of the validated content (not of the file's comments or layout)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, default=list).encode()).hexdigest()[:16]


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a study file; raise ``SpecError`` naming the first bad field."""
    path = Path(path)
    return parse_spec(_read_spec_text(path), origin=str(path))


def _read_spec_text(path: Path) -> str:
    """The study file's text, decoded as UTF-8 (whatever the locale), newlines as ``\\n``; a missing,
    unreadable or non-UTF-8 file is a ``SpecError`` naming it."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecError(f"spec file {str(path)!r} does not exist") from None
    except OSError as exc:
        raise SpecError(f"spec {path} cannot be read ({exc.strerror or exc}): give a TOML study file") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(f"spec {path} is not a UTF-8 text file (byte 0x{data[exc.start]:02x} at position "
                        f"{exc.start}): save it as UTF-8 TOML") from None
    return text.replace("\r\n", "\n").replace("\r", "\n")     # as read_text's universal newlines


def parse_spec(text: str, origin: str = "<spec>") -> StudySpec:
    """Validate TOML text into a ``StudySpec``."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{origin}: not valid TOML: {exc}") from None
    return _build(raw, text, origin)


# --------------------------------------------------------------------------- validation
# Every check raises ``_Bad`` with a message that starts with the field's dotted path; ``_build``
# prefixes the origin and re-raises it as ``SpecError``.

import difflib  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import fields as _dc_fields  # noqa: E402


class _Bad(Exception):
    """A validation failure; the message names the field (without the origin)."""


SECTIONS = ("study", "data", "model", "train", "space", "seeds")
VARIABLE_SECTIONS = ("data", "model", "train")
DIRECTIONS = ("maximize", "minimize")
DIMENSION_KEYS = ("values", "low", "high", "log")
_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")


def _did_you_mean(word: str, options) -> str:
    close = difflib.get_close_matches(word, list(options), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _type_name(value: Any) -> str:
    return type(value).__name__


@dataclass(frozen=True)
class _Field:
    """How one key is checked: ``check(value, where) -> normalised value``; ``kind`` tells ranges apart."""
    check: Callable[[Any, str], Any]
    kind: str = "other"          # "int" | "float" | "other" (only int/float fields take low/high ranges)


def _int_field(minimum: int) -> _Field:
    allowed = f"an integer >= {minimum}"

    def check(v: Any, where: str) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise _Bad(f"{where}: {v!r} ({_type_name(v)}) is not allowed; allowed: {allowed}")
        if v < minimum:
            raise _Bad(f"{where}: {v!r} is not allowed; allowed: {allowed}")
        return v
    return _Field(check, "int")


def _number(v: Any, where: str, allowed: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad(f"{where}: {v!r} ({_type_name(v)}) is not a number; allowed: {allowed}")
    v = float(v)
    if not math.isfinite(v):
        raise _Bad(f"{where}: {v!r} is not allowed; allowed: {allowed} (finite)")
    return v


def _float_field(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
                 hi_open: bool = False) -> _Field:
    if lo is not None and hi is not None:
        allowed = f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    elif lo is not None:
        allowed = f"a number {'>' if lo_open else '>='} {lo:g}"
    else:
        allowed = "a number"

    def check(v: Any, where: str) -> float:
        x = _number(v, where, allowed)
        if (lo is not None and (x < lo or (lo_open and x == lo))) or \
                (hi is not None and (x > hi or (hi_open and x == hi))):
            raise _Bad(f"{where}: {v!r} is not allowed; allowed: {allowed}")
        return x
    return _Field(check, "float")


def _size_check(v: Any, where: str) -> float | int:
    allowed = "a fraction in [0, 1) or an integer count >= 0"
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise _Bad(f"{where}: {v!r} ({_type_name(v)}) is not allowed; allowed: {allowed}")
    if isinstance(v, int):
        if v < 0:
            raise _Bad(f"{where}: {v!r} is not allowed; allowed: {allowed}")
        return v
    if not (math.isfinite(v) and 0.0 <= v < 1.0):
        raise _Bad(f"{where}: {v!r} is not allowed; allowed: {allowed}")
    return v


def _choice_field(options) -> _Field:
    options = tuple(options)

    def check(v: Any, where: str) -> str:
        if not isinstance(v, str) or v not in options:
            hint = _did_you_mean(v, options) if isinstance(v, str) else ""
            raise _Bad(f"{where}: {v!r} is not allowed; allowed: {', '.join(options)}{hint}")
        return v
    return _Field(check)


def _bool_check(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise _Bad(f"{where}: {v!r} ({_type_name(v)}) is not allowed; allowed: true or false")
    return v


def _str_check(v: Any, where: str) -> str:
    if not isinstance(v, str) or not v:
        raise _Bad(f"{where}: {v!r} is not allowed; allowed: a non-empty string")
    return v


def _name_check(v: Any, where: str) -> str:
    allowed = ("a plain folder name: letters, digits, '_', '-', '.', not starting with '.', "
               "no '/', '\\' or '..'")
    if not isinstance(v, str) or not v or not _NAME_RE.fullmatch(v) or ".." in v:
        raise _Bad(f"{where}: {v!r} is not allowed; allowed: {allowed}")
    return v


def _hidden_check(v: Any, where: str) -> tuple[int, ...]:
    allowed = "a non-empty list of layer widths, integers >= 1, e.g. [3] or [16, 16]"
    if not isinstance(v, list) or not v or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in v):
        raise _Bad(f"{where}: {v!r} is not allowed; allowed: {allowed}")
    return tuple(v)


def _features_check(v: Any, where: str) -> tuple[str, ...]:
    allowed = "a non-empty list of column names (strings) without repeats"
    if not isinstance(v, list) or not v or not all(isinstance(f, str) for f in v) or len(set(v)) != len(v):
        raise _Bad(f"{where}: {v!r} is not allowed; allowed: {allowed}")
    return tuple(v)


def _scheme_field(**kw: Any) -> _Field:
    from .engine.init import parse_scheme

    def check(v: Any, where: str) -> str:
        try:
            parse_scheme(v, **kw)
        except ValueError as exc:
            raise _Bad(f"{where}: {exc}") from None
        return v
    return _Field(check)


def _dataset_field(base: Path) -> _Field:
    from .data import CSV_PREFIX, available_datasets

    def check(v: Any, where: str) -> str:
        names = available_datasets()
        allowed = f"{', '.join(names)}, or 'csv:<path to file.csv>'"
        if not isinstance(v, str):
            raise _Bad(f"{where}: {v!r} is not allowed; allowed: {allowed}")
        if v.startswith(CSV_PREFIX):
            raw = v[len(CSV_PREFIX):].strip()
            if not raw:
                raise _Bad(f"{where}: {v!r} names no file; give one after 'csv:', e.g. 'csv:data/points.csv'")
            path = Path(os.path.expanduser(raw))
            if not path.is_absolute():
                path = base / path
            path = path.resolve()
            if not path.is_file():
                raise _Bad(f"{where}: {v!r}: CSV file not found: {str(path)!r} "
                           "(relative paths are relative to the spec file's folder)")
            return CSV_PREFIX + str(path)
        if v not in names:
            raise _Bad(f"{where}: {v!r} is not allowed; allowed: {allowed}{_did_you_mean(v, names)}")
        return v
    return _Field(check)


LEGACY_SWITCHES = ("compounding_bias_correction", "update_times_grad", "normalize_hidden", "clip_typo",
                   "sum_wtw_regularizer", "posted_init")


def _legacy_fields() -> dict[str, _Field]:
    out = {name: _Field(_bool_check) for name in LEGACY_SWITCHES}
    out["clip_threshold"] = _float_field(0, lo_open=True)
    return out


def _section_fields(base: Path) -> dict[str, dict[str, _Field]]:
    """Per section, per key: the check (``model.legacy`` is handled apart)."""
    from .data import SCALES
    from .engine import ACTIVATIONS, OPTIMIZERS

    unit = _float_field(0, 1, hi_open=True)
    return {
        "study": {
            "name": _Field(_name_check),
            "sampler": _choice_field(SAMPLERS),
            "n_trials": _int_field(1),
            "objective": _choice_field(OBJECTIVES),
            "aggregate": _choice_field(AGGREGATES),
            "direction": _choice_field(DIRECTIONS),
            "sampler_seed": _int_field(0),
            "batch": _int_field(1),
        },
        "data": {
            "dataset": _dataset_field(base),
            "target": _Field(_str_check),
            "features": _Field(_features_check),
            "n_samples": _int_field(4),
            "noise": _float_field(0),
            "balance": _float_field(0, 1, lo_open=True, hi_open=True),
            "seed": _int_field(0),
            "val_size": _Field(_size_check, "float"),
            "test_size": _Field(_size_check, "float"),
            "scale": _choice_field(SCALES),
        },
        "model": {
            "hidden": _Field(_hidden_check),
            "activation": _choice_field(ACTIVATIONS),
            "init": _scheme_field(),
            "bias_init": _scheme_field(what="bias_init", allowed_params={"normal", "uniform", "const"},
                                       plain={"zeros"}),
            "legacy": _Field(lambda v, where: v),   # checked by _legacy
        },
        "train": {
            "optimizer": _choice_field(OPTIMIZERS),
            "lr": _float_field(0, lo_open=True),
            "iterations": _int_field(1),
            "epochs": _int_field(1),
            "batch_size": _int_field(1),
            "l2": _float_field(0),
            "clip_norm": _float_field(0, lo_open=True),
            "beta1": unit,
            "beta2": unit,
            "eps": _float_field(0, lo_open=True),
            "momentum": unit,
            "nesterov": _Field(_bool_check),
            "rho": unit,
            "weight_decay": _float_field(0),
            "dtype": _choice_field(("float64", "float32")),
            "log_points": _int_field(2),
            "log_every": _int_field(1),
            "stagnation_tol": _float_field(0, lo_open=True),
            "divergence_factor": _float_field(1, lo_open=True),
        },
        "seeds": {
            "replicates": _int_field(1),
            "init": _int_field(1),
            "order": _int_field(1),
            "split": _int_field(1),
            "root": _int_field(0),
        },
    }


def _check_keys(table: dict, allowed, where: str) -> None:
    for key in table:
        if key not in allowed:
            path = f"{where}.{key}" if where else key
            raise _Bad(f"{path}: unknown key {key!r}; allowed: {', '.join(allowed)}{_did_you_mean(key, allowed)}")


def _legacy(v: Any, where: str) -> dict[str, Any]:
    """``"posted"`` or a table of switches -> the LegacySection's keyword arguments."""
    from .engine import Legacy

    if isinstance(v, str):
        if v != "posted":
            raise _Bad(f"{where}: {v!r} is not allowed; allowed: 'posted' (every quirk on, clip_threshold 4.5) "
                       f"or a table [model.legacy] with keys {', '.join([*LEGACY_SWITCHES, 'clip_threshold'])}")
        posted = Legacy.posted()
        return {f.name: getattr(posted, f.name) for f in _dc_fields(LegacySection)}
    if not isinstance(v, dict):
        raise _Bad(f"{where}: {v!r} is not allowed; allowed: 'posted' or a table [model.legacy] with keys "
                   f"{', '.join([*LEGACY_SWITCHES, 'clip_threshold'])}")
    checks = _legacy_fields()
    _check_keys(v, checks, where)
    return {k: checks[k].check(x, f"{where}.{k}") for k, x in v.items()}


# --- cross-field rules on a flat {dotted key: value} view of one configuration ----------------


def _rule_target(c: dict, ctx: dict) -> None:
    from .data import CSV_PREFIX
    ds, target = c["data.dataset"], c["data.target"]
    if ds.startswith(CSV_PREFIX) and target is None:
        raise _Bad(f"data.target: required for csv: data sets (the label column's name); dataset is {ds!r}")
    if not ds.startswith(CSV_PREFIX) and target is not None:
        raise _Bad(f"data.target: {target!r} is only allowed with 'csv:<path>' data sets, not {ds!r}")


def _rule_adam_quirks(c: dict, ctx: dict) -> None:
    for sw in ("compounding_bias_correction", "update_times_grad"):
        if c[f"model.legacy.{sw}"] and c["train.optimizer"] != "adam":
            raise _Bad(f"model.legacy.{sw}: the legacy Adam quirk needs train.optimizer 'adam', "
                       f"got {c['train.optimizer']!r}")


def _rule_clip_typo(c: dict, ctx: dict) -> None:
    if c["model.legacy.clip_typo"] and c["model.legacy.clip_threshold"] is None:
        raise _Bad("model.legacy.clip_typo: true needs model.legacy.clip_threshold (a number > 0; "
                   "the posted code uses 4.5)")


def _rule_budget(c: dict, ctx: dict) -> None:
    if c["train.iterations"] is not None and c["train.epochs"] is not None:
        raise _Bad(f"train.iterations, train.epochs: give one budget, not both "
                   f"(iterations {c['train.iterations']!r}, epochs {c['train.epochs']!r})")


def _data_error_field(msg: str, csv: bool) -> str:
    """The spec field a ``DataError`` from ``load_dataset`` is about."""
    if csv and "target" in msg:
        return "data.target"
    if "feature" in msg:
        return "data.features"
    for name in ("n_samples", "noise", "balance", "seed"):
        if msg.startswith(name):
            return f"data.{name}"
    return "data.dataset"


def _class_counts(c: dict, ctx: dict) -> tuple[int, ...]:
    """Rows per class of the configuration's data set: known for a real set (loaded only to check
    ``data.features``), else loaded once per study (``ctx`` caches it)."""
    from .data import CSV_PREFIX, REAL, REAL_CLASS_COUNTS, DataError, load_dataset

    ds = c["data.dataset"]
    if ds in REAL and c["data.features"] is None:
        return REAL_CLASS_COUNTS[ds]     # nothing to check that needs the (slower) real data
    args = dict(n_samples=c["data.n_samples"], noise=c["data.noise"], balance=c["data.balance"],
                seed=c["data.seed"], root=c["seeds.root"], target=c["data.target"],
                features=None if c["data.features"] is None else list(c["data.features"]))
    key = (ds, *(v if not isinstance(v, list) else tuple(v) for v in args.values()))
    cache = ctx.setdefault("datasets", {})
    if key not in cache:
        try:
            loaded = load_dataset(ds, **args)
        except DataError as exc:
            raise _Bad(f"{_data_error_field(str(exc), ds.startswith(CSV_PREFIX))}: {exc}") from None
        cache[key] = tuple(int((loaded.y == k).sum()) for k in range(len(loaded.classes)))
    return cache[key]


def _check_split(c: dict, counts: tuple[int, ...]) -> None:
    """Enough rows, and enough of every class in every part of the split (``data.check_split_sizes``)."""
    from .data import CSV_PREFIX, MIN_ROWS, SYNTHETIC, DataError, check_split_sizes

    ds = c["data.dataset"]
    more = ("raise data.n_samples" if ds in SYNTHETIC else
            f"add rows to {ds[len(CSV_PREFIX):]}" if ds.startswith(CSV_PREFIX) else None)
    try:
        check_split_sizes(counts, c["data.val_size"], c["data.test_size"], ds, more=more)
    except DataError as exc:
        small = sum(counts) < MIN_ROWS
        where = ("data.n_samples" if ds in SYNTHETIC else "data.dataset") if small else \
            "data.val_size, data.test_size"
        raise _Bad(f"{where}: {exc}") from None


def _rule_data(c: dict, ctx: dict) -> None:
    """Check that val/test leave training data and that the data set is large enough for its split."""
    ds = c["data.dataset"]
    val, test = c["data.val_size"], c["data.test_size"]
    if isinstance(val, float) and isinstance(test, float) and val + test >= 1.0:
        raise _Bad(f"data.val_size + data.test_size: {val!r} + {test!r} leave no training data; "
                   "their sum must be < 1")
    counts_per_class = _class_counts(c, ctx)
    n = sum(counts_per_class)
    counts = []
    for name, v in (("val_size", val), ("test_size", test)):
        if isinstance(v, int):
            if v >= n:
                raise _Bad(f"data.{name}: {v!r} rows is not allowed; as a count it must be < {n}, "
                           f"the number of rows of {ds!r}")
            counts.append(v)
        else:
            counts.append(int(round(v * n)))
    if n - sum(counts) < 1:
        raise _Bad(f"data.val_size + data.test_size: {val!r} + {test!r} leave no training data "
                   f"({counts[0]} val + {counts[1]} test of {n} rows); make them smaller")
    _check_split(c, counts_per_class)


_RULES: tuple[tuple[frozenset[str], Callable[[dict, dict], None]], ...] = (
    (frozenset({"data.dataset", "data.target"}), _rule_target),
    (frozenset({"data.dataset", "data.target", "data.features", "data.n_samples", "data.noise",
                "data.balance", "data.seed", "data.val_size", "data.test_size"}), _rule_data),
    (frozenset({"train.optimizer", "model.legacy.compounding_bias_correction",
                "model.legacy.update_times_grad"}), _rule_adam_quirks),
    (frozenset({"model.legacy.clip_typo", "model.legacy.clip_threshold"}), _rule_clip_typo),
    (frozenset({"train.iterations", "train.epochs"}), _rule_budget),
)


# --- [space] -------------------------------------------------------------------------------------


def _flatten_space(table: dict, prefix: str = "") -> list[tuple[str, Any]]:
    """``[space]`` entries as (dotted key, dimension table); unquoted dotted keys (nested tables) are joined."""
    out = []
    for key, value in table.items():
        full = f"{prefix}.{key}" if prefix else key
        if (isinstance(value, dict) and value and not any(k in value for k in DIMENSION_KEYS)
                and all(isinstance(x, dict) for x in value.values())):
            out.extend(_flatten_space(value, full))
        else:
            out.append((full, value))
    return out


def _space_field(key: str, fields_: dict[str, dict[str, _Field]]) -> _Field:
    variable = [f"{s}.{k}" for s in VARIABLE_SECTIONS for k in fields_[s] if (s, k) != ("model", "legacy")]
    variable += [f"model.legacy.{k}" for k in _legacy_fields()]
    where = f"space.{json.dumps(key)}"
    parts = key.split(".")
    if parts[0] in ("study", "seeds"):
        raise _Bad(f"{where}: {parts[0]}.* settings cannot vary; only keys of data, model and train "
                   f"(and model.legacy.<switch>) can")
    if key == "model.legacy":
        raise _Bad(f"{where}: vary single switches instead, e.g. \"model.legacy.normalize_hidden\"; allowed: "
                   + ", ".join(f"model.legacy.{k}" for k in _legacy_fields()))
    if key not in variable:
        raise _Bad(f"{where}: unknown key {key!r}; allowed: dotted keys of data, model, train "
                   f"(e.g. 'train.lr', 'model.init', 'model.legacy.normalize_hidden'){_did_you_mean(key, variable)}")
    if parts[:2] == ["model", "legacy"]:
        return _legacy_fields()[parts[2]]
    return fields_[parts[0]][parts[1]]


def _dimension(key: str, spec: Any, fld: _Field) -> Dimension:
    where = f"space.{json.dumps(key)}"
    shape = "a table { values = [...] } or { low = ..., high = ..., log = true|false }"
    if not isinstance(spec, dict):
        raise _Bad(f"{where}: {spec!r} is not allowed; allowed: {shape}")
    _check_keys(spec, DIMENSION_KEYS, where)
    has_range = "low" in spec or "high" in spec
    if "values" in spec:
        if has_range or "log" in spec:
            raise _Bad(f"{where}: give either values or low/high (a range), not both")
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise _Bad(f"{where}.values: {values!r} is not allowed; allowed: a non-empty list of values")
        normalised = [fld.check(v, where) for v in values]
        for i, v in enumerate(normalised):
            if v in normalised[:i]:
                raise _Bad(f"{where}.values: {values[i]!r} appears more than once; values must be distinct")
        return Dimension(key=key, values=tuple(normalised))
    if not has_range:
        raise _Bad(f"{where}: needs values or low/high; allowed: {shape}")
    if fld.kind not in ("int", "float"):
        raise _Bad(f"{where}: a low/high range is not allowed for a non-numeric field; "
                   f"give values = [...] instead")
    for end in ("low", "high"):
        if end not in spec:
            raise _Bad(f"{where}: a range needs both low and high, {end} is missing")
    low, high = fld.check(spec["low"], f"{where}.low"), fld.check(spec["high"], f"{where}.high")
    if fld.kind == "float":
        low, high = float(low), float(high)
    if not low < high:
        raise _Bad(f"{where}: low {low!r} must be < high {high!r}")
    log = _bool_check(spec.get("log", False), f"{where}.log")
    if log and low <= 0:
        raise _Bad(f"{where}: a log range needs low > 0, got low {low!r}")
    return Dimension(key=key, low=low, high=high, log=log, integer=fld.kind == "int")


# --- the spec ------------------------------------------------------------------------------------


def _build(raw: dict, text: str, origin: str) -> StudySpec:
    try:
        return _build_checked(raw, text, origin)
    except _Bad as exc:
        raise SpecError(f"{origin}: {exc}") from None


def _spec_folder(origin: str) -> Path:
    if origin.startswith("<") and origin.endswith(">"):
        return Path.cwd()
    return Path(origin).resolve().parent


def _build_checked(raw: dict, text: str, origin: str) -> StudySpec:
    fields_ = _section_fields(_spec_folder(origin))
    for name, table in raw.items():
        if name not in SECTIONS:
            raise _Bad(f"[{name}]: unknown section {name!r}; allowed sections: {', '.join(SECTIONS)}"
                       f"{_did_you_mean(name, SECTIONS)}")
        if not isinstance(table, dict):
            raise _Bad(f"{name}: {table!r} is not allowed; [{name}] must be a table (a section)")
    if "study" not in raw:
        raise _Bad("[study]: the section is required (at least study.name)")

    fixed: dict[str, dict[str, Any]] = {}
    for sec in ("study", "data", "model", "train", "seeds"):
        table = raw.get(sec, {})
        _check_keys(table, fields_[sec], sec)
        fixed[sec] = {k: (_legacy(v, f"{sec}.{k}") if (sec, k) == ("model", "legacy")
                          else fields_[sec][k].check(v, f"{sec}.{k}")) for k, v in table.items()}

    # [study]
    st = fixed["study"]
    if "name" not in st:
        raise _Bad("study.name: required (a plain folder name for results/<name>/)")
    sampler = st.get("sampler", "grid")
    if sampler != "grid" and "n_trials" not in st:
        raise _Bad(f"study.n_trials: required for sampler {sampler!r} (an integer >= 1)")
    objective = st.get("objective", "val_acc")
    natural = "maximize" if objective.endswith("_acc") else "minimize"
    if st.get("direction", natural) != natural:
        raise _Bad(f"study.direction: {st['direction']!r} contradicts objective {objective!r}; "
                   f"allowed: {natural!r} (accuracies are maximized, losses minimized)")
    st["direction"] = natural

    # [seeds]
    sd = fixed["seeds"]
    crossed = [k for k in ("init", "order", "split") if k in sd]
    if crossed and "replicates" in sd:
        raise _Bad(f"seeds.replicates: give either replicates or the crossed design init/order/split, "
                   f"not both (got replicates and {', '.join(crossed)})")
    if crossed and len(crossed) < 3:
        missing = [k for k in ("init", "order", "split") if k not in sd]
        raise _Bad(f"seeds.{missing[0]}: the crossed design needs all of seeds.init, seeds.order, seeds.split "
                   f"(missing {', '.join(missing)})")
    if crossed:
        sd["replicates"] = None

    # [space]
    space_raw = raw.get("space", {})
    dims = []
    for key, spec in _flatten_space(space_raw):
        dim = _dimension(key, spec, _space_field(key, fields_))
        if sampler == "grid" and dim.values is None:
            raise _Bad(f"space.{json.dumps(key)}: the grid sampler needs values = [...] on every dimension, "
                       f"not a low/high range (or use sampler random, tpe or qmc)")
        dims.append(dim)
    if sampler != "grid" and not dims:
        raise _Bad(f"space: sampler {sampler!r} needs at least one dimension in [space]")

    # budget default: neither iterations nor epochs fixed or varied -> 1000 iterations (as TrainConfig)
    tr = fixed["train"]
    varied = {d.key for d in dims}
    if not ({"iterations", "epochs"} & tr.keys()) and not ({"train.iterations", "train.epochs"} & varied):
        tr["iterations"] = 1000

    # cross-field rules: on the fixed values, then each space value against the fixed rest
    legacy = fixed["model"].pop("legacy", {})
    flat: dict[str, Any] = {}
    for sec, cls in (("data", DataSection), ("model", ModelSection), ("train", TrainSection)):
        for f in _dc_fields(cls):
            if f.name != "legacy":
                flat[f"{sec}.{f.name}"] = fixed[sec].get(f.name, _default(f))
    for f in _dc_fields(LegacySection):
        flat[f"model.legacy.{f.name}"] = legacy.get(f.name, _default(f))
    flat["seeds.root"] = sd.get("root", 0)
    ctx: dict = {}
    for involved, rule in _RULES:
        if not involved & varied:
            rule(flat, ctx)
    firsts = {d.key: d.values[0] if d.values is not None else d.low for d in dims}
    for d in dims:
        where = f"space.{json.dumps(d.key)}"
        for value in d.values if d.values is not None else (d.low, d.high):
            config = {**flat, **firsts, d.key: value}
            for involved, rule in _RULES:
                if d.key in involved:
                    try:
                        rule(config, ctx)
                    except _Bad as exc:
                        raise _Bad(f"{where}: value {value!r}: {exc}") from None

    data = fixed["data"]
    return StudySpec(
        study=StudySection(**st),
        data=DataSection(**data),
        model=ModelSection(**fixed["model"], legacy=LegacySection(**legacy)),
        train=TrainSection(**tr),
        space=tuple(dims),
        seeds=SeedSection(**sd),
        source=text,
    )


def _default(f) -> Any:
    from dataclasses import MISSING
    if f.default is not MISSING:
        return f.default
    return f.default_factory()  # pragma: no cover - no such field outside model.legacy
