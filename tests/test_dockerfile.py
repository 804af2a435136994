"""The Dockerfile cannot be built here (no Docker engine), so what matters in it is checked by reading
it: dependencies from the hash-checked lock, a non-root runtime user, and a data directory that user
can write."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOT_USERS = {"root", "0"}


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    found: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        keyword, _, arguments = (current + line).partition(" ")
        found.append((keyword.upper(), arguments.strip()))
        current = ""
    assert not current, "the Dockerfile ends inside a continued line"
    return found


def commands(arguments: str) -> list[list[str]]:
    """The words of each command of a RUN line (shell form, commands joined with && or ;)."""
    words = shlex.split(arguments.replace("&&", " ; ").replace(";", " ; "))
    split: list[list[str]] = [[]]
    for word in words:
        if word == ";":
            split.append([])
        else:
            split[-1].append(word)
    return [command for command in split if command]


def pip_installs(command: list[str]) -> bool:
    return command[:2] == ["pip", "install"] or command[:4] in (["python", "-m", "pip", "install"],
                                                                 ["python3", "-m", "pip", "install"])


@pytest.fixture(scope="module")
def dockerfile() -> list[tuple[str, str]]:
    return instructions((ROOT / "Dockerfile").read_text())


def runtime_user(dockerfile: list[tuple[str, str]]) -> tuple[int, str, str | None]:
    users = [(index, arguments) for index, (keyword, arguments) in enumerate(dockerfile) if keyword == "USER"]
    assert users, "the image runs as root: no USER"
    index, arguments = users[-1]
    user, _, group = arguments.partition(":")
    return index, user, group or None


def environment(dockerfile: list[tuple[str, str]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for keyword, arguments in dockerfile:
        if keyword == "ENV":
            words = shlex.split(arguments)
            if "=" in words[0]:
                found.update(word.split("=", 1) for word in words)
            else:  # the legacy `ENV KEY value` form
                found[words[0]] = " ".join(words[1:])
    return found


def test_dependencies_come_from_the_lock_with_hashes(dockerfile):
    runs = [(index, command) for index, (keyword, arguments) in enumerate(dockerfile) if keyword == "RUN"
            for command in commands(arguments)]
    installs = [(index, command) for index, command in runs if pip_installs(command)]
    from_lock = [index for index, command in installs
                 if "--require-hashes" in command and "requirements.lock" in command
                 and command[command.index("requirements.lock") - 1] in ("-r", "--requirement")]
    assert from_lock, "no `pip install --require-hashes -r requirements.lock`"
    copied = [index for index, (keyword, arguments) in enumerate(dockerfile)
              if keyword == "COPY" and "requirements.lock" in arguments.split()[:-1]]
    assert copied and min(copied) < from_lock[0], "requirements.lock is not copied in before it is installed"
    for index, command in installs:
        if index in from_lock:
            sources = [word for word in command[2:] if not word.startswith("-")]
            assert sources == ["requirements.lock"], f"the hash-checked install also names {sources}"
        else:  # the project itself: its dependencies and its build backend are already there, from the lock
            assert "--no-deps" in command and "--no-build-isolation" in command, \
                f"`{' '.join(command)}` would resolve packages outside the lock"
    project = [index for index, command in installs if index not in from_lock]
    assert project and min(project) > from_lock[0], "the project is not installed after its locked dependencies"


def test_the_runtime_user_is_not_root(dockerfile):
    _, user, group = runtime_user(dockerfile)
    assert user not in ROOT_USERS and group not in ROOT_USERS, f"the image runs as {user}:{group}"


def test_the_data_directory_is_made_and_handed_to_the_runtime_user_before_it_takes_over(dockerfile):
    data = environment(dockerfile).get("CHISO766_DATA")
    assert data and data.startswith("/"), "CHISO766_DATA is not set to an absolute path"
    user_index, user, _ = runtime_user(dockerfile)
    made = owned = False
    for keyword, arguments in dockerfile[:user_index]:
        if keyword != "RUN":
            continue
        for command in commands(arguments):
            paths = [word.rstrip("/") for word in command[1:] if not word.startswith("-")]
            if command[0] == "mkdir" and data in paths:
                made = True
            if command[0] == "chown" and made and data in paths[1:] and paths[0].partition(":")[0] == user:
                owned = True
    assert made, f"{data} is never created; {user} cannot create it under a root-owned parent"
    assert owned, f"{data} is not chowned to {user} (after it is made, before USER)"


def test_setup_python_installs_the_same_lock_the_same_way():
    script = (ROOT / "deploy/setup-python.sh").read_text()
    assert 'install --require-hashes -r "$lock"' in script and 'lock="$root/requirements.lock"' in script
    assert "install --no-deps --no-build-isolation -e" in script


def test_the_parser_sees_a_root_image_and_a_missing_data_directory():
    root_image = instructions("FROM python:3.11-slim\nENV CHISO766_DATA=/var/lib/chiso766\nRUN pip install .\n"
                              "USER 0\n")
    assert runtime_user(root_image)[1] in ROOT_USERS
    with pytest.raises(AssertionError, match="never created"):
        test_the_data_directory_is_made_and_handed_to_the_runtime_user_before_it_takes_over(
            instructions("FROM python:3.11-slim\nENV CHISO766_DATA=/var/lib/chiso766\nUSER nobody\n"))
    with pytest.raises(AssertionError, match="outside the lock"):
        test_dependencies_come_from_the_lock_with_hashes(
            instructions("COPY requirements.lock ./\nRUN pip install --require-hashes -r requirements.lock\n"
                         "RUN pip install '.[stream,api]'\n"))


def test_the_image_copies_every_package_the_project_installs():
    import tomllib

    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    copied = {arguments.split()[0] for keyword, arguments in instructions((ROOT / "Dockerfile").read_text())
              if keyword == "COPY"}
    assert {package.split(".")[0] for package in packages} <= copied
