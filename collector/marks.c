#include "collector/marks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct writer_mark *writer_mark_new(const struct writer_mark_ops *ops, void *owner, uint64_t value,
                                    const char *tag)
{
    struct writer_mark *m = calloc(1, sizeof(*m));
    if (m) {
        m->ops = ops;
        m->owner = owner;
        m->value = value;
        size_t n = tag ? strnlen(tag, sizeof(m->tag) - 1) : 0; /* one per message: no printf */
        if (n)
            memcpy(m->tag, tag, n);
        m->tag[n] = '\0';
    }
    return m;
}

void writer_marks_done(struct writer_mark *const *marks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        marks[i]->ops->done(marks[i]->owner, marks[i]->value, marks[i]->tag);
        free(marks[i]);
    }
}

void writer_marks_abandon(struct writer_mark *const *marks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (marks[i]->ops->abandon)
            marks[i]->ops->abandon(marks[i]->owner, marks[i]->value, marks[i]->tag);
        free(marks[i]);
    }
}
