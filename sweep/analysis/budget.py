"""Expected best result against the number of trials (Dodge et al., *Show Your Work*, EMNLP 2019):
how good the best of ``n`` configurations is in expectation when configurations are drawn
independently from the same distribution (random search, QMC), for ``n = 1 .. N``.

With the ``N`` observed trial values sorted, ``v_(1) <= ... <= v_(N)``, the expected maximum of ``n``
draws with replacement is ``sum_i v_(i) [(i / N)^n - ((i - 1) / N)^n]``. The band is a 95% percentile
bootstrap over the trials (the curve recomputed on resampled trial sets), so it shows how well ``N``
trials pin the curve down; ``sd`` is the spread of a single study's best of ``n``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import resample

__all__ = ["expected_best", "INDEPENDENT_SAMPLERS"]

INDEPENDENT_SAMPLERS = ("random", "qmc")


def _curve(v: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected maximum and its sd for each ``n`` ``(K,)`` from values ``v`` ``(..., N)`` sorted
    ascending along the last axis: ``(..., K)`` each."""
    N = v.shape[-1]
    i = np.arange(1, N + 1)
    p = (i[None, :] / N) ** n[:, None] - ((i[None, :] - 1) / N) ** n[:, None]     # (K, N)
    mean = v @ p.T
    second = (v * v) @ p.T
    return mean, np.sqrt(np.maximum(second - mean * mean, 0.0))


def expected_best(values, *, higher_is_better: bool = True, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The expected-best curve of the trial values ``(N,)`` (non-finite values dropped): columns
    ``n, expected, sd, ci_low, ci_high`` for ``n = 1 .. N``; empty with fewer than 2 trials."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return pd.DataFrame(columns=["n", "expected", "sd", "ci_low", "ci_high"])
    sign = 1.0 if higher_is_better else -1.0
    v = np.sort(sign * v)
    n = np.arange(1, v.size + 1)
    mean, sd = _curve(v, n)
    rng = np.random.default_rng(seed)
    boot = np.sort(v[resample.indices(rng, v.size, n_boot)], axis=1)
    draws, _ = _curve(boot, n)
    lo, hi = np.percentile(draws, [2.5, 97.5], axis=0)
    if sign < 0:
        mean, lo, hi = -mean, -hi, -lo
    return pd.DataFrame({"n": n, "expected": mean, "sd": sd, "ci_low": lo, "ci_high": hi})
