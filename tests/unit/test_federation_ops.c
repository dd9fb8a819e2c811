/* The federation library over a test double of a driver: VM actions persist what the driver
 * observed, a driver claiming success without reaching the target is not believed,
 * concurrent callers cannot both start an action on one VM, migrate waits for the agent and
 * rolls back, scale out/in (autogen first), unsupported operations and unknown drivers. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "federation/driver.h"
#include "federation/federation.h"

/* ---- the test double ------------------------------------------------------------------------ */

#define MAXVM 64

static struct fake {
    pthread_mutex_t mu;
    struct {
        char id[FED_NAME_MAX];
        char region[FED_NAME_MAX];
        enum fed_vm_state state;
    } vms[MAXVM];
    int n;
    const char *bad_region; /* create fails here */
    int online;             /* what agent_online answers */
    int lie;                /* suspend returns 0 but does nothing */
    int slow_ms;            /* each action takes this long */
    int fail_reboot;        /* reboot answers 503 and does nothing */
    const char *bad_status; /* status of this VM cannot be read */
    int native_up;          /* >= 0: native scale out fails after this many came up */
    int native_lie;         /* native scale out returns 0 with its last VM still Creating */
    int creates, terminates, online_calls, native_calls;
} fk = {.mu = PTHREAD_MUTEX_INITIALIZER};

static int find(const char *id)
{
    for (int i = 0; i < fk.n; i++) {
        if (!strcmp(fk.vms[i].id, id))
            return i;
    }
    return -1;
}

static void *f_open(const void *o, const char *dir, struct fed_bus *bus, struct fed_error *err)
{
    (void)o;
    (void)dir;
    (void)err;
    return &fk;
}

static void f_close(void *ctx)
{
    (void)ctx;
}

static int f_create(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    (void)ctx;
    pthread_mutex_lock(&fk.mu);
    fk.creates++;
    if (fk.bad_region && !strcmp(vm->spec.region, fk.bad_region)) {
        pthread_mutex_unlock(&fk.mu);
        vm->state = FED_VM_FAILED;
        return fed_fail(err, FED_EBACKEND, "POST /fake/vm", 503, "{\"message\":\"no capacity\"}");
    }
    int i = fk.n++;
    snprintf(fk.vms[i].id, sizeof(fk.vms[i].id), "%s", vm->id);
    snprintf(fk.vms[i].region, sizeof(fk.vms[i].region), "%s", vm->spec.region);
    fk.vms[i].state = FED_VM_RUNNING;
    pthread_mutex_unlock(&fk.mu);
    vm->state = FED_VM_RUNNING;
    snprintf(vm->address, sizeof(vm->address), "10.0.0.%d", i + 1);
    return 0;
}

static int act(struct fed_vm *vm, enum fed_vm_state to, struct fed_error *err)
{
    if (fk.slow_ms)
        usleep((useconds_t)fk.slow_ms * 1000);
    pthread_mutex_lock(&fk.mu);
    int i = find(vm->id);
    if (i < 0 || fk.vms[i].state == FED_VM_TERMINATED) {
        pthread_mutex_unlock(&fk.mu);
        return fed_fail(err, FED_EBACKEND, "GET /fake/control", 404, "{\"message\":\"not found\"}");
    }
    if (to == FED_VM_TERMINATED)
        fk.terminates++;
    fk.vms[i].state = to;
    vm->state = to;
    pthread_mutex_unlock(&fk.mu);
    return 0;
}

static int f_suspend(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    (void)ctx;
    if (fk.lie)
        return 0;
    return act(vm, FED_VM_SUSPENDED, err);
}

static int f_resume(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    (void)ctx;
    return act(vm, FED_VM_RUNNING, err);
}

static int f_reboot(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    (void)ctx;
    if (fk.fail_reboot) {
        vm->state = FED_VM_RUNNING; /* what it last saw: nothing happened */
        return fed_fail(err, FED_EBACKEND, "GET /fake/control?action=reboot", 503,
                        "{\"message\":\"reboot refused\"}");
    }
    return act(vm, FED_VM_RUNNING, err);
}

