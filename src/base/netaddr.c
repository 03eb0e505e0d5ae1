/* Addresses and ranges on inet_pton/inet_ntop; a list is a small array scanned in order. */
#include "netaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int netaddr_parse(const char *s, size_t n, netaddr_t *out)
{
    char buf[NETADDR_STR_LEN];
    if (n == 0 || n >= sizeof buf || memchr(s, '\0', n)) return SSE_EINVAL;
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(out, 0, sizeof *out);
    if (inet_pton(AF_INET, buf, out->b) == 1) {
        out->family = 4;
        return SSE_OK;
    }
    if (inet_pton(AF_INET6, buf, out->b) != 1) return SSE_EINVAL;
    out->family = 6;
    if (memcmp(out->b, v4_mapped, sizeof v4_mapped) == 0) { /* ::ffff:a.b.c.d is a.b.c.d */
        memmove(out->b, out->b + 12, 4);
        memset(out->b + 4, 0, 12);
        out->family = 4;
    }
    return SSE_OK;
}

bool netaddr_equal(const netaddr_t *a, const netaddr_t *b)
{
    return a->family == b->family && memcmp(a->b, b->b, a->family == 4 ? 4 : 16) == 0;
}

void netaddr_format(const netaddr_t *a, char out[NETADDR_STR_LEN])
{
    if (!inet_ntop(a->family == 4 ? AF_INET : AF_INET6, a->b, out, NETADDR_STR_LEN))
        snprintf(out, NETADDR_STR_LEN, "?");
}

void netaddr_key(const netaddr_t *a, char out[NETADDR_KEY_LEN])
{
    if (a->family == 4) {
        netaddr_format(a, out);
        return;
    }
    netaddr_t prefix = {.family = 6};
    memcpy(prefix.b, a->b, 8);
    char text[NETADDR_STR_LEN];
    netaddr_format(&prefix, text);
    snprintf(out, NETADDR_KEY_LEN, "%.40s/64", text); /* at most 21 + 3 bytes */
}

void netaddr_key_of(const char *ip, char out[NETADDR_KEY_LEN])
{
    netaddr_t a;
    if (netaddr_parse(ip, strlen(ip), &a) == SSE_OK) netaddr_key(&a, out);
    else snprintf(out, NETADDR_KEY_LEN, "%s", ip);
}

int netaddr_cidr_parse(const char *s, size_t n, netaddr_cidr_t *out)
{
    const char *slash = memchr(s, '/', n);
    size_t alen = slash ? (size_t)(slash - s) : n;
    if (netaddr_parse(s, alen, &out->net)) return SSE_EINVAL;
    /* A mapped range (::ffff:10.0.0.0/104) was read as IPv4: its prefix counts from bit 96. */
    bool mapped = out->net.family == 4 && memchr(s, ':', alen);
    int max = out->net.family == 4 ? 32 : 128, bits = max;
    if (slash) {
        const char *p = slash + 1, *end = s + n;
        if (p == end || end - p > 3) return SSE_EINVAL;
        bits = 0;
        for (; p < end; p++) {
            if (*p < '0' || *p > '9') return SSE_EINVAL;
            bits = bits * 10 + (*p - '0');
        }
        if (mapped) {
            if (bits < 96) return SSE_EINVAL;
            bits -= 96;
        }
        if (bits > max) return SSE_EINVAL;
    }
    out->bits = (uint8_t)bits;
    for (int i = bits; i < max; i++) /* the host part must be zero */
        if (out->net.b[i / 8] & (0x80 >> (i % 8))) return SSE_EINVAL;
    return SSE_OK;
}

bool netaddr_cidr_match(const netaddr_cidr_t *c, const netaddr_t *a)
{
    if (c->net.family != a->family) return false;
    int full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->net.b, a->b, (size_t)full) != 0) return false;
    if (rest == 0) return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (c->net.b[full] & mask) == (a->b[full] & mask);
}

int netaddr_list_parse(netaddr_list_t *l, const char *spec, char err[SSE_ERR_LEN])
{
    memset(l, 0, sizeof *l);
    const char *p = spec;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        const char *s = p;
        while (*p && *p != ',') p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        if (e == s) continue;
        netaddr_cidr_t c;
        if (netaddr_cidr_parse(s, (size_t)(e - s), &c)) {
            int len = e - s > 48 ? 48 : (int)(e - s); /* the item alone, not what follows it */
            snprintf(err, SSE_ERR_LEN,
                     "\"%.*s\" is not an IPv4 or IPv6 address or CIDR range (like 127.0.0.1, "
                     "10.0.0.0/8, ::1 or fd00::/8; no bits set past the prefix)",
                     len, s);
            netaddr_list_free(l);
            return SSE_EINVAL;
        }
        if (l->n == NETADDR_LIST_MAX) {
            snprintf(err, SSE_ERR_LEN, "at most %d addresses or ranges", NETADDR_LIST_MAX);
            netaddr_list_free(l);
            return SSE_EINVAL;
        }
        l->v = xrealloc(l->v, sizeof *l->v * (size_t)(l->n + 1));
        l->v[l->n++] = c;
    }
    return SSE_OK;
}

bool netaddr_list_match(const netaddr_list_t *l, const netaddr_t *a)
{
    for (int i = 0; i < l->n; i++)
        if (netaddr_cidr_match(&l->v[i], a)) return true;
    return false;
}

bool netaddr_list_has_all(const netaddr_list_t *l)
{
    for (int i = 0; i < l->n; i++)
        if (l->v[i].bits == 0) return true;
    return false;
}

void netaddr_list_free(netaddr_list_t *l)
{
    free(l->v);
    memset(l, 0, sizeof *l);
}
