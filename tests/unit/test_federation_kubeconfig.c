/* The kubeconfig reader (YAML and JSON, contexts, inline and file credentials,
 * in-cluster) and the REST helper's encoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "federation/kubeconfig.h"
#include "federation/rest.h"

/* base64 of "-----BEGIN CERTIFICATE-----\n" and "KEY\n" */
#define CA_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="
#define KEY_B64 "S0VZCg=="

static int parse(const char *text, const char *context, const char *dir, struct kube_config *kc,
                 char *err)
{
    return kubeconfig_parse(text, strlen(text), context, dir, "test", kc, err, 512);
}

/* What kind and kubectl write: "- cluster:" items at the parent key's indentation. */
static void kind_style(void **state)
{
    const char *text = "apiVersion: v1\n"
                       "clusters:\n"
                       "- cluster:\n"
                       "    certificate-authority-data: " CA_B64 "\n"
                       "    server: https://127.0.0.1:36443\n"
                       "  name: kind-kind\n"
                       "contexts:\n"
                       "- context:\n"
                       "    cluster: kind-kind\n"
                       "    user: kind-kind\n"
                       "  name: kind-kind\n"
                       "current-context: kind-kind\n"
                       "kind: Config\n"
                       "preferences: {}\n"
                       "users:\n"
                       "- name: kind-kind\n"
                       "  user:\n"
                       "    client-certificate-data: " CA_B64 "\n"
                       "    client-key-data: " KEY_B64 "\n";
    struct kube_config kc;
    char err[512] = "";
    assert_int_equal(parse(text, NULL, NULL, &kc, err), 0);
    assert_string_equal(kc.server, "https://127.0.0.1:36443");
    assert_string_equal(kc.context, "kind-kind");
    assert_int_equal(kc.ca_pem_len, 28);
    assert_memory_equal(kc.ca_pem, "-----BEGIN CERTIFICATE-----\n", 28);
    assert_int_equal(kc.key_pem_len, 4);
    assert_memory_equal(kc.key_pem, "KEY\n", 4);
    assert_null(kc.token);
    assert_null(kc.namespace);
    kubeconfig_free(&kc);
}

/* Indented sequences, comments, quotes, flow collections, a document marker, a literal
 * block scalar, and a second context picked explicitly. */
static void hand_written(void **state)
{
    const char *text = "# written by hand\n"
                       "---\n"
                       "apiVersion: v1\n"
                       "clusters:\n"
                       "  - name: \"prod\"   # the real one\n"
                       "    cluster:\n"
                       "      server: 'https://10.0.0.1:6443'\n"
                       "      insecure-skip-tls-verify: true\n"
                       "  - name: dev\n"
                       "    cluster: {server: \"https://dev:6443\", proxy-url: null}\n"
                       "contexts:\n"
                       "  - {name: prod, context: {cluster: prod, user: admin, namespace: ops}}\n"
                       "  - name: dev\n"
                       "    context:\n"
                       "      cluster: dev\n"
                       "      user: admin\n"
                       "current-context: dev\n"
                       "users:\n"
                       "  - name: admin\n"
                       "    user:\n"
                       "      token: |\n"
                       "        abc.def\n"
                       "      exec:\n"
                       "        args: [--region, \"eu-west-1\"]\n"
                       "        env:\n"
                       "\n"
                       "        - name: A\n"
                       "          value: \"x\\ty\"\n";
    struct kube_config kc;
    char err[512] = "";
    assert_int_equal(parse(text, "prod", NULL, &kc, err), 0);
    assert_string_equal(kc.server, "https://10.0.0.1:6443");
    assert_int_equal(kc.insecure, 1);
    assert_string_equal(kc.namespace, "ops");
    assert_string_equal(kc.token, "abc.def"); /* the block scalar's line break is trimmed */
    kubeconfig_free(&kc);

    assert_int_equal(parse(text, NULL, NULL, &kc, err), 0);
    assert_string_equal(kc.server, "https://dev:6443");
    assert_int_equal(kc.insecure, 0);
    kubeconfig_free(&kc);
}

