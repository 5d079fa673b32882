"""Helpers for the catalog, cart and blog tests: fresh categories and products made by the
shared server's admin, so every test owns the rows it filters on."""
import uuid

from conftest import new_user_headers

API = "/api/v1"


def uniq(prefix="t"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def mk(server, h, path, body, status=201):
    r = server.post(API + path, json=body, headers=h)
    assert r.status_code == status, r.text
    return r.json()


def ids(r):
    assert r.status_code == 200, r.text
    return [x["id"] for x in r.json()["data"]]


def new_category(server, admin):
    slug = uniq("cat")
    return mk(server, admin, "/categories", {"slug": slug, "name": {"tr": f"Kategori {slug}", "en": f"Category {slug}",
                                                                     "pl": f"Kategoria {slug}"}})


def new_product(server, admin, category, price=1000, stock=10, **kw):
    body = {"category": category, "price": price, "stock": stock,
            "name": kw.pop("name", {"tr": "Ürün", "en": "Product", "pl": "Produkt"})}
    body.update(kw)
    return mk(server, admin, "/products", body)


def moderator_headers(server, admin):
    h, user = new_user_headers(server, "mod")
    r = server.patch(f"{API}/users/{user['id']}", json={"role": "moderator"}, headers=admin)
    assert r.status_code == 200, r.text
    return h


def guest(server):
    r = server.post(API + "/auth/guest")
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}, r.json()["access_token"]
