"""Cart, favorites and addresses (API.md §9): add-or-increase (201/200), 1..99 per line, 50 concurrent
adds end at exactly 50, object-level access (404 for others), guest data merged by
migrate-guest-data, DELETE /me and GET /me/export."""
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from catalog_util import API, guest, ids, mk, new_category, new_product
from conftest import HTTP_TIMEOUT, assert_problem, error_fields, new_user_headers

MISSING = "01900000-0000-7000-8000-000000000000"


@pytest.fixture
def products(server, admin_headers):
    cat = new_category(server, admin_headers)
    return [new_product(server, admin_headers, cat["slug"], price=p,
                        name={"tr": f"Ürün {i}", "en": f"Product {i}", "pl": f"Produkt {i}"})
            for i, p in enumerate([1250, 4990, 100000])]


@pytest.fixture
def me(server):
    return new_user_headers(server, "cart")[0]


def add(server, h, product_id, quantity=None, status=None):
    body = {"product_id": product_id}
    if quantity is not None:
        body["quantity"] = quantity
    r = server.post(f"{API}/me/cart", json=body, headers=h)
    if status is not None:
        assert r.status_code == status, r.text
    return r


def test_add_or_increase(server, me, products):
    p0, p1, _ = products
    r = add(server, me, p0["id"], 2, 201)
    line = r.json()
    assert set(line) >= {"id", "product_id", "quantity", "created_at", "updated_at"}
    assert line["product_id"] == p0["id"] and line["quantity"] == 2 and r.headers["ETag"]
    r = add(server, me, p0["id"], 3, 200)
    assert r.json()["id"] == line["id"] and r.json()["quantity"] == 5
    assert add(server, me, p0["id"], status=200).json()["quantity"] == 6  # quantity defaults to 1
    add(server, me, p1["id"], 1, 201)
    cart = server.get(f"{API}/me/cart", headers=me).json()
    assert [(i["product_id"], i["quantity"]) for i in cart["items"]] == [(p0["id"], 6), (p1["id"], 1)]
    assert cart["total"] == 6 * 1250 + 4990 and cart["currency"] == "TRY"
    assert cart["totals"] == {"TRY": 6 * 1250 + 4990}
    assert cart["items"][0]["unit_price"] == 1250 and cart["items"][0]["line_total"] == 7500
    # one line: GET, PUT, DELETE
    url = f"{API}/me/cart/{line['id']}"
    got = server.get(url, headers=me)
    assert got.status_code == 200 and got.json()["quantity"] == 6
    r = server.put(url, json={"quantity": 9}, headers=me)
    assert r.status_code == 200 and r.json()["quantity"] == 9
    assert_problem(server.put(url, json={"quantity": 1}, headers={**me, "If-Match": got.headers["ETag"]}), 412)
    assert server.put(url, json={"quantity": 1}, headers={**me, "If-Match": r.headers["ETag"]}).status_code == 200
    assert server.delete(url, headers=me).status_code == 204
    assert_problem(server.get(url, headers=me), 404)
    cart = server.get(f"{API}/me/cart", headers=me).json()
    assert [i["product_id"] for i in cart["items"]] == [p1["id"]] and cart["total"] == 4990


def test_empty_cart_and_language(server, me, products):
    cart = server.get(f"{API}/me/cart", headers=me).json()
    assert cart == {"items": [], "total": 0, "currency": "TRY", "totals": {}}
    add(server, me, products[1]["id"], 1, 201)
    for lang, name in [("tr", "Ürün 1"), ("en", "Product 1"), ("pl", "Produkt 1")]:
        cart = server.get(f"{API}/me/cart", headers={**me, "Accept-Language": lang}).json()
        assert cart["items"][0]["name"] == name
    assert_problem(server.get(f"{API}/me/cart"), 401)


