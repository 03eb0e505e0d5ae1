/* Worker threads: each runs a libev loop that owns its connections, its shard and its timers. */
#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "conn_tls.h"
#include "forwarded.h"
#include "http1.h"
#include "log.h"
#include "netaddr.h"
#include "replay.h"
#include "respond.h"
#include "router.h"
#include "sse.h"
#include "store.h"

#define ACCEPTS_PER_WAKE 64
#define LISTEN_BACKLOG 4096

/* Writes "host:port" into out, with brackets around an IPv6 address. */
static void format_addr(char *out, size_t n, const char *host, int port)
{
    snprintf(out, n, strchr(host, ':') ? "[%s]:%d" : "%s:%d", host, port);
}

static int sockaddr_port(const struct sockaddr *sa)
{
    return ntohs(sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                           : ((const struct sockaddr_in *)sa)->sin_port);
}

static void sockaddr_set_port(struct sockaddr *sa, int port)
{
    if (sa->sa_family == AF_INET6)
        ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
}

/*
 * Checks that no other process listens on the address, and with port 0 picks the free
 * port the workers will share (*port is set to it). A reuseport group admits any socket
 * of the same user that also sets SO_REUSEPORT, so a second ssehub would silently get a
 * share of the connections; a socket bound without SO_REUSEPORT is refused with
 * EADDRINUSE while anyone listens there. SO_REUSEADDR keeps the connections of an earlier
 * run, in TIME_WAIT, from counting. The probe is closed before the workers bind: two
 * processes started within that instant could still both pass. Returns 0, or -1 with
 * one line in err.
 */
static int check_port_free(struct addrinfo *ai, const char *host, int *port,
                           char err[SSE_ERR_LEN])
{
    char addr[300];
    format_addr(addr, sizeof addr, host, *port);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen)) {
        if (errno == EADDRINUSE)
            snprintf(err, SSE_ERR_LEN, "SSE_PORT: another process is listening on %.128s "
                                       "(SSE_REUSE_PORT=1 shares the port on purpose)", addr);
        else
            snprintf(err, SSE_ERR_LEN, "SSE_PORT: cannot listen on %.128s: %s", addr,
                     strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (*port == 0 && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        *port = sockaddr_port((struct sockaddr *)&ss);
        sockaddr_set_port(ai->ai_addr, *port);
    }
    close(fd);
    return 0;
}

/*
 * Opens one worker's listening socket on host:port, in the reuseport group every worker
 * joins. With check, first makes sure no other process holds the port (check_port_free).
 * *port is updated with the real port when it was 0. Returns the socket, or -1 with one
 * line in err.
 */
static int open_listener(const char *host, int *port, bool check, char err[SSE_ERR_LEN])
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", *port);
    int rc = getaddrinfo(host, ps, &hints, &res);
    if (rc) {
        snprintf(err, SSE_ERR_LEN, "SSE_HOST: cannot use \"%s\": %s", host, gai_strerror(rc));
        return -1;
    }
    if (check && check_port_free(res, host, port, err)) {
        freeaddrinfo(res);
        return -1;
    }
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    }
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, LISTEN_BACKLOG)) {
        int e = errno;
        char addr[300];
        format_addr(addr, sizeof addr, host, *port);
        snprintf(err, SSE_ERR_LEN, "SSE_PORT: cannot listen on %.128s: %s", addr, strerror(e));
        if (fd >= 0) close(fd);
        freeaddrinfo(res);
        return -1;
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (*port == 0 && getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *port = sockaddr_port((struct sockaddr *)&ss);
    return fd;
}

static void peer_ip(int fd, char *out, size_t n)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    snprintf(out, n, "?");
    if (getpeername(fd, (struct sockaddr *)&ss, &sl)) return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, (socklen_t)n);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out, (socklen_t)n);
}

/*
 * Answers a connection we will not serve with a 503 and closes it, without
 * making it a connection: one best-effort write (a fresh socket's buffer takes it).
 */
static void refuse(int fd, const char *why)
{
    char body[128], msg[384];
    int bl = snprintf(body, sizeof body, "{\"error\":\"%s\"}", why);
    int n = snprintf(msg, sizeof msg,
                     "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s",
                     bl, body);
    ssize_t wr = write(fd, msg, (size_t)n);
    (void)wr;
    shutdown(fd, SHUT_WR);
    close(fd);
}

