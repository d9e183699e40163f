//! Which fields of the objects to keep while parsing. Rules read a known set
//! of paths, so a snapshot loaded for diagnosis parses the rest without
//! allocating it (managed fields, annotations, env, volumes...): less memory
//! and time on big clusters, the same findings.

use std::collections::BTreeMap;

/// Everything, or these keys of an object (each with what to keep under it).
/// Lists are transparent: the elements of a list get the list's fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Fields {
    #[default]
    All,
    Some(BTreeMap<String, Fields>),
}

/// The annotation that lists the rules and causes whose findings are silenced
/// for an object (`report::silence`).
pub const IGNORE: &str = "k8srule.dev/ignore";
/// The annotation that says why.
pub const IGNORE_REASON: &str = "k8srule.dev/ignore-reason";

/// Fields the host itself reads: kinds, names, uids, owners, the node, the
/// containers' names, and what matches an event to its pod.
const HOST_PATHS: &[&[&str]] = &[
    &["kind"],
    &["apiVersion"],
    &["metadata", "name"],
    &["metadata", "namespace"],
    &["metadata", "uid"],
    &["metadata", "ownerReferences"],
    &["metadata", "labels", "component"],
    &["metadata", "labels", "tier"],
    // a pod's Deployment, for the report's grouping
    &["metadata", "labels", "pod-template-hash"],
    &["spec", "nodeName"],
    // what silences findings (report::silence)
    &["metadata", "annotations", IGNORE],
    &["metadata", "annotations", IGNORE_REASON],
    &["involvedObject"],
    &["lastTimestamp"],
    &["eventTime"],
    // events.k8s.io/v1 names, renamed when loaded
    &["regarding"],
    &["note"],
    &["deprecatedCount"],
    &["deprecatedFirstTimestamp"],
    &["deprecatedLastTimestamp"],
    &["reportingController"],
];

/// Where a pod's containers are: spec lists and status lists.
pub const CONTAINER_LISTS: [[&str; 2]; 6] = [
    ["spec", "initContainers"],
    ["spec", "containers"],
    ["spec", "ephemeralContainers"],
    ["status", "initContainerStatuses"],
    ["status", "containerStatuses"],
    ["status", "ephemeralContainerStatuses"],
];

impl Fields {
    /// What the host reads and nothing else; packs add their paths.
    pub fn host() -> Self {
        let mut f = Fields::Some(BTreeMap::new());
        for path in HOST_PATHS {
            f.keep(path);
        }
        for list in CONTAINER_LISTS {
            f.keep(&[list[0], list[1], "name"]);
        }
        f
    }

    /// Keeps everything under `path`.
    pub fn keep<S: AsRef<str>>(&mut self, path: &[S]) {
        *self.reach(path) = Fields::All;
    }

    /// Keeps `path` itself (an object or list whose parts are kept separately).
    pub fn reach<S: AsRef<str>>(&mut self, path: &[S]) -> &mut Fields {
        let mut node = self;
        for seg in path {
            match node {
                Fields::All => return node,
                Fields::Some(m) => {
                    node = m.entry(seg.as_ref().to_string()).or_insert_with(|| Fields::Some(BTreeMap::new()))
                }
            }
        }
        node
    }

    pub(crate) fn child(&self, key: &str) -> Option<&Fields> {
        match self {
            Fields::All => Some(self),
            Fields::Some(m) => m.get(key),
        }
    }
}
