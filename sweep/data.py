"""Data sets for the MLP study tool: synthetic 2-D sets, small real sets, user CSVs.

A :class:`Dataset` is a whole data set (``X`` of shape ``(n, d)``, labels ``y`` of
shape ``(n,)`` encoded ``0..K-1``).  :func:`split_dataset` turns it into a
:class:`Split` (stratified train / validation / test parts, scaled with statistics
of the training part only), which is what the engine trains on.

Randomness comes only from :func:`sweep.seeding.stream`: source ``"data"`` for
generating synthetic sets, source ``"split"`` for splitting, so the data seed
never moves the split and vice versa.  Every user-facing error is a
:class:`DataError` naming the field or column, the bad value and what is allowed.
"""
from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from sweep.seeding import stream

__all__ = [
    "DataError",
    "Dataset",
    "Split",
    "SYNTHETIC",
    "REAL",
    "SCALES",
    "DTYPES",
    "load_dataset",
    "split_dataset",
    "split_counts",
    "check_split_sizes",
    "MIN_ROWS",
    "available_datasets",
]


class DataError(ValueError):
    """A user-facing data problem; the message names the field/column, the bad value and what is allowed."""


# --------------------------------------------------------------------------- containers


@dataclass(frozen=True, eq=False)
class Dataset:
    """A whole data set before splitting: ``X`` is ``(n, d)`` float64, ``y`` is ``(n,)`` int64 in ``0..K-1``.

    ``classes[k]`` is the original label value encoded as ``k``; ``feature_names`` has ``d`` entries.
    """

    X: np.ndarray
    y: np.ndarray
    classes: tuple
    feature_names: tuple[str, ...]
    name: str

    def __post_init__(self) -> None:
        X, y = self.X, self.y
        if not isinstance(X, np.ndarray) or X.ndim != 2:
            raise DataError(f"Dataset {self.name!r}: X must be a 2-D array (n, d), got {getattr(X, 'shape', type(X))}")
        if not isinstance(y, np.ndarray) or y.shape != (X.shape[0],):
            raise DataError(
                f"Dataset {self.name!r}: y must have shape ({X.shape[0]},), got {getattr(y, 'shape', type(y))}"
            )
        if not np.issubdtype(y.dtype, np.integer):
            raise DataError(f"Dataset {self.name!r}: y must hold integer labels 0..K-1, got dtype {y.dtype}")
        if len(self.feature_names) != X.shape[1]:
            raise DataError(
                f"Dataset {self.name!r}: {len(self.feature_names)} feature_names for {X.shape[1]} columns of X"
            )
        if y.size and (y.min() < 0 or y.max() >= len(self.classes)):
            raise DataError(
                f"Dataset {self.name!r}: y must hold labels 0..{len(self.classes) - 1}, "
                f"got values in [{y.min()}, {y.max()}]"
            )


@dataclass(frozen=True, eq=False)
class Split:
    """Stratified, scaled parts of a Dataset: ``X_*`` is ``(n_part, d)`` in the requested dtype, ``y_*`` is ``(n_part,)`` int64.

    ``*_index`` are ``(n_part,)`` int64 row indices into the Dataset (sorted ascending); val/test may have 0 rows.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    feature_names: tuple[str, ...]
    name: str
    train_index: np.ndarray
    val_index: np.ndarray
    test_index: np.ndarray


# --------------------------------------------------------------------------- synthetic sets
# Each generator takes exact class counts (n0, n1), the coordinate noise std and the
# "data" generator; it returns X (n0 + n1, 2) float64 and y (n0 + n1,) int64 with the
# class-0 rows first.  load_dataset validates the arguments and shuffles the rows.

SyntheticGenerator = Callable[[int, int, float, np.random.Generator], "tuple[np.ndarray, np.ndarray]"]


def _labels(n0: int, n1: int) -> np.ndarray:
    return np.concatenate([np.zeros(n0, np.int64), np.ones(n1, np.int64)])


def _jitter(X: np.ndarray, noise: float, rng: np.random.Generator) -> np.ndarray:
    return X + rng.normal(0.0, noise, size=X.shape) if noise > 0 else X


def _moons(n0: int, n1: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles: X (n0+n1, 2), y (n0+n1,); class 0 is the upper moon."""
    t0 = rng.uniform(0.0, np.pi, n0)
    t1 = rng.uniform(0.0, np.pi, n1)
    upper = np.column_stack([np.cos(t0), np.sin(t0)])
    lower = np.column_stack([1.0 - np.cos(t1), 0.5 - np.sin(t1)])
    return _jitter(np.vstack([upper, lower]), noise, rng), _labels(n0, n1)


