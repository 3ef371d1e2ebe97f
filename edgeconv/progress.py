"""What a long job (train, export, bench) reports while it runs: one protocol for all.

The library calls these methods; the CLI draws them (edgeconv.commands._progress.RichProgress).
This base class draws nothing, so a library caller may pass nothing at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


class Progress:
    """A bar of `total` units with a description, and messages printed above it."""

    def start(self, total: int, description: str, completed: int = 0) -> None:
        """A new bar (replacing any before it)."""

    def update(self, completed: int, description: str | None = None) -> None:
        """`completed` units are done; `description` says what runs now."""

    def message(self, text: str) -> None:
        """A line the user should keep (printed above the bar, not replaced by it)."""

    def stop(self) -> None:
        """The job is over: remove the bar."""


class Steps:
    """A bar over named steps, for jobs that run one thing after another: `step(what)`
    marks the steps before it done and says what runs now."""

    def __init__(self, progress: Progress, total: int, description: str) -> None:
        self.progress, self.begun = progress, 0
        progress.start(total, description)

    def step(self, description: str) -> None:
        self.progress.update(self.begun, description)
        self.begun += 1


def each(progress: Progress, items: Sequence[T], description: str,
         describe: Callable[[T], str]) -> Iterator[T]:
    """Each of `items` in order, under a bar over them that `describe(item)` names. The bar is
    started again before each item: an item's own work may draw a bar of its own (the
    Cortex-M library build an emulated firmware waits for)."""
    for done, item in enumerate(items):
        progress.start(len(items), description, completed=done)
        progress.update(done, describe(item))
        yield item
    if items:
        progress.start(len(items), description, completed=len(items))
        progress.update(len(items), "done")
