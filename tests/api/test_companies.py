"""Companies (corporate accounts, API.md §9, issue 11 item 4): owner/admin/member roles, invitations by
mail (single-use token stored hashed, expiry, accept only by the invited address), a company address book
and a shared cart turned into company orders — all visible to members only (anyone else: 404)."""
import email
import email.policy
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from catalog_util import API, mk, new_category, new_product
from conftest import HTTP_TIMEOUT, assert_problem, error_fields, new_user_headers

ADDR = {"title": "Merkez", "full_name": "Ada Yılmaz", "line1": "Atatürk Cd. 1", "city": "Ankara"}


def token_for(server, to, timeout=20.0):
    """The invitation token from the newest mail to `to` (the file mail transport of the test server)."""
    end = time.monotonic() + timeout
    maildir = Path(server.dir) / "mail"
    while time.monotonic() < end:
        found = []
        for f in sorted(maildir.glob("*.eml")) if maildir.is_dir() else []:
            m = email.message_from_bytes(f.read_bytes(), policy=email.policy.default)
            if m["To"] == to and "invited" in str(m["Subject"]):
                body = m.get_body(preferencelist=("plain",)).get_content()
                found.append((f.stat().st_mtime_ns, re.search(r"inv_[A-Za-z0-9_-]+", body).group(0)))
        if found:
            return max(found)[1]
        time.sleep(0.1)
    raise AssertionError(f"no invitation mail to {to}")


def invite(server, h, cid, mail, role=None, status=201):
    body = {"email": mail, **({"role": role} if role else {})}
    r = server.post(f"{API}/companies/{cid}/invitations", json=body, headers=h)
    assert r.status_code == status, r.text
    return r.json()


def join(server, owner, cid, prefix, role=None):
    """A new user invited to cid and accepted: (headers, user)."""
    h, u = new_user_headers(server, prefix)
    invite(server, owner, cid, u["email"], role)
    r = server.post(f"{API}/companies/invitations/accept", json={"token": token_for(server, u["email"])}, headers=h)
    assert r.status_code == 200, r.text
    return h, u


@pytest.fixture
def company(server):
    h, u = new_user_headers(server, "owner")
    r = server.post(f"{API}/companies", json={"name": "Anadolu Gıda A.Ş.", "tax_id": "1234567890"}, headers=h)
    assert r.status_code == 201, r.text
    c = r.json()
    assert r.headers["Location"] == f"{API}/companies/{c['id']}"
    assert c["role"] == "owner" and c["name"] == "Anadolu Gıda A.Ş." and c["tax_id"] == "1234567890"
    return h, u, c


