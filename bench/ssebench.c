/*
 * ssebench: load tool for ssehub (and its raw fan-out ceiling).
 *
 * Modes (see usage()):
 *   sub   hold N EventSource streams, parse SSE, measure delivery latency
 *   pub   keep-alive POST /broadcast, fixed rate or as fast as accepted
 *   raw   trivial SSE server: one write() of a pre-encoded frame per stream
 *   load  one benchmark cell: forks sub processes, publishes from the
 *         parent, samples the server's RSS and CPU, prints key=value results
 *   freeport  print a free loopback TCP port
 *
 * Latency: the publisher puts CLOCK_MONOTONIC nanoseconds (send time) at the
 * start of each event's content; subscribers on the same machine subtract it
 * from their receive time. Every loop here is bounded in time and count.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define MAX_SUB_PROCS 16
#define LINE_KEEP 64 /* bytes of an SSE line we keep: enough for id/ts */
#define MAX_EVENTS_EPOLL 1024

/* ------------------------------------------------------------------ */
/* utilities                                                          */
/* ------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ssebench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

/* Raise the open-file soft limit to the hard limit; return the new limit. */
static long raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 1024;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
    return (long)rl.rlim_cur;
}

static void set_linger0(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
}

static void set_nodelay(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static volatile sig_atomic_t g_stop;
static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Case-insensitive search for needle in the first n bytes of hay. */
static const char *memcasestr(const char *hay, size_t n, const char *needle)
{
    size_t m = strlen(needle);
    for (size_t i = 0; i + m <= n; i++)
        if (strncasecmp(hay + i, needle, m) == 0)
            return hay + i;
    return NULL;
}

static const char *find_head_end(const char *buf, size_t n)
{
    const char *p = memmem(buf, n, "\r\n\r\n", 4);
    return p ? p + 4 : NULL;
}

/* Content-Length of a head, or 0. */
static size_t head_content_length(const char *head, size_t n)
{
    const char *p = memcasestr(head, n, "\ncontent-length:");
    if (!p)
        return 0;
    return (size_t)strtoull(p + 16, NULL, 10);
}

/* ------------------------------------------------------------------ */
/* latency histogram: log-linear, 32 sub-buckets per power of two     */
/* ------------------------------------------------------------------ */

#define H_SUB 32
#define H_BUCKETS (64 + 42 * H_SUB)

struct hist {
    uint64_t n, max, sum;
    uint64_t b[H_BUCKETS];
};

static unsigned hist_index(uint64_t v)
{
    if (v < 64)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 6 */
    unsigned m = (unsigned)(v >> (e - 5)) & (H_SUB - 1);
    unsigned idx = 64 + (e - 6) * H_SUB + m;
    return idx < H_BUCKETS ? idx : H_BUCKETS - 1;
}

static uint64_t hist_value(unsigned idx)
{
    if (idx < 64)
        return idx;
    unsigned e = (idx - 64) / H_SUB + 6;
    uint64_t m = (idx - 64) % H_SUB;
    uint64_t lo = (1ull << e) + (m << (e - 5));
    return lo + (1ull << (e - 5)) / 2;
}

static void hist_add(struct hist *h, uint64_t v)
{
    h->n++;
    h->sum += v;
    if (v > h->max)
        h->max = v;
    h->b[hist_index(v)]++;
}

static void hist_merge(struct hist *d, const struct hist *s)
{
    d->n += s->n;
    d->sum += s->sum;
    if (s->max > d->max)
        d->max = s->max;
    for (unsigned i = 0; i < H_BUCKETS; i++)
        d->b[i] += s->b[i];
}

static uint64_t hist_pct(const struct hist *h, double p)
{
    if (h->n == 0)
        return 0;
    uint64_t want = (uint64_t)(p * (double)h->n + 0.999999);
    if (want < 1)
        want = 1;
    uint64_t acc = 0;
    for (unsigned i = 0; i < H_BUCKETS; i++) {
        acc += h->b[i];
        if (acc >= want) {
            uint64_t v = hist_value(i);
            return v > h->max ? h->max : v;
        }
    }
    return h->max;
}

/* ------------------------------------------------------------------ */
/* base64 and blocking login                                          */
/* ------------------------------------------------------------------ */

static void base64_std(const char *in, size_t n, char *out)
{
    static const char t[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)(unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (uint32_t)(unsigned char)in[i + 2];
        out[o++] = t[(v >> 18) & 63];
        out[o++] = t[(v >> 12) & 63];
        out[o++] = i + 1 < n ? t[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? t[v & 63] : '=';
    }
    out[o] = 0;
}

static int connect_blocking(const char *host, int port, int timeout_s)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    set_linger0(fd);
    struct timeval tv = {.tv_sec = timeout_s, .tv_usec = 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Copy the JSON string value of "key" from json into out (no unescaping
 * beyond \" and \\). Returns length or -1. */
static int json_get_string(const char *json, size_t n, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = memmem(json, n, pat, strlen(pat));
    if (!p)
        return -1;
    const char *end = json + n;
    p += strlen(pat);
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    if (p >= end || *p != ':')
        return -1;
    p++;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    if (p >= end || *p != '"')
        return -1;
    p++;
    size_t o = 0;
    while (p < end && *p != '"') {
        char c = *p++;
        if (c == '\\' && p < end) {
            c = *p++;
            switch (c) {
            case 'n': c = '\n'; break;
            case 'r': c = '\r'; break;
            case 't': c = '\t'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u':
                c = '?';
                for (int k = 0; k < 4 && p < end; k++)
                    p++;
                break;
            default: break;
            }
        }
        if (o + 1 < cap)
            out[o++] = c;
    }
    if (p >= end)
        return -1;
    out[o] = 0;
    return (int)o;
}

/* POST /login with user:pass; fills jwt. Returns 0 or -1. */
static int do_login(const char *host, int port, const char *userpass, char *jwt, size_t cap)
{
    char user[256], pass[256];
    const char *colon = strchr(userpass, ':');
    if (!colon || (size_t)(colon - userpass) >= sizeof user)
        return -1;
    memcpy(user, userpass, (size_t)(colon - userpass));
    user[colon - userpass] = 0;
    snprintf(pass, sizeof pass, "%s", colon + 1);
    char body[700];
    int bl = snprintf(body, sizeof body,
                      "{\"username\":\"%s\",\"password\":\"%s\",\"id\":\"bench\"}", user, pass);
    char req[1024];
    int rl = snprintf(req, sizeof req,
                      "POST /login HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                      host, port, bl, body);
    for (int attempt = 0; attempt < 3; attempt++) {
        int fd = connect_blocking(host, port, 5);
        if (fd < 0) {
            usleep(200000);
            continue;
        }
        if (write(fd, req, (size_t)rl) != rl) {
            close(fd);
            continue;
        }
        char resp[16384];
        size_t got = 0;
        for (int i = 0; i < 1000 && got < sizeof resp - 1; i++) {
            ssize_t r = read(fd, resp + got, sizeof resp - 1 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
            const char *he = find_head_end(resp, got);
            if (he && (size_t)(he - resp) + head_content_length(resp, got) <= got)
                break;
        }
        close(fd);
        resp[got] = 0;
        if (got < 12 || strncmp(resp + 9, "200", 3) != 0) {
            fprintf(stderr, "ssebench: login failed: %.40s\n", resp);
            return -1;
        }
        const char *he = find_head_end(resp, got);
        if (!he)
            return -1;
        if (json_get_string(he, got - (size_t)(he - resp), "token", jwt, cap) < 0)
            return -1;
        return 0;
    }
    return -1;
}

/* Read a field from /proc/PID/status in kB, or -1. */
static long proc_status_kb(int pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t fl = strlen(field);
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, field, fl) == 0 && line[fl] == ':') {
            v = strtol(line + fl + 1, NULL, 10);
            break;
        }
    }
    fclose(f);
    return v;
}

/* CPU time of a process in ns: utime+stime from /proc/PID/stat (covers
 * exited threads, 10 ms ticks), refined by the sum of per-thread
 * schedstat run times (ns) when that is larger-resolution consistent. */
static uint64_t proc_cpu_ns(int pid)
{
    char path[64];
    uint64_t sched = 0;
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        int guard = 0;
        while ((e = readdir(d)) && guard++ < 4096) {
            if (e->d_name[0] == '.')
                continue;
            char p2[320];
            snprintf(p2, sizeof p2, "/proc/%d/task/%s/schedstat", pid, e->d_name);
            FILE *f = fopen(p2, "r");
            if (!f)
                continue;
            unsigned long long run = 0;
            if (fscanf(f, "%llu", &run) == 1)
                sched += run;
            fclose(f);
        }
        closedir(d);
    }
    if (sched)
        return sched;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    unsigned long long ut = 0, st = 0;
    /* after ") " : state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return 0;
    return (ut + st) * (1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK));
}

/* ------------------------------------------------------------------ */
/* configuration                                                       */
/* ------------------------------------------------------------------ */

struct cfg {
    char host[64];
    int port;
    /* sub */
    long n;
    int src_addrs;
    int src_offset;
    char type[64];
    char token_b64[4096]; /* value for ?token= (already base64 of JSON) */
    char bearer[2048];    /* JWT for Authorization: Bearer */
    char sub_login[256];
    char auth_mode[16]; /* query | bearer */
    int window;
    double connect_timeout;
    double duration;
    double drain;
    uint64_t expect;
    double hold;
    int slow_pct; /* this percentage of streams stops reading once connected */
    char last_event_id[24]; /* sent as Last-Event-ID: the stream starts with a history replay */
    /* pub */
    char pub_login[256];
    char pub_bearer[2048];
    int conns;
    int depth;
    long count;
    double rate;
    int size;
    /* load */
    int procs;
    int server_pid;
    int quiet;
};

static void cfg_defaults(struct cfg *c)
{
    memset(c, 0, sizeof *c);
    snprintf(c->host, sizeof c->host, "127.0.0.1");
    c->port = 8080;
    c->n = 100;
    c->src_addrs = 4;
    snprintf(c->auth_mode, sizeof c->auth_mode, "query");
    c->window = 256;
    c->connect_timeout = 60;
    c->duration = 120;
    c->drain = 5;
    c->conns = 1;
    c->depth = 1;
    c->count = 1000;
    c->size = 64;
    c->procs = 0;
}

/* ------------------------------------------------------------------ */
/* shared results (MAP_SHARED between load parent and sub children)   */
/* ------------------------------------------------------------------ */

struct sub_result {
    int ready;        /* connect phase over */
    int finished;     /* sub loop ended */
    uint64_t target, connected, failed, dropped;
    uint64_t slow, slow_dropped; /* streams that never read (--slow-pct), and those the server closed */
    uint64_t deliveries, unique, dups, missing, conns_missing, comments, bad_status;
    uint64_t first_rx_ns, last_rx_ns, ready_ns, start_ns;
    struct hist lat;
};

struct pub_result {
    uint64_t sent, ok, st2xx, st4xx, st5xx, stother, errors, reconnects;
    uint64_t start_ns, end_ns, last_ok_ns;
    struct hist rtt;
};

struct shared {
    int pub_done;
    int stop;
    uint64_t expect;
    uint64_t pub_done_ns;
    struct sub_result subs[MAX_SUB_PROCS];
    struct pub_result pub;
};

static struct shared *g_sh; /* NULL in standalone modes */

static int sh_get(const int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static void sh_set(int *p, int v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

/* ------------------------------------------------------------------ */
/* sub mode                                                            */
/* ------------------------------------------------------------------ */

enum { S_IDLE, S_CONNECTING, S_HEAD, S_STREAM, S_CLOSED, S_FAILED, S_SLOW };

struct sconn {
    int fd;
    uint8_t state, tries, head_match, st_len;
    uint8_t cr, has_data, has_id, ovf;
    uint16_t llen;
    char st[13];
    uint64_t last_id, cur_id, cur_ts, started_ns;
    uint64_t got;
    char line[LINE_KEEP];
};

static uint64_t parse_u64(const char *s, size_t n)
{
    uint64_t v = 0;
    size_t i = 0;
    while (i < n && s[i] == ' ')
        i++;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++)
        v = v * 10 + (uint64_t)(s[i] - '0');
    return v;
}

static void sub_line(struct sconn *c, struct sub_result *r, uint64_t now)
{
    const char *l = c->line;
    size_t n = c->llen;
    if (n == 0 && !c->ovf) {
        if (c->has_data) {
            r->deliveries++;
            if (c->has_id && c->last_id && c->cur_id <= c->last_id) {
                r->dups++;
            } else {
                if (c->has_id)
                    c->last_id = c->cur_id;
                c->got++;
                r->unique++;
            }
            if (c->cur_ts && now >= c->cur_ts)
                hist_add(&r->lat, now - c->cur_ts);
            if (!r->first_rx_ns)
                r->first_rx_ns = now;
            r->last_rx_ns = now;
        }
        c->has_data = c->has_id = 0;
        c->cur_ts = 0;
        return;
    }
    if (n > 0 && l[0] == ':') {
        r->comments++;
        return;
    }
    if (n >= 5 && memcmp(l, "data:", 5) == 0) {
        if (!c->has_data) {
            c->has_data = 1;
            c->cur_ts = parse_u64(l + 5, n - 5);
        }
    } else if (n == 4 && memcmp(l, "data", 4) == 0) {
        c->has_data = 1;
    } else if (n >= 3 && memcmp(l, "id:", 3) == 0) {
        c->has_id = 1;
        c->cur_id = parse_u64(l + 3, n - 3);
    }
}

/* Feed stream bytes to the incremental SSE parser. */
static void sub_feed(struct sconn *c, struct sub_result *r, const char *p, size_t n, uint64_t now)
{
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '\n' && c->cr) {
            c->cr = 0;
            continue;
        }
        c->cr = 0;
        if (ch == '\r' || ch == '\n') {
            c->cr = ch == '\r';
            sub_line(c, r, now);
            c->llen = 0;
            c->ovf = 0;
            continue;
        }
        if (c->llen < LINE_KEEP)
            c->line[c->llen++] = ch;
        else
            c->ovf = 1; /* long line: keep its start only */
    }
}

struct subctx {
    struct cfg *cfg;
    struct sub_result *r;
    struct sconn *conns;
    int ep;
    long n, next, pending;
    char req[8192];
    int reqlen;
    uint64_t last_progress_ns;
};

static void sub_close(struct subctx *x, struct sconn *c, int newstate)
{
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (c->state == S_CONNECTING || c->state == S_HEAD)
        x->pending--;
    c->state = (uint8_t)newstate;
}

static void sub_start(struct subctx *x, long i)
{
    struct sconn *c = &x->conns[i];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        c->state = S_FAILED;
        x->r->failed++;
        return;
    }
    set_linger0(fd);
    int one = 1;
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (i % 100 < x->cfg->slow_pct) { /* fills quickly, like a stalled mobile client */
        int small = 4096;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    }
    struct sockaddr_in src = {.sin_family = AF_INET};
    uint32_t a = 0x7f000001u + (uint32_t)((i + x->cfg->src_offset) % x->cfg->src_addrs);
    src.sin_addr.s_addr = htonl(a);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) != 0) {
        close(fd);
        c->state = S_FAILED;
        x->r->failed++;
        return;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)x->cfg->port)};
    inet_pton(AF_INET, x->cfg->host, &sa.sin_addr);
    int rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    if (rc != 0 && errno != EINPROGRESS) {
        close(fd);
        c->state = S_FAILED;
        x->r->failed++;
        return;
    }
    c->fd = fd;
    c->state = S_CONNECTING;
    c->head_match = c->st_len = 0;
    c->started_ns = now_ns();
    x->pending++;
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)i};
    epoll_ctl(x->ep, EPOLL_CTL_ADD, fd, &ev);
}

