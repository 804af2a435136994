#!/usr/bin/env bash
# Create (or refresh) the project's virtualenv at .venv with every Python dependency installed.
# Idempotent: a second run only checks that the pinned set is already there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CHISO766_VENV:-$root/.venv}"
python="${PYTHON:-python3}"

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "chiso766 needs Python 3.11 or newer; found: $("$python" --version 2>&1)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv" || {
    echo "could not create a virtualenv; on Debian install it with: apt-get install -y python3-venv" >&2
    exit 1
  }
fi
stamp="$venv/.chiso766-installed"
wanted="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$root[stream,api,test]"
  echo "$wanted" > "$stamp"
fi
echo "$venv"
