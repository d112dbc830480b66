#!/usr/bin/env bash
# The newsrec_pipeline DAG against a real Apache Airflow.
#
# Installs Airflow exactly as airflow/requirements.txt pins it into a virtualenv (reused
# when it already has the pinned version), keeps Airflow's metadata in the PostgreSQL on
# loopback (a database of its own, dropped and recreated on every run, as compose keeps
# it in Postgres), checks that the DAG folder imports with no errors, then runs
# `airflow dags test newsrec_pipeline` three times on small synthetic data:
#   1. the run succeeds and leaves a new current model version with an evaluation record;
#   2. a second run skips every pipeline step (its input fingerprints are unchanged);
#   3. a run whose candidate is worse (a training setting that degrades the model) is
#      refused by the publish gate: the publish task fails with the figures in its log
#      and `current` is unchanged.
#
#   scripts/airflow_test.sh [path/to/newsrec]
#
# Environment:
#   AIRFLOW_VENV     default /opt/airflow-venv (created when missing or not pinned)
#   AIRFLOW_PYTHON   the interpreter for a new venv, default python3.11
#   AIRFLOW_PGHOST   default 127.0.0.1     AIRFLOW_PGPORT  default 5432
#   AIRFLOW_PGUSER   default postgres      AIRFLOW_DB      default newsrec_airflow
#   CARGO_TARGET_DIR where the newsrec binary is built, default target/
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

VENV=${AIRFLOW_VENV:-/opt/airflow-venv}
PYTHON=${AIRFLOW_PYTHON:-python3.11}
PGHOST=${AIRFLOW_PGHOST:-127.0.0.1}
PGPORT=${AIRFLOW_PGPORT:-5432}
PGUSER=${AIRFLOW_PGUSER:-postgres}
DB=${AIRFLOW_DB:-newsrec_airflow}
REQUIREMENTS=$REPO/airflow/requirements.txt
BIN=${1:-${CARGO_TARGET_DIR:-target}/debug/newsrec}
DAG_ID=newsrec_pipeline

log() { printf '[airflow-test] %s\n' "$*" >&2; }
fail() {
  log "FAILED: $*"
  exit 1
}
PHASE_START=$(date +%s)
phase_done() {
  local now
  now=$(date +%s)
  log "$1: $((now - PHASE_START)) s"
  PHASE_START=$now
}

[ -x "$BIN" ] || fail "no newsrec binary at $BIN (cargo build --bin newsrec)"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# -- 1. Airflow, as pinned ---------------------------------------------------------
PINNED=$(sed -n 's/^apache-airflow==//p' "$REQUIREMENTS")
[ -n "$PINNED" ] || fail "$REQUIREMENTS pins no apache-airflow version"
installed() {
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("apache-airflow")); import psycopg2' 2>/dev/null
}
if [ "$(installed | head -1)" = "$PINNED" ]; then
  log "apache-airflow $PINNED already in $VENV"
else
  log "installing apache-airflow $PINNED into $VENV"
  rm -rf "$VENV"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  [ "$(installed | head -1)" = "$PINNED" ] || fail "apache-airflow $PINNED did not install"
fi
phase_done "install"

# -- 2. Metadata database ----------------------------------------------------------
if ! pg_isready -q -h "$PGHOST" -p "$PGPORT"; then
  if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    log "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  fi
  for _ in $(seq 1 30); do pg_isready -q -h "$PGHOST" -p "$PGPORT" && break; sleep 1; done
  pg_isready -q -h "$PGHOST" -p "$PGPORT" || fail "no PostgreSQL on $PGHOST:$PGPORT"
fi
psql -q -h "$PGHOST" -p "$PGPORT" -U "$PGUSER" -d postgres -v ON_ERROR_STOP=1 \
  -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export AIRFLOW_HOME=$WORK/airflow-home
export AIRFLOW__CORE__DAGS_FOLDER=$REPO/airflow/dags
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgresql+psycopg2://$PGUSER@$PGHOST:$PGPORT/$DB
export AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS=False
mkdir -p "$AIRFLOW_HOME"
AIRFLOW=$VENV/bin/airflow
"$AIRFLOW" db migrate >"$WORK/migrate.log" 2>&1 || { tail -30 "$WORK/migrate.log"; fail "airflow db migrate"; }
phase_done "metadata database ($DB) migrated"

# -- 3. The DAG folder imports cleanly ---------------------------------------------
ERRORS=$(AIRFLOW__LOGGING__LOGGING_LEVEL=WARNING "$AIRFLOW" dags list-import-errors -o json 2>"$WORK/import.log") || { cat "$WORK/import.log"; fail "list-import-errors"; }
[ "$(printf '%s' "$ERRORS" | tr -d '[:space:]')" = "[]" ] || fail "DAG import errors: $ERRORS"
"$AIRFLOW" dags list -o plain 2>/dev/null | grep -qw "$DAG_ID" || fail "$DAG_ID is not in the DAG folder"
"$AIRFLOW" dags reserialize >/dev/null 2>&1
phase_done "DAG folder imports with zero errors"

