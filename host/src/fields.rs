//! Which fields of the objects to keep while parsing. Rules read a known set
//! of paths, so a snapshot loaded for diagnosis parses the rest without
//! allocating it (managed fields, annotations, env, volumes...): less memory
//! and time on big clusters, the same findings.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Everything, or these keys of an object (each with what to keep under it).
/// Lists are transparent: the elements of a list get the list's fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Fields {
    #[default]
    All,
    Some(BTreeMap<String, Fields>),
}

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
    &["spec", "nodeName"],
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

    fn child(&self, key: &str) -> Option<&Fields> {
        match self {
            Fields::All => Some(self),
            Fields::Some(m) => m.get(key),
        }
    }

    /// Parses one document, keeping these fields of each object; a `List`'s
    /// `items` are objects too.
    pub fn document(&self) -> Keep<'_> {
        Keep { fields: self, items: Some(self) }
    }
}

/// A seed that parses a value, skipping the fields it is not asked to keep.
#[derive(Clone, Copy)]
pub struct Keep<'f> {
    fields: &'f Fields,
    /// At the top of a document: what to keep of the objects under `items`.
    items: Option<&'f Fields>,
}

impl<'de> DeserializeSeed<'de> for Keep<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match (self.fields, self.items) {
            (Fields::All, None) => serde::Deserialize::deserialize(d),
            _ => d.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for Keep<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key(self))? {
            match key {
                Some((key, seed)) => {
                    let value = map.next_value_seed(seed)?;
                    out.insert(key, value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// A key of an object: with the seed for its value when it is kept.
struct Key<'f>(Keep<'f>);

impl<'de, 'f> DeserializeSeed<'de> for Key<'f> {
    type Value = Option<(String, Keep<'f>)>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 'f> Visitor<'de> for Key<'f> {
    type Value = Option<(String, Keep<'f>)>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        let Keep { fields, items } = self.0;
        if let (Some(items), "items") = (items, key) {
            return Ok(Some((key.to_string(), Keep { fields: items, items: Some(items) })));
        }
        Ok(fields.child(key).map(|fields| (key.to_string(), Keep { fields, items: None })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(fields: &Fields, text: &str) -> Value {
        fields.document().deserialize(&mut serde_json::Deserializer::from_str(text)).unwrap()
    }

    #[test]
    fn keeps_what_is_asked_and_drops_the_rest() {
        let mut f = Fields::host();
        f.keep(&["status", "phase"]);
        f.reach(&["status", "containerStatuses"]).keep(&["lastState"]);
        let pod = r#"{"kind":"Pod","metadata":{"name":"a","annotations":{"x":"y"},"managedFields":[{"f":1}]},
            "status":{"phase":"Running","hostIP":"1.2.3.4","containerStatuses":[{"name":"c","image":"i",
            "lastState":{"terminated":{"exitCode":137}}}]}}"#;
        let kept = parse(&f, pod);
        assert_eq!(
            kept,
            serde_json::json!({"kind":"Pod","metadata":{"name":"a"},"status":{"phase":"Running",
                "containerStatuses":[{"name":"c","lastState":{"terminated":{"exitCode":137}}}]}})
        );
    }

    #[test]
    fn list_items_are_objects_and_all_keeps_everything() {
        let mut f = Fields::host();
        f.keep(&["status"]);
        let list = r#"{"kind":"PodList","metadata":{"resourceVersion":"9"},"items":[{"kind":"Pod","spec":{"x":1},"status":{"a":[1,{"b":null}]}}]}"#;
        assert_eq!(
            parse(&f, list),
            serde_json::json!({"kind":"PodList","metadata":{},"items":[{"kind":"Pod","spec":{},"status":{"a":[1,{"b":null}]}}]})
        );
        assert_eq!(parse(&Fields::All, list), serde_json::from_str::<Value>(list).unwrap());
    }
}
