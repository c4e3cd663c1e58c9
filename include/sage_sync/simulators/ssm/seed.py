"""The deterministic demo tenant: users, API keys and value lists.

The API keys are derived from the seed, so tests and demos started with the same ``--seed`` know them in
advance; they are simulator-only demo keys, never real credentials.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from sage_sync.simulators.ssm.entities import LANGUAGES, VALUE_LISTS
from sage_sync.simulators.ssm.store import Store


@dataclass(frozen=True)
class ApiKey:
    """A public/private key pair and the user it belongs to."""

    public_key: str
    private_key: str
    user_id: int
    integration: bool

    def to_json(self) -> dict[str, Any]:
        """The pair as ``/__sim/keys`` shows it."""
        return {"public_key": self.public_key, "private_key": self.private_key, "user_id": self.user_id}


INTEGRATION_USER_ID = 1  # also the configured admin user of C5
SALES_USER_ID = 2  # owner of the non-integration key

# (id, name, lastName, email, level, isAdmin); exactly one admin, the integration key's user (``admin_user_id``).
USERS: list[tuple[int, str, str, str, int, bool]] = [
    (1, "Admin", "Intégration", "integration@demo-sage-sync.fr", 5, True),
    (2, "Camille", "Martin", "camille.martin@demo-sage-sync.fr", 2, False),
    (3, "Julien", "Bernard", "julien.bernard@demo-sage-sync.fr", 2, False),
    (4, "Sophie", "Durand", "sophie.durand@demo-sage-sync.fr", 3, False),
    (5, "Nicolas", "Petit", "nicolas.petit@demo-sage-sync.fr", 4, False),
]


def derive_keys(seed: int) -> tuple[ApiKey, ApiKey]:
    """The integration key and a plain user's key for ``seed`` (deterministic)."""

    def part(label: str) -> str:
        return hashlib.sha256(f"ssm-simulator/{seed}/{label}".encode()).hexdigest()[:32]

    integration = ApiKey(part("integration-public"), part("integration-private"), INTEGRATION_USER_ID, True)
    user = ApiKey(part("user-public"), part("user-private"), SALES_USER_ID, False)
    return integration, user


def users_summary() -> list[dict[str, Any]]:
    """The seeded users as ``/__sim/keys`` lists them."""
    return [
        {"id": uid, "name": name, "lastName": last, "email": email, "isAdmin": admin}
        for uid, name, last, email, _level, admin in USERS
    ]


def _labels(fr: str, en: str, es: str | None = None) -> dict[str, str]:
    out = {f"description{lang}": en for lang in LANGUAGES}
    out["descriptionFR"] = fr
    out["descriptionES"] = es or en
    out["description"] = fr  # the tenant's language is French
    return out


# Countries: (French name, English name, iso2, iso3, isoNum, phone code)
COUNTRIES: list[tuple[str, str, str, str, int, str]] = [
    ("France", "France", "FR", "FRA", 250, "+33"),
    ("Monaco", "Monaco", "MC", "MCO", 492, "+377"),
    ("Belgique", "Belgium", "BE", "BEL", 56, "+32"),
    ("Suisse", "Switzerland", "CH", "CHE", 756, "+41"),
    ("Luxembourg", "Luxembourg", "LU", "LUX", 442, "+352"),
    ("Espagne", "Spain", "ES", "ESP", 724, "+34"),
    ("Italie", "Italy", "IT", "ITA", 380, "+39"),
    ("Allemagne", "Germany", "DE", "DEU", 276, "+49"),
    ("Royaume-Uni", "United Kingdom", "GB", "GBR", 826, "+44"),
    ("Canada", "Canada", "CA", "CAN", 124, "+1"),
    ("Pays-Bas", "Netherlands", "NL", "NLD", 528, "+31"),
    ("Portugal", "Portugal", "PT", "PRT", 620, "+351"),
    ("États-Unis", "United States", "US", "USA", 840, "+1"),
    ("Maroc", "Morocco", "MA", "MAR", 504, "+212"),
    ("Tunisie", "Tunisia", "TN", "TUN", 788, "+216"),
    ("Algérie", "Algeria", "DZ", "DZA", 12, "+213"),
    ("Guadeloupe", "Guadeloupe", "GP", "GLP", 312, "+590"),
    ("Martinique", "Martinique", "MQ", "MTQ", 474, "+596"),
    ("Guyane française", "French Guiana", "GF", "GUF", 254, "+594"),
    ("La Réunion", "Réunion", "RE", "REU", 638, "+262"),
    ("Mayotte", "Mayotte", "YT", "MYT", 175, "+262"),
    ("Nouvelle-Calédonie", "New Caledonia", "NC", "NCL", 540, "+687"),
    ("Polynésie française", "French Polynesia", "PF", "PYF", 258, "+689"),
    ("Saint-Pierre-et-Miquelon", "Saint Pierre and Miquelon", "PM", "SPM", 666, "+508"),
    ("Wallis-et-Futuna", "Wallis and Futuna", "WF", "WLF", 876, "+681"),
    ("Saint-Barthélemy", "Saint Barthélemy", "BL", "BLM", 652, "+590"),
    ("Saint-Martin", "Saint Martin", "MF", "MAF", 663, "+590"),
]

