"""Slack alerts for what needs a human (a data error to fix in Qondor, a configuration to repair).

An alert is a side channel: a failure to send one is logged and reported as ``False``, never raised,
so Slack being down or misconfigured can never break or retry a sync.

The office's ``SlackSettings`` name either an incoming webhook or a bot token plus channel (the token
wins when both are given). Secrets are resolved once, when the notifier is built, and never logged: a
webhook URL *is* a credential, so every log line is scrubbed of it.

slack-sdk's async clients need aiohttp, which is not a dependency of this project; the SDK's standard-library
clients (``WebhookClient``, ``WebClient``) run in a worker thread instead, which keeps the coroutine API.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web import WebClient
from slack_sdk.webhook import WebhookClient

from domain.config import SecretRef, SlackSettings

log = logging.getLogger(__name__)

DEFAULT_API_URL = WebClient.BASE_URL  # "https://slack.com/api/"
TIMEOUT_SECONDS = 10
HEADER_LIMIT = 150  # Slack's limits for a header's plain text, a section's text and a field
SECTION_LIMIT = 3000
FIELD_LIMIT = 2000
FIELDS_PER_SECTION = 10


def escape(text: str) -> str:
    """Slack mrkdwn control characters; also keeps data from Qondor from forming ``<!channel>`` mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def build_message(
    text: str, title: str | None = None, fields: dict[str, str] | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """The notification fallback text and the Block Kit blocks of one alert."""
    fallback = escape(f"{title}: {text}" if title else text)
    blocks: list[dict[str, Any]] = []
    if title:
        blocks.append({"type": "header", "text": {"type": "plain_text", "text": _clip(title, HEADER_LIMIT)}})
    if text:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _clip(escape(text), SECTION_LIMIT)}})
    items = [
        {"type": "mrkdwn", "text": _clip(f"*{escape(name)}*\n{escape(value)}", FIELD_LIMIT)}
        for name, value in (fields or {}).items()
    ]
    for start in range(0, len(items), FIELDS_PER_SECTION):
        blocks.append({"type": "section", "fields": items[start : start + FIELDS_PER_SECTION]})
    return _clip(fallback, SECTION_LIMIT), blocks


class SlackNotifier:
    """Sends one office's alerts; disabled (every ``send`` returns False) when no target is configured."""

    def __init__(self, settings: SlackSettings | None, *, timeout: int = TIMEOUT_SECONDS) -> None:
        self._webhook: WebhookClient | None = None
        self._web: WebClient | None = None
        self._channel: str | None = None
        self._secrets: list[str] = []
        if settings is None:
            return
        ref: SecretRef | None = settings.bot_token or settings.webhook_url
        if ref is None:
            return
        try:
            secret = ref.resolve()
        except (KeyError, OSError) as exc:  # messages name the variable or file, never a value
            log.warning("Slack alerts are off: cannot read the Slack secret %r (%s)", ref, exc)
            return
        self._secrets.append(secret)
        if settings.bot_token is not None:
            api_url = settings.api_url or DEFAULT_API_URL
            self._web = WebClient(token=secret, base_url=api_url.rstrip("/") + "/", timeout=timeout)
            self._channel = settings.channel
        else:
            self._webhook = WebhookClient(secret, timeout=timeout)

    def __repr__(self) -> str:
        target = "bot" if self._web else "webhook" if self._webhook else "disabled"
        return f"SlackNotifier({target}{f', channel={self._channel!r}' if self._channel else ''})"

    @property
    def enabled(self) -> bool:
        return self._web is not None or self._webhook is not None

    async def send(self, text: str, *, title: str | None = None, fields: dict[str, str] | None = None) -> bool:
        """Post an alert; True when Slack accepted it, False when disabled or it failed (logged, never raised)."""
        if not self.enabled:
            return False
        fallback, blocks = build_message(text, title, fields)
        try:
            return await asyncio.to_thread(self._post, fallback, blocks)
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            log.warning(
                "Slack alert not sent: the Slack API answered HTTP %s, error %s",
                exc.response.status_code,
                self._scrub(str(data.get("error", "unknown"))),
            )
            return False
        except Exception as exc:
            log.warning("Slack alert not sent: %s", self._scrub(f"{type(exc).__name__}: {exc}"))
            return False

    def _post(self, text: str, blocks: list[dict[str, Any]]) -> bool:
        """Blocking send (runs in a worker thread). Raises on transport errors and Slack API errors."""
        if self._web is not None:
            assert self._channel is not None  # SlackSettings guarantees a channel with a bot token
            self._web.chat_postMessage(channel=self._channel, text=text, blocks=blocks)  # raises unless ok
            return True
        assert self._webhook is not None
        response = self._webhook.send(text=text, blocks=blocks)
        if response.status_code == 200:
            return True
        log.warning(
            "Slack alert not sent: the webhook answered HTTP %s: %s",
            response.status_code,
            self._scrub(_clip(str(response.body), 200)),
        )
        return False

    def _scrub(self, message: str) -> str:
        for secret in self._secrets:
            message = message.replace(secret, "***")
        return message
