"""Personal data never reaches Temporal in clear: payloads, failures and user metadata are encrypted.

The proof reads what the server stores, not what our code calls: after a real sync (the sample office plus a
data error naming a customer and a configuration error), every history event, the describe answer and the
current-details query are fetched with a client that has no codec, and no customer name, e-mail, phone,
address or organisation number of the seed appears in their raw bytes. The same payloads decode through the
codec server over HTTP with its bearer token (and are refused without it). Key rotation and the refusal to
run without keys are checked on the codec and the CLI directly.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format
from google.protobuf.message import Message
from temporalio.api.common.v1 import Payload, WorkflowExecution
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.query.v1 import WorkflowQuery
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest, QueryWorkflowRequest
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from domain.sync import SyncState
from emulators.qondor.sample import bad_items, merge_seeds, sample_office_data, without_customer_references
from emulators.server import serve_in_thread
from harness import new_stack
from workers import codec
from workers.codec import CodecConfigError, CodecKey, CodecKeyError, EncryptionCodec, generate_key
from workers.codec_server import create_app, new_token
from workflows.invoice_sync import COARSE_ENSURE, RESYNC_DURING_ALERT

CLI = [sys.executable, "-m", "workers.cli"]
SHARED_ORG, UNMAPPED = 9002, 9004
"""bad_items: a data error naming 'Tvilling Holding AS' and its organisation number; an unmapped article."""


# --- what the server holds -----------------------------------------------------------------------------


def personal_data(seed: dict[str, Any]) -> set[str]:
    """Every name, e-mail, phone, street address and organisation/VAT number in the seed (cities and zip
    codes are left out: four-digit zips would match random ciphertext now and then, and say little alone)."""
    found: set[str] = set()

    def person(p: dict[str, Any]) -> None:
        for key in ("firstName", "lastName", "fullName", "email", "phoneNumber", "address"):
            if p.get(key):
                found.add(str(p[key]))

    for customer in seed["customers"]:
        for key in ("name", "legalName", "address", "phoneNumber", "organisationNumber", "vatNumber", "invoiceEmail"):
            if customer.get(key):
                found.add(str(customer[key]))
        for contact in customer.get("contactPersons") or []:
            person(contact)
    for project in seed["projects"]:
        for manager in project.get("projectManagers") or []:
            person(manager)
    for invoice in seed["invoices"]:
        if invoice.get("booker"):
            person(invoice["booker"])
        if invoice.get("yourReference"):
            found.add(invoice["yourReference"])
    return {value for value in found if len(value) >= 5}


def payloads_in(message: Message) -> Iterator[tuple[str, Payload]]:
    """Every Payload anywhere inside a proto message, with the path of the field holding it."""
    if isinstance(message, Payload):
        yield "", message
        return
    for field, value in message.ListFields():
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            entry_value = field.message_type.fields_by_name["value"]
            items = list(value.values()) if entry_value.message_type is not None else []
        elif isinstance(value, Message):
            items = [value]
        else:  # a repeated field
            items = list(value)
        for item in items:
            for path, payload in payloads_in(item):
                yield f"{field.name}.{path}".rstrip("."), payload


def plain_client(client: Client) -> Client:
    """The same connection without the codec: what the server, its UI or a database dump would show."""
    config = client.config()
    config["data_converter"] = pydantic_data_converter
    return Client(**config)


def leaks(raw: bytes, needles: set[str]) -> list[str]:
    return sorted(n for n in needles if n.encode() in raw)


PATCH_IDS = (RESYNC_DURING_ALERT, COARSE_ENSURE)
PATCH_MARKER = "core_patch"
"""The SDK records a ``workflow.patched`` marker itself, outside the data converter: its only payload is the
patch id (a constant of ours, e.g. ``resync-during-alert``), never data of an invoice."""


def unencrypted(message: Message) -> list[str]:
    """Paths of payloads that are not encrypted (search attributes are by design: ids and states only; a patch
    marker holds only its patch id, checked to be one of the workflows' constants)."""
    if isinstance(message, HistoryEvent) and message.marker_recorded_event_attributes.marker_name == PATCH_MARKER:
        details = b"".join(p.data for _, p in payloads_in(message))
        assert any(patch.encode() in details for patch in PATCH_IDS), f"unknown patch marker: {details!r}"
        return []
    return [
        path
        for path, payload in payloads_in(message)
        if payload.metadata.get("encoding") != codec.ENCODING and "search_attributes" not in path
    ]


async def test_the_server_stores_no_personal_data_and_the_codec_server_reveals_it(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    stack = new_stack(temporal_env.client, tmp_path, seed={})  # seeded below, with the office id it picked
    bad = bad_items(stack.office_id)
    seed = merge_seeds(sample_office_data(stack.office_id), bad["shared_org_number"], bad["unmapped_article"])
    stack.qondor.seed(seed)
    needles = personal_data(seed)
    assert {"Havblikk Teknologi AS", "kari.nordmann@havblikk-teknologi.example", "Tvilling Holding AS"} <= needles
    stack.start_worker()
    server = None
    try:
        base = stack.office_id * 1000
        await stack.discover()
        for n in (501, 502, 503, 504, 506):
            await stack.wait_for_state(base + n, SyncState.AWAITING_PAYMENT)
        await stack.wait_for_state(base + 505, SyncState.PAID)
        failed = await stack.wait_for_state(SHARED_ORG, SyncState.FAILED)
        attention = await stack.wait_for_state(UNMAPPED, SyncState.NEEDS_ATTENTION)
        # The operator still gets the whole message, through the (encrypted) status query and result.
        assert failed.last_error and "Tvilling Holding AS" in failed.last_error
        assert attention.last_error and "has no mapping" in attention.last_error

        plain = plain_client(stack.client)
        ids = [wf.id async for wf in plain.list_workflows(f"OfficeId={stack.office_id}")]
        ids += [f"queue-poller-{stack.office_id}", f"payment-sweep-{stack.office_id}"]
        histories = {}
        for workflow_id in ids:
            try:
                histories[workflow_id] = await plain.get_workflow_handle(workflow_id).fetch_history()
            except Exception:
                continue  # the sweep runs only on its schedule
        assert {f"invoice-{stack.office_id}-{base + 501}", f"invoice-{stack.office_id}-{SHARED_ORG}"} <= set(histories)

        raw = b""
        for workflow_id, history in histories.items():
            for event in history.events:
                raw += event.SerializeToString()
                assert unencrypted(event) == [], f"{workflow_id} event {event.event_id}: {unencrypted(event)}"
            described = await plain.workflow_service.describe_workflow_execution(
                DescribeWorkflowExecutionRequest(
                    namespace=plain.namespace, execution=WorkflowExecution(workflow_id=workflow_id)
                )
            )
            raw += described.SerializeToString()
            assert unencrypted(described) == [], f"{workflow_id} describe: {unencrypted(described)}"
        assert leaks(raw, needles) == []
        # User metadata was among what was checked: the static summary and every activity and timer summary.
        paths = {path for h in histories.values() for e in h.events for path, _ in payloads_in(e)}
        assert any(path.endswith("user_metadata.summary") for path in paths), sorted(paths)

        # The data error's failure: message and stack trace moved into an encrypted payload.
        failures = [
            e.activity_task_failed_event_attributes.failure
            for e in histories[f"invoice-{stack.office_id}-{SHARED_ORG}"].events
            if e.HasField("activity_task_failed_event_attributes")
        ]
        assert failures and all(f.message == "Encoded failure" and not f.stack_trace for f in failures)
        assert all(f.encoded_attributes.metadata["encoding"] == codec.ENCODING for f in failures)

        # Current details (the UI's "current details", a built-in query): answered encrypted, no names inside.
        answer = await plain.workflow_service.query_workflow(
            QueryWorkflowRequest(
                namespace=plain.namespace,
                execution=WorkflowExecution(workflow_id=f"invoice-{stack.office_id}-{UNMAPPED}"),
                query=WorkflowQuery(query_type="__temporal_workflow_metadata"),
            )
        )
        [metadata_payload] = answer.query_result.payloads
        assert metadata_payload.metadata["encoding"] == codec.ENCODING
        assert leaks(answer.SerializeToString(), needles) == []

        # The codec server decodes the same payloads for a caller with the token, and only for one.
        keys = codec.load_keys()
        token = new_token()
        server = serve_in_thread(create_app(EncryptionCodec(keys), token))
        payloads = [p for h in histories.values() for e in h.events for _, p in payloads_in(e)]
        payloads.append(metadata_payload)
        body = {"payloads": [_payload_json(p) for p in payloads]}
        async with httpx.AsyncClient(base_url=server.url) as http:
            refused = await http.post("/decode", json=body, headers={"X-Namespace": plain.namespace})
            wrong = await http.post("/decode", json=body, headers={"Authorization": "Bearer not-the-token-at-all"})
            decoded = await http.post("/decode", json=body, headers={"Authorization": f"Bearer {token}"})
            by_path = await http.post(f"/t/{token}/decode", json={"payloads": body["payloads"][:3]})
            preflight = await http.options(
                "/decode",
                headers={
                    "Origin": "http://localhost:8233",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type,x-namespace",
                },
            )
        assert refused.status_code == 401 and wrong.status_code == 401
        assert "payloads" not in refused.json() and "Havblikk" not in refused.text
        assert decoded.status_code == 200 and by_path.status_code == 200
        assert preflight.headers.get("access-control-allow-origin") == "http://localhost:8233"
        clear = b"".join(base64.b64decode(p.get("data", "")) for p in decoded.json()["payloads"])
        assert {"Havblikk Teknologi AS", "Tvilling Holding AS", "kari.nordmann@havblikk-teknologi.example"} <= {
            n for n in needles if n.encode() in clear
        }
        # The decoded current details: state, step and where the message is; no names.
        metadata = json_format.Parse(base64.b64decode(decoded.json()["payloads"][-1]["data"]), WorkflowMetadata())
        assert metadata.current_details.startswith("**Needs attention** (operator): configuration problem at step")
        assert "last_error" in metadata.current_details and leaks(metadata.current_details.encode(), needles) == []
    finally:
        if server is not None:
            server.stop()
        await stack.close()


async def test_a_24sevenoffice_sync_stores_no_personal_data_either(
    temporal_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    """The same promise for the second system: its companies, consumer booker and orders never reach the
    server in clear (the activity inputs and results differ from Tripletex's)."""
    stack = new_stack(temporal_env.client, tmp_path, system="finago", seed={})
    seed = without_customer_references(sample_office_data(stack.office_id))
    stack.qondor.seed(seed)
    needles = personal_data(seed)
    stack.start_worker()
    try:
        base = stack.office_id * 1000
        await stack.discover()
        for n in (501, 502, 503, 504, 506):
            await stack.wait_for_state(base + n, SyncState.AWAITING_PAYMENT)
        await stack.wait_for_state(base + 505, SyncState.PAID)
        plain = plain_client(stack.client)
        raw = b""
        read = 0
        async for listed in plain.list_workflows(f"OfficeId={stack.office_id}"):
            history = await plain.get_workflow_handle(listed.id).fetch_history()
            read += 1
            for event in history.events:
                raw += event.SerializeToString()
                assert unencrypted(event) == [], f"{listed.id} event {event.event_id}: {unencrypted(event)}"
        assert read >= 6, f"only {read} of the office's workflows were read"
        assert leaks(raw, needles) == []
    finally:
        await stack.close()


def _payload_json(payload: Payload) -> dict[str, Any]:
    return json_format.MessageToDict(payload)


# --- keys and rotation ---------------------------------------------------------------------------------


def _payload(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


async def test_rotation_old_payloads_decode_new_ones_use_the_first_key_unknown_keys_fail_clearly() -> None:
    key_a, key_b = generate_key("2026-01"), generate_key("2026-07")
    [old] = await EncryptionCodec([key_a]).encode([_payload("Havblikk Teknologi AS")])
    assert old.metadata[codec.KEY_ID_METADATA] == b"2026-01" and b"Havblikk" not in old.SerializeToString()

    rotated = EncryptionCodec([key_b, key_a])  # B first: B encrypts, both decrypt
    [new] = await rotated.encode([_payload("Solberg & Dahl Advokatfirma AS")])
    assert new.metadata[codec.KEY_ID_METADATA] == b"2026-07"
    assert await rotated.decode([old, new]) == [
        _payload("Havblikk Teknologi AS"),
        _payload("Solberg & Dahl Advokatfirma AS"),
    ]
    plain = _payload("written before encryption")
    assert await rotated.decode([plain]) == [plain]

    with pytest.raises(CodecKeyError, match=r"key '2026-01', which is not configured \(configured: 2026-07\)"):
        await EncryptionCodec([key_b]).decode([old])
    impostor = CodecKey("2026-01", key_b.key)  # right id, wrong material
    with pytest.raises(CodecKeyError, match="failed authentication"):
        await EncryptionCodec([impostor]).decode([old])
    relabelled = Payload(metadata={**old.metadata, codec.KEY_ID_METADATA: b"2026-07"}, data=old.data)
    with pytest.raises(CodecKeyError, match="failed authentication"):
        await rotated.decode([relabelled])


def test_keys_come_from_the_environment_or_a_file_and_none_means_refusal(tmp_path: Path) -> None:
    a, b = generate_key("a"), generate_key("b")
    assert [k.key_id for k in codec.load_keys({codec.KEYS_ENV: f"{b.entry()}, {a.entry()}"})] == ["b", "a"]
    key_file = tmp_path / "keys"
    key_file.write_text(f"# current first\n{b.entry()}\n{a.entry()}  # rotated out, still decrypts\n")
    assert codec.load_keys({codec.KEYS_FILE_ENV: str(key_file)}) == [b, a]
    with pytest.raises(CodecConfigError, match="not both"):
        codec.load_keys({codec.KEYS_ENV: a.entry(), codec.KEYS_FILE_ENV: str(key_file)})
    with pytest.raises(CodecConfigError, match="AES-256 needs 32"):
        codec.load_keys({codec.KEYS_ENV: "short:" + base64.b64encode(b"x" * 16).decode()})
    with pytest.raises(CodecConfigError, match="appear more than once"):
        codec.load_keys({codec.KEYS_ENV: f"{a.entry()},{a.entry()}"})

    assert codec.data_converter({codec.KEYS_ENV: a.entry()}).payload_codec is not None
    with pytest.raises(CodecConfigError, match="no payload encryption keys"):
        codec.data_converter({})
    assert codec.data_converter({codec.PLAINTEXT_ENV: "allow"}) is pydantic_data_converter


def test_cli_refuses_to_connect_without_keys() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QONDOR_SYNC_CODEC")}
    env["TEMPORAL_ADDRESS"] = "127.0.0.1:1"  # never reached: the keys are checked first
    done = subprocess.run([*CLI, "status", "--office", "2", "--invoice", "2501"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "no payload encryption keys" in done.stderr and codec.KEYS_ENV in done.stderr
