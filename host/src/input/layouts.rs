//! Trees other tools collect, read by their documented layouts: which files
//! of a Troubleshoot support bundle or an OpenShift must-gather tree hold the
//! objects and container logs k8srule reads. Everything else in them is
//! counted, never parsed, so a tree's other files cannot fail a run.
//!
//! - Troubleshoot (troubleshoot.sh), `replicatedhq/troubleshoot`
//!   `pkg/collect/cluster_resources.go` and `pkg/constants/constants.go`:
//!   `cluster-resources/pods/<ns>.json`, `cluster-resources/events/<ns>.json`,
//!   `cluster-resources/{deployments,replicasets,statefulsets,daemonsets,jobs,cronjobs}/<ns>.json`
//!   (typed lists) and `cluster-resources/nodes.json`; `pkg/collect/logs.go`
//!   `savePodLogs`: `cluster-resources/pods/logs/<ns>/<pod>/<container>.log`,
//!   `<container>-previous.log`, and `<container>-logs-errors.log` when the
//!   log could not be had.
//! - must-gather, `openshift/oc` `pkg/cli/admin/inspect` (which
//!   `openshift/must-gather`'s `collection-scripts/gather` runs): a list per
//!   resource, `namespaces/<ns>/<group>/<resource>.yaml` (`core` for the core
//!   group), one object, `namespaces/<ns>/<group>/<resource>/<name>.yaml` and
//!   `cluster-scoped-resources/<group>/<resource>/<name>.yaml`; each pod again
//!   in `namespaces/<ns>/pods/<pod>/<pod>.yaml`, its logs, taken with
//!   timestamps, in `namespaces/<ns>/pods/<pod>/<container>/<container>/logs/current.log`
//!   and `previous.log`; a `timestamp` file at the top.

use std::path::Path;

/// A tree another tool collected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A Troubleshoot support bundle: the folder holding `cluster-resources/`.
    Troubleshoot,
    /// A must-gather or `oc adm inspect` tree: the folder holding `timestamp`
    /// and `namespaces/` or `cluster-scoped-resources/`.
    MustGather,
}

/// What a file of a tree is to k8srule.
#[derive(Debug, PartialEq, Eq)]
pub enum Item<'a> {
    /// Kubernetes objects (a list or one object).
    Objects,
    /// One run's log of a container.
    Log { namespace: &'a str, pod: &'a str, container: &'a str, previous: bool },
    /// Anything else: counted, not read.
    Other,
}

/// The folder of a Troubleshoot bundle that holds the cluster's objects.
const CLUSTER_RESOURCES: &str = "cluster-resources";

impl Layout {
    /// The layout of the tree whose top is `dir`, if it is one.
    pub fn of(dir: &Path) -> Option<Layout> {
        let has_dir = |name: &str| dir.join(name).is_dir();
        if has_dir(CLUSTER_RESOURCES) {
            Some(Layout::Troubleshoot)
        } else if dir.join("timestamp").is_file() && (has_dir("namespaces") || has_dir("cluster-scoped-resources")) {
            Some(Layout::MustGather)
        } else {
            None
        }
    }

    /// How a note names a tree of this layout.
    pub fn name(self) -> &'static str {
        match self {
            Layout::Troubleshoot => "Troubleshoot support bundle",
            Layout::MustGather => "must-gather tree",
        }
    }

    /// What the file at `parts` (its path's components below the tree's top) holds.
    pub fn item<'a>(self, parts: &[&'a str]) -> Item<'a> {
        match self {
            Layout::Troubleshoot => troubleshoot(parts),
            Layout::MustGather => must_gather(parts),
        }
    }
}

/// The folders of `cluster-resources/` that hold a typed list per namespace
/// (`<ns>.json`) of objects k8srule reads: pods, their events and the kinds
/// that own pods.
const TROUBLESHOOT_LISTS: [&str; 8] =
    ["pods", "events", "deployments", "replicasets", "statefulsets", "daemonsets", "jobs", "cronjobs"];

/// The `(group, resource)` folders of must-gather holding objects k8srule
/// reads: pods, their events and the kinds that own pods.
const MUST_GATHER_RESOURCES: [(&str, &str); 9] = [
    ("core", "pods"),
    ("core", "events"),
    ("core", "replicationcontrollers"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("batch", "cronjobs"),
];

fn troubleshoot<'a>(parts: &[&'a str]) -> Item<'a> {
    let listed = |dir: &str| TROUBLESHOOT_LISTS.contains(&dir);
    match parts {
        [CLUSTER_RESOURCES, "nodes.json"] => Item::Objects,
        [CLUSTER_RESOURCES, dir, file] if listed(dir) && file.ends_with(".json") => Item::Objects,
        [CLUSTER_RESOURCES, "pods", "logs", namespace, pod, file] if !file.ends_with("-logs-errors.log") => {
            let (container, previous) = match file.strip_suffix("-previous.log") {
                Some(c) => (c, true),
                None => match file.strip_suffix(".log") {
                    Some(c) => (c, false),
                    None => return Item::Other,
                },
            };
            log(namespace, pod, container, previous)
        }
        _ => Item::Other,
    }
}

