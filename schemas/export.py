"""Generate the committed JSON Schema files from the models: `python -m schemas.export [--check]`."""

from __future__ import annotations

import sys
from pathlib import Path

import msgspec
import orjson

from schemas.events import CatalogEvents, DossierEvents, Event, PetitionEvents

SCHEMA_DIR = Path(__file__).parent / "json"
SCHEMAS = {
    "event.schema.json": Event,
    "dossier-event.schema.json": DossierEvents,
    "petition-event.schema.json": PetitionEvents,
    "catalog-event.schema.json": CatalogEvents,
}


def render() -> dict[str, bytes]:
    rendered = {}
    for name, union in SCHEMAS.items():
        schema = msgspec.json.schema(union)
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["$id"] = f"chiso766/{name}"
        rendered[name] = orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    return rendered


def stale_files() -> list[str]:
    """Names of committed schema files that differ from what the models generate."""
    return [
        name
        for name, content in render().items()
        if not (SCHEMA_DIR / name).exists() or (SCHEMA_DIR / name).read_bytes() != content
    ]


def main() -> int:
    if "--check" in sys.argv:
        stale = stale_files()
        if stale:
            print(f"stale JSON Schema files (run python -m schemas.export): {', '.join(stale)}")
            return 1
        return 0
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, content in render().items():
        (SCHEMA_DIR / name).write_bytes(content)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
