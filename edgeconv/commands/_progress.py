"""The one Rich drawing of edgeconv.progress.Progress: a transient bar on stderr."""

from __future__ import annotations

from edgeconv.progress import Progress


class RichProgress(Progress):
    """A bar (description, bar, done/total, elapsed) and messages above it, on `console`.

    Use as a context manager so that the bar is removed however the job ends.
    """

    def __init__(self, console, *, elapsed: bool = True) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as Bar

        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn()]
        self.console = console
        self.bar = Bar(*columns, *([TimeElapsedColumn()] if elapsed else []), console=console,
                       transient=True)
        self.task = None

    def start(self, total: int, description: str, completed: int = 0) -> None:
        if not self.console.is_terminal:
            # Not a terminal (a CI log, a pipe): no bar, which would leave an empty line
            # behind when it stops; messages still print.
            return
        if not self.bar.live.is_started:
            self.bar.start()
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(description, total=total, completed=completed)

    def update(self, completed: int, description: str | None = None) -> None:
        if self.task is not None:
            self.bar.update(self.task, completed=completed,
                            **({"description": description} if description else {}))

    def message(self, text: str) -> None:
        self.console.print(text, soft_wrap=True, highlight=False, markup=False)

    def stop(self) -> None:
        if self.bar.live.is_started:  # a bar that never started must not print a newline
            self.bar.stop()

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
