"""Paid events (issue 12 item 1) through the orders and Stripe path, with the Stripe stand-in
(fake_stripe.py): registering for an event with a price takes the seat at once and holds it with a
pending order of kind event (registration status pending, order_id); the paid webhook confirms it;
cancelling or expiring the unpaid order, or refunding the paid one, gives the seat back exactly once
and promotes the waitlist; revenue in the analytics is the event's paid orders."""
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from conftest import ENGINE, HTTP_TIMEOUT, Server, assert_problem, new_user_headers, wait_for
from events_util import API, fire, new_event, register
from fake_stripe import FakeStripe, event, sign

WHSEC = "whsec_temel_paid_events"
ADMIN = ("paid-events-admin@example.com", "paid events admin password 1")


@pytest.fixture(scope="module")
def stripe():
    fake = FakeStripe()
    yield fake
    fake.close()


def server_env(stripe, **env):
    return {"TEMEL_STRIPE_SECRET_KEY": stripe.key, "TEMEL_STRIPE_WEBHOOK_SECRET": WHSEC,
            "TEMEL_STRIPE_API_URL": stripe.url, "TEMEL_OUTBOUND_ALLOW": "127.0.0.1",
            "TEMEL_JOB_POLL_MS": "50", "TEMEL_JOB_BACKOFF_MS": "100",
            "TEMEL_ADMIN_EMAIL": ADMIN[0], "TEMEL_ADMIN_PASSWORD": ADMIN[1],
            "TEMEL_JWT_SECRET": "p" * 48, "TEMEL_SECRET_KEY": "q" * 48,
            "TEMEL_RATE_LIMIT_WRITE": "1000000/60", "TEMEL_RATE_LIMIT_AUTH": "1000000/60", **env}


def start(stripe, db_factory, **env):
    s = Server(db_factory.new_url(), env=server_env(stripe, **env))
    s.start()
    r = requests.post(s.url(f"{API}/auth/login"), json={"email": ADMIN[0], "password": ADMIN[1]},
                      timeout=HTTP_TIMEOUT)
    s.admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return s


def stop(s, db_factory):
    assert s.stop() == 0
    s.cleanup()
    db_factory.drop(s.db_url)


@pytest.fixture(scope="module")
def shop(stripe, db_factory):
    s = start(stripe, db_factory)
    yield s
    stop(s, db_factory)


def hook(s, payload):
    r = s.post(f"{API}/webhooks/stripe", data=payload,
               headers={"Content-Type": "application/json", "Stripe-Signature": sign(payload, WHSEC)})
    assert r.status_code == 200, r.text
    return r.json()


def pay(s, stripe, h, order_id):
    """POST /orders/{id}/pay, then Stripe reports the payment: the intent."""
    r = s.post(f"{API}/orders/{order_id}/pay", headers=h)
    assert r.status_code == 200, r.text
    i = stripe.intents[r.json()["payment_intent"]]
    obj = {"id": i["id"], "object": "payment_intent", "amount": i["amount"], "amount_received": i["amount"],
           "currency": i["currency"], "status": "succeeded", "metadata": i["metadata"]}
    assert hook(s, event("payment_intent.succeeded", obj))["outcome"] == "paid"
    return i


def refund(s, intent, total):
    charge = {"id": f"ch_{intent['id'][-10:]}", "object": "charge", "payment_intent": intent["id"],
              "amount": total, "amount_refunded": total, "refunded": True}
    assert hook(s, event("charge.refunded", charge))["outcome"] == "refunded"


