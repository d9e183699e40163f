//! Projection: the values a pack declared, read once per case into columns.

use std::borrow::Cow;

use rustc_hash::FxHashMap;

use k8srule_dsl::pack::{encode_version, tag};
use regex::Regex;

use crate::evaluation::case::{Case, CaseKind, Container};
use crate::evaluation::contract::{Batch, Column, Value};
use crate::input::fields::{CONTAINER_LISTS, Fields};
use crate::input::snapshot::parse_time;
use crate::input::tree::{Arena, Doc, Sym, View};

/// What the host computes from a value, with regexes compiled once.
#[derive(Debug)]
pub enum Derive {
    Value,
    Quantity,
    Version,
    Timestamp,
    Matches(Regex),
    Capture(Regex),
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
    /// Read only for the findings that show it.
    pub shown_only: bool,
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
    Container(&'c Case<'a>, Container<'a>),
    /// The events of a container.
    ContainerEvents(&'c Case<'a>, Container<'a>),
    Refs(&'c [Doc<'a>]),
    /// The containers of a pod.
    Containers(&'c Case<'a>),
    /// The workload of a workload's case: its object and its events.
    Workload(&'c Case<'a>),
    /// Log lines (`{source, line, previous}`) of a node or one container run.
    Lines(&'a [Doc<'a>]),
    /// The log lines of a container, previous run first.
    ContainerLogs(&'c Case<'a>, Container<'a>),
    /// Line `i` of a log, which knows the lines around it.
    Line(&'a [Doc<'a>], u32),
    /// The lines around line `i` of a log, as one text.
    Context(&'a [Doc<'a>], u32),
}

/// The names a path segment gives meaning to, above the objects' own keys.
#[derive(Clone, Copy, PartialEq)]
enum Name {
    Pod,
    Node,
    Containers,
    Events,
    Owners,
    ControlPlane,
    NodeLogs,
    Workload,
    Logs,
    Context,
    Kind,
    /// A key only a container's status has.
    StatusOnly,
    Other,
}

/// A segment of a path, with its string id in the snapshot (none: no object has that key).
#[derive(Clone, Copy)]
struct Segment<'p> {
    text: &'p str,
    name: Name,
    sym: Option<Sym>,
}

fn segments<'p>(store: &Arena, path: &'p [String]) -> Vec<Segment<'p>> {
    let name = |s: &str| match s {
        "pod" => Name::Pod,
        "node" => Name::Node,
        "containers" => Name::Containers,
        "events" => Name::Events,
        "owners" => Name::Owners,
        "controlPlane" => Name::ControlPlane,
        "nodeLogs" => Name::NodeLogs,
        "workload" => Name::Workload,
        "logs" => Name::Logs,
        "context" => Name::Context,
        "kind" => Name::Kind,
        "state" | "lastState" | "ready" | "started" | "restartCount" | "containerID" | "imageID" => Name::StatusOnly,
        _ => Name::Other,
    };
    path.iter().map(|s| Segment { text: s, name: name(s), sym: store.sym(s) }).collect()
}

fn get<'c, 'a>(v: Val<'c, 'a>, seg: &Segment) -> Val<'c, 'a> {
    let key = |d: Doc<'a>| seg.sym.and_then(|k| d.get_sym(k));
    match v {
        Val::Json(d) => key(d).map_or(Val::Missing, Val::Json),
        Val::Case(c) if c.kind == CaseKind::Workload => match seg.name {
            Name::Workload => Val::Workload(c),
            _ => Val::Missing,
        },
        Val::Workload(c) => match seg.name {
            Name::Events => Val::Refs(c.events()),
            _ => key(c.object).map_or(Val::Missing, Val::Json),
        },
        Val::Case(c) => match seg.name {
            Name::Pod => Val::Json(c.object),
            Name::Node => c.node().map_or(Val::Missing, Val::Json),
            Name::Containers => Val::Containers(c),
            Name::Events => Val::Refs(c.events()),
            Name::Owners => Val::Refs(c.owners()),
            Name::ControlPlane => Val::Refs(c.control_plane()),
            Name::NodeLogs => Val::Lines(c.node_logs()),
            _ => Val::Missing,
        },
        Val::Container(case, c) => match seg.name {
            Name::Kind => Val::Text(c.kind.name()),
            Name::Events => Val::ContainerEvents(case, c),
            Name::Logs => Val::ContainerLogs(case, c),
            Name::StatusOnly => c.status.and_then(key).map_or(Val::Missing, Val::Json),
            _ => c.spec.and_then(key).or_else(|| c.status.and_then(key)).map_or(Val::Missing, Val::Json),
        },
        Val::Line(lines, i) => match seg.name {
            Name::Context => Val::Context(lines, i),
            _ => lines.get(i as usize).copied().and_then(key).map_or(Val::Missing, Val::Json),
        },
        _ => Val::Missing,
    }
}

