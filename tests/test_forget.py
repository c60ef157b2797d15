"""Data at rest: forget leaves nothing behind, refuses folders that are not ours; private modes; logs hold no mail."""

from __future__ import annotations

import json
import logging
import os
import stat
from pathlib import Path

import mailgen as gen
import pytest
from click.testing import CliRunner

from assistant.cli import cli, privacy
from assistant.errors import MailvoiceError, StoreError
from assistant.forget import NotADataFolder, forget
from assistant.importer import import_paths
from assistant.paths import data_dir
from assistant.permissions import check_permissions
from assistant.store import open_store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def fill(home: Path, tmp_path: Path) -> dict:
    """A data folder as later features will leave it: the store with mail, and their folders beside it.

    The store stays open (the caller holds ``["db"]``), with its -wal and -shm files, as in a running app.
    """
    mbox = tmp_path / "mail.mbox"
    gen.write_mbox(mbox, gen.generate_messages(120, seed=4))
    db = open_store(data_dir(home))
    import_paths(db, [mbox])
    extra = {
        "adapters/voice-1/adapter.gguf": 3000,
        "adapters/voice-1/adapter_config.json": 120,
        "runs/20250101-120000/checkpoints/step-000010/adapter_model.safetensors": 5000,
        "runs/20250101-120000/data.jsonl": 900,
        "runs/20250101-120000/worker.log": 10,
        "cache/base/3f9a/model.safetensors": 7000,
        "eval/20250102-090000/report.html": 80,
        "demo/generated.mbox": 60,
    }
    for rel, size in extra.items():
        (home / rel).parent.mkdir(parents=True, exist_ok=True)
        (home / rel).write_bytes(b"x" * size)
    checkpoint = home / "runs" / "20250101-120000" / "checkpoints" / "step-000010"
    checkpoint.chmod(0o500)  # a read-only folder must still be emptied
    outside = tmp_path / "kept-by-the-user.txt"
    outside.write_text("not Mailvoice's")
    (home / "adapters" / "link.gguf").symlink_to(outside)  # the link goes, its target stays
    files = [p for p in home.rglob("*") if p.is_symlink() or p.is_file()]
    assert {p.name for p in files} >= {"mailvoice.db", "mailvoice.db-wal", "mailvoice.db-shm"}
    size = sum(p.lstat().st_size for p in files if not p.is_symlink())
    return {"files": len(files), "bytes": size, "db": db}


def test_forget_leaves_an_empty_private_folder(data_home, tmp_path):
    before = fill(data_home, tmp_path)
    assert {mode(p) for p in data_home.glob("mailvoice.db*")} == {0o600}  # the -wal and -shm too
    report = forget(data_home)
    assert list(data_home.iterdir()) == []
    assert mode(data_home) == 0o700
    assert (report.removed_files, report.removed_bytes) == (before["files"], before["bytes"])
    assert (tmp_path / "kept-by-the-user.txt").read_text() == "not Mailvoice's"
    before["db"].conn.close()  # the app's connection closing afterwards brings nothing back
    assert list(data_home.iterdir()) == []
    fresh = open_store(data_dir(data_home), check=True)
    assert fresh.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0


