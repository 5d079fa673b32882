"""Support tickets (API.md §10, issue 12 item 2): create with category and priority, own lists
(staff see all) with filters and the priority-then-age order, messages with internal staff notes the
owner never sees, unread counts per side, first_response_at and resolved_at, assignment, close and
reopen, SLA targets with the breach flag, mail to the owner on a staff reply through a real SMTP
sink, the audit trail of staff actions, and the hook that realtime will wire (logged in test mode)."""

from conftest import ENGINE, assert_problem, error_fields, new_user_headers
from delivery_util import SmtpSink
from events_util import API, MISSING, sink_mails, staff_server
from realtime_util import WS, token_of


def ticket(server, h, **body):
    b = {"subject": "Giriş yapamıyorum", "description": "Şifre sıfırlama e-postası gelmiyor."}
    b.update(body)
    r = server.post(f"{API}/tickets", json=b, headers=h)
    assert r.status_code == 201, r.text
    return r.json()


def get(server, h, tid):
    r = server.get(f"{API}/tickets/{tid}", headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def say(server, h, tid, body, **kw):
    return server.post(f"{API}/tickets/{tid}/messages", json={"body": body, **kw}, headers=h)


def messages(server, h, tid):
    r = server.get(f"{API}/tickets/{tid}/messages", headers=h)
    assert r.status_code == 200, r.text
    return r.json()


def test_create_lists_filters_and_priority_order(server, admin_headers):
    h, u = new_user_headers(server, "sup")
    other, _ = new_user_headers(server, "sup-other")
    made = {p: ticket(server, h, subject=f"{p} sorun", priority=p, category="technical")
            for p in ("low", "urgent", "normal", "high")}
    t = made["urgent"]
    assert t["status"] == "open" and t["user_id"] == u["id"] and t["priority_rank"] == 4
    assert t["first_response_at"] is None and t["resolved_at"] is None and t["sla_breached"] is False
    assert t["sla_due_at"] and t["user_unread"] == 0 and t["assignee_id"] is None
    plain = ticket(server, h)
    assert plain["priority"] == "normal" and plain["category"] == "general"
    # own list: priority first, then oldest first
    r = server.get(f"{API}/tickets?category=technical", headers=h)
    assert r.status_code == 200, r.text
    assert [x["priority"] for x in r.json()["data"]] == ["urgent", "high", "normal", "low"]
    assert r.json()["meta"]["total"] == 4
    r = server.get(f"{API}/tickets?priority=normal", headers=h).json()
    assert [x["id"] for x in r["data"]] == [made["normal"]["id"], plain["id"]]           # same priority: oldest first
    # another user sees none of them; staff see them all and may filter by owner
    assert server.get(f"{API}/tickets", headers=other).json()["meta"]["total"] == 0
    assert_problem(server.get(f"{API}/tickets/{t['id']}", headers=other), 404)
    r = server.get(f"{API}/tickets?user_id={u['id']}&priority[in]=urgent,high", headers=admin_headers).json()
    assert [x["priority"] for x in r["data"]] == ["urgent", "high"]
    assert_problem(server.get(f"{API}/tickets?description=x", headers=h), 422)
    # fields the workflow owns, bad values
    for body, field in (({"status": "closed"}, "status"), ({"priority": "asap"}, "priority"),
                        ({"assignee_id": u["id"]}, "assignee_id"), ({"category": "x"}, "category")):
        b = assert_problem(server.post(f"{API}/tickets", json={"subject": "x", **body}, headers=h), 422)
        assert field in error_fields(b), b
    assert_problem(server.post(f"{API}/tickets", json={"subject": "x"}), 401)
    # the owner edits the subject, not the priority; staff change the priority (audited, SLA follows)
    assert server.patch(f"{API}/tickets/{t['id']}", json={"subject": "Giriş sorunu"}, headers=h).status_code == 200
    assert_problem(server.patch(f"{API}/tickets/{t['id']}", json={"priority": "low"}, headers=h), 403)
    r = server.patch(f"{API}/tickets/{made['low']['id']}", json={"priority": "urgent"}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["priority_rank"] == 4, r.text
    assert r.json()["sla_due_at"] < made["low"]["sla_due_at"]
    r = server.get(f"{API}/admin/audit-logs?target_id={made['low']['id']}", headers=admin_headers)
    assert [e["action"] for e in r.json()["data"]] == ["ticket.update"]


def test_messages_internal_notes_unread_and_first_response(server, admin_headers):
    h, _ = new_user_headers(server, "msg")
    t = ticket(server, h)
    tid = t["id"]
    r = say(server, h, tid, "Ek bilgi: Chrome kullanıyorum.")
    assert r.status_code == 201 and r.json()["from_staff"] is False and r.json()["internal"] is False, r.text
    assert get(server, admin_headers, tid)["staff_unread"] == 1
    assert_problem(say(server, h, tid, "gizli", internal=True), 403)        # owners write no internal notes
    # staff read: their unread count clears
    messages(server, admin_headers, tid)
    assert get(server, admin_headers, tid)["staff_unread"] == 0
    # an internal note: no first response, the owner never sees it
    note = say(server, admin_headers, tid, "Kullanıcının hesabı kilitli olabilir.", internal=True)
    assert note.status_code == 201 and note.json()["internal"] is True
    got = get(server, h, tid)
    assert got["first_response_at"] is None and got["user_unread"] == 0 and got["status"] == "open"
    # the first public reply
    r = say(server, admin_headers, tid, "Hesabınızın kilidini açtık.")
    assert r.status_code == 201 and r.json()["from_staff"] is True
    got = get(server, h, tid)
    first = got["first_response_at"]
    assert first and got["status"] == "pending" and got["user_unread"] == 1
    owner_view = messages(server, h, tid)
    assert [m["body"] for m in owner_view["data"]] == ["Ek bilgi: Chrome kullanıyorum.", "Hesabınızın kilidini açtık."]
    assert all(not m["internal"] for m in owner_view["data"]) and owner_view["meta"]["total"] == 2
    assert get(server, h, tid)["user_unread"] == 0
    assert len(messages(server, admin_headers, tid)["data"]) == 3
    # the owner answers: open again; a second staff reply keeps the first response time
    say(server, h, tid, "Teşekkürler, çalıştı.")
    assert get(server, h, tid)["status"] == "open"
    say(server, admin_headers, tid, "Rica ederiz.")
    assert get(server, h, tid)["first_response_at"] == first
    # strangers and bad input
    other, _ = new_user_headers(server, "msg-other")
    assert_problem(say(server, other, tid, "merhaba"), 404)
    assert_problem(server.get(f"{API}/tickets/{tid}/messages", headers=other), 404)
    assert_problem(say(server, h, tid, ""), 422)
    assert_problem(server.post(f"{API}/tickets/{tid}/messages", json={"body": "x", "files": []}, headers=h), 422)
    assert_problem(say(server, h, MISSING, "x"), 404)


def test_assign_close_reopen_and_audit(server, admin_headers):
    h, u = new_user_headers(server, "asg")
    t = ticket(server, h, priority="high")
    tid = t["id"]
    admin_id = server.get(f"{API}/me", headers=admin_headers).json()["id"]
    assert_problem(server.post(f"{API}/tickets/{tid}/assign", json={"user_id": admin_id}, headers=h), 403)
    b = assert_problem(server.post(f"{API}/tickets/{tid}/assign", json={"user_id": u["id"]}, headers=admin_headers),
                       422)
    assert "user_id" in error_fields(b)
    r = server.post(f"{API}/tickets/{tid}/assign", json={"user_id": admin_id}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["assignee_id"] == admin_id, r.text
    r = server.get(f"{API}/tickets?assignee_id={admin_id}&status=open", headers=admin_headers).json()
    assert tid in [x["id"] for x in r["data"]]
    # the owner closes; a closed ticket takes no message until reopened
    r = server.post(f"{API}/tickets/{tid}/close", json={}, headers=h)
    assert r.status_code == 200 and r.json()["status"] == "closed" and r.json()["resolved_at"], r.text
    assert_problem(server.post(f"{API}/tickets/{tid}/close", json={}, headers=h), 409)
    assert_problem(say(server, h, tid, "bir şey daha"), 409)
    r = server.post(f"{API}/tickets/{tid}/reopen", json={}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["status"] == "open" and r.json()["resolved_at"] is None
    assert_problem(server.post(f"{API}/tickets/{tid}/reopen", json={}, headers=h), 409)
    r = server.post(f"{API}/tickets/{tid}/assign", json={"user_id": None}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["assignee_id"] is None
    r = server.get(f"{API}/admin/audit-logs?target_id={tid}&limit=100", headers=admin_headers)
    assert sorted(e["action"] for e in r.json()["data"]) == ["ticket.assign", "ticket.assign", "ticket.reopen"]


def backdate(db_factory, url, tid, minutes):
    """Move a ticket's created_at and sla_due_at `minutes` into the past (the test's clock)."""
    if ENGINE == "sqlite":
        db_factory.query(url, "UPDATE tickets SET created_at = created_at - ?, sla_due_at = sla_due_at - ? "
                              "WHERE id = ?", (minutes * 60000, minutes * 60000, tid))
    else:
        db_factory.query(url, "UPDATE tickets SET created_at = created_at - make_interval(mins => ?), "
                              "sla_due_at = sla_due_at - make_interval(mins => ?) WHERE id = ?", (minutes, minutes, tid))


def test_sla_targets_and_breach_flag(server, admin_headers, db_factory):
    h, _ = new_user_headers(server, "sla")
    urgent = ticket(server, h, priority="urgent")
    low = ticket(server, h, priority="low")
    late = ticket(server, h, priority="high")
    on_time = ticket(server, h, priority="high")
    # targets: urgent 60 min, high 4 h, low 3 days after creation
    for t, minutes in ((urgent, 60), (low, 3 * 24 * 60), (late, 240)):
        from datetime import datetime
        c = datetime.fromisoformat(t["created_at"].replace("Z", "+00:00"))
        d = datetime.fromisoformat(t["sla_due_at"].replace("Z", "+00:00"))
        assert (d - c).total_seconds() == minutes * 60
    backdate(db_factory, server.db_url, urgent["id"], 61)                   # no reply, past due
    backdate(db_factory, server.db_url, low["id"], 61)                      # no reply, within target
    backdate(db_factory, server.db_url, late["id"], 300)
    say(server, admin_headers, late["id"], "Geç kaldık, özür dileriz.")     # replied after the due time
    say(server, admin_headers, on_time["id"], "Hemen bakıyoruz.")           # replied in time
    # a list read sweeps too: urgent was never read since it fell due
    r = server.get(f"{API}/tickets?sla_breached=true", headers=h).json()
    assert sorted(x["id"] for x in r["data"]) == sorted([urgent["id"], late["id"]])
    assert get(server, h, urgent["id"])["sla_breached"] is True
    assert get(server, h, low["id"])["sla_breached"] is False
    assert get(server, h, late["id"])["sla_breached"] is True
    assert get(server, h, on_time["id"])["sla_breached"] is False
    r = server.get(f"{API}/tickets?sla_breached=true", headers=h).json()
    assert sorted(x["id"] for x in r["data"]) == sorted([urgent["id"], late["id"]])
    # a reply to a breached ticket does not clear the flag
    say(server, admin_headers, urgent["id"], "Buradayız.")
    assert get(server, h, urgent["id"])["sla_breached"] is True


def test_staff_reply_mails_the_owner_over_smtp(make_server):
    with SmtpSink() as sink:
        s, admin = staff_server(make_server, "support", TEMEL_MAIL_URL=sink.url,
                                TEMEL_MAIL_FROM="Destek <support@example.com>")
        h, u = new_user_headers(s, "mailme")
        t = ticket(s, h, subject="Fatura <hatası> & iade")
        say(s, admin, t["id"], "İç not", internal=True)
        say(s, h, t["id"], "Kendi mesajım")
        assert say(s, admin, t["id"], "İadeniz <b>yapıldı</b>.").status_code == 201

        got = sink_mails(sink, ("New reply",))
        rcpts, m = got[0]
        assert rcpts == [u["email"]] and m["subject"] == "New reply to your ticket: Fatura <hatası> & iade"
        assert "İadeniz <b>yapıldı</b>." in m.get_body(("plain",)).get_content()
        html = m.get_body(("html",)).get_content()
        assert "&lt;b&gt;yapıldı&lt;/b&gt;" in html and "İç not" not in html
        assert len(got) == 1                                                # only the public staff reply


def test_every_change_reaches_realtime(server, admin_headers):
    """The hook point is wired to realtime (API.md §11): staff hear every change on `staff` (internal
    notes only there), the owner hears the ticket on tickets:<id> and replies on user:<id>."""
    h, u = new_user_headers(server, "hook")
    t = ticket(server, h)
    tid = t["id"]
    staff = WS(server)
    staff.auth(token_of(admin_headers))
    assert staff.subscribe("staff")["type"] == "subscribed"
    assert staff.subscribe(f"tickets:{tid}")["type"] == "subscribed"
    owner = WS(server)
    owner.auth(token_of(h))
    assert owner.subscribe(f"tickets:{tid}")["type"] == "subscribed"
    assert owner.subscribe(f"user:{u['id']}")["type"] == "subscribed"
    h2, _ = new_user_headers(server, "hook-other")
    other = WS(server)
    other.auth(token_of(h2))
    assert other.subscribe(f"tickets:{tid}")["code"] == "FORBIDDEN"
    other.close()
    t2 = ticket(server, h)
    note = say(server, admin_headers, tid, "not", internal=True).json()
    reply = say(server, admin_headers, tid, "cevap").json()
    admin_id = server.get(f"{API}/me", headers=admin_headers).json()["id"]
    server.post(f"{API}/tickets/{tid}/assign", json={"user_id": admin_id}, headers=admin_headers)
    server.post(f"{API}/tickets/{tid}/close", json={}, headers=h)

    def events(ws, n):
        out = []
        while len(out) < n:
            m = ws.recv()
            if m["type"] == "event" and not m["event"].startswith("presence."):
                out.append((m["channel"], m["event"], m["data"]))
        return out
    st = events(staff, 7)
    assert ("staff", "ticket.created", {"ticket_id": t2["id"], "actor_id": u["id"]}) in st
    assert ("staff", "ticket.message", {"ticket_id": tid, "actor_id": admin_id, "message_id": note["id"],
                                        "internal": True}) in st
    assert (f"tickets:{tid}", "ticket.message", {"ticket_id": tid, "actor_id": admin_id,
                                                 "message_id": reply["id"]}) in st
    assert (f"tickets:{tid}", "ticket.assigned", {"ticket_id": tid, "actor_id": admin_id,
                                                  "assignee_id": admin_id}) in st
    assert ("staff", "ticket.closed", {"ticket_id": tid, "actor_id": u["id"]}) in st
    ow = events(owner, 4)  # the reply twice (ticket and user channel), assignment, close; never the note
    assert [e[1] for e in ow] == ["ticket.message", "ticket.message", "ticket.assigned", "ticket.closed"], ow
    assert {e[0] for e in ow[:2]} == {f"tickets:{tid}", f"user:{u['id']}"}
    assert all(e[2].get("message_id") != note["id"] for e in ow)
    staff.close()
    owner.close()


def test_message_attachments_reach_owner_and_staff_only(server, admin_headers):
    """Issue 12 item 2: a message names files its author uploaded; the ticket's owner and staff download
    them, anyone else gets 404; an internal note's attachments are staff-only; a deleted file is gone
    from the message's downloads."""
    h, _ = new_user_headers(server, "att")
    other, _ = new_user_headers(server, "att-other")
    up = lambda hh, data, name: server.post(f"{API}/files", headers=hh, files={"file": (name, data)}).json()["id"]
    mine = up(h, b"log line 1\nlog line 2\n", "hata.log")
    theirs = up(other, b"not yours\n", "x.txt")
    t = ticket(server, h)
    tid = t["id"]
    # only the author's own files, at most 10, existing
    for bad in ([theirs], ["0190a0b0-0000-7000-8000-000000000000"], ["nope"], [mine] * 11, [1]):
        r = say(server, h, tid, "ek", attachments=bad)
        assert_problem(r, 422)
        assert "attachments" in error_fields(r.json())
    r = say(server, h, tid, "ekte günlük var", attachments=[mine, mine])
    assert r.status_code == 201, r.text
    [a] = r.json()["attachments"]
    assert a == {"id": mine, "filename": "hata.log", "size": 22, "mime_type": "text/plain; charset=utf-8",
                 "url": f"/api/v1/tickets/{tid}/attachments/{mine}"}
    assert messages(server, h, tid)["data"][-1]["attachments"] == [a]
    for hh in (h, admin_headers):
        d = server.get(a["url"], headers=hh)
        assert d.status_code == 200 and d.content == b"log line 1\nlog line 2\n", d.text
    assert_problem(server.get(a["url"], headers=other), 404)
    assert_problem(server.get(f"/api/v1/tickets/{tid}/attachments/{theirs}", headers=admin_headers), 404)
    # an internal note's attachment: staff only
    note_file = up(admin_headers, b"internal analysis\n", "analiz.txt")
    r = say(server, admin_headers, tid, "iç not", internal=True, attachments=[note_file])
    assert r.status_code == 201, r.text
    assert server.get(f"/api/v1/tickets/{tid}/attachments/{note_file}", headers=admin_headers).status_code == 200
    assert_problem(server.get(f"/api/v1/tickets/{tid}/attachments/{note_file}", headers=h), 404)
    assert all(not m["attachments"] or m["attachments"] == [a] for m in messages(server, h, tid)["data"])
    # a staff reply's attachment reaches the owner
    reply_file = up(admin_headers, b"steps\n", "adimlar.txt")
    assert say(server, admin_headers, tid, "yanıt", attachments=[reply_file]).status_code == 201
    assert server.get(f"/api/v1/tickets/{tid}/attachments/{reply_file}", headers=h).content == b"steps\n"
    # the author deletes the file: its download is gone
    assert server.delete(f"{API}/files/{mine}", headers=h).status_code == 204
    assert_problem(server.get(a["url"], headers=admin_headers), 404)
