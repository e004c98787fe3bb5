"""The one input every analysis reads: a runs table with a metric, the factors that vary between
configurations, and the columns that identify a seed tuple (shared by every configuration).

``runs.csv`` from ``sweep run`` has all of these; any other tool's one-row-per-run CSV works too
(``sweep analyze CSV --metric acc --factors lr,width --seed-cols seed``).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .kinds import FactorKind, KindError, format_values, resolve_kinds, smooth

SEED_COLS: tuple[str, ...] = ("seed_init", "seed_order", "seed_split")
NOT_FACTORS = {"study", "trial", "run_id", "config_id", "duration_s", *SEED_COLS}
INTERNAL = ("config", "seed")      # columns prepare() adds; a user's column of that name is renamed


class AnalysisError(ValueError):
    """A table that cannot be analysed as asked; the message names the column."""


@dataclass(frozen=True)
class Runs:
    """A validated runs table.

    ``df`` has the original columns plus ``config`` (a label of the factor values, e.g.
    ``"lr=0.01, hidden=3"``) and ``seed`` (a label of the seed tuple). ``dropped`` counts rows whose
    metric is missing (e.g. diverged runs with undefined accuracy): they are excluded and make the
    design unbalanced.
    """

    df: pd.DataFrame
    metric: str
    factors: tuple[str, ...]
    seed_cols: tuple[str, ...]
    dropped: int
    kinds: dict[str, FactorKind] = field(default_factory=dict)
    renamed: dict[str, str] = field(default_factory=dict)   # the user's column -> its name here (clash with INTERNAL)

    def original(self, column: str) -> str:
        """The user's name of a column (``seed_`` was the table's ``seed``)."""
        return next((user for user, here in self.renamed.items() if here == column), column)

    def first(self) -> pd.DataFrame:
        """One row per configuration, in ``configs`` order (indexed by the config label)."""
        return self.df.drop_duplicates("config").set_index("config").loc[self.configs]

    @property
    def smooth_factors(self) -> list[str]:
        """Factors analysed with a smooth effect (continuous or discrete with many values)."""
        first = self.first()
        return [f for f in self.factors if smooth(self.kinds.get(f, FactorKind("categorical")), first[f])]

    @property
    def configs(self) -> list[str]:
        return list(dict.fromkeys(self.df["config"]))

    @property
    def balanced(self) -> bool:
        """Every configuration has a value on every seed tuple, and nothing was dropped."""
        counts = self.df.groupby("config")["seed"].nunique()
        n_seeds = self.df["seed"].nunique()
        return self.dropped == 0 and bool((counts == n_seeds).all()) and not self.df.duplicated(["config", "seed"]).any()

    def matrix(self) -> np.ndarray:
        """Outcomes as ``(C, S)`` (configs x seeds, NaN where missing), rows in ``configs`` order and
        columns in ``seeds`` order."""
        wide = self.df.pivot_table(index="config", columns="seed", values=self.metric, aggfunc="first")
        return wide.reindex(index=self.configs, columns=self.seeds).to_numpy(dtype=float)

    @property
    def seeds(self) -> list[str]:
        return sorted(dict.fromkeys(self.df["seed"]), key=_natural)


def _natural(label: str):
    return [int(p) if p.isdigit() else p for p in label.replace("/", " ").split()]


def infer_factors(df: pd.DataFrame, metric_columns: Sequence[str] = (), seed_cols: Sequence[str] = ()) -> list[str]:
    """The varied-parameter columns of a sweep ``runs.csv``: the columns between ``config_id`` and
    ``seed_init`` that take more than one value. Any other table: none when it holds nothing but the
    metric(s) and the seed columns (one configuration), else the factors must be named."""
    cols = list(df.columns)
    if "config_id" in cols and "seed_init" in cols:
        between = cols[cols.index("config_id") + 1: cols.index("seed_init")]
        return [c for c in between if df[c].nunique(dropna=False) > 1]
    if seed_cols and set(cols) <= set(metric_columns) | set(seed_cols):
        return []
    raise AnalysisError("cannot tell the factors of this table: pass them (--factors A,B), or --factors none "
                        "for a table of one configuration")


def _free_name(name: str, taken: set[str]) -> str:
    out = f"{name}_"
    while out in taken:
        out += "_"
    return out


def constant_columns(df: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The ``columns`` that take a single value in ``df`` (a factor that does not vary)."""
    return [c for c in columns if c in df.columns and df[c].nunique(dropna=False) < 2]


def config_labels(df: pd.DataFrame, factors: Sequence[str]) -> pd.Series:
    """The ``config`` label of every row ``(N,)``: "f1=v1, f2=v2" with numbers to 3 significant digits
    (more where needed to keep distinct values apart); "all runs" without factors."""
    if not factors:
        return pd.Series("all runs", index=df.index, dtype=object)
    parts = []
    for f in factors:
        col = df[f]
        if pd.api.types.is_float_dtype(col):
            fmt = format_values(col.dropna().unique())
            parts.append(f + "=" + col.map(lambda v: fmt.get(v, str(v))).astype(str))
        else:
            parts.append(f + "=" + col.astype(str))
    out = parts[0]
    for p in parts[1:]:
        out = out + ", " + p
    return out.astype(object)


