"""Split one email body into the author's own words, quoted/forwarded material and the signature block.

The style model must learn from what the user actually typed, so replies' quoted history, forwarded
messages, contact blocks, mobile footers and legal disclaimers are moved out of ``text``. The sign-off
("Best,\\nJohn") stays in ``text``: how someone signs is part of their voice.

Heuristics are deliberately conservative: when unsure, a line stays in ``text``. Everything here runs
once per imported message, so the common case (nothing to strip) is answered by a few whole-body regex
searches without splitting the body into lines.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterator
from dataclasses import dataclass

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
_L_SUBJECT = (
    r"Subject|Betreff|Objet|Asunto|Oggetto|Onderwerp|Ämne|Emne|Temat|Тема|Aihe|Konu|Assunto|主题|主旨|件名"
)


def _label(names: str) -> str:
    # Labels may be bolded by the HTML converter ("*From:*") and French puts a space before the colon.
    return rf"\*{{0,2}}(?:{names})\*{{0,2}}[ \t\u00a0]?[:：]"


# The optional AM/PM carries its own leading blanks: two adjacent [ \t]* would backtrack quadratically.
_US_DATE = r"\d{1,2}/\d{1,2}/\d{2,4}[ \t]+\d{1,2}:\d{2}(?::\d{2})?(?:[ \t]*[AaPp][Mm])?"

# Patterns starting with "\n" are searched over "\n" + body + "\n": the newline anchors a line start
# and lets the regex engine jump from newline to newline. Branches with different first characters are
# kept in separate patterns because one combined pattern would be tried at every position.
_CUT_RE = re.compile(
    r"\n[ \t]*(?:"
    rf"(?P<orig>-{{2,}}[ \t]*(?i:{_ORIGINAL})[ \t-]*(?=\n))"
    rf"|(?P<fwd>-{{2,}}[ \t]*(?i:{_FORWARDED})|(?:{_FORWARD_INTRO})[ \t:]*(?=\n))"
    r"|(?P<fwdby>-{3,}[ \t]*Forwarded by\b)"
    r"|(?P<under>_{10,}[ \t]*(?=\n))"
    rf"|(?P<from>{_label(_L_FROM)})"
    rf"|(?P<ldate>{_US_DATE}[ \t]*(?=\n))"
    r")"
)
# Attributions ("... wrote:") are the lines ending in a colon.
_COLON_END_RE = re.compile(r"(?P<attr>:)[ \t]*\n|(?P<attr2>：)[ \t]*\n")
# Lotus Notes one-line header: '"Jo Bloggs" <jo@x.com> on 06/19/2000 04:40:19 PM'.
_ON_DATE_RE = re.compile(rf"[ \t]on[ \t]+(?P<ondate>{_US_DATE})[ \t]*\n")
_SIG_RE = re.compile(
    r"\n(?:"
    r"(?P<delim>--[ \t]*(?=\n))"
    r"|[ \t]*(?P<mobile>(?:Sent (?:from|with|via) |Get Outlook for |Von meinem |Gesendet von |Envoyé de"
    r" |Envoyé depuis |Enviado desde |Enviado do |Inviato da |Verzonden (?:vanaf|met) |Skickat från "
    r"|Sendt fra |Lähetetty |Отправлено (?:с|из) |发自我的)[^\n]{0,50}(?=\n))"
    r"|[ \t]*(?P<disc>(?i:this (?:e-?mail|message|communication|transmission)|the information"
    r"|confidential|privileged|disclaimer|legal notice|important notice|notice:|if you (?:are not|have received)"
    r"|any views|diese (?:e-?mail|nachricht)|ce (?:message|courriel|e-?mail)|este (?:mensaje|correo)"
    r"|please consider the environment))"
    r")"
)
_QUOTE_RE = re.compile(r"\n[ \t]*>")

# --- line classifiers ------------------------------------------------------------------------------

_ATTR_VERB = re.compile(
    r"(?:\bwrote|\bwrites|\bschrieb|\bgeschrieben|a écrit|\bescribió|ha scritto|\bschreef|\bescreveu"
    r"|\bskrev|\bnapisał(?:\(a\)|a)?|написал(?:\(а\)|а)?|пишет|\bkirjoitti|写道|寫道|\bnapsal(?:\(a\)|a)?"
    r"|\byazdı|\bscrisse)[^\n]{0,120}?[:：][ \t]*$",
    re.I,
)
_ATTR_OPENER = re.compile(r"[ \t]*(?:(?:On|Am|Le|El|Il|Op|Em|Den|På|W dniu|Dne)[ \t]|在)")
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

_CONTACT_STRONG = re.compile(
    r"https?://|www\.|\S@\S+\.\w|\+?\d[\d ().-]{6,}\d|@\w"
    r"|\b(?i:tel|phone|mobile|cell|fax|mob|direct|office|skype|linkedin|twitter|github|instagram"
    r"|telefon|handy|tél|portable|móvil|celular)\b|^[ \t]*[TMPFEWtmpfew][ \t]*[:|]"
)
_NOT_CONTACT = re.compile(
    r"\b(?:I|I'm|I'll|I've|I'd|me|my|we|our|you|your|us|the|is|are|was|were|be|will|would|can|could"
    r"|should|know|don't|it|this|that|need|needs|(?i:please|also|let|if|but|so|just))\b"
    r"|^[ \t]*P\.?[ \t]?S\b|[?!][ \t]*$"
)
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
    forward = is_forward_subject(subject)
    padded = "\n" + body + "\n"
    if not _has_markers(body, padded) and not _tail_has_signature(body):
        return CleanedBody(_tidy(body), "", "", forward)
    lines = body.split("\n")
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


def _has_markers(body: str, padded: str) -> bool:
    """Fast path: could anything in the body be a quote, a reply/forward header or a signature start?"""
    return bool(
        _CUT_RE.search(padded)
        or _SIG_RE.search(padded)
        or _QUOTE_RE.search(padded)
        or _COLON_END_RE.search(padded)
        or ("/" in body and _ON_DATE_RE.search(padded))
    )


def _tail_has_signature(body: str) -> bool:
    """Fast path: is there a contact block after a sign-off among the last lines?"""
    tail = body.rsplit("\n", 3 * _MAX_SIGNOFF_SCAN)
    own = [i for i, line in enumerate(tail) if line.strip()]
    return _signoff_signature_start(tail, own) is not None


# --- quoted material ------------------------------------------------------------------------------


def _candidates(pattern: re.Pattern[str], padded: str) -> Iterator[tuple[int, str]]:
    """Yield (line index, group name) for each match of `pattern` in "\n" + body + "\n"."""
    line, last = -1, 0  # the leading "\n" is newline number 0 and starts line 0
    for m in pattern.finditer(padded):
        pos = m.start()
        line += padded.count("\n", last, pos + 1)  # a match starting on a newline belongs to the next line
        last = pos + 1
        yield line, m.lastgroup or ""


def _find_cut(lines: list[str], kinds: list[int], padded: str) -> tuple[int, bool]:
    """First line from which everything is quoted (len(lines) if none), and whether it opens a forward.

    Attribution lines followed by "> " quotes are marked quoted on the way, without cutting, so the
    author's inline answers between quote blocks stay in the text.
    """
    sources = [_candidates(_CUT_RE, padded), _candidates(_COLON_END_RE, padded)]
    if "/" in padded:
        sources.append(_candidates(_ON_DATE_RE, padded))
    n = len(lines)
    for i, kind in heapq.merge(*sources):
        if i >= n or kinds[i] != _TEXT:
            continue
        if kind in ("orig", "fwd", "fwdby"):
            return i, kind != "orig"
        if kind == "under" and _next_is_from(lines, i):
            return i, False
        if kind == "from" and _is_header_block(lines, i):
            return i, False
        if kind == "ondate" and _has_label_after(lines, i, _LOTUS_LABEL):
            return i, False
        if kind == "ldate" and (_has_label_after(lines, i, _LOTUS_LABEL) or _after_notes_address(lines, i)):
            return _lotus_name_line(lines, kinds, i), False
        if kind in ("attr", "attr2"):
            start = _attribution(lines, kinds, i)
            if start is not None:
                return start, False
    return n, False


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
    """"Jo Bloggs@ENRON" right above the date is a Notes header even without a To: line."""
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
        prev = lines[i - 1]
        if _ATTR_OPENER.match(prev) and len(prev) < 300:  # the client wrapped the attribution
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
    end = cut
    first_own = next((i for i in range(cut) if kinds[i] == _TEXT and lines[i].strip()), cut)
    for i, kind in _candidates(_SIG_RE, padded):
        if i >= cut:
            break
        if kinds[i] != _TEXT:
            continue
        if kind == "delim" or kind == "mobile" or (i > first_own and _is_disclaimer(lines, kinds, i, cut)):
            end = i
            break
    own = [i for i in range(max(0, end - 200), end) if kinds[i] == _TEXT and lines[i].strip()]
    start = _signoff_signature_start(lines, own)
    if start is None:
        start = end
    for i in range(start, cut):
        if kinds[i] == _TEXT:
            kinds[i] = _SIG


def _is_disclaimer(lines: list[str], kinds: list[int], i: int, cut: int) -> bool:
    """Legal boilerplate names several of its stock words; an author's sentence rarely does."""
    if not _STRONG_DISCLAIMER.match(lines[i]):
        chunk = " ".join(lines[j] for j in range(i, min(i + 8, cut)) if kinds[j] == _TEXT)[:1200]
        if len({m.group(0).lower()[:6] for m in _KEYWORDS.finditer(chunk)}) < 2:
            return False
    # A sign-off further down means this paragraph is still the author's message.
    return not any(kinds[j] == _TEXT and _signoff(lines[j]) for j in range(i + 1, cut))


