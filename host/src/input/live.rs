//! Live clusters: reads pods, their events, nodes and what the rules need from
//! the Kubernetes API into a [`Snapshot`]. Each kind is listed once (500 a
//! page), never one request per pod. k8srule only gets, lists and watches; the
//! one write is the opt-in Event of `watch --emit-events` ([`crate::watch`]).

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Event, Node, Pod, ReplicationController};
use kube::api::{ListParams, LogParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, Resource};
use serde_json::Value;

use crate::Snapshot;
use crate::input::Needs;
use crate::input::fields::Fields;
use crate::input::redact::Redactor;
use crate::input::snapshot::{LogKey, MAX_LOG_LINES, OWNER_KINDS, Section};

/// How container logs are read from a cluster (`pods/log`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogBounds {
    /// `tailLines` of each request.
    pub tail_lines: i64,
    /// `limitBytes` of each request.
    pub limit_bytes: i64,
    /// Requests in flight at once.
    pub in_flight: usize,
}

impl Default for LogBounds {
    fn default() -> Self {
        LogBounds { tail_lines: MAX_LOG_LINES as i64, limit_bytes: 1 << 20, in_flight: 8 }
    }
}

/// Objects asked for per list request.
pub const PAGE_SIZE: u32 = 500;

/// Which cluster and which pods: the kubectl flags.
#[derive(Debug, Clone, Default)]
pub struct Target {
    /// A kubeconfig file instead of `$KUBECONFIG` or `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// A context of the kubeconfig instead of its current one.
    pub context: Option<String>,
    /// The namespace (default: the context's, or the pod's in a cluster).
    pub namespace: Option<String>,
    pub all_namespaces: bool,
    /// A label selector for the pods.
    pub selector: Option<String>,
    /// One pod by name: only it and its events are listed (field selectors).
    pub pod: Option<String>,
}

/// A cluster that cannot be used; the CLI exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// No kubeconfig, a context that does not exist, a broken in-cluster setup.
    #[error("{0}")]
    Config(String),
    /// The API server cannot be reached, or the connection broke.
    #[error("cannot reach the cluster at {url}: {message}")]
    #[allow(missing_docs)]
    Connect { url: String, message: String },
    /// The API server refused a request that k8srule cannot do without.
    #[error("cannot {what}: {message}")]
    #[allow(missing_docs)]
    Api { what: String, message: String },
}

/// A connected client and the pods to read.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
    url: String,
    /// The namespace read; `None` is all namespaces.
    pub namespace: Option<String>,
    pub selector: Option<String>,
    /// One pod by name, when only it is read.
    pub pod: Option<String>,
}

/// What a list gave: the objects, or the server's reason for refusing it.
pub(crate) enum Listed {
    Items(Vec<Value>),
    Refused(String),
}

impl Cluster {
    /// Loads the kubeconfig (or the in-cluster service account) and makes a client.
    /// Nothing is requested yet.
    pub async fn connect(target: &Target) -> Result<Cluster, LiveError> {
        let config = load_config(target).await?;
        let namespace = match (&target.namespace, target.all_namespaces) {
            (_, true) => None,
            (Some(ns), false) => Some(ns.clone()),
            (None, false) => Some(config.default_namespace.clone()),
        };
        let url = config.cluster_url.to_string().trim_end_matches('/').to_string();
        let client = Client::try_from(config)
            .map_err(|e| LiveError::Config(format!("cannot make a client for {url}: {}", cause(&e))))?;
        let selector = target.selector.clone().filter(|s| !s.trim().is_empty());
        let pod = target.pod.clone();
        Ok(Cluster { client, url, namespace, selector, pod })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `namespace shop` or `all namespaces`, for messages.
    pub fn scope(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("namespace {ns}"),
            None => "all namespaces".into(),
        }
    }

    /// Whether the read pods include every kube-system control-plane pod.
    pub(crate) fn sees_control_plane(&self) -> bool {
        self.selector.is_none() && self.pod.is_none() && self.namespace.as_deref().is_none_or(|ns| ns == "kube-system")
    }

