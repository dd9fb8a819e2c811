#include "agent/ack.h"
#include "common/buf.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A collector's ack lists what one write stored: a few ranges. Far larger is not an ack. */
#define ACK_MAX_BYTES (1u << 20)

static const char *const verdict_names[ACK_VERDICTS] = {
    [ACK_APPLIED] = "applied",           [ACK_STALE] = "stale",   [ACK_MALFORMED] = "malformed",
    [ACK_UNKNOWN_BOOT] = "unknown_boot", [ACK_UNSENT] = "unsent",
};

const char *ack_verdict_name(enum ack_verdict v)
{
    return (unsigned)v < ACK_VERDICTS ? verdict_names[v] : "?";
}

/* The numbers of an ack's text, in order. jansson keeps integers as signed 64-bit and refuses
 * larger ones, but a seq is unsigned 64-bit: each number is read here from its own text, and
 * jansson parses a copy in which every number is replaced by its index in this list. */
struct number {
    uint64_t value;
    int is_seq; /* an unsigned integer that fits 64 bits */
};
struct numbers {
    struct number *v;
    size_t n, cap;
};

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Length of the JSON number at p, -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, or 0 when
 * p holds none. A leading zero ends the number, so "012" reads as two and fails to parse. */
static size_t number_token(const char *p, size_t avail, struct number *out)
{
    size_t i = 0;
    int negative = p[0] == '-', integral = 1, overflow = 0;
    uint64_t v = 0;
    i += (size_t)negative;
    if (i >= avail || !is_digit(p[i]))
        return 0;
    if (p[i] == '0') {
        i++;
    } else {
        for (; i < avail && is_digit(p[i]); i++) {
            unsigned d = (unsigned)(p[i] - '0');
            overflow |= v > (UINT64_MAX - d) / 10;
            v = v * 10 + d;
        }
    }
    if (i < avail && p[i] == '.') {
        integral = 0;
        if (++i >= avail || !is_digit(p[i]))
            return 0;
        while (i < avail && is_digit(p[i]))
            i++;
    }
    if (i < avail && (p[i] == 'e' || p[i] == 'E')) {
        integral = 0;
        i++;
        if (i < avail && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i >= avail || !is_digit(p[i]))
            return 0;
        while (i < avail && is_digit(p[i]))
            i++;
    }
    out->value = v;
    out->is_seq = !negative && integral && !overflow;
    return i;
}

static int add_number(struct numbers *nums, struct number num)
{
    if (nums->n == nums->cap) {
        size_t cap = nums->cap ? nums->cap * 2 : 16;
        struct number *v = realloc(nums->v, cap * sizeof(*v));
        if (!v)
            return -1;
        nums->v = v;
        nums->cap = cap;
    }
    nums->v[nums->n++] = num;
    return 0;
}

/* Copies the text into out with every number outside strings replaced by its index in nums.
 * -1 on a malformed number or out of memory. */
static int index_numbers(const char *p, size_t len, struct dsf_buf *out, struct numbers *nums)
{
    for (size_t i = 0; i < len;) {
        if (p[i] == '"') {
            size_t j = i + 1;
            while (j < len && p[j] != '"')
                j += p[j] == '\\' ? 2 : 1;
            j = j < len ? j + 1 : len; /* unterminated: jansson refuses the copy */
            buf_put(out, p + i, j - i);
            i = j;
        } else if (p[i] == '-' || is_digit(p[i])) {
            struct number num;
            size_t n = number_token(p + i, len - i, &num);
            if (n == 0 || add_number(nums, num))
                return -1;
            buf_printf(out, "%zu", nums->n - 1);
            i += n;
        } else {
            buf_putc(out, p[i++]);
        }
    }
    return out->oom ? -1 : 0;
}

/* The seq a rewritten number stands for: its index must name an unsigned 64-bit integer. */
static int seq_of(const struct numbers *nums, const json_t *j, uint64_t *seq)
{
    if (!json_is_integer(j))
        return -1;
    json_int_t idx = json_integer_value(j);
    if (idx < 0 || (uint64_t)idx >= nums->n || !nums->v[idx].is_seq)
        return -1;
    *seq = nums->v[idx].value;
    return 0;
}

static int valid_boot(const char *boot)
{
    return strlen(boot) == 16 && strspn(boot, "0123456789abcdef") == 16;
}

static int read_ranges(struct ack *ack, const json_t *ranges, const struct numbers *nums, char *why,
                       size_t whylen)
{
    size_t n = json_array_size(ranges);
    ack->ranges = calloc(n ? n : 1, sizeof(*ack->ranges));
    if (!ack->ranges) {
        snprintf(why, whylen, "out of memory for %zu ranges", n);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_array_get(ranges, i);
        struct seq_range *out = &ack->ranges[i];
        if (!json_is_array(r) || json_array_size(r) != 2 ||
            seq_of(nums, json_array_get(r, 0), &out->lo) ||
            seq_of(nums, json_array_get(r, 1), &out->hi)) {
            snprintf(why, whylen, "range %zu is not a pair of unsigned 64-bit integers", i);
            return -1;
        }
        if (out->lo > out->hi) {
            snprintf(why, whylen, "range %zu: lo %" PRIu64 " above hi %" PRIu64, i, out->lo,
                     out->hi);
            return -1;
        }
    }
    ack->nranges = n;
    return 0;
}

