//! Cases: one per pod, with everything a rule may read about it. The parts
//! are found when a pack first reads them, so a pack that reads only the
//! pod's fields costs nothing more.

use std::cell::OnceCell;
use std::collections::HashMap;

use crate::doc::{Doc, Store, Sym};
use crate::snapshot::Snapshot;

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
    /// Per kind of container: `spec.<list>` and `status.<list>`.
    lists: [[[Option<Sym>; 2]; 2]; 3],
}

impl Keys {
    fn new(store: &Store) -> Self {
        let k = |path: [&str; 2]| path.map(|s| store.sym(s));
        let list = |spec: &str, status: &str| [k(["spec", spec]), k(["status", status])];
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
            lists: [
                list("initContainers", "initContainerStatuses"),
                list("containers", "containerStatuses"),
                list("ephemeralContainers", "ephemeralContainerStatuses"),
            ],
        }
    }
}

fn str_at<'a>(d: Doc<'a>, keys: &[Option<Sym>]) -> Option<&'a str> {
    d.at_syms(keys)?.as_str()
}

/// A container with its spec and status merged.
#[derive(Debug)]
pub struct ContainerView<'a> {
    pub name: &'a str,
    pub spec: Option<Doc<'a>>,
    pub status: Option<Doc<'a>>,
    /// `init`, `regular` or `ephemeral`.
    pub kind: &'static str,
    /// The pod spec's list of this kind of container (`initContainers`...).
    list: &'static str,
    events: OnceCell<Vec<Doc<'a>>>,
}

impl<'a> ContainerView<'a> {
    /// The events of its pod (`pod_events`) whose `involvedObject.fieldPath` names this container.
    pub fn events(&self, pod_events: &[Doc<'a>]) -> &[Doc<'a>] {
        self.events.get_or_init(|| {
            let field_path = format!("spec.{}{{{}}}", self.list, self.name);
            let named = |e: &Doc<'a>| e.str_at(&["involvedObject", "fieldPath"]) == Some(field_path.as_str());
            pod_events.iter().copied().filter(named).collect()
        })
    }
}

pub struct Case<'a> {
    index: &'a Index<'a>,
    pub pod: Doc<'a>,
    events: OnceCell<Vec<Doc<'a>>>,
    containers: OnceCell<Vec<ContainerView<'a>>>,
    owners: OnceCell<Vec<Doc<'a>>>,
}

impl<'a> Case<'a> {
    /// `namespace/name` of the pod.
    pub fn pod_name(&self) -> String {
        let keys = &self.index.keys;
        let (ns, name) = (str_at(self.pod, &keys.namespace), str_at(self.pod, &keys.name));
        format!("{}/{}", ns.unwrap_or("default"), name.unwrap_or(""))
    }

    /// The node the pod is bound to, when the snapshot has it.
    pub fn node(&self) -> Option<Doc<'a>> {
        self.node_name().and_then(|n| self.index.nodes.get(n).copied())
    }

    fn node_name(&self) -> Option<&'a str> {
        str_at(self.pod, &self.index.keys.node_name)
    }

    /// The pod's events, oldest first.
    pub fn events(&self) -> &[Doc<'a>] {
        self.events.get_or_init(|| self.index.events_of(self.pod))
    }

    /// Init, regular and ephemeral containers, in that order.
    pub fn containers(&self) -> &[ContainerView<'a>] {
        self.containers.get_or_init(|| containers(&self.index.keys, self.pod))
    }

    /// The pod's ownerReferences, then those of each owner the snapshot holds.
    pub fn owners(&self) -> &[Doc<'a>] {
        self.owners.get_or_init(|| self.index.owner_chain(self.pod))
    }

    /// The kube-system control-plane pods.
    pub fn control_plane(&self) -> &'a [Doc<'a>] {
        &self.index.control_plane
    }

    /// Log lines of the pod's node.
    pub fn node_logs(&self) -> &'a [Doc<'a>] {
        self.node_name().and_then(|n| self.index.logs.get(n)).map_or(&[], Vec::as_slice)
    }
}

/// The indexes that turn a snapshot into cases.
pub struct Index<'a> {
    snapshot: &'a Snapshot,
    events_by_uid: HashMap<&'a str, Vec<Doc<'a>>>,
    events_by_name: HashMap<(&'a str, &'a str), Vec<Doc<'a>>>,
    nodes: HashMap<&'a str, Doc<'a>>,
    logs: HashMap<&'a str, Vec<Doc<'a>>>,
    control_plane: Vec<Doc<'a>>,
    keys: Keys,
}

