"""posguard's configuration: the only module that reads the environment.

Sources, strongest first: keyword arguments, environment variables (`POSGUARD_...`, nested with
`__`, e.g. `POSGUARD_ACCOUNTS__MAIN__API_KEY`), then a TOML file (`posguard.toml` in the working
directory, or the path in `POSGUARD_CONFIG`). Every field has a default except credentials,
which have none on purpose: an empty secret is a configuration error, not a value.

```toml
state_dir = ".posguard"

[accounts.main]
api_key = "..."
secret_key = "..."
passphrase = "..."
demo = true            # sends x-simulated-trading: 1; needs a demo-trading key
region = "global"      # global | openapi | aws | us | eea
# base_url = "http://127.0.0.1:8765"   # overrides region (the simulator)
```

Many accounts: `accounts_file = "accounts.csv"` (columns name, api_key, secret_key, passphrase
and optionally demo, region, base_url, pos_mode), merged with `[accounts.*]`. Team mode:
`mode = "team"` and a `[team]` section (see TeamConfig).
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import threading
import time
from contextvars import ContextVar
from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from posguard.bars import Bar
from posguard.drift.model import DriftSettings, HealPolicy
from posguard.errors import ConfigError
from posguard.leverage.policy import LeveragePolicy

Region = Literal["global", "openapi", "aws", "us", "eea"]

# okx-facts.md 1.1: www.okx.com (global), openapi.okx.com (2026 docs), us/eea for regional
# accounts ("Using openapi.okx.com will not work for the regions below").
REGION_HOSTS: dict[str, str] = {
    "global": "https://www.okx.com",
    "openapi": "https://openapi.okx.com",
    "aws": "https://aws.okx.com",
    "us": "https://us.okx.com",
    "eea": "https://eea.okx.com",
}
# A REST base_url's scheme -> the same host's WebSocket scheme (the simulator serves both).
WS_SCHEMES = {"http": "ws", "https": "wss"}
# The private WebSocket's hosts (okx-ws-and-prefect-triggers.md 1.1): production, demo.
WS_HOSTS: dict[str, tuple[str, str]] = {
    "global": ("wss://ws.okx.com:8443", "wss://wspap.okx.com:8443"),
    "openapi": ("wss://ws.okx.com:8443", "wss://wspap.okx.com:8443"),
    # No WebSocket host of its own is documented for aws: the global one (set ws_url if not).
    "aws": ("wss://ws.okx.com:8443", "wss://wspap.okx.com:8443"),
    "us": ("wss://wsus.okx.com:8443", "wss://wsuspap.okx.com:8443"),
    "eea": ("wss://wseea.okx.com:8443", "wss://wseeapap.okx.com:8443"),
}

DEFAULT_CONFIG_FILE = Path("posguard.toml")
_config_path: ContextVar[Path | None] = ContextVar("posguard_config_path", default=None)


class LeverageOverride(BaseModel):
    """Per-account or per-instrument changes to the leverage policy (unset: inherited)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    target_vol: float | None = Field(default=None, gt=0)
    vol_floor: float | None = Field(default=None, gt=0)
    min_lever: float | None = Field(default=None, ge=0.01)
    max_lever: float | None = Field(default=None, ge=0.01)
    hysteresis: float | None = Field(default=None, ge=0, lt=1)


