#!/usr/bin/env bash
# Create (or bring up to date) the project's virtualenv at .venv (or $CHISO766_VENV): exactly the
# packages of requirements.lock, checked against its hashes, then the project itself, editable and
# without dependencies. Idempotent: when neither requirements.lock nor pyproject.toml changed since the
# last install (a stamp in the venv holds their hash), nothing is installed again. Packages that are
# in the venv but no longer in the lock are removed. Regenerate the lock with `bash deploy/lock.sh`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CHISO766_VENV:-$root/.venv}"
python="${PYTHON:-python3}"
lock="$root/requirements.lock"

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
wanted="$(cat "$lock" "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ]; then
  rm -f "$stamp"
  pip=("$venv/bin/python" -m pip --quiet --disable-pip-version-check --no-input)
  "${pip[@]}" install --require-hashes -r "$lock"
  # Whatever an earlier lock (or a hand install) left behind that this lock no longer has.
  stale="$("$venv/bin/python" - "$lock" <<'PY'
import re
import sys
from importlib import metadata


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


with open(sys.argv[1]) as lock:
    locked = {canonical(name) for name in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", lock.read(), re.M)}
keep = locked | {"pip", "chiso766"}
print(" ".join(sorted({dist.metadata["Name"] for dist in metadata.distributions()
                       if canonical(dist.metadata["Name"]) not in keep})))
PY
)"
  if [ -n "$stale" ]; then
    echo "removing packages not in requirements.lock: $stale" >&2
    # shellcheck disable=SC2086
    "${pip[@]}" uninstall --yes $stale
  fi
  # The project: its build backend (setuptools) is in the lock, so no build environment is downloaded.
  # pyproject.toml names its flat layout, so setuptools has no warning for pip to show (tests/test_install.py).
  "${pip[@]}" install --no-deps --no-build-isolation -e "$root"
  echo "$wanted" > "$stamp"
fi
echo "$venv"
