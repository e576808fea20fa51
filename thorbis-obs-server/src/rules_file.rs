//! Loading rule files: YAML, TOML or JSON (by extension), with errors that carry
//! `file:line:column` and the field path.

use std::path::{Path, PathBuf};
use thorbis_obs_core::rules::{AlertRule, RuleError, RuleFile, ValidateOptions, validate_rules};

/// A problem with a rule file, located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown).
    pub column: usize,
    /// Field path, e.g. `rules[0].condition.operator`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for LocatedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:", self.file.display(), self.line)?;
        if self.column > 0 {
            write!(f, "{}:", self.column)?;
        }
        if self.path.is_empty() {
            write!(f, " {}", self.message)
        } else {
            write!(f, " {}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for LocatedError {}

/// Why a rule file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RuleFileError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}", file = file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The extension is not one we read.
    #[error("{file}: unknown rule file format; use .yaml, .yml, .toml or .json", file = file.display())]
    Format {
        /// The file.
        file: PathBuf,
    },
    /// Syntax, type or validation problems (every one found).
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<LocatedError>),
}

/// The file formats we read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// YAML.
    Yaml,
    /// TOML.
    Toml,
    /// JSON.
    Json,
}

impl Format {
    /// By file extension.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "yaml" | "yml" => Some(Format::Yaml),
            "toml" => Some(Format::Toml),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// Parses `text` as `T` in `format`, with the field path of any error and its line/column.
pub fn parse_located<T: serde::de::DeserializeOwned>(
    text: &str,
    format: Format,
    file: &Path,
) -> Result<T, LocatedError> {
    let located = |path: String, message: String, line: usize, column: usize| {
        // serde_yaml repeats the path at the start of its message.
        let message = match message.strip_prefix(&format!("{path}: ")) {
            Some(m) if !path.is_empty() => m.to_string(),
            _ => message,
        };
        LocatedError { file: file.to_path_buf(), line, column, path, message }
    };
    match format {
        Format::Yaml => {
            let de = serde_yaml_ng::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let (line, col) = inner.location().map(|l| (l.line(), l.column())).unwrap_or((0, 0));
                located(path, strip_location(&inner.to_string()), line, col)
            })
        }
        Format::Json => {
            let mut de = serde_json::Deserializer::from_str(text);
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let (line, col) = (inner.line(), inner.column());
                located(path, strip_location(&inner.to_string()), line, col)
            })
        }
        Format::Toml => {
            let de = toml::Deserializer::parse(text).map_err(|e| {
                let (line, col) = e.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
                located(String::new(), e.message().to_string(), line, col)
            })?;
            serde_path_to_error::deserialize(de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let (line, col) = inner.span().map(|s| line_col(text, s.start)).unwrap_or((0, 0));
                located(path, inner.message().to_string(), line, col)
            })
        }
    }
}

/// serde_yaml and serde_json append " at line L column C"; we print the location up front.
fn strip_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// 1-based line and column of byte offset `at`.
pub fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, column)
}

/// Reads and validates one rule file.
pub fn load_rule_file(path: &Path, opts: &ValidateOptions) -> Result<Vec<AlertRule>, RuleFileError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| RuleFileError::Io { file: path.to_path_buf(), source })?;
    parse_rule_text(&text, path, opts)
}

/// Parses and validates rule text read from `path` (its extension picks the format).
pub fn parse_rule_text(text: &str, path: &Path, opts: &ValidateOptions) -> Result<Vec<AlertRule>, RuleFileError> {
    let format = Format::from_path(path).ok_or_else(|| RuleFileError::Format { file: path.to_path_buf() })?;
    let file: RuleFile = parse_located(text, format, path).map_err(|e| RuleFileError::Invalid(vec![e]))?;
    validate_rules(&file.rules, opts).map_err(|errs| {
        let mut located: Vec<LocatedError> =
            errs.into_iter().map(|e| locate_rule_error(text, path, &file.rules, e)).collect();
        located.sort_by_key(|e| e.line);
        RuleFileError::Invalid(located)
    })?;
    Ok(file.rules)
}

/// Finds the line of a validation error: the rule's `id` line, then the first line after it
/// (and before the next rule) holding the path's last key, skipping to the n-th occurrence for
/// an indexed parent such as `escalation[1].after`.
fn locate_rule_error(text: &str, file: &Path, rules: &[AlertRule], e: RuleError) -> LocatedError {
    let lines: Vec<&str> = text.lines().collect();
    let has_key = |line: &str, key: &str| {
        let t = line.trim_start().trim_start_matches("- ").trim_start();
        t.starts_with(&format!("{key}:"))
            || t.starts_with(&format!("{key} ="))
            || t.starts_with(&format!("\"{key}\""))
            || t.contains(&format!("{{ {key}:"))
            || t.contains(&format!(", {key}:"))
            || t.contains(&format!("{{{key}:"))
            || t.contains(&format!("\"{key}\":"))
            || t.contains(&format!("{key} = "))
    };
    let id_line = |id: &str| lines.iter().position(|l| has_key(l, "id") && l.contains(id));
    let start = e.rule_id.as_deref().and_then(id_line).or_else(|| {
        // No usable id: the n-th `id` key.
        lines.iter().enumerate().filter(|(_, l)| has_key(l, "id")).nth(e.index).map(|(i, _)| i)
    });
    let end = rules.get(e.index + 1).and_then(|r| id_line(&r.id)).filter(|&n| Some(n) > start).unwrap_or(lines.len());
    let mut line = start.map(|s| s + 1).unwrap_or(0);
    if let Some(s) = start {
        let segs: Vec<&str> = e.path.split('.').skip(1).collect();
        if let Some(last) = segs.last() {
            let key = last.split('[').next().unwrap_or(last);
            let nth = segs
                .iter()
                .rev()
                .skip(1)
                .find_map(|seg| seg.split_once('[').and_then(|(_, i)| i.trim_end_matches(']').parse::<usize>().ok()))
                .unwrap_or(0);
            if let Some(i) = (s..end).filter(|&i| has_key(lines[i], key)).nth(nth) {
                line = i + 1;
            }
        }
    }
    LocatedError { file: file.to_path_buf(), line, column: 0, path: e.path, message: e.message }
}
