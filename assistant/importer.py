"""Importing mail archives into the store: streaming, resumable, de-duplicated, every message accounted for.

One call of :func:`import_paths` is one *import run*. It walks the given paths, reads each mail file
message by message, separates the author's words from quotes and signatures, and writes batches of
messages in single transactions together with the file's resume point. A run killed at any moment
resumes from the last committed batch; messages already stored (same Message-ID, or same content)
are counted as duplicates, never stored twice. Every message read is either imported, a duplicate,
outside the requested dates, or skipped with a recorded reason.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.errors
import hashlib
import json
import logging
import multiprocessing
import multiprocessing.connection
import operator
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlite_utils

from assistant import netguard
from assistant.errors import MailvoiceError, NotMailError, StoreError
from assistant.identities import adopt_if_obvious, class_list_threads, load_me, own_addresses, relabel
from assistant.mail.charset import decode_header
from assistant.mail.clean import clean_body
from assistant.mail.identity import (
    automated_reason,
    has_sent_label,
    is_sent_folder,
    list_id,
    mail_class,
    normalize_address,
    real_sender,
)
from assistant.mail.parse import parse_message
from assistant.mail.sources import RawMessage, Skip, SourceFile, discover, iter_file, path_text, unreadable
from assistant.mail.threads import assign_threads
from assistant.store.db import db_file, get_setting, set_setting, store_replaced, writing
from assistant.store.fts import index_pending
from assistant.store.lockfile import FileLock
from assistant.store.recipients import index_recipients_pending

log = logging.getLogger("mailvoice.import")

BATCH = 500  # messages per transaction: small enough to lose little on a kill, big enough to be fast
# Parser processes: one per CPU this process may run on (its affinity, as under taskset, not all the machine's).
WORKERS = max(1, min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 8))
PARALLEL_MIN_BYTES = 16 * 1024 * 1024  # smaller imports finish before worker processes would start
_CHUNK_MESSAGES = 200
_CHUNK_BYTES = 4 * 1024 * 1024
_COLUMNS = (
    "message_id", "thread_id", "in_reply_to", "refs", "date", "from_name", "from_addr", "from_key",
    "to_json", "cc_json", "reply_to", "subject", "body", "quoted", "signature", "is_forward", "folder",
    "labels", "sent_by_me", "in_sent", "automated", "mail_class", "auto_reason", "list_id", "has_html", "attachments",
    "content_hash", "size", "truncated", "notes", "source_file", "source_offset", "import_run",
)  # fmt: skip
_ROW = operator.itemgetter(*_COLUMNS)
THREADS_PENDING = "threads_pending"  # set with each batch of new messages, cleared once threads are assigned
WAITING = "waiting: another import into this data folder is running"  # the progress phase while it finishes
# json.dumps(x, ensure_ascii=False) makes a new encoder at every call: four a message. The same output, one encoder.
_encode = json.JSONEncoder(ensure_ascii=False).encode


def _to_json(items: list) -> str:
    """``json.dumps(items, ensure_ascii=False)``; an empty list (most messages' Cc, labels, attachments) without
    the encoder."""
    return _encode(items) if items else "[]"


_INSERT = f"INSERT INTO messages ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


@dataclass
class ImportProgress:
    """A snapshot passed to the progress callback (plain data, safe to send across threads)."""

    bytes_done: int
    bytes_total: int
    seen: int
    imported: int
    duplicates: int
    skipped: int
    elapsed: float
    current_file: str
    phase: str = "reading"  # then "indexing for search (n of m)"

    @property
    def fraction(self) -> float:
        if not self.bytes_total:
            return 0.0 if self.phase == WAITING else 1.0
        return self.bytes_done / self.bytes_total

    @property
    def rate(self) -> float:
        """Messages per second so far."""
        return self.seen / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left, estimated from bytes per second so far."""
        if self.bytes_done <= 0 or self.elapsed < 0.5:
            return None
        return (self.bytes_total - self.bytes_done) * self.elapsed / self.bytes_done


@dataclass
class ImportReport:
    """What one run did. ``seen`` = ``imported`` + ``duplicates`` + ``outside_dates`` + len(``skipped``),
    where ``skipped`` lists both messages and whole files that are not mail, each with a reason."""

    run_id: int
    status: str  # done | cancelled
    seen: int = 0
    imported: int = 0
    duplicates: int = 0
    outside_dates: int = 0
    skipped: list[Skip] = field(default_factory=list)
    sent_by_me: int = 0
    files: int = 0
    unchanged_files: int = 0
    resumed_files: int = 0
    reread_files: int = 0  # imported before with narrower dates, read again for the rest
    me: list[str] = field(default_factory=list)
    assumed_me: bool = False
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "imported": self.imported,
            "duplicates": self.duplicates,
            "skipped": [{"where": s.where, "reason": s.reason} for s in self.skipped],
            "sent_by_me": self.sent_by_me,
            "seconds": round(self.seconds, 3),
            "outside_dates": self.outside_dates,
            "files": self.files,
            "unchanged_files": self.unchanged_files,
            "resumed_files": self.resumed_files,
            "reread_files": self.reread_files,
            "me": self.me,
            "assumed_me": self.assumed_me,
            "run_id": self.run_id,
            "status": self.status,
        }


