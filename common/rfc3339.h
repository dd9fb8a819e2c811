/*
 * RFC 3339 timestamps as Alertmanager and the silences API write them. One strict parser for
 * every input that takes them, so a time one daemon accepts the others accept too.
 */
#ifndef DSF_RFC3339_H
#define DSF_RFC3339_H

#include <stdint.h>

/* "2026-01-02T03:04:05Z", with an optional fraction (".678", up to nanoseconds; further
 * digits are below the clock's resolution and dropped) and "Z" or a "+hh:mm"/"-hh:mm" offset;
 * 't' and 'z' may be lower case (RFC 3339 5.6). Go's zero time (0001-01-01T00:00:00Z, which
 * Alertmanager writes for "not set") gives 0. 0 and *ns Unix nanoseconds, or -1 when s is not
 * such a time (a field out of range, a day the month does not have, anything after the
 * offset) or lies outside what int64 nanoseconds hold (1677 to 2262). */
int dsf_rfc3339_parse(const char *s, int64_t *ns);

#endif
