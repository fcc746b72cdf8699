//! Cross-checks `canonicalize` against a real JS engine: node runs the
//! a recursive key sort (plain assignment, as docs/interface.md describes the sender) + `JSON.stringify` over the same
//! generated texts. One node process serves the whole run: every case goes
//! through it in one batch, and a failure is then shrunk with proptest by
//! asking the same process again.
//!
//! Without `node` on PATH the test says `SKIPPED canonical oracle: node not
//! found` on stderr and returns. `PROPTEST_CASES` overrides the case count.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use garrison_contracts::canonicalize;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

const DEFAULT_CASES: usize = 2000;

/// Reads one JSON-string-encoded input per line and answers one line each:
/// the canonical text as a JSON string, or `null` when JSON.parse throws.
/// `sortKeys` rebuilds each object by plain assignment in `Object.keys().sort()`
/// order — the way a JS sender does it, `__proto__` setter included.
const ORACLE: &str = r#"
function sortKeys(value) {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value === null || typeof value !== 'object') return value;
  const out = {};
  for (const key of Object.keys(value).sort()) out[key] = sortKeys(value[key]);
  return out;
}
const rl = require('readline').createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  const text = JSON.parse(line);
  let out = null;
  try { out = JSON.stringify(sortKeys(JSON.parse(text))); } catch (e) { out = null; }
  process.stdout.write(JSON.stringify(out) + '\n');
});
"#;

struct Oracle {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Oracle {
    /// `None` when there is no `node` to run.
    fn spawn() -> Option<Oracle> {
        let spawned = Command::new("node")
            .args(["-e", ORACLE])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("cannot start node: {e}"),
        };
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Some(Oracle {
            child,
            stdin,
            stdout,
        })
    }

    /// Node's answers, in order. Writes from a thread so neither pipe can
    /// fill up while the other side waits.
    fn ask(&mut self, inputs: &[String]) -> Vec<Option<String>> {
        let mut stdin = self.stdin.take().unwrap();
        let lines: Vec<String> = inputs.iter().map(|t| ascii_json_string(t)).collect();
        let writer = std::thread::spawn(move || {
            for line in lines {
                stdin.write_all(line.as_bytes()).unwrap();
                stdin.write_all(b"\n").unwrap();
            }
            stdin.flush().unwrap();
            stdin
        });
        let answers = (0..inputs.len())
            .map(|_| {
                let mut line = String::new();
                let n = self.stdout.read_line(&mut line).unwrap();
                assert!(n > 0, "node exited early");
                serde_json::from_str::<Option<String>>(&line).unwrap()
            })
            .collect();
        self.stdin = Some(writer.join().unwrap());
        answers
    }
}

impl Drop for Oracle {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

/// A JSON string literal in pure ASCII, so no line splitter can mistake
/// U+2028 or a CR in the input for a line end.
fn ascii_json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for unit in text.encode_utf16() {
        match unit {
            0x22 => out.push_str("\\\""),
            0x5c => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(unit as u8)),
            _ => out.push_str(&format!("\\u{unit:04x}")),
        }
    }
    out.push('"');
    out
}

/// `Ok` when Rust and node agree on `input`.
fn compare(input: &str, node: &Option<String>) -> Result<(), String> {
    match (canonicalize(input.as_bytes()), node) {
        (Ok(ours), Some(theirs)) if ours == theirs.as_bytes() => Ok(()),
        (Err(_), None) => Ok(()),
        (ours, theirs) => Err(format!(
            "input:  {input:?}\nnode:   {theirs:?}\nrust:   {:?}",
            ours.map(|b| String::from_utf8_lossy(&b).into_owned())
        )),
    }
}

// ---- generators: JSON *texts*, so spelling (escapes, number forms,
// whitespace, duplicate keys) is under the test's control.

fn ws() -> impl Strategy<Value = &'static str> + Clone {
    select(vec!["", "", "", "", " ", "\n", "\t", "\r\n  "])
}

/// Raw characters a JSON string may hold unescaped.
const RAW: &[&str] = &[
    "a",
    "Z",
    "0",
    " ",
    "~",
    "'",
    "{",
    "]",
    ":",
    ",",
    "/",
    "é",
    "中",
    "\u{2028}",
    "\u{2029}",
    "\u{feff}",
    "\u{ffff}",
    "\u{fffe}",
    "\u{e000}",
    "\u{301}",
    "e\u{301}",
    "\u{7f}",
    "\u{80}",
    "\u{a0}",
    "😀",
    "\u{10ffff}",
    "\u{10000}",
    "👩\u{200d}💻",
];

