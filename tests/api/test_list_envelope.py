"""Every list is {"data": [...], "meta": {"total", "page", "limit", "pages"}} with page/limit (API.md §1;
issue 15 item 1). The routes come from the OpenAPI document, not from a list kept here: each GET route is
called as a user and as an admin — routes with an {id} with the id of something made first — and every answer
that holds a "data" array, and every route that declares page/limit, must be the envelope."""
import math

import pytest

from catalog_util import mk, new_category, new_product, uniq
from conftest import new_user_headers

API = "/api/v1"
# test-only machinery (a deferred answer, a slow query), not part of the contract
SKIP_PREFIXES = (API + "/_test/",)
# not lists: a report whose "data" are the days of [from, to) next to their totals, bounded by the range
REPORTS = {API + "/me/usage"}
# not JSON resources: the WebSocket handshake (a plain GET is 400 by design)
UPGRADES = {API + "/realtime"}


def declares_pages(op):
    names = {p.get("name") for p in op.get("parameters", []) if p.get("in") == "query"}
    return {"page", "limit"} <= names


def path_params(path):
    return [seg[1:-1] for seg in path.split("/") if seg.startswith("{") and seg.endswith("}")]


@pytest.fixture
def made(server, admin_headers):
    """Ids of things the caller may see, by the collection path they live under."""
    user, _ = new_user_headers(server, "lists")
    cat = new_category(server, admin_headers)
    product = new_product(server, admin_headers, cat["slug"])
    bcat = mk(server, admin_headers, "/blog/categories", {"name": "Liste", "slug": uniq("liste")})
    post = mk(server, admin_headers, "/blog/posts", {"title": "Liste", "body": "b", "category_id": bcat["id"],
                                                     "status": "published"})
    resume_user = mk(server, user, "/resumes", {"title": "CV", "content": "C and SQL"})
    resume_admin = mk(server, admin_headers, "/resumes", {"title": "CV", "content": "C and SQL"})
    by_path = {API + "/products": {"user": product["id"], "admin": product["id"]},
               API + "/blog/posts": {"user": post["id"], "admin": post["id"]},
               API + "/resumes": {"user": resume_user["id"], "admin": resume_admin["id"]}}
    return {"user": user, "admin": admin_headers, "ids": by_path}


def concrete(path, made, who):
    """The path with its one {param} filled from made, or None when nothing made fits."""
    params = path_params(path)
    if len(params) != 1:
        return None
    head = path[:path.index("{") - 1]
    ids = made["ids"].get(head)
    return path.replace("{" + params[0] + "}", ids[who]) if ids else None


def check_envelope(server, url, headers, declared):
    r = server.get(url, headers=headers)
    if r.status_code != 200:  # not this caller's (403), nothing there yet (404), or a required parameter (422)
        assert r.status_code in (403, 404, 422), f"GET {url}: {r.status_code} {r.text[:300]}"
        return False
    if not r.headers.get("Content-Type", "").startswith("application/json"):
        assert not declared, f"GET {url} declares page/limit but answers {r.headers.get('Content-Type')}"
        return False
    body = r.json()
    is_list = isinstance(body, dict) and isinstance(body.get("data"), list)
    if not (is_list or declared):
        return False
    assert is_list, f"GET {url} declares page/limit but answers no data array: {str(body)[:300]}"
    meta = body.get("meta")
    assert isinstance(meta, dict), f"GET {url}: a list without meta: {str(body)[:300]}"
    assert {"total", "page", "limit", "pages"} <= set(meta), f"GET {url}: meta {meta}"
    assert meta["page"] == 1 and meta["limit"] == 20, f"GET {url}: meta {meta}"
    assert meta["pages"] == math.ceil(meta["total"] / meta["limit"]), f"GET {url}: meta {meta}"
    assert len(body["data"]) == min(meta["total"], 20), f"GET {url}: {len(body['data'])} rows, meta {meta}"
    # page and limit are honoured, and out of range is 422 (not clamped)
    sep = "&" if "?" in url else "?"
    r1 = server.get(url + sep + "page=1&limit=1", headers=headers)
    assert r1.status_code == 200, f"GET {url} limit=1: {r1.status_code} {r1.text[:300]}"
    m1 = r1.json()["meta"]
    assert m1["limit"] == 1 and m1["total"] == meta["total"] and len(r1.json()["data"]) == min(1, meta["total"])
    assert server.get(url + sep + "limit=101", headers=headers).status_code == 422, url
    return True


def test_every_list_route_answers_the_envelope(server, made):
    doc = server.get(API + "/openapi.json").json()
    checked, skipped, failures = [], [], []
    for path, ops in sorted(doc["paths"].items()):
        op = ops.get("get")
        if not op or path.startswith(SKIP_PREFIXES) or path in REPORTS or path in UPGRADES:
            continue
        declared = declares_pages(op)
        for who in ("user", "admin"):
            url = path if not path_params(path) else concrete(path, made, who)
            if url is None:
                if declared:
                    skipped.append(path)
                continue
            try:
                if check_envelope(server, url, made[who], declared):
                    checked.append((who, path))
            except AssertionError as e:
                failures.append(f"{who}: {str(e).splitlines()[0]}")
    assert not failures, "\n".join(failures)
    # the walk reached the lists this issue is about, and every declared list with an id we could make
    listed = {p for _, p in checked}
    for p in (API + "/admin/flags", API + "/admin/ai/providers", API + "/admin/queues", API + "/admin/jobs",
              API + "/me/sessions", API + "/me/api-keys",
              API + "/resumes/{id}/shares", API + "/products/{id}/reviews", API + "/blog/posts/{id}/comments"):
        assert p in listed, f"{p} was not checked as a list: {sorted(listed)}"
    assert not [p for p in set(skipped) if p.count("{") == 1 and p[:p.index("{") - 1] in made["ids"]], skipped
