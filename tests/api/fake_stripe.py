"""A local stand-in for Stripe's API (tests only, never part of the server).

It speaks the part of Stripe's wire format temel uses:
  POST /v1/payment_intents   form-encoded (amount, currency, metadata[order_id], customer,
                             setup_future_usage, payment_method + off_session + confirm for a
                             saved card: then status "succeeded"), Authorization: Bearer <secret key>,
                             Idempotency-Key honoured (the same key answers the same object); JSON answers.
  POST /v1/customers         form-encoded (email, metadata[user_id]) → {"id": "cus_..."}.
  POST /v1/refunds           form-encoded (payment_intent, metadata[order_id]) → a refund of the
                             whole amount (unknown intent: 400 resource_missing); fake.refunds lists them.
Controls: fake.mode = "ok" | "402" (card_error, permanent) | "500"; fake.decline: customer ids whose
saved card is declined when a PaymentIntent is confirmed server-side (confirm=true, as Stripe: creating
an unconfirmed intent never declines);
fake.requests lists
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
        self.customers = {}
        self.refunds = {}
        self.decline = set()  # customers whose saved card is declined (402 card_declined)
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
                if self.path not in ("/v1/payment_intents", "/v1/customers", "/v1/refunds"):
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
                if mode == "402" or (form.get("customer") in fake.decline and form.get("confirm") == "true"):
                    return self.answer(402, {"error": {"type": "card_error", "code": "card_declined"}})
                if mode == "500":
                    return self.answer(500, {"error": {"type": "api_error"}})
                idem = self.headers.get("Idempotency-Key")
                if self.path == "/v1/refunds":
                    with fake.lock:
                        if idem and idem in fake.by_idem:
                            return self.answer(200, fake.refunds[fake.by_idem[idem]])
                        pi = fake.intents.get(form.get("payment_intent", ""))
                        if pi is None:
                            return self.answer(400, {"error": {"type": "invalid_request_error",
                                                               "code": "resource_missing"}})
                        rid = "re_" + secrets.token_hex(8)
                        fake.refunds[rid] = {"id": rid, "object": "refund", "payment_intent": pi["id"],
                                             "amount": pi["amount"], "status": "succeeded"}
                        if idem:
                            fake.by_idem[idem] = rid
                        return self.answer(200, fake.refunds[rid])
                if self.path == "/v1/customers":
                    with fake.lock:
                        if idem and idem in fake.by_idem:
                            return self.answer(200, fake.customers[fake.by_idem[idem]])
                        cid = "cus_" + secrets.token_hex(8)
                        fake.customers[cid] = {"id": cid, "object": "customer", "email": form.get("email"),
                                               "metadata": {"user_id": form.get("metadata[user_id]", "")}}
                        if idem:
                            fake.by_idem[idem] = cid
                        return self.answer(200, fake.customers[cid])
                with fake.lock:
                    if idem and idem in fake.by_idem:
                        return self.answer(200, fake.intents[fake.by_idem[idem]])
                    pid = "pi_" + secrets.token_hex(12)
                    intent = {"id": pid, "object": "payment_intent", "amount": int(form["amount"]),
                              "currency": form["currency"], "status": "requires_payment_method",
                              "client_secret": f"{pid}_secret_{secrets.token_hex(12)}",
                              "metadata": {"order_id": form.get("metadata[order_id]", "")}}
                    for k in ("customer", "payment_method", "setup_future_usage"):
                        if k in form:
                            intent[k] = form[k]
                    if form.get("confirm") == "true":
                        intent["status"] = "succeeded"
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
