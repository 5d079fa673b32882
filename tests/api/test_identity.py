"""Identity and access (issue 4, API.md §3) through the real server, on the
engine of TEMEL_TEST_DB. Mail and SMS are read back from the file transports."""
import concurrent.futures
import os
import time

import pytest
import requests

from conftest import Server, assert_problem, error_fields, sanitizer_reports
from identity_util import (PASSWORD, bearer, code_from_text, decode_jwt, jwt_secret, mail_text, register,
                           sign_jwt, token_from_mail, unique_email, wait_mail, wait_sms)

ADMIN_EMAIL = "root-admin@example.com"
ADMIN_PASSWORD = "admin password for tests 1"


def start_server(db_factory, **env):
    s = Server(db_factory.new_url(), env={
        "TEMEL_RATE_LIMIT_READ": "1000000/60",
        "TEMEL_RATE_LIMIT_WRITE": "1000000/60",
        "TEMEL_RATE_LIMIT_AUTH": "1000000/60",
        "TEMEL_RATE_LIMIT_EMAIL": "1000000/60",
        "TEMEL_ADMIN_EMAIL": ADMIN_EMAIL,
        "TEMEL_ADMIN_PASSWORD": ADMIN_PASSWORD,
        **env,
    })
    s.env.setdefault("TEMEL_MAIL_URL", f"file://{s.dir}/mail")
    s.env.setdefault("TEMEL_SMS_URL", f"file://{s.dir}/sms")
    s.start()
    return s


def stop_server(db_factory, s):
    rc = s.stop() if s.alive() else s.proc.poll()
    reports = s.sanitizer_reports()
    s.cleanup()
    db_factory.drop(s.db_url)
    assert rc == 0, f"exit {rc}"
    assert not reports, reports


@pytest.fixture(scope="module")
def ids(db_factory):
    s = start_server(db_factory)
    yield s
    stop_server(db_factory, s)


@pytest.fixture
def fresh(db_factory):
    """A server of its own, for tests that change limits or time."""
    made = []

    def make(**env):
        s = start_server(db_factory, **env)
        made.append(s)
        return s
    yield make
    for s in made:
        stop_server(db_factory, s)


def login(s, email_addr, password=PASSWORD):
    return s.post("/api/v1/auth/login", json={"email": email_addr, "password": password})


