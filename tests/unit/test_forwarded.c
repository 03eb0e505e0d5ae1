/* forwarded: the client a trusted proxy names, from X-Forwarded-For and Forwarded chains. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "forwarded.h"
#include "http.h"

static netaddr_list_t trusted;

static void setup(void)
{
    char err[SSE_ERR_LEN];
    cr_assert_eq(netaddr_list_parse(&trusted, "127.0.0.1,10.0.0.0/8,::1,fd00::/8", err), SSE_OK, "%s", err);
}

static void teardown(void)
{
    netaddr_list_free(&trusted);
}

TestSuite(forwarded, .init = setup, .fini = teardown);

/* forwarded_client() for a request carrying the header lines in head ("Name: v\r\n"...). */
static int client_of(const char *head, char out[NETADDR_STR_LEN])
{
    static char buf[8192];
    int n = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: x\r\n%s\r\n", head);
    cr_assert(n > 0 && (size_t)n < sizeof buf);
    http_limits_t lim = {.max_header_bytes = 8192, .max_body_bytes = 0};
    http_request_t req;
    int status = 0;
    cr_assert_gt(http_parse_request(buf, (size_t)n, &lim, &req, &status), 0, "head parses: %s", head);
    netaddr_t a;
    memset(&a, 0xee, sizeof a);
    int rc = forwarded_client(&req, &trusted, &a);
    if (rc == FORWARDED_CLIENT) netaddr_format(&a, out);
    else snprintf(out, NETADDR_STR_LEN, "-");
    return rc;
}

static void names(const char *head, const char *want)
{
    char got[NETADDR_STR_LEN];
    int rc = client_of(head, got);
    cr_assert_eq(rc, FORWARDED_CLIENT, "%s: result %d", head, rc);
    cr_assert_str_eq(got, want, "%s", head);
}

static void refused(const char *head, int want)
{
    char got[NETADDR_STR_LEN];
    int rc = client_of(head, got);
    cr_assert_eq(rc, want, "%s: result %d, client %s", head, rc, got);
}

Test(forwarded, no_header_names_nobody)
{
    refused("", FORWARDED_NONE);
    refused("X-Real-IP: 203.0.113.7\r\n", FORWARDED_NONE);
}

Test(forwarded, xff_right_most_untrusted_hop)
{
    names("X-Forwarded-For: 203.0.113.7\r\n", "203.0.113.7");
    /* Whatever the client put in front, the hop our proxy added is the one believed. */
    names("X-Forwarded-For: 198.51.100.1, 203.0.113.7\r\n", "203.0.113.7");
    names("X-Forwarded-For: 1.1.1.1,2.2.2.2,203.0.113.7\r\n", "203.0.113.7");
    /* Trusted proxies on the right are skipped. */
    names("X-Forwarded-For: 198.51.100.1, 203.0.113.7, 10.1.2.3, 127.0.0.1\r\n", "203.0.113.7");
    /* Every hop trusted: the left-most one is the client. */
    names("X-Forwarded-For: 10.0.0.5, 127.0.0.1\r\n", "10.0.0.5");
    names("x-forwarded-for: 203.0.113.9\r\n", "203.0.113.9");
}

Test(forwarded, xff_lines_join_in_order)
{
    names("X-Forwarded-For: 198.51.100.1\r\nX-Forwarded-For: 203.0.113.7, 10.0.0.1\r\n", "203.0.113.7");
    names("X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-For: 10.0.0.1\r\n", "203.0.113.7");
}

