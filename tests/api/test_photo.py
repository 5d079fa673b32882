"""Profile photo (API.md §3: POST|GET|DELETE /api/v1/me/photo; ARCHITECTURE.md §6 uploads) on the files
module (issue 13 item 2): multipart upload, type from magic bytes only, size cap; the photo is a file
(purpose avatar) with WebP variants, stored in the files storage; replacing, deleting it or the account
removes the file and its bytes; photos stored the old way (<data_dir>/photos/<user_id>.<ext>) are moved
into files at start."""
import base64
import hashlib
import time
from pathlib import Path

import pytest
import requests

from conftest import HTTP_TIMEOUT, assert_problem, error_fields, new_user_headers, wait_for
from files_util import module_server, png

PHOTO = "/api/v1/me/photo"
FILES = "/api/v1/files"
MiB = 1 << 20

PNG = png(16, 12)
JPEG = base64.b64decode(
    "/9j/4QC8RXhpZgAASUkqAAgAAAAGABIBAwABAAAAAQAAABoBBQABAAAAVgAAABsBBQABAAAAXgAAACgBAwABAAAAAgAAABMCAwABAAAAAQAAAGmH"
    "BAABAAAAZgAAAAAAAAA4YwAA6AMAADhjAADoAwAABgAAkAcABAAAADAyMTABkQcABAAAAAECAwAAoAcABAAAADAxMDABoAMAAQAAAP//AAACoAQA"
    "AQAAABAAAAADoAQAAQAAAAwAAAAAAAAA/9sAQwAIBgYHBgUIBwcHCQkICgwUDQwLCwwZEhMPFB0aHx4dGhwcICQuJyAiLCMcHCg3KSwwMTQ0NB8n"
    "OT04MjwuMzQy/9sAQwEJCQkMCwwYDQ0YMiEcITIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIy/8AAEQgA"
    "DAAQAwEiAAIRAQMRAf/EAB8AAAEFAQEBAQEBAAAAAAAAAAABAgMEBQYHCAkKC//EALUQAAIBAwMCBAMFBQQEAAABfQECAwAEEQUSITFBBhNRYQci"
    "cRQygZGhCCNCscEVUtHwJDNicoIJChYXGBkaJSYnKCkqNDU2Nzg5OkNERUZHSElKU1RVVldYWVpjZGVmZ2hpanN0dXZ3eHl6g4SFhoeIiYqSk5SV"
    "lpeYmZqio6Slpqeoqaqys7S1tre4ubrCw8TFxsfIycrS09TV1tfY2drh4uPk5ebn6Onq8fLz9PX29/j5+v/EAB8BAAMBAQEBAQEBAQEAAAAAAAAB"
    "AgMEBQYHCAkKC//EALURAAIBAgQEAwQHBQQEAAECdwABAgMRBAUhMQYSQVEHYXETIjKBCBRCkaGxwQkjM1LwFWJy0QoWJDThJfEXGBkaJicoKSo1"
    "Njc4OTpDREVGR0hJSlNUVVZXWFlaY2RlZmdoaWpzdHV2d3h5eoKDhIWGh4iJipKTlJWWl5iZmqKjpKWmp6ipqrKztLW2t7i5usLDxMXGx8jJytLT"
    "1NXW19jZ2uLj5OXm5+jp6vLz9PX29/j5+v/aAAwDAQACEQMRAD8A9/ooooA//9k=")
WEBP = base64.b64decode(
    "UklGRvgAAABXRUJQVlA4WAoAAAAIAAAADwAACwAAVlA4IBgAAAAwAQCdASoQAAwAAgA0JaQAA3AA/vuUAABFWElGugAAAEV4aWYAAElJKgAIAAAABgAS"
    "AQMAAQAAAAEAAAAaAQUAAQAAAFYAAAAbAQUAAQAAAF4AAAAoAQMAAQAAAAIAAAATAgMAAQAAAAEAAABphwQAAQAAAGYAAAAAAAAAOGMAAOgDAAA4YwAA"
    "6AMAAAYAAJAHAAQAAAAwMjEwAZEHAAQAAAABAgMAAKAHAAQAAAAwMTAwAaADAAEAAAD//wAAAqAEAAEAAAAQAAAAA6AEAAEAAAAMAAAAAAAAAA==")
GIF = b"GIF89a\x01\x00\x01\x00" + bytes(32)


@pytest.fixture(scope="module")
def server(db_factory):
    yield from module_server(db_factory)


def data_dir(server):
    return Path(server.dir) / server.env.get("TEMEL_DATA_DIR", "data")


