# Type stubs of the libanalytics package (the pybind11 module
# libanalytics._libanalytics, re-exported by libanalytics/__init__.py).
import datetime
from types import TracebackType
from typing import Any, Iterable, Literal, Mapping, TypedDict, Union

__version__: str

class Error(Exception):
    """Base class of every libanalytics error; store failures and others."""

    code: str

class InvalidArgumentError(Error, ValueError):
    """Invalid input; the message starts with the field."""

class NotFoundError(Error, LookupError):
    """Unknown site."""

class AlreadyExistsError(Error):
    """add_site() of a taken domain or short id."""

Timestamp = Union[float, int, datetime.datetime, str]
PropValue = Union[str, int, float, bool, None]

class EventDict(TypedDict, total=False):
    site: str
    name: str
    url: str
    referrer: str
    ts: Timestamp
    ip: str
    user_agent: str
    props: Mapping[str, PropValue]
    screen_width: int
    locale: str
    timezone: str
    country: str
    interactive: bool
    imported: bool

class TrackResult(TypedDict):
    accepted: bool
    dropped: str | None

class BatchResult(TypedDict):
    accepted: int
    dropped: dict[str, int]
    rejected: list[tuple[int, str]]

class SiteDict(TypedDict):
    id: int
    domain: str
    short_id: str
    timezone: str
    created_ms: int
    allowed_origins: str

class Engine:
    """An embedded analytics engine on one store."""

    def __init__(
        self,
        store: str = "memory://",
        *,
        geoip: str = "",
        auto_create_sites: bool = False,
        session_timeout: float = 1800.0,
        checkpoint_interval: float = 1.0,
        max_batch: int = 4096,
    ) -> None: ...
    def track(
        self,
        *,
        site: str = ...,
        name: str = "pageview",
        url: str = ...,
        referrer: str = "",
        ts: Timestamp | None = None,
        ip: str = "",
        user_agent: str = "",
        props: Mapping[str, PropValue] | None = None,
        screen_width: int = 0,
        locale: str = "",
        timezone: str = "",
        country: str = "",
        interactive: bool = True,
        imported: bool = False,
    ) -> TrackResult: ...
    def track_many(
        self, events: Iterable[Mapping[str, Any]], batch_size: int = 1000
    ) -> BatchResult: ...
    def query(self, query: Mapping[str, Any] | str | bytes) -> dict[str, Any]: ...
    # Goals and funnels (docs/API.md).
    def add_goal(self, site: str, goal: Mapping[str, Any] | str) -> dict[str, Any]: ...
    def goals(self, site: str) -> list[dict[str, Any]]: ...
    def remove_goal(self, site: str, id: int) -> None: ...
    def add_funnel(self, site: str, funnel: Mapping[str, Any] | str) -> dict[str, Any]: ...
    def funnels(self, site: str) -> list[dict[str, Any]]: ...
    def remove_funnel(self, site: str, id: int) -> None: ...
    def funnel(self, query: Mapping[str, Any] | str) -> dict[str, Any]: ...
    def add_site(
        self,
        domain: str,
        timezone: str = "UTC",
        allowed_origins: str = "",
        short_id: str = "",
    ) -> SiteDict: ...
    def sites(self) -> list[SiteDict]: ...
    def find_site(self, domain_or_short_id: str) -> SiteDict: ...
    def remove_site(self, domain: str) -> None: ...
    def update_site(
        self,
        domain: str,
        *,
        timezone: str | None = None,
        allowed_origins: str | None = None,
    ) -> SiteDict: ...
    def live_visitors(self, site: str, window: float = 300.0) -> int: ...
    def stats(self) -> dict[str, Any]: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    @property
    def store(self) -> str: ...
    def __enter__(self) -> Engine: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> Literal[False]: ...
    def _track_many_native_benchmark(
        self,
        n: int,
        batch_size: int = 1000,
        site: str = "bench.example",
        base_ts: float = 0.0,
    ) -> dict[str, float]: ...
