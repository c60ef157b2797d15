"""What a training run reports: one frozen dataclass per kind of event.

On the wire (the worker's stdout pipe, ``metrics.jsonl``, ``status.json``) an event is a JSON object with an
``event`` key naming its kind and its fields beside it, one object per line: :meth:`Event.to_json` writes that
dict, :func:`parse` reads one back into its dataclass. Whoever reads events from a pipe or a file parses them
once, then dispatches on the type (``match event: case Step(): ...``).

The kinds, in the order a run reports them:

- :class:`Phase` progress that is not a step (preparing or quantizing the base, resuming, checking the export,
  merging an adapter into its base), with a ``message`` and/or a ``fraction``;
- :class:`Start`, :class:`Step`, :class:`Eval`, :class:`Checkpoint` and :class:`Done` from the recipe (the
  kinds ``metrics.jsonl`` keeps, stamped with the ``time`` they happened);
- :class:`Exported` and :class:`Parity` from the worker once the adapter is written and checked;
- the last one: :class:`Finished` (status ``done`` or ``cancelled``, with the run's result), :class:`Error`
  (``kind`` ``user``: a message to act on; ``bug``: with a traceback), or, made up by the parent when the
  process ended without a word, :class:`Stopped` (the person's Stop now) or :class:`Crashed`.

A field that is None is left out of the JSON (readers take a missing field as None), except the few marked
``kept`` which are always written. :func:`parse` never raises: a kind it does not know, or an event without a
field it needs, comes back as :class:`Unknown` holding the dict.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, TypeVar

_KEPT = {"kept": True}
E = TypeVar("E", bound="Event")


def kept(default: Any = None) -> Any:
    """A field written to JSON even when it is None (``null``), as the producers always did."""
    return field(default=default, metadata=_KEPT)


@dataclass(frozen=True, kw_only=True)
class Event:
    """The base of every event; the class attribute ``event`` is its ``event`` key on the wire."""

    event: ClassVar[str] = ""

    def fields_json(self) -> dict[str, Any]:
        """The fields as JSON values, without the ``event`` key (an event nested in another is written so)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None and f.default is None and not f.metadata.get("kept"):
                continue
            out[f.name] = value.fields_json() if isinstance(value, Event) else value
        return out

    def to_json(self) -> dict[str, Any]:
        """The wire dict: ``{"event": ..., **fields}``."""
        return {"event": self.event, **self.fields_json()}

    @classmethod
    def from_json(cls: type[E], data: Mapping[str, Any]) -> E:
        """The event from its fields (keys it does not have are ignored); KeyError without a required one."""
        values = {}
        for f in fields(cls):
            if f.name in data:
                values[f.name] = data[f.name]
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise KeyError(f.name)
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class Phase(Event):
    """Progress that is not a training step: ``dequantize``, ``quantize``, ``resume``, ``parity``, ``merge``; and
    ``parity_skipped`` (the message says why)."""

    event = "phase"
    phase: str
    message: str | None = None
    fraction: float | None = None  # 0..1 of the phase, when it can tell
    time: float | None = None


@dataclass(frozen=True, kw_only=True)
class Start(Event):
    """Training begins (or continues, after a resume) at ``step`` of ``total_steps``."""

    event = "start"
    step: int
    total_steps: int
    trainable_parameters: int | None = None
    device: str | None = None
    world_size: int | None = None
    data: dict[str, Any] | None = None  # trainer.data's summary of the encoded examples
    time: float | None = None


@dataclass(frozen=True, kw_only=True)
class Step(Event):
    """One optimizer step done: its loss, and the time left (``eta``, seconds) at the speed so far."""

    event = "step"
    step: int
    total_steps: int
    epoch: float | None = None
    loss: float | None = None
    lr: float | None = None
    tokens_per_second: float | None = kept()  # None when the step took no measurable time
    elapsed: float | None = None  # training seconds over every session of the run
    eta: float | None = None
    time: float | None = None


@dataclass(frozen=True, kw_only=True)
class Eval(Event):
    """The validation loss at ``step``; ``best``: the lowest so far (that adapter is the one exported).

    A preference-tuning run's ``eval_loss`` is the DPO loss on the held-out pairs, and it adds
    ``preference_accuracy`` (the share of those pairs whose chosen text gained more log-probability than the
    rejected one against the starting adapter; ties count half, so 0.5 before the first step) and
    ``chosen_accuracy`` (the share where the chosen text is simply the likelier one). Its ``step`` 0 is the
    starting adapter, measured before any step. Supervised runs leave both out."""

    event = "eval"
    step: int
    eval_loss: float
    best: bool = False
    preference_accuracy: float | None = None
    chosen_accuracy: float | None = None
    time: float | None = None