ProgressFn = Callable[[ImportProgress], None]
CancelFn = Callable[[], bool]


def import_paths(
    db: sqlite_utils.Database,
    paths: Iterable[str | Path],
    *,
    me: Iterable[str] = (),
    since: dt.date | None = None,
    until: dt.date | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelFn | None = None,
) -> ImportReport:
    """Import mail from ``paths`` into ``db``.

    Args:
        me: the user's own addresses; they replace the stored ones when given (``--me`` wins).
        since, until: import only messages dated in this range (inclusive); undated ones are kept.
        progress: called a few times a second with an :class:`ImportProgress`.
        cancel: polled between messages; when it returns True the run stops after saving its batch.

    Raises:
        NotMailError: none of the paths holds any mail.
        MailvoiceError: ``since`` is after ``until``.

    One import at a time writes to a data folder. A second one waits for the first to finish (its progress phase
    is :data:`WAITING`, and ``cancel`` still stops it), then finds that mail stored and adds only the rest:
    waiting does what the user asked for, where refusing would make them start it again by hand.
    """
    if since and until and since > until:
        raise MailvoiceError(
            f"The first date ({since}) is after the last ({until}), so no mail would be imported. Swap the dates."
        )
    with _one_import_at_a_time(db, progress or _ignore, cancel or _never) as holding:
        if not holding:  # cancelled while waiting: nothing was read or written
            return ImportReport(run_id=0, status="cancelled")
        return _import_paths(db, paths, me=me, since=since, until=until, progress=progress, cancel=cancel)


@contextlib.contextmanager
def _one_import_at_a_time(db: sqlite_utils.Database, progress: ProgressFn, cancel: CancelFn) -> Iterator[bool]:
    """Hold the data folder's import lock for the block, waiting while another import holds it.

    Yields False when the user cancelled while waiting. The lock dies with its holder, even under kill -9.
    """
    path = db_file(db)
    if not os.path.isabs(path):  # an in-memory store belongs to this connection alone
        yield True
        return
    lock = FileLock(f"{path}.import-lock")
    try:
        if not _try_lock(lock):
            log.info("another import into %s is running; waiting for it to finish", path)
            progress(ImportProgress(0, 0, 0, 0, 0, 0, 0.0, "", phase=WAITING))
            while not _try_lock(lock):
                if cancel():
                    yield False
                    return
                time.sleep(0.25)
        yield True
    finally:
        lock.release()


def _try_lock(lock: FileLock) -> bool:
    """Take the lock if it is free. True also when no lock file can be made: above all in a read-only data folder,
    where no import can write and the first write says so clearly; failing here would hide that message."""
    try:
        return lock.try_acquire()
    except OSError as exc:
        log.warning("cannot make the import lock %s (%s); importing without it", lock.path, exc.strerror or exc)
        return True