static void on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    worker_t *w = io->data;
    server_t *srv = w->srv;
    for (int i = 0; i < ACCEPTS_PER_WAKE; i++) {
        int fd = accept4(w->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) { /* retried by the next sweep */
                log_warn(srv->log, "accept paused: %s", strerror(errno));
                ev_io_stop(loop, io);
            }
            return;
        }
        if (atomic_fetch_add(&srv->nconns, 1) >= srv->max_conns) {
            atomic_fetch_sub(&srv->nconns, 1);
            refuse(fd, "too many connections, retry");
            log_warn(srv->log, "refused reason=max-connections limit=%d", srv->max_conns);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char ip[NETADDR_STR_LEN], key[NETADDR_KEY_LEN];
        peer_ip(fd, ip, sizeof ip);
        netaddr_key_of(ip, key);
        /* A trusted proxy carries many clients: each of its requests counts for the one it names. */
        netaddr_t pa;
        bool via_proxy = srv->cfg->proxies.n > 0 && netaddr_parse(ip, strlen(ip), &pa) == SSE_OK &&
                         netaddr_list_match(&srv->cfg->proxies, &pa);
        if (!via_proxy && !caps_ip_enter(&srv->caps, key)) {
            atomic_fetch_sub(&srv->nconns, 1);
            refuse(fd, "too many connections from here");
            log_warn(srv->log, "refused ip=%s reason=per-address-limit limit=%d", ip,
                     srv->caps.max_per_ip);
            continue;
        }
        SSL *ssl = NULL;
        if (srv->tls) {
            pthread_mutex_lock(&srv->tls_mu); /* SIGHUP may be swapping the context */
            ssl = tls_new(srv->tls_ctx, fd);
            pthread_mutex_unlock(&srv->tls_mu);
            if (!ssl) {
                close(fd);
                atomic_fetch_sub(&srv->nconns, 1);
                if (!via_proxy) caps_ip_leave(&srv->caps, key);
                log_error(srv->log, "tls: cannot create a session for ip=%s", ip);
                continue;
            }
        }
        conn_t *c = conn_new(&w->own, fd, ip, ssl);
        c->ip_counted = !via_proxy;
        c->via_proxy = via_proxy;
        if (via_proxy) c->proxy = pa;
    }
}

/*
 * A stop comes in two steps (server.h, STOP_*). First the worker stops accepting
 * and reading requests, but keeps its connections: the answers of requests already
 * taken (commits, reads, logins) are still on their way. Once main() has drained
 * the store and the login checks, every answer and every committed event's fan-out
 * is in the inbox, delivered before this second step ends each connection after
 * its output; what has not left after STOP_GRACE seconds is closed.
 */
static void begin_stop(worker_t *w)
{
    if (w->stopped) return;
    w->stopped = STOP_DRAIN;
    ev_io_stop(w->own.loop, &w->accept_w);
    close(w->listen_fd);
    w->listen_fd = -1;
    list_node_t *pos, *tmp;
    list_for_each_safe(pos, tmp, &w->own.conns)
    {
        conn_t *c = container_of(pos, conn_t, link);
        if (c->state == CONN_REQUEST) ev_io_stop(w->own.loop, &c->rio); /* no new requests */
    }
}

static void on_stop_grace(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    worker_t *w = t->data;
    list_node_t *pos, *tmp;
    list_for_each_safe(pos, tmp, &w->own.conns) conn_doom(container_of(pos, conn_t, link), CONN_WHY_STOPPING);
}

static void end_connections(worker_t *w)
{
    if (w->stopped == STOP_CLOSE) return;
    w->stopped = STOP_CLOSE;
    list_node_t *pos, *tmp;
    list_for_each_safe(pos, tmp, &w->own.conns) conn_end(container_of(pos, conn_t, link));
    ev_timer_stop(w->own.loop, &w->sweep_w);
    ev_timer_stop(w->own.loop, &w->heartbeat_w);
    ev_timer_init(&w->stop_w, on_stop_grace, STOP_GRACE, 0);
    w->stop_w.data = w;
    ev_timer_start(w->own.loop, &w->stop_w);
}

static void post(worker_t *w, const wmsg_t *m);

