#!/usr/bin/env bash
# The project's test command:
#
#   bash scripts/test.sh [--full] [pytest arguments...]
#
# Runs the suite in every configuration that needs no server:
#   default    SQLite file database, kombu filesystem broker, the custom user model (testapp.User)
#   auth-user  the same with Django's stock user (ASYNC_EMAIL_TEST_USER_MODEL=auth.User);
#              tests marked custom_user are deselected
#   nodrf      `tox -e nodrf`: Django 5.2 without djangorestframework installed
#   adopter    tests/zamio, a host unlike ours (its own user model and manager, JWT auth, an
#              error envelope, code-typing front ends) set up as docs/migration.md says
#   lint       ruff, lint-imports (the layer contracts in pyproject.toml) and mypy (django-stubs);
#              docs: mkdocs build --strict (warnings are errors)
# With --full or ASYNC_EMAIL_FULL_MATRIX=1, also against real servers (started if they are down):
#   postgres   ASYNC_EMAIL_TEST_DB=postgres
#   redis      ASYNC_EMAIL_TEST_BROKER=redis with ASYNC_EMAIL_TEST_DB=postgres
#   amqp       ASYNC_EMAIL_TEST_BROKER=amqp
#
# Every stage runs even when an earlier one fails; the exit status is 1 if any failed. A stage in
# which pytest collects no test (exit 5) counts as failed. Outside a virtualenv the script first
# creates .venv and installs `-e .[dev]` into it. The Django x Python matrix is `tox` (tox.ini).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

full="${ASYNC_EMAIL_FULL_MATRIX:-0}"
if [[ "${1:-}" == --full ]]; then
    full=1
    shift
fi
pytest_args=("$@")

# --- A virtualenv with the dev extra ---------------------------------------------------------
base_python=$(command -v python3 || command -v python || true)
add_pyenv_pythons
if [[ -z "${VIRTUAL_ENV:-}" ]] && [[ -n "$base_python" ]] \
    && "$base_python" -c 'import sys; sys.exit(sys.prefix == sys.base_prefix)' 2>/dev/null; then
    VIRTUAL_ENV=$("$base_python" -c 'import sys; print(sys.prefix)')
fi
if [[ -z "${VIRTUAL_ENV:-}" ]]; then
    [[ -n "$base_python" ]] || die "no python3 on PATH"
    VIRTUAL_ENV="$ROOT/.venv"
    stamp="$VIRTUAL_ENV/.dev-extra-installed"
    want=$(sha256sum pyproject.toml | cut -d' ' -f1)
    if [[ ! -x "$VIRTUAL_ENV/bin/python" ]]; then
        log "creating $VIRTUAL_ENV with $("$base_python" --version)"
        "$base_python" -m venv "$VIRTUAL_ENV"
    fi
    if [[ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]]; then
        log "installing -e .[dev] into $VIRTUAL_ENV"
        "$VIRTUAL_ENV/bin/python" -m pip install --disable-pip-version-check -q -e ".[dev]"
        echo "$want" >"$stamp"
    fi
fi
export VIRTUAL_ENV
export PATH="$VIRTUAL_ENV/bin:$PATH"
python -c 'import django, pytest, pytest_django, rest_framework, tox, mkdocs, importlinter, mypy' 2>/dev/null \
    || die "$VIRTUAL_ENV lacks the dev extra: run  python -m pip install -e '.[dev]'  in it"

# Each stage sets the configuration it tests; nothing leaks in from the caller's shell except
# the server addresses (ASYNC_EMAIL_TEST_*_URL, PG*).
unset DJANGO_SETTINGS_MODULE
for var in $(compgen -e | grep '^ASYNC_EMAIL_TEST_' || true); do
    [[ "$var" == *_URL ]] || unset "$var"
done

# --- Stages ---------------------------------------------------------------------------------
results=()
failed=0

# run_stage NAME [VAR=value ...] -- command ...
# Each stage gets its own run directory (database file, broker folders, worker.log), removed
# when the stage passes and kept for inspection when it fails.
run_stage() {
    local name=$1 rc=0 start run_dir
    shift
    local -a envs=()
    while [[ "$1" != -- ]]; do
        envs+=("$1")
        shift
    done
    shift
    run_dir=$(mktemp -d "${TMPDIR:-/tmp}/async-email-$name.XXXXXX")
    log "stage $name: ${envs[*]:-(defaults)} $*"
    start=$SECONDS
    env ${envs[@]+"${envs[@]}"} ASYNC_EMAIL_TEST_RUN_DIR="$run_dir" "$@" || rc=$?
    local took=$((SECONDS - start))
    if [[ $rc -eq 0 ]]; then
        rm -rf "$run_dir"
        results+=("ok      $name  ${took}s")
    elif [[ $rc -eq 5 ]]; then
        failed=1
        results+=("FAILED  $name  ${took}s  (pytest collected no tests)")
    else
        failed=1
        results+=("FAILED  $name  ${took}s  (exit $rc; run dir kept: $run_dir)")
    fi
}

# Messages left in a server's queues by an interrupted run would reach the next run's worker
# (outbox ids restart at 1 in a new test database), so the broker stages purge them first.
purge_queues() {
    local run_dir
    run_dir=$(mktemp -d "${TMPDIR:-/tmp}/async-email-purge.XXXXXX")
    log "purging the test queues on $1"
    ASYNC_EMAIL_TEST_BROKER="$1" ASYNC_EMAIL_TEST_RUN_DIR="$run_dir" \
        python -m celery -A tests.celery_app purge -f -Q high,normal,low >&2 \
        || echo "could not purge the $1 queues; the stage will show why" >&2
    rm -rf "$run_dir"
}

pytest_cmd=(python -m pytest ${pytest_args[@]+"${pytest_args[@]}"})

run_stage default -- "${pytest_cmd[@]}"
run_stage auth-user ASYNC_EMAIL_TEST_USER_MODEL=auth.User -- "${pytest_cmd[@]}"
run_stage nodrf -- tox -e nodrf -- ${pytest_args[@]+"${pytest_args[@]}"}
run_stage adopter -- "${pytest_cmd[@]}" --ds tests.zamio.settings tests/zamio
run_stage lint -- bash scripts/lint.sh
# No --quiet: with it, mkdocs drops the warnings and --strict then has nothing to fail on.
run_stage docs -- mkdocs build --strict --site-dir "${TMPDIR:-/tmp}/django-async-email-site"

# === Runs against real servers ===============================================================
# PostgreSQL, Redis and RabbitMQ configurations. Add further server-backed stages here.
# They share one test database (test_async_email), Redis db 15 and RabbitMQ's default vhost,
# so concurrent runs on one machine wait for each other on a lock.
if [[ "$full" == 1 ]]; then
    log "starting the servers the full matrix needs, if they are down"
    ensure_services postgres redis rabbitmq
    exec 9>"${TMPDIR:-/tmp}/django-async-email-servers.lock"
    flock -w 1800 9 || die "another test run has held the server lock for 30 minutes"
    run_stage postgres ASYNC_EMAIL_TEST_DB=postgres -- "${pytest_cmd[@]}"
    purge_queues redis
    run_stage redis ASYNC_EMAIL_TEST_BROKER=redis ASYNC_EMAIL_TEST_DB=postgres -- "${pytest_cmd[@]}"
    purge_queues amqp
    run_stage amqp ASYNC_EMAIL_TEST_BROKER=amqp -- "${pytest_cmd[@]}"
    flock -u 9
fi
# =============================================================================================

log "summary"
printf '  %s\n' "${results[@]}" >&2
exit "$failed"
