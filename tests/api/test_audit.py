"""Audit log (API.md §12, issue 4): entries recorded through the real server,
listed with filters and pagination, the hash chain verified, and a row edited
directly in the database reported as the broken link. Both engines.

Entries are produced by the TEMEL_ENV=test route POST /api/v1/_test/audit
(the same path a module uses: request context + append in a write
transaction), and by a real admin action (PATCH /api/v1/users/{id}).

Tampering runs on dedicated servers (make_server): the shared server's chain
must stay valid for everyone else.
"""
import concurrent.futures
import re
import sqlite3
import uuid

import pytest
import requests

from conftest import (ADMIN_EMAIL, ADMIN_PASSWORD, HTTP_TIMEOUT, SHARED_ENV, assert_problem, error_fields,
                      login_headers, new_user_headers)

LIST = "/api/v1/admin/audit-logs"
VERIFY = "/api/v1/admin/audit-logs/verify"
RECORD = "/api/v1/_test/audit"
RFC3339_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
HEX64 = re.compile(r"^[0-9a-f]{64}$")
ENTRY_KEYS = {"id", "seq", "actor_id", "action", "category", "target_type", "target_id", "before", "after", "ip",
              "user_agent", "endpoint", "request_id", "success", "created_at", "prev_hash", "hash"}


def tag():
    return uuid.uuid4().hex[:10]


def record(server, headers=None, **body):
    r = server.post(RECORD, json=body, headers=headers or {})
    assert r.status_code == 201, r.text
    out = r.json()
    out["request_id"] = r.headers.get("X-Request-Id")
    return out


