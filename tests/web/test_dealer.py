"""``web.dealer``: connections dealt in turn to the server processes of ``immunosep serve --workers N``."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fixtures.served import free_port, serving
from immunosep.web.dealer import READY, Dealer, DealtServer, listen


def _received(channel: socket.socket) -> int:
    """Connections waiting on a worker's end of its channel (each closed after counting)."""
    channel.setblocking(False)
    count = 0
    while True:
        try:
            _data, fds, _flags, _addr = socket.recv_fds(channel, 32, 32)
        except BlockingIOError:
            return count
        for fd in fds:
            os.close(fd)
        count += len(fds)


def test_the_dealer_deals_in_turn_and_skips_a_worker_that_is_gone() -> None:
    pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(3)]
    dealer = Dealer(socket.socket(), [parent for parent, _ in pairs])
    conns = [socket.socket() for _ in range(9)]
    try:
        assert [dealer.deal(c) for c in conns] == [0, 1, 2] * 3
        assert [_received(child) for _, child in pairs] == [3, 3, 3]
        pairs[1][1].close()  # worker 1 died: its channel refuses, the next worker gets the connection
        assert [dealer.deal(c) for c in conns[:4]] == [0, 2, 0, 2]
        assert dealer.dealt == [5, 3, 5]
        for parent, _ in pairs:
            parent.setblocking(False)  # as serve sets them: a full queue refuses at once
        pairs[0][0].setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1024)
        taken = [dealer.deal(c) for c in conns * 20]
        assert 2 in taken and None not in taken  # worker 0's queue filled: the rest went to worker 2
        assert taken.count(0) < taken.count(2)
        _received(pairs[2][1])
        _received(pairs[0][1])
        dealer.workers[0] = None  # being restarted
        pairs[2][1].close()
        assert dealer.deal(conns[0]) is None  # nobody took it: the caller closes it
        assert sum(dealer.dealt) == 13 + len(taken)
    finally:
        for c in conns:
            c.close()
        for parent, child in pairs:
            parent.close()
            child.close()


def test_the_dealer_stops_when_its_listener_is_shut() -> None:
    listener = listen("127.0.0.1", 0)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    dealer = Dealer(listener, [a])
    import threading

    thread = threading.Thread(target=dealer.run, daemon=True)
    thread.start()
    with socket.create_connection(listener.getsockname()):
        deadline = time.monotonic() + 10
        while dealer.dealt == [0] and time.monotonic() < deadline:
            time.sleep(0.01)
    assert dealer.dealt == [1] and _received(b) == 1
    listener.shutdown(socket.SHUT_RDWR)
    listener.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    a.close()
    b.close()


