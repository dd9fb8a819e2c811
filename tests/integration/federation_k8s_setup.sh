# Sourced by the federation_k8s_* tests after lib.sh: a CA, a server certificate and a client
# certificate made with openssl, the Kubernetes API double on HTTPS, a kubeconfig that both
# damselfly-fed and kubectl use, and helpers to read the double's request log.

FED="$DSF_BUILD/federation/damselfly-fed"
[ -x "$FED" ] || fail "$FED is missing"
command -v kubectl >/dev/null || fail "kubectl is not on PATH"
K8S_TOKEN="t0ken-$RANDOM$RANDOM"

# k8s_certs: $WORK/pki/{ca,server,client}.{crt,key}; the client certificate is a kubeadm-style
# admin (O=system:masters).
k8s_certs() {
    local d="$WORK/pki"
    mkdir -p "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=double-ca" \
        -keyout "$d/ca.key" -out "$d/ca.crt" 2>"$d/openssl.log" || fail "openssl: CA"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$d/server.ext"
    printf 'extendedKeyUsage=clientAuth\n' >"$d/client.ext"
    local who
    for who in server client; do
        openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=damselfly-$who" \
            -keyout "$d/$who.key" -out "$d/$who.csr" 2>>"$d/openssl.log" || fail "openssl: $who key"
        openssl x509 -req -in "$d/$who.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
            -days 2 -extfile "$d/$who.ext" -out "$d/$who.crt" 2>>"$d/openssl.log" ||
            fail "openssl: $who certificate"
    done
}

# k8s_start [DOUBLE ARGS...]: sets K8S_PORT, K8S_URL, K8S_LOG, KUBECONFIG_FILE (token auth).
k8s_start() {
    k8s_certs
    K8S_PORT=$(free_port)
    K8S_URL="https://127.0.0.1:$K8S_PORT"
    K8S_LOG="$WORK/requests.jsonl"
    bg k8s-double python3 "$DSF_SRC/tests/tools/k8s_api_double.py" --port "$K8S_PORT" \
        --cert "$WORK/pki/server.crt" --key "$WORK/pki/server.key" --token "$K8S_TOKEN" \
        --client-ca "$WORK/pki/ca.crt" --log "$K8S_LOG" "$@"
    wait_for 15 port_open "$K8S_PORT" || fail "the Kubernetes API double did not start"
    KUBECONFIG_FILE="$WORK/kubeconfig"
    k8s_kubeconfig "$KUBECONFIG_FILE" "    token: $K8S_TOKEN"
}

# k8s_kubeconfig FILE USER-LINES: kubectl's block YAML, CA inline.
k8s_kubeconfig() {
    cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: $(base64 -w0 "$WORK/pki/ca.crt")
    server: $K8S_URL
  name: double
contexts:
- context:
    cluster: double
    namespace: default
    user: tester
  name: double
current-context: double
preferences: {}
users:
- name: tester
  user:
$2
EOF
}

# fed ARGS...: damselfly-fed with the kubernetes driver on $KUBECONFIG_FILE.
fed() {
    "$FED" --driver kubernetes --state-dir "$WORK/state" \
        --set kubernetes.kubeconfig="$KUBECONFIG_FILE" "$@"
}

# kc ARGS...: the real kubectl on the same kubeconfig.
kc() {
    kubectl --kubeconfig "$KUBECONFIG_FILE" --cache-dir "$WORK/kube-cache" --request-timeout 20s "$@"
}

# reqs [SINCE]: the double's request log from line SINCE on, one request a line:
# "METHOD PATH[?QUERY] STATUS AUTH CONTENT-TYPE BODY".
reqs() {
    python3 - "$K8S_LOG" "${1:-1}" <<'PY'
import json, sys
for i, line in enumerate(open(sys.argv[1]), 1):
    if i < int(sys.argv[2]):
        continue
    e = json.loads(line)
    q = "?" + e["query"] if e["query"] else ""
    print(e["method"], e["path"] + q, e["status"], e["auth"], e["content_type"] or "-", e["body"] or "-")
PY
}

log_lines() { if [ -f "$K8S_LOG" ]; then wc -l <"$K8S_LOG"; else echo 0; fi; }

# fault JSON: arms a fault in the double.
fault() {
    curl -sf --cacert "$WORK/pki/ca.crt" -X POST -d "$1" "$K8S_URL/__double/fault" >/dev/null ||
        fail "could not arm fault $1"
}

expect_in() { # FILE TEXT: FILE contains TEXT
    grep -qF -- "$2" "$1" || fail "$(basename "$1") lacks '$2': $(head -c 600 "$1")"
}
