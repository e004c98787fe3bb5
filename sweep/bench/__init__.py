"""``make bench`` / ``sweep bench``: seconds per network-run of sweep's engine on the workloads studies
run, against the tools a user would otherwise reach for, the machine's compute floor, and the
reference sweep end to end.

* ``workloads``: the reference workload (breast cancer, one hidden layer of 3 / 32 / 256 sigmoid
  units, 1000 full-batch Adam iterations) and three studies' workloads (digits softmax with
  minibatches of 32, a [64, 64] tanh network full batch, a [32] network with minibatches of 64);
  their FLOP and elementwise counts and compute floors;
* ``machine``: the large-GEMM and exp rates, BLAS and CPU information;
* ``peers`` and ``jaxpeer``: scikit-learn, a plain numpy loop, PyTorch and JAX (optional extras);
* ``harness``: the interleaved measurement (every repeat runs every case once, medians);
* ``report``: table, CSV and target lines; ``e2e``: the 960-run reference sweep through ``sweep run``.

One BLAS thread for every BLAS in the process (threadpoolctl), one thread for PyTorch, JAX pinned to
one core. Output: the printed tables and target lines, ``<out>/bench.csv``, ``<out>/machine.json``,
``<out>/sweep.csv`` and ``<out>/report.txt``. Performance is reported, never asserted.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from . import e2e, harness, machine, peers, report, workloads
from .workloads import WORKLOADS

REFERENCE_KEYS = ["ref3", "ref32", "ref256"]
STUDY_KEYS = ["digits", "deep", "mini"]
QUICK_KEYS = ["ref3", "ref32", "digits", "deep", "mini"]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sweep bench", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="fast look: 2 repeats, a quarter of each budget, N in {1, 16}, no H=256, a 1/8-size sweep")
    p.add_argument("--repeats", type=int, default=None,
                   help="interleaved repeats (default 5; at least 5 unless --quick)")
    p.add_argument("--out", default="results/bench", help="output folder (default results/bench)")
    p.add_argument("--skip-sweep", action="store_true", help="skip the end-to-end reference sweep")
    p.add_argument("--workloads", default=None,
                   help=f"comma-separated workloads (default all: {','.join(WORKLOADS)})")
    p.add_argument("--ns", default=None, help="networks per engine call, comma-separated (default per workload)")
    p.add_argument("--max-call-s", type=float, default=40.0,
                   help="skip a combination whose one call would take longer (default 40 s)")
    p.add_argument("--blas-threads", type=int, default=1, help="BLAS threads in this process (default 1)")
    p.add_argument("--no-torch", action="store_true", help="leave PyTorch out even if it is installed")
    p.add_argument("--no-jax", action="store_true", help="leave JAX out even if it is installed")
    p.add_argument("--scale", type=float, default=None, help=argparse.SUPPRESS)   # budgets x scale (tests)
    return p


def _ints(text: str) -> tuple[int, ...]:
    vals = tuple(int(v) for v in text.split(",") if v.strip())
    if not vals or min(vals) < 1:
        raise ValueError(text)
    return vals


def engine_fingerprint() -> str:
    """Short hash of the engine's source files, to notice an engine changed during a run."""
    h = hashlib.sha256()
    for f in sorted((Path(__file__).parent.parent / "engine").glob("*.py")):
        h.update(f.name.encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:12]


def _options(argv):
    parser = build_parser()
    args = parser.parse_args(argv)
    args.repeats = args.repeats if args.repeats is not None else (2 if args.quick else 5)
    if args.repeats < 1 or (args.repeats < 5 and not args.quick):
        parser.error(f"--repeats {args.repeats}: at least 5 (or use --quick for a fast look)")
    keys = args.workloads.split(",") if args.workloads else (QUICK_KEYS if args.quick else list(WORKLOADS))
    unknown = [k for k in keys if k not in WORKLOADS]
    if unknown:
        parser.error(f"--workloads: unknown {', '.join(unknown)}; allowed: {', '.join(WORKLOADS)}")
    try:
        ns = _ints(args.ns) if args.ns else None
    except ValueError:
        parser.error(f"--ns {args.ns!r}: give integers >= 1, e.g. 1,8,64")
    scale = args.scale if args.scale is not None else (0.25 if args.quick else 1.0)
    chosen = [WORKLOADS[k].scaled(scale) if scale != 1 else WORKLOADS[k] for k in keys]
    args.ns_by = {w.key: ns or ((1, 16) if args.quick else w.ns) for w in chosen}
    return args, chosen, scale


