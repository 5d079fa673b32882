"""Delivery end to end: mail and SMS enqueued through the test-only routes
(POST /api/v1/_test/mail, /api/v1/_test/sms — the same mail_enqueue /
sms_enqueue modules use), run by the job runner inside `temel serve`, and
read back from the transports: the file transports' .eml / .json, a real
SMTP server (aiosmtpd) and a Twilio-style HTTP provider stub."""
import base64
import os
import urllib.parse

import pytest

from conftest import assert_problem, free_port
from delivery_util import (ProviderStub, SmtpSink, job_row, parse_eml, wait_file, wait_for,
                           wait_job_state)

VARS = {"name": "Ada <Lovelace> & co", "subject": "Şifre sıfırlama ✓", "body": "Merhaba & hoş geldin — ğüşiöç"}


def enqueue_mail(server, to="ada@example.com", template="_test", vars=VARS):
    r = server.post("/api/v1/_test/mail", json={"to": to, "template": template, "vars": vars})
    assert r.status_code == 202, r.text
    return r.json()["data"]["job_id"]


def enqueue_sms(server, to="+905551234567", text="Kodunuz: 123456 — ğ"):
    r = server.post("/api/v1/_test/sms", json={"to": to, "text": text})
    assert r.status_code == 202, r.text
    return r.json()["data"]["job_id"]


def check_message(msg, job_id=None, to="ada@example.com"):
    assert msg["To"] == to
    assert msg["Subject"] == "Test: Şifre sıfırlama ✓"
    assert "noreply" in str(msg["From"]) or "@" in str(msg["From"])
    assert msg["Date"] is not None and msg["Date"].datetime is not None
    assert msg["MIME-Version"] == "1.0"
    mid = msg["Message-ID"]
    assert mid.startswith("<") and mid.endswith(">") and "@" in mid
    if job_id:
        assert job_id in mid
    assert msg.get_content_type() == "multipart/alternative"
    assert not msg.defects, msg.defects
    plain = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    for part in (plain, html):
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
        assert not part.defects, part.defects
    text = plain.get_content()
    assert "Hello Ada <Lovelace> & co," in text  # text part: values as given
    assert "Merhaba & hoş geldin — ğüşiöç" in text
    h = html.get_content()
    assert "<p>Hello Ada &lt;Lovelace&gt; &amp; co,</p>" in h  # HTML part: values escaped
    assert "Merhaba &amp; hoş geldin — ğüşiöç" in h


# --------------------------------------------------------------------------- mail: file transport

def test_file_transport_writes_valid_eml(server, db_factory):
    job_id = enqueue_mail(server)
    path = os.path.join(server.dir, "mail", f"{job_id}.eml")
    wait_file(path, what="the .eml of the mail job")
    with open(path, "rb") as f:
        raw = f.read()
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    assert all(len(line) <= 78 for line in raw.split(b"\r\n"))
    raw.decode("ascii")  # 7-bit clean: headers encoded, bodies quoted-printable
    check_message(parse_eml(raw), job_id)
    # written atomically: no temp file is left behind, and the job succeeded
    assert [n for n in os.listdir(os.path.join(server.dir, "mail")) if n.startswith(".")] == []
    row = wait_job_state(db_factory, server.db_url, job_id, ("succeeded",))
    assert row[1] == 1


def test_mail_enqueue_validation(server):
    bad = [
        {"to": "ada@example.com\r\nBcc: victim@example.com", "template": "_test", "vars": VARS},
        {"to": "not an address", "template": "_test", "vars": VARS},
        {"to": "ada@example.com", "template": "no_such_template", "vars": VARS},
        {"to": "ada@example.com", "template": "_test", "vars": {"name": "x", "body": "y"}},  # missing var
        {"to": "ada@example.com", "template": "_test",
         "vars": dict(VARS, subject="hi\r\nBcc: victim@example.com")},  # header injection via subject
        {"to": "ada@example.com", "template": "_test", "vars": dict(VARS, name={"nested": 1})},
    ]
    for body in bad:
        r = server.post("/api/v1/_test/mail", json=body)
        assert_problem(r, 422)
    r = server.post("/api/v1/_test/sms", json={"to": "905551234567", "text": "x"})
    assert_problem(r, 422)
    r = server.post("/api/v1/_test/sms", json={"to": "+90 555 123", "text": "x"})
    assert_problem(r, 422)


# --------------------------------------------------------------------------- mail: SMTP

def test_smtp_delivery_to_a_real_server(make_server, db_factory):
    with SmtpSink() as smtp:
        s = make_server(TEMEL_MAIL_URL=smtp.url, TEMEL_MAIL_FROM="Temel Test <noreply@temel.test>")
        job_id = enqueue_mail(s)
        mail_from, rcpts, content = smtp.wait_message()
        assert mail_from == "noreply@temel.test"
        assert rcpts == ["ada@example.com"]
        msg = parse_eml(content)
        check_message(msg, job_id)
        assert msg["From"].addresses[0].display_name == "Temel Test"
        assert msg["From"].addresses[0].addr_spec == "noreply@temel.test"
        row = wait_job_state(db_factory, s.db_url, job_id, ("succeeded",))
        assert row[1] == 1


