"""SalesManagementHook against the real SSM simulator over HTTP (issue 3, "Done when", the hook half).

Each test drives a freshly reset simulator on a free 127.0.0.1 port through an ``AIRFLOW_CONN_*`` JSON
connection, exactly as a deployment would.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from requests.adapters import HTTPAdapter

from sage_sync.errors import FatalSyncError, RetriableSyncError
from sage_sync.hooks.ssm import SalesManagementHook, SsmApiError
from sage_sync.hooks.where import and_, where_eq, where_gt, where_in, where_like
from tests.support.simulator import SimulatorHandle, ssm_simulator, start_simulator  # noqa: F401


@pytest.fixture
def sim(ssm_simulator: SimulatorHandle) -> SimulatorHandle:  # noqa: F811  # the shared fixture, imported above
    """The freshly reset simulator of this module."""
    return ssm_simulator


def fast_hook(conn_id: str = "ssm_default", **kwargs: Any) -> SalesManagementHook:
    """A hook with small backoffs (and Retry-After capped at 50 ms) so fault scenarios finish quickly."""
    return SalesManagementHook(conn_id, backoff_base=0.01, backoff_max=0.05, retry_after_max=0.05, **kwargs)


def use_connection(
    monkeypatch: pytest.MonkeyPatch,
    sim: SimulatorHandle,
    which: str = "integration",
    conn_id: str = "ssm_default",
    **extra: Any,
) -> None:
    key = sim.keys[which]
    conn = {
        "conn_type": "http",
        "host": sim.base_url,
        "login": key["public_key"],
        "password": key["private_key"],
        "extra": {"requests_per_second": 0, **extra},
    }
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))


def account(i: int | str, **fields: Any) -> dict[str, Any]:
    return {"name": f"Société {i}", "branchId": 1, "salesRepId1": 1, "extId": f"C{i}", **fields}


class RecordingAdapter(HTTPAdapter):
    """The real transport, also noting every session key sent and every upload URL (to prove none reaches a log)."""

    def __init__(self) -> None:
        super().__init__()
        self.session_keys: set[str] = set()
        self.upload_urls: list[str] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        token = request.headers.get("X-Session-Key")
        if token:
            self.session_keys.add(str(token))
        if "/api/v4/" not in (request.url or ""):
            self.upload_urls.append(str(request.url))
        return super().send(request, *args, **kwargs)


def list_calls(sim: SimulatorHandle, entity: str) -> int:
    return int(sim.stats()["by_route"].get(f"GET /api/v4/{entity}", 0))


def test_paging_zero_one_exact_page_and_page_plus_one(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Paging (header ``Count``, 0-based ``page``) stops on a short or empty page: 0, 1, 5 and 6 records at page size 5."""
    use_connection(monkeypatch, sim, page_size=5)
    hook = SalesManagementHook()
    assert hook.list_all("accounts") == []  # an empty entity: one call, an empty array

    groups = {"A": 1, "B": 5, "C": 6}
    items = [account(f"{g}{n}") for g, count in groups.items() for n in range(count)]
    assert all(o.ok for o in hook.bulk_create("accounts", items))

    expectations = {"Z": (0, 1), "A": (1, 1), "B": (5, 2), "C": (6, 2)}  # records, list calls
    for group, (count, calls) in expectations.items():
        sim.reset_stats()
        records = hook.list_all("accounts", where=where_like("extId", f"C{group}%"))
        assert sorted(r["extId"] for r in records) == sorted(f"C{group}{n}" for n in range(count))
        assert len({r["id"] for r in records}) == count  # no record repeated across pages
        assert list_calls(sim, "accounts") == calls

    # The whole table across pages of 5, ordered by id descending (the API's order is descending).
    everything = list(hook.iter_records("accounts", order="id"))
    assert [r["id"] for r in everything] == sorted((r["id"] for r in everything), reverse=True)
    assert len(everything) == 12
    # Page size argument beats the connection's extra.
    sim.reset_stats()
    assert len(hook.list_all("accounts", page_size=1000)) == 12
    assert list_calls(sim, "accounts") == 1