class AccountSettings(BaseModel):
    """One OKX account (or sub-account) and its API credentials."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    api_key: SecretStr
    secret_key: SecretStr
    passphrase: SecretStr
    demo: bool = False
    region: Region = "global"
    base_url: str | None = None
    # The private WebSocket, e.g. "ws://127.0.0.1:8765" (the simulator); default: from the
    # region and demo, or from base_url when that is set (the same host, ws:// or wss://).
    ws_url: str | None = None
    # OKX's position mode of the account when known in advance; None reads account/config.
    pos_mode: Literal["net_mode", "long_short_mode"] | None = None
    leverage: LeverageOverride | None = None

    @field_validator("api_key", "secret_key", "passphrase")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("ws_url")
    @classmethod
    def _websocket(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("ws://", "wss://")):
            raise ValueError("must start with ws:// or wss:// (OKX's private WebSocket)")
        return value

    @property
    def resolved_base_url(self) -> str:
        return (self.base_url or REGION_HOSTS[self.region]).rstrip("/")

    @property
    def resolved_ws_url(self) -> str:
        """The private stream's URL (posguard watch)."""
        from posguard.okx.stream import PRIVATE_PATH  # posguard.okx imports this module

        if self.ws_url:
            base = self.ws_url.rstrip("/")
        elif self.base_url:
            scheme, _, rest = self.base_url.rstrip("/").partition("://")
            if scheme not in WS_SCHEMES:
                raise ConfigError(
                    f"base_url {self.base_url!r} is not http:// or https://, so it names no "
                    "WebSocket: set ws_url for the account's private stream"
                )
            base = f"{WS_SCHEMES[scheme]}://{rest}"
        else:
            base = WS_HOSTS[self.region][1 if self.demo else 0]
        return base if base.endswith(PRIVATE_PATH) else base + PRIVATE_PATH

    @property
    def environment(self) -> str:
        """Where the account's instruments and public data come from: accounts of one
        environment share them (demo specs can differ from production's)."""
        return self.resolved_base_url + (" (demo)" if self.demo else "")


# The pure code's own settings are where each default and its meaning live; the
# configuration file's models below only add validation and take the defaults from them.
_DRIFT = DriftSettings()
_LEVERAGE = LeveragePolicy()


class DriftConfig(BaseModel):
    """The reconciliation engine's knobs (their meaning: posguard.drift.DriftSettings)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    confirm_after: int = Field(default=_DRIFT.confirm_after, ge=1)
    confirm_interval_seconds: float = Field(default=_DRIFT.confirm_interval_seconds, ge=0)
    grace_seconds: float = Field(default=_DRIFT.grace_seconds, ge=0)
    lookback_seconds: float = Field(default=_DRIFT.lookback_seconds, ge=0)
    escalate_after: int = Field(default=_DRIFT.escalate_after, ge=1)
    heal: HealPolicy = _DRIFT.heal

    def engine_settings(self, policy: HealPolicy | None = None) -> DriftSettings:
        """The engine's settings from this configuration (`policy` overrides `heal`)."""
        values = {item.name: getattr(self, item.name) for item in fields(DriftSettings)}
        if policy is not None:
            values["heal"] = policy
        return DriftSettings(**values)


class LeverageConfig(BaseModel):
    """Volatility-targeted leverage (posguard.leverage.policy) and how it is applied."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    target_vol: float = Field(default=_LEVERAGE.target_vol, gt=0)
    vol_floor: float = Field(default=_LEVERAGE.vol_floor, gt=0)
    min_lever: float = Field(default=_LEVERAGE.min_lever, ge=0.01)
    max_lever: float = Field(default=_LEVERAGE.max_lever, ge=0.01)
    hysteresis: float = Field(default=_LEVERAGE.hysteresis, ge=0, lt=1)
    bar: Bar = "1m"
    window: int = Field(default=60, ge=2, le=1440)
    method: Literal["realized", "atr"] = "realized"
    # Forbids every set-leverage call, whatever else says "apply".
    kill_switch: bool = False
    # Whether runs started through Prefect (the UI, the API, a schedule) may call set-leverage
    # on this host: a run's dry_run=false alone changes nothing. The second key is this
    # host's own file; `posguard leverage apply` on the host's shell is not gated by it.
    apply: bool = False
    instruments: dict[str, LeverageOverride] = Field(default_factory=dict)

    def policy(self, override: LeverageOverride | None = None) -> LeveragePolicy:
        """The pure policy from this configuration, with an instrument's override on top."""
        values = {item.name: getattr(self, item.name) for item in fields(LeveragePolicy)}
        return LeveragePolicy(**values).with_overrides(override.model_dump() if override else None)


