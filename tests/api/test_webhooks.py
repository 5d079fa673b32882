"""Outbound webhooks (API.md §12, issue 14 item 5): admin CRUD, events enqueued in the transaction of
the change (user.created, order.paid, ai.job.finished), delivery through the outbound client with
Temel-Signature, retries with backoff, the delivery log with status codes, redelivery by hand, the
SSRF guard, and audit entries. A local receiver (webhooks_util.Receiver) checks every signature."""
import json
import time
import uuid

import pytest

from catalog_util import API, mk, new_category, new_product
from conftest import assert_problem, error_fields, new_user_headers, serve_module
from test_ai import fake  # noqa: F401 (the module-scoped fake AI provider fixture)
from webhooks_util import Receiver, verify_signature
import test_ai_support as S

SECRET = "a shared secret of enough length"
MISSING = "01900000-0000-7000-8000-000000000000"


@pytest.fixture(scope="module")
def rcv():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def srv(db_factory):
    yield from serve_module(db_factory, S.start_ai_server(db_factory, TEMEL_WEBHOOK_MAX_ATTEMPTS="3"))


@pytest.fixture(scope="module")
def adm(srv):
    return S.admin(srv)


def hook(srv, adm, rcv, path, events, **extra):
    body = {"url": rcv.url(path), "events": events, "secret": SECRET}
    body.update(extra)
    r = srv.post("/api/v1/webhooks", json=body, headers=adm)
    assert r.status_code == 201, r.text
    return r.json()


def deliveries(srv, adm, hook_id, **params):
    r = srv.get(f"/api/v1/webhooks/{hook_id}/deliveries", params=params, headers=adm)
    assert r.status_code == 200, r.text
    return r.json()


def wait_deliveries(srv, adm, hook_id, pred, timeout=30.0):
    deadline = time.monotonic() + timeout
    while True:
        d = deliveries(srv, adm, hook_id)["data"]
        if pred(d) or time.monotonic() > deadline:
            return d
        time.sleep(0.05)


def final(d):
    return d and all(x["state"] in ("succeeded", "failed") for x in d)


def signed_ok(req, secret=SECRET):
    return verify_signature(secret, req["headers"]["temel-signature"], req["body"])


