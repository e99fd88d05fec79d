"""Scenarios: what the simulated exchange does over time, as data (JSON or YAML).

```yaml
name: incident-2025-12-20
start: "2025-12-20T00:00:00.000Z"   # simulated time of the first moment
clock: simulated                    # simulated: time moves by the control API; wall: it runs
seed: 7                             # candles' random walk
accounts:                           # default: one account "demo" (see posguard sim --help)
  - {name: main, api_key: ..., secret_key: ..., passphrase: ..., demo: true,
     pos_mode: net_mode, acct_lv: 2}
prices: {XRP-USDT-SWAP: "1.93"}     # mark prices; others get a default
load: {instruments: 1000, positions: 50}  # load tests: synthetic SYN000001-USDT-SWAP ...
                                    # swaps, and each account opens `positions` of them
candle_history: {SUSHI-USDT-SWAP: 3}  # bars that exist (default 3000)
leverage:                           # leverage settings before the first step
  - {account: main, instId: XRP-USDT-SWAP, mgnMode: cross, lever: "5"}
steps:                              # at: ISO-8601 UTC, or "+90s" / "+2m" / "+1h" from start
  - {at: "+0s", action: open, account: main, instId: XRP-USDT-SWAP, mgnMode: cross,
     side: buy, sz: "108", px: "1.93"}
  - {at: "+5m", action: close, instId: XRP-USDT-SWAP, mgnMode: cross, sz: "8"}  # partial
  - {at: "+6m", action: liquidate, instId: ...}       # also: adl, price, set_leverage,
  - {at: "+7m", action: registry_write, instId: ..., pos: "100"}  # pending_orders
faults:                             # per endpoint (name or path) and time window
  - {endpoint: positions, kind: drop_position, instId: XRP-USDT-SWAP, from: "+2m",
     until: "+2m30s"}
  - {endpoint: positions, kind: http_error, http: 503, code: "50001", times: 2}
  # kinds: http_error, timeout (seconds), malformed, rate_limit, lever_empty (instId),
  #        stale (seconds of lag), drop_position (instId)
  - {endpoint: ws_private, kind: ws_drop, account: main, from: "+1m", times: 1}
  # The private WebSocket (endpoint ws_private, only these kinds; `account` limits them to
  # one account's connections, `times` counts connections or pushes, from/until as above):
  #   ws_drop            the account's logged-in connections are cut (no close frame)
  #   ws_miss_push       event pushes are silently not sent (with instId: only its records);
  #                      regular snapshots still tell the truth
  #   ws_delay_push      event pushes arrive `seconds` late
  #   ws_upgrade_notice  notice 64008, then the connection closes `seconds` later
```
"""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from posguard.errors import ConfigError
from posguard.instants import parse_instant
from posguard.okx.endpoints import ALL_ENDPOINTS

DEFAULT_START = "2025-12-20T00:00:00.000Z"
# The private WebSocket is a pseudo-endpoint for faults; only the ws_ kinds act on it.
STREAM_ENDPOINT = "ws_private"
ENDPOINT_NAMES = (
    {e.name for e in ALL_ENDPOINTS} | {e.path for e in ALL_ENDPOINTS} | {"*", STREAM_ENDPOINT}
)


class ScenarioError(ConfigError):
    """A scenario that cannot be used; the message names the file, the step and the field."""


