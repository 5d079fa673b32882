"""The declarative resource engine (issue 5) through its first users, the career resources:
object-level access, every filter operator and the expression grammar, sort, pages,
ETag/If-Match, soft delete, search, injection-looking input, OpenAPI."""
import urllib.parse

import pytest
import requests
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import HTTP_TIMEOUT, assert_problem, error_fields, new_user_headers

API = "/api/v1"


def mk(server, h, path, body, status=201):
    r = server.post(API + path, json=body, headers=h)
    assert r.status_code == status, r.text
    return r.json()


def ids(r):
    assert r.status_code == 200, r.text
    return [x["id"] for x in r.json()["data"]]


@pytest.fixture
def owner(server):
    return new_user_headers(server, "owner")[0]


@pytest.fixture
def jobs(server, owner):
    """Five jobs of one user, oldest first."""
    out = []
    for i, (title, status, company) in enumerate([
            ("Alpha engineer", "open", "Acme"), ("Beta 50% off_sale", "open", "Globex"),
            ("Gamma analyst", "closed", "Acme"), ("Delta python developer", "open", "Initech"),
            ("Epsilon manager", "closed", "Umbrella")]):
        out.append(mk(server, owner, "/jobs", {"title": title, "status": status, "company": company,
                                                "description": f"job number {i}"}))
    return out


# ---- create and validation ----

def test_create_201_location_etag(server, owner):
    r = server.post(API + "/resumes", json={"title": "CV", "skills": ["Go"]}, headers=owner)
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["Location"] == f"{API}/resumes/{body['id']}"
    assert r.headers["ETag"]
    assert set(body) >= {"id", "title", "summary", "content", "skills", "status", "created_at", "updated_at"}
    assert body["status"] == "draft" and body["skills"] == ["Go"]
    assert body["created_at"].endswith("Z")


@pytest.mark.parametrize("body,field", [
    ({}, "title"),
    ({"title": ""}, "title"),
    ({"title": "x", "unknown": 1}, "unknown"),
    ({"title": "x", "id": "01a1a1a1-0000-7000-8000-000000000000"}, "id"),
    ({"title": "x", "user_id": "someone"}, "user_id"),
    ({"title": "x", "ats_score": 99}, "ats_score"),
    ({"title": "x", "created_at": "2024-01-01"}, "created_at"),
    ({"title": "x", "status": "published"}, "status"),
    ({"title": "x", "skills": "python"}, "skills"),
    ({"title": "x", "skills": [""]}, "skills"),
    ({"title": 5}, "title"),
])
def test_create_rejects(server, owner, body, field):
    b = assert_problem(server.post(API + "/resumes", json=body, headers=owner), 422, "VALIDATION_ERROR")
    assert field in error_fields(b)


def test_job_url_validator(server, owner):
    b = assert_problem(server.post(API + "/jobs", json={"title": "x", "url": "javascript:alert(1)"}, headers=owner),
                       422)
    assert "url" in error_fields(b)
    assert mk(server, owner, "/jobs", {"title": "x", "url": "https://example.com/j/1"})["url"] == \
        "https://example.com/j/1"


def test_application_refs_must_be_visible(server, owner):
    other, _ = new_user_headers(server, "other")
    theirs = mk(server, other, "/jobs", {"title": "Their job"})
    b = assert_problem(server.post(API + "/applications", json={"job_id": theirs["id"]}, headers=owner), 422)
    assert "job_id" in error_fields(b)
    b = assert_problem(server.post(API + "/applications", json={"job_id": "'; DROP TABLE career_jobs; --"},
                                   headers=owner), 422)
    assert "job_id" in error_fields(b)


def test_anonymous_is_401(server):
    assert_problem(server.get(API + "/resumes"), 401)
    assert_problem(server.post(API + "/jobs", json={"title": "x"}), 401)


# ---- object-level access ----