def photos_dir(server):
    return data_dir(server) / "photos"


def stored(server, fid):
    """The bytes of file fid in local storage (None when gone)."""
    p = data_dir(server) / "files" / "f" / fid / "original"
    return p.read_bytes() if p.exists() else None


def avatars(server, h):
    r = server.get(FILES, headers=h, params={"purpose": "avatar"})
    assert r.status_code == 200, r.text
    return r.json()["data"]


def upload(server, headers, data, field="photo", filename="me.bin", ctype="application/octet-stream"):
    return server.post(PHOTO, headers=headers, files={field: (filename, data, ctype)})


def raw_post(server, headers, body, content_type):
    return server.post(PHOTO, headers={**headers, "Content-Type": content_type}, data=body)


@pytest.mark.parametrize("data,mime", [(PNG, "image/png"), (JPEG, "image/jpeg"), (WEBP, "image/webp")])
def test_upload_then_get_returns_same_bytes(server, data, mime):
    h, user = new_user_headers(server)
    r = upload(server, h, data)
    assert r.status_code == 201, r.text
    body = r.json()
    fid = body.pop("file_id")
    assert body == {"photo_url": "/api/v1/me/photo", "mime_type": mime, "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest()}
    g = server.get(PHOTO, headers=h)
    assert g.status_code == 200
    assert g.headers["Content-Type"] == mime
    assert g.headers["X-Content-Type-Options"] == "nosniff"
    assert g.content == data
    # the photo is a file of the user (purpose avatar) in the files storage, not under photos/
    [f] = avatars(server, h)
    assert (f["id"], f["mime_type"], f["size"], f["purpose"]) == (fid, mime, len(data), "avatar")
    assert stored(server, fid) == data
    assert not photos_dir(server).exists()


def test_variants_of_the_photo(server):
    h, _ = new_user_headers(server)
    fid = upload(server, h, png(400, 300)).json()["file_id"]
    wait_for(lambda: server.get(f"{FILES}/{fid}", headers=h).json()["variants_state"] == "ready", "variants")
    t = server.get(PHOTO, headers=h, params={"variant": "thumbnail"})
    assert t.status_code == 200 and t.headers["Content-Type"] == "image/webp" and t.content[8:12] == b"WEBP"
    assert_problem(server.get(PHOTO, headers=h, params={"variant": "huge"}), 422)
    assert_problem(server.get(PHOTO, headers=h, params={"size": "1"}), 422)


def test_undecodable_image_is_422(server):
    """New with the files module: the whole image is decoded, so a PNG signature over junk is refused."""
    h, _ = new_user_headers(server)
    r = upload(server, h, b"\x89PNG\r\n\x1a\n" + bytes(range(64)))
    assert_problem(r, 422, "INVALID_IMAGE")
    assert avatars(server, h) == []
    assert_problem(server.get(PHOTO, headers=h), 404, "NOT_FOUND")


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
    assert [f["mime_type"] for f in avatars(server, h)] == ["image/png"]


def test_new_photo_replaces_old_file(server):
    h, user = new_user_headers(server)
    first = upload(server, h, JPEG).json()["file_id"]
    second = upload(server, h, WEBP).json()["file_id"]
    assert [f["id"] for f in avatars(server, h)] == [second]
    g = server.get(PHOTO, headers=h)
    assert (g.headers["Content-Type"], g.content) == ("image/webp", WEBP)
    assert_problem(server.get(f"{FILES}/{first}", headers=h), 404)
    wait_for(lambda: stored(server, first) is None, "the old photo's bytes purged")
    assert stored(server, second) == WEBP


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
    assert avatars(server, h) == []


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
    files_root = data_dir(server) / "files"

    def tree():  # mail and SMS drops appear asynchronously; they are not ours
        return {str(p.relative_to(root)) for p in root.rglob("*")
                if p.relative_to(root).parts[0] not in ("mail", "sms") and p.name != "server.log"
                and files_root not in p.parents and p != files_root}

    before = tree()
    for name in ("../../evil.png", "/tmp/evil.png", "..\\..\\evil.png", "x/../../../etc/passwd", "../../" + user["id"] + ".png"):
        r = upload(server, h, PNG, filename=name, ctype="image/png")
        assert r.status_code == 201, r.text
        assert "/" not in server.get(f"{FILES}/{r.json()['file_id']}", headers=h).json()["filename"]
    assert tree() - before == set()  # nothing outside the files storage
    assert not any(n.endswith(("evil.png", "passwd")) for n in tree())
    assert len(avatars(server, h)) == 1


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
    fid = upload(server, h, JPEG).json()["file_id"]
    r = server.delete(PHOTO, headers=h)
    assert r.status_code == 204 and r.content == b""
    assert avatars(server, h) == []
    wait_for(lambda: stored(server, fid) is None, "the photo's bytes purged")
    assert_problem(server.get(PHOTO, headers=h), 404, "NOT_FOUND")
    assert server.delete(PHOTO, headers=h).status_code == 204  # idempotent


def test_deleting_the_file_removes_the_photo(server):
    h, _ = new_user_headers(server)
    fid = upload(server, h, PNG).json()["file_id"]
    assert server.delete(f"{FILES}/{fid}", headers=h).status_code == 204
    assert_problem(server.get(PHOTO, headers=h), 404, "NOT_FOUND")
    assert server.get("/api/v1/me/export", headers=h).json()["photo"] is None


def test_another_user_cannot_reach_the_photo_file(server):
    ha, _ = new_user_headers(server, "alice")
    hb, _ = new_user_headers(server, "bob")
    fid = upload(server, ha, PNG).json()["file_id"]
    for path in (f"{FILES}/{fid}", f"{FILES}/{fid}/download", f"{FILES}/{fid}/presigned"):
        assert_problem(server.get(path, headers=hb), 404)
    assert_problem(server.delete(f"{FILES}/{fid}", headers=hb), 404)
    assert server.get(PHOTO, headers=ha).content == PNG


def test_export_mentions_photo(server):
    h, _ = new_user_headers(server)
    assert server.get("/api/v1/me/export", headers=h).json()["photo"] is None
    assert upload(server, h, WEBP).status_code == 201
    assert server.get("/api/v1/me/export", headers=h).json()["photo"] == {"mime_type": "image/webp",
                                                                          "size": len(WEBP)}


def test_delete_me_removes_the_file(server):
    h, user = new_user_headers(server)
    fid = upload(server, h, PNG).json()["file_id"]
    assert stored(server, fid) == PNG
    assert server.delete("/api/v1/me", headers=h).status_code == 204
    wait_for(lambda: stored(server, fid) is None, "the photo's bytes purged with the account")


def test_old_photos_on_disk_are_moved_into_files(make_server):
    """A photo stored by the old code (<data_dir>/photos/<user_id>.<ext>) is moved into files at start:
    GET /me/photo serves it, it is a file of the user, the old file is gone; a photo of an account that
    no longer exists is removed."""
    s = make_server(TEMEL_JOB_POLL_MS="50")
    h, user = new_user_headers(s)
    s.stop()
    d = photos_dir(s)
    d.mkdir(parents=True)
    (d / f"{user['id']}.jpg").write_bytes(JPEG)
    (d / "0190a0b0-0000-7000-8000-000000000000.png").write_bytes(PNG)  # nobody's
    s.start()
    g = s.get(PHOTO, headers=h)
    assert g.status_code == 200 and g.content == JPEG and g.headers["Content-Type"] == "image/jpeg"
    [f] = avatars(s, h)
    assert f["mime_type"] == "image/jpeg" and f["size"] == len(JPEG)
    assert not d.exists()
    wait_for(lambda: s.get(f"{FILES}/{f['id']}", headers=h).json()["variants_state"] == "ready", "variants")


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


def test_guest_photo_moves_with_the_guest_data(server):
    """A guest's photo becomes the account's when it has none; otherwise the account's stays and the
    guest's file is removed (no stray avatar file)."""
    def guest():
        r = server.post("/api/v1/auth/guest")
        assert r.status_code == 201, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}, r.json()["access_token"]

    g, gtok = guest()
    assert upload(server, g, WEBP).status_code == 201
    h, _ = new_user_headers(server, "fromguest")
    assert server.post("/api/v1/auth/migrate-guest-data", json={"guest_token": gtok}, headers=h).status_code == 200
    assert server.get(PHOTO, headers=h).content == WEBP
    assert [f["mime_type"] for f in avatars(server, h)] == ["image/webp"]
    g2, gtok2 = guest()
    gfile = upload(server, g2, JPEG).json()["file_id"]
    assert server.post("/api/v1/auth/migrate-guest-data", json={"guest_token": gtok2}, headers=h).status_code == 200
    assert server.get(PHOTO, headers=h).content == WEBP
    assert [f["mime_type"] for f in avatars(server, h)] == ["image/webp"]
    wait_for(lambda: stored(server, gfile) is None, "the guest's photo bytes purged")
