"""Profile photo (API.md §3: POST|GET|DELETE /api/v1/me/photo; ARCHITECTURE.md §6 uploads):
multipart upload, type from magic bytes only, size cap, stored as
<data_dir>/photos/<user_id>.<ext>, and removed with the account."""
import hashlib
from pathlib import Path

import pytest
import requests

from conftest import HTTP_TIMEOUT, assert_problem, error_fields, new_user_headers

PHOTO = "/api/v1/me/photo"
MiB = 1 << 20

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(64))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(64))
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + bytes(range(64))
GIF = b"GIF89a\x01\x00\x01\x00" + bytes(32)


def photos_dir(server):
    return Path(server.dir) / server.env.get("TEMEL_DATA_DIR", "data") / "photos"


def files_of(server, user_id):
    d = photos_dir(server)
    return sorted(p.name for p in d.iterdir() if p.name.startswith(user_id)) if d.is_dir() else []


def upload(server, headers, data, field="photo", filename="me.bin", ctype="application/octet-stream"):
    return server.post(PHOTO, headers=headers, files={field: (filename, data, ctype)})


def raw_post(server, headers, body, content_type):
    return server.post(PHOTO, headers={**headers, "Content-Type": content_type}, data=body)


@pytest.mark.parametrize("data,mime,ext", [(PNG, "image/png", "png"), (JPEG, "image/jpeg", "jpg"),
                                           (WEBP, "image/webp", "webp")])
