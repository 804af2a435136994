"""Layers import inward only: schemas ← scoring ← {streams, api} ← cli, with the neutral packages placed
explicitly (contracts under everything, support above scoring). Every import of every module counts,
those inside functions and `TYPE_CHECKING` blocks too."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"contracts", "schemas", "ingest", "scoring", "support", "streams", "api", "gateway", "bench", "cli",
            "tests"}
# What each package may import of the project, besides itself.
ALLOWED: dict[str, set[str]] = {
    "contracts": set(),  # the keys, scripts and messages every layer shares: nothing of the project
    "schemas": set(),
    "scoring": {"schemas"},
    "ingest": {"contracts", "schemas"},  # pure translation of the DVCQG sync format: no I/O
    "support": {"schemas", "scoring"},  # data files, the local stack, the simulator
    "streams": {"contracts", "schemas", "scoring", "support"},
    "api": {"contracts", "schemas", "scoring", "support"},  # never streams: the API reaches workers through Redis
    "gateway": {"contracts", "schemas", "ingest", "support"},  # its own process: never streams, api or scoring
    "bench": {"contracts", "schemas", "ingest", "scoring", "support", "streams", "api", "gateway"},
    "cli": PACKAGES - {"cli", "tests"},  # the outermost shell
    "tests": PACKAGES - {"cli"},
}
CLI_TESTS = {"tests/test_cli.py", "tests/test_compose.py", "tests/test_never_raises.py", "tests/test_portal.py",
             "tests/test_reconcile.py", "tests/test_plan.py", "tests/test_first_hour.py",
             "tests/test_gateway_cli.py"}  # they test the CLI


def modules() -> list[Path]:
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def project_imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, name.split(".")[0]) for name in names if name.split(".")[0] in PACKAGES]
    return found


def test_every_import_goes_inward():
    wrong = []
    for path in modules():
        relative = path.relative_to(ROOT).as_posix()
        package = relative.split("/")[0]
        allowed = ALLOWED[package] | {package} | ({"cli"} if relative in CLI_TESTS else set())
        wrong += [f"{relative}:{line} imports {name}" for line, name in project_imports(path) if name not in allowed]
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_nothing_imports_the_cli_and_the_api_never_imports_streams():
    users_of = {name: set() for name in PACKAGES}
    for path in modules():
        relative = path.relative_to(ROOT).as_posix()
        for _, name in project_imports(path):
            users_of[name].add(relative.split("/")[0] if relative not in CLI_TESTS else relative)
    assert users_of["cli"] <= {"cli"} | CLI_TESTS
    assert "api" not in users_of["streams"]


def test_the_walk_sees_every_package():
    assert {path.relative_to(ROOT).parts[0] for path in modules()} == PACKAGES


def test_private_internals_of_libraries_are_reached_only_in_the_adapter():
    """Each private access is marked (ruff SLF001) and lives in streams/faust_fixes.py, behind its
    version guard; tests may look inside too."""
    outside = [path.relative_to(ROOT).as_posix() for path in modules()
               if path.relative_to(ROOT).parts[0] != "tests" and path.name != "faust_fixes.py"
               and ("SLF001" in path.read_text() or "import _" in path.read_text())]
    assert not outside, outside
