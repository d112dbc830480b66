//! The Grafana dashboards against a real Prometheus that scraped a running newsrec.
//!
//! The test builds a small synthetic data set and a model with the `newsrec` binary,
//! starts `newsrec consume` and `newsrec serve` on random loopback ports against the real
//! Redis and Kafka-protocol broker (random topic and key prefix), replays the clicks
//! through the broker while it sends API traffic, and lets a real Prometheus (the Debian
//! binary, on a random port) scrape both every second. Then every PromQL expression of
//! every dashboard, with its template variables substituted the way Grafana does, is
//! sent to Prometheus' HTTP API: each must return data, as an instant query and (for
//! time-series panels) as a range query. Label-values variables must list values.
//! The Online quality dashboard reads the consumer's own counters: after the training
//! clicks, a paced prequential replay of the validation clicks asks the API before each
//! click, so lists are served and attributed while Prometheus scrapes.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::support::ops::{
    Builtins, PanelQuery, load_dashboards, panel_queries, parse_label_values, substitute,
    template_vars,
};
use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};
use tokio::process::{Child, Command};

use crate::support::{BIN, brokers, free_port, random_suffix, redis_url, tail};

/// Grafana's built-ins as a dashboard opened on a short range would send them with a
/// 1 s scrape interval (`$__rate_interval` = 4 × scrape interval at least).
const BUILTINS: Builtins = Builtins {
    rate_interval: "10s",
    interval: "1s",
    range: "5m",
};

/// How long the queries may take to all return data once Prometheus scrapes.
const SETTLE: Duration = Duration::from_secs(90);

/// A background process of the test, killed when dropped; its output goes to a log
/// file that failures quote.
struct Proc {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(
        name: &'static str,
        program: &str,
        args: &[String],
        logs: &Path,
    ) -> anyhow::Result<Self> {
        let log = logs.join(format!("{name}.log"));
        let out = File::create(&log)?;
        let child = Command::new(program)
            .args(args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name} ({program})"))?;
        Ok(Self { name, child, log })
    }

    /// Fails with the log's tail if the process has already exited.
    fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited with {status}:\n{}", self.name, tail(&self.log));
        }
        Ok(())
    }
}

/// Runs a one-shot `newsrec` command to completion.
async fn run_newsrec(name: &str, args: &[&str], logs: &Path) -> anyhow::Result<()> {
    let log = logs.join(format!("{name}.log"));
    let out = File::create(&log)?;
    let status = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .kill_on_drop(true)
        .status()
        .await?;
    ensure!(
        status.success(),
        "`newsrec {}` failed ({status}):\n{}",
        args.join(" "),
        tail(&log)
    );
    Ok(())
}

/// Polls `check` until it succeeds or `timeout` passes, returning its last error.
async fn wait_for<F>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<()>
where
    F: AsyncFnMut() -> anyhow::Result<()>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(e.context(format!("{what} within {timeout:?}")));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

async fn get_ok(http: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    let resp = http.get(url).send().await?;
    let status = resp.status();
    let body = resp.text().await?;
    ensure!(status.is_success(), "GET {url}: {status}: {body}");
    Ok(body)
}

/// Training users from the synthetic raw files: `(user_id, user_type)`.
fn raw_users(raw: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let dir = raw.join("files").join("treino");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    let first = files.first().context("no training files")?;
    let text = std::fs::read_to_string(first)?;
    let mut users = Vec::new();
    for line in text.lines().skip(1) {
        let mut fields = line.split(',');
        let (Some(id), Some(kind)) = (fields.next(), fields.next()) else {
            continue;
        };
        let id = id.trim_matches('"');
        if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
            users.push((id.to_string(), kind.trim_matches('"').to_string()));
        }
    }
    ensure!(
        !users.is_empty(),
        "no users parsed from {}",
        first.display()
    );
    Ok(users)
}

/// A page id the API knows, taken from its live popularity list, and the API's
/// watermark (the event time of the stream, which a new click takes).
async fn some_popular_page(http: &reqwest::Client, api: &str) -> Option<(String, i64)> {
    let body = get_ok(http, &format!("{api}/popular?window=24h&k=5"))
        .await
        .ok()?;
    let v: Value = serde_json::from_str(&body).ok()?;
    let page = v["items"][0]["page"].as_str().map(str::to_string)?;
    Some((page, v["watermark"].as_i64()?))
}

