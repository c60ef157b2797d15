"""The data folder is safe: never someone else's folder, private modes for all it holds (training included),
read-only folders read and reported truthfully, a file for a folder, and exports that are whole or absent."""

from __future__ import annotations

import contextlib
import errno
import gc
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import mailgen as gen
import pytest
from click.testing import CliRunner
from fake_trainer import with_fake

from assistant.cli import cli
from assistant.importer import import_paths
from assistant.paths import OWN_ENTRIES, data_dir
from assistant.permissions import tighten_data_folder
from assistant.store import open_store
from assistant.store.db import PRIVATE_MODES_KEY
from trainer import jobs
from trainer.config import TrainConfig
from trainer.data import Example
from trainer.process import TrainingProcess

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX modes and file systems")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def run(*args: str) -> tuple[int, dict | str, str]:
    result = CliRunner().invoke(cli, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception  # no traceback
    try:
        return result.exit_code, json.loads(result.stdout), result.stderr
    except json.JSONDecodeError:
        return result.exit_code, result.stdout, result.stderr


def mailbox(path: Path, n: int = 60) -> Path:
    gen.write_mbox(path, gen.generate_messages(n, seed=3))
    return path


@pytest.fixture
def loose_umask():
    """The usual umask (022): whatever is private afterwards was made private by Mailvoice itself."""
    before = os.umask(0o022)
    yield
    os.umask(before)


@contextlib.contextmanager
def read_only(path: Path):
    """Make ``path`` read-only as a read-only disk would: its mode for a user, the immutable attribute for root
    (whom modes do not stop)."""
    if os.geteuid() != 0:
        before = mode(path)
        path.chmod(before & 0o555)
        try:
            yield
        finally:
            path.chmod(before)
        return
    chattr = shutil.which("chattr")
    if not chattr or subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode:
        pytest.skip("running as root where the immutable attribute cannot be set: nothing is read-only")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


# --- whose folder ------------------------------------------------------------------------------------------


def test_a_folder_of_someone_elses_files_is_refused_not_adopted(tmp_path, monkeypatch):
    folder = tmp_path / "Documents"
    folder.mkdir()
    folder.chmod(0o755)
    (folder / "taxes.txt").write_text("2024 return")
    mbox = mailbox(folder / "archive.mbox")
    code, _, err = run("import", str(mbox), "--data-dir", str(folder))
    assert code == 1 and "already holds files that are not Mailvoice's (archive.mbox, taxes.txt)" in err
    assert f"e.g. {folder / 'mailvoice'}" in err and err.count("\n") == 1
    assert sorted(os.listdir(folder)) == ["archive.mbox", "taxes.txt"] and mode(folder) == 0o755
    monkeypatch.setenv("MAILVOICE_HOME", str(folder))
    code, _, err = run("stats")
    assert code == 1 and err.startswith(f"Error: MAILVOICE_HOME {folder} already holds files")
    code, _, err = run("forget", "--yes")
    assert code == 1 and "nothing was deleted" in err and sorted(os.listdir(folder)) == ["archive.mbox", "taxes.txt"]
    code, out, _ = run("import", str(mbox), "--data-dir", str(folder / "mailvoice"), "--json")
    assert code == 0 and out["imported"] > 50  # the folder the message suggests


def test_mailvoice_home_pointing_at_a_file_is_one_clear_line(tmp_path, monkeypatch):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    monkeypatch.setenv("MAILVOICE_HOME", str(notes))
    code, out, err = run("stats")
    assert (code, out) == (1, "")
    assert err == (
        f"Error: MAILVOICE_HOME {notes} is a file, not a folder. Give a folder for Mailvoice's data (a new or "
        "empty one). Set it with --data-dir or MAILVOICE_HOME.\n"
    )
    assert notes.read_text() == "mine"


def test_a_data_folder_from_an_older_version_keeps_working_and_is_made_private(data_home, tmp_path, loose_umask):
    """Older versions adopted any folder and left training files readable by others: both still open, and
    Mailvoice's own files are tightened once; the person's file is left as it is."""
    db = open_store(data_dir())
    imported = import_paths(db, [mailbox(tmp_path / "mail.mbox")]).imported
    os.umask(0o022)
    (data_home / "runs" / "r1" / "checkpoints").mkdir(parents=True, mode=0o755)
    (data_home / "runs" / "r1" / "data.jsonl").write_text("{}")
    (data_home / "notes.txt").write_text("mine")
    db.execute("DELETE FROM settings WHERE key = ?", [PRIVATE_MODES_KEY])
    db.conn.commit()
    assert mode(data_home / "runs" / "r1" / "data.jsonl") == 0o644
    code, out, _ = run("stats", "--json")
    assert code == 0 and out["messages"] == imported > 50
    assert [mode(data_home / p) for p in ("runs", "runs/r1", "runs/r1/checkpoints")] == [0o700] * 3
    assert mode(data_home / "runs" / "r1" / "data.jsonl") == 0o600 and mode(data_home / "notes.txt") == 0o644
    assert tighten_data_folder(data_home).tightened == []  # once done, nothing is left to do


# --- private modes --------------------------------------------------------------------------------------


def loose_entries(root: Path) -> list[str]:
    """Everything under ``root`` that group or others may read, enter or write (links excepted)."""
    found = []
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink() and mode(path) & 0o077:
            found.append(f"{path.relative_to(root)} {mode(path):o}")
    return found


def test_everything_written_under_the_data_folder_is_private_training_included(data_home, tmp_path, loose_umask):
    from test_train_registry import _register
    from test_train_worker import BASE

    root = data_dir()
    db = open_store(root)
    import_paths(db, [mailbox(tmp_path / "mail.mbox")])
    run_dir = with_fake(jobs.new_run(root, TrainConfig(), [Example("a", "", "b")], BASE, "style-x"), steps=2, delay=0)
    proc = TrainingProcess(run_dir)
    assert [e["event"] for e in proc.events()][-1] == "finished"
    _register(db, tmp_path, "style-x")  # the export of a finished run: adapters/style-x/adapter.gguf
    written = [p for p in root.rglob("*") if p.is_file()]
    assert {"data.jsonl", "worker.log", "status.json", "job.json", "adapter.gguf"} <= {p.name for p in written}
    assert loose_entries(root) == []


def test_the_training_worker_keeps_its_files_private_whoever_starts_it(data_home, loose_umask):
    from test_train_worker import BASE

    run_dir = with_fake(jobs.new_run(data_dir(), TrainConfig(), [Example("a", "", "b")], BASE, "s"), steps=2, delay=0)
    os.umask(0o022)  # a launcher that never opened the data folder
    assert [e["event"] for e in TrainingProcess(run_dir).events()][-1] == "finished"
    checkpoint = "checkpoints/step-00000002/state.json"
    assert {p: mode(run_dir / p) for p in ("status.json", checkpoint)} == {"status.json": 0o600, checkpoint: 0o600}
    assert mode(run_dir / "checkpoints") == 0o700


def test_exports_a_person_asks_for_are_private(data_home, tmp_path, loose_umask):
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"instruction": f"ask {i}", "output": f"Hi {i}"}) + "\n" for i in range(12)))
    assert run("pairs", "import", str(rows))[0] == 0
    assert run("pairs", "export", str(tmp_path / "pairs.jsonl"))[0] == 0
    assert run("export", "drafts", str(tmp_path / "drafts.csv"))[0] == 0
    assert (mode(tmp_path / "pairs.jsonl"), mode(tmp_path / "drafts.csv")) == (0o600, 0o600)


