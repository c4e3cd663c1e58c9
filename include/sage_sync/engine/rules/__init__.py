"""Business rules: one pure function per entity turns (Sage changes, SSM changes, state) into a plan.

:data:`RULES` is where entity-specific behaviour is looked up by entity name: the planner, and for entities whose
records can be created in SSM (C4, K1) the step that reserves their Sage keys before any Sage insert.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sage_sync.engine.bindings import BindingScope
from sage_sync.engine.config import SyncConfig
from sage_sync.engine.inputs import PlanInput
from sage_sync.engine.plan import Plan, PlanSpool
from sage_sync.engine.rules.accounts import plan_accounts, reserve_codes
from sage_sync.engine.rules.common import Reservations, paired_keys
from sage_sync.engine.rules.contacts import plan_contacts, reserve_numbers
from sage_sync.engine.rules.contacts import read_beyond as contacts_read
from sage_sync.engine.rules.contacts import waiting as waiting_contacts
from sage_sync.engine.rules.invoices import LineTest, line_bindings_read, plan_invoices, read_beyond_changes
from sage_sync.engine.rules.products import plan_products
from sage_sync.engine.snapshot import SageLines


@dataclass(frozen=True)
class EntityRules:
    """The rules of one entity.

    Its planner, its key reservation (entities created in SSM only), the Sage records that wait this run
    without ever having been sent (they need no ``extId`` lookup), the unchanged keys its planner reads besides
    the Sage changes (``read_beyond``: none for a one-way entity; for a two-way one, the keys the SSM records
    of the run pair with): the plan input is then narrowed to them
    (:meth:`~sage_sync.engine.inputs.PlanInput.narrow`; not in a full reconcile), and only the line bindings
    ``read_lines`` names are loaded.
    """

    plan: Callable[[PlanInput, SyncConfig], Plan]
    reserve: Callable[[PlanInput, Reservations, SyncConfig], None] | None = None
    waiting: Callable[[PlanInput], set[str]] | None = None
    read_beyond: Callable[[PlanInput], set[str]] | None = None
    #: For an entity with lines: which line bindings its planner reads, as the state's selection of candidates
    #: and a ``(line key, synced values) -> bool`` test among them.
    read_lines: Callable[[PlanInput, SageLines], tuple[BindingScope, LineTest]] | None = None
    #: A one-way entity of millions of records: its planner settles what it planned into a spool as it goes, and
    #: the plan step writes the plan as it is made. A two-way entity's plan is checked whole after planning (G3).
    spooled: Callable[[PlanInput, SyncConfig, PlanSpool], Plan] | None = None


def only_changes(inp: PlanInput) -> set[str]:
    """No unchanged key: the planner reads only the created, updated, deleted and orphaned records."""
    return set()


RULES: dict[str, EntityRules] = {
    "accounts": EntityRules(plan_accounts, reserve_codes, read_beyond=paired_keys),
    "contacts": EntityRules(plan_contacts, reserve_numbers, waiting_contacts, read_beyond=contacts_read),
    "products": EntityRules(plan_products, read_beyond=only_changes),
    "invoices": EntityRules(
        plan_invoices, read_beyond=read_beyond_changes, read_lines=line_bindings_read, spooled=plan_invoices
    ),
}
