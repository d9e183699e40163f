//! The syntax tree of a `.k8srule` file, with spans.

use crate::diag::Span;
pub use crate::pack::Severity;

#[derive(Debug, Clone, Default)]
pub struct File {
    pub tables: Vec<Table>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone)]
pub struct Ident {
    pub name: String,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub name: Ident,
    pub entries: Vec<(i64, Str)>,
}

/// A string literal: its unescaped value and where its text starts in the file.
#[derive(Debug, Clone)]
pub struct Str {
    pub value: String,
    /// Span of the whole literal, quotes included.
    pub span: Span,
    /// For each byte of `value`, its offset in the file.
    pub offsets: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TextKey {
    Title,
    Detects,
    Why,
    Confirm,
    Fix,
    Evidence,
}

#[derive(Debug, Clone)]
pub struct TextClause {
    pub key: TextKey,
    pub key_span: Span,
    pub en: Str,
    /// The text in other languages: a language tag, the text.
    pub translations: Vec<(Ident, Str)>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: Ident,
    pub span: Span,
    pub cause: Option<Str>,
    pub severity: Option<(Severity, Span)>,
    pub confidence: Option<(f32, Span)>,
    pub explains: Vec<Str>,
    pub each: Option<(Ident, Expr)>,
    pub lets: Vec<(Ident, Expr)>,
    pub when: Option<Expr>,
    pub texts: Vec<TextClause>,
    pub refs: Vec<Str>,
    /// Clauses given twice that may appear once.
    pub repeated: Vec<(String, Span)>,
    /// The first words of clauses that did not parse, and the names their
    /// `let` or `for` would have defined: reported already, so not missing.
    pub broken: Vec<String>,
}

impl Rule {
    pub fn new(id: Ident, span: Span) -> Self {
        Rule {
            id,
            span,
            cause: None,
            severity: None,
            confidence: None,
            explains: Vec::new(),
            each: None,
            lets: Vec::new(),
            when: None,
            texts: Vec::new(),
            refs: Vec::new(),
            repeated: Vec::new(),
            broken: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Contains,
    StartsWith,
    EndsWith,
    Matches,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "or",
            BinOp::And => "and",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::Contains => "contains",
            BinOp::StartsWith => "startsWith",
            BinOp::EndsWith => "endsWith",
            BinOp::Matches => "matches",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quant {
    Any,
    All,
    Count,
    First,
}

/// A number as written in decimal: `mantissa / 10^scale` (`1.5` is 15 and 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    pub mantissa: i128,
    pub scale: u32,
}

impl std::fmt::Display for Decimal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits = format!("{:0>width$}", self.mantissa.unsigned_abs(), width = self.scale as usize + 1);
        let (whole, fraction) = digits.split_at(digits.len() - self.scale as usize);
        let sign = if self.mantissa < 0 { "-" } else { "" };
        if fraction.is_empty() { write!(f, "{sign}{whole}") } else { write!(f, "{sign}{whole}.{fraction}") }
    }
}

/// A version literal: up to three numeric parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub parts: [u32; 3],
    pub len: usize,
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    Null,
    Bool(bool),
    Int(i64),
    /// A number with a fraction: `0.5`, or the version `1.10` next to a version.
    Decimal(Decimal),
    /// A number with a unit: `5m`, `256Mi`, `1.5Gi`.
    Unit(Decimal, String),
    /// A version of three parts: `1.10.3`.
    Version(Version),
    Str(String),
    Ident(String),
    Field(Box<Expr>, Ident),
    Index(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    Call(Ident, Vec<Expr>),
    Quantifier(Quant, Ident, Box<Expr>, Box<Expr>),
    List(Vec<Expr>),
    Range(Version, Version),
    /// A part that did not parse, its error reported.
    Error,
}