def test_invitation_lifecycle(server, company, db_factory, admin_headers):
    owner, ou, c = company
    cid = c["id"]
    bob, bu = new_user_headers(server, "bob")
    inv = invite(server, owner, cid, bu["email"].upper().replace("@EXAMPLE.COM", "@Example.com"))
    assert inv["status"] == "pending" and inv["role"] == "member" and "token" not in inv
    # before accepting, bob sees nothing of the company
    assert_problem(server.get(f"{API}/companies/{cid}", headers=bob), 404)
    token = token_for(server, bu["email"])
    assert token not in server.log_text()
    # another account cannot use bob's invitation; a made-up token is 404
    carol, _ = new_user_headers(server, "carol")
    assert_problem(server.post(f"{API}/companies/invitations/accept", json={"token": token}, headers=carol), 403)
    assert_problem(server.post(f"{API}/companies/invitations/accept", json={"token": "inv_nope"}, headers=bob), 404)
    # bob accepts twice at once: one joins, the other is told it is used
    url = server.url(f"{API}/companies/invitations/accept")
    with ThreadPoolExecutor(6) as ex:
        rs = list(ex.map(lambda _: requests.post(url, json={"token": token}, headers=bob, timeout=30), range(6)))
    assert sorted(r.status_code for r in rs) == [200] + [410] * 5, [r.text for r in rs]
    assert [r for r in rs if r.status_code == 200][0].json()["role"] == "member"
    members = server.get(f"{API}/companies/{cid}/members", headers=bob).json()["data"]
    assert sorted((m["email"], m["role"]) for m in members) == sorted([(ou["email"], "owner"), (bu["email"], "member")])
    assert [x["id"] for x in server.get(f"{API}/companies", headers=bob).json()["data"]] == [cid]
    # a member cannot invite; inviting a member again is 409
    assert_problem(server.post(f"{API}/companies/{cid}/invitations", json={"email": "x@example.com"}, headers=bob), 403)
    invite(server, owner, cid, bu["email"], status=409)
    # expiry: 410; revoke: 410 for the token, 404 on a second revoke
    dave, du = new_user_headers(server, "dave")
    late = invite(server, owner, cid, du["email"], "admin")
    db_factory.query(server.db_url, "UPDATE company_invitations SET expires_at = created_at WHERE id = ?", (late["id"],))
    assert_problem(server.post(f"{API}/companies/invitations/accept", json={"token": token_for(server, du["email"])},
                               headers=dave), 410, "GONE")
    again = invite(server, owner, cid, du["email"], "admin")
    tok2 = token_for(server, du["email"])
    assert server.delete(f"{API}/companies/{cid}/invitations/{again['id']}", headers=owner).status_code == 204
    assert_problem(server.delete(f"{API}/companies/{cid}/invitations/{again['id']}", headers=owner), 404)
    assert_problem(server.post(f"{API}/companies/invitations/accept", json={"token": tok2}, headers=dave), 410)
    # bob's was accepted; dave's expired one was replaced (revoked) by the next, which was revoked
    listed = server.get(f"{API}/companies/{cid}/invitations", headers=owner).json()["data"]
    assert sorted(i["status"] for i in listed) == ["accepted", "revoked", "revoked"], listed
    for bad in [{}, {"email": "not-an-address"}, {"email": "a@example.com", "role": "owner"},
                {"email": "a@example.com", "extra": 1}]:
        assert_problem(server.post(f"{API}/companies/{cid}/invitations", json=bad, headers=owner), 422)
    # audited
    logs = server.get(f"{API}/admin/audit-logs?target_id={cid}&limit=100", headers=admin_headers).json()["data"]
    assert {"company.create", "company.invite", "company.join", "company.invite_revoke"} <= {e["action"] for e in logs}


def test_roles_and_ownership(server, company):
    owner, ou, c = company
    cid = c["id"]
    adm, au = join(server, owner, cid, "adm", "admin")
    mem, mu = join(server, owner, cid, "mem")
    # the member may not rename or remove; the admin may rename, not delete
    assert_problem(server.patch(f"{API}/companies/{cid}", json={"name": "X"}, headers=mem), 403)
    assert server.patch(f"{API}/companies/{cid}", json={"name": "Anadolu"}, headers=adm).json()["name"] == "Anadolu"
    assert_problem(server.delete(f"{API}/companies/{cid}", headers=adm), 403)
    assert_problem(server.delete(f"{API}/companies/{cid}/members/{au['id']}", headers=mem), 403)
    # the admin cannot hand ownership over; the owner cannot leave or be demoted
    assert_problem(server.patch(f"{API}/companies/{cid}/members/{mu['id']}", json={"role": "owner"}, headers=adm), 403)
    assert_problem(server.delete(f"{API}/companies/{cid}/members/{ou['id']}", headers=owner), 409)
    assert_problem(server.patch(f"{API}/companies/{cid}/members/{ou['id']}", json={"role": "member"},
                                headers=adm), 409)
    # hand-over: the old owner becomes admin; exactly one owner
    r = server.patch(f"{API}/companies/{cid}/members/{mu['id']}", json={"role": "owner"}, headers=owner)
    assert r.status_code == 200 and r.json()["role"] == "owner", r.text
    roles = {m["user_id"]: m["role"] for m in server.get(f"{API}/companies/{cid}/members", headers=mem).json()["data"]}
    assert roles == {ou["id"]: "admin", au["id"]: "admin", mu["id"]: "owner"}
    # anyone leaves; a removed member sees nothing any more
    assert server.delete(f"{API}/companies/{cid}/members/{au['id']}", headers=adm).status_code == 204
    assert_problem(server.get(f"{API}/companies/{cid}", headers=adm), 404)
    assert_problem(server.get(f"{API}/companies/{cid}/members", headers=adm), 404)
    assert server.delete(f"{API}/companies/{cid}", headers=mem).status_code == 204
    assert_problem(server.get(f"{API}/companies/{cid}", headers=mem), 404)
    for bad in [{}, {"name": ""}, {"name": "x", "owner": "me"}]:
        assert_problem(server.post(f"{API}/companies", json=bad, headers=owner), 422)
    g = requests.post(server.url(f"{API}/auth/guest"), timeout=HTTP_TIMEOUT).json()
    assert_problem(server.post(f"{API}/companies", json={"name": "G"},
                               headers={"Authorization": f"Bearer {g['access_token']}"}), 403)


