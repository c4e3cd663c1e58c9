"""The simulated tenant's entity catalogue: fields, types, foreign keys, required fields and custom fields.

Everything the simulator validates, filters on and serialises is driven by this data (contracts/SSM-API.md,
"Entities used"), so one table says what each entity accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class FieldType(StrEnum):
    """How a field's value is validated, compared in ``where`` and serialised."""

    TEXT = "text"
    INT = "int"
    DECIMAL = "decimal"
    BOOL = "bool"
    DATETIME = "datetime"
    DATE = "date"
    REF = "ref"  # a foreign key: written as an int, returned as a lookup object
    GENDER = "gender"  # 0 male / 1 female, returned as a lookup object like the vendor's ContactResponse


@dataclass(frozen=True)
class Field:
    """One field of an entity."""

    name: str
    type: FieldType
    ref: str | None = None  # target entity of a REF field
    writable: bool = True
    max_length: int | None = None
    custom: bool = False  # a tenant-declared ``Z_`` field


@dataclass(frozen=True)
class EntityDef:
    """One entity (a record table or a value list)."""

    name: str
    fields: dict[str, Field]
    required: tuple[str, ...] = ()
    nullable_required: tuple[str, ...] = ()  # required keys that may carry null (lines' productId)
    bulk_limit: int = 200
    value_list: bool = False
    custom_table: str | None = None  # the vendor's table name used by /procedure/zapier_schema
    label_fields: tuple[str, ...] = ("description",)
    writable_list: bool = False  # value lists the integration may extend (productFamilies)
    lookup_key: str = "value"  # users' own lookups use "description"


T = FieldType

# Fields every record carries; only extId and readOnly are writable (contract "Records").
_SYSTEM = [
    Field("id", T.INT, writable=False),
    Field("extId", T.TEXT),
    Field("readOnly", T.BOOL),
    Field("deleted", T.BOOL, writable=False),
    Field("dateCreated", T.DATETIME, writable=False),
    Field("dateUpdated", T.DATETIME, writable=False),
    Field("dateDeleted", T.DATETIME, writable=False),
    Field("salesRepIdCreated", T.INT, writable=False),
    Field("salesRepIdUpdated", T.INT, writable=False),
    Field("salesRepIdDeleted", T.INT, writable=False),
]

LANGUAGES = ("ES", "EN", "US", "IT", "DE", "FR", "BR", "DK", "PT", "RU")

_VALUE_LIST_BASE = [
    Field("id", T.INT, writable=False),
    Field("order", T.INT, writable=False),
    Field("deleted", T.BOOL, writable=False),
    Field("description", T.TEXT),
    *[Field(f"description{lang}", T.TEXT) for lang in LANGUAGES],
    Field("dateCreated", T.DATETIME, writable=False),
    Field("dateUpdated", T.DATETIME, writable=False),
    Field("dateDeleted", T.DATETIME, writable=False),
    Field("salesRepIdCreated", T.INT, writable=False),
    Field("salesRepIdUpdated", T.INT, writable=False),
    Field("salesRepIdDeleted", T.INT, writable=False),
]


def _fields(*groups: list[Field]) -> dict[str, Field]:
    out: dict[str, Field] = {}
    for group in groups:
        for f in group:
            out[f.name] = f
    return out


def _text(*names: str) -> list[Field]:
    return [Field(n, T.TEXT) for n in names]


def _ref(name: str, target: str) -> Field:
    return Field(name, T.REF, ref=target)


# Custom Z_ fields the simulated tenant declares (contract "Entities used").
CUSTOM_FIELDS: dict[str, list[Field]] = {
    "accounts": [Field("Z_Siret", T.TEXT, custom=True)],
    "contacts": [Field("Z_JobTitle", T.TEXT, custom=True)],
    "products": [
        Field("Z_StockDisplay", T.TEXT, custom=True),
        Field("Z_Unit", T.TEXT, custom=True),
        Field("Z_Barcode", T.TEXT, custom=True),
    ],
    "salesorders": [
        Field("Z_Sage50InvoiceId", T.TEXT, custom=True),
        Field("Z_Synced", T.BOOL, custom=True),
        Field("Z_SyncedAt", T.DATETIME, custom=True),
        Field("Z_DocType", T.TEXT, custom=True),
        Field("Z_InvoiceDate", T.DATE, custom=True),
        Field("Z_TotalHT", T.DECIMAL, custom=True),
        Field("Z_TotalTTC", T.DECIMAL, custom=True),
    ],
    "salesordersLines": [Field("Z_Quantity", T.DECIMAL, custom=True)],
}

ACCOUNTS = EntityDef(
    name="accounts",
    fields=_fields(
        _SYSTEM,
        _text("name", "vatNumber", "phone", "phone2", "phone3", "fax", "email", "website", "comment"),
        _text("address1", "address2", "city", "postcode", "region"),
        [
            _ref("typeId", "accountTypes"),
            _ref("statusId", "accountStatuses"),
            _ref("segmentId", "accountSegments"),
            _ref("branchId", "branches"),
            *[_ref(f"salesRepId{i}", "users") for i in range(1, 6)],
            _ref("countryId", "countries"),
        ],
        CUSTOM_FIELDS["accounts"],
    ),
    required=("name", "branchId", "salesRepId1"),
    custom_table="empresas",
    label_fields=("name",),
)

