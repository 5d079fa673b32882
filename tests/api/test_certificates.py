"""Certificates (API.md §10, issue 12 item 4): staff templates (title, body with variables, colours,
logo URL), a job that renders one PDF per checked-in attendee (libharu with embedded DejaVu: Turkish
and Polish letters come back from pdftotext; the page is rasterised with pdftoppm and its colours and
logo checked), unique numbers, public verification, the owner's download and revocation."""
import http.server
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import zlib

from conftest import assert_problem, error_fields, new_user_headers
from events_util import API, MISSING, new_event, register, staff_server, wait_for

PRIMARY = (0xC0, 0x39, 0x2B)


def png_square(rgb, side=24):
    raw = b"".join(b"\x00" + bytes(rgb) * side for _ in range(side))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class LogoServer:
    def __init__(self, body):
        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/logo.png"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def template(server, staff, **fields):
    body = {"name": "Katılım", "title": "Katılım Sertifikası",
            "body": "{{name}}, {{date}} tarihinde {{city}} şehrinde düzenlenen \"{{event}}\" etkinliğine katılmıştır.",
            "primary_color": "#C0392B"}
    body.update(fields)
    r = server.post(f"{API}/certificate-templates", json=body, headers=staff)
    assert r.status_code == 201, r.text
    return r.json()


