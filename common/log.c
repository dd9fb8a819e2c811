#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum dsf_log_level current_level = DSF_LOG_INFO;
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

void dsf_log(enum dsf_log_level level, const char *module, const char *fmt, ...)
{
    if (level > current_level)
        return;
    char line[1024];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s [%s] ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     now.tv_nsec / 1000000, level_names[level], module);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof(line))
        vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One write per line so lines from several threads do not interleave. */
    fprintf(stderr, "%s\n", line);
}