def listing(server, headers, **params):
    r = server.get(LIST, headers=headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def verify(server, headers):
    r = server.get(VERIFY, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def total_entries(server, headers):
    return listing(server, headers, limit=1)["meta"]["total"]


# ---------------------------------------------------------------- dedicated servers

def audit_server(make_server):
    """A dedicated server with its own database, a bootstrap admin and generous limits."""
    s = make_server(**SHARED_ENV)
    return s, login_headers(s, ADMIN_EMAIL, ADMIN_PASSWORD)


class Tamper:
    """Edits the server's database behind its back, with the append-only triggers out of the way."""

    def __init__(self, engine, server, pg_cluster):
        self.engine = engine
        self.url = server.db_url
        self.pg_cluster = pg_cluster

    def run(self, sql, args=()):
        if self.engine == "sqlite":
            conn = sqlite3.connect(self.url[len("sqlite://"):], timeout=10)
            try:
                conn.execute(sql, args)
                conn.commit()
            finally:
                conn.close()
        else:
            conn = self.pg_cluster.connect(self.url)
            try:
                with conn.cursor() as cur:
                    cur.execute(sql.replace("?", "%s"), args)
            finally:
                conn.close()

    def rows(self, sql, args=()):
        if self.engine == "sqlite":
            conn = sqlite3.connect(self.url[len("sqlite://"):], timeout=10)
            try:
                return conn.execute(sql, args).fetchall()
            finally:
                conn.close()
        conn = self.pg_cluster.connect(self.url)
        try:
            with conn.cursor() as cur:
                cur.execute(sql.replace("?", "%s"), args)
                return cur.fetchall()
        finally:
            conn.close()

    def disable_triggers(self):
        if self.engine == "sqlite":
            self.run("DROP TRIGGER audit_logs_no_update")
            self.run("DROP TRIGGER audit_logs_no_delete")
        else:
            self.run("ALTER TABLE audit_logs DISABLE TRIGGER USER")


# ---------------------------------------------------------------- recording and listing

def test_entry_fields(server, admin_headers):
    t = tag()
    before, after = {"role": "user", "n": [1, 2], "s": "é\n"}, {"role": "admin", "nested": {"k": None}}
    rec = record(server, headers={"User-Agent": f"audit-test/{t}"}, action=f"test.{t}", category="tests",
                 target_type="thing", target_id=f"thing-{t}", before=before, after=after)
    assert isinstance(rec["seq"], int) and rec["seq"] >= 1
    body = listing(server, admin_headers, action=f"test.{t}")
    assert body["meta"] == {"total": 1, "page": 1, "limit": 20, "pages": 1}
    (e,) = body["data"]
    assert set(e) == ENTRY_KEYS
    assert e["id"] == rec["id"] and e["seq"] == rec["seq"]
    assert e["actor_id"] is None  # anonymous caller: a system entry
    assert e["action"] == f"test.{t}" and e["category"] == "tests"
    assert e["target_type"] == "thing" and e["target_id"] == f"thing-{t}"
    assert e["before"] == before and e["after"] == after
    assert e["ip"] == "127.0.0.1"
    assert e["user_agent"] == f"audit-test/{t}"
    assert e["endpoint"] == "POST /api/v1/_test/audit"
    assert e["request_id"] == rec["request_id"]
    assert e["success"] is True
    assert RFC3339_MS.match(e["created_at"]), e["created_at"]
    assert HEX64.match(e["hash"]) and HEX64.match(e["prev_hash"])
    assert e["hash"] != e["prev_hash"]


def test_null_before_after_and_failure(server, admin_headers):
    t = tag()
    record(server, action=f"test.{t}", category="tests", success=False)
    (e,) = listing(server, admin_headers, action=f"test.{t}")["data"]
    assert e["before"] is None and e["after"] is None
    assert e["target_type"] is None and e["target_id"] is None
    assert e["success"] is False


def test_chain_links_consecutive_entries(server, admin_headers):
    t = tag()
    a = record(server, action=f"test.{t}", category="tests")
    b = record(server, action=f"test.{t}", category="tests")
    newest, older = listing(server, admin_headers, action=f"test.{t}")["data"]
    assert (newest["id"], older["id"]) == (b["id"], a["id"])
    if b["seq"] == a["seq"] + 1:  # nothing else appended in between
        assert newest["prev_hash"] == older["hash"]


def test_filters(server, admin_headers):
    t = tag()
    user_h, user = new_user_headers(server, prefix="audit")
    ids = {}
    for i in range(3):
        ids[("a", i)] = record(server, action=f"test.{t}.a", category=f"cat-{t}-1", target_type="thing",
                               target_id=f"one-{t}")
    for i in range(2):
        ids[("b", i)] = record(server, headers=user_h, action=f"test.{t}.b", category=f"cat-{t}-2",
                               target_type="other", target_id=f"two-{t}", success=False)

    def total(**p):
        return listing(server, admin_headers, **p)["meta"]["total"]

    assert total(action=f"test.{t}.a") == 3
    assert total(action=f"test.{t}.b") == 2
    assert total(category=f"cat-{t}-1") == 3
    assert total(category=f"cat-{t}-2", success="false") == 2
    assert total(category=f"cat-{t}-2", success="true") == 0
    assert total(category=f"cat-{t}-1", success="true") == 3
    assert total(target_type="thing", target_id=f"one-{t}") == 3
    assert total(target_type="other", target_id=f"one-{t}") == 0
    assert total(target_id=f"two-{t}") == 2
    # the caller's identity becomes actor_id
    data = listing(server, admin_headers, actor_id=user["id"])["data"]
    assert {e["id"] for e in data} == {ids[("b", 0)]["id"], ids[("b", 1)]["id"]}
    assert all(e["actor_id"] == user["id"] for e in data)
    # time window (RFC 3339): everything is from today, nothing from the future or 2001
    assert total(action=f"test.{t}.a", **{"created_at[gte]": "2001-01-01T00:00:00Z"}) == 3
    assert total(action=f"test.{t}.a", **{"created_at[gte]": "2999-01-01T00:00:00.000Z"}) == 0
    assert total(action=f"test.{t}.a", **{"created_at[lte]": "2001-01-01"}) == 0
    assert total(action=f"test.{t}.a", **{"created_at[gte]": "2001-01-01", "created_at[lte]": "2999-12-31"}) == 3


def test_pagination_newest_first(server, admin_headers):
    t = tag()
    recs = [record(server, action=f"test.{t}", category="tests") for _ in range(5)]
    p1 = listing(server, admin_headers, action=f"test.{t}", limit=2, page=1)
    p2 = listing(server, admin_headers, action=f"test.{t}", limit=2, page=2)
    p3 = listing(server, admin_headers, action=f"test.{t}", limit=2, page=3)
    p4 = listing(server, admin_headers, action=f"test.{t}", limit=2, page=4)
    assert p1["meta"] == {"total": 5, "page": 1, "limit": 2, "pages": 3}
    assert p3["meta"]["page"] == 3
    assert [len(p["data"]) for p in (p1, p2, p3, p4)] == [2, 2, 1, 0]
    seqs = [e["seq"] for p in (p1, p2, p3) for e in p["data"]]
    assert seqs == sorted(seqs, reverse=True)
    assert [e["id"] for p in (p1, p2, p3) for e in p["data"]] == [r["id"] for r in reversed(recs)]


@pytest.mark.parametrize("params, field", [
    ({"nope": "1"}, "nope"),
    ({"created_at[gt]": "2020-01-01"}, "created_at[gt]"),
    ({"success": "maybe"}, "success"),
    ({"created_at[gte]": "yesterday"}, "created_at[gte]"),
    ({"created_at[lte]": "2020-13-01"}, "created_at[lte]"),
    ({"limit": "0"}, "limit"),
    ({"limit": "101"}, "limit"),
    ({"page": "0"}, "page"),
])
def test_bad_filters_are_422(server, admin_headers, params, field):
    r = server.get(LIST, headers=admin_headers, params=params)
    body = assert_problem(r, 422, "VALIDATION_ERROR")
    assert field in error_fields(body), body


def test_test_route_validates_body(server):
    assert_problem(server.post(RECORD, json={"category": "x"}), 422, "VALIDATION_ERROR")
    assert_problem(server.post(RECORD, json={"action": "a", "category": "x", "actor_id": "me"}), 422,
                   "VALIDATION_ERROR")


# ---------------------------------------------------------------- access

@pytest.mark.parametrize("path", [LIST, VERIFY])
def test_anonymous_is_401(server, path):
    assert_problem(server.get(path), 401, "UNAUTHORIZED")


@pytest.mark.parametrize("path", [LIST, VERIFY])
def test_user_is_403(server, user_headers, path):
    assert_problem(server.get(path, headers=user_headers), 403, "FORBIDDEN")


def test_no_write_routes(server, admin_headers):
    """Append-only over HTTP too: nothing edits or deletes an entry."""
    t = tag()
    rec = record(server, action=f"test.{t}", category="tests")
    for method in ("PUT", "PATCH", "DELETE"):
        r = server.request(method, LIST, headers=admin_headers, json={})
        assert r.status_code in (404, 405), (method, r.status_code)
        r = server.request(method, f"{LIST}/{rec['id']}", headers=admin_headers, json={})
        assert r.status_code in (404, 405), (method, r.status_code)


# ---------------------------------------------------------------- verify

def test_verify_ok_on_shared_server(server, admin_headers):
    record(server, action=f"test.{tag()}", category="tests")
    v = verify(server, admin_headers)
    n = total_entries(server, admin_headers)
    assert v == {"ok": True, "entries": n, "keyed_entries": n}, v
    assert v["entries"] >= 1


def test_admin_action_is_audited(server, admin_headers):
    """A real admin action (role change) writes an entry inside its transaction."""
    _, user = new_user_headers(server, prefix="audited")
    me = server.get("/api/v1/me", headers=admin_headers)
    assert me.status_code == 200, me.text
    admin_id = me.json()["id"] if "id" in me.json() else me.json()["data"]["id"]
    r = server.request("PATCH", f"/api/v1/users/{user['id']}", headers={**admin_headers, "User-Agent": "admin-ui/1"},
                       json={"role": "moderator"})
    assert r.status_code == 200, r.text
    data = listing(server, admin_headers, target_id=user["id"], action="user.role_change")["data"]
    assert len(data) == 1, data
    e = data[0]
    assert e["actor_id"] == admin_id
    assert e["category"] == "users" and e["target_type"] == "user"
    assert e["before"]["role"] == "user" and e["after"]["role"] == "moderator"
    assert e["endpoint"] == "PATCH /api/v1/users/{id}"
    assert e["user_agent"] == "admin-ui/1"
    assert e["request_id"] == r.headers.get("X-Request-Id")
    assert e["success"] is True
    assert verify(server, admin_headers)["ok"] is True


def test_tampered_row_is_reported(make_server, engine, pg_cluster):
    s, h = audit_server(make_server)
    recs = [record(s, action="test.tamper", category="tests", target_id=f"t{i}", before={"i": i}) for i in range(5)]
    n = total_entries(s, h)
    assert verify(s, h) == {"ok": True, "entries": n, "keyed_entries": n}
    victim = recs[2]

    tamper = Tamper(engine, s, pg_cluster)
    tamper.disable_triggers()
    tamper.run("UPDATE audit_logs SET target_id = ? WHERE seq = ?", ("someone-else", victim["seq"]))
    v = verify(s, h)
    assert v == {"ok": False, "entries": victim["seq"] - 1, "keyed_entries": victim["seq"] - 1,
                 "broken_at": {"seq": victim["seq"], "id": victim["id"]}, "reason": "hash mismatch"}, v
    # the log still lists, showing the edited value
    (e,) = listing(s, h, target_id="someone-else")["data"]
    assert e["id"] == victim["id"]
    # appends keep working on a broken chain, and verify keeps naming the first break
    record(s, action="test.tamper", category="tests")
    assert verify(s, h)["broken_at"]["seq"] == victim["seq"]


def test_tampered_json_and_deleted_rows(make_server, engine, pg_cluster):
    s, h = audit_server(make_server)
    recs = [record(s, action="test.tamper", category="tests", before={"amount": 10}) for _ in range(6)]
    tamper = Tamper(engine, s, pg_cluster)
    tamper.disable_triggers()
    # a row removed from the middle: the row after the hole is named
    tamper.run("DELETE FROM audit_logs WHERE seq = ?", (recs[4]["seq"],))
    v = verify(s, h)
    assert v["ok"] is False and v["reason"] == "seq gap", v
    assert v["broken_at"] == {"seq": recs[5]["seq"], "id": recs[5]["id"]}
    # an earlier edit of the before JSON is found first
    tamper.run("UPDATE audit_logs SET before_json = ? WHERE seq = ?", ('{"amount":1000}', recs[1]["seq"]))
    v = verify(s, h)
    assert v["ok"] is False and v["reason"] == "hash mismatch", v
    assert v["broken_at"] == {"seq": recs[1]["seq"], "id": recs[1]["id"]}
    assert v["entries"] == recs[1]["seq"] - 1


def test_truncated_tail_is_reported(make_server, engine, pg_cluster):
    s, h = audit_server(make_server)
    recs = [record(s, action="test.tail", category="tests") for _ in range(3)]
    tamper = Tamper(engine, s, pg_cluster)
    tamper.disable_triggers()
    tamper.run("DELETE FROM audit_logs WHERE seq = ?", (recs[-1]["seq"],))
    v = verify(s, h)
    assert v == {"ok": False, "entries": recs[-1]["seq"] - 1, "keyed_entries": recs[-1]["seq"] - 1,
                 "broken_at": {"seq": recs[-1]["seq"], "id": None}, "reason": "seq gap"}, v


def test_database_refuses_edits(make_server, engine, pg_cluster):
    """The append-only triggers refuse UPDATE and DELETE even to the database owner."""
    s, h = audit_server(make_server)
    rec = record(s, action="test.locked", category="tests")
    tamper = Tamper(engine, s, pg_cluster)
    errors = (sqlite3.DatabaseError,)
    if engine == "postgres":
        import psycopg2
        errors = (psycopg2.Error,)
    for sql in ("UPDATE audit_logs SET action = 'x' WHERE seq = ?", "DELETE FROM audit_logs WHERE seq = ?",
                "UPDATE audit_head SET seq = seq - 1 WHERE id = ?"):
        with pytest.raises(errors):
            tamper.run(sql, (rec["seq"] if "audit_logs" in sql else 1,))
    assert verify(s, h)["ok"] is True


def test_concurrent_appends_keep_the_chain(make_server):
    """20 threads x 10 appends over HTTP: every one recorded, seq contiguous, chain valid."""
    s, h = audit_server(make_server)
    start = total_entries(s, h)

    def worker(i):
        out = []
        with requests.Session() as sess:
            for j in range(10):
                r = sess.post(s.url(RECORD), json={"action": "test.concurrent", "category": "tests",
                                                   "target_id": f"w{i}-{j}"}, timeout=HTTP_TIMEOUT)
                assert r.status_code == 201, r.text
                out.append(r.json()["seq"])
        return out

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as ex:
        seqs = [q for lst in ex.map(worker, range(20)) for q in lst]
    assert len(seqs) == 200 and len(set(seqs)) == 200
    assert sorted(seqs) == list(range(start + 1, start + 201))
    assert verify(s, h) == {"ok": True, "entries": start + 200, "keyed_entries": start + 200}
    got = []
    for page in (1, 2, 3):
        got += [e["seq"] for e in listing(s, h, action="test.concurrent", limit=100, page=page)["data"]]
    assert got == list(range(start + 200, start, -1))


# ---------------------------------------------------------------- keyed MAC (issue 9 item 13)

def canonical(prev_hash, seq, id_, created_ms, actor, action, category, ttype, tid, before, after, ip, ua, endpoint,
              request_id, success):
    """audit.h's canonical encoding, as a database writer without the key could compute it."""
    def s(v):
        return b"N" if v is None else b"S%d:" % len(v.encode()) + v.encode()

    def i(v):
        return b"I%d;" % v
    return (b"temel.audit.v1\n" + s(prev_hash) + i(seq) + s(id_) + i(created_ms) + s(actor) + s(action) + s(category)
            + s(ttype) + s(tid) + s(before) + s(after) + s(ip) + s(ua) + s(endpoint) + s(request_id)
            + i(1 if success else 0))


def rewrite_tail(tamper, engine, start, null_macs=False):
    """Recompute the unkeyed SHA-256 of every entry from seq start on, and the head."""
    import hashlib
    created = "created_at" if engine == "sqlite" else "round(extract(epoch FROM created_at) * 1000)::bigint"
    rows = tamper.rows(f"SELECT seq, id, {created}, actor_id, action, category, target_type, target_id, before_json, "
                       "after_json, ip, user_agent, endpoint, request_id, success, hash FROM audit_logs ORDER BY seq")
    prev = "0" * 64
    for r in rows:
        if r[0] < start:
            prev = r[15]
            continue
        h = hashlib.sha256(canonical(prev, *r[:15])).hexdigest()
        tamper.run("UPDATE audit_logs SET prev_hash = ?, hash = ?" + (", mac = NULL" if null_macs else "") +
                   " WHERE seq = ?", (prev, h, r[0]))
        prev = h
    if engine == "sqlite":
        tamper.run("DROP TRIGGER IF EXISTS audit_head_forward")
        tamper.run("UPDATE audit_head SET hash = ? WHERE id = 1", (prev,))
    else:
        tamper.run("ALTER TABLE audit_head DISABLE TRIGGER USER")
        tamper.run("UPDATE audit_head SET hash = ? WHERE id = 1", (prev,))
        tamper.run("ALTER TABLE audit_head ENABLE TRIGGER USER")


def test_rewritten_tail_with_recomputed_hashes_is_reported(make_server, engine, pg_cluster):
    """A database writer edits an entry and recomputes the unkeyed hash chain from there to the head:
    the keyed MAC still names the edited entry, and removing its MAC does not help either."""
    s, h = audit_server(make_server)
    recs = [record(s, action="test.rewrite", category="tests", target_id=f"t{i}", before={"amount": 10})
            for i in range(5)]
    victim = recs[2]
    tamper = Tamper(engine, s, pg_cluster)
    tamper.disable_triggers()
    tamper.run("UPDATE audit_logs SET before_json = ? WHERE seq = ?", ('{"amount":1000}', victim["seq"]))
    rewrite_tail(tamper, engine, victim["seq"])
    v = verify(s, h)
    assert v["ok"] is False and v["reason"] == "mac mismatch", v
    assert v["broken_at"] == {"seq": victim["seq"], "id": victim["id"]}
    assert v["entries"] == victim["seq"] - 1
    rewrite_tail(tamper, engine, victim["seq"], null_macs=True)
    v = verify(s, h)
    assert v["ok"] is False and v["reason"] == "mac missing", v
    assert v["broken_at"] == {"seq": victim["seq"], "id": victim["id"]}


def test_entries_before_the_mac_migration_verify(make_server, engine, pg_cluster):
    """Entries written before migration 0013 have no MAC (link version 1): as a prefix of the
    chain they verify, counted apart; a head without a MAC over a keyed chain does not."""
    s, h = audit_server(make_server)
    recs = [record(s, action="test.legacy", category="tests") for _ in range(4)]
    n = total_entries(s, h)
    tamper = Tamper(engine, s, pg_cluster)
    tamper.disable_triggers()
    tamper.run("UPDATE audit_logs SET mac = NULL WHERE seq <= ?", (recs[1]["seq"],))
    assert verify(s, h) == {"ok": True, "entries": n, "keyed_entries": n - recs[1]["seq"]}
    if engine == "sqlite":
        tamper.run("DROP TRIGGER IF EXISTS audit_head_forward")
    else:
        tamper.run("ALTER TABLE audit_head DISABLE TRIGGER USER")
    tamper.run("UPDATE audit_head SET mac = NULL WHERE id = 1")
    v = verify(s, h)
    assert v["ok"] is False and v["reason"] == "head mismatch", v
