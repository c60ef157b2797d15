"""The synthetic mailbox generator: deterministic, parseable, every hard case present, writers faithful."""

from __future__ import annotations

import email
import email.header
import email.utils
import mailbox
import re
from collections import Counter
from pathlib import Path

import mailgen as gen
import pytest

N = 400


@pytest.fixture(scope="module")
def messages() -> list[gen.GeneratedMessage]:
    return gen.generate_messages(N, seed=0)


def _plain_part(msg: email.message.Message) -> email.message.Message | None:
    for part in msg.walk():
        if part.get_content_type() == "text/plain" and not part.get_filename():
            return part
    return None


def _decoded_plain(raw: bytes, variant: str) -> str | None:
    part = _plain_part(email.message_from_bytes(raw))
    if part is None:
        return None
    charset = "utf-8" if variant == "mislabelled" else part.get_content_charset() or "us-ascii"
    return part.get_payload(decode=True).decode(charset).replace("\r\n", "\n")


def _date_matches(value: str, timestamp: int) -> bool:
    try:
        return abs(email.utils.parsedate_to_datetime(value).timestamp() - timestamp) < 86400
    except (TypeError, ValueError, OverflowError):
        return False


def test_same_seed_same_bytes_other_seed_other_bytes():
    a = gen.generate_messages(80, seed=5)
    b = gen.generate_messages(80, seed=5)
    c = gen.generate_messages(80, seed=6)
    assert [m.raw for m in a] == [m.raw for m in b]
    assert a == b
    assert [m.raw for m in a] != [m.raw for m in c]
    assert [m.raw for m in gen.iter_messages(80, 5)] == [m.raw for m in a]


def test_exactly_n_messages_and_basic_fields(messages):
    assert len(messages) == N
    assert len(gen.generate_messages(1)) == 1 and gen.generate_messages(0) == []
    for m in messages:
        assert m.kind in gen.KINDS and m.folder in ("Sent", "Inbox", "Archive")
        assert (m.own_text is not None) == m.sent_by_me
        assert m.message_id is None or not m.message_id.startswith("<")
        assert m.timestamp > 0 and m.labels


def test_every_message_parses_and_decodes(messages):
    """Only the deliberately broken kind has MIME defects; every leaf part decodes to bytes, every header too."""
    for m in messages:
        msg = email.message_from_bytes(m.raw)
        assert not msg.defects or m.kind == "broken", (m.kind, m.hard_case, msg.defects)
        for part in msg.walk():
            if not part.is_multipart():
                assert isinstance(part.get_payload(decode=True), bytes), (m.kind, m.hard_case)
        for name in ("Subject", "From"):
            if msg[name] is not None:
                assert all(isinstance(text, (str, bytes)) for text, _charset in email.header.decode_header(msg[name]))


def test_mix_has_every_kind_and_hard_case(messages):
    kinds = Counter(m.kind for m in messages)
    assert set(gen.KINDS) - {"huge"} <= set(kinds)
    hard = Counter(m.hard_case for m in messages if m.hard_case)
    assert set(hard) == set(gen.HARD_CASES)
    variants = {m.variant for m in messages}
    for v in (
        "newsletter",
        "notification",
        "bounce",
        "auto_reply",
        "calendar",
        "digest",
        "koi8r",
        "iso2022jp",
        "shift_jis",
        "gb2312",
        "mislabelled",
        "cp1252_qp",
        "latin1_qp",
        "utf8_emoji",
        "rfc2047_split",
        "inline_reply",
        "gmail_reply",
        "german_reply",
        "outlook_reply",
        "apple_reply",
        "thunderbird_reply",
        "bottom_post",
        "forward",
        "forward_attached",
        "list_munged_me",
    ):
        assert v in variants, v
    assert 0.28 <= sum(m.sent_by_me for m in messages) / N <= 0.45
    assert kinds["automated"] >= 20 and not any(m.sent_by_me for m in messages if m.kind == "automated")


