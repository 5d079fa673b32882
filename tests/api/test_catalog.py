"""Catalog (API.md §9): seeded categories with tr/en/pl names, products (public read with
filters, sort and q; admin-only writes), reviews (one per user per product) with reactions."""
import pytest

from catalog_util import (API, guest, ids, mk, moderator_headers, new_category, new_product, uniq)
from conftest import assert_problem, error_fields, new_user_headers

SEEDED = [
    ("sut-urunleri", "SÜT ÜRÜNLERİ", "Dairy Products", "Produkty mleczne"),
    ("bakliyat", "BAKLİYAT", "Legumes", "Rośliny strączkowe"),
    ("et-urunleri", "ET ÜRÜNLERİ", "Meat Products", "Produkty mięsne"),
    ("salca-ve-ezmeler", "SALÇA VE EZMELER", "Pastes and Spreads", "Pasty i smarowidła"),
    ("unlu-mamuller", "UNLU MAMÜLLER", "Bakery Products", "Wyroby piekarnicze"),
    ("zeytinler", "ZEYTİNLER", "Olives", "Oliwki"),
    ("diger-urunler", "DİĞER ÜRÜNLER", "Other Products", "Inne produkty"),
]


# ---- categories ----

@pytest.mark.parametrize("lang,col", [("tr", 1), ("en", 2), ("pl", 3), (None, 2), ("de", 2),
                                      ("de;q=0.9, pl;q=0.8", 3), ("tr-TR,tr;q=0.9,en;q=0.5", 1)])
def test_seeded_categories_by_language(server, lang, col):
    h = {"Accept-Language": lang} if lang else {}
    slugs = ",".join(s[0] for s in SEEDED)
    r = server.get(f"{API}/categories?sort=position:asc&slug[in]={slugs}", headers=h)
    assert r.status_code == 200, r.text
    got = [(c["slug"], c["name"]) for c in r.json()["data"] if c["slug"] in {s[0] for s in SEEDED}]
    assert got == [(s[0], s[col]) for s in SEEDED]


def test_category_get_language_and_etag(server):
    cats = {c["slug"]: c for c in server.get(f"{API}/categories?limit=100").json()["data"]}
    cid = cats["zeytinler"]["id"]
    tr = server.get(f"{API}/categories/{cid}", headers={"Accept-Language": "tr"})
    pl = server.get(f"{API}/categories/{cid}", headers={"Accept-Language": "pl"})
    assert tr.json()["name"] == "ZEYTİNLER" and pl.json()["name"] == "Oliwki"
    assert tr.headers["ETag"] != pl.headers["ETag"]
    assert server.get(f"{API}/categories?slug=bakliyat").json()["data"][0]["name"] == "Legumes"


def test_category_writes_admin_only(server, admin_headers):
    user, _ = new_user_headers(server)
    mod = moderator_headers(server, admin_headers)
    body = {"slug": uniq("c"), "name": {"tr": "Yeni", "en": "New"}}
    assert_problem(server.post(f"{API}/categories", json=body), 401)
    assert_problem(server.post(f"{API}/categories", json=body, headers=user), 403, "FORBIDDEN")
    assert_problem(server.post(f"{API}/categories", json=body, headers=mod), 403, "FORBIDDEN")
    cat = mk(server, admin_headers, "/categories", body)
    assert cat["name"] == "New"
    assert server.get(f"{API}/categories/{cat['id']}", headers={"Accept-Language": "pl"}).json()["name"] == "New"
    assert_problem(server.patch(f"{API}/categories/{cat['id']}", json={"position": 9}, headers=user), 403)
    assert_problem(server.delete(f"{API}/categories/{cat['id']}", headers=user), 403)
    # validation: slug, language keys, duplicate slug (a plain-string name is the request's language)
    for bad, field in [({"slug": "Not A Slug", "name": {"en": "x"}}, "slug"),
                       ({"slug": uniq("c"), "name": {"de": "x"}}, "name"),
                       ({"slug": uniq("c"), "name": {}}, "name"),
                       ({"slug": uniq("c"), "name": ["plain"]}, "name")]:
        b = assert_problem(server.post(f"{API}/categories", json=bad, headers=admin_headers), 422)
        assert field in error_fields(b), b
    assert_problem(server.post(f"{API}/categories", json=body, headers=admin_headers), 409)
    # a category with products cannot go; without them it can
    new_product(server, admin_headers, cat["slug"])
    assert_problem(server.delete(f"{API}/categories/{cat['id']}", headers=admin_headers), 409)
    empty = new_category(server, admin_headers)
    assert server.delete(f"{API}/categories/{empty['id']}", headers=admin_headers).status_code == 204


