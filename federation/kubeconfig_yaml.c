/* A kubeconfig's YAML (or JSON) as a JSON tree, read with libyaml. */
#include "federation/kubeconfig.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <yaml.h>

/* Deeper than any kubeconfig; bounds the recursion on hostile input. */
#define YAML_MAX_DEPTH 64

struct yreader {
    yaml_parser_t parser;
    const char *text;
    size_t len;
    int depth;
    char *err;
    size_t errlen;
};

static json_t *yfail(struct yreader *r, const yaml_mark_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static json_t *yfail(struct yreader *r, const yaml_mark_t *at, const char *fmt, ...)
{
    int n = snprintf(r->err, r->errlen, "line %zu: ", at->line + 1);
    if (n >= 0 && (size_t)n < r->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err + n, r->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return NULL;
}

/* libyaml's own message, on the line of the problem; when the text ended first (an
 * unterminated quote or bracket), on the line where what was left open began. */
static int next_event(struct yreader *r, yaml_event_t *ev)
{
    if (yaml_parser_parse(&r->parser, ev))
        return 0;
    const yaml_parser_t *p = &r->parser;
    const char *problem = p->problem ? p->problem : "malformed YAML";
    int at_end = p->problem_mark.index >= r->len;
    if (!at_end && r->text[p->problem_mark.index] == '\t')
        yfail(r, &p->problem_mark, "a tab character (YAML indents with spaces only)");
    else if (p->context && at_end)
        yfail(r, &p->context_mark, "%s %s", problem, p->context);
    else if (p->context)
        yfail(r, &p->problem_mark, "%s %s from line %zu", problem, p->context,
              p->context_mark.line + 1);
    else
        yfail(r, &p->problem_mark, "%s", problem);
    return -1;
}

/* Anchors and aliases could expand a small file into a huge tree; tags would change what a
 * value means. No kubeconfig writer uses them. */
static int refuse_extras(struct yreader *r, const yaml_event_t *ev)
{
    const yaml_char_t *anchor = NULL, *tag = NULL;
    if (ev->type == YAML_SCALAR_EVENT) {
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
    } else if (ev->type == YAML_SEQUENCE_START_EVENT) {
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
    } else if (ev->type == YAML_MAPPING_START_EVENT) {
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
    }
    if (ev->type == YAML_ALIAS_EVENT || anchor) {
        yfail(r, &ev->start_mark, "anchors and aliases are not supported");
        return -1;
    }
    if (tag) {
        yfail(r, &ev->start_mark, "tags are not supported ('%s')", (const char *)tag);
        return -1;
    }
    return 0;
}

/* Plain true/false are booleans, plain null, ~ and nothing are null; anything else is a
 * string (numbers too: every kubeconfig field that is used is a string). */
static json_t *scalar_value(struct yreader *r, const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t n = ev->data.scalar.length;
    if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        if (!strcmp(v, "true") || !strcmp(v, "false"))
            return json_boolean(v[0] == 't');
        if (!n || !strcmp(v, "null") || !strcmp(v, "~"))
            return json_null();
    }
    json_t *s = json_stringn(v, n);
    return s ? s : yfail(r, &ev->start_mark, "not UTF-8 text");
}

static json_t *node_from(struct yreader *r, yaml_event_t *ev);

/* The next node of a collection, or *end set at its end event. */
static json_t *next_node(struct yreader *r, yaml_event_type_t end_type, int *end, yaml_mark_t *at)
{
    yaml_event_t ev;
    if (next_event(r, &ev))
        return NULL;
    *at = ev.start_mark;
    *end = ev.type == end_type;
    json_t *v = *end ? NULL : node_from(r, &ev);
    yaml_event_delete(&ev);
    return v;
}

static json_t *sequence_from(struct yreader *r)
{
    json_t *arr = json_array();
    int end = 0;
    yaml_mark_t at;
    while (arr) {
        json_t *item = next_node(r, YAML_SEQUENCE_END_EVENT, &end, &at);
        if (end)
            return arr;
        if (!item || json_array_append_new(arr, item)) {
            json_decref(arr);
            return NULL;
        }
    }
    return NULL;
}

static json_t *mapping_from(struct yreader *r)
{
    json_t *obj = json_object();
    int end = 0;
    yaml_mark_t at;
    while (obj) {
        json_t *key = next_node(r, YAML_MAPPING_END_EVENT, &end, &at);
        if (end)
            return obj;
        const char *name = json_string_value(key);
        json_t *value = NULL;
        if (key && !name)
            yfail(r, &at, "keys must be strings");
        else if (name && json_object_get(obj, name))
            yfail(r, &at, "duplicate key '%.100s'", name);
        else if (key)
            value = next_node(r, YAML_MAPPING_END_EVENT, &end, &at);
        if (!value || json_object_set_new(obj, name, value)) {
            json_decref(key);
            json_decref(obj);
            return NULL;
        }
        json_decref(key);
    }
    return NULL;
}

/* The node that starts with ev (a scalar, a sequence or a mapping). */
static json_t *node_from(struct yreader *r, yaml_event_t *ev)
{
    if (refuse_extras(r, ev))
        return NULL;
    if (ev->type == YAML_SCALAR_EVENT)
        return scalar_value(r, ev);
    if (++r->depth > YAML_MAX_DEPTH)
        return yfail(r, &ev->start_mark, "nested deeper than %d levels", YAML_MAX_DEPTH);
    json_t *v = ev->type == YAML_SEQUENCE_START_EVENT  ? sequence_from(r)
                : ev->type == YAML_MAPPING_START_EVENT ? mapping_from(r)
                                                       : yfail(r, &ev->start_mark, "unexpected");
    r->depth--;
    return v;
}

/* Skips stream and document starts; *type is the first other event's type. */
static int skip_to_content(struct yreader *r, yaml_event_t *ev)
{
    for (;;) {
        if (next_event(r, ev))
            return -1;
        if (ev->type != YAML_STREAM_START_EVENT && ev->type != YAML_DOCUMENT_START_EVENT)
            return 0;
        yaml_event_delete(ev);
    }
}

/* One document: what follows its end must be the end of the stream. */
static json_t *document_from(struct yreader *r)
{
    yaml_event_t ev;
    if (skip_to_content(r, &ev))
        return NULL;
    json_t *root = ev.type == YAML_STREAM_END_EVENT ? yfail(r, &ev.start_mark, "empty document")
                                                    : node_from(r, &ev);
    yaml_event_delete(&ev);
    while (root && !next_event(r, &ev)) {
        yaml_event_type_t type = ev.type;
        if (type == YAML_DOCUMENT_START_EVENT)
            yfail(r, &ev.start_mark, "several YAML documents in one kubeconfig");
        yaml_event_delete(&ev);
        if (type == YAML_STREAM_END_EVENT)
            return root;
        if (type != YAML_DOCUMENT_END_EVENT)
            break;
    }
    json_decref(root);
    return NULL;
}

json_t *kubeconfig_yaml_parse(const char *text, size_t len, char *err, size_t errlen)
{
    size_t i = 0;
    while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\r' || text[i] == '\t'))
        i++;
    if (i < len && text[i] == '{') { /* JSON, which kubectl also accepts */
        json_error_t je;
        json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
        if (!root)
            snprintf(err, errlen, "line %d: %s", je.line, je.text);
        return root;
    }
    struct yreader r = {.text = text, .len = len, .err = err, .errlen = errlen};
    if (!yaml_parser_initialize(&r.parser)) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&r.parser, (const unsigned char *)text, len);
    json_t *root = document_from(&r);
    yaml_parser_delete(&r.parser);
    return root;
}
