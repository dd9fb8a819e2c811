/*
 * Silences as Alertmanager has them: matchers and a time window; an alert matching every
 * matcher of an active silence is not notified. They are created, listed and expired through
 * the API with Alertmanager's JSON shapes, and persisted in the state directory.
 */
#define DSF_MODULE "notify"
#include "alarm/notify/internal.h"
#include "common/log.h"
#include "common/loop.h"
#include "common/metrics.h"
#include "common/rfc3339.h"
#include "common/uuid.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SILENCE_FILE "silences.json"
/* Expired silences stay listed this long, then are forgotten. */
#define SILENCE_RETENTION_NS (120LL * 3600 * 1000000000)

static void free_silence(struct nf_silence *s)
{
    for (size_t i = 0; i < s->nm; i++)
        nf_matcher_free(&s->m[i]);
    free(s->m);
    free(s->created_by);
    free(s->comment);
}

static const char *state_of(const struct nf_silence *s, int64_t now)
{
    return now < s->starts_ns ? "pending" : now < s->ends_ns ? "active" : "expired";
}

const struct nf_silence *nf_silences_match(const struct nf_silences *s, const struct nf_labels *l,
                                           int64_t now_ns)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct nf_silence *x = &s->v[i];
        if (now_ns >= x->starts_ns && now_ns < x->ends_ns && nf_matchers_match(x->m, x->nm, l))
            return x;
    }
    return NULL;
}

static void put_matchers(struct dsf_buf *b, const struct nf_silence *s)
{
    buf_putc(b, '[');
    for (size_t i = 0; i < s->nm; i++) {
        const struct nf_matcher *m = &s->m[i];
        buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        nf_json_str(b, m->name);
        buf_puts(b, ",\"value\":");
        nf_json_str(b, m->value);
        buf_printf(b, ",\"isRegex\":%s,\"isEqual\":%s}",
                   m->op == NF_RE || m->op == NF_NRE ? "true" : "false",
                   m->op == NF_EQ || m->op == NF_RE ? "true" : "false");
    }
    buf_putc(b, ']');
}

static void put_silence(struct dsf_buf *b, const struct nf_silence *s, int64_t now)
{
    buf_puts(b, "{\"id\":");
    nf_json_str(b, s->id);
    buf_printf(b, ",\"status\":{\"state\":\"%s\"},\"updatedAt\":\"", state_of(s, now));
    nf_rfc3339(s->updated_ns, b);
    buf_puts(b, "\",\"startsAt\":\"");
    nf_rfc3339(s->starts_ns, b);
    buf_puts(b, "\",\"endsAt\":\"");
    nf_rfc3339(s->ends_ns, b);
    buf_puts(b, "\",\"matchers\":");
    put_matchers(b, s);
    buf_puts(b, ",\"createdBy\":");
    nf_json_str(b, s->created_by);
    buf_puts(b, ",\"comment\":");
    nf_json_str(b, s->comment);
    buf_putc(b, '}');
}

void nf_silences_json(const struct nf_silences *s, int64_t now_ns, struct dsf_buf *out)
{
    buf_putc(out, '[');
    for (size_t i = 0; i < s->n; i++) {
        if (i)
            buf_putc(out, ',');
        put_silence(out, &s->v[i], now_ns);
    }
    buf_puts(out, "]\n");
}

static int save(struct nf_silences *s)
{
    struct dsf_buf b = {0};
    buf_puts(&b, "{\"silences\":[");
    for (size_t i = 0; i < s->n; i++) {
        const struct nf_silence *x = &s->v[i];
        buf_puts(&b, i ? ",\n{\"id\":" : "\n{\"id\":");
        nf_json_str(&b, x->id);
        buf_printf(&b, ",\"starts\":%" PRId64 ",\"ends\":%" PRId64 ",\"updated\":%" PRId64,
                   x->starts_ns, x->ends_ns, x->updated_ns);
        buf_puts(&b, ",\"matchers\":");
        put_matchers(&b, x);
        buf_puts(&b, ",\"createdBy\":");
        nf_json_str(&b, x->created_by);
        buf_puts(&b, ",\"comment\":");
        nf_json_str(&b, x->comment);
        buf_putc(&b, '}');
    }
    buf_puts(&b, "\n]}\n");
    int rc = b.oom ? -1 : nf_write_atomic(s->dir, SILENCE_FILE, b.data, b.len);
    if (rc)
        log_error("cannot write %s/%s", s->dir, SILENCE_FILE);
    buf_free(&b);
    return rc;
}