def test_an_empty_or_missing_folder_is_fine(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert forget(empty).removed_files == 0
    assert forget(tmp_path / "missing").removed_files == 0


def test_a_folder_that_is_not_ours_is_refused_and_left_alone(tmp_path, monkeypatch):
    someone = tmp_path / "someone"
    (someone / "Documents").mkdir(parents=True)
    (someone / ".bashrc").write_text("alias ll='ls -l'\n")
    with pytest.raises(NotADataFolder, match="does not look like a Mailvoice data folder"):
        forget(someone)
    assert (someone / ".bashrc").exists() and (someone / "Documents").is_dir()
    # Even with a database in it, a home folder (or one above it) is never emptied.
    (someone / "mailvoice.db").write_bytes(b"")
    monkeypatch.setenv("HOME", str(someone / "Documents"))
    for folder in (someone / "Documents", someone):
        with pytest.raises(NotADataFolder, match="home or system folder"):
            forget(folder)
    assert (someone / ".bashrc").exists()


def run_forget(*args: str):
    """The command through the real group once it is registered there; the command object until then."""
    if "forget" in cli.commands:
        return CliRunner().invoke(cli, ["forget", *args])
    return CliRunner().invoke(privacy.forget, list(args))


def test_cli_needs_yes_then_reports_in_json(data_home, tmp_path):
    before = fill(data_home, tmp_path)
    refused = run_forget()
    assert refused.exit_code == 1 and "mailvoice forget --yes" in refused.output
    assert (data_home / "mailvoice.db").exists()
    done = run_forget("--yes", "--json")
    assert done.exit_code == 0, done.output
    payload = json.loads(done.stdout)
    assert payload["removed_files"] == before["files"] and payload["removed_bytes"] == before["bytes"]
    assert payload["data_dir"] == str(data_home.resolve())
    assert list(data_home.iterdir()) == []


def test_cli_refuses_a_folder_that_is_not_ours(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = run_forget("--yes", "--data-dir", str(tmp_path))
    assert result.exit_code == 1 and "nothing was deleted" in result.output
    assert (tmp_path / "notes.txt").exists()


def test_permissions_are_tightened_to_0700_and_0600(data_home, tmp_path):
    data_dir(data_home)
    (data_home / "cache").mkdir(mode=0o777)
    (data_home / "cache").chmod(0o777)
    (data_home / "cache" / "a.json").write_text("{}")
    (data_home / "cache" / "a.json").chmod(0o644)
    (data_home / "run.sh").write_text("")
    (data_home / "run.sh").chmod(0o755)
    outside = tmp_path / "outside.txt"
    outside.write_text("")
    outside.chmod(0o644)
    (data_home / "cache" / "link").symlink_to(outside)
    first = check_permissions(data_home)
    assert sorted(Path(p).name for p in first.tightened) == ["a.json", "cache", "run.sh"] and not first.problems
    assert (mode(data_home / "cache"), mode(data_home / "cache" / "a.json")) == (0o700, 0o600)
    assert mode(data_home / "run.sh") == 0o700  # the owner keeps its own bits; others lose theirs
    assert mode(outside) == 0o644  # links are not followed
    assert check_permissions(data_home).tightened == []


def test_logs_never_contain_mail_text(db, tmp_path, caplog):
    mbox = tmp_path / "mail.mbox"
    gen.write_mbox(mbox, gen.generate_messages(300, seed=9, huge_bytes=200_000))
    caplog.set_level(logging.DEBUG)  # every logger, every level: the most a user could turn on
    report = import_paths(db, [mbox])
    assert report.imported > 250 and caplog.records, "the import ran and something was logged"
    snippets = mail_snippets(db)
    assert len(snippets) > 500
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert [s for s in snippets if s in logged] == []
    # The check itself would notice a leak.
    logging.getLogger("mailvoice.test").debug("parsed %s", snippets[0])
    assert snippets[0] in caplog.text


def mail_snippets(db) -> list[str]:
    """Every line of 16+ characters of stored bodies, quotes, signatures and subjects."""
    found: set[str] = set()
    for row in db.execute("SELECT body, quoted, signature, subject FROM messages"):
        for text in row:
            found.update(line.strip() for line in (text or "").splitlines() if len(line.strip()) >= 16)
    return sorted(found)


@pytest.mark.skipif(os.name == "nt", reason="POSIX modes")
def test_forget_removes_what_check_permissions_cannot_read(data_home):
    data_dir(data_home)
    (data_home / "mailvoice.db").write_bytes(b"")
    locked = data_home / "cache" / "locked"
    locked.mkdir(parents=True)
    (locked / "f").write_bytes(b"12345")
    locked.chmod(0o000)
    report = forget(data_home)
    assert (report.removed_files, report.removed_bytes, list(data_home.iterdir())) == (2, 5, [])


def test_forget_deletes_only_what_mailvoice_wrote(tmp_path):
    """A data folder an older version adopted holds the user's own files too: forget leaves them and names them."""
    folder = tmp_path / "Mail"
    db = open_store(data_dir(folder))
    mbox = folder / "archive.mbox"
    gen.write_mbox(mbox, gen.generate_messages(30, seed=2))
    (folder / "taxes.txt").write_text("2024 return")
    import_paths(db, [mbox])
    (folder / "runs" / "r1").mkdir(parents=True)
    (folder / "runs" / "r1" / "data.jsonl").write_text("{}")
    report = forget(folder)
    assert sorted(os.listdir(folder)) == ["archive.mbox", "taxes.txt"] == report.kept
    assert (folder / "taxes.txt").read_text() == "2024 return" and report.removed_files >= 2
    (folder / "mailvoice.db").write_bytes(b"")  # a store beside them once more, as an older version left it
    result = run_forget("--yes", "--data-dir", str(folder))
    assert result.exit_code == 0 and "Left alone, as Mailvoice did not write them: archive.mbox, taxes.txt" in (
        result.output
    )


def test_a_folder_mailvoice_did_not_make_keeps_its_mode(tmp_path):
    folder = tmp_path / "chosen"
    folder.mkdir()
    folder.chmod(0o750)  # the person's choice: Mailvoice's own files inside are private anyway
    open_store(data_dir(folder)).conn.close()
    assert mode(folder) == 0o750 and mode(folder / "mailvoice.db") == 0o600
    forget(folder)
    assert mode(folder) == 0o750 and list(folder.iterdir()) == []
    made = tmp_path / "made" / "by" / "mailvoice"
    data_dir(made)
    assert mode(made) == 0o700


def test_forget_refuses_while_an_import_runs_and_the_import_keeps_its_mail(db, data_home, tmp_path):
    mbox = tmp_path / "mail.mbox"
    gen.write_mbox(mbox, gen.generate_messages(200, seed=5))
    refused: list[str] = []

    def forget_while_importing(_progress) -> None:
        if not refused:
            with pytest.raises(MailvoiceError) as caught:
                forget(data_home)
            refused.append(caught.value.for_command_line())

    report = import_paths(db, [mbox], progress=forget_while_importing)
    assert refused == [
        f"An import into {data_home} is running, so nothing was deleted: it would go on storing mail. Stop it (or "
        "wait for it to finish), then forget everything again. Then run mailvoice forget --yes again."
    ]
    assert report.status == "done" and report.imported > 150
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == report.imported
    assert forget(data_home).removed_files >= 1 and list(data_home.iterdir()) == []  # once it has finished


def test_an_import_whose_store_is_deleted_under_it_says_its_mail_was_not_kept(db, data_home, tmp_path):
    mbox = tmp_path / "mail.mbox"
    gen.write_mbox(mbox, gen.generate_messages(200, seed=5))

    def delete_the_store(_progress) -> None:  # as an older forget did, or a person deleting the folder
        for path in data_home.glob("mailvoice.db*"):
            path.unlink()

    with pytest.raises(StoreError, match=r"mailvoice\.db was deleted while this import ran \(everything forgotten\?\)"):
        import_paths(db, [mbox], progress=delete_the_store)
    again = import_paths(open_store(data_dir()), [mbox])  # a fresh store, and an import into it, are fine
    assert again.status == "done" and again.imported > 150