/// API traffic of several kinds, so every route, tier and status shows in the metrics:
/// known users of both types, a new user who then clicks (anonymous → semi-logged),
/// popularity and similar-article lookups, a malformed request and an unknown path.
async fn drive_traffic(
    http: reqwest::Client,
    api: String,
    users: Vec<(String, String)>,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let newcomer = format!("ops{}", random_suffix());
    let mut round = 0u64;
    while !*stop.borrow() {
        for (user, _) in users.iter().take(12) {
            let _ = http
                .get(format!("{api}/recommendations?user_id={user}&k=10"))
                .send()
                .await;
        }
        let _ = http
            .get(format!("{api}/recommendations?user_id={newcomer}&k=10"))
            .send()
            .await;
        for window in ["1h", "24h"] {
            let _ = http
                .get(format!("{api}/popular?window={window}&k=10"))
                .send()
                .await;
        }
        if let Some((page, watermark)) = some_popular_page(&http, &api).await {
            let _ = http
                .get(format!("{api}/articles/{page}/similar?k=5"))
                .send()
                .await;
            if round < 3 {
                // At the stream's time, not the wall clock's: the data are of 2022, and
                // a click of today would move every partition's time past the replay's.
                let event = json!({
                    "event_id": format!("{newcomer}-{round}"),
                    "user_id": newcomer,
                    "user_type": "Non-Logged",
                    "page": page,
                    "ts": watermark,
                });
                let _ = http.post(format!("{api}/events")).json(&event).send().await;
            }
        }
        let _ = http.get(format!("{api}/recommendations?k=10")).send().await;
        let _ = http.get(format!("{api}/no-such-route")).send().await;
        round += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Prometheus' HTTP API.
struct Prom {
    http: reqwest::Client,
    base: String,
}

impl Prom {
    async fn api(&self, path: &str, params: &[(&str, String)]) -> anyhow::Result<Value> {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .query(params)
            .send()
            .await?;
        let status = resp.status();
        let body: Value = resp.json().await?;
        ensure!(
            status.is_success() && body["status"] == "success",
            "{path} {params:?}: {status}: {body}"
        );
        Ok(body["data"].clone())
    }

    /// An instant query; fails unless it returns at least one sample.
    async fn instant_has_data(&self, expr: &str) -> anyhow::Result<()> {
        let data = self
            .api("/api/v1/query", &[("query", expr.to_string())])
            .await?;
        match data["resultType"].as_str() {
            Some("scalar") | Some("string") => Ok(()),
            _ => {
                ensure!(
                    data["result"].as_array().is_some_and(|r| !r.is_empty()),
                    "instant query returned no data"
                );
                Ok(())
            }
        }
    }

    /// A range query over the last 30 s at 1 s steps; fails unless a series comes back.
    async fn range_has_data(&self, expr: &str) -> anyhow::Result<()> {
        let end = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
        let data = self
            .api(
                "/api/v1/query_range",
                &[
                    ("query", expr.to_string()),
                    ("start", format!("{:.3}", end - 30.0)),
                    ("end", format!("{end:.3}")),
                    ("step", "1".to_string()),
                ],
            )
            .await?;
        ensure!(
            data["result"].as_array().is_some_and(|r| !r.is_empty()),
            "range query returned no data"
        );
        Ok(())
    }

    /// Values of `label` on series of `metric` (Grafana's `label_values(metric, label)`).
    async fn label_values(&self, metric: &str, label: &str) -> anyhow::Result<Vec<String>> {
        let mut params = Vec::new();
        if !metric.is_empty() {
            params.push(("match[]", metric.to_string()));
        }
        let data = self
            .api(&format!("/api/v1/label/{label}/values"), &params)
            .await?;
        Ok(data
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect())
    }
}

/// Escapes a value the way Grafana's Prometheus datasource formats a single variable
/// value for `=~`: regex metacharacters get a backslash, itself doubled because the
/// regex sits inside a PromQL string literal.
fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push_str("\\\\");
        }
        out.push(c);
    }
    out
}

