"""Tests for sweep.data: synthetic/real/CSV loading, stratified splitting, scaling."""
from __future__ import annotations

import numpy as np
import pytest

from sweep.data import (
    MIN_ROWS,
    REAL,
    REAL_CLASS_COUNTS,
    REAL_SHAPES,
    SYNTHETIC,
    DataError,
    Dataset,
    Split,
    available_datasets,
    check_split_sizes,
    load_dataset,
    shape_hint,
    split_counts,
    split_dataset,
)

SYNTH_NAMES = sorted(SYNTHETIC)


# --------------------------------------------------------------------------- synthetic


@pytest.mark.parametrize("name", SYNTH_NAMES)
@pytest.mark.parametrize("n, balance", [(400, 0.5), (41, 0.25), (37, 0.9), (4, 0.5), (10, 0.1)])
def test_synthetic_shapes_and_exact_class_counts(name, n, balance):
    ds = load_dataset(name, n_samples=n, balance=balance, noise=0.1, seed=3)
    n1 = round(n * balance)
    assert ds.X.shape == (n, 2) and ds.X.dtype == np.float64
    assert ds.y.shape == (n,) and ds.y.dtype == np.int64
    assert np.bincount(ds.y, minlength=2).tolist() == [n - n1, n1]
    assert ds.classes == (0, 1)
    assert ds.feature_names == ("x0", "x1")
    assert ds.name == name
    assert np.isfinite(ds.X).all()


@pytest.mark.parametrize("name", SYNTH_NAMES)
def test_synthetic_deterministic_given_seed_and_root(name):
    a = load_dataset(name, n_samples=50, seed=7, root=2)
    b = load_dataset(name, n_samples=50, seed=7, root=2)
    assert a.X.tobytes() == b.X.tobytes() and a.y.tobytes() == b.y.tobytes()
    c = load_dataset(name, n_samples=50, seed=8, root=2)
    d = load_dataset(name, n_samples=50, seed=7, root=3)
    assert not np.array_equal(a.X, c.X)
    assert not np.array_equal(a.X, d.X)


def test_synthetic_generation_does_not_touch_global_numpy_state():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    load_dataset("moons", n_samples=30, seed=1)
    assert np.array_equal(np.random.get_state()[1], before)


def test_circles_radii_without_noise():
    ds = load_dataset("circles", n_samples=60, noise=0.0, balance=0.25, seed=1)
    r = np.hypot(ds.X[:, 0], ds.X[:, 1])
    np.testing.assert_allclose(r[ds.y == 0], 1.0)
    np.testing.assert_allclose(r[ds.y == 1], 0.5)


def test_xor_quadrants_without_noise():
    ds = load_dataset("xor", n_samples=80, noise=0.0, seed=2)
    prod = ds.X[:, 0] * ds.X[:, 1]
    assert (prod[ds.y == 0] >= 0).all() and (prod[ds.y == 1] <= 0).all()


def test_moons_shape_without_noise():
    ds = load_dataset("moons", n_samples=80, noise=0.0, seed=2)
    up, low = ds.X[ds.y == 0], ds.X[ds.y == 1]
    np.testing.assert_allclose(np.hypot(up[:, 0], up[:, 1]), 1.0)
    np.testing.assert_allclose(np.hypot(low[:, 0] - 1.0, low[:, 1] - 0.5), 1.0)


def test_linear_separable_then_noise_flips_labels():
    clean = load_dataset("linear", n_samples=200, noise=0.0, seed=4)
    side = (clean.X.sum(axis=1) > 0).astype(np.int64)
    assert np.array_equal(side, clean.y)
    noisy = load_dataset("linear", n_samples=200, noise=0.1, balance=0.3, seed=4)
    side = (noisy.X.sum(axis=1) > 0).astype(np.int64)
    assert (side != noisy.y).sum() == 20  # 10% of 200, as 10 swapped pairs
    assert np.bincount(noisy.y).tolist() == [140, 60]


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"n_samples": 3}, "n_samples"),
        ({"n_samples": 10.0}, "n_samples"),
        ({"noise": -0.1}, "noise"),
        ({"balance": 0.0}, "balance"),
        ({"balance": 1.0}, "balance"),
        ({"balance": 0.01, "n_samples": 20}, "balance"),
        ({"balance": 0.05, "n_samples": 10}, "balance"),  # round(0.5) == 0: no class-1 example
        ({"seed": -1}, "seed"),
        ({"root": "x"}, "root"),
    ],
)
def test_synthetic_argument_errors_name_the_field(kwargs, field):
    with pytest.raises(DataError, match=field):
        load_dataset("moons", **kwargs)


