"""Orders (API.md §9, issue 11 item 1): the cart becomes an order with line snapshots and totals,
stock taken atomically (never oversold: many clients, and two instances on one PostgreSQL), the cart
emptied in the same transaction, cancel and expiry give stock back exactly once, the admin state
machine, status mail in the user's locale, audit entries, and bad input that changes nothing."""
import email
import email.policy
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from catalog_util import API, mk, new_category, new_product
from conftest import ENGINE, HTTP_TIMEOUT, Server, assert_problem, error_fields, new_user_headers, wait_for

MISSING = "01900000-0000-7000-8000-000000000000"
ADDRESS = {"full_name": "Ada Yılmaz", "line1": "Atatürk Cd. 1", "city": "İstanbul"}


def stock(server, pid):
    r = server.get(f"{API}/products/{pid}")
    assert r.status_code == 200, r.text
    return r.json()["stock"]


def cart(server, h):
    r = server.get(f"{API}/me/cart", headers=h)
    assert r.status_code == 200, r.text
    return [(i["product_id"], i["quantity"]) for i in r.json()["items"]]


def add(server, h, pid, q=1):
    r = server.post(f"{API}/me/cart", json={"product_id": pid, "quantity": q}, headers=h)
    assert r.status_code in (200, 201), r.text


def address(server, h):
    return mk(server, h, "/me/addresses", ADDRESS)["id"]


def order(server, h, address_id, key=None, lang=None):
    hdr = dict(h)
    if key:
        hdr["Idempotency-Key"] = key
    if lang:
        hdr["Accept-Language"] = lang
    return server.post(f"{API}/orders", json={"address_id": address_id}, headers=hdr)


@pytest.fixture
def shop(server, admin_headers):
    cat = new_category(server, admin_headers)
    p1 = new_product(server, admin_headers, cat["slug"], price=1250, stock=10,
                     name={"tr": "Beyaz Peynir", "en": "White Cheese", "pl": "Biały ser"})
    p2 = new_product(server, admin_headers, cat["slug"], price=4990, stock=3,
                     name={"tr": "Nohut", "en": "Chickpeas", "pl": "Ciecierzyca"})
    return cat, p1, p2


def test_order_snapshots_cart_and_takes_stock(server, shop):
    _, p1, p2 = shop
    h, user = new_user_headers(server, "order")
    aid = address(server, h)
    add(server, h, p1["id"], 4)
    add(server, h, p2["id"], 2)
    r = order(server, h, aid, lang="tr")
    assert r.status_code == 201, r.text
    o = r.json()
    assert r.headers["Location"] == f"/api/v1/orders/{o['id']}"
    assert o["status"] == "pending" and o["kind"] == "goods" and o["user_id"] == user["id"]
    assert o["currency"] == "TRY" and o["total"] == 4 * 1250 + 2 * 4990
    assert o["address"]["city"] == "İstanbul" and o["address"]["id"] == aid
    assert o["expires_at"] and o["paid_at"] is None
    lines = sorted(o["items"], key=lambda i: i["unit_price"])
    assert [(l["product_id"], l["name"], l["unit_price"], l["quantity"], l["currency"], l["line_total"])
            for l in lines] == [(p1["id"], "Beyaz Peynir", 1250, 4, "TRY", 5000),
                                (p2["id"], "Nohut", 4990, 2, "TRY", 9980)]
    # the cart is empty, the stock is taken
    assert cart(server, h) == []
    assert stock(server, p1["id"]) == 6 and stock(server, p2["id"]) == 1
    # the snapshot does not follow the catalog
    got = server.get(f"{API}/orders/{o['id']}", headers={**h, "Accept-Language": "en"})
    assert got.status_code == 200 and got.json()["items"] == o["items"]
    lst = server.get(f"{API}/orders", headers=h)
    assert lst.status_code == 200 and [x["id"] for x in lst.json()["data"]] == [o["id"]]
    assert lst.json()["meta"]["total"] == 1
    assert [x["id"] for x in server.get(f"{API}/orders?status=paid", headers=h).json()["data"]] == []
    # another user sees nothing of it
    other, _ = new_user_headers(server, "other")
    assert_problem(server.get(f"{API}/orders/{o['id']}", headers=other), 404)
    assert_problem(server.post(f"{API}/orders/{o['id']}/cancel", headers=other), 404)
    assert server.get(f"{API}/orders", headers=other).json()["data"] == []
    assert_problem(server.get(f"{API}/orders/not-a-uuid", headers=h), 404)
    assert_problem(server.get(f"{API}/orders/{MISSING}", headers=h), 404)


