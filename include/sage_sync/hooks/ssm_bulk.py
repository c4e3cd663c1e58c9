"""Bulk outcomes, and creates that stay exactly once when a response is lost (ADR 0003, decision 5).

A create whose response is lost (dropped connection after sending, read timeout, 5xx) may have been applied.
:class:`ExactlyOnceCreates` then waits one backoff, looks the pending items up by ``extId``, reports those it
finds as created (``recovered=True``) and re-sends only the others; items without an ``extId`` cannot be
checked and come back with status 0 ("outcome unknown").
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import requests

from sage_sync.errors import RetriableSyncError
from sage_sync.hooks.retry import RetryPolicy
from sage_sync.hooks.ssm_transport import Scrub, SsmTransport, decode_json
from sage_sync.hooks.ssm_types import BulkOutcome, SsmApiError, WriteOutcomeUnknown

__all__ = ["ExactlyOnceCreates", "Lookup", "as_id", "fill_outcomes"]

log = logging.getLogger(__name__)

#: ``(entity, extIds) -> {extId: record}``, the hook's ``find_by_ext_ids``.
Lookup = Callable[[str, Sequence[str]], Mapping[str, Mapping[str, Any]]]


class ExactlyOnceCreates:
    """Send creates, single or bulk, and reconcile lost responses by ``extId`` before re-sending.

    Args:
        transport: sends the calls (creates as non-idempotent).
        lookup: finds records by ``extId``.
        policy: bounds the lost responses per chunk (``max_retries``) and the wait before each lookup.
        scrub: removes secrets from the API's per-item messages.
        sleep: the sleep function before each lookup.
    """

    def __init__(
        self,
        transport: SsmTransport,
        lookup: Lookup,
        policy: RetryPolicy,
        scrub: Scrub,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.transport = transport
        self.lookup = lookup
        self.policy = policy
        self.scrub = scrub
        self.sleep = sleep

    def send(
        self,
        entity: str,
        indexes: list[int],
        items: Sequence[Mapping[str, Any]],
        keys: list[str],
        outcomes: list[BulkOutcome | None],
        *,
        single: bool,
    ) -> None:
        """Create ``items[i]`` for each ``i`` in ``indexes`` and fill ``outcomes[i]``.

        Args:
            entity: e.g. ``accounts`` (already validated).
            indexes: positions in ``items`` sent in this call.
            items: every item's data.
            keys: every item's client key (``guid``).
            outcomes: filled in place, one per index.
            single: ``POST /<entity>`` with one item instead of ``POST /<entity>/bulk``.

        Raises:
            RetriableSyncError: responses were lost more than ``max_retries`` times.
        """
        pending = list(indexes)
        policy = self.policy
        lost = 0
        while pending:
            try:
                if single:
                    path = f"/{entity}"
                    index = pending[0]
                    response = self.transport.send(
                        "POST", path, json_body=dict(items[index]), idempotent=False
                    )
                    payload = decode_json(response, "POST", path)
                    new_id = as_id(payload.get("id")) if isinstance(payload, dict) else None
                    if new_id is None:
                        raise SsmApiError(
                            response.status_code, None, "a create answered without an id", "POST", path
                        )
                    message = str(payload.get("Message") or payload.get("message") or "entity created")
                    outcomes[index] = BulkOutcome(keys[index], new_id, 200, message)
                else:
                    path = f"/{entity}/bulk"
                    body = [{"guid": keys[i], "data": dict(items[i])} for i in pending]
                    response = self.transport.send("POST", path, json_body=body, idempotent=False)
                    fill_outcomes(response, path, pending, keys, outcomes, self.scrub)
                return
            except WriteOutcomeUnknown as exc:
                lost += 1
                if lost > policy.max_retries:
                    raise RetriableSyncError(
                        f"SSM API POST /{entity}: {len(pending)} item(s) still unconfirmed after {lost} lost "
                        f"response(s); last: {exc}"
                    ) from None
                log.warning("%s; checking by extId before re-sending", exc)
                self.sleep(policy.delay(lost - 1))
                pending = self._reconcile(entity, pending, items, keys, outcomes)

    def _reconcile(
        self,
        entity: str,
        pending: list[int],
        items: Sequence[Mapping[str, Any]],
        keys: list[str],
        outcomes: list[BulkOutcome | None],
    ) -> list[int]:
        """After a lost create response: mark items found by extId as created, return those to re-send."""
        ext_of = {i: items[i].get("extId") for i in pending}
        found = self.lookup(entity, [e for e in ext_of.values() if isinstance(e, str)])
        still: list[int] = []
        for i in pending:
            ext = ext_of[i]
            if not isinstance(ext, str):
                outcomes[i] = BulkOutcome(
                    keys[i],
                    None,
                    0,
                    "outcome unknown after a lost response and no extId to check it; not re-sent to avoid a duplicate",
                )
                continue
            record = found.get(ext)
            if record is not None and not record.get("deleted"):
                outcomes[i] = BulkOutcome(
                    keys[i],
                    as_id(record.get("id")),
                    200,
                    "entity created (confirmed by extId after a lost response)",
                    recovered=True,
                )
            else:
                still.append(i)
        return still


def fill_outcomes(
    response: requests.Response,
    path: str,
    sent: list[int],
    keys: list[str],
    outcomes: list[BulkOutcome | None],
    scrub: Scrub,
) -> None:
    """Fill ``outcomes[i]`` for each sent index from a bulk response (one result per item, in order)."""
    method = (response.request.method if response.request is not None else None) or "POST"
    results = decode_json(response, method, path)
    if not isinstance(results, list) or len(results) != len(sent):
        raise SsmApiError(
            response.status_code,
            None,
            f"a bulk call answered {len(results) if isinstance(results, list) else 'no list'} result(s) "
            f"for {len(sent)} item(s)",
            method,
            path,
        )
    for i, result in zip(sent, results, strict=True):
        result = result if isinstance(result, dict) else {}
        status = result.get("status")
        outcomes[i] = BulkOutcome(
            guid=keys[i],
            id=as_id(result.get("id")),
            status=status if isinstance(status, int) and not isinstance(status, bool) else 0,
            message=scrub(str(result.get("message") or result.get("Message") or "")),
        )


def as_id(value: Any) -> int | None:
    """An API id as int (ids are ints; tolerate numeric strings)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None
