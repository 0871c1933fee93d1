"""Office configuration: one file (TOML or YAML) describing every Qondor office this service serves.

Each office has its own accounting system, credentials and settings. Credentials are *references*
(an environment variable or a file), resolved only inside activities when a client is built, so a
secret never enters a log line, a workflow input or a history. A bad file fails at start with one
message listing every problem (office, field, why).
"""

from __future__ import annotations

import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from domain.secrets import SecretRef


class ConfigFileError(Exception):
    """The office file is unreadable or invalid; ``problems`` lists each one as 'where: why'."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"office configuration {path} has {len(problems)} problem(s):\n{listing}")


class AccountingSystem(StrEnum):
    TRIPLETEX = "tripletex"
    FINAGO = "finago"  # 24SevenOffice (Finago Office); its flows come with their own issue


class Flow(StrEnum):
    INVOICES = "invoices"
    PAYMENTS = "payments"
    CUSTOMERS_PROJECTS = "customers_projects"
    COSTS_SALES = "costs_sales"


class InvoiceMode(StrEnum):
    INVOICE = "invoice"  # an invoice is created and charged in the accounting system
    ORDER = "order"  # an order is created; finance invoices it there


class ArticleMapping(BaseModel):
    """How a Qondor VAT article becomes a line in the accounting system: a VAT type or a product."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vat_type: str | None = Field(default=None, description="accounting VAT code number, e.g. '3' = 25 %")
    product: str | None = Field(default=None, description="accounting product number")

    @model_validator(mode="after")
    def _exactly_one(self) -> ArticleMapping:
        if (self.vat_type is None) == (self.product is None):
            raise ValueError("map an article to exactly one of 'vat_type' or 'product'")
        return self


class QondorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = "https://qondor.azure-api.net/Prod"
    subscription_key: SecretRef
    max_calls_per_second: float = Field(
        default=9.0, ge=0, description="client-side pacing under Qondor's 10 calls/s per key; 0 = unpaced"
    )


class TripletexSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = "https://tripletex.no/v2"
    consumer_token: SecretRef
    employee_token: SecretRef
    company_id: int = Field(default=0, description="0 = the token owner's company; else an accountant client")


class SlackSettings(BaseModel):
    """Where alerts for this office go: an incoming webhook, or a bot token plus channel."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook_url: SecretRef | None = None
    bot_token: SecretRef | None = None
    channel: str | None = None
    api_url: str | None = Field(default=None, description="Slack Web API base; tests point it at a fake")

    @model_validator(mode="after")
    def _target(self) -> SlackSettings:
        if self.bot_token is not None and not self.channel:
            raise ValueError("a bot_token needs a channel")
        return self


class OfficeConfig(BaseModel):
    """Everything the sync needs to know about one Qondor office."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int = Field(gt=0)
    name: str
    accounting_system: AccountingSystem = AccountingSystem.TRIPLETEX
    flows: frozenset[Flow] = frozenset({Flow.INVOICES, Flow.PAYMENTS})
    invoice_mode: InvoiceMode = InvoiceMode.INVOICE
    send_to_customer: bool = Field(default=False, description="let the accounting system e-mail/EHF invoices")
    article_mapping: dict[str, ArticleMapping] = Field(default_factory=dict)
    card_payment_type_id: int | None = Field(default=None, description="accounting payment type for cards")
    queue_poll_seconds: float = Field(default=10.0, gt=0)
    payment_sweep_minutes: float = Field(default=5.0, gt=0)
    payment_fallback_check_days: float = Field(default=7.0, gt=0)
    costs_lookback_days: int = Field(default=30, ge=1)
    customers_projects_interval_minutes: float = Field(default=60.0, gt=0)
    qondor: QondorSettings
    tripletex: TripletexSettings | None = Field(default=None, validate_default=True)
    slack: SlackSettings | None = None

    @field_validator("article_mapping")
    @classmethod
    def _article_keys(cls, value: dict[str, ArticleMapping]) -> dict[str, ArticleMapping]:
        for key in value:
            if not key.strip():
                raise ValueError("article numbers must not be empty")
        return value

    @field_validator("tripletex")
    @classmethod
    def _system_settings(cls, value: TripletexSettings | None, info: ValidationInfo) -> TripletexSettings | None:
        # A field validator, not a model validator: it also runs when other fields of the office are invalid,
        # so this problem is listed with the others instead of surfacing only after they are fixed.
        if value is None and info.data.get("accounting_system") is AccountingSystem.TRIPLETEX:
            raise ValueError("accounting_system is 'tripletex' but the [tripletex] settings are missing")
        return value

    def secret_refs(self) -> dict[str, SecretRef]:
        """Every secret reference of the office, by its field path (for start-up checks)."""
        refs: dict[str, SecretRef] = {"qondor.subscription_key": self.qondor.subscription_key}
        if self.tripletex:
            refs["tripletex.consumer_token"] = self.tripletex.consumer_token
            refs["tripletex.employee_token"] = self.tripletex.employee_token
        if self.slack:
            if self.slack.webhook_url:
                refs["slack.webhook_url"] = self.slack.webhook_url
            if self.slack.bot_token:
                refs["slack.bot_token"] = self.slack.bot_token
        return refs

    def vat_mapping_for(self, article_number: str | None) -> ArticleMapping | None:
        return self.article_mapping.get(article_number or "")