@pytest.mark.parametrize("kind", ["resumes", "jobs", "applications"])
def test_other_user_gets_404_and_never_sees_rows(server, owner, kind):
    other, _ = new_user_headers(server, "intruder")
    job = mk(server, owner, "/jobs", {"title": "Zanzibar engineer", "description": "zanzibar"})
    if kind == "resumes":
        row = mk(server, owner, "/resumes", {"title": "Zanzibar resume", "content": "zanzibar"})
    elif kind == "jobs":
        row = job
    else:
        row = mk(server, owner, "/applications", {"job_id": job["id"], "notes": "zanzibar notes"})
    url = f"{API}/{kind}/{row['id']}"
    assert_problem(server.get(url, headers=other), 404, "NOT_FOUND")
    assert_problem(server.request("PATCH", url, json={"notes" if kind == "applications" else "title": "mine"},
                                  headers=other), 404, "NOT_FOUND")
    assert_problem(server.request("DELETE", url, headers=other), 404, "NOT_FOUND")
    assert row["id"] not in ids(server.get(f"{API}/{kind}", headers=other))
    assert row["id"] not in ids(server.get(f"{API}/{kind}?filter=" + urllib.parse.quote(f"id = '{row['id']}'"),
                                           headers=other))
    assert row["id"] not in ids(server.get(f"{API}/{kind}?q=zanzibar", headers=other))
    hits = server.get(f"{API}/search?q=zanzibar", headers=other).json()["data"]
    assert row["id"] not in [h["id"] for h in hits]
    # the owner still has it, unchanged
    r = server.get(url, headers=owner)
    assert r.status_code == 200 and r.json()["id"] == row["id"]
    assert row["id"] in [h["id"] for h in server.get(f"{API}/search?q=zanzibar", headers=owner).json()["data"]]


# ---- filters ----

def titles(server, h, qs):
    r = server.get(f"{API}/jobs?{qs}&sort=created_at:asc", headers=h)
    assert r.status_code == 200, r.text
    return [x["title"].split()[0] for x in r.json()["data"]]


def test_bracket_operators(server, owner, jobs):
    mid = jobs[2]["created_at"]
    q = urllib.parse.quote
    assert titles(server, owner, "status=closed") == ["Gamma", "Epsilon"]
    assert titles(server, owner, "status[eq]=closed") == ["Gamma", "Epsilon"]
    assert titles(server, owner, "status[ne]=closed") == ["Alpha", "Beta", "Delta"]
    assert titles(server, owner, f"created_at[gt]={q(mid)}") == ["Delta", "Epsilon"]
    assert titles(server, owner, f"created_at[gte]={q(mid)}") == ["Gamma", "Delta", "Epsilon"]
    assert titles(server, owner, f"created_at[lt]={q(mid)}") == ["Alpha", "Beta"]
    assert titles(server, owner, f"created_at[lte]={q(mid)}") == ["Alpha", "Beta", "Gamma"]
    assert titles(server, owner, "company[in]=Acme,Initech") == ["Alpha", "Gamma", "Delta"]
    assert titles(server, owner, "title[like]=ENGINEER") == ["Alpha"]
    assert titles(server, owner, "title[like]=" + q("50%")) == ["Beta"]
    assert titles(server, owner, "title[like]=" + q("0%")) == ["Beta"]
    assert titles(server, owner, "title[like]=" + q("%")) == ["Beta"]   # % is literal, not a wildcard
    assert titles(server, owner, "title[like]=" + q("f_s")) == ["Beta"]  # _ is literal
    assert titles(server, owner, "title[like]=" + q("a_a")) == []
    assert titles(server, owner, "status=open&company=Acme") == ["Alpha"]
    assert titles(server, owner, "created_at[gte]=2000-01-01") == ["Alpha", "Beta", "Gamma", "Delta", "Epsilon"]


def test_filter_expressions(server, owner, jobs):
    def f(expr):
        return titles(server, owner, "filter=" + urllib.parse.quote(expr))
    assert f("status = 'closed'") == ["Gamma", "Epsilon"]
    assert f('status != "closed"') == ["Alpha", "Beta", "Delta"]
    assert f("company = 'Acme' && status = 'open'") == ["Alpha"]
    assert f("company = 'Acme' || company = 'Umbrella'") == ["Alpha", "Gamma", "Epsilon"]
    assert f("(company = 'Acme' || company = 'Globex') && status = 'open'") == ["Alpha", "Beta"]
    assert f("company = 'Acme' || company = 'Globex' && status = 'closed'") == ["Alpha", "Gamma"]
    assert f("title ~ 'PYTHON'") == ["Delta"]
    assert f("title !~ 'a'") == []
    assert f("title !~ 'e'") == ["Gamma"]
    assert f(f"created_at > '{jobs[3]['created_at']}'") == ["Epsilon"]
    assert f(f"created_at >= '{jobs[3]['created_at']}' && created_at <= @now") == ["Delta", "Epsilon"]
    assert f("created_at > @now") == []
    assert f("url = null && status = 'open'") == ["Alpha", "Beta", "Delta"]
    assert f("url != null") == []
    assert f("") == ["Alpha", "Beta", "Gamma", "Delta", "Epsilon"]
    # filter and bracket filters combine
    assert titles(server, owner, "status=open&filter=" + urllib.parse.quote("company = 'Acme'")) == ["Alpha"]