    /// Reads the pods and what `needs` names into a snapshot at `now`,
    /// keeping `fields` of each object. A list the server forbids (nodes, say)
    /// becomes a note; the pods must be readable. Each kind is stored as soon
    /// as it is listed, so only one kind is held as JSON values at a time.
    /// `progress` gets the kind being listed and the objects read so far.
    pub async fn snapshot(
        &self,
        needs: Needs,
        now: i64,
        fields: Fields,
        progress: &mut dyn FnMut(&str, usize),
    ) -> Result<Snapshot, LiveError> {
        let mut snapshot = Snapshot::new(now).keeping(fields);
        let ns = self.namespace.as_deref();
        let mut pods_lp = ListParams::default();
        if let Some(sel) = &self.selector {
            pods_lp = pods_lp.labels(sel);
        }
        if let Some(pod) = &self.pod {
            pods_lp = pods_lp.fields(&format!("metadata.name={pod}"));
        }
        let pods = match self.list::<Pod>(ns, &pods_lp, progress).await? {
            Listed::Items(items) => items,
            Listed::Refused(message) => {
                return Err(LiveError::Api { what: format!("list pods in {}", self.scope()), message });
            }
        };
        // what the later lists are filtered by, before the pods are stored
        let pod_keys: HashSet<String> =
            if self.selector.is_some() { pods.iter().flat_map(pod_keys).collect() } else { HashSet::new() };
        let used_nodes: HashSet<String> = if needs.nodes {
            pods.iter().filter_map(|p| p.pointer("/spec/nodeName")?.as_str()).map(str::to_string).collect()
        } else {
            HashSet::new()
        };
        let wanted_owners = if needs.owners { owner_refs(&pods) } else { BTreeSet::new() };
        // workload rules read every workload of the scope and its events, unless pods were picked
        let every_workload = needs.workloads && self.selector.is_none() && self.pod.is_none();
        store(&mut snapshot, Section::Pod, pods);
        let mut notes = Vec::new();
        let mut note = |kind: &str, message: String, without: &str| {
            notes.push(format!("cannot list {kind}: {message}; rules that read {without} ran without them"))
        };
        if needs.events {
            let lp = match &self.pod {
                Some(pod) => {
                    ListParams::default().fields(&format!("involvedObject.kind=Pod,involvedObject.name={pod}"))
                }
                None if every_workload => ListParams::default(),
                None => ListParams::default().fields("involvedObject.kind=Pod"),
            };
            match self.list::<Event>(ns, &lp, progress).await? {
                Listed::Items(mut events) => {
                    if self.selector.is_some() {
                        events.retain(|e| event_keys(e).iter().any(|k| pod_keys.contains(k)));
                    }
                    if every_workload {
                        events.retain(|e| {
                            let kind = e.pointer("/involvedObject/kind").or_else(|| e.pointer("/regarding/kind"));
                            kind.and_then(Value::as_str).is_none_or(|k| k == "Pod" || OWNER_KINDS.contains(&k))
                        });
                    }
                    store(&mut snapshot, Section::Event, events);
                }
                Listed::Refused(m) => note("events", m, "events"),
            }
        }
        if needs.nodes {
            match self.list::<Node>(None, &ListParams::default(), progress).await? {
                Listed::Items(mut nodes) => {
                    // only the nodes the pods run on
                    nodes.retain(|n| {
                        n.pointer("/metadata/name").and_then(Value::as_str).is_some_and(|n| used_nodes.contains(n))
                    });
                    store(&mut snapshot, Section::Node, nodes);
                }
                Listed::Refused(m) => note("nodes", m, "nodes"),
            }
        }
        // the pods' owners, then theirs (a ReplicaSet's Deployment, a Job's CronJob); for
        // workload rules, every workload of the scope in one round
        let mut wanted_owners = wanted_owners;
        let mut kinds: BTreeSet<String> = match every_workload {
            true => OWNER_KINDS.iter().map(|k| k.to_string()).collect(),
            false => wanted_owners.iter().map(|(k, _)| k.clone()).collect(),
        };
        while !kinds.is_empty() {
            let uids: HashSet<&str> = wanted_owners.iter().map(|(_, u)| u.as_str()).collect();
            let mut next = BTreeSet::new();
            for kind in &kinds {
                match self.list_owners(kind, ns, progress).await? {
                    Listed::Items(mut owners) => {
                        owners.retain(|o| {
                            every_workload
                                || o.pointer("/metadata/uid").and_then(Value::as_str).is_some_and(|u| uids.contains(u))
                        });
                        next.extend(owner_refs(&owners));
                        store(&mut snapshot, Section::Owner, owners);
                    }
                    Listed::Refused(m) => note(&plural(kind), m, "owners"),
                }
            }
            // a chain of owners ends, even one that loops or names an object that is gone;
            // every workload was listed in the first round
            next.retain(|(_, uid)| !every_workload && !snapshot.owners.contains_key(uid));
            kinds = next.iter().map(|(k, _)| k.clone()).collect();
            wanted_owners = next;
        }
        if needs.control_plane && !self.sees_control_plane() {
            match self.control_plane(progress).await? {
                Listed::Items(pods) => store(&mut snapshot, Section::ControlPlane, pods),
                Listed::Refused(m) => note("pods in kube-system", m, "the control plane"),
            }
        }
        snapshot.notes = notes;
        Ok(snapshot)
    }

