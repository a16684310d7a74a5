# shellcheck shell=bash disable=SC2034  # settings used by the scripts that source this file
# Shared helpers for scripts/infra-up and scripts/infra-down. Source it; do not run it.
#
# Everything the local stack writes lives under $LOCAL (<repo>/.local, git-ignored):
#   logs/<name>.log   run/<name>.<port>.pid   bin/   mail/   mongo/   rabbitmq/   env
# Ports can be overridden from the environment (e.g. to run a second stack next to the first).

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOCAL="$REPO_ROOT/.local"
LOGS="$LOCAL/logs"
RUN="$LOCAL/run"
BIN="$LOCAL/bin"

# Every port and variable is described in docs/configuration.md ("Local infrastructure");
# scripts/infra-up validates them before it starts anything.
AMQP_PORT="${AMQP_PORT:-5672}"
RABBITMQ_MGMT_PORT="${RABBITMQ_MGMT_PORT:-15672}"
# The node's Erlang distribution port; empty = chosen by infra-up (AMQP_PORT + 20000 when usable).
RABBITMQ_DIST_PORT="${RABBITMQ_DIST_PORT:-}"
RABBITMQ_NODE="${RABBITMQ_NODE:-returns-$AMQP_PORT@localhost}"
MONGO_PORT="${MONGO_PORT:-27017}"
SMTP_PORT="${SMTP_PORT:-1025}"
MAIL_HTTP_PORT="${MAIL_HTTP_PORT:-1080}"
STRIPE_HTTP_PORT="${STRIPE_HTTP_PORT:-12111}"
STRIPE_HTTPS_PORT="${STRIPE_HTTPS_PORT:-12112}"
STRIPE_MOCK_VERSION="v0.203.0"
# How long to wait for a server to answer before giving up (seconds).
INFRA_TIMEOUT="${INFRA_TIMEOUT:-90}"

log() { printf '[infra %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
warn() { printf '[infra %s] WARNING: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf '[infra %s] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

# The repo's Python (aiosmtpd, pymongo for probes); created by scripts/bootstrap when missing.
python_bin() {
    if [[ ! -x "$REPO_ROOT/.venv/bin/python" ]]; then
        log "no .venv yet: scripts/bootstrap"
        "$REPO_ROOT/scripts/bootstrap" || die "scripts/bootstrap failed"
    fi
    printf '%s\n' "$REPO_ROOT/.venv/bin/python"
}

# probe KIND PORT: does a server of that kind answer on 127.0.0.1:PORT? (amqp|mongo|smtp|http)
probe() {
    port_in_use "$2" || return 1
    "$(python_bin)" "$REPO_ROOT/deploy/local/probe.py" "$1" 127.0.0.1 "$2" 2>/dev/null
}

port_in_use() {  # something accepts TCP connections on 127.0.0.1:PORT
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

is_port() {  # a whole number from 1 to 65535
    [[ "$1" =~ ^[1-9][0-9]{0,4}$ ]] && (($1 <= 65535))
}

# The range rabbitmqctl and the other CLI tools take their own distribution port from
# (RABBITMQ_CTL_DIST_PORT_MIN..MAX): a node must not listen there.
RABBITMQ_CTL_DIST_PORTS=(35672 35682)

# ephemeral_range: "LOW HIGH", the ports the kernel hands out to outgoing connections; a fixed
# listening port inside it can be taken by any client at any time.
ephemeral_range() {
    local range
    range="$(cat /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)" || range="32768 60999"
    echo $range  # one space between the two numbers
}

# crash_reason DUMP: the "Slogan" of an Erlang crash dump (why the VM stopped), shortened.
crash_reason() {
    sed -n 's/^Slogan: //p' "$1" 2>/dev/null | head -n 1 | cut -c1-500
}
# wait_for NAME LOGFILE COMMAND...: retry COMMAND until it succeeds; fail after $INFRA_TIMEOUT s,
# showing the end of the server's log.
wait_for() {
    local name="$1" logfile="$2"; shift 2
    local deadline=$((SECONDS + INFRA_TIMEOUT))
    until "$@"; do
        if ((SECONDS >= deadline)); then
            [[ -f "$logfile" ]] && tail -n 25 "$logfile" >&2
            die "$name did not become healthy within ${INFRA_TIMEOUT}s (log: $logfile)"
        fi
        sleep 0.3
    done
}

# Pid files are per server and port (run/<name>.<port>.pid), so stacks started from one checkout on
# different ports never overwrite each other's.

# pid_alive PIDFILE PATTERN: its pid is alive and its command line matches PATTERN (so a recycled
# pid never counts).
pid_alive() {
    local pid
    [[ -f "$1" ]] || return 1
    pid="$(<"$1")"
    [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$2"
}

# start_detached NAME PORT COMMAND...: run in the background in its own session, immune to the
# caller's hangup; output appended to logs/NAME.log, pid to run/NAME.PORT.pid.
start_detached() {
    local name="$1" port="$2"; shift 2
    mkdir -p "$LOGS" "$RUN"
    printf '\n=== %s starting: %s\n' "$(date -Is)" "$*" >>"$LOGS/$name.log"
    setsid nohup "$@" >>"$LOGS/$name.log" 2>&1 </dev/null &
    echo $! >"$RUN/$name.$port.pid"
}

# stop_pid PIDFILE PATTERN: TERM its process (if it is ours), KILL after 20 s; remove the file.
stop_pid() {
    local file="$1" pattern="$2" pid i
    if ! pid_alive "$file" "$pattern"; then
        rm -f "$file"
        return 0
    fi
    pid="$(<"$file")"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        [[ -d "/proc/$pid" ]] || break
        sleep 0.2
    done
    if [[ -d "/proc/$pid" ]]; then
        warn "$(basename "$file" .pid) (pid $pid) ignored TERM; killing it"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
    log "$(basename "$file" .pid) stopped (pid $pid)"
}

# apt_install PACKAGE...: install what is missing. Serialized with a lock, because the servers are
# set up in parallel; the package lists are refreshed at most once an hour.
apt_install() {
    mkdir -p "$RUN"
    (
        flock 9
        local missing=() pkg
        for pkg in "$@"; do
            dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
        done
        ((${#missing[@]})) || exit 0
        [[ $(id -u) == 0 ]] || die "need root to apt-get install ${missing[*]}"
        if [[ -z "$(find "$RUN/apt-updated" -mmin -60 2>/dev/null)" ]]; then
            log "apt-get update"
            apt-get update -qq >/dev/null || die "apt-get update failed"
            touch "$RUN/apt-updated"
        fi
        log "apt-get install ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
            || die "apt-get install ${missing[*]} failed"
    ) 9>"$RUN/apt.lock"
}