def test_linear_noise_above_one_rejected():
    with pytest.raises(DataError, match="noise"):
        load_dataset("linear", noise=1.5)


def test_unknown_dataset_lists_allowed_names():
    with pytest.raises(DataError) as err:
        load_dataset("mnist")
    msg = str(err.value)
    assert "mnist" in msg and "csv:" in msg
    for name in available_datasets():
        assert name in msg


def test_available_datasets():
    assert available_datasets() == sorted(SYNTH_NAMES + list(REAL))
    assert set(SYNTH_NAMES) == {"moons", "circles", "xor", "spirals", "blobs", "linear"}


def test_feature_subset_and_target_rejected_for_builtin():
    ds = load_dataset("moons", n_samples=20, features=["x1"])
    full = load_dataset("moons", n_samples=20)
    assert ds.feature_names == ("x1",)
    assert np.array_equal(ds.X[:, 0], full.X[:, 1])
    with pytest.raises(DataError, match="x9"):
        load_dataset("moons", features=["x9"])
    with pytest.raises(DataError, match="target"):
        load_dataset("iris", target="species")


# --------------------------------------------------------------------------- real


@pytest.mark.parametrize(
    "name, shape, n_classes",
    [("breast_cancer", (569, 30), 2), ("digits", (1797, 64), 10), ("iris", (150, 4), 3), ("wine", (178, 13), 3)],
)
def test_real_sets_shapes(name, shape, n_classes):
    ds = load_dataset(name)
    assert ds.X.shape == shape and ds.X.dtype == np.float64
    assert ds.y.shape == (shape[0],) and ds.y.dtype == np.int64
    assert len(ds.classes) == n_classes
    assert sorted(np.unique(ds.y).tolist()) == list(range(n_classes))
    assert len(ds.feature_names) == shape[1] and all(isinstance(f, str) for f in ds.feature_names)


