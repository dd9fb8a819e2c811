# Sourced by scripts/damselfly: the bus's principals, its password file and ACL, written
# the way docs/security.md grants them (the bus-acl and bus-user commands, and `up`).
# Expects usage_error and STATE from the caller; sets BUS_DIR, BUS_GROUP, BUS_PID_FILE.

# A topic level of an identity or id: 1 to 63 bytes, none of / + # : blanks or controls.
SEGMENT='[^/+#:[:space:][:cntrl:]]{1,63}'

# principal_kind NAME: prints agent, collector, alarm, scraper, balancer, control or operator; fails
# for a name of no principal's shape.
principal_kind() {
    if [[ $1 =~ ^$SEGMENT/$SEGMENT/$SEGMENT$ ]]; then
        echo agent
    elif [[ $1 =~ ^(collector|collectors|alarm|scraper)\.$SEGMENT$ ]]; then
        echo "${BASH_REMATCH[1]}"
    elif [[ $1 =~ ^(balancer|control|operator)$ ]]; then
        echo "$1"
    else
        return 1
    fi
}

# creds_file DIR NAME: where bus-acl keeps NAME's password; '%' and '/' are escaped so that
# every principal has a distinct file (ns_1/a/b and ns/1_a/b must not share one).
creds_file() {
    local f=${2//%/%25}
    echo "$1/creds/${f//\//%2F}"
}

# passwd_users DIR: the user names of DIR/passwd, one a line.
passwd_users() {
    [ -f "$1/passwd" ] || return 0
    cut -d: -f1 "$1/passwd" | grep -v '^$' || true
}

# acl_block NAME: the `user` block of a named principal, as the security contract grants it.
acl_block() {
    local name=$1 kind
    kind=$(principal_kind "$name")
    printf 'user %s\n' "$name"
    case $kind in
        collector | collectors)
            # collectors.POOL: the collectors of a pool whose ids are not known in advance
            # (Kubernetes pods named by their Deployment) share it, for any id's topics.
            local id=${name#collector.}
            [ "$kind" = collector ] || id=+
            printf 'topic read dsf/m/#\ntopic read dsf/c/%s/assign\n' "$id"
            printf 'topic write dsf/c/%s/hb\ntopic write dsf/a/+/+/+/ack\n' "$id"
            printf 'topic write dsf/dlq\n' ;;
        alarm) # its own heartbeat and assignment: the topic, not a payload, says the role
            local id=${name#alarm.}
            printf 'topic read dsf/m/#\ntopic read dsf/a/+/+/+/status\ntopic write dsf/alarm/#\n'
            printf 'topic write dsf/e/%s/hb\ntopic read dsf/e/%s/assign\n' "$id" "$id" ;;
        scraper) # speaks for the VMs it pulls: their metrics and retained statuses; its own
            # status and Last Will on dsf/scraper/ID/status (docs/scraper.md)
            local id=${name#scraper.}
            printf 'topic write dsf/m/#\ntopic readwrite dsf/a/+/+/+/status\n'
            printf 'topic write dsf/scraper/%s/status\n' "$id" ;;
        balancer)
            # dsf/b/#: the balancers' leader record and their alive statuses (HA)
            printf 'topic read dsf/c/+/hb\ntopic readwrite dsf/c/+/assign\n'
            printf 'topic read dsf/e/+/hb\ntopic readwrite dsf/e/+/assign\n'
            printf 'topic readwrite dsf/b/#\n' ;;
        control) # status write: clearing a removed VM's retained status (docs/security.md);
            # the collectors' heartbeats: a controller that cannot see them does not act
            printf 'topic read dsf/alarm/#\ntopic readwrite dsf/a/+/+/+/status\n'
            printf 'topic write dsf/action/#\ntopic write dsf/a/+/+/+/req\n'
            printf 'topic read dsf/a/+/+/+/reply/#\ntopic read dsf/c/+/hb\n' ;;
        operator)
            printf 'topic read dsf/#\ntopic write dsf/a/+/+/+/req\n'
            printf 'topic write dsf/a/+/+/+/status\n'
            printf 'topic read dsf/a/+/+/+/reply/#\n' ;;
    esac
    echo
}

