/* Settings table, .env parsing and validation: every SSE_* variable is described once here. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "log.h"

enum setting_type { SET_STR, SET_INT, SET_DURATION };

/** One row of the settings table: where it lives in config_t and how to check it. */
typedef struct setting {
    const char *name;
    enum setting_type type;
    const char *def; /* default, as text; NULL = unset */
    long min, max;   /* bounds for SET_INT */
    size_t offset;
    const char *help;
    bool secret; /* never printed: `ssehub check` masks it */
} setting_t;

#define S(name, field, def, help) {name, SET_STR, def, 0, 0, offsetof(config_t, field), help, false}
#define I(name, field, def, min, max, help)                                                        \
    {name, SET_INT, def, min, max, offsetof(config_t, field), help, false}
/* A secret string: a key or a password. */
#define K(name, field, help) {name, SET_STR, NULL, 0, 0, offsetof(config_t, field), help, true}
#define D(name, field, def, min, max, help)                                                        \
    {name, SET_DURATION, def, min, max, offsetof(config_t, field), help, false}

static const setting_t settings[] = {
    S("SSE_HOST", host, "0.0.0.0", "address to listen on"),
    I("SSE_PORT", port, "8080", 0, 65535, "port to listen on (0 picks a free one)"),
    K("SSE_APP_KEY", app_key, "secret that signs tokens (HS256); required, 32 bytes or more"),
    S("SSE_CLIENT_USERNAME", client_username, NULL, "subscriber account: name"),
    K("SSE_CLIENT_PASSWORD", client_password, "subscriber account: password"),
    S("SSE_BROADCASTER_USERNAME", broadcaster_username, NULL, "publisher account: name"),
    K("SSE_BROADCASTER_PASSWORD", broadcaster_password, "publisher account: password"),
    S("SSE_ADMIN_USERNAME", admin_username, NULL, "admin account: name"),
    K("SSE_ADMIN_PASSWORD", admin_password, "admin account: password"),
    S("SSE_USERNAME", single_username, NULL, "one account with every role (older form)"),
    K("SSE_PASSWORD", single_password, "password of SSE_USERNAME"),
    S("ALLOWED_ORIGIN", allowed_origin, "", "comma-separated origins allowed by CORS (* = any)"),
    I("SSE_HEARTBEAT", heartbeat, "15", 1, 3600, "seconds between ': ping' comments on streams"),
    I("SSE_RETRY", retry_ms, "3000", 0, 3600000, "reconnect delay sent to browsers (ms)"),
    I("SSE_TOKEN_TTL", token_ttl, "3600", 1, 31536000, "lifetime of /login tokens (seconds)"),
    S("SSE_LOG_LEVEL", log_level, "info", "debug, info, warn or error"),
    I("SSE_MAX_CONNECTIONS", max_connections, "0", 0, 100000000,
      "most open connections (0 = as many as the fd limit allows)"),
    I("SSE_MAX_HEADER_BYTES", max_header_bytes, "8192", 256, 1048576,
      "largest request head; more gets 431"),
    I("SSE_MAX_BODY_BYTES", max_body_bytes, "65536", 0, 67108864,
      "largest request body; more gets 413"),
    I("SSE_HEADER_TIMEOUT", header_timeout, "10", 1, 3600,
      "seconds to receive a whole request once it has started"),
    I("SSE_IDLE_TIMEOUT", idle_timeout, "60", 1, 86400,
      "seconds an idle keep-alive connection is kept open"),
    I("SSE_MAX_QUEUE_BYTES", max_queue_bytes, "1048576", 1024, 1073741824,
      "bytes queued for one subscriber before it is dropped"),
    I("SSE_STREAM_SNDBUF", stream_sndbuf, "0", 0, 67108864,
      "kernel send buffer of each stream in bytes (0 = the kernel's autotuning, up to tcp_wmem)"),
    I("SSE_WORKERS", workers, "0", 0, 256, "worker threads (0 = one per core)"),
    S("SSE_DB", db_path, "./data/ssehub.db", "history database file (\"off\" = no history)"),
    D("SSE_HISTORY_MAX_AGE", history_max_age, "7d", 0, 3650L * 86400,
      "events older than this are trimmed (seconds, or with s/m/h/d; 0 = keep)"),
    I("SSE_HISTORY_MAX_EVENTS", history_max_events, "1000000", 0, 2000000000,
      "at most this many events are kept (0 = no limit)"),
    I("SSE_DB_MAX_BYTES", db_max_bytes, "0", 0, 2000000000,
      "database size cap; publishes get 503 past it (0 = no cap)"),
    S("SSE_DB_SYNC", db_sync, "normal", "normal (survives a crash) or full (also power loss)"),
    S("SSE_TLS_CERT", tls_cert, "", "PEM certificate chain: turns on HTTPS (with SSE_TLS_KEY)"),
    S("SSE_TLS_KEY", tls_key, "", "PEM private key of SSE_TLS_CERT"),
    S("SSE_COOKIE_SAMESITE", cookie_samesite, "",
      "SameSite of the sse_token cookie: Lax, Strict or None (default: None with TLS, else Lax)"),
    S("SSE_COOKIE_DOMAIN", cookie_domain, "", "Domain of the sse_token cookie (default: none)"),
    I("SSE_TRUST_CLIENT_ID", trust_client_id, "1", 0, 1,
      "1: tokens without a signed user id take the id the client sends (goSSE); 0: refuse"),
    S("SSE_JWT_PUBLIC_KEY", jwt_public_key, "",
      "PEM public key (RSA or EC P-256): also accept RS256/ES256 tokens it signed"),
    I("SSE_MAX_CONNS_PER_IP", max_conns_per_ip, "0", 0, 100000000,
      "most open connections from one client address (0 = no cap)"),
    I("SSE_MAX_STREAMS_PER_USER", max_streams_per_user, "0", 0, 100000000,
      "most streams of one user id; a new one closes the oldest (0 = no cap)"),
    S("SSE_USERS_FILE", users_file, "",
      "accounts file: username:role:argon2id-hash lines (make one with `ssehub passwd`)"),
    I("SSE_LOGIN_MAX_FAILURES", login_max_failures, "5", 0, 1000,
      "failed logins per address (twice that per username) before waits start (0 = no limit)"),
    I("SSE_LOGIN_MAX_BLOCK", login_max_block, "900", 1, 86400,
      "longest wait after failed logins (seconds); waits double from 1 s"),
    S("SSE_JWT_ISSUER", jwt_issuer, "",
      "with SSE_JWT_PUBLIC_KEY: the \"iss\" its tokens must carry (empty = not checked)"),
    S("SSE_JWT_AUDIENCE", jwt_audience, "",
      "with SSE_JWT_PUBLIC_KEY: a value their \"aud\" must hold (empty = not checked)"),
    S("SSE_REDIS_URL", redis_url, "",
      "redis://HOST:PORT[/DB]: cluster mode, Redis holds the history and the fan-out (SSE_DB ignored)"),
    I("SSE_REUSE_PORT", reuse_port, "0", 0, 1,
      "1: other processes may listen on the same port and share its connections; "
      "0: start fails when one does"),
    S("SSE_TRUSTED_PROXIES", trusted_proxies, "",
      "comma list of proxy addresses/CIDRs whose X-Forwarded-For and Forwarded name the client"),
    I("SSE_REDIS_MIN_REPLICAS", redis_min_replicas, "0", 0, 100,
      "cluster mode: a publish gets 201 only once this many Redis replicas hold it (WAIT, 1 s; else 503)"),
    S("SSE_REDIS_SENTINELS", redis_sentinels, "",
      "HOST:PORT,...: cluster mode on the primary these Redis Sentinels name (instead of SSE_REDIS_URL)"),
    S("SSE_REDIS_MASTER", redis_master, "", "with SSE_REDIS_SENTINELS: the master name they monitor"),
};