/// Lines of a log shown around the one a rule found: this many before and after.
pub const CONTEXT_LINES: usize = 2;

/// Line `i` of `lines` with up to [`CONTEXT_LINES`] lines before and after it, one per line.
fn context(lines: &[Doc<'_>], i: u32) -> String {
    let i = i as usize;
    let around = lines.get(i.saturating_sub(CONTEXT_LINES)..lines.len().min(i + CONTEXT_LINES + 1)).unwrap_or_default();
    around.iter().map(|l| l.str_at(&["line"]).unwrap_or_default()).collect::<Vec<_>>().join("\n")
}

fn get_path<'c, 'a>(mut v: Val<'c, 'a>, segments: &[Segment]) -> Val<'c, 'a> {
    for s in segments {
        v = get(v, s);
    }
    v
}

/// Adds the elements of `v`, a list of case `case`, to `out`.
fn elements<'a>(v: Val<'_, 'a>, case: u32, out: &mut Vec<Row<'a>>) {
    match v {
        Val::Json(d) => out.extend(d.items().map(Row::Json)),
        Val::Refs(items) => out.extend(items.iter().copied().map(Row::Json)),
        Val::Containers(c) => c.each_container(|c| out.push(Row::Container(case, c))),
        Val::ContainerEvents(c, container) => out.extend(c.container_events(&container).map(Row::Json)),
        Val::Lines(lines) => out.extend((0..lines.len() as u32).map(|i| Row::Line(lines, i))),
        Val::ContainerLogs(c, container) => {
            for lines in c.container_logs(&container) {
                out.extend((0..lines.len() as u32).map(|i| Row::Line(lines, i)));
            }
        }
        _ => {}
    }
}

/// Interns the strings of one batch; the pack's literals come first.
struct Strings<'s> {
    store: &'s Arena,
    /// Batch id + 1 of each string of the snapshot, 0 for none; reset after each batch.
    ids: &'s mut [u32],
    /// Snapshot strings given a batch id.
    used: Vec<Sym>,
    /// Batch ids of strings that are in no object: literals, container kinds,
    /// strings computed for this batch.
    others: FxHashMap<Cow<'s, str>, u32>,
    bytes: Vec<u8>,
    offsets: Vec<u32>,
}

impl<'s> Strings<'s> {
    /// Starts in `bytes` and `offsets`, buffers of an earlier batch.
    fn new(
        store: &'s Arena,
        ids: &'s mut [u32],
        literals: &'s [String],
        mut bytes: Vec<u8>,
        mut offsets: Vec<u32>,
    ) -> Self {
        bytes.clear();
        offsets.clear();
        offsets.push(0);
        let mut s = Strings { store, ids, used: Vec::new(), others: FxHashMap::default(), bytes, offsets };
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
        let Some(slot) = self.ids.get_mut(sym as usize) else { return 0 };
        if *slot == 0 {
            *slot = Self::push(&mut self.bytes, &mut self.offsets, self.store.string(sym)) + 1;
            self.used.push(sym);
        }
        *slot - 1
    }

    /// A string computed for this batch (a log line's context, a capture):
    /// the id of the same text in the snapshot or in no object (a literal, a
    /// container kind, a string computed before), so that it equals them.
    fn owned(&mut self, s: &str) -> u32 {
        if let Some(sym) = self.store.sym(s) {
            return self.sym(sym);
        }
        if let Some(id) = self.others.get(s) {
            return *id;
        }
        let id = Self::push(&mut self.bytes, &mut self.offsets, s);
        self.others.insert(Cow::Owned(s.to_string()), id);
        id
    }

