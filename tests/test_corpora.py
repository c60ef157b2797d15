"""Every file of the shared real-mail corpora: imported or skipped with a reason, never an exception."""

from __future__ import annotations

import pytest

from assistant.importer import import_paths

pytestmark = [pytest.mark.corpora, pytest.mark.slow]


def test_every_corpus_message_is_accounted_for(db, corpora):
    report = import_paths(db, [corpora])
    assert report.seen > 10_000
    assert report.imported + report.duplicates + len(report.skipped) == report.seen
    unreadable = [s for s in report.skipped if s.reason.startswith("unreadable")]
    assert unreadable == [], unreadable[:5]
    stored = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    assert stored == report.imported
    # The three exports of maven-dev 2017-11 hold the same mail: stored once.
    maven = db.execute(
        "SELECT COUNT(*) FROM messages WHERE source_file LIKE '%maven-dev-2017-11-%'"
    ).fetchone()[0]
    assert maven <= 321
    again = import_paths(db, [corpora])
    assert again.imported == 0


# --- stored text of real list mail: no list footers, format=flowed joined ------------------------------

# Lines of list-server footer templates (Mailman 2 and 3, ezmlm, majordomo, Google and Yahoo Groups,
# groups.io), written out independently of assistant.mail.footers. Mailman 2 counts as its three lines
# together: a bare /listinfo/ link or "X mailing list" alone also occurs in people's own sentences.
_FOOTER_LINE = (
    r"(?im)^[> \t]*(?:\S.{0,80} mailing list -- \S+@\S+[ \t]*$"
    r"|To unsubscribe send an email to \S+-leave@"
    r"|\S{1,60} mailing list[ \t]*\n[> \t]*\S+@\S+[ \t]*\n[> \t]*<?https?://\S*listinfo"
    r"|To unsubscribe, e-mail: \S+-unsubscribe@"
    r"|For additional commands, e-mail: \S+-help@"
    r'|To unsubscribe from this list: send the line "unsubscribe'
    r"|You received this message because you are subscribed to the Google Groups"
    r"|To unsubscribe from this group,? (?:and stop receiving emails from it, )?send an? ?e?mail to"
    r"|Groups\.io Links:)"
)


def _records(corpora, wanted=None):
    """(file, raw message, stored record) for every message the importer would store, built its own way."""
    from assistant.importer import build_record
    from assistant.mail.sources import discover, iter_file

    files, _ = discover([corpora])
    for src in files:
        for raw in iter_file(src):
            if wanted is None or wanted.search(raw.data):
                record = build_record(raw.data, raw.truncated, src.folder)
                if isinstance(record, dict):
                    yield src, raw, record


def test_no_list_footer_line_is_stored_from_any_corpus_message(corpora):
    import re

    footer = re.compile(_FOOTER_LINE)
    footer_bytes = re.compile(_FOOTER_LINE.encode())
    with_footer = 0
    left = []
    for src, raw, record in _records(corpora):
        with_footer += footer_bytes.search(raw.data) is not None
        for column in ("body", "quoted"):
            found = footer.search(record[column])
            if found:
                left.append(f"{src.path.name}@{raw.offset} {column}: {found.group(0)!r}")
    assert with_footer > 1500  # the corpora do hold footers: Apache ezmlm, Mailman 2 and 3, Yahoo Groups
    assert left == [], left[:10]


def test_format_flowed_corpus_messages_are_stored_as_joined_paragraphs(corpora):
    import email
    import re

    soft_breaks, joined, messages = 0, [], 0
    for _, raw, record in _records(corpora, re.compile(rb'format\s*=\s*"?flowed', re.I)):
        messages += 1
        for column in ("body", "quoted"):
            assert not [line for line in record[column].split("\n") if line.endswith((" ", "\t"))]
        stored = "\n".join((record["body"], record["quoted"], record["signature"]))
        for part in email.message_from_bytes(raw.data).walk():
            content_type = str(part.get("Content-Type", "")).lower().replace('"', "").replace(" ", "")
            if part.get_content_type() != "text/plain" or "format=flowed" not in content_type:
                continue
            text = (part.get_payload(decode=True) or b"").decode(part.get_content_charset() or "utf-8", "replace")
            lines = text.replace("\r\n", "\n").replace("\u00a0", " ").replace("\u202f", " ").split("\n")
            for line, after in zip(lines, lines[1:], strict=False):
                # An unquoted soft break inside a paragraph: the two lines must be stored as one.
                if line.endswith(" ") and line != "-- " and after.strip() and after != "-- ":
                    if line.startswith(">") or after.startswith(">"):
                        continue
                    head = line[1:] if line.startswith(" ") else line
                    head = head[:-1] if "delsp=yes" in content_type else head
                    tail = (after[1:] if after.startswith(" ") else after).rstrip(" \t")
                    soft_breaks += 1
                    joined.append(head + tail in stored)
    assert messages > 500 and soft_breaks > 1000
    assert all(joined), f"{joined.count(False)} of {soft_breaks} soft line breaks not joined"
