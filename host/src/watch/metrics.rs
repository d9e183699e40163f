//! The Prometheus endpoint of `watch --metrics-addr`: `/metrics` in the
//! OpenMetrics text format (the Prometheus project's `prometheus-client`),
//! `/healthz` (the process answers) and `/readyz` (the first sync is done),
//! served by hyper. Label values come from the loaded rules, the severities
//! and the cluster's namespaces, never from pods, so the series stay bounded.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::Finding;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FindingLabels {
    cause: String,
    severity: String,
    namespace: String,
    rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PackLabels {
    pack: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// What a watch tells Prometheus.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    findings: Family<FindingLabels, Gauge>,
    pods: Gauge,
    diagnosed: Counter,
    pack_errors: Family<PackLabels, Counter>,
    watch_errors: Family<ResourceLabels, Counter>,
    events: Family<OutcomeLabels, Counter>,
    duration: Histogram,
    last_sync: Gauge<f64, AtomicU64>,
    ready: AtomicBool,
    /// Held while the findings are replaced and while they are encoded, so a
    /// scrape sees those of one diagnosis, never half of them.
    consistent: Mutex<()>,
}

impl Default for Metrics {
    fn default() -> Self {
        let (findings, pods, diagnosed) = (Family::default(), Gauge::default(), Counter::default());
        let (pack_errors, watch_errors, last_sync) = (Family::default(), Family::default(), Gauge::default());
        let events = Family::default();
        // 1 ms to about a minute
        let duration = Histogram::new(exponential_buckets(0.001, 4.0, 9));
        let mut registry = Registry::with_prefix("k8srule");
        registry.register("findings", "Findings now, by cause, severity, namespace and rule", findings.clone());
        registry.register("pods", "Pods watched", pods.clone());
        registry.register(
            "pods_diagnosed",
            "Pods diagnosed, each time it changed and at each resync",
            diagnosed.clone(),
        );
        registry.register("pack_errors", "Diagnoses in which a rule pack failed, by pack", pack_errors.clone());
        registry.register(
            "watch_errors",
            "Errors of the list and watch of a resource, which the watch retries",
            watch_errors.clone(),
        );
        registry.register(
            "events",
            "Kubernetes Events of --emit-events: written, dropped over --events-per-minute, or failed",
            events.clone(),
        );
        registry.register_with_unit(
            "diagnose_duration",
            "Time to diagnose the pods of one change or resync, reading their owners and logs included",
            Unit::Seconds,
            duration.clone(),
        );
        registry.register_with_unit(
            "last_sync_timestamp",
            "When the watched pods were last diagnosed (at least every --resync), since the Unix epoch",
            Unit::Seconds,
            last_sync.clone(),
        );
        Metrics {
            registry,
            findings,
            pods,
            diagnosed,
            pack_errors,
            watch_errors,
            events,
            duration,
            last_sync,
            ready: AtomicBool::new(false),
            consistent: Mutex::new(()),
        }
    }
}

