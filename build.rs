//! The book's listings, tested: expand mdBook's include directives in `book/*.md` into
//! `OUT_DIR/book/`, then let skeptic turn every ```` ```rust ```` fence of the expanded
//! chapters into a test (`tests/skeptic.rs` includes them).
//!
//! skeptic reads plain Markdown and knows nothing of `{{#include}}`, so without this step it
//! would test the directive, not the program. The expansion follows mdBook's rules:
//!
//! * `{{#include path}}` — the whole file; `{{#include path:anchor}}` — the lines between
//!   `ANCHOR: anchor` and `ANCHOR_END: anchor`; `{{#include path:3:10}}` — a line range.
//! * `{{#rustdoc_include path:anchor}}` — the whole file (mdBook shows the anchor and hides
//!   the rest behind `# `; the compiler needs all of it, so we give it all of it).
//! * Lines holding `ANCHOR:` / `ANCHOR_END:` markers are dropped, as mdBook drops them.
//!
//! A missing file or anchor fails the build, naming the chapter and the directive: mdBook
//! itself only logs those and carries on.
//!
//! A fence that shows a listing program (its body one directive naming a file in
//! `chapters-code/examples/`) is expanded, so its directive is checked, but not handed to
//! skeptic: cargo compiles that program as an example of `lorakit`, and
//! `tests/book_commands.rs` runs it and compares what it prints with the book. Compiling it
//! a second time through skeptic would add nothing but a chance to link it against another
//! build of its dependencies left in a shared target directory.

use std::fs;
use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("book");
    let book = root.join("book");
    // Directories: cargo re-runs us when any file inside changes.
    println!("cargo:rerun-if-changed=book");
    println!("cargo:rerun-if-changed=chapters-code/examples");

    fs::create_dir_all(&out).expect("create OUT_DIR/book");
    let mut chapters = Vec::new();
    let mut problems = Vec::new();
    for md in markdown_files(&book) {
        let text = fs::read_to_string(&md).unwrap_or_else(|e| panic!("cannot read {}: {e}", md.display()));
        let name = md.strip_prefix(&book).expect("under book/").display().to_string();
        match expand(&listing_programs_as_text(&text), md.parent().expect("a file has a parent")) {
            Ok(expanded) => {
                if has_rust_fence(&expanded) {
                    let dest = out.join(name.replace('/', "__"));
                    write_if_changed(&dest, &expanded);
                    chapters.push(dest);
                }
            }
            Err(errors) => problems.extend(errors.into_iter().map(|e| format!("book/{name}: {e}"))),
        }
    }
    if !problems.is_empty() {
        panic!("the book's include directives do not resolve:\n  {}", problems.join("\n  "));
    }
    chapters.sort();
    if chapters.is_empty() {
        // skeptic writes nothing for no input, and tests/skeptic.rs includes its output.
        let file = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("skeptic-tests.rs");
        write_if_changed(&file, "");
    } else {
        skeptic::generate_doc_tests(&chapters);
    }
}

fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// `text` with each ```` ```rust ```` fence whose body is one include of a listing program
/// (`chapters-code/examples/`) turned into a ```` ```text ```` fence (see the module docs).
fn listing_programs_as_text(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::with_capacity(text.len());
    for (i, line) in lines.iter().enumerate() {
        let body = lines.get(i + 1).map(|l| l.trim()).unwrap_or("");
        let closes = lines.get(i + 2).is_some_and(|l| l.trim() == "```");
        let program = body.starts_with("{{#") && body.contains("chapters-code/examples/") && closes;
        if line.trim_start().starts_with("```rust") && program {
            out.push_str("```text");
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn has_rust_fence(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim_start();
        (l.starts_with("```") || l.starts_with("~~~"))
            && l.trim_start_matches(['`', '~']).trim_start().starts_with("rust")
    })
}

/// Expand every directive of `text`; paths are relative to `dir` (the chapter's folder).
fn expand(text: &str, dir: &Path) -> Result<String, Vec<String>> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{#") {
        // `\{{#include ...}}` is mdBook's escape: keep it as text (minus the backslash).
        if rest[..start].ends_with('\\') {
            out.push_str(&rest[..start - 1]);
            out.push_str("{{#");
            rest = &rest[start + 3..];
            continue;
        }
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            rest = "";
            break;
        };
        let directive = &rest[start + 3..start + len];
        rest = &rest[start + len + 2..];
        let (kind, arg) = directive.trim().split_once(char::is_whitespace).unwrap_or((directive.trim(), ""));
        let arg = arg.trim();
        match kind {
            "include" | "rustdoc_include" => match include(kind, arg, dir) {
                Ok(s) => out.push_str(&s),
                Err(e) => errors.push(format!("{{{{#{kind} {arg}}}}}: {e}")),
            },
            // Other directives ({{#title}}, {{#playground}}) are not ours to expand.
            _ => {
                out.push_str("{{#");
                out.push_str(directive);
                out.push_str("}}");
            }
        }
    }
    out.push_str(rest);
    if errors.is_empty() { Ok(out) } else { Err(errors) }
}

fn include(kind: &str, arg: &str, dir: &Path) -> Result<String, String> {
    let (path, selector) = match arg.split_once(':') {
        Some((p, s)) => (p, Some(s)),
        None => (arg, None),
    };
    let file = dir.join(path);
    let text = fs::read_to_string(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let lines: Vec<&str> = text.lines().collect();
    let selected: Vec<&str> = match selector {
        None => lines.clone(),
        Some(sel) if sel.chars().all(|c| c.is_ascii_digit() || c == ':') => {
            // Line ranges, 1-based and inclusive, either end optional: 3:10, 3:, :10, 3.
            let mut parts = sel.splitn(2, ':');
            let from = parts.next().filter(|s| !s.is_empty()).map(|s| s.parse::<usize>().unwrap_or(1)).unwrap_or(1);
            let to = match parts.next() {
                Some("") => lines.len(),
                Some(s) => s.parse::<usize>().unwrap_or(lines.len()),
                None if sel.contains(':') => lines.len(),
                None => from,
            };
            lines.iter().copied().skip(from.saturating_sub(1)).take(to.saturating_sub(from.saturating_sub(1))).collect()
        }
        Some(anchor) => {
            let begin = lines.iter().position(|l| marker(l, "ANCHOR:") == Some(anchor));
            let end = lines.iter().position(|l| marker(l, "ANCHOR_END:") == Some(anchor));
            match (begin, end) {
                (Some(b), Some(e)) if b < e => lines[b + 1..e].to_vec(),
                (None, _) => return Err(format!("no `ANCHOR: {anchor}` in {}", file.display())),
                (_, None) => return Err(format!("no `ANCHOR_END: {anchor}` in {}", file.display())),
                _ => return Err(format!("`ANCHOR_END: {anchor}` comes before its start in {}", file.display())),
            }
        }
    };
    // rustdoc_include: the compiler gets the whole program, whatever part the reader sees.
    let body: Vec<&str> = if kind == "rustdoc_include" { lines } else { selected };
    let mut s: String = body
        .into_iter()
        .filter(|l| marker(l, "ANCHOR:").is_none() && marker(l, "ANCHOR_END:").is_none())
        .map(|l| format!("{l}\n"))
        .collect();
    if s.ends_with('\n') {
        s.pop();
    }
    Ok(s)
}

/// The anchor name of an `ANCHOR:` / `ANCHOR_END:` marker line (`// ANCHOR: name`).
fn marker<'a>(line: &'a str, tag: &str) -> Option<&'a str> {
    let at = line.find(tag)?;
    let name = line[at + tag.len()..].trim();
    let name = name.split_whitespace().next().unwrap_or("");
    (!name.is_empty()).then_some(name)
}

fn write_if_changed(path: &Path, contents: &str) {
    if fs::read_to_string(path).is_ok_and(|old| old == contents) {
        return;
    }
    fs::write(path, contents).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
}
