"""Record semantics of the simulated API: validation, create / partial update / soft delete, lists, serialisation.

No HTTP here: :mod:`sage_sync.simulators.ssm.app` maps requests onto these operations and :class:`ApiError`
onto the contract's error bodies.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any

from sage_sync.simulators.ssm.entities import (
    ALL_ENTITIES,
    GENDER_LABELS,
    RECORD_ENTITIES,
    EntityDef,
    FieldType,
)
from sage_sync.simulators.ssm.store import Store
from sage_sync.simulators.ssm.where import (
    WhereError,
    compile_where,
    format_datetime,
    normalise_date,
    normalise_datetime,
)

CODE_BAD_WHERE = 901
CODE_NOT_FOUND = 910


class ApiError(Exception):
    """An error the API answers with ``{"statusCode", "code", "message"}``."""

    def __init__(self, status: int, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


class Clock:
    """The server clock: real UTC time plus an adjustable offset, strictly increasing at millisecond grain.

    Strictly increasing stamps make ``dateUpdated`` change on every accepted write, even two writes within
    the same millisecond, so incremental reads by ``dateUpdated`` never miss one.
    """

    def __init__(self) -> None:
        self.offset = timedelta(0)
        self._last: datetime | None = None

    def set_offset(self, seconds: float) -> None:
        """Shift the clock by ``seconds`` from real time."""
        self.offset = timedelta(seconds=seconds)
        self._last = None

    def now(self) -> datetime:
        """Current server time (not monotonic)."""
        return datetime.now(UTC) + self.offset

    def stamp(self) -> str:
        """A write timestamp, strictly later than the previous one."""
        now = self.now()
        now = now.replace(microsecond=(now.microsecond // 1000) * 1000)
        if self._last is not None and now <= self._last:
            now = self._last + timedelta(milliseconds=1)
        self._last = now
        return format_datetime(now)


class Records:
    """The tenant's data operations over a :class:`Store`."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock
        self.records_written = 0
        #: Custom fields the tenant does not declare, by entity (the simulator's admin sets them).
        self.undeclared: dict[str, set[str]] = {}
        # (entity, where, order) -> (entity version, matching ids in order); consecutive pages reuse it.
        self._list_cache: OrderedDict[tuple[str, str, str], tuple[int, list[int]]] = OrderedDict()
        self._ref_fields: dict[str, list[tuple[str, FieldType, str | None, str]]] = {}
        # Serialised JSON per record, reused while the record object is the same (every write stores a new
        # dict) and no label it shows through a lookup has changed (label_versions of its target entities).
        self.label_versions: dict[str, int] = dict.fromkeys(ALL_ENTITIES, 0)
        self._json_cache: dict[str, dict[int, tuple[dict[str, Any], str]]] = {
            name: {} for name in ALL_ENTITIES
        }
        self._json_stamp: dict[str, tuple[int, ...]] = {}
        self._ref_targets: dict[str, tuple[str, ...]] = {}
        for name, definition in ALL_ENTITIES.items():
            refs: list[tuple[str, FieldType, str | None, str]] = []
            for f in definition.fields.values():
                if f.type in (FieldType.REF, FieldType.GENDER):
                    key = definition.lookup_key
                    refs.append((f.name, f.type, f.ref, key))
            self._ref_fields[name] = refs
            self._ref_targets[name] = tuple(sorted({ref for _, _, ref, _ in refs if ref is not None}))

    def clear_caches(self) -> None:
        """Drop cached list results and serialised records (after a wipe)."""
        self._list_cache.clear()
        for cache in self._json_cache.values():
            cache.clear()
        self._json_stamp.clear()

    # ------------------------------------------------------------------------------------ lookups

    @staticmethod
    def entity(name: str) -> EntityDef:
        """The definition of an entity (raises 404 for an unknown one)."""
        definition = ALL_ENTITIES.get(name)
        if definition is None:
            raise ApiError(404, f"unknown entity {name!r}")
        return definition

    def get(self, entity: str, rid: int) -> dict[str, Any]:
        """A stored record (raises 400/910 when the id does not exist)."""
        rec = self.store.tables[entity].get(rid)
        if rec is None:
            raise ApiError(400, f"{entity} {rid} does not exist", CODE_NOT_FOUND)
        return rec

    # ------------------------------------------------------------------------------------ serialisation

    def serialise(self, entity: str, rec: dict[str, Any]) -> dict[str, Any]:
        """The record as the API returns it: foreign keys become lookup objects."""
        out = dict(rec)
        tables = self.store.tables
        for name, ftype, ref, key in self._ref_fields[entity]:
            value = rec.get(name)
            if value is None:
                continue
            if ftype == FieldType.GENDER:
                out[name] = {"id": value, "value": GENDER_LABELS.get(value, "")}
            else:
                assert ref is not None
                target = tables[ref].get(value)
                label = ""
                if target is not None:
                    parts = [
                        str(target[f])
                        for f in ALL_ENTITIES[ref].label_fields
                        if target.get(f) not in (None, "")
                    ]
                    label = " ".join(parts)
                out[name] = {"id": value, key: label}
        return out

    # ------------------------------------------------------------------------------------ lists

    def list_page_json(
        self, entity: str, page: int, size: int, where: str | None, order: str | None
    ) -> list[str]:
        """One page of a list call as serialised JSON objects (the fast path of ``GET /<entity>``)."""
        definition = self.entity(entity)
        ids = self._matching_ids(definition, where or "", order or "")
        chunk = ids[page * size : (page + 1) * size]
        table = self.store.tables[entity]
        stamp = tuple(self.label_versions[t] for t in self._ref_targets[entity])
        cache = self._json_cache[entity]
        if self._json_stamp.get(entity) != stamp:
            cache.clear()
            self._json_stamp[entity] = stamp
        out = []
        for rid in chunk:
            rec = table.get(rid)
            if rec is None:
                continue
            hit = cache.get(rid)
            if hit is None or hit[0] is not rec:
                text = json.dumps(self.serialise(entity, rec), ensure_ascii=False, separators=(",", ":"))
                cache[rid] = (rec, text)
                out.append(text)
            else:
                out.append(hit[1])
        return out

    def _matching_ids(self, definition: EntityDef, where: str, order: str) -> list[int]:
        key = (definition.name, where, order)
        version = self.store.versions[definition.name]
        cached = self._list_cache.get(key)
        if cached is not None and cached[0] == version:
            self._list_cache.move_to_end(key)
            return cached[1]
        table = self.store.tables[definition.name]
        if where:
            try:
                predicate = compile_where(definition, where)
            except WhereError as exc:
                raise ApiError(400, f"invalid where for {definition.name}: {exc}", CODE_BAD_WHERE) from exc
            ids = [rid for rid, rec in table.items() if predicate(rec)]
        else:
            ids = list(table)  # dicts keep insertion order, which is id order
        if order:
            field = order.strip()
            if field not in definition.fields:
                raise ApiError(
                    400, f"invalid order for {definition.name}: unknown field {field!r}", CODE_BAD_WHERE
                )
            # Descending as the real API; NULLs sort lowest (last), ties by id descending.
            ids.sort(
                key=lambda rid: (table[rid].get(field) is not None, table[rid].get(field), rid), reverse=True
            )
        elif ids and any(a > b for a, b in zip(ids, ids[1:], strict=False)):
            ids.sort()
        self._list_cache[key] = (version, ids)
        if len(self._list_cache) > 64:
            self._list_cache.popitem(last=False)
        return ids

    # ------------------------------------------------------------------------------------ validation

    def clean(self, definition: EntityDef, data: Any, *, creating: bool) -> dict[str, Any]:
        """Validate a write body and return its stored form (raises 400 naming the entity, field and rule)."""
        name = definition.name
        if not isinstance(data, dict):
            raise ApiError(400, f"{name}: the body must be a JSON object")
        out: dict[str, Any] = {}
        for key, value in data.items():
            f = definition.fields.get(key)
            if f is None:
                if key.startswith("Z_"):
                    raise ApiError(400, f"{name}: custom field {key!r} is not declared for this tenant")
                raise ApiError(400, f"{name}: unknown field {key!r}")
            if f.custom and key in self.undeclared.get(name, ()):
                raise ApiError(400, f"{name}: custom field {key!r} is not declared for this tenant")
            if not f.writable:
                raise ApiError(400, f"{name}: field {key!r} is read-only")
            out[key] = self._clean_value(name, key, f.type, f.ref, f.max_length, value)
        if creating:
            for req in definition.required:
                if out.get(req) is None:
                    raise ApiError(400, f"{name}: field {req!r} is required on create")
            for req in definition.nullable_required:
                if req not in out:
                    raise ApiError(400, f"{name}: field {req!r} is required on create (null allowed)")
        return out

    def _clean_value(
        self, entity: str, key: str, ftype: FieldType, ref: str | None, max_length: int | None, value: Any
    ) -> Any:
        if value is None:
            return None
        where = f"{entity}: field {key!r}"
        if ftype == FieldType.TEXT:
            if not isinstance(value, str):
                raise ApiError(400, f"{where} must be text, got {type(value).__name__}")
            if max_length is not None and len(value) > max_length:
                raise ApiError(400, f"{where} is {len(value)} characters long; the limit is {max_length}")
            return value
        if ftype in (FieldType.INT, FieldType.REF, FieldType.GENDER):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ApiError(400, f"{where} must be an integer, got {value!r}")
            if ftype == FieldType.GENDER and value not in GENDER_LABELS:
                raise ApiError(400, f"{where} must be 0 (male) or 1 (female), got {value}")
            if ftype == FieldType.REF:
                assert ref is not None
                if value not in self.store.tables[ref]:
                    raise ApiError(400, f"{where}: {ref} {value} does not exist")
            return value
        if ftype == FieldType.DECIMAL:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ApiError(400, f"{where} must be a number, got {value!r}")
            if isinstance(value, float) and not math.isfinite(value):
                # 1e999 parses as inf: refuse it, or every later answer holding it would be invalid JSON.
                raise ApiError(400, f"{where} must be a finite number, got {value!r}")
            return value
        if ftype == FieldType.BOOL:
            if not isinstance(value, bool):
                raise ApiError(400, f"{where} must be true or false, got {value!r}")
            return value
        if not isinstance(value, str):
            raise ApiError(400, f"{where} must be an ISO-8601 {ftype.value} string, got {value!r}")
        try:
            return normalise_datetime(value) if ftype == FieldType.DATETIME else normalise_date(value)
        except ValueError as exc:
            raise ApiError(400, f"{where}: {value!r} is not an ISO-8601 {ftype.value}") from exc

    # ------------------------------------------------------------------------------------ writes

    def create(self, entity: str, data: Any, user_id: int) -> int:
        """``POST /<entity>``: validate and insert; returns the new id."""
        definition = self.record_entity(entity)
        cleaned = self.clean(definition, data, creating=True)
        now = self.clock.stamp()
        rec: dict[str, Any] = dict.fromkeys(definition.fields)
        rec.update({"readOnly": False, "deleted": False})
        if entity == "products":
            rec["notAvailable"] = False
        rec.update(cleaned)
        rec.update(
            {
                "id": self.store.new_id(entity),
                "dateCreated": now,
                "dateUpdated": now,
                "salesRepIdCreated": user_id,
                "salesRepIdUpdated": user_id,
            }
        )
        self.store.put(entity, rec)
        self.records_written += 1
        return int(rec["id"])

    def update(self, entity: str, rid: int, data: Any, user_id: int, integration: bool) -> None:
        """``PUT /<entity>/{id}``: partial update (only the fields sent change)."""
        definition = self.record_entity(entity)
        rec = self.get(entity, rid)
        self._check_writable(entity, rec, integration)
        cleaned = self.clean(definition, data, creating=False)
        new = dict(rec)
        new.update(cleaned)
        if any(f in cleaned for f in definition.label_fields):
            self.label_versions[entity] += 1  # lookups showing this record's label must be re-rendered
        new["dateUpdated"] = self.clock.stamp()
        new["salesRepIdUpdated"] = user_id
        self.store.put(entity, new)
        self.records_written += 1

    def delete(self, entity: str, rid: int, user_id: int, integration: bool) -> None:
        """``DELETE /<entity>/{id}``: soft delete (the record stays, ``deleted: true``)."""
        self.record_entity(entity)
        rec = self.get(entity, rid)
        self._check_writable(entity, rec, integration)
        if rec["deleted"]:
            return  # deleting twice is harmless and keeps the first deletion's date
        now = self.clock.stamp()
        new = dict(rec)
        new.update(
            {
                "deleted": True,
                "dateDeleted": now,
                "dateUpdated": now,
                "salesRepIdDeleted": user_id,
                "salesRepIdUpdated": user_id,
            }
        )
        self.store.put(entity, new)
        self.records_written += 1

    @staticmethod
    def _check_writable(entity: str, rec: dict[str, Any], integration: bool) -> None:
        if rec.get("readOnly") and not integration:
            raise ApiError(403, f"{entity} {rec['id']} is read-only; only the integration key may modify it")

    @staticmethod
    def record_entity(entity: str) -> EntityDef:
        """The definition of a writable record entity (value lists are read-only: 405)."""
        definition = RECORD_ENTITIES.get(entity)
        if definition is None:
            if entity in ALL_ENTITIES:
                raise ApiError(405, f"{entity} is a read-only value list")
            raise ApiError(404, f"unknown entity {entity!r}")
        return definition

    # ------------------------------------------------------------------------------------ checks

    def duplicate_ext_ids(self) -> dict[str, list[str]]:
        """ExtIds carried by more than one non-deleted record, per entity (for the stats endpoint)."""
        out: dict[str, list[str]] = {}
        for entity in RECORD_ENTITIES:
            seen: dict[str, int] = {}
            for rec in self.store.tables[entity].values():
                ext = rec.get("extId")
                if ext is not None and not rec.get("deleted"):
                    seen[ext] = seen.get(ext, 0) + 1
            out[entity] = sorted(k for k, n in seen.items() if n > 1)
        return out
