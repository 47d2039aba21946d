"""Errors raised by the engine. Each says what was wrong and what to do about it."""

from __future__ import annotations

from collections.abc import Mapping


class EngineError(Exception):
    """Base class of every error the engine raises on purpose."""


class UserInputValidationError(EngineError, ValueError):
    """One or more user input values are invalid; nothing was stored.

    ``errors`` maps each bad field name to why it is bad, so a form can show every
    problem at once.
    """

    def __init__(self, step_name: str, errors: Mapping[str, str]) -> None:
        self.step_name = step_name
        self.errors: dict[str, str] = dict(errors)
        details = "; ".join(f"{name}: {why}" for name, why in self.errors.items())
        super().__init__(f"invalid user input for step '{step_name}': {details}")


class RequirementsUnresolvedError(EngineError, ValueError):
    """``continue_run`` was called before every requirement of the pause was answered."""

    def __init__(self, run_id: str, problems: list[str]) -> None:
        self.run_id = run_id
        self.problems = problems
        super().__init__(f"run {run_id} cannot continue: " + "; ".join(problems))


class RunNotFoundError(EngineError, LookupError):
    """No run with this id is stored."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"no run with id {run_id!r} in the database")


class DuplicateRunError(EngineError, ValueError):
    """A run was started with a ``run_id`` that another run already has."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        super().__init__(f"run id {run_id!r} is already used by a run in the database")


class RunNotPausedError(EngineError):
    """The run is no longer waiting at the pause this caller wanted to resolve.

    Raised to the loser of a race (double click, two processes, a stale copy): the
    pause was already resolved by someone else. ``resolution`` describes how.
    """

    def __init__(
        self,
        run_id: str,
        *,
        status: str,
        resolution: str | None = None,
        decided_by: str | None = None,
        decision: str | None = None,
        decided_at: object | None = None,
    ) -> None:
        self.run_id = run_id
        self.status = status
        self.resolution = resolution
        self.decided_by = decided_by
        self.decision = decision
        self.decided_at = decided_at
        message = f"run {run_id} is not paused at that step (status: {status})"
        if resolution:
            message += f": {resolution}"
        super().__init__(message)


class WorkflowConfigError(EngineError, ValueError):
    """A Workflow or Step was declared in a way that cannot run."""


class UnknownChoiceError(EngineError, ValueError):
    """A Router was given a choice it does not have; nothing was stored."""

    def __init__(self, router_name: str, unknown: list[str], available: list[str]) -> None:
        self.router_name = router_name
        self.unknown = list(unknown)
        self.available = list(available)
        given = ", ".join(repr(c) for c in unknown) if unknown else "no choice"
        super().__init__(
            f"router '{router_name}' has no choice {given}; "
            f"choose from: {', '.join(repr(c) for c in available)}"
        )


class DecisionTooLateError(RunNotPausedError):
    """A decision arrived after its pause's deadline: refused, even if no timer has applied
    the timeout yet (``expire_run`` will). ``expires_at`` is the deadline that passed."""

    def __init__(self, run_id: str, *, step_name: str, expires_at: object) -> None:
        self.step_name = step_name
        self.expires_at = expires_at
        when = expires_at.isoformat() if hasattr(expires_at, "isoformat") else str(expires_at)
        super().__init__(
            run_id,
            status="paused",
            resolution=(
                f"the decision on step '{step_name}' came after its deadline ({when}) "
                "and was refused; the timeout applies instead"
            ),
        )


class AlreadyDecidedError(EngineError):
    """This person already gave their decision on this pause (``decision``: ``approved``
    or ``rejected``): it counts once, nothing was recorded again. Also raised when the
    step's own quorum was reached before this person's decision came, while the pause
    still waits for another of its requirements (``decided_by`` is then in neither
    list). ``approved_by``, ``rejected_by`` and ``approvals_needed`` are the progress."""

    def __init__(
        self,
        run_id: str,
        *,
        step_name: str,
        decided_by: str,
        decision: str,
        approved_by: list[str],
        rejected_by: list[str],
        approvals_needed: int,
    ) -> None:
        self.run_id = run_id
        self.step_name = step_name
        self.decided_by = decided_by
        self.decision = decision
        self.approved_by = list(approved_by)
        self.rejected_by = list(rejected_by)
        self.approvals_needed = approvals_needed
        if decided_by in (*approved_by, *rejected_by):
            message = (
                f"{decided_by} already {decision} step '{step_name}' of run {run_id}; "
                f"a decision counts once ({approvals_needed} more approval(s) needed)"
            )
        else:  # the step's quorum was reached before this person's decision came
            message = (
                f"step '{step_name}' of run {run_id} was already {decision} by "
                f"{', '.join(approved_by if decision == 'approved' else rejected_by)}; "
                f"{decided_by}'s decision was not needed"
            )
        super().__init__(message)


class DeciderNotAllowedError(EngineError, PermissionError):
    """This person may not decide this pause (``excluded_deciders``: the run's requester
    when ``allow_requester=False``, anyone who decided a step named in
    ``distinct_from``), or a pause that counts people was answered without ``by=``."""

    def __init__(self, run_id: str, *, step_name: str, decided_by: str | None, why: str) -> None:
        self.run_id = run_id
        self.step_name = step_name
        self.decided_by = decided_by
        self.why = why
        super().__init__(f"step '{step_name}' of run {run_id}: {why}")