def _ignore(_progress: ImportProgress) -> None:
    pass


def _never() -> bool:
    return False


def _import_paths(
    db: sqlite_utils.Database,
    paths: Iterable[str | Path],
    *,
    me: Iterable[str],
    since: dt.date | None,
    until: dt.date | None,
    progress: ProgressFn | None,
    cancel: CancelFn | None,
) -> ImportReport:
    """:func:`import_paths`, once this run holds the data folder's import lock."""
    paths = [Path(p) for p in paths]
    me_list = own_addresses(a for a in me if a.strip())  # before anything is written: a typo is one clear error
    run = _Run(db, paths, progress or (lambda p: None), cancel or (lambda: False))
    files, skips = discover(paths)
    run.pending_skips.extend(skips)
    run.report.seen += len(skips)  # a file that is not mail is an item read and skipped, like a message
    if not files:
        run.flush()
        run.finish("failed")
        what = ", ".join(path_text(p) for p in paths)
        reasons = "; ".join(sorted({s.reason for s in skips}))[:300] or "nothing in it could be read"
        raise NotMailError(
            f"No mail found in {what} ({reasons}). Point import at an mbox file, a maildir, or a folder of .eml files."
        )
    if me_list:
        relabel(db, me_list)
    run.me_keys = {normalize_address(a) for a in load_me(db)}
    run.window = (
        since.isoformat() if since else "",
        (until + dt.timedelta(days=1)).isoformat() if until else "",
    )
    run.total = sum(f.size for f in files)
    # Checkpoint the WAL every ~32 MB instead of every 4 MB while importing: fewer fsyncs.
    db.execute("PRAGMA wal_autocheckpoint = 8192")
    try:
        # Each batch is one transaction, so a failed write leaves the store as it was after the last one.
        with writing(db, "run the same import again: it continues where it stopped, and nothing imported so far "
                     "is lost"):  # fmt: skip
            run.run(files)
            run.flush()
            index_pending(db, run.indexing)
            index_recipients_pending(db)
    finally:
        with contextlib.suppress(sqlite3.Error):
            db.execute("PRAGMA wal_autocheckpoint = 1000")
    if run.report.imported or get_setting(db, THREADS_PENDING, False):
        # Also when this run imported nothing: a run killed after its last batch left threads to assign.
        assign_threads(db)
        class_list_threads(db)  # a thread started on a list where people reply is a discussion
        set_setting(db, THREADS_PENDING, False)
    if not load_me(db):
        run.report.assumed_me = adopt_if_obvious(db)
    run.report.me = load_me(db)
    run.report.sent_by_me = db.execute("SELECT COUNT(*) FROM messages WHERE sent_by_me = 1").fetchone()[0]
    run.finish("cancelled" if run.cancelled else "done")
    if store_replaced(db):  # the store was deleted meanwhile: everything went into a file no one will open
        raise StoreError(
            f"{db_file(db)} was deleted while this import ran (everything forgotten?), so none of the "
            f"{run.report.imported:,} messages it read were kept. Import again to store them."
        )
    return run.report


