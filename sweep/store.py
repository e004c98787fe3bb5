"""The results folder and the storage: paths, storage URLs (passwords masked), the study-wide lock
that makes several workers safe, and the export of a study's runs from the Optuna storage to
``runs.csv``, ``curves.csv`` and ``meta.json``.

The storage is the single source of truth; the CSVs are exports, rewritten from it every time (each
file replaced atomically, so workers exporting at once never leave a torn file). Rows are sorted by
stable ids (config, then seeds), so the bytes do not depend on ``n_jobs`` or on the number of workers.

Passwords: a storage URL's password never reaches a print, a log line, an exception message shown to
the user, ``meta.json`` or a report. ``mask_url`` masks one URL, ``mask_secrets`` any text (every URL
in it, plus the literal passwords of the URLs seen so far, ``register_secret``).
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import platform
import re
import socket
import sqlite3
import sys
import tempfile
import threading
import warnings
import zlib
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import quote, unquote

import optuna

from .design import analysis_info, columns

if TYPE_CHECKING:
    import pandas as pd     # imported where used: the runner's start-up does not wait for pandas

warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)   # heartbeat options

RUN_COLUMNS_FIRST = ["study", "trial", "run_id", "config_id"]
SEED_COLUMNS = ["seed_init", "seed_order", "seed_split"]
METRIC_COLUMNS = ["train_acc", "val_acc", "test_acc", "train_loss", "val_loss", "test_loss"]


class StorageError(RuntimeError):
    """The storage cannot be opened or used; the message names the URL with its password masked."""


# user:password@ inside any URL; the password runs to the LAST '@' before a space (an unencoded '@' or '/'
# in a password is still masked; masking a little too much is the safe side)
_URL_PASSWORD = re.compile(r"([A-Za-z][\w+.-]*://[^:/@\s]*:)\S*@")
# password=... in a URL's query or a libpq connection string
_QUERY_PASSWORD = re.compile(r"(\b(?:password|passwd|pwd)=)([^&\s'\"]*)", re.IGNORECASE)
_SECRETS: set[str] = set()
_SECRETS_LOCK = threading.Lock()


def mask_url(url: str) -> str:
    """The storage URL with any password replaced by ``***``."""
    return _QUERY_PASSWORD.sub(r"\1***", _URL_PASSWORD.sub(r"\1***@", url))


def url_password(url: str) -> str | None:
    """The password in a URL (decoded), or None."""
    m = re.search(r"[A-Za-z][\w+.-]*://[^:/@\s]*:(\S*)@", url)
    if m and m.group(1):
        return unquote(m.group(1))
    q = _QUERY_PASSWORD.search(url)
    return unquote(q.group(2)) if q and q.group(2) else None


def register_secret(url: str | None) -> None:
    """Remember the password of ``url`` so ``mask_secrets`` also masks it where it appears alone."""
    pw = url_password(url) if url else None
    if pw and len(pw) >= 4:          # shorter ones would mask ordinary words; URLs are masked anyway
        with _SECRETS_LOCK:
            _SECRETS.update({pw, quote(pw, safe=""), quote(pw)})


def mask_secrets(text: str, *urls: str | None) -> str:
    """``text`` with every URL's password and every known password (``register_secret``, ``urls``)
    replaced by ``***``."""
    for url in urls:
        register_secret(url)
    text = mask_url(str(text))
    with _SECRETS_LOCK:
        known = sorted(_SECRETS, key=len, reverse=True)
    for pw in known:
        text = text.replace(pw, "***")
    return text


def _mask_tree(value: Any) -> Any:
    """Every string inside a JSON-like value, masked."""
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, dict):
        return {k: _mask_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask_tree(v) for v in value]
    return value


def default_storage(out_dir: Path) -> str:
    """SQLite file inside the results folder."""
    return f"sqlite:///{(out_dir / 'study.db').resolve()}"


def storage_url_for(out_dir: Path) -> str:
    """The storage a results folder was written from (``meta.json``), else its SQLite file.
    A masked password in meta.json is filled in from ``SWEEP_STORAGE`` when that names the same URL."""
    meta = out_dir / "meta.json"
    if meta.exists():
        url = json.loads(meta.read_text()).get("storage")
        env = os.environ.get("SWEEP_STORAGE")
        if url and "***" in url:
            if env and mask_url(env) == url:
                return env
            raise StorageError(
                f"{out_dir} was written from the storage {url}; its password is not stored anywhere: "
                f"set SWEEP_STORAGE to the full URL (or pass --storage URL)")
        if url:
            return url
    return default_storage(out_dir)


def open_storage(url: str, heartbeat_interval: int = 5, grace_period: int = 20,
                 wal: bool = False) -> optuna.storages.RDBStorage:
    """An RDB storage with heartbeats (so a dead process's trials can be failed and re-run).
    ``wal``: a SQLite file is written in write-ahead-log mode (see ``_sqlite_wal``; the runner
    asks for it, readers do not, so a finished study can be read from a read-only folder).

    A trial whose heartbeat is older than ``grace_period`` seconds is failed by the next worker that
    looks. Any failure to open (bad URL, missing driver, wrong password, no server) becomes a
    ``StorageError`` whose message has the password masked."""
    register_secret(url)
    given, url = url, _with_driver(url)
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    elif url.startswith("postgresql"):
        # pre_ping: a connection the server or a firewall dropped between generations is replaced
        kwargs["engine_kwargs"] = {"pool_pre_ping": True, "connect_args": {"connect_timeout": 20}}
    try:
        with warnings.catch_warnings(), _schema_lock(url):
            warnings.simplefilter("ignore")
            storage = optuna.storages.RDBStorage(url, heartbeat_interval=int(heartbeat_interval),
                                                 grace_period=int(grace_period), **kwargs)
        if wal and url.startswith("sqlite") and os.environ.get("SWEEP_SQLITE_WAL", "on") != "off":
            _sqlite_wal(storage)
        return storage
    except Exception as exc:
        reason = describe_error(exc, given)
        if isinstance(exc, ImportError) or "DB access module" in reason:
            reason = ("no database driver for this URL (PostgreSQL needs the cluster extra: "
                      "pip install 'sweep[cluster]', which installs psycopg)")
        raise StorageError(f"cannot open the storage {mask_url(given)}: {reason}") from None


def _sqlite_wal(storage: optuna.storages.RDBStorage) -> None:
    """SQLite in write-ahead-log mode with ``synchronous=NORMAL`` while a sweep writes: a commit no
    longer waits for the disk (measured on this machine: 0.9 ms instead of 5.1 ms; a trial takes
    about a dozen commits). A killed process loses nothing committed (it sits in ``study.db-wal``
    until the next run folds it in); a power loss may undo the last commits, which the next run then
    re-runs (the database stays consistent). WAL needs a local disk: ``SWEEP_SQLITE_WAL=off`` for a
    network filesystem. Every connection gets the pragmas, so the pool is emptied of the ones Optuna
    opened before the listener existed; ``leave_wal`` undoes this at the end of a run."""
    from sqlalchemy import event

    def on_connect(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(storage.engine, "connect", on_connect)
    storage._sweep_wal = on_connect         # type: ignore[attr-defined]
    storage.engine.dispose()


def leave_wal(storage: optuna.storages.RDBStorage) -> bool:
    """Back to SQLite's default journal: the log folded into ``study.db``, the ``-wal``/``-shm``
    files gone, so the file alone is the whole study and opens from a read-only folder. Skipped
    (False) while another process still has the database open; the last one to finish does it."""
    on_connect = getattr(storage, "_sweep_wal", None)
    if on_connect is None:
        return False
    from sqlalchemy import event, exc
    event.remove(storage.engine, "connect", on_connect)
    del storage._sweep_wal
    storage.engine.dispose()
    try:
        with storage.engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode=DELETE").scalar()
        return str(mode).lower() == "delete"
    except exc.SQLAlchemyError:         # locked by another process: it will do it when it leaves
        return False
    finally:
        storage.engine.dispose()


def _with_driver(url: str) -> str:
    """``postgresql://`` names psycopg 3 explicitly when it is installed (the ``cluster`` extra):
    SQLAlchemy 2.0 would otherwise look for psycopg2, SQLAlchemy 2.1 for psycopg."""
    if url.startswith("postgresql://"):
        import importlib.util
        if importlib.util.find_spec("psycopg") is not None:
            return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


@contextlib.contextmanager
def _schema_lock(url: str) -> Iterator[None]:
    """One process at a time creates Optuna's tables and version row (several workers starting at
    once on an empty database would otherwise race on CREATE TABLE or the version row): a
    PostgreSQL advisory lock, or for SQLite the ``flock`` of ``study_lock`` (``<database>.lock``)."""
    if url.startswith("sqlite"):
        from sqlalchemy.engine import make_url
        with _sqlite_file_lock(make_url(url).database, missing_ok=True):
            yield
        return
    if not url.startswith("postgresql"):
        yield
        return
    import sqlalchemy
    from sqlalchemy.pool import NullPool
    engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 20})
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:cls, 0)"), {"cls": 0x5357})
            conn.commit()
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:cls, 0)"), {"cls": 0x5357})
                    conn.commit()
    finally:
        engine.dispose()


def describe_error(exc: BaseException, url: str | None = None) -> str:
    """One masked line for a storage exception (the driver's own message, without SQLAlchemy's links)."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc) or type(exc).__name__
    text = " ".join(line.strip() for line in text.splitlines() if "sqlalche.me" not in line)
    return mask_secrets(text, url)


