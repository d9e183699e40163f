//! Snapshots: Kubernetes objects read from files, indexed once.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::de::DeserializeSeed;
use serde_json::Value;

use crate::input::fields::{CONTAINER_LISTS, Fields};
use crate::input::layouts::{Item, Layout};
use crate::input::redact::Redactor;
use crate::input::tree::{Arena, Doc, Node, View};

/// A problem with the input the user gave; the CLI exits with code 2.
#[derive(Debug, thiserror::Error)]
#[allow(missing_docs)] // each field is what the message shows
pub enum LoadError {
    /// A file or directory that cannot be read.
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    /// Text that is not JSON or YAML, at 1-based `line` and `column`.
    #[error("{path}:{line}:{column}: {message}")]
    Parse { path: String, line: usize, column: usize, message: String },
    /// Well-formed data that is not what it should be.
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// An object named on the command line that is not there, in kubectl's
    /// words: `pods "web" not found`.
    #[error("{0}")]
    NotFound(String),
}

/// A line of a node's log, from `node-logs/<node>/<source>.log` in a bundle:
/// an object `{source, line}`.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub node: String,
    pub value: Node,
}

/// The kept log of one run of a container: the current one, or the
/// previous one (`kubectl logs --previous`).
#[derive(Debug, Clone)]
pub struct ContainerLog {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub previous: bool,
    /// Each line an object `{source, line, previous}`, oldest first.
    pub lines: Vec<Node>,
}

/// Kubernetes objects and the moment they describe. The objects' values are
/// in `store`; the lists hold their nodes.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub(crate) store: Arena,
    pub(crate) pods: Vec<Node>,
    pub(crate) events: Vec<Node>,
    pub(crate) nodes: Vec<Node>,
    /// Other objects that may own pods (ReplicaSet, DaemonSet, ...), by uid
    /// (one without a uid, as a fixture may have it, by `namespace/Kind/name`).
    pub(crate) owners: HashMap<String, Node>,
    pub(crate) node_logs: Vec<LogLine>,
    /// Container logs, read only when [`Snapshot::reading_logs`] asked for them.
    pub(crate) container_logs: Vec<ContainerLog>,
    /// Seconds since the Unix epoch that ages are measured against.
    pub(crate) now: i64,
    /// Objects that were read but are not used, counted by kind.
    pub(crate) skipped: BTreeMap<String, usize>,
    /// Files of a directory not read, counted by what they are and why
    /// (`*.txt: not JSON, ...`; one entry per Troubleshoot or must-gather tree).
    pub(crate) skipped_files: BTreeMap<String, usize>,
    /// kube-system control-plane pods read for context only (not diagnosed):
    /// a live read of one namespace adds them; a bundle keeps them in
    /// `_k8srule/control-plane.json`.
    pub(crate) control_plane: Vec<Node>,
    /// What could not be read (a forbidden list, say), shown in the report.
    pub(crate) notes: Vec<String>,
    /// Container log files not read because no loaded pack reads logs.
    pub(crate) skipped_logs: usize,
    /// The fields of objects kept (default: all).
    fields: Fields,
    /// How container logs are redacted; none: they are not read.
    logs: Option<Redactor>,
}

/// What an object is to a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Pod,
    Event,
    Node,
    /// An object that may own pods; kept by its uid.
    Owner,
    /// A kube-system control-plane pod, read for context only.
    ControlPlane,
}

/// The kinds of objects that own pods, directly or through another.
pub const OWNER_KINDS: [&str; 7] =
    ["ReplicaSet", "Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob", "ReplicationController"];

impl Snapshot {
    /// An empty snapshot; `now` (seconds since the Unix epoch) is the moment
    /// ages are measured against. [`crate::Diagnoser::snapshot`] gives one
    /// that keeps only what the loaded packs read.
    pub fn new(now: i64) -> Self {
        Snapshot { now, ..Snapshot::default() }
    }

    /// How many pods the snapshot holds (the pods it diagnoses).
    pub fn pod_count(&self) -> usize {
        self.pods.len()
    }

    /// Keeps only these fields of the objects added afterwards:
    /// [`crate::Diagnoser::fields`] for a snapshot that is only diagnosed.
    pub(crate) fn keeping(mut self, fields: Fields) -> Self {
        self.fields = fields;
        self
    }

    /// Reads container logs (bundles' `logs/`, the `logs.txt` of a cluster-info
    /// dump, [`Snapshot::add_container_log`]), each line through `redactor`:
    /// [`crate::Diagnoser::logs`] when a loaded pack reads them.
    pub(crate) fn reading_logs(mut self, redactor: Option<Redactor>) -> Self {
        self.logs = redactor;
        self
    }

