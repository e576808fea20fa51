//! Source maps: a release's maps uploaded to the agent (`thorbis-obs sourcemaps upload`, or
//! `POST /api/v1/sourcemaps`), kept in the store so every agent sharing it has them, parsed on
//! first use into a cache bounded in bytes, and used to turn a browser error's minified frames
//! into the developer's own ([`symbolicate`]).
//!
//! - `POST /api/v1/sourcemaps?release=R&url=~/_next/static/chunks/app/page-1a2b.js`, the map as
//!   the body (API token or an admin; at most `sourcemaps.max_map_bytes`, 16 MiB by default):
//!   parsed before it is stored (a body that is not a source map is 400 with the parser's
//!   reason), then stored under (release, url); uploading again replaces it. Audited.
//! - `GET /api/v1/sourcemaps?release=R`: what is stored (url, bytes, sources, debug id).
//! - `POST /api/v1/symbolicate` `{"release": R, "stack": "..."}`: the stack's frames as the
//!   developer wrote them (what the error pages show).
//!
//! A frame's script URL names its map by path: `https://app.example/_next/static/a.js?v=1` is
//! `~/_next/static/a.js`, which is what `--url-prefix "~/_next/static"` gives the CLI's
//! uploads. A map is looked up by the error's release and that name; a miss is remembered for a
//! minute, so an error storm without maps does not ask the store every time.
//!
//! Maps live in the store's records (kind `sourcemap`, and a small `sourcemap-index` row each
//! for listing), pruned `sourcemaps.retention` (90 days) after their upload. The parse is
//! getsentry's `sourcemap` crate (regular and indexed maps), on the blocking pool, two at once.

mod symbolicate;

pub use symbolicate::{map_key, source_path, symbolicate};

use crate::api::{Caller, error};
use crate::hub::{Component, Hub};
use crate::secret::Secret;
use crate::store::StoreError;
use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sourcemap::SourceMap;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use thorbis_obs_core::domain::errors::{StackFrame, SymbolicatedFrame, parse_stack};
use thorbis_obs_core::time::{HumanDuration, Timestamp};

/// The store's record kind of a map (its text) and of its index row.
const KIND: &str = "sourcemap";
const INDEX_KIND: &str = "sourcemap-index";
/// A map's debug id -> its release and URL (`{"release", "url"}`).
const DEBUG_ID_KIND: &str = "sourcemap-debug-id";
/// How long a lookup that found no map is remembered.
const MISS_TTL: Duration = Duration::from_secs(60);
/// Cache entries (maps and misses) at most, whatever their bytes.
const MAX_CACHE_ENTRIES: usize = 10_000;
/// Distinct scripts of one stack whose maps are looked up, at most: a real stack spans a few
/// chunks, and a hostile one naming a thousand scripts must not cost a thousand store reads.
pub const MAX_MAPS_PER_STACK: usize = 8;
/// A release name and a map's URL are at most this long.
const MAX_NAME: usize = 512;

/// `[sourcemaps]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceMapsSection {
    /// Accept uploads and symbolicate. Default true.
    pub enabled: bool,
    /// A map's size, at most. Default 16 MiB.
    pub max_map_bytes: usize,
    /// Parsed maps kept in memory, at most this many bytes of them (estimated as the map's
    /// size times [`PARSED_COST`]). Default 256 MiB.
    pub cache_bytes: usize,
    /// Maps are deleted this long after their upload. Default 90 days.
    pub retention: HumanDuration,
    /// Builds whose maps the agent reads itself when it starts (and on a config reload), as
    /// `thorbis-obs sourcemaps upload` would send them: for an agent deployed beside the app.
    pub directories: Vec<MapDirectory>,
}

/// `[[sourcemaps.directories]]`
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapDirectory {
    /// The build's directory of maps (`.next/static`); a relative path is read from the
    /// agent's working directory, as `agent.data_dir` is.
    pub path: String,
    /// The release its maps belong to (the SDK's `version`).
    pub release: String,
    /// What the directory stands for in the scripts' URLs. Default `~/_next/static`.
    #[serde(default = "default_url_prefix")]
    pub url_prefix: String,
}

fn default_url_prefix() -> String {
    "~/_next/static".into()
}

