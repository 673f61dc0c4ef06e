"""The kill drill of `bench/drills.py`, short: a few SIGKILLs on each shape while signed
completions come in and webhooks go out, and afterwards every invariant holds.

The same code as the full drill: the test loads the bench script rather than repeating it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).parent.parent / "bench"
KILLS = 2


def load_drills() -> ModuleType:
    # The drill imports its neighbour `common`, as every bench script does.
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("drills", BENCH / "drills.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["drills"] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("shape", ["sqlite", "postgres"])
@pytest.mark.long
def test_a_short_kill_drill_keeps_every_invariant(shape: str, tmp_path: Path) -> None:
    drills = load_drills()
    report = drills.run(shape, duration_s=4.0, kills=KILLS, workdir=tmp_path, seed=3)
    text = "\n".join(report.lines())
    assert report.failures == [], text
    assert sum(report.kills.values()) == KILLS, text
    counts = report.counts
    assert counts["completions acknowledged"] > 0, text
    assert counts["completions stored"] == counts["completions acknowledged"], text
    assert counts["events"] > 0, text
    assert counts["events delivered at least once"] == counts["events"], text
    if shape == "sqlite":
        assert counts["sqlite integrity_check"] == "ok", text
