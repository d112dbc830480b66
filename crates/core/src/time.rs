//! Event-time helpers. Every window, decay and recency computation in newsrec uses the
//! events' own timestamps (epoch milliseconds), never the wall clock, so a replay at any
//! speed yields the same state as real time.

/// One hour in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// One day in milliseconds.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// Earliest event time accepted: 2000-01-01T00:00:00Z.
pub const MIN_PLAUSIBLE_MS: i64 = 946_684_800_000;
/// Latest event time accepted: 2100-01-01T00:00:00Z.
pub const MAX_PLAUSIBLE_MS: i64 = 4_102_444_800_000;

/// The wall clock now, epoch ms (for wall-time stamps and ages; never for event time).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Whether `ts` could be a real event time.
pub fn is_plausible(ts: i64) -> bool {
    (MIN_PLAUSIBLE_MS..MAX_PLAUSIBLE_MS).contains(&ts)
}

/// Exponential decay factor for something `age_ms` old with the given half-life; ages
/// below zero (items "from the future" relative to the watermark) count as fresh.
pub fn decay(age_ms: i64, half_life_ms: i64) -> f64 {
    let age = age_ms.max(0) as f64;
    (-(age / half_life_ms.max(1) as f64) * std::f64::consts::LN_2).exp()
}

/// Formats epoch milliseconds as RFC 3339 (UTC), for reports and manifests.
pub fn rfc3339(ts: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ts)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| ts.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decay_halves() {
        assert!((decay(HOUR_MS, HOUR_MS) - 0.5).abs() < 1e-12);
        assert_eq!(decay(-5, HOUR_MS), 1.0);
        assert_eq!(rfc3339(1_656_644_400_000), "2022-07-01T03:00:00Z");
    }
}