int config_parse_duration(const char *s, long max, long *out)
{
    char buf[32];
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) n--;
    if (n == 0 || n >= sizeof buf) return SSE_EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    long mult = 1;
    switch (buf[n - 1]) {
    case 's': mult = 1; break;
    case 'm': mult = 60; break;
    case 'h': mult = 3600; break;
    case 'd': mult = 86400; break;
    default: mult = 0;
    }
    if (mult) buf[n - 1] = '\0';
    long v;
    if (config_parse_int(buf, 0, max / (mult ? mult : 1), &v)) return SSE_EINVAL;
    *out = v * (mult ? mult : 1);
    return SSE_OK;
}

int config_parse_redis_url(const char *s, char **host, int *port, int *db)
{
    static const char scheme[] = "redis://";
    if (strncmp(s, scheme, strlen(scheme)) != 0) return SSE_EINVAL;
    const char *h = s + strlen(scheme), *he;
    const char *p;
    if (*h == '[') { /* [IPv6] */
        he = strchr(h, ']');
        if (!he || he == h + 1) return SSE_EINVAL;
        h++;
        p = he + 1;
    } else {
        he = h + strcspn(h, ":/");
        p = he;
    }
    if (he == h) return SSE_EINVAL;
    for (const char *c = h; c < he; c++)
        if (!(isalnum((unsigned char)*c) || *c == '.' || *c == '-' || *c == '_' || *c == ':'))
            return SSE_EINVAL;
    long pv = 6379, dv = 0;
    char num[16];
    if (*p == ':') {
        size_t n = strcspn(++p, "/");
        if (n == 0 || n >= sizeof num) return SSE_EINVAL;
        memcpy(num, p, n);
        num[n] = '\0';
        if (config_parse_int(num, 1, 65535, &pv) || !isdigit((unsigned char)num[0])) return SSE_EINVAL;
        p += n;
    }
    if (*p == '/') {
        p++;
        size_t n = strlen(p);
        if (n >= sizeof num) return SSE_EINVAL;
        if (n > 0 && (config_parse_int(p, 0, 2147483647, &dv) || !isdigit((unsigned char)p[0])))
            return SSE_EINVAL;
    } else if (*p) {
        return SSE_EINVAL;
    }
    *host = xstrndup(h, (size_t)(he - h));
    *port = (int)pv;
    *db = (int)dv;
    return SSE_OK;
}

