//! Projection: the values a pack declared, read once per case into columns.

use rustc_hash::FxHashMap;

use k8srule_dsl::pack::{encode_version, tag};
use regex::Regex;

use crate::case::{Case, ContainerView};
use crate::doc::{Doc, Store, Sym, View};
use crate::engine::types::{Batch, Column};
use crate::fields::{CONTAINER_LISTS, Fields};
use crate::snapshot::parse_time;

/// What the host computes from a value, with regexes compiled once.
#[derive(Debug)]
pub enum Derive {
    Value,
    Quantity,
    Version,
    Timestamp,
    Matches(Regex),
    Contains(String),
    StartsWith(String),
    EndsWith(String),
    Length,
}

#[derive(Debug)]
pub struct Input {
    pub collection: Option<usize>,
    pub segments: Vec<String>,
    pub derive: Derive,
}

#[derive(Debug)]
pub struct CollectionPath {
    pub parent: Option<usize>,
    pub segments: Vec<String>,
}

/// A place in a case that a path can reach.
#[derive(Clone, Copy)]
enum Val<'c, 'a> {
    Missing,
    Json(Doc<'a>),
    Text(&'static str),
    Case(&'c Case<'a>),
    /// A container, with its pod.
    Container(&'c Case<'a>, &'c ContainerView<'a>),
    Refs(&'c [Doc<'a>]),
    /// The containers of a pod.
    Containers(&'c Case<'a>),
}

/// A segment of a path, with its string id in the snapshot (none: no object has that key).
struct Segment<'p> {
    name: &'p str,
    sym: Option<Sym>,
}

fn segments<'p>(store: &Store, path: &'p [String]) -> Vec<Segment<'p>> {
    path.iter().map(|s| Segment { name: s, sym: store.sym(s) }).collect()
}

fn get<'c, 'a>(v: Val<'c, 'a>, seg: &Segment) -> Val<'c, 'a> {
    let key = |d: Doc<'a>| seg.sym.and_then(|k| d.get_sym(k));
    match v {
        Val::Json(d) => key(d).map_or(Val::Missing, Val::Json),
        Val::Case(c) => match seg.name {
            "pod" => Val::Json(c.pod),
            "node" => c.node().map_or(Val::Missing, Val::Json),
            "containers" => Val::Containers(c),
            "events" => Val::Refs(c.events()),
            "owners" => Val::Refs(c.owners()),
            "controlPlane" => Val::Refs(c.control_plane()),
            "nodeLogs" => Val::Refs(c.node_logs()),
            _ => Val::Missing,
        },
        Val::Container(case, c) => match seg.name {
            "kind" => Val::Text(c.kind),
            "events" => Val::Refs(c.events(case.events())),
            _ => c.spec.and_then(key).or_else(|| c.status.and_then(key)).map_or(Val::Missing, Val::Json),
        },
        _ => Val::Missing,
    }
}

fn get_path<'c, 'a>(mut v: Val<'c, 'a>, segments: &[Segment]) -> Val<'c, 'a> {
    for s in segments {
        v = get(v, s);
    }
    v
}

fn elements<'c, 'a>(v: Val<'c, 'a>, out: &mut Vec<Val<'c, 'a>>) {
    match v {
        Val::Json(d) => out.extend(d.items().map(Val::Json)),
        Val::Refs(items) => out.extend(items.iter().copied().map(Val::Json)),
        Val::Containers(case) => out.extend(case.containers().iter().map(|c| Val::Container(case, c))),
        _ => {}
    }
}

/// Interns strings of one batch; the pack's literals come first.
struct Strings<'s> {
    store: &'s Store,
    /// Batch ids of the snapshot's strings.
    ids: FxHashMap<Sym, u32>,
    /// Batch ids of strings that are in no object (literals, container kinds).
    others: FxHashMap<&'s str, u32>,
    bytes: Vec<u8>,
    offsets: Vec<u32>,
}

