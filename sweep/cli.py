"""Command line: ``sweep run / export / show`` (also ``python -m sweep``). Exit codes: 0 ok, 2 bad
input (the message says what to fix), 1 failure, 130 interrupted (rerun the same command to resume)."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from .spec import SpecError, load_spec


def _storage_arg(value: str | None) -> str | None:
    return value or os.environ.get("SWEEP_STORAGE") or None


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import run_study
    spec = load_spec(args.spec)
    summary = run_study(spec, out=args.out, storage=_storage_arg(args.storage), n_jobs=args.n_jobs or None,
                        fresh=args.fresh, progress=not args.quiet,
                        command=" ".join(shlex.quote(a) for a in sys.argv))
    print(f"{summary.n_runs} runs in {summary.out_dir}/runs.csv ({summary.n_trials_run} trials trained now, "
          f"{summary.wall_s:.1f} s wall, {summary.engine_s:.1f} s in the engine summed over workers)")
    print(f"next: sweep show {summary.out_dir}")
    return 0


def _results_dir(arg: str) -> Path:
    """A results folder, or a study file standing for its default folder ``results/<name>``."""
    path = Path(arg)
    if path.suffix == ".toml" and path.is_file():
        return Path("results") / load_spec(path).study.name
    return path


def _open_from_dir(directory: Path, storage: str | None):
    import optuna
    from .store import open_storage, storage_url_for
    spec_path = directory / "spec.toml"
    if not spec_path.exists():
        raise SpecError(f"{directory} is not a results folder of sweep (no spec.toml in it)")
    spec = load_spec(spec_path)
    url = storage or storage_url_for(directory)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=spec.study.name, storage=open_storage(url))
    except KeyError:
        raise SpecError(f"no study {spec.study.name!r} in the storage of {directory}") from None
    return spec, study, url


def cmd_export(args: argparse.Namespace) -> int:
    from .store import export
    directory = _results_dir(args.dir)
    spec, study, url = _open_from_dir(directory, _storage_arg(args.storage))
    paths = export(study, spec, directory, {"storage": url, "command": " ".join(sys.argv)})
    print(f"wrote {paths['runs']}, {paths['curves']}, {paths['meta']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from optuna.trial import TrialState
    directory = _results_dir(args.dir)
    spec, study, _ = _open_from_dir(directory, _storage_arg(args.storage))
    trials = study.get_trials(deepcopy=False)
    counts = {s: sum(t.state == s for t in trials) for s in TrialState}
    from . import design
    print(f"study {spec.study.name}: {counts[TrialState.COMPLETE]} of {design.n_configs(spec)} configurations done, "
          f"{counts[TrialState.RUNNING]} running, {counts[TrialState.WAITING]} waiting, "
          f"{counts[TrialState.FAIL]} failed (re-run on resume); {len(spec.seeds.tuples())} seeds each")
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("objective_mean") is not None]
    sign = -1 if spec.study.direction == "maximize" else 1
    done.sort(key=lambda t: sign * t.user_attrs["objective_mean"])
    obj = spec.study.objective
    print(f"top configurations by mean {obj} (sd over seeds):")
    for t in done[:args.top]:
        sd = t.user_attrs.get("objective_sd")
        params = ", ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in t.params.items())
        sd_text = f" (sd {sd:.4f})" if sd is not None else ""
        print(f"  {t.user_attrs['config_id']}  {t.user_attrs['objective_mean']:.4f}{sd_text}  {params}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import time
    from .report import report_dir
    directory = _results_dir(args.dir)
    if not (directory / "runs.csv").exists():
        raise SpecError(f"{directory} has no runs.csv: run the study first (sweep run SPEC) or sweep export {directory}")
    t0 = time.perf_counter()
    paths = report_dir(directory, metric=args.metric)
    print(f"wrote {paths['html']} and {paths['md']} ({time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    import pandas as pd
    from .analysis import AnalysisError
    from .report import analyze, write_report
    path = Path(args.csv)
    if not path.exists():
        raise SpecError(f"no file {str(path)!r}")
    df = pd.read_csv(path)
    factors = [f for f in args.factors.split(",") if f] if args.factors else None
    seed_cols = [c for c in args.seed_cols.split(",") if c] if args.seed_cols else None
    curves = pd.read_csv(args.curves) if args.curves else None
    try:
        a = analyze(df, metric=args.metric, factors=factors, seed_cols=seed_cols, curves=curves,
                    higher_is_better=False if args.lower_is_better else None)
    except AnalysisError as exc:
        raise SpecError(f"{path}: {exc}") from None
    out = Path(args.out) if args.out else path.with_name(f"{path.stem}-analysis")
    paths = write_report(out, a, title=f"sweep analysis of {path.name}", meta={"source": str(path)})
    print(f"wrote {paths['html']} and {paths['md']}")
    return 0


DIR_HELP = "results folder, or a study file (standing for results/<its name>)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sweep", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="run or resume a study")
    r.add_argument("spec", help="study file, e.g. studies/default.toml")
    r.add_argument("--out", help="results folder (default results/<study name>)")
    r.add_argument("--n-jobs", type=int, default=0, help="worker processes (default: all cores)")
    r.add_argument("--storage", help="Optuna storage URL (default: SQLite in the results folder; "
                                     "or set SWEEP_STORAGE)")
    r.add_argument("--fresh", action="store_true", help="move existing results aside and start over")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_run)
    e = sub.add_parser("export", help="write runs.csv, curves.csv, meta.json from the storage")
    e.add_argument("dir", help=DIR_HELP)
    e.add_argument("--storage")
    e.set_defaults(func=cmd_export)
    s = sub.add_parser("show", help="progress and the top configurations of a study")
    s.add_argument("dir", help=DIR_HELP)
    s.add_argument("--storage")
    s.add_argument("--top", type=int, default=5)
    s.set_defaults(func=cmd_show)
    rp = sub.add_parser("report", help="analysis, figures and report.html/report.md of a results folder")
    rp.add_argument("dir", help=DIR_HELP)
    rp.add_argument("--metric", help="column to analyse (default: the study's objective)")
    rp.set_defaults(func=cmd_report)
    an = sub.add_parser("analyze", help="the same analysis and report on any one-row-per-run CSV")
    an.add_argument("csv")
    an.add_argument("--metric", required=True, help="outcome column, e.g. val_acc")
    an.add_argument("--factors", help="comma-separated columns that vary between configurations")
    an.add_argument("--seed-cols", help="comma-separated columns identifying the seed (shared by configurations)")
    an.add_argument("--curves", help="optional long curves CSV (run_id, step, split, loss, acc)")
    an.add_argument("--lower-is-better", action="store_true", help="the metric is a loss")
    an.add_argument("--out", help="output folder (default: <csv stem>-analysis next to the CSV)")
    an.set_defaults(func=cmd_analyze)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SpecError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: trials in flight were marked failed; run the same command again to resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
