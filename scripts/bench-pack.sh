#!/usr/bin/env bash
# Benchmark `testrelay pack` against `zip -r`, `git archive` and `pigz -p 2 -6` on a realistic
# workspace built from registry packages, in one run, with paired rounds.
#
# Usage: scripts/bench-pack.sh /path/to/testrelay [ROUNDS]
#   The binary must support `BIN pack PATH -o OUT.zip` and `BIN pack PATH --dry-run --json`
#   (the dry-run JSON must have "files":[{"path":…}] and "excluded":[{"path":…,"kind":…}]).
#   ROUNDS defaults to 9 (each round runs every tool once, in the same order); 1 warm-up round
#   is not counted.
# Env:
#   BENCH_DIR=/some/dir  reuse (or create) the workspace there instead of a fresh temp dir;
#                        the build step is skipped when $BENCH_DIR/.ws-ready exists.
#   KEEP=1               do not delete the temp dir at the end.
#
# Workspace (~21.7 MB packed, ~9.2 k files): src/ = the published sources of rxjs, @mui/material,
# date-fns and lodash (npm pack); plus gitignored bulk: node_modules/ (npm install of typescript,
# react, react-dom, lodash, rxjs) and .venv/ (requests, flask, pytest); a few secrets; and a
# .git with the tree committed (git add -A honours .gitignore).
# Needs: node/npm, python3 (venv+pip), git, zip, pigz. Registries: npm and PyPI only.
set -euo pipefail

BIN=${1:?usage: bench-pack.sh /path/to/testrelay [ROUNDS]}
ROUNDS=${2:-9}
BIN=$(readlink -f "$BIN")
for tool in node npm python3 git zip pigz; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool (apt-get install zip pigz)" >&2; exit 2; }
done

if [[ -n "${BENCH_DIR:-}" ]]; then
    TMP=$BENCH_DIR; mkdir -p "$TMP"
else
    TMP=$(mktemp -d /tmp/bench-pack.XXXXXX)
fi
cleanup() { [[ -n "${KEEP:-}" || -n "${BENCH_DIR:-}" ]] || rm -rf "$TMP"; }
trap cleanup EXIT
WS=$TMP/ws
OUT=$TMP/out
mkdir -p "$OUT"

