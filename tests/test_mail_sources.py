"""Finding and splitting mail files: mbox variants, maildirs, .eml, .emlx, and files that are not mail."""

from __future__ import annotations

import mailbox
import os
from pathlib import Path

import pytest

from assistant.mail import sources
from assistant.mail.sources import discover, folder_for, iter_file, iter_mbox, path_text, sniff, text_path, unreadable

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX file names, links and pipes")


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


ONE = b"From: a@example.com\nSubject: one\n\nbody one\n"


def test_unescaped_from_in_body_does_not_split(tmp_path):
    box = write(tmp_path / "mbox", (
        b"From -\nFrom: a@example.com\nSubject: film\n\nMy favourite:\n\nFrom Russia with love\nYear: 1963\n\n"
        b"From - Tue Mar  3 10:01:00 2020\nFrom: b@example.com\nSubject: two\n\nsecond\n"
    ))  # fmt: skip
    msgs = list(iter_mbox(box))
    assert len(msgs) == 2
    assert b"From Russia with love\nYear: 1963" in msgs[0].data


def test_mboxrd_escapes_are_undone(tmp_path):
    box = write(tmp_path / "m", b"From a@x Tue Mar  3 10:01:00 2020\nSubject: s\n\n>From here\n>>From there\n")
    (msg,) = iter_mbox(box)
    assert msg.data.endswith(b"\n\nFrom here\n>From there\n")


def test_content_length_keeps_an_unescaped_dated_from_line(tmp_path):
    body = b"line\nFrom bob@x Tue Mar  3 10:01:00 2020\nstill the same message\n"
    box = write(tmp_path / "cl", (
        b"From a@x Mon Mar  2 10:01:00 2020\nSubject: s\nContent-Length: " + str(len(body)).encode() + b"\n\n"
        + body + b"From c@x Wed Mar  4 10:01:00 2020\nSubject: t\n\nnext\n"
    ))  # fmt: skip
    msgs = list(iter_mbox(box))
    assert len(msgs) == 2 and b"still the same message" in msgs[0].data


def test_content_length_of_a_later_message_in_any_case_and_after_long_headers(tmp_path):
    body = b"line\nFrom bob@x Tue Mar  3 10:01:00 2020\nstill the same message\n"
    first = b"From a@x Mon Mar  2 10:01:00 2020\nSubject: s\n\nfirst\n"
    mixed = b"From b@x Mon Mar  2 11:01:00 2020\nSubject: m\ncontent-LENGTH: %d\n\n" % len(body) + body
    long_head = b"From d@x Mon Mar  2 12:01:00 2020\nX-Long: " + b"y" * 9000 + b"\nContent-Length: %d\n\n" % len(body)
    last = b"From c@x Wed Mar  4 10:01:00 2020\nSubject: t\n\nnext\n"
    msgs = list(iter_mbox(write(tmp_path / "cl", first + mixed + long_head + body + last)))
    assert len(msgs) == 4 and all(b"still the same message" in m.data for m in msgs[1:3])


def test_offsets_allow_resuming_mid_file(tmp_path):
    box = write(tmp_path / "m", b"".join(b"From x@y Tue Mar  3 10:01:00 2020\n" + ONE for _ in range(5)))
    msgs = list(iter_mbox(box))
    assert [m.offset for m in msgs[1:]] == [m.end for m in msgs[:-1]]
    assert len(list(iter_mbox(box, msgs[2].offset))) == 3


def test_separator_cut_by_chunk_edge_is_found(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "_CHUNK", 64)
    box = write(tmp_path / "m", b"".join(b"From x@y Tue Mar  3 10:01:00 2020\n" + ONE for _ in range(40)))
    reference = mailbox.mbox(box)
    assert len(list(iter_mbox(box))) == 40 == len(reference)
    reference.close()


def test_huge_message_is_read_only_up_to_the_cap(tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MAX_MESSAGE_BYTES", 1000)
    box = write(tmp_path / "m", b"From x@y Tue Mar  3 10:01:00 2020\n" + ONE + b"x" * 5000 + b"\n")
    (msg,) = iter_mbox(box)
    assert msg.truncated and len(msg.data) < 1000


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xef\xbb\xbfFrom -\nFrom: a@x\n\nhi\n", "mbox"),
        (b"\r\n\r\nFrom a@x Tue Mar  3 10:01:00 2020\r\nSubject: x\r\n\r\nhi\r\n", "mbox"),
        (b'Content-Type: multipart/mixed;\n\tboundary="b"\n\n--b--\n', "message"),
        (b"Return-Path: <a@x>\nReceived: from x\n  by y\nFrom: a@x\n\nhi\n", "message"),
        (b'123\nFrom: a@x\nSubject: s\n\nhi\n<?xml version="1.0"?>', "emlx"),
        (b"", "empty file"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "binary file, not mail"),
        (
            b"Dear diary,\nToday: nothing happened.\n",
            "not mail: no mbox separator or mail headers at the start",
        ),
    ],
)
def test_sniff_by_content(tmp_path, data, expected):
    result = sniff(write(tmp_path / "f.txt", data))
    assert (result[0] if isinstance(result, tuple) else result) == expected


