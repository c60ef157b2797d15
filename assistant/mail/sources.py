"""Finding mail on disk and reading it message by message, in constant memory.

A path may be an mbox file, a maildir, a single message file, or a folder walked recursively. Files
are recognised by content, never by name: an mbox starts with a ``From `` line, a message file with
header lines, an Apple Mail ``.emlx`` with a byte count. Everything else is reported as skipped.
Links to folders are followed, each folder read once (a link back to an ancestor does not loop).

mbox reading scans large chunks for separator lines instead of reading line by line, and accepts as a
separator only a ``From `` line that carries a date or is followed by a header line, so an unescaped
"From Russia with love" in a body (mboxo, Thunderbird) does not split a message. ``Content-Length``
(mboxcl, Netscape/Solaris) is honoured when it lands on a separator.
"""

from __future__ import annotations

import os
import re
import stat
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # larger messages are read up to this size (attachments are the rest)
_CHUNK = 4 * 1024 * 1024
_SNIFF = 8192
_BOM = b"\xef\xbb\xbf"
_HEADER_LINE = re.compile(rb"[!-9;-~]{1,76}:")
_MAIL_HEADERS = re.compile(
    rb"^(?:from|to|cc|subject|date|message-id|received|return-path|mime-version|delivered-to|"
    rb"reply-to|sender|in-reply-to|references|x-[!-9;-~]+|content-type|envelope-to|status):",
    re.I | re.M,
)
_CANDIDATE = re.compile(rb"\nFrom ")
_FROM_DATED = re.compile(rb"From \S+.*?(?:\d\d?:\d\d.*?\b(?:19|20)\d\d\b|\b(?:19|20)\d\d\b.*?\d\d?:\d\d)")
_FROM_TOKEN = re.compile(rb"From \S+\s*$")
_CONTENT_LENGTH = re.compile(rb"^Content-Length:[ \t]*(\d{1,12})[ \t]*\r?$", re.I | re.M)
_ESCAPED_FROM = re.compile(rb"^>(>*From )", re.M)
_IGNORED_DIRS = {"tmp", ".git", "__MACOSX"}


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: Path
    kind: str  # "mbox" | "message" | "emlx"
    size: int
    mtime_ns: int
    folder: str  # the mail folder this file stands for ("Sent", "lay-k/_sent", ...)
    start: int = 0  # where the mail begins (after a byte-order mark or leading blank lines)


@dataclass(frozen=True, slots=True)
class RawMessage:
    data: bytes
    offset: int  # where the message starts in its file (the separator line for mbox)
    end: int  # where the next one starts: the resume point
    truncated: bool


@dataclass(frozen=True, slots=True)
class Skip:
    where: str
    reason: str


def sniff(path: Path) -> tuple[str, int] | str:
    """Return (kind, start offset) for a mail file, or a reason string why it is not mail."""
    try:
        with open(path, "rb") as f:
            head = f.read(_SNIFF)
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if not head:
        return "empty file"
    start = len(_BOM) if head.startswith(_BOM) else 0
    stripped = head[start:].lstrip(b"\r\n \t")
    start += len(head) - start - len(stripped)
    if stripped.startswith(b"From "):
        return "mbox", start
    first, _, rest = stripped.partition(b"\n")
    if first.strip().isdigit() and _looks_like_headers(rest):
        return "emlx", start
    if _looks_like_headers(stripped):
        return "message", start
    if head.count(b"\x00") > 16:
        return "binary file, not mail"
    return "not mail: no mbox separator or mail headers at the start"


def _looks_like_headers(data: bytes) -> bool:
    """True when ``data`` opens with a block of header lines that includes a mail header."""
    lines = data.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].split(b"\n")[:40]
    if not lines or not _HEADER_LINE.match(lines[0]):
        return False
    for line in lines:
        if not (_HEADER_LINE.match(line) or line[:1] in (b" ", b"\t")):
            return False
    return any(_MAIL_HEADERS.match(line) for line in lines)


def discover(paths: list[Path]) -> tuple[list[SourceFile], list[Skip]]:
    """Walk ``paths`` (sorted, deterministic) and classify every file found; say why for everything else."""
    files: list[SourceFile] = []
    skips: list[Skip] = []
    for root in paths:
        root = Path(root).expanduser()
        found = len(files) + len(skips)
        if root.is_file():
            _classify(root, root.parent, files, skips, single=True)
        elif root.is_dir():
            ignored = _walk(root, files, skips)
            if len(files) + len(skips) == found:
                skips.append(Skip(path_text(root), _empty_reason(ignored)))
        elif root.exists():
            skips.append(Skip(path_text(root), "not a file or folder (a device, pipe or socket)"))
        elif root.is_symlink():
            skips.append(Skip(path_text(root), f"broken link to {os.readlink(root)}"))
        else:
            skips.append(Skip(path_text(root), "no such file or folder"))
    return files, skips


