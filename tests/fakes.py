"""Deterministic fakes of the product's engines, for tests (the product ships none)."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace

from assistant.drafting.backend import Backend, Cancel, EngineSettings, GenerationParams, Messages
from assistant.drafting.parallel import Completion, Feed, OnDone, Parallel, RunStats
from assistant.errors import Cancelled

_WORDS = re.compile(r"\s*\S+|\s+$")


@dataclass
class FakeBackend(Backend):
    """Streams queued replies word by word and records every prompt; deterministic, for tests.

    With no reply queued it answers ``"Reply N"``. ``max_tokens`` counts words and stop strings cut the
    reply, as a real model would.
    """

    replies: Iterable[str] = ()
    settings: EngineSettings = field(default_factory=lambda: EngineSettings(model_path="fake.gguf", n_ctx=2048))
    prompts: list[Messages] = field(default_factory=list)
    params: list[GenerationParams] = field(default_factory=list)
    configured: list[EngineSettings] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue = deque(self.replies)

    def enqueue(self, *replies: str) -> None:
        self._queue.extend(replies)

    def configure(self, settings: EngineSettings) -> None:
        # Keep the fake's context size: tests pick it to exercise the budget.
        self.settings = replace(settings, n_ctx=self.settings.n_ctx)
        self.configured.append(self.settings)

    def stream(self, messages: Messages, params: GenerationParams, cancel: Cancel | None = None) -> Iterator[str]:
        self.prompts.append([dict(m) for m in messages])
        self.params.append(params)
        reply = self._queue.popleft() if self._queue else f"Reply {len(self.prompts)}"
        cuts = [reply.find(s) for s in params.stop if s and s in reply]
        if cuts:
            reply = reply[: min(cuts)]
        for i, word in enumerate(_WORDS.findall(reply)):
            if i >= params.max_tokens or (cancel is not None and cancel()):
                return
            yield word

    def count_tokens(self, text: str) -> int:
        return len(text.split())


class FakeParallel(Parallel):
    """Runs jobs ``width`` at a time on a fake backend's streams, one word per job per step (round robin), so
    replies end out of order as in the real engine; deterministic. ``peak``: the most jobs in flight at once."""

    def __init__(self, backend: Backend, width: int):
        self.backend, self.width, self.peak, self.closed = backend, width, 0, False

    def run(self, feed: Feed, on_done: OnDone, cancel: Cancel | None = None) -> RunStats:
        stats = RunStats()
        active: list[list] = []  # [job, stream, words]
        while True:
            if cancel is not None and cancel():
                raise Cancelled()
            while len(active) < self.width and (job := feed()) is not None:
                # As the real engine: cancel is checked between steps, never cuts a reply short.
                active.append([job, self.backend.stream(job.messages, job.params), []])
                stats.peak = self.peak = max(stats.peak, len(active))
            if not active:
                return stats
            for entry in list(active):
                job, stream, words = entry
                word = next(stream, None)
                if word is not None:
                    words.append(word)
                    text = "".join(words)
                    if job.until is None or not job.until(text, len(words)):
                        continue
                active.remove(entry)
                stream.close()
                stats.replies += 1
                on_done(job, Completion("".join(words), len(words), len(words), "stop", 0, 0, 0.0))

    def close(self) -> None:
        self.closed = True
