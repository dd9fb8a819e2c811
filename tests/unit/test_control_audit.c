/* control/audit: the chain continues across a reopen and holds; a changed, removed or
 * reordered record is found at its line; a torn last line is cut off at open; mode 0600. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/file.h"
#include "control/audit.h"

struct fixture {
    char dir[64];
    char path[96];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/dsf-audit-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/audit.jsonl", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Appends records action=name-i for i in [from, to]. */
static void append_range(struct audit *a, int from, int to)
{
    char err[512];
    for (int i = from; i <= to; i++) {
        json_t *rec = json_pack("{s:s, s:i, s:s}", "action", "restart", "i", i, "target", "vm-1");
        assert_int_equal(audit_append(a, rec, err, sizeof(err)), 0);
        json_decref(rec);
    }
}

/* A log of n records written through the API. */
static void write_log(const char *path, int n)
{
    char err[512];
    struct audit *a = audit_open(path, err, sizeof(err));
    assert_non_null(a);
    append_range(a, 1, n);
    audit_close(a);
}

/* The file's lines, split in place; returns the count. */
static size_t read_lines(const char *path, char **buf, char *lines[], size_t max)
{
    size_t len = 0, n = 0;
    *buf = dsf_read_file(path, &len);
    assert_non_null(*buf);
    for (char *p = *buf, *nl; n < max && (nl = strchr(p, '\n')); p = nl + 1) {
        *nl = '\0';
        lines[n++] = p;
    }
    return n;
}

static void write_lines(const char *path, char *lines[], size_t n)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (size_t i = 0; i < n; i++)
        fprintf(fp, "%s\n", lines[i]);
    fclose(fp);
}

static void expect_break(const char *path, uint64_t line, enum audit_fault fault)
{
    struct audit_verify_result res;
    char err[512] = "";
    assert_int_equal(audit_verify(path, &res, err, sizeof(err)), -1);
    assert_int_equal(res.bad_line, line);
    assert_string_equal(audit_fault_name(res.fault), audit_fault_name(fault));
    char want[32];
    snprintf(want, sizeof(want), "line %" PRIu64 ":", line);
    assert_non_null(strstr(err, want));
    /* and such a log is refused for appending, naming the line */
    char open_err[512] = "";
    assert_null(audit_open(path, open_err, sizeof(open_err)));
    assert_non_null(strstr(open_err, want));
}

static void chain_continues_across_reopen(void **state)
{
    struct fixture *f = *state;
    char err[512];
    write_log(f->path, 5);
    struct audit *a = audit_open(f->path, err, sizeof(err));
    assert_non_null(a);
    assert_int_equal(audit_last_seq(a), 5);
    append_range(a, 6, 8);
    audit_close(a);

    struct audit_verify_result res;
    assert_int_equal(audit_verify(f->path, &res, err, sizeof(err)), 0);
    assert_int_equal(res.records, 8);
    assert_int_equal(res.bad_line, 0);
    assert_int_equal(res.torn_tail, 0);

    char *buf, *lines[16];
    assert_int_equal(read_lines(f->path, &buf, lines, 16), 8);
    json_t *first = json_loads(lines[0], 0, NULL), *sixth = json_loads(lines[5], 0, NULL);
    assert_string_equal(json_string_value(json_object_get(first, "prev")),
                        "0000000000000000000000000000000000000000000000000000000000000000");
    assert_int_equal(json_integer_value(json_object_get(sixth, "seq")), 6);
    assert_int_equal(json_integer_value(json_object_get(sixth, "i")), 6);
    const char *time = json_string_value(json_object_get(sixth, "time"));
    assert_int_equal(strlen(time), strlen("2026-01-02T03:04:05.678Z"));
    assert_int_equal(time[23], 'Z');
    json_decref(first);
    json_decref(sixth);
    free(buf);
}

