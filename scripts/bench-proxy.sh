#!/usr/bin/env bash
# testrelay cloud-bridge benchmark: what does the bridge add to an upstream tool call?
#
# One run:
#   1. starts a loopback upstream MCP server (Python `mcp` FastMCP, Streamable HTTP, one
#      `echo(text)` tool, Bearer-key check) on a free 127.0.0.1 port;
#   2. `testrelay login URL --api-key-stdin --credential-store file` (a wrong key first, which
#      must be refused and not stored, then the right one) into a temp XDG_CONFIG_HOME;
#   3. serves `testrelay --server URL --credential-store file` on stdio, polls tools/list
#      until the upstream `echo` appears next to the local tools;
#   4. times `tools/call echo` made directly (http.client keep-alive POSTs, SSE answers) and
#      through testrelay (newline-delimited JSON-RPC on its stdin/stdout), in interleaved
#      rounds, plus a local tool (`list_test_executions`) on the same stdio session;
#   5. prints medians, the added latency (proxied - direct, target <= 0.5 ms) and a summary
#      block for notes.
#
# Usage: scripts/bench-proxy.sh
# Env:   TESTRELAY_BIN=/path/to/testrelay   use this binary instead of target/release/testrelay
#        BENCH_ROUNDS (default 20), BENCH_CALLS (calls per kind per round, default 30),
#        BENCH_WARMUP (calls per kind before measuring, default 30),
#        BENCH_PAYLOAD (bytes of echo text, default 64),
#        BENCH_JSON_RESPONSE=1 (the upstream answers POSTs with plain JSON instead of SSE),
#        BENCH_TIME_LIMIT (seconds for the whole driver, default 600)
# Exits 0 when everything was measured (a missed target prints MISSED, it is not a failure);
# 1 when something could not be measured; 2 when set-up (build, venv) failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '[bench-proxy] %s\n' "$*" >&2; }

# --- the binary ------------------------------------------------------------------------
# shellcheck source=scripts/release-bin.sh
source "$ROOT/scripts/release-bin.sh"

# --- the Python environment (upstream server and both clients) --------------------------
MCP_VERSION="1.30.0"   # mcp 1.x: mcp.server.fastmcp.FastMCP (2.x renamed it MCPServer)
VENV="$ROOT/target/bench-env/proxy-venv"
if ! "$VENV/bin/python" - "$MCP_VERSION" 2>/dev/null <<'PYEOF'
import sys
from importlib.metadata import version
import uvicorn  # noqa: F401
from mcp.server.fastmcp import FastMCP  # noqa: F401
sys.exit(version("mcp") != sys.argv[1])
PYEOF
then
    log "provisioning $VENV with mcp==$MCP_VERSION"
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV" && "$VENV/bin/pip" install -q --disable-pip-version-check "mcp==$MCP_VERSION" >&2 \
        || { log "could not provision the proxy bench venv"; exit 2; }
fi

