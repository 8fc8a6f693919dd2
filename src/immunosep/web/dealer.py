"""Server processes that get their connections dealt in turn (``immunosep serve --workers N``).

With one listening socket shared by N processes (uvicorn's ``--workers``), whichever process wakes first
accepts every connection waiting, so a burst of keep-alive connections lands unevenly: in ``bench_web.py``
(50 clients, 2 processes) one process often held two thirds of the clients, and its event loop, not the
machine, set the limit (PostgreSQL at 500 req/s, four runs each way back to back: p99 0.22-3.5 s and
402-499 req/s achieved on the shared socket, 0.08-0.99 s and 474-503 req/s dealt). ``SO_REUSEPORT``
spreads connections by a hash of their addresses, which for 50 clients of one host gave 35:65 as often
as not.

Here the parent process accepts, and deals each new connection to the next live worker in turn over a
Unix socket (``SCM_RIGHTS``), as Node.js's cluster module does by default; each worker serves the
connections it is given with uvicorn's own protocol, as if it had accepted them. A connection is dealt
once and then belongs to its worker: the parent is on no request's path. The parent restarts a worker
that dies after it served (its connections die with it), stops with status 1 when one dies before (it
would fail again at every restart), and on SIGINT or SIGTERM stops accepting, lets the workers end
their requests (uvicorn's graceful shutdown) and waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

log = logging.getLogger("uvicorn.error")
#: The application factory each worker serves (it reads the database URL and settings from the environment).
APP = "immunosep.web.app:app_from_environment"
#: Longest wait (s) for a worker to end its requests after SIGTERM before it is killed.
STOP_TIMEOUT_S = 30.0
#: Whether this platform can pass a connection to another process (``socket.send_fds``: not on Windows).
AVAILABLE = hasattr(socket, "send_fds")
#: What a worker sends its parent once its application is up.
READY = b"r"
#: Connections one message may carry (a worker takes what is waiting in one go).
_FDS_PER_MESSAGE = 32


class DealtServer(uvicorn.Server):
    """A uvicorn server that listens on nothing and serves the connections the parent sends down ``channel``."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self._channel = channel

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the app's lifespan; no listening socket of its own
        if not self.started:
            return
        loop = asyncio.get_running_loop()
        config = self.config

        def protocol() -> asyncio.Protocol:  # what uvicorn's own listener makes for each connection
            return config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=self.server_state, app_state=self.lifespan.state
            )

        self._channel.setblocking(False)
        loop.add_reader(self._channel.fileno(), self._take, loop, protocol)
        self._channel.send(READY)  # the app is up: the parent restarts this worker if it dies from now on

    def _take(self, loop: asyncio.AbstractEventLoop, protocol: Callable[[], asyncio.Protocol]) -> None:
        """Serve the connections waiting on the channel; the parent gone (end of file), stop."""
        while True:
            try:
                data, fds, _flags, _addr = socket.recv_fds(self._channel, _FDS_PER_MESSAGE, _FDS_PER_MESSAGE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data, fds = b"", []
            for fd in fds:
                conn = socket.socket(fileno=fd)
                conn.setblocking(False)
                loop.create_task(_serve_connection(loop, protocol, conn))
            if not data:
                loop.remove_reader(self._channel.fileno())
                self.should_exit = True
                return

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        with contextlib.suppress(Exception):  # stop taking connections, then uvicorn's graceful end
            asyncio.get_running_loop().remove_reader(self._channel.fileno())
        await super().shutdown(sockets=sockets)


async def _serve_connection(
    loop: asyncio.AbstractEventLoop, protocol: Callable[[], asyncio.Protocol], conn: socket.socket
) -> None:
    try:
        await loop.connect_accepted_socket(protocol, conn)
    except OSError:  # the client left before its connection was dealt
        conn.close()


def _worker_main(options: dict[str, Any], channel: socket.socket) -> None:
    """A worker process: the app from the environment (``web.app.app_from_environment``), served by uvicorn."""
    config = uvicorn.Config(APP, factory=True, **options)
    DealtServer(config, channel).run()


class Dealer:
    """Deals each connection accepted on ``listener`` to the next of ``workers`` (sockets to the workers).

    A worker whose socket refuses a connection is skipped (it is gone, and the supervisor replaces it, or
    its queue is full); the connection goes to the next one, and is closed only when no worker takes it.
    """

    def __init__(self, listener: socket.socket, workers: list[socket.socket | None]) -> None:
        self.listener = listener
        self.workers = workers  # the supervisor replaces entries as it restarts workers
        self.dealt = [0] * len(workers)
        self._next = 0
        self._lock = threading.Lock()

    def deal(self, conn: socket.socket) -> int | None:
        """Send ``conn`` to the next worker that takes it; its index, or None when none did."""
        with self._lock:
            n = len(self.workers)
            for step in range(n):
                i = (self._next + step) % n
                channel = self.workers[i]
                if channel is None:
                    continue
                try:
                    socket.send_fds(channel, [b"c"], [conn.fileno()])
                except OSError:
                    continue
                self._next = (i + 1) % n
                self.dealt[i] += 1
                return i
            return None

    def run(self) -> None:
        """Accept and deal until the listener is closed."""
        while True:
            try:
                conn, _addr = self.listener.accept()
            except OSError:
                return  # closed: the server is stopping
            try:
                with contextlib.suppress(OSError):
                    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if self.deal(conn) is None:
                    log.error("no worker process took a connection; it was closed")
            finally:
                conn.close()  # the worker holds its own copy


def _said_ready(channel: socket.socket | None) -> bool:
    """True once the worker at the other end of ``channel`` said it serves (:meth:`DealtServer.startup`)."""
    if channel is None:
        return False
    try:
        return channel.recv(1, socket.MSG_DONTWAIT) == READY
    except OSError:  # nothing yet (BlockingIOError), or the worker is gone
        return False


def listen(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (IPv6 when the host is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def serve(options: dict[str, Any], host: str, port: int, workers: int) -> int:
    """Run ``workers`` server processes on ``host``:``port`` with their connections dealt in turn, until
    SIGINT or SIGTERM; the exit status (1 when a worker failed to start: it would fail again at every
    restart). ``options`` are uvicorn's (``uvicorn.Config``) for every worker."""
    uvicorn.Config(APP, factory=True, **options)  # the parent's logging, as uvicorn.run sets it up
    listener = listen(host, port)
    status = 0
    spawn = multiprocessing.get_context("spawn")
    processes: list[Any] = [None] * workers
    ready = [False] * workers  # a worker that ends before it served failed to start: it would again
    dealer = Dealer(listener, [None] * workers)
    stop = threading.Event()

    def start(i: int) -> None:
        parent_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        process = spawn.Process(target=_worker_main, args=(options, child_end), daemon=False)
        process.start()
        child_end.close()
        parent_end.setblocking(False)  # a worker whose queue is full is skipped, not waited for
        processes[i], ready[i] = process, False
        old, dealer.workers[i] = dealer.workers[i], parent_end
        if old is not None:
            old.close()

    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for i in range(workers):
            start(i)
        log.info(
            "serving on http://%s:%d with %d worker processes (connections dealt in turn)",
            f"[{host}]" if ":" in host else host,
            port,
            workers,
        )
        threading.Thread(target=dealer.run, name="dealer", daemon=True).start()
        while not stop.wait(0.5):
            for i, process in enumerate(processes):
                ready[i] = ready[i] or _said_ready(dealer.workers[i])
                if process.is_alive():
                    continue
                if not ready[i] or process.exitcode == STARTUP_FAILURE:
                    log.error(
                        "worker process %s failed to start (exit %s); stopping", process.pid, process.exitcode
                    )
                    status = 1
                    stop.set()
                    break
                log.warning(
                    "worker process %s ended (exit %s); starting another", process.pid, process.exitcode
                )
                start(i)
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the dealer's accept (a close alone may not)
        listener.close()
        for process in processes:
            if process is not None and process.is_alive():
                process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in processes:
            if process is not None:
                process.join(max(0.0, deadline - time.monotonic()))
                if process.is_alive():
                    process.kill()
                    process.join()
        for channel in dealer.workers:
            if channel is not None:
                channel.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
