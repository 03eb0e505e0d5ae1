/* config: .env parsing, config_load defaults, precedence and validation, --help table. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static const char *const all_vars[] = {
    "SSE_HOST", "SSE_PORT", "SSE_APP_KEY", "SSE_CLIENT_USERNAME", "SSE_CLIENT_PASSWORD",
    "SSE_BROADCASTER_USERNAME", "SSE_BROADCASTER_PASSWORD", "SSE_ADMIN_USERNAME",
    "SSE_ADMIN_PASSWORD", "SSE_USERNAME", "SSE_PASSWORD", "ALLOWED_ORIGIN", "SSE_HEARTBEAT",
    "SSE_RETRY", "SSE_TOKEN_TTL", "SSE_LOG_LEVEL", "SSE_MAX_CONNECTIONS", "SSE_MAX_HEADER_BYTES",
    "SSE_MAX_BODY_BYTES", "SSE_HEADER_TIMEOUT", "SSE_IDLE_TIMEOUT", "SSE_MAX_QUEUE_BYTES", "SSE_STREAM_SNDBUF",
    "SSE_WORKERS", "SSE_DB", "SSE_HISTORY_MAX_AGE", "SSE_HISTORY_MAX_EVENTS", "SSE_DB_MAX_BYTES",
    "SSE_DB_SYNC", "SSE_TLS_CERT", "SSE_TLS_KEY", "SSE_COOKIE_SAMESITE", "SSE_COOKIE_DOMAIN",
    "SSE_TRUST_CLIENT_ID", "SSE_JWT_PUBLIC_KEY", "SSE_MAX_CONNS_PER_IP",
    "SSE_MAX_STREAMS_PER_USER", "SSE_USERS_FILE", "SSE_LOGIN_MAX_FAILURES", "SSE_LOGIN_MAX_BLOCK",
    "SSE_JWT_ISSUER", "SSE_JWT_AUDIENCE", "SSE_REDIS_URL", "SSE_REUSE_PORT",
    "SSE_TRUSTED_PROXIES", "SSE_REDIS_MIN_REPLICAS", "SSE_REDIS_SENTINELS", "SSE_REDIS_MASTER"};
#define NVARS (sizeof all_vars / sizeof all_vars[0])

/* A key of the shortest length SSE_APP_KEY accepts (32 bytes). */
#define KEY "k-0123456789abcdef0123456789abcd"

static envfile_t ef;
static config_t cfg;
static char err[SSE_ERR_LEN];

static void clear_env(void)
{
    for (size_t i = 0; i < NVARS; i++) unsetenv(all_vars[i]);
}

static void setup(void)
{
    clear_env();
    memset(&ef, 0, sizeof ef);
    memset(&cfg, 0, sizeof cfg);
    err[0] = '\0';
}

static void teardown(void)
{
    envfile_free(&ef);
    config_free(&cfg);
    clear_env();
}

TestSuite(envfile, .init = setup, .fini = teardown);
TestSuite(config, .init = setup, .fini = teardown);

static void parse_ok(const char *text)
{
    envfile_free(&ef);
    int rc = envfile_parse(&ef, text, err);
    cr_assert_eq(rc, 0, "parse failed: %s", err);
}

static void expect_value(const char *name, const char *want)
{
    const char *v = envfile_get(&ef, name);
    cr_assert_not_null(v, "%s missing", name);
    cr_assert_str_eq(v, want, "%s", name);
}

static void parse_bad(const char *text, int line)
{
    envfile_free(&ef);
    err[0] = '\0';
    int rc = envfile_parse(&ef, text, err);
    cr_assert_eq(rc, SSE_EINVAL, "[%s] should fail", text);
    char want[32];
    snprintf(want, sizeof want, "line %d:", line);
    cr_assert(strstr(err, want) != NULL, "error \"%s\" should name %s", err, want);
    cr_assert_eq(ef.count, 0);
}

/* ---- envfile_parse ---- */

Test(envfile, basic_and_order)
{
    parse_ok("A=1\nB=two\nC=\n");
    cr_assert_eq(ef.count, 3);
    cr_assert_str_eq(ef.names[0], "A");
    cr_assert_str_eq(ef.names[1], "B");
    cr_assert_str_eq(ef.names[2], "C");
    expect_value("A", "1");
    expect_value("B", "two");
    expect_value("C", "");
    cr_assert_null(envfile_get(&ef, "D"));
    cr_assert_null(envfile_get(NULL, "A"));
}

Test(envfile, no_trailing_newline_and_empty_text)
{
    parse_ok("A=1");
    expect_value("A", "1");
    parse_ok("");
    cr_assert_eq(ef.count, 0);
}

Test(envfile, comments_and_blank_lines)
{
    parse_ok("# comment\n\n   \n  # indented comment\nA=1 # trailing\nB=x#y\nC=#notcomment?\n");
    cr_assert_eq(ef.count, 3);
    expect_value("A", "1");
    expect_value("B", "x#y");
    expect_value("C", "");
}

Test(envfile, gosse_empty_with_comment)
{
    /* goSSE's .env.dist */
    parse_ok("SSE_USERNAME= # comment\nSSE_PASSWORD=\t# another\n");
    expect_value("SSE_USERNAME", "");
    expect_value("SSE_PASSWORD", "");
}

Test(envfile, spaces_trimmed_inner_kept)
{
    parse_ok("A =  hello world  \n  B= x\t\n");
    expect_value("A", "hello world");
    expect_value("B", "x");
}

Test(envfile, export_prefix)
{
    parse_ok("export A=1\nexport   B=\"q\"\nexportC=3\n");
    expect_value("A", "1");
    expect_value("B", "q");
    expect_value("exportC", "3");
    cr_assert_null(envfile_get(&ef, "export A"));
}

Test(envfile, double_quotes_and_escapes)
{
    parse_ok("A=\"a b # not comment\"\nB=\"x\\\"y\\\\z\\n\\t\"\nC=\"\"\nD=\"v\" # c\nE=  \"s\"  \n");
    expect_value("A", "a b # not comment");
    expect_value("B", "x\"y\\z\n\t");
    expect_value("C", "");
    expect_value("D", "v");
    expect_value("E", "s");
}