def test_crud_validation_and_audit(srv, adm, rcv):
    r = srv.post("/api/v1/webhooks", json={"url": rcv.url("/crud"), "events": ["user.created"]}, headers=adm)
    assert r.status_code == 201, r.text
    h = r.json()
    assert h["secret"].startswith("whsec_") and len(h["secret"]) > 20  # generated, answered once
    assert r.headers["Location"] == f"/api/v1/webhooks/{h['id']}"
    assert h["events"] == ["user.created"] and h["active"] is True
    g = srv.get(f"/api/v1/webhooks/{h['id']}", headers=adm)
    assert g.status_code == 200 and "secret" not in g.json()
    etag = g.headers["ETag"]
    listed = srv.get("/api/v1/webhooks", params={"limit": 100}, headers=adm).json()
    assert set(listed["meta"]) == {"total", "page", "limit", "pages"}
    assert h["id"] in [x["id"] for x in listed["data"]]
    assert all("secret" not in x for x in listed["data"])
    # PATCH with the current ETag, then the stale one is 412
    p = srv.patch(f"/api/v1/webhooks/{h['id']}", json={"events": ["user.created", "order.paid"], "active": False},
                  headers={**adm, "If-Match": etag})
    assert p.status_code == 200, p.text
    assert p.json()["events"] == ["user.created", "order.paid"] and p.json()["active"] is False
    assert "secret" not in p.json()
    assert_problem(srv.patch(f"/api/v1/webhooks/{h['id']}", json={"active": True},
                             headers={**adm, "If-Match": etag}), 412, "PRECONDITION_FAILED")
    # bad input: 422 naming the field, nothing written
    n0 = srv.get("/api/v1/webhooks", headers=adm).json()["meta"]["total"]
    for body, field in (({"url": "ftp://example.com/x", "events": ["user.created"]}, "url"),
                        ({"url": "not a url at all", "events": ["user.created"]}, "url"),
                        ({"url": "http://user:pw@example.com/x", "events": ["user.created"]}, "url"),
                        ({"url": "http://10.1.2.3/x", "events": ["user.created"]}, "url"),
                        ({"url": "http://169.254.169.254/latest", "events": ["user.created"]}, "url"),
                        ({"url": "http://[::1]:9/x", "events": ["user.created"]}, "url"),
                        ({"url": "https://example.com/x", "events": ["user.deleted"]}, "events"),
                        ({"url": "https://example.com/x", "events": []}, "events"),
                        ({"url": "https://example.com/x", "events": ["order.paid", "order.paid"]}, "events"),
                        ({"url": "https://example.com/x", "events": ["order.paid"], "secret": "short"}, "secret"),
                        ({"url": "https://example.com/x", "events": ["order.paid"], "owner": "x"}, "owner")):
        b = assert_problem(srv.post("/api/v1/webhooks", json=body, headers=adm), 422, "VALIDATION_ERROR")
        assert field in error_fields(b), (body, b)
    assert srv.get("/api/v1/webhooks", headers=adm).json()["meta"]["total"] == n0
    # admin only; a missing one is 404
    user, _ = new_user_headers(srv)
    assert_problem(srv.get("/api/v1/webhooks", headers=user), 403, "FORBIDDEN")
    assert_problem(srv.post("/api/v1/webhooks", json={"url": rcv.url(), "events": ["order.paid"]}), 401)
    assert_problem(srv.get(f"/api/v1/webhooks/{MISSING}", headers=adm), 404, "NOT_FOUND")
    assert_problem(srv.get(f"/api/v1/webhooks/{MISSING}/deliveries", headers=adm), 404, "NOT_FOUND")
    assert srv.delete(f"/api/v1/webhooks/{h['id']}", headers=adm).status_code == 204
    assert_problem(srv.get(f"/api/v1/webhooks/{h['id']}", headers=adm), 404)
    assert_problem(srv.delete(f"/api/v1/webhooks/{h['id']}", headers=adm), 404)
    # every change audited, and the secret never in an audit entry
    logs = srv.get("/api/v1/admin/audit-logs", params={"category": "webhooks", "limit": 100}, headers=adm)
    assert logs.status_code == 200, logs.text
    mine = [e for e in logs.json()["data"] if e["target_id"] == h["id"]]
    assert sorted(e["action"] for e in mine) == ["webhook.create", "webhook.delete", "webhook.update"]
    assert h["secret"] not in logs.text and SECRET not in logs.text


def test_user_created_is_delivered_signed(srv, adm, rcv):
    h = hook(srv, adm, rcv, "/users", ["user.created"])
    _, u = new_user_headers(srv, "hooked")
    got = rcv.wait(lambda g: any(json.loads(x["body"])["data"]["id"] == u["id"] for x in g if x["path"] == "/users"))
    req = [x for x in got if x["path"] == "/users" and json.loads(x["body"])["data"]["id"] == u["id"]][0]
    assert signed_ok(req)
    assert not verify_signature("another secret entirely!", req["headers"]["temel-signature"], req["body"])
    ev = json.loads(req["body"])
    assert ev["type"] == "user.created" and req["headers"]["temel-event"] == "user.created"
    assert ev["data"]["email"] == u["email"] and ev["data"]["role"] == "user"
    assert req["headers"]["content-type"] == "application/json"
    d = wait_deliveries(srv, adm, h["id"], lambda d: any(x["state"] == "succeeded" for x in d))
    mine = [x for x in d if x["id"] == req["headers"]["temel-delivery"]][0]
    assert mine["state"] == "succeeded" and mine["response_status"] == 200 and mine["attempts"] == 1
    assert mine["event_id"] == ev["id"] and mine["payload"] == ev
    # a registration that changes nothing (taken address: 202) emits nothing
    n = len(rcv.for_path("/users"))
    r = srv.post("/api/v1/auth/register", json={"email": u["email"], "password": "another good password 9",
                                                "name": "dup"})
    assert r.status_code == 202, r.text
    _, u2 = new_user_headers(srv, "second")  # a later event proves the queue moved past the duplicate
    rcv.wait(lambda g: any(json.loads(x["body"])["data"]["id"] == u2["id"] for x in g if x["path"] == "/users"))
    assert len(rcv.for_path("/users")) == n + 1