class _Run:
    """The state of one import run: counters, the pending batch, and the database bookkeeping."""

    def __init__(self, db: sqlite_utils.Database, paths: list[Path], progress: ProgressFn, cancel: CancelFn):
        self.db = db
        self.progress = progress
        self.cancel = cancel
        self.cancelled = False
        self.started = time.monotonic()
        self.last_tick = 0.0
        self.total = 0
        self.done_bytes = 0
        self.me_keys: set[str] = set()
        self.window = ("", "")  # the dates asked for: first day, day after the last ("" = open-ended)
        self.windows: dict[str, tuple[str, str]] = {}  # files read again: the dates they will count as read with
        self.pending: list[dict[str, Any]] = []
        self.pending_skips: list[Skip] = []
        self.checkpoint: tuple | None = None
        self.current = ""
        self.phase = "reading"
        self.position = 0  # where in the current file reading has got to (for progress by bytes)
        with db.conn:
            db.execute("UPDATE import_runs SET status = 'interrupted' WHERE status = 'running'")
            cur = db.execute(
                "INSERT INTO import_runs (started_at, status, paths, seen, imported, duplicates, skipped, "
                "sent_by_me, seconds) VALUES (?, 'running', ?, 0, 0, 0, 0, 0, 0)",
                [_now(), json.dumps([str(p) for p in paths])],
            )
        self.report = ImportReport(run_id=cur.lastrowid, status="running")

    # -- files -------------------------------------------------------------------------------
    def messages(self, files: list[SourceFile]) -> Iterator[tuple[SourceFile, RawMessage | Skip | None]]:
        """Every message still to import, file by file; ``None`` marks the end of a file, and a :class:`Skip` a
        file that could not be read on (what was read of it is kept; it is not marked done)."""
        for src in files:
            self.report.files += 1
            offset = self._start(src)
            if offset is None:
                continue
            self.done_bytes += offset
            try:
                for raw in iter_file(src, offset):
                    yield src, raw
            except OSError as exc:  # a live maildir moves new/ to cur/ while we read: count it and go on
                yield src, Skip(path_text(src.path), unreadable(exc))
                continue
            yield src, None

    def _start(self, src: SourceFile) -> int | None:
        """Where to start reading ``src``: 0, a resume point, or None when it is already read for these dates.

        A file read before vouches only for the dates it was read with. Asked for others, it is read again (what
        is stored already counts as a duplicate) and then remembered with both windows when they join up.
        """
        key = path_text(src.path)
        row = self.db.execute(
            "SELECT size, mtime_ns, offset, done, read_since, read_before FROM import_files WHERE path = ?", [key]
        ).fetchone()
        if not row or (row[0], row[1]) != (src.size, src.mtime_ns):
            return 0
        read = (row[4], row[5])
        if _covers(read, self.window):
            if row[3]:
                self.report.unchanged_files += 1
                self.done_bytes += src.size
                return None
            self.report.resumed_files += 1
            return row[2]
        if row[3]:
            self.report.reread_files += 1
            self.windows[key] = _join(read, self.window)
        return 0

    def run(self, files: list[SourceFile]) -> None:
        """Parse in worker processes (big imports) or in-process, and store results in file order."""
        stream = self.messages(files)
        if self.total < PARALLEL_MIN_BYTES or WORKERS < 2:
            for src, raw in stream:
                result = build_record(raw.data, raw.truncated, src.folder) if isinstance(raw, RawMessage) else None
                if not self.consume(src, raw, result):
                    return
            return
        ctx = _worker_context()
        with ProcessPoolExecutor(WORKERS, mp_context=ctx, initializer=_worker_init) as pool:
            in_flight: deque = deque()
            for chunk in _chunks_by_size(stream):
                work = [(raw.data, raw.truncated, src.folder) for src, raw in chunk if isinstance(raw, RawMessage)]
                in_flight.append((chunk, pool.submit(build_records, work)))
                if len(in_flight) > 3 * WORKERS and not self.drain(in_flight.popleft()):  # bounded memory
                    break
            while in_flight and not self.cancelled:
                if not self.drain(in_flight.popleft()):
                    break
            for _chunk, future in in_flight:
                future.cancel()

    def drain(self, item: tuple[list, Future]) -> bool:
        chunk, future = item
        results = iter(future.result())
        return all(self.consume(src, raw, next(results) if isinstance(raw, RawMessage) else None) for src, raw in chunk)

    def consume(self, src: SourceFile, raw: RawMessage | Skip | None, result: dict[str, Any] | str | None) -> bool:
        """Account for one message (or a file's end, or a file that could not be read on); False when the user
        cancelled."""
        key = self.current = path_text(src.path)
        if not isinstance(raw, RawMessage):
            self.done_bytes += max(0, src.size - self.position)
            self.position = 0
            if isinstance(raw, Skip):  # the checkpoint stays where reading stopped
                self.report.seen += 1
                self.pending_skips.append(raw)
                return True
            self.checkpoint = (key, src.size, src.mtime_ns, src.kind, src.size, 1, *self.windows.pop(key, self.window))
            self.flush()
            return True
        self.add(raw, src, result)
        self.done_bytes += raw.end - max(self.position, raw.offset if self.position == 0 else self.position)
        self.position = raw.end
        self.checkpoint = (key, src.size, src.mtime_ns, src.kind, raw.end, 0, *self.windows.get(key, self.window))
        if len(self.pending) >= BATCH:
            self.flush()
        self.tick()
        if self.cancel():
            self.cancelled = True
            self.flush()
            return False
        return True

    # -- messages ------------------------------------------------------------------------------
    def add(self, raw: RawMessage, src: SourceFile, record: dict[str, Any] | str | None) -> None:
        self.report.seen += 1
        if isinstance(record, str) or record is None:
            where = path_text(src.path) + (f" @ byte {raw.offset}" if src.kind == "mbox" else "")
            self.pending_skips.append(Skip(where, record or "not read"))
            return
        date = record["date"] or ""
        if date and ((self.window[0] and date < self.window[0]) or (self.window[1] and date >= self.window[1])):
            self.report.outside_dates += 1
            return
        key = record["from_key"]
        # A message in the user's Sent folder that lost its From header is still the user's.
        mine = key in self.me_keys or (not key and bool(record["in_sent"]) and bool(self.me_keys))
        kind = mail_class(record["auto_reason"], record["list_id"], mine)
        record.update(
            sent_by_me=int(mine),
            automated=int(kind == "automated"),
            mail_class=kind,
            size=raw.end - raw.offset,
            source_file=path_text(src.path),
            source_offset=raw.offset,
            import_run=self.report.run_id,
        )
        self.pending.append(record)

    # -- writing -------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write the pending batch, its skips and the resume point in one transaction."""
        if not (self.pending or self.pending_skips or self.checkpoint):
            return
        new, dup_updates = self._dedupe(self.pending)
        report = self.report
        with self.db.conn:
            if new:
                self.db.conn.executemany(_INSERT, [_ROW(r) for r in new])
                self.db.execute("INSERT OR REPLACE INTO settings(key, value) VALUES (?, 'true')", [THREADS_PENDING])
            if dup_updates:
                self.db.conn.executemany(
                    "UPDATE messages SET labels = ?, in_sent = max(in_sent, ?) WHERE id = ?", dup_updates
                )
            if self.pending_skips:
                self.db.conn.executemany(
                    "INSERT INTO skipped (run_id, location, reason) VALUES (?, ?, ?)",
                    [(report.run_id, s.where, s.reason) for s in self.pending_skips],
                )
            if self.checkpoint:
                self.db.execute(
                    "INSERT OR REPLACE INTO import_files (path, size, mtime_ns, kind, offset, done, read_since, "
                    "read_before, messages) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)",
                    list(self.checkpoint),
                )
            report.imported += len(new)
            report.duplicates += len(self.pending) - len(new)
            report.skipped.extend(self.pending_skips)
            self._save_counts()
        self.pending, self.pending_skips, self.checkpoint = [], [], None

    def _dedupe(self, batch: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[tuple]]:
        """Split a batch into new records and label merges for copies already stored."""
        if not batch:
            return [], []
        ids = list({r["message_id"] for r in batch})
        hashes = list({r["content_hash"] for r in batch})
        stored: dict[str, tuple[int, str, str]] = {}
        known_hashes: dict[str, tuple[int, str, str]] = {}
        for column, values, found in (("message_id", ids, stored), ("content_hash", hashes, known_hashes)):
            for chunk in _chunks(values, 500):
                marks = ",".join("?" * len(chunk))
                q = f"SELECT {column}, id, labels, folder FROM messages WHERE {column} IN ({marks})"
                found.update({key: (i, lab, fol) for key, i, lab, fol in self.db.execute(q, chunk)})
        new: list[dict[str, Any]] = []
        updates: list[tuple] = []
        for r in batch:
            hit = stored.get(r["message_id"]) or known_hashes.get(r["content_hash"])
            if hit is None:
                new.append(r)
                stored[r["message_id"]] = known_hashes[r["content_hash"]] = (-1, r["labels"], r["folder"])
                continue
            rid, old_labels, old_folder = hit
            merged = _merge_labels(old_labels, r["labels"], r["folder"] if r["folder"] != old_folder else "")
            if rid >= 0 and (merged != old_labels or r["in_sent"]):
                updates.append((merged, r["in_sent"], rid))
        return new, updates

    def _save_counts(self) -> None:
        r = self.report
        self.db.execute(
            "UPDATE import_runs SET seen = ?, imported = ?, duplicates = ?, skipped = ?, seconds = ? WHERE id = ?",
            [r.seen, r.imported, r.duplicates, len(r.skipped), time.monotonic() - self.started, r.run_id],
        )

    def indexing(self, done: int, total: int) -> None:
        self.phase = f"indexing for search ({done:,} of {total:,})"
        self.tick(force=True)

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_tick < 0.2:
            return
        self.last_tick = now
        r = self.report
        self.progress(ImportProgress(
            bytes_done=min(self.done_bytes, self.total), bytes_total=self.total, seen=r.seen,
            imported=r.imported + len(self.pending), duplicates=r.duplicates, skipped=len(r.skipped),
            elapsed=now - self.started, current_file=self.current, phase=self.phase,
        ))  # fmt: skip

    def finish(self, status: str) -> None:
        self.report.status = status
        self.report.seconds = time.monotonic() - self.started
        self.tick(force=True)
        with self.db.conn:
            self._save_counts()
            self.db.execute(
                "UPDATE import_runs SET status = ?, finished_at = ?, sent_by_me = ? WHERE id = ?",
                [status, _now(), self.report.sent_by_me, self.report.run_id],
            )


