/* Connections: the transport, a ring of frame refs out, slots, deferred close and free. */
#include "conn.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common.h"
#include "conn_tls.h"

#define MAX_IOV 64
#define MAX_WRITE_PER_WAKE (256 * 1024) /* fairness between connections */
#define LINGER_SECONDS 2.0

static void on_read(struct ev_loop *loop, ev_io *w, int revents);
static void on_write(struct ev_loop *loop, ev_io *w, int revents);

void conn_owner_init(conn_owner_t *o)
{
    list_init(&o->conns);
    list_init(&o->pending);
    list_init(&o->doomed);
    list_init(&o->closing);
    list_init(&o->head_wait);
    list_init(&o->idle_wait);
    list_init(&o->linger);
}

/* The owner's timeout list for a kind of wait. */
static list_node_t *timer_list(conn_t *c, enum conn_wait kind)
{
    switch (kind) {
    case WAIT_HEAD: return &c->own->head_wait;
    case WAIT_IDLE: return &c->own->idle_wait;
    case WAIT_LINGER: return &c->own->linger;
    default: return NULL;
    }
}

void conn_set_timer(conn_t *c, enum conn_wait kind, double secs)
{
    list_unlink(&c->timer);
    c->wait = (uint8_t)kind;
    list_node_t *list = timer_list(c, kind);
    if (!list) return;
    c->deadline = ev_now(c->own->loop) + secs;
    list_push_back(list, &c->timer);
}

static ssize_t plain_read(conn_t *c, void *buf, size_t n)
{
    return read(c->fd, buf, n);
}

static ssize_t plain_writev(conn_t *c, const struct iovec *iov, int n)
{
    return writev(c->fd, iov, n);
}

static void plain_shutdown(conn_t *c)
{
    shutdown(c->fd, SHUT_WR);
}

static void plain_release(conn_t *c)
{
    (void)c;
}

static size_t plain_pending(conn_t *c)
{
    (void)c;
    return 0;
}

const transport_ops_t conn_plain_ops = {
    .read = plain_read,
    .writev = plain_writev,
    .shutdown = plain_shutdown,
    .release = plain_release,
    .pending = plain_pending,
};

conn_t *conn_new(conn_owner_t *o, int fd, const char *ip, void *tls)
{
    conn_t *c = xcalloc(1, sizeof *c);
    c->own = o;
    c->fd = fd;
    c->tls = tls;
    c->tx = tls ? &conn_tls_ops : &conn_plain_ops;
    c->state = CONN_REQUEST;
    snprintf(c->ip, sizeof c->ip, "%s", ip);
    ev_io_init(&c->rio, on_read, fd, EV_READ);
    ev_io_init(&c->wio, on_write, fd, EV_WRITE);
    c->rio.data = c->wio.data = c;
    list_push_back(&o->conns, &c->link);
    conn_set_timer(c, WAIT_HEAD, o->cfg->header_timeout);
    ev_io_start(o->loop, &c->rio);
    return c;
}

bool conn_alive(const conn_t *c)
{
    return !c->doomed && c->state != CONN_CLOSED && c->state != CONN_LINGER && !c->close_after_write;
}

const char *conn_why_name(int why)
{
    static const char *const names[] = {
        [CONN_WHY_NONE] = "closed",           [CONN_WHY_SLOW] = "slow subscriber",
        [CONN_WHY_WRITE_ERROR] = "write error", [CONN_WHY_READ_ERROR] = "read error",
        [CONN_WHY_CLIENT_CLOSED] = "client closed", [CONN_WHY_TIMEOUT] = "timeout",
        [CONN_WHY_STOPPING] = "server stopping",
    };
    return why >= 0 && why < (int)ARRAY_LEN(names) ? names[why] : "closed";
}

void conn_doom(conn_t *c, enum conn_why why)
{
    if (c->doomed || c->state == CONN_CLOSED) return;
    c->doomed = (uint8_t)why; /* never CONN_WHY_NONE */
    ev_io_stop(c->own->loop, &c->rio);
    ev_io_stop(c->own->loop, &c->wio);
    list_unlink(&c->pending);
    list_push_back(&c->own->doomed, &c->pending);
}

/* Starts or stops a watcher, never on a connection whose fd is going away. */
static void watch(conn_t *c, ev_io *io, bool on)
{
    if (on && !c->doomed && c->state != CONN_CLOSED) {
        if (!ev_is_active(io)) ev_io_start(c->own->loop, io);
    } else if (ev_is_active(io)) {
        ev_io_stop(c->own->loop, io);
    }
}

