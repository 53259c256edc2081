#!/usr/bin/env bash
# Provisions the toolchains the fixture projects need, inside target/ and the fixture
# folders (never system-wide except for missing OS packages): a Python virtualenv with the
# pinned pytest, and the Jest fixture's node_modules from its committed lockfile.
# Safe to re-run; does nothing when everything is already in place.
# Under CI=true a missing toolchain is an error, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

env_dir=target/fixture-env
venv=$env_dir/venv
reqs=fixtures/requirements.txt
stamp=$venv/.requirements.sha256

python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
  echo "provision: $python not found; install Python 3 (e.g. apt-get install python3 python3-venv)" >&2
  exit 2
fi

want=$(sha256sum "$reqs" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "provision: creating $venv with $(grep -v '^#' "$reqs" | tr '\n' ' ')" >&2
  rm -rf "$venv"
  mkdir -p "$env_dir"
  if ! "$python" -m venv "$venv"; then
    echo "provision: '$python -m venv' failed; on Debian/Ubuntu install python3-venv" >&2
    exit 2
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
  echo "$want" > "$stamp"
fi
"$venv/bin/python" -c "import pytest; print('provision: pytest', pytest.__version__, 'ready in $venv')" >&2

# Jest fixture: install from the committed package-lock.json. npm records each install in
# node_modules/.package-lock.json, so an install newer than the lockfile is current.
# `npm install --no-save` rather than `npm ci`: npm 11.19's `npm ci` rejects lockfiles that
# npm itself wrote when optional platform packages are involved ("Missing: ... from lock
# file"); `--no-save` installs the locked versions and leaves the lockfile untouched.
jest_fixture=fixtures/jest/basic
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "provision: $tool not found; the Jest tests need Node.js >= 18 with npm (e.g. apt-get install nodejs npm, or nodejs.org)" >&2
    exit 2
  fi
done
installed=$jest_fixture/node_modules/.package-lock.json
if [ ! -f "$installed" ] || [ "$jest_fixture/package-lock.json" -nt "$installed" ]; then
  echo "provision: npm install (locked versions) in $jest_fixture" >&2
  (cd "$jest_fixture" && npm install --no-save --no-audit --no-fund --loglevel=error)
fi
echo "provision: jest $(node -p "require('./$jest_fixture/node_modules/jest/package.json').version") ready in $jest_fixture (node $(node --version))" >&2
