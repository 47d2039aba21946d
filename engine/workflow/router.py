"""``Router``: run the choice(s) a selector — or a person — picks."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from engine.errors import WorkflowConfigError
from engine.run.requirement import RejectAction
from engine.workflow._tree import (
    Call,
    Component,
    Flow,
    Frame,
    PauseOptions,
    Result,
    Wait,
    Walk,
    Walker,
    as_components,
)
from engine.workflow.types import (
    RequirementKind,
    StepInput,
    StepType,
)

if TYPE_CHECKING:
    from typing_extensions import Unpack


class Router(Component):
    """``choices`` are components; ``selector`` is a function of the ``StepInput`` (sync or
    async) returning a choice, a list of them, or their names.

    ``requires_user_input=True`` lets a person choose instead: the pause offers every
    choice's name and description; answer with ``select(name)`` (``select_multiple`` when
    ``allow_multiple_selections``), or ``reject()`` to skip the router. An unknown name is
    refused and stores nothing. ``requires_confirmation`` asks before the router chooses.
    ``requires_output_review`` reviews the chosen steps' combined output afterwards.
    """

    step_type = StepType.ROUTER

    # Keyword-only options (agno's Router signature), not positional arguments.
    def __init__(
        self,
        name: str | None = None,
        *,
        choices: Sequence[Any],
        selector: Callable[..., Any] | None = None,
        description: str | None = None,
        requires_user_input: bool = False,
        user_input_message: str | None = None,
        allow_multiple_selections: bool = False,
        **pause: Unpack[PauseOptions],
    ) -> None:
        """``pause``: the pause before the router chooses (see ``PauseOptions``)."""
        self.name = name or "router"
        self.description = description
        self.choices: list[Component] = as_components(choices, owner=f"Router {self.name!r}")
        if not self.choices:
            raise WorkflowConfigError(f"Router {self.name!r} has no choices")
        human_review = self._init_group(pause, supports=frozenset({"requires_user_input"}))
        if human_review is not None:
            requires_user_input = requires_user_input or human_review.requires_user_input
            user_input_message = user_input_message or human_review.user_input_message
        if selector is None and not requires_user_input:
            raise WorkflowConfigError(
                f"Router {self.name!r} needs a selector, or requires_user_input=True"
            )
        if selector is not None and not callable(selector):
            raise WorkflowConfigError(f"Router {self.name!r}: selector must be a function")
        self.selector = selector
        self.requires_user_input = requires_user_input
        self.user_input_message = user_input_message
        self.allow_multiple_selections = allow_multiple_selections

    def children(self) -> list[Component]:
        """The components a pause's path indexes into: the choices."""
        return self.choices

    def _indexes(self, picked: Any) -> list[int]:
        items = picked if isinstance(picked, (list, tuple)) else [picked]
        indexes = []
        names = [c.name for c in self.choices]
        for item in items:
            if isinstance(item, str) and item in names:
                indexes.append(names.index(item))
            elif isinstance(item, Component) and any(item is c for c in self.choices):
                indexes.append(next(i for i, c in enumerate(self.choices) if c is item))
            elif isinstance(item, Component) and item.name in names:
                indexes.append(names.index(item.name))
            else:
                raise WorkflowConfigError(
                    f"router '{self.name}': the selector chose {item!r}, which is not one of "
                    f"its choices ({', '.join(names)})"
                )
        return indexes

    def walk(
        self, w: Walk, step_input: StepInput, path: tuple[int, ...], frame: Frame | None
    ) -> Walker:
        """Pick the route(s) (from the selector or a person), then walk them in order."""
        selected: list[int] | None = None
        resume: Frame | None = None
        if frame is not None and frame.wait is None:
            selected = list(frame.state["selected"])
            resume = frame
        elif frame is not None and frame.wait is Wait.route:
            req = w.take(path, self)
            if req.is_rejected or not req.selected_choices:
                action = req.reject_action()
                if action is RejectAction.approve:  # nothing to approve without a choice
                    action = RejectAction.skip
                return (yield from self.rejected(w, req, path, action))
            selected = self._indexes(req.selected_choices)
            yield self.started_event(w, path)
        else:
            ended, _, _ = yield from self.gate(w, path, frame)
            if ended is not None:
                return ended
            if self.requires_user_input:
                req = self.new_requirement(
                    path=path,
                    now=w.now(),
                    kind=RequirementKind.route_selection,
                    requires_route_selection=True,
                    user_input_message=self.user_input_message,
                    available_choices=[c.name for c in self.choices],
                    choice_descriptions={
                        c.name: getattr(c, "description", None) for c in self.choices
                    },
                    allow_multiple_selections=self.allow_multiple_selections,
                )
                return w.pause(req, Frame(wait=Wait.route))
            yield self.started_event(w, path)
            assert self.selector is not None
            try:
                picked = yield Call(self.selector, (step_input,))
                selected = self._indexes(picked)
            except Exception as exc:
                message = f"router '{self.name}' could not choose: {type(exc).__name__}: {exc}"
                return Result(Flow.failed, message=message, step_name=self.name)
        members = [(i, self.choices[i]) for i in selected]
        return (
            yield from self.walk_members(
                w, members, step_input, path, resume, state={"selected": selected}
            )
        )
