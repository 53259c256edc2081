#!/usr/bin/env bash
# testrelay benchmark: one run measures
#   1. spawn -> `initialize` response latency (vs /bin/true spawn-and-exit)
#   2. `testrelay run` vs plain `python -m pytest -q` on a 2,000-test suite (paired runs)
#   3. get_test_execution_status round-trip on a finished 5,000-test / 500-failure job
#   4. peak RSS of the server while a test floods 500 MB to stdout
# and prints a table plus a summary block for notes.
#
# Usage: scripts/bench.sh
# Env:   TESTRELAY_BIN=/path/to/testrelay   use this binary instead of target/release/testrelay
#        BENCH_SPAWNS (default 25), BENCH_PAIRS (default 7), BENCH_STATUS_CALLS (default 60),
#        BENCH_FLOOD_MB (default 500), BENCH_TIME_LIMIT (seconds for the whole driver, default 1800)
# Exits 0 when every phase completed (missed targets are reported as MISSED, not as a
# failure); 1 when a phase could not be measured; 2 when set-up (build, venv) failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '[bench] %s\n' "$*" >&2; }

# --- the binary ------------------------------------------------------------------------
# shellcheck source=scripts/release-bin.sh
source "$ROOT/scripts/release-bin.sh"

# --- the Python environment --------------------------------------------------------------
VENV="$ROOT/target/bench-env/venv"
if ! "$VENV/bin/python" -c 'import pytest, sys; sys.exit(pytest.__version__ != "9.2.0")' 2>/dev/null; then
    log "provisioning $VENV with pytest==9.2.0"
    rm -rf "$VENV"
    mkdir -p "$(dirname "$VENV")"
    python3 -m venv "$VENV" && "$VENV/bin/pip" install -q --disable-pip-version-check pytest==9.2.0 >&2 \
        || { log "could not provision the bench venv"; exit 2; }
fi