Test(envfile, single_quotes_literal)
{
    parse_ok("A='a \\n \"b\" # c'\nB=''\nC='x'#c\n");
    expect_value("A", "a \\n \"b\" # c");
    expect_value("B", "");
    expect_value("C", "x");
}

Test(envfile, unquoted_values_are_taken_as_written)
{
    /* No escapes, no expansion, no line continuation; inner quotes are plain characters. */
    parse_ok("A=C:\\dir\\n $HOME ${X}\nB=it's\nC=x\"y z\"\nD=a\\\nE=1\n");
    expect_value("A", "C:\\dir\\n $HOME ${X}");
    expect_value("B", "it's");
    expect_value("C", "x\"y z\"");
    expect_value("D", "a\\");
    expect_value("E", "1");
}

Test(envfile, double_quotes_keep_any_escaped_character_and_expand_nothing)
{
    parse_ok("A=\"\\$HOME \\q $X ${Y}\"\nB=\"it's\"\nC='say \"hi\"'\n");
    expect_value("A", "$HOME q $X ${Y}");
    expect_value("B", "it's");
    expect_value("C", "say \"hi\"");
}

Test(envfile, export_after_leading_blanks_and_blank_before_a_comment)
{
    parse_ok("  export A=1\n\tB=2\t# tab before the comment\nC=\"3\"\t#c\n");
    expect_value("A", "1");
    expect_value("B", "2");
    expect_value("C", "3");
    cr_assert_eq(ef.count, 3);
}

Test(envfile, crlf_line_endings)
{
    parse_ok("A=1\r\nB=\"two\"\r\n# c\r\nC=3 # x\r\nD=4\r");
    expect_value("A", "1");
    expect_value("B", "two");
    expect_value("C", "3");
    expect_value("D", "4");
    cr_assert_eq(ef.count, 4);
}

Test(envfile, later_lines_win)
{
    parse_ok("A=1\nB=2\nA=3\n");
    cr_assert_eq(ef.count, 2);
    expect_value("A", "3");
    expect_value("B", "2");
}

Test(envfile, value_keeps_equals)
{
    parse_ok("K=abc==\nU=http://x/?a=b\n");
    expect_value("K", "abc==");
    expect_value("U", "http://x/?a=b");
}

Test(envfile, bad_lines_name_line)
{
    parse_bad("NOEQUALS\n", 1);
    parse_bad("A=1\n\n# c\n=value\n", 4);
    parse_bad("A=1\nB=\"unterminated\n", 2);
    parse_bad("A='x\n", 1);
    parse_bad("A=\"x\" y\n", 1);
    parse_bad("A-B=1\n", 1);
    parse_bad("A=1\r\nB C=2\r\n", 2);
    parse_bad("export\n", 1);
}

Test(envfile, load_file)
{
    char path[] = "/tmp/ssehub-envXXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    const char *text = "# x\nA=1\nB='2'\n";
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    int rc = envfile_load(&ef, path, 0, err);
    cr_assert_eq(rc, 0, "%s", err);
    expect_value("A", "1");
    expect_value("B", "2");
    envfile_free(&ef);

    fd = open(path, O_WRONLY | O_TRUNC);
    cr_assert_eq(write(fd, "A=1\nB\n", 6), 6);
    close(fd);
    rc = envfile_load(&ef, path, 0, err);
    cr_assert_eq(rc, SSE_EINVAL);
    cr_assert(strstr(err, path) && strstr(err, "line 2"), "%s", err);
    unlink(path);

    cr_assert_eq(envfile_load(&ef, path, 1, err), 0);
    cr_assert_eq(ef.count, 0);
    cr_assert_eq(envfile_load(&ef, path, 0, err), SSE_EINVAL);
    cr_assert(strstr(err, path), "%s", err);
}

/* ---- config_load ---- */

static const char *minimal = "SSE_APP_KEY=secret-0123456789abcdef0123456789\nSSE_CLIENT_USERNAME=client\nSSE_CLIENT_PASSWORD=cpw\n";

static int load_text(const char *text)
{
    parse_ok(text);
    config_free(&cfg);
    err[0] = '\0';
    return config_load(&cfg, &ef, err);
}

/* config_load must fail with SSE_EINVAL and a message starting with "var:". */
static void expect_fail(const char *text, const char *var)
{
    int rc = load_text(text);
    cr_assert_eq(rc, SSE_EINVAL, "[%s] should fail", text);
    char want[64];
    snprintf(want, sizeof want, "%s:", var);
    cr_assert(strncmp(err, want, strlen(want)) == 0, "error \"%s\" should name %s", err, var);
}

Test(config, defaults)
{
    cr_assert_eq(load_text(minimal), 0, "%s", err);
    cr_assert_str_eq(cfg.host, "0.0.0.0");
    cr_assert_eq(cfg.port, 8080);
    cr_assert_str_eq(cfg.app_key, "secret-0123456789abcdef0123456789");
    cr_assert_eq(cfg.heartbeat, 15);
    cr_assert_eq(cfg.retry_ms, 3000);
    cr_assert_eq(cfg.token_ttl, 3600);
    cr_assert_str_eq(cfg.log_level, "info");
    cr_assert_eq(cfg.max_connections, 0);
    cr_assert_eq(cfg.max_header_bytes, 8192);
    cr_assert_eq(cfg.max_body_bytes, 65536);
    cr_assert_eq(cfg.header_timeout, 10);
    cr_assert_eq(cfg.idle_timeout, 60);
    cr_assert_eq(cfg.max_queue_bytes, 1048576);
    cr_assert_eq(cfg.workers, 0);
    cr_assert_str_eq(cfg.db_path, "./data/ssehub.db");
    cr_assert_eq(cfg.history_max_age, 7 * 86400);
    cr_assert_eq(cfg.history_max_events, 1000000);
    cr_assert_eq(cfg.db_max_bytes, 0);
    cr_assert_str_eq(cfg.db_sync, "normal");
    cr_assert_eq(cfg.reuse_port, 0);
    cr_assert_str_eq(cfg.allowed_origin, "");
    cr_assert_eq(cfg.norigins, 0);
    cr_assert_eq(cfg.any_origin, 0);
    cr_assert_null(cfg.broadcaster_username);
    cr_assert_null(cfg.admin_username);
    cr_assert_eq(cfg.naccounts, 1);
    cr_assert_str_eq(cfg.accounts[0].username, "client");
    cr_assert_str_eq(cfg.accounts[0].password, "cpw");
    cr_assert_eq(cfg.accounts[0].role, ROLE_SUBSCRIBER);
}

