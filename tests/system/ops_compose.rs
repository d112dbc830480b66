//! Checks of the deployment files that need no container engine: `compose/` (the compose
//! file, its Dockerfile and Prometheus config) and `grafana/` (provisioning and
//! dashboards) must name only things that exist, agree with each other and with the
//! `newsrec` command line, and pass Prometheus' own validation (`promtool`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::ops::{
    Builtins, CONTRACT_METRICS, compose, compose_dir, compose_services as services, contract_name,
    interpolate, key_str, load_dashboards, metric_names, panel_queries, read_yaml, repo_root,
    string_list, substitute, template_vars,
};
use anyhow::{Context, bail, ensure};
use serde_norway::Value as Yaml;

use crate::support::BIN;

/// Whether a service runs the newsrec image built from this repository (compose/Dockerfile;
/// the Airflow services run an image of their own, see `ops_airflow`).
fn is_newsrec(svc: &Yaml) -> bool {
    (svc["build"].is_mapping() || svc["build"].is_string())
        && svc["image"].as_str() == Some("newsrec:latest")
}

/// The `newsrec` invocations a service makes: its command list, or every line of its
/// shell script that starts with `newsrec `.
fn newsrec_invocations(svc: &Yaml) -> anyhow::Result<Vec<Vec<String>>> {
    let entrypoint = string_list(&svc["entrypoint"]);
    let command = string_list(&svc["command"]);
    if entrypoint.first().is_some_and(|e| e.ends_with("/sh")) {
        let mut calls = Vec::new();
        for script in &command {
            for line in script.lines() {
                if let Some(args) = line.trim().strip_prefix("newsrec ") {
                    calls.push(
                        interpolate(args)?
                            .split_whitespace()
                            .map(str::to_string)
                            .collect(),
                    );
                }
            }
        }
        ensure!(!calls.is_empty(), "shell service runs no newsrec command");
        Ok(calls)
    } else {
        ensure!(
            entrypoint.is_empty(),
            "unexpected entrypoint {entrypoint:?}"
        );
        Ok(vec![
            command
                .iter()
                .map(|a| interpolate(a))
                .collect::<anyhow::Result<_>>()?,
        ])
    }
}

/// Ports a service listens on: container ports it publishes or exposes, and
/// `0.0.0.0:PORT` listen addresses in its command.
fn service_ports(svc: &Yaml) -> anyhow::Result<BTreeSet<u16>> {
    let mut ports = BTreeSet::new();
    for p in string_list(&svc["ports"])
        .into_iter()
        .chain(string_list(&svc["expose"]))
    {
        let container = p.rsplit(':').next().unwrap_or_default();
        let container = container.split('/').next().unwrap_or_default();
        ports.insert(container.parse().with_context(|| format!("port `{p}`"))?);
    }
    ports.extend(listen_ports(svc)?);
    Ok(ports)
}

/// Ports named by `0.0.0.0:PORT` in the service's command.
fn listen_ports(svc: &Yaml) -> anyhow::Result<BTreeSet<u16>> {
    let mut ports = BTreeSet::new();
    for arg in string_list(&svc["command"]) {
        for word in arg.split_whitespace() {
            if let Some(p) = word.strip_prefix("0.0.0.0:") {
                ports.insert(
                    p.parse()
                        .with_context(|| format!("listen address `{word}`"))?,
                );
            }
        }
    }
    Ok(ports)
}

/// A service's bind mounts: container path → host path (resolved against compose/).
fn bind_mounts(svc: &Yaml) -> BTreeMap<String, PathBuf> {
    let mut out = BTreeMap::new();
    for v in string_list(&svc["volumes"]) {
        let parts: Vec<&str> = v.split(':').collect();
        if parts.len() >= 2 && (parts[0].starts_with('.') || parts[0].starts_with('/')) {
            out.insert(parts[1].to_string(), compose_dir().join(parts[0]));
        }
    }
    out
}

