/* Connections: non-blocking reads into a bounded buffer, a ring of frame refs out, deferred free. */
#include "conn.h"

#include <errno.h>
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
#define PAUSE_READ_BYTES (256 * 1024) /* stop reading while this much output waits */
#define MAX_HOLES 64 /* answers in preparation per connection before reading pauses */

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

static void schedule_write(conn_t *c)
{
    if (!list_linked(&c->pending) && !c->write_blocked) list_push_back(&c->w->pending, &c->pending);
}

/* Makes room for at least need entries, keeping order; the ring starts at 0 after a move. */
static void q_reserve(conn_t *c, uint32_t need)
{
    if (need <= c->qcap) return;
    uint32_t ncap = c->qcap ? c->qcap : 4;
    while (ncap < need) ncap *= 2;
    frame_t **nq = xmalloc(ncap * sizeof *nq);
    for (uint32_t i = 0; i < c->qlen; i++) nq[i] = c->q[(c->qhead + i) % c->qcap];
    free(c->q);
    c->q = nq;
    c->qcap = ncap;
    c->qhead = 0;
}

/* Appends f (a new reference) or a hole (f NULL). */
static void q_push(conn_t *c, frame_t *f)
{
    q_reserve(c, c->qlen + 1);
    c->q[(c->qhead + c->qlen++) % c->qcap] = f ? frame_ref(f) : NULL;
    if (f) c->qbytes += f->len;
}

void conn_hold(conn_t *c)
{
    q_push(c, NULL);
    c->holes++;
    c->async++;
}

void conn_fill(conn_t *c, frame_t **frames, size_t n, bool keep_hole, bool end)
{
    c->async--;
    if (c->state == CONN_CLOSED) {
        for (size_t i = 0; i < n; i++) frame_unref(frames[i]);
        if (c->async == 0) conn_free(c);
        return;
    }
    /* Rebuild the ring with the frames in place of the first hole. */
    uint32_t extra = (uint32_t)n + (keep_hole ? 1 : 0);
    uint32_t len = c->qlen - 1 + extra, cap = c->qcap;
    while (cap < len) cap *= 2;
    frame_t **nq = xmalloc(cap * sizeof *nq);
    uint32_t k = 0;
    bool filled = false;
    for (uint32_t i = 0; i < c->qlen; i++) {
        frame_t *f = c->q[(c->qhead + i) % c->qcap];
        if (f || filled) {
            nq[k++] = f;
            continue;
        }
        filled = true;
        for (size_t j = 0; j < n; j++) {
            nq[k++] = frames[j];
            c->qbytes += frames[j]->len;
        }
        if (keep_hole) nq[k++] = NULL;
    }
    free(c->q);
    c->q = nq;
    c->qcap = cap;
    c->qhead = 0;
    c->qlen = k;
    if (!keep_hole) c->holes--;
    if (end) c->close_after_write = true;
    const server_t *srv = c->w->srv;
    if (c->state == CONN_STREAM && c->qbytes > (size_t)srv->cfg->max_queue_bytes) {
        log_warn(srv->log, "drop ip=%s queued=%zu reason=slow-subscriber", c->ip, c->qbytes);
        conn_close(c, "slow subscriber");
        return;
    }
    schedule_write(c);
    if (c->state == CONN_REQUEST && !c->close_after_write && c->rlen > 0)
        ev_feed_event(c->w->loop, &c->rio, EV_READ); /* requests waited for this answer */
}

bool conn_send(conn_t *c, frame_t *f)
{
    /* Ending connections take nothing more: their last bytes are already queued. */
    if (c->state == CONN_CLOSED || c->state == CONN_LINGER || c->close_after_write) return false;
    const server_t *srv = c->w->srv;
    if (c->state == CONN_STREAM && c->qbytes + f->len > (size_t)srv->cfg->max_queue_bytes) {
        log_warn(srv->log, "drop ip=%s queued=%zu reason=slow-subscriber", c->ip, c->qbytes);
        conn_close(c, "slow subscriber");
        return false;
    }
    q_push(c, f);
    schedule_write(c);
    return true;
}

void conn_end(conn_t *c)
{
    if (c->state == CONN_CLOSED) return;
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
    if (!ev_is_active(&c->rio)) ev_io_start(c->w->loop, &c->rio);
    set_timer(c, WAIT_LINGER, LINGER_SECONDS);
}