Test(config, values_from_file)
{
    cr_assert_eq(load_text("SSE_APP_KEY=" KEY "\nSSE_ADMIN_USERNAME=adm\nSSE_ADMIN_PASSWORD=apw\n"
                           "SSE_HOST=127.0.0.1\nSSE_PORT=0\nSSE_HEARTBEAT=3600\nSSE_RETRY=0\n"
                           "SSE_LOG_LEVEL=debug\nSSE_WORKERS= 4 \nSSE_MAX_BODY_BYTES=\n"),
                 0, "%s", err);
    cr_assert_str_eq(cfg.host, "127.0.0.1");
    cr_assert_eq(cfg.port, 0);
    cr_assert_eq(cfg.heartbeat, 3600);
    cr_assert_eq(cfg.retry_ms, 0);
    cr_assert_str_eq(cfg.log_level, "debug");
    cr_assert_eq(cfg.workers, 4);
    cr_assert_eq(cfg.max_body_bytes, 65536, "an empty int value means the default");
    cr_assert_eq(cfg.naccounts, 1);
    cr_assert_eq(cfg.accounts[0].role, ROLE_ADMIN);
}

Test(config, environment_wins_over_file)
{
    setenv("SSE_PORT", "9090", 1);
    setenv("SSE_APP_KEY", "fromenv-0123456789abcdef01234567", 1);
    setenv("SSE_CLIENT_PASSWORD", "envpw", 1);
    cr_assert_eq(load_text("SSE_PORT=7070\nSSE_APP_KEY=fromfile-0123456789abcdef0123456\nSSE_CLIENT_USERNAME=c\n"
                           "SSE_CLIENT_PASSWORD=filepw\nSSE_HEARTBEAT=20\n"),
                 0, "%s", err);
    cr_assert_eq(cfg.port, 9090);
    cr_assert_str_eq(cfg.app_key, "fromenv-0123456789abcdef01234567");
    cr_assert_str_eq(cfg.accounts[0].password, "envpw");
    cr_assert_eq(cfg.heartbeat, 20);
}

Test(config, environment_empty_string_wins)
{
    setenv("SSE_CLIENT_USERNAME", "", 1);
    setenv("SSE_CLIENT_PASSWORD", "", 1);
    /* the environment clears the file's account, so none is left */
    expect_fail("SSE_APP_KEY=" KEY "\nSSE_CLIENT_USERNAME=c\nSSE_CLIENT_PASSWORD=p\n",
                "SSE_CLIENT_USERNAME");
}

Test(config, no_envfile)
{
    setenv("SSE_APP_KEY", KEY, 1);
    setenv("SSE_USERNAME", "u", 1);
    setenv("SSE_PASSWORD", "p", 1);
    cr_assert_eq(config_load(&cfg, NULL, err), 0, "%s", err);
    cr_assert_eq(cfg.naccounts, 1);
    cr_assert_str_eq(cfg.accounts[0].username, "u");
    cr_assert_eq(cfg.accounts[0].role, ROLE_ADMIN);
}

typedef struct bound {
    const char *name;
    long min, max;
} bound_t;

static const bound_t bounds[] = {
    {"SSE_PORT", 0, 65535},
    {"SSE_HEARTBEAT", 1, 3600},
    {"SSE_RETRY", 0, 3600000},
    {"SSE_TOKEN_TTL", 1, 31536000},
    {"SSE_MAX_CONNECTIONS", 0, 100000000},
    {"SSE_MAX_HEADER_BYTES", 256, 1048576},
    {"SSE_MAX_BODY_BYTES", 0, 67108864},
    {"SSE_HEADER_TIMEOUT", 1, 3600},
    {"SSE_IDLE_TIMEOUT", 1, 86400},
    {"SSE_MAX_QUEUE_BYTES", 1024, 1073741824},
    {"SSE_STREAM_SNDBUF", 0, 67108864},
    {"SSE_WORKERS", 0, 256},
    {"SSE_HISTORY_MAX_EVENTS", 0, 2000000000},
    {"SSE_DB_MAX_BYTES", 0, 2000000000},
    {"SSE_REUSE_PORT", 0, 1},
};

static int int_field(const char *name)
{
    if (!strcmp(name, "SSE_PORT")) return cfg.port;
    if (!strcmp(name, "SSE_HEARTBEAT")) return cfg.heartbeat;
    if (!strcmp(name, "SSE_RETRY")) return cfg.retry_ms;
    if (!strcmp(name, "SSE_TOKEN_TTL")) return cfg.token_ttl;
    if (!strcmp(name, "SSE_MAX_CONNECTIONS")) return cfg.max_connections;
    if (!strcmp(name, "SSE_MAX_HEADER_BYTES")) return cfg.max_header_bytes;
    if (!strcmp(name, "SSE_MAX_BODY_BYTES")) return cfg.max_body_bytes;
    if (!strcmp(name, "SSE_HEADER_TIMEOUT")) return cfg.header_timeout;
    if (!strcmp(name, "SSE_IDLE_TIMEOUT")) return cfg.idle_timeout;
    if (!strcmp(name, "SSE_MAX_QUEUE_BYTES")) return cfg.max_queue_bytes;
    if (!strcmp(name, "SSE_STREAM_SNDBUF")) return cfg.stream_sndbuf;
    if (!strcmp(name, "SSE_WORKERS")) return cfg.workers;
    if (!strcmp(name, "SSE_HISTORY_MAX_EVENTS")) return cfg.history_max_events;
    if (!strcmp(name, "SSE_DB_MAX_BYTES")) return cfg.db_max_bytes;
    if (!strcmp(name, "SSE_REUSE_PORT")) return cfg.reuse_port;
    cr_assert_fail("unknown %s", name);
    return -1;
}

