//! Cases: one per pod, with everything a rule may read about it. The parts
//! are found when a pack first reads them, so a pack that reads only the
//! pod's fields costs nothing more.

use std::cell::OnceCell;
use std::collections::HashMap;

use serde_json::Value;

use crate::snapshot::Snapshot;

/// A container with its spec and status merged.
#[derive(Debug)]
pub struct ContainerView<'a> {
    pub name: &'a str,
    pub spec: Option<&'a Value>,
    pub status: Option<&'a Value>,
    /// `init`, `regular` or `ephemeral`.
    pub kind: &'static str,
    /// The pod's events whose `involvedObject.fieldPath` names this container.
    pub events: Vec<&'a Value>,
}

pub struct Case<'a> {
    index: &'a Index<'a>,
    pub pod: &'a Value,
    events: OnceCell<Vec<&'a Value>>,
    containers: OnceCell<Vec<ContainerView<'a>>>,
    owners: OnceCell<Vec<&'a Value>>,
}

impl<'a> Case<'a> {
    /// `namespace/name` of the pod.
    pub fn pod_name(&self) -> String {
        let meta = &self.pod["metadata"];
        format!("{}/{}", meta["namespace"].as_str().unwrap_or("default"), meta["name"].as_str().unwrap_or(""))
    }

    /// The node the pod is bound to, when the snapshot has it.
    pub fn node(&self) -> Option<&'a Value> {
        self.node_name().and_then(|n| self.index.nodes.get(n).copied())
    }

    fn node_name(&self) -> Option<&'a str> {
        str_at(self.pod, &["spec", "nodeName"])
    }

    /// The pod's events, oldest first.
    pub fn events(&self) -> &[&'a Value] {
        self.events.get_or_init(|| self.index.events_of(self.pod))
    }

    /// Init, regular and ephemeral containers, in that order.
    pub fn containers(&self) -> &[ContainerView<'a>] {
        self.containers.get_or_init(|| containers(self.pod, self.events()))
    }

    /// The pod's ownerReferences, then those of each owner the snapshot holds.
    pub fn owners(&self) -> &[&'a Value] {
        self.owners.get_or_init(|| self.index.owner_chain(self.pod))
    }

    /// The kube-system control-plane pods.
    pub fn control_plane(&self) -> &'a [&'a Value] {
        &self.index.control_plane
    }

    /// Log lines of the pod's node.
    pub fn node_logs(&self) -> &'a [&'a Value] {
        self.node_name().and_then(|n| self.index.logs.get(n)).map_or(&[], Vec::as_slice)
    }
}

/// The indexes that turn a snapshot into cases.
pub struct Index<'a> {
    snapshot: &'a Snapshot,
    events_by_uid: HashMap<&'a str, Vec<&'a Value>>,
    events_by_name: HashMap<(&'a str, &'a str), Vec<&'a Value>>,
    nodes: HashMap<&'a str, &'a Value>,
    logs: HashMap<&'a str, Vec<&'a Value>>,
    control_plane: Vec<&'a Value>,
}

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |v, k| v.get(k)).and_then(Value::as_str)
}

impl<'a> Index<'a> {
    pub fn new(snapshot: &'a Snapshot) -> Self {
        let mut events_by_uid: HashMap<&str, Vec<&Value>> = HashMap::new();
        let mut events_by_name: HashMap<(&str, &str), Vec<&Value>> = HashMap::new();
        for e in &snapshot.events {
            let obj = &e["involvedObject"];
            if obj["kind"].as_str().is_some_and(|k| k != "Pod") {
                continue;
            }
            match obj["uid"].as_str().filter(|u| !u.is_empty()) {
                Some(uid) => events_by_uid.entry(uid).or_default().push(e),
                None => {
                    let ns = obj["namespace"]
                        .as_str()
                        .or_else(|| str_at(e, &["metadata", "namespace"]))
                        .unwrap_or("default");
                    events_by_name.entry((ns, obj["name"].as_str().unwrap_or(""))).or_default().push(e);
                }
            }
        }
        let nodes = snapshot.nodes.iter().filter_map(|n| Some((str_at(n, &["metadata", "name"])?, n))).collect();
        let mut logs: HashMap<&str, Vec<&Value>> = HashMap::new();
        for l in &snapshot.node_logs {
            logs.entry(l.node.as_str()).or_default().push(&l.value);
        }
        let mut control_plane: Vec<&Value> = snapshot
            .pods
            .iter()
            .filter(|p| {
                str_at(p, &["metadata", "namespace"]) == Some("kube-system")
                    && (p.pointer("/metadata/labels/component").is_some()
                        || str_at(p, &["metadata", "labels", "tier"]) == Some("control-plane"))
            })
            .collect();
        // pods read for context only, unless they are among the diagnosed ones
        for p in &snapshot.control_plane {
            let uid = str_at(p, &["metadata", "uid"]);
            if uid.is_none() || !control_plane.iter().any(|c| str_at(c, &["metadata", "uid"]) == uid) {
                control_plane.push(p);
            }
        }
        Index { snapshot, events_by_uid, events_by_name, nodes, logs, control_plane }
    }

