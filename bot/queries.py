"""Reads for Slack surfaces: what a pause message shows, what waits for someone, the link
to a run's root message. Nothing here changes state (the root link is cached)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from slack_sdk.errors import SlackApiError

from bot import blocks, policies
from bot.permissions import Groups, Permissions
from bot.routing import SlackRoute
from engine import (
    Condition,
    Loop,
    RequirementKind,
    Router,
    StepRequirement,
    Workflow,
    WorkflowRunOutput,
)

if TYPE_CHECKING:
    from bot.service import Signoff

ROOT_LINKS_CACHED = 10_000


class PauseNotes(Protocol):
    """A policy whose state a pause message shows (escalated to…, delegated to…)."""

    def notes(self, route: SlackRoute, run: WorkflowRunOutput, req: StepRequirement) -> list[str]:
        """The lines the pause message of ``req`` shows about this policy."""
        ...


class Queries:
    """What the bot's messages, commands and App Home show."""

    def __init__(
        self,
        signoff: Signoff,
        permissions: Permissions,
        groups: Groups,
        *,
        notes: Sequence[PauseNotes] = (),
    ) -> None:
        self.routes = signoff.routes
        self.db = signoff.db
        self.store = signoff.store
        self.client = signoff.client
        self.metrics = signoff.metrics
        self.permissions = permissions
        self.groups = groups
        self._notes = tuple(notes)
        self._root_links: dict[str, str] = {}

    def pending_count(self) -> int:
        """Paused runs of the served workflows: one indexed count, no run's JSON read."""
        return self.db.count_paused_runs(workflow_names=list(self.routes))

    def pending_for(self, user_id: str) -> list[tuple[str, str, str, datetime | None, str | None]]:
        """What ``user_id`` may decide, for ``/signoff pending``'s ack: database reads only
        (permalinks stored by the outbox when it posted; groups as cached)."""
        items = []
        for route in self.routes.values():
            paused_runs = route.workflow.list_paused_runs(limit=200)
            links = self.store.permalinks([p.requirement.requirement_id for p in paused_runs])
            for paused in paused_runs:
                run = route.workflow.get_run(paused.run_id)
                if run is None:
                    continue
                allowed, _ = self.permissions.may_decide(
                    user_id, route, run, paused.step_name, cached_only=True
                )
                if not allowed:
                    continue
                if user_id in (*paused.requirement.approved_by, *paused.requirement.rejected_by):
                    continue  # voted: it waits for others now
                items.append(
                    (
                        route.name,
                        paused.step_name,
                        paused.run_id,
                        paused.expires_at,
                        links.get(paused.requirement.requirement_id),
                    )
                )
        return items

    def pause_context(
        self,
        route: SlackRoute,
        run: WorkflowRunOutput,
        req: StepRequirement,
        *,
        with_root_link: bool = True,
        siblings: list[StepRequirement] | None = None,
    ) -> blocks.PauseContext:
        """What a pause message shows. ``siblings``: every requirement of a pause with
        several (a Parallel's), in order; by default the run's, while it is paused."""
        if siblings is None and run.is_paused and len(run.step_requirements) > 1:
            siblings = list(run.step_requirements)
        return blocks.PauseContext(
            token=req.requirement_id,
            workflow_name=route.name,
            run=run,
            requirement=req,
            approvers=route.approvers_for(req.step_name),
            root_link=self.root_permalink(run.run_id) if with_root_link else None,
            plan=_plan(route.workflow, req),
            siblings=tuple(siblings or ()),
            groups=self._groups_progress(route, req),
            delegation=route.delegation_allowed(req.step_name),
            notes=tuple(n for policy in self._notes for n in policy.notes(route, run, req)),
        )

    def _groups_progress(
        self, route: SlackRoute, req: StepRequirement
    ) -> tuple[tuple[str, int, list[str]], ...]:
        require = policies.route_require(route, req.step_name)
        if not require:
            return ()
        return tuple(policies.group_progress(req.approved_by, require, self.groups.known_members))

    def root_permalink(self, run_id: str) -> str | None:
        """The permalink of the run's root message, once it is posted (asked once per run;
        only from delivery and after-ack paths, never before an ack)."""
        cached = self._root_links.get(run_id)
        if cached is not None:
            return cached
        ref = self.store.get_run_ref(run_id)
        if ref is None or not ref.root_ts:
            return None
        try:
            link = self.client.chat_getPermalink(
                channel=ref.channel_id or ref.channel, message_ts=ref.root_ts
            ).get("permalink")
        except SlackApiError as exc:
            self.metrics.record_slack_error("chat.getPermalink", exc)
            return None
        if isinstance(link, str):
            if len(self._root_links) >= ROOT_LINKS_CACHED:
                self._root_links.pop(next(iter(self._root_links)), None)
            self._root_links[run_id] = link
            return link
        return None


def _plan(wf: Workflow, req: StepRequirement) -> blocks.Plan | None:
    """What runs if a group's confirmation is approved (None for a single step)."""
    if req.kind is not RequirementKind.confirmation:
        return None
    component = wf.locate(req.step_path)
    if component is None or not component.children():
        return None
    if isinstance(component, Condition):
        return blocks.Plan(
            kind=component.step_type.value,
            steps=[c.name for c in component.steps],
            else_steps=[c.name for c in component.else_steps],
        )
    return blocks.Plan(
        kind=component.step_type.value,
        steps=[c.name for c in component.children()],
        iterations=component.max_iterations if isinstance(component, Loop) else None,
        choose_one=isinstance(component, Router),
    )


__all__ = ["PauseNotes", "Queries"]