    /// A value of the snapshot.
    pub(crate) fn get(&self, node: Node) -> Doc<'_> {
        self.store.get(node)
    }

    /// Adds every object of a JSON or YAML document (one object, a `List`,
    /// or several YAML documents); `name` is used in messages.
    pub fn add_text(&mut self, name: &str, text: &str) -> Result<(), LoadError> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            return self.add_json(name, serde_json::Deserializer::from_str(text));
        }
        for doc in serde_norway::Deserializer::from_str(text) {
            let node = self.fields.document(&mut self.store).deserialize(doc).map_err(|e: serde_norway::Error| {
                let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
                LoadError::Parse { path: name.to_string(), line, column, message: e.to_string() }
            })?;
            if node != Node::NULL {
                self.add_object(name, node, None)?;
            }
        }
        Ok(())
    }

    /// Adds one JSON document, or several one after the other.
    fn add_json<'de, R: serde_json::de::Read<'de>>(
        &mut self,
        name: &str,
        mut stream: serde_json::Deserializer<R>,
    ) -> Result<(), LoadError> {
        loop {
            let doc = self.fields.document(&mut self.store).deserialize(&mut stream).map_err(|e| LoadError::Parse {
                path: name.to_string(),
                line: e.line(),
                column: e.column(),
                message: json_message(&e),
            })?;
            self.add_object(name, doc, None)?;
            if stream.end().is_ok() {
                return Ok(());
            }
        }
    }

    /// Adds one object, or the items of a list.
    pub fn add_value(&mut self, name: &str, value: &Value) -> Result<(), LoadError> {
        let node = self
            .fields
            .document(&mut self.store)
            .deserialize(value)
            .map_err(|e| LoadError::Invalid { path: name.to_string(), message: e.to_string() })?;
        self.add_object(name, node, None)
    }

    /// Adds an object whose kind is known (as a live read lists them), from
    /// a `&Value` or straight from its JSON text.
    pub(crate) fn add_to_section<'de, D: serde::Deserializer<'de>>(
        &mut self,
        part: Section,
        object: D,
    ) -> Result<(), D::Error> {
        let node = self.fields.seed(&mut self.store).deserialize(object)?;
        let kind = self.get(node).str_at(&["kind"]).unwrap_or_default().to_string();
        self.push(part, node, &kind);
        Ok(())
    }

    /// Adds an item of a list of `kind` objects the API server gave (see
    /// [`Fields::listed`]) when `keep` wants it; a value it does not want is
    /// dropped from the store at once. Whether it was added.
    pub(crate) fn add_listed<'de, D: serde::Deserializer<'de>>(
        &mut self,
        part: Section,
        (kind, api_version): (&str, &str),
        object: D,
        keep: &mut dyn FnMut(Doc) -> bool,
    ) -> Result<bool, D::Error> {
        let mark = self.store.mark();
        let node = self.fields.listed(&mut self.store, kind, api_version).deserialize(object)?;
        if !keep(self.get(node)) {
            self.store.forget_from(mark);
            return Ok(false);
        }
        let kind = self.get(node).str_at(&["kind"]).unwrap_or_default().to_string();
        self.push(part, node, &kind);
        Ok(true)
    }

    /// How many objects a section holds: [`Snapshot::truncate`] drops those added after.
    pub(crate) fn section_len(&self, part: Section) -> usize {
        match part {
            Section::Pod => self.pods.len(),
            Section::Event => self.events.len(),
            Section::Node => self.nodes.len(),
            Section::ControlPlane => self.control_plane.len(),
            Section::Owner => self.owners.len(),
        }
    }

    /// Drops the objects added to a section after it held `len` (owners,
    /// kept by uid, stay: a list read again replaces them).
    pub(crate) fn truncate(&mut self, part: Section, len: usize) {
        match part {
            Section::Pod => self.pods.truncate(len),
            Section::Event => self.events.truncate(len),
            Section::Node => self.nodes.truncate(len),
            Section::ControlPlane => self.control_plane.truncate(len),
            Section::Owner => {}
        }
    }

    fn push(&mut self, part: Section, node: Node, kind: &str) {
        let node = if part == Section::Event { self.normalize_event(node) } else { node };
        self.note_wrong_types(part, node, kind);
        match part {
            Section::Pod => self.pods.push(node),
            Section::Event => self.events.push(node),
            Section::Node => self.nodes.push(node),
            Section::ControlPlane => self.control_plane.push(node),
            Section::Owner => {
                let doc = self.get(node);
                let key = match doc.str_at(&["metadata", "uid"]).filter(|u| !u.is_empty()) {
                    Some(uid) => uid.to_string(),
                    None => {
                        let ns = doc.str_at(&["metadata", "namespace"]).unwrap_or("default");
                        format!("{ns}/{kind}/{}", doc.str_at(&["metadata", "name"]).unwrap_or(""))
                    }
                };
                self.owners.insert(key, node);
            }
        }
    }

    /// Adds an object (or the items of a list); `list_kind` is the one a typed
    /// list (`PodList`) gives items that do not say theirs.
    fn add_object(&mut self, name: &str, node: Node, list_kind: Option<&str>) -> Result<(), LoadError> {
        let invalid = |message: String| LoadError::Invalid { path: name.to_string(), message };
        let doc = self.get(node);
        let kind = match doc.view() {
            View::List(_) => String::new(),
            View::Object(_) => match doc.get("kind").map(Doc::view) {
                Some(View::Str(k)) => k.to_string(),
                Some(_) => return Err(invalid("`kind` is not a string".into())),
                None if doc.get("items").is_some() => "List".to_string(),
                None => match list_kind {
                    Some(k) => k.to_string(),
                    None => return Err(invalid("an object without `kind`".into())),
                },
            },
            other => {
                return Err(invalid(format!("expected a Kubernetes object, found {}", json_kind(&other))));
            }
        };
        if kind.is_empty() || kind.ends_with("List") {
            let items: Vec<Node> = match doc.view() {
                View::List(_) => doc.items().map(Doc::node).collect(),
                _ => match doc.get("items") {
                    Some(items) if items.is_list() => items.items().map(Doc::node).collect(),
                    Some(items) if matches!(items.view(), View::Null) => Vec::new(),
                    None => Vec::new(),
                    Some(_) => return Err(invalid(format!("`items` of the {kind} is not a list"))),
                },
            };
            let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty() && *k != "List");
            for item in items {
                self.add_object(name, item, item_kind)?;
            }
            return Ok(());
        }
        let part = match kind.as_str() {
            "Pod" => {
                if !self.get(node).get("metadata").is_some_and(Doc::is_object) {
                    return Err(invalid("a Pod without `metadata`".into()));
                }
                Section::Pod
            }
            "Event" => Section::Event,
            "Node" => Section::Node,
            k if OWNER_KINDS.contains(&k) => Section::Owner,
            other => {
                *self.skipped.entry(other.to_string()).or_default() += 1;
                return Ok(());
            }
        };
        // a workload's kind names it and finds its events: an item of a typed list gets the list's
        let node = match doc.get("kind") {
            None if part == Section::Owner => {
                let mut value = doc.to_value();
                if let Some(object) = value.as_object_mut() {
                    object.insert("kind".into(), kind.as_str().into());
                }
                self.store.add_value(&value, &self.fields)
            }
            _ => node,
        };
        self.push(part, node, &kind);
        Ok(())
    }

    /// Reads a file, or a directory recursively (JSON, YAML, and
    /// `node-logs/<node>/<source>.log`; a Troubleshoot support bundle or a
    /// must-gather tree by its layout, see [`Layout`]). `-` reads standard input.
    pub fn add_path(&mut self, path: &Path) -> Result<(), LoadError> {
        if path == Path::new("-") {
            return self.add_reader("<stdin>", std::io::stdin().lock());
        }
        let shown = path.display().to_string();
        let meta =
            std::fs::metadata(path).map_err(|e| LoadError::Io { path: shown.clone(), message: io_message(&e) })?;
        if meta.is_dir() {
            return self.add_dir(path, path);
        }
        self.add_file(&shown, path)
    }

    /// Reads `dir` (under `root`, the directory given): a tree another tool
    /// collected by its [`Layout`], any other file by file.
    fn add_dir(&mut self, root: &Path, dir: &Path) -> Result<(), LoadError> {
        if let Some(layout) = Layout::of(dir) {
            return self.add_tree(layout, dir);
        }
        let io = |e: std::io::Error| LoadError::Io { path: dir.display().to_string(), message: io_message(&e) };
        for (path, is_dir) in entries(dir).map_err(io)? {
            if is_dir {
                self.add_dir(root, &path)?;
            } else {
                self.add_bundle_file(root, &path)?;
            }
        }
        Ok(())
    }

    /// Reads the objects and container logs of a Troubleshoot support bundle
    /// or a must-gather tree; its other files are counted in one note. A pod
    /// or node the tree holds twice (must-gather writes each pod in its
    /// namespace's list and in its own folder) is kept once.
    fn add_tree(&mut self, layout: Layout, top: &Path) -> Result<(), LoadError> {
        let (pods, nodes) = (self.pods.len(), self.nodes.len());
        let files =
            files_under(top).map_err(|e| LoadError::Io { path: top.display().to_string(), message: io_message(&e) })?;
        for file in files {
            let rel = file.strip_prefix(top).unwrap_or(&file);
            let parts: Option<Vec<&str>> = rel.iter().map(|p| p.to_str()).collect();
            let shown = file.display().to_string();
            match parts.map_or(Item::Other, |parts| layout.item(&parts)) {
                Item::Objects => self.add_file(&shown, &file)?,
                Item::Log { .. } if self.logs.is_none() => self.skipped_logs += 1,
                Item::Log { namespace, pod, container, previous } => {
                    let key = LogKey { namespace: namespace.into(), pod: pod.into(), container: container.into() };
                    let source = rel.display().to_string();
                    self.add_log_file(&file, &shown, |s, reader| {
                        s.read_container_log(key, previous, &source, reader, Stamps::Dropped)
                    })?;
                }
                Item::Other => {
                    let what = format!(
                        "of the {} {}: not pods, events, nodes, workloads or their logs",
                        layout.name(),
                        top.display()
                    );
                    *self.skipped_files.entry(what).or_default() += 1;
                }
            }
        }
        let once = |snapshot: &Snapshot, list: Vec<Node>| {
            let mut seen = std::collections::HashSet::new();
            let key = |n: Node| {
                let d = snapshot.get(n);
                (
                    d.str_at(&["metadata", "namespace"]).map(str::to_owned),
                    d.str_at(&["metadata", "name"]).map(str::to_owned),
                )
            };
            list.into_iter().filter(|n| seen.insert(key(*n))).collect::<Vec<_>>()
        };
        let added = self.pods.split_off(pods);
        let added = once(self, added);
        self.pods.extend(added);
        let added = self.nodes.split_off(nodes);
        let added = once(self, added);
        self.nodes.extend(added);
        Ok(())
    }

    fn add_file(&mut self, shown: &str, path: &Path) -> Result<(), LoadError> {
        let file =
            std::fs::File::open(path).map_err(|e| LoadError::Io { path: shown.into(), message: io_message(&e) })?;
        self.add_reader(shown, std::io::BufReader::with_capacity(1 << 16, file))
    }

    /// Reads JSON as a stream, so a big file is never held whole; YAML as text.
    fn add_reader(&mut self, name: &str, mut reader: impl std::io::BufRead) -> Result<(), LoadError> {
        let io = |e: std::io::Error| LoadError::Io { path: name.into(), message: io_message(&e) };
        let head = reader.fill_buf().map_err(io)?;
        if let Some(b'{' | b'[') = head.iter().find(|b| !b.is_ascii_whitespace()) {
            return self.add_json(name, serde_json::Deserializer::from_reader(reader));
        }
        let mut text = String::new();
        reader.read_to_string(&mut text).map_err(io)?;
        self.add_text(name, &text)
    }

    fn add_bundle_file(&mut self, root: &Path, file: &Path) -> Result<(), LoadError> {
        let rel = file.strip_prefix(root).unwrap_or(file);
        let parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        let shown = file.display().to_string();
        let read = |f: &Path| {
            std::fs::read_to_string(f).map_err(|e| LoadError::Io { path: shown.clone(), message: io_message(&e) })
        };
        let ext = file.extension().and_then(|e| e.to_str()).unwrap_or_default();
        if let [.., dir, name] = parts.as_slice()
            && dir == BUNDLE_DIR
        {
            match name.as_str() {
                "control-plane.json" => {
                    let before = self.pods.len();
                    self.add_text(&shown, &read(file)?)?;
                    let context = self.pods.split_off(before);
                    self.control_plane.extend(context);
                }
                "notes.txt" => self.notes.extend(read(file)?.lines().filter(|l| !l.is_empty()).map(str::to_string)),
                _ => *self.skipped_files.entry(format!("{}: {NOT_READ}", rel.display())).or_default() += 1,
            }
            return Ok(());
        }
        if let [.., dir, namespace, pod, name] = parts.as_slice()
            && dir == "logs"
            && ext == "log"
        {
            let (container, previous) = match name.strip_suffix(".previous.log") {
                Some(c) => (c, true),
                None => (name.trim_end_matches(".log"), false),
            };
            let key = LogKey { namespace: namespace.clone(), pod: pod.clone(), container: container.to_string() };
            if self.logs.is_none() {
                self.skipped_logs += 1;
                return Ok(());
            }
            return self.add_log_file(file, &shown, |s, reader| {
                s.add_container_log(key, previous, &rel.display().to_string(), reader)
            });
        }
        if let [.., _, _, name] = parts.as_slice()
            && name == "logs.txt"
        {
            if self.logs.is_none() {
                self.skipped_logs += 1;
                return Ok(());
            }
            return self.add_log_file(file, &shown, |s, reader| s.add_dump_logs(&rel.display().to_string(), reader));
        }
        if let [.., dir, node, source] = parts.as_slice()
            && dir == "node-logs"
            && ext == "log"
        {
            let source = source.trim_end_matches(".log").to_string();
            // node logs are always read, and shown redacted as container logs are
            let redactor = match &self.logs {
                Some(r) => r.clone(),
                None => Redactor::new(&[]).map_err(|message| LoadError::Invalid { path: shown.clone(), message })?,
            };
            let mut text = Vec::new();
            self.add_log_file(file, &shown, |_, reader| {
                let mut lines = redactor.lines();
                each_line(reader, |line, more| text.push(lines.line(line, more)))
            })?;
            for line in text {
                let value = self.store.add_value(&serde_json::json!({ "source": source, "line": line }), &Fields::All);
                self.node_logs.push(LogLine { node: node.clone(), value });
            }
            return Ok(());
        }
        match ext {
            "json" | "yaml" | "yml" => self.add_file(&shown, file),
            _ => {
                // e.g. the `<ns>/<pod>/logs.txt` of `kubectl cluster-info dump`: counted once per pattern
                let pattern = match ext {
                    "" => file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
                    ext => format!("*.{ext}"),
                };
                *self.skipped_files.entry(format!("{pattern}: {NOT_READ}")).or_default() += 1;
                Ok(())
            }
        }
    }

    /// Writes the snapshot as a bundle directory that [`Snapshot::add_path`]
    /// reads back: `pods.json`, `events.json`, `nodes.json` and `owners.json`
    /// (`List`s), `node-logs/<node>/<source>.log`,
    /// `logs/<namespace>/<pod>/<container>[.previous].log`, and under `_k8srule/` the
    /// control-plane pods read for context and the notes.
    pub fn write_bundle(&self, dir: &Path) -> Result<(), LoadError> {
        let io = |p: &Path, e: std::io::Error| LoadError::Io { path: p.display().to_string(), message: io_message(&e) };
        let write = |p: PathBuf, text: String| -> Result<(), LoadError> {
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
            }
            std::fs::write(&p, text).map_err(|e| io(&p, e))
        };
        #[derive(serde::Serialize)]
        #[serde(rename_all = "camelCase")]
        struct List<'a> {
            api_version: &'a str,
            kind: &'a str,
            items: Vec<Doc<'a>>,
        }
        let list = |kind: &str, items: &mut dyn Iterator<Item = &Node>| {
            let list = List { api_version: "v1", kind, items: items.map(|n| self.get(*n)).collect() };
            serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        write(dir.join("pods.json"), list("PodList", &mut self.pods.iter()))?;
        write(dir.join("events.json"), list("EventList", &mut self.events.iter()))?;
        write(dir.join("nodes.json"), list("NodeList", &mut self.nodes.iter()))?;
        let mut owners: Vec<(&String, &Node)> = self.owners.iter().collect();
        owners.sort_by_key(|(uid, _)| *uid);
        write(dir.join("owners.json"), list("List", &mut owners.into_iter().map(|(_, o)| o)))?;
        if !self.control_plane.is_empty() {
            write(dir.join(BUNDLE_DIR).join("control-plane.json"), list("PodList", &mut self.control_plane.iter()))?;
        }
        if !self.notes.is_empty() {
            write(dir.join(BUNDLE_DIR).join("notes.txt"), self.notes.join("\n") + "\n")?;
        }
        let mut logs: BTreeMap<(&str, &str), String> = BTreeMap::new();
        for l in &self.node_logs {
            let line = self.get(l.value);
            let source = line.str_at(&["source"]).unwrap_or("node");
            let text = logs.entry((l.node.as_str(), source)).or_default();
            text.push_str(line.str_at(&["line"]).unwrap_or_default());
            text.push('\n');
        }
        for ((node, source), text) in logs {
            write(dir.join("node-logs").join(node).join(format!("{source}.log")), text)?;
        }
        for log in &self.container_logs {
            let name = format!("{}{}.log", log.container, if log.previous { ".previous" } else { "" });
            let mut text = String::new();
            for l in &log.lines {
                text.push_str(self.get(*l).str_at(&["line"]).unwrap_or_default());
                text.push('\n');
            }
            write(dir.join("logs").join(&log.namespace).join(&log.pod).join(name), text)?;
        }
        Ok(())
    }
}

