/*
 * The checks of the string row types (DSF_CFG_TOPIC, _ID, _URL, _MQTT_URL, _FILE): values
 * that load fine but break something later (a wildcard in a topic to publish on makes the
 * broker drop the connection; a URL paho cannot parse is retried forever; a missing TLS file
 * shows only at the first connection) are refused at start and by --check.
 */
#include "common/config_impl.h"
#include "common/utf8.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define ID_MAX 63
#define TOPIC_MAX 65535

static int has_control(const char *v)
{
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 1;
    return 0;
}

int dsf_check_id(const char *v, char *why, size_t whylen)
{
    size_t n = strlen(v);
    if (n == 0)
        return dsf_fail(why, whylen, "an id may not be empty");
    if (n > ID_MAX)
        return dsf_fail(why, whylen, "%zu bytes: an id has at most %d", n, ID_MAX);
    if (!utf8_valid(v, n))
        return dsf_fail(why, whylen, "not valid UTF-8");
    if (has_control(v))
        return dsf_fail(why, whylen, "control characters are not allowed");
    if (strpbrk(v, "/+#"))
        return dsf_fail(why, whylen,
                        "'/', '+' and '#' are not allowed (the id is an MQTT client id and a "
                        "topic segment)");
    if (isspace((unsigned char)v[0]) || isspace((unsigned char)v[n - 1]))
        return dsf_fail(why, whylen, "spaces at the start or the end are not allowed");
    return 0;
}

int dsf_check_topic(const char *v, char *why, size_t whylen)
{
    size_t n = strlen(v);
    if (n == 0)
        return dsf_fail(why, whylen, "a topic may not be empty");
    if (n > TOPIC_MAX)
        return dsf_fail(why, whylen, "%zu bytes: a topic has at most %d", n, TOPIC_MAX);
    if (!utf8_valid(v, n))
        return dsf_fail(why, whylen, "not valid UTF-8");
    if (has_control(v))
        return dsf_fail(why, whylen, "control characters are not allowed");
    if (strpbrk(v, "+#"))
        return dsf_fail(why, whylen,
                        "the wildcards '+' and '#' are not allowed: messages are published "
                        "here, so it must be one concrete topic");
    if (v[0] == '$')
        return dsf_fail(why, whylen, "topics starting with '$' belong to the broker");
    return 0;
}

/* host: a name (letters, digits, - . _ ~ and %XX) or a [v6] address. */
static int check_host(const char *h, size_t n, char *why, size_t whylen)
{
    if (n == 0)
        return dsf_fail(why, whylen, "no host");
    if (h[0] == '[') {
        if (n < 3 || h[n - 1] != ']')
            return dsf_fail(why, whylen, "an IPv6 address needs its closing ']'");
        for (size_t i = 1; i < n - 1; i++)
            if (!isxdigit((unsigned char)h[i]) && !strchr(":.%", h[i]))
                return dsf_fail(why, whylen, "'%.*s' is not an IPv6 address", (int)n, h);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)h[i]) && !strchr("-._~%", h[i]))
            return dsf_fail(why, whylen, "'%.*s' is not a host name", (int)n, h);
    return 0;
}

/* [userinfo@]host[:port] */
static int check_authority(const char *a, size_t n, int userinfo, char *why, size_t whylen)
{
    const char *at = memrchr(a, '@', n);
    if (at && !userinfo)
        return dsf_fail(why, whylen, "user names go in their own keys, not in the URL");
    if (at) {
        n -= (size_t)(at + 1 - a);
        a = at + 1;
    }
    const char *bracket = memchr(a, ']', n);
    const char *colon =
        memrchr(bracket ? bracket : a, ':', n - (size_t)(bracket ? bracket - a : 0));
    size_t hostlen = colon ? (size_t)(colon - a) : n;
    if (check_host(a, hostlen, why, whylen))
        return -1;
    if (!colon)
        return 0;
    const char *p = colon + 1, *end = a + n;
    long port = 0;
    if (p == end || end - p > 5)
        return dsf_fail(why, whylen, "the port must be a number of 1-65535");
    for (; p < end; p++) {
        if (!isdigit((unsigned char)*p))
            return dsf_fail(why, whylen, "the port must be a number of 1-65535");
        port = port * 10 + (*p - '0');
    }
    if (port < 1 || port > 65535)
        return dsf_fail(why, whylen, "the port must be a number of 1-65535");
    return 0;
}

