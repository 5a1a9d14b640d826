"""Starting a `kai serve` for the knowledge benchmarks, and talking to it over HTTP.

A server gets a fresh data directory (SQLite inside it), an admin created with `kai user
create --admin` (password on stdin), `kai serve --bind 127.0.0.1:0` with a clean environment
(kai refuses KAI_* variables it does not know), a login and an API key with the read and write
scopes, as crates/kai-cli/tests/support/mod.rs does.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

PASSWORD = "correct horse battery"
USER = "bench"


class KaiError(RuntimeError):
    pass


def _request(method, url, body=None, headers=None, timeout=600):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class Kai:
    """A running `kai serve`. `data_dir` may be reused by a later server (restart)."""

    def __init__(self, binary, models_dir, env=None, cpus=None, data_dir=None, log_path=None):
        self.binary = binary
        self.models_dir = models_dir
        self.extra_env = dict(env or {})
        self.cpus = cpus
        self.own_dir = data_dir is None
        self.root = data_dir or tempfile.mkdtemp(prefix="kai-bench-knowledge.")
        self.data_dir = os.path.join(self.root, "data")
        self.home = os.path.join(self.root, "home")
        self.log_path = log_path or os.path.join(self.root, "serve.log")
        self.proc = None
        self.base = None
        self.key = None

    def env(self):
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": self.home,
            "XDG_CONFIG_HOME": os.path.join(self.home, "config"),
            "XDG_DATA_HOME": os.path.join(self.home, "data"),
            "KAI_DATA_DIR": self.data_dir,
            "KAI_LOCAL_MODELS_DIR": self.models_dir,
        }
        env.update(self.extra_env)
        return env

    def start(self, create_user=True):
        os.makedirs(self.home, exist_ok=True)
        if create_user:
            out = subprocess.run(
                [self.binary, "user", "create", "--admin", USER],
                input=PASSWORD + "\n", env=self.env(), capture_output=True, text=True)
            if out.returncode != 0:
                raise KaiError(f"kai user create failed: {out.stderr.strip()}")
        cmd = [self.binary, "serve", "--bind", "127.0.0.1:0"]
        if self.cpus is not None:
            cmd = ["taskset", "-c", str(self.cpus)] + cmd
        log = open(self.log_path, "ab")
        offset = log.tell()
        self.proc = subprocess.Popen(cmd, env=self.env(), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=log)
        log.close()
        deadline = time.time() + 120
        while True:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode("utf-8", "replace")
            starts = [m.group(1) for m in re.finditer(r"kai listening on (http://[^\s\"')]+)", text)]
            if starts:
                self.base = starts[-1]
                break
            if self.proc.poll() is not None:
                raise KaiError(f"kai serve exited with {self.proc.returncode}: {text[-2000:]}")
            if time.time() > deadline:
                raise KaiError(f"kai serve did not start: {text[-2000:]}")
            time.sleep(0.05)
        status, body = self.post("/api/v1/auth/login", {"username": USER, "password": PASSWORD},
                                 auth=False)
        if status != 200:
            raise KaiError(f"login: {status} {body[:300]!r}")
        token = json.loads(body)["access_token"]
        status, body = _request("POST", self.base + "/api/v1/keys",
                                json.dumps({"name": "bench", "scopes": ["read", "write"]}).encode(),
                                {"Authorization": f"Bearer {token}",
                                 "Content-Type": "application/json"})
        if status != 201:
            raise KaiError(f"create key: {status} {body[:300]!r}")
        self.key = json.loads(body)["key"]
        return self

    @property
    def pid(self):
        return self.proc.pid

    def headers(self, content_type="application/json"):
        return {"Authorization": f"Bearer {self.key}", "Content-Type": content_type}

    def post(self, path, payload, auth=True, timeout=600):
        headers = self.headers() if auth else {"Content-Type": "application/json"}
        return _request("POST", self.base + path, json.dumps(payload).encode(), headers, timeout)

    def get_json(self, path):
        status, body = _request("GET", self.base + path, None, self.headers())
        if status != 200:
            raise KaiError(f"GET {path}: {status} {body[:300]!r}")
        return json.loads(body)

    def upload(self, name, data):
        status, body = _request("POST", self.base + "/api/v1/artifacts?name=" +
                                urllib.parse.quote(name), data,
                                self.headers("application/octet-stream"))
        if status not in (200, 201):
            raise KaiError(f"upload {name}: {status} {body[:300]!r}")
        return json.loads(body)

    def search(self, query, mode, limit, fusion=None):
        payload = {"query": query, "mode": mode, "limit": limit}
        if fusion:
            payload["fusion"] = fusion
        status, body = self.post("/api/v1/search", payload)
        if status != 200:
            raise KaiError(f"search ({mode}): {status} {body[:300]!r}")
        return json.loads(body)

    def embed(self, texts, batch=64):
        """Vectors of `local/minilm` from kai's OpenAI-compatible endpoint."""
        out = []
        for at in range(0, len(texts), batch):
            status, body = self.post("/v1/embeddings",
                                     {"model": "local/minilm", "input": texts[at:at + batch]})
            if status != 200:
                raise KaiError(f"/v1/embeddings: {status} {body[:300]!r}")
            data = sorted(json.loads(body)["data"], key=lambda d: d["index"])
            out.extend(d["embedding"] for d in data)
        return out

    def status(self):
        return self.get_json("/api/v1/knowledge/status")

    def wait_indexed(self, expected_items, timeout=7200, progress=None, allow_keyword_only=False):
        """Waits until every version is indexed (or keyword_only when that is expected) and
        the queue is empty; returns the last status."""
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            st = self.status()
            done = st["indexed"] + (st["keyword_only"] if allow_keyword_only else 0)
            if st != last and progress:
                progress(st)
            last = st
            if st["failed"] or st["jobs_dead"]:
                raise KaiError(f"indexing failed: {st}")
            if st["pending"] == 0 and done >= expected_items and st["jobs_running"] == 0 and \
                    (allow_keyword_only or st["jobs_queued"] == 0):
                return st
            if self.proc.poll() is not None:
                raise KaiError(f"kai serve exited with {self.proc.returncode}")
            time.sleep(0.2)
        raise KaiError(f"indexing did not finish: {last}")

    def rss_kib(self):
        """VmRSS and VmHWM of the server process, in KiB."""
        vals = {}
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    vals[line.split(":")[0]] = int(line.split()[1])
        return vals

    def cpu_seconds(self):
        """User + system CPU time of the server so far."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / ticks

    def db_path(self):
        return os.path.join(self.data_dir, "kai.db")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def remove(self):
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.root, ignore_errors=True)