void conn_watch_input(conn_t *c, bool on)
{
    watch(c, &c->rio, on);
}

/*
 * Runs the read callback on the next loop round: for requests already buffered
 * (in the reader's buffer or, with TLS, in the transport), which no socket event
 * announces. The owner polls without sleeping while such a round is due (fed).
 */
void conn_feed_input(conn_t *c)
{
    ev_feed_event(c->own->loop, &c->rio, EV_READ);
    c->own->fed = true;
}

/*
 * The connection will take no more requests: its answer is the last. Reading stops
 * (a client that keeps sending must not spin the loop) and the client has the idle
 * deadline to read what is left; lingering then has its own.
 */
static void stop_taking(conn_t *c)
{
    if (c->state != CONN_REQUEST) return;
    watch(c, &c->rio, false);
    conn_set_timer(c, WAIT_IDLE, c->own->cfg->idle_timeout);
}

static void schedule_write(conn_t *c)
{
    if (!c->doomed && !list_linked(&c->pending) && !c->write_blocked)
        list_push_back(&c->own->pending, &c->pending);
}

/* Slot entries in the ring are the slot's address with the low bit set. */
static frame_t *slot_entry(conn_slot_t *s)
{
    return (frame_t *)((uintptr_t)s | 1u);
}

static bool is_slot(const frame_t *e)
{
    return ((uintptr_t)e & 1u) != 0;
}

static conn_slot_t *slot_of(const frame_t *e)
{
    return (conn_slot_t *)((uintptr_t)e & ~(uintptr_t)1u);
}

static frame_t *q_at(const conn_t *c, uint32_t i)
{
    return c->q[(c->qhead + i) % c->qcap];
}

/* Makes room for at least need entries, keeping order; the ring starts at 0 after a move. */
static void q_reserve(conn_t *c, uint32_t need)
{
    if (need <= c->qcap) return;
    uint32_t ncap = c->qcap ? c->qcap : 4;
    while (ncap < need) ncap *= 2;
    frame_t **nq = xmalloc(ncap * sizeof *nq);
    for (uint32_t i = 0; i < c->qlen; i++) nq[i] = q_at(c, i);
    free(c->q);
    c->q = nq;
    c->qcap = ncap;
    c->qhead = 0;
}

/* Appends an entry: a new reference to a frame, or a slot's tag. */
static void q_push(conn_t *c, frame_t *e)
{
    q_reserve(c, c->qlen + 1);
    c->q[(c->qhead + c->qlen++) % c->qcap] = e;
    if (!is_slot(e)) c->qbytes += e->len;
}

void conn_park(conn_t *c)
{
    c->parked = true;
}

/* Output changed: on a live request connection, the reader may pause or resume reading. */
static void update_reading(conn_t *c)
{
    if (c->state == CONN_REQUEST && conn_alive(c)) c->own->ops->on_output(c);
}

conn_slot_t *conn_slot_open(conn_t *c, size_t reserve)
{
    conn_slot_t *s = xcalloc(1, sizeof *s);
    s->c = c;
    atomic_init(&s->cancelled, c->state == CONN_CLOSED || c->doomed);
    q_push(c, slot_entry(s));
    c->holes++;
    conn_slot_rearm(s, reserve);
    return s;
}

void conn_slot_rearm(conn_slot_t *s, size_t reserve)
{
    conn_t *c = s->c;
    s->reserve = (uint32_t)reserve;
    c->reserved += (uint32_t)reserve;
    c->async++;
    update_reading(c);
}

/* Frees a slot that no thread will fill any more; drops its entry if it is still queued. */
static void slot_free(conn_t *c, conn_slot_t *s, bool in_queue)
{
    if (in_queue) c->holes--;
    free(s);
}