# --- a private temp dir; every process we start is recorded and ended -------------------
BENCH_TMP="$(mktemp -d "${TMPDIR:-/tmp}/testrelay-bench-proxy.XXXXXX")"
DRIVER_PID=""
cleanup() {
    if [[ -n "$DRIVER_PID" ]] && kill -0 "$DRIVER_PID" 2>/dev/null; then
        kill "$DRIVER_PID" 2>/dev/null || true
        wait "$DRIVER_PID" 2>/dev/null || true
    fi
    # Children the driver started and did not reap (upstream server, testrelay), should it
    # have died hard: only processes whose command line names our temp dir.
    if [[ -f "$BENCH_TMP/pids" ]]; then
        while read -r pid; do
            [[ "$pid" =~ ^[0-9]+$ ]] || continue
            if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$BENCH_TMP"; then
                kill "$pid" 2>/dev/null || true
            fi
        done <"$BENCH_TMP/pids"
    fi
    rm -rf "$BENCH_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
unset VIRTUAL_ENV CONDA_PREFIX TESTRELAY_WORKSPACE TESTRELAY_SERVER TESTRELAY_CREDENTIAL_STORE || true

COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then COMMIT="$COMMIT+dirty"; fi

# --- the upstream server -------------------------------------------------------------------
cat >"$BENCH_TMP/upstream.py" <<'PYEOF'
"""Loopback upstream: FastMCP over Streamable HTTP with one echo tool, behind a Bearer check.

GET /stats (with or without the key) answers the counts of accepted and refused requests.
"""
import json
import sys

import uvicorn
from mcp.server.fastmcp import FastMCP

PORT, KEY, JSON_RESPONSE = int(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
EXPECTED = b"Bearer " + KEY.encode()

server = FastMCP("bench-upstream", host="127.0.0.1", port=PORT, log_level="WARNING",
                 json_response=JSON_RESPONSE)


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


app = server.streamable_http_app()
stats = {"accepted": 0, "refused": 0, "refused_no_header": 0, "connections": 0,
         "by_agent": {}}
seen_clients, seen_by_agent = set(), {}


async def guarded(scope, receive, send):
    if scope["type"] != "http":
        return await app(scope, receive, send)
    client = tuple(scope.get("client") or ())
    if client not in seen_clients:
        seen_clients.add(client)
        stats["connections"] += 1
    if scope["path"] == "/stats":
        body = json.dumps(stats, default=str).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})
        return
    auth = dict(scope["headers"]).get(b"authorization")
    if auth != EXPECTED:
        stats["refused"] += 1
        if auth is None:
            stats["refused_no_header"] += 1
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"www-authenticate", b'Bearer realm="bench"')]})
        await send({"type": "http.response.body", "body": b'{"error":"invalid_token"}'})
        return
    stats["accepted"] += 1
    agent = dict(scope["headers"]).get(b"user-agent", b"(none)").decode(errors="replace")[:40]
    per = stats["by_agent"].setdefault(agent, {"requests": 0, "connections": 0, "methods": {}})
    per["requests"] += 1
    per["methods"][scope["method"]] = per["methods"].get(scope["method"], 0) + 1
    if client not in seen_by_agent.setdefault(agent, set()):
        seen_by_agent[agent].add(client)
        per["connections"] += 1
    await app(scope, receive, send)


uvicorn.run(guarded, host="127.0.0.1", port=PORT, log_level="warning", access_log=False,
            lifespan="on")
PYEOF

# --- the driver ------------------------------------------------------------------------------
cat >"$BENCH_TMP/driver.py" <<'PYEOF'
import gc, http.client, json, os, select, signal, socket, stat, statistics, subprocess, sys, time
from importlib.metadata import version
from time import monotonic, perf_counter

BIN, TMP, COMMIT = sys.argv[1:4]
PY = sys.executable
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "20"))
CALLS = int(os.environ.get("BENCH_CALLS", "30"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "30"))
PAYLOAD = int(os.environ.get("BENCH_PAYLOAD", "64"))
JSON_RESPONSE = os.environ.get("BENCH_JSON_RESPONSE", "0") == "1"
TIME_LIMIT = float(os.environ.get("BENCH_TIME_LIMIT", "600"))
TARGET_US = 500.0
KEY = "bench-key-" + os.urandom(12).hex()
T_START = monotonic()
LOAD_START = os.getloadavg()[0]
CHILDREN = []
NOTES, CHECKS = [], []


def say(msg):
    print(f"[bench-proxy {monotonic() - T_START:6.1f}s] {msg}", file=sys.stderr, flush=True)


def left():
    """Seconds left before the driver's own deadline (the shell's `timeout` is the hard cap)."""
    return TIME_LIMIT - 20 - (monotonic() - T_START)


class Abort(Exception):
    pass


def spawn(argv, **kw):
    p = subprocess.Popen(argv, **kw)
    CHILDREN.append(p)
    with open(os.path.join(TMP, "pids"), "a") as f:
        f.write(f"{p.pid}\n")
    return p


def forget_reaped():
    with open(os.path.join(TMP, "pids"), "w") as f:
        f.writelines(f"{c.pid}\n" for c in CHILDREN if c.returncode is None)