bool conn_flush(conn_t *c)
{
    list_unlink(&c->pending);
    size_t budget = MAX_WRITE_PER_WAKE;
    while (c->qlen > 0 && budget > 0) {
        struct iovec iov[MAX_IOV];
        int n = 0;
        size_t total = 0;
        for (uint32_t i = 0; i < c->qlen && n < MAX_IOV && total < budget; i++) {
            frame_t *f = c->q[(c->qhead + i) % c->qcap];
            if (!f) break; /* an answer still in preparation */
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
            conn_close(c, "write error");
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
    if (c->qlen > 0 && c->q[c->qhead] == NULL) { /* waiting at a hole: nothing to write yet */
        if (c->write_blocked) {
            c->write_blocked = false;
            ev_io_stop(c->w->loop, &c->wio);
        }
        if (c->replay) replay_next(c); /* the client has read the page before this hole */
        return c->state != CONN_CLOSED;
    }
    if (c->qlen > 0) {
        if (budget == 0) { /* more to write but fair share used: come back next round */
            list_push_back(&c->w->pending, &c->pending);
        } else if (!c->write_blocked) {
            c->write_blocked = true;
            ev_io_start(c->w->loop, &c->wio);
        }
        return true;
    }
    if (c->write_blocked) {
        c->write_blocked = false;
        ev_io_stop(c->w->loop, &c->wio);
    }
    if (c->close_after_write && c->state != CONN_LINGER) begin_linger(c);
    else if (c->state == CONN_REQUEST && !ev_is_active(&c->rio)) {
        ev_io_start(c->w->loop, &c->rio); /* reading was paused while answers piled up */
        ev_feed_event(c->w->loop, &c->rio, EV_READ); /* requests may already be buffered */
    }
    return true;
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop, (void)revents;
    conn_t *c = w->data;
    c->write_blocked = false;
    ev_io_stop(c->w->loop, &c->wio);
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
        if (c->q[c->qhead]) frame_unref(c->q[c->qhead]);
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qlen--;
    }
    free(c->q);
    free(c->rbuf);
    if (c->sub) sub_free(c->sub);
    replay_free(c->replay);
    free(c);
}

void conn_begin_stream(conn_t *c, sub_t *sub)
{
    worker_t *w = c->w;
    c->state = CONN_STREAM;
    c->sub = sub;
    int sndbuf = w->srv->cfg->stream_sndbuf;
    if (sndbuf > 0) /* bounds what a stalled reader holds in the kernel, beyond our own queue */
        setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    free(c->rbuf); /* a stream reads nothing more: keep no buffer */
    c->rbuf = NULL;
    c->rlen = c->rcap = 0;
    set_timer(c, WAIT_NONE, 0);
    hub_add(&w->hub, sub);
    conn_send(c, w->retry);
    if (!ev_is_active(&c->rio)) ev_io_start(w->loop, &c->rio);
}

/* Parses and answers every complete request in the buffer, in order; returns how many. */
static int process_requests(conn_t *c)
{
    int handled = 0;
    const config_t *cfg = c->w->srv->cfg;
    http_limits_t lim = {.max_header_bytes = (size_t)cfg->max_header_bytes,
                         .max_body_bytes = (size_t)cfg->max_body_bytes};
    while (c->state == CONN_REQUEST && !c->close_after_write && c->rlen > 0 &&
           c->holes < MAX_HOLES) {
        http_request_t req;
        int status;
        int used = http_parse_request(c->rbuf, c->rlen, &lim, &req, &status);
        if (used == HTTP_NEED_MORE) break;
        if (used == HTTP_ERROR) {
            log_info(c->w->srv->log, "bad-request ip=%s status=%d", c->ip, status);
            respond(c, NULL, status, NULL, NULL, 0, NULL);
            return handled;
        }
        router_dispatch(c, &req);
        handled++;
        if (c->state != CONN_REQUEST) return handled; /* a stream, or closed */
        memmove(c->rbuf, c->rbuf + used, c->rlen - (uint32_t)used);
        c->rlen -= (uint32_t)used;
        if (c->qbytes > PAUSE_READ_BYTES) { /* the client is not reading its answers */
            ev_io_stop(c->w->loop, &c->rio);
            break;
        }
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
        conn_close(c, n == 0 ? "client closed" : "read error");
        return;
    }
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop, (void)revents;
    conn_t *c = w->data;
    if (c->state != CONN_REQUEST) {
        drain(c);
        return;
    }
    const config_t *cfg = c->w->srv->cfg;
    size_t limit = (size_t)cfg->max_header_bytes + (size_t)cfg->max_body_bytes + 1024;
    for (;;) {
        if (c->rcap - c->rlen < READ_CHUNK / 2) {
            if (c->rcap >= limit) break; /* full: the parser decides 413/431 */
            size_t ncap = c->rcap ? (size_t)c->rcap * 2 : READ_CHUNK;
            if (ncap > limit) ncap = limit;
            c->rbuf = xrealloc(c->rbuf, ncap);
            c->rcap = (uint32_t)ncap;
        }
        ssize_t n = c->tx->read(c, c->rbuf + c->rlen, c->rcap - c->rlen);
        if (n > 0) {
            c->rlen += (uint32_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        conn_close(c, n == 0 ? "client closed" : "read error");
        return;
    }
    int handled = process_requests(c);
    if (c->state != CONN_REQUEST) return;
    if (c->close_after_write) {
        set_timer(c, WAIT_NONE, 0); /* the answer is on its way; lingering has its own deadline */
    } else if (c->rlen == 0 && handled == 0) {
        /* No request bytes yet (a TLS handshake in progress): the deadline already running holds. */
    } else if (c->rlen == 0) {
        if (c->rcap > READ_CHUNK) { /* keep no big buffer for an idle client */
            free(c->rbuf);
            c->rbuf = NULL;
            c->rcap = 0;
        }
        set_timer(c, WAIT_IDLE, cfg->idle_timeout);
    } else if (c->rlen >= limit) {
        respond(c, NULL, 431, NULL, NULL, 0, NULL);
    } else if (c->wait != WAIT_HEAD) {
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
        if (kind == WAIT_HEAD && c->rlen > 0) {
            log_info(c->w->srv->log, "timeout ip=%s", c->ip);
            respond(c, NULL, 408, NULL, NULL, 0, NULL);
        } else {
            conn_close(c, "timeout");
        }
    }
}

void conn_sweep(worker_t *w, ev_tstamp now)
{
    sweep_list(&w->head_wait, now);
    sweep_list(&w->idle_wait, now);
    sweep_list(&w->linger, now);
}
