//! Snapshots: Kubernetes objects read from files, indexed once.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::de::DeserializeSeed;
use serde_json::Value;

use crate::doc::{Doc, Node, Store, View};
use crate::fields::{CONTAINER_LISTS, Fields};

/// A problem with the input the user gave; the CLI exits with code 2.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("{path}:{line}:{column}: {message}")]
    Parse { path: String, line: usize, column: usize, message: String },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
}

/// A line of a node's log, from `node-logs/<node>/<source>.log` in a bundle:
/// an object `{source, line}`.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub node: String,
    pub value: Node,
}

/// Kubernetes objects and the moment they describe. The objects' values are
/// in `store`; the lists hold their nodes.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub store: Store,
    pub pods: Vec<Node>,
    pub events: Vec<Node>,
    pub nodes: Vec<Node>,
    /// Other objects that may own pods (ReplicaSet, DaemonSet, ...), by uid.
    pub owners: HashMap<String, Node>,
    pub node_logs: Vec<LogLine>,
    /// Seconds since the Unix epoch that ages are measured against.
    pub now: i64,
    /// Objects that were read but are not used, counted by kind.
    pub skipped: BTreeMap<String, usize>,
    /// Files of a directory that hold no objects, counted by name pattern (`*.txt`).
    pub skipped_files: BTreeMap<String, usize>,
    /// kube-system control-plane pods read for context only (not diagnosed):
    /// a live read of one namespace adds them; a bundle keeps them in
    /// `_k8srule/control-plane.json`.
    pub control_plane: Vec<Node>,
    /// What could not be read (a forbidden list, say), shown in the report.
    pub notes: Vec<String>,
    /// The fields of objects kept (default: all).
    fields: Fields,
}

/// What an object is to a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Pod,
    Event,
    Node,
    /// An object that may own pods; kept by its uid.
    Owner,
    /// A kube-system control-plane pod, read for context only.
    ControlPlane,
}

const OWNER_KINDS: [&str; 7] =
    ["ReplicaSet", "Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob", "ReplicationController"];

impl Snapshot {
    pub fn new(now: i64) -> Self {
        Snapshot { now, ..Snapshot::default() }
    }

    /// Keeps only these fields of the objects added afterwards:
    /// [`crate::Diagnoser::fields`] for a snapshot that is only diagnosed.
    pub fn keeping(mut self, fields: Fields) -> Self {
        self.fields = fields;
        self
    }

