//! Fuzzing of the code that reads input the outbox does not control: the
//! stored-record decoder ([`entry::decode`]), the page-message decoder
//! ([`decode_command`]), the config parser ([`Config::parse`]) and the
//! three-way merge ([`three_way_merge`], [`apply_merge_patch`]).
//!
//! Each target checks properties of one input: it never panics, what it
//! rejects is a clear error, and what it accepts is consistent (a decoded
//! record encodes back to itself, a merge with one side unchanged gives the
//! other side). Inputs are hostile JSON and bytes, valid inputs, and valid
//! inputs with a few mutations (see `inputs`).
//!
//! - `cargo test` runs each target for `OUTBOX_FUZZ_CASES` inputs (256 by
//!   default, at most 5 s each), and replays every file in
//!   `tests/fuzz-corpus/<target>/`, found or hand-written cases that must
//!   keep passing.
//! - `cargo xtask fuzz` runs each target for `OUTBOX_FUZZ_SECONDS` and has
//!   failing inputs written into the corpus (`OUTBOX_FUZZ_CORPUS`), and the
//!   input being tried into `OUTBOX_FUZZ_CURRENT` (its length as 8 bytes,
//!   little-endian, then the input), which survives a crash (a stack
//!   overflow aborts the process). `OUTBOX_FUZZ_SEED` replays a run.
//!
//! Depth: every JSON value that reaches these functions in the worker was
//! parsed by serde_json, which refuses more than 127 levels of nesting (the
//! config converter stops at 16). Generated values go up to that depth;
//! deeper text, such as the corpus's 10,000-level files, must be refused by
//! that parse. A `Value` much deeper cannot even be dropped on a test
//! thread's stack, so no function taking one can promise more.

mod inputs;
mod targets;

use crate::core::entry::Entry;
use inputs::MAX_JSON_DEPTH;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as RunnerConfig, RngAlgorithm, TestRng, TestRunner};
use serde_json::{json, Value};
use std::fmt::Debug;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use std::{env, fs};
use targets::{ConfigInput, ConfigTarget, Merge, Message, MessageInput, Record, RecordInput};

/// One fuzz target: its inputs, how one is kept as a corpus file, and the
/// properties every input must have.
trait Target {
    type Input: Clone + Debug;
    /// The target's name, also its corpus folder.
    const NAME: &'static str;
    fn inputs() -> BoxedStrategy<Self::Input>;
    fn to_file(input: &Self::Input) -> Vec<u8>;
    /// Checks a corpus file, read the way the worker reads such input.
    fn check_file(bytes: &[u8]) -> Result<(), String>;
    /// Checks one input; the error names the property that does not hold.
    fn check(input: &Self::Input) -> Result<(), String>;
}

// ---------------------------------------------------------------- harness

/// How long a fuzz run goes on, from the environment.
struct Budget {
    cases: u64,
    deadline: Instant,
    seed: u64,
}

impl Budget {
    fn from_environment() -> Budget {
        let number = |name: &str| {
            env::var(name).ok().map(|text| {
                text.parse::<u64>()
                    .unwrap_or_else(|_| panic!("{name}={text} is not a whole number"))
            })
        };
        let seconds = number("OUTBOX_FUZZ_SECONDS");
        // A time limit alone runs as many cases as fit; without one, a few
        // hundred cases keep `cargo test` quick, and 5 s caps a slow machine.
        let default_cases = if seconds.is_some() { u64::MAX } else { 256 };
        let seed = number("OUTBOX_FUZZ_SEED").unwrap_or_else(|| {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            now.as_nanos() as u64
        });
        Budget {
            cases: number("OUTBOX_FUZZ_CASES").unwrap_or(default_cases),
            deadline: Instant::now() + Duration::from_secs(seconds.unwrap_or(5)),
            seed,
        }
    }
}

/// One failing input, after shrinking.
struct Failure {
    input: String,
    problem: String,
    saved: Option<PathBuf>,
}

struct Report {
    cases: u64,
    panics: u64,
    failures: Vec<Failure>,
}

/// Checks one input; a panic is a failure too.
fn run_case<T: Target>(input: &T::Input) -> Result<(), String> {
    match catch_unwind(AssertUnwindSafe(|| T::check(input))) {
        Ok(result) => result,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            Err(format!("panicked: {message}"))
        }
    }
}

