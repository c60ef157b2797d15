"""Handing a draft to the user's mail app as a threaded, unsent email (.eml), opened with the platform's opener.

A ``mailto:`` link carries a recipient, a subject and a body, and loses the thread: the mail app cannot tell
which email it answers. :func:`draft_eml` writes a whole message instead (RFC 5322, with the standard
library's ``email`` package): From the user's own address, ``Re:`` subject, ``In-Reply-To`` and the full
``References`` chain of the email answered, and ``X-Unsent: 1``, which makes Outlook open it as a draft to send
(Thunderbird and Apple Mail show it as a message: "Edit as New Message" makes it one). The file is written in
the data folder, privately (:func:`save_handoff`; ``forget`` deletes it with the rest), and opened by the
platform's opener (:func:`open_in_mail_app`): ``xdg-open``, ``open``, or Windows' file associations.
Thunderbird's ``-compose`` takes no .eml, so no mail app is called by name.
"""

from __future__ import annotations

import datetime as dt
import email.policy
import email.utils
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import sqlite_utils

from assistant.drafting.prompting import PromptError, ReplyContext, reply_from_file, reply_from_store
from assistant.errors import MailvoiceError
from assistant.identities import load_me
from assistant.mail.identity import normalize_address
from assistant.mail.subjects import is_reply

# In the data folder's cache (which ``forget`` deletes and keeps private): files a mail app opens, not data.
HANDOFF_PARTS = ("cache", "handoff")
KEEP_SECONDS = 7 * 24 * 3600  # a handed-off file is removed a week later: the mail app has its own copy by then
OPEN_WAIT_SECONDS = 5.0  # xdg-open may run the app in the foreground: still running after this means it took it
MAX_REFERENCES = 20  # the first Message-ID of the thread and the newest ones (as mail apps trim a long chain)
_SYNTHESISED = "@local"  # Message-IDs the importer made up for mail that had none (``mailvoice-HASH@local``)

Opener = Callable[[Path], bool]  # opens a file with the app the system chose for it; returns whether it could
OPENER: Opener | None = None  # tests set this so that nothing is launched; None: :func:`system_open`


class HandoffError(MailvoiceError):
    """The file for the mail app could not be written."""


@dataclass
class Thread:
    """What threads a reply: the answered email's Message-ID, its References, and who it was sent to."""

    message_id: str = ""
    references: list[str] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)  # addresses of its To and Cc

    def chain(self) -> list[str]:
        """The reply's References: the answered email's own chain, then its Message-ID."""
        ids = list(dict.fromkeys(i for i in (*self.references, self.message_id) if i))
        return ids if len(ids) <= MAX_REFERENCES else [ids[0], *ids[-(MAX_REFERENCES - 1) :]]


def reply_subject(subject: str) -> str:
    """``Re: subject``, on one line; a subject that is a reply already (``Re:``, ``AW:``, ``[List] Re:``) stays."""
    subject = " ".join((subject or "").split())
    return subject if not subject or is_reply(subject) else f"Re: {subject}"


def draft_eml(
    text: str,
    *,
    to: str | None,
    subject: str | None,
    reply: ReplyContext | None,
    db: sqlite_utils.Database | None = None,
    now: dt.datetime | None = None,
) -> bytes:
    """The draft as an unsent email (bytes of an .eml file, CRLF line ends).

    Args:
        text: the email's text (UTF-8 text/plain).
        to: the recipients ("ann@example.org", "Ann <ann@example.org>, bob@example.com"); "" for none.
        subject: the subject of a new email (a reply's is ``Re:`` and the answered email's subject).
        reply: the email answered: it gives the subject and, from the store or its file, the thread.
        db: the store, for the user's own address (From) and the stored thread; without it there is no From.
        now: the Date (tests); the current time by default.
    """
    thread = answered_thread(db, reply) if reply is not None else Thread()
    sender = user_identity(db, thread.recipients) if db is not None else None
    msg = EmailMessage(policy=email.policy.SMTP)
    if sender is not None:
        msg["From"] = email.utils.formataddr(sender)
    recipients = [a for a in email.utils.getaddresses([to or ""]) if a[1]]
    if not recipients and reply is not None and reply.sender_addr:  # a reply goes back to its sender
        recipients = [(" ".join(reply.sender_name.split()), reply.sender_addr)]
    if recipients:
        msg["To"] = ", ".join(email.utils.formataddr(a) for a in recipients)
    answered = reply_subject(reply.subject) if reply is not None else ""
    title = answered or " ".join((subject or "").split())
    if title:
        msg["Subject"] = title
    msg["Date"] = email.utils.format_datetime((now or dt.datetime.now(dt.timezone.utc)).astimezone())
    domain = sender[1].rpartition("@")[2] if sender and "@" in sender[1] else "mailvoice.invalid"
    msg["Message-ID"] = email.utils.make_msgid(domain=domain)  # a domain given: no DNS lookup
    if thread.message_id:
        msg["In-Reply-To"] = f"<{thread.message_id}>"
    if thread.chain():
        msg["References"] = " ".join(f"<{i}>" for i in thread.chain())
    msg["X-Unsent"] = "1"
    body = text.replace("\r\n", "\n").replace("\r", "\n")
    body = body if body.endswith("\n") else body + "\n"
    plain = body.isascii() and max(len(line) for line in body.split("\n")) <= 78
    msg.set_content(body, charset="utf-8", cte="7bit" if plain else "quoted-printable")
    try:
        return msg.as_bytes()
    except UnicodeError:  # an address with non-ASCII before the @ needs SMTPUTF8, which mail apps read too
        return msg.as_bytes(policy=email.policy.SMTPUTF8)


