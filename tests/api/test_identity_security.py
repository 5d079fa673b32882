"""Issue 9, the identity half: account pre-claim (#2), API-key scopes (#3), OTP
brute force (#4), login lockout race and enumeration (#5), reset-password
checks the token first (#6), enumeration (#10), races (#11), case-insensitive
emails (#12). Through the real server on the engine of TEMEL_TEST_DB."""
import concurrent.futures
import re
import time

import requests

from conftest import ENGINE, assert_problem
from identity_util import (PASSWORD, bearer, code_from_text, mail_text, mails, register, sms_messages,
                           token_from_mail, unique_email, wait_for, wait_mail, wait_sms)
from test_identity import ADMIN_EMAIL, ADMIN_PASSWORD, admin_token, fresh, ids, login  # noqa: F401 (fixtures)

API = "/api/v1"


def work(s):
    r = s.get(f"{API}/test/identity/work")
    assert r.status_code == 200, r.text
    return r.json()


def new_phone():
    return "+9056" + str(time.time_ns())[-8:]


def backdate_codes(db_factory, s, dest):
    """Move dest's codes two minutes into the past: the next send is not a resend."""
    sql = ("UPDATE otp_codes SET created_at = created_at - 120000 WHERE destination = ?" if ENGINE == "sqlite" else
           "UPDATE otp_codes SET created_at = created_at - interval '2 minutes' WHERE destination = ?")
    db_factory.query(s.db_url, sql, (dest,))


def send_code(s, **target):
    r = s.post(f"{API}/auth/send-otp", json=target)
    assert r.status_code == 202, r.text


def latest_code(s, dest, before=0):
    """The newest code delivered to dest, after `before` earlier deliveries."""
    if "@" in dest:
        def find():
            got = [m for m in mails(s) if dest in str(m["To"]).lower() and "code" in str(m["Subject"]).lower()]
            return got if len(got) > before else None
        return code_from_text(mail_text(wait_for(find, what=f"code mail {before + 1} to {dest}")[-1]))
    def find_sms():
        got = [m for m in sms_messages(s) if m.get("to") == dest]
        return got if len(got) > before else None
    return code_from_text(wait_for(find_sms, what=f"sms {before + 1} to {dest}")[-1]["text"])


def audit_actions(s, uid):
    r = s.get(f"{API}/admin/audit-logs?target_id={uid}", headers=bearer(admin_token(s)))
    assert r.status_code == 200, r.text
    return r.json()["data"]


def new_key(s, token, scopes):
    r = s.post(f"{API}/me/api-keys", json={"name": "k", "scopes": scopes}, headers=bearer(token))
    assert r.status_code == 201, r.text
    return bearer(r.json()["key"])


# ---- #2 account pre-claim ----

def test_first_otp_signin_to_preclaimed_account_ends_the_claim(ids, db_factory):
    victim = unique_email("victim").lower()
    # the attacker registers the victim's address, keeps a session and an API key
    _, body = register(ids, victim, password="attacker password 123")
    uid = body["user"]["id"]
    key = new_key(ids, body["access_token"], ["read", "write"])
    assert ids.get(f"{API}/me", headers=key).status_code == 200
    # the real owner signs in with a code mailed to the address
    send_code(ids, email=victim)
    r = ids.post(f"{API}/auth/verify-otp", json={"email": victim, "code": latest_code(ids, victim)})
    assert r.status_code == 200, r.text
    assert r.json()["user"]["id"] == uid and r.json()["user"]["email_verified"] is True
    # every credential the attacker made is gone
    assert_problem(ids.get(f"{API}/me", headers=bearer(body["access_token"])), 401)
    assert_problem(ids.get(f"{API}/me", headers=key), 401)
    assert ids.post(f"{API}/auth/refresh", json={"refresh_token": body["refresh_token"]}).status_code == 401
    assert_problem(login(ids, victim, "attacker password 123"), 401, "INVALID_CREDENTIALS")
    assert ids.get(f"{API}/me", headers=bearer(r.json()["access_token"])).status_code == 200
    # and the audit log says so
    claims = [e for e in audit_actions(ids, uid) if e["action"] == "user.claimed_by_otp"]
    assert len(claims) == 1, claims
    assert claims[0]["before"]["password"] is True and claims[0]["after"]["password"] is False
    assert claims[0]["after"]["sessions_revoked"] == 1 and claims[0]["after"]["api_keys_revoked"] == 1
    # a second code sign-in to the now verified account changes nothing more
    backdate_codes(db_factory, ids, victim)
    send_code(ids, email=victim)
    r2 = ids.post(f"{API}/auth/verify-otp", json={"email": victim, "code": latest_code(ids, victim, before=1)})
    assert r2.status_code == 200, r2.text
    assert ids.get(f"{API}/me", headers=bearer(r.json()["access_token"])).status_code == 200
    assert len([e for e in audit_actions(ids, uid) if e["action"] == "user.claimed_by_otp"]) == 1


