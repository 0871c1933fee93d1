"""The emulated Qondor API routes: invoicing queue (designed extension) and the public master-data subset.

Paths are served at the root in Qondor's ``/{Group}/v1/{Controller}/…`` shape (API.md §3), so a client's
``base_url`` is just ``http://127.0.0.1:PORT``. Request binding mimics ASP.NET: unparseable parameters and
bodies give the model-binding ProblemDetails (with ``traceId``), broken business rules the FluentValidation
flavour (without), unknown ids a 404 (docs/qondor-invoice-api.md).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from domain.qondor import ProjectStatus, QondorModel, SetAsFailed, SetAsPaid, SetAsProcessed
from emulators.qondor.state import EmulatorError, NotFoundError, QondorState, RuleViolation
from emulators.qondor.wire import binding_problem, json_response, loads, not_found, pascal, validation_problem

FAILURE_MESSAGE_MAX = 1000
Handler = Callable[[Request], Awaitable[Response]]


class BindingError(EmulatorError):
    """400 model-binding error; ``errors`` maps PascalCase parameter/property -> messages."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        super().__init__("; ".join(m for ms in errors.values() for m in ms))
        self.errors = dict(errors)


def _state(request: Request) -> QondorState:
    return request.app.state.qondor


def _endpoint(handler: Handler) -> Handler:
    """Turn the emulator's exceptions into Qondor's error responses."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except BindingError as exc:
            return binding_problem(exc.errors)
        except ValidationError as exc:
            return binding_problem(_pydantic_errors(exc))
        except RuleViolation as exc:
            return validation_problem(exc.errors)
        except NotFoundError as exc:
            return not_found(str(exc))

    return wrapped


def _pydantic_errors(exc: ValidationError) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        key = ".".join(pascal(str(p)) for p in error["loc"]) or "Body"
        errors.setdefault(key, []).append(error["msg"])
    return errors


# --- parameter binding ------------------------------------------------------------------------------


def _invalid(name: str, value: str) -> BindingError:
    return BindingError({pascal(name): [f"The value '{value}' is not valid."]})


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise _invalid(name, value) from None


def _query_int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    return None if value in (None, "") else _int(value, name)


def _query_str(request: Request, name: str, *, required: bool = False) -> str | None:
    value = request.query_params.get(name)
    if required and not value:
        raise BindingError({pascal(name): [f"The {name} field is required."]})
    return value


def _query_bool(request: Request, name: str, default: bool = False) -> bool:
    value = request.query_params.get(name)
    if value in (None, ""):
        return default
    if value.lower() not in ("true", "false"):
        raise _invalid(name, value)
    return value.lower() == "true"


def _query_datetime(request: Request, name: str) -> datetime | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid(name, value) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _query_statuses(request: Request) -> list[int]:
    statuses = []
    for value in request.query_params.getlist("status"):
        try:
            statuses.append(int(ProjectStatus(int(value)) if value.lstrip("-").isdigit()
                                else ProjectStatus[value.upper()]))
        except (KeyError, ValueError):
            raise _invalid("status", value) from None
    return statuses


def _path_id(request: Request) -> int:
    return _int(request.path_params["id"], "id")


async def _json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        raise BindingError({"Body": ["A non-empty request body is required."]})
    try:
        body = loads(raw)
    except ValueError as exc:
        raise BindingError({"Body": [f"The JSON value could not be parsed: {exc}"]}) from None
    if not isinstance(body, dict):
        raise BindingError({"Body": ["The JSON value must be an object."]})
    return body


# --- invoicing queue ------------------------------------------------------------------------------


@_endpoint
async def get_unprocessed(request: Request) -> Response:
    return json_response(_state(request).unprocessed(_query_int(request, "officeId")))


MAX_PAGE_SIZE = 1000
"""[DESIGNED] ``GetAll`` answers at most this many items per page."""


def _query_date(request: Request, name: str) -> date | None:
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _invalid(name, value) from None


@_endpoint
async def get_all_invoices(request: Request) -> Response:
    """[DESIGNED] The office's items of any status dated in a period, a page at a time (the reconciliation)."""
    page = _query_int(request, "page") or 1
    page_size = _query_int(request, "pageSize") or 500
    if page < 1:
        raise _invalid("page", str(page))
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise BindingError({"PageSize": [f"'Page Size' must be between 1 and {MAX_PAGE_SIZE}."]})
    return json_response(_state(request).invoices_in_period(
        _query_int(request, "officeId"), _query_date(request, "invoiceDateFrom"),
        _query_date(request, "invoiceDateTo"), page, page_size,
    ))


