/* The email: an RFC 5322 message (CRLF line ends) listing the group's alerts. */
#include "alarm/notify/internal.h"

#include "common/base64.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Header values must be 7-bit: anything else goes as an RFC 2047 encoded word. */
static void put_header_text(struct dsf_buf *out, const char *s)
{
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c >= 0x80) {
            buf_puts(out, "=?UTF-8?B?");
            dsf_base64_append(out, s, strlen(s));
            buf_puts(out, "?=");
            return;
        }
    }
    buf_puts(out, s);
}

static void put_date(struct dsf_buf *out, int64_t now_ns)
{
    time_t t = (time_t)(now_ns / 1000000000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char b[64];
    /* Day and month names are fixed by RFC 5322, whatever the locale. */
    static const char *days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    snprintf(b, sizeof(b), "%s, %02d %s %04d %02d:%02d:%02d +0000", days[tm.tm_wday], tm.tm_mday,
             months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    buf_puts(out, b);
}

static void put_message_id(struct dsf_buf *out, const char *from, int64_t now_ns)
{
    uint64_t r = 0;
    if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
        r = (uint64_t)now_ns * 2654435761u;
    const char *at = strrchr(from, '@');
    char domain[256];
    snprintf(domain, sizeof(domain), "%s", at ? at + 1 : "damselfly.localdomain");
    domain[strcspn(domain, "> \t")] = '\0';
    buf_printf(out, "<%" PRId64 ".%016" PRIx64 "@%s>", now_ns, r, *domain ? domain : "localhost");
}

void nf_email_render(const struct nf_email_opts *o, const struct nf_message *m, int64_t now_ns,
                     struct dsf_buf *out)
{
    struct dsf_buf title = {0};
    nf_title(m, &title);
    buf_printf(out, "From: %s\r\nTo: %s\r\nSubject: ", o->from, o->to);
    put_header_text(out, buf_cstr(&title));
    buf_puts(out, "\r\nDate: ");
    put_date(out, now_ns);
    buf_puts(out, "\r\nMessage-ID: ");
    put_message_id(out, o->from, now_ns);
    buf_puts(out, "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\n"
                  "Content-Transfer-Encoding: 8bit\r\n\r\n");
    buf_puts(out, buf_cstr(&title));
    buf_puts(out, "\r\n\r\n");
    nf_alert_lines(m, "\r\n", out);
    if (m->external_url && *m->external_url)
        buf_printf(out, "\r\n%s\r\n", m->external_url);
    buf_free(&title);
}
