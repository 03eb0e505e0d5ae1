/* Forwarded-for chains: each header split into hops left to right, then read from the right. */
#include "forwarded.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

/** One hop of a chain: the text naming it, or NULL when it names none (a Forwarded element without for=). */
typedef struct hop {
    const char *s;
    size_t n;
} hop_t;

/** The last FORWARDED_MAX_HOPS hops of a chain (a ring), and how many there were in all. */
typedef struct chain {
    hop_t hops[FORWARDED_MAX_HOPS];
    size_t count;
    bool bad; /* a Forwarded line did not parse */
} chain_t;

static void push(chain_t *c, const char *s, size_t n)
{
    c->hops[c->count % FORWARDED_MAX_HOPS] = (hop_t){s, n};
    c->count++;
}

static bool is_ows(char ch)
{
    return ch == ' ' || ch == '\t';
}

/* RFC 7230 tchar. */
static bool is_tchar(unsigned char ch)
{
    return isalnum(ch) || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* A node's port: a number up to 65535, or an obfuscated one: "_" then letters, digits, ".", "_", "-". */
static bool port_ok(const char *s, size_t n)
{
    if (n == 0) return false;
    if (s[0] == '_') {
        for (size_t i = 1; i < n; i++)
            if (!isalnum((unsigned char)s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-') return false;
        return n > 1;
    }
    if (n > 5) return false;
    long port = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i])) return false;
        port = port * 10 + (s[i] - '0');
    }
    return port <= 65535;
}

/*
 * An address with an optional port: "192.0.2.1", "192.0.2.1:80", "2001:db8::1",
 * "[2001:db8::1]", "[2001:db8::1]:4711". Returns 0 or SSE_EINVAL ("unknown" and
 * obfuscated names are no address).
 */
static int parse_node(const char *s, size_t n, netaddr_t *a)
{
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (!close || netaddr_parse(s + 1, (size_t)(close - s - 1), a)) return SSE_EINVAL;
        size_t rest = n - (size_t)(close + 1 - s);
        if (rest == 0) return SSE_OK;
        return close[1] == ':' && port_ok(close + 2, rest - 1) ? SSE_OK : SSE_EINVAL;
    }
    if (netaddr_parse(s, n, a) == SSE_OK) return SSE_OK;
    const char *colon = memchr(s, ':', n);
    if (!colon || memchr(colon + 1, ':', n - (size_t)(colon + 1 - s))) return SSE_EINVAL;
    if (netaddr_parse(s, (size_t)(colon - s), a) || a->family != 4) return SSE_EINVAL;
    return port_ok(colon + 1, n - (size_t)(colon + 1 - s)) ? SSE_OK : SSE_EINVAL;
}

/* One X-Forwarded-For line: hops separated by commas; empty ones (", ,") are skipped. */
static void xff_line(chain_t *c, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        const char *comma = memchr(s + i, ',', n - i);
        size_t end = comma ? (size_t)(comma - s) : n, b = i, e = end;
        while (b < e && is_ows(s[b])) b++;
        while (e > b && is_ows(s[e - 1])) e--;
        if (e > b) push(c, s + b, e - b);
        i = end + 1;
    }
}

/*
 * One Forwarded line (RFC 7239): elements separated by commas, each pairs
 * separated by semicolons, each pair token=value with value a token or a quoted
 * string. Each element with pairs is one hop, named by its for= value (a hop
 * without one names no address). An unquoted value may also hold ':', '[' and ']'
 * (some proxies leave the quotes out). Returns false when the line does not parse.
 */
