"""backends.cpu: the busy-CPU note at a run's start and the watch during it (the
conftest replaces both readers with an idle machine for every other test; this module
keeps the real ones or hands in its own)."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from intentlocal.backends import cpu
from intentlocal.backends.cpu import CpuWatch
from intentlocal.backends.cpu import cpu_in_use as real_cpu_in_use
from intentlocal.backends.cpu import machine_busy_seconds as real_machine_busy_seconds


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_a_busy_core_is_seen_at_once() -> None:
    stop = time.monotonic() + 1.0

    def spin() -> None:
        while time.monotonic() < stop:
            pass

    t = threading.Thread(target=spin)
    t.start()
    try:
        busy = real_cpu_in_use(0.4)
    finally:
        t.join()
    cores = os.cpu_count() or 1
    assert busy is not None and 0.5 <= busy <= cores + 1e-6


def test_without_proc_stat_the_load_average_is_used(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (1.25, 3.0, 3.0), raising=False)
    assert real_cpu_in_use(0.0, stat=str(tmp_path / "missing")) == 1.25
    monkeypatch.delattr(os, "getloadavg")  # Windows: neither, so no note
    assert real_cpu_in_use(0.0, stat=str(tmp_path / "missing")) is None


def test_the_start_note_needs_three_quarters_of_the_cores() -> None:
    assert cpu.busy_cpu_note(busy=1.4, cores=2) is None
    assert "about 1.5 of 2 cores in use" in (cpu.busy_cpu_note(busy=1.5, cores=2) or "")


class _Machine:
    """A 2-core machine on a fake clock: ``others`` cores of other work, ``mine`` of
    this process's, each second."""

    def __init__(self) -> None:
        self.t = 0.0
        self.busy = 0.0  # non-idle core-seconds of the whole machine
        self.own = 0.0  # this process's CPU seconds
        self.others = 0.0
        self.mine = 2.0  # llama.cpp keeps both cores busy

    def advance(self, seconds: float) -> None:
        self.t += seconds
        share = min(2.0, self.others + self.mine)  # the cores are shared out
        mine = self.mine * share / (self.others + self.mine) if share else 0.0
        self.busy += share * seconds
        self.own += mine * seconds

    def watch(self, busy: bool = False) -> CpuWatch:
        return CpuWatch(every=20.0, cores=2, busy=busy, machine=lambda: self.busy,
                        own=lambda: self.own, clock=lambda: self.t)


def test_the_watch_tells_when_other_work_starts_and_when_it_eases() -> None:
    m = _Machine()
    w = m.watch()
    notes = []
    for second in range(200):
        m.others = 1.0 if 60 <= second < 140 else 0.0  # a second job for 80 s
        notes.append((second, w.poll()))
        m.advance(1.0)
    said = [(s, n) for s, n in notes if n]
    assert len(said) == 2, said
    (t_on, on), (t_off, off) = said
    assert 60 <= t_on <= 60 + 2 * w.every and "other work started" in on
    # the others' share, never the run's own: a one-core job beside a run that wants
    # both cores gets a third of them (2 x 1/3), which is what is said
    assert "about 0.7 of 2 cores" in on
    assert 140 <= t_off <= 140 + 2 * w.every and "has eased" in off
    assert not w.busy


def test_the_runs_own_load_is_never_other_work() -> None:
    m = _Machine()
    w = m.watch()
    for _ in range(300):  # the run alone keeps both cores busy the whole time
        assert w.poll() is None
        m.advance(1.0)
    assert w.others_ == pytest.approx(0.0)


def test_a_load_announced_at_the_start_is_not_announced_again() -> None:
    m = _Machine()
    m.others = 1.5
    w = m.watch(busy=True)  # the start note fired
    said = []
    for _ in range(100):
        said.append(w.poll())
        m.advance(1.0)
    assert not any(said) and w.busy


def test_no_proc_stat_means_a_silent_watch(tmp_path: Path) -> None:
    assert real_machine_busy_seconds(str(tmp_path / "missing")) is None
    w = CpuWatch(every=0.0, machine=lambda: None)
    assert w.poll() is None and w.poll() is None and w.others_ is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_proc_stat_is_read_as_core_seconds() -> None:
    a = real_machine_busy_seconds()
    stop = time.monotonic() + 0.3
    while time.monotonic() < stop:  # this thread keeps one core busy
        pass
    b = real_machine_busy_seconds()
    assert a is not None and b is not None and 0.2 <= b - a <= 0.3 * (os.cpu_count() or 1) + 0.1


def _run_support(progress, watch: CpuWatch) -> None:
    """A small run on fakes whose progress and CPU watch the test hands in."""
    from intentlocal.api import start_run
    from intentlocal.backends.fakes import FakeEmbedder, FakeGenerator
    from intentlocal.config import Settings
    from intentlocal.ingest import Corpus
    from intentlocal.pipeline.runner import Runner
    from intentlocal.store import Store
    from tests.conftest import SUPPORT_TEXTS

    settings = Settings(k="4", neighbours=3, max_iterations=1, clusterer="kmeans")
    store = Store()
    corpus = Corpus(list(SUPPORT_TEXTS), list(range(1, len(SUPPORT_TEXTS) + 1)), "mem")
    run_id = start_run(store, corpus, settings)
    Runner(store, settings, FakeEmbedder(), FakeGenerator(), progress=progress,
           cpu_watch=watch).execute(run_id)


def test_the_runner_passes_the_notes_on_with_its_progress() -> None:
    """A second job starting mid-run reaches whoever watches the run's progress, once,
    and its end once more; the events carry the watch's state for the edges."""
    m = _Machine()
    events = []

    def progress(ev) -> None:  # each event is 30 s of the run; the job runs from 2 to 5
        m.others = 1.0 if 2 <= len(events) < 5 else 0.0
        m.advance(30.0)
        events.append(ev)

    _run_support(progress, m.watch())
    noted = [(ev.note, ev.cpu_busy) for ev in events if ev.note]
    assert [b for _, b in noted] == [True, False], noted
    assert "other work started" in noted[0][0] and "has eased" in noted[1][0]
    assert all(ev.cpu_busy is None for ev in events if not ev.note)


def test_the_runner_says_a_busy_start_with_its_first_event(monkeypatch) -> None:
    monkeypatch.setattr(cpu, "cpu_in_use", lambda *a, **k: 64.0)
    events: list = []
    watch = CpuWatch(machine=lambda: None)
    _run_support(events.append, watch)
    assert "CPU is already busy" in (events[0].note or "") and events[0].cpu_busy
    assert [ev for ev in events[1:] if ev.note] == [] and watch.busy
