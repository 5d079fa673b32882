"""Blog (API.md §9, seed 001): categories and posts written by staff (drafts hidden from the
public), comments written by users and hidden until staff approve them."""
import pytest

from catalog_util import API, guest, ids, mk, moderator_headers, uniq
from conftest import assert_problem, error_fields, new_user_headers


@pytest.fixture
def bcat(server, admin_headers):
    return mk(server, admin_headers, "/blog/categories", {"name": "Tarifler", "slug": uniq("tarif")})


@pytest.fixture
def post(server, admin_headers, bcat):
    """A published post."""
    return mk(server, admin_headers, "/blog/posts", {"title": "Köy peyniri nasıl yapılır", "body": "Süt, maya, tuz.",
                                                     "category_id": bcat["id"], "status": "published"})


def test_categories_staff_write_public_read(server, admin_headers):
    user, _ = new_user_headers(server)
    mod = moderator_headers(server, admin_headers)
    body = {"name": "Haberler", "slug": uniq("haber")}
    assert_problem(server.post(f"{API}/blog/categories", json=body, headers=user), 403)
    assert_problem(server.post(f"{API}/blog/categories", json=body), 401)
    c = mk(server, mod, "/blog/categories", body)
    assert server.get(f"{API}/blog/categories/{c['id']}").json()["name"] == "Haberler"
    assert c["id"] in ids(server.get(f"{API}/blog/categories?slug={body['slug']}"))
    assert_problem(server.post(f"{API}/blog/categories", json=body, headers=mod), 409)
    assert_problem(server.post(f"{API}/blog/categories", json={"name": "x", "slug": "Bad Slug"}, headers=mod), 422)
    assert_problem(server.delete(f"{API}/blog/categories/{c['id']}", headers=user), 403)
    assert server.delete(f"{API}/blog/categories/{c['id']}", headers=mod).status_code == 204


def test_posts_drafts_hidden_until_published(server, admin_headers, bcat):
    user, _ = new_user_headers(server)
    word = uniq("bal").replace("-", "")
    d = mk(server, admin_headers, "/blog/posts", {"title": f"Taslak {word}", "body": "gizli", "category_id": bcat["id"]})
    assert d["status"] == "draft" and d["published_at"] is None and d["author_id"]
    assert set(d) >= {"id", "title", "body", "category_id", "status", "author_id", "created_at"}
    url = f"{API}/blog/posts/{d['id']}"
    for h in ({}, user):
        assert_problem(server.get(url, headers=h), 404)
        assert d["id"] not in ids(server.get(f"{API}/blog/posts?category_id={bcat['id']}", headers=h))
        assert ids(server.get(f"{API}/blog/posts?q={word}", headers=h)) == []
    assert server.get(url, headers=admin_headers).status_code == 200
    assert ids(server.get(f"{API}/blog/posts?status=draft&category_id={bcat['id']}", headers=admin_headers)) == [d["id"]]
    # publish: now public and searchable; published_at set once
    p = server.patch(url, json={"status": "published"}, headers=admin_headers).json()
    assert p["status"] == "published" and p["published_at"].endswith("Z")
    assert server.get(url).json()["title"] == f"Taslak {word}"
    assert ids(server.get(f"{API}/blog/posts?q={word}")) == [d["id"]]
    assert ids(server.get(f"{API}/blog/posts?category_id={bcat['id']}&sort=published_at:desc")) == [d["id"]]
    again = server.patch(url, json={"body": "artık açık"}, headers=admin_headers).json()
    assert again["published_at"] == p["published_at"]
    # users may not write posts; authors are set by the server
    assert_problem(server.post(f"{API}/blog/posts", json={"title": "x"}, headers=user), 403)
    assert_problem(server.patch(url, json={"title": "x"}, headers=user), 403)
    assert_problem(server.delete(url, headers=user), 403)
    b = assert_problem(server.post(f"{API}/blog/posts", json={"title": "x", "author_id": "y"},
                                   headers=admin_headers), 422)
    assert "author_id" in error_fields(b)
    assert_problem(server.post(f"{API}/blog/posts", json={"title": "x", "category_id": uniq()},
                               headers=admin_headers), 422)
    assert_problem(server.post(f"{API}/blog/posts", json={"title": "x", "status": "archived"},
                               headers=admin_headers), 422)
    # soft delete
    assert server.delete(url, headers=admin_headers).status_code == 204
    assert_problem(server.get(url), 404)
    assert_problem(server.get(url, headers=admin_headers), 404)


