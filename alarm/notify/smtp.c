/*
 * SMTP with libcurl on the event loop (common/curl_loop.h, as the HTTP client), never
 * blocking it.
 */
#define DSF_MODULE "notify-smtp"
#include "alarm/notify/internal.h"
#include "common/curl_loop.h"
#include "common/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mail;

struct nf_smtp {
    struct dsf_curl_loop *loop;
    struct mail *mails;
};

struct mail {
    struct nf_smtp *s;
    struct mail *next, **pprev;
    CURL *easy;
    struct curl_slist *rcpt;
    char *msg;
    size_t len, off;
    nf_smtp_done done;
    void *arg;
    char error[CURL_ERROR_SIZE];
};

static void finish(struct mail *m, CURLcode code)
{
    long reply = 0;
    curl_easy_getinfo(m->easy, CURLINFO_RESPONSE_CODE, &reply);
    dsf_curl_loop_remove(m->s->loop, m->easy);
    *m->pprev = m->next;
    if (m->next)
        m->next->pprev = m->pprev;
    int ok = code == CURLE_OK;
    /* Refused TLS, refused login and 5xx replies will fail the same way again. */
    int transient = !ok && code != CURLE_USE_SSL_FAILED && code != CURLE_LOGIN_DENIED &&
                    code != CURLE_SSL_CACERT_BADFILE && code != CURLE_PEER_FAILED_VERIFICATION &&
                    !(reply >= 500 && reply < 600);
    char why[CURL_ERROR_SIZE + 64];
    snprintf(why, sizeof(why), "%s (last reply %ld)",
             m->error[0] ? m->error : curl_easy_strerror(code), reply);
    m->done(m->arg, ok, transient, ok ? NULL : why);
    curl_easy_cleanup(m->easy);
    curl_slist_free_all(m->rcpt);
    free(m->msg);
    free(m);
}

static void on_finished(void *ctx, CURL *easy, CURLcode result)
{
    struct mail *m;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&m);
    finish(m, result);
}

static size_t on_read(char *out, size_t size, size_t n, void *arg)
{
    struct mail *m = arg;
    size_t want = size * n, left = m->len - m->off;
    size_t k = want < left ? want : left;
    memcpy(out, m->msg + m->off, k);
    m->off += k;
    return k;
}

struct nf_smtp *nf_smtp_new(struct event_base *base)
{
    struct nf_smtp *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (!(s->loop = dsf_curl_loop_new(base, on_finished, s))) {
        free(s);
        return NULL;
    }
    return s;
}

static struct curl_slist *recipients(const char *to)
{
    struct curl_slist *l = NULL;
    const char *p = to;
    while (*p) {
        size_t n = strcspn(p, ",");
        char one[512];
        const char *start = p;
        while (start < p + n && *start == ' ')
            start++;
        snprintf(one, sizeof(one), "%.*s", (int)(p + n - start), start);
        /* "Name <addr>" → <addr> for the envelope. */
        char *lt = strchr(one, '<');
        const char *addr = lt ? lt : one;
        if (*addr) {
            struct curl_slist *next = curl_slist_append(l, addr);
            if (!next) {
                curl_slist_free_all(l);
                return NULL;
            }
            l = next;
        }
        p += n + (p[n] == ',');
    }
    return l;
}

static void envelope_from(const char *from, char *out, size_t cap)
{
    const char *lt = strchr(from, '<');
    snprintf(out, cap, "%s", lt ? lt : from);
}

int nf_smtp_send(struct nf_smtp *s, const struct nf_email_opts *o, const char *msg, size_t len,
                 nf_smtp_done done, void *arg)
{
    struct mail *m = calloc(1, sizeof(*m));
    if (!m)
        return -1;
    m->s = s;
    m->done = done;
    m->arg = arg;
    m->len = len;
    m->msg = malloc(len ? len : 1);
    m->easy = curl_easy_init();
    m->rcpt = recipients(o->to);
    if (!m->msg || !m->easy || !m->rcpt) {
        if (m->easy)
            curl_easy_cleanup(m->easy);
        curl_slist_free_all(m->rcpt);
        free(m->msg);
        free(m);
        return -1;
    }
    memcpy(m->msg, msg, len);
    const char *colon = strrchr(o->smarthost, ':');
    int implicit_tls = colon && strcmp(colon + 1, "465") == 0;
    char url[600], from[512];
    snprintf(url, sizeof(url), "%s://%s/%s", implicit_tls ? "smtps" : "smtp", o->smarthost,
             o->hello ? o->hello : "localhost");
    envelope_from(o->from, from, sizeof(from));
    CURL *e = m->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(e, CURLOPT_USE_SSL,
                     o->require_tls ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_TRY);
    curl_easy_setopt(e, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, m->rcpt);
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(e, CURLOPT_READDATA, m);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, m->error);
    curl_easy_setopt(e, CURLOPT_PRIVATE, m);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* A session per message: a cached connection of another receiver may be plain text
     * (require_tls false) and libcurl would reuse it for one that requires STARTTLS. */
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    if (o->auth_username && *o->auth_username) {
        curl_easy_setopt(e, CURLOPT_USERNAME, o->auth_username);
        curl_easy_setopt(e, CURLOPT_PASSWORD, o->auth_password ? o->auth_password : "");
    }
    if (o->ca_file && *o->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
    if (dsf_curl_loop_add(s->loop, e)) {
        curl_slist_free_all(m->rcpt);
        curl_easy_cleanup(e);
        free(m->msg);
        free(m);
        return -1;
    }
    m->next = s->mails;
    if (m->next)
        m->next->pprev = &m->next;
    m->pprev = &s->mails;
    s->mails = m;
    return 0;
}

void nf_smtp_free(struct nf_smtp *s)
{
    if (!s)
        return;
    while (s->mails) {
        snprintf(s->mails->error, sizeof(s->mails->error), "cancelled");
        finish(s->mails, CURLE_ABORTED_BY_CALLBACK);
    }
    dsf_curl_loop_free(s->loop);
    free(s);
}
