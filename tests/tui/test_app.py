"""The app driven with Textual's Pilot over fake backends:
new run -> progress -> results -> history -> rename -> export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from textual.widgets import DataTable, Input, Static

from intentlocal.backends.fakes import FakeEmbedder, FakeGenerator
from intentlocal.store import Store
from intentlocal.tui.app import IntentLocalApp
from intentlocal.tui.screens import (
    HistoryScreen,
    HomeScreen,
    NewRunScreen,
    ProgressScreen,
    ResultsScreen,
)
from tests.conftest import SUPPORT_TEXTS


def _fakes(settings):
    return FakeEmbedder(), FakeGenerator()


def _csv(tmp_path: Path) -> Path:
    p = tmp_path / "chats.csv"
    p.write_text("id,message\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(SUPPORT_TEXTS)))
    return p


async def _wait_finished(pilot, screen: ProgressScreen) -> None:
    for _ in range(2400):  # up to 2 minutes: CI machines can be busy
        await pilot.pause(0.05)
        if screen.finished or screen.failed:
            return
    raise AssertionError("run did not finish")


async def _start_small_run(pilot, app) -> ProgressScreen:
    """From the new-run form: K 4, 3 neighbours, start, and wait for the run's end."""
    app.screen.query_one("#k", Input).value = "4"
    app.screen.query_one("#neighbours", Input).value = "3"
    await pilot.press("ctrl+s")
    await pilot.pause()
    progress = app.screen
    assert isinstance(progress, ProgressScreen)
    await _wait_finished(pilot, progress)
    return progress


@pytest.mark.asyncio
async def test_new_run_to_history_rename_export(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    app = IntentLocalApp(str(_csv(tmp_path)), backends=_fakes)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, NewRunScreen)
        preview = screen.query_one("#preview", DataTable)
        assert preview.row_count == 8
        assert screen.query_one("#column").value == "message"
        progress = await _start_small_run(pilot, app)
        assert progress.finished and progress.labels_written > 0
        title = str(progress.query_one("#run-title").render())
        assert "4 clusters (given; by " in title  # which clusterer the selection kept
        await pilot.press("enter")
        await pilot.pause()
        results = app.screen
        assert isinstance(results, ResultsScreen)
        clusters = results.query_one("#clusters", DataTable)
        assert clusters.row_count == 4
        utterances = results.query_one("#utterances", DataTable)
        assert utterances.row_count >= 1
        # history of the first utterance of the first cluster
        results.query_one("#utterances", DataTable).focus()
        await pilot.press("h")
        await pilot.pause()
        assert isinstance(app.screen, HistoryScreen)
        body = str(app.screen.query_one("#history-body").render())
        assert "Iteration 0: initial label" in body and "neighbours" in body
        await pilot.press("escape")
        # rename the highlighted cluster
        results.query_one("#clusters", DataTable).focus()
        await pilot.press("r")
        await pilot.pause()
        app.screen.query_one("#new-name", Input).value = "lost_cards"
        await pilot.press("enter")
        await pilot.pause()
        store = Store()
        assert "lost_cards" in [c["name"] for c in store.clusters(1)]
        await pilot.press("e")
        await pilot.pause()
    doc = json.loads((tmp_path / "run1_clusters.json").read_text())
    assert "lost_cards" in {c["name"] for c in doc["clusters"]}
    assert len(doc["texts"]) == len(SUPPORT_TEXTS)


