//! The wasmtime sandbox: loading packs, limits, and evaluating batches.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, Linker};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};

use crate::evaluation::projection::{CollectionPath, Derive, Input};

use super::cache;
use super::contract::{self as types, PluginInfo, PluginPre};

/// Limits every pack runs under.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory of one pack instance, in bytes; also the bytes of
    /// the texts that the findings of one call render to.
    pub memory_bytes: usize,
    /// Wall time of one `evaluate` call.
    pub timeout: Duration,
    /// Findings one `evaluate` call may return.
    pub max_findings: usize,
    /// Findings of one pod in one `evaluate` call.
    pub max_findings_per_case: usize,
    /// Bytes of the arguments of one finding, as shown: texts, strings of
    /// the batch and the values the host reads for it (`value::input`).
    pub max_text_bytes: usize,
    /// Bytes the cache of compiled packs may hold.
    pub max_cache_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 256 << 20,
            timeout: Duration::from_secs(10),
            max_findings: 100_000,
            max_findings_per_case: 1000,
            max_text_bytes: 64 << 10,
            max_cache_bytes: 256 << 20,
        }
    }
}

/// A problem with a pack: it is refused at load, or its evaluation failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("pack `{pack}`: {message}")]
pub struct PackError {
    /// The pack's name.
    pub pack: String,
    /// What went wrong.
    pub message: String,
}

const TICK: Duration = Duration::from_millis(10);

/// What one pack may declare in `describe`: the host compiles a regular
/// expression per regex input, projects a column per input, and copies every
/// literal into every batch.
pub const MAX_RULES: usize = 4096;
pub const MAX_COLLECTIONS: usize = 256;
pub const MAX_INPUTS: usize = 4096;
pub const MAX_REGEXES: usize = k8srule_dsl::pack::MAX_REGEXES;
pub const MAX_LITERALS: usize = 65536;
pub const MAX_LITERAL_BYTES: usize = 1 << 20;
/// What one rule may declare: the host renders its texts (and copies its id
/// and `explains`) for every finding, each placeholder with its argument.
pub const MAX_RULE_BYTES: usize = 64 << 10;
pub const MAX_PLACEHOLDERS: usize = 256;

/// Pack instances that may run at once in one sandbox: one per thread of
/// every `diagnose` call in flight.
const POOL_SLOTS: u32 = 256;

/// A wasmtime engine with an epoch ticker that ends with it.
pub struct Sandbox {
    engine: Engine,
    limits: Limits,
    cache: Option<cache::Cache>,
    stop: Arc<AtomicBool>,
    ticker: Option<JoinHandle<()>>,
}