# --- a private temp dir and state dir ---------------------------------------------------------
BENCH_TMP="$(mktemp -d "${TMPDIR:-/tmp}/testrelay-bench.XXXXXX")"
DRIVER_PID=""
cleanup() {
    if [[ -n "$DRIVER_PID" ]] && kill -0 "$DRIVER_PID" 2>/dev/null; then
        kill "$DRIVER_PID" 2>/dev/null || true
        wait "$DRIVER_PID" 2>/dev/null || true
    fi
    rm -rf "$BENCH_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export TESTRELAY_STATE_DIR="$BENCH_TMP/state"
unset VIRTUAL_ENV CONDA_PREFIX UV_PROJECT_ENVIRONMENT TESTRELAY_WORKSPACE || true

COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [[ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then COMMIT="$COMMIT+dirty"; fi

cat >"$BENCH_TMP/driver.py" <<'PYEOF'
import json, os, resource, select, shutil, statistics, subprocess, sys, threading, time
from time import perf_counter, monotonic

BIN, VENV, TMP, COMMIT = sys.argv[1:5]
SPAWNS = int(os.environ.get("BENCH_SPAWNS", "25"))
PAIRS = int(os.environ.get("BENCH_PAIRS", "7"))
STATUS_CALLS = int(os.environ.get("BENCH_STATUS_CALLS", "60"))
FLOOD_MB = int(os.environ.get("BENCH_FLOOD_MB", "500"))
STATE = os.environ["TESTRELAY_STATE_DIR"]
LOG_CAP = 32 * 1024 * 1024
T_START = monotonic()
LOAD_START = os.getloadavg()[0]


def say(msg):
    print(f"[bench {monotonic() - T_START:6.1f}s] {msg}", file=sys.stderr, flush=True)


def server_env():
    env = dict(os.environ)
    env["TESTRELAY_STATE_DIR"] = STATE
    return env


# ---------------------------------------------------------------- JSON-RPC client
class Server:
    """One `testrelay` MCP server on pipes; every read is bounded by a deadline."""

    def __init__(self, name="server"):
        self.errpath = os.path.join(TMP, f"{name}-{os.getpid()}-{int(perf_counter()*1e6)}.stderr")
        self.err = open(self.errpath, "wb")
        self.t_spawn = perf_counter()
        self.p = subprocess.Popen([BIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err, env=server_env(), bufsize=0)
        self.fd = self.p.stdout.fileno()
        self.buf = b""
        self.next_id = 1

    def send(self, obj):
        self.p.stdin.write((json.dumps(obj) + "\n").encode())

    def read_line(self, deadline):
        while b"\n" not in self.buf:
            left = deadline - monotonic()
            if left <= 0:
                raise TimeoutError("no response from the server in time")
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                chunk = os.read(self.fd, 1 << 20)
                if not chunk:
                    raise EOFError("server closed stdout; stderr: " + self.stderr_tail())
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def wait_id(self, rid, timeout):
        deadline = monotonic() + timeout
        while True:
            line = self.read_line(deadline)
            if not line.strip():
                continue
            msg = json.loads(line)
            if msg.get("id") == rid:
                return msg, line

    def request(self, method, params, timeout=30):
        rid = self.next_id
        self.next_id += 1
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        return self.wait_id(rid, timeout)

    def initialize(self, timeout=10):
        self.send({"jsonrpc": "2.0", "id": 0, "method": "initialize",
                   "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                              "clientInfo": {"name": "bench", "version": "0"}}})
        msg, _ = self.wait_id(0, timeout)
        if "result" not in msg:
            raise RuntimeError(f"initialize failed: {msg}")
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return msg

    def call(self, tool, args, timeout=30):
        msg, line = self.request("tools/call", {"name": tool, "arguments": args}, timeout)
        if "error" in msg:
            raise RuntimeError(f"{tool}: JSON-RPC error {msg['error']}")
        res = msg["result"]
        if res.get("isError"):
            raise RuntimeError(f"{tool}: tool error {res.get('content')}")
        return res, line

    def stderr_tail(self):
        try:
            with open(self.errpath, "rb") as f:
                return f.read()[-2000:].decode(errors="replace")
        except OSError:
            return ""

    def close(self, timeout=10):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait(timeout=5)
        self.p.stdout.close()
        self.err.close()


# ---------------------------------------------------------------- helpers
def median(xs):
    return statistics.median(xs)


def p95(xs):
    s = sorted(xs)
    k = max(0, -(-95 * len(s) // 100) - 1)  # nearest rank
    return s[k]


def make_project(name, files):
    d = os.path.join(TMP, name)
    os.makedirs(d)
    with open(os.path.join(d, "pytest.ini"), "w") as f:
        f.write("[pytest]\n")
    os.symlink(VENV, os.path.join(d, ".venv"))
    os.makedirs(os.path.join(d, "tests"))
    for fname, text in files.items():
        with open(os.path.join(d, "tests", fname), "w") as f:
            f.write(text)
    return d


def suite_2000():
    """20 files x 100 tests: 80 plain + 20 parametrized cases each; 4 plain + 1 param fail."""
    files = {}
    for fi in range(20):
        out = ["import pytest", ""]
        for i in range(80):
            fail = fi % 5 == 0 and i == 41
            want = i * (i - 1) // 2 + (1 if fail else 0)
            out += [f"def test_sum_{i}():", f"    assert sum(range({i})) == {want}", ""]
        out += ["@pytest.mark.parametrize('n', range(20))", "def test_param(n):",
                f"    assert n != 13 or {fi} != 7, 'param 13 of file 7 fails'", ""]
        files[f"test_mod_{fi:02d}.py"] = "\n".join(out)
    return files  # 2,000 tests, 5 failures


def suite_5000():
    """50 files x 100 tests, every 10th failing with an assertion message (500 failures)."""
    files = {}
    for fi in range(50):
        out = [""]
        for i in range(100):
            n = fi * 100 + i
            want = n * 3 + (7 if i % 10 == 0 else 0)
            out += [f"def test_case_{i:03d}():",
                    f"    got = {n} * 3",
                    f"    want = {want}",
                    f"    assert got == want, f'value mismatch in case {n}: got {{got}}, want {{want}}'",
                    ""]
        files[f"test_big_{fi:02d}.py"] = "\n".join(out)
    return files


def suite_flood(mb):
    # pytest's default fd-level capture also captures os.write(1, ...): capfd.disabled()
    # restores the real fd 1 (the pipe testrelay drains) for the duration of the block.
    return {"test_flood.py": f'''import os

TOTAL = {mb} * 1000 * 1000          # {mb} MB = {mb * 8000} lines of 125 bytes
LINE = b"x" * 113 + b" flood line\\n"  # 125 bytes
CHUNK = LINE * 8000                  # 1,000,000 bytes


def test_flood(capfd):
    assert len(LINE) == 125
    with capfd.disabled():
        left = TOTAL
        while left > 0:
            view = memoryview(CHUNK)[: min(left, len(CHUNK))]
            while view:
                n = os.write(1, view)
                view = view[n:]
                left -= n
        os.write(1, b"FLOOD-END\\n")
'''}


def proc_status(pid):
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0])  # kB
    except OSError:
        pass
    return out


def wait_final(srv, job_id, limit_s):
    """Long-poll with wait_seconds=60 until the job is final, bounded by limit_s."""
    deadline = monotonic() + limit_s
    while monotonic() < deadline:
        res, _ = srv.call("get_test_execution_status",
                          {"job_id": job_id, "wait_seconds": 60}, timeout=75)
        sc = res["structuredContent"]
        if sc["status"] not in ("queued", "running"):
            return sc
    raise TimeoutError(f"job {job_id} not final after {limit_s}s")


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


# ---------------------------------------------------------------- phases
R = {}        # results for the table
NOTES = []    # observations worth reporting
ERRORS = {}


def phase_spawn():
    say(f"phase 1: {SPAWNS} fresh spawns -> initialize, interleaved with /bin/true")
    init = (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                                   "clientInfo": {"name": "bench", "version": "0"}}}) + "\n").encode()
    env = server_env()

    def one_server():
        errf = open(os.devnull, "wb")
        t0 = perf_counter()
        p = subprocess.Popen([BIN], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=errf, env=env, bufsize=0)
        p.stdin.write(init)
        buf, fd = b"", p.stdout.fileno()
        deadline = monotonic() + 10
        try:
            while True:
                while b"\n" not in buf:
                    left = deadline - monotonic()
                    if left <= 0:
                        raise TimeoutError("no initialize response within 10 s")
                    if select.select([fd], [], [], left)[0]:
                        chunk = os.read(fd, 65536)
                        if not chunk:
                            raise EOFError("server exited before answering initialize")
                        buf += chunk
                line, buf = buf.split(b"\n", 1)
                if b'"id":1' in line.replace(b" ", b""):
                    t1 = perf_counter()
                    break
            if "result" not in json.loads(line):
                raise RuntimeError(f"initialize failed: {line[:300]!r}")
        finally:
            p.stdin.close()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
            p.stdout.close()
            errf.close()
        return (t1 - t0) * 1000

    def one_true():
        t0 = perf_counter()
        subprocess.run(["/bin/true"], timeout=5)
        return (perf_counter() - t0) * 1000

    one_server(); one_true()  # warm the page cache
    srv, tru = [], []
    for _ in range(SPAWNS):
        srv.append(one_server())
        tru.append(one_true())
    R["spawn"] = dict(median=median(srv), p95=p95(srv), min=min(srv), n=len(srv),
                      base=median(tru))


def phase_cli():
    say(f"phase 2: testrelay run vs python -m pytest -q, 2,000 tests, {PAIRS} pairs (A B A B)")
    proj = make_project("suite2000", suite_2000())
    py = os.path.join(proj, ".venv", "bin", "python")
    cmd_a = [BIN, "run", proj, "--timeout", "300"]
    cmd_b = [py, "-m", "pytest", "-q"]

    def cpu():
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    def timed(cmd, cpus):
        c0, t0 = cpu(), perf_counter()
        r = subprocess.run(cmd, cwd=proj, env=server_env(), stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=600)
        wall = perf_counter() - t0
        cpus.append(cpu() - c0)  # user+sys of the whole process tree, less noisy than wall
        return wall, r.returncode

    # warm-up: compiles assertion-rewritten bytecode, fills caches
    timed(cmd_a, []); timed(cmd_b, [])
    a, b, ca_cpu, cb_cpu, codes = [], [], [], [], set()
    for _ in range(PAIRS):
        ta, ca = timed(cmd_a, ca_cpu)
        tb, cb = timed(cmd_b, cb_cpu)
        a.append(ta); b.append(tb); codes.add((ca, cb))
    if codes != {(1, 1)}:
        NOTES.append(f"phase 2 exit codes (testrelay, pytest) were {sorted(codes)}, expected (1, 1)")
    ratios = [x / y for x, y in zip(a, b)]
    R["cli"] = dict(a=median(a), b=median(b), ratio=median(a) / median(b),
                    pair_ratio=median(ratios), n=PAIRS, codes=sorted(codes),
                    cpu_a=median(ca_cpu), cpu_b=median(cb_cpu), walls_a=a, walls_b=b)


def phase_status():
    say("phase 3: status round-trip on a finished 5,000-test job with 500 failures")
    proj = make_project("suite5000", suite_5000())
    srv = Server("status")
    try:
        srv.initialize()
        t0 = perf_counter()
        res, _ = srv.call("run_tests", {"path": proj, "timeout_seconds": 900})
        job = res["structuredContent"]["job_id"]
        final = wait_final(srv, job, 900)
        run_s = perf_counter() - t0
        if final["status"] != "failed" or final.get("failures_total") != 500:
            NOTES.append(f"phase 3 job ended {final['status']} with failures_total="
                         f"{final.get('failures_total')} (expected failed / 500); reason={final.get('reason')}")
        for _ in range(5):  # warm-up
            srv.call("get_test_execution_status", {"job_id": job})
        lat, sizes, ssizes = [], set(), set()
        for _ in range(STATUS_CALLS):
            rid = srv.next_id
            srv.next_id += 1
            req = {"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                   "params": {"name": "get_test_execution_status", "arguments": {"job_id": job}}}
            data = (json.dumps(req) + "\n").encode()
            t = perf_counter()
            srv.p.stdin.write(data)
            msg, line = srv.wait_id(rid, 30)
            lat.append((perf_counter() - t) * 1000)
            result = msg["result"]
            text = "".join(c.get("text", "") for c in result.get("content", []) if c.get("type") == "text")
            sizes.add(len(text.encode()))
            ssizes.add(len(line))
        summ = final.get("summary") or {}
        R["status"] = dict(median=median(lat), p95=p95(lat), n=len(lat), text_bytes=max(sizes),
                           line_bytes=max(ssizes), run_s=run_s, job_status=final["status"],
                           failures_total=final.get("failures_total"),
                           returned=len(final.get("failures", [])), summary=summ,
                           duration_ms=final.get("duration_ms"))
    finally:
        srv.close()


def phase_flood():
    say(f"phase 4: server RSS while a test writes {FLOOD_MB} MB to stdout")
    proj = make_project("flood", suite_flood(FLOOD_MB))
    srv = Server("flood")
    samples, stop = [], threading.Event()

    def sampler():
        while not stop.is_set():
            s = proc_status(srv.p.pid)
            if s:
                samples.append(s)
            stop.wait(0.01)

    try:
        srv.initialize()
        before = proc_status(srv.p.pid)
        th = threading.Thread(target=sampler, daemon=True)
        th.start()
        t0 = perf_counter()
        res, _ = srv.call("run_tests", {"path": proj, "timeout_seconds": 900})
        job = res["structuredContent"]["job_id"]
        final = wait_final(srv, job, 900)
        wall = perf_counter() - t0
        after = proc_status(srv.p.pid)
        stop.set(); th.join(5)
        job_dir = final.get("job_dir") or ""
        log = os.path.join(job_dir, "stdout.log")
        log_size = os.path.getsize(log) if os.path.exists(log) else -1
        with open(log, "rb") as f:
            f.seek(max(0, log_size - 20000))
            end = f.read()
        with open(log, "rb") as f:
            f.seek(max(0, LOG_CAP - 100))
            capped = b"log capped at" in f.read(4096)
        total_note = None
        for l in end.splitlines():
            if l.startswith(b"[testrelay:") and b"bytes in all" in l:
                total_note = l.decode(errors="replace")
        peak_rss = max([s.get("VmRSS", 0) for s in samples] + [after.get("VmRSS", 0)])
        hwm = after.get("VmHWM", 0)
        R["flood"] = dict(hwm_kb=hwm, peak_rss_kb=peak_rss, start_rss_kb=before.get("VmRSS", 0),
                          end_rss_kb=after.get("VmRSS", 0), samples=len(samples), wall=wall,
                          duration_ms=final.get("duration_ms"), status=final["status"],
                          reason=final.get("reason"), log_size=log_size,
                          job_dir_bytes=dir_bytes(job_dir), capped_marker=capped,
                          total_note=total_note, end_kept=b"FLOOD-END" in end,
                          mb_per_s=FLOOD_MB / (final.get("duration_ms") or 1) * 1000)
        if final["status"] != "passed":
            NOTES.append(f"phase 4 job ended {final['status']}: {final.get('reason')}")
    finally:
        stop.set()
        srv.close()


# ---------------------------------------------------------------- report
def verdict(ok):
    return "OK" if ok else "MISSED"


def main():
    for name, fn in [("spawn", phase_spawn), ("cli", phase_cli), ("status", phase_status),
                     ("flood", phase_flood)]:
        try:
            fn()
        except Exception as e:  # keep going: the other phases still get measured
            ERRORS[name] = f"{type(e).__name__}: {e}"
            say(f"phase {name} FAILED: {ERRORS[name]}")
    elapsed = monotonic() - T_START

    rows = []  # metric, value, baseline, ratio, target, verdict

    def err_row(metric, key, target):
        rows.append((metric, "ERROR", "-", "-", target, "ERROR"))

    if "spawn" in R:
        s = R["spawn"]
        rows.append((f"spawn -> initialize (n={s['n']}, median)", f"{s['median']:.2f} ms",
                     f"/bin/true {s['base']:.2f} ms", f"{s['median'] / s['base']:.1f}x",
                     "<= 5 ms", verdict(s["median"] <= 5)))
    else:
        err_row("spawn -> initialize", "spawn", "<= 5 ms")
    if "cli" in R:
        c = R["cli"]
        rows.append((f"testrelay run, 2,000 tests (n={c['n']} pairs)", f"{c['a']:.3f} s",
                     f"pytest -q {c['b']:.3f} s", f"{c['ratio']:.3f}x",
                     "<= 1.05x", verdict(c["ratio"] <= 1.05)))
    else:
        err_row("testrelay run vs pytest", "cli", "<= 1.05x")
    if "status" in R:
        s = R["status"]
        rows.append((f"status round-trip, finished 5k/500F job (n={s['n']}, median)",
                     f"{s['median']:.2f} ms", "-", "-", "<= 5 ms", verdict(s["median"] <= 5)))
        rows.append(("status round-trip p95", f"{s['p95']:.2f} ms", "-", "-", "(info)", "-"))
        rows.append(("status text content size", f"{s['text_bytes']:,} B", "-",
                     f"{s['text_bytes'] / 16000:.2f} of 16k", "< 12,000 B",
                     verdict(s["text_bytes"] < 12000)))
    else:
        err_row("status round-trip", "status", "<= 5 ms")
    if "flood" in R:
        f = R["flood"]
        rows.append((f"server peak RSS, {FLOOD_MB} MB stdout flood (VmHWM)",
                     f"{f['hwm_kb'] / 1024:.1f} MB", f"idle {f['start_rss_kb'] / 1024:.1f} MB", "-",
                     "<= 50 MB", verdict(f["hwm_kb"] <= 50 * 1024)))
        rows.append(("flood duration (job start -> end)", f"{(f['duration_ms'] or 0) / 1000:.2f} s", "-",
                     f"{f['mb_per_s']:.0f} MB/s", "(info)", "-"))
        rows.append(("stdout.log on disk after flood", f"{f['log_size'] / 2**20:.2f} MiB", "-", "-",
                     "<= 32 MiB + tail", verdict(0 <= f["log_size"] <= LOG_CAP + 64 * 1024)))
    else:
        err_row("server peak RSS during flood", "flood", "<= 50 MB")

    w = [max(len(str(r[i])) for r in rows + [("metric", "value", "baseline", "ratio", "target", "result")])
         for i in range(6)]
    hdr = ("metric", "value", "baseline", "ratio", "target", "result")
    line = "  ".join(h.ljust(w[i]) for i, h in enumerate(hdr))
    print()
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(x).ljust(w[i]) for i, x in enumerate(r)))
    print()

    # details
    if "cli" in R:
        c = R["cli"]
        print(f"phase 2 detail: median of per-pair ratios {c['pair_ratio']:.3f}x; CPU (user+sys) median "
              f"testrelay {c['cpu_a']:.3f} s vs pytest {c['cpu_b']:.3f} s = {c['cpu_a'] / c['cpu_b']:.3f}x; "
              f"exit codes {c['codes']}")
        print(f"  walls testrelay {[round(x, 2) for x in c['walls_a']]}, pytest {[round(x, 2) for x in c['walls_b']]}")
    if "status" in R:
        s = R["status"]
        print(f"phase 3 detail: job {s['job_status']}, summary {s['summary']}, failures_total "
              f"{s['failures_total']}, failures returned {s['returned']}, run_tests->final {s['run_s']:.1f} s, "
              f"full JSON-RPC line {s['line_bytes']:,} B")
    if "flood" in R:
        f = R["flood"]
        print(f"phase 4 detail: job {f['status']}, wall {f['wall']:.2f} s, RSS samples {f['samples']}, "
              f"max sampled VmRSS {f['peak_rss_kb'] / 1024:.1f} MB, end RSS {f['end_rss_kb'] / 1024:.1f} MB, "
              f"job dir {f['job_dir_bytes'] / 2**20:.2f} MiB, cap marker present: {f['capped_marker']}, "
              f"FLOOD-END in kept tail: {f['end_kept']}, total note: {f['total_note']}")
    for n in NOTES:
        print("note:", n)
    for k, v in ERRORS.items():
        print(f"ERROR in phase {k}: {v}")

    # summary block
    print()
    print("```")
    print(f"testrelay bench @ {COMMIT} · {time.strftime('%Y-%m-%d %H:%M')} · {os.cpu_count()} cores · "
          f"loadavg {LOAD_START:.2f}->{os.getloadavg()[0]:.2f} · driver {elapsed:.0f} s")
    for r in rows:
        if r[4] == "(info)":
            print(f"  {r[0]}: {r[1]}" + (f" ({r[3]})" if r[3] != "-" else ""))
        else:
            extra = f"; {r[2]}, ratio {r[3]}" if r[2] != "-" and r[3] != "-" else (
                f"; {r[2]}" if r[2] != "-" else "")
            print(f"  {r[0]}: {r[1]}{extra} [target {r[4]}: {r[5]}]")
    if "cli" in R:
        c = R["cli"]
        print(f"  (phase 2 CPU user+sys: testrelay {c['cpu_a']:.3f} s vs pytest {c['cpu_b']:.3f} s = "
              f"{c['cpu_a'] / c['cpu_b']:.3f}x; median per-pair wall ratio {c['pair_ratio']:.3f}x)")
    missed = [r[0] for r in rows if r[5] == "MISSED"]
    print(f"  targets missed: {len(missed)}" + (f" ({'; '.join(missed)})" if missed else ""))
    if ERRORS:
        print(f"  phases that could not be measured: {', '.join(ERRORS)}")
    print("```")
    return 1 if ERRORS else 0


if __name__ == "__main__":
    import signal
    # On SIGTERM (bench.sh's cleanup, timeout) unwind so every server is closed properly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    sys.exit(main())
PYEOF

log "binary $BIN ($COMMIT), venv $VENV, temp $BENCH_TMP"
START=$(date +%s)
timeout --kill-after=30 "${BENCH_TIME_LIMIT:-1800}" \
    "$VENV/bin/python" "$BENCH_TMP/driver.py" "$BIN" "$VENV" "$BENCH_TMP" "$COMMIT" &
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