/// The folder of a bundle that holds what is not a Kubernetes object list.
const BUNDLE_DIR: &str = "_k8srule";
/// Why a file of a directory is not read.
const NOT_READ: &str = "not JSON, YAML or node-logs/<node>/<source>.log";

/// Lines kept of one container run's log: the last ones.
pub const MAX_LOG_LINES: usize = 1000;
/// Bytes kept of one container run's log (after each line is cut to
/// [`crate::input::redact::MAX_LINE_BYTES`]): the last ones.
pub const MAX_LOG_BYTES: usize = 512 * 1024;

/// Which container a log belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogKey {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The container's name.
    pub container: String,
}

/// The last lines of a log, within [`MAX_LOG_LINES`] and [`MAX_LOG_BYTES`].
#[derive(Default)]
struct Tail {
    lines: std::collections::VecDeque<String>,
    bytes: usize,
    dropped: usize,
}

impl Tail {
    fn push(&mut self, line: String) {
        self.bytes += line.len();
        self.lines.push_back(line);
        while self.lines.len() > MAX_LOG_LINES || self.bytes > MAX_LOG_BYTES {
            let Some(old) = self.lines.pop_front() else { break };
            self.bytes -= old.len();
            self.dropped += 1;
        }
    }
}

/// Whether the lines of a log start with the time the kubelet received them
/// (`kubectl logs --timestamps`, as must-gather takes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stamps {
    Kept,
    /// A leading RFC 3339 time and the space after it are dropped, so rules
    /// that match the start of a line (`^panic: `) read the program's text.
    Dropped,
}

