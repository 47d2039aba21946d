"""Loop end conditions written as expressions, in the small part of CEL agno documents:
``current_iteration >= 2``, ``all_success && current_iteration >= max_iterations``,
``last_step_content.contains("DONE")``, ``!all_success || step_outputs["check"] == "ok"``,
``size(last_step_content) > 10``.

The expression is translated to a Python expression and checked node by node against what
that subset needs; nothing else (no attribute access, no calls but the ones listed) runs.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable, Mapping
from typing import Any

_NAMES = frozenset(
    {"current_iteration", "max_iterations", "all_success", "last_step_content", "step_outputs"}
)
_METHODS = frozenset({"contains", "startsWith", "endsWith"})
_TOKENS = re.compile(
    r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|&&|\|\||!=|!|\btrue\b|\bfalse\b|[^"\'&|!]+|.'
)
_ALLOWED = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Mod,
    ast.Name,
    ast.Load,
    ast.Constant,
    ast.Subscript,
    ast.Call,
    ast.Attribute,
)


def _translate(expression: str) -> str:
    out = []
    for token in _TOKENS.findall(expression):
        out.append(
            {"&&": " and ", "||": " or ", "!": " not ", "true": "True", "false": "False"}.get(
                token, token
            )
        )
    return "".join(out)


def compile_end_condition(expression: str) -> Callable[[Mapping[str, Any]], bool]:
    """A function of the loop's context; raises ValueError naming what is not supported."""
    try:
        tree = ast.parse(_translate(expression).strip(), mode="eval")
    except SyntaxError:
        raise ValueError(f"end_condition {expression!r} is not a valid expression") from None
    for node in ast.walk(tree):
        if not isinstance(node, _ALLOWED):
            raise ValueError(
                f"end_condition {expression!r}: {type(node).__name__} is not supported"
            )
        if isinstance(node, ast.Name) and node.id not in _NAMES | {"size", "True", "False"}:
            raise ValueError(
                f"end_condition {expression!r}: unknown name {node.id!r} "
                f"(known: {', '.join(sorted(_NAMES))})"
            )
        if isinstance(node, ast.Call):
            fn = node.func
            method = isinstance(fn, ast.Attribute) and fn.attr in _METHODS
            size = isinstance(fn, ast.Name) and fn.id == "size"
            if not (method or size) or node.keywords or len(node.args) != 1:
                raise ValueError(f"end_condition {expression!r}: unsupported call")
        if isinstance(node, ast.Attribute) and node.attr not in _METHODS:
            raise ValueError(f"end_condition {expression!r}: unsupported attribute {node.attr!r}")

    def evaluate(context: Mapping[str, Any]) -> bool:
        return bool(_eval(tree.body, context))

    return evaluate


# An interpreter: one branch, and one return, per kind of expression node.
def _eval(node: ast.AST, ctx: Mapping[str, Any]) -> Any:  # noqa: PLR0911, PLR0912
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id == "True":
            return True
        if node.id == "False":
            return False
        return ctx[node.id]
    if isinstance(node, ast.BoolOp):
        values = (_eval(v, ctx) for v in node.values)
        return all(values) if isinstance(node.op, ast.And) else any(values)
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, ctx)
        return (not value) if isinstance(node.op, ast.Not) else -value
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, ctx), _eval(node.right, ctx)
        ops: dict[type, Callable[[Any, Any], Any]] = {
            ast.Add: lambda a, b: a + b,
            ast.Sub: lambda a, b: a - b,
            ast.Mult: lambda a, b: a * b,
            ast.Mod: lambda a, b: a % b,
        }
        return ops[type(node.op)](left, right)
    if isinstance(node, ast.Compare):
        left = _eval(node.left, ctx)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = _eval(comparator, ctx)
            compare: dict[type, Callable[[Any, Any], Any]] = {
                ast.Eq: lambda a, b: a == b,
                ast.NotEq: lambda a, b: a != b,
                ast.Lt: lambda a, b: a < b,
                ast.LtE: lambda a, b: a <= b,
                ast.Gt: lambda a, b: a > b,
                ast.GtE: lambda a, b: a >= b,
                ast.In: lambda a, b: a in b,
                ast.NotIn: lambda a, b: a not in b,
            }
            ok = compare[type(op)](left, right)
            if not ok:
                return False
            left = right
        return True
    if isinstance(node, ast.Subscript):
        return _eval(node.value, ctx).get(_eval(node.slice, ctx))
    if isinstance(node, ast.Call):
        arg = _eval(node.args[0], ctx)
        if isinstance(node.func, ast.Name):  # size(x)
            return len(arg)
        assert isinstance(node.func, ast.Attribute)
        target = str(_eval(node.func.value, ctx))
        if node.func.attr == "contains":
            return str(arg) in target
        if node.func.attr == "startsWith":
            return target.startswith(str(arg))
        return target.endswith(str(arg))
    raise ValueError(f"unsupported expression node {type(node).__name__}")
