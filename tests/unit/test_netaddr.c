/* netaddr: parsing, mapped IPv4, formatting, /64 keys, CIDR ranges and lists. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "netaddr.h"

static netaddr_t addr(const char *s)
{
    netaddr_t a;
    cr_assert_eq(netaddr_parse(s, strlen(s), &a), SSE_OK, "%s parses", s);
    return a;
}

static void fmt_is(const char *in, const char *want)
{
    netaddr_t a = addr(in);
    char out[NETADDR_STR_LEN];
    netaddr_format(&a, out);
    cr_assert_str_eq(out, want, "%s", in);
}

static void key_is(const char *in, const char *want)
{
    char out[NETADDR_KEY_LEN];
    netaddr_key_of(in, out);
    cr_assert_str_eq(out, want, "key of %s", in);
}

static bool in_range(const char *range, const char *a)
{
    netaddr_cidr_t c;
    cr_assert_eq(netaddr_cidr_parse(range, strlen(range), &c), SSE_OK, "%s parses", range);
    netaddr_t x = addr(a);
    return netaddr_cidr_match(&c, &x);
}

Test(netaddr, parses_ipv4_and_ipv6)
{
    netaddr_t a = addr("203.0.113.7");
    cr_assert_eq(a.family, 4);
    cr_assert_eq(a.b[0], 203);
    cr_assert_eq(a.b[3], 7);
    a = addr("2001:db8::1");
    cr_assert_eq(a.family, 6);
    cr_assert_eq(a.b[0], 0x20);
    cr_assert_eq(a.b[15], 1);
    cr_assert_eq(addr("::").family, 6);
    cr_assert_eq(addr("::1").family, 6);
}

Test(netaddr, refuses_what_is_no_bare_address)
{
    static const char *const bad[] = {
        "", " 1.2.3.4", "1.2.3.4 ", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4:80", "[::1]",
        "[::1]:80", "fe80::1%eth0", "2001:db8:::1", "unknown", "_hidden", "localhost", "1.2.3.-1",
        "0x7f.0.0.1", "::ffff:1.2.3.4.5", "2001:db8::1/64",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        netaddr_t a;
        cr_assert_eq(netaddr_parse(bad[i], strlen(bad[i]), &a), SSE_EINVAL, "\"%s\" refused", bad[i]);
    }
    netaddr_t a;
    cr_assert_eq(netaddr_parse("1.2.3.4\0x", 9, &a), SSE_EINVAL, "a NUL inside is refused");
    char longer[100];
    memset(longer, '1', sizeof longer);
    cr_assert_eq(netaddr_parse(longer, sizeof longer, &a), SSE_EINVAL, "too long");
    cr_assert_eq(netaddr_parse("1.2.3.4xyz", 7, &a), SSE_OK, "exactly n bytes are read");
}

Test(netaddr, mapped_ipv4_is_ipv4)
{
    netaddr_t m = addr("::ffff:127.0.0.1"), v4 = addr("127.0.0.1");
    cr_assert_eq(m.family, 4);
    cr_assert(netaddr_equal(&m, &v4));
    fmt_is("::FFFF:10.1.2.3", "10.1.2.3");
    netaddr_t compat = addr("::10.1.2.3"); /* the old "compatible" form is not a mapped one */
    cr_assert_eq(compat.family, 6);
}

Test(netaddr, formats_in_the_short_form)
{
    fmt_is("203.0.113.7", "203.0.113.7");
    fmt_is("2001:DB8:0:0:0:0:0:1", "2001:db8::1");
    fmt_is("fd00::0001", "fd00::1");
}

Test(netaddr, equal)
{
    netaddr_t a = addr("2001:db8::1"), b = addr("2001:0db8::0001"), c = addr("2001:db8::2");
    cr_assert(netaddr_equal(&a, &b));
    cr_assert(!netaddr_equal(&a, &c));
    netaddr_t d = addr("0.0.0.1"), e = addr("::1");
    cr_assert(!netaddr_equal(&d, &e), "families differ");
}

Test(netaddr, keys_ipv4_whole_ipv6_by_64)
{
    key_is("203.0.113.7", "203.0.113.7");
    key_is("::ffff:203.0.113.7", "203.0.113.7");
    key_is("2001:db8:1:2::1", "2001:db8:1:2::/64");
    key_is("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64");
    key_is("2001:db8:1:3::1", "2001:db8:1:3::/64");
    key_is("2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", "2001:db8:aaaa:bbbb::/64");
    key_is("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff::/64");
    key_is("::1", "::/64");
    key_is("?", "?");
    key_is("not an address", "not an address");
}

