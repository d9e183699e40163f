//! Snapshots: Kubernetes objects read from files, indexed once.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::de::DeserializeSeed;
use serde_json::Value;

use crate::fields::Fields;

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

/// A line of a node's log, from `node-logs/<node>/<source>.log` in a bundle.
#[derive(Debug, Clone)]
pub struct LogLine {
    pub node: String,
    pub value: Value,
}

/// Kubernetes objects and the moment they describe.
#[derive(Debug, Default)]
pub struct Snapshot {
    pub pods: Vec<Value>,
    pub events: Vec<Value>,
    pub nodes: Vec<Value>,
    /// Other objects that may own pods (ReplicaSet, DaemonSet, ...), by uid.
    pub owners: HashMap<String, Value>,
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
    pub control_plane: Vec<Value>,
    /// What could not be read (a forbidden list, say), shown in the report.
    pub notes: Vec<String>,
    /// The fields of objects kept when text is parsed (default: all).
    fields: Fields,
}

const OWNER_KINDS: [&str; 7] =
    ["ReplicaSet", "Deployment", "DaemonSet", "StatefulSet", "Job", "CronJob", "ReplicationController"];

impl Snapshot {
    pub fn new(now: i64) -> Self {
        Snapshot { now, ..Snapshot::default() }
    }

    /// Keeps only these fields of the objects parsed from text and files:
    /// [`crate::Diagnoser::fields`] for a snapshot that is only diagnosed.
    pub fn keeping(mut self, fields: Fields) -> Self {
        self.fields = fields;
        self
    }

