"""Who wrote a message, whether a person wrote it at all, and what kind of mail it is.

- :func:`real_sender` resolves list-munged senders ("Ann via Dev" <dev@lists…> with Reply-To: ann@…).
- :func:`automated_reason` says why a message is machine-sent or bulk (auto-replies, bounces, no-reply
  senders, newsletters), or marks it as discussion-list mail: a person writing to a list is conversation,
  so the stored reason of such mail starts with :data:`DISCUSSION` and does not make it automated.
- :func:`mail_class` turns that reason into the stored class: ``yours``, ``received``, ``list`` or
  ``automated`` (the user's own posts to a list are theirs; their own auto-replies stay automated).
- :func:`normalize_address` makes aliases of one mailbox compare equal (case, Gmail dots, +tags).
- :func:`is_sent_folder` recognises the Sent folder of Gmail, Thunderbird, Apple Mail, Outlook and Enron.
"""

from __future__ import annotations

import re

_VIA = re.compile(r"^(?P<name>.+?)\s+(?:via|through|über|par l'intermédiaire de)\s+\S.*$", re.I)
_NOREPLY = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|mailer-daemon|postmaster|bounces?|notifications?|"
    r"notify|alerts?|news(?:letter)?|info|updates?|automated|daemon|listserv|majordomo|mailman|"
    r"jira|gerrit|buildbot|jenkins|bugzilla|commits?)"
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
# The list software's own addresses (requests, owners, bounces): never a person writing to the list.
_LIST_ITSELF = re.compile(r"-(?:request|owner|bounces?|admin|leave|join|(?:un)?subscribe)(?:[+][^@]*)?@", re.I)
# Hosts that carry only lists: "lists.freedesktop.org", "lists.linaro.org", "googlegroups.com" and the kernel's
# "vger.kernel.org" (not "list.ru", a mail provider); and the display names lists go by: "open list:DRM DRIVERS",
# "moderated list:DMA BUFFER SHARING FRAMEWORK" (the kernel's MAINTAINERS file), "Linux Media Mailing List".
_LIST_HOST = re.compile(r"^lists\.|\.lists\.|^googlegroups\.com$|^vger\.kernel\.org$", re.I)
_LIST_NAME = re.compile(r"^(?:open|moderated|closed|subscribers-only) list\b|\bmailing[\s-]?list\b", re.I)
_MAILTO = re.compile(r"<mailto:([^<>?\s]+)", re.I)

DISCUSSION = "mailing list "  # the stored reason of discussion-list mail: "mailing list <list id>"
BULK_LIST = "bulk list mail "  # list mail with no sign of a discussion: "bulk list mail <list id>: why"
NO_DISCUSSION = "no replies and no List-Post"  # why, when the list itself may still show a discussion
YOURS, RECEIVED, LIST, AUTOMATED = "yours", "received", "list", "automated"
CLASSES = (YOURS, RECEIVED, LIST, AUTOMATED)


def person_name(name: str, addr: str) -> str:
    """How a prompt names a person: "Raman, Priya" -> "Priya Raman", "Thomas Hellström (Intel)" -> "Thomas
    Hellström"; no name: the address's local part."""
    name = (re.sub(r"\s*\([^()]*\)$", "", name.strip()) or name).strip().strip("'\"")
    if "," in name:
        last, _, first = name.partition(",")
        name = f"{first.strip()} {last.strip()}".strip()
    return name or addr.split("@")[0]


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


