//! The shape of the objects rules read, so that the checker can reject a
//! path that can never exist and suggest the field that was meant.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::diag::{Diagnostic, Span, did_you_mean};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    Bool,
    Int,
    Str,
    Any,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    Scalar(FieldType),
    /// A map with arbitrary keys (labels, annotations, limits).
    Map,
    Object(String),
    List(Box<Shape>),
}

type Types = HashMap<String, Vec<(String, Shape)>>;

fn types() -> &'static Types {
    static TYPES: OnceLock<Types> = OnceLock::new();
    TYPES.get_or_init(|| {
        let mut types = Types::new();
        for line in include_str!("schema.k8s").lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, body)) = line.split_once('{') else {
                continue;
            };
            let fields = body
                .trim_end_matches('}')
                .split_whitespace()
                .filter_map(|f| f.split_once(':'))
                .map(|(n, t)| (n.to_string(), shape(t)))
                .collect();
            types.insert(name.trim().to_string(), fields);
        }
        types
    })
}

fn shape(t: &str) -> Shape {
    if let Some(inner) = t.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        return Shape::List(Box::new(shape(inner)));
    }
    match t {
        "str" => Shape::Scalar(FieldType::Str),
        "int" => Shape::Scalar(FieldType::Int),
        "bool" => Shape::Scalar(FieldType::Bool),
        "any" => Shape::Scalar(FieldType::Any),
        "map" => Shape::Map,
        other => Shape::Object(other.to_string()),
    }
}

/// A path that does not fit the schema; the caller adds the span.
#[derive(Debug)]
pub struct SchemaError {
    message: String,
    help: Option<String>,
}

impl SchemaError {
    pub fn at(self, span: Span) -> Diagnostic {
        let d = Diagnostic::new(span, self.message);
        match self.help {
            Some(h) => d.with_help(h),
            None => d,
        }
    }
}

/// The shape reached by walking `base` (a collection path such as
/// `containers[].events`, or the case) and then `segments`.
fn walk(segments: &[String], base: Option<&str>) -> Result<Shape, SchemaError> {
    let mut cur = Shape::Object("Case".to_string());
    if let Some(base) = base {
        for part in base.split("[].") {
            for seg in crate::pack::split_path(part) {
                cur = step(&cur, &seg)?;
            }
            cur = match cur {
                Shape::List(inner) => *inner,
                other => other,
            };
        }
    }
    for seg in segments {
        cur = step(&cur, seg)?;
    }
    Ok(cur)
}

fn step(cur: &Shape, seg: &str) -> Result<Shape, SchemaError> {
    match cur {
        Shape::Scalar(FieldType::Any) => Ok(Shape::Scalar(FieldType::Any)),
        Shape::Map => Ok(Shape::Scalar(FieldType::Any)),
        Shape::Object(name) => {
            let fields = types().get(name).map(Vec::as_slice).unwrap_or_default();
            match fields.iter().find(|(f, _)| f == seg) {
                Some((_, s)) => Ok(s.clone()),
                None => {
                    let help = Some(match did_you_mean(seg, fields.iter().map(|(f, _)| f.as_str())) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("the fields of {} are listed in rules-dsl/src/schema.k8s", article(name)),
                    });
                    Err(SchemaError { message: format!("`{seg}` is not a field of {}", article(name)), help })
                }
            }
        }
        Shape::List(_) => Err(SchemaError {
            message: format!("`{seg}` is read from a list"),
            help: Some("iterate the list with a quantifier, e.g. `any(x in list: x.field == ...)`".to_string()),
        }),
        Shape::Scalar(_) => Err(SchemaError {
            message: format!("`{seg}` is read from a value that has no fields"),
            help: Some("a string, number or boolean has no fields: end the path before it".to_string()),
        }),
    }
}

fn article(type_name: &str) -> String {
    let readable = match type_name {
        "Case" => {
            "a rule's scope (pod, node, containers, events, owners, controlPlane, nodeLogs, workload, now)".to_string()
        }
        other => format!("`{other}`"),
    };
    if type_name == "Case" { readable } else { format!("type {readable}") }
}

/// The type of the value at a path; lists and objects read as `Any`.
pub fn type_of(segments: &[String], base: Option<String>) -> Result<FieldType, SchemaError> {
    Ok(match walk(segments, base.as_deref())? {
        Shape::Scalar(t) => t,
        _ => FieldType::Any,
    })
}

/// Checks that a path names a list a quantifier can iterate.
pub fn check_list(segments: &[String], base: Option<&str>, span: Span) -> Option<Diagnostic> {
    match walk(segments, base) {
        Ok(Shape::List(_)) | Ok(Shape::Scalar(FieldType::Any)) => None,
        Ok(_) => Some(
            Diagnostic::new(span, "this is not a list")
                .with_help("a quantifier iterates a list such as `events` or `pod.status.conditions`"),
        ),
        Err(e) => Some(e.at(span)),
    }
}

