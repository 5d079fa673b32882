"""Paid plans as subscriptions (issue 11 item 3, API.md §3 Plans) through the Stripe stand-in
(fake_stripe.py): POST /me/subscription {plan} is an order of kind plan; its payment_intent.succeeded
webhook starts a period and grants the plan's credits once (a grant with reference plan:<order id>);
the job plans.cycle charges the saved card off-session before period end (renewal) and drops the plan
at period end when it was cancelled or the renewal failed. Periods are 20 s here (TEMEL_PLAN_PERIOD_S),
renewals are charged 15 s before period end."""
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from catalog_util import API
from conftest import HTTP_TIMEOUT, Server, assert_problem, new_user_headers, wait_for
from fake_stripe import FakeStripe, event, sign

WHSEC = "whsec_temel_plans"
PERIOD_S = 20


@pytest.fixture(scope="module")
def stripe():
    fake = FakeStripe()
    yield fake
    fake.close()


@pytest.fixture(scope="module")
def shop(stripe, db_factory):
    s = Server(db_factory.new_url(), env={
        "TEMEL_STRIPE_SECRET_KEY": stripe.key, "TEMEL_STRIPE_WEBHOOK_SECRET": WHSEC,
        "TEMEL_STRIPE_API_URL": stripe.url, "TEMEL_OUTBOUND_ALLOW": "127.0.0.1",
        "TEMEL_JOB_POLL_MS": "50", "TEMEL_JOB_BACKOFF_MS": "100",
        "TEMEL_PLAN_PERIOD_S": str(PERIOD_S), "TEMEL_PLAN_RENEW_LEAD_S": "15",
        "TEMEL_RATE_LIMIT_WRITE": "1000000/60", "TEMEL_RATE_LIMIT_AUTH": "1000000/60"})
    s.start()
    yield s
    assert s.stop() == 0
    s.cleanup()
    db_factory.drop(s.db_url)


def hook(s, payload):
    return s.post(f"{API}/webhooks/stripe", data=payload,
                  headers={"Content-Type": "application/json", "Stripe-Signature": sign(payload, WHSEC)})


