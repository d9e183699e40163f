//! Watch mode: reflectors of pods, their events and nodes (and the
//! control-plane pods the rules read, and the workloads of workload rules),
//! kept current by list+watch; a pod is diagnosed again when it, its events or
//! its node change, a workload when it or its events change, and both on
//! every resync. What changed is reported as new and resolved findings, and, with
//! [`metrics::Metrics`], counted for Prometheus.

pub mod metrics;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures::stream::{BoxStream, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{Event, Node, ObjectReference, Pod, ReplicationController};
use kube::api::{Api, ApiResource, DynamicObject};
use kube::runtime::events::{self, EventType, Recorder, Reporter};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;

use crate::input::fields::Fields;
use crate::input::live::{Cluster, Listed, LiveError, normalize, owner_refs};
use crate::input::snapshot::OWNER_KINDS;
use crate::input::snapshot::Section;
use crate::input::tree::Arena;
use crate::{Diagnoser, Finding, Severity, Snapshot};

/// How a watch runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Write a Kubernetes Event on the pod (or the workload, for a workload
    /// rule's finding) for each cause found on it, once while the cause
    /// stays (kube-runtime's `Recorder`: a cause that comes back within
    /// minutes adds to the series of its Event).
    pub emit_events: bool,
    /// Events written at most: this many a minute, and as many at once; the
    /// others are dropped, counted and noted.
    pub events_per_minute: u32,
    /// Every pod is diagnosed again this often, so findings that depend on
    /// age (stuck for 5 minutes) appear without a change.
    pub resync: Duration,
    /// Changes that arrive within this time are diagnosed together.
    pub debounce: Duration,
    /// Stop after this long (the first diagnosis is always reported).
    pub duration: Option<Duration>,
    /// Stop when this becomes true.
    pub stop: Option<Arc<AtomicBool>>,
    /// Where the findings, diagnoses and errors are counted (`--metrics-addr`).
    pub metrics: Option<Arc<metrics::Metrics>>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            emit_events: false,
            events_per_minute: 60,
            resync: Duration::from_secs(60),
            debounce: Duration::from_millis(300),
            duration: None,
            stop: None,
            metrics: None,
        }
    }
}

/// What a watch reports, in order.
#[derive(Debug, Clone)]
pub enum Change {
    /// Every list is read and the pods were diagnosed once; findings so far came before.
    Synced { pods: usize, scope: String },
    /// A finding that was not there at the pod's last diagnosis.
    New(Box<Finding>),
    /// A finding that is gone: the pod (or workload) is healthy again, or
    /// deleted (`pod_deleted`, for a workload too).
    Resolved { finding: Box<Finding>, pod_deleted: bool },
    /// Something that could not be read or written (a forbidden list, say).
    Note(String),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Pods,
    Events,
    Nodes,
    ControlPlane,
    /// The workloads of one kind (one of [`OWNER_KINDS`]), for workload rules.
    Workloads(&'static str),
}

impl Role {
    /// The label of the metrics about this reflector.
    fn resource(self) -> &'static str {
        match self {
            Role::Pods => "pods",
            Role::Events => "events",
            Role::Nodes => "nodes",
            Role::ControlPlane => "control-plane-pods",
            Role::Workloads(_) => "workloads",
        }
    }
}

/// The updates of one list+watch (each object with its key), tagged with its store's index.
type Updates = BoxStream<'static, (usize, Result<watcher::Event<(String, Kept)>, watcher::Error>)>;

/// One reflector: the objects of one list+watch, keyed `ns/name` (a
/// workload `ns/Kind/name`, as findings name it).
struct Mirror {
    role: Role,
    objects: BTreeMap<String, Kept>,
    /// Objects of a (re)list in progress, swapped in when it is done.
    buffer: Option<BTreeMap<String, Kept>>,
    synced: bool,
}

/// An object as a watch holds it: only the fields the host and the loaded
/// packs read ([`Diagnoser::fields`], as a snapshot keeps them), as JSON
/// text, which costs a fraction of the object's `Value`.
#[derive(PartialEq)]
struct Kept {
    json: Box<str>,
    /// What the indexes need: a pod's node, what an event is about (see
    /// [`event_subject`]), a workload's uid.
    link: Option<Box<str>>,
}

impl Kept {
    fn new(value: &Value, fields: &Fields, link: Option<String>) -> Self {
        let mut store = Arena::default();
        let node = store.add_value(value, fields);
        let json = serde_json::to_string(&store.get(node)).unwrap_or_default();
        Kept { json: json.into(), link: link.map(Into::into) }
    }

    /// The kept fields as a value, for the few places that read them outside a snapshot.
    fn value(&self) -> Option<Value> {
        serde_json::from_str(&self.json).ok()
    }

    fn link(&self) -> Option<&str> {
        self.link.as_deref()
    }
}

fn key_of(o: &Value) -> String {
    let meta = &o["metadata"];
    let name = meta["name"].as_str().unwrap_or("");
    match (meta["namespace"].as_str(), o["kind"].as_str()) {
        (Some(ns), Some(kind)) if OWNER_KINDS.contains(&kind) => format!("{ns}/{kind}/{name}"),
        (Some(ns), _) => format!("{ns}/{name}"),
        (None, _) => name.to_string(),
    }
}

