#!/usr/bin/env bash
# The API contract check: a live `newsrec serve` (small synthetic model, real Redis and
# Kafka) is fuzzed by schemathesis from its own /openapi.json with every check; any
# finding fails the script. A schema-valid request must succeed (or get a documented
# 404/401), a schema-invalid one must get a 4xx, and no request may get a 5xx.
#
#   scripts/api_contract.sh [path/to/newsrec]
#
# Needs Redis and Kafka on loopback (scripts/services.sh start). Environment:
#   NEWSREC_REDIS_URL        default redis://127.0.0.1:6379
#   NEWSREC_KAFKA_BROKERS    default 127.0.0.1:9092
#   SCHEMATHESIS_VENV        default /opt/schemathesis-venv (created when missing)
#   API_CONTRACT_EXAMPLES    test cases per operation and phase, default 30
#   NEWSREC_CONTRACT_SEED    schemathesis' seed, default 20261201: CI runs the same cases
#                            every time; set another to explore (one worker: CPython 3.11
#                            can fail compiling schemathesis' strategies in two threads)
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
VENV=${SCHEMATHESIS_VENV:-/opt/schemathesis-venv}
REDIS_URL=${NEWSREC_REDIS_URL:-redis://127.0.0.1:6379}
BROKERS=${NEWSREC_KAFKA_BROKERS:-127.0.0.1:9092}
EXAMPLES=${API_CONTRACT_EXAMPLES:-30}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${1:-$TARGET/debug/newsrec}

log() { printf '[api-contract] %s\n' "$*" >&2; }

if ! "$VENV/bin/st" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "schemathesis==$SCHEMATHESIS_VERSION"
fi
if [ ! -x "$BIN" ]; then
  log "building newsrec"
  cargo build --locked --bin newsrec
  BIN=$TARGET/debug/newsrec
fi

RUN=$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')
PREFIX="newsrec:contract:$RUN:"
TOPIC="newsrec-contract-$RUN"
WORK=$(mktemp -d)
SERVER=
cleanup() {
  if [ -n "$SERVER" ]; then
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
  fi
  redis-cli -u "$REDIS_URL" --scan --pattern "$PREFIX*" | xargs -r redis-cli -u "$REDIS_URL" del >/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# The smallest data the trainer accepts for every tier, as the API tests use.
log "training a small model on synthetic data"
"$BIN" data synth --out "$WORK/raw" --users 1500 --items 400 --seed 11 >/dev/null
"$BIN" data process --raw "$WORK/raw" --out "$WORK/refined" >/dev/null
"$BIN" train --data "$WORK/refined" --models "$WORK/models" >/dev/null
# `replay` creates the topic POST /events publishes to (one event is enough).
"$BIN" replay --data "$WORK/refined" --brokers "$BROKERS" --topic "$TOPIC" --partitions 1 --limit 1 >/dev/null

"$BIN" serve --models "$WORK/models" --redis "$REDIS_URL" --prefix "$PREFIX" \
  --brokers "$BROKERS" --topic "$TOPIC" --addr 127.0.0.1:0 >"$WORK/serve.out" 2>"$WORK/serve.log" &
SERVER=$!
BASE=
for _ in $(seq 1 300); do
  BASE=$(sed -n 's/^listening on //p' "$WORK/serve.out")
  [ -n "$BASE" ] && break
  if ! kill -0 "$SERVER" 2>/dev/null; then
    cat "$WORK/serve.log" >&2
    log "newsrec serve exited before listening"
    exit 1
  fi
  sleep 0.1
done
if [ -z "$BASE" ]; then
  cat "$WORK/serve.log" >&2
  log "newsrec serve did not listen within 30 s"
  exit 1
fi
log "newsrec serve on $BASE; running schemathesis $SCHEMATHESIS_VERSION"

started=$(date +%s)
status=0
"$VENV/bin/st" --no-color run "$BASE/openapi.json" --checks all \
  --max-examples "$EXAMPLES" --workers 1 --request-timeout 10 \
  --seed "${NEWSREC_CONTRACT_SEED:-20261201}" || status=$?
log "schemathesis finished in $(($(date +%s) - started)) s (exit $status)"
if [ "$status" != 0 ]; then
  log "server log (tail):"
  tail -n 40 "$WORK/serve.log" >&2
fi
exit "$status"
