"""Events (API.md §10, issue 12 item 1): public list/get with filters, staff CRUD and audit,
registration with capacity and one per user decided atomically (races on one instance and on two
instances sharing one PostgreSQL), the ordered waitlist promoted on cancel, signed check-in codes
checked in exactly once, the QR image, reminder mails through a real SMTP sink, analytics and the
RFC 5545 calendar file."""
import datetime
import struct
import uuid
import zlib

import pytest
import requests

from conftest import ENGINE, Server, assert_problem, error_fields, new_user_headers
from delivery_util import SmtpSink
from events_util import API, MISSING, fire, guests, in_, new_event, register, sink_mails, staff_server, wait_for


def reg_list(server, h, path):
    r = server.get(path, headers=h)
    assert r.status_code == 200, r.text
    return r.json()


# --------------------------------------------------------------------------- CRUD and lists

def test_staff_crud_visibility_and_audit(server, admin_headers, user_headers):
    draft = new_event(server, admin_headers, status="draft", title="Taslak etkinlik")
    assert draft["status"] == "draft" and draft["confirmed_count"] == 0 and draft["capacity"] is None
    # the public and users do not see drafts (404, not 403)
    assert_problem(server.get(f"{API}/events/{draft['id']}"), 404, "NOT_FOUND")
    assert_problem(server.get(f"{API}/events/{draft['id']}", headers=user_headers), 404)
    # users may not write
    assert_problem(server.post(f"{API}/events", json={"title": "x", "starts_at": in_(days=1)},
                               headers=user_headers), 403, "FORBIDDEN")
    # publish (staff), then everyone sees it
    r = server.patch(f"{API}/events/{draft['id']}", json={"status": "published", "capacity": 10},
                     headers=admin_headers)
    assert r.status_code == 200, r.text
    assert server.get(f"{API}/events/{draft['id']}").json()["capacity"] == 10
    # fields a client may not set, unknown fields and bad values: 422, nothing written
    for body, field in (({"confirmed_count": 5}, "confirmed_count"), ({"colour": "red"}, "colour"),
                        ({"capacity": 0}, "capacity"), ({"ends_at": in_(days=-30)}, "ends_at"),
                        ({"status": "open"}, "status"), ({"currency": "tl"}, "currency")):
        body = dict(body)
        if field == "ends_at":
            body["starts_at"] = in_(days=1)
        b = assert_problem(server.patch(f"{API}/events/{draft['id']}", json=body, headers=admin_headers), 422)
        assert field in error_fields(b), b
    assert server.get(f"{API}/events/{draft['id']}").json()["capacity"] == 10
    # staff actions are audited
    r = server.get(f"{API}/admin/audit-logs?target_id={draft['id']}&limit=100", headers=admin_headers)
    assert r.status_code == 200, r.text
    actions = sorted(e["action"] for e in r.json()["data"])
    assert actions == ["event.create", "event.update"], actions
    # delete (soft): gone for everyone
    assert server.delete(f"{API}/events/{draft['id']}", headers=admin_headers).status_code == 204
    assert_problem(server.get(f"{API}/events/{draft['id']}"), 404)


