//! Error reports of a host app: [`ErrorReporter`] folds them per fingerprint until the agent
//! (in-process, or a remote one) takes them; [`ErrorLayer`] makes `tracing` ERROR events (and
//! events with an `error` field) into reports with the request's context; the panic hook makes
//! panics into reports.
//!
//! Written here rather than taken from sentry-tracing: that layer sends to Sentry's envelope
//! API, while these reports join the agent's error groups (core's [`ServerError`]) beside the
//! browser's, with the same business fingerprint and caps.
//!
//! What a report carries:
//! - the message (the event's message, then `: ` and the `error` field's `Display`), the error's
//!   type read off its `Debug` form (`ParseIntError { .. }` is `ParseIntError`, as sentry-rust
//!   does), its `source()` chain as `caused by:` lines and the event's module and file:line as the
//!   top frame, so one call site is one group;
//! - the spec's business fields `process`, `step`, `code` of the event (all three: the business
//!   fingerprint, exactly as the browser's business errors);
//! - tags: the event's other fields and the fields of the spans it happened in (innermost wins),
//!   at most [`MAX_TAGS`], values cut at 256 bytes; the route is a span's `http.route` or `route`
//!   field;
//! - breadcrumbs: the last [`MAX_REQUEST_BREADCRUMBS`] INFO and WARN events of the outermost span
//!   it happened in (the request's span), oldest first.
//!
//! Rate limit: reports are folded per fingerprint until the next drain (the agent drains every
//! second), so an error loop is one entry with its count, never one row per error; at most
//! [`MAX_PENDING`] fingerprints wait between drains, further new ones are counted in
//! [`ErrorReporter::dropped`].

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use thorbis_obs_core::domain::errors::truncate;
use thorbis_obs_core::rum::ServerError;
use thorbis_obs_core::wire::Breadcrumb;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{LookupSpan, SpanRef};

/// Fingerprints that wait between two drains, at most.
pub const MAX_PENDING: usize = 1_000;
/// Breadcrumbs a request's span keeps (its last INFO and WARN events).
pub const MAX_REQUEST_BREADCRUMBS: usize = 20;
/// Tags of one report, at most.
pub const MAX_TAGS: usize = 32;
/// Fields of one span kept for tags, at most.
const MAX_SPAN_FIELDS: usize = 16;
/// A tag value, a breadcrumb or a message part is cut to this many bytes.
const MAX_VALUE: usize = 256;
/// A message is cut to this many bytes.
const MAX_MESSAGE: usize = 4_096;
/// A stack (causes, backtrace) is cut to this many bytes.
const MAX_STACK: usize = 16 * 1024;
/// Fields that are the report itself, not tags.
const OWN_FIELDS: [&str; 8] =
    ["message", "error", "process", "step", "code", "business.process", "business.step", "business.code"];

fn cut(s: &str, max: usize) -> String {
    truncate(s, max).to_string()
}

#[derive(Debug)]
struct Shared {
    service: String,
    env: String,
    release: std::sync::OnceLock<String>,
    pending: Mutex<HashMap<String, ServerError>>,
    reported: AtomicU64,
    dropped: AtomicU64,
}

/// A host app's errors, folded per fingerprint until the agent drains them (see the module
/// docs). Give it to the embedded agent (`AgentBuilder::host_errors`) or to a
/// [`RemoteAgent`](super::RemoteAgent). Cheap to clone (one `Arc`).
#[derive(Clone, Debug)]
pub struct ErrorReporter {
    shared: Arc<Shared>,
}

impl ErrorReporter {
    /// Errors of service `service` in environment `env`.
    pub fn new(service: impl Into<String>, env: impl Into<String>) -> Self {
        ErrorReporter {
            shared: Arc::new(Shared {
                service: service.into(),
                env: env.into(),
                release: std::sync::OnceLock::new(),
                pending: Mutex::new(HashMap::new()),
                reported: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
            }),
        }
    }

    /// Tags every error with `release` (`env!("CARGO_PKG_VERSION")`, a git SHA): its error
    /// groups then know the release that brought them and the one they came back in. Set once;
    /// a second call is ignored.
    pub fn with_release(self, release: impl Into<String>) -> Self {
        let _ = self.shared.release.set(truncate(&release.into(), 128).to_string());
        self
    }

    /// The `tracing` layer that reports ERROR events: `registry().with(reporter.layer())`.
    pub fn layer(&self) -> ErrorLayer {
        ErrorLayer { reporter: self.clone() }
    }

