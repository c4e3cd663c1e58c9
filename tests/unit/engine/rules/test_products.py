"""Products rules D1-D6 (one way, read-only in SSM), checked on both sides."""

from __future__ import annotations

import hashlib

from sage_sync.engine.config import SyncConfig
from tests.support.memory import SyncWorld, put_article

PRODUCTS = ("products",)


def article(w: SyncWorld, ref: str, **values: object) -> None:
    put_article(w.sage, ref, **{"stock_managed": 2, **values})


def world() -> SyncWorld:
    w = SyncWorld(config=SyncConfig())
    w.sage.put("products", {"tax_code": "T20", "tax_rate": 20.0}, source="taxes")
    w.sage.put("products", {"family_code": "VIN", "family_name": "Vins"}, source="families")
    return w


def only(w: SyncWorld, ref: str) -> dict:
    (rec,) = w.ssm_by_ext("products", ref)
    return rec


def test_d1_articles_become_read_only_products_one_way() -> None:
    w = world()
    article(w, "A1", barcode="3760001", sales_unit="Bouteille")
    result = w.run(entities=PRODUCTS)
    assert [(o.kind, o.rule) for o in result.plans["products"].ops] == [("ssm_create", "D1")]
    rec = only(w, "A1")
    assert rec["readOnly"] is True and rec["model"] == "Article A1" and rec["cost"] == 4.0
    assert rec["familyId"] == w.ssm.lists.product_families["Vins"]
    assert (rec["Z_Barcode"], rec["Z_Unit"]) == ("3760001", "Bouteille")
    w.ssm.bulk_update("products", [(rec["id"], {"model": "edited in SSM"})])
    assert w.run(entities=PRODUCTS).planned_ops == 0  # nothing flows back
    assert w.sage.rows("products")[("A1",)]["designation"] == "Article A1"


def test_d2_stock_is_the_total_over_depots_or_a_dash() -> None:
    w = world()
    article(w, "A1", stock_managed=2)
    article(w, "S1", stock_managed=0)
    w.sage.put("products", {"ref": "A1", "depot": 1, "quantity": 5.0}, source="stock")
    w.sage.put("products", {"ref": "A1", "depot": 2, "quantity": 7.0}, source="stock")
    w.run(entities=PRODUCTS)
    assert (only(w, "A1")["stock"], only(w, "A1")["Z_StockDisplay"]) == (12, "12")
    assert (only(w, "S1")["stock"], only(w, "S1")["Z_StockDisplay"]) == (None, "-")
    w.sage.put("products", {"ref": "A1", "depot": 2, "quantity": 8.5}, source="stock")
    plan = w.run(entities=PRODUCTS).plans["products"]
    assert [(o.rule, sorted(o.fields)) for o in plan.ops] == [("D2", ["Z_StockDisplay", "stock"])]
    assert (only(w, "A1")["stock"], only(w, "A1")["Z_StockDisplay"]) == (14, "13.5")


def test_d3_picture_uploaded_as_carrousel_and_again_only_when_bytes_change() -> None:
    w = world()
    w.sage.pictures["media/a1.jpg"] = b"first"
    article(w, "A1", picture="media/a1.jpg")
    w.run(entities=PRODUCTS)
    (doc,) = w.ssm.documents[only(w, "A1")["id"]]
    assert doc["isCarrousel"] is True and doc["sha256"] == hashlib.sha256(b"first").hexdigest()
    assert w.run(entities=PRODUCTS).planned_ops == 0
    w.sage.pictures["media/a1.jpg"] = b"second"
    plan = w.run(entities=PRODUCTS).plans["products"]
    assert [o.picture is not None for o in plan.ops] == [True]
    assert w.ssm.documents[only(w, "A1")["id"]][0]["sha256"] == hashlib.sha256(b"second").hexdigest()


def test_d4_article_deleted_in_sage_is_deleted_in_ssm() -> None:
    w = world()
    article(w, "A1")
    article(w, "A2")
    w.run(entities=PRODUCTS)
    sid = only(w, "A1")["id"]
    w.sage.delete("products", ("A1",))
    plan = w.run(entities=PRODUCTS).plans["products"]
    assert [(o.kind, o.rule) for o in plan.ops] == [("ssm_delete", "D4")]
    assert w.ssm.data["products"][sid]["deleted"] is True


def test_d5_asleep_article_is_not_available_and_back() -> None:
    w = world()
    article(w, "A1", asleep=1)
    w.run(entities=PRODUCTS)
    assert only(w, "A1")["notAvailable"] is True
    w.sage.edit("products", ("A1",), asleep=0)
    plan = w.run(entities=PRODUCTS).plans["products"]
    assert [(o.rule, o.fields) for o in plan.ops] == [("D5", {"notAvailable": False})]
    assert only(w, "A1")["notAvailable"] is False


def test_d6_price_including_tax_is_converted_to_excluding_tax() -> None:
    w = world()
    article(w, "A1", sales_price=12.0, price_includes_tax=1)
    article(w, "A2", sales_price=9.99, price_includes_tax=0)
    w.run(entities=PRODUCTS)
    assert only(w, "A1")["price"] == 10.0
    assert only(w, "A2")["price"] == 9.99
    w.sage.edit("products", ("A1",), sales_price=10.0)
    plan = w.run(entities=PRODUCTS).plans["products"]
    assert [(o.rule, o.fields) for o in plan.ops] == [("D6", {"price": 8.33})]


def test_d6_price_including_tax_without_vat_rate_is_quarantined() -> None:
    w = world()
    w.sage.put(
        "products",
        {
            "ref": "A9",
            "designation": "No tax",
            "sales_price": 5.0,
            "price_includes_tax": 1,
            "stock_managed": 0,
            "asleep": 0,
        },
    )
    result = w.run(entities=PRODUCTS)
    assert [(n.rule, n.key) for n in result.plans["products"].quarantined] == [("D6", "A9")]
    assert w.ssm.live("products") == []
    assert "A9" in w.state.quarantined("products")


def test_d1_lost_response_on_create_and_failed_picture_upload_converge_without_duplicates() -> None:
    from tests.support.memory import Fault

    w = world()
    w.sage.pictures["media/a1.jpg"] = b"first"
    article(w, "A1", picture="media/a1.jpg")
    article(w, "A2")
    w.ssm.faults.armed.append(Fault("lost", "create", "products"))
    assert w.run(entities=PRODUCTS).counts["products"].failed == 2
    w.ssm.faults.armed.append(Fault("raise", "upload", "products"))
    w.run(entities=PRODUCTS)
    assert not w.ssm.documents  # the upload failed: the product stays unconfirmed
    w.run(entities=PRODUCTS)
    assert sorted(r["extId"] for r in w.ssm.live("products")) == ["A1", "A2"]
    assert len(w.ssm.documents[only(w, "A1")["id"]]) == 1
    assert w.run(entities=PRODUCTS).planned_ops == 0
