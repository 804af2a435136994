"""`chiso766 import` (an archive of DVCQG sync calls → a chiso766 history) and `chiso766 gateway`."""

from __future__ import annotations

import os
import zlib
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from cli.common import err, fail
from cli.current import CURRENT, Namespace
from cli.history import bounded_lines, history_size, missing, open_history, replacing
from ingest.archive import ArchiveImport, ImportStats
from ingest.dvcqg import DossierTranslator
from ingest.privacy import Pseudonymiser
from ingest.secret import MissingSecret, pseudonym_secret

DemoOption = Annotated[bool, typer.Option("--demo", help="Use the published demo pseudonym key (demo and tests only).")]


def translator(demo: bool) -> DossierTranslator:
    try:
        return DossierTranslator(Pseudonymiser(pseudonym_secret(os.environ, demo)))
    except MissingSecret as error:
        fail(str(error))


def import_archive(
    archive: Annotated[str, typer.Argument(help="Sync calls: .jsonl or .jsonl.gz, one call or record a line.")],
    out_path: Annotated[str, typer.Option("--out", help="HISTORY.jsonl[.gz] to write, or - for stdout.")],
    demo: DemoOption = False,
) -> None:
    """Translate an archive of DongBoHoSoMC / CapNhatTienDoHoSoMC / LayThuTuc calls into a chiso766 history."""
    if missing(archive):
        fail(f"archive {archive} does not exist")
    importer = ArchiveImport(translator(demo))
    total = history_size(archive)
    columns = [TextColumn("import"), BarColumn(), TextColumn("{task.fields[events]:,} events"),
               TaskProgressColumn() if total else TimeElapsedColumn()]
    read = 0
    try:
        with open_history(archive) as stream, replacing(out_path) as out, \
                Progress(*columns, console=err, transient=True) as progress:
            task = progress.add_task("import", total=total, events=0)
            for number, line in enumerate(bounded_lines(stream), start=1):
                read += len(line)
                for body in importer.line(line):
                    out.write(body)
                    out.write(b"\n")
                if number % 2000 == 0:
                    progress.update(task, completed=read, events=importer.stats.events)
    except (OSError, EOFError, zlib.error) as error:  # the output is left as it was (history.replacing)
        why = getattr(error, "strerror", None) or error or type(error).__name__
        fail(f"cannot import {archive} into {out_path} ({out_path} left as it was): {why}")
    report(importer.stats, out_path)


def report(stats: ImportStats, out_path: str) -> None:
    err.print(f"{stats.lines:,} lines, {stats.calls:,} calls, {stats.records:,} records → {stats.events:,} events"
              f" in {out_path} ({stats.duplicates:,} repeated by resent records written once,"
              f" {stats.native:,} chiso766 lines kept)")
    rejected = sum(stats.rejected.values())
    err.print(f"dropped: {rejected:,}" + (" — " + ", ".join(f"{reason} {count:,}" for reason, count in
                                                            stats.rejected.most_common()) if rejected else ""))
    for example in stats.examples[:5]:
        err.print(f"  {example}")
    if stats.approximate:
        err.print(f"{stats.approximate:,} events timed by their call's arrival (the record states no time)")
    if stats.notes:
        err.print("facts left out of records taken: " + ", ".join(f"{note} {count:,}" for note, count in
                                                                  stats.notes.most_common()))


def _positive(value: float) -> float:
    if not value > 0:
        raise typer.BadParameter(f"must be more than 0, got {value}")
    return value


def gateway(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8767,
    namespace: Namespace = CURRENT,
    partitions: Annotated[int, typer.Option(min=1, max=1000, help="Partitions of topics the gateway creates"
                                            " (as workers).")] = 4,
    registry: Annotated[str | None, typer.Option(help="Unit registry (chiso766 unit.upserted lines) to publish"
                                                 " at start: the sync format has no unit call.")] = None,
    max_records: Annotated[int, typer.Option(min=1, help="Records per call at most.")] = 1000,
    max_body_mb: Annotated[float, typer.Option(callback=_positive, help="Body size at most, in MB.")] = 8.0,
    session_minutes: Annotated[int, typer.Option(min=1, help="How long a session lasts.")] = 30,
    # Clients wait 60 s for an answer (INGEST.md §5): past that they have given up and will resend.
    publish_timeout: Annotated[float, typer.Option(callback=_positive, max=60, help="Seconds Kafka has to take a"
                                                   " call before it fails (503); at most 60.")] = 10.0,
    demo: DemoOption = False,
) -> None:
    """Serve the DVCQG sync protocol (session, DongBoHoSoMC, CapNhatTienDoHoSoMC, LayThuTuc) into Kafka."""
    from gateway.app import GatewayConfig, load_credentials, run
    from support.endpoints import bootstrap_and_redis

    try:
        secret = pseudonym_secret(os.environ, demo)
        credentials = load_credentials(os.environ)
        bootstrap = bootstrap_and_redis()[0]
    except (MissingSecret, ValueError, OSError, RuntimeError) as error:
        fail(str(error))
    lines: list[bytes] = []
    if registry:
        try:
            with open_history(registry) as stream:
                lines = [line.strip() for line in stream if b'"unit.upserted"' in line]
        except (OSError, EOFError, zlib.error) as error:
            fail(f"cannot read the registry {registry}: {error}")
    config = GatewayConfig(bootstrap=bootstrap, namespace=namespace, secret=secret, credentials=credentials,
                           partitions=partitions, session_seconds=session_minutes * 60,
                           max_body_bytes=int(max_body_mb * 1024 * 1024), max_records=max_records, registry=lines,
                           publish_timeout=publish_timeout)
    err.print(f"gateway: http://{host}:{port}/integration (session: /auth) → {namespace}.* on {bootstrap}"
              + (" [demo pseudonym key]" if demo and not os.environ.get("CHISO766_PSEUDONYM_SECRET") else ""))
    run(config, host, port)
