"""Screens of the app. Each reads and writes through the library API and the store."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.suggester import Suggester
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    ProgressBar,
    RichLog,
    Select,
    Static,
)

from intentlocal.api import pid_alive
from intentlocal.errors import IntentLocalError
from intentlocal.ingest import Corpus
from intentlocal.results import describe_clusters


def _app(screen: Screen) -> Any:
    return screen.app


class PathSuggester(Suggester):
    """Completes file paths as they are typed (Tab / → accepts)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        if not value:
            return None
        p = Path(os.path.expanduser(value))
        folder, stem = (p, "") if value.endswith("/") else (p.parent, p.name)
        try:
            names = sorted(c.name + ("/" if c.is_dir() else "") for c in folder.iterdir()
                           if c.name.startswith(stem) and not c.name.startswith("."))
        except OSError:
            return None
        if not names:
            return None
        return value[: len(value) - len(stem)] + names[0]


# -- home ---------------------------------------------------------------------------
class HomeScreen(Screen):
    BINDINGS = [
        Binding("n", "new_run", "New run"),
        Binding("enter", "open_run", "Open", show=True),
        Binding("r", "resume_run", "Resume"),
        Binding("q", "app.quit", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("Runs", classes="title")
        yield Static("", id="home-hint", classes="hint")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#runs", DataTable)
        table.add_columns("#", "name", "date", "texts", "K", "status", "models")
        self.refresh_runs()

    def on_screen_resume(self) -> None:
        self.refresh_runs()

    def refresh_runs(self) -> None:
        table = self.query_one("#runs", DataTable)
        table.clear()
        try:
            runs = _app(self).store.runs()
        except IntentLocalError as exc:
            _app(self).report(exc)
            runs = []
        for r in runs:
            status = r.status
            if status == "running" and r.pid and not pid_alive(r.pid):
                status = "interrupted"
            table.add_row(str(r.id), r.name,
                          time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at)),
                          str(r.n_texts or 0), str(r.k or "-"), status,
                          f"{r.llm_id or '?'} / {r.embedder_id or '?'}", key=str(r.id))
        hint = ("No runs yet: press n to import transcripts." if not runs else
                "enter: open results · r: resume an interrupted run · n: new run · ?: help")
        self.query_one("#home-hint", Static).update(hint)

    def _selected(self) -> int | None:
        table = self.query_one("#runs", DataTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return int(key.value) if key.value else None

    def action_new_run(self) -> None:
        self.app.push_screen(NewRunScreen())

    def action_open_run(self) -> None:
        run_id = self._selected()
        if run_id is None:
            return
        info = _app(self).store.run(run_id)
        if info.status == "finished":
            self.app.push_screen(ResultsScreen(run_id))
        else:
            self.notify(f"run {run_id} is {info.status}; press r to resume it")

    @on(DataTable.RowSelected, "#runs")
    def _row_selected(self) -> None:
        self.action_open_run()

    def action_resume_run(self) -> None:
        run_id = self._selected()
        if run_id is None:
            return
        try:
            from intentlocal.api import resume_target

            resume_target(_app(self).store, run_id)
        except IntentLocalError as exc:
            _app(self).report(exc)
            return
        self.app.push_screen(ProgressScreen(run_id))


# -- new run ----------------------------------------------------------------------------
class NewRunScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back"),
                Binding("ctrl+s", "start", "Start run")]

    def __init__(self, path: str | None = None) -> None:
        super().__init__()
        self.initial_path = path or ""

    def compose(self) -> ComposeResult:
        from intentlocal.backends.fetch import is_installed
        from intentlocal.backends.manifest import load_manifest
        from intentlocal.config import Settings

        manifest = load_manifest()
        defaults = Settings()

        def options(role: str) -> list[tuple[str, str]]:
            return [(n, n) for n, s in manifest.items() if s.role == role and is_installed(n)]

        llms, embs = options("llm"), options("embedder")
        if _app(self).backends is not None:  # injected backends: any choice works
            llms = llms or [(defaults.llm, defaults.llm)]
            embs = embs or [(defaults.embedder, defaults.embedder)]
        yield Header()
        yield Static("New run", classes="title")
        with Vertical(id="form"):
            with Horizontal(classes="row"):
                yield Label("File")
                yield Input(self.initial_path, placeholder="path to .csv, .jsonl, .json or .txt",
                            id="path", suggester=PathSuggester(), compact=True)
            with Horizontal(classes="row"):
                yield Label("Text column")
                yield Select([], id="column", prompt="(load a file)", allow_blank=True,
                             compact=True)
                yield Label("Speaker")
                yield Input("", id="speaker", compact=True,
                            placeholder="all, or e.g. customer")
                yield Checkbox("first turns", id="first-turn", compact=True,
                               tooltip="each conversation's first turn only (--first-turn)")
            with Horizontal(classes="row"):
                yield Label("LLM")
                yield Select(llms, id="llm", allow_blank=not llms, compact=True,
                             value=_pick(llms, defaults.llm),
                             prompt="none fetched: intentlocal models fetch")
            with Horizontal(classes="row"):
                yield Label("Embedder")
                yield Select(embs, id="embedder", allow_blank=not embs, compact=True,
                             value=_pick(embs, defaults.embedder),
                             prompt="none fetched: intentlocal models fetch")
            with Horizontal(classes="row"):
                yield Label("K")
                yield Input(defaults.k, id="k", placeholder="auto or a number", compact=True)
                yield Label("Neighbours")
                yield Input(str(defaults.neighbours), id="neighbours", type="integer",
                            compact=True)
                yield Label("Iterations")
                yield Input(str(defaults.max_iterations), id="iterations", type="integer",
                            compact=True)
            with Horizontal(classes="row"):
                yield Label("Prompt")
                yield Input(defaults.initial_prompt, id="prompt", suggester=PathSuggester(),
                            placeholder="initial_label, or your own .toml prompt file",
                            compact=True)
        yield Static("Preview", classes="title")
        yield DataTable(id="preview", zebra_stripes=True)
        yield Static("", id="import-note")
        with Horizontal(id="buttons"):
            yield Button("Start", id="start", variant="primary")
            yield Button("Back", id="back")
        yield Footer()

    def on_mount(self) -> None:
        if self.initial_path:
            self.load_preview(self.initial_path)

    @on(Input.Submitted, "#path")
    def _path_submitted(self, event: Input.Submitted) -> None:
        self.load_preview(event.value)

    def load_preview(self, path: str) -> None:
        from intentlocal.ingest import TEXT_COLUMNS, preview

        table = self.query_one("#preview", DataTable)
        table.clear(columns=True)
        try:
            header, rows = preview(path, rows=8)
        except IntentLocalError as exc:
            _app(self).report(exc)
            return
        table.add_columns(*header)
        for r in rows:
            table.add_row(*[c[:60] for c in r] + [""] * (len(header) - len(r)))
        col = self.query_one("#column", Select)
        col.set_options([(h, h) for h in header])
        guess = next((h for h in header if h.strip().lower() in TEXT_COLUMNS), header[0])
        if col.value == guess:  # else the change below reads the file for the note
            self.show_note(path)
        col.value = guess

    @on(Select.Changed, "#column")
    def _column_changed(self, event: Select.Changed) -> None:
        self.show_note(self.query_one("#path", Input).value.strip())

    @on(Input.Submitted, "#speaker")
    def _speaker_submitted(self, event: Input.Submitted) -> None:
        self.show_note(self.query_one("#path", Input).value.strip())

    @on(Checkbox.Changed, "#first-turn")
    def _first_turn_changed(self, event: Checkbox.Changed) -> None:
        self.show_note(self.query_one("#path", Input).value.strip())

    def read(self, path: str) -> Corpus:
        """The file as the form's text column, speaker and first-turn choice read it."""
        from intentlocal.ingest import read_corpus

        column = self.query_one("#column", Select).value
        return read_corpus(path, None if column is Select.BLANK else str(column),
                           self.query_one("#speaker", Input).value.strip() or None,
                           first_turn=self.query_one("#first-turn", Checkbox).value)

    def show_note(self, path: str) -> None:
        """What the reader will do with the file's speakers, before the run starts: a
        transcript's two sides are the common surprise."""
        note = self.query_one("#import-note", Static)
        try:
            corpus = self.read(path)
        except IntentLocalError as exc:
            note.update(f"{exc.title}: {exc.message}" if path else "")
            return
        note.update(f"{len(corpus.texts):,} texts" + (f"; {corpus.note}" if corpus.note else ""))

    @on(Button.Pressed, "#back")
    def _back(self) -> None:
        self.app.pop_screen()

    @on(Button.Pressed, "#start")
    def _start_pressed(self) -> None:
        self.action_start()

    def action_start(self) -> None:
        from intentlocal.api import start_run
        from intentlocal.config import load_settings

        app = _app(self)
        path = self.query_one("#path", Input).value.strip()
        try:
            if not path:
                raise IntentLocalError("choose a file first")
            llm = self.query_one("#llm", Select).value
            emb = self.query_one("#embedder", Select).value
            if llm is Select.BLANK or emb is Select.BLANK:
                raise IntentLocalError("no model fetched yet",
                                       hint="run: intentlocal models fetch")
            corpus = self.read(path)
            settings = load_settings(overrides={
                "llm": llm, "embedder": emb, "k": self.query_one("#k", Input).value or "auto",
                "neighbours": self.query_one("#neighbours", Input).value or None,
                "max_iterations": self.query_one("#iterations", Input).value or None,
                "initial_prompt": self.query_one("#prompt", Input).value.strip() or None,
            })
            embedder, generator = app.build_backends(settings)
            run_id = start_run(app.store, corpus, settings)
        except IntentLocalError as exc:
            app.report(exc)
            return
        self.app.switch_screen(ProgressScreen(run_id, embedder, generator))


