"""Writing generated messages to disk as an mbox, a maildir, a folder of ``.eml`` files or the CMU Enron
layout, and streaming an mbox of a given size."""

from __future__ import annotations

import gzip
import os
import re
import time
import zlib
from collections.abc import Iterable
from pathlib import Path

from mailgen.builder import generate_messages, iter_messages
from mailgen.world import _START, GeneratedMessage

_MBOXRD = re.compile(rb"^(>*From )", re.M)
_MBOXO = re.compile(rb"^From ", re.M)


def _mbox_entry(m: GeneratedMessage, i: int, gmail_labels: bool, rd: bool) -> bytes:
    raw = m.raw.replace(b"\r\n", b"\n") if b"\r" in m.raw else m.raw
    if b"From " in raw:
        raw = _MBOXRD.sub(rb">\1", raw) if rd else _MBOXO.sub(b">From ", raw)
    when = time.asctime(time.gmtime(m.timestamp or _START))
    sender = m.envelope_from if m.envelope_from and i % 9 != 4 else "-"
    head = f"From {sender} {when}\n"
    if gmail_labels:
        key = m.thread_key.encode()
        thrid = (zlib.crc32(key) << 28) | zlib.crc32(key[::-1], 7) & 0xFFFFFFF
        head += f"X-GM-THRID: {thrid}\nX-Gmail-Labels: {','.join(m.labels or (m.folder,))}\n"
    return head.encode() + raw + (b"\n" if raw.endswith(b"\n") else b"\n\n")


def write_mbox(
    path: str | os.PathLike[str],
    messages: Iterable[GeneratedMessage],
    *,
    gmail_labels: bool = True,
    style: str = "mboxrd",
) -> int:
    """Write an mbox (LF line endings, ``From `` lines escaped per ``style``); return the bytes written."""
    if style not in ("mboxrd", "mboxo"):
        raise ValueError(f"style must be 'mboxrd' or 'mboxo', not {style!r}")
    rd = style == "mboxrd"
    total = 0
    with open(path, "wb", buffering=1 << 20) as f:
        for i, m in enumerate(messages):
            chunk = _mbox_entry(m, i, gmail_labels, rd)
            f.write(chunk)
            total += len(chunk)
    return total


def write_maildir(
    root: str | os.PathLike[str], messages: Iterable[GeneratedMessage], *, layout: str = "maildir++"
) -> int:
    """Write a maildir: Inbox at ``root`` and other folders as ``.Sent`` etc. (Maildir++), or with
    ``layout="plain"`` every folder as ``root/<Folder>``. Unread mail goes to ``new/``. Returns the count."""
    root = Path(root)
    made: set[Path] = set()
    count = 0
    for i, m in enumerate(messages, 1):
        inbox = m.folder == "Inbox"
        box = root / m.folder if layout == "plain" else root if inbox else root / f".{m.folder}"
        if box not in made:
            for sub in ("cur", "new", "tmp"):
                (box / sub).mkdir(parents=True, exist_ok=True)
            made.add(box)
        ts = m.timestamp or _START
        unread = "Unread" in m.labels
        name = f"{ts}.M{i}P1.mailvoice" + ("" if unread else ":2,S")
        (box / ("new" if unread else "cur") / name).write_bytes(m.raw)
        count += 1
    if not made:
        for sub in ("cur", "new", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)
    return count


def write_eml_folder(root: str | os.PathLike[str], messages: Iterable[GeneratedMessage]) -> int:
    """One ``.eml`` file per message, in a subfolder named after its folder. Returns the count."""
    root = Path(root)
    count = 0
    for i, m in enumerate(messages, 1):
        folder = root / m.folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{i:06d}.eml").write_bytes(m.raw)
        count += 1
    return count


