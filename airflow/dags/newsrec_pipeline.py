"""newsrec's model pipeline as an Airflow DAG: download (or synth) -> process -> train
-> evaluate -> publish, one task per step, each calling the ``newsrec`` command line.

The steps are ``newsrec pipeline --step STEP`` and ``newsrec publish``: each keeps the
pipeline's input fingerprints in the models directory, so a run whose inputs did not
change skips its steps (a no-op). ``train`` writes a *candidate* version; ``publish``
(the gate) makes it current only when its offline NDCG@K, overall and per tier, is not
worse than the current model's by more than ``[publish] tolerance``. Otherwise the task
fails with the figures in its log and the API keeps serving the old model.

Configuration: an Airflow Variable when it is set, else the environment variable, else
the default below. Variables are read when a task runs; the schedule is read when the
DAG file is parsed.

=====================  ======================  ==========================================
Variable               environment             meaning
=====================  ======================  ==========================================
(none)                 NEWSREC_SCHEDULE        schedule (cron or preset), default @daily
newsrec_bin            NEWSREC_BIN             the newsrec binary, default ``newsrec``
newsrec_raw_dir        NEWSREC_RAW_DIR         raw G1 data ([paths] raw)
newsrec_data_dir       NEWSREC_DATA_DIR        refined data ([paths] data)
newsrec_models_dir     NEWSREC_MODELS_DIR      models, state and run log ([paths] models)
newsrec_data_url       NEWSREC_DATA_URL        G1 zip URL; empty: synthetic data instead
newsrec_synth_users    NEWSREC_SYNTH_USERS     synthetic training users, default 50000
newsrec_synth_items    NEWSREC_SYNTH_ITEMS     synthetic articles, default 5000
newsrec_synth_seed     NEWSREC_SYNTH_SEED      synthetic seed, default 42
=====================  ======================  ==========================================

Every other setting (training parameters, the gate's tolerance, K) is newsrec's own:
a settings file in ``NEWSREC_CONFIG`` or ``NEWSREC_<TABLE>__<KEY>`` variables in the
workers' environment, which the tasks inherit.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta

from airflow import DAG
from airflow.operators.bash import BashOperator

DAG_ID = "newsrec_pipeline"
SCHEDULE = os.environ.get("NEWSREC_SCHEDULE", "@daily")

# (Airflow Variable, environment variable, default)
SETTINGS = [
    ("newsrec_bin", "NEWSREC_BIN", "newsrec"),
    ("newsrec_raw_dir", "NEWSREC_RAW_DIR", "/var/lib/newsrec/raw"),
    ("newsrec_data_dir", "NEWSREC_DATA_DIR", "/var/lib/newsrec/data"),
    ("newsrec_models_dir", "NEWSREC_MODELS_DIR", "/var/lib/newsrec/models"),
    ("newsrec_data_url", "NEWSREC_DATA_URL", ""),
    ("newsrec_synth_users", "NEWSREC_SYNTH_USERS", "50000"),
    ("newsrec_synth_items", "NEWSREC_SYNTH_ITEMS", "5000"),
    ("newsrec_synth_seed", "NEWSREC_SYNTH_SEED", "42"),
]


def setting(variable: str, env: str, default: str) -> str:
    """A Jinja expression: the Airflow Variable, else the environment, else default."""
    fallback = json.dumps(os.environ.get(env, default))
    return "{{ var.value.get(%s, %s) }}" % (json.dumps(variable), fallback)


# What every task's `newsrec` sees: the settings above under the names the DAG's
# commands use, and the three directories as newsrec's own [paths] settings.
TASK_ENV = {env: setting(var, env, default) for var, env, default in SETTINGS}
TASK_ENV.update(
    {
        "NEWSREC_PATHS__RAW": TASK_ENV["NEWSREC_RAW_DIR"],
        "NEWSREC_PATHS__DATA": TASK_ENV["NEWSREC_DATA_DIR"],
        "NEWSREC_PATHS__MODELS": TASK_ENV["NEWSREC_MODELS_DIR"],
    }
)

DOWNLOAD = """
set -eu
if [ -n "$NEWSREC_DATA_URL" ]; then
  "$NEWSREC_BIN" data download --url "$NEWSREC_DATA_URL"
else
  echo "no data URL configured: synthetic G1 data"
  "$NEWSREC_BIN" data synth --users "$NEWSREC_SYNTH_USERS" --items "$NEWSREC_SYNTH_ITEMS" --seed "$NEWSREC_SYNTH_SEED"
fi
"""

# Task id -> the newsrec command it runs (arguments after the binary).
STEPS = {
    "process": "pipeline --step process",
    "train": "pipeline --step train",
    "evaluate": "pipeline --step evaluate",
    "publish": "publish",
}

with DAG(
    dag_id=DAG_ID,
    description="newsrec: download -> process -> train -> evaluate -> publish (gated)",
    schedule=SCHEDULE,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "newsrec", "retries": 0},
    dagrun_timeout=timedelta(hours=6),
    tags=["newsrec"],
    doc_md=__doc__,
) as dag:
    download = BashOperator(
        task_id="download",
        bash_command=DOWNLOAD,
        env=TASK_ENV,
        append_env=True,
        retries=2,
        retry_delay=timedelta(minutes=5),
    )
    previous = download
    for task_id, command in STEPS.items():
        task = BashOperator(
            task_id=task_id,
            bash_command=f'set -eu\nexec "$NEWSREC_BIN" {command}\n',
            env=TASK_ENV,
            append_env=True,
        )
        previous >> task
        previous = task
