/* users: users-file lines good and bad, name clashes, loading errors, hashes, equal-time checks. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "users.h"

/* argon2id of "hunter2" from `ssehub passwd` (hashing takes a while: made once, kept here). */
#define HASH "$argon2id$v=19$m=65536,t=2,p=1$Tnu/yUCTL4mbY8MSZeV+Pw$67U/zm7RfvZwo/LtCbQ2FWKsk4W43ZpDndPcTDux14A"

static config_t cfg;
static char err[SSE_ERR_LEN];

/* A configuration with one SSE_* account, "client" / "cpass". */
static void setup(void)
{
    static const char *const vars[] = {"SSE_CLIENT_USERNAME", "SSE_CLIENT_PASSWORD", "SSE_ADMIN_USERNAME",
                                       "SSE_ADMIN_PASSWORD", "SSE_BROADCASTER_USERNAME",
                                       "SSE_BROADCASTER_PASSWORD", "SSE_USERNAME", "SSE_PASSWORD",
                                       "SSE_USERS_FILE", "SSE_APP_KEY"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
    envfile_t ef;
    cr_assert_eq(envfile_parse(&ef, "SSE_APP_KEY=k-0123456789abcdef0123456789abcd\nSSE_CLIENT_USERNAME=client\nSSE_CLIENT_PASSWORD=cpass\n", err), 0);
    cr_assert_eq(config_load(&cfg, &ef, err), 0, "%s", err);
    envfile_free(&ef);
    err[0] = '\0';
}

static void teardown(void)
{
    config_free(&cfg);
}

TestSuite(users, .init = setup, .fini = teardown);

Test(users, good_lines)
{
    const char *text = "# accounts\n"
                       "\n"
                       "alice:subscriber:" HASH "\n"
                       "   \t\n"
                       "  # indented comment\n"
                       "bob:publisher:" HASH "\r\n"
                       "carol:admin:" HASH "  ";
    cr_assert_eq(users_parse(&cfg, text, err), 0, "%s", err);
    cr_assert_eq(cfg.naccounts, 4);
    const char *names[] = {"alice", "bob", "carol"};
    enum role roles[] = {ROLE_SUBSCRIBER, ROLE_PUBLISHER, ROLE_ADMIN};
    for (int i = 0; i < 3; i++) {
        const account_t *a = &cfg.accounts[i + 1];
        cr_assert_str_eq(a->username, names[i]);
        cr_assert_eq(a->role, roles[i]);
        cr_assert_str_eq(a->hash, HASH);
        cr_assert_str_eq(a->password, "");
    }
    cr_assert_null(cfg.accounts[0].hash, "SSE_* accounts have no hash");
    cr_assert(users_any_hashed(&cfg));
}

Test(users, empty_text_adds_nothing)
{
    cr_assert_eq(users_parse(&cfg, "", err), 0);
    cr_assert_eq(users_parse(&cfg, "# only a comment\n\n", err), 0);
    cr_assert_eq(cfg.naccounts, 1);
    cr_assert_not(users_any_hashed(&cfg));
}

Test(users, bad_lines_name_the_line)
{
    static const struct {
        const char *line, *why;
    } cases[] = {
        {"alice", "expected username:role:hash"},
        {"alice:admin", "expected username:role:hash"},
        {":admin:" HASH, "username is empty"},
        {"al ice:admin:" HASH, "spaces"},
        {"al\x01ice:admin:" HASH, "control"},
        {"alice:root:" HASH, "role must be"},
        {"alice::" HASH, "role must be"},
        {"alice:Admin:" HASH, "role must be"},
        {"alice:admin:", "not an argon2id"},
        {"alice:admin:plaintext-password", "not an argon2id"},
        {"alice:admin:$argon2i$v=19$m=65536,t=2,p=1$Tnu/yUCTL4mbY8MSZeV+Pw$67U/zm7RfvZwo/LtCbQ2FWKsk4W43ZpDndPcTDux14A", "not an argon2id"},
        {"alice:admin:$argon2id$garbage", "not an argon2id"},
        {"alice:admin:" HASH ":extra", "not an argon2id"},
        {"client:admin:" HASH, "\"client\" is already used"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[512];
        snprintf(text, sizeof text, "# first\nok%zu:subscriber:%s\n%s\n", i, HASH, cases[i].line);
        err[0] = '\0';
        cr_assert_eq(users_parse(&cfg, text, err), SSE_EINVAL, "accepted: %s", cases[i].line);
        cr_assert(strncmp(err, "line 3: ", 8) == 0, "%s -> %s", cases[i].line, err);
        cr_assert(strstr(err, cases[i].why), "%s -> %s", cases[i].line, err);
    }
}

Test(users, long_name_refused)
{
    char text[512];
    memset(text, 'a', 128);
    snprintf(text + 128, sizeof text - 128, ":admin:%s\n", HASH);
    cr_assert_eq(users_parse(&cfg, text, err), SSE_EINVAL);
    cr_assert(strstr(err, "line 1: ") && strstr(err, "127"), "%s", err);
    memset(text, 'a', 127);
    snprintf(text + 127, sizeof text - 127, ":admin:%s\n", HASH);
    cr_assert_eq(users_parse(&cfg, text, err), 0, "%s", err);
}

Test(users, duplicate_in_file)
{
    cr_assert_eq(users_parse(&cfg, "dup:admin:" HASH "\ndup:subscriber:" HASH "\n", err), SSE_EINVAL);
    cr_assert_str_eq(err, "line 2: account name \"dup\" is already used");
}

/* Writes text to a new temporary file and points cfg at it. */
static void users_file(const char *text)
{
    char path[] = "/tmp/test_users_XXXXXX";
    int fd = mkstemp(path);
    cr_assert(fd >= 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    free(cfg.users_file);
    cfg.users_file = strdup(path);
}

Test(users, load_file)
{
    users_file("zed:publisher:" HASH "\n");
    cr_assert_eq(users_load(&cfg, err), 0, "%s", err);
    unlink(cfg.users_file);
    cr_assert_eq(cfg.naccounts, 2);
    cr_assert_str_eq(cfg.accounts[1].username, "zed");
}

Test(users, load_errors_name_the_setting_and_line)
{
    users_file("zed:publisher:" HASH "\n\nbad line\n");
    cr_assert_eq(users_load(&cfg, err), SSE_EINVAL);
    unlink(cfg.users_file);
    cr_assert(strncmp(err, "SSE_USERS_FILE: ", 16) == 0, "%s", err);
    cr_assert(strstr(err, "line 3: expected username:role:hash"), "%s", err);
    cr_assert_null(strchr(err, '\n'));

    free(cfg.users_file);
    cfg.users_file = strdup("/nonexistent/users");
    cr_assert_eq(users_load(&cfg, err), SSE_EINVAL);
    cr_assert(strstr(err, "SSE_USERS_FILE: cannot read \"/nonexistent/users\""), "%s", err);
}

Test(users, empty_setting_loads_nothing)
{
    cr_assert_eq(users_load(&cfg, err), 0);
    cr_assert_eq(cfg.naccounts, 1);
}

Test(users, only_a_users_file_is_enough)
{
    config_free(&cfg);
    envfile_t ef;
    cr_assert_eq(envfile_parse(&ef, "SSE_APP_KEY=k-0123456789abcdef0123456789abcd\nSSE_USERS_FILE=/x\n", err), 0);
    cr_assert_eq(config_load(&cfg, &ef, err), 0, "%s", err);
    envfile_free(&ef);
    users_file("# nobody yet\n");
    cr_assert_eq(users_load(&cfg, err), SSE_EINVAL, "no account at all");
    cr_assert(strstr(err, "SSE_USERS_FILE: ") && strstr(err, "no account"), "%s", err);
    unlink(cfg.users_file);
    users_file("solo:admin:" HASH "\n");
    cr_assert_eq(users_load(&cfg, err), 0, "%s", err);
    unlink(cfg.users_file);
    cr_assert_eq(cfg.naccounts, 1);
}

Test(users, hash_verifies, .timeout = 30)
{
    char h[USERS_HASH_LEN];
    cr_assert_eq(users_hash("s3cret pass", h), 0);
    cr_assert(strncmp(h, "$argon2id$", 10) == 0, "%s", h);
    char line[256];
    snprintf(line, sizeof line, "dave:admin:%s\n", h);
    cr_assert_eq(users_parse(&cfg, line, err), 0, "a fresh hash is a valid line: %s", err);
    const char *dummy = HASH; /* any argon2id string does for the unknown-name path */
    cr_assert_eq(users_check_password(&cfg, dummy, "dave", "s3cret pass"), &cfg.accounts[1]);
    cr_assert_null(users_check_password(&cfg, dummy, "dave", "s3cret pas"));
}

Test(users, check_password_every_kind, .timeout = 30)
{
    cr_assert_eq(users_parse(&cfg, "alice:publisher:" HASH "\n", err), 0);
    char *dummy = users_dummy_hash();
    cr_assert_not_null(dummy);
    cr_assert(strncmp(dummy, "$argon2id$", 10) == 0);
    cr_assert_eq(users_check_password(&cfg, dummy, "alice", "hunter2"), &cfg.accounts[1]);
    cr_assert_null(users_check_password(&cfg, dummy, "alice", "hunter3"));
    cr_assert_null(users_check_password(&cfg, dummy, "alice", ""), "the empty SSE_* password never matches");
    cr_assert_eq(users_check_password(&cfg, dummy, "client", "cpass"), &cfg.accounts[0], "SSE_* accounts still work");
    cr_assert_null(users_check_password(&cfg, dummy, "client", "hunter2"));
    cr_assert_null(users_check_password(&cfg, dummy, "nobody", "hunter2"));
    free(dummy);
}