int config_parse_host_ports(const char *s, char ***hosts, int **ports, int *n)
{
    *hosts = NULL;
    *ports = NULL;
    *n = 0;
    for (;;) { /* every entry, the last too, must be HOST:PORT: "a:1," is refused */
        size_t len = strcspn(s, ",");
        const char *colon = memrchr(s, ':', len);
        char num[8];
        size_t nl = colon ? len - (size_t)(colon - s) - 1 : 0;
        long pv;
        bool ok = colon && colon > s && nl > 0 && nl < sizeof num;
        for (const char *c = s; ok && c < colon; c++)
            ok = isalnum((unsigned char)*c) || *c == '.' || *c == '-' || *c == '_';
        if (ok) {
            memcpy(num, colon + 1, nl);
            num[nl] = '\0';
            ok = isdigit((unsigned char)num[0]) && config_parse_int(num, 1, 65535, &pv) == 0;
        }
        if (!ok || *n >= CONFIG_MAX_HOST_PORTS) {
            for (int i = 0; i < *n; i++) free((*hosts)[i]);
            free(*hosts);
            free(*ports);
            *hosts = NULL;
            *ports = NULL;
            *n = 0;
            return SSE_EINVAL;
        }
        *hosts = xrealloc(*hosts, (size_t)(*n + 1) * sizeof **hosts);
        *ports = xrealloc(*ports, (size_t)(*n + 1) * sizeof **ports);
        (*hosts)[*n] = xstrndup(s, (size_t)(colon - s));
        (*ports)[*n] = (int)pv;
        (*n)++;
        s += len;
        if (*s != ',') break;
        s++;
    }
    return SSE_OK;
}

int config_parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    while (isspace((unsigned char)*s)) s++;
    if (*s == '\0') return SSE_EINVAL;
    long v = strtol(s, &end, 10);
    while (isspace((unsigned char)*end)) end++;
    if (errno || *end != '\0' || v < min || v > max) return SSE_EINVAL;
    *out = v;
    return SSE_OK;
}

/* ---- .env files ---- */

static void envfile_add(envfile_t *ef, const char *name, size_t nlen, char *value)
{
    for (int i = 0; i < ef->count; i++) {
        if (strlen(ef->names[i]) == nlen && memcmp(ef->names[i], name, nlen) == 0) {
            free(ef->values[i]); /* later lines win, as in a shell */
            ef->values[i] = value;
            return;
        }
    }
    ef->names = xrealloc(ef->names, sizeof(char *) * (size_t)(ef->count + 1));
    ef->values = xrealloc(ef->values, sizeof(char *) * (size_t)(ef->count + 1));
    ef->names[ef->count] = xstrndup(name, nlen);
    ef->values[ef->count] = value;
    ef->count++;
}

