#include "common/metric_json.h"
#include "common/lp.h"
#include "common/utf8.h"

#include <inttypes.h>
#include <stdio.h>

void json_put_string(struct dsf_buf *out, const char *s)
{
    buf_putc(out, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p >= 0x80) {
            /* JSON is UTF-8: a byte that is not part of a valid sequence becomes U+FFFD. */
            size_t n = utf8_sequence_len(p, 4);
            if (n) {
                buf_put(out, p, n);
                p += n - 1;
            } else {
                buf_puts(out, "\\ufffd");
            }
            continue;
        }
        switch (*p) {
        case '"':
            buf_puts(out, "\\\"");
            break;
        case '\\':
            buf_puts(out, "\\\\");
            break;
        case '\n':
            buf_puts(out, "\\n");
            break;
        case '\r':
            buf_puts(out, "\\r");
            break;
        case '\t':
            buf_puts(out, "\\t");
            break;
        default:
            if (*p < 0x20)
                buf_printf(out, "\\u%04x", *p);
            else
                buf_putc(out, (char)*p);
        }
    }
    buf_putc(out, '"');
}

static void put_field(struct dsf_buf *out, const struct dsf_batch *b, const struct dsf_field *f)
{
    json_put_string(out, batch_str(b, f->key));
    buf_putc(out, ':');
    switch (f->type) {
    case DSF_V_FLOAT:
        lp_put_float(out, f->v.f);
        break;
    case DSF_V_INT:
        buf_printf(out, "%" PRId64, f->v.i);
        break;
    case DSF_V_UINT:
        buf_printf(out, "%" PRIu64, f->v.u);
        break;
    case DSF_V_BOOL:
        buf_puts(out, f->v.b ? "true" : "false");
        break;
    case DSF_V_STR:
        json_put_string(out, batch_str(b, f->v.s));
        break;
    }
}

void json_render_batch(struct dsf_buf *out, const struct dsf_batch *b,
                       const struct dsf_tagset *global)
{
    buf_putc(out, '[');
    for (size_t i = 0; i < b->npoints; i++) {
        const struct dsf_point *p = &b->points[i];
        buf_puts(out, i ? ",{\"name\":" : "{\"name\":");
        json_put_string(out, batch_str(b, p->name));
        buf_puts(out, ",\"tags\":{");
        for (uint32_t t = 0; t < p->ntags; t++) {
            if (t)
                buf_putc(out, ',');
            json_put_string(out, batch_str(b, b->tags[p->tag0 + t].key));
            buf_putc(out, ':');
            json_put_string(out, batch_str(b, b->tags[p->tag0 + t].val));
        }
        for (size_t g = 0; global && g < global->count; g++) {
            if (p->ntags || g)
                buf_putc(out, ',');
            json_put_string(out, global->keys[g]);
            buf_putc(out, ':');
            json_put_string(out, global->vals[g]);
        }
        buf_puts(out, "},\"fields\":{");
        for (uint32_t f = 0; f < p->nfields; f++) {
            if (f)
                buf_putc(out, ',');
            put_field(out, b, &b->fields[p->field0 + f]);
        }
        buf_printf(out, "},\"timestamp\":%" PRId64 "}", p->ts_ns);
    }
    buf_puts(out, "]");
}