def admin_token(s):
    r = login(s, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


# ---- register / login / me ----

def test_register_returns_tokens_and_user(ids):
    addr, body = register(ids, unique_email("Reg"))
    assert set(body) >= {"user", "access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    u = body["user"]
    assert u["email"] == addr.lower()  # trimmed, lower-cased (issue 9 #12)
    assert u["role"] == "user" and u["email_verified"] is False
    assert set(u) >= {"id", "email", "phone", "name", "role", "locale", "email_verified", "profile_complete",
                      "created_at"}
    hdr, claims = decode_jwt(body["access_token"])
    assert hdr["alg"] == "HS256"
    assert set(claims) >= {"sub", "role", "jti", "iat", "exp"}
    assert claims["sub"] == u["id"] and claims["exp"] - claims["iat"] == 900
    me = ids.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.json()["id"] == u["id"]
    assert me.headers["Cache-Control"] == "no-store"
    alias = ids.get("/api/v1/users/me", headers=bearer(body["access_token"]))
    assert alias.json() == me.json()


def test_register_duplicate_answers_like_a_success(ids):
    # issue 9 #10: 202 without tokens (API.md said 409), the owner gets a mail
    addr, _ = register(ids)
    r = ids.post("/api/v1/auth/register", json={"email": addr, "password": PASSWORD, "name": "x"})
    assert r.status_code == 202, r.text
    assert r.json() == {"status": "accepted"}
    wait_mail(ids, addr.lower(), "sign up")


@pytest.mark.parametrize("pw,why", [
    ("short", "at least 10"),
    ("password123", "common"),
    ("aaaaaaaaaaaa", "common"),
])
def test_password_policy(ids, pw, why):
    r = ids.post("/api/v1/auth/register", json={"email": unique_email(), "password": pw, "name": "x"})
    assert_problem(r, 422, "VALIDATION_ERROR")
    assert "password" in error_fields(r.json())
    assert why in r.text


def test_password_may_not_be_the_email(ids):
    addr = unique_email()
    r = ids.post("/api/v1/auth/register", json={"email": addr, "password": addr, "name": "x"})
    assert_problem(r, 422, "VALIDATION_ERROR")


@pytest.mark.parametrize("bad", ["no-at-sign", "a@b", "two@@x.com", "sp ace@x.com", "x@.com"])
def test_register_bad_email_is_422(ids, bad):
    r = ids.post("/api/v1/auth/register", json={"email": bad, "password": PASSWORD, "name": "x"})
    assert_problem(r, 422, "VALIDATION_ERROR")
    assert "email" in error_fields(r.json())


def test_register_unknown_field_is_422_and_creates_nothing(ids):
    addr = unique_email()
    r = ids.post("/api/v1/auth/register", json={"email": addr, "password": PASSWORD, "name": "x", "role": "admin"})
    assert_problem(r, 422, "VALIDATION_ERROR")
    assert "role" in error_fields(r.json())
    assert_problem(login(ids, addr), 401, "INVALID_CREDENTIALS")


def test_login_same_401_for_unknown_email_and_wrong_password(ids):
    addr, _ = register(ids)
    a = login(ids, addr, "wrong password here")
    b = login(ids, unique_email("nobody"), "wrong password here")
    assert_problem(a, 401, "INVALID_CREDENTIALS")
    assert_problem(b, 401, "INVALID_CREDENTIALS")
    ja, jb = a.json(), b.json()
    for k in ("request_id",):
        ja.pop(k), jb.pop(k)
    assert ja == jb
    ok = login(ids, addr)
    assert ok.status_code == 200 and ok.json()["user"]["email"].lower() == addr.lower()


def test_login_email_case_of_domain_does_not_matter(ids):
    addr, _ = register(ids, "Mixed-" + unique_email()[2:])
    local, domain = addr.split("@")
    assert login(ids, f"  {local}@{domain.upper()} ").status_code == 200


# ---- tokens ----

def test_token_in_query_string_is_not_accepted(ids):
    _, body = register(ids)
    r = ids.get("/api/v1/me?access_token=" + body["access_token"])
    assert_problem(r, 401, "UNAUTHORIZED")
    r = ids.get("/api/v1/me?token=" + body["access_token"])
    assert_problem(r, 401, "UNAUTHORIZED")
    # and the token never reaches the log
    assert body["access_token"] not in ids.log_text()


def test_bad_tokens_are_401(ids):
    _, body = register(ids)
    tok = body["access_token"]
    secret = jwt_secret(ids)
    hdr, claims = decode_jwt(tok)
    h, p, sig = tok.split(".")
    tampered_claims = dict(claims, role="admin")
    cases = {
        "tampered payload": f"{h}.{sign_jwt(b'x' * 40, tampered_claims).split('.')[1]}.{sig}",
        "tampered signature": f"{h}.{p}.{sig[:-2]}{'AA' if sig[-2:] != 'AA' else 'BB'}",
        "wrong secret": sign_jwt(b"another secret that is long enough!!", claims),
        "expired": sign_jwt(secret, dict(claims, iat=claims["iat"] - 7200, exp=claims["iat"] - 3600)),
        "alg none": f"{sign_jwt(secret, claims, {'alg': 'none', 'typ': 'JWT'}).rsplit('.', 1)[0]}.",
        "alg HS512": sign_jwt(secret, claims, {"alg": "HS512", "typ": "JWT"}),
        "alg none signed": sign_jwt(secret, claims, {"alg": "none"}),
        "garbage": "not.a.jwt",
        "two parts": f"{h}.{p}",
        "empty": "",
    }
    for name, t in cases.items():
        r = ids.get("/api/v1/me", headers={"Authorization": f"Bearer {t}"})
        assert r.status_code == 401, (name, r.status_code, r.text)
    # the genuine token, re-signed with the real secret, still works: the secret is the only key
    assert ids.get("/api/v1/me", headers=bearer(sign_jwt(secret, claims))).status_code == 200
    r = ids.get("/api/v1/me", headers={"Authorization": f"Basic {tok}"})
    assert r.status_code == 401


def test_refresh_rotates_and_reuse_revokes_family(fresh):
    s = fresh(TEMEL_REFRESH_REUSE_GRACE_MS="0")
    _, body = register(s)
    rt1 = body["refresh_token"]
    r = s.post("/api/v1/auth/refresh", json={"refresh_token": rt1})
    assert r.status_code == 200, r.text
    pair2 = r.json()
    assert pair2["refresh_token"] != rt1 and pair2["access_token"] != body["access_token"]
    r = s.post("/api/v1/auth/refresh", json={"refresh_token": pair2["refresh_token"]})
    assert r.status_code == 200
    pair3 = r.json()
    assert s.get("/api/v1/me", headers=bearer(pair3["access_token"])).status_code == 200
    # replaying the first (used) token: theft assumed, the whole family dies
    r = s.post("/api/v1/auth/refresh", json={"refresh_token": rt1})
    assert_problem(r, 401, "UNAUTHORIZED")
    assert s.post("/api/v1/auth/refresh", json={"refresh_token": pair3["refresh_token"]}).status_code == 401
    assert s.get("/api/v1/me", headers=bearer(pair3["access_token"])).status_code == 401
    assert s.get("/api/v1/me", headers=bearer(body["access_token"])).status_code == 401
    # a new login is a new family and works
    assert login(s, body["user"]["email"]).status_code == 200


def test_refresh_reuse_within_grace_rotates_instead(fresh):
    s = fresh(TEMEL_REFRESH_REUSE_GRACE_MS="1500")
    _, body = register(s)
    rt1 = body["refresh_token"]
    a = s.post("/api/v1/auth/refresh", json={"refresh_token": rt1})
    assert a.status_code == 200
    # the client lost that response and retries with the same token: a new pair, same family
    b = s.post("/api/v1/auth/refresh", json={"refresh_token": rt1})
    assert b.status_code == 200, b.text
    assert b.json()["refresh_token"] != a.json()["refresh_token"]
    assert len(s.get("/api/v1/me/sessions", headers=bearer(b.json()["access_token"])).json()["data"]) == 1
    # once the grace window has passed, the same replay is theft: the family dies
    time.sleep(2.0)
    assert s.post("/api/v1/auth/refresh", json={"refresh_token": rt1}).status_code == 401
    assert s.get("/api/v1/me", headers=bearer(b.json()["access_token"])).status_code == 401
    assert s.post("/api/v1/auth/refresh", json={"refresh_token": b.json()["refresh_token"]}).status_code == 401


def test_refresh_with_unknown_token_is_401(ids):
    assert_problem(ids.post("/api/v1/auth/refresh", json={"refresh_token": "rt_nope"}), 401, "UNAUTHORIZED")


def test_concurrent_refresh_with_one_token_yields_one_family(fresh):
    s = fresh(TEMEL_REFRESH_REUSE_GRACE_MS="0")
    _, body = register(s)
    rt = body["refresh_token"]
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        codes = list(ex.map(lambda _: requests.post(s.url("/api/v1/auth/refresh"),
                                                    json={"refresh_token": rt}, timeout=10).status_code, range(8)))
    assert codes.count(200) == 1, codes


def test_logout_kills_access_token_at_once(ids):
    _, body = register(ids)
    h = bearer(body["access_token"])
    assert ids.get("/api/v1/me", headers=h).status_code == 200
    r = ids.post("/api/v1/auth/logout", headers=h)
    assert r.status_code == 204, r.text
    assert_problem(ids.get("/api/v1/me", headers=h), 401, "UNAUTHORIZED")
    assert ids.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]}).status_code == 401