def _circles(n0: int, n1: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two concentric circles: X (n0+n1, 2), y (n0+n1,); class 0 on radius 1, class 1 on radius 0.5."""
    a = rng.uniform(0.0, 2.0 * np.pi, n0 + n1)
    r = np.where(_labels(n0, n1) == 0, 1.0, 0.5)
    X = np.column_stack([r * np.cos(a), r * np.sin(a)])
    return _jitter(X, noise, rng), _labels(n0, n1)


def _xor(n0: int, n1: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points in [-1, 1]^2: X (n0+n1, 2), y (n0+n1,); class 0 where x0*x1 > 0, class 1 where x0*x1 < 0."""
    y = _labels(n0, n1)
    mag = rng.uniform(0.0, 1.0, (n0 + n1, 2))
    s0 = rng.choice(np.array([-1.0, 1.0]), n0 + n1)
    s1 = np.where(y == 0, s0, -s0)
    X = mag * np.column_stack([s0, s1])
    return _jitter(X, noise, rng), y


def _spirals(n0: int, n1: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved 1.5-turn spirals: X (n0+n1, 2), y (n0+n1,); class 1 is class 0 rotated by pi."""
    y = _labels(n0, n1)
    t = rng.uniform(0.0, 1.0, n0 + n1)
    r = 0.05 + 0.95 * t
    a = 3.0 * np.pi * t + np.pi * y
    X = np.column_stack([r * np.cos(a), r * np.sin(a)])
    return _jitter(X, noise, rng), y


def _blobs(n0: int, n1: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two gaussian blobs (sd 0.5) centred at (-1, -1) and (1, 1): X (n0+n1, 2), y (n0+n1,); plus ``noise``."""
    y = _labels(n0, n1)
    centres = np.where(y[:, None] == 0, -1.0, 1.0)
    X = centres + rng.normal(0.0, 0.5, (n0 + n1, 2))
    return _jitter(X, noise, rng), y


def _linear(n0: int, n1: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Separable by x0 + x1 = 0 with margin 0.1: X (n0+n1, 2), y (n0+n1,).

    ``noise`` is the fraction of flipped labels: round(noise*n/2) class-0 and as many class-1 labels swap.
    """
    y = _labels(n0, n1)
    along = rng.uniform(-1.0, 1.0, n0 + n1)
    across = rng.uniform(0.1, 1.0, n0 + n1) * np.where(y == 0, -1.0, 1.0)
    X = (np.outer(along, [1.0, -1.0]) + np.outer(across, [1.0, 1.0])) / math.sqrt(2.0)
    pairs = min(int(round(noise * (n0 + n1) / 2.0)), n0, n1)
    if pairs:
        flip0 = rng.choice(n0, pairs, replace=False)
        flip1 = n0 + rng.choice(n1, pairs, replace=False)
        y = y.copy()
        y[flip0], y[flip1] = 1, 0
    return X, y


#: Synthetic binary 2-D sets: name -> generator ``(n0, n1, noise, rng) -> (X (n, 2), y (n,))``.
SYNTHETIC: dict[str, SyntheticGenerator] = {
    "moons": _moons,
    "circles": _circles,
    "xor": _xor,
    "spirals": _spirals,
    "blobs": _blobs,
    "linear": _linear,
}

#: Real sets shipped inside scikit-learn (no download).
REAL: tuple[str, ...] = ("breast_cancer", "digits", "iris", "wine")

#: (samples, features) of the real sets, known without importing scikit-learn (``shape_hint``).
REAL_SHAPES: dict[str, tuple[int, int]] = {"breast_cancer": (569, 30), "digits": (1797, 64), "iris": (150, 4),
                                           "wine": (178, 13)}

#: Rows per class of the real sets (``np.bincount(y)``), so a spec is checked without loading them.
REAL_CLASS_COUNTS: dict[str, tuple[int, ...]] = {
    "breast_cancer": (212, 357), "digits": (178, 182, 177, 183, 181, 182, 181, 179, 174, 180),
    "iris": (50, 50, 50), "wine": (59, 71, 48)}

#: The fewest rows a study's data set may have (:func:`check_split_sizes`): with the usual 20% val and
#: test parts, 30 rows leave 6 per part, where one sample already moves an accuracy by 17 points.
MIN_ROWS = 30

#: The fewest rows of every class in every non-empty part: with one, a class is all right or all wrong.
MIN_CLASS_ROWS = 2

#: Allowed ``scale`` values of :func:`split_dataset`.
SCALES: tuple[str, ...] = ("standard", "minmax", "none")

#: Allowed ``dtype`` values of :func:`split_dataset`.
DTYPES: tuple[str, ...] = ("float64", "float32")

CSV_PREFIX = "csv:"


def available_datasets() -> list[str]:
    """Names accepted by :func:`load_dataset` (besides ``"csv:<path>"``), sorted."""
    return sorted([*SYNTHETIC, *REAL])


def shape_hint(dataset: str, n_samples: int, features: Sequence[str] | None = None) -> tuple[int, int]:
    """(samples, features) of a data set without loading it, for cost estimates only: exact for the
    synthetic and real sets, nominal (1000 rows, 32 or the selected features) for CSV files."""
    n, d = REAL_SHAPES.get(dataset, (n_samples, 2) if dataset in SYNTHETIC else (1000, 32))
    return n, len(features) if features else d


# --------------------------------------------------------------------------- loading


def _rng(source: str, seed: int, root: int) -> np.random.Generator:
    try:
        return stream(source, seed, root)
    except ValueError as exc:  # seeding names the field and the bad value
        raise DataError(str(exc)) from exc


def _check_int(field: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise DataError(f"{field} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_float(field: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DataError(f"{field} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise DataError(f"{field} must be finite, got {value!r}")
    return value


def _synthetic(name: str, n_samples: int, noise: float, balance: float, seed: int, root: int) -> Dataset:
    n = _check_int("n_samples", n_samples, 4)
    noise = _check_float("noise", noise)
    if noise < 0:
        raise DataError(f"noise must be >= 0, got {noise!r}")
    if name == "linear" and noise > 1:
        raise DataError(f"noise for 'linear' is the fraction of flipped labels and must be in [0, 1], got {noise!r}")
    balance = _check_float("balance", balance)
    if not 0.0 < balance < 1.0:
        raise DataError(f"balance (fraction of class 1) must be in (0, 1), got {balance!r}")
    n1 = int(round(n * balance))
    n0 = n - n1
    if n0 < 1 or n1 < 1:
        raise DataError(
            f"balance={balance!r} with n_samples={n} gives class counts ({n0}, {n1}); "
            "both classes need at least 1 example"
        )
    rng = _rng("data", seed, root)
    X, y = SYNTHETIC[name](n0, n1, noise, rng)
    order = rng.permutation(n)
    return Dataset(
        X=np.ascontiguousarray(X[order], dtype=np.float64),
        y=np.ascontiguousarray(y[order], dtype=np.int64),
        classes=(0, 1),
        feature_names=("x0", "x1"),
        name=name,
    )


def _cache_file(name: str) -> Path | None:
    """Where a real set is kept as ``.npz`` after its first load: ``$SWEEP_CACHE`` or
    ``$XDG_CACHE_HOME/sweep`` (default ``~/.cache/sweep``), keyed by the scikit-learn version that
    made it. ``SWEEP_CACHE=off``: no cache. None when scikit-learn's version is unknown."""
    from importlib import metadata
    root = os.environ.get("SWEEP_CACHE")
    if root == "off":
        return None
    try:
        version = metadata.version("scikit-learn")
    except metadata.PackageNotFoundError:
        return None
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "sweep")
    return Path(root) / f"{name}-sklearn{version}.npz"


def _real(name: str) -> Dataset:
    """A set shipped inside scikit-learn. Importing scikit-learn takes about a second, in every worker
    process, so the arrays are kept in a small cache file after the first load (the same values:
    float64 and int64 arrays saved without any conversion; a test compares them)."""
    cache = _cache_file(name)
    if cache is not None and cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                return Dataset(X=z["X"], y=z["y"], classes=tuple(z["classes"].tolist()),
                               feature_names=tuple(str(f) for f in z["feature_names"]), name=name)
        except Exception:       # damaged (truncated zip, empty file, ...) or another layout: replace it
            with contextlib.suppress(OSError):
                cache.unlink()
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, f"load_{name}")()
    classes = tuple(v.item() if isinstance(v, np.generic) else v for v in bunch.target_names)
    ds = Dataset(
        X=np.ascontiguousarray(bunch.data, dtype=np.float64),
        y=np.ascontiguousarray(bunch.target, dtype=np.int64),
        classes=classes,
        feature_names=tuple(str(f) for f in bunch.feature_names),
        name=name,
    )
    if cache is not None:
        tmp = None
        try:    # written whole under a unique temporary name, then renamed: readers never see half a file
            cache.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{cache.stem}.", suffix=".npz", dir=cache.parent)
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, X=ds.X, y=ds.y, classes=np.asarray(ds.classes),
                         feature_names=np.asarray(ds.feature_names))
            os.replace(tmp, cache)
            tmp = None
        except OSError:             # a read-only home or a full disk: no cache, no harm
            pass
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
    return ds