impl<'a> Index<'a> {
    pub fn new(snapshot: &'a Snapshot) -> Self {
        let keys = Keys::new(&snapshot.store);
        let doc = |n| snapshot.get(n);
        let mut events_by_uid: HashMap<&str, Vec<Doc>> = HashMap::new();
        let mut events_by_name: HashMap<(&str, &str), Vec<Doc>> = HashMap::new();
        for e in snapshot.events.iter().map(|n| doc(*n)) {
            let obj = e.at_syms(&keys.involved_object);
            let field = |k: &[Option<Sym>]| obj.and_then(|o| str_at(o, k));
            if field(&keys.own_kind).is_some_and(|k| k != "Pod") {
                continue;
            }
            match field(&keys.own_uid).filter(|u| !u.is_empty()) {
                Some(uid) => events_by_uid.entry(uid).or_default().push(e),
                None => {
                    let ns = field(&keys.own_namespace).or_else(|| str_at(e, &keys.namespace)).unwrap_or("default");
                    events_by_name.entry((ns, field(&keys.own_name).unwrap_or(""))).or_default().push(e);
                }
            }
        }
        let nodes = snapshot.nodes.iter().filter_map(|n| Some((str_at(doc(*n), &keys.name)?, doc(*n)))).collect();
        let mut logs: HashMap<&str, Vec<Doc>> = HashMap::new();
        for l in &snapshot.node_logs {
            logs.entry(l.node.as_str()).or_default().push(doc(l.value));
        }
        let mut control_plane: Vec<Doc> = snapshot
            .pods
            .iter()
            .map(|n| doc(*n))
            .filter(|p| {
                str_at(*p, &keys.namespace) == Some("kube-system")
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
        Index { snapshot, events_by_uid, events_by_name, nodes, logs, control_plane, keys }
    }

    pub fn cases(&self) -> Vec<Case<'_>> {
        self.snapshot
            .pods
            .iter()
            .map(|pod| Case {
                index: self,
                pod: self.snapshot.get(*pod),
                events: OnceCell::new(),
                containers: OnceCell::new(),
                owners: OnceCell::new(),
            })
            .collect()
    }

    fn events_of(&self, pod: Doc<'a>) -> Vec<Doc<'a>> {
        let keys = &self.keys;
        let mut events: Vec<Doc> = Vec::new();
        if let Some(uid) = str_at(pod, &keys.uid) {
            events.extend(self.events_by_uid.get(uid).into_iter().flatten());
        }
        if !self.events_by_name.is_empty()
            && let Some(name) = str_at(pod, &keys.name)
        {
            let ns = str_at(pod, &keys.namespace).unwrap_or("default");
            events.extend(self.events_by_name.get(&(ns, name)).into_iter().flatten());
        }
        if events.len() > 1 {
            events.sort_by(|a, b| event_time(*a).cmp(event_time(*b)));
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

fn event_time(e: Doc<'_>) -> &str {
    e.str_at(&["lastTimestamp"]).or_else(|| e.str_at(&["eventTime"])).unwrap_or("")
}

fn containers<'a>(keys: &Keys, pod: Doc<'a>) -> Vec<ContainerView<'a>> {
    let mut out = Vec::with_capacity(2);
    let name_of = |v: &Doc<'a>| str_at(*v, &keys.own_name);
    for (kind, list, [spec_path, status_path]) in
        [("init", "initContainers"), ("regular", "containers"), ("ephemeral", "ephemeralContainers")]
            .into_iter()
            .zip(&keys.lists)
            .map(|((kind, list), paths)| (kind, list, paths))
    {
        let items_at = |path: &[Option<Sym>]| pod.at_syms(path).map(Doc::items).into_iter().flatten();
        let (specs, statuses) = (items_at(spec_path), items_at(status_path));
        // a spec and its status are usually at the same index
        let status_of = |i: usize, name: &str| {
            statuses
                .clone()
                .nth(i)
                .filter(|s| name_of(s) == Some(name))
                .or_else(|| statuses.clone().find(|s| name_of(s) == Some(name)))
        };
        for (i, spec) in specs.clone().enumerate() {
            let Some(name) = name_of(&spec) else { continue };
            out.push(ContainerView {
                name,
                spec: Some(spec),
                status: status_of(i, name),
                kind,
                list,
                events: OnceCell::new(),
            });
        }
        // statuses without a spec (a pod dump without spec) still count
        for status in statuses {
            let Some(name) = name_of(&status) else { continue };
            if !specs.clone().any(|s| name_of(&s) == Some(name)) {
                out.push(ContainerView { name, spec: None, status: Some(status), kind, list, events: OnceCell::new() });
            }
        }
    }
    out
}
