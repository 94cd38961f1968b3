//! `cargo xtask test`: every check and test suite in order, stopping at the
//! first failure, ending with one `N passed, N failed` line.

use crate::build::{build, node_for_browser_runs};
use crate::prerequisites::{self, Tools, CHROMEDRIVER, WASM_TARGET};
use crate::process::{cargo, say, workspace_root, CommandLine};
use std::fs;
use std::path::Path;
use std::process::{ExitCode, ExitStatus};
use std::sync::Mutex;
use std::time::Instant;

pub struct Options {
    /// Only build and run the end-to-end tests, for quick iteration.
    e2e_only: bool,
    /// Passed to the end-to-end tests as `--test-name-pattern`.
    filter: Option<String>,
}

impl Options {
    pub fn parse(arguments: &[String]) -> Result<Self, String> {
        let mut options = Options {
            e2e_only: false,
            filter: None,
        };
        let mut arguments = arguments.iter();
        while let Some(argument) = arguments.next() {
            match argument.as_str() {
                "--e2e-only" => options.e2e_only = true,
                "--filter" => {
                    let pattern = arguments.next().ok_or("--filter needs a pattern")?;
                    options.filter = Some(pattern.clone());
                }
                other => return Err(format!("unknown test option `{other}`")),
            }
        }
        Ok(options)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Counts {
    passed: u64,
    failed: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
    }
}

enum Action {
    /// A check that reports no test counts (fmt, clippy).
    Check(CommandLine),
    /// A test suite whose output carries its counts.
    Suite(CommandLine),
    /// `tsc`, which counts as one test.
    TypeCheck(CommandLine),
    Build,
}

struct Step {
    name: &'static str,
    action: Action,
    /// Why the step does not run, when it does not.
    skipped: Option<&'static str>,
    /// Drives Chromium, which is installed only when such a step runs.
    needs_browser: bool,
}

impl Step {
    fn new(name: &'static str, action: Action) -> Self {
        Step {
            name,
            action,
            skipped: None,
            needs_browser: false,
        }
    }

    fn in_browser(self) -> Self {
        Step {
            needs_browser: true,
            ..self
        }
    }

    fn skipped_unless(self, runnable: bool, reason: &'static str) -> Self {
        Step {
            skipped: (!runnable).then_some(reason),
            ..self
        }
    }

    fn rerun(&self) -> String {
        match &self.action {
            Action::Check(line) | Action::Suite(line) | Action::TypeCheck(line) => line.display(),
            Action::Build => "cargo xtask build".to_string(),
        }
    }

