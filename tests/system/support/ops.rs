//! What the operations tests share: where the repository's compose, Prometheus and
//! Grafana files are, the metric-name contract the dashboards must stay within, and how
//! Grafana turns a panel's query into the PromQL it sends (template variables and
//! built-in interval variables substituted).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde_json::Value;
use serde_norway::Value as Yaml;

/// Every metric the services export, by contract (serve, including the pipeline's status
/// it reads from the models directory, then consume, then the consumer's online counters
/// of [`ONLINE_METRICS`]). Histograms are named without their `_bucket`/`_sum`/`_count`
/// suffixes.
pub const CONTRACT_METRICS: [&str; 26] = [
    "newsrec_http_requests_total",
    "newsrec_http_request_duration_seconds",
    "newsrec_recommendations_total",
    "newsrec_tier_transitions_total",
    "newsrec_degraded_responses_total",
    "newsrec_model_info",
    "newsrec_model_memory_bytes",
    "newsrec_model_reloads_total",
    "newsrec_offline_metric",
    "newsrec_popular_article_clicks",
    "newsrec_trending_article_score",
    "newsrec_pipeline_last_success_timestamp_seconds",
    "newsrec_pipeline_step_duration_seconds",
    "newsrec_publish_refusals_total",
    "newsrec_consumer_events_total",
    "newsrec_consumer_dead_letters_total",
    "newsrec_consumer_batches_total",
    "newsrec_consumer_batch_duration_seconds",
    "newsrec_consumer_lag_messages",
    "newsrec_consumer_watermark_seconds",
    "newsrec_consumer_event_time_lag_seconds",
    "newsrec_consumer_retries_total",
    ONLINE_METRICS[0],
    ONLINE_METRICS[1],
    ONLINE_METRICS[2],
    ONLINE_METRICS[3],
];

/// The online counters of served lists and the clicks attributed to them, by
/// `{tier,variant}` (clicks also by `position`, `1`..`K` or `other`), that the consumer
/// exports and the Online quality dashboard reads.
pub const ONLINE_METRICS: [&str; 4] = [
    "newsrec_online_served_total",
    "newsrec_online_hits_total",
    "newsrec_online_clicks_total",
    "newsrec_online_rr_sum",
];

/// The contract's histograms, whose series carry the `_bucket`/`_sum`/`_count` suffixes.
pub const CONTRACT_HISTOGRAMS: [&str; 2] = [
    "newsrec_http_request_duration_seconds",
    "newsrec_consumer_batch_duration_seconds",
];

/// The repository root (the root package's manifest directory).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `compose/` in the repository.
pub fn compose_dir() -> PathBuf {
    repo_root().join("compose")
}

/// `grafana/dashboards/` in the repository.
pub fn dashboards_dir() -> PathBuf {
    repo_root().join("grafana").join("dashboards")
}

/// One dashboard file, parsed.
pub struct Dashboard {
    /// The JSON file.
    pub path: PathBuf,
    /// Its content.
    pub json: Value,
}

impl Dashboard {
    /// The file name, for messages.
    pub fn name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// Every `*.json` under `grafana/dashboards/`, parsed, in file-name order.
pub fn load_dashboards() -> anyhow::Result<Vec<Dashboard>> {
    let dir = dashboards_dir();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    paths.retain(|p| p.extension().is_some_and(|e| e == "json"));
    paths.sort();
    if paths.is_empty() {
        bail!("no dashboards in {}", dir.display());
    }
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let json = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", path.display()))?;
            Ok(Dashboard { path, json })
        })
        .collect()
}

/// One PromQL expression of a panel.
#[derive(Debug, Clone)]
pub struct PanelQuery {
    /// Dashboard file name.
    pub dashboard: String,
    /// Panel title.
    pub panel: String,
    /// Panel type (`timeseries`, `stat`, …).
    pub panel_type: String,
    /// The target's refId.
    pub ref_id: String,
    /// The expression as written, with Grafana variables.
    pub expr: String,
    /// Whether Grafana sends it as an instant query (else a range query).
    pub instant: bool,
}

impl std::fmt::Display for PanelQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} / {:?} ({}, {})",
            self.dashboard, self.panel, self.panel_type, self.ref_id
        )
    }
}

