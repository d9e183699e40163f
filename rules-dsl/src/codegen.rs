//! IR to a core WebAssembly module that implements the `rule-pack` world with
//! the canonical ABI: `describe` returns static data, `evaluate` reads the
//! projected columns in linear memory and writes findings with a bump allocator.
//! The functions every pack shares (the allocator, the comparison of values,
//! the append of a finding) are WAT text, `runtime.wat`, assembled by `build.rs`.

use wasm_encoder::{
    BlockType, CodeSection, ConstExpr, DataSection, ExportKind, ExportSection, Function, FunctionSection,
    GlobalSection, GlobalType, Instruction as I, MemArg, MemorySection, MemoryType, Module, TypeSection, ValType,
};

use crate::ast::Quant;
use crate::component::INTERFACE;
use crate::ir::{Arg, Arith, Cmp, Expr, Let, Pack, Row};
use crate::pack::{Derive, PluginInfo, RuleInfo, Severity, Text, tag};

/// Where static data starts; address 0 stays unused.
const STATIC_BASE: u32 = 16;
/// Bytes of a `value` in the canonical ABI.
const VALUE_SIZE: i32 = 16;
/// The cases of `value::text` and `value::input` in the `value` variant.
const VALUE_TEXT: i32 = 5;
const VALUE_INPUT: i32 = 6;

/// The functions and globals every pack carries, assembled from `runtime.wat`
/// by `build.rs`: the functions come first in a pack's index space and the
/// globals are all of its globals, so the indices `build.rs` read there
/// (`F_ALLOC`, `G_HEAP`, ...) hold in the pack.
mod runtime {
    use wasm_encoder::ValType;

    /// A runtime function: its type and its body as the code section encodes it.
    pub(crate) struct RuntimeFn {
        pub params: &'static [ValType],
        pub results: &'static [ValType],
        pub body: &'static [u8],
    }

    include!(concat!(env!("OUT_DIR"), "/runtime.rs"));
}

use runtime::{
    F_ALLOC, F_APPEND_INT, F_APPEND_STRING, F_CABI_REALLOC, F_CMP, F_PUSH, FUNCTIONS, G_HEAP, G_OUT_LEN, G_OUT_PTR,
    GLOBALS,
};

/// The pack's own functions, after the runtime's.
const F_DESCRIBE: u32 = FUNCTIONS.len() as u32;
const F_EVALUATE: u32 = F_DESCRIBE + 1;

fn mem(offset: u64, align: u32) -> MemArg {
    MemArg { offset, align, memory_index: 0 }
}

/// Builds the core module for a checked pack.
pub fn module(pack: &Pack) -> Vec<u8> {
    let mut data = Data { base: STATIC_BASE, bytes: Vec::new() };
    let info_addr = write_plugin_info(&mut data, &pack.info);
    let ret_area = data.alloc(8, 4);
    let heap_start = (STATIC_BASE + data.bytes.len() as u32 + 7) & !7;

    // each function has a type of its own, at its own index
    let mut types = TypeSection::new();
    let mut funcs = FunctionSection::new();
    let mut code = CodeSection::new();
    for (index, f) in FUNCTIONS.iter().enumerate() {
        types.ty().function(f.params.iter().copied(), f.results.iter().copied());
        funcs.function(index as u32);
        code.raw(f.body);
    }
    use ValType::{I32, I64};
    types.ty().function([], [I32]);
    funcs.function(F_DESCRIBE);
    code.function(&finish(Vec::new(), vec![I::I32Const(info_addr as i32), I::End]));
    types.ty().function([I32, I64, I32, I32, I32, I32, I32, I32, I32, I32], [I32]);
    funcs.function(F_EVALUATE);
    code.function(&Eval::new(pack).function(ret_area));

    let mut memories = MemorySection::new();
    let pages = u64::from(heap_start.div_ceil(65536)).max(1);
    memories.memory(MemoryType { minimum: pages, maximum: None, memory64: false, shared: false, page_size_log2: None });
    let mut globals = GlobalSection::new();
    for g in 0..GLOBALS {
        let start = if g == G_HEAP { heap_start as i32 } else { 0 };
        globals.global(GlobalType { val_type: I32, mutable: true, shared: false }, &ConstExpr::i32_const(start));
    }
    let mut exports = ExportSection::new();
    exports.export("memory", ExportKind::Memory, 0);
    exports.export("cabi_realloc", ExportKind::Func, F_CABI_REALLOC);
    exports.export(&format!("{INTERFACE}#describe"), ExportKind::Func, F_DESCRIBE);
    exports.export(&format!("{INTERFACE}#evaluate"), ExportKind::Func, F_EVALUATE);

    let mut data_section = DataSection::new();
    data_section.active(0, &ConstExpr::i32_const(STATIC_BASE as i32), data.bytes);

    let mut m = Module::new();
    m.section(&types)
        .section(&funcs)
        .section(&memories)
        .section(&globals)
        .section(&exports)
        .section(&code)
        .section(&data_section);
    m.finish()
}