# ---- products ----

@pytest.fixture
def shelf(server, admin_headers):
    """A fresh category with five products (created oldest first)."""
    cat = new_category(server, admin_headers)
    word = uniq("kavanoz").replace("-", "")
    specs = [
        ({"tr": f"Çiçek balı {word}", "en": "Flower honey", "pl": "Miód kwiatowy"}, 34990, 5),
        ({"tr": "Siyah zeytin", "en": "Black olives", "pl": "Czarne oliwki"}, 12990, 0),
        ({"tr": "Tereyağı", "en": "Butter", "pl": "Masło"}, 27990, 12),
        ({"tr": "Nohut", "en": "Chickpeas", "pl": "Ciecierzyca"}, 5990, 0),
        ({"tr": "Sucuk", "en": "Turkish sausage", "pl": "Kiełbasa"}, 32990, 3),
    ]
    prods = [new_product(server, admin_headers, cat["slug"], price=p, stock=s, name=n,
                         description={"en": f"desc {i}", "pl": f"opis {word}pl" if i == 4 else "opis"})
             for i, (n, p, s) in enumerate(specs)]
    return cat, prods, word


def test_product_shape_and_public_read(server, shelf):
    cat, prods, _ = shelf
    p = server.get(f"{API}/products/{prods[0]['id']}")
    assert p.status_code == 200 and p.headers["ETag"]
    body = p.json()
    assert set(body) >= {"id", "category", "name", "description", "price", "currency", "stock", "created_at",
                         "updated_at"}
    assert body["category"] == cat["slug"] and body["currency"] == "TRY" and body["price"] == 34990
    assert body["name"] == "Flower honey"
    r = server.get(f"{API}/products?category={cat['slug']}")
    assert ids(r) == [x["id"] for x in reversed(prods)]  # newest first
    assert r.json()["meta"] == {"total": 5, "page": 1, "limit": 20, "pages": 1}


@pytest.mark.parametrize("lang,expect", [("tr", "Tereyağı"), ("en", "Butter"), ("pl", "Masło"), (None, "Butter")])
def test_product_names_by_language(server, shelf, lang, expect):
    cat, prods, _ = shelf
    h = {"Accept-Language": lang} if lang else {}
    assert server.get(f"{API}/products/{prods[2]['id']}", headers=h).json()["name"] == expect
    names = [p["name"] for p in server.get(f"{API}/products?category={cat['slug']}", headers=h).json()["data"]]
    assert expect in names


def test_product_filters_and_sort(server, shelf):
    cat, prods, _ = shelf
    base = f"{API}/products?category={cat['slug']}"
    by_id = {p["id"]: p for p in prods}

    def q(extra):
        return ids(server.get(base + extra))

    assert set(q("&price[gte]=12990&price[lte]=32990")) == {prods[1]["id"], prods[2]["id"], prods[4]["id"]}
    assert set(q("&price[lt]=12990")) == {prods[3]["id"]}
    assert set(q("&stock=0")) == {prods[1]["id"], prods[3]["id"]}
    assert set(q("&stock[gt]=0")) == {prods[0]["id"], prods[2]["id"], prods[4]["id"]}
    assert set(q("&stock[gte]=5&price[lte]=30000")) == {prods[2]["id"]}
    assert q("&sort=price:asc") == sorted(by_id, key=lambda i: by_id[i]["price"])
    assert q("&sort=price:desc") == sorted(by_id, key=lambda i: -by_id[i]["price"])
    assert q("&sort=stock:desc,price:asc")[:2] == [prods[2]["id"], prods[0]["id"]]
    assert set(q("&filter=" + "stock > 0 %26%26 price < 30000")) == {prods[2]["id"]}
    two = server.get(base + "&limit=2&page=3&sort=price:asc")
    assert two.json()["meta"]["pages"] == 3 and ids(two) == [prods[0]["id"]]
    assert ids(server.get(f"{API}/products?category[in]={cat['slug']},nope&price=5990")) == [prods[3]["id"]]
    for bad in ["&colour=red", "&name=Butter", "&sort=name", "&sort=colour:asc", "&price[gte]=cheap",
                "&stock[between]=1"]:
        assert_problem(server.get(base + bad), 422)
    assert_problem(server.get(base + "&limit=101"), 422)


