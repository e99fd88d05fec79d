"""The simulator's ASGI app: OKX v5 REST on OKX's paths, the private WebSocket
(/ws/v5/private, stream.py), plus a control API under /__sim__/ (GET ws lists the open
private streams, POST ws/drop cuts them).

Private endpoints check what OKX checks: missing headers (50103/50104/50106/50107),
timestamp format (50112) and window (50102: 30 s around the simulated clock or this
machine's), key (50111), passphrase (50105), environment (50101: `x-simulated-trading`
must match the account's demo flag) and signature (50113). Limits per account or client
address follow posguard.okx.endpoints (50011 with HTTP 429 past them).
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from posguard.instants import parse_instant
from posguard.okx import endpoints as ep
from posguard.okx.signing import verify
from posguard.sim import endpoints, funding
from posguard.sim.book import Account, SimRefusal
from posguard.sim.exchange import SimExchange
from posguard.sim.limits import SlidingWindow
from posguard.sim.scenario import ScenarioError, Step, validate_scenario
from posguard.sim.stream import StreamHub

CONTROL_PREFIX = "/__sim__"
TIMESTAMP_WINDOW_MS = 30_000
GATEWAY_404 = {
    "code": 404,
    "data": {},
    "detailMsg": "",
    "error_code": "404",
    "error_message": "Not Found",
    "msg": "Not Found",
}

# Code "0" answers without the `data` array (the no_data fault): OKX documents an array for
# every endpoint, so each of these is a malformed answer, never "no records".
NO_DATA: dict[str, dict[str, Any]] = {
    "absent": {"code": "0", "msg": ""},
    "null": {"code": "0", "msg": "", "data": None},
    "object": {"code": "0", "msg": "", "data": {}},
    "string": {"code": "0", "msg": "", "data": ""},
}


def _error(code: str, msg: str, status: int = 200) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg, "data": []}, status_code=status)


def _parse_timestamp(text: str) -> int | None:
    if len(text) != 24 or not text.endswith("Z") or text[19] != ".":
        return None
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return None


def authenticate(exchange: SimExchange, request: Request, body: bytes) -> Account:
    headers = request.headers
    key = headers.get("OK-ACCESS-KEY", "")
    passphrase = headers.get("OK-ACCESS-PASSPHRASE", "")
    signature = headers.get("OK-ACCESS-SIGN", "")
    stamp = headers.get("OK-ACCESS-TIMESTAMP", "")
    for value, code, name in (
        (key, "50103", "OK-ACCESS-KEY"),
        (passphrase, "50104", "OK-ACCESS-PASSPHRASE"),
        (signature, "50106", "OK-ACCESS-SIGN"),
        (stamp, "50107", "OK-ACCESS-TIMESTAMP"),
    ):
        if not value:
            raise SimRefusal(code, f'Request header "{name}" cannot be empty.', 401)
    stamp_ms = _parse_timestamp(stamp)
    if stamp_ms is None:
        raise SimRefusal("50112", "Invalid OK-ACCESS-TIMESTAMP", 401)
    if not exchange.stamp_is_current(stamp_ms, TIMESTAMP_WINDOW_MS):
        raise SimRefusal("50102", "Timestamp request expired", 401)
    account = exchange.by_key.get(key)
    if account is None:
        raise SimRefusal("50111", "Invalid OK-ACCESS-KEY", 401)
    if passphrase != account.passphrase:
        raise SimRefusal("50105", 'Request header "OK-ACCESS-PASSPHRASE" incorrect.', 401)
    simulated = headers.get("x-simulated-trading", "0") == "1"
    if simulated != account.demo:
        raise SimRefusal("50101", "APIKey does not match current environment.", 401)
    path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    request_path = path + (f"?{query}" if query else "")
    if not verify(
        account.secret_key,
        signature,
        stamp,
        request.method,
        request_path,
        body.decode("utf-8", errors="replace"),
    ):
        raise SimRefusal("50113", "Invalid Sign", 401)
    return account


def create_app(exchange: SimExchange) -> Starlette:
    limits = SlidingWindow()

    async def okx(request: Request) -> Response:
        endpoint = ep.BY_PATH.get(request.url.path) or funding.ENDPOINTS.get(request.url.path)
        if endpoint is None or endpoint.method != request.method:
            return JSONResponse(GATEWAY_404, status_code=404)
        body = await request.body()
        params = {k: v for k, v in request.query_params.items()}
        try:
            account = authenticate(exchange, request, body) if endpoint.private else None
        except SimRefusal as refusal:
            return _error(refusal.code, refusal.msg, refusal.http_status)
        client = request.client.host if request.client else "local"
        scope_id = account.name if (account and endpoint.scope == "uid") else client
        if exchange.enforce_rate_limits and not limits.allow(
            endpoint.limit_key(scope_id, params), endpoint.limit, endpoint.window_seconds
        ):
            return _error("50011", "Too Many Requests", 429)
        payload: Any = None
        if body:
            try:
                payload = json.loads(body)
            except (ValueError, RecursionError):  # not JSON, not UTF-8, too long, too deep
                return _error("50002", "JSON syntax error", 400)
        inst_ids = {i for i in params.get("instId", "").split(",") if i}
        if isinstance(payload, dict) and payload.get("instId"):
            inst_ids.add(str(payload["instId"]))
        faults = exchange.faults_for(endpoint, account.name if account else None, inst_ids)
        for armed in faults:
            fault = armed.fault
            if fault.kind == "http_error":
                exchange.consume(armed)
                code = fault.code or ""
                return JSONResponse(
                    {"code": code, "msg": fault.msg, "data": []}, status_code=fault.http
                )
            if fault.kind == "rate_limit":
                exchange.consume(armed)
                return _error("50011", "Too Many Requests", 429)
            if fault.kind == "malformed":
                exchange.consume(armed)
                return Response(
                    b'{"code":"0","msg":"","data":[{"instId":"',
                    status_code=200,
                    media_type="application/json",
                )
            if fault.kind == "no_data":
                exchange.consume(armed)
                return JSONResponse(NO_DATA[fault.data])
            if fault.kind == "timeout":
                exchange.consume(armed)
                await asyncio.sleep(fault.seconds)
                return JSONResponse({"code": 504, "msg": "Gateway Timeout"}, status_code=504)
        try:
            data = handle(exchange, endpoint, account, params, payload, faults)
        except SimRefusal as refusal:
            if endpoint.method == "POST" and refusal.http_status == 200:
                item = {
                    "sCode": refusal.code,
                    "sMsg": refusal.msg,
                    "instId": (payload or {}).get("instId", ""),
                }
                return JSONResponse({"code": "1", "msg": "", "data": [item]})
            return _error(refusal.code, refusal.msg, refusal.http_status)
        return JSONResponse({"code": "0", "msg": "", "data": data})

    hub = StreamHub(exchange)
    served = [*ep.ALL_ENDPOINTS, *funding.ENDPOINTS.values()]
    routes: list[BaseRoute] = [Route(e.path, okx, methods=["GET", "POST"]) for e in served]
    routes += hub.routes()
    routes += control_routes(exchange, hub)
    routes.append(Route("/{rest:path}", okx, methods=["GET", "POST", "PUT", "DELETE"]))
    return Starlette(routes=routes)


def handle(
    exchange: SimExchange,
    endpoint: ep.Endpoint,
    account: Account | None,
    params: dict[str, str],
    payload: Any,
    faults: list[Any],
) -> list[Any]:
    with exchange.lock:
        if endpoint is ep.PUBLIC_TIME:
            # The exchange's clock: simulated time, the time of every record it serves.
            return [{"ts": str(exchange.now_ms())}]
        if endpoint is ep.INSTRUMENTS:
            return endpoints.instruments(exchange, params)
        if endpoint is ep.POSITION_TIERS:
            return endpoints.tiers(exchange, params)
        if endpoint in (ep.CANDLES, ep.HISTORY_CANDLES):
            return endpoints.candles(exchange, params, history=endpoint is ep.HISTORY_CANDLES)
        assert account is not None  # private endpoints were authenticated
        if endpoint is ep.ACCOUNT_CONFIG:
            return endpoints.config(exchange, account)
        if endpoint is ep.POSITIONS:
            return endpoints.positions(exchange, account, params, faults)
        if endpoint is ep.POSITIONS_HISTORY:
            return endpoints.history(exchange, account, params)
        if endpoint is ep.LEVERAGE_INFO:
            return endpoints.leverage(exchange, account, params)
        if endpoint is ep.SET_LEVERAGE:
            return endpoints.set_leverage(exchange, account, payload)
        if endpoint in (ep.FILLS, ep.FILLS_HISTORY):
            return endpoints.fills(exchange, account, params, history=endpoint is ep.FILLS_HISTORY)
        if endpoint is funding.CURRENCIES:
            return funding.currencies_data(exchange.instruments, params)
    raise SimRefusal("50000", "Endpoint not simulated", 404)


def control_routes(exchange: SimExchange, hub: StreamHub) -> list[Route]:
    """Test and demo controls; OKX clients never call these paths."""

    async def state(_: Request) -> Response:
        return JSONResponse(exchange.state())

    async def load(request: Request) -> Response:
        try:
            document = json.loads(await request.body())
            scenario = validate_scenario(document, "posted scenario", set(exchange.instruments))
        except json.JSONDecodeError as exc:
            return JSONResponse({"error": f"posted scenario: not valid JSON: {exc}"}, 400)
        except ScenarioError as exc:
            return JSONResponse({"error": str(exc)}, 400)
        exchange.load(scenario)
        return JSONResponse(exchange.state())

    async def advance(request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        try:
            to_ms = None
            if body.get("to"):
                to_ms = parse_instant(str(body["to"]), exchange.start_ms)
            if body.get("to_next_step"):
                to_ms = exchange.next_step_ms() or exchange.sim_now_ms
            if body.get("to_end"):
                to_ms = exchange.end_ms()
            seconds = float(body["seconds"]) if "seconds" in body else None
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": f"advance: {exc}"}, 400)
        now = exchange.advance(seconds=seconds, to_ms=to_ms)
        return JSONResponse({"now_ms": now, "steps_left": len(exchange.pending)})

    async def step(request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        body.setdefault("at", "+0s")
        try:
            parsed = Step.model_validate(body)
            if parsed.inst_id is not None:
                exchange.instrument(parsed.inst_id)
        except (ValueError, SimRefusal) as exc:
            return JSONResponse({"error": f"step: {exc}"}, 400)
        exchange.apply_step(parsed, exchange.now_ms())
        return JSONResponse({"applied": exchange.applied[-1]})

    async def registry_writes(_: Request) -> Response:
        return JSONResponse(exchange.registry_writes)

    async def reset(_: Request) -> Response:
        exchange.load(exchange.scenario)
        return JSONResponse(exchange.state())

    async def ws_connections(_: Request) -> Response:
        return JSONResponse(hub.describe())

    async def ws_drop(request: Request) -> Response:
        """Cut private streams now, as the ws_drop fault does (body: optional account)."""
        try:
            body = json.loads(await request.body() or b"{}")
        except json.JSONDecodeError as exc:
            return JSONResponse({"error": f"ws/drop: not valid JSON: {exc}"}, 400)
        account = body.get("account") if isinstance(body, dict) else None
        if account is not None and account not in exchange.accounts:
            known = ", ".join(sorted(exchange.accounts))
            return JSONResponse({"error": f"ws/drop: no account {account!r} ({known})"}, 400)
        return JSONResponse({"dropped": hub.drop(account)})

    return [
        Route(f"{CONTROL_PREFIX}/ws", ws_connections, methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/ws/drop", ws_drop, methods=["POST"]),
        Route(f"{CONTROL_PREFIX}/state", state, methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/scenario", load, methods=["POST"]),
        Route(f"{CONTROL_PREFIX}/advance", advance, methods=["POST"]),
        Route(f"{CONTROL_PREFIX}/step", step, methods=["POST"]),
        Route(f"{CONTROL_PREFIX}/registry-writes", registry_writes, methods=["GET"]),
        Route(f"{CONTROL_PREFIX}/reset", reset, methods=["POST"]),
    ]
