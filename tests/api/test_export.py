"""Resume export (API.md §8 → §7): POST /resumes/{id}/export {format} → 202
with the job and the file id; the job renders a real PDF (libharu, DejaVu
fonts) or DOCX (WordprocessingML in a zip); the file appears when done.
The documents are opened with pdftotext and unzip + an XML parser, and the
Turkish and Polish letters must come back."""
import io
import subprocess
import tempfile
import time
import zipfile
import xml.etree.ElementTree as ET

import pytest

from conftest import assert_problem, new_user_headers
from files_util import module_server

LETTERS = "ş ğ ı İ ł ż — Şule Yıldırım, Łukasz Żółtowski"
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


@pytest.fixture(scope="module")
def srv(db_factory):
    yield from module_server(db_factory)


def make_resume(s, h):
    r = s.post("/api/v1/resumes", headers=h, json={
        "title": "Özgeçmiş — Şule Yıldırım",
        "summary": "Kıdemli yazılım mühendisi. " + LETTERS,
        "content": "Deneyim\nGdańsk, Kraków, İstanbul\n" + ("Uzun satır kelime " * 400),
        "skills": ["C", "PostgreSQL", "Çeviri"]})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def export(s, h, rid, fmt):
    r = s.post(f"/api/v1/resumes/{rid}/export", headers=h, json={"format": fmt})
    assert r.status_code == 202, r.text
    b = r.json()
    assert b["status"] == "queued" and b["job_id"] and b["file_id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        f = s.get(f"/api/v1/files/{b['file_id']}", headers=h)
        if f.status_code == 200:
            return f.json()
        assert f.status_code == 404
        time.sleep(0.2)
    raise AssertionError("the export did not finish")


def test_pdf_export(srv):
    h, _ = new_user_headers(srv)
    rid = make_resume(srv, h)
    f = export(srv, h, rid, "pdf")
    assert f["mime_type"] == "application/pdf" and f["purpose"] == "export"
    assert f["filename"].endswith(".pdf")
    pdf = srv.get(f["url"], headers=h).content
    assert pdf[:5] == b"%PDF-"
    with tempfile.NamedTemporaryFile(suffix=".pdf") as t:
        t.write(pdf)
        t.flush()
        text = subprocess.run(["pdftotext", "-enc", "UTF-8", t.name, "-"], capture_output=True, check=True).stdout.decode()
        info = subprocess.run(["pdfinfo", t.name], capture_output=True).stdout.decode()
    for word in ("Özgeçmiş", "Şule", "Yıldırım", "İstanbul", "Łukasz", "Żółtowski", "Gdańsk", "Çeviri"):
        assert word in text, word
    for ch in "şğıİłż":
        assert ch in text
    if info:
        pages = int([l for l in info.splitlines() if l.startswith("Pages:")][0].split()[1])
        assert pages >= 2  # the long content wrapped onto a second page


def test_docx_export(srv):
    h, _ = new_user_headers(srv)
    rid = make_resume(srv, h)
    f = export(srv, h, rid, "docx")
    assert f["mime_type"] == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    data = srv.get(f["url"], headers=h).content
    z = zipfile.ZipFile(io.BytesIO(data))
    assert z.testzip() is None
    assert {"[Content_Types].xml", "_rels/.rels", "word/document.xml"} <= set(z.namelist())
    root = ET.fromstring(z.read("word/document.xml"))
    text = "\n".join("".join(t.text or "" for t in p.iter(W + "t")) for p in root.iter(W + "p"))
    assert "Özgeçmiş — Şule Yıldırım" in text
    assert LETTERS in text
    for ch in "şğıİłż":
        assert ch in text


def test_export_refusals(srv):
    h, _ = new_user_headers(srv)
    h2, _ = new_user_headers(srv)
    rid = make_resume(srv, h)
    assert_problem(srv.post(f"/api/v1/resumes/{rid}/export", headers=h, json={"format": "odt"}), 422)
    assert_problem(srv.post(f"/api/v1/resumes/{rid}/export", headers=h, json={}), 422)
    assert_problem(srv.post(f"/api/v1/resumes/{rid}/export", headers=h2, json={"format": "pdf"}), 404)
    assert_problem(srv.post(f"/api/v1/resumes/{rid}/export", json={"format": "pdf"}), 401)
