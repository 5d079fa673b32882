"""Helpers for the delivery tests (mail, SMS, outbound HTTP): a real local SMTP
server (aiosmtpd), a tiny HTTP provider stub, and waits on the file transports
and on job rows."""
import email
import email.policy
import http.server
import json
import os
import threading

from conftest import free_port, wait_for  # noqa: F401 (wait_for: for the tests importing it from here)


def wait_file(path, what=None):
    return wait_for(lambda: os.path.exists(path) and path, what=what or f"file {path}")


def parse_eml(data):
    return email.message_from_bytes(data, policy=email.policy.default)


def job_row(db_factory, db_url, job_id):
    rows = db_factory.query(db_url, "SELECT state, attempt, last_error, result FROM jobs WHERE id = ?",
                            (job_id,))
    return rows[0] if rows else None


def wait_job_state(db_factory, db_url, job_id, states, what=None):
    """Wait until the job reaches one of states; returns the row (state, attempt, last_error, result)."""
    def check():
        r = job_row(db_factory, db_url, job_id)
        return r if r and r[0] in states else None
    return wait_for(check, what=what or f"job {job_id} in {states}")


# --------------------------------------------------------------------------- SMTP

class SmtpSink:
    """aiosmtpd on 127.0.0.1:<free port>. rcpt_replies: a list of replies for
    successive RCPT commands ('250 OK' when exhausted)."""

    def __init__(self, rcpt_replies=None):
        from aiosmtpd.controller import Controller
        self.messages = []  # (mail_from, rcpt_tos, content bytes)
        self.rcpt_replies = list(rcpt_replies or [])
        self.rcpts_seen = 0
        self.port = free_port()
        sink = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                sink.rcpts_seen += 1
                if sink.rcpt_replies:
                    reply = sink.rcpt_replies.pop(0)
                    if not reply.startswith("250"):
                        return reply
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                sink.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content
                                      or envelope.content))
                return "250 Message accepted for delivery"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()

    @property
    def url(self):
        return f"smtp://127.0.0.1:{self.port}"

    def wait_message(self, n=1):
        wait_for(lambda: len(self.messages) >= n, what=f"{n} SMTP message(s)")
        return self.messages[n - 1]


# --------------------------------------------------------------------------- HTTP provider

class ProviderStub:
    """A Twilio-like provider on 127.0.0.1: records requests, answers from `replies`
    ((status, body) tuples; the last one repeats)."""

    def __init__(self, replies=None):
        self.requests = []  # (path, headers dict, body bytes)
        self.replies = list(replies or [(201, {"sid": "SM0001"})])
        self.connections = 0
        stub = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                stub.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                status, payload = stub.replies.pop(0) if len(stub.replies) > 1 else stub.replies[0]
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a):
                pass

        class S(http.server.ThreadingHTTPServer):
            def get_request(self):
                stub.connections += 1
                return super().get_request()

        self.server = S(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