def _pick(options: list[tuple[str, str]], preferred: str) -> Any:
    values = [v for _, v in options]
    if preferred in values:
        return preferred
    return values[0] if values else Select.BLANK


# -- progress -------------------------------------------------------------------------------
STAGES = [("embed", "Embed"), ("initial", "Initial labels"), ("refine", "Refine"),
          ("cluster", "Cluster"), ("name", "Name clusters")]


class ProgressScreen(Screen):
    BINDINGS = [Binding("c", "cancel", "Cancel (keeps work)"),
                Binding("enter", "results", "Results", show=False),
                Binding("escape", "leave", "Back")]

    def __init__(self, run_id: int, embedder: Any = None, generator: Any = None) -> None:
        super().__init__()
        self.run_id = run_id
        self.embedder = embedder
        self.generator = generator
        self.cancel_event = threading.Event()
        self.finished = False
        self.failed = False
        self.labels_written = 0
        self.cpu_shared = False  # the run's CPU watch last said other work is running

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Run {self.run_id}", id="run-title", classes="title")
        # the naming row only for runs whose names the LLM writes (settings.llm_names)
        named = bool(_app(self).store.run(self.run_id).settings.get("llm_names"))
        for key, label in STAGES:
            if key == "name" and not named:
                continue
            with Horizontal(classes="stage"):
                yield Label(label, id=f"name-{key}")
                yield ProgressBar(id=f"bar-{key}", show_eta=False)
                yield Label("", id=f"info-{key}", classes="info")
        yield Static("", id="stats")
        yield RichLog(id="feed", markup=False, wrap=True, max_lines=500)
        yield Footer()

    def on_mount(self) -> None:
        self.run_pipeline()

    @work(thread=True, exclusive=True, exit_on_error=False, group="pipeline")
    def run_pipeline(self) -> None:
        from intentlocal.api import execute_run
        from intentlocal.config import settings_from_dict

        app = _app(self)
        store = app.new_store()
        try:
            embedder, generator = self.embedder, self.generator
            if embedder is None or generator is None:
                settings = settings_from_dict(store.run(self.run_id).settings)
                embedder, generator = app.build_backends(settings)
            result = execute_run(store, self.run_id, embedder=embedder, generator=generator,
                                 progress=lambda ev: app.call_from_thread(self.show, ev),
                                 cancel=self.cancel_event)
            app.call_from_thread(self.done, describe_clusters(store, self.run_id),
                                 result.iterations)
        except BaseException as exc:  # shown, never raised over the screen
            app.call_from_thread(self.fail, exc)
        finally:
            store.close()

    def show(self, ev: Any) -> None:
        if ev.note:  # a run many times slower than its ETA said should say why
            self.notify(ev.note, title="CPU busy" if ev.cpu_busy else "CPU",
                        severity="warning" if ev.cpu_busy else "information", timeout=20)
            self.cpu_shared = bool(ev.cpu_busy)  # and the stats line keeps saying it
        key = ("embed" if ev.stage.startswith("embed") else
               "refine" if ev.stage.startswith("refine") else ev.stage)
        if key not in dict(STAGES) or not self.query(f"#bar-{key}"):
            return
        bar = self.query_one(f"#bar-{key}", ProgressBar)
        bar.update(total=max(ev.total, 1), progress=ev.done)
        eta = f" · ETA {int(ev.eta_seconds // 60)}m{int(ev.eta_seconds % 60):02d}s" \
            if ev.eta_seconds else ""
        self.query_one(f"#info-{key}", Label).update(f" {ev.done}/{ev.total}{eta}")
        if key == "refine":
            self.query_one("#name-refine", Label).update(f"Iteration {ev.stage.split('-')[1]}")
        if ev.tokens_per_second:
            self.query_one("#stats", Static).update(
                f"{ev.tokens_per_second:.0f} prompt tokens/s · {self.labels_written} labels"
                + (" · CPU shared with other work" if self.cpu_shared else ""))
        if ev.latest:
            self.labels_written += 1
            text, label = ev.latest
            line = Text()
            line.append(f"{label:<32} ", style="bold green")
            line.append(text[:100])
            self.query_one("#feed", RichLog).write(line)

    def done(self, clusters: str, iterations: int) -> None:
        self.finished = True
        self.query_one("#run-title", Static).update(
            f"Run {self.run_id}: finished, {clusters} after {iterations} iteration(s). "
            "Press enter for the results.")
        self.notify("Run finished", title=f"run {self.run_id}")

    def fail(self, exc: BaseException) -> None:
        self.failed = True
        from intentlocal.pipeline.runner import Cancelled

        if isinstance(exc, Cancelled):
            self.query_one("#run-title", Static).update(
                f"Run {self.run_id}: cancelled; finished work is kept (resume from the home "
                "screen with r).")
            self.notify("Cancelled; finished work is kept", title=f"run {self.run_id}")
        else:
            self.query_one("#run-title", Static).update(f"Run {self.run_id}: stopped.")
            _app(self).report(exc)

    def action_cancel(self) -> None:
        if not self.finished:
            self.cancel_event.set()
            self.notify("Cancelling after the current call…")

    def action_results(self) -> None:
        if self.finished:
            self.app.switch_screen(ResultsScreen(self.run_id))

    def action_leave(self) -> None:
        if not (self.finished or self.failed):
            self.cancel_event.set()
        self.app.pop_screen()