/* Parses the value part of one line (after '='), up to end; returns a new string or NULL. */
static char *parse_value(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    if (p < end && (*p == '"' || *p == '\'')) {
        char q = *p++;
        char *out = xmalloc((size_t)(end - p) + 1);
        size_t n = 0;
        for (; p < end && *p != q; p++) {
            if (q == '"' && *p == '\\' && p + 1 < end) {
                p++;
                out[n++] = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
            } else {
                out[n++] = *p;
            }
        }
        if (p >= end) { /* unterminated quote */
            free(out);
            return NULL;
        }
        for (p++; p < end; p++) { /* only whitespace or a comment may follow */
            if (*p == '#') break;
            if (*p != ' ' && *p != '\t') {
                free(out);
                return NULL;
            }
        }
        out[n] = '\0';
        return out;
    }
    const char *v = p;
    const char *e = v;
    for (; p < end; p++) {
        if (*p == '#' && (p == v || p[-1] == ' ' || p[-1] == '\t')) break;
        if (*p != ' ' && *p != '\t') e = p + 1;
    }
    return xstrndup(v, (size_t)(e - v));
}

int envfile_parse(envfile_t *ef, const char *text, char err[SSE_ERR_LEN])
{
    memset(ef, 0, sizeof *ef);
    int lineno = 0;
    const char *line = text;
    while (*line) {
        const char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        const char *next = *end ? end + 1 : end;
        if (end > line && end[-1] == '\r') end--;
        lineno++;
        const char *p = line;
        while (p < end && isspace((unsigned char)*p)) p++;
        if (p == end || *p == '#') {
            line = next;
            continue;
        }
        if ((size_t)(end - p) > 7 && memcmp(p, "export ", 7) == 0) p += 7;
        while (p < end && isspace((unsigned char)*p)) p++;
        const char *name = p;
        while (p < end && (isalnum((unsigned char)*p) || *p == '_')) p++;
        size_t nlen = (size_t)(p - name);
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        char *value = NULL;
        if (nlen == 0 || p == end || *p != '=' || !(value = parse_value(p + 1, end))) {
            snprintf(err, SSE_ERR_LEN, "line %d: expected NAME=VALUE", lineno);
            envfile_free(ef);
            return SSE_EINVAL;
        }
        envfile_add(ef, name, nlen, value);
        line = next;
    }
    return SSE_OK;
}

int envfile_load(envfile_t *ef, const char *path, int optional, char err[SSE_ERR_LEN])
{
    memset(ef, 0, sizeof *ef);
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (optional && errno == ENOENT) return SSE_OK;
        snprintf(err, SSE_ERR_LEN, "%s: %s", path, strerror(errno));
        return SSE_EINVAL;
    }
    size_t cap = 4096, len = 0;
    char *buf = xmalloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            if (cap >= (1u << 20)) break;
            buf = xrealloc(buf, cap *= 2);
        }
    }
    fclose(f);
    buf[len] = '\0';
    if (memchr(buf, '\0', len)) {
        snprintf(err, SSE_ERR_LEN, "%s: not a text file", path);
        free(buf);
        return SSE_EINVAL;
    }
    char perr[SSE_ERR_LEN] = "";
    int rc = envfile_parse(ef, buf, perr);
    free(buf);
    if (rc) snprintf(err, SSE_ERR_LEN, "%.100s: %.140s", path, perr);
    return rc;
}

const char *envfile_get(const envfile_t *ef, const char *name)
{
    if (!ef) return NULL;
    for (int i = 0; i < ef->count; i++)
        if (strcmp(ef->names[i], name) == 0) return ef->values[i];
    return NULL;
}

void envfile_free(envfile_t *ef)
{
    for (int i = 0; i < ef->count; i++) {
        free(ef->names[i]);
        free(ef->values[i]);
    }
    free(ef->names);
    free(ef->values);
    memset(ef, 0, sizeof *ef);
}

/* ---- settings ---- */