def test_public_list_filters(server, admin_headers):
    tag = "kat-" + uuid.uuid4().hex[:10]
    a = new_event(server, admin_headers, title="Kahve ve kod buluşması", category=tag, city="İstanbul",
                  starts_at=in_(days=3))
    b = new_event(server, admin_headers, title="Online Rust atölyesi", category=tag, online=True,
                  online_url="https://meet.example.com/rust", starts_at=in_(days=6))
    c = new_event(server, admin_headers, title="Kraków meetup", category=tag, city="Kraków", starts_at=in_(days=9))
    d = new_event(server, admin_headers, title="Gizli taslak", category=tag, city="İstanbul", status="draft")

    def ids(query, h=None):
        r = server.get(f"{API}/events?category={tag}&{query}", headers=h)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body["meta"]) == {"total", "page", "limit", "pages"}
        if "limit=" not in query:
            assert body["meta"]["total"] == len(body["data"])
        return [e["id"] for e in body["data"]]

    assert sorted(ids("")) == sorted([a["id"], b["id"], c["id"]])           # the draft is not public
    assert d["id"] in ids("", admin_headers)                                 # staff see drafts
    assert ids("city=%C4%B0stanbul") == [a["id"]]
    assert ids("online=true") == [b["id"]]
    assert ids(f"starts_at[gte]={in_(days=4)}&starts_at[lte]={in_(days=7)}") == [b["id"]]
    assert ids("sort=starts_at:asc") == [a["id"], b["id"], c["id"]]
    assert ids("sort=starts_at:desc") == [c["id"], b["id"], a["id"]]
    assert ids("q=rust") == [b["id"]]
    assert ids("city[like]=krak") == [c["id"]]
    r = server.get(f"{API}/events?category={tag}&limit=2&page=2&sort=starts_at:asc").json()
    assert [e["id"] for e in r["data"]] == [c["id"]] and r["meta"] == {"total": 3, "page": 2, "limit": 2, "pages": 2}
    assert_problem(server.get(f"{API}/events?venue=x"), 422)                 # not filterable
    assert_problem(server.get(f"{API}/events?limit=101"), 422)


# --------------------------------------------------------------------------- registration

def test_register_capacity_duplicate_and_lists(server, admin_headers):
    ev = new_event(server, admin_headers, capacity=2)
    h1, u1 = new_user_headers(server, "ev1")
    h2, _ = new_user_headers(server, "ev2")
    h3, _ = new_user_headers(server, "ev3")
    r = register(server, h1, ev["id"])
    assert r.status_code == 201, r.text
    reg = r.json()
    assert reg["status"] == "confirmed" and reg["user_id"] == u1["id"] and reg["event_id"] == ev["id"]
    assert reg["code"].startswith(reg["id"] + ".") and reg["waitlist_position"] is None
    assert_problem(register(server, h1, ev["id"]), 409, "CONFLICT")          # one per user
    assert register(server, h2, ev["id"]).status_code == 201
    b = assert_problem(register(server, h3, ev["id"]), 409, "CONFLICT")      # full, no waitlist
    assert "full" in b["detail"]
    assert server.get(f"{API}/events/{ev['id']}").json()["confirmed_count"] == 2
    # own list; another user's registration is 404 to them; staff list of the event
    mine = reg_list(server, h1, f"{API}/me/registrations")
    assert [x["id"] for x in mine["data"]] == [reg["id"]]
    assert_problem(server.get(f"{API}/registrations/{reg['id']}", headers=h2), 404)
    assert server.get(f"{API}/registrations/{reg['id']}", headers=admin_headers).status_code == 200
    staff = reg_list(server, admin_headers, f"{API}/events/{ev['id']}/registrations?status=confirmed")
    assert staff["meta"]["total"] == 2
    assert_problem(server.get(f"{API}/events/{ev['id']}/registrations", headers=h1), 403)
    # cancel frees the seat; a cancelled registration may register again
    r = server.post(f"{API}/registrations/{reg['id']}/cancel", json={}, headers=h1)
    assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["cancelled_at"], r.text
    assert_problem(server.post(f"{API}/registrations/{reg['id']}/cancel", json={}, headers=h1), 409)
    assert register(server, h3, ev["id"]).status_code == 201
    assert_problem(register(server, h1, ev["id"]), 409)                      # full again
    # unknown, draft and malformed ids
    assert_problem(register(server, h1, MISSING), 404)
    assert_problem(register(server, h1, "not-a-uuid"), 404)
    d = new_event(server, admin_headers, status="draft")
    assert_problem(register(server, h1, d["id"]), 404)
    assert_problem(server.post(f"{API}/events/{ev['id']}/register", json={"seats": 2}, headers=h1), 422)


