"""The run store: one SQLite file holding every run, text, LLM call and label.

Why SQLite with one committed transaction per LLM call: a run killed at any
moment (Ctrl-C, kill -9, power loss) keeps every call that finished, and a
resumed run reads them back instead of paying for them again. Label rows are
append-only and stamped with model, prompt hash, grammar and iteration: the
label history is a product feature, not a log. Migrations are ordered
functions; ``PRAGMA user_version`` says which have run.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from intentlocal import paths
from intentlocal.errors import StoreError


def _script(db: sqlite3.Connection, script: str) -> None:
    """Statement by statement: executescript() would commit the migration's transaction."""
    for stmt in script.split(";"):
        if stmt.strip():
            db.execute(stmt)


def _m1(db: sqlite3.Connection) -> None:
    _script(
        db,
        """
        CREATE TABLE runs (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            status TEXT NOT NULL,          -- running | interrupted | finished | failed
            pid INTEGER,
            input_path TEXT,
            settings_json TEXT NOT NULL,
            embedder_id TEXT,
            llm_id TEXT,
            n_texts INTEGER,
            n_unique INTEGER,
            k INTEGER,
            iterations INTEGER,
            error TEXT
        );
        CREATE TABLE texts (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,          -- position in the input
            uid INTEGER NOT NULL,          -- the unique text it is labelled as
            text TEXT NOT NULL,
            source_line INTEGER,
            PRIMARY KEY (run_id, idx)
        );
        CREATE TABLE uniques (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            uid INTEGER NOT NULL,
            text TEXT NOT NULL,
            count INTEGER NOT NULL,
            PRIMARY KEY (run_id, uid)
        );
        CREATE TABLE prompts (
            hash TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            body TEXT NOT NULL
        );
        CREATE TABLE steps (             -- one per unique text and iteration
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            uid INTEGER NOT NULL,
            iteration INTEGER NOT NULL,    -- 0 = initial label, 1.. = refinement
            neighbours_json TEXT NOT NULL,
            candidates_json TEXT NOT NULL, -- [[label, source uid], ...]
            called INTEGER NOT NULL,       -- 0 when nothing new was offered
            output TEXT,
            model_id TEXT,
            prompt_hash TEXT,
            grammar_id TEXT,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            cached_tokens INTEGER NOT NULL DEFAULT 0,
            seconds REAL NOT NULL DEFAULT 0,
            created_at REAL NOT NULL,
            PRIMARY KEY (run_id, uid, iteration)
        );
        CREATE TABLE labels (              -- append-only label events
            id INTEGER PRIMARY KEY,
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            uid INTEGER NOT NULL,
            label TEXT NOT NULL,
            iteration INTEGER NOT NULL,
            source_uid INTEGER,            -- the neighbour it came from (refinement)
            model_id TEXT NOT NULL,
            prompt_hash TEXT NOT NULL,
            grammar_id TEXT NOT NULL,
            UNIQUE (run_id, uid, label)
        );
        CREATE INDEX labels_run ON labels(run_id, uid);
        CREATE TABLE stages (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            stage TEXT NOT NULL,
            status TEXT NOT NULL,
            seconds REAL NOT NULL DEFAULT 0,
            detail_json TEXT,
            PRIMARY KEY (run_id, stage)
        );
        CREATE TABLE clusters (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            cluster_id INTEGER NOT NULL,
            name TEXT NOT NULL,
            size INTEGER NOT NULL,
            top_labels_json TEXT NOT NULL,
            renamed INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (run_id, cluster_id)
        );
        CREATE TABLE assignments (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            idx INTEGER NOT NULL,
            cluster_id INTEGER NOT NULL,
            moved INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (run_id, idx)
        );
        CREATE TABLE embedding_cache (
            model_id TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (model_id, text_hash)
        );
        """,
    )


def _m2(db: sqlite3.Connection) -> None:
    """2-D map coordinates of each unique text (PCA of its final vector)."""
    _script(
        db,
        """
        CREATE TABLE coords (
            run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            uid INTEGER NOT NULL,
            x REAL NOT NULL,
            y REAL NOT NULL,
            PRIMARY KEY (run_id, uid)
        )
        """,
    )


