//! The API's Prometheus metrics (names are a contract with the Grafana dashboards) and
//! the middleware that counts and times every request by its matched route.
//!
//! Labels are bounded: routes are the router's patterns (`/articles/{page}/similar`),
//! never raw paths; no label carries a user id. The only page-valued labels are the
//! top-10 gauges, whose label sets are replaced (stale ranks removed) on each refresh.
//!
//! The pipeline's gauges come from files in the models directory (its run log and the
//! publish gate's decisions, written by `newsrec pipeline` or by the Airflow DAG's
//! tasks), re-read when they change: no other exporter is needed.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use newsrec_core::Tier;
use newsrec_train::{PUBLISH_FILE, PipelineStatus, RUNS_FILE};
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec,
    Opts, Registry, TextEncoder,
};

/// Latency buckets in seconds, from 100 µs: the API should answer well under 1 ms.
pub const LATENCY_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// How many articles per window the top-N gauges expose.
pub const TOP_N_GAUGE: usize = 10;

/// The route label of requests no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Outcomes of `newsrec_model_reloads_total`.
pub const RELOAD_OUTCOMES: [&str; 2] = ["loaded", "failed"];

/// Every metric the API exports, in its own registry.
pub struct ServeMetrics {
    /// The registry `/metrics` renders (own registry: tests run many apps per process).
    registry: Registry,
    /// Requests by matched route, method and status.
    http_requests: IntCounterVec,
    /// Request latency by matched route and method.
    http_duration: HistogramVec,
    /// Recommendation responses by the tier that served them.
    recommendations: IntCounterVec,
    /// Users seen moving from one tier to another between two requests.
    tier_transitions: IntCounterVec,
    /// Responses served without the feature store.
    degraded: IntCounter,
    /// The loaded model version (one series with value 1).
    model_info: IntGaugeVec,
    /// Heap bytes of each loaded model, by version and role (`current`, `pinned`).
    model_memory: IntGaugeVec,
    /// Model reload attempts by outcome (`loaded`, `failed`).
    model_reloads: IntCounterVec,
    /// The latest offline evaluation, by tier and metric.
    offline: GaugeVec,
    /// Live top articles per popularity window.
    popular: GaugeVec,
    /// Live trending articles.
    trending: GaugeVec,
    /// End of the last successful pipeline run (Unix seconds; 0 before the first).
    pipeline_last_success: Gauge,
    /// Seconds each pipeline step took the last time it ran.
    pipeline_step_seconds: GaugeVec,
    /// Candidates the publish gate refused.
    publish_refusals: IntCounter,
    /// Modification times of the pipeline's files when its gauges were last set.
    pipeline_seen: Mutex<Option<[Option<SystemTime>; 2]>>,
    /// Label sets currently set on the page-labelled gauges, so refreshes remove ranks
    /// that left the top list instead of letting series pile up.
    page_series: Mutex<PageSeries>,
}

#[derive(Default)]
struct PageSeries {
    popular: Vec<[String; 3]>,
    trending: Vec<[String; 2]>,
    model_version: Option<String>,
}

/// The model pipeline's gauges (read from its status file in the models directory),
/// registered in `registry`.
fn pipeline_metrics(
    registry: &Registry,
) -> Result<(Gauge, GaugeVec, IntCounter), prometheus::Error> {
    let last_success = Gauge::new(
        "newsrec_pipeline_last_success_timestamp_seconds",
        "End of the last successful model pipeline run (0: none yet).",
    )?;
    let step_seconds = GaugeVec::new(
        Opts::new(
            "newsrec_pipeline_step_duration_seconds",
            "Duration of each pipeline step the last time it ran.",
        ),
        &["step"],
    )?;
    let refusals = IntCounter::new(
        "newsrec_publish_refusals_total",
        "Candidate models the publish gate refused.",
    )?;
    registry.register(Box::new(last_success.clone()))?;
    registry.register(Box::new(step_seconds.clone()))?;
    registry.register(Box::new(refusals.clone()))?;
    Ok((last_success, step_seconds, refusals))
}

