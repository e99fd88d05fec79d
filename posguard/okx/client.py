"""The OKX v5 REST client: signing, demo header, clock offset, envelope, rate limits, paging.

It never retries on its own (retries belong to Prefect, through `is_retryable`), with one
protocol exception: a 50102 (timestamp outside the window) re-syncs the clock from
/api/v5/public/time and re-sends once, because the first request could not have succeeded.
The transport is injectable: tests pass `httpx.MockTransport` or talk to the simulator.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import ssl
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from posguard.errors import (
    ClockSkewError,
    ConfigError,
    ExchangeTimeoutError,
    MalformedResponseError,
    OutcomeUnknownError,
    RateLimitedError,
    TransientExchangeError,
)
from posguard.okx import endpoints as ep
from posguard.okx.cache import CACHEABLE, PublicCache
from posguard.okx.envelope import CallContext, decode
from posguard.okx.paging import PagedRecords, record_field, row_member, walk_back
from posguard.okx.ratelimit import SHARED_LIMITER, RateLimiter
from posguard.okx.signing import okx_timestamp, sign
from posguard.settings import AccountSettings, Settings

logger = logging.getLogger("posguard.okx")

Record = dict[str, Any]
Params = dict[str, str | None]


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


# Clock offsets measured per host, shared by the clients of a process: public/time allows
# 10 requests per 2 s per IP, which a run opening a client per task would exhaust.
_OFFSETS: dict[str, tuple[int, float]] = {}
OFFSET_TTL_SECONDS = 300.0


# An epoch in ms as OKX writes it: ASCII digits (int() would also take "1_000" or "١٢٣"),
# at most 15 of them (past year 30000: a broken clock, not a time).
_EPOCH_MS = re.compile(r"[0-9]{1,15}")


def _chunks(items: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _query(params: Params | None) -> str:
    # OKX (like python-okx) ignores absent and empty parameters; dropping them keeps the
    # signed path and the sent path identical.
    if not params:
        return ""
    pairs = [(k, v) for k, v in params.items() if v is not None and v != ""]
    return urlencode(pairs)


@functools.lru_cache(maxsize=1)
def _tls_context() -> ssl.SSLContext:
    """httpx's default TLS context (certifi's roots, SSL_CERT_FILE/SSL_CERT_DIR honoured),
    built once per process: loading the roots cost more than a whole account's requests
    to a local simulator when a round opened a client per account."""
    return httpx.create_ssl_context()


def server_ms_of(data: list[Any], account: str | None = None) -> int:
    """The epoch ms of a public/time answer's data: `[{"ts": "<digits>"}]` and nothing
    else (the REST client's clock sync and the watcher's login both read it)."""
    first = data[0] if data else None
    stamp = first.get("ts") if isinstance(first, dict) else None
    if not (isinstance(stamp, str) and _EPOCH_MS.fullmatch(stamp)):
        if first is None:
            got = "no record"
        elif isinstance(first, dict):
            got = f"ts {stamp!r:.40}" if "ts" in first else "a record without ts"
        else:
            got = f"a {type(first).__name__} instead of a record"
        raise MalformedResponseError(
            f"OKX GET {ep.PUBLIC_TIME.path} answered {got}, not [{{'ts': '<epoch ms>'}}]; "
            f"the exchange clock cannot be read. If it persists, check base_url in settings",
            endpoint=ep.PUBLIC_TIME.path,
            account=account,
        )
    return int(stamp)


class OkxClient:
    """A synchronous client for one account (or for public endpoints only, without one)."""

    def __init__(
        self,
        *,
        base_url: str,
        account_name: str | None = None,
        account: AccountSettings | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout_seconds: float = 10.0,
        limiter: RateLimiter | None = None,
        wall_clock_ms: Callable[[], int] = _wall_clock_ms,
        auto_sync_clock: bool = True,
        cache: PublicCache | None = None,
        offset_ttl_seconds: float = OFFSET_TTL_SECONDS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._cache = cache
        self.account_name = account_name
        self._account = account
        self._limiter = limiter or SHARED_LIMITER
        self._wall_clock_ms = wall_clock_ms
        self._offset_ms = 0
        self._clock_synced = not auto_sync_clock
        # Only offsets measured against this machine's own clock are shared.
        self._shares_offset = wall_clock_ms is _wall_clock_ms
        cached = _OFFSETS.get(self.base_url) if self._shares_offset else None
        if (
            auto_sync_clock
            and cached is not None
            and time.monotonic() - cached[1] < offset_ttl_seconds
        ):
            self._offset_ms, self._clock_synced = cached[0], True
        self._ip_scope = urlsplit(self.base_url).netloc or self.base_url
        headers = {"Accept": "application/json", "User-Agent": "posguard/0.1"}
        if account is not None and account.demo:
            headers["x-simulated-trading"] = "1"
        self._http = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=httpx.Timeout(timeout_seconds),
            headers=headers,
            verify=_tls_context(),
        )

    @classmethod
    def for_account(
        cls,
        settings: Settings,
        name: str,
        *,
        transport: httpx.BaseTransport | None = None,
        limiter: RateLimiter | None = None,
        cache: PublicCache | None = None,
    ) -> OkxClient:
        account = settings.account(name)
        return cls(
            base_url=account.resolved_base_url,
            account_name=name,
            account=account,
            transport=transport,
            timeout_seconds=settings.http_timeout_seconds,
            limiter=limiter,
            cache=cache,
            offset_ttl_seconds=settings.clock_offset_ttl_seconds,
        )

    @classmethod
    def public(
        cls, settings: Settings, *, transport: httpx.BaseTransport | None = None
    ) -> OkxClient:
        return cls(
            base_url=settings.public_base_url,
            transport=transport,
            timeout_seconds=settings.http_timeout_seconds,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> OkxClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the clock ---------------------------------------------------------------------------

    @property
    def clock_offset_ms(self) -> int:
        return self._offset_ms

    def now_ms(self) -> int:
        """OKX's idea of now: the local clock corrected by the last measured offset; not
        later than OKX's own clock (see `sync_clock`), up to how far this machine's clock
        drifted since that offset was measured (a shared one is reused for
        `clock_offset_ttl_seconds`)."""
        return self._wall_clock_ms() + self._offset_ms

    def sync_clock(self) -> int:
        """Measure the offset to OKX's clock from /api/v5/public/time; returns it in ms.

        OKX stamped its answer at some moment before it arrived, so the offset is at least
        `ts - received`. That bound is the one kept, not the usual midpoint of the round
        trip: a snapshot's moment (`now_ms()` as it is asked for) must not be later than
        OKX's, because the drift engine's grace window counts from it, and a moment stamped
        late concludes on evidence younger than the window. The midpoint counts a wait for
        public/time's rate limit (10 per 2 s per IP, shared by a serving process's runs) or a
        slow answer as half network: seen in the latency benchmark as snapshots stamped
        0.7-1.5 s late. The bound errs the other way by the answer's way back: a run waits
        that much longer."""
        sent = self._wall_clock_ms()
        data = self._send(ep.PUBLIC_TIME, None, None)
        received = self._wall_clock_ms()
        server_ms = server_ms_of(data, self.account_name)
        self._offset_ms = server_ms - received
        self._clock_synced = True
        if self._shares_offset:
            _OFFSETS[self.base_url] = (self._offset_ms, time.monotonic())
        logger.debug(
            "clock offset to OKX: %s ms (asked and answered in %s ms, any rate-limit wait "
            "included)",
            self._offset_ms,
            received - sent,
        )
        return self._offset_ms

    # -- the one request path ----------------------------------------------------------------

    def request(
        self,
        endpoint: ep.Endpoint,
        params: Params | None = None,
        body: Record | list[Record] | None = None,
        *,
        keep: Collection[str] | None = None,
    ) -> list[Any]:
        """Send one request and return its `data` array, or raise the error it carries.

        `keep` names the fields a caller reads from the records: the others are dropped while
        the answer is decoded, so a 100k-position answer never exists in memory twice over.
        """
        if endpoint.private and not self._clock_synced:
            self.sync_clock()
        try:
            return self._send(endpoint, params, body, keep)
        except ClockSkewError:
            if not endpoint.private:
                raise
            logger.warning(
                "OKX says the request timestamp is out of its window (50102); re-syncing "
                "the clock (offset was %s ms) and sending once more",
                self._offset_ms,
            )
            self.sync_clock()
            return self._send(endpoint, params, body, keep)

    def _send(
        self,
        endpoint: ep.Endpoint,
        params: Params | None,
        body: Record | list[Record] | None,
        keep: Collection[str] | None = None,
    ) -> list[Any]:
        query = _query(params)
        request_path = endpoint.path + (f"?{query}" if query else "")
        cache_key = max_age = None
        if self._cache is not None and endpoint.path in CACHEABLE and body is None:
            # Trimmed answers are cached apart: another caller may read other fields.
            fields = ",".join(sorted(keep)) if keep is not None else "*"
            cache_key = f"{self.base_url}{request_path}|{fields}"
            max_age = self._cache.age_limit(
                endpoint, {k: str(v) for k, v in (params or {}).items()}
            )
            # One request per key at a time: callers asking for the same public answer
            # meanwhile wait for it instead of each spending a slot of the IP's rate limit.
            with self._cache.single_flight(cache_key):
                cached = self._cache.get(cache_key, max_age)
                if cached is not None:
                    return cached
                data = self._exchange(endpoint, request_path, params, body, keep)
                self._cache.put(cache_key, data)
                return data
        return self._exchange(endpoint, request_path, params, body, keep)

    def _exchange(
        self,
        endpoint: ep.Endpoint,
        request_path: str,
        params: Params | None,
        body: Record | list[Record] | None,
        keep: Collection[str] | None,
    ) -> list[Any]:
        """One request and its decoded answer, within the endpoint's rate limit."""
        body_text = "" if body is None else json.dumps(body, separators=(",", ":"))
        ctx = CallContext(endpoint.method, endpoint.path, self.account_name)
        headers: dict[str, str] = {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if endpoint.private:
            headers.update(self._auth_headers(endpoint, request_path, body_text, ctx))
        scope_id = (self.account_name or "") if endpoint.scope == "uid" else self._ip_scope
        key = endpoint.limit_key(scope_id, {k: v for k, v in (params or {}).items() if v})
        waited = self._limiter.acquire(key, endpoint.limit, endpoint.window_seconds)
        if waited > 0:
            logger.debug("waited %.3f s for the rate limit of %s", waited, endpoint.path)
        try:
            response = self._http.request(
                endpoint.method,
                request_path,
                content=body_text.encode("utf-8") if body is not None else None,
                headers=headers,
            )
        except httpx.TransportError as exc:
            raise self._transport_error(exc, endpoint, ctx) from exc
        except httpx.DecodingError as exc:
            # The body arrived but its Content-Encoding (gzip, deflate...) does not decode.
            raise MalformedResponseError(
                f"{ctx.describe()} answered with a body that cannot be decoded ({exc}); if it "
                f"persists, check base_url in settings and any proxy in between",
                endpoint=endpoint.path,
                method=endpoint.method,
                account=self.account_name,
            ) from exc
        except httpx.HTTPError as exc:
            raise TransientExchangeError(
                f"{ctx.describe()} failed before an answer was read ({type(exc).__name__}: "
                f"{exc}); check base_url in settings",
                endpoint=endpoint.path,
                method=endpoint.method,
                account=self.account_name,
            ) from exc
        status = response.status_code
        raw = response.content
        # A big answer exists three times while decoding (bytes, text, objects): drop the
        # bytes (httpx's response holds the only other reference) once they are text.
        del response
        answer: bytes | str = raw
        with contextlib.suppress(UnicodeDecodeError):  # decode() reports it, with a snippet
            answer = raw.decode("utf-8")
        del raw
        try:
            data = decode(answer, ctx, http_status=status, keep=keep)
        except RateLimitedError:
            self._limiter.penalize(key, endpoint.window_seconds)
            raise
        return data

    def _transport_error(
        self, exc: httpx.TransportError, endpoint: ep.Endpoint, ctx: CallContext
    ) -> TransientExchangeError:
        path, method, account = endpoint.path, endpoint.method, self.account_name
        if endpoint.method != "GET":
            # A timeout and a reset look alike from here: the exchange may have applied the
            # write before the answer was lost. Resending could apply it twice.
            return OutcomeUnknownError(
                f"{ctx.describe()} got no complete answer ({type(exc).__name__}: {exc}); "
                f"whether the exchange applied it is unknown: read the state back before "
                f"sending it again",
                endpoint=path,
                method=method,
                account=account,
            )
        if isinstance(exc, httpx.TimeoutException):
            return ExchangeTimeoutError(
                f"{ctx.describe()} timed out ({type(exc).__name__}); the exchange or the "
                f"network is slow. Reads are retried; raise http_timeout_seconds if it persists",
                endpoint=path,
                method=method,
                account=account,
            )
        return TransientExchangeError(
            f"{ctx.describe()} could not reach {self.base_url} ({type(exc).__name__}: "
            f"{exc}); check the network and base_url",
            endpoint=path,
            method=method,
            account=account,
        )

    def _auth_headers(
        self, endpoint: ep.Endpoint, request_path: str, body_text: str, ctx: CallContext
    ) -> dict[str, str]:
        if self._account is None:
            raise ConfigError(
                f"{ctx.describe()} needs API credentials, but this client has no account; "
                f"build it with OkxClient.for_account(settings, name)"
            )
        timestamp = okx_timestamp(self.now_ms())
        signature = sign(
            self._account.secret_key.get_secret_value(),
            timestamp,
            endpoint.method,
            request_path,
            body_text,
        )
        return {
            "OK-ACCESS-KEY": self._account.api_key.get_secret_value(),
            "OK-ACCESS-SIGN": signature,
            "OK-ACCESS-TIMESTAMP": timestamp,
            "OK-ACCESS-PASSPHRASE": self._account.passphrase.get_secret_value(),
        }

    def _paged(
        self,
        endpoint: ep.Endpoint,
        params: Params,
        *,
        cursor_of: Callable[[Any], int | None],
        time_of: Callable[[Any], int | None],
        limit: int,
        max_pages: int,
        warn_when_cut: bool = True,
    ) -> PagedRecords[Any]:
        """Follow `after` cursors back in time; the result says whether the walk was cut."""
        who = f" for account {self.account_name!r}" if self.account_name else ""

        def fetch_page(after: str | None) -> list[Any]:
            return self.request(endpoint, {**params, "after": after, "limit": str(limit)})

        return walk_back(
            fetch_page,
            first_after=params.get("after"),
            limit=limit,
            max_pages=max_pages,
            cursor_of=cursor_of,
            time_of=time_of,
            describe=f"OKX GET {endpoint.path}{who}",
            warn_when_cut=warn_when_cut,
        )

    # -- endpoints ---------------------------------------------------------------------------

    def server_time_ms(self) -> int:
        return server_ms_of(self.request(ep.PUBLIC_TIME), self.account_name)

    def instruments(
        self,
        inst_type: str = "SWAP",
        *,
        inst_family: str | None = None,
        inst_id: str | None = None,
        keep: Collection[str] | None = None,
    ) -> list[Record]:
        return self.request(
            ep.INSTRUMENTS,
            {"instType": inst_type, "instFamily": inst_family, "instId": inst_id},
            keep=keep,
        )

    def position_tiers(
        self,
        inst_type: str,
        td_mode: str,
        *,
        inst_family: str | None = None,
        inst_id: str | None = None,
    ) -> list[Record]:
        return self.request(
            ep.POSITION_TIERS,
            {
                "instType": inst_type,
                "tdMode": td_mode,
                "instFamily": inst_family,
                "instId": inst_id,
            },
        )

    def account_config(self) -> Record:
        data = self.request(ep.ACCOUNT_CONFIG)
        if not data or not isinstance(data[0], dict):
            raise TransientExchangeError(
                f"OKX GET {ep.ACCOUNT_CONFIG.path} for account {self.account_name!r} returned "
                f"no configuration record",
                endpoint=ep.ACCOUNT_CONFIG.path,
                account=self.account_name,
            )
        record: Record = data[0]
        return record

    def positions(
        self,
        *,
        inst_type: str | None = None,
        inst_ids: Sequence[str] = (),
        pos_ids: Sequence[str] = (),
        keep: Collection[str] | None = None,
    ) -> list[Record]:
        """Open positions (and zero-size records when asked by instId); no pagination."""
        if inst_ids:
            rows: list[Record] = []
            for chunk in _chunks(list(inst_ids), 10):  # OKX accepts up to 10 instIds
                rows += self.request(
                    ep.POSITIONS, {"instType": inst_type, "instId": ",".join(chunk)}, keep=keep
                )
            return rows
        if pos_ids:
            rows = []
            for chunk in _chunks(list(pos_ids), 20):  # and up to 20 posIds
                rows += self.request(
                    ep.POSITIONS, {"instType": inst_type, "posId": ",".join(chunk)}, keep=keep
                )
            return rows
        return self.request(ep.POSITIONS, {"instType": inst_type}, keep=keep)

    def positions_history(
        self,
        *,
        inst_type: str | None = None,
        inst_id: str | None = None,
        mgn_mode: str | None = None,
        close_type: str | None = None,
        pos_id: str | None = None,
        after_ms: int | None = None,
        before_ms: int | None = None,
        limit: int = 100,
        max_pages: int = 10,
    ) -> PagedRecords[Record]:
        """Closed and partially closed positions, newest first, paged by uTime.

        `before_ms` is the lower bound (records updated after it); the result's `complete`
        says whether the walk reached it or stopped at `max_pages`.
        """
        params: Params = {
            "instType": inst_type,
            "instId": inst_id,
            "mgnMode": mgn_mode,
            "type": close_type,
            "posId": pos_id,
            "after": None if after_ms is None else str(after_ms),
            "before": None if before_ms is None else str(before_ms),
        }
        # OKX returns every record sharing a uTime in one page, so `after` the oldest uTime
        # loses nothing.
        return self._paged(
            ep.POSITIONS_HISTORY,
            params,
            cursor_of=record_field("uTime"),
            time_of=record_field("uTime"),
            limit=min(limit, 100),
            max_pages=max_pages,
        )

    def leverage_info(self, mgn_mode: str, inst_ids: Sequence[str]) -> list[Record]:
        rows: list[Record] = []
        for chunk in _chunks(list(inst_ids), 20):  # OKX accepts up to 20 instIds
            rows += self.request(ep.LEVERAGE_INFO, {"mgnMode": mgn_mode, "instId": ",".join(chunk)})
        return rows

    def set_leverage(
        self,
        *,
        lever: str,
        mgn_mode: str,
        inst_id: str | None = None,
        pos_side: str | None = None,
        ccy: str | None = None,
    ) -> list[Record]:
        """POST set-leverage; `lever` is sent as a string, as OKX documents it."""
        body: Record = {"lever": lever, "mgnMode": mgn_mode}
        if inst_id:
            body["instId"] = inst_id
        if ccy:
            body["ccy"] = ccy
        if pos_side:
            body["posSide"] = pos_side
        data = self.request(ep.SET_LEVERAGE, body=body)
        if not data:
            # OKX answers one item per request; without it nothing says the change was made.
            raise MalformedResponseError(
                f"OKX POST {ep.SET_LEVERAGE.path} for account {self.account_name!r} "
                f"(instId {inst_id or ccy}) answered code 0 with no result item; whether the "
                f"leverage changed is unknown: read it back (leverage-info) before deciding",
                endpoint=ep.SET_LEVERAGE.path,
                method="POST",
                account=self.account_name,
                code="0",
                inst_id=inst_id,
            )
        return data

    def candles(
        self,
        inst_id: str,
        *,
        bar: str = "1m",
        limit: int = 100,
        after_ms: int | None = None,
        before_ms: int | None = None,
        max_pages: int = 1,
        history: bool = False,
    ) -> PagedRecords[list[str]]:
        """Candles newest first; `max_pages` > 1 walks back in time with `after`.

        A walk cut at `max_pages` is logged only when a range was asked (`before_ms`): without
        one, `limit` x `max_pages` is how many bars the caller wants.
        """
        endpoint = ep.HISTORY_CANDLES if history else ep.CANDLES
        params: Params = {
            "instId": inst_id,
            "bar": bar,
            "after": None if after_ms is None else str(after_ms),
            "before": None if before_ms is None else str(before_ms),
        }
        return self._paged(
            endpoint,
            params,
            cursor_of=row_member(0),
            time_of=row_member(0),
            limit=min(limit, 300),
            max_pages=max_pages,
            warn_when_cut=before_ms is not None,
        )

    def fills(
        self,
        *,
        inst_type: str | None = None,
        inst_id: str | None = None,
        begin_ms: int | None = None,
        end_ms: int | None = None,
        limit: int = 100,
        max_pages: int = 10,
        history: bool = False,
    ) -> PagedRecords[Record]:
        """Fills newest first (last 3 days, or 3 months with `history`), paged by billId.

        `begin_ms` is the lower bound (fills at or after it); the result's `complete` says
        whether the walk reached it or stopped at `max_pages`.
        """
        if history and not inst_type:
            raise ConfigError("fills-history needs inst_type (OKX requires instType there)")
        params: Params = {
            "instType": inst_type,
            "instId": inst_id,
            "begin": None if begin_ms is None else str(begin_ms),
            "end": None if end_ms is None else str(end_ms),
        }
        return self._paged(
            ep.FILLS_HISTORY if history else ep.FILLS,
            params,
            cursor_of=record_field("billId"),
            time_of=record_field("ts"),
            limit=min(limit, 100),
            max_pages=max_pages,
        )