/* minikube: extensions with plain scalars holding commas and colons, Windows line ends. */
static void minikube_style(void **state)
{
    const char *text =
        "apiVersion: v1\r\n"
        "clusters:\r\n"
        "- cluster:\r\n"
        "    certificate-authority: /home/dev/.minikube/ca.crt\r\n"
        "    extensions:\r\n"
        "    - extension:\r\n"
        "        last-update: Mon, 01 Jan 2024 10:00:00 UTC\r\n"
        "        provider: minikube.sigs.k8s.io\r\n"
        "      name: cluster_info\r\n"
        "    server: https://192.168.49.2:8443\r\n"
        "  name: minikube\r\n"
        "contexts:\r\n"
        "- context:\r\n"
        "    cluster: minikube\r\n"
        "    namespace: default\r\n"
        "    user: minikube\r\n"
        "  name: minikube\r\n"
        "current-context: minikube\r\n"
        "kind: Config\r\n"
        "users:\r\n"
        "- name: minikube\r\n"
        "  user:\r\n"
        "    client-certificate: /home/dev/.minikube/profiles/minikube/client.crt\r\n"
        "    client-key: /home/dev/.minikube/profiles/minikube/client.key\r\n";
    struct kube_config kc;
    char err[512] = "";
    assert_int_equal(parse(text, NULL, "/ignored", &kc, err), 0);
    assert_string_equal(kc.server, "https://192.168.49.2:8443");
    assert_string_equal(kc.ca_file, "/home/dev/.minikube/ca.crt");
    assert_string_equal(kc.key_file, "/home/dev/.minikube/profiles/minikube/client.key");
    assert_string_equal(kc.namespace, "default");
    kubeconfig_free(&kc);
}

static void json_with_relative_files(void **state)
{
    const char *text =
        "{\"apiVersion\":\"v1\",\"current-context\":\"c\","
        "\"clusters\":[{\"name\":\"k\",\"cluster\":{\"server\":\"https://h:6443\","
        "\"certificate-authority\":\"pki/ca.crt\"}}],"
        "\"contexts\":[{\"name\":\"c\",\"context\":{\"cluster\":\"k\",\"user\":\"u\"}}],"
        "\"users\":[{\"name\":\"u\",\"user\":{\"client-certificate\":\"/abs/u.crt\","
        "\"client-key\":\"u.key\"}}]}";
    struct kube_config kc;
    char err[512] = "";
    assert_int_equal(parse(text, NULL, "/etc/kube", &kc, err), 0);
    assert_string_equal(kc.ca_file, "/etc/kube/pki/ca.crt");
    assert_string_equal(kc.cert_file, "/abs/u.crt");
    assert_string_equal(kc.key_file, "/etc/kube/u.key");
    kubeconfig_free(&kc);
}

static void expect_error(const char *text, const char *context, const char *needle)
{
    struct kube_config kc;
    char err[512] = "";
    assert_int_equal(parse(text, context, NULL, &kc, err), -1);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
}

#define MINI(user)                                                                                 \
    "clusters:\n- name: k\n  cluster:\n    server: https://h:6443\n"                               \
    "contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n"                              \
    "current-context: c\n"                                                                         \
    "users:\n- name: u\n  user:\n" user

static void semantic_errors(void **state)
{
    expect_error(MINI("    token: t\n"), "other", "context 'other' not found");
    expect_error(MINI("    exec:\n      command: aws\n"), NULL, "exec");
    expect_error(MINI("    client-certificate-data: '%%%'\n"), NULL,
                 "client-certificate-data is not valid base64");
    expect_error(MINI("    client-certificate: a.crt\n"), NULL, "without its key");
    expect_error(MINI("    token: \"a\\r\\nX-Evil: 1\"\n"), NULL, "control characters");
    expect_error("clusters: []\ncontexts: []\n", NULL, "no current-context");
    expect_error("current-context: c\ncontexts:\n- name: c\n  context: {cluster: x}\n", NULL,
                 "cluster 'x'");
    expect_error("- a\n- b\n", NULL, "not a mapping");
}