@_endpoint
async def get_invoice(request: Request) -> Response:
    return json_response(_state(request).invoice(_path_id(request)))


class _SetAsFailedIn(QondorModel):
    """SetAsFailed as bound before validation: the message's rules are checked separately (FluentValidation)."""

    invoice_id: int
    message: str | None = None


def _set_as_endpoint(operation: str) -> Handler:
    model = {"SetAsProcessed": SetAsProcessed, "SetAsFailed": _SetAsFailedIn, "SetAsPaid": SetAsPaid}[operation]

    @_endpoint
    async def handler(request: Request) -> Response:
        state = _state(request)
        raw: Any = None
        try:
            raw = await _json_object(request)
            body = model.model_validate(raw)
            if isinstance(body, _SetAsFailedIn):
                body = _validated_failure(body)
        except (BindingError, RuleViolation) as exc:
            state.record_rejected_call(operation, raw, exc.errors)
            raise
        except ValidationError as exc:
            state.record_rejected_call(operation, raw, _pydantic_errors(exc))
            raise
        state.transition(operation, body, raw)
        return Response(status_code=200)

    handler.__name__ = operation
    return handler


def _validated_failure(body: _SetAsFailedIn) -> SetAsFailed:
    message = (body.message or "").strip()
    if not message:
        raise RuleViolation({"Message": ["'Message' must not be empty."]})
    if len(body.message or "") > FAILURE_MESSAGE_MAX:
        raise RuleViolation({"Message": [f"The length of 'Message' must be {FAILURE_MESSAGE_MAX} characters or "
                                         f"fewer. You entered {len(body.message or '')} characters."]})
    return SetAsFailed(invoice_id=body.invoice_id, message=body.message or "")


# --- customers and contact persons --------------------------------------------------------------------


@_endpoint
async def get_customer(request: Request) -> Response:
    return json_response(_state(request).customer(_path_id(request)))


@_endpoint
async def get_customer_by_external_reference(request: Request) -> Response:
    reference = _query_str(request, "externalReference", required=True)
    return json_response(_state(request).customer_by_external_reference(reference or ""))


@_endpoint
async def get_all_customers(request: Request) -> Response:
    return json_response(_state(request).customer_summaries(_query_int(request, "officeId")))


@_endpoint
async def get_customers_by_number(request: Request) -> Response:
    number = _query_str(request, "customerNumber", required=True) or ""
    return json_response(_state(request).customers_by_number(number, _query_int(request, "officeId")))


@_endpoint
async def create_customer(request: Request) -> Response:
    return json_response(_state(request).create_customer(await _json_object(request)))


@_endpoint
async def update_customer(request: Request) -> Response:
    body = await _json_object(request)
    if body.get("id") is not None and not isinstance(body["id"], int):
        raise _invalid("id", str(body["id"]))
    _state(request).put_customer(body)
    return Response(status_code=200)


@_endpoint
async def get_contact_person(request: Request) -> Response:
    return json_response(_state(request).contact_person(_path_id(request)))


@_endpoint
async def get_contact_person_by_email(request: Request) -> Response:
    email = _query_str(request, "email", required=True) or ""
    return json_response(_state(request).contact_person_by("email", email))


@_endpoint
async def get_contact_person_by_external_reference(request: Request) -> Response:
    reference = _query_str(request, "externalReference", required=True) or ""
    return json_response(_state(request).contact_person_by("externalReference", reference))


# --- projects and offices ---------------------------------------------------------------------------


@_endpoint
async def get_projects(request: Request) -> Response:
    rows = _state(request).project_summaries(
        statuses=_query_statuses(request),
        office_id=_query_int(request, "officeId"),
        changed_after=_query_datetime(request, "changedAfter"),
        include_managers=_query_bool(request, "includeProjectManagers"),
        include_leaders=_query_bool(request, "includeProjectLeaders"),
    )
    return json_response(rows)


@_endpoint
async def get_project(request: Request) -> Response:
    return json_response(_state(request).project(_path_id(request)))


