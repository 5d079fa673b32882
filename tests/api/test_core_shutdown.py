"""Graceful shutdown: SIGTERM/SIGINT stop accepting, finish in-flight requests, exit 0."""
import signal
import socket
import threading
import time

import pytest
import requests

from conftest import RawConn


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_idle_shutdown_exits_0(make_server, sig):
    s = make_server()
    assert s.get("/health/live").status_code == 200
    assert s.stop(sig) == 0, s.log_tail()


def test_shutdown_with_idle_keepalive_connection(make_server):
    s = make_server()
    sess = requests.Session()
    assert sess.get(s.url("/health/live"), timeout=10).status_code == 200
    c = RawConn(s.port)  # a connection that never sends anything
    try:
        rc = s.stop(signal.SIGTERM)  # the timeout inside stop() is a hang guard only
        assert rc == 0, f"exit {rc} (None = did not exit)\n{s.log_tail()}"
    finally:
        c.close()
        sess.close()


def _connect_refused(port):
    try:
        c = RawConn(port, timeout=2)
    except (ConnectionRefusedError, OSError):
        return True
    try:
        c.send(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            resp = c.read_response()
        except socket.timeout:
            return False
        return resp is None  # accepted by the kernel backlog but closed unanswered
    finally:
        c.close()


def test_inflight_request_completes_on_sigterm(make_server):
    s = make_server(TEMEL_REQUEST_TIMEOUT_MS="2000")
    result = {}

    def slow():
        c = RawConn(s.port, timeout=30)
        try:
            c.send(b"GET /api/v1/_test/slow HTTP/1.1\r\nHost: x\r\nX-Request-Id: inflight-1\r\n\r\n")
            result["resp"] = c.read_response()
        except Exception as e:  # noqa: BLE001 - reported below
            result["err"] = e
        finally:
            c.close()

    t = threading.Thread(target=slow)
    t.start()
    # ordering only: give the request time to reach the handler before the signal
    time.sleep(0.5)
    s.proc.send_signal(signal.SIGTERM)
    # new connections are refused once shutdown has begun (poll while the slow one is in flight)
    refused = False
    for _ in range(40):
        if _connect_refused(s.port):
            refused = True
            break
        time.sleep(0.025)
    t.join(30)
    rc = s.stop()
    assert "err" not in result, result.get("err")
    resp = result.get("resp")
    assert resp is not None, "in-flight request was dropped by the shutdown"
    assert resp.status == 503, resp
    assert resp.header("x-request-id") == "inflight-1"
    assert rc == 0, f"exit {rc}\n{s.log_tail()}"
    assert refused, "server still accepted new connections after SIGTERM"


def test_connection_whose_request_comes_late_is_still_served(make_server):
    """A client connects just before SIGTERM and is descheduled before it sends (the rolling-restart
    flake of issue 14): its connection was accepted, so the shutdown waits for its request (up to
    3 s from the signal) and answers it instead of exiting under it after the 1.5 s quiet rule."""
    s = make_server()
    c = RawConn(s.port, timeout=30)
    try:
        assert s.get("/health/live").status_code == 200  # c is accepted by now (the loop took it first)
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(2.0)  # the slow client: past the old exit point (1 s grace + 500 ms quiet), before 3 s
        assert c.send(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n"), "reset before the request"
        resp = c.read_response()
        assert resp is not None, "the connection was closed unanswered"
        assert resp.status == 200, resp
    finally:
        c.close()
    assert s.stop() == 0, s.log_tail()


def test_after_exit_port_is_closed(make_server):
    s = make_server()
    port = s.port
    assert s.stop() == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
