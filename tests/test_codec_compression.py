"""The payload codec compresses before it encrypts, and still reads what was written before compression.

Histories hold payloads for the namespace's retention period, and a running InvoiceSync replays payloads written
months ago: an encrypted payload without the compression marker (written by the codec before compression) and a
plaintext one (written before encryption) must keep decoding.
"""

from __future__ import annotations

import json
import os

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload

from emulators.qondor.sample import bulk_invoices
from workers import codec
from workers.codec import CodecKeyError, EncryptionCodec, generate_key


def _json_payload(value: object) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value, default=str).encode())


def _encrypted_before_compression(key: codec.CodecKey, payload: Payload) -> Payload:
    """An encrypted payload exactly as the codec wrote it before compression: the key id alone authenticated."""
    nonce = os.urandom(codec.NONCE_BYTES)
    sealed = AESGCM(key.key).encrypt(nonce, payload.SerializeToString(), key.key_id.encode())
    return Payload(metadata={"encoding": codec.ENCODING, codec.KEY_ID_METADATA: key.key_id.encode()},
                   data=nonce + sealed)


INVOICE = _json_payload(bulk_invoices(2, 1, 2501, True)["invoices"][0])
"""A Qondor invoice as the Qondor emulator serves it: the kind of JSON the invoice activities pass around."""


async def test_a_large_payload_is_compressed_before_encryption_and_round_trips() -> None:
    key = generate_key("k1")
    [sealed] = await EncryptionCodec([key]).encode([INVOICE])
    assert sealed.metadata[codec.COMPRESSION_METADATA] == codec.ZLIB
    assert len(sealed.data) < len(INVOICE.SerializeToString()) / 2
    assert await EncryptionCodec([key]).decode([sealed]) == [INVOICE]


async def test_a_payload_that_does_not_shrink_is_encrypted_uncompressed() -> None:
    small = _json_payload("ok")
    [sealed] = await EncryptionCodec([generate_key("k1")]).encode([small])
    assert codec.COMPRESSION_METADATA not in sealed.metadata
    assert len(sealed.data) == codec.NONCE_BYTES + len(small.SerializeToString()) + 16  # the GCM tag


async def test_payloads_written_before_compression_and_plaintext_ones_still_decode() -> None:
    key = generate_key("k1")
    old = _encrypted_before_compression(key, INVOICE)
    plain = _json_payload({"written": "before encryption"})
    assert await EncryptionCodec([key]).decode([old, plain]) == [INVOICE, plain]


async def test_the_compression_marker_is_authenticated() -> None:
    key = generate_key("k1")
    current = EncryptionCodec([key])
    [sealed] = await current.encode([INVOICE])
    stripped = Payload(metadata={k: v for k, v in sealed.metadata.items() if k != codec.COMPRESSION_METADATA},
                       data=sealed.data)
    with pytest.raises(CodecKeyError, match="failed authentication"):
        await current.decode([stripped])
    old = _encrypted_before_compression(key, INVOICE)
    marked = Payload(metadata={**old.metadata, codec.COMPRESSION_METADATA: codec.ZLIB}, data=old.data)
    with pytest.raises(CodecKeyError, match="failed authentication"):
        await current.decode([marked])
