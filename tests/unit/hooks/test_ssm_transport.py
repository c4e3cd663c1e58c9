"""SalesManagementHook with a fake transport: a ``requests`` adapter mounted on the hook's session.

Only the transport is faked (tests/unit/hooks/ssm_fakes.py); every part of the hook (settings, login, retries,
paging, bulk reconciliation, scrubbing) runs for real.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
import requests

from sage_sync.errors import ConfigurationError, FatalSyncError, RetriableSyncError
from sage_sync.hooks.ratelimit import TokenBucket
from sage_sync.hooks.ssm import SalesManagementHook, SsmApiError, WriteOutcomeUnknown, api_base_url
from tests.unit.hooks.ssm_fakes import (
    BASE,
    PRIVATE,
    PUBLIC,
    FakeTransport,
    Reply,
    body,
    dropped,
    make_hook,
    query,
    refused,
)

# ------------------------------------------------------------------------------------ settings


def test_hook_contract_attributes() -> None:
    assert SalesManagementHook.conn_name_attr == "ssm_conn_id"
    assert SalesManagementHook.default_conn_name == "ssm_default"
    assert SalesManagementHook.conn_type == "sage_ssm"
    assert SalesManagementHook.hook_name


def test_settings_precedence_constructor_over_extra_over_default(connection: Callable[..., None]) -> None:
    connection(extra={"requests_per_second": 13, "page_size": 500, "timeout": 20})
    hook = SalesManagementHook(page_size=250)
    s = hook.settings
    assert (s.page_size, s.requests_per_second, s.timeout) == (250, 13.0, 20.0)  # ctor > extra
    assert s.max_retries == SalesManagementHook.DEFAULT_MAX_RETRIES  # default
    connection()
    defaults = SalesManagementHook().settings
    assert (defaults.requests_per_second, defaults.page_size) == (4.0, 1000)


def test_connection_is_read_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SSM_NOWHERE", raising=False)
    hook = SalesManagementHook("ssm_nowhere")  # no connection yet: building the hook must not need it
    assert hook.ssm_conn_id == "ssm_nowhere"


@pytest.mark.parametrize(
    ("host", "schema", "port", "expected"),
    [
        ("https://api.forcemanager.com/api/v4", None, None, "https://api.forcemanager.com/api/v4"),
        ("https://api.forcemanager.com/api/v4/", None, None, "https://api.forcemanager.com/api/v4"),
        ("api.forcemanager.com", None, None, "https://api.forcemanager.com/api/v4"),
        ("127.0.0.1", "http", 8765, "http://127.0.0.1:8765/api/v4"),
        ("http://127.0.0.1:9000", None, None, "http://127.0.0.1:9000/api/v4"),
    ],
)
def test_base_url_from_host(host: str, schema: str | None, port: int | None, expected: str) -> None:
    assert api_base_url(host, schema, port) == expected


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"login": None}, "login (public API key)"),
        ({"host": ""}, "no host"),
        ({"host": "127.0.0.1", "schema": "api/v4"}, "schema 'api/v4' is not http or https"),
        ({"host": "ftp://files.example.test"}, "is not an http(s) URL"),
        ({"extra": {"page_size": 5000}}, "page_size must be at least 1 and at most 1000"),
        ({"extra": {"requests_per_second": "fast"}}, "requests_per_second must be a number"),
        ({"extra": {"max_retries": -1}}, "max_retries must be at least 0"),
    ],
)
def test_bad_connection_is_a_configuration_error(
    connection: Callable[..., None], fields: dict[str, Any], needle: str
) -> None:
    connection(**fields)
    with pytest.raises(ConfigurationError, match=re.escape(needle)) as info:
        SalesManagementHook().settings  # noqa: B018
    assert "ssm_default" in str(info.value)
    assert PRIVATE not in str(info.value)


def test_keys_travel_only_in_the_login_body_and_extras_are_not_headers(
    connection: Callable[..., None],
) -> None:
    connection(extra={"requests_per_second": 0, "page_size": 10})
    hook, transport = make_hook(lambda r: (200, []))
    hook.list_all("users")
    login, listing = transport.sent
    assert body(login) == {"username": PUBLIC, "password": PRIVATE}
    assert "Authorization" not in listing.headers
    assert listing.headers["X-Session-Key"] == "session-token-0000-abcdef"
    assert "page_size" not in listing.headers and "requests_per_second" not in listing.headers
    assert listing.headers["Count"] == "10"


# ------------------------------------------------------------------------------------ session


def test_session_key_is_cached_per_hook(connection: Callable[..., None]) -> None:
    hook, transport = make_hook(lambda r: (200, {"id": 1}))
    for _ in range(3):
        hook.get("accounts", 1)
    assert len(transport.calls("POST", "/login")) == 1
    assert hook.calls.as_dict() | {"total": 0} == {
        "reads": 3,
        "writes": 0,
        "logins": 1,
        "retries": 0,
        "throttled": 0,
        "relogins": 0,
        "total": 0,
    }


def test_one_relogin_on_401_then_success(connection: Callable[..., None]) -> None:
    def handler(r: requests.PreparedRequest) -> Reply:
        if r.headers["X-Session-Key"] == "session-token-0000-abcdef":
            return (401, {"statusCode": 401, "code": None, "message": "expired"})
        return (200, {"id": 7})

    hook, transport = make_hook(handler)
    assert hook.get("accounts", 7) == {"id": 7}
    assert len(transport.calls("POST", "/login")) == 2
    assert hook.calls.relogins == 1


def test_second_401_raises_without_a_third_login(connection: Callable[..., None]) -> None:
    hook, transport = make_hook(lambda r: (401, {"statusCode": 401, "message": "nope"}))
    with pytest.raises(SsmApiError) as info:
        hook.get("accounts", 7)
    assert info.value.status == 401
    assert len(transport.calls("POST", "/login")) == 2


# ------------------------------------------------------------------------------------ retries


def test_4xx_raises_at_once_with_status_code_and_message(connection: Callable[..., None]) -> None:
    hook, transport = make_hook(
        lambda r: (400, {"statusCode": 400, "code": 901, "message": "unknown field 'x'"})
    )
    with pytest.raises(SsmApiError) as info:
        hook.list_all("accounts", where="x = 1")
    err = info.value
    assert (err.status, err.code, err.api_message, err.method, err.path) == (
        400,
        901,
        "unknown field 'x'",
        "GET",
        "/accounts",
    )
    assert isinstance(err, FatalSyncError)
    assert len(transport.calls("GET")) == 1  # not retried


def test_error_body_shapes_are_tolerated(connection: Callable[..., None]) -> None:
    replies = iter(
        [
            (400, {"Message": "Bad Request"}),
            (403, b"forbidden, plain text"),
            (400, {"code": "910", "message": "gone"}),
        ]
    )
    hook, _ = make_hook(lambda r: next(replies))
    messages = []
    for _ in range(3):
        with pytest.raises(SsmApiError) as info:
            hook.delete("accounts", 1)
        messages.append((info.value.status, info.value.code, info.value.api_message))
    assert messages == [(400, None, "Bad Request"), (403, None, "forbidden, plain text"), (400, 910, "gone")]


def test_429_honours_retry_after_and_5xx_and_drops_are_retried_for_reads(
    connection: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    replies: list[Reply] = [
        (429, {"message": "slow down"}, {"Retry-After": "0.03"}),
        (503, {"message": "busy"}),
        dropped(),
        requests.ReadTimeout("read timed out"),
        (200, [{"id": 1}]),
    ]
    hook, transport = make_hook(lambda r: replies.pop(0))
    caplog.set_level(logging.WARNING, logger="sage_sync.hooks.ssm")
    assert hook.list_all("accounts", page_size=5) == [{"id": 1}]
    assert len(transport.calls("GET")) == 5
    assert hook.calls.retries == 4 and hook.calls.throttled == 1
    assert (
        "HTTP 429: slow down; retry 1/6 in 0.03 s" in caplog.text
    )  # the server's Retry-After, not the backoff


def test_retry_after_is_capped(connection: Callable[..., None], caplog: pytest.LogCaptureFixture) -> None:
    replies: list[Reply] = [(429, {}, {"Retry-After": "3600"}), (200, {"id": 1})]
    transport = FakeTransport(lambda r: replies.pop(0))
    hook = SalesManagementHook(adapter=transport, requests_per_second=0, retry_after_max=0.01)
    caplog.set_level(logging.WARNING, logger="sage_sync.hooks.ssm")
    assert hook.get("accounts", 1) == {"id": 1}
    assert "retry 1/6 in 0.01 s" in caplog.text


def test_exhausted_retries_raise_retriable_error(connection: Callable[..., None]) -> None:
    hook, transport = make_hook(lambda r: (502, {"message": "bad gateway"}), max_retries=2)
    with pytest.raises(RetriableSyncError, match="after 3 attempt") as info:
        hook.get("accounts", 1)
    assert not isinstance(info.value, FatalSyncError)
    assert len(transport.calls("GET")) == 3


@pytest.mark.parametrize("status", [501, 507, 520])
def test_every_5xx_is_retried_not_only_the_well_known_ones(
    connection: Callable[..., None], status: int
) -> None:
    """Issue 3: retries of ``5xx`` (any server-side failure, e.g. 501/507 from a proxy), not a fixed list."""
    replies: list[Reply] = [(status, {"message": "server trouble"}), (200, {"id": 1})]
    hook, transport = make_hook(lambda r: replies.pop(0))
    assert hook.get("accounts", 1) == {"id": 1}
    assert len(transport.calls("GET")) == 2 and hook.calls.retries == 1


@pytest.mark.parametrize("status", [400, 404, 409, 422, 499])
def test_4xx_other_than_429_is_not_retried(connection: Callable[..., None], status: int) -> None:
    hook, transport = make_hook(lambda r: (status, {"message": "no"}))
    with pytest.raises(SsmApiError):
        hook.get("accounts", 1)
    assert len(transport.calls("GET")) == 1


def test_single_create_without_ext_id_is_not_resent_after_a_lost_response(
    connection: Callable[..., None],
) -> None:
    hook, transport = make_hook(lambda r: dropped())
    with pytest.raises(WriteOutcomeUnknown):
        hook.create("productFamilies", {"descriptionFR": "Outils"})
    assert len(transport.calls("POST", "/productFamilies")) == 1
    assert isinstance(WriteOutcomeUnknown("x"), RetriableSyncError)


def test_create_resent_when_the_connection_was_never_opened(connection: Callable[..., None]) -> None:
    replies: list[Reply] = [refused(), (200, {"Message": "entity created", "id": 42})]
    hook, transport = make_hook(lambda r: replies.pop(0))
    assert hook.create("productFamilies", {"descriptionFR": "Outils"}) == 42
    assert len(transport.calls("POST", "/productFamilies")) == 2
    assert transport.calls("GET") == []  # nothing to reconcile: the request never left


def test_create_with_ext_id_is_reconciled_after_a_lost_response(connection: Callable[..., None]) -> None:
    """A create applied by the server whose response was lost is found by extId, not created twice (ADR 0003)."""

    def handler(r: requests.PreparedRequest) -> Reply:
        if r.method == "POST":
            return (500, {"message": "applied, then failed"})
        assert query(r)["where"] == "extId = 'C1'"
        return (200, [{"id": 9, "extId": "C1", "deleted": True}, {"id": 10, "extId": "C1", "deleted": False}])

    hook, transport = make_hook(handler)
    assert hook.create("accounts", {"name": "A", "extId": "C1"}) == 10  # the live one, not the deleted one
    assert len(transport.calls("POST", "/accounts")) == 1


# ------------------------------------------------------------------------------------ bulk


def bulk_echo(r: requests.PreparedRequest, first_id: int = 100) -> Reply:
    items = body(r)
    return (
        200,
        [
            {"guid": it["guid"], "id": first_id + n, "status": 200, "message": "entity created"}
            for n, it in enumerate(items)
        ],
    )


def test_bulk_create_chunks_at_the_api_maximum(connection: Callable[..., None]) -> None:
    hook, transport = make_hook(bulk_echo)
    outcomes = hook.bulk_create("accounts", [{"name": f"A{n}"} for n in range(450)])
    assert [len(body(r)) for r in transport.calls("POST", "/accounts/bulk")] == [200, 200, 50]
    assert [o.guid for o in outcomes] == [str(n) for n in range(450)]
    assert all(o.ok for o in outcomes)
    hook.bulk_create(
        "products", [{"model": f"M{n}"} for n in range(250)], guids=[f"AR{n}" for n in range(250)]
    )
    sent = transport.calls("POST", "/products/bulk")
    assert [len(body(r)) for r in sent] == [100, 100, 50]
    assert body(sent[0])[0] == {"guid": "AR0", "data": {"model": "M0"}}


def test_callers_may_ask_for_smaller_chunks_never_larger(connection: Callable[..., None]) -> None:
    """chunk_size lowers the items per call; the contract's caps (200, products 100) still bound it."""
    hook, transport = make_hook(bulk_echo)
    outcomes = hook.bulk_create("accounts", [{"name": f"A{n}"} for n in range(120)], chunk_size=50)
    assert [len(body(r)) for r in transport.calls("POST", "/accounts/bulk")] == [50, 50, 20]
    assert [o.guid for o in outcomes] == [str(n) for n in range(120)] and all(o.ok for o in outcomes)
    hook.bulk_create("products", [{"model": f"M{n}"} for n in range(150)], chunk_size=500)
    assert [len(body(r)) for r in transport.calls("POST", "/products/bulk")] == [100, 50]

    def echo_updates(r: requests.PreparedRequest) -> Reply:
        return (200, [{"guid": it["guid"], "id": it["id"], "status": 200, "message": "ok"} for it in body(r)])

    hook, transport = make_hook(echo_updates)
    updated = hook.bulk_update(
        "contacts", [{"id": n, "data": {"phone1": "1"}} for n in range(1, 6)], chunk_size=2
    )
    assert [len(body(p)) for p in transport.calls("PUT", "/contacts/bulk")] == [2, 2, 1]
    assert [o.id for o in updated] == [1, 2, 3, 4, 5]
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
            hook.bulk_update("contacts", [{"id": 1, "data": {}}], chunk_size=bad)  # type: ignore[arg-type]
    assert len(transport.calls("PUT")) == 3  # nothing sent for a bad chunk size


