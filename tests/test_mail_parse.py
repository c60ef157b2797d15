"""Parsing single messages: headers in any encoding, charsets that lie, HTML, attachments."""

from __future__ import annotations

from assistant.mail.charset import decode_bytes, decode_header, normalize_charset
from assistant.mail.html import html_to_text
from assistant.mail.parse import parse_message


def msg(headers: str, body: bytes = b"Hello\n") -> bytes:
    return headers.strip().replace("\n", "\r\n").encode() + b"\r\n\r\n" + body


def test_rfc2047_subject_split_over_two_words_and_name():
    raw = msg(
        "From: =?iso-8859-1?Q?Ren=E9e_Dupr=E9?= <renee@example.com>\n"
        "Subject: =?utf-8?B?w4dhIHZh?=\n =?utf-8?B?IGJpZW4g8J+Yig==?=\n"
        "Message-ID: <1@example.com>"
    )
    m = parse_message(raw)
    assert m.subject == "Ça va bien 😊"
    assert (m.from_name, m.from_addr) == ("Renée Dupré", "renee@example.com")


def test_raw_8bit_header_bytes_are_decoded():
    raw = "From: a@example.com\r\nSubject: Grüße aus Köln\r\n\r\nhi\r\n".encode()
    assert parse_message(raw).subject == "Grüße aus Köln"


def test_mislabelled_utf8_body_is_recovered():
    raw = msg(
        "From: a@example.com\nContent-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 8bit",
        "Café à côté".encode(),
    )
    m = parse_message(raw)
    assert m.text == "Café à côté"
    assert m.notes == ["labelled us-ascii but is UTF-8"]


def test_windows_1252_labelled_latin1():
    text, note = decode_bytes("“quoted” – dash".encode("cp1252"), "iso-8859-1")
    assert text == "“quoted” – dash" and note == ""


def test_unknown_charset_label_falls_back_to_a_guess():
    letter = "Привет, Оля! Как дела? У нас всё хорошо, погода отличная, дети в школе. Пиши, когда сможешь. "
    text, note = decode_bytes((letter * 3).encode("koi8-r"), "x-unknown")
    assert "Привет" in text and "guessed" in note


def test_charset_aliases():
    assert normalize_charset("ks_c_5601-1987") == "cp949"
    assert normalize_charset("GB2312") == "gb18030"
    assert normalize_charset("no-such-charset") == ""


def test_prefers_plain_over_html_and_lists_attachments():
    raw = msg(
        'From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="B"',
        b'--B\r\nContent-Type: multipart/alternative; boundary="C"\r\n\r\n'
        b"--C\r\nContent-Type: text/plain\r\n\r\nplain words\r\n"
        b"--C\r\nContent-Type: text/html\r\n\r\n<p>html words</p>\r\n--C--\r\n"
        b'--B\r\nContent-Type: application/pdf; name="r.pdf"\r\nContent-Disposition: attachment; '
        b"filename*=utf-8''R%C3%A9sum%C3%A9.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--B--\r\n",
    )
    m = parse_message(raw)
    assert m.text == "plain words"
    assert m.has_html
    assert m.attachments == ["Résumé.pdf"]


def test_html_only_becomes_readable_text():
    html = (
        "<html><head><style>p{color:red}</style></head><body><p>Hi Sam,</p><p>Two things:</p>"
        "<ul><li>the <b>budget</b></li><li>the <a href='https://example.com/plan'>plan</a></li></ul>"
        "<p>Best,<br>Alex</p><blockquote><p>Earlier message</p></blockquote></body></html>"
    )
    assert html_to_text(html) == (
        "Hi Sam,\n\nTwo things:\n\n- the budget\n- the plan (https://example.com/plan)\n\nBest,\nAlex\n\n"
        "> Earlier message"
    )


def test_broken_mime_and_missing_headers_do_not_raise():
    raw = msg('Content-Type: multipart/mixed; boundary="X"', b"--X\r\nContent-Type: text/plain\r\n\r\nno end")
    m = parse_message(raw)
    assert m.text == "no end"
    assert m.message_id is None and m.date is None and m.from_addr == ""


