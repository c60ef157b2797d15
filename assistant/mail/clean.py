"""Split one email body into the author's own words, quoted/forwarded material and the signature block.

The style model must learn from what the user actually typed, so replies' quoted history, forwarded
messages, contact blocks, mobile footers and legal disclaimers are moved out of ``text``. Mailing-list
footers are dropped everywhere, quotes included (``assistant.mail.footers``), no-break spaces become
spaces and line ends lose their blanks. The sign-off ("Best,\\nJohn") stays in ``text``: how someone
signs is part of their voice.

Heuristics are deliberately conservative: when unsure, a line stays in ``text``. Everything here runs
once per imported message, so the common case (nothing to strip) costs one regex pass over the body and
a look at its last lines for a sign-off; per-line work happens only on the few lines a scan points at.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass

from assistant.mail.footers import strip_footers

__all__ = ["CleanedBody", "clean_body", "is_forward_subject"]


@dataclass(frozen=True, slots=True)
class CleanedBody:
    text: str  # the author's own words, sign-off included
    quoted: str  # quoted, replied-to or forwarded material, raw lines ("> " markers kept)
    signature: str  # signature block, mobile footer and disclaimers after the sign-off
    is_forward: bool


_TEXT, _QUOTED, _SIG = 0, 1, 2

# --- regex building blocks -------------------------------------------------------------------------

_ORIGINAL = (
    r"Original Message|Ursprüngliche Nachricht|Originalnachricht|Message d'origine|Mensaje original"
    r"|Messaggio originale|Oorspronkelijk bericht|Mensagem original|Original meddelelse"
    r"|Ursprungligt meddelande|Opprinnelig melding|Alkuperäinen viesti|Wiadomość oryginalna"
    r"|Исходное сообщение|Původní zpráva"
)
_FORWARDED = (
    r"Forwarded message|Forwarded Message|Weitergeleitete Nachricht|Message transféré"
    r"|Mensaje reenviado|Messaggio inoltrato|Doorgestuurd bericht|Mensagem encaminhada"
    r"|Videresendt melding|Videresendt meddelelse|Vidarebefordrat meddelande|Välitetty viesti"
    r"|Wiadomość przekazana dalej|Пересылаемое сообщение|Přeposlaná zpráva|转发的邮件|已转发邮件"
)
_FORWARD_INTRO = (
    r"Begin forwarded message|Début du message réexpédié|Anfang der weitergeleiteten Nachricht"
    r"|Inicio del mensaje reenviado|Início da mensagem reencaminhada|Inizio messaggio inoltrato"
)
# Header labels of Outlook-style quoted blocks, per language.
_L_FROM = r"From|Von|De|Da|Van|Från|Fra|Od|От|Lähettäjä|Feladó|Kimden|Remitente|Expéditeur|发件人|寄件者|差出人"
_L_SENT = (
    r"Sent|Date|Gesendet|Datum|Envoyé|Enviado|Fecha|Inviato|Data|Verzonden|Skickat|Sendt|Wysłano"
    r"|Отправлено|Дата|Lähetetty|Päivämäärä|Gönderildi|Tarih|发送时间|日期|寄件日期|送信日時"
)
_L_TO = r"To|An|À|A|Para|Aan|Till|Til|Do|Кому|Vastaanottaja|Kime|收件人|宛先"
_L_CC = r"Cc|Kopie|Copie|CC"
_L_SUBJECT = r"Subject|Betreff|Objet|Asunto|Oggetto|Onderwerp|Ämne|Emne|Temat|Тема|Aihe|Konu|Assunto|主题|主旨|件名"


def _label(names: str) -> str:
    # Labels may be bolded by the HTML converter ("*From:*") and French puts a space before the colon.
    return rf"\*{{0,2}}(?:{names})\*{{0,2}}[ \t\u00a0]?[:：]"


# The optional AM/PM carries its own leading blanks: two adjacent [ \t]* would backtrack quadratically.
_US_DATE = r"\d{1,2}/\d{1,2}/\d{2,4}[ \t]+\d{1,2}:\d{2}(?::\d{2})?(?:[ \t]*[AaPp][Mm])?"

_MOBILE = (
    r"Sent (?:from|with|via) |Get Outlook for |Von meinem |Gesendet von |Envoyé de |Envoyé depuis "
    r"|Enviado desde |Enviado do |Inviato da |Verzonden (?:vanaf|met) |Skickat från |Sendt fra |Lähetetty "
    r"|Отправлено (?:с|из) |发自我的"
)
# Case variants are spelled out so that every branch starts with a literal, which the regex engine
# rejects with one comparison; a case-insensitive branch costs a full attempt at every line start.
_DISCLAIMER = (
    r"(?:This|THIS) (?i:e-?mail|message|communication|transmission)|(?:The|THE) (?i:information|contents)"
    r"|Confidential|CONFIDENTIAL|Privileged|PRIVILEGED|Disclaimer|DISCLAIMER"
    r"|(?:Legal|LEGAL|Important|IMPORTANT) (?i:notice)|(?:Notice|NOTICE):"
    r"|(?:If|IF) (?i:you (?:are not|have received))"
    r"|(?:Any|ANY) (?i:views)|Diese (?i:e-?mail|nachricht)|Ce (?i:message|courriel|e-?mail)"
    r"|Este (?i:mensaje|correo)|Please consider the environment"
)

# Whole-body scans look only for cheap hints at line starts; the few lines they find are then
# classified by the precise per-line patterns below. The scans run over "\n" + body + "\n": a leading
# "\n" anchors a line start and lets the engine jump from newline to newline.
_CUT_HINTS = rf"--|_{{10}}|\*|\d\d?/\d\d?/\d|(?:{_L_FROM})[ \t\u00a0]?[:：]|{_FORWARD_INTRO}"
_SIG_HINTS = rf"--|{_MOBILE}|{_DISCLAIMER}"
# "(?![ \t])" stops the engine from retrying every alternative with fewer leading blanks (a possessive
# "*+" would say the same, but needs Python 3.11).
_CUT_HINT_RE = re.compile(rf"\n[ \t]*(?![ \t])(?:{_CUT_HINTS})")
_SIG_HINT_RE = re.compile(rf"\n[ \t]*(?![ \t])(?:{_SIG_HINTS})")
_LINE_MARKER_RE = re.compile(rf"\n[ \t]*(?![ \t])(?:>|{_CUT_HINTS}|{_SIG_HINTS})")  # the fast path's pass
# Attributions ("... wrote:") are the lines ending in a colon. No groups: they defeat the prefix scan.
_COLON_END_RE = re.compile(r":[ \t]*\n")
_WIDE_COLON_END_RE = re.compile(r"：[ \t]*\n")
# Lotus Notes one-line header: '"Jo Bloggs" <jo@x.com> on 06/19/2000 04:40:19 PM'.
_ON_DATE_RE = re.compile(rf"[ \t]on[ \t]+{_US_DATE}[ \t]*\n")

_CUT_LINE = re.compile(
    rf"[ \t]*(?:(?P<orig>-{{2,}}[ \t]*(?i:{_ORIGINAL})[ \t-]*$)"
    rf"|(?P<fwd>-{{2,}}[ \t]*(?i:{_FORWARDED})|(?:{_FORWARD_INTRO})[ \t:]*$)"
    r"|(?P<fwdby>-{3,}[ \t]*Forwarded by\b)"
    r"|(?P<under>_{10,}[ \t]*$)"
    rf"|(?P<from>{_label(_L_FROM)})"
    rf"|(?P<ldate>{_US_DATE}[ \t]*$))"
)
_SIG_LINE = re.compile(rf"(?P<delim>--[ \t]*$)|[ \t]*(?:(?P<mobile>(?:{_MOBILE}).{{0,50}}$)|(?P<disc>{_DISCLAIMER}))")

# --- line classifiers ------------------------------------------------------------------------------

# Case-sensitive on purpose: literal-first branches let the engine skip ahead, where a case-insensitive
# alternation with word boundaries costs ~20 µs per line. Clients write these verbs in lower case.
_ATTR_VERB = re.compile(
    r"(?:wrote|Wrote|WROTE|writes|schrieb|geschrieben|a écrit|escribió|ha scritto|schreef|escreveu|skrev"
    r"|pisze|napisał|написал|пишет|kirjoitti|写道|寫道|napsal|yazdı|scrisse)[^\n]{0,120}?[:：][ \t]*$"
)
_ATTR_OPENER = re.compile(r"[ \t]*(?:(?:On|At|Am|Le|El|Il|Op|Em|Den|På|W dniu|Dne)[ \t]|在)")
_ATTR_NAME_ONLY = re.compile(
    r"[ \t]*(?:(?!I\b)[A-ZÀ-ÖØ-Þ][\w.'-]*[ \t]+){0,3}(?!I\b)[A-ZÀ-ÖØ-Þ][\w.'-]*[ \t]+\w+[ \t]*[:：][ \t]*$"
)
_TIME = re.compile(r"\d{1,2}[:.]\d{2}")
_DIGIT = re.compile(r"\d")
_US_DATE_IN = re.compile(r"\d{1,2}/\d{1,2}/\d{2,4}")
_FROM_LABEL = re.compile(rf"[ \t]*{_label(_L_FROM)}")
_HEADER_LABEL = re.compile(
    rf"[ \t]*(?:(?P<sent>{_label(_L_SENT)})|(?P<to>{_label(_L_TO)})"
    rf"|(?P<cc>{_label(_L_CC)})|(?P<subject>{_label(_L_SUBJECT)}))"
)
_LOTUS_LABEL = re.compile(r"[ \t]*(?:To:|cc:|bcc:|Subject:|Sent by:|Please respond to\b)", re.I)
_KEYWORDS = re.compile(
    r"confidential|privileged|intended (?:solely|only|recipient|for)|addressee|prohibited|unauthori[sz]ed"
    r"|disclos|dissemination|distribution|copying|notify the sender|notify us|delete|destroy|virus"
    r"|liability|legally|vertraulich|empfänger|confidentiel|destinataire|confidencial|destinatario|riservat",
    re.I,
)
_STRONG_DISCLAIMER = re.compile(r"[ \t]*(?:DISCLAIMER|CONFIDENTIALITY NOTICE|LEGAL NOTICE|CONFIDENTIAL)\b")

# Sign-offs are looked up in a set rather than matched by a regex alternation: a hundred
# case-insensitive branches cost microseconds per line, a set lookup does not.
_SIGNOFFS = frozenset(
    phrase.strip()
    for phrase in """
    best|bests|all the best|best wishes|warm wishes|warmest wishes|regards|best regards|kind regards
    kindest regards|warm regards|warmest regards|many regards|with regards|with kind regards
    with best regards|fond regards|cordial regards|rgds|br|kr|respectfully|respectfully yours
    thanks|thank you|thanks again|thank you again|many thanks|thanks so much|thank you so much|thanks a lot
    thanks very much|thank you very much|thanks in advance|thanks for your help|thank you for your help
    thanks for your time|thank you for your time|thanks all|thanks everyone|thx|tia|ta|cheers|sincerely
    sincerely yours|yours sincerely|yours truly|yours faithfully|yours|take care|talk soon|speak soon
    see you|see you soon|love|lots of love|much love|all my love|hugs|x|xx|xxx|xo|xox|xoxo
    viele grüße|viele grüsse|beste grüße|beste grüsse|liebe grüße|liebe grüsse|herzliche grüße
    herzliche grüsse|freundliche grüße|freundliche grüsse|schöne grüße|schöne grüsse
    mit freundlichen grüßen|mit freundlichen grüssen|mit besten grüßen|mit besten grüssen|gruß|gruss
    grüße|grüsse|lg|vg|mfg|danke|vielen dank|herzlichen dank|bis bald
    cordialement|bien cordialement|bien à vous|amicalement|bien amicalement|bises|bisous|grosses bises
    merci|merci beaucoup|merci d'avance|bonne journée|bonne soirée|salutations|sincères salutations
    meilleures salutations|à bientôt|a bientôt
    saludos|un saludo|saludos cordiales|un cordial saludo|atentamente|un abrazo|abrazos|gracias
    muchas gracias|besos|hasta pronto|atenciosamente|abraços|abraço|um abraço|obrigado|obrigada
    cumprimentos|beijos|cordiali saluti|distinti saluti|saluti|un saluto|grazie|grazie mille|a presto
    groeten|met vriendelijke groet|met vriendelijke groeten|vriendelijke groet|hartelijke groet|groetjes
    mvg|hälsningar|med vänlig hälsning|vänliga hälsningar|mvh|med venlig hilsen|venlig hilsen
    vennlig hilsen|hilsen|terveisin|ystävällisin terveisin|kiitos
    """.replace("\n", "|").split("|")
    if phrase.strip()
)
_SIGNOFF_TRAIL = " \t,.!;:()-"
_INLINE_SEPARATORS = (",", " - ", " -- ", " – ", " — ")
_NAME_LINE = re.compile(r"[ \t]*[^\W\d_][\w.'’-]*(?:[ \t]+[^\W\d_][\w.'’-]*){0,2}[ \t]*$")

_PHONE = re.compile(r"\d[\d ().-]{6,}\d")
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")
# Words that make a line a sentence rather than a title or a company name (compared case-sensitively:
# "IT Manager" and "US Office" are contact lines).
_SENTENCE_WORDS = frozenset(
    (
        "I", "I'm", "I'll", "I've", "I'd", "me", "my", "we", "our", "you", "your", "us", "the", "is", "are",
        "was", "were", "be", "will", "would", "can", "could", "should", "know", "don't", "it", "this", "that",
        "need", "needs", "please", "Please", "also", "Also", "let", "Let", "if", "If", "but", "But", "so",
        "So", "just", "Just",
    )
)  # fmt: skip
_WORD_PUNCT = ".,;:!?\"'()"
_POSTSCRIPT = ("P.S", "PS ", "PS:")
_BLANK_RUN = re.compile(r"\n(?:[ \t]*\n)+")

_FWD_SUBJECT = re.compile(
    r"[ \t]*(?:\[[^\]:]*\][ \t]*)*\[?[ \t]*"
    r"(?:fwd?|wg|tr|rv|doorst|vs|vb|enc|pd|转发|轉寄|转寄)[ \t]*(?:\[\d+\]|\(\d+\))?[ \t]*[:：]"
    r"|.*\(fwd\)[ \t]*$",
    re.I,
)

_MAX_SIGNOFF_SCAN = 20  # a sign-off is followed by at most a name and a contact block
_MAX_CONTACT_LINES = 15


# --- public API ------------------------------------------------------------------------------------


def is_forward_subject(subject: str) -> bool:
    """True when the outermost subject prefix marks a forward (Fwd:, FW:, WG:, TR:, [Fwd: ...], ...).

    "Re: Fwd: x" is a reply to a forward, so it is not one.
    """
    return bool(subject) and _FWD_SUBJECT.match(subject) is not None


def clean_body(body: str, subject: str = "") -> CleanedBody:
    """Separate own text, quoted material and signature of one decoded plain-text body."""
    if "\r" in body:
        body = body.replace("\r\n", "\n").replace("\r", "\n")
    body = strip_footers(_normalise_spaces(body))
    forward = is_forward_subject(subject)
    padded = "\n" + body + "\n"
    lines = body.split("\n")
    if not _has_markers(body, padded):
        # Nothing but a possible "sign-off, name, contact block" ending.
        own = [i for i in range(max(0, len(lines) - 200), len(lines)) if lines[i].strip()]
        start = _signoff_signature_start(lines, own)
        if start is None:
            return CleanedBody(_tidy(body), "", "", forward)
        return CleanedBody(_tidy("\n".join(lines[:start])), "", _tidy("\n".join(lines[start:])), forward)
    kinds = [_TEXT] * len(lines)
    if ">" in body:
        for i, line in enumerate(lines):
            if line.lstrip(" \t")[:1] == ">":
                kinds[i] = _QUOTED
    cut, forward_marker = _find_cut(lines, kinds, padded)
    for i in range(cut, len(lines)):
        kinds[i] = _QUOTED
    _mark_signature(lines, kinds, padded, cut)
    text, quoted, signature = _gather(lines, kinds)
    return CleanedBody(text, quoted, signature, forward or forward_marker)


def _normalise_spaces(body: str) -> str:
    """No-break spaces become plain ones and lines lose their trailing blanks: neither is part of how
    someone writes, and both would teach drafts odd spacing."""
    if "\u00a0" in body or "\u202f" in body:
        body = body.replace("\u00a0", " ").replace("\u202f", " ")
    if " \n" in body or "\t\n" in body or body.endswith((" ", "\t")):
        body = _strip_line_ends(body)
    return body


def _strip_line_ends(body: str) -> str:
    """Remove blanks at line ends, except in "-- ", the signature delimiter's own spelling."""
    if "-- " not in body:
        for _ in range(3):  # a blank or two at the line end is the rule: a few passes of str.replace
            stripped = body.replace(" \n", "\n").replace("\t\n", "\n")
            if stripped == body:
                return body.rstrip(" \t")
            body = stripped
    return "\n".join(line if line == "-- " else line.rstrip(" \t") for line in body.split("\n"))