def test_product_search_q(server, shelf):
    cat, prods, word = shelf
    # a word of the Turkish name, found whatever the request language
    for lang in ("tr", "en", "pl"):
        r = server.get(f"{API}/products?q={word}", headers={"Accept-Language": lang})
        assert ids(r) == [prods[0]["id"]]
    assert ids(server.get(f"{API}/products?q={word}pl")) == [prods[4]["id"]]  # the Polish description
    assert ids(server.get(f"{API}/products?q=Tereyağı&category={cat['slug']}")) == [prods[2]["id"]]
    assert ids(server.get(f"{API}/products?q=butter&category={cat['slug']}")) == [prods[2]["id"]]
    assert ids(server.get(f"{API}/products?q=kiełbasa&category={cat['slug']}")) == [prods[4]["id"]]
    # JSON keys of the stored names are not words of the index
    assert ids(server.get(f"{API}/products?q=pl&category={cat['slug']}")) == []
    for hostile in ["' OR 1=1 --", '"', "*", "NEAR(a b)", "x\") OR (\"1", "%", "\\"]:
        r = server.get(f"{API}/products", params={"q": hostile, "category": cat["slug"]})
        assert r.status_code == 200 and r.json()["data"] == [], (hostile, r.text)


def test_product_writes_admin_only(server, admin_headers, shelf):
    cat, prods, _ = shelf
    user, _ = new_user_headers(server)
    mod = moderator_headers(server, admin_headers)
    body = {"category": cat["slug"], "price": 100, "name": {"en": "x"}}
    pid = prods[0]["id"]
    assert_problem(server.post(f"{API}/products", json=body), 401)
    for h in (user, mod):
        assert_problem(server.post(f"{API}/products", json=body, headers=h), 403, "FORBIDDEN")
        assert_problem(server.patch(f"{API}/products/{pid}", json={"price": 1}, headers=h), 403)
        assert_problem(server.delete(f"{API}/products/{pid}", headers=h), 403)
    assert server.get(f"{API}/products/{pid}").json()["price"] == 34990
    # admin: validation
    for bad, field in [({**body, "category": "no-such-category"}, "category"),
                       ({**body, "price": -1}, "price"),
                       ({**body, "stock": -5}, "stock"),
                       ({**body, "currency": "try"}, "currency"),
                       ({**body, "id": "x"}, "id"),
                       ({**body, "colour": "red"}, "colour"),
                       ({"category": cat["slug"], "price": 1}, "name")]:
        b = assert_problem(server.post(f"{API}/products", json=bad, headers=admin_headers), 422)
        assert field in error_fields(b), (bad, b)
    # admin: update with If-Match, then soft delete
    tag = server.get(f"{API}/products/{pid}").headers["ETag"]
    r = server.patch(f"{API}/products/{pid}", json={"price": 35990, "stock": 4}, headers={**admin_headers,
                                                                                        "If-Match": tag})
    assert r.status_code == 200 and r.json()["price"] == 35990
    assert_problem(server.patch(f"{API}/products/{pid}", json={"price": 1}, headers={**admin_headers,
                                                                                    "If-Match": tag}), 412)
    assert server.delete(f"{API}/products/{pid}", headers=admin_headers).status_code == 204
    assert_problem(server.get(f"{API}/products/{pid}"), 404)
    assert pid not in ids(server.get(f"{API}/products?category={cat['slug']}"))


