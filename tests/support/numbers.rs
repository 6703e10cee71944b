//! Measured numbers in the book's prose, tied to the results they come from.
//!
//! A number the code measured carries an invisible annotation right before it:
//!
//! ```text
//! the loss fell to <!--= data/experiments/rank.json#/results/runs[r=16]/val_loss -->0.050
//! ```
//!
//! * The part before `#` is a file relative to `book/`: a results JSON (`data/…`) or a listing
//!   output (`listings/NAME.txt`, whose body after the `$ command` line is JSON).
//! * The part after `#` is an RFC 6901 JSON pointer, with array selectors `[key=value]`
//!   that pick the one element whose `key` equals `value` (`/runs[r=16][alpha=32]`).
//! * An annotation may hold a small expression of such values and numbers, with `+ - * /` and
//!   parentheses, for a value the prose derives: `100 * (1 - a.json#/x / a.json#/y)`.
//! * `<!--=const-->` marks a number that is a fixed fact (a definition, a setting of the
//!   text itself), not a measurement.
//!
//! The number shown after the annotation must be the value rounded to the decimals shown;
//! thousands separators (`1,234`) are kept if shown. [`fill`] rewrites the shown numbers from
//! the values (`bash scripts/book.sh numbers`), [`check`] reports every one that differs.
//! An annotation must not start a line: a line that opens with `<!--` is an HTML block to
//! Markdown, and the rest of its paragraph would not be rendered as Markdown.

use anyhow::{Context, Result, bail};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The files whose measured numbers must be annotated, relative to the repository root.
pub const COVERED: &[&str] = &[
    "README.md",
    "book/ch08-00-the-training-step.md",
    "book/ch12-00-before-and-after.md",
    "book/ch13-00-impact-of-rank.md",
    "book/ch14-00-domain-use-cases.md",
    "book/ch15-00-training-efficiency.md",
    "book/appendix-01-lora-theory-in-depth.md",
    "book/appendix-02-troubleshooting.md",
    "book/appendix-03-advanced-usage.md",
    "book/appendix-04-glossary.md",
    "book/appendix-05-how-this-book-is-checked.md",
];

/// Files of `COVERED` whose unannotated numbers are not checked (none: kept for a file that is
/// being rewritten).
pub const PENDING: &[&str] = &[];

const OPEN: &str = "<!--=";
const CLOSE: &str = "-->";

/// One annotated number of a markdown file.
#[derive(Debug, Clone)]
pub struct Annotation {
    /// 1-based line.
    pub line: usize,
    /// The expression (`None` for `<!--=const-->`).
    pub expr: Option<String>,
    /// The number as shown, and its byte range in the file.
    pub shown: String,
    pub range: std::ops::Range<usize>,
}

/// The annotations of a markdown text, in order. An annotation without a number right after
/// it, or one that starts a line, is an error naming the line.
pub fn annotations(text: &str) -> Result<Vec<Annotation>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(k) = text[from..].find(OPEN) {
        let start = from + k;
        let line = text[..start].matches('\n').count() + 1;
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        if text[line_start..start].trim().is_empty() {
            bail!("line {line}: an annotation must not start a line (Markdown would read the line as an HTML block)");
        }
        let body_start = start + OPEN.len();
        let Some(e) = text[body_start..].find(CLOSE) else {
            bail!("line {line}: annotation without `{CLOSE}`");
        };
        let body = text[body_start..body_start + e].trim();
        let num_start = body_start + e + CLOSE.len();
        let len = shown_len(&text[num_start..]);
        if len == 0 {
            bail!("line {line}: annotation `{body}` is not followed by a number");
        }
        let expr = if body == "const" { None } else { Some(body.to_string()) };
        out.push(Annotation {
            line,
            expr,
            shown: text[num_start..num_start + len].to_string(),
            range: num_start..num_start + len,
        });
        from = num_start + len;
    }
    Ok(out)
}

/// The length of the number at the start of `s`: an optional minus sign, digits with optional
/// thousands separators, an optional decimal part.
fn shown_len(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = i;
    while i < b.len()
        && (b[i].is_ascii_digit()
            || (b[i] == b',' && i > digits && b.len() >= i + 4 && b[i + 1..i + 4].iter().all(u8::is_ascii_digit)))
    {
        i += 1;
    }
    if i == digits {
        return 0;
    }
    if b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
    }
    i
}