def _has_markers(body: str, padded: str) -> bool:
    """Fast path: could anything in the body be a quote, a reply/forward header or a signature start?"""
    return bool(
        _LINE_MARKER_RE.search(padded)
        or (":" in body and _COLON_END_RE.search(padded))
        or ("：" in body and _WIDE_COLON_END_RE.search(padded))
        or ("/" in body and _ON_DATE_RE.search(padded))
    )


# --- quoted material ------------------------------------------------------------------------------


def _candidates(pattern: re.Pattern[str], padded: str, kind: str) -> Iterator[tuple[int, str]]:
    """Yield (line index, kind) for each match of `pattern` in the padded body, in order."""
    line, last = -1, 0  # the leading "\n" is newline number 0 and starts line 0
    for m in pattern.finditer(padded):
        pos = m.start()
        line += padded.count("\n", last, pos + 1)  # a match starting on a newline belongs to the next line
        last = pos + 1
        yield line, kind


def _find_cut(lines: list[str], kinds: list[int], padded: str) -> tuple[int, bool]:
    """First line from which everything is quoted (len(lines) if none), and whether it opens a forward.

    Attribution lines followed by "> " quotes are marked quoted on the way, without cutting, so the
    author's inline answers between quote blocks stay in the text.
    """
    sources = [_candidates(_CUT_HINT_RE, padded, "line"), _candidates(_COLON_END_RE, padded, "attr")]
    if "：" in padded:
        sources.append(_candidates(_WIDE_COLON_END_RE, padded, "attr"))
    if "/" in padded:
        sources.append(_candidates(_ON_DATE_RE, padded, "ondate"))
    n = len(lines)
    for i, kind in heapq.merge(*sources):
        if i < n and kinds[i] == _TEXT:
            found = _cut_at(lines, kinds, i, kind)
            if found is not None:
                return found
    return n, False


