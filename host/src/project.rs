//! Projection: the values a pack declared, read once per case into columns.

use rustc_hash::FxHashMap;

use k8srule_dsl::pack::{encode_version, tag};
use regex::Regex;
use serde_json::Value;

use crate::case::{Case, ContainerView};
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
    Json(&'a Value),
    Text(&'static str),
    Case(&'c Case<'a>),
    Container(&'c ContainerView<'a>),
    Refs(&'c [&'a Value]),
    Containers(&'c [ContainerView<'a>]),
}

fn get<'c, 'a>(v: Val<'c, 'a>, seg: &str) -> Val<'c, 'a> {
    match v {
        Val::Json(Value::Object(m)) => m.get(seg).map_or(Val::Missing, Val::Json),
        Val::Case(c) => match seg {
            "pod" => Val::Json(c.pod),
            "node" => c.node().map_or(Val::Missing, Val::Json),
            "containers" => Val::Containers(c.containers()),
            "events" => Val::Refs(c.events()),
            "owners" => Val::Refs(c.owners()),
            "controlPlane" => Val::Refs(c.control_plane()),
            "nodeLogs" => Val::Refs(c.node_logs()),
            _ => Val::Missing,
        },
        Val::Container(c) => match seg {
            "kind" => Val::Text(c.kind),
            "events" => Val::Refs(&c.events),
            _ => c
                .spec
                .and_then(|s| s.get(seg))
                .or_else(|| c.status.and_then(|s| s.get(seg)))
                .map_or(Val::Missing, Val::Json),
        },
        _ => Val::Missing,
    }
}

fn get_path<'c, 'a>(mut v: Val<'c, 'a>, segments: &[String]) -> Val<'c, 'a> {
    for s in segments {
        v = get(v, s);
    }
    v
}

fn elements<'c, 'a>(v: Val<'c, 'a>, out: &mut Vec<Val<'c, 'a>>) {
    match v {
        Val::Json(Value::Array(items)) => out.extend(items.iter().map(Val::Json)),
        Val::Refs(items) => out.extend(items.iter().map(|i| Val::Json(i))),
        Val::Containers(items) => out.extend(items.iter().map(Val::Container)),
        _ => {}
    }
}

/// Interns strings of one batch; the pack's literals come first.
struct Strings<'s> {
    ids: FxHashMap<&'s str, u32>,
    bytes: Vec<u8>,
    offsets: Vec<u32>,
}

impl<'s> Strings<'s> {
    fn new(literals: &'s [String]) -> Self {
        let mut s = Strings { ids: FxHashMap::default(), bytes: Vec::new(), offsets: vec![0] };
        for l in literals {
            s.intern(l);
        }
        s
    }

    fn intern(&mut self, s: &'s str) -> u32 {
        let next = self.offsets.len() as u32 - 1;
        *self.ids.entry(s).or_insert_with(|| {
            self.bytes.extend_from_slice(s.as_bytes());
            self.offsets.push(self.bytes.len() as u32);
            next
        })
    }
}

fn cell<'a>(v: Val<'_, 'a>, derive: &Derive, strings: &mut Strings<'a>) -> (u8, i64) {
    const NULL: (u8, i64) = (tag::NULL as u8, 0);
    let truth = |b: bool| (tag::BOOL as u8, i64::from(b));
    let text: Option<&'a str> = match v {
        Val::Json(Value::String(s)) => Some(s.as_str()),
        Val::Text(s) => Some(s),
        _ => None,
    };
    match derive {
        Derive::Value => match v {
            Val::Json(Value::Bool(b)) => truth(*b),
            Val::Json(Value::Number(n)) => match n.as_i64() {
                Some(i) => (tag::INT as u8, i),
                None => (tag::FLOAT as u8, n.as_f64().unwrap_or(0.0).to_bits() as i64),
            },
            Val::Missing | Val::Json(Value::Null) => NULL,
            _ => match text {
                Some(s) => (tag::STRING as u8, i64::from(strings.intern(s))),
                None => (OBJECT_TAG, 0),
            },
        },
        Derive::Length => match v {
            Val::Json(Value::Array(a)) => (tag::INT as u8, a.len() as i64),
            Val::Json(Value::Object(m)) => (tag::INT as u8, m.len() as i64),
            Val::Refs(r) => (tag::INT as u8, r.len() as i64),
            Val::Containers(c) => (tag::INT as u8, c.len() as i64),
            _ => text.map_or(NULL, |s| (tag::INT as u8, s.len() as i64)),
        },
        Derive::Quantity => match v {
            Val::Json(Value::Number(n)) => n.as_f64().map_or(NULL, |f| (tag::INT as u8, (f * 1000.0) as i64)),
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

/// Tag of an object or list: present, but equal to nothing.
pub const OBJECT_TAG: u8 = 5;

/// Builds the batch for `cases`: rows of every collection, then every column.
pub fn project<'a>(
    cases: &[Case<'a>],
    now: i64,
    collections: &[CollectionPath],
    inputs: &[Input],
    literals: &'a [String],
) -> (Batch, Vec<String>) {
    let mut strings = Strings::new(literals);
    let case_rows: Vec<Val> = cases.iter().map(Val::Case).collect();
    let mut rows: Vec<Vec<Val>> = Vec::with_capacity(collections.len());
    let mut offsets: Vec<Vec<u32>> = Vec::with_capacity(collections.len());
    for c in collections {
        let parents = c.parent.map_or(&case_rows, |p| &rows[p]);
        let mut mine = Vec::new();
        let mut offs = Vec::with_capacity(parents.len() + 1);
        for parent in parents {
            offs.push(mine.len() as u32);
            elements(get_path(*parent, &c.segments), &mut mine);
        }
        offs.push(mine.len() as u32);
        rows.push(mine);
        offsets.push(offs);
    }
    let columns = inputs
        .iter()
        .map(|input| {
            let source = input.collection.map_or(&case_rows, |c| &rows[c]);
            let mut tags = Vec::with_capacity(source.len());
            let mut values = Vec::with_capacity(source.len());
            for row in source {
                let (t, v) = cell(get_path(*row, &input.segments), &input.derive, &mut strings);
                tags.push(t);
                values.push(v);
            }
            Column { tags, values }
        })
        .collect();
    let Strings { bytes, offsets: string_offsets, .. } = strings;
    let table = string_offsets
        .windows(2)
        .map(|w| String::from_utf8_lossy(&bytes[w[0] as usize..w[1] as usize]).into_owned())
        .collect();
    (Batch { cases: cases.len() as u32, now, collections: offsets, columns, strings: bytes, string_offsets }, table)
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