/// `value` written like `shown`: the same number of decimals, thousands separators if
/// `shown` has them.
pub fn render(value: f64, shown: &str) -> String {
    let decimals = shown.split_once('.').map_or(0, |(_, d)| d.len());
    let s = format!("{value:.decimals$}");
    if !shown.contains(',') {
        return s;
    }
    let (sign, rest) = s.strip_prefix('-').map_or(("", s.as_str()), |r| ("-", r));
    let (int, frac) = rest.split_once('.').map_or((rest, None), |(i, f)| (i, Some(f)));
    let mut grouped = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    format!("{sign}{grouped}{}", frac.map(|f| format!(".{f}")).unwrap_or_default())
}

/// Reads the results files an expression names, once each.
pub struct Sources {
    book: PathBuf,
    cache: HashMap<String, serde_json::Value>,
}

impl Sources {
    /// `book` is the folder the file names are relative to.
    pub fn new(book: &Path) -> Self {
        Sources { book: book.to_path_buf(), cache: HashMap::new() }
    }

    fn file(&mut self, name: &str) -> Result<&serde_json::Value> {
        if !self.cache.contains_key(name) {
            let path = self.book.join(name);
            let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            // A listing output: the command line, then what it printed.
            let body = if name.ends_with(".txt") {
                text.lines().skip_while(|l| l.starts_with("$ ")).collect::<Vec<_>>().join("\n")
            } else {
                text
            };
            let v = serde_json::from_str(&body).with_context(|| format!("{} is not JSON", path.display()))?;
            self.cache.insert(name.to_string(), v);
        }
        Ok(&self.cache[name])
    }

    /// The number at `file#pointer`.
    pub fn value(&mut self, reference: &str) -> Result<f64> {
        let (file, pointer) = reference.split_once('#').with_context(|| format!("`{reference}`: no `#pointer`"))?;
        let v = resolve(self.file(file)?, pointer).with_context(|| format!("`{reference}`"))?;
        v.as_f64().with_context(|| format!("`{reference}` is {v}, not a number"))
    }

    /// The value of an annotation's expression.
    pub fn eval(&mut self, expr: &str) -> Result<f64> {
        let tokens = tokenize(expr)?;
        let mut p = Parser { tokens, pos: 0, sources: self };
        let v = p.sum()?;
        if p.pos != p.tokens.len() {
            bail!("`{expr}`: unexpected `{}`", p.tokens[p.pos]);
        }
        Ok(v)
    }
}

/// An RFC 6901 pointer with `[key=value]` selectors on array segments.
pub fn resolve<'a>(root: &'a serde_json::Value, pointer: &str) -> Result<&'a serde_json::Value> {
    let Some(rest) = pointer.strip_prefix('/') else {
        bail!("a pointer starts with `/`");
    };
    let mut v = root;
    for segment in rest.split('/') {
        let (name, selectors) = segment.find('[').map_or((segment, ""), |k| (&segment[..k], &segment[k..]));
        if !name.is_empty() {
            let name = name.replace("~1", "/").replace("~0", "~");
            v = match v {
                serde_json::Value::Object(o) => o.get(&name).with_context(|| format!("no key `{name}`"))?,
                serde_json::Value::Array(a) => {
                    let i: usize = name.parse().with_context(|| format!("`{name}` is not an array index"))?;
                    a.get(i).with_context(|| format!("index {i} past the end ({} elements)", a.len()))?
                }
                _ => bail!("`{name}` inside a scalar"),
            };
        }
        let mut conditions = Vec::new();
        let mut s = selectors;
        while !s.is_empty() {
            let inner =
                s.strip_prefix('[').and_then(|t| t.split_once(']')).with_context(|| format!("bad selector `{s}`"))?;
            let (key, want) =
                inner.0.split_once('=').with_context(|| format!("selector `[{}]` without `=`", inner.0))?;
            conditions.push((key, want));
            s = inner.1;
        }
        if conditions.is_empty() {
            continue;
        }
        let items = v.as_array().with_context(|| format!("selector on `{segment}`, which is not an array"))?;
        let matches: Vec<_> =
            items.iter().filter(|x| conditions.iter().all(|(k, want)| field_is(x, k, want))).collect();
        match matches.as_slice() {
            [one] => v = one,
            [] => bail!("no element of `{segment}` matches"),
            many => bail!("{} elements of `{segment}` match; add a selector", many.len()),
        }
    }
    Ok(v)
}

