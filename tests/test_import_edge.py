"""Import on odd files and odd timing: names that are not UTF-8, files that vanish, links, pipes, empty folders,
two imports at once, and parser workers whose import process is killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import mailgen as gen
import psutil
import pytest
from click.testing import CliRunner

from assistant import importer
from assistant.cli import cli
from assistant.errors import NotMailError
from assistant.importer import THREADS_PENDING, WAITING, import_paths
from assistant.mail.sources import text_path
from assistant.store import open_store
from assistant.store.db import db_file, get_setting
from assistant.store.lockfile import FileLock

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file names, links and pipes")


def eml(n: int) -> bytes:
    return (
        f"From: Rosa Diaz <rosa@example.com>\nTo: alex.morgan@example.org\nSubject: note {n}\n"
        f"Message-ID: <note-{n}@example.com>\nDate: Tue, 3 Mar 2020 10:{n % 60:02d}:00 +0000\n\nHello number {n}.\n"
    ).encode()


def undecodable(folder: Path, name: bytes) -> Path:
    """``folder``/``name`` where ``name`` is not valid UTF-8 (a file copied from an old Latin-1 system)."""
    return Path(os.fsdecode(os.path.join(os.fsencode(folder), name)))


def stored(db) -> int:
    return db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]


def parallel(monkeypatch) -> None:
    monkeypatch.setattr(importer, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(importer, "WORKERS", 2)


# -- names that are not UTF-8 ----------------------------------------------------------------------------
@posix_only
def test_names_that_are_not_utf8_are_imported_and_their_paths_round_trip(db, tmp_path):
    root = tmp_path / "mail"
    root.mkdir()
    try:
        sent = undecodable(root, b"Envoy\xe9")
        sent.mkdir()
    except (OSError, UnicodeError):
        pytest.skip("this file system takes UTF-8 names only")
    undecodable(root, b"caf\xe9.eml").write_bytes(eml(1))
    undecodable(sent, b"r\xe9ponse.eml").write_bytes(eml(2))
    undecodable(root, b"not\xe9s.txt").write_bytes(b"buy milk\n")
    report = import_paths(db, [root])
    assert (report.imported, report.status) == (2, "done")
    (skip,) = report.skipped
    assert skip.where.startswith("file://") and text_path(skip.where).read_bytes() == b"buy milk\n"
    assert get_setting(db, THREADS_PENDING, False) is False
    assert db.execute("SELECT COUNT(*) FROM messages WHERE thread_id IS NULL").fetchone()[0] == 0
    files = {text_path(p) for (p,) in db.execute("SELECT path FROM import_files")}
    assert files == {undecodable(root, b"caf\xe9.eml"), undecodable(sent, b"r\xe9ponse.eml")}
    sources = {text_path(p) for (p,) in db.execute("SELECT source_file FROM messages")}
    assert sources == files
    assert {f for (f,) in db.execute("SELECT folder FROM messages")} == {"mail", "Envoyé"}
    again = import_paths(db, [root])
    assert (again.unchanged_files, again.imported) == (2, 0)
    shown = CliRunner().invoke(cli, ["import", os.fsdecode(os.fsencode(root))])
    assert shown.exit_code == 0, shown.output
    assert "skipped file://" in shown.output and "not%E9s.txt" in shown.output


# -- files that vanish --------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", ["in-process", "workers"])
def test_a_file_that_vanishes_before_it_is_read_is_a_counted_skip(db, tmp_path, monkeypatch, how):
    if how == "workers":
        parallel(monkeypatch)
    box = tmp_path / "Maildir"
    for d in ("new", "cur", "tmp"):
        (box / d).mkdir(parents=True)
    for n in range(5):
        (box / "new" / f"{n}.eml").write_bytes(eml(n))
    archive = tmp_path / "archive.mbox"
    gen.write_mbox(archive, gen.generate_messages(20, seed=2))
    found = importer.discover

    def found_then_the_mail_client_moves_them(paths):
        result = found(paths)
        os.rename(box / "new" / "2.eml", box / "cur" / "2.eml:2,S")  # a live maildir: read mail moves to cur/
        archive.unlink()
        return result

    monkeypatch.setattr(importer, "discover", found_then_the_mail_client_moves_them)
    report = import_paths(db, [box, archive])
    assert (report.status, report.imported, report.seen) == ("done", 4, 6)
    assert sorted(s.where for s in report.skipped) == sorted([str(archive), str(box / "new" / "2.eml")])
    assert all(s.reason.startswith("gone before it was read") for s in report.skipped)
    assert get_setting(db, THREADS_PENDING, False) is False
    monkeypatch.setattr(importer, "discover", found)
    again = import_paths(db, [box])
    assert (again.imported, again.unchanged_files, again.skipped) == (1, 4, [])


# -- links, pipes, empty folders ------------------------------------------------------------------------------
@posix_only
@pytest.mark.timeout(30)
def test_links_to_folders_are_followed_once_and_a_loop_is_skipped_with_a_reason(db, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "a.eml").write_bytes(eml(1))
    root = tmp_path / "mail"
    (root / "real").mkdir(parents=True)
    (root / "real" / "b.eml").write_bytes(eml(2))
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    (root / "real" / "loop").symlink_to(root, target_is_directory=True)
    (root / "twin").symlink_to(root / "real", target_is_directory=True)
    report = import_paths(db, [root])
    assert report.imported == 2
    real = Path(os.path.realpath(root))
    assert sorted((s.where, s.reason) for s in report.skipped) == [
        (str(root / "real" / "loop"), f"link to {real}, which is read already"),
        (str(root / "twin"), f"link to {real / 'real'}, which is read already"),
    ]
    folders = dict(db.execute("SELECT subject, folder FROM messages"))
    assert folders == {"note 1": "linked", "note 2": "real"}


@posix_only
@pytest.mark.timeout(30)
def test_a_pipe_among_the_mail_is_skipped_not_waited_on(db, tmp_path):
    root = tmp_path / "mail"
    root.mkdir()
    (root / "a.eml").write_bytes(eml(1))
    os.mkfifo(root / "pipe")
    report = import_paths(db, [root])
    assert report.imported == 1
    assert [(s.where, s.reason) for s in report.skipped] == [
        (str(root / "pipe"), "not a regular file (a device, pipe or socket)")
    ]


def test_an_empty_folder_says_why_there_is_no_mail(db, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotMailError) as raised:
        import_paths(db, [tmp_path / "empty"])
    assert "()" not in str(raised.value) and "(empty folder: no files in it)" in str(raised.value)


def test_a_folder_with_only_a_maildir_tmp_says_why(db, tmp_path):
    (tmp_path / "box" / "tmp").mkdir(parents=True)
    (tmp_path / "box" / "tmp" / "half-written").write_bytes(eml(1))
    with pytest.raises(NotMailError, match=r"no files to read in it \(.*tmp folders are never read\)"):
        import_paths(db, [tmp_path / "box"])


# -- two imports at once --------------------------------------------------------------------------------------
@pytest.fixture
def small_mbox(tmp_path):
    path = tmp_path / "small.mbox"
    gen.write_mbox(path, gen.generate_messages(60, seed=4))
    return path


def hold_import_lock(db) -> FileLock:
    """Stand in for another import that is running in this data folder."""
    lock = FileLock(f"{db_file(db)}.import-lock")
    assert lock.try_acquire()
    return lock


def test_a_second_import_waits_for_the_first_then_runs(db, data_home, small_mbox):
    other = hold_import_lock(db)
    phases: list[str] = []
    done = {}

    def second() -> None:
        done["report"] = import_paths(open_store(data_home), [small_mbox], progress=lambda p: phases.append(p.phase))

    thread = threading.Thread(target=second)
    thread.start()
    deadline = time.monotonic() + 20
    while WAITING not in phases and time.monotonic() < deadline:
        time.sleep(0.02)
    assert phases[:1] == [WAITING]
    time.sleep(0.5)
    assert thread.is_alive() and db.execute("SELECT COUNT(*) FROM import_runs").fetchone()[0] == 0
    other.release()
    thread.join(60)
    assert done["report"].status == "done" and done["report"].imported == stored(db) > 0


def test_cancel_while_waiting_stops_without_writing(db, small_mbox):
    other = hold_import_lock(db)
    try:
        report = import_paths(db, [small_mbox], cancel=lambda: True)
    finally:
        other.release()
    assert (report.status, report.seen) == ("cancelled", 0)
    assert db.execute("SELECT COUNT(*) FROM import_runs").fetchone()[0] == 0


def mailvoice(home: Path, *args: str, stderr=subprocess.PIPE) -> subprocess.Popen:
    exe = os.path.join(os.path.dirname(sys.executable), "mailvoice")
    env = dict(os.environ, MAILVOICE_HOME=str(home))
    return subprocess.Popen([exe, *args], env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)


def test_the_command_says_it_is_waiting_then_imports(db, data_home, small_mbox):
    other = hold_import_lock(db)
    try:
        proc = mailvoice(data_home, "--json", "import", str(small_mbox))
        first_line = proc.stderr.readline()
    finally:
        other.release()
    out, err = proc.communicate(timeout=120)
    assert "Another import into this data folder is running; waiting for it to finish" in first_line
    assert proc.returncode == 0, err
    assert json.loads(out)["imported"] == stored(db) > 0


@pytest.mark.slow
def test_two_imports_at_once_both_finish_and_store_each_message_once(tmp_path):
    box = tmp_path / "archive.mbox"
    gen.write_mbox(box, gen.iter_messages(1500, seed=8))
    reference = import_paths(open_store(tmp_path / "reference"), [box]).imported
    home = tmp_path / "home"
    runs = [mailvoice(home, "--json", "import", str(box)) for _ in range(2)]
    results = [(run.communicate(timeout=300), run.returncode) for run in runs]
    assert [code for _, code in results] == [0, 0], [err[-800:] for (_, err), _ in results]
    reports = [json.loads(out) for (out, _), _ in results]
    assert sum(r["imported"] for r in reports) == reference == stored(open_store(home))


# -- parser workers whose import is killed -------------------------------------------------------------------
WORKER_SCRIPT = """
import sys, time
from pathlib import Path
from assistant import importer
from assistant.store import open_store

