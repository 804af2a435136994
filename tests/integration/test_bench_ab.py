"""bench.pipeline_ab, the tool that says whether a change made the pipeline slower, at a size CI
fits: this checkout against itself on the session's stack, so it proves the alternation, the
children running bench.pipeline in a checkout and the summary, not a speed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def pipeline_ab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.pipeline_ab", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, check=False)


def test_a_checkout_against_itself_alternates_pairs_and_summarises_each_mode(local_stack):
    done = pipeline_ab(str(ROOT), "--pairs", "2", "--dossiers", "120", "--modes", "arrays,drain",
                       "--bootstrap", local_stack.bootstrap, "--redis-url", local_stack.redis_url)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert [line.split(":")[0].split() for line in lines if " pair " in line] == [
        ["arrays", "pair", "1"], ["arrays", "pair", "2"], ["drain", "pair", "1"], ["drain", "pair", "2"]]
    assert lines[0].startswith(f"baseline {ROOT} at ") and lines[1].startswith(f"this     {ROOT} at ")
    results = orjson.loads(lines[-1])
    assert results.pop("pairs") == 2 and results.pop("dossiers") == 120
    assert results.pop("checkouts")["this"]["path"] == str(ROOT)
    assert set(results) == {"arrays", "drain"}
    for measures in results.values():
        assert set(measures) == {"eps", "worker_cpu_us_per_event"}
        for summary in measures.values():
            assert summary["baseline_median"] > 0 and summary["this_median"] > 0
            assert summary["ratio_min"] <= summary["ratio_median"] <= summary["ratio_max"]


@pytest.mark.parametrize(("args", "message"), [
    (["/nonexistent"], "is not a chiso766 checkout"),
    ([".", "--modes", "arrays,fastest"], "unknown mode fastest"),
    ([".", "--modes", ","], "unknown mode (none)"),
    ([".", "--modes", "arrays,arrays"], "a mode given twice"),
    ([".", "--pairs", "1"], "--pairs must be at least 2"),
    ([".", "--dossiers", "0"], "--dossiers must be between 1 and 100,000"),
    ([".", "--dossiers", "100001"], "--dossiers must be between 1 and 100,000"),
    ([".", "--bootstrap", "127.0.0.1:9"], "--bootstrap and --redis-url go together"),
])
def test_wrong_arguments_are_refused_before_anything_starts(args, message):
    done = pipeline_ab(*args)
    assert done.returncode == 2 and message in done.stderr and not done.stdout


def test_a_checkout_that_cannot_run_a_mode_is_named_before_any_stack_starts(tmp_path):
    """A checkout whose bench.pipeline lacks what drain calls (an older one, or a broken one)."""
    broken = tmp_path / "broken"
    (broken / "bench").mkdir(parents=True)
    (broken / "bench" / "__init__.py").write_text("")
    (broken / "bench" / "pipeline.py").write_text("def pipeline(*args):\n    raise RuntimeError\n")
    done = pipeline_ab(str(broken), "--modes", "arrays,drain", "--pairs", "2")
    assert done.returncode == 1 and not done.stdout.count("pair")
    assert f"baseline checkout {broken} cannot run arrays, drain: drain needs bench.pipeline.ready" in done.stderr
