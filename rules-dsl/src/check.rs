//! Syntax tree to IR: resolves names and paths, checks types and texts, and
//! collects what the pack declares (collections, inputs, literals, rules).

use std::collections::HashMap;

use crate::ast::{self, BinOp, ExprKind, Quant, TextKey};
use crate::diag::{Diagnostic, Span, did_you_mean};
use crate::ir::{self, Arg, Arith, Cmp, Let, Row};
use crate::pack::{
    Collection, Derive, Input, MAX_REGEXES, PluginInfo, RuleInfo, Scope, Severity, Text, Translation, encode_version,
    join_path, tag,
};
use crate::schema;

/// The lists of a case that rules can iterate from the top level.
pub const CASE_LISTS: [&str; 5] = ["containers", "events", "owners", "controlPlane", "nodeLogs"];
/// The objects of a case.
pub const CASE_OBJECTS: [&str; 2] = ["pod", "node"];
/// The functions of the language.
pub const FUNCTIONS: [&str; 9] = ["has", "age", "time", "version", "quantity", "len", "coalesce", "join", "capture"];

const COMPARE_HELP: &str = "compare a value with one of its kind: a number with `3`, a string with `\"3\"`, \
     a duration with `5m`, a quantity with `256Mi`, a version with `1.28`";

/// A diagnostic and the index of the file it is about.
pub type FileDiagnostic = (usize, Diagnostic);

/// Checks parsed files together as one pack.
pub fn check(name: &str, version: &str, files: &[ast::File]) -> (ir::Pack, Vec<FileDiagnostic>) {
    let mut c = Checker::new(name, version);
    let mut seen: HashMap<String, ()> = HashMap::new();
    for (i, file) in files.iter().enumerate() {
        c.file = i;
        let tables = c.tables(file);
        for rule in &file.rules {
            if seen.insert(rule.id.name.clone(), ()).is_some() {
                c.error(
                    Diagnostic::new(rule.id.span, format!("rule `{}` is defined twice", rule.id.name))
                        .with_help("a rule id is unique in its pack: rename one of them"),
                );
                continue;
            }
            c.rule(rule, &tables);
        }
    }
    let mut pack = ir::Pack { info: c.info, rules: c.rules, row_slots: c.row_slots, value_slots: c.value_slots };
    pack.mark_shown_only();
    (pack, c.diags)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Bool,
    Int,
    Str,
    Duration,
    Quantity,
    Version,
    Time,
    Any,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Bool => "a boolean",
            Ty::Int => "a number",
            Ty::Str => "a string",
            Ty::Duration => "a duration",
            Ty::Quantity => "a quantity",
            Ty::Version => "a version",
            Ty::Time => "a timestamp",
            Ty::Any => "a value",
        }
    }

    fn numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Duration | Ty::Quantity | Ty::Time | Ty::Any)
    }

    fn comparable(self, other: Ty) -> bool {
        self == other
            || self == Ty::Any
            || other == Ty::Any
            || (self.numeric()
                && other.numeric()
                && [self, other].contains(&Ty::Int)
                && ![self, other].contains(&Ty::Quantity))
    }
}

#[derive(Debug, Clone)]
enum Base {
    Case,
    Row(u32, u32),
}

#[derive(Debug, Clone)]
struct PathRef {
    base: Base,
    segments: Vec<String>,
}

#[derive(Debug, Clone)]
enum Binding {
    Row(u32, u32),
    Alias(PathRef),
    Value(u32, Ty),
    /// A name whose definition had an error, reported already.
    Broken,
}

/// What an expression lowered to, before it is used as a value.
enum Lowered {
    Value(ir::Expr, Ty),
    Path(PathRef),
    Row(u32, u32),
    /// A number literal and its unit: its value depends on the other side.
    Number(ast::Decimal, Option<String>),
    /// A text the rule builds (`join`), which it can only show.
    Text(Arg),
    Null,
    List(Vec<(ast::Expr, Lowered)>),
    Range(i64, i64),
}

struct Checker {
    info: PluginInfo,
    collections: HashMap<Collection, u32>,
    inputs: HashMap<Input, u32>,
    literals: HashMap<String, u32>,
    rules: Vec<ir::Rule>,
    row_slots: u32,
    value_slots: u32,
    diags: Vec<FileDiagnostic>,
    file: usize,
}

type Tables = HashMap<String, Vec<(i64, i64)>>;

struct Env<'t> {
    vars: Vec<(String, Binding)>,
    tables: &'t Tables,
    /// A workload rule (`for w in workloads`): the pod's names are not in it.
    workload: bool,
}

impl Env<'_> {
    fn lookup(&self, name: &str) -> Option<&Binding> {
        self.vars.iter().rev().find(|(n, _)| n == name).map(|(_, b)| b)
    }
}

/// Duration units in seconds, as a fraction (`ms` is 1/1000).
const DURATION_UNITS: [(&str, i128, i128); 5] =
    [("ms", 1, 1000), ("s", 1, 1), ("m", 60, 1), ("h", 3600, 1), ("d", 86400, 1)];
/// Quantity units in thousandths of a unit, as the host reads quantities.
const QUANTITY_UNITS: [(&str, i128, i128); 13] = [
    ("m", 1, 1),
    ("k", 1_000_000, 1),
    ("M", 1_000_000_000, 1),
    ("G", 1_000_000_000_000, 1),
    ("T", 1_000_000_000_000_000, 1),
    ("P", 1_000_000_000_000_000_000, 1),
    ("E", 1_000_000_000_000_000_000_000, 1),
    ("Ki", 1_024_000, 1),
    ("Mi", 1_048_576_000, 1),
    ("Gi", 1_073_741_824_000, 1),
    ("Ti", 1_099_511_627_776_000, 1),
    ("Pi", 1_125_899_906_842_624_000, 1),
    ("Ei", 1_152_921_504_606_846_976_000, 1),
];

impl Checker {
    fn new(name: &str, version: &str) -> Self {
        Checker {
            info: PluginInfo { name: name.to_string(), version: version.to_string(), ..PluginInfo::default() },
            collections: HashMap::new(),
            inputs: HashMap::new(),
            literals: HashMap::new(),
            rules: Vec::new(),
            row_slots: 0,
            value_slots: 0,
            diags: Vec::new(),
            file: 0,
        }
    }

