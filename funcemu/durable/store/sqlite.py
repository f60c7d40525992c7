"""`SqliteStore`: the embedded default store, one SQLite file per task hub (stdlib `sqlite3`).

WAL mode with synchronous=NORMAL: a commit survives the process being killed (only an OS crash can lose
the last commits). Every write is one `BEGIN IMMEDIATE` transaction, so a checkpoint lands whole or not
at all. Calls run synchronously inside the async methods: they take microseconds, and running them on
the loop thread means no transaction ever interleaves with another.

Ready instances are indexed like in `MemoryStore`: the `heads` table holds, per instance, the id of its
oldest message visible at the stored watermark (the latest `now` that promoted a timer), so
`ready_instances` is an index walk, not a scan of the messages. A `now` before the watermark (a clock
reset) rebuilds `heads` once. `next_visible_time()` counts only timers later than the `now` of this
store's latest `ready_instances` call, as `MemoryStore` does.

Times are stored as integer microseconds since the Unix epoch, events as JSON text. Etags come from one
hub-wide counter, so a purged and re-created instance never reuses one. Only SQLite >= 3.24 features
are used (upsert, row values; no RETURNING), so the older system libraries under Python 3.10 work.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from funcemu.durable.store.base import (
    ActivityItem,
    Checkpoint,
    InstanceQuery,
    InstanceState,
    Message,
    RuntimeStatus,
    StaleCheckpointError,
)
from funcemu.durable.store.memory import (
    decode_continuation,
    encode_continuation,
    fired_timer_id,
    from_micros,
    to_micros,
)
from funcemu.errors import FuncemuError

SCHEMA_VERSION = 1
_MINUS_INFINITY = -(2**62)  # microseconds before any datetime
_TABLES = ("schema_version", "meta", "instances", "history", "messages", "heads", "activities")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER);
INSERT OR IGNORE INTO meta (key, value) VALUES ('etag', 0), ('watermark', NULL);
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY, name TEXT NOT NULL, execution_id TEXT NOT NULL,
    runtime_status TEXT NOT NULL, created_us INTEGER NOT NULL, updated_us INTEGER NOT NULL,
    input TEXT, output TEXT, custom_status TEXT, parent_instance_id TEXT,
    version TEXT NOT NULL, etag INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS instances_by_created ON instances (created_us, instance_id);
CREATE TABLE IF NOT EXISTS history (
    instance_id TEXT NOT NULL, seq INTEGER NOT NULL, event TEXT NOT NULL,
    PRIMARY KEY (instance_id, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, execution_id TEXT,
    visible_us INTEGER, timer_id INTEGER, event TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS messages_by_instance ON messages (instance_id, id);
CREATE INDEX IF NOT EXISTS messages_by_visible ON messages (visible_us) WHERE visible_us IS NOT NULL;
CREATE INDEX IF NOT EXISTS messages_by_timer ON messages (instance_id, timer_id) WHERE timer_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS heads (instance_id TEXT PRIMARY KEY, first_id INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS heads_by_first ON heads (first_id);
CREATE TABLE IF NOT EXISTS activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT, instance_id TEXT NOT NULL, execution_id TEXT NOT NULL,
    task_id INTEGER NOT NULL, name TEXT NOT NULL, input TEXT,
    dequeue_count INTEGER NOT NULL DEFAULT 0, leased INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS activities_by_lease ON activities (leased, id);
CREATE INDEX IF NOT EXISTS activities_by_instance ON activities (instance_id);
"""

_INSTANCE_COLUMNS = ("instance_id, name, execution_id, runtime_status, created_us, updated_us, input, "
                     "output, custom_status, parent_instance_id, version, etag")
_ACTIVITY_COLUMNS = "id, instance_id, execution_id, task_id, name, input, dequeue_count"


class SqliteStoreError(FuncemuError):
    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


