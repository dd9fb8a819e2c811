/* Process, /proc and cgroup v2 helpers of the local driver. Code that runs between fork and
 * exec uses async-signal-safe calls only: the host process may have other threads. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "federation/driver.h"
#include "federation/drivers/local_proc.h"
#include "federation/rest.h"

/* ---- /proc ----------------------------------------------------------------------------- */

/* A /proc or cgroup file, NUL-terminated: one read, as the kernel makes them (their size
 * is 0 to stat, so dsf_read_file's stdio is no better here). Its length, or -1. */
static ssize_t read_pseudo_file(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    return n;
}

int lp_proc_stat(pid_t pid, char *state, pid_t *pgrp, uint64_t *start)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    if (pid <= 0 || read_pseudo_file(path, buf, sizeof(buf)) < 0)
        return -1;
    /* The command name is in parentheses and may itself hold ") ": parse after the last. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ')
        return -1;
    p += 2;
    char st = *p;
    long long fields[20] = {0};
    /* Fields 4..22 follow the state: ppid pgrp session tty tpgid flags minflt cminflt majflt
     * cmajflt utime stime cutime cstime priority nice threads itrealvalue starttime. */
    int got = 0;
    char *q = p + 1;
    while (got < 19 && *q) {
        char *end;
        fields[got++] = strtoll(q, &end, 10);
        if (end == q)
            return -1;
        q = end;
    }
    if (got < 19)
        return -1;
    if (state)
        *state = st;
    if (pgrp)
        *pgrp = (pid_t)fields[1];
    if (start)
        *start = (uint64_t)fields[18];
    return 0;
}

int lp_alive(pid_t pid, uint64_t start, char *state)
{
    char st;
    uint64_t s;
    if (pid <= 0 || lp_proc_stat(pid, &st, NULL, &s) < 0 || s != start || st == 'Z' || st == 'X' ||
        st == 'x')
        return 0;
    if (state)
        *state = st;
    return 1;
}

static int numeric(const char *s)
{
    for (; *s; s++) {
        if (!isdigit((unsigned char)*s))
            return 0;
    }
    return 1;
}

size_t lp_pgrp_members(pid_t pgid, pid_t *out, size_t max)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    size_t n = 0;
    while (d && pgid > 0 && (de = readdir(d))) {
        if (!numeric(de->d_name))
            continue;
        pid_t pid = (pid_t)atoi(de->d_name), g;
        char st;
        if (lp_proc_stat(pid, &st, &g, NULL) == 0 && g == pgid && st != 'Z' && st != 'X') {
            if (n < max)
                out[n] = pid;
            n++;
        }
    }
    if (d)
        closedir(d);
    return n;
}

/* ---- cgroup v2 ----------------------------------------------------------------------------- */

int lp_cgroup2_root(char *buf, size_t len)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    char line[4096];
    int found = -1;
    while (f && found < 0 && fgets(line, sizeof(line), f)) {
        /* "36 25 0:30 / /sys/fs/cgroup/unified rw,... - cgroup2 cgroup2 rw" */
        char mnt[1024], fstype[64];
        const char *dash = strstr(line, " - ");
        if (!dash || sscanf(dash + 3, "%63s", fstype) != 1 || strcmp(fstype, "cgroup2"))
            continue;
        if (sscanf(line, "%*s %*s %*s %*s %1023s", mnt) != 1)
            continue;
        char probe[1100];
        snprintf(probe, sizeof(probe), "%s/cgroup.procs", mnt);
        if (access(probe, W_OK) == 0 && snprintf(buf, len, "%s", mnt) < (int)len)
            found = 0;
    }
    if (f)
        fclose(f);
    return found;
}

