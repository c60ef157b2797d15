"""The local API's gate: every request passes it before any route sees it.

In order: a request from a web page (an ``Origin`` header) or addressed to a name other than this machine (a
``Host`` that is not loopback: DNS rebinding) is refused with 403; a client over its rate gets 429; a wrong or
missing bearer token 401; a body over the size limit 413. The body is read here, whole, so the limit holds for
chunked uploads too. Every refusal is a JSON error in OpenAI's shape (:func:`error_body`). There is no CORS:
no browser page may call the API.
"""

from __future__ import annotations

import hmac
import json
import math
import time
from dataclasses import dataclass
from typing import Any

from assistant.netguard import is_local_host

Scope = dict[str, Any]


@dataclass(frozen=True)
class Limits:
    """What one client may ask of the server."""

    max_body_bytes: int = 256 * 1024
    """A request body's limit (a long email is a few KB)."""
    rate_per_minute: float = 120.0
    """Requests a client may make per minute, sustained."""
    burst: int = 30
    """Requests a client may make at once, over its rate."""
    max_waiting: int = 64
    """Requests that may wait for the model at once; more are refused with 503."""


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    """An error as OpenAI's API writes one (its clients read ``error.message``)."""
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


class RateLimiter:
    """A token bucket per client: ``burst`` requests at once, refilled at ``rate_per_minute``."""

    def __init__(self, rate_per_minute: float, burst: int, clock=time.monotonic):
        self.rate = rate_per_minute / 60.0
        self.burst = burst
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, when)

    def allow(self, client: str) -> float:
        """0 when the request may go ahead; else the seconds until it may."""
        now = self.clock()
        tokens, then = self._buckets.get(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens >= 1:
            self._buckets[client] = (tokens - 1, now)
            return 0.0
        self._buckets[client] = (tokens, now)
        return (1 - tokens) / self.rate if self.rate > 0 else 60.0


class Guard:
    """ASGI middleware: origin and host, rate, token, body size (see the module docstring)."""

    def __init__(self, app: Any, token: str, limits: Limits):
        self.app = app
        self.token = token.encode("utf-8")
        self.limits = limits
        self.rate = RateLimiter(limits.rate_per_minute, limits.burst)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _respond(send, *refusal)
            return
        body = await self._body(headers, receive, send)
        if body is None:
            return
        sent = False

        async def replay() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the disconnect, when the client goes

        await self.app(scope, replay, send)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        if "origin" in headers:
            return 403, error_body("Requests from web pages are refused: the Mailvoice API is for mail apps on "
                                   "this computer.", "permission_error", "origin_refused"), {}  # fmt: skip
        if not is_local_host(_host_name(headers.get("host", ""))):
            return 403, error_body("The Host header must name this computer (127.0.0.1, ::1 or localhost).",
                                   "permission_error", "host_refused"), {}  # fmt: skip
        client = (scope.get("client") or ("?", 0))[0]
        wait = self.rate.allow(client)
        if wait:
            seconds = max(1, math.ceil(wait))
            return 429, error_body(f"Too many requests: try again in {seconds} s.", "rate_limit_error",
                                   "rate_limited"), {"retry-after": str(seconds)}  # fmt: skip
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("utf-8"), self.token):
            return 401, error_body("Missing or wrong API token: send 'Authorization: Bearer TOKEN' with the token "
                                   "mailvoice serve --show-token prints.", "invalid_request_error",
                                   "invalid_api_key"), {"www-authenticate": "Bearer"}  # fmt: skip
        return None

    async def _body(self, headers: dict[str, str], receive: Any, send: Any) -> bytes | None:
        """The whole request body, or None once a 413 (or nothing, for a client gone) was answered."""
        limit = self.limits.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _respond(send, *_too_large(limit))
            return None
        parts, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _respond(send, *_too_large(limit))
                return None
            parts.append(chunk)
            more = message.get("more_body", False)
        return b"".join(parts)


def _too_large(limit: int) -> tuple[int, dict[str, Any], dict[str, str]]:
    return 413, error_body(f"The request body is over {limit // 1024} KB: send one email at a time.",
                           "invalid_request_error", "body_too_large"), {}  # fmt: skip


def _host_name(host: str) -> str:
    """``127.0.0.1:8765`` → ``127.0.0.1``; ``[::1]:8765`` → ``::1``."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


async def _respond(send: Any, status: int, payload: dict[str, Any], extra: dict[str, str]) -> None:
    body = json.dumps(payload).encode("utf-8")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
