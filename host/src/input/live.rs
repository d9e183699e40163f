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
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::Snapshot;
use crate::input::Needs;
use crate::input::fields::Fields;
use crate::input::redact::Redactor;
use crate::input::snapshot::{LogKey, MAX_LOG_LINES, OWNER_KINDS, Section};
use crate::input::tree::Doc;

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
pub(crate) enum Listed<T = Vec<Value>> {
    Items(T),
    Refused(String),
}

/// A page's number of objects and continue token.
type PageRead = (usize, Option<String>);

/// What a list request reads, made from a resource type by [`ListOf::of`].
pub(crate) struct ListOf {
    plural: String,
    kind: String,
    api_version: String,
    request: kube::core::Request,
    /// `list pods in namespace shop`, for messages.
    what: String,
}

impl ListOf {
    fn of<K: Resource<DynamicType = ()>>(ns: Option<&str>) -> Self {
        let plural = K::plural(&()).into_owned();
        let what = match ns {
            Some(ns) => format!("list {plural} in namespace {ns}"),
            None => format!("list {plural}"),
        };
        ListOf {
            kind: K::kind(&()).into_owned(),
            api_version: K::api_version(&()).into_owned(),
            request: kube::core::Request::new(K::url_path(&(), ns)),
            what,
            plural,
        }
    }