def test_idempotency_key_orders_once(server, shop):
    _, p1, _ = shop
    h, _ = new_user_headers(server, "idem")
    aid = address(server, h)
    add(server, h, p1["id"], 2)
    a = order(server, h, aid, key="order-key-1")
    b = order(server, h, aid, key="order-key-1")
    assert a.status_code == 201 and b.status_code == 201, (a.text, b.text)
    assert b.headers.get("Idempotent-Replayed") == "true" and b.json()["id"] == a.json()["id"]
    assert stock(server, p1["id"]) == 8
    assert len(server.get(f"{API}/orders", headers=h).json()["data"]) == 1
    # a new key with the cart now empty is a new attempt: 422, nothing changes
    assert_problem(order(server, h, aid, key="order-key-2"), 422, "VALIDATION_ERROR")
    assert stock(server, p1["id"]) == 8


def test_bad_input_changes_nothing(server, shop, admin_headers):
    cat, p1, _ = shop
    h, _ = new_user_headers(server, "bad")
    other, _ = new_user_headers(server, "bad2")
    aid = address(server, h)
    foreign = address(server, other)
    # empty cart
    assert_problem(order(server, h, aid), 422, "VALIDATION_ERROR")
    add(server, h, p1["id"], 3)
    for body in [{}, {"address_id": 5}, {"address_id": ""}, {"address_id": aid, "extra": 1}]:
        assert_problem(server.post(f"{API}/orders", json=body, headers=h), 422)
    for a in [foreign, MISSING, "nope"]:
        r = order(server, h, a)
        assert_problem(r, 422, "VALIDATION_ERROR")
        assert "address_id" in error_fields(r.json())
    # mixed currencies: one order is in one currency
    eur = new_product(server, admin_headers, cat["slug"], price=500, stock=5, currency="EUR")
    add(server, h, eur["id"], 1)
    assert_problem(order(server, h, aid), 422, "VALIDATION_ERROR")
    assert sorted(cart(server, h)) == sorted([(p1["id"], 3), (eur["id"], 1)])
    assert stock(server, p1["id"]) == 10 and stock(server, eur["id"]) == 5
    # a withdrawn product: 409, nothing changes
    r = server.delete(f"{API}/products/{eur['id']}", headers=admin_headers)
    assert r.status_code in (200, 204), r.text
    assert_problem(order(server, h, aid), 409, "CONFLICT")
    assert stock(server, p1["id"]) == 10 and len(cart(server, h)) == 2
    assert server.get(f"{API}/orders", headers=h).json()["data"] == []
    # unauthenticated
    assert_problem(server.post(f"{API}/orders", json={"address_id": aid}), 401)


def test_short_stock_is_409_naming_the_product(server, shop):
    _, p1, p2 = shop
    h, _ = new_user_headers(server, "short")
    aid = address(server, h)
    add(server, h, p1["id"], 2)
    add(server, h, p2["id"], 4)  # only 3 in stock
    r = order(server, h, aid, lang="en")
    assert_problem(r, 409, "CONFLICT")
    assert "Chickpeas" in r.json()["detail"] and p2["id"] in r.json()["detail"]
    assert p2["id"] in [e["message"] for e in r.json()["errors"] if e["field"] == "product_id"]
    # all or nothing: the first line's stock was not kept, the cart is intact
    assert stock(server, p1["id"]) == 10 and stock(server, p2["id"]) == 3
    assert sorted(cart(server, h)) == sorted([(p1["id"], 2), (p2["id"], 4)])


def test_order_lines_bound(server, admin_headers):
    """An order holds at most 100 lines: 100 order, 101 is 422 and changes nothing."""
    cat = new_category(server, admin_headers)
    prods = [new_product(server, admin_headers, cat["slug"], price=100, stock=5) for _ in range(101)]
    h, _ = new_user_headers(server, "bound")
    aid = address(server, h)
    for p in prods:
        add(server, h, p["id"], 1)
    r = order(server, h, aid)
    assert_problem(r, 422, "VALIDATION_ERROR")
    assert "100" in r.json()["detail"]
    assert len(cart(server, h)) == 101 and stock(server, prods[0]["id"]) == 5
    r = server.delete(f"{API}/me/cart/{server.get(f'{API}/me/cart', headers=h).json()['items'][0]['id']}",
                      headers=h)
    assert r.status_code == 204, r.text
    r = order(server, h, aid)
    assert r.status_code == 201, r.text
    assert len(r.json()["items"]) == 100 and r.json()["total"] == 100 * 100
    assert cart(server, h) == []


