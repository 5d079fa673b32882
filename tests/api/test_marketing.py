"""Email marketing (API.md §10, issue 12 item 3) through the real server and a real SMTP sink:
lists and ownership, bulk import with dedupe, double opt-in, campaigns sent by a job through
SMTP, open/click/unsubscribe tracking, bounces, scheduling, and a crash in the middle of a send."""
import collections
import re
import time
import uuid

import pytest

from conftest import assert_problem, login_headers, new_user_headers
from delivery_util import SmtpSink, wait_for
from marketing_util import API, admin, html_of, module_server, parse, path_of, text_of


@pytest.fixture(scope="module")
def smtp():
    with SmtpSink() as s:
        yield s


@pytest.fixture(scope="module")
def srv(db_factory, smtp):
    with module_server(db_factory, TEMEL_MAIL_URL=smtp.url, TEMEL_MAIL_FROM="News <news@temel.test>",
                       TEMEL_MARKETING_BASE_URL="https://mail.temel.test", TEMEL_MARKETING_DOMAIN_RATE=0,
                       TEMEL_JOB_POLL_MS=50, TEMEL_JOB_BACKOFF_MS=50) as s:
        yield s


def dom():
    return f"{uuid.uuid4().hex[:8]}.example.org"


def new_list(s, h, **kw):
    body = {"name": "Bülten", "double_opt_in": False}
    body.update(kw)
    r = s.post(f"{API}/email-lists", json=body, headers=h)
    assert r.status_code == 201, r.text
    return r.json()


def add(s, h, lid, subs, status=200, **kw):
    r = s.post(f"{API}/email-lists/{lid}/subscribers", json={"subscribers": subs, **kw}, headers=h)
    assert r.status_code == status, r.text
    return r.json()


def new_campaign(s, h, lid, **kw):
    body = {"list_id": lid, "name": "Kasım", "subject": "Merhaba {{name}}",
            "text": "Merhaba {{name}}\nÇıkış: {{unsubscribe_url}}\n",
            "html": '<p>Merhaba {{name}}</p><a href="https://shop.example.com/a?x=1&amp;y=2">A</a> '
                    '<a href="https://shop.example.com/b">B</a> <a href="mailto:x@example.com">m</a>'}
    body.update(kw)
    r = s.post(f"{API}/campaigns", json=body, headers=h)
    assert r.status_code == 201, r.text
    return r.json()


def msgs_to(smtp, addrs):
    addrs = {a.lower() for a in addrs}
    return [(rc, parse(c)) for _, rcpts, c in list(smtp.messages) for rc in rcpts if rc.lower() in addrs]


def wait_status(s, h, cid, status):
    try:
        return wait_for(lambda: s.get(f"{API}/campaigns/{cid}", headers=h).json()["status"] == status,
                        what=f"campaign {cid} {status}")
    except AssertionError:
        tail = [ln for ln in s.log_text().splitlines() if '"msg":"request"' not in ln][-20:]
        raise AssertionError(f"campaign {cid} never became {status}\n" + "\n".join(tail))


