#!/usr/bin/env python3
"""How long an agent run takes to resume after `kill -9` of the kai that was working on it.

A scripted OpenAI-compatible upstream (this file, on a loopback port) answers a run of one
step: a plan, a `write_file` call, then a model call that never answers. When that call
arrives the server is killed with SIGKILL and started again; the figure is the time from the
restart to the resumed run's first model call (the repeated one), with the start-up of
`kai serve` broken out. The write must not be repeated: the harness checks that the file was
written once and that the run ends succeeded.

Usage: bench/agents/resume.py KAI_BINARY [ROUNDS] [DATABASE_URL]
With a PostgreSQL URL the run waits for its lease (30 s) to run out; with SQLite (the default)
a start ends the leases the dead process left at once.
"""

import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PASSWORD = "correct horse battery"


class Upstream(BaseHTTPRequestHandler):
    calls = []
    lock = threading.Lock()
    arrived = {}

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("content-length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        with Upstream.lock:
            n = len(Upstream.calls)
            Upstream.calls.append(body)
            Upstream.arrived[n] = time.monotonic()
        if n % 4 == 0:
            content = json.dumps({"steps": [{"title": "Write", "instructions": "write"}]})
            message = {"role": "assistant", "content": content}
        elif n % 4 == 1:
            message = {"role": "assistant", "content": None, "tool_calls": [{
                "id": "call_1", "type": "function", "function": {
                    "name": "write_file",
                    "arguments": json.dumps({"path": "once.txt", "content": "x"})}}]}
        elif n % 4 == 2:
            # The call the server dies during: never answered.
            time.sleep(3600)
            return
        else:
            message = {"role": "assistant", "content": "Done."}
        answer = json.dumps({
            "id": "c", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


def api(base, method, path, token=None, body=None):
    request = urllib.request.Request(base + path, method=method)
    if token:
        request.add_header("authorization", f"Bearer {token}")
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        request.add_header("content-type", "application/json")
    with urllib.request.urlopen(request, data, timeout=30) as response:
        text = response.read()
        return json.loads(text) if text else None


def serve(kai, env, log):
    process = subprocess.Popen([kai, "serve", "--bind", "127.0.0.1:0"], env=env,
                               stdout=subprocess.DEVNULL, stderr=log)
    started = time.monotonic()
    while True:
        with open(log.name) as text:
            for line in text:
                if "kai listening on http://" in line:
                    url = line.split("kai listening on ")[1].split()[0]
                    return process, url, time.monotonic() - started
        if process.poll() is not None:
            sys.exit(f"kai serve exited: {open(log.name).read()}")
        time.sleep(0.01)


def one_round(kai, database_url):
    Upstream.calls.clear()
    Upstream.arrived.clear()
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    work = tempfile.mkdtemp(prefix="kai-resume-")
    config = os.path.join(work, "config", "kai")
    os.makedirs(config)
    with open(os.path.join(config, "kai.toml"), "w") as f:
        f.write(f"""
[agents]
default_model = "smart"
[[providers]]
name = "mock"
kind = "openai-compatible"
base_url = "http://127.0.0.1:{upstream.server_port}/v1"
[[models]]
name = "smart"
deployments = [{{ provider = "mock", model = "m" }}]
""")
    env = {"PATH": os.environ["PATH"], "HOME": work, "XDG_CONFIG_HOME": os.path.join(work, "config"),
           "KAI_DATA_DIR": os.path.join(work, "data"), "KAI_LOG_LEVEL": "info"}
    if database_url:
        env["KAI_DATABASE_URL"] = database_url
    # With a PostgreSQL database shared by the rounds, alice is there from the first round on.
    subprocess.run([kai, "user", "create", "--admin", "alice"], env=env, input=PASSWORD + "\n",
                   text=True, check=not database_url, capture_output=True)
    log = open(os.path.join(work, "serve.log"), "w")
    process, base, _ = serve(kai, env, log)
    token = api(base, "POST", "/api/v1/auth/login", body={"username": "alice", "password": PASSWORD})["access_token"]
    agent = "w-" + os.path.basename(work)
    api(base, "POST", "/api/v1/agents", token, {"name": agent, "definition": {"instructions": "Write.", "tools": ["write_file"]}})
    run = api(base, "POST", f"/api/v1/agents/{agent}/runs", token, {"goal": "write once"})["id"]
    while len(Upstream.calls) < 3:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    restart = time.monotonic()
    log2 = open(os.path.join(work, "serve2.log"), "w")
    process, base, startup = serve(kai, env, log2)
    while len(Upstream.calls) < 4:
        time.sleep(0.001)
    resumed = Upstream.arrived[3] - restart
    token = api(base, "POST", "/api/v1/auth/login", body={"username": "alice", "password": PASSWORD})["access_token"]
    for _ in range(500):
        status = api(base, "GET", f"/api/v1/runs/{run}", token)
        if status["status"] in ("succeeded", "failed"):
            break
        time.sleep(0.02)
    assert status["status"] == "succeeded", status
    assert status["usage"]["tool_calls"] == 1, status
    process.send_signal(signal.SIGTERM)
    process.wait()
    upstream.shutdown()
    return startup, resumed


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    kai = os.path.abspath(sys.argv[1])
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    database_url = sys.argv[3] if len(sys.argv) > 3 else None
    results = [one_round(kai, database_url) for _ in range(rounds)]
    startups = [r[0] for r in results]
    resumes = [r[1] for r in results]
    backend = "PostgreSQL" if database_url else "SQLite"
    print(f"{backend}, {rounds} rounds: kai serve start-up median {statistics.median(startups)*1000:.0f} ms; "
          f"restart to the resumed run's model call median {statistics.median(resumes)*1000:.0f} ms "
          f"(min {min(resumes)*1000:.0f}, max {max(resumes)*1000:.0f})")


if __name__ == "__main__":
    main()
