"""Rules compiled to Python answer exactly as celpy does, or leave it to celpy."""

from __future__ import annotations

from typing import Any

import celpy
from celpy import celtypes
from celpy.evaluation import CELEvalError
from hypothesis import given, settings
from hypothesis import strategies as st

from arbor_segmentation.domain import defaults, rules
from arbor_segmentation.domain.compiled import UndecidedError, compile_rule
from arbor_segmentation.domain.features import Features

_ENVIRONMENT = celpy.Environment()
_INTS = ("invoices_settled", "tenure_days", "open_balance_minor")
_FLOATS = ("on_time_rate_365", "avg_days_late")
_STRINGS = ("payment_method", "billing_cycle")
_INT_EDGES = (0, 1, -1, 3, 7, 2**62, 2**63 - 1, -(2**63) + 1)

_int_literal = st.sampled_from(_INT_EDGES).map(str)
_float_literal = st.sampled_from(("0.0", "1.5", "-2.5", "1e300", ".5", "3.0"))
_string_literal = st.sampled_from(('"card"', '""', "'annual'", '"direct_debit"'))


def _combine(
    leaves: st.SearchStrategy[str], operators: tuple[str, ...]
) -> st.SearchStrategy[str]:
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(operators), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            inner.map(lambda e: f"-({e})") if "-" in operators else inner,
        ),
        max_leaves=4,
    )


_int_expr = _combine(
    st.one_of(_int_literal, st.sampled_from(_INTS)), ("+", "-", "*", "/", "%")
)
_float_expr = _combine(
    st.one_of(_float_literal, st.sampled_from(_FLOATS)), ("+", "-", "*", "/")
)
_string_expr = _combine(st.one_of(_string_literal, st.sampled_from(_STRINGS)), ("+",))
_relations = ("<", "<=", ">", ">=", "==", "!=")


def _comparison(expr: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(expr, st.sampled_from(_relations), expr).map(" ".join)


_membership = st.tuples(st.sampled_from(_INTS), st.lists(_int_literal, max_size=3)).map(
    lambda t: f"{t[0]} in [{', '.join(t[1])}]"
)
_atoms = st.one_of(
    _comparison(_int_expr),
    _comparison(_float_expr),
    _comparison(_string_expr),
    _membership,
    st.sampled_from(("true", "false", "invoices_settled < 1.0")),
)
_bool_expr = st.recursive(
    _atoms,
    lambda inner: st.one_of(
        st.tuples(inner, st.sampled_from(("&&", "||")), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        inner.map(lambda e: f"!({e})"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
    ),
    max_leaves=5,
)
_values = st.fixed_dictionaries(
    {
        **{
            name: st.integers(-(2**63), 2**63 - 1) | st.integers(-5, 5)
            for name in _INTS
        },
        **{
            name: st.floats(allow_nan=False, allow_infinity=False) | st.just(0.0)
            for name in _FLOATS
        },
        **{name: st.sampled_from(("card", "annual", "")) for name in _STRINGS},
    }
)
_TYPES: dict[str, type] = {name: int for name in _INTS}
_TYPES |= {name: float for name in _FLOATS} | {name: str for name in _STRINGS}


def _celpy(expression: str, values: Features) -> bool | None:
    program = _ENVIRONMENT.program(_ENVIRONMENT.compile(expression))
    try:
        result = program.evaluate(rules.to_cel(values))
    except CELEvalError:
        return None
    return bool(result) if isinstance(result, celtypes.BoolType) else None


def _compiled(expression: str, values: Features) -> Any:
    program = compile_rule(_ENVIRONMENT.compile(expression), _TYPES)
    if program is None:
        return "not compiled"
    try:
        return program(values)
    except UndecidedError:
        return "undecided"


@settings(max_examples=600, deadline=None)
@given(_bool_expr, _values)
def test_compiled_rule_answers_as_celpy_whenever_it_answers(
    expression: str, values: Features
) -> None:
    compiled = _compiled(expression, values)

    if compiled not in ("not compiled", "undecided"):
        assert compiled is _celpy(expression, values), expression


def test_feature_compared_with_a_constant_answers_as_celpy_on_either_side() -> None:
    # The commonest comparison has a shortcut of its own: every operator, with the
    # feature below, at and above the constant, and missing or mistyped.
    cases = (
        ("invoices_settled", "3", (2, 3, 4)),
        ("avg_days_late", "0.5", (0.0, 0.5, 1.5)),
        ("payment_method", '"card"', ("annual", "card", "")),
    )
    for name, literal, samples in cases:
        for relation in _relations:
            expression = f"{name} {relation} {literal}"
            for sample in samples:
                values: Features = {name: sample}
                answer = _compiled(expression, values)
                assert answer is _celpy(expression, values), (expression, sample)
            assert _compiled(expression, {}) == "undecided"
            assert _compiled(expression, {name: True}) == "undecided"


def test_seeded_rules_all_compile() -> None:
    definition = rules.build(1, defaults.SEED_RULES, defaults.DEFAULT_COHORT)

    for rule in definition.rules:
        tree = _ENVIRONMENT.compile(rule.expression)
        assert compile_rule(tree, rules.FEATURE_TYPES) is not None, rule.name


def test_rules_outside_the_subset_and_failing_inputs_are_left_to_celpy() -> None:
    values: Features = {
        "invoices_settled": 4,
        "payment_method": "card",
        "tenure_days": 0,
    }
    functions = rules.Rule("size", 1, "size(payment_method) == 4", "x")
    dividing = rules.Rule("divide", 2, "invoices_settled / tenure_days > 1", "x")
    rescued = rules.Rule(
        "rescued", 3, "invoices_settled / tenure_days > 1 || true", "x"
    )

    assert compile_rule(_ENVIRONMENT.compile(functions.expression), _TYPES) is None
    assert functions.holds(values)
    assert not dividing.holds(values)
    assert rescued.holds(values)
