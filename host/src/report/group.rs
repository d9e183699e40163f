//! What people read: each root cause of a pod with the symptoms it explains
//! (a [`Unit`]), the units of several pods that share a root cause and a
//! workload or a node gathered into one [`Group`], and the entries ordered
//! worst first or by name. The JSON keeps every finding and lists the groups.

use std::cmp::Reverse;
use std::collections::HashMap;

use serde::Serialize;

use super::{Finding, Report, Severity, cause_matches};

/// Cause keys about a node rather than a pod (and their refinements): their
/// findings are grouped by the node.
pub const NODE_CAUSES: &[&str] = &[
    "disk-full",
    "memory-fragmentation",
    "system-oom",
    "docker17-hang",
    "runtime-out-of-sync",
    "docker-leftover",
    "kubelet-listwatch-bug",
    "cni-error",
    "node-pressure-eviction",
    "state.NodeLost",
    "state.DockerDaemonNotReady",
    "state.NetworkPluginNotReady",
];

/// What the pods of a [`Group`] share besides their root cause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupKind {
    /// A workload: the pods' controller (a Deployment, StatefulSet, DaemonSet, Job...).
    Workload,
    /// A node: the root cause is about the node (one of [`NODE_CAUSES`]).
    Node,
}

impl GroupKind {
    /// `workload` or `node`, as the JSON writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupKind::Workload => "workload",
            GroupKind::Node => "node",
        }
    }

    /// How a heading joins the pods to the group's name: `4 pods of
    /// shop/Deployment/web`, `2 pods on node worker-2`.
    pub fn preposition(self) -> &'static str {
        match self {
            GroupKind::Workload => "of",
            GroupKind::Node => "on node",
        }
    }
}

/// Pods that fail for one root cause and share a workload or a node: one
/// entry of the formats for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// A workload or a node.
    pub by: GroupKind,
    /// The cluster (kubeconfig context) of the pods, when the report covers several.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// `namespace/Kind/name` of the workload, or the node's name.
    pub name: String,
    /// The root cause key the pods share.
    pub cause: String,
    /// The highest severity of their root causes and symptoms.
    pub severity: Severity,
    /// The pods (`namespace/name`), two or more, in report order; the formats
    /// for people show the first one's findings as the example.
    pub pods: Vec<String>,
}

impl Group {
    /// `32 pods of shop/Deployment/web: image-pull-failure.rate-limited`,
    /// `3 pods on node worker-2: disk-full`.
    pub fn headline(&self) -> String {
        let (n, cluster) = (self.pods.len(), in_cluster(self.cluster.as_deref()));
        match self.by {
            GroupKind::Workload => format!("{n} pods of {}{cluster}: {}", self.name, self.cause),
            GroupKind::Node => format!("{n} pods on node {}{cluster}: {}", self.name, self.cause),
        }
    }
}

/// ` in cluster NAME` for a finding of a report that covers several clusters, else nothing.
pub(crate) fn in_cluster(cluster: Option<&str>) -> String {
    cluster.map(|c| format!(" in cluster {c}")).unwrap_or_default()
}

/// How the formats for people order their entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
pub enum Sort {
    /// Worst first: by the highest severity of the entry, then by how many
    /// root causes in the report share its cause, then by name.
    #[default]
    Severity,
    /// By pod name (a group at its first pod).
    Name,
}

/// A root cause of one pod with the symptoms it explains.
pub(crate) struct Unit<'a> {
    pub root: &'a Finding,
    pub symptoms: Vec<&'a Finding>,
}

impl Unit<'_> {
    fn severity(&self) -> Severity {
        self.symptoms.iter().map(|s| s.severity).fold(self.root.severity, Severity::max)
    }
}

/// One entry for people: a pod with its root causes, or a group shown by
/// its first pod's units of the shared cause.
pub(crate) enum Entry<'a> {
    Pod { name: &'a str, units: Vec<Unit<'a>> },
    Group { group: Group, units: Vec<Unit<'a>> },
}

impl<'a> Entry<'a> {
    pub fn units(&self) -> &[Unit<'a>] {
        match self {
            Entry::Pod { units, .. } | Entry::Group { units, .. } => units,
        }
    }

    /// The cluster of the entry's pods, when the report covers several.
    pub fn cluster(&self) -> Option<&'a str> {
        self.units().first().and_then(|u| u.root.cluster.as_deref())
    }

    /// The pod whose findings the entry shows.
    pub fn pod(&self) -> &str {
        match self {
            Entry::Pod { name, .. } => name,
            Entry::Group { group, .. } => group.pods.first().map_or("", String::as_str),
        }
    }

    pub fn severity(&self) -> Severity {
        match self {
            Entry::Pod { units, .. } => units.iter().map(Unit::severity).max().unwrap_or(Severity::Info),
            Entry::Group { group, .. } => group.severity,
        }
    }
}

