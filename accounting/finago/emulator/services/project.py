"""ProjectService: projects (explicit ids allowed), statuses, types and deactivation.

``SaveProject`` returns only an int, so its errors are SOAP faults, not ``APIException``s. A project saved
with a positive Id that does not exist is created with that Id (the integration derives project ids from
Qondor's project numbers). Saving a deactivated project reactivates it (the seed: "deactivated projects in
Finago can be reactivated if updated in Qondor"; the real trigger is unverified).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from accounting.finago.emulator.call import Call, Handler
from accounting.finago.emulator.common import merge, public, strings
from accounting.finago.emulator.soap import server_fault
from accounting.finago.emulator.state import FinagoState

_READ_ONLY = ("DateChanged", "DateRegistered", "Owner", "CustomerName", "StatusName", "TypeName", "Enabled")


def save_project(state: FinagoState, project: dict[str, Any]) -> dict[str, Any]:
    """Create or update a project; references (customer, status, type, department) must exist."""
    with state.lock:
        project = {k: v for k, v in project.items() if k not in _READ_ONLY}
        _check_references(state, project)
        existing = state.get("projects", project.get("Id")) if project.get("Id") else None
        if existing is None:
            if not project.get("Name"):
                raise server_fault("Project name is required")
            if project.get("Id", 0) < 0:
                raise server_fault(f"Invalid project id {project['Id']}")
            project.setdefault("NameDisplay", "Plain")
            project.setdefault("TimeReg", "WorkType")
            project.setdefault("StatusId", _default_status(state))
            project["DateRegistered"] = state.now()
            project["Owner"] = 1
            existing = state.put("projects", project)
        else:
            merge(existing, project)
        existing["_deactivated"] = False
        _derive(state, existing)
        existing["DateChanged"] = state.now()
        return existing


def _check_references(state: FinagoState, project: dict[str, Any]) -> None:
    for field, table in (("CustomerId", "companies"), ("StatusId", "project_statuses"),
                         ("TypeId", "project_types"), ("DepartmentId", "departments")):
        if project.get(field) and state.get(table, project[field]) is None:
            raise server_fault(f"{field} {project[field]} was not found")


def _default_status(state: FinagoState) -> int | None:
    statuses = state.all("project_statuses")
    return statuses[0]["Id"] if statuses else None


def _derive(state: FinagoState, project: dict[str, Any]) -> None:
    """Names that follow from ids: CustomerName, StatusName, TypeName (the API fills them)."""
    for id_field, name_field, table, source in (("CustomerId", "CustomerName", "companies", "Name"),
                                                ("StatusId", "StatusName", "project_statuses", "Name"),
                                                ("TypeId", "TypeName", "project_types", "Name")):
        referenced = state.get(table, project.get(id_field)) if project.get(id_field) else None
        if referenced is not None:
            project[name_field] = referenced.get(source)
        else:
            project.pop(name_field, None)
    project["Enabled"] = False  # "not in use, always false" (docs)


def set_deactivated(state: FinagoState, project_id: int, deactivated: bool) -> dict[str, Any]:
    with state.lock:
        project = state.get("projects", project_id)
        if project is None:
            raise KeyError(f"project {project_id} not found")
        project["_deactivated"] = deactivated
        project["DateChanged"] = state.now()
        return project


def _matches(state: FinagoState, project: dict[str, Any], search: dict[str, Any]) -> bool:
    started = project.get("DateStart") or datetime.min
    status = state.get("project_statuses", project.get("StatusId"))
    return all([
        "ProjectIds" not in search or project["Id"] in strings(search["ProjectIds"], "int"),
        "CustomerId" not in search or project.get("CustomerId") == search["CustomerId"],
        "Search" not in search or search["Search"].lower() in (project.get("Name") or "").lower(),
        "ChangedAfter" not in search or project["DateChanged"] > search["ChangedAfter"],
        "StartedAfter" not in search or started > search["StartedAfter"],
        "StartedBefore" not in search or started < search["StartedBefore"],
        not search.get("AllOpenProjects") or bool(status and status.get("Active")),
    ])


def _search(call: Call, search: dict[str, Any] | None, deactivated: bool) -> dict[str, Any]:
    with call.state.lock:
        found = [public(p) for p in call.state.all("projects")
                 if p.get("_deactivated", False) == deactivated and _matches(call.state, p, search or {})]
    return {"Project": found}


def get_project_list(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    return _search(call, args.get("Ps"), deactivated=False)


def get_deactivated_projects(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    return _search(call, args.get("ps"), deactivated=True)


def get_single_project(call: Call, args: dict[str, Any]) -> dict[str, Any] | None:
    project = call.state.get("projects", args.get("projectId"))
    return public(project) if project is not None else None


def _name_list(call: Call, deactivated: bool) -> dict[str, Any]:
    with call.state.lock:
        return {"ProjectShort": [{"Id": p["Id"], "Name": p.get("Name")} for p in call.state.all("projects")
                                 if p.get("_deactivated", False) == deactivated]}


def save(call: Call, args: dict[str, Any]) -> int:
    return save_project(call.state, args.get("project") or {})["Id"]


def get_statuses(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    return {"Status": [public(s) for s in call.state.all("project_statuses")]}


def get_types(call: Call, args: dict[str, Any]) -> dict[str, Any]:
    return {"KeyValuePair": [{"Key": t["Id"], "Value": t["Name"]} for t in call.state.all("project_types")]}


OPERATIONS: dict[str, Handler] = {
    "SaveProject": save,
    "GetProjectList": get_project_list,
    "GetProjectsDetailed": get_project_list,
    "GetDeactivatedProjects": get_deactivated_projects,
    "GetSingleProject": get_single_project,
    "GetProjectNameList": lambda call, args: _name_list(call, False),
    "GetDeactivatedProjectNameList": lambda call, args: _name_list(call, True),
    "GetProjectStatuses": get_statuses,
    "GetProjectTypes": get_types,
}
