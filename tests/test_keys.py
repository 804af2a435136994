"""The Redis key schema: the README's key table, `contracts.keys.SCHEMA` and the builders say the same;
the Lua scripts spell keys with the builders' segments."""

from __future__ import annotations

import re
from pathlib import Path

from contracts import keys
from contracts.keys import SCHEMA, RedisKeys

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_key_table() -> dict[tuple[str, ...], str]:
    """Rows of the README's "Redis keys" table: the keys of the first column → the type column."""
    text = README.read_text()
    section = text[text.index("### Redis keys"):]
    rows: dict[tuple[str, ...], str] = {}
    for line in section.splitlines()[1:]:
        if line.startswith("#"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        rows[tuple(re.findall(r"`([^`]+)`", cells[0]))] = cells[1]
    return rows


def test_the_readme_key_table_is_the_schema():
    documented = readme_key_table()
    assert documented, "the README has a Redis keys table"
    assert documented == {spec.patterns: spec.redis_type for spec in SCHEMA}


def test_each_documented_key_is_what_its_builder_makes():
    for spec in SCHEMA:
        assert spec.build(RedisKeys("PREFIX")) == spec.patterns


def test_the_scripts_build_keys_with_the_builders_segments():
    built = RedisKeys("P")
    # A dossier's hash and its lists, as the list script writes them for prefix "P".
    assert built.dossier("D1") == "P" + f":{keys.DOSSIER}:" + "D1"
    assert f"':{keys.DOSSIER}:'" in keys.LIST_SCRIPT and f"':{keys.UNIT}:'" in keys.LIST_SCRIPT
    assert f"':{keys.OFFICER}:'" in keys.LIST_SCRIPT and f"'{keys.LATE}:'" in keys.LIST_SCRIPT
    assert built.dossier_list(keys.late_list("2026-09"), keys.UNIT, "H15") == "P:late:2026-09:unit:H15"
    assert f"':{keys.ALERT}:'" in keys.ALERT_SCRIPT and f"':{keys.ALERTS}:{keys.LIVE}'" in keys.ALERT_SCRIPT
    assert built.alert_marker("a1") == "P:alert:a1" and built.alerts_live == "P:alerts:live"