def main(argv: list[str] | None = None) -> int:
    args, chosen, scale = _options(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    printed: list[str] = []

    def log(msg: str = "") -> None:
        print(msg, flush=True)
        printed.append(msg)

    t_start = time.perf_counter()
    on = {"torch": not args.no_torch and peers.available("torch"), "jax": not args.no_jax and peers.available("jax")}
    info = _setup(args, on, log)
    rates = _Rates(1000 if args.quick else 2000)
    rates.measure()
    log("machine rates now: " + rates.text())
    bench = harness.Bench(chosen)
    cases = harness.build_cases(chosen, on, args.ns_by)
    log(f"measuring {len(cases)} cases x {args.repeats} interleaved repeats"
        + (f", budgets x {scale:g}" if scale != 1 else ""))
    harness.measure(bench, cases, args.repeats, args.max_call_s, log, after_round=rates.measure)
    info.update(loadavg_end=os.getloadavg(), rates=rates.best, gemm_size=rates.size)
    floors = {}
    for w in chosen:
        flops, elems = workloads.work(w, *bench.shape(w.key))
        for dt in ("float64", "float32"):
            floors[(dt, w.key)] = workloads.floor_seconds(flops, elems, *rates.best[dt])
        log(f"  {w.key}: {flops / 1e9:.3g} GFLOP + {elems / 1e6:.3g} M exp-equivalents per network-run -> "
            f"floor {floors[('float64', w.key)]:.3g} s (float64), {floors[('float32', w.key)]:.3g} s (float32)")
    log(f"compute floor from the best rates seen over {args.repeats + 1} measurements: " + rates.text())
    _tables_and_targets(cases, floors, info, chosen, out, log)
    info["engine_source_after_table"] = engine_fingerprint()
    sweep_rows: list[dict] = []
    if not args.skip_sweep:
        log("")
        iterations = max(1, round(e2e.ITERATIONS * (1 if args.quick else scale)))
        sweep_rows, lines = e2e.sweep_section(args.quick, iterations, log)
        report.write_csv(out / "sweep.csv", sweep_rows, e2e.SWEEP_COLUMNS)
        for line in lines:
            log(line)
    if engine_fingerprint() != info["engine_source"]:
        log("WARNING: the engine's source files changed on disk during the run: re-run for clean numbers")
    info.update(command="sweep bench " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])),
                finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"), repeats=args.repeats,
                scale=scale, quick=args.quick, bench_seconds=time.perf_counter() - t_start, sweep=sweep_rows)
    (out / "machine.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    log("")
    log(f"wrote {out / 'bench.csv'}, {out / 'machine.json'}" + (f", {out / 'sweep.csv'}" if sweep_rows else "")
        + f" ({time.perf_counter() - t_start:.0f} s)")
    (out / "report.txt").write_text("\n".join(printed) + "\n")
    return 0


def _setup(args, on: dict[str, bool], log) -> dict:
    """Import every BLAS user, cap them all (threadpoolctl only sees loaded libraries), describe the machine."""
    import scipy.linalg  # noqa: F401
    import sklearn.neural_network  # noqa: F401

    from .. import engine  # noqa: F401
    if on["torch"]:
        import torch
        torch.set_num_threads(args.blas_threads)
    if on["jax"]:
        peers.jax_import()
    from threadpoolctl import threadpool_limits
    global _LIMITER
    _LIMITER = threadpool_limits(limits=args.blas_threads)     # held for the whole run
    blas = machine.blas_summary()
    info = machine.machine_info(blas)
    info["loadavg_start"] = os.getloadavg()
    info["engine_source"] = engine_fingerprint()
    log(f"sweep bench ({'quick' if args.quick else 'full'}): {info['cpu_model']}, {info['cores']} cores, "
        f"{', '.join(info['simd'])}; Python {info['python']}")
    log("versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v))
    log(f"BLAS (threadpoolctl): {machine.blas_text(blas)}")
    log(f"peers: PyTorch {'on' if on['torch'] else 'not installed (or --no-torch): left out'}, "
        f"JAX {'on (one core)' if on['jax'] else 'not installed (or --no-jax): left out'}")
    log(f"load average at start {info['loadavg_start'][0]:.2f} (other processes share this machine: timings are noisy)")
    return info


_LIMITER = None


class _Rates:
    """The machine's GEMM and exp rates per dtype, the best seen over every measurement."""

    def __init__(self, size: int):
        self.size = size
        self.best: dict[str, list[float]] = {}

    def measure(self) -> None:
        for dt in ("float64", "float32"):
            g, e = machine.gemm_rate(dt, self.size), machine.elementwise_rate(dt)
            old = self.best.get(dt, [0.0, 0.0])
            self.best[dt] = [max(old[0], g), max(old[1], e)]

    def text(self) -> str:
        return "; ".join(f"{dt} GEMM {r[0] / 1e9:.1f} GFLOP/s ({self.size}x{self.size}), exp {r[1] / 1e9:.2f} Gelem/s"
                         for dt, r in self.best.items())


def _tables_and_targets(cases, floors, info, chosen, out: Path, log) -> None:
    rows = report.table_rows(cases, floors, info)
    report.write_csv(out / "bench.csv", rows)
    keys = [w.key for w in chosen]
    log("")
    log("seconds per network-run (median); x sklearn = sklearn time / time (> 1 = faster); x floor = time / floor")
    for group in (REFERENCE_KEYS, STUDY_KEYS):
        shown = [k for k in group if k in keys]
        if shown:
            log(report.format_table(rows, shown))
            log("")
    for c in cases:
        if c.skipped:
            log(f"  {c.label} {c.dtype} N={c.N} {c.workload}: {c.skipped}")
    accs: dict[str, list[float]] = {}
    for c in cases:
        if c.times and c.acc == c.acc:
            accs.setdefault(c.workload, []).append(c.acc)
    log("final training accuracy, range over implementations: " + ", ".join(
        f"{k} {100 * min(a):.1f}-{100 * max(a):.1f}%" for k, a in accs.items()))
    log("")
    for line in report.target_lines(cases, floors, keys):
        log(line)
