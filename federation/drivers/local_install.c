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

#include "common/buf.h"
#include "common/http.h"
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

enum fed_monitoring local_monitoring(const struct fed_vm *vm, struct fed_monitoring_spec *ms)
{
    if (fed_spec_monitoring(&vm->spec, ms, NULL) < 0)
        ms->mode = FED_MONITOR_PUSH;
    return ms->mode;
}

int local_pull_token(const struct local *l, char *path, size_t len, char *token,
                     struct fed_error *err)
{
    char buf[DSF_HTTP_TOKEN_MAX + 1], why[512];
    int created;
    if (snprintf(path, len, "%s/pull.token", l->dir) >= (int)len)
        return fed_fail(err, FED_EIO, "pull token", ENAMETOOLONG, "%s: path too long", l->dir);
    if (dsf_http_token_file(path, token ? token : buf, &created, why, sizeof(why)) < 0)
        return fed_fail(err, FED_EIO, "pull token", 0, "%s", why);
    if (created)
        log_info("pull agents' token made in %s", path);
    explicit_bzero(buf, sizeof(buf));
    return 0;
}

/* s with each "{port}" replaced, malloc'd. */
static char *with_port(const char *s, int port)
{
    static const char mark[] = "{port}";
    char num[16];
    snprintf(num, sizeof(num), "%d", port);
    struct dsf_buf b = {0};
    for (const char *p = s;;) {
        const char *hit = strstr(p, mark);
        buf_put(&b, p, hit ? (size_t)(hit - p) : strlen(p));
        if (!hit)
            break;
        buf_puts(&b, num);
        p = hit + sizeof(mark) - 1;
    }
    char *out = b.oom ? NULL : strdup(buf_cstr(&b));
    buf_free(&b);
    return out;
}

char **local_workload_argv(const struct fed_vm *vm, int port)
{
    size_t n = 0;
    while (vm->spec.workload && vm->spec.workload[n])
        n++;
    if (!n)
        return NULL;
    char **argv = calloc(n + 1, sizeof(char *));
    for (size_t i = 0; argv && i < n; i++) {
        if (!(argv[i] = with_port(vm->spec.workload[i], port))) {
            local_free_strv(argv);
            return NULL;
        }
    }
    return argv;
}

/* install-agent.sh with the VM's values: a push agent gets the broker (user and pwfile ""
 * without credentials), a pull agent push off and the pull token. */
static int run_install(struct local *l, const struct fed_vm *vm, const char *dir, int port,
                       const char *user, const char *pwfile, const char *token_file,
                       struct fed_error *err)
{
    char listen[64], interval[32];
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    snprintf(interval, sizeof(interval), "%lldms", (long long)l->o->interval_ms);
    char *argv[40] = {"/bin/bash",
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
                      "--http-listen",
                      listen,
                      "--interval",
                      interval,
                      "--user",
                      l->o->agent_user};
    size_t n = 25;
    if (token_file) {
        argv[n++] = "--push";
        argv[n++] = "off";
        argv[n++] = "--http-token-file";
        argv[n++] = (char *)token_file;
    } else {
        argv[n++] = "--mqtt-url";
        argv[n++] = l->o->mqtt_url;
    }
    if (user[0]) {
        argv[n++] = "--mqtt-username";
        argv[n++] = (char *)user;
        argv[n++] = "--mqtt-password-file";
        argv[n++] = (char *)pwfile;
    }
    int rc = run_logged(l, vm, dir, "install-agent.sh", argv, "install.log", err);
    if (rc < 0) {
        char tail[300];
        size_t len = strlen(err ? err->message : "");
        if (err)
            snprintf(err->message + len, sizeof(err->message) - len, ": %s",
                     local_log_tail(dir, "install.log", tail, sizeof(tail)));
    }
    return rc;
}

/* A pull agent: no broker user, the pull token instead. */
static int install_pull_agent(struct local *l, const struct fed_vm *vm, const char *dir, int port,
                              struct fed_error *err)
{
    char token_file[PATH_MAX];
    if (local_pull_token(l, token_file, sizeof(token_file), NULL, err) < 0)
        return -1;
    return run_install(l, vm, dir, port, "", "", token_file, err);
}

int local_install_agent(struct local *l, const struct fed_vm *vm, const char *dir, int port,
                        struct fed_error *err)
{
    struct fed_monitoring_spec ms;
    if (local_monitoring(vm, &ms) == FED_MONITOR_PULL)
        return install_pull_agent(l, vm, dir, port, err);
    char user[FED_BUS_USER_MAX + 1], password[FED_BUS_PASSWORD_MAX], pwfile[PATH_MAX] = "";
    if (fed_bus_provision(l->bus, vm->ns, vm->mci, vm->id, user, sizeof(user), password,
                          sizeof(password), err) < 0)
        return -1;
    int creds = password[0] != 0;
    int rc = creds ? write_password_file(dir, password, pwfile, sizeof(pwfile), err) : 0;
    explicit_bzero(password, sizeof(password));
    if (rc == 0)
        rc = run_install(l, vm, dir, port, creds ? user : "", pwfile, NULL, err);
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