    /// Reads into `snapshot` the container logs rules may need, each line
    /// through `redactor`: the previous run of each container that restarted
    /// or whose last run terminated, and the current run of each that is
    /// terminated, waiting (with no previous run) or running but not ready.
    /// At most `bounds.in_flight` requests at once, each bounded by
    /// `tailLines` and `limitBytes`. A run the server has no log of (400,
    /// 404) has none; other failures (forbidden, say) are counted in one note.
    pub async fn read_logs(&self, snapshot: &mut Snapshot, redactor: Redactor, bounds: LogBounds) {
        *snapshot = std::mem::take(snapshot).reading_logs(Some(redactor));
        let wanted = Self::logs_wanted(snapshot);
        let client = &self.client;
        let results: Vec<_> = futures::stream::iter(wanted)
            .map(|(key, previous)| async move {
                let api: kube::Api<Pod> = kube::Api::namespaced(client.clone(), &key.namespace);
                let params = LogParams {
                    container: Some(key.container.clone()),
                    previous,
                    tail_lines: Some(bounds.tail_lines),
                    limit_bytes: Some(bounds.limit_bytes),
                    ..LogParams::default()
                };
                let text = api.logs(&key.pod, &params).await;
                (key, previous, text)
            })
            .buffered(bounds.in_flight.max(1))
            .collect()
            .await;
        let mut failed: Vec<String> = Vec::new();
        for (key, previous, text) in results {
            let run = if previous { " --previous" } else { "" };
            let source = format!("kubectl logs {} -n {} -c {}{run}", key.pod, key.namespace, key.container);
            let message = match text {
                Ok(text) => match snapshot.add_container_log(key, previous, &source, text.as_bytes()) {
                    Ok(()) => continue,
                    Err(e) => e.to_string(),
                },
                // no such run (a container that never restarted, a log the kubelet removed): no log
                Err(kube::Error::Api(s)) if s.code == 400 || s.code == 404 => continue,
                Err(kube::Error::Api(s)) => status_message(&s),
                Err(e) => cause(&e),
            };
            failed.push(format!("{source}: {message}"));
        }
        if let Some(first) = failed.first() {
            snapshot.notes.push(format!(
                "cannot read {} container log(s) ({first}{}); rules that read logs ran without them",
                failed.len(),
                if failed.len() > 1 { ", ..." } else { "" }
            ));
        }
    }

    /// The kube-system pods the control-plane rules read: those with a
    /// `component` label or `tier=control-plane`.
    pub(crate) async fn control_plane(&self, progress: &mut dyn FnMut(&str, usize)) -> Result<Listed, LiveError> {
        let mut out: Vec<Value> = Vec::new();
        for sel in ["component", "tier=control-plane"] {
            match self.list::<Pod>(Some("kube-system"), &ListParams::default().labels(sel), progress).await? {
                Listed::Items(items) => {
                    for p in items {
                        let uid = p.pointer("/metadata/uid").cloned();
                        if !out.iter().any(|o| o.pointer("/metadata/uid").cloned() == uid) {
                            out.push(p);
                        }
                    }
                }
                refused => return Ok(refused),
            }
        }
        Ok(Listed::Items(out))
    }

