/* Logging with levels; every line names its module. */
#ifndef DSF_LOG_H
#define DSF_LOG_H

#include <stdint.h>

enum dsf_log_level { DSF_LOG_ERROR = 0, DSF_LOG_WARN, DSF_LOG_INFO, DSF_LOG_DEBUG };
/* text: "2026-01-02T03:04:05.678Z info  [module] message"; json: one object per line with
 * time, level, module and msg (for log shippers). */
enum dsf_log_format { DSF_LOG_TEXT = 0, DSF_LOG_JSON };

void dsf_log_set_level(enum dsf_log_level level);
/* Applies a level from a config file unless --log-level already set one. */
void dsf_log_set_default_level(enum dsf_log_level level);
enum dsf_log_level dsf_log_get_level(void);
/* Returns 0 and sets *out for "error", "warn", "info" or "debug"; -1 otherwise. */
int dsf_log_parse_level(const char *name, enum dsf_log_level *out);
/* Returns 0 and sets *out for "text" or "json"; -1 otherwise. */
int dsf_log_parse_format(const char *name, enum dsf_log_format *out);
void dsf_log_set_format(enum dsf_log_format format);

/* Wall-clock milliseconds as RFC 3339 UTC with milliseconds ("2026-01-02T03:04:05.678Z"):
 * the one form of log lines, audit records and the controller's API. */
#define DSF_RFC3339_LEN 32
void dsf_rfc3339_ms(int64_t ms, char out[DSF_RFC3339_LEN]);

void dsf_log(enum dsf_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* What repeats is logged once, then at most once a minute (counters carry the rest):
 * dsf_log_due returns 1 when the caller may log now, with *held_back the number of times it
 * was told not to since the last time (NULL when not wanted). Start from {0}. */
struct dsf_log_limit {
    int64_t last_ms;
    uint64_t held_back;
};
int dsf_log_due(struct dsf_log_limit *limit, uint64_t *held_back);

/* Each .c file defines DSF_MODULE before including this header. */
#define log_error(...) dsf_log(DSF_LOG_ERROR, DSF_MODULE, __VA_ARGS__)
#define log_warn(...) dsf_log(DSF_LOG_WARN, DSF_MODULE, __VA_ARGS__)
#define log_info(...) dsf_log(DSF_LOG_INFO, DSF_MODULE, __VA_ARGS__)
#define log_debug(...)                                                                             \
    do {                                                                                           \
        if (dsf_log_get_level() >= DSF_LOG_DEBUG)                                                  \
            dsf_log(DSF_LOG_DEBUG, DSF_MODULE, __VA_ARGS__);                                       \
    } while (0)

#endif