/// Escape sequences, including every surrogate shape.
const ESCAPES: &[&str] = &[
    r#"\""#,
    r"\\",
    r"\/",
    r"\b",
    r"\f",
    r"\n",
    r"\r",
    r"\t",
    r"\u2028",
    r"\u2029",
    r"\ud800",
    r"\udfff",
    r"\uDBFF\uDFFF",
    r"\uD83D\uDE00",
    r"\ud83d\ude00",
    r"\ud83d",
    r"\ude00",
    r"\udc00\ud800",
    r"\u0041",
    r"\u00e9",
    r"\u00E9",
    r"\u0000",
    r"\u007f",
    r"\u007F",
    r"\uffff",
    r"\uFEFF",
    r"\u0022",
    r"\u005c",
];

fn string_piece() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 _.,:;!?#$%&'()*+<=>@^`{|}~-]{1,6}",
        3 => select(RAW).prop_map(String::from),
        3 => select(ESCAPES).prop_map(String::from),
        // Every control character, escaped in either hex case.
        2 => (0u16..0x20, any::<bool>()).prop_map(|(c, upper)| if upper {
            format!("\\u{c:04X}")
        } else {
            format!("\\u{c:04x}")
        }),
        1 => any::<u16>().prop_map(|u| format!("\\u{u:04x}")),
        1 => any::<char>()
            .prop_filter("must be raw-able", |c| *c >= ' ' && *c != '"' && *c != '\\')
            .prop_map(String::from),
    ]
    .boxed()
}

fn string_literal() -> BoxedStrategy<String> {
    prop::collection::vec(string_piece(), 0..5)
        .prop_map(|pieces| format!("\"{}\"", pieces.concat()))
        .boxed()
}

/// Key bodies (inside the quotes): index-like and near-index, prototype
/// names, the same key spelt differently, and UTF-16 vs code point order.
const KEYS: &[&str] = &[
    "0",
    "1",
    "2",
    "10",
    "01",
    "00",
    "-1",
    "-0",
    "4294967294",
    "4294967295",
    "4294967296",
    "9007199254740993",
    "1.0",
    "1e3",
    " 1",
    "+1",
    "a",
    r"\u0061",
    "b",
    "A",
    "B",
    "_",
    "__proto__",
    r"__proto\u005f_",
    "__proto",
    "constructor",
    "toString",
    "hasOwnProperty",
    "length",
    "toJSON",
    "",
    "é",
    r"\u00e9",
    "e\u{301}",
    "😀",
    r"\ud83d\ude00",
    r"\ud800",
    r"\udfff",
    r"\uffff",
    "\u{ffff}",
    "\u{ff61}",
    r"a\u0000",
    "ab",
    "a b",
    r"\\",
    r#"\""#,
    r"\/",
];

fn key() -> BoxedStrategy<String> {
    prop_oneof![
        6 => select(KEYS).prop_map(|k| format!("\"{k}\"")),
        // A tiny pool, so duplicates are common.
        3 => select(vec!["a", "b", r"\u0062", "1"]).prop_map(|k| format!("\"{k}\"")),
        2 => string_literal(),
        1 => (0u64..5_000_000_000).prop_map(|n| format!("\"{n}\"")),
    ]
    .boxed()
}

/// Number spellings whose JS reading or printing is easy to get wrong.
const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "0.0",
    "-0.0",
    "0e5",
    "-0e-5",
    "1.0",
    "1e-7",
    "1e-6",
    "0.000001",
    "0.0000001",
    "1e21",
    "1e+21",
    "1E+2",
    "1e20",
    "100000000000000000000",
    "999999999999999999999",
    "0.1",
    "0.30000000000000004",
    "123e-20",
    "4.35",
    "123456789012345678901234",
    "9007199254740991",
    "9007199254740992",
    "9007199254740993",
    "-9007199254740993",
    "18446744073709551616",
    "3.14159265358979323846264338327950288419716939937510582097494459",
    "1.7976931348623157e308",
    "1.7976931348623158e308",
    "1.7976931348623159e308",
    "5e-324",
    "2.4703282292062328e-324",
    "2.4703282292062327e-324",
    "2.2250738585072014e-308",
    "2.2250738585072011e-308",
    "1e400",
    "-1e400",
    "1e-400",
    "-1e-400",
    "1e99999999999999999999",
    "0.000000000000000000000000000000000000000000001",
];

