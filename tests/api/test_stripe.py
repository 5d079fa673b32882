"""Stripe payments (API.md §9, issue 11 item 2) against a local stand-in (fake_stripe.py):
POST /orders/{id}/pay creates one PaymentIntent through a job (amount, currency, metadata order id,
Idempotency-Key = order id) and answers its client_secret; POST /webhooks/stripe verifies
Stripe-Signature (any v1, 5-minute tolerance), applies each event id once and moves the order."""
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from catalog_util import API, mk, new_category, new_product
from conftest import HTTP_TIMEOUT, Server, assert_problem, new_user_headers
from fake_stripe import FakeStripe, event, sign

WHSEC = "whsec_temel_test_secret"
ADMIN = ("stripe-admin@example.com", "stripe admin password 1")


@pytest.fixture(scope="module")
def stripe():
    fake = FakeStripe()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def shop(stripe, db_factory):
    s = Server(db_factory.new_url(), env={
        "TEMEL_STRIPE_SECRET_KEY": stripe.key, "TEMEL_STRIPE_WEBHOOK_SECRET": WHSEC,
        "TEMEL_STRIPE_API_URL": stripe.url + "/", "TEMEL_OUTBOUND_ALLOW": "127.0.0.1",
        "TEMEL_JOB_POLL_MS": "50", "TEMEL_JOB_BACKOFF_MS": "100",
        "TEMEL_ADMIN_EMAIL": ADMIN[0], "TEMEL_ADMIN_PASSWORD": ADMIN[1],
        "TEMEL_RATE_LIMIT_WRITE": "1000000/60", "TEMEL_RATE_LIMIT_AUTH": "1000000/60"})
    s.start()
    r = requests.post(s.url(f"{API}/auth/login"), json={"email": ADMIN[0], "password": ADMIN[1]},
                      timeout=HTTP_TIMEOUT)
    s.admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
    cat = new_category(s, s.admin)
    s.cat = cat["slug"]
    yield s
    assert s.stop() == 0
    s.cleanup()
    db_factory.drop(s.db_url)


def new_order(s, price=2500, qty=2, stock=10):
    p = new_product(s, s.admin, s.cat, price=price, stock=stock)
    h, _ = new_user_headers(s, "payer")
    aid = mk(s, h, "/me/addresses", {"full_name": "Ada", "line1": "Cd. 1", "city": "Ankara"})["id"]
    assert s.post(f"{API}/me/cart", json={"product_id": p["id"], "quantity": qty}, headers=h).status_code == 201
    r = s.post(f"{API}/orders", json={"address_id": aid}, headers=h)
    assert r.status_code == 201, r.text
    return h, r.json(), p


def pay(s, h, oid):
    return s.post(f"{API}/orders/{oid}/pay", headers=h)


def hook(s, payload, header=None, secret=WHSEC):
    hdr = {"Content-Type": "application/json"}
    hdr["Stripe-Signature"] = header if header is not None else sign(payload, secret)
    return s.post(f"{API}/webhooks/stripe", data=payload, headers=hdr)