def stop(p, grace=5.0):
    if p.poll() is None:
        try:
            p.terminate()
            p.wait(grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
        except ProcessLookupError:
            pass
    forget_reaped()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    """user+sys CPU seconds of a process (all threads), from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def stats_of(xs):
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=10)
    return {"n": len(xs), "median": statistics.median(xs), "p10": q[0], "p90": q[-1],
            "mean": statistics.fmean(xs), "min": xs[0]}


def fmt(s):
    return (f"median {s['median']:.0f} µs (p10 {s['p10']:.0f}, p90 {s['p90']:.0f}, "
            f"min {s['min']:.0f}, mean {s['mean']:.0f}; n={s['n']})")


# --- direct client: http.client keep-alive POSTs -------------------------------------------
class Direct:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.sid = None
        self.proto = None
        self.next_id = 0

    def _headers(self):
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
             "Authorization": f"Bearer {KEY}", "User-Agent": "bench-direct"}
        if self.sid:
            h["Mcp-Session-Id"] = self.sid
        if self.proto:
            h["MCP-Protocol-Version"] = self.proto
        return h

    def post(self, obj):
        self.conn.request("POST", "/mcp", json.dumps(obj).encode(), self._headers())
        r = self.conn.getresponse()
        body = r.read()
        return r, body

    def rpc(self, method, params):
        self.next_id += 1
        rid = self.next_id
        msg = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        t0 = perf_counter()
        r, body = self.post(msg)
        if r.status != 200:
            raise Abort(f"direct {method}: HTTP {r.status}: {body[:200]!r}")
        ctype = r.getheader("content-type", "")
        answer = None
        if ctype.startswith("text/event-stream"):
            for line in body.split(b"\n"):
                if line.startswith(b"data:"):
                    data = line[5:].strip()
                    if not data:
                        continue
                    m = json.loads(data)
                    if m.get("id") == rid and ("result" in m or "error" in m):
                        answer = m
                        break
        else:
            answer = json.loads(body)
        t1 = perf_counter()
        if answer is None:
            raise Abort(f"direct {method}: no answer in {body[:200]!r}")
        return answer, (t1 - t0) * 1e6, r

    def open(self):
        # The version testrelay's upstream client asks for, so both paths speak the same.
        ans, _, r = self.rpc("initialize", {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "bench-direct", "version": "1"}})
        self.sid = r.getheader("mcp-session-id")
        if not self.sid:
            raise Abort("direct initialize: no Mcp-Session-Id header")
        self.proto = ans["result"]["protocolVersion"]
        r, body = self.post({"jsonrpc": "2.0", "method": "notifications/initialized"})
        if r.status not in (200, 202):
            raise Abort(f"direct notifications/initialized: HTTP {r.status}")
        return ans["result"]

    def close(self):
        try:
            if self.sid:
                self.conn.request("DELETE", "/mcp", headers=self._headers())
                self.conn.getresponse().read()
        except Exception:
            pass
        self.conn.close()


# --- proxied client: testrelay over newline-delimited JSON-RPC on stdio ---------------------
class Stdio:
    def __init__(self, argv, env, stderr):
        self.p = spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                       env=env, cwd=TMP, bufsize=0)
        self.wfd = self.p.stdin.fileno()
        self.rfd = self.p.stdout.fileno()
        self.buf = b""
        self.next_id = 0
        self.notifications = {}

    def send(self, obj):
        data = (json.dumps(obj) + "\n").encode()
        while data:
            n = os.write(self.wfd, data)
            data = data[n:]

    def _take_lines(self, rid):
        while True:
            nl = self.buf.find(b"\n")
            if nl < 0:
                return None
            line, self.buf = self.buf[:nl], self.buf[nl + 1:]
            if not line.strip():
                continue
            m = json.loads(line)
            if "method" in m:
                if "id" in m:  # a request from the server: answer so it never waits
                    if m["method"] == "roots/list":
                        self.send({"jsonrpc": "2.0", "id": m["id"], "result": {"roots": []}})
                    elif m["method"] == "ping":
                        self.send({"jsonrpc": "2.0", "id": m["id"], "result": {}})
                    else:
                        self.send({"jsonrpc": "2.0", "id": m["id"],
                                   "error": {"code": -32601, "message": "not supported"}})
                else:
                    self.notifications[m["method"]] = self.notifications.get(m["method"], 0) + 1
                continue
            if m.get("id") == rid:
                return m

    def rpc(self, method, params, timeout=15.0):
        self.next_id += 1
        rid = self.next_id
        msg = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        t0 = perf_counter()
        self.send(msg)
        deadline = t0 + timeout
        while True:
            m = self._take_lines(rid)
            if m is not None:
                t1 = perf_counter()
                return m, (t1 - t0) * 1e6
            wait = deadline - perf_counter()
            if wait <= 0:
                raise Abort(f"testrelay {method}: no answer within {timeout:.0f} s")
            r, _, _ = select.select([self.rfd], [], [], wait)
            if r:
                chunk = os.read(self.rfd, 1 << 16)
                if not chunk:
                    raise Abort(f"testrelay closed stdout during {method} (exit {self.p.poll()})")
                self.buf += chunk

    def close(self):
        try:
            self.p.stdin.close()
            self.p.wait(10)
        except Exception:
            pass
        stop(self.p)


def check_echo(ans, text, who):
    if "error" in ans:
        raise Abort(f"{who} echo: JSON-RPC error {ans['error']}")
    res = ans["result"]
    got = (res.get("content") or [{}])[0].get("text")
    if res.get("isError") or got != text:
        raise Abort(f"{who} echo: unexpected result {json.dumps(res)[:300]}")


def upstream_stats(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/stats")
    s = json.loads(c.getresponse().read())
    c.close()
    return s


def main():
    R = {}
    port = free_port()
    url = f"http://127.0.0.1:{port}/mcp"
    xdg = os.path.join(TMP, "config")
    state = os.path.join(TMP, "state")
    work = os.path.join(TMP, "workspace")
    for d in (xdg, state, work):
        os.makedirs(d, mode=0o700, exist_ok=True)
    env = dict(os.environ, XDG_CONFIG_HOME=xdg, TESTRELAY_STATE_DIR=state)

    # 1. upstream
    up_err = open(os.path.join(TMP, "upstream.stderr"), "wb")
    up = spawn([PY, os.path.join(TMP, "upstream.py"), str(port), KEY, "1" if JSON_RESPONSE else "0"],
               stdout=up_err,
               stderr=up_err, cwd=TMP)
    deadline = monotonic() + 30
    while True:
        if up.poll() is not None:
            raise Abort(f"upstream exited {up.returncode}: "
                        f"{open(os.path.join(TMP, 'upstream.stderr'), 'rb').read()[-800:]!r}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if monotonic() > deadline:
                raise Abort("upstream did not listen within 30 s")
            time.sleep(0.05)
    say(f"upstream mcp {version('mcp')} listening on {url}")

    # 2. login: a wrong key is refused and not stored; the right one is stored 0600
    cred_dir = os.path.join(xdg, "testrelay", "credentials")

    def login(key):
        t0 = monotonic()
        r = subprocess.run([BIN, "login", url, "--api-key-stdin", "--credential-store", "file"],
                           input=key.encode(), capture_output=True, env=env, cwd=TMP, timeout=60)
        return r, monotonic() - t0

    r, _ = login("wrong-" + KEY)
    stored = os.listdir(cred_dir) if os.path.isdir(cred_dir) else []
    ok = r.returncode == 1 and not stored
    said = [l for l in r.stderr.decode(errors="replace").splitlines() if l.startswith("error:")]
    CHECKS.append(("wrong key refused, nothing stored", ok,
                   f"exit {r.returncode}, files {stored}, says {(said or ['?'])[0][:160]!r}"))
    R["bad_login_stderr"] = r.stderr.decode(errors="replace").strip().splitlines()
    refused_by_bad_login = upstream_stats(port)["refused"]

    r, login_s = login(KEY)
    out = (r.stdout + r.stderr).decode().strip()
    if r.returncode != 0:
        raise Abort(f"login with the right key exited {r.returncode}: {out[:300]}")
    files = os.listdir(cred_dir) if os.path.isdir(cred_dir) else []
    modes = {f: oct(stat.S_IMODE(os.stat(os.path.join(cred_dir, f)).st_mode)) for f in files}
    ok = len(files) == 1 and all(m == "0o600" for m in modes.values())
    CHECKS.append(("right key: exit 0, one 0600 file", ok, f"{modes}; {out[:160]!r}"))
    R["login_s"] = login_s
    say(f"login: {out}")

    # 3. testrelay on stdio, bridging the upstream
    tr_err = open(os.path.join(TMP, "testrelay.stderr"), "wb")
    tr = Stdio([BIN, "--server", url, "--credential-store", "file", "--workspace", work],
               env, tr_err)
    ans, init_us = tr.rpc("initialize", {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "bench-proxied", "version": "1"}})
    if "error" in ans:
        raise Abort(f"testrelay initialize: {ans['error']}")
    tr.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
    t_init = monotonic()
    polls, tools = 0, []
    while True:
        polls += 1
        ans, _ = tr.rpc("tools/list", {})
        tools = [t["name"] for t in ans.get("result", {}).get("tools", [])]
        if "echo" in tools:
            break
        if monotonic() - t_init > 30:
            raise Abort(f"upstream echo not listed 30 s after initialized (tools: {tools}); "
                        f"stderr: {open(os.path.join(TMP, 'testrelay.stderr'), 'rb').read()[-800:]!r}")
        time.sleep(0.05)
    R["listed_ms"] = (monotonic() - t_init) * 1e3
    r = subprocess.run([BIN, "status", "--server", url, "--credential-store", "file"],
                       capture_output=True, env=env, cwd=TMP, timeout=60)
    first = (r.stdout + r.stderr).decode(errors="replace").strip().splitlines()
    CHECKS.append(("`testrelay status` exits 0 (connected)", r.returncode == 0,
                   f"exit {r.returncode}: " + " | ".join(l.strip() for l in first[:3])[:240]))
    R["tools"] = tools
    local_tools = [t for t in tools if t != "echo"]
    CHECKS.append(("echo listed unprefixed next to 8 local tools",
                   len(local_tools) == 8 and tools.count("echo") == 1, f"{len(tools)} tools: {tools}"))
    say(f"testrelay initialize {init_us / 1e3:.1f} ms; echo listed {R['listed_ms']:.0f} ms after "
        f"initialized ({polls} tools/list polls); tools: {', '.join(tools)}")

    # 4. direct session
    direct = Direct(port)
    info = direct.open()
    R["upstream_proto"] = info["protocolVersion"]
    R["upstream_info"] = f"{info['serverInfo']['name']} {info['serverInfo'].get('version', '')}"

    pad = "x" * max(0, PAYLOAD - 24)
    seq = [0]

    def call_direct():
        seq[0] += 1
        text = f"d{seq[0]:07d}{pad}"
        ans, us, _ = direct.rpc("tools/call", {"name": "echo", "arguments": {"text": text}})
        check_echo(ans, text, "direct")
        return us

    def call_proxied():
        seq[0] += 1
        text = f"p{seq[0]:07d}{pad}"
        ans, us = tr.rpc("tools/call", {"name": "echo", "arguments": {"text": text}})
        check_echo(ans, text, "proxied")
        return us

    def call_local():
        ans, us = tr.rpc("tools/call", {"name": "list_test_executions", "arguments": {}})
        if "error" in ans or ans["result"].get("isError"):
            raise Abort(f"local list_test_executions: {json.dumps(ans)[:300]}")
        return us

    kinds = {"direct": call_direct, "proxied": call_proxied, "local": call_local}
    for name, fn in kinds.items():
        for _ in range(WARMUP):
            fn()
    say(f"warm-up done ({WARMUP} calls each); measuring {ROUNDS} rounds x {CALLS} calls per kind")

    samples = {k: [] for k in kinds}
    per_round = {k: [] for k in kinds}
    cpu = {k: 0.0 for k in kinds}  # testrelay's CPU during each kind's blocks
    cpu_up = {k: 0.0 for k in kinds}  # the upstream server's
    orders = [("direct", "proxied", "local"), ("local", "proxied", "direct")]
    gc.disable()
    try:
        for rnd in range(ROUNDS):
            if left() < 0:
                raise Abort(f"time limit reached after {rnd} rounds")
            for name in orders[rnd % 2]:
                c0, u0 = cpu_s(tr.p.pid), cpu_s(up.pid)
                xs = [kinds[name]() for _ in range(CALLS)]
                cpu[name] += cpu_s(tr.p.pid) - c0
                cpu_up[name] += cpu_s(up.pid) - u0
                samples[name].extend(xs)
                per_round[name].append(statistics.median(xs))
            say(f"round {rnd + 1}/{ROUNDS}: median direct {per_round['direct'][-1]:.0f} µs, "
                f"proxied {per_round['proxied'][-1]:.0f} µs, local {per_round['local'][-1]:.0f} µs")
    finally:
        gc.enable()

    direct.close()
    ups = upstream_stats(port)
    R["upstream"] = ups
    CHECKS.append(("Bearer key on every upstream request from testrelay",
                   ups["refused"] == refused_by_bad_login,
                   f"upstream accepted {ups['accepted']}, refused {ups['refused']} "
                   f"({refused_by_bad_login} from the wrong-key login)"))
    R["notifications"] = dict(tr.notifications)
    tr.close()
    R["testrelay_exit"] = tr.p.returncode
    CHECKS.append(("testrelay exits 0 when stdin closes", tr.p.returncode == 0,
                   f"exit {tr.p.returncode}"))
    stop(up)

    # 5. report
    S = {k: stats_of(v) for k, v in samples.items()}
    d, p, l = S["direct"]["median"], S["proxied"]["median"], S["local"]["median"]
    added = p - d
    ratio = p / d
    round_diffs = [pp - dd for pp, dd in zip(per_round["proxied"], per_round["direct"])]
    verdict = "OK" if added <= TARGET_US else "MISSED"
    elapsed = monotonic() - T_START

    print(f"direct   (http.client keep-alive): {fmt(S['direct'])}")
    print(f"proxied  (testrelay stdio -> upstream): {fmt(S['proxied'])}")
    print(f"local    (testrelay list_test_executions): {fmt(S['local'])}")
    print(f"per-round medians direct  : {' '.join(f'{x:.0f}' for x in per_round['direct'])}")
    print(f"per-round medians proxied : {' '.join(f'{x:.0f}' for x in per_round['proxied'])}")
    print(f"per-round added (p - d)   : {' '.join(f'{x:.0f}' for x in round_diffs)}")
    n = ROUNDS * CALLS
    print(f"CPU per call (user+sys, {TICK} Hz ticks): testrelay {cpu['proxied'] / n * 1e6:.0f} µs "
          f"proxied, {cpu['local'] / n * 1e6:.0f} µs local, {cpu['direct'] / n * 1e6:.0f} µs while "
          f"idle (direct); upstream {cpu_up['direct'] / n * 1e6:.0f} µs direct, "
          f"{cpu_up['proxied'] / n * 1e6:.0f} µs proxied")
    if len(R["bad_login_stderr"]) > 1:
        print(f"wrong-key login stderr has {len(R['bad_login_stderr'])} lines: "
              + " | ".join(l[:160] for l in R["bad_login_stderr"]))
    print(f"upstream saw {R['upstream']['connections']} TCP connections in all; by User-Agent: "
          + "; ".join(f"{a!r}: {v['requests']} requests on {v['connections']} connections "
                      f"{v['methods']}" for a, v in R["upstream"]["by_agent"].items()))
    print(f"notifications seen on testrelay stdout: {R['notifications'] or 'none'}")
    err_lines = open(os.path.join(TMP, "testrelay.stderr"), "rb").read().decode(
        errors="replace").splitlines()
    noisy = [l for l in err_lines if " WARN " in l or " ERROR " in l or "panicked" in l]
    print(f"testrelay stderr: {len(err_lines)} lines, {len(noisy)} WARN/ERROR/panic"
          + (f"; first: {noisy[0][:200]}" if noisy else ""))
    for name, ok, detail in CHECKS:
        print(f"check {'ok  ' if ok else 'FAIL'} {name}: {detail}")

    print()
    print("```")
    print(f"testrelay proxy bench @ {COMMIT} · {time.strftime('%Y-%m-%d %H:%M')} · "
          f"{os.cpu_count()} cores · loadavg {LOAD_START:.2f}->{os.getloadavg()[0]:.2f} · "
          f"driver {elapsed:.0f} s · upstream mcp {version('mcp')} FastMCP ({R['upstream_proto']}), "
          f"{'JSON' if JSON_RESPONSE else 'SSE'} answers, echo {PAYLOAD} B, {ROUNDS} rounds x {CALLS} interleaved calls per kind")
    print(f"  tools/call echo direct (Python http.client, keep-alive): {fmt(S['direct'])}")
    print(f"  tools/call echo through testrelay (stdio -> Streamable HTTP): {fmt(S['proxied'])}")
    print(f"  added by testrelay: {added:+.0f} µs/call ({added / 1e3:+.3f} ms), ratio {ratio:.2f}x; "
          f"median of per-round differences {statistics.median(round_diffs):+.0f} µs "
          f"[target <= 0.5 ms added: {verdict}]")
    print(f"  local tool list_test_executions on the same stdio session (info): {fmt(S['local'])}")
    print(f"  testrelay CPU per call (info): {cpu['proxied'] / n * 1e6:.0f} µs proxied, "
          f"{cpu['local'] / n * 1e6:.0f} µs local")
    print(f"  bridge: echo listed {R['listed_ms']:.0f} ms after notifications/initialized "
          f"({len(R['tools'])} tools); login (verify + store) {R['login_s'] * 1e3:.0f} ms")
    ba = R["upstream"]["by_agent"]
    dv = ba.get("bench-direct", {"requests": 0, "connections": 0})
    tv = [v for a, v in ba.items() if a != "bench-direct"]
    print(f"  upstream TCP connections (info): direct client {dv['connections']} for "
          f"{dv['requests']} requests; testrelay (login, status, session) "
          f"{sum(v['connections'] for v in tv)} for {sum(v['requests'] for v in tv)} requests")
    failed = [c[0] for c in CHECKS if not c[1]]
    print(f"  checks: {len(CHECKS) - len(failed)}/{len(CHECKS)} ok" +
          (f" (FAILED: {'; '.join(failed)})" if failed else ""))
    print(f"  targets missed: {0 if verdict == 'OK' else 1}")
    print("```")
    return 0


def run():
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return main()
    except Abort as e:
        say(f"ERROR: {e}")
        for name in ("testrelay.stderr", "upstream.stderr"):
            path = os.path.join(TMP, name)
            if os.path.exists(path):
                tail = open(path, "rb").read()[-1500:].decode(errors="replace").strip()
                if tail:
                    say(f"{name} (tail):\n{tail}")
        return 1
    finally:
        for p in reversed(CHILDREN):
            if p.stdin:
                try:
                    p.stdin.close()
                except Exception:
                    pass
            stop(p)


if __name__ == "__main__":
    sys.exit(run())
PYEOF

log "binary $BIN ($COMMIT), venv $VENV, temp $BENCH_TMP"
START=$(date +%s)
timeout --kill-after=15 "${BENCH_TIME_LIMIT:-600}" \
    "$VENV/bin/python" "$BENCH_TMP/driver.py" "$BIN" "$BENCH_TMP" "$COMMIT" &
DRIVER_PID=$!
set +e
wait "$DRIVER_PID"
RC=$?
set -e
DRIVER_PID=""
log "finished in $(( $(date +%s) - START )) s (driver exit $RC)"
if [[ $RC -eq 124 || $RC -eq 137 ]]; then
    log "the driver hit BENCH_TIME_LIMIT and was stopped"
    exit 1
fi
exit "$RC"
