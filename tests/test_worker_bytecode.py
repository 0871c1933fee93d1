"""The worker writes the bytecode cache of the workflow modules at start (``workers.worker.cache_bytecode``).

The workflow sandbox executes a workflow's module afresh for every new workflow instance; without a cache
(PYTHONDONTWRITEBYTECODE=1) each of those compiled the module from source, about a tenth of the worker's CPU per
invoice. Python reads a cache even when it may not write one, so the worker writes it once.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

import workflows
from workers.worker import cache_bytecode


def _cached(source: Path) -> Path:
    return Path(importlib.util.cache_from_source(str(source)))


def test_the_cache_of_every_workflow_module_is_written_and_current(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "somewhere"
    package.mkdir()
    module = package / "sync.py"
    module.write_text("STEPS = 8\n")
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # as under PYTHONDONTWRITEBYTECODE=1

    cache_bytecode(str(package))

    assert _cached(module).exists()
    module.write_text("STEPS = 4\n")  # an edit after the cache was written: the next start writes it again
    os.utime(module, (module.stat().st_atime, module.stat().st_mtime + 10))
    before = _cached(module).read_bytes()
    cache_bytecode(str(package))
    assert _cached(module).read_bytes() != before


def test_a_package_whose_cache_cannot_be_written_is_left_alone(tmp_path: Path) -> None:
    package = tmp_path / "installed"
    package.mkdir()
    (package / "sync.py").write_text("STEPS = 8\n")
    (package / "__pycache__").write_text("")  # a file where the cache directory would go: every write fails

    cache_bytecode(str(package))  # no exception: the worker starts anyway

    assert (package / "__pycache__").is_file()


def test_the_workflows_package_is_what_the_worker_caches() -> None:
    invoice_sync = Path(workflows.__path__[0]) / "invoice_sync.py"
    _cached(invoice_sync).unlink(missing_ok=True)  # whatever an earlier test or run left

    cache_bytecode(*workflows.__path__)

    assert _cached(invoice_sync).exists()
