"""Errors and strict JSON: 404/405 problems, POST /api/v1/_test/echo validation."""
import json

import pytest

from conftest import assert_problem, error_fields

ECHO = "/api/v1/_test/echo"
JSON = {"Content-Type": "application/json"}


def post_raw(server, body, ctype="application/json", **kw):
    headers = {"Content-Type": ctype} if ctype is not None else {}
    return server.post(ECHO, data=body, headers=headers, **kw)


# ------------------------------------------------------------------ 404 / 405

@pytest.mark.parametrize("path", ["/nope", "/api/v1/nope", "/api/v1/_test/items", "/api/v2/openapi.json",
                                  "/health/live/x", "/healthz", "/", "/api/v1/_test/items/a/b",
                                  "/api/v1/_test/echo/"])
def test_unknown_path_is_404_problem(server, path):
    r = server.get(path)
    assert_problem(r, 404, "NOT_FOUND")


@pytest.mark.parametrize("method,path,allowed", [
    ("POST", "/health/live", {"GET"}),
    ("DELETE", "/health", {"GET"}),
    ("PUT", "/metrics", {"GET"}),
    ("GET", "/api/v1/_test/echo", {"POST"}),
    ("PUT", "/api/v1/_test/echo", {"POST"}),
    ("DELETE", "/api/v1/_test/items/0190a6c2-7b7a-7cc1-8d5e-3f2b1a0c9e11", {"GET"}),
    ("PATCH", "/api/v1/openapi.json", {"GET"}),
])
def test_wrong_method_is_405_with_allow(server, method, path, allowed):
    r = server.request(method, path)
    assert_problem(r, 405, "METHOD_NOT_ALLOWED")
    allow = {m.strip().upper() for m in r.headers.get("Allow", "").split(",") if m.strip()}
    assert allowed <= allow, f"Allow: {r.headers.get('Allow')!r}"
    assert method not in allow


# ------------------------------------------------------------------ echo: valid bodies

def test_echo_minimal(server):
    r = server.post(ECHO, json={"name": "a"})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].split(";")[0].strip() == "application/json"
    assert r.json() == {"data": {"name": "a"}}


def test_echo_full_body(server):
    body = {"name": "widget", "count": 1000, "tags": ["a", "b", ""],
            "meta": {"x": 1, "y": [1, 2.5, None, True, False], "z": {"k": "v"}, "neg": -3}}
    r = server.post(ECHO, json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"data": body}


@pytest.mark.parametrize("name", [
    "Çağrı Şükrü İğdır 🙂",
    "quote\" backslash\\ slash/ tab\t nl\n cr\r",
    "\u0001\u0002\u001f\u007f",
    "\u2028\u2029 \ufeff",
    "<script>alert(1)</script>",
    "𝄞" * 10,
])
def test_echo_string_escaping_roundtrip(server, name):
    r = server.post(ECHO, json={"name": name, "meta": {name: name}})
    assert r.status_code == 200, r.text
    assert json.loads(r.content.decode("utf-8")) == {"data": {"name": name, "meta": {name: name}}}


def test_echo_raw_utf8_input(server):
    body = '{"name":"çğıöşü 日本"}'.encode("utf-8")
    r = post_raw(server, body)
    assert r.status_code == 200, r.text
    assert r.json()["data"]["name"] == "çğıöşü 日本"


@pytest.mark.parametrize("ctype", ["application/json; charset=utf-8", "application/json;charset=UTF-8",
                                   "Application/JSON"])
def test_echo_content_type_variants_accepted(server, ctype):
    r = post_raw(server, b'{"name":"a"}', ctype=ctype)
    assert r.status_code == 200, r.text


def test_echo_boundaries_accepted(server):
    for body in ({"name": "x" * 100}, {"name": "ç" * 100}, {"name": "a", "count": 0},
                 {"name": "a", "count": 1000}, {"name": "a", "tags": ["t"] * 20},
                 {"name": "a", "tags": []}, {"name": "a", "meta": {}}):
        r = server.post(ECHO, json=body)
        assert r.status_code == 200, (body, r.text)
        assert r.json() == {"data": body}


def test_echo_large_integer_count_is_not_truncated_into_range(server):
    # 2^64 + 5 must not wrap around to 5
    r = post_raw(server, b'{"name":"a","count":18446744073709551621}')
    assert r.status_code in (400, 422), r.text


# ------------------------------------------------------------------ echo: malformed JSON → 400

@pytest.mark.parametrize("body", [
    b"{", b"", b" ", b'{"name":}', b'{"name":"a",}', b"{'name':'a'}", b'{"name":"a"} x',
    b'{"name":"a"}{"name":"b"}', b"nul", b'{"name":"a","count":NaN}', b'{"name":"a","count":Infinity}',
    b'{"name":"a","count":01}', b'{"name":"a\x01"}', b'{"name":"a" /*c*/}', b'{"name":"\\x41"}',
    b'{"name":"a"', b'{"name" "a"}',
])
def test_malformed_json_is_400(server, body):
    r = post_raw(server, body)
    assert_problem(r, 400, "BAD_REQUEST")


@pytest.mark.parametrize("body", [
    b'{"name":"a","name":"b"}',
    b'{"name":"a","meta":{"k":1,"k":2}}',
    b'{"name":"a","meta":{"x":{"y":{"z":1,"z":1}}}}',
])
def test_duplicate_keys_are_400(server, body):
    r = post_raw(server, body)
    assert_problem(r, 400, "BAD_REQUEST")


