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
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from accounting.finago.settings import FinagoArticleMapping, FinagoSettings
from accounting.tripletex.settings import TripletexSettings
from domain.secrets import SecretRef

__all__ = [
    "AccountingSettings", "AccountingSystem", "ArticleMapping", "ConfigFileError", "FinagoArticleMapping",
    "FinagoSettings", "Flow", "InvoiceMode", "OfficeConfig", "QondorSettings", "SecretRef", "ServiceConfig",
    "SlackSettings", "TripletexSettings", "load_config", "parse_config",
]


class ConfigFileError(Exception):
    """The office file is unreadable or invalid; ``problems`` lists each one as 'where: why'."""

    def __init__(self, path: Path | str, problems: list[str]) -> None:
        self.problems = problems
        listing = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"office configuration {path} has {len(problems)} problem(s):\n{listing}")


class AccountingSystem(StrEnum):
    TRIPLETEX = "tripletex"
    FINAGO = "finago"  # 24SevenOffice (Finago Office)

    @property
    def label(self) -> str:
        return _SYSTEM_LABELS[self]


_SYSTEM_LABELS = {AccountingSystem.TRIPLETEX: "Tripletex", AccountingSystem.FINAGO: "24SevenOffice / Finago Office"}

AccountingSettings = Annotated[TripletexSettings | FinagoSettings, Field(discriminator="system")]
"""An office's ``[office.accounting]`` table: one settings model per system, chosen by its ``system`` key."""

_SETTINGS_BY_SYSTEM: dict[str, type[BaseModel]] = {
    model.model_fields["system"].default: model for model in (TripletexSettings, FinagoSettings)
}
_KNOWN_SYSTEMS = ", ".join(f"'{name}' ({AccountingSystem(name).label})" for name in _SETTINGS_BY_SYSTEM)


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
    actuals_write_share: float = Field(
        default=0.5, gt=0, le=1,
        description="the cost and sales sync's Sale/Cost writes take at most this share of max_calls_per_second, "
        "so a backfill never starves invoice sync of Qondor calls",
    )


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


class _LegacyProblem:
    """Why an office's accounting settings cannot be read; reported on the ``accounting`` field.

    The conversion of the old form runs before field validation and must not raise there: a model-level error
    would hide every other problem of the office, which the one-message listing promises to show.
    """

    def __init__(self, message: str) -> None:
        self.message = message


_TRIPLETEX_ONLY: dict[str, str] = {
    "invoice_mode": "24SevenOffice invoices are always created as invoices; [office.accounting] send_to_factoring "
                    "decides whether they go to factoring at once",
    "send_to_customer": "[office.accounting] send_to_factoring decides whether 24SevenOffice distributes the invoice",
    "article_mapping": "map articles for 24SevenOffice in [office.accounting.article_mapping] with product_id or "
                       "category_id (unmapped articles use misc_product_id)",
    "card_payment_type_id": "use card_payment_method_id in [office.accounting]",
}
"""Office-level options that only Tripletex reads, and where a 24SevenOffice office says the same thing."""