def get_order(s, h, oid):
    r = s.get(f"{API}/orders/{oid}", headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def succeeded(s, h, oid, amount=None, currency="try", eid=None):
    secret = pay(s, h, oid).json()
    o = get_order(s, h, oid)
    obj = {"id": secret["payment_intent"], "object": "payment_intent", "amount": amount or o["total"],
           "amount_received": amount or o["total"], "currency": currency, "metadata": {"order_id": oid},
           "status": "succeeded"}
    return event("payment_intent.succeeded", obj, eid), secret["payment_intent"]


def test_pay_creates_one_intent(shop, stripe):
    h, o, _ = new_order(shop)
    before = len(stripe.calls())
    r = pay(shop, h, o["id"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["client_secret"].startswith(body["payment_intent"] + "_secret_")
    calls = stripe.calls()[before:]
    assert len(calls) == 1
    headers, form = calls[0]
    assert form == {"amount": str(o["total"]), "currency": "try", "metadata[order_id]": o["id"],
                    "automatic_payment_methods[enabled]": "true"}
    assert headers["Idempotency-Key"] == o["id"] and headers["Authorization"] == f"Bearer {stripe.key}"
    # again: the stored secret, no second call; the order shows the payment state, never the secret
    assert pay(shop, h, o["id"]).json() == body
    assert len(stripe.calls()) == before + 1
    got = get_order(shop, h, o["id"])
    assert got["payment_status"] == "requires_payment" and "client_secret" not in got
    assert body["client_secret"] not in shop.log_text()


def test_concurrent_pay_one_intent(shop, stripe):
    h, o, _ = new_order(shop)
    before = len(stripe.calls())
    with ThreadPoolExecutor(6) as ex:
        rs = list(ex.map(lambda _: requests.post(shop.url(f"{API}/orders/{o['id']}/pay"), headers=h,
                                                 timeout=60), range(6)))
    assert {r.status_code for r in rs} == {200}, [r.text for r in rs]
    assert len({r.json()["client_secret"] for r in rs}) == 1
    assert len(stripe.calls()) == before + 1


def test_pay_refused_then_retried(shop, stripe):
    h, o, _ = new_order(shop)
    stripe.mode = "402"
    try:
        assert_problem(pay(shop, h, o["id"]), 502, "BAD_GATEWAY")
    finally:
        stripe.mode = "ok"
    assert get_order(shop, h, o["id"])["status"] == "pending"
    r = pay(shop, h, o["id"])
    assert r.status_code == 200, r.text


def test_pay_rules(shop, server):
    h, o, _ = new_order(shop)
    other, _ = new_user_headers(shop, "other")
    assert_problem(pay(shop, other, o["id"]), 404)
    assert_problem(pay(shop, h, "01900000-0000-7000-8000-000000000000"), 404)
    assert_problem(pay(shop, h, "nope"), 404)
    assert_problem(shop.post(f"{API}/orders/{o['id']}/pay"), 401)
    assert shop.post(f"{API}/orders/{o['id']}/cancel", headers=h).status_code == 200
    assert_problem(pay(shop, h, o["id"]), 409, "CONFLICT")
    # the shared server has no Stripe key: 503, nothing enqueued
    h2, _ = new_user_headers(server, "nokey")
    assert_problem(server.post(f"{API}/orders/01900000-0000-7000-8000-000000000000/pay", headers=h2), 503)
    assert_problem(server.post(f"{API}/webhooks/stripe", data=b"{}", headers={"Stripe-Signature": "t=1,v1=00"}), 503)


def test_signature_checks(shop):
    h, o, _ = new_order(shop)
    payload, _ = succeeded(shop, h, o["id"])
    now = int(time.time())
    bad = [
        "",                                                        # empty header
        "t=abc,v1=00",                                             # malformed timestamp
        f"t={now}",                                                # no v1
        sign(payload, "whsec_other"),                              # another secret
        sign(payload, WHSEC, t=now - 400),                         # stale (edges: tests/unit/test_stripe.c)
        sign(payload, WHSEC, t=now + 400),                         # from the future
        sign(payload + b" ", WHSEC),                               # signed another body
    ]
    for header in bad:
        assert_problem(hook(shop, payload, header=header), 400, "BAD_REQUEST")
    r = shop.post(f"{API}/webhooks/stripe", data=payload, headers={"Content-Type": "application/json"})
    assert_problem(r, 400)
    assert get_order(shop, h, o["id"])["status"] == "pending"
    # inside the tolerance, and any v1 of several (a rolled secret)
    r = hook(shop, payload, header=sign(payload, WHSEC, t=now - 250, extra_v1=["0" * 64, "zz"]))
    assert r.status_code == 200, r.text
    assert r.json() == {"received": True, "replayed": False, "outcome": "paid"}
    assert get_order(shop, h, o["id"])["status"] == "paid"


def test_succeeded_once_then_refunded(shop):
    h, o, p = new_order(shop)
    payload, pi = succeeded(shop, h, o["id"])
    r = hook(shop, payload)
    assert r.status_code == 200 and r.json()["outcome"] == "paid", r.text
    got = get_order(shop, h, o["id"])
    assert got["status"] == "paid" and got["payment_status"] == "succeeded" and got["paid_at"]
    audit = lambda: [e for e in shop.get(f"{API}/admin/audit-logs?target_id={o['id']}",
                                         headers=shop.admin).json()["data"] if e["action"] == "order.status"]
    assert [(e["before"]["status"], e["after"]["status"]) for e in audit()] == [("pending", "paid")]
    # a replay (Stripe resends; or an attacker replays a captured request): 200, nothing changes
    for _ in range(3):
        r = hook(shop, payload)
        assert r.status_code == 200 and r.json()["replayed"] is True, r.text
    assert len(audit()) == 1
    # a failed attempt arriving late does not unpay it (only the payment state is noted)
    failed = event("payment_intent.payment_failed", {"id": pi, "object": "payment_intent",
                                                     "metadata": {"order_id": o["id"]}})
    assert hook(shop, failed).status_code == 200
    assert get_order(shop, h, o["id"])["status"] == "paid"
    # a partial refund notes it; the full refund moves the order
    charge = {"id": "ch_1", "object": "charge", "payment_intent": pi, "amount": o["total"],
              "amount_refunded": 100, "refunded": False}
    assert hook(shop, event("charge.refunded", charge)).json()["outcome"] == "partially_refunded"
    assert get_order(shop, h, o["id"])["status"] == "paid"
    charge.update(amount_refunded=o["total"], refunded=True)
    r = hook(shop, event("charge.refunded", charge))
    assert r.status_code == 200 and r.json()["outcome"] == "refunded", r.text
    got = get_order(shop, h, o["id"])
    assert got["status"] == "refunded" and got["payment_status"] == "refunded"
    assert len(audit()) == 2


def test_admin_refund_through_stripe(shop, stripe, db_factory):
    """POST /admin/orders/{id}/refund asks Stripe for the refund (job orders.stripe_refund, one refund
    however many admins click at once); charge.refunded then moves the order; audited; mailed."""
    h, o, p = new_order(shop)
    assert_problem(shop.post(f"{API}/admin/orders/{o['id']}/refund", headers=shop.admin), 409)  # not paid yet
    payload, pi = succeeded(shop, h, o["id"])
    assert hook(shop, payload).json()["outcome"] == "paid"
    # paid through Stripe: a bare status change would not move the money
    assert_problem(shop.patch(f"{API}/orders/{o['id']}", json={"status": "refunded"}, headers=shop.admin), 409)
    assert_problem(shop.post(f"{API}/admin/orders/{o['id']}/refund", headers=h), 403)
    url = shop.url(f"{API}/admin/orders/{o['id']}/refund")
    with ThreadPoolExecutor(8) as ex:
        rs = list(ex.map(lambda _: requests.post(url, headers=shop.admin, timeout=60), range(8)))
    assert {r.status_code for r in rs} == {202}, [r.text for r in rs]
    assert {r.json()["payment_status"] for r in rs} == {"refund_pending"}
    assert all(r.json()["status"] == "paid" for r in rs)

    # one refund job for all the clicks (the stand-in, like Stripe, would also fold repeated calls with
    # the same Idempotency-Key into one refund, so count the jobs and the calls, not the refunds)
    def jobs():
        return [r[0] for r in db_factory.query(shop.db_url, "SELECT state FROM jobs WHERE unique_key = ?",
                                               (f"stripe_refund:{o['id']}",))]
    deadline = time.monotonic() + 30
    while jobs() != ["succeeded"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert jobs() == ["succeeded"]
    refunds = [x for x in list(stripe.refunds.values()) if x["payment_intent"] == pi]
    assert len(refunds) == 1 and refunds[0]["amount"] == o["total"]
    form = [c for c in stripe.calls() if c[1].get("payment_intent") == pi and "amount" not in c[1]]
    assert len(form) == 1 and form[0][0]["Idempotency-Key"] == f"refund-{o['id']}"
    assert get_order(shop, h, o["id"])["status"] == "paid"  # until Stripe says it is done
    charge = {"id": "ch_ref", "object": "charge", "payment_intent": pi, "amount": o["total"],
              "amount_refunded": o["total"], "refunded": True}
    assert hook(shop, event("charge.refunded", charge)).json()["outcome"] == "refunded"
    got = get_order(shop, h, o["id"])
    assert got["status"] == "refunded" and got["payment_status"] == "refunded"
    logs = shop.get(f"{API}/admin/audit-logs?target_id={o['id']}&limit=100", headers=shop.admin).json()["data"]
    assert sorted(e["action"] for e in logs) == ["order.create", "order.refund", "order.status", "order.status"]
    assert_problem(shop.post(f"{API}/admin/orders/{o['id']}/refund", headers=shop.admin), 409)


def test_failed_payment_keeps_order_pending(shop):
    h, o, _ = new_order(shop)
    secret = pay(shop, h, o["id"]).json()
    failed = event("payment_intent.payment_failed", {"id": secret["payment_intent"], "object": "payment_intent",
                                                     "metadata": {}})  # found by the intent id alone
    r = hook(shop, failed)
    assert r.status_code == 200 and r.json()["outcome"] == "failed", r.text
    got = get_order(shop, h, o["id"])
    assert got["status"] == "pending" and got["payment_status"] == "failed"


def test_wrong_amount_or_late_payment_does_not_mark_paid(shop):
    h, o, p = new_order(shop)
    payload, _ = succeeded(shop, h, o["id"], amount=1)
    assert hook(shop, payload).json()["outcome"] == "amount_mismatch"
    assert get_order(shop, h, o["id"])["status"] == "pending"
    payload, _ = succeeded(shop, h, o["id"], currency="eur")
    assert hook(shop, payload).json()["outcome"] == "amount_mismatch"
    # paid after the customer cancelled: stays cancelled, the stock stays back, staff can see it
    assert shop.post(f"{API}/orders/{o['id']}/cancel", headers=h).status_code == 200
    o2 = get_order(shop, h, o["id"])
    obj = {"id": "pi_late", "object": "payment_intent", "amount": o2["total"], "amount_received": o2["total"],
           "currency": "try", "metadata": {"order_id": o["id"]}}
    r = hook(shop, event("payment_intent.succeeded", obj))
    assert r.status_code == 200 and r.json()["outcome"] == "paid_while_not_pending", r.text
    got = get_order(shop, h, o["id"])
    assert got["status"] == "cancelled" and got["payment_status"] == "succeeded_not_pending"
    assert shop.get(f"{API}/products/{p['id']}").json()["stock"] == 10


def test_unknown_events_and_bad_bodies(shop):
    r = hook(shop, event("customer.created", {"id": "cus_1", "object": "customer"}))
    assert r.status_code == 200 and r.json()["outcome"] == "ignored", r.text
    for payload in [b"not json", b"{}", json.dumps({"id": "evt_x", "type": "x", "data": {}}).encode(),
                    json.dumps({"id": "", "type": "x", "data": {"object": {}}}).encode()]:
        assert_problem(hook(shop, payload), 400, "BAD_REQUEST")


def test_bad_stripe_url_refused(run_cli):
    p = run_cli("migrate", env={"TEMEL_STRIPE_API_URL": "ftp://example.com"})
    assert p.returncode == 2 and "TEMEL_STRIPE_API_URL" in p.stderr_text


# ---- credits for money (issue 11 item 3) ----

def new_pack(s, credits=500, price=9900, **kw):
    body = {"name": {"tr": "Kredi paketi", "en": "Credit pack", "pl": "Pakiet kredytów"}, "credits": credits,
            "price": price}
    body.update(kw)
    return mk(s, s.admin, "/credits/packs", body)


def balance(s, h):
    r = s.get(f"{API}/credits/balance", headers=h)
    assert r.status_code == 200, r.text
    return r.json()["balance"]


def test_credit_packs_crud(shop):
    p = new_pack(shop)
    assert p["credits"] == 500 and p["price"] == 9900 and p["currency"] == "TRY" and p["active"] is True
    r = shop.get(f"{API}/credits/packs/{p['id']}", headers={"Accept-Language": "tr"})
    assert r.status_code == 200 and r.json()["name"] == "Kredi paketi"
    assert p["id"] in [x["id"] for x in shop.get(f"{API}/credits/packs?limit=100").json()["data"]]
    h, _ = new_user_headers(shop, "packs")
    assert_problem(shop.post(f"{API}/credits/packs", json={"name": {"en": "x"}, "credits": 1, "price": 1},
                             headers=h), 403)
    for bad in [{"credits": 0}, {"price": 0}, {"currency": "XX"}, {"credits": "many"}]:
        body = {"name": {"en": "x"}, "credits": 10, "price": 100, **bad}
        assert_problem(shop.post(f"{API}/credits/packs", json=body, headers=shop.admin), 422)
    r = shop.patch(f"{API}/credits/packs/{p['id']}", json={"active": False}, headers=shop.admin)
    assert r.status_code == 200 and r.json()["active"] is False


def test_buy_credits_pays_once_into_the_ledger(shop, run_cli):
    pack = new_pack(shop, credits=750, price=12900)
    h, user = new_user_headers(shop, "buyer")
    start = balance(shop, h)
    r = shop.post(f"{API}/credits/purchases", json={"pack_id": pack["id"]},
                  headers={**h, "Idempotency-Key": "buy-1", "Accept-Language": "en"})
    assert r.status_code == 201, r.text
    o = r.json()
    assert o["kind"] == "credits" and o["credits"] == 750 and o["total"] == 12900 and o["address"] is None
    assert [(i["product_id"], i["name"], i["quantity"], i["line_total"]) for i in o["items"]] == \
        [(pack["id"], "Credit pack", 1, 12900)]
    again = shop.post(f"{API}/credits/purchases", json={"pack_id": pack["id"]},
                      headers={**h, "Idempotency-Key": "buy-1", "Accept-Language": "en"})
    assert again.json()["id"] == o["id"]
    assert balance(shop, h) == start  # nothing before payment
    payload, pi = succeeded(shop, h, o["id"])
    for _ in range(3):  # the first applies, replays change nothing
        assert hook(shop, payload).status_code == 200
    assert get_order(shop, h, o["id"])["status"] == "paid"
    assert balance(shop, h) == start + 750
    tx = shop.get(f"{API}/credits/transactions?type=purchase", headers=h).json()["data"]
    assert [(t["type"], t["amount"]) for t in tx] == [("purchase", 750)]
    # Stripe refunds the charge: the credits go back out (an adjust), the order is refunded
    charge = {"id": "ch_credits", "object": "charge", "payment_intent": pi, "amount": 12900, "amount_refunded": 12900, "refunded": True}
    r = hook(shop, event("charge.refunded", charge))
    assert r.status_code == 200 and r.json()["outcome"] == "refunded", r.text
    assert balance(shop, h) == start
    tx = shop.get(f"{API}/credits/transactions?type=adjust", headers=h).json()["data"]
    assert [(t["type"], t["amount"]) for t in tx] == [("adjust", -750)]
    # every balance is explained by the ledger
    p = run_cli("ledger", "verify", db_url=shop.db_url)
    assert p.returncode == 0, p.stdout_text + p.stderr_text


def test_buy_credits_bad_input(shop):
    h, _ = new_user_headers(shop, "buyer2")
    inactive = new_pack(shop)
    assert shop.patch(f"{API}/credits/packs/{inactive['id']}", json={"active": False},
                      headers=shop.admin).status_code == 200
    for body in [{}, {"pack_id": 1}, {"pack_id": "nope"}, {"pack_id": "01900000-0000-7000-8000-000000000000"},
                 {"pack_id": inactive["id"]}]:
        assert_problem(shop.post(f"{API}/credits/purchases", json=body, headers=h), 422)
    assert shop.get(f"{API}/orders", headers=h).json()["data"] == []
    assert_problem(shop.post(f"{API}/credits/purchases", json={"pack_id": inactive["id"]}), 401)