static int f_terminate(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    (void)ctx;
    return act(vm, FED_VM_TERMINATED, err);
}

static int f_status(void *ctx, struct fed_vm *vm, struct fed_error *err)
{
    (void)ctx;
    if (fk.bad_status && !strcmp(vm->id, fk.bad_status))
        return fed_fail(err, FED_EBACKEND, "GET /fake/vm", 500, "{\"message\":\"db locked\"}");
    pthread_mutex_lock(&fk.mu);
    int i = find(vm->id);
    vm->state = i < 0 ? FED_VM_TERMINATED : fk.vms[i].state;
    pthread_mutex_unlock(&fk.mu);
    return 0;
}

static int f_online(void *ctx, const struct fed_vm *vm, struct fed_error *err)
{
    (void)ctx;
    (void)vm;
    (void)err;
    fk.online_calls++;
    return fk.online;
}

static int f_scale_out(void *ctx, const char *ns, const char *mci, const char *sg, int n,
                       const struct fed_vm_spec *tmpl, struct fed_vm **vms, size_t *nvms,
                       struct fed_error *err)
{
    (void)ctx;
    fk.native_calls++;
    *vms = calloc((size_t)n, sizeof(**vms));
    *nvms = (size_t)n;
    for (int i = 0; i < n; i++) {
        struct fed_vm *v = &(*vms)[i];
        snprintf(v->ns, sizeof(v->ns), "%s", ns);
        snprintf(v->mci, sizeof(v->mci), "%s", mci);
        snprintf(v->id, sizeof(v->id), "%s-native%d", sg, i);
        fed_vm_spec_copy(&v->spec, tmpl);
        if (f_create(NULL, v, err) < 0)
            return -1;
        if (fk.native_up >= 0 && i >= fk.native_up) {
            /* Created by the backend, but it never comes up. */
            fk.vms[find(v->id)].state = FED_VM_CREATING;
            v->state = FED_VM_CREATING;
            return fed_fail(err, FED_ETIMEOUT, "wait", 0, "%s is still Creating", v->id);
        }
    }
    if (fk.native_lie) {
        fk.vms[find((*vms)[n - 1].id)].state = FED_VM_CREATING;
        (*vms)[n - 1].state = FED_VM_CREATING;
    }
    return 0;
}

static const struct fed_driver fake = {
    .name = "fake",
    .open = f_open,
    .close = f_close,
    .create_vm = f_create,
    .suspend = f_suspend,
    .resume = f_resume,
    .reboot = f_reboot,
    .terminate = f_terminate,
    .status = f_status,
    .agent_online = f_online,
};

/* ---- fixtures ---------------------------------------------------------------------------------
 */

static char dir[256];
static struct fed *F;

static struct fed_driver native; /* a test's variant of fake: F points to it until teardown */
static struct fed *open_with(const struct fed_driver *d)
{
    struct fed_config c = {.state_dir = dir, .wait_timeout_ms = 2000, .online_timeout_ms = 300};
    struct fed_error e;
    struct fed *f = fed_open_driver(d, &c, &e);
    if (!f)
        fail_msg("open: %s", e.message);
    return f;
}

static struct fed_vm_spec spec(const char *name, int size, const char *region)
{
    struct fed_vm_spec s;
    memset(&s, 0, sizeof(s));
    snprintf(s.name, sizeof(s.name), "%s", name);
    snprintf(s.csp, sizeof(s.csp), "fakecloud");
    snprintf(s.region, sizeof(s.region), "%s", region);
    snprintf(s.common_spec, sizeof(s.common_spec), "fakecloud+%s+small", region);
    s.size = size;
    return s;
}