static void yaml_errors_name_the_line(void **state)
{
    expect_error("a: 1\n\tb: 2\n", NULL, "line 2: a tab character");
    expect_error("a: 1\nb: &anchor x\n", NULL, "line 2: anchors");
    expect_error("a: 1\nb: \"open\n", NULL,
                 "line 2: found unexpected end of stream while scanning a quoted scalar");
    expect_error("a: \"x\" y\n", NULL, "line 1: did not find expected key");
    expect_error("a: 1\na: 2\n", NULL, "line 2: duplicate key 'a'");
    expect_error("a:\n  b: 1\n   c: 2\n", NULL, "line 3: mapping values are not allowed");
    expect_error("a: [1, 2\n", NULL,
                 "line 1: did not find expected ',' or ']' while parsing a flow sequence");
    expect_error("a: 1\nb: *anchor\n", NULL, "line 2: anchors and aliases are not supported");
    expect_error("a: !!binary eA==\n", NULL, "line 1: tags are not supported");
    expect_error("a: 1\n---\nb: 2\n", NULL, "several YAML documents");
    expect_error("", NULL, "empty document");
    expect_error("# nothing but a comment\n", NULL, "empty document");
    char deep[200] = "";
    for (int i = 0; i < 70; i++)
        strcat(deep, "[");
    expect_error(deep, NULL, "line 1: nested deeper than 64 levels");
    expect_error("{\"a\": }", NULL, "line 1:");
}

static void yaml_shapes(void **state)
{
    char err[256];
    const char *text = "a:\n- x\n- y: 1\n  z: [p, 'q''r', {s: t}]\n- - deep\nb: ~\n"
                       "c: \"\\u00e9\\x41\"\nd: plain text, with comma\ne: >-\n  one\n  two\n";
    json_t *root = kubeconfig_yaml_parse(text, strlen(text), err, sizeof(err));
    assert_non_null(root);
    char *dump = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(dump, "{\"a\":[\"x\",{\"y\":\"1\",\"z\":[\"p\",\"q'r\",{\"s\":\"t\"}]},"
                              "[\"deep\"]],\"b\":null,\"c\":\"\xc3\xa9"
                              "A\",\"d\":\"plain text, with comma\",\"e\":\"one two\"}");
    free(dump);
    json_decref(root);
}

static void in_cluster(void **state)
{
    char dir[] = "/tmp/dsf-sa.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof(path), "%s/token", dir);
    FILE *f = fopen(path, "w");
    fputs("sa-token\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/namespace", dir);
    f = fopen(path, "w");
    fputs("monitoring", f);
    fclose(f);
    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    struct kube_config kc;
    char err[512] = "";
    assert_int_equal(kubeconfig_in_cluster(dir, &kc, err, sizeof(err)), 0);
    assert_string_equal(kc.server, "https://[fd00::1]:443");
    assert_string_equal(kc.token, "sa-token");
    assert_string_equal(kc.namespace, "monitoring");
    snprintf(path, sizeof(path), "%s/ca.crt", dir);
    assert_string_equal(kc.ca_file, path);
    kubeconfig_free(&kc);
    unsetenv("KUBERNETES_SERVICE_HOST");
    assert_int_equal(kubeconfig_in_cluster(dir, &kc, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));
    snprintf(path, sizeof(path), "%s/token", dir);
    unlink(path);
    snprintf(path, sizeof(path), "%s/namespace", dir);
    unlink(path);
    rmdir(dir);
}

static void encoders(void **state)
{
    struct dsf_buf b = {0};
    fed_rest_escape(&b, "spec.nodeName=n 1/é");
    assert_string_equal(buf_cstr(&b), "spec.nodeName%3Dn%201%2F%C3%A9");
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(kind_style),
        cmocka_unit_test(hand_written),
        cmocka_unit_test(json_with_relative_files),
        cmocka_unit_test(minikube_style),
        cmocka_unit_test(semantic_errors),
        cmocka_unit_test(yaml_errors_name_the_line),
        cmocka_unit_test(yaml_shapes),
        cmocka_unit_test(in_cluster),
        cmocka_unit_test(encoders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
