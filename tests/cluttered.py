"""A generated mailbox whose subjects carry what real mail piles up: reply chains, list tags, gateway markers."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import mailgen as gen

# Put in front of every subject in turn, as list servers, gateways and mail clients do over a long thread.
CLUTTER = (
    "[hikers] Re: [EXTERN] Re: Re: ",
    "RE: FW: [List] ",
    "*EXTERNAL* AW: WG: ",
    "Re[2]: [team-list] Fwd: ",
    "[EXTERNAL] SV: Antw: Odp: ",
)
# Any of it, anywhere in a text meant for a model.
LEFTOVER = re.compile(
    r"\[(?:hikers|EXTERN|EXTERNAL|List|team-list)\]|\*EXTERNAL\*"
    r"|(?<![\w'])(?:Re|RE|FW|Fwd|AW|WG|SV|Antw|Odp)(?:\[\d+\])?:(?=\s)"
)


def _with_clutter(raw: bytes, clutter: str) -> bytes:
    """``raw`` with ``clutter`` before its Subject header's value (the body, quoted headers included, is kept)."""
    ends = [i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0]
    split = min(ends) if ends else len(raw)
    head = re.sub(rb"(?mi)^Subject:[ \t]*", b"Subject: " + clutter.encode(), raw[:split], count=1)
    return head + raw[split:]


def write_cluttered_mbox(path: Path, n: int = 150, seed: int = 11) -> Path:
    """An mbox of ``n`` generated messages, each subject behind one of :data:`CLUTTER`."""
    messages = gen.generate_messages(n, seed=seed)
    gen.write_mbox(
        path,
        (dataclasses.replace(m, raw=_with_clutter(m.raw, CLUTTER[i % len(CLUTTER)])) for i, m in enumerate(messages)),
    )
    return path
