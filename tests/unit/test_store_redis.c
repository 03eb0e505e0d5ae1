/* Redis history store against a real redis-server: every store case, then cluster ids, the feed, outages. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The store itself, not only its header: the resend test calls its pipeline directly. */
#include "store_redis.c"

/* ---- fixture: a redis-server of the test's own on a free loopback port ---- */

static char dir[64];
static int redis_port;
static pid_t redis_pid;

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

/* Starts redis-server on redis_port (AOF with fsync always, so a restart keeps what it
 * held) and waits until it answers PING. */
static void redis_start(void)
{
    char port[16];
    snprintf(port, sizeof port, "%d", redis_port);
    redis_pid = fork();
    cr_assert_neq(redis_pid, -1);
    if (redis_pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(null, 1);
        dup2(null, 2);
        execl("/usr/bin/redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
              "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", dir,
              (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        redisContext *c = redisConnect("127.0.0.1", redis_port);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "PING");
            bool ok = r && r->type == REDIS_REPLY_STATUS;
            freeReplyObject(r);
            redisFree(c);
            if (ok) return;
        } else if (c) {
            redisFree(c);
        }
        usleep(10000);
    }
    cr_assert_fail("redis-server did not start on port %d", redis_port);
}

/* Kills the test's redis-server by its PID and reaps it. */
static void redis_kill(void)
{
    if (redis_pid <= 0) return;
    kill(redis_pid, SIGKILL);
    waitpid(redis_pid, NULL, 0);
    redis_pid = 0;
}

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static void setup(void)
{
    strcpy(dir, "/tmp/ssehub-redis-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    redis_port = free_port();
    redis_start();
}

static void teardown(void)
{
    redis_kill();
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(store_redis, .init = setup, .fini = teardown, .timeout = 120);

#define STORE_OPTS(...) ((store_options_t){.redis_host = "127.0.0.1", .redis_port = redis_port, __VA_ARGS__})

static store_t *open_opts(const store_options_t *o)
{
    store_t *st = NULL;
    char err[SSE_ERR_LEN] = "";
    int rc = store_redis_open(o, &st, err);
    cr_assert_eq(rc, 0, "open failed: %s", err);
    cr_assert_not_null(st);
    return st;
}

static store_t *open_default(void)
{
    store_options_t o = STORE_OPTS(.max_age_ms = 0);
    return open_opts(&o);
}

#define STORE_SUITE store_redis
#include "store_cases.h"

/* ---- Redis only ---- */

/* What a feed delivered, in order. */
typedef struct fed {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t ids[8192];
    char content[8192][16];
    int n;
} fed_t;

static void on_feed(void *arg, const store_event_t *ev)
{
    fed_t *f = arg;
    pthread_mutex_lock(&f->mu);
    if (f->n < 8192) {
        f->ids[f->n] = ev->id;
        snprintf(f->content[f->n], sizeof f->content[0], "%.*s", (int)ev->content_len, ev->content);
        f->n++;
    }
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* Waits up to 10 s for the feed to hold n events; returns how many it holds. */
static int fed_wait(fed_t *f, int n)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    pthread_mutex_lock(&f->mu);
    while (f->n < n && pthread_cond_timedwait(&f->cv, &f->mu, &until) == 0) {}
    int got = f->n;
    pthread_mutex_unlock(&f->mu);
    return got;
}

static fed_t *fed_new(void)
{
    fed_t *f = calloc(1, sizeof *f);
    pthread_mutex_init(&f->mu, NULL);
    pthread_cond_init(&f->cv, NULL);
    return f;
}

static store_t *open_fed(fed_t *f)
{
    store_options_t o = STORE_OPTS(.feed = on_feed, .feed_arg = f);
    store_t *st = open_opts(&o);
    store_bounds_t b;
    st->ops->bounds(st, &b);
    st->ops->start_feed(st, b.latest);
    return st;
}

Test(store_redis, two_nodes_get_unique_increasing_ids_and_both_feeds_see_every_event_in_order)
{
    fed_t *fa = fed_new(), *fb = fed_new();
    store_t *a = open_fed(fa), *b = open_fed(fb);
    uint64_t last = 0;
    enum { N = 200 };
    for (int i = 0; i < N; i++) {
        store_t *st = i % 2 ? b : a;
        char c[16];
        snprintf(c, sizeof c, "e%d", i);
        uint64_t id = append_ok(st, "", "", c);
        cr_assert_gt(id, last, "event %d got id %llu after %llu", i, (unsigned long long)id,
                     (unsigned long long)last);
        last = id;
    }
    cr_assert_eq(last, N, "ids are dense across the nodes");
    cr_assert_eq(fed_wait(fa, N), N);
    cr_assert_eq(fed_wait(fb, N), N);
    for (int i = 0; i < N; i++) {
        char c[16];
        snprintf(c, sizeof c, "e%d", i);
        cr_assert_eq(fa->ids[i], (uint64_t)i + 1);
        cr_assert_eq(fb->ids[i], (uint64_t)i + 1);
        cr_assert_str_eq(fb->content[i], c, "node b's feed carries node a's events too");
    }
    /* A node opened later starts its feed after the history it found. */
    fed_t *fc = fed_new();
    store_t *c = open_fed(fc);
    append_ok(a, "", "", "late");
    cr_assert_eq(fed_wait(fc, 1), 1);
    cr_assert_eq(fc->ids[0], N + 1);
    a->ops->close(a);
    b->ops->close(b);
    c->ops->close(c);
    free(fa);
    free(fb);
    free(fc);
}

Test(store_redis, a_resent_append_answers_its_first_id_and_is_stored_once)
{
    store_t *st = open_default();
    store_redis_t *s = (store_redis_t *)st;
    append_ok(st, "", "", "before");
    pending_t p = {.ev = {.type = "t", .user = "", .content = "once", .content_len = 4}, .token = 777};
    char why[200] = "";
    pthread_mutex_lock(&s->w_mu);
    p.err = 1;
    cr_assert(send_batch(s, &p, why, sizeof why));
    uint64_t first = p.ev.id;
    p.err = 1; /* as if its reply had been lost with the link */
    p.ev.id = 0;
    cr_assert(send_batch(s, &p, why, sizeof why));
    pthread_mutex_unlock(&s->w_mu);
    cr_assert_str_eq(why, "", "no failure to tell");
    cr_assert_eq(first, 2);
    cr_assert_eq(p.ev.id, first, "the resend got the id of the first send");
    cr_assert_eq(append_ok(st, "", "", "after"), 3, "no id was spent on the resend");
    rows_t r;
    do_replay(st, 0, 100, "", NULL, 0, 100, &r);
    expect_ids(&r, (uint64_t[]){1, 2, 3, 0}, "the event is stored once");
    st->ops->close(st);
}

Test(store_redis, while_redis_is_down_appends_fail_unavailable_and_the_feed_resumes_after_it)
{
    fed_t *f = fed_new();
    store_t *st = open_fed(f);
    cr_assert_null(st->ops->unready(st));
    for (int i = 0; i < 5; i++) append_ok(st, "", "", "up");
    cr_assert_eq(fed_wait(f, 5), 5);

    redis_kill();
    one_done_t d = {.w = WAITER_INIT, .id = 1};
    static char reason[SSE_ERR_LEN];
    d.why = reason;
    store_event_t down = {.type = "", .user = "", .content = "down", .content_len = 4};
    cr_assert_eq(st->ops->append(st, &down, on_one, &d), 0);
    waiter_wait(&d.w, 1);
    cr_assert_eq(d.err, SSE_EUNAVAIL, "got %d", d.err);
    cr_assert_eq(d.id, 0, "a refused event has no id");
    /* The link breaks under the pipeline, and the one reconnect fails: the failure says so. */
    char want[64];
    snprintf(want, sizeof want, "redis 127.0.0.1:%d: cannot connect: ", redis_port);
    cr_assert(strncmp(reason, want, strlen(want)) == 0, "a failed append says why: \"%s\"", reason);
    cr_assert_null(strchr(reason, '\n'));
    const char *why = NULL;
    for (int i = 0; i < 300 && !(why = st->ops->unready(st)); i++) usleep(10000);
    cr_assert_str_eq(why, "redis unreachable");
    rows_t r = {.w = WAITER_INIT};
    store_filter_t all = {.user = ""};
    cr_assert_eq(st->ops->replay(st, 0, 10, &all, &(store_read_opts_t){.max_rows = 10}, on_rows, &r), 0);
    waiter_wait(&r.w, 1);
    cr_assert_eq(r.err, SSE_ERR, "a read fails while Redis is down");

    redis_start(); /* the same port, its AOF: what it acknowledged is still there */
    for (int i = 0; i < 300 && st->ops->unready(st); i++) usleep(10000);
    cr_assert_null(st->ops->unready(st));
    cr_assert_eq(append_ok(st, "", "", "back"), 6, "ids go on where they were");
    cr_assert_eq(append_ok(st, "", "", "back"), 7);
    cr_assert_eq(fed_wait(f, 7), 7);
    for (int i = 0; i < 7; i++) cr_assert_eq(f->ids[i], (uint64_t)i + 1, "feed row %d", i);
    st->ops->close(st);
    free(f);
}

Test(store_redis, open_fails_in_one_line_naming_the_address)
{
    redis_kill();
    store_t *st = NULL;
    char err[SSE_ERR_LEN] = "";
    store_options_t o = STORE_OPTS(.max_age_ms = 0);
    cr_assert_eq(store_redis_open(&o, &st, err), SSE_ERR);
    cr_assert_null(st);
    char want[64];
    snprintf(want, sizeof want, "redis 127.0.0.1:%d: cannot connect", redis_port);
    cr_assert(strncmp(err, want, strlen(want)) == 0, "%s", err);
    cr_assert_null(strchr(err, '\n'));
}

/* Runs one command on a connection of the test's own to its redis-server. */
static void redis_do(const char *const *words)
{
    redisContext *c = redisConnect("127.0.0.1", redis_port);
    cr_assert(c && !c->err);
    redisReply *r = cmdv(c, words);
    cr_assert(r && r->type != REDIS_REPLY_ERROR, "%s: %s", words[0], r ? r->str : c->errstr);
    freeReplyObject(r);
    redisFree(c);
}

Test(store_redis, after_a_failover_that_lost_fed_events_the_counter_jumps_past_them_instead_of_reusing_their_ids)
{
    store_t *st = open_default();
    for (int i = 0; i < 3; i++) append_ok(st, "", "", "on the old primary");
    /* As if the new primary only had event 1: its stream and counter end there, while this
     * node has seen 3 (its bounds, as its feed would have set them). */
    redis_do((const char *[]){"DEL", KEY_EVENTS, NULL});
    redis_do((const char *[]){"XADD", KEY_EVENTS, "1-0", "type", "", "user", "", "content", "x", "time", "0", NULL});
    redis_do((const char *[]){"SET", KEY_SEQ, "1", NULL});
    cr_assert_eq(append_ok(st, "", "", "after the failover"), 4, "not id 2 again");
    cr_assert_eq(append_ok(st, "", "", "next"), 5);
    st->ops->close(st);
}

Test(store_redis, a_primary_turned_replica_fails_appends_unavailable_and_says_so)
{
    store_t *st = open_default();
    append_ok(st, "", "", "while a master");
    char dead[16];
    snprintf(dead, sizeof dead, "%d", free_port());
    redis_do((const char *[]){"REPLICAOF", "127.0.0.1", dead, NULL});
    one_done_t d = {.w = WAITER_INIT, .id = 1};
    static char reason[SSE_ERR_LEN];
    d.why = reason;
    store_event_t ev = {.type = "", .user = "", .content = "refused", .content_len = 7};
    cr_assert_eq(st->ops->append(st, &ev, on_one, &d), 0);
    waiter_wait(&d.w, 1);
    cr_assert_eq(d.err, SSE_EUNAVAIL, "a 503 with Retry-After, not a store error: got %d", d.err);
    cr_assert(strstr(reason, "lost the master: it is a replica now (READONLY)"), "%s", reason);
    redis_do((const char *[]){"REPLICAOF", "NO", "ONE", NULL});
    cr_assert_eq(append_ok(st, "", "", "a master again"), 2);
    st->ops->close(st);
}
