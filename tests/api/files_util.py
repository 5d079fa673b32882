"""Helpers for the files tests: real images made here (PNG, GIF written by
hand, no imaging library needed), Office zips, and a real S3 service on a
free port: s3rver (tools/node) behind tools/node/sigv4-proxy.js, which
recomputes every request's SigV4 signature with AWS's own implementation
(@smithy/signature-v4) and refuses a mismatch as S3 does — s3rver alone
parses the signature but never checks it."""
import io
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
import zipfile
import zlib
from pathlib import Path

from conftest import SHARED_ENV, Server, free_port, serve_module

ROOT = Path(__file__).resolve().parents[2]
S3RVER = ROOT / "tools/node/node_modules/.bin/s3rver"
SIGV4_PROXY = ROOT / "tools/node/sigv4-proxy.js"
SIGNER = ROOT / "tools/node/node_modules/@smithy/signature-v4"
S3_KEY, S3_SECRET = "S3RVER", "S3RVER"  # s3rver's built-in account
BUCKET = "temel-files"
S3_REGION = "eu-central-1"  # not us-east-1, SigV4's usual default: a signer ignoring region= is refused
SUFFIX = "._S3rver_object"  # s3rver keeps each object's bytes in <bucket>/<key>._S3rver_object


def _chunk(kind, data):
    c = struct.pack(">I", len(data)) + kind + data
    return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(w, h, exif=None, rgb=True):
    """A valid PNG w x h with a gradient; exif: raw bytes for an eXIf chunk."""
    if rgb:
        rows = b"".join(b"\x00" + bytes(v for x in range(w)
                                         for v in (x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), 128))
                        for y in range(h))
        ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    else:
        rows = b"".join(b"\x00" + bytes(w) for _ in range(h))
        ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    out = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
    if exif is not None:
        out += _chunk(b"eXIf", exif)
    return out + _chunk(b"IDAT", zlib.compress(rows, 9)) + _chunk(b"IEND", b"")


def png_bomb(w, h):
    """A tiny file that claims w x h pixels (all zero, grey): a decompression bomb."""
    comp = zlib.compressobj(9)
    row = b"\x00" * (w + 1)
    data = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", data) + _chunk(b"IEND", b"")


def exif_with_gps():
    """A little-endian TIFF/EXIF block whose IFD0 has a GPS IFD pointer with a latitude."""
    # IFD0: 1 entry (GPSInfo 0x8825 -> offset 26); GPS IFD: 1 entry (GPSLatitudeRef 'N')
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHII", 0x8825, 4, 1, 26) + struct.pack("<I", 0)
    gps = struct.pack("<H", 1) + struct.pack("<HHI4s", 0x0001, 2, 2, b"N\x00\x00\x00") + struct.pack("<I", 0)
    return b"II*\x00" + struct.pack("<I", 8) + ifd0 + gps + b"GPSMARKER-41.0082N-28.9784E"


def office_zip(kind="docx", extra=None):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml" if kind == "docx" else "xl/workbook.xml", "<x/>")
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return b.getvalue()


def zip_bomb():
    """An Office-looking zip with one entry that inflates ~1000x (300 MiB declared)."""
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<x/>")
        with z.open("word/media/big.bin", "w", force_zip64=True) as f:
            chunk = b"\x00" * (1 << 20)
            for _ in range(300):
                f.write(chunk)
    return b.getvalue()


class S3rver:
    """s3rver on a free port with its own directory and one bucket, reached only through the SigV4
    verifier (sigv4-proxy.js, on a port it picks): endpoint/url/env point at the verifier, which
    knows the same secret (S3_SECRET)."""

    def __init__(self, bucket=BUCKET):
        for tool in (S3RVER, SIGNER):
            if not tool.exists():  # a missing tool is a failure, never a silent skip
                import pytest
                pytest.fail(f"{tool} is missing: run scripts/node-deps.sh (make deps)", pytrace=False)
        self.bucket = bucket
        self.dir = Path(tempfile.mkdtemp(prefix="temel-s3-"))
        self.port = free_port()
        self.log = open(self.dir / "s3rver.log", "wb")
        self.proc = subprocess.Popen(
            [str(S3RVER), "--address", "127.0.0.1", "--port", str(self.port), "--directory", str(self.dir / "data"),
             "--configure-bucket", bucket, "--silent"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"s3rver exited: {(self.dir / 's3rver.log').read_text()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("s3rver did not start")
        self.proxy_log = open(self.dir / "sigv4-proxy.log", "wb")
        self.proxy = subprocess.Popen(
            ["node", str(SIGV4_PROXY), f"http://127.0.0.1:{self.port}", S3_REGION], stdout=subprocess.PIPE,
            stderr=self.proxy_log, stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET})
        line = self.proxy.stdout.readline().decode()  # "listening <port>" once it listens (EOF if it died)
        if not line.startswith("listening "):
            self.stop()
            raise RuntimeError(f"sigv4-proxy did not start: {line!r}")
        self.endpoint = f"http://127.0.0.1:{int(line.split()[1])}"

    def refusals(self):
        """The verifier's log: one line per refused request (method, path, status, S3 error code)."""
        self.proxy_log.flush()
        return (self.dir / "sigv4-proxy.log").read_text()

    @property
    def url(self):
        return f"s3://{self.bucket}?endpoint={self.endpoint}&region={S3_REGION}"

    def env(self):
        return {"TEMEL_STORAGE_URL": self.url, "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET}

    def objects(self):
        d = self.dir / "data" / self.bucket
        return sorted(str(p.relative_to(d))[: -len(SUFFIX)] for p in d.rglob("*" + SUFFIX)) if d.is_dir() else []

    def object_bytes(self, key):
        p = self.dir / "data" / self.bucket / (key + SUFFIX)
        return p.read_bytes() if p.exists() else None

    def stop(self):
        for proc in (getattr(self, "proxy", None), self.proc):
            if proc is not None and proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        if getattr(self, "proxy", None) is not None:
            self.proxy.stdout.close()
            self.proxy_log.close()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def module_server(db_factory, **env):
    """Generator for a module-scoped fixture: one server with env; stopped at the end (exit 0, no sanitizer report)."""
    yield from serve_module(db_factory, Server(db_factory.new_url(), env={**SHARED_ENV, "TEMEL_JOB_POLL_MS": "50", **env}))