/// A field of the schema, as an editor shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    /// The type that declares it (`ContainerState`; `Case` for `pod`, `containers`, ...).
    pub owner: String,
    /// Its type as `schema.k8s` writes it: `str`, `int`, `bool`, `any`, `map`, `Event`, `[Event]`.
    pub ty: String,
    /// Its documentation (`schema.docs`).
    pub doc: &'static str,
}

fn type_text(s: &Shape) -> String {
    match s {
        Shape::Scalar(FieldType::Str) => "str".into(),
        Shape::Scalar(FieldType::Int) => "int".into(),
        Shape::Scalar(FieldType::Bool) => "bool".into(),
        Shape::Scalar(FieldType::Any) => "any".into(),
        Shape::Map => "map".into(),
        Shape::Object(name) => name.clone(),
        Shape::List(inner) => format!("[{}]", type_text(inner)),
    }
}

fn doc(owner: &str, field: &str) -> &'static str {
    include_str!("schema.docs")
        .lines()
        .find_map(|l| l.strip_prefix(owner)?.strip_prefix('.')?.strip_prefix(field)?.strip_prefix('\t'))
        .unwrap_or_default()
}

/// The fields of the object at a path (`base` and `segments` as for
/// [`type_of`]); none when the path is not an object or does not fit.
pub fn fields_at(segments: &[String], base: Option<&str>) -> Vec<Field> {
    let Ok(Shape::Object(owner)) = walk(segments, base) else {
        return Vec::new();
    };
    let fields = types().get(&owner).map(Vec::as_slice).unwrap_or_default();
    fields
        .iter()
        .map(|(name, shape)| Field {
            name: name.clone(),
            owner: owner.clone(),
            ty: type_text(shape),
            doc: doc(&owner, name),
        })
        .collect()
}

/// The field a path ends at, when an object declares it.
pub fn field_at(segments: &[String], base: Option<&str>) -> Option<Field> {
    let (last, parent) = segments.split_last()?;
    fields_at(parent, base).into_iter().find(|f| f.name == *last)
}

/// The type at a path, as `schema.k8s` writes it; for a collection `base`
/// and no segments, its element's (`containers` is `Container`).
pub fn type_at(segments: &[String], base: Option<&str>) -> Option<String> {
    walk(segments, base).ok().map(|s| type_text(&s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<String> {
        crate::pack::split_path(p)
    }

    #[test]
    fn known_paths_have_types() {
        assert_eq!(
            type_of(&segs("lastState.terminated.exitCode"), Some("containers".into())).ok(),
            Some(FieldType::Int)
        );
        assert_eq!(type_of(&segs("pod.metadata.labels[\"a.b/c\"]"), None).ok(), Some(FieldType::Any));
        assert_eq!(type_of(&segs("message"), Some("containers[].events".into())).ok(), Some(FieldType::Str));
    }

    #[test]
    fn unknown_field_suggests() {
        let e = type_of(&segs("lastStat.terminated"), Some("containers".into())).err().unwrap();
        assert_eq!(e.message, "`lastStat` is not a field of type `Container`");
        assert_eq!(e.help.as_deref(), Some("did you mean `lastState`?"));
    }

    #[test]
    fn every_field_is_documented_and_every_documented_field_exists() {
        for (owner, fields) in types() {
            for (name, _) in fields {
                assert!(!doc(owner, name).is_empty(), "{owner}.{name} has no line in schema.docs");
            }
        }
        for line in include_str!("schema.docs").lines().filter(|l| !l.starts_with('#')) {
            let (key, text) = line.split_once('\t').unwrap_or_default();
            let (owner, name) = key.split_once('.').unwrap_or_default();
            assert!(types().get(owner).is_some_and(|f| f.iter().any(|(n, _)| n == name)), "{key} is not in schema.k8s");
            assert!(!text.trim().is_empty(), "{key} has an empty text");
        }
    }

    #[test]
    fn fields_and_types_at_a_path() {
        let terminated = field_at(&segs("lastState.terminated"), Some("containers")).unwrap();
        assert_eq!((terminated.owner.as_str(), terminated.ty.as_str()), ("ContainerState", "StateTerminated"));
        let exit = field_at(&segs("lastState.terminated.exitCode"), Some("containers")).unwrap();
        assert_eq!(exit.doc, "Exit status from the last termination of the container");
        assert_eq!(field_at(&segs("events"), None).unwrap().ty, "[Event]");
        let names: Vec<String> = fields_at(&[], Some("containers[].events")).into_iter().map(|f| f.name).collect();
        assert!(names.contains(&"reason".to_string()) && names.contains(&"involvedObject".to_string()), "{names:?}");
        assert_eq!(type_at(&[], Some("containers")).as_deref(), Some("Container"));
        assert_eq!(type_at(&segs("pod.metadata.labels"), None).as_deref(), Some("map"));
        assert!(fields_at(&segs("pod.metadata.labels"), None).is_empty());
        assert!(fields_at(&segs("pod.nope"), None).is_empty());
    }
}