impl Default for SourceMapsSection {
    fn default() -> Self {
        SourceMapsSection {
            enabled: true,
            max_map_bytes: 16 << 20,
            cache_bytes: 256 << 20,
            retention: HumanDuration::from_secs(90 * 86_400),
            directories: Vec::new(),
        }
    }
}

/// The maps under `dir`, each with the `~/` name of the script it maps (`prefix` standing for
/// `dir`), as sentry-cli pairs them: a script's own `//# sourceMappingURL=` comment names its
/// map (Turbopack's chunk `2n4-wb0hc2ynj.js` points at `2vvbrv9rdvt0p.js.map`); a map no script
/// names is the map of the script its name gives (`chunks/main.js.map` for `chunks/main.js`,
/// webpack's way). With `~/_next/static`, `dir/chunks/app/page-1a2b.js` is
/// `~/_next/static/chunks/app/page-1a2b.js`. At most 10,000 maps, sorted; inline (`data:`) and
/// remote maps are left alone.
pub fn find_maps(dir: &std::path::Path, prefix: &str) -> std::io::Result<Vec<(std::path::PathBuf, String)>> {
    use std::collections::HashSet;
    use std::path::{Path, PathBuf};
    const MAX_FILES: usize = 200_000;
    let mut files = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d)? {
            let path = entry?.path();
            if path.is_dir() {
                todo.push(path);
            } else if files.len() < MAX_FILES {
                files.push(path);
            }
        }
    }
    let url_of = |script: &Path| {
        let rel = script.strip_prefix(dir).unwrap_or(script).to_string_lossy().replace('\\', "/");
        format!("{}/{rel}", prefix.trim_end_matches('/'))
    };
    let named = |p: &Path, ends: &[&str]| p.to_str().is_some_and(|n| ends.iter().any(|e| n.ends_with(e)));
    // script URL -> map
    let mut pairs: BTreeMap<String, PathBuf> = BTreeMap::new();
    let mut used: HashSet<PathBuf> = HashSet::new();
    for script in files.iter().filter(|p| named(p, &[".js", ".mjs", ".cjs"])) {
        let Some(reference) = source_mapping_url(script) else { continue };
        if reference.starts_with("data:") || reference.contains("://") {
            continue;
        }
        let reference = reference.split(['?', '#']).next().unwrap_or_default();
        let map = script.parent().unwrap_or(dir).join(reference);
        if map.is_file() && map.starts_with(dir) {
            used.insert(map.clone());
            pairs.insert(url_of(script), map);
        }
    }
    for map in files.iter().filter(|p| named(p, &[".js.map", ".mjs.map", ".cjs.map"]) && !used.contains(*p)) {
        let script = map.with_extension("");
        pairs.entry(url_of(&script)).or_insert_with(|| map.clone());
    }
    Ok(pairs.into_iter().take(10_000).map(|(url, map)| (map, url)).collect())
}

/// The `//# sourceMappingURL=` of a script: the last one in its last 4 KiB.
fn source_mapping_url(script: &std::path::Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(script).ok()?;
    let len = f.metadata().ok()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(4096))).ok()?;
    let mut tail = Vec::with_capacity(4096);
    f.take(4096).read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    let at = text.rfind("# sourceMappingURL=")?;
    let value = text[at + "# sourceMappingURL=".len()..].split_whitespace().next()?;
    (!value.is_empty()).then(|| value.to_string())
}

/// A parsed map costs about this many times its JSON's bytes (a 5.3 MB map held 9.4 MB once
/// parsed, 1.77 x, in `examples/sourcemap_bench.rs`; rounded up).
pub const PARSED_COST: usize = 2;

/// What is wrong with `[sourcemaps]`, as (path, problem).
pub fn problems(c: &SourceMapsSection) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if !((1 << 10)..=(256 << 20)).contains(&c.max_map_bytes) {
        out.push(("sourcemaps.max_map_bytes".into(), "between 1 KiB and 256 MiB".into()));
    }
    if c.cache_bytes < c.max_map_bytes * PARSED_COST {
        out.push(("sourcemaps.cache_bytes".into(), format!("at least {PARSED_COST} x max_map_bytes")));
    }
    if c.retention.get() < Duration::from_secs(3600) {
        out.push(("sourcemaps.retention".into(), "at least 1h".into()));
    }
    for (i, d) in c.directories.iter().enumerate() {
        if let Err(e) = check_name("release", &d.release) {
            out.push((format!("sourcemaps.directories[{i}].release"), e.to_string()));
        }
        if !d.url_prefix.starts_with('~') {
            out.push((
                format!("sourcemaps.directories[{i}].url_prefix"),
                "start it with ~ (the site's root), e.g. ~/_next/static".into(),
            ));
        }
        if !std::path::Path::new(&d.path).is_dir() {
            out.push((format!("sourcemaps.directories[{i}].path"), format!("{:?} is not a directory", d.path)));
        }
    }
    out
}