def _cut_at(lines: list[str], kinds: list[int], i: int, kind: str) -> tuple[int, bool] | None:
    """Whether candidate line i starts the quoted tail: (cut line, is a forward) or None."""
    if kind == "attr":
        start = _attribution(lines, kinds, i)
        return None if start is None else (start, False)
    if kind == "ondate":
        return (i, False) if _has_label_after(lines, i, _LOTUS_LABEL) else None
    m = _CUT_LINE.match(lines[i])
    kind = (m.lastgroup or "") if m else ""
    if kind in ("orig", "fwd", "fwdby"):
        return i, kind != "orig"
    if (kind == "under" and _next_is_from(lines, i)) or (kind == "from" and _is_header_block(lines, i)):
        return i, False
    if kind == "ldate" and (_has_label_after(lines, i, _LOTUS_LABEL) or _after_notes_address(lines, i)):
        return _lotus_name_line(lines, kinds, i), False
    return None


def _next_nonblank(lines: list[str], i: int, limit: int) -> int | None:
    for j in range(i + 1, min(i + 1 + limit, len(lines))):
        if lines[j].strip():
            return j
    return None


def _next_is_from(lines: list[str], i: int) -> bool:
    j = _next_nonblank(lines, i, 2)
    return j is not None and _FROM_LABEL.match(lines[j]) is not None


