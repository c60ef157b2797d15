"""Who wrote a message and whether a person wrote it at all.

- :func:`real_sender` resolves list-munged senders ("Ann via Dev" <dev@lists…> with Reply-To: ann@…).
- :func:`automated_reason` flags machine-sent mail (bulk, auto-replies, bounces, no-reply senders) so it
  never teaches the model a style; list traffic is flagged separately because the user's own posts to a
  list are their voice.
- :func:`normalize_address` makes aliases of one mailbox compare equal (case, Gmail dots, +tags).
- :func:`is_sent_folder` recognises the Sent folder of Gmail, Thunderbird, Apple Mail, Outlook and Enron.
"""

from __future__ import annotations

import re

_VIA = re.compile(r"^(?P<name>.+?)\s+(?:via|through|über|par l'intermédiaire de)\s+\S.*$", re.I)
_NOREPLY = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|mailer-daemon|postmaster|bounces?|notifications?|"
    r"notify|alerts?|news(?:letter)?|info|updates?|automated|daemon|listserv|majordomo|mailman)"
    r"(?:[-+_.][^@]*)?@",
    re.I,
)
_SENT_FOLDER = re.compile(
    r"(?:^|[/\\.])(?:\[gmail\][/.])?(?:sent(?:[ _-]?(?:items|mail|messages))?|_sent(?:_mail)?|"
    r"gesendet(?:e (?:elemente|objekte))?|envoy[ée]s|[ée]l[ée]ments envoy[ée]s|enviados?|"
    r"elementos enviados|inviata|posta inviata|verzonden(?: items)?|skickat|sendt|отправленные)$",
    re.I,
)
_GMAIL = {"gmail.com", "googlemail.com"}


def normalize_address(addr: str) -> str:
    """Lower-case; drop +tags; for Gmail also drop dots and unify googlemail.com."""
    addr = addr.strip().lower()
    local, _, domain = addr.rpartition("@")
    if not local:
        return addr
    local = local.split("+", 1)[0] or local
    if domain in _GMAIL:
        return local.replace(".", "") + "@gmail.com"
    return f"{local}@{domain}"


def real_sender(from_name: str, from_addr: str, reply_to: str) -> tuple[str, str]:
    """Return (name, address) of the person behind a possibly list-munged From."""
    match = _VIA.match(from_name or "")
    if match and reply_to and reply_to != from_addr:
        return match.group("name").strip(" '\""), reply_to
    return from_name, from_addr


def automated_reason(headers: dict[str, str], from_addr: str, content_type: str = "") -> str:
    """Why this message looks machine-sent ("" when it looks written by a person)."""
    auto = headers.get("auto-submitted", "").strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in ("bulk", "junk", "auto_reply"):
        return f"Precedence: {precedence}"
    if "x-autoreply" in headers or "x-autorespond" in headers or "x-auto-response" in headers:
        return "auto-reply header"
    if "multipart/report" in headers.get("content-type", "").lower():
        return "delivery or feedback report"
    if from_addr and _NOREPLY.match(from_addr):
        return "no-reply sender"
    if "list-unsubscribe" in headers and "list-id" not in headers:
        return "bulk mail (List-Unsubscribe)"
    return ""


def list_id(headers: dict[str, str]) -> str:
    value = headers.get("list-id", "")
    match = re.search(r"<([^<>]+)>", value)
    return (match.group(1) if match else value).strip()[:200]


def is_sent_folder(folder: str) -> bool:
    return bool(folder) and bool(_SENT_FOLDER.search(folder.strip().rstrip("/\\")))


def has_sent_label(labels: list[str]) -> bool:
    return any(label.strip().lower() in ("sent", "sent mail", "[gmail]/sent mail") for label in labels)
