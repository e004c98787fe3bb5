"""The reference sweep end to end: 960 runs through ``sweep run`` as a user starts it.

4 learning rates x hidden {3, 16, 64, 256} x 3 inits x 20 seeds, 1000 full-batch Adam iterations on
breast cancer, with 1 and 2 workers in float64 and 2 workers in float32. The run's numbers come from
``sweep run --json`` (its summary as one JSON object); the wall time is the whole process's, measured
here. Outside the engine = 1 - engine seconds (summed over workers) / (workers x wall).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

SWEEP_HIDDEN = (3, 16, 64, 256)
SWEEP_LRS = (0.0003, 0.001, 0.003, 0.01)
SWEEP_INITS = ("xavier_normal", "he_normal", "normal:0.01")
SWEEP_SEEDS = 20
ITERATIONS = 1000
SWEEP_COLUMNS = ("dtype", "n_jobs", "runs", "iterations", "wall_s", "runner_wall_s", "engine_s", "storage_s",
                 "export_s", "outside_share", "ok", "note")
# Targets: wall times and the parallel speed-up of issue 7, the share outside the engine of issue 15.
SWEEP_F64_S, SWEEP_F32_S, OUTSIDE_MAX, PARALLEL_MIN = 90.0, 50.0, 0.05, 1.7


def reference_spec(*, dtype: str = "float64", iterations: int = ITERATIONS, lrs=SWEEP_LRS,
                   hidden=SWEEP_HIDDEN, inits=SWEEP_INITS, seeds: int = SWEEP_SEEDS,
                   name: str = "bench_reference") -> str:
    """The reference sweep as a study file (breast cancer, the spec's default 60/20/20 split)."""
    def tl(xs):
        return "[" + ", ".join(json.dumps(x) for x in xs) + "]"
    return f"""# written by sweep.bench: the reference sweep
[study]
name = "{name}"
sampler = "grid"
objective = "val_acc"
aggregate = "mean"

[data]
dataset = "breast_cancer"
scale = "standard"

[model]
hidden = [3]
activation = "sigmoid"
init = "xavier_normal"

[train]
optimizer = "adam"
lr = 0.01
iterations = {iterations}
dtype = "{dtype}"

[space]
"train.lr" = {{ values = {tl(lrs)} }}
"model.hidden" = {{ values = {tl([[h] for h in hidden])} }}
"model.init" = {{ values = {tl(inits)} }}

[seeds]
replicates = {seeds}
root = 0
"""


def parse_summary(stdout: str) -> dict[str, Any] | None:
    """The JSON object ``sweep run --json`` prints (its last line), or None."""
    for line in reversed(stdout.strip().splitlines()):
        try:
            got = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(got, dict) and "engine_s" in got:
            return got
    return None


def run_sweep(spec_text: str, n_jobs: int, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run a study through the public CLI in a fresh temporary folder; wall time of the whole process."""
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        spec = Path(tmp) / "reference.toml"
        spec.write_text(spec_text)
        cmd = [sys.executable, "-m", "sweep", "run", str(spec), "--out", str(Path(tmp) / "out"),
               "--n-jobs", str(n_jobs), "--quiet", "--json"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp)
        wall = time.perf_counter() - t0
    got = parse_summary(proc.stdout)
    row: dict[str, Any] = {"n_jobs": n_jobs, "wall_s": wall, "ok": proc.returncode == 0 and got is not None}
    if got:
        row.update(runs=got["n_runs"], runner_wall_s=got["wall_s"], engine_s=got["engine_s"],
                   storage_s=got["storage_s"], export_s=got["export_s"],
                   outside_share=1.0 - got["engine_s"] / (n_jobs * wall))
    if not row["ok"]:
        row["note"] = f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-300:]}"
        log(f"  sweep run failed: {row['note']}")
    return row


def sweep_section(quick: bool, iterations: int, log: Callable[[str], None]) -> tuple[list[dict], list[str]]:
    """The 960-run reference sweep (quick: 1/8 of its work) with 1 and 2 workers, float64 and float32."""
    if quick:   # 2 of the 4 learning rates and a quarter of the iterations: 1/8 of the work
        kw = dict(lrs=(0.001, 0.01), iterations=max(1, iterations // 4))
        scale, label = 1 / 8, "quick: 1/8-size sweep (2 learning rates, a quarter of the iterations)"
    else:
        kw = dict(iterations=iterations)
        scale, label = iterations / ITERATIONS, "reference sweep"
    n_runs = len(kw.get("lrs", SWEEP_LRS)) * len(SWEEP_HIDDEN) * len(SWEEP_INITS) * SWEEP_SEEDS
    log(f"{label}: {n_runs} runs of {kw['iterations']} iterations, breast cancer, through `sweep run`")
    rows = []
    for dtype, jobs in (("float64", 1), ("float64", 2), ("float32", 2)):
        r = run_sweep(reference_spec(dtype=dtype, **kw), jobs, log)
        r.update(dtype=dtype, iterations=kw["iterations"])
        rows.append(r)
        nan = float("nan")
        log(f"  {dtype}, {jobs} worker{'s' if jobs > 1 else ''}: {r['wall_s']:.1f} s wall "
            f"(runner {r.get('runner_wall_s', nan):.1f} s, of which storage {r.get('storage_s', nan):.1f} s and "
            f"export {r.get('export_s', nan):.1f} s), engine {r.get('engine_s', nan):.1f} s summed, "
            f"outside the engine {100 * r.get('outside_share', nan):.1f}%")
    return rows, sweep_targets(rows, scale)


def sweep_targets(rows: list[dict], scale: float = 1.0) -> list[str]:
    """Target lines from the three runs (float64 x 1 and 2 workers, float32 x 2 workers)."""
    if not all(r["ok"] for r in rows):
        return ["targets of the reference sweep: NOT MEASURED (a sweep run failed, see above)"]
    w1, w2, w32 = rows
    sfx = f" (time targets scaled by {scale:g})" if scale != 1 else ""

    def status(ok):
        return "MET" if ok else "MISSED"

    s2 = [w2["outside_share"], w32["outside_share"]]
    speed = w1["wall_s"] / w2["wall_s"]
    return [
        f"target outside the engine <={100 * OUTSIDE_MAX:g}% with 2 workers, float64 and float32: "
        f"{status(max(s2) <= OUTSIDE_MAX)} (float64 {100 * s2[0]:.1f}%, float32 {100 * s2[1]:.1f}%; "
        f"1 worker {100 * w1['outside_share']:.1f}%)",
        f"target reference sweep <={SWEEP_F64_S:g} s float64 on 2 cores{sfx}: "
        f"{status(w2['wall_s'] <= SWEEP_F64_S * scale)} ({w2['wall_s']:.1f} s)",
        f"target reference sweep <={SWEEP_F32_S:g} s float32 on 2 cores{sfx}: "
        f"{status(w32['wall_s'] <= SWEEP_F32_S * scale)} ({w32['wall_s']:.1f} s)",
        f"target 2 workers >={PARALLEL_MIN:g}x one (float64): {status(speed >= PARALLEL_MIN)} "
        f"({speed:.2f}x: {w1['wall_s']:.1f} s -> {w2['wall_s']:.1f} s)",
    ]
