"""Live terminal progress for the orchestrator: one bar per scenario x style and a running summary line.

Decoupled from how load is produced: the orchestrator calls ``begin``/``update``/``end`` with plain
numbers (or a ``LoadProgress``), so a generator running in a subprocess can feed it from its JSON lines.
On a non-terminal (CI logs) rich prints nothing transient; ``end`` still logs one line per run.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from bench.load import LoadProgress


def summary_line(sent: int, errors: int, rate: float, p99_ms: float | None) -> str:
    err_pct = errors / sent * 100.0 if sent else 0.0
    p99 = "n/a" if p99_ms is None else f"{p99_ms:.1f} ms"
    return f"{rate:6.1f} req/s  errors {errors} ({err_pct:.2f} %)  p99 {p99}"


class LiveProgress:
    """``start()``, then per run ``begin(...)``, ``update(...)``…, ``end(...)``; ``finish()`` at the end."""

    def __init__(self, total_runs: int, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description:<32}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=False,
        )
        self._overall = self._progress.add_task("all runs", total=total_runs, info="")
        self._tasks: dict[tuple[str, str, int], TaskID] = {}
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._progress.start()
            self._started = True

    def begin(self, scenario: str, style: str, planned: int, repeat: int = 0) -> None:
        label = f"{scenario} / {style}" + (f" #{repeat + 1}" if repeat else "")
        self._tasks[(scenario, style, repeat)] = self._progress.add_task(label, total=planned, info="")

    def update(
        self,
        scenario: str,
        style: str,
        *,
        sent: int,
        errors: int,
        rate: float,
        p99_ms: float | None,
        repeat: int = 0,
    ) -> None:
        task = self._tasks.get((scenario, style, repeat))
        if task is None:
            return
        line = summary_line(sent, errors, rate, p99_ms)
        self._progress.update(task, completed=sent, info=line)
        self._progress.update(self._overall, info=f"{scenario}/{style}: {line}")

    def update_from(self, scenario: str, style: str, snapshot: LoadProgress, repeat: int = 0) -> None:
        self.update(
            scenario,
            style,
            sent=snapshot.sent,
            errors=snapshot.errors,
            rate=snapshot.send_rate,
            p99_ms=snapshot.p99_ms,
            repeat=repeat,
        )

    def end(self, scenario: str, style: str, note: str = "", repeat: int = 0) -> None:
        task = self._tasks.get((scenario, style, repeat))
        if task is not None:
            total = self._progress.tasks[task].total or 0
            info = self._progress.tasks[task].fields.get("info", "")
            self._progress.update(task, completed=total, info=f"{info} {note}".strip())
        self._progress.advance(self._overall)
        if not self.console.is_terminal:
            self.console.print(f"{scenario}/{style}#{repeat + 1} done {note}".strip())

    def finish(self) -> None:
        if self._started:
            self._progress.stop()
            self._started = False

    def __enter__(self) -> LiveProgress:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.finish()
