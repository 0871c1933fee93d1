"""Office configuration (domain/config.py): valid files load, a bad file fails once with every problem listed."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from domain.config import (
    AccountingSystem,
    ArticleMapping,
    ConfigFileError,
    FinagoArticleMapping,
    FinagoSettings,
    Flow,
    InvoiceMode,
    SecretRef,
    ServiceConfig,
    SlackSettings,
    TripletexSettings,
    load_config,
    parse_config,
)

SECRET_VALUES = {
    "TEST_QONDOR_KEY": "qondor-subscription-value-1",
    "TEST_TT_CONSUMER": "tt-consumer-value-2",
    "TEST_TT_EMPLOYEE": "tt-employee-value-3",
    "TEST_SLACK_HOOK": "https://hooks.slack.invalid/services/T/B/slack-hook-value-4",
    "TEST_24SO_APP": "24so-application-id-value-5",
    "TEST_24SO_USER": "24so-username-value-6",
    "TEST_24SO_PASSWORD": "24so-password-value-7",
}
KNOWN_SYSTEMS = "known systems: 'tripletex' (Tripletex), 'finago' (24SevenOffice / Finago Office)"

VALID_TOML = """
[[office]]
id = 1
name = "Oslo"
accounting_system = "tripletex"
flows = ["invoices", "payments", "customers_projects"]
invoice_mode = "order"
card_payment_type_id = 12

[office.qondor]
subscription_key = { env = "TEST_QONDOR_KEY" }

[office.tripletex]
base_url = "http://127.0.0.1:9000/v2"
consumer_token = { env = "TEST_TT_CONSUMER" }
employee_token = { env = "TEST_TT_EMPLOYEE" }
company_id = 42

[office.article_mapping]
"3000" = { vat_type = "3" }
"3100" = { product = "100" }

[office.slack]
webhook_url = { env = "TEST_SLACK_HOOK" }

[[office]]
id = 2
name = "Bergen"

[office.qondor]
subscription_key = { env = "TEST_QONDOR_KEY" }

[office.accounting]
system = "finago"
application_id = { env = "TEST_24SO_APP" }
username = { env = "TEST_24SO_USER" }
password = { env = "TEST_24SO_PASSWORD" }
department_id = 3
misc_product_id = 900
misc_product_category_id = 90
card_payment_method_id = 5

[office.accounting.article_mapping]
"3000" = { product_id = 101 }
"3100" = { category_id = 20 }
"""

NEW_FORM_TRIPLETEX_TOML = """
[[office]]
id = 1
name = "Oslo"
flows = ["invoices", "payments", "customers_projects"]
invoice_mode = "order"
card_payment_type_id = 12

[office.qondor]
subscription_key = { env = "TEST_QONDOR_KEY" }

[office.accounting]
system = "tripletex"
base_url = "http://127.0.0.1:9000/v2"
consumer_token = { env = "TEST_TT_CONSUMER" }
employee_token = { env = "TEST_TT_EMPLOYEE" }
company_id = 42

[office.article_mapping]
"3000" = { vat_type = "3" }
"3100" = { product = "100" }