class ServiceConfig(BaseModel):
    """The whole file: a list of offices (ids unique)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    offices: list[OfficeConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> ServiceConfig:
        seen: set[int] = set()
        for office in self.offices:
            if office.id in seen:
                raise ValueError(f"office id {office.id} appears more than once")
            seen.add(office.id)
        return self

    def office(self, office_id: int) -> OfficeConfig:
        for office in self.offices:
            if office.id == office_id:
                return office
        raise KeyError(f"office {office_id} is not in the office configuration")


def _where(data: dict[str, Any], loc: tuple[Any, ...]) -> str:
    """'office 2 (Oslo) -> tripletex.consumer_token' from a pydantic error location."""
    if len(loc) >= 2 and loc[0] == "offices" and isinstance(loc[1], int):
        offices = data.get("offices") or []
        raw = offices[loc[1]] if loc[1] < len(offices) and isinstance(offices[loc[1]], dict) else {}
        label = f"office #{loc[1] + 1}"
        if "id" in raw:
            label = f"office {raw['id']}" + (f" ({raw['name']})" if raw.get("name") else "")
        rest = ".".join(str(p) for p in loc[2:])
        return f"{label} -> {rest}" if rest else label
    return ".".join(str(p) for p in loc) or "file"


def _raw_offices(data: dict[str, Any]) -> list[Any]:
    offices = data.get("offices")
    return offices if isinstance(offices, list) else []


def _duplicate_ids(data: dict[str, Any]) -> list[str]:
    """Duplicate office ids, found in the raw document (ServiceConfig's own check runs only on valid offices)."""
    first: dict[Any, str] = {}
    problems = []
    for index, raw in enumerate(_raw_offices(data)):
        if not isinstance(raw, dict) or "id" not in raw:
            continue
        where = _where(data, ("offices", index))
        if raw["id"] in first:
            problems.append(f"{where} -> id: office id {raw['id']} appears more than once (also {first[raw['id']]})")
        else:
            first[raw["id"]] = where
    return problems


def _valid_offices(data: dict[str, Any]) -> list[OfficeConfig]:
    """The offices that are valid on their own, so their secrets are checked even when another office is not."""
    offices = []
    for raw in _raw_offices(data):
        try:
            offices.append(OfficeConfig.model_validate(raw))
        except ValidationError:
            continue
    return offices


def parse_config(data: dict[str, Any], source: Path | str = "<memory>", check_secrets: bool = True) -> ServiceConfig:
    """Validate a decoded config document; raise ConfigFileError listing every problem."""
    if "office" in data and "offices" not in data:  # TOML's [[office]] tables
        data = {**{k: v for k, v in data.items() if k != "office"}, "offices": data["office"]}
    problems: list[str] = []
    config: ServiceConfig | None = None
    try:
        config = ServiceConfig.model_validate(data)
    except ValidationError as exc:
        duplicates = _duplicate_ids(data)
        # ServiceConfig's duplicate-id error (location ()) says what ``duplicates`` says, with less detail.
        problems += [f"{_where(data, tuple(e['loc']))}: {e['msg']}" for e in exc.errors() if e["loc"] or not duplicates]
        problems += duplicates
    if check_secrets:
        problems += [
            f"office {o.id} ({o.name}) -> {field}: {why}"
            for o in (config.offices if config else _valid_offices(data))
            for field, ref in o.secret_refs().items()
            if (why := ref.problem())
        ]
    if problems or config is None:
        raise ConfigFileError(source, problems)
    return config


def load_config(path: Path | str, check_secrets: bool = True) -> ServiceConfig:
    """Read and validate the office file (``.toml``, ``.yaml`` or ``.yml``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(path, [f"cannot read the file: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text) if path.suffix in {".yaml", ".yml"} else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigFileError(path, [f"not valid {path.suffix.lstrip('.').upper() or 'TOML'}: {exc}"]) from None
    if not isinstance(data, dict):
        raise ConfigFileError(path, ["the file must hold a table/mapping with an 'office' list"])
    return parse_config(data, path, check_secrets)
