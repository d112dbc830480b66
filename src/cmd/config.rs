//! `newsrec config`.

use clap::Subcommand;

use crate::settings::Settings;

/// Settings commands.
#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Print the effective settings (defaults, `--config` file, `NEWSREC_*` variables)
    /// as TOML, secrets masked; the output is itself a valid `--config` file.
    Show,
}

/// Runs a settings command.
pub fn run(c: ConfigCommand, s: Settings) -> anyhow::Result<()> {
    match c {
        ConfigCommand::Show => print!("{}", s.show()?),
    }
    Ok(())
}
