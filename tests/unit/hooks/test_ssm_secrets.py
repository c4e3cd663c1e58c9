"""Upload locators stay secret without Airflow's masker; keys and session keys are masked (ssm_secrets).

Through the fake transport: the upload's failures name no locator, urllib3-style log records written while the
upload is in flight are scrubbed, and Airflow's masker gets a handful of registrations however many pictures
are uploaded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
import requests
from airflow.sdk import log as airflow_log

from sage_sync.errors import RetriableSyncError
from sage_sync.hooks.ssm import SsmApiError
from sage_sync.hooks.ssm_secrets import URLLIB3_LOGGERS, locator_variants
from tests.unit.hooks.ssm_fakes import Reply, make_hook

SECRET = "s3cr3t-9f8e7d6c5b4a"


def uploads(put: Callable[[requests.PreparedRequest], Reply]) -> Callable[[requests.PreparedRequest], Reply]:
    """Document creation answers a new locator each time; the PUT to it is answered by ``put``."""
    count = iter(range(10_000))

    def handler(r: requests.PreparedRequest) -> Reply:
        if r.method == "POST":
            n = next(count)
            return (
                200,
                {"id": str(n), "locator": f"https://files.example.test/up/{SECRET}-{n:04d}?sig=abc{n}"},
            )
        return put(r)

    return handler


def test_a_failed_upload_names_no_locator(connection: Callable[..., None]) -> None:
    def dropped_with_url(r: requests.PreparedRequest) -> Reply:
        return requests.ConnectionError(f"Max retries exceeded with url: /up/{SECRET}-0000?sig=abc0 (reset)")

    hook, _ = make_hook(uploads(dropped_with_url), max_retries=1)
    with pytest.raises(RetriableSyncError) as info:
        hook.upload_product_picture(1, "p.jpg", b"jpg")
    assert SECRET not in str(info.value) and "(upload)" in str(info.value)

    def refused_echoing_it(r: requests.PreparedRequest) -> Reply:
        return (403, {"message": f"signature expired for {r.url}"})

    hook, _ = make_hook(uploads(refused_echoing_it))
    with pytest.raises(SsmApiError) as refused:
        hook.upload_product_picture(1, "p.jpg", b"jpg")
    assert SECRET not in str(refused.value) and "signature expired for ***" in str(refused.value)


def test_urllib3_records_are_scrubbed_while_the_upload_is_in_flight(
    connection: Callable[..., None], caplog: pytest.LogCaptureFixture
) -> None:
    """Each of urllib3's URL-printing loggers, as it writes the request line during the PUT."""
    caplog.set_level(logging.DEBUG)

    def put_logging_like_urllib3(r: requests.PreparedRequest) -> Reply:
        path = (r.path_url or "").strip()
        for name in URLLIB3_LOGGERS:
            logging.getLogger(name).debug(
                '%s://%s:%s "%s %s %s" %s %s', "https", "files", 443, "PUT", path, "HTTP/1.1", 200, 0
            )
        return (200, b"")

    hook, _ = make_hook(uploads(put_logging_like_urllib3))
    hook.upload_product_picture(1, "p.jpg", b"jpg")
    lines = [r.getMessage() for r in caplog.records if r.name in URLLIB3_LOGGERS]
    assert len(lines) == len(URLLIB3_LOGGERS)
    assert all('"PUT *** HTTP/1.1"' in line for line in lines), lines
    assert SECRET not in caplog.text


def test_locator_variants_cover_the_path_and_the_requoted_url() -> None:
    variants = locator_variants("/upload/a b", "https://h.test/upload/a b")
    assert {
        "/upload/a b",
        "https://h.test/upload/a b",
        "https://h.test/upload/a%20b",
        "/upload/a%20b",
    } <= variants


def test_airflows_masker_gets_keys_and_session_keys_not_locators(connection: Callable[..., None]) -> None:
    masker = airflow_log._secrets_masker()  # the object airflow.sdk.log.mask_secret adds to
    before = len(masker.patterns)
    hook, transport = make_hook(uploads(lambda r: (200, b"")))
    for n in range(200):
        hook.upload_product_picture(1, f"p{n}.jpg", b"jpg")
    assert len(masker.patterns) - before <= 3  # public key, private key, one session key
    last = transport.sent[-1].url or ""
    assert hook.scrub(f"upload to {last} failed") == "upload to *** failed"
