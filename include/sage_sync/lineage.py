"""What each entity's load reads and writes, as OpenLineage datasets (no Airflow import).

An entity's load moves data from its Sage tables (the mapping's sources, read through ODBC) to its SSM endpoints
(its records, and its lines for invoices); two-way entities also write back to their main Sage table. The
namespaces name the systems without any secret: the dossier by its server (or ``file`` for a SQLite dossier) and
database, the tenant by its API base URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from sage_sync.mapping.registry import registry


@dataclass(frozen=True)
class DatasetName:
    """One OpenLineage dataset: its namespace and name."""

    namespace: str
    name: str


def sage_namespace(host: str | None, port: int | None, database: str | None) -> str:
    """``sage50://server:port/database``, or ``sage50://file/<path>`` for a SQLite dossier."""
    if host:
        return f"sage50://{host}{f':{port}' if port else ''}/{database or ''}"
    return f"sage50://file/{(database or '').lstrip('/')}"


def ssm_namespace(base_url: str) -> str:
    """The tenant's API as ``https://host[:port]`` (the path and any query left out)."""
    parts = urlsplit(base_url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else base_url


def load_lineage(entity: str, sage: str, ssm: str) -> tuple[list[DatasetName], list[DatasetName]]:
    """The datasets ``entity``'s load reads and writes."""
    spec = registry()[entity]
    tables = [source.table for source in spec.mapping.sources.values()]
    inputs = [DatasetName(sage, table) for table in tables]
    outputs = [DatasetName(ssm, spec.endpoint)]
    if spec.lines is not None:
        outputs.append(DatasetName(ssm, spec.lines.endpoint))
    if spec.two_way:
        inputs.append(DatasetName(ssm, spec.endpoint))
        outputs.append(DatasetName(sage, spec.mapping.main.table))
    return inputs, outputs
