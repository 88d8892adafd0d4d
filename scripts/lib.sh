# Shell helpers shared by scripts/test.sh and .ci/run. Source it; it defines functions only.
# shellcheck shell=bash

log() { printf '\n==> %s\n' "$*" >&2; }
die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }

# Put pyenv's real interpreters on PATH, so that tox finds python3.10 ... python3.13 directly
# (pyenv's shims only answer for the selected version and fail for the others).
add_pyenv_pythons() {
    local root="${PYENV_ROOT:-$HOME/.pyenv}" dirs="" dir minor
    for minor in 10 11 12 13; do
        # The newest patch release of each minor version, if installed.
        dir=$(ls -d "$root"/versions/3."$minor".*/bin 2>/dev/null | sort -V | tail -n 1 || true)
        [[ -n "$dir" && -x "$dir/python3.$minor" ]] && dirs="$dirs$dir:"
    done
    [[ -n "$dirs" ]] && export PATH="$dirs$PATH"
    return 0
}

# --- Services for the PostgreSQL / Redis / RabbitMQ runs -------------------------------------
# Each service is checked on its default local port and started with its own command if down.

service_up() {
    case "$1" in
        postgres) pg_isready -q -h 127.0.0.1 -p 5432 ;;
        redis) [[ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" == PONG ]] ;;
        rabbitmq) (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null ;;
        *) die "unknown service $1" ;;
    esac
}

start_service() {
    case "$1" in
        postgres)
            local version
            version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
            [[ -n "$version" ]] || { echo "no cluster under /etc/postgresql" >&2; return 1; }
            pg_ctlcluster --skip-systemctl-redirect "$version" main start
            ;;
        redis)
            mkdir -p /var/lib/redis /var/log/redis
            redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
                --dir /var/lib/redis --logfile /var/log/redis/ci.log
            ;;
        rabbitmq) rabbitmq-server -detached ;;
        *) die "unknown service $1" ;;
    esac
}

# ensure_services [postgres] [redis] [rabbitmq]: start those that are down (all three by default),
# wait up to ASYNC_EMAIL_SERVICE_TIMEOUT seconds (60) for every one, and fail loudly otherwise.
ensure_services() {
    local services=("$@") service deadline
    local -a pending
    [[ ${#services[@]} -gt 0 ]] || services=(postgres redis rabbitmq)
    for service in "${services[@]}"; do
        if service_up "$service"; then
            echo "$service: already running" >&2
        else
            echo "$service: not running, starting it" >&2
            start_service "$service" || echo "$service: the start command failed; waiting anyway" >&2
        fi
    done
    deadline=$((SECONDS + ${ASYNC_EMAIL_SERVICE_TIMEOUT:-60}))
    while :; do
        pending=()
        for service in "${services[@]}"; do
            service_up "$service" || pending+=("$service")
        done
        [[ ${#pending[@]} -eq 0 ]] && { echo "services up: ${services[*]}" >&2; return 0; }
        if ((SECONDS >= deadline)); then
            die "not reachable after ${ASYNC_EMAIL_SERVICE_TIMEOUT:-60}s: ${pending[*]}" \
                "(postgres: pg_isready -h 127.0.0.1; redis: redis-cli ping; rabbitmq: TCP 127.0.0.1:5672)"
        fi
        sleep 1
    done
}