static int parse_matchers(struct nf_silence *x, json_t *arr, char *err, size_t errlen)
{
    if (!json_is_array(arr) || json_array_size(arr) == 0) {
        snprintf(err, errlen, "key 'matchers': expected a non-empty array");
        return -1;
    }
    x->m = calloc(json_array_size(arr), sizeof(*x->m));
    if (!x->m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    size_t i;
    json_t *m;
    json_array_foreach(arr, i, m)
    {
        char why[NF_ERRLEN];
        const char *name = json_string_value(json_object_get(m, "name"));
        const char *value = json_string_value(json_object_get(m, "value"));
        json_t *re = json_object_get(m, "isRegex"), *eq = json_object_get(m, "isEqual");
        int rc;
        if (json_is_string(m)) {
            rc = nf_matcher_parse(&x->m[i], json_string_value(m), why, sizeof(why));
        } else if (!name || !*name || !value || (re && !json_is_boolean(re)) ||
                   (eq && !json_is_boolean(eq))) {
            snprintf(why, sizeof(why),
                     "expected {\"name\",\"value\",\"isRegex\",\"isEqual\"} or \"name=value\"");
            rc = -1;
        } else {
            int is_re = json_is_true(re), is_eq = !eq || json_is_true(eq);
            enum nf_match_op op = is_re ? (is_eq ? NF_RE : NF_NRE) : (is_eq ? NF_EQ : NF_NE);
            rc = nf_matcher_init(&x->m[i], name, op, value, why, sizeof(why));
        }
        if (rc) {
            snprintf(err, errlen, "key 'matchers[%zu]': %s", i, why);
            return -1;
        }
        x->nm++;
    }
    return 0;
}

static int str_field(json_t *o, const char *key, char **out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    if (v && !json_is_string(v)) {
        snprintf(err, errlen, "key '%s': expected a string", key);
        return -1;
    }
    *out = strdup(v ? json_string_value(v) : "");
    return *out ? 0 : -1;
}

static int time_field(json_t *o, const char *key, int64_t def, int64_t *out, char *err,
                      size_t errlen)
{
    json_t *v = json_object_get(o, key);
    if (!v) {
        *out = def;
        return def < 0 ? (snprintf(err, errlen, "key '%s' is required", key), -1) : 0;
    }
    if (json_is_integer(v)) { /* the persisted form: nanoseconds */
        *out = json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v) || dsf_rfc3339_parse(json_string_value(v), out)) {
        snprintf(err, errlen, "key '%s': expected an RFC 3339 time like 2026-01-02T15:04:05Z", key);
        return -1;
    }
    return 0;
}

static int parse_silence(struct nf_silence *x, json_t *o, int64_t now, int persisted, char *err,
                         size_t errlen)
{
    memset(x, 0, sizeof(*x));
    static const char *known[] = {"id",      "matchers", "startsAt", "endsAt", "createdBy",
                                  "comment", "starts",   "ends",     "updated"};
    if (!json_is_object(o)) {
        snprintf(err, errlen, "expected a JSON object");
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        size_t i, n = persisted ? 9 : 6;
        for (i = 0; i < n && strcmp(known[i], key); i++)
            ;
        if (i == n) {
            snprintf(err, errlen, "unknown key '%s'", key);
            return -1;
        }
    }
    /* A client may name the silence (the controller gives every engine the same id), so
     * the id goes into URL paths: only what dsf_uuid_like takes. */
    json_t *idv = json_object_get(o, "id");
    const char *id = json_string_value(idv);
    if (idv && !persisted && (!id || !dsf_uuid_like(id))) {
        snprintf(err, errlen, "key 'id': expected 1 to %d letters, digits and dashes",
                 DSF_UUID_LEN);
        return -1;
    }
    if (id)
        snprintf(x->id, sizeof(x->id), "%s", id);
    else
        dsf_uuid4(x->id);
    x->updated_ns = now;
    if (parse_matchers(x, json_object_get(o, "matchers"), err, errlen) ||
        time_field(o, persisted ? "starts" : "startsAt", now, &x->starts_ns, err, errlen) ||
        time_field(o, persisted ? "ends" : "endsAt", -1, &x->ends_ns, err, errlen) ||
        str_field(o, "createdBy", &x->created_by, err, errlen) ||
        str_field(o, "comment", &x->comment, err, errlen))
        return -1;
    if (persisted)
        time_field(o, "updated", now, &x->updated_ns, err, errlen);
    if (x->ends_ns <= x->starts_ns) {
        snprintf(err, errlen, "key 'endsAt': must be after startsAt");
        return -1;
    }
    return 0;
}

static int append(struct nf_silences *s, const struct nf_silence *x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct nf_silence *v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = *x;
    return 0;
}