fn finish(locals: Vec<ValType>, body: Vec<I<'static>>) -> Function {
    let mut f = Function::new_with_locals_types(locals);
    for i in &body {
        f.instruction(i);
    }
    f
}

/// Generates the body of `evaluate`.
struct Eval<'p> {
    pack: &'p Pack,
    locals: Vec<ValType>,
    body: Vec<I<'static>>,
    case: u32,
    /// Per input: locals holding the tags and values pointers.
    columns: Vec<(u32, u32)>,
    /// Per collection: local holding the offsets pointer.
    offsets: Vec<u32>,
    row_slots: Vec<u32>,
    value_slots: Vec<(u32, u32)>,
}

const P_CASES: u32 = 0;
const P_NOW: u32 = 1;
const P_COLLECTIONS: u32 = 2;
const P_COLUMNS: u32 = 4;
const P_STRINGS: u32 = 6;
const P_STRING_OFFSETS: u32 = 8;
const PARAMS: u32 = 10;

impl<'p> Eval<'p> {
    fn new(pack: &'p Pack) -> Self {
        let mut e = Eval {
            pack,
            locals: Vec::new(),
            body: Vec::new(),
            case: 0,
            columns: Vec::new(),
            offsets: Vec::new(),
            row_slots: Vec::new(),
            value_slots: Vec::new(),
        };
        e.case = e.local(ValType::I32);
        for _ in 0..pack.row_slots {
            let l = e.local(ValType::I32);
            e.row_slots.push(l);
        }
        for _ in 0..pack.value_slots {
            let pair = (e.local(ValType::I32), e.local(ValType::I64));
            e.value_slots.push(pair);
        }
        e
    }

    fn local(&mut self, ty: ValType) -> u32 {
        self.locals.push(ty);
        PARAMS + self.locals.len() as u32 - 1
    }

    fn emit(&mut self, ins: impl IntoIterator<Item = I<'static>>) {
        self.body.extend(ins);
    }

    fn function(mut self, ret_area: u32) -> Function {
        for k in 0..self.pack.info.inputs.len() as u32 {
            let (t, v) = (self.local(ValType::I32), self.local(ValType::I32));
            let at = u64::from(k) * 16;
            self.emit([
                I::LocalGet(P_COLUMNS),
                I::I32Load(mem(at, 2)),
                I::LocalSet(t),
                I::LocalGet(P_COLUMNS),
                I::I32Load(mem(at + 8, 2)),
                I::LocalSet(v),
            ]);
            self.columns.push((t, v));
        }
        for j in 0..self.pack.info.collections.len() as u32 {
            let o = self.local(ValType::I32);
            self.emit([I::LocalGet(P_COLLECTIONS), I::I32Load(mem(u64::from(j) * 8, 2)), I::LocalSet(o)]);
            self.offsets.push(o);
        }
        for (index, rule) in self.pack.rules.iter().enumerate() {
            self.rule(index as u32, rule);
        }
        self.emit([
            I::I32Const(ret_area as i32),
            I::GlobalGet(G_OUT_PTR),
            I::I32Store(mem(0, 2)),
            I::I32Const(ret_area as i32),
            I::GlobalGet(G_OUT_LEN),
            I::I32Store(mem(4, 2)),
            I::I32Const(ret_area as i32),
            I::End,
        ]);
        finish(self.locals, self.body)
    }

