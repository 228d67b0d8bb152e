//! The front door stays true: README.md's code is the code `cargo test` compiles (the core's
//! crate-doc example, the adapters' examples), and every file it links to exists.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The ```rust blocks of a Markdown text, in order.
fn rust_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```rust") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// The first doc-comment example of a Rust source (`//! ```` … `//! ````), unindented.
fn crate_doc_example(source: &str) -> String {
    let mut lines = source
        .lines()
        .map(|l| l.strip_prefix("//! ").or_else(|| l.strip_prefix("//!")))
        .map_while(|l| l);
    lines.by_ref().find(|l| *l == "```");
    let mut out = String::new();
    for line in lines.take_while(|l| *l != "```") {
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn readme_code_is_the_compiled_code() {
    let readme = read("README.md");
    let blocks = rust_blocks(&readme);
    let compiled = [
        (
            "core/src/lib.rs's crate-doc example",
            crate_doc_example(&read("core/src/lib.rs")),
        ),
        (
            "adapters/tokio/examples/echo.rs",
            read("adapters/tokio/examples/echo.rs"),
        ),
        (
            "adapters/std/examples/relay.rs",
            read("adapters/std/examples/relay.rs"),
        ),
    ];
    assert_eq!(
        blocks.len(),
        compiled.len(),
        "README.md's rust blocks changed in number"
    );
    for (block, (what, code)) in blocks.iter().zip(&compiled) {
        assert!(!code.is_empty(), "{what} is empty");
        assert_eq!(block, code, "README.md's copy of {what} differs: copy it again");
    }
}

#[test]
fn every_file_the_readmes_link_to_exists() {
    for doc in [
        "README.md",
        "core/README.md",
        "adapters/README.md",
        "adapters/cli/README.md",
        "tests/README.md",
        "adapters/bench/README.md",
        "adapters/bench/rounds.md",
        "fuzz/README.md",
        "spec/architecture.md",
    ] {
        let text = read(doc);
        let dir = Path::new(doc).parent().unwrap_or(Path::new(""));
        for target in text.split("](").skip(1).filter_map(|rest| rest.split(')').next()) {
            if target.starts_with("http") || target.starts_with('#') {
                continue;
            }
            let path = root().join(dir).join(target);
            assert!(path.exists(), "{doc} links to {target}, which does not exist");
        }
    }
}
