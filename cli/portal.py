"""`chiso766 portal check|rank|load`: read what the national portal publishes (PORTAL.md)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.table import Table
from rich.text import Text

from cli.common import console, dump, err, fail
from cli.current import CURRENT, Namespace
from cli.labels import Language
from cli.portal_labels import TEXT
from scoring.portal import PortalFormatError, Publication, check_publication, parse_publication, rank_publication
from scoring.ruleset import GROUP_CODES, Ruleset, RulesetError
from support import resources

portal_app = typer.Typer(help="Read what the national portal publishes: check it against the ruleset, "
                              "recompute its ranks, store it beside our scores.", no_args_is_help=True)
out = console(width=None if sys.stdout.isatty() else 200)
FileArgument = Annotated[Path, typer.Argument(help="A province table or a province snapshot (JSON, PORTAL.md).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
RulesetOption = Annotated[Path | None, typer.Option("--ruleset", help="Ruleset JSON file (default: bundled).")]
LangOption = Annotated[Language, typer.Option("--lang", help="Label language: vi or en.")]


def load_ruleset(path: Path | None) -> Ruleset:
    try:
        return resources.load_ruleset(path)
    except (RulesetError, OSError) as error:
        fail(f"cannot use ruleset {path or '(bundled)'}: {error}")


def read_publication(path: Path, ruleset: Ruleset) -> Publication:
    """The publication in `path`; an unreadable file or an unknown shape is one line and exit 2."""
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as error:
        fail(f"cannot read {path}: {error.strerror or error}")
    except orjson.JSONDecodeError as error:
        fail(f"{path} is not JSON: {error}")
    try:
        publication = parse_publication(data, ruleset)
    except PortalFormatError as error:
        fail(f"{path}: {error}")
    for problem in publication.problems[:20]:
        err.print(Text.assemble(("warning: ", "yellow"), problem))
    if len(publication.problems) > 20:
        err.print(f"… and {len(publication.problems) - 20} more values that could not be used")
    return publication


@portal_app.command("check")
def check(path: FileArgument, as_json: JsonOption = False, ruleset_path: RulesetOption = None,
          lang: LangOption = Language.vi) -> None:
    """Recompute every published indicator, group, total and band; exit 1 if any number differs or
    a published value cannot be used."""
    ruleset = load_ruleset(ruleset_path)
    publication = read_publication(path, ruleset)
    result = check_publication(publication, ruleset)
    words = TEXT[lang]
    if as_json:
        dump({"kind": publication.kind, "date": publication.date, "ruleset": ruleset.id, "checked": result.checked,
              "differences": [d.as_json() for d in result.differences], "notes": result.notes,
              "problems": publication.problems})
    else:
        counted = ", ".join(f"{count} {kind}" for kind, count in result.checked.items() if count)
        out.print(f"{publication.kind} {publication.date} ({len(publication.units)} {words['units_n']}), "
                  f"{words['ruleset']} {ruleset.id}: {words['recomputed_n']} {counted}")
        if result.differences:
            table = Table(title=words["differ"].format(n=len(result.differences)))
            for column in ("unit", "what", "code", "published", "recomputed"):
                table.add_column(words[column])
            for difference in result.differences:
                table.add_row(difference.unit, difference.what, difference.code, difference.published,
                              difference.recomputed)
            out.print(table)
        elif publication.problems:
            out.print(Text(words["readable_reproduced"].format(unusable=_unusable(publication, words)),
                           style="yellow"))
        else:
            out.print(Text(words["all_reproduced"], style="green"))
        for note in result.notes:
            out.print(f"{words['note']}: {note}")
    if result.differences or publication.problems:
        raise typer.Exit(1)


def _unusable(publication: Publication, words: dict[str, str]) -> str:
    count = len(publication.problems)
    return words["unusable"].format(n=count, s="s" if count > 1 else "")


@portal_app.command("rank")
def rank(path: FileArgument, as_json: JsonOption = False, ruleset_path: RulesetOption = None,
         lang: LangOption = Language.vi) -> None:
    """Recompute overall and per-group competition ranks from the published scores; exit 1 if any
    differs from the published rank or a published value cannot be used."""
    ruleset = load_ruleset(ruleset_path)
    publication = read_publication(path, ruleset)
    result = rank_publication(publication)
    words = TEXT[lang]
    if as_json:
        dump({"units": [{key: row[key] for key in ("code", "total", "rank", "group_ranks")} for row in result.units],
              "mismatches": [m.as_json() for m in result.mismatches], "notes": result.notes})
    else:
        for note in result.notes:  # before the table they speak of
            out.print(f"{words['note']}: {note}")
        table = Table(title=words["ranks_title"].format(kind=publication.kind, date=publication.date))
        for column in (words["rank"], words["code"], words["name"], *GROUP_CODES, words["total"],
                       words["published_rank"]):
            table.add_column(column, justify="left" if column in (words["code"], words["name"]) else "right")
        for row in result.units:
            cells = [f"{row['groups'].get(g, 0):.2f} ({row['group_ranks'].get(g, '—')})" for g in GROUP_CODES]
            published = row["published_rank"]
            table.add_row(str(row["rank"]), row["code"], row["name"], *cells, f"{row['total']:.2f}",
                          Text(str(published or "—"), style="red" if published and published != row["rank"] else ""))
        out.print(table)
        out.print(Text(words["ranks_differ"].format(n=len(result.mismatches)),
                       style="red" if result.mismatches else "green"))
        if publication.problems:
            out.print(Text(_unusable(publication, words), style="yellow"))
        for mismatch in result.mismatches:
            out.print(f"  {mismatch.unit} {mismatch.code}: {words['published']} {mismatch.published}, "
                      f"{words['recomputed']} {mismatch.recomputed}")
    if result.mismatches or publication.problems:  # as `check`: a value that could not be used fails the run
        raise typer.Exit(1)


@portal_app.command("load")
def load(path: FileArgument,
         namespace: Namespace = CURRENT,
         ruleset_path: RulesetOption = None) -> None:
    """Store the publication (with its date) in the namespace's projection, beside our own scores."""
    import redis

    from cli.readside import redis_endpoint
    from contracts.keys import RedisKeys

    ruleset = load_ruleset(ruleset_path)
    publication = read_publication(path, ruleset)
    period = publication.period
    if period is None:
        fail(f"{path}: no `year` or `date` says which period it covers")
    keys = RedisKeys(namespace)
    url, where = redis_endpoint()
    client = redis.Redis.from_url(url)
    try:
        # A publication replaces the previous one of its kind whole (no unit left over from an older
        # file under this file's meta); the other kind's hash is left as it is.
        pipe = client.pipeline(transaction=True)
        pipe.delete(keys.portal(period, publication.kind), keys.portal_meta(period, publication.kind))
        pipe.hset(keys.portal(period, publication.kind),
                  mapping={unit.code: orjson.dumps(unit.as_json()) for unit in publication.units})
        pipe.hset(keys.portal_meta(period, publication.kind), mapping={
            "kind": publication.kind, "date": publication.date, "collected_at": publication.collected_at or "",
            "source": path.name, "loaded_at": str(int(time.time()))})
        pipe.execute()
    except redis.exceptions.ConnectionError:
        fail(f"cannot reach Redis at {where} (is it running?)")
    finally:
        client.close()
    err.print(f"stored {len(publication.units)} published units of {publication.kind} {publication.date} "
              f"as {period} in namespace {namespace}")
