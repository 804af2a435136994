"""The worker's version guard: streams.faust_fixes patches private internals of faust-streaming,
aiokafka and mode-streaming, and refuses to be imported on versions it was not checked against."""

from __future__ import annotations

import logging
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from streams.faust_fixes import ALLOW_UNTESTED, TESTED_VERSIONS, UntestedVersionsError, check_versions

ROOT = Path(__file__).resolve().parents[1]


def lookup_with(**versions: str | None):
    real = metadata.version

    def version(name: str) -> str:
        key = name.replace("-", "_")
        if key not in versions:
            return real(name)
        if versions[key] is None:
            raise metadata.PackageNotFoundError(name)
        return versions[key]

    return version


def test_the_installed_versions_are_the_tested_ones():
    check_versions()
    assert {name: metadata.version(name) for name in TESTED_VERSIONS} == TESTED_VERSIONS


def test_an_untested_version_is_refused_with_what_to_do(monkeypatch):
    monkeypatch.delenv(ALLOW_UNTESTED, raising=False)
    monkeypatch.setattr(metadata, "version", lookup_with(faust_streaming="0.16.0"))
    with pytest.raises(UntestedVersionsError) as refused:
        check_versions()
    message = str(refused.value)
    assert "faust-streaming 0.16.0" in message and "tested with faust-streaming 0.15.3" in message
    assert "aiokafka" not in message.split("but")[0]  # only what differs is named as found
    assert "bash deploy/setup-python.sh" in message and "requirements.lock" in message
    assert f"{ALLOW_UNTESTED}=1" in message
    assert isinstance(refused.value, SystemExit)  # the command exits with the message, no traceback


def test_a_missing_library_is_refused_too(monkeypatch):
    monkeypatch.delenv(ALLOW_UNTESTED, raising=False)
    monkeypatch.setattr(metadata, "version", lookup_with(aiokafka=None))
    with pytest.raises(UntestedVersionsError, match=r"aiokafka \(not installed\)"):
        check_versions()


def test_the_override_runs_with_a_warning(monkeypatch, caplog):
    monkeypatch.setenv(ALLOW_UNTESTED, "1")
    monkeypatch.setattr(metadata, "version", lookup_with(aiokafka="0.15.0"))
    with caplog.at_level(logging.WARNING, logger="chiso766.worker"):
        check_versions()
    assert "untested aiokafka 0.15.0" in caplog.text


def test_importing_the_fixes_on_an_untested_version_exits_with_the_message():
    """In a fresh interpreter whose lookup reports another aiokafka: the import itself refuses."""
    program = ("import importlib.metadata as m; real = m.version; "
               "m.version = lambda name: '0.99.0' if name == 'aiokafka' else real(name); "
               "import streams.faust_fixes")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, cwd=ROOT,
                          env={"PATH": "/usr/bin:/bin"}, timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("chiso766 refuses to start: this environment has aiokafka 0.99.0"), done.stderr
    assert "Traceback" not in done.stderr
