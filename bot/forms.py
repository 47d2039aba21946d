"""Forms (modals) open on a pause, so they can be told when it is decided elsewhere.

When a pause is decided (by someone else, in another form or by a button) or times out
while a person still has its form open, the form is replaced (``views.update``) by a
notice saying so, instead of failing on submit. Kept in this process's memory: the view
ids are short-lived (a modal lives at most as long as the person keeps it open).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

FORMS_KEPT = 10_000  # a bound on memory: the oldest are forgotten first


@dataclass(frozen=True)
class OpenForm:
    """A modal someone opened on a pause (kept to replace it if the pause is decided)."""

    requirement_id: str
    user_id: str
    view_id: str


class OpenForms:
    """The modals open on pauses, by view id, in this process (bounded by ``FORMS_KEPT``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_view: dict[str, OpenForm] = {}

    def opened(self, requirement_id: str, user_id: str, view_id: str) -> None:
        """Remember that ``user_id`` opened ``view_id`` on ``requirement_id``."""
        with self._lock:
            if len(self._by_view) >= FORMS_KEPT:
                self._by_view.pop(next(iter(self._by_view)))
            self._by_view[view_id] = OpenForm(requirement_id, user_id, view_id)

    def closed(self, view_id: str) -> None:
        """Submitted or closed by the person: nothing to update any more."""
        with self._lock:
            self._by_view.pop(view_id, None)

    def take(self, requirement_id: str) -> list[OpenForm]:
        """The forms still open on this pause, forgotten as they are returned."""
        with self._lock:
            found = [f for f in self._by_view.values() if f.requirement_id == requirement_id]
            for form in found:
                del self._by_view[form.view_id]
        return found


__all__ = ["OpenForm", "OpenForms"]