    /// Lists the objects of one owner kind (one of [`OWNER_KINDS`]).
    pub(crate) async fn list_owners(
        &self,
        kind: &str,
        ns: Option<&str>,
        progress: &mut dyn FnMut(&str, usize),
    ) -> Result<Listed, LiveError> {
        let lp = ListParams::default();
        match kind {
            "ReplicaSet" => self.list::<ReplicaSet>(ns, &lp, progress).await,
            "Deployment" => self.list::<Deployment>(ns, &lp, progress).await,
            "DaemonSet" => self.list::<DaemonSet>(ns, &lp, progress).await,
            "StatefulSet" => self.list::<StatefulSet>(ns, &lp, progress).await,
            "Job" => self.list::<Job>(ns, &lp, progress).await,
            "CronJob" => self.list::<CronJob>(ns, &lp, progress).await,
            _ => self.list::<ReplicationController>(ns, &lp, progress).await,
        }
    }

    /// Lists every object of `K` in `ns` (all namespaces if `None`), a page of
    /// [`PAGE_SIZE`] at a time. A continue token that expired restarts the list.
    pub(crate) async fn list<K>(
        &self,
        ns: Option<&str>,
        lp: &ListParams,
        progress: &mut dyn FnMut(&str, usize),
    ) -> Result<Listed, LiveError>
    where
        K: Resource<DynamicType = ()>,
    {
        let plural = K::plural(&()).into_owned();
        let kind = K::kind(&()).into_owned();
        let api_version = K::api_version(&()).into_owned();
        let request = kube::core::Request::new(K::url_path(&(), ns));
        let what = match ns {
            Some(ns) => format!("list {plural} in namespace {ns}"),
            None => format!("list {plural}"),
        };
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        let mut restarts = 0;
        loop {
            let mut page = lp.clone().limit(PAGE_SIZE);
            if let Some(t) = &token {
                page = page.continue_token(t);
            }
            let req = request.list(&page).map_err(|e| LiveError::Api { what: what.clone(), message: cause(&e) })?;
            let list: Value = match self.client.request(req).await {
                Ok(list) => list,
                Err(kube::Error::Api(s)) if s.code == 410 && token.is_some() && restarts < 3 => {
                    // the continue token expired: list again from the start
                    restarts += 1;
                    token = None;
                    items.clear();
                    continue;
                }
                Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => {
                    return Ok(Listed::Refused(status_message(&s)));
                }
                Err(e) => return Err(self.error(&what, e)),
            };
            let Value::Object(mut list) = list else {
                return Err(LiveError::Api { what, message: "the answer is not a list".into() });
            };
            if let Some(Value::Array(page)) = list.remove("items") {
                items.extend(page.into_iter().map(|o| normalize(o, &kind, &api_version)));
            }
            progress(&plural, items.len());
            match list.get("metadata").and_then(|m| m.get("continue")).and_then(Value::as_str) {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => break,
            }
        }
        Ok(Listed::Items(items))
    }

    /// The container runs whose logs [`Cluster::read_logs`] asks for: `(container, previous)`.
    fn logs_wanted(snapshot: &Snapshot) -> Vec<(LogKey, bool)> {
        let mut out = Vec::new();
        for pod in snapshot.pods.iter().map(|p| snapshot.get(*p)) {
            let (Some(namespace), Some(name)) =
                (pod.str_at(&["metadata", "namespace"]), pod.str_at(&["metadata", "name"]))
            else {
                continue;
            };
            for list in ["initContainerStatuses", "containerStatuses"] {
                for c in pod.path(&["status", list]).into_iter().flat_map(|l| l.items()) {
                    let Some(container) = c.str_at(&["name"]) else { continue };
                    let key = || LogKey { namespace: namespace.into(), pod: name.into(), container: container.into() };
                    let has = |path: &[&str]| c.path(path).is_some();
                    let previous = has(&["lastState", "terminated"])
                        || c.path(&["restartCount"]).and_then(crate::input::tree::Doc::as_i64).is_some_and(|n| n > 0);
                    let failed = c
                        .path(&["state", "terminated", "exitCode"])
                        .and_then(crate::input::tree::Doc::as_i64)
                        .is_some_and(|n| n != 0);
                    let not_ready = has(&["state", "running"])
                        && matches!(c.path(&["ready"]).map(|r| r.view()), Some(crate::input::tree::View::Bool(false)));
                    if previous {
                        out.push((key(), true));
                    }
                    if failed || not_ready || (has(&["state", "waiting"]) && !previous) {
                        out.push((key(), false));
                    }
                }
            }
        }
        out
    }