/// The queries to run: every panel expression once with each variable at "All", and
/// once with each variable at its first listed value.
async fn expand_queries(prom: &Prom) -> anyhow::Result<Vec<(PanelQuery, String)>> {
    let mut out = Vec::new();
    for d in load_dashboards()? {
        let vars = template_vars(&d);
        let mut all = BTreeMap::new();
        let mut first = BTreeMap::new();
        for v in &vars {
            let all_value = v
                .all_value
                .clone()
                .or(v.current.clone())
                .with_context(|| format!("{}: variable {} has no value", d.name(), v.name))?;
            all.insert(v.name.clone(), all_value.clone());
            let one = match parse_label_values(&v.query) {
                Some((metric, label)) if v.kind == "query" => {
                    let values = prom.label_values(&metric, &label).await?;
                    let value = values.first().with_context(|| {
                        format!(
                            "{}: variable {} ({}) lists no values",
                            d.name(),
                            v.name,
                            v.query
                        )
                    })?;
                    regex_escape(value)
                }
                _ => all_value,
            };
            first.insert(v.name.clone(), one);
        }
        for q in panel_queries(&d) {
            let with_all = substitute(&q.expr, &BUILTINS, &all)?;
            let with_first = substitute(&q.expr, &BUILTINS, &first)?;
            if with_first != with_all {
                out.push((q.clone(), with_first));
            }
            out.push((q, with_all));
        }
    }
    Ok(out)
}

/// Runs every query; the failures, described.
async fn failing_queries(prom: &Prom, queries: &[(PanelQuery, String)]) -> Vec<String> {
    let mut failures = Vec::new();
    for (q, expr) in queries {
        if let Err(e) = prom.instant_has_data(expr).await {
            failures.push(format!("{q}: `{expr}`: {e:#}"));
            continue;
        }
        if !q.instant
            && let Err(e) = prom.range_has_data(expr).await
        {
            failures.push(format!("{q}: `{expr}` (range): {e:#}"));
        }
    }
    failures
}

/// Where the test's files go.
struct Dirs {
    raw: PathBuf,
    data: PathBuf,
    models: PathBuf,
    logs: PathBuf,
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// A small world, processed, trained and evaluated (so the model metrics exist).
async fn data_and_model(d: &Dirs) -> anyhow::Result<()> {
    let raw = path(&d.raw);
    let synth = [
        "data", "synth", "--out", &raw, "--users", "400", "--items", "120", "--seed", "7",
    ];
    run_newsrec("synth", &synth, &d.logs).await?;
    let (data, models) = (path(&d.data), path(&d.models));
    let pipeline = [
        "pipeline", "--raw", &raw, "--data", &data, "--models", &models,
    ];
    run_newsrec("pipeline", &pipeline, &d.logs).await
}

/// The names one run uses: its topic, key prefix and consumer group.
struct Names {
    topic: String,
    prefix: String,
    group: String,
}

/// `newsrec consume` (metrics on `consume_port`) and `newsrec serve` (on `serve_port`).
fn spawn_services(
    d: &Dirs,
    n: &Names,
    serve_port: u16,
    consume_port: u16,
) -> anyhow::Result<(Proc, Proc)> {
    let (brokers, redis) = (brokers(), redis_url());
    let args = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let consume = Proc::spawn(
        "consume",
        BIN,
        &args(&[
            "consume",
            "--brokers",
            &brokers,
            "--topic",
            &n.topic,
            "--group",
            &n.group,
            "--redis",
            &redis,
            "--prefix",
            &n.prefix,
            "--items",
            &path(&d.data),
            "--metrics-addr",
            &format!("127.0.0.1:{consume_port}"),
        ]),
        &d.logs,
    )?;
    let serve = Proc::spawn(
        "serve",
        BIN,
        &args(&[
            "serve",
            "--models",
            &path(&d.models),
            "--data",
            &path(&d.data),
            "--redis",
            &redis,
            "--prefix",
            &n.prefix,
            "--brokers",
            &brokers,
            "--topic",
            &n.topic,
            "--addr",
            &format!("127.0.0.1:{serve_port}"),
        ]),
        &d.logs,
    )?;
    Ok((consume, serve))
}

/// How long the prequential replay runs: past the first scrapes and the queries' wait.
const PREQUENTIAL: Duration = Duration::from_secs(75);

/// `newsrec replay --prequential` of the validation clicks against `api`, paced so it
/// lasts about [`PREQUENTIAL`].
fn prequential(d: &Dirs, n: &Names, api: &str) -> anyhow::Result<Proc> {
    let (clicks, _) = newsrec_data::events::load_validation_events(&d.data, None)?;
    let span = match (clicks.first(), clicks.last()) {
        (Some(a), Some(b)) => (b.ts - a.ts).max(1),
        _ => bail!("no validation clicks in {}", d.data.display()),
    };
    let speed = (span as f64 / PREQUENTIAL.as_millis() as f64).max(1.0);
    let args = [
        "replay",
        "--prequential",
        "--data",
        &path(&d.data),
        "--brokers",
        &brokers(),
        "--topic",
        &n.topic,
        "--api",
        api,
        "--speed",
        &format!("{speed:.0}"),
    ];
    Proc::spawn("prequential", BIN, &args.map(str::to_string), &d.logs)
}

/// A real Prometheus on `port` scraping every `(job, address)` every second, ready.
async fn start_prometheus(
    root: &Path,
    logs: &Path,
    port: u16,
    targets: &[(&str, String)],
    http: &reqwest::Client,
) -> anyhow::Result<(Proc, Prom)> {
    let prom_dir = root.join("prometheus");
    std::fs::create_dir_all(&prom_dir)?;
    let config = prom_dir.join("prometheus.yml");
    let mut text = String::from(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n  evaluation_interval: 1s\n\
         scrape_configs:\n",
    );
    for (job, addr) in targets {
        text.push_str(&format!(
            "  - job_name: {job}\n    static_configs:\n      - targets: [\"{addr}\"]\n"
        ));
    }
    std::fs::write(&config, text)?;
    let mut prometheus = Proc::spawn(
        "prometheus",
        "prometheus",
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", prom_dir.join("tsdb").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
            "--log.level=warn".into(),
        ],
        logs,
    )?;
    let prom = Prom {
        http: http.clone(),
        base: format!("http://127.0.0.1:{port}"),
    };
    wait_for("prometheus ready", Duration::from_secs(30), async || {
        prometheus.ensure_running()?;
        get_ok(http, &format!("{}/-/ready", prom.base))
            .await
            .map(drop)
    })
    .await?;
    Ok((prometheus, prom))
}