/* A connection failed before streaming: retry a few times. */
static void sub_retry(struct subctx *x, long i)
{
    struct sconn *c = &x->conns[i];
    sub_close(x, c, S_IDLE);
    if (++c->tries >= 3) {
        c->state = S_FAILED;
        x->r->failed++;
        return;
    }
    sub_start(x, i);
}

static void sub_event(struct subctx *x, long i, uint32_t evs, char *buf, size_t bufcap)
{
    struct sconn *c = &x->conns[i];
    if (c->fd < 0)
        return;
    if (c->state == S_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err || (evs & (EPOLLERR | EPOLLHUP))) {
            sub_retry(x, i);
            return;
        }
        ssize_t w = write(c->fd, x->req, (size_t)x->reqlen);
        if (w != x->reqlen) {
            sub_retry(x, i);
            return;
        }
        c->state = S_HEAD;
        struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)i};
        epoll_ctl(x->ep, EPOLL_CTL_MOD, c->fd, &ev);
        return;
    }
    /* S_HEAD or S_STREAM: read everything available (bounded). */
    for (int rounds = 0; rounds < 64; rounds++) {
        ssize_t r = read(c->fd, buf, bufcap);
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (c->state == S_STREAM) {
                x->r->dropped++;
                sub_close(x, c, S_CLOSED);
            } else {
                sub_retry(x, i);
            }
            return;
        }
        uint64_t now = now_ns();
        size_t off = 0;
        if (c->state == S_HEAD) {
            static const char crlf2[] = "\r\n\r\n";
            while (off < (size_t)r && c->head_match < 4) {
                char ch = buf[off++];
                if (c->st_len < 12)
                    c->st[c->st_len++] = ch;
                if (ch == crlf2[c->head_match])
                    c->head_match++;
                else
                    c->head_match = ch == '\r' ? 1 : 0;
            }
            if (c->head_match < 4)
                continue;
            if (c->st_len < 12 || memcmp(c->st + 9, "200", 3) != 0) {
                x->r->bad_status++;
                sub_close(x, c, S_FAILED);
                x->r->failed++;
                return;
            }
            c->state = S_STREAM;
            x->pending--;
            x->r->connected++;
            x->last_progress_ns = now;
            if (i % 100 < x->cfg->slow_pct) { /* a subscriber that never reads again */
                c->state = S_SLOW;
                x->r->slow++;
                struct epoll_event ev = {.events = 0, .data.u64 = (uint64_t)i};
                epoll_ctl(x->ep, EPOLL_CTL_MOD, c->fd, &ev);
                return;
            }
        }
        if (off < (size_t)r)
            sub_feed(c, x->r, buf + off, (size_t)r - off, now);
        if ((size_t)r < bufcap)
            return;
    }
}

