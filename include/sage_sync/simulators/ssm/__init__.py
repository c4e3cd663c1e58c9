"""Simulator of the Sage Sales Management API v4 (contracts/SSM-API.md): a real HTTP server with a SQLite tenant.

Run it with ``sage-sync simulator serve --port 8765 --db tenant.sqlite --admin`` (or
``python -m sage_sync.simulators.ssm serve ...``). Tests start it through ``tests/support/simulator.py``.

Modules: ``entities`` (fields, types, custom fields per entity), ``where`` (the filter language),
``records`` (validation, writes, lists, serialisation), ``store`` (memory + SQLite write-through), ``seed``
(deterministic users, keys and value lists), ``runtime`` (sessions, rate limit, faults, counters), ``app``
(the ASGI application), ``server``/``cli`` (start-up).

Simulator-only endpoints, enabled by ``--admin`` (otherwise 404), without authentication:

* ``GET /__sim/keys`` → ``{"integration": {public_key, private_key, user_id}, "user": {...},
  "users": [{id, name, lastName, email, isAdmin}], "admin_user_id"}``. Keys derive from ``--seed``.
* ``POST /__sim/reset`` → wipes every record and document and re-seeds users and value lists; also clears
  faults, the clock offset and the counters and restores the start-up token lifetime. Keys, live session
  tokens and the rate limit are unchanged. Answers like ``/__sim/keys``.
* ``POST /__sim/faults`` ``{p429, p500, p503, pdrop, p500_after, pdrop_after, latency_ms, fail_after,
  seed}`` (merged into the current settings) and ``POST /__sim/heal``. Faults touch ``/api/v4`` calls only.
  ``p429``/``p500``/``p503``/``pdrop`` are decided before the request is applied, so a faulted call has no
  effect; ``p500_after`` applies the request and then answers 500, ``pdrop_after`` applies it and then aborts
  the connection without any response (both are lost responses). ``fail_after: N`` lets N more calls
  through, then answers 503 until healed. ``pdrop`` aborts the TCP connection without a response.
* ``GET /__sim/stats`` (total, by_route, by_status — a dropped call counts as ``"dropped"``, or as
  ``"dropped_after"`` when it was applied first —, reads, writes, logins, served_429, records_written, duplicate_ext_ids) and ``POST /__sim/stats/reset``.
* ``POST /__sim/clock`` ``{"offset_seconds"}`` sets the offset of the server clock used for record dates
  (token expiry uses real elapsed time, so shifting the clock does not log clients out).
* ``POST /__sim/token_ttl`` ``{"seconds"}`` changes the lifetime of new and existing tokens.

Decisions where the contract is silent: a ``Count`` outside 1..1000 is a 400 (not silently capped);
unknown non-``Z_`` fields and read-only system fields in a write are a 400; ``LIKE`` is case-insensitive
while ``=`` on text is exact; a second ``DELETE`` of a deleted record answers 200 and keeps the first
deletion's date; product document uploads go to ``PUT /upload/<secret>`` (the locator), outside ``/api/v4``
and its statistics, like a pre-signed storage URL.
"""
