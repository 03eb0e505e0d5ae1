/* sse: exact bytes of event, retry and ping frames, line splitting, length, routing data. */
#include <criterion/criterion.h>
#include <string.h>

#include "sse.h"

/* Encodes content (len bytes) and checks the frame bytes, its length and sse_encoded_len. */
static void check_frame(uint64_t id, const char *type, const char *content, size_t len,
                        const char *want)
{
    frame_t *f = sse_encode(id, type, NULL, content, len);
    size_t wl = strlen(want);
    cr_assert_eq(f->len, wl, "len %u, want %zu", f->len, wl);
    cr_assert(memcmp(f->data, want, wl) == 0, "got [%.*s] want [%s]", (int)f->len, f->data, want);
    cr_assert_eq(sse_encoded_len(id, type, content, len), wl);
    cr_assert_eq(f->id, id);
    frame_unref(f);
}

#define CHECK(id, type, lit, want) check_frame(id, type, lit, sizeof(lit) - 1, want)

Test(sse, simple_event_no_type)
{
    CHECK(1, NULL, "hello", "id: 1\ndata: hello\n\n");
    CHECK(1, "", "hello", "id: 1\ndata: hello\n\n");
}

Test(sse, event_line_when_type_set)
{
    CHECK(42, "news", "hi", "id: 42\nevent: news\ndata: hi\n\n");
}

Test(sse, id_zero_and_max)
{
    CHECK(0, NULL, "x", "id: 0\ndata: x\n\n");
    CHECK(UINT64_MAX, NULL, "x", "id: 18446744073709551615\ndata: x\n\n");
    CHECK(9, NULL, "x", "id: 9\ndata: x\n\n");
    CHECK(10, NULL, "x", "id: 10\ndata: x\n\n");
}

Test(sse, split_lf)
{
    CHECK(1, NULL, "a\nb\nc", "id: 1\ndata: a\ndata: b\ndata: c\n\n");
}

Test(sse, split_crlf)
{
    CHECK(1, NULL, "a\r\nb", "id: 1\ndata: a\ndata: b\n\n");
}

Test(sse, split_lone_cr)
{
    CHECK(1, NULL, "a\rb", "id: 1\ndata: a\ndata: b\n\n");
}