Test(netaddr, cidr_ranges_match_their_prefix)
{
    cr_assert(in_range("10.0.0.0/8", "10.255.1.2"));
    cr_assert(!in_range("10.0.0.0/8", "11.0.0.0"));
    cr_assert(in_range("192.168.4.0/22", "192.168.7.255"));
    cr_assert(!in_range("192.168.4.0/22", "192.168.8.0"));
    cr_assert(!in_range("192.168.4.0/22", "192.168.3.255"));
    cr_assert(in_range("127.0.0.1", "127.0.0.1"), "an address is its own /32");
    cr_assert(!in_range("127.0.0.1", "127.0.0.2"));
    cr_assert(in_range("0.0.0.0/0", "203.0.113.7"));
    cr_assert(!in_range("0.0.0.0/0", "2001:db8::1"), "an IPv4 range holds no IPv6 address");
    cr_assert(in_range("fd00::/8", "fdff:1::1"));
    cr_assert(!in_range("fd00::/8", "fe00::1"));
    cr_assert(in_range("2001:db8::/33", "2001:db8:7fff::1"));
    cr_assert(!in_range("2001:db8::/33", "2001:db8:8000::1"));
    cr_assert(in_range("::1", "::1"));
    cr_assert(!in_range("::/0", "1.2.3.4"), "an IPv6 range holds no IPv4 address");
    cr_assert(in_range("::/0", "2001:db8::1"));
    cr_assert(in_range("127.0.0.0/8", "::ffff:127.0.0.9"), "a mapped peer matches its IPv4 range");
    cr_assert(in_range("::ffff:10.0.0.0/104", "10.9.9.9"), "a mapped range is an IPv4 one");
    cr_assert(!in_range("::ffff:10.0.0.0/104", "11.0.0.0"));
}

Test(netaddr, cidr_refuses_bad_prefixes)
{
    static const char *const bad[] = {
        "10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/a", "10.0.0.0/-1", "10.0.0.0/8/8",
        "10.0.0.1/8", "10.0.0.0/1000", "/8", "fd00::1/8", "::ffff:10.0.0.0/95", "10.0.0.0 /8",
        "banana", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        netaddr_cidr_t c;
        cr_assert_eq(netaddr_cidr_parse(bad[i], strlen(bad[i]), &c), SSE_EINVAL, "\"%s\" refused", bad[i]);
    }
    netaddr_cidr_t c;
    cr_assert_eq(netaddr_cidr_parse("10.0.0.0/8", 10, &c), SSE_OK);
    cr_assert_eq(c.bits, 8);
    cr_assert_eq(netaddr_cidr_parse("10.0.0.0/0", 10, &c), SSE_EINVAL, "host bits past a /0");
    cr_assert_eq(netaddr_cidr_parse("0.0.0.0/0", 9, &c), SSE_OK);
    cr_assert_eq(c.bits, 0);
    cr_assert_eq(netaddr_cidr_parse("::1", 3, &c), SSE_OK);
    cr_assert_eq(c.bits, 128);
}

Test(netaddr, list_parses_the_setting)
{
    netaddr_list_t l;
    char err[SSE_ERR_LEN] = "";
    cr_assert_eq(netaddr_list_parse(&l, " 127.0.0.1, 10.0.0.0/8 ,,::1,fd00::/8 ", err), SSE_OK, "%s", err);
    cr_assert_eq(l.n, 4);
    netaddr_t a = addr("10.1.1.1"), b = addr("fd12::3"), c = addr("192.0.2.1"), d = addr("::1");
    netaddr_t e = addr("::ffff:127.0.0.1");
    cr_assert(netaddr_list_match(&l, &a));
    cr_assert(netaddr_list_match(&l, &b));
    cr_assert(!netaddr_list_match(&l, &c));
    cr_assert(netaddr_list_match(&l, &d));
    cr_assert(netaddr_list_match(&l, &e));
    cr_assert(!netaddr_list_has_all(&l));
    netaddr_list_free(&l);

    cr_assert_eq(netaddr_list_parse(&l, "", err), SSE_OK);
    cr_assert_eq(l.n, 0);
    cr_assert(!netaddr_list_match(&l, &a), "the empty list trusts nobody");
    netaddr_list_free(&l);

    cr_assert_eq(netaddr_list_parse(&l, "10.0.0.0/8,0.0.0.0/0", err), SSE_OK);
    cr_assert(netaddr_list_has_all(&l));
    netaddr_list_free(&l);
}

Test(netaddr, list_error_names_the_bad_item)
{
    netaddr_list_t l;
    char err[SSE_ERR_LEN] = "";
    cr_assert_eq(netaddr_list_parse(&l, "127.0.0.1, 10.0.0.0/33, ::1", err), SSE_EINVAL);
    cr_assert_eq(l.n, 0);
    cr_assert_null(l.v);
    cr_assert(strncmp(err, "\"10.0.0.0/33\" is not an IPv4 or IPv6 address or CIDR range", 58) == 0, "%s", err);
    cr_assert_eq(netaddr_list_parse(&l, "10.0.0.1 10.0.0.2", err), SSE_EINVAL, "a missing comma");
    cr_assert(strstr(err, "\"10.0.0.1 10.0.0.2\""), "%s", err);
    char many[NETADDR_LIST_MAX * 12 + 16] = "";
    for (int i = 0; i <= NETADDR_LIST_MAX; i++) {
        char item[32];
        snprintf(item, sizeof item, "%s10.0.%d.%d", i ? "," : "", i / 256, i % 256);
        strcat(many, item);
    }
    cr_assert_eq(netaddr_list_parse(&l, many, err), SSE_EINVAL);
    cr_assert(strstr(err, "at most"), "%s", err);
    cr_assert_eq(l.n, 0);
}