impl Sandbox {
    /// `cache`: a directory for compiled packs, or none to compile every
    /// time; one that is not the current user's own, or that others may
    /// write, is not used.
    pub fn new(limits: Limits, cache: Option<PathBuf>) -> Result<Self, PackError> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.max_wasm_stack(512 << 10);
        // bound the address space each instance reserves
        config.memory_reservation(limits.memory_bytes as u64 + (64 << 20));
        // instances come from a pool of slots whose memory stays mapped, so a
        // fresh instance per batch costs no mmap and few page faults; a slot
        // is taken for the length of one `evaluate` call
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_memories(POOL_SLOTS).total_tables(POOL_SLOTS);
        pool.total_component_instances(POOL_SLOTS).total_core_instances(POOL_SLOTS);
        pool.max_memory_size(limits.memory_bytes).linear_memory_keep_resident(1 << 20);
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| PackError { pack: "<engine>".into(), message: e.to_string() })?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let (engine, stop) = (engine.clone(), stop.clone());
            std::thread::Builder::new()
                .name("k8srule-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(TICK);
                        engine.increment_epoch();
                    }
                })
                .ok()
        };
        let cache = cache.and_then(|dir| cache::Cache::open(dir, limits.max_cache_bytes));
        Ok(Sandbox { engine, limits, cache, stop, ticker })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn store(&self) -> Store<StoreLimits> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .table_elements(100_000)
            .instances(4)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(&self.engine, limits);
        store.limiter(|l| l);
        let ticks = (self.limits.timeout.as_millis() / TICK.as_millis()).max(1) as u64;
        store.set_epoch_deadline(ticks);
        store
    }

    /// Compiles and links a component, refuses imports, and asks it what it reads.
    pub fn load(&self, name: &str, bytes: &[u8]) -> Result<Pack, PackError> {
        let err = |message: String| PackError { pack: name.to_string(), message };
        let wrapped;
        let bytes = if wasmparser::Parser::is_core_wasm(bytes) {
            // a Rust guest straight from `cargo build --target wasm32-unknown-unknown`
            wrapped = k8srule_dsl::component::wrap_module(bytes)
                .map_err(|e| err(format!("cannot make a component of this core module: {e}")))?;
            &wrapped[..]
        } else if wasmparser::Parser::is_component(bytes) {
            bytes
        } else {
            return Err(err("not WebAssembly (expected a `.wasm` component or module, or a `.k8srule` file)".into()));
        };
        let component = self.compile(bytes).map_err(|e| err(format!("invalid component: {}", root_cause(&e))))?;
        let ty = component.component_type();
        if let Some((import, _)) = ty.imports(&self.engine).next() {
            return Err(err(format!("imports `{import}`; packs must be pure and import nothing")));
        }
        let wanted = k8srule_dsl::component::INTERFACE;
        let (unversioned, _) = wanted.split_once('@').unwrap_or((wanted, ""));
        if let Some((other, _)) =
            ty.exports(&self.engine).find(|(name, _)| name.starts_with(unversioned) && *name != wanted)
        {
            return Err(err(format!(
                "is built for `{other}`; this k8srule runs packs for `{wanted}`: rebuild the pack with this k8srule \
                 (`k8srule pack build`, or a Rust pack against its wit/plugin.wit)"
            )));
        }
        let linker = Linker::new(&self.engine);
        let pre = linker.instantiate_pre(&component).and_then(PluginPre::new).map_err(|e| {
            err(format!("does not implement {}: {}", k8srule_dsl::component::INTERFACE, root_cause(&e)))
        })?;
        let mut store = self.store();
        let info = pre
            .instantiate(&mut store)
            .and_then(|p| p.k8srule_plugin_rule_pack().call_describe(&mut store))
            .map_err(|e| err(format!("`describe` failed: {}", trap_message(&e, &self.limits))))?;
        Pack::new(name, info, pre)
    }

    /// Compiles a component, or loads it from the cache (see `cache`). An
    /// entry is keyed by the component's SHA-256 and the engine's
    /// compatibility hash.
    fn compile(&self, bytes: &[u8]) -> wasmtime::Result<Component> {
        let Some(cache) = &self.cache else {
            return Component::new(&self.engine, bytes);
        };
        let mut key = Sha256::new();
        key.update(bytes);
        let mut compat = std::hash::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut compat);
        key.update(compat.finish().to_le_bytes());
        let key = format!("{:x}.cwasm", key.finalize());
        if let Some(compiled) = cache.get(&key) {
            // SAFETY: `deserialize` runs its input as native code and trusts it to be a compiled
            // component from a compatible engine. `cache.get` returns only a file of the current
            // user's own, in a directory of the user's own, neither writable by anyone else (so
            // written by this user, as this function does, or by someone who could already run
            // code as this user), whose SHA-256 matches (not torn); the key holds this engine's
            // compatibility hash, and wasmtime checks the entry's engine settings again.
            #[allow(unsafe_code)]
            if let Ok(c) = unsafe { Component::deserialize(&self.engine, &compiled) } {
                return Ok(c);
            }
        }
        let compiled = self.engine.precompile_component(bytes)?;
        cache.put(&key, &compiled);
        // SAFETY: `compiled` was produced by this engine just above.
        #[allow(unsafe_code)]
        unsafe {
            Component::deserialize(&self.engine, &compiled)
        }
    }

    /// Runs `evaluate` on a fresh instance.
    pub fn evaluate(&self, pack: &Pack, batch: &types::Batch) -> Result<Vec<types::Finding>, PackError> {
        let err = |message: String| PackError { pack: pack.name.clone(), message };
        let mut store = self.store();
        let findings = pack
            .pre
            .instantiate(&mut store)
            .and_then(|p| p.k8srule_plugin_rule_pack().call_evaluate(&mut store, batch))
            .map_err(|e| err(trap_message(&e, &self.limits)))?;
        if findings.len() > self.limits.max_findings {
            return Err(err(format!(
                "returned {} findings for {} pods; the limit is {} per call",
                findings.len(),
                batch.cases,
                self.limits.max_findings
            )));
        }
        Ok(findings)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            let _ = t.join();
        }
    }
}

fn root_cause(e: &wasmtime::Error) -> String {
    e.chain().last().map(ToString::to_string).unwrap_or_default()
}

fn trap_message(e: &wasmtime::Error, limits: &Limits) -> String {
    // StoreLimits with trap_on_grow_failure reports a refused memory.grow this way
    if e.chain().any(|c| c.to_string().starts_with("forcing trap when growing memory")) {
        return format!("ran out of memory (limit {} MiB)", limits.memory_bytes >> 20);
    }
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => format!("timed out after {:?}", limits.timeout),
        Some(wasmtime::Trap::StackOverflow) => "stack overflow".into(),
        Some(t) => format!("trapped: {}", t.to_string().trim_start_matches("wasm trap: ")),
        None => root_cause(e),
    }
}

/// A loaded pack: what it declared, checked, and ready to instantiate.
pub struct Pack {
    pub name: String,
    pub info: PluginInfo,
    pub collections: Vec<CollectionPath>,
    pub inputs: Vec<Input>,
    pre: PluginPre<StoreLimits>,
}