    fn rule(&mut self, index: u32, rule: &crate::ir::Rule) {
        let case = self.case;
        self.emit([I::I32Const(0), I::LocalSet(case), I::Block(BlockType::Empty), I::Loop(BlockType::Empty)]);
        self.emit([I::LocalGet(case), I::LocalGet(P_CASES), I::I32GeU, I::BrIf(1)]);
        match rule.each {
            Some((coll, slot)) => {
                let start = self.local(ValType::I32);
                self.rows(coll, Row::Case, slot, start, |e| e.rule_body(index, rule, Some((slot, start))));
            }
            None => self.rule_body(index, rule, None),
        }
        self.emit([I::LocalGet(case), I::I32Const(1), I::I32Add, I::LocalSet(case), I::Br(0), I::End, I::End]);
    }

    /// Loops `slot` over the rows of `coll` under `parent`, running `body` for
    /// each; `body` may `br 1` to leave the loop early. `start` receives the
    /// first row index.
    fn rows(&mut self, coll: u32, parent: Row, slot: u32, start: u32, body: impl FnOnce(&mut Self)) {
        let end = self.local(ValType::I32);
        let offsets = self.offsets[coll as usize];
        let slot_local = self.row_slots[slot as usize];
        self.row_index(parent);
        let parent_row = self.local(ValType::I32);
        self.emit([
            I::LocalSet(parent_row),
            I::I32Const(0),
            I::LocalSet(start),
            I::I32Const(0),
            I::LocalSet(end),
            I::LocalGet(parent_row),
            I::I32Const(0),
            I::I32GeS,
            I::If(BlockType::Empty),
            I::LocalGet(offsets),
            I::LocalGet(parent_row),
            I::I32Const(2),
            I::I32Shl,
            I::I32Add,
            I::LocalTee(end),
            I::I32Load(mem(0, 2)),
            I::LocalSet(start),
            I::LocalGet(end),
            I::I32Load(mem(4, 2)),
            I::LocalSet(end),
            I::End,
            I::LocalGet(start),
            I::LocalSet(slot_local),
            I::Block(BlockType::Empty),
            I::Loop(BlockType::Empty),
            I::LocalGet(slot_local),
            I::LocalGet(end),
            I::I32GeU,
            I::BrIf(1),
        ]);
        body(self);
        self.emit([
            I::LocalGet(slot_local),
            I::I32Const(1),
            I::I32Add,
            I::LocalSet(slot_local),
            I::Br(0),
            I::End,
            I::End,
        ]);
    }

    /// Emits `if` on the row being found (a `first` that found none is -1);
    /// returns the local holding the row.
    fn if_row(&mut self, row: Row) -> u32 {
        let r = self.local(ValType::I32);
        self.row_index(row);
        self.emit([I::LocalTee(r), I::I32Const(0), I::I32GeS, I::If(BlockType::Empty)]);
        r
    }

    fn row_index(&mut self, row: Row) {
        match row {
            Row::Case => self.emit([I::LocalGet(self.case)]),
            Row::Var(slot) => self.emit([I::LocalGet(self.row_slots[slot as usize])]),
        }
    }