def _columns_text(columns: Sequence[str]) -> str:
    return ", ".join(repr(c) for c in columns)


def _csv(name: str, target: str | None, features: Sequence[str] | None) -> Dataset:
    import pandas as pd

    raw = name[len(CSV_PREFIX):].strip()
    if not raw:
        raise DataError(f"dataset {name!r}: give a file after 'csv:', e.g. 'csv:data/points.csv'")
    path = Path(os.path.expanduser(raw))
    if not path.is_file():
        raise DataError(f"dataset {name!r}: CSV file not found: {str(path)!r} (cwd {os.getcwd()!r})")
    if target is None:
        raise DataError(f"dataset {name!r}: target is required for csv: data sets (the label column's name)")
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"dataset {name!r}: CSV file {str(path)!r} is empty") from exc
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"dataset {name!r}: cannot read CSV file {str(path)!r}: {exc}") from exc
    columns = [str(c) for c in df.columns]
    df.columns = columns
    if target not in columns:
        raise DataError(f"dataset {name!r}: target column {target!r} not found; columns are: {_columns_text(columns)}")
    if features is None:
        feats = [c for c in columns if c != target]
        if not feats:
            raise DataError(f"dataset {name!r}: no feature columns besides target {target!r}")
    else:
        feats = _check_features(name, features, columns)
        if target in feats:
            raise DataError(f"dataset {name!r}: target column {target!r} cannot also be in features")
    if len(df) == 0:
        raise DataError(f"dataset {name!r}: CSV file {str(path)!r} has no data rows")

    missing = {c: int(df[c].isna().sum()) for c in [target, *feats]}
    missing = {c: k for c, k in missing.items() if k}
    if missing:
        detail = ", ".join(f"{c!r} ({k} missing of {len(df)})" for c, k in missing.items())
        raise DataError(f"dataset {name!r}: missing/NaN values in column(s) {detail}; remove or fill them")
    non_numeric = [
        c for c in feats if not pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_complex_dtype(df[c])
    ]
    if non_numeric:
        detail = ", ".join(f"{c!r} ({df[c].dtype}, e.g. {df[c].iloc[0]!r})" for c in non_numeric)
        raise DataError(
            f"dataset {name!r}: feature column(s) must be numeric, not: {detail}; "
            "choose numeric columns with features=[...]"
        )
    X = df[feats].to_numpy(dtype=np.float64)
    bad = ~np.isfinite(X)
    if bad.any():
        detail = ", ".join(f"{c!r} ({int(k)} infinite)" for c, k in zip(feats, bad.sum(axis=0)) if k)
        raise DataError(f"dataset {name!r}: infinite values in column(s) {detail}")

    uniq, y = np.unique(df[target].to_numpy(), return_inverse=True)
    if len(uniq) < 2:
        raise DataError(
            f"dataset {name!r}: target column {target!r} has only one class ({uniq[0]!r}); at least 2 are needed"
        )
    classes = tuple(v.item() if isinstance(v, np.generic) else v for v in uniq)
    return Dataset(
        X=np.ascontiguousarray(X),
        y=np.ascontiguousarray(y.reshape(-1), dtype=np.int64),
        classes=classes,
        feature_names=tuple(feats),
        name=name,
    )


