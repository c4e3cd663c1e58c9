"""``SalesManagementHook``: the Sage Sales Management (ex-ForceManager) API v4 client.

The hook owns the transport (contracts/SSM-API.md): login with a cached session key sent as ``X-Session-Key``,
one re-login on ``401``, a client-side token bucket sized by the plan's requests per second, retries of
transient failures only, paging, bulk writes with per-item outcomes, and picture uploads. Retries and how
writes stay idempotent are decided in docs/adr/0003-ssm-retries-and-idempotency.md.

Connection (``ssm_default``, type ``http``)::

    AIRFLOW_CONN_SSM_DEFAULT='{"conn_type": "http",
        "host": "https://api.forcemanager.com/api/v4",
        "login": "<public key>", "password": "<private key>",
        "extra": {"requests_per_second": 13, "page_size": 1000, "timeout": 60, "max_retries": 6}}'

``host`` is the API base URL; a bare host name (with ``schema`` http/https, default https, and ``port``) gets
``/api/v4`` appended. Every setting follows one precedence: constructor argument, then connection extra, then
the class default.

The hook is a plain Airflow ``BaseHook`` that owns its ``requests`` session; it reads the ``http`` connection
type but does not inherit ``HttpHook`` (docs/adr/0012-ssm-hook-shape.md).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urljoin

import requests
from airflow.sdk import BaseHook

from sage_sync.errors import ConfigurationError
from sage_sync.hooks.ratelimit import Precedence, TokenBucket, shared_bucket_file
from sage_sync.hooks.retry import RetryPolicy
from sage_sync.hooks.ssm_bulk import ExactlyOnceCreates, as_id, fill_outcomes
from sage_sync.hooks.ssm_secrets import HookSecrets
from sage_sync.hooks.ssm_transport import SsmTransport, build_session, decode_json
from sage_sync.hooks.ssm_types import (
    API_CODE_BAD_WHERE,
    API_CODE_NOT_FOUND,
    ApiCallCounts,
    BulkOutcome,
    SsmApiError,
    SsmSettings,
    WriteOutcomeUnknown,
    api_base_url,
    validated_number,
)
from sage_sync.hooks.where import Literal, where_in_batches, where_is_not_null
from sage_sync.mapping.registry import registry

if TYPE_CHECKING:
    from requests.adapters import BaseAdapter

__all__ = [
    "API_CODE_BAD_WHERE",
    "API_CODE_NOT_FOUND",
    "ApiCallCounts",
    "BulkOutcome",
    "SalesManagementHook",
    "SsmApiError",
    "SsmSettings",
    "WriteOutcomeUnknown",
    "api_base_url",
]

_ENTITY_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")


class SalesManagementHook(BaseHook):
    """Talk to the Sage Sales Management API v4 (or its simulator) through an Airflow connection.

    The rate limit is the key's, not the task's: every process of the machine calling with the same key draws from
    one token bucket, kept in a file in the extra ``rate_limit_folder`` (default: the machine's temporary folder; a
    folder several hosts mount shares it between them too).

    Args:
        ssm_conn_id: the connection id; host = API base URL, login/password = public/private API key.
        requests_per_second: the key's rate limit, shared by its callers (extra ``requests_per_second``,
            default 4.0, the smaller plan); 0 disables it.
        page_size: records per list page (extra ``page_size``, default 1000, the API maximum).
        timeout: seconds to wait for a response (extra ``timeout``, default 60).
        max_retries: retries of a transient failure (extra ``max_retries``, default 6).
        parallel_calls: bulk create calls a load keeps in flight at once (extra ``parallel_calls``, default 4, at
            most 8): the rate limit still paces them; a call's network and server time overlaps the next one's.
        backoff_base: the first backoff ceiling in seconds (full jitter); small values keep tests fast.
        backoff_max: the largest backoff ceiling in seconds.
        retry_after_max: the longest ``Retry-After`` honoured, in seconds.
        adapter: a ``requests`` transport adapter mounted on the session (tests fake the transport with it).
        precedence: this caller's turn in the key's shared bucket (:data:`~sage_sync.hooks.ratelimit.Precedence`):
            the load of an entity others wait for ``lead``, of one nothing waits for ``yield``, every other
            caller ``share`` (the default).

    Example::

        hook = SalesManagementHook()
        for account in hook.iter_records("accounts", where=where_gt("dateUpdated", since)):
            ...
        outcomes = hook.bulk_create("accounts", [{"name": "ACME", "branchId": 1, "salesRepId1": 2,
                                                  "extId": "CACME"}])
    """

    conn_name_attr = "ssm_conn_id"
    default_conn_name = "ssm_default"
    conn_type = "sage_ssm"  # the form of provider_info.py; an "http" connection works too
    hook_name = "Sage Sales Management (API v4)"

    DEFAULT_REQUESTS_PER_SECOND: ClassVar[float] = 4.0
    DEFAULT_PAGE_SIZE: ClassVar[int] = 1000
    DEFAULT_TIMEOUT: ClassVar[float] = 60.0
    DEFAULT_MAX_RETRIES: ClassVar[int] = 6
    DEFAULT_PARALLEL_CALLS: ClassVar[int] = 4
    MAX_PARALLEL_CALLS: ClassVar[int] = 8
    MAX_PAGE_SIZE: ClassVar[int] = 1000
    BULK_LIMIT: ClassVar[int] = 200
    #: The longest URL-encoded ``where`` a lookup sends; real gateways refuse URLs beyond a few KB.
    MAX_WHERE_URL_CHARS: ClassVar[int] = 1800

    def __init__(
        self,
        ssm_conn_id: str = default_conn_name,
        *,
        requests_per_second: float | None = None,
        page_size: int | None = None,
        timeout: float | None = None,
        max_retries: int | None = None,
        parallel_calls: int | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        retry_after_max: float = 60.0,
        adapter: BaseAdapter | None = None,
        precedence: Precedence = "share",
    ) -> None:
        super().__init__()
        self.ssm_conn_id = ssm_conn_id
        self.precedence: Precedence = precedence
        self._adapter = adapter
        self._overrides: dict[str, Any] = {
            "requests_per_second": requests_per_second,
            "page_size": page_size,
            "timeout": timeout,
            "max_retries": max_retries,
            "parallel_calls": parallel_calls,
        }
        self._backoff = (backoff_base, backoff_max, retry_after_max)
        self._lock = threading.RLock()
        self._session: requests.Session | None = None
        self._transport: SsmTransport | None = None
        self._keys: tuple[str, str] | None = None
        self._secrets = HookSecrets()
        self.calls = ApiCallCounts()

    # ------------------------------------------------------------------------------------ configuration

    @cached_property
    def settings(self) -> SsmSettings:
        """Settings resolved from the constructor, the connection and the defaults (read once, lazily)."""
        conn = self.get_connection(self.ssm_conn_id)
        cid = self.ssm_conn_id
        if not conn.login or not conn.password:
            raise ConfigurationError(
                f"connection {cid!r}: login (public API key) and password (private API key) are required"
            )
        self._keys = (conn.login, conn.password)
        self._secrets.register(conn.login)
        self._secrets.register(conn.password)
        try:
            base_url = api_base_url(conn.host or "", conn.schema, conn.port)
        except ValueError as exc:
            raise ConfigurationError(f"connection {cid!r}: {exc}") from None
        extra = conn.extra_dejson if isinstance(conn.extra_dejson, dict) else {}

        def pick(name: str, default: Any, *, integer: bool, minimum: float, maximum: float | None) -> Any:
            # One precedence for every setting: constructor argument > connection extra > default.
            value = self._overrides[name]
            if value is None:
                value = extra.get(name)
            if value is None:
                value = default
            return validated_number(cid, name, value, integer=integer, minimum=minimum, maximum=maximum)

        return SsmSettings(
            base_url=base_url,
            requests_per_second=pick(
                "requests_per_second",
                self.DEFAULT_REQUESTS_PER_SECOND,
                integer=False,
                minimum=0,
                maximum=None,
            ),
            page_size=pick(
                "page_size", self.DEFAULT_PAGE_SIZE, integer=True, minimum=1, maximum=self.MAX_PAGE_SIZE
            ),
            timeout=pick("timeout", self.DEFAULT_TIMEOUT, integer=False, minimum=0.001, maximum=None),
            max_retries=pick("max_retries", self.DEFAULT_MAX_RETRIES, integer=True, minimum=0, maximum=100),
            parallel_calls=pick(
                "parallel_calls",
                self.DEFAULT_PARALLEL_CALLS,
                integer=True,
                minimum=1,
                maximum=self.MAX_PARALLEL_CALLS,
            ),
            rate_limit_folder=str(extra["rate_limit_folder"]) if extra.get("rate_limit_folder") else None,
        )

    @cached_property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy built from ``max_retries`` and the backoff arguments."""
        base, cap, retry_after_max = self._backoff
        return RetryPolicy(
            max_retries=self.settings.max_retries,
            backoff_base=base,
            backoff_max=cap,
            retry_after_max=retry_after_max,
        )

    @cached_property
    def rate_limiter(self) -> TokenBucket:
        """The key's token bucket, shared by every thread and process of the machine that calls with this key.

        Tasks that call the API run at once under a real executor (the ``ssm_api`` pool's slots); each pacing
        itself at the key's rate would together exceed it and spend calls on ``429``. A folder this process cannot
        use (read-only, someone else's) leaves the bucket to this process, with a warning.
        """
        settings = self.settings
        if self._keys is None:  # settings given without a connection: no key to share a bucket by
            return TokenBucket(settings.requests_per_second)
        folder = Path(settings.rate_limit_folder) if settings.rate_limit_folder else None
        shared = shared_bucket_file(settings.base_url, self._keys[0], folder)
        bucket = TokenBucket(settings.requests_per_second, shared=shared, precedence=self.precedence)
        try:
            bucket.open_shared()
        except OSError as exc:
            self.log.warning(
                "SSM rate limit kept to this process: cannot use %s (%s); set the connection's "
                "rate_limit_folder to a folder every worker can write",
                shared.parent,
                exc.strerror or exc,
            )
            return TokenBucket(settings.requests_per_second)
        return bucket

    def get_conn(self) -> requests.Session:
        """Return the hook's ``requests`` session (created once; :meth:`close` ends it).

        The keys are never attached to the session (they travel only in the login body), and the connection's
        extras are settings, not headers. The ``adapter`` given to the constructor serves every URL.
        """
        with self._lock:
            if self._session is None:
                self._session = build_session(self._adapter)
            return self._session

    def close(self) -> None:
        """Close the HTTP session (the session key is forgotten too)."""
        with self._lock:
            if self._session is not None:
                self._session.close()
            self._session = None
            self._transport = None  # its session key goes with it

    # ------------------------------------------------------------------------------------ secrets

    def scrub(self, text: str) -> str:
        """Remove every key, session key and recent upload locator this hook knows from ``text``."""
        return self._secrets.scrub(text)

    # ------------------------------------------------------------------------------------ transport

    @property
    def transport(self) -> SsmTransport:
        """The transport of this hook's session: session key, rate limit, retries (created on first use)."""
        with self._lock:
            if self._transport is None:
                settings = self.settings
                assert self._keys is not None  # settings sets the keys or raises
                self._transport = SsmTransport(
                    session=self.get_conn(),
                    base_url=settings.base_url,
                    timeout=settings.timeout,
                    credentials=self._keys,
                    policy=self.retry_policy,
                    limiter=self.rate_limiter,
                    calls=self.calls,
                    scrub=self.scrub,
                    register_secret=self._secrets.register,
                )
            return self._transport

    @staticmethod
    def _entity(entity: str) -> str:
        """Validate an entity name so it can never reshape the URL path."""
        if not isinstance(entity, str) or not _ENTITY_NAME.match(entity):
            raise ValueError(f"SSM entity name {entity!r} is not a plain identifier")
        return entity

    @staticmethod
    def _record_id(record_id: int, entity: str) -> int:
        if isinstance(record_id, bool) or not isinstance(record_id, int):
            raise ValueError(f"{entity}: record id must be an integer, got {record_id!r}")
        return record_id

    # ------------------------------------------------------------------------------------ lists

    def iter_pages(
        self,
        entity: str,
        where: str | None = None,
        order: str | None = None,
        page_size: int | None = None,
        *,
        prefetch: bool = False,
    ) -> Iterator[list[dict[str, Any]]]:
        """Yield the pages of a list call: ``page`` 0, 1, ... with the page size in the ``Count`` header.

        A page shorter than the page size is the last one; an empty page ends paging too and is not yielded, so
        an empty list yields nothing. Every listing of the hook goes through here. Soft-deleted records are
        included (``"deleted": true``), as the API returns them.

        Args:
            entity: the list, e.g. ``accounts`` or ``users``.
            where: a filter built with :mod:`sage_sync.hooks.where`.
            order: a field to sort by (the API sorts descending).
            page_size: records per page, 1 to 1000 (default: the ``page_size`` setting).
            prefetch: request page N+1 while page N is decoded, so the server's work overlaps the client's.
                It costs one extra call per listing (the page after the last one) and pays off only when the
                rate limit is not the bottleneck (large listings, or the simulator with its limit lifted).

        Raises:
            SsmApiError: e.g. code 901 for a bad ``where``, or a page that is not a JSON array.
        """
        path = f"/{self._entity(entity)}"
        size = self.settings.page_size if page_size is None else page_size
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= self.MAX_PAGE_SIZE:
            raise ValueError(
                f"{entity}: page_size must be an integer from 1 to {self.MAX_PAGE_SIZE}, got {size!r}"
            )
        params: dict[str, Any] = {}
        if where:
            params["where"] = where
        if order:
            params["order"] = order

        def fetch(page: int) -> requests.Response:
            return self.transport.send(
                "GET", path, params={**params, "page": page}, headers={"Count": str(size)}
            )

        def decode(response: requests.Response) -> list[dict[str, Any]]:
            items = decode_json(response, "GET", path)
            if not isinstance(items, list):
                raise SsmApiError(
                    response.status_code, None, "a list call did not answer a JSON array", "GET", path
                )
            return items

        def pages(get: Callable[[int], list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
            page = 0
            while True:
                items = get(page)
                if items:
                    yield items
                if len(items) < size:
                    return
                page += 1

        if not prefetch:
            yield from pages(lambda page: decode(fetch(page)))
            return
        # One worker thread fetches one page ahead; leaving the ``with`` waits for a speculative fetch still in
        # flight, whose result (or error) is then ignored.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ssm-prefetch") as pool:
            ahead: dict[int, Future[requests.Response]] = {}

            def get_ahead(page: int) -> list[dict[str, Any]]:
                current = ahead.pop(page, None) or pool.submit(fetch, page)
                ahead[page + 1] = pool.submit(fetch, page + 1)
                return decode(current.result())

            yield from pages(get_ahead)

    def iter_records(
        self,
        entity: str,
        where: str | None = None,
        order: str | None = None,
        page_size: int | None = None,
        *,
        prefetch: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Yield every record of a list call, page by page (see :meth:`iter_pages` for the arguments)."""
        for page in self.iter_pages(entity, where=where, order=order, page_size=page_size, prefetch=prefetch):
            yield from page

    def list_all(
        self,
        entity: str,
        where: str | None = None,
        order: str | None = None,
        page_size: int | None = None,
        *,
        prefetch: bool = False,
    ) -> list[dict[str, Any]]:
        """Every record of a list call as a list (see :meth:`iter_pages` for the arguments)."""
        return list(
            self.iter_records(entity, where=where, order=order, page_size=page_size, prefetch=prefetch)
        )

    def value_list(self, name: str) -> list[dict[str, Any]]:
        """Every item of a value list (``users``, ``branches``, ``accountStatuses``, ...), deleted ones included."""
        return self.list_all(name)

    def iter_records_in(self, entity: str, field: str, values: Sequence[Literal]) -> Iterator[dict[str, Any]]:
        """Yield the records whose ``field`` is one of ``values``, deleted ones included.

        The values go in batched ``(field = v1 OR field = v2 ...)`` filters, each within
        :attr:`MAX_WHERE_URL_CHARS` once URL-encoded; records come batch by batch, page by page.
        """
        for _, where in where_in_batches(field, values, self.MAX_WHERE_URL_CHARS):
            yield from self.iter_records(entity, where=where)

    def find_by_ext_ids(self, entity: str, ext_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Look records up by ``extId``, at the cost of the cheaper of two ways (C1 adoption).

        One lookup is a batch of ids whose ``where`` stays within a safe URL length (some 50 ids). When the ids
        need several batches, the records that carry an ``extId`` are listed instead, 1000 a page, as long as the
        listing costs fewer calls than the lookups would; a tenant bigger than that stops the listing and the ids
        are looked up (at worst twice the lookups' calls). So an empty tenant costs one call, a first load of 100,000
        keys onto a tenant of a few thousand records a few calls, and a few new keys one lookup.

        Returns:
            ``extId`` → record. When several records share an ``extId``, a live one wins over a deleted one,
            then the lowest id.
        """
        wanted = list(dict.fromkeys(e for e in ext_ids if e is not None))
        if not wanted:
            return {}
        found: dict[str, dict[str, Any]] = {}

        def keep(record: dict[str, Any]) -> None:
            ext = record.get("extId")
            if ext is None:
                return
            current = found.get(ext)
            if current is None or _preferred(record, current):
                found[ext] = record

        batches = [where for _, where in where_in_batches("extId", wanted, self.MAX_WHERE_URL_CHARS)]
        if len(batches) > 1:
            wanted_set = set(wanted)
            listed_all = False
            for number, page in enumerate(
                self.iter_pages(entity, where=where_is_not_null("extId"), page_size=self.MAX_PAGE_SIZE), 1
            ):
                for record in page:
                    if record.get("extId") in wanted_set:
                        keep(record)
                if len(page) < self.MAX_PAGE_SIZE:
                    listed_all = True
                    break
                if number >= len(batches):
                    break  # the tenant is bigger than the lookups are long: look the rest up
            else:
                listed_all = True  # an empty page (or none) ended the listing
            if listed_all:
                return found
        # Every id again, even those a partial listing found: a later page may hold a second record with the same
        # extId, and the lookups see all of them.
        for where in batches:
            for record in self.iter_records(entity, where=where):
                keep(record)
        return found

    # ------------------------------------------------------------------------------------ single records

    def get(self, entity: str, record_id: int) -> dict[str, Any]:
        """``GET /<entity>/{id}`` (soft-deleted records too); unknown id → SsmApiError 400 code 910."""
        path = f"/{self._entity(entity)}/{self._record_id(record_id, entity)}"
        result = decode_json(self.transport.send("GET", path), "GET", path)
        if not isinstance(result, dict):
            raise SsmApiError(200, None, "expected a JSON object", "GET", path)
        return result

    def create(self, entity: str, data: Mapping[str, Any]) -> int:
        """``POST /<entity>``; returns the new id.

        If the response is lost (dropped connection, timeout, 5xx) and ``data`` has an ``extId``, the hook looks
        the record up by ``extId`` before re-sending, so the record is created once. Without an ``extId`` the
        outcome cannot be checked and :class:`WriteOutcomeUnknown` is raised.
        """
        outcomes: list[BulkOutcome | None] = [None]
        self._entity(entity)
        self._creates.send(entity, [0], [data], ["0"], outcomes, single=True)
        outcome = outcomes[0]
        assert outcome is not None  # send fills every index it is given, or raises
        if outcome.id is None:
            raise WriteOutcomeUnknown(f"SSM API POST /{entity}: {outcome.message}")
        return outcome.id

    def update(self, entity: str, record_id: int, data: Mapping[str, Any]) -> None:
        """``PUT /<entity>/{id}``, a partial update: send only the fields to change."""
        path = f"/{self._entity(entity)}/{self._record_id(record_id, entity)}"
        # A partial update with the same values is idempotent, so it is retried like a read.
        self.transport.send("PUT", path, json_body=dict(data))

    def delete(self, entity: str, record_id: int) -> None:
        """``DELETE /<entity>/{id}``, a soft delete (deleting twice is harmless)."""
        path = f"/{self._entity(entity)}/{self._record_id(record_id, entity)}"
        self.transport.send("DELETE", path)

    # ------------------------------------------------------------------------------------ bulk

    @property
    def _creates(self) -> ExactlyOnceCreates:
        return ExactlyOnceCreates(self.transport, self.find_by_ext_ids, self.retry_policy, self.scrub)

    def bulk_limit(self, entity: str) -> int:
        """The API's maximum items per bulk call on the endpoint ``entity``.

        The entity registry's limit for a synced endpoint (products 100), else :attr:`BULK_LIMIT`.
        """
        return registry().bulk_limits_by_endpoint().get(entity, self.BULK_LIMIT)

    def _chunks(self, entity: str, count: int, chunk_size: int | None) -> Iterator[list[int]]:
        """The item indexes of each bulk call: ``chunk_size`` per call, never more than the API's maximum."""
        limit = self.bulk_limit(entity)
        if chunk_size is not None:
            if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
                raise ValueError(f"{entity}: chunk_size must be a positive integer, got {chunk_size!r}")
            # The contract's cap wins over a larger request: the API would refuse the whole call.
            limit = min(limit, chunk_size)
        for start in range(0, count, limit):
            yield list(range(start, min(start + limit, count)))

    def bulk_create(
        self,
        entity: str,
        items: Sequence[Mapping[str, Any]],
        *,
        guids: Sequence[str] | None = None,
        chunk_size: int | None = None,
    ) -> list[BulkOutcome]:
        """Create records with ``POST /<entity>/bulk`` in chunks; one outcome per item, in order.

        Items fail one by one (status 400/403 with the API's message); the others are applied. A chunk whose
        response is lost is reconciled by ``extId`` before anything is re-sent (ADR 0003), so items with an
        ``extId`` are created exactly once; items without one get status 0 ("outcome unknown").

        Args:
            entity: e.g. ``accounts``.
            items: the records' data, as for a single create.
            guids: the client's key of each item (default: its position as text).
            chunk_size: items per call (default and ceiling: :meth:`bulk_limit`, the API's maximum).
        """
        self._entity(entity)
        keys = [str(g) for g in guids] if guids is not None else [str(i) for i in range(len(items))]
        if len(keys) != len(items):
            raise ValueError(f"{entity}: {len(keys)} guids for {len(items)} items")
        outcomes: list[BulkOutcome | None] = [None] * len(items)
        creates = self._creates
        for indexes in self._chunks(entity, len(items), chunk_size):
            creates.send(entity, indexes, items, keys, outcomes, single=False)
        return [o for o in outcomes if o is not None]

    def bulk_update(
        self, entity: str, items: Sequence[Mapping[str, Any]], *, chunk_size: int | None = None
    ) -> list[BulkOutcome]:
        """Partially update records with ``PUT /<entity>/bulk`` in chunks.

        Args:
            entity: e.g. ``accounts``.
            items: ``{"id": <record id>, "data": {<changed fields>}}``, optionally with ``"guid"`` (default:
                the position as text).
            chunk_size: items per call (default and ceiling: :meth:`bulk_limit`, the API's maximum).

        Returns:
            One outcome per item, in order. Partial updates are idempotent, so lost responses are re-sent.
        """
        path = f"/{self._entity(entity)}/bulk"
        outcomes: list[BulkOutcome | None] = [None] * len(items)
        keys: list[str] = []
        body_items: list[dict[str, Any]] = []
        for position, item in enumerate(items):
            if "id" not in item or "data" not in item:
                raise ValueError(f"{entity} bulk update item {position}: expected {{'id', 'data'}}")
            key = str(item.get("guid", position))
            keys.append(key)
            body_items.append(
                {"guid": key, "id": self._record_id(item["id"], entity), "data": dict(item["data"])}
            )
        for sent in self._chunks(entity, len(body_items), chunk_size):
            response = self.transport.send("PUT", path, json_body=[body_items[i] for i in sent])
            fill_outcomes(response, path, sent, keys, outcomes, self.scrub)
        return [o for o in outcomes if o is not None]

    # ------------------------------------------------------------------------------------ metadata

    def custom_fields(self, entity_code: str) -> list[dict[str, Any]]:
        """The tenant's ``Z_*`` custom fields of a table, via ``POST /procedure/zapier_schema``.

        Args:
            entity_code: ``empresas``, ``contactos``, ``tblSalesOrders``, ``tblSalesOrdersLines`` or ``articulos``.
        """
        path = "/procedure/zapier_schema"
        # A read in POST clothing: safe to retry, counted as a read.
        response = self.transport.send("POST", path, json_body={"entity": entity_code}, counter="reads")
        items = decode_json(response, "POST", path)
        if not isinstance(items, list):
            raise SsmApiError(
                response.status_code, None, "zapier_schema did not answer a JSON array", "POST", path
            )
        return [i for i in items if isinstance(i, dict) and str(i.get("Key", "")).startswith("Z_")]

    # ------------------------------------------------------------------------------------ documents

    def upload_product_picture(self, product_id: int, name: str, data: bytes) -> str:
        """Attach a picture to a product: ``POST /products/{id}/documents``, then ``PUT`` the bytes to the locator.

        Returns:
            The document id.

        Raises:
            WriteOutcomeUnknown: the document creation's response was lost; nothing is re-sent (a later run sees
                the document in :meth:`list_product_documents`).
        """
        pid = self._record_id(product_id, "products")
        path = f"/products/{pid}/documents"
        response = self.transport.send(
            "POST", path, json_body={"name": name, "isCarrousel": True, "folderId": "-1"}, idempotent=False
        )
        payload = decode_json(response, "POST", path)
        doc_id = payload.get("id") if isinstance(payload, dict) else None
        locator = payload.get("locator") if isinstance(payload, dict) else None
        if doc_id is None or not isinstance(locator, str) or not locator:
            raise SsmApiError(
                response.status_code, None, "document creation answered no id or locator", "POST", path
            )
        target = locator if "://" in locator else urljoin(self.settings.base_url + "/", locator)
        # The locator authorises the upload by itself, like a pre-signed URL: it is kept out of every message and
        # log (ssm_secrets), and never gets the session key (it may point outside the API host).
        with self._secrets.upload_locator(locator, target):
            self.transport.send(
                "PUT",
                f"/products/{pid}/documents/{doc_id} (upload)",
                url=target,
                data=bytes(data),
                headers={"Content-Type": "application/octet-stream"},
                authenticated=False,
                paced=False,  # the locator is not an API call: it takes no permit of the key's rate limit
            )
        return str(doc_id)

    def list_product_documents(self, product_id: int) -> list[dict[str, Any]]:
        """``GET /products/{id}/documents``."""
        path = f"/products/{self._record_id(product_id, 'products')}/documents"
        result = decode_json(self.transport.send("GET", path), "GET", path)
        if not isinstance(result, list):
            raise SsmApiError(200, None, "expected a JSON array", "GET", path)
        return result

    def delete_product_document(self, product_id: int, doc_id: str) -> None:
        """``DELETE /products/{id}/documents/{docId}``."""
        pid = self._record_id(product_id, "products")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", str(doc_id)):
            raise ValueError(f"products {pid}: document id {doc_id!r} is not a plain identifier")
        self.transport.send("DELETE", f"/products/{pid}/documents/{doc_id}")

    # ------------------------------------------------------------------------------------ connection test

    def test_connection(self) -> tuple[bool, str]:
        """Log in and read one user; returns (ok, message) and never includes keys or tokens."""
        try:
            base_url = self.settings.base_url
            self.transport.session_key()
            self.transport.send("GET", "/users", params={"page": 0}, headers={"Count": "1"})
        except Exception as exc:  # the UI wants a message, not a traceback
            return False, self.scrub(f"{type(exc).__name__}: {exc}")
        return True, f"Connected to the SSM API at {base_url}"


def _preferred(candidate: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """Whether ``candidate`` should replace ``current`` for the same extId: live beats deleted, then lowest id."""
    cand_live, cur_live = not candidate.get("deleted"), not current.get("deleted")
    if cand_live != cur_live:
        return cand_live
    return (as_id(candidate.get("id")) or 0) < (as_id(current.get("id")) or 0)