def test_comments_hidden_until_staff_approve(server, admin_headers, post):
    author, author_user = new_user_headers(server, "yorum")
    other, _ = new_user_headers(server, "yorum-other")
    mod = moderator_headers(server, admin_headers)
    nested = f"{API}/blog/posts/{post['id']}/comments"
    r = server.post(nested, json={"body": "Çok güzel tarif!"}, headers=author)
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["status"] == "pending" and c["post_id"] == post["id"] and c["user_id"] == author_user["id"]
    curl = f"{API}/blog/comments/{c['id']}"
    # hidden from the public and other users; the author and staff see it
    for h in ({}, other):
        assert_problem(server.get(curl, headers=h), 404)
        assert ids(server.get(nested, headers=h)) == []
        assert c["id"] not in ids(server.get(f"{API}/blog/comments?post_id={post['id']}", headers=h))
    assert_problem(server.patch(curl, json={"body": "x"}, headers=other), 404)
    assert_problem(server.delete(curl, headers=other), 404)
    assert ids(server.get(nested, headers=author)) == [c["id"]]
    assert c["id"] in ids(server.get(f"{API}/blog/comments?status=pending", headers=mod))
    # only staff moderate
    b = assert_problem(server.patch(curl, json={"status": "approved"}, headers=author), 422)
    assert "status" in error_fields(b)
    assert_problem(server.post(nested, json={"body": "x", "status": "approved"}, headers=author), 422)
    ok = server.patch(curl, json={"status": "approved"}, headers=mod)
    assert ok.status_code == 200 and ok.json()["status"] == "approved"
    assert ids(server.get(nested)) == [c["id"]]
    assert server.get(curl, headers=other).json()["body"] == "Çok güzel tarif!"
    assert_problem(server.patch(curl, json={"body": "x"}, headers=other), 403)  # visible, not theirs
    assert_problem(server.delete(curl, headers=other), 403)
    # the author's edit goes back to moderation
    e = server.patch(curl, json={"body": "Çok güzel tarif, teşekkürler!"}, headers=author)
    assert e.status_code == 200 and e.json()["status"] == "pending"
    assert ids(server.get(nested)) == []
    # a rejected comment stays hidden; staff may delete any
    server.patch(curl, json={"status": "rejected"}, headers=admin_headers)
    assert ids(server.get(nested, headers=other)) == []
    assert ids(server.get(f"{API}/blog/comments?status=rejected&post_id={post['id']}", headers=mod)) == [c["id"]]
    assert server.delete(curl, headers=mod).status_code == 204
    assert_problem(server.get(curl, headers=author), 404)


def test_comment_rules(server, admin_headers, post, bcat):
    user, _ = new_user_headers(server)
    draft = mk(server, admin_headers, "/blog/posts", {"title": "Gizli", "category_id": bcat["id"]})
    assert_problem(server.post(f"{API}/blog/posts/{draft['id']}/comments", json={"body": "x"}, headers=user), 404)
    b = assert_problem(server.post(f"{API}/blog/comments", json={"post_id": draft["id"], "body": "x"}, headers=user),
                       422)
    assert "post_id" in error_fields(b)
    assert_problem(server.post(f"{API}/blog/posts/{post['id']}/comments", json={"body": "x"}), 401)
    g, _ = guest(server)
    assert_problem(server.post(f"{API}/blog/posts/{post['id']}/comments", json={"body": "x"}, headers=g), 403)
    for bad in [{"body": ""}, {}, {"body": "x" * 5001}, {"body": "x", "post_id": post["id"]}]:
        assert_problem(server.post(f"{API}/blog/posts/{post['id']}/comments", json=bad, headers=user), 422)
    c = mk(server, user, "/blog/comments", {"post_id": post["id"], "body": "düz yol"})
    assert_problem(server.patch(f"{API}/blog/comments/{c['id']}", json={"post_id": draft["id"]}, headers=user), 422)
    assert_problem(server.get(f"{API}/blog/posts/nope/comments"), 404)


def test_blog_personal_data(server, admin_headers, post, db_factory):
    h, user = new_user_headers(server, "blogger")
    c = mk(server, h, f"/blog/posts/{post['id']}/comments", {"body": "benim yorumum"})
    exp = server.get(f"{API}/me/export", headers=h).json()
    assert [x["id"] for x in exp["blog"]["comments"]] == [c["id"]]
    assert exp["blog"]["comments"][0]["body"] == "benim yorumum"
    assert server.delete(f"{API}/me", headers=h).status_code == 204
    assert db_factory.query(server.db_url, "SELECT count(*) FROM blog_comments WHERE user_id = ?",
                            (user["id"],))[0][0] == 0
    # a staff author's posts outlive the account, without the author
    writer, wuser = new_user_headers(server, "writer")
    server.patch(f"{API}/users/{wuser['id']}", json={"role": "moderator"}, headers=admin_headers)
    p = mk(server, writer, "/blog/posts", {"title": "Kalıcı", "status": "published"})
    assert p["author_id"] == wuser["id"]
    assert server.delete(f"{API}/me", headers=writer).status_code == 204
    assert server.get(f"{API}/blog/posts/{p['id']}").json()["author_id"] is None