def test_upload_then_get_returns_same_bytes(server, data, mime, ext):
    h, user = new_user_headers(server)
    r = upload(server, h, data)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body == {"photo_url": "/api/v1/me/photo", "mime_type": mime, "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest()}
    g = server.get(PHOTO, headers=h)
    assert g.status_code == 200
    assert g.headers["Content-Type"] == mime
    assert g.headers["X-Content-Type-Options"] == "nosniff"
    assert g.content == data
    assert files_of(server, user["id"]) == [f"{user['id']}.{ext}"]


def test_field_named_file_is_accepted(server):
    h, _ = new_user_headers(server)
    r = server.post(PHOTO, headers=h, data={"note": "hi"}, files={"file": ("x", JPEG, "image/jpeg")})
    assert r.status_code == 201, r.text
    assert r.json()["mime_type"] == "image/jpeg"


def test_type_comes_from_magic_bytes_not_name_or_content_type(server):
    h, user = new_user_headers(server)
    r = upload(server, h, PNG, filename="holiday.jpg", ctype="image/jpeg")
    assert r.status_code == 201, r.text
    assert r.json()["mime_type"] == "image/png"
    assert server.get(PHOTO, headers=h).headers["Content-Type"] == "image/png"
    assert files_of(server, user["id"]) == [f"{user['id']}.png"]


def test_new_type_replaces_old_file(server):
    h, user = new_user_headers(server)
    assert upload(server, h, JPEG).status_code == 201
    assert upload(server, h, WEBP).status_code == 201
    assert files_of(server, user["id"]) == [f"{user['id']}.webp"]
    g = server.get(PHOTO, headers=h)
    assert (g.headers["Content-Type"], g.content) == ("image/webp", WEBP)
    # no temp files left behind
    assert not [p for p in photos_dir(server).iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("data,ctype,filename", [
    (GIF, "image/gif", "a.gif"),
    (b"just some text, not an image\n", "text/plain", "a.txt"),
    (b"GIF89a", "image/png", "a.png"),           # lying Content-Type and name
    (b"\x89PNG", "image/png", "short.png"),      # truncated signature
    (b"", "image/jpeg", "empty.jpg"),
])
def test_unsupported_types_are_415(server, data, ctype, filename):
    h, user = new_user_headers(server)
    r = upload(server, h, data, filename=filename, ctype=ctype)
    assert_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert files_of(server, user["id"]) == []


def test_not_multipart_is_415(server, user_headers):
    r = server.post(PHOTO, headers={**user_headers, "Content-Type": "image/png"}, data=PNG)
    assert_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    r = server.post(PHOTO, headers=user_headers, json={"photo": "x"})
    assert_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_size_cap(server):
    h, user = new_user_headers(server)
    exact = PNG + bytes(2 * MiB - len(PNG))
    r = upload(server, h, exact)
    assert r.status_code == 201, r.text
    assert r.json()["size"] == 2 * MiB
    r = upload(server, h, exact + b"\x00")
    assert_problem(r, 413, "PAYLOAD_TOO_LARGE")
    # far over the route's body limit: refused before the handler
    r = upload(server, h, exact + bytes(MiB))
    assert r.status_code == 413
    # the 2 MiB photo is still the stored one
    assert server.get(PHOTO, headers=h).content == exact


@pytest.mark.parametrize("body,ctype", [
    (b"--b\r\nContent-Disposition: form-data; name=\"photo\"\r\n\r\n" + PNG, "multipart/form-data; boundary=b"),
    (b"--b\r\nContent-Disposition: form-data; name=\"photo\"\n\n" + PNG + b"\r\n--b--", "multipart/form-data; boundary=b"),
    (b"--b\r\nContent-Type: image/png\r\n\r\n" + PNG + b"\r\n--b--", "multipart/form-data; boundary=b"),
    (b"garbage", "multipart/form-data; boundary=b"),
    (b"--b--", "multipart/form-data"),
    (b"--b--", "multipart/form-data; boundary=" + "x" * 71),
    (b"".join(b"--b\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\nv\r\n" % i for i in range(17)) + b"--b--",
     "multipart/form-data; boundary=b"),
    (b"--b\r\nContent-Disposition: form-data; name=\"photo\"\r\nX-Pad: " + b"p" * 9000 + b"\r\n\r\n" + PNG + b"\r\n--b--",
     "multipart/form-data; boundary=b"),
])
def test_malformed_multipart_is_400_and_server_keeps_serving(server, user_headers, body, ctype):
    r = raw_post(server, user_headers, body, ctype)
    assert_problem(r, 400, "BAD_REQUEST")
    server.assert_healthy()
    assert server.get("/api/v1/me", headers=user_headers).status_code == 200


def test_missing_field_is_422(server, user_headers):
    r = server.post(PHOTO, headers=user_headers, files={"avatar": ("a.png", PNG, "image/png")})
    body = assert_problem(r, 422, "VALIDATION_ERROR")
    assert "photo" in error_fields(body)
    r = raw_post(server, user_headers, b"--b--", "multipart/form-data; boundary=b")
    assert_problem(r, 422, "VALIDATION_ERROR")


def test_filename_with_dot_dot_is_harmless(server):
    h, user = new_user_headers(server)
    root = Path(server.dir)

    def tree():  # mail and SMS drops appear asynchronously; they are not ours
        return {str(p.relative_to(root)) for p in root.rglob("*")
                if p.relative_to(root).parts[0] not in ("mail", "sms")}

    before = tree()
    for name in ("../../evil.png", "/tmp/evil.png", "..\\..\\evil.png", "x/../../../etc/passwd", "../../" + user["id"] + ".png"):
        r = upload(server, h, PNG, filename=name, ctype="image/png")
        assert r.status_code == 201, r.text
    new = tree() - before
    rel = str(photos_dir(server).relative_to(root))
    assert new <= {f"{rel}/{user['id']}.png", rel}, new
    assert not any(n.endswith(("evil.png", "passwd")) for n in tree())
    assert files_of(server, user["id"]) == [f"{user['id']}.png"]


def test_photo_is_always_the_callers_own(server):
    ha, _ = new_user_headers(server, "alice")
    hb, _ = new_user_headers(server, "bob")
    assert upload(server, ha, PNG).status_code == 201
    assert_problem(server.get(PHOTO, headers=hb), 404, "NOT_FOUND")
    assert upload(server, hb, JPEG).status_code == 201
    assert server.get(PHOTO, headers=ha).content == PNG
    assert server.get(PHOTO, headers=hb).content == JPEG
    # deleting bob's leaves alice's alone
    assert server.delete(PHOTO, headers=hb).status_code == 204
    assert server.get(PHOTO, headers=ha).content == PNG
    assert_problem(server.get(PHOTO, headers=hb), 404, "NOT_FOUND")


def test_auth_required(server):
    assert_problem(server.get(PHOTO), 401)
    assert_problem(server.post(PHOTO, files={"photo": ("a.png", PNG, "image/png")}), 401)
    assert_problem(server.delete(PHOTO), 401)


def test_delete_photo(server):
    h, user = new_user_headers(server)
    assert_problem(server.get(PHOTO, headers=h), 404, "NOT_FOUND")
    assert upload(server, h, JPEG).status_code == 201
    r = server.delete(PHOTO, headers=h)
    assert r.status_code == 204 and r.content == b""
    assert files_of(server, user["id"]) == []
    assert_problem(server.get(PHOTO, headers=h), 404, "NOT_FOUND")
    assert server.delete(PHOTO, headers=h).status_code == 204  # idempotent


def test_export_mentions_photo(server):
    h, _ = new_user_headers(server)
    assert server.get("/api/v1/me/export", headers=h).json()["photo"] is None
    assert upload(server, h, WEBP).status_code == 201
    assert server.get("/api/v1/me/export", headers=h).json()["photo"] == {"mime_type": "image/webp",
                                                                          "size": len(WEBP)}


def test_delete_me_removes_the_file(server):
    h, user = new_user_headers(server)
    assert upload(server, h, PNG).status_code == 201
    assert files_of(server, user["id"]) == [f"{user['id']}.png"]
    assert server.delete("/api/v1/me", headers=h).status_code == 204
    assert files_of(server, user["id"]) == []


def test_upload_over_http_is_sane_with_requests_session(server):
    """A browser-like upload with a quoted boundary and extra fields."""
    h, _ = new_user_headers(server)
    boundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\nme\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"a b.jpg\"\r\n"
            f"Content-Type: image/jpeg\r\n\r\n").encode() + JPEG + f"\r\n--{boundary}--\r\n".encode()
    r = requests.post(server.url(PHOTO), headers={**h, "Content-Type": f'multipart/form-data; boundary="{boundary}"'},
                      data=body, timeout=HTTP_TIMEOUT)
    assert r.status_code == 201, r.text
    assert r.json()["sha256"] == hashlib.sha256(JPEG).hexdigest()
