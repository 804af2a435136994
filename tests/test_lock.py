"""The environment is the locked one: every package of requirements.lock installed at its locked
version, nothing else beside it, and the lock still satisfying pyproject.toml. A venv that installed
anything else (a newer faust-streaming from PyPI, a package added by hand) fails here, loudly."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
PROJECT = "chiso766"
NOT_LOCKED = {"pip", PROJECT}  # the venv's own installer, and the project (installed --no-deps -e .)
FIX = "run `bash deploy/setup-python.sh` (or `rm .venv/.chiso766-installed` first to force it)"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked() -> dict[str, str]:
    return {canonical(name): version
            for name, version in re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", LOCK.read_text(), re.M)}


def installed() -> dict[str, str]:
    return {canonical(dist.metadata["Name"]): dist.version for dist in metadata.distributions()}


def test_the_lock_pins_every_package_with_hashes():
    entries = re.split(r"\n(?=[A-Za-z0-9])", LOCK.read_text().split("\n", 1)[1])
    packages = [entry for entry in entries if re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*==", entry)]
    assert len(packages) == len(locked()) > 50
    for entry in packages:
        assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), f"no hash: {entry.splitlines()[0]}"
        assert ";" not in entry.splitlines()[0], f"a marker makes the lock depend on the machine: {entry}"


def test_every_locked_package_is_installed_at_its_locked_version():
    have = installed()
    wrong = {name: f"locked {version}, installed {have.get(name, 'nothing')}"
             for name, version in locked().items() if have.get(name) != version}
    assert not wrong, f"the environment is not requirements.lock: {wrong}; {FIX}"


def test_nothing_is_installed_beside_the_lock():
    extra = set(installed()) - set(locked()) - NOT_LOCKED
    assert not extra, f"installed but not in requirements.lock: {sorted(extra)}; {FIX}, or add them to " \
                      "pyproject.toml and regenerate the lock (`bash deploy/lock.sh`)"


def test_the_lock_satisfies_pyproject():
    """A dependency added to (or tightened in) pyproject.toml without regenerating the lock would be
    missing or wrong: setup-python.sh installs the project itself with --no-deps."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = pyproject["project"]
    wanted = [*project["dependencies"], *pyproject["build-system"]["requires"]]
    for extra in ("stream", "api", "test"):
        wanted += project["optional-dependencies"][extra]
    pins = locked()
    for text in wanted:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        version = pins.get(canonical(requirement.name))
        assert version is not None, f"{requirement.name} is not in requirements.lock: run `bash deploy/lock.sh`"
        assert requirement.specifier.contains(version, prereleases=True), \
            f"requirements.lock has {requirement.name}=={version}, pyproject.toml wants {text}: " \
            "run `bash deploy/lock.sh`"
