"""Product images through the files module (issue 11 item 5, issue 13 item 2): admins attach images
they uploaded (POST /files purpose product) to a product, ordered, with alt text; the product document
lists them with public URLs (original and WebP variants) that need no auth while the product is live;
attaching hands the file to the catalog; removing an image or deleting the product removes the files
and their bytes. (S3: test_files_s3.py::test_product_images_on_s3.)"""
from pathlib import Path

import pytest
import requests

from catalog_util import new_category, new_product
from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, assert_problem, error_fields, login_headers, new_user_headers, wait_for
from files_util import module_server, png

API = "/api/v1"


@pytest.fixture(scope="module")
def srv(db_factory):
    yield from module_server(db_factory)


@pytest.fixture(scope="module")
def admin(srv):
    return login_headers(srv, ADMIN_EMAIL, ADMIN_PASSWORD)


def upload(s, h, data, purpose="product"):
    r = s.post(f"{API}/files", headers=h, files={"file": ("ürün.png", data)}, data={"purpose": purpose})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def stored(s, fid):
    p = Path(s.dir) / "data" / "files" / "f" / fid / "original"
    return p.read_bytes() if p.exists() else None


def attach(s, h, pid, fid, **kw):
    return s.post(f"{API}/products/{pid}/images", headers=h, json={"file_id": fid, **kw})


def test_attach_order_public_read_and_cleanup(srv, admin):
    cat = new_category(srv, admin)["slug"]
    p = new_product(srv, admin, cat)
    pid = p["id"]
    assert p["images"] == []
    imgs = [png(40 + i, 30) for i in range(3)]
    fids = [upload(srv, admin, d) for d in imgs]
    r = attach(srv, admin, pid, fids[0], alt="Beyaz peynir, önden")
    assert r.status_code == 201, r.text
    assert attach(srv, admin, pid, fids[1]).status_code == 201
    r = attach(srv, admin, pid, fids[2], position=0)                     # to the front
    assert r.status_code == 201, r.text
    images = r.json()["images"]
    assert [i["file_id"] for i in images] == [fids[2], fids[0], fids[1]]
    assert [i["position"] for i in images] == [0, 1, 2]
    assert images[1]["alt"] == "Beyaz peynir, önden" and images[0]["alt"] == ""
    first = images[0]
    assert first["url"] == f"{API}/products/{pid}/images/{first['id']}" and first["mime_type"] == "image/png"
    assert first["variants"]["thumbnail"] == first["url"] + "?variant=thumbnail"
    # public: the product and its images without auth
    pub = requests.get(srv.url(f"{API}/products/{pid}"), timeout=10).json()
    assert pub["images"] == images
    g = requests.get(srv.url(first["url"]), timeout=10)
    assert g.status_code == 200 and g.content == imgs[2] and g.headers["Content-Type"] == "image/png"
    assert g.headers["X-Content-Type-Options"] == "nosniff"
    part = requests.get(srv.url(first["url"]), headers={"Range": "bytes=0-7"}, timeout=10)
    assert part.status_code == 206 and part.content == imgs[2][:8]
    t = wait_for(lambda: (lambda x: x if x.status_code == 200 else None)(
        requests.get(srv.url(first["variants"]["thumbnail"]), timeout=10)), "the thumbnail")
    assert t.headers["Content-Type"] == "image/webp" and t.content[8:12] == b"WEBP"
    assert_problem(requests.get(srv.url(first["url"] + "?variant=huge"), timeout=10), 422)
    # the files now belong to the catalog: out of the uploader's list, not deletable there, not attachable twice
    assert srv.get(f"{API}/files?purpose=product", headers=admin).json()["data"] == []
    assert_problem(srv.delete(f"{API}/files/{fids[0]}", headers=admin), 404)
    assert "file_id" in error_fields(assert_problem(attach(srv, admin, pid, fids[0]), 422))
    # remove one: the others close the gap, its URL and bytes go
    removed = images[1]
    assert srv.delete(f"{API}/products/{pid}/images/{removed['id']}", headers=admin).status_code == 204
    left = srv.get(f"{API}/products/{pid}").json()["images"]
    assert [(i["file_id"], i["position"]) for i in left] == [(fids[2], 0), (fids[1], 1)]
    assert_problem(requests.get(srv.url(removed["url"]), timeout=10), 404)
    wait_for(lambda: stored(srv, fids[0]) is None, "the removed image's bytes purged")
    assert_problem(srv.delete(f"{API}/products/{pid}/images/{removed['id']}", headers=admin), 404)
    # delete the product: every image file and its bytes go
    assert stored(srv, fids[2]) == imgs[2]
    assert srv.delete(f"{API}/products/{pid}", headers=admin).status_code == 204
    for i in left:
        assert_problem(requests.get(srv.url(i["url"]), timeout=10), 404)
    wait_for(lambda: stored(srv, fids[2]) is None and stored(srv, fids[1]) is None, "the product's images purged")


def test_who_may_attach_what(srv, admin):
    cat = new_category(srv, admin)["slug"]
    pid = new_product(srv, admin, cat)["id"]
    h, _ = new_user_headers(srv, "shopper")
    users_file = upload(srv, h, png(20, 20))
    assert_problem(attach(srv, h, pid, users_file), 403)                            # not an admin
    assert "file_id" in error_fields(assert_problem(attach(srv, admin, pid, users_file), 422))  # not the admin's
    not_product = upload(srv, admin, png(20, 20), purpose="attachment")
    assert "file_id" in error_fields(assert_problem(attach(srv, admin, pid, not_product), 422))
    assert_problem(attach(srv, admin, "0190a0b0-0000-7000-8000-000000000000", upload(srv, admin, png(9, 9))), 404)
    assert_problem(attach(srv, admin, pid, "nope"), 422)
    assert_problem(srv.post(f"{API}/products/{pid}/images", headers=admin, json={"file_id": not_product, "x": 1}), 422)
    fid = upload(srv, admin, png(9, 9))
    assert "position" in error_fields(assert_problem(attach(srv, admin, pid, fid, position=3), 422))
    # a failed attach changed nothing: the file is still the admin's
    assert srv.get(f"{API}/files/{fid}", headers=admin).status_code == 200
    assert srv.get(f"{API}/products/{pid}").json()["images"] == []
    assert_problem(requests.get(srv.url(f"{API}/products/{pid}/images/{fid}"), timeout=10), 404)


def test_at_most_ten_images_per_product(srv, admin):
    cat = new_category(srv, admin)["slug"]
    pid = new_product(srv, admin, cat)["id"]
    for i in range(10):
        r = attach(srv, admin, pid, upload(srv, admin, png(8 + i, 8)))
        assert r.status_code == 201, r.text
    extra = upload(srv, admin, png(30, 8))
    assert_problem(attach(srv, admin, pid, extra), 409)
    assert len(srv.get(f"{API}/products/{pid}").json()["images"]) == 10
    assert srv.get(f"{API}/files/{extra}", headers=admin).status_code == 200    # still the admin's
