/* ssehub: flags, settings, signals and worker threads. The only place with process-wide state. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "assets.h"
#include "auth.h"
#include "cli.h"
#include "common.h"
#include "config.h"
#include "conn_tls.h"
#include "jobs.h"
#include "log.h"
#include "publish.h"
#include "ratelimit.h"
#include "server.h"
#include "settings.h"
#include "store.h"
#include "users.h"
#include "worker.h"

static void usage(FILE *out)
{
    fprintf(out, "Usage: ssehub [--env-file PATH] [--help] [--version]\n"
                 "       ssehub passwd [--user NAME --role ROLE] < password\n"
                 "       ssehub publish [--url URL] [--type T] [--user U] CONTENT\n"
                 "       ssehub token --user U [--types a,b] [--ttl S]\n"
                 "       ssehub check\n\n"
                 "A Server-Sent Events notification server, compatible with goSSE.\n\n"
                 "  --env-file PATH  read settings from PATH instead of ./.env\n"
                 "  --help           show this help and exit\n"
                 "  --version        print the version and exit\n"
                 "  passwd           print the argon2id hash of the password on stdin, or with\n"
                 "                   --user and --role a whole SSE_USERS_FILE line\n"
                 "  publish          publish an event through the running server (as the broadcaster)\n"
                 "  token            mint a subscriber token offline with SSE_APP_KEY\n"
                 "  check            check the settings and print them, secrets masked\n"
                 "                   (each verb takes --env-file PATH and --help)\n\n");
    config_print_help(out);
}

/* The fd limit bounds how many clients one process can hold: take all the hard limit allows. */
static int raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl)) return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur > 1000000000 ? 1000000000 : (int)rl.rlim_cur;
}

