"""Command line: ``sweep run / worker / export / show / report / confirm / analyze`` (also ``python -m sweep``).
Exit codes: 0 ok, 2 bad input (the message says what to fix), 1 failure, 130 interrupted (rerun the
same command to resume). A storage URL may come from ``SWEEP_STORAGE`` instead of ``--storage``; its
password is masked in everything sweep prints, logs or writes."""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import signal
import sys
import traceback
from pathlib import Path

from .spec import SpecError, load_spec


def _storage_arg(value: str | None) -> str | None:
    return value or os.environ.get("SWEEP_STORAGE") or None


class _MaskingFormatter(logging.Formatter):
    """Every log line (ours, Optuna's, SQLAlchemy's, warnings) with storage passwords masked."""

    def format(self, record: logging.LogRecord) -> str:
        from .store import mask_secrets
        return mask_secrets(super().format(record))


class _LevelFilter(logging.Filter):
    """sweep's own records from ``sweep_level``, everyone else's (Optuna, Dask, ...) from ``level``."""

    def __init__(self, level: int, sweep_level: int):
        super().__init__()
        self.level, self.sweep_level = level, sweep_level

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == "sweep" or record.name.startswith("sweep.")
        return record.levelno >= (self.sweep_level if ours else self.level)


def _setup_logging(quiet: bool = False, capture_warnings: bool = False) -> None:
    """stderr logging through the masking formatter. Default: warnings, plus sweep's own progress
    lines (INFO) unless --quiet; SWEEP_LOG=DEBUG|INFO|WARNING|ERROR sets the level of every logger."""
    env = os.environ.get("SWEEP_LOG", "").upper()
    env_level = logging.getLevelName(env) if env in ("DEBUG", "INFO", "WARNING", "ERROR") else None
    level = env_level or logging.WARNING
    sweep_level = env_level or (logging.WARNING if quiet else logging.INFO)
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h.formatter, _MaskingFormatter)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_MaskingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        root.addHandler(handler)
    handler.filters = [_LevelFilter(level, sweep_level)]
    if env_level is not None:
        root.setLevel(env_level)
    elif root.level == logging.NOTSET or root.level > logging.WARNING:
        root.setLevel(logging.WARNING)
    logging.getLogger("sweep").setLevel(sweep_level)
    if capture_warnings:
        logging.captureWarnings(True)


def _optuna_logs_through_ours() -> None:
    """Optuna's log records go through the masking handler instead of Optuna's own stderr handler."""
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()