# ---- reviews ----

@pytest.fixture
def product(server, admin_headers):
    cat = new_category(server, admin_headers)
    return new_product(server, admin_headers, cat["slug"], price=4990)


def test_reviews_one_per_user_per_product(server, admin_headers, product):
    a, ua = new_user_headers(server, "rev-a")
    b, _ = new_user_headers(server, "rev-b")
    url = f"{API}/products/{product['id']}/reviews"
    r = server.post(url, json={"rating": 5, "title": "Harika", "body": "Çok lezzetli"}, headers=a)
    assert r.status_code == 201, r.text
    rev = r.json()
    assert rev["product_id"] == product["id"] and rev["user_id"] == ua["id"]
    assert rev["likes"] == 0 and rev["dislikes"] == 0
    assert r.headers["Location"] == f"{API}/reviews/{rev['id']}"
    assert_problem(server.post(url, json={"rating": 1}, headers=a), 409, "CONFLICT")
    rb = mk(server, b, f"/products/{product['id']}/reviews", {"rating": 2})
    # public list, newest first; filters and sort
    assert ids(server.get(url)) == [rb["id"], rev["id"]]
    assert ids(server.get(url + "?rating[gte]=4")) == [rev["id"]]
    assert ids(server.get(url + "?sort=rating:asc")) == [rb["id"], rev["id"]]
    assert ids(server.get(f"{API}/reviews?product_id={product['id']}&user_id={ua['id']}")) == [rev["id"]]
    assert server.get(f"{API}/reviews/{rev['id']}").status_code == 200
    # the author edits; another user may see but not change or delete it
    assert_problem(server.patch(f"{API}/reviews/{rev['id']}", json={"rating": 1}, headers=b), 403)
    assert_problem(server.delete(f"{API}/reviews/{rev['id']}", headers=b), 403)
    assert server.patch(f"{API}/reviews/{rev['id']}", json={"rating": 4}, headers=a).json()["rating"] == 4
    for bad in [{"rating": 4, "likes": 100}, {"product_id": product["id"]}, {"user_id": "x"}]:
        assert_problem(server.patch(f"{API}/reviews/{rev['id']}", json=bad, headers=a), 422)
    # validation and missing products
    for bad in [{"rating": 0}, {"rating": 6}, {}, {"rating": 3, "product_id": product["id"]}]:
        assert_problem(server.post(url, json=bad, headers=b), 422)
    assert_problem(server.post(f"{API}/products/01900000-0000-7000-8000-000000000000/reviews",
                               json={"rating": 3}, headers=a), 404)
    assert_problem(server.get(f"{API}/products/nope/reviews"), 404)
    g, _ = guest(server)
    assert_problem(server.post(url, json={"rating": 3}, headers=g), 403)
    assert_problem(server.post(url, json={"rating": 3}), 401)
    # staff may remove any review; then its author may write a new one
    assert server.delete(f"{API}/reviews/{rb['id']}", headers=admin_headers).status_code == 204
    mk(server, b, f"/products/{product['id']}/reviews", {"rating": 3})


