//! The recommendation API over HTTP, against the real Redis: input validation and JSON
//! errors, live tier routing, metrics, health, docs, hot reload, and Redis going away
//! and coming back.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Result;
use newsrec_core::{UserType, time::HOUR_MS};
use newsrec_features::RedisTarget;
use newsrec_serve::AdminToken;

use crate::support::api::{
    OwnedRedis, Writer, eventually, model, pages_of, series_value, spawn_app,
};

const TOKEN: &str = "test-admin-token-123";

fn code(body: &serde_json::Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_json_4xx() -> Result<()> {
    let app = spawn_app(
        "errors",
        |c| c.admin_token = Some(AdminToken::new(TOKEN)),
        None,
    )
    .await?;
    let page = model().pages[0].clone();
    for (path, status, expected) in [
        ("/recommendations", 400, "missing_user_id"),
        ("/recommendations?k=5", 400, "missing_user_id"),
        ("/recommendations?user_id=", 400, "invalid_user_id"),
        ("/recommendations?user_id=a%20b", 400, "invalid_user_id"),
        ("/recommendations?user_id=%7Btag%7D", 400, "invalid_user_id"),
        ("/recommendations?user_id=u1&k=0", 400, "invalid_k"),
        ("/recommendations?user_id=u1&k=101", 400, "invalid_k"),
        ("/recommendations?user_id=u1&k=ten", 400, "invalid_k"),
        ("/recommendations?user_id=u1&k=-1", 400, "invalid_k"),
        ("/recommendations?user_id=u1&num_recs=0", 400, "invalid_k"),
        ("/recommendations?user_id=%20u1", 400, "invalid_user_id"),
        ("/recommendations?user_id=u1&k=%2B5", 400, "invalid_k"),
        ("/recommendations?user_id=u1&ts=-5", 400, "invalid_ts"),
        ("/recommendations?user_id=u1&ts=soon", 400, "invalid_ts"),
        ("/popular?window=7m", 400, "unknown_window"),
        ("/popular?window=6", 400, "unknown_window"),
        ("/popular?window=5h", 400, "unknown_window"),
        ("/popular?k=1000", 400, "invalid_k"),
        ("/articles/bad%20page/similar", 400, "invalid_page"),
        ("/articles/no-such-page/similar", 404, "unknown_page"),
        ("/nowhere", 404, "unknown_route"),
    ] {
        let (s, body) = app.get(path).await?;
        assert_eq!((s, code(&body)), (status, expected), "{path}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
    }
    let k_ok = app.get(&format!("/articles/{page}/similar?k=0")).await?;
    assert_eq!((k_ok.0, code(&k_ok.1)), (400, "invalid_k"));

    let post = |path: &str, body: Vec<u8>, ct: Option<&str>| {
        let mut req = app.http.post(format!("{}{path}", app.base)).body(body);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        req.send()
    };
    let json = Some("application/json");
    let valid =
        br#"{"event_id":"e1","user_id":"u1","user_type":"Logged","page":"p1","ts":1660000000000}"#;
    for (body, status, expected) in [
        (b"not json".to_vec(), 400, "not_json"),
        (br#"{"user_id":"u1"}"#.to_vec(), 400, "missing_field"),
        (
            br#"{"event_id":"e1","user_id":"u1","user_type":"Guest","page":"p1","ts":1660000000000}"#.to_vec(),
            400,
            "unknown_user_type",
        ),
        (
            br#"{"event_id":"e1","user_id":"u1","user_type":"Logged","page":"p1","ts":5}"#.to_vec(),
            400,
            "absurd_timestamp",
        ),
        (
            br#"{"event_id":"e1","user_id":"a b","user_type":"Logged","page":"p1","ts":1660000000000}"#.to_vec(),
            400,
            "bad_id",
        ),
        // One byte over the limit: the server reads the whole body before it answers,
        // so it never closes the connection on bytes still in flight (a client still
        // sending then sees a reset instead of the answer).
        (
            vec![b'x'; newsrec_core::MAX_EVENT_BYTES + 1],
            413,
            "payload_too_large",
        ),
        // Valid, but this instance has no event log.
        (valid.to_vec(), 503, "unavailable"),
    ] {
        let resp = post("/events", body, json).await?;
        let s = resp.status().as_u16();
        let b: serde_json::Value = resp.json().await?;
        assert_eq!((s, code(&b)), (status, expected), "{b}");
    }
    let resp = post("/events", valid.to_vec(), Some("text/plain")).await?;
    assert_eq!(resp.status().as_u16(), 415);

    let resp = app
        .http
        .delete(format!("{}/recommendations", app.base))
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 405);
    let b: serde_json::Value = resp.json().await?;
    assert_eq!(code(&b), "method_not_allowed");

    for auth in [None, Some("Bearer wrong-token-xyz"), Some(TOKEN)] {
        let mut req = app.http.post(format!("{}/admin/reload", app.base));
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let resp = req.send().await?;
        assert_eq!(resp.status().as_u16(), 401, "{auth:?}");
        let b: serde_json::Value = resp.json().await?;
        assert_eq!(code(&b), "unauthorized");
    }
    let resp = app
        .http
        .post(format!("{}/admin/reload", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    assert_eq!(resp.status().as_u16(), 200);
    let b: serde_json::Value = resp.json().await?;
    assert_eq!(b["outcome"], "loaded");
    assert_eq!(b["version"], model().version.as_str());
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_state_routes_and_excludes_read_pages() -> Result<()> {
    let app = spawn_app("tiers", |_| {}, None).await?;
    let mut w = Writer::connect(&crate::support::redis_url(), &app.prefix).await?;
    let m = model();
    let ts = m.end_ts + HOUR_MS;
    let k = 10;

    let fresh = format!("new-reader-{}", rand_suffix());
    let body = app.recommend(&fresh, k).await?;
    assert_eq!(body["tier"], "anonymous");
    assert_eq!(body["degraded"], false);
    assert_eq!(body["model_version"], m.version.as_str());
    assert_eq!(body["user_id"], fresh.as_str());
    assert_eq!(pages_of(&body).len(), k);
    let first = &body["items"][0];
    assert!(first["score"].is_number() && first["reason"].is_string());
    assert!(first.get("title").is_some() && first.get("url").is_some());

    // A reader's first click: still anonymous, and the page is never recommended back.
    let mut read: HashSet<String> = HashSet::new();
    let p0 = &m.pages[0];
    w.click(&fresh, UserType::NonLogged, p0, ts).await?;
    read.insert(p0.to_string());
    let body = app.recommend(&fresh, k).await?;
    assert_eq!(body["tier"], "anonymous");
    check_unread(&body, &read, k);

    // The second click makes them semi-logged.
    let p1 = &m.pages[1];
    w.click(&fresh, UserType::NonLogged, p1, ts + 60_000)
        .await?;
    read.insert(p1.to_string());
    let body = app.recommend(&fresh, k).await?;
    assert_eq!(body["tier"], "semi_logged");
    check_unread(&body, &read, k);

    // A signed-in reader with one click is logged; the most popular pages they read
    // stay out of every answer, for any k.
    let logged = format!("logged-reader-{}", rand_suffix());
    let mut read_l = HashSet::new();
    for (i, p) in m.pages.iter().take(8).enumerate() {
        w.click(&logged, UserType::Logged, p, ts + i as i64 * 30_000)
            .await?;
        read_l.insert(p.to_string());
    }
    // Another reader makes p0 the clear top page of the window.
    w.click("third-reader", UserType::NonLogged, p0, ts + 5 * 60_000)
        .await?;
    for k in [1, 5, 10, 50] {
        let body = app.recommend(&logged, k).await?;
        assert_eq!(body["tier"], "logged");
        check_unread(&body, &read_l, k);
    }
    // `num_recs` is an alias of `k`; `k` wins when both are given.
    let (s, body) = app
        .get(&format!("/recommendations?user_id={logged}&num_recs=7"))
        .await?;
    assert_eq!(s, 200);
    assert_eq!(pages_of(&body).len(), 7);
    let (s, body) = app
        .get(&format!("/recommendations?user_id={logged}&k=3&num_recs=4"))
        .await?;
    assert_eq!(s, 200);
    assert_eq!(pages_of(&body).len(), 3);

    // The live lists: popular reflects the clicks just applied (within a refresh).
    let top = eventually(Duration::from_secs(5), || async {
        let (s, body) = app.get("/popular?window=1h&k=5").await.ok()?;
        (s == 200 && pages_of(&body).first() == Some(&p0.to_string())).then_some(body)
    })
    .await;
    let top = top.expect("popular shows the live top page");
    assert_eq!(top["window"], "1h");
    assert_eq!(top["degraded"], false);
    let (s, sim) = app.get(&format!("/articles/{p0}/similar?k=5")).await?;
    assert_eq!(s, 200, "{sim}");
    let sim_pages = pages_of(&sim);
    assert!(!sim_pages.is_empty() && sim_pages.len() <= 5);
    assert!(!sim_pages.contains(&p0.to_string()));
    // Live co-visitation: the fresh reader read p1 right after p0.
    assert!(sim_pages.contains(&p1.to_string()), "{sim}");

    // Tier transitions were counted, labelled by tier only.
    let (_, metrics) = app.get_text("/metrics").await?;
    assert!(
        metrics.contains("newsrec_tier_transitions_total{from=\"anonymous\",to=\"semi_logged\"} 1"),
        "{metrics}"
    );
    assert!(
        series_value(&metrics, "newsrec_recommendations_total{tier=\"logged\"}")
            .is_some_and(|v| v >= 1.0)
    );
    // Series nothing happened to yet are there at zero, so dashboards show flat lines.
    assert_eq!(
        series_value(
            &metrics,
            "newsrec_tier_transitions_total{from=\"logged\",to=\"anonymous\"}"
        ),
        Some(0.0)
    );
    assert!(metrics.contains("route=\"/articles/{page}/similar\""));
    assert!(metrics.contains("newsrec_popular_article_clicks{page="));
    assert!(metrics.contains("newsrec_model_info{version="));
    assert!(
        !metrics.contains(&fresh) && !metrics.contains(&logged),
        "no user ids in metrics"
    );
    w.cleanup().await;
    app.stop().await;
    Ok(())
}

fn check_unread(body: &serde_json::Value, read: &HashSet<String>, k: usize) {
    let pages = pages_of(body);
    assert_eq!(pages.len(), k, "{body}");
    let distinct: HashSet<&String> = pages.iter().collect();
    assert_eq!(distinct.len(), k, "duplicates in {body}");
    for p in &pages {
        assert!(!read.contains(p), "read page {p} recommended: {body}");
    }
}

fn rand_suffix() -> u32 {
    rand::random()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_metrics_docs_and_model_endpoints() -> Result<()> {
    let app = spawn_app("meta", |_| {}, None).await?;
    let (s, live) = app.get("/health/live").await?;
    assert_eq!((s, live["status"].as_str()), (200, Some("live")));
    let (s, ready) = app.get("/health/ready").await?;
    assert_eq!(s, 200, "{ready}");
    assert_eq!(ready["model"], model().version.as_str());

    let (s, manifest) = app.get("/models/current").await?;
    assert_eq!(s, 200);
    assert_eq!(manifest["version"], model().version.as_str());
    assert!(manifest["data"]["last_ts"].is_number());
    let bytes = manifest["memory_bytes"].as_u64().unwrap_or_default();
    assert!(bytes > 10_000, "model heap bytes {bytes}");
    assert_eq!(manifest["pinned"], serde_json::json!([]));
    let (_, text) = app.get_text("/metrics").await?;
    assert!(
        text.lines().any(|l| l.starts_with("newsrec_model_memory_bytes{") && l.contains("role=\"current\"")),
        "no memory gauge of the served model"
    );
    let (s, evals) = app.get("/evaluation/metrics").await?;
    assert_eq!(s, 200);
    assert!(evals["evaluations"].is_array());

    let (s, doc) = app.get("/openapi.json").await?;
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    for p in [
        "/recommendations",
        "/popular",
        "/articles/{page}/similar",
        "/events",
        "/metrics",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} documented");
    }
    // Swagger UI, from assets compiled into the binary: its page, script and the
    // initializer pointing at the document all come from this server.
    let (s, html) = app.get_text("/docs").await?;
    assert_eq!(s, 200);
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(!html.contains("https://"), "docs must work offline");
    let (s, js) = app.get_text("/docs/swagger-ui-bundle.js").await?;
    assert_eq!(s, 200);
    assert!(js.len() > 100_000, "bundle served from the binary");
    let (s, init) = app.get_text("/docs/swagger-initializer.js").await?;
    assert_eq!(s, 200);
    assert!(init.contains("/openapi.json"), "{init}");

    app.recommend("meta-user", 3).await?;
    let (s, metrics) = app.get_text("/metrics").await?;
    assert_eq!(s, 200);
    for name in [
        "newsrec_http_requests_total{method=\"GET\",route=\"/recommendations\",status=\"200\"} 1",
        "newsrec_http_request_duration_seconds_bucket{method=\"GET\",route=\"/recommendations\",le=\"0.0001\"}",
        "newsrec_recommendations_total{tier=\"anonymous\"} 1",
        "newsrec_model_reloads_total{outcome=\"loaded\"} 1",
        "newsrec_http_requests_total{method=\"GET\",route=\"/health/ready\",status=\"200\"} 1",
    ] {
        assert!(metrics.contains(name), "missing {name}:\n{metrics}");
    }
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_current_model_is_served_without_dropping_requests() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // A second version beside `current`: the same artifacts under a new name.
    let (models, v2) = registry_with_second_version(dir.path(), "b")?;
    let app = spawn_app("reload", |c| c.models_dir = models.clone(), None).await?;
    let v1 = model().version.clone();

    // Requests keep flowing while `current` switches.
    let base = app.base.clone();
    let http = app.http.clone();
    let load = tokio::spawn(async move {
        let mut statuses = Vec::new();
        let mut versions = HashSet::new();
        for i in 0..400 {
            let r = http
                .get(format!("{base}/recommendations?user_id=reload-{i}&k=5"))
                .send()
                .await;
            match r {
                Ok(r) => {
                    statuses.push(r.status().as_u16());
                    if let Ok(b) = r.json::<serde_json::Value>().await {
                        versions.insert(b["model_version"].as_str().unwrap_or("").to_string());
                    }
                }
                Err(_) => statuses.push(0),
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (statuses, versions)
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    newsrec_train::Registry::open(&models)?.set_current(&v2)?;
    let switched = eventually(Duration::from_secs(5), || async {
        let (_, m) = app.get("/models/current").await.ok()?;
        (m["version"] == v2.as_str()).then_some(())
    })
    .await;
    assert!(
        switched.is_some(),
        "new current model picked up within seconds"
    );
    let (statuses, versions) = load.await?;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(versions.contains(&v2), "{versions:?}");
    let (_, metrics) = app.get_text("/metrics").await?;
    assert!(metrics.contains(&format!("newsrec_model_info{{version=\"{v2}\"}} 1")));
    assert!(!metrics.contains(&format!("newsrec_model_info{{version=\"{v1}\"}}")));

    // A broken version is refused and the served one stays.
    let v3 = format!("{v1}-broken");
    std::fs::create_dir_all(models.join(&v3))?;
    std::fs::write(models.join(&v3).join("model.bin"), b"garbage")?;
    let mut m3: serde_json::Value =
        serde_json::from_slice(&std::fs::read(models.join(&v2).join("manifest.json"))?)?;
    m3["version"] = serde_json::Value::String(v3.clone());
    std::fs::write(
        models.join(&v3).join("manifest.json"),
        serde_json::to_vec(&m3)?,
    )?;
    newsrec_train::Registry::open(&models)?.set_current(&v3)?;
    let failed = eventually(Duration::from_secs(5), || async {
        let (_, text) = app.get_text("/metrics").await.ok()?;
        series_value(&text, "newsrec_model_reloads_total{outcome=\"failed\"}")
            .is_some_and(|v| v >= 1.0)
            .then_some(())
    })
    .await;
    assert!(failed.is_some());
    let body = app.recommend("after-broken", 5).await?;
    assert_eq!(body["model_version"], v2.as_str());
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_degrades_and_recovers() -> Result<()> {
    let mut redis = OwnedRedis::start()?;
    let url = redis.url();
    let app = spawn_app(
        "outage",
        |c| {
            c.store.redis = RedisTarget::parse(&url, false);
            c.store_timeout_ms = 200;
        },
        None,
    )
    .await?;
    let mut w = Writer::connect(&url, &app.prefix).await?;
    let m = model();
    let user = "outage-reader";
    for (i, p) in m.pages.iter().take(3).enumerate() {
        w.click(user, UserType::NonLogged, p, m.end_ts + i as i64 * 60_000)
            .await?;
    }
    let body = app.recommend(user, 10).await?;
    assert_eq!(
        (body["tier"].as_str(), body["degraded"].as_bool()),
        (Some("semi_logged"), Some(false))
    );
    // The snapshot holds the live clicks before Redis goes.
    let live = eventually(Duration::from_secs(5), || async {
        let (_, pop) = app.get("/popular?window=1h&k=5").await.ok()?;
        (pop["source"] == "live").then_some(pop)
    })
    .await
    .expect("live popularity");
    drop(w);

    redis.kill();
    // Served from the model and the last snapshot, flagged, still K items.
    for k in [10, 3] {
        let body = app.recommend(user, k).await?;
        assert_eq!(body["degraded"], true, "{body}");
        assert_eq!(pages_of(&body).len(), k);
    }
    let body = app.recommend("known-or-not", 10).await?;
    assert_eq!(body["degraded"], true);
    let (s, pop) = app.get("/popular?window=1h&k=5").await?;
    assert_eq!((s, pop["degraded"].as_bool()), (200, Some(true)));
    assert_eq!(
        pages_of(&pop),
        pages_of(&live),
        "served from the last snapshot"
    );
    let (s, ready) = app.get("/health/ready").await?;
    assert_eq!(s, 503, "{ready}");
    let (s, _) = app.get("/health/live").await?;
    assert_eq!(s, 200);
    let (_, metrics) = app.get_text("/metrics").await?;
    assert!(
        !metrics.contains("newsrec_degraded_responses_total 0"),
        "{metrics}"
    );

    redis.restart()?;
    let recovered = eventually(Duration::from_secs(15), || async {
        let body = app.recommend(user, 10).await.ok()?;
        (body["degraded"] == false).then_some(body)
    })
    .await;
    let body = recovered.expect("recovers by itself once Redis is back");
    assert_eq!(pages_of(&body).len(), 10);
    let (s, _) = app.get("/health/ready").await?;
    assert_eq!(s, 200);
    app.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_without_redis_and_connects_when_it_appears() -> Result<()> {
    let mut redis = OwnedRedis::start()?;
    redis.kill();
    let url = redis.url();
    let app = spawn_app(
        "late",
        |c| c.store.redis = RedisTarget::parse(&url, false),
        None,
    )
    .await?;
    let body = app.recommend("early-bird", 5).await?;
    assert_eq!(body["degraded"], true);
    assert_eq!(pages_of(&body).len(), 5);
    redis.restart()?;
    let ok = eventually(Duration::from_secs(15), || async {
        let body = app.recommend("early-bird", 5).await.ok()?;
        (body["degraded"] == false).then_some(())
    })
    .await;
    assert!(ok.is_some());
    app.stop().await;
    Ok(())
}

/// A copy of the fixture's registry with a second version `<current>-<suffix>` (the
/// same artifacts under a new name) that is not `current`: its directory and name.
fn registry_with_second_version(
    dir: &std::path::Path,
    suffix: &str,
) -> Result<(std::path::PathBuf, String)> {
    let models = dir.join("models");
    crate::support::api::copy_models(&models)?;
    let v1 = model().version.clone();
    let v2 = format!("{v1}-{suffix}");
    std::fs::create_dir_all(models.join(&v2))?;
    for f in ["model.bin", "manifest.json"] {
        std::fs::copy(models.join(&v1).join(f), models.join(&v2).join(f))?;
    }
    let mpath = models.join(&v2).join("manifest.json");
    let mut manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&mpath)?)?;
    manifest["version"] = serde_json::Value::String(v2.clone());
    std::fs::write(&mpath, serde_json::to_vec(&manifest)?)?;
    Ok((models, v2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn experiment_variants_are_sticky_and_a_pinned_version_serves_its_readers() -> Result<()> {
    use newsrec_serve::experiments::{Experiment, MixOverride, Variant};
    let dir = tempfile::tempdir()?;
    let (models, pinned) = registry_with_second_version(dir.path(), "pinned")?;
    let variant = |name: &str, model: Option<&str>| Variant {
        name: name.into(),
        weight: 1,
        mix: MixOverride::default(),
        model: model.map(str::to_owned),
    };
    let experiment = Experiment {
        name: "ranker".into(),
        salt: "http-test".into(),
        layer: "default".into(),
        variants: vec![variant("control", None), variant("old", Some(&pinned))],
    };
    let exp = experiment.clone();
    let mdir = models.clone();
    let app = spawn_app(
        "experiments",
        move |c| {
            c.models_dir = mdir;
            c.experiments = vec![exp];
        },
        None,
    )
    .await?;
    let current = model().version.clone();
    let mut seen = HashSet::new();
    for i in 0..60 {
        let user = format!("exp-{i}");
        let first = app.recommend(&user, 5).await?;
        let again = app.recommend(&user, 5).await?;
        let label = first["variant"].as_str().unwrap_or_default().to_owned();
        assert_eq!(again["variant"], label.as_str(), "{user} changed variant");
        let want = match label.as_str() {
            "ranker=control" => current.as_str(),
            "ranker=old" => pinned.as_str(),
            other => panic!("{user}: variant {other:?}"),
        };
        assert_eq!(first["model_version"], want, "{user} in {label}");
        seen.insert(label);
    }
    assert_eq!(seen.len(), 2, "both variants served: {seen:?}");
    let (_, m) = app.get("/models/current").await?;
    assert_eq!(m["version"], current.as_str());
    assert_eq!(m["pinned"][0]["version"], pinned.as_str(), "{m}");
    assert!(m["pinned"][0]["memory_bytes"].as_u64().unwrap_or_default() > 10_000);
    let (_, metrics) = app.get_text("/metrics").await?;
    let version = format!("version=\"{pinned}\"");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("newsrec_model_memory_bytes{")
                && l.contains("role=\"pinned\"")
                && l.contains(&version)),
        "no memory gauge of the pinned model:\n{metrics}"
    );
    // No online counters yet: every variant at zero, control first.
    let (s, report) = app.get("/experiments").await?;
    assert_eq!(s, 200, "{report}");
    assert_eq!(report["experiments"][0]["control"], "control");
    assert_eq!(report["experiments"][0]["variants"][1]["served"], 0);
    app.stop().await;

    // A pin the registry cannot load stops the start, saying which.
    let mut bad = experiment;
    bad.variants[1].model = Some("no-such-version".into());
    let err = spawn_app(
        "experiments-bad",
        move |c| {
            c.models_dir = models;
            c.experiments = vec![bad];
        },
        None,
    )
    .await
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        err.contains("no-such-version") && err.contains("pins it"),
        "start error: {err:?}"
    );
    Ok(())
}