def test_a_lost_chunk_is_reconciled_alone(connection: Callable[..., None]) -> None:
    """With chunks of 2, only the chunk whose response was lost is looked up by extId; the others are untouched."""
    posts = {"n": 0}

    def handler(r: requests.PreparedRequest) -> Reply:
        if r.method == "POST":
            posts["n"] += 1
            return (500, {"message": "applied, then failed"}) if posts["n"] == 2 else bulk_echo(r)
        return (
            200,
            [{"id": 77, "extId": "E2", "deleted": False}, {"id": 78, "extId": "E3", "deleted": False}],
        )

    hook, transport = make_hook(handler)
    outcomes = hook.bulk_create(
        "accounts", [{"name": f"A{n}", "extId": f"E{n}"} for n in range(5)], chunk_size=2
    )
    assert [(o.id, o.recovered) for o in outcomes] == [
        (100, False),
        (101, False),
        (77, True),
        (78, True),
        (100, False),
    ]
    assert len(transport.calls("GET")) == 1 and len(transport.calls("POST", "/accounts/bulk")) == 3


def test_bulk_per_item_failures_keep_order(connection: Callable[..., None]) -> None:
    def handler(r: requests.PreparedRequest) -> Reply:
        items = body(r)
        return (
            200,
            [
                {
                    "guid": it["guid"],
                    "id": None,
                    "status": 400,
                    "message": "accounts: field 'name' is required",
                }
                if "name" not in it["data"]
                else {"guid": it["guid"], "id": n + 1, "status": 200, "message": "entity created"}
                for n, it in enumerate(items)
            ],
        )

    hook, _ = make_hook(handler)
    outcomes = hook.bulk_create("accounts", [{"name": "a"}, {"city": "Lyon"}, {"name": "c"}])
    assert [(o.ok, o.status, o.id) for o in outcomes] == [(True, 200, 1), (False, 400, None), (True, 200, 3)]
    assert "name" in outcomes[1].message