impl<'s> Strings<'s> {
    fn new(store: &'s Store, literals: &'s [String]) -> Self {
        let mut s = Strings {
            store,
            ids: FxHashMap::default(),
            others: FxHashMap::default(),
            bytes: Vec::new(),
            offsets: vec![0],
        };
        for l in literals {
            s.text(l);
        }
        s
    }

    fn push(bytes: &mut Vec<u8>, offsets: &mut Vec<u32>, s: &str) -> u32 {
        bytes.extend_from_slice(s.as_bytes());
        offsets.push(bytes.len() as u32);
        offsets.len() as u32 - 2
    }

    fn sym(&mut self, sym: Sym) -> u32 {
        let Strings { store, ids, bytes, offsets, .. } = self;
        *ids.entry(sym).or_insert_with(|| Self::push(bytes, offsets, store.string(sym)))
    }

    fn text(&mut self, s: &'s str) -> u32 {
        if let Some(sym) = self.store.sym(s) {
            return self.sym(sym);
        }
        let Strings { others, bytes, offsets, .. } = self;
        *others.entry(s).or_insert_with(|| Self::push(bytes, offsets, s))
    }
}

fn cell(v: Val<'_, '_>, derive: &Derive, strings: &mut Strings<'_>) -> (u8, i64) {
    const NULL: (u8, i64) = (tag::NULL as u8, 0);
    let truth = |b: bool| (tag::BOOL as u8, i64::from(b));
    let view = match v {
        Val::Json(d) => Some(d.view()),
        _ => None,
    };
    let text: Option<&str> = match (v, &view) {
        (_, Some(View::Str(s))) => Some(s),
        (Val::Text(s), _) => Some(s),
        _ => None,
    };
    match derive {
        Derive::Value => match (v, view) {
            (_, Some(View::Bool(b))) => truth(b),
            (_, Some(View::Int(i))) => (tag::INT as u8, i),
            (_, Some(View::Float(f))) => (tag::FLOAT as u8, f.to_bits() as i64),
            (Val::Missing, _) | (_, Some(View::Null)) => NULL,
            (Val::Json(d), Some(View::Str(_))) => (tag::STRING as u8, i64::from(strings.sym(d.sym().unwrap_or(0)))),
            (Val::Text(s), _) => (tag::STRING as u8, i64::from(strings.text(s))),
            _ => (OBJECT_TAG, 0),
        },
        Derive::Length => match (v, view) {
            (_, Some(View::List(n) | View::Object(n))) => (tag::INT as u8, n as i64),
            (Val::Refs(r), _) => (tag::INT as u8, r.len() as i64),
            (Val::Containers(case), _) => (tag::INT as u8, case.containers().len() as i64),
            _ => text.map_or(NULL, |s| (tag::INT as u8, s.len() as i64)),
        },
        Derive::Quantity => match view {
            Some(View::Int(i)) => (tag::INT as u8, i.saturating_mul(1000)),
            Some(View::Float(f)) => (tag::INT as u8, (f * 1000.0) as i64),
            _ => text.and_then(parse_quantity).map_or(NULL, |q| (tag::INT as u8, q)),
        },
        Derive::Version => text.and_then(parse_version).map_or(NULL, |q| (tag::INT as u8, q)),
        Derive::Timestamp => text.and_then(parse_time).map_or(NULL, |t| (tag::INT as u8, t)),
        Derive::Matches(re) => text.map_or(NULL, |s| truth(re.is_match(s))),
        Derive::Contains(p) => text.map_or(NULL, |s| truth(s.contains(p.as_str()))),
        Derive::StartsWith(p) => text.map_or(NULL, |s| truth(s.starts_with(p.as_str()))),
        Derive::EndsWith(p) => text.map_or(NULL, |s| truth(s.ends_with(p.as_str()))),
    }
}

/// The paths of the inputs over one kind of row, sharing their prefixes.
#[derive(Default)]
struct Trie<'p> {
    /// Inputs whose path ends here.
    inputs: Vec<usize>,
    children: Vec<(Segment<'p>, Trie<'p>)>,
}

