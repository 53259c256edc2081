#!/usr/bin/env bash
# Provisions the toolchains the fixture projects need, inside target/ (never system-wide
# except for missing OS packages): a Python virtualenv with the pinned pytest.
# Safe to re-run; does nothing when everything is already in place.
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
