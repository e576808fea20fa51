//! The scrape itself: fetch with a deadline and a size bound, parse, relabel, label.

use super::{ScrapeConfig, anchored, text};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::time::Duration;
use thorbis_obs_core::metrics::{Labels, MAX_LABELS, Sample};
use thorbis_obs_core::time::Timestamp;
use thorbis_obs_core::{CollectError, MetricSource};

impl ScrapeConfig {
    /// Builds the source (after [`ScrapeConfig::problems`] found none).
    pub fn build(&self) -> Result<ScrapeSource, String> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| format!("url: {e}"))?;
        let instance = match (url.host_str(), url.port_or_known_default()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => return Err("url: no host".into()),
        };
        let interval = self.interval.get();
        let timeout = self.scrape_timeout.get().min(interval);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        let compile = |p: &Option<String>| p.as_deref().map(anchored).transpose().map_err(|e| e.to_string());
        Ok(ScrapeSource {
            name: self.name.clone(),
            url,
            instance,
            interval,
            timeout,
            keep: compile(&self.keep)?,
            drop: compile(&self.drop)?,
            extra: self.labels.clone(),
            sample_limit: self.sample_limit,
            body_limit: self.body_size_limit,
            client,
        })
    }
}

/// A configured scrape target.
#[derive(Debug)]
pub struct ScrapeSource {
    name: String,
    url: reqwest::Url,
    instance: String,
    interval: Duration,
    timeout: Duration,
    keep: Option<regex::Regex>,
    drop: Option<regex::Regex>,
    extra: BTreeMap<String, String>,
    sample_limit: usize,
    body_limit: usize,
    client: reqwest::Client,
}

/// What one scrape read: the samples to store and the counts Prometheus reports.
#[derive(Debug, Default)]
pub struct Scraped {
    /// Samples after relabelling, with `job` and `instance`.
    pub samples: Vec<Sample>,
    /// Sample lines in the exposition.
    pub scraped: usize,
    /// NaN or infinite values skipped.
    pub non_finite: usize,
    /// Lines naming a series already read in this exposition (the first is kept).
    pub duplicates: usize,
}

impl ScrapeSource {
    /// `job`, `instance` and the configured extra labels: on every series, `up` included.
    fn target_labels(&self) -> Labels {
        let mut l = Labels::new().with("job", self.name.clone()).with("instance", self.instance.clone());
        for (k, v) in &self.extra {
            l.insert(k.clone(), v.clone());
        }
        l
    }

    /// Reads one exposition into samples stamped `now`: relabelling, limits, the target labels.
    /// Fails whole on a malformed line or when more than `sample_limit` samples are kept.
    pub fn read(&self, body: &str, now: Timestamp) -> Result<Scraped, CollectError> {
        let mut out = Scraped::default();
        // Series read so far, by hash, to find a repeated line without cloning every series.
        let mut seen: HashMap<u64, Vec<usize>> = HashMap::new();
        let hasher = std::collections::hash_map::RandomState::new();
        let target = self.target_labels();
        text::parse(body, |s| {
            out.scraped += 1;
            if self.keep.as_ref().is_some_and(|k| !k.is_match(&s.name))
                || self.drop.as_ref().is_some_and(|d| d.is_match(&s.name))
            {
                return Ok(());
            }
            if !s.value.is_finite() {
                out.non_finite += 1;
                return Ok(());
            }
            if out.samples.len() >= self.sample_limit {
                return Err(format!("more than sample_limit = {} samples", self.sample_limit));
            }
            if s.labels.len() + target.len() > MAX_LABELS {
                return Err(format!(
                    "{} has {} labels, at most {MAX_LABELS} with the target's",
                    s.name,
                    s.labels.len()
                ));
            }
            let mut labels = Labels::new();
            for (k, v) in s.labels {
                match k.as_ref() {
                    "job" | "instance" => labels.insert(format!("exported_{k}"), v.into_owned()),
                    _ => labels.insert(k.into_owned(), v.into_owned()),
                }
            }
            for (k, v) in target.iter() {
                labels.insert(k, v);
            }
            let sample = Sample::new(s.name.into_owned(), labels, s.value, now);
            let same = seen.entry(hasher.hash_one((&sample.name, &sample.labels))).or_default();
            if same.iter().any(|&i| out.samples[i].name == sample.name && out.samples[i].labels == sample.labels) {
                out.duplicates += 1;
                return Ok(());
            }
            same.push(out.samples.len());
            out.samples.push(sample);
            Ok(())
        })
        .map_err(|e| CollectError::Failed(format!("{}: {e}", self.url)))?;
        Ok(out)
    }

