"""SlackNotifier against a fake Slack on loopback: what arrives, and that failures never raise."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from clients.slack import SlackNotifier, build_message
from domain.config import SecretRef, SlackSettings
from emulators.server import RunningServer, serve_in_thread

TOKEN = "xoxb-test-token-0123456789"
HOOK_PATH = "/services/T000/B000/hook-secret-abcdef"


@dataclass
class FakeSlack:
    """Records what was posted; ``status``/``api_error`` make it fail the way Slack can."""

    webhooks: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    auth: list[str | None] = field(default_factory=list)
    status: int = 200
    api_error: str | None = None

    def app(self) -> Starlette:
        async def webhook(request: Request) -> Response:
            self.webhooks.append({"path": request.url.path, "json": await request.json()})
            if self.status != 200:
                return PlainTextResponse("internal_error", status_code=self.status)
            return PlainTextResponse("ok")

        async def post_message(request: Request) -> Response:
            self.auth.append(request.headers.get("authorization"))
            self.messages.append(await request.json())
            if self.status != 200:
                return PlainTextResponse("upstream failure", status_code=self.status)
            if self.api_error:
                return JSONResponse({"ok": False, "error": self.api_error})
            return JSONResponse({"ok": True, "channel": "C123", "ts": "1700000000.000100"})

        return Starlette(
            routes=[
                Route("/services/{rest:path}", webhook, methods=["POST"]),
                Route("/api/chat.postMessage", post_message, methods=["POST"]),
            ]
        )


@pytest.fixture(scope="module")
def fake_server() -> Iterator[tuple[FakeSlack, RunningServer]]:
    fake = FakeSlack()
    with serve_in_thread(fake.app()) as server:
        yield fake, server


@pytest.fixture
def fake(fake_server: tuple[FakeSlack, RunningServer], monkeypatch: pytest.MonkeyPatch) -> FakeSlack:
    """The fake, reset, with the secrets in the environment as an office file would reference them."""
    slack, server = fake_server
    slack.webhooks.clear()
    slack.messages.clear()
    slack.auth.clear()
    slack.status, slack.api_error = 200, None
    monkeypatch.setenv("TEST_SLACK_WEBHOOK", server.url + HOOK_PATH)
    monkeypatch.setenv("TEST_SLACK_TOKEN", TOKEN)
    slack.api_url = server.url + "/api"  # type: ignore[attr-defined]
    return slack


def webhook_settings() -> SlackSettings:
    return SlackSettings(webhook_url=SecretRef(env="TEST_SLACK_WEBHOOK"))


def bot_settings(fake: FakeSlack, channel: str = "#invoicing") -> SlackSettings:
    return SlackSettings(bot_token=SecretRef(env="TEST_SLACK_TOKEN"), channel=channel, api_url=fake.api_url)  # type: ignore[attr-defined]


async def test_webhook_alert_arrives_with_text_title_and_fields(fake: FakeSlack) -> None:
    notifier = SlackNotifier(webhook_settings())

    sent = await notifier.send(
        "Customer has no organisation number", title="Invoice 1001 failed", fields={"Office": "7 (Oslo)"}
    )

    assert notifier.enabled and sent is True
    [posted] = fake.webhooks
    assert posted["path"] == HOOK_PATH
    assert posted["json"]["text"] == "Invoice 1001 failed: Customer has no organisation number"
    assert posted["json"]["blocks"] == [
        {"type": "header", "text": {"type": "plain_text", "text": "Invoice 1001 failed"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "Customer has no organisation number"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Office*\n7 (Oslo)"}]},
    ]


async def test_bot_token_posts_to_the_channel_with_the_token(fake: FakeSlack) -> None:
    notifier = SlackNotifier(bot_settings(fake))

    sent = await notifier.send("Article 3000 is not mapped", title="Needs attention")

    assert sent is True
    [message] = fake.messages
    assert fake.auth == [f"Bearer {TOKEN}"]
    assert message["channel"] == "#invoicing"
    assert message["text"] == "Needs attention: Article 3000 is not mapped"
    assert message["blocks"] == [
        {"type": "header", "text": {"type": "plain_text", "text": "Needs attention"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "Article 3000 is not mapped"}},
    ]
    assert fake.webhooks == []


async def test_bot_token_wins_when_both_targets_are_configured(fake: FakeSlack) -> None:
    settings = SlackSettings(
        webhook_url=SecretRef(env="TEST_SLACK_WEBHOOK"),
        bot_token=SecretRef(env="TEST_SLACK_TOKEN"),
        channel="#ops",
        api_url=fake.api_url,  # type: ignore[attr-defined]
    )

    assert await SlackNotifier(settings).send("hello") is True
    assert [m["channel"] for m in fake.messages] == ["#ops"]
    assert fake.webhooks == []


@pytest.mark.parametrize("settings", [None, SlackSettings()], ids=["no-settings", "no-target"])
async def test_disabled_without_a_target(settings: SlackSettings | None, fake: FakeSlack) -> None:
    notifier = SlackNotifier(settings)

    assert notifier.enabled is False
    assert await notifier.send("nobody hears this") is False
    assert fake.webhooks == [] and fake.messages == []


async def test_unreadable_secret_disables_with_a_warning_naming_the_variable(
    fake: FakeSlack, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv("TEST_SLACK_WEBHOOK")

    with caplog.at_level(logging.WARNING, logger="clients.slack"):
        notifier = SlackNotifier(webhook_settings())

    assert notifier.enabled is False
    assert await notifier.send("x") is False
    assert "TEST_SLACK_WEBHOOK" in caplog.text


@pytest.mark.parametrize("target", ["webhook", "bot"])
async def test_http_500_returns_false_without_raising_or_logging_the_secret(
    target: str, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    fake.status = 500
    notifier = SlackNotifier(webhook_settings() if target == "webhook" else bot_settings(fake))

    with caplog.at_level(logging.WARNING, logger="clients.slack"):
        sent = await notifier.send("the sync failed", title="Alert")

    assert sent is False
    assert len(fake.webhooks) + len(fake.messages) >= 1  # it did try
    assert "Slack alert not sent" in caplog.text
    assert TOKEN not in caplog.text and "hook-secret-abcdef" not in caplog.text


async def test_slack_api_error_returns_false(fake: FakeSlack, caplog: pytest.LogCaptureFixture) -> None:
    fake.api_error = "channel_not_found"

    with caplog.at_level(logging.WARNING, logger="clients.slack"):
        sent = await SlackNotifier(bot_settings(fake, channel="#gone")).send("x")

    assert sent is False
    assert "channel_not_found" in caplog.text
    assert TOKEN not in caplog.text


async def test_unreachable_slack_returns_false(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:  # a port nobody listens on once the socket is closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    secret_url = f"http://127.0.0.1:{port}/services/T/B/unreachable-secret"
    monkeypatch.setenv("TEST_SLACK_WEBHOOK", secret_url)

    with caplog.at_level(logging.WARNING, logger="clients.slack"):
        sent = await SlackNotifier(webhook_settings(), timeout=2).send("x")

    assert sent is False
    assert "unreachable-secret" not in caplog.text


def test_repr_never_shows_the_secret(fake: FakeSlack) -> None:
    assert TOKEN not in repr(SlackNotifier(bot_settings(fake)))
    assert "hook-secret" not in repr(SlackNotifier(webhook_settings()))


async def test_text_from_qondor_cannot_mention_everyone(fake: FakeSlack) -> None:
    await SlackNotifier(webhook_settings()).send("Customer <!channel> & Sons", fields={"Name": "<@U123>"})

    [posted] = fake.webhooks
    assert posted["json"]["text"] == "Customer &lt;!channel&gt; &amp; Sons"
    assert posted["json"]["blocks"][0]["text"]["text"] == "Customer &lt;!channel&gt; &amp; Sons"
    assert posted["json"]["blocks"][1]["fields"][0]["text"] == "*Name*\n&lt;@U123&gt;"


def test_block_kit_limits_are_respected() -> None:
    fields = {f"Field {i}": "v" * 3000 for i in range(12)}

    fallback, blocks = build_message("t" * 5000, title="T" * 200, fields=fields)

    header, section, *field_sections = blocks
    assert len(header["text"]["text"]) == 150
    assert len(section["text"]["text"]) == 3000
    assert [len(s["fields"]) for s in field_sections] == [10, 2]
    assert all(len(f["text"]) <= 2000 for s in field_sections for f in s["fields"])
    assert len(fallback) <= 3000