def test_address_book_cart_and_orders_for_members_only(server, company, admin_headers):
    owner, ou, c = company
    cid = c["id"]
    mem, mu = join(server, owner, cid, "buyer")
    outsider, _ = new_user_headers(server, "outsider")
    cat = new_category(server, admin_headers)
    p = new_product(server, admin_headers, cat["slug"], price=2500, stock=5,
                    name={"tr": "Zeytinyağı", "en": "Olive oil", "pl": "Oliwa"})
    # address book: owner/admin write, members read
    assert_problem(server.post(f"{API}/companies/{cid}/addresses", json=ADDR, headers=mem), 403)
    a = mk(server, owner, f"/companies/{cid}/addresses", ADDR)
    assert a["country"] == "TR" and a["city"] == "Ankara"
    assert [x["id"] for x in server.get(f"{API}/companies/{cid}/addresses", headers=mem).json()["data"]] == [a["id"]]
    assert server.patch(f"{API}/companies/{cid}/addresses/{a['id']}", json={"city": "İzmir"},
                        headers=owner).json()["city"] == "İzmir"
    assert_problem(server.post(f"{API}/companies/{cid}/addresses", json={**ADDR, "country": "TUR"}, headers=owner), 422)
    # the shared cart: members add concurrently, quantities are exact
    url = server.url(f"{API}/companies/{cid}/cart")
    with ThreadPoolExecutor(8) as ex:
        rs = list(ex.map(lambda h: requests.post(url, json={"product_id": p["id"]}, headers=h, timeout=30),
                         [owner, mem] * 2))
    assert sorted(r.status_code for r in rs) == [200, 200, 200, 201], [r.text for r in rs]
    cart = server.get(f"{API}/companies/{cid}/cart", headers=owner).json()
    assert [(i["product_id"], i["quantity"]) for i in cart["items"]] == [(p["id"], 4)]
    assert cart["total"] == 10000 and cart["currency"] == "TRY" and cart["items"][0]["name"] == "Olive oil"
    # a line holds at most 99; an unknown product is refused, not added
    full = server.post(f"{API}/companies/{cid}/cart", json={"product_id": p["id"], "quantity": 95}, headers=mem)
    assert full.status_code == 200 and full.json()["quantity"] == 99, full.text
    over = server.post(f"{API}/companies/{cid}/cart", json={"product_id": p["id"]}, headers=mem)
    assert error_fields(assert_problem(over, 422)) == ["quantity"]
    assert_problem(server.put(f"{API}/companies/{cid}/cart/{full.json()['id']}", json={"quantity": 100},
                              headers=mem), 422)
    gone = server.post(f"{API}/companies/{cid}/cart", json={"product_id": str(uuid.uuid4())}, headers=mem)
    assert error_fields(assert_problem(gone, 422)) == ["product_id"]
    r = server.put(f"{API}/companies/{cid}/cart/{full.json()['id']}", json={"quantity": 4}, headers=mem)
    assert r.status_code == 200 and r.json()["quantity"] == 4, r.text
    # outsiders: 404 everywhere
    for method, path, body in [("GET", "", None), ("GET", "/cart", None), ("GET", "/addresses", None),
                               ("GET", "/orders", None), ("POST", "/cart", {"product_id": p["id"]}),
                               ("POST", "/orders", {"address_id": a["id"]}), ("GET", "/members", None),
                               ("GET", f"/addresses/{a['id']}", None)]:
        r = server.request(method, f"{API}/companies/{cid}{path}", json=body, headers=outsider)
        assert_problem(r, 404)
    # a personal address is not the company's; the personal cart stays apart
    mine = mk(server, mem, "/me/addresses", ADDR)
    assert_problem(server.post(f"{API}/companies/{cid}/orders", json={"address_id": mine["id"]}, headers=mem), 422)
    # members race to order the one shared cart: one order, stock taken once
    ourl = server.url(f"{API}/companies/{cid}/orders")
    with ThreadPoolExecutor(8) as ex:
        rs = list(ex.map(lambda h: requests.post(ourl, json={"address_id": a["id"]}, headers=h, timeout=60),
                         [owner, mem] * 4))
    won = [r for r in rs if r.status_code == 201]
    assert len(won) == 1 and all(r.status_code == 422 for r in rs if r.status_code != 201), [r.text for r in rs]
    o = won[0].json()
    assert o["company_id"] == cid and o["total"] == 10000 and o["address"]["city"] == "İzmir"
    assert server.get(f"{API}/products/{p['id']}").json()["stock"] == 1
    assert server.get(f"{API}/companies/{cid}/cart", headers=mem).json()["items"] == []
    # every member sees it; an outsider does not
    for h in (owner, mem):
        assert [x["id"] for x in server.get(f"{API}/companies/{cid}/orders", headers=h).json()["data"]] == [o["id"]]
        assert server.get(f"{API}/companies/{cid}/orders/{o['id']}", headers=h).json()["id"] == o["id"]
    assert_problem(server.get(f"{API}/companies/{cid}/orders/{o['id']}", headers=outsider), 404)
    assert_problem(server.get(f"{API}/orders/{o['id']}", headers=outsider), 404)


