//! The JSON object printed at the end of a run.
//!
//! ```json
//! {"requests": 123456, "errors_non_2xx": 0, "errors_io": 0, "duration_secs": 10.0, "rps": 12345.6,
//!  "latency_us": {"p50": 70, "p90": 90, "p99": 150, "max": 2100, "mean": 75.3},
//!  "ttfb_us": {"p50": 60, "p99": 120},          // with --stream only
//!  "chunks_per_response": 23.0,                  // with --stream only
//!  "concurrency": 1, "total_requests_including_warmup": 150000,
//!  "status_counts": {"200": 123456}, "first_error": null}
//! ```
//!
//! `requests` counts responses of any status received in full; latencies cover 2xx responses
//! only. Percentiles are `null` when there were no 2xx responses.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

use crate::worker::Stats;

pub(crate) fn render(stats: &Stats, concurrency: usize, duration: Duration, stream: bool) -> Value {
    let seconds = duration.as_secs_f64();
    let mut report = json!({
        "requests": stats.requests,
        "errors_non_2xx": stats.errors_non_2xx,
        "errors_io": stats.errors_io,
        "duration_secs": seconds,
        "rps": round1(stats.requests as f64 / seconds),
        "latency_us": {
            "p50": quantile(&stats.latency, 0.50),
            "p90": quantile(&stats.latency, 0.90),
            "p99": quantile(&stats.latency, 0.99),
            "max": (!stats.latency.is_empty()).then(|| stats.latency.max()),
            "mean": (!stats.latency.is_empty()).then(|| round1(stats.latency.mean())),
        },
    });
    if let Value::Object(fields) = &mut report {
        if stream {
            fields.insert(
                "ttfb_us".to_owned(),
                json!({
                    "p50": quantile(&stats.ttfb, 0.50),
                    "p99": quantile(&stats.ttfb, 0.99),
                }),
            );
            let per_response =
                (stats.ok > 0).then(|| round1(stats.data_lines as f64 / stats.ok as f64));
            fields.insert("chunks_per_response".to_owned(), json!(per_response));
        }
        fields.insert("concurrency".to_owned(), json!(concurrency));
        fields.insert(
            "total_requests_including_warmup".to_owned(),
            json!(stats.total_requests),
        );
        let statuses: Map<String, Value> = stats
            .status_counts
            .iter()
            .map(|(status, count)| (status.to_string(), json!(count)))
            .collect();
        fields.insert("status_counts".to_owned(), Value::Object(statuses));
        fields.insert("first_error".to_owned(), json!(stats.first_error));
    }
    report
}

fn quantile(histogram: &Histogram<u64>, q: f64) -> Option<u64> {
    (!histogram.is_empty()).then(|| histogram.value_at_quantile(q))
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}