fn decimal_text() -> BoxedStrategy<String> {
    let digits = |len: std::ops::Range<usize>| {
        prop::collection::vec(0u8..10, len).prop_map(|d| {
            d.into_iter()
                .map(|d| char::from(b'0' + d))
                .collect::<String>()
        })
    };
    let exponent = prop_oneof![
        4 => 0u32..25,
        2 => 0u32..400,
        1 => Just(99_999u32),
    ];
    (
        any::<bool>(),
        digits(1..30),
        prop::option::of(digits(1..30)),
        prop::option::of((select(vec!["e", "E"]), select(vec!["", "+", "-"]), exponent)),
    )
        .prop_map(|(negative, int, frac, exp)| {
            let int = int.trim_start_matches('0');
            let mut s = String::from(if negative { "-" } else { "" });
            s.push_str(if int.is_empty() { "0" } else { int });
            if let Some(frac) = frac {
                s.push('.');
                s.push_str(&frac);
            }
            if let Some((e, sign, n)) = exp {
                s.push_str(&format!("{e}{sign}{n}"));
            }
            s
        })
        .boxed()
}

fn number() -> BoxedStrategy<String> {
    prop_oneof![
        3 => select(NUMBERS).prop_map(String::from),
        3 => decimal_text(),
        // Any finite double, printed exactly in Rust's several notations.
        3 => (any::<u64>().prop_map(f64::from_bits).prop_filter("finite", |x| x.is_finite()), 0..4)
            .prop_map(|(x, style)| match style {
                0 => format!("{x}"),
                1 => format!("{x:?}"),
                2 => format!("{x:e}"),
                _ => format!("{x:E}"),
            }),
        // Integers around 2^53, where doubles stop being exact.
        2 => (-6i64..=6, any::<bool>()).prop_map(|(d, neg)| {
            let n = (1i64 << 53) + d;
            if neg { format!("-{n}") } else { n.to_string() }
        }),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        1 => any::<u128>().prop_map(|n| n.to_string()),
    ]
    .boxed()
}

fn leaf() -> BoxedStrategy<String> {
    prop_oneof![
        1 => select(vec!["null", "true", "false"]).prop_map(String::from),
        3 => number(),
        3 => string_literal(),
    ]
    .boxed()
}

fn value() -> BoxedStrategy<String> {
    leaf()
        .prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec((ws(), inner.clone(), ws()), 0..6).prop_map(|items| {
                    let items: Vec<String> = items
                        .into_iter()
                        .map(|(a, v, b)| format!("{a}{v}{b}"))
                        .collect();
                    format!("[{}]", items.join(","))
                }),
                prop::collection::vec((ws(), key(), ws(), ws(), inner, ws()), 0..7).prop_map(
                    |members| {
                        let members: Vec<String> = members
                            .into_iter()
                            .map(|(a, k, b, c, v, d)| format!("{a}{k}{b}:{c}{v}{d}"))
                            .collect();
                        format!("{{{}}}", members.join(","))
                    }
                ),
            ]
        })
        .boxed()
}