/// Every panel target with an `expr`, including panels nested in collapsed rows.
pub fn panel_queries(d: &Dashboard) -> Vec<PanelQuery> {
    fn walk(panels: &[Value], dashboard: &str, out: &mut Vec<PanelQuery>) {
        for p in panels {
            let title = p["title"].as_str().unwrap_or_default().to_string();
            let panel_type = p["type"].as_str().unwrap_or_default().to_string();
            for t in p["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = t["expr"].as_str() {
                    out.push(PanelQuery {
                        dashboard: dashboard.to_string(),
                        panel: title.clone(),
                        panel_type: panel_type.clone(),
                        ref_id: t["refId"].as_str().unwrap_or_default().to_string(),
                        expr: expr.to_string(),
                        instant: t["instant"].as_bool().unwrap_or(false)
                            && !t["range"].as_bool().unwrap_or(false),
                    });
                }
            }
            if let Some(nested) = p["panels"].as_array() {
                walk(nested, dashboard, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(
        d.json["panels"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]),
        &d.name(),
        &mut out,
    );
    out
}

/// A dashboard template variable.
#[derive(Debug, Clone)]
pub struct TemplateVar {
    /// Its name (`$name` in queries).
    pub name: String,
    /// `query`, `custom`, `interval`, …
    pub kind: String,
    /// The variable's query (`label_values(metric, label)` for Prometheus query variables).
    pub query: String,
    /// What "All" stands for, when the variable offers it.
    pub all_value: Option<String>,
    /// The value a freshly opened dashboard uses.
    pub current: Option<String>,
}

/// The dashboard's template variables.
pub fn template_vars(d: &Dashboard) -> Vec<TemplateVar> {
    d.json["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let query = match &v["query"] {
                Value::String(s) => s.clone(),
                Value::Object(o) => o
                    .get("query")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                _ => String::new(),
            };
            let current = match &v["current"]["value"] {
                Value::String(s) => Some(s.clone()),
                Value::Array(a) => a.first().and_then(Value::as_str).map(str::to_string),
                _ => None,
            };
            TemplateVar {
                name: v["name"].as_str().unwrap_or_default().to_string(),
                kind: v["type"].as_str().unwrap_or_default().to_string(),
                query,
                all_value: v["includeAll"]
                    .as_bool()
                    .unwrap_or(false)
                    .then(|| v["allValue"].as_str().unwrap_or(".*").to_string()),
                current,
            }
        })
        .collect()
}

/// `label_values(metric, label)` → `(metric, label)`; `label_values(label)` → `("", label)`.
pub fn parse_label_values(query: &str) -> Option<(String, String)> {
    let inner = query
        .trim()
        .strip_prefix("label_values(")?
        .strip_suffix(')')?;
    match inner.rsplit_once(',') {
        Some((metric, label)) => Some((metric.trim().to_string(), label.trim().to_string())),
        None => Some((String::new(), inner.trim().to_string())),
    }
}

/// The values Grafana's built-in variables take in the tests (a 1 s scrape interval and
/// a dashboard opened on a short range).
pub struct Builtins {
    /// `$__rate_interval`.
    pub rate_interval: &'static str,
    /// `$__interval`.
    pub interval: &'static str,
    /// `$__range`.
    pub range: &'static str,
}

/// Replaces Grafana's variables in `expr`: the built-ins, then each of `values`
/// (`$name`, `${name}`, `${name:format}`, `[[name]]`). Fails if any `$` is left, since
/// Prometheus would reject or misread it.
pub fn substitute(
    expr: &str,
    builtins: &Builtins,
    values: &BTreeMap<String, String>,
) -> anyhow::Result<String> {
    let mut out = expr.to_string();
    let range_s = humantime_secs(builtins.range)?;
    let interval_s = humantime_secs(builtins.interval)?;
    // Longest names first so `$__range` does not eat the prefix of `$__range_s`.
    for (name, value) in [
        ("__rate_interval", builtins.rate_interval.to_string()),
        ("__interval_ms", (interval_s * 1000).to_string()),
        ("__interval", builtins.interval.to_string()),
        ("__range_ms", (range_s * 1000).to_string()),
        ("__range_s", range_s.to_string()),
        ("__range", builtins.range.to_string()),
    ] {
        out = replace_var(&out, name, &value);
    }
    let mut names: Vec<&String> = values.keys().collect();
    names.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for name in names {
        out = replace_var(&out, name, &values[name]);
    }
    if out.contains('$') || out.contains("[[") {
        bail!("unresolved variable left in `{out}` (from `{expr}`)");
    }
    Ok(out)
}

fn replace_var(s: &str, name: &str, value: &str) -> String {
    let mut out = s.replace(&format!("[[{name}]]"), value);
    // `${name}` and `${name:format}`.
    loop {
        let open = format!("${{{name}");
        let Some(start) = out.find(&open) else { break };
        let rest = &out[start + open.len()..];
        let end = if rest.starts_with('}') {
            Some(1)
        } else if rest.starts_with(':') {
            rest.find('}').map(|i| i + 1)
        } else {
            None
        };
        match end {
            Some(len) => out.replace_range(start..start + open.len() + len, value),
            None => break,
        }
    }
    // `$name` not followed by an identifier character.
    let plain = format!("${name}");
    let mut result = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find(&plain) {
        let after = &rest[i + plain.len()..];
        let continues = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        result.push_str(&rest[..i]);
        result.push_str(if continues { &plain } else { value });
        rest = after;
    }
    result.push_str(rest);
    result
}

