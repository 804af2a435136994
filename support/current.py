"""The namespace commands use when none is given: `--namespace`, else CHISO766_NAMESPACE, else the one
set with `chiso766 namespace NS` for the running local stack (kept in its directory, so it goes with
the stack's data on `stack down`), else `chiso766`."""

from __future__ import annotations

import os
import re
from pathlib import Path

from support import stack

DEFAULT_NAMESPACE = "chiso766"
NAMESPACE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _setting_file() -> Path:
    return stack.stack_dir(os.environ.get("CHISO766_STACK", "default")) / "namespace"


def current_namespace() -> tuple[str, str]:
    """The namespace and where it came from (`environment`, the setting file's path, or `default`)."""
    from_env = os.environ.get("CHISO766_NAMESPACE")
    if from_env:
        return from_env, "CHISO766_NAMESPACE"
    path = _setting_file()
    try:
        saved = path.read_text().strip()
    except OSError:
        saved = ""
    if saved and NAMESPACE_PATTERN.fullmatch(saved):
        return saved, str(path)
    return DEFAULT_NAMESPACE, "default"


def set_current_namespace(namespace: str) -> Path:
    """Remember `namespace` for the local stack; ValueError for a name topics and keys cannot use."""
    if not NAMESPACE_PATTERN.fullmatch(namespace):
        raise ValueError(f"a namespace is 1-64 letters, digits, `_`, `.` or `-`, got {namespace!r}")
    path = _setting_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(namespace + "\n")
    return path
