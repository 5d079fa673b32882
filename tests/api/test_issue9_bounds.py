"""Issue 9 item 1: every SQL argument of a resource list goes through one bounded adder.

`GET /api/v1/products` with filters worth RQ_MAX_ARGS (96) bound arguments plus `q=` wrote
the search argument past `struct rq.args` (args[96]) and crashed the server on 70e52e5.
Now the 97th argument is a 422 problem+json naming the parameter, and exactly 96 still work.
Also drives the other request-filled arrays of src/http to their bound and one past:
query parameters (QUERY_MAX_PARAMS), JSON validation errors (JSON_VERR_MAX), bracket
filters and `[in]` lists."""
import pytest

from conftest import assert_problem, error_fields

API = "/api/v1"
RQ_MAX_ARGS = 96


def terms(n):
    """One filter expression of n bound arguments."""
    return "||".join(["price>=0"] * n)


def filters(*sizes):
    return [("filter", terms(n)) for n in sizes]


def get(server, params):
    return server.get(API + "/products", params=params)


def test_search_after_96_filter_args_is_422_not_a_crash(server):
    """The reproduction from the issue: 40 + 40 + 16 bound filter args, then q=x."""
    r = get(server, filters(40, 40, 16) + [("q", "x")])
    body = assert_problem(r, 422, "VALIDATION_ERROR")
    assert "q" in error_fields(body), body
    # and the server is still there
    assert get(server, [("q", "x")]).status_code == 200


def test_search_with_95_filter_args_fills_the_bound_exactly(server):
    r = get(server, filters(40, 40, 15) + [("q", "x")])
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["data"], list)


def test_filters_alone_96_ok_97_is_422(server):
    assert get(server, filters(40, 40, 16)).status_code == 200
    r = get(server, filters(40, 40, 16, 1))
    body = assert_problem(r, 422, "VALIDATION_ERROR")
    assert "filter" in error_fields(body), body


def test_bracket_in_filters_count_against_the_same_bound(server):
    """[in] lists and bracket filters use the same adder: 96 values pass, 97 are a 422."""
    ins = ",".join(["1"] * 48)
    ok = [("price[in]", ins), ("stock[in]", ins)]
    assert get(server, ok).status_code == 200
    r = get(server, ok + [("price[gte]", "0")])
    assert_problem(r, 422, "VALIDATION_ERROR")
    r = get(server, ok + [("q", "x")])
    body = assert_problem(r, 422, "VALIDATION_ERROR")
    assert "q" in error_fields(body), body


def test_query_params_64_ok_65_is_a_problem(server):
    """QUERY_MAX_PARAMS (64) query parameters: the bound passes, one more is a 4xx problem."""
    ok = [("price[gte]", "0")] * 64
    assert get(server, ok).status_code == 200
    r = get(server, ok + [("price[gte]", "0")])
    assert 400 <= r.status_code < 500
    assert_problem(r, r.status_code)


def test_field_errors_stop_at_json_verr_max(server):
    """JSON_VERR_MAX (16) field errors are listed; more unknown fields add no more (no write past)."""
    from conftest import new_user_headers
    h = new_user_headers(server, "verr")[0]
    for n, want in ((16, 16), (17, 16)):
        body = {"title": "CV"} | {f"u{i}": i for i in range(n)}
        r = server.post(API + "/resumes", json=body, headers=h)
        got = assert_problem(r, 422, "VALIDATION_ERROR")
        assert len(got["errors"]) == want, got
