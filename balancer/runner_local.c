/*
 * The local runner: members are damselfly-collector processes on this host, spawned with an
 * argv array (never a shell), each in its own process group and working directory
 * (runner.local.dir/ID: its spool and collector.log). They outlive the balancer: a
 * restarted one adopts them from children.json (runner_local_state.c).
 */
#define DSF_MODULE "runner-local"
#include "balancer/runner_local.h"
#include "common/file.h"
#include "common/log.h"
#include "common/loop.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define TICK_MS 200
/* The collector, -c FILE, the runner's 4 items: the rest is for runner.local.set. */
#define MAX_ARGS 256

struct argv_buf {
    char *v[MAX_ARGS + 1];
    int n;
};

static int arg(struct argv_buf *a, const char *fmt, const char *s)
{
    if (a->n >= MAX_ARGS)
        return -1;
    char *v = NULL;
    if (asprintf(&v, fmt, s) < 0)
        return -1;
    a->v[a->n++] = v;
    return 0;
}

static void argv_free(struct argv_buf *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
}

/* http.listen of member n: the configured address, or its host at port base + n. */
static void http_listen(const struct runner_local_config *cfg, int n, char *out, size_t len)
{
    const char *colon = strrchr(cfg->http_listen, ':');
    if (cfg->http_port_base <= 0 || !colon)
        snprintf(out, len, "%s", cfg->http_listen);
    else
        snprintf(out, len, "%.*s:%lld", (int)(colon - cfg->http_listen), cfg->http_listen,
                 (long long)(cfg->http_port_base + n));
}

/* The runner's own items come last: --set is applied in order, so they win over the
 * operator's. */
static int build_argv(const struct local_runner *L, const struct local_child *c, const char *dir,
                      struct argv_buf *a)
{
    const struct runner_local_config *cfg = L->cfg;
    char listen[300];
    http_listen(cfg, c->n, listen, sizeof(listen));
    int rc = arg(a, "%s", L->collector);
    if (cfg->config && cfg->config[0])
        rc |= arg(a, "%s", "-c") | arg(a, "%s", cfg->config);
    for (size_t i = 0; i < cfg->set.count && rc == 0; i++)
        rc |= arg(a, "%s", "--set") | arg(a, "%s", cfg->set.items[i]);
    rc |= arg(a, "%s", "--set") | arg(a, "id=%s", c->id);
    rc |= arg(a, "%s", "--set") | arg(a, "%s", "mqtt.follow_assign=true");
    rc |= arg(a, "%s", "--set") | arg(a, "spool.dir=%s/spool", dir);
    rc |= arg(a, "%s", "--set") | arg(a, "http.listen=%s", listen);
    a->v[a->n] = NULL;
    return rc ? -1 : 0;
}

/* The balancer's environment without DAMSELFLY_*: those are the balancer's settings
 * (DAMSELFLY_CONFIG would make a collector load the balancer's file); a member's
 * configuration is runner.local.config and its --set items. */
static char **member_env(void)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + 1, sizeof(*env));
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (strncmp(environ[i], "DAMSELFLY_", 10))
            env[k++] = environ[i];
    }
    return env;
}

static int spawn_attrs(posix_spawnattr_t *at, posix_spawn_file_actions_t *fa, const char *dir)
{
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    char log[PATH_MAX];
    snprintf(log, sizeof(log), "%s/collector.log", dir);
    /* Its own process group: a ^C or a group kill aimed at the balancer leaves it running. */
    int rc = posix_spawnattr_setflags(at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                              POSIX_SPAWN_SETSIGMASK);
    rc = rc ? rc : posix_spawnattr_setpgroup(at, 0);
    rc = rc ? rc : posix_spawnattr_setsigdefault(at, &all);
    rc = rc ? rc : posix_spawnattr_setsigmask(at, &none);
    rc = rc ? rc : posix_spawn_file_actions_addopen(fa, 0, "/dev/null", O_RDONLY, 0);
    rc =
        rc ? rc : posix_spawn_file_actions_addopen(fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0640);
    rc = rc ? rc : posix_spawn_file_actions_adddup2(fa, 1, 2);
    rc = rc ? rc : posix_spawn_file_actions_addchdir_np(fa, dir);
    return rc;
}

