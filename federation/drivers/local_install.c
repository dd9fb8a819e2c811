/* The local driver's cloud-init part: a VM's directory, install-agent.sh into it, the
 * spec's user data, and the logs they leave. */
#define DSF_MODULE "fed-local"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "federation/bus_creds.h"
#include "federation/driver.h"
#include "federation/drivers/local.h"
#include "federation/drivers/local_proc.h"

/* -1 when the path does not fit: the state directory's path is too long. */
int local_vm_dir(const struct local *l, const struct fed_vm *vm, char *buf, size_t len)
{
    return snprintf(buf, len, "%s/vms/%s/%s/%s", l->dir, vm->ns, vm->mci, vm->id) < (int)len ? 0
                                                                                             : -1;
}

int local_open_log(const char *dir, const char *name, int trunc, struct fed_error *err)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (trunc ? O_TRUNC : O_APPEND), 0640);
    if (fd < 0)
        fed_fail(err, FED_EIO, "open", errno, "%s: %s", path, strerror(errno));
    return fd;
}

/* The last lines of a log, on one line, for error messages. */
const char *local_log_tail(const char *dir, const char *name, char *buf, size_t len)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    buf[0] = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return buf;
    off_t end = lseek(fd, 0, SEEK_END);
    off_t from = end > (off_t)len - 1 ? end - (off_t)len + 1 : 0;
    ssize_t n = pread(fd, buf, len - 1, from);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    for (char *p = buf; *p; p++) {
        if (*p == '\n' || *p == '\r')
            *p = *(p + 1) ? ' ' : 0;
    }
    return buf;
}

/* PATH and the sanitizer settings only: nothing of the host's environment (DAMSELFLY_*
 * variables above all) may change what an agent does. */
char **local_vm_env(const struct fed_vm *vm, const char *dir)
{
    static const char *const pass[] = {"ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", NULL};
    char **env = calloc(16, sizeof(char *));
    size_t n = 0;
    if (!env)
        return NULL;
    if (asprintf(&env[n++], "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") <
            0 ||
        asprintf(&env[n++], "DSF_VM_DIR=%s", dir) < 0 ||
        asprintf(&env[n++], "DSF_NS=%s", vm->ns) < 0 ||
        asprintf(&env[n++], "DSF_MCI=%s", vm->mci) < 0 ||
        asprintf(&env[n++], "DSF_VM=%s", vm->id) < 0 ||
        asprintf(&env[n++], "DSF_CSP=%s", vm->spec.csp) < 0 ||
        asprintf(&env[n++], "DSF_REGION=%s", vm->spec.region) < 0)
        env[--n] = NULL;
    for (const char *const *p = pass; *p; p++) {
        const char *v = getenv(*p);
        if (v && asprintf(&env[n], "%s=%s", *p, v) >= 0)
            n++;
    }
    return env;
}

void local_free_strv(char **v)
{
    for (char **p = v; p && *p; p++)
        free(*p);
    free(v);
}

/* argv in the VM's directory with the VM's environment, its output in log (truncated
 * first), bounded by install_timeout. */
static int run_logged(struct local *l, const struct fed_vm *vm, const char *dir, const char *call,
                      char *const *argv, const char *log, struct fed_error *err)
{
    char **env = local_vm_env(vm, dir);
    int fd = local_open_log(dir, log, 1, err);
    int rc = -1;
    if (fd >= 0 && env)
        rc = lp_run(call, argv, env, dir, fd, l->o->install_timeout_ms, err);
    else if (fd >= 0)
        fed_fail(err, FED_EIO, call, ENOMEM, "out of memory");
    if (fd >= 0)
        close(fd);
    local_free_strv(env);
    return rc;
}

/* The password in a 0600 file of the VM's directory, for --mqtt-password-file: never on a
 * command line, which every user of the host can read. */