    async fn fetch(&self) -> Result<String, CollectError> {
        let failed = |what: String| CollectError::Failed(format!("{}: {what}", self.url));
        let mut resp = self
            .client
            .get(self.url.clone())
            .header(
                reqwest::header::ACCEPT,
                "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1",
            )
            .header("X-Prometheus-Scrape-Timeout-Seconds", format!("{}", self.timeout.as_secs_f64()))
            .send()
            .await
            .map_err(
                |e| if e.is_timeout() { CollectError::Timeout(self.timeout) } else { failed(connect_error(&e)) },
            )?;
        if !resp.status().is_success() {
            return Err(failed(format!("HTTP {}", resp.status().as_u16())));
        }
        if resp.content_length().is_some_and(|n| n > self.body_limit as u64) {
            return Err(failed(format!("body over body_size_limit = {} bytes", self.body_limit)));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| {
            if e.is_timeout() { CollectError::Timeout(self.timeout) } else { failed("the body was cut off".into()) }
        })? {
            if body.len() + chunk.len() > self.body_limit {
                return Err(failed(format!("body over body_size_limit = {} bytes", self.body_limit)));
            }
            body.extend_from_slice(&chunk);
        }
        String::from_utf8(body)
            .map_err(|e| failed(format!("the body is not UTF-8 (byte {})", e.utf8_error().valid_up_to())))
    }

    fn health(&self, up: bool, took: f64, scraped: usize, kept: usize, now: Timestamp) -> Vec<Sample> {
        let l = self.target_labels();
        vec![
            Sample::new("up", l.clone(), if up { 1.0 } else { 0.0 }, now),
            Sample::new("scrape_duration_seconds", l.clone(), took, now),
            Sample::new("scrape_samples_scraped", l.clone(), scraped as f64, now),
            Sample::new("scrape_samples_post_metric_relabeling", l, kept as f64, now),
        ]
    }
}

/// A transport error's kind, without the URL (which may hold credentials).
fn connect_error(e: &reqwest::Error) -> String {
    if e.is_connect() { "connection failed".into() } else { "request failed".into() }
}

#[async_trait]
impl MetricSource for ScrapeSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn interval(&self) -> Duration {
        self.interval
    }

    fn timeout(&self) -> Duration {
        // The client's own timeout fires first; the scheduler's is the backstop.
        self.timeout + Duration::from_secs(1)
    }

    async fn collect(&self, now: Timestamp) -> Result<Vec<Sample>, CollectError> {
        let started = std::time::Instant::now();
        let body = self.fetch().await?;
        let mut scraped = self.read(&body, now)?;
        if scraped.non_finite > 0 || scraped.duplicates > 0 {
            tracing::debug!(source = %self.name, non_finite = scraped.non_finite, duplicates = scraped.duplicates, "samples skipped");
        }
        let kept = scraped.samples.len();
        let took = started.elapsed().as_secs_f64();
        scraped.samples.extend(self.health(true, took, scraped.scraped, kept, now));
        Ok(scraped.samples)
    }

    fn failure_samples(&self, now: Timestamp) -> Vec<Sample> {
        self.health(false, self.timeout.as_secs_f64().min(self.interval.as_secs_f64()), 0, 0, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::scrape::ScrapeConfig;

    fn source(extra: &str) -> ScrapeSource {
        let cfg: ScrapeConfig =
            toml::from_str(&format!("name = \"node\"\nurl = \"http://127.0.0.1:9100/metrics\"\n{extra}"))
                .expect("config");
        assert!(cfg.problems().is_empty(), "{:?}", cfg.problems());
        cfg.build().expect("builds")
    }

    #[test]
    fn relabels_as_prometheus_does() {
        let s = source("keep = \"node_.*|go_info\"\ndrop = \"node_cpu_.*\"\nlabels = { env = \"prod\" }");
        let body = "node_load1 0.5\nnode_cpu_seconds_total{cpu=\"0\"} 10\ngo_info{version=\"go1\",job=\"x\",instance=\"y\"} 1\nother 3\nnode_x NaN\nnode_load1 0.7\n";
        let r = s.read(body, Timestamp(1000)).expect("read");
        assert_eq!((r.scraped, r.non_finite, r.duplicates), (6, 1, 1));
        let names: Vec<_> = r.samples.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["node_load1", "go_info"]);
        assert_eq!(r.samples[0].value, 0.5, "the first of two duplicate lines is kept");
        let go = &r.samples[1].labels;
        assert_eq!(go.get("job"), Some("node"));
        assert_eq!(go.get("instance"), Some("127.0.0.1:9100"));
        assert_eq!(go.get("exported_job"), Some("x"));
        assert_eq!(go.get("exported_instance"), Some("y"));
        assert_eq!(go.get("env"), Some("prod"));
    }

    #[test]
    fn limits_fail_the_whole_scrape() {
        let s = source("sample_limit = 2");
        let e = s.read("a 1\nb 2\nc 3\n", Timestamp(0)).expect_err("over the limit");
        assert!(e.to_string().contains("line 3: more than sample_limit = 2"), "{e}");
        let e = source("").read("a 1\nb{ 2\n", Timestamp(0)).expect_err("malformed");
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