static int spawn(struct local_runner *L, struct local_child *c, char *err, size_t errlen)
{
    char dir[PATH_MAX], spool[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s/%s", L->cfg->dir, c->id);
    snprintf(spool, sizeof(spool), "%s/spool", dir);
    if (dsf_mkdir_p(spool, 0750, err, errlen) < 0)
        return -1;
    struct argv_buf a = {0};
    char **env = member_env();
    posix_spawnattr_t at;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_init(&fa);
    int rc = build_argv(L, c, dir, &a) ? (a.n >= MAX_ARGS ? E2BIG : ENOMEM)
             : !env                    ? ENOMEM
                                       : spawn_attrs(&at, &fa, dir);
    if (rc == 0)
        rc = posix_spawn(&c->pid, L->collector, &fa, &at, a.v, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    free(env);
    argv_free(&a);
    if (rc) {
        snprintf(err, errlen, "cannot start %s (%s): %s", c->id, L->collector, strerror(rc));
        return -1;
    }
    c->ours = 1;
    log_info("started %s (pid %d), its log in %s/collector.log", c->id, (int)c->pid, dir);
    return 0;
}

static void save(struct local_runner *L)
{
    char err[DSF_CFG_ERRLEN];
    if (local_state_save(L, err, sizeof(err)) < 0)
        log_error("cannot record the members (a restarted balancer would not adopt them): %s", err);
}

/* The lowest n no member (stopping ones included: their directory is in use) has. */
static int free_n(const struct local_runner *L)
{
    for (int n = 1;; n++) {
        size_t i = 0;
        while (i < L->nkids && L->kids[i].n != n)
            i++;
        if (i == L->nkids)
            return n;
    }
}

static int local_replicas(struct runner *r)
{
    struct local_runner *L = (struct local_runner *)r;
    int n = 0;
    for (size_t i = 0; i < L->nkids; i++)
        n += !L->kids[i].stopping;
    return n;
}

static int local_scale_out(struct runner *r, int want, char *err, size_t errlen)
{
    struct local_runner *L = (struct local_runner *)r;
    int rc = 0, started = 0;
    while (rc == 0 && local_replicas(r) < want) {
        struct local_child c = {.n = free_n(L)};
        snprintf(c.id, sizeof(c.id), "%s-%d", L->cfg->id_prefix, c.n);
        rc = spawn(L, &c, err, errlen);
        if (rc == 0 && !local_child_add(L, &c)) {
            /* Not recorded: it would run unsupervised, so it does not run at all. */
            kill(c.pid, SIGKILL);
            waitpid(c.pid, NULL, 0);
            snprintf(err, errlen, "cannot start %s: out of memory", c.id);
            rc = -1;
        }
        started += rc == 0;
    }
    if (started)
        save(L);
    return rc;
}

static struct local_child *find(struct local_runner *L, const char *id)
{
    struct local_child *pick = NULL;
    for (size_t i = 0; i < L->nkids; i++) {
        struct local_child *c = &L->kids[i];
        if (c->stopping)
            continue;
        if (id ? !strcmp(c->id, id) : (!pick || c->n > pick->n))
            pick = c;
    }
    return pick;
}

static int local_stop(struct runner *r, const char *id, char *err, size_t errlen)
{
    struct local_runner *L = (struct local_runner *)r;
    struct local_child *c = find(L, id);
    if (!c) {
        snprintf(err, errlen, "cannot stop %s: not a running member this runner started",
                 id ? id : "a member");
        return -1;
    }
    if (kill(c->pid, SIGTERM) < 0 && errno != ESRCH) {
        snprintf(err, errlen, "cannot stop %s: kill %d: %s", c->id, (int)c->pid, strerror(errno));
        return -1;
    }
    c->stopping = 1;
    c->kill_at_ms = dsf_mono_ms() + L->cfg->stop_timeout_ms;
    log_info("stopping %s (pid %d)", c->id, (int)c->pid);
    save(L);
    return 0;
}

static int local_owns(struct runner *r, const char *id)
{
    return id && find((struct local_runner *)r, id) != NULL;
}

/* Has the member exited? Our own children are reaped here (no zombie is left); adopted ones
 * belong to init, so only their /proc entry tells. */
static int gone(struct local_runner *L, struct local_child *c, int *status)
{
    if (c->ours) {
        pid_t w = waitpid(c->pid, status, WNOHANG);
        return w == c->pid || (w < 0 && errno == ECHILD);
    }
    return !local_child_alive(L, c->pid, c->id);
}

static void check_child(struct local_runner *L, size_t i, int64_t now, int *changed)
{
    struct local_child *c = &L->kids[i];
    int status = 0;
    if (gone(L, c, &status)) {
        if (c->stopping) {
            log_info("%s (pid %d) stopped%s", c->id, (int)c->pid, c->killed ? " (killed)" : "");
        } else {
            L->exited++;
            log_warn("%s (pid %d) exited without being stopped (status 0x%x): the pool is one "
                     "member short until it scales out again",
                     c->id, (int)c->pid, status);
        }
        L->kids[i] = L->kids[--L->nkids];
        *changed = 1;
        return;
    }
    if (c->stopping && !c->killed && now >= c->kill_at_ms) {
        log_warn("%s (pid %d) still running %lld ms after SIGTERM: SIGKILL", c->id, (int)c->pid,
                 (long long)L->cfg->stop_timeout_ms);
        kill(c->pid, SIGKILL);
        c->killed = 1;
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct local_runner *L = arg;
    int64_t now = dsf_mono_ms();
    int changed = 0;
    for (size_t i = L->nkids; i-- > 0;)
        check_child(L, i, now, &changed);
    if (changed)
        save(L);
}

/* Members keep running: a restarted balancer adopts them. */
static void local_free(struct runner *r)
{
    struct local_runner *L = (struct local_runner *)r;
    if (!L)
        return;
    if (L->tick)
        event_free(L->tick);
    free(L->kids);
    free(L);
}

static const struct runner_ops local_ops = {
    .name = "local",
    .replicas = local_replicas,
    .scale_out = local_scale_out,
    .stop = local_stop,
    .owns = local_owns,
    .free = local_free,
};

/* runner.local.collector, else damselfly-collector next to this program (installed), else
 * in the build tree's collector/ beside balancer/. */
static int find_collector(const struct runner_local_config *cfg, char *out, size_t len, char *err,
                          size_t errlen)
{
    if (cfg->collector && cfg->collector[0]) {
        snprintf(out, len, "%s", cfg->collector);
        if (access(out, X_OK) == 0)
            return 0;
        snprintf(err, errlen, "runner.local.collector: %s: %s", out, strerror(errno));
        return -1;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    char *slash = n > 0 ? memrchr(self, '/', (size_t)n) : NULL;
    if (slash) {
        *slash = 0;
        snprintf(out, len, "%s/damselfly-collector", self);
        if (access(out, X_OK) == 0)
            return 0;
        snprintf(out, len, "%s/../collector/damselfly-collector", self);
        if (access(out, X_OK) == 0)
            return 0;
    }
    snprintf(err, errlen,
             "runner.local.collector: unset, and no damselfly-collector next to "
             "this program (%s)",
             slash ? self : "its path is unknown");
    return -1;
}

static struct runner *new_fail(struct local_runner *L)
{
    local_free(&L->base);
    return NULL;
}

struct runner *runner_local_new(struct event_base *base, const struct runner_config *cfg, char *err,
                                size_t errlen)
{
    struct local_runner *L = calloc(1, sizeof(*L));
    if (!L) {
        snprintf(err, errlen, "local runner: out of memory");
        return NULL;
    }
    L->base.ops = &local_ops;
    L->loop = base;
    L->cfg = &cfg->local;
    if (find_collector(L->cfg, L->collector, sizeof(L->collector), err, errlen) < 0)
        return new_fail(L);
    if (dsf_mkdir_p(L->cfg->dir, 0750, err, errlen) < 0 || local_state_load(L, err, errlen) < 0)
        return new_fail(L);
    L->tick = event_new(base, -1, EV_PERSIST, on_tick, L);
    struct timeval tv = {0, TICK_MS * 1000};
    if (!L->tick || event_add(L->tick, &tv) < 0) {
        snprintf(err, errlen, "local runner: cannot add its timer");
        return new_fail(L);
    }
    save(L);
    log_info("local runner: %zu members adopted, collector %s, directory %s", L->nkids,
             L->collector, L->cfg->dir);
    return &L->base;
}