def _check_features(name: str, features: Sequence[str], available: Sequence[str]) -> list[str]:
    if isinstance(features, str) or not all(isinstance(f, str) for f in features):
        raise DataError(f"dataset {name!r}: features must be a list of column names, got {features!r}")
    feats = list(features)
    if not feats:
        raise DataError(f"dataset {name!r}: features must name at least one column; columns are: {_columns_text(available)}")
    dupes = sorted({f for f in feats if feats.count(f) > 1})
    if dupes:
        raise DataError(f"dataset {name!r}: features list repeats {_columns_text(dupes)}")
    unknown = [f for f in feats if f not in available]
    if unknown:
        raise DataError(
            f"dataset {name!r}: feature column(s) {_columns_text(unknown)} not found; "
            f"columns are: {_columns_text(available)}"
        )
    return feats


def _select(ds: Dataset, features: Sequence[str]) -> Dataset:
    feats = _check_features(ds.name, features, ds.feature_names)
    cols = [ds.feature_names.index(f) for f in feats]
    return Dataset(
        X=np.ascontiguousarray(ds.X[:, cols]), y=ds.y, classes=ds.classes, feature_names=tuple(feats), name=ds.name
    )


def load_dataset(
    name: str,
    *,
    n_samples: int = 400,
    noise: float = 0.1,
    balance: float = 0.5,
    seed: int = 0,
    root: int = 0,
    target: str | None = None,
    features: Sequence[str] | None = None,
) -> Dataset:
    """Load or generate a data set: X ``(n, d)`` float64, y ``(n,)`` int64 in ``0..K-1``.

    Synthetic sets use n_samples/noise/balance and the ``data`` stream of (seed, root); real and
    ``csv:<path>`` sets ignore them.  ``target`` (csv only, required) and ``features`` pick columns.
    """
    if not isinstance(name, str):
        raise DataError(f"dataset name must be a string, got {name!r}")
    if name.startswith(CSV_PREFIX):
        return _csv(name, target, features)
    if name not in SYNTHETIC and name not in REAL:
        raise DataError(
            f"unknown dataset {name!r}; allowed: {', '.join(available_datasets())}, or 'csv:<path to file.csv>'"
        )
    if target is not None:
        raise DataError(f"target={target!r} is only used with 'csv:<path>' data sets, not {name!r}")
    ds = _synthetic(name, n_samples, noise, balance, seed, root) if name in SYNTHETIC else _real(name)
    return ds if features is None else _select(ds, features)


