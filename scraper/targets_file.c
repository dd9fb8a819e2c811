/*
 * scrape.targets_file: Prometheus' file_sd format, a JSON array of
 * {"targets": ["host:port", ...], "labels": {"ns": .., "mci": .., "vm": .., ...}}. The labels
 * ns, mci and vm are the VM's identity; __scheme__ (http, https) and __metrics_path__
 * (/metrics) say what to fetch; other labels starting with "__" are dropped, the rest are
 * added to every sample. The file is read again when its inode, size or time changes; a file
 * that does not parse, or has gone, leaves the targets as they were.
 */
#define DSF_MODULE "targets_file"
#include "scraper/scraper.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static const char *label(json_t *labels, const char *name, const char *def)
{
    const char *v = json_string_value(json_object_get(labels, name));
    return v ? v : def;
}

/* host:port without a scheme, path or user: what the file's "targets" hold. */
static int host_port_ok(const char *hp)
{
    return *hp && !strpbrk(hp, "/@?# \t\r\n") && strchr(hp, ':');
}

static void add_group(struct scraper *s, json_t *group, size_t gi)
{
    json_t *labels = json_object_get(group, "labels"), *targets = json_object_get(group, "targets");
    const char *names[TARGET_LABELS_MAX], *values[TARGET_LABELS_MAX], *key;
    size_t n = 0, i;
    json_t *v;
    char why[300], url[1200];
    json_object_foreach(labels, key, v)
    {
        if (!strncmp(key, "__", 2) || !strcmp(key, "ns") || !strcmp(key, "mci") ||
            !strcmp(key, "vm") || !json_is_string(v))
            continue;
        if (n == TARGET_LABELS_MAX) {
            log_error("%s: group %zu: more than %d labels: the rest are ignored",
                      s->cfg.targets_file, gi + 1, TARGET_LABELS_MAX);
            break;
        }
        names[n] = key;
        values[n++] = json_string_value(v);
    }
    const char *scheme = label(labels, "__scheme__", "http");
    const char *path = label(labels, "__metrics_path__", "/metrics");
    json_array_foreach(targets, i, v)
    {
        const char *hp = json_string_value(v);
        if (!hp || !host_port_ok(hp) || (strcmp(scheme, "http") && strcmp(scheme, "https")) ||
            *path != '/') {
            s->stats.targets_refused++;
            log_error("%s: group %zu, target %zu: expected \"host:port\", __scheme__ http or "
                      "https and a __metrics_path__ starting with /",
                      s->cfg.targets_file, gi + 1, i + 1);
            continue;
        }
        snprintf(url, sizeof(url), "%s://%s%s", scheme, hp, path);
        const struct target_spec spec = {
            .ns = label(labels, "ns", NULL),
            .mci = label(labels, "mci", NULL),
            .vm = label(labels, "vm", NULL),
            .url = url,
            .mode = SCRAPE_EXPORTER,
            .label_names = names,
            .label_values = values,
            .nlabels = n,
        };
        if (targets_add(s, SOURCE_FILE, &spec, why, sizeof(why)) < 0) {
            s->stats.targets_refused++;
            log_error("%s: group %zu, target %s: %s", s->cfg.targets_file, gi + 1, hp, why);
        }
    }
}

static void apply(struct scraper *s)
{
    json_error_t jerr;
    json_t *root = json_load_file(s->cfg.targets_file, JSON_REJECT_DUPLICATES, &jerr), *group;
    size_t i;
    if (!json_is_array(root)) {
        s->stats.sources_failed++;
        log_error("%s: %s%s: the targets stay as they were", s->cfg.targets_file,
                  root ? "not a JSON array of target groups" : jerr.text,
                  root ? "" : " (line and column above)");
        json_decref(root);
        return;
    }
    targets_begin(s, SOURCE_FILE);
    json_array_foreach(root, i, group)
    {
        if (!json_is_object(group) || !json_is_array(json_object_get(group, "targets")) ||
            !json_is_object(json_object_get(group, "labels"))) {
            s->stats.targets_refused++;
            log_error("%s: group %zu: expected {\"targets\": [...], \"labels\": {...}}",
                      s->cfg.targets_file, i + 1);
            continue;
        }
        add_group(s, group, i);
    }
    targets_end(s, SOURCE_FILE);
    json_decref(root);
}

void targets_file_check(struct scraper *s)
{
    struct stat st;
    if (!*s->cfg.targets_file)
        return;
    if (stat(s->cfg.targets_file, &st) < 0) {
        if (s->file_seen != -1)
            log_error("%s: cannot be read: the targets stay as they were", s->cfg.targets_file);
        s->file_seen = -1;
        return;
    }
    int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    if (s->file_seen == 1 && mtime == s->file_mtime_ns && (int64_t)st.st_size == s->file_size &&
        (int64_t)st.st_ino == s->file_ino)
        return;
    s->file_seen = 1;
    s->file_mtime_ns = mtime;
    s->file_size = (int64_t)st.st_size;
    s->file_ino = (int64_t)st.st_ino;
    apply(s);
}
