"""Great Expectations 1.x plumbing: suite from spec, one ephemeral context per validation, Data Docs in a folder.

GX is imported inside the functions: importing it costs seconds, and DAG files (which import operators, which
import this package) must parse fast without it.
"""

from __future__ import annotations

import datetime
import fcntl
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from sage_sync.errors import ConfigurationError
from sage_sync.quality.data_docs import INDEX, DataDocsSite, publish
from sage_sync.quality.spec import ExpectationSpec, SuiteSpec

if TYPE_CHECKING:
    from great_expectations import ExpectationSuite
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
    from great_expectations.expectations.expectation import Expectation

DOCS_LIST_LIMIT = 20
"""Unexpected values/indices kept per expectation in stored results: Data Docs stay small at 100k rows."""


@cache
def expectation_class(expect: str) -> type[Expectation]:
    """The GX expectation class for a snake-case name (``expect_column_values_to_be_unique``)."""
    import great_expectations as gx

    camel = "".join(part.capitalize() for part in expect.split("_"))
    cls = getattr(gx.expectations, camel, None)
    if cls is None:
        raise ConfigurationError(f"Great Expectations has no expectation {expect!r} ({camel})")
    result: type[Expectation] = cls
    return result


def _expectation(spec: ExpectationSpec) -> Expectation:
    kwargs: dict[str, Any] = dict(spec.kwargs)
    if spec.gx_column is not None:
        kwargs["column"] = spec.gx_column
    if spec.columns:
        kwargs["column_list"] = list(spec.columns)
    meta = {"id": spec.id, "severity": spec.severity}
    if spec.sage:
        meta["sage_column"] = spec.sage
    try:
        return expectation_class(spec.expect)(**kwargs, meta=meta, notes=spec.reason)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"expectation {spec.id!r} ({spec.expect}): bad arguments: {exc}") from exc


def build_suite(spec: SuiteSpec, active: Sequence[ExpectationSpec]) -> ExpectationSuite:
    """A fresh GX suite holding the ``active`` expectations of ``spec`` (GX objects are bound to one context)."""
    import great_expectations as gx

    # Passed whole: add_expectation would re-serialise the suite into the context's store at each addition.
    return gx.ExpectationSuite(
        name=spec.name,
        meta={"description": spec.description},
        expectations=[_expectation(item) for item in active],
    )


@cache
def _batch_definition(suite: str) -> Any:
    """A whole-dataframe batch definition of ``suite`` in this process's ephemeral context (built once).

    Building a context and its data source saves the context's configuration each time (tens of milliseconds):
    a run validates several entities, and a test process thousands of frames.
    """
    context = _ephemeral_context()
    return (
        context.data_sources.add_pandas(f"{suite}_frame")
        .add_dataframe_asset(suite)
        .add_batch_definition_whole_dataframe("whole_frame")
    )


@cache
def _ephemeral_context() -> Any:
    """The ephemeral GX context of this process (in memory, nothing on disk)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    # Progress bars would flood Airflow task logs with one line per metric batch.
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def run_identifier(run_id: str | None) -> Any:
    """A GX run identifier named after the Airflow run (or ``adhoc``), stamped now in UTC."""
    from great_expectations.core.run_identifier import RunIdentifier

    return RunIdentifier(run_name=run_id or "adhoc", run_time=datetime.datetime.now(datetime.UTC))


def validate(
    spec: SuiteSpec,
    active: Sequence[ExpectationSpec],
    frame: pd.DataFrame,
    *,
    parameters: dict[str, Any],
    run_id: Any,
) -> tuple[ExpectationSuite, ExpectationSuiteValidationResult]:
    """Validate ``frame`` against the active expectations in an ephemeral context; COMPLETE result format."""
    batch = _batch_definition(spec.name).get_batch(batch_parameters={"dataframe": frame})
    suite = build_suite(spec, active)
    # Batch.validate, unlike ValidationDefinition.run, does not serialise the COMPLETE result into a store: at
    # 100k rows with many failures that alone costs seconds. Data Docs get a trimmed copy (write_data_docs).
    results = batch.validate(suite, result_format="COMPLETE", expectation_parameters=parameters)
    results.meta["run_id"] = run_id
    return suite, results


def merged(
    spec: SuiteSpec, active: Sequence[ExpectationSpec], parts: Sequence[ExpectationSuiteValidationResult]
) -> tuple[ExpectationSuite, ExpectationSuiteValidationResult]:
    """One suite and one result out of validations of the same suite on different frames (whole table, rows)."""
    first = parts[0]
    for more in parts[1:]:
        first.results.extend(more.results)
    evaluated = len(first.results)
    successful = sum(1 for r in first.results if r.success)
    first.success = successful == evaluated
    first.statistics.update(
        evaluated_expectations=evaluated,
        successful_expectations=successful,
        unsuccessful_expectations=evaluated - successful,
        success_percent=100.0 * successful / evaluated if evaluated else None,
    )
    return build_suite(spec, active), first


def _trim(results: ExpectationSuiteValidationResult) -> None:
    """Cut the long lists COMPLETE results carry, so stored results and Data Docs stay small."""
    for item in results.results:
        result = item.result
        for key in ("unexpected_list", "unexpected_index_list", "partial_unexpected_list"):
            if isinstance(result.get(key), list):
                result[key] = result[key][:DOCS_LIST_LIMIT]
        result.pop("unexpected_index_query", None)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Serialise writers: entity tasks of one run may build Data Docs into the same folder at the same time."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".data_docs.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_data_docs(
    site: DataDocsSite, suite: ExpectationSuite, results: ExpectationSuiteValidationResult, batch_name: str
) -> str:
    """Store the (trimmed) results in the file context of ``site`` and rebuild its Data Docs; return index.html.

    The file context accumulates runs, so the index lists every run validated into its folder. A site served
    from an object store is published there after the build (:mod:`sage_sync.quality.data_docs`); the index
    returned is then the store's URL.
    """
    import great_expectations as gx
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    _trim(results)
    with _locked(site.build):
        context = gx.get_context(mode="file", project_root_dir=str(site.build))
        suite_id = ExpectationSuiteIdentifier(name=suite.name)
        context.expectations_store.add_or_update(suite_id, suite)
        result_id = ValidationResultIdentifier(
            expectation_suite_identifier=suite_id, run_id=results.meta["run_id"], batch_identifier=batch_name
        )
        context.validation_results_store.set(result_id, results)
        # GX accepts a mixed list at run time; its annotation wants one identifier type.
        sites = context.build_data_docs(resource_identifiers=cast(Any, [result_id, suite_id]))
        if site.published:
            publish(site)
    if site.published:
        return str(site.served / INDEX)
    url = next(iter(sites.values()))
    return url.removeprefix("file://")