    fn rule_body(&mut self, index: u32, rule: &crate::ir::Rule, container: Option<(u32, u32)>) {
        for l in &rule.lets {
            self.binding(l);
        }
        self.cond(&rule.when);
        self.emit([I::If(BlockType::Empty)]);
        let n = rule.args.len() as i32;
        let args = self.local(ValType::I32);
        self.emit([I::I32Const(n * VALUE_SIZE), I::I32Const(8), I::Call(F_ALLOC), I::LocalSet(args)]);
        for (j, a) in rule.args.iter().enumerate() {
            let at = j as u64 * VALUE_SIZE as u64;
            let a = match a {
                Arg::Value(e) => e,
                Arg::Join { collection, parent, slot, input, sep, more } => {
                    self.join(*collection, *parent, *slot, *input, (*sep, *more), (args, at));
                    continue;
                }
            };
            if let Expr::Column(input, row) = a
                && self.pack.info.inputs[*input as usize].shown_only
            {
                // the host reads it: `value::input`, or null for a `first` that found no row
                let r = self.if_row(*row);
                self.emit([
                    I::LocalGet(args),
                    I::I32Const(VALUE_INPUT),
                    I::I32Store8(mem(at, 0)),
                    I::LocalGet(args),
                    I::I32Const(*input as i32),
                    I::I32Store(mem(at + 8, 2)),
                    I::LocalGet(args),
                    I::LocalGet(r),
                    I::I32Store(mem(at + 12, 2)),
                    I::End,
                ]);
                continue;
            }
            let (t, v) = self.value(a);
            // the value's case: the tag itself, or null for an object or list
            self.emit([
                I::LocalGet(args),
                I::LocalGet(t),
                I::I32Const(tag::NULL),
                I::LocalGet(t),
                I::I32Const(tag::STRING),
                I::I32LeU,
                I::Select,
                I::I32Store8(mem(at, 0)),
                I::LocalGet(args),
                I::LocalGet(v),
                I::I64Store(mem(at + 8, 3)),
            ]);
        }
        self.emit([I::LocalGet(self.case), I::I32Const(index as i32)]);
        match container {
            Some((slot, start)) => {
                self.emit([I::I32Const(1), I::LocalGet(self.row_slots[slot as usize]), I::LocalGet(start), I::I32Sub])
            }
            None => self.emit([I::I32Const(0), I::I32Const(0)]),
        }
        self.emit([I::LocalGet(args), I::I32Const(n), I::Call(F_PUSH), I::End]);
    }

    /// Builds the text of `join` at the top of the heap and stores it as
    /// `value::text` at `to` (the arguments, the offset of this one).
    fn join(&mut self, collection: u32, parent: Row, slot: u32, input: u32, (sep, more): (i64, i64), to: (u32, u64)) {
        let (start, full, count, first) =
            (self.local(ValType::I32), self.local(ValType::I32), self.local(ValType::I32), self.local(ValType::I32));
        let append_string = |id: Vec<I<'static>>, start: I<'static>| {
            let mut code = vec![I::LocalGet(P_STRINGS), I::LocalGet(P_STRING_OFFSETS)];
            code.extend(id);
            code.extend([start, I::Call(F_APPEND_STRING)]);
            code
        };
        // the text grows from the top of the heap
        self.emit([I::GlobalGet(G_HEAP), I::LocalSet(start), I::I32Const(0), I::LocalSet(full)]);
        self.emit([I::I32Const(0), I::LocalSet(count)]);
        self.rows(collection, parent, slot, first, |e| {
            // strings and integers are shown, other elements skipped
            let (t, v) = e.value(&Expr::Column(input, Row::Var(slot)));
            e.emit([I::LocalGet(t), I::I32Const(tag::STRING), I::I32Eq, I::LocalGet(t), I::I32Const(tag::INT)]);
            e.emit([I::I32Eq, I::I32Or, I::If(BlockType::Empty)]);
            // the separator before each element but the first; `br 2` leaves the rows when full
            e.emit([I::LocalGet(count), I::If(BlockType::Empty)]);
            e.emit(append_string(vec![I::I32Const(sep as i32)], I::LocalGet(start)));
            e.emit([I::LocalSet(full), I::End, I::LocalGet(full), I::BrIf(2)]);
            e.emit([I::LocalGet(t), I::I32Const(tag::STRING), I::I32Eq, I::If(BlockType::Result(ValType::I32))]);
            e.emit(append_string(vec![I::LocalGet(v), I::I32WrapI64], I::LocalGet(start)));
            e.emit([I::Else, I::LocalGet(v), I::LocalGet(start), I::Call(F_APPEND_INT), I::End]);
            e.emit([I::LocalSet(full), I::LocalGet(full), I::BrIf(2)]);
            e.emit([I::LocalGet(count), I::I32Const(1), I::I32Add, I::LocalSet(count), I::End]);
        });
        // a text cut short ends with `more`, past the limit
        self.emit([I::LocalGet(full), I::If(BlockType::Empty)]);
        self.emit(append_string(vec![I::I32Const(more as i32)], I::GlobalGet(G_HEAP)));
        self.emit([I::Drop, I::End]);
        let (args, at) = to;
        self.emit([
            I::LocalGet(args),
            I::I32Const(VALUE_TEXT),
            I::I32Store8(mem(at, 0)),
            I::LocalGet(args),
            I::LocalGet(start),
            I::I32Store(mem(at + 8, 2)),
            I::LocalGet(args),
            I::GlobalGet(G_HEAP),
            I::LocalGet(start),
            I::I32Sub,
            I::I32Store(mem(at + 12, 2)),
        ]);
    }

