/* Where the Kubernetes driver's credentials come from: a kubeconfig file found the way
 * kubectl finds it, or the pod's service account. */
#define DSF_MODULE "fed-k8s"
#include "federation/kubeconfig.h"
#include "common/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"

size_t kubeconfig_trimmed_len(const char *s, size_t len)
{
    while (len > 0 &&
           (s[len - 1] == '\n' || s[len - 1] == '\r' || s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    return len;
}

char *kubeconfig_read_trimmed(const char *path, char *err, size_t errlen)
{
    size_t len = 0;
    char *text = dsf_read_file(path, &len);
    if (!text) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    text[kubeconfig_trimmed_len(text, len)] = '\0';
    return text;
}

int kubeconfig_load(const char *path, const char *context, struct kube_config *out, char *err,
                    size_t errlen)
{
    size_t len = 0;
    memset(out, 0, sizeof(*out));
    char *text = dsf_read_file(path, &len);
    if (!text) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    char *dir = strdup(path);
    char *slash = dir ? strrchr(dir, '/') : NULL;
    if (slash)
        *slash = '\0';
    int rc = kubeconfig_parse(text, len, context, slash ? (dir[0] ? dir : "/") : NULL, path, out,
                              err, errlen);
    free(dir);
    free(text);
    return rc;
}

static int read_sa_file(const char *dir, const char *name, char **out, int required, char *err,
                        size_t errlen)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (access(path, R_OK) != 0 && !required)
        return 0;
    *out = kubeconfig_read_trimmed(path, err, errlen);
    return *out ? 0 : -1;
}

int kubeconfig_in_cluster(const char *sa_dir, struct kube_config *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->origin, sizeof(out->origin), "in-cluster service account");
    const char *host = getenv("KUBERNETES_SERVICE_HOST");
    const char *port = getenv("KUBERNETES_SERVICE_PORT");
    if (!host || !host[0] || !port || !port[0]) {
        snprintf(err, errlen,
                 "in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
                 "are not set (not running in a pod?)");
        return -1;
    }
    const char *dir = sa_dir ? sa_dir : SA_DIR;
    int v6 = strchr(host, ':') != NULL;
    char ca[512];
    snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
    if (asprintf(&out->server, "https://%s%s%s:%s", v6 ? "[" : "", host, v6 ? "]" : "", port) < 0 ||
        !(out->ca_file = strdup(ca))) {
        out->server = NULL;
        kubeconfig_free(out);
        snprintf(err, errlen, "in-cluster: out of memory");
        return -1;
    }
    if (read_sa_file(dir, "token", &out->token, 1, err, errlen) ||
        read_sa_file(dir, "namespace", &out->namespace, 0, err, errlen)) {
        kubeconfig_free(out);
        return -1;
    }
    return 0;
}

int kubeconfig_resolve(const char *path, const char *context, const char *sa_dir,
                       struct kube_config *out, char *err, size_t errlen)
{
    if (path && path[0])
        return kubeconfig_load(path, context, out, err, errlen);
    const char *env = getenv("KUBECONFIG");
    if (env && env[0]) {
        /* Merging several files is kubectl's job; the first one is used here. */
        char *first = strndup(env, strcspn(env, ":"));
        int rc = first ? kubeconfig_load(first, context, out, err, errlen) : -1;
        free(first);
        return rc;
    }
    const char *home = getenv("HOME");
    char def[512];
    struct stat st;
    if (home && snprintf(def, sizeof(def), "%s/.kube/config", home) < (int)sizeof(def) &&
        stat(def, &st) == 0)
        return kubeconfig_load(def, context, out, err, errlen);
    if (getenv("KUBERNETES_SERVICE_HOST"))
        return kubeconfig_in_cluster(sa_dir, out, err, errlen);
    snprintf(err, errlen,
             "no kubeconfig: none given, $KUBECONFIG unset, no ~/.kube/config and "
             "not in a pod");
    memset(out, 0, sizeof(*out));
    return -1;
}