/// Resolves a container path through a service's bind mounts to the repository path.
fn resolve_in_container(mounts: &BTreeMap<String, PathBuf>, path: &str) -> Option<PathBuf> {
    mounts
        .iter()
        .filter_map(|(target, host)| {
            let rest = path.strip_prefix(target.as_str())?;
            if rest.is_empty() {
                Some(host.clone())
            } else {
                rest.starts_with('/')
                    .then(|| host.join(rest.trim_start_matches('/')))
            }
        })
        .next()
}

/// `http://host:port/…` → `(host, port)`.
fn url_host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    Some((host.to_string(), port.parse().ok()?))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[test]
fn compose_services_name_only_paths_volumes_and_services_that_exist() -> anyhow::Result<()> {
    let compose = compose()?;
    let services = services(&compose)?;
    let declared_volumes: BTreeSet<String> = compose["volumes"]
        .as_mapping()
        .context("no top-level volumes")?
        .keys()
        .map(key_str)
        .collect();
    let names: BTreeSet<String> = services.keys().map(key_str).collect();
    for required in [
        "kafka",
        "kafka-init",
        "redis",
        "data-init",
        "pipeline",
        "consume",
        "serve",
        "replay",
        "prometheus",
        "grafana",
    ] {
        ensure!(names.contains(required), "service `{required}` missing");
    }
    let mut used_volumes = BTreeSet::new();
    for (name, svc) in services {
        let name = key_str(name);
        ensure!(
            svc["image"].is_string() || svc["build"].is_mapping(),
            "{name}: neither image nor build"
        );
        if let Some(build) = svc["build"].as_mapping() {
            let context = compose_dir().join(
                build
                    .get("context")
                    .and_then(Yaml::as_str)
                    .context("build without context")?,
            );
            ensure!(
                context.is_dir(),
                "{name}: build context {} missing",
                context.display()
            );
            let dockerfile = context.join(
                build
                    .get("dockerfile")
                    .and_then(Yaml::as_str)
                    .unwrap_or("Dockerfile"),
            );
            ensure!(
                dockerfile.is_file(),
                "{name}: {} missing",
                dockerfile.display()
            );
            ensure!(
                context.join("Cargo.toml").is_file(),
                "{name}: build context is not the workspace root"
            );
        }
        for v in string_list(&svc["volumes"]) {
            let source = v.split(':').next().unwrap_or_default();
            if source.starts_with('.') || source.starts_with('/') {
                let host = compose_dir().join(source);
                ensure!(host.exists(), "{name}: mounted {} missing", host.display());
            } else {
                ensure!(
                    declared_volumes.contains(source),
                    "{name}: volume `{source}` not declared at top level"
                );
                used_volumes.insert(source.to_string());
            }
        }
        if let Some(deps) = svc["depends_on"].as_mapping() {
            for (dep, cond) in deps {
                let dep = key_str(dep);
                let target = services
                    .get(dep.as_str())
                    .with_context(|| format!("{name}: depends on unknown service `{dep}`"))?;
                match cond["condition"].as_str() {
                    Some("service_healthy") => ensure!(
                        target["healthcheck"].is_mapping(),
                        "{name}: waits for `{dep}` to be healthy but it has no health check"
                    ),
                    Some("service_completed_successfully") => ensure!(
                        target["restart"].as_str() == Some("no"),
                        "{name}: waits for `{dep}` to complete but it restarts"
                    ),
                    Some("service_started") => {}
                    other => bail!("{name}: depends_on `{dep}` with condition {other:?}"),
                }
            }
        }
        // Long-running services must say how their health is known.
        if svc["restart"].as_str() != Some("no") {
            ensure!(
                svc["healthcheck"].is_mapping(),
                "{name}: long-running service without a health check"
            );
        }
        let hc = string_list(&svc["healthcheck"]["test"]).join(" ");
        if let Some(i) = hc.find("http://localhost:") {
            let (host, port) = url_host_port(&hc[i..]).context("health check URL")?;
            ensure!(host == "localhost");
            ensure!(
                service_ports(svc)?.contains(&port),
                "{name}: health check probes port {port}, which the service does not listen on"
            );
        }
    }
    ensure!(
        used_volumes == declared_volumes,
        "declared but unused volumes: {:?}",
        declared_volumes
            .difference(&used_volumes)
            .collect::<Vec<_>>()
    );
    for wanted in [
        "newsrec-data",
        "newsrec-models",
        "kafka",
        "redis",
        "prometheus",
        "grafana",
    ] {
        ensure!(
            declared_volumes.contains(wanted),
            "named volume `{wanted}` missing"
        );
    }
    Ok(())
}