impl Metrics {
    /// The pods of one change or resync were diagnosed: how many, how long it
    /// took, the packs that failed.
    pub(crate) fn diagnosed<'a>(&self, pods: usize, took: Duration, failed: impl Iterator<Item = &'a str>) {
        self.diagnosed.inc_by(pods as u64);
        self.duration.observe(took.as_secs_f64());
        for pack in failed {
            self.pack_errors.get_or_create(&PackLabels { pack: pack.to_string() }).inc();
        }
    }

    /// A list or watch of `resource` failed.
    pub(crate) fn watch_error(&self, resource: &str) {
        self.watch_errors.get_or_create(&ResourceLabels { resource: resource.to_string() }).inc();
    }

    /// An Event was `written`, `dropped` (over the rate limit) or `failed`.
    pub(crate) fn event(&self, outcome: &'static str) {
        self.events.get_or_create(&OutcomeLabels { outcome }).inc();
    }

    /// The watched pods were diagnosed: these are all the findings now.
    pub(crate) fn synced<'a>(&self, pods: usize, findings: impl Iterator<Item = &'a Finding>) {
        let mut counts: HashMap<FindingLabels, i64> = HashMap::new();
        for f in findings {
            let labels = FindingLabels {
                cause: f.cause.clone(),
                severity: f.severity.as_str().to_string(),
                namespace: f.subject().split_once('/').map_or("", |(ns, _)| ns).to_string(),
                rule: f.rule.clone(),
            };
            *counts.entry(labels).or_default() += 1;
        }
        let _held = self.consistent.lock().unwrap_or_else(PoisonError::into_inner);
        self.findings.clear();
        for (labels, n) in counts {
            self.findings.get_or_create(&labels).set(n);
        }
        self.pods.set(i64::try_from(pods).unwrap_or(i64::MAX));
        self.last_sync.set(jiff::Timestamp::now().as_millisecond() as f64 / 1000.0);
        self.ready.store(true, Ordering::Relaxed);
    }

    /// The answer to a request for `path`: its status, content type and body.
    fn answer(&self, method: &Method, path: &str) -> (StatusCode, &'static str, String) {
        const TEXT: &str = "text/plain; charset=utf-8";
        if method != Method::GET && method != Method::HEAD {
            return (StatusCode::METHOD_NOT_ALLOWED, TEXT, "only GET\n".into());
        }
        match path {
            "/metrics" => {
                let mut text = String::new();
                let encoded = {
                    let _held = self.consistent.lock().unwrap_or_else(PoisonError::into_inner);
                    prometheus_client::encoding::text::encode(&mut text, &self.registry)
                };
                match encoded {
                    Ok(()) => (StatusCode::OK, "application/openmetrics-text; version=1.0.0; charset=utf-8", text),
                    Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, TEXT, "cannot encode the metrics\n".into()),
                }
            }
            "/healthz" => (StatusCode::OK, TEXT, "ok\n".into()),
            "/readyz" if self.ready.load(Ordering::Relaxed) => (StatusCode::OK, TEXT, "ok\n".into()),
            "/readyz" => (StatusCode::SERVICE_UNAVAILABLE, TEXT, "not synced yet\n".into()),
            _ => (StatusCode::NOT_FOUND, TEXT, "not found; try /metrics, /healthz or /readyz\n".into()),
        }
    }
}

/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 16;

/// Serves `metrics` on `listener` until the runtime stops; each connection
/// has 10 seconds to send a request's headers and 60 seconds in all.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // out of file descriptors, say: try again a little later
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(|request: Request<hyper::body::Incoming>| {
                let (status, kind, body) = metrics.answer(request.method(), request.uri().path());
                let mut response = Response::new(Full::new(Bytes::from(body)));
                *response.status_mut() = status;
                response
                    .headers_mut()
                    .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static(kind));
                async move { Ok::<_, Infallible>(response) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(Duration::from_secs(60), connection).await;
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(m: &Metrics, path: &str) -> (StatusCode, String) {
        let (status, _, body) = m.answer(&Method::GET, path);
        (status, body)
    }

    #[test]
    fn ready_after_the_first_sync_and_findings_counted_without_pods() {
        let m = Metrics::default();
        assert_eq!(get(&m, "/readyz").0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(get(&m, "/healthz").0, StatusCode::OK);
        let finding = |pod: &str| Finding {
            rule: "crashloop.cgroup-oom".into(),
            cause: "cgroup-oom".into(),
            severity: crate::Severity::Error,
            confidence: 0.9,
            pod: Some(pod.into()),
            container: None,
            title: String::new(),
            evidence: Vec::new(),
            confirm: Vec::new(),
            fix: Vec::new(),
            explained_by: None,
            workload: None,
            node: None,
            pack: "builtin".into(),
            cluster: None,
            silenced: None,
            explains: Vec::new(),
        };
        let found = [finding("shop/web-1"), finding("shop/web-2")];
        m.synced(5, found.iter());
        assert_eq!(get(&m, "/readyz").0, StatusCode::OK);
        let (status, text) = get(&m, "/metrics");
        assert_eq!(status, StatusCode::OK);
        assert!(
            text.contains(
                "k8srule_findings{cause=\"cgroup-oom\",severity=\"error\",namespace=\"shop\",rule=\"crashloop.cgroup-oom\"} 2\n"
            ),
            "{text}"
        );
        assert!(text.contains("k8srule_pods 5\n") && !text.contains("web-1"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
        m.event("dropped");
        m.event("dropped");
        assert!(get(&m, "/metrics").1.contains("k8srule_events_total{outcome=\"dropped\"} 2\n"));
        m.synced(5, [].iter());
        assert!(!get(&m, "/metrics").1.contains("k8srule_findings{"));
        assert_eq!(m.answer(&Method::POST, "/metrics").0, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(get(&m, "/").0, StatusCode::NOT_FOUND);
    }
}
