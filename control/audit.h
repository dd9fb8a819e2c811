/* The controller's audit trail: an append-only JSON-lines file where each record carries the
 * SHA-256 of the line before it, so that a changed, removed or reordered record breaks the
 * chain and audit_verify names the first line where it breaks (docs/control.md). */
#ifndef DSF_CONTROL_AUDIT_H
#define DSF_CONTROL_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/* Why a chain does not hold. */
enum audit_fault {
    AUDIT_FAULT_NONE = 0,
    AUDIT_FAULT_IO,        /* the file cannot be read */
    AUDIT_FAULT_MALFORMED, /* a line is not a record (not JSON, a field missing or mistyped) */
    AUDIT_FAULT_CHANGED,   /* a record's content or form differs from what was hashed */
    AUDIT_FAULT_REMOVED,   /* a seq is missing: a record was taken out */
    AUDIT_FAULT_REORDERED, /* records are out of seq order */
};

struct audit_verify_result {
    uint64_t records;  /* complete records that chain, in order */
    uint64_t bad_line; /* 1-based line of the first break; 0 when the chain holds */
    enum audit_fault fault;
    int torn_tail; /* the last line lacks its '\n' (a crash mid-append); it is no record */
};

struct audit;

/* Opens (creating it with mode 0600) the log at path for appending, after checking its whole
 * chain: a log that does not verify is refused, err naming the line and why. A torn last line
 * (a crash mid-append) is cut off with a warning and counted (audit_torn_truncated). NULL
 * with err set on failure. */
struct audit *audit_open(const char *path, char *err, size_t errlen);

/* The same, handing each record (with its seq, time, prev and hash) to replay, in order, as
 * the chain is checked: the controller rebuilds its state from its own trail. The records
 * come before the verdict: when the open fails, discard what replay built. replay borrows
 * the record. */
typedef void (*audit_replay_fn)(void *arg, json_t *record);
struct audit *audit_open_replay(const char *path, audit_replay_fn replay, void *arg, char *err,
                                size_t errlen);

/* Appends a copy of record (an object; the caller keeps ownership) with "seq", "time" (RFC
 * 3339 UTC, ms), "prev" (hex SHA-256 of the previous line, 64 zeros for the first) and
 * "hash" (hex SHA-256 of the line without "hash"; keys sorted, compact) added, in one
 * write() followed by fdatasync. A record that already has one of these keys is refused.
 * 0 once the line is on disk; -1 with err set. After a failed write or sync the log refuses
 * further appends (what reached the disk is unknown): close it and open it again. */
int audit_append(struct audit *a, json_t *record, char *err, size_t errlen);
/* The same, returning the record as written (a new reference, with its chain fields), or
 * NULL with err. */
json_t *audit_append_record(struct audit *a, json_t *record, char *err, size_t errlen);

/* The seq of the last record (0 for an empty log). */
/* The next append is written but not synced: the append after it syncs both with one
 * fdatasync. For a record that is only worth keeping with the one that follows at once (a
 * decision and the begin of its first step, journaled before the step runs). */
void audit_defer_sync(struct audit *a);

uint64_t audit_last_seq(const struct audit *a);

/* Torn last lines cut off by audit_open (0 or 1 per open; exported as a counter). */
uint64_t audit_torn_truncated(const struct audit *a);

void audit_close(struct audit *a);

/* Checks the chain of the log at path without changing it. 0 when every complete line
 * chains (out->records counts them; out->torn_tail tells of an unterminated last line,
 * which audit_open would cut off); -1 otherwise, out->bad_line and out->fault naming the
 * first break (0 and AUDIT_FAULT_IO when the file cannot be read) and err saying why. */
int audit_verify(const char *path, struct audit_verify_result *out, char *err, size_t errlen);

/* "changed", "removed", ... for messages and the CLI. */
const char *audit_fault_name(enum audit_fault fault);

#endif
