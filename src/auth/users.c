/* The users file (name:role:argon2id lines), `ssehub passwd`, and equal-time password checks. */
#include "users.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "auth.h"

#define USERS_MAX_FILE (16 << 20)
#define PASSWD_MAX 4096

static enum role role_parse(const char *s, size_t n)
{
    if (n == 10 && memcmp(s, "subscriber", n) == 0) return ROLE_SUBSCRIBER;
    if (n == 9 && memcmp(s, "publisher", n) == 0) return ROLE_PUBLISHER;
    if (n == 5 && memcmp(s, "admin", n) == 0) return ROLE_ADMIN;
    return ROLE_NONE;
}

/* Printable, no spaces, no ':' (the separator): the name goes into tokens and logs as is. */
static const char *name_problem(const char *s, size_t n)
{
    if (n == 0) return "the username is empty";
    if (n > USERS_MAX_NAME) return "the username is longer than 127 bytes";
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch == 0x7f || ch == ':')
            return "the username may not contain spaces, control characters or ':'";
    }
    return NULL;
}

/* libsodium's parser says whether a string is an argon2id hash it can verify. */
static bool hash_ok(const char *s, size_t n)
{
    if (n >= USERS_HASH_LEN || n < 10 || memcmp(s, "$argon2id$", 10) != 0) return false;
    char h[USERS_HASH_LEN];
    memcpy(h, s, n);
    h[n] = '\0';
    return crypto_pwhash_str_needs_rehash(h, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != -1;
}

static int parse_line(config_t *cfg, const char *p, const char *end, char why[SSE_ERR_LEN])
{
    const char *c1 = memchr(p, ':', (size_t)(end - p));
    const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;
    if (!c2) {
        snprintf(why, SSE_ERR_LEN, "expected username:role:hash");
        return SSE_EINVAL;
    }
    const char *problem = name_problem(p, (size_t)(c1 - p));
    if (problem) {
        snprintf(why, SSE_ERR_LEN, "%s", problem);
        return SSE_EINVAL;
    }
    enum role role = role_parse(c1 + 1, (size_t)(c2 - c1 - 1));
    if (role == ROLE_NONE) {
        snprintf(why, SSE_ERR_LEN, "the role must be subscriber, publisher or admin");
        return SSE_EINVAL;
    }
    if (!hash_ok(c2 + 1, (size_t)(end - c2 - 1))) {
        snprintf(why, SSE_ERR_LEN, "the hash is not an argon2id string (make one with `ssehub passwd`)");
        return SSE_EINVAL;
    }
    size_t nlen = (size_t)(c1 - p);
    for (int i = 0; i < cfg->naccounts; i++) {
        const char *u = cfg->accounts[i].username;
        if (strlen(u) == nlen && memcmp(u, p, nlen) == 0) {
            snprintf(why, SSE_ERR_LEN, "account name \"%.*s\" is already used", (int)nlen, p);
            return SSE_EINVAL;
        }
    }
    cfg->accounts = xrealloc(cfg->accounts, sizeof *cfg->accounts * (size_t)(cfg->naccounts + 1));
    cfg->accounts[cfg->naccounts++] = (account_t){
        .username = xstrndup(p, nlen),
        .password = xstrdup(""), /* auth_check_password() never matches an empty password */
        .hash = xstrndup(c2 + 1, (size_t)(end - c2 - 1)),
        .role = role,
    };
    return SSE_OK;
}

int users_parse(config_t *cfg, const char *text, char err[SSE_ERR_LEN])
{
    if (sodium_init() < 0) {
        snprintf(err, SSE_ERR_LEN, "libsodium cannot start");
        return SSE_EINVAL;
    }
    int lineno = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        const char *next = *end ? end + 1 : end;
        lineno++;
        while (end > line && (end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t')) end--;
        const char *p = line;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if (p < end && *p != '#') {
            char why[SSE_ERR_LEN];
            if (parse_line(cfg, p, end, why)) {
                snprintf(err, SSE_ERR_LEN, "line %d: %.200s", lineno, why);
                return SSE_EINVAL;
            }
        }
        line = next;
    }
    return SSE_OK;
}

int users_load(config_t *cfg, char err[SSE_ERR_LEN])
{
    const char *path = cfg->users_file;
    if (!path || !*path) return SSE_OK;
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, SSE_ERR_LEN, "SSE_USERS_FILE: cannot read \"%.100s\": %s", path, strerror(errno));
        return SSE_EINVAL;
    }
    size_t cap = 4096, len = 0, n;
    char *buf = xmalloc(cap);
    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (len + 1 == cap) {
            if (cap >= USERS_MAX_FILE) break;
            buf = xrealloc(buf, cap *= 2);
        }
    }
    bool too_big = !feof(f) && len + 1 == cap;
    fclose(f);
    buf[len] = '\0';
    int rc = SSE_OK;
    char perr[SSE_ERR_LEN] = "";
    if (too_big) {
        snprintf(err, SSE_ERR_LEN, "SSE_USERS_FILE: \"%.100s\" is larger than 16 MiB", path);
        rc = SSE_EINVAL;
    } else if (memchr(buf, '\0', len)) {
        snprintf(err, SSE_ERR_LEN, "SSE_USERS_FILE: \"%.100s\" is not a text file", path);
        rc = SSE_EINVAL;
    } else if ((rc = users_parse(cfg, buf, perr))) {
        snprintf(err, SSE_ERR_LEN, "SSE_USERS_FILE: %.60s: %.170s", path, perr);
    } else if (cfg->naccounts == 0) {
        snprintf(err, SSE_ERR_LEN, "SSE_USERS_FILE: \"%.100s\" has no account and no SSE_*_USERNAME is set",
                 path);
        rc = SSE_EINVAL;
    }
    free(buf);
    return rc;
}