impl<'p> Trie<'p> {
    fn insert(&mut self, path: &[Segment<'p>], input: usize) {
        let Some((first, rest)) = path.split_first() else {
            self.inputs.push(input);
            return;
        };
        let at = match self.children.iter().position(|(s, _)| s.name == first.name) {
            Some(at) => at,
            None => {
                self.children.push((Segment { name: first.name, sym: first.sym }, Trie::default()));
                self.children.len() - 1
            }
        };
        self.children[at].1.insert(rest, input);
    }

    /// Appends the cell of `row` to the column of every input below.
    fn fill(&self, row: Val<'_, '_>, inputs: &[Input], columns: &mut [Column], strings: &mut Strings<'_>) {
        for i in &self.inputs {
            let (t, v) = cell(row, &inputs[*i].derive, strings);
            columns[*i].tags.push(t);
            columns[*i].values.push(v);
        }
        for (segment, below) in &self.children {
            below.fill(get(row, segment), inputs, columns, strings);
        }
    }
}

/// Tag of an object or list: present, but equal to nothing.
pub const OBJECT_TAG: u8 = 5;

/// Builds the batch for `cases`: rows of every collection, then every column.
pub fn project<'a>(
    store: &'a Store,
    cases: &[Case<'a>],
    now: i64,
    collections: &[CollectionPath],
    inputs: &[Input],
    literals: &'a [String],
) -> Batch {
    let mut strings = Strings::new(store, literals);
    let case_rows: Vec<Val> = cases.iter().map(Val::Case).collect();
    let mut rows: Vec<Vec<Val>> = Vec::with_capacity(collections.len());
    let mut offsets: Vec<Vec<u32>> = Vec::with_capacity(collections.len());
    for c in collections {
        let parents = c.parent.map_or(&case_rows, |p| &rows[p]);
        let path = segments(store, &c.segments);
        let mut mine = Vec::new();
        let mut offs = Vec::with_capacity(parents.len() + 1);
        for parent in parents {
            offs.push(mine.len() as u32);
            elements(get_path(*parent, &path), &mut mine);
        }
        offs.push(mine.len() as u32);
        rows.push(mine);
        offsets.push(offs);
    }
    let mut columns: Vec<Column> = inputs
        .iter()
        .map(|i| {
            let n = i.collection.map_or(case_rows.len(), |c| rows[c].len());
            Column { tags: Vec::with_capacity(n), values: Vec::with_capacity(n) }
        })
        .collect();
    // per source of rows, one walk per row down the paths of its inputs
    let mut tries: std::collections::BTreeMap<Option<usize>, Trie> = std::collections::BTreeMap::new();
    for (i, input) in inputs.iter().enumerate() {
        tries.entry(input.collection).or_default().insert(&segments(store, &input.segments), i);
    }
    for (source, trie) in &tries {
        for row in source.map_or(&case_rows, |c| &rows[c]) {
            trie.fill(*row, inputs, &mut columns, &mut strings);
        }
    }
    let Strings { bytes, offsets: string_offsets, .. } = strings;
    Batch { cases: cases.len() as u32, now, collections: offsets, columns, strings: bytes, string_offsets }
}

/// String `id` of a batch.
pub fn batch_string(batch: &Batch, id: u32) -> Option<&str> {
    let (start, end) = (batch.string_offsets.get(id as usize)?, batch.string_offsets.get(id as usize + 1)?);
    std::str::from_utf8(batch.strings.get(*start as usize..*end as usize)?).ok()
}

/// Where the rows of a path sit in the snapshot's objects.
#[derive(Clone)]
enum Place {
    Case,
    Container,
    /// A path from the top of an object (a pod, event, node or owner).
    Object(Vec<String>),
}

/// The places `segments` reach from `place`, following [`get`].
fn resolve(place: Place, segments: &[String], out: &mut Vec<Place>) {
    let Some((first, rest)) = segments.split_first() else {
        out.push(place);
        return;
    };
    match place {
        Place::Object(mut path) => {
            path.extend(segments.iter().cloned());
            out.push(Place::Object(path));
        }
        Place::Case => match first.as_str() {
            "pod" | "node" | "events" | "controlPlane" => resolve(Place::Object(Vec::new()), rest, out),
            "owners" => resolve(Place::Object(vec!["metadata".into(), "ownerReferences".into()]), rest, out),
            "containers" => resolve(Place::Container, rest, out),
            // node logs are lines of log files, not objects
            _ => {}
        },
        Place::Container => match first.as_str() {
            "kind" => {}
            "events" => resolve(Place::Object(Vec::new()), rest, out),
            _ => {
                for list in CONTAINER_LISTS {
                    resolve(Place::Object(list.map(String::from).to_vec()), segments, out);
                }
            }
        },
    }
}

/// Adds to `fields` the fields of objects that a pack's collections and inputs read.
pub fn fields_read(collections: &[CollectionPath], inputs: &[Input], fields: &mut Fields) {
    let places = |from: &[Place], segments: &[String]| {
        let mut out = Vec::new();
        for p in from {
            resolve(p.clone(), segments, &mut out);
        }
        out
    };
    let mut rows: Vec<Vec<Place>> = Vec::with_capacity(collections.len());
    for c in collections {
        let parents = c.parent.and_then(|p| rows.get(p)).map_or(&[Place::Case][..], Vec::as_slice);
        let mine = places(parents, &c.segments);
        for p in &mine {
            if let Place::Object(path) = p {
                fields.reach(path);
            }
        }
        rows.push(mine);
    }
    for input in inputs {
        let from = input.collection.and_then(|c| rows.get(c)).map_or(&[Place::Case][..], Vec::as_slice);
        for p in places(from, &input.segments) {
            if let Place::Object(path) = p {
                // an object or list reaches a pack only as "present" (see
                // `cell`), and scalars are always kept: only a length needs all
                match input.derive {
                    Derive::Length => fields.keep(&path),
                    _ => {
                        fields.reach(&path);
                    }
                }
            }
        }
    }
}

/// A Kubernetes quantity in thousandths of a unit: `256Mi`, `500m`, `1.5`, `2e3`.
pub fn parse_quantity(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let n: f64 = num.parse().ok()?;
    let factor: f64 = match suffix {
        "" => 1.0,
        "m" => 0.001,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        e if e.starts_with(['e', 'E']) => 10f64.powi(e[1..].parse().ok()?),
        _ => return None,
    };
    let milli = n * factor * 1000.0;
    (milli.is_finite() && milli.abs() < 9.2e18).then_some(milli.round() as i64)
}

/// A version such as `v1.10.3`, `docker://17.3.2` or `containerd://1.6.20-1`.
pub fn parse_version(s: &str) -> Option<i64> {
    let s = s.rsplit("://").next().unwrap_or(s);
    let s = s.trim_start_matches(['v', 'V']);
    let mut parts = [0u32; 3];
    let mut n = 0;
    for part in s.split('.').take(3) {
        let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
        if digits.is_empty() {
            break;
        }
        parts[n] = digits.parse().ok()?;
        n += 1;
        if digits.len() != part.len() {
            break;
        }
    }
    (n > 0).then(|| encode_version(parts[0], parts[1], parts[2]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_in_thousandths() {
        assert_eq!(parse_quantity("256Mi"), Some(256 * 1024 * 1024 * 1000));
        assert_eq!(parse_quantity("500m"), Some(500));
        assert_eq!(parse_quantity("2"), Some(2000));
        assert_eq!(parse_quantity("1e3"), Some(1_000_000));
        assert_eq!(parse_quantity("lots"), None);
    }

    #[test]
    fn versions_ignore_prefixes_and_suffixes() {
        assert_eq!(parse_version("v1.8.13"), Some(1_008_013));
        assert_eq!(parse_version("docker://17.3.2"), Some(17_003_002));
        assert_eq!(parse_version("containerd://1.6.20-1"), Some(1_006_020));
        assert_eq!(parse_version("v1.30.1-eks-abc"), Some(1_030_001));
        assert_eq!(parse_version("unknown"), None);
    }
}