/// What an event is about, as findings name it: `ns/name` of a pod,
/// `ns/Kind/name` of a workload; `None` for other kinds (a Node, a Service).
fn event_subject(e: &Value) -> Option<String> {
    let obj = &e["involvedObject"];
    let ns = obj["namespace"].as_str().or_else(|| e.pointer("/metadata/namespace").and_then(Value::as_str));
    let (ns, name) = (ns.unwrap_or("default"), obj["name"].as_str().unwrap_or(""));
    match obj["kind"].as_str() {
        None | Some("Pod") => Some(format!("{ns}/{name}")),
        Some(kind) if OWNER_KINDS.contains(&kind) => Some(format!("{ns}/{kind}/{name}")),
        Some(_) => None,
    }
}

/// The API resource of a workload kind (one of [`OWNER_KINDS`]).
fn workload_resource(kind: &str) -> ApiResource {
    match kind {
        "ReplicaSet" => ApiResource::erase::<ReplicaSet>(&()),
        "Deployment" => ApiResource::erase::<Deployment>(&()),
        "DaemonSet" => ApiResource::erase::<DaemonSet>(&()),
        "StatefulSet" => ApiResource::erase::<StatefulSet>(&()),
        "Job" => ApiResource::erase::<Job>(&()),
        "CronJob" => ApiResource::erase::<CronJob>(&()),
        _ => ApiResource::erase::<ReplicationController>(&()),
    }
}

/// As the rules see it (see [`crate::evaluation::case`]): a kube-system pod with a
/// `component` label or `tier=control-plane`.
fn is_control_plane(p: &Value) -> bool {
    p.pointer("/metadata/labels/component").is_some()
        || p.pointer("/metadata/labels/tier").and_then(Value::as_str) == Some("control-plane")
}

fn node_of(p: &Value) -> Option<&str> {
    p.pointer("/spec/nodeName").and_then(Value::as_str)
}

/// What identifies a finding across diagnoses (its texts may change).
/// What makes a finding the same one from one diagnosis to the next.
type Identity = (String, String, Option<String>);

fn identity(f: &Finding) -> Identity {
    (f.rule.clone(), f.cause.clone(), f.container.clone())
}

struct Watch<'a> {
    cluster: &'a Cluster,
    diagnoser: &'a Diagnoser,
    options: &'a Options,
    mirrors: Vec<Mirror>,
    /// Event keys by what they are about (see [`event_subject`]).
    events_by_subject: HashMap<String, BTreeSet<String>>,
    /// Pod keys by node name.
    pods_by_node: HashMap<String, BTreeSet<String>>,
    owners: HashMap<String, Kept>,
    /// The keys of the reflected workloads by uid.
    workload_uids: HashMap<String, String>,
    /// What is kept of each object.
    fields: Fields,
    owners_listed: HashMap<&'static str, Instant>,
    findings: HashMap<String, Vec<Finding>>,
    /// When a pack reads logs: each pod's findings without its logs, whose
    /// change is what makes its logs worth reading again.
    without_logs: HashMap<String, HashSet<Identity>>,
    dirty: BTreeSet<String>,
    synced: bool,
    /// During the first diagnosis: an Event k8srule wrote before a restart
    /// may be on a pod already.
    initial: bool,
    events: Option<Events>,
    /// Notes on malformed objects already reported, each reported once.
    noted: HashSet<String>,
}

