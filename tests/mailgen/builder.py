"""Building the generated mailbox message by message: the stream (``_Gen``), how each kind of mail is
composed and quoted, and the MIME rendering, all assembled as bytes by hand."""

from __future__ import annotations

import base64
import binascii
import random
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import NamedTuple
from urllib.parse import quote as _pct

from mailgen.world import (
    _ALEX_DEV_REPLIES,
    _BLOCK,
    _BLOCK_SPREAD,
    _CHARSET_VARIANTS,
    _COLLEAGUE_NAMES,
    _DEV_FOOTER,
    _DEV_POSTERS,
    _DEV_REPLIES,
    _DEV_TOPICS,
    _DISCLAIMER,
    _EXTRAS,
    _FIRST_VARIANTS,
    _FORCED,
    _FORCED_EVERY,
    _HARD_PER_BLOCK,
    _HIKER_TOPICS,
    _HIKERS,
    _HIKERS_FOOTER,
    _INLINE_ANSWERS,
    _IPHONE,
    _ME_PERSON,
    _MON,
    _MON_DE,
    _MON_LONG,
    _NEWSLETTERS,
    _NL,
    _PEOPLE,
    _PERSONAL_TOPICS,
    _POOLS,
    _SIG_DASH,
    _SIG_OUTLOOK,
    _SLOT_VALUES,
    _SPAN,
    _START,
    _TOPICS,
    _WD,
    _WD_DE,
    _WD_LONG,
    _WORK_TOPICS,
    ME,
    ME_ADDR,
    ME_ALIAS,
    ME_ALIAS_FULL,
    ME_NAME,
    GeneratedMessage,
    _CharsetSpec,
    _ew,
    _Person,
    _Topic,
)

# --- low-level formatting ------------------------------------------------------------------------------


def _lt(ts: int, tz: int) -> time.struct_time:
    return time.gmtime(ts + tz * 60)


def _tz(tz: int) -> str:
    a = abs(tz)
    return f"{'-' if tz < 0 else '+'}{a // 60:02d}{a % 60:02d}"


def _rfc_date(ts: int, tz: int) -> str:
    t = _lt(ts, tz)
    return (
        f"{_WD[t.tm_wday]}, {t.tm_mday} {_MON[t.tm_mon - 1]} {t.tm_year} "
        f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {_tz(tz)}"
    )


def _hm12(t: time.struct_time) -> str:
    return f"{t.tm_hour % 12 or 12}:{t.tm_min:02d} {'AM' if t.tm_hour < 12 else 'PM'}"


def _alex_tz(ts: int) -> int:
    return -240 if 4 <= time.gmtime(ts).tm_mon <= 10 else -300


def _daytime(ts: int, jitter_h: int) -> int:
    """Move a night-time start (Alex's clock) into the morning."""
    hour = (ts + _alex_tz(ts) * 60) // 3600 % 24
    return ts + (8 - hour + jitter_h) * 3600 if hour < 8 else ts


def _inner_html(html: str) -> str:
    """What a reply embeds of an HTML document: the inside of its <body>."""
    i = html.find("<body")
    if i < 0:
        return html
    return html[html.find(">", i) + 1 : html.rfind("</body>")]


def _gmail_date(ts: int, tz: int) -> str:
    t = _lt(ts, tz)
    return f"{_WD[t.tm_wday]}, {_MON[t.tm_mon - 1]} {t.tm_mday}, {t.tm_year} at {_hm12(t)}"


def _attribution(style: str, ts: int, tz: int, name: str, addr: str) -> str:
    """The "On ... wrote:" line each client puts above a quote."""
    t = _lt(ts, tz)
    hm = f"{t.tm_hour:02d}:{t.tm_min:02d}"
    if style == "apple":
        return f"On {_MON[t.tm_mon - 1]} {t.tm_mday}, {t.tm_year}, at {_hm12(t)}, {name} <{addr}> wrote:"
    if style == "apple_uk":
        return f"On {t.tm_mday} {_MON[t.tm_mon - 1]} {t.tm_year}, at {hm}, {name} <{addr}> wrote:"
    if style == "thunderbird":
        return f"On {t.tm_mday:02d}/{t.tm_mon:02d}/{t.tm_year} {hm}, {name} wrote:"
    if style == "german":
        return (
            f"Am {_WD_DE[t.tm_wday]}, {t.tm_mday}. {_MON_DE[t.tm_mon - 1]} {t.tm_year} um {hm} Uhr "
            f"schrieb {name} <{addr}>:"
        )
    line = f"On {_gmail_date(ts, tz)} {name} <{addr}> wrote:"
    return line.replace(" wrote:", "\nwrote:") if len(line) > 78 else line  # Gmail wraps its plain text


def _outlook_date(ts: int, tz: int) -> str:
    t = _lt(ts, tz)
    return f"{_WD_LONG[t.tm_wday]}, {_MON_LONG[t.tm_mon - 1]} {t.tm_mday}, {t.tm_year} {_hm12(t)}"


