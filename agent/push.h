/* Push: publishes buffered messages over the bus in seq order, keeps the retained status
 * topic (Last Will = offline), follows end-to-end acks and answers on-demand requests. */
#ifndef DSF_AGENT_PUSH_H
#define DSF_AGENT_PUSH_H

#include <stddef.h>

struct agent;
struct push;

struct push *push_new(struct agent *a, char *err, size_t errlen);
/* Publishes whatever is queued, as far as the in-flight window allows. */
void push_kick(struct push *p);
void push_free(struct push *p);
int push_connected(const struct push *p);

#endif
