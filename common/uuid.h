/*
 * Random (version 4) UUIDs, the ids Alertmanager gives silences: the alarm engine makes them,
 * and the controller makes one for a silence it creates in every engine under the same id.
 */
#ifndef DSF_UUID_H
#define DSF_UUID_H

#define DSF_UUID_LEN 36 /* without the NUL */

/* out holds DSF_UUID_LEN + 1 bytes: lower-case hex in the 8-4-4-4-12 form. */
void dsf_uuid4(char *out);
/* 1 when s is an id a client may name a silence by: 1 to DSF_UUID_LEN letters, digits and
 * dashes (what goes into a URL path as it is). */
int dsf_uuid_like(const char *s);

#endif
