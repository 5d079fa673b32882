"""Helpers for the email marketing and social tests: one server per test module with its
own environment (a real SMTP sink, stand-in networks), mail parsing, token extraction."""
import contextlib
import email
import email.policy
import re

import pytest

from conftest import SHARED_ENV, Server, ServerStartError, login_headers, ADMIN_EMAIL, ADMIN_PASSWORD

API = "/api/v1"
SECRET = "marketing-test-secret-0123456789abcdef"


@contextlib.contextmanager
def module_server(db_factory, db_url=None, **env):
    """A started server with SHARED_ENV + env on a fresh (or the given) database; at the end it
    must exit 0 on SIGTERM and leave no sanitizer report."""
    url = db_url or db_factory.new_url()
    e = dict(SHARED_ENV)
    e.setdefault("TEMEL_SECRET_KEY", SECRET)
    e.update({k: str(v) for k, v in env.items()})
    s = Server(url, env=e)
    try:
        s.start()
    except ServerStartError as ex:
        pytest.fail(str(ex), pytrace=False)
    try:
        yield s
    finally:
        problems = []
        if s.alive():
            rc = s.stop()
            if rc != 0:
                problems.append(f"server exited with {rc}\n{s.log_tail()}")
        if s.sanitizer_reports():
            problems.append(f"sanitizer reports\n{s.log_tail(200)}")
        s.cleanup()
        if db_url is None:
            db_factory.drop(url)
        assert not problems, "\n".join(problems)


def admin(server):
    return login_headers(server, ADMIN_EMAIL, ADMIN_PASSWORD)


def parse(content):
    return email.message_from_bytes(content, policy=email.policy.default)


def html_of(msg):
    part = msg.get_body(preferencelist=("html",))
    return part.get_content() if part else ""


def text_of(msg):
    part = msg.get_body(preferencelist=("plain",))
    return part.get_content() if part else ""


def path_of(url, prefix):
    m = re.search(r"https?://[^/]+(" + re.escape(prefix) + r"[A-Za-z0-9_\-.]+)", url)
    assert m, f"no {prefix} link in {url[:500]}"
    return m.group(1)
