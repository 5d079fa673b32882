"""Local stand-ins for the social networks the server publishes to. Each checks the wire format
the real API documents and answers like it:

  Mastodon  POST /api/v1/statuses   Authorization: Bearer <token>, Content-Type: application/json,
            Idempotency-Key; body {"status", "visibility"?, ...} → 200 {"id", "url", "content", ...};
            the same Idempotency-Key again returns the first status (Mastodon keeps keys for 1 h)
  X API v2  POST /2/tweets          Authorization: Bearer <OAuth 2.0 user token>,
            Content-Type: application/json; body {"text"} → 201 {"data": {"id", "text", ...}}

A request in the wrong format gets the network's own 4xx (401 bad token, 422/400 bad body), which
the server must treat as a permanent failure. `fail_next` makes the next requests answer a given
status first (e.g. 503 for retries)."""
import http.server
import itertools
import json
import threading

_ids = itertools.count(109000000000000000)


class SocialStandIn:
    def __init__(self, tokens):
        self.tokens = set(tokens)      # valid bearer tokens
        self.requests = []             # (network, path, headers dict lower-case, parsed body)
        self.fail_next = []            # statuses to answer before succeeding
        self.published = []            # (network, id, text)
        self.idem = {}
        stand = self
        lock = threading.Lock()

        class H(http.server.BaseHTTPRequestHandler):
            def _send(self, status, obj):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(n)
                hdrs = {k.lower(): v for k, v in self.headers.items()}
                net = "mastodon" if self.path == "/api/v1/statuses" else "x" if self.path == "/2/tweets" else None
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = None
                with lock:
                    stand.requests.append((net, self.path, hdrs, body))
                    fail = stand.fail_next.pop(0) if stand.fail_next else None
                if net is None:
                    return self._send(404, {"error": "Record not found"})
                auth = hdrs.get("authorization", "")
                if not auth.startswith("Bearer ") or auth[7:] not in stand.tokens:
                    return self._send(401, {"error": "The access token is invalid"} if net == "mastodon" else
                                      {"title": "Unauthorized", "type": "about:blank", "status": 401})
                if not hdrs.get("content-type", "").startswith("application/json") or not isinstance(body, dict):
                    return self._send(422 if net == "mastodon" else 400, {"error": "bad body"})
                if fail:
                    return self._send(fail, {"error": "try again later"})
                if net == "mastodon":
                    key = hdrs.get("idempotency-key")
                    if not key or not isinstance(body.get("status"), str) or len(body["status"]) > 500 or \
                            set(body) - {"status", "visibility", "media_ids", "sensitive", "spoiler_text",
                                         "language", "in_reply_to_id", "scheduled_at"}:
                        return self._send(422, {"error": "Validation failed"})
                    with lock:
                        if key in stand.idem:
                            return self._send(200, stand.idem[key])
                        sid = str(next(_ids))
                        st = {"id": sid, "url": f"https://mastodon.example/@me/{sid}", "content":
                              f"<p>{body['status']}</p>", "visibility": body.get("visibility", "public")}
                        stand.idem[key] = st
                        stand.published.append(("mastodon", sid, body["status"]))
                    return self._send(200, st)
                if not isinstance(body.get("text"), str) or len(body["text"]) > 280 or \
                        set(body) - {"text", "media", "reply", "quote_tweet_id", "poll", "reply_settings"}:
                    return self._send(400, {"title": "Invalid Request", "detail": "bad text"})
                with lock:
                    tid = str(next(_ids))
                    stand.published.append(("x", tid, body["text"]))
                return self._send(201, {"data": {"id": tid, "text": body["text"],
                                                 "edit_history_tweet_ids": [tid]}})

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