def test_retries_with_backoff_then_success(srv, adm, rcv):
    h = hook(srv, adm, rcv, "/flaky", ["user.created"])
    with rcv.lock:
        rcv.plan["/flaky"] = [500, 503]  # the next two answers fail, the third succeeds
    new_user_headers(srv, "flaky")
    d = wait_deliveries(srv, adm, h["id"], lambda d: final(d))
    assert len(d) == 1 and d[0]["state"] == "succeeded", d
    assert d[0]["attempts"] == 3 and d[0]["response_status"] == 200
    got = rcv.for_path("/flaky")
    assert [g["status"] for g in got] == [500, 503, 200]
    assert len({g["headers"]["temel-delivery"] for g in got}) == 1
    assert all(signed_ok(g) for g in got)


def test_permanent_failure_logged_then_redelivered(srv, adm, rcv):
    h = hook(srv, adm, rcv, "/gone", ["user.created"])
    with rcv.lock:
        rcv.plan["/gone"] = [410]
    new_user_headers(srv, "gone")
    d = wait_deliveries(srv, adm, h["id"], lambda d: final(d))
    assert d[0]["state"] == "failed" and d[0]["response_status"] == 410 and d[0]["attempts"] == 1, d
    assert "410" in d[0]["error"]
    failed = deliveries(srv, adm, h["id"], state="failed")
    assert [x["id"] for x in failed["data"]] == [d[0]["id"]]
    assert deliveries(srv, adm, h["id"], state="succeeded")["meta"]["total"] == 0
    assert_problem(srv.get(f"/api/v1/webhooks/{h['id']}/deliveries", params={"state": "lost"}, headers=adm), 422)
    # by hand: a new delivery of the same event
    r = srv.post(f"/api/v1/webhooks/{h['id']}/deliveries/{d[0]['id']}/redeliver", headers=adm)
    assert r.status_code == 202, r.text
    again = r.json()
    assert again["redelivery_of"] == d[0]["id"] and again["event_id"] == d[0]["event_id"]
    d2 = wait_deliveries(srv, adm, h["id"], lambda d: len(d) == 2 and final(d))
    new = [x for x in d2 if x["id"] == again["id"]][0]
    assert new["state"] == "succeeded" and new["response_status"] == 200
    got = rcv.for_path("/gone")
    assert [g["status"] for g in got] == [410, 200]
    assert json.loads(got[0]["body"]) == json.loads(got[1]["body"])  # the same event, re-signed
    assert all(signed_ok(g) for g in got)
    assert_problem(srv.post(f"/api/v1/webhooks/{h['id']}/deliveries/{MISSING}/redeliver", headers=adm), 404)
    logs = srv.get("/api/v1/admin/audit-logs", params={"category": "webhooks", "limit": 100}, headers=adm).json()
    assert any(e["action"] == "webhook.redeliver" and e["target_id"] == h["id"] for e in logs["data"])


def test_disabled_and_unsubscribed_endpoints_get_nothing(srv, adm, rcv):
    off = hook(srv, adm, rcv, "/off", ["user.created"], active=False)
    other = hook(srv, adm, rcv, "/other", ["order.paid"])
    on = hook(srv, adm, rcv, "/on", ["user.created"])
    _, u = new_user_headers(srv, "sub")
    rcv.wait(lambda g: any(json.loads(x["body"])["data"]["id"] == u["id"] for x in g if x["path"] == "/on"))
    assert deliveries(srv, adm, off["id"])["meta"]["total"] == 0
    assert deliveries(srv, adm, other["id"])["meta"]["total"] == 0
    for x in (off, other, on):
        assert srv.delete(f"/api/v1/webhooks/{x['id']}", headers=adm).status_code == 204