# write_acl DIR: DIR/acl from the principals of DIR/passwd, replaced atomically (a broker
# reloading it meanwhile reads the old or the new file, never half of one).
write_acl() {
    local dir=$1 name kind tmp=$1/.acl.tmp
    {
        cat <<'ACL'
# mosquitto acl_file written by `damselfly bus-acl` (docs/security.md); rewritten by every
# bus-acl and bus-user run: edit the principals, not this file.
#
# Every agent: its user name is its identity NS/MCI/VM, which %u stands for.
pattern write dsf/m/+/%u
pattern readwrite dsf/a/%u/status
pattern read dsf/a/%u/ack
pattern read dsf/a/%u/req
pattern write dsf/a/%u/reply/#

ACL
        while read -r name; do
            kind=$(principal_kind "$name") || {
                echo "bus-acl: $dir/passwd: user '$name' is no principal: it gets no ACL block" >&2
                continue
            }
            [ "$kind" = agent ] || acl_block "$name"
        done < <(passwd_users "$dir" | sort -u)
    } >"$tmp"
    chmod 0640 "$tmp"
    [ -z "$BUS_GROUP" ] || chgrp "$BUS_GROUP" "$tmp"
    mv -f "$tmp" "$dir/acl"
}

random_password() { od -An -tx1 -N24 /dev/urandom | tr -d ' \n'; }

# add_principal DIR NAME: makes sure DIR/passwd has NAME. A new principal gets a random
# password, kept in its creds file; an existing creds file is the password to use again.
add_principal() {
    local dir=$1 name=$2 file out pw
    file=$(creds_file "$dir" "$name")
    if passwd_users "$dir" | grep -Fxq -- "$name"; then
        if [ -f "$file" ]; then
            echo "kept $name (password in $file)"
        else
            echo "kept $name (its password was set outside bus-acl)"
        fi
        return 0
    fi
    if [ -f "$file" ]; then pw=$(cat "$file"); else pw=$(random_password); fi
    local create=()
    [ -f "$dir/passwd" ] || create=(-c)
    # The password goes on mosquitto_passwd's standard input (asked twice), not on its
    # command line where every local user could read it.
    out=$(printf '%s\n%s\n' "$pw" "$pw" | mosquitto_passwd "${create[@]}" "$dir/passwd" "$name" 2>&1) || {
        echo "bus-acl: mosquitto_passwd $dir/passwd $name failed: $out" >&2
        exit 1
    }
    [ -f "$file" ] || (umask 077 && printf '%s' "$pw" >"$file.tmp" && mv -f "$file.tmp" "$file")
    echo "added $name (password in $file)"
}

# bus_files_mode DIR: the broker's group may read passwd (hashes only); the creds stay the
# owner's.
bus_files_mode() {
    local dir=$1
    chmod 0700 "$dir/creds"
    [ -f "$dir/passwd" ] || return 0
    chmod 0640 "$dir/passwd"
    [ -z "$BUS_GROUP" ] || chgrp "$BUS_GROUP" "$dir/passwd"
}

# reload_broker PIDFILE: SIGHUP makes mosquitto reread its password and ACL files.
reload_broker() {
    [ -n "$1" ] || return 0
    local pid
    pid=$(cat "$1" 2>/dev/null) || { echo "no broker to reload: $1 is missing" >&2; return 0; }
    if kill -HUP "$pid" 2>/dev/null; then
        echo "reloaded the broker (pid $pid): it rereads $BUS_DIR/passwd and $BUS_DIR/acl"
    else
        echo "no broker to reload: pid $pid (from $1) does not run" >&2
    fi
}

BUS_GROUP=
BUS_PID_FILE=
# bus_default_group: a broker started as root reads its files as the user mosquitto.
bus_default_group() {
    if [ -z "$BUS_GROUP" ] && [ "$(id -u)" = 0 ] && getent group mosquitto >/dev/null; then
        BUS_GROUP=mosquitto
    fi
}

# bus_update DIR NAME...: adds the principals, rewrites the ACL, reloads the broker; one run
# at a time per DIR.
bus_update() {
    BUS_DIR=$1; shift
    command -v mosquitto_passwd >/dev/null ||
        { echo "mosquitto_passwd is missing: run scripts/install-deps.sh" >&2; exit 1; }
    bus_default_group
    if [ ! -d "$BUS_DIR" ]; then # a directory made here is the broker's group's to read
        mkdir -p "$BUS_DIR"
        chmod 0750 "$BUS_DIR"
        [ -z "$BUS_GROUP" ] || chgrp "$BUS_GROUP" "$BUS_DIR"
    fi
    mkdir -p "$BUS_DIR/creds"
    (
        flock 9
        umask 027 # mosquitto_passwd -c creates passwd with the umask's mode
        local name
        for name in "$@"; do add_principal "$BUS_DIR" "$name"; done
        bus_files_mode "$BUS_DIR"
        write_acl "$BUS_DIR"
    ) 9>"$BUS_DIR/.passwd.lock" # the lock damselfly-fed takes for this file
    reload_broker "$BUS_PID_FILE"
}