Test(config, every_int_bound)
{
    char text[512];
    for (size_t i = 0; i < sizeof bounds / sizeof bounds[0]; i++) {
        const bound_t *b = &bounds[i];
        long ok_vals[] = {b->min, b->max};
        for (int k = 0; k < 2; k++) {
            snprintf(text, sizeof text, "%s%s=%ld\n", minimal, b->name, ok_vals[k]);
            cr_assert_eq(load_text(text), 0, "%s=%ld: %s", b->name, ok_vals[k], err);
            cr_assert_eq(int_field(b->name), ok_vals[k], "%s", b->name);
        }
        long bad_vals[] = {b->min - 1, b->max + 1};
        for (int k = 0; k < 2; k++) {
            snprintf(text, sizeof text, "%s%s=%ld\n", minimal, b->name, bad_vals[k]);
            expect_fail(text, b->name);
        }
        const char *junk[] = {"abc", "12x", "1.5", "0x10", "99999999999999999999999", " "};
        for (size_t k = 0; k < sizeof junk / sizeof junk[0]; k++) {
            snprintf(text, sizeof text, "%s%s=\"%s\"\n", minimal, b->name, junk[k]);
            expect_fail(text, b->name);
        }
        /* the environment is validated the same way */
        setenv(b->name, "nope", 1);
        expect_fail(minimal, b->name);
        unsetenv(b->name);
    }
}

Test(config, parse_int)
{
    long v = -7;
    cr_assert_eq(config_parse_int("42", 0, 100, &v), 0);
    cr_assert_eq(v, 42);
    cr_assert_eq(config_parse_int(" 7 ", 0, 100, &v), 0);
    cr_assert_eq(v, 7);
    cr_assert_eq(config_parse_int("-3", -5, 5, &v), 0);
    cr_assert_eq(v, -3);
    v = 1234;
    cr_assert_eq(config_parse_int("101", 0, 100, &v), SSE_EINVAL);
    cr_assert_eq(config_parse_int("", 0, 100, &v), SSE_EINVAL);
    cr_assert_eq(config_parse_int("  ", 0, 100, &v), SSE_EINVAL);
    cr_assert_eq(config_parse_int("1 2", 0, 100, &v), SSE_EINVAL);
    cr_assert_eq(v, 1234, "out must not change on failure");
}

Test(config, parse_duration)
{
    static const struct {
        const char *in;
        long want;
    } good[] = {{"0", 0},      {"45", 45},   {"30s", 30},      {"15m", 900},
                {"12h", 43200}, {"7d", 604800}, {" 2h ", 7200}, {"1000d", 1000L * 86400}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        long v = -1;
        cr_assert_eq(config_parse_duration(good[i].in, 3650L * 86400, &v), 0, "%s", good[i].in);
        cr_assert_eq(v, good[i].want, "%s: %ld", good[i].in, v);
    }
    static const char *const bad[] = {"", "d", "-1", "-1d", "5x", "1.5h", "3651d", "87601h",
                                      "315360001", "5dd", "abc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long v = 77;
        cr_assert_eq(config_parse_duration(bad[i], 3650L * 86400, &v), SSE_EINVAL, "%s", bad[i]);
        cr_assert_eq(v, 77);
    }
    long v;
    cr_assert_eq(config_parse_duration("3650d", 3650L * 86400, &v), 0);
    cr_assert_eq(v, 3650L * 86400);
    cr_assert_eq(config_parse_duration("315360000", 3650L * 86400, &v), 0);
}

Test(config, history_max_age_setting)
{
    char text[512];
    snprintf(text, sizeof text, "%sSSE_HISTORY_MAX_AGE=36h\n", minimal);
    cr_assert_eq(load_text(text), 0, "%s", err);
    cr_assert_eq(cfg.history_max_age, 36 * 3600);
    snprintf(text, sizeof text, "%sSSE_HISTORY_MAX_AGE=0\n", minimal);
    cr_assert_eq(load_text(text), 0, "%s", err);
    cr_assert_eq(cfg.history_max_age, 0);
    snprintf(text, sizeof text, "%sSSE_HISTORY_MAX_AGE=\n", minimal);
    cr_assert_eq(load_text(text), 0, "%s", err);
    cr_assert_eq(cfg.history_max_age, 7 * 86400);
    snprintf(text, sizeof text, "%sSSE_HISTORY_MAX_AGE=3651d\n", minimal);
    expect_fail(text, "SSE_HISTORY_MAX_AGE");
    snprintf(text, sizeof text, "%sSSE_HISTORY_MAX_AGE=soon\n", minimal);
    expect_fail(text, "SSE_HISTORY_MAX_AGE");
}

Test(config, db_settings)
{
    char text[512];
    snprintf(text, sizeof text, "%sSSE_DB=off\nSSE_DB_SYNC=full\n", minimal);
    cr_assert_eq(load_text(text), 0, "%s", err);
    cr_assert_str_eq(cfg.db_path, "off");
    cr_assert_str_eq(cfg.db_sync, "full");
    snprintf(text, sizeof text, "%sSSE_DB_SYNC=fast\n", minimal);
    expect_fail(text, "SSE_DB_SYNC");
}

