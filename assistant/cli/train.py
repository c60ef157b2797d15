"""Training commands: train, adapters, use, preflight.

Training runs in its own process (:class:`trainer.process.TrainingProcess`); this module starts it, shows its
progress on stderr, cancels it on Ctrl-C (it checkpoints; ``--resume`` continues) and registers the adapter.
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
        echo(f"Settings   batch {r['batch_size']} x {r['grad_accum']}, {r['max_seq_len']} tokens")
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
@click.option("--name", help="Name of the adapter (default: style-DATE).")
@click.option("--no-parity", is_flag=True, help="Skip the llama.cpp parity check after export.")
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
    processes,
) -> None:
    """Train an adapter on your sent mail (QLoRA), export it for drafting and register it."""
    from trainer import jobs
    from trainer.process import TrainingProcess

    settings = (base, epochs, lora_r, lora_alpha, target_modules, lr, max_steps, duration, data_file, name)
    if resume:
        if no_parity or any(v is not None for v in settings):
            raise click.UsageError("--resume continues a run with its own saved settings; give no other options.")
        run_dir = jobs.resumable_run(ctx.root)
        if run_dir is None:
            raise MailvoiceError("No stopped run to resume. Start one with: mailvoice train")
        click.echo(f"Resuming {run_dir.name}", err=True)
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
        line, started = ProgressLine("Writing prompts", always=True), time.monotonic()

        def writing(done: int, total: int) -> None:
            spent = time.monotonic() - started
            line.show(done / total, f"{done:,} of {total:,} examples", spent / done * (total - done))

        run_dir = jobs.prepare_run(ctx.db, ctx.root, cfg, examples, pf, name, progress=writing)
        line.done()
    final = parse(_follow(TrainingProcess(run_dir, resume=resume, processes=processes)))
    match final:
        case Stopped() | Finished(status="cancelled"):
            click.echo(_stopped_text(final), err=True)
            sys.exit(130)
        case Finished():
            _report(ctx, final, jobs.finish(ctx.db, ctx.root, run_dir, final), run_dir)


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


def _report(ctx: Context, finished: Finished, row: dict[str, Any] | None, run_dir: Path) -> None:
    payload = {
        "adapter": row["name"] if row else None,
        "steps": finished.steps,
        "train_loss": finished.train_loss,
        "eval_loss": finished.eval_loss,
        "seconds": finished.seconds,
        "parity": finished.parity.fields_json() if finished.parity else None,
        "path": row["path"] if row else None,
        "run_dir": str(run_dir),
        "recipe": _recipe_of(run_dir),
    }

    def human() -> None:
        click.echo(
            f"Trained {finished.steps} steps in {format_duration(finished.seconds or 0)}: "
            f"train loss {_num(finished.train_loss)}, validation loss {_num(finished.eval_loss)}."
        )
        if row:
            click.echo(f"Adapter {row['name']} is ready. Draft with it: mailvoice use {row['name']}")

    ctx.emit(payload, human)


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