static void build_sub_request(struct subctx *x)
{
    struct cfg *c = x->cfg;
    char path[6000];
    int pl = snprintf(path, sizeof path, "/events");
    char sep = '?';
    if (c->type[0]) {
        pl += snprintf(path + pl, sizeof path - (size_t)pl, "%ctype=%s", sep, c->type);
        sep = '&';
    }
    if (c->token_b64[0] && strcmp(c->auth_mode, "query") == 0) {
        pl += snprintf(path + pl, sizeof path - (size_t)pl, "%ctoken=", sep);
        for (const char *p = c->token_b64; *p && pl < (int)sizeof path - 4; p++) {
            if (*p == '+' || *p == '/' || *p == '=')
                pl += snprintf(path + pl, sizeof path - (size_t)pl, "%%%02X", (unsigned char)*p);
            else
                path[pl++] = *p;
        }
        path[pl] = 0;
    }
    char auth[2200] = "", resume[64] = "";
    if (c->bearer[0] && strcmp(c->auth_mode, "bearer") == 0)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", c->bearer);
    if (c->last_event_id[0])
        snprintf(resume, sizeof resume, "Last-Event-ID: %s\r\n", c->last_event_id);
    x->reqlen = snprintf(x->req, sizeof x->req,
                         "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n"
                         "Cache-Control: no-cache\r\n%s%s\r\n",
                         path, c->host, c->port, auth, resume);
    if (x->reqlen >= (int)sizeof x->req)
        die("request too long");
}

/* Resolve --sub-login into token/bearer values (one login per process). */
static void sub_auth(struct cfg *c)
{
    if (!c->sub_login[0] || c->token_b64[0] || c->bearer[0])
        return;
    char jwt[2048];
    if (do_login(c->host, c->port, c->sub_login, jwt, sizeof jwt) != 0)
        die("sub: login as %.*s failed", (int)strcspn(c->sub_login, ":"), c->sub_login);
    snprintf(c->bearer, sizeof c->bearer, "%s", jwt);
    char json[2200];
    int jl = snprintf(json, sizeof json, "{\"token\":\"%s\",\"id\":\"bench\"}", jwt);
    base64_std(json, (size_t)jl, c->token_b64);
}

/* Run the subscriber loop for cfg->n connections; results into r.
 * Ends at the deadline, when every stream got cfg/shared expect events,
 * after drain seconds past the publisher's end, or on stop. */
