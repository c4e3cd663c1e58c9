"""What a DAG scenario reads back from the SSM simulator to check a rule."""

from __future__ import annotations

from typing import Any

from sage_sync_tools.stack import SyncStack


def by_ext_id(stack: SyncStack, route: str) -> dict[str, dict[str, Any]]:
    """Every record of ``route`` (``accounts``, ``contacts``...) that carries an ``extId``, deleted ones included."""
    client = stack.integration_client()
    try:
        return {str(r["extId"]): r for r in client.list(route) if r.get("extId")}
    finally:
        client.close()