def test_cancel_gives_stock_back_once(server, shop, admin_headers):
    _, p1, _ = shop
    h, _ = new_user_headers(server, "cancel")
    aid = address(server, h)
    add(server, h, p1["id"], 4)
    o = order(server, h, aid).json()
    assert stock(server, p1["id"]) == 6
    url = f"{API}/orders/{o['id']}/cancel"
    # concurrent cancels: one wins, stock comes back once
    with ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(lambda _: requests.post(server.url(url), headers=h, timeout=HTTP_TIMEOUT).status_code,
                            range(8)))
    assert sorted(codes) == [200] + [409] * 7, codes
    got = server.get(f"{API}/orders/{o['id']}", headers=h).json()
    assert got["status"] == "cancelled" and got["cancel_reason"] == "customer" and got["expires_at"] is None
    assert stock(server, p1["id"]) == 10
    # nor can the admin move it on or cancel it again
    for s in ["cancelled", "paid", "pending"]:
        assert_problem(server.patch(f"{API}/orders/{o['id']}", json={"status": s}, headers=admin_headers), 409)
    assert stock(server, p1["id"]) == 10


def test_admin_state_machine_audit_and_mail(server, shop, admin_headers):
    _, p1, _ = shop
    h, user = new_user_headers(server, "machine")
    assert server.patch(f"{API}/me", json={"locale": "tr"}, headers=h).status_code == 200
    aid = address(server, h)
    add(server, h, p1["id"], 1)
    o = order(server, h, aid).json()
    url = f"{API}/orders/{o['id']}"
    # the customer may not move it; bad status values are 422
    assert_problem(server.patch(url, json={"status": "paid"}, headers=h), 403)
    assert_problem(server.patch(url, json={"status": "lost"}, headers=admin_headers), 422)
    assert_problem(server.patch(url, json={}, headers=admin_headers), 422)
    assert_problem(server.patch(f"{API}/orders/{MISSING}", json={"status": "paid"}, headers=admin_headers), 404)
    # not along an edge: 409, unchanged
    for s in ["shipped", "delivered", "refunded", "pending"]:
        assert_problem(server.patch(url, json={"status": s}, headers=admin_headers), 409, "CONFLICT")
    for s in ["paid", "shipped", "delivered"]:
        r = server.patch(url, json={"status": s}, headers=admin_headers)
        assert r.status_code == 200 and r.json()["status"] == s, r.text
    assert server.get(url, headers=h).json()["paid_at"]
    for s in ["cancelled", "refunded", "paid"]:
        assert_problem(server.patch(url, json={"status": s}, headers=admin_headers), 409)
    # the customer may not cancel a delivered order
    assert_problem(server.post(f"{url}/cancel", headers=h), 409)
    assert stock(server, p1["id"]) == 9
    # admin lists
    r = server.get(f"{API}/admin/orders?user_id={user['id']}", headers=admin_headers)
    assert r.status_code == 200 and [x["id"] for x in r.json()["data"]] == [o["id"]]
    r = server.get(f"{API}/admin/orders?user_id={user['id']}&status=pending", headers=admin_headers)
    assert r.json()["data"] == []
    assert_problem(server.get(f"{API}/admin/orders?status=lost", headers=admin_headers), 422)
    assert_problem(server.get(f"{API}/admin/orders?colour=red", headers=admin_headers), 422)
    assert_problem(server.get(f"{API}/admin/orders", headers=h), 403)
    # audited: pending→paid→shipped→delivered
    r = server.get(f"{API}/admin/audit-logs?target_id={o['id']}&limit=100", headers=admin_headers)
    assert r.status_code == 200, r.text
    changes = sorted((e["before"]["status"], e["after"]["status"]) for e in r.json()["data"]
                     if e["action"] == "order.status")
    assert changes == sorted([("pending", "paid"), ("paid", "shipped"), ("shipped", "delivered")])
    created = [e for e in r.json()["data"] if e["action"] == "order.create"]
    assert len(created) == 1 and created[0]["actor_id"] == user["id"]
    assert created[0]["after"] == {"status": "pending", "kind": "goods", "total": o["total"], "currency": "TRY"}
    # mailed in the user's locale (tr), one per change
    maildir = Path(server.dir) / "mail"

    def mails():
        if not maildir.is_dir():
            return []
        out = []
        for f in maildir.glob("*.eml"):
            m = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
            if m["To"] == user["email"] and o["id"] in str(m["Subject"]):
                out.append(m)
        return out if len(out) >= 4 else []

    got = wait_for(mails, "the order's four mails")
    subjects = sorted(str(m["Subject"]) for m in got)
    assert len(subjects) == 4  # received (at creation), paid, shipped, delivered
    assert any("alındı" in s for s in subjects)
    assert any("ödendi" in s for s in subjects) and any("kargoya verildi" in s for s in subjects)