bool users_any_hashed(const config_t *cfg)
{
    for (int i = 0; i < cfg->naccounts; i++)
        if (cfg->accounts[i].hash) return true;
    return false;
}

int users_hash(const char *pass, char out[USERS_HASH_LEN])
{
    if (sodium_init() < 0) return SSE_ERR;
    if (crypto_pwhash_str(out, pass, strlen(pass), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE))
        return SSE_ERR;
    return SSE_OK;
}

char *users_dummy_hash(void)
{
    if (sodium_init() < 0) return NULL;
    unsigned char raw[32];
    char pass[2 * sizeof raw + 1], hash[USERS_HASH_LEN];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(pass, sizeof pass, raw, sizeof raw);
    return users_hash(pass, hash) ? NULL : xstrdup(hash);
}

const account_t *users_check_password(const config_t *cfg, const char *dummy_hash,
                                      const char *user, const char *pass)
{
    if (!user || !pass) return NULL;
    const account_t *plain = auth_check_password(cfg, user, pass);
    const account_t *named = NULL;
    for (int i = 0; i < cfg->naccounts; i++) /* every name compared: no early exit */
        if (cfg->accounts[i].hash && strcmp(cfg->accounts[i].username, user) == 0) named = &cfg->accounts[i];
    const char *hash = named ? named->hash : dummy_hash;
    bool ok = crypto_pwhash_str_verify(hash, pass, strlen(pass)) == 0;
    if (named && ok && *pass) return named;
    return plain;
}

/* ---- ssehub passwd ---- */

/* Reads one line of at most PASSWD_MAX bytes from stdin without echo when it is a terminal. */
static int read_password(char *out, size_t outsz)
{
    struct termios old, quiet;
    bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        fprintf(stderr, "Password: ");
        fflush(stderr);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    char *line = fgets(out, (int)outsz, stdin);
    if (tty) tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    if (!line) return SSE_EINVAL;
    size_t n = strlen(out);
    if (n && out[n - 1] == '\n') out[--n] = '\0';
    else if (n == outsz - 1) return SSE_EFULL; /* no newline yet: the line is too long */
    if (n && out[n - 1] == '\r') out[--n] = '\0';
    return n ? SSE_OK : SSE_EINVAL;
}

int users_passwd_main(int argc, char **argv)
{
    const char *user = NULL, *role = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--user") == 0 && i + 1 < argc) user = argv[++i];
        else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc) role = argv[++i];
        else {
            fprintf(stderr, "usage: ssehub passwd [--user NAME --role subscriber|publisher|admin] "
                            "< password\n");
            return 2;
        }
    }
    if (!user != !role) {
        fprintf(stderr, "ssehub passwd: --user and --role go together\n");
        return 2;
    }
    const char *problem = user ? name_problem(user, strlen(user)) : NULL;
    if (problem) {
        fprintf(stderr, "ssehub passwd: %s\n", problem);
        return 2;
    }
    if (role && role_parse(role, strlen(role)) == ROLE_NONE) {
        fprintf(stderr, "ssehub passwd: the role must be subscriber, publisher or admin\n");
        return 2;
    }
    char pass[PASSWD_MAX + 2], hash[USERS_HASH_LEN];
    int rc = read_password(pass, sizeof pass);
    if (rc) {
        fprintf(stderr, "ssehub passwd: %s\n", rc == SSE_EFULL ? "the password is longer than 4096 bytes"
                                                               : "no password on standard input");
        sodium_memzero(pass, sizeof pass);
        return 1;
    }
    rc = users_hash(pass, hash);
    sodium_memzero(pass, sizeof pass);
    if (rc) {
        fprintf(stderr, "ssehub passwd: hashing failed (out of memory?)\n");
        return 1;
    }
    if (user) printf("%s:%s:%s\n", user, role, hash);
    else printf("%s\n", hash);
    return fflush(stdout) == 0 ? 0 : 1;
}