def test_review_reactions(server, product):
    a, _ = new_user_headers(server, "rx-a")
    b, _ = new_user_headers(server, "rx-b")
    c, _ = new_user_headers(server, "rx-c")
    rev = mk(server, a, f"/products/{product['id']}/reviews", {"rating": 5})
    url = f"{API}/reviews/{rev['id']}/reactions"
    r = server.post(url, json={"type": "like"}, headers=b)
    assert r.status_code == 201 and r.json() == {"review_id": rev["id"], "type": "like", "likes": 1, "dislikes": 0}
    r = server.post(url, json={"type": "like"}, headers=b)
    assert r.status_code == 200 and (r.json()["likes"], r.json()["dislikes"]) == (1, 0)
    r = server.post(url, json={"type": "dislike"}, headers=b)
    assert r.status_code == 200 and (r.json()["likes"], r.json()["dislikes"]) == (0, 1)
    assert server.post(url, json={"type": "like"}, headers=c).status_code == 201
    got = server.get(f"{API}/reviews/{rev['id']}").json()
    assert (got["likes"], got["dislikes"]) == (1, 1)
    assert ids(server.get(f"{API}/products/{product['id']}/reviews?sort=likes:desc")) == [rev["id"]]
    assert_problem(server.post(url, json={"type": "like"}, headers=a), 403)
    assert_problem(server.post(url, json={"type": "love"}, headers=b), 422)
    assert_problem(server.post(url, json={"type": "like"}), 401)
    assert_problem(server.post(f"{API}/reviews/01900000-0000-7000-8000-000000000000/reactions",
                               json={"type": "like"}, headers=b), 404)
    assert server.delete(url, headers=b).status_code == 204
    assert_problem(server.delete(url, headers=b), 404)
    got = server.get(f"{API}/reviews/{rev['id']}").json()
    assert (got["likes"], got["dislikes"]) == (1, 0)


def test_concurrent_reactions_keep_counters_exact(server, product):
    from concurrent.futures import ThreadPoolExecutor
    import requests
    a, _ = new_user_headers(server, "rxc")
    rev = mk(server, a, f"/products/{product['id']}/reviews", {"rating": 4})
    users = [new_user_headers(server, "rxc")[0] for _ in range(12)]
    url = server.url(f"{API}/reviews/{rev['id']}/reactions")

    def phase(typ, calls):
        with ThreadPoolExecutor(16) as ex:
            codes = list(ex.map(lambda h: requests.post(url, json={"type": typ}, headers=h, timeout=10).status_code,
                                calls))
        assert set(codes) <= {200, 201}, codes
        got = server.get(f"{API}/reviews/{rev['id']}").json()
        return got["likes"], got["dislikes"]

    assert phase("like", users * 2) == (12, 0)      # each user twice, at once: one like each
    assert phase("dislike", users * 2) == (0, 12)   # everyone switches


def test_openapi_lists_catalog_routes(server):
    doc = server.get(f"{API}/openapi.json").json()
    for path in ["/api/v1/categories", "/api/v1/products", "/api/v1/products/{id}", "/api/v1/products/{id}/reviews",
                 "/api/v1/reviews/{id}/reactions", "/api/v1/me/cart", "/api/v1/me/cart/{id}", "/api/v1/me/favorites",
                 "/api/v1/me/addresses"]:
        assert path in doc["paths"], path
    assert "put" in doc["paths"]["/api/v1/me/cart/{id}"]


def test_seed_loads_deterministic_products(make_server, run_cli, db_factory):
    s = make_server(_start=False)
    for _ in range(2):  # idempotent: the second run adds nothing
        p = run_cli("seed", db_url=s.db_url)
        assert p.returncode == 0, p.stderr_text
    assert "280 demo products" in p.stdout_text and "(0 new)" in p.stdout_text
    s.start()
    r = s.get(f"{API}/products?limit=1")
    assert r.json()["meta"]["total"] == 280
    for slug, *_ in SEEDED:
        assert s.get(f"{API}/products?category={slug}&limit=1").json()["meta"]["total"] == 40
    one = s.get(f"{API}/products?sku=YG-06-001", headers={"Accept-Language": "tr"}).json()["data"][0]
    assert (one["category"], one["name"], one["price"], one["currency"]) == \
        ("zeytinler", "Klasik Siyah Zeytin 250 g", 7690, "TRY")
    assert s.get(f"{API}/products/{one['id']}", headers={"Accept-Language": "pl"}).json()["name"] == \
        "Czarne oliwki klasyczny 250 g"
    assert len(s.get(f"{API}/products?q=zeytin&limit=100").json()["data"]) > 0


# ---- rating average and count (issue 11 item 5) ----

def rating_of(server, pid):
    p = server.get(f"{API}/products/{pid}").json()
    return p["rating"], p["rating_count"]


