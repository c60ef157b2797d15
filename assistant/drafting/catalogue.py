"""The recommended models (``resources/models.json``), what each needs, how fast it should draft here, and which
model and voice draft now.

Speed is estimated, and the estimate says from what: generating a token on a CPU reads every weight once, so
speed falls in proportion to the file's size. The figure scaled is *measured* when this machine has drafted
(the median speed of the latest drafts with the model in use), else the *documented* figure of the built-in
model in BENCHMARKS.md. Memory needed is the file, the context cache at Mailvoice's context size, and llama.cpp's
work buffers. Nothing here downloads anything: the user fetches a file and chooses it.
"""

from __future__ import annotations

import importlib.resources
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import sqlite_utils

from assistant.drafting.models import DEFAULT_N_CTX, current_model, embedded_model_path, model_info, resolve_adapter
from assistant.errors import MailvoiceError
from assistant.store.db import get_setting

BUILTIN_NAME = "SmolLM2-135M (built-in)"
WORK_BYTES = 300_000_000  # llama.cpp's compute buffers for a 3-8B model at 4,096 tokens: about 0.3 GB
SPEED_SAMPLE = 20  # latest drafts whose speed is measured


class CatalogueError(MailvoiceError):
    """The catalogue file is missing a field or has a wrong one (a packaging fault)."""


@dataclass(frozen=True)
class Recommended:
    """A model worth downloading, as ``resources/models.json`` lists it."""

    name: str
    file: str  # the GGUF's file name at ``url``
    quantisation: str
    parameters: str
    size_bytes: int
    layers: int
    kv_heads: int
    head_dim: int
    licence: str
    url: str  # the page to download it from (the user does; Mailvoice never does)
    notes: str

    def memory_bytes(self, n_ctx: int = DEFAULT_N_CTX) -> int:
        """Memory to draft with it: the weights, the f16 keys and values of ``n_ctx`` tokens, work buffers."""
        cache = 2 * self.layers * n_ctx * self.kv_heads * self.head_dim * 2
        return self.size_bytes + cache + WORK_BYTES


@dataclass(frozen=True)
class Reference:
    """A documented speed: the model, its file size, tokens/s, the machine and where the figure comes from."""

    model: str
    size_bytes: int
    tokens_per_second: float
    machine: str
    source: str


@dataclass(frozen=True)
class Catalogue:
    models: list[Recommended]
    reference: Reference


@dataclass(frozen=True)
class Speed:
    """An expected drafting speed; ``basis`` is ``measured`` (on this machine) or ``documented``."""

    tokens_per_second: float
    basis: str
    detail: str  # the figure scaled and where it comes from, in words


def load_catalogue(text: str | None = None) -> Catalogue:
    """The catalogue shipped in ``resources/models.json`` (or ``text``, for tests); checked field by field."""
    if text is None:
        text = (importlib.resources.files("resources") / "models.json").read_text(encoding="utf-8")
    try:
        data = json.loads(text)
        reference = Reference(**_fields(Reference, data["reference"]))
        models = [Recommended(**_fields(Recommended, m)) for m in data["models"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise CatalogueError(f"The list of recommended models is damaged ({exc}); reinstall Mailvoice.") from exc
    if not models:
        raise CatalogueError("The list of recommended models is empty; reinstall Mailvoice.")
    return Catalogue(models, reference)


def _fields(kind: type, raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with exactly the fields of the dataclass ``kind``, each of its declared type."""
    types = {"str": str, "int": int, "float": (int, float)}
    wanted = {name: types[str(f.type)] for name, f in kind.__dataclass_fields__.items()}
    if set(raw) != set(wanted):
        raise KeyError(f"{kind.__name__} fields {sorted(set(raw) ^ set(wanted))}")
    for name, expected in wanted.items():
        if not isinstance(raw[name], expected) or isinstance(raw[name], bool) or raw[name] in ("", 0):
            raise TypeError(f"{kind.__name__}.{name} = {raw[name]!r}")
    return raw


def machine_memory() -> int:
    """This machine's memory in bytes."""
    return psutil.virtual_memory().total


def measured_speed(db: sqlite_utils.Database, model_file: str) -> float | None:
    """Median generation speed (tokens/s after the first) of the latest drafts written here with ``model_file``."""
    if not db["drafts"].exists():
        return None
    rows = db.execute(
        "SELECT tokens, seconds, params FROM drafts WHERE model = ? AND tokens > 1 ORDER BY id DESC LIMIT ?",
        [model_file, SPEED_SAMPLE],
    ).fetchall()
    speeds = []
    for tokens, seconds, params in rows:
        try:
            first = json.loads(params or "{}").get("first_token_seconds")
        except (ValueError, AttributeError):
            continue
        if isinstance(first, (int, float)) and seconds and seconds > first:
            speeds.append((tokens - 1) / (seconds - first))
    return statistics.median(speeds) if speeds else None


def estimate_speed(catalogue: Catalogue, size_bytes: int, measured: tuple[str, int, float] | None) -> Speed:
    """Tokens/s to expect from a model file of ``size_bytes``.

    Args:
        measured: (model name, file size, tokens/s) measured on this machine, or None to use the documented
            figure of the catalogue's reference.
    """
    if measured is not None:
        name, base_size, base_speed = measured
        detail = f"measured here: {name} drafts at {base_speed:.0f} tokens/s; scaled by file size"
        return Speed(base_speed * base_size / size_bytes, "measured", detail)
    ref = catalogue.reference
    detail = f"documented: {ref.model} at {ref.tokens_per_second:.0f} tokens/s on {ref.machine} ({ref.source})"
    return Speed(ref.tokens_per_second * ref.size_bytes / size_bytes, "documented", detail + "; scaled by file size")


@dataclass(frozen=True)
class ActiveModel:
    """The model and voice drafts use now."""

    path: str
    name: str
    file: str
    size_bytes: int
    builtin: bool  # the embedded demo model (SmolLM2-135M)
    adapter: str | None  # the voice: a trained adapter's name, None for the base model alone
    problem: str = ""  # why the chosen model cannot draft ("" when it can)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def active_model(db: sqlite_utils.Database) -> ActiveModel:
    """Which model and adapter draft now; a missing file or adapter is described, not raised."""
    path, source = current_model(db)
    embedded = embedded_model_path()
    builtin = source == "embedded" or (embedded is not None and _same_file(path, embedded))
    problem = ""
    try:
        info = model_info(path)
        name, size = str(info["name"]), int(info["size_bytes"])
    except MailvoiceError as exc:
        name, size, problem = path.stem, 0, str(exc)
    if builtin:
        name = BUILTIN_NAME  # its metadata calls it "Smollm2 135M 8k Lc100K Mix1 Ep2"
    try:
        adapter, _ = resolve_adapter(db, None)
    except MailvoiceError as exc:
        adapter, problem = get_setting(db, "adapter"), problem or str(exc)
    return ActiveModel(str(path), name, path.name, size, builtin, adapter, problem)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def speed_basis(db: sqlite_utils.Database, active: ActiveModel) -> tuple[str, int, float] | None:
    """(name, size, tokens/s) of the model in use, measured on this machine; None before it has drafted."""
    if not active.size_bytes:
        return None
    speed = measured_speed(db, active.file)
    return (active.name, active.size_bytes, speed) if speed else None
