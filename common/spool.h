/*
 * An on-disk spool of records in order, one file each (written to a temporary name and
 * renamed, optionally fsynced), found again after a restart. Bounded in bytes: when full,
 * the oldest records are dropped and counted. The agent keeps messages here that do not fit
 * its memory buffer; the collector keeps batches the store cannot take.
 */
#ifndef DSF_SPOOL_H
#define DSF_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

struct spool {
    char dir[512];
    uint64_t max_bytes;
    int fsync;
    uint64_t first_id, next_id; /* files hold ids first_id .. next_id - 1, some may be gone */
    uint64_t bytes, messages;
    uint64_t written, dropped_messages, dropped_points, corrupt;
};

struct spool_record {
    uint64_t id; /* set by spool_hold */
    char boot[17];
    uint64_t seq;
    uint32_t npoints;
    struct dsf_buf data;
};

/* Creates the directory if needed and finds what an earlier run left. 0 or -1 with err. */
int spool_open(struct spool *s, const char *dir, uint64_t max_bytes, int fsync, char *err,
               size_t errlen);
/* Appends at the end (front = 1: before everything spooled). 0, or -1 (dropped, counted). */
int spool_put(struct spool *s, const char *boot, uint64_t seq, uint32_t npoints, const void *data,
              size_t len, int front);
/* Size of the oldest message, 0 when empty. */
size_t spool_peek_len(struct spool *s);
/* Reads the oldest message into r and removes it; 0, or -1 when empty. */
int spool_take(struct spool *s, struct spool_record *r);

/* Reads the oldest message into r and takes it out of the spool's count and order, but keeps
 * its file (renamed) until spool_release: a crash in between finds it again at the next
 * spool_open. 0, or -1 when empty. */
int spool_hold(struct spool *s, struct spool_record *r);
/* The held message is safe elsewhere: its file goes. */
void spool_release(struct spool *s, uint64_t id);

#endif