    /// A value of the snapshot.
    pub fn get(&self, node: Node) -> Doc<'_> {
        self.store.get(node)
    }

    /// Adds every object of a JSON or YAML document (one object, a `List`,
    /// or several YAML documents); `name` is used in messages.
    pub fn add_text(&mut self, name: &str, text: &str) -> Result<(), LoadError> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            return self.add_json(name, serde_json::Deserializer::from_str(text));
        }
        for doc in serde_yaml::Deserializer::from_str(text) {
            let node = self.fields.document(&mut self.store).deserialize(doc).map_err(|e: serde_yaml::Error| {
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

    /// Adds an object whose kind is known (as a live read lists them).
    pub fn add_part(&mut self, part: Part, value: &Value) {
        let node = self.store.add_value(value, &self.fields);
        self.push(part, node, value.get("kind").and_then(Value::as_str).unwrap_or_default());
    }

    fn push(&mut self, part: Part, node: Node, kind: &str) {
        let node = if part == Part::Event { self.normalize_event(node) } else { node };
        self.note_wrong_types(part, node, kind);
        match part {
            Part::Pod => self.pods.push(node),
            Part::Event => self.events.push(node),
            Part::Node => self.nodes.push(node),
            Part::ControlPlane => self.control_plane.push(node),
            Part::Owner => match self.get(node).str_at(&["metadata", "uid"]) {
                Some(uid) => {
                    self.owners.insert(uid.to_string(), node);
                }
                None => *self.skipped.entry(format!("{kind} (no uid)")).or_default() += 1,
            },
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
                Part::Pod
            }
            "Event" => Part::Event,
            "Node" => Part::Node,
            k if OWNER_KINDS.contains(&k) => Part::Owner,
            other => {
                *self.skipped.entry(other.to_string()).or_default() += 1;
                return Ok(());
            }
        };
        self.push(part, node, &kind);
        Ok(())
    }

    /// Reads a file, or a directory recursively (JSON, YAML, and
    /// `node-logs/<node>/<source>.log`). `-` reads standard input.
    pub fn add_path(&mut self, path: &Path) -> Result<(), LoadError> {
        if path == Path::new("-") {
            return self.add_reader("<stdin>", std::io::stdin().lock());
        }
        let shown = path.display().to_string();
        let meta =
            std::fs::metadata(path).map_err(|e| LoadError::Io { path: shown.clone(), message: io_message(&e) })?;
        if meta.is_dir() {
            for file in files_under(path).map_err(|e| LoadError::Io { path: shown.clone(), message: io_message(&e) })? {
                self.add_bundle_file(path, &file)?;
            }
            return Ok(());
        }
        self.add_file(&shown, path)
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
                _ => *self.skipped_files.entry(rel.display().to_string()).or_default() += 1,
            }
            return Ok(());
        }
        if let [.., dir, node, source] = parts.as_slice()
            && dir == "node-logs"
            && ext == "log"
        {
            let source = source.trim_end_matches(".log").to_string();
            for line in read(file)?.lines() {
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
                *self.skipped_files.entry(pattern).or_default() += 1;
                Ok(())
            }
        }
    }

    /// Writes the snapshot as a bundle directory that [`Snapshot::add_path`]
    /// reads back: `pods.json`, `events.json`, `nodes.json` and `owners.json`
    /// (`List`s), `node-logs/<node>/<source>.log`, and under `_k8srule/` the
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
        Ok(())
    }
}

/// The folder of a bundle that holds what is not a Kubernetes object list.
const BUNDLE_DIR: &str = "_k8srule";

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

/// Fields the host reads (see [`crate::case`]), besides the container lists
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
    fn note_wrong_types(&mut self, part: Part, node: Node, kind: &str) {
        let doc = self.get(node);
        let mut problems = Vec::new();
        let mut check = |path: &[&str], want: Json| wrong_types(doc, path, path, &mut Vec::new(), want, &mut problems);
        let fields = match part {
            Part::Pod | Part::ControlPlane => POD_FIELDS,
            Part::Event => EVENT_FIELDS,
            Part::Node => NODE_FIELDS,
            Part::Owner => OWNER_FIELDS,
        };
        for (path, want) in fields {
            check(path, *want);
        }
        if matches!(part, Part::Pod | Part::ControlPlane) {
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
            Part::Event => "Event",
            Part::Node => "Node",
            _ if kind.is_empty() => "object",
            _ => kind,
        };
        let object = match (part, namespace) {
            (Part::Pod | Part::ControlPlane, ns) => format!("{}/{name}", ns.unwrap_or("default")),
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
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if e.file_type()?.is_dir() {
            out.extend(files_under(&p)?);
        } else {
            out.push(p);
        }
    }
    Ok(out)
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

/// Parses an RFC 3339 timestamp to seconds since the Unix epoch.
pub fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp())
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
        s.add_part(
            Part::ControlPlane,
            &serde_json::json!({"kind": "Pod", "metadata": {"name": "kcm", "namespace": "kube-system"}}),
        );
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
    fn new_style_events_get_core_field_names() {
        let mut s = Snapshot::new(0);
        s.add_text("e.json", r#"{"apiVersion":"events.k8s.io/v1","kind":"Event","regarding":{"uid":"u1"},"note":"Back-off","reason":"BackOff"}"#).unwrap();
        let e = s.get(s.events[0]);
        assert_eq!(e.str_at(&["involvedObject", "uid"]), Some("u1"));
        assert_eq!(e.str_at(&["message"]), Some("Back-off"));
    }
}
