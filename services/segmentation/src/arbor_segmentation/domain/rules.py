"""Cohort definitions: ordered CEL rules over the features, validated before use.

CEL (the Common Expression Language) is side-effect free and cannot reach Python, so
operators may write rules without being able to run code. Rules are tried in
ascending priority; the first that holds decides the cohort, the default catches the
rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, cast

import celpy
from celpy import CompiledRunner, InterpretedRunner, celtypes
from celpy.celparser import CELParseError
from celpy.evaluation import CELEvalError, TranspilerTree
from lark import Tree

from arbor_segmentation.domain.compiled import UndecidedError, compile_rule
from arbor_segmentation.domain.errors import DefinitionInvalidError, Problem
from arbor_segmentation.domain.features import (
    CustomerState,
    Features,
    FeatureValue,
    features,
)

logger = logging.getLogger(__name__)

DEFAULT_RULE = "default"
TENURE = "tenure_days"
_MEMO_SIZE = 65_536

# Rules run transpiled to Python by celpy (from the CEL syntax tree, never from the
# operator's text), about ten times faster than interpreted; validation interprets,
# because only the interpreter says which errors are type errors.
_ENVIRONMENT = celpy.Environment(runner_class=CompiledRunner)
_SAMPLE: Features = features(CustomerState("sample"), datetime(2024, 1, 1, tzinfo=UTC))
FEATURE_TYPES: dict[str, type] = {name: type(v) for name, v in _SAMPLE.items()}
"""Every feature a rule may name, with its type (int, float, str or bool)."""


@dataclass(frozen=True, eq=False)
class Rule:
    name: str
    priority: int
    expression: str
    cohort: str

    @cached_property
    def program(self) -> celpy.Runner:
        return _ENVIRONMENT.program(_ENVIRONMENT.compile(self.expression))

    @cached_property
    def features_used(self) -> tuple[str, ...]:
        tree = _ENVIRONMENT.compile(self.expression)
        return tuple(sorted(_identifiers(tree)))

    @cached_property
    def _compiled(self) -> Callable[[Features], bool] | None:
        return compile_rule(_ENVIRONMENT.compile(self.expression), FEATURE_TYPES)

    @cached_property
    def _memo(self) -> dict[tuple[FeatureValue, ...], bool]:
        return {}

    def holds(self, values: Features) -> bool:
        """Whether the rule holds; an evaluation error means it does not."""
        compiled = self._compiled
        if compiled is not None:
            try:
                return compiled(values)
            except UndecidedError:
                pass
        # CEL is pure, so a rule's answer depends only on the values it names; many
        # customers share them, and celpy's per-call cost is high.
        key = tuple(values[name] for name in self.features_used)
        known = self._memo.get(key)
        if known is None:
            known = self._evaluate(dict(zip(self.features_used, key, strict=True)))
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = known
        return known

    def _evaluate(self, values: Features) -> bool:
        try:
            result = self.program.evaluate(to_cel(values))
        except CELEvalError as exc:
            logger.warning("rule %s failed to evaluate: %s", self.name, exc)
            return False
        return isinstance(result, celtypes.BoolType) and bool(result)


@dataclass(frozen=True, eq=False)
class Definition:
    """One version of the cohort definition: rules in priority order and a default."""

    version: int
    rules: tuple[Rule, ...]
    default_cohort: str

    def evaluate(self, values: Features) -> Decision:
        """The cohort for ``values`` and why."""
        for rule in self.rules:
            if rule.holds(values):
                return Decision(rule.cohort, rule.name, _decisive(rule, values))
        return Decision(self.default_cohort, DEFAULT_RULE, {})

    @cached_property
    def tenure_marks(self) -> tuple[int, ...]:
        """Tenures, in days, at which a rule over ``tenure_days`` may change answer.

        Tenure grows with no event, so the service sets a timer for the next of
        these (see :func:`~features.timer_instants`). They are the constants the
        rules compare ``tenure_days`` with, and the day after each (for ``<=``).
        """
        marks: set[int] = set()
        for rule in self.rules:
            if TENURE in rule.features_used:
                tree = _ENVIRONMENT.compile(rule.expression)
                marks.update(m for n in _tenure_bounds(tree) for m in (n, n + 1))
        return tuple(sorted(m for m in marks if m >= 0))

    def matches(self, values: Features) -> list[Rule]:
        """Every rule that holds, in priority order (for the overlaps report)."""
        return [rule for rule in self.rules if rule.holds(values)]


@dataclass(frozen=True)
class Decision:
    cohort: str
    rule: str
    features: dict[str, FeatureValue]


def build(
    version: int, rules: Sequence[tuple[str, int, str, str | None]], default: str
) -> Definition:
    """Validate ``(name, priority, expression, cohort)`` rules into a definition."""
    problems: list[Problem] = []
    checked: list[Rule] = []
    for name, priority, expression, cohort in sorted(rules, key=lambda r: r[1]):
        rule = Rule(name, priority, expression, cohort or name)
        reason = _check(rule)
        if reason:
            problems.append(Problem(name, reason))
        else:
            checked.append(rule)
    problems.extend(_check_order(checked, rules))
    if not default.strip():
        problems.append(Problem(DEFAULT_RULE, "the default cohort must be named"))
    if problems:
        raise DefinitionInvalidError(problems)
    return Definition(version, tuple(checked), default)


def to_cel(values: Features) -> dict[str, celtypes.Value]:
    """The feature values as CEL values."""
    return {name: _cel_value(value) for name, value in values.items()}


def _cel_value(value: FeatureValue) -> celtypes.Value:
    if isinstance(value, bool):
        return celtypes.BoolType(value)
    if isinstance(value, int):
        return celtypes.IntType(value)
    if isinstance(value, float):
        return celtypes.DoubleType(value)
    return celtypes.StringType(value)


def _check(rule: Rule) -> str | None:
    try:
        tree = _ENVIRONMENT.compile(rule.expression)
    except CELParseError as exc:
        return f"the expression does not parse: {str(exc).splitlines()[0]}"
    unknown = sorted(_identifiers(tree) - FEATURE_TYPES.keys())
    if unknown:
        return f"unknown feature {', '.join(unknown)}"
    return _type_error(tree)


def _type_error(tree: Tree[Any]) -> str | None:
    # Evaluating each comparison on its own against typed sample values finds type
    # errors that short-circuiting would hide in the whole expression.
    activation = to_cel(_SAMPLE)
    for part in [*_comparisons(tree), tree]:
        try:
            wrapped = TranspilerTree("expr", [cast(TranspilerTree, part)])
            result = InterpretedRunner(_ENVIRONMENT, wrapped).evaluate(activation)
        except CELEvalError as exc:
            # Only a type mismatch is the rule's fault; a division by zero on the
            # sample values is a run-time matter (the rule then does not hold).
            if len(exc.args) > 1 and exc.args[1] is TypeError:
                return f"type error: {_first_reason(exc)}"
            continue
        if part is tree and not isinstance(result, celtypes.BoolType):
            return f"the expression must be a bool, it gives {type(result).__name__}"
    return None


def _check_order(
    checked: list[Rule], raw: Sequence[tuple[str, int, str, str | None]]
) -> list[Problem]:
    problems: list[Problem] = []
    names: set[str] = set()
    priorities: dict[int, str] = {}
    for name, priority, _, _ in sorted(raw, key=lambda r: r[1]):
        if name in names or name == DEFAULT_RULE:
            problems.append(Problem(name, "the rule name is used twice or reserved"))
        if priority in priorities:
            problems.append(
                Problem(name, f"priority {priority} is also {priorities[priority]}'s")
            )
        names.add(name)
        priorities.setdefault(priority, name)
    return problems + _unreachable(checked)


def _unreachable(rules: list[Rule]) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    catch_all: str | None = None
    for rule in rules:
        normal = " ".join(rule.expression.split())
        if catch_all is not None:
            problems.append(
                Problem(rule.name, f"unreachable: {catch_all} before it always holds")
            )
        elif normal in seen:
            problems.append(
                Problem(rule.name, f"unreachable: {seen[normal]} has the same rule")
            )
        seen.setdefault(normal, rule.name)
        if not rule.features_used and rule.holds({}):
            catch_all = catch_all or rule.name
    return problems


def _decisive(rule: Rule, values: Features) -> dict[str, FeatureValue]:
    return {name: values[name] for name in rule.features_used if name in values}


def _identifiers(tree: Tree[Any]) -> set[str]:
    return {
        str(node.children[0])
        for node in tree.iter_subtrees()
        if node.data == "ident" and node.children
    }


def _comparisons(tree: Tree[Any]) -> list[Tree[Any]]:
    return [
        node
        for node in tree.iter_subtrees()
        if node.data == "relation"
        and node.children
        and isinstance(node.children[0], Tree)
        and str(node.children[0].data).startswith("relation_")
    ]


def _tenure_bounds(tree: Tree[Any]) -> list[int]:
    """The constant sides of the comparisons whose other side reads the tenure."""
    bounds: list[int] = []
    for comparison in _comparisons(tree):
        if len(comparison.children) != 2:
            continue
        left, right = comparison.children[0].children[0], comparison.children[1]
        for side, other in ((left, right), (right, left)):
            if _identifiers(side) or TENURE not in _identifiers(other):
                continue
            wrapped = TranspilerTree("expr", [cast(TranspilerTree, side)])
            try:
                value = InterpretedRunner(_ENVIRONMENT, wrapped).evaluate({})
            except CELEvalError:
                continue
            if isinstance(value, celtypes.IntType):
                bounds.append(int(value))
    return bounds


def _first_reason(error: CELEvalError) -> str:
    detail = error.args[2] if len(error.args) > 2 else error.args
    return str(detail[0] if isinstance(detail, tuple) and detail else detail)
