/* One client connection: the transport, a queue of frames to write, slots, deferred close. */
#ifndef SSE_CONN_H
#define SSE_CONN_H

#include <ev.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "config.h"
#include "frame.h"
#include "list.h"
#include "log.h"
#include "netaddr.h"

enum conn_state {
    CONN_REQUEST, /* reading and answering requests (keep-alive) */
    CONN_STREAM,  /* an event stream: only output from now on */
    CONN_LINGER,  /* answered, write side shut, draining input before close */
    CONN_CLOSED,  /* fd closed; freed before the loop sleeps */
};

/** Which of the owner's timeout lists a connection waits in. */
enum conn_wait { WAIT_NONE, WAIT_HEAD, WAIT_IDLE, WAIT_LINGER };

struct conn;
struct conn_owner;
struct conn_slot;

/* What the layers above hang on a connection, opaque here: the request reader's state
 * (freed here with its buffer), a stream's sub and replay (freed by the owner's on_free). */
struct http_reader;
struct sub;
struct replay;
struct stream_ticket;

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
    /** Bytes the transport holds already read from the socket (TLS records), 0 for TCP. */
    size_t (*pending)(struct conn *c);
} transport_ops_t;

extern const transport_ops_t conn_plain_ops;

/**
 * What the owner of a loop's connections (the worker) does for them: the layers
 * above the transport, composed by the owner, so this one knows no request, route,
 * stream or hub. Every hook but post_fill runs on the connection's loop, and none
 * may free the connection.
 */
typedef struct conn_owner_ops {
    /** A request connection has bytes to read, or buffered requests to parse: answer them. */
    void (*on_readable)(struct conn *c);
    /**
     * The output of a live request connection changed (written, a slot opened or
     * filled): the reader pauses or resumes reading (the bound on waiting answers).
     */
    void (*on_output)(struct conn *c);
    /**
     * A live request connection's WAIT_HEAD deadline passed. Returns true when the
     * reader answered it (a request had begun: 408); false dooms it.
     */
    bool (*on_head_timeout)(struct conn *c);
    /** The writer stopped at slot s: everything queued before it is written. */
    void (*on_slot_reached)(struct conn *c, struct conn_slot *s);
    /** c has just closed (fd gone, on the closing list); why says how it ended. */
    void (*on_close)(struct conn *c, const char *why);
    /** c is about to be freed: the owner frees what it hung on it (sub, replay). */
    void (*on_free)(struct conn *c);
    /**
     * From any thread: hands the n frames (references taken; the array is the
     * caller's) for slot s to s's loop, which puts them in the slot's place
     * (conn_slot_fill with the CONN_FILL_KEEP and CONN_FILL_END bits of flags). Bits
     * from CONN_FILL_OWNER up, and arg, mean what the poster and the owner agree.
     */
    void (*post_fill)(struct conn_owner *o, struct conn_slot *s, frame_t **frames, uint32_t n,
                      int flags, uint64_t arg);
} conn_owner_ops_t;

/**
 * One loop's connections, as they see their owner: the loop, the settings, the
 * lists they link into and the owner's hooks. The owner embeds it and fills it
 * before its first connection; read-only afterwards but for the lists and fed.
 */
typedef struct conn_owner {
    struct ev_loop *loop;
    const config_t *cfg;
    const log_t *log;
    const conn_owner_ops_t *ops;
    size_t max_queue_bytes; /* cfg->max_queue_bytes: a stream's queue cap, read per send */
    list_node_t conns;      /* every open connection */
    list_node_t pending;    /* connections with output to write */
    list_node_t doomed;     /* connections to close before the loop sleeps */
    list_node_t closing;    /* closed connections, freed before the loop sleeps */
    list_node_t head_wait;  /* reading a request, oldest first */
    list_node_t idle_wait;  /* idle keep-alive, oldest first */
    list_node_t linger;     /* answered and half-closed, draining input */
    bool fed; /* an input handler was fed for the next round: the owner polls, not sleeps */
} conn_owner_t;

/** Starts the owner's lists; the caller sets every other field. */
void conn_owner_init(conn_owner_t *o);

/**
 * The place of an answer that another thread prepares (a store commit or read, a
 * password check): reserved in the output queue when the request is handled, so
 * answers leave in request order, and filled later on the connection's loop.
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
 * and returns false; its owner closes doomed connections before it sleeps, and
 * frees closed ones once no other thread owes them an answer.
 */
/** Why a connection was doomed (conn_why_name() gives the word the log uses). */
enum conn_why {
    CONN_WHY_NONE,
    CONN_WHY_SLOW,         /* its queue would pass its cap */
    CONN_WHY_WRITE_ERROR,
    CONN_WHY_READ_ERROR,
    CONN_WHY_CLIENT_CLOSED,
    CONN_WHY_TIMEOUT,
    CONN_WHY_STOPPING,
};

/** The log word for a conn_why. */
const char *conn_why_name(int why);