@dataclass(frozen=True, kw_only=True)
class Checkpoint(Event):
    """A checkpoint of ``step`` was written (a resume continues from the newest)."""

    event = "checkpoint"
    step: int
    path: str | None = None
    time: float | None = None


@dataclass(frozen=True, kw_only=True)
class _Result(Event):
    """The fields of :class:`trainer.metrics.TrainResult`: what the training itself achieved."""

    status: str  # done | cancelled
    steps: int | None = kept()
    total_steps: int | None = kept()
    train_loss: float | None = kept()  # mean of the last (up to) 10 steps
    eval_loss: float | None = kept()  # the best validation loss (the exported adapter's)
    best_step: int | None = kept()
    seconds: float | None = kept()  # training time over every session of the run
    adapter_dir: str | None = kept()  # the PEFT adapter to export
    tokens_per_second: float | None = kept()
    preference: dict[str, Any] | None = None
    """A preference-tuning run's summary (``trainer.preference``: pairs, beta, the held-out accuracies before
    and after); None for supervised runs and in earlier logs."""


@dataclass(frozen=True, kw_only=True)
class Done(_Result):
    """The recipe's last event: the training's result (before export)."""

    event = "done"
    time: float | None = None


@dataclass(frozen=True, kw_only=True)
class Exported(Event):
    """The adapter written as a llama.cpp LoRA GGUF (:class:`trainer.export.ExportInfo`)."""

    event = "exported"
    path: str
    architecture: str | None = None
    tensors: int | None = None
    rank: int | None = None
    alpha: float | None = None
    size_bytes: int | None = None


@dataclass(frozen=True, kw_only=True)
class Parity(Event):
    """How far llama.cpp with the exported adapter agrees with the trained model
    (:class:`trainer.parity.ParityReport`)."""

    event = "parity"
    agreement: float
    base_agreement: float
    adapter_changed: float
    positions: int
    examples: int
    decisive_agreement: float = 1.0
    nf4_agreement: float | None = kept()
    passed: bool
    threshold: float | None = None


@dataclass(frozen=True, kw_only=True)
class Finished(_Result):
    """The worker's last word when training ended as asked: ``done`` (with the ``export`` and its ``parity``
    check when they were made) or ``cancelled`` (stopped after a step, with a checkpoint). The result's fields
    sit beside ``status``; :meth:`from_json` also reads the nested form of earlier versions
    (``{"status": ..., "result": {...}, "export": ..., "parity": ...}``)."""

    event = "finished"
    export: Exported | None = None
    parity: Parity | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Finished:
        nested = data.get("result")
        if isinstance(nested, Mapping):
            data = {**nested, **{k: v for k, v in data.items() if k != "result"}}
        export, parity = data.get("export"), data.get("parity")
        found = super().from_json({k: v for k, v in data.items() if k not in ("export", "parity")})
        return dataclasses.replace(
            found,
            export=Exported.from_json(export) if isinstance(export, Mapping) else None,
            parity=Parity.from_json(parity) if isinstance(parity, Mapping) else None,
        )


@dataclass(frozen=True, kw_only=True)
class Error(Event):
    """The worker failed: ``kind`` ``user`` (a message to act on) or ``bug`` (with the ``traceback``)."""

    event = "error"
    kind: str = "user"
    message: str = ""
    traceback: str | None = None


@dataclass(frozen=True, kw_only=True)
class Stopped(Event):
    """Made up by the parent for a run it killed (the person's Stop now): where it was, and where a resume
    continues (``checkpoint``, None before the first one)."""

    event = "stopped"
    status: str = "stopped"
    by: str = "user"
    step: int = 0
    checkpoint: int | None = kept()
    message: str = ""

    @property
    def steps(self) -> int:
        """The steps trained, as a :class:`Finished` result says it."""
        return self.step


@dataclass(frozen=True, kw_only=True)
class Crashed(Event):
    """Made up by the parent for a process that ended without a word (killed for memory, a native crash)."""

    event = "crashed"
    code: int | None = kept()
    message: str = ""
    log: str | None = None
    log_tail: str | None = None


@dataclass(frozen=True, kw_only=True)
class Unknown(Event):
    """An event of a kind this version does not know (or missing a field it needs), kept as it came."""

    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.data)

    def fields_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k != "event"}


KINDS: dict[str, type[Event]] = {
    cls.event: cls
    for cls in (Phase, Start, Step, Eval, Checkpoint, Done, Exported, Parity, Finished, Error, Stopped, Crashed)
}


def parse(data: Mapping[str, Any]) -> Event:
    """The event a wire dict describes; :class:`Unknown` (never an exception) for anything else."""
    if not isinstance(data, Mapping):
        return Unknown(data={"value": data})
    cls = KINDS.get(data.get("event"))
    if cls is None:
        return Unknown(data=dict(data))
    try:
        return cls.from_json(data)
    except (KeyError, TypeError, ValueError):
        return Unknown(data=dict(data))
