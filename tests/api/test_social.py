"""Social publishing (API.md §10, issue 12 item 5) through the real server, its job queue and its
outbound HTTP client, against local stand-ins that check Mastodon's and X API v2's wire formats:
accounts with sealed tokens, posts, scheduling, retries with backoff, the dead letter, analytics."""
import time
import uuid

import pytest

from conftest import assert_problem, new_user_headers
from delivery_util import wait_for
from marketing_util import API, admin, module_server
from social_util import SocialStandIn

MASTO_TOKEN = "masto-" + uuid.uuid4().hex
X_TOKEN = "x-user-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def net():
    with SocialStandIn([MASTO_TOKEN, X_TOKEN]) as s:
        yield s


@pytest.fixture(scope="module")
def srv(db_factory, net):
    with module_server(db_factory, TEMEL_SOCIAL_X_URL=net.url, TEMEL_OUTBOUND_ALLOW="127.0.0.1",
                       TEMEL_SOCIAL_MAX_ATTEMPTS=3, TEMEL_JOB_POLL_MS=50, TEMEL_JOB_BACKOFF_MS=50) as s:
        yield s


def account(s, h, net, network="mastodon", token=None):
    body = {"network": network, "name": f"{network} hesabı", "access_token": token or
            (MASTO_TOKEN if network == "mastodon" else X_TOKEN)}
    if network == "mastodon":
        body["instance_url"] = net.url
    r = s.post(f"{API}/social/accounts", json=body, headers=h)
    assert r.status_code == 201, r.text
    return r.json()


def now_iso(delta=0):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + delta))


def post(s, h, acc, text="Merhaba dünya — çğıöşü", **kw):
    r = s.post(f"{API}/social/posts", json={"account_id": acc["id"], "text": text, **kw}, headers=h)
    assert r.status_code == 201, r.text
    return r.json()


def wait_post(s, h, pid, status):
    def check():
        p = s.get(f"{API}/social/posts/{pid}", headers=h).json()
        return p if p["status"] == status else None
    return wait_for(check, what=f"post {pid} {status}")


def test_accounts_keep_tokens_sealed_and_private(srv, net, db_factory):
    h, _ = new_user_headers(srv)
    other, _ = new_user_headers(srv)
    acc = account(srv, h, net)
    assert acc["network"] == "mastodon" and acc["token_hint"] == "…" + MASTO_TOKEN[-4:]
    assert "access_token" not in acc and "token_sealed" not in acc
    row = db_factory.query(srv.db_url, "SELECT token_sealed FROM social_accounts WHERE id = ?", (acc["id"],))[0]
    assert MASTO_TOKEN not in row[0] and MASTO_TOKEN.encode().hex() not in row[0] and len(row[0]) > 80
    assert_problem(srv.get(f"{API}/social/accounts/{acc['id']}", headers=other), 404)
    assert_problem(srv.patch(f"{API}/social/accounts/{acc['id']}", json={"name": "x"}, headers=other), 404)
    assert_problem(srv.delete(f"{API}/social/accounts/{acc['id']}", headers=other), 404)
    assert_problem(srv.post(f"{API}/social/posts", json={"account_id": acc["id"], "text": "hi"}, headers=other),
                   422)
    assert acc["id"] not in [a["id"] for a in srv.get(f"{API}/social/accounts", headers=other).json()["data"]]
    # bad input: 422 naming the field, nothing written
    for body, field in [({"network": "myspace", "name": "n", "access_token": "t" * 20}, "network"),
                        ({"network": "mastodon", "name": "n", "access_token": "t" * 20}, "instance_url"),
                        ({"network": "x", "name": "n", "access_token": "t" * 20, "instance_url": net.url},
                         "instance_url"),
                        ({"network": "x", "name": "n", "access_token": "has space inside"}, "access_token"),
                        ({"network": "x", "name": "n", "access_token": "t" * 20, "owner_id": "me"}, "owner_id")]:
        r = srv.post(f"{API}/social/accounts", json=body, headers=h)
        assert_problem(r, 422)
        assert field in [e["field"] for e in r.json()["errors"]], r.text
    # rotate the token; lists follow API.md §1
    r = srv.patch(f"{API}/social/accounts/{acc['id']}", json={"access_token": "rotated-token-0123456789"},
                  headers=h)
    assert r.status_code == 200 and r.json()["token_hint"] == "…6789"
    lst = srv.get(f"{API}/social/accounts", params={"network": "mastodon", "sort": "name:asc"}, headers=h).json()
    assert lst["meta"]["total"] == 1
    assert_problem(srv.get(f"{API}/social/accounts", params={"token_sealed": "x"}, headers=h), 422)
    # staff see it, and what they do is audited
    adm = admin(srv)
    assert srv.get(f"{API}/social/accounts/{acc['id']}", headers=adm).status_code == 200
    assert srv.patch(f"{API}/social/accounts/{acc['id']}", json={"name": "moderated"}, headers=adm).status_code == 200
    logs = srv.get(f"{API}/admin/audit-logs", params={"action": "social_account.update"}, headers=adm).json()
    assert any(e["target_id"] == acc["id"] for e in logs["data"])


