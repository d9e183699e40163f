//! The objects of a snapshot in one compact store: each value is a 64-bit
//! word, lists and objects are runs of words, and every string (keys and
//! values) is interned once. A pod costs a fraction of its JSON text (a
//! `serde_json::Value` costs about ten times it), and a key is found by
//! comparing integers.

use std::fmt;

use indexmap::IndexSet;
use rustc_hash::FxBuildHasher;
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

use crate::input::fields::Fields;

/// A value in a [`Arena`]: the low 3 bits are the type, the rest the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node(u64);

const NULL: u64 = 0;
const BOOL: u64 = 1;
/// An integer that fits in 61 bits, shifted.
const INT: u64 = 2;
/// Index into `Arena::numbers`: a float, or an integer too wide for `INT`.
const NUMBER: u64 = 3;
const STR: u64 = 4;
/// Offset into `Arena::words` of the length, then the elements.
const LIST: u64 = 5;
/// Offset into `Arena::words` of the length, then key and value words.
const OBJECT: u64 = 6;

impl Node {
    pub const NULL: Node = Node(NULL);

    fn new(tag: u64, payload: u64) -> Self {
        Node(payload << 3 | tag)
    }

    fn tag(self) -> u64 {
        self.0 & 7
    }

    fn payload(self) -> usize {
        (self.0 >> 3) as usize
    }
}

/// At most this many words (32 KiB) are prefetched for one object.
const PREFETCH_WORDS: usize = 4096;

/// Asks the CPU to load the cache line of `word`: a hint that reads nothing.
fn prefetch(word: &u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads no memory the program sees, and every x86_64
    // CPU has the SSE instruction
    #[allow(unsafe_code)]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(std::ptr::from_ref(word).cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = word;
}

/// An interned string's id.
pub type Sym = u32;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Number {
    Int(i64),
    UInt(u64),
    Float(f64),
}

/// Values, with their lists, objects and strings.
#[derive(Debug, Default)]
pub struct Arena {
    words: Vec<u64>,
    numbers: Vec<Number>,
    strings: IndexSet<Box<str>, FxBuildHasher>,
    /// Entries of the lists and objects being built, innermost last.
    scratch: Vec<u64>,
}

impl Arena {
    pub fn get(&self, node: Node) -> Doc<'_> {
        Doc { store: self, node }
    }

    /// The id of a string, if some value or key of the store is that string.
    pub fn sym(&self, s: &str) -> Option<Sym> {
        self.strings.get_index_of(s).map(|i| i as Sym)
    }

    /// The number of distinct strings: every [`Sym`] is below it.
    pub fn strings(&self) -> usize {
        self.strings.len()
    }

    pub fn string(&self, sym: Sym) -> &str {
        self.strings.get_index(sym as usize).map_or("", |s| s)
    }

    fn intern(&mut self, s: &str) -> Sym {
        match self.strings.get_index_of(s) {
            Some(i) => i as Sym,
            None => self.strings.insert_full(s.into()).0 as Sym,
        }
    }

    fn int(&mut self, n: Number) -> Node {
        match n {
            Number::Int(i) if (-(1 << 60)..1 << 60).contains(&i) => Node((i << 3) as u64 | INT),
            Number::UInt(u) if u < 1 << 60 => Node(u << 3 | INT),
            _ => {
                self.numbers.push(n);
                Node::new(NUMBER, self.numbers.len() as u64 - 1)
            }
        }
    }

    /// Moves the scratch entries from `start` into a list or object.
    fn close(&mut self, tag: u64, start: usize, len: usize) -> Node {
        let at = self.words.len() as u64;
        self.words.push(len as u64);
        self.words.extend(self.scratch.drain(start..));
        Node::new(tag, at)
    }

    /// Where the next value will be stored: [`Arena::forget_from`] drops it and
    /// what follows.
    pub fn mark(&self) -> (usize, usize) {
        (self.words.len(), self.numbers.len())
    }

    /// Drops the values stored since `mark` (their strings stay interned).
    pub fn forget_from(&mut self, mark: (usize, usize)) {
        self.words.truncate(mark.0);
        self.numbers.truncate(mark.1);
    }

    /// Adds a value, keeping only `fields` of its objects.
    pub fn add_value(&mut self, value: &Value, fields: &Fields) -> Node {
        fields.seed(self).deserialize(value).unwrap_or(Node::NULL)
    }
}

impl Fields {
    /// Parses a value into `store`, keeping these fields of its objects.
    pub fn seed<'s>(&'s self, store: &'s mut Arena) -> Keep<'s> {
        Keep { fields: self, items: None, listed: Listed::No, store }
    }

