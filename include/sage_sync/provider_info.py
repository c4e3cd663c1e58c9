"""The project as an Airflow provider: its two connection types, with their form (entry point ``apache_airflow_provider``).

Airflow's Connections page reads this without importing the hooks: the labels, placeholders and extra fields of
the ``sage50`` and ``sage_ssm`` forms, and which hook's ``test_connection`` the *Test* button runs. The extra
fields are stored under their own names in the connection's ``extra`` (``driver``, ``requests_per_second``…),
the names the hooks read. Connections of type ``odbc`` or ``http`` keep working: the hooks find a connection by
its id, whatever its type.
"""

from __future__ import annotations

from typing import Any

SAGE50_TYPE = "sage50"
SSM_TYPE = "sage_ssm"


def _field(label: str, description: str, kind: str, default: Any = None, **schema: Any) -> dict[str, Any]:
    return {
        "label": label,
        "description": description,
        "schema": {"type": [kind, "null"], "default": default, **schema},
    }


def get_provider_info() -> dict[str, Any]:
    """What Airflow's providers manager registers for this package."""
    return {
        "package-name": "sage-sync",
        "name": "Sage 50 FR - Sage Sales Management sync",
        "description": "Connection types of the Sage 50 FR dossier (ODBC) and the Sage Sales Management API v4.",
        "connection-types": [
            {
                "connection-type": SAGE50_TYPE,
                "hook-class-name": "sage_sync.hooks.sage50.Sage50Hook",
                "hook-name": "Sage 50 FR (ODBC)",
                "ui-field-behaviour": {
                    "hidden-fields": [],
                    "relabeling": {
                        "schema": "Dossier (SQLite file or PostgreSQL database)",
                        "host": "Server (PostgreSQL dossier only)",
                        "login": "Database user",
                        "password": "Database password",
                    },
                    "placeholders": {
                        "schema": "/srv/sage/DOSSIER.db",
                        "host": "leave empty for a SQLite file",
                        "port": "5432",
                        "login": "sage_sync",
                    },
                },
                "conn-fields": {
                    "driver": _field(
                        "ODBC driver",
                        "The unixODBC driver name: SQLite3, PostgreSQL Unicode or PostgreSQL ANSI "
                        "(needs AIRFLOW__PROVIDERS_ODBC__ALLOW_DRIVER_IN_EXTRA=True).",
                        "string",
                        "SQLite3",
                    ),
                    "encoding": _field(
                        "Text encoding",
                        "cp1252 or utf-8; empty: the driver's rule (cp1252 for a PostgreSQL ANSI dossier).",
                        "string",
                    ),
                },
            },
            {
                "connection-type": SSM_TYPE,
                "hook-class-name": "sage_sync.hooks.ssm.SalesManagementHook",
                "hook-name": "Sage Sales Management (API v4)",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "API base URL",
                        "login": "Public API key",
                        "password": "Private API key",
                    },
                    "placeholders": {
                        "host": "https://api.forcemanager.com/api/v4",
                        "login": "the integration user's public key",
                    },
                },
                "conn-fields": {
                    "requests_per_second": _field(
                        "Requests per second",
                        "The tenant's rate limit per API key (4 or 13 depending on the plan), shared by every "
                        "task calling with the key; 0: no limit.",
                        "number",
                        4,
                        minimum=0,
                    ),
                    "page_size": _field(
                        "Page size",
                        "Records per list page (1 to 1000).",
                        "integer",
                        1000,
                        minimum=1,
                        maximum=1000,
                    ),
                    "timeout": _field(
                        "Timeout (s)", "Seconds to wait for one answer.", "number", 60, minimum=1
                    ),
                    "max_retries": _field(
                        "Retries",
                        "Retries of a transient failure (429, 5xx, dropped connection).",
                        "integer",
                        6,
                    ),
                    "parallel_calls": _field(
                        "Parallel bulk calls",
                        "Bulk create calls a load keeps in flight at once (1 to 8), within the rate limit.",
                        "integer",
                        4,
                    ),
                    "rate_limit_folder": _field(
                        "Rate limit folder",
                        "Where the tasks calling with this key share their rate limit (a small file per key): "
                        "empty for the machine's temporary folder; a folder every worker host mounts shares "
                        "it between hosts.",
                        "string",
                    ),
                },
            },
        ],
    }
