/* Settings: one table of SSE_* variables read from the environment and a .env file. */
#ifndef SSE_CONFIG_H
#define SSE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "common.h"
#include "netaddr.h"

enum role { ROLE_NONE = 0, ROLE_SUBSCRIBER = 1, ROLE_PUBLISHER = 2, ROLE_ADMIN = 3 };

/** One login account; passwords stay in memory only. */
typedef struct account {
    char *username;
    char *password; /* SSE_* accounts; "" for SSE_USERS_FILE ones, which never match it */
    char *hash;     /* SSE_USERS_FILE accounts: an argon2id string; NULL for SSE_* ones */
    enum role role;
} account_t;

#define CONFIG_MAX_ORIGINS 16
#define CONFIG_MAX_HOST_PORTS 16 /* most entries in SSE_REDIS_SENTINELS */
/** Longest origin in ALLOWED_ORIGIN, and longest request Origin that is echoed. */
#define CONFIG_MAX_ORIGIN_LEN 511
/** Shortest SSE_APP_KEY: an HS256 secret as long as its SHA-256 output. */
#define CONFIG_MIN_APP_KEY 32

/** Every setting, filled by config_load(); read-only once the server runs. */
typedef struct config {
    char *host;
    int port;
    char *app_key;
    char *client_username, *client_password;
    char *broadcaster_username, *broadcaster_password;
    char *admin_username, *admin_password;
    char *single_username, *single_password;
    char *allowed_origin;
    int heartbeat;    /* seconds */
    int retry_ms;     /* sent as retry: */
    int token_ttl;    /* seconds */
    char *log_level;
    int max_connections;
    int max_header_bytes;
    int max_body_bytes;
    int header_timeout; /* seconds */
    int idle_timeout;   /* seconds */
    int max_queue_bytes;
    int stream_sndbuf; /* 0 = kernel default */
    int workers;
    char *db_path;          /* "" or "off": no history */
    int history_max_age;    /* seconds, 0 = keep */
    int history_max_events; /* 0 = no limit */
    int db_max_bytes;       /* 0 = no cap */
    char *db_sync;          /* "normal" or "full" */
    char *tls_cert, *tls_key; /* both "" = plain HTTP */
    char *cookie_samesite;    /* "" = None with TLS, Lax without */
    char *cookie_domain;
    int trust_client_id;      /* goSSE: a token without sub takes the client's id */
    char *jwt_public_key;     /* path of a PEM public key for RS256/ES256 tokens */
    int max_conns_per_ip;     /* 0 = no cap */
    int max_streams_per_user; /* 0 = no cap */
    char *jwt_public_pem;     /* its contents, read by auth_load_public_key() */
    const char *jwt_public_alg; /* "RS256" or "ES256" from the key's type; NULL without one */
    char *users_file;         /* accounts with argon2id hashes, read by users_load() */
    int login_max_failures;   /* failed logins per address before waits start; 0 = no limit */
    int login_max_block;      /* seconds: the longest wait after failed logins */
    char *jwt_issuer;         /* the "iss" SSE_JWT_PUBLIC_KEY tokens must carry; "" = not checked */
    char *jwt_audience;       /* a value their "aud" must hold; "" = not checked */
    char *redis_url;          /* redis://HOST:PORT[/DB]: cluster mode; "" = one node */
    int reuse_port;           /* 1: other processes may share the port (no check at start) */
    char *trusted_proxies;    /* addresses and ranges whose X-Forwarded-For / Forwarded is believed */
    int redis_min_replicas;   /* cluster mode: replicas that must hold an event before its 201 */
    char *redis_sentinels;    /* HOST:PORT,...: cluster mode on the primary they name; "" = none */
    char *redis_master;       /* the master name the sentinels monitor */

    /* Derived by config_load(). */
    account_t *accounts; /* the SSE_* accounts, then users_load()'s */
    int naccounts;
    char *origins[CONFIG_MAX_ORIGINS];
    int norigins;
    int any_origin; /* ALLOWED_ORIGIN contains "*" */
    char *redis_host; /* from redis_url; NULL when it is "" */
    int redis_port;
    int redis_db;
    char **sentinel_hosts; /* from redis_sentinels: nsentinels hosts and their ports */
    int *sentinel_ports;
    int nsentinels;
    netaddr_list_t proxies; /* SSE_TRUSTED_PROXIES, parsed */
} config_t;