    fn binding(&mut self, l: &Let) {
        match l {
            Let::Value(slot, e) => {
                let (t, v) = self.value(e);
                let (st, sv) = self.value_slots[*slot as usize];
                self.emit([I::LocalGet(t), I::LocalSet(st), I::LocalGet(v), I::LocalSet(sv)]);
            }
            Let::FirstRow { slot, collection, parent, cond } => {
                let found = self.local(ValType::I32);
                let start = self.local(ValType::I32);
                let slot_local = self.row_slots[*slot as usize];
                self.emit([I::I32Const(-1), I::LocalSet(found)]);
                self.rows(*collection, *parent, *slot, start, |e| {
                    e.cond(cond);
                    e.emit([I::If(BlockType::Empty), I::LocalGet(slot_local), I::LocalSet(found), I::Br(2), I::End]);
                });
                self.emit([I::LocalGet(found), I::LocalSet(slot_local)]);
            }
        }
    }

    /// Emits code leaving an i32 truth value on the stack.
    fn cond(&mut self, e: &Expr) {
        match e {
            Expr::Const(t, v) => self.emit([I::I32Const(i32::from(*t == tag::BOOL && *v != 0))]),
            Expr::Not(a) => {
                self.cond(a);
                self.emit([I::I32Eqz]);
            }
            Expr::Truth(a) => self.cond(a),
            Expr::And(a, b) => {
                self.cond(a);
                self.emit([I::If(BlockType::Result(ValType::I32))]);
                self.cond(b);
                self.emit([I::Else, I::I32Const(0), I::End]);
            }
            Expr::Or(a, b) => {
                self.cond(a);
                self.emit([I::If(BlockType::Result(ValType::I32)), I::I32Const(1), I::Else]);
                self.cond(b);
                self.emit([I::End]);
            }
            Expr::Compare(op, a, b) => {
                let (ta, va) = self.value(a);
                let (tb, vb) = self.value(b);
                let code = match op {
                    Cmp::Eq => 0,
                    Cmp::Lt => 1,
                    Cmp::Le => 2,
                    Cmp::Gt => 3,
                    Cmp::Ge => 4,
                };
                self.emit([
                    I::LocalGet(ta),
                    I::LocalGet(va),
                    I::LocalGet(tb),
                    I::LocalGet(vb),
                    I::I32Const(code),
                    I::Call(F_CMP),
                ]);
            }
            Expr::IsNull(a) => {
                let (t, _) = self.value(a);
                self.emit([I::LocalGet(t), I::I32Eqz]);
            }
            Expr::InRange(a, lo, hi) => {
                let (t, v) = self.value(a);
                self.emit([
                    I::LocalGet(t),
                    I::I32Const(tag::INT),
                    I::I32Eq,
                    I::LocalGet(v),
                    I::I64Const(*lo),
                    I::I64GeS,
                    I::I32And,
                    I::LocalGet(v),
                    I::I64Const(*hi),
                    I::I64LeS,
                    I::I32And,
                ]);
            }
            Expr::Quantifier { kind: kind @ (Quant::Any | Quant::All), collection, parent, slot, cond } => {
                let result = self.local(ValType::I32);
                let start = self.local(ValType::I32);
                let all = *kind == Quant::All;
                self.emit([I::I32Const(i32::from(all)), I::LocalSet(result)]);
                self.rows(*collection, *parent, *slot, start, |e| {
                    e.cond(cond);
                    if all {
                        e.emit([I::I32Eqz]);
                    }
                    e.emit([
                        I::If(BlockType::Empty),
                        I::I32Const(i32::from(!all)),
                        I::LocalSet(result),
                        I::Br(2),
                        I::End,
                    ]);
                });
                self.emit([I::LocalGet(result)]);
            }
            other => {
                let (t, v) = self.value(other);
                self.emit([
                    I::LocalGet(t),
                    I::I32Const(tag::BOOL),
                    I::I32Eq,
                    I::LocalGet(v),
                    I::I64Const(0),
                    I::I64Ne,
                    I::I32And,
                ]);
            }
        }
    }