Test(forwarded, xff_ipv6_ports_and_mapped)
{
    names("X-Forwarded-For: 2001:db8::1\r\n", "2001:db8::1");
    names("X-Forwarded-For: [2001:db8::1]\r\n", "2001:db8::1");
    names("X-Forwarded-For: [2001:db8::1]:4711\r\n", "2001:db8::1");
    names("X-Forwarded-For: 203.0.113.7:5555\r\n", "203.0.113.7");
    names("X-Forwarded-For: 2001:DB8:0::7, fd00::1, ::1\r\n", "2001:db8::7");
    names("X-Forwarded-For: ::ffff:203.0.113.7\r\n", "203.0.113.7");
    names("X-Forwarded-For: ::ffff:127.0.0.1, 203.0.113.7\r\n", "203.0.113.7");
    /* Empty list members are allowed by the list syntax and skipped. */
    names("X-Forwarded-For: 203.0.113.7, , \r\n", "203.0.113.7");
}

Test(forwarded, xff_junk_left_of_the_client_is_not_read)
{
    names("X-Forwarded-For: garbage, 203.0.113.7\r\n", "203.0.113.7");
    names("X-Forwarded-For: unknown, 203.0.113.7, 127.0.0.1\r\n", "203.0.113.7");
}

Test(forwarded, xff_malformed_hops)
{
    static const char *const bad[] = {
        "X-Forwarded-For: not-an-ip\r\n",
        "X-Forwarded-For: 203.0.113.7, garbage\r\n",
        "X-Forwarded-For: unknown\r\n",
        "X-Forwarded-For: 203.0.113.7, unknown, 127.0.0.1\r\n",
        "X-Forwarded-For: 203.0.113.256\r\n",
        "X-Forwarded-For: 203.0.113.7 198.51.100.1\r\n",
        "X-Forwarded-For: [2001:db8::1\r\n",
        "X-Forwarded-For: [2001:db8::1]x\r\n",
        "X-Forwarded-For: [2001:db8::1]:\r\n",
        "X-Forwarded-For: 203.0.113.7:123456\r\n",
        "X-Forwarded-For: 203.0.113.7:http\r\n",
        "X-Forwarded-For: fe80::1%eth0\r\n",
        "X-Forwarded-For: \r\n",
        "X-Forwarded-For: ,,\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) refused(bad[i], FORWARDED_MALFORMED);
}

Test(forwarded, xff_too_many_trusted_hops)
{
    char head[4096] = "X-Forwarded-For: 203.0.113.7";
    for (int i = 0; i < FORWARDED_MAX_HOPS - 1; i++) strcat(head, ", 10.0.0.1");
    strcat(head, "\r\n");
    names(head, "203.0.113.7"); /* exactly the hops kept */
    char longer[4096] = "X-Forwarded-For: 203.0.113.7";
    for (int i = 0; i < FORWARDED_MAX_HOPS; i++) strcat(longer, ", 10.0.0.1");
    strcat(longer, "\r\n");
    refused(longer, FORWARDED_MALFORMED);
    /* A long chain is fine when the client is near the right. */
    char tail[8192] = "X-Forwarded-For: ";
    for (int i = 0; i < 200; i++) strcat(tail, "198.51.100.1, ");
    strcat(tail, "203.0.113.7\r\n");
    names(tail, "203.0.113.7");
}

Test(forwarded, rfc7239_forms)
{
    names("Forwarded: for=203.0.113.7\r\n", "203.0.113.7");
    names("Forwarded: for=\"[2001:db8::1]:4711\"\r\n", "2001:db8::1");
    names("Forwarded: for=\"[2001:db8:cafe::17]\"\r\n", "2001:db8:cafe::17");
    names("Forwarded: for=\"203.0.113.7:80\"\r\n", "203.0.113.7");
    names("Forwarded: For=203.0.113.7;proto=https;by=10.0.0.1\r\n", "203.0.113.7");
    names("Forwarded: proto=https;for=203.0.113.7\r\n", "203.0.113.7");
    names("Forwarded: for=198.51.100.1, for=203.0.113.7\r\n", "203.0.113.7");
    names("Forwarded: for=198.51.100.1;proto=http, for=203.0.113.7, for=127.0.0.1\r\n", "203.0.113.7");
    names("Forwarded: for=198.51.100.1\r\nForwarded: for=203.0.113.7;host=\"a,b;c\"\r\n", "203.0.113.7");
    names("Forwarded: for=\"[2001:db8::1]:_port\"\r\n", "2001:db8::1");
    names("Forwarded: for=[2001:db8::1]\r\n", "2001:db8::1"); /* quotes left out: still read */
    names("Forwarded: for=\"[::1]\", for=10.0.0.7\r\n", "::1"); /* all trusted: the left-most */
    names("Forwarded: for=_hidden, for=203.0.113.7\r\n", "203.0.113.7"); /* left of the client */
}

Test(forwarded, rfc7239_malformed)
{
    static const char *const bad[] = {
        "Forwarded: for=unknown\r\n",
        "Forwarded: for=_hidden\r\n",
        "Forwarded: for=\"_hidden:80\"\r\n",
        "Forwarded: proto=https\r\n",                          /* a hop that names no address */
        "Forwarded: for=203.0.113.7, proto=https\r\n",
        "Forwarded: for=203.0.113.7;for=198.51.100.1\r\n",     /* two for one hop */
        "Forwarded: for=\"203.0.113.7\r\n",                    /* no closing quote */
        "Forwarded: for=\"203.0.113.7\\\"\r\n",
        "Forwarded: for=\"20\\3.0.113.7\"\r\n",                /* an escape in an address */
        "Forwarded: for\r\n",
        "Forwarded: =203.0.113.7\r\n",
        "Forwarded: for=\r\n",
        "Forwarded: for=203.0.113.7 x=1\r\n",
        "Forwarded: for=\"2001:db8::1\":80\r\n",
        "Forwarded: for=\"[2001:db8::1]:99999\"\r\n",
        "Forwarded: for=garbage\r\n",
        "Forwarded: \r\n",
        /* A line that does not parse spoils the chain, even left of the client. */
        "Forwarded: for=\"x\r\nForwarded: for=203.0.113.7\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) refused(bad[i], FORWARDED_MALFORMED);
}

Test(forwarded, both_headers_must_agree)
{
    names("X-Forwarded-For: 203.0.113.7\r\nForwarded: for=203.0.113.7\r\n", "203.0.113.7");
    names("X-Forwarded-For: 1.1.1.1, 203.0.113.7\r\nForwarded: for=\"203.0.113.7:1\"\r\n", "203.0.113.7");
    /* One proxy sets one header and passes the other through from the client. */
    refused("X-Forwarded-For: 203.0.113.7\r\nForwarded: for=198.51.100.66\r\n", FORWARDED_CONFLICT);
    refused("Forwarded: for=203.0.113.7\r\nX-Forwarded-For: 198.51.100.66\r\n", FORWARDED_CONFLICT);
    refused("X-Forwarded-For: 203.0.113.7\r\nForwarded: for=unknown\r\n", FORWARDED_MALFORMED);
    refused("X-Forwarded-For: junk\r\nForwarded: for=203.0.113.7\r\n", FORWARDED_MALFORMED);
    cr_assert_str_eq(forwarded_error_name(FORWARDED_CONFLICT), "conflicting-headers");
    cr_assert_str_eq(forwarded_error_name(FORWARDED_MALFORMED), "malformed-header");
}

Test(forwarded, nothing_trusted_means_the_right_most_hop)
{
    netaddr_list_t none = {0};
    const char *raw = "GET / HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1, 127.0.0.1\r\n\r\n";
    char buf[128];
    memcpy(buf, raw, strlen(raw) + 1);
    http_limits_t lim = {.max_header_bytes = 8192, .max_body_bytes = 0};
    http_request_t req;
    int status;
    cr_assert_gt(http_parse_request(buf, strlen(buf), &lim, &req, &status), 0);
    netaddr_t a;
    cr_assert_eq(forwarded_client(&req, &none, &a), FORWARDED_CLIENT);
    char out[NETADDR_STR_LEN];
    netaddr_format(&a, out);
    cr_assert_str_eq(out, "127.0.0.1");
}
