/* A message's claim on durability (writer.h), as the writers hold it. */
#ifndef DSF_COLLECTOR_MARKS_H
#define DSF_COLLECTOR_MARKS_H

#include "collector/writer.h"

struct writer_mark {
    const struct writer_mark_ops *ops;
    void *owner;
    uint64_t value;
    char tag[17];
    int refs; /* batches holding it */
    int lost; /* some of its lines were dropped: abandoned, not done, when released */
};

#endif
