/* Later answers: a slot reserved on the connection, filled on its loop through the owner's post. */
#include "answer.h"

#include <string.h>

void answer_open(answer_t *a, conn_t *c, const http_request_t *req, size_t reserve)
{
    reply_meta_init(&a->meta, c->own->cfg, req);
    a->slot = conn_slot_open(c, reserve);
}

const atomic_int *answer_cancelled(const answer_t *a)
{
    return &a->slot->cancelled;
}

void answer_send(answer_t *a, frame_t *f)
{
    conn_slot_post(a->slot, &f, 1, a->meta.keep_alive ? 0 : CONN_FILL_END, 0);
}

void answer_json(answer_t *a, int status, json_t *value)
{
    answer_send(a, response_json_frame(&a->meta, status, value));
}

/* The {"error": msg} response with the extra header lines (or NULL). */
static frame_t *error_frame(answer_t *a, int status, const char *msg, const char *extra)
{
    json_t *body = json_pack("{s:s}", "error", msg);
    char *text = json_dumps(body, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(body);
    frame_t *f = response_frame(&a->meta, status, "application/json", text, strlen(text), extra);
    free(text);
    return f;
}

void answer_error(answer_t *a, int status, const char *msg, const char *extra)
{
    answer_send(a, error_frame(a, status, msg, extra));
}

void answer_fail(answer_t *a, int status, const char *msg, const char *extra)
{
    frame_t *f = error_frame(a, status, msg, extra);
    conn_slot_fill(a->slot, &f, 1, a->meta.keep_alive ? 0 : CONN_FILL_END);
}
