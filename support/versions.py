"""Version guards for code that uses a library's private internals: the worker's Faust/aiokafka
adapter (`streams.faust_fixes`) and the API's uvicorn header timeout (`api.server`). Each refuses
other versions than the ones it was tested with, unless CHISO766_ALLOW_UNTESTED_VERSIONS=1."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from importlib import metadata

ALLOW_UNTESTED = "CHISO766_ALLOW_UNTESTED_VERSIONS"


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def untested_versions(tested: Mapping[str, str],
                      version_of: Callable[[str], str | None] = installed_version) -> dict[str, str | None]:
    """Each library of `tested` installed at another version (None: not installed)."""
    found = {name: version_of(name) for name in tested}
    return {name: version for name, version in found.items() if version != tested[name]}


def describe(versions: Mapping[str, str | None]) -> str:
    return ", ".join(f"{name} {version or '(not installed)'}" for name, version in versions.items())


def allowed_anyway(found: str, tested: str, doing: str, log: logging.Logger) -> bool:
    """True, with a warning, when the operator set CHISO766_ALLOW_UNTESTED_VERSIONS=1."""
    if os.environ.get(ALLOW_UNTESTED) != "1":
        return False
    log.warning("%s=1: %s with untested %s (tested: %s)", ALLOW_UNTESTED, doing, found, tested)
    return True
