#include "common/log.h"
#include "common/utf8.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum dsf_log_level current_level = DSF_LOG_INFO;
static enum dsf_log_format current_format = DSF_LOG_TEXT;
static int level_pinned;
static const char *const level_names[] = {"error", "warn", "info", "debug"};

void dsf_log_set_level(enum dsf_log_level level)
{
    current_level = level;
    level_pinned = 1;
}

void dsf_log_set_default_level(enum dsf_log_level level)
{
    if (!level_pinned)
        current_level = level;
}

enum dsf_log_level dsf_log_get_level(void)
{
    return current_level;
}

int dsf_log_parse_level(const char *name, enum dsf_log_level *out)
{
    for (int i = 0; i <= DSF_LOG_DEBUG; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *out = (enum dsf_log_level)i;
            return 0;
        }
    }
    return -1;
}

int dsf_log_parse_format(const char *name, enum dsf_log_format *out)
{
    if (strcmp(name, "text") == 0)
        *out = DSF_LOG_TEXT;
    else if (strcmp(name, "json") == 0)
        *out = DSF_LOG_JSON;
    else
        return -1;
    return 0;
}

void dsf_log_set_format(enum dsf_log_format format)
{
    current_format = format;
}

/* A JSON string body: quotes, backslashes and control characters escaped, bytes that are not
 * UTF-8 (messages may quote what came from the network) replaced by U+FFFD. */
static size_t json_escape(const char *s, char *out, size_t cap)
{
    size_t n = 0, left = strlen(s);
    while (left && n + 8 < cap) {
        unsigned char c = (unsigned char)*s;
        size_t seq = c < 0x80 ? 1 : utf8_sequence_len((const unsigned char *)s, left);
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else if (seq == 0) {
            memcpy(out + n, "\xef\xbf\xbd", 3);
            n += 3;
            seq = 1;
        } else {
            memcpy(out + n, s, seq);
            n += seq;
        }
        s += seq;
        left -= seq;
    }
    out[n] = '\0';
    return n;
}

void dsf_rfc3339_ms(int64_t ms, char out[DSF_RFC3339_LEN])
{
    /* Floor division: a time before 1970 keeps its milliseconds positive. */
    int64_t sec = ms / 1000, milli = ms % 1000;
    if (milli < 0) {
        milli += 1000;
        sec--;
    }
    time_t t = (time_t)sec;
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, DSF_RFC3339_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)milli);
}

void dsf_log(enum dsf_log_level level, const char *module, const char *fmt, ...)
{
    if (level > current_level)
        return;
    char line[1024];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    char stamp[DSF_RFC3339_LEN];
    dsf_rfc3339_ms((int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, stamp);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* One write per line so lines from several threads do not interleave. */
    if (current_format == DSF_LOG_JSON) {
        char msg[6 * sizeof(line) + 1];
        json_escape(line, msg, sizeof(msg));
        fprintf(stderr, "{\"time\":\"%s\",\"level\":\"%s\",\"module\":\"%s\",\"msg\":\"%s\"}\n",
                stamp, level_names[level], module, msg);
    } else {
        fprintf(stderr, "%s %-5s [%s] %s\n", stamp, level_names[level], module, line);
    }
}

int dsf_log_due(struct dsf_log_limit *limit, uint64_t *held_back)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (limit->last_ms && now - limit->last_ms < 60000) {
        limit->held_back++;
        return 0;
    }
    limit->last_ms = now;
    if (held_back)
        *held_back = limit->held_back;
    limit->held_back = 0;
    return 1;
}