    /// Adds every object of a JSON or YAML document (one object, a `List`,
    /// or several YAML documents); `name` is used in messages.
    pub fn add_text(&mut self, name: &str, text: &str) -> Result<(), LoadError> {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            // one document, or several one after the other
            let mut stream = serde_json::Deserializer::from_str(text);
            loop {
                let doc = self.fields.document().deserialize(&mut stream).map_err(|e| LoadError::Parse {
                    path: name.to_string(),
                    line: e.line(),
                    column: e.column(),
                    message: json_message(&e),
                })?;
                self.add_object(name, doc)?;
                if stream.end().is_ok() {
                    return Ok(());
                }
            }
        }
        for doc in serde_yaml::Deserializer::from_str(text) {
            let value = self.fields.document().deserialize(doc).map_err(|e: serde_yaml::Error| {
                let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
                LoadError::Parse { path: name.to_string(), line, column, message: e.to_string() }
            })?;
            if !matches!(value, Value::Null) {
                self.add_object(name, value)?;
            }
        }
        Ok(())
    }

    /// Adds one object, or the items of a list.
    pub fn add_value(&mut self, name: &str, value: Value) -> Result<(), LoadError> {
        let value = match self.fields {
            Fields::All => value,
            _ => self
                .fields
                .document()
                .deserialize(value)
                .map_err(|e| LoadError::Invalid { path: name.to_string(), message: e.to_string() })?,
        };
        self.add_object(name, value)
    }

    /// Adds one object, or the items of a list, whose fields are kept already.
    fn add_object(&mut self, name: &str, value: Value) -> Result<(), LoadError> {
        let invalid = |message: String| LoadError::Invalid { path: name.to_string(), message };
        let kind = match &value {
            Value::Array(_) => String::new(),
            Value::Object(m) => match m.get("kind") {
                Some(Value::String(k)) => k.clone(),
                Some(_) => return Err(invalid("`kind` is not a string".into())),
                None if m.contains_key("items") => "List".to_string(),
                None => return Err(invalid("an object without `kind`".into())),
            },
            other => {
                return Err(invalid(format!("expected a Kubernetes object, found {}", json_kind(other))));
            }
        };
        if kind.is_empty() || kind.ends_with("List") {
            let items = match value {
                Value::Array(items) => items,
                Value::Object(mut m) => match m.remove("items") {
                    Some(Value::Array(items)) => items,
                    Some(Value::Null) | None => Vec::new(),
                    Some(_) => return Err(invalid(format!("`items` of the {kind} is not a list"))),
                },
                _ => Vec::new(),
            };
            let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty() && *k != "List").map(str::to_string);
            for mut item in items {
                if let (Some(k), Value::Object(m)) = (&item_kind, &mut item) {
                    m.entry("kind").or_insert_with(|| Value::String(k.clone()));
                }
                self.add_object(name, item)?;
            }
            return Ok(());
        }
        match kind.as_str() {
            "Pod" => {
                check_object(name, &value, "metadata")?;
                self.pods.push(value)
            }
            "Event" => self.events.push(normalize_event(value)),
            "Node" => self.nodes.push(value),
            k if OWNER_KINDS.contains(&k) => match value.pointer("/metadata/uid").and_then(Value::as_str) {
                Some(uid) => {
                    self.owners.insert(uid.to_string(), value);
                }
                None => *self.skipped.entry(format!("{k} (no uid)")).or_default() += 1,
            },
            other => *self.skipped.entry(other.to_string()).or_default() += 1,
        }
        Ok(())
    }

    /// Reads a file, or a directory recursively (JSON, YAML, and
    /// `node-logs/<node>/<source>.log`). `-` reads standard input.
    pub fn add_path(&mut self, path: &Path) -> Result<(), LoadError> {
        if path == Path::new("-") {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)
                .map_err(|e| LoadError::Io { path: "<stdin>".into(), message: e.to_string() })?;
            return self.add_text("<stdin>", &text);
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
        let text = std::fs::read_to_string(path)
            .map_err(|e| LoadError::Io { path: shown.clone(), message: io_message(&e) })?;
        self.add_text(&shown, &text)
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
                    let mut context = Snapshot::default();
                    context.add_text(&shown, &read(file)?)?;
                    self.control_plane.extend(context.pods);
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
                let value = serde_json::json!({ "source": source, "line": line });
                self.node_logs.push(LogLine { node: node.clone(), value });
            }
            return Ok(());
        }
        match ext {
            "json" | "yaml" | "yml" => self.add_text(&shown, &read(file)?),
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
        let list = |kind: &str, items: Vec<&Value>| {
            let list = serde_json::json!({ "apiVersion": "v1", "kind": kind, "items": items });
            serde_json::to_string_pretty(&list).unwrap_or_default() + "\n"
        };
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        write(dir.join("pods.json"), list("PodList", self.pods.iter().collect()))?;
        write(dir.join("events.json"), list("EventList", self.events.iter().collect()))?;
        write(dir.join("nodes.json"), list("NodeList", self.nodes.iter().collect()))?;
        let mut owners: Vec<(&String, &Value)> = self.owners.iter().collect();
        owners.sort_by_key(|(uid, _)| *uid);
        write(dir.join("owners.json"), list("List", owners.into_iter().map(|(_, o)| o).collect()))?;
        if !self.control_plane.is_empty() {
            write(
                dir.join(BUNDLE_DIR).join("control-plane.json"),
                list("PodList", self.control_plane.iter().collect()),
            )?;
        }
        if !self.notes.is_empty() {
            write(dir.join(BUNDLE_DIR).join("notes.txt"), self.notes.join("\n") + "\n")?;
        }
        let mut logs: BTreeMap<(&str, &str), String> = BTreeMap::new();
        for l in &self.node_logs {
            let source = l.value["source"].as_str().unwrap_or("node");
            let text = logs.entry((l.node.as_str(), source)).or_default();
            text.push_str(l.value["line"].as_str().unwrap_or_default());
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

fn check_object(name: &str, value: &Value, field: &str) -> Result<(), LoadError> {
    match value.get(field) {
        Some(Value::Object(_)) => Ok(()),
        _ => Err(LoadError::Invalid {
            path: name.to_string(),
            message: format!("a {} without `{field}`", value.get("kind").and_then(Value::as_str).unwrap_or("object")),
        }),
    }
}

/// Shows an events.k8s.io/v1 Event with the core/v1 field names.
fn normalize_event(mut e: Value) -> Value {
    let is_new = e.get("apiVersion").and_then(Value::as_str) == Some("events.k8s.io/v1");
    if let (true, Value::Object(m)) = (is_new, &mut e) {
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
    e
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

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
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
        s.control_plane
            .push(serde_json::json!({"kind": "Pod", "metadata": {"name": "kcm", "namespace": "kube-system"}}));
        s.notes.push("cannot list nodes: forbidden".into());
        s.node_logs.push(LogLine { node: "n1".into(), value: serde_json::json!({"source": "kubelet", "line": "x"}) });
        let dir = std::env::temp_dir().join(format!("k8srule-bundle-{}", std::process::id()));
        s.write_bundle(&dir).unwrap();
        let mut back = Snapshot::new(0);
        back.add_path(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!((back.pods, back.control_plane, back.notes), (s.pods, s.control_plane, s.notes));
        assert_eq!(back.owners.len(), 1);
        assert_eq!((back.node_logs[0].node.as_str(), &back.node_logs[0].value), ("n1", &s.node_logs[0].value));
        assert!(back.skipped.is_empty() && back.skipped_files.is_empty());
    }

    #[test]
    fn new_style_events_get_core_field_names() {
        let mut s = Snapshot::new(0);
        s.add_text("e.json", r#"{"apiVersion":"events.k8s.io/v1","kind":"Event","regarding":{"uid":"u1"},"note":"Back-off","reason":"BackOff"}"#).unwrap();
        assert_eq!(s.events[0]["involvedObject"]["uid"], "u1");
        assert_eq!(s.events[0]["message"], "Back-off");
    }
}
