"""``set_user_input`` validation: every field at once, one error, nothing stored on error."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import (
    RequirementsUnresolvedError,
    Step,
    StepRequirement,
    UserInputField,
    UserInputValidationError,
    Workflow,
)
from engine.db.sqlite import SqliteDb

SCHEMA = [
    UserInputField(name="name", field_type="str"),
    UserInputField(name="count", field_type="int"),
    UserInputField(name="ratio", field_type="float"),
    UserInputField(name="dry_run", field_type="bool"),
    UserInputField(name="env", field_type="str", allowed_values=["prod", "dev"]),
    UserInputField(name="note", field_type="str", required=False),
]


def requirement(schema: list[UserInputField] | None = None) -> StepRequirement:
    step = Step(
        name="form",
        executor=lambda si: None,
        requires_user_input=True,
        user_input_schema=SCHEMA if schema is None else schema,
    )
    from datetime import UTC, datetime

    return step.new_requirement(index=0, path=[0], now=datetime.now(UTC))


GOOD: dict[str, Any] = {"name": "x", "count": 3, "ratio": 0.5, "dry_run": False, "env": "dev"}


def test_valid_values_are_stored_and_returned() -> None:
    req = requirement()
    values = req.set_user_input(**GOOD, by="alice")
    assert values == GOOD
    assert req.user_input == GOOD
    assert req.decided_by == "alice" and req.decided_at is not None
    assert req.confirmed is True  # input on an input-only step is the go-ahead
    assert [f.value for f in req.user_input_schema] == ["x", 3, 0.5, False, "dev", None]
    assert req.is_resolved


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        ("count", "42", 42),
        ("count", " 7 ", 7),
        ("count", -3, -3),
        ("ratio", "0.5", 0.5),
        ("ratio", "3", 3.0),
        ("ratio", 2, 2.0),  # an int is a fine float
        ("dry_run", "true", True),
        ("dry_run", "False", False),
        ("dry_run", "yes", True),
        ("dry_run", "0", False),
        ("dry_run", True, True),
        ("name", "  spaced  ", "  spaced  "),
    ],
)
def test_form_strings_are_converted_where_unambiguous(field: str, raw: Any, expected: Any) -> None:
    req = requirement()
    values = req.set_user_input({**GOOD, field: raw})
    assert values[field] == expected
    assert type(values[field]) is type(expected)


def test_an_int_given_as_float_is_stored_as_float() -> None:
    values = requirement().set_user_input({**GOOD, "ratio": 1})
    assert values["ratio"] == 1.0 and isinstance(values["ratio"], float)


@pytest.mark.parametrize(
    ("field", "raw", "why"),
    [
        ("count", True, "boolean"),  # a bool is not an int
        ("count", 1.5, "whole number"),
        ("count", "4.2", "whole number"),
        ("count", "many", "whole number"),
        ("ratio", False, "boolean"),
        ("ratio", "half", "number"),
        ("ratio", "nan", "finite"),
        ("ratio", [1], "number"),
        ("dry_run", "maybe", "true or false"),
        ("dry_run", 1, "true or false"),
        ("name", 5, "text"),
        ("env", "staging", "allowed values"),
    ],
)
def test_bad_values_are_named_with_the_reason(field: str, raw: Any, why: str) -> None:
    req = requirement()
    with pytest.raises(UserInputValidationError) as info:
        req.set_user_input({**GOOD, field: raw})
    assert isinstance(info.value, ValueError)
    assert list(info.value.errors) == [field]
    assert why in info.value.errors[field]
    assert f"{field}:" in str(info.value) and "'form'" in str(info.value)


def test_one_error_names_every_bad_field_and_nothing_is_stored() -> None:
    req = requirement()
    with pytest.raises(UserInputValidationError) as info:
        req.set_user_input(
            count="three", ratio=True, env="qa", bogus=1, other="x", by="mallory"
        )  # name and dry_run missing
    errors = info.value.errors
    assert set(errors) == {"count", "ratio", "env", "bogus", "other", "name", "dry_run"}
    assert errors["name"] == "this field is required"
    assert errors["dry_run"] == "this field is required"
    assert "unknown field" in errors["bogus"] and "count" in errors["bogus"]
    message = str(info.value)
    for name in errors:
        assert f"{name}:" in message
    # Nothing stored: not the good values, not who tried.
    assert req.user_input is None
    assert [f.value for f in req.user_input_schema] == [None] * len(SCHEMA)
    assert req.confirmed is None and req.decided_by is None and req.decided_at is None
    assert req.needs_user_input


def test_a_failed_correction_keeps_the_earlier_answer() -> None:
    req = requirement()
    req.set_user_input(**GOOD, by="alice")
    with pytest.raises(UserInputValidationError):
        req.set_user_input({**GOOD, "count": "lots"}, by="bob")
    assert req.user_input == GOOD and req.decided_by == "alice"


@pytest.mark.parametrize("blank", ["", "   ", None])
def test_required_fields_reject_blank(blank: Any) -> None:
    with pytest.raises(UserInputValidationError) as info:
        requirement().set_user_input({**GOOD, "name": blank, "count": blank})
    assert info.value.errors == {
        "name": "this field is required",
        "count": "this field is required",
    }


def test_optional_fields_may_be_left_out_or_blank() -> None:
    schema = [
        UserInputField(name="size", field_type="int", required=False),
        UserInputField(name="note", required=False),
    ]
    assert requirement(schema).set_user_input() == {}
    assert requirement(schema).set_user_input(size="", note="") == {"note": ""}
    assert requirement(schema).set_user_input(size=None) == {}


def test_allowed_values_compare_after_conversion() -> None:
    schema = [UserInputField(name="level", field_type="int", allowed_values=[1, 2, 3])]
    assert requirement(schema).set_user_input(level="2") == {"level": 2}
    with pytest.raises(UserInputValidationError, match="allowed values"):
        requirement(schema).set_user_input(level="4")


def test_a_field_named_by_is_given_as_a_mapping() -> None:
    schema = [UserInputField(name="by"), UserInputField(name="when")]
    req = requirement(schema)
    assert req.set_user_input({"by": "friday", "when": "now"}, by="alice") == {
        "by": "friday",
        "when": "now",
    }
    assert req.decided_by == "alice"


def test_field_type_may_be_given_as_a_python_type() -> None:
    assert UserInputField(name="n", field_type=int).field_type == "int"  # type: ignore[arg-type]


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_ints_and_their_strings_round_trip(value: int) -> None:
    field = UserInputField(name="n", field_type="int")
    assert field.convert(value) == value
    assert field.convert(str(value)) == value
    assert UserInputField(name="f", field_type="float").convert(value) == float(value)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_and_their_strings_round_trip(value: float) -> None:
    field = UserInputField(name="f", field_type="float")
    assert field.convert(value) == value
    assert field.convert(repr(value)) == value


@given(
    st.text().filter(
        lambda s: (
            s.strip().lower() not in {"true", "false", "yes", "no", "y", "n", "1", "0", "on", "off"}
        )
    )
)
def test_other_strings_are_not_bools(value: str) -> None:
    with pytest.raises(ValueError, match="true or false"):
        UserInputField(name="b", field_type="bool").convert(value)


def test_continue_run_refuses_invalid_values_set_by_hand(tmp_path) -> None:
    wf = Workflow(
        name="w",
        db=SqliteDb(db_file=tmp_path / "w.db"),
        steps=[
            Step(
                name="form",
                executor=lambda si: si.user_input,
                requires_user_input=True,
                user_input_schema=[UserInputField(name="count", field_type="int")],
            )
        ],
    )
    run = wf.run("x")
    req = run.step_requirements[0]
    req.user_input = {"count": "many"}  # bypassing set_user_input
    req.confirmed = True
    with pytest.raises(UserInputValidationError, match="count"):
        wf.continue_run(run)
    assert wf.get_run(run.run_id).is_paused
    assert wf.get_decisions(run.run_id) == []


def test_field_values_set_directly_are_adopted(tmp_path) -> None:
    # Users of other engines set ``field.value``; continue_run validates and uses it.
    wf = Workflow(
        name="w",
        db=SqliteDb(db_file=tmp_path / "w.db"),
        steps=[
            Step(
                name="form",
                executor=lambda si: si.user_input,
                requires_user_input=True,
                user_input_schema=[UserInputField(name="count", field_type="int")],
            )
        ],
    )
    run = wf.run("x")
    run.step_requirements[0].user_input_schema[0].value = "12"
    assert wf.continue_run(run).content == {"count": 12}

    bad = wf.run("y")
    bad.step_requirements[0].user_input_schema[0].value = "twelve"
    with pytest.raises(UserInputValidationError, match="count"):
        wf.continue_run(bad)


def test_continue_run_refuses_unanswered_input(tmp_path) -> None:
    wf = Workflow(
        name="w",
        db=SqliteDb(db_file=tmp_path / "w.db"),
        steps=[Step(name="form", executor=lambda si: 1, requires_user_input=True)],
    )
    run = wf.run("x")
    run.step_requirements[0].confirm()  # confirming is not answering
    with pytest.raises(RequirementsUnresolvedError, match=r"'form' needs set_user_input"):
        wf.continue_run(run)