def test_bulk_create_after_a_dropped_connection_resends_only_missing_items(
    connection: Callable[..., None],
) -> None:
    """ADR 0003: a chunk whose response was lost is looked up by extId; found items are not sent again."""
    state = {"posts": 0}

    def handler(r: requests.PreparedRequest) -> Reply:
        if r.method == "POST":
            state["posts"] += 1
            if state["posts"] == 1:
                return dropped()  # imagine the server applied the first two items before the line went down
            return bulk_echo(r, first_id=500)
        return (200, [{"id": 1, "extId": "E0", "deleted": False}, {"id": 2, "extId": "E1", "deleted": False}])

    hook, transport = make_hook(handler)
    items = [{"name": f"A{n}", "extId": f"E{n}"} for n in range(4)] + [{"name": "no ext id"}]
    outcomes = hook.bulk_create("accounts", items)
    posts = transport.calls("POST", "/accounts/bulk")
    assert len(posts) == 2
    assert [it["data"].get("extId") for it in body(posts[1])] == ["E2", "E3"]
    assert [(o.id, o.recovered, o.ok) for o in outcomes] == [
        (1, True, True),
        (2, True, True),
        (500, False, True),
        (501, False, True),
        (None, False, False),
    ]
    assert outcomes[4].status == 0 and "outcome unknown" in outcomes[4].message