def test_hard_cases_look_like_what_they_claim(messages):
    def first(case: str) -> email.message.Message:
        return email.message_from_bytes(next(m.raw for m in messages if m.hard_case == case))

    assert first("missing_date")["Date"] is None
    assert first("missing_from")["From"] is None
    assert first("missing_message_id")["Message-ID"] is None
    for m in messages:
        if m.hard_case == "garbage_date":
            assert not _date_matches(email.message_from_bytes(m.raw)["Date"], m.timestamp)
    assert first("bad_base64")["Content-Transfer-Encoding"] == "base64"
    assert first("uuencode")["Content-Transfer-Encoding"] == "x-uuencode"
    broken = next(m.raw for m in messages if m.hard_case == "unclosed_boundary")
    boundary = email.message_from_bytes(broken).get_boundary().encode()
    assert b"--" + boundary + b"--" not in broken
    subject_8bit = next(m.raw for m in messages if m.hard_case == "subject_8bit")
    assert re.search(rb"^Subject: [^\n]*[\x80-\xff]", subject_8bit, re.M)
    raw_8bit = next(m.raw for m in messages if m.hard_case == "raw_8bit_header")
    assert re.search(rb"^From: [^\n]*[\x80-\xff]", raw_8bit, re.M)
    assert any(
        len(line) >= 100_000 for m in messages if m.hard_case == "long_line" for line in m.raw.split(b"\n")
    )
    assert any(m.raw.endswith(b"\n\n") for m in messages if m.hard_case == "empty_body")
    assert any(re.search(rb"^From ", m.raw, re.M) for m in messages)
    assert any(re.search(rb"^>From ", m.raw, re.M) for m in messages)
    mislabelled = next(m for m in messages if m.variant == "mislabelled")
    assert b"charset=iso-8859-1" in mislabelled.raw and mislabelled.own_text.encode() in mislabelled.raw


def test_html_only_mail_has_the_usual_markup(messages):
    parsed = [email.message_from_bytes(m.raw) for m in messages if m.kind in ("html_only", "reply")]
    html = "".join(p.get_payload(decode=True).decode() for p in parsed if p.get_content_type() == "text/html")
    for tag in ("<p>", "<br>", "<ul><li>", '<a href="', "<blockquote", "<style"):
        assert tag in html, tag


def test_duplicates_share_message_id_and_bytes(messages):
    by_id: dict[str, list[gen.GeneratedMessage]] = {}
    for m in messages:
        if m.message_id:
            by_id.setdefault(m.message_id, []).append(m)
    dups = [group for group in by_id.values() if len(group) > 1]
    assert dups
    for group in dups:
        assert len({m.raw for m in group}) == 1 and len({m.folder for m in group}) == 2


def test_threads_chain_within_their_key(messages):
    ids_by_key: dict[str, set[str]] = {}
    for m in messages:
        if m.message_id:
            ids_by_key.setdefault(m.thread_key, set()).add(m.message_id)
    replies = unlinked = 0
    for m in messages:
        msg = email.message_from_bytes(m.raw)
        subject = str(email.header.make_header(email.header.decode_header(msg["Subject"] or "")))
        parent = msg["In-Reply-To"]
        if parent:
            replies += 1
            assert parent.strip("<>") in ids_by_key[m.thread_key]
            refs = (msg["References"] or "").split()
            assert not refs or refs[-1] == parent
        elif m.kind == "reply":
            unlinked += 1
            assert subject.startswith("Re: ")
    assert replies > 100 and unlinked >= 1
    dates = {}
    for m in messages:
        if m.hard_case != "duplicate":  # a copy filed later
            dates.setdefault(m.thread_key, []).append(m.timestamp)
    assert all(ts == sorted(ts) for ts in dates.values())


def test_own_text_is_in_the_decoded_plain_body(messages):
    checked = 0
    for m in messages:
        if not (m.sent_by_me and m.own_text):
            continue
        body = _decoded_plain(m.raw, m.variant)
        if body is None:  # HTML-only
            continue
        checked += 1
        if m.variant == "inline_reply":  # answers interleaved with quotes: in order
            pos = 0
            for line in filter(None, m.own_text.split("\n")):
                pos = body.index(line, pos) + len(line)
        else:
            assert m.own_text in body, (m.variant, m.own_text, body)
        assert all(line == line.rstrip() for line in m.own_text.split("\n"))
    assert checked > 80


def test_alex_voice_and_addresses(messages):
    mine = [m for m in messages if m.sent_by_me and m.own_text and m.hard_case is None]
    signoffs = Counter(m.own_text.rsplit("\n\n", 1)[-1] for m in mine)
    assert signoffs["Best,\nAlex"] and signoffs["Cheers,\nAlex"] and signoffs["Thanks!\nAlex"]
    froms = Counter(email.utils.parseaddr(email.message_from_bytes(m.raw)["From"])[1] for m in mine)
    assert froms.most_common(1)[0][0] == gen.ME_ADDR and froms[gen.ME_ALIAS] > 0
    munged = [m for m in mine if m.kind == "list_munged"]
    assert munged and all(m.folder == "Inbox" for m in munged)
    reply_to = email.message_from_bytes(munged[0].raw)["Reply-To"]
    assert gen.ME_ADDR in reply_to
    for m in messages:
        assert not re.search(rb"@(gmail|yahoo|outlook|hotmail|google|microsoft)\.com", m.raw, re.I)