@pytest.mark.parametrize("name", REAL)
def test_real_sets_cache_gives_the_same_data(name, tmp_path, monkeypatch):
    monkeypatch.setenv("SWEEP_CACHE", "off")
    direct = load_dataset(name)
    monkeypatch.setenv("SWEEP_CACHE", str(tmp_path))
    first = load_dataset(name)                       # from scikit-learn, then written to the cache
    files = list(tmp_path.glob(f"{name}-sklearn*.npz"))
    assert len(files) == 1
    cached = load_dataset(name)                      # from the cache file
    for ds in (first, cached):
        assert np.array_equal(ds.X, direct.X) and ds.X.dtype == np.float64
        assert np.array_equal(ds.y, direct.y) and ds.y.dtype == np.int64
        assert ds.classes == direct.classes and type(ds.classes[0]) is type(direct.classes[0])
        assert ds.feature_names == direct.feature_names
    good = files[0].read_bytes()
    for damaged in (b"not an npz file", b"", good[: len(good) // 2]):   # garbage, empty, truncated zip
        files[0].write_bytes(damaged)                # loaded afresh and rewritten
        again = load_dataset(name)
        assert np.array_equal(again.X, direct.X) and again.classes == direct.classes
        with np.load(files[0]) as z:                 # the cache file is whole again
            assert np.array_equal(z["X"], direct.X)
    assert sorted(p.name for p in tmp_path.iterdir()) == [files[0].name]     # no temporary file left


def test_shape_hint_matches_the_loaded_sets():
    """The cost estimate's shapes, known without loading, are the loaded shapes."""
    assert sorted(REAL_SHAPES) == sorted(REAL)
    for name in REAL:
        assert shape_hint(name, 400) == load_dataset(name).X.shape
    for name in SYNTH_NAMES:
        assert shape_hint(name, 123) == load_dataset(name, n_samples=123).X.shape
    assert shape_hint("iris", 400, ["petal width (cm)"]) == (150, 1)
    assert shape_hint("csv:whatever.csv", 400) == (1000, 32)          # nominal: not loaded


def test_real_set_names_and_counts():
    iris = load_dataset("iris")
    assert iris.classes == ("setosa", "versicolor", "virginica")
    assert iris.feature_names[0] == "sepal length (cm)"
    assert np.bincount(iris.y).tolist() == [50, 50, 50]
    bc = load_dataset("breast_cancer")
    assert np.bincount(bc.y).tolist() == [212, 357]
    sub = load_dataset("iris", features=["petal width (cm)", "sepal length (cm)"])
    assert np.array_equal(sub.X, iris.X[:, [3, 0]])


# --------------------------------------------------------------------------- splitting


def _ideal(counts, n_part):
    return counts * n_part / counts.sum()


def _check_partition(ds: Dataset, sp: Split):
    idx = np.concatenate([sp.train_index, sp.val_index, sp.test_index])
    assert np.array_equal(np.sort(idx), np.arange(len(ds.y)))
    for part in (sp.train_index, sp.val_index, sp.test_index):
        assert part.dtype == np.int64 and np.all(np.diff(part) > 0)
    assert np.array_equal(sp.y_train, ds.y[sp.train_index])
    assert np.array_equal(sp.y_val, ds.y[sp.val_index])
    assert np.array_equal(sp.y_test, ds.y[sp.test_index])


def test_split_default_sizes_and_partition():
    ds = load_dataset("moons", n_samples=400, seed=1)
    sp = split_dataset(ds, seed=0)
    assert (len(sp.y_train), len(sp.y_val), len(sp.y_test)) == (240, 80, 80)
    assert sp.X_train.shape == (240, 2) and sp.X_val.shape == (80, 2) and sp.X_test.shape == (80, 2)
    assert sp.y_train.dtype == np.int64 and sp.n_classes == 2
    assert sp.feature_names == ("x0", "x1") and sp.name == "moons"
    _check_partition(ds, sp)


def test_split_int_counts_and_zero_parts():
    ds = load_dataset("iris")
    sp = split_dataset(ds, val_size=0, test_size=31)
    assert (len(sp.y_train), len(sp.y_val), len(sp.y_test)) == (119, 0, 31)
    assert sp.X_val.shape == (0, 4)
    _check_partition(ds, sp)
    sp = split_dataset(ds, val_size=0.0, test_size=0.0)
    assert len(sp.y_train) == 150


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("iris", {}),
        ("wine", {"val_size": 0.15, "test_size": 0.3}),
        ("digits", {"val_size": 0.1, "test_size": 0.25}),
        ("breast_cancer", {"val_size": 57, "test_size": 0.33}),
        ("spirals", {"n_samples": 97, "balance": 0.2}),
    ],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_split_is_stratified_within_one_example(name, kwargs, seed):
    sizes = {k: kwargs.pop(k) for k in ("val_size", "test_size") if k in kwargs}
    ds = load_dataset(name, **kwargs)
    sp = split_dataset(ds, seed=seed, **sizes)
    _check_partition(ds, sp)
    counts = np.bincount(ds.y)
    for y_part in (sp.y_train, sp.y_val, sp.y_test):
        got = np.bincount(y_part, minlength=len(counts))
        assert np.all(np.abs(got - _ideal(counts, len(y_part))) < 1.0)


def test_split_exact_totals_small_classes_keep_training_examples():
    # classes of sizes 1, 2, 3, 30: proportional rounding alone would starve the tiny ones.
    y = np.repeat(np.arange(4), [1, 2, 3, 30]).astype(np.int64)
    ds = Dataset(X=np.arange(36.0).reshape(36, 1), y=y, classes=(0, 1, 2, 3), feature_names=("a",), name="t")
    sp = split_dataset(ds, val_size=0.3, test_size=0.3, scale="none")
    assert (len(sp.y_train), len(sp.y_val), len(sp.y_test)) == (14, 11, 11)
    assert (np.bincount(sp.y_train, minlength=4) >= 1).all()
    _check_partition(ds, sp)


def test_split_deterministic_and_seed_dependent():
    ds = load_dataset("wine")
    a = split_dataset(ds, seed=4, root=1)
    b = split_dataset(ds, seed=4, root=1)
    for f in ("X_train", "X_val", "X_test", "y_train", "train_index", "val_index", "test_index"):
        assert getattr(a, f).tobytes() == getattr(b, f).tobytes()
    c = split_dataset(ds, seed=5, root=1)
    d = split_dataset(ds, seed=4, root=2)
    assert not np.array_equal(a.test_index, c.test_index)
    assert not np.array_equal(a.test_index, d.test_index)


def test_split_seed_and_data_seed_are_independent():
    d1 = load_dataset("blobs", n_samples=60, seed=1)
    d2 = load_dataset("blobs", n_samples=60, seed=2)
    assert not np.array_equal(d1.X, d2.X)
    # Same labels, different features (data seed): the split depends only on labels and split seed.
    mixed = Dataset(X=d2.X, y=d1.y, classes=d1.classes, feature_names=d1.feature_names, name="m")
    s1, s2 = split_dataset(d1, seed=9), split_dataset(mixed, seed=9)
    assert np.array_equal(s1.train_index, s2.train_index)
    assert np.array_equal(s1.test_index, s2.test_index)
    # Splitting never changes the data, and a data seed equal to the split seed gives no coupling.
    assert np.array_equal(load_dataset("blobs", n_samples=60, seed=1).X, d1.X)
    s3 = split_dataset(d1, seed=1)
    assert not np.array_equal(s3.test_index, s1.test_index)


def test_standard_scaling_fitted_on_train_only():
    ds = load_dataset("wine")
    sp = split_dataset(ds, seed=3)
    np.testing.assert_allclose(sp.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(sp.X_train.std(axis=0), 1.0, atol=1e-12)
    raw_train = ds.X[sp.train_index]
    mu, sd = raw_train.mean(axis=0), raw_train.std(axis=0)
    np.testing.assert_allclose(sp.X_val, (ds.X[sp.val_index] - mu) / sd, rtol=0, atol=1e-12)
    np.testing.assert_allclose(sp.X_test, (ds.X[sp.test_index] - mu) / sd, rtol=0, atol=1e-12)
    assert not np.allclose(sp.X_val.mean(axis=0), 0.0, atol=1e-3)
    assert not np.allclose(sp.X_test.std(axis=0), 1.0, atol=1e-3)


def test_minmax_and_none_scaling():
    ds = load_dataset("iris")
    sp = split_dataset(ds, scale="minmax", seed=2)
    np.testing.assert_allclose(sp.X_train.min(axis=0), 0.0)
    np.testing.assert_allclose(sp.X_train.max(axis=0), 1.0)
    raw = ds.X[sp.train_index]
    lo, rng = raw.min(axis=0), raw.max(axis=0) - raw.min(axis=0)
    np.testing.assert_allclose(sp.X_test, (ds.X[sp.test_index] - lo) / rng, atol=1e-12)
    sp = split_dataset(ds, scale="none", seed=2)
    assert np.array_equal(sp.X_train, ds.X[sp.train_index])
    assert np.array_equal(sp.X_val, ds.X[sp.val_index])


def test_constant_column_scaling():
    X = np.column_stack([np.full(20, 0.1), np.arange(20.0)])
    y = np.tile([0, 1], 10).astype(np.int64)
    ds = Dataset(X=X, y=y, classes=(0, 1), feature_names=("c", "v"), name="const")
    for scale in ("standard", "minmax"):
        sp = split_dataset(ds, scale=scale)
        assert np.array_equal(sp.X_train[:, 0], np.zeros(len(sp.y_train)))
        assert np.array_equal(sp.X_test[:, 0], np.zeros(len(sp.y_test)))


def test_float32_dtype():
    ds = load_dataset("xor", n_samples=50)
    sp = split_dataset(ds, dtype="float32")
    for X in (sp.X_train, sp.X_val, sp.X_test):
        assert X.dtype == np.float32
    sp64 = split_dataset(ds, dtype="float64")
    assert sp64.X_train.dtype == np.float64
    np.testing.assert_allclose(sp.X_train, sp64.X_train, rtol=1e-6)
    assert np.array_equal(sp.train_index, sp64.train_index)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"val_size": 1.0}, "val_size"),
        ({"test_size": -0.1}, "test_size"),
        ({"test_size": 150}, "test_size"),
        ({"val_size": True}, "val_size"),
        ({"val_size": 0.5, "test_size": 0.5}, "no training data"),
        ({"val_size": 75, "test_size": 75}, "no training data"),
        ({"scale": "robust"}, "minmax"),
        ({"dtype": "float16"}, "float32"),
        ({"seed": -3}, "seed"),
    ],
)
def test_split_errors(kwargs, field):
    with pytest.raises(DataError, match=field):
        split_dataset(load_dataset("iris"), **kwargs)