/* Closes the oldest stream of a user past SSE_MAX_STREAMS_PER_USER, if it is still open. */
static void kick(worker_t *w, stream_ticket_t *t, bool deliver)
{
    conn_t *c = deliver ? caps_ticket_conn(&w->srv->caps, t) : NULL;
    if (c && c->state == CONN_STREAM && !c->close_after_write) {
        char u[64];
        log_info(w->srv->log, "evict ip=%s user=%s reason=streams-per-user limit=%d", c->ip,
                 log_clean(t->user, u, sizeof u), w->srv->caps.max_per_user);
        conn_end(c);
    }
    caps_ticket_unref(t);
}

void worker_kick(worker_t *w, stream_ticket_t *t)
{
    if (w == NULL) return;
    post(w, &(wmsg_t){.kind = WMSG_KICK, .ticket = t});
}

static frame_t **fill_frames(wmsg_t *m)
{
    return m->n == 1 ? &m->frame : m->frames;
}

/* Runs one message; with deliver false (the worker is being freed) only releases it. */
static void handle(worker_t *w, wmsg_t *m, bool deliver)
{
    if (m->kind == WMSG_KICK) {
        kick(w, m->ticket, deliver);
        return;
    }
    if (m->kind == WMSG_FRAME) {
        if (deliver) {
            shard_publish(&w->sh, m->frame);
        }
        frame_unref(m->frame);
        return;
    }
    if (deliver) {
        conn_t *c = m->slot->c;
        bool page = m->flags & REPLAY_FILL_PAGE;
        bool end = m->flags & CONN_FILL_END;
        bool keep = m->flags & CONN_FILL_KEEP;
        /* A page decides with the stream's state whether more follow; a closed stream has none. */
        if (page && end) replay_stop(c);
        else if (page)
            keep = c->state != CONN_CLOSED && c->replay &&
                   replay_page_done(c, keep, m->flags & REPLAY_FILL_RESET, m->arg);
        bool answer = !page && c->state == CONN_REQUEST;
        conn_slot_fill(m->slot, fill_frames(m), m->n,
                       (keep ? CONN_FILL_KEEP : 0) | (end ? CONN_FILL_END : 0));
        /* A publisher's 201 leaves before the fan-out it caused, so its next event is
         * on its way while the subscribers' writes go out (and they batch up more). */
        if (answer) conn_flush(c);
    } else {
        for (uint32_t i = 0; i < m->n; i++) frame_unref(fill_frames(m)[i]);
    }
    if (m->n > 1) free(m->frames);
}

/* Takes every queued message out under the lock, then runs them without it. */
static void drain_inbox(worker_t *w, bool deliver)
{
    pthread_mutex_lock(&w->inbox_mu);
    wmsg_t *batch = w->inbox;
    size_t n = w->inbox_len;
    w->inbox = NULL;
    w->inbox_len = w->inbox_cap = 0;
    pthread_mutex_unlock(&w->inbox_mu);
    for (size_t i = 0; i < n; i++) handle(w, &batch[i], deliver);
    free(batch);
}

static void on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop, (void)revents;
    worker_t *w = a->data;
    /* The step is read before the inbox: main posts every answer and fan-out of the
     * store's drain before it sets STOP_CLOSE, so all of them are in this drain. */
    int stop = atomic_load(&w->srv->stopping);
    drain_inbox(w, true);
    if (stop >= STOP_DRAIN) begin_stop(w);
    if (stop >= STOP_CLOSE) end_connections(w);
}

/* Closes the connections marked for closing during this round. */
static void close_doomed(worker_t *w)
{
    while (!list_empty(&w->own.doomed)) {
        conn_t *c = container_of(w->own.doomed.next, conn_t, pending);
        conn_close(c, conn_why_name(c->doomed)); /* unlinks it from the list */
    }
}

/* Frees closed connections, except those another thread still owes an answer. */
static void free_closed(worker_t *w)
{
    list_node_t *pos, *tmp;
    list_for_each_safe(pos, tmp, &w->own.closing)
    {
        conn_t *c = container_of(pos, conn_t, link);
        if (c->async == 0) conn_free(c);
    }
}

