"""The Sage 50 FR stand-in schema, exactly as ``SAGE50FR-STANDIN.md`` defines it (SQLAlchemy Core).

Identifiers are emitted unquoted (``quote=False``): the contract promises that outside programs can write
``INSERT INTO F_COMPTET (CT_Num, ...)`` on either engine, which on PostgreSQL only works when the tables were
created with unquoted (so case-folded) names. SQLite ignores identifier case anyway.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Column,
    Date,
    DateTime,
    ForeignKeyConstraint,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Table,
    text,
)

metadata = MetaData()


def _col(name: str, type_: Any, *, nullable: bool = True, default: Any = None, pk: bool = False) -> Column:
    server_default = text(str(default)) if default is not None else None
    return Column(name, type_, nullable=nullable, server_default=server_default, primary_key=pk, quote=False)


def _table(name: str, *items: Any) -> Table:
    return Table(name, metadata, *items, quote=False)


F_COMPTET = _table(
    "F_COMPTET",
    _col("CT_Num", String(17), pk=True),
    _col("CT_Intitule", String(69), nullable=False),
    _col("CT_Type", SmallInteger, nullable=False, default=0),
    _col("CT_Prospect", SmallInteger, nullable=False, default=0),
    _col("CT_Contact", String(35)),
    _col("CT_Adresse", String(35)),
    _col("CT_Complement", String(35)),
    _col("CT_CodePostal", String(9)),
    _col("CT_Ville", String(35)),
    _col("CT_CodeRegion", String(25)),
    _col("CT_Pays", String(35)),
    _col("CT_Telephone", String(21)),
    _col("CT_Telecopie", String(21)),
    _col("CT_EMail", String(69)),
    _col("CT_Site", String(69)),
    _col("CT_Siret", String(15)),
    _col("CT_Identifiant", String(25)),
    _col("CT_Ape", String(7)),
    _col("CT_Commentaire", String(35)),
    _col("CT_Sommeil", SmallInteger, nullable=False, default=0),
    _col("SALES_REP", String(69)),
    _col("cbCreation", DateTime),
    _col("cbModification", DateTime),
)

F_CONTACTT = _table(
    "F_CONTACTT",
    _col("CT_Num", String(17), nullable=False),
    _col("CT_No", Integer, nullable=False),
    _col("CT_Civilite", SmallInteger),
    _col("CT_Nom", String(35), nullable=False),
    _col("CT_Prenom", String(35)),
    _col("CT_Fonction", String(35)),
    _col("CT_Telephone", String(21)),
    _col("CT_TelPortable", String(21)),
    _col("CT_Telecopie", String(21)),
    _col("CT_EMail", String(69)),
    _col("cbModification", DateTime),
    PrimaryKeyConstraint("CT_Num", "CT_No"),
    ForeignKeyConstraint(["CT_Num"], ["F_COMPTET.CT_Num"]),
)

F_LIVRAISON = _table(
    "F_LIVRAISON",
    _col("LI_No", Integer, pk=True),
    _col("CT_Num", String(17)),
    _col("LI_Intitule", String(35), nullable=False),
    _col("LI_Adresse", String(35)),
    _col("LI_Complement", String(35)),
    _col("LI_CodePostal", String(9)),
    _col("LI_Ville", String(35)),
    _col("LI_Pays", String(35)),
    _col("LI_Contact", String(35)),
    _col("LI_Telephone", String(21)),
    _col("LI_EMail", String(69)),
    _col("LI_Principal", SmallInteger, default=0),
    ForeignKeyConstraint(["CT_Num"], ["F_COMPTET.CT_Num"]),
)

F_FAMILLE = _table(
    "F_FAMILLE",
    _col("FA_CodeFamille", String(10), pk=True),
    _col("FA_Intitule", String(35), nullable=False),
)

F_TAXE = _table(
    "F_TAXE",
    _col("TA_Code", String(5), pk=True),
    _col("TA_Intitule", String(35)),
    _col("TA_Taux", Numeric),
)

F_DEPOT = _table(
    "F_DEPOT",
    _col("DE_No", Integer, pk=True),
    _col("DE_Intitule", String(35), nullable=False),
)

F_ARTICLE = _table(
    "F_ARTICLE",
    _col("AR_Ref", String(19), pk=True),
    _col("AR_Design", String(69), nullable=False),
    _col("FA_CodeFamille", String(10)),
    _col("AR_PrixAch", Numeric),
    _col("AR_PrixVen", Numeric, nullable=False),
    _col("AR_PrixTTC", SmallInteger, nullable=False, default=0),
    _col("AR_SuiviStock", SmallInteger, nullable=False, default=2),
    _col("AR_UniteVen", String(21)),
    _col("AR_CodeBarre", String(19)),
    _col("AR_Photo", String(259)),
    _col("AR_Sommeil", SmallInteger, nullable=False, default=0),
    _col("cbModification", DateTime),
    ForeignKeyConstraint(["FA_CodeFamille"], ["F_FAMILLE.FA_CodeFamille"]),
)

F_ARTCOMPTA = _table(
    "F_ARTCOMPTA",
    _col("AR_Ref", String(19), nullable=False),
    _col("ACP_Type", SmallInteger, nullable=False),
    _col("ACP_Champ", SmallInteger, nullable=False),
    _col("ACP_ComptaCPT_Taxe1", String(5)),
    PrimaryKeyConstraint("AR_Ref", "ACP_Type", "ACP_Champ"),
    ForeignKeyConstraint(["AR_Ref"], ["F_ARTICLE.AR_Ref"]),
    ForeignKeyConstraint(["ACP_ComptaCPT_Taxe1"], ["F_TAXE.TA_Code"]),
)

F_ARTSTOCK = _table(
    "F_ARTSTOCK",
    _col("AR_Ref", String(19), nullable=False),
    _col("DE_No", Integer, nullable=False),
    _col("AS_QteSto", Numeric, nullable=False, default=0),
    PrimaryKeyConstraint("AR_Ref", "DE_No"),
    ForeignKeyConstraint(["AR_Ref"], ["F_ARTICLE.AR_Ref"]),
    ForeignKeyConstraint(["DE_No"], ["F_DEPOT.DE_No"]),
)

F_DOCENTETE = _table(
    "F_DOCENTETE",
    _col("DO_Domaine", SmallInteger, nullable=False),
    _col("DO_Type", SmallInteger, nullable=False),
    _col("DO_Piece", String(13), nullable=False),
    _col("DO_Date", Date, nullable=False),
    _col("DO_Ref", String(17)),
    _col("DO_Tiers", String(17), nullable=False),
    _col("DO_Provenance", SmallInteger, nullable=False, default=0),
    _col("DO_TotalHT", Numeric, nullable=False),
    _col("DO_TotalTTC", Numeric, nullable=False),
    _col("DO_NetAPayer", Numeric, nullable=False),
    _col("DO_MontantRegle", Numeric, nullable=False, default=0),
    _col("cbModification", DateTime),
    PrimaryKeyConstraint("DO_Domaine", "DO_Type", "DO_Piece"),
    ForeignKeyConstraint(["DO_Tiers"], ["F_COMPTET.CT_Num"]),
)

F_DOCLIGNE = _table(
    "F_DOCLIGNE",
    _col("DL_No", Integer, pk=True),
    _col("DO_Domaine", SmallInteger),
    _col("DO_Type", SmallInteger),
    _col("DO_Piece", String(13)),
    _col("CT_Num", String(17)),
    _col("DL_Ligne", Integer),
    _col("AR_Ref", String(19)),
    _col("DL_Design", String(69)),
    _col("DL_Qte", Numeric),
    _col("DL_PrixUnitaire", Numeric),
    _col("DL_Taxe1", Numeric),
    _col("DL_Remise01REM_Valeur", Numeric),
    _col("DL_MontantHT", Numeric),
    _col("DL_MontantTTC", Numeric),
    ForeignKeyConstraint(
        ["DO_Domaine", "DO_Type", "DO_Piece"],
        ["F_DOCENTETE.DO_Domaine", "F_DOCENTETE.DO_Type", "F_DOCENTETE.DO_Piece"],
    ),
)

TABLES: dict[str, Table] = {t.name: t for t in metadata.sorted_tables}