def _quote(text: str) -> str:
    return "\n".join("> " + line if line else ">" for line in text.split("\n"))


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _esc(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_URL = re.compile(r"(https?://[^\s<]+)")


def _html_line(line: str) -> str:
    line = _esc(line)
    return _URL.sub(r'<a href="\1">\1</a>', line) if "http" in line else line


def _html_blocks(text: str, style: str) -> str:
    """Plain text (blank-line separated blocks, "- " bullets) as HTML the way a client writes it."""
    out = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        if all(line.startswith("- ") for line in lines):
            out.append("<ul>" + "".join(f"<li>{_html_line(x[2:])}</li>" for x in lines) + "</ul>")
        elif style == "gmail":
            out.append("".join(f"<div>{_html_line(x) or '<br>'}</div>" for x in lines))
        elif style == "outlook":
            out.append("".join(f'<p class="MsoNormal">{_html_line(x)}<o:p></o:p></p>' for x in lines))
        else:
            out.append("<p>" + "<br>".join(_html_line(x) for x in lines) + "</p>")
    if style == "gmail":
        return "<div><br></div>".join(out)
    if style == "outlook":
        return '<p class="MsoNormal"><o:p>&nbsp;</o:p></p>'.join(out)
    return "".join(out)


_GMAIL_QUOTE = (
    '<div class="gmail_quote"><div dir="ltr" class="gmail_attr">{attr}<br></div><blockquote '
    'class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);'
    'padding-left:1ex">{body}</blockquote></div>'
)
_OUTLOOK_HEAD = (
    '<html xmlns:o="urn:schemas-microsoft-com:office:office"><head><meta http-equiv="Content-Type" '
    'content="text/html; charset=utf-8"><style><!--\np.MsoNormal, li.MsoNormal {margin:0in;'
    'font-size:11.0pt;font-family:"Calibri",sans-serif;}\n.WordSection1 {page:WordSection1;}\n--></style>'
    '</head><body lang="EN-US" link="#0563C1"><div class="WordSection1">'
)
_WEB_HEAD = (
    '<html><head><meta charset="utf-8"><style type="text/css">body { font-family: Helvetica, Arial, '
    "sans-serif; font-size: 14px; } blockquote { border-left: 2px solid #ccc; margin-left: 4px; "
    "padding-left: 8px; } p { margin: 0 0 1em 0; }</style></head><body>"
)


def _qp(data: bytes) -> bytes:
    return binascii.b2a_qp(data)


def _b64(data: bytes) -> bytes:
    return base64.encodebytes(data)


Entity = tuple[str, bytes]  # (MIME header lines, each ending in "\n"; body bytes)


def _text_entity(
    text: str, subtype: str, charset: str, cte: str, params: str = "", codec: str | None = None
) -> Entity:
    """A text/* entity; ``codec`` encodes when the declared charset lies (mislabelled mail)."""
    data = text.encode(codec or charset)
    if cte == "quoted-printable":
        data = _qp(data)
    elif cte == "base64":
        data = _b64(data)
    label = f'"{charset}"' if charset[:1].isupper() else charset
    return f"Content-Type: text/{subtype}; charset={label}{params}\nContent-Transfer-Encoding: {cte}\n", data


def _simple_text(text: str) -> Entity:
    """7bit us-ascii when it can be, else UTF-8 in 8bit (what simple mailers send)."""
    if text.isascii():
        return _text_entity(text, "plain", "us-ascii", "7bit")
    return _text_entity(text, "plain", "UTF-8", "8bit")


def _multipart(
    subtype: str, parts: list[Entity], boundary: str, *, close: bool = True, params: str = ""
) -> Entity:
    bnd = boundary.encode()
    chunks = []
    for hdr, body in parts:
        chunks.append(b"--" + bnd + b"\n" + hdr.encode() + b"\n" + body)
        if not body.endswith(b"\n"):
            chunks.append(b"\n")
    if close:
        chunks.append(b"--" + bnd + b"--\n")
    return f'Content-Type: multipart/{subtype}; boundary="{boundary}"{params}\n', b"".join(chunks)


def _attachment(ctype: str, filename: str, b64: bytes, *, rfc2231: bool = False) -> Entity:
    if rfc2231:
        name = f'name="{_ew(filename, "UTF-8", "Q")}"'
        disp = f"attachment; filename*=UTF-8''{_pct(filename)}"
    else:
        name = f'name="{filename}"'
        disp = f'attachment; filename="{filename}"'
    hdr = f"Content-Type: {ctype}; {name}\nContent-Disposition: {disp}\nContent-Transfer-Encoding: base64\n"
    return hdr, b64


def _render(headers: list[tuple[str, str]], entity: Entity, *, nl: str = _NL, codec: str = "utf-8") -> bytes:
    """Assemble a whole message (headers, MIME headers of ``entity``, blank line, body) with ``nl`` endings.

    ``codec`` encodes the header block; lone surrogates in header values become raw 8-bit bytes.
    """
    head = "".join(f"{k}: {v}\n" for k, v in headers) + "MIME-Version: 1.0\n" + entity[0]
    raw = head.encode(codec, "surrogateescape") + b"\n" + entity[1]
    return raw.replace(b"\n", b"\r\n") if nl == "\r\n" else raw


def _fold_refs(ids: list[str]) -> str:
    return "\n ".join(f"<{i}>" for i in ids)


_MAGIC = {
    "pdf": b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n",
    "png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "docx": b"PK\x03\x04\x14\x00\x06\x00",
    "zip": b"PK\x03\x04\x14\x00\x00\x00",
    "mov": b"\x00\x00\x00\x14ftypqt  ",
}
_CTYPES = {
    "pdf": "application/pdf",
    "png": "image/png",
    "zip": "application/zip",
    "mov": "video/quicktime",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}


# --- composing one mail ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Prev:
    """What a reply needs to know about the message it answers."""

    name: str
    addr: str
    header: str
    to: str
    ts: int
    tz: int
    subject: str
    msg_id: str | None
    refs: list[str]
    body: str  # full plain text (own words, signature, its own quote)
    html: str | None
    paras: list[str]  # the content paragraphs of its author's own words


@dataclass(slots=True)
class _Ctx:
    """One conversation in progress."""

    key: str
    topic: _Topic
    rel: str  # work or personal
    people: list[_Person]
    slots: dict[str, str]
    subject: str
    ts: int
    alias: bool = False
    force: str = ""
    prev: _Prev | None = None
    turns: int = 0


class _Body(NamedTuple):
    text: str  # the plain text (the text/plain part unless html_only; what a reply quotes)
    html: str | None  # the text/html part
    paras: list[str]
    html_only: bool = False


def _compose_plain(own: str, sig: str, quote: str, style: str, prev: _Prev | None, bottom: bool) -> str:
    """Own words + signature/footer + the quoted previous message, in a client's layout."""
    top = own + ("\n\n" + sig if sig else "")
    if prev is None:
        return top
    if style == "outlook":
        sep = "-----Original Message-----" if len(prev.body) % 2 else "_" * 32
        block = (
            f"{sep}\nFrom: {prev.name} <{prev.addr}>\nSent: {_outlook_date(prev.ts, prev.tz)}\n"
            f"To: {prev.to}\nSubject: {prev.subject}\n\n{prev.body}"
        )
        return top + "\n\n" + block
    sep = "\n\n" if style in ("apple", "apple_uk") else "\n"
    quoted = quote + sep + _quote(prev.body)
    return quoted + "\n\n" + top if bottom else top + "\n\n" + quoted


def _compose_html(own: str, sig: str, attr: str, prev: _Prev | None, style: str) -> str:
    body = _html_blocks(own, style)
    if sig:
        sig_html = "<br>".join(_esc(x) for x in sig.split("\n"))
        body += (
            f'<br><div class="gmail_signature">{sig_html}</div>' if style == "gmail" else f"<p>{sig_html}</p>"
        )
    q = ""
    if prev is not None:
        inner = prev.html or _html_blocks(prev.body, "web")
        if style == "gmail":
            q = _GMAIL_QUOTE.format(attr=_esc(attr).replace("\n", " "), body=inner)
        elif style == "outlook":
            q = (
                '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in">'
                f'<p class="MsoNormal"><b>From:</b> {_esc(prev.name)} &lt;{prev.addr}&gt;<br><b>Sent:</b> '
                f"{_outlook_date(prev.ts, prev.tz)}<br><b>Subject:</b> {_esc(prev.subject)}</p></div>{inner}"
            )
        else:
            q = f'<p>{_esc(attr)}</p><blockquote type="cite">{inner}</blockquote>'
    if style == "gmail":
        return f'<div dir="ltr">{body}</div><br>{q}\n'
    if style == "outlook":
        return f"{_OUTLOOK_HEAD}{body}{q}</div></body></html>\n"
    return f"{_WEB_HEAD}{body}{q}</body></html>\n"


def _html_style(client: str) -> str:
    return "outlook" if client == "outlook" else "gmail" if client in ("gmail", "gmail_de") else "web"


# Per client: html mode, quote style, plain line endings, mailer header.
_CLIENTS = {
    "gmail": ("alt", "gmail", _NL, ""),
    "gmail_de": ("alt", "german", _NL, ""),
    "outlook": ("alt", "outlook", "\r\n", "X-Mailer: Microsoft Outlook 16.0"),
    "iphone": ("", "apple", _NL, "X-Mailer: iPhone Mail (20H115)"),
    "apple": ("", "apple_uk", _NL, "X-Mailer: Apple Mail (2.3731.700.6)"),
    "thunderbird": ("", "thunderbird", _NL, "User-Agent: Mozilla Thunderbird/115.6.0"),
    "webmail": ("only", "web", _NL, "X-Mailer: Example Webmail 3.2"),
}  # fmt: skip
_ALEX_CLIENTS = {
    "work": ("gmail",) * 11 + ("outlook",) * 5 + ("iphone",) * 3 + ("thunderbird", "webmail"),
    "personal": ("gmail",) * 9 + ("iphone",) * 6 + ("thunderbird",) * 2 + ("apple",) * 2 + ("webmail",),
}  # fmt: skip


class _Gen:
    """The stateful, seeded generator behind iter_messages."""

    def __init__(
        self,
        n: int,
        seed: int,
        hard_cases: bool = True,
        huge_bytes: int = 0,
        bulk: bool = False,
        span_n: int = 0,
    ) -> None:
        self.n, self.seed, self.hard, self.huge_bytes, self.bulk = n, seed, hard_cases, huge_bytes, bulk
        self.rng = random.Random(seed)
        self.emitted = 0
        self.mid = 0
        self.threads = 0
        self.cursor = _START
        self.step = _SPAN / max(1, span_n or n)
        self.forced: deque[tuple[int, str]] = deque()
        self.next_block = 0
        self.last_sent: GeneratedMessage | None = None
        self.pool = self._make_pool(seed) if bulk else b""
        self.issue = {"weekly": 120, "trail": 40, "allhands": 10, "digest": 300}
        self.flips: dict[str, int] = {}

    # -- driving ------------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[GeneratedMessage]:
        pending: deque[GeneratedMessage] = deque()
        while self.emitted < self.n:
            if not pending:
                pending.extend(self._episode())
                continue
            msg = pending.popleft()
            self.emitted += 1
            if msg.sent_by_me and msg.message_id and msg.hard_case is None and msg.folder == "Sent":
                self.last_sent = msg
            yield msg

    def _plan_block(self) -> None:
        items = [name for name, k in _HARD_PER_BLOCK.items() for _ in range(k)] if self.hard else []
        if self.next_block % (_BLOCK * _FORCED_EVERY) == 0:
            items += _FORCED
        self.rng.shuffle(items)
        offsets = sorted(self.rng.sample(range(_BLOCK_SPREAD), len(items)))
        self.forced.extend((self.next_block + off, it) for off, it in zip(offsets, items, strict=True))
        self.next_block += _BLOCK

    def _episode(self) -> list[GeneratedMessage]:
        while self.emitted >= self.next_block:
            self._plan_block()
        if self.huge_bytes and self.emitted >= self.n // 2:
            size, self.huge_bytes = self.huge_bytes, 0
            return self._advance(self._huge(size))
        if self.forced and self.forced[0][0] <= self.emitted:
            item = self.forced.popleft()[1]
            return self._advance(self._HARD[item](self) if item in self._HARD else self._forced(item))
        return self._advance(self._random_episode())

    def _advance(self, msgs: list[GeneratedMessage]) -> list[GeneratedMessage]:
        self.cursor += int(self.step * max(1, len(msgs)) * self.rng.uniform(0.4, 1.6))
        return msgs

    def _random_episode(self) -> list[GeneratedMessage]:
        r = self.rng.random()
        if r < 0.33:
            return self._conversation("work")
        if r < 0.47:
            return self._conversation("personal")
        if r < 0.64:
            return self._newsletter()
        if r < 0.85:
            return self._notification()
        if r < 0.93:
            return self._dev_thread()
        if r < 0.97:
            return self._hikers_thread()
        return self._charset(
            self.rng.choice(
                (
                    "latin1_qp",
                    "german_latin1",
                    "cp1252_qp",
                    "utf8_emoji",
                    "koi8r",
                    "iso2022jp",
                    "gb2312",
                    "rfc2047_split",
                )
            )
        )

    # -- small helpers ------------------------------------------------------------------------------

    def _start(self) -> int:
        """A start time for the next episode, in Alex's waking hours."""
        return _daytime(self.cursor + self.rng.randrange(0, 6 * 3600), self.rng.randrange(0, 3))

    def _alternate(self, name: str) -> bool:
        """True, False, True, ... per name: hard cases come in both flavours even in short streams."""
        self.flips[name] = self.flips.get(name, 0) + 1
        return self.flips[name] % 2 == 1

    def _key(self) -> str:
        self.threads += 1
        return f"t{self.threads:06d}"

    def _msgid(self, client: str, domain: str) -> str:
        self.mid += 1
        r = self.rng.getrandbits(64)
        if client in ("gmail", "gmail_de"):
            return f"CA{self.mid:06X}{r:016x}Qw@mail.{domain}"
        if client == "outlook":
            return f"SJ0PR11MB{self.mid:06d}{r:016X}@SJ0PR11MB{r % 9000 + 1000}.prod.{domain}"
        if client in ("iphone", "apple"):
            h = f"{r:016X}{self.mid:016X}"
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}@{domain}"
        if client == "thunderbird":
            h = f"{r:016x}{self.mid:08x}"
            return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:]}@{domain}"
        return f"{self.mid}.{r:x}@{domain}"

    def _boundary(self, client: str = "") -> str:
        r = self.rng.getrandbits(64)
        if client == "outlook":
            return f"_000_SJ0PR11MB{r:016X}_"
        if client in ("iphone", "apple"):
            return f"Apple-Mail={r:016X}-{self.mid:08X}"
        return f"000000000000{r:016x}"

    def _slots(self) -> dict[str, str]:
        c, r = self.rng.choice, self.rng
        s = {k: c(v) for k, v in _SLOT_VALUES.items()}
        s["item2"] = c(_SLOT_VALUES["item"])
        s["day2"] = c(_SLOT_VALUES["day"])
        s["time2"] = c(_SLOT_VALUES["time1"])
        s["colleague"] = c(_COLLEAGUE_NAMES)
        t = time.gmtime(self.cursor + r.randrange(3, 40) * 86400)
        s["date"] = f"{_MON_LONG[t.tm_mon - 1]} {t.tm_mday}"
        s["amount"] = f"${r.randrange(4, 60) * 500:,}"
        s["pct"] = str(r.randrange(5, 25))
        s["inv"] = f"INV-{r.randrange(1000, 9999)}"
        s["docid"] = f"{r.getrandbits(40):010x}"
        return s

    def _labels(self, folder: str, sent: bool, category: str = "") -> tuple[str, ...]:
        r = self.rng.random()
        if sent:
            return ("Sent", "Important") if r < 0.1 else ("Sent",)
        out = ["Inbox" if folder == "Inbox" else "Archived"]
        if category:
            out.append(category)
        elif r < 0.25:
            out.append("Important")
        r2 = self.rng.random()
        out.append("Unread" if r2 < 0.15 else "Opened" if r2 < 0.75 else "")
        return tuple(x for x in out if x)

    def _blob(self, kind: str, size: int) -> bytes:
        """Base64 lines of a small fake file of ``kind`` (or a big one from the bulk pool)."""
        magic = _MAGIC[kind]
        if not self.pool or size < 20_000:
            return _b64(magic + self.rng.randbytes(size))
        head = _b64(magic + self.rng.randbytes(57 * 4 - len(magic)))
        lines = len(self.pool) // 77
        n = min(size // 57, lines - 1)
        start = self.rng.randrange(0, lines - n) * 77
        return head + self.pool[start : start + n * 77]

    @staticmethod
    def _make_pool(seed: int) -> bytes:
        return _b64(random.Random(seed ^ 0x5EED).randbytes(57 * 80_000))  # ~6 MB of base64 lines

    def _attach_size(self) -> int:
        if self.bulk:
            return int(self.rng.paretovariate(1.2) * 40_000)
        return self.rng.randrange(800, 24_000)

    def _alex_from(self, ctx: _Ctx) -> tuple[str, str]:
        return (ME_ALIAS_FULL, ME_ALIAS) if ctx.alias else (ME, ME_ADDR)

    # -- conversations -------------------------------------------------------------------------------

    def _new_ctx(self, rel: str, topic_name: str = "", force: str = "") -> _Ctx:
        rng = self.rng
        topic = _TOPICS[topic_name or rng.choice(_WORK_TOPICS if rel == "work" else _PERSONAL_TOPICS)]
        people = [rng.choice(_POOLS[topic.pool])]
        if topic.pool == "work" and rng.random() < 0.15:
            extra = rng.choice(_POOLS["work"])
            if extra is not people[0]:
                people.append(extra)
        slots = self._slots()
        subject = _cap(rng.choice(topic.subj).format_map(slots))
        ts = self._start()
        alias = force == "alias_me" or (rel == "personal" and rng.random() < 0.3)
        return _Ctx(self._key(), topic, rel, people, slots, subject, ts, alias, force)

    def _conversation(
        self, rel: str, topic: str = "", force: str = "", length: int = 0, me_first: bool | None = None
    ) -> list[GeneratedMessage]:
        rng = self.rng
        ctx = self._new_ctx(rel, topic, force)
        length = length or rng.choice((1, 1, 2, 2, 2, 2, 3, 3, 3, 4, 4, 5, 6))
        me_first = rng.random() < 0.45 if me_first is None else me_first
        out: list[GeneratedMessage] = []
        for k in range(length):
            if (k % 2 == 0) == me_first:
                msg = self._alex_turn(ctx)
                out.append(msg)
                if ctx.rel == "work" and (force == "auto_reply" or rng.random() < 0.015):
                    out.append(self._auto_reply(ctx, msg))
                    force = ctx.force = ""
            else:
                out.append(self._other_turn(ctx, ctx.people[(k // 2) % len(ctx.people)]))
            ctx.ts += rng.randrange(300, 86400 if rel == "work" else 2 * 86400)
        if force in ("forward", "forward_attached") or (rel == "work" and rng.random() < 0.06):
            out.append(self._forward(ctx, attached=force == "forward_attached"))
        return out

    def _alex_paras(self, ctx: _Ctx, first: bool) -> list[str]:
        rng, t, s = self.rng, ctx.topic, ctx.slots
        if first and ctx.force == "html_only_me":  # bullets and a link, for the HTML list/anchor case
            return [
                t.a1[0].format_map(s),
                "The doc is here: https://docs.example.org/d/{docid}".format_map(s),
            ]
        if first:
            paras = [rng.choice(t.a1).format_map(s)]
            if rng.random() < 0.6:
                paras.append(rng.choice(t.a2).format_map(s))
        else:
            paras = [rng.choice(t.ar).format_map(s)]
        if rng.random() < 0.1:  # a few longer ones
            extras = _EXTRAS["work" if ctx.rel == "work" else "personal"]
            paras[1:1] = [e.format_map(s) for e in rng.sample(extras, min(len(extras), rng.randrange(2, 4)))]
        return paras

    def _alex_frame(self, ctx: _Ctx, first: bool) -> tuple[str, str]:
        """(greeting or "", sign-off) in Alex's voice."""
        rng = self.rng
        greeting = ""
        if first or rng.random() < 0.8:
            names = [p.first for p in ctx.people]
            if len(names) == 1:
                greeting = ctx.people[0].hello
            else:
                greeting = "Hi all," if len(names) > 2 else f"Hi {names[0]} and {names[1]},"
        if ctx.people[0].key == "linda":
            return greeting, "Love,\nAlex"
        if ctx.rel == "personal":
            return greeting, "Thanks!\nAlex" if rng.random() < 0.2 else "Cheers,\nAlex"
        r = rng.random()
        return greeting, "Best,\nAlex" if r < 0.6 else "Thanks!\nAlex" if r < 0.9 else "Thanks,\nAlex"

    def _alex_client(self, ctx: _Ctx) -> str:
        f = ctx.force
        if f in ("outlook_reply", "cp1252_qp"):
            return "outlook"
        if f == "thunderbird_bottom":
            return "thunderbird"
        if f == "apple_reply":
            return "iphone"
        if f == "html_only_me":
            return "webmail"
        if f in ("inline_reply", "german_quote"):
            return "gmail"
        return self.rng.choice(_ALEX_CLIENTS["work" if ctx.rel == "work" else "personal"])

    def _alex_sig(self, client: str, ctx: _Ctx) -> tuple[str, str]:
        """(signature/footer after the sign-off, disclaimer at the very end)."""
        r = self.rng.random()
        work = ctx.rel == "work"
        if client == "iphone":
            return _IPHONE, ""
        if client == "outlook":
            return (_SIG_OUTLOOK if r < 0.8 else ""), (
                _DISCLAIMER if work and self.rng.random() < 0.5 else ""
            )
        if client in ("gmail", "thunderbird") and work and r < 0.35:
            return _SIG_DASH, ""
        return "", ""

    def _inline(self, ctx: _Ctx, greeting: str, signoff: str, attr: str) -> tuple[str, str]:
        """Answers interleaved with the quoted paragraphs: returns (own words, plain body)."""
        prev = ctx.prev
        assert prev is not None
        intro = self.rng.choice(("Answers inline.", "Comments inline below.", "See my notes inline."))
        answers = [self.rng.choice(_INLINE_ANSWERS).format_map(ctx.slots) for _ in prev.paras]
        head = [x for x in (greeting, intro) if x]
        body = [*head, attr]
        for para, ans in zip(prev.paras, answers, strict=True):
            body[-1] += "\n" + _quote(para)
            body.append(ans)
        body.append(signoff)
        return "\n\n".join([*head, *answers, signoff]), "\n\n".join(body)

    def _alex_style(self, ctx: _Ctx, client: str) -> tuple[str, bool, bool]:
        """(quote style, inline answers?, bottom-posted?) for Alex's reply."""
        rng, prev = self.rng, ctx.prev
        style = _CLIENTS[client][1]
        if prev is None:
            return style, False, False
        if ctx.force == "german_quote" or (client == "gmail" and rng.random() < 0.04):
            style = "german"
        inline = bool(prev.paras) and (
            ctx.force == "inline_reply" or (client == "gmail" and rng.random() < 0.04)
        )
        bottom = client == "thunderbird" and (ctx.force == "thunderbird_bottom" or rng.random() < 0.5)
        return style, inline, bottom

    def _alex_turn(self, ctx: _Ctx, paras: list[str] | None = None, client: str = "") -> GeneratedMessage:
        prev = ctx.prev
        paras = paras or self._alex_paras(ctx, prev is None)
        greeting, signoff = self._alex_frame(ctx, prev is None)
        own = "\n\n".join([*([greeting] if greeting else []), *paras, signoff])
        client = client or self._alex_client(ctx)
        mode, _, nl, mailer = _CLIENTS[client]
        style, inline, bottom = self._alex_style(ctx, client)
        sig, disclaimer = self._alex_sig(client, ctx)
        attr = _attribution(style, prev.ts, prev.tz, prev.name, prev.addr) if prev else ""
        if inline:
            sig = ""
            own, text = self._inline(ctx, greeting, signoff, attr)
            variant = "inline_reply"
        else:
            text = _compose_plain(own, sig, attr, style, prev, bottom)
            variant = (
                ("bottom_post" if bottom else f"{style}_reply")
                if prev
                else _FIRST_VARIANTS.get(ctx.force, "")
            )
        if disclaimer:
            text += "\n\n" + disclaimer
        html = None
        if mode:
            hsig = f"{sig}\n\n{disclaimer}".strip() if disclaimer else sig
            html = _compose_html(own, hsig, attr, prev, _html_style(client))
        frm, addr = self._alex_from(ctx)
        to = ", ".join(p.header for p in ctx.people)
        kind = "reply" if prev else {"alt": "alternative", "only": "html_only"}.get(mode, "plain")
        body = _Body(text, html, paras, mode == "only")
        return self._finish(
            ctx, frm, addr, to, "", client, _alex_tz(ctx.ts), body, kind, True, own, nl, mailer, variant
        )

    def _other_words(self, p: _Person, paras: list[str], greet: bool = True) -> str:
        parts = [p.greet] if p.greet and greet else []
        parts.extend(paras)
        parts.append(p.signoff)
        return "\n\n".join(parts)

    def _other_turn(self, ctx: _Ctx, p: _Person) -> GeneratedMessage:
        rng, prev = self.rng, ctx.prev
        t, s = ctx.topic, ctx.slots
        paras = [rng.choice(t.o1 if prev is None else t.orr).format_map(s)]
        own = self._other_words(p, paras, greet=prev is None or rng.random() < 0.6)
        mode, style, nl, mailer = _CLIENTS[p.client]
        sig = _IPHONE if p.client == "iphone" else p.sig
        attr = _attribution(style, prev.ts, prev.tz, prev.name, prev.addr) if prev else ""
        text = _compose_plain(own, sig, attr, style, prev, False)
        html = _compose_html(own, sig, attr, prev, _html_style(p.client)) if mode else None
        to = ME_ALIAS_FULL if ctx.alias else ME
        cc = ", ".join(x.header for x in ctx.people if x is not p)
        kind = "reply" if prev else {"alt": "alternative", "only": "html_only"}.get(mode, "plain")
        return self._finish(
            ctx,
            p.header,
            p.addr,
            to,
            cc,
            p.client,
            p.tz,
            _Body(text, html, paras, mode == "only"),
            kind,
            False,
            None,
            nl,
            mailer,
            f"{style}_reply" if prev else "",
            name=p.name,
        )

    def _reply_subject(self, ctx: _Ctx, client: str, refs: bool) -> str:
        if ctx.prev is None:
            return ctx.subject
        if refs and client == "outlook":
            return "RE: " + ctx.subject
        if refs and client == "gmail_de" and self.rng.random() < 0.5:
            return "AW: " + ctx.subject
        return "Re: " + ctx.subject

    def _threading(self, prev: _Prev | None) -> tuple[list[str], list[tuple[str, str]], bool]:
        """(references chain, In-Reply-To/References headers, whether they were dropped)."""
        refs = (prev.refs + [prev.msg_id]) if prev and prev.msg_id else []
        if not refs:
            return refs, [], prev is not None
        if self.rng.random() < 0.08:  # a client that drops the threading headers: only the subject links
            return refs, [], True
        headers = [("In-Reply-To", f"<{refs[-1]}>")]
        if self.rng.random() < 0.93:
            headers.append(("References", _fold_refs(refs[-12:])))
        return refs, headers, False

    def _finish(
        self, ctx: _Ctx, frm: str, addr: str, to: str, cc: str, client: str, tz: int, body: _Body,
        kind: str, me: bool, own: str | None, nl: str, mailer: str, variant: str, name: str = ME_NAME,
    ) -> GeneratedMessage:  # fmt: skip
        """Headers + MIME structure for a conversation turn; updates the thread state."""
        msg_id = self._msgid(client, addr.split("@", 1)[1])
        refs, threading, dropped = self._threading(ctx.prev)
        subject = self._reply_subject(ctx, client, not dropped)
        headers = [("Date", _rfc_date(ctx.ts, tz)), ("From", frm), ("To", to), ("Cc", cc)][: 4 if cc else 3]
        headers += [("Subject", self._subject_header(subject)), ("Message-ID", f"<{msg_id}>"), *threading]
        if mailer:
            k, v = mailer.split(": ", 1)
            headers.append((k, v))
        if not me:
            headers[:0] = self._received(addr, ctx.ts)
        attach = self._maybe_attachment(ctx)
        raw = _render(headers, self._body_entity(body, client, attach), nl=nl)
        folder = "Sent" if me else ("Inbox" if self.rng.random() < 0.75 else "Archive")
        kind, labels = "attachment" if attach else kind, self._labels(folder, me)
        msg = GeneratedMessage(
            raw, kind, me, folder, msg_id, own, ctx.key, None, variant, labels, ctx.ts, addr
        )
        html = _inner_html(body.html) if body.html else None
        ctx.prev = _Prev(name, addr, frm, to, ctx.ts, tz, subject, msg_id, refs, body.text, html, body.paras)
        ctx.turns += 1
        return msg

    def _subject_header(self, subject: str) -> str:
        return subject if subject.isascii() else _ew(subject, "UTF-8", "B")

    def _received(self, addr: str, ts: int) -> list[tuple[str, str]]:
        domain = addr.split("@", 1)[1]
        host = domain if domain.startswith("mail.") else f"mail.{domain}"
        rid = f"{self.rng.getrandbits(48):012x}"
        return [
            ("Return-Path", f"<{addr}>"),
            ("Delivered-To", ME_ADDR),
            (
                "Received",
                f"from {host} ({host} [192.0.2.{ts % 250 + 1}])\n"
                f"        by mx.example.org with ESMTPS id {rid}\n"
                f"        for <{ME_ADDR}>; {_rfc_date(ts + 2, 0)}",
            ),
        ]

    def _maybe_attachment(self, ctx: _Ctx) -> list[Entity]:
        rng = self.rng
        want = ctx.force == "rfc2231_filename" or (ctx.topic.attach and ctx.turns == 0 and rng.random() < 0.5)
        if self.bulk and rng.random() < 0.3:
            want = True
        if not want or ctx.force in ("html_only_me", "alias_me"):
            return []
        ext = ctx.topic.attach or rng.choice(("pdf", "png", "docx"))
        if ctx.force == "rfc2231_filename":
            ctx.force = ""
            return [
                _attachment(
                    "application/pdf",
                    "Übersicht Q3 – Entwurf.pdf",
                    self._blob("pdf", self._attach_size()),
                    rfc2231=True,
                )
            ]
        names = {
            "pdf": f"{ctx.slots['quarter']}-budget-draft.pdf",
            "png": f"IMG_{rng.randrange(1000, 9999)}.png",
            "docx": f"Review notes - {ctx.slots['doc']}.docx",
        }
        return [_attachment(_CTYPES[ext], names[ext], self._blob(ext, self._attach_size()))]

    def _body_entity(self, body: _Body, client: str, attach: list[Entity]) -> Entity:
        parts = [] if body.html_only else [self._plain_entity(body.text, client)]
        if body.html is not None:
            parts.append(self._html_entity(body.html, client))
        entity = parts[0] if len(parts) == 1 else _multipart("alternative", parts, self._boundary(client))
        if attach:
            entity = _multipart("mixed", [entity, *attach], self._boundary(client))
        return entity

    def _plain_entity(self, text: str, client: str) -> Entity:
        ascii_ = text.isascii()
        long_ = not ascii_ or any(len(line) > 76 for line in text.split("\n"))
        if client == "thunderbird":
            return _text_entity(
                text, "plain", "UTF-8", "8bit" if not ascii_ else "7bit", "; format=fixed" if ascii_ else ""
            )
        if client == "outlook" and not ascii_:
            try:
                text.encode("windows-1252")
                return _text_entity(text, "plain", "Windows-1252", "quoted-printable")
            except UnicodeEncodeError:
                pass
        charset = ("us-ascii" if client in ("iphone", "apple", "outlook") else "UTF-8") if ascii_ else "UTF-8"
        if not ascii_ and client == "gmail" and self.rng.random() < 0.3:
            return _text_entity(text, "plain", charset, "base64")
        return _text_entity(text, "plain", charset, "quoted-printable" if long_ else "7bit")

    def _html_entity(self, html: str, client: str) -> Entity:
        if client == "outlook":
            return _text_entity(html, "html", "us-ascii" if html.isascii() else "utf-8", "quoted-printable")
        return _text_entity(html, "html", "UTF-8", "quoted-printable")

    def _auto_reply(self, ctx: _Ctx, original: GeneratedMessage) -> GeneratedMessage:
        """An out-of-office answer to Alex's message, threaded onto it."""
        p = ctx.people[0]
        de = p.client == "gmail_de"
        prefix = (
            "Abwesenheitsnotiz: "
            if de
            else "Automatic reply: "
            if p.client == "outlook"
            else "Out of Office: "
        )
        text = (
            f"Thank you for your message. I'm out of the office until {ctx.slots['date']} with limited "
            f"access to email. For anything urgent, please contact {ctx.slots['colleague']}.\n\n{p.first}"
        )
        if de:
            text = "Ich bin bis zum " + ctx.slots["date"] + " nicht im Büro.\n\n" + text
        ts, mid = ctx.ts + 40, self._msgid(p.client, p.addr.split("@", 1)[1])
        headers = self._received(p.addr, ts) + [
            ("Date", _rfc_date(ts, p.tz)), ("From", p.header), ("To", ME),
            ("Subject", self._subject_header(prefix + self._subject_of(ctx))), ("Message-ID", f"<{mid}>"),
            ("In-Reply-To", f"<{original.message_id}>"), ("References", f"<{original.message_id}>"),
            ("Auto-Submitted", "auto-replied"), ("X-Auto-Response-Suppress", "All"),
            ("Precedence", "auto_reply"),
        ]  # fmt: skip
        charset = "us-ascii" if text.isascii() else "UTF-8"
        raw = _render(headers, _text_entity(text, "plain", charset, "quoted-printable"))
        labels = self._labels("Inbox", False, "Category Updates")
        key, variant = ctx.key, "auto_reply"
        return GeneratedMessage(
            raw, "automated", False, "Inbox", mid, None, key, None, variant, labels, ts, p.addr
        )

    def _subject_of(self, ctx: _Ctx) -> str:
        return ctx.prev.subject if ctx.prev else ctx.subject

    def _forward(self, ctx: _Ctx, attached: bool = False) -> GeneratedMessage:
        """Alex forwards the thread's last message to a colleague, with a short note."""
        rng, prev = self.rng, ctx.prev
        assert prev is not None
        target = rng.choice([p for p in _POOLS["work"] if p not in ctx.people])
        ctx.ts += rng.randrange(600, 20000)
        note = rng.choice(
            (
                "FYI, see below. Can you take a look before {day}?",
                "Forwarding this one to you since it's more "
                "your area. Let me know if you need anything from me.",
                "See below. Could you handle this?",
            )
        )
        own = f"{target.hello}\n\n{note.format_map(ctx.slots)}\n\nThanks!\nAlex"
        client = "gmail" if attached or rng.random() < 0.7 else "outlook"
        base = prev.subject.removeprefix("Re: ").removeprefix("RE: ").removeprefix("AW: ")
        if client == "gmail":
            block = (
                f"---------- Forwarded message ---------\nFrom: {prev.name} <{prev.addr}>\nDate: "
                f"{_gmail_date(prev.ts, prev.tz)}\n"
                f"Subject: {prev.subject}\nTo: {prev.to}\n\n\n{prev.body}"
            )
            subject = "Fwd: " + base
        else:
            block = (
                f"________________________________\nFrom: {prev.name} <{prev.addr}>\nSent: "
                f"{_outlook_date(prev.ts, prev.tz)}\nTo: {prev.to}\nSubject: {prev.subject}\n\n{prev.body}"
            )
            subject = "FW: " + base
        return self._forward_msg(ctx, target, own, subject, client, None if attached else block)

    def _forward_msg(
        self, ctx: _Ctx, target: _Person, own: str, subject: str, client: str, block: str | None
    ) -> GeneratedMessage:
        prev = ctx.prev
        assert prev is not None
        mid = self._msgid(client, "example.org")
        refs = prev.refs + ([prev.msg_id] if prev.msg_id else [])
        headers = [("Date", _rfc_date(ctx.ts, _alex_tz(ctx.ts))), ("From", ME), ("To", target.header),
                   ("Subject", self._subject_header(subject)), ("Message-ID", f"<{mid}>")]  # fmt: skip
        if refs:
            headers += [("In-Reply-To", f"<{refs[-1]}>"), ("References", _fold_refs(refs[-12:]))]
        if block is None:  # forwarded as an attachment
            attached = ('Content-Type: message/rfc822\nContent-Disposition: attachment; filename="fwd.eml"\n',
                        self._prev_raw(prev))  # fmt: skip
            entity = _multipart("mixed", [self._plain_entity(own, client), attached], self._boundary())
            variant = "forward_attached"
        else:
            html = (f'<div dir="ltr">{_html_blocks(own, "gmail")}<br><div class="gmail_quote">'
                    f"{_html_blocks(block, 'web')}</div></div>\n")  # fmt: skip
            parts = [self._plain_entity(own + "\n\n" + block, client), self._html_entity(html, client)]
            entity = _multipart("alternative", parts, self._boundary(client))
            variant = "forward"
        raw = _render(headers, entity, nl=_CLIENTS[client][2])
        key, ts = ctx.key, ctx.ts
        return GeneratedMessage(
            raw, "forward", True, "Sent", mid, own, key, None, variant, ("Sent",), ts, ME_ADDR
        )

    def _prev_raw(self, prev: _Prev) -> bytes:
        headers = [
            ("Date", _rfc_date(prev.ts, prev.tz)),
            ("From", prev.header),
            ("To", prev.to),
            ("Subject", self._subject_header(prev.subject)),
        ]
        if prev.msg_id:
            headers.append(("Message-ID", f"<{prev.msg_id}>"))
        return _render(headers, _text_entity(prev.body, "plain", "UTF-8", "quoted-printable"))

    # -- forced shapes -------------------------------------------------------------------------------

    def _forced(self, item: str) -> list[GeneratedMessage]:
        if item in _CHARSET_VARIANTS:
            return self._charset(item)
        simple: dict[str, Callable[[], list[GeneratedMessage]]] = {
            "bounce": self._bounce,
            "calendar": self._calendar,
            "newsletter": self._newsletter,
            "digest": self._digest,
            "list_munged_me": lambda: self._dev_thread(me=True),
            "hikers_me": lambda: self._hikers_thread(me=True),
            "alias_me": lambda: self._conversation("personal", force="alias_me", length=2, me_first=True),
        }
        if item in simple:
            return simple[item]()
        if item == "html_only_me":
            return self._conversation("work", "review", force=item, length=3, me_first=True)
        rel = "work"
        if item in ("auto_reply", "forward", "forward_attached", "html_only_me", "rfc2231_filename"):
            return self._conversation(rel, force=item, length=2 if "forward" in item else 1, me_first=True)
        return self._conversation(rel, force=item, length=2, me_first=False)  # reply styles

    # -- automated mail -----------------------------------------------------------------------------

    def _auto_msg(
        self, headers: list[tuple[str, str]], entity: Entity, addr: str, variant: str, category: str, ts: int,
        key: str = "", mid: str | None = None,
    ) -> GeneratedMessage:  # fmt: skip
        folder = "Inbox" if self.rng.random() < 0.7 else "Archive"
        raw = _render(self._received(addr, ts) + headers, entity)
        key, labels = key or self._key(), self._labels(folder, False, category)
        return GeneratedMessage(
            raw, "automated", False, folder, mid, None, key, None, variant, labels, ts, addr
        )

    def _newsletter_body(self, name: str, lid: str, items: list[str], token: str, issue: int) -> Entity:
        links = [f"https://{lid}/r/{token[:6]}{i}" for i in range(len(items))]
        text = "\n\n".join(
            [f"{name} - issue {issue}",
             *(f"* {h}\n  Read more: {u}" for h, u in zip(items, links, strict=True)),
             f"You are receiving this because you subscribed at {lid}.\nUnsubscribe: https://{lid}/u/{token}"]
        )  # fmt: skip
        cells = "".join(
            f'<h2>{_esc(h)}</h2><p><a href="{u}">Read more</a></p>' for h, u in zip(items, links, strict=True)
        )
        html = (
            f'{_WEB_HEAD}<table width="100%" cellpadding="0"><tr><td><h1>{_esc(name)}</h1>{cells}'
            f'<p style="font-size:11px">Unsubscribe: <a href="https://{lid}/u/{token}">here</a></p>'
            f'<img src="https://t.{lid}/o/{token}.gif" width="1" height="1" alt="">'
            "</td></tr></table></body></html>\n"
        )
        parts = [_text_entity(text, "plain", "utf-8", "quoted-printable"),
                 _text_entity(html, "html", "utf-8", "quoted-printable")]  # fmt: skip
        return _multipart("alternative", parts, self._boundary())

    def _newsletter(self) -> list[GeneratedMessage]:
        rng = self.rng
        which = rng.choice(tuple(_NEWSLETTERS))
        name, addr, lid = _NEWSLETTERS[which]
        self.issue[which] += 1
        s = self._slots()
        heads = [
            f"{rng.randrange(3, 9)} tools we're excited about this month",
            f"What we learned shipping {s['project']}",
            f"The best trails near {s['city']}", f"Office update: {s['city']} opens in {s['quarter']}",
            "Your reading list for the weekend",
        ]  # fmt: skip
        items = rng.sample(heads, 3)
        token, ts = f"{rng.getrandbits(64):016x}", self._start()
        entity = self._newsletter_body(name, lid, items, token, self.issue[which])
        mid = f"{token}.{self.mid}@{lid}"
        self.mid += 1
        headers = [
            ("Date", _rfc_date(ts, 0)), ("From", f"{name} <{addr}>"), ("To", ME),
            ("Subject", f"{name} #{self.issue[which]}: {items[0]}"), ("Message-ID", f"<{mid}>"),
            ("List-Id", f"{name} <{lid}>"),
            ("List-Unsubscribe", f"<mailto:unsubscribe@{lid}?subject=unsub-{token}>,\n <https://{lid}/u/{token}>"),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"), ("Precedence", "bulk"),
            ("X-Campaign-Id", token[:10]),
        ]  # fmt: skip
        category = "Category Updates" if which == "allhands" else "Category Promotions"
        return [self._auto_msg(headers, entity, addr, "newsletter", category, ts, mid=mid)]

    _SERVICES = (
        (
            "Example CI",
            "notifications@ci.example.org",
            "[{slug}] Build #{n} failed on main",
            "Build #{n} of {slug} failed on main.\n\nFailing tests:\n  test_sync_retry\n"
            "  test_export_v1_compat\n\n"
            "Details: https://ci.example.org/{slug}/builds/{n}",
        ),
        (
            "Example Bank",
            "no-reply@bank.example.net",
            "Your {month} statement is ready",
            "Your statement for {month} is now available in online banking.\n\nThis is an automated message, "
            "please do not reply.",
        ),
        (
            "Example Shop",
            "orders@shop.example.com",
            "Your order #{n} has shipped",
            "Good news! Your order #{n} is on its way and should arrive within 3-5 business days.\n\n"
            "Track your package: https://shop.example.com/track/{n}",
        ),
        (
            "Example Account",
            "no-reply@accounts.example.com",
            "New sign-in to your account",
            "We noticed a new sign-in to your account from Firefox on Windows.\n\nIf this was you, you can "
            "ignore this message.",
        ),
        (
            "Example Air",
            "noreply@air.example.net",
            "Your trip to {city}: booking confirmation {code}",
            "Thank you for booking with Example Air.\n\nConfirmation code: {code}\nDestination: {city}\n\n"
            "Manage your booking: https://air.example.net/manage/{code}",
        ),
        (
            "Example Docs",
            "comments-noreply@docs.example.org",
            '{person} mentioned you in "{doc}"',
            '{person} mentioned you in a comment:\n\n  "@Alex can you confirm the numbers here?"\n\n'
            "Open: https://docs.example.org/d/{docid}",
        ),
    )

    def _notification(self) -> list[GeneratedMessage]:
        rng = self.rng
        name, addr, subj, body = rng.choice(self._SERVICES)
        ts = self._start()
        vals = dict(
            self._slots(), slug=rng.choice(("atlas", "heron", "web", "api")),
            n=str(rng.randrange(1000, 99999)),
            month=_MON_LONG[time.gmtime(ts).tm_mon - 1], code=f"{rng.getrandbits(30):08X}"[:6],
            person=rng.choice(_POOLS["work"]).name,
        )  # fmt: skip
        mid = self._msgid("", addr.split("@", 1)[1])
        headers = [
            ("Date", _rfc_date(ts, 0)), ("From", f"{name} <{addr}>"), ("To", ME),
            ("Subject", subj.format_map(vals)), ("Message-ID", f"<{mid}>"),
            ("Auto-Submitted", "auto-generated"),
            ("X-Auto-Response-Suppress", "All"),
        ]  # fmt: skip
        text = body.format_map(vals)
        entity = _text_entity(text, "plain", "UTF-8", "7bit")
        if rng.random() < 0.5:
            html = _text_entity(_compose_html(text, "", "", None, "web"), "html", "UTF-8", "quoted-printable")
            entity = _multipart("alternative", [entity, html], self._boundary())
        return [self._auto_msg(headers, entity, addr, "notification", "Category Updates", ts, mid=mid)]

    def _calendar(self) -> list[GeneratedMessage]:
        rng = self.rng
        org = rng.choice(_POOLS["work"])
        ts = self._start()
        start = time.gmtime(ts + 3 * 86400)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", start)
        uid = f"{rng.getrandbits(64):016x}@calendar.example.com"
        title = f"{_cap(self._slots()['project'])} sync"
        ics = (
            "BEGIN:VCALENDAR\nPRODID:-//Example Calendar//EN\nVERSION:2.0\nMETHOD:REQUEST\nBEGIN:VEVENT\n"
            f"DTSTART:{stamp}\nDTEND:{stamp}\nUID:{uid}\nSUMMARY:{title}\nORGANIZER;CN={org.name}:mailto:"
            f"{org.addr}\nATTENDEE;CN={ME_NAME};PARTSTAT=NEEDS-ACTION:mailto:{ME_ADDR}\nEND:VEVENT\nEND:VCALENDAR\n"
        )
        when = time.strftime("%a %b %d, %Y %H:%M UTC", start)
        text = f"{org.name} has invited you to {title}.\n\nWhen: {when}\n"
        mid, sender = self._msgid("", "calendar.example.com"), "calendar-notification@calendar.example.com"
        day = f"{_WD[start.tm_wday]} {start.tm_mday} {_MON[start.tm_mon - 1]}"
        headers = [
            ("Date", _rfc_date(ts, 0)), ("From", f"{org.name} (Example Calendar) <{sender}>"),
            ("Reply-To", org.header), ("To", ME), ("Subject", f"Invitation: {title} @ {day}"),
            ("Message-ID", f"<{mid}>"), ("Auto-Submitted", "auto-generated"),
        ]  # fmt: skip
        parts = [_text_entity(text, "plain", "UTF-8", "7bit"),
                 _text_entity(ics, "calendar", "UTF-8", "7bit", "; method=REQUEST")]  # fmt: skip
        entity = _multipart("alternative", parts, self._boundary())
        return [self._auto_msg(headers, entity, sender, "calendar", "Category Updates", ts, mid=mid)]

    def _bounce(self) -> list[GeneratedMessage]:
        """Alex mails a mistyped address; the mail server returns it."""
        ctx = self._new_ctx("work", "meeting")
        p = ctx.people[0]
        typo = p.addr.replace("@", "x@", 1)
        ctx.people = [replace(p, addr=typo, header=f"{p.name} <{typo}>")]
        sent = self._alex_turn(ctx, client="gmail")
        ts, mid, daemon = ctx.ts + 5, self._msgid("", "mail.example.org"), "MAILER-DAEMON@mail.example.org"
        report = (
            f"Reporting-MTA: dns; mail.example.org\nArrival-Date: {_rfc_date(ctx.ts, 0)}\n\n"
            f"Final-Recipient: rfc822; {typo}\nOriginal-Recipient: rfc822;{typo}\nAction: failed\n"
            f"Status: 5.1.1\nDiagnostic-Code: smtp; 550 5.1.1 <{typo}>: Recipient address rejected: "
            "User unknown in virtual mailbox table\n"
        )
        text = (
            "This is the mail system at host mail.example.org.\n\nI'm sorry to have to inform you that your "
            "message could not be delivered to one or more recipients.\n\n"
            f"<{typo}>: host mx.example.org said: 550 5.1.1 User unknown\n"
        )
        parts = [_text_entity(text, "plain", "us-ascii", "7bit"),
                 ("Content-Type: message/delivery-status\n", report.encode()),
                 ("Content-Type: message/rfc822\n", sent.raw.replace(b"\r\n", b"\n"))]  # fmt: skip
        entity = _multipart("report", parts, self._boundary(), params="; report-type=delivery-status")
        headers = [
            ("Date", _rfc_date(ts, 0)), ("From", f"Mail Delivery System <{daemon}>"), ("To", ME),
            ("Subject", "Undelivered Mail Returned to Sender"), ("Message-ID", f"<{mid}>"),
            ("Auto-Submitted", "auto-replied"),
        ]  # fmt: skip
        return [sent, self._auto_msg(headers, entity, daemon, "bounce", "", ts, ctx.key, mid)]

    # -- mailing lists --------------------------------------------------------------------------------

    def _list_headers(self, dev: bool, ts: int) -> list[tuple[str, str]]:
        if dev:
            return [
                ("List-Id", "Dev List <dev.lists.example.org>"),
                ("Mailing-list", "list dev@lists.example.org; contact dev+owners@lists.example.org"),
                ("List-Post", "<mailto:dev@lists.example.org>"),
                ("List-Unsubscribe", "<mailto:dev+unsubscribe@lists.example.org>"),
                ("Precedence", "list"),
            ]
        return [
            ("List-Id", "Hikers mailing list <hikers.lists.example.net>"),
            ("List-Post", "<mailto:hikers@lists.example.net>"),
            ("Precedence", "list"),
            (
                "List-Unsubscribe",
                "<https://lists.example.net/mailman/options/hikers>,\n "
                "<mailto:hikers-request@lists.example.net?subject=unsubscribe>",
            ),
        ]

    def _dev_thread(self, me: bool = False) -> list[GeneratedMessage]:
        rng = self.rng
        s = self._slots()
        subj_t, body_t = rng.choice(_DEV_TOPICS)
        subject = subj_t.format_map(s)
        key, ts = self._key(), self._start()
        poster = rng.choice(_DEV_POSTERS)
        msgs, refs = [], []
        n_replies = rng.randrange(1, 4) if not me else 1
        authors = [poster] + [
            None if me and i == n_replies - 1 else rng.choice(_DEV_POSTERS) for i in range(n_replies)
        ]
        if not me and rng.random() < 0.25:
            authors[-1] = None
        for i, author in enumerate(authors):
            msgs.append(self._dev_post(author, subject, s, body_t if i == 0 else "", refs, key, ts))
            ts += rng.randrange(600, 86400)
        return msgs

    def _dev_words(self, author: _Person | None, body_t: str, s: dict[str, str]) -> tuple[str, list[str]]:
        """(own words, paragraphs) of a Dev List post."""
        rng = self.rng
        if author is None:
            paras = [rng.choice(_ALEX_DEV_REPLIES).format_map(s)]
            hello = "Hi all," if rng.random() < 0.6 else ""
            bye = "Best,\nAlex" if rng.random() < 0.6 else "Thanks!\nAlex"
        else:
            paras = [(body_t or rng.choice(_DEV_REPLIES)).format_map(s)]
            hello, bye = ("Hi all," if body_t else ""), f"Thanks,\n{author.first}"
        return "\n\n".join(x for x in (hello, *paras, bye) if x), paras

    def _dev_post(
        self, author: _Person | None, subject: str, s: dict[str, str], body_t: str, refs: list[str], key: str,
        ts: int,
    ) -> GeneratedMessage:  # fmt: skip
        """A post through the Dev List, which rewrites From ("Name via Dev List") and sets Reply-To."""
        own, _ = self._dev_words(author, body_t, s)
        me = author is None
        who = author or _ME_PERSON
        name, addr, client, tz = who.name, who.addr, who.client, _alex_tz(ts) if me else who.tz
        mid = self._msgid(client, addr.split("@", 1)[1])
        headers = self._received("dev@lists.example.org", ts) + [
            ("Date", _rfc_date(ts, tz)), ("From", f'"{name} via Dev List" <dev@lists.example.org>'),
            ("Reply-To", f"{name} <{addr}>"), ("To", "Dev List <dev@lists.example.org>"),
            ("Subject", ("Re: " if refs else "") + subject), ("Message-ID", f"<{mid}>"),
        ]  # fmt: skip
        if refs:
            headers += [("In-Reply-To", f"<{refs[-1]}>"), ("References", _fold_refs(refs))]
        headers += [("X-Original-Sender", addr), *self._list_headers(True, ts)]
        raw = _render(headers, self._plain_entity(own + "\n\n" + _DEV_FOOTER, "gmail"))
        refs.append(mid)
        labels = ("Inbox", "Category Forums") if me else self._labels("Inbox", False, "Category Forums")
        variant, bounce = ("list_munged_me" if me else "list_munged"), "dev+bncBAABBQ@lists.example.org"
        return GeneratedMessage(raw, "list_munged", me, "Inbox", mid, own if me else None, key, None, variant,
                                labels, ts, bounce)  # fmt: skip

    def _hikers_thread(self, me: bool = False) -> list[GeneratedMessage]:
        rng = self.rng
        s = self._slots()
        subj_t, body_t = rng.choice(_HIKER_TOPICS)
        subject = "[Hikers] " + subj_t.format_map(s)
        key, ts = self._key(), self._start()
        refs: list[str] = []
        out = [self._hiker_post(rng.choice(_HIKERS), subject, body_t.format_map(s), refs, key, ts)]
        for _ in range(rng.randrange(0, 3) if not me else 0):
            ts += rng.randrange(600, 86400)
            out.append(self._hiker_post(rng.choice(_HIKERS), subject, "I'm in!", refs, key, ts))
        if me or rng.random() < 0.3:
            ts += rng.randrange(600, 86400)
            out.append(
                self._hiker_post(
                    None,
                    subject,
                    rng.choice(
                        (
                            "Count me in! I can bring an extra pair of poles if anyone needs them.",
                            "I have a spare seat too, leaving from the north side.",
                            "Not this time, but have fun everyone!",
                        )
                    ),
                    refs,
                    key,
                    ts,
                )
            )
        return out

    def _hiker_post(
        self, author: _Person | None, subject: str, para: str, refs: list[str], key: str, ts: int
    ) -> GeneratedMessage:
        """A post to the Hikers list (Mailman, From kept); Alex's own posts are his Sent copies."""
        me = author is None
        who = author or replace(_ME_PERSON, addr=ME_ALIAS, header=ME_ALIAS_FULL)
        own = f"Hi all,\n\n{para}\n\nCheers,\nAlex" if me else f"{para}\n\n{who.first}"
        client = "gmail" if me or who.client == "webmail" else who.client
        mid = self._msgid(client, who.addr.split("@", 1)[1])
        headers = [
            ("Date", _rfc_date(ts, _alex_tz(ts) if me else who.tz)), ("From", who.header),
            ("To", "hikers@lists.example.net"), ("Subject", ("Re: " if refs else "") + subject),
            ("Message-ID", f"<{mid}>"),
        ]  # fmt: skip
        if refs:
            headers += [("In-Reply-To", f"<{refs[-1]}>"), ("References", _fold_refs(refs))]
        if not me:
            headers = self._received("hikers-bounces@lists.example.net", ts) + headers
            headers += self._list_headers(False, ts)
        raw = _render(headers, self._plain_entity(own if me else own + "\n\n" + _HIKERS_FOOTER, "gmail"))
        refs.append(mid)
        folder, variant = ("Sent", "hikers_me") if me else ("Inbox", "list")
        labels = self._labels(folder, me, "Category Forums")
        own_text = own if me else None
        return GeneratedMessage(
            raw, "list", me, folder, mid, own_text, key, None, variant, labels, ts, who.addr
        )

    def _digest(self) -> list[GeneratedMessage]:
        rng = self.rng
        self.issue["digest"] += 1
        n, ts = self.issue["digest"], self._start()
        posts = [
            (rng.choice(_DEV_POSTERS), t.format_map(self._slots())) for t, _ in rng.sample(_DEV_TOPICS, 3)
        ]
        topics = "\n".join(f"   {i + 1}. {t} ({p.name})" for i, (p, t) in enumerate(posts))
        bodies = "\n\n------------------------------\n\n".join(
            f"Message: {i + 1}\nDate: {_rfc_date(ts - 3600 * (i + 1), p.tz)}\nFrom: {p.name} <{p.addr}>\n"
            f"Subject: {t}\n\n{rng.choice(_DEV_REPLIES).format_map(self._slots())}"
            for i, (p, t) in enumerate(posts)
        )
        text = (
            "Send pyusers mailing list submissions to\n\tpyusers@lists.example.com\n\n"
            f"Today's Topics:\n\n{topics}\n\n\n{'-' * 70}\n\n{bodies}\n\n"
            f"End of pyusers Digest, Vol 4, Issue {n}\n{'*' * 40}\n"
        )
        mid = self._msgid("", "lists.example.com")
        headers = [
            ("Date", _rfc_date(ts, 0)), ("From", "pyusers-request@lists.example.com"), ("To", ME),
            ("Subject", f"pyusers Digest, Vol 4, Issue {n}"), ("Message-ID", f"<{mid}>"),
            ("List-Id", "Local Python users <pyusers.lists.example.com>"), ("Precedence", "list"),
        ]  # fmt: skip
        bounce = "pyusers-bounces@lists.example.com"
        raw = _render(self._received(bounce, ts) + headers, _text_entity(text, "plain", "us-ascii", "7bit"))
        labels = self._labels("Inbox", False, "Category Forums")
        key = self._key()
        return [
            GeneratedMessage(raw, "list", False, "Inbox", mid, None, key, None, "digest", labels, ts, bounce)
        ]

    # -- charsets -------------------------------------------------------------------------------------

    def _charset(self, variant: str) -> list[GeneratedMessage]:
        spec = _CHARSET_VARIANTS[variant]
        if spec.me:
            return [self._charset_me(variant, spec)]
        first = self._charset_received(variant, spec)
        return first

    def _charset_me(self, variant: str, spec: _CharsetSpec) -> GeneratedMessage:
        """Alex's own mail in a telling charset (Outlook windows-1252, mislabelled, emoji, split subject)."""
        p, ts, own = _PEOPLE[spec.person], self._start(), spec.text
        emoji = variant == "utf8_emoji"
        mid = self._msgid(spec.client, "morgan.example" if emoji else "example.org")
        frm, addr = (ME_ALIAS_FULL, ME_ALIAS) if emoji else (ME, ME_ADDR)
        subj = self._subject_header(spec.subject)
        if variant == "rfc2047_split":
            subj = _ew(spec.subject[:23], "UTF-8", "Q") + "\n " + _ew(spec.subject[23:], "UTF-8", "Q")
        headers = [("Date", _rfc_date(ts, _alex_tz(ts))), ("From", frm), ("To", p.header), ("Subject", subj),
                   ("Message-ID", f"<{mid}>")]  # fmt: skip
        if spec.client == "outlook":
            headers.append(("X-Mailer", "Microsoft Outlook 16.0"))
        text = own + ("\n\n" + _SIG_OUTLOOK if spec.client == "outlook" else "")
        entity = _text_entity(text, "plain", spec.charset, spec.cte, codec=spec.codec)
        if emoji:
            html = self._html_entity(_compose_html(own, "", "", None, "gmail"), "gmail")
            entity = _multipart("alternative", [entity, html], self._boundary())
        raw = _render(headers, entity, nl=_CLIENTS[spec.client][2])
        key = self._key()
        return GeneratedMessage(
            raw, "charset", True, "Sent", mid, own, key, None, variant, ("Sent",), ts, addr
        )

    def _charset_received(self, variant: str, spec: _CharsetSpec) -> list[GeneratedMessage]:
        """A colleague writes in their own charset; sometimes Alex answers (in English, quoting it)."""
        rng, p = self.rng, _PEOPLE[spec.person]
        ctx = self._new_ctx("work", "meeting")
        ctx.people, ctx.subject, ts = [p], spec.subject, ctx.ts
        mid = self._msgid(p.client, p.addr.split("@", 1)[1])
        display = _ew(spec.name, spec.charset.lower(), "B") if spec.name else p.header.split(" <")[0]
        subj_enc = "Q" if spec.charset.lower().startswith("iso-8859") else "B"
        headers = self._received(p.addr, ts) + [
            ("Date", _rfc_date(ts, p.tz)), ("From", f"{display} <{p.addr}>"), ("To", ME),
            ("Subject", _ew(spec.subject, spec.charset.lower(), subj_enc)), ("Message-ID", f"<{mid}>"),
        ]  # fmt: skip
        raw = _render(headers, _text_entity(spec.text, "plain", spec.charset, spec.cte))
        labels = self._labels("Inbox", False)
        first = GeneratedMessage(
            raw, "charset", False, "Inbox", mid, None, ctx.key, None, variant, labels, ts, p.addr
        )
        paras = spec.text.split("\n\n")[1:-1]
        ctx.prev = _Prev(
            p.name, p.addr, p.header, ME, ts, p.tz, spec.subject, mid, [], spec.text, None, paras
        )
        ctx.turns = 1
        if rng.random() < 0.6:
            return [first]
        ctx.ts += rng.randrange(600, 86400)
        return [first, self._alex_turn(ctx, paras=[rng.choice(spec.replies)])]

    # -- hard cases -----------------------------------------------------------------------------------

    def _oneoff(self, me: bool, client: str = "") -> tuple[_Ctx, GeneratedMessage]:
        ctx = self._new_ctx("work" if self.rng.random() < 0.7 else "personal")
        ctx.alias = False
        if me:
            return ctx, self._alex_turn(ctx, client=client)
        return ctx, self._other_turn(ctx, ctx.people[0])

    def _mutate(self, msg: GeneratedMessage, case: str, header: str, value: str | None) -> GeneratedMessage:
        raw = _set_header(msg.raw, header, value)
        kind = (
            "no_headers"
            if case.startswith("missing_")
            else ("broken" if case == "garbage_date" else msg.kind)
        )
        mid = None if case == "missing_message_id" else msg.message_id
        return replace(msg, raw=raw, kind=kind, hard_case=case, message_id=mid)

    def _h_missing(self, header: str, case: str) -> list[GeneratedMessage]:
        _, msg = self._oneoff(self._alternate(case))
        return [self._mutate(msg, case, header, None)]

    def _h_garbage_date(self) -> list[GeneratedMessage]:
        _, msg = self._oneoff(self._alternate("garbage_date"))
        value = self.rng.choice(
            (
                "sometime last tuesday",
                "32 Foo 2021 25:61:00 +9999",
                "Mon, 2 Jan 0000 00:00:00",
                str(msg.timestamp),
                "2023-13-45T99:99:99",
                "Tue, 31 Feb 2023 10:00:00 GMT+25",
            )
        )
        return [self._mutate(msg, "garbage_date", "Date", value)]

    def _h_duplicate(self) -> list[GeneratedMessage]:
        out = []
        original = self.last_sent
        if original is None:
            _, original = self._oneoff(True)
            out.append(original)
        copy = replace(original, folder="Archive", hard_case="duplicate", labels=("Archived",))
        return out + [copy]

    def _h_from_line(self) -> list[GeneratedMessage]:
        rng = self.rng
        ctx = self._new_ctx("work", rng.choice(("status", "review", "budget")))
        if self._alternate("from_line"):
            paras = [
                "From what I can tell, the numbers add up. {colleague} double-checked the totals.".format_map(
                    ctx.slots
                ),
                "From now on, let's keep the working copy in the shared folder\nso we don't lose edits.",
            ]
            msg = self._alex_turn(ctx, paras=paras, client=rng.choice(("iphone", "thunderbird")))
            return [replace(msg, hard_case="from_line", variant="from_line")]
        p = ctx.people[0]
        paras = [
            ">From the release notes: the v1 export API will be removed in {quarter}.".format_map(ctx.slots),
            "From my side that's fine, but we should tell the {team} team.".format_map(ctx.slots),
        ]
        return [self._plain_from(ctx, p, paras)]

    def _plain_from(self, ctx: _Ctx, p: _Person, paras: list[str]) -> GeneratedMessage:
        own = self._other_words(p, paras)
        mid = self._msgid(p.client, p.addr.split("@", 1)[1])
        headers = self._received(p.addr, ctx.ts) + [
            ("Date", _rfc_date(ctx.ts, p.tz)),
            ("From", p.header),
            ("To", ME),
            ("Subject", ctx.subject),
            ("Message-ID", f"<{mid}>"),
        ]
        raw = _render(headers, _simple_text(own))
        return GeneratedMessage(
            raw,
            "plain",
            False,
            "Inbox",
            mid,
            None,
            ctx.key,
            "from_line",
            "from_line_gt",
            self._labels("Inbox", False),
            ctx.ts,
            p.addr,
        )

    def _broken_base(self, who: str = "") -> tuple[_Ctx, _Person, list[tuple[str, str]], str]:
        ctx = self._new_ctx("work")
        p = _PEOPLE[who] if who else ctx.people[0]
        mid = self._msgid(p.client, p.addr.split("@", 1)[1])
        headers = self._received(p.addr, ctx.ts) + [
            ("Date", _rfc_date(ctx.ts, p.tz)),
            ("From", p.header),
            ("To", ME),
            ("Subject", ctx.subject),
            ("Message-ID", f"<{mid}>"),
        ]
        return ctx, p, headers, mid

    def _broken_msg(self, ctx: _Ctx, p: _Person, raw: bytes, mid: str, case: str) -> list[GeneratedMessage]:
        return [
            GeneratedMessage(
                raw,
                "broken",
                False,
                "Inbox",
                mid,
                None,
                ctx.key,
                case,
                case,
                self._labels("Inbox", False),
                ctx.ts,
                p.addr,
            )
        ]

    def _h_unclosed_boundary(self) -> list[GeneratedMessage]:
        ctx, p, headers, mid = self._broken_base()
        text = self._other_words(p, [self.rng.choice(ctx.topic.o1).format_map(ctx.slots)])
        blob = self._blob("pdf", 6000)
        cut = blob[: len(blob) // 2 - 13]  # the transfer was cut off mid-attachment
        entity = _multipart(
            "mixed",
            [_text_entity(text, "plain", "UTF-8", "7bit"), _attachment("application/pdf", "draft.pdf", cut)],
            self._boundary(),
            close=False,
        )
        return self._broken_msg(ctx, p, _render(headers, entity), mid, "unclosed_boundary")

    def _h_bad_base64(self) -> list[GeneratedMessage]:
        ctx, p, headers, mid = self._broken_base()
        text = self._other_words(p, [self.rng.choice(ctx.topic.o1).format_map(ctx.slots)])
        enc = _b64(text.encode())
        bad = enc[:20] + b"!!%%" + enc[20:-4] + b"\xe9*\n"  # junk characters, broken padding
        entity = _text_entity("", "plain", "UTF-8", "base64")
        return self._broken_msg(ctx, p, _render(headers, (entity[0], bad)), mid, "bad_base64")

    def _h_uuencode(self) -> list[GeneratedMessage]:
        ctx, p, headers, mid = self._broken_base()
        text = self._other_words(p, [self.rng.choice(ctx.topic.o1).format_map(ctx.slots)]).encode()
        lines = b"".join(binascii.b2a_uu(text[i : i + 45]) for i in range(0, len(text), 45))
        body = b"begin 644 message.txt\n" + lines + b"`\nend\n"
        hdr = "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: x-uuencode\n"
        return self._broken_msg(ctx, p, _render(headers, (hdr, body)), mid, "uuencode")

    def _h_raw_8bit_header(self) -> list[GeneratedMessage]:
        ctx, p, headers, mid = self._broken_base("tomas")
        headers = [
            (
                k,
                f"{p.name} <{p.addr}>"
                if k == "From"
                else "Revisión del presupuesto — año fiscal"
                if k == "Subject"
                else v,
            )
            for k, v in headers
        ]
        text = (
            "Hola Alex,\n\nTe mando la revisión del presupuesto. ¿Podemos hablar el jueves?\n\n"
            "Saludos,\nTomás"
        )
        raw = _render(headers, _text_entity(text, "plain", "UTF-8", "8bit"))
        return self._broken_msg(ctx, p, raw, mid, "raw_8bit_header")

    def _h_subject_8bit(self) -> list[GeneratedMessage]:
        ctx, p, headers, mid = self._broken_base("chloe")
        headers = [
            (
                k,
                f"Chlo\udce9 Dubois <{p.addr}>"
                if k == "From"
                else "R\udce9union de jeudi \udce0 10h"
                if k == "Subject"
                else v,
            )
            for k, v in headers
        ]
        text = "Bonjour Alex,\n\nLa réunion de jeudi est confirmée à 10h.\n\nBien à vous,\nChloé"
        raw = _render(headers, _text_entity(text, "plain", "iso-8859-1", "8bit"), codec="ascii")
        return self._broken_msg(ctx, p, raw, mid, "subject_8bit")

    def _h_long_line(self) -> list[GeneratedMessage]:
        ctx, p, headers, mid = self._broken_base()
        chunk = ",".join(f'"k{i}":{self.rng.randrange(100000)}' for i in range(120))
        line = ("{" + chunk * (100_000 // len(chunk) + 1))[:100_000] + "}"
        text = f"{p.greet}\n\nHere's the minified config that breaks the build:\n\n{line}\n\n{p.signoff}"
        raw = _render(headers, _simple_text(text))
        return [
            GeneratedMessage(
                raw,
                "plain",
                False,
                "Inbox",
                mid,
                None,
                ctx.key,
                "long_line",
                "long_line",
                self._labels("Inbox", False),
                ctx.ts,
                p.addr,
            )
        ]

    def _h_empty_body(self) -> list[GeneratedMessage]:
        ctx = self._new_ctx("work", "meeting")
        me = self._alternate("empty_body")
        p = ctx.people[0]
        tz, frm, addr = (_alex_tz(ctx.ts), ME, ME_ADDR) if me else (p.tz, p.header, p.addr)
        mid = self._msgid("gmail", addr.split("@", 1)[1])
        headers = [("Date", _rfc_date(ctx.ts, tz)), ("From", frm), ("To", p.header if me else ME),
                   ("Subject", "Call me when you get a chance"), ("Message-ID", f"<{mid}>")]  # fmt: skip
        raw = _render(headers, _text_entity("", "plain", "UTF-8", "7bit"))
        folder, own, case = ("Sent" if me else "Inbox"), ("" if me else None), "empty_body"
        labels, key = self._labels(folder, me), ctx.key
        return [GeneratedMessage(raw, "plain", me, folder, mid, own, key, case, case, labels, ctx.ts, addr)]

    def _huge(self, size: int) -> list[GeneratedMessage]:
        ctx = self._new_ctx("personal", "hike")
        ctx.people = [_PEOPLE["jamie"]]
        ctx.alias = False
        own = "Hi Jamie,\n\nHere's the video from Saturday. It's huge, sorry!\n\nCheers,\nAlex"
        ts, mid = ctx.ts, self._msgid("gmail", "example.org")
        headers = [
            ("Date", _rfc_date(ts, _alex_tz(ts))),
            ("From", ME),
            ("To", _PEOPLE["jamie"].header),
            ("Subject", "Video from Saturday"),
            ("Message-ID", f"<{mid}>"),
        ]
        payload = max(0, (size + 2000) * 57 // 77 + 57)
        blob = _b64(_MAGIC["mov"] + self.rng.randbytes(payload))
        entity = _multipart(
            "mixed",
            [
                _text_entity(own, "plain", "UTF-8", "7bit"),
                _attachment("video/quicktime", "IMG_4410.MOV", blob),
            ],
            self._boundary(),
        )
        raw = _render(headers, entity)
        return [
            GeneratedMessage(
                raw, "huge", True, "Sent", mid, own, ctx.key, None, "huge", ("Sent",), ts, ME_ADDR
            )
        ]

    _HARD: dict[str, Callable[[_Gen], list[GeneratedMessage]]] = {
        "missing_date": lambda g: g._h_missing("Date", "missing_date"),
        "missing_from": lambda g: g._h_missing("From", "missing_from"),
        "missing_message_id": lambda g: g._h_missing("Message-ID", "missing_message_id"),
        "garbage_date": lambda g: g._h_garbage_date(),
        "duplicate": lambda g: g._h_duplicate(),
        "from_line": lambda g: g._h_from_line(),
        "unclosed_boundary": lambda g: g._h_unclosed_boundary(),
        "bad_base64": lambda g: g._h_bad_base64(),
        "uuencode": lambda g: g._h_uuencode(),
        "raw_8bit_header": lambda g: g._h_raw_8bit_header(),
        "subject_8bit": lambda g: g._h_subject_8bit(),
        "long_line": lambda g: g._h_long_line(),
        "empty_body": lambda g: g._h_empty_body(),
    }


def _set_header(raw: bytes, name: str, value: str | None) -> bytes:
    """Replace (or, with None, delete) a top-level header, folded continuation lines included."""
    nl = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
    end = raw.find(nl + nl)
    head, body = (raw, b"") if end < 0 else (raw[: end + len(nl)], raw[end + len(nl) :])
    pat = re.compile(rb"^" + re.escape(name.encode()) + rb":[^\n]*\n(?:[ \t][^\n]*\n)*", re.I | re.M)
    new = b"" if value is None else f"{name}: {value}".encode() + nl
    return pat.sub(lambda _: new, head, count=1) + body


# --- public API ----------------------------------------------------------------------------------------


def iter_messages(n: int, seed: int = 0, **kw: object) -> Iterator[GeneratedMessage]:
    """Stream ``n`` messages in constant memory (kw: hard_cases, huge_bytes as for generate_messages)."""
    hard = bool(kw.pop("hard_cases", True))
    huge = int(kw.pop("huge_bytes", 0))  # type: ignore[call-overload]
    bulk = bool(kw.pop("_bulk", False))
    span_n = int(kw.pop("_span_n", 0))  # type: ignore[call-overload]
    if kw:
        raise TypeError(f"unexpected arguments: {', '.join(kw)}")
    return iter(_Gen(n, seed, hard, huge, bulk, span_n))


def generate_messages(
    n: int, seed: int = 0, *, hard_cases: bool = True, huge_bytes: int = 0
) -> list[GeneratedMessage]:
    """``n`` messages of Alex Morgan's mailbox, byte-identical for a given seed.

    ``huge_bytes`` > 0 makes one of them (half-way through) a message of at least that many bytes.
    """
    return list(iter_messages(n, seed, hard_cases=hard_cases, huge_bytes=huge_bytes))