_ENRON_USER = "morgan-a"
_ENRON_SENT = ("sent", "_sent_mail", "sent_items")
_ENRON_FOLDERS = {"Inbox": "inbox", "Archive": "all_documents", "Drafts": "drafts"}
_FROM_HDR = re.compile(rb"^From:[ \t]*([^\r\n]*)", re.M | re.I)
_TO_HDR = re.compile(rb"^To:[ \t]*([^\r\n]*)", re.M | re.I)


def _enron_name(value: bytes) -> str:
    text = value.decode("utf-8", "replace")
    name, _, addr = text.rpartition("<")
    return (name.strip().strip('"') or addr.rstrip(">").strip()) if addr else text.strip()


def _enron_bytes(m: GeneratedMessage, folder: str) -> bytes:
    nl = b"\r\n" if b"\r\n" in m.raw[:2000] else b"\n"
    end = m.raw.find(nl + nl)
    head, body = (m.raw, b"") if end < 0 else (m.raw[:end], m.raw[end:])
    fm, to = _FROM_HDR.search(head), _TO_HDR.search(head)
    label = "'Sent Mail" if folder in _ENRON_SENT else folder.replace("_", " ").title()
    extra = [
        f"X-From: {_enron_name(fm.group(1)) if fm else ''}",
        f"X-To: {_enron_name(to.group(1)) if to else ''}",
        "X-cc: ",
        "X-bcc: ",
        f"X-Folder: \\Alex_Morgan_Dec2023\\Morgan, Alex\\{label}",
        "X-Origin: Morgan-A",
        "X-FileName: amorgan (Non-Privileged).pst",
    ]
    return head + nl + nl.join(x.encode() for x in extra) + (body or nl + nl)


def write_enron_folder(root: str | os.PathLike[str], messages: Iterable[GeneratedMessage]) -> int:
    """CMU Enron layout: ``root/morgan-a/<folder>/<n>.`` with X-Folder/X-From headers. Returns the count."""
    base = Path(root) / _ENRON_USER
    counters: dict[str, int] = {}
    count = 0
    for i, m in enumerate(messages):
        folder = _ENRON_SENT[i % 3] if m.folder == "Sent" else _ENRON_FOLDERS.get(m.folder, m.folder.lower())
        counters[folder] = counters.get(folder, 0) + 1
        (base / folder).mkdir(parents=True, exist_ok=True)
        (base / folder / f"{counters[folder]}.").write_bytes(_enron_bytes(m, folder))
        count += 1
    return count


def write_mbox_bytes_target(path: str | os.PathLike[str], target_bytes: int, seed: int = 0) -> int:
    """Stream attachment-heavy messages (like a real Takeout) into an mbox until it holds ``target_bytes``."""
    total = 0
    stream = iter_messages(1 << 62, seed, _bulk=True, _span_n=max(1000, target_bytes // 60_000))
    with open(path, "wb", buffering=1 << 22) as f:
        for i, m in enumerate(stream):
            if total >= target_bytes:
                break
            chunk = _mbox_entry(m, i, True, True)
            f.write(chunk)
            total += len(chunk)
    return total


DEMO_MESSAGES, DEMO_SEED = 1000, 7  # the mailbox ``mailvoice demo`` ships: resources/demo/alex-morgan.mbox.gz


def demo_mailbox_bytes() -> bytes:
    """The shipped demo mailbox, gzipped: the first DEMO_MESSAGES messages of seed DEMO_SEED as ``write_mbox``
    writes them, compressed at level 9 with no name and a zero time in the gzip header."""
    messages = generate_messages(DEMO_MESSAGES, seed=DEMO_SEED)
    mbox = b"".join(_mbox_entry(m, i, True, True) for i, m in enumerate(messages))
    return gzip.compress(mbox, compresslevel=9, mtime=0)


def write_demo_mailbox(path: str | os.PathLike[str]) -> int:
    """Write the demo mailbox (``demo_mailbox_bytes``) to ``path``; return the bytes written."""
    data = demo_mailbox_bytes()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_bytes(data)
    return len(data)
