"""OpenLineage datasets of each entity's load, from the entity registry (the DAG scenario checks the events)."""

from __future__ import annotations

from sage_sync.lineage import DatasetName, load_lineage, sage_namespace, ssm_namespace


def test_namespaces_name_the_systems_without_secrets() -> None:
    assert sage_namespace("db.local", 5432, "dossier") == "sage50://db.local:5432/dossier"
    assert sage_namespace(None, None, "/srv/sage/DOSSIER.db") == "sage50://file/srv/sage/DOSSIER.db"
    assert ssm_namespace("https://api.forcemanager.com/api/v4?x=1") == "https://api.forcemanager.com"


def test_each_load_reads_its_sage_tables_and_writes_its_endpoints() -> None:
    inputs, outputs = load_lineage("invoices", "sage50://file/d.db", "https://ssm")
    assert inputs == [
        DatasetName("sage50://file/d.db", "F_DOCENTETE"),
        DatasetName("sage50://file/d.db", "F_DOCLIGNE"),
    ]
    assert outputs == [
        DatasetName("https://ssm", "salesorders"),
        DatasetName("https://ssm", "salesordersLines"),
    ]
    inputs, outputs = load_lineage("contacts", "s", "m")
    assert (
        DatasetName("m", "contacts") in inputs and DatasetName("s", "F_CONTACTT") in outputs
    )  # two-way (K1, K2)
