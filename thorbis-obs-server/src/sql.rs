//! Configured SQL (the PostgreSQL probe's business queries, the dashboards' SQL widgets) run one
//! way: exactly one statement, sent with the extended protocol (prepared alone, so PostgreSQL
//! itself refuses a second statement: `SELECT 1; COMMIT; DELETE ...` cannot leave the
//! transaction), run as `SELECT row_to_json(q)::text FROM (<query>) q LIMIT n` inside the
//! caller's READ ONLY transaction with its timeouts (a data-modifying statement cannot be a
//! subquery, and the transaction could not write anyway). Values come back as JSON, so any
//! column type reads. A leaf: it imports nothing of this crate.
//!
//! [`second_statement`] finds a second statement before anything runs, so `config check` can
//! refuse it with its position. Hand-written: it only has to know where PostgreSQL's
//! statements end (quotes, dollar quotes, comments), which no maintained crate offers alone.

/// Where a second statement starts in `sql` (a byte offset), when it holds more than one.
/// Semicolons inside quotes, dollar quotes, quoted identifiers and comments do not count, nor
/// do trailing semicolons and comments.
pub fn second_statement(sql: &str) -> Option<usize> {
    let b = sql.as_bytes();
    let mut i = 0;
    let mut ended = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // Block comments nest in PostgreSQL.
                let mut depth = 0usize;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            b';' => {
                ended = true;
                i += 1;
                continue;
            }
            c if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            _ => {}
        }
        if ended {
            return Some(i);
        }
        match c {
            b'\'' => {
                // E'...' strings take backslash escapes; others double the quote.
                let escapes = i > 0 && matches!(b[i - 1], b'e' | b'E') && (i < 2 || !is_ident(b[i - 2]));
                i = past_quoted(b, i, b'\'', escapes);
            }
            b'"' => i = past_quoted(b, i, b'"', false),
            b'$' if i == 0 || !is_ident(b[i - 1]) => {
                // `$tag$ ... $tag$` (a tag of identifier characters, maybe empty); `$1` is a
                // parameter.
                let start = i;
                let mut j = i + 1;
                while j < b.len() && is_ident(b[j]) && !(j == i + 1 && b[j].is_ascii_digit()) {
                    j += 1;
                }
                if b.get(j) == Some(&b'$') {
                    let tag = &sql[start..=j];
                    match sql[j + 1..].find(tag) {
                        Some(k) => i = j + 1 + k + tag.len(),
                        None => i = b.len(),
                    }
                } else {
                    i = j;
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Where a string or quoted identifier opened by `quote` at `start` ends: a doubled quote is
/// part of it, and with `escapes` a backslash takes the next byte.
fn past_quoted(b: &[u8], start: usize, quote: u8, escapes: bool) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if escapes && b[i] == b'\\' {
            i += 2;
        } else if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    i
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// The rows of one query as JSON objects, with its column names.
#[cfg(feature = "postgres")]
#[derive(Debug, Default)]
pub struct JsonRows {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// At most the asked number of rows, each column by name.
    pub rows: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// Runs the configured statement `sql` inside `tx` (which the caller made READ ONLY, with its
/// statement and lock timeouts), at most `max_rows` rows. Errors are PostgreSQL's message, or
/// say why the statement was not run; they never carry a connection URL.
#[cfg(feature = "postgres")]
pub async fn query_json(tx: &tokio_postgres::Transaction<'_>, sql: &str, max_rows: usize) -> Result<JsonRows, String> {
    let db =
        |e: tokio_postgres::Error| e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string());
    let sql = sql.trim().trim_end_matches(';').trim();
    if let Some(at) = second_statement(sql) {
        return Err(format!("more than one statement: a second one starts at byte {at}"));
    }
    // Prepared alone: the extended protocol takes exactly one statement.
    let stmt = tx.prepare(sql).await.map_err(db)?;
    if stmt.columns().is_empty() {
        return Err("not a read-only query: it returns no rows (only SELECT and WITH ... SELECT run)".into());
    }
    let columns: Vec<String> = stmt.columns().iter().map(|c| c.name().to_string()).collect();
    let rows =
        tx.query(&format!("SELECT row_to_json(q)::text FROM ({sql}) q LIMIT {max_rows}"), &[]).await.map_err(db)?;
    let mut out = JsonRows { columns, rows: Vec::with_capacity(rows.len()) };
    for r in rows {
        let text: String = r.try_get(0).map_err(db)?;
        out.rows.push(serde_json::from_str(&text).map_err(|e| format!("unreadable row: {e}"))?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::second_statement;

    #[test]
    fn a_second_statement_is_found_outside_quotes_and_comments() {
        assert_eq!(second_statement("SELECT 1"), None);
        assert_eq!(second_statement("SELECT 1;"), None);
        assert_eq!(second_statement("SELECT 1; -- done\n ; /* and */"), None);
        assert_eq!(second_statement("SELECT ';' AS a, \"x;y\" FROM t WHERE b = 'it''s; fine'"), None);
        assert_eq!(second_statement("SELECT $$;$$, $tag$ ; $$ ; $tag$, $1"), None);
        assert_eq!(second_statement("SELECT E'\\'; still a string'"), None);
        assert_eq!(second_statement("SELECT 1 /* nested /* ; */ still ; */"), None);
        let sql = "SELECT count(*) FROM invoices; COMMIT; DELETE FROM invoices";
        assert_eq!(second_statement(sql), Some(sql.find("COMMIT").expect("there")));
        assert_eq!(second_statement("SELECT 1;DELETE FROM t"), Some(9));
        assert_eq!(second_statement("SELECT a$b FROM t; DROP TABLE t"), Some(19));
    }
}