def test_bulk_create_429_is_resent_without_lookup(connection: Callable[..., None]) -> None:
    replies: list[Reply] = [(429, {}, {"Retry-After": "0"})]
    hook, transport = make_hook(lambda r: replies.pop(0) if replies else bulk_echo(r))
    outcomes = hook.bulk_create("accounts", [{"name": "A", "extId": "E"}])
    assert outcomes[0].ok and not outcomes[0].recovered
    assert transport.calls("GET") == []


def test_bulk_update_sends_id_and_changed_fields(connection: Callable[..., None]) -> None:
    def handler(r: requests.PreparedRequest) -> Reply:
        return (
            200,
            [
                {"guid": it["guid"], "id": it["id"], "status": 200, "message": "entity updated"}
                for it in body(r)
            ],
        )

    hook, transport = make_hook(handler)
    outcomes = hook.bulk_update("contacts", [{"id": n, "data": {"phone1": str(n)}} for n in range(1, 206)])
    puts = transport.calls("PUT", "/contacts/bulk")
    assert [len(body(p)) for p in puts] == [200, 5]
    assert body(puts[0])[0] == {"guid": "0", "id": 1, "data": {"phone1": "1"}}
    assert all(o.ok for o in outcomes) and outcomes[-1].id == 205
    with pytest.raises(ValueError, match="item 0"):
        hook.bulk_update("contacts", [{"data": {}}])