@pytest.mark.asyncio
async def test_search_filters_utterances_across_clusters(tmp_path: Path) -> None:
    from intentlocal.api import IntentClusterer

    # min_share 1: on 3 fake neighbours labels are shared, so search matches labels too
    m = IntentClusterer(embedder=FakeEmbedder(), generator=FakeGenerator(), k="4",
                        neighbours=3, min_share=1).fit(SUPPORT_TEXTS)
    app = IntentLocalApp(backends=_fakes)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        assert app.screen.query_one("#runs", DataTable).row_count == 1
        await pilot.press("enter")
        await pilot.pause()
        results = app.screen
        assert isinstance(results, ResultsScreen)
        results.query_one("#search", Input).value = "pin"
        await pilot.pause()
        rows = results.query_one("#utterances", DataTable)
        texts = [rows.get_row_at(i)[1] for i in range(rows.row_count)]
        assert texts and all("pin" in t or "pin" in rows.get_row_at(i)[2]
                             for i, t in enumerate(texts))
        # every text whose words or labels say "pin", and no other
        want = sum(1 for t, labs in zip(SUPPORT_TEXTS, m.label_sets_, strict=True)
                   if "pin" in t.lower() or any("pin" in lab for lab in labs))
        assert want > sum(1 for t in SUPPORT_TEXTS if "pin" in t)  # labels matched too
        assert len(texts) == want


@pytest.mark.asyncio
async def test_bad_file_is_a_notification_not_a_crash(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"ok\n\xff\xfe broken\n")
    app = IntentLocalApp(str(bad), backends=_fakes)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, NewRunScreen)
        messages = [n.message for n in app._notifications]
        assert any("not UTF-8" in m and "line 2" in m for m in messages)


@pytest.mark.asyncio
async def test_a_busy_cpu_is_a_warning_on_the_progress_screen(tmp_path: Path,
                                                              monkeypatch) -> None:
    from intentlocal.backends import cpu

    monkeypatch.setattr(cpu, "cpu_in_use", lambda *a, **k: 64.0)
    app = IntentLocalApp(str(_csv(tmp_path)), backends=_fakes)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await _start_small_run(pilot, app)
        busy = [n for n in app._notifications if "CPU is already busy" in n.message]
        assert len(busy) == 1 and busy[0].severity == "warning"
        # the toast goes after 20 s; the stats line keeps saying it while it is so
        stats = str(app.screen.query_one("#stats", Static).render())
        assert stats.endswith("labels · CPU shared with other work")


@pytest.mark.asyncio
async def test_other_work_mid_run_is_a_warning_then_an_all_clear(tmp_path: Path,
                                                                 monkeypatch) -> None:
    from intentlocal.backends import cpu
    from intentlocal.pipeline import runner

    t = [0.0]

    def tick() -> float:
        t[0] += 30.0
        return t[0]

    def machine() -> float:  # 1.5 cores of other work from 30 s to 90 s, none after
        return 1.5 * min(max(t[0] - 30.0, 0.0), 60.0)

    monkeypatch.setattr(runner, "CpuWatch", lambda: cpu.CpuWatch(
        every=1.0, cores=2, machine=machine, own=lambda: 0.0, clock=tick))
    app = IntentLocalApp(str(_csv(tmp_path)), backends=_fakes)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await _start_small_run(pilot, app)
        await pilot.pause()
        said = [(n.title, n.severity) for n in app._notifications
                if "other work" in n.message]
        assert said == [("CPU busy", "warning"), ("CPU", "information")]
        stats = str(app.screen.query_one("#stats", Static).render())
        assert "prompt tokens/s" in stats and "CPU shared" not in stats


@pytest.mark.asyncio
async def test_own_prompt_file_from_the_form(tmp_path: Path) -> None:
    """A broken prompt file is a notification naming the file and stores no run; a
    good one is the run's initial prompt."""
    bad, good = tmp_path / "bad.toml", tmp_path / "good.toml"
    bad.write_text('system = "s"\nuser = "Text: {text}"\n')
    good.write_text('system = "Name the request."\nuser = "Message: {target}"\n')
    app = IntentLocalApp(str(_csv(tmp_path)), backends=_fakes,
                         store_path=tmp_path / "runs.sqlite3")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        screen.query_one("#k", Input).value = "4"
        screen.query_one("#prompt", Input).value = str(bad)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, NewRunScreen)
        messages = [n.message for n in app._notifications]
        assert any("bad.toml" in m and "placeholders" in m for m in messages)
        assert app.store.runs() == []
        screen.query_one("#prompt", Input).value = str(good)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, ProgressScreen)
        await _wait_finished(pilot, app.screen)
    assert app.store.run(1).settings["initial_prompt"] == str(good)


