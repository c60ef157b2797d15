"""Charsets that are 7-bit on the wire (ISO-2022-JP, UTF-7) are decoded, not stored as escape sequences."""

from __future__ import annotations

import mailgen as gen

from assistant.importer import import_paths
from assistant.mail.charset import decode_bytes, decode_header
from assistant.mail.parse import parse_message

JAPANESE = "来週の打ち合わせについて"


def test_iso_2022_jp_text_and_headers_are_decoded():
    raw = JAPANESE.encode("iso2022_jp")
    assert raw.isascii()  # why it slipped through: the bytes are ASCII escape sequences
    assert decode_bytes(raw, "ISO-2022-JP") == (JAPANESE, "")
    assert decode_bytes(raw)[0] == JAPANESE  # unlabelled: the escape sequences give it away
    assert (
        decode_header("=?iso-2022-jp?B?GyRCRU9KVRsoQiAbJEI3ckZzGyhC?= <k@example.org>") == "渡辺 健二 <k@example.org>"
    )
    assert decode_bytes(b"Hi +AGEAYgBj-", "utf-7") == ("Hi abc", "")
    assert decode_bytes(b"Plain text, 7 bits", None) == ("Plain text, 7 bits", "")


def test_a_japanese_message_is_stored_in_japanese(db, tmp_path):
    message = (
        b"From: =?ISO-2022-JP?B?GyRCRU9KVRsoQiAbJEI3ckZzGyhC?= <kenji@example.org>\n"
        b"To: alex@example.org\nSubject: =?ISO-2022-JP?B?" + _b64(JAPANESE) + b"?=\n"
        b"Date: Wed, 24 Aug 2022 22:11:03 +0900\nMessage-ID: <jp1@example.org>\nMIME-Version: 1.0\n"
        b"Content-Type: text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: 7bit\n\n"
        + "木曜日の午後は空いていますか？\n".encode("iso2022_jp")
    )
    parsed = parse_message(message)
    assert (parsed.from_name, parsed.subject) == ("渡辺 健二", JAPANESE)
    assert parsed.text.strip() == "木曜日の午後は空いていますか？"
    path = tmp_path / "mail.mbox"
    gen.write_mbox(path, gen.generate_messages(400, seed=7))
    import_paths(db, [path], me=[gen.ME_ADDR])
    rows = db.execute("SELECT from_name, subject, body FROM messages WHERE from_addr LIKE 'kenji%'").fetchall()
    assert rows and not any("\x1b" in "".join(r) for r in rows)
    assert any(name == "渡辺 健二" for name, _s, _b in rows)


def _b64(text: str) -> bytes:
    import base64

    return base64.b64encode(text.encode("iso2022_jp"))