/* Runs just before the loop sleeps: one pass of writes over every connection with output. */
static void on_prepare(struct ev_loop *loop, ev_prepare *p, int revents)
{
    (void)loop, (void)revents;
    worker_t *w = p->data;
    if (w->sh.store_held) { /* one writer wake-up for every publish of this round */
        w->sh.store_held = false;
        w->sh.store->ops->wake(w->sh.store);
    }
    list_node_t round;
    list_init(&round);
    /* Take the current list so connections re-queued for fairness wait for the next round. */
    if (!list_empty(&w->own.pending)) {
        round.next = w->own.pending.next;
        round.prev = w->own.pending.prev;
        round.next->prev = &round;
        round.prev->next = &round;
        list_init(&w->own.pending);
    }
    close_doomed(w);
    while (!list_empty(&round)) {
        conn_t *c = container_of(round.next, conn_t, pending);
        list_unlink(&c->pending);
        conn_flush(c);
    }
    close_doomed(w);
    free_closed(w);
    if (w->stopped == STOP_CLOSE && list_empty(&w->own.conns)) { /* every connection has ended */
        ev_timer_stop(w->own.loop, &w->stop_w);
        ev_async_stop(w->own.loop, &w->wake);
        ev_idle_stop(w->own.loop, &w->spin_w);
        ev_break(w->own.loop, EVBREAK_ALL);
        return;
    }
    /* Output left for fairness: an active idle watcher makes the loop poll without sleeping. */
    if (!list_empty(&w->own.pending) || w->own.fed) ev_idle_start(w->own.loop, &w->spin_w);
    else ev_idle_stop(w->own.loop, &w->spin_w);
    w->own.fed = false;
}

static void on_spin(struct ev_loop *loop, ev_idle *i, int revents)
{
    (void)loop, (void)i, (void)revents;
}

typedef struct expiry_scan {
    int64_t now, next;
    frame_t *notice;
    const log_t *log;
} expiry_scan_t;

/* Ends a stream whose token has expired with a token-expired event; tracks the next expiry. */
static void expire_one(sub_t *s, void *arg)
{
    expiry_scan_t *x = arg;
    conn_t *c = s->owner;
    if (s->exp <= 0 || c->close_after_write) return;
    if (s->exp <= x->now) {
        conn_send(c, x->notice);
        conn_end(c);
        log_info(x->log, "token-expired ip=%s", c->ip);
    } else if (x->next == 0 || s->exp < x->next) {
        x->next = s->exp;
    }
}

/* Scans the streams only when the earliest known expiry has come. */
static void expire_tokens(worker_t *w)
{
    int64_t now = (int64_t)time(NULL);
    if (w->api.next_expiry == 0 || now < w->api.next_expiry) return;
    /* Browsers drop events without data: the data line says why, so clients fetch a new token. */
    static const char text[] = "event: token-expired\ndata: {\"error\":\"token expired\"}\n\n";
    expiry_scan_t x = {.now = now, .next = 0, .notice = frame_new(text, sizeof text - 1),
                       .log = w->srv->log};
    hub_for_each(&w->sh.hub, expire_one, &x);
    frame_unref(x.notice);
    w->api.next_expiry = x.next;
}

static void on_sweep(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    worker_t *w = t->data;
    conn_sweep(&w->own, ev_now(loop));
    expire_tokens(w);
    if (!ev_is_active(&w->accept_w) && w->listen_fd >= 0) ev_io_start(loop, &w->accept_w);
}

static void ping_one(sub_t *s, void *arg)
{
    conn_t *c = s->owner;
    if (c->qlen == 0) conn_send(c, arg); /* a stream with output waiting needs no ping */
}

static void on_heartbeat(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop, (void)revents;
    worker_t *w = t->data;
    hub_for_each(&w->sh.hub, ping_one, w->ping);
}

/*
 * A request that came through a trusted proxy: its client is whom its
 * X-Forwarded-For or Forwarded header names, else the proxy itself. c->ip becomes
 * that address (for the logs and the login limits), and from now on the connection
 * counts under that client's key for SSE_MAX_CONNS_PER_IP, instead of the key of
 * its previous request, if that was another. Returns false when that client is at
 * its cap: the request was answered 503 and the connection ends, still counted
 * for its previous client until it closes.
 */