@pytest.mark.parametrize("style", ["mboxrd", "mboxo"])
def test_mbox_reads_back_every_message(tmp_path, messages, style):
    path = tmp_path / "all.mbox"
    written = gen.write_mbox(path, messages, style=style)
    data = path.read_bytes()
    assert written == len(data) and b"\r\n" not in data.replace(b"=\r\n", b"")
    box = mailbox.mbox(path)
    read = list(box)
    box.close()
    assert len(read) == N
    assert sum("Sent" in (r["X-Gmail-Labels"] or "").split(",") for r in read) == sum(
        m.labels[:1] == ("Sent",) for m in messages)  # fmt: skip
    assert [r["Message-ID"] for r in read] == [
        email.message_from_bytes(m.raw.replace(b"\r\n", b"\n"))["Message-ID"] for m in messages]  # fmt: skip
    if style == "mboxrd":
        assert re.search(rb"^>>From ", data, re.M) and re.search(rb"^>From what", data, re.M)
    separators = re.findall(rb"^From (\S+) ", data, re.M)
    assert len(separators) == N and b"-" in separators


def test_mbox_without_labels(tmp_path, messages):
    path = tmp_path / "plain.mbox"
    gen.write_mbox(path, messages[:50], gmail_labels=False)
    box = mailbox.mbox(path)
    assert b"X-Gmail-Labels" not in path.read_bytes() and len(box) == 50
    box.close()
    with pytest.raises(ValueError):
        gen.write_mbox(path, [], style="mboxcl")


def test_maildir_layouts(tmp_path, messages):
    root = tmp_path / "Maildir"
    assert gen.write_maildir(root, messages) == N
    box = mailbox.Maildir(root, create=False)
    folders = box.list_folders()
    assert "Sent" in folders
    total = len(box) + sum(len(box.get_folder(f)) for f in folders)
    assert total == N
    names = [p.name for p in root.rglob("*") if p.is_file()]
    assert len(names) == N and all(re.fullmatch(r"\d+\.M\d+P1\.mailvoice(:2,S)?", n) for n in names)
    plain = tmp_path / "plain"
    gen.write_maildir(plain, messages[:40], layout="plain")
    assert sum(1 for p in plain.rglob("*") if p.is_file()) == 40
    assert (plain / "Sent" / "cur").is_dir()


def test_eml_and_enron_layouts(tmp_path, messages):
    assert gen.write_eml_folder(tmp_path / "eml", messages) == N
    emls = list((tmp_path / "eml").rglob("*.eml"))
    assert len(emls) == N and (tmp_path / "eml" / "Sent").is_dir()
    assert gen.write_enron_folder(tmp_path / "enron", messages) == N
    files = [p for p in (tmp_path / "enron").rglob("*") if p.is_file()]
    assert len(files) == N and all(re.fullmatch(r"\d+\.", p.name) for p in files)
    user = tmp_path / "enron" / "morgan-a"
    assert {"inbox", "sent", "_sent_mail"} <= {p.name for p in user.iterdir()}
    sample = email.message_from_bytes((user / "_sent_mail" / "1.").read_bytes())
    assert sample["X-Folder"].endswith("Sent Mail") and sample["X-From"]
    assert not (user / "inbox" / "1.").read_bytes().startswith(b"From ")


def test_huge_message(tmp_path):
    msgs = gen.generate_messages(6, seed=2, huge_bytes=1_500_000)
    huge = [m for m in msgs if m.kind == "huge"]
    assert len(msgs) == 6 and len(huge) == 1
    assert 1_500_000 <= len(huge[0].raw) <= 1_600_000
    email.message_from_bytes(huge[0].raw)


def test_bytes_target(tmp_path: Path):
    path = tmp_path / "big.mbox"
    written = gen.write_mbox_bytes_target(path, 3_000_000, seed=1)
    assert written == path.stat().st_size and 3_000_000 <= written < 3_000_000 + 8_000_000
    box = mailbox.mbox(path)
    assert len(box) > 10
    box.close()
