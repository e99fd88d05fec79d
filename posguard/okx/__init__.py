"""The OKX v5 REST client: wire-level concerns only (no pandas, no Prefect)."""

from posguard.okx.client import OkxClient, Record
from posguard.okx.paging import PagedRecords
from posguard.okx.ratelimit import RateLimiter

__all__ = ["OkxClient", "PagedRecords", "RateLimiter", "Record"]