def _is_header_block(lines: list[str], i: int) -> bool:
    """A "From:" line opens a quoted header block when two more header kinds follow closely."""
    # Lotus Notes puts the date on the From line itself ("From: Jo Bloggs/HOU on 10/05/2000 09:12 AM").
    seen = {"sent"} if _US_DATE_IN.search(lines[i]) else set()
    for j in range(i + 1, min(i + 7, len(lines))):
        m = _HEADER_LABEL.match(lines[j])
        if m and m.lastgroup:
            seen.add(m.lastgroup)
    return len(seen) >= 2


def _has_label_after(lines: list[str], i: int, label: re.Pattern[str]) -> bool:
    # Lotus headers may leave blank lines and a wrapped recipient list between the date and "To:".
    return any(label.match(lines[j]) for j in range(i + 1, min(i + 8, len(lines))))


def _after_notes_address(lines: list[str], i: int) -> bool:
    """An address like "Jo Bloggs@ENRON" right above the date is a Notes header even without To:."""
    prev = lines[i - 1].strip() if i else ""
    return "@" in prev and len(prev) <= 80 and " " not in prev.split("@", 1)[1]


def _lotus_name_line(lines: list[str], kinds: list[int], i: int) -> int:
    """Lotus puts the sender's name on the line right above the date; include it when it is there."""
    if i == 0 or kinds[i - 1] != _TEXT:
        return i
    prev = lines[i - 1].strip()
    if prev and len(prev) <= 80 and prev[-1] not in ".!?":
        return i - 1
    return i