class OfficeConfig(BaseModel):
    """Everything the sync needs to know about one Qondor office.

    ``accounting`` holds the office's accounting system and its settings, one model per system. Files written
    before it existed say ``accounting_system = "tripletex"`` (or nothing) plus ``[office.tripletex]``; that form
    is still read (``_legacy_form``) and means the same. The options ``invoice_mode``, ``send_to_customer``,
    ``article_mapping`` and ``card_payment_type_id`` stay at office level for those files and their callers, but
    only Tripletex reads them: a 24SevenOffice office must leave them at their defaults (its own equivalents are
    in :class:`FinagoSettings`), so a setting that would silently do nothing is refused instead.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int = Field(gt=0)
    name: str
    accounting: AccountingSettings
    flows: frozenset[Flow] = frozenset({Flow.INVOICES, Flow.PAYMENTS})
    invoice_mode: InvoiceMode = InvoiceMode.INVOICE
    send_to_customer: bool = Field(default=False, description="let the accounting system e-mail/EHF invoices")
    article_mapping: dict[str, ArticleMapping] = Field(default_factory=dict)
    card_payment_type_id: int | None = Field(default=None, description="accounting payment type for cards")
    queue_poll_seconds: float = Field(default=10.0, gt=0)
    payment_sweep_minutes: float = Field(default=5.0, gt=0)
    payment_fallback_check_days: float = Field(default=7.0, gt=0)
    costs_lookback_days: int = Field(default=30, ge=1)
    costs_sales_time: str = Field(
        default="02:00", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
        description="the cost and sales sync runs daily at this time (HH:MM, Europe/Oslo)",
    )
    costs_sales_interval_minutes: float | None = Field(
        default=None, gt=0, description="run the cost and sales sync at this interval instead of daily"
    )
    customers_projects_interval_minutes: float = Field(default=60.0, gt=0)
    projects_changed_days: int = Field(
        default=30, ge=1, description="the customer and project sync reads projects changed within this many days"
    )
    customer_sync: bool | None = Field(
        default=None,
        description="the customer and project sync creates and updates every Qondor customer; default: on for "
        "24SevenOffice (its seed), off for Tripletex (customers come with their first invoice, or with their "
        "project when costs_sales is on)",
    )
    qondor: QondorSettings
    slack: SlackSettings | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_form(cls, data: Any) -> Any:
        """The old form (``accounting_system`` + ``[office.tripletex]``) -> ``accounting``."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        written = {key: data.pop(key, None) for key in ("accounting_system", "tripletex")}
        legacy = {key: value for key, value in written.items() if value is not None}
        if data.get("accounting") is not None:
            if legacy:
                data["accounting"] = _LegacyProblem(
                    f"{' and '.join(legacy)} belong to the old form; with [office.accounting] give only "
                    "system = ... and the system's settings there")
            return data
        if not legacy:
            data["accounting"] = _LegacyProblem(
                f"the accounting settings are missing: give [office.accounting] with system = one of {_KNOWN_SYSTEMS}")
            return data
        system = legacy.get("accounting_system", AccountingSystem.TRIPLETEX.value)
        if system == AccountingSystem.TRIPLETEX:
            table = legacy.get("tripletex")
            data["accounting"] = (
                {**table, "system": system} if isinstance(table, dict) else table if table is not None
                else _LegacyProblem("accounting_system is 'tripletex' but the [tripletex] settings are missing "
                                    "(or write them as [office.accounting] with system = \"tripletex\")"))
        elif system == AccountingSystem.FINAGO:
            data["accounting"] = _LegacyProblem(
                "accounting_system is 'finago' but its settings are missing: write [office.accounting] with "
                "system = \"finago\" and the 24SevenOffice settings")
        else:
            data["accounting"] = {"system": system}  # refused by _known_system, which names the known systems
        return data

    @field_validator("accounting", mode="before")
    @classmethod
    def _known_system(cls, value: Any) -> Any:
        # Before the union, so an unknown or missing system gets one message naming every system served.
        if isinstance(value, _LegacyProblem):
            raise ValueError(value.message)
        if isinstance(value, dict):
            system = value.get("system")
            if system is None:
                raise ValueError(f"[office.accounting] needs system = one of {_KNOWN_SYSTEMS}")
            if not isinstance(system, str) or system not in _SETTINGS_BY_SYSTEM:
                raise ValueError(f"accounting system {system!r} is not one this service serves; known systems: "
                                 f"{_KNOWN_SYSTEMS}")
        return value

    @field_validator(*_TRIPLETEX_ONLY)
    @classmethod
    def _tripletex_only(cls, value: Any, info: ValidationInfo) -> Any:
        # Runs only for options given in the file; ``accounting`` is declared first, so it is in ``info.data``
        # when it was valid (if not, its own problem is listed and this check waits).
        field = info.field_name or ""
        default = cls.model_fields[field].get_default(call_default_factory=True)
        if isinstance(info.data.get("accounting"), FinagoSettings) and value != default:
            raise ValueError(f"{field} is a Tripletex option and this office uses 24SevenOffice; "
                             f"{_TRIPLETEX_ONLY[field]}")
        return value

    @field_validator("article_mapping")
    @classmethod
    def _article_keys(cls, value: dict[str, ArticleMapping]) -> dict[str, ArticleMapping]:
        for key in value:
            if not key.strip():
                raise ValueError("article numbers must not be empty")
        return value

    @property
    def accounting_system(self) -> AccountingSystem:
        return AccountingSystem(self.accounting.system)

    @property
    def tripletex(self) -> TripletexSettings | None:
        """The Tripletex settings, or None when the office uses another system."""
        return self.accounting if isinstance(self.accounting, TripletexSettings) else None

    @property
    def finago(self) -> FinagoSettings | None:
        """The 24SevenOffice settings, or None when the office uses another system."""
        return self.accounting if isinstance(self.accounting, FinagoSettings) else None

    def secret_refs(self) -> dict[str, SecretRef]:
        """Every secret reference of the office, by its field path (for start-up checks)."""
        refs: dict[str, SecretRef] = {"qondor.subscription_key": self.qondor.subscription_key}
        if self.tripletex:  # "tripletex.*" in either form: the names operators and the activities already use
            refs["tripletex.consumer_token"] = self.tripletex.consumer_token
            refs["tripletex.employee_token"] = self.tripletex.employee_token
        if self.finago:
            refs["accounting.application_id"] = self.finago.application_id
            refs["accounting.username"] = self.finago.username
            refs["accounting.password"] = self.finago.password
        if self.slack:
            if self.slack.webhook_url:
                refs["slack.webhook_url"] = self.slack.webhook_url
            if self.slack.bot_token:
                refs["slack.bot_token"] = self.slack.bot_token
        return refs

    @property
    def syncs_customers(self) -> bool:
        """Whether the customer and project sync writes every customer (``customer_sync``, else by system)."""
        if self.customer_sync is not None:
            return self.customer_sync
        return self.accounting_system is AccountingSystem.FINAGO

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
    """'office 2 (Oslo) -> tripletex.consumer_token' from a pydantic error location.

    Inside ``accounting`` the union's tag is dropped (``accounting.department_id``, not
    ``accounting.finago.department_id``), and an office in the old form is named by what it wrote
    (``tripletex.consumer_token``, ``accounting_system``).
    """
    if len(loc) >= 2 and loc[0] == "offices" and isinstance(loc[1], int):
        offices = data.get("offices") or []
        raw = offices[loc[1]] if loc[1] < len(offices) and isinstance(offices[loc[1]], dict) else {}
        label = f"office #{loc[1] + 1}"
        if "id" in raw:
            label = f"office {raw['id']}" + (f" ({raw['name']})" if raw.get("name") else "")
        path = list(loc[2:])
        if path[:1] == ["accounting"]:
            if len(path) > 1 and path[1] in _SETTINGS_BY_SYSTEM:
                del path[1]
            if raw.get("accounting") is None:
                path[0] = _old_form_name(raw)
        rest = ".".join(str(p) for p in path)
        return f"{label} -> {rest}" if rest else label
    return ".".join(str(p) for p in loc) or "file"


def _old_form_name(raw: dict[str, Any]) -> str:
    """Where an office without ``[office.accounting]`` wrote what ``accounting`` now holds."""
    system = raw.get("accounting_system")
    if system is not None and system != AccountingSystem.TRIPLETEX:
        return "accounting_system"
    if system is None and raw.get("tripletex") is None:
        return "accounting"  # nothing written at all: the message asks for [office.accounting]
    return "tripletex"


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
