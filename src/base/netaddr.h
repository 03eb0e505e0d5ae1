/* IP addresses and CIDR ranges: parsing (inet_pton), matching, and the keys limits count by. */
#ifndef SSE_NETADDR_H
#define SSE_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common.h"

/** Room for an address as text, NUL included (INET6_ADDRSTRLEN). */
#define NETADDR_STR_LEN 46
/** Room for a key (netaddr_key): an address, or an IPv6 /64 prefix with its "/64". */
#define NETADDR_KEY_LEN 48
/** Most entries in a list (netaddr_list_parse). */
#define NETADDR_LIST_MAX 128

/**
 * One IPv4 or IPv6 address. An IPv4 address is held in b[0..3]; an IPv4-mapped
 * IPv6 address (::ffff:a.b.c.d, what a dual-stack socket reports for an IPv4
 * peer) is held as the IPv4 address it maps, so both forms match and count alike.
 */
typedef struct netaddr {
    uint8_t family; /* 4 or 6 */
    uint8_t b[16];
} netaddr_t;

/** A range: the addresses whose first bits bits equal those of net. */
typedef struct netaddr_cidr {
    netaddr_t net;
    uint8_t bits; /* 0..32 for IPv4, 0..128 for IPv6 */
} netaddr_cidr_t;

/** A list of ranges, as SSE_TRUSTED_PROXIES gives them. */
typedef struct netaddr_list {
    netaddr_cidr_t *v;
    int n;
} netaddr_list_t;

/**
 * Parses exactly n bytes of s as an IPv4 (dotted quad) or IPv6 address, with
 * inet_pton. No brackets, port, zone or surrounding blanks. Returns 0 or SSE_EINVAL.
 */
int netaddr_parse(const char *s, size_t n, netaddr_t *out);

/** True when a and b are the same address. */
bool netaddr_equal(const netaddr_t *a, const netaddr_t *b);

/** The address as text (inet_ntop: IPv6 in its short lower-case form). */
void netaddr_format(const netaddr_t *a, char out[NETADDR_STR_LEN]);

/**
 * The key under which per-address limits count a, in out: an IPv4 address itself
 * ("203.0.113.7"), an IPv6 address's /64 prefix ("2001:db8:1:2::/64"), since one
 * IPv6 client usually holds a whole /64.
 */
void netaddr_key(const netaddr_t *a, char out[NETADDR_KEY_LEN]);

/** netaddr_key() of the address written in ip; text that is no address is its own key (cut). */
void netaddr_key_of(const char *ip, char out[NETADDR_KEY_LEN]);

/**
 * Parses n bytes of s as an address ("10.0.0.1", "::1": the range of that address
 * alone) or a CIDR range ("10.0.0.0/8", "fd00::/8"). The bits past the prefix must
 * be zero ("10.0.0.1/8" is refused: it reads like a typo). Returns 0 or SSE_EINVAL.
 */
int netaddr_cidr_parse(const char *s, size_t n, netaddr_cidr_t *out);

/** True when a is in c (an IPv4 address never matches an IPv6 range, nor the reverse). */
bool netaddr_cidr_match(const netaddr_cidr_t *c, const netaddr_t *a);

/**
 * Parses a comma-separated list of addresses and ranges (blanks around items are
 * ignored; "" is the empty list) into l, which netaddr_list_free() releases. On a bad
 * item returns SSE_EINVAL with err naming it ("\"10.0.0.0/33\" is not ..."), l empty.
 */
int netaddr_list_parse(netaddr_list_t *l, const char *spec, char err[SSE_ERR_LEN]);

/** True when a is in one of l's ranges. */
bool netaddr_list_match(const netaddr_list_t *l, const netaddr_t *a);

/** True when one of l's ranges holds every address of its family (a /0). */
bool netaddr_list_has_all(const netaddr_list_t *l);

void netaddr_list_free(netaddr_list_t *l);

#endif
