#define DSF_MODULE "fed-k8s"
#include "federation/kubeconfig.h"
#include "common/base64.h"
#include "common/log.h"
#include "federation/rest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define YAML_MAX_DEPTH 64
#define KUBECONFIG_MAX_BYTES (16 << 20)
#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

/* ====================================================================================== */
/* YAML subset reader                                                                     */
/* ====================================================================================== */

struct yline {
    const char *text; /* after the indentation */
    size_t len;       /* without the line end */
    int indent;
    int blank; /* empty or only a comment */
    int lineno;
};

struct yparser {
    struct yline *lines;
    size_t n, i;
    int depth;
    char *err;
    size_t errlen;
    int failed;
};

static void yfail(struct yparser *p, int lineno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void yfail(struct yparser *p, int lineno, const char *fmt, ...)
{
    if (p->failed)
        return;
    p->failed = 1;
    int n = snprintf(p->err, p->errlen, "line %d: ", lineno);
    if (n < 0 || (size_t)n >= p->errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
    va_end(ap);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

static size_t rtrim(const char *s, size_t len)
{
    while (len > 0 && (is_space(s[len - 1]) || s[len - 1] == '\r'))
        len--;
    return len;
}

static int split_lines(struct yparser *p, const char *text, size_t len)
{
    size_t cap = 16;
    p->lines = malloc(cap * sizeof(*p->lines));
    if (!p->lines)
        return -1;
    size_t pos = 0;
    int lineno = 0;
    while (pos < len) {
        const char *start = text + pos;
        const char *nl = memchr(start, '\n', len - pos);
        size_t l = nl ? (size_t)(nl - start) : len - pos;
        pos += l + (nl ? 1 : 0);
        lineno++;
        if (p->n == cap) {
            struct yline *g = realloc(p->lines, cap * 2 * sizeof(*g));
            if (!g)
                return -1;
            p->lines = g;
            cap *= 2;
        }
        struct yline *y = &p->lines[p->n++];
        int ind = 0;
        while ((size_t)ind < l && start[ind] == ' ')
            ind++;
        y->text = start + ind;
        y->len = rtrim(y->text, l - (size_t)ind);
        y->indent = ind;
        y->lineno = lineno;
        size_t first = 0;
        while (first < y->len && is_space(y->text[first]))
            first++;
        y->blank = first == y->len || y->text[first] == '#';
        if (!y->blank && y->text[0] == '\t') {
            yfail(p, lineno, "tab in indentation (YAML allows spaces only)");
            return -1;
        }
    }
    return 0;
}

static struct yline *cur(struct yparser *p)
{
    while (p->i < p->n && p->lines[p->i].blank)
        p->i++;
    return p->i < p->n ? &p->lines[p->i] : NULL;
}

static int is_seq_item(const struct yline *y)
{
    return y->text[0] == '-' && (y->len == 1 || y->text[1] == ' ');
}

static int is_doc_marker(const struct yline *y)
{
    return y->indent == 0 && y->len >= 3 &&
           (!strncmp(y->text, "---", 3) || !strncmp(y->text, "...", 3)) &&
           (y->len == 3 || is_space(y->text[3]));
}

/* ---- scalars ---- */

static void put_utf8(struct dsf_buf *b, uint32_t cp)
{
    if (cp < 0x80) {
        buf_putc(b, (char)cp);
    } else if (cp < 0x800) {
        buf_putc(b, (char)(0xc0 | (cp >> 6)));
        buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        buf_putc(b, (char)(0xe0 | (cp >> 12)));
        buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
        buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    } else {
        buf_putc(b, (char)(0xf0 | (cp >> 18)));
        buf_putc(b, (char)(0x80 | ((cp >> 12) & 0x3f)));
        buf_putc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
        buf_putc(b, (char)(0x80 | (cp & 0x3f)));
    }
}

static int hex_digits(const char *s, size_t avail, int n, uint32_t *out)
{
    if ((size_t)n > avail)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < n; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* One escape after a backslash in a double-quoted scalar; returns bytes consumed or -1. */
static int dq_escape(const char *s, size_t avail, struct dsf_buf *b)
{
    static const char from[] = "\\\"/nrt0abefv ";
    static const char to[] = "\\\"/\n\r\t\0\a\b\x1b\f\v ";
    if (!avail)
        return -1;
    const char *hit = memchr(from, s[0], sizeof(from) - 1);
    if (hit) {
        buf_putc(b, to[hit - from]);
        return 1;
    }
    int n = s[0] == 'x' ? 2 : s[0] == 'u' ? 4 : s[0] == 'U' ? 8 : 0;
    uint32_t cp;
    if (!n || hex_digits(s + 1, avail - 1, n, &cp) || cp > 0x10ffff)
        return -1;
    put_utf8(b, cp);
    return 1 + n;
}

/* Quoted scalar starting at s[0] (a quote). Returns bytes consumed, or -1. */
static long quoted(const char *s, size_t len, struct dsf_buf *b)
{
    char q = s[0];
    size_t i = 1;
    while (i < len) {
        char c = s[i];
        if (c == q) {
            if (q == '\'' && i + 1 < len && s[i + 1] == '\'') {
                buf_putc(b, '\'');
                i += 2;
                continue;
            }
            return (long)i + 1;
        }
        if (q == '"' && c == '\\') {
            int n = dq_escape(s + i + 1, len - i - 1, b);
            if (n < 0)
                return -1;
            i += 1 + (size_t)n;
            continue;
        }
        buf_putc(b, c);
        i++;
    }
    return -1;
}

/* Length of a plain scalar: up to a comment (" #") or, in flow context, ",]}" . */
static size_t plain_len(const char *s, size_t len, int flow)
{
    size_t i = 0;
    for (; i < len; i++) {
        if (s[i] == '#' && i > 0 && is_space(s[i - 1]))
            break;
        if (flow && (s[i] == ',' || s[i] == ']' || s[i] == '}'))
            break;
        if (flow && s[i] == ':' && (i + 1 == len || is_space(s[i + 1]) || s[i + 1] == ','))
            break;
    }
    return rtrim(s, i);
}

static json_t *plain_value(const char *s, size_t n)
{
    static const char *nulls[] = {"~", "null", "Null", "NULL"};
    static const char *trues[] = {"true", "True", "TRUE"};
    static const char *falses[] = {"false", "False", "FALSE"};
    if (n == 0)
        return json_null();
    for (size_t i = 0; i < 4; i++)
        if (strlen(nulls[i]) == n && !memcmp(s, nulls[i], n))
            return json_null();
    for (size_t i = 0; i < 3; i++) {
        if (strlen(trues[i]) == n && !memcmp(s, trues[i], n))
            return json_true();
        if (strlen(falses[i]) == n && !memcmp(s, falses[i], n))
            return json_false();
    }
    return json_stringn(s, n);
}

static int only_comment(const char *s, size_t len)
{
    size_t i = 0;
    while (i < len && is_space(s[i]))
        i++;
    return i == len || s[i] == '#';
}

static size_t excerpt(size_t len)
{
    return len < 40 ? len : 40;
}

static int unsupported_start(char c)
{
    return c == '&' || c == '*' || c == '!' || c == '@' || c == '`' || c == '%';
}

/* ---- flow collections (one line) ---- */

static json_t *flow_value(struct yparser *p, int lineno, const char *s, size_t len, size_t *used);

static size_t skip_ws(const char *s, size_t len, size_t i)
{
    while (i < len && is_space(s[i]))
        i++;
    return i;
}

static json_t *flow_scalar(struct yparser *p, int lineno, const char *s, size_t len, size_t *used)
{
    if (s[0] == '"' || s[0] == '\'') {
        struct dsf_buf b = {0};
        long n = quoted(s, len, &b);
        json_t *v = n < 0 ? NULL : json_stringn(b.data ? b.data : "", b.len);
        buf_free(&b);
        if (n < 0)
            yfail(p, lineno, "unterminated or malformed quoted string");
        *used = n < 0 ? 0 : (size_t)n;
        return v;
    }
    if (unsupported_start(s[0])) {
        yfail(p, lineno, "anchors, aliases and tags are not supported");
        return NULL;
    }
    size_t n = plain_len(s, len, 1);
    *used = n;
    return plain_value(s, n);
}

static json_t *flow_seq(struct yparser *p, int lineno, const char *s, size_t len, size_t *used)
{
    json_t *arr = json_array();
    size_t i = skip_ws(s, len, 1);
    if (i < len && s[i] == ']') {
        *used = i + 1;
        return arr;
    }
    while (arr && i < len) {
        size_t n = 0;
        json_t *v = flow_value(p, lineno, s + i, len - i, &n);
        if (!v || json_array_append_new(arr, v))
            break;
        i = skip_ws(s, len, i + n);
        if (i < len && s[i] == ']') {
            *used = i + 1;
            return arr;
        }
        if (i >= len || s[i] != ',')
            break;
        i = skip_ws(s, len, i + 1);
    }
    yfail(p, lineno, "malformed flow sequence (it must close on the same line)");
    json_decref(arr);
    return NULL;
}

static json_t *flow_map(struct yparser *p, int lineno, const char *s, size_t len, size_t *used)
{
    json_t *obj = json_object();
    size_t i = skip_ws(s, len, 1);
    if (i < len && s[i] == '}') {
        *used = i + 1;
        return obj;
    }
    while (obj && i < len) {
        size_t n = 0;
        json_t *k = flow_scalar(p, lineno, s + i, len - i, &n);
        if (!k || !json_is_string(k)) {
            json_decref(k);
            break;
        }
        i = skip_ws(s, len, i + n);
        if (i >= len || s[i] != ':') {
            json_decref(k);
            break;
        }
        i = skip_ws(s, len, i + 1);
        json_t *v = i < len && s[i] != ',' && s[i] != '}'
                        ? flow_value(p, lineno, s + i, len - i, &n)
                        : (n = 0, json_null());
        int bad = !v || json_object_set_new(obj, json_string_value(k), v);
        json_decref(k);
        if (bad)
            break;
        i = skip_ws(s, len, i + n);
        if (i < len && s[i] == '}') {
            *used = i + 1;
            return obj;
        }
        if (i >= len || s[i] != ',')
            break;
        i = skip_ws(s, len, i + 1);
    }
    yfail(p, lineno, "malformed flow mapping (it must close on the same line)");
    json_decref(obj);
    return NULL;
}

static json_t *flow_value(struct yparser *p, int lineno, const char *s, size_t len, size_t *used)
{
    if (++p->depth > YAML_MAX_DEPTH) {
        p->depth--;
        yfail(p, lineno, "nesting deeper than %d levels", YAML_MAX_DEPTH);
        return NULL;
    }
    json_t *v = s[0] == '['   ? flow_seq(p, lineno, s, len, used)
                : s[0] == '{' ? flow_map(p, lineno, s, len, used)
                              : flow_scalar(p, lineno, s, len, used);
    p->depth--;
    return v;
}

/* A value written on the same line as its key or dash. */
static json_t *inline_value(struct yparser *p, int lineno, const char *s, size_t len)
{
    size_t used = 0;
    json_t *v = flow_value(p, lineno, s, len, &used);
    if (v && !only_comment(s + used, len - used)) {
        json_decref(v);
        v = NULL;
        if (s[0] == '"' || s[0] == '\'' || s[0] == '[' || s[0] == '{')
            yfail(p, lineno, "unexpected text after a value: '%.*s'", (int)excerpt(len - used),
                  s + used);
        else /* a plain scalar in block context may hold ",]}" */
            v = plain_value(s, plain_len(s, len, 0));
    }
    if (!v && !p->failed)
        yfail(p, lineno, "invalid UTF-8 text");
    return v;
}

/* ---- block scalars (| and >) ---- */

static json_t *block_scalar(struct yparser *p, const struct yline *head, const char *ind,
                            size_t indlen, int parent_indent)
{
    char style = ind[0], chomp = 0;
    for (size_t i = 1; i < indlen && !is_space(ind[i]) && ind[i] != '#'; i++) {
        if (ind[i] == '-' || ind[i] == '+')
            chomp = ind[i];
        else {
            yfail(p, head->lineno, "explicit block indentation is not supported");
            return NULL;
        }
    }
    struct dsf_buf b = {0};
    int block_indent = -1;
    size_t pending_nl = 0;
    while (p->i < p->n) {
        const struct yline *y = &p->lines[p->i];
        if (y->len == 0) { /* an empty line belongs to the scalar */
            pending_nl++;
            p->i++;
            continue;
        }
        if (y->indent <= parent_indent)
            break;
        if (block_indent < 0)
            block_indent = y->indent;
        if (y->indent < block_indent)
            break;
        if (b.len)
            pending_nl++;
        for (size_t k = 0; k < pending_nl; k++)
            buf_putc(&b, style == '>' && pending_nl == 1 ? ' ' : '\n');
        pending_nl = 0;
        for (int k = block_indent; k < y->indent; k++)
            buf_putc(&b, ' ');
        buf_put(&b, y->text, y->len);
        p->i++;
    }
    if (chomp != '-' && b.len)
        buf_putc(&b, '\n');
    if (chomp == '+')
        for (size_t k = 0; k < pending_nl; k++)
            buf_putc(&b, '\n');
    json_t *v = b.oom ? NULL : json_stringn(b.data ? b.data : "", b.len);
    buf_free(&b);
    if (!v)
        yfail(p, head->lineno, "invalid UTF-8 text");
    return v;
}

/* ---- block collections ---- */

static json_t *block_node(struct yparser *p);

/* The value of "key:" or "-" whose text after the indicator is rest. */
static json_t *value_after(struct yparser *p, const struct yline *head, const char *rest,
                           size_t restlen, int owner_indent, int allow_compact_seq)
{
    if (!only_comment(rest, restlen)) {
        if (rest[0] == '|' || rest[0] == '>')
            return block_scalar(p, head, rest, restlen, owner_indent);
        return inline_value(p, head->lineno, rest, restlen);
    }
    struct yline *next = cur(p);
    if (next && next->indent > owner_indent && !is_doc_marker(next))
        return block_node(p);
    /* "key:" followed by "- item" at the key's own indentation is a sequence value. */
    if (allow_compact_seq && next && next->indent == owner_indent && is_seq_item(next))
        return block_node(p);
    return json_null();
}

/* Finds "key:" at the start of a line; returns the key and sets *rest after the colon. */
static json_t *line_key(struct yparser *p, const struct yline *y, const char **rest,
                        size_t *restlen)
{
    const char *s = y->text;
    size_t len = y->len, end;
    json_t *key;
    if (s[0] == '"' || s[0] == '\'') {
        struct dsf_buf b = {0};
        long n = quoted(s, len, &b);
        key = n < 0 ? NULL : json_stringn(b.data ? b.data : "", b.len);
        buf_free(&b);
        end = n < 0 ? len : skip_ws(s, len, (size_t)n);
        if (!key || end >= len || s[end] != ':' || (end + 1 < len && !is_space(s[end + 1]))) {
            json_decref(key);
            return NULL;
        }
    } else {
        if (s[0] == '[' || s[0] == '{' || s[0] == '#')
            return NULL;
        for (end = 0; end < len; end++) {
            if (s[end] == '#' && end > 0 && is_space(s[end - 1]))
                return NULL;
            if (s[end] == ':' && (end + 1 == len || is_space(s[end + 1])))
                break;
        }
        if (end == len)
            return NULL;
        key = json_stringn(s, rtrim(s, end));
    }
    size_t v = skip_ws(s, len, end + 1);
    *rest = s + v;
    *restlen = len - v;
    return key;
}

static json_t *block_map(struct yparser *p, int indent)
{
    json_t *obj = json_object();
    struct yline *y;
    while (obj && !p->failed && (y = cur(p)) && y->indent == indent && !is_seq_item(y) &&
           !is_doc_marker(y)) {
        const char *rest;
        size_t restlen;
        json_t *key = line_key(p, y, &rest, &restlen);
        if (!key || !json_string_value(key)) {
            json_decref(key);
            yfail(p, y->lineno, "expected 'key: value', found '%.*s'", (int)excerpt(y->len),
                  y->text);
            break;
        }
        const char *k = json_string_value(key);
        if (json_object_get(obj, k))
            yfail(p, y->lineno, "duplicate key '%s'", k);
        p->i++;
        json_t *v = p->failed ? NULL : value_after(p, y, rest, restlen, indent, 1);
        if (v)
            json_object_set_new(obj, k, v);
        json_decref(key);
    }
    if (!p->failed && (y = cur(p)) && y->indent > indent && !is_doc_marker(y))
        yfail(p, y->lineno, "unexpected indentation");
    if (p->failed) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

static json_t *block_seq(struct yparser *p, int indent)
{
    json_t *arr = json_array();
    struct yline *y;
    while (arr && !p->failed && (y = cur(p)) && y->indent == indent && is_seq_item(y)) {
        size_t off = skip_ws(y->text, y->len, 1);
        json_t *v;
        if (only_comment(y->text + off, y->len - off)) {
            p->i++;
            v = value_after(p, y, "", 0, indent, 0);
        } else if (y->text[off] == '|' || y->text[off] == '>') {
            p->i++;
            v = block_scalar(p, y, y->text + off, y->len - off, indent);
        } else {
            /* "- key: v" starts a mapping whose later keys line up under "key". */
            y->text += off;
            y->len -= off;
            y->indent += (int)off;
            v = block_node(p);
        }
        if (v)
            json_array_append_new(arr, v);
    }
    if (!p->failed && (y = cur(p)) && y->indent > indent && !is_doc_marker(y))
        yfail(p, y->lineno, "unexpected indentation");
    if (p->failed) {
        json_decref(arr);
        return NULL;
    }
    return arr;
}

static json_t *block_node(struct yparser *p)
{
    struct yline *y = cur(p);
    if (!y)
        return json_null();
    if (++p->depth > YAML_MAX_DEPTH) {
        yfail(p, y->lineno, "nesting deeper than %d levels", YAML_MAX_DEPTH);
        p->depth--;
        return NULL;
    }
    json_t *v;
    const char *rest;
    size_t restlen;
    json_t *key = NULL;
    if (is_seq_item(y)) {
        v = block_seq(p, y->indent);
    } else if ((key = line_key(p, y, &rest, &restlen)) != NULL) {
        json_decref(key);
        v = block_map(p, y->indent);
    } else {
        p->i++;
        v = inline_value(p, y->lineno, y->text, y->len);
        struct yline *next = cur(p);
        if (v && next && next->indent >= y->indent && !is_doc_marker(next)) {
            /* Plain scalars folded over several lines: not written by kubeconfig tools. */
            yfail(p, next->lineno, "multi-line plain scalars are not supported");
            json_decref(v);
            v = NULL;
        }
    }
    p->depth--;
    return v;
}

static void skip_header(struct yparser *p)
{
    struct yline *y;
    while ((y = cur(p)) && y->indent == 0 && y->text[0] == '%')
        p->i++; /* directives */
    if ((y = cur(p)) && is_doc_marker(y) && y->text[0] == '-') {
        size_t off = skip_ws(y->text, y->len, 3);
        if (only_comment(y->text + off, y->len - off)) {
            p->i++;
        } else { /* "--- value": the document starts on the marker line */
            y->text += off;
            y->len -= off;
            y->indent = (int)off;
        }
    }
}

static json_t *yaml_document(struct yparser *p)
{
    skip_header(p);
    struct yline *y = cur(p);
    if (!y) {
        yfail(p, p->n ? p->lines[p->n - 1].lineno : 1, "empty document");
        return NULL;
    }
    json_t *root = block_node(p);
    y = cur(p);
    if (root && !p->failed && y) {
        if (is_doc_marker(y) && y->text[0] == '.')
            return root;
        if (is_doc_marker(y)) {
            p->i++;
            if (cur(p))
                yfail(p, y->lineno, "several YAML documents in one kubeconfig");
        } else {
            yfail(p, y->lineno, "unexpected '%.*s'", (int)excerpt(y->len), y->text);
        }
    }
    if (p->failed) {
        json_decref(root);
        return NULL;
    }
    return root;
}

json_t *kubeconfig_yaml_parse(const char *text, size_t len, char *err, size_t errlen)
{
    if (len >= 3 && !memcmp(text, "\xef\xbb\xbf", 3)) {
        text += 3;
        len -= 3;
    }
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
    if (memchr(text, '\0', len)) {
        snprintf(err, errlen, "line 1: NUL byte in text");
        return NULL;
    }
    struct yparser p = {.err = err, .errlen = errlen};
    json_t *root = NULL;
    if (split_lines(&p, text, len) == 0)
        root = yaml_document(&p);
    else if (!p.failed)
        snprintf(err, errlen, "out of memory");
    free(p.lines);
    return root;
}

/* ====================================================================================== */
/* kubeconfig semantics                                                                   */
/* ====================================================================================== */

struct kc_ctx {
    const char *origin, *dir;
    char *err;
    size_t errlen;
};

static int kc_fail(struct kc_ctx *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int kc_fail(struct kc_ctx *k, const char *fmt, ...)
{
    int n = snprintf(k->err, k->errlen, "kubeconfig %s: ", k->origin);
    if (n >= 0 && (size_t)n < k->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(k->err + n, k->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const char *str_field(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && s[0] ? s : NULL;
}

/* The "inner" object of the entry in list whose name is name ({name, cluster: {...}}). */
static json_t *named_entry(json_t *root, const char *list, const char *inner, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(root, list), i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n && !strcmp(n, name)) {
            json_t *in = json_object_get(e, inner);
            return json_is_object(in) ? in : NULL;
        }
    }
    return NULL;
}

static char *resolve_path(const char *dir, const char *p)
{
    char *out = NULL;
    if (p[0] == '/' || !dir || !dir[0])
        return strdup(p);
    if (asprintf(&out, "%s/%s", dir, p) < 0)
        return NULL;
    return out;
}

static int decode_field(struct kc_ctx *k, const json_t *obj, const char *key, char **out,
                        size_t *outlen)
{
    const char *b64 = str_field(obj, key);
    if (!b64)
        return 0;
    *out = dsf_base64_decode(b64, strlen(b64), outlen);
    if (!*out)
        return kc_fail(k, "%s is not valid base64", key);
    return 0;
}

static int file_field(struct kc_ctx *k, const json_t *obj, const char *key, char **out)
{
    const char *p = str_field(obj, key);
    if (!p)
        return 0;
    *out = resolve_path(k->dir, p);
    return *out ? 0 : kc_fail(k, "out of memory");
}

static int read_small_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct dsf_buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && b.len <= KUBECONFIG_MAX_BYTES)
        buf_put(&b, chunk, n);
    int bad = ferror(f) || b.oom || b.len > KUBECONFIG_MAX_BYTES;
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "%s: %s", path, b.oom ? "out of memory" : "unreadable or too large");
        buf_free(&b);
        return -1;
    }
    buf_cstr(&b);
    *out = b.data ? b.data : strdup("");
    *len = b.len;
    return *out ? 0 : -1;
}

static char *trimmed_dup(const char *s, size_t len)
{
    while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r' || is_space(s[len - 1])))
        len--;
    return strndup(s, len);
}

static int kc_cluster(struct kc_ctx *k, const json_t *cl, struct kube_config *out)
{
    const char *server = str_field(cl, "server");
    if (!server)
        return kc_fail(k, "cluster has no server");
    if (strncmp(server, "https://", 8) && strncmp(server, "http://", 7))
        return kc_fail(k, "server '%s' is not an http(s) URL", server);
    out->server = strdup(server);
    json_t *insecure = json_object_get(cl, "insecure-skip-tls-verify");
    out->insecure = json_is_true(insecure) ||
                    (json_is_string(insecure) && !strcmp(json_string_value(insecure), "true"));
    if (str_field(cl, "proxy-url"))
        log_warn("kubeconfig %s: proxy-url is ignored", k->origin);
    if (decode_field(k, cl, "certificate-authority-data", &out->ca_pem, &out->ca_pem_len))
        return -1;
    if (!out->ca_pem && file_field(k, cl, "certificate-authority", &out->ca_file))
        return -1;
    return out->server ? 0 : kc_fail(k, "out of memory");
}

static int kc_token_file(struct kc_ctx *k, const json_t *user, struct kube_config *out)
{
    char *path = NULL, *text = NULL;
    size_t len = 0;
    if (file_field(k, user, "tokenFile", &path) || !path)
        return path ? -1 : 0;
    char err[300];
    int rc = read_small_file(path, &text, &len, err, sizeof(err));
    free(path);
    if (rc)
        return kc_fail(k, "tokenFile: %s", err);
    out->token = trimmed_dup(text, len);
    free(text);
    return out->token ? 0 : kc_fail(k, "out of memory");
}

/* A token goes into an HTTP header: a line break in it would inject headers. */
static int check_token(struct kc_ctx *k, const char *token)
{
    for (const unsigned char *p = (const unsigned char *)token; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return kc_fail(k, "the user's token contains control characters");
    return 0;
}

static int kc_user(struct kc_ctx *k, const json_t *user, struct kube_config *out)
{
    const char *token = str_field(user, "token");
    if (token && !(out->token = trimmed_dup(token, strlen(token))))
        return kc_fail(k, "out of memory");
    if (!out->token && kc_token_file(k, user, out))
        return -1;
    if (out->token && check_token(k, out->token))
        return -1;
    if (decode_field(k, user, "client-certificate-data", &out->cert_pem, &out->cert_pem_len) ||
        decode_field(k, user, "client-key-data", &out->key_pem, &out->key_pem_len))
        return -1;
    if ((!out->cert_pem && file_field(k, user, "client-certificate", &out->cert_file)) ||
        (!out->key_pem && file_field(k, user, "client-key", &out->key_file)))
        return -1;
    const char *u = str_field(user, "username"), *pw = str_field(user, "password");
    if (u && (!(out->username = strdup(u)) || !(out->password = strdup(pw ? pw : ""))))
        return kc_fail(k, "out of memory");
    int have_cert = out->cert_pem || out->cert_file, have_key = out->key_pem || out->key_file;
    if (have_cert != have_key)
        return kc_fail(k, "user has a client certificate without its key, or a key without "
                          "its certificate");
    if (!out->token && !have_cert && !out->username &&
        (json_object_get(user, "exec") || json_object_get(user, "auth-provider")))
        return kc_fail(k, "user authenticates through an exec or auth-provider plugin, which "
                          "is not supported: give it a token or a client certificate");
    return 0;
}

static int kc_select(struct kc_ctx *k, json_t *root, const char *context, struct kube_config *out)
{
    const char *name = context ? context : str_field(root, "current-context");
    if (!name)
        return kc_fail(k, "no current-context, and no context given");
    json_t *ctx = named_entry(root, "contexts", "context", name);
    if (!ctx)
        return kc_fail(k, "context '%s' not found", name);
    out->context = strdup(name);
    const char *cname = str_field(ctx, "cluster"), *uname = str_field(ctx, "user");
    if (!cname)
        return kc_fail(k, "context '%s' names no cluster", name);
    json_t *cl = named_entry(root, "clusters", "cluster", cname);
    if (!cl)
        return kc_fail(k, "cluster '%s' (of context '%s') not found", cname, name);
    const char *ns = str_field(ctx, "namespace");
    if (ns && !(out->namespace = strdup(ns)))
        return kc_fail(k, "out of memory");
    if (kc_cluster(k, cl, out))
        return -1;
    if (!uname)
        return 0; /* anonymous, e.g. a local proxy */
    json_t *user = named_entry(root, "users", "user", uname);
    if (!user)
        return kc_fail(k, "user '%s' (of context '%s') not found", uname, name);
    return kc_user(k, user, out);
}

int kubeconfig_parse(const char *text, size_t len, const char *context, const char *dir,
                     const char *origin, struct kube_config *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->origin, sizeof(out->origin), "%s", origin ? origin : "(text)");
    struct kc_ctx k = {.origin = out->origin, .dir = dir, .err = err, .errlen = errlen};
    char perr[256];
    json_t *root = kubeconfig_yaml_parse(text, len, perr, sizeof(perr));
    if (!root)
        return kc_fail(&k, "%s", perr);
    int rc = json_is_object(root) ? kc_select(&k, root, context, out)
                                  : kc_fail(&k, "not a mapping of clusters, contexts and users");
    json_decref(root);
    if (rc)
        kubeconfig_free(out);
    return rc;
}

int kubeconfig_load(const char *path, const char *context, struct kube_config *out, char *err,
                    size_t errlen)
{
    char *text = NULL;
    size_t len = 0;
    memset(out, 0, sizeof(*out));
    if (read_small_file(path, &text, &len, err, errlen))
        return -1;
    char *dir = strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = '\0';
    int rc = kubeconfig_parse(text, len, context, slash ? (dir[0] ? dir : "/") : NULL, path, out,
                              err, errlen);
    free(dir);
    free(text);
    return rc;
}

static int read_sa_file(const char *dir, const char *name, char **out, int required, char *err,
                        size_t errlen)
{
    char path[512], *text = NULL;
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (access(path, R_OK) != 0 && !required)
        return 0;
    if (read_small_file(path, &text, &len, err, errlen))
        return -1;
    *out = trimmed_dup(text, len);
    free(text);
    return *out ? 0 : -1;
}

int kubeconfig_in_cluster(const char *sa_dir, struct kube_config *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->origin, sizeof(out->origin), "in-cluster service account");
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !host[0] || !port || !port[0]) {
        snprintf(err, errlen,
                 "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
                 "are not set (not running in a pod?)");
        return -1;
    }
    const char *dir = sa_dir ? sa_dir : SA_DIR;
    int v6 = strchr(host, ':') != NULL;
    char ca[512];
    snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
    if (asprintf(&out->server, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port) < 0 ||
        !(out->ca_file = strdup(ca))) {
        out->server = NULL;
        kubeconfig_free(out);
        snprintf(err, errlen, "in-cluster: out of memory");
        return -1;
    }
    if (read_sa_file(dir, "token", &out->token, 1, err, errlen) ||
        read_sa_file(dir, "namespace", &out->namespace, 0, err, errlen)) {
        kubeconfig_free(out);
        return -1;
    }
    return 0;
}

int kubeconfig_resolve(const char *path, const char *context, const char *sa_dir,
                       struct kube_config *out, char *err, size_t errlen)
{
    if (path && path[0])
        return kubeconfig_load(path, context, out, err, errlen);
    const char *env = getenv("KUBECONFIG");
    if (env && env[0]) {
        /* Merging several files is kubectl's job; the first one is used here. */
        char *first = strndup(env, strcspn(env, ":"));
        int rc = first ? kubeconfig_load(first, context, out, err, errlen) : -1;
        free(first);
        return rc;
    }
    const char *home = getenv("HOME");
    char def[512];
    struct stat st;
    if (home && snprintf(def, sizeof(def), "%s/.kube/config", home) < (int)sizeof(def) &&
        stat(def, &st) == 0)
        return kubeconfig_load(def, context, out, err, errlen);
    if (getenv("KUBERNETES_SERVICE_HOST"))
        return kubeconfig_in_cluster(sa_dir, out, err, errlen);
    snprintf(err, errlen,
             "no kubeconfig: none given, $KUBECONFIG unset, no ~/.kube/config and "
             "not in a pod");
    memset(out, 0, sizeof(*out));
    return -1;
}

static void free_secret(char *p, size_t n)
{
    if (p)
        explicit_bzero(p, n);
    free(p);
}

void kubeconfig_free(struct kube_config *c)
{
    free(c->server);
    free(c->ca_file);
    free(c->cert_file);
    free(c->key_file);
    free(c->ca_pem);
    free(c->cert_pem);
    free_secret(c->key_pem, c->key_pem_len);
    free_secret(c->token, c->token ? strlen(c->token) : 0);
    free(c->username);
    free_secret(c->password, c->password ? strlen(c->password) : 0);
    free(c->namespace);
    free(c->context);
    char origin[sizeof(c->origin)];
    memcpy(origin, c->origin, sizeof(origin));
    memset(c, 0, sizeof(*c));
    memcpy(c->origin, origin, sizeof(origin));
}

void kubeconfig_rest_config(const struct kube_config *c, struct fed_rest_config *rc)
{
    rc->base_url = c->server;
    rc->bearer_token = c->token;
    rc->basic_user = c->token ? NULL : c->username;
    rc->basic_password = c->token ? NULL : c->password;
    rc->ca_file = c->ca_file;
    rc->ca_pem = c->ca_pem;
    rc->ca_pem_len = c->ca_pem_len;
    rc->cert_file = c->cert_file;
    rc->cert_pem = c->cert_pem;
    rc->cert_pem_len = c->cert_pem_len;
    rc->key_file = c->key_file;
    rc->key_pem = c->key_pem;
    rc->key_pem_len = c->key_pem_len;
    rc->insecure = c->insecure;
}
