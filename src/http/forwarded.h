/* The client a trusted proxy names: X-Forwarded-For and RFC 7239 Forwarded chains. */
#ifndef SSE_FORWARDED_H
#define SSE_FORWARDED_H

#include "http.h"
#include "netaddr.h"

/** What forwarded_client() found. */
enum forwarded_result {
    FORWARDED_NONE = 0,       /* neither header: the peer is the client */
    FORWARDED_CLIENT = 1,     /* *client is the address the chain names */
    FORWARDED_MALFORMED = -1, /* a header could not be read: believe neither */
    FORWARDED_CONFLICT = -2,  /* both headers, naming different clients: believe neither */
};

/** Most hops of one chain read from the right; a longer run of trusted proxies is malformed. */
#define FORWARDED_MAX_HOPS 32

/**
 * For a request that came from a trusted proxy: the client address its
 * X-Forwarded-For and Forwarded headers name (every line of each, in order, as
 * one list). The client is the right-most address of the chain that is not itself
 * in trusted (everything left of it may be the client's own invention), or the
 * left-most one when every hop is trusted. Only the hops up to it are read, so
 * junk a client put in front does not matter; a hop that is not an address
 * ("unknown", an obfuscated name, garbage) or a Forwarded header that does not
 * parse is FORWARDED_MALFORMED. A proxy that sets one header may pass the other
 * through from the client untouched, so when both are present they must agree.
 * Addresses may carry a port ("192.0.2.1:80", "[2001:db8::1]:4711"); IPv6 in
 * Forwarded comes quoted in brackets, as RFC 7239 says.
 */
int forwarded_client(const http_request_t *req, const netaddr_list_t *trusted, netaddr_t *client);

/** The log word for a forwarded_client() result below 0. */
const char *forwarded_error_name(int result);

#endif