static bool forwarded_line(chain_t *c, const char *s, size_t n)
{
    size_t i = 0;
    bool pairs = false, has_for = false;
    const char *for_s = NULL;
    size_t for_n = 0;
    for (;;) {
        while (i < n && is_ows(s[i])) i++;
        if (i == n || s[i] == ',') { /* the element ends */
            if (pairs) push(c, for_s, for_n);
            pairs = has_for = false;
            for_s = NULL;
            if (i == n) return true;
            i++;
            continue;
        }
        if (s[i] == ';') {
            i++;
            continue;
        }
        size_t name = i;
        while (i < n && is_tchar((unsigned char)s[i])) i++;
        size_t name_len = i - name;
        if (name_len == 0 || i == n || s[i] != '=') return false;
        i++;
        const char *v = s + i;
        size_t vlen;
        bool escaped = false;
        if (i < n && s[i] == '"') {
            v = s + ++i;
            while (i < n && s[i] != '"') {
                if (s[i] == '\\') {
                    escaped = true;
                    if (++i == n) return false;
                }
                i++;
            }
            if (i == n) return false; /* no closing quote */
            vlen = (size_t)(s + i - v);
            i++;
        } else {
            while (i < n && (is_tchar((unsigned char)s[i]) || s[i] == ':' || s[i] == '[' || s[i] == ']')) i++;
            vlen = (size_t)(s + i - v);
            if (vlen == 0) return false;
        }
        while (i < n && is_ows(s[i])) i++;
        if (i < n && s[i] != ';' && s[i] != ',') return false;
        pairs = true;
        if (name_len == 3 && strncasecmp(s + name, "for", 3) == 0) {
            if (has_for) return false; /* one hop, one address */
            has_for = true;
            /* No address needs an escape: a value with one names none. */
            for_s = escaped ? NULL : v;
            for_n = vlen;
        }
    }
}

/* The client a chain names (see forwarded_client), or FORWARDED_MALFORMED. */
static int resolve(const chain_t *c, const netaddr_list_t *trusted, netaddr_t *out)
{
    if (c->bad || c->count == 0) return FORWARDED_MALFORMED;
    size_t kept = c->count < FORWARDED_MAX_HOPS ? c->count : FORWARDED_MAX_HOPS;
    for (size_t k = 0; k < kept; k++) {
        const hop_t *h = &c->hops[(c->count - 1 - k) % FORWARDED_MAX_HOPS];
        if (!h->s || parse_node(h->s, h->n, out)) return FORWARDED_MALFORMED;
        if (!netaddr_list_match(trusted, out)) return FORWARDED_CLIENT;
    }
    /* Every hop is a trusted proxy: the left-most is the client, if we still hold it. */
    return c->count > FORWARDED_MAX_HOPS ? FORWARDED_MALFORMED : FORWARDED_CLIENT;
}

static bool name_is(const http_header_t *h, const char *name)
{
    size_t n = strlen(name);
    return h->name_len == n && strncasecmp(h->name, name, n) == 0;
}

int forwarded_client(const http_request_t *req, const netaddr_list_t *trusted, netaddr_t *client)
{
    chain_t xff = {.count = 0}, fwd = {.count = 0};
    bool has_xff = false, has_fwd = false;
    for (int i = 0; i < req->nheaders; i++) {
        const http_header_t *h = &req->headers[i];
        if (name_is(h, "x-forwarded-for")) {
            has_xff = true;
            xff_line(&xff, h->value, h->value_len);
        } else if (name_is(h, "forwarded")) {
            has_fwd = true;
            if (!forwarded_line(&fwd, h->value, h->value_len)) fwd.bad = true;
        }
    }
    if (!has_xff && !has_fwd) return FORWARDED_NONE;
    netaddr_t a, b;
    if (has_xff && resolve(&xff, trusted, &a) != FORWARDED_CLIENT) return FORWARDED_MALFORMED;
    if (has_fwd && resolve(&fwd, trusted, &b) != FORWARDED_CLIENT) return FORWARDED_MALFORMED;
    if (has_xff && has_fwd && !netaddr_equal(&a, &b)) return FORWARDED_CONFLICT;
    *client = has_xff ? a : b;
    return FORWARDED_CLIENT;
}

const char *forwarded_error_name(int result)
{
    return result == FORWARDED_CONFLICT ? "conflicting-headers" : "malformed-header";
}