/// Why a map was not taken.
#[derive(Debug, thiserror::Error)]
pub enum SourceMapError {
    /// Over `max_map_bytes`.
    #[error("the source map is over {0} bytes (sourcemaps.max_map_bytes)")]
    TooLarge(usize),
    /// Not a source map.
    #[error("not a source map: {0}")]
    Invalid(String),
    /// A bad release or URL.
    #[error("{0}")]
    BadName(String),
    /// The store failed.
    #[error("cannot store the source map: {0}")]
    Store(#[from] StoreError),
}

/// What one stored map is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MapInfo {
    /// The release it belongs to.
    pub release: String,
    /// The script it maps, as `~/path`.
    pub url: String,
    /// Its JSON's size.
    pub bytes: usize,
    /// Original sources it names.
    pub sources: u32,
    /// Mappings.
    pub tokens: u32,
    /// The debug id it carries, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug_id: Option<String>,
    /// When it was uploaded.
    pub uploaded_at: Timestamp,
}

#[derive(Serialize, Deserialize)]
struct StoredMap {
    info: MapInfo,
    map: String,
}

/// Parses a source map (regular or indexed: an index is flattened).
pub fn parse(bytes: &[u8]) -> Result<SourceMap, SourceMapError> {
    let decoded = sourcemap::decode_slice(bytes).map_err(|e| SourceMapError::Invalid(e.to_string()))?;
    // An index map's debug id (Turbopack writes its maps so) is the flattened map's too.
    let debug_id = decoded.debug_id();
    let mut map = match decoded {
        sourcemap::DecodedMap::Regular(m) => m,
        sourcemap::DecodedMap::Index(i) => i.flatten().map_err(|e| SourceMapError::Invalid(e.to_string()))?,
        sourcemap::DecodedMap::Hermes(h) => (*h).clone(),
    };
    if map.get_debug_id().is_none() {
        map.set_debug_id(debug_id);
    }
    Ok(map)
}

fn check_name(what: &str, s: &str) -> Result<(), SourceMapError> {
    if s.is_empty() || s.len() > MAX_NAME || s.chars().any(char::is_control) {
        return Err(SourceMapError::BadName(format!("{what}: 1 to {MAX_NAME} bytes, no control characters")));
    }
    Ok(())
}

fn record_id(release: &str, url: &str) -> String {
    thorbis_obs_core::domain::hash::fingerprint_hex([release, url])
}

enum Entry {
    Map { map: Arc<SourceMap>, cost: usize, used: u64 },
    Missing { until: Instant },
}

#[derive(Default)]
struct Cache {
    entries: HashMap<(String, String), Entry>,
    bytes: usize,
    tick: u64,
}

impl Cache {
    fn get(&mut self, key: &(String, String)) -> Option<Option<Arc<SourceMap>>> {
        self.tick += 1;
        let tick = self.tick;
        match self.entries.get_mut(key)? {
            Entry::Map { map, used, .. } => {
                *used = tick;
                Some(Some(map.clone()))
            }
            Entry::Missing { until } if *until > Instant::now() => Some(None),
            Entry::Missing { .. } => None,
        }
    }

    fn put(&mut self, key: (String, String), entry: Entry, budget: usize) {
        if let Some(Entry::Map { cost, .. }) = self.entries.remove(&key) {
            self.bytes -= cost;
        }
        let cost = match &entry {
            Entry::Map { cost, .. } => *cost,
            Entry::Missing { .. } => 0,
        };
        // The least recently used maps make room; expired misses go first. Only when room is
        // needed: a sweep is O(entries), and a storm of misses must not pay one each.
        let full = |c: &Cache| c.bytes + cost > budget || c.entries.len() >= MAX_CACHE_ENTRIES;
        if full(self) {
            let now = Instant::now();
            self.entries.retain(|_, e| !matches!(e, Entry::Missing { until } if *until <= now));
        }
        while full(self) && !self.entries.is_empty() {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, e)| match e {
                    Entry::Map { used, .. } => *used,
                    Entry::Missing { .. } => 0,
                })
                .map(|(k, _)| k.clone());
            let Some(k) = oldest else { break };
            if let Some(Entry::Map { cost, .. }) = self.entries.remove(&k) {
                self.bytes -= cost;
            }
        }
        self.bytes += cost;
        self.entries.insert(key, entry);
    }
}

