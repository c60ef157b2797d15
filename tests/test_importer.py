"""Importing generated mailboxes: every message accounted for, no duplicates, resumable, the user's words."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import mailgen as gen
import pytest

from assistant.errors import NotMailError
from assistant.identities import load_me, propose
from assistant.importer import import_paths


@pytest.fixture(scope="module")
def messages():
    return gen.generate_messages(400, seed=7)


@pytest.fixture
def mbox(tmp_path, messages):
    path = tmp_path / "takeout" / "All mail Including Spam and Trash.mbox"
    path.parent.mkdir()
    gen.write_mbox(path, messages)
    return path


def unique_ids(messages):
    return {m.message_id for m in messages if m.message_id}


def test_every_message_is_accounted_for(db, mbox, messages):
    report = import_paths(db, [mbox])
    assert report.seen == len(messages)
    assert report.imported + report.duplicates + len(report.skipped) == report.seen
    stored = {r[0] for r in db.execute("SELECT message_id FROM messages")}
    assert unique_ids(messages) <= stored
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == report.imported
    runs = db.execute("SELECT status, seen, imported FROM import_runs").fetchall()
    assert runs == [("done", report.seen, report.imported)]


def test_importing_twice_adds_nothing(db, mbox, tmp_path):
    first = import_paths(db, [mbox])
    again = import_paths(db, [mbox])
    assert (again.imported, again.unchanged_files) == (0, 1)
    copy = tmp_path / "copy.mbox"  # the same month exported twice
    shutil.copy(mbox, copy)
    third = import_paths(db, [copy])
    assert third.imported == 0 and third.duplicates == first.imported + first.duplicates
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == first.imported


def test_owner_is_found_from_the_sent_label(db, mbox, messages):
    report = import_paths(db, [mbox])
    assert report.assumed_me and load_me(db) == ["alex.morgan@example.org"]
    top = propose(db)[0]
    assert top["address"] == "alex.morgan@example.org" and top["chosen"]


def test_me_wins_and_covers_aliases_and_list_munged_posts(db, mbox, messages):
    import_paths(db, [mbox], me=["alex.morgan@example.org", "alex@morgan.example"])
    expected = {m.message_id for m in messages if m.sent_by_me and m.message_id}
    sent = {r[0] for r in db.execute("SELECT message_id FROM messages WHERE sent_by_me = 1")}
    assert expected <= sent
    munged = [m.message_id for m in messages if m.kind == "list_munged" and m.sent_by_me]
    assert munged and set(munged) <= sent
    flagged = db.execute("SELECT COUNT(*) FROM messages WHERE sent_by_me = 1 AND automated = 1").fetchone()[0]
    assert flagged == 0


def test_automated_mail_is_flagged(db, mbox, messages):
    import_paths(db, [mbox])
    auto = [m.message_id for m in messages if m.kind == "automated" and m.message_id]
    assert auto
    rows = dict(db.execute(
        f"SELECT message_id, automated FROM messages WHERE message_id IN ({','.join('?' * len(auto))})", auto
    ).fetchall())  # fmt: skip
    assert set(rows.values()) == {1}


def test_own_words_are_separated_from_quotes_and_signatures(db, mbox, messages):
    import_paths(db, [mbox])
    bodies = dict(db.execute("SELECT message_id, body FROM messages WHERE sent_by_me = 1").fetchall())
    checked = [m for m in messages if m.own_text and m.message_id in bodies]
    exact = sum(bodies[m.message_id].strip() == m.own_text.strip() for m in checked)
    assert len(checked) > 50
    assert exact / len(checked) >= 0.9, f"only {exact}/{len(checked)} sent bodies cleaned exactly"


def test_threads_follow_references_and_subjects(db, mbox, messages):
    import_paths(db, [mbox])
    thread_of = dict(db.execute("SELECT message_id, thread_id FROM messages").fetchall())
    by_key: dict[str, set[str]] = {}
    for m in messages:
        if m.message_id in thread_of and m.kind not in ("automated",):
            by_key.setdefault(m.thread_key, set()).add(thread_of[m.message_id])
    split = [k for k, threads in by_key.items() if len(threads) > 1]
    assert len(split) <= len(by_key) * 0.02, f"{len(split)} conversations split over several threads"


def test_cancel_then_resume_ends_like_an_uninterrupted_run(tmp_path, mbox):
    from assistant.store import open_store

    reference = open_store(tmp_path / "ref")
    import_paths(reference, [mbox])
    db = open_store(tmp_path / "resumed")
    calls = {"n": 0}

    def cancel_after_150() -> bool:
        calls["n"] += 1
        return calls["n"] >= 150

    first = import_paths(db, [mbox], cancel=cancel_after_150)
    assert first.status == "cancelled" and first.seen == 150
    second = import_paths(db, [mbox])
    assert second.resumed_files == 1 and second.seen == 400 - 150

    def snapshot(d):
        return sorted(d.execute("SELECT message_id, body, sent_by_me, thread_id FROM messages").fetchall())

    assert snapshot(db) == snapshot(reference)


def test_maildir_eml_and_enron_layouts(db, tmp_path, messages):
    gen.write_maildir(tmp_path / "Maildir", messages[:100])
    gen.write_eml_folder(tmp_path / "eml", messages[100:200])
    gen.write_enron_folder(tmp_path / "enron", messages[200:300])
    report = import_paths(db, [tmp_path / "Maildir", tmp_path / "eml", tmp_path / "enron"])
    assert report.seen == 300
    assert report.imported + report.duplicates + len(report.skipped) == 300
    folders = {r[0] for r in db.execute("SELECT DISTINCT folder FROM messages WHERE in_sent = 1")}
    assert folders, "Sent folders of every layout are recognised"


def test_date_filter(db, mbox, messages):
    report = import_paths(db, [mbox], since=dt.date(2100, 1, 1))
    dated = db.execute("SELECT COUNT(*) FROM messages WHERE date IS NOT NULL").fetchone()[0]
    assert dated == 0 and report.outside_dates > 0


def test_folder_without_mail_is_a_clear_error(db, tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("buy milk\n")
    with pytest.raises(NotMailError, match="No mail found"):
        import_paths(db, [tmp_path / "notes"])
    skipped = db.execute("SELECT location, reason FROM skipped").fetchall()
    assert len(skipped) == 1 and skipped[0][1].startswith("not mail")


def test_hard_cases_are_imported_or_skipped_with_a_reason(db, tmp_path):
    messages = gen.generate_messages(200, seed=3, huge_bytes=3_000_000)
    path = tmp_path / "hard.mbox"
    gen.write_mbox(path, messages)
    report = import_paths(db, [path])
    assert report.seen == len(messages)
    assert all(s.reason for s in report.skipped)
    notes = [r[0] for r in db.execute("SELECT notes FROM messages WHERE notes != ''")]
    assert notes, "repairs (charsets, dates) are recorded"
    sizes = [r[0] for r in db.execute("SELECT size FROM messages ORDER BY size DESC LIMIT 1")]
    assert sizes[0] >= 3_000_000


def test_progress_reports_bytes_rate_and_eta(db, mbox):
    seen = []
    import_paths(db, [mbox], progress=seen.append)
    assert seen and seen[-1].bytes_done == seen[-1].bytes_total == mbox.stat().st_size
    assert seen[-1].seen == 400
    assert json.dumps(import_paths(db, [mbox]).to_json())


def test_a_full_disk_is_a_clear_error_and_the_store_stays_consistent(db, mbox, tmp_path, monkeypatch):
    from assistant import importer
    from assistant.errors import StoreError
    from assistant.store import open_store

    monkeypatch.setattr(importer, "BATCH", 50)
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages + 60}")  # room for a few batches, then "disk full"
    with pytest.raises(StoreError, match="is full. Free some space"):
        import_paths(db, [mbox])
    assert db.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    partial = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    assert 0 < partial < 400
    db.execute("PRAGMA max_page_count = 1073741823")
    report = import_paths(db, [mbox])
    assert report.resumed_files == 1
    reference = open_store(tmp_path / "reference")
    import_paths(reference, [mbox])
    query = "SELECT message_id, body, thread_id FROM messages ORDER BY message_id"
    assert db.execute(query).fetchall() == reference.execute(query).fetchall()


def middle_date(messages) -> dt.date:
    stamps = sorted(m.timestamp for m in messages if m.timestamp)
    return dt.datetime.fromtimestamp(stamps[len(stamps) // 2], dt.UTC).date()


def stored_count(db) -> int:
    return db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]


@pytest.fixture
def full_count(tmp_path, mbox):
    from assistant.store import open_store

    return import_paths(open_store(tmp_path / "reference"), [mbox]).imported


def test_a_file_read_with_since_is_read_again_for_wider_dates(db, mbox, messages, full_count):
    first = import_paths(db, [mbox], since=middle_date(messages))
    assert 0 < first.imported < full_count and first.outside_dates > 0
    wider = import_paths(db, [mbox])
    assert (wider.reread_files, wider.unchanged_files) == (1, 0)
    assert wider.imported == full_count - first.imported and stored_count(db) == full_count
    assert wider.seen == len(messages) and wider.outside_dates == 0
    again = import_paths(db, [mbox])
    assert (again.unchanged_files, again.seen, again.imported) == (1, 0, 0)


def test_narrower_dates_after_a_full_import_read_nothing_again(db, mbox, messages):
    import_paths(db, [mbox])
    narrower = import_paths(db, [mbox], since=dt.date(2000, 1, 1), until=middle_date(messages))
    assert (narrower.unchanged_files, narrower.reread_files, narrower.seen) == (1, 0, 0)


def test_windows_that_meet_join_up_and_a_gap_is_read_again(db, mbox, messages, full_count):
    middle = middle_date(messages)
    import_paths(db, [mbox], since=middle)
    until_day_before = import_paths(db, [mbox], until=middle - dt.timedelta(days=1))
    assert until_day_before.reread_files == 1 and stored_count(db) == full_count
    joined = import_paths(db, [mbox])
    assert (joined.unchanged_files, joined.seen) == (1, 0)


def test_dates_with_a_gap_between_them_leave_the_gap_to_read(tmp_path, mbox, messages, full_count):
    from assistant.store import open_store

    db = open_store(tmp_path / "gap")
    middle = middle_date(messages)
    import_paths(db, [mbox], since=middle)
    import_paths(db, [mbox], until=middle - dt.timedelta(days=60))
    missing = full_count - stored_count(db)
    assert missing > 0, "the generated mail should have some dated in the gap"
    last = import_paths(db, [mbox])
    assert last.reread_files == 1 and last.imported == missing


def test_files_imported_before_dates_were_recorded_are_read_once_more(db, mbox, messages, full_count):
    first = import_paths(db, [mbox], since=middle_date(messages))
    with db.conn:  # as a store imported before the dates were kept
        db.execute("UPDATE import_files SET read_since = NULL, read_before = NULL")
    second = import_paths(db, [mbox])
    assert second.reread_files == 1 and second.imported == full_count - first.imported
    assert import_paths(db, [mbox]).unchanged_files == 1


def test_since_after_until_is_refused_before_anything_is_read(db, mbox):
    from assistant.errors import MailvoiceError

    with pytest.raises(MailvoiceError, match=r"first date \(2021-01-01\) is after the last \(2020-01-01\)"):
        import_paths(db, [mbox], since=dt.date(2021, 1, 1), until=dt.date(2020, 1, 1))
    assert db.execute("SELECT COUNT(*) FROM import_runs").fetchone()[0] == 0


def test_cli_since_after_until_is_bad_usage(mbox):
    from click.testing import CliRunner

    from assistant.cli import cli

    result = CliRunner().invoke(cli, ["import", str(mbox), "--since", "2021-01-01", "--until", "2020-01-01"])
    assert result.exit_code == 2
    assert "--since 2021-01-01 is after --until 2020-01-01" in result.output and "Traceback" not in result.output


def test_list_discussion_is_conversation_and_newsletters_stay_automated(db, mbox, messages):
    import_paths(db, [mbox], me=["alex.morgan@example.org", "alex@morgan.example"])
    kinds = dict(db.execute("SELECT message_id, mail_class FROM messages").fetchall())
    theirs = [m.message_id for m in messages if m.kind in ("list", "list_munged") and not m.sent_by_me]
    digests = [m.message_id for m in messages if m.variant == "digest"]  # sent by the list software
    assert digests and {kinds[mid] for mid in digests} == {"automated"}
    assert {kinds[mid] for mid in theirs if mid in kinds and mid not in digests} == {"list"}
    assert {kinds[m.message_id] for m in messages if m.kind == "automated" and m.message_id} == {"automated"}
    own = [m.message_id for m in messages if m.kind in ("list", "list_munged") and m.sent_by_me]
    assert own and {kinds[mid] for mid in own} == {"yours"}
    mismatched = "SELECT COUNT(*) FROM messages WHERE automated IS NOT (mail_class = 'automated') OR mail_class = ''"
    assert db.execute(mismatched).fetchone()[0] == 0


@pytest.mark.parametrize("bad", ["@", "not an address"])
def test_an_address_that_is_not_one_is_refused_before_the_import_starts(db, mbox, bad):
    from assistant.errors import MailvoiceError

    with pytest.raises(MailvoiceError, match="is not an email address"):
        import_paths(db, [mbox], me=[bad])
    assert db.execute("SELECT COUNT(*) FROM import_runs").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
    report = import_paths(db, [mbox], me=[f"Alex Morgan <{gen.ME_ADDR}>"])
    assert report.me == [gen.ME_ADDR] and report.sent_by_me > 0
