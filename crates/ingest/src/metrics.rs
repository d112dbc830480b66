//! The Prometheus exporter of the consumer's statistics (`newsrec consume
//! --metrics-addr`). The consumer keeps its counters in atomics ([`ConsumerStats`]); at
//! each scrape this module reads a [`ConsumerSnapshot`] through a callback and renders
//! the `newsrec_consumer_*` families from it, so a scrape never touches the consumer
//! loop beyond a few atomic loads.
//!
//! [`ConsumerStats`]: crate::ConsumerStats

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::proto::{
    Bucket, Counter, Gauge, Histogram, LabelPair, Metric, MetricFamily, MetricType,
};
use prometheus::{Encoder, TextEncoder};
use tokio::net::TcpListener;

use newsrec_features::online::Counters;

use crate::stats::ConsumerSnapshot;

/// Reads the consumer's statistics at scrape time.
pub type SnapshotSource = Arc<dyn Fn() -> ConsumerSnapshot + Send + Sync>;

fn labels(pairs: &[(&str, &str)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(k, v)| {
            let mut l = LabelPair::default();
            l.set_name((*k).to_string());
            l.set_value((*v).to_string());
            l
        })
        .collect()
}

fn family(name: &str, help: &str, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut f = MetricFamily::default();
    f.set_name(name.to_string());
    f.set_help(help.to_string());
    f.set_field_type(kind);
    f.set_metric(metrics);
    f
}

fn counter(pairs: &[(&str, &str)], v: u64) -> Metric {
    let mut c = Counter::default();
    c.set_value(v as f64);
    let mut m = Metric::default();
    m.set_label(labels(pairs));
    m.set_counter(c);
    m
}

fn gauge(pairs: &[(&str, &str)], v: f64) -> Metric {
    let mut g = Gauge::default();
    g.set_value(v);
    let mut m = Metric::default();
    m.set_label(labels(pairs));
    m.set_gauge(g);
    m
}

/// The online-quality families (`newsrec_online_*`), per tier and variant; positions
/// past the counted ones are labelled `other`.
fn online_families(online: &[((String, String), Counters)]) -> Vec<MetricFamily> {
    if online.is_empty() {
        return Vec::new();
    }
    let per = |f: &dyn Fn(&Counters) -> f64| -> Vec<Metric> {
        online
            .iter()
            .map(|((t, v), c)| {
                let mut value = Counter::default();
                value.set_value(f(c));
                let mut m = Metric::default();
                m.set_label(labels(&[("tier", t), ("variant", v)]));
                m.set_counter(value);
                m
            })
            .collect()
    };
    let mut clicks = Vec::new();
    for ((t, v), c) in online {
        let n = c.by_position.len();
        for (i, k) in c.by_position.iter().enumerate() {
            let pos = if i + 1 == n {
                "other".to_owned()
            } else {
                (i + 1).to_string()
            };
            clicks.push(counter(
                &[("tier", t), ("variant", v), ("position", &pos)],
                *k,
            ));
        }
    }
    vec![
        family(
            "newsrec_online_served_total",
            "Served lists read by the attribution consumer.",
            MetricType::COUNTER,
            per(&|c| c.served as f64),
        ),
        family(
            "newsrec_online_hits_total",
            "Served lists with at least one attributed click.",
            MetricType::COUNTER,
            per(&|c| c.hits as f64),
        ),
        family(
            "newsrec_online_clicks_total",
            "Clicks attributed to a served list, by position in it.",
            MetricType::COUNTER,
            clicks,
        ),
        family(
            "newsrec_online_rr_sum",
            "Sum over hit lists of the reciprocal rank of their first attributed click.",
            MetricType::COUNTER,
            per(&|c| c.rr_sum),
        ),
    ]
}

