"""The hook's shape (docs/adr/0012-ssm-hook-shape.md): an Airflow hook that owns its session, not an HttpHook.

A provider upgrade that renames ``HttpHook``'s private attributes or methods cannot break the hook, because the
hook neither inherits nor writes them; these tests fail if that ever changes.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from airflow.providers.http.hooks.http import HttpHook
from airflow.sdk import BaseHook

from sage_sync.hooks.ssm import SalesManagementHook
from sage_sync.hooks.ssm_transport import KeepAliveAdapter
from tests.unit.hooks.ssm_fakes import BASE, make_hook

#: What HttpHook adds to BaseHook, read from the installed provider so a new private attribute is covered too.
HTTP_HOOK_STATE = set(vars(HttpHook(http_conn_id="unused"))) - set(vars(BaseHook()))
HTTP_HOOK_METHODS = {name for name in dir(HttpHook) if name.startswith("_")} - set(dir(BaseHook))


def test_an_airflow_hook_for_http_connections_that_does_not_inherit_http_hook() -> None:
    assert issubclass(SalesManagementHook, BaseHook)
    assert not issubclass(SalesManagementHook, HttpHook)
    assert (SalesManagementHook.conn_name_attr, SalesManagementHook.default_conn_name) == (
        "ssm_conn_id",
        "ssm_default",
    )
    assert SalesManagementHook.conn_type == "sage_ssm" and SalesManagementHook.hook_name


def test_the_hook_never_holds_http_hook_state(connection: Callable[..., None]) -> None:
    """After login, a listing, an upload and a connection test, none of HttpHook's attributes is on the hook."""
    assert {"_base_url_initialized", "base_url", "keep_alive_adapter"} <= HTTP_HOOK_STATE  # the check is live
    assert "_configure_session_from_mount_adapters" in HTTP_HOOK_METHODS

    def handler(r):  # type: ignore[no-untyped-def]
        return (
            (200, {"id": "5", "locator": "https://files.example.test/up/x1y2z3"})
            if r.method == "POST"
            else (200, [])
        )

    hook, _ = make_hook(handler)
    hook.list_all("accounts")
    hook.upload_product_picture(1, "p.jpg", b"jpg")
    assert hook.test_connection()[0]
    assert HTTP_HOOK_STATE.isdisjoint(vars(hook)), HTTP_HOOK_STATE & set(vars(hook))
    assert not [name for name in HTTP_HOOK_METHODS if hasattr(hook, name)]


def test_the_connection_is_read_through_airflow(connection: Callable[..., None]) -> None:
    conn = SalesManagementHook.get_connection("ssm_default")
    assert (conn.conn_type, conn.host) == ("http", BASE)
    hook, _ = make_hook(lambda r: (200, []))
    assert hook.test_connection() == (True, f"Connected to the SSM API at {BASE}")


def test_the_given_adapter_serves_every_url(connection: Callable[..., None]) -> None:
    hook, transport = make_hook(lambda r: (200, []))
    session = hook.get_conn()
    assert session.get_adapter("https://api.example.test/api/v4") is transport
    assert session.get_adapter("http://127.0.0.1:9/upload/x") is transport
    assert hook.get_conn() is session  # one session per hook


def test_the_default_transport_keeps_idle_connections_alive() -> None:
    session = SalesManagementHook("ssm_unused").get_conn()
    adapter = session.get_adapter("https://api.forcemanager.com/api/v4")
    assert isinstance(adapter, KeepAliveAdapter) and session.get_adapter("http://x") is adapter
    options = adapter.poolmanager.connection_pool_kw["socket_options"]
    assert (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1) in options
    session.close()


def test_close_forgets_the_session_and_its_key(connection: Callable[..., None]) -> None:
    hook, transport = make_hook(lambda r: (200, []))
    hook.list_all("accounts")
    first = hook.get_conn()
    hook.close()
    hook.list_all("accounts")
    assert hook.get_conn() is not first
    keys = [r.headers.get("X-Session-Key") for r in transport.calls("GET")]
    assert keys == ["session-token-0000-abcdef", "session-token-0001-abcdef"]  # logged in again after close
