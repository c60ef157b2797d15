"""The no-network guard: offline switches for ML libraries and a socket guard that refuses non-loopback traffic.

Mailvoice promises that nothing leaves the machine. :func:`install` keeps that promise in two layers:

1. Before any ML library is imported, it sets their documented offline and no-telemetry switches
   (``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE``, ``DO_NOT_TRACK``...) with ``setdefault``, so the libraries
   never *try*, and a user who sets one on purpose still wins.
2. It wraps the Python socket layer (``socket.socket.connect``/``connect_ex``/``sendto``/``sendmsg``,
   ``socket.create_connection``, ``socket.getaddrinfo``, ``socket.gethostbyname[_ex]``) so that any attempt to
   reach a host other than this machine raises :class:`NetworkBlocked` *before* the real call: no packet
   is sent, not even a DNS query. Loopback (127.0.0.0/8, ::1, ``localhost``) and AF_UNIX stay allowed;
   D-Bus (the system keyring), multiprocessing and Qt's local sockets need them.

What it cannot see: native code that opens sockets without Python (a C library's own HTTP client).
None of our dependencies does so when the offline switches are set; the switches are the first layer.

:func:`recording` counts every attempt, allowed and refused, for tests and benchmarks; :func:`refused_count` is
the number refused in this process since it started (the app's status bar reads it: one integer). Across
processes (the CLI's subcommands, import and training workers), setting ``MAILVOICE_NETLOG`` to a file path makes
every guarded process append each attempt to that file as one JSON line (see :func:`read_log`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from assistant.errors import MailvoiceError

# Documented offline / no-telemetry switches of the libraries we ship or that users commonly have.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",  # huggingface_hub: never call the Hub, use the local cache only
    "TRANSFORMERS_OFFLINE": "1",  # transformers: same, for from_pretrained
    "HF_DATASETS_OFFLINE": "1",  # datasets
    "HF_EVALUATE_OFFLINE": "1",  # evaluate (metric scripts are downloaded otherwise)
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN": "1",  # never send a stored token along with a request
    "DISABLE_TELEMETRY": "1",  # older huggingface_hub / transformers spelling
    "DO_NOT_TRACK": "1",  # the cross-tool convention (consoledonottrack.com)
    "WANDB_MODE": "disabled",  # a trainer with report_to="all" would otherwise start Weights & Biases
    "WANDB_DISABLED": "true",
    "DISABLE_MLFLOW_INTEGRATION": "TRUE",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "SCARF_NO_ANALYTICS": "true",
}

NETLOG_ENV = "MAILVOICE_NETLOG"  # a file every guarded process appends its attempts to (JSON lines)

_LOCAL_NAMES = {"localhost", "localhost.", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class NetworkBlocked(MailvoiceError):
    """A connection to another machine was refused before anything was sent.

    Deliberately not an ``OSError``: HTTP clients retry those with back-off (huggingface_hub waits ~20 s
    before giving up) and then bury the cause. This one goes straight up to the CLI or GUI, which show it.
    """


@dataclass(frozen=True)
class Attempt:
    """One network operation the guard saw."""

    operation: str  # "connect", "connect_ex", "create_connection", "getaddrinfo", "sendto", ...
    host: str
    port: int | None
    allowed: bool


@dataclass
class Recorder:
    """Collects the attempts made while it is active (see :func:`recording`)."""

    attempts: list[Attempt] = field(default_factory=list)

    @property
    def allowed(self) -> list[Attempt]:
        return [a for a in self.attempts if a.allowed]

    @property
    def refused(self) -> list[Attempt]:
        return [a for a in self.attempts if not a.allowed]

    def summary(self) -> dict[str, int]:
        return {"attempts": len(self.attempts), "allowed": len(self.allowed), "refused": len(self.refused)}


_lock = threading.Lock()
_installed = False
_recorders: list[Recorder] = []
_refused = 0  # attempts refused in this process, for the status bar (never reset: it says "since start")
# The real functions as found at install (put back by uninstall), and the ones the guard calls through:
# the same, unless a test has put a counting fake in their place.
_ORIGINAL: dict[str, Callable[..., Any]] = {}
_REAL: dict[str, Callable[..., Any]] = {}


def install() -> None:
    """Set the offline switches and install the socket guard. Safe to call more than once."""
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        for owner, name, guard in _wrapped():
            if hasattr(owner, name):  # Windows has no socket.sendmsg
                _ORIGINAL[name] = getattr(owner, name)
                setattr(owner, name, guard)
        _REAL.update(_ORIGINAL)


def uninstall() -> None:
    """Put the real socket functions back (tests only: the app keeps the guard for its whole life)."""
    global _installed
    with _lock:
        if not _installed:
            return
        _installed = False
        for owner, name, _guard in _wrapped():
            if name in _ORIGINAL:
                setattr(owner, name, _ORIGINAL[name])
        _REAL.clear()
        _ORIGINAL.clear()


def _wrapped() -> list[tuple[Any, str, Callable[..., Any]]]:
    """(where, name, guard) for every function the guard replaces: socket methods, then module functions."""
    return [
        (socket.socket, "connect", _connect),
        (socket.socket, "connect_ex", _connect_ex),
        (socket.socket, "sendto", _sendto),
        (socket.socket, "sendmsg", _sendmsg),
        (socket, "create_connection", _create_connection),
        (socket, "getaddrinfo", _getaddrinfo),
        (socket, "gethostbyname", _gethostbyname),
        (socket, "gethostbyname_ex", _gethostbyname_ex),
    ]


def installed() -> bool:
    return _installed


@contextlib.contextmanager
def recording() -> Iterator[Recorder]:
    """Record every attempt made (in any thread) while the block runs. Needs :func:`install`."""
    recorder = Recorder()
    with _lock:
        _recorders.append(recorder)
    try:
        yield recorder
    finally:
        with _lock:
            _recorders.remove(recorder)


def refused_count() -> int:
    """How many connections the guard refused in this process since it started (any thread, no recorder needed)."""
    return _refused


def read_log(path: str | os.PathLike[str]) -> Recorder:
    """The attempts that guarded processes appended to a ``MAILVOICE_NETLOG`` file (none if it does not exist)."""
    recorder = Recorder()
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    fields = json.loads(line)
                    fields.pop("pid", None)
                    recorder.attempts.append(Attempt(**fields))
    return recorder


def is_local_host(host: object) -> bool:
    """True for loopback addresses and the names that always mean this machine."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip().lower()
    if name in _LOCAL_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(name.strip("[]").split("%", 1)[0])  # "fe80::1%eth0" carries a scope
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def _check(operation: str, host: object, port: object, local: bool) -> None:
    """Record the attempt; raise before any real call when it would leave the machine."""
    port_num = port if isinstance(port, int) else None
    if isinstance(port, str) and port.isdigit():
        port_num = int(port)
    attempt = Attempt(operation, str(host), port_num, local)
    global _refused
    with _lock:
        _refused += not local
        for recorder in _recorders:
            recorder.attempts.append(attempt)
        log = os.environ.get(NETLOG_ENV)
        if log:
            line = json.dumps({"pid": os.getpid(), **attempt.__dict__})
            with open(log, "a", encoding="utf-8") as f:  # one short append per attempt: lines never interleave
                f.write(line + "\n")
    if not local:
        where = f"[{host}]" if isinstance(host, str) and ":" in host else str(host)
        raise NetworkBlocked(
            f"Mailvoice works offline and refused a connection to {where}:{port} ({operation}). "
            "Nothing was sent. Models and data must already be on this machine: point Mailvoice at a "
            "local file instead."
        )


