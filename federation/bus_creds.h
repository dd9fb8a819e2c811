/*
 * Broker credentials of the agents on the VMs the drivers create. Each agent logs in to the
 * broker as "{ns}/{mci}/{vm}" (the name the broker's ACL patterns substitute for %u), with a
 * random password generated when its VM is created and removed when the VM is terminated.
 * The user is kept in mosquitto's password file (bus.password_file) as a "$7$" line, the
 * PBKDF2-SHA512 format of mosquitto 2.0's mosquitto_passwd:
 *
 *     user:$7$101$<base64 of 12 salt bytes>$<base64 of the 64-byte hash>
 *
 * and the broker is told to reload it with SIGHUP (to the pid in bus.broker_pid_file).
 * The driver hands the password to the VM the way the agent itself gets there:
 * install-agent.sh for the local driver, the cloud-init user data for the tumblebug driver.
 *
 * Without bus.password_file nothing is provisioned: agents connect without credentials.
 */
#ifndef DSF_FED_BUS_CREDS_H
#define DSF_FED_BUS_CREDS_H

#include <stddef.h>

#include "federation/federation.h"

#define FED_BUS_USER_MAX (3 * FED_NAME_MAX)
#define FED_BUS_PASSWORD_MAX 64 /* a generated password and its NUL fit */
#define FED_BUS_HASH_ITERATIONS 101
#define FED_BUS_SALT_LEN 12
#define FED_BUS_LINE_MAX (FED_BUS_USER_MAX + 160)

struct fed_bus;

/*
 * password_file: mosquitto's password file (NULL or "": provisioning off); pid_file: where
 * the broker's pid is read for SIGHUP (NULL or "": the operator reloads the broker, which is
 * logged at each change). Neither file is touched until the first grant or revoke.
 */
struct fed_bus *fed_bus_open(const char *password_file, const char *pid_file,
                             struct fed_error *err);
void fed_bus_close(struct fed_bus *b);
/* Are credentials provisioned? 0 for a NULL handle. */
int fed_bus_enabled(const struct fed_bus *b);

/* "{ns}/{mci}/{vm}"; -1 when it does not fit len. */
int fed_bus_username(const char *ns, const char *mci, const char *vm, char *out, size_t len);

/*
 * Generates a password for user (into password, len >= FED_BUS_PASSWORD_MAX), puts the user
 * into the password file (replacing an earlier line of the same user) and reloads the
 * broker. A failed reload is logged, not returned: the file is right and the agent retries.
 */
int fed_bus_grant(struct fed_bus *b, const char *user, char *password, size_t len,
                  struct fed_error *err);
/* Removes user from the password file (nothing to do when absent) and reloads the broker. */
int fed_bus_revoke(struct fed_bus *b, const char *user, struct fed_error *err);

/*
 * For a new VM: its agent's user name ("{ns}/{mci}/{vm}") into user and, when provisioning
 * is on, the password granted to it into password ("" when off, which is warned about once
 * per process). 0, or -1 with err (nothing granted).
 */
int fed_bus_provision(struct fed_bus *b, const char *ns, const char *mci, const char *vm,
                      char *user, size_t ulen, char *password, size_t plen, struct fed_error *err);
/* When the VM goes: revokes "{ns}/{mci}/{vm}" (0 at once when provisioning is off). */
int fed_bus_revoke_vm(struct fed_bus *b, const char *ns, const char *mci, const char *vm,
                      struct fed_error *err);

/* ---- the "$7$" line, exposed for tests ---- */

/* "user:$7$<iterations>$<salt>$<hash>" for password and salt; -1 when out is too small or
 * hashing failed. */
int fed_bus_hash_line(const char *user, const char *password, const unsigned char *salt,
                      size_t salt_len, int iterations, char *out, size_t len);
/* Does line ("user:$7$...", no newline) hold password? 1 yes, 0 no, -1 not a $7$ line. */
int fed_bus_check_line(const char *line, const char *password);

#endif
