//! Datasets: every loader error names its file, line (or record) and field; saving round
//! trips; the synthetic tasks are deterministic and leak-free; the metrics mean what their
//! docs say; and the committed `data/` is exactly what the generator makes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use lorakit::chat::Message;
use lorakit::data::load::Location;
use lorakit::data::metrics::{facts_match, key_terms};
use lorakit::data::synth::{self, FACTS, Phrasings, prompt_key, synthesize_from};
use lorakit::data::{
    DataError, Record, SplitSizes, Task, check, exact_match, json_field_accuracy, load_dataset, persona_ok,
    save_dataset, split, synthesize, task_metric, task_splits,
};

/// Write `bytes` to `name` in a fresh temporary folder; the folder lives as long as the guard.
fn file(name: &str, bytes: impl AsRef<[u8]>) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    (dir, path)
}

fn load(name: &str, bytes: impl AsRef<[u8]>) -> anyhow::Result<Vec<Record>> {
    let (_dir, path) = file(name, bytes);
    load_dataset(&path)
}

/// The loader's error for this file, checked to name the file; with its structured form.
fn error(name: &str, bytes: impl AsRef<[u8]>) -> (String, DataError) {
    let err = load(name, bytes).expect_err("this dataset should be rejected");
    let text = err.to_string();
    assert!(text.contains(name), "the message should name the file: {text}");
    let data = err.downcast::<DataError>().expect("a DataError");
    (text, data)
}

fn assert_has(text: &str, parts: &[&str]) {
    for p in parts {
        assert!(text.contains(p), "expected {p:?} in: {text}");
    }
}

const GOOD: &str = r#"{"instruction": "Say hi.", "output": "Hi!"}"#;

// ---------------------------------------------------------------------------------------
// Loader errors.

#[test]
fn invalid_json_gives_line_and_column() {
    let (text, e) = error(
        "bad.json",
        "[\n  {\"instruction\": \"a\", \"output\": \"b\"},\n  {\"instruction\": \"c\" \"output\": \"d\"}\n]",
    );
    assert_eq!(e.location, Location::LineColumn(3, 23));
    assert_has(&text, &["bad.json line 3 column 23", "invalid JSON", "expected `,` or `}`"]);
}

#[test]
fn invalid_utf8_names_line_and_byte() {
    let (text, e) = error(
        "latin1.jsonl",
        b"{\"instruction\": \"a\", \"output\": \"b\"}\n{\"instruction\": \"caf\xe9\", \"output\": \"b\"}\n",
    );
    assert_eq!(e.location, Location::Line(2));
    assert_has(&text, &["latin1.jsonl line 2", "invalid UTF-8 at byte 56", "0xE9"]);
    // Offsets count the byte-order mark, as a hex editor shows the file.
    let (text, _) = error("bom.csv", b"\xEF\xBB\xBFinstruction,output\nok,\xFF\n");
    assert_has(&text, &["bom.csv line 2", "invalid UTF-8 at byte 25 (0xFF)"]);
}

#[test]
fn jsonl_bad_line_3_names_line_3() {
    let (text, e) = error("train.jsonl", format!("{GOOD}\n{GOOD}\n{{\"instruction\": \"x\",\n{GOOD}\n"));
    assert!(matches!(e.location, Location::LineColumn(3, _)), "{text}");
    assert_has(&text, &["train.jsonl line 3 column", "invalid JSON"]);
    // serde's own "line 1" (it only saw one line) must not leak into the message.
    assert!(!text.contains("line 1"), "{text}");
}

#[test]
fn missing_output() {
    let (text, e) = error("d.jsonl", format!("{GOOD}\n{{\"instruction\": \"Say hi.\"}}\n"));
    assert_eq!((e.location, e.field.as_deref()), (Location::Line(2), Some("output")));
    assert_eq!(text, format!("{} line 2: field \"output\": missing", e.file.display()));
}

#[test]
fn empty_instruction() {
    let (text, e) = error("d.jsonl", "{\"instruction\": \"  \", \"output\": \"Hi!\"}");
    assert_eq!(e.field.as_deref(), Some("instruction"));
    assert_has(&text, &["d.jsonl line 1", "field \"instruction\": empty"]);
}

