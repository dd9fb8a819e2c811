#!/usr/bin/env bash
# Installs the Damselfly agent: binary, JSON config, hardened systemd unit, system user.
#
# Used by cloud-init (deploy/cloud-init/agent.yaml) and by hand. Idempotent: a second run
# with the same options rewrites nothing, creates no second user and exits 0; files are
# replaced atomically and only when their content changes, and a running agent is restarted
# only then. With --prefix DIR everything lands under DIR and the system is not touched
# (no user, no systemd), which is how the tests use it.
#
# Values given on the command line are written into JSON, never evaluated by a shell.
set -euo pipefail
export LC_ALL=C
umask 022

prog=${0##*/}
# Empty when read from a pipe (curl ... | bash): then nothing is looked for beside it.
script_dir=""
if [ -n "${BASH_SOURCE[0]:-}" ] && [ -f "${BASH_SOURCE[0]}" ]; then
    script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
fi

die() {
    echo "$prog: error: $*" >&2
    exit 1
}
note() { echo "$prog: $*"; }

usage() {
    cat <<'EOF'
Usage: install-agent.sh --ns NS --mci MCI [options]

Installs damselfly-agent as a systemd service running as an unprivileged user.

Binary (first that applies):
  --binary PATH         the damselfly-agent executable to install
  --url URL             download it with curl
  --sha256 HEX          refuse the binary unless its SHA-256 matches
                        default: damselfly-agent beside this script, else keep the one
                        already installed

Identity (tags on every metric):
  --ns NS               namespace (required unless --keep-config)
  --mci MCI             multi-cloud infrastructure id (required unless --keep-config)
  --vm VM               VM id (default: this host's name)
  --host HOST           host name (default: this host's name)
  --csp CSP             cloud provider, e.g. aws, gcp, azure, openstack
  --region REGION       cloud region

Transport:
  --push MODE           mqtt, kafka or off (default: mqtt when --mqtt-url is given, kafka
                        when --kafka-brokers is given, else the agent's default)
  --mqtt-url URL        tcp://host:1883 or ssl://host:8883
  --mqtt-username NAME  the agent's broker user: {ns}/{mci}/{vm} where the broker's ACL
                        gives each agent its own topics
  --mqtt-password-file FILE
                        read the broker password from FILE (one line); or set
                        DAMSELFLY_MQTT_PASSWORD in the environment
  --mqtt-password PASS  the same on the command line, where every user of the host sees it
                        while this runs: prefer the two above
                        The config file holding it is mode 0600, owned by --user.
  --kafka-brokers LIST  host:port[,host:port...]
  --http-listen ADDR    address of /metrics and /api/v1/snapshot, e.g. 127.0.0.1:9100;
                        "" turns the endpoint off
  --http-token TOKEN    bearer token the HTTP endpoint requires (but /healthz)
  --http-token-file FILE
                        read that token from FILE (one line): not on a command line
  --interval DURATION   collection interval, e.g. 2s

Installation:
  --user NAME           account the agent runs as (default: damselfly)
  --prefix DIR          install under DIR instead of / (implies --no-start)
  --unit PATH           systemd unit to install (default: systemd/damselfly-agent.service
                        beside this script, else keep the installed one)
  --keep-config         keep the existing /etc/damselfly/agent.json (e.g. written by
                        cloud-init) instead of writing one from the options
  --no-start            do not create the user or touch systemd
  -h, --help            this text

Files: PREFIX/usr/local/bin/damselfly-agent, PREFIX/etc/damselfly/agent.json,
PREFIX/etc/systemd/system/damselfly-agent.service, PREFIX/var/lib/damselfly.
EOF
}

# ---- options -------------------------------------------------------------------------

binary="" url="" sha256="" prefix="/" unit_src=""
ns="" mci="" vm="" host="" csp="" region=""
push="" mqtt_url="" mqtt_username="" mqtt_password="" mqtt_password_file="" kafka_brokers=""
http_listen="" http_listen_set=0 http_token="" http_token_file="" interval=""
user="damselfly" no_start=0 keep_config=0 identity_given=0 mqtt_password_given=0

while [ $# -gt 0 ]; do
    opt=$1
    val=""
    has_val=0
    case $opt in
    --*=*)
        val=${opt#*=}
        opt=${opt%%=*}
        has_val=1
        ;;
    esac
    case $opt in
    -h | --help)
        usage
        exit 0
        ;;
    --no-start)
        no_start=1
        shift
        continue
        ;;
    --keep-config)
        keep_config=1
        shift
        continue
        ;;
    --binary | --url | --sha256 | --prefix | --unit | --ns | --mci | --vm | --host | --csp | \
        --region | --push | --mqtt-url | --mqtt-username | --mqtt-password | \
        --mqtt-password-file | --kafka-brokers | --http-listen | --http-token | --http-token-file | \
        --interval | --user)
        if [ $has_val -eq 0 ]; then
            [ $# -ge 2 ] || die "$opt needs a value (see --help)"
            val=$2
            shift
        fi
        shift
        ;;
    *)
        echo "$prog: unknown option '$opt'" >&2
        usage >&2
        exit 2
        ;;
    esac
    case $opt in
    --binary) binary=$val ;;
    --url) url=$val ;;
    --sha256) sha256=$val ;;
    --prefix) prefix=$val ;;
    --unit) unit_src=$val ;;
    --ns) ns=$val identity_given=1 ;;
    --mci) mci=$val identity_given=1 ;;
    --vm) vm=$val identity_given=1 ;;
    --host) host=$val identity_given=1 ;;
    --csp) csp=$val identity_given=1 ;;
    --region) region=$val identity_given=1 ;;
    --push) push=$val ;;
    --mqtt-url) mqtt_url=$val ;;
    --mqtt-username) mqtt_username=$val ;;
    --mqtt-password) mqtt_password=$val mqtt_password_given=1 ;;
    --mqtt-password-file) mqtt_password_file=$val ;;
    --kafka-brokers) kafka_brokers=$val ;;
    --http-listen) http_listen=$val http_listen_set=1 ;;
    --http-token) http_token=$val ;;
    --http-token-file) http_token_file=$val ;;
    --interval) interval=$val ;;
    --user) user=$val ;;
    esac