def _walk(root: Path, files: list[SourceFile], skips: list[Skip]) -> int:
    """Classify every file under folder ``root``, following links to folders but reading each folder once.

    Returns how many folders were left out on purpose (``tmp``, ``.git``...), to explain an empty result.
    """
    seen = {_folder_key(root)}
    ignored = 0

    def cannot_list(exc: OSError) -> None:
        skips.append(Skip(path_text(Path(exc.filename or root)), f"cannot read folder: {exc.strerror or exc}"))

    for dirpath, dirnames, filenames in os.walk(root, onerror=cannot_list, followlinks=True):
        here = Path(dirpath)
        kept = []
        # Real folders claim their place before links, so a link to a sibling is the copy left out.
        for d in sorted(dirnames, key=lambda d: (os.path.islink(here / d), d)):
            if d in _IGNORED_DIRS:
                ignored += 1
                continue
            key = _folder_key(here / d)
            if key in seen:
                target = os.path.realpath(here / d)
                skips.append(Skip(path_text(here / d), f"link to {path_text(Path(target))}, which is read already"))
                continue
            seen.add(key)
            kept.append(d)
        dirnames[:] = sorted(kept)
        for name in sorted(filenames):
            _classify(here / name, root, files, skips, single=False)
    return ignored


def _folder_key(path: Path) -> tuple[int, int] | str:
    try:
        st = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return st.st_dev, st.st_ino


def _empty_reason(ignored: int) -> str:
    if ignored:
        return f"no files to read in it ({', '.join(sorted(_IGNORED_DIRS))} folders are never read)"
    return "empty folder: no files in it"


def _classify(path: Path, root: Path, files: list[SourceFile], skips: list[Skip], single: bool) -> None:
    try:
        st = path.stat()
    except OSError as exc:
        broken = path.is_symlink() and isinstance(exc, FileNotFoundError)
        skips.append(Skip(path_text(path), f"broken link to {os.readlink(path)}" if broken else unreadable(exc)))
        return
    if not stat.S_ISREG(st.st_mode):  # a pipe would block the import forever on its first read
        skips.append(Skip(path_text(path), "not a regular file (a device, pipe or socket)"))
        return
    result = sniff(path)
    if isinstance(result, str):
        skips.append(Skip(path_text(path), result))
        return
    kind, start = result
    files.append(SourceFile(path, kind, st.st_size, st.st_mtime_ns, folder_for(path, root, kind), start))


def unreadable(exc: OSError) -> str:
    """The skip reason for a file that could not be read (it may have gone since it was found)."""
    if isinstance(exc, FileNotFoundError):
        return "gone before it was read (moved or deleted by another program; import again to read it where it is now)"
    return f"cannot read: {exc.strerror or exc}"