/** A parsed .env file: NAME=VALUE pairs in file order. */
typedef struct envfile {
    char **names;
    char **values;
    int count;
} envfile_t;

/**
 * Parses .env text: NAME=VALUE lines, '#' comments (whole-line, or after whitespace
 * on an unquoted value), optional "export ", single or double quotes. Returns 0, or
 * SSE_EINVAL with a message naming the line in err.
 */
int envfile_parse(envfile_t *ef, const char *text, char err[SSE_ERR_LEN]);

/** Reads and parses a file. A missing file is not an error when optional is set. */
int envfile_load(envfile_t *ef, const char *path, int optional, char err[SSE_ERR_LEN]);

/** Returns the value for name, or NULL. */
const char *envfile_get(const envfile_t *ef, const char *name);

void envfile_free(envfile_t *ef);

/**
 * Fills cfg from the environment, falling back to ef (may be NULL), then to the
 * built-in defaults. Validates every value; on failure returns SSE_EINVAL with one
 * line naming the variable in err. cfg must be released with config_free().
 */
int config_load(config_t *cfg, const envfile_t *ef, char err[SSE_ERR_LEN]);

void config_free(config_t *cfg);

/**
 * The setting whose name is closest to name (letter case ignored; an edit, an insertion,
 * a deletion or two swapped letters count one each), or NULL when none is close enough
 * to be a typing mistake: up to 1 for a name of up to 3 letters after "SSE_", 2 up to 8,
 * 3 beyond.
 */
const char *config_suggest(const char *name);

/** What config_warn_unknown() calls with each warning line. */
typedef void (*config_warn_fn)(void *arg, const char *line);

/**
 * Warns about each name that starts with "SSE_" (in any case) but is no setting, in envp
 * (NAME=VALUE strings ending with NULL; may be NULL), then in ef (may be NULL), once per
 * name: "SSE_PROT: unknown setting; did you mean SSE_PORT?", or without the question
 * when config_suggest() finds nothing. Other names are left alone: the environment holds
 * many. Returns the number of warnings.
 */
int config_warn_unknown(const envfile_t *ef, char *const *envp, config_warn_fn warn, void *arg);

/**
 * What config_each() calls for every setting: its name, its effective value as text
 * (numbers and durations in their unit, an unset string as ""), where the value came
 * from ("env", ".env" or "default") and whether it is a secret, never to be printed.
 */
typedef void (*config_each_fn)(void *arg, const char *name, const char *value, const char *source,
                               bool secret);

/** Calls fn for each setting of cfg, loaded by config_load() from ef (may be NULL), in table order. */
void config_each(const config_t *cfg, const envfile_t *ef, config_each_fn fn, void *arg);

/** Writes the settings table (name, default, meaning) for --help. */
void config_print_help(FILE *out);

/** Parses seconds, or a number with s, m, h or d, up to max seconds; returns 0 or SSE_EINVAL. */
int config_parse_duration(const char *s, long max, long *out);

/**
 * Parses redis://HOST[:PORT][/DB] (PORT 1-65535, default 6379; DB 0-2147483647, default
 * 0; HOST a name, an IPv4 address or [IPv6]). Sets *host to a new string. Returns 0 or
 * SSE_EINVAL.
 */
int config_parse_redis_url(const char *s, char **host, int *port, int *db);

/**
 * Parses HOST:PORT,... (HOST a name or an IPv4 address, PORT 1-65535, at most
 * CONFIG_MAX_HOST_PORTS) into new arrays of *n hosts and ports. Returns 0, or SSE_EINVAL
 * with nothing allocated.
 */
int config_parse_host_ports(const char *s, char ***hosts, int **ports, int *n);

/** Parses a whole decimal integer in [min, max]; returns 0 or SSE_EINVAL. */
int config_parse_int(const char *s, long min, long max, long *out);

#endif
