/* One client connection: reading requests, a queue of frames to write, deferred close. */
#ifndef SSE_CONN_H
#define SSE_CONN_H

#include <ev.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "frame.h"
#include "http.h"
#include "list.h"
#include "sub.h"

struct worker;

enum conn_state {
    CONN_REQUEST, /* reading and answering requests (keep-alive) */
    CONN_STREAM,  /* an event stream: only output from now on */
    CONN_LINGER,  /* answered, write side shut, draining input before close */
    CONN_CLOSED,  /* fd closed; freed before the loop sleeps */
};

/** Which of the worker's timeout lists a connection waits in. */
enum conn_wait { WAIT_NONE, WAIT_HEAD, WAIT_IDLE, WAIT_LINGER };

struct replay;
struct conn;

/**
 * How bytes move on a connection: plain TCP (conn_plain_ops) or TLS (conn_tls_ops).
 * read and writev behave like read(2) and writev(2): -1 with errno EAGAIN when
 * they must wait for the socket.
 */
typedef struct transport_ops {
    ssize_t (*read)(struct conn *c, void *buf, size_t n);
    ssize_t (*writev)(struct conn *c, const struct iovec *iov, int n);
    /** Ends our side cleanly (TLS close_notify, then FIN). */
    void (*shutdown)(struct conn *c);
    /** Frees the transport's state; the fd is closed by the caller. */
    void (*release)(struct conn *c);
} transport_ops_t;

extern const transport_ops_t conn_plain_ops;

/**
 * The place of an answer that another thread prepares (a store commit or read, a
 * password check): reserved in the output queue when the request is handled, so
 * answers leave in request order, and filled later on the connection's worker.
 * reserve counts toward the connection's output bound until the slot is filled.
 * cancelled becomes non-zero when the connection closes, so the other thread may
 * skip work nobody will read; the slot itself stays valid until it is filled.
 */
typedef struct conn_slot {
    struct conn *c;
    uint32_t reserve;
    atomic_int cancelled;
} conn_slot_t;

/**
 * Output is a ring of frame references: responses and events alike, so a frame
 * shared by many streams is never copied. qoff is how much of the first frame
 * has been written. A slot's entry (its pointer tagged with the low bit) is the
 * place of an answer still in preparation; writing stops there until it is filled.
 *
 * Lifecycle: nothing closes or frees a connection under its caller. A function
 * that finds a connection must end (slow subscriber, write error) marks it doomed
 * and returns false; its worker closes doomed connections before it sleeps, and
 * frees closed ones once no other thread owes them an answer.
 */
typedef struct conn {
    struct worker *w;
    int fd;
    uint8_t state;
    uint8_t wait; /* enum conn_wait */
    bool close_after_write;
    bool write_blocked;  /* a partial write happened: wait for the write watcher */
    bool tls_want_write; /* a TLS read needs the socket writable first (handshake) */
    bool read_paused;    /* answers waiting are over their bound: requests are not read */
    bool parked;         /* the parsed request waits for the output before it to be written */
    const char *doomed;  /* why it must close; closed by the worker before it sleeps */
    ev_io rio, wio;
    list_node_t link;    /* worker->conns, then worker->closing */
    list_node_t pending; /* worker->pending while output waits; worker->doomed once doomed */
    list_node_t timer;   /* one of the worker's timeout lists */
    ev_tstamp deadline;
    char *rbuf; /* request bytes; freed once the connection becomes a stream */
    uint32_t rlen, rcap;
    http_reader_t *hr; /* the parse of the request in rbuf; allocated with rbuf */
    frame_t **q;
    uint32_t qhead, qlen, qcap, qoff;
    size_t qbytes;   /* bytes queued and not yet written */
    size_t reserved; /* bytes reserved by open slots */
    uint16_t holes;  /* open slots in q */
    uint16_t async;  /* slots another thread still has to fill */
    const transport_ops_t *tx;
    void *tls;      /* SSL *, when tx is TLS */
    sub_t *sub;     /* set for streams */
    struct replay *replay; /* set while a stream catches up from the history */
    struct stream_ticket *ticket; /* the stream's place under SSE_MAX_STREAMS_PER_USER */
    char ip[46];
} conn_t;

/** Answers waiting on a request connection, in bytes, past which its requests are not read. */
#define CONN_ANSWER_BYTES (256 * 1024)
/** Answers in preparation on one connection at most; past it its requests are not read. */
#define CONN_MAX_SLOTS 16

/** Takes ownership of an accepted non-blocking fd; tls is a new SSL * for it, or NULL. */
conn_t *conn_new(struct worker *w, int fd, const char *ip, void *tls);

/**
 * Queues a reference to f (the caller keeps its own) and schedules a write.
 * Returns false when nothing was queued: the connection is ending, or it is a
 * stream whose queue would pass SSE_MAX_QUEUE_BYTES (counting the room reserved
 * for a replay page), which dooms it as a slow subscriber. A frame always fits an
 * empty queue, so one large event cannot shut out every stream.
 */
bool conn_send(conn_t *c, frame_t *f);

/**
 * Opens a slot for an answer another thread will produce, reserving reserve bytes
 * of the output bound. The connection is not freed before the slot is filled.
 */
conn_slot_t *conn_slot_open(conn_t *c, size_t reserve);

/** Reopens a slot kept by CONN_FILL_KEEP (a replay's next page), reserving reserve bytes. */
void conn_slot_rearm(conn_slot_t *s, size_t reserve);

enum { CONN_FILL_KEEP = 1, CONN_FILL_END = 2 };

/**
 * On the connection's worker: puts n frames (taking their references) in the
 * slot's place and releases its reservation. With CONN_FILL_KEEP the slot stays
 * after them (more to come, see conn_slot_rearm), else it is freed. With
 * CONN_FILL_END the connection closes after this output. On a connection that
 * closed meanwhile the frames are released.
 */
void conn_slot_fill(conn_slot_t *s, frame_t **frames, size_t n, int flags);

/**
 * Called by a handler that must not run before every earlier answer has been
 * written (an event stream starts on an empty queue): the request is handed to
 * the router again once the output is written, and nothing more is read meanwhile.
 */
void conn_park(conn_t *c);

/** Writes what is queued now; returns false when the connection is doomed or closed. */
bool conn_flush(conn_t *c);

/** Marks c to be closed by its worker before it sleeps; idempotent. Stops its I/O now. */
void conn_doom(conn_t *c, const char *why);

/** True while c may still take output (not doomed, closed or ending). */
bool conn_alive(const conn_t *c);

/** Closes now (fd, hub membership). Only the worker calls this, outside callbacks of c. */
void conn_close(conn_t *c, const char *why);

/** Finishes the connection after the queued output: half-close, drain input, close. */
void conn_end(conn_t *c);

/** Frees a closed connection no thread owes an answer. Only the worker calls this. */
void conn_free(conn_t *c);

/**
 * Turns a connection into an event stream for sub (called by the events handler).
 * Returns false when the connection is already ending (sub is then not in the hub
 * and is freed with the connection).
 */
bool conn_begin_stream(conn_t *c, sub_t *sub);

/** Called once a second by the worker: handles connections whose deadline passed. */
void conn_sweep(struct worker *w, ev_tstamp now);

#endif
