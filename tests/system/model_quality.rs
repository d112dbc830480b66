//! The learned ranker against the hand-set orders, on small generated worlds that
//! change what matters (freshness, how focused readers are): per tier, the learned
//! ranking is not behind the hand-set weights, CF-only or content-only, and every tier
//! clears 1.3× popular-24h NDCG@10. Pure batch work: no broker, no Redis.

use anyhow::Result;
use newsrec_core::Tier;
use newsrec_data::synth::{SynthConfig, WorldKind, generate};
use newsrec_train::{EvaluationReport, Evaluator, MixWeights, ModelSet, TrainParams, train};

/// Readers and articles of each world (QUALITY.md's small worlds): the smallest where
/// the logged tier's holdout has enough readers for the ranker to fit it.
const USERS: usize = 3_000;
const ITEMS: usize = 1_000;
/// How far (absolute NDCG@10) the learned ranking may sit below a hand-set variant: the
/// spread between two halves of a tier's validation readers at this size.
const NOISE: f64 = 0.01;

fn world(kind: WorldKind, seed: u64) -> Result<Vec<(&'static str, EvaluationReport)>> {
    let dir = tempfile::tempdir()?;
    let (raw, data, models) = (
        dir.path().join("raw"),
        dir.path().join("refined"),
        dir.path().join("models"),
    );
    generate(&SynthConfig {
        out: raw.clone(),
        users: USERS,
        items: ITEMS,
        seed,
        world: kind,
        zip: None,
        progress: false,
    })?;
    newsrec_data::refine::process(&newsrec_data::refine::ProcessConfig::new(&raw, &data))?;
    let manifest = train(&data, &models, &TrainParams::default())?;
    let model = ModelSet::load(&models.join(&manifest.version))?;
    let eval = Evaluator::from_dir(&data)?;
    let w = MixWeights::default();
    println!(
        "{kind}: {:?}",
        model
            .ranker()
            .tiers
            .iter()
            .map(|t| (t.tier, &t.chosen))
            .collect::<Vec<_>>()
    );
    Ok([
        ("learned", w.clone()),
        ("hand", w.hand()),
        ("cf-only", w.cf_only()),
        ("content-only", w.content_only()),
    ]
    .into_iter()
    .map(|(n, v)| (n, eval.run(&model, 10, &v)))
    .collect())
}

#[test]
fn learned_ranking_holds_against_every_hand_set_order_on_small_worlds() -> Result<()> {
    let mut failures = Vec::new();
    for kind in [WorldKind::Focused, WorldKind::FastNews, WorldKind::Broad] {
        let variants = world(kind, 5)?;
        let learned = &variants[0].1;
        for tier in Tier::ALL {
            let ours = learned.tiers.get(tier).ndcg;
            let pop = learned.baselines.popular_24h.tiers.get(tier).ndcg;
            println!("{kind} {tier}: learned {ours:.4}, popular-24h {pop:.4}");
            for (name, r) in &variants[1..] {
                let theirs = r.tiers.get(tier).ndcg;
                println!("  {name} {theirs:.4}");
                if ours < theirs - NOISE {
                    failures.push(format!(
                        "{kind} {tier}: learned {ours:.4} < {name} {theirs:.4}"
                    ));
                }
            }
            if ours < 1.3 * pop {
                failures.push(format!(
                    "{kind} {tier}: learned {ours:.4} < 1.3 × popular-24h {pop:.4}"
                ));
            }
        }
    }
    anyhow::ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}
