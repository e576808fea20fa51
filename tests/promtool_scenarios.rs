//! Runs every promtool-format scenario under tests/promtool: those at the top level must pass,
//! those under should_fail/ must fail with the mismatches reported.

use std::path::{Path, PathBuf};
use thorbis_obs_server::promtest::run_test_file;

fn test_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("tests/promtool exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".test.yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn scenarios_pass() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promtool");
    let files = test_files(&dir);
    assert!(!files.is_empty());
    let mut total = 0;
    for f in files {
        let o = run_test_file(&f);
        assert!(o.ok(), "{}:\n{}\n{}", f.display(), o.errors.join("\n"), o.failures.join("\n"));
        total += o.passed;
    }
    assert!(total >= 25, "only {total} alert tests ran");
}

#[test]
fn wrong_expectations_fail_with_a_diff() {
    let f = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promtool/should_fail/wrong_expectations.test.yaml");
    let o = run_test_file(&f);
    assert!(!o.ok());
    assert_eq!(o.failures.len(), 2, "{:?}", o.failures);
    assert!(o.failures[0].contains("time: 10m") && o.failures[0].contains("severity=\"warning\""), "{}", o.failures[0]);
    assert!(o.failures[1].contains("time: 50m") && o.failures[1].contains("got:[]"), "{}", o.failures[1]);
}

/// The quantile scenario's expectations are promtool's verdicts too: the same tests run with
/// `promtool test rules` (Debian's prometheus package, which the test command installs) on the
/// rules written in PromQL.
#[test]
fn quantile_verdicts_equal_promtool() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/promtool");
    let ours = run_test_file(&dir.join("quantiles.test.yaml"));
    assert!(ours.ok(), "{}\n{}", ours.errors.join("\n"), ours.failures.join("\n"));
    assert_eq!(ours.passed, 8);
    let tmp = std::env::temp_dir().join(format!("thorbis-promtool-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temp dir");
    std::fs::copy(dir.join("prometheus/quantiles.rules.yaml"), tmp.join("quantiles.rules.yaml")).expect("copy");
    let text = std::fs::read_to_string(dir.join("quantiles.test.yaml")).expect("read");
    let text = text.replace("rule_files: [quantiles.yaml]", "rule_files: [quantiles.rules.yaml]");
    assert!(text.contains("quantiles.rules.yaml"));
    std::fs::write(tmp.join("quantiles.test.yaml"), text).expect("write");
    let out = std::process::Command::new("promtool")
        .arg("test")
        .arg("rules")
        .arg(tmp.join("quantiles.test.yaml"))
        .output()
        .expect("promtool runs (bash scripts/test.sh installs Debian's prometheus)");
    let _ = std::fs::remove_dir_all(&tmp);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && said.contains("SUCCESS"), "promtool disagrees:\n{said}");
}