async def _hello(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    """A minimal ASGI app with a lifespan: 200 "dealt" to every request."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]})
    await send({"type": "http.response.body", "body": b"dealt"})


def test_a_dealt_server_serves_what_comes_down_its_channel_and_stops_when_the_parent_goes() -> None:
    import threading

    import uvicorn

    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    server = DealtServer(uvicorn.Config(_hello, lifespan="on", log_level="warning"), child)
    thread = threading.Thread(target=server.run, daemon=True)  # uvicorn leaves signals alone off main
    thread.start()
    parent.settimeout(30)
    assert parent.recv(1) == READY  # said once its app was up
    listener = listen("127.0.0.1", 0)
    clients = [socket.create_connection(listener.getsockname(), timeout=30) for _ in range(3)]
    accepted = [listener.accept()[0] for _ in clients]
    socket.send_fds(parent, [b"c"], [c.fileno() for c in accepted])  # several in one message
    for c in accepted:
        c.close()  # the server holds its own copies
    for c in clients:
        c.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
        answer = b""
        while not answer.endswith(b"dealt"):
            chunk = c.recv(4096)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200")
        c.close()
    parent.close()  # the parent is gone: end of file on the channel
    thread.join(timeout=30)
    assert not thread.is_alive() and server.should_exit
    listener.close()
    child.close()


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _connections_held(pid: int, port: int) -> int:
    """Established TCP connections on local ``port`` whose socket process ``pid`` holds open."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    held = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == "01" and fields[9] in inodes:
                held += 1
    return held


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the connections from Linux's /proc")
def test_serve_deals_keep_alive_connections_evenly_and_replaces_a_dead_worker(
    _templates,  # noqa: PT019 (its value is used: the underscore marks a fixture private to the test package)
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "trial.db"
    shutil.copyfile(_templates.sqlite(), db)
    clients: list[httpx.Client] = []
    with serving(db, 2) as (proc, base):
        port = int(base.rsplit(":", 1)[1])
        try:
            workers = _children(proc.pid)
            # 10 clients open their keep-alive connections at once, as bench_web's clients do at login
            clients = [httpx.Client(base_url=base, trust_env=False, timeout=5) for _ in range(10)]
            for c in clients:
                assert c.get("/openapi.json").status_code == 200
            held = sorted(_connections_held(w, port) for w in workers)
            assert held[-2:] == [5, 5], held  # the two workers (the spawn tracker, if any, holds none)
            busiest = max(workers, key=lambda w: _connections_held(w, port))
            os.kill(busiest, signal.SIGKILL)
            for c in clients:
                c.close()
            deadline = time.monotonic() + 60
            while True:  # a replacement starts; every new connection is answered meanwhile or after
                replaced = [w for w in _children(proc.pid) if w not in workers]
                if replaced:
                    break
                assert time.monotonic() < deadline, "the dead worker was not replaced"
                time.sleep(0.2)
            deadline = time.monotonic() + 60
            answered = 0
            while answered < 6:
                assert time.monotonic() < deadline, "the server stopped answering after a worker died"
                try:
                    with httpx.Client(base_url=base, trust_env=False, timeout=5) as fresh:
                        answered += fresh.get("/openapi.json").status_code == 200
                except httpx.TransportError:
                    time.sleep(0.2)  # dealt to the dead worker before the parent saw it die: try again
        finally:
            for c in clients:
                c.close()
    assert proc.returncode == 0


def test_serve_stops_with_status_1_when_its_workers_cannot_start(tmp_path: Path) -> None:
    """A worker that ends before it served would fail again at every restart: the server stops instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMMUNOSEP_SERVE_")}  # no database given
    env["IMMUNOSEP_SECRET_KEY"] = "k" * 40
    code = (
        "import sys; from immunosep.web import dealer; "
        f"sys.exit(dealer.serve({{'log_level': 'warning'}}, '127.0.0.1', {free_port()}, 2))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1, done.stderr[-2000:]
    assert "failed to start" in done.stderr


def test_serve_in_this_process_answers_and_ends_with_status_0_on_sigterm(
    _templates,  # noqa: PT019 (its value is used: the underscore marks a fixture private to the test package)
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # type: ignore[no-untyped-def]
    import threading

    from immunosep.web.app import SECRET_KEY_ENV, SERVE_ENV
    from immunosep.web.dealer import serve

    db = tmp_path / "trial.db"
    shutil.copyfile(_templates.sqlite(), db)
    for name, value in {"db": f"sqlite:///{db}", "secure": "0", "meddra": "", "threads": "2"}.items():
        monkeypatch.setenv(SERVE_ENV[name], value)  # what `serve` sets for its workers
    monkeypatch.setenv(SECRET_KEY_ENV, "k" * 40)
    port = free_port()
    answers: list[int] = []

    def client() -> None:  # once answered twice, stop the server as `kill` would
        deadline = time.monotonic() + 60
        while len(answers) < 2 and time.monotonic() < deadline:
            try:
                answers.append(
                    httpx.get(f"http://127.0.0.1:{port}/openapi.json", trust_env=False).status_code
                )
            except httpx.TransportError:
                time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    assert serve({"log_level": "warning"}, "127.0.0.1", port, 2) == 0
    thread.join(timeout=10)
    assert answers == [200, 200]
    assert signal.getsignal(signal.SIGTERM) == before  # its handlers are put back
    with pytest.raises(httpx.TransportError):  # nothing listens any more
        httpx.get(f"http://127.0.0.1:{port}/openapi.json", trust_env=False, timeout=2)