    pub fn cases(&self) -> Vec<Case<'_>> {
        self.snapshot
            .pods
            .iter()
            .map(|pod| Case {
                index: self,
                pod,
                events: OnceCell::new(),
                containers: OnceCell::new(),
                owners: OnceCell::new(),
            })
            .collect()
    }

    fn events_of(&self, pod: &'a Value) -> Vec<&'a Value> {
        let meta = &pod["metadata"];
        let mut events: Vec<&Value> = Vec::new();
        if let Some(uid) = meta["uid"].as_str() {
            events.extend(self.events_by_uid.get(uid).into_iter().flatten());
        }
        if !self.events_by_name.is_empty()
            && let Some(name) = meta["name"].as_str()
        {
            let ns = meta["namespace"].as_str().unwrap_or("default");
            events.extend(self.events_by_name.get(&(ns, name)).into_iter().flatten());
        }
        if events.len() > 1 {
            events.sort_by(|a, b| event_time(a).cmp(event_time(b)));
        }
        events
    }

    fn owner_chain(&self, pod: &'a Value) -> Vec<&'a Value> {
        let mut chain = Vec::new();
        let mut current = pod;
        for _ in 0..8 {
            let Some(refs) = current["metadata"]["ownerReferences"].as_array() else {
                break;
            };
            chain.extend(refs.iter());
            let next = refs.iter().find_map(|r| self.snapshot.owners.get(r["uid"].as_str()?));
            match next {
                Some(owner) => current = owner,
                None => break,
            }
        }
        chain
    }
}

fn event_time(e: &Value) -> &str {
    e["lastTimestamp"].as_str().or_else(|| e["eventTime"].as_str()).unwrap_or("")
}

fn containers<'a>(pod: &'a Value, events: &[&'a Value]) -> Vec<ContainerView<'a>> {
    let mut out = Vec::with_capacity(2);
    for (kind, spec_key, status_key, field_key) in [
        ("init", "initContainers", "initContainerStatuses", "initContainers"),
        ("regular", "containers", "containerStatuses", "containers"),
        ("ephemeral", "ephemeralContainers", "ephemeralContainerStatuses", "ephemeralContainers"),
    ] {
        let specs = pod["spec"][spec_key].as_array().map(Vec::as_slice).unwrap_or_default();
        let statuses = pod["status"][status_key].as_array().map(Vec::as_slice).unwrap_or_default();
        let name_of = |v: &'a Value| v["name"].as_str();
        // a spec and its status are usually at the same index
        let status_of = |i: usize, name: &str| {
            statuses
                .get(i)
                .filter(|s| name_of(s) == Some(name))
                .or_else(|| statuses.iter().find(|s| name_of(s) == Some(name)))
        };
        let events_of = |name: &str| -> Vec<&'a Value> {
            if events.is_empty() {
                return Vec::new();
            }
            let field_path = format!("spec.{field_key}{{{name}}}");
            events
                .iter()
                .copied()
                .filter(|e| e["involvedObject"]["fieldPath"].as_str() == Some(field_path.as_str()))
                .collect()
        };
        for (i, spec) in specs.iter().enumerate() {
            let Some(name) = name_of(spec) else { continue };
            out.push(ContainerView {
                name,
                spec: Some(spec),
                status: status_of(i, name),
                kind,
                events: events_of(name),
            });
        }
        // statuses without a spec (a pod dump without spec) still count
        for status in statuses {
            let Some(name) = name_of(status) else { continue };
            if !specs.iter().any(|s| name_of(s) == Some(name)) {
                out.push(ContainerView { name, spec: None, status: Some(status), kind, events: events_of(name) });
            }
        }
    }
    out
}