def test_smtp_permanent_failure_fails_the_job_at_once(make_server, db_factory):
    with SmtpSink(rcpt_replies=["550 5.1.1 no such user"]) as smtp:
        s = make_server(TEMEL_MAIL_URL=smtp.url, TEMEL_JOB_BACKOFF_MS="50")
        job_id = enqueue_mail(s)
        state, attempt, last_error, _ = wait_job_state(db_factory, s.db_url, job_id, ("failed", "dead"))
        assert state == "failed"
        assert attempt == 1
        assert "550" in last_error
        assert smtp.messages == []


def test_smtp_temporary_failure_is_retried(make_server, db_factory):
    with SmtpSink(rcpt_replies=["451 4.3.0 try again later"]) as smtp:
        s = make_server(TEMEL_MAIL_URL=smtp.url, TEMEL_JOB_BACKOFF_MS="50")
        job_id = enqueue_mail(s)
        _, _, content = smtp.wait_message()
        check_message(parse_eml(content), job_id)
        state, attempt, _, _ = wait_job_state(db_factory, s.db_url, job_id, ("succeeded",))
        assert attempt == 2
        assert smtp.rcpts_seen == 2


def test_smtp_server_down_is_retried_not_failed(make_server, db_factory):
    s = make_server(TEMEL_MAIL_URL=f"smtp://127.0.0.1:{free_port()}", TEMEL_JOB_BACKOFF_MS="50")
    job_id = enqueue_mail(s)
    # every attempt is a retryable connect error; after max_attempts the job is dead, never "failed"
    state, attempt, last_error, _ = wait_job_state(db_factory, s.db_url, job_id, ("dead", "failed"))
    assert state == "dead"
    assert attempt == 3
    assert "smtp" in last_error.lower()


# --------------------------------------------------------------------------- SMS

def test_sms_file_transport(server, db_factory):
    job_id = enqueue_sms(server)
    path = os.path.join(server.dir, "sms", f"{job_id}.json")
    wait_file(path, what="the SMS file")
    import json
    with open(path) as f:
        doc = json.load(f)
    assert doc["to"] == "+905551234567"
    assert doc["text"] == "Kodunuz: 123456 — ğ"
    assert doc["from"]
    assert doc["created_at"].endswith("Z")
    assert set(doc) == {"to", "from", "text", "created_at"}
    wait_job_state(db_factory, server.db_url, job_id, ("succeeded",))


def test_sms_http_provider(make_server, db_factory):
    with ProviderStub([(201, {"sid": "SM42", "status": "queued"})]) as p:
        url = f"http://ACsid:tok%2Fen@127.0.0.1:{p.port}/2010-04-01/Accounts/ACsid/Messages.json"
        s = make_server(TEMEL_SMS_URL=url, TEMEL_SMS_FROM="+15550001111", TEMEL_OUTBOUND_ALLOW="127.0.0.1")
        job_id = enqueue_sms(s)
        state, attempt, _, result = wait_job_state(db_factory, s.db_url, job_id, ("succeeded", "failed", "dead"))
        assert state == "succeeded", (state, attempt)
        assert "SM42" in result
        path, headers, body = p.requests[0]
        assert path == "/2010-04-01/Accounts/ACsid/Messages.json"
        assert headers["authorization"] == "Basic " + base64.b64encode(b"ACsid:tok/en").decode()
        assert headers["content-type"] == "application/x-www-form-urlencoded"
        form = urllib.parse.parse_qs(body.decode(), strict_parsing=True)
        assert form == {"To": ["+905551234567"], "From": ["+15550001111"], "Body": ["Kodunuz: 123456 — ğ"]}
        # the provider's credentials never reach the log
        assert "tok/en" not in s.log_text() and "tok%2Fen" not in s.log_text()


def test_sms_provider_on_loopback_is_refused_by_default(make_server, db_factory):
    with ProviderStub() as p:
        url = f"http://ACsid:token@127.0.0.1:{p.port}/Messages.json"
        s = make_server(TEMEL_SMS_URL=url, TEMEL_SMS_FROM="+15550001111")
        job_id = enqueue_sms(s)
        state, attempt, last_error, _ = wait_job_state(db_factory, s.db_url, job_id, ("succeeded", "failed", "dead"))
        assert state == "failed"
        assert attempt == 1
        assert "refused" in last_error and "loopback" in last_error
        assert p.connections == 0 and p.requests == []


# --------------------------------------------------------------------------- configuration

@pytest.mark.parametrize("var,value,named", [
    ("TEMEL_MAIL_URL", "http://mail.example.com", "TEMEL_MAIL_URL"),
    ("TEMEL_MAIL_URL", "file://", "TEMEL_MAIL_URL"),
    ("TEMEL_MAIL_FROM", "not an address", "TEMEL_MAIL_FROM"),
    ("TEMEL_SMS_URL", "ftp://sms.example.com", "TEMEL_SMS_URL"),
    ("TEMEL_SMS_URL", "https://api.example.com/send", "TEMEL_SMS_FROM"),
    ("TEMEL_OUTBOUND_ALLOW", "10.0.0.0/40", "TEMEL_OUTBOUND_ALLOW"),
])
def test_bad_delivery_config_exits_2(make_server, var, value, named):
    s = make_server(_start=False, **{var: value})
    import subprocess
    from conftest import require_bin
    p = subprocess.run([require_bin(), "serve"], cwd=str(s.dir), env=s.env, capture_output=True, timeout=30)
    assert p.returncode == 2, (p.returncode, p.stderr[-500:])
    assert named.encode() in p.stderr
