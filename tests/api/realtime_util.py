"""A small synchronous WebSocket client for the realtime tests (RFC 6455 framing over a plain socket):
tests need to control pongs (dead peers), batch frames into one TCP write and read close codes, which
python3-websockets' asyncio client hides. Every socket read has a timeout as a hang guard."""
import base64
import json
import os
import queue
import socket
import struct
import threading

from conftest import HTTP_TIMEOUT

OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 1, 2, 8, 9, 10


class Closed(Exception):
    def __init__(self, code, reason=""):
        super().__init__(f"closed {code} {reason}")
        self.code = code
        self.reason = reason


def frame(opcode, payload, mask=True):
    head = bytes([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mbit | n])
    elif n < 65536:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


class WS:
    def __init__(self, server, path="/api/v1/realtime", auto_pong=True, timeout=HTTP_TIMEOUT, headers=None,
                 version="13"):
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
        self.auto_pong = auto_pong
        self.pings = 0
        key = base64.b64encode(os.urandom(16)).decode()
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: {version}\r\n{extra}\r\n")
        self.sock.sendall(req.encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise Closed(None, "EOF during the handshake")
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {ln.split(":", 1)[0].strip().lower(): ln.split(":", 1)[1].strip() for ln in lines[1:]}
        if self.status == 101:
            assert self.headers["sec-websocket-accept"]
            self.timeout = timeout
            self.q = queue.Queue()
            threading.Thread(target=self._reader, daemon=True).start()
        else:  # the rest is the problem body
            n = int(self.headers.get("content-length", "0"))
            while len(self.buf) < n:
                self.buf += self.sock.recv(65536)
            self.body = json.loads(self.buf[:n])

    # -- sending
    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, obj):
        self.sock.sendall(frame(OP_TEXT, json.dumps(obj).encode()))

    def send_text(self, text):
        self.sock.sendall(frame(OP_TEXT, text.encode() if isinstance(text, str) else text))

    # -- receiving: a reader thread answers pings at once (like a real client) and queues the rest
    def _need(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise Closed(None, "EOF")
            self.buf += d

    def recv_frame(self):
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        n, off = b1 & 0x7F, 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack("!Q", self.buf[2:10])[0], 10
        assert not (b1 & 0x80), "server frames are never masked"
        self._need(off + n)
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return b0 & 0x0F, payload

    def _reader(self):
        try:
            while True:
                op, payload = self.recv_frame()
                if op == OP_PING:
                    self.pings += 1
                    if self.auto_pong:
                        self.sock.sendall(frame(OP_PONG, payload))
                elif op == OP_TEXT:
                    self.q.put(json.loads(payload))
                elif op == OP_CLOSE:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    self.q.put(Closed(code, payload[2:].decode(errors="replace")))
                    return
        except Closed as c:
            self.q.put(c)
        except OSError:
            self.q.put(Closed(None, "reset"))

    def recv(self, timeout=None):
        """The next JSON text message; Closed once the server has closed; queue.Empty after timeout."""
        m = self.q.get(timeout=timeout or self.timeout)
        if isinstance(m, Closed):
            self.q.put(m)  # stays closed
            raise m
        return m

    def recv_until(self, pred, limit=200):
        for _ in range(limit):
            m = self.recv()
            if pred(m):
                return m
        raise AssertionError("no matching message")

    def recv_closed(self):
        """Read until the server closes; returns the close code (None for a bare TCP close)."""
        try:
            while True:
                self.recv()
        except Closed as c:
            return c.code

    def auth(self, token):
        self.send({"type": "auth", "token": token})
        m = self.recv()
        assert m["type"] == "ready", m
        return m

    def subscribe(self, channel):
        self.send({"type": "subscribe", "channel": channel})
        return self.recv_until(lambda m: m.get("channel") == channel and m["type"] in ("subscribed", "error"))

    def close(self):
        """Leave: a close frame, then the socket. The server may have ended the connection first
        (a ping answered late on a loaded machine): ending it again is not an error."""
        try:
            self.sock.sendall(frame(OP_CLOSE, struct.pack("!H", 1000)))
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def token_of(headers):
    return headers["Authorization"].split(" ", 1)[1]


def event_of(ws, event):
    return ws.recv_until(lambda m: m["type"] == "event" and m["event"] == event)