def test_logout_all_and_sessions(ids):
    addr, body = register(ids)
    second = login(ids, addr).json()
    h1, h2 = bearer(body["access_token"]), bearer(second["access_token"])
    r = ids.get("/api/v1/me/sessions", headers=h1)
    assert r.status_code == 200
    sess = r.json()["data"]
    assert len(sess) == 2 and sum(1 for x in sess if x["current"]) == 1
    # end the other session by id
    other = next(x for x in sess if not x["current"])
    assert ids.delete(f"/api/v1/me/sessions/{other['id']}", headers=h1).status_code == 204
    assert ids.get("/api/v1/me", headers=h2).status_code == 401
    assert ids.get("/api/v1/me", headers=h1).status_code == 200
    third = login(ids, addr).json()
    assert ids.post("/api/v1/auth/logout-all", headers=h1).status_code == 204
    assert ids.get("/api/v1/me", headers=h1).status_code == 401
    assert ids.get("/api/v1/me", headers=bearer(third["access_token"])).status_code == 401


def test_other_users_sessions_and_keys_are_404(ids):
    _, a = register(ids)
    _, b = register(ids)
    ha, hb = bearer(a["access_token"]), bearer(b["access_token"])
    sid = ids.get("/api/v1/me/sessions", headers=ha).json()["data"][0]["id"]
    assert_problem(ids.delete(f"/api/v1/me/sessions/{sid}", headers=hb), 404, "NOT_FOUND")
    assert ids.get("/api/v1/me", headers=ha).status_code == 200  # untouched
    k = ids.post("/api/v1/me/api-keys", json={"name": "a-key", "scopes": ["read"]}, headers=ha).json()
    assert_problem(ids.delete(f"/api/v1/me/api-keys/{k['id']}", headers=hb), 404, "NOT_FOUND")
    assert all(x["id"] != k["id"] for x in ids.get("/api/v1/me/api-keys", headers=hb).json()["data"])
    assert ids.get("/api/v1/me", headers=bearer(k["key"])).status_code == 200


