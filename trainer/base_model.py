"""The base model: its identity and shape, a GGUF dequantized once into a cached Hugging Face folder, and
loading it in 4-bit NF4 (QLoRA) or in full precision (the parity check's reference).

transformers reads a GGUF (``gguf_file=``) only by dequantizing it, and refuses ``quantization_config`` with
it; so a GGUF base is dequantized once into ``<data>/cache/base/<key>/`` (safetensors + config + tokenizer)
and every run loads that folder with bitsandbytes. On CPU, quantizing to NF4 is slow (bitsandbytes' CPU
kernel is plain torch: ~30 s for 135M parameters), so the NF4 weights are cached too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainer.events import Phase
from trainer.shapes import HEADER_BYTES, BaseModelError, shape_of

log = logging.getLogger("mailvoice.trainer")
Progress = Callable[[dict[str, Any]], None]  # receives trainer.events.Phase dicts
HALF_ABOVE = 2e9  # parameters above which the dequantized copy is float16 (an 8B model: 16 GB, not 32 GB)


@dataclass(frozen=True)
class BaseIdentity:
    """Which base an adapter belongs to: an adapter only works on the exact model it was trained on."""

    path: str
    kind: str  # "gguf" or "hf"
    size: int
    sha256: str  # of the GGUF's first 8 MiB (its header) / of an HF folder's config and file sizes
    name: str

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.sha256}:{self.size}".encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def identify(path: str | Path) -> BaseIdentity:
    path = Path(path).expanduser().resolve()
    if path.is_dir():
        config = path / "config.json"
        if not config.is_file():
            raise BaseModelError(f"{path} has no config.json: give a GGUF file or a Hugging Face model folder.")
        files = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin"))
        digest = hashlib.sha256(config.read_bytes())
        for f in files:
            digest.update(f"{f.name}:{f.stat().st_size}".encode())
        return BaseIdentity(str(path), "hf", sum(f.stat().st_size for f in files), digest.hexdigest(), path.name)
    if not path.is_file():
        raise BaseModelError(f"The base model {path} does not exist. Give a GGUF file or a Hugging Face folder.")
    with path.open("rb") as f:
        head = f.read(HEADER_BYTES)
    if not head.startswith(b"GGUF"):
        raise BaseModelError(f"{path} is neither a GGUF file nor a Hugging Face model folder.")
    return BaseIdentity(str(path), "gguf", path.stat().st_size, hashlib.sha256(head).hexdigest(), path.stem)


# --- dequantizing a GGUF into a cached folder -------------------------------------------------------------


def prepare_base(base: str | Path, cache_root: Path, progress: Progress | None = None) -> Path:
    """The Hugging Face folder to train on: ``base`` itself, or its cached dequantized copy when a GGUF."""
    identity = identify(base)
    if identity.kind == "hf":
        return Path(identity.path)
    folder = cache_root / "base" / identity.key
    if (folder / "complete.json").is_file():
        return folder

    shape = shape_of(identity.path)
    half = shape.parameters > HALF_ABOVE
    needed = int(shape.parameters * (2 if half else 4) * 1.1) + (200 << 20)
    folder.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(folder.parent).free
    if free < needed:
        raise BaseModelError(
            f"Preparing {identity.name} for training needs {needed / 2**30:.1f} GB of disk in {folder.parent} "
            f"({free / 2**30:.1f} GB free). Free some space, or train on a smaller base."
        )
    _emit(progress, Phase(phase="dequantize", message=f"Preparing {identity.name} (once)"))
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    try:
        _dequantize(Path(identity.path), tmp, half, progress)
        (tmp / "complete.json").write_text(json.dumps({"identity": identity.to_json(), "half": half}))
        shutil.rmtree(folder, ignore_errors=True)  # a partial copy from a crash
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _dequantize(gguf: Path, out: Path, half: bool, progress: Progress | None) -> None:
    import torch
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        with _tensor_progress(progress):
            model = AutoModelForCausalLM.from_pretrained(
                gguf.parent, gguf_file=gguf.name, dtype=torch.float16 if half else torch.float32
            )
    except (ValueError, KeyError, RuntimeError, OSError) as exc:
        raise BaseModelError(
            f"transformers cannot read {gguf} ({exc}). Training supports GGUFs of common architectures "
            "(Llama, Mistral, Qwen2/3, Phi-3, Gemma 2/3); or give the model's Hugging Face folder as the base.",
            cli="(--base FOLDER)",
        ) from exc
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights written are plain floats, not GGUF blocks
    config.save_pretrained(out)
    tokenizer.save_pretrained(out)
    save_model(model, str(out / "model.safetensors"))  # save_model drops the tied lm_head duplicate


@contextlib.contextmanager
def _tensor_progress(progress: Progress | None) -> Iterator[None]:
    """Report transformers' per-tensor dequantization loop (its tqdm) as progress events."""
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    original = getattr(gguf_utils, "tqdm", None)
    if progress is None or original is None:
        yield
        return

    def reporting(items: Any, **_kwargs: Any) -> Iterator[Any]:
        items = list(items)
        for n, item in enumerate(items):
            if n % 16 == 0:
                progress(Phase(phase="dequantize", fraction=n / len(items)).to_json())
            yield item

    gguf_utils.tqdm = reporting
    try:
        yield
    finally:
        gguf_utils.tqdm = original