    /// Reports one error (its service and env are the reporter's when empty; a `count` of 0 is
    /// 1). Folded into a waiting one of the same fingerprint, else kept for the next drain,
    /// else (over [`MAX_PENDING`]) counted as dropped.
    pub fn report(&self, mut e: ServerError) {
        let s = &self.shared;
        if e.service.is_empty() {
            e.service.clone_from(&s.service);
        }
        if e.env.is_empty() {
            e.env.clone_from(&s.env);
        }
        if let Some(r) = s.release.get() {
            e.tags.entry("release".to_string()).or_insert_with(|| r.clone());
        }
        let n = e.count.max(1);
        e.count = n;
        s.reported.fetch_add(n, Ordering::Relaxed);
        let fp = e.fingerprint();
        let mut pending = s.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(waiting) = pending.get_mut(&fp) {
            waiting.count = waiting.count.saturating_add(n);
        } else if pending.len() < MAX_PENDING {
            pending.insert(fp, e);
        } else {
            drop(pending);
            s.dropped.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Everything reported since the last drain, one entry per fingerprint with its count.
    pub fn drain(&self) -> Vec<ServerError> {
        let mut pending = self.shared.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.drain().map(|(_, e)| e).collect()
    }

    /// Errors reported so far (repeats included).
    pub fn reported(&self) -> u64 {
        self.shared.reported.load(Ordering::Relaxed)
    }

    /// Errors dropped so far because [`MAX_PENDING`] fingerprints were waiting.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Installs a panic hook that reports each panic (its message, location, the backtrace when
    /// `RUST_BACKTRACE` enables one, the current span's tags and breadcrumbs when the
    /// subscriber is a `tracing_subscriber` registry) and then runs the hook that was there
    /// before (the default one prints the panic).
    pub fn install_panic_hook(&self) {
        let previous = std::panic::take_hook();
        let reporter = self.clone();
        std::panic::set_hook(Box::new(move |info| {
            reporter.report(panic_error(info));
            previous(info);
        }));
    }
}

/// The report of a panic, with the context of the span it happened in.
fn panic_error(info: &std::panic::PanicHookInfo<'_>) -> ServerError {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "Box<dyn Any>".to_string());
    let mut stack = String::new();
    if let Some(l) = info.location() {
        let _ = write!(stack, "   0: panic\n             at {}:{}:{}\n", l.file(), l.line(), l.column());
    }
    let bt = std::backtrace::Backtrace::capture();
    if bt.status() == std::backtrace::BacktraceStatus::Captured {
        let _ = write!(stack, "{bt}");
    }
    let mut e = ServerError {
        exception_type: Some("panic".into()),
        message: cut(&message, MAX_MESSAGE),
        stack: Some(cut(&stack, MAX_STACK)),
        ..ServerError::default()
    };
    e.tags.insert("severity".into(), "FATAL".into());
    tracing::dispatcher::get_default(|d| {
        let Some(id) = d.current_span().id().cloned() else { return };
        let Some(registry) = d.downcast_ref::<tracing_subscriber::Registry>() else { return };
        if let Some(span) = registry.span(&id) {
            add_span_context(&mut e, &span);
        }
    });
    e
}

/// The component that drains an [`ErrorReporter`] into the agent's error groups every second
/// (and once more when the agent stops).
#[cfg(feature = "collector")]
pub(crate) struct ErrorFlush {
    reporter: ErrorReporter,
    sink: crate::hub::ErrorSink,
    hub: Arc<crate::hub::Hub>,
}

#[cfg(feature = "collector")]
impl ErrorFlush {
    pub(crate) fn new(reporter: ErrorReporter, sink: crate::hub::ErrorSink, hub: Arc<crate::hub::Hub>) -> Self {
        ErrorFlush { reporter, sink, hub }
    }

    fn flush(&self) {
        let errors = self.reporter.drain();
        if !errors.is_empty() {
            (self.sink)(&errors, self.hub.now());
        }
    }
}

#[cfg(feature = "collector")]
#[async_trait::async_trait]
impl crate::hub::Component for ErrorFlush {
    fn name(&self) -> &'static str {
        "host_errors"
    }

    async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.flush(),
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        self.flush();
    }
}

/// A span's fields kept for tags.
#[derive(Debug, Default)]
struct SpanFields(Vec<(&'static str, String)>);

impl Visit for SpanFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let v = cut(value, MAX_VALUE);
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| *k == field.name()) {
            slot.1 = v;
        } else if self.0.len() < MAX_SPAN_FIELDS {
            self.0.push((field.name(), v));
        }
    }
}

/// The breadcrumbs of a request's (the outermost) span.
#[derive(Debug, Default)]
struct Crumbs(VecDeque<Breadcrumb>);