def test_quantity_limits(server, me, products, admin_headers):
    p0, p1, p2 = products
    for q in (0, -1, 100, 1.5, "2", None):
        body = {"product_id": p0["id"], "quantity": q}
        b = assert_problem(server.post(f"{API}/me/cart", json=body, headers=me), 422)
        assert "quantity" in error_fields(b)
    line = add(server, me, p0["id"], 99, 201).json()
    b = assert_problem(add(server, me, p0["id"], 1), 422, "VALIDATION_ERROR")
    assert "quantity" in error_fields(b)
    assert server.get(f"{API}/me/cart/{line['id']}", headers=me).json()["quantity"] == 99
    add(server, me, p1["id"], 60, 201)
    assert_problem(add(server, me, p1["id"], 40), 422)
    assert add(server, me, p1["id"], 39, 200).json()["quantity"] == 99
    for q in (0, 100):
        assert_problem(server.put(f"{API}/me/cart/{line['id']}", json={"quantity": q}, headers=me), 422)
    assert_problem(server.put(f"{API}/me/cart/{line['id']}", json={}, headers=me), 422)
    # unknown, malformed and withdrawn products
    for pid in (MISSING, "not-a-uuid", "' OR 1=1 --"):
        b = assert_problem(add(server, me, pid, 1), 422)
        assert "product_id" in error_fields(b)
    assert server.delete(f"{API}/products/{p2['id']}", headers=admin_headers).status_code == 204
    assert_problem(add(server, me, p2["id"], 1), 422)
    assert_problem(server.post(f"{API}/me/cart", json={"product_id": p0["id"], "extra": 1}, headers=me), 422)


def test_withdrawn_product_stays_in_cart_uncharged(server, me, products, admin_headers):
    p0, p1, _ = products
    add(server, me, p0["id"], 2, 201)
    add(server, me, p1["id"], 1, 201)
    assert server.delete(f"{API}/products/{p1['id']}", headers=admin_headers).status_code == 204
    cart = server.get(f"{API}/me/cart", headers=me).json()
    assert [(i["product_id"], i["available"]) for i in cart["items"]] == [(p0["id"], True), (p1["id"], False)]
    assert cart["total"] == 2500


def test_cart_lines_are_private(server, me, products):
    other, _ = new_user_headers(server, "other")
    line = add(server, me, products[0]["id"], 3, 201).json()
    url = f"{API}/me/cart/{line['id']}"
    assert_problem(server.get(url, headers=other), 404)
    assert_problem(server.put(url, json={"quantity": 1}, headers=other), 404)
    assert_problem(server.delete(url, headers=other), 404)
    assert server.get(f"{API}/me/cart", headers=other).json()["items"] == []
    # the other user's own line of the same product is a separate line
    assert add(server, other, products[0]["id"], 1, 201).json()["id"] != line["id"]
    assert server.get(url, headers=me).json()["quantity"] == 3
    assert_problem(server.get(f"{API}/me/cart/nope", headers=me), 404)
    assert_problem(server.put(f"{API}/me/cart/{MISSING}", json={"quantity": 1}, headers=me), 404)


def concurrent_adds(server, h, product_id, n, quantity=1):
    url = server.url(f"{API}/me/cart")

    def one(_):
        r = requests.post(url, json={"product_id": product_id, "quantity": quantity}, headers=h,
                          timeout=HTTP_TIMEOUT)
        return r.status_code

    with ThreadPoolExecutor(n) as ex:
        return list(ex.map(one, range(n)))


def test_50_concurrent_adds_end_at_exactly_50(server, me, products):
    codes = concurrent_adds(server, me, products[0]["id"], 50)
    assert sorted(codes) == [200] * 49 + [201], codes
    cart = server.get(f"{API}/me/cart", headers=me).json()
    assert [(i["product_id"], i["quantity"]) for i in cart["items"]] == [(products[0]["id"], 50)]


def test_concurrent_adds_never_pass_99(server, me, products):
    add(server, me, products[1]["id"], 95, 201)
    codes = concurrent_adds(server, me, products[1]["id"], 20)
    assert sorted(codes) == [200] * 4 + [422] * 16, codes
    cart = server.get(f"{API}/me/cart", headers=me).json()
    assert cart["items"][0]["quantity"] == 99


# ---- favorites ----

