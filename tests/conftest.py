import types

import numpy as np
import pytest


def make_split(X, y, X_val=None, y_val=None, X_test=None, y_test=None):
    """A Split-like namespace for engine tests (the engine only reads these fields)."""
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=np.int64)
    empty_X, empty_y = X[:0], y[:0]
    return types.SimpleNamespace(
        X_train=X, y_train=y,
        X_val=empty_X if X_val is None else np.asarray(X_val, float),
        y_val=empty_y if y_val is None else np.asarray(y_val, np.int64),
        X_test=empty_X if X_test is None else np.asarray(X_test, float),
        y_test=empty_y if y_test is None else np.asarray(y_test, np.int64),
        n_classes=int(y.max()) + 1,
    )


@pytest.fixture(scope="session")
def cancer():
    """Standardised breast cancer, first 400 rows train, the rest validation."""
    from sklearn.datasets import load_breast_cancer
    X, y = load_breast_cancer(return_X_y=True)
    X = (X - X[:400].mean(0)) / X[:400].std(0)
    return make_split(X[:400], y[:400], X[400:], y[400:])


@pytest.fixture(scope="session")
def blobs3():
    """A small 3-class problem: 90 points, 4 features, train/val/test."""
    rng = np.random.default_rng(7)
    y = np.repeat([0, 1, 2], 30)
    X = rng.standard_normal((90, 4)) + y[:, None] * np.array([1.0, -0.5, 0.3, 0.0])
    idx = rng.permutation(90)
    X, y = X[idx], y[idx]
    return make_split(X[:60], y[:60], X[60:75], y[60:75], X[75:], y[75:])
