//! Cases: one per pod, with everything a rule may read about it, and one per
//! workload for packs with workload rules. The parts are found when a pack
//! first reads them, so a pack that reads only the pod's fields costs
//! nothing more.

use std::cell::OnceCell;
use std::collections::HashMap;
use std::sync::OnceLock;

use crate::input::snapshot::Snapshot;
use crate::input::tree::{Arena, Doc, Node, Sym};

/// The keys the host reads on every pod, resolved once to string ids.
struct Keys {
    uid: [Option<Sym>; 2],
    name: [Option<Sym>; 2],
    namespace: [Option<Sym>; 2],
    node_name: [Option<Sym>; 2],
    owner_references: [Option<Sym>; 2],
    /// Keys of a container, an owner reference or an event's `involvedObject`.
    own_name: [Option<Sym>; 1],
    own_uid: [Option<Sym>; 1],
    own_kind: [Option<Sym>; 1],
    own_namespace: [Option<Sym>; 1],
    involved_object: [Option<Sym>; 1],
    /// An event's `involvedObject.fieldPath`.
    field_path: [Option<Sym>; 2],
    /// `spec` and `status`.
    spec_status: [Option<Sym>; 2],
    /// The keys of the lists of each kind of container under `spec`, and under `status`.
    spec_lists: [Option<Sym>; 3],
    status_lists: [Option<Sym>; 3],
    kube_system: Option<Sym>,
}

impl Keys {
    fn new(store: &Arena) -> Self {
        let k = |path: [&str; 2]| path.map(|s| store.sym(s));
        Keys {
            uid: k(["metadata", "uid"]),
            name: k(["metadata", "name"]),
            namespace: k(["metadata", "namespace"]),
            node_name: k(["spec", "nodeName"]),
            owner_references: k(["metadata", "ownerReferences"]),
            own_name: [store.sym("name")],
            own_uid: [store.sym("uid")],
            own_kind: [store.sym("kind")],
            own_namespace: [store.sym("namespace")],
            involved_object: [store.sym("involvedObject")],
            field_path: k(["involvedObject", "fieldPath"]),
            spec_status: [store.sym("spec"), store.sym("status")],
            spec_lists: ContainerKind::ALL.map(|kind| store.sym(kind.spec_list())),
            status_lists: ContainerKind::ALL.map(|kind| store.sym(kind.status_list())),
            kube_system: store.sym("kube-system"),
        }
    }
}

fn str_at<'a>(d: Doc<'a>, keys: &[Option<Sym>]) -> Option<&'a str> {
    d.at_syms(keys)?.as_str()
}

/// The value of `key` in an object.
fn key<'a>(d: Doc<'a>, key: Option<Sym>) -> Option<Doc<'a>> {
    d.get_sym(key?)
}

/// Init, regular or ephemeral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    Init,
    Regular,
    Ephemeral,
}

impl ContainerKind {
    pub const ALL: [ContainerKind; 3] = [ContainerKind::Init, ContainerKind::Regular, ContainerKind::Ephemeral];

    /// What rules see as `c.kind`.
    pub fn name(self) -> &'static str {
        ["init", "regular", "ephemeral"][self as usize]
    }

    /// The pod spec's list of this kind of container.
    pub fn spec_list(self) -> &'static str {
        ["initContainers", "containers", "ephemeralContainers"][self as usize]
    }

    pub fn status_list(self) -> &'static str {
        ["initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"][self as usize]
    }
}

/// A container with its spec and status merged.
#[derive(Debug, Clone, Copy)]
pub struct Container<'a> {
    pub name: &'a str,
    pub spec: Option<Doc<'a>>,
    pub status: Option<Doc<'a>>,
    pub kind: ContainerKind,
}

impl<'a> Container<'a> {
    /// Whether an event's `involvedObject.fieldPath` (`spec.containers{app}`) names this container.
    fn named_by(&self, field_path: &str) -> bool {
        let inner = field_path.strip_prefix("spec.").and_then(|p| p.strip_prefix(self.kind.spec_list()));
        inner.and_then(|p| p.strip_prefix('{')).and_then(|p| p.strip_suffix('}')) == Some(self.name)
    }
}

/// What a case is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseKind {
    Pod,
    /// One of [`crate::input::snapshot::OWNER_KINDS`]: a rule with the workload scope reads it.
    Workload,
}

pub struct Case<'a> {
    index: &'a Index<'a>,
    /// The pod, or the workload.
    pub object: Doc<'a>,
    pub kind: CaseKind,
    events: OnceCell<Vec<Doc<'a>>>,
    owners: OnceCell<Vec<Doc<'a>>>,
}