importer.PARALLEL_MIN_BYTES, importer.WORKERS = 0, 2
ready = Path(sys.argv[2])

def stuck(progress):
    ready.write_text("workers are parsing")
    time.sleep(600)  # the test kills this process with SIGKILL here

importer.import_paths(open_store(Path(sys.argv[3])), [sys.argv[1]], progress=stuck)
"""


@pytest.mark.slow
@posix_only
def test_parser_workers_exit_when_the_import_process_is_killed(tmp_path):
    box = tmp_path / "archive.mbox"
    gen.write_mbox(box, gen.generate_messages(300, seed=6))
    ready = tmp_path / "ready"
    proc = subprocess.Popen([sys.executable, "-c", WORKER_SCRIPT, str(box), str(ready), str(tmp_path / "home")])
    family: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), "the import never reached its first message"
        family = psutil.Process(proc.pid).children(recursive=True)
        workers = [p for p in family if p.ppid() != proc.pid]  # the fork server's children
        assert workers, "no worker processes were started"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        _gone, alive = psutil.wait_procs(family, timeout=10)
        left = [p for p in alive if _running(p)]
        assert not left, f"still running after the import was killed: {[p.cmdline()[-1][:60] for p in left]}"
    finally:
        proc.kill()
        for p in family:  # only what this test started
            if _running(p):
                p.kill()


def _running(p: psutil.Process) -> bool:
    try:
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_an_import_lock_that_cannot_be_made_does_not_stop_the_import(db, small_mbox, caplog):
    (Path(f"{db_file(db)}.import-lock")).mkdir()  # stands for a data folder where no file can be created
    report = import_paths(db, [small_mbox])
    assert report.status == "done" and report.imported == stored(db) > 0
    assert "cannot make the import lock" in caplog.text


def test_a_bug_while_reading_a_message_is_reported_as_a_bug_not_as_bad_mail(monkeypatch, caplog):
    """Malformed mail is "unreadable"; an error the parsers are not meant to raise is Mailvoice's bug, logged
    with its traceback, and the import goes on either way."""
    from assistant import importer

    def broken(_data, _truncated, _folder):
        raise TypeError("unsupported operand")

    def bad_charset(_data, _truncated, _folder):
        raise LookupError("unknown encoding: x-klingon")

    monkeypatch.setattr(importer, "_build", broken)
    reason = importer.build_record(b"Subject: x\n\nhi\n", False, "Inbox")
    assert reason.startswith("not read because of a bug in Mailvoice (TypeError")
    assert any(r.exc_info and r.exc_info[0] is TypeError for r in caplog.records)
    monkeypatch.setattr(importer, "_build", bad_charset)
    assert importer.build_record(b"Subject: x\n\nhi\n", False, "Inbox").startswith("unreadable message (LookupError")
