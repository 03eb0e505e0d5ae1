/* Catching a reconnecting stream up from the history, page by page, then handing it to the live feed. */
#ifndef SSE_REPLAY_H
#define SSE_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "shard.h"

typedef struct replay replay_t;

/**
 * The fill flags (conn_slot_post) of a page of history, which the connection's
 * owner hands to replay_page_done() before it fills the slot: the page, and
 * whether it is the reset event. The post's arg is the last id the page covered.
 */
enum { REPLAY_FILL_PAGE = CONN_FILL_OWNER, REPLAY_FILL_RESET = CONN_FILL_OWNER << 1 };

/** Most events in one page of history; the next is read when the client has taken this one. */
#define REPLAY_PAGE 1000
/** Most encoded bytes in one page, less when the client's queue has less room. */
#define REPLAY_PAGE_BYTES (256 * 1024)
/** The resume point of a client whose Last-Event-ID no server could have given. */
#define REPLAY_NEVER_ISSUED UINT64_MAX

/**
 * Starts the catch-up of a stream that began (shard_begin_stream) with Last-Event-ID
 * last_id. The live feed queues behind a slot; the history (last_id, the newest id
 * this loop's shard sh has fanned out] fills it, page by page, so nothing is
 * missed; live ids at or below last_id are skipped, so nothing comes twice. An id
 * older than the history or newer than any given gets one "reset" event instead.
 * Needs sh->store.
 */
void replay_begin(shard_t *sh, conn_t *c, uint64_t last_id);

/** Called when the writer reaches the slot at: reads the next page if one is due there. */
void replay_next(conn_t *c, const conn_slot_t *at);

/**
 * Called by the connection's owner when a page arrives, before it fills the slot:
 * more tells another page follows after id after; reset that the page is the
 * reset event (after then names the id where the live feed takes over). Returns
 * whether the slot stays for another page: events fanned out while the stream
 * caught up are read from the history too, until it has caught up with its loop.
 */
bool replay_page_done(conn_t *c, bool more, bool reset, uint64_t after);

/** Abandons the catch-up of c (its stream is ending); the slot is left to its last fill. */
void replay_stop(conn_t *c);

void replay_free(replay_t *r);

/** Parses an id: decimal digits only, fitting 64 bits; else returns false. */
bool replay_parse_id(const char *s, size_t len, uint64_t *out);

/**
 * Parses a Last-Event-ID value. A decimal number (optionally negative) is a resume
 * point: *out gets it, or REPLAY_NEVER_ISSUED when it is negative or past 64 bits
 * (such a client gets a reset). Anything else returns false (ignored: live only).
 */
bool replay_parse_resume_id(const char *s, size_t len, uint64_t *out);

#endif