def test_garbage_date_is_noted_not_fatal():
    m = parse_message(msg("From: a@example.com\nDate: the day after tomorrow"))
    assert m.date is None and "unreadable Date header" in m.notes


def test_date_is_normalised_to_utc():
    m = parse_message(msg("From: a@example.com\nDate: Tue, 3 Mar 2020 10:01:00 +0100"))
    assert m.date == "2020-03-03T09:01:00+00:00"


def test_decode_header_keeps_malformed_encoded_words():
    assert decode_header("=?utf-8?B?not base64!?=") == "=?utf-8?B?not base64!?="


def test_dates_of_the_usual_shape_are_read_as_the_standard_library_reads_them():
    """The shortcut for "Tue, 3 Mar 2020 10:01:00 +0100" gives parsedate_to_datetime's instant; what it leaves
    (two-digit years, zone names, days out of range) is read, or refused with a note, the standard way."""
    import datetime as dt
    import email.utils
    import random

    from assistant.mail.parse import _date, _plain_date

    rnd = random.Random(5)
    shortcut = 0
    for _ in range(3000):
        text = rnd.choice(["Tue, ", "tue,", ",", "", "Tue,"]) + rnd.choice([" ", "  ", "\t"]).join([
            rnd.choice(["1", "03", "31", "30", "0", "99"]), rnd.choice(["Mar", "mar", "FEB", "March", "Xyz"]),
            rnd.choice(["2020", "1999", "0099", "20", "9999"]), rnd.choice(["10:01:00", "0:00:00", "24:00:00"]),
            rnd.choice(["+0100", "-0000", "+0000", "-0530", "+0099", "+2400", "GMT", "+01000"]),
        ]) + rnd.choice(["", " (CET)", "  "])  # fmt: skip
        quick = _plain_date(text)
        if quick is None:
            continue
        shortcut += 1
        standard = email.utils.parsedate_to_datetime(text)
        assert quick.replace(tzinfo=None) == standard.replace(tzinfo=None), text
        assert quick.utcoffset() == (standard.utcoffset() or dt.timedelta(0)), text
    assert shortcut > 150
    notes: list[str] = []
    assert _date("Sat, 30 Feb 2020 10:01:00 +0100", notes) is None and notes == ["unreadable Date header"]
    assert _date("Tue, 3 Mar 20 10:01:00 EST", []) == "2020-03-03T15:01:00+00:00"


def test_implausible_dates_are_dropped_with_a_note():
    m = parse_message(msg("From: a@example.com\nDate: Thu, 1 Jan 1970 00:00:00 +0000"))
    assert m.date is None and m.notes == ["implausible Date 1970-01-01 ignored"]
    assert parse_message(msg("From: a@example.com\nDate: Mon, 1 Jan 3609 10:00:00 +0000")).date is None


def test_format_flowed_part_is_joined_into_the_lines_people_typed():
    # As Thunderbird sends it: flowed soft breaks (" " before the line end) written in quoted-printable,
    # which has soft breaks of its own ("=" at the line end).
    raw = msg(
        "From: a@example.com\nContent-Type: text/plain; charset=utf-8; format=flowed\n"
        "Content-Transfer-Encoding: quoted-printable",
        b"I can't=20\r\nremem=\r\nber which one it was,=20\r\nsorry.\r\n\r\n> Was it the=20\r\n> blue one?\r\n"
        b"--=20\r\nJo",
    )
    assert parse_message(raw).text == "I can't remember which one it was, sorry.\n\n> Was it the blue one?\n-- \nJo"


def test_format_flowed_delsp_yes_is_honoured():
    raw = msg(
        'From: a@example.com\nContent-Type: text/plain; charset="utf-8"; format="flowed"; delsp="yes"',
        b"Lange Zeile mit Umbruch  \r\nhier.\r\n",
    )
    assert parse_message(raw).text == "Lange Zeile mit Umbruch hier."


def test_fixed_text_keeps_its_line_breaks():
    raw = msg("From: a@example.com\nContent-Type: text/plain; charset=utf-8", b"Line one \r\nline two\r\n")
    assert parse_message(raw).text == "Line one \nline two"