def test_every_top_level_name_mailvoice_writes_is_one_forget_deletes(data_home, tmp_path):
    from test_train_worker import BASE

    root = data_dir()
    import_paths(open_store(root), [mailbox(tmp_path / "mail.mbox")])
    jobs.new_run(root, TrainConfig(), [Example("a", "", "b")], BASE, "s")
    jobs.cache_root(root).mkdir()
    assert set(os.listdir(root)) <= OWN_ENTRIES


# --- read-only ----------------------------------------------------------------------------------------------


@pytest.fixture
def stored(data_home, tmp_path) -> dict:
    """A data folder with mail and 12 pairs, every connection to it closed."""
    mbox = mailbox(tmp_path / "mail.mbox")
    code, out, _ = run("import", str(mbox), "--me", gen.ME_ADDR, "--json")
    assert code == 0 and out["imported"] > 50
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"instruction": f"ask {i}", "output": f"Hi {i}"}) + "\n" for i in range(12)))
    assert run("pairs", "import", str(rows))[0] == 0
    gc.collect()  # the commands' connections close: SQLite removes the -wal and -shm files
    return {"mbox": mbox, "messages": out["imported"]}


def test_a_read_only_data_folder_is_read_and_said_to_be_read_only(data_home, stored, tmp_path):
    names = sorted(os.listdir(data_home))
    with read_only(data_home):
        code, out, err = run("stats", "--json")
        assert code == 0, err
        assert (out["messages"], out["pairs"]) == (stored["messages"], 12)
        for args in (["identities"], ["pairs", "list"], ["adapters"], ["export", "drafts", str(tmp_path / "d.csv")]):
            code, _, err = run(*args, "--json")
            assert code == 0, (args, err)
        code, _, err = run("import", str(stored["mbox"]))
        assert code == 1 and err.count("\n") == 1 and "Move it aside" not in err
        assert err.startswith(f"Error: The data folder {data_home} is read-only") and "--data-dir" in err
        assert sorted(os.listdir(data_home)) == names
    assert run("stats", "--json")[1]["messages"] == stored["messages"]  # writable again: as it was


