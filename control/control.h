/*
 * damselfly-control: the quality controller (docs/control.md). One struct control owns
 * everything the daemon allocates; the loop thread owns its state, worker threads only run
 * federation calls (executor.c) and hand their results back through a queue.
 *
 *   input.c     bus (alarm events, agent status), Alertmanager webhooks, start-up reconcile
 *   fleet.c     what the controller knows of VMs: agent status, active alarm series
 *   decide.c    event -> policies -> target -> guards -> action
 *   action.c    the actions: chain of steps, verification, escalation, hold
 *   executor.c  worker threads running federation calls, one handle per driver
 *   replay.c    state rebuilt from the audit trail; in-flight steps reconciled after a crash
 *   api.c       the HTTP API
 */
#ifndef DSF_CONTROL_H
#define DSF_CONTROL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/bus_config.h"
#include "common/config.h"
#include "common/htab.h"
#include "common/metrics.h"
#include "control/event.h"
#include "control/guards.h"
#include "control/policy.h"
#include "federation/fed_options.h"

struct control_config {
    char *id;
    char *input; /* mqtt or kafka: where alarm events come from */
    char *policies_dir;
    char *state_dir;
    int dry_run;                /* every policy decides and audits without acting */
    int approval;               /* every action waits for POST /api/v1/actions/{id}/approve */
    struct dsf_strlist engines; /* alarm engines' base URLs: reconcile and API proxy */
    int64_t settle_ms;          /* firing events */
    int64_t settle_nodata_ms;   /* nodata events: deadlines of a storm spread over an interval */
    int64_t collector_timeout_ms;
    uint64_t webhook_max_bytes;
    int64_t max_actions;     /* actions kept for the API (finished ones beyond it are forgotten) */
    int64_t console_idle_ms; /* a console session unused this long ends */
    int64_t console_max_ms;  /* and any session this old */
    char *fed_dir;
    int64_t ondemand_timeout_ms;           /* on-demand answers waited for (control/ondemand.c) */
    int64_t ondemand_max;                  /* requests on the bus waiting for an answer, at most */
    int64_t netlatency_port;               /* 0: the port of the VM's address in the model */
    struct dsf_strlist engine_token_files; /* one, or one per engine */
    char *engine_ca_file;
    int64_t engine_timeout_ms; /* a proxied request's wait for each engine */
    struct fed_options fed;
    struct guard_config guards;
    struct dsf_mqtt_config mqtt;
    struct dsf_kafka_config kafka;
};

extern const struct dsf_cfg_key control_config_keys[];
extern const struct dsf_cfg_key control_guard_keys[];

/* damselfly-control audit ...: argv[0] is "audit". Returns the exit status. */
int control_audit_command(int argc, char **argv);

/* ---- actions ---- */

enum ctl_kind { CTL_KIND_VM, CTL_KIND_SUBGROUP, CTL_KIND_NODE, CTL_KIND_WORKLOAD };
const char *ctl_kind_name(enum ctl_kind k);

enum ctl_phase {
    CTL_APPROVAL,  /* waiting for an operator */
    CTL_WAITING,   /* the next step waits (paused, breaker open) */
    CTL_RUNNING,   /* a step's federation call is on a worker */
    CTL_VERIFYING, /* the step ended well: waiting for the alarm to clear and the agent */
    CTL_DONE,
};
const char *ctl_phase_name(enum ctl_phase p);

struct ctl_action {
    struct dsf_hlink link; /* control.actions by id */
    struct ctl_action *next;
    char id[32];
    struct policy policy; /* a copy: the policy may change while the chain runs */
    enum ctl_kind kind;
    char ns[64], mci[64], target[128]; /* target: vm, subgroup, node or workload ns/name */
    char wl_ns[64];                    /* k8s_scale: the workload's namespace */
    struct ctl_event alarm;            /* what started it (manual: rule "manual") */
    char series[CTL_EVENT_KEY_MAX];    /* the alarm's series, to see it clear */
    enum ctl_phase phase;
    int step;         /* current step */
    int dry_run;      /* decided, audited, not acted on */
    int cancel;       /* stop after the running step */
    int committed;    /* the decision was to run: waiting steps are retried */
    char outcome[16]; /* when done: healed, exhausted, cancelled, failed, rolled_back */
    char last_error[512];
    char new_id[64];       /* migrate: the replacement VM */
    int size_before;       /* scale: the subgroup's size when the step began */
    int scale_n;           /* scale: VMs to add or remove */
    int64_t created_ms;    /* wall clock */
    int64_t step_began_ms; /* wall clock */
    int64_t verify_until_ms;
    int64_t hold_until_ms;
    int replayed;          /* rebuilt from the audit at start */
    int in_flight_unknown; /* replayed with a step begun but not ended: reconcile it */
    int policy_gone;       /* replayed, its policy no longer loaded: no step begins */
    json_t *records;       /* its last CTL_ACTION_RECORDS audit records, compact JSON text */
};

#define CTL_ACTION_RECORDS 32

struct control;

/* Audit a record about the action (adds action, policy, ns, mci, target, kind). Takes rec. */
int ctl_record_action(struct control *c, const struct ctl_action *a, json_t *rec);
/* Audit (crash-safe), then publish (bus, store, notifier). Takes rec. 0 or -1 (logged). */
int ctl_record(struct control *c, json_t *rec);

struct ctl_action *ctl_action_new(struct control *c, const struct policy *p, enum ctl_kind kind,
                                  const char *ns, const char *mci, const char *target,
                                  const struct ctl_event *alarm);
