/*
 * The web console's sessions (docs/console.md): a login with the API token gets a random
 * 256-bit id, kept only in the controller's memory (a restart, with the same token or
 * another, ends them all), ending when unused for idle_ms or older than max_ms.
 */
#ifndef DSF_CONSOLE_SESSION_H
#define DSF_CONSOLE_SESSION_H

#include <stddef.h>
#include <stdint.h>

#define CONSOLE_SESSION_ID_LEN 64 /* hex digits: 32 random bytes */
#define CONSOLE_SESSIONS_MAX 1024 /* a login beyond it ends the least recently used */

struct console_sessions;

struct console_sessions *console_sessions_new(int64_t idle_ms, int64_t max_ms);
void console_sessions_free(struct console_sessions *cs);
/* A new session at now_ms; its id (CONSOLE_SESSION_ID_LEN hex digits and a NUL) in id.
 * 0, or -1 (no randomness, no memory). */
int console_session_create(struct console_sessions *cs, int64_t now_ms, char *id);
/* 1 when id names a live session (which counts as a use at now_ms), else 0; an expired one
 * is forgotten. */
int console_session_touch(struct console_sessions *cs, const char *id, int64_t now_ms);
/* Ends the session id; 1 when there was one. */
int console_session_end(struct console_sessions *cs, const char *id);
/* Live sessions at now_ms (the expired ones are forgotten on the way). */
size_t console_sessions_live(struct console_sessions *cs, int64_t now_ms);
/* The value of cookie name in a Cookie header ("a=1; dsf_session=ab..."), into out (cap
 * bytes); 0, or -1 when absent or too long. */
int console_cookie_get(const char *header, const char *name, char *out, size_t cap);

#endif