    /// A request that failed: the connection, authentication, or the server.
    pub(crate) fn error(&self, what: &str, e: kube::Error) -> LiveError {
        match e {
            kube::Error::Api(s) => LiveError::Api { what: what.to_string(), message: status_message(&s) },
            kube::Error::Auth(e) => LiveError::Config(format!("cannot authenticate to {}: {}", self.url, cause(&e))),
            other => LiveError::Connect { url: self.url.clone(), message: cause(&other) },
        }
    }
}

async fn load_config(target: &Target) -> Result<Config, LiveError> {
    let options = KubeConfigOptions { context: target.context.clone(), ..KubeConfigOptions::default() };
    let kubeconfig_error = |e: kube::config::KubeconfigError| {
        let shown = match (&e, &target.context) {
            (kube::config::KubeconfigError::LoadContext(_), Some(c)) => format!("no context `{c}` in the kubeconfig"),
            _ => cause(&e),
        };
        match &target.kubeconfig {
            Some(path) => LiveError::Config(format!("{}: {shown}", path.display())),
            None => LiveError::Config(format!("kubeconfig: {shown}")),
        }
    };
    if let Some(path) = &target.kubeconfig {
        let kubeconfig = Kubeconfig::read_from(path).map_err(kubeconfig_error)?;
        return Config::from_custom_kubeconfig(kubeconfig, &options).await.map_err(kubeconfig_error);
    }
    match Config::from_kubeconfig(&options).await {
        Ok(config) => Ok(config),
        Err(e) if target.context.is_some() => Err(kubeconfig_error(e)),
        Err(e) => {
            if std::env::var_os("KUBERNETES_SERVICE_HOST").is_none() {
                let why = match std::env::var_os("KUBECONFIG").filter(|k| !k.is_empty()) {
                    Some(k) => format!("KUBECONFIG={}: {}", k.to_string_lossy(), cause(&e)),
                    None => format!("~/.kube/config: {}", cause(&e)),
                };
                return Err(LiveError::Config(format!(
                    "no cluster to read ({why}; not in a cluster): set KUBECONFIG or --kubeconfig, or read files with -f"
                )));
            }
            Config::incluster().map_err(|e| LiveError::Config(format!("in-cluster config: {}", cause(&e))))
        }
    }
}

/// The names of the contexts of the kubeconfig (`path`, else `$KUBECONFIG`'s
/// files merged, else `~/.kube/config`), in its order: what `--all-contexts` reads.
pub fn contexts(path: Option<&std::path::Path>) -> Result<Vec<String>, LiveError> {
    let read = match path {
        Some(path) => Kubeconfig::read_from(path),
        None => Kubeconfig::read(),
    };
    let where_ = || path.map_or_else(|| "kubeconfig".to_string(), |p| p.display().to_string());
    let config = read.map_err(|e| LiveError::Config(format!("{}: {}", where_(), cause(&e))))?;
    let names: Vec<String> = config.contexts.into_iter().map(|c| c.name).collect();
    if names.is_empty() {
        return Err(LiveError::Config(format!("{}: no contexts", where_())));
    }
    Ok(names)
}

/// The innermost message of an error chain, e.g. `connection refused`.
fn cause(e: &dyn std::error::Error) -> String {
    let mut last = e;
    while let Some(next) = last.source() {
        last = next;
    }
    let mut s = last.to_string();
    if let Some(i) = s.find(" (os error") {
        s.truncate(i);
    }
    match s.chars().next() {
        Some(c) if c.is_uppercase() && !s.chars().nth(1).is_some_and(char::is_uppercase) => {
            c.to_lowercase().chain(s.chars().skip(1)).collect()
        }
        _ => s,
    }
}

fn status_message(s: &kube::core::Status) -> String {
    match (s.message.is_empty(), s.reason.is_empty()) {
        (false, _) => s.message.clone(),
        (true, false) => s.reason.to_lowercase(),
        (true, true) => format!("the server answered {}", s.code),
    }
}