    fn text(&mut self, s: &'s str) -> u32 {
        if let Some(sym) = self.store.sym(s) {
            return self.sym(sym);
        }
        let Strings { others, bytes, offsets, .. } = self;
        *others.entry(Cow::Borrowed(s)).or_insert_with(|| Self::push(bytes, offsets, s))
    }

    /// The batch's strings and offsets, leaving `ids` ready for the next batch.
    fn finish(self) -> (Vec<u8>, Vec<u32>) {
        for sym in self.used {
            self.ids[sym as usize] = 0;
        }
        (self.bytes, self.offsets)
    }
}

/// What the host computed for one input at one row.
enum Cell {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string of the snapshot.
    Sym(Sym),
    /// A string of no object (a container's kind).
    Text(&'static str),
    /// A string computed from the snapshot (a log line's context).
    Owned(String),
    /// An object or a list.
    Present,
}

fn cell(v: Val<'_, '_>, derive: &Derive) -> Cell {
    let v = match v {
        Val::Line(lines, i) => lines.get(i as usize).map_or(Val::Missing, |d| Val::Json(*d)),
        Val::Context(lines, i) => return derived(Some(&context(lines, i)), derive),
        v => v,
    };
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
            (_, Some(View::Bool(b))) => Cell::Bool(b),
            (_, Some(View::Int(i))) => Cell::Int(i),
            (_, Some(View::Float(f))) => Cell::Float(f),
            (Val::Missing, _) | (_, Some(View::Null)) => Cell::Null,
            (Val::Json(d), Some(View::Str(_))) => d.sym().map_or(Cell::Null, Cell::Sym),
            (Val::Text(s), _) => Cell::Text(s),
            _ => Cell::Present,
        },
        Derive::Length => match (v, view) {
            (_, Some(View::List(n) | View::Object(n))) => Cell::Int(n as i64),
            (Val::Refs(r), _) => Cell::Int(r.len() as i64),
            (Val::Containers(case), _) => {
                let mut n = 0;
                case.each_container(|_| n += 1);
                Cell::Int(n)
            }
            (Val::ContainerEvents(case, c), _) => Cell::Int(case.container_events(&c).count() as i64),
            (Val::Lines(lines), _) => Cell::Int(lines.len() as i64),
            (Val::ContainerLogs(case, c), _) => Cell::Int(case.container_logs(&c).iter().map(|l| l.len() as i64).sum()),
            _ => derived(text, derive),
        },
        Derive::Quantity => match view {
            Some(View::Int(i)) => Cell::Int(i.saturating_mul(1000)),
            Some(View::Float(f)) => Cell::Int((f * 1000.0) as i64),
            _ => derived(text, derive),
        },
        _ => derived(text, derive),
    }
}

/// What the host computes from a string (or from no string).
fn derived(text: Option<&str>, derive: &Derive) -> Cell {
    let int = |i: Option<i64>| i.map_or(Cell::Null, Cell::Int);
    let truth = |b: Option<bool>| b.map_or(Cell::Null, Cell::Bool);
    match derive {
        Derive::Value => text.map_or(Cell::Null, |s| Cell::Owned(s.to_string())),
        Derive::Length => int(text.map(|s| s.len() as i64)),
        Derive::Quantity => int(text.and_then(parse_quantity)),
        Derive::Version => int(text.and_then(parse_version)),
        Derive::Timestamp => int(text.and_then(parse_time)),
        Derive::Matches(re) => truth(text.map(|s| re.is_match(s))),
        Derive::Capture(re) => match text.and_then(|s| re.captures(s)).and_then(|c| c.get(1).or_else(|| c.get(0))) {
            Some(m) => Cell::Owned(m.as_str().to_string()),
            None => Cell::Null,
        },
        Derive::Contains(p) => truth(text.map(|s| s.contains(p.as_str()))),
        Derive::StartsWith(p) => truth(text.map(|s| s.starts_with(p.as_str()))),
        Derive::EndsWith(p) => truth(text.map(|s| s.ends_with(p.as_str()))),
    }
}

