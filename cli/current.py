"""`--namespace` for every command, defaulting to the current namespace (`support.current`), and
`chiso766 namespace [NS]` to show or set it."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.common import err, fail
from support.current import current_namespace, set_current_namespace

CURRENT = ""  # the parameter default meaning "the current namespace"; resolved by the option's callback


def or_current(value: str) -> str:
    return value or current_namespace()[0]


Namespace = Annotated[str, typer.Option(
    "--namespace", callback=or_current, show_default="the current one: chiso766 namespace",
    help="Topic and Redis key prefix.")]


def namespace(name: Annotated[str | None, typer.Argument(help="Set this as the current namespace.")] = None) -> None:
    """Show the namespace commands use when --namespace is not given, or set it (for the local stack)."""
    if name is None:
        current, source = current_namespace()
        print(current)
        err.print(f"(from {source})" if source != "default" else "(the default; set one: chiso766 namespace NS)")
        return
    try:
        path = set_current_namespace(name)
    except ValueError as error:
        fail(str(error))
    err.print(f"current namespace: {name} (saved in {path})")
