"""Independent random streams, one per source of randomness.

A run's randomness has three sources that a study may want to vary separately:

* ``init``  - the initial weights,
* ``order`` - the order in which minibatches visit the training data,
* ``split`` - which examples land in the train / validation / test parts,

plus ``data`` for generating a synthetic data set (fixed for a whole study).
Each stream is a ``numpy.random.Generator`` built from a ``SeedSequence`` whose
entropy is ``(root, source key, seed)``: changing the order seed can never move
the initial weights, and no stream is ever ``seed + offset`` or the global state.
Streams are built from plain integers where they are used (inside the worker),
never shipped between processes.
"""
from __future__ import annotations

import numpy as np

#: Fixed, arbitrary 32-bit keys: one per source, so that streams never collide.
SOURCE_KEYS: dict[str, int] = {
    "init": 0x1A17_0001,
    "order": 0x0DE2_0002,
    "split": 0x5B17_0003,
    "data": 0xDA7A_0004,
}
SOURCES: tuple[str, ...] = ("init", "order", "split")


def seed_sequence(source: str, seed: int, root: int = 0) -> np.random.SeedSequence:
    """The ``SeedSequence`` of one source's stream for one seed under a study root."""
    if source not in SOURCE_KEYS:
        raise ValueError(f"unknown random source {source!r}; allowed: {sorted(SOURCE_KEYS)}")
    for name, value in (("seed", seed), ("root", root)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return np.random.SeedSequence([int(root), SOURCE_KEYS[source], int(seed)])


def stream(source: str, seed: int, root: int = 0) -> np.random.Generator:
    """A fresh PCG64 generator for ``source`` (``init``/``order``/``split``/``data``)."""
    return np.random.Generator(np.random.PCG64(seed_sequence(source, seed, root)))
