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