def build_record(data: bytes, truncated: bool, folder: str) -> dict[str, Any] | str:
    """Parse and clean one message into a row (without its source fields), or say why it is skipped.

    Never raises: a message must not stop an import, so any failure becomes a recorded reason. What malformed
    mail makes the parsers raise is "unreadable"; anything else is a bug in Mailvoice, and the reason and the
    log (with its traceback) say so rather than blame the message.
    """
    try:
        return _build(data, truncated, folder)
    except (ValueError, LookupError, email.errors.MessageError, RecursionError) as exc:  # bad bytes, charsets, MIME
        log.warning("unreadable message: %s", type(exc).__name__)
        return f"unreadable message ({type(exc).__name__}: {str(exc)[:120]})"
    except Exception as exc:  # noqa: BLE001 - the import goes on; the bug is recorded, not hidden
        log.error("a bug while reading a message", exc_info=exc)
        return f"not read because of a bug in Mailvoice ({type(exc).__name__}: {str(exc)[:120]}); please report it"


def build_records(items: list[tuple[bytes, bool, str]]) -> list[dict[str, Any] | str]:
    """Worker-process entry point: build a chunk of records."""
    return [build_record(*item) for item in items]


def _build(data: bytes, truncated: bool, folder: str) -> dict[str, Any] | str:
    if not data.strip():
        return "empty message"
    msg = parse_message(data)
    if not msg.headers:
        return "no mail headers"
    if not (msg.from_addr or msg.message_id or msg.date or msg.subject):
        return "no From, Date, Subject or Message-ID: not a mail message"
    name, addr = real_sender(msg.from_name, msg.from_addr, msg.reply_to)
    cleaned = clean_body(msg.text, msg.subject)
    gmail = msg.headers.get("x-gmail-labels", "")
    labels = [decode_header(x).strip() for x in gmail.split(",") if x.strip()]
    in_sent = is_sent_folder(folder) or has_sent_label(labels)
    content_hash = _content_hash(addr, msg.date, msg.subject, msg.to, cleaned.text + cleaned.quoted)
    key = normalize_address(addr) if addr else ""
    lid = list_id(msg.headers)
    auto_reason = automated_reason(msg.headers, addr, replying=bool(msg.in_reply_to or msg.references))
    notes = msg.notes + (["message larger than 8 MB: only the start was read"] if truncated else [])
    return {
        "message_id": msg.message_id or f"mailvoice-{content_hash[:32]}@local",
        "thread_id": (msg.references[:1] or [msg.in_reply_to or msg.message_id or content_hash])[0],
        "in_reply_to": msg.in_reply_to,
        "refs": " ".join(msg.references[-50:]),
        "date": msg.date,
        "from_name": name,
        "from_addr": addr,
        "from_key": key,
        "to_json": _to_json(msg.to),
        "cc_json": _to_json(msg.cc),
        "reply_to": msg.reply_to,
        "subject": msg.subject,
        "body": cleaned.text,
        "quoted": cleaned.quoted,
        "signature": cleaned.signature,
        "is_forward": int(cleaned.is_forward or msg.forwarded_attachment),
        "folder": folder,
        "labels": _to_json(labels),
        "in_sent": int(in_sent),
        "auto_reason": auto_reason,
        "list_id": lid,
        "has_html": int(msg.has_html),
        "attachments": _to_json(msg.attachments),
        "content_hash": content_hash,
        "truncated": int(truncated),
        "notes": "; ".join(notes),
    }