@pytest.mark.parametrize("qs,field,status", [
    ("nope=1", "nope", 422),
    ("user_id=x", "user_id", 422),
    ("title[between]=1", "title[between]", 422),
    ("status=unknown", "status", 422),
    ("created_at[gt]=yesterday", "created_at", 422),
    ("filter=" + urllib.parse.quote("nope = 1"), "nope", 422),
    ("filter=" + urllib.parse.quote("user_id = 'x'"), "user_id", 422),
    ("filter=" + urllib.parse.quote("title = 1"), "title", 422),
    ("sort=nope", "sort", 422),
    ("sort=title:sideways", "sort", 422),
    ("sort=" + urllib.parse.quote("title; DROP TABLE career_jobs"), "sort", 422),
    ("skip_total=maybe", "skip_total", 422),
])
def test_unknown_or_bad_filter_is_422(server, owner, qs, field, status):
    b = assert_problem(server.get(f"{API}/jobs?{qs}", headers=owner), status, "VALIDATION_ERROR")
    assert field in error_fields(b), b


@pytest.mark.parametrize("expr", ["title = 'a", "title =", "(title = 'a'", "title = 'a')", "title 'a'",
                                  "title = 'a' & x", "1 = 1", "title = @you", "title = 'a' OR 1=1"])
def test_filter_syntax_is_400(server, owner, expr):
    assert_problem(server.get(f"{API}/jobs?filter=" + urllib.parse.quote(expr), headers=owner), 400, "BAD_REQUEST")


def test_sort(server, owner, jobs):
    r = server.get(f"{API}/jobs", headers=owner)  # default newest first
    assert ids(r) == [j["id"] for j in reversed(jobs)]
    assert titles(server, owner, "") == ["Alpha", "Beta", "Gamma", "Delta", "Epsilon"]
    r = server.get(f"{API}/jobs?sort=company:desc,title:asc", headers=owner)
    assert [x["company"] for x in r.json()["data"]] == ["Umbrella", "Initech", "Globex", "Acme", "Acme"]
    assert [x["title"] for x in r.json()["data"]][3:] == ["Alpha engineer", "Gamma analyst"]


# ---- injection-looking values are inert ----

EVIL = ["' OR '1'='1", "'; DROP TABLE career_jobs; --", "\" OR 1=1 --", "%' OR 1=1 --", "x\\", "\\' OR 1=1",
        "1) OR (1=1", "NULL", "*", "title", "ü' ||'", "a\nb", "🙂"]


@pytest.mark.parametrize("v", EVIL)
def test_injection_inert(server, owner, jobs, v):
    q = urllib.parse.quote(v, safe="")
    for qs in [f"title={q}", f"title[like]={q}", f"company[in]={q}", f"q={q}",
               "filter=" + urllib.parse.quote(f"title = '{v.replace(chr(39), chr(92) + chr(39))}'"),
               "filter=" + urllib.parse.quote(f"title ~ \"{v.replace(chr(34), chr(92) + chr(34))}\"")]:
        r = server.get(f"{API}/jobs?{qs}", headers=owner)
        assert r.status_code in (200, 400, 422), (qs, r.status_code, r.text)
        if r.status_code == 200:
            assert r.json()["data"] == [] or all(v.lower() in x["title"].lower() for x in r.json()["data"]), qs
    for path in [f"/jobs/{q}", f"/resumes/{q}/score?job_id={q}"]:
        r = server.get(API + path, headers=owner)
        assert r.status_code in (400, 404, 422), (path, r.status_code)
    assert len(ids(server.get(f"{API}/jobs", headers=owner))) == 5


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(expr=st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(["title", "status", "created_at", "url", "company", "nope", "=", "!=", ">", ">=",
                              "<", "<=", "~", "!~", "&&", "||", "(", ")", "'a'", '"b"', "1", "-2.5", "true",
                              "null", "@now", "@me", "'", "\\", "%", "_"]), max_size=12).map(" ".join)))