class ScenarioAccount(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    api_key: str = Field(min_length=1)
    secret_key: str = Field(min_length=1)
    passphrase: str = Field(min_length=1)
    demo: bool = True
    pos_mode: Literal["net_mode", "long_short_mode"] = "net_mode"
    acct_lv: int = Field(default=2, ge=1, le=4)


def _decimal_text(value: object) -> str:
    from decimal import Decimal, InvalidOperation

    text = str(value)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    return text


Action = Literal[
    "open",
    "close",
    "liquidate",
    "adl",
    "price",
    "set_leverage",
    "pending_orders",
    "registry_write",
]


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    at: str
    action: Action
    account: str | None = None
    inst_id: str | None = Field(default=None, alias="instId")
    mgn_mode: Literal["cross", "isolated"] = Field(default="cross", alias="mgnMode")
    pos_side: Literal["net", "long", "short"] = Field(default="net", alias="posSide")
    side: Literal["buy", "sell"] = "buy"
    sz: str | None = None
    px: str | None = None
    lever: str | None = None
    pos: str | None = None
    count: int | None = Field(default=None, ge=0)
    note: str | None = None

    @field_validator("sz", "px", "lever", "pos", mode="before")
    @classmethod
    def _numbers(cls, value: object) -> object:
        return None if value is None else _decimal_text(value)


FaultKind = Literal[
    "http_error",
    "timeout",
    "malformed",
    "no_data",
    "rate_limit",
    "lever_empty",
    "stale",
    "drop_position",
    "ws_drop",
    "ws_miss_push",
    "ws_delay_push",
    "ws_upgrade_notice",
]
STREAM_FAULT_KINDS = ("ws_drop", "ws_miss_push", "ws_delay_push", "ws_upgrade_notice")


class Fault(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    endpoint: str
    kind: FaultKind
    start: str | None = Field(default=None, alias="from")
    until: str | None = None
    account: str | None = None
    inst_id: str | None = Field(default=None, alias="instId")
    http: int = Field(default=503, ge=100, le=599)
    code: str | None = "50001"
    msg: str = "Service temporarily unavailable. Please try again later."
    times: int | None = Field(default=None, ge=1)
    seconds: float = Field(default=30.0, ge=0)
    # no_data: what stands where OKX documents the `data` array in a code "0" answer.
    data: Literal["absent", "null", "object", "string"] = "absent"

    @field_validator("endpoint")
    @classmethod
    def _known_endpoint(cls, value: str) -> str:
        if value not in ENDPOINT_NAMES:
            names = sorted(e.name for e in ALL_ENDPOINTS)
            raise ValueError(
                f"unknown endpoint {value!r}; use one of {', '.join(names)}, "
                f"{STREAM_ENDPOINT!r} (the private WebSocket) or '*'"
            )
        return value


class LeverageSetting(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    account: str | None = None
    inst_id: str = Field(alias="instId")
    mgn_mode: Literal["cross", "isolated"] = Field(default="cross", alias="mgnMode")
    pos_side: Literal["net", "long", "short"] = Field(default="net", alias="posSide")
    lever: str

    @field_validator("lever", mode="before")
    @classmethod
    def _number(cls, value: object) -> str:
        return _decimal_text(value)


class Load(BaseModel):
    """Synthetic instruments and positions for load tests and benchmarks."""

    model_config = ConfigDict(extra="forbid")

    instruments: int = Field(default=0, ge=0, le=1_000_000)
    # Opened at start in every account, one per synthetic instrument (needs as many of them).
    positions: int = Field(default=0, ge=0, le=1_000_000)


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "empty"
    description: str = ""
    start: str = DEFAULT_START
    clock: Literal["simulated", "wall"] = "simulated"
    seed: int = 7
    accounts: list[ScenarioAccount] = Field(default_factory=list)
    prices: dict[str, str] = Field(default_factory=dict)
    candle_history: dict[str, int] = Field(default_factory=dict)
    leverage: list[LeverageSetting] = Field(default_factory=list)
    load: Load = Field(default_factory=Load)
    steps: list[Step] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)

    @field_validator("prices", mode="before")
    @classmethod
    def _prices(cls, value: object) -> object:
        if isinstance(value, dict):
            return {k: _decimal_text(v) for k, v in value.items()}
        return value

    @property
    def start_ms(self) -> int:
        return parse_instant(self.start, 0)


def _where(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    if (
        len(loc) >= 2
        and loc[0] in ("steps", "faults", "accounts", "leverage")
        and isinstance(loc[1], int)
    ):
        kind = {"steps": "step", "faults": "fault", "accounts": "account", "leverage": "leverage"}
        index = loc[1]
        label = f"{kind[str(loc[0])]} {index}"
        items = data.get(str(loc[0]))
        if loc[0] == "steps" and isinstance(items, list) and index < len(items):
            item = items[index]
            if isinstance(item, dict) and "action" in item:
                label += f" ({item['action']})"
        rest = ".".join(str(p) for p in loc[2:])
        return f"{label}, field {rest!r}" if rest else label
    return f"field {'.'.join(str(p) for p in loc)!r}"


def validate_scenario(data: Any, source: str, known_instruments: set[str]) -> Scenario:
    """Check a scenario document; every error names the source, the step and the field."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario is an object, got {type(data).__name__}")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise ScenarioError(
            f"{source}: {_where(tuple(first['loc']), data)}: {first['msg']}{more}"
        ) from None
    try:
        start = scenario.start_ms
    except ValueError as exc:
        raise ScenarioError(f"{source}: field 'start': {exc}") from None
    names = {a.name for a in scenario.accounts} or {"demo"}
    if scenario.load.positions > scenario.load.instruments:
        raise ScenarioError(
            f"{source}: field 'load.positions': {scenario.load.positions} positions per account "
            f"need as many synthetic instruments (load.instruments is "
            f"{scenario.load.instruments})"
        )
    for index, step in enumerate(scenario.steps):
        where = f"{source}: step {index} ({step.action})"
        try:
            parse_instant(step.at, start)
        except ValueError as exc:
            raise ScenarioError(f"{where}, field 'at': {exc}") from None
        if step.account is not None and step.account not in names:
            raise ScenarioError(
                f"{where}, field 'account': {step.account!r} is not one of {sorted(names)}"
            )
        if step.action != "registry_write" and step.inst_id is None:
            raise ScenarioError(f"{where}, field 'instId': required for {step.action}")
        if step.inst_id is not None and not _known(step.inst_id, known_instruments, scenario):
            raise ScenarioError(
                f"{where}, field 'instId': {step.inst_id!r} is not a simulated instrument "
                f"(known: {', '.join(sorted(known_instruments))}"
                f"{', SYN000001-USDT-SWAP ...' if scenario.load.instruments else ''})"
            )
        needs = {
            "open": "sz",
            "price": "px",
            "set_leverage": "lever",
            "pending_orders": "count",
            "registry_write": "pos",
        }
        required = needs.get(step.action)
        if required and getattr(step, required) is None:
            raise ScenarioError(f"{where}, field {required!r}: required for {step.action}")
    for index, fault in enumerate(scenario.faults):
        where = f"{source}: fault {index} ({fault.kind})"
        for name in ("start", "until"):
            value = getattr(fault, name)
            if value is not None:
                try:
                    parse_instant(value, start)
                except ValueError as exc:
                    label = "from" if name == "start" else name
                    raise ScenarioError(f"{where}, field {label!r}: {exc}") from None
        if fault.kind in ("lever_empty", "drop_position") and fault.inst_id is None:
            raise ScenarioError(f"{where}, field 'instId': required for {fault.kind}")
        stream_kind = fault.kind in STREAM_FAULT_KINDS
        if stream_kind and fault.endpoint != STREAM_ENDPOINT:
            raise ScenarioError(
                f"{where}, field 'endpoint': {fault.kind} acts on the private WebSocket; "
                f"use endpoint {STREAM_ENDPOINT!r}"
            )
        if fault.endpoint == STREAM_ENDPOINT and not stream_kind:
            raise ScenarioError(
                f"{where}, field 'kind': endpoint {STREAM_ENDPOINT!r} takes only "
                f"{', '.join(STREAM_FAULT_KINDS)}"
            )
    for inst_id in [*scenario.prices, *scenario.candle_history]:
        if not _known(inst_id, known_instruments, scenario):
            raise ScenarioError(f"{source}: {inst_id!r} is not a simulated instrument")
    return scenario


def _known(inst_id: str, catalog: set[str], scenario: Scenario) -> bool:
    if inst_id in catalog:
        return True
    synthetic = re.fullmatch(r"SYN(\d{6})-USDT-SWAP", inst_id)
    return synthetic is not None and 1 <= int(synthetic.group(1)) <= scenario.load.instruments


def shipped_scenarios() -> list[str]:
    folder = resources.files("posguard.sim").joinpath("scenarios")
    return sorted(p.name.rsplit(".", 1)[0] for p in folder.iterdir() if p.name.endswith(".json"))


def read_scenario_document(name_or_path: str) -> tuple[Any, str]:
    """A scenario document from a file (JSON or YAML) or a shipped scenario's name."""
    path = Path(name_or_path)
    if not path.exists():
        if name_or_path in shipped_scenarios():
            resource = resources.files("posguard.sim").joinpath(f"scenarios/{name_or_path}.json")
            return json.loads(resource.read_text()), f"scenario {name_or_path}"
        raise ScenarioError(
            f"{name_or_path}: no such file, and not a shipped scenario "
            f"({', '.join(shipped_scenarios())})"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            return yaml.safe_load(text), str(path)
        return json.loads(text), str(path)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ScenarioError(f"{path}: not valid {path.suffix.lstrip('.').upper()}: {exc}") from None
