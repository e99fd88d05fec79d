"""ccxt.pro's okx and python-okx's WsPrivateAsync, unchanged apart from their URLs, against
the simulator's private WebSocket."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from posguard.sim import SimExchange, SimServer
from tests.sim.conftest import MAIN, control, shipped

ccxt_pro = pytest.importorskip("ccxt.pro")
okx_ws_private = pytest.importorskip("okx.websocket.WsPrivateAsync")


def incident() -> SimExchange:
    return SimExchange(shipped("incident-2025-12-20"))


def test_ccxt_pro_watches_positions_and_sees_a_close() -> None:
    async def run(server: SimServer) -> tuple[dict[str, Any], list[tuple[str, Any]]]:
        exchange = ccxt_pro.okx(
            {
                "apiKey": MAIN["api_key"],
                "secret": MAIN["secret_key"],
                "password": MAIN["passphrase"],
            }
        )
        exchange.set_sandbox_mode(True)  # its private URL gains "?brokerId=9999"
        exchange.urls["api"] = {"rest": server.base_url, "ws": f"{server.ws_url}/ws/v5"}
        try:
            # ccxt updates its position objects in place: read them before the next watch.
            opened = {p["symbol"]: p["contracts"] for p in await exchange.watch_positions()}
            # Watching before the close: if ccxt hands a push only to a watch already waiting,
            # a close pushed before the next watch (its only push: regular snapshots are a
            # minute apart) leaves that watch waiting. The likely cause of a 300 s timeout in
            # one clean-clone run on a loaded machine; not reproduced in isolation.
            watching = asyncio.ensure_future(exchange.watch_positions())
            await asyncio.sleep(0.5)
            await asyncio.to_thread(
                control,
                server,
                "step",
                {"account": "main", "action": "close", "instId": "XRP-USDT-SWAP"},
            )
            closed: list[tuple[str, Any]] = []
            for _ in range(5):
                closed = [(p["symbol"], p["contracts"]) for p in await watching]
                if ("XRP/USDT:USDT", 0) in closed:
                    break
                watching = asyncio.ensure_future(exchange.watch_positions())
        finally:
            await exchange.close()
        return opened, closed

    exchange = incident()
    exchange.ws_regular_push_seconds = 60  # the pushes after the close: its event alone
    with SimServer(exchange) as server:
        opened, closed = asyncio.run(run(server))
    assert opened == {
        "XRP/USDT:USDT": 108,
        "ETH/USDT:USDT": 12,
        "DOGE/USDT:USDT": 30,
        "SUSHI/USDT:USDT": 400,
        "BTC/USDT:USDT": 5,
    }
    # ccxt turns a pos "0" record into flat entries for both sides.
    assert set(closed) == {("XRP/USDT:USDT", 0)}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (python-okx's client speaks wss only)."""
    folder = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "posguard simulator")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "sim.pem", folder / "sim.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


@pytest.fixture
def tls_server(
    certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[SimServer]:
    cert_file, key_file = certificate
    # ssl.create_default_context(), which python-okx calls, trusts the file named here.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    server = SimServer(incident(), ssl_certfile=str(cert_file), ssl_keyfile=str(key_file))
    with server:
        yield server


async def python_okx_session(
    server: SimServer, secret: str, until: Any, *, subscribe: bool
) -> list[Any]:
    """python-okx's client until `until(messages)` holds; the messages its callback got."""
    received: list[Any] = []

    def callback(message: str) -> None:
        received.append(json.loads(message) if message.startswith("{") else message)

    url = f"{server.ws_url}/ws/v5/private"
    client = okx_ws_private.WsPrivateAsync(MAIN["api_key"], MAIN["passphrase"], secret, url)
    consuming = await client.start()
    try:
        if subscribe:  # logs in, sleeps 5 s without reading the answer, subscribes
            await client.subscribe([{"channel": "positions", "instType": "ANY"}], callback)
        else:
            client.callback = callback
            await client.login()
        deadline = time.monotonic() + 5
        while not until(received) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        await client.stop()
        consuming.cancel()
        await asyncio.gather(consuming, return_exceptions=True)
    return received


def test_python_okx_logs_in_subscribes_and_gets_positions(tls_server: SimServer) -> None:
    assert tls_server.ws_url.startswith("wss://")

    def pushed(messages: list[Any]) -> bool:
        return any(isinstance(m, dict) and "data" in m for m in messages)

    received = asyncio.run(
        python_okx_session(tls_server, MAIN["secret_key"], pushed, subscribe=True)
    )
    events = [m.get("event") for m in received if isinstance(m, dict)]
    assert events[:3] == ["login", "subscribe", "channel-conn-count"]
    assert received[0]["code"] == "0"
    push = next(m for m in received if isinstance(m, dict) and "data" in m)
    assert push["arg"]["channel"] == "positions"
    assert {r["instId"]: r["pos"] for r in push["data"]} == {
        "XRP-USDT-SWAP": "108",
        "ETH-USDT-SWAP": "12",
        "DOGE-USDT-SWAP": "30",
        "SUSHI-USDT-SWAP": "400",
        "BTC-USDT-SWAP": "5",
    }


def test_python_okx_wrong_secret_gets_60007(tls_server: SimServer) -> None:
    def refused(messages: list[Any]) -> bool:
        return any(isinstance(m, dict) and m.get("event") == "error" for m in messages)

    received = asyncio.run(
        python_okx_session(tls_server, "sim-wrong-secret", refused, subscribe=False)
    )
    error = next(m for m in received if m.get("event") == "error")
    assert (error["code"], error["msg"]) == ("60007", "Invalid sign")