def test_mastodon_wire_format_and_network_id(srv, net):
    h, _ = new_user_headers(srv)
    acc = account(srv, h, net)
    p = post(srv, h, acc, media=["https://cdn.example.com/a.jpg"])
    assert p["status"] == "draft"
    before = len(net.requests)
    r = srv.post(f"{API}/social/posts/{p['id']}/schedule", json={"at": now_iso()}, headers=h)
    assert r.status_code == 202 and r.json()["status"] == "scheduled", r.text
    done = wait_post(srv, h, p["id"], "published")
    reqs = [q for q in net.requests[before:] if q[0] == "mastodon"]
    assert len(reqs) == 1
    _, path, hdrs, body = reqs[0]
    assert hdrs["authorization"] == f"Bearer {MASTO_TOKEN}" and hdrs["idempotency-key"] == p["id"]
    assert body == {"status": "Merhaba dünya — çğıöşü\nhttps://cdn.example.com/a.jpg", "visibility": "public"}
    st = net.idem[p["id"]]
    assert done["network_post_id"] == st["id"] and done["network_url"] == st["url"]
    assert done["attempts"] == 1 and done["published_at"] and done["last_error"] is None
    assert_problem(srv.post(f"{API}/social/posts/{p['id']}/schedule", json={"at": now_iso()}, headers=h), 409)


def test_x_wire_format_and_length(srv, net):
    h, _ = new_user_headers(srv)
    acc = account(srv, h, net, "x")
    assert_problem(srv.post(f"{API}/social/posts", json={"account_id": acc["id"], "text": "a" * 281}, headers=h),
                   422)
    before = len(net.requests)
    p = post(srv, h, acc, text="X'e merhaba", at=now_iso())
    assert p["status"] == "scheduled"
    done = wait_post(srv, h, p["id"], "published")
    reqs = [q for q in net.requests[before:] if q[0] == "x"]
    assert len(reqs) == 1
    _, path, hdrs, body = reqs[0]
    assert path == "/2/tweets" and hdrs["authorization"] == f"Bearer {X_TOKEN}" and body == {"text": "X'e merhaba"}
    assert "idempotency-key" not in hdrs
    assert done["network_post_id"] == [i for n, i, t in net.published if t == "X'e merhaba"][0]
    assert done["network_url"] == f"https://x.com/i/web/status/{done['network_post_id']}"


def test_retries_with_backoff_then_publishes(srv, net):
    h, _ = new_user_headers(srv)
    acc = account(srv, h, net)
    net.fail_next.extend([503, 429])
    p = post(srv, h, acc, text="üçüncüde olur", at=now_iso())
    done = wait_post(srv, h, p["id"], "published")
    assert done["attempts"] == 3
    # the same Idempotency-Key on every attempt: one status at the network
    assert [t for n, i, t in net.published].count("üçüncüde olur") == 1


