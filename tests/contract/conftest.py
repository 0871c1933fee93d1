"""Makes ``contract.tripletex_spec`` importable (``tests/`` on sys.path) even when this directory is run alone."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = str(Path(__file__).resolve().parents[1])
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)