void conn_slot_fill(conn_slot_t *s, frame_t **frames, size_t n, int flags)
{
    conn_t *c = s->c;
    bool keep = flags & CONN_FILL_KEEP;
    c->async--;
    c->reserved -= s->reserve;
    s->reserve = 0;
    if (c->state == CONN_CLOSED) { /* its queue is gone: conn_free() frees what is left */
        for (size_t i = 0; i < n; i++) frame_unref(frames[i]);
        return; /* the slot's entry is still queued: conn_free() frees it */
    }
    /* Rebuild the ring with the frames in place of the slot's entry. */
    frame_t *tag = slot_entry(s);
    uint32_t len = c->qlen - 1 + (uint32_t)n + (keep ? 1 : 0), cap = c->qcap;
    while (cap < len) cap *= 2;
    frame_t **nq = xmalloc(cap * sizeof *nq);
    uint32_t k = 0;
    for (uint32_t i = 0; i < c->qlen; i++) {
        frame_t *e = q_at(c, i);
        if (e != tag) {
            nq[k++] = e;
            continue;
        }
        for (size_t j = 0; j < n; j++) {
            nq[k++] = frames[j];
            c->qbytes += frames[j]->len;
        }
        if (keep) nq[k++] = tag;
    }
    free(c->q);
    c->q = nq;
    c->qcap = cap;
    c->qhead = 0;
    c->qlen = k;
    if (!keep) slot_free(c, s, true);
    if (flags & CONN_FILL_END) {
        c->close_after_write = true;
        stop_taking(c);
    }
    schedule_write(c);
    update_reading(c);
}

void conn_slot_post(conn_slot_t *s, frame_t **frames, uint32_t n, int flags, uint64_t arg)
{
    conn_owner_t *o = s->c->own; /* set once: the connection outlives its open slots */
    o->ops->post_fill(o, s, frames, n, flags, arg);
}

bool conn_send(conn_t *c, frame_t *f)
{
    /* Ending connections take nothing more: their last bytes are already queued. */
    if (!conn_alive(c)) return false;
    size_t held = c->qbytes + c->reserved;
    if (c->state == CONN_STREAM && held > 0 && held + f->len > c->own->max_queue_bytes) {
        log_warn(c->own->log, "drop ip=%s queued=%zu reason=slow-subscriber", c->ip, held);
        conn_doom(c, CONN_WHY_SLOW);
        return false;
    }
    q_push(c, frame_ref(f));
    schedule_write(c);
    return true;
}

void conn_end(conn_t *c)
{
    if (c->state == CONN_CLOSED || c->doomed) return;
    c->close_after_write = true;
    stop_taking(c);
    schedule_write(c);
}

/* The request reader's buffer and state: no more requests will be read. */
static void drop_input(conn_t *c)
{
    free(c->rbuf);
    c->rbuf = NULL;
    c->rlen = c->rcap = 0;
    free(c->hr);
    c->hr = NULL;
}

/* All output is written: shut our side and drain what the peer still sends, so it reads our answer. */
static void begin_linger(conn_t *c)
{
    c->tx->shutdown(c);
    c->state = CONN_LINGER;
    drop_input(c);
    watch(c, &c->rio, true);
    conn_set_timer(c, WAIT_LINGER, LINGER_SECONDS);
}

bool conn_flush(conn_t *c)
{
    if (c->doomed || c->state == CONN_CLOSED) return false;
    list_unlink(&c->pending);
    size_t budget = MAX_WRITE_PER_WAKE;
    while (c->qlen > 0 && budget > 0) {
        struct iovec iov[MAX_IOV];
        int n = 0;
        size_t total = 0;
        for (uint32_t i = 0; i < c->qlen && n < MAX_IOV && total < budget; i++) {
            frame_t *f = q_at(c, i);
            if (is_slot(f)) break; /* an answer still in preparation */
            size_t off = i == 0 ? c->qoff : 0;
            iov[n].iov_base = f->data + off;
            iov[n].iov_len = f->len - off;
            total += iov[n++].iov_len;
        }
        if (n == 0) break;
        ssize_t w = c->tx->writev(c, iov, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            conn_doom(c, CONN_WHY_WRITE_ERROR);
            return false;
        }
        budget = (size_t)w >= budget ? 0 : budget - (size_t)w;
        c->qbytes -= (size_t)w;
        size_t left = (size_t)w;
        while (left > 0) {
            frame_t *f = c->q[c->qhead];
            size_t rest = f->len - c->qoff;
            if (left < rest) {
                c->qoff += (uint32_t)left;
                break;
            }
            left -= rest;
            c->qoff = 0;
            c->qhead = (c->qhead + 1) % c->qcap;
            c->qlen--;
            frame_unref(f);
        }
        if ((size_t)w < total) break; /* the socket buffer is full */
    }
    update_reading(c);
    if (c->qlen > 0 && is_slot(c->q[c->qhead])) { /* waiting at a slot: nothing to write yet */
        if (c->write_blocked) {
            c->write_blocked = false;
            watch(c, &c->wio, false);
        }
        c->own->ops->on_slot_reached(c, slot_of(c->q[c->qhead]));
        return !c->doomed;
    }
    if (c->qlen > 0) {
        if (budget == 0) { /* more to write but fair share used: come back next round */
            list_push_back(&c->own->pending, &c->pending);
        } else if (!c->write_blocked) {
            c->write_blocked = true;
            watch(c, &c->wio, true);
        }
        return true;
    }
    if (c->write_blocked) {
        c->write_blocked = false;
        watch(c, &c->wio, false);
    }
    if (c->close_after_write && c->state != CONN_LINGER) begin_linger(c);
    else if (c->parked) conn_feed_input(c); /* its turn has come */
    return true;
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop, (void)revents;
    conn_t *c = w->data;
    c->write_blocked = false;
    watch(c, &c->wio, false);
    if (c->tls_want_write) { /* a TLS handshake waited to write: go on reading */
        c->tls_want_write = false;
        conn_feed_input(c);
    }
    conn_flush(c);
}