Test(sse, mixed_endings)
{
    CHECK(3, "t", "a\rb\nc\r\nd", "id: 3\nevent: t\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
}

Test(sse, trailing_newline_gives_empty_data_line)
{
    CHECK(1, NULL, "a\n", "id: 1\ndata: a\ndata: \n\n");
    CHECK(1, NULL, "a\r\n", "id: 1\ndata: a\ndata: \n\n");
    CHECK(1, NULL, "a\r", "id: 1\ndata: a\ndata: \n\n");
}

Test(sse, empty_content_one_empty_data_line)
{
    CHECK(5, NULL, "", "id: 5\ndata: \n\n");
}

Test(sse, consecutive_crlf)
{
    CHECK(1, NULL, "a\r\n\r\nb", "id: 1\ndata: a\ndata: \ndata: b\n\n");
    CHECK(1, NULL, "\r\n\r\n", "id: 1\ndata: \ndata: \ndata: \n\n");
}

Test(sse, cr_cr_is_two_breaks_and_lf_cr)
{
    CHECK(1, NULL, "a\r\rb", "id: 1\ndata: a\ndata: \ndata: b\n\n");
    CHECK(1, NULL, "a\n\rb", "id: 1\ndata: a\ndata: \ndata: b\n\n");
}

Test(sse, only_newline)
{
    CHECK(1, NULL, "\n", "id: 1\ndata: \ndata: \n\n");
}

Test(sse, content_keeps_colons_and_spaces)
{
    CHECK(1, NULL, " x: y ", "id: 1\ndata:  x: y \n\n");
}

Test(sse, content_with_nul_bytes_is_copied)
{
    static const char c[] = {'a', '\0', 'b'};
    frame_t *f = sse_encode(2, NULL, NULL, c, 3);
    static const char want[] = "id: 2\ndata: a\0b\n\n";
    cr_assert_eq(f->len, sizeof want - 1);
    cr_assert(memcmp(f->data, want, sizeof want - 1) == 0);
    cr_assert_eq(sse_encoded_len(2, NULL, c, 3), sizeof want - 1);
    frame_unref(f);
}

Test(sse, encoded_len_long_content)
{
    char buf[3000];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (i % 100 == 99) ? '\n' : 'x';
    frame_t *f = sse_encode(123456, "type", "u", buf, sizeof buf);
    /* 30 lines of 99 'x': each "data: " + 99 + "\n", then the last (empty) line after the final LF */
    size_t want = strlen("id: 123456\n") + strlen("event: type\n") + 30 * (6 + 99 + 1) + 7 + 1;
    cr_assert_eq(f->len, want);
    cr_assert_eq(sse_encoded_len(123456, "type", buf, sizeof buf), want);
    cr_assert_eq(f->data[f->len - 1], '\n');
    cr_assert_eq(f->data[f->len - 2], '\n');
    frame_unref(f);
}

Test(sse, field_ok)
{
    cr_assert(sse_field_ok("news", 4));
    cr_assert(sse_field_ok("", 0));
    cr_assert(sse_field_ok("a b:c", 5));
    cr_assert_not(sse_field_ok("a\rb", 3));
    cr_assert_not(sse_field_ok("a\nb", 3));
    cr_assert_not(sse_field_ok("a\0b", 3));
    cr_assert_not(sse_field_ok("\n", 1));
    /* only len bytes are looked at */
    cr_assert(sse_field_ok("ab\n", 2));
}

Test(sse, retry_frame)
{
    frame_t *f = sse_retry_frame(3000);
    cr_assert_eq(f->len, 13);
    cr_assert(memcmp(f->data, "retry: 3000\n\n", 13) == 0);
    cr_assert_eq(f->id, 0);
    cr_assert_null(f->type);
    cr_assert_null(f->user);
    frame_unref(f);
    f = sse_retry_frame(0);
    cr_assert_eq(f->len, 10);
    cr_assert(memcmp(f->data, "retry: 0\n\n", 10) == 0);
    frame_unref(f);
}

Test(sse, ping_frame)
{
    frame_t *f = sse_ping_frame();
    cr_assert_eq(f->len, 8);
    cr_assert(memcmp(f->data, ": ping\n\n", 8) == 0);
    cr_assert_eq(f->id, 0);
    cr_assert_null(f->type);
    cr_assert_null(f->user);
    frame_unref(f);
}

Test(sse, routing_metadata)
{
    frame_t *f = sse_encode(7, "news", "alice", "x", 1);
    cr_assert_eq(f->id, 7);
    cr_assert_str_eq(f->type, "news");
    cr_assert_str_eq(f->user, "alice");
    frame_unref(f);

    f = sse_encode(8, "", "", "x", 1);
    cr_assert_null(f->type);
    cr_assert_null(f->user);
    cr_assert_eq(f->len, strlen("id: 8\ndata: x\n\n"));
    frame_unref(f);

    f = sse_encode(9, NULL, NULL, "x", 1);
    cr_assert_null(f->type);
    cr_assert_null(f->user);
    frame_unref(f);

    f = sse_encode(10, NULL, "bob", "x", 1);
    cr_assert_null(f->type);
    cr_assert_str_eq(f->user, "bob");
    cr_assert(memcmp(f->data, "id: 10\ndata: x\n\n", f->len) == 0);
    frame_unref(f);
}

Test(sse, frame_refcount)
{
    frame_t *f = sse_ping_frame();
    cr_assert_eq(atomic_load(&f->refs), 1);
    frame_ref(f);
    cr_assert_eq(atomic_load(&f->refs), 2);
    frame_unref(f);
    cr_assert_eq(atomic_load(&f->refs), 1);
    frame_unref(f);
}