build_workspace() {
    rm -rf "$WS"; mkdir -p "$WS/src" "$TMP/dl"
    echo "building workspace in $WS ..." >&2
    (cd "$TMP/dl" && npm pack --silent rxjs @mui/material date-fns lodash >/dev/null)
    for t in "$TMP"/dl/*.tgz; do
        d="$WS/src/$(basename "${t%.tgz}")"; mkdir -p "$d"
        tar xzf "$t" -C "$d" --strip-components=1
    done
    (cd "$WS" && npm init -y >/dev/null 2>&1 &&
        npm install --silent --no-audit --no-fund typescript react react-dom lodash rxjs >/dev/null)
    python3 -m venv "$WS/.venv"
    "$WS/.venv/bin/pip" install -q --disable-pip-version-check requests flask pytest
    printf 'node_modules/\n.venv/\n*.log\n__pycache__/\n' > "$WS/.gitignore"
    echo "noise" > "$WS/debug.log"
    printf 'DB_PASSWORD=not-a-real-password\n' > "$WS/.env"
    mkdir -p "$WS/config"
    printf 'not a real key\n' > "$WS/config/server.key"
    printf 'not a real key\n' > "$WS/config/id_ed25519"
    (cd "$WS" && git init -q && git add -A &&
        git -c user.name=bench -c user.email=bench@example.invalid commit -q -m tree)
    touch "$TMP/.ws-ready"
}
[[ -f "$TMP/.ws-ready" ]] || build_workspace

# The dry run defines the included set; zip's -x list and pigz's input are derived from it so
# every tool handles the same bytes.
"$BIN" pack "$WS" --dry-run --json > "$TMP/listing.json"
python3 - "$TMP/listing.json" "$WS" "$TMP" <<'PY'
import json, os, sys
listing, ws, tmp = sys.argv[1:4]
l = json.load(open(listing))
files = [f["path"] for f in l["files"]]
def esc(p):  # zip -x patterns are wildcards; neutralise [ and escape nothing else
    return p.replace("[", "[[]")
x = [".git/*", "node_modules/*", ".venv/*", "*.log"]
for e in l["excluded"]:
    p = e["path"]
    x.append(esc(p) + "*" if p.endswith("/") else esc(p))
with open(os.path.join(tmp, "zip-excludes.txt"), "w") as f:
    f.write("\n".join(x) + "\n")
with open(os.path.join(tmp, "concat.bin"), "wb") as out:
    for p in files:
        with open(os.path.join(ws, p), "rb") as src:
            out.write(src.read())
n_all = b_all = 0
for d, _, names in os.walk(ws):
    for n in names:
        p = os.path.join(d, n)
        if os.path.isfile(p) and not os.path.islink(p):
            n_all += 1
            b_all += os.path.getsize(p)
print(f"whole tree (incl. .git, node_modules, .venv): {n_all} files, {b_all:,} bytes", file=sys.stderr)
print(f"included: {len(files)} files, {l['total_bytes']:,} bytes; excluded with reason: {len(l['excluded'])}", file=sys.stderr)
PY
# Paired rounds: every round runs each tool once, in the same order. Wall time comes from a
# monotonic clock around the child; CPU time (user+sys, children included) from wait4's rusage,
# which is the stable figure on a shared, noisy machine.
python3 - "$BIN" "$WS" "$OUT" "$TMP" "$ROUNDS" <<'PY'
import os, statistics, subprocess, sys, time, zipfile
bin_, ws, out, tmp, rounds = sys.argv[1:6]
rounds = int(rounds)
zipx = open(os.path.join(tmp, "zip-excludes.txt")).read().split("\n")[:-1]
concat = os.path.join(tmp, "concat.bin")
tools = {
    "testrelay": ([bin_, "pack", ws, "-o", os.path.join(out, "tr.zip")], None, "tr.zip"),
    "zip": (["zip", "-r", "-q", os.path.join(out, "zip.zip"), ".", "-x", *zipx], ws, "zip.zip"),
    "git": (["git", "-C", ws, "archive", "--format=zip", "-o", os.path.join(out, "git.zip"), "HEAD"], None, "git.zip"),
    "pigz": (["pigz", "-p", "2", "-6", "-c", concat], None, None),
}

def run(name):
    argv, cwd, product = tools[name]
    if product and os.path.exists(os.path.join(out, product)):
        os.remove(os.path.join(out, product))  # zip -r would append to an old archive
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t0
    if status != 0:
        sys.exit(f"{name} failed with status {status}")
    return wall, ru.ru_utime + ru.ru_stime

for name in tools:  # warm-up round, not counted
    run(name)
with open("/proc/loadavg") as f:
    load_before = f.read().split()[:3]
res = {name: [] for name in tools}
for _ in range(rounds):
    for name in tools:
        res[name].append(run(name))
with open("/proc/loadavg") as f:
    load_after = f.read().split()[:3]

def entries(product):
    with zipfile.ZipFile(os.path.join(out, product)) as z:
        return sum(1 for n in z.namelist() if not n.endswith("/"))

med = lambda xs: statistics.median(xs)
print(f"rounds: {rounds}   load before {' '.join(load_before)}   after {' '.join(load_after)}")
print(f"input: {os.path.getsize(concat):,} included bytes")
print(f"{'tool':<13}{'wall s':>9}{'cpu s':>9}{'entries':>9}{'output bytes':>15}")
labels = {"testrelay": "testrelay", "zip": "zip -r -x", "git": "git archive", "pigz": "pigz -p2 -6"}
for name, (argv, cwd, product) in tools.items():
    w = med(x[0] for x in res[name]); c = med(x[1] for x in res[name])
    n = entries(product) if product else "-"
    size = f"{os.path.getsize(os.path.join(out, product)):,}" if product else "-"
    print(f"{labels[name]:<13}{w:>9.3f}{c:>9.3f}{n:>9}{size:>15}")
for other in ["zip", "pigz", "git"]:
    rw = med(res["testrelay"][i][0] / res[other][i][0] for i in range(rounds))
    rc = med(res["testrelay"][i][1] / res[other][i][1] for i in range(rounds))
    print(f"testrelay/{labels[other]:<12} median paired ratio: wall {rw:.2f}  cpu {rc:.2f}")
PY