def test_patch_me_phone_is_stored_only_after_its_code(ids, db_factory):
    _, body = register(ids)
    h = bearer(body["access_token"])
    phone = new_phone()
    r = ids.patch(f"{API}/me", json={"phone": phone, "name": "Phone Person"}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["phone"] is None and r.json()["name"] == "Phone Person"
    assert ids.get(f"{API}/me", headers=h).json()["phone"] is None
    code = latest_code(ids, phone)
    # the phone-proof code is not a sign-in code
    assert_problem(ids.post(f"{API}/auth/verify-otp", json={"phone": phone, "code": code}), 401)
    wrong = "000000" if code != "000000" else "111111"
    assert_problem(ids.post(f"{API}/me/phone/verify", json={"phone": phone, "code": wrong}, headers=h), 401)
    assert ids.get(f"{API}/me", headers=h).json()["phone"] is None
    r = ids.post(f"{API}/me/phone/verify", json={"phone": phone, "code": code}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["phone"] == phone
    # now the phone signs in to this account, which keeps its password (it was proven)
    backdate_codes(db_factory, ids, phone)
    send_code(ids, phone=phone)
    r = ids.post(f"{API}/auth/verify-otp", json={"phone": phone, "code": latest_code(ids, phone, before=1)})
    assert r.status_code == 200 and r.json()["user"]["id"] == body["user"]["id"]
    assert login(ids, body["user"]["email"]).status_code == 200
    assert_problem(ids.patch(f"{API}/me", json={"phone": "12345"}, headers=h), 422, "VALIDATION_ERROR")
    assert ids.patch(f"{API}/me", json={"phone": None}, headers=h).json()["phone"] is None
    # a pending phone proof names a number: it goes with the account
    assert ids.patch(f"{API}/me", json={"phone": new_phone()}, headers=h).status_code == 200
    uid = body["user"]["id"]
    assert db_factory.query(ids.db_url, "SELECT count(*) FROM otp_codes WHERE user_id = ?", (uid,)) != [(0,)]
    assert ids.delete(f"{API}/me", headers=h).status_code == 204
    assert db_factory.query(ids.db_url, "SELECT count(*) FROM otp_codes WHERE user_id = ?", (uid,)) == [(0,)]


def test_unproven_phone_signin_ends_the_claim(ids, db_factory):
    # a phone stored before phone proofs existed is unverified: its first sign-in claims the account
    addr, body = register(ids, password="attacker password 123")
    phone = new_phone()
    db_factory.query(ids.db_url, "UPDATE users SET phone = ? WHERE id = ?", (phone, body["user"]["id"]))
    send_code(ids, phone=phone)
    r = ids.post(f"{API}/auth/verify-otp", json={"phone": phone, "code": latest_code(ids, phone)})
    assert r.status_code == 200 and r.json()["user"]["id"] == body["user"]["id"]
    assert_problem(login(ids, addr, "attacker password 123"), 401)
    assert_problem(ids.get(f"{API}/me", headers=bearer(body["access_token"])), 401)
    assert [e["action"] for e in audit_actions(ids, body["user"]["id"])] == ["user.claimed_by_otp"]


# ---- #3 API-key scopes ----

def test_api_key_scopes_are_enforced(ids):
    _, body = register(ids)
    tok = body["access_token"]
    read, write = new_key(ids, tok, ["read"]), new_key(ids, tok, ["write"])
    assert ids.get(f"{API}/me", headers=read).status_code == 200
    assert ids.request("HEAD", f"{API}/me", headers=read).status_code == 200
    for method, path, kw in (("DELETE", f"{API}/me", {}), ("PATCH", f"{API}/me", {"json": {"name": "x"}}),
                             ("POST", f"{API}/auth/logout-all", {})):
        assert_problem(ids.request(method, path, headers=read, **kw), 403, "FORBIDDEN")
    assert_problem(ids.get(f"{API}/me", headers=write), 403, "FORBIDDEN")
    assert ids.patch(f"{API}/me", json={"name": "Written"}, headers=write).status_code == 200
    # ai routes need the ai scope on top
    assert "ai scope" in assert_problem(ids.get(f"{API}/ai/jobs", headers=read), 403)["detail"]
    assert ids.get(f"{API}/ai/jobs", headers=new_key(ids, tok, ["read", "ai"])).status_code == 200
    # no scopes given: read only; an empty list is refused; a key cannot mint keys
    r = ids.post(f"{API}/me/api-keys", json={"name": "d"}, headers=bearer(tok))
    assert r.json()["scopes"] == ["read"]
    assert_problem(ids.post(f"{API}/me/api-keys", json={"name": "e", "scopes": []}, headers=bearer(tok)), 422)
    both = new_key(ids, tok, ["read", "write"])
    assert_problem(ids.post(f"{API}/me/api-keys", json={"name": "f", "scopes": ["read", "write", "ai"]},
                            headers=both), 403)
    assert ids.get(f"{API}/me", headers=both).status_code == 200
    assert ids.delete(f"{API}/me", headers=both).status_code == 204


def test_admin_key_scopes(ids):
    at = admin_token(ids)
    _, victim = register(ids)
    vid = victim["user"]["id"]
    admin_read = new_key(ids, at, ["read", "admin"])
    assert ids.get(f"{API}/users/{vid}", headers=admin_read).status_code == 200
    # an admin's read key cannot change roles
    assert_problem(ids.patch(f"{API}/users/{vid}", json={"role": "admin"}, headers=admin_read), 403, "FORBIDDEN")
    # without the admin scope an admin's key is a plain user's
    plain = new_key(ids, at, ["read", "write"])
    assert_problem(ids.get(f"{API}/users", headers=plain), 403, "FORBIDDEN")
    assert_problem(ids.patch(f"{API}/users/{vid}", json={"role": "admin"}, headers=plain), 403, "FORBIDDEN")
    assert ids.get(f"{API}/me", headers=plain).json()["role"] == "admin"  # the account is still an admin's
    full = new_key(ids, at, ["read", "write", "admin"])
    r = ids.patch(f"{API}/users/{vid}", json={"role": "moderator"}, headers=full)
    assert r.status_code == 200 and r.json()["role"] == "moderator"


def test_password_reset_and_logout_all_revoke_api_keys(ids):
    addr, body = register(ids)
    key = new_key(ids, body["access_token"], ["read"])
    assert ids.post(f"{API}/auth/logout-all", headers=bearer(body["access_token"])).status_code == 204
    assert_problem(ids.get(f"{API}/me", headers=key), 401)
    tok = login(ids, addr).json()["access_token"]
    key = new_key(ids, tok, ["read"])
    assert ids.post(f"{API}/auth/forgot-password", json={"email": addr}).status_code == 202
    reset = token_from_mail(wait_mail(ids, addr.lower(), "reset"))
    assert ids.post(f"{API}/auth/reset-password", json={"token": reset, "password": "a new passphrase 77"}
                    ).status_code == 204
    assert_problem(ids.get(f"{API}/me", headers=key), 401)
    assert ids.get(f"{API}/me/api-keys", headers=bearer(login(ids, addr, "a new passphrase 77").json()
                                                         ["access_token"])).json()["data"] == []


# ---- #4 OTP brute force per destination ----

def test_otp_failures_lock_the_destination_across_codes(ids, db_factory):
    addr = unique_email("brute").lower()
    sent = 0
    for _ in range(2):  # two codes, five wrong guesses each: ten failures within the hour
        send_code(ids, email=addr)
        code = latest_code(ids, addr, before=sent)
        sent += 1
        wrong = "000000" if code != "000000" else "111111"
        for _ in range(5):
            assert_problem(ids.post(f"{API}/auth/verify-otp", json={"email": addr, "code": wrong}), 401)
        backdate_codes(db_factory, ids, addr)
    # a third code is refused, and so would be its verification
    r = ids.post(f"{API}/auth/send-otp", json={"email": addr})
    assert_problem(r, 429, "RATE_LIMIT_EXCEEDED")
    assert int(r.headers["Retry-After"]) > 60
    r = ids.post(f"{API}/auth/verify-otp", json={"email": addr, "code": "123456"})
    assert_problem(r, 429, "RATE_LIMIT_EXCEEDED")
    assert int(r.headers["Retry-After"]) > 60
    # another destination is not affected
    send_code(ids, email=unique_email("bystander").lower())


# ---- #5 login lockout race and enumeration ----

def test_parallel_bad_logins_all_count(ids, db_factory):
    addr, _ = register(ids)
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        codes = list(ex.map(lambda _: requests.post(ids.url(f"{API}/auth/login"),
                                                    json={"email": addr, "password": "wrong password 16"},
                                                    timeout=30).status_code, range(16)))
    assert codes == [401] * 16, codes
    rows = db_factory.query(ids.db_url, "SELECT failed_logins FROM users WHERE email = ?", (addr.lower(),))
    assert rows == [(16,)]


def test_locked_account_answers_like_an_unknown_email(ids):
    addr, _ = register(ids)
    for _ in range(5):
        assert login(ids, addr, "wrong password again").status_code == 401
    locked = login(ids, addr)  # the right password, but locked
    unknown = login(ids, unique_email("nobody"), PASSWORD)
    for r in (locked, unknown):
        assert_problem(r, 401, "INVALID_CREDENTIALS")
        assert "Retry-After" not in r.headers
    strip = lambda r: {k: v for k, v in r.json().items() if k != "request_id"}
    assert strip(locked) == strip(unknown)
    # the same work: one argon2id verification each, no hash
    w0 = work(ids)
    login(ids, addr)
    w1 = work(ids)
    login(ids, unique_email("nobody"), PASSWORD)
    w2 = work(ids)
    assert w1["password_verifies"] - w0["password_verifies"] == 1
    assert w2["password_verifies"] - w1["password_verifies"] == 1
    assert w2["password_hashes"] == w0["password_hashes"]


# ---- #6 reset-password checks the token first ----

def test_reset_password_checks_the_token_before_hashing(ids):
    w0 = work(ids)
    r = ids.post(f"{API}/auth/reset-password", json={"token": "not-a-real-token-" + "x" * 30,
                                                     "password": "a perfectly good passphrase"})
    body = assert_problem(r, 422, "VALIDATION_ERROR")
    assert [e["field"] for e in body["errors"]] == ["token"]
    assert work(ids)["password_hashes"] == w0["password_hashes"]


# ---- #10 enumeration ----

def test_register_of_a_taken_email_looks_like_success(ids):
    addr, first = register(ids)
    w0 = work(ids)
    r = ids.post(f"{API}/auth/register", json={"email": addr.upper(), "password": "other password 12345",
                                               "name": "Someone"})
    assert r.status_code == 202, r.text
    assert r.json() == {"status": "accepted"} and "access_token" not in r.text
    assert work(ids)["password_hashes"] == w0["password_hashes"] + 1  # hashed like a real registration
    assert "already has" in mail_text(wait_mail(ids, addr.lower(), "sign up"))
    # the owner's account is untouched
    assert login(ids, addr).status_code == 200
    assert_problem(login(ids, addr, "other password 12345"), 401)


def test_patch_me_phone_of_another_account_does_not_say_so(ids, db_factory):
    _, a = register(ids)
    ha = bearer(a["access_token"])
    phone = new_phone()
    ids.patch(f"{API}/me", json={"phone": phone}, headers=ha)
    assert ids.post(f"{API}/me/phone/verify", json={"phone": phone, "code": latest_code(ids, phone)},
                    headers=ha).json()["phone"] == phone
    _, b = register(ids)
    hb = bearer(b["access_token"])
    backdate_codes(db_factory, ids, phone)
    taken = ids.patch(f"{API}/me", json={"phone": phone}, headers=hb)
    free = ids.patch(f"{API}/me", json={"phone": new_phone()}, headers=hb)
    assert taken.status_code == free.status_code == 200, (taken.text, free.text)
    assert taken.json() == free.json()
    # only the number's holder can go further, and then learns only that it cannot be added
    r = ids.post(f"{API}/me/phone/verify", json={"phone": phone, "code": latest_code(ids, phone, before=1)},
                 headers=hb)
    body = assert_problem(r, 409, "CONFLICT")
    assert a["user"]["id"] not in r.text and a["user"]["email"] not in r.text.lower()
    assert ids.get(f"{API}/me", headers=ha).json()["phone"] == phone


def test_forgot_password_does_the_same_work_for_unknown_emails(ids, db_factory):
    def jobs():
        return db_factory.query(ids.db_url, "SELECT count(*) FROM jobs WHERE kind = 'users.forgot_password'")[0][0]
    addr, _ = register(ids)
    n0 = jobs()
    known = ids.post(f"{API}/auth/forgot-password", json={"email": addr})
    n1 = jobs()
    unknown = ids.post(f"{API}/auth/forgot-password", json={"email": unique_email("ghost")})
    n2 = jobs()
    assert known.status_code == unknown.status_code == 202 and known.json() == unknown.json()
    assert n1 - n0 == 1 and n2 - n1 == 1  # one queued job each, nothing else in the request
    wait_mail(ids, addr.lower(), "reset")


# ---- #11 races (PostgreSQL READ COMMITTED; SQLite serialises writers) ----

def test_parallel_send_otp_sends_one_code(ids, db_factory):
    addr = unique_email("race").lower()
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        codes = list(ex.map(lambda _: requests.post(ids.url(f"{API}/auth/send-otp"), json={"email": addr},
                                                    timeout=30).status_code, range(16)))
    assert sorted(codes) == [202] + [429] * 15, codes
    assert db_factory.query(ids.db_url, "SELECT count(*) FROM otp_codes WHERE destination = ?", (addr,)) == [(1,)]


def test_parallel_forgot_password_keeps_three_tokens(ids, db_factory):
    addr, body = register(ids)
    with concurrent.futures.ThreadPoolExecutor(32) as ex:
        codes = list(ex.map(lambda _: requests.post(ids.url(f"{API}/auth/forgot-password"), json={"email": addr},
                                                    timeout=30).status_code, range(64)))
    assert codes == [202] * 64
    wait_for(lambda: db_factory.query(ids.db_url, "SELECT count(*) FROM jobs WHERE kind = 'users.forgot_password' "
                                                  "AND state NOT IN ('succeeded', 'failed', 'dead')") == [(0,)],
             what="forgot-password jobs")
    rows = db_factory.query(ids.db_url, "SELECT count(*) FROM user_tokens WHERE user_id = ? AND "
                                        "purpose = 'reset_password'", (body["user"]["id"],))
    assert rows == [(3,)]


# ---- #12 case-insensitive emails ----

def test_emails_are_case_insensitive(ids):
    local = "Case-" + unique_email()[2:].split("@")[0]
    addr, body = register(ids, f"  {local}@Example.com ")
    assert body["user"]["email"] == f"{local.lower()}@example.com"
    r = ids.post(f"{API}/auth/register", json={"email": f"{local.upper()}@EXAMPLE.COM", "password": PASSWORD,
                                               "name": "Twin"})
    assert r.status_code == 202, r.text  # the same account, not a second one
    assert login(ids, f"{local.upper()}@example.COM").json()["user"]["id"] == body["user"]["id"]
    send_code(ids, email=f"{local.upper()}@EXAMPLE.COM")
    code = latest_code(ids, f"{local.lower()}@example.com")
    r = ids.post(f"{API}/auth/verify-otp", json={"email": f"{local}@example.com", "code": code})
    assert r.status_code == 200 and r.json()["user"]["id"] == body["user"]["id"]


def _status_lines(p):
    return [l.strip() for l in p.stdout_text.splitlines() if re.match(r"^\s*\d{4}\s", l)]


def test_migration_refuses_case_duplicates_until_resolved(run_cli, db_factory, tmp_path):
    url = db_factory.new_url(str(tmp_path))
    lines = _status_lines(run_cli("migrate", "status", db_url=url))
    before = next(i for i, l in enumerate(lines) if "identity_security" in l)
    p = run_cli("migrate", "up", str(before), db_url=url)
    assert p.returncode == 0, p.stderr_text
    ts = "1700000000000" if ENGINE == "sqlite" else "now()"
    for uid, email in (("u1", "Twin@Example.com"), ("u2", "twin@example.com"), ("u3", "TWIN@example.COM"),
                       ("u4", "single@Example.com")):
        db_factory.query(url, f"INSERT INTO users (id, email, created_at, updated_at) VALUES (?, ?, {ts}, {ts})",
                         (uid, email))
    p = run_cli("migrate", "up", db_url=url)
    assert p.returncode != 0
    out = p.stdout_text + p.stderr_text
    assert "migration 0012 refused: 3 accounts" in out, out
    assert db_factory.query(url, "SELECT email FROM users WHERE id = 'u4'") == [("single@Example.com",)]
    # an admin resolves them; then it runs and lower-cases every address
    db_factory.query(url, "DELETE FROM users WHERE id IN ('u2', 'u3')")
    p = run_cli("migrate", "up", db_url=url)
    assert p.returncode == 0, p.stdout_text + p.stderr_text
    assert sorted(db_factory.query(url, "SELECT email FROM users")) == [("single@example.com",), ("twin@example.com",)]