/// Simplifies a failing input while it still fails.
fn shrink<T: Target>(
    tree: &mut dyn ValueTree<Value = T::Input>,
    mut problem: String,
) -> (T::Input, String) {
    let mut input = tree.current();
    let give_up = Instant::now() + Duration::from_secs(10);
    while Instant::now() < give_up {
        if !tree.simplify() {
            break;
        }
        match run_case::<T>(&tree.current()) {
            Err(smaller) => {
                input = tree.current();
                problem = smaller;
            }
            Ok(()) => {
                if !tree.complicate() {
                    break;
                }
            }
        }
    }
    (input, problem)
}

/// A 64-bit FNV-1a hash, to name found cases by their content.
fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Writes a failing input into the corpus, when asked to.
fn save<T: Target>(input: &T::Input) -> Option<PathBuf> {
    let corpus = PathBuf::from(env::var_os("OUTBOX_FUZZ_CORPUS")?).join(T::NAME);
    let bytes = T::to_file(input);
    let path = corpus.join(format!("found-{:016x}", fingerprint(&bytes)));
    fs::create_dir_all(&corpus).ok()?;
    fs::write(&path, bytes).ok()?;
    Some(path)
}

/// The input being tried, kept in a file so that it outlives a crash. One
/// write at offset 0 a case, length first: truncating and rewriting a file
/// for each case would cost more than the case.
struct CurrentInput(fs::File);

impl CurrentInput {
    fn open(path: &Path) -> Option<CurrentInput> {
        let file = fs::File::create(path).ok()?;
        Some(CurrentInput(file))
    }

    fn keep(&self, bytes: &[u8]) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            let length = (bytes.len() as u64).to_le_bytes();
            let _ = self.0.write_at(&[&length[..], bytes].concat(), 0);
        }
    }
}

/// A run stops at this many failing inputs.
const MAX_FAILURES: usize = 5;

fn fuzz<T: Target>(budget: &Budget) -> Report {
    let config = RunnerConfig {
        failure_persistence: None,
        ..RunnerConfig::default()
    };
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes(budget.seed));
    let mut runner = TestRunner::new_with_rng(config, rng);
    let strategy = T::inputs();
    let current =
        env::var_os("OUTBOX_FUZZ_CURRENT").and_then(|path| CurrentInput::open(path.as_ref()));
    let mut report = Report {
        cases: 0,
        panics: 0,
        failures: Vec::new(),
    };
    // A few failing inputs are enough to go on; more would flood the corpus.
    while report.cases < budget.cases
        && Instant::now() < budget.deadline
        && report.failures.len() < MAX_FAILURES
    {
        let Ok(mut tree) = strategy.new_tree(&mut runner) else {
            continue;
        };
        let input = tree.current();
        if let Some(current) = &current {
            current.keep(&T::to_file(&input));
        }
        report.cases += 1;
        if let Err(problem) = run_case::<T>(&input) {
            report.panics += u64::from(problem.starts_with("panicked"));
            let (input, problem) = shrink::<T>(&mut *tree, problem);
            let saved = save::<T>(&input);
            report.failures.push(Failure {
                input: format!("{input:?}").chars().take(2000).collect(),
                problem,
                saved,
            });
        }
    }
    report
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut bytes = [0; 32];
    for (index, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(seed ^ index as u64).to_le_bytes());
    }
    bytes
}

/// Runs a target and fails the test on any failing input. The summary line
/// is what `cargo xtask fuzz` reads.
fn fuzz_test<T: Target>() {
    let budget = Budget::from_environment();
    let started = Instant::now();
    let report = fuzz::<T>(&budget);
    println!(
        "fuzz {}: {} cases in {:.1} s, {} panics, {} failures (seed {})",
        T::NAME,
        report.cases,
        started.elapsed().as_secs_f64(),
        report.panics,
        report.failures.len(),
        budget.seed,
    );
    let failures: Vec<String> = report
        .failures
        .iter()
        .map(|failure| {
            let saved = failure
                .saved
                .as_ref()
                .map(|path| format!("\n  saved as {}", path.display()))
                .unwrap_or_default();
            format!("{}\n  input: {}{saved}", failure.problem, failure.input)
        })
        .collect();
    assert!(
        failures.is_empty(),
        "fuzz {} (seed {}; OUTBOX_FUZZ_SEED={} replays it):\n{}",
        T::NAME,
        budget.seed,
        budget.seed,
        failures.join("\n")
    );
}

