"""Helpers for identity tests: mail/SMS read back from the file transports,
tokens signed with the server's development secret."""
import base64
import email
import email.policy
import glob
import hashlib
import hmac
import json
import os
import re
import uuid

from conftest import wait_for  # noqa: F401 (also for the tests importing it from here)

PASSWORD = "correct horse battery staple"


def unique_email(prefix="u"):
    return f"{prefix}-{uuid.uuid4().hex[:12]}@Example.COM"


def mails(server):
    out = []
    for p in sorted(glob.glob(os.path.join(server.dir, "mail", "*.eml"))):
        with open(p, "rb") as f:
            out.append(email.message_from_binary_file(f, policy=email.policy.default))
    return out


def mail_text(msg):
    part = msg.get_body(preferencelist=("plain",))
    return part.get_content() if part else ""


def wait_mail(server, to, subject_contains, timeout=15.0):
    def find():
        for m in mails(server):
            if to.lower() in str(m["To"]).lower() and subject_contains.lower() in str(m["Subject"]).lower():
                return m
        return None
    return wait_for(find, f"mail to {to} about {subject_contains!r}", timeout)


def token_from_mail(msg):
    m = re.search(r"^\s*([A-Za-z0-9_-]{30,})\s*$", mail_text(msg), re.M)
    assert m, mail_text(msg)
    return m.group(1)


def code_from_text(text):
    m = re.search(r"\b(\d{6})\b", text)
    assert m, text
    return m.group(1)


def sms_messages(server):
    out = []
    for p in sorted(glob.glob(os.path.join(server.dir, "sms", "*"))):
        if p.endswith(".tmp"):
            continue
        with open(p) as f:
            out.append(json.load(f))
    return out


def wait_sms(server, to, timeout=15.0):
    return wait_for(lambda: next((m for m in sms_messages(server) if m.get("to") == to), None), f"sms to {to}",
                    timeout)


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt_secret(server):
    with open(os.path.join(server.dir, "data", "jwt.secret"), "rb") as f:
        return f.read()


def sign_jwt(secret, claims, header=None):
    header = header or {"alg": "HS256", "typ": "JWT"}
    h = b64u(json.dumps(header, separators=(",", ":")).encode())
    p = b64u(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64u(sig)}"


def decode_jwt(token):
    parts = token.split(".")
    pad = lambda s: s + "=" * (-len(s) % 4)
    return json.loads(base64.urlsafe_b64decode(pad(parts[0]))), json.loads(base64.urlsafe_b64decode(pad(parts[1])))


def register(server, email_addr=None, password=PASSWORD, name="Test User"):
    email_addr = email_addr or unique_email()
    r = server.post("/api/v1/auth/register", json={"email": email_addr, "password": password, "name": name})
    assert r.status_code == 201, r.text
    return email_addr, r.json()


def bearer(token):
    return {"Authorization": f"Bearer {token}"}