    fn error(&mut self, d: Diagnostic) {
        self.diags.push((self.file, d));
    }

    fn literal(&mut self, s: &str) -> i64 {
        let next = self.info.literals.len() as u32;
        let id = *self.literals.entry(s.to_string()).or_insert(next);
        if id == next {
            self.info.literals.push(s.to_string());
        }
        i64::from(id)
    }

    fn collection(&mut self, parent: Option<u32>, path: String) -> u32 {
        let key = Collection { parent, path };
        let next = self.info.collections.len() as u32;
        let id = *self.collections.entry(key.clone()).or_insert(next);
        if id == next {
            self.info.collections.push(key);
        }
        id
    }

    fn input(&mut self, p: &PathRef, derive: Derive) -> ir::Expr {
        let row = match p.base {
            Base::Case => Row::Case,
            Base::Row(slot, _) => Row::Var(slot),
        };
        ir::Expr::Column(self.input_id(p, derive), row)
    }

    /// [`Checker::input`] with a regular expression (written at `span`):
    /// an error when it is one more than a pack may have.
    fn regex_input(&mut self, p: &PathRef, derive: Derive, span: Span) -> ir::Expr {
        let before = self.info.inputs.len();
        let column = self.input(p, derive);
        let regexes =
            || self.info.inputs.iter().filter(|i| matches!(i.derive, Derive::Matches(_) | Derive::Capture(_)));
        if self.info.inputs.len() > before && regexes().count() == MAX_REGEXES + 1 {
            self.error(
                Diagnostic::new(span, format!("the pack has more than {MAX_REGEXES} regular expressions"))
                    .with_help("join patterns of one field with `|`, or test fixed text with `contains`, `startsWith` or `endsWith`"),
            );
        }
        column
    }

    fn input_id(&mut self, p: &PathRef, derive: Derive) -> u32 {
        let collection = match p.base {
            Base::Case => None,
            Base::Row(_, coll) => Some(coll),
        };
        let key = Input { collection, path: join_path(&p.segments), derive, shown_only: false };
        let next = self.info.inputs.len() as u32;
        let id = *self.inputs.entry(key.clone()).or_insert(next);
        if id == next {
            self.info.inputs.push(key);
        }
        id
    }

    fn tables(&mut self, file: &ast::File) -> Tables {
        let mut tables = Tables::new();
        for t in &file.tables {
            let entries = t.entries.iter().map(|(k, v)| (*k, self.literal(&v.value))).collect();
            if tables.insert(t.name.name.clone(), entries).is_some() {
                self.error(
                    Diagnostic::new(t.name.span, format!("table `{}` is defined twice", t.name.name))
                        .with_help("rename one of them"),
                );
            }
        }
        tables
    }

    fn rule(&mut self, rule: &ast::Rule, tables: &Tables) {
        for (clause, span) in &rule.repeated {
            self.error(Diagnostic::new(*span, format!("`{clause}` is given twice")).with_help("keep one"));
        }
        let mut env = Env { vars: Vec::new(), tables, workload: false };
        // names of clauses that did not parse: uses of them are not errors
        env.vars.extend(rule.broken.iter().map(|name| (name.clone(), Binding::Broken)));
        let missing = |clause: &str| !rule.broken.iter().any(|b| b == clause);
        let mut scope = Scope::Pod;
        let mut each = None;
        if let Some((var, list)) = &rule.each
            && matches!(&list.kind, ExprKind::Ident(name) if name == "workloads")
        {
            // the case is the workload: `w` names it
            let workload = PathRef { base: Base::Case, segments: vec!["workload".to_string()] };
            env.vars.push((var.name.clone(), Binding::Alias(workload)));
            env.workload = true;
            scope = Scope::Workload;
        } else if let Some((var, list)) = &rule.each {
            match self.lower(list, &mut env) {
                Some(Lowered::Path(PathRef { base: Base::Case, segments })) if segments == ["containers"] => {
                    let coll = self.collection(None, "containers".to_string());
                    let slot = self.new_row_slot();
                    env.vars.push((var.name.clone(), Binding::Row(slot, coll)));
                    each = Some((coll, slot));
                    scope = Scope::Container;
                }
                found => {
                    if found.is_some() {
                        self.error(
                            Diagnostic::new(list.span, "`for` can only iterate `containers` or `workloads`")
                                .with_help("use a quantifier such as `any(e in events: ...)` for other lists"),
                        );
                    }
                    env.vars.push((var.name.clone(), Binding::Broken));
                }
            }
        }
        let mut lets = Vec::new();
        for (name, e) in &rule.lets {
            if let ExprKind::Quantifier(Quant::First, var, list, cond) = &e.kind {
                let binding = match self.quantified(var, list, cond, &mut env) {
                    Some((collection, parent, slot, cond)) => {
                        lets.push(Let::FirstRow { slot, collection, parent, cond });
                        Binding::Row(slot, collection)
                    }
                    None => Binding::Broken,
                };
                env.vars.push((name.name.clone(), binding));
                continue;
            }
            let binding = match self.lower(e, &mut env) {
                // a path named here is checked here, not where the name is used
                Some(Lowered::Path(p)) => match schema::type_of(&p.segments, self.base_path(&p.base)) {
                    Ok(_) => Binding::Alias(p),
                    Err(d) => {
                        self.error(d.at(e.span));
                        Binding::Broken
                    }
                },
                Some(Lowered::Row(slot, coll)) => Binding::Row(slot, coll),
                Some(other) => match self.value(other, e.span, None) {
                    Some((v, ty)) => {
                        let slot = self.value_slots;
                        self.value_slots += 1;
                        lets.push(Let::Value(slot, v));
                        Binding::Value(slot, ty)
                    }
                    None => Binding::Broken,
                },
                None => Binding::Broken,
            };
            env.vars.push((name.name.clone(), binding));
        }
        let when = match &rule.when {
            Some(w) => self.condition(w, &mut env).unwrap_or(ir::Expr::Const(tag::BOOL, 0)),
            None => {
                if missing("when") {
                    self.error(
                        Diagnostic::new(rule.id.span, format!("rule `{}` has no `when` clause", rule.id.name))
                            .with_help("add the condition under which it fires: `when ...`"),
                    );
                }
                ir::Expr::Const(tag::BOOL, 0)
            }
        };
        let mut args: Vec<(String, Arg)> = Vec::new();
        let mut template = |c: &mut Checker, s: &ast::Str, env: &mut Env| c.template(s, env, &mut args);
        let cause = match &rule.cause {
            Some(s) => template(self, s, &mut env),
            None => {
                if missing("cause") {
                    self.error(
                        Diagnostic::new(rule.id.span, format!("rule `{}` has no `cause` clause", rule.id.name))
                            .with_help("add the cause key it reports, such as `cause \"cgroup-oom\"`"),
                    );
                }
                String::new()
            }
        };
        let mut texts: HashMap<TextKey, Vec<Text>> = HashMap::new();
        for t in &rule.texts {
            let mut text = Text::english(template(self, &t.en, &mut env));
            for (tag, s) in &t.translations {
                let translated = template(self, s, &mut env);
                if let Some(lang) = self.lang_tag(tag, &text) {
                    text.translations.push(Translation { lang, text: translated });
                }
            }
            let list = texts.entry(t.key).or_default();
            if matches!(t.key, TextKey::Title | TextKey::Detects | TextKey::Why) && !list.is_empty() {
                self.error(Diagnostic::new(t.key_span, "this text is given twice").with_help("keep one"));
            }
            list.push(text);
        }
        let one = |key: TextKey| {
            texts.get(&key).and_then(|l| l.first().cloned()).unwrap_or_else(|| Text::english(String::new()))
        };
        let (title, detects, why) = (one(TextKey::Title), one(TextKey::Detects), one(TextKey::Why));
        if !rule.texts.iter().any(|t| t.key == TextKey::Title) && missing("title") {
            self.error(
                Diagnostic::new(rule.id.span, format!("rule `{}` has no `title`", rule.id.name))
                    .with_help("add the finding's one-line message: `title \"...\"`"),
            );
        }
        let confidence = match rule.confidence {
            Some((v, span)) if !(0.0..=1.0).contains(&v) => {
                self.error(
                    Diagnostic::new(span, "confidence must be between 0.0 and 1.0")
                        .with_help("write how sure the rule is when it fires, such as `confidence 0.8`"),
                );
                1.0
            }
            Some((v, _)) => v,
            None => 1.0,
        };
        let severity = match rule.severity {
            Some((s, _)) => s,
            None => {
                if missing("severity") {
                    self.error(
                        Diagnostic::new(rule.id.span, format!("rule `{}` has no `severity` clause", rule.id.name))
                            .with_help("add `severity info`, `warning`, `error` or `critical`"),
                    );
                }
                Severity::Warning
            }
        };
        let mut many = |key: TextKey| texts.remove(&key).unwrap_or_default();
        let (arguments, arg_values): (Vec<String>, Vec<Arg>) = args.into_iter().unzip();
        self.info.rules.push(RuleInfo {
            id: rule.id.name.clone(),
            cause,
            severity,
            confidence,
            scope,
            title,
            detects,
            why,
            confirm: many(TextKey::Confirm),
            fix: many(TextKey::Fix),
            evidence: many(TextKey::Evidence),
            explains: rule.explains.iter().map(|s| s.value.clone()).collect(),
            references: rule.refs.iter().map(|s| s.value.clone()).collect(),
            arguments,
        });
        self.rules.push(ir::Rule { each, lets, when, args: arg_values });
    }

