"""Speed of the analysis and report (``make bench-analysis``): targets reported as met or missed,
never asserted in tests.

1. The report of the 40-trial TPE study ``studies/tpe_lr_width.toml`` (run first into a temporary
   folder; only ``sweep report`` is timed): target <= 10 s on 2 cores.
2. ``sweep analyze`` of a generated 100,000-run table (5,000 sampled configurations x 20 seeds: lr
   log-uniform and weight decay uniform, both continuous, hidden width and init categorical):
   target <= 60 s and <= 1 GB peak memory, figures readable (largest side of any figure) and
   report.html <= 3 MB.

Each command runs in its own process; wall time with ``time.perf_counter``, peak memory as the
child's maximum resident set size. Run: ``.venv/bin/python tools/bench_analysis.py [--skip-tpe]
[--configs 5000] [--seeds 20]``.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def run(args: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of ``python -m sweep ARGS`` in a fresh process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sweep", *args], cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"sweep {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, max(peak, before) / 1024.0


def big_table(path: Path, n_configs: int, n_seeds: int, seed: int = 0) -> None:
    """A sampled study's runs: accuracy peaked in log lr, small effects of wd, width and init, seed
    noise that grows where training fails."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(-4, 0, n_configs)
    wd = rng.uniform(0, 0.1, n_configs)
    h = rng.integers(0, 4, n_configs)
    i = rng.integers(0, 3, n_configs)
    mu = 0.95 - 0.06 * (u + 2.3) ** 2 - 0.3 * wd + np.array([-0.03, 0, 0.01, 0.015])[h] + np.array([0, 0.01, -0.02])[i]
    sd = 0.01 + 0.1 / (1 + np.exp(6 * (u + 3.2)))
    y = np.clip(mu[:, None] + sd[:, None] * rng.standard_normal((n_configs, n_seeds)), 0, 1)
    df = pd.DataFrame({"lr": np.repeat(10 ** u, n_seeds), "wd": np.repeat(wd, n_seeds),
                       "hidden": np.repeat(np.array([8, 16, 32, 64])[h], n_seeds),
                       "init": np.repeat(np.array(["xavier_normal", "he_normal", "normal:0.01"])[i], n_seeds),
                       "seed": np.tile(np.arange(n_seeds), n_configs), "val_acc": y.ravel()})
    df.to_csv(path, index=False)


def figure_sides(folder: Path) -> int:
    from PIL import Image
    return max((max(Image.open(p).size) for p in (folder / "figures").glob("*.png")), default=0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skip-tpe", action="store_true")
    ap.add_argument("--configs", type=int, default=5000)
    ap.add_argument("--seeds", type=int, default=20)
    args = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="sweep-bench-analysis-") as tmp:
        tmp = Path(tmp)
        if not args.skip_tpe:
            out = tmp / "tpe"
            run(["run", str(ROOT / "studies" / "tpe_lr_width.toml"), "--out", str(out), "--n-jobs", "2", "--quiet"], ROOT)
            wall, peak = run(["report", str(out)], ROOT)
            rows.append(("report of studies/tpe_lr_width.toml (400 runs)", wall, 10.0, peak, None,
                         (out / "report.html").stat().st_size / 1e6, figure_sides(out)))
        csv = tmp / "big_runs.csv"
        big_table(csv, args.configs, args.seeds)
        wall, peak = run(["analyze", str(csv), "--metric", "val_acc", "--factors", "lr,wd,hidden,init",
                          "--seed-cols", "seed", "--out", str(tmp / "big")], ROOT)
        rows.append((f"sweep analyze, {args.configs * args.seeds:,} runs / {args.configs:,} configurations", wall, 60.0,
                     peak, 1024.0, (tmp / "big" / "report.html").stat().st_size / 1e6, figure_sides(tmp / "big")))
    print(f"make bench-analysis ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}):")
    for what, wall, target, peak, mem_target, html_mb, side in rows:
        ok = wall <= target and (mem_target is None or peak <= mem_target)
        mem = f", peak {peak:.0f} MB" + (f" (target <= {mem_target:.0f} MB)" if mem_target else "")
        print(f"  {what}: {wall:.1f} s (target <= {target:.0f} s){mem}, report.html {html_mb:.2f} MB, "
              f"largest figure side {side} px: {'met' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