#[test]
fn compose_newsrec_commands_are_accepted_by_the_binary() -> anyhow::Result<()> {
    let compose = compose()?;
    let mut checked = BTreeSet::new();
    for (name, svc) in services(&compose)? {
        if !is_newsrec(svc) {
            continue;
        }
        let name = key_str(name);
        for args in newsrec_invocations(svc).with_context(|| name.clone())? {
            // clap parses every flag and value before honouring --help, so an unknown
            // flag or an unparsable value fails here; nothing is run.
            let out = Command::new(BIN).args(&args).arg("--help").output()?;
            ensure!(
                out.status.success(),
                "{name}: `newsrec {}` is rejected:\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
            checked.insert(args.first().cloned().unwrap_or_default());
        }
    }
    for sub in ["data", "pipeline", "consume", "serve", "replay"] {
        ensure!(checked.contains(sub), "no service runs `newsrec {sub}`");
    }
    Ok(())
}

#[test]
fn compose_data_init_and_pipeline_agree_with_the_data_layout() -> anyhow::Result<()> {
    let compose = compose()?;
    let services = services(&compose)?;
    let script = string_list(&services["data-init"]["command"]).join("\n");
    let marker = format!(
        "/var/lib/newsrec/data/{}",
        newsrec_core::refined::INTERACTIONS_FILE
    );
    ensure!(
        script.contains(&marker),
        "data-init must skip its work when {marker} exists"
    );
    let pipeline = string_list(&services["pipeline"]["command"]);
    ensure!(
        pipeline.iter().any(|a| a == "--every"),
        "the pipeline service must be scheduled"
    );
    // serve waits for the pipeline to be healthy, which means a model is current.
    let health = string_list(&services["pipeline"]["healthcheck"]["test"]).join(" ");
    let current = format!("/var/lib/newsrec/models/{}", newsrec_train::CURRENT_LINK);
    ensure!(
        health.contains(&current),
        "the pipeline health check must test {current}, got `{health}`"
    );
    // Every newsrec service sees the same data and model volumes at the same paths.
    for (name, svc) in services {
        if is_newsrec(svc) {
            let vols = string_list(&svc["volumes"]);
            for m in [
                "newsrec-data:/var/lib/newsrec/data",
                "newsrec-models:/var/lib/newsrec/models",
            ] {
                ensure!(
                    vols.iter().any(|v| v == m),
                    "{}: {m} not mounted",
                    key_str(name)
                );
            }
        }
    }
    Ok(())
}

#[test]
fn dockerfile_is_multi_stage_and_builds_the_binary_from_the_workspace() -> anyhow::Result<()> {
    let dockerfile = std::fs::read_to_string(compose_dir().join("Dockerfile"))?;
    let stages = dockerfile
        .lines()
        .filter(|l| l.trim_start().starts_with("FROM "))
        .count();
    ensure!(stages >= 2, "the Dockerfile must be multi-stage");
    ensure!(dockerfile.contains("--bin newsrec") && dockerfile.contains("--locked"));
    ensure!(dockerfile.contains("COPY --from=build"));
    // The toolchain image must be at least the workspace's rust-version.
    let manifest = std::fs::read_to_string(repo_root().join("Cargo.toml"))?;
    let required = manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version = "))
        .context("workspace rust-version")?
        .trim_matches('"');
    let image = dockerfile
        .lines()
        .find_map(|l| l.trim().strip_prefix("ARG RUST_VERSION="))
        .context("ARG RUST_VERSION")?;
    let version = |v: &str| -> anyhow::Result<(u32, u32)> {
        let mut it = v.split('.');
        Ok((
            it.next().context("major")?.parse()?,
            it.next().context("minor")?.parse()?,
        ))
    };
    ensure!(
        version(image)? >= version(required)?,
        "Rust image {image} is older than rust-version {required}"
    );
    // The build context keeps what cargo needs.
    let ignore = std::fs::read_to_string(repo_root().join(".dockerignore"))?;
    for needed in ["Cargo.toml", "Cargo.lock", "src", "crates"] {
        for pattern in ignore.lines().map(str::trim) {
            let p = pattern.trim_end_matches('/');
            ensure!(
                p != needed && p != "*" && p != "**",
                ".dockerignore pattern `{pattern}` drops {needed}"
            );
        }
        ensure!(repo_root().join(needed).exists());
    }
    Ok(())
}

#[test]
fn prometheus_scrapes_ports_the_compose_services_listen_on() -> anyhow::Result<()> {
    let compose = compose()?;
    let services = services(&compose)?;
    let prom_svc = &services["prometheus"];
    let mounts = bind_mounts(prom_svc);
    let config_path = resolve_in_container(&mounts, "/etc/prometheus/prometheus.yml")
        .context("prometheus.yml is not mounted at /etc/prometheus/prometheus.yml")?;
    ensure!(same_file(
        &config_path,
        &compose_dir().join("prometheus.yml")
    ));
    let config = read_yaml(&config_path)?;
    let mut jobs = BTreeMap::new();
    for job in config["scrape_configs"]
        .as_sequence()
        .context("scrape_configs")?
    {
        let path = job["metrics_path"].as_str().unwrap_or("/metrics");
        for sc in job["static_configs"].as_sequence().into_iter().flatten() {
            for t in string_list(&sc["targets"]) {
                let (host, port) = t.rsplit_once(':').context("target without port")?;
                let port: u16 = port.parse()?;
                let (svc_name, svc) = if host == "localhost" {
                    ("prometheus".to_string(), prom_svc)
                } else {
                    (
                        host.to_string(),
                        services
                            .get(host)
                            .with_context(|| format!("scrape target {t}: no service `{host}`"))?,
                    )
                };
                let ports = if is_newsrec(svc) {
                    listen_ports(svc)?
                } else {
                    service_ports(svc)?
                };
                ensure!(
                    ports.contains(&port),
                    "scrape target {t}: `{svc_name}` listens on {ports:?}"
                );
                jobs.insert(svc_name, (port, path.to_string()));
            }
        }
    }
    ensure!(
        jobs.get("serve") == Some(&(8000, "/metrics".into())),
        "serve :8000/metrics not scraped: {jobs:?}"
    );
    ensure!(
        jobs.get("consume") == Some(&(9100, "/metrics".into())),
        "consume :9100/metrics not scraped: {jobs:?}"
    );
    ensure!(config["global"]["scrape_interval"].as_str() == Some("5s"));
    Ok(())
}

/// Uids of the provisioned datasources, checked against the compose services.
fn provisioned_datasources(
    provisioning: &Path,
    services: &serde_norway::Mapping,
) -> anyhow::Result<BTreeSet<String>> {
    let mut uids = BTreeSet::new();
    for entry in std::fs::read_dir(provisioning.join("datasources"))? {
        let path = entry?.path();
        let doc = read_yaml(&path)?;
        for ds in doc["datasources"].as_sequence().into_iter().flatten() {
            let uid = ds["uid"]
                .as_str()
                .with_context(|| format!("{}: datasource without a fixed uid", path.display()))?;
            let url = ds["url"].as_str().context("datasource url")?;
            let (host, port) = url_host_port(url).context("datasource url host:port")?;
            let svc = services
                .get(host.as_str())
                .with_context(|| format!("datasource url {url}: no service `{host}`"))?;
            ensure!(
                service_ports(svc)?.contains(&port),
                "datasource url {url}: port"
            );
            uids.insert(uid.to_string());
        }
    }
    ensure!(!uids.is_empty(), "no datasource provisioned");
    Ok(uids)
}

#[test]
fn grafana_provisioning_resolves_to_the_repository_dashboards() -> anyhow::Result<()> {
    let compose = compose()?;
    let services = services(&compose)?;
    let grafana = &services["grafana"];
    let mounts = bind_mounts(grafana);
    let provisioning = resolve_in_container(&mounts, "/etc/grafana/provisioning")
        .context("provisioning not mounted at /etc/grafana/provisioning")?;
    ensure!(provisioning.is_dir(), "{} missing", provisioning.display());
    provisioned_datasources(&provisioning, services)?;
    let mut provider_dirs = Vec::new();
    for entry in std::fs::read_dir(provisioning.join("dashboards"))? {
        let path = entry?.path();
        let doc = read_yaml(&path)?;
        for p in doc["providers"].as_sequence().into_iter().flatten() {
            ensure!(p["type"].as_str() == Some("file"));
            let dir = p["options"]["path"].as_str().context("provider path")?;
            let host = resolve_in_container(&mounts, dir)
                .with_context(|| format!("provider path {dir} is not mounted"))?;
            ensure!(host.is_dir(), "{} missing", host.display());
            provider_dirs.push(host);
        }
    }
    ensure!(
        provider_dirs
            .iter()
            .any(|d| same_file(d, &crate::support::ops::dashboards_dir())),
        "no dashboard provider reads grafana/dashboards"
    );
    let env = grafana["environment"]
        .as_mapping()
        .context("grafana environment")?;
    if let Some(home) = env
        .get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH")
        .and_then(Yaml::as_str)
    {
        let host = resolve_in_container(&mounts, home).context("home dashboard not mounted")?;
        ensure!(host.is_file(), "home dashboard {} missing", host.display());
    }
    Ok(())
}

/// Every `datasource` object in a dashboard, wherever it is nested.
fn datasource_refs(v: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
    match v {
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                if k == "datasource" {
                    out.push(x.clone());
                }
                datasource_refs(x, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| datasource_refs(x, out)),
        _ => {}
    }
}

#[test]
fn dashboards_are_well_formed_and_stay_within_the_metric_contract() -> anyhow::Result<()> {
    let compose = compose()?;
    let provisioning = repo_root().join("grafana").join("provisioning");
    let uids = provisioned_datasources(&provisioning, services(&compose)?)?;
    let dashboards = load_dashboards()?;
    let mut dashboard_uids = BTreeSet::new();
    let mut titles = BTreeSet::new();
    let mut used = BTreeSet::new();
    for d in &dashboards {
        let name = d.name();
        let j = &d.json;
        ensure!(
            dashboard_uids.insert(j["uid"].as_str().context("uid")?.to_string()),
            "{name}: duplicate uid"
        );
        titles.insert(j["title"].as_str().context("title")?.to_string());
        ensure!(
            j["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
            "{name}: schemaVersion"
        );
        ensure!(
            j["time"]["from"]
                .as_str()
                .is_some_and(|f| f.starts_with("now-")),
            "{name}: default time range"
        );
        let mut refs = Vec::new();
        datasource_refs(j, &mut refs);
        ensure!(!refs.is_empty(), "{name}: no datasource references");
        for r in refs {
            let uid = r["uid"]
                .as_str()
                .with_context(|| format!("{name}: datasource not referenced by uid: {r}"))?;
            ensure!(
                r["type"] == "grafana" || uids.contains(uid),
                "{name}: datasource uid `{uid}` is not provisioned ({uids:?})"
            );
        }
        let mut ids = BTreeSet::new();
        for p in j["panels"].as_array().context("panels")? {
            ensure!(
                ids.insert(p["id"].as_u64().context("panel id")?),
                "{name}: duplicate panel id"
            );
            if p["type"] == "row" {
                continue;
            }
            let title = p["title"].as_str().unwrap_or_default();
            ensure!(
                ["timeseries", "stat", "table", "bargauge"]
                    .contains(&p["type"].as_str().unwrap_or("")),
                "{name}/{title}: panel type {}",
                p["type"]
            );
            ensure!(
                p["fieldConfig"]["defaults"]["unit"]
                    .as_str()
                    .is_some_and(|u| !u.is_empty()),
                "{name}/{title}: no unit"
            );
            ensure!(
                p["targets"].as_array().is_some_and(|t| !t.is_empty()),
                "{name}/{title}: no queries"
            );
            let pos = &p["gridPos"];
            ensure!(
                pos["x"].as_u64().unwrap_or(99) + pos["w"].as_u64().unwrap_or(99) <= 24,
                "{name}/{title}: panel outside the 24-column grid"
            );
        }
        let queries = panel_queries(d);
        ensure!(!queries.is_empty(), "{name}: no queries");
        for q in queries {
            let names = metric_names(&q.expr);
            ensure!(!names.is_empty(), "{q}: queries no newsrec metric");
            for m in names {
                let base = contract_name(&m)
                    .with_context(|| format!("{q}: `{m}` is not in the metric contract"))?;
                used.insert(base);
            }
        }
        for v in template_vars(d) {
            if v.kind == "query" {
                let (metric, _) = crate::support::ops::parse_label_values(&v.query)
                    .with_context(|| format!("{name}: variable {} query {}", v.name, v.query))?;
                ensure!(
                    contract_name(&metric).is_some(),
                    "{name}: variable metric {metric}"
                );
            }
        }
    }
    for wanted in [
        "Live popularity",
        "Serving",
        "Streaming",
        "Models",
        "Online quality",
    ] {
        ensure!(
            titles.iter().any(|t| t.ends_with(wanted)),
            "no `{wanted}` dashboard among {titles:?}"
        );
    }
    let unused: Vec<_> = CONTRACT_METRICS
        .iter()
        .filter(|m| !used.contains(*m))
        .collect();
    ensure!(
        unused.is_empty(),
        "contract metrics no dashboard shows: {unused:?}"
    );
    Ok(())
}

fn promtool() -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("promtool"))
        .find(|p| p.is_file())
        .context("promtool not found: install the Debian `prometheus` package (scripts/services.sh does)")
}

