"""What else keeps the CPU busy while a run labels: one look at the start, then a watch.

Why a module of its own: llama.cpp keeps every core it is given in step, so one busy
core stalls them all. Two label writers on a 2-core machine ran each other down from
about 200 to 7-25 tokens a second (5 Dec; reports/out_of_sample_banking77_train_int8.md
claims no wall time for it), and nothing in the run's own progress said why. The edges
(CLI, TUI, bench, the scripts) and the runner all ask the same two questions here: is
the CPU busy before this run starts (``busy_cpu_note``), and did other work start or end
while it runs (``CpuWatch``). Neither can say which program is busy, only that one is.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

PROC_STAT = "/proc/stat"


def _idle_total(stat: str) -> tuple[int, int]:
    """Idle (idle + iowait) and total jiffies of all cores, from /proc/stat's first line."""
    with open(stat, encoding="ascii") as fh:
        fields = [int(v) for v in fh.readline().split()[1:]]
    return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields)


def cpu_in_use(window: float = 0.5, stat: str = PROC_STAT) -> float | None:
    """How many cores other work keeps busy now, or None where it cannot be read.

    Linux: the share of non-idle time in /proc/stat over ``window`` seconds, times the
    cores, so a job that ended a minute ago does not count (the load average still
    holds it at 1/e). Elsewhere (macOS) the one-minute load average, which lags.
    Called before this process starts its own work, so what it sees is the others'.
    """
    try:
        idle0, total0 = _idle_total(stat)
        time.sleep(window)
        idle1, total1 = _idle_total(stat)
        if total1 > total0:
            return (1 - (idle1 - idle0) / (total1 - total0)) * (os.cpu_count() or 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows: neither
        return None


def busy_cpu_note(busy: float | None = None, cores: int | None = None) -> str | None:
    """One line for a user whose CPU is already busy when labelling starts, or None.

    At three quarters of the cores busy (``cpu_in_use``) the run is told; less than
    that is taken for a laptop's usual background.
    """
    if busy is None:
        busy = cpu_in_use()
        if busy is None:
            return None
    cores = cores or os.cpu_count() or 1
    if busy < 0.75 * cores:
        return None
    return (f"note: the CPU is already busy (about {busy:.1f} of {cores} cores in use); "
            "labelling may run several times slower until the other work ends")


def machine_busy_seconds(stat: str = PROC_STAT) -> float | None:
    """Core-seconds all cores have spent not idle since boot, or None where /proc/stat
    cannot be read (macOS, Windows: the watch then stays silent)."""
    try:
        idle, total = _idle_total(stat)
        return (total - idle) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


@dataclass
class CpuWatch:
    """Tells a running run when other work starts, or stops, taking the CPU from it.

    Why: ``busy_cpu_note`` looks once, before the run's own work, and a job started
    later slowed a run without a word (the fourteenth session's note); the TUI's
    tokens/s line showed the drop but not its cause. ``poll`` is cheap
    (a clock read; /proc/stat at most every ``every`` seconds, no sleep) so the runner
    calls it on every progress event. Over each window the machine's non-idle
    core-seconds minus this process's own CPU time (all its threads, llama.cpp's
    included) is the others' load, so the run's own work never counts as "other".
    It speaks on a change only: once when the others reach ``threshold`` cores, once
    when they fall under half of it. ``busy`` may start True (the start note fired), so
    the same load is not announced twice.
    """

    every: float = 20.0
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)
    busy: bool = False
    machine: Callable[[], float | None] | None = None  # None: machine_busy_seconds
    own: Callable[[], float] = time.process_time
    clock: Callable[[], float] = time.monotonic
    others_: float | None = None  # the others' cores over the last window
    _last: tuple[float, float, float] | None = field(default=None, repr=False)

    @property
    def threshold(self) -> float:
        """Half a core, or a quarter of the machine. On 2 cores a one-thread job beside
        the label writer gets about a third of the machine (measured 0.8 of 2 cores) and
        took the run's average from 190 to 57 prompt tokens a second within 90 labels
        (6 Dec, banking77); on 8 cores half a core of other work matters far less."""
        return max(0.5, 0.25 * self.cores)

    def poll(self) -> str | None:
        """A note when the others' load crossed the threshold since the last change."""
        now = self.clock()
        if self._last is not None and now - self._last[0] < self.every:
            return None
        machine = (self.machine or machine_busy_seconds)()
        if machine is None:
            return None
        last, self._last = self._last, (now, machine, self.own())
        if last is None or now <= last[0]:
            return None
        others = ((machine - last[1]) - (self._last[2] - last[2])) / (now - last[0])
        self.others_ = others = min(float(self.cores), max(0.0, others))
        if not self.busy and others >= self.threshold:
            self.busy = True
            return (f"note: other work started using the CPU (about {others:.1f} of "
                    f"{self.cores} cores beside this run); the run slows until it ends")
        if self.busy and others < self.threshold / 2:
            self.busy = False
            return (f"note: the other work on the CPU has eased (about {others:.1f} of "
                    f"{self.cores} cores beside this run)")
        return None
