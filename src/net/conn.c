/* Connections: non-blocking reads into a bounded buffer, a ring of frame refs out, deferred free. */
#include "conn.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common.h"
#include "conn_tls.h"
#include "hub.h"
#include "log.h"
#include "respond.h"
#include "replay.h"
#include "router.h"
#include "worker.h"

#define READ_CHUNK 4096
#define MAX_IOV 64
#define MAX_WRITE_PER_WAKE (256 * 1024) /* fairness between connections */
#define LINGER_SECONDS 2.0
#define READS_PER_WAKE 16 /* fairness: reads of one connection per wake-up */

static void on_read(struct ev_loop *loop, ev_io *w, int revents);
static void on_write(struct ev_loop *loop, ev_io *w, int revents);

/* The worker's timeout list for a kind of wait. */
static list_node_t *timer_list(conn_t *c, enum conn_wait kind)
{
    switch (kind) {
    case WAIT_HEAD: return &c->w->head_wait;
    case WAIT_IDLE: return &c->w->idle_wait;
    case WAIT_LINGER: return &c->w->linger;
    default: return NULL;
    }
}

/* Moves c to the tail of the timeout list for kind with a deadline secs from now. */
static void set_timer(conn_t *c, enum conn_wait kind, double secs)
{
    list_unlink(&c->timer);
    c->wait = (uint8_t)kind;
    list_node_t *list = timer_list(c, kind);
    if (!list) return;
    c->deadline = ev_now(c->w->loop) + secs;
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

const transport_ops_t conn_plain_ops = {
    .read = plain_read,
    .writev = plain_writev,
    .shutdown = plain_shutdown,
    .release = plain_release,
};

conn_t *conn_new(worker_t *w, int fd, const char *ip, void *tls)
{
    conn_t *c = xcalloc(1, sizeof *c);
    c->w = w;
    c->fd = fd;
    c->tls = tls;
    c->tx = tls ? &conn_tls_ops : &conn_plain_ops;
    c->state = CONN_REQUEST;
    snprintf(c->ip, sizeof c->ip, "%s", ip);
    ev_io_init(&c->rio, on_read, fd, EV_READ);
    ev_io_init(&c->wio, on_write, fd, EV_WRITE);
    c->rio.data = c->wio.data = c;
    list_push_back(&w->conns, &c->link);
    set_timer(c, WAIT_HEAD, w->srv->cfg->header_timeout);
    ev_io_start(w->loop, &c->rio);
    return c;
}

bool conn_alive(const conn_t *c)
{
    return !c->doomed && c->state != CONN_CLOSED && c->state != CONN_LINGER && !c->close_after_write;
}

void conn_doom(conn_t *c, const char *why)
{
    if (c->doomed || c->state == CONN_CLOSED) return;
    c->doomed = why;
    ev_io_stop(c->w->loop, &c->rio);
    ev_io_stop(c->w->loop, &c->wio);
    list_unlink(&c->pending);
    list_push_back(&c->w->doomed, &c->pending);
}

/* Starts or stops a watcher, never on a connection whose fd is going away. */
static void watch(conn_t *c, ev_io *io, bool on)
{
    if (on && !c->doomed && c->state != CONN_CLOSED) {
        if (!ev_is_active(io)) ev_io_start(c->w->loop, io);
    } else if (ev_is_active(io)) {
        ev_io_stop(c->w->loop, io);
    }
}

static void schedule_write(conn_t *c)
{
    if (!c->doomed && !list_linked(&c->pending) && !c->write_blocked)
        list_push_back(&c->w->pending, &c->pending);
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

/*
 * Whether the answers waiting on a request connection are over their bound. The
 * bound is in bytes (queued plus reserved) and in slots, so a client that pipelines
 * without reading is throttled: its requests stay unread in its socket.
 */
static bool answers_over(const conn_t *c)
{
    return c->parked || c->qbytes + c->reserved > CONN_ANSWER_BYTES || c->holes >= CONN_MAX_SLOTS;
}

void conn_park(conn_t *c)
{
    c->parked = true;
}

/*
 * Turns request reading on or off after output changed. When reading resumes with
 * requests already buffered, they are parsed on the next loop round (not here: the
 * caller may be in the middle of a write or a fill).
 */
static void update_reading(conn_t *c)
{
    if (c->state != CONN_REQUEST || !conn_alive(c)) return;
    bool over = answers_over(c);
    if (over == c->read_paused) return;
    c->read_paused = over;
    watch(c, &c->rio, !over);
    if (!over && c->hr && c->rlen > c->hr->parsed) ev_feed_event(c->w->loop, &c->rio, EV_READ);
    /* Paused, the client owes us reads, not a request: the idle deadline applies. */
    const config_t *cfg = c->w->srv->cfg;
    if (!over && c->hr && c->rlen > c->hr->start) set_timer(c, WAIT_HEAD, cfg->header_timeout);
    else set_timer(c, WAIT_IDLE, cfg->idle_timeout);
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
    c->reserved += reserve;
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
    if (flags & CONN_FILL_END) c->close_after_write = true;
    schedule_write(c);
    update_reading(c);
}

bool conn_send(conn_t *c, frame_t *f)
{
    /* Ending connections take nothing more: their last bytes are already queued. */
    if (!conn_alive(c)) return false;
    const server_t *srv = c->w->srv;
    size_t held = c->qbytes + c->reserved;
    if (c->state == CONN_STREAM && held > 0 && held + f->len > (size_t)srv->cfg->max_queue_bytes) {
        log_warn(srv->log, "drop ip=%s queued=%zu reason=slow-subscriber", c->ip, held);
        conn_doom(c, "slow subscriber");
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
    schedule_write(c);
}

/* All output is written: shut our side and drain what the peer still sends, so it reads our answer. */
static void begin_linger(conn_t *c)
{
    c->tx->shutdown(c);
    c->state = CONN_LINGER;
    free(c->rbuf);
    c->rbuf = NULL;
    c->rlen = c->rcap = 0;
    free(c->hr);
    c->hr = NULL;
    watch(c, &c->rio, true);
    set_timer(c, WAIT_LINGER, LINGER_SECONDS);
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
            conn_doom(c, "write error");
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
        if (c->replay) /* the client has read what came before this slot */
            replay_next(c, (conn_slot_t *)((uintptr_t)c->q[c->qhead] & ~(uintptr_t)1u));
        return !c->doomed;
    }
    if (c->qlen > 0) {
        if (budget == 0) { /* more to write but fair share used: come back next round */
            list_push_back(&c->w->pending, &c->pending);
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
    else if (c->parked) ev_feed_event(c->w->loop, &c->rio, EV_READ); /* its turn has come */
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
        ev_feed_event(c->w->loop, &c->rio, EV_READ);
    }
    conn_flush(c);
}

void conn_close(conn_t *c, const char *why)
{
    if (c->state == CONN_CLOSED) return;
    worker_t *w = c->w;
    if (c->sub) {
        hub_remove(&w->hub, c->sub);
        char u[64];
        log_info(w->srv->log, "disconnect ip=%s user=%s reason=%s", c->ip,
                 log_clean(c->sub->user, u, sizeof u), why);
    } else {
        log_debug(w->srv->log, "close ip=%s reason=%s", c->ip, why);
    }
    c->state = CONN_CLOSED;
    ev_io_stop(w->loop, &c->rio);
    ev_io_stop(w->loop, &c->wio);
    c->tx->release(c);
    close(c->fd);
    c->fd = -1;
    caps_ip_leave(&w->srv->caps, c->ip);
    caps_stream_close(&w->srv->caps, c->ticket);
    c->ticket = NULL;
    /* Work in flight for this connection may be skipped: nobody will read its answer. */
    for (uint32_t i = 0; i < c->qlen; i++) {
        frame_t *e = q_at(c, i);
        if (is_slot(e)) atomic_store(&((conn_slot_t *)((uintptr_t)e & ~(uintptr_t)1u))->cancelled, 1);
    }
    list_unlink(&c->pending);
    set_timer(c, WAIT_NONE, 0);
    list_remove(&c->link);
    list_push_back(&w->closing, &c->link);
    atomic_fetch_sub(&w->srv->nconns, 1);
}

void conn_free(conn_t *c)
{
    list_unlink(&c->link);
    while (c->qlen > 0) {
        frame_t *e = c->q[c->qhead];
        if (is_slot(e)) free((conn_slot_t *)((uintptr_t)e & ~(uintptr_t)1u));
        else frame_unref(e);
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qlen--;
    }
    free(c->q);
    free(c->rbuf);
    free(c->hr);
    if (c->sub) sub_free(c->sub);
    replay_free(c->replay);
    free(c);
}

bool conn_begin_stream(conn_t *c, sub_t *sub)
{
    worker_t *w = c->w;
    c->sub = sub; /* freed with the connection in any case */
    if (!conn_alive(c)) return false;
    c->state = CONN_STREAM;
    int sndbuf = w->srv->cfg->stream_sndbuf;
    if (sndbuf > 0) /* bounds what a stalled reader holds in the kernel, beyond our own queue */
        setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    free(c->rbuf); /* a stream reads nothing more: keep no buffer */
    c->rbuf = NULL;
    c->rlen = c->rcap = 0;
    free(c->hr);
    c->hr = NULL;
    c->read_paused = false;
    set_timer(c, WAIT_NONE, 0);
    hub_add(&w->hub, sub);
    if (!conn_send(c, w->retry)) return false;
    watch(c, &c->rio, true); /* only to see the client go */
    return true;
}

/* Parses and answers the requests in the buffer, in order, while answers are under
 * their bound; returns how many it answered. */
static int process_requests(conn_t *c)
{
    int handled = 0;
    if (c->parked) { /* a request waiting for the output before it */
        if (c->qlen > 0 || !conn_alive(c) || c->state != CONN_REQUEST) return 0;
        c->parked = false;
        http_request_t req;
        http_reader_request(c->hr, c->rbuf, &req);
        router_dispatch(c, &req);
        if (c->state != CONN_REQUEST || c->parked) return 1;
        http_reader_next(c->hr);
        handled++;
    }
    while (c->state == CONN_REQUEST && conn_alive(c) && !answers_over(c) && c->hr &&
           c->rlen > c->hr->parsed) {
        http_request_t req;
        int status;
        size_t len = c->rlen;
        int rc = http_reader_parse(c->hr, c->rbuf, &len, &req, &status);
        c->rlen = (uint32_t)len;
        if (rc == HTTP_NEED_MORE) break;
        if (rc == HTTP_ERROR) {
            log_info(c->w->srv->log, "bad-request ip=%s status=%d", c->ip, status);
            respond(c, NULL, status, NULL, NULL, 0, NULL);
            return handled;
        }
        router_dispatch(c, &req);
        handled++;
        if (c->state != CONN_REQUEST || c->parked) return handled; /* a stream, closed, or waiting */
        http_reader_next(c->hr);
    }
    return handled;
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
        conn_doom(c, n == 0 ? "client closed" : "read error");
        return;
    }
}

/*
 * Makes room to read into: first by dropping the requests already answered (one
 * move of what follows them, only when room is short), then by growing up to the
 * bound. The bound holds any request the limits allow, since a chunked body's
 * framing is dropped as it is parsed. Returns the room, 0 when the buffer is full.
 */
static size_t read_room(conn_t *c, size_t limit)
{
    if (!c->hr) {
        c->hr = xmalloc(sizeof *c->hr);
        http_reader_init(c->hr, &c->w->lim);
    }
    if (c->rcap - c->rlen >= READ_CHUNK / 2) return c->rcap - c->rlen;
    uint32_t start = c->hr->start;
    if (start > 0) {
        memmove(c->rbuf, c->rbuf + start, c->rlen - start);
        c->rlen -= start;
        http_reader_shift(c->hr, start);
        if (c->rcap - c->rlen >= READ_CHUNK / 2) return c->rcap - c->rlen;
    }
    if (c->rcap < limit) {
        size_t ncap = c->rcap ? (size_t)c->rcap * 2 : READ_CHUNK;
        if (ncap > limit) ncap = limit;
        c->rbuf = xrealloc(c->rbuf, ncap);
        c->rcap = (uint32_t)ncap;
    }
    return c->rcap - c->rlen;
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
    const config_t *cfg = c->w->srv->cfg;
    size_t limit = (size_t)cfg->max_header_bytes + (size_t)cfg->max_body_bytes + READ_CHUNK;
    int handled = process_requests(c); /* requests left in the buffer while reading was paused */
    for (int reads = 0; reads < READS_PER_WAKE && c->state == CONN_REQUEST && conn_alive(c) &&
                        !answers_over(c);
         reads++) {
        size_t room = read_room(c, limit);
        if (room == 0) { /* only a request over every limit fills it: the parser says which */
            respond(c, NULL, 431, NULL, NULL, 0, NULL);
            break;
        }
        ssize_t n = c->tx->read(c, c->rbuf + c->rlen, room);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n <= 0) {
            conn_doom(c, n == 0 ? "client closed" : "read error");
            return;
        }
        c->rlen += (uint32_t)n;
        handled += process_requests(c);
    }
    if (c->state != CONN_REQUEST || c->doomed) return;
    c->read_paused = false;
    update_reading(c); /* over the bound: stop reading until answers drain */
    bool buffered = c->hr && c->rlen > c->hr->start;
    if (c->close_after_write) {
        set_timer(c, WAIT_NONE, 0); /* the answer is on its way; lingering has its own deadline */
    } else if (!buffered && handled == 0) {
        /* No request bytes yet (a TLS handshake in progress): the deadline already running holds. */
    } else if (!buffered) {
        if (c->rcap > READ_CHUNK) { /* keep no big buffer for an idle client */
            free(c->rbuf);
            c->rbuf = NULL;
            c->rcap = 0;
        }
        c->rlen = 0; /* every request is answered: the next starts at the front */
        http_reader_init(c->hr, &c->w->lim);
        set_timer(c, WAIT_IDLE, cfg->idle_timeout);
    } else if (c->read_paused || c->parked) {
        /* update_reading() set the idle deadline: the client must read its answers */
    } else if (c->wait != WAIT_HEAD || handled > 0) {
        set_timer(c, WAIT_HEAD, cfg->header_timeout); /* a request has started */
    }
}

/* Closes or answers connections at the head of one timeout list whose deadline passed. */
static void sweep_list(list_node_t *list, ev_tstamp now)
{
    while (!list_empty(list)) {
        conn_t *c = container_of(list->next, conn_t, timer);
        if (c->deadline > now) break;
        enum conn_wait kind = c->wait;
        set_timer(c, WAIT_NONE, 0);
        if (kind == WAIT_HEAD && c->hr && c->rlen > c->hr->start && conn_alive(c)) {
            log_info(c->w->srv->log, "timeout ip=%s", c->ip);
            respond(c, NULL, 408, NULL, NULL, 0, NULL);
        } else {
            conn_doom(c, "timeout");
        }
    }
}

void conn_sweep(worker_t *w, ev_tstamp now)
{
    sweep_list(&w->head_wait, now);
    sweep_list(&w->idle_wait, now);
    sweep_list(&w->linger, now);
}