/// Watches the cluster until `options` says stop, calling `sink` with each
/// change. A pod list that is refused, or a cluster unreachable at the start,
/// is an error; other refused lists are notes, and errors after the first
/// sync are notes while the reflectors retry.
pub async fn watch(
    cluster: &Cluster,
    diagnoser: &Diagnoser,
    options: &Options,
    sink: &mut dyn FnMut(Change),
) -> Result<(), LiveError> {
    let needs = diagnoser.needs();
    let mut fields = diagnoser.fields();
    if options.emit_events {
        // what an Event written before a restart is recognised by
        fields.keep(&["source", "component"]);
        fields.keep(&["reportingComponent"]);
        fields.keep(&["reason"]);
    }
    let started = Instant::now();
    let client = cluster.client().clone();
    let ns = cluster.namespace.as_deref();
    let api = |ar: &ApiResource, ns: Option<&str>| match ns {
        Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, ar),
        None => Api::<DynamicObject>::all_with(client.clone(), ar),
    };
    let pod_ar = ApiResource::erase::<Pod>(&());
    let mut specs: Vec<(Role, Api<DynamicObject>, watcher::Config, ApiResource)> = Vec::new();
    let mut pods_cfg = watcher::Config::default().page_size(crate::input::live::PAGE_SIZE);
    if let Some(sel) = &cluster.selector {
        pods_cfg = pods_cfg.labels(sel);
    }
    specs.push((Role::Pods, api(&pod_ar, ns), pods_cfg, pod_ar.clone()));
    // workload rules read every workload of the scope and its events, unless pods were picked (as `diagnose`)
    let workloads = needs.workloads && cluster.selector.is_none() && cluster.pod.is_none();
    if needs.events {
        let mut cfg = watcher::Config::default().page_size(crate::input::live::PAGE_SIZE);
        if !workloads {
            cfg = cfg.fields("involvedObject.kind=Pod");
        }
        let ar = ApiResource::erase::<Event>(&());
        specs.push((Role::Events, api(&ar, ns), cfg, ar));
    }
    if needs.nodes {
        let cfg = watcher::Config::default().page_size(crate::input::live::PAGE_SIZE);
        let ar = ApiResource::erase::<Node>(&());
        specs.push((Role::Nodes, api(&ar, None), cfg, ar));
    }
    if needs.control_plane && !cluster.sees_control_plane() {
        for sel in ["component", "tier=control-plane"] {
            let cfg = watcher::Config::default().labels(sel);
            specs.push((Role::ControlPlane, api(&pod_ar, Some("kube-system")), cfg, pod_ar.clone()));
        }
    }
    if workloads {
        for kind in OWNER_KINDS {
            let cfg = watcher::Config::default().page_size(crate::input::live::PAGE_SIZE);
            let ar = workload_resource(kind);
            specs.push((Role::Workloads(kind), api(&ar, ns), cfg, ar));
        }
    }
    let mut streams: Vec<Updates> = Vec::new();
    let mut mirrors = Vec::new();
    for (i, (role, api, cfg, ar)) in specs.into_iter().enumerate() {
        mirrors.push(Mirror { role, objects: BTreeMap::new(), buffer: None, synced: false });
        let fields = fields.clone();
        let inner = watcher(api, cfg)
            .default_backoff()
            .map(move |r| r.map(|e| convert(e, &ar.kind, &ar.api_version, role, &fields)))
            .boxed();
        // a list the server refuses ends its stream instead of being retried forever
        let refusing = futures::stream::unfold((inner, false), move |(mut s, done)| async move {
            if done {
                return None;
            }
            let item = s.next().await?;
            let refused = matches!(&item, Err(e) if refused(e).is_some());
            Some(((i, item), (s, refused)))
        });
        streams.push(refusing.boxed());
    }
    let events = options.emit_events.then(|| Events {
        recorder: Recorder::new(client.clone(), Reporter::from(COMPONENT)),
        budget: Budget::new(options.events_per_minute),
        dropped: 0,
    });
    let mut w = Watch {
        cluster,
        diagnoser,
        options,
        mirrors,
        events_by_subject: HashMap::new(),
        pods_by_node: HashMap::new(),
        owners: HashMap::new(),
        workload_uids: HashMap::new(),
        fields,
        owners_listed: HashMap::new(),
        findings: HashMap::new(),
        without_logs: HashMap::new(),
        dirty: BTreeSet::new(),
        synced: false,
        initial: true,
        events,
        noted: HashSet::new(),
    };
    let mut all = futures::stream::select_all(streams);
    let mut tick = tokio::time::interval(options.debounce.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_resync = Instant::now();
    loop {
        let stop = options.stop.as_ref().is_some_and(|s| s.load(Ordering::Relaxed))
            || (w.synced && options.duration.is_some_and(|d| started.elapsed() >= d));
        if stop {
            return Ok(());
        }
        tokio::select! {
            item = all.next() => match item {
                Some((i, Ok(event))) => w.apply(i, event),
                Some((i, Err(e))) => w.error(i, e, sink)?,
                // every stream ended: all lists were refused
                None if w.synced => return Ok(()),
                None => {
                    for s in &mut w.mirrors {
                        s.synced = true;
                    }
                }
            },
            _ = tick.tick() => {}
        }
        if !w.synced && w.mirrors.iter().all(|s| s.synced) {
            w.synced = true;
            w.mark_all(true);
            w.flush(sink).await;
            w.initial = false;
            sink(Change::Synced { pods: w.store(Role::Pods).objects.len(), scope: cluster.scope() });
            last_resync = Instant::now();
        } else if w.synced {
            if last_resync.elapsed() >= options.resync {
                w.mark_all(true);
                last_resync = Instant::now();
            }
            if !w.dirty.is_empty() {
                w.flush(sink).await;
            }
        }
    }
}

/// An object as a file would hold it (see [`normalize`]), with its key,
/// keeping `fields`.
fn convert(
    e: watcher::Event<DynamicObject>,
    kind: &str,
    version: &str,
    role: Role,
    fields: &Fields,
) -> watcher::Event<(String, Kept)> {
    let kept = |o: DynamicObject| {
        let value = normalize(serde_json::to_value(o).unwrap_or_default(), kind, version);
        let link = match role {
            Role::Pods => node_of(&value).map(str::to_string),
            Role::Events => event_subject(&value),
            Role::Workloads(_) => value.pointer("/metadata/uid").and_then(Value::as_str).map(str::to_string),
            Role::Nodes | Role::ControlPlane => None,
        };
        (key_of(&value), Kept::new(&value, fields, link))
    };
    match e {
        watcher::Event::Apply(o) => watcher::Event::Apply(kept(o)),
        watcher::Event::Delete(o) => watcher::Event::Delete(kept(o)),
        watcher::Event::Init => watcher::Event::Init,
        watcher::Event::InitApply(o) => watcher::Event::InitApply(kept(o)),
        watcher::Event::InitDone => watcher::Event::InitDone,
    }
}

