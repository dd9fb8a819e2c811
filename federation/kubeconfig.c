/* A kubeconfig document's meaning: the context, its cluster and its user's credentials. */
#define DSF_MODULE "fed-k8s"
#include "federation/kubeconfig.h"
#include "common/base64.h"
#include "common/log.h"
#include "federation/rest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kc_ctx {
    const char *origin, *dir;
    char *err;
    size_t errlen;
};

static int kc_fail(struct kc_ctx *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int kc_fail(struct kc_ctx *k, const char *fmt, ...)
{
    int n = snprintf(k->err, k->errlen, "kubeconfig %s: ", k->origin);
    if (n >= 0 && (size_t)n < k->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(k->err + n, k->errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static const char *str_field(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s && s[0] ? s : NULL;
}

/* The "inner" object of the entry in list whose name is name ({name, cluster: {...}}). */
static json_t *named_entry(json_t *root, const char *list, const char *inner, const char *name)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(root, list), i, e)
    {
        const char *n = json_string_value(json_object_get(e, "name"));
        if (n && !strcmp(n, name)) {
            json_t *in = json_object_get(e, inner);
            return json_is_object(in) ? in : NULL;
        }
    }
    return NULL;
}

static char *resolve_path(const char *dir, const char *p)
{
    char *out = NULL;
    if (p[0] == '/' || !dir || !dir[0])
        return strdup(p);
    if (asprintf(&out, "%s/%s", dir, p) < 0)
        return NULL;
    return out;
}

static int decode_field(struct kc_ctx *k, const json_t *obj, const char *key, char **out,
                        size_t *outlen)
{
    const char *b64 = str_field(obj, key);
    if (!b64)
        return 0;
    *out = dsf_base64_decode(b64, strlen(b64), outlen);
    if (!*out)
        return kc_fail(k, "%s is not valid base64", key);
    return 0;
}

static int file_field(struct kc_ctx *k, const json_t *obj, const char *key, char **out)
{
    const char *p = str_field(obj, key);
    if (!p)
        return 0;
    *out = resolve_path(k->dir, p);
    return *out ? 0 : kc_fail(k, "out of memory");
}

static int kc_cluster(struct kc_ctx *k, const json_t *cl, struct kube_config *out)
{
    const char *server = str_field(cl, "server");
    if (!server)
        return kc_fail(k, "cluster has no server");
    if (strncmp(server, "https://", 8) && strncmp(server, "http://", 7))
        return kc_fail(k, "server '%s' is not an http(s) URL", server);
    out->server = strdup(server);
    json_t *insecure = json_object_get(cl, "insecure-skip-tls-verify");
    out->insecure = json_is_true(insecure) ||
                    (json_is_string(insecure) && !strcmp(json_string_value(insecure), "true"));
    if (str_field(cl, "proxy-url"))
        log_warn("kubeconfig %s: proxy-url is ignored", k->origin);
    if (decode_field(k, cl, "certificate-authority-data", &out->ca_pem, &out->ca_pem_len))
        return -1;
    if (!out->ca_pem && file_field(k, cl, "certificate-authority", &out->ca_file))
        return -1;
    return out->server ? 0 : kc_fail(k, "out of memory");
}

static int kc_token_file(struct kc_ctx *k, const json_t *user, struct kube_config *out)
{
    char *path = NULL;
    if (file_field(k, user, "tokenFile", &path) || !path)
        return path ? -1 : 0;
    char err[300];
    out->token = kubeconfig_read_trimmed(path, err, sizeof(err));
    free(path);
    return out->token ? 0 : kc_fail(k, "tokenFile: %s", err);
}

/* A token goes into an HTTP header: a line break in it would inject headers. */
static int check_token(struct kc_ctx *k, const char *token)
{
    for (const unsigned char *p = (const unsigned char *)token; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return kc_fail(k, "the user's token contains control characters");
    return 0;
}

static int kc_user(struct kc_ctx *k, const json_t *user, struct kube_config *out)
{
    const char *token = str_field(user, "token");
    if (token && !(out->token = strndup(token, kubeconfig_trimmed_len(token, strlen(token)))))
        return kc_fail(k, "out of memory");
    if (!out->token && kc_token_file(k, user, out))
        return -1;
    if (out->token && check_token(k, out->token))
        return -1;
    if (decode_field(k, user, "client-certificate-data", &out->cert_pem, &out->cert_pem_len) ||
        decode_field(k, user, "client-key-data", &out->key_pem, &out->key_pem_len))
        return -1;
    if ((!out->cert_pem && file_field(k, user, "client-certificate", &out->cert_file)) ||
        (!out->key_pem && file_field(k, user, "client-key", &out->key_file)))
        return -1;
    const char *u = str_field(user, "username"), *pw = str_field(user, "password");
    if (u && (!(out->username = strdup(u)) || !(out->password = strdup(pw ? pw : ""))))
        return kc_fail(k, "out of memory");
    int have_cert = out->cert_pem || out->cert_file, have_key = out->key_pem || out->key_file;
    if (have_cert != have_key)
        return kc_fail(k, "user has a client certificate without its key, or a key without "
                          "its certificate");
    if (!out->token && !have_cert && !out->username &&
        (json_object_get(user, "exec") || json_object_get(user, "auth-provider")))
        return kc_fail(k, "user authenticates through an exec or auth-provider plugin, which "
                          "is not supported: give it a token or a client certificate");
    return 0;
}

static int kc_select(struct kc_ctx *k, json_t *root, const char *context, struct kube_config *out)
{
    const char *name = context ? context : str_field(root, "current-context");
    if (!name)
        return kc_fail(k, "no current-context, and no context given");
    json_t *ctx = named_entry(root, "contexts", "context", name);
    if (!ctx)
        return kc_fail(k, "context '%s' not found", name);
    out->context = strdup(name);
    const char *cname = str_field(ctx, "cluster"), *uname = str_field(ctx, "user");
    if (!cname)
        return kc_fail(k, "context '%s' names no cluster", name);
    json_t *cl = named_entry(root, "clusters", "cluster", cname);
    if (!cl)
        return kc_fail(k, "cluster '%s' (of context '%s') not found", cname, name);
    const char *ns = str_field(ctx, "namespace");
    if (ns && !(out->namespace = strdup(ns)))
        return kc_fail(k, "out of memory");
    if (kc_cluster(k, cl, out))
        return -1;
    if (!uname)
        return 0; /* anonymous, e.g. a local proxy */
    json_t *user = named_entry(root, "users", "user", uname);
    if (!user)
        return kc_fail(k, "user '%s' (of context '%s') not found", uname, name);
    return kc_user(k, user, out);
}

int kubeconfig_parse(const char *text, size_t len, const char *context, const char *dir,
                     const char *origin, struct kube_config *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->origin, sizeof(out->origin), "%s", origin ? origin : "(text)");
    struct kc_ctx k = {.origin = out->origin, .dir = dir, .err = err, .errlen = errlen};
    char perr[256];
    json_t *root = kubeconfig_yaml_parse(text, len, perr, sizeof(perr));
    if (!root)
        return kc_fail(&k, "%s", perr);
    int rc = json_is_object(root) ? kc_select(&k, root, context, out)
                                  : kc_fail(&k, "not a mapping of clusters, contexts and users");
    json_decref(root);
    if (rc)
        kubeconfig_free(out);
    return rc;
}

void kubeconfig_free(struct kube_config *c)
{
    free(c->server);
    free(c->ca_file);
    free(c->cert_file);
    free(c->key_file);
    free(c->ca_pem);
    free(c->cert_pem);
    fed_free_secret(c->key_pem, c->key_pem_len);
    fed_free_secret(c->token, c->token ? strlen(c->token) : 0);
    free(c->username);
    fed_free_secret(c->password, c->password ? strlen(c->password) : 0);
    free(c->namespace);
    free(c->context);
    char origin[sizeof(c->origin)];
    memcpy(origin, c->origin, sizeof(origin));
    memset(c, 0, sizeof(*c));
    memcpy(c->origin, origin, sizeof(origin));
}

void kubeconfig_rest_config(const struct kube_config *c, struct fed_rest_config *rc)
{
    rc->base_url = c->server;
    rc->bearer_token = c->token;
    rc->basic_user = c->token ? NULL : c->username;
    rc->basic_password = c->token ? NULL : c->password;
    rc->ca_file = c->ca_file;
    rc->ca_pem = c->ca_pem;
    rc->ca_pem_len = c->ca_pem_len;
    rc->cert_file = c->cert_file;
    rc->cert_pem = c->cert_pem;
    rc->cert_pem_len = c->cert_pem_len;
    rc->key_file = c->key_file;
    rc->key_pem = c->key_pem;
    rc->key_pem_len = c->key_pem_len;
    rc->insecure = c->insecure;
}
