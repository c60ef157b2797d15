"""Nothing leaves the machine: the guard refuses other hosts before any packet, and real commands make no attempt."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import mailgen as gen
import pytest

from assistant import netguard
from assistant.netguard import Attempt, NetworkBlocked

TEST_NET = ("198.51.100.1", 80)  # RFC 5737 documentation range: routed nowhere


@pytest.fixture
def guard():
    """The guard in this process for one test, then the real socket functions and environment back.

    It does not use ``monkeypatch``, so a test's own monkeypatching is undone before the guard is removed.
    """
    outer = {name: os.environ.pop(name, None) for name in netguard.OFFLINE_ENV}
    netguard.install()
    yield netguard
    netguard.uninstall()
    for name, value in outer.items():
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value


class CountingReal:
    """Stands in for a real socket function: counts calls, never touches the network."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __call__(self, *args, **kwargs):
        self.calls.append(args)
        raise AssertionError("the real network function was reached")


def test_a_connection_to_test_net_is_refused_before_the_real_connect(guard, monkeypatch):
    real = {name: CountingReal() for name in ("connect", "connect_ex", "sendto")}
    for name, fake in real.items():
        monkeypatch.setitem(netguard._REAL, name, fake)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with tcp, udp, netguard.recording() as rec:
        with pytest.raises(NetworkBlocked, match=r"works offline and refused a connection to 198\.51\.100\.1:80"):
            tcp.connect(TEST_NET)
        with pytest.raises(NetworkBlocked):
            tcp.connect_ex(TEST_NET)
        with pytest.raises(NetworkBlocked, match="198.51.100.1:53"):
            udp.sendto(b"query", ("198.51.100.1", 53))
        with pytest.raises(OSError):  # the socket never got as far as connecting
            tcp.getpeername()
    assert all(fake.calls == [] for fake in real.values())
    assert rec.refused == [
        Attempt("connect", "198.51.100.1", 80, False),
        Attempt("connect_ex", "198.51.100.1", 80, False),
        Attempt("sendto", "198.51.100.1", 53, False),
    ]


def test_names_of_other_hosts_are_not_even_looked_up(guard, monkeypatch):
    lookups = CountingReal()
    monkeypatch.setitem(netguard._REAL, "getaddrinfo", lookups)
    monkeypatch.setitem(netguard._REAL, "create_connection", lookups)
    with netguard.recording() as rec:
        with pytest.raises(NetworkBlocked, match="example.com:443"):
            socket.getaddrinfo("example.com", 443)
        with pytest.raises(NetworkBlocked, match="example.com:80"):
            socket.create_connection(("example.com", 80), timeout=5)
        with pytest.raises(NetworkBlocked):
            socket.gethostbyname("example.com")
        with pytest.raises(NetworkBlocked, match=r"\[2001:db8::1\]:443"):
            socket.create_connection(("2001:db8::1", 443))
        with pytest.raises(NetworkBlocked, match="example.com:80"):  # a library's own HTTP stack
            urllib.request.build_opener(urllib.request.ProxyHandler({})).open("http://example.com/", timeout=5)
    assert lookups.calls == []
    assert len(rec.refused) == 5 and rec.allowed == []


def test_loopback_and_unix_sockets_still_work(guard, tmp_path):
    with netguard.recording() as rec:
        server = socket.create_server(("127.0.0.1", 0))
        port = server.getsockname()[1]
        echoed = []

        def echo(count: int) -> None:
            for _ in range(count):
                conn, _addr = server.accept()
                with conn:
                    conn.sendall(conn.recv(16))

        thread = threading.Thread(target=echo, args=(2,))
        thread.start()
        for host in ("localhost", "127.0.0.1"):
            with socket.create_connection((host, port), timeout=5) as client:
                client.sendall(b"ping")
                echoed.append(client.recv(16))
        thread.join(5)
        server.close()
        path = str(tmp_path / "s")
        unix_server = socket.socket(socket.AF_UNIX)
        unix_server.bind(path)
        unix_server.listen()
        with unix_server, socket.socket(socket.AF_UNIX) as unix_client:
            unix_client.connect(path)
    assert echoed == [b"ping", b"ping"]
    assert rec.refused == [] and len(rec.allowed) >= 5


def test_install_is_idempotent_and_a_deliberate_setting_wins(guard, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")  # a user who opted in on purpose
    netguard.install()
    netguard.install()
    assert os.environ["HF_HUB_OFFLINE"] == "0"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1" and os.environ["DO_NOT_TRACK"] == "1"
    assert socket.socket.connect is netguard._connect
    assert netguard._REAL["connect"] is not netguard._connect  # not wrapped twice


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("::ffff:127.0.0.1", True),
        ("localhost", True), ("LOCALHOST", True), (b"127.0.0.1", True),
        ("198.51.100.1", False), ("10.0.0.1", False), ("0.0.0.0", False), ("2001:db8::1", False),
        ("example.com", False), ("localhost.example.com", False), ("", False), (None, False),
    ],
)  # fmt: skip
def test_what_counts_as_this_machine(host, local):
    assert netguard.is_local_host(host) is local


# -- the real commands, in a fresh process with the guard installed as the CLI's main() will -------------