@pytest.mark.asyncio
async def test_cancel_keeps_work_and_resume_finishes(tmp_path: Path) -> None:
    import time

    class Slow(FakeGenerator):
        def generate(self, *a, **kw):
            time.sleep(0.2)  # the full run takes >10 s: the cancel lands mid-labelling
            return super().generate(*a, **kw)

    app = IntentLocalApp(str(_csv(tmp_path)), backends=lambda s: (FakeEmbedder(), Slow()))
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        app.screen.query_one("#k", Input).value = "4"
        await pilot.press("ctrl+s")
        await pilot.pause(0.1)
        progress = app.screen
        await pilot.press("c")
        await _wait_finished(pilot, progress)
        assert progress.failed
        store = Store()
        assert store.run(1).status == "interrupted"
        done = store.call_stats(1)["steps"]
        assert done > 0
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, HomeScreen)
        await pilot.press("r")
        await pilot.pause()
        resumed = app.screen
        assert isinstance(resumed, ProgressScreen)
        await _wait_finished(pilot, resumed)
        assert resumed.finished
        assert Store().run(1).status == "finished"
        assert Store().call_stats(1)["steps"] > done  # it went on from where it stopped


@pytest.mark.asyncio
async def test_merge_move_persist_and_map(tmp_path: Path) -> None:
    from textual.widgets import Select, Static

    from intentlocal.api import IntentClusterer
    from intentlocal.tui.screens import ChooseClusterScreen, MapScreen

    # min_share 1: on 3 fake neighbours labels are shared, so search matches labels too
    m = IntentClusterer(embedder=FakeEmbedder(), generator=FakeGenerator(), k="4",
                        neighbours=3, min_share=1).fit(SUPPORT_TEXTS)
    before = {c["id"]: c["size"] for c in Store().clusters(m.run_id_)}
    app = IntentLocalApp(backends=_fakes)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        results = app.screen
        results.query_one("#clusters", DataTable).focus()
        first = results._cursor_key("#clusters")
        await pilot.press("g")
        await pilot.pause()
        assert isinstance(app.screen, ChooseClusterScreen)
        target = app.screen.choices[0][1]
        app.screen.query_one("#target", Select).value = target
        await pilot.pause()
        assert isinstance(app.screen, ResultsScreen)
        assert results.query_one("#clusters", DataTable).row_count == 3
        # move the first utterance of the merged cluster somewhere else
        results.query_one("#utterances", DataTable).focus()
        idx = results._cursor_key("#utterances")
        await pilot.press("v")
        await pilot.pause()
        other = app.screen.choices[0][1]
        app.screen.query_one("#target", Select).value = other
        await pilot.pause()
        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, MapScreen)
        drawn = str(app.screen.query_one("#map", Static).render())
        assert "A " in drawn and "(" in drawn
    store = Store()  # a new connection: the edits were stored, not kept in memory
    sizes = {c["id"]: c["size"] for c in store.clusters(m.run_id_)}
    assert first not in sizes
    assert sum(sizes.values()) == len(SUPPORT_TEXTS)
    assert sizes[target] >= before[target] + before[first] - 1
    assert store.assignments(m.run_id_)[idx] == other