fn must_gather_resource(group: &str, name: &str) -> bool {
    MUST_GATHER_RESOURCES.contains(&(group, name))
}

fn must_gather<'a>(parts: &[&'a str]) -> Item<'a> {
    match parts {
        ["namespaces", _, group, file] => match file.strip_suffix(".yaml") {
            Some(name) if must_gather_resource(group, name) => Item::Objects,
            _ => Item::Other,
        },
        ["namespaces", _, group, name, file] if file.ends_with(".yaml") => {
            if must_gather_resource(group, name) || (*group == "pods" && file.strip_suffix(".yaml") == Some(name)) {
                Item::Objects
            } else {
                Item::Other
            }
        }
        ["namespaces", namespace, "pods", pod, container, again, "logs", file] if container == again => match *file {
            "current.log" => log(namespace, pod, container, false),
            "previous.log" => log(namespace, pod, container, true),
            _ => Item::Other,
        },
        ["cluster-scoped-resources", "core", "nodes.yaml"] => Item::Objects,
        ["cluster-scoped-resources", "core", "nodes", file] if file.ends_with(".yaml") => Item::Objects,
        _ => Item::Other,
    }
}

fn log<'a>(namespace: &'a str, pod: &'a str, container: &'a str, previous: bool) -> Item<'a> {
    Item::Log { namespace, pod, container, previous }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(layout: Layout, path: &str) -> Item<'_> {
        layout.item(&path.split('/').collect::<Vec<_>>())
    }

    fn is_log(i: Item, container: &str, previous: bool) -> bool {
        i == Item::Log { namespace: "shop", pod: "api-1", container, previous }
    }

    #[test]
    fn troubleshoot_files() {
        let t = Layout::Troubleshoot;
        for objects in [
            "cluster-resources/pods/shop.json",
            "cluster-resources/events/shop.json",
            "cluster-resources/nodes.json",
            "cluster-resources/replicasets/shop.json",
            "cluster-resources/cronjobs/shop.json",
        ] {
            assert_eq!(item(t, objects), Item::Objects, "{objects}");
        }
        assert!(is_log(item(t, "cluster-resources/pods/logs/shop/api-1/api.log"), "api", false));
        assert!(is_log(item(t, "cluster-resources/pods/logs/shop/api-1/api-previous.log"), "api", true));
        for other in [
            "cluster-resources/pods/logs/shop/api-1/api-logs-errors.log",
            "cluster-resources/pods-errors.json",
            "cluster-resources/services/shop.json",
            "cluster-resources/auth-cani-list/shop.json",
            "cluster-resources/namespaces.json",
            "version.yaml",
            "cluster-info/cluster_version.json",
        ] {
            assert_eq!(item(t, other), Item::Other, "{other}");
        }
    }

    #[test]
    fn must_gather_files() {
        let m = Layout::MustGather;
        for objects in [
            "namespaces/shop/core/pods.yaml",
            "namespaces/shop/core/events.yaml",
            "namespaces/shop/apps/replicasets.yaml",
            "namespaces/shop/batch/jobs.yaml",
            "namespaces/shop/core/pods/api-1.yaml",
            "namespaces/shop/pods/api-1/api-1.yaml",
            "cluster-scoped-resources/core/nodes/worker-1.yaml",
        ] {
            assert_eq!(item(m, objects), Item::Objects, "{objects}");
        }
        assert!(is_log(item(m, "namespaces/shop/pods/api-1/api/api/logs/current.log"), "api", false));
        assert!(is_log(item(m, "namespaces/shop/pods/api-1/api/api/logs/previous.log"), "api", true));
        for other in [
            "namespaces/shop/shop.yaml",
            "namespaces/shop/core/configmaps.yaml",
            "namespaces/shop/apps/pods.yaml",
            "namespaces/shop/pods/api-1/other.yaml",
            "namespaces/shop/pods/api-1/api/api/logs/current.insecure.log",
            "namespaces/shop/pods/api-1/api/api/logs/rotated/0.log.20240501-115800",
            "cluster-scoped-resources/config.openshift.io/clusteroperators/dns.yaml",
            "timestamp",
        ] {
            assert_eq!(item(m, other), Item::Other, "{other}");
        }
    }
}