/// A list item as a file would hold it: with `kind` and `apiVersion`, without
/// `managedFields` (no rule reads them; they are most of an object's size).
pub(crate) fn normalize(mut o: Value, kind: &str, api_version: &str) -> Value {
    if let Value::Object(m) = &mut o {
        m.entry("kind").or_insert_with(|| Value::String(kind.to_string()));
        m.entry("apiVersion").or_insert_with(|| Value::String(api_version.to_string()));
        if let Some(Value::Object(meta)) = m.get_mut("metadata") {
            meta.remove("managedFields");
        }
    }
    o
}

fn plural(kind: &str) -> String {
    format!("{}s", kind.to_lowercase())
}

/// `(kind, uid)` of the owners the pods name that k8srule lists.
pub(crate) fn owner_refs<'a>(pods: impl IntoIterator<Item = &'a Value>) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for p in pods {
        for r in p.pointer("/metadata/ownerReferences").and_then(Value::as_array).into_iter().flatten() {
            if let (Some(k), Some(u)) = (r["kind"].as_str(), r["uid"].as_str())
                && OWNER_KINDS.contains(&k)
            {
                out.insert((k.to_string(), u.to_string()));
            }
        }
    }
    out
}

/// Moves listed objects into the snapshot's store.
fn store(snapshot: &mut Snapshot, part: Section, objects: Vec<Value>) {
    for o in &objects {
        if let Err(e) = snapshot.add_to_section(part, o) {
            snapshot.notes.push(format!("cannot read a listed object: {e}"));
        }
    }
}

/// How events name a pod: `uid:U` and `ns/name`.
pub(crate) fn pod_keys(p: &Value) -> Vec<String> {
    let meta = &p["metadata"];
    let mut keys = Vec::new();
    if let Some(uid) = meta["uid"].as_str() {
        keys.push(format!("uid:{uid}"));
    }
    if let Some(name) = meta["name"].as_str() {
        keys.push(format!("{}/{name}", meta["namespace"].as_str().unwrap_or("default")));
    }
    keys
}

pub(crate) fn event_keys(e: &Value) -> Vec<String> {
    let obj = e.get("involvedObject").or_else(|| e.get("regarding")).unwrap_or(&Value::Null);
    let mut keys = Vec::new();
    if let Some(uid) = obj["uid"].as_str().filter(|u| !u.is_empty()) {
        keys.push(format!("uid:{uid}"));
    }
    if let Some(name) = obj["name"].as_str() {
        let ns = obj["namespace"].as_str().or_else(|| e.pointer("/metadata/namespace").and_then(Value::as_str));
        keys.push(format!("{}/{name}", ns.unwrap_or("default")));
    }
    keys
}

/// Runs a future to completion on a runtime of the calling thread.
pub fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, LiveError> {
    block_on_with(0, f)
}

/// Runs a future to completion on the calling thread, with `workers` more
/// threads for the tasks it spawns (0: they run on the calling thread too),
/// so a spawned server answers while `f` is busy.
pub fn block_on_with<F: std::future::Future>(workers: usize, f: F) -> Result<F::Output, LiveError> {
    let mut builder = match workers {
        0 => tokio::runtime::Builder::new_current_thread(),
        n => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
    };
    let rt =
        builder.enable_all().build().map_err(|e| LiveError::Config(format!("cannot start the async runtime: {e}")))?;
    Ok(rt.block_on(f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_items_get_kind_and_lose_managed_fields() {
        let o = normalize(serde_json::json!({"metadata": {"name": "a", "managedFields": []}}), "Pod", "v1");
        assert_eq!(o, serde_json::json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "a"}}));
    }

    #[test]
    fn owners_are_the_listed_kinds_the_pods_name() {
        let pods = vec![serde_json::json!({"metadata": {"ownerReferences": [
            {"kind": "ReplicaSet", "uid": "r1"}, {"kind": "Node", "uid": "n1"}]}})];
        assert_eq!(owner_refs(&pods).into_iter().collect::<Vec<_>>(), vec![("ReplicaSet".into(), "r1".into())]);
    }
}