@_endpoint
async def get_project_by_no(request: Request) -> Response:
    project_no = _query_str(request, "projectNo", required=True) or ""
    return json_response(_state(request).project_by_no(project_no, _query_int(request, "officeId")))


@_endpoint
async def get_offices(request: Request) -> Response:
    return json_response(_state(request).office_list())


# --- Sale and Cost ("actuals", designed) --------------------------------------------------------------


def _actual_endpoints(controller: str) -> list[Route]:
    """The six operations of the designed ``Sale`` / ``Cost`` controller (docs/qondor-actuals-api.md)."""
    base = f"/{controller}/v1/{controller}"

    @_endpoint
    async def get_one(request: Request) -> Response:
        return json_response(_state(request).actual(controller, _path_id(request)))

    @_endpoint
    async def by_reference(request: Request) -> Response:
        reference = _query_str(request, "externalReference", required=True) or ""
        return json_response(_state(request).actual_by_external_reference(controller, reference))

    @_endpoint
    async def for_project(request: Request) -> Response:
        project_id = _query_int(request, "projectId")
        if project_id is None:
            raise BindingError({"ProjectId": ["The projectId field is required."]})
        return json_response(_state(request).actuals_for_project(controller, project_id))

    @_endpoint
    async def create(request: Request) -> Response:
        return json_response(_state(request).create_actual(controller, await _json_object(request)))

    @_endpoint
    async def put(request: Request) -> Response:
        body = await _json_object(request)
        if body.get("id") is not None and not isinstance(body["id"], int):
            raise _invalid("id", str(body["id"]))
        _state(request).put_actual(controller, body)
        return Response(status_code=200)

    @_endpoint
    async def delete(request: Request) -> Response:
        _state(request).delete_actual(controller, _path_id(request))
        return Response(status_code=200)

    return [
        Route(f"{base}/GetByExternalReference", by_reference, methods=["GET"]),
        Route(f"{base}/GetAllForProject", for_project, methods=["GET"]),
        Route(base, create, methods=["POST"]),
        Route(base, put, methods=["PUT"]),
        Route(f"{base}/{{id}}", get_one, methods=["GET"]),
        Route(f"{base}/{{id}}", delete, methods=["DELETE"]),
    ]


def api_routes() -> list[Route]:
    """Named operations before ``/{id}`` so ``GetAll`` is never read as an id."""
    invoice = "/Invoicing/v1/Invoice"
    customer = "/Customer/v1/Customer"
    contact = "/ContactPerson/v1/ContactPerson"
    project = "/Project/v1/Project"
    return [
        Route(f"{invoice}/GetAllUnprocessedInvoices", get_unprocessed, methods=["GET"]),
        Route(f"{invoice}/GetAll", get_all_invoices, methods=["GET"]),
        Route(f"{invoice}/SetAsProcessed", _set_as_endpoint("SetAsProcessed"), methods=["PUT"]),
        Route(f"{invoice}/SetAsFailed", _set_as_endpoint("SetAsFailed"), methods=["PUT"]),
        Route(f"{invoice}/SetAsPaid", _set_as_endpoint("SetAsPaid"), methods=["PUT"]),
        Route(f"{invoice}/{{id}}", get_invoice, methods=["GET"]),
        Route(f"{customer}/GetByExternalReference", get_customer_by_external_reference, methods=["GET"]),
        Route(f"{customer}/GetAll", get_all_customers, methods=["GET"]),
        Route(f"{customer}/GetAllByCustomerNumber", get_customers_by_number, methods=["GET"]),
        Route(customer, create_customer, methods=["POST"]),
        Route(customer, update_customer, methods=["PUT"]),
        Route(f"{customer}/{{id}}", get_customer, methods=["GET"]),
        Route(f"{contact}/GetByEmail", get_contact_person_by_email, methods=["GET"]),
        Route(f"{contact}/GetByExternalReference", get_contact_person_by_external_reference, methods=["GET"]),
        Route(f"{contact}/{{id}}", get_contact_person, methods=["GET"]),
        Route(f"{project}/GetAll", get_projects, methods=["GET"]),
        Route(f"{project}/GetByProjectNo", get_project_by_no, methods=["GET"]),
        Route(f"{project}/{{id}}", get_project, methods=["GET"]),
        Route("/Office/v1/Office/GetAll", get_offices, methods=["GET"]),
        *_actual_endpoints("Sale"),
        *_actual_endpoints("Cost"),
    ]
