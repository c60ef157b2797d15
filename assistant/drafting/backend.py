"""Text generation behind one small interface: chat messages in, text chunks out.

:class:`Backend` is all the drafting code knows about a model. :class:`LlamaBackend` runs a GGUF with
llama-cpp-python; the tests put a deterministic fake behind the same interface (``tests/fakes.py``), so every
piece of the drafting path is tested without a model. Nothing here knows about mail or the store.
"""

from __future__ import annotations

import abc
import atexit
import functools
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.errors import MailvoiceError

log = logging.getLogger("mailvoice.drafting")

Messages = list[dict[str, str]]
Cancel = Callable[[], bool]


@dataclass(frozen=True)
class GenerationParams:
    """How to sample one reply; changing these never reloads the model."""

    max_tokens: int = 320
    """Upper bound on generated tokens (the length option picks it)."""
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    """Small models loop on greetings without a mild penalty."""
    seed: int | None = None
    """Fixed seed for a reproducible draft; alternatives use different seeds."""
    stop: tuple[str, ...] = ()
    """Extra stop strings, on top of the chat template's end-of-turn token."""
    grammar: str | None = None
    """A GBNF grammar (llama.cpp's format) the reply must follow, e.g. to force how it starts; None = free text."""
    aim_tokens: int | None = None
    """The length the reply should have, in tokens: past it, the reply is brought to a close at its next
    sentence and line end (see :class:`CloseNear`). None: it ends where the model ends it, within ``max_tokens``."""
    floor_tokens: int | None = None
    """Before this many tokens the close is held back (see :class:`CloseNear`); None: ``FLOOR`` of the aim."""
    closings: tuple[str, ...] = ()
    """How the writer closes a message ("Best,", "Thanks,"): past ``aim_tokens`` these become likelier at a line
    start, as does the end of the turn."""
    signed: tuple[str, ...] = ()
    """The names the writer signs with ("Kay", "Kay Brown"): past ``aim_tokens``, a closing line with one of them
    ("Kay", "Thanks,Kay") is the whole sign-off, and the end of the turn is made likelier right after it."""

    def to_json(self) -> dict[str, Any]:
        out = {**self.__dict__, "stop": list(self.stop), "closings": list(self.closings), "signed": list(self.signed)}
        for name in ("grammar", "aim_tokens", "floor_tokens"):
            if out[name] is None:
                del out[name]  # most replies are free text, with no aim: keep their records as they were
        for name in ("closings", "signed"):
            if not out[name]:
                del out[name]
        return out


@dataclass(frozen=True)
class EngineSettings:
    """What a loaded model depends on; a change means loading the model again."""

    model_path: str
    n_ctx: int = 4096
    """Context window in tokens (prompt + draft); bounded by what the model was trained for."""
    n_threads: int | None = None
    """CPU threads for generation; None picks a default for this machine (see :func:`default_threads`)."""
    n_gpu_layers: int | None = None
    """Layers to offload to a GPU (-1 = all); None = all when llama.cpp was built with GPU support."""
    lora_path: str | None = None
    """A LoRA adapter GGUF applied on top of the model, or None."""
    lora_scale: float = 1.0


def default_threads() -> int:
    """Generation threads: every CPU on small machines, half of them on large ones.

    llama.cpp generation is memory-bound and runs best on physical cores; on machines with more than four
    logical CPUs these are usually hyper-threads, so half is the better guess (llama-cpp-python's own default
    of half starves 2-core machines).
    """
    cpus = usable_cpus()
    return cpus if cpus <= 4 else cpus // 2


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one, e.g. under ``taskset``)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 2