impl<'a> Case<'a> {
    /// `namespace/name` of the pod, `namespace/Kind/name` of a workload.
    pub fn name(&self) -> String {
        let (index, object) = (self.index, self.object);
        let name = str_at(object, &index.keys.name).unwrap_or("");
        match self.kind {
            CaseKind::Pod => format!("{}/{name}", index.namespace(object)),
            CaseKind::Workload => {
                let kind = str_at(object, &index.keys.own_kind).unwrap_or("");
                format!("{}/{kind}/{name}", index.namespace(object))
            }
        }
    }

    /// `pod` or `workload`.
    pub fn noun(&self) -> &'static str {
        match self.kind {
            CaseKind::Pod => "pod",
            CaseKind::Workload => "workload",
        }
    }

    /// What the case is about, for messages: `pod NS/NAME`, `workload NS/KIND/NAME`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.noun(), self.name())
    }

    /// The node the pod is bound to, when the snapshot has it.
    pub fn node(&self) -> Option<Doc<'a>> {
        self.node_name().and_then(|n| self.index.nodes.get(n).copied())
    }

    fn node_name(&self) -> Option<&'a str> {
        str_at(self.object, &self.index.keys.node_name)
    }

    /// The pod's (or the workload's) events, oldest first.
    pub fn events(&self) -> &[Doc<'a>] {
        self.events.get_or_init(|| self.index.events_of(self.object))
    }

    /// Container `i` of [`Case::each_container`], or how many there are.
    pub fn container(&self, i: usize) -> Result<Container<'a>, usize> {
        let (mut n, mut found) = (0, None);
        self.each_container(|c| {
            if n == i {
                found = Some(c);
            }
            n += 1;
        });
        found.ok_or(n)
    }

    /// Calls `f` with each container: init, regular and ephemeral ones, in that order.
    pub fn each_container(&self, mut f: impl FnMut(Container<'a>)) {
        let keys = &self.index.keys;
        let [spec, status] = self.object.get_syms(&keys.spec_status);
        let spec_lists = spec.map_or([None; 3], |s| s.get_syms(&keys.spec_lists));
        let status_lists = status.map_or([None; 3], |s| s.get_syms(&keys.status_lists));
        let store = &self.index.snapshot.store;
        // a container's name, as a string id
        let name_of = |d: Doc<'a>| key(d, keys.own_name[0]).and_then(Doc::sym);
        let container = |name, spec, status, kind| Container { name: store.string(name), spec, status, kind };
        // the items of a list that may be missing
        let items = |list: Option<Doc<'a>>| list.unwrap_or(store.get(Node::NULL)).items();
        for (k, kind) in ContainerKind::ALL.into_iter().enumerate() {
            if spec_lists[k].is_none() && status_lists[k].is_none() {
                continue;
            }
            let (specs, statuses) = (items(spec_lists[k]), items(status_lists[k]));
            let mut matched = 0;
            for (i, spec) in specs.clone().enumerate() {
                let Some(name) = name_of(spec) else { continue };
                let same = |s: &Doc<'a>| name_of(*s) == Some(name);
                // a spec and its status are usually at the same index
                let status = statuses.clone().nth(i).filter(same).or_else(|| statuses.clone().find(same));
                matched += usize::from(status.is_some());
                f(container(name, Some(spec), status, kind));
            }
            // statuses without a spec (a pod dump without spec) still count
            if matched < statuses.len() {
                for status in statuses {
                    let Some(name) = name_of(status) else { continue };
                    if !specs.clone().any(|s| name_of(s) == Some(name)) {
                        f(container(name, None, Some(status), kind));
                    }
                }
            }
        }
    }

    /// The events of the pod whose `involvedObject.fieldPath` names container `c`.
    pub fn container_events(&self, c: &Container<'a>) -> impl Iterator<Item = Doc<'a>> {
        let field_path = &self.index.keys.field_path;
        self.events().iter().copied().filter(move |e| c.named_by(str_at(*e, field_path).unwrap_or("")))
    }

    /// The pod's ownerReferences, then those of each owner the snapshot holds.
    pub fn owners(&self) -> &[Doc<'a>] {
        self.owners.get_or_init(|| self.index.owner_chain(self.object))
    }

    /// The kube-system control-plane pods.
    pub fn control_plane(&self) -> &'a [Doc<'a>] {
        self.index.control_plane.get_or_init(|| self.index.find_control_plane())
    }

    /// Log lines of the pod's node.
    pub fn node_logs(&self) -> &'a [Doc<'a>] {
        self.node_name().and_then(|n| self.index.logs.get(n)).map_or(&[], Vec::as_slice)
    }

    /// The log lines of container `c`: its previous run's, then its current run's.
    pub fn container_logs(&self, c: &Container<'a>) -> [&'a [Doc<'a>]; 2] {
        let index = self.index;
        if index.container_logs.is_empty() {
            return [&[]; 2];
        }
        let name = str_at(self.object, &index.keys.name).unwrap_or("");
        index.container_logs.get(&(index.namespace(self.object), name, c.name)).map_or([&[]; 2], |[p, c]| [p, c])
    }
}