# ------------------------------------------------------------------------------------ lists


def test_list_arguments_are_validated(connection: Callable[..., None]) -> None:
    hook, transport = make_hook(lambda r: (200, []))
    with pytest.raises(ValueError, match="page_size"):
        hook.list_all("accounts", page_size=1001)
    with pytest.raises(ValueError, match="not a plain identifier"):
        hook.list_all("accounts/../users")
    assert transport.sent == []


def test_find_by_ext_ids_batches_within_the_url_limit(connection: Callable[..., None]) -> None:
    """A tenant too big to list: the listing stops after as many pages as lookups, then batched lookups run."""

    def handler(r: requests.PreparedRequest) -> Reply:
        where = query(r)["where"]
        if where == "extId IS NOT NULL":  # every page full: the tenant is bigger than the lookups are long
            page = int(query(r)["page"])
            return (
                200,
                [{"id": 10_000 + page * 1000 + n, "extId": f"X{n}", "deleted": False} for n in range(1000)],
            )
        return (200, [{"id": int(e[1:]), "extId": e, "deleted": False} for e in where.split("'")[1::2]])

    hook, transport = make_hook(handler)
    wanted = [f"E{n:04d}" for n in range(300)]
    found = hook.find_by_ext_ids("accounts", [*wanted, "E0001"])
    assert set(found) == set(wanted)
    listings = [g for g in transport.calls("GET") if query(g)["where"] == "extId IS NOT NULL"]
    lookups = [g for g in transport.calls("GET") if query(g)["where"] != "extId IS NOT NULL"]
    assert len(lookups) > 1 and len(listings) == len(lookups)  # at worst twice the lookups' calls
    limit = SalesManagementHook.MAX_WHERE_URL_CHARS
    assert all(len(quote(query(g)["where"], safe="")) <= limit for g in lookups)
    assert sorted(e for g in lookups for e in query(g)["where"].split("'")[1::2]) == wanted  # each asked once