# Prefect's SlackWebhook sends to Slack's own hosts only (any other URL is silently dropped).
SLACK_WEBHOOK = re.compile(r"^https://hooks\.slack(-gov)?\.com/services/[^/\s]+/[^/\s]+/[^/\s]+/?$")


class EmailAlertConfig(BaseModel):
    """Alerts by email through an SMTP server (posguard's SMTP notification block)."""

    model_config = ConfigDict(extra="forbid")

    smtp_host: str = Field(min_length=1)
    # 587: submission with STARTTLS; 465: implicit TLS (security = "ssl"); 25: plain relay.
    smtp_port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(min_length=3, pattern=r"^[^@\s]+@[^@\s]+$")
    recipients: list[str] = Field(min_length=1)
    timeout_seconds: float = Field(default=30.0, gt=0, allow_inf_nan=False)

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.fullmatch(r"[^@\s]+@[^@\s]+", address):
                raise ValueError(f"{address!r} is not an email address")
        return value

    @model_validator(mode="after")
    def _login(self) -> EmailAlertConfig:
        if self.password is not None and not self.username:
            raise ValueError("password is set but username is not")
        if self.password is not None and self.security == "none":
            raise ValueError(
                'a password with security = "none" would cross the network in clear; '
                'use "starttls" or "ssl"'
            )
        return self


class AlertConfig(BaseModel):
    """Where posguard's automations send alerts (Prefect notification blocks). Every alert
    kind goes to every channel configured here."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # A generic webhook (CustomWebhookNotificationBlock): JSON {"subject", "body", "text"}.
    webhook_url: str | None = None
    # A Slack incoming webhook, https://hooks.slack.com/services/... (SlackWebhook block).
    slack_webhook_url: SecretStr | None = None
    # [alerts.email]: SMTP (posguard's notification block, run by the Prefect server).
    email: EmailAlertConfig | None = None

    @field_validator("slack_webhook_url")
    @classmethod
    def _slack_url(cls, value: SecretStr | None) -> SecretStr | None:
        # The message never echoes the URL: its path is the webhook's secret.
        if value is not None and not SLACK_WEBHOOK.match(value.get_secret_value()):
            raise ValueError(
                "is not a Slack incoming webhook URL (https://hooks.slack.com/services/T.../"
                "B.../...); Prefect's Slack block sends nowhere else"
            )
        return value


class ScheduleConfig(BaseModel):
    """How often the deployments run, per account."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    instruments_seconds: int = Field(default=3600, ge=1)
    reconcile_seconds: int = Field(default=30, ge=1)
    leverage_seconds: int = Field(default=300, ge=1)
    # The scheduled leverage flow only plans unless this is False.
    leverage_dry_run: bool = True


