"""The simulator's HTTP application: a plain ASGI callable served by uvicorn.

Routing, authentication, rate limiting, fault injection and statistics live here; record semantics live in
:mod:`sage_sync.simulators.ssm.records`. A plain ASGI callable (rather than a framework router) keeps the
per-request overhead low enough for the benchmark targets, and lets a "dropped connection" fault abort the
TCP connection without sending a response.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import secrets
import sys
import traceback
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from sage_sync.errors import ConfigurationError
from sage_sync.simulators.ssm.entities import (
    ALL_ENTITIES,
    CUSTOM_FIELDS,
    CUSTOM_TABLES,
    RECORD_ENTITIES,
    VALUE_LISTS,
)
from sage_sync.simulators.ssm.records import CODE_NOT_FOUND, ApiError, Clock, Records
from sage_sync.simulators.ssm.runtime import Faults, RateLimiter, Sessions, Stats
from sage_sync.simulators.ssm.seed import ApiKey, derive_keys, new_value_item, seed_tenant, users_summary
from sage_sync.simulators.ssm.store import Document, Store

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

API = "/api/v4"
UPLOAD = "/upload/"
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_ENTITY_BY_LOWER = {name.lower(): name for name in ALL_ENTITIES}


@dataclass
class Response:
    """A response to send: status, body bytes and extra headers."""

    status: int
    body: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    content_type: bytes = b"application/json"


def json_response(status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> Response:
    """A JSON response."""
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return Response(status, body, headers or [])


def error_response(
    status: int, message: str, code: int | None = None, headers: list[tuple[bytes, bytes]] | None = None
) -> Response:
    """The contract's error body ``{"statusCode", "code", "message"}``."""
    return json_response(status, {"statusCode": status, "code": code, "message": message}, headers)


class _NonFinite(str):
    """Marks a ``NaN`` / ``Infinity`` / ``-Infinity`` constant met while parsing a request body."""


