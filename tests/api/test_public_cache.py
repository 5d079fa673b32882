"""The public read cache (issue 14 item 1): anonymous GET /categories, /products and
/products/{id} answered from Redis, shared by two instances on one database, dropped by a write
on either (a version key bumped after the commit), per language, with the ETag kept (304 from
the cache); signed-in callers never get a cached answer; a stale fill under an old version is
never served; a Redis outage skips the cache without an error."""
import pytest

from catalog_util import API, mk, new_category, new_product
from conftest import login_headers, new_user_headers, wait_for
from redis_util import metric, redis_server, serve_pair  # noqa: F401 (fixture)

ADMIN_EMAIL = "pc-admin@example.com"
ADMIN_PASSWORD = "public cache admin password"


@pytest.fixture(scope="module")
def pair(db_factory, redis_server):
    env = {"REDIS_URL": redis_server.url, "TEMEL_PUBLIC_CACHE_TTL_S": "600", "TEMEL_JWT_SECRET": "p" * 48,
           "TEMEL_ADMIN_EMAIL": ADMIN_EMAIL, "TEMEL_ADMIN_PASSWORD": ADMIN_PASSWORD,
           **{f"TEMEL_RATE_LIMIT_{c}": "1000000/60" for c in ("READ", "WRITE", "AUTH")}}
    for a, b in serve_pair(db_factory, env):
        yield a, b, login_headers(a, ADMIN_EMAIL, ADMIN_PASSWORD)


def tamper(db_factory, s, pid, price):
    """Change a row behind the server's back: only an answer from the cache still shows the old one."""
    db_factory.query(s.db_url, "UPDATE catalog_products SET price = ? WHERE id = ?", (price, pid))


def test_write_on_a_is_read_on_b_at_once(pair, db_factory):
    a, b, adm = pair
    cat = new_category(a, adm)
    p = new_product(a, adm, cat["slug"], price=1000)
    path = f"{API}/products/{p['id']}"
    assert b.get(path).json()["price"] == 1000  # a miss: filled
    tamper(db_factory, b, p["id"], 1111)
    assert b.get(path).json()["price"] == 1000  # from the cache
    assert a.get(path).json()["price"] == 1000  # the other instance shares it
    r = a.patch(path, json={"price": 2000}, headers=adm)
    assert r.status_code == 200, r.text
    assert b.get(path).json()["price"] == 2000  # at once, on the other instance
    assert a.get(path).json()["price"] == 2000
    # the anonymous list page and the categories too
    lst = f"{API}/products?category={cat['slug']}"
    assert [x["price"] for x in b.get(lst).json()["data"]] == [2000]
    tamper(db_factory, b, p["id"], 2222)
    assert [x["price"] for x in b.get(lst).json()["data"]] == [2000]  # cached
    q = new_product(a, adm, cat["slug"], price=3000)
    assert sorted(x["price"] for x in b.get(lst).json()["data"]) == [2222, 3000]
    cats = f"{API}/categories?slug={cat['slug']}"
    assert b.get(cats).json()["data"][0]["name"] == cat["name"]
    r = a.patch(f"{API}/categories/{cat['id']}", json={"name": {"en": "Renamed", "tr": "Yeni", "pl": "Nowa"}},
                headers=adm)
    assert r.status_code == 200, r.text
    assert b.get(cats).json()["data"][0]["name"] == "Renamed"
    # a delete, and a review moving the product's rating (another resource's write)
    assert a.delete(f"{API}/products/{q['id']}", headers=adm).status_code == 204
    assert b.get(f"{API}/products/{q['id']}").status_code == 404
    assert b.get(path).json()["rating_count"] == 0
    h, _ = new_user_headers(a, "pcr")
    r = a.post(f"{API}/products/{p['id']}/reviews", json={"rating": 4}, headers=h)
    assert r.status_code == 201, r.text
    assert b.get(path).json()["rating_count"] == 1
    for s in (a, b):
        assert metric(s, "temel_redis_cache_skipped_total") == 0


def test_signed_in_callers_are_never_served_from_the_cache(pair, db_factory):
    a, b, adm = pair
    p = new_product(a, adm, new_category(a, adm)["slug"], price=500)
    path = f"{API}/products/{p['id']}"
    h, _ = new_user_headers(a, "pcu")
    assert b.get(path).json()["price"] == 500
    tamper(db_factory, b, p["id"], 600)
    assert b.get(path).json()["price"] == 500  # anonymous: the cache
    assert b.get(path, headers=h).json()["price"] == 600  # a user: the database
    assert b.get(path, headers=adm).json()["price"] == 600