/// Every dashboard query, polled until all return data or [`SETTLE`] passes (until the
/// replay and the consumer settle some panels, top lists and lag, may legitimately be
/// empty); the failures left.
async fn settled_failures(prom: &Prom, procs: &mut [&mut Proc]) -> anyhow::Result<Vec<String>> {
    let started = Instant::now();
    let deadline = started + SETTLE;
    loop {
        for p in procs.iter_mut() {
            p.ensure_running()?;
        }
        let queries = expand_queries(prom).await;
        let failures = match &queries {
            Ok(q) => failing_queries(prom, q).await,
            Err(e) => vec![format!("{e:#}")],
        };
        if failures.is_empty() || Instant::now() >= deadline {
            if let Ok(q) = &queries {
                eprintln!(
                    "{} dashboard queries checked in {:.1} s",
                    q.len(),
                    started.elapsed().as_secs_f64()
                );
            }
            return Ok(failures);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The random prefix keeps a run's keys apart; they are removed so runs do not pile up.
async fn delete_keys(prefix: &str) -> anyhow::Result<()> {
    let store = newsrec_features::RedisStore::connect(
        &newsrec_features::RedisTarget::parse(&redis_url(), false),
        newsrec_features::StoreConfig {
            prefix: prefix.to_string(),
            ..Default::default()
        },
    )
    .await?;
    store.delete_all().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_returns_data_from_a_live_stack() -> anyhow::Result<()> {
    let _machine = crate::support::whole_stack().await;
    let started = Instant::now();
    let phase = |what: &str| eprintln!("[{:6.1} s] {what}", started.elapsed().as_secs_f64());
    let tmp = tempfile::tempdir()?;
    let root = tmp.path();
    let d = Dirs {
        raw: root.join("raw"),
        data: root.join("data"),
        models: root.join("models"),
        logs: root.join("logs"),
    };
    std::fs::create_dir_all(&d.logs)?;
    let suffix = random_suffix();
    let names = Names {
        topic: format!("ops-clicks-{suffix}"),
        prefix: format!("ops-{suffix}"),
        group: format!("ops-consume-{suffix}"),
    };
    data_and_model(&d).await?;
    phase("data and model ready");

    let (serve_port, consume_port, prom_port) = (free_port()?, free_port()?, free_port()?);
    let (mut consume, mut serve) = spawn_services(&d, &names, serve_port, consume_port)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let api = format!("http://127.0.0.1:{serve_port}");
    let consume_metrics = format!("http://127.0.0.1:{consume_port}/metrics");
    wait_for("serve ready", Duration::from_secs(60), async || {
        serve.ensure_running()?;
        get_ok(&http, &format!("{api}/health/ready"))
            .await
            .map(drop)
    })
    .await?;
    wait_for("consume metrics", Duration::from_secs(60), async || {
        consume.ensure_running()?;
        get_ok(&http, &consume_metrics).await.map(drop)
    })
    .await?;
    phase("serve and consume answer");

    // Prometheus scraping both every second.
    let targets = [
        ("newsrec-serve", format!("127.0.0.1:{serve_port}")),
        ("newsrec-consume", format!("127.0.0.1:{consume_port}")),
    ];
    let (mut prometheus, prom) =
        start_prometheus(root, &d.logs, prom_port, &targets, &http).await?;
    phase("prometheus ready");

    // Clicks through the broker and API traffic while Prometheus scrapes.
    let replay_args = [
        "replay",
        "--data",
        &path(&d.data),
        "--brokers",
        &brokers(),
        "--topic",
        &names.topic,
        "--speed",
        "max",
    ];
    let mut replay = Proc::spawn("replay", BIN, &replay_args.map(str::to_string), &d.logs)?;
    let replay_status = replay.child.wait().await?;
    ensure!(replay_status.success(), "replay: {}", tail(&replay.log));
    phase("training clicks replayed");
    let mut prequential = prequential(&d, &names, &api)?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let traffic = tokio::spawn(drive_traffic(
        http.clone(),
        api.clone(),
        raw_users(&d.raw)?,
        stop_rx,
    ));

    // A few scrapes of every target, all up.
    wait_for(
        "five scrapes of every target",
        Duration::from_secs(60),
        async || {
            for p in [&mut serve, &mut consume, &mut prometheus, &mut prequential] {
                p.ensure_running()?;
            }
            for (job, _) in &targets {
                prom.instant_has_data(&format!(
                    "count_over_time(up{{job=\"{job}\"}}[1m]) >= 5 and up{{job=\"{job}\"}} == 1"
                ))
                .await
                .with_context(|| format!("{job} not scraped five times yet"))?;
            }
            Ok(())
        },
    )
    .await?;
    phase("five scrapes of each target");

    // The consumer's own counters move: lists of every tier served, clicks attributed.
    wait_for(
        "online counters of the consumer moving",
        Duration::from_secs(60),
        async || {
            let tiers = prom
                .api(
                    "/api/v1/query",
                    &[(
                        "query",
                        "sum by (tier) (increase(newsrec_online_served_total{job=\"newsrec-consume\"}[1m])) > 0"
                            .to_string(),
                    )],
                )
                .await?;
            let n = tiers["result"].as_array().map_or(0, Vec::len);
            ensure!(n == 3, "lists served in {n} tiers: {tiers}");
            prom.instant_has_data(
                "sum(increase(newsrec_online_hits_total{job=\"newsrec-consume\"}[1m])) > 0",
            )
            .await
        },
    )
    .await?;
    phase("online counters moving");

    let failures =
        settled_failures(&prom, &mut [&mut serve, &mut consume, &mut prometheus]).await?;
    let _ = stop_tx.send(true);
    let _ = traffic.await;
    let replay_status = prequential.child.try_wait()?;
    drop((serve, consume));
    delete_keys(&names.prefix).await?;
    if !failures.is_empty() {
        bail!(
            "{} dashboard queries return no data:\n  {}\n\nreplay: {:?}\n--- consume log ---\n{}\n--- serve log ---\n{}",
            failures.len(),
            failures.join("\n  "),
            replay_status,
            tail(&d.logs.join("consume.log")),
            tail(&d.logs.join("serve.log"))
        );
    }
    Ok(())
}