Test(config, redis_url)
{
    cr_assert_eq(load_text(minimal), 0, "%s", err);
    cr_assert_str_eq(cfg.redis_url, "", "one node by default");
    cr_assert_null(cfg.redis_host);
    char text[512];
    snprintf(text, sizeof text, "%sSSE_REDIS_URL=redis://127.0.0.1:6390/3\n", minimal);
    cr_assert_eq(load_text(text), 0, "%s", err);
    cr_assert_str_eq(cfg.redis_host, "127.0.0.1");
    cr_assert_eq(cfg.redis_port, 6390);
    cr_assert_eq(cfg.redis_db, 3);
    snprintf(text, sizeof text, "%sSSE_REDIS_URL=redis://redis.internal\n", minimal);
    cr_assert_eq(load_text(text), 0, "%s", err);
    cr_assert_str_eq(cfg.redis_host, "redis.internal");
    cr_assert_eq(cfg.redis_port, 6379, "the default port");
    cr_assert_eq(cfg.redis_db, 0);
    snprintf(text, sizeof text, "%sSSE_REDIS_URL=redis://[::1]:7000/\n", minimal);
    cr_assert_eq(load_text(text), 0, "%s", err);
    cr_assert_str_eq(cfg.redis_host, "::1");
    cr_assert_eq(cfg.redis_port, 7000);
    static const char *const bad[] = {
        "http://h:1",      "redis://",          "redis://:6379",   "redis://h:0",
        "redis://h:65536", "redis://h:12x",     "redis://h:1/x",   "redis://h:1/-1",
        "redis://h:1/2/3", "redis://h h:1",     "redis://[]:1",    "redis://h:+5",
        "redis://h:1?db=2", "redis://u:p@h:1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(text, sizeof text, "%sSSE_REDIS_URL=%s\n", minimal, bad[i]);
        expect_fail(text, "SSE_REDIS_URL");
        cr_assert(strstr(err, "redis://HOST:PORT[/DB]"), "%s: %s", bad[i], err);
        cr_assert_null(strchr(err, '\n'), "one line: %s", err);
    }
}

Test(config, missing_app_key)
{
    expect_fail("SSE_CLIENT_USERNAME=c\nSSE_CLIENT_PASSWORD=p\n", "SSE_APP_KEY");
    expect_fail("SSE_APP_KEY=\nSSE_CLIENT_USERNAME=c\nSSE_CLIENT_PASSWORD=p\n", "SSE_APP_KEY");
}

Test(config, jwt_issuer_and_audience)
{
    cr_assert_eq(load_text(minimal), 0, "%s", err);
    cr_assert_str_eq(cfg.jwt_issuer, "", "not checked by default");
    cr_assert_str_eq(cfg.jwt_audience, "");
    char text[512];
    snprintf(text, sizeof text, "%sSSE_JWT_PUBLIC_KEY=/k.pem\nSSE_JWT_ISSUER=https://idp.example\n"
                                "SSE_JWT_AUDIENCE=ssehub\n", minimal);
    cr_assert_eq(load_text(text), 0, "%s", err);
    cr_assert_str_eq(cfg.jwt_issuer, "https://idp.example");
    cr_assert_str_eq(cfg.jwt_audience, "ssehub");
    /* without the key they would check nothing: refused, naming the setting and the key */
    snprintf(text, sizeof text, "%sSSE_JWT_ISSUER=https://idp.example\n", minimal);
    expect_fail(text, "SSE_JWT_ISSUER");
    cr_assert(strstr(err, "SSE_JWT_PUBLIC_KEY"), "%s", err);
    snprintf(text, sizeof text, "%sSSE_JWT_AUDIENCE=ssehub\n", minimal);
    expect_fail(text, "SSE_JWT_AUDIENCE");
    cr_assert(strstr(err, "SSE_JWT_PUBLIC_KEY"), "%s", err);
}

Test(config, short_app_key_refused_with_the_command_that_makes_one)
{
    /* 31 bytes: one short of the least accepted */
    expect_fail("SSE_APP_KEY=k-0123456789abcdef0123456789abc\nSSE_CLIENT_USERNAME=c\nSSE_CLIENT_PASSWORD=p\n",
                "SSE_APP_KEY");
    cr_assert(strstr(err, "32 bytes") && strstr(err, "got 31") && strstr(err, "openssl rand -hex 32"), "%s", err);
    cr_assert_null(strchr(err, '\n'), "one line: %s", err);
    expect_fail("SSE_APP_KEY=secret\nSSE_CLIENT_USERNAME=c\nSSE_CLIENT_PASSWORD=p\n", "SSE_APP_KEY");
    cr_assert_null(strstr(err, "secret"), "the key itself is not printed: %s", err);
    expect_fail("SSE_CLIENT_USERNAME=c\nSSE_CLIENT_PASSWORD=p\n", "SSE_APP_KEY");
    cr_assert(strstr(err, "openssl rand -hex 32"), "%s", err);
    cr_assert_eq(load_text("SSE_APP_KEY=" KEY "\nSSE_CLIENT_USERNAME=c\nSSE_CLIENT_PASSWORD=p\n"), 0, "%s", err);
    cr_assert_eq(strlen(cfg.app_key), 32);
}

Test(config, no_account)
{
    expect_fail("SSE_APP_KEY=" KEY "\n", "SSE_CLIENT_USERNAME");
    /* goSSE's .env.dist: every account empty */
    expect_fail("SSE_APP_KEY=" KEY "\nSSE_USERNAME= # comment\nSSE_PASSWORD= # comment\n",
                "SSE_CLIENT_USERNAME");
}

Test(config, username_without_password)
{
    expect_fail("SSE_APP_KEY=" KEY "\nSSE_CLIENT_USERNAME=c\n", "SSE_CLIENT_PASSWORD");
    expect_fail("SSE_APP_KEY=" KEY "\nSSE_CLIENT_PASSWORD=p\n", "SSE_CLIENT_USERNAME");
    expect_fail("SSE_APP_KEY=" KEY "\nSSE_CLIENT_USERNAME=c\nSSE_CLIENT_PASSWORD=p\n"
                "SSE_BROADCASTER_USERNAME=b\n",
                "SSE_BROADCASTER_PASSWORD");
    expect_fail("SSE_APP_KEY=" KEY "\nSSE_ADMIN_USERNAME=a\n", "SSE_ADMIN_PASSWORD");
    expect_fail("SSE_APP_KEY=" KEY "\nSSE_USERNAME=u\nSSE_PASSWORD=\n", "SSE_PASSWORD");
}

