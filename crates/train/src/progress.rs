//! Progress reporting for long batch work: an indicatif bar when stderr is a terminal,
//! periodic `tracing` events otherwise (logs stay readable under a scheduler).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use tracing::info;

/// A unit of long work with a known length.
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    what: &'static str,
    len: u64,
    started: Instant,
}

impl Progress {
    pub(crate) fn new(what: &'static str, len: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let b = ProgressBar::new(len);
            if let Ok(style) =
                ProgressStyle::with_template("{msg:>14} [{bar:40}] {pos}/{len} {elapsed_precise}")
            {
                b.set_style(style.progress_chars("=> "));
            }
            b.set_message(what);
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Self {
            bar,
            what,
            len,
            started: Instant::now(),
        }
    }

    pub(crate) fn set(&self, pos: u64) {
        match &self.bar {
            Some(b) => b.set_position(pos),
            None => info!(
                stage = self.what,
                done = pos,
                of = self.len,
                elapsed_ms = self.started.elapsed().as_millis() as u64,
                "progress"
            ),
        }
    }

    pub(crate) fn finish(self) {
        if let Some(b) = self.bar {
            b.finish_and_clear();
        }
    }
}