struct ctl_action *ctl_action_find(struct control *c, const char *id);
/* What the guards know a's target by (strings borrowed from a). */
struct guard_target ctl_guard_target(const struct ctl_action *a);
/* Begins (or resumes) the chain at a->step; checks pause and breaker first. */
void ctl_action_run(struct control *c, struct ctl_action *a);
/* A worker finished a's step. */
void ctl_action_step_done(struct control *c, struct ctl_action *a, int ok, const char *error,
                          const char *detail);
void ctl_action_finish(struct control *c, struct ctl_action *a, const char *outcome, int hold);
/* Once a second and on every status/alarm change: verification, waiting steps. */
void ctl_actions_tick(struct control *c);
json_t *ctl_action_json(const struct ctl_action *a);
/* A record as the audit wrote it: kept with its action (field "action") for the API's
 * GET /api/v1/actions/{id}, the oldest dropped beyond CTL_ACTION_RECORDS. */
void ctl_action_keep_record(struct control *c, const json_t *rec);
/* a's records, oldest first, as JSON objects. */
json_t *ctl_action_records(const struct ctl_action *a);
void ctl_actions_free(struct control *c);

/* ---- decisions ---- */

/* An alarm occurrence from any input. source: "bus", "alertmanager", "reconcile". */
void ctl_decide(struct control *c, const struct ctl_event *e, const char *source);
/* A manual action (API): {"action": "reboot", "ns", "mci", "vm" | "subgroup" | "node", ...}.
 * Returns the action (audited) or NULL with an HTTP status and err. */
struct ctl_action *ctl_decide_manual(struct control *c, json_t *body, int *status, char *err,
                                     size_t errlen);
/* After settle or approval: the guards, then run. */
void ctl_decide_commit(struct control *c, struct ctl_action *a, int approved);

/* ---- fleet ---- */

struct fleet;
struct fleet *fleet_new(void);
void fleet_free(struct fleet *f);
/* status: 1 online, 0 offline, 2 cleared (VM removed). Returns 1 when it changed. Thread-safe. */
int fleet_status(struct fleet *f, const char *ns, const char *mci, const char *vm, int status,
                 int64_t now_ms);
/* 1 online, 0 offline, -1 never seen; since (may be NULL) receives when it changed. */
int fleet_online(struct fleet *f, const char *ns, const char *mci, const char *vm,
                 int64_t *since_ms);
/* The state of an alarm series from its latest event (state "" forgets it); the event's
 * rule, severity and target are kept for the console. */
void fleet_alarm(struct fleet *f, const char *series, const struct ctl_event *e, int64_t now_ms);
/* The series in state ("firing"; NULL: all): [{rule, vm ({ns}/{mci}/{vm} or the group's labels),
 * state, severity, since_ms}]. */
json_t *fleet_alarms_json(struct fleet *f, const char *state);
/* "" when the series is not known (never seen, or forgotten). */
const char *fleet_alarm_state(struct fleet *f, const char *series);
/* Alarm series in nodata for this VM: part of its health for the breaker. */
int fleet_vm_nodata(struct fleet *f, const char *ns, const char *mci, const char *vm, int delta);

/* ---- executor ---- */

struct executor;
struct executor *executor_new(struct control *c, char *err, size_t errlen);
/* Runs a's current step on a worker thread; the result comes back through
 * ctl_action_step_done on the loop. 0, or -1 with err (the step then failed). */
int executor_start(struct executor *x, struct ctl_action *a, char *err, size_t errlen);
/* Before a's current step is journaled: works out what the step needs and adds it to its
 * begin record (the driver, migrate's new VM id, a subgroup's size): what a reconcile after
 * a crash needs. 0, or -1 with err (the step fails without a call: at max, no such VM). */
int executor_prepare(struct executor *x, struct ctl_action *a, json_t *rec, char *err,
                     size_t errlen);
/* Reconciles a replayed step that began before a crash: finishes it or rolls it back, never
 * running it again; the outcome comes back as for executor_start. */
int executor_reconcile(struct executor *x, struct ctl_action *a, char *err, size_t errlen);
size_t executor_running(const struct executor *x);
/* Waits for the workers (they are bounded by the federation's timeouts) and frees. */
void executor_free(struct executor *x);
/* The federation's view of one MCI (read from the store, no driver call). 0 or -1. */
struct fed_mci;
int executor_mci(struct executor *x, const char *ns, const char *mci, struct fed_mci *out);
/* Every MCI of the store as {ns, mci} names: for the guards' MCI sizes and the API. */
json_t *executor_mci_list(struct executor *x);

/* ---- replay ---- */

/* Called by the audit with each record at start. */
void ctl_replay_record(void *arg, json_t *rec);
/* After the audit is open: actions left unfinished are resumed or reconciled. */
void ctl_replay_resume(struct control *c);

/* ---- handled alarm occurrences ---- */

/* 1 when key was acted on already (also before a restart), else marks it and returns 0. */
int ctl_handled_mark(struct control *c, const char *key);
/* Forgets key: an occurrence blocked only because actions were paused or the breaker was
 * open is decided again when it comes back. */
void ctl_handled_unmark(struct control *c, const char *key);

/* ---- input and API ---- */

int ctl_input_start(struct control *c, char *err, size_t errlen);
void ctl_input_stop(struct control *c);
/* The engines' active alarms, read once (asynchronously) when the bus first connects. */
void ctl_input_reconcile(struct control *c);
int ctl_api_register(struct control *c, char *err, size_t errlen);
struct dsf_http_server;
int ctl_input_register(struct control *c, struct dsf_http_server *http);
/* The monitoring query routes (control/query.c): 0 or -1. */
int ctl_query_register(struct control *c, struct dsf_http_server *http);
/* Once a second: collectors that stopped beating. */
void ctl_input_tick(struct control *c);

#endif