Test(config, all_accounts_and_roles)
{
    cr_assert_eq(load_text("SSE_APP_KEY=" KEY "\nSSE_CLIENT_USERNAME=c\nSSE_CLIENT_PASSWORD=1\n"
                           "SSE_BROADCASTER_USERNAME=b\nSSE_BROADCASTER_PASSWORD=2\n"
                           "SSE_ADMIN_USERNAME=a\nSSE_ADMIN_PASSWORD=3\n"
                           "SSE_USERNAME=s\nSSE_PASSWORD=4\n"),
                 0, "%s", err);
    cr_assert_eq(cfg.naccounts, 4);
    const char *names[] = {"c", "b", "a", "s"}, *pws[] = {"1", "2", "3", "4"};
    enum role roles[] = {ROLE_SUBSCRIBER, ROLE_PUBLISHER, ROLE_ADMIN, ROLE_ADMIN};
    for (int i = 0; i < 4; i++) {
        cr_assert_str_eq(cfg.accounts[i].username, names[i]);
        cr_assert_str_eq(cfg.accounts[i].password, pws[i]);
        cr_assert_eq(cfg.accounts[i].role, roles[i]);
    }
}

Test(config, duplicate_account_names)
{
    expect_fail("SSE_APP_KEY=" KEY "\nSSE_CLIENT_USERNAME=same\nSSE_CLIENT_PASSWORD=1\n"
                "SSE_BROADCASTER_USERNAME=same\nSSE_BROADCASTER_PASSWORD=2\n",
                "SSE_BROADCASTER_USERNAME");
    cr_assert(strstr(err, "same"), "%s", err);
    expect_fail("SSE_APP_KEY=" KEY "\nSSE_ADMIN_USERNAME=x\nSSE_ADMIN_PASSWORD=1\n"
                "SSE_USERNAME=x\nSSE_PASSWORD=2\n",
                "SSE_USERNAME");
}

Test(config, bad_log_level_and_empty_host)
{
    char text[256];
    snprintf(text, sizeof text, "%sSSE_LOG_LEVEL=verbose\n", minimal);
    expect_fail(text, "SSE_LOG_LEVEL");
    snprintf(text, sizeof text, "%sSSE_HOST=\n", minimal);
    expect_fail(text, "SSE_HOST");
}

/* Loads minimal plus ALLOWED_ORIGIN=value (given raw, quoted by the caller if needed). */
static int load_origins(const char *value)
{
    char text[512];
    snprintf(text, sizeof text, "%sALLOWED_ORIGIN=%s\n", minimal, value);
    return load_text(text);
}

Test(config, allowed_origin_list)
{
    cr_assert_eq(load_origins("\" https://a.example , https://b.example:8443/,,http://c \""), 0,
                 "%s", err);
    cr_assert_eq(cfg.norigins, 3);
    cr_assert_str_eq(cfg.origins[0], "https://a.example");
    cr_assert_str_eq(cfg.origins[1], "https://b.example:8443");
    cr_assert_str_eq(cfg.origins[2], "http://c");
    cr_assert_eq(cfg.any_origin, 0);
}

Test(config, allowed_origin_single_and_star)
{
    cr_assert_eq(load_origins("https://only.example/"), 0, "%s", err);
    cr_assert_eq(cfg.norigins, 1);
    cr_assert_str_eq(cfg.origins[0], "https://only.example");
    cr_assert_eq(cfg.any_origin, 0);

    cr_assert_eq(load_origins("*"), 0, "%s", err);
    cr_assert_eq(cfg.any_origin, 1);
    cr_assert_eq(cfg.norigins, 0);

    cr_assert_eq(load_origins("https://a.example, *"), 0, "%s", err);
    cr_assert_eq(cfg.any_origin, 1);
    cr_assert_eq(cfg.norigins, 1);
    cr_assert_str_eq(cfg.origins[0], "https://a.example");

    cr_assert_eq(load_origins(" , ,"), 0, "%s", err);
    cr_assert_eq(cfg.norigins, 0);
    cr_assert_eq(cfg.any_origin, 0);
}

Test(config, allowed_origin_bad)
{
    int rc = load_origins("\"https://a.example, https://b .example\"");
    cr_assert_eq(rc, SSE_EINVAL);
    cr_assert(strncmp(err, "ALLOWED_ORIGIN:", 15) == 0, "%s", err);

    char many[1024] = "";
    for (int i = 0; i <= CONFIG_MAX_ORIGINS; i++) {
        char one[32];
        snprintf(one, sizeof one, "%shttp://o%d", i ? "," : "", i);
        strcat(many, one);
    }
    rc = load_origins(many);
    cr_assert_eq(rc, SSE_EINVAL);
    cr_assert(strncmp(err, "ALLOWED_ORIGIN:", 15) == 0, "%s", err);

    many[strlen(many) - strlen(",http://o16")] = '\0';
    cr_assert_eq(load_origins(many), 0, "%s", err);
    cr_assert_eq(cfg.norigins, CONFIG_MAX_ORIGINS);
}

/* An origin longer than a request's Origin may be (CONFIG_MAX_ORIGIN_LEN) is refused, by name. */
Test(config, allowed_origin_too_long)
{
    static char v[4096];
    memset(v, 'a', sizeof v - 1);
    memcpy(v, "https://", 8);
    setenv("ALLOWED_ORIGIN", v, 1);
    cr_assert_eq(load_text(minimal), SSE_EINVAL);
    cr_assert(strncmp(err, "ALLOWED_ORIGIN:", 15) == 0, "%s", err);
    cr_assert(strchr(err, '\n') == NULL, "one line: %s", err);

    v[CONFIG_MAX_ORIGIN_LEN + 1] = '\0';
    setenv("ALLOWED_ORIGIN", v, 1);
    cr_assert_eq(load_text(minimal), SSE_EINVAL);
    cr_assert(strncmp(err, "ALLOWED_ORIGIN:", 15) == 0, "%s", err);

    /* a trailing slash is not part of the origin */
    v[CONFIG_MAX_ORIGIN_LEN] = '/';
    setenv("ALLOWED_ORIGIN", v, 1);
    cr_assert_eq(load_text(minimal), 0, "%s", err);
    cr_assert_eq(strlen(cfg.origins[0]), CONFIG_MAX_ORIGIN_LEN);

    v[CONFIG_MAX_ORIGIN_LEN] = '\0';
    static char list[sizeof v + 32];
    snprintf(list, sizeof list, "https://short.example, %s", v);
    setenv("ALLOWED_ORIGIN", list, 1);
    cr_assert_eq(load_text(minimal), 0, "%s", err);
    cr_assert_eq(cfg.norigins, 2);
    cr_assert_str_eq(cfg.origins[1], v);
}