impl Cell {
    /// The column cell: a tag and a value.
    fn encode(self, strings: &mut Strings<'_>) -> (u8, i64) {
        match self {
            Cell::Null => (tag::NULL as u8, 0),
            Cell::Bool(b) => (tag::BOOL as u8, i64::from(b)),
            Cell::Int(i) => (tag::INT as u8, i),
            Cell::Float(f) => (tag::FLOAT as u8, f.to_bits() as i64),
            Cell::Sym(sym) => (tag::STRING as u8, i64::from(strings.sym(sym))),
            Cell::Text(s) => (tag::STRING as u8, i64::from(strings.text(s))),
            Cell::Owned(s) => (tag::STRING as u8, i64::from(strings.owned(&s))),
            Cell::Present => (OBJECT_TAG, 0),
        }
    }

    /// The value shown in a finding: an object or list shows as null, as in
    /// the findings of compiled packs.
    fn show(self, store: &Arena) -> Value {
        match self {
            Cell::Null | Cell::Present => Value::Null,
            Cell::Bool(b) => Value::Boolean(b),
            Cell::Int(i) => Value::Integer(i),
            Cell::Float(f) => Value::Float(f),
            Cell::Sym(sym) => Value::Text(store.string(sym).to_string()),
            Cell::Text(s) => Value::Text(s.to_string()),
            Cell::Owned(s) => Value::Text(s),
        }
    }
}

/// Appends a cell, as [`Cell::encode`] gives it, to a column.
fn push_cell(column: &mut Column, (tag, value): (u8, i64)) {
    column.tags.push(tag);
    column.values.push(value);
}

/// The paths of the inputs over one kind of row, sharing their prefixes.
#[derive(Default)]
struct Trie<'p> {
    /// Inputs whose path ends here.
    inputs: Vec<usize>,
    /// Inputs whose path ends here or below.
    all: Vec<usize>,
    children: Vec<(Segment<'p>, Trie<'p>)>,
}

impl<'p> Trie<'p> {
    fn insert(&mut self, path: &[Segment<'p>], input: usize) {
        self.all.push(input);
        let Some((first, rest)) = path.split_first() else {
            self.inputs.push(input);
            return;
        };
        let at = match self.children.iter().position(|(s, _)| s.text == first.text) {
            Some(at) => at,
            None => {
                self.children.push((*first, Trie::default()));
                self.children.len() - 1
            }
        };
        self.children[at].1.insert(rest, input);
    }

    /// Appends the cell of `row` to the column of every input below.
    fn fill(&self, row: Val<'_, '_>, inputs: &[Input], columns: &mut [Column], strings: &mut Strings<'_>) {
        match row {
            Val::Json(d) => return self.fill_json(Some(d), inputs, columns, strings),
            Val::Missing => return self.fill_json(None, inputs, columns, strings),
            _ => {}
        }
        for i in &self.inputs {
            push_cell(&mut columns[*i], cell(row, &inputs[*i].derive).encode(strings));
        }
        for (segment, below) in &self.children {
            below.fill(get(row, segment), inputs, columns, strings);
        }
    }

    /// [`Trie::fill`] below an object of the snapshot, or below nothing.
    fn fill_json(&self, doc: Option<Doc<'_>>, inputs: &[Input], columns: &mut [Column], strings: &mut Strings<'_>) {
        let Some(doc) = doc else {
            for i in &self.all {
                push_cell(&mut columns[*i], (tag::NULL as u8, 0));
            }
            return;
        };
        for i in &self.inputs {
            push_cell(&mut columns[*i], cell(Val::Json(doc), &inputs[*i].derive).encode(strings));
        }
        for (segment, below) in &self.children {
            below.fill_json(segment.sym.and_then(|k| doc.get_sym(k)), inputs, columns, strings);
        }
    }
}

/// A row of a collection: an object of the snapshot, or a container of the
/// batch's case at that index.
#[derive(Clone, Copy)]
enum Row<'a> {
    Json(Doc<'a>),
    Container(u32, Container<'a>),
    /// Line `i` of a log.
    Line(&'a [Doc<'a>], u32),
}

impl<'a> Row<'a> {
    fn val<'c>(self, cases: &'c [Case<'a>]) -> Val<'c, 'a> {
        match self {
            Row::Json(d) => Val::Json(d),
            Row::Container(case, c) => cases.get(case as usize).map_or(Val::Missing, |case| Val::Container(case, c)),
            Row::Line(lines, i) => Val::Line(lines, i),
        }
    }
}

/// Tag of an object or list: present, but equal to nothing.
pub const OBJECT_TAG: u8 = 5;

/// Projects one pack's inputs from one snapshot, batch after batch, into
/// buffers it keeps from one batch to the next.
pub struct Projector<'p> {
    store: &'p Arena,
    collections: Vec<(Option<usize>, Vec<Segment<'p>>)>,
    inputs: &'p [Input],
    /// The path of each input, for the values read only for findings.
    paths: Vec<Vec<Segment<'p>>>,
    /// Per source of rows (the cases or a collection), the paths of its
    /// inputs that have a column.
    tries: Vec<(Option<usize>, Trie<'p>)>,
    literals: &'p [String],
    /// See [`Strings::ids`].
    string_ids: Vec<u32>,
    batch: Batch,
    /// Per collection, its rows in the batch.
    rows: Vec<Vec<Row<'p>>>,
}

/// A batch, with the rows it was read from.
pub struct Projection<'x, 'c, 'a> {
    projector: &'x Projector<'a>,
    cases: &'c [Case<'a>],
}