def test_language_and_etag(pair, db_factory):
    a, b, adm = pair
    p = new_product(a, adm, new_category(a, adm)["slug"],
                    name={"tr": "Çay bardağı", "en": "Tea glass", "pl": "Szklanka"})
    path = f"{API}/products/{p['id']}"
    tr = b.get(path, headers={"Accept-Language": "tr"})
    en = b.get(path, headers={"Accept-Language": "en"})
    assert tr.json()["name"] == "Çay bardağı" and en.json()["name"] == "Tea glass"
    assert tr.headers["ETag"] != en.headers["ETag"]
    tamper(db_factory, b, p["id"], 7)
    for lang, name in (("tr", "Çay bardağı"), ("en", "Tea glass"), ("pl", "Szklanka")):
        r = a.get(path, headers={"Accept-Language": lang})  # the third one is a miss, then kept
        assert r.json()["name"] == name
    hit = b.get(path, headers={"Accept-Language": "tr"})
    assert hit.json()["price"] == 1000 and hit.headers["ETag"] == tr.headers["ETag"]  # cached, same ETag
    nm = b.get(path, headers={"Accept-Language": "tr", "If-None-Match": tr.headers["ETag"]})
    assert nm.status_code == 304 and nm.headers["ETag"] == tr.headers["ETag"] and not nm.content
    assert a.patch(path, json={"stock": 3}, headers=adm).status_code == 200
    fresh = b.get(path, headers={"Accept-Language": "tr", "If-None-Match": tr.headers["ETag"]})
    assert fresh.status_code == 200 and fresh.json()["stock"] == 3 and fresh.headers["ETag"] != tr.headers["ETag"]


def test_a_stale_fill_under_the_old_version_is_never_served(pair, redis_server):
    """A reader that read the version and the row just before a write commits stores the old row
    under the old version after the bump: nobody reads that version any more."""
    a, b, adm = pair
    p = new_product(a, adm, new_category(a, adm)["slug"], price=100)
    path = f"{API}/products/{p['id']}"
    assert b.get(path).json()["price"] == 100
    old = redis_server.cmd("GET", "temel:pc:v:products") or "0"
    assert a.patch(path, json={"price": 200}, headers=adm).status_code == 200
    assert int(redis_server.cmd("GET", "temel:pc:v:products")) > int(old)
    stale = b.get(path, headers={"Accept-Language": "en"})
    # the late reader's fill lands now, under the version it read
    body = stale.text.replace('"price":200', '"price":100')
    redis_server.cmd("SET", f"temel:pc:products:{old}:en:{path}", stale.headers["ETag"] + "\n" + body)
    assert b.get(path).json()["price"] == 200
    assert a.get(path).json()["price"] == 200


def test_outage_skips_the_cache_without_an_error(pair, db_factory, redis_server):
    a, b, adm = pair
    p = new_product(a, adm, new_category(a, adm)["slug"], price=10)
    path = f"{API}/products/{p['id']}"
    assert b.get(path).json()["price"] == 10
    redis_server.stop()
    try:
        tamper(db_factory, b, p["id"], 20)
        r = b.get(path)
        assert r.status_code == 200 and r.json()["price"] == 20  # the database, no error
        assert b.get(f"{API}/products").status_code == 200
        assert metric(b, "temel_redis_cache_skipped_total") >= 2
    finally:
        redis_server.start()
    wait_for(lambda: metric(b, "temel_redis_up") == 1, "a reconnect")


def test_an_order_taking_or_giving_back_stock_drops_the_product_page(pair):
    """Orders change products' stock with their own SQL, not the engine's writes: they bump the
    products' version themselves after the commit (orders.c), which this asserts on the other
    instance."""
    a, b, adm = pair
    p = new_product(a, adm, new_category(a, adm)["slug"], stock=5)
    path = f"{API}/products/{p['id']}"
    assert b.get(path).json()["stock"] == 5  # a miss: filled
    h, _ = new_user_headers(a, "pco")
    aid = mk(a, h, "/me/addresses", {"full_name": "Ada Yılmaz", "line1": "Atatürk Cd. 1", "city": "İstanbul"})["id"]
    assert a.post(f"{API}/me/cart", json={"product_id": p["id"], "quantity": 2}, headers=h).status_code in (200, 201)
    o = a.post(f"{API}/orders", json={"address_id": aid}, headers=h)
    assert o.status_code == 201, o.text
    assert b.get(path).json()["stock"] == 3
    assert a.post(f"{API}/orders/{o.json()['id']}/cancel", headers=h).status_code == 200
    assert b.get(path).json()["stock"] == 5
