#!/usr/bin/env bash
# Installs testrelay with cargo, checks that it runs and, with --client, configures an IDE.
# Safe to re-run: cargo replaces the binary and `testrelay init` changes nothing that is
# already right.
#
#   ./install.sh                    from a checkout: cargo install --path . --locked
#   ./install.sh --client vscode    ... then `testrelay init vscode` for the project in the
#                                   current directory (vscode, cursor, windsurf, claude)
#
# Outside a checkout it installs the published crate (cargo install testrelay --locked).
set -euo pipefail

usage() {
  sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'
}

client=""
while [ $# -gt 0 ]; do
  case "$1" in
    --client) client="${2:-}"; shift 2 || { usage >&2; exit 2; } ;;
    --client=*) client="${1#--client=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case "$client" in
  ""|vscode|cursor|windsurf|claude) ;;
  *) echo "install.sh: unknown client '$client' (choose vscode, cursor, windsurf or claude)" >&2; exit 2 ;;
esac

if ! command -v cargo >/dev/null 2>&1; then
  cat >&2 <<'MSG'
install.sh: cargo was not found.
Install the Rust toolchain first (https://rustup.rs):
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh
then open a new shell (or run: . "$HOME/.cargo/env") and run ./install.sh again.
MSG
  exit 2
fi

here=$(cd "$(dirname "$0")" && pwd)
if [ -f "$here/Cargo.toml" ] && grep -q '^name = "testrelay"' "$here/Cargo.toml"; then
  cargo install --path "$here" --locked
else
  cargo install testrelay --locked
fi

bin="${CARGO_INSTALL_ROOT:-${CARGO_HOME:-$HOME/.cargo}}/bin/testrelay"
if ! "$bin" --version; then
  echo "install.sh: $bin did not run; if cargo installs elsewhere (install.root in .cargo/config.toml), set CARGO_INSTALL_ROOT" >&2
  exit 2
fi
case ":$PATH:" in
  *":$(dirname "$bin"):"*) ;;
  *) echo "note: $(dirname "$bin") is not on your PATH; IDE configurations use the absolute path, so that is fine." ;;
esac

if [ -n "$client" ]; then
  # Project-scoped clients are configured for the project in the current directory.
  exec "$bin" init "$client"
fi

cat <<MSG

testrelay is installed at $bin

Next, in your project's directory, configure your IDE (pick one):

    $bin init vscode      # .vscode/mcp.json
    $bin init cursor      # .cursor/mcp.json (--global: ~/.cursor/mcp.json)
    $bin init windsurf    # ~/.codeium/windsurf/mcp_config.json
    $bin init claude      # .mcp.json

Then check everything with: $bin doctor
MSG
