"""The QLoRA training recipe: setup, train, save_checkpoint, cleanup (after torchtune's single-device LoRA
recipe), reporting :mod:`trainer.events` to ``metrics.jsonl`` and, as their JSON dicts, to a callback (after
mlx-lm's trainer).

The data position is a pure function of the step (epoch = step // steps_per_epoch, the epoch's batches from
the seed), so resuming needs only the step, the LoRA weights, the optimizer, the scheduler and the RNG states
to continue exactly where an uninterrupted run would be. Under ``accelerate launch`` (several processes) the
model is wrapped in DDP and each rank takes its share of every step's micro-batches.

:class:`trainer.preference.DPORecipe` is this recipe with its own model start, data, micro-batches, loss and
evaluation (``_setup_model``, ``_setup_data``, ``_collate``, ``_units``, ``_loss``, ``_evaluate``) and what its
checkpoints and result add (``_state_extra``, ``result_extra``); the loop, checkpoints, resume and events are these.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import logging
import math
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trainer import base_model, checkpoint
from trainer.config import ConfigError, TrainConfig, cosine_with_warmup
from trainer.data import IGNORE, Example, collate, encode_all, plan_batches, step_batches
from trainer.distributed import Runtime
from trainer.events import Checkpoint, Done, Eval, Event, Phase, Start, Step, parse
from trainer.metrics import MetricsLog, TrainResult

log = logging.getLogger("mailvoice.trainer")
Callback = Callable[[dict[str, Any]], None]  # receives each event's to_json()


class LoRARecipe:
    """One QLoRA run in ``run_dir``: ``setup(examples)``, ``train()``, ``cleanup()``."""

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: Path,
        cache_root: Path,
        callback: Callback | None = None,
        should_stop: Callable[[], bool] | None = None,
    ):
        self.cfg, self.run_dir, self.cache_root = cfg, Path(run_dir), Path(cache_root)
        self.callback = callback or (lambda _event: None)
        self.should_stop = should_stop or (lambda: False)
        self.step, self.seconds, self.tokens_seen = 0, 0.0, 0
        self.best_eval: float | None = None
        self.best_step: int | None = None
        self.losses: list[float] = []
        self.metrics = MetricsLog(self.run_dir / "metrics.jsonl")

    # --- setup ---------------------------------------------------------------------------------------

    def setup(self, examples: list[Example], resume: bool = False) -> None:
        """Load the base in 4-bit, add LoRA, tokenize the data, build the optimizer; with ``resume``, restore
        the newest checkpoint (a damaged one is an error, not skipped)."""
        import torch

        found = checkpoint.latest(self.run_dir / "checkpoints") if resume else None
        if found is not None:
            checkpoint.verify(found)  # a damaged checkpoint is reported now, not after loading the model
        self.rt = rt = Runtime(self.cfg)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with rt.main_first():
            folder = base_model.prepare_base(self.cfg.base, self.cache_root, self._progress)
            self.tokenizer = base_model.load_tokenizer(folder)
            model = base_model.load_quantized(folder, rt.device, rt.dtype, self.cache_root, self._progress)
        self.base_folder = folder
        self._seed(self.cfg.seed)  # LoRA's A matrices are initialised at random: same seed, same start
        self.model = self._setup_model(model)
        self._setup_data(examples)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=self.cfg.learning_rate, weight_decay=self.cfg.weight_decay)
        schedule = functools.partial(
            cosine_with_warmup, warmup=self.cfg.warmup_for(self.total_steps), total=self.total_steps
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        if resume:
            self._resume()
        elif rt.main:
            self.metrics.reset()
        trainable = sum(p.numel() for p in params)
        self._emit(
            Start(
                step=self.step,
                total_steps=self.total_steps,
                trainable_parameters=trainable,
                device=rt.device,
                world_size=rt.world,
                data=self.data.summary(),
            )
        )

    def _setup_model(self, model: Any) -> Any:
        from peft import LoraConfig, get_peft_model

        if self.cfg.gradient_checkpointing:
            model.activation_checkpointing_enable({"use_reentrant": False})
            model.enable_input_require_grads()  # the frozen embeddings' output must carry grad for the LoRAs
        model.config.use_cache = False  # a KV cache is for generation; in training it only takes memory
        lora = LoraConfig(
            r=self.cfg.lora_r,
            lora_alpha=self.cfg.lora_alpha,
            lora_dropout=self.cfg.lora_dropout,
            target_modules=list(self.cfg.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )
        try:
            with base_model.peft_quietly():
                model = get_peft_model(model, lora)
        except ValueError as exc:
            raise ConfigError(f"Training setting target_modules: {exc}") from exc
        return self.rt.wrap(model)

    @property
    def peft_model(self) -> Any:
        return getattr(self.model, "module", self.model)  # DDP wraps it

    def _setup_data(self, examples: list[Example]) -> None:
        self.data = encode_all(self.tokenizer, examples, self.cfg.max_seq_len, self.cfg.min_email_tokens)
        self._plan_steps([len(e) for e in self.data.train])

    def _plan_steps(self, lengths: list[int]) -> None:
        """Steps per epoch and in all, for train items of ``lengths`` (tokens, for grouping by length)."""
        self.lengths = lengths
        n_batches = math.ceil(len(lengths) / self.cfg.batch_size)
        self.steps_per_epoch = max(1, math.ceil(n_batches / (self.cfg.grad_accum * self.rt.world)))
        self.total_steps = self.steps_per_epoch * self.cfg.epochs
        if self.cfg.max_steps:
            self.total_steps = min(self.total_steps, self.cfg.max_steps)
        self._plans: dict[int, list[list[int]]] = {}

    def _micro_batches(self, step: int) -> list[list[int]]:
        """This rank's micro-batches for optimizer step ``step`` (0-based)."""
        epoch, in_epoch = divmod(step, self.steps_per_epoch)
        if epoch not in self._plans:  # one epoch's plan at a time
            self._plans = {
                epoch: plan_batches(self.lengths, self.cfg.batch_size, self.cfg.seed, epoch, self.cfg.group_by_length)
            }
        return step_batches(self._plans[epoch], in_epoch, self.cfg.grad_accum, self.rt.world, self.rt.rank)

    # --- training ------------------------------------------------------------------------------------

    def train(self) -> TrainResult:
        """Run to the last step or until ``should_stop()``; checkpoint on the way and when stopped."""
        status = "done"
        started, session_steps = time.perf_counter(), 0
        while self.step < self.total_steps:
            lr = self.scheduler.get_last_lr()[0]  # the rate this step uses
            loss, tokens, seconds = self._train_step()
            self.step += 1
            self.seconds += seconds
            self.tokens_seen += tokens
            self.losses.append(loss)
            session_steps += 1
            rate = tokens / seconds if seconds > 0 else None
            per_step = (time.perf_counter() - started) / session_steps  # evaluations and checkpoints included
            self._emit(
                Step(
                    step=self.step,
                    total_steps=self.total_steps,
                    epoch=round(self.step / self.steps_per_epoch, 3),
                    loss=loss,
                    lr=lr,
                    tokens_per_second=rate,
                    elapsed=round(self.seconds, 2),
                    eta=round(per_step * (self.total_steps - self.step), 1),
                )
            )
            last = self.step == self.total_steps
            if self.step % self.cfg.eval_every == 0 or last:
                self._evaluate()
            stop = not last and self.rt.any(self.should_stop())  # every rank must stop at the same step
            if self.step % self.cfg.checkpoint_every == 0 or stop:
                self.save_checkpoint()
            if stop:
                status = "cancelled"
                break
        return self._finish(status)

    def _train_step(self) -> tuple[float, int, float]:
        """One optimizer step over this rank's micro-batches: (mean token loss, tokens, seconds)."""
        import torch

        t0 = time.perf_counter()
        self.model.train()
        batches = [self._collate(b) for b in self._micro_batches(self.step)]
        total, loss_sum = max(1, sum(self._units(b) for b in batches)), 0.0
        for n, batch in enumerate(batches):
            # DDP averages gradients once per step, after the last micro-batch, not after each one.
            last = n == len(batches) - 1 or not self.rt.distributed
            with contextlib.nullcontext() if last else self.model.no_sync():
                summed, _count = self._loss(batch)
                (summed / total).backward()  # the step's loss: the mean over all its units (email tokens)
            loss_sum += float(summed.detach())
        torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], self.cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        tokens = sum(int(b["attention_mask"].sum()) for b in batches)
        loss_sum, total, tokens = self.rt.sum(loss_sum, total, tokens)  # the whole step, not this rank's share
        return loss_sum / total, int(tokens), time.perf_counter() - t0

    def _collate(self, indices: list[int]) -> dict[str, Any]:
        """The micro-batch of train items ``indices``, as :meth:`_loss` takes it."""
        return collate([self.data.train[i] for i in indices], self.tokenizer.pad_token_id)

    def _units(self, batch: dict[str, Any]) -> int:
        """What the step's loss is a mean over, in ``batch``: its email tokens."""
        return int((batch["labels"][:, 1:] != IGNORE).sum())

    def evaluate(self) -> float | None:
        """Mean token loss on (up to ``eval_max_examples``) validation examples; None without any."""
        import torch

        examples = sorted(self.data.validation[: self.cfg.eval_max_examples], key=len)
        if not examples:
            return None
        self.model.eval()
        loss_sum, count = 0.0, 0
        with torch.no_grad():
            for i in range(0, len(examples), self.cfg.batch_size):
                summed, n = self._loss(collate(examples[i : i + self.cfg.batch_size], self.tokenizer.pad_token_id))
                loss_sum, count = loss_sum + float(summed), count + n
        return loss_sum / max(count, 1)

    def _loss(self, batch: dict[str, Any]) -> tuple[Any, int]:
        """Summed cross-entropy over the email tokens of ``batch``, and their count.

        Logits are computed only where the next token is an email token (``logits_to_keep`` as a mask): with
        a 128k vocabulary the logits of the prompt and context positions would be most of the memory.
        """
        import torch

        device = self.rt.device
        labels = batch["labels"].to(device)
        keep = torch.zeros_like(labels, dtype=torch.bool)
        keep[:, :-1] = labels[:, 1:] != IGNORE
        targets = labels[:, 1:][keep[:, :-1]]
        out = self.model(
            input_ids=batch["input_ids"].to(device),
            attention_mask=batch["attention_mask"].to(device),
            logits_to_keep=keep,
        )
        return torch.nn.functional.cross_entropy(out.logits.float(), targets, reduction="sum"), targets.numel()

    def _evaluate(self) -> None:
        loss = self.evaluate()
        if loss is None:
            return
        improved = self.best_eval is None or loss < self.best_eval
        if improved:
            self.best_eval, self.best_step = loss, self.step
            self._save_adapter(self.run_dir / "best")  # the adapter exported at the end
        self._emit(Eval(step=self.step, eval_loss=loss, best=improved))

    # --- saving --------------------------------------------------------------------------------------

    def save_checkpoint(self) -> Path | None:
        """Checkpoint the current step (rank 0 writes; every rank waits for it)."""
        from peft import get_peft_model_state_dict

        path = None
        if self.rt.main:
            state = {
                "epoch": self.step // self.steps_per_epoch,
                "tokens_seen": self.tokens_seen,
                "best_eval_loss": self.best_eval,
                "best_step": self.best_step,
                "seconds": self.seconds,
                "losses": self.losses,
                "world_size": self.rt.world,
                "config": self.cfg.to_json(),
                **self._state_extra(),
            }
            path = checkpoint.save(
                self.run_dir / "checkpoints",
                self.step,
                get_peft_model_state_dict(self.peft_model),
                self.optimizer.state_dict(),
                self.scheduler.state_dict(),
                state,
            )
            checkpoint.prune(self.run_dir / "checkpoints", self.cfg.keep_checkpoints)
            self._emit(Checkpoint(step=self.step, path=str(path)))
        self.rt.barrier()
        return path

    def _save_adapter(self, folder: Path) -> None:
        """The PEFT adapter (safetensors + adapter_config.json) and the resolved config, atomically."""
        if not self.rt.main:
            return
        tmp = folder.with_name(f".tmp-{folder.name}")
        shutil.rmtree(tmp, ignore_errors=True)
        self.peft_model.save_pretrained(tmp)
        self.cfg.save(tmp / "training_config.json")
        shutil.rmtree(folder, ignore_errors=True)
        tmp.rename(folder)

    def _resume(self) -> None:
        from peft import set_peft_model_state_dict

        found = checkpoint.latest(self.run_dir / "checkpoints")
        if found is None:  # stopped before its first checkpoint: start again from step 0
            self.metrics.reset()
            return
        ckpt = checkpoint.load(found)
        saved = TrainConfig.from_json(ckpt.state["config"])
        if saved != self.cfg:
            raise checkpoint.CheckpointError(f"{found} was made with other settings; start a new run instead.")
        set_peft_model_state_dict(self.peft_model, {k: v.to(self.rt.device) for k, v in ckpt.adapter.items()})
        self.optimizer.load_state_dict(ckpt.optimizer)
        self.scheduler.load_state_dict(ckpt.scheduler)
        checkpoint.restore_rng(ckpt.rng)
        s = ckpt.state
        self.step, self.tokens_seen, self.seconds = s["step"], s["tokens_seen"], s["seconds"]
        self.best_eval, self.best_step, self.losses = s["best_eval_loss"], s["best_step"], list(s["losses"])
        self._restore_extra(s)
        if self.rt.main:
            self.metrics.cut_after(self.step)
        self._emit(Phase(phase="resume", message=f"Resumed at step {self.step}"))

    def _finish(self, status: str) -> TrainResult:
        if status == "done":
            self._save_adapter(self.run_dir / "final")
        best, final = self.run_dir / "best", self.run_dir / "final"
        recent = self.losses[-10:]
        result = TrainResult(
            status=status,
            steps=self.step,
            total_steps=self.total_steps,
            train_loss=sum(recent) / len(recent) if recent else None,
            eval_loss=self.best_eval,
            best_step=self.best_step,
            seconds=round(self.seconds, 2),
            adapter_dir=str(best if best.is_dir() else final if final.is_dir() else ""),
            tokens_per_second=self.tokens_seen / self.seconds if self.seconds else None,
        )
        self._emit(Done(**result.to_json(), **self.result_extra()))
        return result

    def result_extra(self) -> dict[str, Any]:
        """Fields the :class:`~trainer.events.Done` and ``Finished`` events carry beside the result (none here)."""
        return {}

    def _state_extra(self) -> dict[str, Any]:
        """What a checkpoint keeps beside the common state, for :meth:`_restore_extra` (nothing here)."""
        return {}

    def _restore_extra(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`_state_extra` kept (on resume)."""

    def cleanup(self) -> None:
        """Free the model (and the process group): the GUI's worker may be asked to train again."""
        import torch

        for name in ("model", "optimizer", "scheduler"):
            self.__dict__.pop(name, None)
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if hasattr(self, "rt"):
            self.rt.shutdown()

    # --- helpers -------------------------------------------------------------------------------------

    def _seed(self, seed: int) -> None:
        import numpy as np
        import torch

        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def _emit(self, event: Event) -> None:
        """Stamp ``event`` (one of the kinds with a ``time``) with the time, log it and hand its JSON on."""
        if hasattr(self, "rt") and not self.rt.main:
            return
        event = dataclasses.replace(event, time=round(time.time(), 3))
        self.metrics.write(event)
        self.callback(event.to_json())

    def _progress(self, event: dict[str, Any]) -> None:
        """Preparing the base reports its phases as dicts (as merging does); they are this run's events too."""
        phase = parse(event)
        if isinstance(phase, Phase):
            self._emit(phase)