/// `line` without a leading RFC 3339 time and the space after it.
fn without_timestamp(line: &[u8]) -> &[u8] {
    // `2024-05-01T11:58:00.123456789+00:00 `: at most 35 bytes and a space
    let Some(space) = line.iter().take(36).position(|b| *b == b' ') else { return line };
    match std::str::from_utf8(&line[..space]).ok().and_then(|t| t.parse::<jiff::Timestamp>().ok()) {
        Some(_) => &line[space + 1..],
        None => line,
    }
}

/// Calls `f` with each line of `reader` (without its line end): at most
/// [`crate::input::redact::MAX_LINE_BYTES`] bytes of it and how many more it had, so
/// one huge line costs no more memory than a short one.
fn each_line(mut reader: impl std::io::BufRead, mut f: impl FnMut(&[u8], usize)) -> std::io::Result<()> {
    let limit = crate::input::redact::MAX_LINE_BYTES;
    let (mut line, mut more) = (Vec::with_capacity(256), 0usize);
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            if !line.is_empty() || more > 0 {
                f(&line, more);
            }
            return Ok(());
        }
        let end = buf.iter().position(|b| *b == b'\n');
        let chunk = &buf[..end.unwrap_or(buf.len())];
        let room = limit.saturating_sub(line.len()).min(chunk.len());
        line.extend_from_slice(&chunk[..room]);
        more += chunk.len() - room;
        let used = end.map_or(buf.len(), |e| e + 1);
        reader.consume(used);
        if end.is_some() {
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            f(&line, more);
            line.clear();
            more = 0;
        }
    }
}