def _m3(db: sqlite3.Connection) -> None:
    """Answers the LLM gave, by question (backends.base.request_key), so a run asking a
    question already answered in this store reuses the answer (pipeline.reuse); and,
    per step, whether its answer was reused and what the first call took (NULL: the
    run decoded it). No SQL comment in the ALTER: SQLite keeps the column's text in the
    table's schema, where a trailing comment swallows the closing parenthesis."""
    _script(
        db,
        """
        CREATE TABLE answers (
            key TEXT PRIMARY KEY,
            model_id TEXT NOT NULL,
            output TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            seconds REAL NOT NULL
        );
        ALTER TABLE steps ADD COLUMN reused_seconds REAL
        """,
    )


def _m4(db: sqlite3.Connection) -> None:
    """Who named each cluster: the label rule's pick (label_name), and where the LLM
    wrote the name, its model and prompt hash (NULL: the rule's pick is the name)."""
    _script(
        db,
        """
        ALTER TABLE clusters ADD COLUMN label_name TEXT;
        ALTER TABLE clusters ADD COLUMN name_model TEXT;
        ALTER TABLE clusters ADD COLUMN name_prompt TEXT
        """,
    )


def _m5(db: sqlite3.Connection) -> None:
    """Who spoke each text, where the file said (ingest / turns): a cluster made of the
    agent's turns should say so wherever clusters are shown. NULL: not known."""
    _script(db, "ALTER TABLE texts ADD COLUMN speaker TEXT")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_m1, _m2, _m3, _m4, _m5]


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class RunInfo:
    id: int
    name: str
    created_at: float
    status: str
    input_path: str | None
    n_texts: int | None
    k: int | None
    embedder_id: str | None
    llm_id: str | None
    settings: dict[str, Any]
    iterations: int | None
    pid: int | None


