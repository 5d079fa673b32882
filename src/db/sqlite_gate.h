/*
 * sqlite_gate.h — one writer at a time per SQLite file in this process, in
 * arrival order, without anyone polling; and a checkpointer thread per file.
 *
 * Why: SQLite has one write lock per database file. Loop threads must not
 * sleep in its busy handler (the whole loop would stall), and retrying on a
 * timer (what db.c did first) costs a timer tick per attempt and starves
 * under load. So every writer of this process first takes the file's gate:
 * a FIFO that hands ownership directly from the leaving writer to the next
 * one. A coroutine waits by yielding (coro_wait_remote; the leaving writer
 * may be on another loop thread); any other thread (job runner, CLI) waits
 * on a condition variable. With the gate held, SQLite's own lock is free
 * unless another process writes, which db.c still handles by retrying.
 *
 * The gate is recursive for its holder (a coroutine, or a plain thread):
 * a statement inside the holder's transaction does not wait for itself.
 * A loop thread outside any coroutine never waits here (sq_gate_enter
 * returns false: it falls back to SQLite's lock) — it could otherwise wait
 * for a coroutine of its own loop.
 *
 * Checkpoints: connections report the WAL size after each commit
 * (sq_gate_wal); past SQ_CHECKPOINT_PAGES the gate's thread runs a PASSIVE
 * checkpoint on its own connection, so no request pays for one (SQLite's
 * automatic checkpoint runs inside the committing statement).
 */
#ifndef TEMEL_DB_SQLITE_GATE_H
#define TEMEL_DB_SQLITE_GATE_H

#include <stdbool.h>
#include <stdint.h>

#define SQ_CHECKPOINT_PAGES 1000

struct sq_gate;

/* The gate of the file at path (shared by every connection of this
 * process that opens it; reference counted). Never NULL. */
struct sq_gate *sq_gate_get(const char *path);
/* Drop a reference; the last one stops the checkpointer. */
void sq_gate_put(struct sq_gate *g);

/* Wait for this caller's turn (see above). false: not taken (a loop thread
 * outside a coroutine); then do not call sq_gate_leave. */
bool sq_gate_enter(struct sq_gate *g);
void sq_gate_leave(struct sq_gate *g);

/* A commit left `pages` frames in the WAL (sqlite3_wal_hook). false: no
 * checkpointer for this file (in-memory, or its thread could not start):
 * the caller checkpoints itself, as SQLite's automatic checkpoint would. */
bool sq_gate_wal(struct sq_gate *g, int pages);

/* Counters for tests: hand-offs to a waiting writer, checkpoints run. */
struct sq_gate_stats {
    uint64_t entered, waited, checkpoints;
};
struct sq_gate_stats sq_gate_stats(struct sq_gate *g);

#endif