def test_rating_follows_reviews(server, admin_headers, product):
    pid = product["id"]
    assert rating_of(server, pid) == (None, 0) and product["rating"] is None and product["rating_count"] == 0
    a, _ = new_user_headers(server, "rate")
    b, _ = new_user_headers(server, "rate")
    c, _ = new_user_headers(server, "rate")
    ra = mk(server, a, f"/products/{pid}/reviews", {"rating": 5})
    assert rating_of(server, pid) == (5, 1)
    rb = mk(server, b, f"/products/{pid}/reviews", {"rating": 4})
    mk(server, c, f"/products/{pid}/reviews", {"rating": 4})
    assert rating_of(server, pid) == (4.33, 3)
    assert server.patch(f"{API}/reviews/{rb['id']}", json={"rating": 1}, headers=b).status_code == 200
    assert rating_of(server, pid) == (3.33, 3)
    assert server.patch(f"{API}/reviews/{rb['id']}", json={"title": "same rating"}, headers=b).status_code == 200
    assert rating_of(server, pid) == (3.33, 3)
    assert server.delete(f"{API}/reviews/{ra['id']}", headers=a).status_code == 204
    assert rating_of(server, pid) == (2.5, 2)
    # a refused review (second one by the same user) changes nothing
    assert_problem(server.post(f"{API}/products/{pid}/reviews", json={"rating": 5}, headers=b), 409)
    assert rating_of(server, pid) == (2.5, 2)
    # the author's account goes away: their review with it, and the average follows
    assert server.delete(f"{API}/me", headers=c).status_code == 204
    assert rating_of(server, pid) == (1, 1)
    # clients cannot set them
    for bad in [{"rating": 5}, {"rating_count": 9}]:
        assert_problem(server.patch(f"{API}/products/{pid}", json=bad, headers=admin_headers), 422)


def test_concurrent_reviews_keep_rating_exact(server, product):
    from concurrent.futures import ThreadPoolExecutor
    import requests
    users = [new_user_headers(server, "rrace")[0] for _ in range(16)]
    url = server.url(f"{API}/products/{product['id']}/reviews")
    stars = [1 + i % 5 for i in range(16)]
    with ThreadPoolExecutor(16) as ex:
        rs = list(ex.map(lambda x: requests.post(url, json={"rating": x[1]}, headers=x[0], timeout=30),
                         zip(users, stars)))
    assert {r.status_code for r in rs} == {201}, [r.text for r in rs]
    assert rating_of(server, product["id"]) == (round(sum(stars) / 16, 2), 16)
    # everyone changes and half delete at once
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda x: requests.patch(server.url(f"{API}/reviews/{x['id']}"), json={"rating": 5},
                                             headers=x["h"], timeout=30),
                    [{"id": r.json()["id"], "h": h} for r, h in zip(rs, users)]))
        codes = list(ex.map(lambda x: requests.delete(server.url(f"{API}/reviews/{x[0].json()['id']}"),
                                                      headers=x[1], timeout=30).status_code,
                            list(zip(rs, users))[:8]))
    assert codes == [204] * 8
    assert rating_of(server, product["id"]) == (5, 8)


def test_sort_by_rating(server, admin_headers):
    cat = new_category(server, admin_headers)
    ps = [new_product(server, admin_headers, cat["slug"]) for _ in range(3)]
    u, _ = new_user_headers(server, "sorter")
    v, _ = new_user_headers(server, "sorter")
    mk(server, u, f"/products/{ps[0]['id']}/reviews", {"rating": 2})
    mk(server, u, f"/products/{ps[2]['id']}/reviews", {"rating": 5})
    mk(server, v, f"/products/{ps[2]['id']}/reviews", {"rating": 4})
    q = f"{API}/products?category={cat['slug']}"
    # unrated last when descending, first when ascending — on both engines
    assert ids(server.get(q + "&sort=rating:desc")) == [ps[2]["id"], ps[0]["id"], ps[1]["id"]]
    assert ids(server.get(q + "&sort=rating")) == [ps[1]["id"], ps[0]["id"], ps[2]["id"]]
    assert ids(server.get(q + "&rating_count[gte]=2")) == [ps[2]["id"]]
    assert ids(server.get(q + "&sort=rating_count:desc,price")) [0] == ps[2]["id"]
    assert_problem(server.get(q + "&rating[gt]=3"), 422)  # rating sorts; filter on rating_count