/// The metric families of one snapshot, with `now_ms` as the wall clock for the
/// event-time lag.
pub fn consumer_families(s: &ConsumerSnapshot, now_ms: i64) -> Vec<MetricFamily> {
    let mut out = vec![
        family(
            "newsrec_consumer_events_total",
            "Click events by outcome.",
            MetricType::COUNTER,
            vec![
                counter(&[("outcome", "applied")], s.events_applied),
                counter(&[("outcome", "duplicate")], s.events_duplicate),
                counter(&[("outcome", "dead_letter")], s.events_dead_letter),
            ],
        ),
        family(
            "newsrec_consumer_dead_letters_total",
            "Dead-lettered messages by reject reason.",
            MetricType::COUNTER,
            s.dead_letters
                .iter()
                .map(|(r, n)| counter(&[("reason", r)], *n))
                .collect(),
        ),
        family(
            "newsrec_consumer_batches_total",
            "Batches applied to the feature store.",
            MetricType::COUNTER,
            vec![counter(&[], s.batches)],
        ),
        family(
            "newsrec_consumer_rebuilds_total",
            "Partitions rebuilt from the start of the log after the store lost their state.",
            MetricType::COUNTER,
            vec![counter(&[], s.rebuilds)],
        ),
        family(
            "newsrec_consumer_retries_total",
            "Retried operations by target.",
            MetricType::COUNTER,
            s.retries
                .iter()
                .map(|(t, n)| counter(&[("target", t)], *n))
                .collect(),
        ),
    ];
    out.extend(online_families(&s.online));
    let mut h = Histogram::default();
    h.set_sample_count(s.batch_duration.count);
    h.set_sample_sum(s.batch_duration.sum);
    h.set_bucket(
        s.batch_duration
            .buckets
            .iter()
            .map(|(le, n)| {
                let mut b = Bucket::default();
                b.set_upper_bound(*le);
                b.set_cumulative_count(*n);
                b
            })
            .collect(),
    );
    let mut hm = Metric::default();
    hm.set_histogram(h);
    out.push(family(
        "newsrec_consumer_batch_duration_seconds",
        "Time to apply one batch to the feature store.",
        MetricType::HISTOGRAM,
        vec![hm],
    ));
    if !s.lag.is_empty() {
        let parts: Vec<String> = s.lag.iter().map(|(p, _)| p.to_string()).collect();
        out.push(family(
            "newsrec_consumer_lag_messages",
            "Messages between the consumer's position and the log end, per partition.",
            MetricType::GAUGE,
            s.lag
                .iter()
                .zip(&parts)
                .map(|((_, l), p)| gauge(&[("partition", p)], *l as f64))
                .collect(),
        ));
    }
    if let Some(wm) = s.watermark_ms {
        out.push(family(
            "newsrec_consumer_watermark_seconds",
            "Latest event time applied (epoch seconds).",
            MetricType::GAUGE,
            vec![gauge(&[], wm as f64 / 1000.0)],
        ));
        out.push(family(
            "newsrec_consumer_event_time_lag_seconds",
            "Wall clock minus the latest event time applied.",
            MetricType::GAUGE,
            vec![gauge(&[], (now_ms - wm) as f64 / 1000.0)],
        ));
    }
    // Families without samples are left out: the text format has nothing to say.
    out.retain(|f| !f.get_metric().is_empty());
    out
}

/// The text exposition of one snapshot.
pub fn render_consumer(s: &ConsumerSnapshot) -> String {
    let now_ms = newsrec_core::time::now_ms();
    let mut buf = Vec::with_capacity(4096);
    if let Err(e) = TextEncoder::new().encode(&consumer_families(s, now_ms), &mut buf) {
        tracing::error!(error = %e, "encoding consumer metrics");
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// A router with `GET /metrics` (the consumer families) and `GET /health/live`.
pub fn consumer_metrics_router(source: SnapshotSource) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let source = source.clone();
                async move {
                    (
                        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
                        render_consumer(&source()),
                    )
                        .into_response()
                }
            }),
        )
        .route("/health/live", get(|| async { "live" }))
}

