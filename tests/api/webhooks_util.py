"""A local webhook receiver for the outbound-webhook tests (never part of the server).

Receiver().start() listens on a free port of 127.0.0.1; every POST is recorded as
{"path", "headers" (lower-case names), "body" (bytes), "status" (what was answered)}.
The answer is taken from plan[path] (a list of status codes, consumed one per request
to that path), then `default` (200).
"""
import hashlib
import hmac
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from conftest import free_port


class Receiver:
    def __init__(self):
        self.port = free_port()
        self.lock = threading.Lock()
        self.got = []
        self.plan = {}
        self.default = 200
        self.cond = threading.Condition(self.lock)
        rec = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                with rec.cond:
                    q = rec.plan.get(self.path)
                    status = q.pop(0) if q else rec.default
                    rec.got.append({"path": self.path, "status": status, "body": body,
                                    "headers": {k.lower(): v for k, v in self.headers.items()}})
                    rec.cond.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), H)
        self.httpd.daemon_threads = True

    def url(self, path="/hook"):
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def wait(self, pred, timeout=20.0):
        """The recorded requests once pred(list) holds (a hang guard, not a timing assertion)."""
        with self.cond:
            self.cond.wait_for(lambda: pred(self.got), timeout=timeout)
            return list(self.got)

    def for_path(self, path):
        with self.lock:
            return [g for g in self.got if g["path"] == path]


def verify_signature(secret, header, body):
    """Temel-Signature: t=<ts>,v1=<hex HMAC-SHA256(secret, "<ts>." + body)> → True when it matches."""
    parts = dict(p.split("=", 1) for p in header.split(","))
    want = hmac.new(secret.encode(), parts["t"].encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, parts["v1"]) and parts["t"].isdigit()