def test_find_by_ext_ids_lists_a_small_tenant_instead_of_looking_each_key_up(
    connection: Callable[..., None],
) -> None:
    """C1 adoption onto a tenant of 1,500 records: two list pages instead of several lookup batches."""

    def handler(r: requests.PreparedRequest) -> Reply:
        assert query(r)["where"] == "extId IS NOT NULL"
        page = int(query(r)["page"])
        return (
            200,
            [{"id": n, "extId": f"E{n:04d}", "deleted": False} for n in range(1500)][page * 1000 :][:1000],
        )

    hook, transport = make_hook(handler)
    wanted = [f"E{n:04d}" for n in range(0, 3000, 3)]  # 1,000 keys, half of them absent from the tenant
    found = hook.find_by_ext_ids("accounts", wanted)
    assert set(found) == {e for e in wanted if int(e[1:]) < 1500}
    assert len(transport.calls("GET")) == 2


# ------------------------------------------------------------------------------------ documents, metadata


def test_picture_upload_puts_bytes_to_the_locator_without_the_session_key(
    connection: Callable[..., None],
) -> None:
    locator = "https://files.example.test/upload/secret-abc123"

    def handler(r: requests.PreparedRequest) -> Reply:
        if r.method == "POST":
            assert body(r) == {"name": "pic.jpg", "isCarrousel": True, "folderId": "-1"}
            return (200, {"id": "17", "locator": locator})
        return (200, b"")

    hook, transport = make_hook(handler)
    assert hook.upload_product_picture(5, "pic.jpg", b"\xff\xd8\xff") == "17"
    put = transport.sent[-1]
    assert (put.method, put.url, put.body) == ("PUT", locator, b"\xff\xd8\xff")
    assert put.headers["Content-Type"] == "application/octet-stream"
    assert "X-Session-Key" not in put.headers
    assert hook.scrub(f"failed at {locator}") == "failed at ***"