static int setup(void **state)
{
    (void)state;
    pthread_mutex_lock(&fk.mu);
    fk.n = 0;
    fk.bad_region = NULL;
    fk.online = 1;
    fk.lie = fk.slow_ms = fk.fail_reboot = 0;
    fk.bad_status = NULL;
    fk.native_up = -1;
    fk.native_lie = 0;
    fk.creates = fk.terminates = fk.online_calls = fk.native_calls = 0;
    pthread_mutex_unlock(&fk.mu);
    snprintf(dir, sizeof(dir), "%s/fedops.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(dir));
    F = open_with(&fake);
    struct fed_vm_spec s[2] = {spec("web", 2, "r1"), spec("db", 1, "r1")};
    struct fed_error e;
    if (fed_create_mci(F, "ns1", "m1", "test", s, 2, &e) < 0)
        fail_msg("create: %s", e.message);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    fed_close(F);
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", dir, (char *)NULL);
        _exit(127);
    }
    waitpid(pid, NULL, 0);
    return 0;
}

static enum fed_vm_state state_of(const char *vm)
{
    struct fed_mci m;
    struct fed_error e;
    assert_int_equal(fed_store_get(fed_store_of(F), "ns1", "m1", &m, &e), 0);
    struct fed_vm *v = fed_mci_find_vm(&m, vm);
    enum fed_vm_state s = v ? v->state : FED_VM_STATE_COUNT;
    fed_mci_free(&m);
    return s;
}

static void mci_status_is(const char *want)
{
    struct fed_mci m;
    struct fed_error e;
    char buf[96];
    assert_int_equal(fed_store_get(fed_store_of(F), "ns1", "m1", &m, &e), 0);
    assert_string_equal(fed_mci_status(&m, buf, sizeof(buf)), want);
    fed_mci_free(&m);
}

/* ---- tests -------------------------------------------------------------------------------------
 */

static void create_and_act(void **state)
{
    (void)state;
    struct fed_error e;
    mci_status_is("Running:3 (R:3/3)");
    assert_int_equal(fed_vm_action(F, "ns1", "m1", "web-2", FED_ACT_SUSPEND, &e), 0);
    assert_int_equal(state_of("web-2"), FED_VM_SUSPENDED);
    mci_status_is("Partial-Suspended:1 (R:2/3)");
    assert_int_equal(fed_vm_action(F, "ns1", "m1", "web-2", FED_ACT_REBOOT, &e), -1);
    assert_int_equal(e.kind, FED_ESTATE);
    assert_int_equal(fed_vm_action(F, "ns1", "m1", "web-2", FED_ACT_RESUME, &e), 0);
    assert_int_equal(fed_vm_action(F, "ns1", "m1", "web-2", FED_ACT_TERMINATE, &e), 0);
    assert_int_equal(fed_vm_action(F, "ns1", "m1", "web-2", FED_ACT_SUSPEND, &e), -1);
    assert_string_equal(e.message, "cannot suspend web-2: it is Terminated");
    assert_int_equal(fed_vm_action(F, "ns1", "m1", "nope", FED_ACT_SUSPEND, &e), -1);
    assert_int_equal(e.kind, FED_ENOTFOUND);
    assert_int_equal(fed_vm_action(F, "ns1", "m9", "web-1", FED_ACT_SUSPEND, &e), -1);
    assert_int_equal(e.kind, FED_ENOTFOUND);
    /* The whole MCI: web-2 is Terminated already and skipped. */
    assert_int_equal(fed_mci_action(F, "ns1", "m1", FED_ACT_TERMINATE, &e), 0);
    mci_status_is("Terminated:3 (R:0/3)");
    assert_int_equal(fed_mci_delete(F, "ns1", "m1", &e), 0);
    struct fed_mci m;
    assert_int_equal(fed_store_get(fed_store_of(F), "ns1", "m1", &m, &e), -1);
}