def race(server, admin_headers, users, units, each=1):
    cat = new_category(server, admin_headers)
    p = new_product(server, admin_headers, cat["slug"], price=999, stock=units,
                    name={"tr": "Son Parça", "en": "Last Piece", "pl": "Ostatnia sztuka"})

    def client(i):
        # registration hashes a password (Argon2id): a long hang guard on a busy machine
        r = requests.post(server.url(f"{API}/auth/register"), timeout=120,
                          json={"email": f"racer-{p['id'][-12:]}-{i}@example.com", "name": "racer",
                                "password": "correct horse battery staple"})
        assert r.status_code == 201, r.text
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        aid = address(server, h)
        add(server, h, p["id"], each)
        return h, aid

    with ThreadPoolExecutor(4) as ex:
        return p, list(ex.map(client, range(users)))


def fire(urls, clients):
    """Every client posts its order at once (a barrier), to one of urls in turn."""
    barrier = threading.Barrier(len(clients))

    def one(i):
        h, aid = clients[i]
        barrier.wait()
        return requests.post(urls[i % len(urls)] + f"{API}/orders", json={"address_id": aid},
                             headers={**h, "Accept-Language": "en"}, timeout=60)

    with ThreadPoolExecutor(len(clients)) as ex:
        return list(ex.map(one, range(len(clients))))


def check_race(results, p, units, each=1):
    won = [r for r in results if r.status_code == 201]
    lost = [r for r in results if r.status_code != 201]
    assert len(won) == units // each, [r.text for r in lost if r.status_code != 409][:3]
    for r in lost:
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "CONFLICT" and p["id"] in r.json()["detail"] and "Last Piece" in r.json()["detail"]
    return won


def test_race_never_oversells(server, admin_headers):
    units = 7
    p, clients = race(server, admin_headers, 40, units)
    results = fire([server.url("")], clients)
    check_race(results, p, units)
    assert stock(server, p["id"]) == 0


def test_race_multi_unit_lines(server, admin_headers):
    """Lines of 3 racing for 10 units: exactly 3 orders (9 units), 1 unit left, never negative."""
    p, clients = race(server, admin_headers, 20, 10, each=3)
    results = fire([server.url("")], clients)
    check_race(results, p, 10, each=3)
    assert stock(server, p["id"]) == 1


@pytest.mark.skipif(ENGINE != "postgres", reason="two instances share one PostgreSQL database")
def test_two_instances_200_clients_50_units(make_server, db_factory):
    a = make_server(TEMEL_RATE_LIMIT_WRITE="1000000/60", TEMEL_RATE_LIMIT_READ="1000000/60",
                    TEMEL_RATE_LIMIT_AUTH="1000000/60", TEMEL_ADMIN_EMAIL="race-admin@example.com",
                    TEMEL_ADMIN_PASSWORD="race admin password 1", TEMEL_JWT_SECRET="r" * 48)
    b = Server(a.db_url, env={k: a.env[k] for k in a.env if k.startswith(("TEMEL_RATE", "TEMEL_ADMIN", "TEMEL_JWT"))})
    b.start()
    try:
        r = requests.post(a.url(f"{API}/auth/login"), json={"email": "race-admin@example.com",
                                                             "password": "race admin password 1"}, timeout=10)
        admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
        p, clients = race(a, admin, 200, 50)
        results = fire([a.url(""), b.url("")], clients)
        won = check_race(results, p, 50)
        # both instances sold
        assert stock(a, p["id"]) == 0 and stock(b, p["id"]) == 0
        rows = db_factory.query(a.db_url, "SELECT count(*), coalesce(sum(quantity), 0) FROM order_lines "
                                          "WHERE product_id = ?", (p["id"],))
        assert rows[0] == (50, 50) and len(won) == 50
        assert db_factory.query(a.db_url, "SELECT min(stock) FROM catalog_products WHERE id = ?",
                                (p["id"],))[0][0] == 0
    finally:
        assert b.stop() == 0
        b.cleanup()