static int load_proxies(const char *value)
{
    char text[512];
    snprintf(text, sizeof text, "%sSSE_TRUSTED_PROXIES=%s\n", minimal, value);
    return load_text(text);
}

Test(config, trusted_proxies_default_none)
{
    cr_assert_eq(load_text(minimal), 0, "%s", err);
    cr_assert_str_eq(cfg.trusted_proxies, "");
    cr_assert_eq(cfg.proxies.n, 0);
}

Test(config, trusted_proxies_list)
{
    cr_assert_eq(load_proxies("\"127.0.0.1, 10.0.0.0/8,::1, fd00::/8\""), 0, "%s", err);
    cr_assert_eq(cfg.proxies.n, 4);
    netaddr_t a;
    cr_assert_eq(netaddr_parse("10.20.30.40", 11, &a), 0);
    cr_assert(netaddr_list_match(&cfg.proxies, &a));
    cr_assert_eq(netaddr_parse("fd12::1", 7, &a), 0);
    cr_assert(netaddr_list_match(&cfg.proxies, &a));
    cr_assert_eq(netaddr_parse("192.0.2.1", 9, &a), 0);
    cr_assert(!netaddr_list_match(&cfg.proxies, &a));
}

Test(config, trusted_proxies_bad)
{
    static const char *const bad[] = {"10.0.0.0/33", "banana", "10.0.0.1/8", "127.0.0.1;10.0.0.1",
                                      "fd00::/129", "localhost", "1.2.3.4:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        config_free(&cfg);
        cr_assert_eq(load_proxies(bad[i]), SSE_EINVAL, "%s", bad[i]);
        cr_assert(strncmp(err, "SSE_TRUSTED_PROXIES: \"", 22) == 0, "%s", err);
        cr_assert(strstr(err, bad[i]) != NULL, "%s names %s", err, bad[i]);
        cr_assert_null(strchr(err, '\n'), "one line");
    }
}

Test(config, help_lists_every_variable)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    cr_assert_not_null(f);
    config_print_help(f);
    fclose(f);
    for (size_t i = 0; i < NVARS; i++) {
        char word[64];
        snprintf(word, sizeof word, "  %s ", all_vars[i]);
        cr_assert(strstr(out, word) != NULL, "help lacks %s", all_vars[i]);
    }
    cr_assert(strstr(out, "[8080]") != NULL);
    cr_assert(strstr(out, "[unset]") != NULL);
    /* one line per setting plus the title */
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += out[i] == '\n';
    cr_assert_eq(lines, NVARS + 1);
    free(out);
}

Test(config, free_twice_is_safe)
{
    cr_assert_eq(load_text(minimal), 0, "%s", err);
    config_free(&cfg);
    config_free(&cfg);
    cr_assert_null(cfg.host);
    cr_assert_eq(cfg.naccounts, 0);
}

/* ---- unknown SSE_ names ---- */

Test(config, suggest_finds_the_closest_setting_or_none)
{
    cr_assert_str_eq(config_suggest("SSE_PROT"), "SSE_PORT", "two letters swapped");
    cr_assert_str_eq(config_suggest("SSE_WORKER"), "SSE_WORKERS", "a letter missing");
    cr_assert_str_eq(config_suggest("SSE_HOSTT"), "SSE_HOST", "a letter too many");
    cr_assert_str_eq(config_suggest("SSE_LOG_LVL"), "SSE_LOG_LEVEL");
    cr_assert_str_eq(config_suggest("sse_port"), "SSE_PORT", "letter case");
    cr_assert_str_eq(config_suggest("SSE_MAX_STREAM_PER_USERS"), "SSE_MAX_STREAMS_PER_USER");
    cr_assert_str_eq(config_suggest("SSE_REUSEPORT"), "SSE_REUSE_PORT");
    cr_assert_str_eq(config_suggest("SSE_D"), "SSE_DB");
    cr_assert_null(config_suggest("SSE_XX"), "two of two letters differ from SSE_DB");
    cr_assert_null(config_suggest("SSE_SOMETHING_ELSE"));
    cr_assert_null(config_suggest("SSE_"));
    static char longname[200];
    memset(longname, 'A', sizeof longname - 1);
    memcpy(longname, "SSE_", 4);
    cr_assert_null(config_suggest(longname));
}

typedef struct warnings {
    int n;
    char lines[8][SSE_ERR_LEN];
} warnings_t;

static void collect(void *arg, const char *line)
{
    warnings_t *w = arg;
    cr_assert_lt(w->n, 8);
    snprintf(w->lines[w->n++], SSE_ERR_LEN, "%s", line);
}

Test(config, warn_unknown_names_in_the_environment_and_the_file)
{
    char *envp[] = {"PATH=/bin", "SSE_PROT=80", "SSE_PORT=1", "SSEHUB_WORKERS=2", "ALLOWED_ORIGIN=",
                    "SSE_SOMETHING_ELSE=1", "SSE_NOVALUE", "sse_db=x", NULL};
    parse_ok("SSE_WORKER=2\nSSE_PROT=81\nALLOWED_ORIGINS=x\nSSE_DB=off\nexport SSE_TOKEN_TL=5\n");
    warnings_t w = {0};
    cr_assert_eq(config_warn_unknown(&ef, envp, collect, &w), 6);
    cr_assert_eq(w.n, 6);
    cr_assert_str_eq(w.lines[0], "SSE_PROT: unknown setting; did you mean SSE_PORT?");
    cr_assert_str_eq(w.lines[1], "SSE_SOMETHING_ELSE: unknown setting");
    cr_assert_str_eq(w.lines[2], "SSE_NOVALUE: unknown setting");
    cr_assert_str_eq(w.lines[3], "sse_db: unknown setting; did you mean SSE_DB?");
    cr_assert_str_eq(w.lines[4], "SSE_WORKER: unknown setting; did you mean SSE_WORKERS?");
    cr_assert_str_eq(w.lines[5], "SSE_TOKEN_TL: unknown setting; did you mean SSE_TOKEN_TTL?",
                     "SSE_PROT, in both, is warned about once");

    w.n = 0;
    cr_assert_eq(config_warn_unknown(NULL, NULL, collect, &w), 0);
    char *clean[] = {"SSE_PORT=1", "HOME=/root", NULL};
    parse_ok("SSE_HOST=x\nALLOWED_ORIGIN=\nCOMPOSE_PROJECT_NAME=y\n");
    cr_assert_eq(config_warn_unknown(&ef, clean, collect, &w), 0);
    cr_assert_eq(w.n, 0);
}

