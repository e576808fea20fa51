//! Running the `thorbis-obs` binary as a child process, for the crash and HA tests.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}

/// Writes `agent.toml` in `dir`: state under `dir/data`, evaluation every 500 ms, the listener
/// on loopback `port` (with `http_extra` lines in `[http]`), then `rest`. Returns its path.
pub fn config_file(dir: &Path, port: u16, http_extra: &str, rest: &str) -> std::path::PathBuf {
    let path = dir.join("agent.toml");
    let text = format!(
        "[agent]\ndata_dir = \"{}\"\nevaluation_interval = \"500ms\"\n[http]\nlisten = \"127.0.0.1:{port}\"\n{http_extra}{rest}",
        dir.join("data").display()
    );
    std::fs::write(&path, text).expect("the agent's config");
    path
}

/// The test rule these tests drive: `orders_failed` above 5 (max over `window`) is critical and
/// goes to the `hook` channel.
pub fn orders_failing_rule(window: &str) -> String {
    format!(
        r#"
[[rules.inline]]
id = "orders-failing"
name = "Orders Failing"
metric = "orders_failed"
severity = "critical"
channels = ["hook"]
[rules.inline.condition]
operator = "greater_than"
threshold = 5
duration = "{window}"
aggregation = "max"
"#
    )
}

/// Starts `thorbis-obs run --config FILE` with its output discarded.
pub fn spawn_agent(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_thorbis-obs"))
        .args(["run", "--config"])
        .arg(config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("agent starts")
}