impl ServeMetrics {
    /// Creates and registers every metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "newsrec_http_requests_total",
                "HTTP requests by matched route.",
            ),
            &["route", "method", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "newsrec_http_request_duration_seconds",
                "HTTP request latency by matched route.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["route", "method"],
        )?;
        let recommendations = IntCounterVec::new(
            Opts::new(
                "newsrec_recommendations_total",
                "Recommendation responses by tier.",
            ),
            &["tier"],
        )?;
        let tier_transitions = IntCounterVec::new(
            Opts::new(
                "newsrec_tier_transitions_total",
                "Users moving between tiers from one request to the next.",
            ),
            &["from", "to"],
        )?;
        let degraded = IntCounter::new(
            "newsrec_degraded_responses_total",
            "Responses served without the feature store.",
        )?;
        let model_info = IntGaugeVec::new(
            Opts::new(
                "newsrec_model_info",
                "The model version being served (value 1).",
            ),
            &["version"],
        )?;
        let model_memory = IntGaugeVec::new(
            Opts::new(
                "newsrec_model_memory_bytes",
                "Heap bytes of each loaded model (the served one and those experiments pin).",
            ),
            &["version", "role"],
        )?;
        let model_reloads = IntCounterVec::new(
            Opts::new("newsrec_model_reloads_total", "Model reloads by outcome."),
            &["outcome"],
        )?;
        let offline = GaugeVec::new(
            Opts::new(
                "newsrec_offline_metric",
                "Latest offline evaluation of the served model.",
            ),
            &["tier", "metric"],
        )?;
        let popular = GaugeVec::new(
            Opts::new(
                "newsrec_popular_article_clicks",
                "Live top articles per window (clicks in the window).",
            ),
            &["window", "rank", "page"],
        )?;
        let trending = GaugeVec::new(
            Opts::new("newsrec_trending_article_score", "Live trending articles."),
            &["rank", "page"],
        )?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(recommendations.clone()))?;
        registry.register(Box::new(tier_transitions.clone()))?;
        registry.register(Box::new(degraded.clone()))?;
        registry.register(Box::new(model_info.clone()))?;
        registry.register(Box::new(model_memory.clone()))?;
        registry.register(Box::new(model_reloads.clone()))?;
        registry.register(Box::new(offline.clone()))?;
        registry.register(Box::new(popular.clone()))?;
        registry.register(Box::new(trending.clone()))?;
        let (pipeline_last_success, pipeline_step_seconds, publish_refusals) =
            pipeline_metrics(&registry)?;
        // Every series a dashboard plots exists from start-up, at zero: a quiet API
        // shows flat lines, not "no data".
        for tier in Tier::ALL {
            recommendations.with_label_values(&[tier.as_str()]);
            for to in Tier::ALL.into_iter().filter(|t| *t != tier) {
                tier_transitions.with_label_values(&[tier.as_str(), to.as_str()]);
            }
        }
        for outcome in RELOAD_OUTCOMES {
            model_reloads.with_label_values(&[outcome]);
        }
        Ok(Self {
            registry,
            http_requests,
            http_duration,
            recommendations,
            tier_transitions,
            degraded,
            model_info,
            model_memory,
            model_reloads,
            offline,
            popular,
            trending,
            pipeline_last_success,
            pipeline_step_seconds,
            publish_refusals,
            pipeline_seen: Mutex::new(None),
            page_series: Mutex::new(PageSeries::default()),
        })
    }

    /// The registry, for registering further collectors beside these.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        render(&self.registry)
    }

    /// Counts one request.
    pub fn observe_request(&self, route: &str, method: &str, status: &str, seconds: f64) {
        self.http_requests
            .with_label_values(&[route, method, status])
            .inc();
        self.http_duration
            .with_label_values(&[route, method])
            .observe(seconds);
    }

    /// Counts one request without timing it (requests no route matched: their latency
    /// says nothing about the API).
    pub fn count_request(&self, route: &str, method: &str, status: &str) {
        self.http_requests
            .with_label_values(&[route, method, status])
            .inc();
    }

    /// Counts one recommendation response.
    pub fn recommended(&self, tier: Tier, degraded: bool) {
        self.recommendations
            .with_label_values(&[tier.as_str()])
            .inc();
        if degraded {
            self.degraded.inc();
        }
    }

    /// Counts a degraded response of an endpoint other than recommendations.
    pub fn degraded_response(&self) {
        self.degraded.inc();
    }

    /// Counts a user seen in a different tier than at their previous request.
    pub fn tier_transition(&self, from: Tier, to: Tier) {
        self.tier_transitions
            .with_label_values(&[from.as_str(), to.as_str()])
            .inc();
    }

    /// Counts a reload attempt.
    pub fn model_reload(&self, outcome: &str) {
        self.model_reloads.with_label_values(&[outcome]).inc();
    }

    /// Records the version now served.
    pub fn set_model_version(&self, version: &str) {
        let mut series = lock(&self.page_series);
        if let Some(old) = series.model_version.take()
            && old != version
        {
            // Absent series are fine to "remove": the result only says whether it existed.
            let _ = self.model_info.remove_label_values(&[old.as_str()]);
        }
        self.model_info.with_label_values(&[version]).set(1);
        series.model_version = Some(version.to_string());
    }

    /// Replaces the loaded models' memory gauges.
    pub fn set_model_memory(&self, loaded: &[(String, &str, u64)]) {
        self.model_memory.reset();
        for (version, role, bytes) in loaded {
            self.model_memory
                .with_label_values(&[version.as_str(), *role])
                .set(i64::try_from(*bytes).unwrap_or(i64::MAX));
        }
    }

    /// Replaces the offline metrics with one evaluation's values.
    pub fn set_offline<'a>(&self, values: impl IntoIterator<Item = (&'a str, &'a str, f64)>) {
        self.offline.reset();
        for (tier, metric, value) in values {
            if value.is_finite() {
                self.offline.with_label_values(&[tier, metric]).set(value);
            }
        }
    }

    /// Replaces the top-N gauges of one popularity window.
    pub fn set_popular(&self, window: &str, top: &[(&str, f64)]) {
        let mut series = lock(&self.page_series);
        let fresh: Vec<[String; 3]> = top
            .iter()
            .take(TOP_N_GAUGE)
            .enumerate()
            .map(|(i, (page, _))| [window.to_string(), (i + 1).to_string(), page.to_string()])
            .collect();
        for (labels, (_, v)) in fresh.iter().zip(top) {
            self.popular
                .with_label_values(&[&labels[0], &labels[1], &labels[2]])
                .set(*v);
        }
        let (previous, others): (Vec<_>, Vec<_>) = std::mem::take(&mut series.popular)
            .into_iter()
            .partition(|s| s[0] == window);
        for old in previous.iter().filter(|old| !fresh.contains(old)) {
            let _ = self
                .popular
                .remove_label_values(&[&old[0], &old[1], &old[2]]);
        }
        series.popular = others;
        series.popular.extend(fresh);
    }

    /// Replaces the trending gauges.
    pub fn set_trending(&self, top: &[(&str, f64)]) {
        let mut series = lock(&self.page_series);
        let fresh: Vec<[String; 2]> = top
            .iter()
            .take(TOP_N_GAUGE)
            .enumerate()
            .map(|(i, (page, _))| [(i + 1).to_string(), page.to_string()])
            .collect();
        for (labels, (_, v)) in fresh.iter().zip(top) {
            self.trending
                .with_label_values(&[&labels[0], &labels[1]])
                .set(*v);
        }
        for old in &series.trending {
            if !fresh.contains(old) {
                let _ = self.trending.remove_label_values(&[&old[0], &old[1]]);
            }
        }
        series.trending = fresh;
    }
}