def test_products_in_search(server, admin_headers):
    cat = new_category(server, admin_headers)
    word = uniq("pekmez").replace("-", "")
    p = new_product(server, admin_headers, cat["slug"],
                    name={"tr": f"Üzüm {word}", "en": f"Grape {word}", "pl": f"Winogrono {word}"})
    for lang, title in [("tr", f"Üzüm {word}"), ("en", f"Grape {word}"), ("pl", f"Winogrono {word}")]:
        r = server.get(f"{API}/search?q={word}", headers={"Accept-Language": lang})
        assert r.status_code == 200, r.text
        hits = [h for h in r.json()["data"] if h["type"] == "products"]
        assert [(h["id"], h["title"]) for h in hits] == [(p["id"], title)]
    assert [h["id"] for h in server.get(f"{API}/search?q={word}&types=products").json()["data"]] == [p["id"]]
    # a deleted product is not found any more
    assert server.delete(f"{API}/products/{p['id']}", headers=admin_headers).status_code == 204
    assert server.get(f"{API}/search?q={word}&types=products").json()["data"] == []


# ---- the per-category total the catalog keeps (migration 0036, issue 10 item 3) ----

def totals(server, qs):
    """meta.total of GET /products?<qs> and of the same list with a filter that matches every
    product (price >= 0), which makes the server count the rows instead of reading its kept count."""
    kept = server.get(f"{API}/products?{qs}&limit=1")
    counted = server.get(f"{API}/products?{qs}&limit=1&price[gte]=0")
    assert kept.status_code == 200 and counted.status_code == 200, (kept.text, counted.text)
    return kept.json()["meta"]["total"], counted.json()["meta"]["total"]


def test_kept_category_totals_follow_every_write(server, admin_headers, db_factory):
    a, b = new_category(server, admin_headers), new_category(server, admin_headers)
    pa = [new_product(server, admin_headers, a["slug"]) for _ in range(3)]
    [new_product(server, admin_headers, b["slug"]) for _ in range(2)]
    assert totals(server, f"category={a['slug']}") == (3, 3)
    assert totals(server, f"category={b['slug']}") == (2, 2)
    # soft delete, move to another category, rename the category's slug (ON UPDATE CASCADE)
    assert server.delete(f"{API}/products/{pa[0]['id']}", headers=admin_headers).status_code == 204
    assert server.patch(f"{API}/products/{pa[1]['id']}", json={"category": b["slug"]},
                        headers=admin_headers).status_code == 200
    assert totals(server, f"category={a['slug']}") == (1, 1)
    assert totals(server, f"category={b['slug']}") == (3, 3)
    renamed = uniq("renamed")
    assert server.patch(f"{API}/categories/{b['id']}", json={"slug": renamed},
                        headers=admin_headers).status_code == 200
    assert totals(server, f"category={renamed}") == (3, 3)
    assert totals(server, f"category={b['slug']}") == (0, 0)
    assert totals(server, "category=no-such-category") == (0, 0)
    # every category at once, and a page past the last one (the total read on its own)
    k, c = totals(server, "sort=price")
    assert k == c and k >= 4
    past = server.get(f"{API}/products?category={renamed}&page=9&limit=1").json()
    assert past["data"] == [] and past["meta"]["total"] == 3
    # the kept count is what answers: tampering with it shows, the counted form does not move
    db_factory.query(server.db_url, "UPDATE catalog_product_counts SET n = n + 1000 WHERE category = ?", (renamed,))
    try:
        assert totals(server, f"category={renamed}") == (1003, 3)
        assert totals(server, f"filter=category='{renamed}'")[0] == 3  # a filter= expression counts
        assert totals(server, f"category={renamed}&q=Product")[0] == 3   # so does a search
    finally:
        db_factory.query(server.db_url, "UPDATE catalog_product_counts SET n = n - 1000 WHERE category = ?",
                         (renamed,))