def test_register_refusals_and_idempotency(server, admin_headers):
    h, _ = new_user_headers(server, "evr")
    cancelled = new_event(server, admin_headers, status="cancelled")
    assert "cancelled" in assert_problem(register(server, h, cancelled["id"]), 409)["detail"]
    started = new_event(server, admin_headers, starts_at=in_(minutes=-5))
    assert "started" in assert_problem(register(server, h, started["id"]), 409)["detail"]
    paid = new_event(server, admin_headers, price=15000, currency="TRY")
    # a paid event holds the seat with a pending order (test_paid_events has the rest)
    r = register(server, h, paid["id"])
    assert r.status_code == 201 and r.json()["status"] == "pending" and r.json()["order_id"], r.text
    ev = new_event(server, admin_headers, capacity=5)
    key = {"Idempotency-Key": "reg-" + ev["id"]}
    r1 = server.post(f"{API}/events/{ev['id']}/register", json={}, headers={**h, **key})
    r2 = server.post(f"{API}/events/{ev['id']}/register", json={}, headers={**h, **key})
    assert r1.status_code == r2.status_code == 201 and r1.json()["id"] == r2.json()["id"]
    assert r2.headers.get("Idempotent-Replayed") == "true"
    assert server.get(f"{API}/events/{ev['id']}").json()["confirmed_count"] == 1