def _attribution(lines: list[str], kinds: list[int], i: int) -> int | None:
    """Handle a line ending in ":" that may be "On <date>, <name> wrote:" (possibly wrapped over 2 lines).

    Returns the cut line when it heads an unquoted (top-posted) history, else None; when it heads a
    "> " block it is marked quoted instead.
    """
    line = lines[i]
    if len(line) > 400 or not (_ATTR_VERB.search(line) or _ends_with_address_colon(line)):
        return None
    start, whole = i, line
    if not _ATTR_OPENER.match(line) and i > 0 and kinds[i - 1] == _TEXT:
        prev = lines[i - 1].rstrip()
        # The client wrapped the attribution: "On <date>, <name> <" / "addr> wrote:".
        if _ATTR_OPENER.match(prev) and len(prev) < 300 and _DIGIT.search(prev) and prev[-1:] not in ".!?":
            start, whole = i - 1, prev + " " + line
    j = _next_nonblank(lines, i, 3)
    if j is not None and kinds[j] == _QUOTED:
        for k in range(start, i + 1):
            kinds[k] = _QUOTED
        return None
    return start if _is_strict_attribution(whole) else None


def _ends_with_address_colon(line: str) -> bool:
    """Gmail's date-first formats (Japanese, Russian...) have no verb: "<date> Name <addr>:"."""
    s = line.rstrip()
    if not s.endswith((">:", ">：")):
        return False
    lt = s.rfind("<")
    return lt > 0 and "@" in s[lt:] and _DIGIT.search(s, 0, lt) is not None