/// What an event says: its message, its `error`, its business fields and its other fields.
#[derive(Default)]
struct EventFields {
    message: String,
    error: Option<(String, Option<String>, String)>,
    business: [Option<String>; 3],
    fields: Vec<(&'static str, String)>,
}

impl Visit for EventFields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        let slot = match field.name() {
            "message" => {
                self.message = cut(value, MAX_MESSAGE);
                return;
            }
            "process" | "business.process" => 0,
            "step" | "business.step" => 1,
            "code" | "business.code" => 2,
            name => {
                if self.fields.len() < MAX_TAGS {
                    self.fields.push((name, cut(value, MAX_VALUE)));
                }
                return;
            }
        };
        self.business[slot] = Some(cut(value, MAX_VALUE));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        if field.name() != "error" {
            self.record_str(field, &value.to_string());
            return;
        }
        // The type from the Debug form, as sentry-rust's `parse_type_from_debug`.
        let debug = format!("{value:?}");
        let ty = debug.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).next().unwrap_or_default();
        let ty = (!ty.is_empty() && ty.starts_with(|c: char| c.is_ascii_uppercase())).then(|| cut(ty, MAX_VALUE));
        let mut causes = String::new();
        let mut source = value.source();
        while let Some(s) = source {
            if causes.len() > MAX_STACK {
                break;
            }
            let _ = writeln!(causes, "caused by: {s}");
            source = s.source();
        }
        self.error = Some((cut(&value.to_string(), MAX_MESSAGE), ty, causes));
    }
}

/// Adds what the spans from `leaf` outwards say: fields as tags (innermost wins), the route,
/// the outermost span's breadcrumbs.
fn add_span_context<'a, R: LookupSpan<'a>>(e: &mut ServerError, leaf: &SpanRef<'a, R>) {
    for span in leaf.scope() {
        let ext = span.extensions();
        if let Some(fields) = ext.get::<SpanFields>() {
            for (k, v) in &fields.0 {
                if (*k == "http.route" || *k == "route") && e.route.is_empty() {
                    e.route.clone_from(v);
                } else if e.tags.len() < MAX_TAGS && !e.tags.contains_key(*k) {
                    e.tags.insert((*k).to_string(), v.clone());
                }
            }
        }
        if span.parent().is_none() {
            if let Some(c) = ext.get::<Crumbs>() {
                e.breadcrumbs = c.0.iter().cloned().collect();
            }
        }
    }
}

/// The `tracing` layer of an [`ErrorReporter`] (see the module docs). Add it to a
/// `tracing_subscriber` registry beside the host's formatter.
#[derive(Clone, Debug)]
pub struct ErrorLayer {
    reporter: ErrorReporter,
}

