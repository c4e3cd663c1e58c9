"""G5/G6 under random interleavings: both in-memory sides, random edits, random faults, then convergence.

A Hypothesis state machine creates, edits, deletes and converts accounts and contacts on both sides, runs the
sync with faults armed at random points (an item refused, an exception before or in the middle of a batch, a
lost response, a crash between two writes, a broken read, a Sage read that returns no rows), then stops the
faults and runs twice more: the second clean run must plan nothing (G6), and the end state must be the one the
rules define (C1, C2, C4, P1-P3, K1-K3, G2), with no duplicate on either side.
"""

from __future__ import annotations

import contextlib
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from sage_sync.engine.codec import same, to_ssm
from sage_sync.engine.config import SyncConfig
from sage_sync.engine.memory import Fault, SimulatedCrash, SyncWorld, TransportError, account_row, contact_row
from sage_sync.engine.rules.accounts import account_specs
from sage_sync.engine.rules.contacts import contact_specs

EXAMPLES = int(os.environ.get("SAGE_SYNC_HYPOTHESIS_EXAMPLES", "200"))
ENTITIES = ("accounts", "contacts")
ANCHOR = "ANCHOR"

names = st.sampled_from(["Alpha", "Beta", "Gamma", "Delta", "Émile & Fils", "Zoé", "Ωmega SARL", "x" * 80])
cities = st.sampled_from(["Lyon", "Paris", "Lille", None])
countries = st.sampled_from(["France", "FRANCE", "belgique", "Atlantis", None])
phones = st.sampled_from(["0102030405", "0607080910", None])

FAULT_MODES = st.sampled_from(["refuse", "raise", "mid_batch", "lost", "crash", "empty"])
# Mostly "the k-th write of the run, on either entity"; sometimes a read or a list that breaks the extract.
FAULT_TARGETS = st.sampled_from(
    [("write", None)] * 4
    + [("write", "accounts"), ("write", "contacts"), ("read", "accounts"), ("read", "contacts")]
)


SAGE_ACTIONS = [
    "sage_create_account",
    "sage_edit_account",
    "sage_convert",
    "sage_delete_account",
    "sage_create_contact",
    "sage_edit_contact",
    "sage_delete_contact",
    "both_edit_prospect",
]
SSM_ACTIONS = [
    "ssm_create_account",
    "ssm_edit_account",
    "ssm_convert",
    "ssm_delete_account",
    "ssm_create_contact",
    "ssm_edit_contact",
    "ssm_delete_contact",
]


