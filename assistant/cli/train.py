"""Training commands: train, adapters, use, preflight.

Training runs in its own process (:class:`trainer.process.TrainingProcess`); this module starts it, shows its
progress on stderr, cancels it on Ctrl-C (it checkpoints; ``--resume`` continues) and registers the adapter.
``train --preference`` tunes an adapter on the user's corrections (DPO, :mod:`trainer.preference`) the same way.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from assistant.cli.common import Context, ProgressLine, command_options, format_duration
from assistant.errors import MailvoiceError
from trainer.config import DURATIONS, TrainConfig
from trainer.config import duration as duration_of
from trainer.events import Eval, Event, Finished, Parity, Phase, Step, Stopped, parse


def _modules(value: str | None) -> tuple[str, ...] | None:
    return tuple(m.strip() for m in value.split(",") if m.strip()) if value else None


def resolve_config(ctx: Context, **options: Any) -> TrainConfig:
    """Defaults < the ``train`` setting < command-line options; the base defaults to the drafting model."""
    from trainer.jobs import resolve_config as resolve

    return resolve(ctx.db, **options)


def run_preflight(ctx: Context, cfg: TrainConfig, examples: list | None) -> Any:
    from trainer.jobs import run_preflight as check_machine

    return check_machine(ctx.root, cfg, examples)


def _show_preflight(pf: Any, err: bool = True) -> None:
    def echo(text: str) -> None:
        click.echo(text, err=err)

    hw, mem = pf.hardware, pf.memory
    echo(f"Device     {hw.name}: {hw.memory_available / 2**30:.1f} of {hw.memory_total / 2**30:.1f} GB available")
    echo(
        f"Base       {pf.shape.name} ({pf.shape.parameters / 1e6:,.0f}M parameters, {pf.shape.layers} layers, "
        f"vocabulary {pf.shape.vocab:,})"
    )
    parts = ", ".join(f"{k} {v:.2f}" for k, v in mem.to_json().items() if k != "total")
    echo(f"Memory     ~{mem.total / 2**30:.1f} GB at peak ({parts} GB)")
    if pf.train_tokens:
        echo(
            f"Time       ~{format_duration(pf.hours * 3600)} ({pf.train_tokens:,} tokens per epoch at "
            f"{pf.tokens_per_second:,.0f} tokens/s, {pf.rate_source})"
        )
    if pf.recommended:
        r = pf.recommended
        checkpointing = ", gradient checkpointing" if r.get("gradient_checkpointing") else ""
        echo(f"Settings   batch {r['batch_size']} x {r['grad_accum']}, {r['max_seq_len']} tokens{checkpointing}")
    for line in pf.advice + pf.problems:
        echo(f"Note       {line}")


@click.command()
@click.option("--base", help="GGUF file or Hugging Face folder to train on (default: the model drafting uses).")
@click.option("--epochs", type=click.IntRange(min=1), help="Passes over the train split (default 3).")
@click.option("--lora-r", type=click.IntRange(min=1), help="LoRA rank (default 16).")
@click.option("--lora-alpha", type=float, help="LoRA alpha; the update is scaled by alpha / r (default 32).")
@click.option("--target-modules", help="Comma-separated layers to adapt (default: every projection).")
@click.option("--lr", type=float, help="Peak learning rate (default 2e-4).")
@click.option("--max-steps", type=click.IntRange(min=1), help="Stop after this many optimizer steps.")
@click.option(
    "--duration",
    type=click.Choice(list(DURATIONS)),
    help="How long it may train: quick (a 10-step test), one-pass (every email once) or full (the settings' "
    "passes, 3 by default). --epochs and --max-steps win over it.",
)
@click.option("--resume", is_flag=True, help="Continue the last run that was stopped or crashed.")
@click.option(
    "--data",
    "data_file",
    type=click.Path(exists=True, dir_okay=False),
    help="Train on a JSONL file (instruction, input, output, split) instead of the pairs table.",
)
@click.option("--name", help="Name of the adapter (default: style-DATE; with --preference ADAPTER-refresh-DATE).")
@click.option("--no-parity", is_flag=True, help="Skip the llama.cpp parity check after export.")
@click.option(
    "--preference",
    is_flag=True,
    help="Tune an adapter on your corrections of its drafts (DPO): your text is preferred to the model's. "
    "--epochs, --lr and --max-steps then set the preference passes, rate and steps.",
)
@click.option("--rule-made", is_flag=True, help="With --preference: also reject rule-made bad texts for drafts "
              "you used as written (doubled, a placeholder left in, a stranger's greeting or sign-off).")  # fmt: skip
@click.option("--adapter", "start_adapter", help="With --preference: the adapter to tune (default: the one drafting "
              "uses, else the newest).")  # fmt: skip
@click.option("--beta", type=click.FloatRange(min=0, min_open=True), help="With --preference: how far the tuned "
              "adapter may move from the one it starts from; lower moves further (default 0.1).")  # fmt: skip
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Data-parallel processes (DDP through accelerate launch), e.g. one per GPU.",
)
@command_options
def train(
    ctx: Context,
    base,
    epochs,
    lora_r,
    lora_alpha,
    target_modules,
    lr,
    max_steps,
    duration,
    resume,
    data_file,
    name,
    no_parity,
    preference,
    rule_made,
    start_adapter,
    beta,
    processes,
) -> None:
    """Train an adapter on your sent mail (QLoRA), export it for drafting and register it; with --preference,
    tune an adapter on your corrections of its drafts instead."""
    from trainer import jobs
    from trainer.process import TrainingProcess

    settings = (base, epochs, lora_r, lora_alpha, target_modules, lr, max_steps, duration, data_file, name)
    dpo = (start_adapter, beta)
    if not preference and (rule_made or any(v is not None for v in dpo)):
        raise click.UsageError("--rule-made, --adapter and --beta go with --preference.")
    estimate: float | None = None  # seconds, as preflight said before the run (none for a resumed run)
    if resume:
        if no_parity or preference or any(v is not None for v in settings):
            raise click.UsageError("--resume continues a run with its own saved settings; give no other options.")
        run_dir = jobs.resumable_run(ctx.root)
        if run_dir is None:
            raise MailvoiceError("No stopped run to resume. Start one with: mailvoice train")
        click.echo(f"Resuming {run_dir.name}", err=True)
    elif preference:
        if any(v is not None for v in (base, lora_r, lora_alpha, target_modules, data_file)):
            raise click.UsageError("--preference tunes an adapter on its own base and LoRA shape, on your "
                                   "corrections: --base, --lora-r, --lora-alpha, --target-modules and --data do "
                                   "not go with it.")  # fmt: skip
        limits = duration_of(duration).preference_options() if duration else {}
        cfg = resolve_config(
            ctx,
            preference_epochs=epochs or limits.get("preference_epochs"),
            preference_learning_rate=lr,
            preference_max_steps=max_steps or limits.get("preference_max_steps"),
            preference_beta=beta,
            parity=False if no_parity else None,
        )
        run_dir, estimate = _prepare_preference(ctx, cfg, start_adapter, rule_made, name)
    else:
        limits = duration_of(duration).options() if duration else {}
        cfg = resolve_config(
            ctx,
            base=base,
            epochs=epochs or limits.get("epochs"),
            lora_r=lora_r,
            lora_alpha=lora_alpha,
            target_modules=_modules(target_modules),
            learning_rate=lr,
            max_steps=max_steps or limits.get("max_steps"),
            parity=False if no_parity else None,
        )
        examples = jobs.training_examples(ctx.db, data_file)
        pf = run_preflight(ctx, cfg, examples)
        _show_preflight(pf)
        estimate = pf.hours * 3600 if pf.train_tokens else None
        line, started = ProgressLine("Writing prompts", always=True), time.monotonic()

        def writing(done: int, total: int) -> None:
            spent = time.monotonic() - started
            line.show(done / total, f"{done:,} of {total:,} examples", spent / done * (total - done))

        run_dir = jobs.prepare_run(ctx.db, ctx.root, cfg, examples, pf, name, progress=writing)
        line.done()
        if estimate is not None:  # the prompts are written now: count them instead of guessing their size
            estimate = _written_estimate(run_dir, pf.tokens_per_second)
    final = parse(_follow(TrainingProcess(run_dir, resume=resume, processes=processes)))
    match final:
        case Stopped() | Finished(status="cancelled"):
            click.echo(_stopped_text(final), err=True)
            sys.exit(130)
        case Finished():
            _report(ctx, final, jobs.finish(ctx.db, ctx.root, run_dir, final), run_dir, estimate)


def _written_estimate(run_dir: Path, rate: float) -> float:
    """The run's time from its prompts as written, said on stderr; preflight's guessed their size."""
    from trainer import jobs
    from trainer.preflight import train_seconds

    tokens, examples = jobs.written_tokens(run_dir)
    seconds = train_seconds(TrainConfig.load(run_dir / "config.json"), tokens, rate, examples)
    click.echo(f"Time       ~{format_duration(seconds)} ({tokens:,} tokens per epoch as the prompts were written)",
               err=True)  # fmt: skip
    return seconds


def _prepare_preference(ctx: Context, cfg: TrainConfig, adapter: str | None, rule_made: bool,
                        name: str | None) -> tuple[Path, float | None]:  # fmt: skip
    """Say what a preference run would train and how long it takes, then create it; return its folder and the
    estimated seconds."""
    from trainer import jobs

    plan = jobs.preference_plan(ctx.db, ctx.root, cfg, adapter, rule_made)
    pf = jobs.preference_preflight(ctx.root, plan)
    c = plan.counts()
    made = f" and {c['rule_made']} rule-made" if rule_made else ""
    click.echo(
        f"Tuning   {plan.adapter['name']} on {c['edit']} of your corrections{made} ({c['held_out']} held out "
        f"to measure it); beta {plan.cfg.preference_beta}, learning rate {plan.cfg.learning_rate:g}",
        err=True,
    )
    _show_preflight(pf)
    line, started = ProgressLine("Writing prompts", always=True), time.monotonic()

    def writing(done: int, total: int) -> None:
        spent = time.monotonic() - started
        line.show(done / total, f"{done:,} of {total:,} corrections", spent / done * (total - done))

    run_dir = jobs.prepare_preference_run(ctx.db, ctx.root, cfg, adapter, rule_made, name, writing, pf=pf)
    line.done()
    return run_dir, pf.hours * 3600 if pf.train_tokens else None


def _stopped_text(final: Finished | Stopped) -> str:
    """What a stopped run says: a graceful stop checkpointed its step; Stop now continues from the last one."""
    if isinstance(final, Finished):  # cancelled
        return f"Stopped at step {final.steps}; continue with: mailvoice train --resume"
    if final.checkpoint:
        return (f"Stopped by you at step {final.steps}; continue from the checkpoint of step {final.checkpoint} "
                "with: mailvoice train --resume")  # fmt: skip
    return f"Stopped by you at step {final.steps}, before the first checkpoint; start again with: mailvoice train"


def _follow(proc: Any) -> dict[str, Any]:
    """Show the worker's events as progress on stderr; the last one (finished or stopped, as its dict). Ctrl-C
    asks it to stop after the current step (with a checkpoint); a second Ctrl-C stops it at once.

    Ctrl-C is taken by a signal handler, not as KeyboardInterrupt: an exception raised while the event
    generator waits on the pipe would end the generator, and with it the reading of the worker's last events.
    """
    line = ProgressLine("Training", always=True)
    presses = []

    def on_interrupt(_signum: int, _frame: Any) -> None:
        presses.append(1)
        if len(presses) == 1:
            click.echo("\nStopping after this step (a checkpoint is written); Ctrl-C again stops now.", err=True)
            proc.cancel()
        else:
            proc.kill()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        for event in proc.events():
            _show_event(parse(event), line)
    finally:
        signal.signal(signal.SIGINT, previous)
    line.done()
    return proc.result()


def _show_event(event: Event, line: ProgressLine) -> None:
    match event:
        case Step():
            rate = event.tokens_per_second or 0
            line.show(
                event.step / event.total_steps,
                f"step {event.step}/{event.total_steps}  loss {event.loss:.3f}  {rate:,.0f} tok/s",
                event.eta,
            )
        case Eval(preference_accuracy=float() as accuracy):
            likelier = _pct(event.chosen_accuracy)
            click.echo(
                f"\nStep {event.step}: held-out preference loss {event.eval_loss:.3f}; your text likelier than the "
                f"draft in {likelier}, gained on it in {accuracy:.0%} (50%: no change)",
                err=True,
            )
        case Eval():
            click.echo(f"\nStep {event.step}: validation loss {event.eval_loss:.3f}", err=True)
        case Phase(message=message) if message:
            click.echo(message, err=True)
        case Parity():
            _show_parity(event)


def _show_parity(event: Parity) -> None:
    click.echo(
        f"llama.cpp check: {event.agreement:.1%} of next-token choices agree with the trained "
        f"model ({event.decisive_agreement:.1%} where it is sure; without the adapter "
        f"{event.base_agreement:.1%}).",
        err=True,
    )
    if not event.passed:
        click.echo(
            "That is below 95% and below the base alone: drafts may differ from what was trained. "
            "With few pairs this can be noise; otherwise report it.",
            err=True,
        )


def _report(
    ctx: Context, finished: Finished, row: dict[str, Any] | None, run_dir: Path, estimate: float | None = None
) -> None:
    payload = {
        "adapter": row["name"] if row else None,
        "steps": finished.steps,
        "train_loss": finished.train_loss,
        "eval_loss": finished.eval_loss,
        "seconds": finished.seconds,
        "estimated_seconds": None if estimate is None else round(estimate, 1),
        "parity": finished.parity.fields_json() if finished.parity else None,
        "path": row["path"] if row else None,
        "run_dir": str(run_dir),
        "recipe": _recipe_of(run_dir),
    }
    pref = finished.preference
    if pref is not None:  # a preference run: its summary beside the common keys (README: Command-line additions)
        payload.update({"kind": "preference", **pref})

    def human() -> None:
        click.echo(
            f"Trained {finished.steps} steps in {format_duration(finished.seconds or 0)}: "
            f"train loss {_num(finished.train_loss)}, validation loss {_num(finished.eval_loss)}."
        )
        click.echo(_estimate_line(estimate, finished.seconds))
        if pref is not None:
            _show_preference(pref)
        if row:
            click.echo(f"Adapter {row['name']} is ready. Draft with it: mailvoice use {row['name']}")

    ctx.emit(payload, human)


def _estimate_line(estimate: float | None, seconds: float | None) -> str:
    """The time estimated before the run beside the time it took, so the estimate can be judged."""
    took = format_duration(seconds or 0)
    if estimate is None:
        return f"Took {took} (no estimate: a resumed run)."
    return f"Estimated before the start: ~{format_duration(estimate)}; took {took}."


def _show_preference(pref: dict[str, Any]) -> None:
    """Before and after on the held-out corrections; what to do when it did not help."""
    held, start = pref.get("held_out_pairs") or pref.get("pairs", {}).get("held_out"), pref.get("from_adapter")
    click.echo(f"On {held} held-out corrections, tuned from {start}:")
    click.echo(
        f"  your text likelier than the model's draft  {_pct(pref.get('chosen_accuracy_before'))} before, "
        f"{_pct(pref.get('chosen_accuracy_after'))} after"
    )
    click.echo(
        f"  your text gained on the draft              {_pct(pref.get('preference_accuracy_after'))} "
        f"(against the adapter it started from: {_pct(pref.get('preference_accuracy_before'))} means no change)"
    )
    before, after = pref.get("chosen_accuracy_before"), pref.get("chosen_accuracy_after")
    if before is not None and after is not None and after < before and start:
        click.echo(f"That is worse than before: keep drafting with {start} (mailvoice use {start}).")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _recipe_of(run_dir: Path) -> dict[str, Any] | None:
    """What the machine's recipe chose for this run (None when the person set everything it would)."""
    try:
        return TrainConfig.load(run_dir / "config.json").extra.get("recipe")
    except MailvoiceError:
        return None


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@click.command()
@command_options
def adapters(ctx: Context) -> None:
    """Registered adapters with their base model, settings and metrics."""
    from assistant.store.adapters import list_adapters

    found = list_adapters(ctx.db)

    def human() -> None:
        if not found:
            click.echo("No adapters yet. Train one with: mailvoice train")
        for a in found:
            m, c = a["metrics"], a["config"]
            mark = "*" if a["in_use"] else " "
            click.echo(
                f"{mark} {a['name']:<36} base {Path(a['base']['path']).name}  r={c.get('lora_r')} "
                f"steps {m.get('steps')}  eval loss {_num(m.get('eval_loss'))}  {a['created_at'][:16]}"
            )

    ctx.emit({"adapters": found}, human)


@click.command()
@click.argument("adapter")
@command_options
def use(ctx: Context, adapter: str) -> None:
    """Draft with ADAPTER from now on (``none``: the base model alone)."""
    from assistant.store.adapters import use_adapter

    chosen = use_adapter(ctx.db, adapter)
    ctx.emit({"adapter": chosen}, f"Drafts now use {chosen}." if chosen else "Drafts now use no adapter.")


@click.command("preflight")
@click.option("--base", help="GGUF file or Hugging Face folder (default: the model drafting uses).")
@click.option("--data", "data_file", type=click.Path(exists=True, dir_okay=False), help="JSONL examples to size.")
@command_options
def preflight_(ctx: Context, base: str | None, data_file: str | None) -> None:
    """What this machine can train: device, memory, the estimated time, and recommended settings."""
    from trainer.data import load_examples

    cfg = resolve_config(ctx, base=base)
    pf = run_preflight(ctx, cfg, load_examples(data_file or ctx.db))
    ctx.emit(pf.to_json(), lambda: _show_preflight(pf, err=False))


COMMANDS = [train, adapters, use, preflight_]
