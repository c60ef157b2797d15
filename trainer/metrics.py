"""What a run reports: ``metrics.jsonl`` in the run folder (one event per line) and the run's result.

Events are :mod:`trainer.events` dataclasses; the log keeps ``start``, ``step``, ``eval``, ``checkpoint`` and
``done`` (``phase``, progress that is not a step, is not kept), one ``to_json()`` dict per line.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainer.events import Checkpoint, Done, Eval, Event, Start, Step, parse

KEPT = (Start, Step, Eval, Checkpoint, Done)  # the events written to metrics.jsonl


@dataclass
class TrainResult:
    status: str  # done | cancelled
    steps: int
    total_steps: int
    train_loss: float | None  # mean of the last (up to) 10 steps
    eval_loss: float | None  # the best validation loss (the exported adapter's)
    best_step: int | None
    seconds: float  # training time over every session of the run
    adapter_dir: str  # the PEFT adapter to export: the best by validation loss, else the final one
    tokens_per_second: float | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class MetricsLog:
    """``metrics.jsonl``: appended to as events happen, cut back to a checkpoint's step on resume."""

    def __init__(self, path: Path):
        self.path = path

    def reset(self) -> None:
        self.path.write_text("")

    def write(self, event: Event | dict[str, Any]) -> None:
        """Append ``event`` (or its JSON dict) when it is of a kind the log keeps."""
        if isinstance(event, dict):
            event = parse(event)
        if isinstance(event, KEPT) and self.path.parent.is_dir():
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps(event.to_json(), default=str) + "\n")

    def cut_after(self, step: int) -> None:
        """Forget what was logged after ``step``: those steps are trained again, and logged again."""
        if not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines() if line and json.loads(line).get("step", 0) <= step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def read(self) -> list[Event]:
        return [parse(json.loads(line)) for line in self.path.read_text().splitlines() if line]
