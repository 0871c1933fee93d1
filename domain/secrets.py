"""Where a secret lives: a reference to an environment variable or a file, never the value itself.

Its own module so that every settings model (the office file, each accounting system's settings) can
use it without importing the whole office configuration.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator


class SecretRef(BaseModel):
    """Where a secret lives: ``{env = "NAME"}`` or ``{file = "/run/secrets/name"}``; never inline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_inline(cls, value: Any) -> Any:
        if isinstance(value, str):
            raise ValueError(
                'secrets are never written inline; give {env = "VARIABLE"} or {file = "/path/to/secret"}'
            )
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of 'env' or 'file' (secrets are never written inline)")
        return self

    def problem(self) -> str | None:
        """Why the secret cannot be read now, or None when it can."""
        if self.env is not None:
            return None if os.environ.get(self.env) else f"environment variable {self.env} is not set"
        assert self.file is not None
        return None if Path(self.file).is_file() else f"secret file {self.file} does not exist"

    def resolve(self) -> str:
        """The secret's value. Call only where a client is built; never log or return it."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise KeyError(f"environment variable {self.env} is not set")
            return value
        assert self.file is not None
        return Path(self.file).read_text(encoding="utf-8").strip()

    def __repr__(self) -> str:
        return f"SecretRef(env={self.env!r})" if self.env else f"SecretRef(file={self.file!r})"