def prepare(df: pd.DataFrame, metric: str, factors: Sequence[str] | None = None,
            seed_cols: Sequence[str] | None = None, *, kinds: Mapping[str, FactorKind] | None = None,
            overrides: Mapping[str, FactorKind] | None = None) -> Runs:
    """Validate the columns and build a ``Runs``. ``factors=None`` infers them from a sweep runs.csv;
    ``seed_cols=None`` uses ``seed_init, seed_order, seed_split`` where present, else the row's
    position within its configuration (seeds are then assumed to be listed in the same order).
    ``kinds``: factor kinds declared by the study (``meta.json``); ``overrides``: the user's
    (``--continuous`` / ``--categorical``); the rest are inferred (``kinds.resolve_kinds``)."""

    if seed_cols is not None:        # checked under the user's own names, before any renaming
        gone = [c for c in seed_cols if c not in df.columns]
        if gone:
            raise AnalysisError(f"seed column(s) {', '.join(map(repr, gone))} not in the runs table")
        one = [c for c in seed_cols if df[c].nunique(dropna=False) < 2] if len(seed_cols) > 1 else []
        if one:               # one constant column alone is a table of single seeds, valid
            raise AnalysisError(f"seed column(s) {', '.join(map(repr, one))} take a single value: a seed column "
                                "must tell runs of a configuration apart (two or more levels); without "
                                "--seed-cols runs are matched by their position within each configuration")
        both = [c for c in seed_cols if c in (factors or [])]
        if both:
            raise AnalysisError(f"column(s) {', '.join(map(repr, both))} named both as factor and as seed column")
    clash = {c: _free_name(c, set(map(str, df.columns))) for c in INTERNAL if c in df.columns}
    if clash:          # the user's own "config" / "seed" column keeps its data under a free name
        df = df.rename(columns=clash)
        metric = clash.get(metric, metric)
        factors = None if factors is None else [clash.get(f, f) for f in factors]
        seed_cols = None if seed_cols is None else [clash.get(c, c) for c in seed_cols]
        kinds = None if kinds is None else {clash.get(k, k): v for k, v in kinds.items()}
        overrides = None if overrides is None else {clash.get(k, k): v for k, v in overrides.items()}
    if metric not in df.columns:
        raise AnalysisError(f"no column {metric!r} in the runs table; columns: {', '.join(map(str, df.columns))}")
    if not pd.api.types.is_numeric_dtype(df[metric]):
        raise AnalysisError(f"metric column {metric!r} is not numeric")
    if not np.isfinite(df[metric].to_numpy(dtype=float)).any():
        raise AnalysisError(f"metric column {metric!r} has no finite value (every run is NaN or missing)")
    factors = list(infer_factors(df, [metric], seed_cols or ()) if factors is None else factors)
    missing = [f for f in factors if f not in df.columns]
    if missing:
        raise AnalysisError(f"factor column(s) {', '.join(map(repr, missing))} not in the runs table; "
                            f"columns: {', '.join(map(str, df.columns))}")
    explicit = seed_cols is not None
    if seed_cols is None:
        seed_cols = [c for c in SEED_COLS if c in df.columns]
    missing = [c for c in seed_cols if c not in df.columns]
    if missing:
        raise AnalysisError(f"seed column(s) {', '.join(map(repr, missing))} not in the runs table")
    out = df.copy()
    out["config"] = config_labels(out, factors)
    if seed_cols:
        out["seed"] = out[list(seed_cols)].astype(str).apply(lambda r: "/".join(r), axis=1)
    else:
        out["seed"] = out.groupby("config").cumcount().astype(str)
    if out.duplicated(["config", "seed"]).any():
        raise AnalysisError("some configuration has two runs with the same seed columns: name the seed "
                            "columns that tell runs apart (--seed-cols)")
    keep = np.isfinite(out[metric].to_numpy(dtype=float))
    dropped = int((~keep).sum())
    first = out.drop_duplicates("config")
    try:
        resolved = resolve_kinds(first, factors, kinds, overrides)
    except KindError as exc:
        raise AnalysisError(str(exc)) from None
    runs = Runs(out[keep].reset_index(drop=True), metric, tuple(factors), tuple(seed_cols), dropped, resolved, clash)
    if explicit and len(seed_cols) > 1:
        from .sources import seed_design

        design = seed_design(runs)
        if design.kind == "other":
            raise AnalysisError(f"seed columns {', '.join(seed_cols)}: their levels form no layout sweep can "
                                f"separate ({', '.join(design.names)} are neither fully crossed nor nested in "
                                "equal numbers); allowed: crossed (every combination once per configuration), "
                                "nested (each level of one inside one level of another, equal counts), or "
                                "columns that change together")
    return runs