_REMOTE_DISK_FULL = re.compile(rf"\[Errno {errno.ENOSPC}\]|database or disk is full")


def _is_disk_full(exc: BaseException) -> bool:
    """``exc`` itself says the disk is full (not looking at its chain)."""
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)
    # a worker process's exception arrives with its own chain only as text (loky's _RemoteTraceback)
    return type(exc).__name__ == "_RemoteTraceback" and bool(_REMOTE_DISK_FULL.search(str(exc)))


def disk_full_error(exc: BaseException) -> BaseException | None:
    """The full-disk error behind ``exc``, else None: an ``OSError`` with errno ENOSPC or SQLite's
    "database or disk is full", found anywhere in the chain (``__cause__``, ``__context__``, a
    SQLAlchemy error's ``orig``), e.g. under Optuna's ``StorageInternalError``."""
    stack, seen = [exc], set()
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if _is_disk_full(e):
            return e
        stack += [getattr(e, "orig", None), e.__context__, e.__cause__]
    return None


@contextlib.contextmanager
def study_lock(storage: optuna.storages.RDBStorage, study_name: str) -> Iterator[None]:
    """Mutual exclusion between every process working on ``study_name`` in this storage.

    Held only while a worker fails dead trials, enqueues missing configurations and asks its next
    generation, so those decisions are taken on a snapshot nobody else changes: a grid is enqueued
    exactly once and a random/TPE budget is counted exactly, however many workers start at once.
    PostgreSQL: a transaction-scoped advisory lock (released by the server when the transaction ends
    or the connection dies; an idle holder is cut after 10 minutes). SQLite: an exclusive ``flock``
    on ``<db>.lock`` next to the database (released by the kernel when the process dies). Other
    databases: no lock (one worker at a time)."""
    engine = storage.engine
    dialect = engine.dialect.name
    if dialect == "postgresql":
        from sqlalchemy import text
        key = zlib.crc32(f"sweep-study:{study_name}".encode()) - 2 ** 31       # a signed int4
        with engine.connect() as conn:
            try:
                conn.execute(text("SET LOCAL idle_in_transaction_session_timeout = '600s'"))
                conn.execute(text("SELECT pg_advisory_xact_lock(:cls, :key)"), {"cls": 0x5357, "key": key})
                yield
            finally:
                with contextlib.suppress(Exception):             # a dead connection released it already
                    conn.rollback()                              # ends the transaction: lock released
    elif dialect == "sqlite":
        with _sqlite_file_lock(engine.url.database):
            yield
    else:
        yield