impl Snapshot {
    /// Reads a log file with `read`.
    fn add_log_file(
        &mut self,
        file: &Path,
        shown: &str,
        read: impl FnOnce(&mut Self, std::io::BufReader<std::fs::File>) -> std::io::Result<()>,
    ) -> Result<(), LoadError> {
        let io = |e: std::io::Error| LoadError::Io { path: shown.into(), message: io_message(&e) };
        let f = std::fs::File::open(file).map_err(io)?;
        read(self, std::io::BufReader::with_capacity(1 << 16, f)).map_err(io)
    }

    /// Adds the log of a container's current run (or its previous one),
    /// `source` saying where it was read. Each line is cut, made UTF-8 and
    /// redacted; the last [`MAX_LOG_LINES`] lines within [`MAX_LOG_BYTES`]
    /// are kept, after a line saying how many earlier ones were not.
    /// Nothing is read when no loaded pack reads logs (see
    /// [`crate::Diagnoser::snapshot`]).
    pub fn add_container_log(
        &mut self,
        key: LogKey,
        previous: bool,
        source: &str,
        reader: impl std::io::BufRead,
    ) -> std::io::Result<()> {
        self.read_container_log(key, previous, source, reader, Stamps::Kept)
    }

    /// [`Snapshot::add_container_log`], with a leading timestamp dropped
    /// from each line (`Stamps::Dropped`).
    fn read_container_log(
        &mut self,
        key: LogKey,
        previous: bool,
        source: &str,
        reader: impl std::io::BufRead,
        stamps: Stamps,
    ) -> std::io::Result<()> {
        let Some(redactor) = &self.logs else { return Ok(()) };
        let (mut lines, mut tail) = (redactor.lines(), Tail::default());
        each_line(reader, |line, more| {
            let line = if stamps == Stamps::Dropped { without_timestamp(line) } else { line };
            tail.push(lines.line(line, more))
        })?;
        self.keep_log(key, previous, source, tail);
        Ok(())
    }

