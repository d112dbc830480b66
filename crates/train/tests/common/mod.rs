//! A small refined data set with planted structure, written as the refined Parquet
//! files: readers belong to topics, articles have topic words in their text, popularity
//! decays with age, and the validation day continues each reader's topic.

use std::fs::File;
use std::path::Path;

use newsrec_core::refined::{self, col};
use newsrec_core::{Engagement, time::HOUR_MS};
use polars::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

pub const START: i64 = 1_656_644_400_000;
pub const TOPICS: usize = 6;
const TOPIC_WORDS: [[&str; 5]; TOPICS] = [
    ["futebol", "flamengo", "gol", "campeonato", "técnico"],
    ["inflação", "juros", "mercado", "economia", "bolsa"],
    ["eleição", "candidato", "senado", "votação", "governo"],
    ["chuva", "temporal", "previsão", "frio", "clima"],
    ["vacina", "saúde", "hospital", "médicos", "covid"],
    ["música", "show", "cantora", "festival", "álbum"],
];

/// Engagement style of each topic's readers: (clicks, seconds on page, scroll %).
const STYLE: [(u32, u64, f64); TOPICS] = [
    (1, 20, 20.0),
    (6, 240, 90.0),
    (20, 60, 50.0),
    (2, 120, 60.0),
    (10, 400, 80.0),
    (40, 40, 30.0),
];

pub struct Planted {
    pub items: usize,
    /// Topic of each article.
    pub item_topic: Vec<usize>,
}

pub fn page(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012x}")
}

pub fn user(u: usize) -> String {
    format!("{u:064x}")
}

fn write(df: &mut DataFrame, path: &Path) {
    let f = File::create(path).expect("create parquet");
    ParquetWriter::new(f).finish(df).expect("write parquet");
}

/// Writes items, interactions and validation files into `dir`.
pub fn write_planted(dir: &Path, n_users: usize, n_items: usize, seed: u64) -> Planted {
    let mut rng = StdRng::seed_from_u64(seed);
    let days = 10i64;
    let end = START + days * 24 * HOUR_MS;
    // Articles: topic by index, published uniformly over the period (a few before it).
    let item_topic: Vec<usize> = (0..n_items).map(|i| i % TOPICS).collect();
    let issued: Vec<i64> = (0..n_items)
        .map(|i| START - 24 * HOUR_MS + (i as i64 * (days + 1) * 24 * HOUR_MS) / n_items as i64)
        .collect();
    let titles: Vec<String> = (0..n_items)
        .map(|i| {
            let w = &TOPIC_WORDS[item_topic[i]];
            format!(
                "{} {} notícia {}",
                w[rng.random_range(0..5)],
                w[rng.random_range(0..5)],
                i % 7
            )
        })
        .collect();
    let bodies: Vec<String> = (0..n_items)
        .map(|i| {
            let w = &TOPIC_WORDS[item_topic[i]];
            (0..12)
                .map(|_| w[rng.random_range(0..5)])
                .collect::<Vec<_>>()
                .join(" ")
                + " de a o que hoje"
        })
        .collect();
    let mut items = df!(
        col::PAGE => (0..n_items).map(page).collect::<Vec<_>>(),
        col::URL => (0..n_items).map(|i| format!("http://g1.globo.com/noticia/{i}.ghtml")).collect::<Vec<_>>(),
        col::ISSUED => issued.clone(),
        col::MODIFIED => issued.clone(),
        col::TITLE => titles,
        col::BODY => bodies,
        col::CAPTION => (0..n_items).map(|_| String::new()).collect::<Vec<_>>(),
    )
    .expect("items frame");
    write(&mut items, &dir.join(refined::ITEMS_FILE));

    let users: Vec<(String, bool, usize)> = (0..n_users)
        .map(|u| (user(u), rng.random_bool(0.35), rng.random_range(0..TOPICS)))
        .collect();
    // A read: an article of the reader's topic (85%) or any, published before `t`,
    // preferring fresh ones.
    let pick = |rng: &mut StdRng, topic: usize, t: i64| -> usize {
        for _ in 0..50 {
            let i = if rng.random_bool(0.85) {
                let k = rng.random_range(0..n_items / TOPICS);
                k * TOPICS + topic
            } else {
                rng.random_range(0..n_items)
            };
            if i >= n_items || issued[i] > t {
                continue;
            }
            let age_h = (t - issued[i]) as f64 / HOUR_MS as f64;
            if rng.random_bool((-age_h / 36.0).exp().max(0.02)) {
                return i;
            }
        }
        0
    };
    let mut rows: Vec<(String, &'static str, String, i64, Engagement)> = Vec::new();
    let mut validation: Vec<(String, &'static str, String, i64)> = Vec::new();
    for (id, logged, topic) in &users {
        let kind = if *logged { "Logged" } else { "Non-Logged" };
        let n = if *logged {
            rng.random_range(3..15)
        } else if rng.random_bool(0.5) {
            1
        } else {
            rng.random_range(2..6)
        };
        let mut t = START + rng.random_range(0..days * 24 * HOUR_MS - 12 * HOUR_MS);
        for _ in 0..n {
            t = (t + rng.random_range(HOUR_MS / 10..8 * HOUR_MS)).min(end - 1);
            // Each topic's readers have their own engagement style, so behaviour
            // features say something about taste (as in real news portals).
            let (clicks, secs, scroll) = STYLE[*topic];
            let e = Engagement {
                clicks: rng.random_range(clicks / 2..=clicks * 3 / 2),
                time_on_page_ms: rng.random_range(secs * 500..secs * 1500),
                scroll_pct: (scroll + rng.random_range(-10.0..10.0)).clamp(0.0, 100.0),
                page_visits: 1,
            };
            rows.push((id.clone(), kind, page(pick(&mut rng, *topic, t)), t, e));
        }
        for _ in 0..rng.random_range(1..4) {
            let tv = end + rng.random_range(0..20 * HOUR_MS);
            validation.push((id.clone(), kind, page(pick(&mut rng, *topic, end)), tv));
        }
    }
    rows.sort_by_key(|r| r.3);
    let mut interactions = df!(
        col::USER_ID => rows.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        col::USER_TYPE => rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        col::PAGE => rows.iter().map(|r| r.2.clone()).collect::<Vec<_>>(),
        col::TS => rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        col::CLICKS => rows.iter().map(|r| i64::from(r.4.clicks)).collect::<Vec<_>>(),
        col::TIME_ON_PAGE_MS => rows.iter().map(|r| r.4.time_on_page_ms as i64).collect::<Vec<_>>(),
        col::SCROLL_PCT => rows.iter().map(|r| r.4.scroll_pct).collect::<Vec<_>>(),
        col::PAGE_VISITS => rows.iter().map(|r| i64::from(r.4.page_visits)).collect::<Vec<_>>(),
        col::ENGAGEMENT => rows.iter().map(|r| r.4.score()).collect::<Vec<_>>(),
    )
    .expect("interactions frame");
    write(&mut interactions, &dir.join(refined::INTERACTIONS_FILE));
    let mut val = df!(
        col::USER_ID => validation.iter().map(|r| r.0.clone()).collect::<Vec<_>>(),
        col::USER_TYPE => validation.iter().map(|r| r.1).collect::<Vec<_>>(),
        col::PAGE => validation.iter().map(|r| r.2.clone()).collect::<Vec<_>>(),
        col::TS => validation.iter().map(|r| r.3).collect::<Vec<_>>(),
    )
    .expect("validation frame");
    write(&mut val, &dir.join(refined::VALIDATION_FILE));
    Planted {
        items: n_items,
        item_topic,
    }
}
