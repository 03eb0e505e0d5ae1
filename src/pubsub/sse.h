/* SSE encoding: an event becomes "id:", "event:" and one "data:" line per content line. */
#ifndef SSE_SSE_H
#define SSE_SSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "frame.h"

/** Longest event type or user id accepted anywhere (publish, subscribe, mint). */
#define SSE_MAX_NAME 256

/** True when s (len bytes) may be written after "event:" or used as a user id: no CR, LF or NUL. */
bool sse_field_ok(const char *s, size_t len);

/** Bytes sse_encode() will produce for this event. */
size_t sse_encoded_len(uint64_t id, const char *type, const char *content, size_t content_len);

/**
 * Encodes one event into a new frame with one reference: "id: N", "event: type"
 * when type is non-empty, then content split on CRLF, LF and CR into "data:" lines
 * (an empty content gives one empty "data:" line so browsers still dispatch it),
 * and the blank line. type must pass sse_field_ok(). The frame records id, type and
 * user (NULL or empty = none) for routing.
 */
frame_t *sse_encode(uint64_t id, const char *type, const char *user, const char *content,
                    size_t content_len);

/** "retry: ms\n\n" as a new frame. */
frame_t *sse_retry_frame(int retry_ms);

/** The heartbeat comment ": ping\n\n" as a new frame. */
frame_t *sse_ping_frame(void);

#endif
