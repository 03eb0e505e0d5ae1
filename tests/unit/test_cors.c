/* cors: which origin is named (listed, unlisted, "*" without credentials, unsafe, none) and the fixed lines. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "cors.h"

#define FIXED                                                                                      \
    "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"                                         \
    "Access-Control-Allow-Headers: Content-Type, Authorization, Last-Event-ID\r\n"                 \
    "Access-Control-Max-Age: 600\r\n"                                                              \
    "Vary: Origin\r\n"

#define ALLOW(o) "Access-Control-Allow-Origin: " o "\r\nAccess-Control-Allow-Credentials: true\r\n"
/* "*": any origin may read, without credentials. */
#define ANY "Access-Control-Allow-Origin: *\r\n"

static config_t cfg;

/* Loads a config whose only non-default setting besides the account is ALLOWED_ORIGIN. */
static void load(const char *allowed)
{
    static const char *const vars[] = {
        "SSE_HOST", "SSE_PORT", "SSE_APP_KEY", "SSE_CLIENT_USERNAME", "SSE_CLIENT_PASSWORD",
        "SSE_BROADCASTER_USERNAME", "SSE_BROADCASTER_PASSWORD", "SSE_ADMIN_USERNAME",
        "SSE_ADMIN_PASSWORD", "SSE_USERNAME", "SSE_PASSWORD", "ALLOWED_ORIGIN", "SSE_LOG_LEVEL"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
    envfile_t ef;
    char err[SSE_ERR_LEN] = "", text[512];
    snprintf(text, sizeof text,
             "SSE_APP_KEY=k-0123456789abcdef0123456789abcd\nSSE_CLIENT_USERNAME=c\nSSE_CLIENT_PASSWORD=p\nALLOWED_ORIGIN=%s\n",
             allowed);
    cr_assert_eq(envfile_parse(&ef, text, err), 0, "%s", err);
    cr_assert_eq(config_load(&cfg, &ef, err), 0, "%s", err);
    envfile_free(&ef);
}

static void teardown(void)
{
    config_free(&cfg);
}

TestSuite(cors, .fini = teardown);

/* Runs cors_headers for origin (NULL = no Origin header) and compares the exact output. */
static void check(const char *origin, const char *want)
{
    char out[1024];
    memset(out, 'Z', sizeof out);
    size_t n = cors_headers(&cfg, origin, origin ? strlen(origin) : 0, out, sizeof out);
    cr_assert_str_eq(out, want, "origin %s", origin ? origin : "(none)");
    cr_assert_eq(n, strlen(want));
}

Test(cors, listed_origin_echoed_with_credentials)
{
    load("https://a.example, https://b.example");
    check("https://a.example", ALLOW("https://a.example") FIXED);
    check("https://b.example", ALLOW("https://b.example") FIXED);
}

Test(cors, unlisted_origin_gets_first_configured)
{
    load("https://a.example,https://b.example");
    check("https://evil.example", ALLOW("https://a.example") FIXED);
    check("https://a.example.evil", ALLOW("https://a.example") FIXED);
    check("https://a.exampl", ALLOW("https://a.example") FIXED);
    check("HTTPS://A.EXAMPLE", ALLOW("https://a.example") FIXED);
}

Test(cors, absent_origin_gets_first_configured)
{
    load("https://a.example");
    check(NULL, ALLOW("https://a.example") FIXED);
    check("", ALLOW("https://a.example") FIXED);
}

Test(cors, origin_len_is_respected)
{
    load("https://a.example");
    char out[1024];
    /* only the first 17 bytes are the origin */
    size_t n = cors_headers(&cfg, "https://a.exampleXYZ", 17, out, sizeof out);
    cr_assert_str_eq(out, ALLOW("https://a.example") FIXED);
    cr_assert_eq(n, strlen(out));
}

Test(cors, trailing_slash_in_config_matches)
{
    load("https://a.example/");
    check("https://a.example", ALLOW("https://a.example") FIXED);
}

Test(cors, star_allows_any_origin_without_credentials)
{
    load("*");
    check("https://anything.example", ANY FIXED);
    check("http://localhost:3000", ANY FIXED);
    check(NULL, ANY FIXED);
}

/* A listed origin keeps the credentialed echo (the cookie flow); the others get "*" only. */
Test(cors, star_with_list_credentials_only_for_the_listed)
{
    load("https://a.example, *");
    check("https://a.example", ALLOW("https://a.example") FIXED);
    check("https://z.example", ANY FIXED);
    check("https://a.example.evil", ANY FIXED);
    check(NULL, ANY FIXED);
    config_free(&cfg);
    load("*, https://b.example/");
    check("https://b.example", ALLOW("https://b.example") FIXED);
    check("https://a.example", ANY FIXED);
}

/* Credentials never go with an origin that was not listed, whatever the configuration. */
Test(cors, never_credentials_for_an_unlisted_origin_with_star)
{
    static const char *const configs[] = {"*", "*,*", "https://a.example,*", "*, https://a.example"};
    static const char *const origins[] = {"https://evil.example", "null", "https://a.example:443",
                                          "http://a.example", ""};
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        load(configs[i]);
        for (size_t k = 0; k < sizeof origins / sizeof origins[0]; k++) {
            char out[1024];
            cors_headers(&cfg, origins[k], strlen(origins[k]), out, sizeof out);
            cr_assert_null(strstr(out, "Access-Control-Allow-Credentials"), "%s / %s: %s", configs[i],
                           origins[k], out);
            cr_assert_not_null(strstr(out, ANY), "%s / %s: %s", configs[i], origins[k], out);
        }
        config_free(&cfg);
    }
}

