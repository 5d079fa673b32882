"""A local stand-in for Stripe's API (tests only, never part of the server).

It speaks the part of Stripe's wire format temel uses:
  POST /v1/payment_intents   form-encoded (amount, currency, metadata[order_id], ...),
                             Authorization: Bearer <secret key>, Idempotency-Key honoured
                             (the same key answers the same PaymentIntent); JSON answers.
Controls: fake.mode = "ok" | "402" (card_error, permanent) | "500"; fake.requests lists
(headers, form) of every call; fake.intents maps an intent id to its JSON.
Webhook helpers: sign(payload, secret, t) → the Stripe-Signature header value; event(...) builds one.
"""
import hashlib
import hmac
import json
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeStripe:
    def __init__(self, key="sk_test_temel"):
        self.key = key
        self.mode = "ok"
        self.lock = threading.Lock()
        self.requests = []
        self.intents = {}
        self.by_idem = {}
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def answer(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n).decode()
                if self.path != "/v1/payment_intents":
                    return self.answer(404, {"error": {"type": "invalid_request_error",
                                                       "message": "Unrecognized request URL"}})
                form = {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}
                with fake.lock:
                    fake.requests.append((dict(self.headers), form))
                    mode = fake.mode
                if self.headers.get("Authorization") != f"Bearer {fake.key}":
                    return self.answer(401, {"error": {"type": "invalid_request_error",
                                                       "message": "Invalid API Key provided"}})
                if self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
                    return self.answer(400, {"error": {"type": "invalid_request_error", "message": "form only"}})
                if mode == "402":
                    return self.answer(402, {"error": {"type": "card_error", "code": "card_declined"}})
                if mode == "500":
                    return self.answer(500, {"error": {"type": "api_error"}})
                idem = self.headers.get("Idempotency-Key")
                with fake.lock:
                    if idem and idem in fake.by_idem:
                        return self.answer(200, fake.intents[fake.by_idem[idem]])
                    pid = "pi_" + secrets.token_hex(12)
                    intent = {"id": pid, "object": "payment_intent", "amount": int(form["amount"]),
                              "currency": form["currency"], "status": "requires_payment_method",
                              "client_secret": f"{pid}_secret_{secrets.token_hex(12)}",
                              "metadata": {"order_id": form.get("metadata[order_id]", "")}}
                    fake.intents[pid] = intent
                    if idem:
                        fake.by_idem[idem] = pid
                return self.answer(200, intent)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def calls(self):
        with self.lock:
            return list(self.requests)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def sign(payload, secret, t=None, extra_v1=()):
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return ",".join([f"t={t}", *[f"v1={x}" for x in extra_v1], f"v1={mac}"])


def event(etype, obj, eid=None):
    return json.dumps({"id": eid or "evt_" + secrets.token_hex(12), "object": "event", "type": etype,
                       "created": int(time.time()), "data": {"object": obj}}).encode()