done

# ---- checks --------------------------------------------------------------------------

# The password: from at most one of the file, the option and the environment. A file's
# trailing newline (echo, cloud-init's write_files) is not part of it.
if [ -n "$mqtt_password_file" ] && [ $mqtt_password_given -eq 1 ]; then
    die "give --mqtt-password-file or --mqtt-password, not both"
fi
if [ -n "$mqtt_password_file" ]; then
    [ -f "$mqtt_password_file" ] && [ -r "$mqtt_password_file" ] ||
        die "--mqtt-password-file '$mqtt_password_file' is not a readable file"
    mqtt_password=$(<"$mqtt_password_file")
    case $mqtt_password in
    *$'\n'*) die "--mqtt-password-file '$mqtt_password_file' has more than one line" ;;
    esac
elif [ $mqtt_password_given -eq 0 ] && [ -n "${DAMSELFLY_MQTT_PASSWORD:-}" ]; then
    mqtt_password=$DAMSELFLY_MQTT_PASSWORD
fi
if [ -n "$http_token_file" ]; then
    [ -z "$http_token" ] || die "give --http-token-file or --http-token, not both"
    [ -f "$http_token_file" ] && [ -r "$http_token_file" ] ||
        die "--http-token-file '$http_token_file' is not a readable file"
    http_token=$(<"$http_token_file")
    case $http_token in
    '' | *$'\n'*) die "--http-token-file '$http_token_file' must hold one line, the token" ;;
    esac
fi

