"""Build the engine's two sides over the hooks, from the Airflow connections and the dossier settings."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sage_sync.adapters.sage_odbc import SageOdbcSide
    from sage_sync.engine.sides import SsmSide
    from sage_sync.hooks.ratelimit import Precedence
    from sage_sync.settings import Settings


def sage_side(conn_id: str, settings: Settings) -> SageOdbcSide:
    """Sage 50 FR through ODBC (connection ``conn_id``); pictures from the settings' media folder (D3)."""
    from sage_sync.adapters.sage_odbc import SageOdbcSide
    from sage_sync.hooks.sage50 import Sage50Hook

    return SageOdbcSide(Sage50Hook(sage50_conn_id=conn_id), media_folder=settings.media_folder)


def ssm_side(conn_id: str, settings: Settings | None = None, precedence: Precedence = "share") -> SsmSide:
    """Sage Sales Management through API v4 (connection ``conn_id``), as the settings' dossier sees it (M2).

    With several dossiers or an extId prefix, the side only shows the dossier's own records under bare Sage keys
    (:class:`~sage_sync.engine.dossier_side.DossierSsmSide`); otherwise it is the plain adapter. ``precedence`` is
    the caller's turn in the key's rate limit (:data:`~sage_sync.hooks.ratelimit.Precedence`).
    """
    from sage_sync.adapters.ssm_api import SsmApiSide
    from sage_sync.hooks.ssm import SalesManagementHook

    side = SsmApiSide(SalesManagementHook(ssm_conn_id=conn_id, precedence=precedence))
    ownership = settings.ownership() if settings is not None else None
    if ownership is None or ownership.identity:
        return side
    from sage_sync.engine.dossier_side import DossierSsmSide

    return DossierSsmSide(side, ownership)