#[test]
fn json_array_errors_name_the_record_and_its_line() {
    let (text, e) =
        error("data.json", format!("[\n  {GOOD},\n  {GOOD},\n  {{\"instruction\": \"x\",\n   \"output\": \"\"}}\n]"));
    assert_eq!(e.location, Location::Record { index: 3, line: 4 });
    assert_has(&text, &["data.json record 3 (line 4)", "field \"output\": empty"]);
}

#[test]
fn unknown_role() {
    let rec = r#"{"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "hello"}]}"#;
    let (text, e) = error("chat.jsonl", rec);
    assert_eq!(e.field.as_deref(), Some("messages[1].role"));
    assert_has(&text, &["chat.jsonl line 1", "unknown role \"bot\"", "system, user, assistant"]);
}

#[test]
fn messages_must_end_with_assistant() {
    let rec = r#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}, {"role": "user", "content": "bye"}]}"#;
    let (text, e) = error("chat.jsonl", format!("\n{rec}"));
    assert_eq!((e.location, e.field.as_deref()), (Location::Line(2), Some("messages")));
    assert_has(&text, &["must end with the assistant's answer", "\"user\""]);
}

#[test]
fn messages_need_a_user_and_system_only_first() {
    let no_user =
        r#"{"messages": [{"role": "system", "content": "Be nice."}, {"role": "assistant", "content": "hello"}]}"#;
    let (text, _) = error("chat.jsonl", no_user);
    assert_has(&text, &["field \"messages\": has no user message"]);
    let late_system = r#"{"messages": [{"role": "user", "content": "hi"}, {"role": "system", "content": "x"}, {"role": "assistant", "content": "hello"}]}"#;
    let (text, _) = error("chat.jsonl", late_system);
    assert_has(&text, &["field \"messages[1].role\"", "only come first"]);
    let (text, _) = error("chat.jsonl", r#"{"messages": []}"#);
    assert_has(&text, &["field \"messages\": empty"]);
}

#[test]
fn unknown_key_is_rejected_with_a_suggestion() {
    let (text, e) = error("typo.jsonl", r#"{"instruction": "Say hi.", "ouput": "Hi!"}"#);
    assert_eq!(e.field.as_deref(), Some("ouput"));
    assert_has(
        &text,
        &[
            "typo.jsonl line 1",
            "field \"ouput\": unknown key",
            "instruction, input, output, system; or messages",
            "did you mean \"output\"?",
        ],
    );
    let msg = r#"{"messages": [{"role": "user", "contnet": "hi"}, {"role": "assistant", "content": "x"}]}"#;
    let (text, _) = error("typo.jsonl", msg);
    assert_has(
        &text,
        &["field \"messages[0].contnet\": unknown key (allowed: role, content)", "did you mean \"content\"?"],
    );
}

#[test]
fn mixed_shapes_are_rejected() {
    let rec = r#"{"instruction": "x", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}"#;
    let (text, _) = error("mixed.jsonl", rec);
    assert_has(&text, &["field \"instruction\"", "either \"messages\" or instruction"]);
}

#[test]
fn non_string_content() {
    let rec = r#"{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": 42}]}"#;
    let (text, e) = error("chat.jsonl", rec);
    assert_eq!(e.field.as_deref(), Some("messages[1].content"));
    assert_has(&text, &["expected a string, found a number"]);
    let (text, _) = error("d.jsonl", r#"{"instruction": ["a"], "output": "b"}"#);
    assert_has(&text, &["field \"instruction\": expected a string, found an array"]);
    let (text, _) = error("d.jsonl", r#"{"messages": "hi"}"#);
    assert_has(&text, &["field \"messages\": expected an array of messages, found a string"]);
}

#[test]
fn jsonl_line_that_is_not_an_object() {
    let (text, e) = error("d.jsonl", format!("{GOOD}\n[1, 2]\n"));
    assert_eq!(e.location, Location::Line(2));
    assert_has(&text, &["expected a record (a JSON object), found an array"]);
}

#[test]
fn json_object_instead_of_array_suggests_jsonl() {
    let (text, _) = error("one.json", GOOD);
    assert_has(&text, &["expected a JSON array of records, found an object", ".jsonl"]);
}

#[test]
fn empty_file_and_empty_array() {
    for name in ["e.json", "e.jsonl", "e.csv"] {
        let (text, e) = error(name, "  \n\n");
        assert_eq!(e.location, Location::File);
        assert_has(&text, &["the file is empty"]);
    }
    let (text, _) = error("e.json", "[]");
    assert_has(&text, &["e.json: contains no records"]);
    let (text, _) = error("e.csv", "instruction,output\n");
    assert_has(&text, &["e.csv: contains no records"]);
}

#[test]
fn ragged_csv_row_names_its_line() {
    // A quoted cell spanning two lines: the ragged row is on line 5 of the file.
    let csv = "instruction,input,output\nSay hi.,,Hi!\n\"Say\nbye.\",,Bye!\nSay what?,oops\n";
    let (text, e) = error("rows.csv", csv);
    assert_eq!(e.location, Location::Line(5));
    assert_has(&text, &["rows.csv line 5", "2 cells but the header has 3"]);
}

#[test]
fn csv_without_needed_columns() {
    let (text, e) = error("cols.csv", "prompt,completion\na,b\n");
    assert_eq!(e.location, Location::Line(1));
    assert_has(&text, &["cols.csv line 1", "field \"prompt\": unknown column", "instruction,output"]);
    let (text, _) = error("cols.csv", "instruction,input\na,b\n");
    assert_has(&text, &["field \"output\": missing column"]);
    let (text, _) = error("cols.csv", "instruction,output,user\na,b,c\n");
    assert_has(&text, &["mixes the instruction and chat column sets"]);
    let (text, _) = error("cols.csv", "Instruction,output\na,b\n");
    assert_has(&text, &["did you mean \"instruction\"?"]);
}

#[test]
fn csv_empty_required_cell() {
    let (text, e) = error("cells.csv", "system,user,assistant\n,Hi,Hello\nBe brief.,Bye,\n");
    assert_eq!((e.location, e.field.as_deref()), (Location::Line(3), Some("assistant")));
    assert_has(&text, &["cells.csv line 3: field \"assistant\": empty"]);
}

#[test]
fn unknown_extension_and_missing_file() {
    let err = load("data.txt", GOOD).unwrap_err().to_string();
    assert_has(&err, &["data.txt", "unknown dataset format", ".jsonl"]);
    let err = load_dataset(Path::new("/nonexistent/d.jsonl")).unwrap_err();
    assert_has(&format!("{err:#}"), &["/nonexistent/d.jsonl"]);
}

// ---------------------------------------------------------------------------------------
// What loads, and how.

fn hi() -> Record {
    Record::new(vec![Message::new("user", "Say hi."), Message::new("assistant", "Hi!")])
}

#[test]
fn instruction_shape_becomes_a_chat() {
    let rec = r#"{"system": "Be brief.", "instruction": "Translate.", "input": "Bonjour", "output": "Hello"}"#;
    let got = load(
        "a.jsonl",
        format!("{rec}\n\n{GOOD}\n{{\"instruction\": \"Say hi.\", \"input\": null, \"output\": \"Hi!\"}}\n"),
    )
    .unwrap();
    let want = Record::new(vec![
        Message::new("system", "Be brief."),
        Message::new("user", "Translate.\n\nBonjour"),
        Message::new("assistant", "Hello"),
    ]);
    assert_eq!(got, vec![want, hi(), hi()]);
}

#[test]
fn bom_prefixed_files_load() {
    let bom = "\u{feff}";
    assert_eq!(load("b.json", format!("{bom}[{GOOD}]")).unwrap(), vec![hi()]);
    assert_eq!(load("b.jsonl", format!("{bom}{GOOD}\n")).unwrap(), vec![hi()]);
    assert_eq!(load("b.csv", format!("{bom}instruction,output\nSay hi.,Hi!\n")).unwrap(), vec![hi()]);
}

#[test]
fn crlf_files_load() {
    let csv = "instruction,input,output\r\nSay hi.,,Hi!\r\n\"Two\r\nlines\",x,\"a, b\"\r\n";
    let got = load("w.csv", csv).unwrap();
    assert_eq!(got[0], hi());
    assert_eq!(got[1].user(), Some("Two\r\nlines\n\nx"));
    assert_eq!(got[1].answer(), Some("a, b"));
    assert_eq!(load("w.jsonl", format!("{GOOD}\r\n\r\n{GOOD}\r\n")).unwrap(), vec![hi(), hi()]);
    // A CRLF file's errors still count lines right.
    let (text, _) = error("w.csv", "instruction,output\r\na,b\r\nc\r\n");
    assert_has(&text, &["w.csv line 3"]);
}

#[test]
fn chat_csv_loads() {
    let got = load("c.csv", "user,assistant,system\nSay hi.,Hi!,\n").unwrap();
    assert_eq!(got, vec![hi()]);
}

#[test]
fn save_and_load_round_trip() {
    let records = vec![
        synthesize(Task::Extract, 1, 1).remove(0),
        hi(),
        Record::new(vec![
            Message::new("user", "Ünïcödé \"quotes\"\nand lines"),
            Message::new("assistant", "a"),
            Message::new("user", "again"),
            Message::new("assistant", "b"),
        ]),
    ];
    let dir = tempfile::tempdir().unwrap();
    for name in ["r.json", "r.jsonl"] {
        let path = dir.path().join(name);
        save_dataset(&path, &records).unwrap();
        assert_eq!(load_dataset(&path).unwrap(), records, "{name}");
    }
    let err = save_dataset(&dir.path().join("r.csv"), &records).unwrap_err().to_string();
    assert_has(&err, &["r.csv", ".json or .jsonl"]);
    let bad = vec![hi(), Record::new(vec![Message::new("user", "no answer")])];
    let err = save_dataset(&dir.path().join("bad.jsonl"), &bad).unwrap_err().to_string();
    assert_has(&err, &["bad.jsonl", "record 2", "field \"messages\""]);
    assert!(!dir.path().join("bad.jsonl").exists());
}

// ---------------------------------------------------------------------------------------
// Synthetic tasks.

#[test]
fn synthesis_is_deterministic() {
    for task in Task::ALL {
        let a = synthesize(task, 200, 7);
        assert_eq!(a.len(), 200);
        assert_eq!(a, synthesize(task, 200, 7), "{task}: same seed, same data");
        assert_ne!(a, synthesize(task, 200, 8), "{task}: another seed, other data");
        let keys: HashSet<String> = a.iter().map(prompt_key).collect();
        assert_eq!(keys.len(), a.len(), "{task}: prompts are distinct");
        for r in &a {
            r.validate().unwrap();
            assert_eq!(r.system(), task.system_prompt());
        }
        let s = task_splits(task, synth::BOOK_SIZES, 3).unwrap();
        assert_eq!(s, task_splits(task, synth::BOOK_SIZES, 3).unwrap());
        assert_eq!((s.train.len(), s.validation.len(), s.test.len()), (300, 40, 120));
        // A smaller test is a prefix of the bigger one, and train and validation do not move.
        let small = task_splits(task, SplitSizes { test: 60, ..synth::BOOK_SIZES }, 3).unwrap();
        assert_eq!((&small.train, &small.validation, &small.test[..]), (&s.train, &s.validation, &s.test[..60]));
    }
}

#[test]
fn too_many_asked_returns_fewer() {
    // Support has 25 facts × 5 phrasings × 5 openers × 4 closers = 2500 distinct questions.
    let got = synthesize(Task::Support, 5000, 1);
    assert!(got.len() < 5000 && got.len() <= 2500 && got.len() > 2000, "{}", got.len());
    let err =
        task_splits(Task::Support, SplitSizes { train: 2000, validation: 500, test: 2500 }, 1).unwrap_err().to_string();
    assert_has(&err, &["support templates make only"]);
}

#[test]
fn no_test_leakage_in_task_splits() {
    for task in Task::ALL {
        let s = task_splits(task, synth::BOOK_SIZES, 42).unwrap();
        let train: HashSet<String> = s.train.iter().chain(&s.validation).map(prompt_key).collect();
        assert!(s.test.iter().all(|r| !train.contains(&prompt_key(r))), "{task}");
    }
    // Support's test questions are phrasings train never saw.
    let s = task_splits(Task::Support, synth::BOOK_SIZES, 42).unwrap();
    let held_out = |r: &Record| {
        let user = r.user().unwrap().to_lowercase();
        FACTS.iter().any(|f| user.contains(&f.questions[4][1..].to_lowercase()))
    };
    assert!(s.test.iter().all(held_out));
    assert!(!s.train.iter().any(held_out));
    // Extract's test has templates train never saw, and the Persona test too.
    for task in [Task::Extract, Task::Persona] {
        let seen: HashSet<String> = synthesize_from(task, Phrasings::Seen, 2000, 5).iter().map(prompt_key).collect();
        let test = synthesize_from(task, Phrasings::HeldOut, 200, 5);
        assert!(test.iter().all(|r| !seen.contains(&prompt_key(r))), "{task}");
    }
}

#[test]
fn split_dedups_and_is_deterministic() {
    let mut records = synthesize(Task::Persona, 200, 9);
    // Repeat 50 prompts with different answers: a split must not put copies on both sides.
    for r in records.clone().iter().take(50) {
        let mut copy = r.clone();
        copy.messages.last_mut().unwrap().content = "Aye! Something else. Fair winds.".into();
        copy.messages[0].content = format!("  {}  ", copy.messages[0].content.to_uppercase());
        records.push(copy);
    }
    let s = split(&records, 1, 0.2, 0.1).unwrap();
    assert_eq!((s.test.len(), s.validation.len(), s.train.len()), (40, 20, 140));
    let keys = |rs: &[Record]| rs.iter().map(prompt_key).collect::<HashSet<_>>();
    assert!(keys(&s.test).is_disjoint(&keys(&s.train)));
    assert!(keys(&s.validation).is_disjoint(&keys(&s.train)));
    assert_eq!(s, split(&records, 1, 0.2, 0.1).unwrap());
    assert_ne!(s.test, split(&records, 2, 0.2, 0.1).unwrap().test);
    assert!(split(&records, 1, 0.6, 0.5).is_err());
    assert!(split(&records, 1, -0.1, 0.0).is_err());
}

// ---------------------------------------------------------------------------------------
// Metrics.

#[test]
fn exact_match_normalises_whitespace_only() {
    assert!(exact_match("  Paris \n is   nice ", "Paris is nice"));
    assert!(!exact_match("paris is nice", "Paris is nice"));
    assert!(!exact_match("Paris is nice.", "Paris is nice"));
}

#[test]
fn json_field_accuracy_counts_gold_fields() {
    let gold = r#"{"name":"Nadia","city":"Oslo","product":"Solar Lantern","quantity":3}"#;
    assert_eq!(json_field_accuracy(gold, gold), 1.0);
    assert_eq!(
        json_field_accuracy(r#" {"quantity":3.0,"product":"Solar Lantern","city":"Oslo","name":"Nadia","x":1} "#, gold),
        1.0
    );
    assert_eq!(
        json_field_accuracy(r#"{"name":"Nadia","city":"oslo","product":"Solar Lantern","quantity":"3"}"#, gold),
        0.5
    );
    assert_eq!(json_field_accuracy(r#"{"name":"Nadia"}"#, gold), 0.25);
    assert_eq!(json_field_accuracy("Sure! {\"name\":\"Nadia\"}", gold), 0.0);
    assert_eq!(json_field_accuracy("```json\n{}\n```", gold), 0.0);
    assert_eq!(json_field_accuracy("[1, 2]", "[1, 2.0]"), 1.0);
}

#[test]
fn persona_markers() {
    assert!(persona_ok("  Aye! Paris it be. Fair winds.\n"));
    assert!(!persona_ok("Paris. Fair winds."));
    assert!(!persona_ok("Aye! Paris."));
    assert!(!persona_ok("aye! Paris. Fair winds."));
}

#[test]
fn key_terms_are_numbers_names_and_yes_no() {
    assert_eq!(key_terms("The warranty on Brightbox lasts 3 years from the date of purchase."), ["Brightbox", "3"]);
    assert_eq!(key_terms("No, Brightbox is rated IP20 and is for indoor use only."), ["No", "Brightbox", "IP20"]);
    assert_eq!(key_terms("Aye! The capital of France be Paris, matey. Fair winds."), ["France", "Paris"]);
    assert_eq!(key_terms("Aye! 7 plus 5 makes 12, matey. Fair winds."), ["7", "5", "12"]);
    assert!(facts_match("Your Brightbox is covered for 3 years.", "The warranty on Brightbox lasts 3 years."));
    assert!(!facts_match("Your Brightbox is covered for 2 years.", "The warranty on Brightbox lasts 3 years."));
    assert!(!facts_match("Yes, Brightbox is IP20 rated.", "No, Brightbox is rated IP20."));
    assert!(facts_match("all good", "all good"), "no key terms: exact match");
}

#[test]
fn support_facts_are_told_apart_by_the_metric() {
    for (i, a) in FACTS.iter().enumerate() {
        assert!(!key_terms(a.answer).is_empty(), "fact {i} has no key terms: {}", a.answer);
        assert_eq!(task_metric(Task::Support, a.answer, a.answer), 1.0);
        for (j, b) in FACTS.iter().enumerate() {
            if i != j {
                assert_eq!(
                    task_metric(Task::Support, a.answer, b.answer),
                    0.0,
                    "fact {i}'s answer passes as fact {j}'s"
                );
            }
        }
    }
}

#[test]
fn task_metrics() {
    let gold = r#"{"name":"Aiko","city":"Lima","product":"Yoga Mat","quantity":2}"#;
    assert_eq!(
        task_metric(Task::Extract, r#"{"name":"Aiko","city":"Lima","product":"Yoga Mat","quantity":3}"#, gold),
        0.75
    );
    let gold = "Aye! The capital of France be Paris, matey. Fair winds.";
    assert_eq!(task_metric(Task::Persona, "Aye! Paris be the capital of France. Fair winds.", gold), 1.0);
    assert_eq!(task_metric(Task::Persona, "The capital of France is Paris.", gold), 0.0, "no style");
    assert_eq!(task_metric(Task::Persona, "Aye! The capital of France be Lyon. Fair winds.", gold), 0.0, "wrong fact");
    // Every generated gold answer scores 1 against itself.
    for task in Task::ALL {
        for r in synthesize(task, 300, 11) {
            let a = r.answer().unwrap();
            assert_eq!(task_metric(task, a, a), 1.0, "{task}: {a}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Dataset report.

#[test]
fn dataset_report() {
    let mut records = synthesize(Task::Support, 20, 1);
    records.push(records[3].clone());
    let words = |r: &Record| Ok(r.messages.iter().map(|m| m.content.split_whitespace().count()).sum());
    let report = check(&records, words, 30).unwrap();
    assert_eq!(report.records, 21);
    assert_eq!(report.duplicates, vec![20]);
    assert_eq!(report.roles["system"], 21);
    assert_eq!(report.roles["assistant"], 21);
    assert!(report.tokens.min <= report.tokens.p50 && report.tokens.p50 <= report.tokens.p95);
    assert!(report.tokens.p95 <= report.tokens.max);
    assert!(report.over_max_len.iter().all(|&i| words(&records[i]).unwrap() > 30));
    let shown = report.to_string();
    assert_has(
        &shown,
        &["records:     21", "duplicates:  1 (records 20)", "roles:       assistant 21, system 21, user 21", "p95"],
    );
    let err = check(&records, |_| anyhow::bail!("no tokenizer"), 30).unwrap_err();
    assert_has(&format!("{err:#}"), &["record 1", "no tokenizer"]);
    assert!(check(&[], words, 30).is_err());
}

// ---------------------------------------------------------------------------------------
// The committed data.

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../data")
}

#[test]
fn committed_data_matches_generator() {
    for (rel, bytes) in synth::book_datasets().unwrap() {
        let path = data_dir().join(&rel);
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == bytes,
            "{} differs from the generator's output; run `cargo run -p lorakit --example make_datasets`",
            path.display()
        );
    }
}

/// The unseen test splits earn their name: nothing they ask about (Extract's names, cities
/// and products; Support's held-out answers; Persona's new facts) occurs as a word sequence
/// anywhere else in `data/`, and each record asks about one of those things.
#[test]
fn unseen_tests_share_nothing_with_the_other_files() {
    let words_of = |text: &str| -> Vec<String> {
        text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_string).collect()
    };
    // Every other file's words, split once for all three tasks.
    let others: Vec<(PathBuf, Vec<String>)> = synth::book_datasets()
        .unwrap()
        .into_iter()
        .filter(|(rel, _)| !rel.ends_with("test_unseen.jsonl"))
        .map(|(rel, bytes)| (rel, words_of(std::str::from_utf8(&bytes).unwrap())))
        .collect();
    for task in Task::ALL {
        let values = synth::unseen_values(task);
        let unseen = load_dataset(&data_dir().join(task.name()).join("test_unseen.jsonl")).unwrap();
        assert!(unseen.len() >= 100, "{task}: {} unseen records", unseen.len());
        for (rel, words) in &others {
            for v in &values {
                let v = words_of(v);
                assert!(
                    !words.windows(v.len()).any(|w| w == v.as_slice()),
                    "{} contains {}",
                    rel.display(),
                    v.join(" ")
                );
            }
        }
        for r in &unseen {
            r.validate().unwrap();
            let answer = r.answer().unwrap();
            match task {
                Task::Extract => {
                    let gold: serde_json::Value = serde_json::from_str(answer).unwrap();
                    for key in ["name", "city", "product"] {
                        let v = gold[key].as_str().unwrap();
                        assert!(values.contains(&v), "{v} is not an unseen {key}");
                        // The message names the value (the product maybe in the plural).
                        assert!(r.user().unwrap().contains(v) || key == "product", "{v} missing from {:?}", r.user());
                    }
                }
                _ => assert!(values.iter().any(|v| answer.contains(v)), "{task}: {answer} is not about an unseen fact"),
            }
        }
    }
}

#[test]
fn committed_data_loads() {
    let splits = task_splits(Task::Extract, synth::BOOK_SIZES, 42).unwrap();
    assert_eq!(load_dataset(&data_dir().join("extract/train.jsonl")).unwrap(), splits.train);
    // The Alpaca-shaped copies put the system prompt in the user turn, the answers unchanged.
    let sample = load_dataset(&data_dir().join("sample_dataset.json")).unwrap();
    let csv = load_dataset(&data_dir().join("training_examples.csv")).unwrap();
    assert_eq!((sample.len(), csv.len()), (460, 300));
    assert_eq!(&sample[..300], &csv[..]);
    for (a, b) in csv.iter().zip(&splits.train) {
        assert_eq!(a.answer(), b.answer());
        assert_eq!(a.user().unwrap(), format!("{}\n\n{}", b.system().unwrap(), b.user().unwrap()));
    }
}

#[test]
fn prompting_baselines_keep_the_question_and_answer() {
    use lorakit::data::prompting::{few_shot, instructions, with_instructions};
    let test = task_splits(Task::Support, synth::BOOK_SIZES, 42).unwrap().test;
    let pool = task_splits(Task::Support, synth::BOOK_SIZES, 42).unwrap().train;
    // Told the task: the system prompt is replaced, the conversation kept.
    let told = with_instructions(Task::Support, &test[..5]);
    for (t, r) in told.iter().zip(&test) {
        assert_eq!(t.system(), Some(instructions(Task::Support).as_str()));
        assert_eq!((t.user(), t.answer()), (r.user(), r.answer()));
        assert_eq!(t.messages.len(), r.messages.len());
    }
    // The support instructions hold every fact's answer, the held-out ones too.
    let sheet = instructions(Task::Support);
    assert!(FACTS.iter().chain(&synth::HELD_OUT_FACTS).all(|f| sheet.contains(f.answer)));
    // Persona records have no system prompt: they get one.
    let persona = task_splits(Task::Persona, synth::BOOK_SIZES, 42).unwrap().test;
    assert_eq!(persona[0].system(), None);
    assert!(with_instructions(Task::Persona, &persona[..1])[0].system().unwrap().contains("Aye!"));
    // Shown k examples: the same k training conversations before every question, after its
    // own system prompt; another seed draws others.
    let shown = few_shot(&test[..5], &pool, 3, 42);
    for (s, r) in shown.iter().zip(&test) {
        assert_eq!(s.messages.len(), r.messages.len() + 6);
        assert_eq!(s.messages[0], r.messages[0]);
        assert_eq!(s.messages[1..7], shown[0].messages[1..7]);
        assert_eq!(s.messages[7..], r.messages[1..]);
        for pair in s.messages[1..7].chunks(2) {
            assert!(pool.iter().any(|p| p.messages[1..] == *pair), "a shot is a training example");
        }
    }
    assert_ne!(few_shot(&test[..1], &pool, 3, 43)[0].messages[1..7], shown[0].messages[1..7]);
    let users: HashSet<&str> = shown[0].messages[1..7].iter().step_by(2).map(|m| m.content.as_str()).collect();
    assert_eq!(users.len(), 3, "three distinct examples");
}