    /// As [`Fields::seed`], for an item of a list the API server gave: it
    /// gets the list's `kind` and `apiVersion` when it does not say them, and
    /// loses `metadata.managedFields` (no rule reads them; they are most of
    /// an object's size).
    pub fn listed<'s>(&'s self, store: &'s mut Arena, kind: &'s str, api_version: &'s str) -> Keep<'s> {
        Keep { fields: self, items: None, listed: Listed::Item(kind, api_version), store }
    }

    /// As [`Fields::seed`], for a whole document: the `items` of a `List`
    /// are objects too.
    pub fn document<'s>(&'s self, store: &'s mut Arena) -> Keep<'s> {
        Keep { fields: self, items: Some(self), listed: Listed::No, store }
    }
}

/// A seed that parses a value into a store, skipping the fields it is not
/// asked to keep.
pub struct Keep<'s> {
    fields: &'s Fields,
    /// At the top of a document: what to keep of the objects under `items`.
    items: Option<&'s Fields>,
    listed: Listed<'s>,
    store: &'s mut Arena,
}

/// Where a value is in a listed item (see [`Fields::listed`]).
#[derive(Clone, Copy)]
enum Listed<'s> {
    No,
    /// The item itself, with the list's kind and apiVersion.
    Item(&'s str, &'s str),
    /// Its `metadata`.
    Meta,
}

impl<'de> DeserializeSeed<'de> for Keep<'_> {
    type Value = Node;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Keep<'_> {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::new(BOOL, u64::from(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(self.store.int(Number::Int(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(self.store.int(Number::UInt(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(self.store.int(Number::Float(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::new(STR, u64::from(self.store.intern(v))))
    }

    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::NULL)
    }

    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::NULL)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let Keep { fields, items, store, .. } = self;
        let start = store.scratch.len();
        while let Some(v) = seq.next_element_seed(Keep { fields, items, listed: Listed::No, store: &mut *store })? {
            store.scratch.push(v.0);
        }
        let len = store.scratch.len() - start;
        Ok(store.close(LIST, start, len))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let Keep { fields, items, listed, store } = self;
        let start = store.scratch.len();
        while let Some(key) = map.next_key_seed(Key { fields, items, listed, store: &mut *store })? {
            match key {
                Some((sym, fields, items, listed)) => {
                    let value = map.next_value_seed(Keep { fields, items, listed, store: &mut *store })?;
                    store.scratch.push(u64::from(sym));
                    store.scratch.push(value.0);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Listed::Item(kind, api_version) = listed {
            for (key, value) in [("kind", kind), ("apiVersion", api_version)] {
                let key = u64::from(store.intern(key));
                if !store.scratch.get(start..).unwrap_or_default().chunks(2).any(|entry| entry.first() == Some(&key)) {
                    let value = Node::new(STR, u64::from(store.intern(value)));
                    store.scratch.extend([key, value.0]);
                }
            }
        }
        let len = (store.scratch.len() - start) / 2;
        Ok(store.close(OBJECT, start, len))
    }
}

/// A key of an object: interned, with what to keep of its value, when it is kept.
struct Key<'f, 's> {
    fields: &'f Fields,
    items: Option<&'f Fields>,
    listed: Listed<'f>,
    store: &'s mut Arena,
}

type KeptKey<'f> = Option<(Sym, &'f Fields, Option<&'f Fields>, Listed<'f>)>;

impl<'de, 'f> DeserializeSeed<'de> for Key<'f, '_> {
    type Value = KeptKey<'f>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, 'f> Visitor<'de> for Key<'f, '_> {
    type Value = KeptKey<'f>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E>(self, key: &str) -> Result<Self::Value, E> {
        let listed = match (self.listed, key) {
            (Listed::Meta, "managedFields") => return Ok(None),
            (Listed::Item(..), "metadata") => Listed::Meta,
            _ => Listed::No,
        };
        let kept = match (self.items, key) {
            (Some(items), "items") => Some((items, Some(items))),
            _ => self.fields.child(key).map(|f| (f, None)),
        };
        Ok(kept.map(|(fields, items)| (self.store.intern(key), fields, items, listed)))
    }
}

/// A value of a store, read like a `serde_json::Value`: a missing key or a
/// value of another type reads as `None`.
#[derive(Clone, Copy)]
pub struct Doc<'a> {
    store: &'a Arena,
    node: Node,
}