def path_text(path: Path) -> str:
    """The text naming ``path`` in the store and in reports; :func:`text_path` turns it back into the path.

    A name that is not valid UTF-8 (a file made on another system) cannot be stored or printed as it is, so it
    becomes a file URI with its bytes percent-escaped (``file:///home/me/caf%E9.eml``). ``str(Path)`` never
    contains ``//`` after its start, so the two forms cannot be confused.
    """
    text = str(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "file://" + urllib.parse.quote(os.fsencode(os.path.abspath(text)), safe="/")
    return text


def text_path(text: str) -> Path:
    """The path that :func:`path_text` named."""
    if text.startswith("file://"):
        return Path(os.fsdecode(urllib.parse.unquote_to_bytes(text[len("file://") :])))
    return Path(text)


def folder_for(path: Path, root: Path, kind: str) -> str:
    """Name the mail folder a file belongs to, from its place under the imported root."""
    if kind == "mbox":
        parts = list(path.relative_to(root).parts) if path != root else [path.name]
        if parts[-1] == "mbox" and len(parts) > 1:  # Apple Mail: "Sent Messages.mbox/mbox"
            parts = parts[:-1]
        if not parts:
            parts = [path.name]
        parts[-1] = re.sub(r"\.(mbox|mbx|sbd)$", "", parts[-1], flags=re.I)
        return _readable("/".join(p for p in parts if p))
    parent = path.parent
    if parent.name in ("cur", "new"):
        parent = parent.parent
    try:
        rel = parent.relative_to(root)
    except ValueError:
        rel = Path(parent.name)
    parts = [p.lstrip(".") if p.startswith(".") else p for p in rel.parts]  # Maildir++ ".Sent"
    if not parts and parent == root:
        parts = [root.name]
    return _readable("/".join(parts)) or "Inbox"


def _readable(name: str) -> str:
    """A folder name as text: a part that is not UTF-8 is read as Windows-1252, else Latin-1 ("Envoyé")."""
    try:
        name.encode("utf-8")
        return name
    except UnicodeEncodeError:
        return "/".join(_readable_part(os.fsencode(part)) for part in name.split("/"))


def _readable_part(raw: bytes) -> str:
    for charset in ("utf-8", "cp1252"):
        try:
            return raw.decode(charset)
        except UnicodeDecodeError:
            continue
    return raw.decode("latin-1")


def iter_file(src: SourceFile, offset: int = 0) -> Iterator[RawMessage]:
    """Yield the messages of one source file, starting at ``offset`` (a previous resume point)."""
    if src.kind == "mbox":
        yield from iter_mbox(src.path, max(offset, src.start))
        return
    if offset >= src.size and offset > 0:
        return
    with open(src.path, "rb") as f:
        f.seek(src.start)
        data = f.read(MAX_MESSAGE_BYTES + 1)
    if src.kind == "emlx":
        count, _, data = data.partition(b"\n")
        data = data[: int(count.strip() or 0)] or data
    truncated = len(data) > MAX_MESSAGE_BYTES
    yield RawMessage(data[:MAX_MESSAGE_BYTES], src.start, src.size, truncated)


def iter_mbox(path: Path, start: int = 0) -> Iterator[RawMessage]:
    """Yield each message of an mbox from ``start`` (which must be at a ``From `` line)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        begin = start
        for sep in _separators(fd, start, size):
            if sep > begin:
                yield _read_message(fd, begin, sep)
            begin = sep
        if begin < size:
            yield _read_message(fd, begin, size)
    finally:
        os.close(fd)


def _separators(fd: int, start: int, size: int) -> Iterator[int]:
    """Offsets of the separator lines after ``start`` (the one at ``start`` itself is implied)."""
    base = start
    # candidates before skip_until are inside a message (or already examined)
    skip_until = _content_length_end(fd, start, size) or start + 1
    while base < size:
        buf = os.pread(fd, _CHUNK + 4096, base)  # 4 KiB overlap: a candidate's two lines fit
        last = base + len(buf) >= size
        limit = len(buf) if last else _CHUNK
        for m in _CANDIDATE.finditer(buf, 0, limit):
            at = base + m.start() + 1
            if at < skip_until:
                continue
            skip_until = at + 1
            line_end = buf.find(b"\n", m.start() + 1)
            line = buf[m.start() + 1 : line_end if line_end >= 0 else len(buf)].rstrip(b"\r")
            after = buf[line_end + 1 : line_end + 80] if line_end >= 0 else b""
            if _FROM_DATED.match(line) or (_FROM_TOKEN.match(line) and _HEADER_LINE.match(after)):
                yield at
                skip_until = at + 1
                headers_end = buf.find(b"\n\n", m.start() + 1)
                if _declares_length(buf, m.start() + 1, headers_end if headers_end > 0 else len(buf)):
                    skip_until = _content_length_end(fd, at, size) or skip_until
        if last:
            return
        base += limit - 6  # overlap so a "\nFrom " cut by the chunk edge is still found


def _declares_length(buf: bytes, start: int, end: int) -> bool:
    """Whether the headers in ``buf[start:end]`` hold a Content-Length line. The case-blind pattern is tried at
    every line start, a few µs a message; the lower-cased text without the name (nearly all mail) needs no try."""
    if end - start <= _SNIFF and b"content-length:" not in buf[start:end].lower():
        return False
    return _CONTENT_LENGTH.search(buf, start, end) is not None


def _content_length_end(fd: int, at: int, size: int) -> int | None:
    """If the message at ``at`` declares a Content-Length that lands on a separator, return its end."""
    head = os.pread(fd, 16384, at)
    header_end = head.find(b"\n\n")
    crlf = head.find(b"\r\n\r\n")
    if header_end < 0 and crlf < 0:
        return None
    if header_end < 0 or (0 <= crlf < header_end):
        header_end, gap = crlf, 4
    else:
        gap = 2
    m = _CONTENT_LENGTH.search(head, 0, header_end)
    if not m:
        return None
    end = at + header_end + gap + int(m.group(1))
    if end >= size:
        return size
    nxt = os.pread(fd, 7, end).lstrip(b"\r\n")
    return end if nxt.startswith(b"From ") else None


def _read_message(fd: int, begin: int, end: int) -> RawMessage:
    length = end - begin
    data = os.pread(fd, min(length, MAX_MESSAGE_BYTES), begin)
    first_nl = data.find(b"\n")
    body = data[first_nl + 1 :] if first_nl >= 0 else b""
    if b">From " in body:
        body = _ESCAPED_FROM.sub(rb"\1", body)
    return RawMessage(body, begin, end, length > MAX_MESSAGE_BYTES)