    fn run(&self, tools: &Tools) -> (Counts, Result<(), String>) {
        let (mut counts, result) = match &self.action {
            Action::Check(line) => (Counts::default(), succeeded(line.status())),
            Action::Suite(line) => run_suite(line),
            Action::TypeCheck(line) => {
                let result = succeeded(line.status());
                let passed = u64::from(result.is_ok());
                (Counts { passed, failed: 0 }, result)
            }
            Action::Build => (Counts::default(), build(tools)),
        };
        // A step that fails without reporting a failing test (it did not
        // compile, crashed, or is a check or tsc) counts as one failure, so
        // the summary never reads "0 failed" for a failed run.
        if result.is_err() && counts.failed == 0 {
            counts.failed = 1;
        }
        (counts, result)
    }
}

pub fn test(options: Options) -> ExitCode {
    let mut totals = Counts::default();
    let result = run_steps(&options, &mut totals);
    if let Err(message) = &result {
        eprintln!("xtask: {message}");
    }
    println!("{} passed, {} failed", totals.passed, totals.failed);
    if result.is_ok() && totals.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn run_steps(options: &Options, totals: &mut Counts) -> Result<(), String> {
    let root = workspace_root();
    let steps = plan(options, &root);
    let tools =
        prerequisites::ensure_build_tools().map_err(|error| format!("prerequisites: {error}"))?;
    if steps
        .iter()
        .any(|step| step.needs_browser && step.skipped.is_none())
    {
        prerequisites::ensure_browser().map_err(|error| format!("prerequisites: {error}"))?;
    }
    let total_steps = steps.len();
    for (index, step) in steps.iter().enumerate() {
        let label = format!("[{}/{total_steps}] {}", index + 1, step.name);
        if let Some(reason) = step.skipped {
            say(format!("{label}: skipped, {reason}"));
            continue;
        }
        say(format!("{label}: {}", step.rerun()));
        let started = Instant::now();
        let (counts, result) = step.run(&tools);
        let seconds = started.elapsed().as_secs_f64();
        *totals += counts;
        match result {
            Ok(()) => say(format!("{label}: ok in {seconds:.1} s")),
            Err(error) => {
                return Err(format!(
                    "{label} failed after {seconds:.1} s: {error}\nrerun this step with: {}",
                    step.rerun()
                ))
            }
        }
    }
    Ok(())
}

fn plan(options: &Options, root: &Path) -> Vec<Step> {
    let wasm_tests = Step::new(
        "in-browser wasm tests",
        Action::Suite(
            cargo(&format!("test -p sw-outbox --target {WASM_TARGET}"))
                .environment("CHROMEDRIVER", CHROMEDRIVER)
                .environment("WASM_BINDGEN_TEST_TIMEOUT", "120"),
        ),
    )
    .in_browser()
    .skipped_unless(
        has_wasm_tests(root),
        "no tests/*.rs uses wasm_bindgen_test yet",
    );

    let end_to_end_files = end_to_end_test_files(root);
    let mut end_to_end_command = node_for_browser_runs().arguments([
        "--test",
        "--test-concurrency=1",
        "--test-timeout=300000",
    ]);
    if let Some(pattern) = &options.filter {
        end_to_end_command = end_to_end_command.arguments(["--test-name-pattern", pattern]);
    }
    let has_end_to_end_tests = !end_to_end_files.is_empty();
    // Files rather than the folder: node 21 and later read a folder argument
    // as a glob that matches no test file.
    let end_to_end = Step::new(
        "end-to-end tests",
        Action::Suite(end_to_end_command.arguments(end_to_end_files)),
    )
    .in_browser()
    .skipped_unless(has_end_to_end_tests, "tests/e2e has no *.test.mjs yet");

    let build_step = Step::new("build", Action::Build);
    if options.e2e_only {
        return vec![build_step, end_to_end];
    }
    let type_check =
        CommandLine::new("node_modules/.bin/tsc").arguments(["--noEmit", "-p", "app-shim"]);
    vec![
        Step::new("formatting", Action::Check(cargo("fmt --all -- --check"))),
        Step::new(
            "clippy (host)",
            Action::Check(cargo("clippy --workspace --all-targets -- -D warnings")),
        ),
        Step::new(
            "clippy (wasm32)",
            Action::Check(cargo(&format!(
                "clippy -p sw-outbox --target {WASM_TARGET} --all-targets -- -D warnings"
            ))),
        ),
        Step::new("native tests", Action::Suite(cargo("test --workspace"))),
        build_step,
        Step::new("page shim type check", Action::TypeCheck(type_check)),
        wasm_tests,
        end_to_end,
    ]
}

fn has_wasm_tests(root: &Path) -> bool {
    files_in(&root.join("tests"), ".rs").iter().any(|path| {
        fs::read_to_string(root.join(path)).is_ok_and(|source| source.contains("wasm_bindgen_test"))
    })
}

fn end_to_end_test_files(root: &Path) -> Vec<String> {
    files_in(&root.join("tests/e2e"), ".test.mjs")
}

/// Files directly in `directory` whose names end with `suffix`, as sorted
/// paths relative to the workspace root.
fn files_in(directory: &Path, suffix: &str) -> Vec<String> {
    let root = workspace_root();
    let mut files: Vec<String> = fs::read_dir(directory)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_file() && path.to_string_lossy().ends_with(suffix))
        .map(|path| {
            path.strip_prefix(&root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    files
}

fn run_suite(line: &CommandLine) -> (Counts, Result<(), String>) {
    let counts = Mutex::new(Counts::default());
    let status = line.run_streaming(|text| {
        if let Some(found) = parse_counts(text) {
            *counts.lock().expect("no counting thread panics") += found;
        }
    });
    let counts = counts.into_inner().expect("no counting thread panics");
    (counts, succeeded(status))
}

/// The step already showed its command, so a failure only needs the exit
/// status (or why the program could not start).
fn succeeded(status: Result<ExitStatus, String>) -> Result<(), String> {
    match status? {
        status if status.success() => Ok(()),
        status => Err(status.to_string()),
    }
}

/// Counts from one output line: libtest and wasm-bindgen-test print
/// `test result: ok. 3 passed; 0 failed; ...` per test binary; node's test
/// runner prints `# pass 3` / `# fail 0` (TAP) or `ℹ pass 3` (spec).
fn parse_counts(line: &str) -> Option<Counts> {
    let line = without_ansi_escapes(line);
    let line = line.trim();
    if let Some(result) = line.strip_prefix("test result:") {
        let words: Vec<&str> = result.split_whitespace().collect();
        let count_before = |label: &str| {
            words
                .windows(2)
                .find(|pair| pair[1].trim_end_matches([';', ',', '.']) == label)
                .and_then(|pair| pair[0].parse().ok())
        };
        return Some(Counts {
            passed: count_before("passed")?,
            failed: count_before("failed")?,
        });
    }
    let summary = line
        .strip_prefix("# ")
        .or_else(|| line.strip_prefix("ℹ "))?;
    let (label, number) = summary.split_once(' ')?;
    let number: u64 = number.trim().parse().ok()?;
    match label {
        "pass" => Some(Counts {
            passed: number,
            failed: 0,
        }),
        // Node cancels the tests a failed hook or a timed-out parent left
        // unrun; they did not pass, so they count as failed.
        "fail" | "cancelled" => Some(Counts {
            passed: 0,
            failed: number,
        }),
        _ => None,
    }
}

/// Removes terminal colour sequences (`ESC [ ... letter`) that a tool may
/// print even into a pipe.
fn without_ansi_escapes(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut characters = line.chars();
    while let Some(character) = characters.next() {
        if character == '\u{1b}' {
            if characters.next() == Some('[') {
                for inner in characters.by_ref() {
                    if inner.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            plain.push(character);
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::{parse_counts, Counts, Options};

    fn counts(passed: u64, failed: u64) -> Option<Counts> {
        Some(Counts { passed, failed })
    }

    #[test]
    fn reads_libtest_results() {
        let line = "test result: ok. 12 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s";
        assert_eq!(parse_counts(line), counts(12, 0));
        let failed =
            "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(parse_counts(failed), counts(3, 2));
    }

    #[test]
    fn reads_wasm_bindgen_test_results_with_colours() {
        let line = "test result: \u{1b}[32mok\u{1b}[0m. 4 passed; 0 failed; 0 ignored; 0 filtered out; finished in 2.10s";
        assert_eq!(parse_counts(line), counts(4, 0));
    }

    #[test]
    fn reads_node_test_summaries() {
        assert_eq!(parse_counts("# pass 7"), counts(7, 0));
        assert_eq!(parse_counts("# fail 2"), counts(0, 2));
        assert_eq!(parse_counts("# cancelled 1"), counts(0, 1));
        assert_eq!(parse_counts("ℹ pass 5"), counts(5, 0));
        assert_eq!(parse_counts("# tests 9"), None);
        assert_eq!(parse_counts("# Subtest: queues while offline"), None);
    }

    #[test]
    fn ignores_results_quoted_inside_other_output() {
        assert_eq!(
            parse_counts("  left: \"x test result: ok. 1 passed; 0 failed\""),
            None
        );
        assert_eq!(parse_counts("running 3 tests"), None);
    }

    #[test]
    fn parses_options() {
        let arguments = ["--e2e-only", "--filter", "offline"].map(String::from);
        let options = Options::parse(&arguments).unwrap();
        assert!(options.e2e_only);
        assert_eq!(options.filter.as_deref(), Some("offline"));
        assert!(Options::parse(&["--filter".to_string()]).is_err());
        assert!(Options::parse(&["--bogus".to_string()]).is_err());
    }
}