def test_unpaid_orders_expire_and_give_stock_back_once(make_server, db_factory):
    s = make_server(TEMEL_ORDER_TTL_S="1", TEMEL_JOB_POLL_MS="50", TEMEL_ADMIN_EMAIL="exp-admin@example.com",
                    TEMEL_ADMIN_PASSWORD="expiry admin password 1")
    r = requests.post(s.url(f"{API}/auth/login"), json={"email": "exp-admin@example.com",
                                                         "password": "expiry admin password 1"}, timeout=10)
    admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
    cat = new_category(s, admin)
    p = new_product(s, admin, cat["slug"], price=100, stock=5)
    h, _ = new_user_headers(s, "exp")
    aid = address(s, h)
    add(s, h, p["id"], 2)
    o = order(s, h, aid).json()
    paid = None
    add(s, h, p["id"], 1)
    paid = order(s, h, aid).json()
    assert s.patch(f"{API}/orders/{paid['id']}", json={"status": "paid"}, headers=admin).status_code == 200
    assert stock(s, p["id"]) == 2
    got = wait_for(lambda: (lambda x: x if x["status"] == "cancelled" else None)(
        s.get(f"{API}/orders/{o['id']}", headers=h).json()), "the order to expire")
    assert got["cancel_reason"] == "expired"
    assert stock(s, p["id"]) == 4  # the paid order keeps its unit
    # the sweep and the job both ran or may run again: still once
    rows = db_factory.query(s.db_url, "SELECT status, stock_released FROM orders WHERE id = ?", (o["id"],))
    assert rows[0][0] == "cancelled" and bool(rows[0][1])
    assert_problem(s.post(f"{API}/orders/{o['id']}/cancel", headers=h), 409)
    assert s.get(f"{API}/orders/{paid['id']}", headers=h).json()["status"] == "paid"
    assert stock(s, p["id"]) == 4
    # the expiry is audited as the system's
    r = s.get(f"{API}/admin/audit-logs?target_id={o['id']}", headers=admin)
    assert [(e["action"], e["actor_id"]) for e in r.json()["data"] if e["action"] == "order.status"] == \
        [("order.status", None)]


def test_bad_ttl_refused(run_cli):
    p = run_cli("migrate", env={"TEMEL_ORDER_TTL_S": "0"})
    assert p.returncode == 2 and "TEMEL_ORDER_TTL_S" in p.stderr_text


def test_guests_order_after_signing_up(server, shop):
    """API.md §3: a guest has a cart, not orders — POST /orders is 403 for a guest; after
    registering, migrate-guest-data brings the cart along and the account orders it."""
    _, p1, _ = shop
    g = requests.post(server.url(f"{API}/auth/guest"), timeout=HTTP_TIMEOUT).json()
    gh = {"Authorization": f"Bearer {g['access_token']}"}
    add(server, gh, p1["id"], 2)
    assert_problem(server.post(f"{API}/orders", json={"address_id": MISSING}, headers=gh), 403, "FORBIDDEN")
    assert_problem(server.post(f"{API}/credits/purchases", json={"pack_id": MISSING}, headers=gh), 403)
    assert cart(server, gh) == [(p1["id"], 2)]  # the refusal left the cart alone
    h, _ = new_user_headers(server, "was-guest")
    r = server.post(f"{API}/auth/migrate-guest-data", json={"guest_token": g["access_token"]}, headers=h)
    assert r.status_code in (200, 204), r.text
    before = stock(server, p1["id"])
    o = order(server, h, address(server, h))
    assert o.status_code == 201, o.text
    assert [(i["product_id"], i["quantity"]) for i in o.json()["items"]] == [(p1["id"], 2)]
    assert stock(server, p1["id"]) == before - 2