    /// The objects of one owner kind (one of [`OWNER_KINDS`]).
    fn owners(kind: &str, ns: Option<&str>) -> Self {
        match kind {
            "ReplicaSet" => Self::of::<ReplicaSet>(ns),
            "Deployment" => Self::of::<Deployment>(ns),
            "DaemonSet" => Self::of::<DaemonSet>(ns),
            "StatefulSet" => Self::of::<StatefulSet>(ns),
            "Job" => Self::of::<Job>(ns),
            "CronJob" => Self::of::<CronJob>(ns),
            _ => Self::of::<ReplicationController>(ns),
        }
    }
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
    /// becomes a note; the pods must be readable. Each page is parsed straight
    /// into the snapshot's store, so no object is held as a JSON value.
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
        let pods = ListOf::of::<Pod>(ns);
        if let Listed::Refused(message) =
            self.list_into(&mut snapshot, Section::Pod, &pods, &pods_lp, progress, &mut |_| true).await?
        {
            return Err(LiveError::Api { what: format!("list pods in {}", self.scope()), message });
        }
        // what the later lists are filtered by
        let pods = || snapshot.pods.iter().map(|p| snapshot.get(*p));
        let pod_keys: HashSet<String> =
            if self.selector.is_some() { pods().flat_map(pod_keys).collect() } else { HashSet::new() };
        let used_nodes: HashSet<String> = if needs.nodes {
            pods().filter_map(|p| p.str_at(&["spec", "nodeName"])).map(str::to_string).collect()
        } else {
            HashSet::new()
        };
        let mut wanted_owners = BTreeSet::new();
        if needs.owners {
            pods().for_each(|p| stored_owner_refs(&mut wanted_owners, p));
        }
        // workload rules read every workload of the scope and its events, unless pods were picked
        let every_workload = needs.workloads && self.selector.is_none() && self.pod.is_none();
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
            let mut keep = |e: Doc| {
                let kind = e.path(&["involvedObject", "kind"]).or_else(|| e.path(&["regarding", "kind"]));
                (self.selector.is_none() || event_keys(e).iter().any(|k| pod_keys.contains(k)))
                    && (!every_workload
                        || kind.and_then(Doc::as_str).is_none_or(|k| k == "Pod" || OWNER_KINDS.contains(&k)))
            };
            let events = ListOf::of::<Event>(ns);
            if let Listed::Refused(m) =
                self.list_into(&mut snapshot, Section::Event, &events, &lp, progress, &mut keep).await?
            {
                note("events", m, "events");
            }
        }
        if needs.nodes {
            // only the nodes the pods run on
            let mut keep = |n: Doc| n.str_at(&["metadata", "name"]).is_some_and(|n| used_nodes.contains(n));
            let nodes = ListOf::of::<Node>(None);
            if let Listed::Refused(m) = self
                .list_into(&mut snapshot, Section::Node, &nodes, &ListParams::default(), progress, &mut keep)
                .await?
            {
                note("nodes", m, "nodes");
            }
        }
        // the pods' owners, then theirs (a ReplicaSet's Deployment, a Job's CronJob); for
        // workload rules, every workload of the scope in one round
        let mut kinds: BTreeSet<String> = match every_workload {
            true => OWNER_KINDS.iter().map(|k| k.to_string()).collect(),
            false => wanted_owners.iter().map(|(k, _)| k.clone()).collect(),
        };
        while !kinds.is_empty() {
            let uids: HashSet<&str> = wanted_owners.iter().map(|(_, u)| u.as_str()).collect();
            let mut next = BTreeSet::new();
            for kind in &kinds {
                let mut keep = |o: Doc| {
                    let kept = every_workload || o.str_at(&["metadata", "uid"]).is_some_and(|u| uids.contains(u));
                    if kept {
                        stored_owner_refs(&mut next, o);
                    }
                    kept
                };
                let owners = ListOf::owners(kind, ns);
                let lp = ListParams::default();
                if let Listed::Refused(m) =
                    self.list_into(&mut snapshot, Section::Owner, &owners, &lp, progress, &mut keep).await?
                {
                    note(&plural(kind), m, "owners");
                }
            }
            // a chain of owners ends, even one that loops or names an object that is gone;
            // every workload was listed in the first round
            next.retain(|(_, uid)| !every_workload && !snapshot.owners.contains_key(uid));
            kinds = next.iter().map(|(k, _)| k.clone()).collect();
            wanted_owners = next;
        }
        if needs.control_plane
            && !self.sees_control_plane()
            && let Listed::Refused(m) = self.control_plane(&mut snapshot, progress).await?
        {
            note("pods in kube-system", m, "the control plane");
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

    /// Adds the kube-system pods the control-plane rules read: those with a
    /// `component` label or `tier=control-plane`. None if either list is refused.
    async fn control_plane(
        &self,
        snapshot: &mut Snapshot,
        progress: &mut dyn FnMut(&str, usize),
    ) -> Result<Listed<()>, LiveError> {
        let before = snapshot.section_len(Section::ControlPlane);
        let pods = ListOf::of::<Pod>(Some("kube-system"));
        let mut seen = HashSet::new();
        let mut keep = |p: Doc| seen.insert(p.str_at(&["metadata", "uid"]).map(str::to_string));
        for sel in ["component", "tier=control-plane"] {
            let lp = ListParams::default().labels(sel);
            if let refused @ Listed::Refused(_) =
                self.list_into(snapshot, Section::ControlPlane, &pods, &lp, progress, &mut keep).await?
            {
                snapshot.truncate(Section::ControlPlane, before);
                return Ok(refused);
            }
        }
        Ok(Listed::Items(()))
    }

    /// Lists the objects of one owner kind (one of [`OWNER_KINDS`]) as JSON values.
    pub(crate) async fn list_owners(
        &self,
        kind: &str,
        ns: Option<&str>,
        progress: &mut dyn FnMut(&str, usize),
    ) -> Result<Listed, LiveError> {
        let of = ListOf::owners(kind, ns);
        let mut items = Vec::new();
        let listed = self
            .list_pages(&of, &ListParams::default(), progress, &mut |text, restarted| {
                #[derive(serde::Deserialize)]
                struct Page {
                    #[serde(default)]
                    items: Option<Vec<Value>>,
                    #[serde(default)]
                    metadata: ListMeta,
                }
                if restarted {
                    items.clear();
                }
                let page: Page = serde_json::from_str(text).map_err(|e| e.to_string())?;
                let page_items = page.items.unwrap_or_default();
                let n = page_items.len();
                items.extend(page_items);
                Ok((n, page.metadata.token))
            })
            .await?;
        Ok(match listed {
            Listed::Items(()) => {
                Listed::Items(items.into_iter().map(|o| normalize(o, &of.kind, &of.api_version)).collect())
            }
            Listed::Refused(m) => Listed::Refused(m),
        })
    }

    /// Lists every object of `of` into a section of `snapshot`, each page
    /// parsed straight into its store: those `keep` wants.
    async fn list_into(
        &self,
        snapshot: &mut Snapshot,
        part: Section,
        of: &ListOf,
        lp: &ListParams,
        progress: &mut dyn FnMut(&str, usize),
        keep: &mut dyn FnMut(Doc) -> bool,
    ) -> Result<Listed<()>, LiveError> {
        let before = snapshot.section_len(part);
        let mut sink = Sink { snapshot, part, of: (&of.kind, &of.api_version), keep };
        self.list_pages(of, lp, progress, &mut |text, restarted| {
            if restarted {
                sink.snapshot.truncate(part, before);
            }
            PageSeed(&mut sink).deserialize(&mut serde_json::Deserializer::from_str(text)).map_err(|e| e.to_string())
        })
        .await
    }

    /// Lists every object of `of` in its namespace (all namespaces if none), a
    /// page of [`PAGE_SIZE`] at a time, giving each page's text to `on_page`:
    /// it reads the page and answers its number of objects and continue token.
    /// A continue token that expired restarts the list (`on_page` is told, to
    /// drop what it read).
    async fn list_pages(
        &self,
        of: &ListOf,
        lp: &ListParams,
        progress: &mut dyn FnMut(&str, usize),
        on_page: &mut dyn FnMut(&str, bool) -> Result<PageRead, String>,
    ) -> Result<Listed<()>, LiveError> {
        let what = &of.what;
        let mut read = 0;
        let mut token: Option<String> = None;
        let mut restarts = 0;
        let mut restarted = false;
        loop {
            let mut page = lp.clone().limit(PAGE_SIZE);
            if let Some(t) = &token {
                page = page.continue_token(t);
            }
            let req = of.request.list(&page).map_err(|e| LiveError::Api { what: what.clone(), message: cause(&e) })?;
            let text = match self.client.request_text(req).await {
                Ok(text) => text,
                Err(kube::Error::Api(s)) if s.code == 410 && token.is_some() && restarts < 3 => {
                    // the continue token expired: list again from the start
                    restarts += 1;
                    token = None;
                    read = 0;
                    restarted = true;
                    continue;
                }
                Err(kube::Error::Api(s)) if s.code == 403 || s.code == 404 => {
                    return Ok(Listed::Refused(status_message(&s)));
                }
                Err(e) => return Err(self.error(what, e)),
            };
            let (n, next) = on_page(&text, std::mem::take(&mut restarted)).map_err(|e| LiveError::Api {
                what: what.clone(),
                message: format!("the answer is not a list: {e}"),
            })?;
            read += n;
            progress(&of.plural, read);
            match next {
                Some(t) if !t.is_empty() => token = Some(t),
                _ => break,
            }
        }
        Ok(Listed::Items(()))
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
            owner_ref(&mut out, r["kind"].as_str(), r["uid"].as_str());
        }
    }
    out
}