def test_footer_part_is_read_as_text_for_cleaning_to_drop():
    # The footer part is parsed like any text part; clean_body is where it leaves (tests/test_footers.py).
    raw = msg(
        'From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="B"',
        b"--B\r\nContent-Type: text/plain; format=flowed\r\n\r\nSee you \r\nthere.\r\n"
        b"--B\r\nContent-Type: text/plain\r\n\r\n_____\r\nX mailing list -- x@lists.example.org\r\n"
        b"To unsubscribe send an email to x-leave@lists.example.org\r\n--B--\r\n",
    )
    assert parse_message(raw).text.startswith("See you there.\n\n_____\nX mailing list")


def test_quoted_names_with_commas_are_read_without_the_slow_parser():
    raw = msg(
        'From: "Koenig, Christian" <Christian.Koenig@AMD.com>\n'
        'Cc: "Vetter, Daniel" <daniel@ffwll.ch>, Jo <jo@example.com>, ann@example.com, "" <x@example.com>\n'
        'To: "Doe \\"JD\\" Jo" <jd@example.com>, c@example.com'
    )
    m = parse_message(raw)
    assert (m.from_name, m.from_addr) == ("Koenig, Christian", "christian.koenig@amd.com")
    assert m.cc == [
        ("Vetter, Daniel", "daniel@ffwll.ch"), ("Jo", "jo@example.com"), ("", "ann@example.com"), ("", "x@example.com")
    ]  # fmt: skip
    assert m.to == [('Doe "JD" Jo', "jd@example.com"), ("", "c@example.com")]  # escaped quotes: the stdlib reads it


# --- the compat32 parser without a pattern compiled per boundary (assistant.mail.feed) ----------------------


def _tree(m):
    """Everything the parser decides about a message: headers, defects, preamble, epilogue, parts, payloads."""
    payload = [_tree(p) for p in m.get_payload()] if m.is_multipart() else m._payload
    kinds = [type(d).__name__ for d in m.defects]
    return (m.get_unixfrom(), m._headers, kinds, m.preamble, m.epilogue, m.get_content_type(), payload)


BOUNDARY_CASES = [
    # regular-expression characters in the boundary, a close boundary with blanks after it, a near miss
    msg(
        'From: a@example.com\nContent-Type: multipart/mixed; boundary="a.b+c*(d)?[e]$^|"',
        b"pre\r\n--a.b+c*(d)?[e]$^|\r\n\r\none\r\n--a.b+c*(d)?[e]$^|X not a boundary\r\n"
        b"--a.b+c*(d)?[e]$^|--  \t\r\nepilogue\r\n",
    ),
    # nested multiparts, LF line ends, a boundary line with trailing blanks, no close boundary
    b'From: a@example.com\nContent-Type: multipart/mixed; boundary="out"\n\n--out\nContent-Type: multipart/'
    b'alternative; boundary="in"\n\n--in \nContent-Type: text/plain\n\nplain\n--in\nContent-Type: text/html\n\n'
    b"<p>html</p>\n--in--\n--out\nContent-Type: text/plain\n\nlast\n",
    # CR line ends, a boundary that is a prefix of another line, an empty part, a missing boundary parameter
    b"From: a@example.com\rContent-Type: multipart/mixed; boundary=xy\r\r--xy\r\r--xyz\r--xy--\r",
    msg("From: a@example.com\nContent-Type: multipart/mixed", b"no boundary given\r\n"),
    msg("From: a@example.com\nContent-Type: message/rfc822", b"From: b@example.com\r\nSubject: inner\r\n\r\nhi\r\n"),
    # header oddities: a continuation first, a line with no name, a misplaced envelope line, no blank line after
    b" folded first\nFrom: a@example.com\n: no name\nFrom x@y Mon Jan  1 00:00:00 2001\nSubject: s\nbody at once\n",
    b"From x@y Mon Jan  1 00:00:00 2001\nFrom: a@example.com\nSubject: s\n \tfolded\n\tagain\n\nbody\x0cline\n",
    # a "From " line last among the headers (the standard parser reads it as the body's first line)
    b"From: a@example.com\nFrom x@y Mon Jan  1 00:00:00 2001\n\nbody\n",
    # a digest, a delivery report, a start boundary never seen, a close boundary never seen, an encoded multipart
    b'From: a@example.com\nContent-Type: multipart/digest; boundary="d"\n\npre\n--d\n\nSubject: one\n\n1\n'
    b"--d\nContent-Type: text/plain\n\nnot a message\n--d--\n\n\nepilogue\n",
    b'From: a@example.com\nContent-Type: multipart/report; boundary="r"\n\n--r\nContent-Type: message/delivery-status'
    b"\n\nReporting-MTA: dns; x\n\nFinal-Recipient: rfc822; b@example.com\nAction: failed\n--r--\n",
    b'From: a@example.com\nContent-Type: multipart/mixed; boundary="s"\n\nno boundary at all\n--s--\nafter\n',
    b'From: a@example.com\nContent-Type: multipart/mixed; boundary="c"\nContent-Transfer-Encoding: base64\n\n'
    b'--c\n--c\n\n--c\nContent-Type: multipart/alternative; boundary="c2"\n\n--c2\n\nx\n--c--\n',
    # an inner boundary that is an outer one's prefix, and an empty part at the end of input
    b'From: a@example.com\nContent-Type: multipart/mixed; boundary="ab"\n\n--ab\nContent-Type: multipart/mixed; '
    b'boundary="a"\n\n--a\n\ninner\n--ab\n\nouter\n--ab--',
    b'From: a@example.com\nContent-Type: multipart/mixed; boundary="e"\n\n--e\n',
    b'Content-Type: multipart/mixed; boundary="=?x:y"\n\n--=?x:y\nContent-Type: text/plain\n\nx\r\n--=?x:y--\r',
    msg('From: a@example.com\nContent-Type: text/plain; charset="utf-8"\nContent-type: text/html', b"two types"),
    "From: a@example.com\nContent-Type: téxt/plain\n\n8-bit type\n".encode(),
]


