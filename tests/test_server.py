"""The local API: a real uvicorn server on a free loopback port, a fake engine, the real openai client and curl."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import keyring
import openai
import psutil
import pytest
import uvicorn
from click.testing import CliRunner
from fakes import FakeBackend
from memory_keyring import MemoryKeyring

from assistant.cli import cli
from assistant.drafting.backend import Cancel, GenerationParams, Messages
from assistant.server.app import create_app
from assistant.server.engine import Engine
from assistant.server.guard import Limits
from assistant.server.run import NotLoopback, listen, loopback_address
from assistant.store.adapters import register
from assistant.workspace import Workspace

TOKEN = "test-token-0123456789"
REPLY = "Hi Rosa,\n\nMonday at ten works for me.\n\nBest,\nAlex"
REPO = Path(__file__).resolve().parents[1]


@dataclass
class SlowBackend(FakeBackend):
    """The fake, a word every ``delay`` seconds; counts the streams running at once and the words it gave."""

    delay: float = 0.02
    running: int = 0
    most_at_once: int = 0
    words: int = 0
    ended: threading.Event = field(default_factory=threading.Event)

    def stream(self, messages: Messages, params: GenerationParams, cancel: Cancel | None = None) -> Iterator[str]:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            for word in super().stream(messages, params, cancel):
                time.sleep(self.delay)
                self.words += 1
                yield word
        finally:
            self.running -= 1
            self.ended.set()


@contextmanager
def running(app) -> Iterator[str]:
    """``app`` on uvicorn on a free loopback port, in a thread; yields its base URL."""
    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def engine(data_home, backend) -> Engine:
    return Engine(Workspace(), backend)


@pytest.fixture
def url(engine) -> Iterator[str]:
    with running(create_app(engine, TOKEN)) as base:
        yield base


@pytest.fixture
def client(url) -> Iterator[openai.OpenAI]:
    # Closed after the test: its pool's keep-alive socket, left to the garbage collector, warns in a later test.
    with openai.OpenAI(base_url=f"{url}/v1", api_key=TOKEN, max_retries=0, timeout=10) as opened:
        yield opened


def post(url: str, path: str, body: dict | bytes, token: str | None = TOKEN, **headers: str) -> httpx.Response:
    if token:
        headers["authorization"] = f"Bearer {token}"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{url}{path}", content=content, headers={"content-type": "application/json", **headers},
                      timeout=10)  # fmt: skip


def openai_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["message"] and error["type"] and "Traceback" not in response.text
    return error


# --- OpenAI's API, through the openai client --------------------------------------------------------------


def test_models_are_the_voice_the_base_model_and_each_adapter(engine, client):
    root = engine.workspace.root
    base = {"path": "base.gguf", "size": 1, "sha256": "0"}
    register(engine.db, root, "my-voice", root / "my-voice.gguf", base, {}, {}, root)
    ids = [m.id for m in client.models.list()]
    assert ids == ["mailvoice", "SmolLM2-135M-Instruct.Q4_1.gguf", "my-voice"]
    assert client.models.retrieve("my-voice").id == "my-voice"


def test_a_chat_completion_is_written_in_the_users_voice(backend, client):
    backend.enqueue(REPLY)
    answer = client.chat.completions.create(
        model="mailvoice",
        messages=[{"role": "system", "content": "Keep it short."}, {"role": "user", "content": "Say Monday works."}],
        seed=3,
        temperature=0.2,
    )
    assert answer.choices[0].message.content == REPLY
    assert answer.choices[0].finish_reason == "stop" and answer.model == "mailvoice"
    assert answer.usage.completion_tokens == len(REPLY.split()) and answer.usage.prompt_tokens > 0
    system, user = backend.prompts[-1]
    assert "ghostwriter" in system["content"] and system["content"].endswith("Keep it short.")
    assert user == {"role": "user", "content": "Say Monday works."}
    assert backend.params[-1].seed == 3 and backend.params[-1].temperature == 0.2


def test_a_streamed_chat_completion_comes_as_openai_chunks(backend, client):
    backend.enqueue(REPLY)
    stream = client.chat.completions.create(
        model="SmolLM2-135M-Instruct.Q4_1.gguf",
        messages=[{"role": "user", "content": "Say Monday works."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY and len(chunks) > 5
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens == len(REPLY.split())


def test_max_tokens_ends_the_reply_with_finish_reason_length(backend, client):
    backend.enqueue("one two three four five six seven eight")
    answer = client.chat.completions.create(model="mailvoice", messages=[{"role": "user", "content": "x"}],
                                            max_tokens=3)  # fmt: skip
    assert answer.choices[0].finish_reason == "length" and len(answer.choices[0].message.content.split()) <= 3


def test_an_unknown_model_is_openais_404(client, url):
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="nobody", messages=[{"role": "user", "content": "hi"}], stream=True)
    error = openai_error(post(url, "/v1/draft", {"instruction": "hi", "model": "nobody"}), 404)
    assert error["code"] == "model_not_found" and "mailvoice" in error["message"]


def test_a_wrong_or_missing_token_is_401(url):
    wrong = openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0)
    with wrong, pytest.raises(openai.AuthenticationError):
        wrong.models.list()
    assert openai_error(httpx.get(f"{url}/v1/models"), 401)["code"] == "invalid_api_key"
    assert openai_error(post(url, "/v1/draft", {"instruction": "hi"}, token=None), 401)


# --- the gate: size, JSON, origin, rate, queue --------------------------------------------------------------


def test_bad_requests_are_json_errors_without_tracebacks(url):
    big = {"instruction": "hi", "context": "x" * (300 * 1024)}
    assert openai_error(post(url, "/v1/draft", big), 413)["code"] == "body_too_large"
    assert openai_error(post(url, "/v1/draft", b'{"instruction": "hi"'), 400)["code"] == "invalid_json"
    assert openai_error(post(url, "/v1/draft", {"context": "hi"}), 422)["param"] == "instruction"
    assert openai_error(post(url, "/v1/chat/completions", {"model": "mailvoice", "messages": []}), 422)
    assert openai_error(post(url, "/v1/refine", {"text": "hi", "how": "louder"}), 422)["param"] == "how"
    assert openai_error(post(url, "/v1/reply", {"instruction": "hi"}), 422)
    assert openai_error(post(url, "/v1/draft", {"instruction": "   "}), 400)  # the drafting core's own check
    assert openai_error(httpx.get(f"{url}/v1/nothing", headers={"authorization": f"Bearer {TOKEN}"}), 404)


def test_a_chunked_body_over_the_limit_is_refused(url):
    def chunks() -> Iterator[bytes]:
        yield b'{"instruction": "hi", "context": "'
        for _ in range(40):
            yield b"x" * 8192
        yield b'"}'

    response = httpx.post(f"{url}/v1/draft", content=chunks(), headers={"authorization": f"Bearer {TOKEN}"})
    assert openai_error(response, 413)


def test_web_pages_and_foreign_host_names_are_refused(url):
    page = post(url, "/v1/draft", {"instruction": "hi"}, origin="https://evil.example")
    assert openai_error(page, 403)["code"] == "origin_refused" and "access-control-allow-origin" not in page.headers
    rebound = post(url, "/v1/draft", {"instruction": "hi"}, host="evil.example")
    assert openai_error(rebound, 403)["code"] == "host_refused"


def test_a_client_over_its_rate_gets_429(engine):
    with running(create_app(engine, TOKEN, Limits(rate_per_minute=1, burst=2))) as url:
        auth = {"authorization": f"Bearer {TOKEN}"}
        assert [httpx.get(f"{url}/v1/models", headers=auth).status_code for _ in range(2)] == [200, 200]
        refused = httpx.get(f"{url}/v1/models", headers=auth)
        assert openai_error(refused, 429)["code"] == "rate_limited" and int(refused.headers["retry-after"]) > 0


def test_a_full_queue_is_503(engine):
    with running(create_app(engine, TOKEN, Limits(max_waiting=0))) as url:
        assert openai_error(post(url, "/v1/draft", {"instruction": "hi"}), 503)["code"] == "overloaded"


def test_concurrent_requests_take_turns_on_one_model(data_home):
    backend = SlowBackend(delay=0.005)
    with running(create_app(Engine(Workspace(), backend), TOKEN)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=TOKEN, max_retries=0, timeout=20)

        def ask(i: int) -> str:
            messages = [{"role": "user", "content": f"request {i}"}]
            return client.chat.completions.create(model="mailvoice", messages=messages).choices[0].message.content

        answers: list[str] = []
        threads = [threading.Thread(target=lambda i=i: answers.append(ask(i))) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
        client.close()
    assert len(answers) == 6 and backend.most_at_once == 1 and len(backend.prompts) == 6


def test_a_client_leaving_mid_stream_stops_the_model(data_home):
    backend = SlowBackend(replies=[" ".join(["word"] * 400)], delay=0.02)
    with running(create_app(Engine(Workspace(), backend), TOKEN)) as url:
        body = {"model": "mailvoice", "messages": [{"role": "user", "content": "a long one"}], "stream": True,
                "max_tokens": 1000}  # fmt: skip
        headers = {"authorization": f"Bearer {TOKEN}"}
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, headers=headers, timeout=10) as response:
            lines = response.iter_lines()
            events = [next(lines) for _ in range(8)]  # a few words in
        assert all(e.startswith("data: ") or e == "" for e in events)
        assert backend.ended.wait(5), "generation went on after the client left"
        stopped_at = backend.words
    assert stopped_at < 100


def test_a_client_leaving_while_queued_never_starts_the_model(data_home):
    backend = SlowBackend(replies=[" ".join(["word"] * 60)], delay=0.02)
    with running(create_app(Engine(Workspace(), backend), TOKEN)) as url:
        first = threading.Thread(target=post, args=(url, "/v1/draft", {"instruction": "the first one"}))
        first.start()
        time.sleep(0.3)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(f"{url}/v1/draft", json={"instruction": "the second one"}, timeout=0.3,
                       headers={"authorization": f"Bearer {TOKEN}"})  # fmt: skip
        first.join(10)
        time.sleep(0.5)
    assert len(backend.prompts) == 1


# --- Mailvoice's own endpoints ---------------------------------------------------------------------------------


def test_draft_reply_and_refine_use_the_drafting_core(backend, url, engine):
    backend.enqueue(REPLY, REPLY, "Hi Rosa, Monday at ten works.\n\nBest,\nAlex")
    drafted = post(url, "/v1/draft", {"instruction": "tell Rosa Monday works", "to": "rosa@example.net", "seed": 1})
    assert drafted.status_code == 200, drafted.text
    saved = drafted.json()["drafts"][0]
    assert saved["text"] == REPLY and saved["id"] > 0 and drafted.json()["model"].endswith(".gguf")
    email = "From: Rosa Diaz <rosa@example.net>\nSubject: Plumber\n\nCan the plumber come on Monday?\n"
    replied = post(url, "/v1/reply", {"instruction": "say Monday at ten works", "email": email})
    assert replied.status_code == 200, replied.text
    assert "Can the plumber come on Monday?" in backend.prompts[-1][-1]["content"]
    refined = post(url, "/v1/refine", {"text": REPLY, "how": "shorter"})
    assert refined.status_code == 200 and refined.json()["how"] == "shorter" and refined.json()["text"]
    unknown = post(url, "/v1/reply", {"instruction": "say yes", "message_id": "<nowhere@example.net>"})
    assert "No stored message" in openai_error(unknown, 400)["message"]


def test_a_reply_to_a_stored_message_by_its_message_id(backend, url, engine, tmp_path):
    import mailgen as gen

    from assistant.importer import import_paths

    path = tmp_path / "Inbox.mbox"
    gen.write_mbox(path, gen.generate_messages(20, seed=5))
    import_paths(engine.db, [path], me=["alex.morgan@example.org"])
    message_id, body = engine.db.execute(
        "SELECT message_id, body FROM messages WHERE from_addr != 'alex.morgan@example.org' AND length(body) > 40"
    ).fetchone()
    replied = post(url, "/v1/reply", {"instruction": "say yes", "message_id": f"<{message_id}>"})
    assert replied.status_code == 200, replied.text
    assert body.strip()[:30] in backend.prompts[-1][-1]["content"]


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_streams_and_drafts(backend, url):
    backend.enqueue(REPLY, REPLY)
    auth = ["-H", f"Authorization: Bearer {TOKEN}", "-H", "Content-Type: application/json"]
    chat = {"model": "mailvoice", "messages": [{"role": "user", "content": "say Monday works"}], "stream": True}
    out = subprocess.run(["curl", "-sS", "-N", *auth, "-d", json.dumps(chat), f"{url}/v1/chat/completions"],
                         capture_output=True, text=True, timeout=20, check=True).stdout  # fmt: skip
    events = [line.removeprefix("data: ") for line in out.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1]) == REPLY
    drafted = subprocess.run(["curl", "-sS", *auth, "-d", '{"instruction": "say Monday works"}', f"{url}/v1/draft"],
                             capture_output=True, text=True, timeout=20, check=True).stdout  # fmt: skip
    assert json.loads(drafted)["drafts"][0]["text"] == REPLY
    wrong = subprocess.run(["curl", "-sS", "-w", "%{http_code}", f"{url}/v1/models"], capture_output=True,
                           text=True, timeout=20, check=True).stdout  # fmt: skip
    assert wrong.endswith("401") and json.loads(wrong[:-3])["error"]["code"] == "invalid_api_key"


# --- loopback only, the token in the keyring -------------------------------------------------------------------


def non_loopback_address() -> str | None:
    for addresses in psutil.net_if_addrs().values():
        for a in addresses:
            if a.family == socket.AF_INET and not a.address.startswith("127."):
                return a.address
    return None


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "[::1]", "127.0.0.2"])
def test_loopback_addresses_are_accepted(host):
    assert loopback_address(host) in ("127.0.0.1", "::1", "127.0.0.2")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "example.com", "::ffff:127.0.0.1", ""])
def test_other_addresses_are_refused(host):
    with pytest.raises(NotLoopback, match="loopback"):
        loopback_address(host)


def test_serve_refuses_a_non_loopback_host_before_binding(url):
    address = non_loopback_address()
    for host in ["0.0.0.0", *([address] if address else [])]:
        result = CliRunner().invoke(cli, ["serve", "--host", host, "--port", "0"])
        assert result.exit_code == 2 and result.output.count("\n") == 1 and "loopback" in result.output
    if address is None:
        pytest.skip("this machine has no non-loopback address to try")
    port = int(url.rsplit(":", 1)[1])
    with pytest.raises(OSError), socket.create_connection((address, port), timeout=2):
        pass  # the running server listens on loopback only: its port is closed on the other address


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_the_token_is_made_once_kept_in_the_keyring_and_shown(memory_keyring, data_home):
    first = CliRunner().invoke(cli, ["serve", "--show-token", "--json"])
    assert first.exit_code == 0, first.output
    token = json.loads(first.output)["token"]
    assert len(token) > 30 and memory_keyring.store == {("mailvoice", "api"): token}
    again = CliRunner().invoke(cli, ["serve", "--show-token"])
    assert again.output.strip() == token
    renewed = json.loads(CliRunner().invoke(cli, ["serve", "--new-token", "--json"]).output)
    assert renewed["new"] and renewed["token"] != token
    files = [p for p in data_home.rglob("*") if p.is_file()] if data_home.exists() else []
    assert not [p for p in files if token.encode() in p.read_bytes()]


def test_without_a_keyring_serve_says_so_and_exits_1(data_home):
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        result = CliRunner().invoke(cli, ["serve", "--port", "0"])
    finally:
        keyring.set_keyring(previous)
    assert result.exit_code == 1 and "keyring" in result.output and "Traceback" not in result.output


def test_mailvoice_serve_end_to_end(data_home, tmp_path):
    env = {**os.environ, "PYTHON_KEYRING_BACKEND": "memory_keyring.MemoryKeyring",
           "MAILVOICE_TEST_KEYRING": json.dumps({"api": TOKEN})}  # fmt: skip
    # As in a terminal: a process started in the background by a shell that has no job control (CI) inherits
    # SIGINT ignored, and Python then leaves it so; Ctrl+C in a terminal raises KeyboardInterrupt.
    code = ("import signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from assistant.cli import main; main()")
    args = [sys.executable, "-c", code, "serve", "--port", "0", "--json"]
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    with subprocess.Popen(args, cwd=REPO, env=env, **pipes) as process:
        try:
            started = json.loads(process.stdout.readline())
            assert started["url"].startswith("http://127.0.0.1:") and started["token_new"] is False
            with openai.OpenAI(base_url=started["url"], api_key=TOKEN, max_retries=0, timeout=10) as client:
                assert "mailvoice" in [m.id for m in client.models.list()]
        finally:
            process.send_signal(signal.SIGINT)  # Ctrl+C
            _out, err = process.communicate(timeout=10)
    assert process.returncode == 130 and "Stopped." in err and "Traceback" not in err


# --- the real model ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_embedded_model_streams_through_the_openai_client(data_home):
    with running(create_app(Engine(Workspace()), TOKEN)) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=TOKEN, max_retries=0, timeout=120)
        messages = [{"role": "user", "content": "Write a two-line email telling Rosa that Monday works."}]
        chunks = list(client.chat.completions.create(model="mailvoice", messages=messages, stream=True, seed=1,
                                                     max_tokens=40))  # fmt: skip
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.strip() and chunks[-1].choices[0].finish_reason in ("stop", "length")
        again = client.chat.completions.create(model="mailvoice", messages=messages, seed=1, max_tokens=40)
        client.close()
        assert again.choices[0].message.content == text  # same seed, same words, streamed or not