def sub(s, h):
    r = s.get(f"{API}/me/subscription", headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def grants(s, h):
    r = s.get(f"{API}/credits/transactions?type=grant&limit=100", headers=h)
    assert r.status_code == 200, r.text
    return sorted((t["reference"], t["amount"]) for t in r.json()["data"])


def paid_event(intent, pm="pm_card_visa", eid=None):
    obj = {"id": intent["id"], "object": "payment_intent", "amount": intent["amount"],
           "amount_received": intent["amount"], "currency": intent["currency"], "status": "succeeded",
           "customer": intent.get("customer"), "payment_method": pm, "metadata": intent["metadata"]}
    return event("payment_intent.succeeded", obj, eid)


def subscribe(s, h, plan="pro", key=None):
    hdr = dict(h, **({"Idempotency-Key": key} if key else {}))
    return s.post(f"{API}/me/subscription", json={"plan": plan}, headers=hdr)


def activate(s, stripe, prefix, plan="pro"):
    """A new user on a paid plan: subscribe, pay, Stripe reports the payment."""
    h, u = new_user_headers(s, prefix)
    return (h, u) + pay_plan(s, stripe, h, plan)


def pay_plan(s, stripe, h, plan):
    """Subscribe h to plan and pay it: (order, intent)."""
    r = subscribe(s, h, plan)
    assert r.status_code == 201, r.text
    o = r.json()
    pay = s.post(f"{API}/orders/{o['id']}/pay", headers=h)
    assert pay.status_code == 200, pay.text
    intent = stripe.intents[pay.json()["payment_intent"]]
    assert hook(s, paid_event(intent)).status_code == 200
    return o, intent


def test_subscribe_pays_and_grants_once(shop, stripe, run_cli):
    h, u = new_user_headers(shop, "planner")
    # many clients ask at once: one order to pay
    with ThreadPoolExecutor(12) as ex:
        rs = list(ex.map(lambda i: subscribe(shop, h, key=f"k{i}"), range(12)))
    assert sorted({r.status_code for r in rs}) in ([200, 201], [201]), [r.text for r in rs]
    assert len({r.json()["id"] for r in rs}) == 1
    o = rs[0].json()
    assert o["kind"] == "plan" and o["plan"] == "pro" and o["total"] == 19900 and o["currency"] == "TRY"
    assert [(i["product_id"], i["quantity"], i["line_total"]) for i in o["items"]] == [("plan:pro", 1, 19900)]
    s0 = sub(shop, h)
    assert s0["plan"] == "free" and s0["pending_order_id"] == o["id"] and s0["current_period_end"] is None
    start = grants(shop, h)
    before = len(stripe.calls())
    pay = shop.post(f"{API}/orders/{o['id']}/pay", headers=h)
    assert pay.status_code == 200, pay.text
    calls = stripe.calls()[before:]
    forms = {c[1].get("metadata[user_id]") and "customer" or "intent": c[1] for c in calls}
    assert forms["customer"]["metadata[user_id]"] == u["id"] and forms["customer"]["email"] == u["email"]
    intent = stripe.intents[pay.json()["payment_intent"]]
    assert forms["intent"]["setup_future_usage"] == "off_session"
    assert forms["intent"]["customer"] == intent["customer"] and intent["customer"].startswith("cus_")
    assert sub(shop, h)["plan"] == "free"  # nothing before Stripe says paid
    # Stripe delivers the event many times at once, and other events about the same intent: one grant
    payload = paid_event(intent)
    others = [paid_event(intent, eid=f"evt_dup_{o['id'][-8:]}_{i}") for i in range(6)]
    with ThreadPoolExecutor(16) as ex:
        rs = list(ex.map(lambda p: hook(shop, p), [payload] * 10 + others))
    assert {r.status_code for r in rs} == {200}, [r.text for r in rs]
    s1 = sub(shop, h)
    assert s1["plan"] == "pro" and s1["paid"] is True and s1["cancel_at_period_end"] is False
    assert s1["current_period_end"] > s1["current_period_start"] and s1["pending_order_id"] is None
    # the account opens with this month's free grant (at registration); the paid period adds its own, once
    assert [(g[0][:8], g[1]) for g in start] == [("monthly:", 50)]
    assert [g for g in grants(shop, h) if g[0].startswith("plan:")] == [(f"plan:{o['id']}", 1000)]
    assert [g[1] for g in grants(shop, h) if g[0].startswith("monthly:")] == [50]
    bal = shop.get(f"{API}/credits/balance", headers=h).json()
    assert bal["plan"] == "pro" and bal["balance"] == 50 + 1000
    # the same plan again while it runs: 409; the order is paid
    assert_problem(subscribe(shop, h), 409, "CONFLICT")
    assert shop.get(f"{API}/orders/{o['id']}", headers=h).json()["status"] == "paid"
    p = run_cli("ledger", "verify", db_url=shop.db_url)
    assert p.returncode == 0, p.stdout_text + p.stderr_text


def test_subscription_rules(shop):
    h, _ = new_user_headers(shop, "rules")
    for body in [{}, {"plan": "gold"}, {"plan": 1}, {"plan": "pro", "extra": 1}]:
        assert_problem(shop.post(f"{API}/me/subscription", json=body, headers=h), 422)
    assert_problem(shop.post(f"{API}/me/subscription", json={"plan": "pro"}), 401)
    g = requests.post(shop.url(f"{API}/auth/guest"), timeout=HTTP_TIMEOUT).json()
    gh = {"Authorization": f"Bearer {g['access_token']}"}
    assert_problem(subscribe(shop, gh), 403, "FORBIDDEN")
    # cancelling without a paid plan changes nothing; free is always there
    r = shop.delete(f"{API}/me/subscription", headers=h)
    assert r.status_code == 200 and r.json()["plan"] == "free" and r.json()["cancel_at_period_end"] is False
    plans = {p["plan"]: p for p in shop.get(f"{API}/credits/pricing").json()["plans"]}
    assert plans["pro"]["price"] == 19900 and plans["business"]["currency"] == "TRY" and plans["free"]["price"] == 0


def test_bad_plan_settings_refused(run_cli):
    for env in [{"TEMEL_PLAN_PERIOD_S": "-1"}, {"TEMEL_PLAN_PERIOD_S": "10", "TEMEL_PLAN_RENEW_LEAD_S": "10"},
                {"TEMEL_PLAN_RENEW_LEAD_S": "x"}]:
        p = run_cli("migrate", env=env)
        assert p.returncode == 2 and "TEMEL_PLAN_" in p.stderr_text, p.stderr_text


def refunded_event(intent, order):
    charge = {"id": f"ch_{order['id'][-12:]}", "object": "charge", "payment_intent": intent["id"],
              "amount": order["total"], "amount_refunded": order["total"], "refunded": True}
    return event("charge.refunded", charge)


def test_refund_of_a_plan_order(shop, stripe, run_cli):
    """Refunding the order that paid the running period ends the plan now and takes that period's
    grant back (an adjust in the ledger, in the refund's transaction); refunding an older period's
    order leaves the running plan and its credits alone."""
    monthly = {p["plan"]: p["monthly_credits"] for p in shop.get(f"{API}/credits/pricing").json()["plans"]}
    h, u, o_pro, i_pro = activate(shop, stripe, "refunds")
    o_biz, i_biz = pay_plan(shop, stripe, h, "business")
    running = sub(shop, h)
    assert running["plan"] == "business"
    full = 50 + monthly["pro"] + monthly["business"]
    assert shop.get(f"{API}/credits/balance", headers=h).json()["balance"] == full
    # the older (pro) period's order refunded: the business period runs on, no credit moves
    r = hook(shop, refunded_event(i_pro, o_pro))
    assert r.status_code == 200 and r.json()["outcome"] == "refunded", r.text
    assert shop.get(f"{API}/orders/{o_pro['id']}", headers=h).json()["status"] == "refunded"
    assert sub(shop, h) == running
    assert shop.get(f"{API}/credits/balance", headers=h).json()["balance"] == full
    # the running period's order refunded: free now, its grant taken back
    refund_biz = refunded_event(i_biz, o_biz)
    r = hook(shop, refund_biz)
    assert r.status_code == 200 and r.json()["outcome"] == "refunded", r.text
    s1 = sub(shop, h)
    assert s1["plan"] == "free" and s1["ended_reason"] == "refunded" and s1["current_period_end"] is None
    assert s1["renewal"] is None and s1["cancel_at_period_end"] is False
    bal = shop.get(f"{API}/credits/balance", headers=h).json()
    assert bal["plan"] == "free" and bal["balance"] == 50 + monthly["pro"]
    adj = shop.get(f"{API}/credits/transactions?type=adjust", headers=h).json()["data"]
    assert [(t["reference"], t["amount"]) for t in adj] == [(f"refund order:{o_biz['id']}", -monthly["business"])]
    # the same event again, or another one about the same charge, changes nothing more
    assert hook(shop, refund_biz).json()["replayed"] is True
    assert hook(shop, refunded_event(i_biz, o_biz)).status_code == 200
    assert shop.get(f"{API}/credits/balance", headers=h).json()["balance"] == 50 + monthly["pro"]
    assert subscribe(shop, h, "pro").status_code == 201
    p = run_cli("ledger", "verify", db_url=shop.db_url)
    assert p.returncode == 0, p.stdout_text + p.stderr_text


def test_renewal_cancel_and_failed_renewal(shop, stripe, run_cli):
    """A renews through the saved card; B's card is declined at renewal; C cancels at period end;
    D's renewal is paid ahead and refunded before its period begins: D keeps the plan to the end of
    the period it paid first, then drops to free (ended_reason refunded) without the renewal's credits."""
    ha, ua, oa, ia = activate(shop, stripe, "renews")
    hd, ud, od, idd = activate(shop, stripe, "refundsrenewal")
    hb, ub, ob, ib = activate(shop, stripe, "declined")
    stripe.decline.add(ib["customer"])
    hc, uc, oc, ic = activate(shop, stripe, "cancels")
    r = shop.delete(f"{API}/me/subscription", headers=hc)
    assert r.status_code == 200 and r.json()["cancel_at_period_end"] is True and r.json()["plan"] == "pro"
    end_a = sub(shop, ha)["current_period_end"]

    def renewal_of(intent0):
        return next((i for i in list(stripe.intents.values()) if i.get("customer") == intent0["customer"]
                     and i["id"] != intent0["id"]), None)

    # A: the renewal job charges the saved card off-session, with its own order
    ra = wait_for(lambda: renewal_of(ia), "A's renewal")
    form = next(c[1] for c in stripe.calls() if c[1].get("metadata[order_id]") == ra["metadata"]["order_id"])
    assert form["off_session"] == "true" and form["confirm"] == "true" and form["payment_method"] == "pm_card_visa"
    ro = shop.get(f"{API}/orders/{ra['metadata']['order_id']}", headers=ha).json()
    assert ro["kind"] == "plan" and ro["plan"] == "pro" and ro["total"] == 19900
    assert sub(shop, ha)["renewal"] == "pending"
    assert hook(shop, paid_event(ra)).status_code == 200
    sa = sub(shop, ha)
    assert sa["plan"] == "pro" and sa["current_period_start"] == end_a and sa["renewal"] is None
    assert [g for g in grants(shop, ha) if g[0].startswith("plan:")] == \
        sorted([(f"plan:{oa['id']}", 1000), (f"plan:{ro['id']}", 1000)])
    # D: the renewal paid ahead, then refunded before its period: the first period runs to its end
    end_d = sub(shop, hd)["current_period_end"]
    rd = wait_for(lambda: renewal_of(idd), "D's renewal")
    rdo = shop.get(f"{API}/orders/{rd['metadata']['order_id']}", headers=hd).json()
    assert hook(shop, paid_event(rd)).status_code == 200
    assert sub(shop, hd)["current_period_start"] == end_d
    assert hook(shop, refunded_event(rd, rdo)).json()["outcome"] == "refunded"
    sd = sub(shop, hd)
    assert sd["plan"] == "pro" and sd["current_period_end"] == end_d and sd["renewal"] == "refunded"
    assert shop.get(f"{API}/credits/balance", headers=hd).json()["balance"] == 1050
    # B: the declined renewal is marked, and the plan ends at period end
    wait_for(lambda: sub(shop, hb)["renewal"] == "failed", "B's failed renewal")
    sb = wait_for(lambda: (lambda x: x if x["plan"] == "free" else None)(sub(shop, hb)), "B's plan to end")
    assert sb["ended_reason"] == "renewal_failed" and sb["current_period_end"] is None
    # C: no renewal was charged, the plan ends at period end
    sc = wait_for(lambda: (lambda x: x if x["plan"] == "free" else None)(sub(shop, hc)), "C's plan to end")
    assert sc["ended_reason"] == "cancelled" and renewal_of(ic) is None
    sd = wait_for(lambda: (lambda x: x if x["plan"] == "free" else None)(sub(shop, hd)), "D's plan to end")
    assert sd["ended_reason"] == "refunded" and sd["renewal"] is None
    # A's first period is over by now: the paid renewal keeps the plan
    assert sub(shop, ha)["plan"] == "pro"
    # credits granted stay granted; every balance is explained by the ledger
    assert shop.get(f"{API}/credits/balance", headers=hb).json()["balance"] == 1050
    p = run_cli("ledger", "verify", db_url=shop.db_url)
    assert p.returncode == 0, p.stdout_text + p.stderr_text