@contextlib.contextmanager
def _sqlite_file_lock(database: str | None, missing_ok: bool = False) -> Iterator[None]:
    """An exclusive ``flock`` on ``<database>.lock`` beside a SQLite file (nothing for an in-memory
    database). ``missing_ok``: no lock when that file cannot be created (a read-only folder, where
    nobody can be writing either)."""
    if database in (None, "", ":memory:"):
        yield
        return
    import fcntl
    try:
        fh = open(f"{database}.lock", "a")
    except OSError:
        if not missing_ok:
            raise
        yield
        return
    with fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for pkg in ("sweep", "numpy", "scipy", "pandas", "optuna", "joblib", "scikit-learn", "psycopg", "dask",
                "distributed"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return out


def runs_frame(study: optuna.Study, spec) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per run and the long curves table, from the COMPLETE trials of the study."""
    import pandas as pd
    cols = columns(spec)
    rows, curve_rows = [], []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        result = t.user_attrs.get("result")
        if result is None:
            continue
        cid = t.user_attrs["config_id"]
        params = {cols[k]: v for k, v in t.params.items() if k in cols}
        steps = result["curves"].get("steps", [])
        for k, run in enumerate(result["runs"]):
            run_id = f"{cid}-i{run['seed_init']}-o{run['seed_order']}-s{run['seed_split']}"
            rows.append({"study": spec.study.name, "trial": t.number, "run_id": run_id, "config_id": cid,
                         **params, **run})
            for split in ("train", "val"):
                loss = result["curves"][f"{split}_loss"][k]
                acc = result["curves"][f"{split}_acc"][k]
                for step, lo, ac in zip(steps, loss, acc):
                    curve_rows.append({"run_id": run_id, "step": step, "split": split, "loss": lo, "acc": ac})
    runs = pd.DataFrame(rows)
    if runs.empty:
        return runs, pd.DataFrame(columns=["run_id", "step", "split", "loss", "acc"])
    first = RUN_COLUMNS_FIRST + [c for c in cols.values()] + SEED_COLUMNS + METRIC_COLUMNS
    rest = [c for c in runs.columns if c not in first and c != "duration_s"]
    runs = runs[first + rest + ["duration_s"]]
    runs = runs.sort_values(["config_id", "seed_split", "seed_init", "seed_order"], kind="stable")
    curves = pd.DataFrame(curve_rows)
    order = {r: i for i, r in enumerate(runs["run_id"])}
    curves = curves.assign(_o=curves["run_id"].map(order)).sort_values(["_o", "split", "step"], kind="stable")
    return runs.reset_index(drop=True), curves.drop(columns="_o").reset_index(drop=True)


def _write_atomic(path: Path, write) -> None:
    """``write(tmp_path)``, then rename over ``path``: readers and other exporters never see half a file."""
    with named_in_errors(path):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            write(Path(tmp))
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


@contextlib.contextmanager
def named_in_errors(path: Path) -> Iterator[None]:
    """An ``OSError`` without a file name (a failed ``write``), or any full-disk one (a temporary file's
    name), is raised again named ``path``: the file the user knows."""
    try:
        yield
    except OSError as exc:
        if exc.errno is None or (exc.filename is not None and exc.errno != errno.ENOSPC):
            raise
        raise OSError(exc.errno, exc.strerror, str(path)) from exc


def export(study: optuna.Study, spec, out_dir: Path, meta: dict[str, Any]) -> dict[str, Path]:
    """Write runs.csv, curves.csv, meta.json and spec.toml into ``out_dir``; return their paths.
    Every string in meta.json (storage URL, command line, ...) has its passwords masked."""
    out_dir.mkdir(parents=True, exist_ok=True)
    runs, curves = runs_frame(study, spec)
    paths = {"runs": out_dir / "runs.csv", "curves": out_dir / "curves.csv", "meta": out_dir / "meta.json"}
    _write_atomic(paths["runs"], lambda p: runs.to_csv(p, index=False))
    _write_atomic(paths["curves"], lambda p: curves.to_csv(p, index=False))
    _write_atomic(out_dir / "spec.toml", lambda p: p.write_text(spec.source))
    full = {
        "study": spec.study.name, "spec_hash": spec.hash(), "n_runs": int(len(runs)),
        "host": socket.gethostname(), "platform": platform.platform(), "versions": versions(),
        "analysis": analysis_info(spec), **meta,
    }
    full = _mask_tree({**full, "storage": mask_url(full.get("storage", ""))})
    text = json.dumps(full, indent=2, sort_keys=True, default=str) + "\n"
    _write_atomic(paths["meta"], lambda p: p.write_text(text))
    return paths