static int write_password_file(const char *dir, const char *password, char *path, size_t len,
                               struct fed_error *err)
{
    if (snprintf(path, len, "%s/.mqtt-password.XXXXXX", dir) >= (int)len)
        return fed_fail(err, FED_EIO, "password file", ENAMETOOLONG, "%s: path too long", dir);
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) {
        fed_fail(err, FED_EIO, "password file", errno, "%s: %s", path, strerror(errno));
        path[0] = 0;
        return -1;
    }
    size_t n = strlen(password);
    int ok = write(fd, password, n) == (ssize_t)n;
    if (close(fd) != 0 || !ok)
        return fed_fail(err, FED_EIO, "password file", errno, "%s: %s", path, strerror(errno));
    return 0;
}

/* install-agent.sh with the VM's values; user and pwfile are "" without credentials. */
static int run_install(struct local *l, const struct fed_vm *vm, const char *dir, int port,
                       const char *user, const char *pwfile, struct fed_error *err)
{
    char listen[64], interval[32];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    snprintf(interval, sizeof(interval), "%lldms", (long long)l->o->interval_ms);
    char *argv[] = {"/bin/bash",
                    l->install,
                    "--prefix",
                    (char *)dir,
                    "--no-start",
                    "--binary",
                    l->agent,
                    "--ns",
                    (char *)vm->ns,
                    "--mci",
                    (char *)vm->mci,
                    "--vm",
                    (char *)vm->id,
                    "--host",
                    (char *)vm->id,
                    "--csp",
                    (char *)vm->spec.csp,
                    "--region",
                    (char *)vm->spec.region,
                    "--mqtt-url",
                    l->o->mqtt_url,
                    "--http-listen",
                    listen,
                    "--interval",
                    interval,
                    "--user",
                    l->o->agent_user,
                    NULL,
                    NULL,
                    NULL,
                    NULL,
                    NULL};
    if (user[0]) {
        size_t n = sizeof(argv) / sizeof(argv[0]) - 5;
        argv[n++] = "--mqtt-username";
        argv[n++] = (char *)user;
        argv[n++] = "--mqtt-password-file";
        argv[n++] = (char *)pwfile;
    }
    int rc = run_logged(l, vm, dir, "install-agent.sh", argv, "install.log", err);
    if (rc < 0) {
        char tail[300];
        size_t n = strlen(err ? err->message : "");
        if (err)
            snprintf(err->message + n, sizeof(err->message) - n, ": %s",
                     local_log_tail(dir, "install.log", tail, sizeof(tail)));
    }
    return rc;
}

int local_install_agent(struct local *l, const struct fed_vm *vm, const char *dir, int port,
                        struct fed_error *err)
{
    char user[FED_BUS_USER_MAX + 1], password[FED_BUS_PASSWORD_MAX], pwfile[PATH_MAX] = "";
    if (fed_bus_provision(l->bus, vm->ns, vm->mci, vm->id, user, sizeof(user), password,
                          sizeof(password), err) < 0)
        return -1;
    int creds = password[0] != 0;
    int rc = creds ? write_password_file(dir, password, pwfile, sizeof(pwfile), err) : 0;
    explicit_bzero(password, sizeof(password));
    if (rc == 0)
        rc = run_install(l, vm, dir, port, creds ? user : "", pwfile, err);
    if (pwfile[0])
        unlink(pwfile);
    struct fed_error e;
    /* Nothing was installed that could use them. */
    if (rc < 0 && creds && fed_bus_revoke_vm(l->bus, vm->ns, vm->mci, vm->id, &e) < 0)
        log_warn("%s: %s", user, e.message);
    return rc;
}

/* The spec's user data, run as cloud-init runs a user script: after the agent is in place. */
int local_run_user_data(struct local *l, const struct fed_vm *vm, const char *dir,
                        struct fed_error *err)
{
    if (!vm->spec.user_data)
        return 0;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/user-data", dir);
    FILE *f = fopen(path, "we");
    if (!f || fputs(vm->spec.user_data, f) < 0 || fclose(f) != 0)
        return fed_fail(err, FED_EIO, "write user data", errno, "%s: %s", path, strerror(errno));
    chmod(path, 0700);
    char *argv[] = {"/bin/sh", path, NULL};
    return run_logged(l, vm, dir, "user data", argv, "user-data.log", err);
}
