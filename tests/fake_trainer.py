"""A stand-in trainer for the training process: ``python -m fake_trainer RUN_DIR [--resume]``.

It is :mod:`trainer.worker` (its events, status, cancel, signals, error handling) with the training replaced by a
step counter when the run's ``job.json`` has a ``fake`` section (:func:`with_fake` writes one); a run without one
trains for real. The tests' conftest makes :class:`trainer.process.TrainingProcess` start this module instead of
``trainer.worker`` and puts this folder on the child's PYTHONPATH, so the process plumbing is tested in a second
instead of minutes.

The ``fake`` section: ``steps`` (5), ``delay`` between steps (0.05 s), ``noise`` (write to stdout and fd 1 as
chatty libraries do), and ``crash_at`` / ``fail_at`` / ``disk_full_at``: the step at which to die without a word,
raise a user error, or find the disk full; ``export``: write a stand-in ``adapter.gguf`` to the job's adapter
folder and report it, so that the run's adapter is registered. Each step is saved as a checkpoint folder, as the
real trainer does. A preference run (``kind: "preference"``) also reports the held-out measures a real one does:
an evaluation at step 0 and at the end, and the ``preference`` summary in its result.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from assistant.errors import MailvoiceError
from trainer.checkpoint import latest, prune
from trainer.events import Checkpoint, Eval, Exported, Finished, Start, Step
from trainer.worker import Worker, main


def with_fake(run_dir: Path, **spec: Any) -> Path:
    """Make the run in ``run_dir`` a stand-in one (see the module docstring); return ``run_dir``."""
    job = json.loads((run_dir / "job.json").read_text(encoding="utf-8"))
    job["fake"] = spec
    (run_dir / "job.json").write_text(json.dumps(job), encoding="utf-8")
    return run_dir


def save_step(run_dir: Path, step: int) -> Path:
    """A checkpoint of the stand-in trainer at ``step`` (replacing the one before), as a resume finds it."""
    parent = run_dir / "checkpoints"
    parent.mkdir(exist_ok=True)
    folder = parent / f"step-{step:08d}"
    tmp = parent / f".tmp-step-{step:08d}-{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    (tmp / "state.json").write_text(json.dumps({"step": step}), encoding="utf-8")
    tmp.rename(folder)
    prune(parent, keep=1)
    return folder


class FakeWorker(Worker):
    def _train(self, resume: bool) -> Finished:
        if "fake" not in self.job:
            return super()._train(resume)
        spec = self.job["fake"]
        newest = latest(self.run_dir / "checkpoints") if resume else None
        step = int(newest.name.split("-")[1]) if newest is not None else 0
        total = int(spec.get("steps", 5))
        if spec.get("noise"):  # what chatty libraries and C code do; it must land in worker.log
            print("python noise on stdout", flush=True)
            os.write(1, b"native noise on fd 1\n")
        preference = self.job.get("kind") == "preference"
        self.emit(Start(step=step, total_steps=total).to_json())
        if preference and step == 0:
            self.emit(Eval(step=0, eval_loss=0.6931, preference_accuracy=0.5, chosen_accuracy=0.5).to_json())
        while step < total:
            time.sleep(float(spec.get("delay", 0.05)))
            step += 1
            if step == spec.get("crash_at"):
                os._exit(3)  # as an out-of-memory kill would: no event, no cleanup
            if step == spec.get("fail_at"):
                raise MailvoiceError("the fake trainer failed as asked")
            if step == spec.get("disk_full_at"):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.run_dir / "checkpoints"))
            self.emit(Step(step=step, total_steps=total, loss=1.0 / step, eta=0.1).to_json())
            save_step(self.run_dir, step)
            if self.should_stop() and step < total:
                self.emit(Checkpoint(step=step).to_json())
                return Finished(status="cancelled", steps=step, total_steps=total)
        done = Finished(status="done", steps=step, total_steps=total, train_loss=1.0 / step, seconds=0.0,
                        export=self._export_stand_in() if spec.get("export") else None)  # fmt: skip
        if not preference:
            return done
        self.emit(Eval(step=step, eval_loss=0.5, best=True, preference_accuracy=1.0, chosen_accuracy=0.75).to_json())
        measured = {"preference_accuracy_before": 0.5, "preference_accuracy_after": 1.0,
                    "chosen_accuracy_before": 0.5, "chosen_accuracy_after": 0.75}  # fmt: skip
        return replace(done, eval_loss=0.5, best_step=step,
                       preference={**self.job.get("preference", {}), "beta": 0.1, **measured})  # fmt: skip

    def _export_stand_in(self) -> Exported:
        folder = Path(self.job["adapter_dir"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "adapter.gguf").write_bytes(b"GGUF stand-in")
        event = Exported(path=str(folder / "adapter.gguf"), architecture="llama", tensors=0)
        self.emit(event.to_json())
        return event


if __name__ == "__main__":
    sys.exit(main(worker=FakeWorker))
