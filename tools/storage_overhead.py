"""Per-trial storage overhead of a study: SQLite vs PostgreSQL.

Run: ``.venv/bin/python tools/storage_overhead.py [studies/default.toml] [--pg URL] [--repeat 3]
[--n-jobs 1] [--dir DIR]`` (``make overhead``). PostgreSQL: ``--pg URL``, else ``SWEEP_TEST_PG``,
else a private cluster of Debian's PostgreSQL started for the measurement (fsync on, as in
production; tests/pg.py) and stopped afterwards. SQLite: a study.db in a temporary folder under
``--dir`` (default ``results/``, so on the disk the results normally go to).

Each repetition runs the whole study from scratch in this process (``run_study``, a fresh study name,
the default heartbeat settings) and reports, per trial:

* ``storage``: time the runner's main thread spent in storage calls (the study lock, failing dead
  trials and enqueueing, asking and labelling trials, telling results with their runs and curves);
  the heartbeat thread runs beside the training and is not counted;
* ``export``: the final export (every trial read back, runs.csv / curves.csv written), per trial;
* ``engine``: training time summed over the trial's seeds (``duration_s`` in runs.csv);
* ``wall - engine``: everything that is not training, on the critical path with ``--n-jobs 1``
  (storage, process start-up of the pool, Python overhead), divided by the number of trials.

Prints one line per repetition and the medians; nothing is written except the temporary folders.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def measure(spec_path: Path, url: str | None, out: Path, n_jobs: int):
    from sweep.runner import run_study
    from sweep.spec import load_spec
    text = spec_path.read_text()
    name = f"overhead_{uuid.uuid4().hex[:8]}"
    spec_file = out.with_suffix(".toml")
    spec_file.write_text(text.replace(f'name = "{load_spec(spec_path).study.name}"', f'name = "{name}"', 1))
    spec = load_spec(spec_file)
    t0 = time.perf_counter()
    s = run_study(spec, out=out, storage=url, n_jobs=n_jobs, progress=False)
    wall = time.perf_counter() - t0
    n = s.n_trials_run
    return {"trials": n, "runs": s.n_runs, "wall": wall, "storage_per_trial": s.storage_s / n,
            "export_per_trial": s.export_s / n, "engine_per_trial": s.engine_s / n,
            "other_per_trial": (wall - s.engine_s) / n}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("spec", nargs="?", default=str(ROOT / "studies" / "default.toml"))
    ap.add_argument("--pg", help="PostgreSQL URL (default: SWEEP_TEST_PG, else a private cluster)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--dir", default=str(ROOT / "results"), help="where the SQLite study goes (a temp folder)")
    args = ap.parse_args()
    from sweep.store import mask_url
    cluster = None
    url = args.pg or os.environ.get("SWEEP_TEST_PG")
    if not url:
        import pg
        cluster = pg.PrivateCluster(durable=True)
        url = cluster.start()
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="overhead-", dir=args.dir))
    rows = {"sqlite": [], "postgresql": []}
    try:
        measure(Path(args.spec), None, tmp / "warmup", args.n_jobs)      # imports and caches, not reported
        for k in range(args.repeat):
            for kind in (("sqlite", "postgresql") if k % 2 == 0 else ("postgresql", "sqlite")):
                r = measure(Path(args.spec), None if kind == "sqlite" else url, tmp / f"{kind}{k}", args.n_jobs)
                rows[kind].append(r)
                print(f"{kind:10s} #{k + 1}: {r['trials']} trials, {r['runs']} runs, wall {r['wall']:.1f} s; "
                      f"per trial: storage {1000 * r['storage_per_trial']:.0f} ms, export "
                      f"{1000 * r['export_per_trial']:.0f} ms, engine {1000 * r['engine_per_trial']:.0f} ms, "
                      f"wall - engine {1000 * r['other_per_trial']:.0f} ms", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if cluster is not None:
            cluster.stop()
    print(f"\nmedians over {args.repeat} runs of {Path(args.spec).name} (--n-jobs {args.n_jobs}; PostgreSQL "
          f"{'private cluster, fsync on' if cluster else mask_url(url)}):")
    for kind, rs in rows.items():
        med = {key: statistics.median(r[key] for r in rs) for key in rs[0]}
        print(f"  {kind:10s} storage {1000 * med['storage_per_trial']:4.0f} ms/trial   export "
              f"{1000 * med['export_per_trial']:4.0f} ms/trial   engine "
              f"{1000 * med['engine_per_trial']:4.0f} ms/trial   wall - engine {1000 * med['other_per_trial']:4.0f} ms/trial"
              f"   wall {med['wall']:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