/// The server's message when it refuses a list or watch (403, or 404 for a missing API).
fn refused(e: &watcher::Error) -> Option<String> {
    let api = match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => s,
        _ => return None,
    };
    (api.code == 403 || api.code == 404).then(|| api.message.clone())
}

impl Watch<'_> {
    /// Marks every pod, and with `workloads` every workload, to diagnose again.
    fn mark_all(&mut self, workloads: bool) {
        let reflected = self.mirrors.iter().filter(|s| workloads && matches!(s.role, Role::Workloads(_)));
        let keys: Vec<String> =
            self.store(Role::Pods).objects.keys().chain(reflected.flat_map(|s| s.objects.keys())).cloned().collect();
        self.dirty.extend(keys);
    }

    /// The reflected workload `ns/Kind/name`, with its key.
    fn workload(&self, key: &str) -> Option<(&String, &Kept)> {
        let mut reflected = self.mirrors.iter().filter(|s| matches!(s.role, Role::Workloads(_)));
        reflected.find_map(|s| s.objects.get_key_value(key))
    }

    /// The owner with this uid: reflected, else listed.
    fn owner(&self, uid: &str) -> Option<&Kept> {
        let reflected = self.workload_uids.get(uid).and_then(|k| self.workload(k)).map(|(_, w)| w);
        reflected.or_else(|| self.owners.get(uid))
    }

    fn store(&self, role: Role) -> &Mirror {
        // the pods' store is always first
        self.mirrors.iter().find(|s| s.role == role).unwrap_or(&self.mirrors[0])
    }

    fn apply(&mut self, i: usize, event: watcher::Event<(String, Kept)>) {
        if self.mirrors[i].role == Role::Events {
            let object = match &event {
                watcher::Event::InitApply((_, o)) | watcher::Event::Apply((_, o)) | watcher::Event::Delete((_, o)) => {
                    Some(o)
                }
                _ => None,
            };
            // the events of every kind are watched for workload rules: only those of pods and workloads are kept
            if object.is_some_and(|o| o.link().is_none()) {
                return;
            }
        }
        match event {
            watcher::Event::Init => self.mirrors[i].buffer = Some(BTreeMap::new()),
            watcher::Event::InitApply((key, o)) => {
                self.mirrors[i].buffer.get_or_insert_with(BTreeMap::new).insert(key, o);
            }
            watcher::Event::InitDone => {
                let fresh = self.mirrors[i].buffer.take().unwrap_or_default();
                let old = std::mem::take(&mut self.mirrors[i].objects);
                for k in old.keys().chain(fresh.keys()) {
                    if old.get(k) != fresh.get(k) {
                        self.changed(i, k, old.get(k), fresh.get(k));
                    }
                }
                self.mirrors[i].objects = fresh;
                self.mirrors[i].synced = true;
            }
            watcher::Event::Apply((key, o)) => {
                let old = self.mirrors[i].objects.remove(&key);
                // a change of fields nothing reads changes no finding
                if old.as_ref() != Some(&o) {
                    self.changed(i, &key, old.as_ref(), Some(&o));
                }
                self.mirrors[i].objects.insert(key, o);
            }
            watcher::Event::Delete((key, _)) => {
                let old = self.mirrors[i].objects.remove(&key);
                self.changed(i, &key, old.as_ref(), None);
            }
        }
    }

    /// Keeps the indexes and marks the pods to diagnose again.
    fn changed(&mut self, i: usize, key: &str, old: Option<&Kept>, new: Option<&Kept>) {
        match self.mirrors[i].role {
            Role::Pods => {
                if let Some(n) = old.and_then(Kept::link)
                    && let Some(set) = self.pods_by_node.get_mut(n)
                {
                    set.remove(key);
                }
                if let Some(n) = new.and_then(Kept::link) {
                    self.pods_by_node.entry(n.to_string()).or_default().insert(key.to_string());
                }
                self.dirty.insert(key.to_string());
            }
            Role::Events => {
                if let Some(subject) = old.and_then(Kept::link) {
                    if let Some(set) = self.events_by_subject.get_mut(subject) {
                        set.remove(key);
                    }
                    self.dirty.insert(subject.to_string());
                }
                if let Some(subject) = new.and_then(Kept::link) {
                    self.events_by_subject.entry(subject.to_string()).or_default().insert(key.to_string());
                    self.dirty.insert(subject.to_string());
                }
            }
            Role::Nodes => {
                if let Some(pods) = self.pods_by_node.get(key) {
                    self.dirty.extend(pods.iter().cloned());
                }
            }
            Role::ControlPlane => self.mark_all(false),
            Role::Workloads(_) => {
                if let Some(uid) = old.and_then(Kept::link) {
                    self.workload_uids.remove(uid);
                }
                if let Some(uid) = new.and_then(Kept::link) {
                    self.workload_uids.insert(uid.to_string(), key.to_string());
                }
                self.dirty.insert(key.to_string());
            }
        }
    }

    fn error(&mut self, i: usize, e: watcher::Error, sink: &mut dyn FnMut(Change)) -> Result<(), LiveError> {
        let role = self.mirrors[i].role;
        let what = match role {
            Role::Pods => format!("pods in {}", self.cluster.scope()),
            Role::Events => "events".into(),
            Role::Nodes => "nodes".into(),
            Role::ControlPlane => "pods in kube-system".into(),
            Role::Workloads(kind) => format!("{}s", kind.to_lowercase()),
        };
        if let Some(message) = refused(&e) {
            if role == Role::Pods {
                return Err(LiveError::Api { what: format!("watch {what}"), message });
            }
            let without = if role == Role::ControlPlane { "the control plane" } else { what.as_str() };
            sink(Change::Note(format!("cannot watch {what}: {message}; rules that read {without} run without them")));
            self.mirrors[i].synced = true;
            return Ok(());
        }
        if let Some(m) = &self.options.metrics {
            m.watch_error(role.resource());
        }
        let cause = match e {
            watcher::Error::InitialListFailed(e)
            | watcher::Error::WatchStartFailed(e)
            | watcher::Error::WatchFailed(e) => self.cluster.error(&format!("watch {what}"), e),
            other => LiveError::Api { what: format!("watch {what}"), message: other.to_string() },
        };
        if !self.synced && role == Role::Pods {
            return Err(cause);
        }
        sink(Change::Note(format!("{cause}; retrying")));
        Ok(())
    }

    /// Lists the owners that pods name and that are not known yet, each kind
    /// at most once a minute.
    async fn fetch_owners(&mut self, missing: BTreeSet<(String, String)>, sink: &mut dyn FnMut(Change)) {
        let kinds: BTreeSet<&str> =
            missing.iter().filter(|(_, uid)| !self.owners.contains_key(uid)).map(|(k, _)| k.as_str()).collect();
        for kind in kinds {
            let Some(kind) = OWNER_KINDS.iter().copied().find(|k| *k == kind) else { continue };
            if self.owners_listed.get(kind).is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
                continue;
            }
            self.owners_listed.insert(kind, Instant::now());
            let ns = self.cluster.namespace.as_deref();
            let mut quiet = |_: &str, _: usize| {};
            let listed = self.cluster.list_owners(kind, ns, &mut quiet).await;
            match listed {
                Ok(Listed::Items(items)) => {
                    for o in items {
                        if let Some(uid) = o.pointer("/metadata/uid").and_then(Value::as_str) {
                            self.owners.insert(uid.to_string(), Kept::new(&o, &self.fields, None));
                        }
                    }
                }
                Ok(Listed::Refused(m)) => sink(Change::Note(format!(
                    "cannot list {}s: {m}; rules that read owners run without them",
                    kind.to_lowercase()
                ))),
                Err(e) => sink(Change::Note(e.to_string())),
            }
        }
    }

    /// Diagnoses the dirty pods and reports what changed.
    async fn flush(&mut self, sink: &mut dyn FnMut(Change)) {
        while !self.dirty.is_empty() {
            // a few thousand pods at a time: a resync of a large cluster holds no copy of it all
            let dirty = match self.dirty.iter().nth(FLUSH_PODS).cloned() {
                Some(first_of_rest) => {
                    let rest = self.dirty.split_off(&first_of_rest);
                    std::mem::replace(&mut self.dirty, rest)
                }
                None => std::mem::take(&mut self.dirty),
            };
            self.flush_some(dirty, sink).await;
        }
        if let Some(m) = &self.options.metrics {
            m.synced(self.store(Role::Pods).objects.len(), self.findings.values().flatten());
        }
        if let Some(events) = &mut self.events
            && events.dropped > 0
        {
            let (n, limit) = (std::mem::take(&mut events.dropped), self.options.events_per_minute);
            sink(Change::Note(format!("{n} Events not written: over the limit of {limit} a minute")));
        }
    }

    /// A snapshot of the `dirty` pods and workloads with their events, the
    /// pods' nodes, their owners and the control-plane pods.
    fn snapshot_of(&self, dirty: &BTreeSet<String>) -> Snapshot {
        let pods: Vec<(&String, &Kept)> =
            dirty.iter().filter_map(|k| self.store(Role::Pods).objects.get_key_value(k)).collect();
        let mut snapshot = Snapshot::new(jiff::Timestamp::now().as_second());
        let events = self.mirrors.iter().find(|s| s.role == Role::Events);
        let nodes = self.mirrors.iter().find(|s| s.role == Role::Nodes);
        for k in dirty {
            if let (Some(store), Some(keys)) = (events, self.events_by_subject.get(k)) {
                for e in keys.iter().filter_map(|e| store.objects.get_key_value(e)) {
                    add(&mut snapshot, Section::Event, e);
                }
            }
        }
        let used: BTreeSet<&str> = pods.iter().filter_map(|(_, p)| p.link()).collect();
        if let Some(store) = nodes {
            for n in used.into_iter().filter_map(|n| store.objects.get_key_value(n)) {
                add(&mut snapshot, Section::Node, n);
            }
        }
        // a kubeadm static pod carries both labels, so both reflectors hold it: add it once
        let control_plane: BTreeMap<&String, &Kept> =
            self.mirrors.iter().filter(|s| s.role == Role::ControlPlane).flat_map(|s| &s.objects).collect();
        for p in control_plane {
            add(&mut snapshot, Section::ControlPlane, p);
        }
        if self.cluster.sees_control_plane() {
            // the rules compare with every control-plane pod, not only the dirty ones
            let others = self.store(Role::Pods).objects.iter().filter(|(k, p)| {
                k.starts_with("kube-system/") && !dirty.contains(*k) && p.value().is_some_and(|p| is_control_plane(&p))
            });
            for p in others {
                add(&mut snapshot, Section::ControlPlane, p);
            }
        }
        // the workloads, then the pods' and workloads' owners and theirs
        for w in dirty.iter().filter_map(|k| self.workload(k)) {
            add(&mut snapshot, Section::Owner, w);
        }
        for (_, uid) in self.owners_of(dirty) {
            if !snapshot.owners.contains_key(&uid)
                && let Some(owner) = self.owner(&uid)
            {
                add(&mut snapshot, Section::Owner, (&uid, owner));
            }
        }
        for p in pods {
            add(&mut snapshot, Section::Pod, p);
        }
        snapshot
    }

    /// `(kind, uid)` of the owners that the pods and workloads of `keys` name
    /// (see [`owner_refs`]), and of theirs.
    fn owners_of(&self, keys: &BTreeSet<String>) -> BTreeSet<(String, String)> {
        let pods = &self.store(Role::Pods).objects;
        let owned = keys.iter().filter_map(|k| pods.get(k).or_else(|| self.workload(k).map(|(_, w)| w)));
        let mut refs: BTreeSet<_> = owned.filter_map(Kept::value).flat_map(|o| owner_refs([&o])).collect();
        // and theirs the watch holds (a ReplicaSet's Deployment, a Job's CronJob), for their `k8srule.dev/ignore`
        let owners: Vec<Value> = refs.iter().filter_map(|(_, uid)| self.owner(uid)?.value()).collect();
        refs.extend(owner_refs(owners.iter()));
        refs
    }

    /// Diagnoses the `dirty` pods and workloads and reports what changed.
    /// When a pack reads logs, a pod's logs are read only when its findings
    /// without them changed (a restart, a new state, a new event), not at
    /// every change.
    async fn flush_some(&mut self, dirty: BTreeSet<String>, sink: &mut dyn FnMut(Change)) {
        let started = Instant::now();
        // reflected workloads are every owner there is
        let reflected = self.mirrors.iter().any(|s| matches!(s.role, Role::Workloads(_)));
        if self.diagnoser.needs().owners && !reflected {
            // the pods' owners, then theirs (a ReplicaSet's Deployment, a Job's CronJob), for their `k8srule.dev/ignore`
            self.fetch_owners(self.owners_of(&dirty), sink).await;
            self.fetch_owners(self.owners_of(&dirty), sink).await;
        }
        let snapshot = self.snapshot_of(&dirty);
        let mut report = self.diagnoser.diagnose(&snapshot);
        let mut notes = snapshot.notes;
        let mut unchanged = BTreeSet::new();
        if let Some(redactor) = self.diagnoser.logs() {
            let mut by_pod: HashMap<&str, HashSet<Identity>> = HashMap::new();
            for f in &report.findings {
                by_pod.entry(f.subject()).or_default().insert(identity(f));
            }
            let mut changed = BTreeSet::new();
            for key in &dirty {
                let now = by_pod.remove(key.as_str()).unwrap_or_default();
                if self.without_logs.get(key) == Some(&now) {
                    unchanged.insert(key.clone());
                } else {
                    changed.insert(key.clone());
                }
                if now.is_empty() {
                    self.without_logs.remove(key)
                } else {
                    self.without_logs.insert(key.clone(), now)
                };
            }
            let mut with_logs = self.snapshot_of(&changed);
            self.cluster.read_logs(&mut with_logs, redactor, crate::input::live::LogBounds::default()).await;
            let logged = self.diagnoser.diagnose(&with_logs);
            report.findings = logged.findings;
            for e in logged.errors {
                if !report.errors.contains(&e) {
                    report.errors.push(e);
                }
            }
            notes.extend(with_logs.notes);
        }
        for n in notes {
            if self.noted.insert(n.clone()) {
                sink(Change::Note(n));
            }
        }
        if let Some(m) = &self.options.metrics {
            m.diagnosed(report.summary.pods, started.elapsed(), report.errors.iter().map(|e| e.pack.as_str()));
        }
        for e in &report.errors {
            sink(Change::Note(format!("pack {} failed: {}", e.pack, e.message)));
        }
        let mut found: BTreeMap<String, Vec<Finding>> = BTreeMap::new();
        for f in report.findings {
            found.entry(f.subject().to_string()).or_default().push(f);
        }
        for key in &dirty {
            let deleted = !self.store(Role::Pods).objects.contains_key(key) && self.workload(key).is_none();
            let old = self.findings.remove(key).unwrap_or_default();
            // findings read from logs last time stand while the others do not change
            let new = if unchanged.contains(key) { old.clone() } else { found.remove(key).unwrap_or_default() };
            let before: HashSet<_> = old.iter().map(identity).collect();
            let after: HashSet<_> = new.iter().map(identity).collect();
            for f in old.iter().filter(|f| !after.contains(&identity(f))) {
                sink(Change::Resolved { finding: Box::new(f.clone()), pod_deleted: deleted });
            }
            if self.events.is_some() {
                // one Event per cause on the pod (or workload), while it stays
                let mut causes: HashSet<&str> = old.iter().map(|f| f.cause.as_str()).collect();
                for f in new.iter().filter(|f| causes.insert(f.cause.as_str())) {
                    self.emit_event(f, sink).await;
                }
            }
            for f in new.iter().filter(|f| !before.contains(&identity(f))) {
                sink(Change::New(Box::new(f.clone())));
            }
            if !new.is_empty() {
                self.findings.insert(key.clone(), new);
            }
        }
    }

    /// Writes the Event of a cause new on a pod or a workload, within the
    /// rate limit. In the first diagnosis, one k8srule wrote before a
    /// restart (the same reason on the same object) stands for it.
    async fn emit_event(&mut self, f: &Finding, sink: &mut dyn FnMut(Change)) {
        let (object, resource) = match f.pod {
            Some(_) => (self.store(Role::Pods).objects.get(f.subject()), ApiResource::erase::<Pod>(&())),
            // `ns/Kind/name`
            None => (
                self.workload(f.subject()).map(|(_, w)| w),
                workload_resource(f.subject().split('/').nth(1).unwrap_or_default()),
            ),
        };
        let Some(object) = object.and_then(Kept::value) else { return };
        let meta = &object["metadata"];
        let text = |v: &Value| v.as_str().map(str::to_string);
        let reference = ObjectReference {
            api_version: Some(resource.api_version),
            kind: Some(resource.kind),
            namespace: text(&meta["namespace"]),
            name: text(&meta["name"]),
            uid: text(&meta["uid"]),
            ..ObjectReference::default()
        };
        let reason = event_reason(&f.cause);
        if self.initial && self.written_before(f.subject(), &reason, reference.uid.as_deref()) {
            return;
        }
        let metrics = self.options.metrics.as_deref();
        let Some(events) = &mut self.events else { return };
        if !events.budget.take(Instant::now()) {
            events.dropped += 1;
            if let Some(m) = metrics {
                m.event("dropped");
            }
            return;
        }
        let event = events::Event {
            type_: if f.severity >= Severity::Warning { EventType::Warning } else { EventType::Normal },
            reason,
            note: Some(truncate(&f.title, 1024)),
            action: "Diagnose".into(),
            secondary: None,
        };
        let written = events.recorder.publish(&event, &reference).await;
        if let Some(m) = metrics {
            m.event(if written.is_ok() { "written" } else { "failed" });
        }
        if let Err(e) = written {
            let ns = reference.namespace.as_deref().unwrap_or("default");
            sink(Change::Note(self.cluster.error(&format!("write an event in namespace {ns}"), e).to_string()));
        }
    }

    /// Whether an Event of k8srule with this reason is on the pod or workload `key`.
    fn written_before(&self, key: &str, reason: &str, uid: Option<&str>) -> bool {
        let Some(store) = self.mirrors.iter().find(|s| s.role == Role::Events) else { return false };
        let keys = self.events_by_subject.get(key).into_iter().flatten();
        keys.filter_map(|k| store.objects.get(k)?.value()).any(|e| {
            let by = |path: &str| e.pointer(path).and_then(Value::as_str) == Some(COMPONENT);
            (by("/reportingComponent") || by("/source/component"))
                && e["reason"].as_str() == Some(reason)
                && e.pointer("/involvedObject/uid").and_then(Value::as_str) == uid
        })
    }
}