def saved_draft_eml(db: sqlite_utils.Database, draft_id: int) -> bytes:
    """Saved draft ``draft_id`` as an unsent email (see :func:`draft_eml`): to its recipient (or the sender of
    the email it answers), threaded when that email is still stored or its file still there."""
    row = db.execute(
        "SELECT text, recipient, subject, context_kind, context FROM drafts WHERE id = ?", [draft_id]
    ).fetchone()
    if row is None:
        raise HandoffError(
            f"There is no saved draft #{draft_id}: each draft's number is given when it is saved.",
            cli="(mailvoice draft prints it; the Drafts page lists them)",
        )
    text, recipient, subject, kind, source = row
    return draft_eml(text or "", to=recipient, subject=subject, reply=saved_reply(db, kind, source), db=db)


def saved_reply(db: sqlite_utils.Database, kind: str | None, source: str | None) -> ReplyContext | None:
    """The email a saved draft answered (``drafts.context_kind`` / ``context``), or None when it answered none
    or is gone (deleted, forgotten, its file moved)."""
    try:
        if kind == "message" and source:
            return reply_from_store(db, source)
        if kind == "file" and source:
            return reply_from_file(source)
    except PromptError:
        return None
    return None


def answered_thread(db: sqlite_utils.Database | None, reply: ReplyContext) -> Thread:
    """The thread of the email answered: from its stored row, or from the headers of its .eml file."""
    if reply.kind == "file":
        return _file_thread(reply.source)
    if db is None:
        return Thread(_real_id(reply.source.strip().strip("<>")))
    columns = "message_id, in_reply_to, refs, to_json, cc_json"
    row = None
    if reply.row_id is not None:
        row = db.execute(f"SELECT {columns} FROM messages WHERE id = ?", [reply.row_id]).fetchone()
    if row is None:
        wanted = reply.source.strip().strip("<>")
        row = db.execute(f"SELECT {columns} FROM messages WHERE message_id = ?", [wanted]).fetchone()
    if row is None:
        return Thread(_real_id(reply.source.strip().strip("<>")))
    message_id, in_reply_to, refs, to_json, cc_json = row
    references = (refs or "").split() or ([in_reply_to] if in_reply_to else [])  # a parent without References
    people = [addr for column in (to_json, cc_json) for _name, addr in _pairs(column)]
    return Thread(_real_id(message_id or ""), [r for r in references if _real_id(r)], people)


def _file_thread(path: str) -> Thread:
    from assistant.mail.parse import parse_message
    from assistant.mail.sources import MAX_MESSAGE_BYTES
    from assistant.userfiles import open_regular, read_capped

    try:
        with open_regular(path, HandoffError, "a saved email (.eml)") as f:
            raw, _more = read_capped(f, MAX_MESSAGE_BYTES)
    except (HandoffError, OSError):
        return Thread()  # the email answered went away since: the draft is handed off unthreaded
    msg = parse_message(raw)
    references = msg.references or ([msg.in_reply_to] if msg.in_reply_to else [])
    people = [addr for _name, addr in (*msg.to, *msg.cc)]
    return Thread(msg.message_id or "", references, people)


def _real_id(message_id: str) -> str:
    return "" if message_id.endswith(_SYNTHESISED) and message_id.startswith("mailvoice-") else message_id