def test_order_paid(srv, adm, rcv):
    h = hook(srv, adm, rcv, "/orders", ["order.paid"])
    cat = new_category(srv, adm)
    p = new_product(srv, adm, cat["slug"], price=1250, stock=5)
    uh, u = new_user_headers(srv, "buyer")
    assert srv.post(f"{API}/me/cart", json={"product_id": p["id"], "quantity": 2}, headers=uh).status_code in (200, 201)
    aid = mk(srv, uh, "/me/addresses", {"full_name": "Ada", "line1": "Cd. 1", "city": "İzmir"})["id"]
    o = srv.post(f"{API}/orders", json={"address_id": aid}, headers=uh)
    assert o.status_code == 201, o.text
    oid = o.json()["id"]
    # a refused transition commits nothing and emits nothing
    assert_problem(srv.patch(f"{API}/orders/{oid}", json={"status": "shipped"}, headers=adm), 409)
    assert srv.patch(f"{API}/orders/{oid}", json={"status": "paid"}, headers=adm).status_code == 200
    got = rcv.wait(lambda g: any(x["path"] == "/orders" for x in g))
    req = [x for x in got if x["path"] == "/orders"][0]
    ev = json.loads(req["body"])
    assert ev["type"] == "order.paid" and signed_ok(req)
    assert ev["data"]["id"] == oid and ev["data"]["user_id"] == u["id"] and ev["data"]["total"] == 2500
    d = wait_deliveries(srv, adm, h["id"], final)
    assert [x["event"] for x in d] == ["order.paid"]


def test_ai_job_finished(srv, adm, rcv, fake):
    h = hook(srv, adm, rcv, "/ai", ["ai.job.finished"])
    S.setup_providers(srv, fake, adm)
    uh, u = new_user_headers(srv, "aiuser")
    S.grant(srv, adm, u["id"], 100)
    r = S.submit(srv, uh, inp=f"webhook {uuid.uuid4()}")
    assert r.status_code == 202, r.text
    jid = r.json()["job_id"]
    assert S.wait_job(srv, uh, jid)["status"] == "succeeded"
    got = rcv.wait(lambda g: any(x["path"] == "/ai" for x in g))
    ev = json.loads([x for x in got if x["path"] == "/ai"][0]["body"])
    assert ev["type"] == "ai.job.finished"
    assert ev["data"]["id"] == jid and ev["data"]["status"] == "succeeded" and ev["data"]["user_id"] == u["id"]
    assert all(signed_ok(x) for x in got if x["path"] == "/ai")


def test_ssrf_guard_at_delivery(db_factory, rcv):
    """Without TEMEL_OUTBOUND_ALLOW a host name that resolves to loopback is refused when delivering
    (the create-time check sees only IP literals), and the log says so."""
    s = S.start_ai_server(db_factory, TEMEL_OUTBOUND_ALLOW=None)
    try:
        a = S.admin(s)
        r = s.post("/api/v1/webhooks", json={"url": f"http://localhost:{rcv.port}/ssrf",
                                             "events": ["user.created"], "secret": SECRET}, headers=a)
        assert r.status_code == 201, r.text
        new_user_headers(s, "ssrf")
        d = wait_deliveries(s, a, r.json()["id"], final)
        assert d[0]["state"] == "failed" and d[0]["response_status"] is None, d
        assert "refused" in d[0]["error"] and "loopback" in d[0]["error"]
        assert rcv.for_path("/ssrf") == []
    finally:
        assert s.stop() == 0
        s.cleanup()
        db_factory.drop(s.db_url)


def test_ticket_created(srv, adm, rcv):
    """ticket.created follows the creation of a support ticket (the "tickets" resource) in its transaction."""
    h = hook(srv, adm, rcv, "/tickets", ["ticket.created"])
    uh, u = new_user_headers(srv, "ticketer")
    r = srv.post("/api/v1/tickets", json={"subject": "The printer is on fire"}, headers=uh)
    assert r.status_code == 201, r.text
    bad = srv.post("/api/v1/tickets", json={"subject": ""}, headers=uh)  # refused: commits nothing, emits nothing
    assert bad.status_code == 422
    got = rcv.wait(lambda g: any(x["path"] == "/tickets" for x in g))
    reqs = [x for x in got if x["path"] == "/tickets"]
    ev = json.loads(reqs[0]["body"])
    assert ev["type"] == "ticket.created" and signed_ok(reqs[0])
    assert ev["data"]["id"] == r.json()["id"] and ev["data"]["subject"] == "The printer is on fire"
    assert ev["data"]["user_id"] == u["id"]
    d = wait_deliveries(srv, adm, h["id"], final)
    assert [x["event"] for x in d] == ["ticket.created"] and d[0]["state"] == "succeeded"