#[test]
fn promtool_accepts_the_compose_prometheus_config() -> anyhow::Result<()> {
    let out = Command::new(promtool()?)
        .args(["check", "config"])
        .arg(compose_dir().join("prometheus.yml"))
        .output()?;
    ensure!(
        out.status.success(),
        "promtool check config failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[test]
fn promtool_parses_every_dashboard_query() -> anyhow::Result<()> {
    // Each query, with Grafana's variables substituted, becomes a recording rule:
    // `promtool check rules` parses every expression with Prometheus' own parser.
    let builtins = Builtins {
        rate_interval: "20s",
        interval: "5s",
        range: "1h",
    };
    let mut rules = Vec::new();
    for d in load_dashboards()? {
        let vars: BTreeMap<String, String> = template_vars(&d)
            .into_iter()
            .map(|v| {
                let value = v
                    .all_value
                    .clone()
                    .or(v.current.clone())
                    .unwrap_or_default();
                (v.name, value)
            })
            .collect();
        for q in panel_queries(&d) {
            let expr = substitute(&q.expr, &builtins, &vars).with_context(|| q.to_string())?;
            rules.push(serde_json::json!({
                "record": format!("dashboard_query_{}", rules.len()),
                "expr": expr,
                "labels": {"panel": q.to_string()},
            }));
        }
    }
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("dashboards.rules.yml");
    // JSON is YAML: the rules file is written with serde_json.
    std::fs::write(
        &file,
        serde_json::to_string_pretty(
            &serde_json::json!({"groups": [{"name": "dashboards", "rules": rules}]}),
        )?,
    )?;
    let out = Command::new(promtool()?)
        .args(["check", "rules"])
        .arg(&file)
        .output()?;
    ensure!(
        out.status.success(),
        "promtool rejects dashboard queries:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

#[test]
fn docker_compose_accepts_the_compose_file() -> anyhow::Result<()> {
    let plugin = Command::new("docker").args(["compose", "version"]).output();
    match plugin {
        Ok(out) if out.status.success() => {}
        _ => {
            eprintln!(
                "note: `docker compose` is not available here; skipping only the \
                 `docker compose config` check (the file is still parsed and checked above)"
            );
            return Ok(());
        }
    }
    let out = Command::new("docker")
        .args(["compose", "-f"])
        .arg(compose_dir().join("docker-compose.yml"))
        .args(["config", "-q"])
        .output()?;
    ensure!(
        out.status.success(),
        "docker compose config failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