# --------------------------------------------------------------------------- splitting


def _part_size(field: str, value, n: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DataError(f"{field} must be a fraction in [0, 1) or an integer count, got {value!r}")
    if isinstance(value, (int, np.integer)):
        if not 0 <= value < n:
            raise DataError(f"{field} as a count must be in [0, {n}) for {n} rows, got {value!r}")
        return int(value)
    value = float(value)
    if not (math.isfinite(value) and 0.0 <= value < 1.0):
        raise DataError(f"{field} as a fraction must be in [0, 1), got {value!r}")
    return int(round(value * n))


def _augment(u: np.ndarray, allowed: np.ndarray, row_need: np.ndarray, col_need: np.ndarray) -> bool:
    """Fill a 0/1 matrix ``u`` (K, P) up to row/column needs along alternating paths; False if stuck."""
    K, P = u.shape
    while row_need.any():
        start = int(np.flatnonzero(row_need)[0])
        # BFS over rows; parent maps a column to the row we reached it from, a row to its column.
        col_from = {}
        row_from = {start: None}
        queue, end = deque([start]), None
        while queue and end is None:
            r = queue.popleft()
            for p in range(P):
                if allowed[r, p] and not u[r, p] and p not in col_from:
                    col_from[p] = r
                    if col_need[p] > 0:
                        end = p
                        break
                    for r2 in range(K):
                        if u[r2, p] and allowed[r2, p] and r2 not in row_from:
                            row_from[r2] = p
                            queue.append(r2)
        if end is None:
            return False
        p = end
        col_need[p] -= 1
        while True:
            r = col_from[p]
            u[r, p] = 1
            back = row_from[r]
            if back is None:
                row_need[r] -= 1
                break
            u[r, back] = 0
            p = back
    return True


def _allocate(counts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Class-by-part counts (K, P) with row sums ``counts`` and column sums ``sizes`` (part 0 = train).

    Every cell is the floor or ceiling of its proportional quota size*count/n (controlled rounding;
    largest remainders first), and every present class keeps >= 1 training example when possible.
    """
    counts = counts.astype(np.int64)
    sizes = sizes.astype(np.int64)
    n = int(counts.sum())
    num = np.outer(counts, sizes)
    floor, rem = num // n, num % n  # exact integer arithmetic: quota = floor + rem / n
    allowed = rem > 0
    row_need = counts - floor.sum(axis=1)
    col_need = sizes - floor.sum(axis=0)
    K, P = num.shape

    def solve(force_train: bool) -> np.ndarray | None:
        u = np.zeros((K, P), np.int64)
        rn, cn, ok = row_need.copy(), col_need.copy(), allowed.copy()
        if force_train:
            starving = np.flatnonzero((counts > 0) & (floor[:, 0] == 0))
            if len(starving) > cn[0]:
                return None
            u[starving, 0] = 1
            rn[starving] -= 1
            cn[0] -= len(starving)
            ok[starving, 0] = False  # fixed: never undone by augmentation
        # Greedy: largest remainders first (ties: part order, then class index).
        for flat in np.lexsort((np.arange(K * P) // P, np.arange(K * P) % P, -rem.ravel())):
            r, p = divmod(int(flat), P)
            if ok[r, p] and rn[r] > 0 and cn[p] > 0:
                u[r, p], rn[r], cn[p] = 1, rn[r] - 1, cn[p] - 1
        if not _augment(u, ok, rn, cn):
            return None
        if force_train:
            ok[starving, 0] = True
        return floor + u

    alloc = solve(True)
    if alloc is None:
        alloc = solve(False)
    assert alloc is not None  # controlled rounding always exists
    # Last resort (tiny classes, tight train part): move one example into train for each starving class.
    present = counts > 0
    if sizes[0] >= present.sum():
        for c in np.flatnonzero(present & (alloc[:, 0] == 0)):
            p = 1 + int(np.argmax(alloc[c, 1:]))
            donors = np.flatnonzero(alloc[:, 0] >= 2)
            over = alloc[donors, 0] - num[donors, 0] / n
            d = int(donors[np.argmax(over)])
            alloc[c, p] -= 1
            alloc[c, 0] += 1
            alloc[d, 0] -= 1
            alloc[d, p] += 1
    return alloc


def split_counts(counts: Sequence[int], val_size: float | int, test_size: float | int) -> np.ndarray:
    """Rows of each class in each part, (K, 3) for train/val/test, exactly as :func:`split_dataset`
    allocates them for a data set with these class ``counts`` (the allocation does not depend on the seed)."""
    counts = np.asarray(counts, dtype=np.int64)
    n = int(counts.sum())
    n_test = _part_size("test_size", test_size, n)
    n_val = _part_size("val_size", val_size, n)
    if n - n_val - n_test < 1:
        raise DataError(f"val_size={val_size!r} and test_size={test_size!r} leave no training data "
                        f"({n_val} val + {n_test} test of {n} rows); make them smaller")
    return _allocate(counts, np.array([n - n_val - n_test, n_val, n_test]))


def _split_fix(short: list[int], n: int, more: str | None) -> str:
    """What to change in the study file when the parts in ``short`` (0 train, 1 val, 2 test) are too
    small; ``more`` says how to get more rows (None: a bundled set, which cannot grow)."""
    fixes = {0: "make data.val_size and data.test_size smaller", 1: "make data.val_size larger",
             2: "make data.test_size larger"}
    if n < MIN_ROWS:
        return more or "use a larger data set"
    return ", or ".join([*([more] if more else []), *(fixes[p] for p in short)])


def check_split_sizes(counts: Sequence[int], val_size: float | int, test_size: float | int, name: str,
                      more: str | None = "add rows to the data set") -> None:
    """Raise a :class:`DataError` unless the data set (rows per class ``counts``) has at least
    ``MIN_ROWS`` rows and every non-empty part of its split at least ``MIN_CLASS_ROWS`` rows of every
    class. The message gives the sizes and the fix in the study file's terms (``more``: how to add rows)."""
    alloc = split_counts(counts, val_size, test_size)
    n, sizes, smallest = int(alloc.sum()), alloc.sum(axis=0), alloc.min(axis=0)
    short = [p for p in range(3) if sizes[p] > 0 and smallest[p] < MIN_CLASS_ROWS]
    if n >= MIN_ROWS and not short:
        return
    parts = " / ".join(f"{k} {part}" for k, part in zip(sizes, ("train", "val", "test")))
    raise DataError(
        f"{name!r} is too small for its split: {n} rows (classes {'/'.join(str(int(c)) for c in counts)}), "
        f"split by data.val_size {val_size!r} and data.test_size {test_size!r}, give {parts} rows with "
        f"{' / '.join(str(k) for k in smallest)} rows of the smallest class; a study needs at least {MIN_ROWS} "
        f"rows and {MIN_CLASS_ROWS} rows of every class in every part: {_split_fix(short, n, more)}")


def _scaler(X: np.ndarray, scale: str) -> tuple[np.ndarray, np.ndarray]:
    """Shift and divisor (each (d,)) fitted on training rows X (n_train, d); constant columns get divisor 1."""
    d = X.shape[1]
    if scale == "none":
        return np.zeros(d), np.ones(d)
    constant = X.max(axis=0) == X.min(axis=0)
    if scale == "standard":
        # a constant column is shifted by its exact value (its float mean can be off by an ulp)
        shift, div = np.where(constant, X[0] if len(X) else 0.0, X.mean(axis=0)), X.std(axis=0)
    else:  # minmax
        shift, div = X.min(axis=0), X.max(axis=0) - X.min(axis=0)
    return shift, np.where(constant | (div == 0), 1.0, div)


def split_dataset(
    ds: Dataset,
    *,
    val_size: float | int = 0.2,
    test_size: float | int = 0.2,
    scale: str = "standard",
    seed: int = 0,
    root: int = 0,
    dtype: str = "float64",
) -> Split:
    """Stratified train/val/test split of ``ds`` (X (n, d)) driven by the ``split`` stream of (seed, root).

    Sizes are fractions in [0, 1) (rounded) or int counts; scaling is fitted on the train part only.
    Returns parts X_* (n_part, d) in ``dtype``, y_* and *_index (n_part,) int64, rows in index order.
    """
    if not isinstance(ds, Dataset):
        raise DataError(f"split_dataset needs a Dataset, got {type(ds).__name__}")
    if scale not in SCALES:
        raise DataError(f"scale must be one of {', '.join(SCALES)}; got {scale!r}")
    try:
        dtype_name = None if dtype is None else np.dtype(dtype).name
    except TypeError:
        dtype_name = None
    if dtype_name not in DTYPES:
        raise DataError(f"dtype must be one of {', '.join(DTYPES)}; got {dtype!r}")
    n = len(ds.y)
    n_test = _part_size("test_size", test_size, n)
    n_val = _part_size("val_size", val_size, n)
    n_train = n - n_val - n_test
    if n_train < 1:
        raise DataError(
            f"val_size={val_size!r} and test_size={test_size!r} leave no training data "
            f"({n_val} val + {n_test} test of {n} rows); make them smaller"
        )
    rng = _rng("split", seed, root)

    K = len(ds.classes)
    counts = np.bincount(ds.y, minlength=K)
    alloc = _allocate(counts, np.array([n_train, n_val, n_test]))
    parts: list[list[np.ndarray]] = [[], [], []]
    for c in range(K):
        rows = rng.permutation(np.flatnonzero(ds.y == c))
        n_tr, n_va, _ = alloc[c]
        parts[0].append(rows[:n_tr])
        parts[1].append(rows[n_tr:n_tr + n_va])
        parts[2].append(rows[n_tr + n_va:])
    train_idx, val_idx, test_idx = (np.sort(np.concatenate(p)).astype(np.int64) for p in parts)

    shift, div = _scaler(ds.X[train_idx], scale)

    def take(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = (ds.X[idx].astype(np.float64) - shift) / div
        return np.ascontiguousarray(X, dtype=dtype_name), np.ascontiguousarray(ds.y[idx], dtype=np.int64)

    X_train, y_train = take(train_idx)
    X_val, y_val = take(val_idx)
    X_test, y_test = take(test_idx)
    return Split(
        X_train=X_train,
        y_train=y_train,
        X_val=X_val,
        y_val=y_val,
        X_test=X_test,
        y_test=y_test,
        n_classes=K,
        feature_names=tuple(ds.feature_names),
        name=ds.name,
        train_index=train_idx,
        val_index=val_idx,
        test_index=test_idx,
    )
