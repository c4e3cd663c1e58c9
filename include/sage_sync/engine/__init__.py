"""The sync engine: every rule of SPEC section 2 in plain Python (no Airflow).

Steps, each with serialisable inputs and outputs (:mod:`.run`): ``extract`` -> ``plan_entity`` -> ``apply_plan``
-> ``commit_plan``; ``run_once`` chains them for all entities. The two sides are Protocols (:mod:`.sides`) with
in-memory implementations for tests (:mod:`.memory`); the state lives in :mod:`.state`; plans in :mod:`.plan`;
the per-entity rules in :mod:`.rules`.
"""

from __future__ import annotations