def test_emlx_is_cut_at_its_byte_count(tmp_path):
    mail = b"From: a@x\nSubject: s\n\nhello\n"
    path = write(tmp_path / "1.emlx", str(len(mail)).encode() + b"\n" + mail + b"<?xml version='1.0'?><plist/>")
    files, _ = discover([path])
    (msg,) = iter_file(files[0])
    assert msg.data == mail


def test_discover_walks_maildir_and_reports_non_mail(tmp_path):
    write(tmp_path / "Mail" / ".Sent" / "cur" / "1:2,S", ONE)
    write(tmp_path / "Mail" / "cur" / "2:2,", ONE)
    write(tmp_path / "Mail" / "tmp" / "3", ONE)  # being delivered: not yet a message
    write(tmp_path / "Mail" / "dovecot.index", b"\x00\x01" * 100)
    files, skips = discover([tmp_path / "Mail"])
    assert sorted(f.folder for f in files) == ["Mail", "Sent"]
    assert [(Path(s.where).name, s.reason) for s in skips] == [("dovecot.index", "binary file, not mail")]


def test_folder_names(tmp_path):
    assert folder_for(tmp_path / "Sent Messages.mbox" / "mbox", tmp_path, "mbox") == "Sent Messages"
    assert folder_for(tmp_path / "lay-k" / "_sent" / "1.", tmp_path, "message") == "lay-k/_sent"
    assert folder_for(tmp_path / "Sent.sbd" / "Work", tmp_path, "mbox") == "Sent.sbd/Work"


def test_missing_path_is_reported(tmp_path):
    files, skips = discover([tmp_path / "nope.mbox"])
    assert files == [] and skips[0].reason == "no such file or folder"


@posix_only
def test_path_text_round_trips_names_that_are_not_utf8(tmp_path):
    plain = tmp_path / "Envoyé" / "1.eml"
    assert path_text(plain) == str(plain) and text_path(path_text(plain)) == plain
    latin1 = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9 100%.eml"))
    text = path_text(latin1)
    assert text.startswith("file:///") and text.endswith("/caf%E9%20100%25.eml")
    text.encode("utf-8")  # storable and printable
    assert text_path(text) == latin1 and os.fsencode(text_path(text)) == os.fsencode(latin1)


@posix_only
def test_folder_names_that_are_not_utf8_are_read_as_windows_1252(tmp_path):
    sent = Path(os.fsdecode(os.fsencode(tmp_path) + b"/Donn\xc3\xa9es/Envoy\xe9/cur/1:2,S"))
    assert folder_for(sent, tmp_path, "message") == "Données/Envoyé"
    box = Path(os.fsdecode(os.fsencode(tmp_path) + b"/\x81\xe9l\xe9ments.mbox"))
    assert folder_for(box, tmp_path, "mbox") == "\x81éléments"  # 0x81 is not in Windows-1252: Latin-1


@posix_only
def test_every_root_that_gives_nothing_says_why(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "dangling").symlink_to(tmp_path / "gone.mbox")
    write(tmp_path / "box" / "tmp" / "1", ONE)
    files, skips = discover([tmp_path / "empty", tmp_path / "dangling", tmp_path / "box", Path("/dev/null")])
    assert files == []
    assert [s.reason for s in skips] == [
        "empty folder: no files in it",
        f"broken link to {tmp_path / 'gone.mbox'}",
        "no files to read in it (.git, __MACOSX, tmp folders are never read)",
        "not a file or folder (a device, pipe or socket)",
    ]


@posix_only
@pytest.mark.timeout(30)  # a pipe that is opened blocks until someone writes to it
def test_broken_links_and_pipes_inside_a_folder_are_skipped_with_a_reason(tmp_path):
    write(tmp_path / "mail" / "1.eml", ONE)
    (tmp_path / "mail" / "old.mbox").symlink_to(tmp_path / "moved.mbox")
    os.mkfifo(tmp_path / "mail" / "pipe")
    files, skips = discover([tmp_path / "mail"])
    assert [f.path.name for f in files] == ["1.eml"]
    assert [(Path(s.where).name, s.reason) for s in skips] == [
        ("old.mbox", f"broken link to {tmp_path / 'moved.mbox'}"),
        ("pipe", "not a regular file (a device, pipe or socket)"),
    ]


@posix_only
def test_a_link_to_an_ancestor_is_read_once(tmp_path):
    write(tmp_path / "mail" / "a" / "1.eml", ONE)
    (tmp_path / "mail" / "a" / "up").symlink_to(tmp_path / "mail", target_is_directory=True)
    files, skips = discover([tmp_path / "mail"])
    assert [f.path.name for f in files] == ["1.eml"]
    assert [s.reason for s in skips] == [f"link to {os.path.realpath(tmp_path / 'mail')}, which is read already"]


def test_a_file_gone_before_it_is_read_says_so(tmp_path):
    assert unreadable(FileNotFoundError(2, "No such file or directory")).startswith("gone before it was read")
    assert unreadable(PermissionError(13, "Permission denied")) == "cannot read: Permission denied"
