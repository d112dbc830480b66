//! Checks of the Airflow deployment that need neither a container engine nor Airflow
//! (scripts/airflow_test.sh runs the DAG on a real Airflow): the compose profile
//! `airflow`, its image, the DAG's commands, which the `newsrec` binary must accept, and
//! those commands run one by one as the DAG's tasks run them, up to the publish gate
//! refusing a worse candidate.

use std::collections::BTreeSet;
use std::process::Command;

use anyhow::{Context, ensure};
use serde_norway::Value as Yaml;

use crate::support::BIN;
use crate::support::ops::{
    compose, compose_dir, compose_services, interpolate, key_str, repo_root, string_list,
};

const AIRFLOW_SERVICES: [&str; 4] = [
    "airflow-postgres",
    "airflow-init",
    "airflow-scheduler",
    "airflow-webserver",
];

/// The DAG file.
fn dag_source() -> anyhow::Result<String> {
    let path = repo_root()
        .join("airflow")
        .join("dags")
        .join("newsrec_pipeline.py");
    std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))
}

/// The DAG's `STEPS` table: task id → the newsrec arguments it runs.
fn dag_steps(source: &str) -> anyhow::Result<Vec<(String, String)>> {
    let start = source
        .find("STEPS = {")
        .context("no STEPS table in the DAG")?;
    let body = &source[start..];
    let end = body.find('}').context("unclosed STEPS table")?;
    let mut steps = Vec::new();
    for line in body[..end].lines().skip(1) {
        let parts: Vec<&str> = line.split('"').collect();
        if parts.len() >= 4 {
            steps.push((parts[1].to_string(), parts[3].to_string()));
        }
    }
    Ok(steps)
}

/// A service's environment value, interpolated with compose's defaults.
fn env(svc: &Yaml, key: &str) -> anyhow::Result<String> {
    let v = svc["environment"][key]
        .as_str()
        .with_context(|| format!("environment {key} missing"))?;
    interpolate(v)
}

