"""The first install is quiet: building the project's editable wheel raises no setuptools warning.

Newer pips forward a build backend's warnings to the terminal, so setuptools' notice about its
editable-install import hook (taken for a flat layout it has not been told about) printed a
multi-line block on every fresh `deploy/setup-python.sh`. `package-dir = {"" = "."}` in
pyproject.toml names the layout, and setuptools writes a plain .pth entry instead."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_editable_build_emits_no_warning(tmp_path):
    build = ("from setuptools import build_meta\n"
             f"print(build_meta.build_editable({str(tmp_path)!r}))\n")
    done = subprocess.run([sys.executable, "-W", "error", "-c", build], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Warning" not in done.stderr, done.stderr[-2000:]
    wheel = tmp_path / done.stdout.split()[-1]
    assert wheel.exists()
