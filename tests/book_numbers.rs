//! The book quotes measurements, so every measured number in its prose must come from the
//! results files the crate wrote, never be typed in or left stale:
//!
//! * the markdown tables the chapters include (`book/data/experiments/<name>.md`,
//!   `book/data/bench.md`) must be exactly what the crate prints from the JSON beside them now;
//! * every measured number in the prose of the files of `lora_book::numbers::COVERED` (Part V,
//!   Chapter 8, the appendices, the README) carries an annotation naming the value it is, and
//!   shows that value at the precision shown:
//!
//!   ```text
//!   <!--= data/experiments/rank.json#/results/runs[r=16]/val_loss -->0.050
//!   <!--= 100 * data/bench.json#/train[seq=64]/mfu_candle -->43%
//!   <!--=const-->4096        (a fixed fact, not a measurement)
//!   ```
//!
//!   The file is relative to `book/` (`data/…` results, or `listings/NAME.txt` whose body after
//!   the `$ command` line is JSON); the pointer is RFC 6901 with `[key=value]` array selectors;
//!   `+ - * /` and parentheses combine values. A decimal number, or an integer of 100 or more,
//!   left in prose without an annotation fails, unless it is in code, math, a link target, a
//!   quote or an included file. `bash scripts/book.sh numbers` rewrites the annotated numbers
//!   from the results (`tests/support/numbers.rs`).
//!
//!     cargo test -p lora-book --test book_numbers

use lora_book::numbers::{self as annotated, COVERED, PENDING, Sources};
use lora_harness::experiments::{Experiment, tables};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn experiments_dir() -> PathBuf {
    root().join("book/data/experiments")
}

/// The chapters whose quoted answers must be in the results.
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
    let file = lora_harness::bench::report::BenchFile::read(&json).unwrap();
    assert_eq!(file.schema, 3, "book/data/bench.json: rewrite it with `lora bench --render`");
    let committed = std::fs::read_to_string(json.with_extension("md")).unwrap();
    assert_eq!(committed, file.markdown(), "book/data/bench.md is stale: `lora bench --render` rewrites it");
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
            // `SHA-256`, `AVX-512`: a number after a word and a hyphen is part of a name.
            let hyphenated = before == Some(&'-') && glued(start.checked_sub(2).and_then(|j| chars.get(j)));
            if glued(before) || glued(chars.get(i)) || hyphenated {
                continue;
            }
            let token: String = chars[start..i].iter().collect();
            // An address or a version (`127.0.0.1`, `0.11.1`), not a quantity.
            if token.matches('.').count() > 1 {
                continue;
            }
            found.push((token.replace(',', ""), ln + 1));
        }
    }
    found
}

/// The prose of a chapter: without code (fenced or inline), math, HTML tags, include
/// directives, link targets, list markers, and cross-references ("Chapter 9", "Llama 3.2").
fn prose(markdown: &str) -> String {
    let mut out = String::new();
    let (mut fenced, mut display_math, mut inline_code, mut inline_math) = (false, false, false, false);
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
        // Inline code and math may continue on the next line of their paragraph: drop
        // everything between backticks, then between `$`s, across lines.
        if line.trim().is_empty() {
            (inline_code, inline_math) = (false, false);
        }
        // A ``double`` span (one that holds a backtick) counts as one.
        let mut l: String = line
            .replace("``", "`")
            .chars()
            .filter(|&c| {
                if c == '`' {
                    inline_code = !inline_code;
                }
                !inline_code && c != '`'
            })
            .collect();
        l = l
            .chars()
            .filter(|&c| {
                if c == '$' {
                    inline_math = !inline_math;
                }
                !inline_math && c != '$'
            })
            .collect();
        // Quoted model answers are checked against the results by `quotes_come_from_the_results`.
        l = strip_between(&l, '"', '"');
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
        // "Hu et al. (2021)", "Houlsby et al., 2019".
        rest = rest[k + word.len()..].trim_start_matches([' ', '\u{a0}', '(', ',']);
        rest = rest.trim_start_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '.' || c == ',');
    }
    out.push_str(rest);
    out
}

