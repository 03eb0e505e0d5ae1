/* Which events a read returns: store_filter_t made into a self-contained, checkable copy. */
#ifndef SSE_STORE_FILTER_H
#define SSE_STORE_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/**
 * A store_filter_t copied for a queued read: the user, and the filter's distinct non-empty
 * types, sorted for store_match_type(). An untyped event always passes a type check, so ""
 * needs no entry. Every backend reads with it, so they all filter alike.
 */
typedef struct store_match {
    const char *user;   /* "" when the filter names none */
    const char **types; /* ntypes distinct non-empty names, sorted */
    uint32_t ntypes;
    bool all_types; /* broadcasts of every type pass: no types and not strict */
    bool strict;    /* the types bind the user's own events too */
} store_match_t;

/** Bytes store_match_copy() needs in its buffer for f (NULL f: the empty filter). */
size_t store_match_size(const store_filter_t *f);

/** Copies f into m, its strings and type array into buf (store_match_size(f) bytes). */
void store_match_copy(store_match_t *m, const store_filter_t *f, void *buf);

/** True when an event of type t passes m's types: untyped always, typed when listed. */
bool store_match_type(const store_match_t *m, const char *t);

/** True when an event of this type and user passes m, by store_filter_t's rules. */
bool store_match_event(const store_match_t *m, const char *type, const char *user);

#endif