def test_lists_belong_to_their_owner_and_staff_actions_are_audited(srv):
    a, _ = new_user_headers(srv)
    b, _ = new_user_headers(srv)
    lst = new_list(srv, a)
    assert srv.get(f"{API}/email-lists/{lst['id']}", headers=a).status_code == 200
    assert_problem(srv.get(f"{API}/email-lists/{lst['id']}", headers=b), 404)
    assert_problem(srv.post(f"{API}/email-lists/{lst['id']}/subscribers",
                            json={"subscribers": [{"email": "x@example.com"}]}, headers=b), 404)
    assert_problem(srv.post(f"{API}/campaigns", json={"list_id": lst["id"], "name": "n", "subject": "s",
                                                      "text": "t"}, headers=b), 422)
    assert lst["id"] not in [x["id"] for x in srv.get(f"{API}/email-lists", headers=b).json()["data"]]
    assert_problem(srv.post(f"{API}/email-lists", json={"name": "x", "owner_id": "me"}, headers=a), 422)
    assert_problem(srv.post(f"{API}/email-lists", json={"name": "x"}), 401)
    # staff see and act on it; the action is in the audit chain
    adm = admin(srv)
    add(srv, adm, lst["id"], [{"email": "staff-added@example.com"}])
    logs = srv.get(f"{API}/admin/audit-logs", params={"action": "email_list.import"}, headers=adm).json()["data"]
    assert any(e["target_id"] == lst["id"] for e in logs)
    # lists follow API.md §1
    r = srv.get(f"{API}/email-lists", params={"sort": "name:asc", "limit": 1, "name[like]": "bül"}, headers=a)
    assert r.status_code == 200 and r.json()["meta"]["total"] == 1, r.text
    assert_problem(srv.get(f"{API}/email-lists", params={"colour": "red"}, headers=a), 422)


def test_bulk_import_of_10000_dedupes_by_normalised_address(srv):
    h, _ = new_user_headers(srv)
    lst = new_list(srv, h)
    d = dom()
    subs = [{"email": f"u{i}@{d}", "name": f"Kullanıcı {i}"} for i in range(9990)]
    subs += [{"email": f"  U{i}@{d.upper()} "} for i in range(10)]  # the same ten, written differently
    t0 = time.monotonic()
    out = add(srv, h, lst["id"], subs)
    print(f"\nimport of {len(subs)} subscribers: {(time.monotonic() - t0) * 1000:.0f} ms")
    assert out == {"received": 10000, "imported": 9990, "duplicates": 10, "status": "active"}
    again = add(srv, h, lst["id"], subs[:5] + [{"email": f"new@{d}"}])
    assert again["imported"] == 1 and again["duplicates"] == 5
    page = srv.get(f"{API}/email-lists/{lst['id']}/subscribers", params={"email": f"u7@{d}"}, headers=h).json()
    assert page["meta"]["total"] == 1 and page["data"][0]["status"] == "active"
    assert page["data"][0]["name"] == "Kullanıcı 7"
    total = srv.get(f"{API}/email-lists/{lst['id']}/subscribers", params={"limit": 1}, headers=h).json()
    assert total["meta"]["total"] == 9991
    # the bound: 10,000 per request, one more is refused; a bad address refuses the whole import
    over = [{"email": f"o{i}@{d}"} for i in range(10001)]
    assert_problem(srv.post(f"{API}/email-lists/{lst['id']}/subscribers", json={"subscribers": over}, headers=h),
                   422)
    bad = add(srv, h, lst["id"], [{"email": f"fine@{d}"}, {"email": "not an address"},
                                  {"email": f"x@{d}", "role": "admin"}], status=422)
    fields = {e["field"] for e in bad["errors"]}
    assert fields == {"subscribers[1].email", "subscribers[2].role"}, bad
    r = srv.get(f"{API}/email-lists/{lst['id']}/subscribers", params={"email": f"fine@{d}"}, headers=h).json()
    assert r["meta"]["total"] == 0


def test_double_opt_in_by_mail(srv, smtp):
    h, _ = new_user_headers(srv)
    lst = new_list(srv, h, double_opt_in=True, name="Etkinlikler & Duyurular")
    d = dom()
    out = add(srv, h, lst["id"], [{"email": f"ada@{d}", "name": "Ada"}])
    assert out["status"] == "pending"
    m = wait_for(lambda: msgs_to(smtp, [f"ada@{d}"]), what="confirmation mail")[0][1]
    assert "Etkinlikler & Duyurular" in str(m["Subject"])
    link = path_of(text_of(m), "/subscribe/confirm/")
    sub = srv.get(f"{API}/email-lists/{lst['id']}/subscribers", headers=h).json()["data"][0]
    assert sub["status"] == "pending" and sub["confirmed_at"] is None
    assert_problem(srv.get(link[:-2] + ("AA" if not link.endswith("AA") else "BB")), 404)
    r = srv.get(link)
    assert r.status_code == 200 and "confirmed" in r.text
    sub = srv.get(f"{API}/email-subscribers/{sub['id']}", headers=h).json()
    assert sub["status"] == "active" and sub["confirmed_at"]