fn field_is(x: &serde_json::Value, key: &str, want: &str) -> bool {
    match x.get(key) {
        Some(serde_json::Value::String(s)) => s == want,
        Some(serde_json::Value::Number(n)) => want.parse::<f64>().is_ok_and(|w| n.as_f64() == Some(w)),
        Some(serde_json::Value::Bool(b)) => want == if *b { "true" } else { "false" },
        Some(serde_json::Value::Null) => want == "null",
        _ => false,
    }
}

fn tokenize(expr: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = expr.trim_start();
    while let Some(c) = rest.chars().next() {
        let len = if "+-*/()".contains(c) {
            1
        } else {
            // A number or a `file#pointer`: everything up to the next space or parenthesis.
            rest.find(|c: char| c.is_whitespace() || c == '(' || c == ')').unwrap_or(rest.len())
        };
        out.push(rest[..len].to_string());
        rest = rest[len..].trim_start();
    }
    if out.is_empty() {
        bail!("empty annotation");
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: Vec<String>,
    pos: usize,
    sources: &'a mut Sources,
}

impl Parser<'_> {
    fn next_is(&self, t: &str) -> bool {
        self.tokens.get(self.pos).is_some_and(|x| x == t)
    }

    fn sum(&mut self) -> Result<f64> {
        let mut v = self.product()?;
        while self.next_is("+") || self.next_is("-") {
            let plus = self.next_is("+");
            self.pos += 1;
            let r = self.product()?;
            v = if plus { v + r } else { v - r };
        }
        Ok(v)
    }

    fn product(&mut self) -> Result<f64> {
        let mut v = self.atom()?;
        while self.next_is("*") || self.next_is("/") {
            let times = self.next_is("*");
            self.pos += 1;
            let r = self.atom()?;
            v = if times { v * r } else { v / r };
        }
        Ok(v)
    }

    fn atom(&mut self) -> Result<f64> {
        let Some(t) = self.tokens.get(self.pos).cloned() else {
            bail!("expression ends too early");
        };
        self.pos += 1;
        match t.as_str() {
            "(" => {
                let v = self.sum()?;
                if !self.next_is(")") {
                    bail!("missing `)`");
                }
                self.pos += 1;
                Ok(v)
            }
            "-" => Ok(-self.atom()?),
            _ if t.contains('#') => self.sources.value(&t),
            _ => t.parse().with_context(|| format!("`{t}` is neither a number nor a `file#pointer`")),
        }
    }
}

/// An annotated number that does not match its value, or whose value cannot be found.
#[derive(Debug)]
pub struct Problem {
    pub line: usize,
    pub shown: String,
    pub expr: String,
    /// What the number should read, or why the value cannot be found.
    pub error: String,
}

/// Every annotation of `text` whose value differs from the number shown, or fails to resolve.
pub fn check(text: &str, sources: &mut Sources) -> Result<Vec<Problem>> {
    let mut problems = Vec::new();
    for a in annotations(text)? {
        let Some(expr) = &a.expr else { continue };
        let error = match sources.eval(expr) {
            Ok(v) if render(v, &a.shown) == a.shown => continue,
            Ok(v) => format!("the value is {v}, which reads {}", render(v, &a.shown)),
            Err(e) => format!("{e:#}"),
        };
        problems.push(Problem { line: a.line, shown: a.shown, expr: expr.clone(), error });
    }
    Ok(problems)
}

/// `text` with every annotated number rewritten from its value, at the precision shown.
pub fn fill(text: &str, sources: &mut Sources) -> Result<String> {
    let mut out = String::new();
    let mut at = 0;
    for a in annotations(text)? {
        let Some(expr) = &a.expr else { continue };
        let v = sources.eval(expr).with_context(|| format!("line {}", a.line))?;
        out.push_str(&text[at..a.range.start]);
        out.push_str(&render(v, &a.shown));
        at = a.range.end;
    }
    out.push_str(&text[at..]);
    Ok(out)
}

/// `text` with every annotation and its number removed: what is left for the check of
/// unannotated numbers.
pub fn without_annotated(text: &str) -> Result<String> {
    let mut out = String::new();
    let mut at = 0;
    for a in annotations(text)? {
        let start = text[..a.range.start].rfind(OPEN).expect("an annotation opens before its number");
        out.push_str(&text[at..start]);
        at = a.range.end;
    }
    out.push_str(&text[at..]);
    Ok(out)
}