def automated_reason(headers: dict[str, str], from_addr: str, *, replying: bool = False) -> str:
    """Why this message is machine-sent or bulk; ``DISCUSSION + list id`` for a person's mail to a discussion
    list; "" for a person's mail.

    Args:
        headers: lower-cased header names and their first value.
        from_addr: the real sender (see :func:`real_sender`).
        replying: the message has In-Reply-To or References.
    """
    machine = _machine_reason(headers, from_addr)
    if machine:
        return machine
    lid = list_id(headers)
    if lid:
        bulk = _bulk_list_reason(headers, from_addr, replying)
        return f"{BULK_LIST}{lid}: {bulk}" if bulk else f"{DISCUSSION}{lid}"
    precedence = headers.get("precedence", "").strip().lower()
    if precedence in ("bulk", "junk"):
        return f"Precedence: {precedence}"
    if "list-unsubscribe" in headers:
        return "bulk mail (List-Unsubscribe)"
    return ""


def _machine_reason(headers: dict[str, str], from_addr: str) -> str:
    """Signs that no person wrote this message, whatever list it came through."""
    auto = headers.get("auto-submitted", "").strip().lower()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    if headers.get("precedence", "").strip().lower() == "auto_reply":
        return "Precedence: auto_reply"
    if "x-autoreply" in headers or "x-autorespond" in headers or "x-auto-response" in headers:
        return "auto-reply header"
    if "multipart/report" in headers.get("content-type", "").lower():
        return "delivery or feedback report"
    if from_addr and _NOREPLY.match(from_addr):
        return "no-reply sender"
    return ""


def _bulk_list_reason(headers: dict[str, str], from_addr: str, replying: bool) -> str:
    """Why list mail is bulk (a newsletter, an announcement, the list software), or "" for a discussion.

    A discussion shows replies (In-Reply-To, References) or a list that takes posts (List-Post) with a
    person's From; Precedence: bulk alone does not make it bulk, since many discussion lists set it. Where
    one message cannot tell, the archive can: see ``identities.class_list_threads``.
    """
    if from_addr and is_list_software(from_addr):
        return "sent by the list software"
    if replying or _MAILTO.search(headers.get("list-post", "")):
        return ""
    precedence = headers.get("precedence", "").strip().lower()
    marks = ", Precedence: " + precedence if precedence in ("bulk", "junk") else ""
    return f"{NO_DISCUSSION}{marks}"


def is_list_software(addr: str) -> bool:
    """A mailing list's own request, owner or bounce address."""
    return bool(_LIST_ITSELF.search(addr))


def is_list_address(name: str, addr: str) -> bool:
    """A mailing list among the recipients, by its host, its display name or the list software's own addresses:
    "dri-devel@lists.freedesktop.org", "open list:DMA BUFFER SHARING FRAMEWORK <linux-media@vger.kernel.org>",
    "Linux Media Mailing List <...>". A list on a host of its own under a plain name ("Linux MM
    <linux-mm@kvack.org>") is not told from a person: a person taken for a list would go unnamed."""
    domain = addr.strip().lower().rpartition("@")[2]
    name = name.strip().strip("'\"")
    return bool(_LIST_HOST.search(domain) or _LIST_NAME.search(name) or is_list_software(addr))


def is_list_munged(from_name: str) -> bool:
    """The sender name a list writes when it sends a person's post under its own address ("Ann via Dev")."""
    return bool(_VIA.match(from_name or ""))


def mail_class(auto_reason: str, list_id: str, mine: bool) -> str:
    """The stored class of a message (``identities.CLASS_SQL`` says the same in SQL for re-labelling)."""
    if auto_reason and not auto_reason.startswith(DISCUSSION) and not (mine and auto_reason.startswith(BULK_LIST)):
        return AUTOMATED
    if mine:
        return YOURS
    return LIST if list_id else RECEIVED


def list_id(headers: dict[str, str]) -> str:
    value = headers.get("list-id", "")
    match = re.search(r"<([^<>]+)>", value)
    return (match.group(1) if match else value).strip()[:200]


def is_sent_folder(folder: str) -> bool:
    return bool(folder) and bool(_SENT_FOLDER.search(folder.strip().rstrip("/\\")))


def has_sent_label(labels: list[str]) -> bool:
    return any(label.strip().lower() in ("sent", "sent mail", "[gmail]/sent mail") for label in labels)