def test_favorites(server, me, products):
    other, _ = new_user_headers(server, "other")
    r = server.post(f"{API}/me/favorites", json={"product_id": products[0]["id"]}, headers=me)
    assert r.status_code == 201 and r.headers["Location"].endswith(r.json()["id"])
    fav = r.json()
    again = server.post(f"{API}/me/favorites", json={"product_id": products[0]["id"]}, headers=me)
    assert again.status_code == 200 and again.json()["id"] == fav["id"]
    fav2 = mk(server, me, "/me/favorites", {"product_id": products[1]["id"]})
    assert ids(server.get(f"{API}/me/favorites", headers=me)) == [fav2["id"], fav["id"]]
    assert ids(server.get(f"{API}/me/favorites?product_id={products[0]['id']}", headers=me)) == [fav["id"]]
    assert server.get(f"{API}/me/favorites", headers=other).json()["data"] == []
    assert_problem(server.get(f"{API}/me/favorites/{fav['id']}", headers=other), 404)
    assert_problem(server.delete(f"{API}/me/favorites/{fav['id']}", headers=other), 404)
    assert_problem(server.post(f"{API}/me/favorites", json={"product_id": MISSING}, headers=me), 422)
    assert_problem(server.post(f"{API}/me/favorites", json={}, headers=me), 422)
    assert_problem(server.get(f"{API}/me/favorites"), 401)
    assert server.delete(f"{API}/me/favorites/{fav['id']}", headers=me).status_code == 204
    assert ids(server.get(f"{API}/me/favorites", headers=me)) == [fav2["id"]]


def test_favorites_expand_products(server, me, products, admin_headers):
    """GET /me/favorites carries each product as GET /products/{id} shows it (in the request's
    language); a product no longer sold shows as null; unknown query keys are 422."""
    a = mk(server, me, "/me/favorites", {"product_id": products[0]["id"]})
    b = mk(server, me, "/me/favorites", {"product_id": products[1]["id"]})
    r = server.get(f"{API}/me/favorites?limit=1&page=2", headers={**me, "Accept-Language": "tr"})
    assert r.status_code == 200 and r.json()["meta"]["total"] == 2 and r.json()["meta"]["pages"] == 2
    (row,) = r.json()["data"]
    want = server.get(f"{API}/products/{products[0]['id']}", headers={"Accept-Language": "tr"}).json()
    assert row["id"] == a["id"] and row["product_id"] == products[0]["id"] and row["product"] == want
    assert set(row) == {"id", "product_id", "created_at", "updated_at", "product"}
    assert server.delete(f"{API}/products/{products[1]['id']}", headers=admin_headers).status_code == 204
    data = server.get(f"{API}/me/favorites", headers=me).json()["data"]
    assert [(x["id"], x["product"] is None) for x in data] == [(b["id"], True), (a["id"], False)]
    assert_problem(server.get(f"{API}/me/favorites?sort=price", headers=me), 422)


# ---- addresses ----

ADDR = {"title": "Ev", "full_name": "Ayşe Yılmaz", "phone": "+905551112233", "line1": "Atatürk Cad. 12/3",
        "district": "Kadıköy", "city": "İstanbul", "postal_code": "34710"}


def test_addresses_crud_and_privacy(server, me):
    other, _ = new_user_headers(server, "other")
    a = mk(server, me, "/me/addresses", ADDR)
    assert a["country"] == "TR" and a["is_default"] is False and a["city"] == "İstanbul"
    url = f"{API}/me/addresses/{a['id']}"
    for method, kw in [("GET", {}), ("PATCH", {"json": {"city": "Ankara"}}), ("DELETE", {})]:
        assert_problem(server.request(method, url, headers=other, **kw), 404)
    assert server.get(f"{API}/me/addresses", headers=other).json()["data"] == []
    assert server.patch(url, json={"city": "Ankara"}, headers=me).json()["city"] == "Ankara"
    assert ids(server.get(f"{API}/me/addresses?city=Ankara", headers=me)) == [a["id"]]
    for bad, field in [({**ADDR, "full_name": ""}, "full_name"), ({k: v for k, v in ADDR.items() if k != "line1"},
                                                                  "line1"),
                       ({**ADDR, "country": "TUR"}, "country"), ({**ADDR, "user_id": "x"}, "user_id")]:
        b = assert_problem(server.post(f"{API}/me/addresses", json=bad, headers=me), 422)
        assert field in error_fields(b)
    # one default at a time
    b = mk(server, me, "/me/addresses", {**ADDR, "title": "İş", "is_default": True})
    c = mk(server, me, "/me/addresses", {**ADDR, "title": "Yazlık", "is_default": True})
    defaults = ids(server.get(f"{API}/me/addresses?is_default=true", headers=me))
    assert defaults == [c["id"]]
    server.patch(f"{API}/me/addresses/{b['id']}", json={"is_default": True}, headers=me)
    assert ids(server.get(f"{API}/me/addresses?is_default=true", headers=me)) == [b["id"]]
    assert server.delete(url, headers=me).status_code == 204
    assert_problem(server.get(url, headers=me), 404)
    g, _ = guest(server)
    assert_problem(server.post(f"{API}/me/addresses", json=ADDR, headers=g), 403)