def _check_address(sock: socket.socket, operation: str, address: Any) -> None:
    family = getattr(socket, "AF_UNIX", None)
    if family is not None and sock.family == family:
        _check(operation, address, None, True)
    elif sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple) and address:
        port = address[1] if len(address) > 1 else None
        _check(operation, address[0], port, is_local_host(address[0]))
    else:  # netlink, packet, bluetooth...: nothing Mailvoice needs, so nothing is let through
        _check(operation, address, None, False)


def _connect(self: socket.socket, address: Any) -> None:
    _check_address(self, "connect", address)
    return _REAL["connect"](self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    _check_address(self, "connect_ex", address)
    return _REAL["connect_ex"](self, address)


def _sendto(self: socket.socket, data: Any, *args: Any) -> int:
    # sendto(data, address) or sendto(data, flags, address): UDP needs no connect to leave the machine.
    _check_address(self, "sendto", args[-1])
    return _REAL["sendto"](self, data, *args)


def _sendmsg(self: socket.socket, buffers: Any, *args: Any) -> int:
    if len(args) >= 3 and args[2] is not None:  # sendmsg(buffers, ancdata, flags, address)
        _check_address(self, "sendmsg", args[2])
    return _REAL["sendmsg"](self, buffers, *args)


def _create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
    host, port = address[0], address[1]
    _check("create_connection", host, port, is_local_host(host))
    return _REAL["create_connection"](address, *args, **kwargs)


def _getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list:
    # host None or "" asks for a local (passive) address to bind to: nothing is looked up.
    _check("getaddrinfo", host, port, host in (None, "", b"") or is_local_host(host))
    return _REAL["getaddrinfo"](host, port, *args, **kwargs)


def _gethostbyname(host: str) -> str:
    _check("gethostbyname", host, None, is_local_host(host))
    return _REAL["gethostbyname"](host)


def _gethostbyname_ex(host: str) -> tuple:
    _check("gethostbyname_ex", host, None, is_local_host(host))
    return _REAL["gethostbyname_ex"](host)
