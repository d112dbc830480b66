//! Training, serving and evaluating on a planted data set, end to end through the
//! refined Parquet files and the models directory.

mod common;

use std::collections::HashSet;

use newsrec_core::{PageId, Tier, UserAggregates, UserId, UserType, route_tier};
use newsrec_train::{
    Evaluator, LiveSignals, MixWeights, ModelSet, Registry, TrainParams, UserContext, evaluate,
    read_training, read_validation, train,
};

fn params() -> TrainParams {
    let mut p = TrainParams::default();
    p.als.factors = 12;
    p.als.iterations = 8;
    p.cluster.clusters = 6;
    p.pool_size = 400;
    p
}

fn pid(i: usize) -> PageId {
    PageId::parse(&common::page(i)).expect("page id")
}

struct Fixture {
    _dir: tempfile::TempDir,
    data: std::path::PathBuf,
    models: std::path::PathBuf,
    planted: common::Planted,
}

fn fixture(users: usize, items: usize) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("refined");
    std::fs::create_dir_all(&data).expect("mkdir");
    let planted = common::write_planted(&data, users, items, 5);
    let models = dir.path().join("models");
    Fixture {
        data,
        models,
        planted,
        _dir: dir,
    }
}

/// Trains on the fixture and loads the installed version.
fn trained(f: &Fixture) -> ModelSet {
    train(&f.data, &f.models, &params()).expect("train");
    Registry::open(&f.models)
        .and_then(|r| r.load_current())
        .expect("model")
}

#[test]
fn trains_publishes_evaluates_and_beats_popularity() {
    let f = fixture(1_500, 360);
    let manifest = train(&f.data, &f.models, &params()).expect("train");
    let registry = Registry::open(&f.models).expect("registry");
    assert_eq!(
        registry.current_version().expect("readlink"),
        Some(manifest.version.clone())
    );
    assert!(manifest.rows.logged_users > 0 && manifest.rows.semi_logged_users > 0);
    assert_eq!(manifest.rows.clusters, 6);
    assert!(manifest.data.last_ts > manifest.data.first_ts);
    assert!(manifest.timings_ms.contains_key("als"));

    let (record, _) = evaluate(&f.data, &f.models, 10, &MixWeights::default()).expect("evaluate");
    let r = record.report;
    assert_eq!(r.k, 10);
    let by_tier = r.tiers.logged.users + r.tiers.semi_logged.users + r.tiers.anonymous.users;
    assert_eq!(by_tier, r.overall.users);
    assert!(
        r.tiers.logged.users > 0 && r.tiers.semi_logged.users > 0 && r.tiers.anonymous.users > 0
    );
    // Topics are planted: the personalised tiers must clearly beat recent popularity.
    for t in [Tier::Logged, Tier::SemiLogged] {
        let (m, b) = (r.tiers.get(t), r.baselines.popular_24h.tiers.get(t));
        assert!(
            m.ndcg > b.ndcg * 1.2,
            "{t}: model ndcg {} vs popular-24h {}",
            m.ndcg,
            b.ndcg
        );
    }
    assert!(r.overall.coverage > r.baselines.popular_all.overall.coverage);

    // The run is in the history and in the manifest.
    let history = registry.evaluations().expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].report, r);
    let m = registry.manifest(&manifest.version).expect("manifest");
    assert_eq!(m.metrics, Some(r));

    // The JSON has exactly the documented shape.
    let v = serde_json::to_value(r).expect("json");
    let keys: HashSet<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, HashSet::from(["k", "overall", "tiers", "baselines"]));
    let m_keys: HashSet<&str> = v["tiers"]["semi_logged"]
        .as_object()
        .expect("M")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        m_keys,
        HashSet::from([
            "users", "recall", "ndcg", "hr", "mrr", "coverage", "novelty"
        ])
    );
    assert!(v["baselines"]["popular_24h"]["tiers"]["anonymous"]["ndcg"].is_number());
    assert!(v["baselines"]["popular_all"]["overall"]["users"].is_number());

    // Retraining switches `current`; the previous version stays loadable.
    let second = train(&f.data, &f.models, &params()).expect("retrain");
    assert_ne!(second.version, manifest.version);
    assert_eq!(
        registry.current_version().expect("readlink"),
        Some(second.version.clone())
    );
    let versions: Vec<String> = registry
        .versions()
        .expect("versions")
        .into_iter()
        .map(|m| m.version)
        .collect();
    assert_eq!(versions, vec![manifest.version.clone(), second.version]);
    assert!(registry.load(&manifest.version).is_ok());
}

