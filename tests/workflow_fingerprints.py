"""Workflow fingerprints: the source-ordered Temporal command calls of every workflow method (stdlib only).

After PostHog's ``posthog/temporal/common/workflow_fingerprints.py``. Replaying the committed histories
(tests/test_replay.py) catches a nondeterministic change only on the paths those histories took; this
cheap scan catches any change of *what* a workflow method asks Temporal for, in *which order*, on every
path: activities (by name), timers and conditions with a timeout, continue-as-new, child workflows,
patches, search-attribute upserts, and the calls between the workflow's own methods that order them.

A change of the fingerprint is not necessarily a bug, but it is always a question: can a workflow that
is running today (an InvoiceSync waits for payment for weeks) replay the new code? If not, guard the new
code with ``workflow.patched("<change-id>")``. Then record the new baseline:
``.venv/bin/python tests/histories/generate.py --fingerprints``.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_DIR = ROOT / "workflows"
BASELINE = Path(__file__).resolve().parent / "histories" / "workflow_fingerprints.json"

COMMANDS = {
    "execute_activity",
    "start_activity",
    "execute_activity_method",
    "start_activity_method",
    "execute_local_activity",
    "start_local_activity",
    "execute_child_workflow",
    "start_child_workflow",
    "get_external_workflow_handle",
    "sleep",
    "wait_condition",
    "continue_as_new",
    "patched",
    "deprecate_patch",
    "upsert_search_attributes",
    "upsert_memo",
    "wait",
    "as_completed",
}
"""``workflow.<name>`` (and ``asyncio.<name>``) calls that emit commands or decide which ones are emitted."""
TIMER_KEYWORDS = {"timeout"}
"""Keyword arguments whose presence adds a command (``wait_condition(timeout=...)`` starts a timer)."""


def fingerprints(directory: Path = WORKFLOW_DIR) -> dict[str, dict[str, list[str]]]:
    """``{file: {Class.method: [call, ...]}}`` for every module in ``directory`` that defines a workflow."""
    out: dict[str, dict[str, list[str]]] = {}
    for path in sorted(directory.glob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        classes = [node for node in tree.body if isinstance(node, ast.ClassDef) and _is_workflow(node)]
        if not classes:
            continue
        raw: dict[str, list[str]] = {}
        for cls in classes:
            own = {n.name for n in cls.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
            for node in cls.body:
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    calls = _Calls(own)
                    for statement in node.body:
                        calls.visit(statement)
                    raw[f"{cls.name}.{node.name}"] = calls.found
        methods = _commanding_only(raw)
        out[f"{directory.name}/{path.name}"] = methods
    return out


def _commanding_only(raw: dict[str, list[str]]) -> dict[str, list[str]]:
    """Keep calls of own methods that (transitively) emit commands; drop methods that emit none, so
    editing a log line or a current-details text does not change the fingerprint."""
    cls_of = {name.split(".")[1]: name.split(".")[0] for name in raw}
    commanding: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, calls in raw.items():
            if name in commanding:
                continue
            for call in calls:
                callee = _own_callee(call)
                if callee is None or f"{cls_of.get(callee)}.{callee}" in commanding:
                    commanding.add(name)
                    changed = True
                    break
    out: dict[str, list[str]] = {}
    for name, calls in raw.items():
        kept = [
            c for c in calls if _own_callee(c) is None or f"{cls_of.get(_own_callee(c))}.{_own_callee(c)}" in commanding
        ]
        if kept:
            out[name] = kept
    return out


def _own_callee(call: str) -> str | None:
    return call[len("self.") : call.index("(")] if call.startswith("self.") else None


def _is_workflow(cls: ast.ClassDef) -> bool:
    return any("workflow.defn" in ast.unparse(d) for d in cls.decorator_list)


class _Calls(ast.NodeVisitor):
    """Command calls and calls of the class's own methods, in source order (arguments before the call)."""

    def __init__(self, own_methods: set[str]) -> None:
        self.own = own_methods
        self.found: list[str] = []

    def visit_Lambda(self, node: ast.Lambda) -> None:
        return  # a condition's body emits nothing

    def visit_Call(self, node: ast.Call) -> None:
        self.generic_visit(node)  # nested calls first: they run first
        func = node.func
        if not isinstance(func, ast.Attribute) or not isinstance(func.value, ast.Name):
            return
        owner, name = func.value.id, func.attr
        if owner in ("workflow", "asyncio") and name in COMMANDS:
            extra = sorted(k.arg for k in node.keywords if k.arg in TIMER_KEYWORDS)
            self.found.append(f"{owner}.{name}({_first(node)}{''.join(f', {k}=' for k in extra)})")
        elif owner == "self" and name in self.own:
            self.found.append(f"self.{name}({_first(node, strings=False)})")


def _first(node: ast.Call, strings: bool = True) -> str:
    """The first argument when it names what is run (``Step.X.value``, ``Step.X``, an activity name or
    patch id), else ``…``."""
    if not node.args:
        return ""
    arg = node.args[0]
    if strings and isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return repr(arg.value)
    if isinstance(arg, ast.Attribute):
        text = ast.unparse(arg)
        if text.startswith("Step."):
            return text
    return "…"