static const char *lookup(const envfile_t *ef, const char *name)
{
    const char *v = getenv(name); /* a real environment variable wins over the file */
    return v ? v : envfile_get(ef, name);
}

static int add_account(config_t *cfg, const char *user, const char *pass, enum role role,
                       const char *uvar, const char *pvar, char err[SSE_ERR_LEN])
{
    int has_user = user && *user, has_pass = pass && *pass;
    if (!has_user && !has_pass) return SSE_OK;
    if (!has_user || !has_pass) {
        snprintf(err, SSE_ERR_LEN, "%s: must be set together with %s", has_user ? pvar : uvar,
                 has_user ? uvar : pvar);
        return SSE_EINVAL;
    }
    for (int i = 0; i < cfg->naccounts; i++) {
        if (strcmp(cfg->accounts[i].username, user) == 0) {
            snprintf(err, SSE_ERR_LEN, "%s: account name \"%s\" is already used", uvar, user);
            return SSE_EINVAL;
        }
    }
    cfg->accounts = xrealloc(cfg->accounts, sizeof *cfg->accounts * (size_t)(cfg->naccounts + 1));
    account_t *a = &cfg->accounts[cfg->naccounts++];
    a->hash = NULL;
    a->username = xstrdup(user);
    a->password = xstrdup(pass);
    a->role = role;
    return SSE_OK;
}

static int parse_origins(config_t *cfg, char err[SSE_ERR_LEN])
{
    const char *p = cfg->allowed_origin;
    while (*p) {
        while (*p == ' ' || *p == ',') p++;
        const char *s = p;
        while (*p && *p != ',') p++;
        const char *e = p;
        while (e > s && e[-1] == ' ') e--;
        if (e == s) continue;
        if (e - s == 1 && *s == '*') {
            cfg->any_origin = 1;
            continue;
        }
        for (const char *c = s; c < e; c++) {
            if ((unsigned char)*c <= 0x20 || *c == 0x7f) {
                snprintf(err, SSE_ERR_LEN, "ALLOWED_ORIGIN: origins may not contain spaces or "
                                           "control characters");
                return SSE_EINVAL;
            }
        }
        if (cfg->norigins == CONFIG_MAX_ORIGINS) {
            snprintf(err, SSE_ERR_LEN, "ALLOWED_ORIGIN: at most %d origins", CONFIG_MAX_ORIGINS);
            return SSE_EINVAL;
        }
        size_t n = (size_t)(e - s);
        if (s[n - 1] == '/') n--; /* "https://a.example/" names the same origin */
        if (n > CONFIG_MAX_ORIGIN_LEN) { /* it must fit the response heads (cors_headers) */
            snprintf(err, SSE_ERR_LEN, "ALLOWED_ORIGIN: an origin has at most %d bytes (got %zu)",
                     CONFIG_MAX_ORIGIN_LEN, n);
            return SSE_EINVAL;
        }
        cfg->origins[cfg->norigins++] = xstrndup(s, n);
    }
    return SSE_OK;
}

