"""The backend interface: the fake streams and records like a model would; llama settings select reloads."""

from __future__ import annotations

import pytest
from fakes import FakeBackend

from assistant.drafting import backend as backend_module
from assistant.drafting.backend import EngineSettings, GenerationParams, LlamaBackend, default_threads

MESSAGES = [{"role": "system", "content": "You write emails."}, {"role": "user", "content": "Say hi"}]


def test_fake_streams_queued_replies_word_by_word_and_records_prompts():
    fake = FakeBackend(replies=["Hi Rosa,\n\nSee you Monday."])
    chunks = list(fake.stream(MESSAGES, GenerationParams(seed=7)))
    assert chunks == ["Hi", " Rosa,", "\n\nSee", " you", " Monday."]
    assert fake.prompts == [MESSAGES] and fake.params[0].seed == 7
    assert list(fake.stream(MESSAGES, GenerationParams())) == ["Reply", " 2"]  # queue empty: a default reply


def test_fake_honours_max_tokens_stop_strings_and_cancel():
    fake = FakeBackend()
    fake.enqueue("one two three four five", "keep this</email> not this", "a b c d e f")
    assert "".join(fake.stream(MESSAGES, GenerationParams(max_tokens=3))) == "one two three"
    assert "".join(fake.stream(MESSAGES, GenerationParams(stop=("</email>",)))) == "keep this"
    seen: list[str] = []
    out = []
    for chunk in fake.stream(MESSAGES, GenerationParams(), cancel=lambda: len(seen) >= 2):
        seen.append(chunk)
        out.append(chunk)
    assert "".join(out) == "a b"


def test_fake_keeps_its_context_size_and_records_engine_settings():
    fake = FakeBackend(settings=EngineSettings(model_path="x.gguf", n_ctx=777))
    fake.configure(EngineSettings(model_path="real.gguf", n_ctx=4096, lora_path="/a/lora.gguf", lora_scale=0.5))
    assert fake.n_ctx == 777 and fake.settings.lora_path == "/a/lora.gguf" and fake.settings.lora_scale == 0.5
    assert [s.model_path for s in fake.configured] == ["real.gguf"]


def test_llama_engine_key_changes_with_anything_that_needs_a_reload(tmp_path):
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    lora_a, lora_b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    lora_a.write_bytes(b"GGUF")
    lora_b.write_bytes(b"GGUF")
    base = EngineSettings(model_path=str(model))
    keys = {
        backend_module._key(s)
        for s in (
            base,
            EngineSettings(model_path=str(model), lora_path=str(lora_a)),
            EngineSettings(model_path=str(model), lora_path=str(lora_b)),
            EngineSettings(model_path=str(model), lora_path=str(lora_b), lora_scale=0.5),
            EngineSettings(model_path=str(model), n_ctx=2048),
            EngineSettings(model_path=str(model), n_gpu_layers=0),
        )
    }
    assert len(keys) == 6
    assert backend_module._key(base) == backend_module._key(EngineSettings(model_path=str(model)))
    backend = LlamaBackend(base)
    backend.configure(EngineSettings(model_path=str(model), lora_path=str(lora_a)))
    assert backend.settings.lora_path == str(lora_a)  # used from the next stream on, no restart


def test_a_model_llama_cannot_load_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\x00" * 64)
    with pytest.raises(backend_module.MailvoiceError, match="llama.cpp could not load"):
        LlamaBackend(EngineSettings(model_path=str(bad))).load()


def test_default_threads_is_sane():
    assert 1 <= default_threads() <= 64


@pytest.mark.parametrize(("cpus", "threads"), [(1, 1), (2, 2), (4, 4), (16, 8)])
def test_threads_follow_the_cpus_the_process_may_use(monkeypatch, cpus, threads):
    # Pinned with taskset to fewer CPUs than the machine has, llama.cpp must not start more threads than that:
    # extra threads on the same core only wait for each other.
    monkeypatch.setattr(backend_module.os, "sched_getaffinity", lambda _pid: set(range(cpus)), raising=False)
    monkeypatch.setattr(backend_module.os, "cpu_count", lambda: 64)
    kwargs = backend_module.llama_kwargs(EngineSettings(model_path="m.gguf", n_gpu_layers=0))
    assert (kwargs["n_threads"], kwargs["n_threads_batch"]) == (threads, cpus)