/// The Events of `--emit-events`.
struct Events {
    recorder: Recorder,
    budget: Budget,
    /// Dropped over the budget since the last note.
    dropped: usize,
}

/// A token bucket: `per_minute` tokens at most, refilled at that rate.
struct Budget {
    per_minute: u32,
    tokens: f64,
    at: Instant,
}

impl Budget {
    fn new(per_minute: u32) -> Budget {
        Budget { per_minute, tokens: f64::from(per_minute), at: Instant::now() }
    }

    /// Takes a token if there is one at `now`.
    fn take(&mut self, now: Instant) -> bool {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * f64::from(self.per_minute) / 60.0;
        self.tokens = (self.tokens + refill).min(f64::from(self.per_minute));
        self.at = now;
        let taken = self.tokens >= 1.0;
        if taken {
            self.tokens -= 1.0;
        }
        taken
    }
}

/// Adds a kept object to a snapshot.
fn add(snapshot: &mut Snapshot, part: Section, (key, kept): (&String, &Kept)) {
    if let Err(e) = snapshot.add_to_section(part, &mut serde_json::Deserializer::from_str(&kept.json)) {
        snapshot.notes.push(format!("cannot read back {key}: {e}"));
    }
}

/// Pods and workloads diagnosed together by a flush.
const FLUSH_PODS: usize = 4096;