def _pairs(column: str | None) -> list[tuple[str, str]]:
    try:
        value = json.loads(column or "[]")
    except ValueError:
        return []
    return [(str(p[0] or ""), str(p[1] or "")) for p in value if isinstance(p, list) and len(p) == 2]


def user_identity(db: sqlite_utils.Database, answered_to: Sequence[str] = ()) -> tuple[str, str] | None:
    """The user's name and address for From: the address the answered email was sent to when it is one of
    theirs, else the one they send from most; None when their addresses are not known (the mail app fills it)."""
    mine = load_me(db)
    if not mine:
        return None
    keys = {normalize_address(a): a for a in mine}
    key = next((normalize_address(a) for a in answered_to if normalize_address(a) in keys), None)
    marks = ",".join("?" * len(keys))
    if key is None:
        row = db.execute(
            f"SELECT from_key FROM messages WHERE sent_by_me = 1 AND from_key IN ({marks}) "
            "GROUP BY from_key ORDER BY COUNT(*) DESC LIMIT 1",
            list(keys),
        ).fetchone()
        key = row[0] if row else next(iter(keys))
    named = db.execute(
        "SELECT from_name, from_addr FROM messages WHERE sent_by_me = 1 AND from_key = ? "
        "GROUP BY from_name, from_addr ORDER BY from_name = '', COUNT(*) DESC LIMIT 1",
        [key],
    ).fetchone()
    if named is None:
        return "", keys[key]
    return " ".join((named[0] or "").split()), named[1] or keys[key]


def handoff_dir(root: Path) -> Path:
    return Path(root).joinpath(*HANDOFF_PARTS)


def save_handoff(root: Path, data: bytes, draft_id: int | None = None) -> Path:
    """Write ``data`` as a new .eml file in the data folder's hand-off folder (0700, the file 0600); files
    handed off over a week ago go. Returns the file's path."""
    folder = handoff_dir(root)
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        if os.name != "nt":
            os.chmod(folder, 0o700)
        prune(folder)
        fd, name = tempfile.mkstemp(prefix=f"draft-{draft_id}-" if draft_id else "draft-", suffix=".eml",
                                    dir=folder)  # fmt: skip
        with os.fdopen(fd, "wb") as f:  # mkstemp makes it 0600
            f.write(data)
    except OSError as exc:
        raise HandoffError(
            f"Cannot write the draft for your mail app in {folder} ({exc.strerror or exc}). Free some disk "
            "space, or use Copy and paste the draft into your mail."
        ) from exc
    return Path(name)


def handoff_files(root: Path) -> list[Path]:
    """The .eml files handed off and still kept, oldest first."""
    folder = handoff_dir(root)
    if not folder.is_dir():
        return []
    return sorted(folder.glob("*.eml"), key=lambda p: (p.stat().st_mtime, p.name))


def prune(folder: Path, keep_seconds: float = KEEP_SECONDS) -> int:
    """Remove hand-off files older than ``keep_seconds``; return how many went."""
    removed, cutoff = 0, time.time() - keep_seconds
    for path in folder.glob("*.eml"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except OSError:
            continue  # open in a mail app on Windows, or gone already: next time
    return removed


def open_command(path: Path, platform: str = sys.platform) -> list[str] | None:
    """The command that opens ``path`` with its default app; None on Windows (``os.startfile`` does it)."""
    if platform == "win32":
        return None
    return ["open", str(path)] if platform == "darwin" else ["xdg-open", str(path)]


def system_open(path: Path) -> bool:
    """Open ``path`` with the app the system chose for its type; return whether one took it."""
    command = open_command(path)
    if command is None:
        os.startfile(path)  # type: ignore[attr-defined]  # noqa: S606 - Windows only: the file's own app
        return True
    try:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,  # noqa: S603
                                   stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    except OSError:  # no xdg-open (a desktop without one) or no permission to run it
        return False
    try:
        return process.wait(timeout=OPEN_WAIT_SECONDS) == 0  # xdg-open exits 3 or 4 when nothing opened it
    except subprocess.TimeoutExpired:
        return True  # the app it started runs in the foreground: it has the file


def open_in_mail_app(path: str | os.PathLike[str], runner: Opener | None = None) -> bool:
    """Open the .eml ``path`` in the user's mail app (the system's app for .eml files); return whether it could.

    Args:
        runner: opens the file (tests pass one that launches nothing); by default the module's ``OPENER`` when
            set, else :func:`system_open`.
    """
    opener = runner or OPENER or system_open
    try:
        return bool(opener(Path(path)))
    except OSError:
        return False
