//! The checked, lowered form of a pack that code generation reads.

use crate::ast::Quant;
use crate::pack::PluginInfo;

/// Which row an input is read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// The case (pod) being evaluated.
    Case,
    /// The row held by a variable slot (`for`, a quantifier or `let x = first(...)`).
    Var(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arith {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A constant value: tag and payload.
    Const(i32, i64),
    /// Input column `input` at a row.
    Column(u32, Row),
    Now,
    /// A value bound by `let`.
    Local(u32),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// Comparison. `==`: both null, or equal values of one kind (numbers of
    /// either kind compared as numbers); an ordering is false when a side is
    /// null or the kinds differ. `!=` is `Not` of `Eq`.
    Compare(Cmp, Box<Expr>, Box<Expr>),
    /// `x == null`.
    IsNull(Box<Expr>),
    /// Whether a value is `true`: a predicate the host computed (`contains`,
    /// `matches`...), false rather than null on a null input.
    Truth(Box<Expr>),
    /// Integer arithmetic; null when a side is null or on division by zero.
    Arith(Arith, Box<Expr>, Box<Expr>),
    /// `x in lo .. hi`, integer bounds inclusive.
    InRange(Box<Expr>, i64, i64),
    /// The first value that is not null.
    Coalesce(Vec<Expr>),
    /// Table lookup: the key, and (key, string id) pairs.
    Lookup(Box<Expr>, Vec<(i64, i64)>),
    /// `any`/`all`/`count` over the rows of a collection under `parent`,
    /// binding each row to `slot`.
    Quantifier {
        kind: Quant,
        collection: u32,
        parent: Row,
        slot: u32,
        cond: Box<Expr>,
    },
}

/// A value a rule shows in its texts.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    Value(Expr),
    /// `join(list, sep)`: the text of the strings and integers of the rows of
    /// `collection` under `parent` (each read as `input` at row `slot`),
    /// literal `sep` between them; past 1024 bytes, cut and ended with
    /// literal `more`.
    Join {
        collection: u32,
        parent: Row,
        slot: u32,
        input: u32,
        sep: i64,
        more: i64,
    },
}

/// A `let` in evaluation order.
#[derive(Debug, Clone, PartialEq)]
pub enum Let {
    Value(u32, Expr),
    /// `let x = first(...)`: stores the first matching row, or -1.
    FirstRow {
        slot: u32,
        collection: u32,
        parent: Row,
        cond: Expr,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// For container-scoped rules: the `containers` collection and the row slot.
    pub each: Option<(u32, u32)>,
    pub lets: Vec<Let>,
    pub when: Expr,
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Pack {
    pub info: PluginInfo,
    pub rules: Vec<Rule>,
    /// Number of row slots and of value slots used.
    pub row_slots: u32,
    pub value_slots: u32,
}

impl Expr {
    /// Calls `f` with every input this expression reads.
    fn each_input(&self, f: &mut impl FnMut(u32)) {
        match self {
            Expr::Column(input, _) => f(*input),
            Expr::Const(..) | Expr::Now | Expr::Local(_) => {}
            Expr::Not(a) | Expr::IsNull(a) | Expr::Truth(a) | Expr::InRange(a, ..) | Expr::Lookup(a, _) => {
                a.each_input(f)
            }
            Expr::And(a, b) | Expr::Or(a, b) | Expr::Compare(_, a, b) | Expr::Arith(_, a, b) => {
                a.each_input(f);
                b.each_input(f);
            }
            Expr::Coalesce(list) => list.iter().for_each(|e| e.each_input(f)),
            Expr::Quantifier { cond, .. } => cond.each_input(f),
        }
    }
}

impl Pack {
    /// Marks the inputs that rules only show (a bare `{c.name}` in a text)
    /// and never test: the host projects those only for findings.
    pub fn mark_shown_only(&mut self) {
        let mut tested = vec![false; self.info.inputs.len()];
        let mut test = |i: u32| tested[i as usize] = true;
        for rule in &self.rules {
            for l in &rule.lets {
                match l {
                    Let::Value(_, e) | Let::FirstRow { cond: e, .. } => e.each_input(&mut test),
                }
            }
            rule.when.each_input(&mut test);
            for arg in &rule.args {
                match arg {
                    Arg::Value(Expr::Column(..)) => {}
                    Arg::Value(e) => e.each_input(&mut test),
                    // the guest reads the rows
                    Arg::Join { input, .. } => test(*input),
                }
            }
        }
        for (input, tested) in self.info.inputs.iter_mut().zip(tested) {
            input.shown_only = !tested;
        }
    }
}