def test_export_and_account_deletion(server, company, admin_headers, db_factory):
    """GET /me/export has the caller's companies (memberships, invitations received and sent, the company
    orders they placed); DELETE /me is refused (409) while the caller owns a company with other members,
    takes a company owned alone with it, and removes memberships and invitations to the address."""
    owner, ou, c = company
    cid = c["id"]
    mem, mu = join(server, owner, cid, "exported")
    pending = invite(server, owner, cid, f"pending-{uuid.uuid4().hex[:8]}@example.com")
    solo = mk(server, mem, "/companies", {"name": "Tek Kişilik Ltd."})
    a = mk(server, owner, f"/companies/{cid}/addresses", ADDR)
    cat = new_category(server, admin_headers)
    p = new_product(server, admin_headers, cat["slug"], price=700, stock=3)
    assert server.post(f"{API}/companies/{cid}/cart", json={"product_id": p["id"], "quantity": 2},
                       headers=mem).status_code == 201
    r = server.post(f"{API}/companies/{cid}/orders", json={"address_id": a["id"]}, headers=mem)
    assert r.status_code == 201, r.text
    o = r.json()

    ex = server.get(f"{API}/me/export", headers=mem)
    assert ex.status_code == 200, ex.text
    got = ex.json()["companies"]
    assert sorted((m["company_id"], m["role"], m["name"]) for m in got["memberships"]) == \
        sorted([(cid, "member", c["name"]), (solo["id"], "owner", solo["name"])])
    assert [(i["company_id"], i["email"], i["status"]) for i in got["invitations_received"]] == \
        [(cid, mu["email"], "accepted")]
    assert got["invitations_sent"] == []
    assert [(x["id"], x["company_id"], x["total"], x["status"]) for x in got["orders"]] == [(o["id"], cid, 1400, "pending")]
    assert [(i["product_id"], i["quantity"], i["line_total"]) for i in got["orders"][0]["items"]] == [(p["id"], 2, 1400)]
    sent = server.get(f"{API}/me/export", headers=owner).json()["companies"]["invitations_sent"]
    assert sorted(i["email"] for i in sent) == sorted([mu["email"], pending["email"]])

    # the owner of a company with other members cannot leave it ownerless: 409, nothing deleted
    r = assert_problem(server.delete(f"{API}/me", headers=owner), 409, "CONFLICT")
    assert cid in r["detail"] and "owner" in r["detail"]
    assert server.get(f"{API}/me", headers=owner).status_code == 200
    assert server.get(f"{API}/companies/{cid}", headers=owner).status_code == 200

    # a member goes: memberships, invitations to the address and the company owned alone go with them
    assert server.delete(f"{API}/me", headers=mem).status_code == 204
    q = lambda sql, *args: db_factory.query(server.db_url, sql, args)[0][0]
    assert q("SELECT count(*) FROM companies WHERE id = ?", solo["id"]) == 0
    assert q("SELECT count(*) FROM company_members WHERE user_id = ?", mu["id"]) == 0
    assert q("SELECT count(*) FROM company_invitations WHERE lower(email) = lower(?)", mu["email"]) == 0
    assert [m["user_id"] for m in server.get(f"{API}/companies/{cid}/members", headers=owner).json()["data"]] == \
        [ou["id"]]
    # now the owner is alone: the account and the company go
    assert server.delete(f"{API}/me", headers=owner).status_code == 204
    assert q("SELECT count(*) FROM companies WHERE id = ?", cid) == 0
    assert q("SELECT count(*) FROM company_invitations WHERE company_id = ?", cid) == 0