# -- results ------------------------------------------------------------------------------------
class ResultsScreen(Screen):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("h", "history", "History"),
        Binding("r", "rename", "Rename cluster"),
        Binding("s", "sort", "Sort"),
        Binding("e", "export", "Export CSV/JSON"),
        Binding("slash", "search", "Search"),
        Binding("g", "merge", "Merge into…"),
        Binding("v", "move", "Move utterance…"),
        Binding("p", "map", "Map"),
    ]

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.sort_by_name = False
        self.cluster_filter = ""
        self.search = ""
        self.current: int | None = None
        self.title_text = f"Run {run_id}"
        self.clusters: list[dict[str, Any]] = []
        self.speakers: dict[int, list[tuple[str, int]]] = {}

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("", id="results-title", classes="title")
        with Horizontal():
            with Vertical(id="left"):
                yield Input(placeholder="filter clusters by name or label", id="filter")
                yield DataTable(id="clusters", cursor_type="row", zebra_stripes=True)
                yield Static("", id="chart")
            with Vertical(id="right"):
                yield Input(placeholder="/ search utterances by text or label", id="search")
                yield DataTable(id="utterances", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#clusters", DataTable).add_columns("name", "size", "top labels")
        self.query_one("#utterances", DataTable).add_columns("#", "text", "labels")
        self.reload()

    def reload(self) -> None:
        from intentlocal.results import result_rows, speakers_by_cluster

        store = _app(self).store
        try:
            self.rows = result_rows(store, self.run_id)
        except IntentLocalError as exc:
            _app(self).report(exc)
            self.rows = []
        self.clusters = store.clusters(self.run_id)
        self.speakers = speakers_by_cluster(self.rows)
        info = store.run(self.run_id)
        self.title_text = (f"Run {self.run_id} · {info.name} · {len(self.rows)} texts · "
                           f"{len(self.clusters)} clusters")
        self.query_one("#results-title", Static).update(self.title_text)
        self.fill_clusters()
        self.fill_chart()

    def fill_clusters(self) -> None:
        table = self.query_one("#clusters", DataTable)
        table.clear()
        f = self.cluster_filter.lower()
        clusters = sorted(self.clusters, key=lambda c: c["name"]) if self.sort_by_name \
            else self.clusters
        for c in clusters:
            tops = ", ".join(lab for lab, _ in c["top_labels"])
            if f and f not in c["name"].lower() and f not in tops.lower():
                continue
            table.add_row(c["name"], str(c["size"]), tops, key=str(c["id"]))
        if table.row_count:
            self.show_cluster(int(table.coordinate_to_cell_key((0, 0)).row_key.value or 0))

    def fill_chart(self) -> None:
        top = self.clusters[:8]
        if not top:
            return
        biggest = max(c["size"] for c in top)
        lines = [f"{c['name'][:16]:<16} {'█' * max(1, round(12 * c['size'] / biggest))} "
                 f"{c['size']}" for c in top]
        self.query_one("#chart", Static).update("\n".join(lines))

    def show_cluster(self, cluster_id: int | None) -> None:
        from intentlocal.results import speaker_share

        self.current = cluster_id
        # who named the highlighted cluster, where the LLM did (settings.llm_names)
        c = next((c for c in self.clusters if c["id"] == cluster_id), None)
        note = (f" · {c['name']}: named by {c['name_model']}, the labels' pick was "
                f"{c['label_name']}" if c is not None and c.get("name_model") else "")
        # whose turns it holds, where the file said who spoke (an agent-only cluster)
        speakers = self.speakers.get(cluster_id, []) if cluster_id is not None else []
        if speakers:
            note += f" · speakers: {speaker_share(speakers)}"
        self.query_one("#results-title", Static).update(self.title_text + note)
        table = self.query_one("#utterances", DataTable)
        table.clear()
        q = self.search.lower()
        for r in self.rows:
            if q:
                if q not in r["text"].lower() and not any(q in lab for lab in r["labels"]):
                    continue
            elif r["cluster_id"] != cluster_id:
                continue
            table.add_row(str(r["index"]), r["text"][:80], ", ".join(r["labels"]),
                          key=str(r["index"]))

    @on(DataTable.RowHighlighted, "#clusters")
    def _cluster_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key and event.row_key.value is not None and not self.search:
            self.show_cluster(int(event.row_key.value))

    @on(DataTable.RowSelected, "#utterances")
    def _utterance_selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value is not None:
            self.app.push_screen(HistoryScreen(self.run_id, int(event.row_key.value)))

    @on(Input.Changed, "#filter")
    def _filter(self, event: Input.Changed) -> None:
        self.cluster_filter = event.value
        self.fill_clusters()

    @on(Input.Changed, "#search")
    def _search(self, event: Input.Changed) -> None:
        self.search = event.value
        self.show_cluster(self.current)

    def action_search(self) -> None:
        self.query_one("#search", Input).focus()

    def action_sort(self) -> None:
        self.sort_by_name = not self.sort_by_name
        self.fill_clusters()

    def action_history(self) -> None:
        table = self.query_one("#utterances", DataTable)
        if table.row_count:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
            self.app.push_screen(HistoryScreen(self.run_id, int(key.value or 0)))

    def action_rename(self) -> None:
        table = self.query_one("#clusters", DataTable)
        if not table.row_count:
            return
        cid = int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or 0)
        old = next(c["name"] for c in self.clusters if c["id"] == cid)

        def apply(name: str | None) -> None:
            if name and name.strip() and name.strip() != old:
                _app(self).store.rename_cluster(self.run_id, cid, name.strip())
                self.reload()
                self.notify(f"renamed {old} → {name.strip()}")

        self.app.push_screen(RenameScreen(old), apply)

    def _cursor_key(self, table_id: str) -> int | None:
        table = self.query_one(table_id, DataTable)
        if not table.row_count:
            return None
        return int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value or 0)

    def _choose_cluster(self, title: str, exclude: int | None, then: Any) -> None:
        choices = [(c["name"], c["id"]) for c in self.clusters if c["id"] != exclude]
        if choices:
            self.app.push_screen(ChooseClusterScreen(title, choices), then)

    def action_merge(self) -> None:
        cid = self._cursor_key("#clusters")
        if cid is None:
            return
        name = next(c["name"] for c in self.clusters if c["id"] == cid)

        def apply(target: int | None) -> None:
            if target is not None:
                _app(self).store.merge_clusters(self.run_id, keep=target, absorb=cid)
                self.reload()
                self.notify(f"merged {name} into cluster {target}")

        self._choose_cluster(f"Merge {name!r} into", cid, apply)

    def action_move(self) -> None:
        idx = self._cursor_key("#utterances")
        if idx is None:
            return
        current = self.rows[idx]["cluster_id"]

        def apply(target: int | None) -> None:
            if target is not None:
                _app(self).store.move_utterance(self.run_id, idx, target)
                self.reload()
                self.notify(f"moved utterance {idx}")

        self._choose_cluster(f"Move utterance {idx} to", current, apply)

    def action_map(self) -> None:
        self.app.push_screen(MapScreen(self.run_id))

    def action_export(self) -> None:
        from intentlocal.results import write_outputs

        try:
            csv_path, json_path = write_outputs(_app(self).store, self.run_id, Path.cwd())
        except IntentLocalError as exc:
            _app(self).report(exc)
            return
        self.notify(f"wrote {csv_path.name} and {json_path.name} in {csv_path.parent}",
                    title="Exported")


class RenameScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Rename cluster {self.current!r}")
            yield Input(self.current, id="new-name")

    @on(Input.Submitted, "#new-name")
    def _submit(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChooseClusterScreen(ModalScreen[int | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, choices: list[tuple[str, int]]) -> None:
        super().__init__()
        self.title_text = title
        self.choices = choices

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text)
            yield Select(self.choices, id="target", prompt="choose a cluster")

    @on(Select.Changed, "#target")
    def _chosen(self, event: Select.Changed) -> None:
        if event.value is not Select.BLANK:
            self.dismiss(int(event.value))  # type: ignore[arg-type]

    def action_cancel(self) -> None:
        self.dismiss(None)


MARKS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
COLOURS = ["red", "green", "yellow", "blue", "magenta", "cyan", "bright_red", "bright_green",
           "bright_yellow", "bright_blue", "bright_magenta", "bright_cyan"]


def render_map(points: list[tuple[float, float, int]], names: dict[int, str],
               width: int, height: int, top: int = 12) -> Text:
    """A scatter of utterances on a character grid, the largest clusters lettered."""
    out = Text()
    if not points:
        return out
    sizes: dict[int, int] = {}
    for _, _, c in points:
        sizes[c] = sizes.get(c, 0) + 1
    ranked = sorted(sizes, key=lambda c: (-sizes[c], c))[:top]
    mark = {c: i for i, c in enumerate(ranked)}
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    grid: list[list[tuple[str, str]]] = [[(" ", "")] * width for _ in range(height)]
    for x, y, c in points:
        col = int((x - x0) / ((x1 - x0) or 1) * (width - 1))
        row = int((1 - (y - y0) / ((y1 - y0) or 1)) * (height - 1))
        if c in mark:
            grid[row][col] = (MARKS[mark[c]], COLOURS[mark[c] % len(COLOURS)])
        elif grid[row][col][0] == " ":
            grid[row][col] = ("·", "dim")
    for row in grid:
        for ch, style in row:
            out.append(ch, style=style or None)
        out.append("\n")
    for c in ranked:
        out.append(f"{MARKS[mark[c]]} ", style=COLOURS[mark[c] % len(COLOURS)])
        out.append(f"{names.get(c, c)} ({sizes[c]})  ")
    out.append("\n· other clusters", style="dim")
    return out


class MapScreen(Screen):
    """A 2-D map of the utterances (PCA of their final vectors), coloured by cluster."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, run_id: int) -> None:
        super().__init__()
        self.run_id = run_id

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="map")
        yield Footer()

    def on_mount(self) -> None:
        store = _app(self).store
        coords = store.coords(self.run_id)
        assign = store.assignments(self.run_id)
        names = {c["id"]: c["name"] for c in store.clusters(self.run_id)}
        points = [(*coords[uid], assign[idx]) for idx, uid, _ in store.texts(self.run_id)
                  if uid in coords]
        if not points:
            self.query_one("#map", Static).update("This run has no map (made before maps).")
            return
        width = max(20, self.size.width - 2)
        height = max(6, self.size.height - 8)
        self.query_one("#map", Static).update(render_map(points, names, width, height))


# -- history ------------------------------------------------------------------------------------
class HistoryScreen(Screen):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]

    def __init__(self, run_id: int, index: int) -> None:
        super().__init__()
        self.run_id = run_id
        self.index = index

    def compose(self) -> ComposeResult:
        yield Header()
        with VerticalScroll(id="history"):
            yield Static(id="history-body")
        yield Footer()

    def on_mount(self) -> None:
        store = _app(self).store
        rows = store.texts(self.run_id)
        _, uid, text = rows[self.index]
        uniques = store.uniques(self.run_id)
        out = Text()
        line, speaker = store.origins(self.run_id)[self.index]
        source = store.run(self.run_id).input_path
        where = f" · line {line} of {Path(source).name}" if line and source else ""
        where += f" · said by {speaker}" if speaker else ""
        out.append(f"Utterance {self.index}{where}\n", style="bold")
        out.append(f"{text}\n\n")
        for step in store.history(self.run_id, uid):
            it = step["iteration"]
            title = "Iteration 0: initial label" if it == 0 else f"Iteration {it}: refinement"
            out.append(title + "\n", style="bold underline")
            if step["added"]:
                for a in step["added"]:
                    src = a["source_uid"]
                    origin = f"  ← from neighbour: {uniques[src][:70]}" if src is not None else ""
                    out.append(f"  + {a['label']}", style="bold green")
                    out.append(f"{origin}\n")
            else:
                why = ("no neighbour offered a new label" if not step["candidates"] else
                       "none of the candidates applied")
                out.append(f"  no label added ({why})\n", style="dim")
            if step["candidates"]:
                out.append("  candidates offered: " +
                           ", ".join(c for c, _ in step["candidates"]) + "\n")
            out.append("  neighbours:\n", style="italic")
            for j in step["neighbours"]:
                out.append(f"    · {uniques[j][:90]}\n", style="dim")
            if step["added"] and not step["called"]:
                out.append(f"  added by {step['model_id']}: the labels most shared among "
                           "the neighbours, without an LLM call\n", style="dim")
            if step["called"]:
                out.append(f"  model {step['model_id']} · prompt {step['prompt_hash']} · "
                           f"{step['prompt_tokens']}+{step['completion_tokens']} tokens · "
                           + (f"{step['seconds']:.2f} s" if step.get("reused_seconds") is None
                              else "answer reused from an earlier run of the same question "
                              f"(that call took {step['reused_seconds']:.2f} s)")
                           + "\n", style="dim")
            out.append("\n")
        self.query_one("#history-body", Static).update(out)


# -- help --------------------------------------------------------------------------------------
HELP = """[b]intentlocal: keys[/b]

[b]Everywhere[/b]   ?  this help · ctrl+q  quit · escape  back
[b]Runs[/b]         n  new run · enter  open results · r  resume an interrupted run
[b]New run[/b]      tab  next field (→ accepts a path completion) · enter on the path: preview
             ctrl+s  start
[b]Progress[/b]     c  cancel (finished work is kept; resume later) · enter  results when done
[b]Results[/b]      ↑/↓  move · tab  switch table · enter on an utterance  label history
             h  history · r  rename cluster · s  sort by size/name · /  search
             g  merge the cluster into another · v  move the utterance to another cluster
             p  2-D map of the clusters · e  export CSV and JSON to the current folder

Every label is stored with the model, prompt hash and iteration that produced it.
Nothing leaves this machine: models run locally, the store is a SQLite file.
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "dismiss", "Close"), Binding("question_mark", "dismiss")]

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(HELP, id="help")

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