static bool take_client(conn_t *c, const http_request_t *req)
{
    server_t *srv = worker_of(c)->srv;
    netaddr_t a;
    int rc = forwarded_client(req, &srv->cfg->proxies, &a);
    if (rc != FORWARDED_CLIENT) a = c->proxy;
    char ip[NETADDR_STR_LEN], key[NETADDR_KEY_LEN], old[NETADDR_KEY_LEN];
    netaddr_format(&a, ip);
    netaddr_key(&a, key);
    if (rc < 0) log_debug(srv->log, "forwarded-ignored ip=%s reason=%s", ip, forwarded_error_name(rc));
    if (c->ip_counted) netaddr_key_of(c->ip, old);
    if (!c->ip_counted || strcmp(old, key) != 0) {
        if (!caps_ip_enter(&srv->caps, key)) {
            log_warn(srv->log, "refused ip=%s reason=per-address-limit limit=%d", ip, srv->caps.max_per_ip);
            reply_meta_t m;
            reply_meta_init(&m, srv->cfg, req);
            m.keep_alive = false;
            static const char body[] = "{\"error\":\"too many connections from here\"}";
            frame_t *f = response_frame(&m, 503, "application/json", body, sizeof body - 1,
                                        "Retry-After: 1\r\n");
            conn_send(c, f);
            frame_unref(f);
            conn_end(c);
            return false;
        }
        if (c->ip_counted) caps_ip_leave(&srv->caps, old);
        c->ip_counted = true;
    }
    memcpy(c->ip, ip, sizeof c->ip);
    return true;
}

/* Each request: first whom it comes from (through a trusted proxy), then its route. */
static void dispatch(conn_t *c, const http_request_t *req)
{
    if (c->via_proxy && !take_client(c, req)) return;
    router_dispatch(c, req);
}

/* The hooks that compose a connection with the layers above it: requests, replay, hub, caps. */
static void conn_readable(conn_t *c)
{
    if (worker_of(c)->stopped) { /* a stop takes no new request; answers already owed still go out */
        conn_watch_input(c, false);
        return;
    }
    http1_read(c, &worker_of(c)->lim, dispatch);
}

static void conn_slot_reached(conn_t *c, conn_slot_t *s)
{
    if (c->replay) replay_next(c, s); /* the client has read what came before this slot */
}

static void conn_closed(conn_t *c, const char *why)
{
    worker_t *w = worker_of(c);
    if (c->sub) {
        hub_remove(&w->sh.hub, c->sub);
        char u[64];
        log_info(w->srv->log, "disconnect ip=%s user=%s reason=%s", c->ip,
                 log_clean(c->sub->user, u, sizeof u), why);
    } else {
        log_debug(w->srv->log, "close ip=%s reason=%s", c->ip, why);
    }
    if (c->ip_counted) {
        char key[NETADDR_KEY_LEN];
        netaddr_key_of(c->ip, key);
        caps_ip_leave(&w->srv->caps, key);
        c->ip_counted = false;
    }
    caps_stream_close(&w->srv->caps, c->ticket);
    c->ticket = NULL;
    atomic_fetch_sub(&w->srv->nconns, 1);
}

static void conn_freed(conn_t *c)
{
    if (c->sub) sub_free(c->sub);
    replay_free(c->replay);
}

static void post_fill(conn_owner_t *o, conn_slot_t *slot, frame_t **frames, uint32_t n, int flags,
                      uint64_t arg);

/* What the endpoints ask of the process. */
static void api_kick(api_ctx_t *owner, stream_ticket_t *t)
{
    worker_kick(container_of(owner, worker_t, api), t);
}

static void api_request_stop(api_ctx_t *a)
{
    server_request_stop(container_of(a, worker_t, api)->srv);
}

static const api_ops_t worker_api_ops = {
    .kick = api_kick,
    .request_stop = api_request_stop,
};

static const conn_owner_ops_t worker_conn_ops = {
    .on_readable = conn_readable,
    .on_output = http1_update_reading,
    .on_head_timeout = http1_head_timeout,
    .on_slot_reached = conn_slot_reached,
    .on_close = conn_closed,
    .on_free = conn_freed,
    .post_fill = post_fill,
};