    /// Rewrites `{expr}` placeholders to `{N}`, adding each new expression to `args`.
    /// The canonical form of the language tag of a translation of `text`, or
    /// an error: not a valid BCP 47 tag, English, or a language it already has.
    fn lang_tag(&mut self, tag: &ast::Ident, text: &Text) -> Option<String> {
        let lang = match crate::pack::lang_tag(&tag.name) {
            Ok(lang) => lang,
            Err(why) => {
                let help = match did_you_mean(&tag.name, crate::parse::CLAUSES) {
                    Some(clause) => format!("a clause starts with `{clause}`"),
                    None => "a translation starts with a BCP 47 language tag such as `zh`, `ja` or `pt-BR`".into(),
                };
                self.error(
                    Diagnostic::new(tag.span, format!("`{}` is not a language tag: {why}", tag.name)).with_help(help),
                );
                return None;
            }
        };
        let message = if lang == "en" {
            "the text before the translations is the English one"
        } else if text.translations.iter().any(|t| t.lang == lang) {
            "this language is given twice"
        } else {
            return Some(lang);
        };
        self.error(Diagnostic::new(tag.span, message).with_help("keep one"));
        None
    }

    fn template(&mut self, s: &ast::Str, env: &mut Env, args: &mut Vec<(String, Arg)>) -> String {
        let text = &s.value;
        let mut out = String::new();
        let mut i = 0;
        let bytes = text.as_bytes();
        while i < bytes.len() {
            match bytes[i] {
                b'{' if bytes.get(i + 1) == Some(&b'{') => {
                    out.push_str("{{");
                    i += 2;
                }
                b'}' if bytes.get(i + 1) == Some(&b'}') => {
                    out.push_str("}}");
                    i += 2;
                }
                b'{' => {
                    let Some(len) = text[i + 1..].find('}') else {
                        let at = s.offsets[i];
                        self.error(
                            Diagnostic::new(Span::new(at, at + 1), "unclosed `{` in text")
                                .with_help("write `{{` for a literal brace"),
                        );
                        return out;
                    };
                    let src = &text[i + 1..i + 1 + len];
                    let start = s.offsets[i + 1];
                    match crate::parse::parse_expr(src, start) {
                        Ok(e) => {
                            let key = src.trim().to_string();
                            let index = match args.iter().position(|(k, _)| *k == key) {
                                Some(n) => Some(n),
                                None => {
                                    let arg = match self.lower(&e, env) {
                                        Some(Lowered::Text(arg)) => Some(arg),
                                        Some(l) => self.value(l, e.span, None).map(|(v, _)| Arg::Value(v)),
                                        None => None,
                                    };
                                    arg.map(|arg| {
                                        args.push((key, arg));
                                        args.len() - 1
                                    })
                                }
                            };
                            if let Some(n) = index {
                                out.push_str(&format!("{{{n}}}"));
                            }
                        }
                        Err(errors) => errors.into_iter().for_each(|d| self.error(d)),
                    }
                    i += len + 2;
                }
                b'}' => {
                    let at = s.offsets[i];
                    self.error(
                        Diagnostic::new(Span::new(at, at + 1), "unmatched `}` in text")
                            .with_help("write `}}` for a literal brace"),
                    );
                    i += 1;
                }
                _ => {
                    let ch_len = text[i..].chars().next().map_or(1, char::len_utf8);
                    out.push_str(&text[i..i + ch_len]);
                    i += ch_len;
                }
            }
        }
        out
    }

