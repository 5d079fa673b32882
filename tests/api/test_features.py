"""Feature flags (API.md §12): admin CRUD on /admin/features and /admin/feature-overrides,
GET /features evaluated for the caller — enabled, roles, a percentage rollout by a stable
hash of the user id (BLAKE2b-64 of key NUL user_id, mod 100), per-user overrides — and the
per-instance cache invalidated by every write."""
import hashlib
import uuid

import pytest

from conftest import assert_problem, new_user_headers

API = "/api/v1"


def bucket(key, user_id):
    return int.from_bytes(hashlib.blake2b(key.encode() + b"\0" + user_id.encode(), digest_size=8).digest(),
                          "big") % 100


def key():
    return f"f_{uuid.uuid4().hex[:10]}"


def flag(server, admin, status=201, **body):
    r = server.post(f"{API}/admin/features", json=body, headers=admin)
    assert r.status_code == status, r.text
    return r.json()


def features(server, headers=None):
    r = server.get(f"{API}/features", headers=headers or {})
    assert r.status_code == 200, r.text
    return r.json()["features"]


def test_enabled_flag_reaches_everyone_and_follows_writes(server, admin_headers):
    k = key()
    f = flag(server, admin_headers, key=k, enabled=True, description="new checkout")
    assert f["rollout_percent"] == 100 and f["roles"] == []
    h, _ = new_user_headers(server, "feat")
    assert features(server)[k] is True
    assert features(server, h)[k] is True
    # a write is seen at once by this instance (the cache is invalidated by it)
    r = server.patch(f"{API}/admin/features/{f['id']}", json={"enabled": False}, headers=admin_headers)
    assert r.status_code == 200, r.text
    assert features(server)[k] is False and features(server, h)[k] is False
    assert server.delete(f"{API}/admin/features/{f['id']}", headers=admin_headers).status_code == 204
    assert k not in features(server)


def test_roles(server, admin_headers):
    k = key()
    flag(server, admin_headers, key=k, enabled=True, roles=["admin", "moderator"])
    h, _ = new_user_headers(server, "feat")
    assert features(server)[k] is False
    assert features(server, h)[k] is False
    assert features(server, admin_headers)[k] is True


def test_percentage_rollout_is_the_stable_hash(server, admin_headers):
    k = key()
    f = flag(server, admin_headers, key=k, enabled=True, rollout_percent=40)
    users = [new_user_headers(server, "roll") for _ in range(12)]
    got = {u["id"]: features(server, h)[k] for h, u in users}
    want = {u["id"]: bucket(k, u["id"]) < 40 for _, u in users}
    assert got == want
    assert {u["id"]: features(server, h)[k] for h, u in users} == got  # stable
    assert features(server)[k] is False  # a partial rollout never includes the anonymous
    # widening keeps everyone who had it
    server.patch(f"{API}/admin/features/{f['id']}", json={"rollout_percent": 90}, headers=admin_headers)
    wider = {u["id"]: features(server, h)[k] for h, u in users}
    assert all(wider[i] for i, v in got.items() if v)
    assert wider == {u["id"]: bucket(k, u["id"]) < 90 for _, u in users}


def test_overrides_win(server, admin_headers):
    k = key()
    f = flag(server, admin_headers, key=k, enabled=True, rollout_percent=0)
    (h1, u1), (h2, u2) = new_user_headers(server, "ov"), new_user_headers(server, "ov")
    assert features(server, h1)[k] is False
    r = server.post(f"{API}/admin/feature-overrides", headers=admin_headers,
                    json={"flag_id": f["id"], "user_id": u1["id"], "enabled": True})
    assert r.status_code == 201, r.text
    assert features(server, h1)[k] is True and features(server, h2)[k] is False
    # an override can also switch an enabled flag off for one user
    server.patch(f"{API}/admin/features/{f['id']}", json={"rollout_percent": 100}, headers=admin_headers)
    r2 = server.post(f"{API}/admin/feature-overrides", headers=admin_headers,
                     json={"flag_id": f["id"], "user_id": u2["id"], "enabled": False})
    assert r2.status_code == 201, r2.text
    assert features(server, h2)[k] is False
    assert server.delete(f"{API}/admin/feature-overrides/{r2.json()['id']}", headers=admin_headers).status_code == 204
    assert features(server, h2)[k] is True
    # one override per user and flag
    dup = server.post(f"{API}/admin/feature-overrides", headers=admin_headers,
                      json={"flag_id": f["id"], "user_id": u1["id"], "enabled": False})
    assert dup.status_code == 409, dup.text


@pytest.mark.parametrize("body,field", [
    ({"key": "Bad Key", "enabled": True}, "key"),
    ({"key": "ok_key", "rollout_percent": 101}, "rollout_percent"),
    ({"key": "ok_key", "rollout_percent": -1}, "rollout_percent"),
    ({"key": "ok_key", "roles": ["root"]}, "roles"),
    ({"key": "ok_key", "roles": ["user", "admin", "guest", "moderator", "user"]}, "roles"),
    ({"enabled": True}, "key"),
])
def test_bad_input_is_422_and_writes_nothing(server, admin_headers, body, field):
    before = server.get(f"{API}/admin/features", headers=admin_headers).json()["meta"]
    r = server.post(f"{API}/admin/features", json=body, headers=admin_headers)
    assert_problem(r, 422, "VALIDATION_ERROR")
    assert field in r.text
    assert server.get(f"{API}/admin/features", headers=admin_headers).json()["meta"] == before


def test_admin_only(server):
    h, _ = new_user_headers(server, "nf")
    assert server.post(f"{API}/admin/features", json={"key": key()}, headers=h).status_code == 403
    assert server.get(f"{API}/admin/features", headers=h).status_code == 403
    assert server.post(f"{API}/admin/features", json={"key": key()}).status_code == 401