WRAPPER = """
import json, sys
from assistant import netguard
netguard.install()
out, args = sys.argv[1], sys.argv[2:]
result = {"code": 0, "error": ""}
with netguard.recording() as rec:
    try:
        if args[0] == "--python":
            exec(args[1])
        else:
            from assistant.cli import main
            sys.argv = ["mailvoice", *args]
            main()
    except SystemExit as exc:
        result["code"] = exc.code or 0
    except Exception as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
result["attempts"] = [[a.operation, a.host, a.port, a.allowed] for a in rec.attempts]
with open(out, "w") as f:
    json.dump(result, f)
"""


def guarded(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    out = tmp_path / "guard-report.json"
    # The defaults are under test, and a proxy would change which host is attempted.
    clean = {k: v for k, v in os.environ.items() if k not in netguard.OFFLINE_ENV and "proxy" not in k.lower()}
    proc = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(out), *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(out.read_text())


def test_import_and_stats_make_no_network_attempt(tmp_path, data_home):
    mbox = tmp_path / "mail.mbox"
    gen.write_mbox(mbox, gen.generate_messages(300, seed=21))
    imported = guarded(tmp_path, "--json", "import", str(mbox))
    assert imported["code"] == 0 and imported["error"] == ""
    stats = guarded(tmp_path, "--json", "stats")
    assert stats["code"] == 0
    assert [a for a in imported["attempts"] + stats["attempts"] if not a[3]] == []
    assert [a for a in imported["attempts"] + stats["attempts"] if not netguard.is_local_host(a[1])] == []
    assert len(list(data_home.iterdir())) >= 1  # the commands really ran against this data folder
    # The same harness does see an attempt, so the zero above is a measurement, not a blind spot.
    probe = guarded(tmp_path, "--python", "import socket; socket.socket().connect(('198.51.100.1', 80))")
    assert probe["error"].startswith("NetworkBlocked") and probe["attempts"] == [["connect", "198.51.100.1", 80, False]]


def test_the_offline_switches_stop_hugging_face_before_the_guard_has_to(tmp_path):
    download = (
        f"import huggingface_hub; huggingface_hub.hf_hub_download('gpt2', 'config.json', cache_dir={str(tmp_path)!r})"
    )
    offline = guarded(tmp_path, "--python", download)
    assert offline["attempts"] == [] and "LocalEntryNotFoundError" in offline["error"]
    # A user who turns the switch off still gets no connection: the guard refuses it, once, without retries.
    opted_in = guarded(tmp_path, "--python", download, env={"HF_HUB_OFFLINE": "0"})
    assert opted_in["error"].startswith("NetworkBlocked: Mailvoice works offline")
    assert opted_in["attempts"] == [["create_connection", "huggingface.co", 443, False]]


def test_the_entry_points_import_no_ml_library_before_main_can_install_the_guard():
    # The offline switches are read when a library is imported, so main() must run first: keep these lazy.
    code = (
        "import sys, assistant.cli, assistant.gui.app; "
        "print([m for m in ('huggingface_hub', 'transformers', 'llama_cpp', 'torch', 'peft', 'datasets') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_with_mailvoice_netlog_every_attempt_is_appended_to_the_file_for_other_processes_to_read(
    guard, monkeypatch, tmp_path
):
    log = tmp_path / "net.jsonl"
    monkeypatch.setenv(netguard.NETLOG_ENV, str(log))
    monkeypatch.setitem(netguard._REAL, "connect", CountingReal())
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with tcp, pytest.raises(NetworkBlocked):
        tcp.connect(TEST_NET)
    assert netguard.read_log(log).refused == [Attempt("connect", "198.51.100.1", 80, False)]
    assert netguard.read_log(tmp_path / "absent.jsonl").attempts == []


def test_the_netlog_is_written_by_other_processes_too(tmp_path):
    log = tmp_path / "net.jsonl"
    probe = (
        "import socket\n"
        "from assistant import netguard\n"
        "netguard.install()\n"
        "try:\n"
        "    socket.create_connection(('198.51.100.1', 80), timeout=1)\n"
        "except netguard.NetworkBlocked:\n"
        "    pass\n"
    )
    env = dict(os.environ, **{netguard.NETLOG_ENV: str(log)})
    subprocess.run([sys.executable, "-c", probe], env=env, check=True, timeout=60)
    assert netguard.read_log(log).refused == [Attempt("create_connection", "198.51.100.1", 80, False)]


def test_refused_count_counts_every_refusal_in_any_thread_and_nothing_allowed(guard, monkeypatch):
    for name in ("connect", "getaddrinfo"):
        monkeypatch.setitem(netguard._REAL, name, lambda *args: [])  # loopback lookups answer; others never reach it
    before = netguard.refused_count()

    def refuse_and_allow(times: int) -> None:
        for _ in range(times):
            with pytest.raises(NetworkBlocked):
                socket.getaddrinfo("example.com", 443)
            socket.getaddrinfo("localhost", 8080)  # allowed: not counted

    threads = [threading.Thread(target=refuse_and_allow, args=(250,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with tcp, pytest.raises(NetworkBlocked):
        tcp.connect(TEST_NET)
    assert netguard.refused_count() - before == 8 * 250 + 1
