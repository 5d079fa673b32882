"""Helpers for the community tests (events, support, certificates): times, staff-made
events, cheap identities for races (guest accounts: no password hashing), and waits."""
import datetime
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

import delivery_util
from conftest import HTTP_TIMEOUT, wait_for  # noqa: F401 (also for the tests importing it from here)

API = "/api/v1"
MISSING = "01900000-0000-7000-8000-000000000000"


def iso(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{dt.microsecond // 1000:03d}Z"


def in_(**delta):
    return iso(datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(**delta))


def new_event(server, staff, **fields):
    body = {"title": f"Etkinlik {uuid.uuid4().hex[:8]}", "starts_at": in_(days=10), "status": "published"}
    body.update(fields)
    r = server.post(f"{API}/events", json=body, headers=staff)
    assert r.status_code == 201, r.text
    return r.json()


def guest(url):
    r = requests.post(url + f"{API}/auth/guest", timeout=60)
    assert r.status_code == 201, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def guests(url, n, workers=8):
    with ThreadPoolExecutor(workers) as ex:
        return list(ex.map(lambda _: guest(url), range(n)))


def fire(urls, path, headers_list, body=None):
    """Every client posts at once (a barrier), to one of urls in turn."""
    barrier = threading.Barrier(len(headers_list))

    def one(i):
        barrier.wait()
        return requests.post(urls[i % len(urls)] + path, json=body if body is not None else {},
                             headers=headers_list[i], timeout=120)

    with ThreadPoolExecutor(len(headers_list)) as ex:
        return list(ex.map(one, range(len(headers_list))))


def register(server, h, event_id, **kw):
    return server.post(f"{API}/events/{event_id}/register", json={}, headers=h, timeout=HTTP_TIMEOUT, **kw)


def staff_server(make_server, name, **env):
    """A dedicated server with its own bootstrap admin; returns (server, admin headers)."""
    email, password = f"{name}-admin@example.com", f"{name} admin password 1"
    s = make_server(TEMEL_ADMIN_EMAIL=email, TEMEL_ADMIN_PASSWORD=password, TEMEL_JOB_POLL_MS="50", **env)
    r = s.post(f"{API}/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return s, {"Authorization": f"Bearer {r.json()['access_token']}"}


def sink_mails(sink, prefixes, n=1):
    """Wait for n mails in the SMTP sink whose subject starts with one of prefixes (other modules' mails,
    such as sign-up verification, are ignored); returns [(rcpt_tos, message)] in arrival order."""
    def got():
        mine = [(rc, m) for rc, m in ((rc, delivery_util.parse_eml(raw)) for _, rc, raw in list(sink.messages))
                if m["subject"].startswith(tuple(prefixes))]
        return mine if len(mine) >= n else None
    return wait_for(got, f"{n} mail(s) starting with {prefixes}")