/// Seconds in a Prometheus duration such as `30s`, `5m`, `1h`.
pub fn humantime_secs(d: &str) -> anyhow::Result<u64> {
    let (num, unit) = d.split_at(d.find(|c: char| !c.is_ascii_digit()).unwrap_or(d.len()));
    let n: u64 = num.parse().with_context(|| format!("duration `{d}`"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => bail!("duration `{d}`: unknown unit"),
    };
    Ok(n * factor)
}

/// The `newsrec_*` metric names an expression mentions, with histogram suffixes kept.
pub fn metric_names(expr: &str) -> Vec<String> {
    let bytes = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("newsrec_") {
        let start = i + pos;
        let preceded = start > 0 && {
            let c = bytes[start - 1];
            c.is_ascii_alphanumeric() || c == b'_' || c == b'"'
        };
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if !preceded {
            out.push(expr[start..end].to_string());
        }
        i = end;
    }
    out
}

/// The contract name a series name belongs to (histogram suffixes removed), if any.
pub fn contract_name(series: &str) -> Option<&'static str> {
    if let Some(m) = CONTRACT_METRICS.iter().find(|m| **m == series) {
        return Some(m);
    }
    CONTRACT_HISTOGRAMS.iter().copied().find(|h| {
        ["_bucket", "_sum", "_count"]
            .iter()
            .any(|s| series.strip_prefix(h) == Some(s))
    })
}

/// The compose file, parsed with merge keys applied.
pub fn compose() -> anyhow::Result<Yaml> {
    read_yaml(&compose_dir().join("docker-compose.yml"))
}

/// The compose file's services.
pub fn compose_services(compose: &Yaml) -> anyhow::Result<&serde_norway::Mapping> {
    compose["services"]
        .as_mapping()
        .context("compose file has no services mapping")
}

/// A YAML mapping key as a string (empty when it is not one).
pub fn key_str(k: &Yaml) -> String {
    k.as_str().unwrap_or_default().to_string()
}

/// Applies compose's variable interpolation the way `docker compose` does with an empty
/// environment: `$$` is a literal `$`, `${NAME:-default}` / `${NAME-default}` take the
/// default. A variable without a default would make the stack depend on the caller's
/// environment, so it is an error.
pub fn interpolate(s: &str) -> anyhow::Result<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .with_context(|| format!("unclosed ${{ in `{s}`"))?;
            let expr = &body[..end];
            let default = expr
                .split_once(":-")
                .or_else(|| expr.split_once('-'))
                .map(|(_, d)| d)
                .with_context(|| format!("variable `{expr}` in `{s}` has no default"))?;
            out.push_str(default);
            rest = &body[end + 1..];
        } else {
            bail!("bare `$` in `{s}`: use ${{NAME:-default}} or $$");
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A compose `command`/`entrypoint`/`test` as a list of strings.
pub fn string_list(v: &Yaml) -> Vec<String> {
    match v {
        Yaml::String(s) => vec![s.clone()],
        Yaml::Sequence(seq) => seq
            .iter()
            .map(|x| match x {
                Yaml::String(s) => s.clone(),
                Yaml::Number(n) => n.to_string(),
                _ => String::new(),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Reads a YAML file into a generic value with `<<` merge keys applied (compose files
/// use them for shared service settings).
pub fn read_yaml(path: &Path) -> anyhow::Result<serde_norway::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut value: serde_norway::Value =
        serde_norway::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    value
        .apply_merge()
        .with_context(|| format!("merging keys in {}", path.display()))?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_covers_grafana_forms() {
        let b = Builtins {
            rate_interval: "10s",
            interval: "2s",
            range: "5m",
        };
        let vals = BTreeMap::from([
            ("route".to_string(), ".*".to_string()),
            ("r".to_string(), "x".to_string()),
        ]);
        let got = substitute(
            r#"sum(rate(m{route=~"$route",a="${r}",b="${r:regex}",c="[[r]]"}[$__rate_interval])) + increase(n[$__range]) * $__range_s"#,
            &b,
            &vals,
        )
        .expect("substitutes");
        assert_eq!(
            got,
            r#"sum(rate(m{route=~".*",a="x",b="x",c="x"}[10s])) + increase(n[5m]) * 300"#
        );
        assert!(substitute("m{a=\"$unknown\"}", &b, &vals).is_err());
    }

    #[test]
    fn metric_names_and_contract() {
        let names = metric_names(
            r#"histogram_quantile(0.5, sum by (le) (rate(newsrec_http_request_duration_seconds_bucket{route="x"}[1m]))) / newsrec_model_info"#,
        );
        assert_eq!(
            names,
            [
                "newsrec_http_request_duration_seconds_bucket",
                "newsrec_model_info"
            ]
        );
        assert_eq!(
            contract_name("newsrec_http_request_duration_seconds_bucket"),
            Some("newsrec_http_request_duration_seconds")
        );
        assert_eq!(contract_name("newsrec_model_info_bucket"), None);
        assert_eq!(contract_name("newsrec_nope"), None);
        assert_eq!(
            parse_label_values("label_values(newsrec_http_requests_total, route)"),
            Some(("newsrec_http_requests_total".into(), "route".into()))
        );
    }
}
