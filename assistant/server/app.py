"""The local API as a FastAPI app: OpenAI's models and chat completions, and Mailvoice's draft, reply and refine.

:func:`create_app` takes the :class:`~assistant.server.engine.Engine` (tests pass one on a fake backend) and the
token. Every call that writes runs on one model thread, in arrival order (:class:`Job`); a client that goes away
stops its generation (the drafting core's ``cancel``), also while it still waits for its turn. Errors are JSON in
OpenAI's shape, never a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from assistant.drafting.prompting import PromptError
from assistant.errors import Cancelled, MailvoiceError
from assistant.server.engine import Engine, UnknownModel
from assistant.server.guard import Guard, Limits, error_body
from assistant.store.adapters import AdapterError

log = logging.getLogger("mailvoice.server")
POLL_SECONDS = 0.25  # how often a waiting request checks that its client is still there


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class Message(_Body):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):  # content parts: the text ones ({"type": "text", "text": ...})
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(_Body):
    model: str
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    max_tokens: int | None = Field(None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(None, ge=1, le=8192)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = Field(1, ge=1, le=1)
    stream_options: dict[str, Any] | None = None


class DraftOptions(_Body):
    instruction: str = Field(min_length=1, max_length=8000)
    model: str | None = None
    to: str | None = None
    tone: str | None = Field(None, max_length=200)
    length: Literal["short", "medium", "long"] | None = None
    n: int = Field(1, ge=1, le=5)
    seed: int | None = None
    examples: bool = True


class DraftRequest(DraftOptions):
    context: str | None = None  # the text of an email this one answers, if any


class ReplyRequest(DraftOptions):
    email: str | None = None  # the email to answer, as text (whole, with headers, or only its body)
    message_id: str | None = None  # or a stored email's Message-ID

    @model_validator(mode="after")
    def _one_email(self) -> ReplyRequest:
        if bool(self.email and self.email.strip()) == bool(self.message_id and self.message_id.strip()):
            raise ValueError("give the email to answer as either email (its text) or message_id, not both")
        return self


class RefineRequest(_Body):
    text: str = Field(min_length=1)
    how: Literal["shorter", "longer", "formal", "friendly", "fix", "translate"]
    language: str | None = None
    model: str | None = None
    seed: int | None = None


class Busy(Exception):
    """Too many requests wait for the model already."""


class Job:
    """One call of the engine on the model thread, its chunks delivered to the event loop as they come when
    ``streaming`` (otherwise none are: each would wake the event loop for nothing)."""

    def __init__(self, app: FastAPI, call: Callable[..., Any], streaming: bool = False):
        state = app.state
        if state.waiting >= state.limits.max_waiting:
            raise Busy()
        state.waiting += 1
        self.stop = threading.Event()
        self.events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        loop = asyncio.get_running_loop()

        def on_chunk(text: str) -> None:
            loop.call_soon_threadsafe(self.events.put_nowait, ("chunk", text))

        def run() -> Any:
            if self.stop.is_set():  # its client went while it waited: the model never starts
                raise Cancelled()
            return call(on_chunk if streaming else None, self.stop.is_set)

        self.future = loop.run_in_executor(state.executor, run)
        self.future.add_done_callback(lambda f: self._finished(state, f))

    def _finished(self, state: Any, future: asyncio.Future) -> None:
        state.waiting -= 1
        self.events.put_nowait(("done", future))

    async def next(self, request: Request) -> tuple[str, Any]:
        """("chunk", text), ("done", result) or ("gone", None) once the client left (generation then stops).
        The job's exception is raised."""
        while True:
            try:
                kind, value = await asyncio.wait_for(self.events.get(), POLL_SECONDS)
            except asyncio.TimeoutError:
                if await request.is_disconnected():
                    self.stop.set()
                    return "gone", None
                continue
            return (kind, value.result()) if kind == "done" else (kind, value)

    async def result(self, request: Request) -> Any:
        """The call's result, skipping its chunks."""
        while True:
            kind, value = await self.next(request)
            if kind == "done":
                return value
            if kind == "gone":
                raise Cancelled()


