"""``Step[In, Out]``: the runner's JSON in and out, a step's typed models inside."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from pydantic import BaseModel, ValidationError

from bifrost.engine import (
    Done,
    Fail,
    NoInput,
    Outcome,
    Step,
    StepContext,
    StepOutput,
    Wait,
)

CTX = cast(StepContext[Any], None)  # these steps do not look at their context


class Issued(StepOutput):
    fingerprint: str
    not_after: datetime


class Greeting(BaseModel):
    name: str


class Hello(Step[Greeting, Issued]):
    input_model = Greeting

    def __init__(self) -> None:
        self.seen: list[Greeting] = []

    def execute(self, ctx: StepContext[Any], input: Greeting) -> Outcome[Issued]:
        self.seen.append(input)
        return Done(output=Issued(fingerprint=f"fp-{input.name}",
                                  not_after=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)))


class Answers(Step[NoInput, Issued]):
    input_model = NoInput

    def __init__(self, outcome: Outcome[Issued]) -> None:
        self.outcome = outcome
        self.seen: list[NoInput] = []

    def execute(self, ctx: StepContext[Any], input: NoInput) -> Outcome[Issued]:
        self.seen.append(input)
        return self.outcome


def test_the_journaled_input_is_validated_into_the_input_model() -> None:
    step = Hello()
    step.run(CTX, {"name": "edge"})
    assert step.seen == [Greeting(name="edge")]


def test_an_input_that_does_not_match_the_model_raises() -> None:
    with pytest.raises(ValidationError, match="name"):
        Hello().run(CTX, {"nom": "edge"})
    with pytest.raises(ValidationError, match="name"):
        Hello().run(CTX, None)


def test_a_step_without_input_ignores_what_the_step_before_handed_on() -> None:
    step = Answers(Done())
    step.run(CTX, {"applied": ["config"]})
    step.run(CTX, None)
    assert step.seen == [NoInput(), NoInput()]


def test_the_output_model_is_journaled_as_json_with_camel_case_keys() -> None:
    assert Hello().run(CTX, {"name": "edge"}) == Done(
        output={"fingerprint": "fp-edge", "notAfter": "2030-01-02T03:04:05Z"})


def test_done_keeps_its_context_and_other_outcomes_pass_through() -> None:
    context = Greeting(name="ctx")
    assert Answers(Done(context=context)).run(CTX, None) == Done(output=None, context=context)
    wait = Wait("not yet", recheck_after=timedelta(seconds=1))
    assert Answers(wait).run(CTX, None) is wait
    fail = Fail("no")
    assert Answers(fail).run(CTX, None) is fail
