"""Safe arithmetic expressions over named parameters.

An expression is parsed with `ast` and walked against a whitelist: numbers,
names, unary/binary + - * / // % **, comparisons are not allowed, calls only
to the math functions in FUNCTIONS. Attribute access, subscripts, lambdas,
comprehensions and every other node are refused. Arithmetic is done in floats,
so `9**9**9` overflows at once instead of building a huge integer. Works on
numpy arrays too (used for distance-dependent probabilities, name `d`).
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any, Callable

import numpy as np

from netbabel.errors import NetbabelError

MAX_LENGTH = 1000
MAX_NODES = 500

FUNCTIONS: dict[str, Callable] = {
    "sqrt": np.sqrt, "exp": np.exp, "log": np.log, "log10": np.log10,
    "sin": np.sin, "cos": np.cos, "tan": np.tan, "tanh": np.tanh,
    "abs": np.abs, "floor": np.floor, "ceil": np.ceil, "round": np.round,
    "min": np.minimum, "max": np.maximum,
}
CONSTANTS = {"pi": math.pi, "e": math.e, "inf": math.inf}

_BINARY = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod, ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}


class ExpressionError(NetbabelError):
    pass


def _compile(node: ast.AST, text: str) -> Callable[[dict], Any]:
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise ExpressionError(f"only numbers are allowed in expressions, not {node.value!r}")
        value = float(node.value)
        return lambda env: value
    if isinstance(node, ast.Name):
        name = node.id
        if name in CONSTANTS:
            c = CONSTANTS[name]
            return lambda env: c
        return lambda env: _lookup(env, name)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        op, left, right = _BINARY[type(node.op)], _compile(node.left, text), _compile(node.right, text)
        return lambda env: _arith(op, left(env), right(env))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        op, arg = _UNARY[type(node.op)], _compile(node.operand, text)
        return lambda env: op(arg(env))
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            shown = ast.unparse(node.func)
            raise ExpressionError(
                f"function {shown!r} is not allowed (allowed: {', '.join(sorted(FUNCTIONS))})")
        if node.keywords:
            raise ExpressionError("keyword arguments are not allowed in expressions")
        fn, args = FUNCTIONS[node.func.id], [_compile(a, text) for a in node.args]
        return lambda env: fn(*[a(env) for a in args])
    raise ExpressionError(f"{type(node).__name__} is not allowed in expressions: {text!r}")


def _lookup(env: dict, name: str) -> Any:
    try:
        return env[name]
    except KeyError:
        raise ExpressionError(f"undefined name {name!r}") from None


def _arith(op: Callable, a: Any, b: Any) -> Any:
    try:
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            return op(a, b)
    except (OverflowError, FloatingPointError) as exc:
        raise ExpressionError(f"arithmetic error: {exc}") from None
    except ZeroDivisionError:
        raise ExpressionError("division by zero") from None


class Expression:
    """A parsed, whitelisted expression; call `evaluate(env)`."""

    def __init__(self, text: str):
        if len(text) > MAX_LENGTH:
            raise ExpressionError(f"expression is longer than {MAX_LENGTH} characters")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            raise ExpressionError(f"not a valid expression: {text[:80]!r}") from None
        nodes = list(ast.walk(tree))
        if len(nodes) > MAX_NODES:
            raise ExpressionError(f"expression has more than {MAX_NODES} terms")
        self.text = text
        self.names = sorted({n.id for n in nodes if isinstance(n, ast.Name)} - set(CONSTANTS) - set(FUNCTIONS))
        self._fn = _compile(tree.body, text)

    def evaluate(self, env: dict[str, Any]) -> Any:
        result = self._fn(env)
        if isinstance(result, float) or np.ndim(result) == 0:
            result = float(result)
            if math.isnan(result):
                raise ExpressionError(f"{self.text!r} evaluates to NaN")
        return result


_CACHE: dict[str, Expression] = {}


def parse(text: str) -> Expression:
    expr = _CACHE.get(text)
    if expr is None:
        expr = Expression(text)
        if len(_CACHE) < 10000:
            _CACHE[text] = expr
    return expr


def evaluate_value(value: Any, parameters: dict[str, float], extra: dict[str, Any] | None = None) -> Any:
    """A number as it is, or an expression string evaluated over parameters (+ extra names)."""
    if isinstance(value, bool):
        raise ExpressionError(f"expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        env = {**parameters, **extra} if extra else parameters
        return parse(value).evaluate(env)
    raise ExpressionError(f"expected a number or an expression, got {type(value).__name__}")


def resolve_parameters(parameters: dict[str, Any]) -> dict[str, float]:
    """Evaluate all named parameters in dependency order; cycles and unknown names are errors."""
    resolved: dict[str, float] = {}
    visiting: list[str] = []

    def visit(name: str) -> float:
        if name in resolved:
            return resolved[name]
        if name in visiting:
            cycle = " -> ".join(visiting[visiting.index(name):] + [name])
            raise ExpressionError(f"circular parameter definition: {cycle}", pointer=f"/parameters/{name}")
        if name not in parameters:
            raise ExpressionError(f"undefined name {name!r}")
        visiting.append(name)
        value = parameters[name]
        try:
            if isinstance(value, str):
                for dep in parse(value).names:
                    if dep not in parameters:
                        raise ExpressionError(f"undefined name {dep!r} in {value!r}", pointer=f"/parameters/{name}")
                    visit(dep)
            resolved[name] = evaluate_value(value, resolved)
        except ExpressionError as exc:
            if exc.problems[0].pointer:
                raise
            raise ExpressionError(exc.problems[0].message, pointer=f"/parameters/{name}") from None
        visiting.pop()
        return resolved[name]

    for key in parameters:
        visit(key)
    return resolved