CONTACTS = EntityDef(
    name="contacts",
    fields=_fields(
        _SYSTEM,
        _text("firstName", "lastName", "phone1", "phone2", "fax", "email", "email2", "email3", "comment"),
        _text("address1", "address2", "city", "postcode", "region"),
        [
            _ref("accountId", "accounts"),
            _ref("typeId", "contactTypes"),
            _ref("salesRepId", "users"),
            _ref("countryId", "countries"),
            Field("gender", T.GENDER),
        ],
        CUSTOM_FIELDS["contacts"],
    ),
    required=("accountId", "firstName", "lastName", "salesRepId"),
    custom_table="contactos",
    label_fields=("firstName", "lastName"),
)

PRODUCTS = EntityDef(
    name="products",
    fields=_fields(
        [f if f.name != "extId" else Field("extId", T.TEXT, max_length=30) for f in _SYSTEM],
        _text("model", "description"),
        [
            Field("price", T.DECIMAL),
            Field("cost", T.DECIMAL),
            Field("maxDiscount", T.DECIMAL),
            Field("stock", T.INT),
            Field("notAvailable", T.BOOL),
            _ref("familyId", "productFamilies"),
            _ref("categoryId", "productCategories"),
        ],
        CUSTOM_FIELDS["products"],
    ),
    required=("model",),
    bulk_limit=100,
    custom_table="articulos",
    label_fields=("model",),
)

SALES_ORDERS = EntityDef(
    name="salesorders",
    fields=_fields(
        _SYSTEM,
        _text("reference", "comment"),
        [
            Field("number", T.INT),
            _ref("accountId", "accounts"),
            _ref("statusId", "salesorderStatuses"),
            Field("total", T.DECIMAL),
            _ref("currencyId", "currencies"),
            Field("closedDate", T.DATETIME),
            _ref("branchId", "branches"),
            _ref("salesRepId", "users"),
        ],
        CUSTOM_FIELDS["salesorders"],
    ),
    required=("reference", "branchId", "salesRepId"),
    custom_table="tblSalesOrders",
    label_fields=("reference",),
)

SALES_ORDER_LINES = EntityDef(
    name="salesordersLines",
    fields=_fields(
        _SYSTEM,
        _text("description"),
        [
            _ref("salesOrderId", "salesorders"),
            _ref("productId", "products"),
            Field("quantity", T.INT),
            Field("price", T.DECIMAL),
            Field("discount1", T.DECIMAL),
            Field("total", T.DECIMAL),
            Field("order", T.INT),
        ],
        CUSTOM_FIELDS["salesordersLines"],
    ),
    required=("salesOrderId", "quantity", "price"),
    nullable_required=("productId",),
    custom_table="tblSalesOrdersLines",
    label_fields=("description",),
)

USERS = EntityDef(
    name="users",
    fields=_fields(
        [
            Field("id", T.INT, writable=False),
            Field("deleted", T.BOOL, writable=False),
            *_text("name", "lastName", "email", "phone", "extId", "locale"),
            Field("level", T.INT),
            Field("isActive", T.BOOL),
            Field("userTypeId", T.REF, ref="userTypes"),
            Field("branches", T.REF, ref="branches"),
            Field("managerId", T.REF, ref="users"),
            Field("dateCreated", T.DATETIME, writable=False),
            Field("dateUpdated", T.DATETIME, writable=False),
            Field("dateDeleted", T.DATETIME, writable=False),
        ]
    ),
    value_list=True,
    label_fields=("name", "lastName"),
    lookup_key="description",
)


def _value_list(name: str, *extra: Field, writable: bool = False) -> EntityDef:
    return EntityDef(
        name=name,
        fields=_fields(_VALUE_LIST_BASE, list(extra)),
        value_list=True,
        writable_list=writable,
    )


VALUE_LISTS: dict[str, EntityDef] = {
    d.name: d
    for d in (
        USERS,
        _value_list("userTypes"),
        _value_list(
            "branches",
            Field("default", T.BOOL),
            Field("imperialSystem", T.BOOL),
            Field("mainEnvironment", T.BOOL),
            _ref("currencyId", "currencies"),
        ),
        _value_list(
            "countries",
            *_text("iso2", "iso3", "phoneCode", "strName"),
            Field("isoNum", T.INT),
        ),
        _value_list("currencies", *_text("isoCode", "symbol")),
        _value_list("accountStatuses", Field("won", T.BOOL), Field("lost", T.BOOL)),
        _value_list("accountTypes", Field("internal", T.BOOL), Field("computeSfm", T.BOOL)),
        _value_list("accountSegments", Field("internal", T.BOOL), Field("computeSfm", T.BOOL)),
        _value_list("contactTypes", Field("internal", T.BOOL), Field("computeSfm", T.BOOL)),
        _value_list("salesorderStatuses", Field("won", T.BOOL), Field("lost", T.BOOL)),
        _value_list("productFamilies", writable=True),
        _value_list("productCategories"),
    )
}

RECORD_ENTITIES: dict[str, EntityDef] = {
    d.name: d for d in (ACCOUNTS, CONTACTS, PRODUCTS, SALES_ORDERS, SALES_ORDER_LINES)
}

ALL_ENTITIES: dict[str, EntityDef] = {**RECORD_ENTITIES, **VALUE_LISTS}

# /procedure/zapier_schema names the vendor's tables, not the REST resources.
CUSTOM_TABLES: dict[str, str] = {d.custom_table: d.name for d in RECORD_ENTITIES.values() if d.custom_table}

GENDER_LABELS = {0: "Homme", 1: "Femme"}
