#!/usr/bin/env python3
"""Files used by other modules (bench for the files helper's work): POST /me/photo (a 77 KiB PNG of
noise becomes a file: decode on the worker pool, storage, row, variants job) and the reads that serve files
through files_send — GET /me/photo, a public product image, a ticket attachment — with wrk.

usage: DATABASE_URL=sqlite:///tmp/x.db bench/file_refs.py   (TEMEL_BIN: the binary; default build/temel)
Prints uploads/s with p50/p99 and wrk's requests/s and latency for each read."""
import os
import re
import struct
import subprocess
import sys
import uuid
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import call, latency, serve, timed  # noqa: E402

import http.client  # noqa: E402


def png(w, h):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    rows = b"".join(b"\x00" + os.urandom(w * 3) for _ in range(h))  # noise: does not compress
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 1)) + chunk(b"IEND", b""))


def multipart(port, path, token, field, data, extra=None):
    b = "benchboundary" + uuid.uuid4().hex
    body = b""
    for k, v in (extra or {}).items():
        body += f"--{b}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode()
    body += (f"--{b}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"a.png\"\r\n\r\n").encode()
    body += data + f"\r\n--{b}--\r\n".encode()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("POST", path, body=body, headers={"Authorization": "Bearer " + token,
                                                "Content-Type": f"multipart/form-data; boundary={b}"})
    r = c.getresponse()
    out = r.read()
    c.close()
    return r.status, out


def wrk(port, path, token=None, seconds=5, conns=16):
    cmd = ["wrk", "-t2", f"-c{conns}", f"-d{seconds}s", "--latency"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run(cmd + [f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, timeout=120).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)
    p50 = re.search(r"50%\s+(\S+)", out).group(1)
    p99 = re.search(r"99%\s+(\S+)", out).group(1)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return f"{float(rps):.0f} req/s, p50 {p50}, p99 {p99}" + (f", NON-2XX {non2xx.group(1)}" if non2xx else "")


def main():
    with serve("temel-bench-files-", ("bench-admin@example.com", "bench admin password 1")) as s:
        st, u = call(s.port, "POST", "/api/v1/auth/register", {"email": "b@example.com", "name": "b",
                                                                "password": "correct horse battery staple"})
        assert st == 201, u
        tok = u["access_token"]
        img = png(160, 160)
        n = 200
        res, wall, lat = timed(lambda i: multipart(s.port, "/api/v1/me/photo", tok, "photo", img)[0], range(n), 4)
        assert all(r == 201 for r in res), res[:5]
        print(f"[{s.engine}] POST /me/photo ({len(img)} B PNG) x{n}, 4 clients: {n / wall:.0f}/s, {latency(lat)}")
        print(f"[{s.engine}] GET /me/photo: {wrk(s.port, '/api/v1/me/photo', tok)}")
        st, cat = call(s.port, "POST", "/api/v1/categories", {"slug": "bench", "name": {"tr": "B", "en": "B", "pl": "B"}},
                       s.admin)
        st, p = call(s.port, "POST", "/api/v1/products", {"category": "bench", "price": 1, "name": {"tr": "P", "en": "P",
                                                                                                 "pl": "P"}}, s.admin)
        st, f = multipart(s.port, "/api/v1/files", s.admin, "file", img, {"purpose": "product"})
        import json
        fid = json.loads(f)["id"]
        st, p = call(s.port, "POST", f"/api/v1/products/{p['id']}/images", {"file_id": fid}, s.admin)
        assert st == 201, p
        print(f"[{s.engine}] GET product image (public): {wrk(s.port, p['images'][0]['url'])}")
        st, t = call(s.port, "POST", "/api/v1/tickets", {"subject": "b", "description": "b"}, tok)
        st, f = multipart(s.port, "/api/v1/files", tok, "file", b"log line\n" * 100)
        aid = json.loads(f)["id"]
        st, m = call(s.port, "POST", f"/api/v1/tickets/{t['id']}/messages", {"body": "b", "attachments": [aid]}, tok)
        assert st == 201, m
        print(f"[{s.engine}] GET ticket attachment (owner): {wrk(s.port, m['attachments'][0]['url'], tok)}")


if __name__ == "__main__":
    main()