def _find_non_finite(data: Any, path: str) -> tuple[str, str] | None:
    """The path (``name``, ``[2].name``) and spelling of the first non-finite constant in ``data``, if any."""
    if isinstance(data, _NonFinite):
        return path, str(data)
    if isinstance(data, dict):
        for key, value in data.items():
            found = _find_non_finite(value, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found = _find_non_finite(value, f"{path}[{index}]")
            if found is not None:
                return found
    return None


@dataclass
class Request:
    """What the handlers need from an HTTP request."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (400 when it is not)."""
        if not self.body:
            raise ApiError(400, "the request body is empty; JSON expected")
        try:
            data = json.loads(self.body, parse_constant=_NonFinite)
            bad = _find_non_finite(data, "")
        except RecursionError:
            raise ApiError(400, "the request body is nested too deeply") from None
        except ValueError as exc:
            raise ApiError(400, f"the request body is not valid JSON: {exc}") from exc
        if bad is not None:
            where, constant = bad
            # Python's json accepts NaN/Infinity, but they are not JSON: stored, they would make every later
            # answer invalid JSON for strict clients.
            raise ApiError(400, f"field {where or 'body'!r} is {constant}; JSON numbers must be finite")
        return data

    def param(self, name: str) -> str | None:
        """A query parameter's last value."""
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass
class Settings:
    """Start-up options of one simulator process."""

    db_path: Path
    admin: bool = False
    rate_limit: float = 13.0
    token_ttl: float = 3600.0
    seed: int = 0


class Simulator:
    """The ASGI application and the tenant it serves."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clock = Clock()
        self.store = Store(settings.db_path)
        self.records = Records(self.store, self.clock)
        self.integration_key, self.user_key = derive_keys(settings.seed)
        self.keys_by_public = {k.public_key: k for k in (self.integration_key, self.user_key)}
        self.sessions = Sessions(settings.token_ttl)
        self.limiter = RateLimiter(settings.rate_limit)
        self.faults = Faults()
        self.stats = Stats()
        # Custom fields this tenant does not declare (``/__sim/custom_fields``), by entity: a misconfigured tenant.
        self.undeclared: dict[str, set[str]] = {}
        self.records.undeclared = self.undeclared
        if self.store.is_empty:
            seed_tenant(self.store, self.clock.stamp())
            self.store.set_meta("seed", str(settings.seed))
        else:
            stored = self.store.get_meta("seed")
            if stored is not None and stored != str(settings.seed):
                # The tenant's records belong to the keys of the seed that built it; serving them under another
                # seed's keys would silently hand out keys nobody else knows.
                self.store.close()
                raise ConfigurationError(
                    f"{settings.db_path} was created with --seed {stored}, not --seed {settings.seed}: "
                    f"start with --seed {stored}, or use another --db for a new tenant"
                )

    # ------------------------------------------------------------------------------------ ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection event."""
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":  # pragma: no cover - websockets are not part of the API
            return
        body = bytearray()
        while True:
            message = await receive()
            body.extend(message.get("body", b""))
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request = Request(
            method=scope["method"],
            path=scope["path"],
            query=parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True),
            headers=headers,
            body=bytes(body),
        )
        if request.path.startswith(API + "/") or request.path == API:
            response = await self._api(request, send)
            if response is None:
                return  # the connection was dropped on purpose
        elif request.path.startswith("/__sim/") and self.settings.admin:
            response = self._guard(lambda: self._admin(request))
        elif request.path.startswith(UPLOAD):
            response = self._guard(lambda: self._upload(request))
        else:
            response = error_response(404, f"no route for {request.method} {request.path}")
        await self._send(send, response)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    @staticmethod
    async def _send(send: Send, response: Response) -> None:
        headers = [
            (b"content-type", response.content_type),
            (b"content-length", str(len(response.body)).encode()),
        ]
        headers.extend(response.headers)
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    def _guard(self, handler: Callable[[], Response]) -> Response:
        """Run a handler, turning ApiError into its body and anything else into a logged 500."""
        try:
            response = handler()
            self.store.commit()
            return response
        except ApiError as exc:
            self.store.commit()  # bulk calls keep the items that succeeded
            return error_response(exc.status, exc.message, exc.code)
        except Exception as exc:  # a simulator bug must still answer with the contract's error body
            self.store.commit()  # memory is the truth: keep the file consistent with what clients will read
            traceback.print_exc(file=sys.stderr)
            return error_response(500, f"internal simulator error: {type(exc).__name__}")

    # ------------------------------------------------------------------------------------ /api/v4

    async def _api(self, request: Request, send: Send) -> Response | None:
        route, handler = self._route(request)
        is_login = route == f"POST {API}/login"
        outcome = self.faults.decide()
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        if outcome == "drop":
            self.stats.record(request.method, route, "dropped", login=is_login)
            if self._abort_connection(send):
                return None
            outcome = "500"  # no transport to abort: degrade to an unapplied 500
        if outcome in ("503", "500", "429"):
            status = int(outcome)
            headers = [(b"retry-after", b"1")] if status == 429 else None
            response = error_response(status, f"injected fault: {status}", None, headers)
        else:
            response = self._guard(lambda: handler(request))  # applied and committed before any fault below
            if outcome == "500_after":
                response = error_response(500, "injected fault: 500 after the request was applied")
            elif outcome == "drop_after":
                # Counted apart from "dropped" (which never reached the handler), so tests can see it happened.
                self.stats.record(request.method, route, "dropped_after", login=is_login)
                if self._abort_connection(send):
                    return None
                response = error_response(500, "injected fault: 500 after the request was applied")
        if outcome not in ("drop", "drop_after"):
            self.stats.record(request.method, route, str(response.status), login=is_login)
        return response

    @staticmethod
    def _abort_connection(send: Send) -> bool:
        """Close the TCP connection without a response (uvicorn's send is bound to its request cycle)."""
        cycle = getattr(send, "__self__", None)
        transport = getattr(cycle, "transport", None)
        if transport is None:
            return False
        cycle.disconnected = True  # type: ignore[union-attr]  # stop uvicorn from answering 500 afterwards
        transport.abort()
        return True

    def _route(self, request: Request) -> tuple[str, Callable[[Request], Response]]:
        """Match a path under /api/v4 to (stats route template, handler)."""
        method = request.method
        segments = [s for s in request.path[len(API) :].split("/") if s]

        def allow(
            template: str, table: dict[str, Callable[[Request], Response]]
        ) -> tuple[str, Callable[[Request], Response]]:
            handler = table.get(method)
            if handler is None:
                allowed = ", ".join(sorted(table))
                return f"{method} {API}{template}", lambda _r: error_response(
                    405, f"{method} is not allowed on {API}{template}; use {allowed}"
                )
            return f"{method} {API}{template}", handler

        if segments == ["login"]:
            return allow("/login", {"POST": self._login})
        if segments == ["procedure", "zapier_schema"]:
            return allow("/procedure/zapier_schema", {"POST": self._authed(self._zapier_schema)})
        entity = _ENTITY_BY_LOWER.get(segments[0].lower()) if segments else None
        if entity is None:
            return f"{method} {request.path}", lambda _r: error_response(
                404, f"no route for {method} {request.path}"
            )
        rest = segments[1:]
        if not rest:
            table = {"GET": self._authed(lambda r, a: self._list(r, entity))}
            if entity in RECORD_ENTITIES or ALL_ENTITIES[entity].writable_list:
                table["POST"] = self._authed(lambda r, a: self._create(r, a, entity))
            return allow(f"/{entity}", table)
        if rest == ["bulk"] and entity in RECORD_ENTITIES:
            return allow(
                f"/{entity}/bulk",
                {
                    "POST": self._authed(lambda r, a: self._bulk_create(r, a, entity)),
                    "PUT": self._authed(lambda r, a: self._bulk_update(r, a, entity)),
                },
            )
        if len(rest) == 1:
            rid_text = rest[0]
            table = {"GET": self._authed(lambda r, a: self._get(entity, rid_text))}
            if entity in RECORD_ENTITIES:
                table["PUT"] = self._authed(lambda r, a: self._update(r, a, entity, rid_text))
                table["DELETE"] = self._authed(lambda r, a: self._delete(a, entity, rid_text))
            return allow(f"/{entity}/{{id}}", table)
        if entity == "products" and len(rest) >= 2 and rest[1] == "documents":
            pid_text = rest[0]
            if len(rest) == 2:
                return allow(
                    "/products/{id}/documents",
                    {
                        "GET": self._authed(lambda r, a: self._list_documents(pid_text)),
                        "POST": self._authed(lambda r, a: self._add_document(r, pid_text)),
                    },
                )
            if len(rest) == 3:
                doc_id = rest[2]
                return allow(
                    "/products/{id}/documents/{docId}",
                    {"DELETE": self._authed(lambda r, a: self._delete_document(a, pid_text, doc_id))},
                )
        return f"{method} {request.path}", lambda _r: error_response(
            404, f"no route for {method} {request.path}"
        )

    def _authed(self, handler: Callable[[Request, ApiKey], Response]) -> Callable[[Request], Response]:
        """Wrap a handler with session check (401) and the key's rate limit (429)."""

        def wrapped(request: Request) -> Response:
            key = self.sessions.resolve(request.headers.get("x-session-key"))
            if key is None:
                return error_response(401, "missing, unknown or expired X-Session-Key; log in again")
            limited = self._rate_limited(key)
            if limited is not None:
                return limited
            return handler(request, key)

        return wrapped

    def _rate_limited(self, key: ApiKey) -> Response | None:
        wait = self.limiter.acquire(key.public_key)
        if wait <= 0:
            return None
        seconds = max(1, math.ceil(wait))
        return error_response(
            429,
            f"rate limit of {self.limiter.rate:g} requests/s exceeded for this API key; retry after {seconds} s",
            None,
            [(b"retry-after", str(seconds).encode())],
        )

    # ------------------------------------------------------------------------------------ handlers

    def _login(self, request: Request) -> Response:
        body = request.json()
        if not isinstance(body, dict):
            raise ApiError(400, 'login body must be {"username": <public key>, "password": <private key>}')
        key = self.keys_by_public.get(str(body.get("username")))
        if key is None or not secrets.compare_digest(str(body.get("password", "")), key.private_key):
            return error_response(401, "unknown public key or wrong private key")
        limited = self._rate_limited(key)
        if limited is not None:
            return limited
        return json_response(200, {"token": self.sessions.issue(key)})

    def _zapier_schema(self, request: Request, key: ApiKey) -> Response:
        body = request.json()
        table = body.get("entity") if isinstance(body, dict) else None
        entity = CUSTOM_TABLES.get(str(table))
        if entity is None:
            names = ", ".join(sorted(CUSTOM_TABLES))
            raise ApiError(400, f"unknown entity {table!r} for zapier_schema; expected one of {names}")
        items = [
            {
                "Key": f.name,
                "Label": f.name[2:],
                "Help_Text": "",
                "Required": False,
                "Required_Via_Api": False,
                "Type": f.type.value,
                "Choices": None,
                "List": False,
            }
            for f in CUSTOM_FIELDS[entity]
            if f.name not in self.undeclared.get(entity, ())
        ]
        return json_response(200, items)

    def _page_size(self, request: Request) -> int:
        raw = request.headers.get("count") or request.headers.get("x-fm-entity-count")
        if raw is None:
            return DEFAULT_PAGE_SIZE
        try:
            size = int(raw)
        except ValueError:
            raise ApiError(400, f"page size header Count must be an integer, got {raw!r}") from None
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ApiError(400, f"page size {size} is out of range; the limit is 1..{MAX_PAGE_SIZE}")
        return size

    def _list(self, request: Request, entity: str) -> Response:
        size = self._page_size(request)
        raw_page = request.param("page") or "0"
        try:
            page = int(raw_page)
        except ValueError:
            raise ApiError(400, f"page must be a 0-based integer, got {raw_page!r}") from None
        if page < 0:
            raise ApiError(400, f"page must be 0 or more, got {page}")
        items = self.records.list_page_json(
            entity, page, size, request.param("where"), request.param("order")
        )
        return Response(200, ("[" + ",".join(items) + "]").encode())

    @staticmethod
    def _id(text: str, entity: str) -> int:
        try:
            return int(text)
        except ValueError:
            raise ApiError(400, f"{entity} id must be an integer, got {text!r}", CODE_NOT_FOUND) from None

    def _get(self, entity: str, rid_text: str) -> Response:
        rec = self.records.get(entity, self._id(rid_text, entity))
        return json_response(200, self.records.serialise(entity, rec))

    def _create(self, request: Request, key: ApiKey, entity: str) -> Response:
        data = request.json()
        if entity in RECORD_ENTITIES:
            rid = self.records.create(entity, data, key.user_id)
        else:
            rid = self._extend_value_list(entity, data, key)
        return json_response(200, {"Message": "entity created", "id": rid})

    def _extend_value_list(self, entity: str, data: Any, key: ApiKey) -> int:
        if not isinstance(data, dict):
            raise ApiError(400, f"{entity}: the body must be a JSON object")
        labels = {k: v for k, v in data.items() if k.startswith("description")}
        unknown = set(data) - set(labels)
        if unknown:
            raise ApiError(400, f"{entity}: unknown field(s) {', '.join(sorted(unknown))}")
        bad = [k for k, v in labels.items() if k not in VALUE_LISTS[entity].fields or not isinstance(v, str)]
        if bad:
            raise ApiError(400, f"{entity}: invalid label field(s) {', '.join(sorted(bad))}")
        fr = labels.get("descriptionFR") or labels.get("description")
        if not fr:
            raise ApiError(400, f"{entity}: field 'descriptionFR' is required on create")
        en = labels.get("descriptionEN") or fr
        full = {f"description{lang}": en for lang in ("ES", "EN", "US", "IT", "DE", "BR", "DK", "PT", "RU")}
        full.update(labels)
        full["descriptionFR"] = fr
        full["description"] = fr
        rid = new_value_item(self.store, entity, full, {}, self.clock.stamp(), key.user_id)
        self.records.records_written += 1
        return rid

    def _update(self, request: Request, key: ApiKey, entity: str, rid_text: str) -> Response:
        data = request.json()
        self.records.update(entity, self._id(rid_text, entity), data, key.user_id, key.integration)
        return json_response(200, {"Message": "entity updated"})

    def _delete(self, key: ApiKey, entity: str, rid_text: str) -> Response:
        self.records.delete(entity, self._id(rid_text, entity), key.user_id, key.integration)
        return json_response(200, {"Message": "entity deleted"})

    def _bulk_items(self, request: Request, entity: str) -> list[Any]:
        items = request.json()
        if not isinstance(items, list):
            raise ApiError(400, f"{entity}/bulk: the body must be a JSON array of items")
        limit = RECORD_ENTITIES[entity].bulk_limit
        if len(items) > limit:
            raise ApiError(400, f"{entity}/bulk: {len(items)} items sent; the limit is {limit} per call")
        return items

    def _bulk_create(self, request: Request, key: ApiKey, entity: str) -> Response:
        results = []
        for index, item in enumerate(self._bulk_items(request, entity)):
            guid = item.get("guid") if isinstance(item, dict) else None
            try:
                if not isinstance(item, dict) or "data" not in item:
                    raise ApiError(400, f'{entity}/bulk item {index}: expected {{"guid", "data"}}')
                rid = self.records.create(entity, item["data"], key.user_id)
                results.append({"guid": guid, "id": rid, "status": 200, "message": "entity created"})
            except ApiError as exc:
                results.append({"guid": guid, "id": None, "status": exc.status, "message": exc.message})
        return json_response(200, results)

    def _bulk_update(self, request: Request, key: ApiKey, entity: str) -> Response:
        results = []
        for index, item in enumerate(self._bulk_items(request, entity)):
            guid = item.get("guid") if isinstance(item, dict) else None
            rid = item.get("id") if isinstance(item, dict) else None
            try:
                if not isinstance(item, dict) or "data" not in item:
                    raise ApiError(400, f'{entity}/bulk item {index}: expected {{"guid", "id", "data"}}')
                if isinstance(rid, bool) or not isinstance(rid, int):
                    raise ApiError(
                        400,
                        f"{entity}/bulk item {index}: 'id' must be an integer, got {rid!r}",
                        CODE_NOT_FOUND,
                    )
                self.records.update(entity, rid, item["data"], key.user_id, key.integration)
                results.append({"guid": guid, "id": rid, "status": 200, "message": "entity updated"})
            except ApiError as exc:
                results.append({"guid": guid, "id": rid, "status": exc.status, "message": exc.message})
        return json_response(200, results)

    # ------------------------------------------------------------------------------------ documents

    def _product(self, pid_text: str) -> int:
        pid = self._id(pid_text, "products")
        self.records.get("products", pid)
        return pid

    def _list_documents(self, pid_text: str) -> Response:
        pid = self._product(pid_text)
        docs = sorted(
            (d for d in self.store.documents.values() if d.product_id == pid), key=lambda d: int(d.id)
        )
        return json_response(200, [d.to_json() for d in docs])

    def _add_document(self, request: Request, pid_text: str) -> Response:
        pid = self._product(pid_text)
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
            raise ApiError(400, f"products {pid} documents: field 'name' (text) is required")
        carrousel = body.get("isCarrousel", False)
        if not isinstance(carrousel, bool):
            raise ApiError(400, f"products {pid} documents: field 'isCarrousel' must be true or false")
        folder = body.get("folderId")
        doc_id = str(self.store.new_document_id())
        doc = Document(
            id=doc_id,
            product_id=pid,
            name=body["name"],
            is_carrousel=carrousel,
            folder_id=None if folder is None else str(folder),
            secret=secrets.token_urlsafe(24),
            size=None,
            sha256=None,
            date_created=self.clock.stamp(),
        )
        self.store.add_document(doc)
        host = request.headers.get("host", "127.0.0.1")
        return json_response(200, {"id": doc_id, "locator": f"http://{host}{UPLOAD}{doc.secret}"})

    def _delete_document(self, key: ApiKey, pid_text: str, doc_id: str) -> Response:
        pid = self._product(pid_text)
        doc = self.store.documents.get(doc_id)
        if doc is None or doc.product_id != pid:
            raise ApiError(400, f"document {doc_id} of products {pid} does not exist", CODE_NOT_FOUND)
        self.store.delete_document(doc_id)
        return json_response(200, {"Message": "entity deleted"})

    def _upload(self, request: Request) -> Response:
        """``PUT <locator>``: the locator's secret authorises the upload, like a pre-signed URL."""
        secret = request.path[len(UPLOAD) :]
        doc = next((d for d in self.store.documents.values() if d.secret == secret), None)
        if doc is None:
            return error_response(404, "unknown or expired upload locator")
        if request.method == "PUT":
            self.store.upload_document(doc, request.body, hashlib.sha256(request.body).hexdigest())
            return Response(200, b"", content_type=b"text/plain")
        if request.method == "GET":
            content = self.store.document_content(doc.id) or b""
            return Response(200, content, content_type=b"application/octet-stream")
        return error_response(405, f"{request.method} is not allowed on an upload locator; use PUT")

    # ------------------------------------------------------------------------------------ /__sim

    def keys_json(self) -> dict[str, Any]:
        """The ``/__sim/keys`` document."""
        return {
            "integration": self.integration_key.to_json(),
            "user": self.user_key.to_json(),
            "users": users_summary(),
            "admin_user_id": self.integration_key.user_id,
        }

    def stats_json(self) -> dict[str, Any]:
        """The ``/__sim/stats`` document."""
        s = self.stats
        return {
            "total": s.total,
            "by_route": dict(sorted(s.by_route.items())),
            "by_status": dict(sorted(s.by_status.items())),
            "reads": s.reads,
            "writes": s.writes,
            "logins": s.logins,
            "served_429": s.served_429,
            "records_written": self.records.records_written - s.records_written_base,
            "duplicate_ext_ids": self.records.duplicate_ext_ids(),
        }

    def reset(self) -> None:
        """Wipe every record and re-seed; faults, clock offset, token lifetime and counters go back to start-up."""
        self.store.wipe()
        self.records.clear_caches()
        self.clock.set_offset(0)
        seed_tenant(self.store, self.clock.stamp())
        self.faults = Faults()
        self.undeclared.clear()
        self.sessions.ttl = self.settings.token_ttl
        self.records.records_written = 0
        self.stats.reset()

    def _admin(self, request: Request) -> Response:
        route = (request.method, request.path.rstrip("/"))
        body: Any = request.json() if request.body else {}
        if route == ("GET", "/__sim/keys"):
            return json_response(200, self.keys_json())
        if route == ("POST", "/__sim/reset"):
            self.reset()
            return json_response(200, self.keys_json())
        if route == ("POST", "/__sim/faults"):
            if not isinstance(body, dict):
                raise ApiError(400, "faults body must be a JSON object")
            try:
                self.faults.merge(body)
            except ValueError as exc:
                raise ApiError(400, str(exc)) from exc
            return json_response(200, self.faults.to_json())
        if route == ("POST", "/__sim/custom_fields"):
            undeclare = body.get("undeclare") if isinstance(body, dict) else None
            if not isinstance(undeclare, dict) or not all(
                e in CUSTOM_FIELDS and isinstance(v, list) for e, v in undeclare.items()
            ):
                raise ApiError(400, 'custom_fields body must be {"undeclare": {"<entity>": ["Z_...", ...]}}')
            for entity, names in undeclare.items():
                self.undeclared.setdefault(entity, set()).update(str(n) for n in names)
            return json_response(200, {e: sorted(n) for e, n in self.undeclared.items()})
        if route == ("POST", "/__sim/heal"):
            self.faults = Faults()
            return json_response(200, self.faults.to_json())
        if route == ("GET", "/__sim/stats"):
            return json_response(200, self.stats_json())
        if route == ("POST", "/__sim/stats/reset"):
            self.stats.reset()
            self.stats.records_written_base = self.records.records_written
            return json_response(200, self.stats_json())
        if route == ("POST", "/__sim/clock"):
            offset = body.get("offset_seconds") if isinstance(body, dict) else None
            if isinstance(offset, bool) or not isinstance(offset, int | float) or not math.isfinite(offset):
                raise ApiError(400, 'clock body must be {"offset_seconds": <number>}')
            self.clock.set_offset(float(offset))
            return json_response(200, {"offset_seconds": float(offset), "now": self.clock.stamp()})
        if route == ("POST", "/__sim/token_ttl"):
            seconds = body.get("seconds") if isinstance(body, dict) else None
            if (
                isinstance(seconds, bool)
                or not isinstance(seconds, int | float)
                or not math.isfinite(seconds)
                or seconds < 0
            ):
                raise ApiError(400, 'token_ttl body must be {"seconds": <non-negative number>}')
            self.sessions.ttl = float(seconds)
            return json_response(200, {"seconds": float(seconds)})
        return error_response(404, f"no simulator admin route {request.method} {request.path}")