    /// Emits code computing a value into a fresh (tag, value) pair of locals.
    fn value(&mut self, e: &Expr) -> (u32, u32) {
        if let Expr::Local(slot) = e {
            return self.value_slots[*slot as usize];
        }
        let (t, v) = (self.local(ValType::I32), self.local(ValType::I64));
        match e {
            Expr::Const(tg, val) => self.emit([I::I32Const(*tg), I::LocalSet(t), I::I64Const(*val), I::LocalSet(v)]),
            Expr::Now => self.emit([I::I32Const(tag::INT), I::LocalSet(t), I::LocalGet(P_NOW), I::LocalSet(v)]),
            Expr::Column(input, row) => {
                let (tags, values) = self.columns[*input as usize];
                let r = self.if_row(*row);
                self.emit([
                    I::LocalGet(tags),
                    I::LocalGet(r),
                    I::I32Add,
                    I::I32Load8U(mem(0, 0)),
                    I::LocalSet(t),
                    I::LocalGet(values),
                    I::LocalGet(r),
                    I::I32Const(3),
                    I::I32Shl,
                    I::I32Add,
                    I::I64Load(mem(0, 3)),
                    I::LocalSet(v),
                    I::Else,
                    I::I32Const(tag::NULL),
                    I::LocalSet(t),
                    I::End,
                ]);
            }
            Expr::Arith(op, a, b) => {
                let (ta, va) = self.value(a);
                let (tb, vb) = self.value(b);
                self.emit([
                    I::I32Const(tag::NULL),
                    I::LocalSet(t),
                    I::LocalGet(ta),
                    I::I32Const(tag::INT),
                    I::I32Eq,
                    I::LocalGet(tb),
                    I::I32Const(tag::INT),
                    I::I32Eq,
                    I::I32And,
                ]);
                // integer arithmetic is checked: an overflow (or a division by
                // zero) makes the result null, never a wrapped number or a trap
                match op {
                    Arith::Div => self.emit([
                        I::LocalGet(vb),
                        I::I64Const(0),
                        I::I64Ne,
                        I::I32And,
                        I::LocalGet(va),
                        I::I64Const(i64::MIN),
                        I::I64Ne,
                        I::LocalGet(vb),
                        I::I64Const(-1),
                        I::I64Ne,
                        I::I32Or,
                        I::I32And,
                    ]),
                    // i64.rem_s of i64::MIN by -1 is 0, no trap
                    Arith::Rem => self.emit([I::LocalGet(vb), I::I64Const(0), I::I64Ne, I::I32And]),
                    Arith::Add | Arith::Sub | Arith::Mul => {}
                }
                let ins = match op {
                    Arith::Add => I::I64Add,
                    Arith::Sub => I::I64Sub,
                    Arith::Mul => I::I64Mul,
                    Arith::Div => I::I64DivS,
                    Arith::Rem => I::I64RemS,
                };
                self.emit([I::If(BlockType::Empty), I::LocalGet(va), I::LocalGet(vb), ins, I::LocalSet(v)]);
                // leaves whether `v` is the exact result
                match op {
                    // the sum's sign differs from both operands' signs
                    Arith::Add => self.emit([
                        I::LocalGet(va),
                        I::LocalGet(v),
                        I::I64Xor,
                        I::LocalGet(vb),
                        I::LocalGet(v),
                        I::I64Xor,
                        I::I64And,
                        I::I64Const(0),
                        I::I64GeS,
                    ]),
                    // the operands' signs differ and the difference's differs from the first's
                    Arith::Sub => self.emit([
                        I::LocalGet(va),
                        I::LocalGet(vb),
                        I::I64Xor,
                        I::LocalGet(va),
                        I::LocalGet(v),
                        I::I64Xor,
                        I::I64And,
                        I::I64Const(0),
                        I::I64GeS,
                    ]),
                    // a == 0, or (a == -1 ? b != MIN : v / a == b)
                    Arith::Mul => self.emit([
                        I::LocalGet(va),
                        I::I64Eqz,
                        I::If(BlockType::Result(ValType::I32)),
                        I::I32Const(1),
                        I::Else,
                        I::LocalGet(va),
                        I::I64Const(-1),
                        I::I64Eq,
                        I::If(BlockType::Result(ValType::I32)),
                        I::LocalGet(vb),
                        I::I64Const(i64::MIN),
                        I::I64Ne,
                        I::Else,
                        I::LocalGet(v),
                        I::LocalGet(va),
                        I::I64DivS,
                        I::LocalGet(vb),
                        I::I64Eq,
                        I::End,
                        I::End,
                    ]),
                    Arith::Div | Arith::Rem => self.emit([I::I32Const(1)]),
                }
                self.emit([I::If(BlockType::Empty), I::I32Const(tag::INT), I::LocalSet(t), I::End, I::End]);
            }
            Expr::Coalesce(items) => {
                self.emit([I::I32Const(tag::NULL), I::LocalSet(t)]);
                for item in items {
                    self.emit([I::LocalGet(t), I::I32Eqz, I::If(BlockType::Empty)]);
                    let (ti, vi) = self.value(item);
                    self.emit([I::LocalGet(ti), I::LocalSet(t), I::LocalGet(vi), I::LocalSet(v), I::End]);
                }
            }
            Expr::Lookup(key, entries) => {
                let (tk, vk) = self.value(key);
                self.emit([
                    I::I32Const(tag::NULL),
                    I::LocalSet(t),
                    I::LocalGet(tk),
                    I::I32Const(tag::INT),
                    I::I32Eq,
                    I::If(BlockType::Empty),
                ]);
                for (k, lit) in entries {
                    self.emit([
                        I::LocalGet(vk),
                        I::I64Const(*k),
                        I::I64Eq,
                        I::If(BlockType::Empty),
                        I::I32Const(tag::STRING),
                        I::LocalSet(t),
                        I::I64Const(*lit),
                        I::LocalSet(v),
                        I::End,
                    ]);
                }
                self.emit([I::End]);
            }
            Expr::Quantifier { kind: Quant::Count, collection, parent, slot, cond } => {
                let start = self.local(ValType::I32);
                self.emit([I::I32Const(tag::INT), I::LocalSet(t), I::I64Const(0), I::LocalSet(v)]);
                self.rows(*collection, *parent, *slot, start, |e| {
                    e.cond(cond);
                    e.emit([I::I64ExtendI32U, I::LocalGet(v), I::I64Add, I::LocalSet(v)]);
                });
            }
            boolean => {
                self.cond(boolean);
                self.emit([I::I64ExtendI32U, I::LocalSet(v), I::I32Const(tag::BOOL), I::LocalSet(t)]);
            }
        }
        (t, v)
    }
}