worker_t *worker_new(server_t *srv, int index, const char *host, int *port, char err[SSE_ERR_LEN])
{
    /* The first worker checks the port is ours alone, unless sharing it is asked for. */
    int fd = open_listener(host, port, index == 0 && !srv->cfg->reuse_port, err);
    if (fd < 0) return NULL;
    worker_t *w = xcalloc(1, sizeof *w);
    w->srv = srv;
    w->index = index;
    w->listen_fd = fd;
    w->own.loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    w->own.cfg = srv->cfg;
    w->own.log = srv->log;
    w->own.ops = &worker_conn_ops;
    w->own.max_queue_bytes = (size_t)srv->cfg->max_queue_bytes;
    if (!w->own.loop) {
        snprintf(err, SSE_ERR_LEN, "cannot create an event loop for worker %d", index);
        close(fd);
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->inbox_mu, NULL);
    shard_init(&w->sh, srv->store, &srv->bus, srv->cfg->retry_ms);
    w->api = (api_ctx_t){.cfg = srv->cfg, .log = srv->log, .sh = &w->sh, .ops = &worker_api_ops,
                         .caps = &srv->caps, .tls = srv->tls, .login_jobs = srv->login_jobs,
                         .login_dummy_hash = srv->login_dummy_hash,
                         .login_limit = srv->login_limit, .assets = srv->assets};
    conn_owner_init(&w->own);
    w->lim = (http_limits_t){.max_header_bytes = (size_t)srv->cfg->max_header_bytes,
                             .max_body_bytes = (size_t)srv->cfg->max_body_bytes};
    w->ping = sse_ping_frame();
    ev_io_init(&w->accept_w, on_accept, fd, EV_READ);
    ev_async_init(&w->wake, on_wake);
    ev_prepare_init(&w->flush_w, on_prepare);
    ev_idle_init(&w->spin_w, on_spin);
    ev_timer_init(&w->sweep_w, on_sweep, 1.0, 1.0);
    ev_timer_init(&w->heartbeat_w, on_heartbeat, srv->cfg->heartbeat, srv->cfg->heartbeat);
    w->accept_w.data = w->wake.data = w->flush_w.data = w->sweep_w.data = w->heartbeat_w.data = w;
    ev_io_start(w->own.loop, &w->accept_w);
    ev_async_start(w->own.loop, &w->wake);
    ev_prepare_start(w->own.loop, &w->flush_w);
    ev_timer_start(w->own.loop, &w->sweep_w);
    ev_timer_start(w->own.loop, &w->heartbeat_w);
    return w;
}

static void *run(void *arg)
{
    worker_t *w = arg;
    ev_run(w->own.loop, 0);
    return NULL;
}

int worker_start(worker_t *w)
{
    return pthread_create(&w->thread, NULL, run, w);
}

void worker_wake(worker_t *w)
{
    ev_async_send(w->own.loop, &w->wake);
}

static void post(worker_t *w, const wmsg_t *m)
{
    pthread_mutex_lock(&w->inbox_mu);
    if (w->inbox_len == w->inbox_cap) {
        w->inbox_cap = w->inbox_cap ? w->inbox_cap * 2 : 64;
        w->inbox = xrealloc(w->inbox, w->inbox_cap * sizeof *w->inbox);
    }
    w->inbox[w->inbox_len++] = *m;
    pthread_mutex_unlock(&w->inbox_mu);
    ev_async_send(w->own.loop, &w->wake); /* no syscall when a wake is already pending */
}

void worker_post(worker_t *w, frame_t *f)
{
    post(w, &(wmsg_t){.kind = WMSG_FRAME, .frame = f});
}

/* The connections' post_fill: the answers for a slot go through the inbox, in posting order. */
static void post_fill(conn_owner_t *o, conn_slot_t *slot, frame_t **frames, uint32_t n, int flags,
                      uint64_t arg)
{
    worker_t *w = container_of(o, worker_t, own);
    wmsg_t m = {.kind = WMSG_FILL, .slot = slot, .n = n, .flags = flags, .arg = arg};
    if (n == 1) {
        m.frame = frames[0];
    } else if (n > 1) {
        m.frames = xmalloc(n * sizeof *frames);
        memcpy(m.frames, frames, n * sizeof *frames);
    }
    post(w, &m);
}

void worker_join(worker_t *w)
{
    pthread_join(w->thread, NULL);
}

void worker_free(worker_t *w)
{
    drain_inbox(w, false);
    while (!list_empty(&w->own.closing)) conn_free(container_of(w->own.closing.next, conn_t, link));
    shard_free(&w->sh);
    frame_unref(w->ping);
    if (w->listen_fd >= 0) close(w->listen_fd);
    pthread_mutex_destroy(&w->inbox_mu);
    ev_loop_destroy(w->own.loop);
    free(w);
}