/// The source maps of every release; see the module docs.
pub struct SourceMaps {
    hub: Arc<Hub>,
    cfg: SourceMapsSection,
    api_token: Option<Secret>,
    cache: Mutex<Cache>,
    parsing: tokio::sync::Semaphore,
}

impl std::fmt::Debug for SourceMaps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceMaps").field("cached_bytes", &self.cached_bytes()).finish_non_exhaustive()
    }
}

impl SourceMaps {
    /// The maps of `hub`'s store, with `cfg`'s limits; uploads need `api_token` (or an admin
    /// the read gate let through).
    pub fn new(hub: Arc<Hub>, cfg: SourceMapsSection, api_token: Option<Secret>) -> Self {
        SourceMaps { hub, cfg, api_token, cache: Mutex::new(Cache::default()), parsing: tokio::sync::Semaphore::new(2) }
    }

    /// True unless `sourcemaps.enabled = false`.
    pub fn enabled(&self) -> bool {
        self.cfg.enabled
    }

    /// Bytes the cached maps are counted at.
    pub fn cached_bytes(&self) -> usize {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).bytes
    }

    async fn parse_off_thread(&self, bytes: Vec<u8>) -> Result<(SourceMap, Vec<u8>), SourceMapError> {
        let _permit = self.parsing.acquire().await.map_err(|e| SourceMapError::Invalid(e.to_string()))?;
        tokio::task::spawn_blocking(move || parse(&bytes).map(|m| (m, bytes)))
            .await
            .map_err(|e| SourceMapError::Invalid(format!("the parse failed: {e}")))?
    }

    /// Checks and stores the map of `url` (`~/path`) in `release`.
    pub async fn upload(&self, release: &str, url: &str, bytes: Vec<u8>) -> Result<MapInfo, SourceMapError> {
        check_name("release", release)?;
        check_name("url", url)?;
        let url = map_key(url).ok_or_else(|| {
            SourceMapError::BadName(format!(
                "url: {url:?} is not a script's URL or ~/path (e.g. ~/_next/static/chunks/a.js)"
            ))
        })?;
        if bytes.len() > self.cfg.max_map_bytes {
            return Err(SourceMapError::TooLarge(self.cfg.max_map_bytes));
        }
        let size = bytes.len();
        let (map, bytes) = self.parse_off_thread(bytes).await?;
        let text = String::from_utf8(bytes).map_err(|e| SourceMapError::Invalid(e.to_string()))?;
        let info = MapInfo {
            release: release.to_string(),
            url: url.clone(),
            bytes: size,
            sources: map.get_source_count(),
            tokens: map.get_token_count(),
            debug_id: map.get_debug_id().map(|d| d.to_string()),
            uploaded_at: self.hub.now(),
        };
        let id = record_id(release, &url);
        let index = serde_json::to_string(&info).map_err(|e| SourceMapError::Invalid(e.to_string()))?;
        let body = serde_json::to_string(&StoredMap { info: info.clone(), map: text })
            .map_err(|e| SourceMapError::Invalid(e.to_string()))?;
        let store = self.hub.store();
        store.save_record(KIND, &id, info.uploaded_at, &body).await?;
        store.save_record(INDEX_KIND, &id, info.uploaded_at, &index).await?;
        if let Some(debug_id) = &info.debug_id {
            let named = json!({ "release": release, "url": url }).to_string();
            store.save_record(DEBUG_ID_KIND, &debug_id.to_ascii_lowercase(), info.uploaded_at, &named).await?;
        }
        let key = (release.to_string(), url);
        let cost = size * PARSED_COST;
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).put(
            key,
            Entry::Map { map: Arc::new(map), cost, used: 0 },
            self.cfg.cache_bytes,
        );
        Ok(info)
    }

    /// The maps stored for `release` (every release when None), newest first, at most 10,000.
    pub async fn list(&self, release: Option<&str>) -> Result<Vec<MapInfo>, StoreError> {
        let rows = self.hub.store().records(INDEX_KIND, Timestamp(0), 10_000).await?;
        let mut out: Vec<MapInfo> = rows
            .iter()
            .filter_map(|r| serde_json::from_str::<MapInfo>(&r.body).ok())
            .filter(|i| release.is_none_or(|r| i.release == r))
            .collect();
        out.reverse();
        Ok(out)
    }

    /// The parsed map of `url` in `release`, from the cache or the store.
    async fn map(&self, release: &str, url: &str) -> Option<Arc<SourceMap>> {
        let key = (release.to_string(), url.to_string());
        if let Some(hit) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            return hit;
        }
        let found = match self.hub.store().record(KIND, &record_id(release, url)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, %release, %url, "cannot read a source map");
                return None;
            }
        };
        let parsed = match found.and_then(|r| serde_json::from_str::<StoredMap>(&r.body).ok()) {
            Some(s) => match self.parse_off_thread(s.map.into_bytes()).await {
                Ok((m, bytes)) => Some((Arc::new(m), bytes.len() * PARSED_COST)),
                Err(e) => {
                    tracing::warn!(error = %e, %release, %url, "a stored source map does not parse");
                    None
                }
            },
            None => None,
        };
        let entry = match &parsed {
            Some((map, cost)) => Entry::Map { map: map.clone(), cost: *cost, used: 0 },
            None => Entry::Missing { until: Instant::now() + MISS_TTL },
        };
        self.cache.lock().unwrap_or_else(PoisonError::into_inner).put(key, entry, self.cfg.cache_bytes);
        parsed.map(|(m, _)| m)
    }

    /// `frames` (innermost first) of an error in `release`, as the developer wrote them where a
    /// map covers them (the maps of the first [`MAX_MAPS_PER_STACK`] scripts it names).
    pub async fn symbolicate(&self, release: &str, frames: &[StackFrame]) -> Vec<SymbolicatedFrame> {
        self.symbolicate_with(release, frames, &BTreeMap::new()).await
    }

    /// [`SourceMaps::symbolicate`], a script whose debug id the page sent (`debug_ids`, by
    /// script URL) read with the map of that id, whatever its release; the others with
    /// `release`'s.
    pub async fn symbolicate_with(
        &self,
        release: &str,
        frames: &[StackFrame],
        debug_ids: &BTreeMap<String, String>,
    ) -> Vec<SymbolicatedFrame> {
        let by_key: HashMap<String, &str> =
            debug_ids.iter().filter_map(|(url, id)| Some((map_key(url)?, id.as_str()))).collect();
        let mut maps: HashMap<String, Arc<SourceMap>> = HashMap::new();
        let mut asked = std::collections::HashSet::new();
        for f in frames {
            let Some(key) = f.file.as_deref().and_then(map_key) else { continue };
            if asked.contains(&key) {
                continue;
            }
            if asked.len() == MAX_MAPS_PER_STACK {
                break;
            }
            asked.insert(key.clone());
            let found = match by_key.get(&key) {
                Some(id) => match self.named_by_debug_id(id).await {
                    Some((r, url)) => self.map(&r, &url).await,
                    None if !release.is_empty() => self.map(release, &key).await,
                    None => None,
                },
                None if !release.is_empty() => self.map(release, &key).await,
                None => None,
            };
            if let Some(m) = found {
                maps.insert(key, m);
            }
        }
        symbolicate(frames, |k| maps.get(k).map(|m| &**m))
    }

    /// The release and URL a map with debug id `id` was uploaded under.
    async fn named_by_debug_id(&self, id: &str) -> Option<(String, String)> {
        if !thorbis_obs_core::wire::is_debug_id(id) {
            return None;
        }
        let row = match self.hub.store().record(DEBUG_ID_KIND, &id.to_ascii_lowercase()).await {
            Ok(r) => r?,
            Err(e) => {
                tracing::warn!(error = %e, "cannot look a debug id up");
                return None;
            }
        };
        let v: serde_json::Value = serde_json::from_str(&row.body).ok()?;
        Some((v["release"].as_str()?.to_string(), v["url"].as_str()?.to_string()))
    }

    /// Deletes the maps uploaded before `before`.
    async fn prune(&self, before: Timestamp) -> Result<u64, StoreError> {
        let store = self.hub.store();
        let n = store.prune_records(KIND, before).await?;
        store.prune_records(INDEX_KIND, before).await?;
        store.prune_records(DEBUG_ID_KIND, before).await?;
        Ok(n)
    }
}