def test_dead_letter_after_the_last_attempt_and_permanent_refusals(srv, net):
    h, _ = new_user_headers(srv)
    acc = account(srv, h, net)
    net.fail_next.extend([503, 503, 503])
    p = post(srv, h, acc, text="hiç olmayacak", at=now_iso())
    dead = wait_post(srv, h, p["id"], "failed")
    assert dead["attempts"] == 3 and "503" in dead["last_error"]
    # a token the network refuses: failed at once, no retry
    bad = account(srv, h, net, "x", token="revoked-token-00000000")
    q = post(srv, h, bad, text="401", at=now_iso())
    failed = wait_post(srv, h, q["id"], "failed")
    assert failed["attempts"] == 1 and "401" in failed["last_error"]
    # a failed post can be scheduled again
    r = srv.post(f"{API}/social/posts/{p['id']}/schedule", json={"at": now_iso()}, headers=h)
    assert r.status_code == 202
    again = wait_post(srv, h, p["id"], "published")
    assert again["attempts"] == 1


def test_schedule_later_delete_and_validation(srv, net):
    h, _ = new_user_headers(srv)
    acc = account(srv, h, net)
    p = post(srv, h, acc, text="silinecek")
    for at in ("yesterday", "2001-01-01T00:00:00Z", now_iso(400 * 86400)):
        assert_problem(srv.post(f"{API}/social/posts/{p['id']}/schedule", json={"at": at}, headers=h), 422)
    r = srv.post(f"{API}/social/posts/{p['id']}/schedule", json={"at": now_iso(1)}, headers=h)
    assert r.status_code == 202
    assert srv.delete(f"{API}/social/posts/{p['id']}", headers=h).status_code == 204
    later = post(srv, h, acc, text="iki saniye sonra", at=now_iso(2))
    wait_post(srv, h, later["id"], "published")
    assert "silinecek" not in [t for n, i, t in net.published]
    bad = srv.post(f"{API}/social/posts", json={"account_id": acc["id"], "text": "x", "media": ["ftp://a/b"]},
                   headers=h)
    assert_problem(bad, 422)
    too_many = srv.post(f"{API}/social/posts", json={"account_id": acc["id"], "text": "x",
                                                     "media": [f"https://c.example/{i}" for i in range(5)]},
                        headers=h)
    assert_problem(too_many, 422)


def test_analytics(srv, net):
    h, _ = new_user_headers(srv)
    m = account(srv, h, net)
    x = account(srv, h, net, "x")
    for t in ("bir", "iki"):
        wait_post(srv, h, post(srv, h, m, text=t, at=now_iso())["id"], "published")
    wait_post(srv, h, post(srv, h, x, text="üç", at=now_iso())["id"], "published")
    post(srv, h, x, text="taslak")
    a = srv.get(f"{API}/social/analytics", headers=h).json()
    assert a["posts"] == 4 and a["by_status"] == {"draft": 1, "scheduled": 0, "published": 3, "failed": 0}
    assert a["by_network"] == {"mastodon": {"published": 2}, "x": {"draft": 1, "published": 1}}
    assert {(r["network"], r["published"]) for r in a["accounts"]} == {("mastodon", 2), ("x", 1)}
    assert sum(d["published"] for d in a["published_per_day"]) == 3 and a["success_rate"] == 1.0
    one = srv.get(f"{API}/social/analytics", params={"account_id": x["id"]}, headers=h).json()
    assert one["posts"] == 2
    assert_problem(srv.get(f"{API}/social/analytics", params={"owner": "x"}, headers=h), 422)
    assert_problem(srv.get(f"{API}/social/analytics", params={"days": "0"}, headers=h), 422)
    other, _ = new_user_headers(srv)
    assert srv.get(f"{API}/social/analytics", headers=other).json()["posts"] == 0
    page = srv.get(f"{API}/social/posts", params={"status": "published", "sort": "published_at:desc", "limit": 2},
                   headers=h).json()
    assert page["meta"]["total"] == 3 and len(page["data"]) == 2
