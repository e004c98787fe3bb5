"""sweep.store: a full disk found behind any exception, on real errors (writes to /dev/full, a real
SQLite database that cannot grow), and files named in the errors of the writes that failed."""
import errno
import sqlite3

import optuna
import pytest
from sqlalchemy import event

from sweep.store import disk_full_error, named_in_errors, open_storage


def write_dev_full() -> None:
    with open("/dev/full", "w") as fh:
        fh.write("x")


def _dev_full_fails_with_enospc() -> bool:
    try:
        write_dev_full()
    except OSError as exc:
        return exc.errno == errno.ENOSPC
    return False


needs_dev_full = pytest.mark.skipif(not _dev_full_fails_with_enospc(),
                                    reason="needs /dev/full (writes to it fail with ENOSPC)")


def capped_study(path) -> optuna.Study:
    """A study in a real SQLite file that may grow by two pages only: past them SQLite fails with
    SQLITE_FULL ("database or disk is full"), exactly as when the disk under it is full."""
    storage = open_storage(f"sqlite:///{path}")
    study = optuna.create_study(storage=storage, study_name="capped")
    with storage.engine.connect() as conn:
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar() + 2

    def cap(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA max_page_count = {pages}")
        cursor.close()

    event.listen(storage.engine, "connect", cap)
    storage.engine.dispose()
    return study


@needs_dev_full
def test_enospc_is_found_itself_and_behind_other_exceptions():
    with pytest.raises(OSError) as info:
        write_dev_full()
    assert info.value.errno == errno.ENOSPC and disk_full_error(info.value) is info.value
    with pytest.raises(RuntimeError) as info:          # raise ... from the write's error: __cause__
        try:
            write_dev_full()
        except OSError as exc:
            raise RuntimeError("export failed") from exc
    assert disk_full_error(info.value).errno == errno.ENOSPC
    with pytest.raises(ValueError) as info:            # raised while handling it: __context__ only
        try:
            write_dev_full()
        except OSError:
            raise ValueError("cleaning up failed") from None
    assert disk_full_error(info.value).errno == errno.ENOSPC


def test_full_sqlite_is_found_under_optunas_storage_internal_error(tmp_path):
    trial = capped_study(tmp_path / "s.db").ask()
    with pytest.raises(optuna.exceptions.StorageInternalError) as info:
        trial.set_user_attr("result", "x" * 100_000)
    assert "exceeding max length" in str(info.value)   # Optuna's message says nothing of the disk
    found = disk_full_error(info.value)
    assert isinstance(found, sqlite3.OperationalError) and str(found) == "database or disk is full"


def test_other_errors_are_not_a_full_disk(tmp_path):
    with pytest.raises(IsADirectoryError) as info:
        open(tmp_path, "w")
    assert disk_full_error(info.value) is None
    assert disk_full_error(OSError(errno.EFBIG, "File too large")) is None     # RLIMIT_FSIZE's error
    db = tmp_path / "locked.db"
    holder = sqlite3.connect(db)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(sqlite3.OperationalError) as info:
        sqlite3.connect(db, timeout=0).execute("INSERT INTO t VALUES (1)")
    holder.rollback()
    assert str(info.value) == "database is locked" and disk_full_error(info.value) is None
    assert disk_full_error(optuna.exceptions.StorageInternalError("An exception is raised during the commit.")) is None


@needs_dev_full
def test_the_file_written_on_a_full_disk_is_named(tmp_path):
    target = tmp_path / "runs.csv"
    with pytest.raises(OSError) as info:
        with named_in_errors(target):
            write_dev_full()                           # a failed write names no file by itself
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert disk_full_error(info.value) is info.value
    with pytest.raises(IsADirectoryError) as info:     # an error naming its own file keeps it
        with named_in_errors(target):
            open(tmp_path, "w")
    assert info.value.filename == str(tmp_path)
