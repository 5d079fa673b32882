"""A local fake AI provider for the tests and the bench (never part of the server).

It speaks the three wire formats temel's real client sends:
  POST {base}/chat/completions                  OpenAI-compatible   (Authorization: Bearer KEY)
  POST {base}/messages                          Anthropic messages  (x-api-key: KEY, anthropic-version)
  POST {base}/models/{model}:generateContent    Gemini              (x-goog-api-key: KEY)
with base = http://127.0.0.1:PORT/v1. The answer echoes the last user message ("echo: ...").

Behaviour is controlled per key or globally:
  fake.set_key("sk-bad", "401")         this key always gets the mode
  fake.set_mode("500", count=3)         the next 3 requests get the mode (count=None: until reset)
  fake.set_failures({"500": .1, "429": .1, "malformed": .05, "400": .05}, seed=1)   random injection
  fake.delay_ms = 2000                  every request waits this long first
Modes: ok, 400, 401, 403, 429, 500, 503, malformed (200 with broken JSON), empty (200, JSON without text),
slow:<ms>. The same controls exist over HTTP: POST /_control {"mode", "count", "keys": {key: mode},
"failures": {...}, "seed", "delay_ms"}; POST /_reset; GET /_stats.

Standalone (bench): /usr/bin/python3 tests/api/fake_provider.py --port 18999
"""
import argparse
import json
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


class _State:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.key_modes = {}
        self.mode = None
        self.count = None
        self.failures = {}
        self.rng = random.Random(0)
        self.delay_ms = 0
        self.requests = 0
        self.by_key = {}
        self.by_format = {}
        self.bodies = []
        self.in_flight = 0

    def pick(self, key):
        with self.lock:
            self.requests += 1
            self.by_key[key] = self.by_key.get(key, 0) + 1
            if key in self.key_modes:
                return self.key_modes[key]
            if self.mode is not None and (self.count is None or self.count > 0):
                if self.count is not None:
                    self.count -= 1
                return self.mode
            x = self.rng.random()
            acc = 0.0
            for mode, p in sorted(self.failures.items()):
                acc += p
                if x < acc:
                    return mode
            return "ok"


def _text_of_last_user(fmt, body):
    try:
        if fmt == "gemini":
            for c in reversed(body.get("contents", [])):
                if c.get("role") == "user":
                    return "".join(p.get("text", "") for p in c.get("parts", []))
        else:
            for m in reversed(body.get("messages", [])):
                if m.get("role") == "user":
                    return m.get("content", "")
    except AttributeError:
        pass
    return ""


def _answer(fmt, model, text, tin, tout):
    if fmt == "openai":
        return {"id": "chatcmpl-fake", "object": "chat.completion", "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": tin, "completion_tokens": tout, "total_tokens": tin + tout}}
    if fmt == "anthropic":
        return {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                "usage": {"input_tokens": tin, "output_tokens": tout}}
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
            "usageMetadata": {"promptTokenCount": tin, "candidatesTokenCount": tout,
                              "totalTokenCount": tin + tout}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state = None  # set per server

    def log_message(self, fmt, *args):  # quiet
        pass

    def _send(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        st = self.state
        if self.path == "/_stats":
            with st.lock:
                return self._send(200, {"requests": st.requests, "by_key": dict(st.by_key),
                                        "by_format": dict(st.by_format), "in_flight": st.in_flight})
        self._send(404, {"error": "not found"})

    def do_POST(self):
        st = self.state
        raw = self._body()
        if self.path == "/_reset":
            with st.lock:
                st.reset()
            return self._send(200, {"ok": True})
        if self.path == "/_control":
            c = json.loads(raw or b"{}")
            with st.lock:
                if "mode" in c:
                    st.mode, st.count = c["mode"], c.get("count")
                if "keys" in c:
                    st.key_modes.update(c["keys"])
                if "failures" in c:
                    st.failures = dict(c["failures"])
                    st.rng = random.Random(c.get("seed", 0))
                if "delay_ms" in c:
                    st.delay_ms = int(c["delay_ms"])
            return self._send(200, {"ok": True})

        path = self.path.split("?", 1)[0]
        if path.endswith("/chat/completions"):
            fmt, key = "openai", (self.headers.get("Authorization") or "").removeprefix("Bearer ")
        elif path.endswith("/messages"):
            fmt, key = "anthropic", self.headers.get("x-api-key") or ""
            if not self.headers.get("anthropic-version"):
                return self._send(400, {"type": "error", "error": {"message": "anthropic-version missing"}})
        elif path.endswith(":generateContent") and "/models/" in path:
            fmt, key = "gemini", self.headers.get("x-goog-api-key") or ""
        else:
            return self._send(404, {"error": "unknown endpoint"})
        with st.lock:
            st.by_format[fmt] = st.by_format.get(fmt, 0) + 1
            st.in_flight += 1
            delay = st.delay_ms
        try:
            if not key:
                return self._send(401, {"error": {"message": "no API key"}})
            mode = st.pick(key)
            if mode.startswith("slow:"):
                delay, mode = int(mode[5:]), "ok"
            if delay:
                time.sleep(delay / 1000.0)
            try:
                body = json.loads(raw)
            except ValueError:
                return self._send(400, {"error": {"message": "bad JSON"}})
            if fmt == "openai":
                model = body.get("model")
            elif fmt == "anthropic":
                model = body.get("model")
                if not isinstance(body.get("max_tokens"), int):
                    return self._send(400, {"type": "error", "error": {"message": "max_tokens required"}})
            else:
                model = path.rsplit("/models/", 1)[1].split(":", 1)[0]
            if mode in ("400", "401", "403", "429", "500", "503"):
                # a real provider may echo part of the key: the server must never pass it on
                return self._send(int(mode), {"error": {"message": f"fake {mode} for key {key}"}})
            if mode == "malformed":
                return self._send(200, b'{"choices": [{"message": {"content": "trunc', "application/json")
            if mode == "empty":
                return self._send(200, {"unexpected": True})
            prompt = _text_of_last_user(fmt, body)
            text = "echo: " + prompt
            return self._send(200, _answer(fmt, model, text, max(1, len(prompt.split())),
                                           max(1, len(text.split()))))
        finally:
            with st.lock:
                st.in_flight -= 1


class FakeProvider:
    """In-process fake: start(), .base (http://127.0.0.1:PORT/v1), controls, stop()."""

    def __init__(self, port=0):
        self.state = _State()
        handler = type("H", (_Handler,), {"state": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base = f"http://127.0.0.1:{self.port}/v1"
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    # controls
    def reset(self):
        with self.state.lock:
            self.state.reset()

    def set_key(self, key, mode):
        with self.state.lock:
            self.state.key_modes[key] = mode

    def set_mode(self, mode, count=None):
        with self.state.lock:
            self.state.mode, self.state.count = mode, count

    def set_failures(self, failures, seed=0):
        with self.state.lock:
            self.state.failures = dict(failures)
            self.state.rng = random.Random(seed)

    def set_delay(self, ms):
        with self.state.lock:
            self.state.delay_ms = ms

    def stats(self):
        with self.state.lock:
            return {"requests": self.state.requests, "by_key": dict(self.state.by_key),
                    "by_format": dict(self.state.by_format), "in_flight": self.state.in_flight}


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=18999)
    a = ap.parse_args()
    f = FakeProvider(a.port)
    print(f"fake provider on {f.base}", flush=True)
    f.httpd.serve_forever()


@pytest.fixture(scope="module")
def fake_provider():
    """One fake provider for a test module (import this fixture by name)."""
    f = FakeProvider().start()
    yield f
    f.stop()