@pytest.mark.parametrize("body", [
    b'{"name":"\xff"}', b'{"name":"\xc0\xaf"}', b'{"name":"\xed\xa0\x80"}', b'{"name":"\xe2\x82"}',
    b'{"name":"a","meta":{"\xfe":1}}', b'{"name":"\xf8\x88\x80\x80\x80"}', b'{"name":"\xf4\x90\x80\x80"}',
    b'{"name":"\\ud800"}', b'{"name":"\\udc00x"}',
])
def test_invalid_utf8_is_400(server, body):
    r = post_raw(server, body)
    assert_problem(r, 400, "BAD_REQUEST")


def _nested_meta(depth):
    """A body whose total nesting depth (top-level object = 1) is `depth`."""
    inner = "1"
    for _ in range(depth - 1):
        inner = '{"a":' + inner + "}"
    return ('{"name":"n","meta":' + inner + "}").encode() if depth >= 2 else b'{"name":"n"}'


def test_nesting_within_limit_accepted(server):
    r = post_raw(server, _nested_meta(31))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("depth", [34, 100, 10000])  # 10000 levels is still < 64 KiB
def test_nesting_too_deep_is_400(server, depth):
    r = post_raw(server, _nested_meta(depth))
    assert_problem(r, 400, "BAD_REQUEST")


def test_deep_arrays_are_400(server):
    body = b'{"name":"n","meta":{"a":' + b"[" * 30000 + b"]" * 30000 + b"}}"
    r = post_raw(server, body)
    assert_problem(r, 400, "BAD_REQUEST")


def test_nul_escape_is_refused_or_roundtrips(server):
    r = post_raw(server, b'{"name":"a\\u0000b"}')
    if r.status_code == 200:
        assert r.json() == {"data": {"name": "a\u0000b"}}, "NUL silently truncated"
    else:
        assert r.status_code in (400, 422), r.text


# ------------------------------------------------------------------ content type → 415

@pytest.mark.parametrize("ctype", [None, "text/plain", "application/x-www-form-urlencoded",
                                   "multipart/form-data; boundary=x", "application/jsonx",
                                   "application/json-patch+json", "text/json"])
def test_wrong_content_type_is_415(server, ctype):
    r = post_raw(server, b'{"name":"a"}', ctype=ctype)
    assert_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")


# ------------------------------------------------------------------ schema → 422

@pytest.mark.parametrize("body,field", [
    ({"name": "a", "role": "admin"}, "role"),
    ({"name": "a", "id": "x"}, "id"),
    ({"name": "a", "Name": "b"}, "Name"),
    ({}, "name"),
    ({"count": 1}, "name"),
    ({"name": ""}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": 5}, "name"),
    ({"name": None}, "name"),
    ({"name": ["a"]}, "name"),
    ({"name": {"a": 1}}, "name"),
    ({"name": True}, "name"),
    ({"name": "a", "count": -1}, "count"),
    ({"name": "a", "count": 1001}, "count"),
    ({"name": "a", "count": 1.5}, "count"),
    ({"name": "a", "count": "5"}, "count"),
    ({"name": "a", "count": True}, "count"),
    ({"name": "a", "tags": "x"}, "tags"),
    ({"name": "a", "tags": [1]}, "tags"),
    ({"name": "a", "tags": [None]}, "tags"),
    ({"name": "a", "tags": ["t"] * 21}, "tags"),
    ({"name": "a", "tags": {"a": "b"}}, "tags"),
    ({"name": "a", "meta": []}, "meta"),
    ({"name": "a", "meta": "x"}, "meta"),
    ({"name": "a", "meta": 1}, "meta"),
])
def test_schema_violations_are_422_naming_field(server, body, field):
    r = server.post(ECHO, json=body)
    b = assert_problem(r, 422, "VALIDATION_ERROR")
    fields = error_fields(b)
    assert any(f == field or f.startswith(field + "[") or f.startswith(field + ".") for f in fields), \
        f"errors must name {field!r}: {b}"


def test_count_float_with_zero_fraction(server):
    # 5.0 is not an integer token; either accepted as 5 or refused, never echoed as 5.0 silently
    r = post_raw(server, b'{"name":"a","count":5.0}')
    if r.status_code == 200:
        assert r.json()["data"]["count"] == 5
    else:
        b = assert_problem(r, 422, "VALIDATION_ERROR")
        assert "count" in error_fields(b)


@pytest.mark.parametrize("body", [b"[]", b'"name"', b"1", b"null", b'[{"name":"a"}]'])
def test_top_level_not_object_is_refused(server, body):
    r = post_raw(server, body)
    assert r.status_code in (400, 422), r.text
    assert_problem(r, r.status_code, "BAD_REQUEST" if r.status_code == 400 else "VALIDATION_ERROR")


def test_multiple_unknown_fields_are_all_named(server):
    r = server.post(ECHO, json={"name": "a", "evil": 1, "role": "admin"})
    b = assert_problem(r, 422, "VALIDATION_ERROR")
    assert {"evil", "role"} <= set(error_fields(b)), b


# ------------------------------------------------------------------ req_tx: one error path through transactions

REQ_TX = "/api/v1/_test/req-tx"


def test_retried_transaction_keeps_nothing_of_the_failed_attempt(server):
    # the first attempt wrote output, set 201, recorded a 503 with a field error and Retry-After, then asked
    # for a retry: the answer is the second attempt's alone
    r = server.post(REQ_TX)
    assert r.status_code == 200, r.text
    assert r.json() == {"attempt": 2}
    assert "Retry-After" not in r.headers


def test_failure_inside_a_retried_transaction_is_its_own_error(server):
    r = server.post(REQ_TX + "?fail=1")
    b = assert_problem(r, 422, "VALIDATION_ERROR")
    assert error_fields(b) == ["second"], b
    assert "Retry-After" not in r.headers