# ---- API keys ----

def test_api_key_shown_once_and_authenticates(ids):
    _, body = register(ids)
    h = bearer(body["access_token"])
    r = ids.post("/api/v1/me/api-keys", json={"name": "server", "scopes": ["read", "write"]}, headers=h)
    assert r.status_code == 201, r.text
    k = r.json()
    assert k["key"].startswith("tml_") and k["key"].startswith(k["prefix"])
    listed = ids.get("/api/v1/me/api-keys", headers=h).json()["data"]
    assert [x["id"] for x in listed] == [k["id"]]
    assert "key" not in listed[0] and k["key"] not in ids.get("/api/v1/me/api-keys", headers=h).text
    me = ids.get("/api/v1/me", headers=bearer(k["key"]))
    assert me.status_code == 200 and me.json()["id"] == body["user"]["id"]
    assert ids.delete(f"/api/v1/me/api-keys/{k['id']}", headers=h).status_code == 204
    assert ids.get("/api/v1/me", headers=bearer(k["key"])).status_code == 401
    r = ids.post("/api/v1/me/api-keys", json={"name": "x", "scopes": ["root"]}, headers=h)
    assert_problem(r, 422, "VALIDATION_ERROR")
    r = ids.post("/api/v1/me/api-keys", json={"name": "x", "scopes": ["admin"]}, headers=h)
    assert_problem(r, 403, "FORBIDDEN")


# ---- /me ----