Test(cors, unsafe_origin_never_echoed)
{
    load("*");
    check("https://a.example\r\nSet-Cookie: x=1", ANY FIXED);
    check("https://a.example\nX: y", ANY FIXED);
    check("https://a.example\r", ANY FIXED);
    check("https://a .example", ANY FIXED);
    check("https://a\t.example", ANY FIXED);

    config_free(&cfg);
    load("https://a.example");
    check("https://a.example\r\nX: y", ALLOW("https://a.example") FIXED);
    check("https://a.example ", ALLOW("https://a.example") FIXED);
}

Test(cors, unsafe_origin_with_nul_not_echoed)
{
    load("*");
    char out[1024];
    size_t n = cors_headers(&cfg, "https://a\0b", 11, out, sizeof out);
    cr_assert_str_eq(out, ANY FIXED);
    cr_assert_eq(n, strlen(ANY FIXED));
}

Test(cors, no_origins_configured)
{
    load("");
    check("https://a.example", FIXED);
    check(NULL, FIXED);
}

/*
 * Every buffer size from 0 to more than enough: nothing is written past outsz, the
 * result is NUL-terminated, its length is returned, and it is made of whole lines
 * (the origin lines with the fixed ones, the fixed ones alone, or nothing).
 */
Test(cors, small_buffer_never_overrun)
{
    load("https://a.example");
    const char *full = ALLOW("https://a.example") FIXED;
    for (size_t outsz = 0; outsz <= strlen(full) + 8; outsz++) {
        char buf[1024];
        memset(buf, 'Z', sizeof buf);
        size_t n = cors_headers(&cfg, "https://a.example", 17, buf, outsz);
        for (size_t i = outsz; i < sizeof buf; i++)
            cr_assert_eq(buf[i], 'Z', "outsz %zu: byte %zu written", outsz, i);
        if (outsz == 0) {
            cr_assert_eq(n, 0);
            continue;
        }
        cr_assert_lt(n, outsz, "outsz %zu: returned %zu", outsz, n);
        cr_assert_eq(strlen(buf), n, "outsz %zu", outsz);
        if (outsz > strlen(full)) cr_assert_str_eq(buf, full);
        else if (outsz > strlen(FIXED)) cr_assert_str_eq(buf, FIXED, "outsz %zu", outsz);
        else cr_assert_str_eq(buf, "", "outsz %zu", outsz);
    }
}

/* The "*" line with the fixed ones, the fixed ones alone, or nothing: never a part of a line. */
Test(cors, small_buffer_never_overrun_with_star)
{
    load("*");
    const char *full = ANY FIXED;
    for (size_t outsz = 0; outsz <= strlen(full) + 8; outsz++) {
        char buf[1024];
        memset(buf, 'Z', sizeof buf);
        size_t n = cors_headers(&cfg, "https://x.example", 17, buf, outsz);
        for (size_t i = outsz; i < sizeof buf; i++)
            cr_assert_eq(buf[i], 'Z', "outsz %zu: byte %zu written", outsz, i);
        if (outsz == 0) {
            cr_assert_eq(n, 0);
            continue;
        }
        cr_assert_lt(n, outsz, "outsz %zu: returned %zu", outsz, n);
        cr_assert_eq(strlen(buf), n, "outsz %zu", outsz);
        if (outsz > strlen(full)) cr_assert_str_eq(buf, full);
        else if (outsz > strlen(FIXED)) cr_assert_str_eq(buf, FIXED, "outsz %zu", outsz);
        else cr_assert_str_eq(buf, "", "outsz %zu", outsz);
    }
}

/*
 * A configured origin longer than the caller's buffer (config_load refuses one, but
 * cors_headers must not rely on it): it is left out rather than cut, and the
 * buffer of reply_meta_t's size is not overrun.
 */
Test(cors, long_configured_origin_left_out_not_truncated)
{
    static char origin[3000];
    memset(origin, 'a', sizeof origin - 1);
    memcpy(origin, "https://", 8);
    memset(&cfg, 0, sizeof cfg);
    cfg.origins[0] = strdup(origin);
    cfg.norigins = 1;
    char buf[4096];
    memset(buf, 'Z', sizeof buf);
    size_t n = cors_headers(&cfg, NULL, 0, buf, 1024);
    for (size_t i = 1024; i < sizeof buf; i++) cr_assert_eq(buf[i], 'Z', "byte %zu written", i);
    cr_assert_str_eq(buf, FIXED);
    cr_assert_eq(n, strlen(FIXED));
}
