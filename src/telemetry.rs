//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`): the
//! host installs the recorder and exporter it uses; without the feature every function here
//! is empty and compiles away.
//!
//! Every metric, its labels and where it is recorded (the README lists them too):
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `fulfillkit_exports_total` | counter | `instance`, `outcome` (`exported`, `already_exported`, `suspended`, `in_progress`, `failed`, `refused`) |
//! | `fulfillkit_provider_calls_total` | counter | `instance`, `operation` (`create_order`, `update_order`, `cancel_order`, `track`, `stock`, `search_addresses`), `outcome` (`ok` or the error kind) |
//! | `fulfillkit_provider_call_duration_seconds` | histogram | `instance`, `operation` |
//! | `fulfillkit_http_requests_total` | counter | `provider`, `instance`, `endpoint`, `status` (the HTTP status, or `timeout`, `connect`, `dropped`) |
//! | `fulfillkit_http_request_duration_seconds` | histogram | `provider`, `instance`, `endpoint` |
//! | `fulfillkit_http_retries_total` | counter | `provider`, `instance`, `endpoint` |
//! | `fulfillkit_rate_limit_wait_seconds` | histogram | `provider`, `instance` |
//! | `fulfillkit_tracking_polled_total` | counter | `instance` |
//! | `fulfillkit_tracking_lag_seconds` | histogram | `instance` — how long after it was due a shipment was polled |
//! | `fulfillkit_status_changes_total` | counter | `instance`, `code` |
//! | `fulfillkit_exceptions_raised_total` | counter | `instance`, `reason` |
//! | `fulfillkit_exceptions_resolved_total` | counter | `instance`, `action` |
//! | `fulfillkit_events_emitted_total` | counter | `kind` |
//!
//! Open exceptions are `raised − resolved` summed over every process of the host: a gauge
//! kept by one process would be wrong after a restart or beside a second replica.

#[cfg(feature = "metrics")]
mod enabled {
    use std::time::Duration;

    fn owned(text: &str) -> String {
        text.to_owned()
    }

    pub(crate) fn export(instance: &str, outcome: &'static str) {
        metrics::counter!("fulfillkit_exports_total", "instance" => owned(instance), "outcome" => outcome)
            .increment(1);
    }

    pub(crate) fn provider_call(
        instance: &str,
        operation: &'static str,
        outcome: &'static str,
        took: Duration,
    ) {
        metrics::counter!(
            "fulfillkit_provider_calls_total",
            "instance" => owned(instance),
            "operation" => operation,
            "outcome" => outcome
        )
        .increment(1);
        metrics::histogram!(
            "fulfillkit_provider_call_duration_seconds",
            "instance" => owned(instance),
            "operation" => operation
        )
        .record(took.as_secs_f64());
    }

    pub(crate) fn http_request(
        provider: &str,
        instance: &str,
        endpoint: &str,
        status: String,
        took: Duration,
    ) {
        metrics::counter!(
            "fulfillkit_http_requests_total",
            "provider" => owned(provider),
            "instance" => owned(instance),
            "endpoint" => owned(endpoint),
            "status" => status
        )
        .increment(1);
        metrics::histogram!(
            "fulfillkit_http_request_duration_seconds",
            "provider" => owned(provider),
            "instance" => owned(instance),
            "endpoint" => owned(endpoint)
        )
        .record(took.as_secs_f64());
    }

    pub(crate) fn http_retry(provider: &str, instance: &str, endpoint: &str) {
        metrics::counter!(
            "fulfillkit_http_retries_total",
            "provider" => owned(provider),
            "instance" => owned(instance),
            "endpoint" => owned(endpoint)
        )
        .increment(1);
    }

    pub(crate) fn rate_limit_wait(provider: &str, instance: &str, waited: Duration) {
        metrics::histogram!(
            "fulfillkit_rate_limit_wait_seconds",
            "provider" => owned(provider),
            "instance" => owned(instance)
        )
        .record(waited.as_secs_f64());
    }

    pub(crate) fn tracking_polled(instance: &str, shipments: usize) {
        metrics::counter!("fulfillkit_tracking_polled_total", "instance" => owned(instance))
            .increment(shipments as u64);
    }

    pub(crate) fn tracking_lag(instance: &str, lag: Duration) {
        metrics::histogram!("fulfillkit_tracking_lag_seconds", "instance" => owned(instance))
            .record(lag.as_secs_f64());
    }

    pub(crate) fn status_change(instance: &str, code: &'static str) {
        metrics::counter!(
            "fulfillkit_status_changes_total",
            "instance" => owned(instance),
            "code" => code
        )
        .increment(1);
    }

    pub(crate) fn exception_raised(instance: &str, reason: &'static str) {
        metrics::counter!(
            "fulfillkit_exceptions_raised_total",
            "instance" => owned(instance),
            "reason" => reason
        )
        .increment(1);
    }

    pub(crate) fn exception_resolved(instance: &str, action: &'static str) {
        metrics::counter!(
            "fulfillkit_exceptions_resolved_total",
            "instance" => owned(instance),
            "action" => action
        )
        .increment(1);
    }

    pub(crate) fn event_emitted(kind: &'static str) {
        metrics::counter!("fulfillkit_events_emitted_total", "kind" => kind).increment(1);
    }
}

#[cfg(not(feature = "metrics"))]
mod enabled {
    use std::time::Duration;

    pub(crate) fn export(_: &str, _: &'static str) {}
    pub(crate) fn provider_call(_: &str, _: &'static str, _: &'static str, _: Duration) {}
    pub(crate) fn http_request(_: &str, _: &str, _: &str, _: String, _: Duration) {}
    pub(crate) fn http_retry(_: &str, _: &str, _: &str) {}
    pub(crate) fn rate_limit_wait(_: &str, _: &str, _: Duration) {}
    pub(crate) fn tracking_polled(_: &str, _: usize) {}
    pub(crate) fn tracking_lag(_: &str, _: Duration) {}
    pub(crate) fn status_change(_: &str, _: &'static str) {}
    pub(crate) fn exception_raised(_: &str, _: &'static str) {}
    pub(crate) fn exception_resolved(_: &str, _: &'static str) {}
    pub(crate) fn event_emitted(_: &'static str) {}
}

pub(crate) use enabled::*;

/// Whether metrics are compiled in: labels that cost a `format!` are built only then.
pub(crate) const ENABLED: bool = cfg!(feature = "metrics");
