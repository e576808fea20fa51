//! `thorbis-obs config check`: every kind of config error, with its path and message.

use std::process::Command;

fn check(toml: &str, env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("agent.toml");
    std::fs::write(&f, toml).expect("write");
    std::fs::write(dir.path().join("bad_rules.yaml"), "rules:\n  - id: x\n    name: X\n    metric: m\n    condition: { operator: sideways, threshold: 1, duration: 1m }\n    severity: info\n").expect("write");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_thorbis-obs"));
    cmd.args(["config", "check"]).arg(&f).env_remove("THORBIS_TEST_TOKEN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("runs");
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

const BASE: &str = "[channels.console]\ntype = \"console\"\n";

#[test]
fn a_good_config_passes_and_secrets_expand() {
    let cfg = format!(
        "{BASE}[channels.hook]\ntype = \"webhook\"\nurl = \"http://127.0.0.1:9/${{THORBIS_TEST_TOKEN}}\"\n[rules]\npacks = [\"spec\"]\n[channel_aliases]\nslack = \"console\"\nemail = \"hook\"\nsms = \"console\"\npagerduty = \"console\"\n"
    );
    let (ok, out) = check(&cfg, &[("THORBIS_TEST_TOKEN", "s3cr3t-value")]);
    assert!(ok, "{out}");
    assert!(out.contains("OK: 5 rules, 2 channels"), "{out}");
    assert!(!out.contains("s3cr3t-value"));
}

#[test]
fn every_kind_of_error_names_its_path() {
    let cases: &[(&str, &str, &[&str])] = &[
        ("missing webhook url", "[channels.hook]\ntype = \"webhook\"\n", &["channels.hook.url: missing field `url`"]),
        (
            "unset env var",
            "[channels.hook]\ntype = \"webhook\"\nurl = \"${THORBIS_TEST_TOKEN}\"\n",
            &["channels.hook.url: environment variable THORBIS_TEST_TOKEN is not set"],
        ),
        (
            "wrong type inside a channel",
            "[channels.pager]\ntype = \"pagerduty\"\nrouting_key = 42\n",
            &["channels.pager.routing_key: invalid type: integer `42`"],
        ),
        (
            "typo inside a channel",
            "[channels.chat]\ntype = \"slack\"\nwebhook_url = \"https://hooks.example/x\"\nchanel = \"#ops\"\n",
            &["channels.chat.chanel: unknown field `chanel`"],
        ),
        (
            "not a url",
            "[channels.hook]\ntype = \"webhook\"\nurl = \"ftp://x\"\n",
            &["channels.hook.url: must be an http:// or https:// URL"],
        ),
        (
            "unknown channel type",
            "[channels.teams]\ntype = \"teams\"\n",
            &["channels.teams.type: unknown channel type; types are console, webhook, slack, email, sms and pagerduty"],
        ),
        (
            "bad duration",
            "[agent]\nevaluation_interval = \"15 seconds\"\n",
            &["agent.evaluation_interval", "15 seconds"],
        ),
        (
            "zero interval",
            "[agent]\nevaluation_interval = \"0s\"\n",
            &["agent.evaluation_interval: must be longer than 0s"],
        ),
        ("unknown field", "[agent]\nevaluation_intervl = \"15s\"\n", &["unknown field `evaluation_intervl`"]),
        ("bad listen", "[http]\nlisten = \"localhost\"\n", &["http.listen: \"localhost\" is not an address"]),
        ("bad store", "[store]\nurl = \"mysql://x\"\n", &["store.url: must start with sqlite:"]),
        (
            "bad business database",
            "[agent]\nbusiness_database = \"sqlite:\"\n",
            &["agent.business_database: use postgres://... or sqlite:PATH"],
        ),
        (
            "alias to nothing",
            "[channel_aliases]\nslack = \"nowhere\"\n",
            &["channel_aliases.slack: points at \"nowhere\""],
        ),
        (
            "unknown pack",
            "[rules]\npacks = [\"spec\", \"kubernetes\"]\n",
            &["rules.packs[1]: unknown pack \"kubernetes\""],
        ),
        (
            "pack needs channels",
            "[rules]\npacks = [\"spec\"]\n",
            &["rules (high-response-time): rules[0].channels[0]: unknown channel \"slack\""],
        ),
        (
            "bad rule file",
            "[rules]\nfiles = [\"bad_rules.yaml\"]\n",
            &["rules.files[0]", "bad_rules.yaml:5:", "unknown variant `sideways`"],
        ),
        ("missing rule file", "[rules]\nfiles = [\"nope.yaml\"]\n", &["rules.files[0]", "nope.yaml: cannot read"]),
        (
            "inline rule",
            "[[rules.inline]]\nid = \"a\"\nname = \"A\"\nmetric = \"\"\nseverity = \"info\"\nchannels = [\"console\"]\n[rules.inline.condition]\noperator = \"greater_than\"\nthreshold = 1\nduration = \"1m\"\n",
            &["rules.inline[0].metric: must not be empty"],
        ),
        (
            "bad source",
            "[[sources]]\ntype = \"self\"\ninterval = \"0s\"\n",
            &["sources[0].interval: must be longer than 0s"],
        ),
        ("unknown source", "[[sources]]\ntype = \"snmp\"\n", &["sources", "unknown variant `snmp`"]),
        (
            "two statements in business SQL",
            "[[sources]]\ntype = \"postgres\"\nurl = \"postgres://x@127.0.0.1/db\"\n[[sources.business]]\nname = \"n\"\nsql = \"SELECT 1 AS n; COMMIT; DELETE FROM invoices\"\n",
            &["sources[0].business[0].sql: one statement only: a second one starts at byte 15"],
        ),
        (
            "bad collector",
            "[collector]\nwindow = \"0s\"\nallowed_origins = [\"app.example\"]\nclient_tokens = [\" \"]\n",
            &[
                "collector.window: between 1s and 1h",
                "collector.allowed_origins[0]: \"app.example\" is not an origin",
                "collector.client_tokens[0]: must not be empty",
            ],
        ),
        ("collector typo", "[collector]\nallowed_origin = []\n", &["unknown field `allowed_origin`"]),
        (
            "the old proxy switch",
            "[collector]\ntrust_forwarded_for = true\ntrusted_proxies = [\"10.0.0.0/8\", \"proxy.local\"]\n",
            &[
                "collector.trust_forwarded_for: replaced by trusted_proxies",
                "collector.trusted_proxies[1]: \"proxy.local\" is not an address or a CIDR",
            ],
        ),
        (
            "bad listener limits",
            "[http]\nhosts = []\nmax_connections = 0\nheader_read_timeout = \"0s\"\n",
            &[
                "http.hosts: at least one name",
                "http.max_connections: must be at least 1",
                "http.header_read_timeout: must be longer than 0s",
            ],
        ),
        (
            "bad otlp intake",
            "[otlp]\nlisten = \"nope\"\nmax_items_per_request = 0\nmax_body_bytes = 10\n",
            &[
                "otlp.listen: \"nope\" is not an address like 0.0.0.0:4318",
                "otlp.max_items_per_request: at least 1",
                "otlp.max_body_bytes: between 1 KiB and 64 MiB",
            ],
        ),
        (
            "bad otlp relay",
            "[otlp.forward]\nendpoint = \"tcp://user:hunter2@collector:4318\"\nconcurrency = 0\nheaders = { \"bad name\" = \"secret-v\" }\n",
            &[
                "otlp.forward.endpoint: \"tcp://collector:4318\" is not an http:// or https:// URL",
                "otlp.forward.concurrency: between 1 and 64",
                "otlp.forward.headers.bad name: not a valid header name",
            ],
        ),
        (
            "a lease shorter than two evaluations",
            "[store]\nleader_lease = \"20s\"\n",
            &["store.leader_lease: must be at least two evaluation intervals (30s)"],
        ),
        (
            "bad otlp",
            "[collector.otlp]\nendpoint = \"ftp://x\"\nprotocol = \"grpc\"\nheaders = { k = \"secret-v\" }\n",
            &["collector.otlp.endpoint: an http:// or https:// URL", "collector.otlp.protocol: \"grpc\""],
        ),
        (
            "bad maintenance window",
            "[[maintenance_windows]]\nname = \"w\"\n[maintenance_windows.weekly]\ndays = [\"sun\"]\nstart = \"02:00\"\nduration = \"2h\"\ntimezone = \"Mars/Base\"\n",
            &["maintenance_windows[0]", "unknown time zone \"Mars/Base\""],
        ),
    ];
    for (what, extra, wants) in cases {
        let (ok, out) = check(&format!("{BASE}{extra}"), &[]);
        assert!(!ok, "{what}: should fail\n{out}");
        for w in *wants {
            assert!(out.contains(w), "{what}: expected {w:?} in:\n{out}");
        }
    }
}

#[test]
fn several_problems_are_all_reported() {
    let (ok, out) = check(
        &format!("{BASE}[agent]\nevaluation_interval = \"0s\"\n[http]\nlisten = \"nope\"\n[rules]\npacks = [\"x\"]\n"),
        &[],
    );
    assert!(!ok);
    for w in ["agent.evaluation_interval", "http.listen", "rules.packs[0]"] {
        assert!(out.contains(w), "{w} missing in:\n{out}");
    }
}

#[test]
fn the_default_config_is_valid_and_printable() {
    let o = Command::new(env!("CARGO_BIN_EXE_thorbis-obs")).args(["config", "default"]).output().expect("runs");
    assert!(o.status.success());
    let (ok, out) = check(&String::from_utf8_lossy(&o.stdout), &[]);
    assert!(ok, "{out}");
    assert!(out.contains("OK: 31 rules, 1 channels, 2 sources, 1 uptime checks, 0 synthetic workflows"), "{out}");
}

#[test]
fn uptime_and_synthetic_errors_name_their_paths() {
    let cfg = format!(
        "{BASE}[uptime]\nsla_target = 120\n[uptime.locations.second]\n\
         [[uptime.checks]]\nid = \"api\"\nurl = \"ftp://x?token=s3cr3t-q\"\ninterval = \"0s\"\nexpect = {{ body_regex = \"(\", status = [\"6xx\"] }}\n\
         [[uptime.checks]]\nid = \"api\"\nurl = \"http://127.0.0.1/\"\nmaintenance = [{{ name = \"w\", weekly = {{ days = [\"sun\"], start = \"25:00\", duration = \"1h\", timezone = \"Mars/Base\" }} }}]\n\
         [[synthetic.workflows]]\nname = \"login flow\"\nsteps = []\n"
    );
    let (ok, out) = check(&cfg, &[]);
    assert!(!ok, "{out}");
    // The status class is a parse error, reported alone with its location.
    assert!(out.contains("6xx"), "{out}");
    let cfg = cfg.replace(", status = [\"6xx\"]", "");
    let (ok, out) = check(&cfg, &[]);
    assert!(!ok);
    for want in [
        "uptime.sla_target",
        "uptime.locations.second",
        "uptime.checks[0].url",
        "uptime.checks[0].interval",
        "uptime.checks[0]: expect.body_regex",
        "uptime.checks[1].id: \"api\" is used by another check",
        "uptime.checks[1].maintenance[0]",
        "synthetic.workflows[0].name",
        "synthetic.workflows[0].steps",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(!out.contains("s3cr3t-q"), "URLs are secrets: {out}");
}
