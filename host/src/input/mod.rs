//! Input: objects, events and logs from files, bundles, `kubectl cluster-info
//! dump`, Troubleshoot and must-gather trees or a live cluster, into one
//! [`snapshot::Snapshot`] held in a compact [`tree::Arena`], pruned to the
//! fields the loaded packs read.
//! Everything here is untrusted text; nothing here knows about rules.

pub mod fields;
pub mod layouts;
#[cfg(feature = "live")]
pub mod live;
pub mod redact;
pub mod snapshot;
pub mod tree;

/// What a read lists besides the pods (see `Diagnoser::needs`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub events: bool,
    pub nodes: bool,
    /// ReplicaSets, DaemonSets, StatefulSets and Jobs that own the pods.
    pub owners: bool,
    /// Every workload and its events, not only the pods' owners: a pack has
    /// a workload rule.
    pub workloads: bool,
    /// kube-system control-plane pods, when the read pods may not include them.
    pub control_plane: bool,
    /// Container logs: a pack reads `c.logs`.
    pub logs: bool,
}

impl Needs {
    pub const ALL: Needs =
        Needs { events: true, nodes: true, owners: true, workloads: true, control_plane: true, logs: true };
}