impl<'p> Projector<'p> {
    pub fn new(
        store: &'p Arena,
        collections: &'p [CollectionPath],
        inputs: &'p [Input],
        literals: &'p [String],
    ) -> Self {
        let collections: Vec<_> = collections.iter().map(|c| (c.parent, segments(store, &c.segments))).collect();
        let paths: Vec<Vec<Segment>> = inputs.iter().map(|i| segments(store, &i.segments)).collect();
        let mut tries: Vec<(Option<usize>, Trie)> = Vec::new();
        for (i, input) in inputs.iter().enumerate().filter(|(_, input)| !input.shown_only) {
            let at = match tries.iter().position(|(source, _)| *source == input.collection) {
                Some(at) => at,
                None => {
                    tries.push((input.collection, Trie::default()));
                    tries.len() - 1
                }
            };
            tries[at].1.insert(&paths[i], i);
        }
        let batch = Batch {
            cases: 0,
            now: 0,
            collections: vec![Vec::new(); collections.len()],
            columns: inputs.iter().map(|_| Column { tags: Vec::new(), values: Vec::new() }).collect(),
            strings: Vec::new(),
            string_offsets: Vec::new(),
        };
        let rows = vec![Vec::new(); collections.len()];
        Projector {
            store,
            collections,
            inputs,
            paths,
            tries,
            literals,
            string_ids: vec![0; store.strings()],
            batch,
            rows,
        }
    }