def test_the_faster_parser_makes_the_standard_librarys_messages(corpora):
    """Generated mail of every kind, the hard cases above and the shared corpora's files parse to the very same
    message trees as with email.message_from_bytes."""
    import email

    import mailgen as gen

    from assistant.mail.feed import message_from_bytes

    raws = [m.raw for m in gen.iter_messages(400, seed=11)] + BOUNDARY_CASES
    files = sorted(corpora.rglob("*.eml"))[:400] + [p for p in sorted(corpora.rglob("*")) if not p.suffix][::40]
    raws += [p.read_bytes() for p in files if p.is_file() and p.stat().st_size < 1_000_000]
    multipart = 0
    for raw in raws:
        mine = message_from_bytes(raw)
        assert _tree(mine) == _tree(email.message_from_bytes(raw)), raw[:200]
        multipart += mine.is_multipart()
    assert multipart > 50


def test_whole_messages_are_parsed_without_the_standard_parser_and_nesting_ends_where_it_ends():
    """Common mail (all but delivery reports) never reaches the fallback; nesting past what the list-based
    parser takes gives the standard parser's tree, or its RecursionError, all the same."""
    import email

    import mailgen as gen
    import pytest

    from assistant.mail import feed

    for m in gen.iter_messages(200, seed=3):
        if b"delivery-status" in m.raw:  # delivery reports are left to the standard parser
            continue
        parsed = feed._WholeParser(m.raw.decode("ascii", "surrogateescape")).parse()
        assert _tree(parsed) == _tree(email.message_from_bytes(m.raw))
    for depth in (feed._MAX_DEPTH, feed._MAX_DEPTH + 5):
        nested = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(depth))
        assert _tree(feed.message_from_bytes(nested + b"x\n")) == _tree(email.message_from_bytes(nested + b"x\n"))
    deep = b"Content-Type: message/rfc822\n\n" * 3000 + b"Subject: x\n\nbody\n"
    with pytest.raises(RecursionError):
        email.message_from_bytes(deep)
    with pytest.raises(RecursionError):
        feed.message_from_bytes(deep)