#[derive(Debug, Deserialize)]
struct UploadQuery {
    release: String,
    url: String,
}

async fn upload(
    State(s): State<Arc<SourceMaps>>,
    Query(q): Query<UploadQuery>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (who, bytes) = match caller.authorized_body(s.api_token.as_ref(), &headers, body, s.cfg.max_map_bytes).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s.upload(&q.release, &q.url, bytes.to_vec()).await {
        Ok(info) => {
            let detail = json!({ "release": info.release, "bytes": info.bytes, "debugId": info.debug_id });
            s.hub.audit(&who, &caller, "sourcemap.upload", &info.url, detail).await;
            axum::Json(info).into_response()
        }
        Err(SourceMapError::TooLarge(n)) => {
            error(StatusCode::PAYLOAD_TOO_LARGE, SourceMapError::TooLarge(n).to_string())
        }
        Err(e @ SourceMapError::Store(_)) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Err(e) => error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    release: Option<String>,
}

async fn list(State(s): State<Arc<SourceMaps>>, Query(q): Query<ListQuery>) -> Response {
    match s.list(q.release.as_deref()).await {
        Ok(maps) => axum::Json(json!({ "maps": maps })).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("cannot read the source maps: {e}")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SymbolicateBody {
    #[serde(default)]
    release: String,
    stack: String,
    /// Debug ids of the stack's scripts, by script URL (at most 8).
    #[serde(default, rename = "debugIds")]
    debug_ids: BTreeMap<String, String>,
}

/// A stack to symbolicate is at most this long.
const MAX_STACK_BODY: usize = 1 << 20;

async fn symbolicate_stack(
    State(s): State<Arc<SourceMaps>>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let bytes = match caller.authorized_body(s.api_token.as_ref(), &headers, body, MAX_STACK_BODY).await {
        Ok((_, b)) => b,
        Err(r) => return r,
    };
    let b: SymbolicateBody = match serde_json::from_slice(&bytes) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid body: {e}")),
    };
    if b.debug_ids.len() > thorbis_obs_core::wire::MAX_DEBUG_IDS {
        return error(StatusCode::BAD_REQUEST, "debugIds: at most 8, one per script");
    }
    let frames = parse_stack(&b.stack);
    axum::Json(json!({ "frames": s.symbolicate_with(&b.release, &frames, &b.debug_ids).await })).into_response()
}

impl SourceMaps {
    /// Stores the maps of a `[[sourcemaps.directories]]` entry, as an upload would.
    async fn read_directory(&self, d: &MapDirectory) {
        let (path, prefix) = (std::path::PathBuf::from(&d.path), d.url_prefix.clone());
        let found = tokio::task::spawn_blocking(move || find_maps(&path, &prefix)).await;
        let maps = match found {
            Ok(Ok(m)) => m,
            Ok(Err(e)) => return tracing::warn!(dir = %d.path, error = %e, "cannot read the source map directory"),
            Err(e) => return tracing::warn!(dir = %d.path, error = %e, "cannot read the source map directory"),
        };
        let (mut stored, mut refused) = (0, 0);
        for (file, url) in maps {
            let result = match tokio::fs::metadata(&file).await {
                Ok(m) if m.len() > self.cfg.max_map_bytes as u64 => {
                    Err(SourceMapError::TooLarge(self.cfg.max_map_bytes))
                }
                Ok(_) => match tokio::fs::read(&file).await {
                    Ok(bytes) => self.upload(&d.release, &url, bytes).await.map(|_| ()),
                    Err(e) => Err(SourceMapError::Invalid(e.to_string())),
                },
                Err(e) => Err(SourceMapError::Invalid(e.to_string())),
            };
            match result {
                Ok(()) => stored += 1,
                Err(e) => {
                    refused += 1;
                    tracing::warn!(file = %file.display(), error = %e, "a source map of the directory was not stored");
                }
            }
        }
        tracing::info!(dir = %d.path, release = %d.release, stored, refused, "source maps read from a directory");
    }
}

#[async_trait::async_trait]
impl Component for SourceMaps {
    fn name(&self) -> &'static str {
        "sourcemaps"
    }

    fn routes(self: Arc<Self>) -> Router {
        if !self.cfg.enabled {
            return Router::new();
        }
        Router::new()
            .route("/api/v1/sourcemaps", get(list).post(upload))
            .route("/api/v1/symbolicate", post(symbolicate_stack))
            .with_state(self)
    }

    async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        if !self.cfg.enabled {
            return;
        }
        for d in &self.cfg.directories {
            self.read_directory(d).await;
        }
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tokio::select! {
                _ = every.tick() => {}
                _ = stop.changed() => return,
            }
            let before = self.hub.now().minus(self.cfg.retention.get());
            match self.prune(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(maps = n, "source maps past their retention deleted"),
                Err(e) => tracing::warn!(error = %e, "cannot prune the source maps"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_map_keeps_its_debug_id_when_flattened() {
        let index = r#"{"version":3,"sources":[],"debugId":"a492fa2e-57dd-0136-883d-4c6e288985e4","sections":[
            {"offset":{"line":0,"column":0},"map":{"version":3,"sources":["turbopack:///[project]/app/a.js"],"names":[],"mappings":"AAAA"}}]}"#;
        let map = parse(index.as_bytes()).expect("an index map");
        assert_eq!(map.get_debug_id().map(|d| d.to_string()).as_deref(), Some("a492fa2e-57dd-0136-883d-4c6e288985e4"));
        assert_eq!(map.get_source_count(), 1);
    }

    #[test]
    fn maps_are_named_by_the_script_they_map() {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("chunks/app")).expect("dirs");
        std::fs::create_dir_all(dir.path().join("css")).expect("dirs");
        for f in ["chunks/app/page-1a2b.js.map", "chunks/main.js.map", "chunks/main.js", "css/a.css.map"] {
            std::fs::write(dir.path().join(f), "{}").expect("write");
        }
        let found: Vec<String> =
            find_maps(dir.path(), "~/_next/static/").expect("read").into_iter().map(|(_, u)| u).collect();
        assert_eq!(found, ["~/_next/static/chunks/app/page-1a2b.js", "~/_next/static/chunks/main.js"]);
        // Turbopack's way: the chunk's comment names a map of another name.
        std::fs::write(dir.path().join("chunks/2n4.js"), "x();\n//# sourceMappingURL=2vv.js.map").expect("write");
        std::fs::write(dir.path().join("chunks/2vv.js.map"), "{}").expect("write");
        std::fs::write(dir.path().join("chunks/inline.js"), "x();\n//# sourceMappingURL=data:application/json,{}")
            .expect("write");
        let found = find_maps(dir.path(), "~/_next/static").expect("read");
        let pair = found.iter().find(|(_, u)| u == "~/_next/static/chunks/2n4.js").expect("paired by its comment");
        assert!(pair.0.ends_with("chunks/2vv.js.map"), "{pair:?}");
        assert!(!found.iter().any(|(_, u)| u.ends_with("2vv.js")), "a map a script names is not paired by its name");
        assert_eq!(found.len(), 3);
    }

    fn entry(cost: usize) -> Entry {
        Entry::Map { map: Arc::new(sourcemap::SourceMapBuilder::new(None).into_sourcemap()), cost, used: 0 }
    }

    #[test]
    fn the_cache_keeps_its_budget_and_drops_the_least_recently_used() {
        let mut c = Cache::default();
        let key = |s: &str| ("1.0".to_string(), s.to_string());
        c.put(key("a"), entry(40), 100);
        c.put(key("b"), entry(40), 100);
        assert!(c.get(&key("a")).is_some_and(|m| m.is_some()), "a used last");
        c.put(key("c"), entry(40), 100);
        assert_eq!(c.bytes, 80);
        assert!(c.get(&key("b")).is_none(), "b, the least recently used, made room");
        assert!(c.get(&key("a")).is_some() && c.get(&key("c")).is_some());
        c.put(key("miss"), Entry::Missing { until: Instant::now() + MISS_TTL }, 100);
        assert_eq!(c.get(&key("miss")).map(|m| m.is_none()), Some(true), "a remembered miss");
        c.put(key("a"), entry(10), 100);
        assert_eq!(c.bytes, 50, "a replaced entry's bytes are given back");
        assert!(problems(&SourceMapsSection::default()).is_empty());
        let bad = SourceMapsSection { max_map_bytes: 1 << 30, cache_bytes: 1, ..Default::default() };
        assert_eq!(problems(&bad).len(), 2);
    }
}