#[test]
fn the_dag_runs_every_pipeline_step_with_commands_the_binary_accepts() -> anyhow::Result<()> {
    let source = dag_source()?;
    ensure!(source.contains("dag_id=DAG_ID") && source.contains("DAG_ID = \"newsrec_pipeline\""));
    let steps = dag_steps(&source)?;
    let ids: Vec<&str> = steps.iter().map(|(id, _)| id.as_str()).collect();
    let expected: Vec<&str> = newsrec_train::PipelineStep::ALL
        .iter()
        .map(|s| s.name())
        .collect();
    ensure!(
        ids == expected,
        "the DAG's tasks {ids:?} are not the pipeline's steps {expected:?}"
    );
    for (id, args) in &steps {
        let args: Vec<&str> = args.split_whitespace().collect();
        // clap parses every flag and value before honouring --help; nothing runs.
        let out = Command::new(BIN).args(&args).arg("--help").output()?;
        ensure!(
            out.status.success(),
            "task {id}: `newsrec {}` is rejected:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for sub in ["data download --url", "data synth --users"] {
        ensure!(
            source.contains(sub),
            "the download task does not run `{sub}`"
        );
    }
    Ok(())
}

#[test]
fn compose_airflow_profile_shares_the_serve_volumes() -> anyhow::Result<()> {
    let compose = compose()?;
    let services = compose_services(&compose)?;
    for name in AIRFLOW_SERVICES {
        let svc = services
            .get(name)
            .with_context(|| format!("service `{name}` missing"))?;
        ensure!(
            string_list(&svc["profiles"]) == ["airflow"],
            "{name}: not (only) in the `airflow` profile"
        );
    }
    // The default profile keeps its own scheduled pipeline and never waits for Airflow.
    for (name, svc) in services {
        let name = key_str(name);
        if svc["profiles"].is_null() {
            for dep in svc["depends_on"].as_mapping().into_iter().flatten() {
                let dep = key_str(dep.0);
                ensure!(
                    !AIRFLOW_SERVICES.contains(&dep.as_str()),
                    "{name} (default profile) depends on {dep}"
                );
            }
        }
    }
    let pipeline = string_list(&services["pipeline"]["command"]);
    ensure!(pipeline.iter().any(|a| a == "--every"));
    ensure!(services["pipeline"]["profiles"].is_null());

    // The scheduler runs the tasks: it sees serve's volumes where the DAG looks.
    let scheduler = &services["airflow-scheduler"];
    let mounts: BTreeSet<String> = string_list(&scheduler["volumes"]).into_iter().collect();
    let serve: BTreeSet<String> = string_list(&services["serve"]["volumes"])
        .into_iter()
        .collect();
    for (volume, var) in [
        ("newsrec-raw:/var/lib/newsrec/raw", "NEWSREC_RAW_DIR"),
        ("newsrec-data:/var/lib/newsrec/data", "NEWSREC_DATA_DIR"),
        (
            "newsrec-models:/var/lib/newsrec/models",
            "NEWSREC_MODELS_DIR",
        ),
    ] {
        ensure!(
            mounts.contains(volume),
            "airflow-scheduler: {volume} not mounted"
        );
        ensure!(serve.contains(volume), "serve: {volume} not mounted");
        let path = volume.split_once(':').map(|v| v.1).unwrap_or_default();
        ensure!(
            env(scheduler, var)? == path,
            "airflow-scheduler: {var} is not {path}"
        );
    }
    ensure!(env(scheduler, "NEWSREC_BIN")? == "/usr/local/bin/newsrec");
    ensure!(env(scheduler, "AIRFLOW__CORE__EXECUTOR")? == "LocalExecutor");
    ensure!(env(scheduler, "NEWSREC_SCHEDULE")? == "@daily");

    // Metadata in the profile's Postgres, under the database it creates.
    let conn = env(scheduler, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")?;
    let postgres = &services["airflow-postgres"];
    let db = env(postgres, "POSTGRES_DB")?;
    let user = env(postgres, "POSTGRES_USER")?;
    let password = env(postgres, "POSTGRES_PASSWORD")?;
    ensure!(
        conn == format!("postgresql+psycopg2://{user}:{password}@airflow-postgres:5432/{db}"),
        "the metadata connection `{conn}` is not airflow-postgres' database"
    );
    for name in ["airflow-scheduler", "airflow-webserver"] {
        let deps = services[name]["depends_on"]
            .as_mapping()
            .context("depends_on")?;
        ensure!(
            deps.get("airflow-init")
                .and_then(|c| c["condition"].as_str())
                == Some("service_completed_successfully"),
            "{name} does not wait for airflow-init"
        );
    }
    let init = string_list(&services["airflow-init"]["command"]).join("\n");
    ensure!(init.contains("airflow db migrate"));
    Ok(())
}

#[test]
fn the_airflow_image_installs_the_pinned_requirements_the_dag_and_the_binary() -> anyhow::Result<()>
{
    let compose = compose()?;
    let services = compose_services(&compose)?;
    let build = &services["airflow-scheduler"]["build"];
    let dockerfile = build["dockerfile"].as_str().context("build.dockerfile")?;
    let path = compose_dir()
        .join(build["context"].as_str().context("build.context")?)
        .join(dockerfile);
    let text = std::fs::read_to_string(&path)?;
    for needed in [
        "-r /opt/airflow/requirements.txt",
        "COPY airflow/dags /opt/airflow/dags",
        "COPY --from=build /out/newsrec /usr/local/bin/newsrec",
        "--uid 10001",
        "--bin newsrec",
    ] {
        ensure!(text.contains(needed), "{dockerfile}: no `{needed}`");
    }
    // The newsrec image's user owns the shared volumes; the Airflow image's must match.
    let newsrec = std::fs::read_to_string(compose_dir().join("Dockerfile"))?;
    ensure!(newsrec.contains("--uid 10001"));
    let requirements = std::fs::read_to_string(repo_root().join("airflow/requirements.txt"))?;
    let pinned: Vec<&str> = requirements
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .collect();
    ensure!(
        pinned.iter().all(|l| l.contains("==")),
        "every requirement must be pinned"
    );
    for package in ["apache-airflow==", "psycopg2-binary=="] {
        ensure!(
            pinned.iter().any(|l| l.starts_with(package)),
            "requirements pin no {package}"
        );
    }
    // The build context keeps the DAG and the requirements.
    let ignore = std::fs::read_to_string(repo_root().join(".dockerignore"))?;
    ensure!(
        !ignore
            .lines()
            .any(|l| l.trim().trim_end_matches('/') == "airflow"),
        ".dockerignore drops airflow/"
    );
    Ok(())
}

/// Runs `newsrec <args>` in `dir` with `env` on top of the test's environment.
fn newsrec(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> anyhow::Result<std::process::Output> {
    let mut cmd = Command::new(BIN);
    // Only the settings given: none of the shell's `NEWSREC_*` variables.
    for (k, _) in std::env::vars() {
        if k.starts_with("NEWSREC_") {
            cmd.env_remove(k);
        }
    }
    cmd.current_dir(dir)
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .output()
        .context("running newsrec")
}

/// What the DAG's tasks run, without Airflow: the steps one at a time, then
/// `newsrec publish`; a worse candidate is refused with the figures and `current` stays.
#[test]
fn newsrec_publish_refuses_a_worse_candidate_and_keeps_current() -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let ok = |out: std::process::Output| -> anyhow::Result<String> {
        ensure!(
            out.status.success(),
            "newsrec failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let synth = [
        "data", "synth", "--out", "data/raw", "--users", "2000", "--items", "600", "--seed", "7",
    ];
    ok(newsrec(dir, &synth, &[])?)?;
    let steps = |env: &[(&str, &str)]| -> anyhow::Result<Vec<std::process::Output>> {
        let mut outs = Vec::new();
        for step in ["process", "train", "evaluate"] {
            outs.push(newsrec(dir, &["pipeline", "--step", step], env)?);
        }
        outs.push(newsrec(dir, &["publish"], env)?);
        Ok(outs)
    };
    for out in steps(&[])? {
        ok(out)?;
    }
    let registry = newsrec_train::Registry::open(dir.join("models"))?;
    let first = registry.current_version()?.context("no current model")?;
    ensure!(registry.candidate_version()?.as_deref() == Some(first.as_str()));
    ensure!(registry.evaluations()?.iter().any(|r| r.version == first));

    // A training setting that makes the logged tier much worse.
    let worse = [
        ("NEWSREC_TRAIN__ALS__FACTORS", "1"),
        ("NEWSREC_TRAIN__POOL_SIZE", "1"),
        ("NEWSREC_TRAIN__LIST_LEN", "1"),
    ];
    let mut outs = steps(&worse)?;
    let publish = outs.pop().context("publish output")?;
    for out in outs {
        ok(out)?;
    }
    ensure!(!publish.status.success(), "a worse candidate was published");
    let stdout = String::from_utf8_lossy(&publish.stdout);
    ensure!(stdout.contains("publish refused: candidate"), "{stdout}");
    for group in ["overall", "logged", "semi_logged", "anonymous"] {
        ensure!(
            stdout.contains(&format!("\n  {group:<12} candidate ")),
            "no {group} figures:\n{stdout}"
        );
    }
    ensure!(stdout.contains("WORSE"), "{stdout}");
    ensure!(
        registry.current_version()?.as_deref() == Some(first.as_str()),
        "current changed"
    );
    ensure!(registry.candidate_version()?.as_deref() != Some(first.as_str()));
    let decisions = newsrec_train::decisions(&dir.join("models"))?;
    ensure!(
        decisions.last().is_some_and(|d| !d.published),
        "refusal not recorded"
    );
    let status = newsrec_train::PipelineStatus::read(&dir.join("models"))?;
    ensure!(
        status.refusals == 1 && status.last_success.is_some(),
        "{status:?}"
    );
    Ok(())
}