impl Pack {
    fn new(name: &str, info: PluginInfo, pre: PluginPre<StoreLimits>) -> Result<Self, PackError> {
        let err = |message: String| PackError { pack: name.to_string(), message };
        let regexes = (info.inputs.iter())
            .filter(|i| matches!(i.derive, types::Derive::Matches(_) | types::Derive::Capture(_)))
            .count();
        let literal_bytes: usize = info.literals.iter().map(String::len).sum();
        for (what, declared, max) in [
            ("rules", info.rules.len(), MAX_RULES),
            ("collections", info.collections.len(), MAX_COLLECTIONS),
            ("inputs", info.inputs.len(), MAX_INPUTS),
            ("regular expressions", regexes, MAX_REGEXES),
            ("literals", info.literals.len(), MAX_LITERALS),
            ("bytes of literals", literal_bytes, MAX_LITERAL_BYTES),
        ] {
            if declared > max {
                return Err(err(format!("declares {declared} {what}; the limit is {max}")));
            }
        }
        let split = k8srule_dsl::pack::split_path;
        let mut collections = Vec::new();
        for (i, c) in info.collections.iter().enumerate() {
            let parent = c.parent.map(|p| p as usize);
            if parent.is_some_and(|p| p >= i) {
                return Err(err(format!(
                    "collection {i} names parent {} that is not declared before it",
                    c.parent.unwrap_or_default()
                )));
            }
            collections.push(CollectionPath { parent, segments: split(&c.path) });
        }
        let regex = |i: usize, re: &str| {
            regex::RegexBuilder::new(re)
                .size_limit(k8srule_dsl::pack::REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| err(format!("input {i}: invalid regular expression `{re}`: {e}")))
        };
        let mut inputs = Vec::new();
        for (i, input) in info.inputs.iter().enumerate() {
            let collection = input.collection.map(|c| c as usize);
            if collection.is_some_and(|c| c >= collections.len()) {
                return Err(err(format!(
                    "input {i} (`{}`) names collection {} that is not declared",
                    input.path,
                    input.collection.unwrap_or_default()
                )));
            }
            let derive = match &input.derive {
                types::Derive::Value => Derive::Value,
                types::Derive::Quantity => Derive::Quantity,
                types::Derive::Version => Derive::Version,
                types::Derive::Timestamp => Derive::Timestamp,
                types::Derive::Length => Derive::Length,
                types::Derive::Contains(s) => Derive::Contains(s.clone()),
                types::Derive::StartsWith(s) => Derive::StartsWith(s.clone()),
                types::Derive::EndsWith(s) => Derive::EndsWith(s.clone()),
                types::Derive::Matches(re) => Derive::Matches(regex(i, re)?),
                types::Derive::Capture(re) => Derive::Capture(regex(i, re)?),
            };
            inputs.push(Input { collection, segments: split(&input.path), derive, shown_only: input.shown_only });
        }
        for (i, r) in info.rules.iter().enumerate() {
            if !(0.0..=1.0).contains(&r.confidence) {
                return Err(err(format!("rule {i} (`{}`) has confidence {} outside 0..1", r.id, r.confidence)));
            }
            let texts = [&r.title].into_iter().chain(&r.evidence).chain(&r.confirm).chain(&r.fix);
            let templates: Vec<&str> = std::iter::once(r.cause.as_str())
                .chain(texts.flat_map(|t| t.translations.iter().map(|t| t.text.as_str())))
                .collect();
            let all_texts =
                || [&r.title, &r.detects, &r.why].into_iter().chain(&r.evidence).chain(&r.confirm).chain(&r.fix);
            let bytes: usize = templates.iter().chain(&[r.id.as_str()]).map(|t| t.len()).sum::<usize>()
                + r.explains.iter().map(String::len).sum::<usize>();
            let uses: usize = templates.iter().map(|t| super::template::placeholders(t).count()).sum();
            for (what, declared, max) in
                [("bytes of texts", bytes, MAX_RULE_BYTES), ("placeholders", uses, MAX_PLACEHOLDERS)]
            {
                if declared > max {
                    return Err(err(format!("rule {i} (`{}`) declares {declared} {what}; the limit is {max}", r.id)));
                }
            }
            for text in all_texts() {
                let translations = &text.translations;
                if translations.first().is_some_and(|t| t.lang != "en") {
                    return Err(err(format!(
                        "rule {i} (`{}`) has a text that does not start with English (`en`)",
                        r.id
                    )));
                }
                for t in translations.iter().skip(1) {
                    if let Err(why) = k8srule_dsl::pack::lang_tag(&t.lang) {
                        return Err(err(format!(
                            "rule {i} (`{}`) has a text in `{}`, not a language tag: {why}",
                            r.id, t.lang
                        )));
                    }
                }
            }
        }
        Ok(Pack { name: name.to_string(), info, collections, inputs, pre })
    }
}