def _masked_command() -> str:
    from .store import mask_secrets
    return mask_secrets(" ".join(shlex.quote(a) for a in sys.argv))


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (a cluster scheduler, a container stop) stops a run like Ctrl-C: trials in flight are
    marked failed at once, so other workers re-run them without waiting for the grace period. Both
    signals also set ``runner.STOP``: a KeyboardInterrupt raised inside a finaliser (numba's, say) is
    printed and ignored by Python, and the runner then stops at its next check instead."""
    from .runner import STOP
    STOP.clear()

    def interrupt(signum, frame):
        if STOP.is_set():       # a second signal while in-flight trials are being failed: let that finish
            return
        STOP.set()
        raise KeyboardInterrupt

    previous = {}
    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            if signal.getsignal(sig) is not signal.SIG_IGN:     # ignored (a background job): stays ignored
                previous[sig] = signal.signal(sig, interrupt)
    except ValueError:          # not the main thread
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        STOP.clear()


def _run_options(args: argparse.Namespace) -> dict:
    backend = args.backend or ("dask" if args.scheduler else "loky")
    if args.scheduler and backend != "dask":
        raise SpecError("--scheduler is for --backend dask")
    if args.heartbeat_interval < 1:
        raise SpecError(f"--heartbeat-interval: {args.heartbeat_interval} is not allowed; allowed: an integer >= 1")
    if args.grace_period <= args.heartbeat_interval:
        raise SpecError(f"--grace-period: {args.grace_period} is not allowed; allowed: an integer > "
                        f"--heartbeat-interval ({args.heartbeat_interval})")
    return dict(n_jobs=args.n_jobs or None, progress=not args.quiet, command=_masked_command(),
                backend=backend,
                scheduler=(args.scheduler or os.environ.get("SWEEP_SCHEDULER") or None) if backend == "dask" else None,
                heartbeat_interval=args.heartbeat_interval, grace_period=args.grace_period)


def _print_summary(summary) -> None:
    where = f"{summary.out_dir}/runs.csv" if summary.paths else "the storage"
    print(f"{summary.n_runs} runs in {where} ({summary.n_trials_run} trials trained now, "
          f"{summary.wall_s:.1f} s wall, {summary.engine_s:.1f} s in the engine summed over workers, "
          f"{summary.storage_s:.1f} s in storage calls)")
    if summary.discarded:
        print(f"{summary.discarded} trial(s) trained here were failed meanwhile by another worker and re-run there")


def _summary_json(summary) -> str:
    """The run's summary as one JSON object (``sweep run --json``: for scripts such as sweep bench)."""
    import json
    keys = ("n_runs", "n_trials_run", "wall_s", "engine_s", "storage_s", "export_s", "discarded", "backend")
    return json.dumps({"out_dir": str(summary.out_dir), **{k: getattr(summary, k) for k in keys}})


def cmd_run(args: argparse.Namespace) -> int:
    from .evaluate import prefetch_export_imports
    from .runner import run_study
    spec = load_spec(args.spec)
    args.results_dir = Path(args.out) if args.out else Path("results") / spec.study.name
    options = _run_options(args)
    prefetch_export_imports()       # pandas for the export, imported while the study runs
    _optuna_logs_through_ours()
    with _sigterm_as_interrupt():
        summary = run_study(spec, out=args.out, storage=_storage_arg(args.storage), fresh=args.fresh, **options)
    if args.json:
        print(_summary_json(summary))
        return 0
    _print_summary(summary)
    print(f"next: sweep show {summary.out_dir}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from .runner import run_study
    from .store import mask_url
    spec = load_spec(args.spec)
    args.results_dir = Path(args.out) if args.out else Path("results") / spec.study.name
    url = _storage_arg(args.storage)
    if not url:
        raise SpecError("sweep worker needs the shared storage: --storage postgresql://USER@HOST/DB or "
                        "SWEEP_STORAGE=postgresql://USER:PASSWORD@HOST/DB")
    options = _run_options(args)
    _optuna_logs_through_ours()
    with _sigterm_as_interrupt():
        summary = run_study(spec, out=args.out, storage=url, export_results=not args.no_export, role="worker",
                            **options)
    _print_summary(summary)
    print(f"study {spec.study.name} in {mask_url(url)} is complete; export it anywhere with: "
          f"sweep export {summary.out_dir} --storage URL")
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
    _optuna_logs_through_ours()
    try:
        study = optuna.load_study(study_name=spec.study.name, storage=open_storage(url))
    except KeyError:
        raise SpecError(f"no study {spec.study.name!r} in the storage of {directory}") from None
    return spec, study, url


def _spec_for_dir(arg: str, directory: Path):
    """The spec of a results folder: its spec.toml, else the study file given instead of a folder."""
    if (directory / "spec.toml").exists():
        return directory
    path = Path(arg)
    if path.suffix == ".toml" and path.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "spec.toml").write_text(load_spec(path).source)
    return directory


def cmd_confirm(args: argparse.Namespace) -> int:
    from .confirm import run_confirm
    directory = args.results_dir = _results_dir(args.dir)
    _spec_for_dir(args.dir, directory)
    spec, study, url = _open_from_dir(directory, _storage_arg(args.storage))
    options = _run_options(args)
    with _sigterm_as_interrupt():
        summary = run_confirm(spec, study, url, top=args.top, seeds=args.seeds, out_dir=directory, **options)
    _print_summary(summary)
    print(f"next: sweep report {directory}  (the report compares selection-time and confirmed means)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .store import export
    directory = args.results_dir = _results_dir(args.dir)
    storage = _storage_arg(args.storage)
    if storage:                     # exporting on another host: the folder may not exist yet
        _spec_for_dir(args.dir, directory)
    spec, study, url = _open_from_dir(directory, storage)
    paths = export(study, spec, directory, {"storage": url, "command": _masked_command()})
    print(f"wrote {paths['runs']}, {paths['curves']}, {paths['meta']}")
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from optuna.trial import TrialState
    directory = args.results_dir = _results_dir(args.dir)
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
    directory = args.results_dir = _results_dir(args.dir)
    if args.storage:                # report straight from a storage: export it first
        from .store import export
        _spec_for_dir(args.dir, directory)
        spec, study, url = _open_from_dir(directory, args.storage)
        export(study, spec, directory, {"storage": url, "command": _masked_command()})
    if not (directory / "runs.csv").exists():
        raise SpecError(f"{directory} has no runs.csv: run the study first (sweep run SPEC) or sweep export {directory}")
    t0 = time.perf_counter()
    paths = report_dir(directory, metric=args.metric)
    print(f"wrote {paths['html']} and {paths['md']} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _names(arg: str | None) -> list[str] | None:
    return [x.strip() for x in arg.split(",") if x.strip()] if arg else None


def cmd_analyze(args: argparse.Namespace) -> int:
    import pandas as pd
    from .analysis import AnalysisError
    from .analysis.kinds import KindError, parse_overrides
    from .analysis.table import constant_columns
    from .report import analyze, warm_figure_workers, write_report
    path = Path(args.csv)
    if not path.exists():
        raise SpecError(f"no file {str(path)!r}")
    warm_figure_workers()
    df = pd.read_csv(path)
    factors, seed_cols = _names(args.factors), _names(args.seed_cols)
    if factors == ["none"]:          # a table of one configuration
        factors = []
    single = constant_columns(df, factors or [])
    if single:
        raise SpecError(f"{path}: --factors {', '.join(single)}: column(s) with a single value "
                        f"({', '.join(f'{c}={df[c].iloc[0]}' for c in single)}) do not vary; allowed: "
                        f"columns with two or more values")
    curves = pd.read_csv(args.curves) if args.curves else None
    try:
        overrides = parse_overrides(_names(args.continuous) or [], _names(args.categorical) or [])
        a = analyze(df, metric=args.metric, factors=factors, seed_cols=seed_cols, curves=curves,
                    higher_is_better=False if args.lower_is_better else None, overrides=overrides)
    except (AnalysisError, KindError) as exc:
        raise SpecError(f"{path}: {exc}") from None
    out = args.results_dir = Path(args.out) if args.out else path.with_name(f"{path.stem}-analysis")
    paths = write_report(out, a, title=f"sweep analysis of {path.name}", meta={"source": str(path)})
    print(f"wrote {paths['html']} and {paths['md']}")
    return 0


DIR_HELP = "results folder, or a study file (standing for results/<its name>)"


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bar, no progress log")
    p.add_argument("--backend", choices=("loky", "dask"),
                   help="where training jobs run: loky (local processes, default) or dask")
    p.add_argument("--scheduler", help="Dask scheduler address tcp://HOST:PORT (implies --backend dask; "
                                       "without it --backend dask starts a local cluster of --n-jobs workers)")
    p.add_argument("--heartbeat-interval", type=int, default=5, metavar="S",
                   help="seconds between heartbeats of the trials in flight (default 5)")
    p.add_argument("--grace-period", type=int, default=20, metavar="S",
                   help="a trial whose heartbeat is older than this is failed and re-run (default 20)")


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
    r.add_argument("--json", action="store_true", help="print the run's summary as one JSON object")
    _add_run_options(r)
    r.set_defaults(func=cmd_run)
    w = sub.add_parser("worker", help="join (or create) a study in a shared storage and train its trials "
                                      "until the design is complete; start any number, on any hosts")
    w.add_argument("spec", help="study file (the same on every host)")
    w.add_argument("--storage", help="shared Optuna storage URL, e.g. postgresql://USER@HOST:5432/DB "
                                     "(or set SWEEP_STORAGE, which keeps the password out of shell history)")
    w.add_argument("--out", help="results folder written at the end (default results/<study name>)")
    w.add_argument("--n-jobs", type=int, default=0, help="local training processes (default: all cores)")
    w.add_argument("--no-export", action="store_true", help="write no results folder on this host")
    _add_run_options(w)
    w.set_defaults(func=cmd_worker)
    e = sub.add_parser("export", help="write runs.csv, curves.csv, meta.json from the storage")
    e.add_argument("dir", help=DIR_HELP)
    e.add_argument("--storage", help="storage URL (default: the folder's meta.json or study.db; SWEEP_STORAGE)")
    e.set_defaults(func=cmd_export)
    s = sub.add_parser("show", help="progress and the top configurations of a study")
    s.add_argument("dir", help=DIR_HELP)
    s.add_argument("--storage", help="storage URL (default: the folder's meta.json or study.db; SWEEP_STORAGE)")
    s.add_argument("--top", type=int, default=5)
    s.set_defaults(func=cmd_show)
    rp = sub.add_parser("report", help="analysis, figures and report.html/report.md of a results folder")
    rp.add_argument("dir", help=DIR_HELP)
    rp.add_argument("--metric", help="column to analyse (default: the study's objective)")
    rp.add_argument("--storage", help="export the study from this storage URL first (any host)")
    rp.set_defaults(func=cmd_report)
    cf = sub.add_parser("confirm", help="re-train the top configurations on fresh seeds (the winner's curse)")
    cf.add_argument("dir", help=DIR_HELP)
    cf.add_argument("--top", type=int, default=5, help="how many of the best configurations (default 5)")
    cf.add_argument("--seeds", type=int, default=20, help="fresh seeds per configuration (default 20)")
    cf.add_argument("--n-jobs", type=int, default=0, help="worker processes (default: all cores)")
    cf.add_argument("--storage", help="storage URL (default: the folder's meta.json or study.db; SWEEP_STORAGE)")
    _add_run_options(cf)
    cf.set_defaults(func=cmd_confirm)

    an = sub.add_parser("analyze", help="the same analysis and report on any one-row-per-run CSV")
    an.add_argument("csv")
    an.add_argument("--metric", required=True, help="outcome column, e.g. val_acc")
    an.add_argument("--factors", help="comma-separated columns that vary between configurations "
                                      "('none': a table of one configuration)")
    an.add_argument("--seed-cols", help="comma-separated columns identifying the seed (shared by configurations), any names: "
                         "crossed, nested or drawn together")
    an.add_argument("--curves", help="optional long curves CSV (run_id, step, split, loss, acc)")
    an.add_argument("--lower-is-better", action="store_true", help="the metric is a loss")
    an.add_argument("--continuous", metavar="A,B", help="factors to treat as continuous (smooth effects; "
                    "'lr:log' or 'lr:linear' fixes the scale, default log when positive over two decades)")
    an.add_argument("--categorical", metavar="A,B", help="numeric factors to treat as categorical levels")
    an.add_argument("--out", help="output folder (default: <csv stem>-analysis next to the CSV)")
    an.set_defaults(func=cmd_analyze)
    sub.add_parser("bench", help="benchmark the engine (as make bench); sweep bench --help for its options")
    return p


def main(argv: list[str] | None = None) -> int:
    from .store import mask_secrets, register_secret
    register_secret(os.environ.get("SWEEP_STORAGE"))
    for a in (sys.argv if argv is None else argv):
        if "://" in a or "password=" in a:
            register_secret(a)
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:            # the benchmark has its own options
        from .bench import main as bench_main
        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    _setup_logging(quiet=getattr(args, "quiet", False), capture_warnings=argv is None)
    try:
        return args.func(args)
    except SpecError as exc:
        print(mask_secrets(f"error: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: trials in flight were marked failed; run the same command again to resume",
              file=sys.stderr)
        return 130
    except Exception as exc:
        return _failure(exc, args)


def _failure(exc: Exception, args: argparse.Namespace) -> int:
    """Report a failure (exit code 1): a full disk and a storage error in one line, anything else with
    its traceback. Never let a traceback echo a storage URL: everything is printed masked."""
    from .store import StorageError, describe_error, disk_full_error, mask_secrets
    found = disk_full_error(exc)
    if found is not None:
        if os.environ.get("SWEEP_LOG", "").upper() == "DEBUG":
            print(mask_secrets("".join(traceback.format_exception(exc))), file=sys.stderr, end="")
        print(mask_secrets(f"sweep: the disk is full writing {_full_target(found, args)} ({_full_reason(found)}). "
                           "Free space and re-run the same command: the sweep resumes where it stopped, "
                           "nothing already stored is lost."), file=sys.stderr)
    elif isinstance(exc, StorageError):
        print(mask_secrets(f"error: {exc}"), file=sys.stderr)
    else:
        print(mask_secrets("".join(traceback.format_exception(exc))), file=sys.stderr, end="")
        print(f"error: {type(exc).__name__}: {describe_error(exc)}", file=sys.stderr)
    return 1


def _full_reason(found: BaseException) -> str:
    """SQLite's message, or the system's text for ENOSPC ("No space left on device")."""
    import errno
    import sqlite3
    if isinstance(found, sqlite3.Error):
        return str(found)
    return os.strerror(errno.ENOSPC)


def _full_target(found: BaseException, args: argparse.Namespace) -> str:
    """What was being written when the disk filled: the error's file, else the SQLite database or a
    file in the command's results folder (``args.results_dir``, set by the commands)."""
    import sqlite3
    if isinstance(found, OSError) and found.filename:
        return str(found.filename)
    folder = getattr(args, "results_dir", None)
    if isinstance(found, sqlite3.Error):
        url = _storage_arg(getattr(args, "storage", None))
        if url and url.startswith("sqlite"):
            from sqlalchemy.engine import make_url
            return str(make_url(url).database)
        return str(Path(folder) / "study.db") if folder else "the SQLite storage"
    return f"a file in {folder}" if folder else "a file"


if __name__ == "__main__":
    sys.exit(main())