case $prefix in
/*) ;;
*) prefix="$PWD/$prefix" ;;
esac
# Collapse trailing slashes so "/" and "/tmp/x/" compare as intended.
while [ "${prefix%/}" != "$prefix" ] && [ "$prefix" != "/" ]; do prefix=${prefix%/}; done
[ "$prefix" = "/" ] || no_start=1
root=${prefix%/} # "" for /, so "$root/etc" is /etc

if [ "$prefix" = "/" ] && [ "$(id -u)" -ne 0 ]; then
    die "installing into / needs root: run it with sudo, or use --prefix DIR"
fi

case $user in
'' | *[!a-z0-9_-]* | [0-9-]*) die "--user '$user': use a lowercase account name like damselfly" ;;
esac
[ ${#user} -le 32 ] || die "--user '$user' is longer than 32 characters"

if [ $keep_config -eq 1 ]; then
    if [ $identity_given -eq 1 ] || [ -n "$push$mqtt_url$mqtt_username$mqtt_password_file" ] ||
        [ $mqtt_password_given -eq 1 ] ||
        [ -n "$kafka_brokers$http_token$interval" ] || [ $http_listen_set -eq 1 ]; then
        die "--keep-config keeps the existing config: drop the identity and transport options, or drop --keep-config"
    fi
else
    [ -n "$ns" ] || die "--ns is required (the namespace tag of every metric)"
    [ -n "$mci" ] || die "--mci is required (the MCI tag of every metric)"
    [ -n "$vm" ] || vm=$(uname -n)
    [ -n "$host" ] || host=$(uname -n)
fi

# ns, mci and vm are MQTT topic levels (dsf/m/{bucket}/{ns}/{mci}/{vm}): no separators or
# wildcards there.
if [ $keep_config -eq 0 ]; then
    for pair in "ns:$ns" "mci:$mci" "vm:$vm"; do
        name=${pair%%:*} v=${pair#*:}
        case $v in
        *[/+#[:space:][:cntrl:]]*)
            die "--$name '$v': no '/', '+', '#' or spaces allowed (it is part of MQTT topics)"
            ;;
        esac
    done
fi

# Everything else is written as a JSON string: quotes and backslashes are escaped below,
# control characters (newlines included) are refused rather than half-escaped.
for pair in "host:$host" "csp:$csp" "region:$region" "mqtt-url:$mqtt_url" \
    "mqtt-username:$mqtt_username" "mqtt-password:$mqtt_password" \
    "kafka-brokers:$kafka_brokers" "http-listen:$http_listen" "http-token:$http_token" \
    "interval:$interval"; do
    name=${pair%%:*} v=${pair#*:}
    case $v in
    *[[:cntrl:]]*) die "--$name contains a control character (newline, tab, ...): remove it" ;;
    esac
done

if [ -z "$push" ]; then
    if [ -n "$mqtt_url" ] && [ -n "$kafka_brokers" ]; then
        die "both --mqtt-url and --kafka-brokers given: choose one with --push mqtt|kafka"
    elif [ -n "$mqtt_url" ]; then
        push=mqtt
    elif [ -n "$kafka_brokers" ]; then
        push=kafka
    fi
fi
case $push in
'' | mqtt | kafka | off) ;;
*) die "--push '$push': use mqtt, kafka or off" ;;
esac
case $mqtt_url in
'' | tcp://* | ssl://* | mqtt://* | mqtts://* | ws://* | wss://*) ;;
*) die "--mqtt-url '$mqtt_url': use tcp://host:1883 or ssl://host:8883" ;;
esac
case $sha256 in
'') ;;
*[!0-9a-fA-F]*) die "--sha256 '$sha256' is not hexadecimal" ;;
*) [ ${#sha256} -eq 64 ] || die "--sha256 must be 64 hex digits" ;;
esac
[ -z "$binary" ] || [ -z "$url" ] || die "give --binary or --url, not both"
case $url in
'' | https://* | http://*) ;;
*) die "--url '$url': give an https:// (or http://) address" ;;
esac

# ---- work area -----------------------------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/damselfly-install.XXXXXX")
partial=() # temp files beside their destinations, removed if we stop half-way
cleanup() {
    rm -rf "$work"
    local f
    for f in ${partial[@]+"${partial[@]}"}; do rm -f "$f"; done
}
trap cleanup EXIT

bin_dst="$root/usr/local/bin/damselfly-agent"
cfg_dst="$root/etc/damselfly/agent.json"
unit_dst="$root/etc/systemd/system/damselfly-agent.service"
dropin_dst="$root/etc/systemd/system/damselfly-agent.service.d/10-user.conf"
state_dst="$root/var/lib/damselfly"
changed=0 # set by put_file when a file was replaced

# put_file SRC DST MODE: replaces DST atomically, only when its content differs.
put_file() {
    local src=$1 dst=$2 mode=$3 tmp
    mkdir -p "$(dirname "$dst")"
    if [ -f "$dst" ] && cmp -s "$src" "$dst"; then
        chmod "$mode" "$dst"
        note "unchanged $dst"
        return 0
    fi
    tmp=$(mktemp "$dst.XXXXXX")
    partial+=("$tmp")
    cat "$src" >"$tmp"
    chmod "$mode" "$tmp"
    # rename(2) rather than overwriting: a running agent keeps its old inode ("text file busy").
    mv -f "$tmp" "$dst"
    changed=1
    note "installed $dst"
}

# ---- binary --------------------------------------------------------------------------

bin_src=""
if [ -n "$binary" ]; then
    [ -f "$binary" ] || die "--binary '$binary' does not exist"
    bin_src=$binary
elif [ -n "$url" ]; then
    command -v curl >/dev/null || die "--url needs curl: install it (apt-get install curl) or use --binary"
    note "downloading $url"
    curl -fsSL --retry 3 --proto '=https,http' -o "$work/damselfly-agent" "$url" ||
        die "downloading $url failed"
    bin_src="$work/damselfly-agent"
elif [ -n "$script_dir" ] && [ -f "$script_dir/damselfly-agent" ]; then
    bin_src="$script_dir/damselfly-agent"
elif [ -f "$bin_dst" ]; then
    note "no --binary or --url given: keeping $bin_dst"
else
    die "no agent binary: give --binary PATH or --url URL (or put damselfly-agent beside $prog)"
fi
if [ -n "$sha256" ]; then
    [ -n "$bin_src" ] || die "--sha256 needs --binary or --url"
    got=$(sha256sum <"$bin_src" | cut -d' ' -f1)
    [ "$got" = "$(echo "$sha256" | tr 'A-F' 'a-f')" ] ||
        die "$bin_src has SHA-256 $got, not the expected $sha256: refusing to install it"
fi
check_bin=${bin_src:-$bin_dst}
if [ -n "$bin_src" ]; then
    # Copy first so the mode is ours and a download can be run for the check below.
    cp "$bin_src" "$work/agent.bin"
    chmod 0755 "$work/agent.bin"
    check_bin="$work/agent.bin"
fi

# The binary may be for another architecture (installing into an image): then the config
# cannot be checked here, which is reported rather than treated as an error.
can_run=0
if "$check_bin" --version >/dev/null 2>&1; then
    can_run=1
fi

# ---- config --------------------------------------------------------------------------

# js VALUE: VALUE as a JSON string (control characters were refused above).
js() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    printf '"%s"' "$s"
}

# obj NAME KEY JSONVALUE [KEY JSONVALUE ...]: one top-level section of the config.
obj() {
    local out="  \"$1\": {" sep=""
    shift
    while [ $# -gt 0 ]; do
        out+="$sep"$'\n'"    \"$1\": $2"
        sep=","
        shift 2
    done
    printf '%s\n  }' "$out"
}

if [ $keep_config -eq 0 ]; then
    ident=(ns "$(js "$ns")" mci "$(js "$mci")" vm "$(js "$vm")" host "$(js "$host")")
    [ -z "$csp" ] || ident+=(csp "$(js "$csp")")
    [ -z "$region" ] || ident+=(region "$(js "$region")")
    sections=("$(obj identity "${ident[@]}")")
    [ -z "$interval" ] || sections+=("  \"interval\": $(js "$interval")")
    [ -z "$push" ] || sections+=("$(obj push mode "$(js "$push")")")
    mqtt=()
    [ -z "$mqtt_url" ] || mqtt+=(url "$(js "$mqtt_url")")
    [ -z "$mqtt_username" ] || mqtt+=(username "$(js "$mqtt_username")")
    [ -z "$mqtt_password" ] || mqtt+=(password "$(js "$mqtt_password")")
    [ ${#mqtt[@]} -eq 0 ] || sections+=("$(obj mqtt "${mqtt[@]}")")
    [ -z "$kafka_brokers" ] || sections+=("$(obj kafka brokers "$(js "$kafka_brokers")")")
    http=()
    [ $http_listen_set -eq 0 ] || http+=(listen "$(js "$http_listen")")
    [ -z "$http_token" ] || http+=(token "$(js "$http_token")")
    [ ${#http[@]} -eq 0 ] || sections+=("$(obj http "${http[@]}")")
    sections+=("$(obj privileges user "$(js "$user")")")

    body=""
    for s in "${sections[@]}"; do
        body+="${body:+,$'\n'}$s"
    done
    cat >"$work/agent.json" <<EOF
{
$body
}
EOF
    cfg_check="$work/agent.json"
else
    [ -f "$cfg_dst" ] || die "--keep-config: $cfg_dst does not exist; write it first or give --ns and --mci"
    cfg_check=$cfg_dst
fi

if [ $can_run -eq 1 ]; then
    # A clean environment, so DAMSELFLY_* variables of this shell cannot hide a bad file.
    if ! out=$(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$check_bin" --config "$cfg_check" --check 2>&1); then
        echo "$out" >&2
        die "damselfly-agent --check rejected the config (shown above); nothing was installed"
    fi
    note "config checked with damselfly-agent --check"
else
    note "warning: cannot run $check_bin on this machine: the config was not checked"
fi

# ---- unit ----------------------------------------------------------------------------

if [ -z "$unit_src" ] && [ -n "$script_dir" ]; then
    for f in "$script_dir/systemd/damselfly-agent.service" "$script_dir/damselfly-agent.service"; do
        if [ -f "$f" ]; then
            unit_src=$f
            break
        fi
    done
fi
if [ -n "$unit_src" ]; then
    [ -f "$unit_src" ] || die "--unit '$unit_src' does not exist"
elif [ ! -f "$unit_dst" ]; then
    die "no systemd unit: give --unit PATH (deploy/systemd/damselfly-agent.service)"
fi

# ---- user ----------------------------------------------------------------------------

if [ $no_start -eq 0 ] && ! getent passwd "$user" >/dev/null; then
    shell=/usr/sbin/nologin
    [ -x "$shell" ] || shell=/sbin/nologin
    [ -x "$shell" ] || shell=/bin/false
    useradd --system --no-create-home --home-dir /var/lib/damselfly --shell "$shell" "$user" ||
        die "useradd $user failed"
    note "created system user $user"
fi
have_user=0
if [ "$prefix" = "/" ] && getent passwd "$user" >/dev/null; then
    have_user=1
fi

# ---- install -------------------------------------------------------------------------

[ -z "$bin_src" ] || put_file "$work/agent.bin" "$bin_dst" 0755
# The config may hold the broker password: readable by the agent's user only (the agent
# reads it again at each SIGHUP, after it has dropped its privileges).
if [ $keep_config -eq 0 ]; then
    put_file "$work/agent.json" "$cfg_dst" 0600
else
    chmod 0600 "$cfg_dst"
fi
chmod 0755 "$(dirname "$cfg_dst")"
if [ $have_user -eq 1 ]; then
    chown "$user:$(id -gn "$user")" "$cfg_dst"
elif [ "$prefix" = "/" ]; then
    note "warning: user $user does not exist yet: $cfg_dst stays readable by root only"
fi
[ -z "$unit_src" ] || put_file "$unit_src" "$unit_dst" 0644

# The unit names User=damselfly; another account is set in a drop-in so the unit file
# itself stays the shipped one.
if [ "$user" != "damselfly" ]; then
    printf '# Written by install-agent.sh --user %s\n[Service]\nUser=%s\n' "$user" "$user" >"$work/user.conf"
    put_file "$work/user.conf" "$dropin_dst" 0644
elif [ -f "$dropin_dst" ]; then
    rm -f "$dropin_dst"
    rmdir "$(dirname "$dropin_dst")" 2>/dev/null || true
    changed=1
    note "removed $dropin_dst"
fi

mkdir -p "$state_dst"
chmod 0750 "$state_dst"
if [ $have_user -eq 1 ]; then
    chown "$user:$(id -gn "$user")" "$state_dst"
fi

# ---- service -------------------------------------------------------------------------

if [ $no_start -eq 1 ]; then
    note "done (files only; no user created, systemd not touched)"
    exit 0
fi
if [ ! -d /run/systemd/system ]; then
    note "systemd is not running here: start the agent with"
    note "  runuser -u $user -- /usr/local/bin/damselfly-agent --config /etc/damselfly/agent.json"
    exit 0
fi
systemctl daemon-reload
was_active=0
if systemctl is-active --quiet damselfly-agent; then
    was_active=1
fi
systemctl enable --now damselfly-agent
if [ $was_active -eq 1 ] && [ $changed -eq 1 ]; then
    systemctl restart damselfly-agent
    note "restarted damselfly-agent"
fi
note "done: systemctl status damselfly-agent; journalctl -u damselfly-agent"