Test(config, warn_unknown_spares_every_setting)
{
    static char vars[NVARS][80];
    char *envp[NVARS + 1];
    for (size_t i = 0; i < NVARS; i++) {
        snprintf(vars[i], sizeof vars[i], "%s=1", all_vars[i]);
        envp[i] = vars[i];
    }
    envp[NVARS] = NULL;
    warnings_t w = {0};
    cr_assert_eq(config_warn_unknown(NULL, envp, collect, &w), 0, "first: %s", w.lines[0]);
    char *cluster[] = {"SSE_REDIS_URL=redis://127.0.0.1:6379", "SSE_REDIS_UR=x", NULL};
    cr_assert_eq(config_warn_unknown(NULL, cluster, collect, &w), 1);
    cr_assert_str_eq(w.lines[0], "SSE_REDIS_UR: unknown setting; did you mean SSE_REDIS_URL?");
}

Test(config, warn_unknown_cleans_the_name)
{
    char *envp[] = {"SSE_A\"B C=1", NULL};
    warnings_t w = {0};
    cr_assert_eq(config_warn_unknown(NULL, envp, collect, &w), 1);
    cr_assert_str_eq(w.lines[0], "SSE_A?B?C: unknown setting");
}

Test(config, sentinel_lists_parse_host_port_pairs_and_refuse_anything_else)
{
    char **hosts;
    int *ports, n;
    cr_assert_eq(config_parse_host_ports("127.0.0.1:26379,sentinel-b.local:1", &hosts, &ports, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(hosts[0], "127.0.0.1");
    cr_assert_eq(ports[0], 26379);
    cr_assert_str_eq(hosts[1], "sentinel-b.local");
    cr_assert_eq(ports[1], 1);
    for (int i = 0; i < n; i++) free(hosts[i]);
    free(hosts);
    free(ports);
    const char *bad[] = {"", "host", ":1", "h:", "h:0", "h:65536", "h:1x", "h:1,", "h:1,,h:2", "a b:1", "h:+1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_assert_eq(config_parse_host_ports(bad[i], &hosts, &ports, &n), SSE_EINVAL, "\"%s\"", bad[i]);
        cr_assert_null(hosts);
        cr_assert_eq(n, 0);
    }
}

/* ---- config_each ---- */

/* What config_each() reported for a few names. */
typedef struct seen {
    int count;
    char port[16], port_src[16], heartbeat_src[16], body_src[16], key[64], key_src[16], age[16];
    bool key_secret, pass_secret, user_secret, retry_secret;
} seen_t;

static void record(void *arg, const char *name, const char *value, const char *source, bool secret)
{
    seen_t *s = arg;
    s->count++;
    if (strcmp(name, "SSE_PORT") == 0) {
        snprintf(s->port, sizeof s->port, "%s", value);
        snprintf(s->port_src, sizeof s->port_src, "%s", source);
    } else if (strcmp(name, "SSE_HEARTBEAT") == 0) {
        snprintf(s->heartbeat_src, sizeof s->heartbeat_src, "%s", source);
    } else if (strcmp(name, "SSE_MAX_BODY_BYTES") == 0) {
        snprintf(s->body_src, sizeof s->body_src, "%s", source);
    } else if (strcmp(name, "SSE_APP_KEY") == 0) {
        snprintf(s->key, sizeof s->key, "%s", value);
        snprintf(s->key_src, sizeof s->key_src, "%s", source);
        s->key_secret = secret;
    } else if (strcmp(name, "SSE_HISTORY_MAX_AGE") == 0) {
        snprintf(s->age, sizeof s->age, "%s", value);
    } else if (strcmp(name, "SSE_CLIENT_PASSWORD") == 0) {
        s->pass_secret = secret;
    } else if (strcmp(name, "SSE_CLIENT_USERNAME") == 0) {
        s->user_secret = secret;
    } else if (strcmp(name, "SSE_RETRY") == 0) {
        s->retry_secret = secret;
    }
}

Test(config, each_gives_values_sources_and_secrets)
{
    setenv("SSE_PORT", "9090", 1);
    setenv("SSE_MAX_BODY_BYTES", "", 1); /* empty number: the default, so "default" */
    cr_assert_eq(load_text("SSE_PORT=7070\nSSE_APP_KEY=" KEY "\nSSE_CLIENT_USERNAME=c\nSSE_CLIENT_PASSWORD=p\n"
                           "SSE_HEARTBEAT=20\nSSE_HISTORY_MAX_AGE=2h\n"),
                 0, "%s", err);
    seen_t s = {0};
    config_each(&cfg, &ef, record, &s);
    cr_assert_eq((size_t)s.count, NVARS, "every setting once");
    cr_assert_str_eq(s.port, "9090");
    cr_assert_str_eq(s.port_src, "env");
    cr_assert_str_eq(s.heartbeat_src, ".env");
    cr_assert_str_eq(s.body_src, "default");
    cr_assert_str_eq(s.key, KEY, "the value itself: masking is the printer's job");
    cr_assert_str_eq(s.key_src, ".env");
    cr_assert_str_eq(s.age, "7200", "durations in seconds");
    cr_assert(s.key_secret && s.pass_secret, "the key and passwords are secrets");
    cr_assert(!s.user_secret && !s.retry_secret, "names and numbers are not");
}