def _emit(progress: Progress | None, event: Phase) -> None:
    if progress is not None:
        progress(event.to_json())


# --- loading ----------------------------------------------------------------------------------------------


def pick_device(wanted: str = "auto") -> str:
    import torch

    if wanted == "mps":
        raise BaseModelError("4-bit (QLoRA) training has no Apple GPU kernels in bitsandbytes: train with device cpu.")
    if wanted != "auto":
        if wanted == "cuda" and not torch.cuda.is_available():
            raise BaseModelError("Training on cuda was asked for, but torch sees no CUDA GPU.")
        return wanted
    if torch.cuda.is_available():
        return "cuda"
    return "cpu"  # MPS: bitsandbytes 4-bit has no MPS kernels to train with, so CPU it is (preflight says so)


def compute_dtype(wanted: str, device: str) -> Any:
    """bfloat16 on GPUs that have it, float16 on older GPUs, float32 on CPU (CPU half matmuls are slow)."""
    import torch

    if wanted != "auto":
        return getattr(torch, wanted)
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def load_tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token  # padding is masked out; any id will do
    return tokenizer


def load_quantized(folder: Path, device: str, dtype: Any, cache_root: Path, progress: Progress | None = None) -> Any:
    """The base in 4-bit NF4 with double quantization (QLoRA), non-quantized parts in ``dtype``."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    device_map = {"": 0 if device == "cuda" else device}  # one whole model per process (DDP: per rank)
    name = str(dtype).removeprefix("torch.")
    cached = cache_root / "nf4" / f"{identify(folder).key}-{name}"
    if device == "cpu" and (cached / "complete.json").is_file():
        model = AutoModelForCausalLM.from_pretrained(cached, device_map=device_map, dtype=dtype)
        return _training_ready(model)
    bnb = BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
    )
    _emit(progress, Phase(phase="quantize", message="Quantizing the base to 4 bits"))
    model = AutoModelForCausalLM.from_pretrained(folder, quantization_config=bnb, device_map=device_map, dtype=dtype)
    if device == "cpu":
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cached.parent))
        try:
            model.save_pretrained(tmp)
            (tmp / "complete.json").write_text("{}")
            shutil.rmtree(cached, ignore_errors=True)
            tmp.rename(cached)
        except OSError as exc:  # a cache is an optimisation: a full disk must not stop training
            log.warning("could not cache the NF4 weights: %s", exc)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return _training_ready(model)


def _training_ready(model: Any) -> Any:
    # bitsandbytes repacks 4-bit weights for its AVX512-BF16 CPU kernel the first time a layer runs in eval
    # mode without grad (an evaluation); that kernel has no backward, so training after the first evaluation
    # would silently stop propagating gradients through the base layers. Keep the one layout that trains.
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
    return model


@contextlib.contextmanager
def peft_quietly() -> Iterator[None]:
    """peft probes ``is_gradient_checkpointing``, a property transformers 5 deprecated: that one warning only."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def load_reference(folder: Path, dtype: Any = None) -> Any:
    """The base unquantized (float32 by default): the weights llama.cpp's GGUF dequantizes to."""
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype or torch.float32).eval()