def test_where_quotes_and_injection_attempts(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """Quoted values match exactly; injection attempts match nothing or answer 901 (SsmApiError), never crash the server."""
    use_connection(monkeypatch, sim)
    hook = fast_hook()
    tricky = ["O'Neil", "x' OR '1'='1", "a'; DROP TABLE accounts; --", "''", "back\\slash", "naïve 😀"]
    for n, text in enumerate(tricky):
        hook.create("accounts", account(n, name=text, extId=f"T{n}"))
    hook.create("accounts", account("plain", name="Plain"))

    for text in tricky:
        rows = hook.list_all("accounts", where=where_eq("name", text))
        assert [r["name"] for r in rows] == [text]
    assert hook.list_all("accounts", where=where_eq("name", "O'Neil' OR name <> '")) == []

    since = datetime.now(UTC) - timedelta(hours=1)
    recent = hook.list_all(
        "accounts", where=and_(where_gt("dateUpdated", since), where_in("extId", ["T0", "T1", "nope"]))
    )
    assert sorted(r["extId"] for r in recent) == ["T0", "T1"]

    raw_attempts = [
        "name = 'a'; DROP TABLE accounts; --",
        "name = 'a' OR 1 = 1",
        "name = 'unterminated",
        "nosuchfield = 1",
        "1 = 1",
        "name = 'a') OR (name <> 'b'",
        "extId = 'x' UNION SELECT * FROM users",
    ]
    for raw in raw_attempts:
        with pytest.raises(SsmApiError) as info:
            hook.list_all("accounts", where=raw)
        assert info.value.status == 400
        assert info.value.code == 901, raw
        assert isinstance(info.value, FatalSyncError)
    # The server survived every attempt and the data is intact.
    assert len(hook.list_all("accounts")) == len(tricky) + 1
    assert "Traceback" not in sim.stderr_tail()


def test_token_expiry_relogs_in_exactly_once(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """An expired session key costs one re-login; a second 401 on the same call raises SsmApiError(401)."""
    use_connection(monkeypatch, sim)
    hook = fast_hook()
    hook.create("accounts", account(1))
    assert hook.calls.logins == 1

    sim.token_ttl(2.0)
    time.sleep(2.2)  # the session key cached by the hook is now expired
    logins_before = hook.calls.logins
    assert len(hook.list_all("accounts")) == 1
    assert hook.calls.logins == logins_before + 1
    assert hook.calls.relogins >= 1

    # Every key is already expired when the next call arrives (latency > lifetime): one re-login, then raise.
    sim.token_ttl(0.05)
    sim.faults(latency_ms=200)
    relogins = hook.calls.relogins
    logins = hook.calls.logins
    with pytest.raises(SsmApiError) as info:
        hook.get("accounts", 1)
    assert info.value.status == 401
    assert hook.calls.relogins == relogins + 1
    assert hook.calls.logins == logins + 1


def test_fault_storm_bulk_load_is_exactly_once(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """429 storm, 500/503s, dropped connections (20 %) and applied-then-lost responses (500 or a dropped
    connection after the write): 5,000 accounts, each created once, no duplicate extId."""
    use_connection(monkeypatch, sim)
    hook = fast_hook(max_retries=20)
    hook.test_connection()  # log in before the storm so the call count below is the load's alone
    sim.reset_stats()
    calls_before = hook.calls.total
    sim.faults(p429=0.2, p500=0.05, p503=0.05, pdrop=0.2, p500_after=0.05, pdrop_after=0.05, seed=3)

    items = [account(f"{n:05d}") for n in range(5000)]
    outcomes = hook.bulk_create("accounts", items)

    stats = sim.stats()
    sim.heal()
    assert len(outcomes) == 5000
    assert all(o.ok for o in outcomes)
    assert [o.guid for o in outcomes] == [str(n) for n in range(5000)]
    assert stats["records_written"] == 5000  # no record was created twice, even after lost responses
    assert stats["duplicate_ext_ids"].get("accounts", []) == []
    assert stats["served_429"] > 0 and stats["by_status"].get("dropped", 0) > 0
    # Applied, then the connection dropped without a response: the hook must look the chunk up, not re-send it.
    assert stats["by_status"].get("dropped_after", 0) > 0 and stats["by_status"].get("500", 0) > 0
    assert any(o.recovered for o in outcomes)  # some chunks were applied, then their response lost
    # The hook's ledger counts every attempt, exactly as the server saw them (dropped ones included).
    load_calls = hook.calls.total - calls_before
    assert load_calls == stats["total"]
    print(
        f"fault storm: server saw {stats['total']} API calls ({stats['served_429']} x 429), hook made {load_calls}"
    )

    listed = hook.list_all("accounts")
    ext_ids = [r["extId"] for r in listed]
    assert len(ext_ids) == 5000 and set(ext_ids) == {f"C{n:05d}" for n in range(5000)}
    assert {o.id for o in outcomes} == {r["id"] for r in listed}


def test_client_token_bucket_keeps_under_the_server_rate_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With requests_per_second = the plan's 4/s no call is refused; unthrottled, the 429s are retried after Retry-After."""
    with start_simulator(tmp_path, rate_limit=4) as limited:
        use_connection(monkeypatch, limited, requests_per_second=4)
        paced = SalesManagementHook()
        for _ in range(10):
            paced.get("users", 1)
        assert limited.stats()["served_429"] == 0
        assert paced.rate_limiter.waited_seconds > 0

        use_connection(monkeypatch, limited, requests_per_second=0)
        eager = SalesManagementHook(backoff_base=0.01)
        for _ in range(10):
            eager.get("users", 1)
        assert limited.stats()["served_429"] > 0
        assert eager.calls.throttled == limited.stats()["served_429"]


def test_m1_hooks_calling_with_one_key_share_its_rate_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """M1: two hooks of one key, each at the key's 4/s, calling at once: one bucket, no call refused.

    Each pacing itself alone would send 8 calls/s to a key allowed 4 (the simulator then answers ``429``).
    """
    with start_simulator(tmp_path, rate_limit=4) as limited:
        folder = tmp_path / "rate-limits"
        use_connection(monkeypatch, limited, requests_per_second=4, rate_limit_folder=str(folder))
        hooks = [SalesManagementHook(), SalesManagementHook()]
        for hook in hooks:
            hook.get("users", 1)  # logged in, so the calls below overlap
        limited.reset_stats()
        threads = [threading.Thread(target=lambda h=h: [h.get("users", 1) for _ in range(8)]) for h in hooks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert limited.stats()["served_429"] == 0
        assert limited.stats()["total"] == 16
        shared = {hook.rate_limiter.shared for hook in hooks}
        assert len(shared) == 1 and next(iter(shared)).parent == folder  # type: ignore[union-attr]
        assert sum(hook.rate_limiter.waited_seconds for hook in hooks) > 0


def test_m1_a_rate_limit_folder_the_process_cannot_use_leaves_the_pace_to_the_process(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A bad ``rate_limit_folder`` (here below a file) does not fail the run: the hook paces itself, and says so."""
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    conn = {
        "conn_type": "http",
        "host": "http://127.0.0.1:9/api/v4",
        "login": "PUBLIC",
        "password": "PRIVATE",
        "extra": {"requests_per_second": 4, "rate_limit_folder": str(blocker / "rates")},
    }
    monkeypatch.setenv("AIRFLOW_CONN_SSM_DEFAULT", json.dumps(conn))
    with caplog.at_level(logging.WARNING):
        bucket = SalesManagementHook().rate_limiter
    assert bucket.shared is None and bucket.rate == 4
    # The task logger may write to the console rather than through logging.
    captured = capsys.readouterr()
    said = caplog.text + captured.out + captured.err
    assert f"cannot use {blocker / 'rates'} (Not a directory)" in said and "rate_limit_folder" in said


def test_outage_surfaces_as_retriable_error(sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """An outage mid-run (every call after N answers 503) ends in RetriableSyncError after bounded retries."""
    use_connection(monkeypatch, sim)
    hook = fast_hook(max_retries=3)
    hook.test_connection()
    sim.faults(fail_after=2)
    with pytest.raises(RetriableSyncError):
        hook.bulk_create("accounts", [account(n) for n in range(1000)])
    with pytest.raises(RetriableSyncError) as info:
        hook.list_all("accounts")
    assert "503" in str(info.value)
    assert not isinstance(info.value, FatalSyncError)
    sim.heal()
    assert sim.stats()["duplicate_ext_ids"].get("accounts", []) == []


def test_c2_read_only_account_refuses_user_key_accepts_integration_key(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """C2: a read-only account: a non-integration key gets 403 (SsmApiError); the integration key may modify it."""
    use_connection(monkeypatch, sim)
    use_connection(monkeypatch, sim, which="user", conn_id="ssm_user")
    integration = fast_hook()
    user = fast_hook("ssm_user")
    rid = integration.create("accounts", account("RO", readOnly=True))

    with pytest.raises(SsmApiError) as info:
        user.update("accounts", rid, {"comment": "edited in SSM"})
    assert info.value.status == 403
    with pytest.raises(SsmApiError) as info:
        user.delete("accounts", rid)
    assert info.value.status == 403
    [outcome] = user.bulk_update("accounts", [{"id": rid, "data": {"phone": "01 02 03 04 05"}}])
    assert outcome.status == 403 and not outcome.ok
    assert user.get("accounts", rid)["comment"] is None  # reading is allowed

    integration.update("accounts", rid, {"comment": "from Sage"})
    [outcome] = integration.bulk_update(
        "accounts", [{"id": rid, "data": {"phone": "01 02 03 04 05"}, "guid": "k"}]
    )
    assert outcome.ok and outcome.guid == "k"
    record = integration.get("accounts", rid)
    assert (record["comment"], record["phone"], record["readOnly"]) == ("from Sage", "01 02 03 04 05", True)


def test_records_value_lists_documents_and_lookups(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Single-record calls, value lists, custom fields, extId lookups in several batches and picture uploads."""
    use_connection(monkeypatch, sim)
    hook = fast_hook()

    statuses = {s["descriptionFR"] for s in hook.value_list("accountStatuses")}
    assert {"Client", "Prospect"} <= statuses
    assert {u["id"] for u in hook.value_list("users")} >= {u["id"] for u in sim.keys["users"]}
    assert [f["Key"] for f in hook.custom_fields("empresas")] == ["Z_Siret"]
    assert {"Z_StockDisplay", "Z_Unit", "Z_Barcode"} <= {f["Key"] for f in hook.custom_fields("articulos")}

    rid = hook.create("accounts", account("X1", Z_Siret="12345678900011"))
    hook.update("accounts", rid, {"city": "Lyon"})
    record = hook.get("accounts", rid)
    assert (record["city"], record["Z_Siret"], record["name"]) == ("Lyon", "12345678900011", "Société X1")
    hook.delete("accounts", rid)
    hook.delete("accounts", rid)  # a soft delete twice is harmless
    assert hook.get("accounts", rid)["deleted"] is True
    with pytest.raises(SsmApiError) as info:
        hook.get("accounts", 999_999)
    assert (info.value.status, info.value.code) == (400, 910)

    # Bulk chunks of the API maximum (products: 100) with per-item failures.
    products = [{"model": f"Article {n}", "extId": f"AR{n:04d}", "price": 10.5} for n in range(250)]
    products[7] = {"extId": "AR-NO-MODEL"}  # create requires `model`
    outcomes = hook.bulk_create("products", products)
    assert sim.stats()["by_route"]["POST /api/v4/products/bulk"] == 3
    assert (
        [o.ok for o in outcomes].count(False) == 1
        and outcomes[7].status == 400
        and "model" in outcomes[7].message
    )

    # extId lookups (C1 adoption): 250 ids do not fit one URL; listing the tenant's 249 products that carry an
    # extId costs one call, fewer than the lookup batches, so that is what is sent. Absent ids are simply missing.
    sim.reset_stats()
    wanted = [f"AR{n:04d}" for n in range(250) if n != 7] + ["ABSENT"]
    found = hook.find_by_ext_ids("products", wanted)
    assert set(found) == set(wanted) - {"ABSENT"}
    assert list_calls(sim, "products") == 1
    # The same through batched lookups (what a tenant too big to list gets) finds the same records.
    sim.reset_stats()
    looked_up = {r["extId"]: r for r in hook.iter_records_in("products", "extId", wanted)}
    assert {k: r["id"] for k, r in looked_up.items()} == {k: r["id"] for k, r in found.items()}
    assert list_calls(sim, "products") > 1
    # An empty list costs one call whatever the number of keys (a first load onto an empty tenant).
    sim.reset_stats()
    assert hook.find_by_ext_ids("contacts", [f"C{n:06d}/1" for n in range(5000)]) == {}
    assert list_calls(sim, "contacts") == 1
    # A few keys: one lookup.
    sim.reset_stats()
    assert set(hook.find_by_ext_ids("products", ["AR0001", "AR0002"])) == {"AR0001", "AR0002"}
    assert list_calls(sim, "products") == 1

    # Pictures: create the document, upload the bytes to its locator, list and delete.
    product_id = outcomes[0].id
    assert product_id is not None
    picture = bytes(range(256)) * 40
    doc_id = hook.upload_product_picture(product_id, "AR0000.jpg", picture)
    [doc] = hook.list_product_documents(product_id)
    assert (str(doc["id"]), doc["name"], doc["size"]) == (doc_id, "AR0000.jpg", len(picture))
    assert doc["sha256"] == hashlib.sha256(picture).hexdigest()
    hook.delete_product_document(product_id, doc_id)
    assert hook.list_product_documents(product_id) == []
    assert hook.calls.reads > 0 and hook.calls.writes > 0


def test_no_key_or_session_token_in_logs(
    sim: SimulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Across logins, re-logins, retries, API errors and a failed connection test, no key or token is logged."""
    caplog.set_level(logging.DEBUG)
    use_connection(monkeypatch, sim)
    adapter = RecordingAdapter()
    hook = fast_hook(adapter=adapter, max_retries=10)
    messages: list[str] = []

    assert hook.test_connection()[0]
    hook.bulk_create("accounts", [account(n) for n in range(300)])
    sim.token_ttl(2.0)
    time.sleep(2.2)
    hook.list_all("accounts")  # a re-login
    sim.token_ttl(3600)
    sim.faults(p429=0.3, p503=0.2, pdrop=0.1, seed=11)
    hook.bulk_create("accounts", [account(f"S{n}") for n in range(300)])
    sim.heal()
    for bad in ("nosuch = 1", "name = 'x"):
        with pytest.raises(SsmApiError) as info:
            hook.list_all("accounts", where=bad)
        messages.append(str(info.value))
    sim.token_ttl(0.05)
    sim.faults(latency_ms=100)
    with pytest.raises(SsmApiError) as info:
        hook.get("accounts", 1)
    messages.append(str(info.value))
    sim.heal()
    sim.token_ttl(3600)  # a 50 ms session would expire between login and the next call on a busy machine
    product = hook.create("products", {"model": "M", "extId": "P1"})
    hook.upload_product_picture(product, "p.png", b"\x89PNG....")

    use_connection(monkeypatch, sim, conn_id="ssm_wrong")
    wrong = json.loads(os.environ["AIRFLOW_CONN_SSM_WRONG"])
    wrong["password"] = "0" * 32
    monkeypatch.setenv("AIRFLOW_CONN_SSM_WRONG", json.dumps(wrong))
    ok, message = fast_hook("ssm_wrong").test_connection()
    assert not ok and "401" in message
    messages.append(message)

    assert len(adapter.session_keys) >= 3  # several logins happened
    captured = capsys.readouterr()
    text = "\n".join(
        [caplog.text, captured.out, captured.err, *messages, *(r.getMessage() for r in caplog.records)]
    )
    assert "retry" in text  # the scenario did log retries
    secrets = [sim.keys[w][k] for w in ("integration", "user") for k in ("public_key", "private_key")]
    for secret in [*secrets, *adapter.session_keys]:
        assert secret not in text

    # Issue 3: the hook registers the keys and every session key the real simulator issued (re-logins
    # included) with Airflow's secrets masker, so a task log that quotes one shows *** instead.
    from airflow.sdk.log import redact

    integration = sim.keys["integration"]
    for secret in [integration["public_key"], integration["private_key"], *adapter.session_keys]:
        assert redact(f"X-Session-Key: {secret} ;") == "X-Session-Key: *** ;"
        assert redact({"headers": {"X-Session-Key": secret}}) == {"headers": {"X-Session-Key": "***"}}


def test_upload_locators_reach_no_log_and_not_airflows_masker(
    sim: SimulatorHandle,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """30 pictures with every logger at DEBUG: no locator in any log line, and Airflow's masker grows by a
    handful of patterns (keys, session key), not one per picture."""
    from airflow.sdk import log as airflow_log

    masker = airflow_log._secrets_masker()  # the object airflow.sdk.log.mask_secret adds to
    patterns_before = len(masker.patterns)
    caplog.set_level(logging.DEBUG)  # the root logger: urllib3 logs every request line at DEBUG
    use_connection(monkeypatch, sim)
    adapter = RecordingAdapter()
    hook = fast_hook(adapter=adapter)
    products = hook.bulk_create("products", [{"model": f"M{n}", "extId": f"PIC{n:02d}"} for n in range(30)])
    patterns_logged_in = len(masker.patterns)  # keys, session key, and what Airflow masks of the connection
    for n, product in enumerate(products):
        assert product.id is not None
        hook.upload_product_picture(product.id, f"PIC{n:02d}.png", b"\x89PNG" + bytes([n]) * 64)

    assert len(adapter.upload_urls) == 30
    assert len(masker.patterns) == patterns_logged_in  # not one pattern per picture
    assert len(masker.patterns) - patterns_before <= 4
    captured = capsys.readouterr()
    text = "\n".join([caplog.text, captured.out, captured.err, *(r.getMessage() for r in caplog.records)])
    for url in adapter.upload_urls:
        secret = urlsplit(url).path.rsplit("/", 1)[-1]
        assert len(secret) >= 8 and secret not in text, url
    # The check is live: urllib3 did log each upload's request line, with the locator scrubbed.
    put_lines = [
        r.getMessage()
        for r in caplog.records
        if r.name == "urllib3.connectionpool" and '"PUT ' in r.getMessage()
    ]
    assert len(put_lines) == 30 and all('"PUT *** HTTP/1.1" 200' in line for line in put_lines), put_lines[:2]
    assert hook.scrub(adapter.upload_urls[-1]) == "***"
    assert all(len(hook.list_product_documents(p.id or 0)) == 1 for p in products[:3])


def test_c1_adoption_on_a_tenant_too_big_to_list_falls_back_to_lookups(
    sim: SimulatorHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2,100 accounts with an extId, 60 keys wanted (2 lookup batches): the listing stops after 2 pages, then
    the 2 lookups run; the records found, twins included, are those the lookups alone find."""
    use_connection(monkeypatch, sim)
    hook = fast_hook()
    outcomes = hook.bulk_create("accounts", [account(f"T{n:05d}") for n in range(2100)])
    assert all(o.ok for o in outcomes)
    twin = hook.create(
        "accounts", account("T02050")
    )  # a second record with a wanted extId, late in the tenant
    wanted = [f"CT{n:05d}" for n in range(2000, 2060)]
    sim.reset_stats()
    found = hook.find_by_ext_ids("accounts", wanted)
    assert list_calls(sim, "accounts") == 4  # 2 pages of 1000, then 2 lookup batches
    assert set(found) == set(wanted)
    assert found["CT02050"]["id"] != twin  # the lowest id wins among live records with one extId