    /// Adds the container logs of a `kubectl cluster-info dump` `logs.txt`:
    /// sections from `==== START logs for container C of pod NS/P ====` to
    /// `==== END logs ... ====`, each the current run's log of C.
    fn add_dump_logs(&mut self, source: &str, reader: impl std::io::BufRead) -> std::io::Result<()> {
        let Some(redactor) = self.logs.clone() else { return Ok(()) };
        let mut done: Vec<(LogKey, Tail)> = Vec::new();
        let mut open: Option<(LogKey, Tail, crate::input::redact::LineRedactor)> = None;
        each_line(reader, |line, more| {
            let text = String::from_utf8_lossy(line);
            if let Some(header) =
                text.strip_prefix("==== START logs for container ").and_then(|h| h.strip_suffix(" ===="))
                && let Some((container, pod)) = header.split_once(" of pod ")
                && let Some((namespace, pod)) = pod.split_once('/')
            {
                let key = LogKey { namespace: namespace.into(), pod: pod.into(), container: container.into() };
                if let Some((k, t, _)) = open.replace((key, Tail::default(), redactor.lines())) {
                    done.push((k, t));
                }
            } else if text.starts_with("==== END logs for container ") {
                if let Some((k, t, _)) = open.take() {
                    done.push((k, t));
                }
            } else if let Some((_, tail, lines)) = &mut open {
                tail.push(lines.line(line, more));
            }
        })?;
        done.extend(open.map(|(k, t, _)| (k, t)));
        for (key, tail) in done {
            self.keep_log(key, false, source, tail);
        }
        Ok(())
    }

    fn keep_log(&mut self, key: LogKey, previous: bool, source: &str, tail: Tail) {
        // names become paths of a written bundle: none may leave its folder
        let unsafe_name = |n: &str| n.is_empty() || n == "." || n == ".." || n.contains(['/', '\\']);
        if [&key.namespace, &key.pod, &key.container].into_iter().any(|n| unsafe_name(n)) {
            self.notes.push(format!(
                "{source}: ignored the log of container `{}` of pod `{}/{}`: not a Kubernetes name",
                key.container, key.namespace, key.pod
            ));
            return;
        }
        let mut add = |line: &str| {
            self.store
                .add_value(&serde_json::json!({ "source": source, "line": line, "previous": previous }), &Fields::All)
        };
        let mut lines = Vec::with_capacity(tail.lines.len() + 1);
        if tail.dropped > 0 {
            lines.push(add(&format!("[k8srule: {} earlier line(s) not kept]", tail.dropped)));
        }
        lines.extend(tail.lines.iter().map(|l| add(l)));
        let LogKey { namespace, pod, container } = key;
        self.container_logs.push(ContainerLog { namespace, pod, container, previous, lines });
    }
}

impl Snapshot {
    /// Shows an events.k8s.io/v1 Event with the core/v1 field names.
    fn normalize_event(&mut self, node: Node) -> Node {
        if self.get(node).str_at(&["apiVersion"]) != Some("events.k8s.io/v1") {
            return node;
        }
        let mut e = self.get(node).to_value();
        if let Value::Object(m) = &mut e {
            let renames = [
                ("regarding", "involvedObject"),
                ("note", "message"),
                ("deprecatedCount", "count"),
                ("deprecatedFirstTimestamp", "firstTimestamp"),
                ("deprecatedLastTimestamp", "lastTimestamp"),
            ];
            for (from, to) in renames {
                if let Some(v) = m.remove(from) {
                    m.entry(to).or_insert(v);
                }
            }
            if !m.contains_key("source")
                && let Some(c) = m.get("reportingController").cloned()
            {
                m.insert("source".into(), serde_json::json!({ "component": c }));
            }
            if !m.contains_key("lastTimestamp")
                && let Some(t) = m.get("eventTime").cloned()
            {
                m.insert("lastTimestamp".into(), t);
            }
        }
        self.store.add_value(&e, &self.fields)
    }
}

/// A JSON type the host expects of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Json {
    Str,
    List,
    Object,
}

impl Json {
    fn name(self) -> &'static str {
        ["a string", "a list", "an object"][self as usize]
    }
}

/// Fields the host reads (see [`crate::evaluation::case`]), besides the container lists
/// of pods, with the type it reads them as; `*` is each item of a list.
const POD_FIELDS: &[(&[&str], Json)] = &[
    (&["metadata", "name"], Json::Str),
    (&["metadata", "namespace"], Json::Str),
    (&["metadata", "uid"], Json::Str),
    (&["metadata", "labels"], Json::Object),
    (&["metadata", "ownerReferences"], Json::List),
    (&["metadata", "ownerReferences", "*"], Json::Object),
    (&["metadata", "ownerReferences", "*", "uid"], Json::Str),
    (&["spec"], Json::Object),
    (&["spec", "nodeName"], Json::Str),
    (&["status"], Json::Object),
];
const EVENT_FIELDS: &[(&[&str], Json)] = &[
    (&["metadata", "namespace"], Json::Str),
    (&["involvedObject"], Json::Object),
    (&["involvedObject", "kind"], Json::Str),
    (&["involvedObject", "uid"], Json::Str),
    (&["involvedObject", "name"], Json::Str),
    (&["involvedObject", "namespace"], Json::Str),
    (&["involvedObject", "fieldPath"], Json::Str),
    (&["lastTimestamp"], Json::Str),
    (&["eventTime"], Json::Str),
];
const NODE_FIELDS: &[(&[&str], Json)] = &[(&["metadata", "name"], Json::Str)];
const OWNER_FIELDS: &[(&[&str], Json)] = &[
    (&["metadata", "ownerReferences"], Json::List),
    (&["metadata", "ownerReferences", "*"], Json::Object),
    (&["metadata", "ownerReferences", "*", "uid"], Json::Str),
];