int lp_cg_create(const char *dir, struct fed_error *err)
{
    if (fed_mkdir_p(dir, "mkdir cgroup", err) < 0)
        return -1;
    char probe[4200];
    snprintf(probe, sizeof(probe), "%s/cgroup.freeze", dir);
    if (access(probe, W_OK) < 0)
        return fed_fail(err, FED_EIO, "cgroup", errno, "%s has no writable cgroup.freeze", dir);
    return 0;
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    int e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

int lp_cg_frozen(const char *dir)
{
    char path[4200], buf[512];
    snprintf(path, sizeof(path), "%s/cgroup.events", dir);
    if (read_pseudo_file(path, buf, sizeof(buf)) < 0)
        return -1;
    const char *p = strstr(buf, "frozen ");
    return p && p[7] == '1';
}

int lp_cg_freeze(const char *dir, int on, int64_t timeout_ms, struct fed_error *err)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/cgroup.freeze", dir);
    if (write_file(path, on ? "1" : "0") < 0)
        return fed_fail(err, FED_EIO, on ? "freeze" : "thaw", errno, "write %s: %s", path,
                        strerror(errno));
    struct fed_backoff b;
    fed_backoff_init(&b, timeout_ms);
    b.initial_ms = 10;
    b.max_ms = 200;
    while (lp_cg_frozen(dir) != on) {
        if (!fed_backoff_wait(&b))
            return fed_fail(err, FED_ETIMEOUT, on ? "freeze" : "thaw", 0,
                            "%s/cgroup.events did not report frozen %d within %lld ms", dir, on,
                            (long long)timeout_ms);
    }
    return 0;
}

long lp_cg_procs(const char *dir, pid_t *out, size_t max)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    FILE *f = fopen(path, "re");
    if (!f)
        return -1;
    long n = 0;
    int pid;
    while (fscanf(f, "%d", &pid) == 1) {
        if ((size_t)n < max)
            out[n] = pid;
        n++;
    }
    fclose(f);
    return n;
}

int lp_cg_signal(const char *dir, int sig)
{
    char path[4200];
    if (sig == SIGKILL) {
        snprintf(path, sizeof(path), "%s/cgroup.kill", dir);
        if (write_file(path, "1") == 0)
            return 0;
    }
    pid_t pids[256];
    long n = lp_cg_procs(dir, pids, 256);
    for (long i = 0; i < n && i < 256; i++)
        kill(pids[i], sig);
    return n < 0 ? -1 : 0;
}

void lp_cg_remove(const char *dir)
{
    rmdir(dir);
}

/* ---- spawning ---------------------------------------------------------------------------- */

/* Between fork and exec: async-signal-safe calls only. */
static void child_exec(const char *path, char *const *argv, char *const *envp, const char *cwd,
                       int log_fd)
{
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (null >= 0)
        dup2(null, 0);
    dup2(log_fd, 1);
    dup2(log_fd, 2);
    if (cwd && chdir(cwd) < 0)
        _exit(126);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(path, argv, envp);
    _exit(127);
}

static void reset_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int s = 1; s < 32; s++) {
        if (s != SIGKILL && s != SIGSTOP)
            sigaction(s, &sa, NULL);
    }
}

/* The intermediate process: new session, cgroup, then the two children; reports their pids
 * through the pipe and exits, so they are nobody's children here. */
static void intermediate(const struct lp_spawn *s, int report)
{
    pid_t pids[2] = {0, 0};
    setsid();
    reset_signals();
    if (s->cgroup_procs) {
        int fd = open(s->cgroup_procs, O_WRONLY | O_CLOEXEC);
        if (fd < 0 || write(fd, "0", 1) != 1)
            _exit(125);
        close(fd);
    }
    pids[0] = fork();
    if (pids[0] == 0)
        child_exec(s->agent_path, s->agent_argv, s->envp, s->cwd, s->log_fd);
    if (pids[0] > 0 && s->workload_path) {
        pids[1] = fork();
        if (pids[1] == 0)
            child_exec(s->workload_path, s->workload_argv, s->envp, s->cwd, s->log_fd);
    }
    ssize_t w = write(report, pids, sizeof(pids));
    _exit(pids[0] > 0 && w == (ssize_t)sizeof(pids) && pids[1] >= 0 ? 0 : 124);
}

