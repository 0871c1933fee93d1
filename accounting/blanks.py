"""Clearing a field that was emptied in Qondor (Qondor is the master for customers and contact persons).

Why: the mapping bodies leave out what Qondor does not hold (a create must not send empty values), and both
accounting systems keep the fields an update leaves out (Tripletex's PUT and 24SevenOffice's SaveCompanies are
partial updates). So an e-mail, phone or address emptied in Qondor would stay in the accounting system for
ever. A refresh therefore writes the body with every clearable field it lacks set to its blank value: an empty
string clears the field in both systems.
"""

from __future__ import annotations

import copy
from typing import Any


def with_blanks(body: dict[str, Any], blanks: dict[str, Any]) -> dict[str, Any]:
    """``body`` plus each field of ``blanks`` it lacks (nested objects field by field), for a refresh's write.

    ``blanks`` names the clearable fields with their blank value (``""``, or an object of blank fields)."""
    out = copy.deepcopy(body)
    for key, blank in blanks.items():
        if key not in out or out[key] is None:
            out[key] = copy.deepcopy(blank)
        elif isinstance(blank, dict) and isinstance(out[key], dict):
            out[key] = with_blanks(out[key], blank)
    return out
