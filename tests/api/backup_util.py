"""s3rver (tools/node; it parses SigV4 and looks up the access key id but does not verify signatures) on a free
port for the backup upload test."""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import REPO_ROOT, free_port

S3RVER = REPO_ROOT / "tools/node/node_modules/.bin/s3rver"
BUCKET = "backups-test"


class S3:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="temel-backup-s3-"))
        self.port = free_port()
        self.logf = open(self.dir / "s3rver.log", "wb")
        self.proc = subprocess.Popen(
            [str(S3RVER), "--address", "127.0.0.1", "--port", str(self.port), "--directory", str(self.dir / "data"),
             "--configure-bucket", BUCKET, "--silent"],
            stdout=self.logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 30  # hang guard for the start-up
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError((self.dir / "s3rver.log").read_text()[-2000:])
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("s3rver did not start")
                time.sleep(0.1)
        self.url = f"s3://{BUCKET}?endpoint=http://127.0.0.1:{self.port}&region=us-east-1"
        self.env = {"AWS_ACCESS_KEY_ID": "S3RVER", "AWS_SECRET_ACCESS_KEY": "S3RVER"}

    def object_bytes(self, key):
        """s3rver keeps an object's bytes in <bucket>/<key>._S3rver_object."""
        p = self.dir / "data" / BUCKET / (key + "._S3rver_object")
        return p.read_bytes() if p.exists() else None

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.logf.close()
        shutil.rmtree(self.dir, ignore_errors=True)