class WatchConfig(BaseModel):
    """`posguard watch`: OKX's private stream as a trigger for reconcile runs."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # A `reconcile-positions/<account>-on-change` deployment runs on the watcher's
    # `posguard.position.changed` events (the schedule stays). Its run reads the account once
    # the change has passed [drift] grace_seconds, so that the evidence can conclude. False:
    # no such deployment; the watcher's events are only events.
    trigger: bool = True
    # A burst of pushes on one account gives one event: sent once the account has been quiet
    # this long, or `max_delay_seconds` after the first change.
    quiet_seconds: float = Field(default=0.3, gt=0, le=10)
    max_delay_seconds: float = Field(default=2.0, gt=0, le=60)
    # OKX closes a connection silent for 30 s: ping after this long without a frame.
    ping_seconds: float = Field(default=20.0, gt=0, lt=30)
    reconnect_max_seconds: float = Field(default=30.0, ge=1, le=600)

    @model_validator(mode="after")
    def _delays(self) -> WatchConfig:
        if self.max_delay_seconds < self.quiet_seconds:
            raise ValueError("max_delay_seconds must be at least quiet_seconds")
        return self


class TeamConfig(BaseModel):
    """Team mode: Prefect's server on PostgreSQL, a work pool and its warm workers."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    # The Prefect server's own database (created with pg_trgm if missing).
    prefect_database_url: str = "postgresql+asyncpg://127.0.0.1:5432/posguard_prefect"
    # Redis messaging through prefect-redis; None keeps Prefect's in-memory broker (see README).
    redis_url: str | None = None
    # 0: a server host only; workers join from other hosts (`posguard team worker`).
    workers: int = Field(default=2, ge=0, le=64)
    # Flow runs one worker runs at once, in its threads (a round of many accounts is one run).
    runs_per_worker: int = Field(default=4, ge=1, le=100)
    port: int = Field(default=4200, ge=1, le=65535)
    # Where the Prefect server listens. Beyond loopback only with `auth_string` set: the API
    # can start live leverage runs (the worker host's `[leverage] apply` still decides).
    listen: str = "127.0.0.1"
    # Prefect's basic authentication, "user:password": the server requires it and posguard's
    # clients (team up, team worker, team run) send it. A secret: from the environment
    # (POSGUARD_TEAM__AUTH_STRING) or a file only this host reads, never from Prefect.
    auth_string: SecretStr | None = None
    pool: str = "posguard"
    # Accounts per guard-round flow run: one run observes, validates and settles the batch
    # (flows/round.py) and shares instruments, candles and one GX run. 1: a guard-account run
    # per account, with four flow runs and a GX run each.
    accounts_per_run: int = Field(default=10, ge=1, le=1000)

    @field_validator("auth_string")
    @classmethod
    def _user_and_password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            user, colon, password = value.get_secret_value().partition(":")
            if not (user and colon and password):
                raise ValueError('must be "user:password" (Prefect\'s basic authentication)')
        return value

    @property
    def listens_beyond_loopback(self) -> bool:
        return self.listen not in ("127.0.0.1", "localhost", "::1")


class Settings(BaseSettings):
    # allow_inf_nan=False everywhere: TOML and float() read "inf" and "nan", and a bound of inf
    # (max_lever, target_vol) or a NaN tolerance would silently disable the check it sets.
    model_config = SettingsConfigDict(
        env_prefix="POSGUARD_", env_nested_delimiter="__", extra="forbid", allow_inf_nan=False
    )

    state_dir: Path = Path(".posguard")
    accounts: dict[str, AccountSettings] = Field(default_factory=dict)
    # A CSV of accounts (one row each), for desks with hundreds of them.
    accounts_file: Path | None = None
    # embedded: one process, SQLite, `posguard serve`; team: `posguard team` (see [team]).
    mode: Literal["embedded", "team"] = "embedded"
    team: TeamConfig = Field(default_factory=TeamConfig)
    # Public endpoints (instruments, tiers, candles) need no account; this is their host.
    public_base_url: str = REGION_HOSTS["global"]
    http_timeout_seconds: float = Field(default=10.0, gt=0)
    # How long a measured offset to OKX's clock is reused by the clients of one process
    # (public/time allows 10 requests per 2 s per IP). A long-lived serving process reuses it
    # across runs; a simulator whose clock jumps between cycles (the demo) needs 0.
    clock_offset_ttl_seconds: float = Field(default=300.0, ge=0)
    # Relative tolerance of |notionalUsd - computed| / computed.
    notional_tolerance: float = Field(default=0.01, gt=0, lt=1)
    # The position registry; default: a SQLite file in state_dir.
    registry_url: str | None = None
    drift: DriftConfig = Field(default_factory=DriftConfig)
    leverage: LeverageConfig = Field(default_factory=LeverageConfig)
    alerts: AlertConfig = Field(default_factory=AlertConfig)
    schedules: ScheduleConfig = Field(default_factory=ScheduleConfig)
    watch: WatchConfig = Field(default_factory=WatchConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = _config_path.get()
        sources: list[PydanticBaseSettingsSource] = [
            init_settings,
            _HostKeysFromFileOnly(settings_cls, env_settings),
        ]
        if toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)

    @model_validator(mode="after")
    def _read_accounts_file(self) -> Settings:
        if self.accounts_file is None:
            return self
        path = _accounts_path(self.accounts_file, _config_path.get())
        for name, account in read_accounts_file(path).items():
            if name in self.accounts:
                raise ValueError(f"account {name!r} is defined twice ([accounts] and {path})")
            self.accounts[name] = account
        return self

    @property
    def resolved_registry_url(self) -> str:
        if self.registry_url:
            return self.registry_url
        return f"sqlite:///{(self.state_dir / 'registry.db').resolve()}"

    def account(self, name: str) -> AccountSettings:
        try:
            return self.accounts[name]
        except KeyError:
            known = ", ".join(sorted(self.accounts)) or "none"
            raise ConfigError(
                f"account {name!r} is not configured (configured: {known}); add "
                f"[accounts.{name}] to posguard.toml or set POSGUARD_ACCOUNTS__{name.upper()}__*"
            ) from None