static void on_stop(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)a, (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

/* SIGHUP: a new certificate and key for new connections; open ones keep theirs. */
static void on_reload(struct ev_loop *loop, ev_signal *s, int revents)
{
    (void)loop, (void)revents;
    server_t *srv = s->data;
    if (!srv->tls) {
        log_info(srv->log, "reload: TLS is off, nothing to reload");
        return;
    }
    char err[SSE_ERR_LEN];
    SSL_CTX *ctx = tls_ctx_load(srv->cfg->tls_cert, srv->cfg->tls_key, err);
    if (!ctx) {
        log_error(srv->log, "reload refused, keeping the old certificate: %s", err);
        return;
    }
    pthread_mutex_lock(&srv->tls_mu);
    SSL_CTX *old = srv->tls_ctx;
    srv->tls_ctx = ctx;
    pthread_mutex_unlock(&srv->tls_mu);
    SSL_CTX_free(old); /* sessions still open hold their own reference */
    log_info(srv->log, "reload: new certificate in use cert=%s", srv->cfg->tls_cert);
}

static void on_signal(struct ev_loop *loop, ev_signal *s, int revents)
{
    (void)revents;
    server_t *srv = s->data;
    log_info(srv->log, "signal %s", strsignal(s->signum));
    ev_break(loop, EVBREAK_ALL);
}

/* The verbs beside the server, each in its own file. */
static const struct verb {
    const char *name;
    int (*run)(int argc, char **argv);
} verbs[] = {
    {"passwd", users_passwd_main},
    {"publish", cli_publish_main},
    {"token", cli_token_main},
    {"check", cli_check_main},
};

int main(int argc, char **argv)
{
    const char *env_path = ".env";
    int env_optional = 1;
    for (size_t i = 0; argc > 1 && i < ARRAY_LEN(verbs); i++)
        if (strcmp(argv[1], verbs[i].name) == 0) return verbs[i].run(argc - 1, argv + 1);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--version") == 0) {
            printf("ssehub %s\n", SSE_VERSION);
            return 0;
        } else if (strcmp(argv[i], "--env-file") == 0 && i + 1 < argc) {
            env_path = argv[++i];
            env_optional = 0;
        } else {
            fprintf(stderr, "ssehub: unknown argument \"%s\" (see --help)\n", argv[i]);
            return 2;
        }
    }

    char err[SSE_ERR_LEN];
    static config_t cfg;
    static log_t lg = {.level = LOG_INFO, .fd = STDERR_FILENO};
    if (settings_load(env_path, env_optional, &cfg, NULL, &lg, err)) {
        fprintf(stderr, "ssehub: %s\n", err);
        return 1;
    }

    signal(SIGPIPE, SIG_IGN);
    int fd_limit = raise_fd_limit();
    static server_t srv;
    srv.cfg = &cfg;
    srv.log = &lg;
    srv.assets = ssehub_assets;
    /* Room for listeners, logs and the odd file: everything else may be a client. */
    srv.max_conns = fd_limit - 64;
    if (cfg.max_connections > 0 && cfg.max_connections < srv.max_conns)
        srv.max_conns = cfg.max_connections;
    bus_init(&srv.bus, server_post_all, &srv);
    pthread_mutex_init(&srv.tls_mu, NULL);
    srv.login_limit = ratelimit_new(cfg.login_max_failures, cfg.login_max_block, RATELIMIT_MAX_KEYS);
    if (users_any_hashed(&cfg)) { /* argon2id checks run on their own threads, never on a loop */
        srv.login_dummy_hash = users_dummy_hash();
        srv.login_jobs = srv.login_dummy_hash ? jobs_new(USERS_CHECK_THREADS, USERS_CHECK_QUEUE,
                                                         USERS_CHECK_PER_ADDRESS)
                                              : NULL;
        if (!srv.login_jobs) {
            fprintf(stderr, "ssehub: SSE_USERS_FILE: cannot start the password checks\n");
            return 1;
        }
    }
    caps_init(&srv.caps, cfg.max_conns_per_ip, cfg.max_streams_per_user);
    if (*cfg.tls_cert) {
        srv.tls_ctx = tls_ctx_load(cfg.tls_cert, cfg.tls_key, err);
        srv.tls = srv.tls_ctx != NULL;
        if (!srv.tls_ctx) {
            fprintf(stderr, "ssehub: %s\n", err);
            return 1;
        }
    }

    store_bounds_t bounds = {0, 0};
    bool cluster = cfg.redis_host != NULL || cfg.nsentinels > 0;
    if (cluster || (strcmp(cfg.db_path, "") != 0 && strcmp(cfg.db_path, "off") != 0)) {
        store_options_t so = {
            .path = cfg.db_path,
            .max_age_ms = (int64_t)cfg.history_max_age * 1000,
            .max_events = (uint64_t)cfg.history_max_events,
            .max_bytes = cfg.db_max_bytes,
            .sync_full = strcmp(cfg.db_sync, "full") == 0,
            .trim_interval_ms = 10000, /* well inside the minute promised for trimming */
            .feed = publish_feed,      /* live delivery: every stored event, in id order */
            .feed_arg = &srv.bus,
            .redis_host = cfg.redis_host,
            .redis_port = cfg.redis_port,
            .redis_db = cfg.redis_db,
            .redis_min_replicas = cfg.redis_min_replicas,
            .redis_sentinel_hosts = (const char *const *)cfg.sentinel_hosts,
            .redis_sentinel_ports = cfg.sentinel_ports,
            .redis_nsentinels = cfg.nsentinels,
            .redis_master = cfg.redis_master,
        };
        if (cluster ? store_redis_open(&so, &srv.store, err) : store_sqlite_open(&so, &srv.store, err)) {
            fprintf(stderr, "ssehub: %s: %s\n",
                    !cluster ? "SSE_DB" : cfg.nsentinels ? "SSE_REDIS_SENTINELS" : "SSE_REDIS_URL", err);
            return 1;
        }
        srv.store->ops->bounds(srv.store, &bounds);
    }

    int nworkers = cfg.workers > 0 ? cfg.workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nworkers < 1) nworkers = 1;
    srv.main_loop = ev_default_loop(EVFLAG_AUTO);
    static ev_async stop_request;
    ev_async_init(&stop_request, on_stop);
    ev_async_start(srv.main_loop, &stop_request);
    srv.stop_request = &stop_request;
    static ev_signal sigterm, sigint, sighup;
    ev_signal_init(&sigterm, on_signal, SIGTERM);
    ev_signal_init(&sigint, on_signal, SIGINT);
    sigterm.data = sigint.data = &srv;
    ev_signal_start(srv.main_loop, &sigterm);
    ev_signal_start(srv.main_loop, &sigint);
    ev_signal_init(&sighup, on_reload, SIGHUP);
    sighup.data = &srv;
    ev_signal_start(srv.main_loop, &sighup);

    srv.workers = xcalloc((size_t)nworkers, sizeof *srv.workers);
    int port = cfg.port;
    for (int i = 0; i < nworkers; i++) {
        srv.workers[i] = worker_new(&srv, i, cfg.host, &port, err);
        if (!srv.workers[i]) {
            fprintf(stderr, "ssehub: %s\n", err);
            return 1;
        }
        /* Every id up to here is history: a resuming stream replays up to it, then goes live. */
        srv.workers[i]->sh.last_seen_id = bounds.latest;
        srv.nworkers = i + 1;
    }
    for (int i = 0; i < nworkers; i++) {
        int e = worker_start(srv.workers[i]);
        if (e) {
            fprintf(stderr, "ssehub: cannot start worker thread: %s\n", strerror(e));
            return 1;
        }
    }
    /* The feed delivers what comes after the history the workers were set up with. */
    if (srv.store) srv.store->ops->start_feed(srv.store, bounds.latest);
    log_info(&lg, "start ssehub %s listening on %s:%d scheme=%s workers=%d max_connections=%d fd_limit=%d "
                  "heartbeat=%ds accounts=%d",
             SSE_VERSION, cfg.host, port, srv.tls ? "https" : "http", nworkers, srv.max_conns, fd_limit, cfg.heartbeat,
             cfg.naccounts);
    if (cluster && cfg.nsentinels)
        log_info(&lg, "cluster sentinels=%s master=%s oldest=%llu latest=%llu max_age=%ds max_events=%d "
                      "min_replicas=%d (SSE_DB is ignored: Redis holds the history)",
                 cfg.redis_sentinels, cfg.redis_master, (unsigned long long)bounds.oldest,
                 (unsigned long long)bounds.latest, cfg.history_max_age, cfg.history_max_events,
                 cfg.redis_min_replicas);
    else if (cluster)
        log_info(&lg, "cluster redis=%s:%d/%d oldest=%llu latest=%llu max_age=%ds max_events=%d "
                      "min_replicas=%d (SSE_DB is ignored: Redis holds the history)",
                 cfg.redis_host, cfg.redis_port, cfg.redis_db, (unsigned long long)bounds.oldest,
                 (unsigned long long)bounds.latest, cfg.history_max_age, cfg.history_max_events,
                 cfg.redis_min_replicas);
    else if (srv.store)
        log_info(&lg, "history db=%s oldest=%llu latest=%llu max_age=%ds max_events=%d", cfg.db_path,
                 (unsigned long long)bounds.oldest, (unsigned long long)bounds.latest,
                 cfg.history_max_age, cfg.history_max_events);
    else
        log_info(&lg, "history off: Last-Event-ID and /notifications are not available");
    if (cfg.trust_client_id)
        log_warn(&lg, "SSE_TRUST_CLIENT_ID=1: tokens without a signed user id may claim any user id "
                      "(goSSE's behaviour); see docs/security.md to turn it off");
    if (cfg.norigins == 0 && !cfg.any_origin)
        log_info(&lg, "ALLOWED_ORIGIN is empty: browsers on other origins will be refused");
    if (netaddr_list_has_all(&cfg.proxies))
        log_warn(&lg, "SSE_TRUSTED_PROXIES holds a /0: every client may claim any address "
                      "(X-Forwarded-For); list only your proxies, see docs/security.md");

    ev_run(srv.main_loop, 0);

    /* No new requests; those taken get their answers: logins still queued get 503,
     * commits still queued complete, and both land in the workers' inboxes. */
    atomic_store(&srv.stopping, STOP_DRAIN);
    for (int i = 0; i < nworkers; i++) worker_wake(srv.workers[i]);
    jobs_stop(srv.login_jobs);
    bool had_store = srv.store != NULL;
    if (srv.store) srv.store->ops->drain(srv.store); /* later calls fail; freed after the workers */
    /* Every answer is posted: the workers deliver them, then end their connections. */
    atomic_store(&srv.stopping, STOP_CLOSE);
    for (int i = 0; i < nworkers; i++) worker_wake(srv.workers[i]);
    for (int i = 0; i < nworkers; i++) worker_join(srv.workers[i]);
    uint64_t last_id = srv.bus.last_id;
    for (int i = 0; had_store && i < nworkers; i++)
        if (srv.workers[i]->sh.last_seen_id > last_id) last_id = srv.workers[i]->sh.last_seen_id;
    if (srv.store) srv.store->ops->close(srv.store);
    jobs_free(srv.login_jobs);
    for (int i = 0; i < nworkers; i++) worker_free(srv.workers[i]);
    free(srv.workers);
    log_info(&lg, "stop ssehub last_id=%llu", (unsigned long long)last_id);
    bus_free(&srv.bus);
    if (srv.tls_ctx) SSL_CTX_free(srv.tls_ctx);
    pthread_mutex_destroy(&srv.tls_mu);
    ratelimit_free(srv.login_limit);
    free(srv.login_dummy_hash);
    caps_free(&srv.caps);
    config_free(&cfg);
    return 0;
}
