"""Progress reporting for every command: rich bars on a terminal, plain lines in pipes and logs, nothing with
--quiet. Stages report per input and frame (`Reporter`), training per step (`StepReporter`).

All of it goes to stderr, so that stdout stays free for `--json`; whether stderr is a terminal decides the style.
"""

from __future__ import annotations

import sys
from typing import Protocol

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

PLAIN_STEP_EVERY = 1000  # training steps between two plain progress lines


def interactive() -> bool:
    """Rich bars only where a person watches: stderr is a terminal."""
    return sys.stderr.isatty()


class Reporter(Protocol):
    def start_input(self, name: str, total_frames: int) -> None: ...
    def advance(self, frames: int) -> None: ...
    def note(self, message: str) -> None: ...
    def finish_input(self, name: str, status: str, detail: str) -> None: ...
    def close(self) -> None: ...


class QuietReporter:
    def start_input(self, name: str, total_frames: int) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def advance(self, frames: int) -> None:
        pass

    def finish_input(self, name: str, status: str, detail: str) -> None:
        pass

    def close(self) -> None:
        pass


class PlainReporter(QuietReporter):
    """One line per finished input: `[3/10] done clips/a.mp4: 40 frames, 2 tracks, 3.1 s`."""

    def __init__(self, total_inputs: int) -> None:
        self.total, self.count = total_inputs, 0

    def note(self, message: str) -> None:
        print(f"note: {message}", file=sys.stderr, flush=True)

    def finish_input(self, name: str, status: str, detail: str) -> None:
        self.count += 1
        print(f"[{self.count}/{self.total}] {status} {name}: {detail}", file=sys.stderr, flush=True)


class RichReporter:
    """An overall bar over inputs and a per-input bar over frames."""

    def __init__(self, total_inputs: int, stage: str) -> None:
        self.console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}", style="bold"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.overall = self.progress.add_task(f"{stage}: inputs", total=total_inputs)
        self.current = None
        self.progress.start()

    def start_input(self, name: str, total_frames: int) -> None:
        if self.current is not None:
            self.progress.remove_task(self.current)
        self.current = self.progress.add_task(f"  {name}", total=total_frames or None)

    def advance(self, frames: int) -> None:
        if self.current is not None:
            self.progress.advance(self.current, frames)

    def note(self, message: str) -> None:
        self.progress.console.print(f"[yellow]note[/] {escape(message)}", highlight=False)

    def finish_input(self, name: str, status: str, detail: str) -> None:
        style = {"done": "green", "skipped": "dim", "failed": "red"}.get(status, "")
        self.progress.console.print(f"[{style}]{status}[/] {name}: {detail}", highlight=False, markup=True)
        if self.current is not None:
            self.progress.remove_task(self.current)
            self.current = None
        self.progress.advance(self.overall)

    def close(self) -> None:
        self.progress.stop()


def make_reporter(total_inputs: int, stage: str, quiet: bool) -> Reporter:
    if quiet:
        return QuietReporter()
    if interactive():
        return RichReporter(total_inputs, stage)
    return PlainReporter(total_inputs)


class StepReporter:
    """Training progress: a rich bar with the loss on a terminal, a line every PLAIN_STEP_EVERY steps otherwise."""

    def __init__(self, total: int, label: str, quiet: bool) -> None:
        self.total, self.label, self.quiet = total, label, quiet
        self.progress: Progress | None = None
        if not quiet and interactive():
            self.progress = Progress(
                TextColumn(label),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[loss]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self.task = self.progress.add_task(label, total=total, loss="")
            self.progress.start()

    def update(self, step: int, logs: dict[str, float]) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=step, loss=f"loss {logs['total']:.4f}")
        elif not self.quiet and (step % PLAIN_STEP_EVERY == 0 or step == self.total):
            print(f"{self.label} step {step}/{self.total} loss {logs['total']:.4f}", file=sys.stderr, flush=True)

    def __enter__(self) -> StepReporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def info(message: str, quiet: bool) -> None:
    """A status line on stderr, unless --quiet."""
    if not quiet:
        print(message, file=sys.stderr, flush=True)
