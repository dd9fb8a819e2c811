/* common/base64: the RFC 4648 test vectors both ways, and what the strict decoder refuses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/base64.h"
#include "common/buf.h"

static const char *const vectors[][2] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

static void rfc4648_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        struct dsf_buf b = {0};
        dsf_base64_append(&b, vectors[i][0], strlen(vectors[i][0]));
        assert_string_equal(buf_cstr(&b), vectors[i][1]);
        buf_free(&b);
        size_t n = 99;
        char *d = dsf_base64_decode(vectors[i][1], strlen(vectors[i][1]), &n);
        assert_non_null(d);
        assert_int_equal(n, strlen(vectors[i][0]));
        assert_string_equal(d, vectors[i][0]);
        free(d);
    }
}

static void binary_round_trip(void **state)
{
    (void)state;
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    for (size_t len = 0; len <= sizeof(all); len += 37) {
        struct dsf_buf b = {0};
        dsf_base64_append(&b, all, len);
        size_t n = 0;
        char *d = dsf_base64_decode(b.data ? b.data : "", b.len, &n);
        assert_non_null(d);
        assert_int_equal(n, len);
        assert_memory_equal(d, all, len);
        free(d);
        buf_free(&b);
    }
}

static void whitespace_is_ignored(void **state)
{
    (void)state;
    size_t n = 0;
    char *d = dsf_base64_decode("aGVs\nbG8=\r\n", 11, &n);
    assert_non_null(d);
    assert_int_equal(n, 5);
    assert_string_equal(d, "hello");
    free(d);
}

static void strictness(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "aGV=sbG8", /* data after padding */
        "a",        /* a lone 6-bit group */
        "aGVsbG8",  /* padding left out */
        "Zg=",      /* too little padding */
        "Zm8==",    /* too much */
        "Zh==",     /* unused bits set: "Zg==" is the encoding of "f" */
        "Zm9v!A==", /* not the alphabet */
        "%%%",      /* nothing of it */
        "====",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = 0;
        char *d = dsf_base64_decode(bad[i], strlen(bad[i]), &n);
        if (d)
            fail_msg("'%s' was accepted", bad[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rfc4648_vectors),
        cmocka_unit_test(binary_round_trip),
        cmocka_unit_test(whitespace_is_ignored),
        cmocka_unit_test(strictness),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
