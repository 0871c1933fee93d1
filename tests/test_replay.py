"""Replay the committed workflow histories (tests/histories/*.json) against today's workflow code.

Every history is a real run of the real workflows (recorded by tests/histories/generate.py on the
time-skipping server). A change to workflows/ that would make a running InvoiceSync (they wait weeks for
payment) fail on the next deploy fails here first with a nondeterminism error. The fix is
``workflow.patched(...)``, never regenerating the histories: see the docstring of generate.py.

Also here: proof that the replay does catch such a change (a deliberately altered InvoiceSync), that the
documented ``workflow.patched`` fix is accepted, and the workflow fingerprint guard (every code path, not
only the recorded ones).
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer, UnsandboxedWorkflowRunner
from workflow_fingerprints import BASELINE, fingerprints

from domain.sync import InvoiceBundle, InvoiceStatus, InvoiceSyncInput, StepRequest
from workflows import invoice_sync
from workflows.invoice_sync import InvoiceSync
from workflows.office import PaymentSweep, QueuePoller

HISTORIES = Path(__file__).parent / "histories"
HISTORY_FILES = sorted(p for p in HISTORIES.glob("*.json") if p != BASELINE)
WORKFLOWS = [InvoiceSync, QueuePoller, PaymentSweep]
REPLAYED_EXAMPLE = HISTORIES / "invoice-offer-paid-by-signal.json"


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def workflow_type(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


@pytest.fixture(scope="module")
def replayer() -> Replayer:
    return Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)


def test_histories_cover_every_workflow_and_the_long_paths() -> None:
    types = [workflow_type(load(p)) for p in HISTORY_FILES]
    assert {"InvoiceSync", "QueuePoller", "PaymentSweep"} <= set(types), types
    names = {p.stem for p in HISTORY_FILES}
    for expected in (
        "invoice-offer-paid-by-signal",
        "invoice-card-paid-at-once",
        "invoice-credit-note-settled",
        "invoice-data-error-failed",
        "invoice-needs-attention-resync",
        "invoice-continue-as-new.run1",
        "invoice-continue-as-new.run2",
    ):
        assert expected in names, f"{expected}.json is missing: run tests/histories/generate.py"


@pytest.mark.parametrize("path", HISTORY_FILES, ids=lambda p: p.stem)
async def test_committed_history_replays_deterministically(replayer: Replayer, path: Path) -> None:
    # Raises (workflow.NondeterminismError, or the workflow's own error) on any replay failure.
    await replayer.replay_workflow(load(path))


# --- the replay test can fail --------------------------------------------------------------------


@workflow.defn(name="InvoiceSync", sandboxed=False)
class InvoiceSyncWithExtraStep(InvoiceSync):
    """What a careless change looks like: one more activity before the ensure steps, unguarded."""

    @workflow.init
    def __init__(self, input: InvoiceSyncInput) -> None:
        super().__init__(input)

    @workflow.run
    async def run(self, input: InvoiceSyncInput) -> InvoiceStatus:
        return await super().run(input)

    async def _ensure_all(self, bundle: InvoiceBundle) -> StepRequest:
        await self._notify("New step", "an alert the recorded runs never sent")
        return await super()._ensure_all(bundle)


@workflow.defn(name="InvoiceSync", sandboxed=False)
class InvoiceSyncWithPatchedStep(InvoiceSync):
    """The same change done right: behind ``workflow.patched``, old runs keep their old path."""

    @workflow.init
    def __init__(self, input: InvoiceSyncInput) -> None:
        super().__init__(input)

    @workflow.run
    async def run(self, input: InvoiceSyncInput) -> InvoiceStatus:
        return await super().run(input)

    async def _ensure_all(self, bundle: InvoiceBundle) -> StepRequest:
        if workflow.patched("alert-before-ensure"):
            await self._notify("New step", "an alert the recorded runs never sent")
        return await super()._ensure_all(bundle)


async def test_an_unguarded_new_activity_fails_the_replay() -> None:
    replayer = Replayer(workflows=[InvoiceSyncWithExtraStep], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(load(REPLAYED_EXAMPLE), raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, workflow.NondeterminismError), result.replay_failure
    # "[TMPRL1100] Nondeterminism error: Activity type of scheduled event 'accounting.validate' does not
    # match activity type of activity command 'service.notify'"
    assert "'service.notify'" in str(result.replay_failure)


async def test_the_same_change_behind_workflow_patched_replays() -> None:
    replayer = Replayer(workflows=[InvoiceSyncWithPatchedStep], data_converter=pydantic_data_converter)
    await replayer.replay_workflow(load(REPLAYED_EXAMPLE))


async def test_a_changed_continue_as_new_threshold_fails_the_replay(monkeypatch: pytest.MonkeyPatch) -> None:
    """Constants decide commands too (the fingerprint cannot see this one): continuing as new after 4
    checks instead of 8 would break every InvoiceSync that is between its 4th and 8th check."""
    monkeypatch.setattr(invoice_sync, "FALLBACK_CHECKS_PER_RUN", 4)
    replayer = Replayer(
        workflows=[InvoiceSync],
        data_converter=pydantic_data_converter,
        workflow_runner=UnsandboxedWorkflowRunner(),  # the sandbox would re-import the unpatched module
    )
    history = load(HISTORIES / "invoice-continue-as-new.run1.json")
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert isinstance(result.replay_failure, workflow.NondeterminismError), result.replay_failure


# --- workflow fingerprints -----------------------------------------------------------------------


def test_workflow_command_sequence_matches_the_reviewed_baseline() -> None:
    """Cheap guard for every code path (the replays cover the recorded ones): the source-ordered command
    calls of each workflow method (tests/workflow_fingerprints.py) must match the committed baseline."""
    baseline = json.loads(BASELINE.read_text())
    current = fingerprints()
    if current != baseline:
        diff = "\n".join(
            difflib.unified_diff(
                json.dumps(baseline, indent=1).splitlines(),
                json.dumps(current, indent=1).splitlines(),
                "baseline",
                "workflows/ now",
                lineterm="",
            )
        )
        pytest.fail(
            "The Temporal commands a workflow emits, or their order, changed:\n"
            f"{diff}\n\n"
            "Running workflows (InvoiceSync waits for payment for weeks) replay the new code on the next "
            "deploy. Unless nothing affected can be running, put the change behind "
            'workflow.patched("<change-id>") (then deprecate_patch, then remove, over months), check that '
            "tests/test_replay.py passes against the committed histories, and then accept the new baseline: "
            ".venv/bin/python tests/histories/generate.py --fingerprints "
            "(and record the new behaviour: generate.py --tag <change-id>).",
            pytrace=False,
        )


def test_fingerprint_guard_notices_a_reordered_step(tmp_path: Path) -> None:
    source = (Path(__file__).parents[1] / "workflows" / "invoice_sync.py").read_text()
    contact = "await self._accounting(Step.ENSURE_CONTACT, request, StepResult, "
    assert contact in source
    altered = source.replace(contact, "await self._accounting(Step.ENSURE_PROJECT, request, StepResult, ", 1)
    (tmp_path / "invoice_sync.py").write_text(altered)
    key = "InvoiceSync._ensure_all"
    before = fingerprints()["workflows/invoice_sync.py"][key]
    after = next(iter(fingerprints(tmp_path).values()))[key]
    assert before != after