ACCOUNT_COLUMNS = ("name", "api_key", "secret_key", "passphrase")


def read_accounts_file(path: Path) -> dict[str, AccountSettings]:
    """Accounts from a CSV; an error names the file, the row and the column, never a value."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
            columns = set(rows[0]) if rows else set()
    except OSError as exc:
        raise ValueError(f"accounts file {path} cannot be read ({exc.strerror})") from None
    missing = [c for c in ACCOUNT_COLUMNS if c not in columns]
    if rows and missing:
        raise ValueError(f"accounts file {path} lacks the column(s) {', '.join(missing)}")
    accounts: dict[str, AccountSettings] = {}
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        name = (row.get("name") or "").strip()
        if not name:
            raise ValueError(f"accounts file {path}, row {number}: name is empty")
        if name in accounts:
            raise ValueError(f"accounts file {path}, row {number}: account {name!r} repeats")
        fields = {k: v.strip() for k, v in row.items() if k and k != "name" and v and v.strip()}
        if "demo" in fields:
            flag = fields["demo"].lower()
            if flag not in ("1", "0", "true", "false", "yes", "no"):
                raise ValueError(
                    f"accounts file {path}, row {number} ({name}): demo is not a "
                    "boolean (true/false)"
                )
            fields["demo"] = str(flag in ("1", "true", "yes"))
        try:
            accounts[name] = AccountSettings.model_validate(fields)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise ValueError(f"accounts file {path}, row {number} ({name}): {problems}") from None
    return accounts


def _accounts_path(accounts_file: Path, config_file: Path | None) -> Path:
    """An accounts file named in the TOML file is relative to that file's folder."""
    if accounts_file.is_absolute():
        return accounts_file
    return (config_file.parent if config_file is not None else Path()) / accounts_file


def config_file_path(explicit: Path | None = None) -> Path | None:
    """The TOML file in use: the explicit one, $POSGUARD_CONFIG, or ./posguard.toml if present."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get("POSGUARD_CONFIG")
    if from_env:
        return Path(from_env)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.exists() else None


class _HostKeysFromFileOnly(PydanticBaseSettingsSource):
    """The environment, refusing the keys only a host's file may set. In team mode a flow
    run's job variables become its process's environment: a run must not grant itself what
    the host's posguard.toml did not (`[leverage] apply`)."""

    def __init__(self, settings_cls: type[BaseSettings], inner: PydanticBaseSettingsSource) -> None:
        super().__init__(settings_cls)
        self._inner = inner

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._inner.get_field_value(field, field_name)

    def __call__(self) -> dict[str, Any]:
        values = self._inner()
        leverage = values.get("leverage")
        if isinstance(leverage, dict) and "apply" in leverage:
            raise ConfigError(
                "POSGUARD_LEVERAGE__APPLY is set in the environment: whether runs may change "
                "leverage on this host is read from its posguard.toml only ([leverage] apply); "
                "unset the variable"
            )
        return values


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """Build the settings, turning every problem into a `ConfigError` that names the field.

    Validation messages from pydantic are rebuilt from their location and reason only, so a
    secret value can never be echoed into a log.
    """
    path = config_file_path(config_file)
    if path is not None and not path.exists():
        raise ConfigError(
            f"settings file {path} does not exist; create it or unset POSGUARD_CONFIG"
        )
    token = _config_path.set(path)
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        where = f" (file {path})" if path else ""
        raise ConfigError(f"invalid posguard settings{where}: {problems}") from None
    except ValueError as exc:  # malformed TOML
        raise ConfigError(f"cannot read settings file {path}: {exc}") from None
    finally:
        _config_path.reset(token)


