"""The local API under load, and what it adds to a call of the drafting core (BENCHMARKS.md, "The local API").

Usage (from the repository root, inside .venv; pinning to one CPU keeps both sides on the same core):
    nice taskset -c 1 python bench/serve_bench.py                    # 100 requests from 20 clients, 15 rounds
    python bench/serve_bench.py --requests 40 --clients 8 --rounds 9 --tokens 16

Load: the server runs with its default limits on the embedded model (a fresh data folder holding a generated
mailbox of 150 messages, so the voice and examples are real) in a thread of this process, on a free loopback
port. ``--clients`` threads, each with its own openai client, send ``--requests`` streaming chat completions
between them (each client's next as soon as its last ended). Every request must be answered (a stream ending in
``data: [DONE]``) or cleanly refused (a JSON 429 or 503); anything else counts as a failure, and the server must
still answer afterwards.

Added latency: the same non-streaming chat request (same messages, seed, ``--tokens``), through the server with
the openai client and as a direct call of ``Engine.chat`` (the drafting core call the server makes), alternating
which goes first in each round, one at a time. Reported: the median of each and of the per-round difference,
with its spread. The same comparison on a backend that answers at once isolates the server's own cost (HTTP,
JSON, the token check, the hop to the model thread) from the model's round-to-round noise.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(1, str(REPO / "tests"))  # mailgen
TOKEN = "bench-token"
MESSAGES = [{"role": "user", "content": "Write a short email telling Rosa that Monday at ten works for the plumber."}]


@contextmanager
def running(app) -> Iterator[str]:
    import uvicorn

    from assistant.server.run import listen

    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def load(url: str, requests: int, clients: int, tokens: int) -> dict:
    import openai

    outcomes: Counter[str] = Counter()
    seconds: list[float] = []
    first: list[float] = []
    lock = threading.Lock()
    todo = iter(range(requests))

    def client_loop() -> None:
        client = openai.OpenAI(base_url=url, api_key=TOKEN, max_retries=0, timeout=600)
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            t0 = time.perf_counter()
            t_first = None
            try:
                stream = client.chat.completions.create(model="mailvoice", messages=MESSAGES, stream=True,
                                                        max_tokens=tokens, seed=i)  # fmt: skip
                finish = None
                for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content and t_first is None:
                        t_first = time.perf_counter() - t0
                    if chunk.choices and chunk.choices[0].finish_reason:
                        finish = chunk.choices[0].finish_reason
                outcome = "answered" if finish else "ended without finish_reason"
            except openai.APIStatusError as exc:
                clean = exc.status_code in (429, 503) and isinstance(exc.body, dict) and "message" in exc.body
                outcome = f"refused {exc.status_code}" if clean else f"failed {exc.status_code}"
            except Exception as exc:  # a crash, a reset connection: a failure
                outcome = f"failed {type(exc).__name__}"
            with lock:
                outcomes[outcome] += 1
                if outcome == "answered":
                    seconds.append(time.perf_counter() - t0)
                    if t_first is not None:
                        first.append(t_first)

    started = time.perf_counter()
    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"outcomes": dict(outcomes), "wall": time.perf_counter() - started, "seconds": seconds, "first": first}


def run_load(label: str, url: str, args: argparse.Namespace) -> int:
    """Print what the load did; return how many requests failed (neither answered nor cleanly refused)."""
    import openai

    result = load(url, args.requests, args.clients, args.tokens)
    outcomes = result["outcomes"]
    print(f"Load, {label}: {args.requests} streaming requests from {args.clients} clients (max_tokens "
          f"{args.tokens}) in {result['wall']:.1f} s: {outcomes}")  # fmt: skip
    if result["seconds"]:
        s, f = sorted(result["seconds"]), sorted(result["first"])
        print(f"  per answered request: median {statistics.median(s):.1f} s, max {s[-1]:.1f} s (queued behind "
              f"the others); first text after median {statistics.median(f):.1f} s")  # fmt: skip
    alive = openai.OpenAI(base_url=url, api_key=TOKEN, max_retries=0).models.list()
    print(f"  the server answers afterwards: {len(alive.data)} models listed")
    return sum(n for k, n in outcomes.items() if not k.startswith(("answered", "refused")))


def latency(engine, url: str, rounds: int, tokens: int) -> dict[str, list[float]]:
    """Per round: the direct call and the call through the server (alternating which goes first), in ms."""
    import openai

    client = openai.OpenAI(base_url=url, api_key=TOKEN, max_retries=0, timeout=600)
    texts = set()

    def direct() -> None:
        texts.add(engine.chat(MESSAGES, "mailvoice", max_tokens=tokens, seed=7).text)

    def served() -> None:
        answer = client.chat.completions.create(model="mailvoice", messages=MESSAGES, max_tokens=tokens, seed=7)
        texts.add(answer.choices[0].message.content)

    served()
    direct()  # warm-up: model loaded, voice learned, connection open
    timings: dict[str, list[float]] = {"direct": [], "server": []}
    for r in range(rounds):
        for side, call in (("direct", direct), ("server", served))[:: 1 if r % 2 == 0 else -1]:
            t0 = time.perf_counter()
            call()
            timings[side].append((time.perf_counter() - t0) * 1000)
    assert len(texts) == 1, "the same request wrote different texts: the comparison is not like for like"
    return timings


def report_latency(label: str, timings: dict[str, list[float]]) -> None:
    added = [s - d for s, d in zip(timings["server"], timings["direct"], strict=True)]
    direct, server = statistics.median(timings["direct"]), statistics.median(timings["server"])
    print(f"{label}: direct {direct:.1f} ms, through the server {server:.1f} ms; added per call: median "
          f"{statistics.median(added):.1f} ms (min {min(added):.1f}, max {max(added):.1f}) "
          f"over {len(added)} rounds")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--tokens", type=int, default=16, help="max_tokens of each request")
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    os.environ["MAILVOICE_HOME"] = str(scratch / "data")

    import llama_cpp
    import mailgen as gen
    from fakes import FakeBackend

    from assistant.importer import import_paths
    from assistant.server.app import create_app
    from assistant.server.engine import Engine
    from assistant.server.guard import Limits
    from assistant.workspace import Workspace

    workspace = Workspace()
    mbox = scratch / "Sent.mbox"
    gen.write_mbox(mbox, gen.generate_messages(150, seed=11))
    import_paths(workspace.db, [mbox], me=["alex.morgan@example.org"])
    mbox.unlink()
    cpus = sorted(os.sched_getaffinity(0))
    print(f"Machine: {platform.processor() or platform.machine()}, CPUs {cpus} of {os.cpu_count()}, Python "
          f"{platform.python_version()}, llama-cpp-python {llama_cpp.__version__}; load average at start "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip

    engine = Engine(workspace)
    t0 = time.perf_counter()
    engine.chat(MESSAGES, "mailvoice", max_tokens=1)  # the model loads once, before anything is timed
    print(f"model load and first call: {time.perf_counter() - t0:.1f} s")
    # All local clients share the loopback address, so the rate limit counts them together: the default limits
    # refuse part of a burst (cleanly, 429); with the rate limit off, every request waits its turn on the model.
    unlimited = Limits(rate_per_minute=1e9, burst=10**9)
    failed = 0
    for label, limits in (("default limits", Limits()), ("rate limit off", unlimited)):
        with running(create_app(engine, TOKEN, limits)) as url:
            failed += run_load(label, url, args)
    # One client, one request at a time, many rounds: the rate limit would count them; here it is off.
    with running(create_app(engine, TOKEN, unlimited)) as url:
        report_latency(f"Embedded model, {args.tokens} tokens", latency(engine, url, args.rounds, args.tokens))
    instant = Engine(workspace, FakeBackend(replies=["Hi Rosa, Monday at ten works. Best, Alex"] * 10_000))
    with running(create_app(instant, TOKEN, unlimited)) as url:
        report_latency("Instant backend (the server's own cost)", latency(instant, url, args.rounds * 4, args.tokens))
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    if failed:
        sys.exit(f"{failed} requests failed")


if __name__ == "__main__":
    main()