static int by_lo(const void *a, const void *b)
{
    const struct seq_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sorts the ranges and merges those that overlap or touch, for the buffer's binary search. */
static void normalise(struct ack *ack)
{
    if (ack->nranges < 2)
        return;
    qsort(ack->ranges, ack->nranges, sizeof(*ack->ranges), by_lo);
    size_t out = 0;
    for (size_t i = 1; i < ack->nranges; i++) {
        struct seq_range *cur = &ack->ranges[out], *next = &ack->ranges[i];
        if (cur->hi == UINT64_MAX || next->lo <= cur->hi + 1) {
            if (next->hi > cur->hi)
                cur->hi = next->hi;
        } else {
            ack->ranges[++out] = *next;
        }
    }
    ack->nranges = out + 1;
}

static int parse_indexed(const struct dsf_buf *text, const struct numbers *nums, struct ack *ack,
                         char *why, size_t whylen)
{
    json_error_t jerr;
    json_t *root =
        json_loadb(text->data ? text->data : "", text->len, JSON_REJECT_DUPLICATES, &jerr);
    const char *boot = NULL;
    json_t *ranges = NULL;
    int rc = -1;
    if (!root)
        snprintf(why, whylen, "not JSON");
    else if (json_unpack(root, "{s:s, s:o}", "boot", &boot, "ranges", &ranges) ||
             !json_is_array(ranges))
        snprintf(why, whylen, "not an object with a string boot and an array ranges");
    else if (!valid_boot(boot))
        snprintf(why, whylen, "boot '%.40s' is not 16 hex digits", boot);
    else if (read_ranges(ack, ranges, nums, why, whylen) == 0)
        rc = 0;
    if (rc == 0)
        snprintf(ack->boot, sizeof(ack->boot), "%s", boot);
    json_decref(root);
    return rc;
}

int ack_parse(const void *payload, size_t len, struct ack *ack, char *why, size_t whylen)
{
    memset(ack, 0, sizeof(*ack));
    if (len > ACK_MAX_BYTES) {
        snprintf(why, whylen, "%zu bytes, more than an ack can be", len);
        return -1;
    }
    struct dsf_buf text = {0};
    struct numbers nums = {0};
    int rc = -1;
    if (index_numbers(payload, len, &text, &nums))
        snprintf(why, whylen, "not JSON (a malformed number)");
    else
        rc = parse_indexed(&text, &nums, ack, why, whylen);
    buf_free(&text);
    free(nums.v);
    if (rc) {
        ack_free(ack);
        return -1;
    }
    normalise(ack);
    return 0;
}

void ack_free(struct ack *ack)
{
    free(ack->ranges);
    ack->ranges = NULL;
    ack->nranges = 0;
}

/* A collector acks only messages it received: a seq above the highest this run published of
 * that boot (or seq 0, which no run uses) can only come from someone else. */
static enum ack_verdict check_sent(const struct buffer *b, const struct ack *ack, char *why,
                                   size_t whylen)
{
    uint64_t max = buffer_sent_max(b, ack->boot);
    if (!max) {
        snprintf(why, whylen, "boot %s: this run has published nothing of it", ack->boot);
        return ACK_UNKNOWN_BOOT;
    }
    for (size_t i = 0; i < ack->nranges; i++) {
        const struct seq_range *r = &ack->ranges[i];
        if (r->lo == 0 || r->hi > max) {
            snprintf(why, whylen,
                     "boot %s: [%" PRIu64 ", %" PRIu64 "] names seqs never published (the "
                     "highest published is %" PRIu64 ")",
                     ack->boot, r->lo, r->hi, max);
            return ACK_UNSENT;
        }
    }
    return ACK_APPLIED;
}

enum ack_verdict ack_apply(struct buffer *b, const void *payload, size_t len, size_t *released,
                           char *why, size_t whylen)
{
    struct ack ack;
    *released = 0;
    if (ack_parse(payload, len, &ack, why, whylen))
        return ACK_MALFORMED;
    enum ack_verdict v = check_sent(b, &ack, why, whylen);
    if (v == ACK_APPLIED) {
        *released = buffer_ack_ranges(b, ack.boot, ack.ranges, ack.nranges);
        if (*released == 0) {
            v = ACK_STALE;
            snprintf(why, whylen, "boot %s: every message it names was released already", ack.boot);
        }
    }
    ack_free(&ack);
    return v;
}
