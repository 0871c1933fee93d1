"""Encryption of every payload this service sends to Temporal: the payload codec and the data converter.

Why: workflow and activity payloads carry customer names, e-mails, addresses and organisation numbers, and
the Temporal server (and its Web UI, and anyone with read access to its database or backups) would hold them
in clear for the namespace's retention period. With this codec the server only ever stores ciphertext;
the worker, the CLI and the demo (every client made by ``workers.worker.connect`` or ``start_temporal``)
encrypt before sending and decrypt after receiving, and operators who hold the key read payloads through
the codec server (``workers/codec_server.py``).

* AES-256-GCM (``cryptography``), a fresh 96-bit nonce per payload, the key id as associated data (a payload
  relabelled with another key id fails authentication instead of decrypting under the wrong key).
* An encrypted payload is ``{encoding: binary/encrypted, encryption-key-id: <id>}`` + ``nonce || ciphertext``
  of the serialized original payload (its own metadata, e.g. ``json/plain``, is inside the ciphertext).
* Compression: the serialized payload is zlib-compressed before encryption when that makes it smaller (ciphertext
  does not compress, so it is now or never), marked ``compression: zlib``; the marker is part of the associated
  data, so removing or adding it fails authentication. Invoice payloads (JSON with repeated field names) shrink
  to about 40 %: the server writes, stores and replays that much less per invoice. Encrypted payloads without
  the marker (written before compression) decrypt as before.
* Several keys: the first encrypts, all decrypt, so a key can be rotated out without making older histories
  unreadable (put the new key first, keep the old one until no open workflow or retained history uses it).
* Payloads that are not encrypted (histories from before encryption, the committed replay histories) decode
  unchanged, so turning encryption on needs no migration.
* Failures: ``DefaultFailureConverterWithEncodedAttributes`` moves each failure's message and stack trace
  into an encoded payload, because error messages name customers too (``domain/rules.py``).

Keys come from ``QONDOR_SYNC_CODEC_KEYS`` (``id1:base64key,id2:base64key``) or from the file named by
``QONDOR_SYNC_CODEC_KEYS_FILE`` (the same entries, one per line or comma-separated, ``#`` comments), never
from the office file. Without keys ``data_converter()`` refuses (see :class:`CodecConfigError`) unless
``QONDOR_SYNC_CODEC_PLAINTEXT=allow`` says plaintext is intended.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import os
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

log = logging.getLogger(__name__)

KEYS_ENV = "QONDOR_SYNC_CODEC_KEYS"
KEYS_FILE_ENV = "QONDOR_SYNC_CODEC_KEYS_FILE"
PLAINTEXT_ENV = "QONDOR_SYNC_CODEC_PLAINTEXT"
"""``allow``: run without encryption when no keys are configured (never in production; the refusal is the default)."""

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
COMPRESSION_METADATA = "compression"
ZLIB = b"zlib"
COMPRESS_FROM_BYTES = 256
"""Payloads shorter than this are sealed as they are: ids and states do not shrink, and each ``zlib.compress`` call
costs tens of microseconds whatever the size (most of an invoice's twenty-odd payloads are this small)."""
NONCE_BYTES = 12
KEY_BYTES = 32
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class CodecConfigError(Exception):
    """The encryption keys are missing or malformed: the process must not start (it would send personal data
    in clear, or could not read the payloads the others wrote)."""


class CodecKeyError(ValueError):
    """A payload cannot be decrypted: its key is not configured, or the key material does not match."""


@dataclass(frozen=True)
class CodecKey:
    """One AES-256 key and the id stored beside every payload it encrypted (rotation looks keys up by it)."""

    key_id: str
    key: bytes = dataclasses.field(repr=False)

    def __post_init__(self) -> None:
        if not _KEY_ID.match(self.key_id):
            raise CodecConfigError(f"codec key id {self.key_id!r}: use 1-64 letters, digits, '.', '_' or '-'")
        if len(self.key) != KEY_BYTES:
            raise CodecConfigError(
                f"codec key {self.key_id!r} is {len(self.key)} bytes; AES-256 needs {KEY_BYTES} "
                "(`qondor-sync codec-key --id <id>` prints a new one)"
            )

    def entry(self) -> str:
        """The ``id:base64key`` form the environment variable and the key file hold."""
        return f"{self.key_id}:{base64.b64encode(self.key).decode()}"


def generate_key(key_id: str) -> CodecKey:
    """A new random key (the demo's per-run key; operators use it to mint production keys too)."""
    return CodecKey(key_id, AESGCM.generate_key(bit_length=KEY_BYTES * 8))


def parse_keys(text: str, source: str = KEYS_ENV) -> list[CodecKey]:
    """``id:base64key`` entries separated by commas or newlines; ``#`` starts a comment. Order matters: the
    first key encrypts."""
    keys: list[CodecKey] = []
    for raw_line in text.splitlines():
        for item in raw_line.split("#", 1)[0].split(","):
            item = item.strip()
            if not item:
                continue
            key_id, sep, encoded = item.partition(":")
            if not sep:
                raise CodecConfigError(f"{source}: entry {key_id[:12]!r}... is not 'id:base64key'")
            try:
                material = base64.b64decode(encoded.strip(), validate=True)
            except binascii.Error:
                raise CodecConfigError(f"{source}: the key of {key_id.strip()!r} is not valid base64") from None
            keys.append(CodecKey(key_id.strip(), material))
    ids = [k.key_id for k in keys]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise CodecConfigError(f"{source}: key id(s) {', '.join(duplicates)} appear more than once")
    return keys


def load_keys(environ: Mapping[str, str] | None = None) -> list[CodecKey]:
    """The configured keys (empty when none): ``QONDOR_SYNC_CODEC_KEYS`` or ``QONDOR_SYNC_CODEC_KEYS_FILE``.

    Setting both is refused rather than merged: which list comes first decides the encrypting key, and two
    sources make that easy to get wrong during a rotation.
    """
    env = os.environ if environ is None else environ
    inline, file = env.get(KEYS_ENV, "").strip(), env.get(KEYS_FILE_ENV, "").strip()
    if inline and file:
        raise CodecConfigError(f"set either {KEYS_ENV} or {KEYS_FILE_ENV}, not both")
    if file:
        try:
            text = Path(file).read_text()
        except OSError as exc:
            raise CodecConfigError(f"{KEYS_FILE_ENV}: cannot read {file}: {exc.strerror}") from None
        keys = parse_keys(text, f"{KEYS_FILE_ENV} ({file})")
        if not keys:
            raise CodecConfigError(f"{KEYS_FILE_ENV}: {file} holds no key")
        return keys
    return parse_keys(inline) if inline else []


class EncryptionCodec(PayloadCodec):
    """AES-GCM payload codec with key rotation: encrypts with ``keys[0]``, decrypts with whichever key the
    payload names."""

    def __init__(self, keys: Sequence[CodecKey]) -> None:
        if not keys:
            raise CodecConfigError("the encryption codec needs at least one key")
        self.keys = list(keys)
        self._ciphers = {k.key_id: AESGCM(k.key) for k in self.keys}
        self._current = self.keys[0].key_id

    @property
    def key_ids(self) -> list[str]:
        return [k.key_id for k in self.keys]

    async def encode(self, payloads: Iterable[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Iterable[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        key_id = self._current.encode()
        metadata = {"encoding": ENCODING, KEY_ID_METADATA: key_id}
        plain = payload.SerializeToString()
        compressed = zlib.compress(plain, 1) if len(plain) >= COMPRESS_FROM_BYTES else plain
        if len(compressed) < len(plain):
            plain, metadata[COMPRESSION_METADATA] = compressed, ZLIB
        sealed = self._ciphers[self._current].encrypt(nonce, plain, _associated(key_id, metadata))
        return Payload(metadata=metadata, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # written before encryption was turned on (or by a plaintext process): leave as is
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecKeyError(
                f"payload encrypted with key {key_id!r}, which is not configured (configured: "
                f"{', '.join(self.key_ids)}); add it to {KEYS_ENV} / {KEYS_FILE_ENV} after the current key"
            )
        associated = _associated(key_id.encode(), payload.metadata)
        try:
            plain = cipher.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], associated)
        except InvalidTag:
            raise CodecKeyError(
                f"payload under key {key_id!r} failed authentication: the configured key {key_id!r} is not the "
                "one that encrypted it, or the payload was altered"
            ) from None
        if payload.metadata.get(COMPRESSION_METADATA) == ZLIB:
            plain = zlib.decompress(plain)
        return Payload.FromString(plain)


def _associated(key_id: bytes, metadata: Mapping[str, bytes]) -> bytes:
    """What authenticates an encrypted payload's metadata: the key id, plus the compression marker when set (the
    key id alone for payloads written before compression, so they still decrypt)."""
    compression = metadata.get(COMPRESSION_METADATA)
    return key_id + b"|" + compression if compression else key_id


def encrypted_converter(keys: Sequence[CodecKey]) -> DataConverter:
    """The pydantic data converter (Decimal amounts, dates) + the encryption codec + encoded failure messages."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def plaintext_allowed(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return env.get(PLAINTEXT_ENV, "").strip().lower() == "allow"


def data_converter(environ: Mapping[str, str] | None = None) -> DataConverter:
    """The data converter of every client this service makes (``connect()``): encrypted with the configured keys.

    Without keys the process refuses to start unless ``QONDOR_SYNC_CODEC_PLAINTEXT=allow``: a forgotten secret
    must not silently put personal data in clear on the server for the retention period, and a process
    without the keys could not read what the encrypted ones wrote anyway (its tasks would fail one by one).
    """
    keys = load_keys(environ)
    if keys:
        return encrypted_converter(keys)
    if plaintext_allowed(environ):
        log.warning("no codec keys: payloads go to Temporal UNENCRYPTED (%s=allow)", PLAINTEXT_ENV)
        return pydantic_data_converter
    raise CodecConfigError(
        f"no payload encryption keys: set {KEYS_ENV}='id:base64key[,oldid:base64key]' or {KEYS_FILE_ENV}=<file> "
        f"(the same keys on every worker and CLI; see docs/operations.md), or {PLAINTEXT_ENV}=allow to send "
        "personal data to Temporal unencrypted"
    )


def embedded_keys(*, persistent: bool = False) -> list[CodecKey]:
    """Keys for the embedded dev server (``start_temporal``): the configured ones, else a fresh key for this
    process, exported in ``QONDOR_SYNC_CODEC_KEYS`` so ``connect()`` here and CLI subprocesses share it.

    A per-process key suits the dev server's in-memory database, which dies with the process; a persistent
    database (``persistent``) would outlive the key, so that case needs configured keys.
    """
    keys = load_keys()
    if keys:
        return keys
    if persistent:
        raise CodecConfigError(f"a persistent dev-server database needs configured keys: {KEYS_ENV} or {KEYS_FILE_ENV}")
    key = generate_key("ephemeral")
    os.environ[KEYS_ENV] = key.entry()
    log.info("no codec keys configured: generated an ephemeral key for this process (%s)", KEYS_ENV)
    return [key]
