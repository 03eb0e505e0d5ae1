/* The HTTP/1.1 request loop: bytes into a bounded buffer, parsed once each, answered in order. */
#include "http1.h"

#include <errno.h>
#include <string.h>

#include "common.h"
#include "log.h"
#include "respond.h"

#define READ_CHUNK 4096
#define READS_PER_WAKE 16 /* fairness: reads of one connection per wake-up */

/*
 * Whether the answers waiting on a request connection are over their bound. The
 * bound is in bytes (queued plus reserved) and in slots, so a client that pipelines
 * without reading is throttled: its requests stay unread in its socket.
 */
static bool answers_over(const conn_t *c)
{
    return c->parked || c->last_request || c->qbytes + c->reserved > HTTP1_ANSWER_BYTES ||
           c->holes >= HTTP1_MAX_SLOTS;
}

/* Whether request bytes wait that no socket event will announce. */
static bool bytes_buffered(conn_t *c)
{
    return (c->hr && c->rlen > c->hr->parsed) || c->tx->pending(c) > 0;
}

void http1_update_reading(conn_t *c)
{
    if (c->state != CONN_REQUEST || !conn_alive(c)) return;
    bool over = answers_over(c);
    if (over == c->read_paused) return;
    c->read_paused = over;
    conn_watch_input(c, !over && !c->peer_closed);
    if (!over && (bytes_buffered(c) || c->peer_closed)) conn_feed_input(c);
    /* Paused, the client owes us reads, not a request: the idle deadline applies. */
    const config_t *cfg = c->own->cfg;
    if (!over && c->hr && c->rlen > c->hr->start)
        conn_set_timer(c, WAIT_HEAD, cfg->header_timeout);
    else
        conn_set_timer(c, WAIT_IDLE, cfg->idle_timeout);
}

/* Parses and answers the requests in the buffer, in order, while answers are under
 * their bound; returns how many it answered. */
static int process_requests(conn_t *c, http1_dispatch_fn dispatch)
{
    int handled = 0;
    if (c->parked) { /* a request waiting for the output before it */
        if (c->qlen > 0 || !conn_alive(c) || c->state != CONN_REQUEST) return 0;
        c->parked = false;
        http_request_t req;
        http_reader_request(c->hr, c->rbuf, &req);
        dispatch(c, &req);
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
            log_info(c->own->log, "bad-request ip=%s status=%d", c->ip, status);
            respond(c, NULL, status, NULL, NULL, 0, NULL);
            return handled;
        }
        /* After a request that closes the connection nothing more is taken, even while
         * its answer is still being prepared elsewhere. */
        if (!req.keep_alive) c->last_request = true;
        dispatch(c, &req);
        handled++;
        if (c->state != CONN_REQUEST || c->parked) return handled; /* a stream, closed, or waiting */
        http_reader_next(c->hr);
    }
    return handled;
}

/*
 * Makes room to read into: first by dropping the requests already answered (one
 * move of what follows them, only when room is short), then by growing up to the
 * bound. The bound holds any request the limits allow, since a chunked body's
 * framing is dropped as it is parsed. Returns the room, 0 when the buffer is full.
 */
static size_t read_room(conn_t *c, size_t limit, const http_limits_t *lim)
{
    if (!c->hr) {
        c->hr = xmalloc(sizeof *c->hr);
        http_reader_init(c->hr, lim);
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

void http1_read(conn_t *c, const http_limits_t *lim, http1_dispatch_fn dispatch)
{
    if (!conn_alive(c)) { /* the last request was taken: no new one */
        conn_watch_input(c, false);
        return;
    }
    const config_t *cfg = c->own->cfg;
    size_t limit = (size_t)cfg->max_header_bytes + (size_t)cfg->max_body_bytes + READ_CHUNK;
    /* First the requests left in the buffer while reading was paused. */
    int handled = process_requests(c, dispatch);
    int reads = 0;
    for (; reads < READS_PER_WAKE && c->state == CONN_REQUEST && conn_alive(c) && !answers_over(c) &&
           !c->peer_closed;
         reads++) {
        size_t room = read_room(c, limit, lim);
        if (room == 0) { /* only a request over every limit fills it: the parser says which */
            respond(c, NULL, 431, NULL, NULL, 0, NULL);
            break;
        }
        ssize_t n = c->tx->read(c, c->rbuf + c->rlen, room);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        if (n < 0) {
            conn_doom(c, CONN_WHY_READ_ERROR);
            return;
        }
        if (n == 0) { /* a half-close: what it sent is still answered (scripts send, then shut) */
            c->peer_closed = true;
            conn_watch_input(c, false);
            break;
        }
        c->rlen += (uint32_t)n;
        handled += process_requests(c, dispatch);
    }
    if (c->state != CONN_REQUEST || c->doomed) return;
    if (c->peer_closed && !answers_over(c)) { /* every complete request it sent is taken */
        if (c->qlen == 0) conn_doom(c, CONN_WHY_CLIENT_CLOSED);
        else conn_end(c);
        return;
    }
    /* Reading follows the bound from here, whatever paused it before (a parked request
     * that was answered, say): on under it, off over it with the idle deadline. */
    c->read_paused = answers_over(c);
    conn_watch_input(c, !c->read_paused);
    if (c->read_paused) conn_set_timer(c, WAIT_IDLE, c->own->cfg->idle_timeout);
    if (reads == READS_PER_WAKE && !c->read_paused && c->tx->pending(c) > 0)
        conn_feed_input(c); /* TLS holds more already: no socket event will say so */
    bool buffered = c->hr && c->rlen > c->hr->start;
    if (c->close_after_write || c->peer_closed) {
        /* the last answer's deadline was set as c stopped taking requests, or the peer is gone */
    } else if (!buffered && handled == 0) {
        /* No request bytes yet (a TLS handshake in progress): the deadline already running holds. */
    } else if (!buffered) {
        if (c->rcap > READ_CHUNK) { /* keep no big buffer for an idle client */
            free(c->rbuf);
            c->rbuf = NULL;
            c->rcap = 0;
        }
        c->rlen = 0; /* every request is answered: the next starts at the front */
        http_reader_init(c->hr, lim);
        conn_set_timer(c, WAIT_IDLE, cfg->idle_timeout);
    } else if (c->read_paused || c->parked) {
        /* http1_update_reading() set the idle deadline: the client must read its answers */
    } else if (c->wait != WAIT_HEAD || handled > 0) {
        conn_set_timer(c, WAIT_HEAD, cfg->header_timeout); /* a request has started */
    }
}

bool http1_head_timeout(conn_t *c)
{
    if (!c->hr || c->rlen <= c->hr->start) return false; /* no request began: nothing to answer */
    log_info(c->own->log, "timeout ip=%s", c->ip);
    respond(c, NULL, 408, NULL, NULL, 0, NULL);
    return true;
}
