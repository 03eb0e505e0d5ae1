/* The history store: every accepted event, kept durably, replayed by id, listed per user. */
#ifndef SSE_STORE_H
#define SSE_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

/** One stored event. Strings are never NULL ("" when the event has no type or user). */
typedef struct store_event {
    uint64_t id;
    int64_t time_ms; /* unix time in milliseconds, set by the store on append */
    const char *type;
    const char *user;
    const char *content;
    size_t content_len;
    const char *error; /* to a commit callback of a failed append: the store's reason
                          (SQLite's message, or Redis's error or broken link, one
                          line); NULL otherwise */
} store_event_t;

/**
 * Which events a reader sees, exactly as live delivery routes them: an event with a
 * user only when it is this user ("" matches no user event); an event without a user
 * when it has no type, or when ntypes is 0, or when its type is one of types. With
 * strict (a token that limits types): a typed event of any kind only when its type
 * is one of types.
 */
typedef struct store_filter {
    const char *user;
    const char *const *types;
    uint32_t ntypes;
    int strict; /* the types bind the user's events too, and 0 types means only untyped */
} store_filter_t;

/** oldest: smallest id still retained (0 when empty); latest: the last id ever given (0 if none). */
typedef struct store_bounds {
    uint64_t oldest, latest;
} store_bounds_t;

/**
 * The feed: called once for every event the store holds from its opening on, whoever
 * appended it (this process, or another node of a shared store), in id order, on one
 * thread of the store's, with ev valid only during the call. SQLite calls it on the
 * writer just before the event's commit callback; Redis on its feed thread once the
 * event is read back from the stream, so every node delivers the same events in the
 * same order. Live delivery hangs here.
 */
typedef void (*store_feed_fn)(void *arg, const store_event_t *ev);

typedef struct store_options {
    const char *path;      /* database file; its directory is created if missing */
    int64_t max_age_ms;    /* events older than this are trimmed (0 = no age limit) */
    uint64_t max_events;   /* at most this many are kept (0 = no count limit) */
    int64_t max_bytes;     /* database size cap; past it appends fail with SSE_EFULL (0 = none) */
    int sync_full;         /* fsync every commit (power-loss safe) instead of WAL's NORMAL */
    int trim_interval_ms;  /* how often the background trim runs */
    store_feed_fn feed;    /* NULL: no feed */
    void *feed_arg;
    /* Redis only: where the shared store is (store_redis_open). */
    const char *redis_host;
    int redis_port;
    int redis_db;
    int redis_min_replicas; /* acknowledge only once this many replicas hold a batch (WAIT) */
    /* Or the primary these sentinels name for redis_master (redis_host is then unused). */
    const char *const *redis_sentinel_hosts;
    const int *redis_sentinel_ports;
    int redis_nsentinels;
    const char *redis_master;
} store_options_t;

/**
 * Called on the store's writer thread once per appended event, in id order, after
 * the transaction holding it committed (err 0, ev->id and ev->time_ms set) or
 * failed (err SSE_EFULL when the disk or the size cap is full, SSE_EUNAVAIL when
 * Redis cannot be reached, SSE_ERR otherwise; ev->error says why; nothing of a failed
 * event is kept, but see store_redis_open). ev is valid only during the call.
 */
typedef void (*store_commit_fn)(void *arg, const store_event_t *ev, int err);

/**
 * How much one read may return, and how it is called off. A read stops before the
 * row that would take it past max_rows rows or past max_bytes bytes (type, user and
 * content of the rows returned, summed; 0 = no byte bound); the first matching row is
 * always returned, whatever its size, so a reader always makes progress. cancelled,
 * when not NULL, is read just before the read runs: non-zero means its requester has
 * gone, so the read is skipped and done gets SSE_ECANCELED with no rows.
 */
typedef struct store_read_opts {
    size_t max_rows;
    size_t max_bytes;
    const atomic_int *cancelled;
} store_read_opts_t;

/** What a read found: its rows (oldest first for replay, newest first for list). */
typedef struct store_page {
    const store_event_t *rows; /* valid only during the callback */
    size_t n;
    store_bounds_t bounds; /* at the time of the read, from the same snapshot as the rows */
    bool more; /* more rows matched after these: the read stopped at max_rows or max_bytes */
} store_page_t;

/**
 * Called on the store's reader thread (or, for reads still queued when the store
 * closes, on the closing thread) exactly once per accepted read, with err 0,
 * SSE_ERR (page holds no rows) or SSE_ECANCELED (skipped, no rows).
 */
typedef void (*store_rows_fn)(void *arg, const store_page_t *page, int err);

/** Reads waiting for the reader at most; past it replay() and list() answer SSE_EFULL. */
#define STORE_MAX_READS 4096

