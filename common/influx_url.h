/*
 * The write URLs of the time-series stores (InfluxDB 1.x /write, 2.x /api/v2/write,
 * VictoriaMetrics /write), built with libcurl's URL API from the configured base URL: the
 * database, retention policy, organisation and bucket are percent-encoded as query values,
 * and whether the store is local is decided on the parsed host, not on the text.
 */
#ifndef DSF_INFLUX_URL_H
#define DSF_INFLUX_URL_H

#include <stddef.h>

struct influx_write_target {
    const char *url;          /* the store: http[s]://host[:port][/prefix] */
    const char *api;          /* v1, v2 or vm */
    const char *db, *rp;      /* v1; rp may be NULL or "" (the default policy) */
    const char *org, *bucket; /* v2 */
};

/* Writes the target's write URL to out (cap bytes). 0, or -1 with err (a base URL libcurl
 * cannot parse, an unknown api, a URL longer than cap). */
int influx_write_url(const struct influx_write_target *t, char *out, size_t cap, char *err,
                     size_t errlen);

/* InfluxDB 1.x's query URL of base: {base}/query?db=DB (db percent-encoded). 0, or -1 with
 * err as influx_write_url. */
int influx_query_url(const char *base, const char *db, char *out, size_t cap, char *err,
                     size_t errlen);

/* 1 when the URL's host is loopback: 127.0.0.0/8, ::1 (also as ::ffff:127.x.y.z) or
 * localhost; 0 otherwise, also for a URL that does not parse. */
int influx_url_is_loopback(const char *url);

#endif