/// Serves [`consumer_metrics_router`] on `addr` until `shutdown` resolves. Bind errors
/// are returned before serving starts; `port 0` picks a free port, reported through
/// `on_bound`.
pub async fn serve_consumer_metrics(
    addr: SocketAddr,
    source: SnapshotSource,
    on_bound: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "consumer metrics listening");
    on_bound(bound);
    axum::serve(listener, consumer_metrics_router(source))
        .with_graceful_shutdown(shutdown)
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::HistogramSnapshot;

    fn sample() -> ConsumerSnapshot {
        ConsumerSnapshot {
            events_applied: 10,
            events_duplicate: 2,
            events_dead_letter: 1,
            dead_letters: vec![("not_json", 1), ("bad_id", 0)],
            batches: 3,
            batch_duration: HistogramSnapshot {
                buckets: vec![(0.001, 1), (0.01, 3)],
                sum: 0.012,
                count: 3,
            },
            lag: vec![
                (newsrec_features::Partition(0), 5),
                (newsrec_features::Partition(1), 0),
            ],
            watermark_ms: Some(1_660_000_000_000),
            retries: vec![("redis", 4), ("kafka", 0)],
            rebuilds: 1,
            online: vec![(
                ("logged".into(), "control".into()),
                Counters {
                    served: 4,
                    hits: 2,
                    clicks: 3,
                    rr_sum: 1.5,
                    by_position: vec![2, 0, 1],
                },
            )],
        }
    }

    #[test]
    fn renders_the_contract_names() {
        let families = consumer_families(&sample(), 1_660_000_060_000);
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&families, &mut buf)
            .expect("encode");
        let text = String::from_utf8(buf).expect("utf8");
        for needle in [
            "newsrec_consumer_events_total{outcome=\"applied\"} 10",
            "newsrec_consumer_events_total{outcome=\"duplicate\"} 2",
            "newsrec_consumer_events_total{outcome=\"dead_letter\"} 1",
            "newsrec_consumer_dead_letters_total{reason=\"not_json\"} 1",
            "newsrec_consumer_batches_total 3",
            "# TYPE newsrec_consumer_batch_duration_seconds histogram",
            "newsrec_consumer_batch_duration_seconds_bucket{le=\"0.01\"} 3",
            "newsrec_consumer_batch_duration_seconds_bucket{le=\"+Inf\"} 3",
            "newsrec_consumer_batch_duration_seconds_count 3",
            "newsrec_consumer_lag_messages{partition=\"0\"} 5",
            "newsrec_consumer_watermark_seconds 1660000000",
            "newsrec_consumer_event_time_lag_seconds 60",
            "newsrec_consumer_retries_total{target=\"redis\"} 4",
            "newsrec_consumer_rebuilds_total 1",
            "newsrec_online_served_total{tier=\"logged\",variant=\"control\"} 4",
            "newsrec_online_hits_total{tier=\"logged\",variant=\"control\"} 2",
            "newsrec_online_rr_sum{tier=\"logged\",variant=\"control\"} 1.5",
            "newsrec_online_clicks_total{tier=\"logged\",variant=\"control\",position=\"1\"} 2",
            "newsrec_online_clicks_total{tier=\"logged\",variant=\"control\",position=\"other\"} 1",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }

    #[test]
    fn empty_snapshot_renders_without_gauges_it_cannot_know() {
        let text = render_consumer(&ConsumerSnapshot::default());
        assert!(text.contains("newsrec_consumer_events_total{outcome=\"applied\"} 0"));
        assert!(!text.contains("newsrec_consumer_watermark_seconds"));
        assert!(!text.contains("newsrec_consumer_lag_messages"));
    }

    #[tokio::test]
    async fn serves_over_http() {
        let source: SnapshotSource = Arc::new(sample);
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_consumer_metrics(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            source,
            move |a| {
                let _ = tx.send(a);
            },
            async {
                let _ = stop_rx.await;
            },
        ));
        let addr = rx.await.expect("bound");
        let body = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .expect("get")
            .text()
            .await
            .expect("text");
        assert!(body.contains("newsrec_consumer_batches_total 3"));
        let _ = stop_tx.send(());
        server.await.expect("join").expect("serve");
    }
}