typedef struct store store_t;

/** Each backend fills one const table of these (store_sqlite_ops, store_redis_ops). */
typedef struct store_ops {
    const char *name;
    /**
     * Queues a copy of ev (its id and time are ignored: the store gives them).
     * Events that arrive while a commit runs are committed together in the next
     * transaction. Never blocks on disk. Returns 0, or SSE_ERR once closing.
     */
    int (*append)(store_t *st, const store_event_t *ev, store_commit_fn done, void *arg);
    /**
     * append() without waking the writer: events pile up until wake(). A worker
     * holds the publishes of one loop iteration and wakes the writer once before
     * it sleeps, so they share a commit, and their fan-out shares writes.
     */
    int (*append_held)(store_t *st, const store_event_t *ev, store_commit_fn done, void *arg);
    /** Wakes the writer for events queued by append_held() (cheap when none are). */
    void (*wake)(store_t *st);
    /**
     * Reads events with after < id <= upto that pass f, oldest first, within o's
     * limits, on the reader thread; done gets them. f and o are copied (not
     * o->cancelled, which must live until done). Returns 0, SSE_EFULL when
     * STORE_MAX_READS reads are already waiting, or SSE_ERR once closing or when o is
     * NULL or o->max_rows is 0; done is not called then.
     */
    int (*replay)(store_t *st, uint64_t after, uint64_t upto, const store_filter_t *f,
                  const store_read_opts_t *o, store_rows_fn done, void *arg);
    /**
     * Reads a user's notifications newest first: events passing f with id < before
     * (before 0 = no bound), within o's limits, on the reader thread. Returns as
     * replay() does.
     */
    int (*list)(store_t *st, const store_filter_t *f, uint64_t before, const store_read_opts_t *o,
                store_rows_fn done, void *arg);
    /** The current bounds, from memory (no disk access). */
    void (*bounds)(store_t *st, store_bounds_t *out);
    /**
     * Removes events older than now_ms - max_age_ms and beyond max_events, in small
     * transactions between appends. The writer thread also runs it by itself every
     * trim_interval_ms. Returns the number of events removed, or SSE_ERR.
     */
    long (*trim)(store_t *st, int64_t now_ms);
    /**
     * Refuses new work (append, replay and list then return SSE_ERR), commits what
     * is queued, lets the read that is running finish, stops the threads, and calls
     * done with SSE_ECANCELED, on the calling thread, for every read still waiting:
     * every done is called once. Idempotent; st stays valid until close(). Not from a
     * store callback.
     */
    void (*drain)(store_t *st);
    /** drain(), then closes the database and frees st. */
    void (*close)(store_t *st);
    /**
     * Whether an append made now can be kept: NULL when it can, else a short reason
     * ("stopping", "redis unreachable"). Safe on any thread, answered from memory.
     */
    const char *(*unready)(store_t *st);
    /**
     * Starts the feed with the events whose id is above after (the bounds' latest read
     * when the loops were set up, so nothing falls between the history and the feed).
     * Call once, before any append. SQLite's feed runs with its own commits and needs no
     * start; Redis starts its feed thread here.
     */
    void (*start_feed)(store_t *st, uint64_t after);
} store_ops_t;

/** Every backend's store begins with this, so callers need only the ops table. */
struct store {
    const store_ops_t *ops;
};

extern const store_ops_t store_sqlite_ops;
extern const store_ops_t store_redis_ops;

/**
 * Opens (creating if needed) the SQLite history at opt->path in WAL mode and starts
 * its writer and reader threads. A file that cannot be created, written or read as a
 * database fails with one line in err, and so does a database another store holds
 * (an exclusive flock() on "<path>.lock", kept until close()). Returns 0 with *out
 * set, or SSE_ERR.
 */
int store_sqlite_open(const store_options_t *opt, store_t **out, char err[SSE_ERR_LEN]);

/**
 * Connects to the Redis at opt->redis_host:redis_port (database redis_db), where every
 * node of a cluster keeps one history (a stream) and one id counter, and starts its
 * writer, reader and feed threads; the feed starts after the newest event Redis holds.
 * opt->path and max_bytes are not used. A Redis that cannot be reached, or that is
 * older than 7.0, fails with one line in err. Returns 0 with *out set, or SSE_ERR.
 *
 * While Redis is unreachable appends fail with SSE_EUNAVAIL (nothing of them is kept,
 * or, if Redis took one before the link broke, it is kept and delivered but refused
 * here), reads fail with SSE_ERR, and the feed reconnects and resumes after the last
 * event it delivered.
 */
int store_redis_open(const store_options_t *opt, store_t **out, char err[SSE_ERR_LEN]);

#endif