[office.slack]
webhook_url = { env = "TEST_SLACK_HOOK" }
"""


@pytest.fixture(autouse=True)
def secrets_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRET_VALUES.items():
        monkeypatch.setenv(name, value)


def office(office_id: int = 1, name: str = "Oslo", **overrides: Any) -> dict[str, Any]:
    """A valid Tripletex office as decoded from a file; ``overrides`` replace top-level keys (None drops one)."""
    raw: dict[str, Any] = {
        "id": office_id,
        "name": name,
        "qondor": {"subscription_key": {"env": "TEST_QONDOR_KEY"}},
        "tripletex": {"consumer_token": {"env": "TEST_TT_CONSUMER"}, "employee_token": {"env": "TEST_TT_EMPLOYEE"}},
    }
    for key, value in overrides.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


def finago_office(office_id: int = 2, name: str = "Bergen", **overrides: Any) -> dict[str, Any]:
    """A valid 24SevenOffice office in the new form; ``overrides`` as for :func:`office`."""
    accounting = {
        "system": "finago", "application_id": {"env": "TEST_24SO_APP"}, "username": {"env": "TEST_24SO_USER"},
        "password": {"env": "TEST_24SO_PASSWORD"}, "department_id": 3, "misc_product_id": 900,
        "misc_product_category_id": 90,
    }
    return office(office_id, name, **{"tripletex": None, "accounting": accounting, **overrides})


def problems_of(data: dict[str, Any], **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigFileError) as info:
        parse_config(data, **kwargs)
    return info.value.problems


# -- valid files -------------------------------------------------------------------------------------------


def test_valid_toml_loads(tmp_path: Path) -> None:
    path = tmp_path / "offices.toml"
    path.write_text(VALID_TOML, encoding="utf-8")

    config = load_config(path)

    oslo, bergen = config.offices
    assert (oslo.id, oslo.name, oslo.accounting_system) == (1, "Oslo", AccountingSystem.TRIPLETEX)
    assert oslo.flows == {Flow.INVOICES, Flow.PAYMENTS, Flow.CUSTOMERS_PROJECTS}
    assert oslo.invoice_mode is InvoiceMode.ORDER
    assert oslo.card_payment_type_id == 12
    assert oslo.tripletex is not None
    assert (oslo.tripletex.base_url, oslo.tripletex.company_id) == ("http://127.0.0.1:9000/v2", 42)
    assert oslo.tripletex.consumer_token == SecretRef(env="TEST_TT_CONSUMER")
    assert oslo.vat_mapping_for("3000") == ArticleMapping(vat_type="3")
    assert oslo.vat_mapping_for("3100") == ArticleMapping(product="100")
    assert oslo.vat_mapping_for("9999") is None and oslo.vat_mapping_for(None) is None
    assert oslo.slack == SlackSettings(webhook_url=SecretRef(env="TEST_SLACK_HOOK"))
    assert oslo.accounting is oslo.tripletex and oslo.finago is None
    assert (bergen.id, bergen.accounting_system, bergen.tripletex) == (2, AccountingSystem.FINAGO, None)
    assert bergen.finago is bergen.accounting and bergen.finago is not None
    assert (bergen.finago.department_id, bergen.finago.card_payment_method_id) == (3, 5)
    assert bergen.finago.application_id == SecretRef(env="TEST_24SO_APP")
    assert bergen.finago.article_mapping == {"3000": FinagoArticleMapping(product_id=101),
                                             "3100": FinagoArticleMapping(category_id=20)}
    assert bergen.article_mapping == {} and bergen.card_payment_type_id is None  # the Tripletex options
    assert bergen.flows == {Flow.INVOICES, Flow.PAYMENTS}  # the default
    assert config.office(2) is bergen


def test_legacy_tripletex_office_means_the_same_as_the_new_form(tmp_path: Path) -> None:
    """Files written before [office.accounting] keep loading: accounting_system + [office.tripletex]."""
    legacy, new_form = tmp_path / "legacy.toml", tmp_path / "new.toml"
    legacy.write_text(VALID_TOML.split("[[office]]\nid = 2")[0], encoding="utf-8")
    new_form.write_text(NEW_FORM_TRIPLETEX_TOML, encoding="utf-8")

    [oslo] = load_config(legacy).offices

    assert load_config(legacy) == load_config(new_form)
    assert oslo.accounting == TripletexSettings(base_url="http://127.0.0.1:9000/v2", company_id=42,
                                                consumer_token=SecretRef(env="TEST_TT_CONSUMER"),
                                                employee_token=SecretRef(env="TEST_TT_EMPLOYEE"))
    without_system = parse_config({"office": [office()]}).offices[0]  # accounting_system left out: Tripletex
    assert without_system.accounting_system is AccountingSystem.TRIPLETEX and without_system.tripletex is not None


def test_the_deploy_example_loads_with_both_systems() -> None:
    example = Path(__file__).resolve().parent.parent / "deploy" / "offices.example.toml"

    config = load_config(example, check_secrets=False)

    assert [(o.id, o.accounting_system) for o in config.offices] == [
        (2, AccountingSystem.TRIPLETEX), (7, AccountingSystem.TRIPLETEX), (9, AccountingSystem.FINAGO)]
    stavanger = config.office(9).finago
    assert stavanger is not None and stavanger.article_mapping["3100"] == FinagoArticleMapping(category_id=20)
    assert "accounting.password" in config.office(9).secret_refs()


def test_every_accounting_system_has_a_settings_model() -> None:
    [oslo, bergen] = parse_config({"office": [office(), finago_office()]}).offices

    assert {oslo.accounting.system, bergen.accounting.system} == {s.value for s in AccountingSystem}
    assert isinstance(oslo.accounting, TripletexSettings) and isinstance(bergen.accounting, FinagoSettings)


def test_valid_yaml_describes_the_same_offices(tmp_path: Path) -> None:
    from_toml = tmp_path / "offices.toml"
    from_toml.write_text(VALID_TOML, encoding="utf-8")
    import tomllib

    document = {"offices": tomllib.loads(VALID_TOML)["office"]}
    for suffix in (".yaml", ".yml"):
        path = tmp_path / f"offices{suffix}"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")

        assert load_config(path) == load_config(from_toml)


def test_yaml_written_by_hand_loads(tmp_path: Path) -> None:
    path = tmp_path / "offices.yaml"
    path.write_text(
        textwrap.dedent(
            """
            offices:
              - id: 5
                name: Trondheim
                qondor:
                  subscription_key: {file: %s}
                tripletex:
                  consumer_token: {env: TEST_TT_CONSUMER}
                  employee_token: {env: TEST_TT_EMPLOYEE}
                slack:
                  bot_token: {env: TEST_TT_CONSUMER}
                  channel: "#faktura"
            """
        )
        % (tmp_path / "qondor.key"),
        encoding="utf-8",
    )
    (tmp_path / "qondor.key").write_text("from-a-file\n", encoding="utf-8")

    config = load_config(path)

    [trondheim] = config.offices
    assert trondheim.qondor.subscription_key.resolve() == "from-a-file"
    assert trondheim.slack is not None and trondheim.slack.channel == "#faktura"


def test_office_lookup_of_an_unknown_id_raises(tmp_path: Path) -> None:
    config = parse_config({"office": [office()]})

    with pytest.raises(KeyError, match="office 9"):
        config.office(9)


def test_secret_refs_lists_every_reference_by_field() -> None:
    slack = {"webhook_url": {"env": "TEST_SLACK_HOOK"}}
    [oslo] = parse_config({"office": [office(slack=slack)]}).offices

    assert oslo.secret_refs() == {
        "qondor.subscription_key": SecretRef(env="TEST_QONDOR_KEY"),
        "tripletex.consumer_token": SecretRef(env="TEST_TT_CONSUMER"),
        "tripletex.employee_token": SecretRef(env="TEST_TT_EMPLOYEE"),
        "slack.webhook_url": SecretRef(env="TEST_SLACK_HOOK"),
    }


def test_secret_refs_of_a_finago_office() -> None:
    [bergen] = parse_config({"office": [finago_office()]}).offices

    assert bergen.secret_refs() == {
        "qondor.subscription_key": SecretRef(env="TEST_QONDOR_KEY"),
        "accounting.application_id": SecretRef(env="TEST_24SO_APP"),
        "accounting.username": SecretRef(env="TEST_24SO_USER"),
        "accounting.password": SecretRef(env="TEST_24SO_PASSWORD"),
    }


def test_a_missing_finago_secret_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_24SO_PASSWORD")

    problems = problems_of({"office": [office(), finago_office()]})

    assert problems == ["office 2 (Bergen) -> accounting.password: environment variable TEST_24SO_PASSWORD is not set"]


# -- one error listing every problem ---------------------------------------------------------------------------


def test_several_problems_across_two_offices_make_one_error_listing_each() -> None:
    oslo = office(
        1,
        "Oslo",
        qondor={"subscription_key": "written-inline-oops"},
        article_mapping={"3000": {"vat_type": "3", "product": "100"}},
    )
    bergen = office(2, "Bergen", tripletex=None, queue_poll_seconds=-1, colour="blue")

    with pytest.raises(ConfigFileError) as info:
        parse_config({"office": [oslo, bergen]}, source="offices.toml")

    problems = info.value.problems
    assert len(problems) == 5, problems
    expected = [
        ("office 1 (Oslo) -> qondor.subscription_key:", "never written inline"),
        ("office 1 (Oslo) -> article_mapping.3000:", "exactly one of 'vat_type' or 'product'"),
        ("office 2 (Bergen) -> queue_poll_seconds:", "greater than 0"),
        ("office 2 (Bergen) -> colour:", "Extra inputs are not permitted"),
        ("office 2 (Bergen) -> accounting:", "the accounting settings are missing"),
    ]
    for where, why in expected:
        assert any(p.startswith(where) and why in p for p in problems), (where, problems)
    message = str(info.value)
    assert message.startswith("office configuration offices.toml has 5 problem(s):")
    assert all(f"  - {p}" in message for p in problems)


def test_an_inline_secret_is_rejected_without_echoing_it() -> None:
    problems = problems_of({"office": [office(qondor={"subscription_key": "sk-inline-123"})]})

    assert len(problems) == 1
    assert problems[0].startswith("office 1 (Oslo) -> qondor.subscription_key:")
    assert "sk-inline-123" not in problems[0]


@pytest.mark.parametrize(
    ("ref", "why"),
    [({}, "exactly one of 'env' or 'file'"), ({"env": "A", "file": "/b"}, "exactly one of 'env' or 'file'")],
)
def test_a_secret_ref_names_exactly_one_place(ref: dict[str, str], why: str) -> None:
    [problem] = problems_of({"office": [office(qondor={"subscription_key": ref})]})

    assert problem.startswith("office 1 (Oslo) -> qondor.subscription_key:") and why in problem


def test_a_missing_environment_variable_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_TT_EMPLOYEE")

    problems = problems_of({"office": [office(), office(2, "Bergen")]})

    assert problems == [
        "office 1 (Oslo) -> tripletex.employee_token: environment variable TEST_TT_EMPLOYEE is not set",
        "office 2 (Bergen) -> tripletex.employee_token: environment variable TEST_TT_EMPLOYEE is not set",
    ]
    assert parse_config({"office": [office()]}, check_secrets=False).offices[0].id == 1  # checks can be off


def test_a_missing_secret_file_is_reported(tmp_path: Path) -> None:
    missing = tmp_path / "nope.key"

    [problem] = problems_of({"office": [office(qondor={"subscription_key": {"file": str(missing)}})]})

    assert problem == f"office 1 (Oslo) -> qondor.subscription_key: secret file {missing} does not exist"


def test_missing_secrets_are_reported_beside_other_offices_problems(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_QONDOR_KEY")

    problems = problems_of({"office": [office(1, "Oslo", queue_poll_seconds=0), office(2, "Bergen")]})

    assert any(p.startswith("office 1 (Oslo) -> queue_poll_seconds:") for p in problems)
    assert "office 2 (Bergen) -> qondor.subscription_key: environment variable TEST_QONDOR_KEY is not set" in problems


def test_duplicate_office_ids_are_reported() -> None:
    [problem] = problems_of({"office": [office(1, "Oslo"), office(1, "Bergen")]})

    assert problem == "office 1 (Bergen) -> id: office id 1 appears more than once (also office 1 (Oslo))"


def test_duplicate_office_ids_are_reported_beside_other_problems() -> None:
    problems = problems_of({"office": [office(1, "Oslo"), office(1, "Bergen", name_typo="x"), office(3, "Tromsø")]})

    assert any(p.startswith("office 1 (Bergen) -> name_typo:") for p in problems)
    assert "office 1 (Bergen) -> id: office id 1 appears more than once (also office 1 (Oslo))" in problems


def test_article_mapped_to_both_vat_type_and_product_is_rejected() -> None:
    mapping = {"3000": {"vat_type": "3", "product": "100"}, "3100": {}}

    problems = problems_of({"office": [office(article_mapping=mapping)]})

    why = "Value error, map an article to exactly one of 'vat_type' or 'product'"
    assert problems == [
        f"office 1 (Oslo) -> article_mapping.3000: {why}",
        f"office 1 (Oslo) -> article_mapping.3100: {why}",
    ]


def test_an_office_without_accounting_settings_is_rejected() -> None:
    [nothing] = problems_of({"office": [office(tripletex=None)]})
    [old_form] = problems_of({"office": [office(tripletex=None, accounting_system="tripletex")]})

    assert nothing == ("office 1 (Oslo) -> accounting: Value error, the accounting settings are missing: give "
                       f"[office.accounting] with system = one of {KNOWN_SYSTEMS.removeprefix('known systems: ')}")
    assert old_form.startswith("office 1 (Oslo) -> tripletex: ")
    assert "accounting_system is 'tripletex' but the [tripletex] settings are missing" in old_form
    [legacy_finago] = problems_of({"office": [office(tripletex=None, accounting_system="finago")]})
    assert legacy_finago.startswith("office 1 (Oslo) -> accounting_system: ")
    assert 'write [office.accounting] with system = "finago"' in legacy_finago


@pytest.mark.parametrize(
    "accounting",
    [{"system": "visma", "api_key": {"env": "X"}}, {"system": 7}],
)
def test_an_unknown_accounting_system_is_refused_naming_the_known_ones(accounting: dict[str, Any]) -> None:
    problems = problems_of({"office": [office(), office(2, "Bergen", tripletex=None, accounting=accounting,
                                                         queue_poll_seconds=0)]})

    assert problems == [
        f"office 2 (Bergen) -> accounting: Value error, accounting system {accounting['system']!r} is not one this "
        f"service serves; {KNOWN_SYSTEMS}",
        "office 2 (Bergen) -> queue_poll_seconds: Input should be greater than 0",  # still listed beside it
    ]


def test_an_unknown_system_in_the_old_form_and_a_missing_system_are_refused() -> None:
    [old_form] = problems_of({"office": [office(accounting_system="visma")]})
    [no_system] = problems_of({"office": [office(tripletex=None, accounting={"base_url": "x"})]})

    assert old_form == f"office 1 (Oslo) -> accounting_system: Value error, accounting system 'visma' is not one " \
                       f"this service serves; {KNOWN_SYSTEMS}"
    assert no_system.startswith("office 1 (Oslo) -> accounting: Value error, [office.accounting] needs system = ")
    assert "'finago' (24SevenOffice / Finago Office)" in no_system


def test_settings_errors_are_named_where_the_file_has_them() -> None:
    legacy = office(tripletex={"employee_token": {"env": "TEST_TT_EMPLOYEE"}, "colour": "blue"})
    broken_finago = finago_office()
    broken_finago["accounting"] = {k: v for k, v in broken_finago["accounting"].items() if k != "department_id"}

    problems = problems_of({"office": [legacy, broken_finago]})

    assert problems == [
        "office 1 (Oslo) -> tripletex.consumer_token: Field required",
        "office 1 (Oslo) -> tripletex.colour: Extra inputs are not permitted",
        "office 2 (Bergen) -> accounting.department_id: Field required",
    ]


def test_a_finago_article_maps_to_exactly_one_of_product_or_category() -> None:
    bergen = finago_office()
    bergen["accounting"]["article_mapping"] = {"3000": {"product_id": 1, "category_id": 2}, "3100": {}}

    problems = problems_of({"office": [bergen]})

    why = "Value error, map an article to exactly one of 'product_id' or 'category_id'"
    assert problems == [f"office 2 (Bergen) -> accounting.article_mapping.3000: {why}",
                        f"office 2 (Bergen) -> accounting.article_mapping.3100: {why}"]


def test_old_and_new_form_do_not_mix() -> None:
    mixed = finago_office(tripletex={"consumer_token": {"env": "TEST_TT_CONSUMER"}}, accounting_system="finago")

    [problem] = problems_of({"office": [mixed]})

    assert problem.startswith("office 2 (Bergen) -> accounting: Value error, accounting_system and tripletex belong "
                              "to the old form")


def test_a_finago_office_refuses_the_tripletex_options_saying_where_its_own_are() -> None:
    bergen = finago_office(article_mapping={"3000": {"vat_type": "3"}}, card_payment_type_id=12,
                           invoice_mode="order", send_to_customer=True)

    problems = problems_of({"office": [bergen]})

    prefix = "office 2 (Bergen) -> {}: Value error, {} is a Tripletex option and this office uses 24SevenOffice; "
    assert [p.split("; ")[0] + "; " for p in problems] == [
        prefix.format(f, f) for f in ("invoice_mode", "send_to_customer", "article_mapping", "card_payment_type_id")
    ]
    assert "[office.accounting.article_mapping] with product_id or category_id" in problems[2]
    assert "card_payment_method_id in [office.accounting]" in problems[3]
    assert "send_to_factoring" in problems[0] and "send_to_factoring" in problems[1]
    defaults = finago_office(invoice_mode="invoice", send_to_customer=False, article_mapping={})
    assert parse_config({"office": [defaults]}).offices[0].finago is not None  # defaults written out are harmless


def test_a_bot_token_needs_a_channel() -> None:
    [problem] = problems_of({"office": [office(slack={"bot_token": {"env": "TEST_TT_CONSUMER"}})]})

    assert problem.startswith("office 1 (Oslo) -> slack:") and "channel" in problem


def test_an_office_without_id_is_named_by_position() -> None:
    problems = problems_of({"office": [office(), office(id=None, name="Nameless")]})

    assert problems == ["office #2 -> id: Field required"]


def test_an_empty_office_list_is_rejected() -> None:
    assert problems_of({"office": []}) == ["offices: List should have at least 1 item after validation, not 0"]


@pytest.mark.parametrize(
    ("name", "content", "why"),
    [
        ("bad.toml", "[[office]\nid = 1", "not valid TOML"),
        ("bad.yaml", "offices: [unclosed", "not valid YAML"),
        ("list.yaml", "- 1\n- 2\n", "must hold a table/mapping"),
    ],
)
def test_unparseable_files_are_one_problem(tmp_path: Path, name: str, content: str, why: str) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")

    with pytest.raises(ConfigFileError) as info:
        load_config(path)

    assert len(info.value.problems) == 1 and why in info.value.problems[0]
    assert str(path) in str(info.value)


def test_a_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigFileError, match="cannot read the file"):
        load_config(tmp_path / "absent.toml")


# -- secrets never leak ---------------------------------------------------------------------------------------


def test_secret_refs_resolve_from_env_and_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("file-secret\n", encoding="utf-8")

    assert SecretRef(env="TEST_QONDOR_KEY").resolve() == SECRET_VALUES["TEST_QONDOR_KEY"]
    assert SecretRef(file=str(tmp_path / "token")).resolve() == "file-secret"
    with pytest.raises(KeyError, match="TEST_UNSET_VARIABLE"):
        SecretRef(env="TEST_UNSET_VARIABLE").resolve()


def test_no_representation_of_the_config_contains_a_resolved_secret(tmp_path: Path) -> None:
    path = tmp_path / "offices.toml"
    path.write_text(VALID_TOML, encoding="utf-8")
    config = load_config(path)
    resolved = [ref.resolve() for o in config.offices for ref in o.secret_refs().values()]
    assert set(resolved) == set(SECRET_VALUES.values())  # the secrets are really there to leak

    ref = config.offices[0].qondor.subscription_key
    renderings = [
        repr(config),
        str(config),
        repr(config.offices[0]),
        repr(ref),
        str(ref),
        f"{ref}",
        config.model_dump_json(),
        json.dumps(config.model_dump(mode="json")),
    ]

    assert repr(ref) == "SecretRef(env='TEST_QONDOR_KEY')"
    assert repr(SecretRef(file="/run/secrets/x")) == "SecretRef(file='/run/secrets/x')"
    for text in renderings:
        for value in SECRET_VALUES.values():
            assert value not in text


def test_service_config_can_be_built_directly() -> None:
    config = ServiceConfig.model_validate({"offices": [office()]})

    assert config.offices[0].tripletex is not None


def test_customer_and_project_sync_settings_default_per_system_and_can_be_set(tmp_path: Path) -> None:
    """The scheduled customer sync is on by default for 24SevenOffice (its seed) and off for Tripletex (customers
    come with invoices); ``customer_sync`` says otherwise explicitly. Projects are read back
    ``projects_changed_days`` (30 by default); the run's interval is ``customers_projects_interval_minutes``."""
    path = tmp_path / "offices.toml"
    path.write_text(VALID_TOML, encoding="utf-8")
    oslo, bergen = load_config(path).offices
    assert (oslo.syncs_customers, bergen.syncs_customers) == (False, True)
    assert oslo.projects_changed_days == 30 and oslo.customers_projects_interval_minutes == 60
    changed = VALID_TOML.replace('name = "Oslo"', 'name = "Oslo"\ncustomer_sync = true\nprojects_changed_days = 7')
    path.write_text(changed, encoding="utf-8")
    oslo = load_config(path).offices[0]
    assert oslo.syncs_customers and oslo.projects_changed_days == 7
    with pytest.raises(ConfigFileError, match="projects_changed_days"):
        path.write_text(VALID_TOML.replace('name = "Oslo"', 'name = "Oslo"\nprojects_changed_days = 0'))
        load_config(path)
