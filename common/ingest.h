/*
 * The metric intake shared by every consumer of the stream (collector, alarm engine): the
 * topic's identity, then each line of a message, in line protocol or the JSON format, parsed
 * and checked (length, grammar, timestamp, UTF-8, identity tags against the topic). Good lines
 * and rejected lines (with a reason) go to the caller's callbacks; one bad line never costs the
 * rest of its message.
 */
#ifndef DSF_INGEST_H
#define DSF_INGEST_H

#include <stddef.h>

#include "common/buf.h"
#include "common/lp.h"
#include "common/point.h"
#include "common/topic.h"

#define INGEST_MAX_LINE (64 * 1024)

/* Bits of the identity tags (ns, mci, vm) a line lacks; the topic supplies them. And whether
 * the line's time is not the one its text has: stamped (it had none) or rescaled (another
 * precision than ns); the rendered line carries the time in ns. */
enum {
    INGEST_MISSING_NS = 1,
    INGEST_MISSING_MCI = 2,
    INGEST_MISSING_VM = 4,
    INGEST_MISSING_IDENTITY = 7,
    INGEST_STAMPED = 8,
    INGEST_RESCALED = 16
};

struct ingest_ops {
    /* A valid line: text without its newline, parsed into l; missing = INGEST_MISSING_* bits. */
    void (*line)(void *ctx, const char *text, size_t len, const struct lp_line *l, int missing);
    void (*reject)(void *ctx, const char *text, size_t len, const char *reason);
};

/* Reusable state: the parsed line is large and the JSON path renders into buffers. */
struct ingest {
    int check_only; /* set by a consumer that needs no float values: see lp_check_line */
    /* HTTP writes (InfluxDB's API): nanoseconds per unit of the lines' timestamps (0 or 1:
     * ns), and the receipt time given to a line without one (0: such a line is refused, the
     * bus path's rule: samples keep their own time). */
    int64_t ts_unit_ns;
    int64_t stamp_ns;
    struct lp_line line;
    struct dsf_batch json_batch;
    struct dsf_buf json_line;
};

/* Feeds every line of payload (fmt "json" or line protocol) to ops. id NULL: no identity
 * tags checked or added (lines that come with none, HTTP writes). */
void ingest_message(struct ingest *in, const char *fmt, const char *payload, size_t len,
                    const struct dsf_identity *id, const struct ingest_ops *ops, void *ctx);

/* Appends the line and its newline, adding the identity tags it lacks after its own and
 * writing its time in ns when stamped or rescaled. */
void ingest_render_line(struct dsf_buf *out, const char *text, size_t len, const struct lp_line *l,
                        const struct dsf_identity *id, int missing);

void ingest_free(struct ingest *in);

#endif
