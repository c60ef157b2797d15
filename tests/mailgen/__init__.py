"""Deterministic generator of realistic synthetic mailboxes: test fixtures, benchmarks and the demo mailbox.

One small, coherent world: the owner Alex Morgan, about thirty correspondents, a few mailing lists,
newsletters and no-reply services. Conversations carry proper Message-ID / In-Reply-To / References
chains and are quoted in the styles real clients use (Gmail, Apple Mail, Outlook, Thunderbird, German
Gmail, inline answers). Alex's own words are recorded in ``own_text`` so a cleaner can be scored.

With ``hard_cases`` the stream also holds what real archives contain: missing or garbage headers,
duplicates, ``From `` body lines, broken MIME, 8-bit header bytes, mislabelled charsets, 100 KB lines
and empty bodies. Everything is stdlib only and byte-identical for a given seed. Messages are assembled
as bytes by hand (no ``email.message`` objects), so the stream runs at thousands of messages a second.

``world`` holds the people, topics and tables, ``builder`` makes the messages, ``writers`` puts them on disk.
Tests import it as ``mailgen`` (tests/ is on the path); ``python tests/mailgen --demo PATH`` writes the demo
mailbox that ``mailvoice demo`` ships (``resources/demo/alex-morgan.mbox.gz``).
"""

from __future__ import annotations

from mailgen.builder import generate_messages, iter_messages
from mailgen.world import HARD_CASES, KINDS, ME, ME_ADDR, ME_ALIAS, ME_ALIAS_FULL, ME_NAME, GeneratedMessage
from mailgen.writers import (
    write_demo_mailbox,
    write_eml_folder,
    write_enron_folder,
    write_maildir,
    write_mbox,
    write_mbox_bytes_target,
)

__all__ = [
    "ME", "ME_NAME", "ME_ADDR", "ME_ALIAS", "ME_ALIAS_FULL", "KINDS", "HARD_CASES", "GeneratedMessage",
    "generate_messages", "iter_messages", "write_mbox", "write_maildir", "write_eml_folder",
    "write_enron_folder", "write_mbox_bytes_target", "write_demo_mailbox",
]  # fmt: skip
