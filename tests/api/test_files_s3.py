"""Files on a real S3 implementation (s3rver 3.7.1 from tools/node): upload,
a redirect to a presigned GET for downloads (Range served by S3), variants
stored in the bucket, multipart above 8 MiB, delete.

Signatures: s3rver 3.7.1 parses SigV4 requests (Authorization header or presigned
query, x-amz-content-sha256 required, access key id looked up) but does NOT
compute the signature ("Signature version 4 calculation is unimplemented" in
lib/middleware/authentication.js). So every request goes through
tools/node/sigv4-proxy.js first (files_util.S3rver), which recomputes the
signature with AWS's @smithy/signature-v4 and the real secret: a wrong secret,
a wrong canonical request or an altered presigned URL is refused with 403
SignatureDoesNotMatch, as S3 would (test_wrong_credentials_are_refused_by_s3 and
test_presigned_url_checked_by_signature prove it bites)."""
import hashlib
import json
import re
import time

import pytest
import requests

from conftest import assert_problem, new_user_headers, wait_for
from files_util import BUCKET, S3_KEY, S3_SECRET, S3rver, module_server, png

FILES = "/api/v1/files"


@pytest.fixture(scope="module")
def s3():
    s = S3rver()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def srv(db_factory, s3):
    yield from module_server(db_factory, TEMEL_FILES_QUOTA_MB="200", **s3.env())


def test_upload_download_delete_on_s3(srv, s3):
    h, _ = new_user_headers(srv)
    data = ("Şule Łukasz İpek Żaneta\n" * 2000).encode()
    r = srv.post(FILES, headers=h, files={"file": ("names.txt", data)})
    assert r.status_code == 201, r.text
    f = r.json()
    assert f["sha256"] == hashlib.sha256(data).hexdigest()
    assert f"f/{f['id']}/original" in s3.objects()
    d = srv.get(f["url"], headers=h, allow_redirects=False)
    assert d.status_code == 302
    loc = d.headers["Location"]
    assert loc.startswith(s3.endpoint + f"/{BUCKET}/f/{f['id']}/original?") and "X-Amz-Signature=" in loc
    got = requests.get(loc, timeout=10)
    assert got.status_code == 200 and got.content == data
    assert got.headers["Content-Type"].startswith("text/plain")
    assert got.headers["Content-Disposition"].startswith("attachment")
    part = requests.get(loc, headers={"Range": "bytes=0-4"}, timeout=10)
    assert part.status_code == 206 and part.content == data[:5]
    # our own presigned link → the S3 presigned GET
    link = srv.get(f"{FILES}/{f['id']}/presigned", headers=h).json()["url"]
    assert requests.get(srv.url(link), timeout=10).content == data
    assert srv.delete(f"{FILES}/{f['id']}", headers=h).status_code == 204
    wait_for(lambda: f"f/{f['id']}/original" not in s3.objects(), "the object purged")


def test_variants_in_bucket(srv, s3):
    h, _ = new_user_headers(srv)
    f = srv.post(FILES, headers=h, files={"file": ("p.png", png(900, 400))}).json()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        f = srv.get(f"{FILES}/{f['id']}", headers=h).json()
        if f["variants_state"] != "pending":
            break
        time.sleep(0.2)
    assert f["variants_state"] == "ready", f
    objs = s3.objects()
    for v in ("thumbnail", "medium", "large"):
        assert f"f/{f['id']}/{v}.webp" in objs
    t = srv.get(f"{f['url']}?variant=thumbnail", headers=h, allow_redirects=True)
    assert t.status_code == 200 and t.content[8:12] == b"WEBP"


def test_big_file_goes_multipart(srv, s3):
    """Above 8 MiB the server uploads in parts (CreateMultipartUpload ... Complete)."""
    h, _ = new_user_headers(srv)
    data = (b"0123456789abcdef" * 65536) * 10  # 10 MiB of text
    r = srv.post(FILES, headers=h, files={"file": ("big.txt", data)})
    assert r.status_code == 201, r.text
    loc = srv.get(r.json()["url"], headers=h, allow_redirects=False).headers["Location"]
    got = requests.get(loc, timeout=30)
    assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == hashlib.sha256(data).hexdigest()
    log = [json.loads(l) for l in srv.log_text().splitlines() if "multipart upload complete" in l]
    assert any(l.get("parts") == 2 and l.get("bytes") == len(data) and r.json()["id"] in l.get("key", "")
               for l in log), log