/// Static data laid out as the canonical ABI reads it.
struct Data {
    base: u32,
    bytes: Vec<u8>,
}

impl Data {
    fn alloc(&mut self, size: usize, align: usize) -> u32 {
        while !self.bytes.len().is_multiple_of(align) {
            self.bytes.push(0);
        }
        let at = self.base + self.bytes.len() as u32;
        self.bytes.resize(self.bytes.len() + size, 0);
        at
    }

    fn put(&mut self, at: u32, b: &[u8]) {
        let i = (at - self.base) as usize;
        self.bytes[i..i + b.len()].copy_from_slice(b);
    }

    fn u8(&mut self, at: u32, v: u8) {
        self.put(at, &[v]);
    }

    fn u32(&mut self, at: u32, v: u32) {
        self.put(at, &v.to_le_bytes());
    }

    fn string(&mut self, at: u32, s: &str) {
        let p = self.alloc(s.len(), 1);
        self.put(p, s.as_bytes());
        self.u32(at, p);
        self.u32(at + 4, s.len() as u32);
    }

    fn list<T>(&mut self, at: u32, items: &[T], size: usize, align: usize, mut write: impl FnMut(&mut Self, u32, &T)) {
        let p = self.alloc(size * items.len(), align);
        for (i, item) in items.iter().enumerate() {
            write(self, p + (i * size) as u32, item);
        }
        self.u32(at, p);
        self.u32(at + 4, items.len() as u32);
    }

