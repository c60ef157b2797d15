"""The parent side of the training process: start it, read its events, cancel it. Plain Python, no Qt.

The GUI wraps :class:`TrainingProcess` in a thread that re-emits each event as a Qt signal (as qutebrowser's
GUIProcess does); the CLI iterates :meth:`TrainingProcess.events` directly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assistant.errors import MailvoiceError
from trainer import jobs
from trainer.events import Crashed, Error, Finished, Start, Step, Stopped, parse
from trainer.worker import CANCEL_FILE

REPO_ROOT = Path(__file__).resolve().parents[1]
_EXIT_CODES = {
    -9: "killed, most likely for running out of memory",
    137: "killed, most likely for running out of memory",
    -11: "crashed in native code (segmentation fault)",
}
ALLOCATOR_ENV = {"MALLOC_MMAP_THRESHOLD_": "131072", "THP_MEM_ALLOC_ENABLE": "1"}
"""How the worker allocates memory for a run with gradient checkpointing, the settings preflight turns to when
memory is short. glibc (other C libraries ignore it) then maps every block of 128 KiB or more, a tensor's, on its
own and hands it back when it is freed; by default it raises that threshold as such blocks are freed (up to 32
MiB), and a step's tensors come from a heap that fragments far above what they hold. PyTorch puts its large blocks
on huge pages, so mapping them afresh costs fewer page faults. On the CPU a step then takes a third of the peak
memory or less and runs 0.80-0.87 times as fast; without checkpointing the trade is worse (0.77 times the memory,
0.77 times as fast on real prompts), so such a run keeps glibc's default and preflight counts its heap
(BENCHMARKS.md "The training worker's memory allocator"). A value the person set in the environment is kept."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TrainingFailed(MailvoiceError):
    """The training process reported an error or ended without finishing."""


class TrainingProcess:
    """One ``python -m trainer.worker`` process for the run in ``run_dir``.

    Events come as the worker wrote them, :mod:`trainer.events` dicts (parse them with
    :func:`trainer.events.parse`): ``phase``, ``start``, ``step``, ``eval``, ``checkpoint``, ``exported``,
    ``parity``, then ``finished`` (status done or cancelled) or ``error``. When the process ends without a word,
    one is made up for it: ``stopped`` when :meth:`kill` stopped it (the person's Stop now), else ``crashed``
    (killed for memory, a native crash); the run's ``status.json`` says the same.
    """

    worker_module = "trainer.worker"
    """The module ``python -m`` runs (a test sets its stand-in trainer here)."""

    def __init__(self, run_dir: Path, resume: bool = False, python: str | None = None, processes: int = 1):
        self.run_dir = Path(run_dir)
        self.resume = resume
        self.processes = processes
        self.python = python or sys.executable
        self.proc: subprocess.Popen[str] | None = None
        self.final: dict[str, Any] | None = None  # the finished / error / stopped / crashed event
        self.last_step = 0  # the last step the process reported
        self.killed = False  # True once kill() ended it: its silence is a stop, not a crash

    def start(self) -> None:
        (self.run_dir / CANCEL_FILE).unlink(missing_ok=True)
        log = (self.run_dir / "worker.log").open("a", encoding="utf-8")
        env = {
            **(ALLOCATOR_ENV if jobs.trains_with_checkpointing(self.run_dir) else {}),
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        }
        cmd = [self.python, "-m", self.worker_module, str(self.run_dir)] + (["--resume"] if self.resume else [])
        if self.processes > 1:
            # DDP: accelerate starts one worker per process (through torchrun: --multi_gpu is what starts N of
            # them; on a machine without GPUs the recipe joins them over gloo); rank 0 reports on our pipe.
            cmd[1:2] = [
                "-m",
                "accelerate.commands.launch",
                "--num_processes",
                str(self.processes),
                "--num_machines",
                "1",
                "--mixed_precision",
                "no",
                "--dynamo_backend",
                "no",
                "--main_process_port",
                str(_free_port()),
                "--multi_gpu",
                "-m",
            ]
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            env=env,
            start_new_session=True,
        )  # Ctrl-C reaches the parent, which cancels
        log.close()

    def events(self) -> Iterator[dict[str, Any]]:
        """Yield events until the process ends (blocking); the last one is finished, error or crashed."""
        if self.proc is None:
            self.start()
        assert self.proc is not None and self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue  # not ours: the worker keeps stdout clean, but never trust a pipe blindly
                if not isinstance(event, dict):
                    continue  # JSON, but no event
                match parse(event):
                    case Finished() | Error():
                        self.final = event
                    case Start(step=step) | Step(step=step):
                        self.last_step = int(step or 0)
                yield event
        finally:
            self.proc.stdout.close()
        code = self.proc.wait()
        if self.final is None:
            self.final = self._stopped() if self.killed else self._crashed(code)
            yield self.final

    def _stopped(self) -> dict[str, Any]:
        """The event for a run :meth:`kill` ended: where it was, and where a resume would continue."""
        return Stopped(
            by="user",
            step=self.last_step,
            checkpoint=jobs.checkpoint_step(self.run_dir),
            message=f"Stopped by you at step {self.last_step}.",
        ).to_json()

    def _crashed(self, code: int) -> dict[str, Any]:
        why = _EXIT_CODES.get(code, f"exit code {code}")
        message = f"The training process stopped ({why})."
        jobs.mark_ended(self.run_dir, "crashed", code=code, error=message, step=self.last_step)
        log = str(self.run_dir / "worker.log")
        return Crashed(code=code, message=message, log=log, log_tail=self.log_tail()).to_json()

    def cancel(self) -> None:
        """Ask for a graceful stop: the current step ends, a checkpoint is written, then it exits."""
        (self.run_dir / CANCEL_FILE).touch()

    def kill(self) -> None:
        """Stop at once (the person's Stop now, or a process that no longer answers): the steps since the last
        checkpoint are lost. The run is recorded as ``stopped``, not crashed."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.killed = True
        try:
            if hasattr(os, "killpg"):
                os.killpg(self.proc.pid, signal.SIGKILL)
            else:
                self.proc.kill()
        except ProcessLookupError:
            pass  # it ended on its own meanwhile; what it reported stands
        self.proc.wait()
        jobs.mark_ended(self.run_dir, "stopped", by="user", step=self.last_step,
                        checkpoint=jobs.checkpoint_step(self.run_dir))  # fmt: skip

    def wait(self, timeout: float | None = None) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join((self.run_dir / "worker.log").read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def result(self) -> dict[str, Any]:
        """The finished (or stopped) event, or :class:`TrainingFailed` with the reason the process gave (or
        died of)."""
        final = self.final or {}
        event = parse(final)
        if isinstance(event, (Finished, Stopped)):
            return final
        message = event.message if isinstance(event, (Error, Crashed)) else "The training process did not report."
        if isinstance(event, Crashed) or (isinstance(event, Error) and event.kind == "bug"):
            message += f" Details: {self.run_dir / 'worker.log'}."
            raise TrainingFailed(message, cli="Continue with: mailvoice train --resume")
        raise TrainingFailed(message)
