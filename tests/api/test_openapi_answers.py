"""The OpenAPI document cannot drift from the server (issue 15 item 2): real answers are checked
against the response schema the document gives for them.

Every GET route of the document without path parameters, and the routes of a company, a cart, a
favorite and a product made first, is called as a user and as an admin; each JSON answer is
validated against its documented schema (types, required properties, enums, formats, closed
objects, $ref/oneOf/anyOf/allOf) by the small validator below. Writes that answer a described
body (companies, carts) are checked the same way, and bodiless answers are checked to be bodiless.
"""
import re

import pytest

from catalog_util import new_category, new_product, uniq
from conftest import new_user_headers
from test_openapi_contract import resolve

API = "/api/v1"
# test-only machinery, and streams a plain GET never ends (the WebSocket handshake, Server-Sent Events)
SKIP = (API + "/_test/", API + "/test/", API + "/realtime")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
DATE_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
TYPES = {"string": str, "boolean": bool, "object": dict, "array": list, "null": type(None)}
MAX_ITEMS = 5  # items checked per array: the shape, not the volume


def is_type(value, t):
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, TYPES[t])


def validate(doc, schema, value, where="$"):
    """The ways value does not match schema (an empty list: it matches)."""
    schema = resolve(doc, schema)
    errs = []
    for s in schema.get("allOf", []):
        errs += validate(doc, s, value, where)
    for k in ("oneOf", "anyOf"):
        if k in schema:
            tries = [validate(doc, s, value, where) for s in schema[k]]
            if all(tries):
                errs.append(f"{where}: matches none of {k}: " + " | ".join(t[0] for t in tries))
    t = schema.get("type")
    if t is not None:
        types = t if isinstance(t, list) else [t]
        if not any(is_type(value, x) for x in types):
            return errs + [f"{where}: {type(value).__name__} {str(value)[:60]!r} is not {t}"]
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{where}: {value!r} not in {schema['enum']}")
    if isinstance(value, str) and schema.get("format") == "uuid" and not UUID.match(value):
        errs.append(f"{where}: {value!r} is not a uuid")
    if isinstance(value, str) and schema.get("format") == "date-time" and not DATE_TIME.match(value):
        errs.append(f"{where}: {value!r} is not a date-time")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for k in schema.get("required", []):
            if k not in value:
                errs.append(f"{where}: required {k!r} missing (has {sorted(value)})")
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                errs += validate(doc, props[k], v, f"{where}.{k}")
            elif extra is False:
                errs.append(f"{where}: {k!r} is not in the documented properties {sorted(props)}")
            elif isinstance(extra, dict):
                errs += validate(doc, extra, v, f"{where}.{k}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value[:MAX_ITEMS]):
            errs += validate(doc, schema["items"], v, f"{where}[{i}]")
    return errs


def json_schema(doc, path, method, status):
    """The documented schema of this answer: its status's own entry, else 2XX."""
    responses = doc["paths"][path][method]["responses"]
    resp = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX")
    assert resp is not None, f"{method.upper()} {path}: {status} is not documented ({sorted(responses)})"
    return resp.get("content", {}).get("application/json", {}).get("schema")


def check(server, doc, r, path, method="get"):
    """Validate the answer r of method path against the document; the errors found."""
    name = f"{method.upper()} {path} -> {r.status_code}"
    if r.status_code in (204, 304):  # documented under its own code (struct route.status), never under 2XX
        responses = doc["paths"][path][method]["responses"]
        return ([] if str(r.status_code) in responses else [f"{name}: not documented ({sorted(responses)})"]) + \
            ([] if not r.content else [f"{name}: documented bodiless, answered {r.content[:80]!r}"])
    schema = json_schema(doc, path, method, r.status_code)
    if schema is None:
        return [] if not r.headers.get("content-type", "").startswith("application/json") \
            else [f"{name}: answers JSON the document does not describe"]
    if not r.headers.get("content-type", "").startswith("application/json"):
        return [f"{name}: documented JSON, answered {r.headers.get('content-type')}"]
    return [f"{name}: {e}" for e in validate(doc, schema, r.json())]


def test_the_validator_can_fail(server):
    """A missing required key, a wrong type, a value outside an enum, a bad uuid, an
    undocumented key of a closed object and a 204 documented only as 2XX are each found."""
    doc = server.get(API + "/openapi.json").json()
    company = {"$ref": "#/components/schemas/Company"}
    good = {"id": "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "name": "A", "tax_id": "", "role": "owner",
            "created_at": "2026-12-04T10:00:00.000Z", "updated_at": "2026-12-04T10:00:00Z"}
    assert validate(doc, company, good) == []
    for bad in ({k: v for k, v in good.items() if k != "role"}, {**good, "name": 7}, {**good, "role": "boss"},
                {**good, "id": "nope"}, {**good, "created_at": "yesterday"}):
        assert validate(doc, company, bad), bad
    closed = {"type": "object", "additionalProperties": False, "properties": {"a": {"type": "integer"}}}
    assert validate(doc, closed, {"a": 1}) == [] and validate(doc, closed, {"a": 1, "b": 2})
    assert validate(doc, {"anyOf": [{"type": "integer"}, {"type": "null"}]}, "x")

    class NoContent:  # a 204 answer: the document must give 204 itself, not only a 2XX
        status_code, content, headers = 204, b"", {}
    fake = {"paths": {"/x": {"delete": {"responses": {"2XX": {"description": "Success"}}}}}}
    assert check(None, fake, NoContent, "/x", "delete")
    fake["paths"]["/x"]["delete"]["responses"] = {"204": {"description": "No Content"}}
    assert check(None, fake, NoContent, "/x", "delete") == []


@pytest.fixture(scope="module")
def world(_shared):
    """A user with a company (an address, a cart line), a cart, a favorite; the admin."""
    server = _shared.get()
    from conftest import login_headers, ADMIN_EMAIL, ADMIN_PASSWORD
    admin = login_headers(server, ADMIN_EMAIL, ADMIN_PASSWORD)
    doc = server.get(API + "/openapi.json").json()
    user, me = new_user_headers(server, "answers")
    cat = new_category(server, admin)
    product = new_product(server, admin, cat["slug"])
    errs, ids = [], {"/products": product["id"]}

    def write(method, path, pattern, body=None, status=None):
        r = server.request(method, API + path, json=body, headers=user)
        assert status is None or r.status_code == status, f"{method} {path}: {r.status_code} {r.text[:300]}"
        errs.extend(check(server, doc, r, API + pattern, method.lower()))
        return r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else None

    company = write("POST", "/companies", "/companies", {"name": uniq("Şirket"), "tax_id": "1234567890"}, 201)
    c = company["id"]
    ids["/companies"] = c
    write("PATCH", f"/companies/{c}", "/companies/{id}", {"name": "Yeni Ad"}, 200)
    addr = write("POST", f"/companies/{c}/addresses", "/companies/{id}/addresses",
                 {"full_name": "Ayşe", "line1": "Cadde 1", "city": "İstanbul"}, 201)
    ids["address"] = addr["id"]
    line = write("POST", f"/companies/{c}/cart", "/companies/{id}/cart", {"product_id": product["id"]}, 201)
    write("POST", f"/companies/{c}/cart", "/companies/{id}/cart", {"product_id": product["id"]}, 200)
    write("PUT", f"/companies/{c}/cart/{line['id']}", "/companies/{id}/cart/{item_id}", {"quantity": 3}, 200)
    inv = write("POST", f"/companies/{c}/invitations", "/companies/{id}/invitations",
                {"email": f"{uniq('davet')}@example.com"}, 201)
    write("DELETE", f"/companies/{c}/invitations/{inv['id']}", "/companies/{id}/invitations/{inv_id}", None, 204)
    write("POST", "/me/cart", "/me/cart", {"product_id": product["id"], "quantity": 2}, 201)
    write("POST", "/me/favorites", "/me/favorites", {"product_id": product["id"]}, 201)
    extra = write("POST", f"/companies/{c}/addresses", "/companies/{id}/addresses",
                  {"full_name": "Silinecek", "line1": "Yok", "city": "Ankara"}, 201)
    write("DELETE", f"/companies/{c}/addresses/{extra['id']}", "/companies/{id}/addresses/{address_id}", None, 204)
    ticket = write("POST", "/tickets", "/tickets", {"subject": "Soru", "description": "Kargo nerede?"}, 201)
    ids["/tickets"] = ticket["id"]
    write("POST", f"/tickets/{ticket['id']}/messages", "/tickets/{id}/messages", {"body": "Bir ek bilgi"}, 201)
    # the admin's: a campaign (stats, recipients) and an event (analytics)
    lst = server.post(API + "/email-lists", json={"name": "Bülten", "double_opt_in": False}, headers=admin)
    assert lst.status_code == 201, lst.text
    camp = server.post(API + "/campaigns", json={"list_id": lst.json()["id"], "name": "Kasım", "subject": "Merhaba",
                                                 "text": "Merhaba {{unsubscribe_url}}"}, headers=admin)
    assert camp.status_code == 201, camp.text
    ids["/campaigns"] = camp.json()["id"]
    ev = server.post(API + "/events", json={"title": uniq("Etkinlik"), "starts_at": "2031-01-01T10:00:00Z",
                                            "status": "published"}, headers=admin)
    assert ev.status_code == 201, ev.text
    ids["/events"] = ev.json()["id"]
    return {"server": server, "doc": doc, "user": user, "admin": admin, "ids": ids, "write_errors": errs,
            "me": me}


def concrete(path, ids):
    """The path with {id} filled with what the fixture made under its collection (and a company's
    {address_id}), or None."""
    if "{" not in path:
        return path
    head = path[len(API):path.index("/{id}")] if "/{id}" in path else None
    if head not in ids:
        return None
    out = path.replace("{id}", ids[head]).replace("{address_id}", ids.get("address", "{address_id}"))
    return None if "{" in out else out


def test_writes_answer_what_the_document_says(world):
    assert not world["write_errors"], "\n".join(world["write_errors"])


def test_get_answers_match_their_schemas(world):
    server, doc = world["server"], world["doc"]
    errors, checked = [], set()
    for path, ops in sorted(doc["paths"].items()):
        if "get" not in ops or path.startswith(SKIP):
            continue
        url = concrete(path, world["ids"])
        if url is None:
            continue
        for who in ("user", "admin"):
            r = server.get(url, headers=world[who])
            if r.status_code >= 400:  # not this caller's, or a parameter it needs
                assert r.status_code in (400, 401, 403, 404, 409, 422), f"GET {url}: {r.status_code} {r.text[:200]}"
                continue
            errors += check(server, doc, r, path)
            if r.headers.get("content-type", "").startswith("application/json"):
                checked.add(path)
    assert not errors, f"{len(errors)} answers differ from the document:\n" + "\n".join(errors)
    for p in ("/me", "/me/cart", "/me/favorites", "/companies", "/companies/{id}", "/companies/{id}/members",
              "/companies/{id}/addresses", "/companies/{id}/addresses/{address_id}", "/companies/{id}/cart",
              "/companies/{id}/invitations", "/credits/transactions", "/admin/credits/transactions",
              "/products/{id}", "/orders", "/files", "/me/sessions", "/social/analytics", "/campaigns/{id}/stats",
              "/campaigns/{id}/recipients", "/events/{id}/analytics", "/tickets/{id}/messages"):
        assert API + p in checked, f"{p} was not checked: {sorted(checked)}"
    print(f"{len(checked)} GET routes' answers validated against the document")


def test_bodiless_answers_are_bodiless(world):
    """Routes documented 204 answer 204 with nothing: a resource's delete, a company's delete, logout."""
    server, doc = world["server"], world["doc"]
    user, _ = new_user_headers(server, "bodiless")
    a = server.post(API + "/me/addresses", json={"title": "Ev", "full_name": "Ali", "line1": "Sokak 2",
                                                   "city": "İzmir"}, headers=user)
    assert a.status_code == 201, a.text
    c = server.post(API + "/companies", json={"name": uniq("Silinen")}, headers=user).json()
    errors = []
    for path, pattern in ((f"/me/addresses/{a.json()['id']}", "/me/addresses/{id}"),
                          (f"/companies/{c['id']}", "/companies/{id}")):
        r = server.delete(API + path, headers=user)
        assert r.status_code == 204, r.text
        errors += check(server, doc, r, API + pattern, "delete")
    r = server.post(API + "/auth/logout", headers=user)
    assert r.status_code == 204
    errors += check(server, doc, r, API + "/auth/logout", "post")
    assert not errors, errors