/// What a value is.
pub enum View<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    List(usize),
    Object(usize),
}

impl<'a> Doc<'a> {
    pub fn node(self) -> Node {
        self.node
    }

    pub fn view(self) -> View<'a> {
        let p = self.node.payload();
        match self.node.tag() {
            BOOL => View::Bool(p != 0),
            INT => View::Int((self.node.0 as i64) >> 3),
            NUMBER => match self.store.numbers.get(p) {
                Some(Number::Int(i)) => View::Int(*i),
                Some(Number::UInt(u)) => View::Float(*u as f64),
                Some(Number::Float(f)) => View::Float(*f),
                None => View::Null,
            },
            STR => View::Str(self.store.string(p as Sym)),
            LIST => View::List(self.len_at(p)),
            OBJECT => View::Object(self.len_at(p)),
            _ => View::Null,
        }
    }

    fn len_at(self, offset: usize) -> usize {
        self.store.words.get(offset).map_or(0, |n| *n as usize)
    }

    fn words(self) -> &'a [u64] {
        let p = self.node.payload();
        let n = match self.node.tag() {
            LIST => self.len_at(p),
            OBJECT => self.len_at(p) * 2,
            _ => return &[],
        };
        self.store.words.get(p + 1..p + 1 + n).unwrap_or_default()
    }

    /// Asks the CPU to load, ahead of use, the words stored after this
    /// object up to the end of `next`, an object stored later. An object's
    /// parts are stored just before it, so these are `next` and its parts
    /// when the two were added one after the other (pods listed in a row);
    /// nothing when they are far apart.
    pub fn prefetch_to(self, next: Doc<'a>) {
        let end = |d: Doc<'a>| d.is_object().then(|| d.node.payload() + 1 + d.words().len());
        let (Some(from), Some(to)) = (end(self), end(next)) else { return };
        if let Some(words) = self.store.words.get(from..to).filter(|w| w.len() <= PREFETCH_WORDS) {
            // one word per 64-byte cache line
            words.iter().step_by(8).for_each(prefetch);
        }
    }

    fn word(self, word: u64) -> Doc<'a> {
        Doc { store: self.store, node: Node(word) }
    }

    /// The value of a key of an object.
    pub fn get(self, key: &str) -> Option<Doc<'a>> {
        self.get_sym(self.store.sym(key)?)
    }

    /// The value of a key of an object, the key interned.
    pub fn get_sym(self, key: Sym) -> Option<Doc<'a>> {
        if self.node.tag() != OBJECT {
            return None;
        }
        self.words().chunks_exact(2).find(|kv| kv[0] == u64::from(key)).map(|kv| self.word(kv[1]))
    }

    /// The values of several keys of an object, found in one pass over its keys.
    pub fn get_syms<const N: usize>(self, keys: &[Option<Sym>; N]) -> [Option<Doc<'a>>; N] {
        let mut out = [None; N];
        for kv in self.words().chunks_exact(2).filter(|_| self.node.tag() == OBJECT) {
            if let Some(at) = keys.iter().position(|k| k.map(u64::from) == Some(kv[0])) {
                out[at] = Some(self.word(kv[1]));
            }
        }
        out
    }

    /// The value at a path of keys.
    pub fn path(self, keys: &[&str]) -> Option<Doc<'a>> {
        keys.iter().try_fold(self, |v, k| v.get(k))
    }

    /// The value at a path of interned keys (`None`: a key no object has).
    pub fn at_syms(self, keys: &[Option<Sym>]) -> Option<Doc<'a>> {
        keys.iter().try_fold(self, |v, k| v.get_sym((*k)?))
    }

    /// The string at a path of keys.
    pub fn str_at(self, keys: &[&str]) -> Option<&'a str> {
        self.path(keys)?.as_str()
    }

    pub fn as_str(self) -> Option<&'a str> {
        match self.view() {
            View::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The string id of a string.
    pub fn sym(self) -> Option<Sym> {
        (self.node.tag() == STR).then_some(self.node.payload() as Sym)
    }

    pub fn as_i64(self) -> Option<i64> {
        match self.view() {
            View::Int(i) => Some(i),
            _ => None,
        }
    }

    pub fn is_object(self) -> bool {
        self.node.tag() == OBJECT
    }

    pub fn is_list(self) -> bool {
        self.node.tag() == LIST
    }

    /// The elements of a list (none for another value).
    pub fn items(self) -> impl ExactSizeIterator<Item = Doc<'a>> + Clone + 'a {
        let words = if self.node.tag() == LIST { self.words() } else { &[] };
        let store = self.store;
        words.iter().map(move |w| Doc { store, node: Node(*w) })
    }

    /// The keys and values of an object (none for another value).
    pub fn entries(self) -> impl Iterator<Item = (&'a str, Doc<'a>)> + 'a {
        let words = if self.node.tag() == OBJECT { self.words() } else { &[] };
        let store = self.store;
        words.chunks_exact(2).map(move |kv| (store.string(kv[0] as Sym), Doc { store, node: Node(kv[1]) }))
    }

    pub fn to_value(self) -> Value {
        match self.view() {
            View::Null => Value::Null,
            View::Bool(b) => Value::Bool(b),
            View::Int(i) => Value::from(i),
            View::Float(_) => match self.store.numbers.get(self.node.payload()) {
                Some(Number::UInt(u)) => Value::from(*u),
                Some(Number::Float(f)) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
                _ => Value::Null,
            },
            View::Str(s) => Value::String(s.to_string()),
            View::List(_) => Value::Array(self.items().map(Doc::to_value).collect()),
            View::Object(_) => Value::Object(self.entries().map(|(k, v)| (k.to_string(), v.to_value())).collect()),
        }
    }
}

