use super::stats::{reports, two_proportion_p, wilson};
use super::*;
use newsrec_features::online::{CounterKey, Counters};

fn variant(name: &str, weight: u32) -> Variant {
    Variant {
        name: name.into(),
        weight,
        mix: MixOverride::default(),
        model: None,
    }
}

fn experiment(name: &str, layer: &str, variants: Vec<Variant>) -> Experiment {
    Experiment {
        name: name.into(),
        salt: "2026-12".into(),
        layer: layer.into(),
        variants,
    }
}

fn user(i: usize) -> UserId {
    UserId::parse(&format!("user-{i}")).unwrap()
}

#[test]
fn buckets_follow_the_weights_within_a_point() {
    for weights in [vec![50, 50], vec![10, 30, 60], vec![1, 1, 1, 1, 1]] {
        let e = experiment(
            "split",
            DEFAULT_LAYER,
            weights
                .iter()
                .enumerate()
                .map(|(i, w)| variant(&format!("v{i}"), *w))
                .collect(),
        );
        let x = Experiments::new(&[e]).unwrap();
        let n = 100_000;
        let mut counts = vec![0usize; weights.len()];
        for i in 0..n {
            counts[x.variants_of(&user(i))[0]] += 1;
        }
        let total: u32 = weights.iter().sum();
        for (c, w) in counts.iter().zip(&weights) {
            let share = *c as f64 / n as f64;
            let want = f64::from(*w) / f64::from(total);
            assert!(
                (share - want).abs() < 0.01,
                "{weights:?}: share {share:.4} against {want:.4} ({counts:?})"
            );
        }
    }
}

#[test]
fn a_user_keeps_their_variant_and_a_new_salt_reshuffles() {
    let e = experiment(
        "ranker",
        DEFAULT_LAYER,
        vec![variant("control", 50), variant("b", 50)],
    );
    let one = Experiments::new(std::slice::from_ref(&e)).unwrap();
    // A second instance from the same settings (a restart, another replica).
    let two = Experiments::new(std::slice::from_ref(&e)).unwrap();
    let mut salted = e.clone();
    salted.salt = "2027-01".into();
    let three = Experiments::new(&[salted]).unwrap();
    let mut moved = 0;
    for i in 0..2_000 {
        let u = user(i);
        let v = one.variants_of(&u);
        assert_eq!(v, one.variants_of(&u));
        assert_eq!(v, two.variants_of(&u));
        moved += usize::from(v != three.variants_of(&u));
    }
    // Independent halves: about half the users change variant with the salt.
    assert!((800..1_200).contains(&moved), "{moved} of 2000 moved");
}