def pdf_text(data):
    d = tempfile.mkdtemp(prefix="cert-")
    try:
        with open(os.path.join(d, "c.pdf"), "wb") as f:
            f.write(data)
        out = subprocess.run(["pdftotext", "-enc", "UTF-8", os.path.join(d, "c.pdf"), "-"], capture_output=True,
                             timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.decode("utf-8")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def pdf_pixels(data, keep_png_at=None):
    """Rasterise page 1 (pdftoppm, 40 dpi) and return the set of its RGB colours."""
    d = tempfile.mkdtemp(prefix="cert-")
    try:
        with open(os.path.join(d, "c.pdf"), "wb") as f:
            f.write(data)
        out = subprocess.run(["pdftoppm", "-r", "40", "-f", "1", "-l", "1", os.path.join(d, "c.pdf"),
                              os.path.join(d, "p")], capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr
        if keep_png_at:
            subprocess.run(["pdftoppm", "-r", "60", "-png", "-f", "1", "-l", "1", "-singlefile",
                            os.path.join(d, "c.pdf"), keep_png_at], capture_output=True, timeout=60)
        ppm = next(f for f in os.listdir(d) if f.endswith(".ppm"))
        raw = open(os.path.join(d, ppm), "rb").read()
        parts = raw.split(b"\n", 3)
        assert parts[0] == b"P6"
        w, h = map(int, parts[1].split())
        px = parts[3]
        return {tuple(px[i:i + 3]) for i in range(0, w * h * 3, 3)}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def near(colours, rgb, tol=12):
    return any(all(abs(c[i] - rgb[i]) <= tol for i in range(3)) for c in colours)


def test_templates_staff_crud_and_validation(server, admin_headers, user_headers):
    t = template(server, admin_headers)
    assert t["primary_color"] == "#C0392B" and t["text_color"] == "#222222" and t["logo_url"] is None
    assert_problem(server.post(f"{API}/certificate-templates", json={"name": "x", "title": "x", "body": "x"},
                               headers=user_headers), 403)
    assert_problem(server.get(f"{API}/certificate-templates/{t['id']}", headers=user_headers), 403)  # staff-only kind
    for body, field in (({"primary_color": "red"}, "primary_color"), ({"text_color": "#12345G"}, "text_color"),
                        ({"body": "Merhaba {{isim}}"}, "body"), ({"body": "Merhaba {{name"}, "body"),
                        ({"logo_url": "ftp://x/logo.png"}, "logo_url"), ({"colour": "#000000"}, "colour")):
        b = assert_problem(server.patch(f"{API}/certificate-templates/{t['id']}", json=body, headers=admin_headers),
                           422)
        assert field in error_fields(b), b
    r = server.patch(f"{API}/certificate-templates/{t['id']}", json={"text_color": "#101010"}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["text_color"] == "#101010"
    r = server.get(f"{API}/admin/audit-logs?target_id={t['id']}", headers=admin_headers)
    assert sorted(e["action"] for e in r.json()["data"]) == ["certificate_template.create",
                                                             "certificate_template.update"]


def test_generate_refusals(server, admin_headers, user_headers):
    t = template(server, admin_headers)
    ev = new_event(server, admin_headers)
    body = {"event_id": ev["id"], "template_id": t["id"]}
    assert_problem(server.post(f"{API}/certificates/generate", json=body, headers=user_headers), 403)
    b = assert_problem(server.post(f"{API}/certificates/generate", json={**body, "event_id": MISSING},
                                   headers=admin_headers), 422)
    assert "event_id" in error_fields(b)
    b = assert_problem(server.post(f"{API}/certificates/generate", json={**body, "template_id": MISSING},
                                   headers=admin_headers), 422)
    assert "template_id" in error_fields(b)
    assert_problem(server.get(f"{API}/certificates/verify/CERT-2026-NOPE"), 404)
    assert_problem(server.get(f"{API}/certificates/{MISSING}/download", headers=user_headers), 404)


def test_generate_render_verify_download_revoke(make_server, tmp_path, db_factory):
    logo = LogoServer(png_square((0, 0, 255)))
    try:
        s, admin = staff_server(make_server, "cert", TEMEL_OUTBOUND_ALLOW="127.0.0.1",
                                TEMEL_PUBLIC_URL="https://etkinlik.example.com/")
        t = template(s, admin, logo_url=logo.url)
        ev = new_event(s, admin, title="Yazılım Günleri: Łódź & İstanbul", city="Kraków",
                       starts_at="2026-12-20T09:00:00.000Z", capacity=10)
        people = []
        for name in ("Şule Ağaoğlu", "Małgorzata Różańska", "Işıl Gündoğdu"):
            r = s.post(f"{API}/auth/register", json={"email": f"{name.split()[0].encode('ascii', 'ignore').decode().lower()}"
                                                                 f"-{ev['id'][-6:]}@example.com",
                                                       "password": "correct horse battery staple", "name": name})
            assert r.status_code == 201, r.text
            h = {"Authorization": f"Bearer {r.json()['access_token']}"}
            people.append((name, h, register(s, h, ev["id"]).json()))
        for _, _, reg in people[:2]:                                       # the third never came
            assert s.post(f"{API}/events/{ev['id']}/checkin", json={"code": reg["code"]}, headers=admin).status_code == 200
        r = s.post(f"{API}/certificates/generate", json={"event_id": ev["id"], "template_id": t["id"]}, headers=admin)
        assert r.status_code == 202 and r.json()["attendees"] == 2, r.text

        def made():
            got = s.get(f"{API}/certificates?event_id={ev['id']}&status=valid", headers=admin).json()
            return got["data"] if got["meta"]["total"] == 2 else None
        certs = wait_for(made, "two certificates", timeout=120)
        assert len({c["number"] for c in certs}) == 2
        assert sorted(c["attendee_name"] for c in certs) == ["Małgorzata Różańska", "Şule Ağaoğlu"]
        job = s.get(f"{API}/admin/jobs?kind=certificates.generate", headers=admin).json()["data"][0]
        assert "logo left out" not in str(job.get("result")), job

        name, h, _ = people[0]
        mine = s.get(f"{API}/certificates", headers=h).json()["data"]
        assert len(mine) == 1 and mine[0]["attendee_name"] == name
        c = mine[0]
        r = s.get(f"{API}/certificates/{c['id']}/download", headers=h)
        assert r.status_code == 200 and r.headers["Content-Type"] == "application/pdf" and r.content[:5] == b"%PDF-"
        assert c["number"] in r.headers.get("Content-Disposition", "")
        text = pdf_text(r.content)
        for needle in ("Katılım Sertifikası", "Şule Ağaoğlu", "Yazılım Günleri: Łódź & İstanbul", "Kraków",
                       "2026-12-20", c["number"], f"https://etkinlik.example.com/api/v1/certificates/verify/{c['number']}"):
            assert needle in " ".join(text.split()), (needle, text)
        # the Polish attendee's certificate: ł ż ó ń come back too
        other = s.get(f"{API}/certificates", headers=people[1][1]).json()["data"][0]
        text2 = pdf_text(s.get(f"{API}/certificates/{other['id']}/download", headers=people[1][1]).content)
        assert "Małgorzata Różańska" in text2
        joined = text + text2
        for letter in "şğıİłżŁ":
            assert letter in joined, letter
        colours = pdf_pixels(r.content, keep_png_at=os.environ.get("TEMEL_CERT_PNG"))
        assert near(colours, PRIMARY), "the template's primary colour is not on the page"
        assert near(colours, (0, 0, 255)), "the logo is not on the page"
        # others may not download it; staff may
        assert_problem(s.get(f"{API}/certificates/{c['id']}/download", headers=people[1][1]), 404)
        assert s.get(f"{API}/certificates/{c['id']}/download", headers=admin).status_code == 200
        # public verification
        v = s.get(f"{API}/certificates/verify/{c['number']}")
        assert v.status_code == 200, v.text
        assert {k: v.json()[k] for k in ("number", "name", "event", "status", "valid")} == \
            {"number": c["number"], "name": name, "event": "Yazılım Günleri: Łódź & İstanbul", "status": "valid",
             "valid": True}
        assert v.json()["date"] == "2026-12-20T09:00:00.000Z"
        # revoke
        assert_problem(s.post(f"{API}/certificates/{c['id']}/revoke", json={}, headers=h), 403)
        r = s.post(f"{API}/certificates/{c['id']}/revoke", json={"reason": "yanlış kişi"}, headers=admin)
        assert r.status_code == 200 and r.json()["status"] == "revoked" and r.json()["revoke_reason"] == "yanlış kişi"
        assert_problem(s.post(f"{API}/certificates/{c['id']}/revoke", json={}, headers=admin), 409)
        v = s.get(f"{API}/certificates/verify/{c['number']}").json()
        assert v["status"] == "revoked" and v["valid"] is False and v["revoked_at"]
        r = s.get(f"{API}/admin/audit-logs?target_id={c['id']}", headers=admin)
        assert [e["action"] for e in r.json()["data"]] == ["certificate.revoke"]
        # generating again makes nothing new
        r = s.post(f"{API}/certificates/generate", json={"event_id": ev["id"], "template_id": t["id"]}, headers=admin)
        assert r.status_code == 202 and r.json()["attendees"] == 0
        jid = r.json()["job_id"]
        wait_for(lambda: s.get(f"{API}/admin/jobs/{jid}", headers=admin).json().get("state") == "succeeded",
                 "the second job")
        assert s.get(f"{API}/certificates?event_id={ev['id']}", headers=admin).json()["meta"]["total"] == 2
        check_certificates_are_files(s, db_factory, admin, people, certs)
    finally:
        logo.close()


def check_certificates_are_files(s, db_factory, admin, people, certs):
    """The PDFs are files of their attendees (files module's internal API), not base64 in the row; a
    certificate stored the old way still downloads; deleting the account removes the file's bytes."""
    from pathlib import Path
    name, h, _ = people[0]
    c = s.get(f"{API}/certificates", headers=h).json()["data"][0]
    [f] = s.get(f"{API}/files?purpose=certificate", headers=h).json()["data"]
    assert (f["filename"], f["mime_type"], f["size"]) == (f"{c['number']}.pdf", "application/pdf", c["pdf_size"])
    stored = Path(s.dir) / "data" / "files" / "f" / f["id"] / "original"
    assert stored.read_bytes() == s.get(f"{API}/certificates/{c['id']}/download", headers=h).content
    assert db_factory.query(s.db_url, "SELECT count(*) FROM certificates WHERE pdf IS NOT NULL") == [(0,)]
    assert_problem(s.delete(f"{API}/files/{f['id']}", headers=h), 409)      # it goes with its certificate
    assert_problem(s.get(f"{API}/files/{f['id']}", headers=people[1][1]), 404)
    # a certificate rendered before (base64 in the row) still downloads
    other = s.get(f"{API}/certificates", headers=people[1][1]).json()["data"][0]
    legacy = b"%PDF-1.4\n% legacy\n%%EOF\n"
    import base64
    db_factory.query(s.db_url, "DELETE FROM certificate_files WHERE certificate_id = ?", (other["id"],))
    db_factory.query(s.db_url, "UPDATE certificates SET pdf = ? WHERE id = ?",
                     (base64.b64encode(legacy).decode(), other["id"]))
    r = s.get(f"{API}/certificates/{other['id']}/download", headers=people[1][1])
    assert r.status_code == 200 and r.content == legacy and r.headers["Content-Type"] == "application/pdf"
    # the attendee leaves: certificate and file go, the bytes are purged
    assert s.delete(f"{API}/me", headers=h).status_code == 204
    wait_for(lambda: not stored.exists() or None, "the certificate's bytes purged")
    assert_problem(s.get(f"{API}/certificates/{c['id']}", headers=admin), 404)