def test_campaign_send_tracking_unsubscribe_and_stats(srv, smtp):
    h, _ = new_user_headers(srv)
    lst = new_list(srv, h)
    d = dom()
    addrs = [f"a@{d}", f"b@{d}", f"c@{d}"]
    add(srv, h, lst["id"], [{"email": addrs[0], "name": "<b>Ada & \"co\"</b>"}, {"email": addrs[1], "name": "Bora"},
                            {"email": addrs[2], "name": "Can"}])
    bad = srv.post(f"{API}/campaigns", json={"list_id": lst["id"], "name": "x", "subject": "Hi {{nmae}}",
                                             "text": "t"}, headers=h)
    assert_problem(bad, 422)
    c = new_campaign(srv, h, lst["id"])
    assert c["status"] == "draft"
    assert c["links"] == ["https://shop.example.com/a?x=1&y=2", "https://shop.example.com/b"]
    r = srv.post(f"{API}/campaigns/{c['id']}/send", headers=h)
    assert r.status_code == 202 and r.json()["status"] == "sending", r.text
    assert_problem(srv.post(f"{API}/campaigns/{c['id']}/send", headers=h), 409)
    assert_problem(srv.patch(f"{API}/campaigns/{c['id']}", json={"name": "y"}, headers=h), 409)
    wait_status(srv, h, c["id"], "sent")
    got = msgs_to(smtp, addrs)
    assert sorted(rc for rc, _ in got) == sorted(addrs)
    m = dict((rc, m) for rc, m in got)[addrs[0]]
    assert str(m["Subject"]) == 'Merhaba <b>Ada & "co"</b>'
    html = html_of(m)
    assert "&lt;b&gt;Ada &amp; &quot;co&quot;&lt;/b&gt;" in html and "<b>Ada" not in html
    assert "https://shop.example.com" not in html and "mailto:x@example.com" in html
    lu = m["List-Unsubscribe"]
    assert lu.startswith("<https://mail.temel.test/unsubscribe/") and lu.endswith(">")
    assert m["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # open pixel: a GIF, counted
    pixel = path_of(html, "/t/o/")
    for _ in range(2):
        r = srv.get(pixel)
        assert r.status_code == 200 and r.headers["Content-Type"] == "image/gif" and r.content[:6] == b"GIF89a"
    assert_problem(srv.get(pixel.replace(".gif", ".png")), 404)
    # clicks: only the campaign's own links, by a signed token
    clicks = re.findall(r'href="https://mail\.temel\.test(/t/c/[A-Za-z0-9_-]+)"', html)
    assert len(clicks) == 2
    r = srv.get(clicks[0], allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"] == "https://shop.example.com/a?x=1&y=2"
    r = srv.get(clicks[1], allow_redirects=False)
    assert r.status_code == 302 and r.headers["Location"] == "https://shop.example.com/b"
    tampered = clicks[0][:-3] + ("xyz" if not clicks[0].endswith("xyz") else "abc")
    assert_problem(srv.get(tampered, allow_redirects=False), 404)
    assert_problem(srv.get("/t/c/aHR0cHM6Ly9ldmlsLmV4YW1wbGU", allow_redirects=False), 404)
    # a token of another kind does not pass as a click
    assert_problem(srv.get("/t/c/" + pixel.split("/")[-1][:-4], allow_redirects=False), 404)
    # RFC 8058 one-click from b's header
    mb = dict((rc, m) for rc, m in got)[addrs[1]]
    unsub = path_of(mb["List-Unsubscribe"], "/unsubscribe/")
    r = srv.post(unsub, data="List-Unsubscribe=One-Click",
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200, r.text
    assert srv.post(unsub, data="List-Unsubscribe=One-Click").status_code == 200  # idempotent
    st = srv.get(f"{API}/campaigns/{c['id']}/stats", headers=h).json()
    assert {k: st[k] for k in ("recipients", "sent", "delivered", "opens", "unique_opens", "clicks",
                               "unique_clicks", "unsubscribes", "bounces")} == {
        "recipients": 3, "sent": 3, "delivered": 3, "opens": 2, "unique_opens": 1, "clicks": 2, "unique_clicks": 1,
        "unsubscribes": 1, "bounces": 0}
    assert st["rates"]["open"] == pytest.approx(1 / 3) and st["rates"]["delivery"] == 1.0
    rc = srv.get(f"{API}/campaigns/{c['id']}/recipients", params={"state": "sent", "limit": 2}, headers=h).json()
    assert rc["meta"]["total"] == 3 and len(rc["data"]) == 2 and rc["data"][0]["sent_at"]
    assert_problem(srv.get(f"{API}/campaigns/{c['id']}/recipients", params={"state": "lost"}, headers=h), 422)
    other, _ = new_user_headers(srv)
    assert_problem(srv.get(f"{API}/campaigns/{c['id']}/stats", headers=other), 404)
    assert_problem(srv.post(f"{API}/campaigns/{c['id']}/send", headers=other), 404)
    # the unsubscribed address is never mailed again, by any campaign of any list
    h2, _ = new_user_headers(srv)
    l2 = new_list(srv, h2)
    add(srv, h2, l2["id"], [{"email": addrs[1]}, {"email": addrs[2]}])
    c2 = new_campaign(srv, h2, l2["id"], html="")
    before = len(msgs_to(smtp, addrs))
    assert srv.post(f"{API}/campaigns/{c2['id']}/send", headers=h2).status_code == 202
    wait_status(srv, h2, c2["id"], "sent")
    after = msgs_to(smtp, addrs)[before:]
    assert [rc for rc, _ in after] == [addrs[2]]
    assert srv.get(f"{API}/campaigns/{c2['id']}/stats", headers=h2).json()["recipients"] == 1


def test_bounce_is_recorded_and_suppressed(srv, smtp):
    h, user = new_user_headers(srv)
    # the sink's next RCPT is refused: first let the sign-up mail pass, so the refusal hits the campaign
    wait_for(lambda: msgs_to(smtp, [user["email"]]), what="the sign-up mail")
    lst = new_list(srv, h)
    d = dom()
    add(srv, h, lst["id"], [{"email": f"gone@{d}"}])
    c = new_campaign(srv, h, lst["id"])
    smtp.rcpt_replies.append("550 5.1.1 no such user")
    assert srv.post(f"{API}/campaigns/{c['id']}/send", headers=h).status_code == 202
    wait_status(srv, h, c["id"], "sent")
    st = srv.get(f"{API}/campaigns/{c['id']}/stats", headers=h).json()
    assert (st["sent"], st["delivered"], st["bounces"], st["rates"]["bounce"]) == (1, 0, 1, 1.0)
    r = srv.get(f"{API}/campaigns/{c['id']}/recipients", headers=h).json()["data"][0]
    assert r["state"] == "bounced" and "550" in r["error"]
    sub = srv.get(f"{API}/email-lists/{lst['id']}/subscribers", headers=h).json()["data"][0]
    assert sub["status"] == "bounced"


def test_temporary_failure_is_deferred_then_sent(srv, smtp):
    """A 4xx at RCPT defers the recipient (the queue's backoff, TEMEL_JOB_BACKOFF_MS) instead of
    failing it; the next try delivers: one message, two attempts, the campaign finishes."""
    h, user = new_user_headers(srv)
    wait_for(lambda: msgs_to(smtp, [user["email"]]), what="the sign-up mail")
    lst = new_list(srv, h)
    d = dom()
    add(srv, h, lst["id"], [{"email": f"busy@{d}"}])
    c = new_campaign(srv, h, lst["id"])
    smtp.rcpt_replies.append("451 4.7.1 try again later")
    assert srv.post(f"{API}/campaigns/{c['id']}/send", headers=h).status_code == 202
    wait_status(srv, h, c["id"], "sent")
    r = srv.get(f"{API}/campaigns/{c['id']}/recipients", headers=h).json()["data"][0]
    assert (r["state"], r["attempts"], r["error"]) == ("sent", 2, None), r
    assert len(msgs_to(smtp, [f"busy@{d}"])) == 1
    st = srv.get(f"{API}/campaigns/{c['id']}/stats", headers=h).json()
    assert (st["delivered"], st["bounces"]) == (1, 0)


def test_schedule_and_cancel(srv, smtp):
    h, _ = new_user_headers(srv)
    lst = new_list(srv, h)
    d = dom()
    add(srv, h, lst["id"], [{"email": f"later@{d}"}])
    c = new_campaign(srv, h, lst["id"])
    assert_problem(srv.post(f"{API}/campaigns/{c['id']}/schedule", json={"at": "2001-01-01T00:00:00Z"},
                            headers=h), 422)
    assert_problem(srv.post(f"{API}/campaigns/{c['id']}/schedule", json={"at": "soon"}, headers=h), 422)
    far = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    r = srv.post(f"{API}/campaigns/{c['id']}/schedule", json={"at": far}, headers=h)
    assert r.status_code == 202 and r.json()["status"] == "scheduled" and r.json()["scheduled_at"]
    r = srv.post(f"{API}/campaigns/{c['id']}/cancel", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "draft"
    soon = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2))
    assert srv.post(f"{API}/campaigns/{c['id']}/schedule", json={"at": soon}, headers=h).status_code == 202
    wait_status(srv, h, c["id"], "sent")
    assert len(msgs_to(smtp, [f"later@{d}"])) == 1


def test_crash_mid_send_resumes_and_mails_everyone_exactly_once(db_factory):
    """kill -9 the server while a paced campaign is being sent; a new process on the same
    database finishes it; the sink must have every recipient exactly once."""
    n = 60
    with SmtpSink() as sink:
        url = db_factory.new_url()
        env = dict(TEMEL_MAIL_URL=sink.url, TEMEL_MARKETING_DOMAIN_RATE=20, TEMEL_MARKETING_SLICE_MS=2000,
                   TEMEL_JOB_LEASE_MARGIN_MS=200, TEMEL_JOB_POLL_MS=50, TEMEL_JOB_BACKOFF_MS=50)
        d = dom()
        addrs = [f"r{i}@{d}" for i in range(n)]
        with module_server(db_factory, db_url=url, **env) as s:
            h, user = new_user_headers(s)
            lst = new_list(s, h)
            add(s, h, lst["id"], [{"email": a} for a in addrs])
            c = new_campaign(s, h, lst["id"])
            assert s.post(f"{API}/campaigns/{c['id']}/send", headers=h).status_code == 202
            wait_for(lambda: len(sink.messages) >= 10, what="some messages before the crash")
            s.kill()  # SIGKILL: no shutdown, the job is left 'running' with its lease
            at_crash = len(sink.messages)
        assert at_crash < n
        with module_server(db_factory, db_url=url, **env) as s2:
            h2 = login_headers(s2, user["email"], "correct horse battery staple")
            wait_for(lambda: s2.get(f"{API}/campaigns/{c['id']}", headers=h2).json()["status"] == "sent",
                     timeout=60, what="the campaign to finish after the restart")
            st = s2.get(f"{API}/campaigns/{c['id']}/stats", headers=h2).json()
        db_factory.drop(url)
    counts = collections.Counter(rc for _, rcpts, _ in sink.messages for rc in rcpts if rc.endswith(d))
    assert set(counts) == set(addrs)
    assert all(v == 1 for v in counts.values()), [a for a, v in counts.items() if v != 1]
    assert st["delivered"] == n and st["queued"] == 0