#[test]
fn hybrid_beats_its_halves_on_planted_topics() {
    let f = fixture(1_500, 360);
    let model = trained(&f);
    let evaluator = Evaluator::from_dir(&f.data).expect("evaluator");
    // The hand-set hybrid: the learned ranker may have chosen one of the halves.
    let w = MixWeights::default().hand();
    let ndcg = |w: &MixWeights| evaluator.run(&model, 10, w).tiers.logged.ndcg;
    let (hybrid, cf, content) = (ndcg(&w), ndcg(&w.cf_only()), ndcg(&w.content_only()));
    assert!(
        hybrid > cf && hybrid > content,
        "hybrid {hybrid}, cf-only {cf}, content-only {content}"
    );
}

#[test]
fn recommend_honours_k_excludes_read_pages_and_fills_from_the_next_tier() {
    let f = fixture(600, 240);
    let model = trained(&f);
    let data = read_training(&f.data, 0).expect("data");
    let logged = data
        .users
        .iter()
        .find(|u| u.user_type == UserType::Logged && u.aggregates.interactions >= 3)
        .expect("a logged user");
    let history: Vec<PageId> = {
        let u = data.user_index[&logged.id];
        let mut h: Vec<PageId> = data
            .interactions
            .user
            .iter()
            .zip(&data.interactions.item)
            .filter(|(x, _)| **x == u)
            .map(|(_, &i)| data.items[i as usize].page.clone())
            .collect();
        h.reverse();
        h
    };
    let ctx = UserContext {
        user_id: Some(logged.id.clone()),
        user_type: Some(UserType::Logged),
        aggregates: logged.aggregates,
        last_page: history.first().cloned(),
        history: history.clone(),
        read: Default::default(),
    };
    let signals = model.offline_signals(ctx.last_page.as_ref());
    let w = MixWeights::default();
    let recs = model.recommend(&ctx, &signals, 10, &w);
    assert_eq!(recs.tier, Tier::Logged);
    assert_eq!(recs.items.len(), 10, "K is honoured");
    let read: HashSet<&PageId> = history.iter().collect();
    assert!(
        recs.items.iter().all(|r| !read.contains(&r.page)),
        "read pages are excluded"
    );
    let distinct: HashSet<&PageId> = recs.items.iter().map(|r| &r.page).collect();
    assert_eq!(distinct.len(), 10);
    assert!(recs.items.windows(2).all(|p| p[0].score >= p[1].score));

    // A logged tier starved of candidates is filled from the next tiers, then the
    // catalogue: K items still come back.
    let starved = MixWeights {
        cf_candidates: 3,
        list_candidates: 3,
        neighbour_sources: 1,
        ..w.clone()
    };
    let many = model.recommend(&ctx, &LiveSignals::default(), 120, &starved);
    assert_eq!(many.items.len(), 120);
    assert!(
        many.items.iter().any(|r| r.tier != Tier::Logged),
        "filled from the next tier"
    );
    assert!(many.items.iter().all(|r| !read.contains(&r.page)));
    assert_eq!(
        many.items
            .iter()
            .map(|r| &r.page)
            .collect::<HashSet<_>>()
            .len(),
        120
    );
    // Asking for more than the catalogue returns every unread article, once.
    let all = model.recommend(&ctx, &LiveSignals::default(), 10_000, &w);
    let unread = f.planted.items - read.len();
    assert_eq!(all.items.len(), unread);
}

