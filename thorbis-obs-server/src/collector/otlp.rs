//! OTLP/HTTP export (feature `otlp`), with the opentelemetry crates: each closed window's samples
//! become OTLP gauges (delta temporality: every export carries that window only) and its error
//! groups become OTLP log records of severity ERROR, pushed to `<endpoint>/v1/metrics` and
//! `<endpoint>/v1/logs` (an OpenTelemetry collector, or a Datadog agent with OTLP ingest on).
//! The SDK's exporters block, so flushing runs on tokio's blocking pool.

use super::OtlpSection;
use opentelemetry::KeyValue;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::{Gauge, Meter, MeterProvider as _};
use opentelemetry_otlp::{LogExporter, MetricExporter, Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use thorbis_obs_core::Sample;
use thorbis_obs_core::rum::ErrorGroup;

/// The exporters and the gauges made so far.
pub struct Otlp {
    meters: SdkMeterProvider,
    meter: Meter,
    gauges: Mutex<HashMap<String, Gauge<f64>>>,
    logs: SdkLoggerProvider,
}

impl std::fmt::Debug for Otlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Otlp").finish_non_exhaustive()
    }
}

impl Otlp {
    /// Builds the exporters; errors name the problem, never a header's value.
    pub fn new(cfg: &OtlpSection) -> Result<Otlp, String> {
        let protocol = if cfg.protocol == "http/json" { Protocol::HttpJson } else { Protocol::HttpBinary };
        let headers: HashMap<String, String> =
            cfg.headers.iter().map(|(k, v)| (k.clone(), v.expose().to_string())).collect();
        let base = cfg.endpoint.trim_end_matches('/');
        let metrics = MetricExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .with_endpoint(format!("{base}/v1/metrics"))
            .with_headers(headers.clone())
            .with_timeout(Duration::from_secs(10))
            .with_temporality(Temporality::Delta)
            .build()
            .map_err(|e| format!("OTLP metrics exporter: {e}"))?;
        // Exports happen when a window closes (force_flush); the periodic timer is a backstop.
        let reader = PeriodicReader::builder(metrics).with_interval(Duration::from_secs(3600)).build();
        let resource = Resource::builder().with_service_name("thorbis-obs").build();
        let meters = SdkMeterProvider::builder().with_reader(reader).with_resource(resource.clone()).build();
        let logs = LogExporter::builder()
            .with_http()
            .with_protocol(protocol)
            .with_endpoint(format!("{base}/v1/logs"))
            .with_headers(headers)
            .with_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("OTLP logs exporter: {e}"))?;
        let logs = SdkLoggerProvider::builder().with_batch_exporter(logs).with_resource(resource).build();
        let meter = meters.meter("thorbis-obs");
        Ok(Otlp { meters, meter, gauges: Mutex::new(HashMap::new()), logs })
    }

    /// Records a closed window's samples and error groups, then exports them.
    pub async fn export(self: &Arc<Self>, samples: &[Sample], errors: &[ErrorGroup]) {
        {
            let mut gauges = self.gauges.lock().unwrap_or_else(PoisonError::into_inner);
            for s in samples {
                let g = gauges.entry(s.name.clone()).or_insert_with(|| self.meter.f64_gauge(s.name.clone()).build());
                let attrs: Vec<KeyValue> =
                    s.labels.iter().map(|(k, v)| KeyValue::new(k.to_string(), v.to_string())).collect();
                g.record(s.value, &attrs);
            }
        }
        let logger = self.logs.logger("thorbis-obs");
        for e in errors {
            let mut r = logger.create_log_record();
            r.set_severity_number(Severity::Error);
            r.set_severity_text("ERROR");
            r.set_body(AnyValue::from(e.message.clone()));
            r.add_attribute("error.fingerprint", e.fingerprint.clone());
            r.add_attribute("error.kind", e.kind.clone());
            r.add_attribute("error.count", e.count as i64);
            r.add_attribute("service.name", e.service.clone());
            r.add_attribute("deployment.environment", e.env.clone());
            r.add_attribute("url.route", e.route.clone());
            if let Some(stack) = &e.sample_stack {
                r.add_attribute("exception.stacktrace", stack.clone());
            }
            for (k, v) in &e.tags {
                r.add_attribute(format!("thorbis.{k}"), v.clone());
            }
            logger.emit(r);
        }
        let me = self.clone();
        let flushed = tokio::task::spawn_blocking(move || (me.meters.force_flush(), me.logs.force_flush())).await;
        match flushed {
            Ok((Ok(()), Ok(()))) => {}
            Ok((m, l)) => tracing::warn!(metrics = ?m.err(), logs = ?l.err(), "OTLP export failed"),
            Err(e) => tracing::warn!(error = %e, "OTLP export task failed"),
        }
    }
}
