#!/usr/bin/env bash
# Installs testrelay with cargo and checks that it runs. Safe to re-run.
#   ./install.sh            from a checkout: cargo install --path . --locked
set -euo pipefail

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
  echo "install.sh: $bin did not run" >&2
  exit 2
fi
case ":$PATH:" in
  *":$(dirname "$bin"):"*) ;;
  *) echo "note: $(dirname "$bin") is not on your PATH; IDE configs below use the absolute path." ;;
esac

cat <<MSG

testrelay is installed at $bin

Next: point your IDE at it. For VS Code, put this in .vscode/mcp.json in your project:

{
  "servers": {
    "testrelay": {
      "type": "stdio",
      "command": "$bin",
      "args": ["--workspace", "\${workspaceFolder}"]
    }
  }
}

Other IDEs: see the README. To try it in a terminal: $bin run /path/to/project
MSG
