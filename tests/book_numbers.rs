//! Part V quotes measurements, so every number in its text must come from the results files
//! the crate wrote (`book/data/experiments/*.json`, `book/data/bench.json`), never be typed
//! in or left stale:
//!
//! * the markdown tables the chapters include (`<name>.md`) must be exactly what the crate
//!   prints from the JSON beside them now;
//! * every number in the chapters' prose must be a value of those files (at the precision
//!   shown) or appear in those tables.
//!
//!     cargo test -p lora-book --test book_numbers

use lora_harness::experiments::{Experiment, tables};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn experiments_dir() -> PathBuf {
    root().join("book/data/experiments")
}

/// The chapters whose numbers are measurements.
const CHAPTERS: [&str; 4] = [
    "ch12-00-before-and-after.md",
    "ch13-00-impact-of-rank.md",
    "ch14-00-domain-use-cases.md",
    "ch15-00-training-efficiency.md",
];

#[test]
fn experiment_tables_are_what_the_results_print() {
    let tmp = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for e in Experiment::ALL {
        let json = e.json_path(&experiments_dir());
        let md = experiments_dir().join(format!("{}.md", e.name()));
        if !json.exists() {
            assert!(!md.exists(), "{} without {}", md.display(), json.display());
            continue;
        }
        std::fs::copy(&json, e.json_path(tmp.path())).unwrap();
        checked += 1;
    }
    for e in Experiment::ALL.into_iter().filter(|e| e.json_path(tmp.path()).exists()) {
        tables::write(e, tmp.path()).unwrap();
    }
    // Every table the crate prints now, equal to the committed one.
    for entry in std::fs::read_dir(tmp.path()).unwrap() {
        let fresh_path = entry.unwrap().path();
        if fresh_path.extension().is_none_or(|x| x != "md") {
            continue;
        }
        let md = experiments_dir().join(fresh_path.file_name().unwrap());
        let fresh = std::fs::read_to_string(&fresh_path).unwrap();
        let committed = std::fs::read_to_string(&md).unwrap_or_else(|err| panic!("{}: {err}", md.display()));
        assert_eq!(committed, fresh, "{} is stale: run `lora experiments --replot`", md.display());
    }
    assert!(checked >= 1, "no experiment results in {}", experiments_dir().display());
}

#[test]
fn bench_table_is_what_the_results_print() {
    let json = root().join("book/data/bench.json");
    let report: lora_harness::bench::report::Report =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let committed = std::fs::read_to_string(json.with_extension("md")).unwrap();
    assert_eq!(committed, report.markdown(), "book/data/bench.md is stale: rewrite it from bench.json");
}

/// Every number of a JSON value, as the book may print it: with 0 to 4 decimals, as a
/// percentage, and with thousands separators. Array lengths count too ("3 seeds").
fn renderings(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Number(n) => {
            let x = n.as_f64().unwrap();
            for scale in [1.0, 100.0] {
                let y = x * scale;
                for d in 0..=4 {
                    out.insert(format!("{y:.d$}"));
                }
                out.insert(format!("{y}"));
            }
        }
        serde_json::Value::Array(a) => {
            out.insert(a.len().to_string());
            a.iter().for_each(|x| renderings(x, out));
        }
        // Per-step curves, per-example answers and the φ matrices hold so many values that
        // almost any number would match one of them; the book quotes summaries, not those.
        serde_json::Value::Object(o) => o
            .iter()
            .filter(|(k, _)| !["curve", "examples", "phi", "phi_init", "history", "steps_detail"].contains(&k.as_str()))
            .for_each(|(_, x)| renderings(x, out)),
        // Numbers inside strings: "r=8 on all 7 projections", model names, dates.
        serde_json::Value::String(s) => out.extend(numbers(s).into_iter().map(|(n, _)| n)),
        _ => {}
    }
}

/// The numbers of a text (commas of thousands removed), with the line they are on. A number
/// glued to a letter or `_` is part of a name (`SmolLM2`, `ch12`, `q8_0`) and not counted.
fn numbers(text: &str) -> Vec<(String, usize)> {
    let mut found = Vec::new();
    for (ln, line) in text.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if !chars[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || ((chars[i] == '.' || chars[i] == ',')
                        && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit())
                        && (chars[i] == '.' || chars[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count() == 3)))
            {
                i += 1;
            }
            let glued = |c: Option<&char>| c.is_some_and(|c| c.is_alphabetic() || *c == '_');
            let before = start.checked_sub(1).and_then(|j| chars.get(j));
            if glued(before) || glued(chars.get(i)) {
                continue;
            }
            found.push((chars[start..i].iter().collect::<String>().replace(',', ""), ln + 1));
        }
    }
    found
}