impl ServeMetrics {
    /// Sets the pipeline's gauges from its status.
    pub fn set_pipeline(&self, status: &PipelineStatus) {
        self.pipeline_last_success
            .set(status.last_success.unwrap_or(0.0));
        self.pipeline_step_seconds.reset();
        for (step, seconds) in &status.step_seconds {
            self.pipeline_step_seconds
                .with_label_values(&[step.as_str()])
                .set(*seconds);
        }
        // The count comes from the decision log; a shorter log (rotated) restarts it.
        let seen = self.publish_refusals.get();
        if status.refusals < seen {
            self.publish_refusals.reset();
        }
        self.publish_refusals
            .inc_by(status.refusals - self.publish_refusals.get());
    }

    /// Re-reads the pipeline's run log and the gate's decisions in `models_dir` when
    /// either changed since the last call, and sets the pipeline's gauges.
    pub async fn refresh_pipeline(&self, models_dir: &Path) {
        let mut mtimes = [None, None];
        for (slot, file) in mtimes.iter_mut().zip([RUNS_FILE, PUBLISH_FILE]) {
            *slot = tokio::fs::metadata(models_dir.join(file))
                .await
                .and_then(|m| m.modified())
                .ok();
        }
        if *lock(&self.pipeline_seen) == Some(mtimes) {
            return;
        }
        let dir = models_dir.to_path_buf();
        match tokio::task::spawn_blocking(move || PipelineStatus::read(&dir)).await {
            Ok(Ok(status)) => {
                self.set_pipeline(&status);
                *lock(&self.pipeline_seen) = Some(mtimes);
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "reading the pipeline's run log"),
            Err(e) => tracing::warn!(error = %e, "reading the pipeline's run log"),
        }
    }
}