def test_picture_upload_takes_one_rate_limit_permit_not_two(connection: Callable[..., None]) -> None:
    """The bytes go to the locator, outside the API and its rate limit: only the login and the POST are paced."""
    locator = "https://files.example.test/upload/secret-abc123"

    def handler(r: requests.PreparedRequest) -> Reply:
        return (200, {"id": "17", "locator": locator}) if r.method == "POST" else (200, b"")

    hook, transport = make_hook(handler, requests_per_second=10)
    # Time stands still: each permit taken queues 0.1 s behind the one before.
    hook.rate_limiter = TokenBucket(10.0, clock=lambda: 0.0, sleep=lambda _s: None)
    hook.upload_product_picture(5, "pic.jpg", b"\xff")
    assert [r.method for r in transport.sent][-2:] == ["POST", "PUT"]
    assert hook.rate_limiter.waited_seconds == pytest.approx(0.1)  # login 0 s, POST 0.1 s; paced PUT: 0.3 s


def test_custom_fields_keeps_z_fields(connection: Callable[..., None]) -> None:
    hook, transport = make_hook(lambda r: (200, [{"Key": "Z_Siret", "Type": "text"}, {"Key": "name"}]))
    assert hook.custom_fields("empresas") == [{"Key": "Z_Siret", "Type": "text"}]
    assert body(transport.sent[-1]) == {"entity": "empresas"}
    assert hook.calls.reads == 1 and hook.calls.writes == 0


# ------------------------------------------------------------------------------------ secrets


def test_error_messages_and_test_connection_are_scrubbed(connection: Callable[..., None]) -> None:
    def handler(r: requests.PreparedRequest) -> Reply:
        return (400, {"message": f"bad key {PUBLIC}/{PRIVATE} with session {r.headers['X-Session-Key']}"})

    hook, _ = make_hook(handler)
    with pytest.raises(SsmApiError) as info:
        hook.get("accounts", 1)
    text = str(info.value)
    assert PUBLIC not in text and PRIVATE not in text and "session-token" not in text
    assert "bad key ***/*** with session ***" in text
    ok, message = hook.test_connection()
    assert not ok and PRIVATE not in message and "session-token" not in message


def test_login_refused_is_fatal_and_names_no_key(connection: Callable[..., None]) -> None:
    class Refusing(FakeTransport):
        def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
            self.sent.append(request)
            response = requests.Response()
            response.status_code = 401
            response._content = b'{"statusCode": 401, "message": "unknown public key or wrong private key"}'
            response.request = request
            return response

    transport = Refusing(lambda r: (200, None))
    hook = SalesManagementHook(adapter=transport, requests_per_second=0)
    with pytest.raises(SsmApiError) as info:
        hook.list_all("users")
    assert info.value.status == 401 and info.value.path == "/login"
    assert len(transport.sent) == 1
    ok, message = hook.test_connection()
    assert not ok and "401" in message and PUBLIC not in message and PRIVATE not in message


def test_session_key_and_keys_are_registered_with_airflows_masker(connection: Callable[..., None]) -> None:
    from airflow.sdk.log import redact

    hook, _ = make_hook(lambda r: (200, []))
    hook.list_all("users")
    line = f"token session-token-0000-abcdef keys {PUBLIC} {PRIVATE}"
    assert redact(line) == "token *** keys *** ***"


def test_transport_errors_hide_query_strings(connection: Callable[..., None]) -> None:
    """Filters can name customers: a failing URL is reported without its query string."""
    url = f"{BASE}/accounts?where=name+%3D+%27Dupont%27&page=0"
    hook, _ = make_hook(
        lambda r: requests.ConnectionError(f"Max retries exceeded with url: {url} (refused)"), max_retries=1
    )
    with pytest.raises(RetriableSyncError) as info:
        hook.list_all("accounts", where="name = 'Dupont'")
    assert "Dupont" not in str(info.value) and "/accounts?..." in str(info.value)
