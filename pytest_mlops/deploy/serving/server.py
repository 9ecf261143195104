"""Running the server: listening, the SIGTERM drain, and a server in a thread for tests.

On SIGTERM (a Kubernetes rolling update, ``docker stop``), readiness answers 503 at once and every
response closes its connection, so load balancers move away; connections are still accepted for
``drain_seconds`` (the time endpoints take to stop routing here); then the listener closes (new
connections are refused), idle connections are closed, and requests in flight, queued ones
included, get up to ``shutdown_timeout`` to be answered. The process then exits with status 0.
SIGINT does the same without the drain period; a second signal cuts the waiting short.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .app import App
from .http import Listener
from .options import ServingOptions

__all__ = ["Server", "run_server", "serve_in_thread", "start_server"]


class Server:
    """A listening server: the app, its connections, and how it stops."""

    def __init__(self, app: App, listener: Listener, server: asyncio.Server) -> None:
        self.app = app
        self.listener = listener
        self.server = server
        self.hurry = asyncio.Event()  # a second signal: stop waiting
        self.closing = False  # the listener is closed

    @property
    def url(self) -> str:
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def shutdown(self, drain: float, timeout: float) -> None:
        """Fail readiness, keep accepting for *drain* s, then answer what is in flight and close.

        Answering what is in flight takes at most *timeout* s.
        """
        self.app.draining = self.listener.draining = True
        await self._wait(lambda: False, drain)
        self.server.close()  # from here on, connecting is refused
        self.closing = True
        self.listener.close_idle()
        await self._wait(lambda: self.listener.quiet, timeout)
        for connection in list(self.listener.connections):
            if connection.idle or connection.lingering:  # its answer is out
                connection.close()
            else:
                connection.abort()
        await self._wait(lambda: not self.listener.connections, 1.0)
        self.listener.stop()
        self.app.close()

    async def _wait(self, done: Callable[[], bool], seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not done() and not self.hurry.is_set():
            left = deadline - loop.time()
            if left <= 0:
                return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.hurry.wait(), min(0.02, left))
            if self.closing:  # a connection whose request was answered is not kept open
                self.listener.close_idle()


async def start_server(options: ServingOptions) -> Server:
    """Load the model and listen; the caller runs the loop and calls :meth:`Server.shutdown`."""
    app = App(options)
    app.start()
    listener = Listener(app, options)
    listener.start()
    gauge = app.metrics.gauge
    gauge("mlops_open_connections", "Open client connections.", lambda: listener.serving)
    gauge(
        "mlops_in_flight_requests", "Inference requests queued or running.", lambda: app.in_flight
    )
    loop = asyncio.get_running_loop()
    server = await loop.create_server(listener, options.host, options.port, backlog=1024)
    return Server(app, listener, server)


async def _serve(options: ServingOptions, announce: Callable[[str], None]) -> None:
    server = await start_server(options)
    loop = asyncio.get_running_loop()
    stop: asyncio.Future[float] = loop.create_future()

    def on_signal(drain: float) -> None:
        if stop.done():
            server.hurry.set()
        else:
            stop.set_result(drain)

    for sig, drain in ((signal.SIGTERM, options.drain_seconds), (signal.SIGINT, 0.0)):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(sig, on_signal, drain)
    announce(f"serving {options.name!r} version {options.version} on {server.url}")
    drain = await stop
    announce(f"draining: readiness fails; new connections refused in {drain:g} s")
    await server.shutdown(drain, options.shutdown_timeout)
    announce("stopped")


def run_server(options: ServingOptions, announce: Callable[[str], None] | None = None) -> None:
    """Serve until SIGTERM/SIGINT (blocking), then drain and return."""
    asyncio.run(_serve(options, announce or (lambda line: print(line, flush=True))))


@contextlib.contextmanager
def serve_in_thread(options: ServingOptions) -> Iterator[tuple[str, App]]:
    """Run the server on its own event loop in a daemon thread; yield ``(base_url, app)``.

    For tests and benchmarks in one process; production runs :func:`run_server` in its own
    process. On exit the server shuts down without a drain period.
    """
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict[str, Any] = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            state["server"] = loop.run_until_complete(start_server(options))
        except BaseException as exc:
            state["error"] = exc
            return
        finally:
            started.set()
        loop.run_forever()
        loop.run_until_complete(state["server"].shutdown(0.0, 2.0))
        loop.close()

    thread = threading.Thread(target=run, name="mlops-serving", daemon=True)
    thread.start()
    started.wait(60)
    if "error" in state:
        raise state["error"]
    try:
        yield state["server"].url, state["server"].app
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