# -- 4. Three runs on small synthetic data -----------------------------------------
export NEWSREC_BIN=$BIN
export NEWSREC_RAW_DIR=$WORK/raw
export NEWSREC_DATA_DIR=$WORK/refined
export NEWSREC_MODELS_DIR=$WORK/models
export NEWSREC_SYNTH_USERS=2000 NEWSREC_SYNTH_ITEMS=600 NEWSREC_SYNTH_SEED=7
MODELS=$NEWSREC_MODELS_DIR
export RUST_LOG=${RUST_LOG:-info}

# Facts about the models directory, from its files.
facts() {
  "$VENV/bin/python" - "$MODELS" "$@" <<'PY'
import json, os, sys
models, what = sys.argv[1], sys.argv[2]
def lines(name):
    path = os.path.join(models, name)
    if not os.path.exists(path):
        return []
    return [json.loads(l) for l in open(path) if l.strip()]
def link(name):
    path = os.path.join(models, name)
    return os.path.basename(os.readlink(path)) if os.path.islink(path) else ""
if what == "current":
    print(link("current"))
elif what == "candidate":
    print(link("candidate"))
elif what == "evaluated":          # versions with an evaluation record
    print(" ".join(sorted({r["version"] for r in lines("evaluations.jsonl")})))
elif what == "runs":               # how many run-log lines
    print(len(lines("pipeline-runs.jsonl")))
elif what == "statuses":           # step=status of run-log lines after the first N
    skip = int(sys.argv[3])
    print(" ".join(f'{s["name"]}={s["status"]}' for r in lines("pipeline-runs.jsonl")[skip:] for s in r["steps"]))
elif what == "refusals":
    print(sum(1 for d in lines("publish.jsonl") if not d["published"]))
PY
}

dags_test() {
  local date=$1 out=$2
  local started
  started=$(date +%s)
  set +e
  "$AIRFLOW" dags test "$DAG_ID" "$date" >"$out" 2>&1
  local rc=$?
  set -e
  log "dags test $date: exit $rc, $(($(date +%s) - started)) s"
  return $rc
}

run_state() { grep -Eo 'state=(success|failed)' "$1" | tail -1 | cut -d= -f2; }

# Run 1: everything runs; the first model always publishes.
dags_test 2026-01-01 "$WORK/run1.log" || { tail -60 "$WORK/run1.log"; fail "first run"; }
[ "$(run_state "$WORK/run1.log")" = success ] || { tail -60 "$WORK/run1.log"; fail "first run did not succeed"; }
V1=$(facts current)
[ -n "$V1" ] || fail "no current model after the first run"
[ "$(facts candidate)" = "$V1" ] || fail "the published version is not the candidate"
facts evaluated | grep -qw "$V1" || fail "no evaluation record of $V1"
RUNS1=$(facts runs)
log "run 1: current $V1, evaluated; steps: $(facts statuses 0)"
phase_done "run 1 (everything runs)"

# Run 2: unchanged inputs, every pipeline step skipped, same current model.
dags_test 2026-01-02 "$WORK/run2.log" || { tail -60 "$WORK/run2.log"; fail "second run"; }
STEPS2=$(facts statuses "$RUNS1")
log "run 2: steps: $STEPS2"
for step in process train evaluate publish; do
  printf '%s\n' "$STEPS2" | tr ' ' '\n' | grep -qx "$step=skipped" || fail "run 2 did not skip $step: $STEPS2"
done
printf '%s\n' "$STEPS2" | tr ' ' '\n' | grep -v '=skipped$' | grep -q . && fail "run 2 ran steps: $STEPS2"
[ "$(facts current)" = "$V1" ] || fail "run 2 changed current"
RUNS2=$(facts runs)
phase_done "run 2 (unchanged inputs: every step skipped)"

# Run 3: a training setting that makes the candidate worse; the gate refuses it.
export NEWSREC_TRAIN__LIST_LEN=1 NEWSREC_TRAIN__POOL_SIZE=1 NEWSREC_TRAIN__ALS__FACTORS=1
if dags_test 2026-01-03 "$WORK/run3.log" && [ "$(run_state "$WORK/run3.log")" = success ]; then
  tail -60 "$WORK/run3.log"
  fail "run 3 (worse candidate) succeeded"
fi
unset NEWSREC_TRAIN__LIST_LEN NEWSREC_TRAIN__POOL_SIZE NEWSREC_TRAIN__ALS__FACTORS
log "run 3: steps: $(facts statuses "$RUNS2")"
grep -q "publish refused" "$WORK/run3.log" || { tail -60 "$WORK/run3.log"; fail "no refusal in the publish task's log"; }
log "run 3: the publish task's log says:"
# (dags test echoes each task line through two log handlers: one of each.)
sed -n 's/^.*{subprocess.py:[0-9]*} INFO - //p' "$WORK/run3.log" | uniq \
  | grep -A4 "publish failed: publish refused" | sed 's/^/    /' >&2
V3=$(facts candidate)
[ "$V3" != "$V1" ] || fail "run 3 trained no new candidate"
[ "$(facts current)" = "$V1" ] || fail "run 3 changed current to $(facts current)"
[ "$(facts refusals)" -ge 1 ] || fail "the refusal is not recorded in publish.jsonl"
phase_done "run 3 (worse candidate $V3 refused, current still $V1)"
log "ok"