class SqliteStore:
    """The durable store in one SQLite file; `open()` creates the file and its tables when absent."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._last_now: int | None = None  # the `now` of the latest ready_instances call

    async def open(self) -> None:
        if self._conn is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # autocommit (transactions are explicit); any thread, as calls never overlap (see above)
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            with self._write() as db:
                self._create_tables(db)
        except sqlite3.Error as error:
            self._disconnect()
            raise SqliteStoreError(self.path, f"cannot open the task hub database ({error})") from error
        except BaseException:
            self._disconnect()
            raise

    async def close(self) -> None:
        self._disconnect()

    # instances and history

    async def create_instance(self, state: InstanceState, start: Message) -> None:
        with self._write() as db:
            self._drop(db, state.instance_id)
            etag = self._put_instance(db, state)
            self._send(db, start, self._watermark(db))
        state.etag = etag

    async def get_instance(self, instance_id: str) -> InstanceState | None:
        row = self._db.execute(f"SELECT {_INSTANCE_COLUMNS} FROM instances WHERE instance_id = ?",
                               (instance_id,)).fetchone()
        return _instance(row) if row else None

    async def get_history(self, instance_id: str) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT event FROM history WHERE instance_id = ? ORDER BY seq",
                                (instance_id,))
        return [json.loads(event) for (event,) in rows]

    async def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceState], str | None]:
        where, params = _query_filter(query)
        top = query.top if query.top and query.top > 0 else None
        rows = self._db.execute(
            f"SELECT {_INSTANCE_COLUMNS} FROM instances WHERE {where} "
            "ORDER BY created_us, instance_id LIMIT ?", (*params, top + 1 if top else -1)).fetchall()
        page = rows[:top] if top else rows
        token = encode_continuation((page[-1][4], page[-1][0])) if len(page) < len(rows) else None
        return [_instance(row) for row in page], token

    async def purge_instances(self, instance_ids: list[str]) -> int:
        with self._write() as db:
            return sum(self._drop(db, instance_id) for instance_id in instance_ids)

    async def delete_task_hub(self) -> None:
        """Drop every table, then create empty ones: the store stays open and usable."""
        with self._write() as db:
            for table in _TABLES:
                db.execute(f"DROP TABLE IF EXISTS {table}")
            self._create_tables(db)

    # orchestration messages

    async def send_messages(self, messages: list[Message]) -> None:
        with self._write() as db:
            watermark = self._watermark(db)
            for message in messages:
                self._send(db, message, watermark)

    async def ready_instances(self, now: datetime, limit: int) -> list[str]:
        if limit <= 0:
            return []
        self._last_now = to_micros(now)
        with self._write() as db:
            self._promote(db, self._last_now)
            rows = db.execute("SELECT instance_id FROM heads ORDER BY first_id LIMIT ?", (limit,))
            return [instance_id for (instance_id,) in rows]

    async def pending_messages(self, instance_id: str, now: datetime) -> list[Message]:
        rows = self._db.execute(
            "SELECT id, instance_id, execution_id, visible_us, event FROM messages "
            "WHERE instance_id = ? AND (visible_us IS NULL OR visible_us <= ?) ORDER BY id",
            (instance_id, to_micros(now)))
        return [_message(row) for row in rows]

    async def next_visible_time(self) -> datetime | None:
        """The earliest timer not yet visible at the `now` of the latest `ready_instances` call."""
        after = self._last_now if self._last_now is not None else _MINUS_INFINITY
        (first,) = self._db.execute("SELECT MIN(visible_us) FROM messages WHERE visible_us > ?",
                                    (after,)).fetchone()
        return from_micros(first) if first is not None else None

    async def checkpoint(self, cp: Checkpoint) -> None:
        consumed = [(int(message.message_id),) for message in cp.consumed]
        touched = {cp.instance_id, *(message.instance_id for message in cp.consumed)}
        with self._write() as db:
            row = db.execute("SELECT etag FROM instances WHERE instance_id = ?", (cp.instance_id,)).fetchone()
            if (row[0] if row else None) != cp.etag:
                raise StaleCheckpointError(cp.instance_id)
            db.executemany("DELETE FROM messages WHERE id = ?", consumed)
            self._append_history(db, cp)
            etag = self._put_instance(db, cp.state)
            watermark = self._watermark(db)
            for message in cp.messages:
                self._send(db, message, watermark)
            db.executemany(
                "INSERT INTO activities (instance_id, execution_id, task_id, name, input) VALUES (?, ?, ?, ?, ?)",
                [(a.instance_id, a.execution_id, a.task_id, a.name, a.input) for a in cp.activities])
            db.executemany("DELETE FROM messages WHERE instance_id = ? AND timer_id = ?",
                           [(cp.instance_id, timer_id) for timer_id in set(cp.canceled_timers)])
            for instance_id in touched:
                self._refresh_head(db, instance_id, watermark)
        cp.state.etag = etag

    # activities

    async def fetch_activities(self, limit: int) -> list[ActivityItem]:
        if limit <= 0:
            return []
        with self._write() as db:
            rows = db.execute(f"SELECT {_ACTIVITY_COLUMNS} FROM activities WHERE leased = 0 ORDER BY id LIMIT ?",
                              (limit,)).fetchall()
            db.executemany("UPDATE activities SET leased = 1, dequeue_count = dequeue_count + 1 WHERE id = ?",
                           [(row[0],) for row in rows])
        items = [_activity(row) for row in rows]
        for item in items:
            item.dequeue_count += 1
        return items

    async def complete_activity(self, item: ActivityItem, result: Message) -> None:
        """A completion for an item that no longer exists (purged, replaced) sends nothing."""
        with self._write() as db:
            if db.execute("DELETE FROM activities WHERE id = ?", (int(item.item_id),)).rowcount:
                self._send(db, result, self._watermark(db))

    async def release_activity_leases(self) -> None:
        self._db.execute("UPDATE activities SET leased = 0 WHERE leased = 1")

    # internals: connection and schema

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"SqliteStore({str(self.path)!r}) is not open: await store.open() first")
        return self._conn

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; any exception, in the body or in COMMIT, rolls all of it back."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    def _create_tables(self, db: sqlite3.Connection) -> None:
        """Statement by statement: `executescript` would commit in the middle of the transaction."""
        for statement in filter(str.strip, _SCHEMA.split(";")):
            db.execute(statement)
        found = db.execute("SELECT version FROM schema_version").fetchone()
        if found is None:
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
        elif found[0] != SCHEMA_VERSION:
            raise SqliteStoreError(self.path, f"task hub schema version {found[0]} is not supported "
                                   f"(this funcemu reads version {SCHEMA_VERSION}); delete the file")

    # internals: instances

    def _put_instance(self, db: sqlite3.Connection, state: InstanceState) -> int:
        """Write the status row under a fresh etag; return the etag."""
        db.execute("UPDATE meta SET value = value + 1 WHERE key = 'etag'")
        (etag,) = db.execute("SELECT value FROM meta WHERE key = 'etag'").fetchone()
        db.execute(
            f"INSERT OR REPLACE INTO instances ({_INSTANCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (state.instance_id, state.name, state.execution_id, state.runtime_status.value,
             to_micros(state.created_time), to_micros(state.last_updated_time), state.input, state.output,
             state.custom_status, state.parent_instance_id, state.version, etag))
        return etag  # type: ignore[no-any-return]

    def _drop(self, db: sqlite3.Connection, instance_id: str) -> int:
        """Delete an instance with its history, messages and items; 1 if its status row existed."""
        existed = db.execute("DELETE FROM instances WHERE instance_id = ?", (instance_id,)).rowcount
        for table in ("history", "messages", "heads", "activities"):
            db.execute(f"DELETE FROM {table} WHERE instance_id = ?", (instance_id,))
        return existed

    def _append_history(self, db: sqlite3.Connection, cp: Checkpoint) -> None:
        if cp.replace_history:
            db.execute("DELETE FROM history WHERE instance_id = ?", (cp.instance_id,))
        (start,) = db.execute("SELECT COALESCE(MAX(seq) + 1, 0) FROM history WHERE instance_id = ?",
                              (cp.instance_id,)).fetchone()
        db.executemany("INSERT INTO history (instance_id, seq, event) VALUES (?, ?, ?)",
                       [(cp.instance_id, start + i, _dumps(event)) for i, event in enumerate(cp.new_events)])

    # internals: messages and the ready index

    def _watermark(self, db: sqlite3.Connection) -> int | None:
        return db.execute("SELECT value FROM meta WHERE key = 'watermark'").fetchone()[0]  # type: ignore[no-any-return]

    def _send(self, db: sqlite3.Connection, message: Message, watermark: int | None) -> None:
        visible = to_micros(message.visible_time) if message.visible_time is not None else None
        message_id = db.execute(
            "INSERT INTO messages (instance_id, execution_id, visible_us, timer_id, event) VALUES (?, ?, ?, ?, ?)",
            (message.instance_id, message.execution_id, visible, fired_timer_id(message.event),
             _dumps(message.event))).lastrowid
        if visible is None or (watermark is not None and visible <= watermark):
            _upsert_head(db, message.instance_id, message_id)  # type: ignore[arg-type]

    def _promote(self, db: sqlite3.Connection, now: int) -> None:
        """Put instances whose timers became visible since the watermark into `heads`."""
        watermark = self._watermark(db)
        if watermark is not None and now < watermark:
            self._rebuild_heads(db, now)
            return
        due = db.execute(
            "SELECT instance_id, MIN(id) FROM messages WHERE visible_us > ? AND visible_us <= ? "
            "GROUP BY instance_id", (watermark if watermark is not None else _MINUS_INFINITY, now)).fetchall()
        for instance_id, first in due:
            _upsert_head(db, instance_id, first)
        if due:
            db.execute("UPDATE meta SET value = ? WHERE key = 'watermark'", (now,))

    def _rebuild_heads(self, db: sqlite3.Connection, now: int) -> None:
        """The clock went back: recompute `heads` for `now` (a scan of the messages, rare)."""
        db.execute("DELETE FROM heads")
        db.execute("INSERT INTO heads (instance_id, first_id) SELECT instance_id, MIN(id) FROM messages "
                   "WHERE visible_us IS NULL OR visible_us <= ? GROUP BY instance_id", (now,))
        db.execute("UPDATE meta SET value = ? WHERE key = 'watermark'", (now,))

    def _refresh_head(self, db: sqlite3.Connection, instance_id: str, watermark: int | None) -> None:
        first = db.execute(
            "SELECT id FROM messages WHERE instance_id = ? AND (visible_us IS NULL OR visible_us <= ?) "
            "ORDER BY id LIMIT 1", (instance_id, watermark if watermark is not None else _MINUS_INFINITY)).fetchone()
        if first:
            db.execute("INSERT OR REPLACE INTO heads (instance_id, first_id) VALUES (?, ?)", (instance_id, first[0]))
        else:
            db.execute("DELETE FROM heads WHERE instance_id = ?", (instance_id,))


def _upsert_head(db: sqlite3.Connection, instance_id: str, message_id: int) -> None:
    db.execute("INSERT INTO heads (instance_id, first_id) VALUES (?, ?) ON CONFLICT (instance_id) "
               "DO UPDATE SET first_id = excluded.first_id WHERE excluded.first_id < heads.first_id",
               (instance_id, message_id))


def _query_filter(query: InstanceQuery) -> tuple[str, list[Any]]:
    """The WHERE clause and parameters for the query's filters and continuation."""
    clauses: list[str] = ["1 = 1"]
    params: list[Any] = []
    if query.created_from is not None:
        clauses.append("created_us >= ?")
        params.append(to_micros(query.created_from))
    if query.created_to is not None:
        clauses.append("created_us <= ?")
        params.append(to_micros(query.created_to))
    if query.statuses:
        clauses.append(f"runtime_status IN ({', '.join('?' * len(query.statuses))})")
        params.extend(status.value for status in query.statuses)
    if query.instance_id_prefix:
        clauses.append("substr(instance_id, 1, ?) = ?")
        params.extend([len(query.instance_id_prefix), query.instance_id_prefix])
    after = decode_continuation(query.continuation)
    if after is not None:
        clauses.append("(created_us, instance_id) > (?, ?)")  # a row value: an index range, not a scan
        params.extend(after)
    return " AND ".join(clauses), params


def _instance(row: tuple[Any, ...]) -> InstanceState:
    return InstanceState(
        instance_id=row[0], name=row[1], execution_id=row[2], runtime_status=RuntimeStatus(row[3]),
        created_time=from_micros(row[4]), last_updated_time=from_micros(row[5]), input=row[6],
        output=row[7], custom_status=row[8], parent_instance_id=row[9], version=row[10], etag=row[11])


def _message(row: tuple[Any, ...]) -> Message:
    message_id, instance_id, execution_id, visible, event = row
    return Message(instance_id=instance_id, event=json.loads(event), execution_id=execution_id,
                   visible_time=from_micros(visible) if visible is not None else None,
                   message_id=str(message_id))


def _activity(row: tuple[Any, ...]) -> ActivityItem:
    item_id, instance_id, execution_id, task_id, name, input, dequeue_count = row
    return ActivityItem(instance_id=instance_id, execution_id=execution_id, task_id=task_id, name=name,
                        input=input, item_id=str(item_id), dequeue_count=dequeue_count)


def _dumps(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))
