#!/usr/bin/env bash
# Installs and starts what the tests need, then runs every check and test.
set -euo pipefail
cd "$(dirname "$0")/.."

# Stop the services at the end only if this run is the one that started them.
if ! scripts/services.sh running; then
  trap 'scripts/services.sh stop' EXIT
fi
scripts/services.sh start

export NEWSREC_KAFKA_BROKERS=${NEWSREC_KAFKA_BROKERS:-127.0.0.1:9092}
export NEWSREC_REDIS_URL=${NEWSREC_REDIS_URL:-redis://127.0.0.1:6379}
export NEWSREC_TEST_REDIS_CLUSTER=${NEWSREC_TEST_REDIS_CLUSTER:-redis://127.0.0.1:7101,redis://127.0.0.1:7102,redis://127.0.0.1:7103}

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== API contract (schemathesis)"
scripts/api_contract.sh
echo "== Airflow DAG on a real Airflow"
scripts/airflow_test.sh
