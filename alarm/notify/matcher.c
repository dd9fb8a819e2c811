#include "alarm/notify/internal.h"
#include "common/regex.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *op_text[] = {"=", "!=", "=~", "!~"};

int nf_matcher_init(struct nf_matcher *m, const char *name, enum nf_match_op op, const char *value,
                    char *err, size_t errlen)
{
    memset(m, 0, sizeof(*m));
    m->op = op;
    m->name = strdup(name);
    m->value = strdup(value);
    if (!m->name || !m->value) {
        nf_matcher_free(m);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if ((op == NF_RE || op == NF_NRE) &&
        dsf_regex_compile(&m->re, value, DSF_REGEX_ANCHORED, err, errlen)) {
        free(m->name);
        free(m->value);
        memset(m, 0, sizeof(*m));
        return -1;
    }
    return 0;
}

static int name_char(char c, int first)
{
    return c == '_' || isalpha((unsigned char)c) || (!first && isdigit((unsigned char)c));
}

/* A double-quoted value with \" \\ \n escapes, or the rest of the text as it is. */
static int parse_value(const char *p, char *out, size_t cap, char *err, size_t errlen)
{
    size_t n = 0;
    if (*p != '"') {
        snprintf(out, cap, "%s", p);
        return strlen(p) < cap ? 0 : -1;
    }
    for (p++; *p && *p != '"'; p++) {
        char c = *p;
        if (c == '\\' && p[1]) {
            c = *++p == 'n' ? '\n' : *p;
        }
        if (n + 1 >= cap) {
            snprintf(err, errlen, "value too long");
            return -1;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    if (*p != '"' || p[1]) {
        snprintf(err, errlen, "unterminated or trailing text after the quoted value");
        return -1;
    }
    return 0;
}

int nf_matcher_parse(struct nf_matcher *m, const char *text, char *err, size_t errlen)
{
    const char *p = text;
    while (*p == ' ')
        p++;
    const char *name = p;
    if (!name_char(*p, 1)) {
        snprintf(err, errlen, "matcher \"%s\": expected a label name first", text);
        return -1;
    }
    while (name_char(*p, 0))
        p++;
    size_t name_len = (size_t)(p - name);
    while (*p == ' ')
        p++;
    enum nf_match_op op;
    if (strncmp(p, "=~", 2) == 0)
        op = NF_RE, p += 2;
    else if (strncmp(p, "!~", 2) == 0)
        op = NF_NRE, p += 2;
    else if (strncmp(p, "!=", 2) == 0)
        op = NF_NE, p += 2;
    else if (*p == '=')
        op = NF_EQ, p += 1;
    else {
        snprintf(err, errlen, "matcher \"%s\": expected one of = != =~ !~ after the name", text);
        return -1;
    }
    while (*p == ' ')
        p++;
    char nm[256], value[1024], why[128];
    if (name_len >= sizeof(nm)) {
        snprintf(err, errlen, "matcher \"%s\": label name too long", text);
        return -1;
    }
    memcpy(nm, name, name_len);
    nm[name_len] = '\0';
    if (parse_value(p, value, sizeof(value), why, sizeof(why))) {
        snprintf(err, errlen, "matcher \"%s\": %s", text, why);
        return -1;
    }
    if (nf_matcher_init(m, nm, op, value, why, sizeof(why))) {
        snprintf(err, errlen, "matcher \"%s\": %s", text, why);
        return -1;
    }
    return 0;
}

void nf_matcher_free(struct nf_matcher *m)
{
    if ((m->op == NF_RE || m->op == NF_NRE) && m->name && m->value)
        regfree(&m->re);
    free(m->name);
    free(m->value);
    m->name = m->value = NULL;
}

int nf_matcher_matches(const struct nf_matcher *m, const struct nf_labels *l)
{
    /* A missing label reads as "", as in Alertmanager. */
    const char *v = nf_labels_get(l, m->name);
    if (!v)
        v = "";
    switch (m->op) {
    case NF_EQ:
        return strcmp(v, m->value) == 0;
    case NF_NE:
        return strcmp(v, m->value) != 0;
    case NF_RE:
        return regexec(&m->re, v, 0, NULL, 0) == 0;
    case NF_NRE:
        return regexec(&m->re, v, 0, NULL, 0) != 0;
    }
    return 0;
}

int nf_matchers_match(const struct nf_matcher *m, size_t n, const struct nf_labels *l)
{
    for (size_t i = 0; i < n; i++)
        if (!nf_matcher_matches(&m[i], l))
            return 0;
    return 1;
}

void nf_matcher_print(const struct nf_matcher *m, struct dsf_buf *out)
{
    buf_printf(out, "%s%s\"", m->name, op_text[m->op]);
    for (const char *c = m->value; *c; c++) {
        if (*c == '"' || *c == '\\')
            buf_putc(out, '\\');
        buf_putc(out, *c);
    }
    buf_putc(out, '"');
}
