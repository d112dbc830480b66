//! Article text: titles, bodies and captions in Portuguese, built from the article's
//! topic vocabulary and common words, with the quirks of the real item files (bodies
//! with paragraphs, commas and quoted speech; a few titles that start with a line
//! break).

use std::ops::Range;

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::stream_rng;
use super::vocab::{COMMON, REGIONS, SPEAKERS, TOPICS, slug};
use super::world::World;
use crate::g1::ItemRecord;

/// RNG stream of article text.
const TEXT_STREAM: u64 = 3;

fn word<'a>(rng: &mut ChaCha8Rng, topic: &'a [&'a str], topical: f64) -> &'a str {
    if rng.random_bool(topical) {
        topic[rng.random_range(0..topic.len())]
    } else {
        COMMON[rng.random_range(0..COMMON.len())]
    }
}

fn capitalise(s: &mut String, from: usize) {
    if let Some(c) = s[from..].chars().next() {
        let upper: String = c.to_uppercase().collect();
        s.replace_range(from..from + c.len_utf8(), &upper);
    }
}

fn sentence(rng: &mut ChaCha8Rng, topic: &[&str], out: &mut String) {
    let start = out.len();
    let n = rng.random_range(8..18);
    for i in 0..n {
        if i > 0 {
            out.push_str(if i > 3 && rng.random_bool(0.08) {
                ", "
            } else {
                " "
            });
        }
        out.push_str(word(rng, topic, 0.35));
    }
    capitalise(out, start);
    out.push('.');
}

fn title(rng: &mut ChaCha8Rng, topic: &[&str]) -> String {
    let mut t = String::new();
    // Some real titles start with a line break.
    if rng.random_bool(0.02) {
        t.push('\n');
    }
    let start = t.len();
    let n = rng.random_range(5..11);
    for i in 0..n {
        if i > 0 {
            t.push(' ');
        }
        t.push_str(word(rng, topic, if i % 2 == 0 { 0.8 } else { 0.3 }));
    }
    capitalise(&mut t, start);
    if rng.random_bool(0.2) {
        t.push_str(", diz ");
        t.push_str(SPEAKERS[rng.random_range(0..SPEAKERS.len())]);
    }
    t
}

fn body(rng: &mut ChaCha8Rng, topic: &[&str], title: &str) -> String {
    let mut b = String::with_capacity(1024);
    b.push_str(title.trim());
    b.push('\n');
    let paragraphs = rng.random_range(3..7);
    for p in 0..paragraphs {
        if p > 0 {
            b.push_str("\n\n");
        }
        for s in 0..rng.random_range(1..4) {
            if s > 0 {
                b.push(' ');
            }
            if rng.random_bool(0.15) {
                b.push('"');
                sentence(rng, topic, &mut b);
                b.push_str("\", disse ");
                b.push_str(SPEAKERS[rng.random_range(0..SPEAKERS.len())]);
                b.push('.');
            } else {
                sentence(rng, topic, &mut b);
            }
        }
    }
    b
}

/// The item-file CSV lines of the listed articles in `range`.
pub(super) fn items_csv(world: &World, seed: u64, range: Range<usize>) -> String {
    let mut rng = stream_rng(seed, TEXT_STREAM, range.start as u64);
    let mut out = String::with_capacity(range.len() * 1400);
    for item in &world.items[range] {
        let topic = &TOPICS[item.topic as usize];
        let title = title(&mut rng, topic.words);
        let body = body(&mut rng, topic.words, &title);
        let mut caption = String::from("Foto: ");
        sentence(&mut rng, topic.words, &mut caption);
        if !item.listed {
            continue;
        }
        let date = chrono::DateTime::from_timestamp_millis(item.issued)
            .map(|d| d.format("%Y/%m/%d").to_string())
            .unwrap_or_default();
        let mut url = String::from("http://g1.globo.com/");
        match item.region {
            Some(r) => {
                let (uf, name) = REGIONS[r as usize];
                url.push_str(uf);
                url.push('/');
                url.push_str(name);
            }
            None => url.push_str(topic.section),
        }
        url.push_str("/noticia/");
        url.push_str(&date);
        url.push('/');
        for (i, w) in title.split_whitespace().take(8).enumerate() {
            if i > 0 {
                url.push('-');
            }
            slug(w.trim_end_matches(','), &mut url);
        }
        url.push_str(".ghtml");
        ItemRecord {
            page: &item.page,
            url: &url,
            issued: item.issued,
            modified: item.modified,
            title: &title,
            body: &body,
            caption: &caption,
        }
        .push_csv(&mut out);
    }
    out
}