/// The indexes that turn a snapshot into cases.
pub struct Index<'a> {
    snapshot: &'a Snapshot,
    events_by_uid: HashMap<&'a str, Vec<Doc<'a>>>,
    /// Events without a uid, by kind, namespace and name of the object.
    events_by_name: HashMap<(&'a str, &'a str, &'a str), Vec<Doc<'a>>>,
    nodes: HashMap<&'a str, Doc<'a>>,
    logs: HashMap<&'a str, Vec<Doc<'a>>>,
    /// By namespace, pod and container: the previous run's lines and the current run's.
    container_logs: HashMap<(&'a str, &'a str, &'a str), [Vec<Doc<'a>>; 2]>,
    control_plane: OnceLock<Vec<Doc<'a>>>,
    keys: Keys,
}

impl<'a> Index<'a> {
    pub fn new(snapshot: &'a Snapshot) -> Self {
        let keys = Keys::new(&snapshot.store);
        let doc = |n| snapshot.get(n);
        let mut events_by_uid: HashMap<&str, Vec<Doc>> = HashMap::new();
        let mut events_by_name: HashMap<(&str, &str, &str), Vec<Doc>> = HashMap::new();
        for e in snapshot.events.iter().map(|n| doc(*n)) {
            let obj = e.at_syms(&keys.involved_object);
            let field = |k: &[Option<Sym>]| obj.and_then(|o| str_at(o, k));
            match field(&keys.own_uid).filter(|u| !u.is_empty()) {
                Some(uid) => events_by_uid.entry(uid).or_default().push(e),
                None => {
                    let ns = field(&keys.own_namespace).or_else(|| str_at(e, &keys.namespace)).unwrap_or("default");
                    let kind = field(&keys.own_kind).unwrap_or("Pod");
                    events_by_name.entry((kind, ns, field(&keys.own_name).unwrap_or(""))).or_default().push(e);
                }
            }
        }
        let nodes = snapshot.nodes.iter().filter_map(|n| Some((str_at(doc(*n), &keys.name)?, doc(*n)))).collect();
        let mut logs: HashMap<&str, Vec<Doc>> = HashMap::new();
        for l in &snapshot.node_logs {
            logs.entry(l.node.as_str()).or_default().push(doc(l.value));
        }
        let mut container_logs: HashMap<_, [Vec<Doc>; 2]> = HashMap::new();
        for l in &snapshot.container_logs {
            let runs = container_logs.entry((l.namespace.as_str(), l.pod.as_str(), l.container.as_str())).or_default();
            runs[usize::from(!l.previous)].extend(l.lines.iter().map(|n| doc(*n)));
        }
        Index {
            snapshot,
            events_by_uid,
            events_by_name,
            nodes,
            logs,
            container_logs,
            control_plane: OnceLock::new(),
            keys,
        }
    }

    /// `namespace/pod` of each pod that has logs in the snapshot but is not in it.
    pub fn pods_of_orphan_logs(&self) -> Vec<String> {
        if self.container_logs.is_empty() {
            return Vec::new();
        }
        let snapshot = self.snapshot;
        let pods: std::collections::HashSet<(&str, &str)> = (snapshot.pods.iter().chain(&snapshot.control_plane))
            .map(|n| snapshot.get(*n))
            .map(|p| (self.namespace(p), str_at(p, &self.keys.name).unwrap_or("")))
            .collect();
        let mut orphans: Vec<String> = (self.container_logs.keys())
            .filter(|(ns, pod, _)| !pods.contains(&(*ns, *pod)))
            .map(|(ns, pod, _)| format!("{ns}/{pod}"))
            .collect();
        orphans.sort();
        orphans.dedup();
        orphans
    }