/* The silence that expired first is forgotten. 0, or -1 when none has expired. */
static int forget_oldest_expired(struct nf_silences *s, int64_t now_ns)
{
    size_t oldest = s->n;
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].ends_ns <= now_ns && (oldest == s->n || s->v[i].ends_ns < s->v[oldest].ends_ns))
            oldest = i;
    if (oldest == s->n)
        return -1;
    free_silence(&s->v[oldest]);
    memmove(&s->v[oldest], &s->v[oldest + 1], (s->n - oldest - 1) * sizeof(*s->v));
    s->n--;
    return 0;
}

/* Room for one more under the cap, made by forgetting expired silences; active and pending
 * ones are never pushed out. 0, or -1 when too many are in force. */
static int make_room(struct nf_silences *s, int64_t now_ns)
{
    while (s->n >= s->max)
        if (forget_oldest_expired(s, now_ns))
            return -1;
    return 0;
}

/* The caps: a silence longer than max_len_ns, or one more when max are in force. */
static int within_limits(struct nf_silences *s, const struct nf_silence *x, int replacing,
                         int64_t now_ns, char *err, size_t errlen)
{
    if (s->max_len_ns > 0 && x->ends_ns - x->starts_ns > s->max_len_ns) {
        dsf_count(&s->refused_too_long, 1);
        snprintf(err, errlen,
                 "key 'endsAt': the silence would last %.1f days, longer than "
                 "notify.max_silence_duration (%.1f days)",
                 (double)(x->ends_ns - x->starts_ns) / 864e11, (double)s->max_len_ns / 864e11);
        return NF_SILENCE_TOO_LONG;
    }
    if (!replacing && make_room(s, now_ns)) {
        dsf_count(&s->refused_max, 1);
        snprintf(err, errlen,
                 "notify.max_silences (%zu) reached: expire a silence first (DELETE "
                 "/api/v1/silences/{id})",
                 s->max);
        return NF_SILENCE_MAX;
    }
    return 0;
}

int nf_silences_add_json(struct nf_silences *s, const char *body, size_t len, int64_t now_ns,
                         char *id, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o) {
        dsf_count(&s->refused_invalid, 1);
        snprintf(err, errlen, "invalid JSON at line %d: %s", jerr.line, jerr.text);
        return NF_SILENCE_INVALID;
    }
    struct nf_silence x;
    int rc = parse_silence(&x, o, now_ns, 0, err, errlen);
    json_decref(o);
    if (rc)
        dsf_count(&s->refused_invalid, 1);
    size_t at = 0;
    while (rc == 0 && at < s->n && strcmp(s->v[at].id, x.id))
        at++;
    if (rc == 0)
        rc = within_limits(s, &x, at < s->n, now_ns, err, errlen);
    if (rc == 0 && at < s->n) {
        /* The id is taken: Alertmanager's update, and a retried create stays one silence. */
        free_silence(&s->v[at]);
        s->v[at] = x;
    } else if (rc == 0 && append(s, &x)) {
        snprintf(err, errlen, "out of memory");
        rc = NF_SILENCE_OOM;
    }
    if (rc) {
        free_silence(&x);
        return rc;
    }
    snprintf(id, 37, "%s", x.id);
    save(s);
    return 0;
}

int nf_silences_expire(struct nf_silences *s, const char *id, int64_t now_ns)
{
    for (size_t i = 0; i < s->n; i++) {
        struct nf_silence *x = &s->v[i];
        if (strcmp(x->id, id) != 0)
            continue;
        if (x->ends_ns > now_ns)
            x->ends_ns = now_ns > x->starts_ns ? now_ns : x->starts_ns;
        x->updated_ns = now_ns;
        save(s);
        return 0;
    }
    return -1;
}

int nf_silences_open(struct nf_silences *s, const char *dir, char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    s->max = NF_SILENCES_MAX;
    s->max_len_ns = NF_SILENCE_MAX_NS;
    if (!(s->dir = strdup(dir))) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, SILENCE_FILE);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root)
        return 0;
    int64_t now = dsf_now_ns();
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(root, "silences"), i, item)
    {
        struct nf_silence x;
        char why[NF_ERRLEN] = "out of memory";
        if (parse_silence(&x, item, now, 1, why, sizeof(why)) ||
            x.ends_ns < now - SILENCE_RETENTION_NS || append(s, &x)) {
            if (x.ends_ns >= now - SILENCE_RETENTION_NS)
                log_warn("%s: silence %zu dropped: %s", path, i, why);
            free_silence(&x);
        }
    }
    json_decref(root);
    return 0;
}

void nf_silences_close(struct nf_silences *s)
{
    for (size_t i = 0; i < s->n; i++)
        free_silence(&s->v[i]);
    free(s->v);
    free(s->dir);
    memset(s, 0, sizeof(*s));
}
