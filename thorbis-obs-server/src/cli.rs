//! The `thorbis-obs` command line.

use crate::promtest::run_test_file;
use crate::rules_file::load_rule_file;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use thorbis_obs_core::rules::{RuleFile, ValidateOptions, packs};

/// thorbis-obs: metrics, alert rules, probes and notifications for Thorbis Business OS.
#[derive(Debug, Parser)]
#[command(name = "thorbis-obs", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with alert rule files.
    #[command(subcommand)]
    Rules(RulesCommand),
}

/// `thorbis-obs rules ...`
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate rule files (YAML, TOML or JSON); errors name file:line and the field path.
    Check {
        /// Channel names rules may use (comma separated); unknown channels are errors.
        #[arg(long, value_delimiter = ',')]
        channels: Option<Vec<String>>,
        /// Rule files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Run promtool-style unit tests (`promtool test rules` format) against our rule files.
    Test {
        /// Test files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Print a built-in rule pack as YAML.
    Pack {
        /// Which pack.
        #[arg(value_enum, default_value = "all")]
        pack: Pack,
    },
}

/// Built-in rule packs.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Pack {
    /// The spec's five alert rules.
    Spec,
    /// The spec's database health rules.
    Database,
    /// Both.
    All,
}

/// Runs the CLI, writing to `out` and `err`; returns the process exit code.
pub fn run(cli: Cli, out: &mut dyn Write, err: &mut dyn Write) -> ExitCode {
    match cli.command {
        Command::Rules(RulesCommand::Check { channels, files }) => {
            let opts = ValidateOptions { known_channels: channels.map(|c| c.into_iter().collect()) };
            let mut failed = false;
            for f in &files {
                match load_rule_file(f, &opts) {
                    Ok(rules) => {
                        let _ = writeln!(out, "Checking {}\n  SUCCESS: {} rules found", f.display(), rules.len());
                    }
                    Err(e) => {
                        failed = true;
                        let _ = writeln!(err, "Checking {}\n  FAILED:\n{e}", f.display());
                    }
                }
            }
            if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
        Command::Rules(RulesCommand::Test { files }) => {
            let mut failed = false;
            for f in &files {
                let _ = writeln!(out, "Unit Testing:  {}", f.display());
                let o = run_test_file(f);
                if o.ok() {
                    let _ = writeln!(out, "  SUCCESS ({} alert tests)\n", o.passed);
                } else {
                    failed = true;
                    let _ = writeln!(out, "  FAILED:");
                    for e in o.errors.iter().chain(o.failures.iter()) {
                        let _ = writeln!(out, "{e}");
                    }
                    let _ = writeln!(out);
                }
            }
            if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
        }
        Command::Rules(RulesCommand::Pack { pack }) => {
            let rules = match pack {
                Pack::Spec => packs::spec_rules(),
                Pack::Database => packs::database_health_rules(),
                Pack::All => packs::all(),
            };
            match serde_yaml_ng::to_string(&RuleFile { rules }) {
                Ok(y) => {
                    let _ = write!(out, "{y}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    let _ = writeln!(err, "cannot render the pack: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