class SyncMachine(RuleBasedStateMachine):
    """Random life on both sides, with the sync running in between."""

    @initialize()
    def setup(self) -> None:
        self.world = SyncWorld(config=SyncConfig(code_template="SSM{seq:05d}", admin_user_id=1))
        self.sage, self.ssm = self.world.sage, self.world.ssm
        # An account and a contact that always exist keep the G4 "empty snapshot" guard out of the picture.
        self.sage.put("accounts", account_row(ANCHOR, "Anchor"))
        self.sage.put("contacts", contact_row(ANCHOR, 1, "Anchor"))
        self.counter = 0

    # --- Sage side -------------------------------------------------------------------------------------------

    def sage_codes(self) -> list[str]:
        return sorted(k[0] for k in self.sage.rows("accounts"))

    def sage_create_account(self, data: st.DataObject) -> None:
        prospect = data.draw(st.booleans())
        name = data.draw(names)
        city = data.draw(cities)
        country = data.draw(countries)
        self.counter += 1
        row = account_row(f"S{self.counter:04d}", name[:69], prospect=prospect, city=city, country=country)
        self.sage.put("accounts", row)

    def sage_edit_account(self, data: st.DataObject) -> None:
        field = data.draw(st.sampled_from(["name", "city", "country", "phone"]))
        code = data.draw(st.sampled_from(self.sage_codes()))
        value = data.draw({"name": names, "city": cities, "country": countries, "phone": phones}[field])
        if field == "name":
            value = (value or "Nameless")[:69]
        self.sage.edit("accounts", (code,), **{field: value})

    def sage_convert(self, data: st.DataObject) -> None:
        prospects = [k[0] for k, r in self.sage.rows("accounts").items() if r.get("is_prospect") == 1]
        if prospects:
            self.sage.edit("accounts", (data.draw(st.sampled_from(prospects)),), is_prospect=0)

    def sage_delete_account(self, data: st.DataObject) -> None:
        codes = [c for c in self.sage_codes() if c != ANCHOR]
        if codes:
            code = data.draw(st.sampled_from(codes))
            self.sage.delete("accounts", (code,))
            for key in [k for k in self.sage.rows("contacts") if k[0] == code]:
                self.sage.delete("contacts", key)  # Sage removes an account's people with it

    def sage_create_contact(self, data: st.DataObject) -> None:
        last = data.draw(st.sampled_from(["Durand", "Petit", "Moreau", "N" * 40]))
        code = data.draw(st.sampled_from(self.sage_codes()))
        number = 1 + max([k[1] for k in self.sage.rows("contacts") if k[0] == code], default=0)
        self.sage.put("contacts", contact_row(code, number, last[:35], phone=data.draw(phones)))

    def sage_edit_contact(self, data: st.DataObject) -> None:
        first = data.draw(st.sampled_from(["Anne", "Paul", "Zoë", None]))
        keys = sorted(self.sage.rows("contacts"))
        self.sage.edit("contacts", data.draw(st.sampled_from(keys)), first_name=first)

    def sage_delete_contact(self, data: st.DataObject) -> None:
        keys = [k for k in sorted(self.sage.rows("contacts")) if k[0] != ANCHOR]
        if keys:
            self.sage.delete("contacts", data.draw(st.sampled_from(keys)))

    def both_edit_prospect(self, data: st.DataObject) -> None:
        """The same field of a two-way record edited on both sides between two runs (G2)."""
        live = {
            r["extId"]: r["id"] for r in self.ssm.live("accounts") if r.get("extId") and not r["readOnly"]
        }
        codes = [
            k[0] for k, r in self.sage.rows("accounts").items() if r.get("is_prospect") == 1 and k[0] in live
        ]
        if codes:
            code = data.draw(st.sampled_from(codes))
            self.sage.edit("accounts", (code,), city=data.draw(cities))
            self.ssm.user_update(
                "accounts", live[code], {"city": data.draw(st.sampled_from(["Brest", "Nice"]))}
            )

    # --- SSM side (users of the app: read-only records refuse their edits) -----------------------------------

    def ssm_ids(self, endpoint: str) -> list[int]:
        return sorted(r["id"] for r in self.ssm.live(endpoint))

    def ssm_create_account(self, data: st.DataObject) -> None:
        status = data.draw(st.sampled_from([1, 1, 2, 3]))
        name = data.draw(names)
        rep = data.draw(st.sampled_from([None, 7]))
        payload = {"name": name, "statusId": status, "branchId": 1, "salesRepId1": rep or 1, "city": "Nantes"}
        self.ssm.user_create("accounts", payload)

    def ssm_edit_account(self, data: st.DataObject) -> None:
        field = data.draw(st.sampled_from(["name", "city", "phone", "countryId"]))
        ident = data.draw(st.sampled_from(self.ssm_ids("accounts")))
        value = data.draw(
            {
                "name": names,
                "city": st.sampled_from(["Brest", "Nice", "Lille 🚲", None]),
                "phone": phones,
                "countryId": st.sampled_from([73, 21, 58, None]),
            }[field]
        )
        self.ssm.user_update("accounts", ident, {field: value})

    def ssm_convert(self, data: st.DataObject) -> None:
        status = data.draw(st.sampled_from([1, 3]))
        self.ssm.user_update(
            "accounts", data.draw(st.sampled_from(self.ssm_ids("accounts"))), {"statusId": status}
        )

    def ssm_delete_account(self, data: st.DataObject) -> None:
        self.ssm.user_delete("accounts", data.draw(st.sampled_from(self.ssm_ids("accounts"))))

    def ssm_create_contact(self, data: st.DataObject) -> None:
        last = data.draw(st.sampled_from(["Bernard", "Roux", "Fournier"]))
        account = data.draw(st.sampled_from(self.ssm_ids("accounts")))
        self.ssm.user_create(
            "contacts", {"accountId": account, "lastName": last, "firstName": "Léa", "salesRepId": 1}
        )

    def ssm_edit_contact(self, data: st.DataObject) -> None:
        first = data.draw(st.sampled_from(["Marc", "Inès", None]))
        self.ssm.user_update(
            "contacts", data.draw(st.sampled_from(self.ssm_ids("contacts"))), {"firstName": first}
        )

    def ssm_delete_contact(self, data: st.DataObject) -> None:
        self.ssm.user_delete("contacts", data.draw(st.sampled_from(self.ssm_ids("contacts"))))

    # --- the rules: a change on one side, a change on the other, a sync, a sync that meets a fault -------------

    @rule(data=st.data(), action=st.sampled_from(SAGE_ACTIONS))
    def sage_action(self, data: st.DataObject, action: str) -> None:
        getattr(self, action)(data)

    @rule(data=st.data(), action=st.sampled_from(SSM_ACTIONS))
    def ssm_action(self, data: st.DataObject, action: str) -> None:
        needs = (
            "accounts"
            if action.endswith("account") or action in ("ssm_convert", "ssm_create_contact")
            else "contacts"
        )
        if action == "ssm_create_account" or self.ssm.live(needs):
            getattr(self, action)(data)

    # --- the sync, with faults -------------------------------------------------------------------------------

    @rule()
    def sync(self) -> None:
        self.run_sync()

    @rule(
        on_sage=st.booleans(),
        where=FAULT_TARGETS,
        mode=FAULT_MODES,
        calls_left=st.integers(0, 2),
        item=st.integers(0, 2),
    )
    def sync_with_fault(
        self, on_sage: bool, where: tuple[str, str | None], mode: str, calls_left: int, item: int
    ) -> None:
        side = self.sage if on_sage else self.ssm
        method = {"read": "read" if on_sage else "list"}.get(where[0], where[0])
        side.faults.armed.append(Fault(mode, method, where[1], calls_left, item))
        self.run_sync()

    def run_sync(self) -> None:
        # A run that dies (crash, broken read) leaves the state as it was; the next one must pick up from there.
        with contextlib.suppress(SimulatedCrash, TransportError):
            self.world.run(entities=ENTITIES)
        self.sage.faults.armed.clear()
        self.ssm.faults.armed.clear()

    def teardown(self) -> None:
        if not hasattr(self, "world"):
            return
        self.sage.faults = type(self.sage.faults)()
        self.ssm.faults = type(self.ssm.faults)()
        self.world.run(entities=ENTITIES)
        second = self.world.run(entities=ENTITIES)
        assert second.planned_ops == 0, second.render()  # G6: the second clean run has nothing left to do
        self.check_accounts()
        self.check_contacts()

    # --- what the rules define -------------------------------------------------------------------------------

    def check_accounts(self) -> None:
        state, lists = self.world.state, self.ssm.lists
        bindings = state.bindings("accounts")
        quarantined = state.quarantined("accounts")
        live = self.ssm.live("accounts")
        ext_ids = [r["extId"] for r in live if r.get("extId")]
        assert len(ext_ids) == len(set(ext_ids)), (
            f"C1: duplicate extId among live SSM accounts: {sorted(ext_ids)}"
        )
        by_ext = {r["extId"]: r for r in live if r.get("extId")}
        specs = account_specs()
        for (code,), row in self.sage.rows("accounts").items():
            rec = by_ext.get(code)
            customer = row.get("is_prospect") == 0
            if rec is None:
                b = bindings.get(code)
                assert not customer, f"C1: live Sage customer {code} has no live SSM account"
                assert b is not None and b.status == "ssm_deleted", (
                    f"P1: prospect {code} missing in SSM ({b})"
                )
                continue
            assert rec["readOnly"] is customer, f"C2: readOnly of {code} is {rec['readOnly']}"
            if code in quarantined:
                continue
            for spec in specs:
                if spec.name == "is_prospect" and rec.get("statusId") not in (1, 2):
                    continue  # C4: another status stays in SSM only
                if spec.name == "country" and to_ssm(spec, row.get("country"), lists)[1]:
                    continue  # G3 warning: a country SSM does not know leaves the SSM field as it was
                assert same(spec, row.get(spec.name), rec.get(spec.ssm), lists), (
                    f"{code}.{spec.name}: Sage {row.get(spec.name)!r} vs SSM {rec.get(spec.ssm)!r}"
                )
        # C4: every company created in SSM as Client/Prospect got exactly one Sage row, with its code as extId.
        sage_codes = {k[0] for k in self.sage.rows("accounts")}
        reserved = state.reserved("accounts")
        codes = list(reserved.values())
        assert len(codes) == len(set(codes)), "C4: one code reserved for two SSM companies"
        ssm_made = [c for c in sage_codes if c.startswith("SSM")]
        assert len(ssm_made) == len(set(ssm_made))
        for code in ssm_made:
            owners = [i for i, c in reserved.items() if c == code]
            assert len(owners) == 1, f"C4: Sage customer {code} has no single SSM company behind it"
        for rec in live:
            if (
                rec.get("extId") is None
                and rec.get("statusId") in (1, 2)
                and f"ssm:{rec['id']}" not in quarantined
            ):
                assert rec["id"] in reserved and reserved[rec["id"]] in quarantined, (
                    f"C4: SSM company {rec['id']} never reached Sage"
                )

    def check_contacts(self) -> None:
        state, lists = self.world.state, self.ssm.lists
        accounts = state.bindings("accounts")
        bindings = state.bindings("contacts")
        quarantined = state.quarantined("contacts")
        live = self.ssm.live("contacts")
        ext_ids = [r["extId"] for r in live if r.get("extId")]
        assert len(ext_ids) == len(set(ext_ids)), (
            f"K1: duplicate extId among live SSM contacts: {sorted(ext_ids)}"
        )
        by_ext = {r["extId"]: r for r in live if r.get("extId")}
        customers = {k[0] for k, r in self.sage.rows("accounts").items() if r.get("is_prospect") == 0}
        specs = contact_specs()
        for (code, number), row in self.sage.rows("contacts").items():
            key = f"{code}/{number}"
            rec = by_ext.get(key)
            if code not in customers:
                assert rec is None, f"P5: contact {key} of a prospect reached SSM"
                continue
            if rec is None:
                b = bindings.get(key)
                assert b is not None and b.status == "ssm_deleted", (
                    f"K1: contact {key} of customer missing in SSM"
                )
                continue
            assert rec["accountId"] == accounts[code].ssm_id
            if key in quarantined:
                continue
            for spec in specs:
                assert same(spec, row.get(spec.name), rec.get(spec.ssm), lists), (
                    f"{key}.{spec.name}: Sage {row.get(spec.name)!r} vs SSM {rec.get(spec.ssm)!r}"
                )
        bound_customers = {
            b.ssm_id: c
            for c, b in accounts.items()
            if c in customers and b.status == "ok" and b.ssm_id is not None
        }
        sage_keys = {f"{c}/{n}" for c, n in self.sage.rows("contacts")}
        for rec in live:
            code = bound_customers.get(rec["accountId"])
            if code is None:
                continue
            if rec.get("extId") is None:
                assert f"ssm:{rec['id']}" in quarantined or any(
                    k in quarantined for k in state.reserved("contacts").values()
                ), f"K1: SSM contact {rec['id']} on customer {code} never reached Sage"
            else:
                assert rec["extId"] in sage_keys or rec["extId"] in quarantined, (
                    f"K1: {rec['extId']} not in Sage"
                )


SyncMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestStatefulSync = SyncMachine.TestCase