def test_random_filters_never_500(server, expr):
    h = _prop_headers(server)
    r = requests.get(server.url(f"{API}/jobs"), params={"filter": expr}, headers=h, timeout=HTTP_TIMEOUT)
    assert r.status_code in (200, 400, 422), (expr, r.status_code, r.text[:300])


_PROP = {}


def _prop_headers(server):
    if server.port not in _PROP:
        _PROP[server.port] = new_user_headers(server, "prop")[0]
    return _PROP[server.port]


# ---- pages ----

def test_pagination(server, owner, jobs):
    r = server.get(f"{API}/jobs?limit=2&page=2&sort=created_at:asc", headers=owner)
    assert r.json()["meta"] == {"total": 5, "page": 2, "limit": 2, "pages": 3}
    assert [x["id"] for x in r.json()["data"]] == [jobs[2]["id"], jobs[3]["id"]]
    r = server.get(f"{API}/jobs?limit=2&page=9", headers=owner)
    assert r.status_code == 200 and r.json()["data"] == []
    assert r.json()["meta"] == {"total": 5, "page": 9, "limit": 2, "pages": 3}
    for bad in ["limit=0", "limit=101", "page=0", "page=-1", "limit=abc"]:
        assert_problem(server.get(f"{API}/jobs?{bad}", headers=owner), 422)
    r = server.get(f"{API}/jobs?limit=2&skip_total=true", headers=owner)
    assert r.json()["meta"] == {"page": 1, "limit": 2, "has_more": True}
    r = server.get(f"{API}/jobs?limit=2&page=3&skip_total=true", headers=owner)
    assert r.json()["meta"] == {"page": 3, "limit": 2, "has_more": False} and len(r.json()["data"]) == 1
    r = server.get(f"{API}/jobs?limit=100&skip_total=1&status=open", headers=owner)
    assert len(r.json()["data"]) == 3 and r.json()["meta"]["has_more"] is False


# ---- ETag / If-Match ----

def test_etag_if_match(server, owner):
    row = mk(server, owner, "/jobs", {"title": "Versioned"})
    url = f"{API}/jobs/{row['id']}"
    r = server.get(url, headers=owner)
    tag = r.headers["ETag"]
    assert server.get(url, headers={**owner, "If-None-Match": tag}).status_code == 304
    r = server.request("PATCH", url, json={"title": "V2"}, headers={**owner, "If-Match": tag})
    assert r.status_code == 200 and r.json()["title"] == "V2"
    new = r.headers["ETag"]
    assert new != tag
    assert_problem(server.request("PATCH", url, json={"title": "V3"}, headers={**owner, "If-Match": tag}), 412,
                   "PRECONDITION_FAILED")
    assert_problem(server.request("DELETE", url, headers={**owner, "If-Match": tag}), 412, "PRECONDITION_FAILED")
    assert server.get(url, headers=owner).json()["title"] == "V2"
    r = server.request("PATCH", url, json={"company": "C"}, headers={**owner, "If-Match": f'W/{new}'})
    assert r.status_code == 200
    assert server.request("PATCH", url, json={"company": "D"}, headers={**owner, "If-Match": "*"}).status_code == 200
    assert server.request("DELETE", url, headers={**owner, "If-Match": server.get(url, headers=owner)
                                                  .headers["ETag"]}).status_code == 204
    assert_problem(server.get(url, headers=owner), 404)


def test_patch_validation(server, owner):
    row = mk(server, owner, "/resumes", {"title": "P"})
    url = f"{API}/resumes/{row['id']}"
    for body, field in [({"title": ""}, "title"), ({"ats_score": 1}, "ats_score"), ({"id": "x"}, "id"),
                        ({"status": "gone"}, "status"), ({"nope": 1}, "nope")]:
        b = assert_problem(server.request("PATCH", url, json=body, headers=owner), 422)
        assert field in error_fields(b)
    r = server.request("PATCH", url, json={"status": "active", "skills": ["SQL"]}, headers=owner)
    assert r.json()["status"] == "active" and r.json()["skills"] == ["SQL"] and r.json()["title"] == "P"
    assert r.json()["updated_at"] >= row["updated_at"]
    assert_problem(server.request("PATCH", f"{API}/resumes/not-a-uuid", json={"title": "x"}, headers=owner), 404)