    fn option_u32(&mut self, at: u32, v: Option<u32>) {
        if let Some(v) = v {
            self.u8(at, 1);
            self.u32(at + 4, v);
        }
    }

    fn text(&mut self, at: u32, t: &Text) {
        self.list(at, &t.translations, 16, 4, |d, p, t| {
            d.string(p, &t.lang);
            d.string(p + 8, &t.text);
        });
    }
}

const TEXT_SIZE: usize = 8;

fn write_plugin_info(d: &mut Data, info: &PluginInfo) -> u32 {
    let at = d.alloc(48, 4);
    d.string(at, &info.name);
    d.string(at + 8, &info.version);
    d.list(at + 16, &info.rules, 100, 4, write_rule);
    d.list(at + 24, &info.collections, 16, 4, |d, p, c| {
        d.option_u32(p, c.parent);
        d.string(p + 8, &c.path);
    });
    d.list(at + 32, &info.inputs, 32, 4, |d, p, input| {
        d.option_u32(p, input.collection);
        d.string(p + 8, &input.path);
        let (disc, payload) = match &input.derive {
            Derive::Value => (0, None),
            Derive::Quantity => (1, None),
            Derive::Version => (2, None),
            Derive::Timestamp => (3, None),
            Derive::Matches(s) => (4, Some(s)),
            Derive::Contains(s) => (5, Some(s)),
            Derive::StartsWith(s) => (6, Some(s)),
            Derive::EndsWith(s) => (7, Some(s)),
            Derive::Length => (8, None),
            Derive::Capture(s) => (9, Some(s)),
        };
        d.u8(p + 16, disc);
        if let Some(s) = payload {
            d.string(p + 20, s);
        }
        d.u8(p + 28, u8::from(input.shown_only));
    });
    d.list(at + 40, &info.literals, 8, 4, |d, p, s| d.string(p, s));
    at
}

fn write_rule(d: &mut Data, at: u32, r: &RuleInfo) {
    d.string(at, &r.id);
    d.string(at + 8, &r.cause);
    let severity = match r.severity {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Error => 2,
        Severity::Critical => 3,
    };
    d.u8(at + 16, severity);
    d.put(at + 20, &r.confidence.to_le_bytes());
    d.u8(at + 24, r.scope as u8);
    d.text(at + 28, &r.title);
    d.text(at + 36, &r.detects);
    d.text(at + 44, &r.why);
    d.list(at + 52, &r.confirm, TEXT_SIZE, 4, |d, p, t| d.text(p, t));
    d.list(at + 60, &r.fix, TEXT_SIZE, 4, |d, p, t| d.text(p, t));
    d.list(at + 68, &r.evidence, TEXT_SIZE, 4, |d, p, t| d.text(p, t));
    d.list(at + 76, &r.explains, 8, 4, |d, p, s| d.string(p, s));
    d.list(at + 84, &r.references, 8, 4, |d, p, s| d.string(p, s));
    d.list(at + 92, &r.arguments, 8, 4, |d, p, s| d.string(p, s));
}