def _is_strict_attribution(whole: str) -> bool:
    """Without a "> " block after it, only a clearly machine-written attribution may swallow the rest."""
    if _ATTR_OPENER.match(whole) and _DIGIT.search(whole):
        return True
    return "@" in whole or _TIME.search(whole) is not None or _ATTR_NAME_ONLY.match(whole) is not None


# --- signature -------------------------------------------------------------------------------------


def _mark_signature(lines: list[str], kinds: list[int], padded: str, cut: int) -> None:
    """Mark the signature block (delimiter, footer, disclaimer or contact block) of the own text."""
    end = _explicit_signature_start(lines, kinds, padded, cut)
    own = [i for i in range(max(0, end - 200), end) if kinds[i] == _TEXT and lines[i].strip()]
    start = _signoff_signature_start(lines, own, kinds)
    if start is None:
        start = end
    for i in range(start, cut):
        if kinds[i] == _TEXT:
            kinds[i] = _SIG


def _explicit_signature_start(lines: list[str], kinds: list[int], padded: str, cut: int) -> int:
    """The first "-- " delimiter, mobile footer or disclaimer among the own lines before `cut`, else cut."""
    first_own = next((i for i in range(cut) if kinds[i] == _TEXT and lines[i].strip()), cut)
    boundary: int | None = None  # found on first need, so that each candidate costs O(1)
    for i, _ in _candidates(_SIG_HINT_RE, padded, "line"):
        if i >= cut:
            break
        m = _SIG_LINE.match(lines[i]) if kinds[i] == _TEXT else None
        if m is None:
            continue
        if m.lastgroup != "disc":
            return i
        if boundary is None:
            boundary = _signoff_boundary(lines, kinds, cut)
        if first_own < i and boundary < i and _is_disclaimer(lines, kinds, i, cut):
            return i
    return cut


