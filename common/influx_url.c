#include "common/influx_url.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct query_param {
    const char *name, *value; /* value NULL or "": left out */
};

/* The base URL's path with the endpoint after it: "/influx/" + "write" -> "/influx/write". */
static int set_endpoint(CURLU *u, const char *endpoint, char *err, size_t errlen)
{
    char *path = NULL;
    if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) {
        snprintf(err, errlen, "output URL: no path");
        return -1;
    }
    size_t n = strlen(path);
    while (n && path[n - 1] == '/')
        n--;
    char full[1024];
    int len = snprintf(full, sizeof(full), "%.*s/%s", (int)n, path, endpoint);
    curl_free(path);
    if (len < 0 || (size_t)len >= sizeof(full)) {
        snprintf(err, errlen, "output URL too long");
        return -1;
    }
    return curl_url_set(u, CURLUPART_PATH, full, 0) == CURLUE_OK ? 0 : -1;
}

/* Appends name=value to the query; libcurl percent-encodes the value (not the first '='). */
static int add_param(CURLU *u, const struct query_param *p)
{
    if (!p->value || !*p->value)
        return 0;
    char pair[1024];
    int len = snprintf(pair, sizeof(pair), "%s=%s", p->name, p->value);
    if (len < 0 || (size_t)len >= sizeof(pair))
        return -1;
    return curl_url_set(u, CURLUPART_QUERY, pair, CURLU_APPENDQUERY | CURLU_URLENCODE) == CURLUE_OK
               ? 0
               : -1;
}

/* The endpoint and query parameters of t's API. */
static int target_params(const struct influx_write_target *t, struct query_param *params, size_t *n,
                         const char **endpoint, char *err, size_t errlen)
{
    *endpoint = "write";
    if (strcmp(t->api, "v1") == 0) {
        params[0] = (struct query_param){"db", t->db};
        params[1] = (struct query_param){"rp", t->rp};
        *n = 2;
    } else if (strcmp(t->api, "v2") == 0) {
        params[0] = (struct query_param){"org", t->org};
        params[1] = (struct query_param){"bucket", t->bucket};
        *n = 2;
        *endpoint = "api/v2/write";
    } else if (strcmp(t->api, "vm") == 0) {
        *n = 0;
    } else {
        snprintf(err, errlen, "output.api '%s': expected v1, v2 or vm", t->api);
        return -1;
    }
    params[(*n)++] = (struct query_param){"precision", "ns"};
    return 0;
}

static int compose(CURLU *u, const char *endpoint, const struct query_param *params, size_t n,
                   char *err, size_t errlen)
{
    if (set_endpoint(u, endpoint, err, errlen))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (add_param(u, &params[i])) {
            snprintf(err, errlen, "output URL: cannot add %s", params[i].name);
            return -1;
        }
    return 0;
}

/* base's URL with the endpoint and params, into out. */
static int build_url(const char *base, const char *endpoint, const struct query_param *params,
                     size_t n, char *out, size_t cap, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *url = NULL;
    int rc = -1;
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    CURLUcode uc = curl_url_set(u, CURLUPART_URL, base, 0);
    if (uc != CURLUE_OK)
        snprintf(err, errlen, "output URL '%s': %s", base, curl_url_strerror(uc));
    else if (compose(u, endpoint, params, n, err, errlen) == 0 &&
             curl_url_get(u, CURLUPART_URL, &url, 0) == CURLUE_OK) {
        if (strlen(url) < cap) {
            memcpy(out, url, strlen(url) + 1);
            rc = 0;
        } else {
            snprintf(err, errlen, "output URL too long");
        }
    }
    curl_free(url);
    curl_url_cleanup(u);
    return rc;
}

int influx_write_url(const struct influx_write_target *t, char *out, size_t cap, char *err,
                     size_t errlen)
{
    struct query_param params[3];
    size_t n;
    const char *endpoint;
    if (target_params(t, params, &n, &endpoint, err, errlen) < 0)
        return -1;
    return build_url(t->url, endpoint, params, n, out, cap, err, errlen);
}

int influx_query_url(const char *base, const char *db, char *out, size_t cap, char *err,
                     size_t errlen)
{
    const struct query_param params[] = {{"db", db}};
    return build_url(base, "query", params, 1, out, cap, err, errlen);
}

static int loopback_address(const char *host)
{
    struct in_addr v4;
    struct in6_addr v6;
    char bare[INET6_ADDRSTRLEN + 2];
    size_t n = strlen(host);
    if (inet_pton(AF_INET, host, &v4) == 1)
        return (ntohl(v4.s_addr) >> 24) == 127;
    if (n < 2 || n - 2 >= sizeof(bare) || host[0] != '[' || host[n - 1] != ']')
        return 0;
    memcpy(bare, host + 1, n - 2);
    bare[n - 2] = '\0';
    if (inet_pton(AF_INET6, bare, &v6) != 1)
        return 0;
    return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
}

int influx_url_is_loopback(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL;
    int local = 0;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        local = strcasecmp(host, "localhost") == 0 || strcasecmp(host, "localhost.") == 0 ||
                loopback_address(host);
    curl_free(host);
    curl_url_cleanup(u);
    return local;
}
