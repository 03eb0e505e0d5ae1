/* SSE framing: the product's wire format, written once per event. */
#include "sse.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

bool sse_field_ok(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] == '\r' || s[i] == '\n' || s[i] == '\0') return false;
    return true;
}

static size_t id_digits(uint64_t id)
{
    size_t n = 1;
    while (id >= 10) id /= 10, n++;
    return n;
}

/*
 * Finds the line that starts at *pos: CRLF, LF and CR all end a line. Returns false
 * once every line has been returned (content with no bytes is one empty line).
 */
static bool next_line(const char *c, size_t len, size_t *pos, const char **line, size_t *llen)
{
    size_t i = *pos;
    if (i > len) return false;
    size_t s = i;
    while (i < len && c[i] != '\n' && c[i] != '\r') i++;
    *line = c + s;
    *llen = i - s;
    if (i < len && c[i] == '\r' && i + 1 < len && c[i + 1] == '\n') i++;
    *pos = i + 1; /* past the end marker; len + 1 means "done" */
    return true;
}

size_t sse_encoded_len(uint64_t id, const char *type, const char *content, size_t content_len)
{
    size_t n = 4 + id_digits(id) + 1; /* "id: N\n" */
    if (type && *type) n += 7 + strlen(type) + 1;
    const char *line;
    size_t llen, pos = 0;
    while (next_line(content, content_len, &pos, &line, &llen)) n += 6 + llen + 1;
    return n + 1;
}

frame_t *sse_encode(uint64_t id, const char *type, const char *user, const char *content,
                    size_t content_len)
{
    if (type && !*type) type = NULL;
    if (user && !*user) user = NULL;
    size_t len = sse_encoded_len(id, type, content, content_len);
    frame_t *f = frame_alloc(len, type, user);
    f->id = id;
    char *p = f->data;
    p += sprintf(p, "id: %" PRIu64 "\n", id);
    if (type) p += sprintf(p, "event: %s\n", type);
    const char *line;
    size_t llen, pos = 0;
    while (next_line(content, content_len, &pos, &line, &llen)) {
        memcpy(p, "data: ", 6);
        memcpy(p + 6, line, llen);
        p += 6 + llen;
        *p++ = '\n';
    }
    *p++ = '\n';
    return f;
}

frame_t *sse_retry_frame(int retry_ms)
{
    char buf[32];
    int n = snprintf(buf, sizeof buf, "retry: %d\n\n", retry_ms);
    return frame_new(buf, (size_t)n);
}

frame_t *sse_ping_frame(void)
{
    return frame_new(": ping\n\n", 8);
}
