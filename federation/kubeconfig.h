/*
 * Where the Kubernetes driver finds its API server and credentials: a kubeconfig file or
 * the in-cluster service account.
 *
 * A kubeconfig may be JSON or YAML (read with libyaml: one document; anchors, aliases and
 * tags are refused with a message naming the line, as no kubeconfig writer uses them).
 *
 * Used fields: current-context (or an explicit context) -> context.cluster, context.user,
 * context.namespace; cluster.server, certificate-authority(-data), insecure-skip-tls-verify;
 * user.token, tokenFile, client-certificate(-data), client-key(-data), username/password.
 * Relative file names are relative to the kubeconfig's directory, as kubectl reads them.
 */
#ifndef DSF_FED_KUBECONFIG_H
#define DSF_FED_KUBECONFIG_H

#include <jansson.h>
#include <stddef.h>

struct fed_rest_config;

struct kube_config {
    char *server; /* "https://host:port" */
    char *ca_file, *cert_file, *key_file;
    char *ca_pem, *cert_pem, *key_pem; /* decoded *-data fields */
    size_t ca_pem_len, cert_pem_len, key_pem_len;
    char *token;
    char *username, *password;
    int insecure;
    char *namespace;  /* context's namespace, or the service account's; NULL: "default" */
    char *context;    /* the context used (NULL in-cluster) */
    char origin[256]; /* file name or "in-cluster service account" */
};

/* Parses kubeconfig text. context NULL = current-context; dir resolves relative file names
 * (NULL = current directory). Returns 0, or -1 with a message naming origin and field. */
int kubeconfig_parse(const char *text, size_t len, const char *context, const char *dir,
                     const char *origin, struct kube_config *out, char *err, size_t errlen);
int kubeconfig_load(const char *path, const char *context, struct kube_config *out, char *err,
                    size_t errlen);
/* The pod's service account: KUBERNETES_SERVICE_HOST/PORT and sa_dir/{token,ca.crt,namespace}
 * (sa_dir NULL = /var/run/secrets/kubernetes.io/serviceaccount). */
int kubeconfig_in_cluster(const char *sa_dir, struct kube_config *out, char *err, size_t errlen);
/* kubectl's order: path if given, else the first file of $KUBECONFIG, else ~/.kube/config if
 * it exists, else the in-cluster service account when KUBERNETES_SERVICE_HOST is set. */
int kubeconfig_resolve(const char *path, const char *context, const char *sa_dir,
                       struct kube_config *out, char *err, size_t errlen);
void kubeconfig_free(struct kube_config *c);

/* Fills the connection part of a REST config (pointers into c; c must outlive it). */
void kubeconfig_rest_config(const struct kube_config *c, struct fed_rest_config *rc);

/* The YAML reader on its own: returns a JSON tree (scalars are strings, plain true/false
 * booleans, plain null/~/nothing null) or NULL with "line N: ..." in err. JSON input is
 * accepted too. */
json_t *kubeconfig_yaml_parse(const char *text, size_t len, char *err, size_t errlen);

/* A secret file's content (a token, a namespace) without its trailing line break or
 * blanks; NULL with "path: reason" in err. The caller frees it. */
char *kubeconfig_read_trimmed(const char *path, char *err, size_t errlen);
/* len of s without its trailing line breaks and blanks. */
size_t kubeconfig_trimmed_len(const char *s, size_t len);

#endif
