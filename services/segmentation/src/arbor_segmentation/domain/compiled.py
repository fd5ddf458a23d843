"""Rules compiled to Python closures, for the subset of CEL cohort rules use.

celpy takes 30 to 300 µs per evaluation, and every event and every re-scored
customer evaluates several rules. Comparisons, arithmetic, logic, ternaries and
``in`` a list of literals, over features and literals of one type each, compile to
closures over plain Python values that take a microsecond or two. Anything else
compiles to nothing, and an input on which CEL could fail (overflow, division by
zero, a missing or mistyped feature) raises :class:`UndecidedError`: in both cases
the caller asks celpy, so the answer is always CEL's own.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any

from lark import Token, Tree

from arbor_segmentation.domain.features import Features

Program = Callable[[Features], Any]
Typed = tuple[Program, type]

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


class UndecidedError(Exception):
    """CEL might fail on these values, or answer differently from Python."""


class _UnsupportedError(Exception):
    pass


def compile_rule(
    tree: Tree[Any], feature_types: Mapping[str, type]
) -> Callable[[Features], bool] | None:
    """A closure equal to the rule where it answers, or None outside the subset."""
    try:
        program, kind = _Compiler(feature_types).node(tree)
    except _UnsupportedError:
        return None
    return program if kind is bool else None


class _Compiler:
    def __init__(self, feature_types: Mapping[str, type]) -> None:
        self._types = feature_types
        # The programs that read one feature and those that give one constant: a
        # comparison of the two, the commonest in rules, becomes one closure, not
        # three. Held here, so no program is collected and its id reused.
        self.features: dict[Program, str] = {}
        self.constants: dict[Program, Any] = {}

    def node(self, tree: Tree[Any]) -> Typed:
        rule = str(tree.data)
        children = tree.children
        if rule in _PASSTHROUGH and len(children) == 1:
            return self.node(_tree(children[0]))
        handler = _HANDLERS.get(rule)
        if handler is None:
            raise _UnsupportedError(rule)
        return handler(self, children)

    def ident(self, name: str) -> Typed:
        kind = self._types.get(name)
        if kind is None:
            raise _UnsupportedError(name)

        def value(values: Features) -> Any:
            found = values.get(name)
            if type(found) is not kind:
                raise UndecidedError(name)
            return found

        self.features[value] = name
        return value, kind


_PASSTHROUGH = frozenset(
    {
        "expr",
        "conditionalor",
        "conditionaland",
        "relation",
        "addition",
        "multiplication",
        "unary",
        "member",
        "primary",
        "paren_expr",
    }
)


def _tree(child: Any) -> Tree[Any]:
    if not isinstance(child, Tree):
        raise _UnsupportedError(str(child))
    return child


def _ternary(compiler: _Compiler, children: list[Any]) -> Typed:
    if len(children) != 3:
        raise _UnsupportedError("expr")
    test, kind = compiler.node(_tree(children[0]))
    then, then_kind = compiler.node(_tree(children[1]))
    other, other_kind = compiler.node(_tree(children[2]))
    if kind is not bool or then_kind is not other_kind:
        raise _UnsupportedError("ternary")
    return (lambda v: then(v) if test(v) else other(v)), then_kind


def _logic(name: str) -> Callable[[_Compiler, list[Any]], Typed]:
    def build(compiler: _Compiler, children: list[Any]) -> Typed:
        left, left_kind = compiler.node(_tree(children[0]))
        right, right_kind = compiler.node(_tree(children[1]))
        if left_kind is not bool or right_kind is not bool:
            raise _UnsupportedError(name)
        # Without errors CEL's commutative && and || equal Python's short circuit;
        # an error on either side raises UndecidedError and celpy decides.
        if name == "or":
            return (lambda v: left(v) or right(v)), bool
        return (lambda v: left(v) and right(v)), bool

    return build


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "relation_lt": operator.lt,
    "relation_le": operator.le,
    "relation_gt": operator.gt,
    "relation_ge": operator.ge,
    "relation_eq": operator.eq,
    "relation_ne": operator.ne,
}


def _relation(compiler: _Compiler, children: list[Any]) -> Typed:
    op_tree = _tree(children[0])
    name = str(op_tree.data)
    left, left_kind = compiler.node(_tree(op_tree.children[0]))
    if name == "relation_in":
        return _membership(compiler, left, left_kind, _tree(children[1]))
    right, right_kind = compiler.node(_tree(children[1]))
    compare = _COMPARISONS.get(name)
    if compare is None or left_kind is not right_kind:
        raise _UnsupportedError(name)
    feature = compiler.features.get(left)
    if feature is not None and right in compiler.constants:
        return _against(feature, left_kind, compare, compiler.constants[right]), bool
    return (lambda v: compare(left(v), right(v))), bool


def _against(
    name: str, kind: type, compare: Callable[[Any, Any], bool], constant: Any
) -> Program:
    """``feature <op> constant`` in one call, checked as :meth:`_Compiler.ident`."""

    def program(values: Features) -> bool:
        found = values.get(name)
        if type(found) is not kind:
            raise UndecidedError(name)
        return compare(found, constant)

    return program


def _membership(
    compiler: _Compiler, left: Program, kind: type, right: Tree[Any]
) -> Typed:
    items = _list_literal(right)
    constants = [compiler.node(item) for item in items]
    if any(item_kind is not kind for _, item_kind in constants):
        raise _UnsupportedError("relation_in")
    try:
        members = frozenset(program({}) for program, _ in constants)
    except UndecidedError as exc:
        raise _UnsupportedError("relation_in") from exc
    return (lambda v: left(v) in members), bool


def _list_literal(tree: Tree[Any]) -> list[Tree[Any]]:
    while str(tree.data) in _PASSTHROUGH and len(tree.children) == 1:
        tree = _tree(tree.children[0])
    if str(tree.data) != "list_lit":
        raise _UnsupportedError(str(tree.data))
    if not tree.children:
        return []
    items = _tree(tree.children[0])
    if str(items.data) != "exprlist":
        raise _UnsupportedError(str(items.data))
    return [_literal_expr(_tree(item)) for item in items.children]


def _literal_expr(tree: Tree[Any]) -> Tree[Any]:
    if not any(str(node.data) == "literal" for node in tree.iter_subtrees()):
        raise _UnsupportedError("a list of non-literals")
    if any(str(node.data) == "ident" for node in tree.iter_subtrees()):
        raise _UnsupportedError("a list of non-literals")
    return tree


def _checked(value: int) -> int:
    if not _INT_MIN <= value <= _INT_MAX:
        raise UndecidedError("overflow")
    return value


def _divide(a: Any, b: Any) -> Any:
    if not b:
        raise UndecidedError("division by zero")
    if type(a) is float:
        return a / b
    quotient = abs(a) // abs(b)
    return _checked(quotient if (a >= 0) == (b > 0) else -quotient)


def _remainder(a: int, b: int) -> int:
    if not b:
        raise UndecidedError("modulus by zero")
    quotient = abs(a) // abs(b)
    return a - b * (quotient if (a >= 0) == (b > 0) else -quotient)


_ARITHMETIC: dict[str, tuple[Callable[[Any, Any], Any], frozenset[type]]] = {
    "addition_add": (operator.add, frozenset({int, float, str})),
    "addition_sub": (operator.sub, frozenset({int, float})),
    "multiplication_mul": (operator.mul, frozenset({int, float})),
    "multiplication_div": (_divide, frozenset({int, float})),
    "multiplication_mod": (_remainder, frozenset({int})),
}


def _arithmetic(compiler: _Compiler, children: list[Any]) -> Typed:
    op_tree = _tree(children[0])
    name = str(op_tree.data)
    left, left_kind = compiler.node(_tree(op_tree.children[0]))
    right, right_kind = compiler.node(_tree(children[1]))
    apply, kinds = _ARITHMETIC.get(name, (None, frozenset()))
    if apply is None or left_kind is not right_kind or left_kind not in kinds:
        raise _UnsupportedError(name)
    if left_kind is int:
        return (lambda v: _checked(apply(left(v), right(v)))), int
    return (lambda v: apply(left(v), right(v))), left_kind


def _unary(compiler: _Compiler, children: list[Any]) -> Typed:
    name = str(_tree(children[0]).data)
    operand, kind = compiler.node(_tree(children[1]))
    if name == "unary_not" and kind is bool:
        return (lambda v: not operand(v)), bool
    if name == "unary_neg" and kind is int:
        return (lambda v: _checked(-operand(v))), int
    if name == "unary_neg" and kind is float:
        return (lambda v: -operand(v)), float
    raise _UnsupportedError(name)


def _ident(compiler: _Compiler, children: list[Any]) -> Typed:
    return compiler.ident(str(children[0]))


def _literal(compiler: _Compiler, children: list[Any]) -> Typed:
    token = children[0]
    assert isinstance(token, Token)
    value = _constant(token.type, str(token))

    def constant(_values: Features) -> Any:
        return value

    compiler.constants[constant] = value
    return constant, type(value)


def _constant(kind: str, text: str) -> int | float | str | bool:
    if kind == "BOOL_LIT":
        return text == "true"
    if kind == "FLOAT_LIT":
        return float(text)
    if kind == "INT_LIT":
        try:
            value = int(text, 0)
        except ValueError as exc:
            raise _UnsupportedError(text) from exc
        if not _INT_MIN <= value <= _INT_MAX:
            raise _UnsupportedError(text)
        return value
    # Only plain quoted strings: escapes, raw and multi-line strings are celpy's.
    if kind == "STRING_LIT" and text[:1] in "\"'" and "\\" not in text:
        return text[1:-1]
    raise _UnsupportedError(text)


def _binary_or(
    rule: str, binary: Callable[[_Compiler, list[Any]], Typed]
) -> Callable[[_Compiler, list[Any]], Typed]:
    def build(compiler: _Compiler, children: list[Any]) -> Typed:
        if len(children) != 2:
            raise _UnsupportedError(rule)
        return binary(compiler, children)

    return build


_HANDLERS: dict[str, Callable[[_Compiler, list[Any]], Typed]] = {
    "expr": _ternary,
    "conditionalor": _binary_or("conditionalor", _logic("or")),
    "conditionaland": _binary_or("conditionaland", _logic("and")),
    "relation": _binary_or("relation", _relation),
    "addition": _binary_or("addition", _arithmetic),
    "multiplication": _binary_or("multiplication", _arithmetic),
    "unary": _binary_or("unary", _unary),
    "ident": _ident,
    "literal": _literal,
}