# ---- guests, export, deletion ----

def test_guest_cart_merged_into_account(server, products):
    p0, p1, p2 = products
    g, gtoken = guest(server)
    add(server, g, p0["id"], 3, 201)
    add(server, g, p1["id"], 60, 201)
    mk(server, g, "/me/favorites", {"product_id": p0["id"]})
    mk(server, g, "/me/favorites", {"product_id": p2["id"]})
    user, _ = new_user_headers(server, "merge")
    add(server, user, p1["id"], 50, 201)
    add(server, user, p2["id"], 2, 201)
    mk(server, user, "/me/favorites", {"product_id": p2["id"]})
    r = server.post(f"{API}/auth/migrate-guest-data", json={"guest_token": gtoken}, headers=user)
    assert r.status_code == 200, r.text
    assert "shop" in r.json()["migrated"]
    cart = server.get(f"{API}/me/cart", headers=user).json()
    got = {i["product_id"]: i["quantity"] for i in cart["items"]}
    assert got == {p0["id"]: 3, p1["id"]: 99, p2["id"]: 2}  # 60 + 50 capped at 99
    favs = server.get(f"{API}/me/favorites", headers=user).json()["data"]
    assert sorted(f["product_id"] for f in favs) == sorted([p0["id"], p2["id"]])
    # the guest is gone, and with it its cart
    assert server.get(f"{API}/me/cart", headers=g).status_code == 401


def test_export_and_delete_me(server, products, db_factory):
    h, user = new_user_headers(server, "gdpr")
    other, _ = new_user_headers(server, "gdpr-other")
    line = add(server, h, products[0]["id"], 2, 201).json()
    fav = mk(server, h, "/me/favorites", {"product_id": products[1]["id"]})
    addr = mk(server, h, "/me/addresses", ADDR)
    rev = mk(server, h, f"/products/{products[0]['id']}/reviews", {"rating": 4, "body": "iyi"})
    their = mk(server, other, f"/products/{products[1]['id']}/reviews", {"rating": 3})
    assert server.post(f"{API}/reviews/{their['id']}/reactions", json={"type": "like"}, headers=h).status_code == 201
    exp = server.get(f"{API}/me/export", headers=h)
    assert exp.status_code == 200, exp.text
    shop = exp.json()["shop"]
    assert [x["id"] for x in shop["cart"]] == [line["id"]] and shop["cart"][0]["quantity"] == 2
    assert [x["id"] for x in shop["favorites"]] == [fav["id"]]
    assert [x["id"] for x in shop["addresses"]] == [addr["id"]] and shop["addresses"][0]["full_name"] == ADDR["full_name"]
    assert [x["id"] for x in shop["reviews"]] == [rev["id"]]
    assert [x["review_id"] for x in shop["review_reactions"]] == [their["id"]]
    assert server.delete(f"{API}/me", headers=h).status_code == 204
    for table in ("catalog_cart_items", "catalog_favorites", "catalog_addresses", "catalog_reviews",
                  "catalog_review_reactions"):
        rows = db_factory.query(server.db_url, f"SELECT count(*) FROM {table} WHERE user_id = ?", (user["id"],))
        assert rows[0][0] == 0, table
    assert server.get(f"{API}/reviews/{their['id']}").json()["likes"] == 0
    assert_problem(server.get(f"{API}/reviews/{rev['id']}"), 404)
