"""The training process: ``python -m trainer.worker RUN_DIR [--resume]`` trains, exports and checks one run.

It runs apart from the app so that running out of memory, or a crash in a native library, ends this process
and never the app. It reports on its stdout, one JSON object per line (:mod:`trainer.events`: the recipe's plus
``exported``, ``parity``, ``finished`` and ``error``); everything else that
writes to stdout (libraries, C code) is sent to stderr, which the parent keeps in ``worker.log``. It stops
gracefully, with a checkpoint, when the file ``RUN_DIR/CANCEL`` appears or on SIGINT/SIGTERM, and when the pipe
breaks: the app that started it is gone (closed, or crashed), and a run no one follows stops where a resume can go on.

``job.json`` in the run folder says what to do: supervised QLoRA on ``data.jsonl`` (:mod:`trainer.recipe`), or,
with ``kind: "preference"``, preference tuning of the adapter in ``start/`` on ``pairs.jsonl``
(:mod:`trainer.preference`); both are exported, checked and described the same way. :func:`main` takes the
:class:`Worker` class to run, so that a stand-in trainer reuses all of the process plumbing.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import logging
import os
import signal
import sys
import traceback
from pathlib import Path
from typing import Any, TextIO

from assistant.errors import MailvoiceError
from trainer.events import Error, Exported, Finished, Parity, Phase

CANCEL_FILE = "CANCEL"
NICENESS = 10
"""How far the training process lowers its CPU priority (POSIX nice; below normal on Windows). Training is
background work that takes every core for hours: at a lower priority it gives way to the app, to drafting and
to whatever else the person does meanwhile, and loses nothing when the machine is otherwise idle."""


def lower_priority() -> None:
    """Run this process at a lower CPU priority (:data:`NICENESS`); where that is refused, carry on as is."""
    import psutil

    me = psutil.Process()
    try:
        if hasattr(psutil, "BELOW_NORMAL_PRIORITY_CLASS"):  # Windows: a priority class, not a nice value
            me.nice(psutil.BELOW_NORMAL_PRIORITY_CLASS)
        else:
            me.nice(min(19, me.nice() + NICENESS))
    except (psutil.Error, OSError) as exc:
        logging.getLogger(__name__).info("kept the CPU priority: %s", exc)


def prompt_format() -> dict[str, str]:
    """The short training prompt, for a run whose examples were not written with the drafting prompt (a run
    created by an earlier version): drafting with its adapter works best in the same format."""
    from trainer.data import REPLY_TEMPLATE, USER_TEMPLATE, system_prompt

    return {"system": system_prompt(), "user": USER_TEMPLATE, "reply": REPLY_TEMPLATE}


class Worker:
    def __init__(self, run_dir: Path, out: TextIO):
        self.run_dir, self.out = run_dir, out
        self.job = json.loads((run_dir / "job.json").read_text(encoding="utf-8"))
        self._signalled = False
        self.app_gone = False  # the pipe to the app broke
        self.rank = int(os.environ.get("RANK", "0"))  # under accelerate launch only rank 0 reports and exports

    def emit(self, event: dict[str, Any]) -> None:
        """Write one event (an :class:`trainer.events.Event`'s ``to_json()``) to the pipe; once the app is gone,
        nothing."""
        if self.rank or self.app_gone:
            return
        try:
            self.out.write(json.dumps(event, default=str) + "\n")
            self.out.flush()
        except BrokenPipeError:
            # The app that started the run is gone. The process lives on (a session of its own, so that the app's
            # Ctrl-C reaches the app alone): it stops at the end of the step, with a checkpoint, as a cancel does.
            # What is left in the pipe's buffer goes nowhere: flushed again at exit, it would raise again.
            self.app_gone = True
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self.out.fileno())
            os.close(null)

    def should_stop(self) -> bool:
        return self._signalled or self.app_gone or (self.run_dir / CANCEL_FILE).exists()

    def on_signal(self, _signum: int, _frame: Any) -> None:
        self._signalled = True  # checked between steps: the current step ends, then a checkpoint is written

    def run(self, resume: bool) -> int:
        from trainer import jobs

        def write_status(status: str, **extra: Any) -> None:
            if not self.rank:
                jobs.write_status(self.run_dir, status, **extra)

        write_status("running", pid=os.getpid())
        try:
            finished = self._train(resume)
        except MailvoiceError as exc:
            write_status("failed", error=str(exc))
            self.emit(Error(kind="user", message=str(exc)).to_json())
            return 1
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                return self._bug(exc, write_status)
            where = exc.filename or self.run_dir
            message = (f"The disk is full (writing {where}). Free some space, then resume: training continues "
                       "from its last checkpoint.")  # fmt: skip
            write_status("failed", error=message)
            self.emit(Error(kind="user", message=message).to_json())
            return 1
        except Exception as exc:  # a bug, or a library failing: the parent shows it, the log keeps the trace
            return self._bug(exc, write_status)
        said = {}
        if self.app_gone and finished.status == "cancelled":
            checkpoint = jobs.checkpoint_step(self.run_dir)
            said["message"] = "The app that started this training closed. " + (
                f"It stopped at step {checkpoint:,}, with a checkpoint: Resume continues from there."
                if checkpoint
                else "It stopped before its first checkpoint: Train starts again from the beginning."
            )
        write_status(finished.status, result=finished.fields_json(), **said)
        self.emit(finished.to_json())
        return 0

    def _bug(self, exc: Exception, write_status: Any) -> int:
        """Report an unexpected failure (the parent shows it; worker.log keeps the trace); the exit status.
        Called inside the ``except`` that caught ``exc``, so the trace is at hand."""
        traceback.print_exc()
        write_status("failed", error=repr(exc))
        bug = Error(kind="bug", message=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
        self.emit(bug.to_json())
        return 2

    def _train(self, resume: bool) -> Finished:
        from trainer.config import TrainConfig

        cfg = TrainConfig.from_json(self.job["config"])
        cache = Path(self.job["cache_root"])
        if self.job.get("kind") == "preference":
            from trainer.preference import PAIRS_FILE, START_DIR, DPORecipe, load_pairs

            pairs = load_pairs(self.run_dir / PAIRS_FILE)
            recipe: Any = DPORecipe(cfg, self.run_dir, cache, self.run_dir / START_DIR, self.emit, self.should_stop)
            data: list[Any] = pairs
            # The prompts with their chosen texts, one per correction, for the parity check.
            examples = list({p.correction_id: p.example() for p in pairs}.values())
        else:
            from trainer.data import from_jsonl
            from trainer.recipe import LoRARecipe

            examples = from_jsonl(self.run_dir / "data.jsonl")
            recipe, data = LoRARecipe(cfg, self.run_dir, cache, self.emit, self.should_stop), examples
        try:
            recipe.setup(data, resume=resume)
            result = recipe.train()
        finally:
            recipe.cleanup()  # free the training model before the parity check loads its own
        extra = recipe.result_extra()
        if "preference" in extra:  # what the run was made of (job.json) beside what it measured
            extra["preference"] = {**self.job.get("preference", {}), **extra["preference"]}
        finished = Finished(**result.to_json(), **extra)
        if result.status != "done" or self.rank:
            return finished
        return self._export(cfg, recipe, result, finished, examples)

    def _export(self, cfg: Any, recipe: Any, result: Any, finished: Finished, examples: list[Any]) -> Finished:
        """Write the adapter as a llama.cpp GGUF, check it there (GGUF bases) and describe it beside it."""
        from trainer import export, parity

        out_dir = Path(self.job["adapter_dir"])
        out_dir.mkdir(parents=True, exist_ok=True)
        base = self.job["base"]
        info = export.export_gguf(
            Path(result.adapter_dir),
            recipe.base_folder,
            out_dir / "adapter.gguf",
            self.job.get("architecture"),
            self.job["adapter_name"],
        )
        exported = Exported(**info.to_json())
        self.emit(exported.to_json())
        finished = dataclasses.replace(finished, export=exported)
        import psutil

        checking = cfg.parity and base["kind"] == "gguf"
        too_big = checking and parity.too_big(Path(base["path"]), psutil.virtual_memory().available)
        if too_big:
            self.emit(Phase(phase="parity_skipped", message=too_big).to_json())
        elif checking:
            self.emit(Phase(phase="parity", message="Checking the adapter in llama.cpp").to_json())
            report = parity.check(
                Path(base["path"]),
                out_dir / "adapter.gguf",
                recipe.base_folder,
                Path(result.adapter_dir),
                self._parity_examples(examples),
                cfg.parity_examples,
                min(cfg.max_seq_len, 512),
                cfg.cpu_threads,
            )
            checked = Parity(**report.to_json())
            self.emit(checked.to_json())
            finished = dataclasses.replace(finished, parity=checked)
        from trainer.prompts import saved_prompt

        export.save_adapter_config(
            out_dir / "adapter_config.json",
            name=self.job["adapter_name"],
            config=cfg.to_json(),
            base=base,
            result=result.to_json(),
            parity=finished.parity.fields_json() if finished.parity else None,
            export=info.to_json(),
            data=recipe.data.summary(),
            prompt=saved_prompt(self.run_dir) or prompt_format(),
            peft_adapter=result.adapter_dir,
            **({"preference": finished.preference} if finished.preference is not None else {}),
        )
        return finished

    @staticmethod
    def _parity_examples(examples: list[Any]) -> list[Any]:
        """Validation prompts first; train prompts make up the number (they test the export just as well)."""
        return [e for e in examples if e.split == "validation"] + [e for e in examples if e.split == "train"]


def main(argv: list[str] | None = None, worker: type[Worker] = Worker) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.worker", description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    from assistant import netguard
    from assistant.paths import private_umask

    private_umask()  # run folders, checkpoints, adapters and caches hold mail: 0600 / 0700, whoever started us
    netguard.install()  # before transformers is imported: its offline switches, and no socket leaves the machine
    # The pipe is this process's real stdout; fd 1 becomes stderr so that nothing else can write into it.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # "kernels package missing": CPU works without
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    lower_priority()
    running = worker(args.run_dir, out)
    signal.signal(signal.SIGTERM, running.on_signal)
    signal.signal(signal.SIGINT, running.on_signal)
    return running.run(args.resume)


if __name__ == "__main__":
    sys.exit(main())