@pytest.mark.parametrize("key,secret,code", [
    ("NOSUCHKEY", S3_SECRET, "InvalidAccessKeyId"),
    (S3_KEY, "not-the-secret-0123456789", "SignatureDoesNotMatch"),  # caught only by the SigV4 verifier
])
def test_wrong_credentials_are_refused_by_s3(make_server, s3, key, secret, code):
    """An unknown access key, or the right one signed with a wrong secret (the verifier in front of
    s3rver recomputes the signature with the real one): S3's 403, the upload fails with a problem
    (500, the S3 error code in the log, never the secret) and nothing is stored."""
    env = {**s3.env(), "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    before = s3.objects()
    s = make_server(**env)
    h, _ = new_user_headers(s)
    r = s.post(FILES, headers=h, files={"file": ("a.txt", b"hello\n")})
    assert_problem(r, 500)
    deadline = time.monotonic() + 10  # the log line may be flushed after the response
    while code not in s.log_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"HTTP 403 {code}" in s.log_text()
    assert code in s3.refusals()
    assert secret not in s.log_text() and "S3RVER" not in s.log_text()  # no secret in the log
    assert s3.objects() == before


def test_upload_in_parts_to_s3(srv, s3):
    """20 MiB in three requests; stored on S3 as a multipart upload read from the spool file."""
    h, _ = new_user_headers(srv)
    data = (b"0123456789ABCDEF" * 65536) * 20
    st = srv.post(f"{FILES}/uploads", headers=h, json={"filename": "big.txt", "size": len(data)}).json()
    part = st["part_size"]
    for a in range(0, len(data), part):
        b = min(a + part, len(data)) - 1
        r = srv.put(st["url"], headers={**h, "Content-Range": f"bytes {a}-{b}/{len(data)}"}, data=data[a:b + 1])
    assert r.status_code == 201, r.text
    f = r.json()
    assert f"f/{f['id']}/original" in s3.objects()
    loc = srv.get(f["url"], headers=h).headers["Location"]
    got = requests.get(loc, timeout=60).content
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    log = [json.loads(l) for l in srv.log_text().splitlines() if "multipart upload complete" in l]
    assert any(l.get("parts") == 3 and f["id"] in l.get("key", "") for l in log), log


def test_photo_on_s3(srv, s3):
    """/me/photo on S3: the photo is an object of the bucket; GET /me/photo answers 200 with the bytes (as
    on local storage); replacing and deleting it remove the objects."""
    from conftest import wait_for
    h, _ = new_user_headers(srv)
    img = png(64, 48)
    r = srv.post("/api/v1/me/photo", headers=h, files={"photo": ("me.png", img)})
    assert r.status_code == 201, r.text
    fid = r.json()["file_id"]
    assert s3.object_bytes(f"f/{fid}/original") == img
    g = srv.get("/api/v1/me/photo", headers=h, allow_redirects=False)
    assert g.status_code == 200 and g.content == img and g.headers["Content-Type"] == "image/png"
    wait_for(lambda: srv.get(f"{FILES}/{fid}", headers=h).json()["variants_state"] == "ready", "variants")
    assert f"f/{fid}/thumbnail.webp" in s3.objects()
    t = srv.get("/api/v1/me/photo?variant=thumbnail", headers=h, allow_redirects=False)
    assert t.status_code == 200 and t.content[8:12] == b"WEBP"
    second = srv.post("/api/v1/me/photo", headers=h, files={"photo": ("me.png", png(8, 8))}).json()["file_id"]
    wait_for(lambda: not [o for o in s3.objects() if o.startswith(f"f/{fid}/")], "the old photo's objects purged")
    assert srv.delete("/api/v1/me/photo", headers=h).status_code == 204
    wait_for(lambda: not [o for o in s3.objects() if o.startswith(f"f/{second}/")], "the photo's objects purged")


def test_product_images_and_ticket_attachments_on_s3(srv, s3):
    """Product images and ticket attachments on S3: public/authorised routes redirect to a presigned GET
    of the bucket; deleting the product removes its objects; another user gets 404."""
    from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, login_headers, wait_for
    admin = login_headers(srv, ADMIN_EMAIL, ADMIN_PASSWORD)
    slug = "s3-" + str(int(time.time() * 1000))
    assert srv.post("/api/v1/categories", headers=admin,
                    json={"slug": slug, "name": {"tr": "K", "en": "C", "pl": "K"}}).status_code == 201
    pid = srv.post("/api/v1/products", headers=admin, json={"category": slug, "price": 100,
                                                            "name": {"tr": "Ü", "en": "P", "pl": "P"}}).json()["id"]
    img = png(32, 32)
    fid = srv.post(FILES, headers=admin, files={"file": ("p.png", img)}, data={"purpose": "product"}).json()["id"]
    r = srv.post(f"/api/v1/products/{pid}/images", headers=admin, json={"file_id": fid, "alt": "ön"})
    assert r.status_code == 201, r.text
    url = r.json()["images"][0]["url"]
    d = requests.get(srv.url(url), allow_redirects=False, timeout=10)  # no auth
    assert d.status_code == 302 and d.headers["Location"].startswith(s3.endpoint + f"/{BUCKET}/f/{fid}/original?")
    assert requests.get(d.headers["Location"], timeout=10).content == img
    assert srv.delete(f"/api/v1/products/{pid}", headers=admin).status_code == 204
    wait_for(lambda: not [o for o in s3.objects() if o.startswith(f"f/{fid}/")], "the product's objects purged")
    # a ticket attachment: the owner and staff, nobody else
    h, _ = new_user_headers(srv)
    other, _ = new_user_headers(srv)
    att = srv.post(FILES, headers=h, files={"file": ("log.txt", b"satir\n")}).json()["id"]
    tid = srv.post("/api/v1/tickets", headers=h, json={"subject": "S3", "description": "d"}).json()["id"]
    m = srv.post(f"/api/v1/tickets/{tid}/messages", headers=h, json={"body": "ek", "attachments": [att]})
    assert m.status_code == 201, m.text
    aurl = m.json()["attachments"][0]["url"]
    for hh in (h, admin):
        d = srv.get(aurl, headers=hh, allow_redirects=False)
        assert d.status_code == 302, d.text
        assert requests.get(d.headers["Location"], timeout=10).content == b"satir\n"
    assert_problem(srv.get(aurl, headers=other, allow_redirects=False), 404)


def test_presigned_url_checked_by_signature(srv, s3):
    """temel's presigned GET verifies as signed; with its expiry, path or signature altered S3 refuses it."""
    h, _ = new_user_headers(srv)
    f = srv.post(FILES, headers=h, files={"file": ("t.txt", b"presigned\n")}).json()
    loc = srv.get(f["url"], headers=h, allow_redirects=False).headers["Location"]
    assert requests.get(loc, timeout=10).content == b"presigned\n"
    expires = re.search(r"X-Amz-Expires=(\d+)", loc).group(1)
    sig = re.search(r"X-Amz-Signature=([0-9a-f]{64})", loc).group(1)
    for bad in (loc.replace(f"X-Amz-Expires={expires}", f"X-Amz-Expires={int(expires) + 3600}"),
                loc.replace("/original?", "/large.webp?"),
                loc.replace(sig, sig[:-1] + ("0" if sig[-1] != "0" else "1"))):
        r = requests.get(bad, timeout=10)
        assert r.status_code == 403, (bad, r.text)
        assert "<Code>SignatureDoesNotMatch</Code>" in r.text


def test_certificate_pdf_on_s3(srv, s3):
    """A certificate's PDF is stored in the bucket through files_put_generated; its download answers 200
    with the PDF (as on local storage) to the attendee, 404 to anyone else."""
    from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, login_headers, wait_for
    from events_util import new_event, register
    admin = login_headers(srv, ADMIN_EMAIL, ADMIN_PASSWORD)
    t = srv.post("/api/v1/certificate-templates", headers=admin,
                 json={"name": "S3", "title": "Katılım", "body": "{{name}} katıldı."}).json()
    ev = new_event(srv, admin)
    h, _ = new_user_headers(srv)
    other, _ = new_user_headers(srv)
    code = register(srv, h, ev["id"]).json()["code"]
    assert srv.post(f"/api/v1/events/{ev['id']}/checkin", json={"code": code}, headers=admin).status_code == 200
    r = srv.post("/api/v1/certificates/generate", json={"event_id": ev["id"], "template_id": t["id"]}, headers=admin)
    assert r.status_code == 202, r.text
    c = wait_for(lambda: srv.get("/api/v1/certificates", headers=h).json()["data"], "the certificate")[0]
    [f] = srv.get(f"{FILES}?purpose=certificate", headers=h).json()["data"]
    d = srv.get(f"/api/v1/certificates/{c['id']}/download", headers=h, allow_redirects=False)
    assert d.status_code == 200 and d.headers["Content-Type"] == "application/pdf" and d.content[:5] == b"%PDF-"
    assert s3.object_bytes(f"f/{f['id']}/original") == d.content
    assert_problem(srv.get(f"/api/v1/certificates/{c['id']}/download", headers=other), 404)
