"""`SqliteStore`: the embedded default store, one SQLite file per task hub (stdlib `sqlite3`).

WAL mode with synchronous=NORMAL: a commit survives the process being killed (only an OS crash can lose
the last commits). Every write is one `BEGIN IMMEDIATE` transaction, so a checkpoint lands whole or not
at all. Calls run synchronously on the event loop thread: statements take microseconds, and no
transaction ever interleaves with another or spans an `await`.

Group commit: a write (checkpoint, create, send, lease, completion, ...) is queued, and the writes
queued during one turn of the event loop run in the next turn in one transaction, each in its own
savepoint: a write that fails (a stale checkpoint) leaves nothing behind while the others commit. A
caller resumes only after COMMIT, so what a call returned has been committed; reads see committed
data only. A lone write waits one loop turn, no timer. The commit is what costs (the WAL frames of
every page the transaction touched), so sharing it between the episodes and completions of a turn
is most of the saving.

Ready instances are indexed like in `MemoryStore`: the `heads` table holds, per instance, the id of its
oldest message visible at the stored watermark (the latest `now` that promoted a timer), so
`ready_instances` is an index walk, not a scan of the messages, and writes only when a timer became due.
A `now` before the watermark (a clock reset) rebuilds `heads` once. `next_visible_time()` counts only
timers later than the `now` of this store's latest `ready_instances` call, as `MemoryStore` does.

The loop thread never checkpoints the WAL (`wal_autocheckpoint=0`): a `_Checkpointer` thread with its own
connection copies it into the database file (PASSIVE: it never blocks a writer), so the copy and its
fsync run beside the event loop instead of stalling it inside a COMMIT every thousand pages. A commit is
durable once it is in the WAL, so this changes nothing for a process that is killed.

Times are stored as integer microseconds since the Unix epoch, events as JSON text: a history row holds
the events one checkpoint appended, comma-separated (`get_history` parses all of an instance's rows as one
JSON array), keyed by the checkpoint's etag. Etags come from one hub-wide counter, so a purged and
re-created instance never reuses one. The counter and the watermark (table `meta`) are cached in the
store and read again when `PRAGMA data_version` says another connection committed. Schema version 1 (one
event per history row, seq = 0, 1, ...) is upgraded in place: such a row is a one-event chunk, and the
counter is raised past every seq. Only SQLite >= 3.24 features are used (upsert, row values; no
RETURNING), so the older system libraries under Python 3.10 work.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

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

T = TypeVar("T")
SCHEMA_VERSION = 2
log = logging.getLogger("funcemu.durable")
CHECKPOINT_EVERY = 32  # commits between two WAL checkpoints (a commit writes some 10-60 pages)
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
_INSERT_INSTANCE = f"INSERT INTO instances ({_INSTANCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_UPDATE_INSTANCE = ("UPDATE instances SET name = ?2, execution_id = ?3, runtime_status = ?4, created_us = ?5, "
                    "updated_us = ?6, input = ?7, output = ?8, custom_status = ?9, parent_instance_id = ?10, "
                    "version = ?11, etag = ?12 WHERE instance_id = ?1 AND etag = ?13")
_ACTIVITY_COLUMNS = "id, instance_id, execution_id, task_id, name, input, dequeue_count"
_STATUSES = {status.value: status for status in RuntimeStatus}
_encode = json.JSONEncoder(separators=(",", ":")).encode  # one encoder: json.dumps(separators=) builds one per call
_decode = json.JSONDecoder().decode

Operation = Callable[[sqlite3.Connection], Any]


class SqliteStoreError(FuncemuError):
    def __init__(self, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


class SqliteStore:
    """The durable store in one SQLite file; `open()` creates the file and its tables when absent."""

    # the history returned by get_history changes only through this store's checkpoint calls, so the engine
    # may keep the history it checkpointed last (keyed by etag) instead of reading it again
    reusable_history: bool = True

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._conn: sqlite3.Connection | None = None
        self._last_now: int | None = None  # the `now` of the latest ready_instances call
        self._queued: list[tuple[Operation, asyncio.Future[Any]]] = []  # writes for the next group commit
        # the meta table as of `PRAGMA data_version` = _meta_version (None: read it again)
        self._meta_version: int | None = None
        self._etag = 0             # the last etag handed out (never decreases)
        self._stored_etag = 0      # the counter as stored in meta
        self._watermark: int | None = None
        self._checkpointer: _Checkpointer | None = None
        self._commits = 0

    async def open(self) -> None:
        if self._conn is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # autocommit (transactions are explicit); any thread, as calls never overlap (see above)
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            with self._transaction() as db:
                self._create_tables(db)
            self._checkpointer = _Checkpointer(self.path)
            self._conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer thread does it
        except sqlite3.Error as error:
            self._disconnect()
            raise SqliteStoreError(self.path, f"cannot open the task hub database ({error})") from error
        except BaseException:
            self._disconnect()
            raise

    async def close(self) -> None:
        if self._conn is not None:
            self._commit_queued()
        self._disconnect()

    # instances and history

    async def create_instance(self, state: InstanceState, start: Message) -> None:
        def write(db: sqlite3.Connection) -> int:
            self._drop(db, state.instance_id)
            etag = self._next_etag()
            db.execute(_INSERT_INSTANCE, _instance_row(state, etag))
            self._send(db, start)
            return etag
        state.etag = await self._write(write)

    async def get_instance(self, instance_id: str) -> InstanceState | None:
        row = self._db.execute(f"SELECT {_INSTANCE_COLUMNS} FROM instances WHERE instance_id = ?",
                               (instance_id,)).fetchone()
        return _instance(row) if row else None

    async def get_history(self, instance_id: str) -> list[dict[str, Any]]:
        """The rows' chunks joined into one JSON array: one parse for the whole history."""
        rows = self._db.execute("SELECT event FROM history WHERE instance_id = ? ORDER BY seq", (instance_id,))
        return _decode(f"[{','.join([events for (events,) in rows])}]")  # type: ignore[no-any-return]

    async def query_instances(self, query: InstanceQuery) -> tuple[list[InstanceState], str | None]:
        where, params = _query_filter(query)
        top = query.top if query.top and query.top > 0 else None
        rows = self._db.execute(
            f"SELECT {_INSTANCE_COLUMNS} FROM instances WHERE {where} "
            "ORDER BY instance_id LIMIT ?", (*params, top + 1 if top else -1)).fetchall()
        page = rows[:top] if top else rows
        token = encode_continuation(page[-1][0]) if len(page) < len(rows) else None
        return [_instance(row) for row in page], token

    async def purge_instances(self, instance_ids: list[str]) -> int:
        return await self._write(lambda db: sum(self._drop(db, instance_id) for instance_id in instance_ids))

    async def delete_task_hub(self) -> None:
        """Drop every table, then create empty ones: the store stays open and usable."""
        def write(db: sqlite3.Connection) -> None:
            for table in _TABLES:
                db.execute(f"DROP TABLE IF EXISTS {table}")
            self._create_tables(db)
            self._load_meta(db)
        await self._write(write)

    # orchestration messages

    async def send_messages(self, messages: list[Message]) -> None:
        def write(db: sqlite3.Connection) -> None:
            for message in messages:
                self._send(db, message)
        await self._write(write)

    async def ready_instances(self, now: datetime, limit: int) -> list[str]:
        if limit <= 0:
            return []
        self._last_now = micros = to_micros(now)
        if self._must_promote(self._db, micros):
            await self._write(lambda db: self._promote(db, micros))
        rows = self._db.execute("SELECT instance_id FROM heads ORDER BY first_id LIMIT ?", (limit,))
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
        """The etag guard is the first statement: a stale checkpoint is refused before it writes anything."""
        def write(db: sqlite3.Connection) -> int:
            etag = self._next_etag()
            row = _instance_row(cp.state, etag)
            if cp.etag is None:  # a new instance (a sub-orchestration's first episode): no row may exist
                try:
                    db.execute(_INSERT_INSTANCE, row)
                except sqlite3.IntegrityError as error:
                    if "UNIQUE" not in str(error):
                        raise
                    raise StaleCheckpointError(cp.instance_id) from None
            elif not db.execute(_UPDATE_INSTANCE, (*row, cp.etag)).rowcount:
                raise StaleCheckpointError(cp.instance_id)
            if cp.consumed:
                db.executemany("DELETE FROM messages WHERE id = ?", [(int(m.message_id),) for m in cp.consumed])
            self._append_history(db, cp, etag)
            for message in cp.messages:
                self._send(db, message)
            if cp.activities:
                db.executemany(
                    "INSERT INTO activities (instance_id, execution_id, task_id, name, input) VALUES (?, ?, ?, ?, ?)",
                    [(a.instance_id, a.execution_id, a.task_id, a.name, a.input) for a in cp.activities])
            if cp.canceled_timers:
                db.executemany("DELETE FROM messages WHERE instance_id = ? AND timer_id = ?",
                               [(cp.instance_id, timer_id) for timer_id in set(cp.canceled_timers)])
            for instance_id in {cp.instance_id, *(message.instance_id for message in cp.consumed)}:
                self._refresh_head(db, instance_id)
            return etag
        cp.state.etag = await self._write(write)

    # activities

    async def fetch_activities(self, limit: int) -> list[ActivityItem]:
        if limit <= 0 or not self._db.execute("SELECT 1 FROM activities WHERE leased = 0 LIMIT 1").fetchone():
            return []  # nothing to lease: no write transaction

        def write(db: sqlite3.Connection) -> list[Any]:
            rows = db.execute(f"SELECT {_ACTIVITY_COLUMNS} FROM activities WHERE leased = 0 ORDER BY id LIMIT ?",
                              (limit,)).fetchall()
            db.executemany("UPDATE activities SET leased = 1, dequeue_count = dequeue_count + 1 WHERE id = ?",
                           [(row[0],) for row in rows])
            return rows
        items = [_activity(row) for row in await self._write(write)]
        for item in items:
            item.dequeue_count += 1
        return items

    async def complete_activities(self, done: list[tuple[ActivityItem, Message]]) -> None:
        """One transaction; an item that no longer exists (purged, replaced) sends nothing."""
        def write(db: sqlite3.Connection) -> None:
            for item, result in done:
                if db.execute("DELETE FROM activities WHERE id = ?", (int(item.item_id),)).rowcount:
                    self._send(db, result)
        if done:
            await self._write(write)

    async def release_activity_leases(self) -> None:
        self._db.execute("UPDATE activities SET leased = 0 WHERE leased = 1")

    # internals: connection, group commit and schema

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"SqliteStore({str(self.path)!r}) is not open: await store.open() first")
        return self._conn

    def _disconnect(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._conn is not None:  # the last connection to close checkpoints the WAL and deletes it
            self._conn.close()
            self._conn = None
        self._meta_version = None

    async def _write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run `op` in a write transaction; return its result once committed (see the module docstring).

        `op` runs synchronously inside the transaction and must not touch the store's Python state
        except through `_next_etag` and the meta cache, which `_commit_queued` keeps consistent."""
        self._db  # noqa: B018 - a closed store raises here, not in the next loop turn
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._commit_queued)
        self._queued.append((op, future))
        return await future

    def _commit_queued(self) -> None:
        """Run the queued writes in one transaction, each in a savepoint when there are several; settle
        their futures after COMMIT. A failing COMMIT fails them all: nothing was written."""
        queued = [(op, future) for op, future in self._queued if not future.cancelled()]
        self._queued = []
        if not queued or self._conn is None:
            for _, future in queued:
                future.set_exception(RuntimeError(f"SqliteStore({str(self.path)!r}) was closed"))
            return
        outcomes: list[tuple[Any, BaseException | None]] = []
        try:
            with self._transaction() as db:
                self._sync_meta(db)
                if len(queued) == 1:
                    outcomes.append((queued[0][0](db), None))
                else:
                    outcomes.extend(self._in_savepoint(db, op) for op, _ in queued)
                if self._etag != self._stored_etag:
                    db.execute("UPDATE meta SET value = ? WHERE key = 'etag'", (self._etag,))
                    self._stored_etag = self._etag
            self._committed()
        except BaseException as error:  # rolled back: nothing was written
            self._meta_version = None
            for _, future in queued:
                if not future.done():
                    future.set_exception(error)
            if not isinstance(error, Exception):
                raise
            return
        for (_, future), (value, failure) in zip(queued, outcomes, strict=True):
            if future.done():
                continue
            if failure is not None:
                future.set_exception(failure)
            else:
                future.set_result(value)

    def _committed(self) -> None:
        self._commits += 1
        if self._commits % CHECKPOINT_EVERY == 0 and self._checkpointer is not None:
            self._checkpointer.poke()

    def _in_savepoint(self, db: sqlite3.Connection, op: Operation) -> tuple[Any, BaseException | None]:
        db.execute("SAVEPOINT op")
        try:
            value = op(db)
        except Exception as error:
            if not db.in_transaction:  # SQLite rolled the whole transaction back (I/O error, full disk)
                raise
            db.execute("ROLLBACK TO op")
            db.execute("RELEASE op")
            self._load_meta(db)  # the op may have moved the watermark before it failed
            return None, error
        db.execute("RELEASE op")
        return value, None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
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
        elif found[0] == 1:  # one event per history row: a one-event chunk; new chunks' seqs must follow
            db.execute("UPDATE meta SET value = MAX(value, (SELECT COALESCE(MAX(seq), 0) FROM history)) "
                       "WHERE key = 'etag'")
            db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION,))
        elif found[0] != SCHEMA_VERSION:
            raise SqliteStoreError(self.path, f"task hub schema version {found[0]} is not supported "
                                   f"(this funcemu reads version {SCHEMA_VERSION}); delete the file")

    # internals: the meta cache (etag counter, watermark)

    def _sync_meta(self, db: sqlite3.Connection) -> None:
        """Read the meta table again if another connection committed since it was read."""
        (version,) = db.execute("PRAGMA data_version").fetchone()
        if version != self._meta_version:
            self._load_meta(db)
            self._meta_version = version

    def _load_meta(self, db: sqlite3.Connection) -> None:
        values = dict(db.execute("SELECT key, value FROM meta").fetchall())
        self._stored_etag = values.get("etag") or 0
        self._etag = max(self._etag, self._stored_etag)  # a counter that never goes back
        self._watermark = values.get("watermark")

    def _next_etag(self) -> int:
        self._etag += 1
        return self._etag

    def _set_watermark(self, db: sqlite3.Connection, now: int) -> None:
        db.execute("UPDATE meta SET value = ? WHERE key = 'watermark'", (now,))
        self._watermark = now

    # internals: instances

    def _drop(self, db: sqlite3.Connection, instance_id: str) -> int:
        """Delete an instance with its history, messages and items; 1 if its status row existed."""
        existed = db.execute("DELETE FROM instances WHERE instance_id = ?", (instance_id,)).rowcount
        for table in ("history", "messages", "heads", "activities"):
            db.execute(f"DELETE FROM {table} WHERE instance_id = ?", (instance_id,))
        return existed

    def _append_history(self, db: sqlite3.Connection, cp: Checkpoint, etag: int) -> None:
        """One row for the checkpoint's events, `e1,e2,...`, at seq = its etag (after every earlier row)."""
        if cp.replace_history:
            db.execute("DELETE FROM history WHERE instance_id = ?", (cp.instance_id,))
        if cp.new_events:
            db.execute("INSERT INTO history (instance_id, seq, event) VALUES (?, ?, ?)",
                       (cp.instance_id, etag, _encode(cp.new_events)[1:-1]))

    # internals: messages and the ready index

    def _send(self, db: sqlite3.Connection, message: Message) -> None:
        visible = to_micros(message.visible_time) if message.visible_time is not None else None
        message_id = db.execute(
            "INSERT INTO messages (instance_id, execution_id, visible_us, timer_id, event) VALUES (?, ?, ?, ?, ?)",
            (message.instance_id, message.execution_id, visible, fired_timer_id(message.event),
             _encode(message.event))).lastrowid
        if visible is None or (self._watermark is not None and visible <= self._watermark):
            _upsert_head(db, message.instance_id, message_id)  # type: ignore[arg-type]

    def _must_promote(self, db: sqlite3.Connection, now: int) -> bool:
        """Whether `_promote` has anything to write: a clock reset, or a timer newly due."""
        self._sync_meta(db)
        watermark = self._watermark
        if watermark is not None and now < watermark:
            return True
        return db.execute("SELECT 1 FROM messages WHERE visible_us > ? AND visible_us <= ? LIMIT 1",
                          (watermark if watermark is not None else _MINUS_INFINITY, now)).fetchone() is not None

    def _promote(self, db: sqlite3.Connection, now: int) -> None:
        """Put instances whose timers became visible since the watermark into `heads`."""
        watermark = self._watermark
        if watermark is not None and now < watermark:
            self._rebuild_heads(db, now)
            return
        due = db.execute(
            "SELECT instance_id, MIN(id) FROM messages WHERE visible_us > ? AND visible_us <= ? "
            "GROUP BY instance_id", (watermark if watermark is not None else _MINUS_INFINITY, now)).fetchall()
        for instance_id, first in due:
            _upsert_head(db, instance_id, first)
        if due:
            self._set_watermark(db, now)

    def _rebuild_heads(self, db: sqlite3.Connection, now: int) -> None:
        """The clock went back: recompute `heads` for `now` (a scan of the messages, rare)."""
        db.execute("DELETE FROM heads")
        db.execute("INSERT INTO heads (instance_id, first_id) SELECT instance_id, MIN(id) FROM messages "
                   "WHERE visible_us IS NULL OR visible_us <= ? GROUP BY instance_id", (now,))
        self._set_watermark(db, now)

    def _refresh_head(self, db: sqlite3.Connection, instance_id: str) -> None:
        watermark = self._watermark if self._watermark is not None else _MINUS_INFINITY
        first = db.execute(
            "SELECT id FROM messages WHERE instance_id = ? AND (visible_us IS NULL OR visible_us <= ?) "
            "ORDER BY id LIMIT 1", (instance_id, watermark)).fetchone()
        if first:
            db.execute("INSERT OR REPLACE INTO heads (instance_id, first_id) VALUES (?, ?)", (instance_id, first[0]))
        else:
            db.execute("DELETE FROM heads WHERE instance_id = ?", (instance_id,))


class _Checkpointer:
    """Checkpoints the WAL on its own thread and connection when poked (and every few seconds).

    PASSIVE never waits for or blocks the loop thread's writer; sqlite3 releases the GIL while it copies
    pages and fsyncs, so the loop keeps running meanwhile. A failed checkpoint is logged and retried at
    the next poke: the WAL only grows meanwhile, no commit is at risk."""

    IDLE_SECONDS = 5.0

    def __init__(self, path: Path) -> None:
        self._path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # used by the thread only
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="funcemu-sqlite-checkpoint", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            while not self._stopping:
                self._wake.wait(self.IDLE_SECONDS)
                self._wake.clear()
                if self._stopping:
                    break
                try:
                    self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    log.warning("%s: WAL checkpoint failed; retrying later", self._path, exc_info=True)
        finally:
            self._db.close()


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
        clauses.append("instance_id > ?")  # the primary key: an index range, not a scan
        params.append(after)
    return " AND ".join(clauses), params


def _instance_row(state: InstanceState, etag: int) -> tuple[Any, ...]:
    return (state.instance_id, state.name, state.execution_id, state.runtime_status.value,
            to_micros(state.created_time), to_micros(state.last_updated_time), state.input, state.output,
            state.custom_status, state.parent_instance_id, state.version, etag)


def _instance(row: tuple[Any, ...]) -> InstanceState:
    return InstanceState(
        instance_id=row[0], name=row[1], execution_id=row[2], runtime_status=_STATUSES[row[3]],
        created_time=from_micros(row[4]), last_updated_time=from_micros(row[5]), input=row[6],
        output=row[7], custom_status=row[8], parent_instance_id=row[9], version=row[10], etag=row[11])


def _message(row: tuple[Any, ...]) -> Message:
    message_id, instance_id, execution_id, visible, event = row
    return Message(instance_id=instance_id, event=_decode(event), execution_id=execution_id,
                   visible_time=from_micros(visible) if visible is not None else None,
                   message_id=str(message_id))


def _activity(row: tuple[Any, ...]) -> ActivityItem:
    item_id, instance_id, execution_id, task_id, name, input, dequeue_count = row
    return ActivityItem(instance_id=instance_id, execution_id=execution_id, task_id=task_id, name=name,
                        input=input, item_id=str(item_id), dequeue_count=dequeue_count)
