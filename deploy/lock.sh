#!/usr/bin/env bash
# Regenerate requirements.lock: every Python dependency (runtime + the stream, api and test extras, and
# setuptools, the build backend) at an exact version with the hashes of every file PyPI serves for it.
# pip-tools runs from a throwaway virtualenv, never from the project's. The versions already in
# requirements.lock are kept unless pyproject.toml no longer allows them; to move one, name it:
#   bash deploy/lock.sh --upgrade-package faust-streaming==0.15.4   (or --upgrade for everything)
# then run `bash deploy/setup-python.sh` and the whole suite (`bash scripts/test.sh`) before committing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
tool="$(mktemp -d)"
trap 'rm -rf "$tool" "$root/chiso766.egg-info"' EXIT
"$python" -m venv "$tool/venv"
"$tool/venv/bin/python" -m pip install --quiet --disable-pip-version-check pip-tools==7.6.2
cd "$root"
CUSTOM_COMPILE_COMMAND="bash deploy/lock.sh" "$tool/venv/bin/pip-compile" --quiet --generate-hashes \
  --allow-unsafe --all-build-deps --strip-extras --no-emit-find-links --no-emit-index-url \
  --extra stream --extra api --extra test --output-file requirements.lock "$@" pyproject.toml
echo "requirements.lock: $(grep -c '^[A-Za-z0-9]' requirements.lock) packages" >&2
