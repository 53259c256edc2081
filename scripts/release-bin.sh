# Sourced by the benchmark scripts (after ROOT and log are defined): sets BIN to an absolute
# path of the testrelay binary to measure. TESTRELAY_BIN names one; otherwise the release
# build, rebuilt when a source file is newer. Exits 2 when there is none.
if [[ -n "${TESTRELAY_BIN:-}" ]]; then
    BIN="$TESTRELAY_BIN"
    [[ -x "$BIN" ]] || { log "TESTRELAY_BIN=$BIN is not executable"; exit 2; }
else
    BIN="$ROOT/target/release/testrelay"
    if [[ ! -x "$BIN" ]] || [[ -n "$(find src Cargo.toml Cargo.lock -newer "$BIN" -print -quit 2>/dev/null)" ]]; then
        log "building release binary (cargo build --release)"
        cargo build --release >&2 || { log "cargo build --release failed"; exit 2; }
    fi
fi
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