# --------------------------------------------------------------------------- CSV


def _write(tmp_path, text, name="d.csv"):
    p = tmp_path / name
    p.write_text(text)
    return f"csv:{p}"


def test_csv_string_labels_encoded_in_sorted_order(tmp_path):
    name = _write(tmp_path, "a,b,label\n1,2.5,dog\n3,4,cat\n5,6,dog\n7,8,emu\n9,1,cat\n")
    ds = load_dataset(name, target="label")
    assert ds.classes == ("cat", "dog", "emu")
    assert ds.y.tolist() == [1, 0, 1, 2, 0] and ds.y.dtype == np.int64
    assert ds.feature_names == ("a", "b")
    assert np.array_equal(ds.X, [[1, 2.5], [3, 4], [5, 6], [7, 8], [9, 1]]) and ds.X.dtype == np.float64
    assert ds.name == name
    sub = load_dataset(name, target="label", features=["b"])
    assert sub.feature_names == ("b",) and sub.X.shape == (5, 1)


def test_csv_numeric_labels(tmp_path):
    name = _write(tmp_path, "x,y\n0.5,3\n0.1,-1\n0.2,3\n")
    ds = load_dataset(name, target="y")
    assert ds.classes == (-1, 3) and ds.y.tolist() == [1, 0, 1]