@pytest.mark.asyncio
async def test_a_run_with_llm_names_shows_the_naming_stage_and_who_named(
        tmp_path: Path, monkeypatch) -> None:
    """With llm_names the progress screen has a naming row that completes, and the
    results say which model named the highlighted cluster and what the labels' pick was."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("INTENTLOCAL_LLM_NAMES", "true")
    monkeypatch.setenv("INTENTLOCAL_NAME_LLM", "")  # the fake run LLM names
    app = IntentLocalApp(str(_csv(tmp_path)), backends=_fakes)
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        progress = await _start_small_run(pilot, app)
        assert progress.finished
        bar = progress.query_one("#bar-name")
        assert bar.total == 4 and bar.progress == 4
        await pilot.press("enter")
        await pilot.pause()
        results = app.screen
        assert isinstance(results, ResultsScreen)
        first = results.clusters[0]
        app.store.save_cluster_names(progress.run_id, [
            {"id": first["id"], "name": "written_name", "label_name": "the_pick",
             "name_model": "fake-llm", "name_prompt": "0" * 16}])
        results.reload()
        await pilot.pause()
        results.show_cluster(first["id"])
        title = str(results.query_one("#results-title").render())
        assert "written_name: named by fake-llm, the labels' pick was the_pick" in title


@pytest.mark.asyncio
async def test_chat_export_shows_its_speakers_and_keeps_the_chosen_side(tmp_path: Path) -> None:
    p = tmp_path / "chats.jsonl"
    p.write_text("".join(
        json.dumps({"messages": [{"role": "assistant", "content": "Hello! How can I help?"},
                                 {"role": "user", "content": t}]}) + "\n"
        for t in SUPPORT_TEXTS
    ))
    app = IntentLocalApp(str(p), backends=_fakes, store_path=tmp_path / "runs.sqlite3")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        screen = app.screen
        note = str(screen.query_one("#import-note", Static).render())
        assert f"{len(SUPPORT_TEXTS)} texts; chat records: kept the user turns" in note
        speaker = screen.query_one("#speaker", Input)
        speaker.value = "nobody"
        speaker.focus()
        await pilot.press("enter")
        await pilot.pause()
        note = str(screen.query_one("#import-note", Static).render())
        assert "no turn is by nobody" in note and "assistant" in note
        speaker.value = "user"
        await pilot.press("enter")
        await pilot.pause()
        screen.query_one("#first-turn").value = True
        await pilot.pause()
        note = str(screen.query_one("#import-note", Static).render())
        assert f"{len(SUPPORT_TEXTS)} texts; kept the turns of user" in note
        assert f"first turn: {len(SUPPORT_TEXTS)} conversations" in note
        await _start_small_run(pilot, app)
    stored = [t for _, _, t in app.store.texts(1)]
    assert stored == list(SUPPORT_TEXTS)
    assert app.store.run(1).name == "chats.jsonl, speaker user, first turns"
    assert [line for line, _ in app.store.origins(1)] == list(range(1, len(SUPPORT_TEXTS) + 1))


@pytest.mark.asyncio
async def test_results_say_whose_turns_a_cluster_holds(tmp_path: Path) -> None:
    p = tmp_path / "calls.csv"
    rows = [("agent", "Thank you for calling, how can I help you today?")] * 6 + [
        ("customer", t) for t in SUPPORT_TEXTS
    ]
    p.write_text("speaker,text\n" + "".join(f'{s},"{t}"\n' for s, t in rows))
    app = IntentLocalApp(str(p), backends=_fakes, store_path=tmp_path / "runs.sqlite3")
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        note = str(app.screen.query_one("#import-note", Static).render())
        assert "column 'speaker' names the speakers: customer (16), agent (6)" in note
        await _start_small_run(pilot, app)
        await pilot.press("enter")
        await pilot.pause()
        results = app.screen
        assert isinstance(results, ResultsScreen)
        agent = next(r["cluster_id"] for r in results.rows if r["speaker"] == "agent")
        members = [r["speaker"] for r in results.rows if r["cluster_id"] == agent]
        share = round(100 * members.count("agent") / len(members))
        results.show_cluster(agent)
        title = str(results.query_one("#results-title", Static).render())
        assert f"speakers: agent {share} %" in title or f"· agent {share} %" in title