def test_patch_me_and_mass_assignment(ids, db_factory):
    _, body = register(ids)
    h = bearer(body["access_token"])
    uid = body["user"]["id"]
    r = ids.patch("/api/v1/me", json={"name": "New Name", "locale": "tr", "phone": "+905551234567",
                                     "profile": {"city": "İzmir"}}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "New Name" and r.json()["locale"] == "tr" and r.json()["profile"] == {"city": "İzmir"}
    before = ids.get("/api/v1/me", headers=h).json()
    for field, value in (("role", "admin"), ("email_verified", True), ("id", "x"), ("email", "a@b.co"),
                         ("status", "active"), ("created_at", "2020-01-01T00:00:00.000Z")):
        r = ids.patch("/api/v1/me", json={"name": "Hacker", field: value}, headers=h)
        assert_problem(r, 422, "VALIDATION_ERROR")
        assert field in error_fields(r.json())
    assert ids.get("/api/v1/me", headers=h).json() == before
    rows = db_factory.query(ids.db_url, "SELECT role, name FROM users WHERE id = ?", (uid,))
    assert rows == [("user", "New Name")]
    assert_problem(ids.patch("/api/v1/me", json={"locale": "de"}, headers=h), 422, "VALIDATION_ERROR")
    assert_problem(ids.patch("/api/v1/me", json={"phone": "12345"}, headers=h), 422, "VALIDATION_ERROR")


def test_delete_me_export_and_login_fails(ids, db_factory):
    addr, body = register(ids)
    h = bearer(body["access_token"])
    ids.patch("/api/v1/me", json={"name": "Exported Person"}, headers=h)
    ids.post("/api/v1/me/api-keys", json={"name": "k1"}, headers=h)
    r = ids.get("/api/v1/me/export", headers=h)
    assert r.status_code == 200
    ex = r.json()
    assert ex["user"]["name"] == "Exported Person" and ex["user"]["email"].lower() == addr.lower()
    assert len(ex["sessions"]) == 1 and [k["name"] for k in ex["api_keys"]] == ["k1"]
    assert "key_hash" not in r.text and "password" not in r.text
    assert ids.delete("/api/v1/me", headers=h).status_code == 204
    assert_problem(login(ids, addr), 401, "INVALID_CREDENTIALS")
    assert ids.get("/api/v1/me", headers=h).status_code == 401
    uid = body["user"]["id"]
    for table, col in (("users", "id"), ("sessions", "user_id"), ("api_keys", "user_id")):
        assert db_factory.query(ids.db_url, f"SELECT count(*) FROM {table} WHERE {col} = ?", (uid,)) == [(0,)]


# ---- email verification and password reset ----

def test_verify_email_flow(ids):
    addr, body = register(ids)
    msg = wait_mail(ids, addr.split("@")[0], "confirm")
    tok = token_from_mail(msg)
    assert tok not in ids.log_text()
    assert ids.post("/api/v1/auth/verify-email", json={"token": tok}).status_code == 204
    assert ids.get("/api/v1/me", headers=bearer(body["access_token"])).json()["email_verified"] is True
    # single use
    assert_problem(ids.post("/api/v1/auth/verify-email", json={"token": tok}), 422, "VALIDATION_ERROR")


def test_forgot_and_reset_password(ids):
    addr, body = register(ids)
    unknown = ids.post("/api/v1/auth/forgot-password", json={"email": unique_email("ghost")})
    r = ids.post("/api/v1/auth/forgot-password", json={"email": addr})
    assert r.status_code == 202 and unknown.status_code == 202
    assert r.json() == unknown.json()
    tok = token_from_mail(wait_mail(ids, addr.split("@")[0], "reset"))
    new_pw = "a brand new passphrase 42"
    assert_problem(ids.post("/api/v1/auth/reset-password", json={"token": tok, "password": "short"}), 422)
    r = ids.post("/api/v1/auth/reset-password", json={"token": tok, "password": new_pw})
    assert r.status_code == 204, r.text
    # all sessions ended, old password dead, new one works, token single use
    assert ids.get("/api/v1/me", headers=bearer(body["access_token"])).status_code == 401
    assert login(ids, addr).status_code == 401
    assert login(ids, addr, new_pw).status_code == 200
    assert_problem(ids.post("/api/v1/auth/reset-password", json={"token": tok, "password": new_pw + "x"}), 422)


# ---- OTP ----

def test_otp_email_creates_account_then_complete_profile(ids):
    addr = unique_email("otp").lower()
    assert ids.post("/api/v1/auth/send-otp", json={"email": addr}).status_code == 202
    code = code_from_text(mail_text(wait_mail(ids, addr, "code")))
    assert code not in ids.log_text()
    r = ids.post("/api/v1/auth/verify-otp", json={"email": addr, "code": code})
    assert r.status_code == 200, r.text
    u = r.json()["user"]
    assert u["profile_complete"] is False and u["email_verified"] is True
    h = bearer(r.json()["access_token"])
    r = ids.post("/api/v1/me/complete-profile", json={"name": "Otp Person"}, headers=h)
    assert r.status_code == 200 and r.json()["profile_complete"] is True and r.json()["name"] == "Otp Person"
    # a code works once
    assert_problem(ids.post("/api/v1/auth/verify-otp", json={"email": addr, "code": code}), 401)


def test_otp_phone_by_sms(ids):
    phone = "+9055" + str(int(time.time() * 1000))[-8:]
    assert ids.post("/api/v1/auth/send-otp", json={"phone": phone}).status_code == 202
    code = code_from_text(wait_sms(ids, phone)["text"])
    r = ids.post("/api/v1/auth/verify-otp", json={"phone": phone, "code": code})
    assert r.status_code == 200 and r.json()["user"]["phone"] == phone


def test_otp_five_wrong_then_right_fails(ids):
    addr = unique_email("otp5").lower()
    assert ids.post("/api/v1/auth/send-otp", json={"email": addr}).status_code == 202
    code = code_from_text(mail_text(wait_mail(ids, addr, "code")))
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        assert_problem(ids.post("/api/v1/auth/verify-otp", json={"email": addr, "code": wrong}), 401)
    assert_problem(ids.post("/api/v1/auth/verify-otp", json={"email": addr, "code": code}), 401)


def test_otp_resend_is_throttled_and_input_checked(ids):
    addr = unique_email("otpr").lower()
    assert ids.post("/api/v1/auth/send-otp", json={"email": addr}).status_code == 202
    r = ids.post("/api/v1/auth/send-otp", json={"email": addr})
    assert_problem(r, 429, "RATE_LIMIT_EXCEEDED")
    assert int(r.headers["Retry-After"]) >= 1
    assert_problem(ids.post("/api/v1/auth/send-otp", json={}), 422)
    assert_problem(ids.post("/api/v1/auth/send-otp", json={"email": addr, "phone": "+905551112233"}), 422)
    assert_problem(ids.post("/api/v1/auth/send-otp", json={"phone": "0555"}), 422)


def test_no_plaintext_secrets_in_database(ids, db_factory):
    addr, body = register(ids)
    h = bearer(body["access_token"])
    key = ids.post("/api/v1/me/api-keys", json={"name": "k"}, headers=h).json()["key"]
    ids.post("/api/v1/auth/forgot-password", json={"email": addr})
    reset_tok = token_from_mail(wait_mail(ids, addr.split("@")[0], "reset"))
    otp_addr = unique_email("plain").lower()
    ids.post("/api/v1/auth/send-otp", json={"email": otp_addr})
    code = code_from_text(mail_text(wait_mail(ids, otp_addr, "code")))
    secrets = [key, reset_tok, body["refresh_token"], code, PASSWORD]
    # delivered mail leaves no secret behind in the job queue either
    from identity_util import wait_for
    wait_for(lambda: db_factory.query(ids.db_url, "SELECT count(*) FROM jobs WHERE kind IN ('mail.send', 'sms.send') "
                                                  "AND state NOT IN ('succeeded', 'failed', 'dead')") == [(0,)],
             what="delivery jobs to finish")
    dump = []
    for table in ("users", "sessions", "refresh_tokens", "user_tokens", "otp_codes", "api_keys", "jobs"):
        for row in db_factory.query(ids.db_url, f"SELECT * FROM {table}"):
            dump.append(" ".join(str(c) for c in row))
    text = "\n".join(dump)
    for sec in secrets:
        assert sec not in text, f"plaintext secret found in the database: {sec[:6]}..."
    # the password is stored as an argon2id hash
    assert any("$argon2id$" in line for line in dump)


# ---- guests ----

def test_guest_and_migrate_guest_data(ids):
    r = ids.post("/api/v1/auth/guest")
    assert r.status_code == 201
    g = r.json()
    assert g["user"]["role"] == "guest"
    gh = bearer(g["access_token"])
    assert ids.get("/api/v1/me", headers=gh).status_code == 200
    _, body = register(ids)
    h = bearer(body["access_token"])
    assert_problem(ids.post("/api/v1/auth/migrate-guest-data", json={"guest_token": "x.y.z"}, headers=h), 422)
    r = ids.post("/api/v1/auth/migrate-guest-data", json={"guest_token": g["access_token"]}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["guest_id"] == g["user"]["id"]
    # the guest account is gone; its token no longer works
    assert ids.get("/api/v1/me", headers=gh).status_code == 401
    # a guest cannot take over another guest, and a used guest token fails
    g2 = ids.post("/api/v1/auth/guest").json()
    assert_problem(ids.post("/api/v1/auth/migrate-guest-data", json={"guest_token": g["access_token"]},
                            headers=bearer(g2["access_token"])), 403)
    assert_problem(ids.post("/api/v1/auth/migrate-guest-data", json={"guest_token": g["access_token"]}, headers=h),
                   422)


# ---- roles and admin ----

def test_user_gets_403_on_admin_routes_and_401_anonymous(ids):
    _, body = register(ids)
    h = bearer(body["access_token"])
    for method, path in (("GET", "/api/v1/users"), ("GET", f"/api/v1/users/{body['user']['id']}"),
                         ("PATCH", f"/api/v1/users/{body['user']['id']}"),
                         ("DELETE", f"/api/v1/users/{body['user']['id']}")):
        kw = {"json": {"role": "admin"}} if method == "PATCH" else {}
        assert_problem(ids.request(method, path, headers=h, **kw), 403, "FORBIDDEN")
        assert_problem(ids.request(method, path, **kw), 401, "UNAUTHORIZED")
    assert ids.get("/api/v1/me", headers=h).json()["role"] == "user"


def test_admin_manages_users_and_role_change_is_immediate(ids):
    at = bearer(admin_token(ids))
    addr, body = register(ids, unique_email("managed"))
    uid = body["user"]["id"]
    h = bearer(body["access_token"])
    r = ids.get("/api/v1/users?role=user&q=" + addr.split("@")[0][:10], headers=at)
    assert r.status_code == 200
    assert [u["id"] for u in r.json()["data"]] == [uid]
    assert r.json()["meta"]["total"] == 1
    assert_problem(ids.get("/api/v1/users?bogus=1", headers=at), 422)
    assert_problem(ids.get("/api/v1/users?limit=1000", headers=at), 422)
    r = ids.patch(f"/api/v1/users/{uid}", json={"role": "moderator"}, headers=at)
    assert r.status_code == 200 and r.json()["role"] == "moderator"
    # the old token now carries the new role (read from the database, not the token)
    assert ids.get("/api/v1/me", headers=h).json()["role"] == "moderator"
    assert_problem(ids.patch(f"/api/v1/users/{uid}", json={"role": "god"}, headers=at), 422)
    r = ids.patch(f"/api/v1/users/{uid}", json={"status": "banned"}, headers=at)
    assert r.status_code == 200 and r.json()["status"] == "banned"
    assert ids.get("/api/v1/me", headers=h).status_code in (401, 403)
    assert login(ids, addr).status_code == 403
    admin_id = ids.get("/api/v1/me", headers=at).json()["id"]
    assert_problem(ids.patch(f"/api/v1/users/{admin_id}", json={"role": "user"}, headers=at), 409)
    assert ids.delete(f"/api/v1/users/{uid}", headers=at).status_code == 204
    assert_problem(ids.get(f"/api/v1/users/{uid}", headers=at), 404)
    assert_problem(ids.delete(f"/api/v1/users/{uid}", headers=at), 404)


def test_admin_actions_are_audited(ids):
    at = bearer(admin_token(ids))
    _, body = register(ids)
    uid = body["user"]["id"]
    assert ids.patch(f"/api/v1/users/{uid}", json={"role": "moderator"}, headers=at).status_code == 200
    r = ids.get(f"/api/v1/admin/audit-logs?target_id={uid}", headers=at)
    assert r.status_code == 200, r.text
    entries = r.json()["data"]
    assert len(entries) == 1
    e = entries[0]
    assert e["action"] == "user.role_change" and e["before"]["role"] == "user" and e["after"]["role"] == "moderator"
    v = ids.get("/api/v1/admin/audit-logs/verify", headers=at)
    assert v.status_code == 200 and v.json()["ok"] is True


# ---- throttling ----

def test_login_throttled_per_ip(fresh):
    s = fresh(TEMEL_RATE_LIMIT_AUTH="3/60")
    codes = [login(s, unique_email(), "whatever password").status_code for _ in range(4)]
    assert codes[:3] == [401, 401, 401]
    assert codes[3] == 429


def test_login_throttled_per_account(ids, db_factory):
    addr, _ = register(ids)
    for _ in range(5):
        assert login(ids, addr, "wrong password again").status_code == 401
    # even the right password fails now, exactly like an unknown account (issue 9 #5)
    r = login(ids, addr)
    assert_problem(r, 401, "INVALID_CREDENTIALS")
    rows = db_factory.query(ids.db_url, "SELECT failed_logins FROM users WHERE email = ?", (addr.lower(),))
    assert rows == [(5,)]


def test_bootstrap_admin_and_cli_user_create(run_cli, db_factory):
    url = db_factory.new_url()
    r = run_cli("user", "create", "--admin", "--email", "cli-admin@example.com", "--password", ADMIN_PASSWORD,
                db_url=url)
    assert r.returncode == 0, r.stderr
    rows = db_factory.query(url, "SELECT role, email_verified FROM users WHERE email = ?", ("cli-admin@example.com",))
    assert len(rows) == 1 and rows[0][0] == "admin"
    r = run_cli("user", "create", "--email", "cli-admin@example.com", "--password", ADMIN_PASSWORD, db_url=url)
    assert r.returncode != 0 and "exists" in (r.stderr.decode() if isinstance(r.stderr, bytes) else r.stderr)
    r = run_cli("user", "create", "--email", "weak@example.com", "--password", "short", db_url=url)
    assert r.returncode == 2 and "password" in (r.stderr.decode() if isinstance(r.stderr, bytes) else r.stderr)


def test_delivery_secrets_are_redacted_for_admins(ids):
    at = bearer(admin_token(ids))
    addr = unique_email("redact").lower()
    assert ids.post("/api/v1/auth/send-otp", json={"email": addr}).status_code == 202
    code = code_from_text(mail_text(wait_mail(ids, addr, "code")))
    jobs = ids.get("/api/v1/admin/jobs?kind=mail.send&limit=100", headers=at)
    assert jobs.status_code == 200, jobs.text
    assert jobs.json()["data"]
    for j in jobs.json()["data"]:
        one = ids.get(f"/api/v1/admin/jobs/{j['id']}", headers=at)
        assert one.status_code == 200
        assert one.json()["payload"] == {"redacted": True}
        assert code not in one.text