def _signoff_signature_start(lines: list[str], own: list[int]) -> int | None:
    """Index of the first contact-block line after "sign-off + name", or None.

    `own` lists the non-blank own lines of the region that may hold the sign-off, in order.
    """
    scan = own[-_MAX_SIGNOFF_SCAN:]
    for pos in range(len(scan) - 1, -1, -1):
        found = _signoff(lines[scan[pos]])
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
    if not all(_is_contact_line(lines[j]) for j in rest):
        return None
    return rest[0]


_SIGNOFF_ALONE, _SIGNOFF_WITH_NAME = 1, 2


def _signoff(line: str) -> int:
    """0, or whether the line is a sign-off alone ("Best,") or with the name ("Thanks, Jo", "-Rosie")."""
    s = line.strip()
    if not s or len(s) > 60:
        return 0
    if s.lower().rstrip(_SIGNOFF_TRAIL) in _SIGNOFFS:
        return _SIGNOFF_ALONE
    if s[0] in "-–—~":  # "-Rosie", "-- John"; a bare "--" is the signature delimiter
        name = s.lstrip("-–—~ \t")
        ok = name[:1].isupper() and len(s) - len(name) <= 3 and _NAME_LINE.match(name) is not None
        return _SIGNOFF_WITH_NAME if ok else 0
    if len(s.split()) <= 6:
        for sep in _INLINE_SEPARATORS:
            head, found, name = s.partition(sep)
            if found and head.lower().rstrip(_SIGNOFF_TRAIL) in _SIGNOFFS and _NAME_LINE.match(name):
                return _SIGNOFF_WITH_NAME
    return 0


def _is_contact_line(line: str) -> bool:
    """Title, company, phone, address, URL or handle: short and not a sentence."""
    if len(line) > 200:
        return False
    if _CONTACT_STRONG.search(line):
        return True
    stripped = line.strip()
    words = stripped.split()
    if len(stripped) > 60 or len(words) > 8 or _NOT_CONTACT.search(stripped):
        return False
    # "Acme Ltd." is fine; "... the dish back." is a sentence.
    return not (stripped.endswith(".") and len(words) >= 4 and words[-1][:-1].islower() and len(words[-1]) > 4)


# --- output ----------------------------------------------------------------------------------------


def _gather(lines: list[str], kinds: list[int]) -> tuple[str, str, str]:
    """Join each kind's lines; separate blocks that were not adjacent with a blank line."""
    parts: tuple[list[str], list[str], list[str]] = ([], [], [])
    previous = -1
    for line, kind in zip(lines, kinds):
        part = parts[kind]
        if kind != previous and part:
            part.append("")
        part.append(line)
        previous = kind
    return _tidy("\n".join(parts[0])), _tidy("\n".join(parts[1])), _tidy("\n".join(parts[2]))


def _tidy(text: str) -> str:
    return _BLANK_RUN.sub("\n\n", text).strip()
