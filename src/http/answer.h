/* Answering a request later: its place in the output, its reply's CORS and keep-alive, from any thread. */
#ifndef SSE_ANSWER_H
#define SSE_ANSWER_H

#include <jansson.h>
#include <stddef.h>

#include "conn.h"
#include "http.h"
#include "respond.h"

/**
 * A request whose answer another thread prepares (a store commit or read, a
 * password check). It holds no pointer into the request, so it may outlive it.
 */
typedef struct answer {
    conn_slot_t *slot;
    reply_meta_t meta;
} answer_t;

/**
 * Reserves the place of req's answer on c (on c's loop), counting reserve
 * bytes toward the bound of answers waiting on c until the answer arrives.
 */
void answer_open(answer_t *a, conn_t *c, const http_request_t *req, size_t reserve);

/** Set once the connection has gone: the work may be skipped, but must still answer. */
const atomic_int *answer_cancelled(const answer_t *a);

/**
 * From any thread: puts the response f (its reference taken) in the answer's
 * place; the connection closes after it when the request did not keep it alive.
 */
void answer_send(answer_t *a, frame_t *f);

/** answer_send() of a JSON body (the reference to value is taken). */
void answer_json(answer_t *a, int status, json_t *value);

/** From any thread: answer_send() of {"error": msg} with the extra header lines (or NULL). */
void answer_error(answer_t *a, int status, const char *msg, const char *extra);

/**
 * On c's loop, when the work could not even start: answers status with
 * {"error": msg} and the extra header lines (or NULL) at once.
 */
void answer_fail(answer_t *a, int status, const char *msg, const char *extra);

#endif
