"""Third parties of the stand-in dossier: ``F_COMPTET``, ``F_CONTACTT`` and ``F_LIVRAISON``."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sage_sync.simulators.standin import french_data as fr
from sage_sync.simulators.standin.identifiers import (
    LA_POSTE_SIREN,
    digits_to_strings,
    fr_vat_key,
    luhn_check_digits,
)
from sage_sync.simulators.standin.tables import TableData, fold_ascii, minutes_to_timestamps, obj, pick, slug

SUPPLIER_SHARE = 0.03
PROSPECT_SHARE = 0.05
ASLEEP_SHARE = 0.04
NO_EMAIL_SHARE = 0.15

_ALL_PLACES = tuple(place for _, places, _ in fr.PLACE_CATEGORIES for place in places)
_CREATION_START = int(np.datetime64("2015-01-01T00:00", "m").astype(np.int64))
_CREATION_END = int(np.datetime64("2026-06-01T00:00", "m").astype(np.int64))
_NOW = int(np.datetime64("2026-06-30T18:00", "m").astype(np.int64))
_ABBREVIATIONS = {
    "boulevard": "bd",
    "avenue": "av.",
    "impasse": "imp.",
    "place": "pl.",
    "chemin": "ch.",
    "route": "rte",
}
_MAIL_PROVIDERS = ("orange.fr", "free.fr", "wanadoo.fr", "gmail.com", "laposte.net", "sfr.fr")


@dataclass
class Accounts:
    """The generated third parties and what the documents need to know about them."""

    comptet: TableData
    contacts: TableData
    deliveries: TableData
    codes: npt.NDArray[np.object_]
    is_customer: npt.NDArray[np.bool_]
    """CT_Type = 0 and CT_Prospect = 0: the only accounts that receive invoices."""
    is_prospect: npt.NDArray[np.bool_]


def generate_accounts(seed: int, count: int) -> Accounts:
    """Generate ``count`` third parties (customers, ~5 % prospects, ~3 % suppliers) with contacts and addresses."""
    rng = np.random.default_rng([seed, 1])
    n = count
    # Tiny dossiers (fewer than 3 accounts) hold customers only, so that they still get invoices.
    at_least = 1 if n >= 3 else 0
    is_supplier = pick(rng, n, SUPPLIER_SHARE, minimum=at_least)
    others = np.flatnonzero(~is_supplier)
    is_prospect = np.zeros(n, dtype=bool)
    is_prospect[others[pick(rng, len(others), PROSPECT_SHARE, minimum=at_least)]] = True
    is_customer = ~is_supplier & ~is_prospect
    asleep = np.zeros(n, dtype=bool)
    customers = np.flatnonzero(is_customer)
    asleep[customers[pick(rng, len(customers), ASLEEP_SHARE)]] = True
    suppliers = np.flatnonzero(is_supplier)
    asleep[suppliers[pick(rng, len(suppliers), ASLEEP_SHARE, minimum=0)]] = True

    places = _draw_places(rng, n)
    names, cores = _company_names(rng, n, places)
    width = max(6, len(str(n)))
    codes = obj([_account_code(core, i + 1, width) for i, core in enumerate(cores)])
    domains = [
        f"{slug(core)}.{'fr' if place.country == 'France' else 'com'}"
        for core, place in zip(cores, places, strict=True)
    ]

    contacts, main_contact = _contacts(rng, codes, domains, places)
    deliveries = _deliveries(rng, codes, is_customer, places, main_contact, domains)

    no_email = np.zeros(n, dtype=bool)
    no_email[customers[pick(rng, len(customers), NO_EMAIL_SHARE)]] = True
    prospects = np.flatnonzero(is_prospect)
    no_email[prospects[pick(rng, len(prospects), 2 * NO_EMAIL_SHARE)]] = True
    mailbox = rng.choice(np.array(["contact", "info", "compta", "commandes"]), n)
    emails = obj([None if no_email[i] else f"{mailbox[i]}@{domains[i]}" for i in range(n)])
    has_site = rng.random(n) < 0.5
    sites = obj([f"www.{domains[i]}" if has_site[i] else None for i in range(n)])

    siret, vat = _siret_and_vat(rng, places)
    created = rng.integers(_CREATION_START, _CREATION_END, n)
    modified = np.minimum(created + rng.integers(0, 3 * 365 * 24 * 60, n), _NOW)
    comment_idx = rng.integers(0, len(fr.COMMENTS), n)
    has_comment = rng.random(n) < 0.12
    rep_idx = rng.integers(0, len(fr.SALES_REPS), n)
    has_rep = (rng.random(n) < 0.6) & ~is_supplier
    ape = rng.integers(0, len(fr.NAF_CODES), n)
    has_ape = rng.random(n) < 0.8

    comptet = TableData(
        "F_COMPTET",
        {
            "CT_Num": codes,
            "CT_Intitule": obj(names),
            "CT_Type": is_supplier.astype(np.int64),
            "CT_Prospect": is_prospect.astype(np.int64),
            "CT_Contact": main_contact,
            "CT_Adresse": obj(_street_addresses(rng, n)),
            "CT_Complement": obj(_complements(rng, places)),
            "CT_CodePostal": obj([p.postcode for p in places]),
            "CT_Ville": obj([p.city for p in places]),
            "CT_CodeRegion": obj([p.region for p in places]),
            "CT_Pays": obj([p.country for p in places]),
            "CT_Telephone": _phones(rng, places, missing=0.05, mobile=0.15),
            "CT_Telecopie": _phones(rng, places, missing=0.65, mobile=0.0),
            "CT_EMail": emails,
            "CT_Site": sites,
            "CT_Siret": siret,
            "CT_Identifiant": vat,
            "CT_Ape": obj([fr.NAF_CODES[a] if has_ape[i] else None for i, a in enumerate(ape.tolist())]),
            "CT_Commentaire": obj(
                [fr.COMMENTS[c] if has_comment[i] else None for i, c in enumerate(comment_idx.tolist())]
            ),
            "CT_Sommeil": asleep.astype(np.int64),
            "SALES_REP": obj(
                [fr.SALES_REPS[r] if has_rep[i] else None for i, r in enumerate(rep_idx.tolist())]
            ),
            "cbCreation": minutes_to_timestamps(created),
            "cbModification": minutes_to_timestamps(modified),
        },
    )
    return Accounts(comptet, contacts, deliveries, codes, is_customer, is_prospect)


def _draw_places(rng: np.random.Generator, n: int) -> list[fr.Place]:
    weights = np.array([w for _, _, w in fr.PLACE_CATEGORIES])
    category = rng.choice(len(weights), n, p=weights / weights.sum())
    # Every category shows up even in a tiny dossier: the first rows cycle through them.
    head = min(n, len(weights))
    category[:head] = np.arange(head)
    offsets = np.cumsum([0] + [len(places) for _, places, _ in fr.PLACE_CATEGORIES])
    sizes = np.diff(offsets)
    within = (rng.random(n) * sizes[category]).astype(np.int64)
    flat = offsets[category] + within
    return [_ALL_PLACES[i] for i in flat.tolist()]


def _company_names(rng: np.random.Generator, n: int, places: list[fr.Place]) -> tuple[list[str], list[str]]:
    pattern = rng.choice(6, n, p=[0.35, 0.15, 0.15, 0.1, 0.15, 0.1])
    a = rng.integers(0, len(fr.ACTIVITIES), n).tolist()
    s = rng.integers(0, len(fr.SURNAMES), n).tolist()
    s2 = rng.integers(0, len(fr.SURNAMES), n).tolist()
    f = rng.integers(0, len(fr.FANCY_NAMES), n).tolist()
    form = rng.integers(0, len(fr.LEGAL_FORMS), n).tolist()
    names: list[str] = []
    cores: list[str] = []
    for i, p in enumerate(pattern.tolist()):
        surname, fancy = fr.SURNAMES[s[i]], fr.FANCY_NAMES[f[i]]
        if p == 0:
            names.append(f"{fr.ACTIVITIES[a[i]]} {surname}")
            cores.append(surname)
        elif p == 1:
            names.append(f"{fr.LEGAL_FORMS[form[i]]} {fancy}")
            cores.append(fancy)
        elif p == 2:
            names.append(f"Établissements {surname} & Fils" if i % 2 else f"{surname} et Cie")
            cores.append(surname)
        elif p == 3:
            names.append(f"{fancy} – {places[i].city}")
            cores.append(fancy)
        elif p == 4:
            names.append(f"{fr.ACTIVITIES[a[i]]} {fancy}")
            cores.append(fancy)
        else:
            names.append(f"{surname}, {fr.SURNAMES[s2[i]]} & Associés")
            cores.append(surname)
    return names, cores


def _account_code(core: str, number: int, width: int) -> str:
    letters = re.sub(r"[^A-Z]", "", fold_ascii(core).upper())[:7]
    return f"{letters}{number:0{width}d}"


def _street_addresses(rng: np.random.Generator, n: int) -> list[str]:
    number = rng.integers(1, 151, n).tolist()
    suffix = rng.integers(0, len(fr.ADDRESS_NUMBER_SUFFIXES), n).tolist()
    kind = rng.integers(0, len(fr.STREET_TYPES), n).tolist()
    name = rng.integers(0, len(fr.STREET_NAMES), n).tolist()
    out = []
    for i in range(n):
        street_type, street = fr.STREET_TYPES[kind[i]], fr.STREET_NAMES[name[i]]
        text = f"{number[i]}{fr.ADDRESS_NUMBER_SUFFIXES[suffix[i]]} {street_type} {street}"
        if len(text) > 35:  # Sage's 35 characters: abbreviate the way French addresses are abbreviated
            text = f"{number[i]} {_ABBREVIATIONS.get(street_type, street_type)} {street}"
        out.append(text)
    return out


def _complements(rng: np.random.Generator, places: list[fr.Place]) -> list[str | None]:
    n = len(places)
    draw = rng.random(n)
    idx = rng.integers(0, len(fr.COMPLEMENTS), n).tolist()
    box = rng.integers(0, len(fr.POSTAL_BOX_COMPLEMENTS), n).tolist()
    out: list[str | None] = []
    for i, place in enumerate(places):
        if "cedex" in place.city.lower():
            out.append(fr.POSTAL_BOX_COMPLEMENTS[box[i]])  # CEDEX addresses come with a BP/CS number
        elif draw[i] < 0.2:
            out.append(fr.COMPLEMENTS[idx[i]])
        else:
            out.append(None)
    return out


def _phones(
    rng: np.random.Generator, places: list[fr.Place], *, missing: float, mobile: float
) -> npt.NDArray[np.object_]:
    """Phone numbers in the formats people really type: spaces, dots, dashes, compact, +33 with or without (0)."""
    n = len(places)
    digits = rng.integers(0, 100_000_000, n).tolist()
    style = rng.integers(0, 7, n).tolist()
    is_missing = rng.random(n) < missing
    is_mobile = rng.random(n) < mobile
    mobile_digit = rng.choice(np.array(["6", "7"]), n)
    out: list[str | None] = []
    for i, place in enumerate(places):
        if is_missing[i]:
            out.append(None)
            continue
        d = f"{digits[i]:08d}"
        pairs = [d[0:2], d[2:4], d[4:6], d[6:8]]
        if place.phone_zone.startswith("+"):
            out.append(f"{place.phone_zone} {' '.join(pairs)}")
            continue
        zone = str(mobile_digit[i]) if is_mobile[i] else place.phone_zone
        first = f"0{zone}"
        s = style[i]
        if s == 0:
            out.append(" ".join([first, *pairs]))
        elif s == 1:
            out.append(".".join([first, *pairs]))
        elif s == 2:
            out.append(first + d)
        elif s == 3:
            out.append(f"+33 {zone} {' '.join(pairs)}")
        elif s == 4:
            out.append(f"+33{zone}{d}")
        elif s == 5:
            out.append(f"+33 (0){zone} {' '.join(pairs)}")
        else:
            out.append("-".join([first, *pairs]))
    return obj(out)


def _siret_and_vat(
    rng: np.random.Generator, places: list[fr.Place]
) -> tuple[npt.NDArray[np.object_], npt.NDArray[np.object_]]:
    """SIRET and TVA numbers: mostly valid, some with a wrong Luhn digit, a wrong VAT key, too short, or missing."""
    n = len(places)
    siren_body = rng.integers(0, 10, (n, 8))
    siren_body[:, 0] = rng.integers(1, 10, n)
    siren_digits = np.hstack([siren_body, luhn_check_digits(siren_body)[:, None]])
    nic_body = rng.integers(0, 10, (n, 4))
    siret_body = np.hstack([siren_digits, nic_body])
    siret_digits = np.hstack([siret_body, luhn_check_digits(siret_body)[:, None]])
    sirens = digits_to_strings(siren_digits)
    sirets = digits_to_strings(siret_digits)

    french = np.array([p.country == "France" for p in places])
    french_idx = np.flatnonzero(french)
    state = np.zeros(n, dtype=np.int64)  # 0 valid, 1 bad Luhn digit, 2 too short, 3 missing, 4 La Poste
    for code, share in ((1, 0.05), (2, 0.01), (3, 0.05), (4, 0.002)):
        free = french_idx[state[french_idx] == 0]
        state[free[pick(rng, len(free), share)]] = code
    vat_state = np.zeros(n, dtype=np.int64)  # 0 valid, 1 wrong key, 2 missing
    for code, share in ((1, 0.04), (2, 0.08)):
        free = french_idx[vat_state[french_idx] == 0]
        vat_state[free[pick(rng, len(free), share)]] = code
    wrong = rng.integers(1, 10, n).tolist()
    la_poste_nic = rng.integers(0, 10, (n, 4))

    siret_out: list[str | None] = []
    vat_out: list[str | None] = []
    for i, place in enumerate(places):
        if not french[i]:
            siret_out.append(None)
            vat_out.append(f"BE0{sirens[i]}" if place.country == "Belgique" else None)
            continue
        st = state[i]
        siren = sirens[i]
        if st == 0:
            siret_out.append(sirets[i])
        elif st == 1:
            last = (int(sirets[i][-1]) + wrong[i]) % 10  # changing one digit always breaks Luhn
            siret_out.append(sirets[i][:-1] + str(last))
        elif st == 2:
            siret_out.append(sirets[i][:13])
        elif st == 3:
            siret_out.append(None)
        else:
            siren = LA_POSTE_SIREN
            body = siren + "".join(str(d) for d in la_poste_nic[i].tolist())
            check = (-sum(int(c) for c in body)) % 5  # La Poste rule: digit sum multiple of 5
            siret_out.append(body + str(check))
        vs = vat_state[i]
        key = fr_vat_key(int(siren))
        if vs == 0:
            vat_out.append(f"FR{key:02d}{siren}")
        elif vs == 1:
            vat_out.append(f"FR{(key + wrong[i]) % 97:02d}{siren}")
        else:
            vat_out.append(None)
    return obj(siret_out), obj(vat_out)


def _person_names(rng: np.random.Generator, n: int) -> tuple[npt.NDArray[np.int64], list[str], list[str]]:
    female = rng.random(n) < 0.5
    male_first = rng.integers(0, len(fr.MALE_FIRST_NAMES), n).tolist()
    female_first = rng.integers(0, len(fr.FEMALE_FIRST_NAMES), n).tolist()
    last = rng.integers(0, len(fr.SURNAMES), n).tolist()
    firsts = [
        fr.FEMALE_FIRST_NAMES[female_first[i]] if female[i] else fr.MALE_FIRST_NAMES[male_first[i]]
        for i in range(n)
    ]
    lasts = [fr.SURNAMES[j] for j in last]
    return female.astype(np.int64), firsts, lasts


def _full_name(first: str, last: str) -> str:
    text = f"{first} {last}"
    return text if len(text) <= 35 else f"{first[0]}. {last}"


def _contacts(
    rng: np.random.Generator, codes: npt.NDArray[np.object_], domains: list[str], places: list[fr.Place]
) -> tuple[TableData, npt.NDArray[np.object_]]:
    n = len(codes)
    per_account = rng.choice(5, n, p=[0.12, 0.3, 0.3, 0.18, 0.1])
    per_account[: min(n, 3)] = 3  # the first accounts always have several contacts
    owner = np.repeat(np.arange(n), per_account)
    total = len(owner)
    starts = np.cumsum(per_account) - per_account
    number = np.arange(total) - starts[owner] + 1  # CT_No counts from 1 within each account
    civility, firsts, lasts = _person_names(rng, total)
    job = rng.integers(0, len(fr.JOB_TITLES), total).tolist()
    has_job = rng.random(total) < 0.8
    has_email = rng.random(total) < 0.75
    own_domain = rng.random(total) < 0.7
    provider = rng.integers(0, len(_MAIL_PROVIDERS), total).tolist()
    owner_list = owner.tolist()
    contact_places = [places[o] for o in owner_list]
    emails: list[str | None] = []
    for i in range(total):
        if not has_email[i]:
            emails.append(None)
            continue
        local = f"{slug(firsts[i])}.{slug(lasts[i])}".replace("-", "")
        domain = domains[owner_list[i]] if own_domain[i] else _MAIL_PROVIDERS[provider[i]]
        emails.append(f"{local}@{domain}")
    modified = rng.integers(_CREATION_START, _NOW, total)
    table = TableData(
        "F_CONTACTT",
        {
            "CT_Num": codes[owner],
            "CT_No": number,
            "CT_Civilite": civility,
            "CT_Nom": obj(lasts),
            "CT_Prenom": obj(firsts),
            "CT_Fonction": obj([fr.JOB_TITLES[job[i]] if has_job[i] else None for i in range(total)]),
            "CT_Telephone": _phones(rng, contact_places, missing=0.3, mobile=0.0),
            "CT_TelPortable": _phones(rng, contact_places, missing=0.4, mobile=1.0),
            "CT_Telecopie": _phones(rng, contact_places, missing=0.9, mobile=0.0),
            "CT_EMail": obj(emails),
            "cbModification": minutes_to_timestamps(modified),
        },
    )
    main: list[str | None] = [None] * n
    for i in np.flatnonzero(number == 1).tolist():
        main[owner_list[i]] = _full_name(firsts[i], lasts[i])
    return table, obj(main)


def _deliveries(
    rng: np.random.Generator,
    codes: npt.NDArray[np.object_],
    is_customer: npt.NDArray[np.bool_],
    places: list[fr.Place],
    main_contact: npt.NDArray[np.object_],
    domains: list[str],
) -> TableData:
    """Delivery addresses for about a quarter of the customers (one to three each, the first one principal)."""
    n = len(codes)
    per_account = np.where(is_customer & (rng.random(n) < 0.25), rng.integers(1, 4, n), 0)
    first_customer = np.flatnonzero(is_customer)[:1]
    per_account[first_customer] = 2
    owner = np.repeat(np.arange(n), per_account)
    total = len(owner)
    starts = np.cumsum(per_account) - per_account
    position = np.arange(total) - starts[owner]
    label = rng.integers(0, len(fr.DELIVERY_LABELS), total).tolist()
    delivery_places = _draw_places(rng, total)
    same_place = rng.random(total) < 0.5
    owner_list = owner.tolist()
    used_places = [places[owner_list[i]] if same_place[i] else delivery_places[i] for i in range(total)]
    has_email = rng.random(total) < 0.3
    return TableData(
        "F_LIVRAISON",
        {
            "LI_No": np.arange(1, total + 1),
            "CT_Num": codes[owner],
            "LI_Intitule": obj([fr.DELIVERY_LABELS[j] for j in label]),
            "LI_Adresse": obj(_street_addresses(rng, total)),
            "LI_Complement": obj(_complements(rng, used_places)),
            "LI_CodePostal": obj([p.postcode for p in used_places]),
            "LI_Ville": obj([p.city for p in used_places]),
            "LI_Pays": obj([p.country for p in used_places]),
            "LI_Contact": main_contact[owner],
            "LI_Telephone": _phones(rng, used_places, missing=0.4, mobile=0.2),
            "LI_EMail": obj(
                [f"livraison@{domains[o]}" if has_email[i] else None for i, o in enumerate(owner_list)]
            ),
            "LI_Principal": (position == 0).astype(np.int64),
        },
    )
