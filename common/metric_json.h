/* The JSON metric format (schemas/metric.schema.json): an array of
 * {"name", "tags": {...}, "fields": {...}, "timestamp": <ns>} objects. */
#ifndef DSF_METRIC_JSON_H
#define DSF_METRIC_JSON_H

#include "common/buf.h"
#include "common/point.h"

void json_put_string(struct dsf_buf *out, const char *s);
void json_render_batch(struct dsf_buf *out, const struct dsf_batch *b,
                       const struct dsf_tagset *global);

#endif