#[test]
fn measured_numbers_are_annotated_and_match_the_results() {
    let mut sources = Sources::new(&root().join("book"));
    let mut failures = Vec::new();
    for file in COVERED {
        let text = std::fs::read_to_string(root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let problems = match annotated::check(&text, &mut sources) {
            Ok(p) => p,
            Err(e) => {
                failures.push(format!("{file}: {e:#}"));
                continue;
            }
        };
        for p in problems {
            failures.push(format!("{file}:{}: {} (annotated `{}`): {}", p.line, p.shown, p.expr, p.error));
        }
        if PENDING.contains(file) {
            continue;
        }
        let rest = annotated::without_annotated(&text).unwrap();
        for (n, line) in numbers(&prose(&rest)) {
            let measured_like = n.contains('.') || n.parse::<u64>().is_ok_and(|x| x >= 100);
            if measured_like {
                failures.push(format!(
                    "{file}:{line}: {n} has no annotation (`<!--= data/FILE.json#/pointer -->{n}`, or `<!--=const-->{n}` for a fixed fact)"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "measured numbers not tied to the results (`bash scripts/book.sh numbers` rewrites annotated ones):\n{}",
        failures.join("\n")
    );
}

/// The chapters of `PENDING` that Part V quotes from: until they are annotated, every number of
/// their prose must at least be a value of the results files (at the precision shown).
const LOOSELY_CHECKED: [&str; 1] = ["ch13-00-impact-of-rank.md"];

#[test]
fn pending_part_five_numbers_appear_in_the_results() {
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
    for chapter in LOOSELY_CHECKED {
        let text = std::fs::read_to_string(root().join("book").join(chapter)).unwrap();
        let rest = annotated::without_annotated(&text).unwrap();
        for (n, line) in numbers(&prose(&rest)) {
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
            // Not the attributes of HTML tags (`data-quiz="ch12"`).
            for (i, quote) in strip_between(line, '<', '>').split('"').enumerate() {
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
         1. A list item with 1,234,567 parameters and `code 42` and $r = 64$ <b data-x=\"7\">.\n\
         SHA-256 on 127.0.0.1 (Hu et al., 2021) and $\\alpha\n= 2r$ and `max\nlen = 256` across lines.\n",
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

/// The annotation syntax, on a results file of its own.
#[test]
fn annotation_syntax() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("r.json"),
        r#"{"runs": [{"r": 8, "a": "x", "loss": 0.0412}, {"r": 16, "a": "x", "loss": 0.05}, {"r": 16, "a": "y", "loss": 2}], "a/b": 1234567}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("l.txt"), "$ cargo run\n{\"n\": 3}\n").unwrap();
    let mut s = Sources::new(dir.path());
    assert_eq!(s.value("r.json#/runs[r=8]/loss").unwrap(), 0.0412);
    assert_eq!(s.value("r.json#/runs[r=16][a=y]/loss").unwrap(), 2.0);
    assert_eq!(s.value("r.json#/runs/1/loss").unwrap(), 0.05);
    assert_eq!(s.value("r.json#/a~1b").unwrap(), 1234567.0);
    assert_eq!(s.value("l.txt#/n").unwrap(), 3.0);
    assert!(s.value("r.json#/runs[r=16]/loss").is_err(), "two elements match");
    assert_eq!(s.eval("100 * (1 - r.json#/runs[r=16][a=y]/loss / 4)").unwrap(), 50.0);
    let text = "a <!--= r.json#/runs[r=8]/loss -->0.04 b <!--=const-->7.5 c <!--= r.json#/a~1b -->1,000,000\n";
    let problems = annotated::check(text, &mut s).unwrap();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].shown, "1,000,000");
    let filled = annotated::fill(text, &mut s).unwrap();
    assert!(filled.ends_with("-->1,234,567\n"), "{filled}");
    assert!(annotated::check(&filled, &mut s).unwrap().is_empty());
    assert_eq!(annotated::without_annotated(text).unwrap(), "a  b  c \n");
    assert!(annotated::annotations("<!--=const-->1 at the start of a line").is_err());
    assert!(annotated::annotations("x <!--=const--> 1").is_err(), "the number must follow the annotation");
    assert_eq!(annotated::render(0.5, "1"), "0");
    assert_eq!(annotated::render(-1234.56, "1,0.0"), "-1,234.6");
    // The listing outputs Chapter 8 quotes are JSON after their command line.
    let mut book = Sources::new(&root().join("book"));
    assert!(book.value("listings/ch08_train.txt#/final_val_loss").is_ok());
}