impl fmt::Debug for Doc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.to_value())
    }
}

impl Serialize for Doc<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.view() {
            View::List(n) => {
                let mut seq = s.serialize_seq(Some(n))?;
                for v in self.items() {
                    seq.serialize_element(&v)?;
                }
                seq.end()
            }
            View::Object(n) => {
                let mut map = s.serialize_map(Some(n))?;
                for (k, v) in self.entries() {
                    map.serialize_entry(k, &v)?;
                }
                map.end()
            }
            _ => self.to_value().serialize(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(fields: &Fields, text: &str) -> Value {
        let mut store = Arena::default();
        let node = fields.document(&mut store).deserialize(&mut serde_json::Deserializer::from_str(text)).unwrap();
        store.get(node).to_value()
    }

    #[test]
    fn values_read_back_as_they_were() {
        let text = r#"{"a":[1,-2,3.5,18446744073709551615,-1152921504606846977,true,null,"x",{}],"b":{"c":"x"}}"#;
        assert_eq!(parse(&Fields::All, text), serde_json::from_str::<Value>(text).unwrap());
    }

    #[test]
    fn keeps_what_is_asked_and_drops_the_rest() {
        let mut f = Fields::host();
        f.keep(&["status", "phase"]);
        f.reach(&["status", "containerStatuses"]).keep(&["lastState"]);
        let pod = r#"{"kind":"Pod","metadata":{"name":"a","annotations":{"x":"y","k8srule.dev/ignore":"oom"},
            "managedFields":[{"f":1}]},
            "status":{"phase":"Running","hostIP":"1.2.3.4","containerStatuses":[{"name":"c","image":"i",
            "lastState":{"terminated":{"exitCode":137}}}]}}"#;
        assert_eq!(
            parse(&f, pod),
            serde_json::json!({"kind":"Pod","metadata":{"name":"a","annotations":{"k8srule.dev/ignore":"oom"}},
                "status":{"phase":"Running",
                "containerStatuses":[{"name":"c","lastState":{"terminated":{"exitCode":137}}}]}})
        );
    }

    #[test]
    fn list_items_are_objects() {
        let mut f = Fields::host();
        f.keep(&["status"]);
        let list = r#"{"kind":"PodList","metadata":{"resourceVersion":"9"},"items":[{"kind":"Pod","spec":{"x":1},"status":{"a":[1,{"b":null}]}}]}"#;
        assert_eq!(
            parse(&f, list),
            serde_json::json!({"kind":"PodList","metadata":{},"items":[{"kind":"Pod","spec":{},"status":{"a":[1,{"b":null}]}}]})
        );
    }

    #[test]
    fn keys_and_paths_read_like_json() {
        let mut store = Arena::default();
        let v = serde_json::json!({"metadata": {"name": "web", "n": 7}, "list": [1, 2]});
        let doc = store.add_value(&v, &Fields::All);
        let doc = store.get(doc);
        assert_eq!(doc.str_at(&["metadata", "name"]), Some("web"));
        assert_eq!(doc.path(&["metadata", "n"]).and_then(Doc::as_i64), Some(7));
        assert!(doc.get("nope").is_none() && doc.path(&["list", "x"]).is_none());
        assert_eq!(doc.get("list").map(|l| l.items().len()), Some(2));
        assert_eq!(serde_json::to_value(doc).unwrap(), v);
    }
}
