"""README names every error code the API answers 404 with, as the API spells it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_not_found_code_of_the_api_is_in_the_readme():
    codes = {code for path in (ROOT / "api").glob("*.py")
             for code in re.findall(r'NotFound\("([a-z_]+)"', path.read_text())}
    errors = ROOT.joinpath("README.md").read_text()
    paragraph = errors[errors.index("Errors are `{\"error\": CODE"):]
    paragraph = paragraph[:paragraph.index("\n\n")]
    assert {"unknown_unit", "unknown_group", "unknown_period"} <= codes
    assert {code for code in codes if f"`{code}`" not in paragraph} <= {"no_plan", "not_published"}
