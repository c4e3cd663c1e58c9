"""The hook's paginator (``iter_pages``): first, middle and last pages, the empty list, and every listing on it.

The fake API serves a list of records by ``page`` (0-based query parameter) and ``Count`` (header), as the
contract says; the hook's paginator runs for real.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests

from sage_sync.hooks.ssm import SsmApiError
from sage_sync.hooks.where import where_eq
from tests.unit.hooks.ssm_fakes import FakeTransport, Reply, make_hook, query


def serve(records: list[dict[str, Any]]) -> Callable[[requests.PreparedRequest], Reply]:
    """A list endpoint over ``records``: page N of size Count, filtered by a ``where`` of the form extId = 'x'."""

    def handler(r: requests.PreparedRequest) -> Reply:
        size, page = int(r.headers["Count"]), int(query(r)["page"])
        where = query(r).get("where")
        rows = [x for x in records if where is None or where == where_eq("extId", x["extId"])]
        return (200, rows[page * size : (page + 1) * size])

    return handler


def records(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "extId": f"E{i}"} for i in range(n)]


def pages_asked(transport: FakeTransport) -> list[tuple[str, str]]:
    return [(query(g)["page"], g.headers["Count"]) for g in transport.calls("GET")]


def test_first_middle_and_last_pages(connection: Callable[..., None]) -> None:
    """Seven records by three: a full first page, a full middle page, a short last page, and no fourth call."""
    hook, transport = make_hook(serve(records(7)))
    pages = list(hook.iter_pages("accounts", page_size=3, order="dateUpdated"))
    assert pages == [records(7)[0:3], records(7)[3:6], records(7)[6:7]]
    assert pages_asked(transport) == [("0", "3"), ("1", "3"), ("2", "3")]
    assert all(query(g)["order"] == "dateUpdated" for g in transport.calls("GET"))


def test_the_empty_list_yields_no_page_after_one_call(connection: Callable[..., None]) -> None:
    hook, transport = make_hook(serve([]))
    assert list(hook.iter_pages("accounts", page_size=3)) == []
    assert pages_asked(transport) == [("0", "3")]


def test_a_single_short_page_is_first_and_last(connection: Callable[..., None]) -> None:
    hook, transport = make_hook(serve(records(2)))
    assert list(hook.iter_pages("accounts", page_size=3)) == [records(2)]
    assert len(transport.calls("GET")) == 1


def test_an_exact_multiple_ends_on_an_empty_page_that_is_not_yielded(connection: Callable[..., None]) -> None:
    hook, transport = make_hook(serve(records(6)))
    assert [len(p) for p in hook.iter_pages("accounts", page_size=3)] == [3, 3]
    assert [p for p, _ in pages_asked(transport)] == ["0", "1", "2"]


def test_pages_come_one_at_a_time_and_a_failing_middle_page_raises(connection: Callable[..., None]) -> None:
    """Paging is lazy: page 1 is asked only when page 0 is consumed, and its error surfaces there."""

    def handler(r: requests.PreparedRequest) -> Reply:
        if query(r)["page"] == "1":
            return (400, {"code": 901, "message": "bad page"})
        return serve(records(3))(r)

    hook, transport = make_hook(handler)
    pages = hook.iter_pages("accounts", page_size=3)
    assert next(pages) == records(3)
    assert len(transport.calls("GET")) == 1
    with pytest.raises(SsmApiError, match="bad page"):
        next(pages)


def test_a_page_that_is_not_an_array_is_an_api_error(connection: Callable[..., None]) -> None:
    hook, _ = make_hook(lambda r: (200, {"id": 1}))
    with pytest.raises(SsmApiError, match="did not answer a JSON array"):
        list(hook.iter_pages("accounts"))


def test_every_listing_pages_with_the_page_size_setting(connection: Callable[..., None]) -> None:
    """list_all, iter_records, value lists and extId lookups all page: five records at two per page."""
    connection(extra={"page_size": 2})
    hook, transport = make_hook(serve(records(5)))
    listings: dict[str, Callable[[], Any]] = {
        "list_all": lambda: hook.list_all("accounts"),
        "iter_records": lambda: list(hook.iter_records("accounts")),
        "value_list": lambda: hook.value_list("users"),
    }
    for name, listing in listings.items():
        transport.sent.clear()
        assert listing() == records(5), name
        assert pages_asked(transport) == [("0", "2"), ("1", "2"), ("2", "2")], name


def test_lookups_page_within_each_batch(connection: Callable[..., None]) -> None:
    """Three records share one extId: the lookup's single batch spans two pages of two, and the live one wins."""
    connection(extra={"page_size": 2})
    shared = [{"id": 3, "extId": "E", "deleted": True}, {"id": 1, "extId": "E", "deleted": True}]
    shared.append({"id": 2, "extId": "E", "deleted": False})
    hook, transport = make_hook(serve(shared))
    assert hook.find_by_ext_ids("accounts", ["E"]) == {"E": shared[2]}
    assert [p for p, _ in pages_asked(transport)] == ["0", "1"]


@pytest.mark.parametrize(("total", "expected_calls"), [(0, 2), (2, 2), (3, 3), (7, 4)])
def test_prefetch_asks_one_page_ahead_and_yields_the_same_pages(
    connection: Callable[..., None], total: int, expected_calls: int
) -> None:
    plain, _ = make_hook(serve(records(total)))
    ahead, transport = make_hook(serve(records(total)))
    expected = list(plain.iter_pages("accounts", page_size=3))
    assert list(ahead.iter_pages("accounts", page_size=3, prefetch=True)) == expected
    assert sorted(int(page) for page, _ in pages_asked(transport)) == list(range(expected_calls))


def test_prefetch_surfaces_errors_of_pages_it_needs(connection: Callable[..., None]) -> None:
    def handler(r: requests.PreparedRequest) -> Reply:
        if query(r)["page"] == "1":
            return (400, {"code": 901, "message": "bad page"})
        return serve(records(2))(r)

    hook, _ = make_hook(handler)
    pages = hook.iter_pages("accounts", page_size=2, prefetch=True)
    assert next(pages) == records(2)
    with pytest.raises(SsmApiError, match="bad page"):
        next(pages)
