"""Preference tuning (DPO) of an adapter on the user's corrections: ``mailvoice train --preference``.

Each pair is a prompt (written with the drafting prompt, as supervised examples are, and frozen in the run's
``pairs.jsonl``), the text the user kept (chosen) and the model's draft or a rule-made bad text (rejected).
:class:`DPORecipe` is :class:`trainer.recipe.LoRARecipe` (the same base loading, step loop, checkpoints,
resume, events and saving) with three differences:

- the trainable LoRA starts from the current adapter's PEFT weights (copied into the run's ``start/``);
- the reference policy is that adapter before any step: the log-probabilities of every chosen and rejected
  text under it are computed once, at setup, and kept in ``reference.json`` (a resume reuses them);
- the loss is DPO's (:func:`dpo_loss`) on sequence log-probabilities summed over the email's tokens only.

Validation is the held-out corrections' pairs: their DPO loss, and the accuracies :func:`pair_metrics` gives.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.errors import MailvoiceError
from trainer import base_model
from trainer.config import TrainConfig
from trainer.data import IGNORE, Encoded, Example, collate, encode, system_prompt
from trainer.events import Eval, Phase
from trainer.recipe import Callback, LoRARecipe

PAIRS_FILE = "pairs.jsonl"  # in a run folder: the pairs with their written prompts, frozen
REFERENCE_FILE = "reference.json"  # in a run folder: the starting adapter's log-probabilities of every pair
START_DIR = "start"  # in a run folder: the starting adapter's PEFT weights
REFERENCE_VERSION = 1


class PreferenceError(MailvoiceError):
    """Preference tuning cannot start: too few corrections, or no adapter to start from."""


# --- the pairs ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreferenceExample:
    """One frozen pair of a run: what was asked, the prompt it was written as, the chosen and rejected text."""

    instruction: str
    input: str  # the email answered ("" for a new email)
    chosen: str  # the text the user kept
    rejected: str  # the model's draft (made_by "edit") or a rule-made bad text
    split: str = "train"  # train | validation (the held-out corrections)
    made_by: str = "edit"
    correction_id: int = 0
    recipient: str = ""
    messages: list[dict[str, str]] | None = field(default=None, compare=False)

    def example(self, output: str | None = None) -> Example:
        """As a supervised example with ``output`` (the chosen text by default), for encoding and parity."""
        return Example(self.instruction, self.input, self.chosen if output is None else output, self.split,
                       messages=self.messages, source="from_edit", recipient=self.recipient)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PreferenceExample:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


def save_pairs(pairs: list[PreferenceExample], path: Path) -> None:
    with path.open("w", encoding="utf-8") as f:
        for p in pairs:
            f.write(json.dumps(p.to_json(), ensure_ascii=False) + "\n")


def load_pairs(path: Path) -> list[PreferenceExample]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [PreferenceExample.from_json(json.loads(line)) for line in lines if line.strip()]


@dataclass
class EncodedPair:
    chosen: Encoded
    rejected: Encoded
    made_by: str = "edit"

    def __len__(self) -> int:
        return len(self.chosen) + len(self.rejected)


@dataclass
class PairData:
    """Encoded pairs of both splits, with what was skipped or cut (as :class:`trainer.data.Dataset`)."""

    train: list[EncodedPair]
    validation: list[EncodedPair]
    skipped: int = 0
    cut: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        made: dict[str, int] = {}
        for p in self.train:
            made[p.made_by] = made.get(p.made_by, 0) + 1
        return {
            "train_pairs": len(self.train),
            "validation_pairs": len(self.validation),
            "train_tokens": sum(len(p) for p in self.train),
            "made_by": made,
            "skipped_too_long": self.skipped,
            "cut": self.cut,
        }


def encode_pairs(tokenizer: Any, pairs: list[PreferenceExample], max_len: int, min_email: int = 32) -> PairData:
    """Chosen and rejected as token sequences with the loss on the email only (labels -100 on the prompt), each
    as a supervised example would be (:func:`trainer.data.encode`); a pair with either side too long is skipped."""
    system = system_prompt()
    data = PairData([], [])
    for pair in pairs:
        chosen = encode(tokenizer, pair.example(), system, max_len, min_email)
        rejected = encode(tokenizer, pair.example(pair.rejected), system, max_len, min_email)
        if chosen is None or rejected is None:
            data.skipped += 1
            continue
        for what in chosen.cut + rejected.cut:
            data.cut[what] = data.cut.get(what, 0) + 1
        (data.train if pair.split == "train" else data.validation).append(EncodedPair(chosen, rejected, pair.made_by))
    if not data.train or not data.validation:
        raise PreferenceError(
            f"Every {'training' if not data.train else 'held-out'} pair is too long for max_seq_len {max_len}: "
            "raise max_seq_len, or correct shorter drafts."
        )
    return data


def collate_pairs(pairs: list[EncodedPair], pad_id: int) -> dict[str, Any]:
    """One batch of ``2 x len(pairs)`` rows: the chosen texts, then the rejected ones in the same order."""
    return collate([p.chosen for p in pairs] + [p.rejected for p in pairs], pad_id)


# --- the loss and the measures --------------------------------------------------------------------------


def dpo_loss(policy_chosen: Any, policy_rejected: Any, reference_chosen: Any, reference_rejected: Any,
             beta: float) -> Any:  # fmt: skip
    """DPO's sigmoid loss per pair, from sequence log-probabilities (tensors of one value per pair):
    ``-log sigmoid(beta * ((pi_c - ref_c) - (pi_r - ref_r)))`` (Rafailov et al. 2023, eq. 7)."""
    import torch.nn.functional as F

    margin = (policy_chosen - reference_chosen) - (policy_rejected - reference_rejected)
    return -F.logsigmoid(beta * margin)


def _share(wins: Any) -> float:
    """The share of pairs with a positive difference, ties counting half."""
    return float(((wins > 0).double() + 0.5 * (wins == 0).double()).mean())


def pair_metrics(policy: Any, reference: Any, beta: float) -> dict[str, float]:
    """``eval_loss`` (mean DPO loss), ``preference_accuracy`` (the chosen text gained more log-probability than
    the rejected one against the reference) and ``chosen_accuracy`` (the chosen text is the likelier one) of
    pairs whose log-probabilities are the columns (chosen, rejected) of ``policy`` and ``reference``."""
    pc, pr, rc, rr = policy[:, 0], policy[:, 1], reference[:, 0], reference[:, 1]
    return {
        "eval_loss": float(dpo_loss(pc, pr, rc, rr, beta).mean()),
        "preference_accuracy": _share((pc - rc) - (pr - rr)),
        "chosen_accuracy": _share(pc - pr),
    }


def sequence_logps(model: Any, batch: dict[str, Any], device: str) -> Any:
    """Each row's log-probability of its email tokens (the labels that are not -100), summed.

    Logits are computed only at the positions that predict an email token (``logits_to_keep`` as a mask), as
    the supervised loss does: the prompt's positions would be most of the memory.
    """
    import torch
    import torch.nn.functional as F

    labels = batch["labels"].to(device)
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != IGNORE
    targets = labels[:, 1:][keep[:, :-1]]
    out = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                logits_to_keep=keep)  # fmt: skip
    token_logps = -F.cross_entropy(out.logits.float(), targets, reduction="none")
    rows = keep.nonzero()[:, 0]  # the mask flattens row by row, as nonzero lists it
    return torch.zeros(labels.shape[0], device=token_logps.device).index_add(0, rows, token_logps)


# --- the recipe -----------------------------------------------------------------------------------------


class _StoppedScoring(Exception):
    """A stop was asked for while the starting adapter scored the pairs."""


class DPORecipe(LoRARecipe):
    """One preference-tuning run in ``run_dir``, from the PEFT adapter in ``start_dir``: ``setup(pairs)``,
    ``train()``, ``cleanup()``; ``cfg.preference_beta`` weighs the loss, the other settings are the run's."""

    def __init__(
        self,
        cfg: TrainConfig,
        run_dir: Path,
        cache_root: Path,
        start_dir: Path,
        callback: Callback | None = None,
        should_stop: Callable[[], bool] | None = None,
    ):
        super().__init__(cfg, run_dir, cache_root, callback, should_stop)
        self.start_dir = Path(start_dir)
        self.before: dict[str, float] = {}  # the held-out measures of the starting adapter
        self.stopped_in_setup = False  # a stop asked for while the pairs were scored, before any step
        self.best_metrics: dict[str, float] | None = None  # of the best evaluation (the adapter exported)
        self.last_metrics: dict[str, float] | None = None

    def _setup_model(self, model: Any) -> Any:
        from peft import LoraConfig, PeftModel

        if self.cfg.gradient_checkpointing:
            model.activation_checkpointing_enable({"use_reentrant": False})
            model.enable_input_require_grads()
        model.config.use_cache = False
        lora = LoraConfig.from_pretrained(str(self.start_dir))
        # The run's dropout, which a preference run sets to 0: with dropout the policy at step 0 would differ
        # from the reference it is measured against, and the margins would start as noise (trl disables it too).
        lora.lora_dropout = self.cfg.lora_dropout
        with base_model.peft_quietly():
            model = PeftModel.from_pretrained(model, str(self.start_dir), config=lora, is_trainable=True)
        return self.rt.wrap(model)

    def _setup_data(self, pairs: list[PreferenceExample]) -> None:  # type: ignore[override]
        self.data = encode_pairs(self.tokenizer, pairs, self.cfg.max_seq_len, self.cfg.min_email_tokens)
        self._plan_steps([len(p) for p in self.data.train])
        # Before any step and before a resume loads a checkpoint's weights: the model is the starting adapter.
        try:
            self.reference = self._reference()
        except _StoppedScoring:  # asked to stop while scoring: no step was taken, nothing to keep
            self.stopped_in_setup = True
            return
        self.before = pair_metrics(self.reference["validation"], self.reference["validation"], self.beta)

    @property
    def beta(self) -> float:
        return self.cfg.preference_beta

    # --- the reference ----------------------------------------------------------------------------------

    def _fingerprint(self) -> str:
        """What the reference log-probabilities depend on: the starting weights, the base, the token ids."""
        digest = hashlib.sha256()
        digest.update((self.start_dir / "adapter_model.safetensors").read_bytes())
        digest.update(str(self.base_folder).encode())
        for split in (self.data.train, self.data.validation):
            for p in split:
                digest.update(json.dumps([p.chosen.input_ids, p.chosen.labels, p.rejected.input_ids,
                                          p.rejected.labels]).encode())  # fmt: skip
        return digest.hexdigest()

    def _reference(self) -> dict[str, Any]:
        """The starting adapter's (chosen, rejected) log-probabilities of every pair: read from the run folder
        when they were computed for these weights and pairs, else computed now (rank 0 first) and kept."""
        import torch

        path, fingerprint = self.run_dir / REFERENCE_FILE, self._fingerprint()
        with self.rt.main_first():
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
                found = saved if saved.get("fingerprint") == fingerprint else None
            except (OSError, ValueError):
                found = None
            if found is None:
                found = {"version": REFERENCE_VERSION, "fingerprint": fingerprint, **self._score_reference()}
                if self.rt.main:
                    tmp = path.with_name(path.name + ".tmp")
                    tmp.write_text(json.dumps(found), encoding="utf-8")
                    tmp.replace(path)
            else:
                self._emit(Phase(phase="reference", message="Reusing the starting adapter's scores of the pairs"))
        return {split: torch.tensor(found[split], dtype=torch.float32) for split in ("train", "validation")}

    def _score_reference(self) -> dict[str, list[list[float]]]:
        """Score every pair once (minutes on a CPU for a few hundred pairs): progress after each batch, and a
        stop asked for on the way is taken at once (:class:`_StoppedScoring`)."""
        total = len(self.data.train) + len(self.data.validation)
        self._emit(Phase(phase="reference", message=f"Scoring {total} pairs with the starting adapter (once)"))
        out, done = {}, 0

        def scored(n: int) -> None:
            if self.rt.any(self.should_stop()):
                raise _StoppedScoring()
            said = f"Scoring the pairs with the starting adapter: {done + n} of {total}"
            self._emit(Phase(phase="reference", fraction=round((done + n) / total, 3), message=said))

        for split in ("train", "validation"):
            pairs = getattr(self.data, split)
            out[split] = self._score(pairs, scored).tolist()
            done += len(pairs)
        return out

    def _score(self, pairs: list[EncodedPair], after_batch: Callable[[int], None] | None = None) -> Any:
        """The model's (chosen, rejected) log-probabilities of ``pairs``, one row each, without grad;
        ``after_batch(pairs scored so far)`` is called after each batch."""
        import torch

        self.model.eval()
        rows = []
        with torch.no_grad():
            for i in range(0, len(pairs), self.cfg.batch_size):
                chunk = pairs[i : i + self.cfg.batch_size]
                logps = sequence_logps(self.model, collate_pairs(chunk, self.tokenizer.pad_token_id), self.rt.device)
                rows.append(logps.detach().float().cpu().view(2, len(chunk)).T)
                if after_batch is not None:
                    after_batch(i + len(chunk))
        return torch.cat(rows) if rows else torch.zeros((0, 2))

    # --- training -------------------------------------------------------------------------------------

    def _collate(self, indices: list[int]) -> dict[str, Any]:
        batch = collate_pairs([self.data.train[i] for i in indices], self.tokenizer.pad_token_id)
        batch["reference"] = self.reference["train"][indices]
        return batch

    def _units(self, batch: dict[str, Any]) -> int:
        return int(batch["reference"].shape[0])  # the step's loss is the mean over its pairs

    def _loss(self, batch: dict[str, Any]) -> tuple[Any, int]:
        """Summed DPO loss of the batch's pairs, and their count."""
        logps = sequence_logps(self.model, batch, self.rt.device)
        n = batch["reference"].shape[0]
        reference = batch["reference"].to(logps.device)
        losses = dpo_loss(logps[:n], logps[n:], reference[:, 0], reference[:, 1], self.beta)
        return losses.sum(), n

    def train(self) -> Any:
        if self.stopped_in_setup:
            return self._finish("cancelled")
        if self.step == 0:  # the starting adapter, for the curve and the before/after: no model pass needed
            self._emit(Eval(step=0, eval_loss=self.before["eval_loss"], best=False,
                            preference_accuracy=self.before["preference_accuracy"],
                            chosen_accuracy=self.before["chosen_accuracy"]))  # fmt: skip
        return super().train()

    def evaluate(self) -> float | None:
        """Mean DPO loss on the held-out pairs."""
        return self.evaluate_pairs()["eval_loss"]

    def evaluate_pairs(self) -> dict[str, float]:
        """:func:`pair_metrics` of the held-out pairs under the current weights."""
        pairs = self.data.validation[: self.cfg.eval_max_examples]
        return pair_metrics(self._score(pairs), self.reference["validation"][: len(pairs)], self.beta)

    def _evaluate(self) -> None:
        metrics = self.evaluate_pairs()
        loss = metrics["eval_loss"]
        self.last_metrics = metrics
        improved = self.best_eval is None or loss < self.best_eval
        if improved:
            self.best_eval, self.best_step, self.best_metrics = loss, self.step, metrics
            self._save_adapter(self.run_dir / "best")
        self._emit(Eval(step=self.step, eval_loss=loss, best=improved,
                        preference_accuracy=metrics["preference_accuracy"],
                        chosen_accuracy=metrics["chosen_accuracy"]))  # fmt: skip

    def _state_extra(self) -> dict[str, Any]:
        return {"preference_best": self.best_metrics, "preference_last": self.last_metrics}

    def _restore_extra(self, state: dict[str, Any]) -> None:
        self.best_metrics, self.last_metrics = state.get("preference_best"), state.get("preference_last")

    def result_extra(self) -> dict[str, Any]:
        return {"preference": self.summary()}

    def summary(self) -> dict[str, Any]:
        """The run's pairs, beta and the held-out measures before (the starting adapter) and after (the adapter
        exported: the best evaluation's, else the last one's)."""
        after = self.best_metrics or self.last_metrics or {}
        return {
            "beta": self.beta,
            "train_pairs": len(self.data.train),
            "held_out_pairs": len(self.data.validation),
            "eval_loss_before": self.before.get("eval_loss"),
            "preference_accuracy_before": self.before.get("preference_accuracy"),
            "preference_accuracy_after": after.get("preference_accuracy"),
            "chosen_accuracy_before": self.before.get("chosen_accuracy"),
            "chosen_accuracy_after": after.get("chosen_accuracy"),
        }