class Backend(abc.ABC):
    """A chat model that streams text. One stream at a time per backend."""

    settings: EngineSettings

    @abc.abstractmethod
    def stream(self, messages: Messages, params: GenerationParams, cancel: Cancel | None = None) -> Iterator[str]:
        """Yield the reply to ``messages`` in chunks. Stops early when ``cancel()`` turns true or the
        generator is closed."""

    def configure(self, settings: EngineSettings) -> None:
        """Use other engine settings (model, adapter, context) from the next stream on."""
        self.settings = settings

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` takes in the prompt; a ~4 characters per token estimate unless overridden."""
        return (len(text) + 3) // 4

    @property
    def n_ctx(self) -> int:
        return self.settings.n_ctx

    def parallel(self, width: int | None = None) -> Any:
        """An engine that generates several replies at once on this backend's model (``width`` in flight,
        None: chosen for the model and machine), or None where there is none: then it is one at a time.
        (llama.cpp's is made by :func:`assistant.drafting.parallel.engine_for`.)"""
        return None


# --- llama.cpp --------------------------------------------------------------------------------------------

_loaded: tuple[tuple, Any] | None = None  # (settings key, Llama): one model in memory at a time
_load_lock = threading.Lock()


def _key(settings: EngineSettings) -> tuple:
    path = Path(settings.model_path)
    mtime = path.stat().st_mtime_ns if path.exists() else 0
    lora_mtime = Path(settings.lora_path).stat().st_mtime_ns if settings.lora_path else 0
    return (
        str(path.resolve()),
        mtime,
        settings.n_ctx,
        settings.n_threads,
        settings.n_gpu_layers,
        settings.lora_path,
        lora_mtime,
        settings.lora_scale,
    )


def llama_kwargs(settings: EngineSettings) -> dict[str, Any]:
    """Keyword arguments for ``llama_cpp.Llama`` (besides the model path) from engine settings."""
    from llama_cpp import llama_supports_gpu_offload

    gpu_layers = settings.n_gpu_layers
    if gpu_layers is None:
        gpu_layers = -1 if llama_supports_gpu_offload() else 0
    return {
        "n_ctx": settings.n_ctx,
        "n_threads": settings.n_threads or default_threads(),
        "n_threads_batch": usable_cpus(),  # reading the prompt is compute-bound: every CPU it may use helps
        "n_gpu_layers": gpu_layers,
        "lora_path": settings.lora_path,
        "lora_scale": settings.lora_scale,
        "verbose": False,
    }


def _load(settings: EngineSettings) -> Any:
    """Return the Llama object for ``settings``, loading it (and freeing the previous one) when needed.

    Only one model stays loaded: an 8B model takes ~5 GB, and keeping the old one while an adapter is
    switched would double that.
    """
    global _loaded
    key = _key(settings)
    with _load_lock:
        if _loaded is not None and _loaded[0] == key:
            return _loaded[1]
        if _loaded is not None:
            _loaded[1].close()
            _loaded = None
        from llama_cpp import Llama  # imported late: the CLI starts fast without it

        started = time.perf_counter()
        try:
            llm = Llama(settings.model_path, **llama_kwargs(settings))
        except (ValueError, RuntimeError) as exc:
            what = f"the adapter {settings.lora_path} on " if settings.lora_path else ""
            raise MailvoiceError(
                f"llama.cpp could not load {what}{settings.model_path} ({exc}). Check the file is complete; "
                "a model that needs a newer llama.cpp, or an adapter made for another base model, "
                "fails like this."
            ) from exc
        log.info("loaded %s in %.1fs", Path(settings.model_path).name, time.perf_counter() - started)
        _loaded = (key, llm)
        return llm


def unload() -> None:
    """Free the loaded model (the GUI may call this to give the memory back)."""
    global _loaded
    with _load_lock:
        if _loaded is not None:
            _loaded[1].close()
            _loaded = None


# Free it before interpreter shutdown: llama-cpp-python's own finaliser fails once module globals are gone.
atexit.register(unload)


class LlamaBackend(Backend):
    """llama-cpp-python on a GGUF; the chat template in the GGUF's metadata formats the messages."""

    def __init__(self, settings: EngineSettings):
        self.settings = settings
        self._token_texts: TokenTexts | None = None

    @property
    def llama(self) -> Any:
        return _load(self.settings)

    def load(self) -> float:
        """Load the model now (instead of on the first draft); return the seconds it took."""
        started = time.perf_counter()
        self.llama  # noqa: B018 - loading is the side effect wanted
        return time.perf_counter() - started

    def stream(self, messages: Messages, params: GenerationParams, cancel: Cancel | None = None) -> Iterator[str]:
        processors = logits_processors(self.llama, params, self._texts())
        chunks = self.llama.create_chat_completion(
            messages,
            stream=True,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            min_p=params.min_p,
            repeat_penalty=params.repeat_penalty,
            seed=params.seed,
            stop=list(params.stop),
            grammar=_grammar(params.grammar),
            logits_processor=processors,
        )
        try:
            for chunk in chunks:
                if cancel is not None and cancel():
                    return
                text = chunk["choices"][0]["delta"].get("content")
                if text:
                    yield text
        finally:
            chunks.close()  # stops llama.cpp at once when our caller stops early

    def count_tokens(self, text: str) -> int:
        return len(self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def _texts(self) -> TokenTexts:
        llama = self.llama
        if self._token_texts is None or self._token_texts.llama is not llama:  # a new model: new tokens
            self._token_texts = TokenTexts(llama)
        return self._token_texts


def logits_processors(llama: Any, params: GenerationParams, texts: TokenTexts | None = None) -> Any:
    """The logits processors of a reply: :class:`CloseNear` for ``aim_tokens``, then :class:`EndOfTurn` where the
    model has turn starts to fold away (after the hold on the close, so that a reply the model ends with a turn
    start ends there even before the floor: held on, it wrote "Best regards,Kay Morgan-Hartmankin…"); None when
    neither applies."""
    from llama_cpp import LogitsProcessorList

    starts = turn_starts(llama)
    last = [EndOfTurn(starts, llama.token_eos())] if starts else []
    if not params.aim_tokens:
        return LogitsProcessorList(last) if last else None

    texts = texts if texts is not None and texts.llama is llama else TokenTexts(llama)
    openers = [t for t in (texts.first_token(c) for c in params.closings) if t >= 0]
    spaced = [t for t in (texts.word_token(c) for c in (*params.closings, *COMMON_CLOSINGS)) if t >= 0]
    common = [t for t in (texts.whole_word_token(c) for c in COMMON_CLOSINGS) if t >= 0]
    closer = CloseNear(
        params.aim_tokens,
        texts,
        texts.first_token("\n"),
        [llama.token_eos()],
        openers,
        floor=params.floor_tokens,
        spaced=spaced,
        held=common,
        signed=params.signed,
        line_text=texts.join,
        tokens_per_word=TOKENS_PER_WORD,
    )
    return LogitsProcessorList([closer, *last])


_turn_starts: weakref.WeakKeyDictionary[Any, list[int]] = weakref.WeakKeyDictionary()


def turn_starts(llama: Any) -> list[int]:
    """The model's control tokens that do not end generation (SmolLM2's and Qwen's ``<|im_start|>``, Llama 3's
    ``<|start_header_id|>``), found once per loaded model."""
    found = _turn_starts.get(llama)
    if found is None:
        import llama_cpp

        vocab = llama._model.vocab
        control = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
        found = [
            t
            for t in range(llama.n_vocab())
            if llama_cpp.llama_vocab_get_attr(vocab, t) & control and not llama_cpp.llama_vocab_is_eog(vocab, t)
        ]
        _turn_starts[llama] = found
    return found


class EndOfTurn:
    """A llama.cpp logits processor that ends a reply where the model would begin a new turn.

    A chat model ends its reply with an end-of-turn token. Now and then it writes the start of another turn
    instead: a control token such as SmolLM2's ``<|im_start|>``, then "assistant" and a second message (Kay
    Brown's adapter drafts ended "Cheers,\nKayassistant" and ran on; QUALITY.md). llama.cpp does not stop at
    such a token and it decodes to nothing, so no stop string sees it. This gives its chance to the end of the
    turn (``end``), so the reply ends where the model meant to leave it.
    """

    def __init__(self, starts: list[int], end: int):
        import numpy as np

        self.starts = np.asarray(starts, dtype=np.intp)
        self.end = end

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import numpy as np

        scores[self.end] = np.logaddexp(scores[self.end], np.logaddexp.reduce(scores[self.starts]))
        scores[self.starts] = -np.inf
        return scores


class TokenTexts:
    """The text of single tokens of one loaded model, each decoded once."""

    def __init__(self, llama: Any):
        self.llama = llama
        self._texts: dict[int, str] = {}

    def __call__(self, token: int) -> str:
        text = self._texts.get(token)
        if text is None:
            text = self._texts[token] = self.llama.detokenize([token]).decode("utf-8", errors="ignore")
        return text

    def first_token(self, text: str) -> int:
        """The token ``text`` starts with at the start of a line (-1 for empty text)."""
        ids = self.llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        return int(ids[0]) if ids else -1

    def word_token(self, text: str) -> int:
        """The token of a closing's first word after a space (" Best"), where that word closes by itself
        ("Best,Jeff", "Thanks,", "Kay"; not "All the best", "Thank you": " All" and " Thank" begin sentences)
        and is a single token (" Sincerely" starts " Since"); else -1."""
        word = _CLOSING_WORD.match(text.strip())
        if not word:
            return -1
        ids = self.llama.tokenize(f" {word.group(1)}".encode(), add_bos=False, special=False)
        return int(ids[0]) if len(ids) == 1 else -1

    def join(self, tokens: list[int]) -> str:
        """The text of ``tokens`` together (a character may take two tokens that do not decode alone)."""
        return self.llama.detokenize(list(tokens)).decode("utf-8", errors="ignore")

    def whole_word_token(self, text: str) -> int:
        """The token ``text`` starts with at the start of a line where that token is its whole first word ("Best"
        of "Best regards,"; not "S" of "Sincerely,": it begins other words too); else -1."""
        word = re.match(r"[^\W\d_]+", text.strip())
        token = self.first_token(text) if word else -1
        return token if token >= 0 and self(token).strip() == word.group(0) else -1


# Tokens a word of English takes in Llama/SmolLM-style vocabularies (SmolLM2: a median of 1.30 to 1.45 in the drafts
# of QUALITY.md's sets, `bench/quality.py --lengths`; a line of code takes more). A length is said in words; drafting
# counts tokens.
TOKENS_PER_WORD = 1.4
# Past the aim, the push on the close (added to its logits) grows from the first to the second figure as the
# reply runs from its aimed length to twice that: +4 makes a closing token about 50 times likelier, +12 all but
# certain, so a reply that has said what it had to ends at once and one still mid-thought ends soon after.
PUSH_AT_AIM, PUSH_AT_TWICE = 4.0, 12.0
# Closings anyone may sign off with, held back before the floor as the writer's own are (``CloseNear``'s ``held``,
# and ``spaced`` after a sentence and a space): at a line start only where the closing's first token is its whole
# first word (``TokenTexts.whole_word_token``: on SmolLM2 "Best" and "Kind"; "Cheers" starts "Che", as "Check" does,
# so it is not held). Not "Thanks" or "Thank you" ("Thanks for the patch." is a sentence), which are held where they
# are the writer's own closings.
COMMON_CLOSINGS = ("Best regards,", "Regards,", "Kind regards,", "Warm regards,", "Cheers,", "Sincerely,", "Yours,",
                   "Warmly,", "Cordially,", "Respectfully,")  # fmt: skip
# Before FLOOR of the length asked for is written, the close is held back by HOLD (twice the push at the aim): adapters
# trained on little mail often sign off after two sentences where their writer says five. At 0.8 the hold reaches the
# aim for short drafts (up to 46 words for a writer who signs "Kay", 85 with the room for a usual sign-off, see
# ``Length.closing_with``), so those end past it and not anywhere from 60% on. At 8 (a closing word or the end 3,000
# times less likely), fewer adapter drafts stop at two sentences than at 4; a model that signs off all the same with a
# closing word the user does not use ("best,Jeff", "Cheers,Jeff") is not let go by the hold, and is stopped after the
# user's name by ``postprocess.signoff_end``: without that it wrote a chat turn next ("user", then a question).
# QUALITY.md has the figures.
FLOOR, HOLD = 0.8, 8.0
# A sign-off's first line ("Best regards,", "Thanks again!", "Cheers, Jeff") is a few tokens; one that runs on past
# this after its closing word is a sentence ("Thanks for bringing this up, and I'm looking forward to…").
SIGN_OFF_TOKENS = 8
_SENTENCE_END = re.compile(r"[.!?…][\"')\]”’]*\s*$")
_CLOSING_WORD = re.compile(r"([^\W\d_]+)(?:[^\w\s]|$)")  # a word, then punctuation or nothing: "Best,", "Kay"


class CloseNear:
    """A llama.cpp logits processor that ends a reply near an aimed length, the way a writer would.

    Small models, and adapters trained on little mail, write on well past the length asked for. A hard cut
    leaves half a sentence; this instead, once ``aim`` tokens are written, makes a line break likelier right
    after a sentence ends, and the close likelier right after a line ends: the writer's closing words (the
    first token of each, ``openers``) and the end of the turn. Once a closing has begun, only the end is pushed,
    and not before the line after it (the name comes there): a pushed closing word must not start a second
    sign-off.

    Before ``floor`` tokens it holds the close back instead: the end of the turn, and a closing word where a
    sign-off could begin once a sentence has been said: at the start of a line ("…today.\n" then "Best"; not
    "Hi Ana,\n" then "Thanks for…", a reply's usual opening), or straight after the sentence's end, for writers
    whose mail runs the sign-off on ("…today.Best,Jeff": the closing word's token there is the line-start one,
    with no space before it; within a sentence the word has a space and is another token). A reply whose writer
    signs off all the same is let go: the hold is lifted at its closing word, so a sign-off with a name not the
    user's still ends the reply. A closing word also comes within a line, after a sentence and a space
    ("…today. Best,Jeff": ``spaced``, another token again); it is held back and lifts the hold the same way, but
    past the aim it does not count as a sign-off begun: "…today. Thanks for…" is more often a sentence. Between
    the floor and the aim it does nothing.

    Past the aim, a line begun with a closing word that runs on past ``SIGN_OFF_TOKENS`` is a sentence, not a
    sign-off ("Thanks for bringing this up, and I'm looking forward to…"): from there the close is drawn on
    again, at the line's next sentence end, but at a line end it is the end of the reply alone that is pushed:
    pushed to a closing word again, such a writer begins another sentence with it ("Kay, if you don't mind…",
    "Kay, please let me know…", line after line).

    Args:
        aim: tokens the reply should have.
        text_of: a token's text (only the last token's is asked for).
        newline: the line-break token.
        end: the tokens that end the reply (the end of the turn).
        openers: the first tokens of the writer's closings ("Best", "Thanks").
        floor: tokens before which the close is held back (drafting: ``FLOOR`` of the words asked for, see
            ``Length.floor_tokens``); by default ``FLOOR`` of the aim.
        spaced: the closing words that close by themselves ("Best,", "Kay"), after a space (" Best"), where each is
            a single token (``TokenTexts.word_token``): the writer's, and those of ``COMMON_CLOSINGS``.
        held: more tokens held back before the floor as closing words at a line start, and never pushed: the first
            words of the closings anyone uses (``COMMON_CLOSINGS``); an adapter signs off early with "Best
            regards," as well as with its writer's own.
        signed: the names the writer signs with, as they write them. Past the aim, a closing line that ends with
            one of them ("Kay", "Thanks,Kay", "Christian.") is the whole sign-off: the end is pushed right after
            it, not a line later (the base model took a pushed "Kay," for a greeting and wrote on: "Kay,\nColleague
            will be available…").
        line_text: the text of several tokens together (``TokenTexts.join``): a letter of a name may take two
            tokens ("ř"), neither of which decodes alone. By default, each token's text joined.
        tokens_per_word: with it (drafting: ``TOKENS_PER_WORD``), the reply's progress is counted in words (see
            below); without it, in tokens.

    ``aim`` and ``floor`` are counted in tokens, but a length is asked for in words. With ``tokens_per_word``, a token
    written counts no further than the words written so far would take at that rate. A path, a hash or a line of
    code takes two to four tokens a word: counted as tokens, 15 of the 21 linaro-mm-sig adapter + examples drafts
    that stopped under 80% of the words asked for had their floor's tokens, so the close was no longer held back for
    them (``bench/quality.py --lengths``, QUALITY.md). English prose takes about ``TOKENS_PER_WORD`` (1.30 to 1.36 in
    the English drafts there) and is counted mostly by its tokens, as before. A token still counts at least half:
    some scripts take more than four tokens a word (Russian on SmolLM2), and counted by their words alone they would
    not reach the floor within the room a reply is given (``Length.max_tokens``, twice the words' tokens): held on,
    the reply would be cut mid-sentence.
    """

    def __init__(
        self,
        aim: int,
        text_of: Callable[[int], str],
        newline: int,
        end: list[int],
        openers: list[int] = (),
        floor: int | None = None,
        spaced: list[int] = (),
        held: list[int] = (),
        signed: Iterable[str] = (),
        line_text: Callable[[list[int]], str] | None = None,
        tokens_per_word: float | None = None,
    ):
        self.aim = max(1, aim)
        self.text_of = text_of
        self.newline = newline
        self.end = sorted(set(end))
        self.openers = set(openers) - set(end)
        self.close = sorted(set(end) | self.openers)
        self.floor = min(self.aim, int(self.aim * FLOOR) if floor is None else floor)
        self.start: int | None = None
        self.lines_since_closing: int | None = None  # line ends since a closing word past the aim
        self.closing_tokens = 0  # on the closing word's line
        self.closing_line: list[int] = []  # its tokens so far
        self.line_text = line_text or (lambda ids: "".join(map(text_of, ids)))
        names = "|".join(re.escape(n) for n in sorted({n.strip() for n in signed if n.strip()}, key=len, reverse=True))
        self.signed = re.compile(rf"(?<!\w)(?:{names})[^\w]*\Z") if names else None  # the name ends the line
        self.ran_on = False  # a line begun with a closing word was a sentence: from then on only the end is pushed
        # before the floor: at a line start or after a sentence
        self.held = (self.openers | set(spaced) | set(held)) - set(end)
        self.held_openers = sorted(self.held)
        self.holding = True  # until the floor, or a closing word that came all the same
        self.said = False  # a sentence has ended (before that, "Hi Ana,\nThanks for…" is an opening)
        self.at_signoff_point = False  # a sentence has been said, and the next token starts a line or follows one
        self.counted = 0  # the reply's tokens whose words are counted
        self.pending: list[int] = []  # of them, those that decode to nothing yet (part of a letter)
        self.words = 0  # words begun in them, as ``str.split`` counts them
        self.in_word = False
        self.tokens_per_word = tokens_per_word

    def _count(self, input_ids: Any) -> tuple[int, int]:
        """How far the reply has come, in tokens: those written, but no more than its words would take, and no
        less than half of them (see the class docstring); and the tokens written. The reply grows by a token a
        call."""
        tokens = len(input_ids) - self.start
        if self.tokens_per_word is None:
            return tokens, tokens
        for token in map(int, input_ids[self.start + self.counted :]):
            self.counted += 1
            self.pending.append(token)
            text = self.line_text(self.pending)
            if not text:  # part of a letter ("ř", "你"): decoded with the next token
                continue
            self.pending = []
            for char in text:
                if char.isspace():
                    self.in_word = False
                elif not self.in_word:
                    self.words, self.in_word = self.words + 1, True
        return min(tokens, max(int(self.words * self.tokens_per_word), tokens // 2)), tokens

    def push(self, written: int) -> float:
        over = min(1.0, max(0.0, (written - self.aim) / self.aim))
        return PUSH_AT_AIM + (PUSH_AT_TWICE - PUSH_AT_AIM) * over

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self.start is None:
            self.start = len(input_ids)  # the first call comes with the prompt alone
        written, tokens = self._count(input_ids)
        if written < self.floor:
            if self.holding:
                self._hold(tokens, input_ids, scores)
            return scores
        if written < self.aim:
            return scores
        token = int(input_ids[-1])
        last = self.text_of(token)
        if self.lines_since_closing is None and token in self.openers:
            self.lines_since_closing, self.closing_tokens = 0, 0  # a sign-off has begun: its line, the name's, the end
            self.closing_line = [token]
        elif self.lines_since_closing == 0:
            self.closing_line.append(token)
            if not last.endswith("\n"):
                self.closing_tokens += 1
                if self.closing_tokens > SIGN_OFF_TOKENS:
                    self.lines_since_closing, self.ran_on = None, True  # a sentence that began with a closing word
        if last.endswith("\n"):
            if self.lines_since_closing is None:
                scores[self.end if self.ran_on else self.close] += self.push(written)
            else:
                self.lines_since_closing += 1
                if self.lines_since_closing >= 2 or (
                    self.signed is not None and self.signed.search(self.line_text(self.closing_line))
                ):
                    scores[self.end] += self.push(written)
        elif self.lines_since_closing is None and self.newline >= 0 and self._sentence_ended(input_ids, tokens):
            scores[self.newline] += self.push(written)
        return scores

    def _sentence_ended(self, input_ids: Any, tokens: int) -> bool:
        """Whether the reply's last token ends a sentence, or is a space after one ("hours." then " ", as a writer
        who puts two spaces after a full stop has it: the space is a token of its own); ``tokens`` written so far."""
        last = self.text_of(int(input_ids[-1])) if tokens else ""  # the first call's last token is the prompt's
        if tokens >= 2 and last and not last.strip() and "\n" not in last:
            last = self.text_of(int(input_ids[-2]))
        return bool(last.strip() and _SENTENCE_END.search(last))

    def _hold(self, tokens: int, input_ids: Any, scores: Any) -> None:
        """Before the floor: hold back the end, and a closing word where a sign-off could begin once a sentence is
        said (a line start, or right after a sentence's end); ``tokens`` written so far."""
        token = int(input_ids[-1])
        last = self.text_of(token) if tokens else ""  # the first call's last token is the prompt's
        if self.at_signoff_point and token in self.held:
            self.holding = False  # a sign-off begun all the same: let it end
            return
        ends_sentence = self._sentence_ended(input_ids, tokens)
        self.said = self.said or ends_sentence
        self.at_signoff_point = self.said and (last.endswith("\n") or ends_sentence)
        scores[self.end] -= HOLD
        if self.at_signoff_point:
            scores[self.held_openers] -= HOLD


@functools.lru_cache(maxsize=16)
def _grammar(text: str | None) -> Any:
    """``text`` parsed by llama.cpp (a few grammars recur for every email: parse each once)."""
    if text is None:
        return None
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(text, verbose=False)