def _merge_labels(old: str, new: str, folder: str) -> str:
    labels = json.loads(old or "[]")
    for label in json.loads(new or "[]") + ([f"folder:{folder}"] if folder else []):
        if label not in labels:
            labels.append(label)
    return _to_json(labels)


def _content_hash(addr: str, date: str | None, subject: str, to: list, text: str) -> str:
    """A fingerprint of what a person would call 'the same email' across exports."""
    norm = " ".join(text.split())[:20000]
    key = "\x1f".join([addr, date or "", " ".join(subject.split()), ",".join(a for _, a in to), norm])
    return hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()


def _covers(read: tuple[str | None, str | None], want: tuple[str, str]) -> bool:
    """True when the dates ``want`` lie inside those a file was read with (``""``: open-ended; ``None``: not
    known, for files imported before the dates were recorded)."""
    since, before = read
    if since is None or before is None:
        return False
    return (not since or bool(want[0]) and want[0] >= since) and (not before or bool(want[1]) and want[1] <= before)


def _join(read: tuple[str | None, str | None], want: tuple[str, str]) -> tuple[str, str]:
    """The dates a file counts as read with after reading it again for ``want``: both windows when they meet
    (the file holds no gap between them), else just ``want``."""
    since, before = read
    if since is None or before is None:
        return want
    meet = (not since or not want[1] or since <= want[1]) and (not want[0] or not before or want[0] <= before)
    if not meet:
        return want
    return (min(since, want[0]) if since and want[0] else "", max(before, want[1]) if before and want[1] else "")


def _worker_init() -> None:
    """Set up a parser worker: the network guard, and an exit as soon as the import process is gone.

    A worker's parent is the fork server, not the import process, and the fork server lives while its workers
    do, so without this a ``kill -9`` of the import would leave them waiting for work forever. Each worker holds
    a sentinel of the process that asked for it; it becomes ready only when that process has exited.
    """
    netguard.install()
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), name="parent-watch", daemon=True).start()


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(1)


def _worker_context() -> multiprocessing.context.BaseContext:
    """Never plain fork (the GUI imports from a thread). A fork server imports the parser once and forks
    workers from it, so they share that memory; where there is none (Windows), spawn."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["assistant.importer"])
        return ctx
    return multiprocessing.get_context("spawn")


def _chunks_by_size(stream: Iterable[tuple]) -> Iterator[list[tuple]]:
    """Group (source, raw) pairs into chunks bounded in count and bytes, so memory stays flat."""
    chunk: list[tuple] = []
    size = 0
    for item in stream:
        chunk.append(item)
        size += len(item[1].data) if isinstance(item[1], RawMessage) else 0
        if len(chunk) >= _CHUNK_MESSAGES or size >= _CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _chunks(items: list, n: int) -> Iterable[list]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