/// Adds to `out` the owners a stored object names (see [`owner_refs`]).
fn stored_owner_refs(out: &mut BTreeSet<(String, String)>, o: Doc) {
    for r in o.path(&["metadata", "ownerReferences"]).into_iter().flat_map(Doc::items) {
        owner_ref(out, r.str_at(&["kind"]), r.str_at(&["uid"]));
    }
}

fn owner_ref(out: &mut BTreeSet<(String, String)>, kind: Option<&str>, uid: Option<&str>) {
    if let (Some(k), Some(u)) = (kind, uid)
        && OWNER_KINDS.contains(&k)
    {
        out.insert((k.to_string(), u.to_string()));
    }
}

/// Where [`PageSeed`] puts a page's objects: the ones `keep` wants, in a
/// section of a snapshot.
struct Sink<'a> {
    snapshot: &'a mut Snapshot,
    part: Section,
    /// The list's kind and apiVersion, for items that do not say theirs.
    of: (&'a str, &'a str),
    keep: &'a mut dyn FnMut(Doc) -> bool,
}

/// A page of a list: its number of objects and continue token.
struct PageSeed<'s, 'a>(&'s mut Sink<'a>);

#[derive(Default, serde::Deserialize)]
struct ListMeta {
    #[serde(rename = "continue", default)]
    token: Option<String>,
}