# ---- soft delete ----

def test_soft_delete(server, owner, db_factory):
    row = mk(server, owner, "/resumes", {"title": "Soft one", "content": "quokka"})
    url = f"{API}/resumes/{row['id']}"
    assert server.request("DELETE", url, headers=owner).status_code == 204
    assert_problem(server.get(url, headers=owner), 404)
    assert_problem(server.request("DELETE", url, headers=owner), 404)
    assert_problem(server.request("PATCH", url, json={"title": "x"}, headers=owner), 404)
    assert row["id"] not in ids(server.get(f"{API}/resumes", headers=owner))
    assert row["id"] not in ids(server.get(f"{API}/resumes?q=quokka", headers=owner))
    rows = db_factory.query(server.db_url, "SELECT deleted_at FROM career_resumes WHERE id = ?", (row["id"],))
    assert len(rows) == 1 and rows[0][0] is not None
    # jobs delete for real
    job = mk(server, owner, "/jobs", {"title": "Hard one"})
    assert server.request("DELETE", f"{API}/jobs/{job['id']}", headers=owner).status_code == 204
    assert db_factory.query(server.db_url, "SELECT id FROM career_jobs WHERE id = ?", (job["id"],)) == []


# ---- search ----

def test_search_ranking(server, owner):
    weak = mk(server, owner, "/resumes", {"title": "Generalist", "content": "some wombat experience among many "
                                                                              "other things " * 5})
    strong = mk(server, owner, "/resumes", {"title": "Wombat wombat specialist", "summary": "wombat",
                                            "content": "wombat wombat wombat"})
    mk(server, owner, "/resumes", {"title": "Unrelated", "content": "nothing here"})
    r = server.get(f"{API}/resumes?q=wombat", headers=owner)
    assert ids(r) == [strong["id"], weak["id"]]
    assert r.json()["meta"]["total"] == 2
    # an explicit sort wins over the rank
    assert ids(server.get(f"{API}/resumes?q=wombat&sort=created_at:asc", headers=owner)) == [weak["id"], strong["id"]]
    # several words: all must match
    assert ids(server.get(f"{API}/resumes?q=wombat+specialist", headers=owner)) == [strong["id"]]
    assert ids(server.get(f"{API}/resumes?q=" + urllib.parse.quote("\"*()'"), headers=owner)) == []
    hits = server.get(f"{API}/search?q=wombat&types=resumes", headers=owner).json()["data"]
    assert [h["id"] for h in hits] == [strong["id"], weak["id"]]
    assert hits[0]["type"] == "resumes" and hits[0]["title"] == "Wombat wombat specialist"


def test_search_route_validation(server, owner):
    assert_problem(server.get(f"{API}/search", headers=owner), 422)
    b = assert_problem(server.get(f"{API}/search?q=x&types=resumes,secrets", headers=owner), 422)
    assert "types" in error_fields(b)
    assert_problem(server.get(f"{API}/search?q=x&bogus=1", headers=owner), 422)
    # anonymous callers see nothing private
    r = server.get(f"{API}/search?q=wombat")
    assert r.status_code == 200 and r.json()["data"] == []


# ---- OpenAPI ----

def test_openapi_has_descriptor_schemas(server):
    doc = server.get(API + "/openapi.json").json()
    post = doc["paths"]["/api/v1/resumes"]["post"]
    schema = post["requestBody"]["content"]["application/json"]["schema"]
    assert schema["additionalProperties"] is False
    assert {"title", "summary", "content", "skills", "status"} <= set(schema["properties"])
    assert "ats_score" not in schema["properties"] and "id" not in schema["properties"]
    assert schema["required"] == ["title"]
    lst = doc["paths"]["/api/v1/jobs"]["get"]
    names = {p["name"] for p in lst["parameters"]}
    assert {"page", "limit", "sort", "filter", "skip_total", "q", "status", "title", "created_at"} <= names
    item = lst["responses"]["2XX"]["content"]["application/json"]["schema"]
    assert "data" in item["properties"]
    patch = doc["paths"]["/api/v1/applications/{id}"]["patch"]
    assert "status" not in patch["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert any(p["name"] == "If-Match" for p in patch["parameters"])
    assert "/api/v1/search" in doc["paths"]
