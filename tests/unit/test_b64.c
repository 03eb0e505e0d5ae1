/* b64: standard/URL-safe and padded/unpadded decoding, rejection, round trips. */
#include <criterion/criterion.h>
#include <string.h>

#include "b64.h"

static void check_decode(const char *in, const void *want, size_t wantlen)
{
    size_t n = 12345;
    unsigned char *out = b64_decode(in, strlen(in), &n);
    cr_assert_not_null(out, "decode of \"%s\" failed", in);
    cr_assert_eq(n, wantlen, "\"%s\": length %zu, want %zu", in, n, wantlen);
    cr_assert(memcmp(out, want, wantlen) == 0, "\"%s\": wrong bytes", in);
    cr_assert_eq(out[n], '\0', "not NUL-terminated");
    free(out);
}

static void check_invalid(const char *in, size_t len)
{
    size_t n = 0;
    unsigned char *out = b64_decode(in, len, &n);
    cr_assert_null(out, "\"%.*s\" should be rejected", (int)len, in);
    free(out);
}

Test(b64, encode_known)
{
    static const struct {
        const char *in, *out;
    } cases[] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                 {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
                 {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *e = b64_encode(cases[i].in, strlen(cases[i].in));
        cr_assert_str_eq(e, cases[i].out);
        free(e);
    }
}

Test(b64, encode_uses_plus_and_slash)
{
    static const unsigned char in[] = {0xfb, 0xff, 0xbf};
    char *e = b64_encode(in, 3);
    cr_assert_str_eq(e, "+/+/");
    free(e);
}

Test(b64, decode_standard_padded)
{
    check_decode("Zm9vYg==", "foob", 4);
    check_decode("Zm9vYmE=", "fooba", 5);
    check_decode("Zm9vYmFy", "foobar", 6);
    static const unsigned char bin[] = {0xfb, 0xff, 0xbf};
    check_decode("+/+/", bin, 3);
}

Test(b64, decode_unpadded)
{
    check_decode("Zm9vYg", "foob", 4);
    check_decode("Zm9vYmE", "fooba", 5);
    check_decode("Zg", "f", 1);
}

Test(b64, decode_url_safe)
{
    static const unsigned char bin[] = {0xfb, 0xff, 0xbf};
    check_decode("-_-_", bin, 3);
    static const unsigned char bin2[] = {0xfb, 0xf0};
    check_decode("-_A", bin2, 2);
    check_decode("-_A=", bin2, 2);
}

Test(b64, decode_empty)
{
    check_decode("", "", 0);
}

Test(b64, decode_invalid)
{
    check_invalid("Zm9v!", 5);
    check_invalid("Zm 9v", 5);
    check_invalid("Zm9v\n", 5);
    check_invalid("Z", 1);       /* one char in the last group is never valid */
    check_invalid("Zm9vY", 5);
    check_invalid("Zg==Zg==", 8); /* padding in the middle */
    check_invalid("Zm9*", 4);
    check_invalid("Zm.v", 4);
    check_invalid("Zm9v\0Yg", 7);
}

Test(b64, decode_uses_len_not_nul)
{
    size_t n;
    unsigned char *out = b64_decode("Zm9vYmFyXXXX", 8, &n);
    cr_assert_not_null(out);
    cr_assert_eq(n, 6);
    cr_assert(memcmp(out, "foobar", 6) == 0);
    free(out);
}

Test(b64, round_trip_lengths_0_to_20)
{
    unsigned char buf[20];
    for (size_t len = 0; len <= 20; len++) {
        for (size_t i = 0; i < len; i++) buf[i] = (unsigned char)(0xf8 + i * 37 + len);
        char *e = b64_encode(buf, len);
        cr_assert_eq(strlen(e), 4 * ((len + 2) / 3), "len %zu", len);
        size_t n = 999;
        unsigned char *d = b64_decode(e, strlen(e), &n);
        cr_assert_not_null(d, "len %zu: %s", len, e);
        cr_assert_eq(n, len);
        cr_assert(memcmp(d, buf, len) == 0, "len %zu", len);
        free(d);

        /* the same without padding and in the URL-safe alphabet */
        size_t el = strlen(e);
        while (el && e[el - 1] == '=') el--;
        for (size_t i = 0; i < el; i++) e[i] = e[i] == '+' ? '-' : e[i] == '/' ? '_' : e[i];
        d = b64_decode(e, el, &n);
        cr_assert_not_null(d, "len %zu url-safe unpadded", len);
        cr_assert_eq(n, len);
        cr_assert(memcmp(d, buf, len) == 0, "len %zu", len);
        free(d);
        free(e);
    }
}
