"""Deferred responses (http_defer): a handler waits without blocking its loop."""
import concurrent.futures
import socket
import time

import requests


def test_deferred_answers_after_polling(server):
    r = server.get("/api/v1/_test/wait?ms=300")
    assert r.status_code == 200
    assert r.json()["done"] is True and r.json()["polls"] >= 2
    assert r.headers["X-Request-Id"] and r.headers["X-Content-Type-Options"] == "nosniff"


def test_deferred_timeout_answers_202(server):
    r = server.get("/api/v1/_test/wait?ms=60000&timeout_ms=300")
    assert r.status_code == 202 and r.json()["done"] is False


def test_waiting_does_not_block_the_loop(make_server):
    s = make_server(TEMEL_THREADS="1")  # one loop: a blocking wait would stall everything
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        waits = [ex.submit(requests.get, s.url("/api/v1/_test/wait?ms=3000"), timeout=20) for _ in range(6)]
        time.sleep(0.3)
        live = requests.get(s.url("/health/live"), timeout=20)
        assert live.status_code == 200
        assert not any(w.done() for w in waits), "the waits finished before /health/live answered"
        assert all(w.result().status_code == 200 for w in waits)


def test_client_leaving_mid_wait_is_harmless(server):
    for _ in range(20):
        c = socket.create_connection(("127.0.0.1", server.port))
        c.sendall(b"GET /api/v1/_test/wait?ms=400 HTTP/1.1\r\nHost: x\r\n\r\n")
        c.close()
    time.sleep(0.8)  # let every deferral reach its end after its client left
    assert server.get("/health/live").status_code == 200


def test_shutdown_answers_waiting_requests(make_server):
    s = make_server()
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        f = ex.submit(requests.get, s.url("/api/v1/_test/wait?ms=30000"), timeout=30)
        time.sleep(0.5)
        rc = s.stop()
        r = f.result()
    assert rc == 0
    assert r.status_code == 202 and r.json()["done"] is False