static int scheme_allowed(const char *v, size_t n, const char *const *schemes)
{
    for (; *schemes; schemes++)
        if (strlen(*schemes) == n && strncasecmp(v, *schemes, n) == 0)
            return 1;
    return 0;
}

static void list_schemes(const char *const *schemes, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (const char *const *s = schemes; *s && len < cap; s++)
        len += (size_t)snprintf(out + len, cap - len, "%s%s://", s == schemes ? "" : ", ", *s);
}

int dsf_check_url(const char *v, const char *const *schemes, int with_path, char *why,
                  size_t whylen)
{
    char allowed[200];
    list_schemes(schemes, allowed, sizeof(allowed));
    const char *sep = strstr(v, "://");
    if (!sep || !scheme_allowed(v, (size_t)(sep - v), schemes))
        return dsf_fail(why, whylen, "expected a URL starting with %s", allowed);
    if (has_control(v) || strpbrk(v, " \t"))
        return dsf_fail(why, whylen, "spaces and control characters are not allowed");
    const char *auth = sep + 3;
    size_t n = strcspn(auth, "/?#");
    int userinfo = with_path; /* the web's URLs may carry user:password@ */
    if (check_authority(auth, n, userinfo, why, whylen))
        return -1;
    const char *rest = auth + n;
    if (!with_path && *rest && strcmp(rest, "/") != 0)
        return dsf_fail(why, whylen, "nothing may follow host:port here");
    return 0;
}

static const char *const http_schemes[] = {"http", "https", NULL};
/* What paho accepts (MQTTAsync_createWithOptions, MQTTASYNC_BAD_PROTOCOL). */
static const char *const mqtt_schemes[] = {"tcp", "mqtt", "ssl", "mqtts", "ws", "wss", NULL};

/* Only the websocket schemes take a path (the broker's websocket endpoint). */
static int check_mqtt_url(const char *v, char *why, size_t whylen)
{
    int ws = strncasecmp(v, "ws://", 5) == 0 || strncasecmp(v, "wss://", 6) == 0;
    return dsf_check_url(v, mqtt_schemes, ws, why, whylen);
}

/* The value as it can be printed in one line, cut at about 200 bytes. */
static void printable(const char *v, char *out, size_t cap)
{
    utf8_printable(v, strlen(v), out, cap < 206 ? cap : 206);
}

int dsf_cfg_check_value(const struct dsf_cfg_key *k, const char *name, const char *value,
                        const char *origin, char *err, size_t errlen)
{
    char why[300];
    int rc = 0;
    if (!*value)
        return 0;
    switch (k->type) {
    case DSF_CFG_TOPIC:
        rc = dsf_check_topic(value, why, sizeof(why));
        break;
    case DSF_CFG_ID:
        rc = dsf_check_id(value, why, sizeof(why));
        break;
    case DSF_CFG_URL:
        rc = dsf_check_url(value, http_schemes, 1, why, sizeof(why));
        break;
    case DSF_CFG_MQTT_URL:
        rc = check_mqtt_url(value, why, sizeof(why));
        break;
    default:
        return 0;
    }
    if (rc == 0)
        return 0;
    char shown[210 * 4];
    printable(value, shown, sizeof(shown));
    snprintf(err, errlen, "%s: key '%s': '%s': %s", origin, name, shown, why);
    return -1;
}

static int check_file(const char *name, const char *path, const char *origin, char *err,
                      size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    const char *why = NULL;
    if (fd < 0)
        why = strerror(errno);
    else if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
        why = "a directory, not a file";
    if (fd >= 0)
        close(fd);
    if (!why)
        return 0;
    char shown[210 * 4];
    printable(path, shown, sizeof(shown));
    snprintf(err, errlen, "%s: key '%s': cannot read '%s': %s", origin, name, shown, why);
    return -1;
}

int dsf_cfg_check_files(const struct dsf_cfg_section *secs, const char *origin, char *err,
                        size_t errlen)
{
    for (; secs->keys; secs++)
        for (const struct dsf_cfg_key *k = secs->keys; k->key; k++) {
            if (k->type != DSF_CFG_FILE)
                continue;
            const char *path = *(char **)((char *)secs->obj + k->offset);
            if (!path || !*path)
                continue;
            char full[256];
            snprintf(full, sizeof(full), "%s%s%s", secs->prefix, *secs->prefix ? "." : "", k->key);
            if (check_file(full, path, origin, err, errlen))
                return -1;
        }
    return 0;
}