# path, inode, mtime_ns, ctime_ns, size; None: no file named
FileStamp = tuple[str, int, int, int, int] | None


class LiveSettings:
    """The settings of a long-lived process (a warm serving worker, the watcher), read again
    when their TOML file or accounts file changed: an edited posguard.toml (a rotated key, a
    threshold) takes effect at the next read, as it did when every run was a new process.

    Unchanged files cost a `stat` each per read. A stamp (inode, size, modification and change
    times) taken within two seconds of reading the file could miss a second write in the same
    clock tick, so until a read finds it older, the content is compared too. The environment
    is read again with the files, not watched. The file found first stays the file: if it
    goes (an editor saving by renaming), reads fail naming it instead of falling back to the
    defaults. A file that no longer loads raises its `ConfigError` on every read until it is
    mended: nothing runs on settings half-read."""

    def __init__(self, config_file: Path | None = None) -> None:
        self._explicit = config_file
        self._found: Path | None = None  # the default ./posguard.toml, once found
        self._loaded: Settings | None = None
        self._stamps: tuple[FileStamp, ...] = ()
        self._digests: tuple[bytes | None, ...] = ()
        self._racy = True
        self._lock = threading.Lock()

    def get(self) -> Settings:
        with self._lock:
            config = config_file_path(self._explicit) or self._found
            paths = self._paths(config, self._loaded)
            stamps = tuple(_file_stamp(p) for p in paths)
            if self._loaded is not None and stamps == self._stamps and not self._racy:
                return self._loaded
            read_ns = time.time_ns()
            # Before the read: a write during it shows as a change at the next get.
            digests = tuple(_digest(p) for p in paths)
            if self._loaded is None or digests != self._digests:
                loaded = load_settings(config)
                self._found = config
                if self._paths(config, loaded) != paths:
                    # An accounts file named just now was read without a digest before:
                    # compare it at the next get.
                    paths = self._paths(config, loaded)
                    stamps, digests = tuple(_file_stamp(p) for p in paths), ()
                self._loaded = loaded
            self._stamps, self._digests = stamps, digests
            self._racy = not digests or any(
                stamp is not None and max(stamp[2], stamp[3]) >= read_ns - RACY_NS
                for stamp in stamps
            )
            return self._loaded

    def forget(self) -> None:
        """Read the files again at the next `get`, changed or not."""
        with self._lock:
            self._loaded = None

    @staticmethod
    def _paths(config: Path | None, loaded: Settings | None) -> tuple[Path | None, ...]:
        if loaded is None or loaded.accounts_file is None:
            return (config,)
        return (config, _accounts_path(loaded.accounts_file, config))


# Coarser than any clock tick of a file system posguard runs on (some keep 1-2 s).
RACY_NS = 2_000_000_000


def _file_stamp(path: Path | None) -> FileStamp:
    if path is None:
        return None
    try:
        found = path.stat()
    except OSError:
        return (str(path), -1, -1, -1, -1)
    return (str(path), found.st_ino, found.st_mtime_ns, found.st_ctime_ns, found.st_size)


def _digest(path: Path | None) -> bytes | None:
    if path is None:
        return None
    try:
        return hashlib.blake2b(path.read_bytes(), digest_size=16).digest()
    except OSError:
        return b"missing"


def export_environment(
    values: dict[str, str | None], defaults: dict[str, str] | None = None
) -> None:
    """Set environment variables for what reads them later in this process (Prefect reads its
    API address when imported) and for the processes started from it (POSGUARD_CONFIG).
    None leaves a variable as it is; `defaults` only fill what is unset."""
    for name, value in values.items():
        if value is not None:
            os.environ[name] = value
    for name, value in (defaults or {}).items():
        os.environ.setdefault(name, value)