def test_csv_file_not_found(tmp_path):
    with pytest.raises(DataError, match="not found") as err:
        load_dataset(f"csv:{tmp_path / 'nope.csv'}", target="y")
    assert "nope.csv" in str(err.value)


def test_csv_target_required(tmp_path):
    with pytest.raises(DataError, match="target"):
        load_dataset(_write(tmp_path, "a,y\n1,0\n2,1\n"))


def test_csv_missing_target_column_lists_columns(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset(_write(tmp_path, "a,b\n1,0\n2,1\n"), target="label")
    msg = str(err.value)
    assert "'label'" in msg and "'a'" in msg and "'b'" in msg


def test_csv_missing_feature_column_lists_columns(tmp_path):
    with pytest.raises(DataError) as err:
        load_dataset(_write(tmp_path, "a,b,y\n1,0,0\n2,1,1\n"), target="y", features=["a", "zz"])
    msg = str(err.value)
    assert "'zz'" in msg and "'a'" in msg and "'b'" in msg


def test_csv_non_numeric_feature_named(tmp_path):
    name = _write(tmp_path, "a,colour,y\n1,red,0\n2,blue,1\n")
    with pytest.raises(DataError, match="'colour'") as err:
        load_dataset(name, target="y")
    assert "'a'" not in str(err.value).split("numeric")[1]
    ds = load_dataset(name, target="y", features=["a"])  # selecting numeric columns works
    assert ds.X.shape == (2, 1)


def test_csv_missing_values_named_with_count(tmp_path):
    name = _write(tmp_path, "a,b,y\n1,,0\n2,,1\n3,4,1\n")
    with pytest.raises(DataError, match=r"'b' \(2 missing") as err:
        load_dataset(name, target="y")
    assert "'a'" not in str(err.value)
    name = _write(tmp_path, "a,y\n1,0\n2,\n3,1\n", "t.csv")
    with pytest.raises(DataError, match=r"'y' \(1 missing"):
        load_dataset(name, target="y")


def test_csv_single_class(tmp_path):
    with pytest.raises(DataError, match="'y'.*one class"):
        load_dataset(_write(tmp_path, "a,y\n1,yes\n2,yes\n"), target="y")


def test_csv_target_in_features_and_empty_file(tmp_path):
    with pytest.raises(DataError, match="'y'"):
        load_dataset(_write(tmp_path, "a,y\n1,0\n2,1\n"), target="y", features=["a", "y"])
    with pytest.raises(DataError, match="empty"):
        load_dataset(_write(tmp_path, "", "e.csv"), target="y")


def test_csv_split_end_to_end(tmp_path):
    rows = "\n".join(f"{i},{i % 3 * 10 + i * 0.01},{'ab'[i % 2]}" for i in range(30))
    ds = load_dataset(_write(tmp_path, "u,v,lab\n" + rows + "\n"), target="lab")
    sp = split_dataset(ds, val_size=6, test_size=0.2, seed=1)
    assert (len(sp.y_train), len(sp.y_val), len(sp.y_test)) == (18, 6, 6)
    assert sp.n_classes == 2 and sp.feature_names == ("u", "v")
    assert np.bincount(sp.y_test).tolist() == [3, 3]


# --------------------------------------------------------------------------- big enough for the split


def test_real_class_counts_are_the_loaded_ones():
    assert sorted(REAL_CLASS_COUNTS) == sorted(REAL)
    for name in REAL:
        assert REAL_CLASS_COUNTS[name] == tuple(np.bincount(load_dataset(name).y).tolist())


@pytest.mark.parametrize("val_size, test_size", [(0.2, 0.2), (0.25, 0.25), (0.1, 0.1), (30, 0.2)])
def test_split_counts_are_the_split_datasets_parts(val_size, test_size):
    """The allocation the check looks at is the one split_dataset makes, whatever the seed."""
    ds = load_dataset("circles", n_samples=97, balance=0.3)
    alloc = split_counts(np.bincount(ds.y), val_size, test_size)
    for seed in (0, 5):
        sp = split_dataset(ds, val_size=val_size, test_size=test_size, seed=seed)
        got = [np.bincount(part, minlength=2).tolist() for part in (sp.y_train, sp.y_val, sp.y_test)]
        assert alloc.T.tolist() == got


def test_bundled_and_default_sets_are_large_enough():
    for name in REAL:
        for val_size, test_size in ((0.2, 0.2), (0.25, 0.25), (0.1, 0.1)):
            check_split_sizes(REAL_CLASS_COUNTS[name], val_size, test_size, name)
    for name in SYNTH_NAMES:              # the default n_samples, and the smallest allowed
        check_split_sizes(np.bincount(load_dataset(name).y), 0.2, 0.2, name)
        check_split_sizes(np.bincount(load_dataset(name, n_samples=MIN_ROWS).y), 0.2, 0.2, name)


def test_three_rows_are_refused_with_the_sizes_and_the_fix():
    assert MIN_ROWS == 30
    with pytest.raises(DataError) as err:
        check_split_sizes((2, 1), 0.2, 0.2, "csv:tiny.csv", more="add rows to tiny.csv")
    assert str(err.value) == (
        "'csv:tiny.csv' is too small for its split: 3 rows (classes 2/1), split by data.val_size 0.2 and "
        "data.test_size 0.2, give 1 train / 1 val / 1 test rows with 0 / 0 / 0 rows of the smallest class; "
        "a study needs at least 30 rows and 2 rows of every class in every part: add rows to tiny.csv")
    with pytest.raises(DataError, match="29 rows .* at least 30 rows"):
        check_split_sizes((15, 14), 0.2, 0.2, "moons", more="raise data.n_samples")


def test_a_part_without_two_rows_of_every_class_is_refused():
    with pytest.raises(DataError) as err:        # 150 rows, but 2 val rows for 3 classes
        check_split_sizes(REAL_CLASS_COUNTS["iris"], 0.01, 0.2, "iris", more=None)
    assert ("150 rows (classes 50/50/50), split by data.val_size 0.01 and data.test_size 0.2, give "
            "118 train / 2 val / 30 test rows with 39 / 0 / 10 rows of the smallest class") in str(err.value)
    assert str(err.value).endswith(": make data.val_size larger")
    with pytest.raises(DataError) as err:        # a rare class: 3 rows cannot give 2 to every part
        check_split_sizes((100, 3), 0.2, 0.2, "csv:rare.csv")
    assert "with 2 / 1 / 0 rows of the smallest class" in str(err.value)
    assert str(err.value).endswith("add rows to the data set, or make data.val_size "
                                   "larger, or make data.test_size larger")
    check_split_sizes((100, 10), 0.2, 0.2, "csv:ok.csv")     # 6 / 2 / 2 rows of the rare class
    check_split_sizes((20, 20), 0, 0.2, "csv:no-val.csv")       # an empty part needs nothing