#[test]
fn layers_are_independent_and_labels_name_every_variant() {
    let a = experiment(
        "ranker",
        "ranking",
        vec![variant("control", 1), variant("b", 1)],
    );
    let mut fresh = variant("fresh", 1);
    fresh.mix.recency = Some(0.123);
    let mut b = experiment("freshness", "recency", vec![variant("control", 1), fresh]);
    b.salt = "fresh-2026-12".into();
    let x = Experiments::new(&[a, b]).unwrap();
    let base = MixWeights::default();
    let mut cells = BTreeMap::new();
    for i in 0..4_000 {
        let got = x.assign(Some(&user(i)), &base);
        let pairs: Vec<(String, String)> = parse_label(&got.label)
            .map(|(e, v)| (e.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(pairs.len(), 2, "{}", got.label);
        assert_eq!(pairs[0].0, "ranker");
        let fresh = pairs[1].1 == "fresh";
        assert_eq!(got.mix.recency == 0.123, fresh, "{}", got.label);
        *cells.entry(got.label).or_insert(0) += 1;
    }
    // Four cells of about a quarter each.
    assert_eq!(cells.len(), 4, "{cells:?}");
    assert!(
        cells.values().all(|&n| (850..1_150).contains(&n)),
        "{cells:?}"
    );
    // No experiments, or no user: control and the base weights.
    let empty = Experiments::default();
    let none = empty.assign(Some(&user(1)), &base);
    assert_eq!((&*none.label, none.model), (CONTROL, None));
    assert_eq!(x.assign(None, &base).label, CONTROL);
}

#[test]
fn overrides_and_pins_reach_the_assignment() {
    let mut popular = variant("popular-only", 1);
    popular.mix = MixOverride {
        cf: Some(0.0),
        content: Some(0.0),
        cluster: Some(0.0),
        read_next: Some(0.0),
        ..MixOverride::default()
    };
    let mut pinned = variant("old-model", 1);
    pinned.model = Some("v1".into());
    let e = experiment(
        "ranker",
        DEFAULT_LAYER,
        vec![variant("control", 1), popular, pinned],
    );
    assert_eq!(
        pinned_versions(std::slice::from_ref(&e)),
        BTreeSet::from(["v1".to_owned()])
    );
    let x = Experiments::new(&[e]).unwrap();
    let base = MixWeights::default();
    let mut seen = BTreeSet::new();
    for i in 0..300 {
        let a = x.assign(Some(&user(i)), &base);
        match &*a.label {
            "ranker=control" => assert_eq!((&*a.mix, a.model), (&base, None)),
            "ranker=popular-only" => {
                assert_eq!(
                    (a.mix.cf, a.mix.content, a.mix.cluster, a.mix.read_next),
                    (0.0, 0.0, 0.0, 0.0)
                );
                assert_eq!((a.mix.popular, a.model), (base.popular, None));
                // Weights set by a variant rank every tier, learned or not.
                assert_eq!(a.mix.ranking, Ranking::Hand);
            }
            "ranker=old-model" => assert_eq!((&*a.mix, a.model), (&base, Some("v1"))),
            other => panic!("label {other}"),
        }
        seen.insert(a.label);
    }
    assert_eq!(seen.len(), 3);
    // A variant that only names the ranking keeps every weight of the base.
    let hand = MixOverride {
        ranking: Some(Ranking::Hand),
        ..MixOverride::default()
    };
    assert_eq!(hand.apply(&base), base.hand());
    assert_eq!(MixOverride::default().apply(&base), base);
}

#[test]
fn bad_settings_are_refused_with_what_to_fix() {
    let ok = || {
        experiment(
            "ranker",
            DEFAULT_LAYER,
            vec![variant("control", 1), variant("b", 1)],
        )
    };
    let refused = |list: Vec<Experiment>, says: &str| {
        let e = validate(&list).expect_err(says).to_string();
        assert!(e.contains(says), "{e:?} should say {says:?}");
    };
    assert!(validate(&[ok()]).is_ok());
    let mut zero = ok();
    zero.variants[1].weight = 0;
    refused(vec![zero], "weight must be positive");
    let mut dup = ok();
    dup.variants[1].name = "control".into();
    refused(vec![dup], "two variants have this name");
    refused(vec![ok(), ok()], "two experiments are named");
    let mut other = ok();
    other.name = "other".into();
    refused(vec![ok(), other.clone()], "both claim the traffic of layer");
    let mut clash = ok();
    clash.variants[1].mix.cf = Some(0.0);
    other.layer = "second".into();
    other.variants[1].mix.cf = Some(2.0);
    refused(vec![clash.clone(), other.clone()], "have the same salt");
    other.salt = "another".into();
    refused(vec![clash, other], "both change cf");
    let mut one = ok();
    one.variants.pop();
    refused(vec![one], "at least two variants");
    let mut bad = ok();
    bad.variants[1].name = "a=b".into();
    refused(vec![bad], "use letters");
    let mut negative = ok();
    negative.variants[1].mix.content = Some(-1.0);
    refused(vec![negative], "mix.content must be finite");
    let mut salt = ok();
    salt.salt.clear();
    refused(vec![salt], "salt must not be empty");
}

#[test]
fn settings_read_from_toml() {
    let text = r#"
        name = "ranker"
        salt = "2026-12"
        [[variants]]
        name = "control"
        weight = 50
        [[variants]]
        name = "popular-only"
        weight = 50
        mix = { cf = 0.0, content = 0.0, cluster = 0.0, read_next = 0.0 }
    "#;
    let e: Experiment = toml::from_str(text).unwrap();
    assert_eq!(e.layer, DEFAULT_LAYER);
    assert_eq!(e.variants[1].mix.cf, Some(0.0));
    let typo = text.replace("read_next", "read_nxt");
    assert!(toml::from_str::<Experiment>(&typo).is_err());
}

#[test]
fn wilson_and_the_z_test_match_known_values() {
    // Wilson 95% of 10/100: [0.0552, 0.1744].
    let (lo, hi) = wilson(10, 100);
    assert!(
        (lo - 0.0552).abs() < 1e-3 && (hi - 0.1744).abs() < 1e-3,
        "{lo} {hi}"
    );
    assert_eq!(wilson(0, 0), (0.0, 1.0));
    let (lo, hi) = wilson(0, 50);
    assert!(lo < 1e-12 && hi > 0.0 && hi < 0.1, "{lo} {hi}");
    // 120/1000 against 100/1000: z = 1.4293, p = 0.1529.
    let p = two_proportion_p(120, 1_000, 100, 1_000).unwrap();
    assert!((p - 0.1529).abs() < 1e-3, "{p}");
    // 200/1000 against 100/1000: z = 6.26, p ≈ 3.8e-10.
    let p = two_proportion_p(200, 1_000, 100, 1_000).unwrap();
    assert!(p < 1e-8, "{p}");
    assert_eq!(two_proportion_p(1, 0, 1, 10), None);
    assert_eq!(two_proportion_p(0, 10, 0, 10), None);
    let same = two_proportion_p(50, 500, 50, 500).unwrap();
    assert!((same - 1.0).abs() < 1e-12);
}

#[test]
fn reports_sum_a_variant_over_tiers_and_compare_with_control() {
    let e = experiment(
        "ranker",
        DEFAULT_LAYER,
        vec![variant("b", 50), variant("control", 50)],
    );
    let row = |tier: &str, label: &str, served, hits| {
        (
            CounterKey {
                tier: tier.into(),
                variant: label.into(),
                model_version: "v1".into(),
            },
            Counters {
                served,
                hits,
                clicks: hits,
                rr_sum: hits as f64 / 2.0,
                by_position: vec![],
            },
        )
    };
    let rows = vec![
        row("logged", "ranker=control,other=x", 600, 90),
        row("anonymous", "ranker=control", 400, 30),
        row("logged", "ranker=b", 1_000, 60),
        row("logged", CONTROL, 5_000, 5),
    ];
    let r = &reports(&[e], &rows)[0];
    assert_eq!(r.control, "control");
    let (b, c) = (&r.variants[0], &r.variants[1]);
    assert_eq!(
        (c.served, c.hits, c.lift, c.p_value),
        (1_000, 120, None, None)
    );
    assert_eq!((b.served, b.hits), (1_000, 60));
    assert!((b.lift.unwrap() + 0.5).abs() < 1e-12);
    assert!(b.p_value.unwrap() < 0.01);
    assert!((c.mrr - 0.06).abs() < 1e-12);
    assert!(c.hit_rate_ci[0] < 0.12 && 0.12 < c.hit_rate_ci[1]);
}

#[test]
fn a_a_experiments_on_fixed_seeds_are_significant_about_as_often_as_promised() {
    use rand::{Rng, SeedableRng};
    // Readers with their own propensity to click (fixed seed), one list each (the
    // z-test takes lists as independent; see `stats`), and 400 A/A experiments that
    // differ only in their salt.
    let mut rng = rand::rngs::StdRng::seed_from_u64(20_261_202);
    let readers: Vec<(UserId, f64)> = (0..4_000)
        .map(|i| (user(i), rng.random_range(0.0..0.4)))
        .collect();
    let mut significant = 0;
    for s in 0..400 {
        let mut e = experiment("aa", DEFAULT_LAYER, vec![variant("a", 1), variant("b", 1)]);
        e.salt = format!("salt-{s}");
        let x = Experiments::new(std::slice::from_ref(&e)).unwrap();
        let mut counts = [Counters::default(), Counters::default()];
        for (u, p) in &readers {
            let c = &mut counts[x.variants_of(u)[0]];
            c.served += 1;
            c.hits += u64::from(rng.random_bool(*p));
        }
        let rows: Vec<_> = ["a", "b"]
            .into_iter()
            .zip(counts)
            .map(|(v, c)| {
                let key = CounterKey {
                    tier: "logged".into(),
                    variant: format!("aa={v}"),
                    model_version: "v1".into(),
                };
                (key, c)
            })
            .collect();
        let p = reports(&[e], &rows)[0].variants[1].p_value.unwrap();
        significant += usize::from(p < 0.05);
    }
    // 20 of 400 expected at the 5% level (binomial spread: about 11 to 29).
    assert!(
        (8..=32).contains(&significant),
        "{significant} of 400 A/A tests below 0.05"
    );
}