def create_app(engine: Engine, token: str, limits: Limits | None = None) -> FastAPI:
    """The API over ``engine``, answering only requests that carry ``token``."""
    limits = limits or Limits()
    app = FastAPI(title="Mailvoice", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.engine = engine
    app.state.limits = limits
    app.state.waiting = 0
    app.state.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mailvoice-model")
    app.add_middleware(Guard, token=token, limits=limits)
    _errors(app)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": await run_in_threadpool(engine.models)}

    @app.get("/v1/models/{model:path}")
    async def model(model: str) -> dict[str, Any]:
        found = [m for m in await run_in_threadpool(engine.models) if m["id"] == model]
        if not found:
            await run_in_threadpool(engine.adapter_for, model)  # says what there is
        return found[0]

    @app.post("/v1/chat/completions", response_model=None)
    async def chat(body: ChatRequest, request: Request) -> Any:
        await run_in_threadpool(engine.adapter_for, body.model)  # an unknown model: 404 before anything runs
        stop = [body.stop] if isinstance(body.stop, str) else body.stop
        messages = [{"role": m.role, "content": m.text()} for m in body.messages]
        options = {"max_tokens": body.max_completion_tokens or body.max_tokens, "temperature": body.temperature,
                   "top_p": body.top_p, "seed": body.seed, "stop": stop}  # fmt: skip
        job = Job(app, lambda show, cancel: engine.chat(messages, body.model, on_chunk=show, cancel=cancel, **options),
                  streaming=body.stream)  # fmt: skip
        first = await job.next(request)  # an error before the first word is still an HTTP error
        if first[0] == "gone":
            return JSONResponse(error_body("The client went away.", "invalid_request_error"), 499)
        if not body.stream:
            result = first[1] if first[0] == "done" else await job.result(request)
            return _completion(result)
        usage = bool((body.stream_options or {}).get("include_usage"))
        return StreamingResponse(_sse(job, first, request, body.model, usage), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache"})  # fmt: skip

    @app.post("/v1/draft")
    async def draft(body: DraftRequest, request: Request) -> Any:
        options = body.model_dump(exclude={"instruction", "context", "model"})

        def call(show: Callable[[str], None], cancel: Callable[[], bool]) -> Any:
            return engine.draft(body.instruction, context=body.context, model=body.model, on_chunk=show,
                                cancel=cancel, **options)  # fmt: skip

        return await _run(app, request, body.model, call)

    @app.post("/v1/reply")
    async def reply(body: ReplyRequest, request: Request) -> Any:
        options = body.model_dump(exclude={"instruction", "email", "message_id", "model"})

        def call(show: Callable[[str], None], cancel: Callable[[], bool]) -> Any:
            return engine.draft(body.instruction, context=body.email, message_id=body.message_id, model=body.model,
                                on_chunk=show, cancel=cancel, **options)  # fmt: skip

        return await _run(app, request, body.model, call)

    @app.post("/v1/refine")
    async def refine(body: RefineRequest, request: Request) -> Any:
        def call(show: Callable[[str], None], cancel: Callable[[], bool]) -> Any:
            return engine.refine(body.text, body.how, language=body.language, model=body.model, seed=body.seed,
                                 on_chunk=show, cancel=cancel)  # fmt: skip

        return await _run(app, request, body.model, call)

    return app


async def _run(app: FastAPI, request: Request, model: str | None, call: Callable[..., Any]) -> Any:
    """``call`` on the model thread (after the model it names is checked); its result once it is done."""
    await run_in_threadpool(app.state.engine.adapter_for, model)
    return await Job(app, call).result(request)


def _completion(result: Any) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": result.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": result.text},
                "finish_reason": result.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": _usage(result),
    }


def _usage(result: Any) -> dict[str, int]:
    return {"prompt_tokens": result.prompt_tokens, "completion_tokens": result.completion_tokens,
            "total_tokens": result.prompt_tokens + result.completion_tokens}  # fmt: skip


async def _sse(job: Job, first: tuple[str, Any], request: Request, model: str, usage: bool) -> AsyncIterator[str]:
    """The reply as OpenAI's chunks (``chat.completion.chunk`` events), then ``data: [DONE]``."""
    base = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": model}  # fmt: skip

    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return f"data: {json.dumps({**base, 'choices': [choice], **extra}, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    kind, value = first
    try:
        while kind == "chunk":
            yield event({"content": value})
            kind, value = await job.next(request)
        if kind == "gone":
            return
        yield event({}, value.finish_reason)
        if usage:
            yield f"data: {json.dumps({**base, 'choices': [], 'usage': _usage(value)})}\n\n"
    except Exception as exc:  # the headers are sent: the error goes as an event, as OpenAI sends one
        _status, payload = _error(exc)
        yield f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"
    finally:
        job.stop.set()  # a client that left stops the model (a finished job ignores it)
    yield "data: [DONE]\n\n"


def _error(exc: BaseException) -> tuple[int, dict[str, Any]]:
    """The HTTP status and OpenAI-shaped body for an exception of a call."""
    if isinstance(exc, UnknownModel | AdapterError):
        return 404, error_body(str(exc), "invalid_request_error", "model_not_found", "model")
    if isinstance(exc, PromptError):
        return 400, error_body(str(exc), "invalid_request_error")
    if isinstance(exc, Busy):
        return 503, error_body("The model is busy with other requests: try again shortly.", "server_error",
                               "overloaded")  # fmt: skip
    if isinstance(exc, Cancelled):
        return 499, error_body("The client went away.", "invalid_request_error")
    if isinstance(exc, MailvoiceError):
        return 500, error_body(str(exc), "server_error")
    log.error("request failed", exc_info=exc)
    return 500, error_body("Mailvoice failed on this request; run mailvoice serve -v to log why.", "server_error")


def _errors(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = exc.errors()
        if any(p.get("type") == "json_invalid" for p in problems):
            return JSONResponse(error_body("The request body is not valid JSON.", "invalid_request_error",
                                           "invalid_json"), 400)  # fmt: skip
        first = problems[0] if problems else {}
        where = ".".join(str(x) for x in first.get("loc", ()) if x != "body")
        message = f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "invalid request"))
        return JSONResponse(error_body(message, "invalid_request_error", "invalid_request", where or None), 422)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(error_body(str(exc.detail), "invalid_request_error"), exc.status_code)

    async def expected(_request: Request, exc: Exception) -> JSONResponse:
        status, payload = _error(exc)
        return JSONResponse(payload, status, headers={"retry-after": "5"} if status == 503 else None)

    for kind in (MailvoiceError, Busy, Cancelled):
        app.add_exception_handler(kind, expected)
    # A bug: the client gets a JSON 500 without the traceback; the server's log has it.
    app.add_exception_handler(Exception, expected)