/// Up to the 512-level cap (deeper is ours to reject, not node's).
fn deep() -> BoxedStrategy<String> {
    let depth = prop_oneof![Just(512usize), 1usize..=512];
    (depth, any::<u64>(), leaf())
        .prop_map(|(depth, bits, leaf)| {
            let arrays: Vec<bool> = (0..depth).map(|i| (bits >> (i % 64)) & 1 == 1).collect();
            let mut s: String = arrays
                .iter()
                .map(|a| if *a { "[" } else { r#"{"k":"# })
                .collect();
            s.push_str(&leaf);
            s.extend(arrays.iter().rev().map(|a| if *a { "]" } else { "}" }));
            s
        })
        .boxed()
}

/// Damage a valid text: both sides must then agree on whether it still parses.
fn mutated() -> BoxedStrategy<String> {
    let insert = select(vec![
        ",",
        "]",
        "}",
        ":",
        "\"",
        "\\",
        "'",
        "\u{b}",
        "\u{c}",
        "\u{a0}",
        "\u{feff}",
        "\u{0}",
        "\u{1f}",
        "NaN",
        "Infinity",
        "+",
        "-",
        ".",
        "e",
        "0",
        "01",
        "/",
        "/*x*/",
        "undefined",
        "0x10",
        "\n",
        "[",
        "{",
        "\\u12",
        "\\x41",
        "true",
    ]);
    let garbage = select(vec![" x", "}", "]", ",", " 1", "\"", "\u{0}", "\r\n"]);
    prop_oneof![
        (value(), any::<Index>()).prop_map(|(text, at)| {
            let cut = char_boundary(&text, at);
            text[..cut].to_string()
        }),
        (value(), any::<Index>(), insert).prop_map(|(mut text, at, token)| {
            let at = char_boundary(&text, at);
            text.insert_str(at, token);
            text
        }),
        (value(), garbage).prop_map(|(text, g)| format!("{text}{g}")),
    ]
    .boxed()
}

fn char_boundary(text: &str, at: Index) -> usize {
    let boundaries: Vec<usize> = text
        .char_indices()
        .map(|(i, _)| i)
        .chain([text.len()])
        .collect();
    boundaries[at.index(boundaries.len())]
}

fn case() -> BoxedStrategy<(&'static str, String)> {
    prop_oneof![
        14 => (ws(), value(), ws()).prop_map(|(a, v, b)| ("document", format!("{a}{v}{b}"))),
        2 => deep().prop_map(|t| ("deep", t)),
        4 => mutated().prop_map(|t| ("mutated", t)),
    ]
    .boxed()
}

#[test]
fn canonical_form_matches_node() {
    let Some(mut oracle) = Oracle::spawn() else {
        writeln!(
            std::io::stderr(),
            "SKIPPED canonical oracle: node not found"
        )
        .unwrap();
        return;
    };
    let cases: usize = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES);
    let mut runner = TestRunner::default();
    let strategy = case();
    let mut trees = Vec::with_capacity(cases);
    for _ in 0..cases {
        trees.push(strategy.new_tree(&mut runner).unwrap());
    }
    let inputs: Vec<String> = trees.iter().map(|t| t.current().1).collect();
    let answers = oracle.ask(&inputs);

    let mut per_category: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut failures = Vec::new();
    for (i, (tree, node)) in trees.iter().zip(&answers).enumerate() {
        let (category, input) = tree.current();
        let entry = per_category.entry(category).or_default();
        entry.0 += 1;
        entry.1 += usize::from(node.is_none());
        if compare(&input, node).is_err() {
            failures.push(i);
        }
    }
    let summary: Vec<String> = per_category
        .iter()
        .map(|(c, (n, rejected))| format!("{c} {n} ({rejected} rejected by both)"))
        .collect();
    writeln!(
        std::io::stderr(),
        "canonical oracle: {cases} cases through one node process: {}",
        summary.join(", ")
    )
    .unwrap();

    let Some(&first) = failures.first() else {
        return;
    };
    // Shrink the first failure, asking the same node process each step.
    let mut tree = trees.swap_remove(first);
    let mut minimal = compare(&inputs[first], &answers[first]).unwrap_err();
    let mut still_fails = |input: &str| {
        let node = oracle.ask(&[input.to_string()]).pop().unwrap();
        compare(input, &node).err()
    };
    let mut steps = 0;
    if tree.simplify() {
        while steps < 2000 {
            steps += 1;
            match still_fails(&tree.current().1) {
                Some(report) => {
                    minimal = report;
                    if !tree.simplify() {
                        break;
                    }
                }
                None => {
                    if !tree.complicate() {
                        break;
                    }
                }
            }
        }
    }
    panic!(
        "{} of {cases} cases disagree with node; minimal failing case:\n{minimal}",
        failures.len()
    );
}

#[test]
fn ascii_encoding_round_trips() {
    let text = "a\"\\\n\r\u{2028}é😀\u{0}";
    let line = ascii_json_string(text);
    assert!(line.is_ascii());
    assert_eq!(serde_json::from_str::<String>(&line).unwrap(), text);
}