static void sub_run(struct cfg *cfg, struct sub_result *r)
{
    struct subctx x = {.cfg = cfg, .r = r, .n = cfg->n};
    long lim = raise_nofile();
    if (cfg->n + 16 > lim)
        fprintf(stderr, "ssebench: sub: %ld connections exceed the fd limit %ld; use more processes\n",
                cfg->n, lim);
    x.conns = calloc((size_t)cfg->n, sizeof *x.conns);
    if (!x.conns)
        die("out of memory");
    for (long i = 0; i < cfg->n; i++)
        x.conns[i].fd = -1;
    r->target = (uint64_t)cfg->n;
    build_sub_request(&x);
    x.ep = epoll_create1(EPOLL_CLOEXEC);
    size_t bufcap = 256 * 1024;
    char *buf = malloc(bufcap);
    struct epoll_event *evs = calloc(MAX_EVENTS_EPOLL, sizeof *evs);
    uint64_t t0 = now_ns();
    r->start_ns = t0;
    uint64_t deadline = t0 + (uint64_t)(cfg->duration * 1e9);
    uint64_t conn_deadline = t0 + (uint64_t)(cfg->connect_timeout * 1e9);
    uint64_t hold_end = 0;
    x.last_progress_ns = t0;
    bool ready = false;
    int ticks = 0;
    while (!g_stop) {
        uint64_t now = now_ns();
        if (now > deadline)
            break;
        if (g_sh && sh_get(&g_sh->stop))
            break;
        /* start new connections within the window */
        while (!ready && x.next < x.n && x.pending < cfg->window) {
            sub_start(&x, x.next++);
            x.last_progress_ns = now;
        }
        if (!ready) {
            bool stalled = x.pending > 0 && now - x.last_progress_ns > 3000000000ull;
            if ((x.next >= x.n && x.pending == 0) || now > conn_deadline || stalled) {
                /* give up on what is still connecting */
                for (long i = 0; i < x.n; i++) {
                    struct sconn *c = &x.conns[i];
                    if (c->state == S_CONNECTING || c->state == S_HEAD || c->state == S_IDLE) {
                        sub_close(&x, c, S_FAILED);
                        r->failed++;
                    }
                }
                x.next = x.n;
                ready = true;
                r->ready_ns = now_ns();
                if (g_sh)
                    sh_set(&r->ready, 1);
                if (!cfg->quiet) {
                    printf("READY connected=%" PRIu64 " failed=%" PRIu64 "\n", r->connected, r->failed);
                    fflush(stdout);
                }
                if (cfg->hold > 0)
                    hold_end = now_ns() + (uint64_t)(cfg->hold * 1e9);
            }
        }
        if (ready) {
            if (hold_end && now > hold_end)
                break;
            uint64_t expect = cfg->expect;
            int pdone = 0;
            if (g_sh) {
                pdone = sh_get(&g_sh->pub_done);
                if (pdone)
                    expect = __atomic_load_n(&g_sh->expect, __ATOMIC_ACQUIRE);
            }
            if (expect && (++ticks & 7) == 0) {
                bool all = true;
                for (long i = 0; i < x.n && all; i++)
                    if (x.conns[i].state == S_STREAM && x.conns[i].got < expect)
                        all = false;
                if (all)
                    break;
            }
            if (pdone && now > g_sh->pub_done_ns + (uint64_t)(cfg->drain * 1e9))
                break;
        }
        int ne = epoll_wait(x.ep, evs, MAX_EVENTS_EPOLL, 20);
        for (int k = 0; k < ne; k++)
            sub_event(&x, (long)evs[k].data.u64, evs[k].events, buf, bufcap);
    }
    uint64_t expect = cfg->expect;
    if (g_sh && sh_get(&g_sh->pub_done))
        expect = g_sh->expect;
    for (long i = 0; i < x.n; i++) {
        struct sconn *c = &x.conns[i];
        if (c->state == S_SLOW) { /* closed by the server? read to the end of what it sent */
            for (int rounds = 0; rounds < 4096; rounds++) {
                ssize_t rr = recv(c->fd, buf, bufcap, MSG_DONTWAIT);
                if (rr > 0)
                    continue;
                if (rr == 0 || (rr < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
                    r->slow_dropped++;
                break;
            }
        }
        if ((c->state == S_STREAM || c->state == S_CLOSED) && expect && c->got < expect) {
            r->missing += expect - c->got;
            r->conns_missing++;
        }
        if (c->fd >= 0)
            close(c->fd); /* SO_LINGER 0: RST, no TIME_WAIT */
    }
    close(x.ep);
    free(buf);
    free(evs);
    free(x.conns);
    if (g_sh)
        sh_set(&r->finished, 1);
}

/* ------------------------------------------------------------------ */
/* pub mode                                                            */
/* ------------------------------------------------------------------ */

#define PUB_INCAP 65536

struct pconn {
    int fd;
    int outstanding;
    int ring_head;
    uint64_t *sendts; /* ring of depth send times */
    char *out;
    size_t outlen, outoff, outcap;
    char in[PUB_INCAP];
    size_t inlen;
    bool want_close;
};

struct pubctx {
    struct cfg *cfg;
    struct pub_result *r;
    struct pconn *pc;
    int ep;
    char authhdr[2200];
    char pad[65536];
};

static int pub_connect(struct pubctx *x, int i)
{
    struct pconn *p = &x->pc[i];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    set_linger0(fd);
    set_nodelay(fd);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)x->cfg->port)};
    inet_pton(AF_INET, x->cfg->host, &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    p->fd = fd;
    p->outstanding = 0;
    p->ring_head = 0;
    p->outlen = p->outoff = 0;
    p->inlen = 0;
    p->want_close = false;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u64 = (uint64_t)i};
    epoll_ctl(x->ep, EPOLL_CTL_ADD, fd, &ev);
    return 0;
}

static void pub_drop(struct pubctx *x, int i)
{
    struct pconn *p = &x->pc[i];
    if (p->fd >= 0)
        close(p->fd);
    p->fd = -1;
    x->r->errors += (uint64_t)p->outstanding;
    p->outstanding = 0;
    if (x->r->reconnects < 100) {
        x->r->reconnects++;
        pub_connect(x, i);
    }
}

static void pub_append(struct pubctx *x, struct pconn *p, uint64_t seq)
{
    char body[70000];
    uint64_t ts = now_ns();
    int bl = snprintf(body, sizeof body, "{\"content\":\"%020" PRIu64 " %" PRIu64 " %s\"%s%s%s}", ts,
                      seq, x->pad, x->cfg->type[0] ? ",\"type\":\"" : "", x->cfg->type,
                      x->cfg->type[0] ? "\"" : "");
    size_t need = (size_t)bl + 512 + strlen(x->authhdr);
    if (p->outlen + need > p->outcap) {
        if (p->outoff) {
            memmove(p->out, p->out + p->outoff, p->outlen - p->outoff);
            p->outlen -= p->outoff;
            p->outoff = 0;
        }
        if (p->outlen + need > p->outcap) {
            p->outcap = (p->outlen + need) * 2;
            p->out = realloc(p->out, p->outcap);
            if (!p->out)
                die("out of memory");
        }
    }
    int hl = snprintf(p->out + p->outlen, p->outcap - p->outlen,
                      "POST /broadcast HTTP/1.1\r\nHost: %s:%d\r\n%sContent-Type: application/json\r\n"
                      "Content-Length: %d\r\n\r\n",
                      x->cfg->host, x->cfg->port, x->authhdr, bl);
    p->outlen += (size_t)hl;
    memcpy(p->out + p->outlen, body, (size_t)bl);
    p->outlen += (size_t)bl;
    int d = x->cfg->depth;
    p->sendts[(p->ring_head + p->outstanding) % d] = ts;
    p->outstanding++;
    x->r->sent++;
}

static void pub_flush(struct pubctx *x, int i)
{
    struct pconn *p = &x->pc[i];
    while (p->fd >= 0 && p->outoff < p->outlen) {
        ssize_t w = write(p->fd, p->out + p->outoff, p->outlen - p->outoff);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (w <= 0) {
            pub_drop(x, i);
            return;
        }
        p->outoff += (size_t)w;
    }
    if (p->outoff == p->outlen)
        p->outoff = p->outlen = 0;
}

/* Parse complete responses in p->in. */
static void pub_parse(struct pubctx *x, int i)
{
    struct pconn *p = &x->pc[i];
    size_t off = 0;
    while (off < p->inlen) {
        const char *he = find_head_end(p->in + off, p->inlen - off);
        if (!he)
            break;
        size_t hlen = (size_t)(he - (p->in + off));
        size_t cl = head_content_length(p->in + off, hlen);
        if (off + hlen + cl > p->inlen)
            break;
        int st = 0;
        if (hlen > 12)
            st = atoi(p->in + off + 9);
        uint64_t now = now_ns();
        if (p->outstanding > 0) {
            hist_add(&x->r->rtt, now - p->sendts[p->ring_head]);
            p->ring_head = (p->ring_head + 1) % x->cfg->depth;
            p->outstanding--;
        }
        if (st == 201) {
            x->r->ok++;
            x->r->last_ok_ns = now;
        } else if (st >= 200 && st < 300)
            x->r->st2xx++;
        else if (st >= 400 && st < 500)
            x->r->st4xx++;
        else if (st >= 500)
            x->r->st5xx++;
        else
            x->r->stother++;
        if (memcasestr(p->in + off, hlen, "\nconnection: close"))
            p->want_close = true;
        off += hlen + cl;
    }
    if (off) {
        memmove(p->in, p->in + off, p->inlen - off);
        p->inlen -= off;
    }
    if (p->inlen == sizeof p->in) /* garbage: no head within 64 KiB */
        pub_drop(x, i);
}

static void pub_read(struct pubctx *x, int i)
{
    struct pconn *p = &x->pc[i];
    for (int rounds = 0; rounds < 64 && p->fd >= 0; rounds++) {
        ssize_t r = read(p->fd, p->in + p->inlen, sizeof p->in - p->inlen);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (r <= 0) {
            pub_parse(x, i);
            pub_drop(x, i);
            return;
        }
        p->inlen += (size_t)r;
        pub_parse(x, i);
    }
    if (p->fd >= 0 && p->want_close && p->outstanding == 0)
        pub_drop(x, i);
}

