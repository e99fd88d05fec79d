"""Serving the simulator with uvicorn: in the foreground (the CLI) or in a thread (tests),
over TLS when given a certificate (python-okx's WebSocket client only speaks wss)."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from posguard.sim.app import create_app
from posguard.sim.exchange import SimExchange


class SimServer:
    """The simulator on 127.0.0.1 in a background thread; port 0 picks a free port."""

    def __init__(
        self,
        exchange: SimExchange,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
    ) -> None:
        self.exchange = exchange
        self.tls = ssl_certfile is not None
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, port))
        self.host = host
        self.port = int(self._socket.getsockname()[1])
        config = _config(exchange, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """The WebSocket root; clients append /ws/v5/private (or /ws/v5/public)."""
        return f"{'wss' if self.tls else 'ws'}://{self.host}:{self.port}"

    def start(self) -> SimServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the simulator did not start on {self.base_url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _config(exchange: SimExchange, **options: Any) -> uvicorn.Config:
    """One configuration for the simulator served in a thread and in the foreground, the
    WebSocket implementation named (pushes.Connection.abort cuts its transport)."""
    return uvicorn.Config(
        create_app(exchange),
        log_level="warning",
        access_log=False,
        lifespan="off",
        ws="websockets-sansio",
        **options,
    )


def serve_forever(exchange: SimExchange, port: int, host: str = "127.0.0.1") -> None:
    uvicorn.Server(_config(exchange, host=host, port=port)).run()
