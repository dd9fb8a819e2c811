/*
 * The credentials exporter targets are asked with, as a Prometheus scrape config's
 * authorization and basic_auth give them: a bearer token or a user name and password. The
 * secrets come from files (never the command line, where ps shows them), read at the start
 * and again at SIGHUP, so a rotated secret needs no restart.
 */
#define DSF_MODULE "scraper"
#include "common/http.h"
#include "scraper/scraper.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

/* 0, or -1 with why: the header (or the password) is left as it was. */
static int read_secrets(struct scraper *s, char *why, size_t cap)
{
    char secret[DSF_HTTP_TOKEN_MAX + 1], err[400];
    const struct scraper_config *c = &s->cfg;
    if (*c->exporter_token_file) {
        if (dsf_http_token_read(c->exporter_token_file, secret, err, sizeof(err)) < 0) {
            snprintf(why, cap, "scrape.exporter_token_file: %s", err);
            return -1;
        }
        snprintf(s->exporter_auth_header, sizeof(s->exporter_auth_header),
                 "Authorization: Bearer %s", secret);
    }
    if (*c->exporter_password_file) {
        if (dsf_http_token_read(c->exporter_password_file, secret, err, sizeof(err)) < 0) {
            snprintf(why, cap, "scrape.exporter_password_file: %s", err);
            return -1;
        }
        snprintf(s->exporter_password, sizeof(s->exporter_password), "%s", secret);
    }
    return 0;
}

int credentials_load(struct scraper *s, char *err, size_t errlen)
{
    return read_secrets(s, err, errlen);
}

void credentials_reload(struct scraper *s)
{
    char why[500];
    if (read_secrets(s, why, sizeof(why)) < 0)
        log_warn("%s: exporters are still asked with the credentials read before", why);
}

int credentials_apply(const struct scraper *s, void *easy, struct curl_slist **headers)
{
    if (*s->exporter_auth_header &&
        !(*headers = curl_slist_append(*headers, s->exporter_auth_header)))
        return -1;
    if (*s->cfg.exporter_username) {
        curl_easy_setopt(easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(easy, CURLOPT_USERNAME, s->cfg.exporter_username);
        curl_easy_setopt(easy, CURLOPT_PASSWORD, s->exporter_password);
    }
    return 0;
}