static void pub_auth(struct cfg *c, char *hdr, size_t cap)
{
    hdr[0] = 0;
    if (!c->pub_bearer[0] && c->pub_login[0]) {
        if (do_login(c->host, c->port, c->pub_login, c->pub_bearer, sizeof c->pub_bearer) != 0)
            die("pub: login as %.*s failed", (int)strcspn(c->pub_login, ":"), c->pub_login);
    }
    if (c->pub_bearer[0])
        snprintf(hdr, cap, "Authorization: Bearer %s\r\n", c->pub_bearer);
}

/* Publish cfg->count events over cfg->conns keep-alive connections, at
 * cfg->rate per second (0: as fast as accepted) with at most cfg->depth
 * requests in flight per connection. Results into r. */
static void pub_run(struct cfg *cfg, struct pub_result *r, const char *authhdr)
{
    struct pubctx *x = calloc(1, sizeof *x);
    if (!x)
        die("out of memory");
    x->cfg = cfg;
    x->r = r;
    snprintf(x->authhdr, sizeof x->authhdr, "%s", authhdr);
    int padn = cfg->size - 24;
    if (padn < 1)
        padn = 1;
    if (padn > (int)sizeof x->pad - 1)
        padn = (int)sizeof x->pad - 1;
    for (int k = 0; k < padn; k++)
        x->pad[k] = (char)('a' + k % 26);
    if (cfg->depth < 1)
        cfg->depth = 1;
    if (cfg->conns < 1)
        cfg->conns = 1;
    x->ep = epoll_create1(EPOLL_CLOEXEC);
    x->pc = calloc((size_t)cfg->conns, sizeof *x->pc);
    if (!x->pc)
        die("out of memory");
    for (int i = 0; i < cfg->conns; i++) {
        x->pc[i].fd = -1;
        x->pc[i].sendts = calloc((size_t)cfg->depth, sizeof(uint64_t));
        if (pub_connect(x, i) != 0)
            die("pub: connect failed");
    }
    struct epoll_event evs[256];
    uint64_t t0 = now_ns();
    r->start_ns = t0;
    uint64_t deadline = t0 + (uint64_t)(cfg->duration * 1e9);
    uint64_t total = (uint64_t)cfg->count;
    int rr = 0;
    while (!g_stop && now_ns() < deadline) {
        uint64_t now = now_ns();
        uint64_t allowed = total;
        if (cfg->rate > 0) {
            allowed = (uint64_t)((double)(now - t0) * cfg->rate / 1e9) + 1;
            if (allowed > total)
                allowed = total;
        }
        /* hand out requests round-robin to connections with room */
        for (int scan = 0; r->sent < allowed && scan < cfg->conns;) {
            struct pconn *p = &x->pc[rr];
            if (p->fd >= 0 && !p->want_close && p->outstanding < cfg->depth) {
                pub_append(x, p, r->sent);
                scan = 0;
            } else {
                scan++;
            }
            rr = (rr + 1) % cfg->conns;
        }
        int inflight = 0, live = 0;
        for (int i = 0; i < cfg->conns; i++) {
            pub_flush(x, i);
            inflight += x->pc[i].outstanding;
            live += x->pc[i].fd >= 0;
        }
        if ((r->sent >= total && inflight == 0) || live == 0)
            break;
        int timeout = 50;
        if (cfg->rate > 0 && r->sent < total) {
            double next = (double)(r->sent) * 1e9 / cfg->rate;
            double wait_ms = (next - (double)(now_ns() - t0)) / 1e6;
            timeout = wait_ms < 0 ? 0 : (wait_ms > 50 ? 50 : (int)wait_ms);
        }
        int ne = epoll_wait(x->ep, evs, 256, timeout);
        for (int k = 0; k < ne; k++) {
            int i = (int)evs[k].data.u64;
            if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                pub_read(x, i);
            if (x->pc[i].fd >= 0 && (evs[k].events & EPOLLOUT))
                pub_flush(x, i);
        }
        /* only watch EPOLLOUT while output is pending */
        for (int i = 0; i < cfg->conns; i++) {
            struct pconn *p = &x->pc[i];
            if (p->fd < 0)
                continue;
            struct epoll_event ev = {.events = EPOLLIN | (p->outlen > p->outoff ? EPOLLOUT : 0u),
                                     .data.u64 = (uint64_t)i};
            epoll_ctl(x->ep, EPOLL_CTL_MOD, p->fd, &ev);
        }
    }
    r->end_ns = now_ns();
    for (int i = 0; i < cfg->conns; i++) {
        r->errors += (uint64_t)x->pc[i].outstanding;
        if (x->pc[i].fd >= 0)
            close(x->pc[i].fd);
        free(x->pc[i].sendts);
        free(x->pc[i].out);
    }
    close(x->ep);
    free(x->pc);
    free(x);
}

/* ------------------------------------------------------------------ */
/* raw mode: the fan-out ceiling                                       */
/* ------------------------------------------------------------------ */

struct rconn {
    int fd;
    int sub_idx; /* index in subs[], or -1 */
    char *in;
    uint32_t inlen, incap;
    char *out;
    uint32_t outlen, outoff;
};

struct rawsrv {
    int lfd, ep;
    struct rconn **byfd;
    long maxfd;
    int *subs;
    long nsubs;
    uint64_t next_id;
    uint64_t publishes, writes, short_writes, fanout_ns;
    char *frame;
    size_t framecap;
};

static void raw_close(struct rawsrv *s, int fd)
{
    struct rconn *c = s->byfd[fd];
    if (!c)
        return;
    if (c->sub_idx >= 0) {
        long last = s->nsubs - 1;
        int lfd = s->subs[last];
        s->subs[c->sub_idx] = lfd;
        s->byfd[lfd]->sub_idx = c->sub_idx;
        s->nsubs--;
    }
    close(fd);
    free(c->in);
    free(c->out);
    free(c);
    s->byfd[fd] = NULL;
}

/* Queue or write bytes to a non-stream connection. Returns -1 if closed. */
static int raw_send(struct rawsrv *s, struct rconn *c, const char *p, size_t n)
{
    if (c->outlen == c->outoff) {
        ssize_t w = write(c->fd, p, n);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
            raw_close(s, c->fd);
            return -1;
        }
        if (w < 0)
            w = 0;
        p += w;
        n -= (size_t)w;
        if (n == 0)
            return 0;
    }
    if (c->outlen + n > (1u << 22)) {
        raw_close(s, c->fd);
        return -1;
    }
    char *o = realloc(c->out, c->outlen + n);
    if (!o)
        die("out of memory");
    c->out = o;
    memcpy(c->out + c->outlen, p, n);
    c->outlen += (uint32_t)n;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = c->fd};
    epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
    return 0;
}

static void raw_fanout(struct rawsrv *s, const char *content, const char *type)
{
    size_t need = strlen(content) * 2 + strlen(type) + 128;
    if (need > s->framecap) {
        s->framecap = need * 2;
        s->frame = realloc(s->frame, s->framecap);
        if (!s->frame)
            die("out of memory");
    }
    uint64_t id = ++s->next_id;
    size_t fl = (size_t)sprintf(s->frame, "id: %" PRIu64 "\n", id);
    if (type[0])
        fl += (size_t)sprintf(s->frame + fl, "event: %s\n", type);
    const char *p = content;
    for (;;) {
        size_t ll = strcspn(p, "\r\n");
        memcpy(s->frame + fl, "data: ", 6);
        fl += 6;
        memcpy(s->frame + fl, p, ll);
        fl += ll;
        s->frame[fl++] = '\n';
        p += ll;
        if (!*p)
            break;
        if (p[0] == '\r' && p[1] == '\n')
            p++;
        p++;
    }
    s->frame[fl++] = '\n';
    s->publishes++;
    /* one write() per subscriber; a subscriber that can't take it whole is dropped */
    uint64_t t0 = now_ns();
    for (long i = 0; i < s->nsubs;) {
        int fd = s->subs[i];
        ssize_t w = write(fd, s->frame, fl);
        s->writes++;
        if (w != (ssize_t)fl) {
            s->short_writes++;
            raw_close(s, fd); /* swaps the last sub into slot i */
            continue;
        }
        i++;
    }
    s->fanout_ns += now_ns() - t0;
}