def _is_disclaimer(lines: list[str], kinds: list[int], i: int, cut: int) -> bool:
    """Legal boilerplate opens a paragraph and names several of its stock words; authors rarely do both."""
    prev = lines[i - 1]
    if kinds[i - 1] == _TEXT and prev.strip() and not _is_contact_line(prev):
        return False  # mid-paragraph: the author's sentence goes on
    if _STRONG_DISCLAIMER.match(lines[i]):
        return True
    chunk = " ".join(lines[j] for j in range(i, min(i + 8, cut)) if kinds[j] == _TEXT)[:1200]
    return len({m.group(0).lower()[:6] for m in _KEYWORDS.finditer(chunk)}) >= 3


def _signoff_boundary(lines: list[str], kinds: list[int], cut: int) -> int:
    """Disclaimers must start after this line (-1 when the own text has no sign-off).

    A signed sign-off ("Thanks," over "Nora") ends the author's message, so nothing above it is boilerplate;
    a bare "Thank you." may be the last line of the disclaimer itself, so only its paragraph counts.
    """
    j = next((j for j in range(cut - 1, -1, -1) if kinds[j] == _TEXT and _signoff(lines, j)), -1)
    if j < 0 or _signoff(lines, j) == _SIGNOFF_WITH_NAME:
        return j
    k = _next_nonblank(lines, j, 2)
    if k is not None and kinds[k] == _TEXT and len(lines[k]) <= 40 and _NAME_LINE.match(lines[k]):
        return j
    while j >= 0 and lines[j].strip():
        j -= 1
    return j