# Value lists: name -> [(French, English, extra fields)]
VALUE_LIST_ITEMS: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
    "userTypes": [("Administrateur", "Administrator", {}), ("Commercial", "Sales rep", {})],
    "currencies": [
        ("Euro", "Euro", {"isoCode": "EUR", "symbol": "€"}),
        ("Franc suisse", "Swiss franc", {"isoCode": "CHF", "symbol": "CHF"}),
        ("Livre sterling", "Pound sterling", {"isoCode": "GBP", "symbol": "£"}),
        ("Dollar US", "US dollar", {"isoCode": "USD", "symbol": "$"}),
    ],
    "branches": [
        (
            "Siège",
            "Head office",
            {"default": True, "imperialSystem": False, "mainEnvironment": True, "currencyId": 1},
        ),
        (
            "Agence Lyon",
            "Lyon branch",
            {"default": False, "imperialSystem": False, "mainEnvironment": False, "currencyId": 1},
        ),
    ],
    "accountStatuses": [
        ("Client", "Customer", {"won": True, "lost": False}),
        ("Prospect", "Prospect", {"won": False, "lost": False}),
        ("Ancien client", "Former customer", {"won": False, "lost": True}),
        ("Partenaire", "Partner", {"won": False, "lost": False}),
    ],
    "accountTypes": [
        ("Entreprise", "Company", {"internal": False, "computeSfm": True}),
        ("Administration", "Public body", {"internal": False, "computeSfm": True}),
        ("Particulier", "Individual", {"internal": False, "computeSfm": True}),
    ],
    "accountSegments": [
        ("Grands comptes", "Key accounts", {"internal": False, "computeSfm": True}),
        ("PME", "SMB", {"internal": False, "computeSfm": True}),
    ],
    "contactTypes": [
        ("Décideur", "Decision maker", {"internal": False, "computeSfm": True}),
        ("Comptabilité", "Accounting", {"internal": False, "computeSfm": True}),
        ("Technique", "Technical", {"internal": False, "computeSfm": True}),
    ],
    "salesorderStatuses": [
        ("Devis", "Quote", {"won": False, "lost": False}),
        ("Commande", "Order", {"won": True, "lost": False}),
        ("Facture", "Invoice", {"won": True, "lost": False}),
        ("Avoir", "Credit note", {"won": False, "lost": False}),
    ],
    "productFamilies": [("Divers", "Miscellaneous", {})],
    "productCategories": [("Standard", "Standard", {})],
}


def seed_tenant(store: Store, now: str) -> None:
    """Write the tenant's users and value lists into an empty store."""
    for name, items in VALUE_LIST_ITEMS.items():
        for order, (fr, en, extra) in enumerate(items, start=1):
            _put_value(store, name, order, _labels(fr, en), extra, now)
    for order, (fr, en, iso2, iso3, iso_num, phone) in enumerate(COUNTRIES, start=1):
        extra = {"iso2": iso2, "iso3": iso3, "isoNum": iso_num, "phoneCode": phone, "strName": en}
        _put_value(store, "countries", order, _labels(fr, en), extra, now)
    for uid, name, last, email, level, admin in USERS:
        store.put(
            "users",
            {
                "id": store.new_id("users"),
                "deleted": False,
                "name": name,
                "lastName": last,
                "email": email,
                "phone": None,
                "extId": None,
                "locale": "fr-FR",
                "level": level,
                "isActive": True,
                "userTypeId": 1 if admin else 2,
                "branches": 1,
                "managerId": None if uid == INTEGRATION_USER_ID else INTEGRATION_USER_ID,
                "dateCreated": now,
                "dateUpdated": now,
                "dateDeleted": None,
            },
        )
    store.commit()


def new_value_item(
    store: Store, name: str, labels: dict[str, Any], extra: dict[str, Any], now: str, by: int
) -> int:
    """Append an item to a value list (seed or ``POST /productFamilies``); returns its id."""
    order = len(store.tables[name]) + 1
    return _put_value(store, name, order, labels, extra, now, by)


def _put_value(
    store: Store,
    name: str,
    order: int,
    labels: dict[str, Any],
    extra: dict[str, Any],
    now: str,
    by: int = INTEGRATION_USER_ID,
) -> int:
    definition = VALUE_LISTS[name]
    record: dict[str, Any] = dict.fromkeys(definition.fields)
    record.update(labels)
    record.update(extra)
    rid = store.new_id(name)
    record.update(
        {
            "id": rid,
            "order": order,
            "deleted": False,
            "dateCreated": now,
            "dateUpdated": now,
            "dateDeleted": None,
            "salesRepIdCreated": by,
            "salesRepIdUpdated": by,
            "salesRepIdDeleted": None,
        }
    )
    store.put(name, record)
    return rid