#[test]
fn fuzz_record() {
    fuzz_test::<Record>();
}

#[test]
fn fuzz_message() {
    fuzz_test::<Message>();
}

#[test]
fn fuzz_config() {
    fuzz_test::<ConfigTarget>();
}

#[test]
fn fuzz_merge() {
    fuzz_test::<Merge>();
}

// ---------------------------------------------------------------- corpus

fn corpus_folder(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-corpus")
        .join(target)
}

/// Checks every file of a target's corpus; the failures, by file name.
fn replay<T: Target>() -> Vec<String> {
    let folder = corpus_folder(T::NAME);
    let mut files: Vec<PathBuf> = fs::read_dir(&folder)
        .unwrap_or_else(|error| panic!("{}: {error}", folder.display()))
        .flatten()
        .map(|file| file.path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} holds no cases", folder.display());
    files
        .iter()
        .filter_map(|path| {
            let bytes = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let result = catch_unwind(|| T::check_file(&bytes))
                .unwrap_or_else(|_| Err("panicked".to_owned()));
            result
                .err()
                .map(|problem| format!("{}: {problem}", path.display()))
        })
        .collect()
}

#[test]
fn the_corpus_still_passes() {
    let failures = [
        replay::<Record>(),
        replay::<Message>(),
        replay::<ConfigTarget>(),
        replay::<Merge>(),
    ]
    .concat();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Cases too large to keep as files: megabyte strings, 10,000 fields or
/// items, and values exactly as deep as serde_json reads.
#[test]
fn hostile_cases_built_in_code() {
    let megabyte = "\u{fffd}x\"\\".repeat((1 << 20) / 6);
    let nested = |levels: usize| (0..levels).fold(json!(1), |inner, _| json!({ "a": inner }));
    let wide: Value = (0..10_000).map(|n| (format!("k{n}"), json!(n))).collect();

    let mut entry = Entry::new("PUT", &megabyte, "key", 0, 0);
    entry.depends_on = (0..10_000).collect();
    let records = [
        RecordInput::Entry(Box::new(entry)),
        RecordInput::Text(format!("{{\"v\":1,\"id\":\"{megabyte}\"}}").into_bytes()),
        RecordInput::Text(format!("{{\"v\":1,{}}}", "\"v\":1,".repeat(10_000)).into_bytes()),
    ];
    for input in &records {
        assert_eq!(run_case::<Record>(input), Ok(()));
    }

    let messages = [
        json!({"outbox": 1, "id": 1, "type": megabyte}),
        json!({"outbox": megabyte, "id": 1, "type": "status"}),
        json!({"outbox": 1, "id": 1, "type": "auth", "headers": {"X-A": megabyte}}),
        json!({"outbox": 1, "id": 1, "type": "auth", "headers": wide}),
        json!({"outbox": 1, "id": 1, "type": "clear", "states": vec!["failed"; 100_000]}),
        json!({"outbox": 1, "id": 1, "type": "resolve", "entry": 1, "use": "merged",
               "body": nested(MAX_JSON_DEPTH - 1)}),
    ];
    for message in messages {
        assert_eq!(run_case::<Message>(&MessageInput::Json(message)), Ok(()));
    }

    let configs = [
        json!({"routes": [{"match": format!("/{megabyte}")}], "syncTag": megabyte}),
        json!({"routes": vec![json!({"match": "/a/"}); 10_000]}),
        json!({"routes": [wide]}),
        nested(MAX_JSON_DEPTH),
    ];
    for config in configs {
        assert_eq!(run_case::<ConfigTarget>(&ConfigInput::Json(config)), Ok(()));
    }

    let mut wide_changed = wide.clone();
    wide_changed["k5"] = json!({"a": 1});
    let merges = [
        (wide.clone(), wide_changed, wide.clone()),
        (json!({"a": megabyte}), json!({"a": 1}), json!({"a": 2})),
        (
            nested(MAX_JSON_DEPTH),
            nested(MAX_JSON_DEPTH - 1),
            json!({"a": {"a": 2}}),
        ),
    ];
    for merge in &merges {
        assert_eq!(run_case::<Merge>(merge), Ok(()));
    }
}