/// Problems listed in the note about one object; the rest are counted.
const LISTED_PROBLEMS: usize = 5;

impl Snapshot {
    /// Notes the fields the host reads of an object that are neither
    /// missing, null nor of the JSON type it expects: it reads them as
    /// missing, and the report says so (`shop/web: status.containerStatuses
    /// is a string, not a list; ignored`).
    fn note_wrong_types(&mut self, part: Section, node: Node, kind: &str) {
        let doc = self.get(node);
        let mut problems = Vec::new();
        let mut check = |path: &[&str], want: Json| wrong_types(doc, path, path, &mut Vec::new(), want, &mut problems);
        let fields = match part {
            Section::Pod | Section::ControlPlane => POD_FIELDS,
            Section::Event => EVENT_FIELDS,
            Section::Node => NODE_FIELDS,
            Section::Owner => OWNER_FIELDS,
        };
        for (path, want) in fields {
            check(path, *want);
        }
        if matches!(part, Section::Pod | Section::ControlPlane) {
            for [place, list] in CONTAINER_LISTS {
                check(&[place, list], Json::List);
                check(&[place, list, "*"], Json::Object);
                check(&[place, list, "*", "name"], Json::Str);
            }
        }
        if problems.is_empty() {
            return;
        }
        let name = doc.str_at(&["metadata", "name"]).unwrap_or("<no name>");
        let namespace = doc.str_at(&["metadata", "namespace"]);
        let kind = match part {
            Section::Event => "Event",
            Section::Node => "Node",
            _ if kind.is_empty() => "object",
            _ => kind,
        };
        let object = match (part, namespace) {
            (Section::Pod | Section::ControlPlane, ns) => format!("{}/{name}", ns.unwrap_or("default")),
            (_, Some(ns)) => format!("{kind} {ns}/{name}"),
            (_, None) => format!("{kind} {name}"),
        };
        let more = problems.len().saturating_sub(LISTED_PROBLEMS);
        problems.truncate(LISTED_PROBLEMS);
        if more > 0 {
            problems.push(format!("{more} more"));
        }
        self.notes.push(format!("{object}: {}; ignored", problems.join("; ")));
    }
}

/// Adds `spec.containers[1].name is a number, not a string` to `out` for
/// each value at `path` (`*`: each item of a list) that is neither null nor
/// `want`; `full` is the whole path, `items` the indexes of the `*`s so far.
fn wrong_types(d: Doc, path: &[&str], full: &[&str], items: &mut Vec<usize>, want: Json, out: &mut Vec<String>) {
    match path.split_first() {
        None => {
            let found = d.view();
            let fits = match found {
                View::Null => true,
                View::Str(_) => want == Json::Str,
                View::List(_) => want == Json::List,
                View::Object(_) => want == Json::Object,
                _ => false,
            };
            if !fits {
                let mut at = String::new();
                let mut index = items.iter();
                for key in full {
                    let _ = match *key {
                        "*" => write!(at, "[{}]", index.next().copied().unwrap_or_default()),
                        key if at.is_empty() => write!(at, "{key}"),
                        key => write!(at, ".{key}"),
                    };
                }
                out.push(format!("{at} is {}, not {}", json_kind(&found), want.name()));
            }
        }
        Some((&"*", rest)) => {
            for (i, item) in d.items().enumerate() {
                items.push(i);
                wrong_types(item, rest, full, items, want, out);
                items.pop();
            }
        }
        Some((key, rest)) => {
            if let Some(value) = d.get(key) {
                wrong_types(value, rest, full, items, want, out);
            }
        }
    }
}

/// Every file under `dir`, recursively, in name order.
pub fn files_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for (p, is_dir) in entries(dir)? {
        if is_dir {
            out.extend(files_under(&p)?);
        } else {
            out.push(p);
        }
    }
    Ok(out)
}

/// The entries of `dir` in name order, each with whether it is a directory
/// (a symbolic link is not followed into one).
fn entries(dir: &Path) -> std::io::Result<Vec<(PathBuf, bool)>> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    entries.into_iter().map(|e| Ok((e.path(), e.file_type()?.is_dir()))).collect()
}

fn io_message(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        std::io::ErrorKind::InvalidData => "not UTF-8 text".into(),
        _ => e.to_string(),
    }
}