def test_a_remembered_content_type_follows_changes_to_the_headers():
    from assistant.mail.feed import message_from_bytes

    m = message_from_bytes(msg("From: a@example.com\nContent-Type: text/html"))
    assert m.get_content_type() == "text/html"
    m.replace_header("Content-Type", "text/plain")
    assert m.get_content_type() == "text/plain"
    del m["Content-Type"]
    assert m.get_content_type() == "text/plain" and m.get_default_type() == "text/plain"
    m.set_default_type("message/rfc822")
    assert m.get_content_type() == "message/rfc822"
    m["Content-Type"] = "image/png"
    assert m.get_content_type() == "image/png"
    m.set_type("text/csv")
    assert m.get_content_type() == "text/csv"


def test_header_look_ups_follow_changes_to_the_headers():
    """get and ``in`` answer from an index of the header names; every way Message changes its headers is seen."""
    import email.message

    from assistant.mail.feed import message_from_bytes

    m = message_from_bytes(msg("From: a@example.com\nX-One: 1\nx-one: 2\nSubject: s"))

    def same() -> None:
        for name in ("x-one", "X-ONE", "subject", "x-two", "content-type", "from"):
            assert m.get(name, "none") == email.message.Message.get(m, name, "none")
            assert (name in m) == email.message.Message.__contains__(m, name)

    same()
    m.replace_header("X-One", "changed")
    same()
    del m["x-one"]
    m["X-Two"] = "2"
    same()
    m.add_header("X-One", "3")
    m.set_param("charset", "utf-8")
    same()
    m._headers = [("X-Two", "only")]
    same()


def test_repeated_headers_are_worked_out_once_and_come_out_the_same(monkeypatch):
    """The charset guess and the address list are remembered for short values: the same 8-bit sender name in
    every message costs one guess, and a caller changing a parsed list does not change the next message's."""
    import charset_normalizer

    from assistant.mail import charset

    charset._guess_short.cache_clear()
    calls = []
    real = charset_normalizer.from_bytes
    monkeypatch.setattr(charset_normalizer, "from_bytes", lambda data: calls.append(data) or real(data))
    raw = b"From: Chlo\xe9 Dubois <chloe@example.com>\r\nTo: a@example.com, b@example.com\r\n\r\nhi\r\n"
    first, second = parse_message(raw), parse_message(raw)
    assert len(calls) == 1 and first.from_name == second.from_name != ""
    first.to.append(("x", "x@example.com"))
    assert parse_message(raw).to == [("", "a@example.com"), ("", "b@example.com")]


def test_the_boundary_is_read_as_the_standard_library_reads_it():
    """get_boundary's shortcut (no RFC 2231 decoding where none can apply) gives the standard answer on quoted,
    bare, bracketed, blank and missing values; RFC 2231 and escaped values take the standard code."""
    import email.message
    import random

    from assistant.mail.feed import _Message

    values = [
        'multipart/mixed; boundary="<a>"', "multipart/mixed; boundary=<a>", 'multipart/mixed; boundary="a;b"; x=1',
        'multipart/mixed; boundary=""', 'multipart/mixed; boundary="  a  "', "boundary=x", "multipart/a;boundary=b  ",
        'multipart/mixed; BOUNDARY="Q"', 'multipart/a; boundary = "q q" ', 'multipart/x; x="a;boundary=b"; boundary=c',
        "multipart/mixed; boundary*=utf-8''x", 'multipart/mixed; boundary="a\\"b"', "multipart/mixed; boundary",
        "multipart/mixed; boundary=", ";;;boundary=z;;", 'multipart/mixed; boundary="<<a>>"', "multipart/mixed", "",
        'multipart/mixed; boundary="é"', 'multipart/mixed; boundary="a"b"c"',
    ]  # fmt: skip
    rnd = random.Random(2)
    values += ["multipart/x; " + "".join(rnd.choice(' ;="<>ab\\*\t') for _ in range(12)) + "boundary=" + "".join(
        rnd.choice(' ;="<>ab\\*\t') for _ in range(6)) for _ in range(2000)]  # fmt: skip
    for value in values:
        m = _Message()
        m["Content-Type"] = value
        m["content-type"] = "multipart/mixed; boundary=second"  # only the first one counts
        assert m.get_boundary("none") == email.message.Message.get_boundary(m, "none"), value
    assert _Message().get_boundary("none") == "none"