void conn_close(conn_t *c, const char *why)
{
    if (c->state == CONN_CLOSED) return;
    conn_owner_t *o = c->own;
    c->state = CONN_CLOSED;
    ev_io_stop(o->loop, &c->rio);
    ev_io_stop(o->loop, &c->wio);
    c->tx->release(c);
    close(c->fd);
    c->fd = -1;
    /* Work in flight for this connection may be skipped: nobody will read its answer. */
    for (uint32_t i = 0; i < c->qlen; i++) {
        frame_t *e = q_at(c, i);
        if (is_slot(e)) atomic_store(&slot_of(e)->cancelled, 1);
    }
    list_unlink(&c->pending);
    conn_set_timer(c, WAIT_NONE, 0);
    list_remove(&c->link);
    list_push_back(&o->closing, &c->link);
    o->ops->on_close(c, why);
}

void conn_free(conn_t *c)
{
    list_unlink(&c->link);
    while (c->qlen > 0) {
        frame_t *e = c->q[c->qhead];
        if (is_slot(e)) free(slot_of(e));
        else frame_unref(e);
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qlen--;
    }
    free(c->q);
    drop_input(c);
    c->own->ops->on_free(c);
    free(c);
}

bool conn_begin_stream(conn_t *c, frame_t *first)
{
    if (!conn_alive(c)) return false;
    c->state = CONN_STREAM;
    int sndbuf = c->own->cfg->stream_sndbuf;
    if (sndbuf > 0) /* bounds what a stalled reader holds in the kernel, beyond our own queue */
        setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    drop_input(c); /* a stream reads nothing more: keep no buffer */
    c->read_paused = false;
    conn_set_timer(c, WAIT_NONE, 0);
    if (!conn_send(c, first)) return false;
    watch(c, &c->rio, true); /* only to see the client go */
    return true;
}

/* Reads what a stream or a lingering connection sends: nothing useful, only EOF matters. */
static void drain(conn_t *c)
{
    char buf[512];
    for (;;) {
        ssize_t n = c->tx->read(c, buf, sizeof buf);
        if (n > 0) continue;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        conn_doom(c, n == 0 ? CONN_WHY_CLIENT_CLOSED : CONN_WHY_READ_ERROR);
        return;
    }
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop, (void)revents;
    conn_t *c = w->data;
    if (c->doomed || c->state == CONN_CLOSED) return;
    if (c->state != CONN_REQUEST) {
        drain(c);
        return;
    }
    c->own->ops->on_readable(c);
}

/* Closes or answers connections at the head of one timeout list whose deadline passed. */
static void sweep_list(list_node_t *list, ev_tstamp now)
{
    while (!list_empty(list)) {
        conn_t *c = container_of(list->next, conn_t, timer);
        if (c->deadline > now) break;
        enum conn_wait kind = c->wait;
        conn_set_timer(c, WAIT_NONE, 0);
        if (kind == WAIT_HEAD && conn_alive(c) && c->own->ops->on_head_timeout(c)) continue;
        conn_doom(c, CONN_WHY_TIMEOUT);
    }
}

void conn_sweep(conn_owner_t *o, ev_tstamp now)
{
    sweep_list(&o->head_wait, now);
    sweep_list(&o->idle_wait, now);
    sweep_list(&o->linger, now);
}
