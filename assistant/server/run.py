"""Starting the local API: a loopback address only, the token from the system keyring, uvicorn on one socket.

:func:`loopback_address` refuses any address other than this machine's loopback before anything is bound;
:func:`listen` binds it (port 0: any free port); :func:`api_token` reads the token kept in the keyring
(:mod:`assistant.secrets`), making one on first start. It is never written to a file.
"""

from __future__ import annotations

import errno
import ipaddress
import secrets as random_tokens
import socket
from typing import Any

from assistant import secrets
from assistant.errors import MailvoiceError

TOKEN_NAME = "api"  # the keyring entry (service "mailvoice") holding the API's bearer token
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


class NotLoopback(MailvoiceError):
    """The address asked for would let other machines reach the API."""


def loopback_address(host: str) -> str:
    """The address to bind for ``host``: 127.0.0.1 for ``localhost``, the address itself when it is loopback
    (127.0.0.0/8, ::1); :class:`NotLoopback` for anything else (0.0.0.0, ::, a LAN address, another name)."""
    name = host.strip().strip("[]")
    if name.lower() == "localhost":
        return DEFAULT_HOST  # a name could resolve elsewhere on an odd system; the address cannot
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        ip = None
    if ip is None or not ip.is_loopback:
        raise NotLoopback(f"--host {host} is not this computer's loopback address: the API only listens on "
                          "127.0.0.1, ::1 or localhost, so no other machine can reach it.")  # fmt: skip
    return str(ip)


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host`` (a checked loopback address) and ``port``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # TCP named (not protocol 0), so asyncio sets TCP_NODELAY on each connection: a reply sent in two writes
    # otherwise waits for the client's delayed ACK, 40 ms a request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise MailvoiceError(f"Port {port} on {host} is in use (is Mailvoice already serving?).",
                                 cli="Choose another with --port.") from exc  # fmt: skip
        raise MailvoiceError(f"Cannot listen on {host} port {port} ({exc.strerror or exc}).") from exc
    sock.set_inheritable(True)
    return sock


def api_token(create: bool = True, renew: bool = False) -> tuple[str | None, bool]:
    """(the API's token, whether it was made now). Made and stored on first use when ``create``; ``renew``
    replaces it. :class:`~assistant.secrets.SecretsError` when no usable keyring exists."""
    token = None if renew else secrets.get_token(TOKEN_NAME)
    if token is not None or not create:
        return token, False
    token = random_tokens.token_urlsafe(32)
    secrets.set_token(TOKEN_NAME, token)
    return token, True


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/v1"


def serve(app: Any, sock: socket.socket, *, log_level: str = "warning") -> None:
    """Answer requests on ``sock`` until Ctrl+C (or SIGTERM)."""
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, access_log=False, server_header=False, lifespan="off")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        app.state.executor.shutdown(wait=False, cancel_futures=True)
        sock.close()