#[test]
fn unknown_users_are_placed_from_live_history_and_features() {
    let f = fixture(1_000, 300);
    let model = trained(&f);
    // A logged user the model never saw, who read five recent articles of topic 2.
    let topic = 2;
    let history: Vec<PageId> = (0..f.planted.items)
        .rev()
        .filter(|i| f.planted.item_topic[*i] == topic)
        .skip(10)
        .take(5)
        .map(pid)
        .collect();
    let mut agg = UserAggregates::default();
    for _ in &history {
        agg.add(&newsrec_core::Engagement::default(), model.end_ts());
    }
    let stranger = UserId::parse(&"f".repeat(64)).expect("user id");
    assert!(!model.knows_user(&stranger));
    let ctx = UserContext {
        user_id: Some(stranger),
        user_type: Some(UserType::Logged),
        aggregates: agg,
        last_page: history.first().cloned(),
        history,
        read: Default::default(),
    };
    let recs = model.recommend(&ctx, &LiveSignals::default(), 10, &MixWeights::default());
    assert_eq!(recs.tier, Tier::Logged);
    let on_topic = recs
        .items
        .iter()
        .filter(|r| {
            f.planted.item_topic[usize::from_str_radix(&r.page.as_str()[24..], 16).unwrap_or(0)]
                == topic
        })
        .count();
    assert!(
        on_topic >= 7,
        "only {on_topic}/10 on the reader's topic: {:?}",
        recs.items
    );

    // A non-logged user never seen in training is placed in a cluster from features.
    let mut semi = UserAggregates::default();
    for t in 0..3 {
        semi.add(
            &newsrec_core::Engagement {
                clicks: 4,
                time_on_page_ms: 90_000,
                scroll_pct: 60.0,
                page_visits: 1,
            },
            model.end_ts() + t,
        );
    }
    assert!(model.cluster_of(&semi).is_some_and(|c| c < 6));
    let ctx = UserContext {
        user_type: Some(UserType::NonLogged),
        aggregates: semi,
        ..Default::default()
    };
    let recs = model.recommend(&ctx, &LiveSignals::default(), 10, &MixWeights::default());
    assert_eq!(recs.tier, Tier::SemiLogged);
    assert_eq!(recs.items.len(), 10);
    assert!(
        recs.items
            .iter()
            .any(|r| r.reason == newsrec_train::Reason::Cluster)
    );

    // Similar articles share the topic.
    let page = pid(f.planted.items - 1);
    let similar = model.similar(&page, 5);
    assert_eq!(similar.len(), 5);
    let t = f.planted.item_topic[f.planted.items - 1];
    assert!(similar.iter().all(|r| f.planted.item_topic
        [usize::from_str_radix(&r.page.as_str()[24..], 16).unwrap_or(0)]
        == t));
    let item = model.item(&page).expect("metadata");
    assert!(item.url.starts_with("http://g1.globo.com/") && !item.title.is_empty());
}

#[test]
fn evaluation_routes_users_exactly_as_the_api() {
    let f = fixture(500, 180);
    let model = trained(&f);
    let data = read_training(&f.data, 0).expect("data");
    let validation = read_validation(&f.data).expect("validation");
    let evaluator = Evaluator::new(&data, &validation);
    let report = evaluator.run(&model, 10, &MixWeights::default());
    let mut counts = [0u64; 3];
    for u in evaluator.users() {
        let expected = route_tier(u.ctx.user_type, u.ctx.aggregates.interactions);
        assert_eq!(u.ctx.tier(), expected);
        let signals = model.offline_signals(u.ctx.last_page.as_ref());
        assert_eq!(
            model
                .recommend(&u.ctx, &signals, 10, &MixWeights::default())
                .tier,
            expected
        );
        counts[match expected {
            Tier::Logged => 0,
            Tier::SemiLogged => 1,
            Tier::Anonymous => 2,
        }] += 1;
    }
    assert_eq!(
        [
            report.tiers.logged.users,
            report.tiers.semi_logged.users,
            report.tiers.anonymous.users
        ],
        counts
    );
    // Validation users are training users: their type and aggregates come from training.
    let any = &evaluator.users()[0];
    let id = any.ctx.user_id.as_ref().expect("id");
    let rec = &data.users[data.user_index[id] as usize];
    assert_eq!(any.ctx.aggregates, rec.aggregates);
}

#[test]
fn an_anonymous_readers_one_click_steers_their_list_to_its_topic() {
    let f = fixture(600, 240);
    let model = trained(&f);
    let topic_of: std::collections::HashMap<PageId, usize> = (0..f.planted.items)
        .map(|i| (pid(i), f.planted.item_topic[i]))
        .collect();
    // Hand-set weights: a learned anonymous tier would override `anonymous_content`.
    let steered = MixWeights::default().hand();
    let unsteered = MixWeights {
        anonymous_content: 0.0,
        ..steered.clone()
    };
    // Top-10 articles of the clicked page's topic, without and with steering.
    let mut same = [0usize; 2];
    for i in (0..f.planted.items).step_by(7) {
        let page = pid(i);
        let ctx = UserContext {
            user_id: None,
            user_type: Some(UserType::NonLogged),
            aggregates: UserAggregates {
                interactions: 1,
                ..UserAggregates::default()
            },
            history: vec![page.clone()],
            read: Default::default(),
            last_page: Some(page),
        };
        let signals = model.offline_signals(ctx.last_page.as_ref());
        for (n, w) in same.iter_mut().zip([&unsteered, &steered]) {
            let recs = model.recommend(&ctx, &signals, 10, w);
            assert_eq!(recs.tier, Tier::Anonymous);
            assert_eq!(recs.items.len(), 10);
            *n += recs
                .items
                .iter()
                .filter(|r| topic_of[&r.page] == f.planted.item_topic[i])
                .count();
        }
    }
    assert!(
        same[1] > 2 * same[0],
        "same-topic articles: {} unsteered, {} steered",
        same[0],
        same[1]
    );
}
