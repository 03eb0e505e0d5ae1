/* Publishing: store first (group-committed on the store's thread), then fan-out and the 201. */
#include "publish.h"

#include <inttypes.h>
#include <string.h>

#include "answer.h"
#include "common.h"
#include "log.h"
#include "respond.h"
#include "sse.h"
#include "store.h"

/* What the commit callback needs to answer the publisher; freed by it. */
typedef struct publish_req {
    const log_t *log;
    answer_t ans;
    char account[128];
} publish_req_t;

/* Room for a 201 or 503 answer with its CORS lines. */
#define PUBLISH_ANSWER_BYTES 2048

static void log_publish(const log_t *log, uint64_t id, const char *account, const char *type,
                        const char *user, size_t bytes)
{
    char t[64], u[64];
    log_info(log, "publish id=%" PRIu64 " account=%s type=%s user=%s bytes=%zu", id, account,
             log_clean(type, t, sizeof t), log_clean(user, u, sizeof u), bytes);
}

void publish_feed(void *bus, const store_event_t *ev)
{
    /* Encoded once here, on the store's one feed thread: every loop shares these bytes. */
    frame_t *f = sse_encode(ev->id, ev->type, ev->user, ev->content, ev->content_len);
    bus_fanout(bus, f);
    frame_unref(f);
}

/* Runs on the store's writer thread, once per event, in id order; the event's live
 * delivery is the store's feed (publish_feed), not this. */
static void on_commit(void *arg, const store_event_t *ev, int err)
{
    publish_req_t *rq = arg;
    if (err == 0) {
        log_publish(rq->log, ev->id, rq->account, ev->type, ev->user, ev->content_len);
        answer_json(&rq->ans, 201, json_pack("{s:I}", "id", (json_int_t)ev->id));
    } else {
        const char *reason = err == SSE_EFULL      ? "store-full"
                             : err == SSE_EUNAVAIL ? "store-unreachable"
                                                   : "store-error";
        log_error(rq->log, "publish-failed account=%s reason=%s error=\"%s\"", rq->account, reason,
                  ev->error ? ev->error : "unknown");
        answer_error(&rq->ans, 503,
                     err == SSE_EFULL      ? "the history store is full"
                     : err == SSE_EUNAVAIL ? "the history store cannot be reached"
                                           : "the event could not be stored",
                     "Retry-After: 1\r\n");
    }
    free(rq);
}

void publish_submit(shard_t *sh, conn_t *c, const http_request_t *req, const char *type,
                    const char *user, const char *content, size_t content_len, const char *account)
{
    if (!sh->store) { /* no history: ids from memory, answered at once */
        uint64_t id = bus_publish(sh->bus, type, user, content, content_len);
        log_publish(c->own->log, id, account, type, user, content_len);
        respond_json(c, req, 201, json_pack("{s:I}", "id", (json_int_t)id));
        return;
    }
    publish_req_t *rq = xmalloc(sizeof *rq);
    rq->log = c->own->log;
    answer_open(&rq->ans, c, req, PUBLISH_ANSWER_BYTES);
    snprintf(rq->account, sizeof rq->account, "%s", account);
    store_event_t ev = {.type = type, .user = user, .content = content, .content_len = content_len};
    /* Held until the loop is about to sleep: publishes of one wake-up share a commit. */
    sh->store_held = true;
    if (sh->store->ops->append_held(sh->store, &ev, on_commit, rq)) {
        answer_fail(&rq->ans, 503, "the server is stopping", "Retry-After: 1\r\n");
        free(rq);
    }
}
