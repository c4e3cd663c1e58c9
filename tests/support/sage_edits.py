"""Edits a Sage user makes in the stand-in dossier of a DAG scenario, through SQL as Sage would store them."""

from __future__ import annotations

import sqlalchemy as sa

from sage_sync_tools.stack import SyncStack


def insert_customer_without_code(stack: SyncStack, name: str = "Sans Code SARL", city: str = "Lyon") -> None:
    """A customer row whose ``CT_Num`` is NULL (a damaged dossier; SQLite lets a text primary key be NULL)."""
    engine = stack.sage()
    try:
        with engine.begin() as db:
            db.execute(
                sa.text(
                    "INSERT INTO F_COMPTET (CT_Num, CT_Intitule, CT_Type, CT_Prospect, CT_Ville, CT_Sommeil) "
                    "VALUES (NULL, :name, 0, 0, :city, 0)"
                ),
                {"name": name, "city": city},
            )
    finally:
        engine.dispose()


def purge_customers(stack: SyncStack, count: int) -> list[str]:
    """``count`` customers without documents deleted with their contacts and delivery addresses; their codes."""
    engine = stack.sage()
    try:
        with engine.begin() as db:
            codes = [
                str(r[0])
                for r in db.execute(
                    sa.text(
                        "SELECT CT_Num FROM F_COMPTET c WHERE CT_Type = 0 AND CT_Num IS NOT NULL AND NOT EXISTS "
                        "(SELECT 1 FROM F_DOCENTETE d WHERE d.DO_Tiers = c.CT_Num) AND NOT EXISTS "
                        "(SELECT 1 FROM F_DOCLIGNE l WHERE l.CT_Num = c.CT_Num) ORDER BY CT_Num LIMIT :n"
                    ),
                    {"n": count},
                )
            ]
        delete_customers(stack, codes)
        return codes
    finally:
        engine.dispose()


def insert_customers(stack: SyncStack, count: int, city: str = "Nantes") -> list[str]:
    """``count`` new customers without documents (codes ``ZZNEW001``...), as a Sage user creates them; their codes."""
    codes = [f"ZZNEW{i:03d}" for i in range(1, count + 1)]
    engine = stack.sage()
    try:
        with engine.begin() as db:
            for i, code in enumerate(codes, 1):
                db.execute(
                    sa.text(
                        "INSERT INTO F_COMPTET (CT_Num, CT_Intitule, CT_Type, CT_Prospect, CT_Ville, CT_Sommeil) "
                        "VALUES (:code, :name, 0, 0, :city, 0)"
                    ),
                    {"code": code, "name": f"Nouveau client {i}", "city": city},
                )
        return codes
    finally:
        engine.dispose()


def delete_customers(stack: SyncStack, codes: list[str]) -> None:
    """Customers deleted in Sage with their contacts and delivery addresses (they must have no documents)."""
    engine = stack.sage()
    try:
        with engine.begin() as db:
            for code in codes:
                for table in ("F_CONTACTT", "F_LIVRAISON", "F_COMPTET"):
                    db.execute(sa.text(f"DELETE FROM {table} WHERE CT_Num = :c"), {"c": code})
    finally:
        engine.dispose()
