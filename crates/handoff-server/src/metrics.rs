//! Prometheus metrics: the process-wide recorder behind the `metrics`
//! facade, and the text rendered at `GET /metrics`.
//!
//! Code everywhere records through the facade (`metrics::counter!` …); this
//! module only installs the recorder (once per process) and renders it. The
//! HTTP metrics are recorded by the middleware in `api`, the audit metrics
//! by the engine's appender.

use crate::api::AppState;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Histogram buckets for durations, in seconds.
const SECONDS_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 30.0,
];

/// Histogram buckets for audit batch sizes (the appender commits up to 1024).
const BATCH_BUCKETS: [f64; 11] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// A handle to the installed Prometheus recorder. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Handle(PrometheusHandle);

impl Handle {
    /// The Prometheus text exposition of everything recorded so far.
    pub fn render(&self) -> String {
        self.0.run_upkeep();
        self.0.render()
    }
}

static HANDLE: OnceLock<Handle> = OnceLock::new();

/// Installs the global recorder on first call and returns its handle; later
/// calls (tests build many routers) return the same handle.
pub fn install() -> Handle {
    HANDLE.get_or_init(build).clone()
}

fn build() -> Handle {
    let builder = [
        (
            "handoff_http_request_duration_seconds",
            &SECONDS_BUCKETS[..],
        ),
        ("handoff_audit_commit_seconds", &SECONDS_BUCKETS[..]),
        ("handoff_audit_batch_size", &BATCH_BUCKETS[..]),
    ]
    .into_iter()
    .try_fold(PrometheusBuilder::new(), |b, (name, buckets)| {
        b.set_buckets_for_metric(Matcher::Full(name.to_owned()), buckets)
    });
    let builder = builder.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "histogram buckets rejected; histograms render as summaries");
        PrometheusBuilder::new()
    });
    let recorder = builder.build_recorder();
    let handle = recorder.handle();
    if let Err(e) = metrics::set_global_recorder(recorder) {
        // Someone else owns the facade: /metrics will show only what this
        // handle sees, which is nothing. Say so instead of failing start-up.
        tracing::warn!(error = %e, "a metrics recorder is already installed; /metrics will be empty");
    }
    Handle(handle)
}

/// Sets the audit gauges from the engine, then renders every metric; empty
/// when metrics are disabled in `state`.
pub fn render(state: &AppState) -> String {
    let Some(handle) = &state.metrics else {
        return String::new();
    };
    let appender = state.engine.appender();
    metrics::gauge!("handoff_audit_queue_depth").set(appender.queue_depth() as f64);
    metrics::gauge!("handoff_audit_head_seq").set(appender.head_seq() as f64);
    handle.render()
}