def test_a_read_only_database_file_is_read_and_a_write_says_so(data_home, stored):
    db_file = data_home / "mailvoice.db"
    before = mode(db_file)
    with read_only(db_file):
        code, out, err = run("stats", "--json")
        assert code == 0 and out["messages"] == stored["messages"], err
        code, _, err = run("me", "someone@example.org")
        assert code == 1 and err.startswith(f"Error: The database {db_file} is read-only") and err.count("\n") == 1
        assert mode(db_file) == before & 0o555 or os.geteuid() == 0  # its mode was not changed behind its back
    assert run("stats", "--json")[1]["me"] != ["someone@example.org"]


def test_a_read_only_store_that_needs_updating_says_so(data_home, stored):
    db = open_store(data_dir())
    db.execute("DELETE FROM _migrations WHERE rowid = (SELECT MAX(rowid) FROM _migrations)")
    db.conn.commit()
    db.conn.close()
    with read_only(data_home):
        code, _, err = run("stats")
    assert code == 1 and "is read-only" in err and "needs to update the database first" in err


# --- exports --------------------------------------------------------------------------------------------


def test_export_drafts_to_a_full_disk_leaves_no_half_file(data_home, tmp_path, monkeypatch):
    import assistant.drafting as drafting

    out = tmp_path / "drafts.csv"
    out.write_text("instruction,generated_email\nan earlier,export\n")

    def fills_the_disk(db, path, excel=False):  # writes part of the file, then the disk is full
        Path(path).write_text("instruction,generated_email\nhalf")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(drafting, "export_drafts", fills_the_disk)
    code, _, err = run("export", "drafts", str(out))
    assert code == 1 and err.count("\n") == 1
    assert err.startswith(f"Error: The disk is full, so {out} was not written (nothing half-written was left)")
    assert out.read_text() == "instruction,generated_email\nan earlier,export\n"
    assert sorted(os.listdir(tmp_path)) == ["drafts.csv", "home"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_export_drafts_to_dev_full_is_a_clear_error():
    code, _, err = run("export", "drafts", "/dev/full")
    assert code == 1 and err.startswith("Error: The disk is full, so /dev/full was not written")