int lp_spawn(const struct lp_spawn *s, pid_t *pgid, pid_t *agent, pid_t *workload,
             struct fed_error *err)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return fed_fail(err, FED_EIO, "pipe", errno, "%s", strerror(errno));
    pid_t mid = fork();
    if (mid < 0) {
        int e = errno;
        close(p[0]);
        close(p[1]);
        return fed_fail(err, FED_EIO, "fork", e, "%s", strerror(e));
    }
    if (mid == 0) {
        close(p[0]);
        intermediate(s, p[1]);
    }
    close(p[1]);
    pid_t pids[2] = {0, 0};
    ssize_t n;
    do {
        n = read(p[0], pids, sizeof(pids));
    } while (n < 0 && errno == EINTR);
    close(p[0]);
    int status = 0;
    while (waitpid(mid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || n != (ssize_t)sizeof(pids))
        return fed_fail(err, FED_EIO, "spawn", WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                        WIFEXITED(status) && WEXITSTATUS(status) == 125
                            ? "could not join cgroup %s"
                            : "could not start the VM's processes (%s)",
                        s->cgroup_procs ? s->cgroup_procs : "fork failed");
    *pgid = mid;
    *agent = pids[0];
    *workload = pids[1];
    return 0;
}

int lp_run(const char *call, char *const *argv, char *const *envp, const char *cwd, int log_fd,
           int64_t timeout_ms, struct fed_error *err)
{
    pid_t pid = fork();
    if (pid < 0)
        return fed_fail(err, FED_EIO, "fork", errno, "%s", strerror(errno));
    if (pid == 0) {
        setpgid(0, 0); /* so that a timeout kills what it started too */
        child_exec(argv[0], argv, envp, cwd, log_fd);
    }
    setpgid(pid, pid);
    int64_t deadline = fed_now_ms() + timeout_ms;
    int status = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return fed_fail(err, FED_EIO, call, errno, "waitpid: %s", strerror(errno));
        if (fed_now_ms() >= deadline) {
            kill(-pid, SIGKILL);
            waitpid(pid, &status, 0);
            return fed_fail(err, FED_ETIMEOUT, call, 0, "still running after %lld ms: killed",
                            (long long)timeout_ms);
        }
        fed_sleep_ms(20);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        return fed_fail(err, FED_EBACKEND, call, WEXITSTATUS(status), "exited with status %d%s",
                        WEXITSTATUS(status),
                        WEXITSTATUS(status) == 127 ? " (could not execute it)" : "");
    return fed_fail(err, FED_EBACKEND, call, 128 + WTERMSIG(status), "killed by signal %d",
                    WTERMSIG(status));
}

int lp_which(const char *prog, char *out, size_t len)
{
    if (strchr(prog, '/')) {
        if (access(prog, X_OK) < 0)
            return -1;
        snprintf(out, len, "%s", prog);
        return 0;
    }
    const char *path = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof(dirs), "%s", path && *path ? path : "/usr/local/bin:/usr/bin:/bin");
    char *save = NULL;
    for (char *d = strtok_r(dirs, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
        if (snprintf(out, len, "%s/%s", d, prog) < (int)len && access(out, X_OK) == 0)
            return 0;
    }
    return -1;
}

#define HTTP_MAX (4u << 20)

/* ---- HTTP probe ---------------------------------------------------------------------------- */

char *lp_http_get(int port, const char *path, const char *token, int *code, int timeout_ms)
{
    char base[64];
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", port);
    struct fed_rest_config cfg = {
        .base_url = base,
        .timeout_ms = timeout_ms,
        .connect_timeout_ms = timeout_ms,
        .max_attempts = 1, /* the callers poll */
        .max_body = HTTP_MAX,
        .direct = 1,
        .bearer_token = token,
    };
    char err[200];
    struct fed_rest *r = fed_rest_new(&cfg, err, sizeof(err));
    struct fed_rest_call call = {.method = "GET", .path = path, .flags = FED_REST_NO_RETRY};
    struct fed_rest_result res = {0};
    *code = -1;
    char *body = NULL;
    if (r) {
        fed_rest_do(r, &call, &res, NULL, 0);
        if (res.status > 0) {
            *code = (int)res.status;
            body = strdup(buf_cstr(&res.body));
        }
        fed_rest_result_free(&res);
    }
    fed_rest_free(r);
    return body;
}

int lp_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t l = sizeof(a);
    int port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &l) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}