typedef struct conn {
    conn_owner_t *own;
    int fd;
    uint8_t state;
    uint8_t wait; /* enum conn_wait */
    bool close_after_write;
    bool write_blocked;  /* a partial write happened: wait for the write watcher */
    bool tls_want_write; /* a TLS read needs the socket writable first (handshake) */
    bool read_paused;    /* the reader stopped reading: too many answers wait */
    bool parked;         /* the reader waits for the output to be written before it reads on */
    bool last_request;   /* a request without keep-alive was taken: nothing after it is read */
    bool peer_closed;    /* the client half-closed: what it sent is answered, nothing more is read */
    uint8_t doomed;      /* why it must close (enum conn_why); closed by the owner before it sleeps */
    ev_io rio, wio;
    list_node_t link;    /* owner->conns, then owner->closing */
    list_node_t pending; /* owner->pending while output waits; owner->doomed once doomed */
    list_node_t timer;   /* one of the owner's timeout lists */
    ev_tstamp deadline;
    /* The request reader's (http1.c), both from malloc: freed here once requests end. */
    char *rbuf; /* request bytes; freed once the connection becomes a stream */
    uint32_t rlen, rcap;
    struct http_reader *hr; /* the parse of the request in rbuf; allocated with rbuf */
    frame_t **q;
    uint32_t qhead, qlen, qcap, qoff;
    size_t qbytes;     /* bytes queued and not yet written */
    uint32_t reserved; /* bytes reserved by open slots (each at most a queue cap) */
    uint16_t holes;    /* open slots in q */
    uint16_t async;    /* slots another thread still has to fill */
    const transport_ops_t *tx;
    void *tls;      /* SSL *, when tx is TLS */
    struct sub *sub;       /* set for streams */
    struct replay *replay; /* set while a stream catches up from the history */
    struct stream_ticket *ticket; /* the stream's place under SSE_MAX_STREAMS_PER_USER */
    /* The client's address: the peer's or, from a trusted proxy, the one its latest
     * request names. Per-address limits count it by its key (netaddr_key_of). */
    char ip[NETADDR_STR_LEN];
    bool ip_counted; /* ip's key is counted in the caps: the owner uncounts it on close */
    bool via_proxy;  /* the peer is a trusted proxy (SSE_TRUSTED_PROXIES): proxy */
    netaddr_t proxy; /* that proxy's address, the client when a request names none */
} conn_t;

/**
 * Takes ownership of an accepted non-blocking fd from the peer address ip; tls is
 * a new SSL * for it, or NULL. The owner sets ip_counted, via_proxy and proxy.
 */
conn_t *conn_new(conn_owner_t *o, int fd, const char *ip, void *tls);

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

/** CONN_FILL_OWNER and the bits above it are the poster's and the owner's (post_fill). */
enum { CONN_FILL_KEEP = 1, CONN_FILL_END = 2, CONN_FILL_OWNER = 16 };

/**
 * On the connection's loop: puts n frames (taking their references) in the
 * slot's place and releases its reservation. With CONN_FILL_KEEP the slot stays
 * after them (more to come, see conn_slot_rearm), else it is freed. With
 * CONN_FILL_END the connection closes after this output. On a connection that
 * closed meanwhile the frames are released.
 */
void conn_slot_fill(conn_slot_t *s, frame_t **frames, size_t n, int flags);

/**
 * From any thread: hands the answers for s to the connection's loop (the owner's
 * post_fill), which fills the slot there. frames holds n referenced frames, taken;
 * the array stays the caller's. flags: CONN_FILL_* bits, and the owner's own from
 * CONN_FILL_OWNER up, which arg goes with.
 */
void conn_slot_post(conn_slot_t *s, frame_t **frames, uint32_t n, int flags, uint64_t arg);

/**
 * Called by a handler that must not run before every earlier answer has been
 * written (an event stream starts on an empty queue): nothing more is read, and
 * the owner's on_readable runs again once the output is written.
 */
void conn_park(conn_t *c);

/** Writes what is queued now; returns false when the connection is doomed or closed. */
bool conn_flush(conn_t *c);

/** Marks c to be closed by its owner before it sleeps; idempotent. Stops its I/O now. */
void conn_doom(conn_t *c, enum conn_why why);

/** True while c may still take output (not doomed, closed or ending). */
bool conn_alive(const conn_t *c);

/** Closes now: the fd, then the owner's on_close. Only the owner calls it, outside c's callbacks. */
void conn_close(conn_t *c, const char *why);

/** Finishes the connection after the queued output: half-close, drain input, close. */
void conn_end(conn_t *c);

/** Frees a closed connection no thread owes an answer. Only the owner calls this. */
void conn_free(conn_t *c);

/**
 * Turns a request connection into an event stream whose output starts with first
 * (queued after what is already there). Returns false when the connection is
 * already ending, or first could not be queued.
 */
bool conn_begin_stream(conn_t *c, frame_t *first);

/** Moves c to the tail of the owner's timeout list for kind, due in secs (WAIT_NONE: none). */
void conn_set_timer(conn_t *c, enum conn_wait kind, double secs);

/** Starts or stops watching c for input (never on a connection that is doomed or closed). */
void conn_watch_input(conn_t *c, bool on);

/**
 * Makes the loop run c's input handler once more, even with no new bytes (requests
 * already buffered, which no socket event announces), and sets the owner's fed.
 */
void conn_feed_input(conn_t *c);

/** Called once a second by the owner: handles connections whose deadline passed. */
void conn_sweep(conn_owner_t *o, ev_tstamp now);

#endif