impl<S> tracing_subscriber::Layer<S> for ErrorLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &tracing::span::Attributes<'_>, id: &tracing::span::Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = SpanFields::default();
        attrs.record(&mut fields);
        let mut ext = span.extensions_mut();
        if !fields.0.is_empty() {
            ext.insert(fields);
        }
        if span.parent().is_none() {
            ext.insert(Crumbs::default());
        }
    }

    fn on_record(&self, id: &tracing::span::Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut ext = span.extensions_mut();
        if let Some(fields) = ext.get_mut::<SpanFields>() {
            values.record(fields);
        } else {
            let mut fields = SpanFields::default();
            values.record(&mut fields);
            ext.insert(fields);
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let level = *event.metadata().level();
        let crumb = level == Level::INFO || level == Level::WARN;
        if !crumb && level != Level::ERROR && !event.metadata().fields().iter().any(|f| f.name() == "error") {
            return;
        }
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let span = ctx.event_span(event);
        if fields.error.is_none() && level != Level::ERROR {
            // A breadcrumb of the request it happened in.
            let Some(root) = span.and_then(|s| s.scope().from_root().next()) else { return };
            let mut text = fields.message;
            let business = ["process", "step", "code"].into_iter().zip(&fields.business);
            for (k, v) in
                business.filter_map(|(k, v)| Some((k, v.as_ref()?))).chain(fields.fields.iter().map(|(k, v)| (*k, v)))
            {
                let _ = write!(text, " {k}={v}");
            }
            let b = Breadcrumb {
                at: crate::clock::system_now(),
                category: level.as_str().into(),
                message: cut(&text, MAX_VALUE),
            };
            if let Some(c) = root.extensions_mut().get_mut::<Crumbs>() {
                if c.0.len() == MAX_REQUEST_BREADCRUMBS {
                    c.0.pop_front();
                }
                c.0.push_back(b);
            }
            return;
        }
        let meta = event.metadata();
        let (message, exception_type, causes) = match fields.error {
            Some((err, ty, causes)) if fields.message.is_empty() => (err, ty, causes),
            Some((err, ty, causes)) => (cut(&format!("{}: {err}", fields.message), MAX_MESSAGE), ty, causes),
            None => (fields.message, None, String::new()),
        };
        // The call site as a Rust backtrace frame, so one place is one group.
        let mut stack = format!("   0: {}\n", meta.module_path().unwrap_or(meta.target()));
        if let (Some(file), Some(line)) = (meta.file(), meta.line()) {
            let _ = writeln!(stack, "             at {file}:{line}");
        }
        stack.push_str(&causes);
        let mut e = ServerError {
            exception_type,
            message: if message.is_empty() { "(no message)".into() } else { message },
            stack: Some(cut(&stack, MAX_STACK)),
            ..ServerError::default()
        };
        if let [Some(process), Some(step), Some(code)] = fields.business {
            e.business = Some([process, step, code]);
        }
        e.tags.insert("severity".into(), level.as_str().into());
        e.tags.insert("target".into(), cut(meta.target(), MAX_VALUE));
        for (k, v) in fields.fields {
            if e.tags.len() < MAX_TAGS && !OWN_FIELDS.contains(&k) {
                e.tags.insert(k.to_string(), v);
            }
        }
        if let Some(span) = span {
            add_span_context(&mut e, &span);
        }
        self.reporter.report(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Debug)]
    struct Declined {
        source: std::io::Error,
    }

    impl std::fmt::Display for Declined {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("card declined")
        }
    }

    impl std::error::Error for Declined {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn events_become_reports_with_their_request_s_context() {
        let reporter = ErrorReporter::new("api", "prod");
        let subscriber = tracing_subscriber::registry().with(reporter.layer());
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!("request", http.route = "/invoices/{id}", method = "POST");
            let _r = request.enter();
            for i in 0..25 {
                tracing::info!(step = i, "loaded");
            }
            tracing::debug!("not a breadcrumb");
            let inner = tracing::info_span!("charge", invoice = 42, method = "card");
            let _i = inner.enter();
            tracing::warn!("retrying");
            tracing::error!(process = "invoicing", step = "charge", code = "E42", invoice = 42, "charge failed");
            let e = Declined { source: std::io::Error::other("gateway timeout") };
            tracing::warn!(error = &e as &dyn std::error::Error, "payment");
        });
        // Outside any span: no breadcrumbs kept, still a report.
        let mut got = reporter.drain();
        got.sort_by(|a, b| a.message.cmp(&b.message));
        assert_eq!(got.len(), 2, "{got:?}");
        let business = &got[0];
        assert_eq!(business.message, "charge failed");
        assert_eq!(business.business.as_ref().map(|b| b[2].as_str()), Some("E42"));
        assert_eq!(business.route, "/invoices/{id}");
        assert_eq!(business.tags.get("invoice").map(String::as_str), Some("42"));
        assert_eq!(business.tags.get("method").map(String::as_str), Some("card"), "innermost span wins");
        assert_eq!(business.tags.get("severity").map(String::as_str), Some("ERROR"));
        assert!(!business.tags.contains_key("code"), "business fields are not tags");
        assert_eq!(business.breadcrumbs.len(), MAX_REQUEST_BREADCRUMBS);
        assert_eq!(business.breadcrumbs.last().map(|b| b.message.as_str()), Some("retrying"));
        assert_eq!(business.breadcrumbs.first().map(|b| b.message.as_str()), Some("loaded step=6"));
        let payment = &got[1];
        assert_eq!(payment.message, "payment: card declined");
        assert_eq!(payment.exception_type.as_deref(), Some("Declined"));
        assert!(payment.stack.as_deref().is_some_and(|s| s.contains("caused by: gateway timeout")), "{payment:?}");
        assert_eq!(payment.tags.get("severity").map(String::as_str), Some("WARN"));
    }

    #[test]
    fn a_loop_of_one_error_is_one_report_with_its_count_and_new_ones_are_capped() {
        let reporter = ErrorReporter::new("api", "prod");
        let subscriber = tracing_subscriber::registry().with(reporter.layer());
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..10_000 {
                tracing::error!(attempt = i, "queue consumer failed");
            }
            // Messages are normalised (numbers), business codes are not: distinct groups.
            for i in 0..MAX_PENDING + 5 {
                tracing::error!(process = "p", step = "s", code = i, "distinct");
            }
        });
        let got = reporter.drain();
        assert_eq!(got.len(), MAX_PENDING);
        let looped = got.iter().find(|e| e.message == "queue consumer failed").expect("the loop");
        assert_eq!(looped.count, 10_000);
        assert_eq!((reporter.reported(), reporter.dropped()), (10_000 + MAX_PENDING as u64 + 5, 6));
        assert!(reporter.drain().is_empty(), "drained");
    }
}