    fn find_control_plane(&self) -> Vec<Doc<'a>> {
        let (snapshot, keys) = (self.snapshot, &self.keys);
        let doc = |n| snapshot.get(n);
        let mut control_plane: Vec<Doc> = snapshot
            .pods
            .iter()
            .map(|n| doc(*n))
            .filter(|p| {
                keys.kube_system.is_some()
                    && p.at_syms(&keys.namespace).and_then(Doc::sym) == keys.kube_system
                    && (p.path(&["metadata", "labels", "component"]).is_some()
                        || p.str_at(&["metadata", "labels", "tier"]) == Some("control-plane"))
            })
            .collect();
        // pods read for context only, unless they are among the diagnosed ones
        for p in snapshot.control_plane.iter().map(|n| doc(*n)) {
            let uid = str_at(p, &keys.uid);
            if uid.is_none() || !control_plane.iter().any(|c| str_at(*c, &keys.uid) == uid) {
                control_plane.push(p);
            }
        }
        control_plane
    }

    pub fn snapshot(&self) -> &'a Snapshot {
        self.snapshot
    }

    /// The cases of `objects`, pods or workloads.
    pub fn cases(&'a self, objects: &[Node], kind: CaseKind) -> Vec<Case<'a>> {
        objects
            .iter()
            .map(|object| Case {
                index: self,
                object: self.snapshot.get(*object),
                kind,
                events: OnceCell::new(),
                owners: OnceCell::new(),
            })
            .collect()
    }

    /// The workloads of the snapshot, by namespace, kind and name.
    pub fn workloads(&self) -> Vec<Node> {
        let keys = &self.keys;
        let mut workloads: Vec<(&str, &str, &str, Node)> = (self.snapshot.owners.values())
            .map(|n| {
                let d = self.snapshot.get(*n);
                let kind = str_at(d, &keys.own_kind).unwrap_or("");
                (self.namespace(d), kind, str_at(d, &keys.name).unwrap_or(""), *n)
            })
            .collect();
        workloads.sort_unstable_by(|a, b| (a.0, a.1, a.2).cmp(&(b.0, b.1, b.2)));
        workloads.into_iter().map(|w| w.3).collect()
    }

    /// The namespace of a pod or a workload.
    pub fn namespace(&self, object: Doc<'a>) -> &'a str {
        str_at(object, &self.keys.namespace).unwrap_or("default")
    }

    fn events_of(&self, object: Doc<'a>) -> Vec<Doc<'a>> {
        let keys = &self.keys;
        let mut events: Vec<Doc> = Vec::new();
        if let Some(uid) = str_at(object, &keys.uid) {
            events.extend(self.events_by_uid.get(uid).into_iter().flatten());
        }
        if !self.events_by_name.is_empty()
            && let Some(name) = str_at(object, &keys.name)
        {
            let ns = str_at(object, &keys.namespace).unwrap_or("default");
            let kind = str_at(object, &keys.own_kind).unwrap_or("Pod");
            events.extend(self.events_by_name.get(&(kind, ns, name)).into_iter().flatten());
        }
        if events.len() > 1 {
            events.sort_by_cached_key(|e| event_time(*e));
        }
        events
    }

    fn owner_chain(&self, pod: Doc<'a>) -> Vec<Doc<'a>> {
        let mut chain = Vec::new();
        let mut current = pod;
        for _ in 0..8 {
            let Some(refs) = current.at_syms(&self.keys.owner_references) else {
                break;
            };
            chain.extend(refs.items());
            let next = refs.items().find_map(|r| self.snapshot.owners.get(str_at(r, &self.keys.own_uid)?));
            match next {
                Some(owner) => current = self.snapshot.get(*owner),
                None => break,
            }
        }
        chain
    }
}

/// When an event last happened, compared as a time (RFC 3339 with any
/// fraction and offset); none, first, for an event without a valid one.
fn event_time(e: Doc<'_>) -> Option<jiff::Timestamp> {
    ["lastTimestamp", "eventTime"].into_iter().find_map(|key| e.str_at(&[key])?.parse::<jiff::Timestamp>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_ordered_by_time_not_by_text() {
        let mut s = Snapshot::new(0);
        s.add_text("p.yaml", "kind: Pod\nmetadata: {name: web, namespace: shop, uid: u1}\n").unwrap();
        // as text, "12:00:00.5Z" < "12:00:00Z" and "13:30:00+02:00" > "12:00:00Z"
        let times = [
            ("half", "lastTimestamp: '2024-05-01T12:00:00.5Z'"),
            ("noon", "lastTimestamp: '2024-05-01T12:00:00Z'"),
            ("offset", "lastTimestamp: '2024-05-01T13:30:00+02:00'"),
            ("micro", "eventTime: '2024-05-01T12:00:00.250000+00:00'"),
            ("none", "reason: BackOff"),
            ("invalid", "lastTimestamp: yesterday"),
        ];
        for (name, time) in times {
            let event = format!("kind: Event\nmetadata: {{name: {name}}}\ninvolvedObject: {{uid: u1}}\n{time}\n");
            s.add_text("e.yaml", &event).unwrap();
        }
        let index = Index::new(&s);
        let cases = index.cases(&s.pods, CaseKind::Pod);
        let names: Vec<&str> = cases[0].events().iter().filter_map(|e| e.str_at(&["metadata", "name"])).collect();
        assert_eq!(names, ["none", "invalid", "offset", "noon", "micro", "half"]);
    }
}