fn json_message(e: &serde_json::Error) -> String {
    let s = e.to_string();
    match s.find(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

fn json_kind(v: &View) -> &'static str {
    match v {
        View::Null => "null",
        View::Bool(_) => "a boolean",
        View::Int(_) | View::Float(_) => "a number",
        View::Str(_) => "a string",
        View::List(_) => "a list",
        View::Object(_) => "an object",
    }
}

/// `t` as RFC 3339 in UTC, to the second: `2024-05-01T12:00:00Z`.
pub fn rfc3339(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Now, as [`rfc3339`] writes it.
pub fn now_rfc3339() -> String {
    rfc3339(jiff::Timestamp::now())
}

/// Parses an RFC 3339 timestamp to seconds since the Unix epoch.
pub fn parse_time(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_json_names_line_and_column() {
        let mut s = Snapshot::new(0);
        let err = s.add_text("pods.json", "{\n  \"kind\": \"Pod\",\n  \"metadata\": {,}\n}").unwrap_err();
        assert_eq!(err.to_string(), "pods.json:3:16: key must be a string");
    }

    #[test]
    fn lists_and_multi_document_yaml_are_read() {
        let mut s = Snapshot::new(0);
        s.add_text("a.yaml", "kind: PodList\nitems:\n- metadata: {name: a}\n---\nkind: Node\nmetadata: {name: n}\n---\nkind: ConfigMap\nmetadata: {name: c}\n").unwrap();
        assert_eq!((s.pods.len(), s.nodes.len()), (1, 1));
        assert_eq!(s.skipped.get("ConfigMap"), Some(&1));
    }

    #[test]
    fn a_bundle_reads_back_as_it_was_written() {
        let mut s = Snapshot::new(0);
        s.add_text(
            "a.yaml",
            "kind: Pod\nmetadata: {name: a, uid: u1}\n---\nkind: ReplicaSet\nmetadata: {name: r, uid: r1}\n",
        )
        .unwrap();
        s.add_to_section(
            Section::ControlPlane,
            &serde_json::json!({"kind": "Pod", "metadata": {"name": "kcm", "namespace": "kube-system"}}),
        )
        .unwrap();
        s.notes.push("cannot list nodes: forbidden".into());
        let line = s.store.add_value(&serde_json::json!({"source": "kubelet", "line": "x"}), &Fields::All);
        s.node_logs.push(LogLine { node: "n1".into(), value: line });
        let dir = std::env::temp_dir().join(format!("k8srule-bundle-{}", std::process::id()));
        s.write_bundle(&dir).unwrap();
        let mut back = Snapshot::new(0);
        back.add_path(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let values = |s: &Snapshot, nodes: &[Node]| nodes.iter().map(|n| s.get(*n).to_value()).collect::<Vec<_>>();
        assert_eq!(values(&back, &back.pods), values(&s, &s.pods));
        assert_eq!(values(&back, &back.control_plane), values(&s, &s.control_plane));
        assert_eq!(back.notes, s.notes);
        assert_eq!(back.owners.len(), 1);
        assert_eq!(back.node_logs[0].node, "n1");
        assert_eq!(back.get(back.node_logs[0].value).to_value(), s.get(s.node_logs[0].value).to_value());
        assert!(back.skipped.is_empty() && back.skipped_files.is_empty());
    }

    #[test]
    fn node_logs_are_redacted_and_cut_and_container_logs_skipped_unless_asked_for() {
        let dir = std::env::temp_dir().join(format!("k8srule-node-logs-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("node-logs/n1")).unwrap();
        std::fs::create_dir_all(dir.join("logs/ns/p")).unwrap();
        let long = "z".repeat(crate::input::redact::MAX_LINE_BYTES + 1);
        std::fs::write(dir.join("node-logs/n1/kubelet.log"), format!("login token=abc123 ok\n{long}\n")).unwrap();
        std::fs::write(dir.join("logs/ns/p/c.log"), "x\n").unwrap();
        let mut s = Snapshot::new(0);
        s.add_path(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let lines: Vec<&str> = s.node_logs.iter().map(|l| s.get(l.value).str_at(&["line"]).unwrap()).collect();
        assert_eq!(lines, ["login token=[REDACTED] ok", &format!("{} … [cut 1 bytes]", &long[1..])]);
        assert_eq!((s.container_logs.len(), s.skipped_logs), (0, 1));
    }

    #[test]
    fn a_dump_section_for_a_name_that_is_not_a_path_is_a_note() {
        let mut s = Snapshot::new(0).reading_logs(Some(Redactor::new(&[]).unwrap()));
        let text = "==== START logs for container c of pod ns/../../etc ====\nx\n==== END logs for container c of pod ns/../../etc ====\n";
        s.add_dump_logs("ns/p/logs.txt", text.as_bytes()).unwrap();
        assert!(s.container_logs.is_empty());
        assert_eq!(
            s.notes,
            ["ns/p/logs.txt: ignored the log of container `c` of pod `ns/../../etc`: not a Kubernetes name"]
        );
    }

    #[test]
    fn a_leading_timestamp_is_dropped_and_nothing_else() {
        assert_eq!(without_timestamp(b"2024-05-01T11:57:42.123456789Z panic: x"), b"panic: x");
        assert_eq!(without_timestamp(b"2024-05-01T11:57:42+02:00 x"), b"x");
        for kept in [&b"2024-05-01 11:57:42 x"[..], b"panic: x", b"", b"2024-05-01T11:57:42Z"] {
            assert_eq!(without_timestamp(kept), kept);
        }
    }

    #[test]
    fn new_style_events_get_core_field_names() {
        let mut s = Snapshot::new(0);
        s.add_text("e.json", r#"{"apiVersion":"events.k8s.io/v1","kind":"Event","regarding":{"uid":"u1"},"note":"Back-off","reason":"BackOff"}"#).unwrap();
        let e = s.get(s.events[0]);
        assert_eq!(e.str_at(&["involvedObject", "uid"]), Some("u1"));
        assert_eq!(e.str_at(&["message"]), Some("Back-off"));
    }
}
