"""Files (API.md §7) on local storage: upload → metadata → download (Range,
types, nosniff, Content-Disposition), presigned links, quota, per-purpose
limits, hostile files (wrong magic, zip bomb, polyglot, 0 bytes, ../ names),
image variants (WebP, metadata stripped, decompression bombs refused), delete."""
import hashlib
import time
from pathlib import Path

import pytest

from conftest import assert_problem, error_fields, new_user_headers, raw_exchange, wait_for
from files_util import exif_with_gps, module_server, office_zip, png, png_bomb, zip_bomb

FILES = "/api/v1/files"
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture(scope="module")
def srv(db_factory):
    yield from module_server(db_factory, TEMEL_FILES_QUOTA_MB="2", TEMEL_IMAGE_MAX_PIXELS="4000000")


def up(s, h, data, name="a.bin", purpose=None, ctype="application/octet-stream"):
    extra = {"data": {"purpose": purpose}} if purpose else {}
    return s.post(FILES, headers=h, files={"file": (name, data, ctype)}, **extra)


def wait_variants(s, h, fid, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        b = s.get(f"{FILES}/{fid}", headers=h).json()
        if b["variants_state"] in ("ready", "failed"):
            return b
        time.sleep(0.2)
    raise AssertionError("variants not done")


def test_upload_text_roundtrip_and_headers(srv):
    h, _ = new_user_headers(srv)
    data = "merhaba dünya — zażółć gęślą jaźń\n".encode() * 50
    r = up(srv, h, data, name="notlar.txt", ctype="image/png")  # the client's type is ignored
    assert r.status_code == 201, r.text
    b = r.json()
    assert set(b) >= {"id", "filename", "size", "mime_type", "sha256", "url", "variants"}
    assert b["size"] == len(data) and b["sha256"] == hashlib.sha256(data).hexdigest()
    assert b["mime_type"] == "text/plain; charset=utf-8" and b["filename"] == "notlar.txt"
    assert b["variants"] == {} and b["url"] == f"{FILES}/{b['id']}/download"
    assert srv.get(f"{FILES}/{b['id']}", headers=h).json() == b
    d = srv.get(b["url"], headers=h)
    assert d.status_code == 200 and d.content == data
    assert d.headers["Content-Type"].startswith("text/plain")
    assert d.headers["X-Content-Type-Options"] == "nosniff"
    assert d.headers["Content-Disposition"].startswith('attachment; filename="notlar.txt"')
    # Range
    p = srv.get(b["url"], headers={**h, "Range": "bytes=10-19"})
    assert p.status_code == 206 and p.content == data[10:20]
    assert p.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    bad = srv.get(b["url"], headers={**h, "Range": f"bytes={len(data) + 5}-"})
    assert bad.status_code == 416


@pytest.mark.parametrize("data,mime", [
    (PDF, "application/pdf"),
    (office_zip("docx"), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    (office_zip("xlsx"), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    (b"name,city\nAyse,Istanbul\nJan,Krakow\n", "text/csv; charset=utf-8"),
])
def test_types_from_magic_bytes(srv, data, mime):
    h, _ = new_user_headers(srv)
    r = up(srv, h, data, name="x.png", ctype="image/png")
    assert r.status_code == 201, r.text
    assert r.json()["mime_type"] == mime
    assert srv.get(r.json()["url"], headers=h).content == data


@pytest.mark.parametrize("data,why", [
    (b"MZ\x90\x00" + bytes(200), "unsupported"),             # an executable named .jpg
    (b"\xff\xd8\xff\xe0" + b"not really a jpeg" * 10, "image"),  # JPEG magic, no image
    (b"PK\x03\x04" + bytes(100), "zip"),                     # broken zip
])
def test_wrong_magic_refused(srv, data, why):
    h, _ = new_user_headers(srv)
    r = up(srv, h, data, name="photo.jpg", ctype="image/jpeg")
    assert r.status_code in (415, 422), r.text
    assert why in r.json()["detail"].lower()
    assert srv.get(FILES, headers=h).json()["data"] == []


def test_zip_bomb_refused(srv):
    h, _ = new_user_headers(srv)
    r = up(srv, h, zip_bomb(), name="cv.docx")
    assert_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "zip bomb" in r.json()["detail"]


def test_plain_zip_refused(srv):
    import io, zipfile
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        z.writestr("a.txt", "x")
    r = up(srv, new_user_headers(srv)[0], b.getvalue(), name="a.zip")
    assert_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")


@pytest.mark.parametrize("tail", [
    b"<script>alert(1)</script>",       # image + HTML
    b"%PDF-1.4 polyglot",               # image + PDF
])
def test_polyglot_refused(srv, tail):
    h, _ = new_user_headers(srv)
    r = up(srv, h, png(8, 8) + tail, name="p.png")
    assert_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")
    assert "polyglot" in r.json()["detail"]
    # a JPEG/PNG with a zip appended (GIFAR style)
    r = up(srv, h, png(8, 8) + office_zip("docx"), name="p.png")
    assert_problem(r, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_empty_and_missing_file(srv):
    h, _ = new_user_headers(srv)
    r = up(srv, h, b"", name="empty.txt")
    assert_problem(r, 422)
    assert "file" in error_fields(r.json())
    r = srv.post(FILES, headers=h, files={"other": ("a", b"x")})
    assert_problem(r, 422)
    r = srv.post(FILES, headers={**h, "Content-Type": "application/json"}, data=b"{}")
    assert_problem(r, 415)


@pytest.mark.parametrize("name,want", [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\win.ini", "win.ini"),
    ("...", "file"),
    (".htaccess", "htaccess"),
    ("a<b>:c|d?.txt", "a_b__c_d_.txt"),
    ("Özgeçmiş ğüşıİ.txt", "Özgeçmiş ğüşıİ.txt"),
])
def test_names_sanitised(srv, name, want):
    h, _ = new_user_headers(srv)
    r = up(srv, h, b"hello\n", name=name)
    assert r.status_code == 201, r.text
    assert r.json()["filename"] == want
    # nothing was written outside the storage folder
    assert not (Path(srv.dir) / "etc").exists()


def test_purpose_limits(srv):
    h, _ = new_user_headers(srv)
    r = up(srv, h, PDF, name="a.pdf", purpose="avatar")
    assert_problem(r, 415)
    r = up(srv, h, b"x" * 10, purpose="nope")
    assert_problem(r, 422)
    assert "purpose" in error_fields(r.json())
    big = png(8, 8) + b"\x00" * 0  # small image ok for avatar
    assert up(srv, h, big, name="me.png", purpose="avatar").status_code == 201


def test_quota(srv):
    h, _ = new_user_headers(srv)  # quota is 2 MiB on this server
    one = b"a,b\n" + b"1,2\n" * (300 << 10 >> 2)  # ~300 KiB CSV
    ids = []
    for i in range(6):
        r = up(srv, h, one, name=f"{i}.csv")
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    r = up(srv, h, one, name="7.csv")
    assert_problem(r, 413, "QUOTA_EXCEEDED")
    assert srv.delete(f"{FILES}/{ids[0]}", headers=h).status_code == 204
    assert up(srv, h, one, name="7.csv").status_code == 201


def test_list_get_delete_ownership(srv):
    h1, _ = new_user_headers(srv)
    h2, _ = new_user_headers(srv)
    a = up(srv, h1, b"one\n", name="1.txt").json()
    up(srv, h1, PDF, name="2.pdf", purpose="document")
    lst = srv.get(FILES, headers=h1).json()
    assert lst["meta"]["total"] == 2 and len(lst["data"]) == 2
    assert srv.get(FILES + "?purpose=document", headers=h1).json()["meta"]["total"] == 1
    assert srv.get(FILES, headers=h2).json()["data"] == []
    for path in (f"{FILES}/{a['id']}", a["url"], f"{FILES}/{a['id']}/presigned"):
        assert_problem(srv.get(path, headers=h2), 404)
    assert_problem(srv.delete(f"{FILES}/{a['id']}", headers=h2), 404)
    assert_problem(srv.get(a["url"]), 401)
    stored = Path(srv.dir) / "data" / "files" / "f" / a["id"] / "original"
    assert stored.read_bytes() == b"one\n"
    assert srv.delete(f"{FILES}/{a['id']}", headers=h1).status_code == 204
    assert_problem(srv.get(a["url"], headers=h1), 404)
    wait_for(lambda: not stored.exists(), "the bytes purged (files.purge)")
    assert_problem(srv.get(f"{FILES}/not-a-uuid", headers=h1), 404)


def test_presigned_link(srv):
    h, _ = new_user_headers(srv)
    data = b"%PDF-1.4\n" + b"x" * 1000
    f = up(srv, h, data, name="rapor.pdf").json()
    p = srv.get(f"{FILES}/{f['id']}/presigned?expires_in=300", headers=h)
    assert p.status_code == 200, p.text
    link = p.json()
    assert set(link) == {"url", "expires_at"}
    d = srv.get(link["url"])  # no Authorization
    assert d.status_code == 200 and d.content == data
    assert d.headers["Content-Type"] == "application/pdf"
    # tampering with the expiry or the signature fails
    import re
    forged = re.sub(r"expires=(\d+)", lambda m: f"expires={int(m.group(1)) + 1000}", link["url"])
    assert_problem(srv.get(forged), 403)
    assert_problem(srv.get(link["url"][:-3] + "abc"), 403)
    # expired
    short = srv.get(f"{FILES}/{f['id']}/presigned?expires_in=1", headers=h).json()
    time.sleep(2.2)
    assert_problem(srv.get(short["url"]), 403, "LINK_EXPIRED")
    assert_problem(srv.get(f"{FILES}/{f['id']}/presigned?expires_in=0", headers=h), 422)
    assert_problem(srv.get(f"{FILES}/{f['id']}/presigned?expires_in=999999999", headers=h), 422)


def test_image_variants_webp_stripped(srv):
    h, _ = new_user_headers(srv)
    img = png(1000, 600, exif=exif_with_gps())
    r = up(srv, h, img, name="photo.png", purpose="product")
    assert r.status_code == 201, r.text
    f = r.json()
    assert f["mime_type"] == "image/png" and f["variants_state"] == "pending"
    # an image is shown inline
    d = srv.get(f["url"], headers=h)
    assert d.content == img and d.headers["Content-Disposition"].startswith("inline")
    f = wait_variants(srv, h, f["id"])
    assert f["variants_state"] == "ready", f
    assert set(f["variants"]) == {"thumbnail", "medium", "large"}
    for name, px in (("thumbnail", 200), ("medium", 800), ("large", 1600)):
        v = srv.get(f"{f['url']}?variant={name}", headers=h)
        assert v.status_code == 200, v.text
        assert v.headers["Content-Type"] == "image/webp"
        assert v.content[:4] == b"RIFF" and v.content[8:12] == b"WEBP"
        assert b"EXIF" not in v.content and b"GPSMARKER" not in v.content
        w, hh = webp_size(v.content)
        assert max(w, hh) == min(px, 1000), (name, w, hh)  # never enlarged
    # presigned link for a variant
    link = srv.get(f"{FILES}/{f['id']}/presigned?variant=thumbnail", headers=h).json()["url"]
    assert srv.get(link).headers["Content-Type"] == "image/webp"
    assert_problem(srv.get(f"{f['url']}?variant=huge", headers=h), 422)


def webp_size(b):
    """Width and height of a WebP (VP8, VP8L or VP8X)."""
    kind = b[12:16]
    if kind == b"VP8X":
        return 1 + int.from_bytes(b[24:27], "little"), 1 + int.from_bytes(b[27:30], "little")
    if kind == b"VP8L":
        bits = int.from_bytes(b[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return int.from_bytes(b[26:28], "little") & 0x3FFF, int.from_bytes(b[28:30], "little") & 0x3FFF


def test_decompression_bomb_refused(srv):
    h, _ = new_user_headers(srv)
    r = up(srv, h, png_bomb(3000, 3000), name="bomb.png")  # 9 MP > the 4 MP limit of this server
    assert_problem(r, 422, "INVALID_IMAGE")
    assert "too many pixels" in r.json()["detail"]
    assert srv.get(FILES, headers=h).json()["data"] == []


def test_too_large_for_route(srv):
    """A declared body above the 16 MiB cap is refused before it is read."""
    h, _ = new_user_headers(srv)
    head = (f"POST {FILES} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {h['Authorization']}\r\n"
            f"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {17 << 20}\r\n\r\n").encode()
    resp, _ = raw_exchange(srv, head)
    assert resp is not None and resp.status == 413


def put_parts(s, h, data, part, name="big.csv"):
    st = s.post(f"{FILES}/uploads", headers=h, json={"filename": name, "size": len(data)})
    assert st.status_code == 201, st.text
    url = st.json()["url"]
    r = None
    for a in range(0, len(data), part):
        b = min(a + part, len(data)) - 1
        r = s.put(url, headers={**h, "Content-Range": f"bytes {a}-{b}/{len(data)}"}, data=data[a:b + 1])
        assert r.status_code == (201 if b == len(data) - 1 else 202), r.text
    return st.json(), r


def test_upload_in_parts(srv):
    h, _ = new_user_headers(srv)
    data = b"id,name\n" + b"".join(f"{i},ad-{i}-ğüş\n".encode() for i in range(40000))
    up_, r = put_parts(srv, h, data, 256 << 10)
    f = r.json()
    assert f["size"] == len(data) and f["sha256"] == hashlib.sha256(data).hexdigest()
    assert f["mime_type"] == "text/csv; charset=utf-8" and f["filename"] == "big.csv"
    assert srv.get(f["url"], headers=h).content == data
    # the upload is gone: another part is 404
    assert_problem(srv.put(up_["url"], headers={**h, "Content-Range": "bytes 0-0/1"}, data=b"x"), 404)


def test_upload_parts_refusals(srv):
    h, _ = new_user_headers(srv)
    h2, _ = new_user_headers(srv)
    st = srv.post(f"{FILES}/uploads", headers=h, json={"filename": "x.txt", "size": 10}).json()
    u = st["url"]
    assert_problem(srv.put(u, headers=h, data=b"abc"), 400)  # no Content-Range
    assert_problem(srv.put(u, headers={**h, "Content-Range": "bytes 0-2/10"}, data=b"ab"), 400)
    assert_problem(srv.put(u, headers={**h, "Content-Range": "bytes 0-2/11"}, data=b"abc"), 400)
    assert_problem(srv.put(u, headers={**h2, "Content-Range": "bytes 0-2/10"}, data=b"abc"), 404)
    assert srv.put(u, headers={**h, "Content-Range": "bytes 0-2/10"}, data=b"abc").status_code == 202
    assert_problem(srv.put(u, headers={**h, "Content-Range": "bytes 5-6/10"}, data=b"ab"), 409)  # out of order
    r = srv.put(u, headers={**h, "Content-Range": "bytes 3-9/10"}, data=b"\x00\x01\x02\x03\x04\x05\x06")
    assert_problem(r, 415)  # binary junk is not text
    assert srv.get(FILES, headers=h).json()["data"] == []
    assert_problem(srv.post(f"{FILES}/uploads", headers=h, json={"filename": "x", "size": 0}), 422)
    big = srv.post(f"{FILES}/uploads", headers=h, json={"filename": "x", "size": 3 << 20})  # quota: 2 MiB
    assert_problem(big, 413, "QUOTA_EXCEEDED")


def test_account_export_and_deletion(srv):
    h, user = new_user_headers(srv)
    f = up(srv, h, b"kisisel veri\n", name="veri.txt").json()
    exp = srv.get("/api/v1/me/export", headers=h)
    assert exp.status_code == 200, exp.text
    assert [x["id"] for x in exp.json()["files"]] == [f["id"]]
    stored = Path(srv.dir) / "data" / "files" / "f" / f["id"] / "original"
    assert stored.is_file()
    assert srv.delete("/api/v1/me", headers=h).status_code == 204
    deadline = time.monotonic() + 30
    while stored.exists() and time.monotonic() < deadline:  # the purge job removes the bytes
        time.sleep(0.1)
    assert not stored.exists()