    fn new_row_slot(&mut self) -> u32 {
        self.row_slots += 1;
        self.row_slots - 1
    }

    fn quantified(
        &mut self,
        var: &ast::Ident,
        list: &ast::Expr,
        cond: &ast::Expr,
        env: &mut Env,
    ) -> Option<(u32, Row, u32, ir::Expr)> {
        let (collection, parent_row, slot) = self.rows(list, env)?;
        env.vars.push((var.name.clone(), Binding::Row(slot, collection)));
        let cond = self.condition(cond, env);
        env.vars.pop();
        Some((collection, parent_row, slot, cond?))
    }

    /// The rows of a list: its collection, the row it is under, and a new
    /// slot for its rows.
    fn rows(&mut self, list: &ast::Expr, env: &mut Env) -> Option<(u32, Row, u32)> {
        let p = match self.lower(list, env)? {
            Lowered::Path(p) => p,
            _ => {
                self.error(
                    Diagnostic::new(list.span, "a quantifier needs a list such as `events` or `c.events`")
                        .with_help("such as `any(e in events: ...)` or `count(s in pod.status.conditions: ...)`"),
                );
                return None;
            }
        };
        let (parent_coll, parent_row) = match p.base {
            Base::Case => (None, Row::Case),
            Base::Row(slot, coll) => (Some(coll), Row::Var(slot)),
        };
        if let Some(d) = schema::check_list(
            &p.segments,
            parent_coll.map(|c| self.info.collections[c as usize].path.as_str()),
            list.span,
        ) {
            self.error(d);
            return None;
        }
        let collection = self.collection(parent_coll, join_path(&p.segments));
        Some((collection, parent_row, self.new_row_slot()))
    }

    fn condition(&mut self, e: &ast::Expr, env: &mut Env) -> Option<ir::Expr> {
        let lowered = self.lower(e, env)?;
        let (v, ty) = self.value(lowered, e.span, None)?;
        if ty != Ty::Bool && ty != Ty::Any {
            self.error(
                Diagnostic::new(e.span, format!("expected a condition, found {}", ty.name()))
                    .with_help("compare it to make a condition, such as `x > 0` or `x == \"...\"`"),
            );
            return None;
        }
        Some(v)
    }

    /// Turns a lowered expression into a value; `hint` decides the unit family of `5m`.
    fn value(&mut self, l: Lowered, span: Span, hint: Option<Ty>) -> Option<(ir::Expr, Ty)> {
        match l {
            Lowered::Value(v, ty) => Some((v, ty)),
            Lowered::Path(p) => {
                let ty = schema::type_of(&p.segments, self.base_path(&p.base));
                if let Err(d) = ty {
                    self.error(d.at(span));
                    return None;
                }
                Some((self.input(&p, Derive::Value), Ty::from(ty.unwrap_or(schema::FieldType::Any))))
            }
            Lowered::Number(n, unit) => self.number(n, unit.as_deref(), span, hint),
            Lowered::Null => Some((ir::Expr::Const(tag::NULL, 0), Ty::Any)),
            // a list element as a whole: a string of `finalizers`, or null for a `first(...)` that found nothing
            Lowered::Row(slot, coll) => Some((
                self.input(&PathRef { base: Base::Row(slot, coll), segments: Vec::new() }, Derive::Value),
                Ty::Any,
            )),
            Lowered::Text(_) => {
                self.error(
                    Diagnostic::new(span, "`join(...)` makes a text, which a rule can only show")
                        .with_help("show it in a text: `title \"... {join(list, \", \")}\"`"),
                );
                None
            }
            Lowered::List(_) | Lowered::Range(..) => {
                self.error(
                    Diagnostic::new(span, "a list or range can only follow `in`")
                        .with_help("write `x in [\"A\", \"B\"]` or `version(v) in 1.10 .. 1.11`"),
                );
                None
            }
        }
    }

