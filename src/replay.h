/* Catching a reconnecting stream up from the history, page by page, then handing it to the live feed. */
#ifndef SSE_REPLAY_H
#define SSE_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
typedef struct replay replay_t;

/** Largest page of history read at once; the next is read when the client has taken this one. */
#define REPLAY_PAGE 1000

/**
 * Starts the catch-up of a stream that began (conn_begin_stream) with Last-Event-ID
 * last_id. The live feed already queues behind a hole; the history (last_id, the
 * newest id this worker has fanned out] fills it, so nothing is missed and nothing
 * comes twice. An id older than the history or newer than any given gets one
 * "reset" event instead. Needs srv->store.
 */
void replay_begin(struct conn *c, uint64_t last_id);

/** Called by the writer when it reaches the hole: reads the next page if one is due. */
void replay_next(struct conn *c);

/** Called by the worker when a page arrives, before it fills the hole. */
void replay_page_done(struct conn *c, bool more, uint64_t after);

void replay_free(replay_t *r);

/** Parses a Last-Event-ID value: decimal digits only, fitting 64 bits; else returns false. */
bool replay_parse_id(const char *s, size_t len, uint64_t *out);

#endif