def _signoff_signature_start(lines: list[str], own: list[int], kinds: list[int] | None = None) -> int | None:
    """Index of the first contact-block line after "sign-off + name", or None.

    `own` lists the non-blank own lines of the region that may hold the sign-off, in order.
    """
    scan = own[-_MAX_SIGNOFF_SCAN:]
    for pos in range(len(scan) - 1, -1, -1):
        found = _signoff(lines, scan[pos])
        if found:
            break
    else:
        return None
    rest = scan[pos + 1 :]
    if found == _SIGNOFF_ALONE:
        if not rest or len(lines[rest[0]]) > 40 or not _NAME_LINE.match(lines[rest[0]]):
            return None
        rest = rest[1:]
    if not rest or len(rest) > _MAX_CONTACT_LINES:
        return None
    # A quote between the sign-off and these lines means the author went on answering inline.
    if kinds is not None and _QUOTED in kinds[scan[pos] : rest[-1]]:
        return None
    if not all(_is_contact_line(lines[j]) for j in rest):
        return None
    return rest[0]


_SIGNOFF_ALONE, _SIGNOFF_WITH_NAME = 1, 2


def _signoff(lines: list[str], i: int) -> int:
    """0, or whether line i is a sign-off alone ("Best,") or with the name ("Thanks, Jo", "-Rosie")."""
    s = lines[i].strip()
    if not s or len(s) > 60:
        return 0
    if s.lower().rstrip(_SIGNOFF_TRAIL) in _SIGNOFFS:
        return _SIGNOFF_ALONE
    if s[0] in "-–—~":  # "-Rosie", "-- John"; a bare "--" is the signature delimiter
        name = s.lstrip("-–—~ \t")
        ok = name[:1].isupper() and len(s) - len(name) <= 3 and _NAME_LINE.match(name) is not None
        # "- Milk" in a bulleted list is not a sign-off: with a space, the dash must open a paragraph.
        if ok and s[1] in " \t" and i > 0 and lines[i - 1].strip():
            ok = False
        return _SIGNOFF_WITH_NAME if ok else 0
    if ("," in s or " -" in s or " –" in s or " —" in s) and len(s.split()) <= 6:
        for sep in _INLINE_SEPARATORS:
            head, found, name = s.partition(sep)
            # The name must be capitalised, or "thanks, though." would sign as "though.".
            signed = found and head.lower().rstrip(_SIGNOFF_TRAIL) in _SIGNOFFS and name.strip()[:1].isupper()
            if signed and _NAME_LINE.match(name):
                return _SIGNOFF_WITH_NAME
    return 0


def _is_contact_line(line: str) -> bool:
    """Title, company, phone, address, URL, handle or a rule line: short and not a sentence."""
    stripped = line.strip()
    if len(stripped) > 200:
        return False
    if "@" in stripped or "www." in stripped or "://" in stripped or _PHONE.search(stripped):
        return True
    if _LETTER_OR_DIGIT.search(stripped) is None:  # "-----" or "_____" between contact and disclaimer
        return True
    words = stripped.split()
    if len(stripped) > 60 or len(words) > 8 or stripped[-1] in "?!" or stripped[:3].upper() in _POSTSCRIPT:
        return False
    if not _SENTENCE_WORDS.isdisjoint(word.strip(_WORD_PUNCT) for word in words):
        return False
    # "Acme Ltd." is fine; "... the dish back." is a sentence.
    last = words[-1]
    return not (stripped.endswith(".") and len(words) >= 4 and last[:-1].islower() and len(last) > 4)


# --- output ----------------------------------------------------------------------------------------


def _gather(lines: list[str], kinds: list[int]) -> tuple[str, str, str]:
    """Join each kind's lines; separate blocks that were not adjacent with a blank line."""
    parts: tuple[list[str], list[str], list[str]] = ([], [], [])
    previous = -1
    for line, kind in zip(lines, kinds, strict=True):
        part = parts[kind]
        if kind != previous and part:
            part.append("")
        part.append(line)
        previous = kind
    return _tidy("\n".join(parts[0])), _tidy("\n".join(parts[1])), _tidy("\n".join(parts[2]))


def _tidy(text: str) -> str:
    return _BLANK_RUN.sub("\n\n", text).strip()