int config_load(config_t *cfg, const envfile_t *ef, char err[SSE_ERR_LEN])
{
    memset(cfg, 0, sizeof *cfg);
    for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
        const setting_t *s = &settings[i];
        const char *v = lookup(ef, s->name);
        if (!v || (s->type != SET_STR && *v == '\0')) v = s->def;
        if (s->type == SET_STR) {
            *(char **)((char *)cfg + s->offset) = v ? xstrdup(v) : NULL;
        } else if (s->type == SET_DURATION) {
            long n;
            if (config_parse_duration(v, s->max, &n)) {
                snprintf(err, SSE_ERR_LEN, "%s: must be a duration like 30s, 15m, 12h or 7d, at most "
                                           "%ld days (got \"%.40s\")",
                         s->name, s->max / 86400, v);
                return SSE_EINVAL;
            }
            *(int *)((char *)cfg + s->offset) = (int)n;
        } else {
            long n;
            if (config_parse_int(v, s->min, s->max, &n)) {
                snprintf(err, SSE_ERR_LEN, "%s: must be a whole number from %ld to %ld (got \"%.40s\")",
                         s->name, s->min, s->max, v);
                return SSE_EINVAL;
            }
            *(int *)((char *)cfg + s->offset) = (int)n;
        }
    }
    if (!cfg->app_key || !*cfg->app_key) {
        snprintf(err, SSE_ERR_LEN, "SSE_APP_KEY: must be set (the secret that signs tokens); "
                                   "make one with `openssl rand -hex 32`");
        return SSE_EINVAL;
    }
    if (strlen(cfg->app_key) < CONFIG_MIN_APP_KEY) { /* a short HS256 secret can be guessed offline */
        snprintf(err, SSE_ERR_LEN, "SSE_APP_KEY: must be at least %d bytes (got %zu); "
                                   "make one with `openssl rand -hex 32`",
                 CONFIG_MIN_APP_KEY, strlen(cfg->app_key));
        return SSE_EINVAL;
    }
    if (strcmp(cfg->db_sync, "normal") != 0 && strcmp(cfg->db_sync, "full") != 0) {
        snprintf(err, SSE_ERR_LEN, "SSE_DB_SYNC: must be normal or full (got \"%.40s\")", cfg->db_sync);
        return SSE_EINVAL;
    }
    if (!*cfg->tls_cert != !*cfg->tls_key) {
        snprintf(err, SSE_ERR_LEN, "%s: must be set together with %s",
                 *cfg->tls_cert ? "SSE_TLS_KEY" : "SSE_TLS_CERT", *cfg->tls_cert ? "SSE_TLS_CERT" : "SSE_TLS_KEY");
        return SSE_EINVAL;
    }
    const char *ss = cfg->cookie_samesite;
    if (*ss && strcmp(ss, "Lax") != 0 && strcmp(ss, "Strict") != 0 && strcmp(ss, "None") != 0) {
        snprintf(err, SSE_ERR_LEN, "SSE_COOKIE_SAMESITE: must be Lax, Strict or None (got \"%.40s\")", ss);
        return SSE_EINVAL;
    }
    if (strcmp(ss, "None") == 0 && !*cfg->tls_cert) {
        snprintf(err, SSE_ERR_LEN, "SSE_COOKIE_SAMESITE: None needs TLS (browsers refuse SameSite=None "
                                   "without Secure); set SSE_TLS_CERT and SSE_TLS_KEY");
        return SSE_EINVAL;
    }
    for (const char *d = cfg->cookie_domain; *d; d++) {
        if (!(isalnum((unsigned char)*d) || *d == '.' || *d == '-')) {
            snprintf(err, SSE_ERR_LEN, "SSE_COOKIE_DOMAIN: must be a domain name (letters, digits, '.', '-')");
            return SSE_EINVAL;
        }
    }
    if (log_level_parse(cfg->log_level) < 0) {
        snprintf(err, SSE_ERR_LEN, "SSE_LOG_LEVEL: must be debug, info, warn or error (got \"%.40s\")",
                 cfg->log_level);
        return SSE_EINVAL;
    }
    int rc = add_account(cfg, cfg->client_username, cfg->client_password, ROLE_SUBSCRIBER,
                         "SSE_CLIENT_USERNAME", "SSE_CLIENT_PASSWORD", err);
    if (!rc)
        rc = add_account(cfg, cfg->broadcaster_username, cfg->broadcaster_password,
                         ROLE_PUBLISHER, "SSE_BROADCASTER_USERNAME", "SSE_BROADCASTER_PASSWORD",
                         err);
    if (!rc)
        rc = add_account(cfg, cfg->admin_username, cfg->admin_password, ROLE_ADMIN,
                         "SSE_ADMIN_USERNAME", "SSE_ADMIN_PASSWORD", err);
    if (!rc)
        rc = add_account(cfg, cfg->single_username, cfg->single_password, ROLE_ADMIN,
                         "SSE_USERNAME", "SSE_PASSWORD", err);
    if (rc) return rc;
    if (cfg->naccounts == 0 && !*cfg->users_file) { /* users_load() checks the file has one */
        snprintf(err, SSE_ERR_LEN, "SSE_CLIENT_USERNAME: no account is set (set at least one of "
                                   "SSE_CLIENT_, SSE_BROADCASTER_, SSE_ADMIN_ USERNAME/PASSWORD)");
        return SSE_EINVAL;
    }
    if ((*cfg->jwt_issuer || *cfg->jwt_audience) && !*cfg->jwt_public_key) {
        snprintf(err, SSE_ERR_LEN, "%s: needs SSE_JWT_PUBLIC_KEY (it applies to the tokens that key signed)",
                 *cfg->jwt_issuer ? "SSE_JWT_ISSUER" : "SSE_JWT_AUDIENCE");
        return SSE_EINVAL;
    }
    if (!cfg->host || !*cfg->host) {
        snprintf(err, SSE_ERR_LEN, "SSE_HOST: must not be empty");
        return SSE_EINVAL;
    }
    if (*cfg->redis_url &&
        config_parse_redis_url(cfg->redis_url, &cfg->redis_host, &cfg->redis_port, &cfg->redis_db)) {
        snprintf(err, SSE_ERR_LEN, "SSE_REDIS_URL: must be redis://HOST:PORT[/DB] (got \"%.60s\")",
                 cfg->redis_url);
        return SSE_EINVAL;
    }
    if (*cfg->redis_sentinels) {
        if (*cfg->redis_url) {
            snprintf(err, SSE_ERR_LEN, "SSE_REDIS_SENTINELS: set it or SSE_REDIS_URL, not both "
                                       "(the sentinels name the primary)");
            return SSE_EINVAL;
        }
        if (config_parse_host_ports(cfg->redis_sentinels, &cfg->sentinel_hosts, &cfg->sentinel_ports,
                                    &cfg->nsentinels)) {
            snprintf(err, SSE_ERR_LEN, "SSE_REDIS_SENTINELS: must be HOST:PORT,... (at most %d; got \"%.60s\")",
                     CONFIG_MAX_HOST_PORTS, cfg->redis_sentinels);
            return SSE_EINVAL;
        }
        if (!*cfg->redis_master) {
            snprintf(err, SSE_ERR_LEN, "SSE_REDIS_MASTER: must be set with SSE_REDIS_SENTINELS "
                                       "(the master name they monitor)");
            return SSE_EINVAL;
        }
    } else if (*cfg->redis_master) {
        snprintf(err, SSE_ERR_LEN, "SSE_REDIS_MASTER: needs SSE_REDIS_SENTINELS");
        return SSE_EINVAL;
    }
    if (cfg->redis_min_replicas > 0 && !cfg->redis_host && !cfg->nsentinels) {
        snprintf(err, SSE_ERR_LEN, "SSE_REDIS_MIN_REPLICAS: needs cluster mode (SSE_REDIS_URL or "
                                   "SSE_REDIS_SENTINELS)");
        return SSE_EINVAL;
    }
    char perr[SSE_ERR_LEN] = "";
    if (netaddr_list_parse(&cfg->proxies, cfg->trusted_proxies, perr)) {
        snprintf(err, SSE_ERR_LEN, "SSE_TRUSTED_PROXIES: %.220s", perr);
        return SSE_EINVAL;
    }
    return parse_origins(cfg, err);
}

