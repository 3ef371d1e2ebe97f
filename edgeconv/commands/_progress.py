"""The one Rich drawing of edgeconv.progress.Progress: a transient bar on stderr, or, off a
terminal (a CI log, `| tee`), plain lines."""

from __future__ import annotations

import threading
import time

from edgeconv.progress import Progress

# Off a terminal: the first line once a bar has lived PLAIN_FIRST_S (work done in seconds,
# a quick failure's one error line, print nothing more than they did), then a line at most
# every PLAIN_EVERY_S while the work changes,
PLAIN_FIRST_S = 10.0
PLAIN_EVERY_S = 5.0
PLAIN_QUIET_S = 30.0  # and at least this often while it does not (still running)


class RichProgress(Progress):
    """A bar (description, bar, done/total, elapsed) and messages above it, on `console`.
    Off a terminal, where a bar cannot redraw, the bar's state is printed as a plain line
    instead (_PlainLines): once it has lived ten seconds, then every few seconds while it
    changes and every half minute while it does not, so a long step or a wait is never
    silent (and work done in seconds prints nothing more than it did).

    Use as a context manager so that the bar is removed however the job ends.
    """

    def __init__(self, console, *, elapsed: bool = True, plain_first: float = PLAIN_FIRST_S,
                 plain_every: float = PLAIN_EVERY_S, plain_quiet: float = PLAIN_QUIET_S) -> None:
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
        self.plain: _PlainLines | None = None
        self.plain_times = (plain_first, plain_every, plain_quiet)

    def start(self, total: int, description: str, completed: int = 0) -> None:
        if not self.console.is_terminal:
            # Not a terminal: no bar (it would leave an empty line behind when it stops),
            # plain lines instead.
            if self.plain is not None:
                self.plain.stop()
            self.plain = _PlainLines(self.console, total, description, completed,
                                     *self.plain_times)
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
        elif self.plain is not None:
            self.plain.update(completed, description)

    def message(self, text: str) -> None:
        if self.plain is not None:
            self.plain.print(text)
        else:
            self.console.print(text, soft_wrap=True, highlight=False, markup=False)

    def stop(self) -> None:
        if self.plain is not None:
            self.plain.stop()
            self.plain = None
        if self.bar.live.is_started:  # a bar that never started must not print a newline
            self.bar.stop()

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _PlainLines:
    """One bar's state as plain lines, "description (done/total, m:ss)", printed by a ticker
    thread: first after `first` s, then every `every` s if it changed, every `quiet` s if
    not. The work only updates the state, so a fast loop of updates is a line every few
    seconds, not a line per update, and a bar that lives less than `first` s prints
    nothing."""

    def __init__(self, console, total: int, description: str, completed: int,
                 first: float, every: float, quiet: float) -> None:
        self.console, self.total = console, total
        self.description, self.completed = description, completed
        self.first, self.every, self.quiet = first, every, quiet
        self.began = time.monotonic()
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.shown: tuple[str, int] | None = None
        self.shown_at = 0.0
        self.ticker = threading.Thread(target=self._tick, daemon=True,
                                       name="edgeconv-progress-lines")
        self.ticker.start()

    def update(self, completed: int, description: str | None) -> None:
        with self.lock:
            self.completed = completed
            if description:
                self.description = description

    def print(self, text: str) -> None:
        with self.lock:
            self.console.print(text, soft_wrap=True, highlight=False, markup=False)

    def show(self) -> None:
        with self.lock:
            elapsed = int(time.monotonic() - self.began)
            self.console.print(f"{self.description} ({self.completed}/{self.total},"
                               f" {elapsed // 60}:{elapsed % 60:02d})",
                               soft_wrap=True, highlight=False, markup=False)
            self.shown, self.shown_at = (self.description, self.completed), time.monotonic()

    def _tick(self) -> None:
        if self.done.wait(self.first):
            return
        self.show()
        while not self.done.wait(self.every):
            changed = self.shown != (self.description, self.completed)
            if changed or time.monotonic() - self.shown_at >= self.quiet:
                self.show()

    def stop(self) -> None:
        self.done.set()
        if self.ticker is not threading.current_thread():
            self.ticker.join(timeout=5)
