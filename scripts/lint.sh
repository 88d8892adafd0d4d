#!/usr/bin/env bash
# The lint stage of scripts/test.sh, also run on its own inside the dev virtualenv:
#
#   bash scripts/lint.sh
#
#   ruff          style and correctness rules ([tool.ruff] in pyproject.toml)
#   lint-imports  the import contracts: the layers of the package and what each may not import
#                 ([tool.importlinter]; docs/architecture.md explains them)
#   mypy          types, with django-stubs and djangorestframework-stubs ([tool.mypy])
#
# Each tool runs even if one before it fails, so one run shows every finding.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

rc=0
ruff check django_async_email tests example_project scripts benchmarks || rc=1
lint-imports --no-cache || rc=1
# The Django plugin loads the test settings, which read these (and need no server).
ASYNC_EMAIL_TEST_RUN_DIR="${ASYNC_EMAIL_TEST_RUN_DIR:-$(mktemp -d)}" mypy || rc=1
exit "$rc"