class Store:
    """A connection to the run store; one per thread."""

    def __init__(self, path: Path | str | None = None, *, timeout: float = 30.0) -> None:
        self.path = Path(path) if path else paths.store_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self.db.row_factory = sqlite3.Row
            self._enable_wal(timeout)
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"cannot open the run store {self.path}: {exc}",
                hint="INTENTLOCAL_STORE or INTENTLOCAL_HOME moves it",
            ) from exc
        except OSError as exc:
            raise StoreError(f"cannot create the run store at {self.path}: {exc}") from exc

    def _enable_wal(self, timeout: float) -> None:
        """WAL lets a reader (the TUI) and a writer (a run) share the file.

        Switching the journal mode needs a lock that SQLite does not wait for
        through its busy timeout, so two processes opening a new store at once
        would see "database is locked": retry until the timeout instead.
        """
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def close(self) -> None:
        self.db.close()

    def _migrate(self) -> None:
        """Under the write lock, so two processes opening a new store don't both migrate."""
        if self.db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS):
            return
        with self.tx():
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            for i, migration in enumerate(MIGRATIONS[version:], start=version + 1):
                migration(self.db)
                self.db.execute(f"PRAGMA user_version={i}")

    @contextmanager
    def tx(self):
        try:
            self.db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(
                f"the run store {self.path} is busy (another intentlocal is writing): {exc}",
                hint="wait for the other run to finish, or use another INTENTLOCAL_STORE",
            ) from exc
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            try:
                self.db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self.db.execute("ROLLBACK")
                raise StoreError(f"cannot write to the run store {self.path}: {exc}") from exc

    # -- runs -----------------------------------------------------------------
    def create_run(
        self,
        name: str,
        input_path: str | None,
        settings: dict[str, Any],
        texts: Sequence[str],
        uids: Sequence[int],
        uniques: Sequence[str],
        source_lines: Sequence[int | None] | None = None,
        speakers: Sequence[str | None] | None = None,
    ) -> int:
        now = time.time()
        counts = np.bincount(np.asarray(uids, dtype=np.int64), minlength=len(uniques))
        lines = source_lines or [None] * len(texts)
        who = speakers or [None] * len(texts)
        with self.tx() as db:
            cur = db.execute(
                "INSERT INTO runs (name, created_at, updated_at, status, pid, input_path,"
                " settings_json, n_texts, n_unique) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    name,
                    now,
                    now,
                    "running",
                    os.getpid(),
                    input_path,
                    json.dumps(settings),
                    len(texts),
                    len(uniques),
                ),
            )
            run_id = int(cur.lastrowid or 0)
            db.executemany(
                "INSERT INTO texts (run_id, idx, uid, text, source_line, speaker)"
                " VALUES (?,?,?,?,?,?)",
                [
                    (run_id, i, int(u), t, ln, w)
                    for i, (t, u, ln, w) in enumerate(zip(texts, uids, lines, who, strict=True))
                ],
            )
            db.executemany(
                "INSERT INTO uniques (run_id, uid, text, count) VALUES (?,?,?,?)",
                [(run_id, u, t, int(counts[u])) for u, t in enumerate(uniques)],
            )
        return run_id

    def update_run(self, run_id: int, **fields: Any) -> None:
        if not fields:
            return
        fields["updated_at"] = time.time()
        cols = ", ".join(f"{k}=?" for k in fields)
        with self.tx() as db:
            db.execute(f"UPDATE runs SET {cols} WHERE id=?", (*fields.values(), run_id))

    def run(self, run_id: int) -> RunInfo:
        row = self.db.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id} in {self.path}")
        return self._info(row)

    def runs(self) -> list[RunInfo]:
        return [
            self._info(r) for r in self.db.execute("SELECT * FROM runs ORDER BY id DESC").fetchall()
        ]

    @staticmethod
    def _info(r: sqlite3.Row) -> RunInfo:
        return RunInfo(
            id=r["id"],
            name=r["name"],
            created_at=r["created_at"],
            status=r["status"],
            input_path=r["input_path"],
            n_texts=r["n_texts"],
            k=r["k"],
            embedder_id=r["embedder_id"],
            llm_id=r["llm_id"],
            settings=json.loads(r["settings_json"]),
            iterations=r["iterations"],
            pid=r["pid"],
        )

    def texts(self, run_id: int) -> list[tuple[int, int, str]]:
        return [
            (r["idx"], r["uid"], r["text"])
            for r in self.db.execute(
                "SELECT idx, uid, text FROM texts WHERE run_id=? ORDER BY idx", (run_id,)
            )
        ]

    def origins(self, run_id: int) -> list[tuple[int | None, str | None]]:
        """Where each text came from, in text order: its line (or record) in the file
        and who spoke it (None where the file did not say). With a speaker kept or blank
        rows dropped, a text's index is not its place in the file."""
        return [
            (r["source_line"], r["speaker"])
            for r in self.db.execute(
                "SELECT source_line, speaker FROM texts WHERE run_id=? ORDER BY idx", (run_id,)
            )
        ]

    def uniques(self, run_id: int) -> list[str]:
        return [
            r["text"]
            for r in self.db.execute(
                "SELECT text FROM uniques WHERE run_id=? ORDER BY uid", (run_id,)
            )
        ]

    # -- prompts, steps, labels -------------------------------------------------
    def save_prompt(self, hash_: str, name: str, body: str) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO prompts (hash, name, body) VALUES (?,?,?)",
                (hash_, name, body),
            )

    def prompt(self, hash_: str) -> tuple[str, str] | None:
        """(name, body) of a prompt a run used, by the hash its labels carry."""
        r = self.db.execute("SELECT name, body FROM prompts WHERE hash=?", (hash_,)).fetchone()
        return None if r is None else (r["name"], r["body"])

    def steps(self, run_id: int, iteration: int) -> dict[int, sqlite3.Row]:
        return {
            r["uid"]: r
            for r in self.db.execute(
                "SELECT * FROM steps WHERE run_id=? AND iteration=?", (run_id, iteration)
            )
        }

    def record_step(self, run_id: int, uid: int, iteration: int, **step: Any) -> None:
        """One text's step and the labels it produced, atomically: all or nothing.
        ``step``: the keyword arguments of ``_write_step``."""
        self.record_steps(run_id, iteration, [{"uid": uid, **step}])

    def record_steps(self, run_id: int, iteration: int, steps: Sequence[dict[str, Any]]) -> None:
        """Several texts' steps in one transaction: the calls of one batched decode are
        kept all or none, so a resumed run decodes the same batches again (a batch's
        floating-point results can depend on its members). Each dict holds ``uid`` and
        the keyword arguments of ``_write_step``."""
        with self.tx() as db:
            for step in steps:
                fields = dict(step)
                self._write_step(db, run_id, fields.pop("uid"), iteration, **fields)

    @staticmethod
    def _write_step(
        db: sqlite3.Connection,
        run_id: int,
        uid: int,
        iteration: int,
        *,
        neighbours: Sequence[int],
        candidates: Sequence[tuple[str, int]],
        called: bool,
        output: str | None,
        labels: Iterable[tuple[str, int | None]],
        model_id: str,
        prompt_hash: str,
        grammar_id: str,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cached_tokens: int = 0,
        seconds: float = 0.0,
        reused_seconds: float | None = None,
    ) -> None:
        db.execute(
            "INSERT INTO steps (run_id, uid, iteration, neighbours_json, candidates_json,"
            " called, output, model_id, prompt_hash, grammar_id, prompt_tokens,"
            " completion_tokens, cached_tokens, seconds, created_at, reused_seconds)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                run_id,
                uid,
                iteration,
                json.dumps([int(n) for n in neighbours]),
                json.dumps([[c, int(s)] for c, s in candidates]),
                int(called),
                output,
                model_id,
                prompt_hash,
                grammar_id,
                prompt_tokens,
                completion_tokens,
                cached_tokens,
                seconds,
                time.time(),
                reused_seconds,
            ),
        )
        db.executemany(
            "INSERT OR IGNORE INTO labels (run_id, uid, label, iteration, source_uid,"
            " model_id, prompt_hash, grammar_id) VALUES (?,?,?,?,?,?,?,?)",
            [
                (run_id, uid, lab, iteration, src, model_id, prompt_hash, grammar_id)
                for lab, src in labels
            ],
        )

    def label_sets(self, run_id: int, n_unique: int, upto_iteration: int) -> list[list[str]]:
        sets: list[list[str]] = [[] for _ in range(n_unique)]
        for r in self.db.execute(
            "SELECT uid, label FROM labels WHERE run_id=? AND iteration<=? ORDER BY id",
            (run_id, upto_iteration),
        ):
            sets[r["uid"]].append(r["label"])
        return sets

    def history(self, run_id: int, uid: int) -> list[dict[str, Any]]:
        """Per iteration: neighbours, candidates offered, labels added and their source."""
        labels: dict[int, list[dict[str, Any]]] = {}
        for r in self.db.execute(
            "SELECT * FROM labels WHERE run_id=? AND uid=? ORDER BY id", (run_id, uid)
        ):
            labels.setdefault(r["iteration"], []).append(
                {
                    "label": r["label"],
                    "source_uid": r["source_uid"],
                    "model_id": r["model_id"],
                    "prompt_hash": r["prompt_hash"],
                    "grammar_id": r["grammar_id"],
                }
            )
        out = []
        for s in self.db.execute(
            "SELECT * FROM steps WHERE run_id=? AND uid=? ORDER BY iteration", (run_id, uid)
        ):
            out.append(
                {
                    "iteration": s["iteration"],
                    "neighbours": json.loads(s["neighbours_json"]),
                    "candidates": json.loads(s["candidates_json"]),
                    "called": bool(s["called"]),
                    "output": s["output"],
                    "model_id": s["model_id"],
                    "prompt_hash": s["prompt_hash"],
                    "prompt_tokens": s["prompt_tokens"],
                    "completion_tokens": s["completion_tokens"],
                    "seconds": s["seconds"],
                    # not None: the answer came from the store (pipeline.reuse)
                    "reused_seconds": s["reused_seconds"],
                    "added": labels.get(s["iteration"], []),
                }
            )
        return out

    # -- stages ---------------------------------------------------------------------
    def set_stage(
        self,
        run_id: int,
        stage: str,
        status: str,
        seconds: float = 0.0,
        detail: dict[str, Any] | None = None,
    ) -> None:
        with self.tx() as db:
            db.execute(
                "INSERT INTO stages (run_id, stage, status, seconds, detail_json)"
                " VALUES (?,?,?,?,?) ON CONFLICT(run_id, stage) DO UPDATE SET"
                " status=excluded.status, seconds=stages.seconds + excluded.seconds,"
                " detail_json=excluded.detail_json",
                (run_id, stage, status, seconds, json.dumps(detail or {})),
            )

    def stages(self, run_id: int) -> dict[str, dict[str, Any]]:
        return {
            r["stage"]: {
                "status": r["status"],
                "seconds": r["seconds"],
                "detail": json.loads(r["detail_json"] or "{}"),
            }
            for r in self.db.execute("SELECT * FROM stages WHERE run_id=?", (run_id,))
        }

    def clustering(self, run_id: int) -> dict[str, Any]:
        """The cluster stage's record: K, whether it was estimated, the clusterer kept
        and every candidate's scores ({} before the stage has run)."""
        return self.stages(run_id).get("cluster", {}).get("detail", {})

    def call_stats(self, run_id: int) -> dict[str, Any]:
        r = self.db.execute(
            "SELECT COUNT(*) AS steps, SUM(called) AS calls, SUM(prompt_tokens) AS pt,"
            " SUM(completion_tokens) AS ct, SUM(cached_tokens) AS cached, SUM(seconds) AS s,"
            " COUNT(reused_seconds) AS reused, SUM(reused_seconds) AS rs"
            " FROM steps WHERE run_id=?",
            (run_id,),
        ).fetchone()
        return {
            "steps": r["steps"] or 0,
            "calls": r["calls"] or 0,
            "prompt_tokens": r["pt"] or 0,
            "completion_tokens": r["ct"] or 0,
            "cached_tokens": r["cached"] or 0,
            "llm_seconds": r["s"] or 0.0,
            # calls answered from the store (pipeline.reuse), and what they first took
            "reused_calls": r["reused"] or 0,
            "reused_seconds": r["rs"] or 0.0,
        }

    # -- clusters -----------------------------------------------------------------
    def save_clusters(
        self, run_id: int, clusters: Sequence[dict[str, Any]], assignment: Sequence[int]
    ) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM clusters WHERE run_id=?", (run_id,))
            db.execute("DELETE FROM assignments WHERE run_id=?", (run_id,))
            db.executemany(
                "INSERT INTO clusters (run_id, cluster_id, name, size, top_labels_json,"
                " label_name, name_model, name_prompt) VALUES (?,?,?,?,?,?,?,?)",
                [
                    (run_id, c["id"], c["name"], c["size"], json.dumps(c["top_labels"]),
                     c.get("label_name", c["name"]), c.get("name_model"),
                     c.get("name_prompt"))
                    for c in clusters
                ],
            )
            db.executemany(
                "INSERT INTO assignments (run_id, idx, cluster_id) VALUES (?,?,?)",
                [(run_id, i, int(c)) for i, c in enumerate(assignment)],
            )

    def clusters(self, run_id: int) -> list[dict[str, Any]]:
        return [
            {
                "id": r["cluster_id"],
                "name": r["name"],
                "size": r["size"],
                "top_labels": json.loads(r["top_labels_json"]),
                "renamed": bool(r["renamed"]),
                "label_name": r["label_name"] or r["name"],
                "name_model": r["name_model"],
                "name_prompt": r["name_prompt"],
            }
            for r in self.db.execute(
                "SELECT * FROM clusters WHERE run_id=? ORDER BY size DESC, cluster_id", (run_id,)
            )
        ]

    def assignments(self, run_id: int) -> list[int]:
        return [
            r["cluster_id"]
            for r in self.db.execute(
                "SELECT cluster_id FROM assignments WHERE run_id=? ORDER BY idx", (run_id,)
            )
        ]

    def save_coords(self, run_id: int, xy: np.ndarray) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM coords WHERE run_id=?", (run_id,))
            db.executemany(
                "INSERT INTO coords (run_id, uid, x, y) VALUES (?,?,?,?)",
                [(run_id, uid, float(x), float(y)) for uid, (x, y) in enumerate(xy)],
            )

    def coords(self, run_id: int) -> dict[int, tuple[float, float]]:
        return {r["uid"]: (r["x"], r["y"]) for r in self.db.execute(
            "SELECT uid, x, y FROM coords WHERE run_id=?", (run_id,))}

    def save_cluster_names(self, run_id: int, clusters: Sequence[dict[str, Any]]) -> None:
        """The names the LLM wrote (pipeline.naming), with who wrote them; a name the
        user gave (renamed) is theirs and stays."""
        with self.tx() as db:
            db.executemany(
                "UPDATE clusters SET name=?, label_name=?, name_model=?, name_prompt=?"
                " WHERE run_id=? AND cluster_id=? AND renamed=0",
                [(c["name"], c.get("label_name", c["name"]), c.get("name_model"),
                  c.get("name_prompt"), run_id, c["id"]) for c in clusters],
            )

    def merge_clusters(self, run_id: int, keep: int, absorb: int) -> None:
        """Moves every utterance of ``absorb`` into ``keep``; ``keep`` keeps its name."""
        if keep == absorb:
            return
        with self.tx() as db:
            db.execute("UPDATE assignments SET cluster_id=?, moved=1 WHERE run_id=? AND"
                       " cluster_id=?", (keep, run_id, absorb))
            db.execute("DELETE FROM clusters WHERE run_id=? AND cluster_id=?", (run_id, absorb))
            self._resize(db, run_id)

    def move_utterance(self, run_id: int, idx: int, cluster_id: int) -> None:
        with self.tx() as db:
            if db.execute("SELECT 1 FROM clusters WHERE run_id=? AND cluster_id=?",
                          (run_id, cluster_id)).fetchone() is None:
                raise StoreError(f"run {run_id} has no cluster {cluster_id}")
            db.execute("UPDATE assignments SET cluster_id=?, moved=1 WHERE run_id=? AND idx=?",
                       (cluster_id, run_id, idx))
            self._resize(db, run_id)

    @staticmethod
    def _resize(db: sqlite3.Connection, run_id: int, top: int = 3) -> None:
        """Sizes and top labels follow a merge or a move (the name is the user's)."""
        db.execute(
            "UPDATE clusters SET size=(SELECT COUNT(*) FROM assignments a WHERE"
            " a.run_id=clusters.run_id AND a.cluster_id=clusters.cluster_id) WHERE run_id=?",
            (run_id,))
        counts: dict[int, list[tuple[str, int]]] = {}
        for r in db.execute(
            "SELECT a.cluster_id, l.label, COUNT(DISTINCT a.idx) n FROM assignments a"
            " JOIN texts t ON t.run_id=a.run_id AND t.idx=a.idx"
            " JOIN labels l ON l.run_id=a.run_id AND l.uid=t.uid"
            " WHERE a.run_id=? GROUP BY a.cluster_id, l.label", (run_id,)
        ):
            counts.setdefault(r[0], []).append((r[1], r[2]))
        for cid, pairs in counts.items():
            ranked = sorted(pairs, key=lambda p: (-p[1], p[0]))[:top]
            db.execute(
                "UPDATE clusters SET top_labels_json=? WHERE run_id=? AND cluster_id=?",
                (json.dumps([[lab, n] for lab, n in ranked]), run_id, cid),
            )

    def rename_cluster(self, run_id: int, cluster_id: int, name: str) -> None:
        with self.tx() as db:
            db.execute(
                "UPDATE clusters SET name=?, renamed=1 WHERE run_id=? AND cluster_id=?",
                (name, run_id, cluster_id),
            )

    # -- embedding cache ------------------------------------------------------------
    def cached_embeddings(self, model_id: str, texts: Sequence[str]) -> dict[int, np.ndarray]:
        found: dict[int, np.ndarray] = {}
        hashes = [text_hash(t) for t in texts]
        pos: dict[str, list[int]] = {}
        for i, h in enumerate(hashes):
            pos.setdefault(h, []).append(i)
        keys = list(pos)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            q = ",".join("?" * len(chunk))
            for r in self.db.execute(
                f"SELECT text_hash, vector FROM embedding_cache WHERE model_id=? AND"
                f" text_hash IN ({q})",
                (model_id, *chunk),
            ):
                vec = np.frombuffer(r["vector"], dtype=np.float32)
                for i in pos[r["text_hash"]]:
                    found[i] = vec
        return found

    def cache_embeddings(self, model_id: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        with self.tx() as db:
            db.executemany(
                "INSERT OR IGNORE INTO embedding_cache (model_id, text_hash, vector)"
                " VALUES (?,?,?)",
                [
                    (model_id, text_hash(t), np.asarray(v, dtype=np.float32).tobytes())
                    for t, v in zip(texts, vectors, strict=True)
                ],
            )

    # -- answers the LLM gave (pipeline.reuse) ---------------------------------------
    def answers(self, keys: Sequence[str]) -> dict[str, sqlite3.Row]:
        found: dict[str, sqlite3.Row] = {}
        uniq = list(dict.fromkeys(keys))
        for start in range(0, len(uniq), 500):
            chunk = uniq[start : start + 500]
            q = ",".join("?" * len(chunk))
            for r in self.db.execute(f"SELECT * FROM answers WHERE key IN ({q})", chunk):
                found[r["key"]] = r
        return found

    def save_answers(self, rows: Sequence[tuple[str, str, str, int, int, float]]) -> None:
        """(key, model_id, output, prompt_tokens, completion_tokens, seconds) each; the
        first answer to a question stays (at temperature 0 a second one is the same)."""
        with self.tx() as db:
            db.executemany("INSERT OR IGNORE INTO answers VALUES (?,?,?,?,?,?)", rows)

    def integrity_ok(self) -> bool:
        return self.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