    /// The value of a number literal: `5m` is minutes next to a duration or a
    /// time and thousandths next to a quantity; a plain number is units next
    /// to a quantity (`quantity(cpu) < 1` is one CPU) and a version next to a
    /// version (`1.10`); without another side, a unit's first family (`5m` is
    /// minutes). Durations are seconds, quantities thousandths of a unit; a
    /// value with a fraction left (`0.5`, `1500ms`) is a float.
    fn number(&mut self, n: ast::Decimal, unit: Option<&str>, span: Span, hint: Option<Ty>) -> Option<(ir::Expr, Ty)> {
        let literal = format!("{n}{}", unit.unwrap_or(""));
        let (num, den, ty) = match (unit, hint) {
            (None, Some(Ty::Version)) if n.scale > 0 => {
                let tens = 10i128.pow(n.scale);
                let parts = (u32::try_from(n.mantissa / tens), u32::try_from(n.mantissa % tens));
                let (Ok(major), Ok(minor)) = parts else {
                    self.error(
                        Diagnostic::new(span, "version part out of range")
                            .with_help("a version part is at most 4294967295"),
                    );
                    return None;
                };
                return Some((ir::Expr::Const(tag::INT, encode_version(major, minor, 0)), Ty::Version));
            }
            (None, Some(Ty::Quantity)) => (1000, 1, Ty::Quantity),
            (None, _) => (1, 1, Ty::Int),
            (Some(unit), hint) => {
                let in_table = |table: &[(&'static str, i128, i128)]| {
                    table.iter().find(|(u, ..)| *u == unit).map(|&(_, num, den)| (num, den))
                };
                let (duration, quantity) = (in_table(&DURATION_UNITS), in_table(&QUANTITY_UNITS));
                let found = match hint {
                    Some(Ty::Quantity) => quantity.map(|(num, den)| (num, den, Ty::Quantity)).ok_or("quantity"),
                    Some(Ty::Duration | Ty::Time) => {
                        duration.map(|(num, den)| (num, den, Ty::Duration)).ok_or("duration")
                    }
                    None | Some(Ty::Any) => duration
                        .map(|(num, den)| (num, den, Ty::Duration))
                        .or(quantity.map(|(num, den)| (num, den, Ty::Quantity)))
                        .ok_or("quantity"),
                    Some(other) => {
                        let kind = match (duration.is_some(), quantity.is_some()) {
                            (true, true) => "a duration or a quantity",
                            (true, false) => "a duration",
                            _ => "a quantity",
                        };
                        self.error(
                            Diagnostic::new(
                                span,
                                format!("`{literal}` is {kind}, and the other side is {}", other.name()),
                            )
                            .with_help(
                                "a duration goes with `age(t)` or `time(a) - time(b)`, a quantity with \
                                     `quantity(x)`; a count takes a plain number such as `5`",
                            ),
                        );
                        return None;
                    }
                };
                match found {
                    Ok(found) => found,
                    Err(family) => {
                        let units = if family == "quantity" { "m k M G T P E Ki Mi Gi Ti Pi Ei" } else { "ms s m h d" };
                        self.error(
                            Diagnostic::new(span, format!("`{unit}` is not a {family} unit"))
                                .with_help(format!("the {family} units are {units}")),
                        );
                        return None;
                    }
                }
            }
        };
        // value = mantissa * num / (den * 10^scale), exactly when it is whole
        let scaled = n.mantissa.checked_mul(num);
        let divisor = 10i128.checked_pow(n.scale).and_then(|t| t.checked_mul(den));
        let value = match (scaled, divisor) {
            (Some(v), Some(d)) if v % d == 0 => i64::try_from(v / d).ok().map(|v| ir::Expr::Const(tag::INT, v)),
            (Some(v), Some(d)) => Some(ir::Expr::Const(tag::FLOAT, (v as f64 / d as f64).to_bits() as i64)),
            _ => None,
        };
        let Some(value) = value else {
            let held = match ty {
                Ty::Quantity => "a quantity is held in thousandths of a unit, up to about 9.2P (8Pi)",
                Ty::Duration => "a duration is held in seconds, up to about 292 billion years",
                _ => "a number is held in 64 bits, up to 9223372036854775807",
            };
            self.error(Diagnostic::new(span, format!("`{literal}` is too large")).with_help(held));
            return None;
        };
        Some((value, ty))
    }

    fn base_path(&self, base: &Base) -> Option<String> {
        match base {
            Base::Case => None,
            Base::Row(_, coll) => Some(self.collection_path(*coll)),
        }
    }

    /// The full path of a collection from the case, e.g. `containers[].events`.
    fn collection_path(&self, coll: u32) -> String {
        let c = &self.info.collections[coll as usize];
        match c.parent {
            None => c.path.clone(),
            Some(p) => format!("{}[].{}", self.collection_path(p), c.path),
        }
    }

    fn lower(&mut self, e: &ast::Expr, env: &mut Env) -> Option<Lowered> {
        let span = e.span;
        Some(match &e.kind {
            ExprKind::Null => Lowered::Null,
            ExprKind::Bool(b) => Lowered::Value(ir::Expr::Const(tag::BOOL, i64::from(*b)), Ty::Bool),
            ExprKind::Int(n) => Lowered::Number(ast::Decimal { mantissa: i128::from(*n), scale: 0 }, None),
            ExprKind::Decimal(d) => Lowered::Number(*d, None),
            ExprKind::Unit(d, u) => Lowered::Number(*d, Some(u.clone())),
            ExprKind::Version(v) => Lowered::Value(ir::Expr::Const(tag::INT, version_low(v)), Ty::Version),
            ExprKind::Str(s) => Lowered::Value(ir::Expr::Const(tag::STRING, self.literal(s)), Ty::Str),
            ExprKind::Range(a, b) => Lowered::Range(version_low(a), version_high(b)),
            ExprKind::List(items) => {
                let mut out = Vec::new();
                for item in items {
                    let l = self.lower(item, env)?;
                    out.push((item.clone(), l));
                }
                Lowered::List(out)
            }
            ExprKind::Error => return None,
            ExprKind::Ident(name) => {
                match env.lookup(name) {
                    Some(Binding::Broken) => return None,
                    Some(Binding::Row(slot, coll)) => Lowered::Row(*slot, *coll),
                    Some(Binding::Alias(p)) => Lowered::Path(p.clone()),
                    Some(Binding::Value(slot, ty)) => Lowered::Value(ir::Expr::Local(*slot), *ty),
                    None if name == "now" => Lowered::Value(ir::Expr::Now, Ty::Time),
                    None if CASE_OBJECTS.contains(&name.as_str()) || CASE_LISTS.contains(&name.as_str()) => {
                        if env.workload {
                            self.error(
                            Diagnostic::new(span, format!("a workload rule has no `{name}`: it runs once per workload"))
                                .with_help("read the workload through the `for` variable: its `status.conditions`, its `events`"),
                        );
                            return None;
                        }
                        Lowered::Path(PathRef { base: Base::Case, segments: vec![name.clone()] })
                    }
                    None => {
                        let mut known: Vec<&str> = env.vars.iter().map(|(n, _)| n.as_str()).collect();
                        if !env.workload {
                            known.extend(CASE_OBJECTS);
                            known.extend(CASE_LISTS);
                        }
                        known.push("now");
                        let mut d = Diagnostic::new(span, format!("unknown name `{name}`"));
                        d = d.with_help(if env.tables.contains_key(name) {
                            format!("`{name}` is a table: look a key up with `{name}[key]`")
                        } else if let Some(s) = did_you_mean(name, known.iter().copied()) {
                            format!("did you mean `{s}`?")
                        } else {
                            format!("the names here are {}", known.join(", "))
                        });
                        self.error(d);
                        return None;
                    }
                }
            }
            ExprKind::Field(base, field) => match self.lower(base, env)? {
                Lowered::Path(mut p) => {
                    p.segments.push(field.name.clone());
                    Lowered::Path(p)
                }
                Lowered::Row(slot, coll) => {
                    Lowered::Path(PathRef { base: Base::Row(slot, coll), segments: vec![field.name.clone()] })
                }
                _ => {
                    self.error(
                        Diagnostic::new(field.span, format!("`.{}` needs an object on its left", field.name))
                            .with_help("fields are read from `pod`, `node` and variables of lists, such as `c.name`"),
                    );
                    return None;
                }
            },
            ExprKind::Index(base, index) => {
                if let ExprKind::Ident(name) = &base.kind
                    && env.lookup(name).is_none()
                    && let Some(entries) = env.tables.get(name)
                {
                    let entries = entries.clone();
                    let key = self.lower(index, env)?;
                    let (key, ty) = self.value(key, index.span, Some(Ty::Int))?;
                    if !ty.comparable(Ty::Int) {
                        self.error(
                            Diagnostic::new(index.span, format!("table keys are numbers, found {}", ty.name()))
                                .with_help("look a table up with a number, such as `signal[code - 128]`"),
                        );
                        return None;
                    }
                    return Some(Lowered::Value(ir::Expr::Lookup(Box::new(key), entries), Ty::Str));
                }
                let ExprKind::Str(key) = &index.kind else {
                    self.error(
                        Diagnostic::new(
                            index.span,
                            "an index must be a string key such as `[\"app.kubernetes.io/name\"]`",
                        )
                        .with_help(
                            "a map is read by key (`pod.metadata.labels[\"app\"]`), a table by number (`signal[9]`)",
                        ),
                    );
                    return None;
                };
                match self.lower(base, env)? {
                    Lowered::Path(mut p) => {
                        p.segments.push(key.clone());
                        Lowered::Path(p)
                    }
                    Lowered::Row(slot, coll) => {
                        Lowered::Path(PathRef { base: Base::Row(slot, coll), segments: vec![key.clone()] })
                    }
                    _ => {
                        self.error(
                            Diagnostic::new(index.span, "`[...]` needs an object or a table on its left")
                                .with_help("such as `pod.metadata.labels[\"app\"]` or `signal[9]`"),
                        );
                        return None;
                    }
                }
            }
            ExprKind::Not(inner) => Lowered::Value(ir::Expr::Not(Box::new(self.condition(inner, env)?)), Ty::Bool),
            ExprKind::Neg(inner) => {
                let l = self.lower(inner, env)?;
                if let Lowered::Number(n, unit) = l {
                    return Some(Lowered::Number(ast::Decimal { mantissa: -n.mantissa, ..n }, unit));
                }
                let (v, ty) = self.value(l, inner.span, None)?;
                self.numeric(ty, inner.span)?;
                Lowered::Value(ir::Expr::Arith(Arith::Sub, Box::new(ir::Expr::Const(tag::INT, 0)), Box::new(v)), ty)
            }
            ExprKind::Binary(op, a, b) => return self.binary(*op, a, b, span, env),
            ExprKind::Call(name, args) => return self.call(name, args, span, env),
            ExprKind::Quantifier(kind, var, list, cond) => {
                if *kind == Quant::First {
                    self.error(
                        Diagnostic::new(span, "`first(...)` gives a list element: bind it with `let`")
                            .with_help("write `let e = first(...)`, then use `e.message`"),
                    );
                    return None;
                }
                let (collection, parent, slot, cond) = self.quantified(var, list, cond, env)?;
                let ty = if *kind == Quant::Count { Ty::Int } else { Ty::Bool };
                Lowered::Value(ir::Expr::Quantifier { kind: *kind, collection, parent, slot, cond: Box::new(cond) }, ty)
            }
        })
    }

    fn numeric(&mut self, ty: Ty, span: Span) -> Option<()> {
        if ty.numeric() {
            Some(())
        } else {
            self.error(
                Diagnostic::new(span, format!("expected a number, found {}", ty.name()))
                    .with_help("arithmetic is on numbers, durations, quantities and times"),
            );
            None
        }
    }

    fn binary(&mut self, op: BinOp, a: &ast::Expr, b: &ast::Expr, span: Span, env: &mut Env) -> Option<Lowered> {
        match op {
            BinOp::And | BinOp::Or => {
                let (x, y) = (self.condition(a, env), self.condition(b, env));
                let (x, y) = (Box::new(x?), Box::new(y?));
                let v = if op == BinOp::And { ir::Expr::And(x, y) } else { ir::Expr::Or(x, y) };
                Some(Lowered::Value(v, Ty::Bool))
            }
            BinOp::Contains | BinOp::StartsWith | BinOp::EndsWith | BinOp::Matches => {
                let ExprKind::Str(lit) = &b.kind else {
                    self.error(
                        Diagnostic::new(b.span, format!("`{}` needs a string literal on its right", op.symbol()))
                            .with_help(format!(
                                "the text is part of the rule, such as `c.image {} \"nginx\"`: the host tests each value once",
                                op.symbol()
                            )),
                    );
                    return None;
                };
                if op == BinOp::Matches && !self.valid_regex(lit, b.span) {
                    return None;
                }
                let Lowered::Path(p) = self.lower(a, env)? else {
                    self.error(
                        Diagnostic::new(a.span, format!("`{}` needs a field on its left", op.symbol()))
                            .with_help(format!("such as `c.image {} \"nginx\"`", op.symbol())),
                    );
                    return None;
                };
                if let Err(d) = schema::type_of(&p.segments, self.base_path(&p.base)) {
                    self.error(d.at(a.span));
                    return None;
                }
                let derive = match op {
                    BinOp::Contains => Derive::Contains(lit.clone()),
                    BinOp::StartsWith => Derive::StartsWith(lit.clone()),
                    BinOp::EndsWith => Derive::EndsWith(lit.clone()),
                    _ => Derive::Matches(lit.clone()),
                };
                let column = match derive {
                    Derive::Matches(_) => self.regex_input(&p, derive, b.span),
                    _ => self.input(&p, derive),
                };
                Some(Lowered::Value(ir::Expr::Truth(Box::new(column)), Ty::Bool))
            }
            BinOp::In => {
                let left = self.lower(a, env)?;
                match self.lower(b, env)? {
                    Lowered::List(items) => {
                        let (x, tx) = self.value(left, a.span, None)?;
                        let mut acc: Option<ir::Expr> = None;
                        for (item_ast, item) in items {
                            let (y, ty) = self.value(item, item_ast.span, Some(tx))?;
                            if !tx.comparable(ty) {
                                self.error(
                                    Diagnostic::new(
                                        item_ast.span,
                                        format!("cannot compare {} with {}", tx.name(), ty.name()),
                                    )
                                    .with_help(COMPARE_HELP),
                                );
                                return None;
                            }
                            let eq = ir::Expr::Compare(Cmp::Eq, Box::new(x.clone()), Box::new(y));
                            acc = Some(match acc {
                                None => eq,
                                Some(prev) => ir::Expr::Or(Box::new(prev), Box::new(eq)),
                            });
                        }
                        Some(Lowered::Value(acc.unwrap_or(ir::Expr::Const(tag::BOOL, 0)), Ty::Bool))
                    }
                    Lowered::Range(lo, hi) => {
                        let (x, tx) = self.value(left, a.span, None)?;
                        if !matches!(tx, Ty::Version | Ty::Any) {
                            self.error(
                                Diagnostic::new(
                                    a.span,
                                    format!("a version range needs a version on its left, found {}", tx.name()),
                                )
                                .with_help("wrap the field in `version(...)`"),
                            );
                            return None;
                        }
                        Some(Lowered::Value(ir::Expr::InRange(Box::new(x), lo, hi), Ty::Bool))
                    }
                    _ => {
                        self.error(
                            Diagnostic::new(
                                b.span,
                                "`in` needs a list `[...]` or a version range `A .. B` on its right",
                            )
                            .with_help("write `x in [\"A\", \"B\"]` or `version(v) in 1.10 .. 1.11`"),
                        );
                        None
                    }
                }
            }
            _ => {
                let left = self.lower(a, env)?;
                let right = self.lower(b, env)?;
                // `!=` is the negation of `==`, null included
                let negated = |v: ir::Expr| if op == BinOp::Ne { ir::Expr::Not(Box::new(v)) } else { v };
                let null = |l: &Lowered| matches!(l, Lowered::Null);
                if matches!(op, BinOp::Eq | BinOp::Ne) && (null(&left) || null(&right)) {
                    let is_null = match (left, right) {
                        (Lowered::Null, Lowered::Null) => ir::Expr::Const(tag::BOOL, 1),
                        (Lowered::Null, other) => ir::Expr::IsNull(Box::new(self.value(other, b.span, None)?.0)),
                        (other, _) => ir::Expr::IsNull(Box::new(self.value(other, a.span, None)?.0)),
                    };
                    return Some(Lowered::Value(negated(is_null), Ty::Bool));
                }
                // a number literal takes its meaning from the other side (see
                // `number`), except as a factor of `*`, `/` or `%`
                let factor = matches!(op, BinOp::Mul | BinOp::Div | BinOp::Rem);
                let hint = |t: Ty| (!factor).then_some(t);
                let number = |l: &Lowered| matches!(l, Lowered::Number(..));
                let (x, tx, y, ty) = if number(&left) && !number(&right) {
                    let (y, ty) = self.value(right, b.span, None)?;
                    let (x, tx) = self.value(left, a.span, hint(ty))?;
                    (x, tx, y, ty)
                } else {
                    let (x, tx) = self.value(left, a.span, None)?;
                    let (y, ty) = self.value(right, b.span, hint(tx))?;
                    (x, tx, y, ty)
                };
                let (x, y) = (Box::new(x), Box::new(y));
                let cmp = match op {
                    BinOp::Eq | BinOp::Ne => Some(Cmp::Eq),
                    BinOp::Lt => Some(Cmp::Lt),
                    BinOp::Le => Some(Cmp::Le),
                    BinOp::Gt => Some(Cmp::Gt),
                    BinOp::Ge => Some(Cmp::Ge),
                    _ => None,
                };
                if let Some(cmp) = cmp {
                    if !tx.comparable(ty) {
                        self.error(
                            Diagnostic::new(span, format!("cannot compare {} with {}", tx.name(), ty.name()))
                                .with_help(COMPARE_HELP),
                        );
                        return None;
                    }
                    if cmp != Cmp::Eq && (matches!(tx, Ty::Str | Ty::Bool) || matches!(ty, Ty::Str | Ty::Bool)) {
                        self.error(
                            Diagnostic::new(
                                span,
                                format!(
                                    "`{}` orders numbers, versions, quantities and times, not strings or booleans",
                                    op.symbol()
                                ),
                            )
                            .with_help("compare strings and booleans with `==` and `!=`"),
                        );
                        return None;
                    }
                    return Some(Lowered::Value(negated(ir::Expr::Compare(cmp, x, y)), Ty::Bool));
                }
                self.numeric(tx, a.span)?;
                self.numeric(ty, b.span)?;
                for (v, side) in [(&x, a), (&y, b)] {
                    if let ir::Expr::Const(tag::FLOAT, _) = **v {
                        self.error(
                            Diagnostic::new(side.span, "arithmetic is on whole numbers, and this one has a fraction")
                                .with_help("compare with it instead, or write a whole number"),
                        );
                        return None;
                    }
                }
                let arith = match op {
                    BinOp::Add => Arith::Add,
                    BinOp::Sub => Arith::Sub,
                    BinOp::Mul => Arith::Mul,
                    BinOp::Div => Arith::Div,
                    _ => Arith::Rem,
                };
                let result = match (arith, tx, ty) {
                    (Arith::Sub, Ty::Time, Ty::Time) => Ty::Duration,
                    (_, Ty::Int | Ty::Any, other) => other,
                    (_, own, _) => own,
                };
                Some(Lowered::Value(ir::Expr::Arith(arith, x, y), result))
            }
        }
    }

    /// Whether `re` is a valid regular expression; else an error at `span`.
    fn valid_regex(&mut self, re: &str, span: Span) -> bool {
        let Err(e) = regex::RegexBuilder::new(re).size_limit(crate::pack::REGEX_SIZE_LIMIT).build() else {
            return true;
        };
        let d = if let regex::Error::CompiledTooBig(_) = e {
            Diagnostic::new(span, "the regular expression is too large: it compiles to more than 1 MiB").with_help(
                "a repeated Unicode class such as `\\\\w{50}` is large: repeat it less, or use an ASCII class such as `[a-z0-9_]`",
            )
        } else {
            let msg = e.to_string();
            let last = msg.lines().last().unwrap_or("invalid regular expression").trim().to_string();
            Diagnostic::new(span, format!("invalid regular expression: {}", last.trim_start_matches("error: ")))
                .with_help("the syntax is RE2's; a literal `(`, `[`, `.` or `*` is written `\\\\(` and so on")
        };
        self.error(d);
        false
    }

    fn call(&mut self, name: &ast::Ident, args: &[ast::Expr], span: Span, env: &mut Env) -> Option<Lowered> {
        if name.name == "capture" {
            let usage = "such as `capture(s.message, \"0/([0-9]+) nodes\")`";
            let [text, re] = args else {
                self.error(Diagnostic::new(span, "`capture` takes a field and a regular expression").with_help(usage));
                return None;
            };
            let ExprKind::Str(re_text) = &re.kind else {
                self.error(
                    Diagnostic::new(re.span, "the regular expression of `capture` is a string literal")
                        .with_help(usage),
                );
                return None;
            };
            if !self.valid_regex(re_text, re.span) {
                return None;
            }
            let Lowered::Path(p) = self.lower(text, env)? else {
                self.error(Diagnostic::new(text.span, "`capture` needs a field on its left").with_help(usage));
                return None;
            };
            if let Err(d) = schema::type_of(&p.segments, self.base_path(&p.base)) {
                self.error(d.at(text.span));
                return None;
            }
            return Some(Lowered::Value(self.regex_input(&p, Derive::Capture(re_text.clone()), re.span), Ty::Str));
        }
        if name.name == "join" {
            let [list, sep] = args else {
                self.error(
                    Diagnostic::new(span, "`join` takes a list and a separator")
                        .with_help("such as `join(pod.metadata.finalizers, \", \")`"),
                );
                return None;
            };
            let ExprKind::Str(sep) = &sep.kind else {
                self.error(
                    Diagnostic::new(sep.span, "the separator of `join` is a string literal")
                        .with_help("such as `join(pod.metadata.finalizers, \", \")`"),
                );
                return None;
            };
            let (collection, parent, slot) = self.rows(list, env)?;
            let input =
                self.input_id(&PathRef { base: Base::Row(slot, collection), segments: Vec::new() }, Derive::Value);
            let (sep, more) = (self.literal(sep), self.literal("\u{2026}"));
            return Some(Lowered::Text(Arg::Join { collection, parent, slot, input, sep, more }));
        }
        if name.name == "coalesce" {
            if args.len() < 2 {
                self.error(
                    Diagnostic::new(span, "`coalesce` takes two or more arguments")
                        .with_help("such as `coalesce(s.reason, t.reason, \"none\")`: the first that is not null"),
                );
                return None;
            }
            let mut values = Vec::new();
            let mut ty = Ty::Any;
            for a in args {
                let l = self.lower(a, env)?;
                let (v, t) = self.value(l, a.span, (ty != Ty::Any).then_some(ty))?;
                if ty == Ty::Any {
                    ty = t;
                } else if !ty.comparable(t) {
                    self.error(
                        Diagnostic::new(a.span, format!("`coalesce` mixes {} and {}", ty.name(), t.name()))
                            .with_help("give it values of one kind"),
                    );
                    return None;
                }
                values.push(v);
            }
            return Some(Lowered::Value(ir::Expr::Coalesce(values), ty));
        }
        if !FUNCTIONS.contains(&name.name.as_str()) {
            let known = format!("the functions are {}", FUNCTIONS.join(", "));
            let help = match did_you_mean(&name.name, FUNCTIONS) {
                Some(s) => format!("did you mean `{s}`? {known}"),
                None => known,
            };
            self.error(Diagnostic::new(name.span, format!("unknown function `{}`", name.name)).with_help(help));
            return None;
        }
        let [arg] = args else {
            self.error(
                Diagnostic::new(span, format!("`{}` takes one argument", name.name))
                    .with_help(format!("such as `{}(pod.metadata.creationTimestamp)`", name.name)),
            );
            return None;
        };
        let Lowered::Path(p) = self.lower(arg, env)? else {
            self.error(
                Diagnostic::new(
                    arg.span,
                    format!("`{}` needs a field, such as `pod.metadata.creationTimestamp`", name.name),
                )
                .with_help("a function reads a field of the objects, not a value the rule computes"),
            );
            return None;
        };
        if let Err(d) = schema::type_of(&p.segments, self.base_path(&p.base)) {
            self.error(d.at(arg.span));
            return None;
        }
        Some(match name.name.as_str() {
            "has" => {
                let is_null = ir::Expr::IsNull(Box::new(self.input(&p, Derive::Value)));
                Lowered::Value(ir::Expr::Not(Box::new(is_null)), Ty::Bool)
            }
            "age" => {
                let t = self.input(&p, Derive::Timestamp);
                Lowered::Value(ir::Expr::Arith(Arith::Sub, Box::new(ir::Expr::Now), Box::new(t)), Ty::Duration)
            }
            "time" => Lowered::Value(self.input(&p, Derive::Timestamp), Ty::Time),
            "version" => Lowered::Value(self.input(&p, Derive::Version), Ty::Version),
            "quantity" => Lowered::Value(self.input(&p, Derive::Quantity), Ty::Quantity),
            _ => Lowered::Value(self.input(&p, Derive::Length), Ty::Int),
        })
    }
}

fn version_low(v: &ast::Version) -> i64 {
    encode_version(v.parts[0], v.parts[1], v.parts[2])
}

fn version_high(v: &ast::Version) -> i64 {
    let patch = if v.len < 3 { 999 } else { v.parts[2] };
    encode_version(v.parts[0], v.parts[1], patch)
}

impl From<schema::FieldType> for Ty {
    fn from(t: schema::FieldType) -> Ty {
        match t {
            schema::FieldType::Bool => Ty::Bool,
            schema::FieldType::Int => Ty::Int,
            schema::FieldType::Str => Ty::Str,
            schema::FieldType::Any => Ty::Any,
        }
    }
}

#[cfg(test)]
mod tests;
