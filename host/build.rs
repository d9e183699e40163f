//! Compiles the built-in rules (`plugins/builtin/**/*.k8srule`) into one
//! component that the binary embeds.

use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|e| e == "k8srule") {
            out.push(p);
        }
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/builtin");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut files = Vec::new();
    collect(&root, &mut files);
    let mut sources = Vec::new();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.strip_prefix(root.join("../..")).unwrap_or(f).display().to_string();
        match std::fs::read_to_string(f) {
            Ok(text) => sources.push(k8srule_dsl::SourceFile::new(name, text)),
            Err(e) => {
                eprintln!("cannot read {name}: {e}");
                std::process::exit(1);
            }
        }
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    match k8srule_dsl::compile(&sources, "builtin", env!("CARGO_PKG_VERSION")) {
        Ok(wasm) => {
            if let Err(e) = std::fs::write(out.join("builtin.wasm"), wasm) {
                eprintln!("cannot write builtin.wasm: {e}");
                std::process::exit(1);
            }
        }
        Err(e) => {
            eprintln!("the built-in rules do not compile:\n{e}");
            std::process::exit(1);
        }
    }
    // the sources, for `k8srule explain` and `k8srule rules`
    let listing: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
    let _ = std::fs::write(out.join("builtin-files.txt"), listing.join("\n"));
}