static void file_mode_0600(void **state)
{
    struct fixture *f = *state;
    mode_t old = umask(0);
    write_log(f->path, 1);
    umask(old);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void changed_value_found_at_its_line(void **state)
{
    struct fixture *f = *state;
    write_log(f->path, 5);
    char *buf, *lines[8];
    assert_int_equal(read_lines(f->path, &buf, lines, 8), 5);
    char *vm = strstr(lines[2], "vm-1");
    assert_non_null(vm);
    vm[3] = '2'; /* "vm-1" becomes "vm-2": same length, still valid JSON */
    write_lines(f->path, lines, 5);
    free(buf);
    expect_break(f->path, 3, AUDIT_FAULT_CHANGED);
}

static void removed_record_found(void **state)
{
    struct fixture *f = *state;
    write_log(f->path, 5);
    char *buf, *lines[8];
    assert_int_equal(read_lines(f->path, &buf, lines, 8), 5);
    char *kept[] = {lines[0], lines[2], lines[3], lines[4]};
    write_lines(f->path, kept, 4);
    free(buf);
    expect_break(f->path, 2, AUDIT_FAULT_REMOVED);
}

static void swapped_records_found(void **state)
{
    struct fixture *f = *state;
    write_log(f->path, 5);
    char *buf, *lines[8];
    assert_int_equal(read_lines(f->path, &buf, lines, 8), 5);
    char *swapped[] = {lines[0], lines[1], lines[3], lines[2], lines[4]};
    write_lines(f->path, swapped, 5);
    free(buf);
    expect_break(f->path, 3, AUDIT_FAULT_REORDERED);
}

/* Re-spacing a line keeps its record and hash but not its bytes, which the next prev hashes. */
static void respaced_line_found(void **state)
{
    struct fixture *f = *state;
    write_log(f->path, 3);
    char *buf, *lines[8];
    assert_int_equal(read_lines(f->path, &buf, lines, 8), 3);
    char spaced[1024];
    snprintf(spaced, sizeof(spaced), " %s", lines[1]);
    char *edited[] = {lines[0], spaced, lines[2]};
    write_lines(f->path, edited, 3);
    free(buf);
    expect_break(f->path, 2, AUDIT_FAULT_CHANGED);
}

/* A line without the chain's fields (here a hash cut short) is no record. */
static void malformed_line_found(void **state)
{
    struct fixture *f = *state;
    write_log(f->path, 3);
    char *buf, *lines[8];
    assert_int_equal(read_lines(f->path, &buf, lines, 8), 3);
    char *hash = strstr(lines[1], "\"hash\":\"");
    assert_non_null(hash);
    memmove(hash + 8, hash + 9, strlen(hash + 9) + 1); /* one hex digit less */
    write_lines(f->path, lines, 3);
    free(buf);
    expect_break(f->path, 2, AUDIT_FAULT_MALFORMED);
}

static void torn_last_line_cut_off_at_open(void **state)
{
    struct fixture *f = *state;
    char err[512];
    write_log(f->path, 4);
    FILE *fp = fopen(f->path, "a");
    assert_non_null(fp);
    fputs("{\"action\":\"restart\",\"hash\":\"ab", fp); /* a crash mid-append */
    fclose(fp);

    struct audit_verify_result res;
    assert_int_equal(audit_verify(f->path, &res, err, sizeof(err)), 0);
    assert_int_equal(res.records, 4);
    assert_int_equal(res.torn_tail, 1);

    struct audit *a = audit_open(f->path, err, sizeof(err));
    assert_non_null(a);
    assert_int_equal(audit_torn_truncated(a), 1);
    assert_int_equal(audit_last_seq(a), 4);
    append_range(a, 5, 6);
    audit_close(a);
    assert_int_equal(audit_verify(f->path, &res, err, sizeof(err)), 0);
    assert_int_equal(res.records, 6);
    assert_int_equal(res.torn_tail, 0);
}

static void reserved_keys_refused(void **state)
{
    struct fixture *f = *state;
    char err[512] = "";
    struct audit *a = audit_open(f->path, err, sizeof(err));
    assert_non_null(a);
    json_t *rec = json_pack("{s:s, s:i}", "action", "restart", "seq", 7);
    assert_int_equal(audit_append(a, rec, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "\"seq\""));
    json_decref(rec);
    json_t *not_object = json_string("restart");
    assert_int_equal(audit_append(a, not_object, err, sizeof(err)), -1);
    json_decref(not_object);
    assert_int_equal(audit_last_seq(a), 0);
    audit_close(a);
}

static void missing_file_reported(void **state)
{
    struct fixture *f = *state;
    struct audit_verify_result res;
    char err[512] = "";
    assert_int_equal(audit_verify(f->path, &res, err, sizeof(err)), -1);
    assert_int_equal(res.fault, AUDIT_FAULT_IO);
    assert_non_null(strstr(err, f->path));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(chain_continues_across_reopen, setup, teardown),
        cmocka_unit_test_setup_teardown(file_mode_0600, setup, teardown),
        cmocka_unit_test_setup_teardown(changed_value_found_at_its_line, setup, teardown),
        cmocka_unit_test_setup_teardown(removed_record_found, setup, teardown),
        cmocka_unit_test_setup_teardown(swapped_records_found, setup, teardown),
        cmocka_unit_test_setup_teardown(respaced_line_found, setup, teardown),
        cmocka_unit_test_setup_teardown(malformed_line_found, setup, teardown),
        cmocka_unit_test_setup_teardown(torn_last_line_cut_off_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(reserved_keys_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_file_reported, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
