//! The settings tree seen from the command line: `newsrec config show` layers the
//! defaults, a `--config` file, `NEWSREC_*` variables and short aliases, in that order;
//! variables that name no table are not settings; typos are refused.

use std::process::{Command, Output};

use anyhow::{Context, Result, ensure};

use crate::support::BIN;

/// Runs `newsrec <args>` with exactly `env` as its `NEWSREC_*` variables.
fn newsrec(args: &[&str], env: &[(&str, &str)]) -> Result<Output> {
    let mut cmd = Command::new(BIN);
    for (k, _) in std::env::vars() {
        if k.starts_with("NEWSREC_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args).envs(env.iter().copied());
    cmd.output().context("running newsrec")
}

fn shown(args: &[&str], env: &[(&str, &str)]) -> Result<toml::Table> {
    let out = newsrec(args, env)?;
    ensure!(
        out.status.success(),
        "newsrec {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?.parse::<toml::Table>()?)
}

fn get<'a>(t: &'a toml::Table, path: &str) -> Option<&'a toml::Value> {
    let mut parts = path.split('.');
    let mut v = t.get(parts.next()?)?;
    for p in parts {
        v = v.get(p)?;
    }
    Some(v)
}

#[test]
fn config_show_layers_file_variables_and_aliases() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("newsrec.toml");
    std::fs::write(
        &file,
        "[store]\nprefix = \"from-file:\"\nhistory_len = 9\n\
         [kafka]\ntopic = \"file-topic\"\n\
         [serve]\nadmin_token = \"file-token-123\"\n",
    )?;
    let f = file.to_str().context("path")?;
    let t = shown(
        &["config", "show", "--config", f],
        &[
            ("NEWSREC_STORE__PREFIX", "from-env:"),
            ("NEWSREC_REDIS_URL", "redis://app:pw-secret@10.0.0.5:6380"),
            ("NEWSREC_KAFKA_BROKERS", "k1:9092,k2:9092"),
            ("NEWSREC_TRAIN__ALS__FACTORS", "24"),
            ("NEWSREC_SERVICES_DIR", "/not/a/setting"),
        ],
    )?;
    let s = |p: &str| get(&t, p).and_then(|v| v.as_str()).map(str::to_owned);
    ensure!(s("store.prefix").as_deref() == Some("from-env:"), "{t}");
    ensure!(get(&t, "store.history_len").and_then(|v| v.as_integer()) == Some(9));
    ensure!(s("kafka.topic").as_deref() == Some("file-topic"));
    ensure!(s("kafka.brokers").as_deref() == Some("k1:9092,k2:9092"));
    ensure!(
        s("store.redis").as_deref() == Some("redis://app:***@10.0.0.5:6380"),
        "{t}"
    );
    ensure!(s("serve.admin_token").as_deref() == Some("***"), "{t}");
    ensure!(get(&t, "train.als.factors").and_then(|v| v.as_integer()) == Some(24));
    ensure!(s("paths.models").as_deref() == Some("models"));
    let text = t.to_string();
    ensure!(
        !text.contains("pw-secret") && !text.contains("file-token"),
        "{text}"
    );

    // A cluster as a list, and flags over everything.
    let t = shown(
        &["config", "show"],
        &[(
            "NEWSREC_STORE__REDIS",
            "[\"redis://a:7101\", \"redis://b:7102\"]",
        )],
    )?;
    let seeds = get(&t, "store.redis")
        .and_then(|v| v.as_array())
        .map(Vec::len);
    ensure!(seeds == Some(2), "{t}");
    Ok(())
}

#[test]
fn unknown_keys_are_refused_in_files_and_variables() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("typo.toml");
    std::fs::write(&file, "[store]\nprefx = \"x:\"\n")?;
    let out = newsrec(
        &["config", "show", "--config", file.to_str().context("path")?],
        &[],
    )?;
    ensure!(!out.status.success());
    ensure!(String::from_utf8_lossy(&out.stderr).contains("prefx"));
    let out = newsrec(&["config", "show"], &[("NEWSREC_SERVE__ADRR", "0.0.0.0:1")])?;
    ensure!(!out.status.success());
    let out = newsrec(&["config", "show"], &[("NEWSREC_SERVE__ADDR", "nowhere")])?;
    ensure!(!out.status.success());
    // Without brokers, commands that need Kafka say so instead of guessing one.
    let out = newsrec(&["consume"], &[])?;
    ensure!(!out.status.success());
    ensure!(
        String::from_utf8_lossy(&out.stderr).contains("no Kafka brokers"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}