/// Renders a registry in the text exposition format.
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::with_capacity(16 * 1024);
    // Encoding only fails on metric families with inconsistent shapes, which the typed
    // metric constructors rule out; an empty scrape is then the honest answer.
    if let Err(e) = TextEncoder::new().encode(&registry.gather(), &mut buf) {
        tracing::error!(error = %e, "encoding metrics");
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// Locks a mutex whose data stays consistent even if a holder panicked (label
/// bookkeeping only), so a poisoned lock is simply taken over.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Middleware (installed with `route_layer`, so the matched route is known): counts and
/// times every request under its route pattern.
pub async fn track(
    State(metrics): State<Arc<ServeMetrics>>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let resp = next.run(req).await;
    let route = matched.as_ref().map_or(UNMATCHED_ROUTE, |m| m.as_str());
    metrics.observe_request(
        route,
        method.as_str(),
        resp.status().as_str(),
        start.elapsed().as_secs_f64(),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_names_are_exported() {
        let m = ServeMetrics::new().expect("metrics");
        m.observe_request("/recommendations", "GET", "200", 0.0003);
        m.recommended(Tier::Logged, true);
        m.tier_transition(Tier::Anonymous, Tier::SemiLogged);
        m.model_reload("loaded");
        m.set_model_version("v1");
        m.set_offline([("overall", "recall", 0.25)]);
        m.set_popular("1h", &[("p1", 5.0)]);
        m.set_trending(&[("p2", 1.5)]);
        let mut status = PipelineStatus {
            last_success: Some(1_767_225_600.5),
            refusals: 2,
            ..PipelineStatus::default()
        };
        status.step_seconds.insert("train".into(), 12.5);
        m.set_pipeline(&status);
        m.set_pipeline(&status);
        let text = m.render();
        for needle in [
            "newsrec_pipeline_last_success_timestamp_seconds 1767225600.5",
            "newsrec_pipeline_step_duration_seconds{step=\"train\"} 12.5",
            "newsrec_publish_refusals_total 2",
            "newsrec_http_requests_total{method=\"GET\",route=\"/recommendations\",status=\"200\"} 1",
            "newsrec_http_request_duration_seconds_bucket{method=\"GET\",route=\"/recommendations\",le=\"0.0001\"} 0",
            "newsrec_http_request_duration_seconds_bucket{method=\"GET\",route=\"/recommendations\",le=\"0.0005\"} 1",
            "newsrec_recommendations_total{tier=\"logged\"} 1",
            "newsrec_tier_transitions_total{from=\"anonymous\",to=\"semi_logged\"} 1",
            "newsrec_degraded_responses_total 1",
            "newsrec_model_info{version=\"v1\"} 1",
            "newsrec_model_reloads_total{outcome=\"loaded\"} 1",
            "newsrec_offline_metric{metric=\"recall\",tier=\"overall\"} 0.25",
            "newsrec_popular_article_clicks{page=\"p1\",rank=\"1\",window=\"1h\"} 5",
            "newsrec_trending_article_score{page=\"p2\",rank=\"1\"} 1.5",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }

    #[test]
    fn top_lists_replace_their_series() {
        let m = ServeMetrics::new().expect("metrics");
        m.set_popular("1h", &[("a", 3.0), ("b", 2.0)]);
        m.set_popular("24h", &[("z", 9.0)]);
        m.set_popular("1h", &[("b", 4.0)]);
        m.set_trending(&[("a", 1.0), ("b", 0.5)]);
        m.set_trending(&[("c", 2.0)]);
        m.set_model_version("v1");
        m.set_model_version("v2");
        let text = m.render();
        assert!(
            text.contains("newsrec_popular_article_clicks{page=\"b\",rank=\"1\",window=\"1h\"} 4")
        );
        assert!(
            text.contains("newsrec_popular_article_clicks{page=\"z\",rank=\"1\",window=\"24h\"} 9")
        );
        assert!(!text.contains("page=\"a\",rank=\"1\",window=\"1h\""));
        assert!(!text.contains("rank=\"2\",window=\"1h\""));
        assert!(!text.contains("newsrec_trending_article_score{page=\"a\""));
        assert!(!text.contains("version=\"v1\""));
        assert!(text.contains("newsrec_model_info{version=\"v2\"} 1"));
    }
}