def test_waitlist_in_order_promotion_and_staff_status(server, admin_headers):
    ev = new_event(server, admin_headers, capacity=1, waitlist=True)
    hs = [new_user_headers(server, f"wl{i}")[0] for i in range(4)]
    regs = [register(server, h, ev["id"]).json() for h in hs]
    assert [x["status"] for x in regs] == ["confirmed", "waitlisted", "waitlisted", "waitlisted"]
    assert [x["waitlist_position"] for x in regs[1:]] == [1, 2, 3]
    # the second in line cancels: the order of the rest holds
    assert server.post(f"{API}/registrations/{regs[2]['id']}/cancel", json={}, headers=hs[2]).status_code == 200
    # the confirmed one cancels: the first in line gets the seat
    assert server.post(f"{API}/registrations/{regs[0]['id']}/cancel", json={}, headers=hs[0]).status_code == 200
    got = {x["id"]: x for x in reg_list(server, admin_headers, f"{API}/events/{ev['id']}/registrations")["data"]}
    assert got[regs[1]["id"]]["status"] == "confirmed" and got[regs[1]["id"]]["waitlist_position"] is None
    assert got[regs[3]["id"]]["status"] == "waitlisted"
    assert server.get(f"{API}/events/{ev['id']}").json()["confirmed_count"] == 1
    # staff: confirming a waitlisted one needs a free seat
    p = f"{API}/registrations/{regs[3]['id']}/status"
    assert "full" in assert_problem(server.patch(p, json={"status": "confirmed"}, headers=admin_headers),
                                    409)["detail"]
    assert_problem(server.patch(p, json={"status": "confirmed"}, headers=hs[3]), 403)
    assert_problem(server.patch(p, json={"status": "waitlisted"}, headers=admin_headers), 422)
    # a capacity raise promotes the waitlist at once
    assert server.patch(f"{API}/events/{ev['id']}", json={"capacity": 3}, headers=admin_headers).status_code == 200
    assert server.get(f"{API}/registrations/{regs[3]['id']}", headers=hs[3]).json()["status"] == "confirmed"
    r = server.patch(p, json={"status": "cancelled"}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = server.get(f"{API}/admin/audit-logs?target_id={regs[3]['id']}", headers=admin_headers)
    assert [e["action"] for e in r.json()["data"]] == ["registration.status"]


# --------------------------------------------------------------------------- check-in, QR

def test_checkin_exactly_once(server, admin_headers):
    ev = new_event(server, admin_headers, capacity=1, waitlist=True)
    other = new_event(server, admin_headers)
    h1, _ = new_user_headers(server, "ci1")
    h2, _ = new_user_headers(server, "ci2")
    reg = register(server, h1, ev["id"]).json()
    wl = register(server, h2, ev["id"]).json()
    path = f"{API}/events/{ev['id']}/checkin"
    assert_problem(server.post(path, json={"code": reg["code"]}, headers=h1), 403)   # staff only
    r = server.post(path, json={"code": reg["code"]}, headers=admin_headers)
    assert r.status_code == 200, r.text
    first = r.json()["checked_in_at"]
    assert first
    b = assert_problem(server.post(path, json={"code": reg["code"]}, headers=admin_headers), 409)
    assert first in b["detail"], b
    # a forged signature, a code of another event, a waitlisted registration
    forged = reg["code"][:-4] + ("0000" if not reg["code"].endswith("0000") else "1111")
    assert "code" in error_fields(assert_problem(server.post(path, json={"code": forged},
                                                             headers=admin_headers), 422))
    assert_problem(server.post(f"{API}/events/{other['id']}/checkin", json={"code": reg["code"]},
                               headers=admin_headers), 422)
    assert "waitlisted" in assert_problem(server.post(path, json={"code": wl["code"]}, headers=admin_headers),
                                          409)["detail"]
    assert_problem(server.post(path, json={}, headers=admin_headers), 422)
    r = server.get(f"{API}/admin/audit-logs?target_id={reg['id']}", headers=admin_headers)
    assert [e["action"] for e in r.json()["data"]] == ["registration.checkin"]


def png_pixels(data):
    """Decode a 1-bit greyscale PNG (what the server writes) into rows of 0/1."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        assert zlib.crc32(kind + chunk) == struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", chunk[:10])
            assert (depth, ctype) == (1, 0) and w == h
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + n
    raw, stride, rows = zlib.decompress(idat), (w + 7) // 8, []
    prev = bytes(stride)
    for y in range(w):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        assert f in (0, 2), f"filter {f}"
        if f == 2:
            line = bytearray((a + b) & 0xff for a, b in zip(line, prev))
        prev = bytes(line)
        rows.append([(line[x // 8] >> (7 - x % 8)) & 1 for x in range(w)])
    return rows


def test_qr_png(server, admin_headers):
    ev = new_event(server, admin_headers)
    h, _ = new_user_headers(server, "qr")
    reg = register(server, h, ev["id"]).json()
    r = server.get(f"{API}/registrations/{reg['id']}/qr.png", headers=h)
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png", r.text[:200]
    px = png_pixels(r.content)
    # 8 px per module, 4 modules of quiet zone; a finder pattern (7x7, dark ring) in three corners
    scale, side = 8, len(px)
    modules = side // scale - 8
    assert side % scale == 0 and (modules - 21) % 4 == 0

    def module(mx, my):
        return px[(my + 4) * scale + scale // 2][(mx + 4) * scale + scale // 2] == 0

    for ox, oy in ((0, 0), (modules - 7, 0), (0, modules - 7)):
        ring = [module(ox + i, oy) for i in range(7)] + [module(ox, oy + i) for i in range(7)]
        assert all(ring) and not module(ox + 1, oy + 1) and module(ox + 3, oy + 3)
    assert all(v == 1 for v in px[0])                                        # quiet zone
    h2, _ = new_user_headers(server, "qr2")
    assert_problem(server.get(f"{API}/registrations/{reg['id']}/qr.png", headers=h2), 404)
    assert server.get(f"{API}/registrations/{reg['id']}/qr.png", headers=admin_headers).status_code == 200


# --------------------------------------------------------------------------- analytics, ICS

def test_analytics(server, admin_headers):
    ev = new_event(server, admin_headers, capacity=4, waitlist=True)
    hs = [new_user_headers(server, f"an{i}")[0] for i in range(5)]
    regs = [register(server, h, ev["id"]).json() for h in hs]
    server.post(f"{API}/events/{ev['id']}/checkin", json={"code": regs[0]["code"]}, headers=admin_headers)
    server.post(f"{API}/registrations/{regs[1]['id']}/cancel", json={}, headers=hs[1])   # regs[4] promoted
    r = server.get(f"{API}/events/{ev['id']}/analytics", headers=admin_headers)
    assert r.status_code == 200, r.text
    a = r.json()
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    assert {k: a[k] for k in ("registrations", "confirmed", "waitlisted", "cancelled", "checked_in", "capacity",
                              "revenue", "currency")} == \
        {"registrations": 5, "confirmed": 4, "waitlisted": 0, "cancelled": 1, "checked_in": 1, "capacity": 4,
         "revenue": 0, "currency": "TRY"}
    assert a["occupancy"] == 1.0 and a["check_in_rate"] == 0.25
    assert a["daily"] == [{"date": today, "registrations": 5, "cancelled": 1}]
    assert_problem(server.get(f"{API}/events/{ev['id']}/analytics", headers=hs[0]), 403)
    assert_problem(server.get(f"{API}/events/{MISSING}/analytics", headers=admin_headers), 404)


def unfold(text):
    assert "\n" not in text.replace("\r\n", "")
    lines = text.split("\r\n")
    assert lines[-1] == ""
    for ln in lines:
        assert len(ln.encode()) <= 75, ln
    return text.replace("\r\n ", "").split("\r\n")[:-1]


def ics_unescape(v):
    out, i = "", 0
    while i < len(v):
        if v[i] == "\\":
            out += "\n" if v[i + 1] in "nN" else v[i + 1]
            i += 2
        else:
            out += v[i]
            i += 1
    return out


def test_ics_escaped_and_folded(server, admin_headers):
    desc = ("Şehir turu; ardından kahve, sohbet ve \\ ters eğik çizgi.\nİkinci satır: "
            "çok uzun bir açıklama ğüşöçİı ąćęłńóśźż " * 3)
    ev = new_event(server, admin_headers, title="Yaz, Kış; ve \\ Bahar", description=desc, venue="Kültür Merkezi",
                   city="İzmir", starts_at="2027-03-01T18:30:00.000Z", ends_at="2027-03-01T21:00:00.000Z")
    r = server.get(f"{API}/events/{ev['id']}/calendar.ics")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/calendar")
    assert "attachment" in r.headers.get("Content-Disposition", "")
    lines = unfold(r.content.decode("utf-8"))
    props = dict(ln.split(":", 1) for ln in lines)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    assert props["DTSTART"] == "20270301T183000Z" and props["DTEND"] == "20270301T210000Z"
    assert props["UID"] == f"{ev['id']}@temel" and props["STATUS"] == "CONFIRMED"
    assert props["SUMMARY"] == "Yaz\\, Kış\\; ve \\\\ Bahar"
    assert ics_unescape(props["SUMMARY"]) == "Yaz, Kış; ve \\ Bahar"
    assert ics_unescape(props["DESCRIPTION"]) == desc
    assert ics_unescape(props["LOCATION"]) == "Kültür Merkezi, İzmir"
    d = new_event(server, admin_headers, status="draft")
    assert_problem(server.get(f"{API}/events/{d['id']}/calendar.ics"), 404)


# --------------------------------------------------------------------------- races

def check_race(results, seats, waitlist):
    won = [r for r in results if r.status_code == 201 and r.json()["status"] == "confirmed"]
    assert len(won) == seats, [r.text for r in results if r.status_code not in (201, 409)][:3]
    rest = [r for r in results if r not in won]
    if waitlist:
        assert all(r.status_code == 201 and r.json()["status"] == "waitlisted" for r in rest), \
            [r.text for r in rest if r.status_code != 201][:3]
        assert sorted(r.json()["waitlist_position"] for r in rest) == list(range(1, len(rest) + 1))
    else:
        for r in rest:
            assert_problem(r, 409, "CONFLICT")
    return won


def test_race_many_clients_one_instance(server, admin_headers):
    clients = guests(server.url(""), 120)
    for waitlist in (False, True):
        ev = new_event(server, admin_headers, capacity=40, waitlist=waitlist)
        results = fire([server.url("")], f"{API}/events/{ev['id']}/register", clients)
        check_race(results, 40, waitlist)
        assert server.get(f"{API}/events/{ev['id']}").json()["confirmed_count"] == 40
        # a seat freed goes to waitlist position 1, in order
        if waitlist:
            won = [r.json() for r in results if r.json().get("status") == "confirmed"]
            first = min((r.json() for r in results if r.json().get("status") == "waitlisted"),
                        key=lambda x: x["waitlist_position"])
            i = next(i for i, r in enumerate(results) if r.json()["id"] == won[0]["id"])
            assert server.post(f"{API}/registrations/{won[0]['id']}/cancel", json={},
                               headers=clients[i]).status_code == 200
            assert server.get(f"{API}/registrations/{first['id']}", headers=admin_headers).json()["status"] == \
                "confirmed"


@pytest.mark.skipif(ENGINE != "postgres", reason="two instances share one PostgreSQL database")
def test_two_instances_300_clients_100_seats(make_server, db_factory):
    env = dict(TEMEL_RATE_LIMIT_WRITE="1000000/60", TEMEL_RATE_LIMIT_READ="1000000/60",
               TEMEL_RATE_LIMIT_AUTH="1000000/60", TEMEL_ADMIN_EMAIL="race-admin@example.com",
               TEMEL_ADMIN_PASSWORD="race admin password 1", TEMEL_JWT_SECRET="e" * 48,
               TEMEL_SECRET_KEY="k" * 48)
    a = make_server(**env)
    b = Server(a.db_url, env=env)
    b.start()
    try:
        r = requests.post(a.url(f"{API}/auth/login"), json={"email": "race-admin@example.com",
                                                             "password": "race admin password 1"}, timeout=10)
        admin = {"Authorization": f"Bearer {r.json()['access_token']}"}
        clients = guests(a.url(""), 300)
        for waitlist in (False, True):
            ev = new_event(a, admin, capacity=100, waitlist=waitlist)
            results = fire([a.url(""), b.url("")], f"{API}/events/{ev['id']}/register", clients)
            check_race(results, 100, waitlist)
            rows = db_factory.query(a.db_url, "SELECT status, count(*) FROM event_registrations WHERE event_id = ? "
                                              "GROUP BY status ORDER BY status", (ev["id"],))
            assert rows == ([("confirmed", 100), ("waitlisted", 200)] if waitlist else [("confirmed", 100)])
            assert db_factory.query(a.db_url, "SELECT confirmed_count FROM events WHERE id = ?",
                                    (ev["id"],))[0][0] == 100
            # both instances answered registrations (the clients alternate between them)
            assert b.get(f"{API}/events/{ev['id']}").json()["confirmed_count"] == 100
            # a code made by one instance checks in on the other
            code = next(r.json()["code"] for i, r in enumerate(results)
                        if i % 2 == 0 and r.status_code == 201 and r.json()["status"] == "confirmed")
            assert b.post(f"{API}/events/{ev['id']}/checkin", json={"code": code}, headers=admin).status_code == 200
    finally:
        assert b.stop() == 0
        b.cleanup()


# --------------------------------------------------------------------------- mail

def test_reminders_and_promotion_mail_over_smtp(make_server, db_factory):
    with SmtpSink() as sink:
        s, admin = staff_server(make_server, "mail", TEMEL_MAIL_URL=sink.url,
                                TEMEL_MAIL_FROM="Etkinlik <events@example.com>")
        ev = new_event(s, admin, title="Kış Buluşması", capacity=1, waitlist=True, city="Ankara")
        (h1, u1), (h2, u2) = new_user_headers(s, "rem1"), new_user_headers(s, "rem2")
        r1 = register(s, h1, ev["id"]).json()
        assert register(s, h2, ev["id"]).json()["status"] == "waitlisted"
        # cancel → the waitlisted user is promoted and told by mail
        assert s.post(f"{API}/registrations/{r1['id']}/cancel", json={}, headers=h1).status_code == 200
        def ours(n):
            return sink_mails(sink, ("A seat", "Reminder"), n)
        rcpts, m = ours(1)[0]
        assert rcpts == [u2["email"]] and "A seat is yours: Kış Buluşması" == m["subject"]
        # the event moves to 30 minutes from now: the 1 h reminder runs at once, the 24 h one is skipped
        assert s.patch(f"{API}/events/{ev['id']}", json={"starts_at": in_(minutes=30)},
                       headers=admin).status_code == 200
        rcpts, m = ours(2)[1]
        assert rcpts == [u2["email"]] and m["subject"] == "Reminder: Kış Buluşması starts in 1 hour"
        assert "Ankara" in m.get_body(("plain",)).get_content()
        # saving again does not mail twice; every reminder job has finished
        assert s.patch(f"{API}/events/{ev['id']}", json={"title": "Kış Buluşması"}, headers=admin).status_code == 200

        def settled():
            rows = db_factory.query(s.db_url, "SELECT state FROM jobs WHERE kind = 'events.remind'")
            due = [st for (st,) in rows if st not in ("scheduled",)]
            return due and all(st == "succeeded" for st in due) and len(due) >= 2 and rows
        rows = wait_for(settled, "reminder jobs")
        # the two jobs of the original start (10 days out) stay scheduled and will do nothing then
        assert sum(1 for (st,) in rows if st == "scheduled") == 2
        assert len(ours(2)) == 2
        # 24 h reminder: an event 5 hours away gets it now, its 1 h reminder is scheduled
        ev2 = new_event(s, admin, title="Sabah Koşusu")
        register(s, h1, ev2["id"])
        assert s.patch(f"{API}/events/{ev2['id']}", json={"starts_at": in_(hours=5)}, headers=admin).status_code == 200
        rcpts, m = ours(3)[2]
        assert rcpts == [u1["email"]] and m["subject"] == "Reminder: Sabah Koşusu starts in 24 hours"


def test_reminder_batches_reach_one_past_the_batch_size(server, admin_headers, db_factory):
    """A reminder job works EVENTS_REMIND_BATCH (200) attendees per transaction: 201 confirmed guests
    (no address: marked, not mailed) all get the 1 h reminder, the last one in a second batch."""
    ev = new_event(server, admin_headers)
    for h in guests(server.url(""), 201):
        assert register(server, h, ev["id"]).json()["status"] == "confirmed"
    assert server.patch(f"{API}/events/{ev['id']}", json={"starts_at": in_(minutes=30)},
                        headers=admin_headers).status_code == 200

    def reminded():
        rows = db_factory.query(server.db_url, "SELECT count(*) FROM event_registrations WHERE event_id = ? "
                                "AND reminded_1h_at IS NOT NULL", (ev["id"],))
        return rows[0][0] == 201
    wait_for(reminded, "201 reminded registrations", timeout=60)


def test_account_deletion_frees_the_seat(server, admin_headers):
    ev = new_event(server, admin_headers, capacity=1, waitlist=True)
    h1, _ = new_user_headers(server, "del1")
    h2, _ = new_user_headers(server, "del2")
    register(server, h1, ev["id"])
    r2 = register(server, h2, ev["id"]).json()
    r = server.delete(f"{API}/me", headers=h1)
    assert r.status_code in (200, 202, 204), r.text
    assert server.get(f"{API}/registrations/{r2['id']}", headers=h2).json()["status"] == "confirmed"
    assert server.get(f"{API}/events/{ev['id']}").json()["confirmed_count"] == 1