/// The prose of a chapter: without code (fenced or inline), math, HTML tags, include
/// directives, link targets, list markers, and cross-references ("Chapter 9", "Llama 3.2").
fn prose(markdown: &str) -> String {
    let mut out = String::new();
    let (mut fenced, mut display_math) = (false, false);
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            out.push('\n');
            continue;
        }
        if !fenced && line.trim() == "$$" {
            display_math = !display_math;
            out.push('\n');
            continue;
        }
        if fenced || display_math || line.trim_start().starts_with("{{#") {
            out.push('\n');
            continue;
        }
        // Inline math must open and close on one line here, or the check would lose its
        // place: an odd number of `$` on a line fails the test.
        assert!(
            strip_between(line, '`', '`').matches('$').count().is_multiple_of(2),
            "inline math spanning lines (keep $…$ on one line or use a $$ block): {line}"
        );
        let mut l = strip_between(line, '`', '`');
        // Quoted model answers are checked against the results by `quotes_come_from_the_results`.
        l = strip_between(&l, '"', '"');
        l = strip_between(&l, '$', '$');
        l = strip_between(&l, '<', '>');
        l = strip_links(&l);
        for word in ["Chapter", "Chapters", "Listing", "Appendix", "Exercise", "Figure", "Llama", "et al.", "§"] {
            l = strip_after(&l, word);
        }
        let t = l.trim_start();
        let marker = t.find(". ").filter(|&k| k > 0 && t[..k].chars().all(|c| c.is_ascii_digit()));
        if let Some(k) = marker {
            l = t[k + 1..].to_string();
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

fn strip_between(s: &str, open: char, close: char) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in s.chars() {
        if !inside && c == open {
            inside = true;
        } else if inside && c == close {
            inside = false;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

/// `[text](target)` → `text`.
fn strip_links(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(k) = rest.find("](") {
        out.push_str(&rest[..k + 1]);
        rest = &rest[k + 2..];
        match rest.find(')') {
            Some(e) => rest = &rest[e + 1..],
            None => break,
        }
    }
    out.push_str(rest);
    out
}

/// Drop the number that follows `word` ("Chapter 9", "Listing 12-1", "Hu et al. 2021").
fn strip_after(s: &str, word: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(k) = rest.find(word) {
        out.push_str(&rest[..k + word.len()]);
        rest = rest[k + word.len()..].trim_start_matches([' ', '\u{a0}']);
        rest = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '.' || c == ',');
    }
    out.push_str(rest);
    out
}

#[test]
fn part_five_numbers_come_from_the_results() {
    let mut known = BTreeSet::new();
    let data = root().join("book/data");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(experiments_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        // The results and the generated tables; not README.md, which is prose like the book.
        .filter(|p| p.extension().is_some_and(|x| x == "json" || x == "md") && !p.ends_with("README.md"))
        .collect();
    sources.extend([data.join("bench.json"), data.join("bench.md")]);
    for p in &sources {
        let text = std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        if p.extension().is_some_and(|x| x == "json") {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            renderings(&v, &mut known);
        } else {
            // The tables, checked fresh by the two tests above.
            known.extend(numbers(&text).into_iter().map(|(n, _)| n));
        }
    }

    let mut stray = Vec::new();
    for chapter in CHAPTERS {
        let path = root().join("book").join(chapter);
        let text = std::fs::read_to_string(&path).unwrap();
        for (n, line) in numbers(&prose(&text)) {
            if !known.contains(&n) {
                stray.push(format!("{chapter}:{line}: {n}"));
            }
        }
    }
    assert!(
        stray.is_empty(),
        "numbers in Part V that no results file holds (quote them from book/data, or include the generated table):\n{}",
        stray.join("\n")
    );
}

/// Quoted text with a digit in it ("7 times 7 makes 70") is a model's answer or a prompt:
/// it must be in the results files word for word.
#[test]
fn quotes_come_from_the_results() {
    let mut corpus = String::new();
    for e in Experiment::ALL {
        if let Ok(text) = std::fs::read_to_string(e.json_path(&experiments_dir())) {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            strings(&v, &mut corpus);
        }
    }
    let mut missing = Vec::new();
    for chapter in CHAPTERS {
        let text = std::fs::read_to_string(root().join("book").join(chapter)).unwrap();
        let mut fenced = false;
        for (ln, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
            }
            if fenced {
                continue;
            }
            for (i, quote) in line.split('"').enumerate() {
                if i % 2 == 1 && quote.chars().any(|c| c.is_ascii_digit()) && !corpus.contains(quote) {
                    missing.push(format!("{chapter}:{}: \"{quote}\"", ln + 1));
                }
            }
        }
    }
    assert!(missing.is_empty(), "quotes found in no results file:\n{}", missing.join("\n"));
}

fn strings(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

/// The checker itself: it must see the numbers a reader sees and skip names and references.
#[test]
fn number_extraction() {
    let text = prose(
        "The loss fell to 0.048 in 16 steps on SmolLM2-135M (see Chapter 9 and [the table](ch13.md)).\n\
         1. A list item with 1,234,567 parameters and `code 42` and $r = 64$ <b data-x=\"7\">.\n",
    );
    let got: Vec<String> = numbers(&text).into_iter().map(|(n, _)| n).collect();
    assert_eq!(got, ["0.048", "16", "1234567"]);
    let mut known = BTreeSet::new();
    renderings(&serde_json::json!({"x": 0.04751, "runs": [1, 2, 3], "s": "r=8 on all 7"}), &mut known);
    for n in ["0.048", "0.05", "4.751", "3", "7"] {
        assert!(known.contains(n), "{n}");
    }
    assert!(!known.contains("0.049"));
}
