"""Make ``bench/`` importable: its scripts import one another as top-level modules
(``harness``, ``lean_wire``, ...), the way they run (``python bench/SCRIPT.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
