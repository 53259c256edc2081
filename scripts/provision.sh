#!/usr/bin/env bash
# Provisions the toolchains the fixture projects need, inside target/ and the fixtures'
# own node_modules (never system-wide except for missing OS packages): a Python
# virtualenv with the pinned pytest, the Jest and Playwright fixtures' locked npm packages,
# and a system Chromium for Playwright (its own browser download needs a CDN that CI cannot
# reach). Safe to re-run; does nothing when everything is already in place. Exports
# nothing: the tests find Chromium at /usr/bin/chromium or through $PW_CHROMIUM_PATH.
# Anything missing that cannot be installed fails this script, so tests never skip.
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

# The fixtures' npm packages, installed from their committed lockfiles when missing or
# when the lockfile changed since the last install (a stamp records its hash).
# `npm install --no-save` rather than `npm ci`: npm 11.19's `npm ci` rejects lockfiles that
# npm itself wrote when optional platform packages are involved ("Missing: ... from lock
# file"); `--no-save` installs the locked versions and leaves the lockfile untouched.
for tool in node npm; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "provision: $tool not found; the Jest and Playwright tests need Node.js >= 18 with npm (e.g. apt-get install nodejs npm, or nodejs.org)" >&2
    exit 2
  fi
done
install_locked() {
  local dir=$1 marker=$2
  local stamp=$dir/node_modules/.testrelay-lock.sha256
  local want
  want=$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1)
  if [ ! -e "$dir/node_modules/$marker" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "provision: npm install (locked versions) in $dir" >&2
    (cd "$dir" && npm install --no-save --no-audit --no-fund --loglevel=error >&2)
    echo "$want" > "$stamp"
  fi
}
jest_fixture=fixtures/jest/basic
install_locked "$jest_fixture" jest/package.json
echo "provision: jest $(node -p "require('./$jest_fixture/node_modules/jest/package.json').version") ready in $jest_fixture (node $(node --version))" >&2
pw_fixture=fixtures/playwright/basic
install_locked "$pw_fixture" @playwright/test/cli.js

# Chromium for the Playwright fixture, from the OS (Debian's `chromium` package).
chromium=${PW_CHROMIUM_PATH:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  if [ -z "${PW_CHROMIUM_PATH:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "provision: installing Debian's chromium" >&2
    apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >&2
  else
    echo "provision: no Chromium at $chromium; install it (Debian/Ubuntu: sudo apt-get install -y chromium) or set PW_CHROMIUM_PATH to a Chromium binary" >&2
    exit 2
  fi
fi
echo "provision: playwright $(node -p "require('./$pw_fixture/node_modules/@playwright/test/package.json').version") with $chromium ready" >&2