    /// Builds the batch for `cases`. Each case is read in one go (its rows
    /// of every collection, then its cells of every column), so its objects
    /// are still in the CPU's caches when the columns read them.
    pub fn project<'x, 'c>(&'x mut self, cases: &'c [Case<'p>], now: i64) -> Projection<'x, 'c, 'p> {
        let Projector { store, collections, inputs, tries, literals, string_ids, batch, rows, .. } = self;
        let mut strings = Strings::new(
            store,
            string_ids,
            literals,
            std::mem::take(&mut batch.strings),
            std::mem::take(&mut batch.string_offsets),
        );
        // a first batch starts its buffers at one row per case, not at nothing
        for (offsets, rows) in batch.collections.iter_mut().zip(rows.iter_mut()) {
            offsets.clear();
            rows.clear();
            rows.reserve(cases.len());
        }
        for (column, input) in batch.columns.iter_mut().zip(inputs.iter()) {
            column.tags.clear();
            column.values.clear();
            // a shown-only input's column stays empty
            if !input.shown_only {
                column.tags.reserve(cases.len());
                column.values.reserve(cases.len());
            }
        }
        // where the rows of the case being read start, per collection
        let mut starts = vec![0; collections.len()];
        for (i, case) in cases.iter().enumerate() {
            // the next pod's words load from memory while this one is read
            if let Some(next) = cases.get(i + 1) {
                case.object.prefetch_to(next.object);
            }
            let case_val = Val::Case(case);
            for (c, (parent, path)) in collections.iter().enumerate() {
                starts[c] = rows[c].len();
                let (before, after) = rows.split_at_mut(c);
                let mine = &mut after[0];
                let mut add = |parent: Val<'_, 'p>| {
                    batch.collections[c].push(mine.len() as u32);
                    elements(get_path(parent, path), i as u32, mine);
                };
                match parent {
                    None => add(case_val),
                    Some(p) => before[*p][starts[*p]..].iter().for_each(|row| add(row.val(cases))),
                }
            }
            for (source, trie) in tries.iter() {
                match source {
                    None => trie.fill(case_val, inputs, &mut batch.columns, &mut strings),
                    Some(c) => {
                        for row in &rows[*c][starts[*c]..] {
                            trie.fill(row.val(cases), inputs, &mut batch.columns, &mut strings);
                        }
                    }
                }
            }
        }
        for (offsets, rows) in batch.collections.iter_mut().zip(rows.iter()) {
            offsets.push(rows.len() as u32);
        }
        (batch.strings, batch.string_offsets) = strings.finish();
        batch.cases = cases.len() as u32;
        batch.now = now;
        Projection { projector: self, cases }
    }
}

impl Projection<'_, '_, '_> {
    pub fn batch(&self) -> &Batch {
        &self.projector.batch
    }

    /// The value of `input` at `row`, for a finding.
    pub fn shown(&self, input: u32, row: u32) -> Result<Value, String> {
        let projector = self.projector;
        let (Some(path), Some(declared)) = (projector.paths.get(input as usize), projector.inputs.get(input as usize))
        else {
            return Err(format!("referred to input {input}; it declares {}", projector.inputs.len()));
        };
        let at = match declared.collection {
            None => self.cases.get(row as usize).map(Val::Case),
            Some(c) => projector.rows.get(c).and_then(|rows| rows.get(row as usize)).map(|r| r.val(self.cases)),
        };
        let Some(at) = at else {
            return Err(format!("referred to row {row} of input {input}, which is not in the batch"));
        };
        Ok(cell(get_path(at, path), &declared.derive).show(projector.store))
    }
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
    Workload,
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
            "workload" => resolve(Place::Workload, rest, out),
            // node logs are lines of log files, not objects
            _ => {}
        },
        Place::Workload => match first.as_str() {
            "events" => resolve(Place::Object(Vec::new()), rest, out),
            _ => resolve(Place::Object(Vec::new()), segments, out),
        },
        Place::Container => match first.as_str() {
            // container logs are lines of log files, not objects
            "kind" | "logs" => {}
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
    use crate::evaluation::case::Index;
    use crate::input::snapshot::Snapshot;

    #[test]
    fn shown_inputs_have_no_column_and_are_read_for_findings() {
        let mut snapshot = Snapshot::new(0);
        let pod = serde_json::json!({"kind": "Pod", "metadata": {"name": "web", "namespace": "ns", "uid": "u"},
            "spec": {"containers": [{"name": "app"}, {"name": "side"}]},
            "status": {"containerStatuses": [{"name": "side", "restartCount": 0}, {"name": "app", "restartCount": 4}]}});
        snapshot.add_value("pod.json", &pod).unwrap();
        let index = Index::new(&snapshot);
        let cases = index.cases(&snapshot.pods, CaseKind::Pod);
        let path = |p: &str| p.split('.').map(String::from).collect();
        let input = |collection, p: &str, shown_only| Input {
            collection,
            segments: path(p),
            derive: Derive::Value,
            shown_only,
        };
        let collections = [CollectionPath { parent: None, segments: path("containers") }];
        let inputs = [
            input(Some(0), "restartCount", false),
            input(Some(0), "name", true),
            input(None, "pod.metadata.name", true),
        ];
        let mut projector = Projector::new(&snapshot.store, &collections, &inputs, &[]);
        let projection = projector.project(&cases, 0);
        let columns: Vec<&[i64]> = projection.batch().columns.iter().map(|c| c.values.as_slice()).collect();
        assert_eq!(columns, [&[4, 0][..], &[], &[]]);
        let shown = |input, row| projection.shown(input, row);
        assert!(matches!(shown(1, 1), Ok(Value::Text(s)) if s == "side"));
        assert!(matches!(shown(2, 0), Ok(Value::Text(s)) if s == "web"));
        assert_eq!(shown(1, 2).unwrap_err(), "referred to row 2 of input 1, which is not in the batch");
        assert_eq!(shown(3, 0).unwrap_err(), "referred to input 3; it declares 3");
    }

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
