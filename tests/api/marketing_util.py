"""Helpers for the email marketing and social tests: one server per test module with its
own environment (a real SMTP sink, stand-in networks), mail parsing, token extraction."""
import contextlib
import email
import email.policy
import re

from conftest import ADMIN_EMAIL, ADMIN_PASSWORD, SHARED_ENV, Server, login_headers, serve_module

API = "/api/v1"
SECRET = "marketing-test-secret-0123456789abcdef"


@contextlib.contextmanager
def module_server(db_factory, db_url=None, **env):
    """A started server with SHARED_ENV + env on a fresh (or the given, then kept) database; at the end it
    must exit 0 on SIGTERM and leave no sanitizer report."""
    e = {**SHARED_ENV, "TEMEL_SECRET_KEY": SECRET, **{k: str(v) for k, v in env.items()}}
    yield from serve_module(db_factory, Server(db_url or db_factory.new_url(), env=e), drop=db_url is None)


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
