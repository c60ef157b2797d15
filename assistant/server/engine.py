"""What the local API asks of the drafting core: models by name, chat, draft, reply and refine, all synchronous.

An :class:`Engine` holds the data folder and one backend (one loaded model) for the whole server; the web layer
(:mod:`assistant.server.app`) runs every call on its single model thread, so calls never overlap. Each call is
the drafting core itself (:func:`assistant.drafting.draft`, :func:`assistant.drafting.refine`, and for chat the
same streaming, cleaning and sign-off ending as a draft), with ``cancel`` polled while the model writes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from assistant.drafting.backend import Backend, Cancel, GenerationParams, LlamaBackend
from assistant.drafting.prompting import MARGIN, PromptError, ReplyContext, adapter_texts, draft_texts
from assistant.errors import MailvoiceError
from assistant.store.adapters import NONE, adapter_names
from assistant.workspace import Workspace

DEFAULT_MODEL = "mailvoice"  # the voice chosen with `mailvoice use` (an adapter, or the base model alone)
CHAT_MAX_TOKENS = 512  # a chat reply's room when the client names none (an email, not an essay)
MAX_STOPS = 4  # as OpenAI's API allows


class UnknownModel(MailvoiceError):
    """The request named a model that is neither the base model, an adapter, nor ``mailvoice``."""


@dataclass
class ChatResult:
    text: str
    model: str
    finish_reason: str  # "stop" or "length"
    prompt_tokens: int
    completion_tokens: int


class Engine:
    """The drafting core for one data folder, on one backend.

    Args:
        workspace: the data folder (each thread gets its own store connection from it).
        backend: the engine to write with (tests pass a fake); a llama.cpp one, made on first use, when None.
    """

    def __init__(self, workspace: Workspace, backend: Backend | None = None):
        self.workspace = workspace
        self._backend = backend

    @property
    def db(self):
        return self.workspace.db

    def backend(self, settings) -> Backend:
        if self._backend is None:
            self._backend = LlamaBackend(settings)
        return self._backend

    # --- models ------------------------------------------------------------------------------------------

    def base_name(self) -> str:
        """The base model's name: its file name, as drafts record it."""
        from assistant.drafting.models import current_model

        return current_model(self.db)[0].name

    def models(self) -> list[dict[str, Any]]:
        """``mailvoice`` (the voice chosen with ``mailvoice use``), the base model, and each trained adapter."""
        names = [DEFAULT_MODEL, self.base_name(), *adapter_names(self.db)]
        return [{"id": name, "object": "model", "created": 0, "owned_by": "mailvoice"} for name in names]

    def adapter_for(self, model: str | None) -> str | None:
        """The drafting core's ``adapter`` argument for a requested model name; :class:`UnknownModel` if none."""
        if model in (None, "", DEFAULT_MODEL):
            return None
        if model in (self.base_name(), NONE):
            return NONE
        if model in adapter_names(self.db):
            return model
        known = ", ".join(m["id"] for m in self.models())
        raise UnknownModel(f"The model {model!r} does not exist. Available: {known}.")

    # --- calls -------------------------------------------------------------------------------------------

    def chat(
        self,
        messages: list[dict[str, str]],
        model: str | None,
        *,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        stop: list[str] | None = None,
        on_chunk: Callable[[str], None] | None = None,
        cancel: Cancel | None = None,
    ) -> ChatResult:
        """Answer a chat conversation in the user's voice.

        The model is told whose voice to write in (the drafting prompt's system text: the user's name, greeting
        and sign-off); the client's own system messages follow it; the reply is cleaned and ended at the user's
        sign-off as a draft is.
        """
        import assistant.drafting.drafts as drafts_module
        from assistant.drafting.models import engine_settings
        from assistant.drafting.postprocess import StreamCleaner
        from assistant.drafting.prompting import _habits
        from assistant.drafting.voice import learn_voice

        settings, adapter = engine_settings(self.db, None, self.adapter_for(model))
        backend = self.backend(settings)
        backend.configure(settings)
        voice = learn_voice(self.db)
        texts = adapter_texts(settings.lora_path) or draft_texts()
        system = texts["draft_system"].format(me=voice.name or "the user", habits=_habits(voice, ""))
        own = [m["content"] for m in messages if m["role"] in ("system", "developer")]
        turns = [m for m in messages if m["role"] not in ("system", "developer")]
        prompt = [{"role": "system", "content": "\n\n".join([system.strip(), *own])}, *turns]
        prompt_tokens = sum(backend.count_tokens(m["content"]) + MARGIN for m in prompt)
        room = backend.n_ctx - prompt_tokens
        if room < 16:
            raise PromptError(f"The conversation is too long for the model's {backend.n_ctx:,}-token context "
                              "window: send less of it.")  # fmt: skip
        params = GenerationParams(
            max_tokens=min(max_tokens or CHAT_MAX_TOKENS, room),
            temperature=GenerationParams.temperature if temperature is None else temperature,
            top_p=GenerationParams.top_p if top_p is None else top_p,
            seed=seed,
            stop=(*drafts_module.STOP, *(stop or [])[:MAX_STOPS]),
        )
        cleaner = StreamCleaner(me=voice.first_name)
        with drafts_module._generating:
            _first, chunks = drafts_module._generate(
                backend, prompt, params, cleaner, on_chunk, cancel, [voice.first_name, voice.name]
            )
        raw = cleaner.raw
        completion = max(chunks, backend.count_tokens(raw) if raw else 0)
        name = model or DEFAULT_MODEL
        reason = "length" if completion >= params.max_tokens else "stop"
        return ChatResult(cleaner.text, name, reason, prompt_tokens, completion)

    def draft(
        self,
        instruction: str,
        *,
        context: str | None = None,
        message_id: str | None = None,
        model: str | None = None,
        on_chunk: Callable[[str], None] | None = None,
        cancel: Cancel | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        """One draft as ``mailvoice draft`` writes it (saved); ``context`` is the text of an email to answer,
        ``message_id`` a stored one's. Returns ``mailvoice draft --json``'s object."""
        from assistant.drafting import draft
        from assistant.drafting.models import engine_settings

        adapter = self.adapter_for(model)
        reply = reply_from_text(context) if context and context.strip() else None
        backend = self.backend(engine_settings(self.db, None, adapter)[0])
        show = (lambda _i, text: on_chunk(text)) if on_chunk else None
        result = draft(self.db, instruction, reply_to=message_id, reply_context=reply, adapter=adapter,
                       backend=backend, on_chunk=show, cancel=cancel, **options)  # fmt: skip
        return result.to_json()

    def refine(
        self,
        text: str,
        how: str,
        *,
        language: str | None = None,
        model: str | None = None,
        seed: int | None = None,
        on_chunk: Callable[[str], None] | None = None,
        cancel: Cancel | None = None,
    ) -> dict[str, Any]:
        """``text`` rewritten as ``how`` asks; returns ``mailvoice refine --json``'s object."""
        from assistant.drafting import refine
        from assistant.drafting.models import engine_settings

        adapter = self.adapter_for(model)
        backend = self.backend(engine_settings(self.db, None, adapter)[0])
        result = refine(self.db, text, how, language=language, backend=backend, adapter=adapter, seed=seed,
                        cancel=cancel, on_chunk=on_chunk)  # fmt: skip
        return result.to_json()


def reply_from_text(text: str) -> ReplyContext:
    """The email to answer, given as text: a whole email (headers, then its body) is parsed and cleaned as an
    imported one is; anything else is taken as the email's text."""
    from assistant.mail.clean import clean_body
    from assistant.mail.parse import parse_message

    msg = parse_message(text.encode("utf-8", errors="replace"))
    if msg.from_addr or msg.subject or msg.headers.get("date"):
        body = clean_body(msg.text, msg.subject).text
        return ReplyContext("", "text", msg.from_name, msg.from_addr, msg.date or "", msg.subject, body)
    return ReplyContext("", "text", "", "", "", "", clean_body(text).text or text.strip())