impl<'de> DeserializeSeed<'de> for PageSeed<'_, '_> {
    type Value = (usize, Option<String>);

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_, '_> {
    type Value = (usize, Option<String>);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut n, mut token) = (0, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "items" => n = map.next_value_seed(ItemsSeed(&mut *self.0))?,
                "metadata" => token = map.next_value::<Option<ListMeta>>()?.and_then(|m| m.token),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok((n, token))
    }
}

/// The `items` of a page: how many.
struct ItemsSeed<'s, 'a>(&'s mut Sink<'a>);

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_, '_> {
    type Value = usize;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_, '_> {
    type Value = usize;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a list of objects")
    }

    fn visit_unit<E>(self) -> Result<usize, E> {
        Ok(0)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let mut n = 0;
        while seq.next_element_seed(ItemSeed(&mut *self.0))?.is_some() {
            n += 1;
        }
        Ok(n)
    }
}

/// One object of a page.
struct ItemSeed<'s, 'a>(&'s mut Sink<'a>);

impl<'de> DeserializeSeed<'de> for ItemSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        let Sink { snapshot, part, of, keep } = self.0;
        snapshot.add_listed(*part, *of, d, &mut **keep).map(drop)
    }
}

/// How events name a pod: `uid:U` and `ns/name`.
fn pod_keys(p: Doc) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(uid) = p.str_at(&["metadata", "uid"]) {
        keys.push(format!("uid:{uid}"));
    }
    if let Some(name) = p.str_at(&["metadata", "name"]) {
        keys.push(format!("{}/{name}", p.str_at(&["metadata", "namespace"]).unwrap_or("default")));
    }
    keys
}

fn event_keys(e: Doc) -> Vec<String> {
    let obj = e.get("involvedObject").or_else(|| e.get("regarding"));
    let at = |key: &str| obj.and_then(|o| o.str_at(&[key]));
    let mut keys = Vec::new();
    if let Some(uid) = at("uid").filter(|u| !u.is_empty()) {
        keys.push(format!("uid:{uid}"));
    }
    if let Some(name) = at("name") {
        let ns = at("namespace").or_else(|| e.str_at(&["metadata", "namespace"]));
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
    fn a_page_is_parsed_into_the_snapshot_keeping_what_is_wanted() {
        let mut s = Snapshot::new(0);
        let mut keep = |p: Doc| p.str_at(&["metadata", "name"]) != Some("b");
        let mut sink = Sink { snapshot: &mut s, part: Section::Pod, of: ("Pod", "v1"), keep: &mut keep };
        let parse = |sink: &mut Sink, page: &str| {
            PageSeed(sink).deserialize(&mut serde_json::Deserializer::from_str(page)).map_err(|e| e.to_string())
        };
        let page = r#"{"kind":"PodList","metadata":{"continue":"t1"},"items":[
            {"metadata":{"name":"a","managedFields":[{"x":1}]}},{"kind":"Pod","metadata":{"name":"b"}}]}"#;
        assert_eq!(parse(&mut sink, page).unwrap(), (2, Some("t1".to_string())));
        let mark = sink.snapshot.store.mark();
        // an object that is not wanted leaves nothing in the store
        assert_eq!(
            parse(&mut sink, r#"{"metadata":{},"items":[{"metadata":{"name":"b","uid":"x"}}]}"#).unwrap(),
            (1, None)
        );
        assert_eq!(sink.snapshot.store.mark(), mark);
        assert_eq!(parse(&mut sink, r#"{"items":null}"#).unwrap(), (0, None));
        assert!(parse(&mut sink, r#"[{"kind":"Pod"}]"#).is_err());
        let pods: Vec<Value> = s.pods.iter().map(|p| s.get(*p).to_value()).collect();
        assert_eq!(pods, vec![serde_json::json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "a"}})]);
    }

    #[test]
    fn owners_are_the_listed_kinds_the_pods_name() {
        let pods = vec![serde_json::json!({"metadata": {"ownerReferences": [
            {"kind": "ReplicaSet", "uid": "r1"}, {"kind": "Node", "uid": "n1"}]}})];
        assert_eq!(owner_refs(&pods).into_iter().collect::<Vec<_>>(), vec![("ReplicaSet".into(), "r1".into())]);
    }
}