void config_free(config_t *cfg)
{
    for (size_t i = 0; i < ARRAY_LEN(settings); i++)
        if (settings[i].type == SET_STR) free(*(char **)((char *)cfg + settings[i].offset));
    for (int i = 0; i < cfg->naccounts; i++) {
        free(cfg->accounts[i].username);
        free(cfg->accounts[i].password);
        free(cfg->accounts[i].hash);
    }
    free(cfg->accounts);
    for (int i = 0; i < cfg->norigins; i++) free(cfg->origins[i]);
    free(cfg->jwt_public_pem);
    free(cfg->redis_host);
    for (int i = 0; i < cfg->nsentinels; i++) free(cfg->sentinel_hosts[i]);
    free(cfg->sentinel_hosts);
    free(cfg->sentinel_ports);
    netaddr_list_free(&cfg->proxies);
    memset(cfg, 0, sizeof *cfg);
}

/* ---- the effective settings ---- */

void config_each(const config_t *cfg, const envfile_t *ef, config_each_fn fn, void *arg)
{
    for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
        const setting_t *s = &settings[i];
        const char *v = getenv(s->name), *source = "env";
        if (!v) {
            v = envfile_get(ef, s->name);
            source = ".env";
        }
        /* config_load() gives a number left empty its default */
        if (!v || (s->type != SET_STR && *v == '\0')) source = "default";
        char num[24];
        const char *value;
        if (s->type == SET_STR) {
            value = *(char *const *)((const char *)cfg + s->offset);
            if (!value) value = "";
        } else {
            snprintf(num, sizeof num, "%d", *(const int *)((const char *)cfg + s->offset));
            value = num;
        }
        fn(arg, s->name, value, source, s->secret);
    }
}