/// The `source.component` of the Events k8srule writes.
pub const COMPONENT: &str = "k8srule";

/// An Event reason from a cause: `cgroup-oom` -> `CgroupOom`.
pub fn event_reason(cause: &str) -> String {
    let mut out = String::new();
    for part in cause.split(|c: char| !c.is_ascii_alphanumeric()).filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(c) = chars.next() {
            out.push(c.to_ascii_uppercase());
            out.extend(chars);
        }
    }
    if out.is_empty() {
        out.push_str("Diagnosis");
    }
    truncate(&out, 128)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max - 3;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_and_workloads_are_keyed_as_findings_name_their_subject() {
        let event = |kind: Value| serde_json::json!({"metadata": {"namespace": "shop"}, "involvedObject": {"kind": kind, "name": "web"}});
        assert_eq!(event_subject(&event(Value::Null)).as_deref(), Some("shop/web"));
        assert_eq!(event_subject(&event("Pod".into())).as_deref(), Some("shop/web"));
        assert_eq!(event_subject(&event("CronJob".into())).as_deref(), Some("shop/CronJob/web"));
        assert_eq!(event_subject(&event("Node".into())), None);
        let object = |kind: &str| serde_json::json!({"kind": kind, "metadata": {"namespace": "shop", "name": "web"}});
        assert_eq!(key_of(&object("Pod")), "shop/web");
        assert_eq!(key_of(&object("ReplicaSet")), "shop/ReplicaSet/web");
        assert_eq!(key_of(&serde_json::json!({"kind": "Node", "metadata": {"name": "node-1"}})), "node-1");
    }

    #[test]
    fn a_watch_keeps_the_fields_read_and_finds_what_the_whole_pod_gives() {
        let rule = "rule t.waiting {\n  cause \"x\"\n  severity error\n  for c in containers\n  \
                    when c.state.waiting.reason == \"CrashLoopBackOff\"\n  title \"{c.name} waits\"\n}\n";
        let diagnoser = Diagnoser::builder().builtin(false).rules_source("t.k8srule", rule).build().unwrap();
        let pod = serde_json::json!({"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": "a", "namespace": "ns", "uid": "u", "annotations": {"big": "x".repeat(4096)}},
            "spec": {"nodeName": "n1", "containers": [{"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}]}]},
            "status": {"containerStatuses": [{"name": "app", "image": "app:1", "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}}]}});
        let kept = Kept::new(&pod, &diagnoser.fields(), None);
        assert_eq!(
            kept.value().unwrap(),
            // the annotations object stays, for `k8srule.dev/ignore`, without the others
            serde_json::json!({"kind": "Pod", "apiVersion": "v1",
                "metadata": {"name": "a", "namespace": "ns", "uid": "u", "annotations": {}},
                "spec": {"nodeName": "n1", "containers": [{"name": "app"}]},
                "status": {"containerStatuses": [{"name": "app", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}})
        );
        let findings = |snapshot: Snapshot| {
            let report = diagnoser.diagnose(&snapshot);
            report.findings.iter().map(|f| (f.subject().to_string(), f.title.clone())).collect::<Vec<_>>()
        };
        let mut whole = Snapshot::new(0);
        whole.add_value("pod.json", &pod).unwrap();
        let mut from_kept = Snapshot::new(0);
        add(&mut from_kept, Section::Pod, (&"ns/a".to_string(), &kept));
        assert!(from_kept.notes.is_empty(), "{:?}", from_kept.notes);
        assert_eq!(findings(from_kept), vec![("ns/a".to_string(), "app waits".to_string())]);
        assert_eq!(findings(whole), vec![("ns/a".to_string(), "app waits".to_string())]);
    }

    #[test]
    fn reasons_are_upper_camel_case() {
        assert_eq!(event_reason("cgroup-oom"), "CgroupOom");
        assert_eq!(event_reason("state.CrashLoopBackOff"), "StateCrashLoopBackOff");
        assert_eq!(event_reason("--"), "Diagnosis");
    }

    #[test]
    fn the_budget_gives_a_minute_at_once_then_refills_at_its_rate() {
        let mut budget = Budget::new(60);
        let start = budget.at;
        assert_eq!((0..100).filter(|_| budget.take(start)).count(), 60);
        assert!(!budget.take(start + Duration::from_millis(500)));
        assert!(budget.take(start + Duration::from_millis(1000)));
        assert!(!budget.take(start + Duration::from_millis(1100)));
        // a long pause refills a minute's worth, no more
        let later = start + Duration::from_secs(3600);
        assert_eq!((0..100).filter(|_| budget.take(later)).count(), 60);
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let s = "é".repeat(600);
        let t = truncate(&s, 1024);
        assert!(t.len() <= 1024 && t.ends_with("..."));
    }
}
