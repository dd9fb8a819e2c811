/*
 * The user data the tumblebug driver gives each VM: deploy/cloud-init/agent.yaml (the file
 * tumblebug.agent_cloud_init names) with its ${NAME} placeholders filled for that one VM,
 * the way an operator renders it with envsubst - identity, broker, release URL and the
 * broker credentials of its agent. Every value is checked to be a plain YAML scalar (no
 * spaces, quotes, '#', '$', braces or control characters), so none can change the
 * document's structure; the VM's shell never sees them (the template passes them as
 * argv elements).
 */
#define DSF_MODULE "fed-tumblebug"
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/file.h"
#include "common/log.h"
#include "federation/bus_creds.h"
#include "federation/driver.h"
#include "federation/drivers/tumblebug.h"

/* URL, id and base64 characters: nothing YAML or a shell would read as syntax. */
static int plain_value(const char *v)
{
    if (strchr("-?:,[]&%@.~=", v[0]))
        return v[0] == 0; /* where YAML would read an indicator */
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') && !(*p >= '0' && *p <= '9') &&
            !strchr("-._~:/?&=%+@,[]", *p))
            return 0;
    }
    return 1;
}

int tb_user_data_open(struct tb_ctx *c, struct fed_error *err)
{
    const struct tb_options *o = c->o;
    const char *path = o->agent_cloud_init;
    if (!path || !path[0]) {
        if (fed_bus_enabled(c->bus))
            return fed_fail(err, FED_EINVAL, "open tumblebug", 0,
                            "bus.password_file is set, but tumblebug.agent_cloud_init is empty: "
                            "name the user data template (deploy/cloud-init/agent.yaml) that "
                            "carries each VM's broker credentials");
        return 0;
    }
    const char *need[][2] = {{"tumblebug.mqtt_url", o->mqtt_url},
                             {"tumblebug.release_url", o->release_url}};
    for (size_t i = 0; i < 2; i++) {
        if (!need[i][1] || !need[i][1][0] || !plain_value(need[i][1]))
            return fed_fail(err, FED_EINVAL, "open tumblebug", 0,
                            "%s '%s': %s (tumblebug.agent_cloud_init needs it)", need[i][0],
                            need[i][1] ? need[i][1] : "",
                            need[i][1] && need[i][1][0] ? "spaces, quotes, '#' and '$' are not "
                                                          "allowed in it"
                                                        : "required");
    }
    if (!(c->ud_template = dsf_read_file(path, NULL)))
        return fed_fail(err, FED_EINVAL, "open tumblebug", errno,
                        "tumblebug.agent_cloud_init '%s': %s", path, strerror(errno));
    if (strncmp(c->ud_template, "#cloud-config", 13))
        return fed_fail(err, FED_EINVAL, "open tumblebug", 0,
                        "tumblebug.agent_cloud_init '%s' does not start with #cloud-config", path);
    return 0;
}

void tb_user_data_close(struct tb_ctx *c)
{
    free(c->ud_template);
    c->ud_template = NULL;
}

void tb_user_data_free(char *ud)
{
    if (ud)
        explicit_bzero(ud, strlen(ud));
    free(ud);
}

/* The template with every ${NAME} of names[] replaced by its value; others stay. */
static char *render(const char *tmpl, const char *const (*vals)[2], size_t n)
{
    struct dsf_buf b = {0};
    for (const char *p = tmpl; *p;) {
        const char *d = strstr(p, "${");
        if (!d) {
            buf_puts(&b, p);
            break;
        }
        buf_put(&b, p, (size_t)(d - p));
        const char *close = strchr(d, '}');
        size_t i = 0;
        while (close && i < n &&
               (strlen(vals[i][0]) != (size_t)(close - d - 2) ||
                strncmp(d + 2, vals[i][0], (size_t)(close - d - 2))))
            i++;
        if (close && i < n) {
            buf_puts(&b, vals[i][1]);
            p = close + 1;
        } else {
            buf_put(&b, d, 2);
            p = d + 2;
        }
    }
    buf_cstr(&b);
    if (b.oom) {
        if (b.data)
            explicit_bzero(b.data, b.cap);
        buf_free(&b);
        return NULL;
    }
    return b.data;
}

int tb_user_data(struct tb_ctx *c, const struct fed_vm *vm, const char *id, char **out,
                 struct fed_error *err)
{
    *out = NULL;
    if (!c->ud_template)
        return 0;
    char user[FED_BUS_USER_MAX + 1], password[FED_BUS_PASSWORD_MAX];
    const char *const vals[][2] = {
        {"NS", vm->ns},
        {"MCI", vm->mci},
        {"VM", id},
        {"CSP", vm->spec.csp},
        {"REGION", vm->spec.region},
        {"MQTT_URL", c->o->mqtt_url},
        {"RELEASE_URL", c->o->release_url},
        {"MQTT_USERNAME", user},
        {"MQTT_PASSWORD", password},
    };
    for (size_t i = 0; i < 5; i++) {
        if (!plain_value(vals[i][1]))
            return fed_fail(err, FED_EINVAL, "user data", 0,
                            "%s '%s' cannot go into the user data: spaces, quotes, '#' and '$' "
                            "are not allowed",
                            vals[i][0], vals[i][1]);
    }
    if (fed_bus_provision(c->bus, vm->ns, vm->mci, id, user, sizeof(user), password,
                          sizeof(password), err) < 0)
        return -1;
    if (!password[0])
        user[0] = 0; /* not provisioned: the agent connects without a user name */
    *out = render(c->ud_template, vals, sizeof(vals) / sizeof(vals[0]));
    explicit_bzero(password, sizeof(password));
    if (*out)
        return 0;
    struct fed_error e;
    if (user[0] && fed_bus_revoke_vm(c->bus, vm->ns, vm->mci, id, &e) < 0)
        log_warn("%s: %s", user, e.message);
    return tb_oom(err, "user data");
}