static void driver_claims_are_checked(void **state)
{
    (void)state;
    struct fed_error e;
    fk.lie = 1;
    assert_int_equal(fed_vm_action(F, "ns1", "m1", "web-1", FED_ACT_SUSPEND, &e), -1);
    assert_int_equal(e.kind, FED_EBACKEND);
    assert_non_null(strstr(e.message, "in state Suspending"));
    /* The model holds what the driver's status says, not the claim. */
    assert_int_equal(state_of("web-1"), FED_VM_RUNNING);
    /* Something changes behind our back: refresh shows it. */
    fk.vms[find("db-1")].state = FED_VM_FAILED;
    struct fed_mci m;
    assert_int_equal(fed_mci_refresh(F, "ns1", "m1", &m, &e), 0);
    assert_int_equal(fed_mci_find_vm(&m, "db-1")->state, FED_VM_FAILED);
    fed_mci_free(&m);
    mci_status_is("Partial-Failed:1 (R:2/3)");
}

struct racer {
    int rc;
    struct fed_error e;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    r->rc = fed_vm_action(F, "ns1", "m1", "web-1", FED_ACT_SUSPEND, &r->e);
    return NULL;
}

static void concurrent_callers(void **state)
{
    (void)state;
    fk.slow_ms = 200;
    pthread_t t[2];
    struct racer r[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, race, &r[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(r[0].rc + r[1].rc, -1); /* one succeeded, one was refused */
    struct racer *lost = r[0].rc ? &r[0] : &r[1];
    assert_int_equal(lost->e.kind, FED_ESTATE);
    assert_non_null(strstr(lost->e.message, "cannot suspend web-1: it is Suspend"));
    assert_int_equal(state_of("web-1"), FED_VM_SUSPENDED);
}

static int online_calls_seen;

static int caller_online(void *arg, const struct fed_vm *vm, struct fed_error *err)
{
    (void)arg;
    (void)err;
    online_calls_seen++;
    return !strcmp(vm->spec.region, "r2");
}

static void migrate_ok(void **state)
{
    (void)state;
    struct fed_error e;
    struct fed_migrate_options o = {.region = "r2"};
    char id[FED_NAME_MAX];
    assert_int_equal(fed_migrate(F, "ns1", "m1", "web-1", &o, id, sizeof(id), &e), 0);
    assert_string_equal(id, "web-3");
    assert_true(fk.online_calls > 0);
    assert_int_equal(state_of("web-1"), FED_VM_STATE_COUNT); /* removed */
    assert_int_equal(fk.vms[find("web-1")].state, FED_VM_TERMINATED);
    struct fed_mci m;
    assert_int_equal(fed_store_get(fed_store_of(F), "ns1", "m1", &m, &e), 0);
    struct fed_vm *nv = fed_mci_find_vm(&m, "web-3");
    assert_non_null(nv);
    assert_int_equal(nv->state, FED_VM_RUNNING);
    assert_string_equal(nv->spec.region, "r2");
    assert_string_equal(nv->spec.common_spec, "fakecloud+r2+small");
    assert_string_equal(nv->subgroup, "web");
    fed_mci_free(&m);
    mci_status_is("Running:3 (R:3/3)");

    /* The caller's own online check takes precedence over the driver's. */
    fed_close(F);
    struct fed_config c = {
        .state_dir = dir, .online_timeout_ms = 300, .agent_online = caller_online};
    F = fed_open_driver(&fake, &c, &e);
    assert_non_null(F);
    o = (struct fed_migrate_options){.region = "r2", .csp = "othercloud", .new_id = "moved"};
    assert_int_equal(fed_migrate(F, "ns1", "m1", "web-2", &o, id, sizeof(id), &e), 0);
    assert_string_equal(id, "moved");
    assert_true(online_calls_seen > 0);
}

static void migrate_rolls_back(void **state)
{
    (void)state;
    struct fed_error e;
    /* The new VM never reports online: it is removed, the old one stays. */
    fk.online = 0;
    struct fed_migrate_options o = {.region = "r2"};
    assert_int_equal(fed_migrate(F, "ns1", "m1", "web-1", &o, NULL, 0, &e), -1);
    assert_int_equal(e.kind, FED_ETIMEOUT);
    assert_non_null(strstr(e.message, "did not report online"));
    assert_int_equal(state_of("web-1"), FED_VM_RUNNING);
    assert_int_equal(state_of("web-3"), FED_VM_STATE_COUNT);
    assert_int_equal(fk.vms[find("web-3")].state, FED_VM_TERMINATED);

    /* Creation fails: the error carries the driver's call, status and body. */
    fk.online = 1;
    fk.bad_region = "r9";
    o.region = "r9";
    assert_int_equal(fed_migrate(F, "ns1", "m1", "web-1", &o, NULL, 0, &e), -1);
    assert_string_equal(e.call, "POST /fake/vm");
    assert_int_equal(e.status, 503);
    assert_non_null(strstr(e.message, "no capacity"));
    assert_int_equal(state_of("web-1"), FED_VM_RUNNING);
    mci_status_is("Running:3 (R:3/3)");

    /* Bad input. */
    o.region = NULL;
    assert_int_equal(fed_migrate(F, "ns1", "m1", "web-1", &o, NULL, 0, &e), -1);
    assert_int_equal(e.kind, FED_EINVAL);
    o.region = "r2";
    assert_int_equal(fed_migrate(F, "ns1", "m1", "ghost", &o, NULL, 0, &e), -1);
    assert_int_equal(e.kind, FED_ENOTFOUND);
    o.new_id = "web-2";
    assert_int_equal(fed_migrate(F, "ns1", "m1", "web-1", &o, NULL, 0, &e), -1);
    assert_non_null(strstr(e.message, "already has a VM 'web-2'"));
}

/* Every removal path calls the hook once the VM is out of the saved model; terminate not. */
static char removed_log[512];

static void record_removed(void *arg, const struct fed_vm *vm)
{
    struct fed_mci m = {0};
    struct fed_error e;
    int saved = fed_store_get(fed_store_of(F), vm->ns, vm->mci, &m, &e) == 0;
    assert_false(saved && fed_mci_find_vm(&m, vm->id));
    fed_mci_free(&m);
    size_t l = strlen(removed_log);
    snprintf(removed_log + l, sizeof(removed_log) - l, " %s/%s/%s", vm->ns, vm->mci, vm->id);
    (*(int *)arg)++;
}

static void removal_hook(void **state)
{
    struct fed_error e;
    int calls = 0;
    fed_close(F);
    struct fed_config c = {.state_dir = dir,
                           .online_timeout_ms = 300,
                           .vm_removed = record_removed,
                           .vm_removed_arg = &calls};
    assert_non_null(F = fed_open_driver(&fake, &c, &e));
    assert_int_equal(fed_vm_delete(F, "ns1", "m1", "ghost", &e), -1);
    assert_int_equal(fed_vm_action(F, "ns1", "m1", "web-2", FED_ACT_TERMINATE, &e), 0);
    assert_int_equal(fed_vm_delete(F, "ns1", "m1", "web-2", &e), 0);
    assert_int_equal(fed_scale_out(F, "ns1", "m1", "web", 1, &e), 1);
    assert_int_equal(fed_scale_in(F, "ns1", "m1", "web", 1, &e), 1);
    struct fed_migrate_options o = {.region = "r2", .new_id = "moved"};
    assert_int_equal(fed_migrate(F, "ns1", "m1", "web-1", &o, NULL, 0, &e), 0);
    fk.online = 0; /* a migrate that rolls back removes the new VM, never the old one */
    o.new_id = "doomed";
    assert_int_equal(fed_migrate(F, "ns1", "m1", "moved", &o, NULL, 0, &e), -1);
    assert_int_equal(fed_mci_delete(F, "ns1", "m1", &e), 0);
    assert_int_equal(calls, 6);
    assert_string_equal(removed_log, " ns1/m1/web-2 ns1/m1/web-2 ns1/m1/web-1 ns1/m1/doomed "
                                     "ns1/m1/db-1 ns1/m1/moved");
}

static void scale_out_in(void **state)
{
    (void)state;
    struct fed_error e;
    assert_int_equal(fed_scale_out(F, "ns1", "m1", "web", 2, &e), 2);
    mci_status_is("Running:5 (R:5/5)");
    struct fed_mci m;
    assert_int_equal(fed_store_get(fed_store_of(F), "ns1", "m1", &m, &e), 0);
    assert_true(fed_mci_find_vm(&m, "web-3")->autogen);
    assert_true(fed_mci_find_vm(&m, "web-4")->autogen);
    assert_false(fed_mci_find_vm(&m, "web-1")->autogen);
    fed_mci_free(&m);
    /* Autogen first, newest first. */
    assert_int_equal(fed_scale_in(F, "ns1", "m1", "web", 1, &e), 1);
    assert_int_equal(state_of("web-4"), FED_VM_STATE_COUNT);
    assert_int_equal(fed_scale_in(F, "ns1", "m1", "web", 1, &e), 1);
    assert_int_equal(state_of("web-3"), FED_VM_STATE_COUNT);
    assert_int_equal(state_of("web-2"), FED_VM_RUNNING);
    /* A subgroup keeps one VM. */
    assert_int_equal(fed_scale_in(F, "ns1", "m1", "web", 2, &e), -1);
    assert_non_null(strstr(e.message, "at most 1"));
    assert_int_equal(fed_scale_in(F, "ns1", "m1", "web", 1, &e), 1);
    assert_int_equal(state_of("web-1"), FED_VM_RUNNING);
    assert_int_equal(fed_scale_in(F, "ns1", "m1", "web", 1, &e), -1);
    assert_int_equal(fed_scale_out(F, "ns1", "m1", "nope", 1, &e), -1);
    assert_int_equal(e.kind, FED_ENOTFOUND);
    assert_int_equal(fed_scale_out(F, "ns1", "m1", "web", 0, &e), -1);
    assert_int_equal(e.kind, FED_EINVAL);
    /* A failed scale out leaves nothing behind. */
    fk.bad_region = "r1";
    assert_int_equal(fed_scale_out(F, "ns1", "m1", "web", 1, &e), -1);
    mci_status_is("Running:2 (R:2/2)");
}

static void native_scale_out(void **state)
{
    native = fake;
    native.scale_out = f_scale_out;
    fed_close(F);
    F = open_with(&native);
    struct fed_error e;
    assert_int_equal(fed_scale_out(F, "ns1", "m1", "db", 2, &e), 2);
    assert_int_equal(fk.native_calls, 1);
    assert_int_equal(state_of("db-native1"), FED_VM_RUNNING);
    mci_status_is("Running:5 (R:5/5)");
}

/* Every native VM returned: created ones that came up stay (autogen), the one that did not
 * is terminated and removed, and the error says so. */
static void native_scale_out_partial(void **state)
{
    native = fake;
    native.scale_out = f_scale_out;
    fed_close(F);
    F = open_with(&native);
    struct fed_error e;
    fk.native_up = 2;
    assert_int_equal(fed_scale_out(F, "ns1", "m1", "db", 3, &e), -1);
    assert_int_equal(e.kind, FED_ETIMEOUT);
    assert_non_null(strstr(e.message, "db-native2 is still Creating"));
    assert_non_null(strstr(e.message, "2 of 3 new VMs are Running and recorded"));
    assert_int_equal(state_of("db-native0"), FED_VM_RUNNING);
    assert_int_equal(state_of("db-native1"), FED_VM_RUNNING);
    assert_int_equal(state_of("db-native2"), FED_VM_STATE_COUNT);
    assert_int_equal(fk.vms[find("db-native2")].state, FED_VM_TERMINATED);
    struct fed_mci m;
    assert_int_equal(fed_store_get(fed_store_of(F), "ns1", "m1", &m, &e), 0);
    assert_true(fed_mci_find_vm(&m, "db-native0")->autogen);
    assert_string_equal(fed_mci_find_vm(&m, "db-native1")->subgroup, "db");
    fed_mci_free(&m);
    mci_status_is("Running:5 (R:5/5)");
    /* They are the model's now: scale in removes them first. */
    assert_int_equal(fed_scale_in(F, "ns1", "m1", "db", 2, &e), 2);
    assert_int_equal(state_of("db-native0"), FED_VM_STATE_COUNT);
    assert_int_equal(fk.vms[find("db-native1")].state, FED_VM_TERMINATED);
    assert_int_equal(state_of("db-1"), FED_VM_RUNNING);
    /* A driver claiming success with a VM not Running is not believed either. */
    fk.native_up = -1;
    fk.native_lie = 1;
    assert_int_equal(fed_scale_out(F, "ns1", "m1", "db", 2, &e), -1);
    assert_non_null(strstr(e.message, "came up Creating"));
    assert_non_null(strstr(e.message, "1 of 2 new VMs are Running and recorded"));
    mci_status_is("Running:4 (R:4/4)");
}

/* A reboot whose driver call failed is a failure even though the VM reads Running: Running
 * is where a reboot starts too. */
static void failed_reboot_is_not_success(void **state)
{
    (void)state;
    struct fed_error e;
    fk.fail_reboot = 1;
    assert_int_equal(fed_vm_action(F, "ns1", "m1", "web-1", FED_ACT_REBOOT, &e), -1);
    assert_string_equal(e.call, "GET /fake/control?action=reboot");
    assert_int_equal(e.status, 503);
    assert_non_null(strstr(e.message, "reboot refused"));
    /* The model says what is real (still Running, no action under way) and why. */
    struct fed_mci m;
    assert_int_equal(fed_store_get(fed_store_of(F), "ns1", "m1", &m, &e), 0);
    struct fed_vm *v = fed_mci_find_vm(&m, "web-1");
    assert_int_equal(v->state, FED_VM_RUNNING);
    assert_int_equal(v->target_action, FED_ACT_NONE);
    assert_non_null(strstr(v->message, "reboot refused"));
    fed_mci_free(&m);
    /* The whole MCI: every VM fails, and the call says so. */
    assert_int_equal(fed_mci_action(F, "ns1", "m1", FED_ACT_REBOOT, &e), -1);
    assert_non_null(strstr(e.message, "and 2 more of 3 VMs failed"));
    /* Nothing was left in progress: once the backend works again, the reboot goes through. */
    fk.fail_reboot = 0;
    assert_int_equal(fed_vm_action(F, "ns1", "m1", "web-1", FED_ACT_REBOOT, &e), 0);
}

/* A status the driver cannot read fails the refresh, the others are still refreshed. */
static void refresh_reports_unread_status(void **state)
{
    (void)state;
    struct fed_error e;
    fk.bad_status = "web-2";
    fk.vms[find("db-1")].state = FED_VM_FAILED;
    struct fed_mci m;
    assert_int_equal(fed_mci_refresh(F, "ns1", "m1", &m, &e), -1);
    assert_string_equal(e.call, "GET /fake/vm");
    assert_int_equal(e.status, 500);
    assert_int_equal(m.nvms, 3);
    assert_int_equal(fed_mci_find_vm(&m, "db-1")->state, FED_VM_FAILED);
    assert_int_equal(fed_mci_find_vm(&m, "web-2")->state, FED_VM_RUNNING);
    fed_mci_free(&m);
    assert_int_equal(state_of("db-1"), FED_VM_FAILED);
    fk.bad_status = NULL;
    assert_int_equal(fed_mci_refresh(F, "ns1", "m1", &m, &e), 0);
    fed_mci_free(&m);
    /* A transient state a refresh saw in the backend is read again next time (only an
     * action's own in-progress record is left to that action). */
    fk.vms[find("web-1")].state = FED_VM_REBOOTING;
    assert_int_equal(fed_mci_refresh(F, "ns1", "m1", &m, &e), 0);
    fed_mci_free(&m);
    assert_int_equal(state_of("web-1"), FED_VM_REBOOTING);
    fk.vms[find("web-1")].state = FED_VM_RUNNING;
    assert_int_equal(fed_mci_refresh(F, "ns1", "m1", &m, &e), 0);
    fed_mci_free(&m);
    assert_int_equal(state_of("web-1"), FED_VM_RUNNING);
    assert_int_equal(fed_mci_refresh(F, "ns1", "nope", &m, &e), -1);
    assert_int_equal(e.kind, FED_ENOTFOUND);
    fed_mci_free(&m);
}

static void unsupported_and_unknown(void **state)
{
    (void)state;
    struct fed_error e;
    assert_int_equal(fed_node_cordon(F, "n1", 1, 0, &e), -1);
    assert_int_equal(e.kind, FED_EUNSUPPORTED);
    assert_string_equal(e.message, "driver fake does not support cordon");
    assert_int_equal(fed_node_drain(F, "n1", NULL, &e), -1);
    assert_string_equal(e.message, "driver fake does not support drain");
    assert_int_equal(fed_scale(F, FED_SCALE_DEPLOYMENT, "default", "web", 3, 0, NULL, &e), -1);
    assert_string_equal(e.message, "driver fake does not support scale");

    assert_null(fed_driver_find("nope", &e));
    assert_string_equal(e.message, "unknown driver 'nope' (known: local, tumblebug, kubernetes)");
    assert_ptr_equal(fed_driver_find("local", &e), &fed_driver_local);
    struct fed_config c = {.state_dir = dir, .driver = "nope"};
    assert_null(fed_open(&c, &e));
    assert_non_null(strstr(e.message, "unknown driver 'nope'"));
    c.driver = NULL;
    assert_null(fed_open(&c, &e));
    struct fed_config none = {.state_dir = NULL};
    assert_null(fed_open_driver(&fake, &none, &e));
    assert_non_null(strstr(e.message, "state.dir"));

    /* Invalid specs never reach the driver. */
    struct fed_vm_spec s = spec("bad/name", 1, "r1");
    int before = fk.creates;
    assert_int_equal(fed_create_mci(F, "ns1", "m2", NULL, &s, 1, &e), -1);
    assert_int_equal(e.kind, FED_EINVAL);
    s = spec("ok", 0, "r1");
    assert_int_equal(fed_create_mci(F, "ns1", "m2", NULL, &s, 1, &e), -1);
    s = spec("ok", 1, "");
    assert_int_equal(fed_create_mci(F, "ns1", "m2", NULL, &s, 1, &e), -1);
    assert_non_null(strstr(e.message, "no region"));
    s = spec("web", 1, "r1");
    assert_int_equal(fed_create_mci(F, "ns1", "m1", NULL, &s, 1, &e), -1);
    assert_non_null(strstr(e.message, "already has a subgroup 'web'"));
    assert_int_equal(fed_create_mci(F, "bad ns", "m2", NULL, &s, 1, &e), -1);
    assert_int_equal(fk.creates, before);

    /* Driver options from JSON and key=value, checked by the driver's table. */
    struct fed_config lc = {.state_dir = dir, .driver_json = "{\"freezer\": \"sometimes\"}"};
    assert_null(fed_open_driver(&fed_driver_local, &lc, &e));
    assert_non_null(strstr(e.message, "freezer 'sometimes'"));
    const char *sets[] = {"no_such_key=1", NULL};
    lc.driver_json = NULL;
    lc.driver_set = sets;
    assert_null(fed_open_driver(&fed_driver_local, &lc, &e));
    assert_non_null(strstr(e.message, "no_such_key"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(create_and_act, setup, teardown),
        cmocka_unit_test_setup_teardown(driver_claims_are_checked, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_callers, setup, teardown),
        cmocka_unit_test_setup_teardown(migrate_ok, setup, teardown),
        cmocka_unit_test_setup_teardown(migrate_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(scale_out_in, setup, teardown),
        cmocka_unit_test_setup_teardown(removal_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(native_scale_out, setup, teardown),
        cmocka_unit_test_setup_teardown(native_scale_out_partial, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_reboot_is_not_success, setup, teardown),
        cmocka_unit_test_setup_teardown(refresh_reports_unread_status, setup, teardown),
        cmocka_unit_test_setup_teardown(unsupported_and_unknown, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