static const char RAW_SSE_HEAD[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    "Connection: keep-alive\r\n\r\nretry: 3000\n\n";

/* Handle complete requests in c->in. Returns -1 if c was closed. */
static int raw_requests(struct rawsrv *s, struct rconn *c)
{
    uint32_t off = 0;
    for (int guard = 0; guard < 100000 && off < c->inlen; guard++) {
        const char *base = c->in + off;
        const char *he = find_head_end(base, c->inlen - off);
        if (!he)
            break;
        size_t hlen = (size_t)(he - base);
        size_t cl = head_content_length(base, hlen);
        if (off + hlen + cl > c->inlen)
            break;
        const char *body = he;
        if (hlen >= 11 && memcmp(base, "GET /events", 11) == 0) {
            if (raw_send(s, c, RAW_SSE_HEAD, sizeof RAW_SSE_HEAD - 1) != 0)
                return -1;
            set_nodelay(c->fd);
            c->sub_idx = (int)s->nsubs;
            s->subs[s->nsubs++] = c->fd;
            free(c->in);
            c->in = NULL;
            c->inlen = c->incap = 0;
            return 0;
        }
        char resp[512];
        int rl;
        if (hlen >= 16 && memcmp(base, "POST /broadcast ", 16) == 0) {
            char *content = malloc(cl + 1), type[256];
            if (!content)
                die("out of memory");
            if (json_get_string(body, cl, "content", content, cl + 1) < 0) {
                rl = snprintf(resp, sizeof resp,
                              "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n"
                              "Content-Length: 17\r\n\r\n{\"error\":\"json\"}\n");
            } else {
                if (json_get_string(body, cl, "type", type, sizeof type) < 0)
                    type[0] = 0;
                raw_fanout(s, content, type);
                char js[64];
                int jl = snprintf(js, sizeof js, "{\"id\":%" PRIu64 "}", s->next_id);
                rl = snprintf(resp, sizeof resp,
                              "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                              "Content-Length: %d\r\n\r\n%s",
                              jl, js);
            }
            free(content);
        } else if (hlen >= 12 && memcmp(base, "POST /login ", 12) == 0) {
            static const char js[] = "{\"token\":\"raw.raw.raw\",\"id\":\"bench\"}";
            rl = snprintf(resp, sizeof resp,
                          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\n\r\n%s",
                          sizeof js - 1, js);
        } else {
            rl = snprintf(resp, sizeof resp,
                          "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                          "Content-Length: 21\r\n\r\n{\"error\":\"not found\"}");
        }
        if (raw_send(s, c, resp, (size_t)rl) != 0)
            return -1;
        off += (uint32_t)(hlen + cl);
    }
    if (off) {
        memmove(c->in, c->in + off, c->inlen - off);
        c->inlen -= off;
    }
    return 0;
}

static void raw_readable(struct rawsrv *s, int fd)
{
    struct rconn *c = s->byfd[fd];
    for (int rounds = 0; rounds < 16; rounds++) {
        char tmp[4096];
        char *dst = tmp;
        size_t cap = sizeof tmp;
        if (c->sub_idx < 0) {
            if (c->incap - c->inlen < 16384) {
                if (c->incap >= (1u << 20)) {
                    raw_close(s, fd);
                    return;
                }
                uint32_t nc = c->incap ? c->incap * 2 : 32768;
                char *ni = realloc(c->in, nc);
                if (!ni)
                    die("out of memory");
                c->in = ni;
                c->incap = nc;
            }
            dst = c->in + c->inlen;
            cap = c->incap - c->inlen;
        }
        ssize_t r = read(fd, dst, cap);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (r <= 0) {
            raw_close(s, fd);
            return;
        }
        if (c->sub_idx >= 0)
            continue; /* stream clients send nothing we need */
        c->inlen += (uint32_t)r;
        if (raw_requests(s, c) != 0)
            return;
        if ((size_t)r < cap)
            return;
    }
}

static void raw_writable(struct rawsrv *s, int fd)
{
    struct rconn *c = s->byfd[fd];
    while (c->outoff < c->outlen) {
        ssize_t w = write(fd, c->out + c->outoff, c->outlen - c->outoff);
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (w <= 0) {
            raw_close(s, fd);
            return;
        }
        c->outoff += (uint32_t)w;
    }
    c->outoff = c->outlen = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    epoll_ctl(s->ep, EPOLL_CTL_MOD, fd, &ev);
}

static int raw_main(struct cfg *cfg)
{
    struct rawsrv s = {0};
    s.maxfd = raise_nofile() + 16;
    s.byfd = calloc((size_t)s.maxfd, sizeof *s.byfd);
    s.subs = calloc((size_t)s.maxfd, sizeof *s.subs);
    install_signals();
    s.lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(s.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    if (inet_pton(AF_INET, cfg->host, &sa.sin_addr) != 1)
        die("raw: bad host %s", cfg->host);
    if (bind(s.lfd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("raw: bind %s:%d: %s", cfg->host, cfg->port, strerror(errno));
    if (listen(s.lfd, 4096) != 0)
        die("raw: listen: %s", strerror(errno));
    socklen_t sl = sizeof sa;
    getsockname(s.lfd, (struct sockaddr *)&sa, &sl);
    fprintf(stderr, "ssebench raw: listening on %s:%d fd-limit=%ld\n", cfg->host, ntohs(sa.sin_port),
            s.maxfd - 16);
    s.ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.fd = s.lfd};
    epoll_ctl(s.ep, EPOLL_CTL_ADD, s.lfd, &lev);
    bool listening = true;
    uint64_t resume_accept = 0;
    struct epoll_event *evs = calloc(MAX_EVENTS_EPOLL, sizeof *evs);
    uint64_t deadline = now_ns() + (uint64_t)(cfg->duration * 1e9);
    while (!g_stop && now_ns() < deadline) {
        if (!listening && now_ns() > resume_accept) {
            epoll_ctl(s.ep, EPOLL_CTL_ADD, s.lfd, &lev);
            listening = true;
        }
        int ne = epoll_wait(s.ep, evs, MAX_EVENTS_EPOLL, 200);
        for (int k = 0; k < ne; k++) {
            int fd = evs[k].data.fd;
            if (fd == s.lfd) {
                for (int acc = 0; acc < 4096; acc++) {
                    int cfd = accept4(s.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (cfd < 0) {
                        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                            /* at capacity: pause accepting instead of spinning */
                            epoll_ctl(s.ep, EPOLL_CTL_DEL, s.lfd, NULL);
                            listening = false;
                            resume_accept = now_ns() + 500000000ull;
                        }
                        break;
                    }
                    if (cfd >= s.maxfd) {
                        close(cfd);
                        continue;
                    }
                    struct rconn *c = calloc(1, sizeof *c);
                    if (!c)
                        die("out of memory");
                    c->fd = cfd;
                    c->sub_idx = -1;
                    s.byfd[cfd] = c;
                    struct epoll_event ev = {.events = EPOLLIN, .data.fd = cfd};
                    epoll_ctl(s.ep, EPOLL_CTL_ADD, cfd, &ev);
                }
                continue;
            }
            if (!s.byfd[fd])
                continue;
            if (evs[k].events & EPOLLOUT)
                raw_writable(&s, fd);
            if (s.byfd[fd] && (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
                raw_readable(&s, fd);
        }
    }
    fprintf(stderr,
            "ssebench raw: exit publishes=%" PRIu64 " writes=%" PRIu64 " short_writes=%" PRIu64
            " subs=%ld fanout_ns_per_write=%.0f\n",
            s.publishes, s.writes, s.short_writes, s.nsubs,
            s.writes ? (double)s.fanout_ns / (double)s.writes : 0.0);
    for (long fd = 0; fd < s.maxfd; fd++)
        if (s.byfd[fd])
            raw_close(&s, (int)fd);
    close(s.lfd);
    close(s.ep);
    free(evs);
    free(s.byfd);
    free(s.subs);
    free(s.frame);
    return 0;
}

/* ------------------------------------------------------------------ */
/* reports                                                             */
/* ------------------------------------------------------------------ */

static void print_sub(FILE *f, const struct sub_result *r, uint64_t pub_start)
{
    uint64_t t0 = pub_start ? pub_start : r->first_rx_ns;
    double span = r->last_rx_ns > t0 ? (double)(r->last_rx_ns - t0) / 1e9 : 0;
    fprintf(f,
            "target=%" PRIu64 " connected=%" PRIu64 " failed=%" PRIu64 " bad_status=%" PRIu64
            " dropped=%" PRIu64 " slow=%" PRIu64 " slow_dropped=%" PRIu64 " deliveries=%" PRIu64 " unique=%" PRIu64 " dups=%" PRIu64
            " missing=%" PRIu64 " conns_missing=%" PRIu64 " comments=%" PRIu64
            " deliv_s=%.0f p50_us=%.1f p99_us=%.1f max_us=%.1f start_to_last_ms=%.1f",
            r->target, r->connected, r->failed, r->bad_status, r->dropped, r->slow, r->slow_dropped,
            r->deliveries, r->unique,
            r->dups, r->missing, r->conns_missing, r->comments,
            span > 0 ? (double)r->deliveries / span : 0, (double)hist_pct(&r->lat, 0.50) / 1e3,
            (double)hist_pct(&r->lat, 0.99) / 1e3, (double)r->lat.max / 1e3,
            r->last_rx_ns > r->start_ns && r->start_ns ? (double)(r->last_rx_ns - r->start_ns) / 1e6 : 0.0);
}

static void print_pub(FILE *f, const struct pub_result *r)
{
    uint64_t end = r->last_ok_ns ? r->last_ok_ns : r->end_ns;
    double span = end > r->start_ns ? (double)(end - r->start_ns) / 1e9 : 0;
    fprintf(f,
            "pub_sent=%" PRIu64 " pub_ok=%" PRIu64 " pub_2xx_other=%" PRIu64 " pub_4xx=%" PRIu64
            " pub_5xx=%" PRIu64 " pub_other=%" PRIu64 " pub_errors=%" PRIu64 " pub_reconnects=%" PRIu64
            " pub_s=%.0f pub_rtt_p50_us=%.1f pub_rtt_p99_us=%.1f",
            r->sent, r->ok, r->st2xx, r->st4xx, r->st5xx, r->stother, r->errors, r->reconnects,
            span > 0 ? (double)r->ok / span : 0, (double)hist_pct(&r->rtt, 0.5) / 1e3,
            (double)hist_pct(&r->rtt, 0.99) / 1e3);
}

/* ------------------------------------------------------------------ */
/* load mode: one benchmark cell                                       */
/* ------------------------------------------------------------------ */

static void sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int load_main(struct cfg *cfg)
{
    install_signals();
    raise_nofile();
    g_sh = mmap(NULL, sizeof *g_sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (g_sh == MAP_FAILED)
        die("mmap: %s", strerror(errno));
    memset(g_sh, 0, sizeof *g_sh);
    int procs = cfg->procs;
    if (procs <= 0)
        procs = (int)((cfg->n + 9499) / 9500);
    if (procs < 1)
        procs = 1;
    if (procs > MAX_SUB_PROCS)
        procs = MAX_SUB_PROCS;
    int spid = cfg->server_pid;
    long rss0 = spid ? proc_status_kb(spid, "VmRSS") : -1;
    uint64_t cpu_a = spid ? proc_cpu_ns(spid) : 0;
    sub_auth(cfg); /* one login shared by all sub processes */
    char pubhdr[2200] = "";
    if (cfg->count > 0)
        pub_auth(cfg, pubhdr, sizeof pubhdr);
    pid_t kids[MAX_SUB_PROCS];
    long base = 0;
    for (int k = 0; k < procs; k++) {
        long share = cfg->n / procs + (k < cfg->n % procs ? 1 : 0);
        struct cfg sc = *cfg;
        sc.n = share;
        sc.src_offset = (int)(base % (cfg->src_addrs ? cfg->src_addrs : 1));
        sc.quiet = 1;
        sc.hold = 0;
        sc.expect = 0;
        base += share;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0)
            die("fork: %s", strerror(errno));
        if (pid == 0) {
            sub_run(&sc, &g_sh->subs[k]);
            _exit(0);
        }
        kids[k] = pid;
    }
    /* wait for every sub process to finish connecting (bounded) */
    uint64_t t0 = now_ns();
    uint64_t limit = t0 + (uint64_t)((cfg->connect_timeout + 5) * 1e9);
    for (;;) {
        int ready = 0;
        for (int k = 0; k < procs; k++)
            ready += sh_get(&g_sh->subs[k].ready) || sh_get(&g_sh->subs[k].finished);
        if (ready == procs || now_ns() > limit || g_stop)
            break;
        sleep_ms(20);
    }
    uint64_t connect_ms = (now_ns() - t0) / 1000000;
    uint64_t connected = 0;
    for (int k = 0; k < procs; k++)
        connected += g_sh->subs[k].connected;
    /* let the server settle, then sample its memory */
    sleep_ms(cfg->count > 0 ? 300 : 1000);
    long rss1 = spid ? proc_status_kb(spid, "VmRSS") : -1;
    long anon1 = spid ? proc_status_kb(spid, "RssAnon") : -1;
    uint64_t cpu_b = spid ? proc_cpu_ns(spid) : 0;
    uint64_t pub_start = 0;
    if (cfg->count > 0 && !g_stop) {
        pub_run(cfg, &g_sh->pub, pubhdr);
        pub_start = g_sh->pub.start_ns;
        __atomic_store_n(&g_sh->expect, g_sh->pub.ok, __ATOMIC_RELEASE);
        g_sh->pub_done_ns = now_ns();
        sh_set(&g_sh->pub_done, 1);
    } else {
        uint64_t hold_end = now_ns() + (uint64_t)(cfg->hold * 1e9);
        while (!g_stop && now_ns() < hold_end)
            sleep_ms(20);
        sh_set(&g_sh->stop, 1);
    }
    /* wait for the sub processes (bounded), then make sure they are gone */
    uint64_t wlimit = now_ns() + (uint64_t)((cfg->drain + 10) * 1e9);
    int alive = procs;
    while (alive > 0) {
        alive = 0;
        for (int k = 0; k < procs; k++) {
            if (kids[k] <= 0)
                continue;
            pid_t w = waitpid(kids[k], NULL, WNOHANG);
            if (w == kids[k])
                kids[k] = 0;
            else
                alive++;
        }
        if (alive == 0)
            break;
        if (now_ns() > wlimit || g_stop) {
            sh_set(&g_sh->stop, 1);
            for (int k = 0; k < procs; k++)
                if (kids[k] > 0) {
                    kill(kids[k], SIGKILL);
                    waitpid(kids[k], NULL, 0);
                    kids[k] = 0;
                }
            break;
        }
        sleep_ms(10);
    }
    uint64_t cpu_c = spid ? proc_cpu_ns(spid) : 0;
    struct sub_result tot = {0};
    for (int k = 0; k < procs; k++) {
        struct sub_result *r = &g_sh->subs[k];
        tot.target += r->target;
        tot.connected += r->connected;
        tot.failed += r->failed;
        tot.bad_status += r->bad_status;
        tot.dropped += r->dropped;
        tot.slow += r->slow;
        tot.slow_dropped += r->slow_dropped;
        tot.deliveries += r->deliveries;
        tot.unique += r->unique;
        tot.dups += r->dups;
        tot.missing += r->missing;
        tot.conns_missing += r->conns_missing;
        tot.comments += r->comments;
        if (r->first_rx_ns && (!tot.first_rx_ns || r->first_rx_ns < tot.first_rx_ns))
            tot.first_rx_ns = r->first_rx_ns;
        if (r->last_rx_ns > tot.last_rx_ns)
            tot.last_rx_ns = r->last_rx_ns;
        hist_merge(&tot.lat, &r->lat);
    }
    printf("procs=%d connect_ms=%" PRIu64 " ", procs, connect_ms);
    print_sub(stdout, &tot, pub_start);
    if (cfg->count > 0) {
        printf(" ");
        print_pub(stdout, &g_sh->pub);
    }
    if (spid) {
        long per = -1;
        if (rss0 >= 0 && rss1 >= 0 && connected > 0)
            per = (long)(((double)(rss1 - rss0) * 1024.0) / (double)connected);
        uint64_t cpu_pub = cpu_c - cpu_b;
        printf(" rss0_kb=%ld rss1_kb=%ld rss_anon1_kb=%ld rss_per_sub_b=%ld cpu_connect_ms=%.1f"
               " cpu_pub_ms=%.1f cpu_ns_per_deliv=%.0f",
               rss0, rss1, anon1, per, (double)(cpu_b - cpu_a) / 1e6, (double)cpu_pub / 1e6,
               tot.deliveries ? (double)cpu_pub / (double)tot.deliveries : 0.0);
    }
    printf("\n");
    fflush(stdout);
    munmap(g_sh, sizeof *g_sh);
    g_sh = NULL;
    return 0;
}

/* ------------------------------------------------------------------ */
/* command line                                                        */
/* ------------------------------------------------------------------ */

static void usage(void)
{
    fputs(
        "usage: ssebench MODE [options]\n"
        "modes:\n"
        "  sub       hold -n streams on GET /events, print READY line then a result line\n"
        "  pub       POST /broadcast --count events over --conns keep-alive connections\n"
        "  raw       trivial SSE fan-out server (the ceiling); --port 0 picks a port\n"
        "  load      one cell: sub processes + publisher (+ --server-pid sampling)\n"
        "  freeport  print a free TCP port on 127.0.0.1\n"
        "common:  --host H (127.0.0.1)  --port P (8080)  --duration S (max run, 120)\n"
        "sub:     -n N  --src-addrs K (4: 127.0.0.1..K)  --type T  --token B64 | --bearer JWT\n"
        "         --sub-login user:pass  --auth query|bearer  --window W (256 connects in flight)\n"
        "         --connect-timeout S (60)  --expect E (stop when each stream got E)\n"
        "         --hold S (stay S seconds after connecting)  --drain S (5, after publisher ends)\n"
        "         --slow-pct P (P%% of streams stop reading once connected; the server should drop them)\n"
        "         --last-event-id N (send Last-Event-ID: N; with --expect M, time the replay of M events)\n"
        "pub:     --count M (1000)  --rate R (events/s, 0 = as fast as accepted)  --conns C (1)\n"
        "         --depth D (1, pipelined requests per conn)  --size B (64, content bytes)\n"
        "         --pub-bearer JWT | --pub-login user:pass  --type T\n"
        "load:    sub and pub options, --procs P (auto: one per 9500 subs), --server-pid PID;\n"
        "         --count 0 means idle: hold --hold S seconds and measure memory\n",
        stderr);
    exit(2);
}

static void parse_args(struct cfg *c, int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (strcmp(a, name) == 0 && v && ++i)
        if (ARG("--host"))
            snprintf(c->host, sizeof c->host, "%s", v);
        else if (ARG("--port"))
            c->port = atoi(v);
        else if (ARG("-n"))
            c->n = atol(v);
        else if (ARG("--src-addrs"))
            c->src_addrs = atoi(v);
        else if (ARG("--type"))
            snprintf(c->type, sizeof c->type, "%s", v);
        else if (ARG("--token"))
            snprintf(c->token_b64, sizeof c->token_b64, "%s", v);
        else if (ARG("--bearer"))
            snprintf(c->bearer, sizeof c->bearer, "%s", v);
        else if (ARG("--sub-login"))
            snprintf(c->sub_login, sizeof c->sub_login, "%s", v);
        else if (ARG("--auth"))
            snprintf(c->auth_mode, sizeof c->auth_mode, "%s", v);
        else if (ARG("--window"))
            c->window = atoi(v);
        else if (ARG("--connect-timeout"))
            c->connect_timeout = atof(v);
        else if (ARG("--duration"))
            c->duration = atof(v);
        else if (ARG("--drain"))
            c->drain = atof(v);
        else if (ARG("--expect"))
            c->expect = strtoull(v, NULL, 10);
        else if (ARG("--hold"))
            c->hold = atof(v);
        else if (ARG("--slow-pct"))
            c->slow_pct = atoi(v);
        else if (ARG("--last-event-id"))
            snprintf(c->last_event_id, sizeof c->last_event_id, "%s", v);
        else if (ARG("--pub-login"))
            snprintf(c->pub_login, sizeof c->pub_login, "%s", v);
        else if (ARG("--pub-bearer"))
            snprintf(c->pub_bearer, sizeof c->pub_bearer, "%s", v);
        else if (ARG("--conns"))
            c->conns = atoi(v);
        else if (ARG("--depth"))
            c->depth = atoi(v);
        else if (ARG("--count"))
            c->count = atol(v);
        else if (ARG("--rate"))
            c->rate = atof(v);
        else if (ARG("--size"))
            c->size = atoi(v);
        else if (ARG("--procs"))
            c->procs = atoi(v);
        else if (ARG("--server-pid"))
            c->server_pid = atoi(v);
        else {
            fprintf(stderr, "ssebench: unknown or incomplete option %s\n", a);
            usage();
        }
#undef ARG
    }
    if (c->src_addrs < 1 || c->src_addrs > 250)
        die("--src-addrs must be 1..250");
    if (c->n < 0 || c->window < 1 || c->depth < 1 || c->depth > 100000 || c->conns < 1 ||
        c->conns > 10000 || c->count < 0 || c->duration <= 0 || c->duration > 3600)
        die("option out of range");
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    struct cfg *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        die("out of memory");
    cfg_defaults(cfg);
    const char *mode = argv[1];
    if (strcmp(mode, "raw") == 0)
        cfg->duration = 600;
    parse_args(cfg, argc, argv);
    int rc = 0;
    if (strcmp(mode, "sub") == 0) {
        install_signals();
        sub_auth(cfg);
        static struct sub_result r;
        sub_run(cfg, &r);
        print_sub(stdout, &r, 0);
        printf("\n");
    } else if (strcmp(mode, "pub") == 0) {
        install_signals();
        char hdr[2200];
        pub_auth(cfg, hdr, sizeof hdr);
        static struct pub_result r;
        pub_run(cfg, &r, hdr);
        print_pub(stdout, &r);
        printf("\n");
    } else if (strcmp(mode, "raw") == 0) {
        rc = raw_main(cfg);
    } else if (strcmp(mode, "load") == 0) {
        rc = load_main(cfg);
    } else if (strcmp(mode, "freeport") == 0) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET};
        inet_pton(AF_INET, cfg->host, &sa.sin_addr);
        socklen_t sl = sizeof sa;
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &sl) != 0)
            die("freeport: %s", strerror(errno));
        printf("%d\n", ntohs(sa.sin_port));
        close(fd);
    } else {
        usage();
    }
    free(cfg);
    return rc;
}
