"""Starting a `kai serve` for the knowledge benchmarks, and talking to it over HTTP.

A server gets a fresh data directory (SQLite inside it), an admin created with `kai user
create --admin` (password on stdin), `kai serve --bind 127.0.0.1:0` with a clean environment
(kai refuses KAI_* variables it does not know), a login and an API key with the read and write
scopes, as crates/kai-cli/tests/support/mod.rs does.

With a `Postgres` (run.sh --postgres URL), the server's database is that PostgreSQL database,
dropped and made afresh (with the pgvector extension) for each new server, and search runs
inside it (`KAI_KNOWLEDGE_SEARCH_INDEX=database`: kai refuses to start without pgvector 0.8+).
Queries of the benchmark's own go through `psql` (no Python driver needed).
"""

import csv
import io

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


class Postgres:
    """A PostgreSQL database for kai: `url` is what kai connects with; `admin_url` (a superuser
    on the same server, by default `postgres` and its `postgres` database) drops and creates
    that database, owned by the URL's role, and creates the pgvector extension in it."""

    def __init__(self, url, psql="psql", admin_url=None):
        self.url = url
        self.psql = psql
        parts = urllib.parse.urlsplit(url)
        self.dbname = parts.path.lstrip("/")
        self.role = urllib.parse.unquote(parts.username or "")
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", self.dbname) or not self.role:
            raise KaiError(f"--postgres wants postgres://ROLE[:PASSWORD]@HOST:PORT/DATABASE "
                           f"with a plain database name, not {url!r}")
        if admin_url is None:
            netloc = "postgres@" + parts.netloc.rsplit("@", 1)[-1]
            admin_url = urllib.parse.urlunsplit((parts.scheme, netloc, "/postgres", "", ""))
        self.admin_url = admin_url

    def _psql(self, url, sql, csv_out=False):
        cmd = [self.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url]
        if csv_out:
            cmd += ["--csv"]
        cmd += ["-c", sql]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            raise KaiError(f"psql: {sql[:200]}: {out.stderr.strip()}")
        return out.stdout

    def admin(self, sql):
        return self._psql(self.admin_url, sql)

    def fresh(self):
        """Drops the database and makes it again, empty but for pgvector."""
        self.admin(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')
        self.admin(f'CREATE DATABASE "{self.dbname}" OWNER "{self.role}"')
        db_admin = urllib.parse.urlunsplit(
            urllib.parse.urlsplit(self.admin_url)._replace(path="/" + self.dbname))
        self._psql(db_admin, "CREATE EXTENSION IF NOT EXISTS vector")
        self._db_admin = db_admin
        return self

    def drop(self):
        self.admin(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')

    def rows(self, sql):
        """The rows of a query in kai's database (as the admin, who may read everything), as
        lists of strings (NULL as an empty string)."""
        text = self._psql(getattr(self, "_db_admin", self.url), sql, csv_out=True)
        return list(csv.reader(io.StringIO(text)))[1:]

    def copy_rows(self, sql):
        """Like `rows`, for large results: COPY (...) TO STDOUT as CSV."""
        text = self._psql(getattr(self, "_db_admin", self.url),
                          f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)")
        return list(csv.reader(io.StringIO(text)))

    def backend_pids(self):
        """The server processes serving connections to this database (kai's pool)."""
        return [int(r[0]) for r in self.rows(
            f"SELECT pid FROM pg_stat_activity WHERE datname = '{self.dbname}' "
            f"AND pid <> pg_backend_pid() AND backend_type = 'client backend'")]

    def version(self):
        return self.rows("SELECT current_setting('server_version'), "
                         "(SELECT extversion FROM pg_extension WHERE extname = 'vector')")[0]


def proc_cpu_seconds(pid):
    """User + system CPU time of a process so far (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Kai:
    """A running `kai serve`. `data_dir` may be reused by a later server (restart). With
    `postgres`, its database is that PostgreSQL database (made afresh by `start`, unless the
    server restarts on its data) and search runs inside it."""

    def __init__(self, binary, models_dir, env=None, cpus=None, data_dir=None, log_path=None,
                 postgres=None):
        self.postgres = postgres
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
        if self.postgres:
            env["KAI_DATABASE_URL"] = self.postgres.url
            env["KAI_KNOWLEDGE_SEARCH_INDEX"] = "database"
        env.update(self.extra_env)
        return env

    def start(self, create_user=True):
        os.makedirs(self.home, exist_ok=True)
        if create_user and self.postgres:
            self.postgres.fresh()
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

    def count_chunks(self):
        if self.postgres:
            return int(self.postgres.rows("SELECT count(*) FROM chunks")[0][0])
        import sqlite3
        con = sqlite3.connect(f"file:{self.db_path()}?mode=ro", uri=True)
        try:
            return con.execute("SELECT count(*) FROM chunks").fetchone()[0]
        finally:
            con.close()

    def read_chunks(self, model="local/minilm", only_embedded=False):
        """kai's chunks, by id: (id, item_id, heading, text, vector of `model` as little-endian
        f32 bytes or None). Vectors live in `chunk_vectors` since migration 0007 (on SQLite
        older databases kept them in `chunks.embedding`)."""
        join = "JOIN" if only_embedded else "LEFT JOIN"
        if self.postgres:
            rows = self.postgres.copy_rows(
                "SELECT c.id, c.item_id, coalesce(c.heading, ''), c.text, "
                "encode(v.embedding, 'hex') FROM chunks c "
                f"{join} chunk_vectors v ON v.chunk_id = c.id AND v.model = '{model}' "
                "ORDER BY c.id")
            return [(int(cid), item, heading or None, text,
                     bytes.fromhex(hexv) if hexv else None)
                    for cid, item, heading, text, hexv in rows]
        import sqlite3
        con = sqlite3.connect(f"file:{self.db_path()}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "chunk_vectors" in tables:
                rows = con.execute(
                    "SELECT c.id, c.item_id, c.heading, c.text, v.embedding FROM chunks c "
                    f"{join} chunk_vectors v ON v.chunk_id = c.id AND v.model = ? "
                    "ORDER BY c.id", (model,)).fetchall()
            else:
                rows = con.execute(
                    "SELECT id, item_id, heading, text, embedding FROM chunks "
                    + ("WHERE embedding IS NOT NULL " if only_embedded else "")
                    + "ORDER BY id").fetchall()
        finally:
            con.close()
        return rows

    def db_cpu_seconds(self):
        """CPU time so far of the PostgreSQL backends now serving this server (0 on SQLite):
        only those alive now, so read it around a stretch in which the pool stays open."""
        if not self.postgres:
            return 0.0
        return sum(proc_cpu_seconds(p) for p in self.postgres.backend_pids())

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
        if self.postgres:
            try:
                self.postgres.drop()
            except KaiError:
                pass
        if self.own_dir:
            shutil.rmtree(self.root, ignore_errors=True)
