"""The small study file the runner and multi-host tests write: moons, one hidden layer, 3 seeds."""
from __future__ import annotations

from pathlib import Path

TEMPLATE = """
[study]
name = "{name}"
sampler = "{sampler}"
{n_trials}
objective = "val_acc"
aggregate = "{aggregate}"
batch = {batch}
[data]
dataset = "moons"
n_samples = 200
noise = 0.25
[model]
hidden = [4]
init = "xavier_normal"
[train]
optimizer = "adam"
lr = 0.01
iterations = {iterations}
[space]
{space}
[seeds]
replicates = 3
root = 1
"""


def write_small_spec(directory: Path, name: str, *, space: str, iterations: int, sampler: str = "grid",
                     n_trials: int | None = None, aggregate: str = "mean", batch: int = 2) -> Path:
    """``directory/<name>.toml`` for the given search space and budget; returns its path."""
    path = Path(directory) / f"{name}.toml"
    path.write_text(TEMPLATE.format(name=name, sampler=sampler, space=space, iterations=iterations, batch=batch,
                                    aggregate=aggregate, n_trials=f"n_trials = {n_trials}" if n_trials else ""))
    return path