def reg_of(s, h, rid):
    r = s.get(f"{API}/registrations/{rid}", headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def order_created(s, order_id):
    """(actor_id, endpoint) of the order's order.create audit entries."""
    r = s.get(f"{API}/admin/audit-logs?target_id={order_id}", headers=s.admin)
    assert r.status_code == 200, r.text
    return [(e["actor_id"], e["endpoint"]) for e in r.json()["data"] if e["action"] == "order.create"]


def stats(s, eid):
    r = s.get(f"{API}/events/{eid}/analytics", headers=s.admin)
    assert r.status_code == 200, r.text
    return r.json()


def test_paid_registration_payment_cancel_refund_and_waitlist(shop, stripe, db_factory):
    ev = new_event(shop, shop.admin, price=2500, currency="EUR", capacity=2, waitlist=True)
    (ha, ua), (hb, ub), (hc, uc) = [new_user_headers(shop, p) for p in ("ticket-a", "ticket-b", "ticket-c")]
    # A: the seat is held by a pending order of kind event
    r = register(shop, ha, ev["id"])
    assert r.status_code == 201, r.text
    ra = r.json()
    assert ra["status"] == "pending" and ra["order_id"] and ra["amount_paid"] == 0
    o = shop.get(f"{API}/orders/{ra['order_id']}", headers=ha).json()
    assert (o["kind"], o["status"], o["total"], o["currency"], o["event_id"]) == ("event", "pending", 2500, "EUR", ev["id"])
    assert [(i["product_id"], i["quantity"]) for i in o["items"]] == [(f"event:{ev['id']}", 1)]
    # audited as the buyer's, from the register request
    assert order_created(shop, ra["order_id"]) == [(ua["id"], "POST /api/v1/events/{id}/register")]
    assert_problem(register(shop, ha, ev["id"]), 409)  # one per user, pending included
    # a pending registration cannot check in
    assert_problem(shop.post(f"{API}/events/{ev['id']}/checkin", json={"code": ra["code"]}, headers=shop.admin), 409)
    ia = pay(shop, stripe, ha, ra["order_id"])
    assert ia["amount"] == 2500 and ia["currency"] == "eur"
    got = reg_of(shop, ha, ra["id"])
    assert got["status"] == "confirmed" and got["amount_paid"] == 2500
    st = stats(shop, ev["id"])
    assert (st["confirmed"], st["pending"], st["seats_taken"], st["revenue"], st["currency"]) == (1, 0, 1, 2500, "EUR")
    # B holds the last seat; C waits
    rb = register(shop, hb, ev["id"]).json()
    rc = register(shop, hc, ev["id"]).json()
    assert rb["status"] == "pending" and rc["status"] == "waitlisted" and rc["order_id"] is None
    # B gives the unpaid order up: B's registration is cancelled, C is promoted with an order of their own
    r = shop.post(f"{API}/orders/{rb['order_id']}/cancel", headers=hb)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    assert reg_of(shop, hb, rb["id"])["status"] == "cancelled"
    rc = reg_of(shop, hc, rc["id"])
    assert rc["status"] == "pending" and rc["order_id"] and rc["waitlist_position"] is None
    assert shop.get(f"{API}/orders/{rc['order_id']}", headers=hc).json()["total"] == 2500
    assert order_created(shop, rc["order_id"]) == [(None, "events")]  # made by the promotion, not by C
    st = stats(shop, ev["id"])
    assert (st["confirmed"], st["pending"], st["seats_taken"], st["revenue"]) == (1, 1, 2, 2500)
    # C cancels the registration: the unpaid order is cancelled with it
    r = shop.post(f"{API}/registrations/{rc['id']}/cancel", headers=hc)
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.text
    oc = shop.get(f"{API}/orders/{rc['order_id']}", headers=hc).json()
    assert oc["status"] == "cancelled" and oc["cancel_reason"] == "registration_cancelled"
    # A's payment is refunded: A's seat goes back, revenue drops
    refund(shop, ia, 2500)
    assert reg_of(shop, ha, ra["id"])["status"] == "cancelled"
    st = stats(shop, ev["id"])
    assert (st["confirmed"], st["pending"], st["seats_taken"], st["revenue"]) == (0, 0, 0, 0)
    # and B may buy again (the cancelled registration is reused, with a new order)
    again = register(shop, hb, ev["id"]).json()
    assert again["id"] == rb["id"] and again["status"] == "pending" and again["order_id"] != rb["order_id"]
    # guests cannot buy
    g = requests.post(shop.url(f"{API}/auth/guest"), timeout=HTTP_TIMEOUT).json()
    assert_problem(register(shop, {"Authorization": f"Bearer {g['access_token']}"}, ev["id"]), 403)


def test_race_for_paid_seats(shop, stripe, db_factory):
    """40 buyers for 5 paid seats at once: exactly 5 hold a seat (pending, each with one order), the
    rest 409; seats freed by cancelled orders go to exactly as many of the next racers."""
    cap = 5
    ev = new_event(shop, shop.admin, price=1000, currency="TRY", capacity=cap)
    users = [new_user_headers(shop, "racer") for _ in range(40)]
    hs = [h for h, _ in users]

    def db_state():
        taken = db_factory.query(shop.db_url, "SELECT confirmed_count FROM events WHERE id = ?", (ev["id"],))[0][0]
        live = db_factory.query(shop.db_url, "SELECT count(*) FROM event_registrations WHERE event_id = ? "
                                "AND status IN ('pending', 'confirmed')", (ev["id"],))[0][0]
        orders = db_factory.query(shop.db_url, "SELECT count(*) FROM orders WHERE event_id = ? "
                                  "AND status IN ('pending', 'paid')", (ev["id"],))[0][0]
        return taken, live, orders

    rs = fire([shop.url("")], f"{API}/events/{ev['id']}/register", hs)
    won = [(i, r.json()) for i, r in enumerate(rs) if r.status_code == 201]
    assert len(won) == cap and all(r.status_code == 409 for r in rs if r.status_code != 201), \
        sorted({r.status_code for r in rs})
    assert all(w["status"] == "pending" and w["order_id"] for _, w in won)
    assert db_state() == (cap, cap, cap)
    # three pay (their webhooks at once), two give up
    with ThreadPoolExecutor(3) as ex:
        list(ex.map(lambda iw: pay(shop, stripe, hs[iw[0]], iw[1]["order_id"]), won[:3]))
    for i, w in won[3:]:
        assert shop.post(f"{API}/orders/{w['order_id']}/cancel", headers=hs[i]).status_code == 200
    assert db_state() == (3, 3, 3)
    st = stats(shop, ev["id"])
    assert (st["confirmed"], st["pending"], st["revenue"]) == (3, 0, 3000)
    # the losers race again for the two freed seats
    losers = [hs[i] for i in range(len(hs)) if i not in {j for j, _ in won}]
    rs = fire([shop.url("")], f"{API}/events/{ev['id']}/register", losers)
    assert sorted(r.status_code for r in rs).count(201) == 2, [r.status_code for r in rs]
    assert db_state() == (cap, cap, cap)


def test_unpaid_order_expiry_releases_the_seat_once(stripe, db_factory):
    s = start(stripe, db_factory, TEMEL_ORDER_TTL_S="1")
    try:
        ev = new_event(s, s.admin, price=500, currency="PLN", capacity=1, waitlist=True)
        (ha, _), (hb, _) = new_user_headers(s, "slow-a"), new_user_headers(s, "slow-b")
        ra = register(s, ha, ev["id"]).json()
        rb = register(s, hb, ev["id"]).json()
        assert ra["status"] == "pending" and rb["status"] == "waitlisted"
        # A's order expires: A's seat goes to B (pending, with an order that expires too)
        oa = wait_for(lambda: (lambda o: o if o["status"] == "cancelled" else None)(
            s.get(f"{API}/orders/{ra['order_id']}", headers=ha).json()), "A's order to expire")
        assert oa["cancel_reason"] == "expired"
        assert reg_of(s, ha, ra["id"])["status"] == "cancelled"
        rb = wait_for(lambda: (lambda g: g if g["status"] == "cancelled" else None)(reg_of(s, hb, rb["id"])),
                      "B's promoted seat to expire as well")
        ob = s.get(f"{API}/orders/{rb['order_id']}", headers=hb).json()
        assert ob["status"] == "cancelled" and ob["cancel_reason"] == "expired"
        # every seat came back exactly once: nothing held, the counter at zero (never below)
        st = stats(s, ev["id"])
        assert (st["seats_taken"], st["pending"], st["confirmed"], st["revenue"]) == (0, 0, 0, 0)
        again = register(s, ha, ev["id"]).json()
        assert again["status"] == "pending"
        assert stats(s, ev["id"])["seats_taken"] == 1
    finally:
        stop(s, db_factory)


@pytest.mark.skipif(ENGINE != "postgres", reason="two instances share one PostgreSQL database")
def test_two_instances_race_for_paid_seats_with_a_waitlist(shop, stripe, db_factory):
    """60 buyers for 10 paid seats through two instances on one PostgreSQL: exactly 10 held (pending,
    one order each), 50 waitlisted in commit order; orders given up on either instance promote exactly
    as many from the waitlist, each with an order of their own."""
    b = Server(shop.db_url, env=server_env(stripe))
    b.start()
    try:
        ev = new_event(shop, shop.admin, price=1500, currency="USD", capacity=10, waitlist=True)
        hs = [new_user_headers(shop, "pgracer")[0] for _ in range(60)]
        rs = fire([shop.url(""), b.url("")], f"{API}/events/{ev['id']}/register", hs)
        assert {r.status_code for r in rs} == {201}, sorted({r.status_code for r in rs})
        body = [r.json() for r in rs]
        held = [i for i, x in enumerate(body) if x["status"] == "pending"]
        assert len(held) == 10 and all(body[i]["order_id"] for i in held)
        assert sorted(x["waitlist_position"] for x in body if x["status"] == "waitlisted") == list(range(1, 51))
        q = lambda sql: db_factory.query(shop.db_url, sql, (ev["id"],))
        assert q("SELECT confirmed_count FROM events WHERE id = ?")[0][0] == 10
        assert q("SELECT count(*) FROM orders WHERE event_id = ? AND status = 'pending'")[0][0] == 10
        # three give up at once, on both instances: the first three waiting get the seats
        urls = [shop.url(""), b.url(""), shop.url("")]
        with ThreadPoolExecutor(3) as ex:
            out = list(ex.map(lambda k: requests.post(urls[k] + f"{API}/orders/{body[held[k]]['order_id']}/cancel",
                                                      headers=hs[held[k]], timeout=60), range(3)))
        assert {r.status_code for r in out} == {200}, [r.text for r in out]
        rows = q("SELECT status, count(*) FROM event_registrations WHERE event_id = ? GROUP BY status ORDER BY status")
        assert rows == [("cancelled", 3), ("pending", 10), ("waitlisted", 47)]
        assert q("SELECT confirmed_count FROM events WHERE id = ?")[0][0] == 10
        assert q("SELECT count(*) FROM orders WHERE event_id = ? AND status = 'pending'")[0][0] == 10
        first3 = sorted((x for x in body if x["status"] == "waitlisted"), key=lambda x: x["waitlist_position"])[:3]
        assert {reg_of(shop, shop.admin, x["id"])["status"] for x in first3} == {"pending"}
    finally:
        assert b.stop() == 0
        b.cleanup()
