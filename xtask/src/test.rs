//! `cargo xtask test`: every check and test suite in order, stopping at the
//! first failure, ending with one `N passed, N failed` line.

use crate::build::{build, node_for_browser_runs};
use crate::engines::{self, Engine};
use crate::prerequisites::{self, Tools, CHROMEDRIVER, WASM_TARGET, WEBKIT_WEBDRIVER};
use crate::process::{cargo, say, workspace_root, CommandLine};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, ExitStatus};
use std::sync::Mutex;
use std::time::Instant;

pub struct Options {
    /// Only build and run the end-to-end tests, for quick iteration.
    e2e_only: bool,
    /// Passed to the end-to-end tests as `--test-name-pattern`.
    filter: Option<String>,
    /// The engines the in-browser and end-to-end tests run in.
    engines: Vec<Engine>,
}

impl Options {
    pub fn parse(arguments: &[String]) -> Result<Self, String> {
        let mut options = Options {
            e2e_only: false,
            filter: None,
            engines: Vec::new(),
        };
        let mut engine_names = Vec::new();
        let mut arguments = arguments.iter();
        while let Some(argument) = arguments.next() {
            match argument.as_str() {
                "--e2e-only" => options.e2e_only = true,
                "--filter" => {
                    let pattern = arguments.next().ok_or("--filter needs a pattern")?;
                    options.filter = Some(pattern.clone());
                }
                "--engine" => {
                    let name = arguments.next().ok_or("--engine needs a name")?;
                    engine_names.push(name.clone());
                }
                other => return Err(format!("unknown test option `{other}`")),
            }
        }
        options.engines = engines::chosen(&engine_names)?;
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
    name: String,
    action: Action,
    /// Why the step does not run, when it does not.
    skipped: Option<&'static str>,
}

impl Step {
    fn new(name: impl Into<String>, action: Action) -> Self {
        Step {
            name: name.into(),
            action,
            skipped: None,
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
    let tools =
        prerequisites::ensure_build_tools().map_err(|error| format!("prerequisites: {error}"))?;
    let in_browser = has_wasm_tests(&root) || !end_to_end_test_files(&root).is_empty();
    let geckodriver = if in_browser {
        prerequisites::ensure_browsers(&options.engines)
            .map_err(|error| format!("prerequisites: {error}"))?
    } else {
        None
    };
    let steps = plan(options, &root, geckodriver.as_deref());
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

/// The in-browser wasm tests in one engine: wasm-bindgen-test-runner takes
/// the first driver named in its environment, so the others are removed.
fn wasm_tests(engine: Engine, root: &Path, geckodriver: Option<&Path>) -> Step {
    let drivers = ["CHROMEDRIVER", "GECKODRIVER", "SAFARIDRIVER"];
    let (variable, driver) = match engine {
        Engine::Chromium => ("CHROMEDRIVER", PathBuf::from(CHROMEDRIVER)),
        Engine::Firefox => (
            "GECKODRIVER",
            geckodriver.map_or_else(|| PathBuf::from("geckodriver"), Path::to_path_buf),
        ),
        Engine::WebKit => ("SAFARIDRIVER", PathBuf::from(WEBKIT_WEBDRIVER)),
    };
    let mut line = cargo(&format!("test -p sw-outbox --target {WASM_TARGET}"))
        .environment(variable, driver.to_string_lossy())
        .environment("WASM_BINDGEN_TEST_TIMEOUT", "120");
    for other in drivers.into_iter().filter(|name| *name != variable) {
        line = line.without_environment(other);
    }
    if engine.needs_display() {
        line = line.through("xvfb-run", &["-a"]);
    }
    Step::new(
        format!("in-browser wasm tests ({engine})"),
        Action::Suite(line),
    )
    .skipped_unless(
        has_wasm_tests(root),
        "no tests/*.rs uses wasm_bindgen_test yet",
    )
}

/// The end-to-end suite in one engine (tests/e2e/engines picks it from
/// OUTBOX_ENGINE).
fn end_to_end(engine: Engine, options: &Options, root: &Path) -> Step {
    let files = end_to_end_test_files(root);
    let mut line = node_for_browser_runs()
        .environment("OUTBOX_ENGINE", engine.name())
        .arguments(["--test", "--test-concurrency=1", "--test-timeout=300000"]);
    if let Some(pattern) = &options.filter {
        line = line.arguments(["--test-name-pattern", pattern]);
    }
    let has_files = !files.is_empty();
    // Files rather than the folder: node 21 and later read a folder argument
    // as a glob that matches no test file.
    line = line.arguments(files);
    if engine.needs_display() {
        line = line.through("xvfb-run", &["-a"]);
    }
    Step::new(format!("end-to-end tests ({engine})"), Action::Suite(line))
        .skipped_unless(has_files, "tests/e2e has no *.test.mjs yet")
}

fn plan(options: &Options, root: &Path, geckodriver: Option<&Path>) -> Vec<Step> {
    let end_to_end_steps = options
        .engines
        .iter()
        .map(|&engine| end_to_end(engine, options, root));
    let build_step = Step::new("build", Action::Build);
    if options.e2e_only {
        return std::iter::once(build_step)
            .chain(end_to_end_steps)
            .collect();
    }
    let type_check =
        CommandLine::new("node_modules/.bin/tsc").arguments(["--noEmit", "-p", "app-shim"]);
    let mut steps = vec![
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
    ];
    steps.extend(
        options
            .engines
            .iter()
            .map(|&engine| wasm_tests(engine, root, geckodriver)),
    );
    steps.extend(end_to_end_steps);
    steps
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
    use super::{parse_counts, Counts, Engine, Options};

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
        assert_eq!(options.engines, Engine::ALL.to_vec());
        let one = Options::parse(&["--engine".to_string(), "firefox".to_string()]).unwrap();
        assert_eq!(one.engines, vec![Engine::Firefox]);
        assert!(Options::parse(&["--engine".to_string()]).is_err());
        assert!(Options::parse(&["--filter".to_string()]).is_err());
        assert!(Options::parse(&["--bogus".to_string()]).is_err());
    }
}