bus_acl() {
    local dir=${1:-} names=() name
    if [ -z "$dir" ] || [[ $dir == -* ]]; then usage_error "bus-acl: the directory is missing"; fi
    shift
    while [ $# -gt 0 ]; do
        case $1 in
            --collector | --collector-pool | --alarm | --scraper | --agent)
                [ $# -ge 2 ] || usage_error "bus-acl: $1 needs a value"
                local kind=${1#--}
                case $1 in
                    --collector) name=collector.$2 ;;
                    --collector-pool) name=collectors.$2 kind=collectors ;;
                    --alarm) name=alarm.$2 ;;
                    --scraper) name=scraper.$2 ;;
                    *) name=$2 ;;
                esac
                [ "$(principal_kind "$name")" = "$kind" ] ||
                    usage_error "bus-acl: $1 '$2': expected $(principal_help "$kind")"
                names+=("$name"); shift 2 ;;
            --balancer | --control | --operator) names+=("${1#--}"); shift ;;
            --group | --pid-file)
                [ $# -ge 2 ] || usage_error "bus-acl: $1 needs a value"
                bus_option "$1" "$2"; shift 2 ;;
            *) usage_error "bus-acl: unknown argument '$1'" ;;
        esac
    done
    bus_update "$dir" "${names[@]}"
}

principal_help() {
    case $1 in
        agent) echo "NS/MCI/VM, three levels of 1 to 63 bytes without / + # : or blanks" ;;
        *) echo "an id of 1 to 63 bytes without / + # : or blanks" ;;
    esac
}

bus_option() { # --group GROUP | --pid-file FILE
    case $1 in
        --group) getent group "$2" >/dev/null || usage_error "--group '$2': no such group"
            BUS_GROUP=$2 ;;
        --pid-file) BUS_PID_FILE=$2 ;;
    esac
}

bus_user() {
    local action=${1:-} name=${2:-} dir=$STATE/bus pid_set=0
    [[ $action =~ ^(add|remove)$ ]] || usage_error "bus-user: expected add or remove, not '$action'"
    principal_kind "$name" >/dev/null || usage_error "bus-user: '$name' is no principal:" \
        "NS/MCI/VM, collector.ID, collectors.POOL, alarm.ID, scraper.ID, balancer, control or operator"
    shift 2
    while [ $# -gt 0 ]; do
        [ $# -ge 2 ] || usage_error "bus-user: $1 needs a value"
        case $1 in
            --dir) dir=$2 ;;
            --group | --pid-file) bus_option "$1" "$2"; [ "$1" = --group ] || pid_set=1 ;;
            *) usage_error "bus-user: unknown argument '$1'" ;;
        esac
        shift 2
    done
    # The broker of `up` reads STATE/bus: reload it unless told otherwise.
    [ $pid_set = 1 ] || [ "$dir" != "$STATE/bus" ] || [ ! -f "$STATE/mosquitto.pid" ] ||
        BUS_PID_FILE=$STATE/mosquitto.pid
    if [ "$action" = add ]; then bus_update "$dir" "$name"; else bus_remove "$dir" "$name"; fi
}

bus_remove() { # DIR NAME
    BUS_DIR=$1
    local name=$2 out
    [ -d "$BUS_DIR/creds" ] || usage_error "bus-user: $BUS_DIR holds no bus files (run bus-acl)"
    bus_default_group
    (
        flock 9
        if passwd_users "$BUS_DIR" | grep -Fxq -- "$name"; then
            out=$(mosquitto_passwd -D "$BUS_DIR/passwd" "$name" 2>&1) || {
                echo "bus-user: mosquitto_passwd -D $BUS_DIR/passwd $name failed: $out" >&2
                exit 1
            }
            echo "removed $name"
        else
            echo "$name is not in $BUS_DIR/passwd: nothing to remove"
        fi
        rm -f "$(creds_file "$BUS_DIR" "$name")"
        write_acl "$BUS_DIR"
    ) 9>"$BUS_DIR/.passwd.lock" # the lock damselfly-fed takes for this file
    reload_broker "$BUS_PID_FILE"
}