/// The findings per pod (of a cluster) in report order, each symptom under the root cause
/// of the same pod that its `explained_by` names; a symptom without one
/// heads a unit of its own.
pub(crate) fn units_by_pod(report: &Report) -> Vec<(&str, Vec<Unit<'_>>)> {
    let mut index: HashMap<(Option<&str>, &str), usize> = HashMap::new();
    let mut pods: Vec<(&str, Vec<Unit>)> = Vec::new();
    for f in &report.findings {
        let i = *index.entry((f.cluster.as_deref(), f.subject())).or_insert_with(|| {
            pods.push((f.subject(), Vec::new()));
            pods.len() - 1
        });
        let units = &mut pods[i].1;
        let root = units.iter_mut().find(|u| {
            u.root.explained_by.is_none()
                && Some(&u.root.rule) == f.explained_by.as_ref()
                && (u.root.container == f.container || u.root.container.is_none() || f.container.is_none())
        });
        match root {
            Some(u) => u.symptoms.push(f),
            None => units.push(Unit { root: f, symptoms: Vec::new() }),
        }
    }
    pods
}

/// The group a root cause would join, in its cluster: its node for a node
/// cause, else its workload.
fn group_key(root: &Finding) -> Option<(GroupKind, Option<&str>, String)> {
    let node = root.node.as_ref().filter(|_| NODE_CAUSES.iter().any(|c| cause_matches(&root.cause, c)));
    let cluster = root.cluster.as_deref();
    match (node, &root.workload) {
        (Some(node), _) => Some((GroupKind::Node, cluster, node.clone())),
        // a workload's own finding is not grouped with its pods'
        (None, Some(workload)) if root.pod.is_some() => Some((GroupKind::Workload, cluster, workload.clone())),
        (None, _) => None,
    }
}

/// The entries of a report for people: a group where two or more pods share
/// a root cause and a workload or a node, a pod entry for each pod's other
/// root causes; in `sort` order.
pub(crate) fn entries(report: &Report, sort: Sort) -> Vec<Entry<'_>> {
    let pods = units_by_pod(report);
    let mut cause_count: HashMap<&str, usize> = HashMap::new();
    // (kind, cluster, name, cause) -> its pods, in report order
    type Key<'a> = (GroupKind, Option<&'a str>, String, &'a str);
    let mut members: HashMap<Key<'_>, Vec<&str>> = HashMap::new();
    for (pod, units) in &pods {
        for u in units {
            *cause_count.entry(&u.root.cause).or_default() += 1;
            if let Some((kind, cluster, name)) = group_key(u.root) {
                let list = members.entry((kind, cluster, name, &u.root.cause)).or_default();
                if list.last() != Some(pod) {
                    list.push(pod);
                }
            }
        }
    }
    let mut entries: Vec<Entry> = Vec::new();
    let mut group_at: HashMap<Key<'_>, usize> = HashMap::new();
    for (pod, units) in pods {
        let mut own = Vec::new();
        for u in units {
            let key = group_key(u.root).map(|(kind, cluster, name)| (kind, cluster, name, u.root.cause.as_str()));
            let Some(key) = key.filter(|k| members.get(k).is_some_and(|m| m.len() > 1)) else {
                own.push(u);
                continue;
            };
            let at = *group_at.entry(key.clone()).or_insert_with(|| {
                let group = Group {
                    by: key.0,
                    cluster: key.1.map(str::to_string),
                    name: key.2.clone(),
                    cause: key.3.to_string(),
                    severity: Severity::Info,
                    pods: members.get(&key).into_iter().flatten().map(|p| p.to_string()).collect(),
                };
                entries.push(Entry::Group { group, units: Vec::new() });
                entries.len() - 1
            });
            if let Entry::Group { group, units } = &mut entries[at] {
                group.severity = group.severity.max(u.severity());
                if group.pods.first().is_some_and(|first| first == pod) {
                    units.push(u);
                }
            }
        }
        if !own.is_empty() {
            entries.push(Entry::Pod { name: pod, units: own });
        }
    }
    if sort == Sort::Severity {
        // the worst unit of an entry: its severity, then how common its cause is
        let rank =
            |e: &Entry| e.units().iter().map(|u| (u.severity(), cause_count.get(u.root.cause.as_str()).copied())).max();
        entries.sort_by_cached_key(|e| {
            (Reverse(e.severity()), Reverse(rank(e)), e.pod().to_string(), e.cluster().map(str::to_string))
        });
    }
    entries
}

impl Report {
    /// The groups of pods that share a root cause and a workload or a node,
    /// worst first: what the formats for people show as one entry each.
    pub fn groups(&self) -> Vec<Group> {
        entries(self, Sort::Severity)
            .into_iter()
            .filter_map(|e| match e {
                Entry::Group { group, .. } => Some(group),
                Entry::Pod { .. } => None,
            })
            .collect()
    }
}
