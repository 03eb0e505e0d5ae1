/* One client connection: reading requests, a queue of frames to write, deferred close. */
#ifndef SSE_CONN_H
#define SSE_CONN_H

#include <ev.h>
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
 * Output is a ring of frame references: responses and events alike, so a frame
 * shared by many streams is never copied. qoff is how much of the first frame
 * has been written. A NULL entry is a hole: the place of an answer that another
 * thread is still preparing (a store commit or read); writing stops there until
 * conn_fill() puts the frames in, so answers leave in request order.
 */
typedef struct conn {
    struct worker *w;
    int fd;
    uint8_t state;
    uint8_t wait; /* enum conn_wait */
    bool close_after_write;
    bool write_blocked; /* a partial write happened: wait for the write watcher */
    bool tls_want_write; /* a TLS read needs the socket writable first (handshake) */
    ev_io rio, wio;
    list_node_t link;    /* worker->conns, then worker->closing */
    list_node_t pending; /* worker->pending while output waits */
    list_node_t timer;   /* one of the worker's timeout lists */
    ev_tstamp deadline;
    char *rbuf; /* request bytes; freed once the connection becomes a stream */
    uint32_t rlen, rcap;
    frame_t **q;
    uint32_t qhead, qlen, qcap, qoff;
    size_t qbytes;  /* bytes queued and not yet written */
    uint16_t holes; /* NULL entries in q */
    uint16_t async; /* requests in flight on other threads that will call conn_fill() */
    const transport_ops_t *tx;
    void *tls;      /* SSL *, when tx is TLS */
    sub_t *sub;     /* set for streams */
    struct replay *replay; /* set while a stream catches up from the history */
    struct stream_ticket *ticket; /* the stream's place under SSE_MAX_STREAMS_PER_USER */
    char ip[46];
} conn_t;

/** Takes ownership of an accepted non-blocking fd; tls is a new SSL * for it, or NULL. */
conn_t *conn_new(struct worker *w, int fd, const char *ip, void *tls);

/**
 * Queues a reference to f (the caller keeps its own) and schedules a write. For
 * streams, a queue that would pass SSE_MAX_QUEUE_BYTES drops the subscriber
 * instead (logged); returns false then.
 */
bool conn_send(conn_t *c, frame_t *f);

/**
 * Reserves the place of an answer another thread will produce: queues a hole and
 * counts a request in flight. The connection is not freed before conn_fill().
 */
void conn_hold(conn_t *c);

/**
 * Puts n frames (taking their references) in the first hole and ends one request
 * in flight. With keep_hole a new hole follows them (a history replay with more
 * pages). With end the connection closes after this output. On a connection that
 * closed meanwhile the frames are released, and the connection freed when this
 * was its last request in flight.
 */
void conn_fill(conn_t *c, frame_t **frames, size_t n, bool keep_hole, bool end);

/** Writes what is queued now; returns false when the connection was closed. */
bool conn_flush(conn_t *c);

/** Closes now (fd, hub membership); the struct is freed before the loop sleeps. */
void conn_close(conn_t *c, const char *why);

/** Finishes the connection after the queued output: half-close, drain input, close. */
void conn_end(conn_t *c);

/** Frees a closed connection. Only the worker calls this, outside any callback of c. */
void conn_free(conn_t *c);

/** Turns a connection into an event stream for sub (called by the events handler). */
void conn_begin_stream(conn_t *c, sub_t *sub);

/** Called once a second by the worker: handles connections whose deadline passed. */
void conn_sweep(struct worker *w, ev_tstamp now);

#endif