/* ---- unknown names ---- */

#define SUGGEST_MAX_NAME 64

/*
 * Edit distance of a and b with letter case ignored, counting a swap of two neighbours
 * as one edit (optimal string alignment), or SUGGEST_MAX_NAME when either is longer.
 */
static int name_distance(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b);
    if (n >= SUGGEST_MAX_NAME || m >= SUGGEST_MAX_NAME) return SUGGEST_MAX_NAME;
    int d[SUGGEST_MAX_NAME + 1][SUGGEST_MAX_NAME + 1];
    for (size_t i = 0; i <= n; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= m; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= n; i++) {
        for (size_t j = 1; j <= m; j++) {
            int ca = toupper((unsigned char)a[i - 1]), cb = toupper((unsigned char)b[j - 1]);
            int best = d[i - 1][j - 1] + (ca != cb);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ca == toupper((unsigned char)b[j - 2]) &&
                toupper((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[n][m];
}

static bool has_sse_prefix(const char *name)
{
    return strncasecmp(name, "SSE_", 4) == 0;
}

static bool is_setting(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(settings); i++)
        if (strcmp(settings[i].name, name) == 0) return true;
    return false;
}

const char *config_suggest(const char *name)
{
    size_t rest = strlen(name) > 4 ? strlen(name) - 4 : 0;
    int limit = rest <= 3 ? 1 : rest <= 8 ? 2 : 3;
    const char *best = NULL;
    int best_d = limit + 1;
    for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
        int dist = name_distance(name, settings[i].name);
        if (dist < best_d) {
            best_d = dist;
            best = settings[i].name;
        }
    }
    return best;
}

/* Warns about name unless it is a setting, not an SSE_ name, or among seen[0..nseen). */
static int warn_name(const char *name, size_t len, char **seen, int nseen, config_warn_fn warn,
                     void *arg)
{
    char buf[SUGGEST_MAX_NAME * 2];
    if (len >= sizeof buf) len = sizeof buf - 1;
    memcpy(buf, name, len);
    buf[len] = '\0';
    if (!has_sse_prefix(buf) || is_setting(buf)) return 0;
    for (int i = 0; i < nseen; i++)
        if (strcmp(seen[i], buf) == 0) return 0;
    char line[SSE_ERR_LEN];
    const char *near = config_suggest(buf);
    char clean[SUGGEST_MAX_NAME * 2];
    log_clean(buf, clean, sizeof clean);
    if (near)
        snprintf(line, sizeof line, "%s: unknown setting; did you mean %s?", clean, near);
    else
        snprintf(line, sizeof line, "%s: unknown setting", clean);
    warn(arg, line);
    seen[nseen] = xstrdup(buf);
    return 1;
}

int config_warn_unknown(const envfile_t *ef, char *const *envp, config_warn_fn warn, void *arg)
{
    int total = 0;
    for (char *const *e = envp; e && *e; e++) total++;
    if (ef) total += ef->count;
    char **seen = xcalloc((size_t)total + 1, sizeof *seen);
    int nseen = 0;
    for (char *const *e = envp; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        nseen += warn_name(*e, eq ? (size_t)(eq - *e) : strlen(*e), seen, nseen, warn, arg);
    }
    for (int i = 0; ef && i < ef->count; i++)
        nseen += warn_name(ef->names[i], strlen(ef->names[i]), seen, nseen, warn, arg);
    for (int i = 0; i < nseen; i++) free(seen[i]);
    free(seen);
    return nseen;
}

void config_print_help(FILE *out)
{
    fprintf(out, "Settings (environment variables, or NAME=VALUE lines in ./.env; the "
                 "environment wins):\n");
    for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
        const setting_t *s = &settings[i];
        char def[48];
        snprintf(def, sizeof def, "[%s]", s->def ? (*s->def ? s->def : "empty") : "unset");
        fprintf(out, "  %-26s %-11s %s\n", s->name, def, s->help);
    }
}
