//! `cargo xtask fuzz`: runs each fuzz target of `src/core/fuzz.rs` for a
//! bounded time and keeps what fails as a regression test.
//!
//! Each target runs in its own `cargo test` process, in an optimized build
//! that keeps debug assertions and overflow checks (profile `fuzzing`, in
//! `target/fuzzing/`, so the normal builds are untouched). A failing input is
//! written to `tests/fuzz-corpus/<target>/found-<hash>` by the test itself; a
//! crash (a stack overflow aborts the process) loses only that target's run,
//! and the input it was trying, kept in `target/fuzz-current/<target>`, is
//! copied there as `crash-<hash>`. Plain `cargo test` replays the corpus.

use crate::process::{cargo, say, workspace_root, CommandLine};
use std::fs;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;

/// The targets, as named by the tests `core::fuzz::fuzz_<target>`.
const TARGETS: [&str; 4] = ["record", "message", "config", "merge"];

const DEFAULT_SECONDS: u64 = 60;

pub struct Options {
    /// How long each target runs.
    seconds: u64,
}

impl Options {
    pub fn parse(arguments: &[String]) -> Result<Self, String> {
        let mut options = Options {
            seconds: DEFAULT_SECONDS,
        };
        let mut arguments = arguments.iter();
        while let Some(argument) = arguments.next() {
            match argument.as_str() {
                "--seconds" => {
                    let value = arguments.next().ok_or("--seconds needs a number")?;
                    options.seconds = value
                        .parse()
                        .ok()
                        .filter(|seconds| *seconds > 0)
                        .ok_or_else(|| format!("--seconds {value}: expected a positive number"))?;
                }
                other => return Err(format!("unknown fuzz option `{other}`")),
            }
        }
        Ok(options)
    }
}

/// `cargo test` of the fuzz tests in the `fuzzing` profile, defined here
/// rather than in Cargo.toml because nothing else uses it.
fn fuzz_tests(rest: &[&str]) -> CommandLine {
    cargo("test -p sw-outbox --lib --profile fuzzing")
        .arguments(["--config", "profile.fuzzing.inherits=\"dev\""])
        .arguments(["--config", "profile.fuzzing.opt-level=3"])
        .arguments(rest.iter().copied())
}

/// What one target's run reported.
#[derive(Debug, Default, PartialEq)]
struct Outcome {
    cases: u64,
    panics: u64,
    failures: u64,
    /// The process died before reporting (a stack overflow or an abort).
    crashed: bool,
    /// Corpus files written for failing inputs.
    saved: Vec<String>,
}

impl Outcome {
    fn clean(&self) -> bool {
        !self.crashed && self.panics == 0 && self.failures == 0
    }
}

/// Reads the test's summary line,
/// `fuzz <target>: <n> cases in <s> s, <n> panics, <n> failures (seed <n>)`.
fn read_summary(target: &str, line: &str) -> Option<(u64, u64, u64)> {
    let rest = line.strip_prefix(&format!("fuzz {target}: "))?;
    let words: Vec<&str> = rest.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    let count_before = |label: &str| {
        let at = words.iter().position(|word| *word == label)?;
        words.get(at.checked_sub(1)?)?.parse().ok()
    };
    Some((
        count_before("cases")?,
        count_before("panics")?,
        count_before("failures")?,
    ))
}

/// A 64-bit FNV-1a hash, the same that names found cases in the tests.
fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The input in a `OUTBOX_FUZZ_CURRENT` file: its length as 8 bytes,
/// little-endian, then the input (and leftovers of longer earlier ones).
fn last_input(kept: &[u8]) -> Option<Vec<u8>> {
    let (length, rest) = kept.split_first_chunk::<8>()?;
    let length = usize::try_from(u64::from_le_bytes(*length)).ok()?;
    rest.get(..length).map(<[u8]>::to_vec)
}

fn run_target(target: &str, seconds: u64, root: &Path) -> Result<Outcome, String> {
    let corpus = root.join("tests/fuzz-corpus");
    let current = root.join("target/fuzz-current").join(target);
    if let Some(folder) = current.parent() {
        fs::create_dir_all(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    }
    let _ = fs::remove_file(&current);
    let test = format!("core::fuzz::fuzz_{target}");
    let command = fuzz_tests(&[&test, "--", "--exact", "--nocapture"])
        .environment("OUTBOX_FUZZ_SECONDS", seconds.to_string())
        .environment("OUTBOX_FUZZ_CORPUS", corpus.to_string_lossy())
        .environment("OUTBOX_FUZZ_CURRENT", current.to_string_lossy());
    say(format!(
        "fuzz {target} for {seconds} s: {}",
        command.display()
    ));
    let outcome = Mutex::new(Outcome {
        crashed: true,
        ..Outcome::default()
    });
    let status = command.run_streaming(|line| {
        let mut outcome = outcome.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((cases, panics, failures)) = read_summary(target, line) {
            (outcome.cases, outcome.panics, outcome.failures) = (cases, panics, failures);
            outcome.crashed = false;
        } else if let Some(path) = line.trim().strip_prefix("saved as ") {
            outcome.saved.push(path.to_string());
        }
    })?;
    let mut outcome = outcome.into_inner().unwrap_or_else(|e| e.into_inner());
    if outcome.crashed {
        let input = fs::read(&current)
            .ok()
            .and_then(|kept| last_input(&kept))
            .ok_or_else(|| format!("fuzz {target} died ({status}) and left no input"))?;
        let folder = corpus.join(target);
        let saved = folder.join(format!("crash-{:016x}", fingerprint(&input)));
        fs::create_dir_all(&folder)
            .and_then(|()| fs::write(&saved, input))
            .map_err(|e| format!("{}: {e}", saved.display()))?;
        outcome.saved.push(saved.to_string_lossy().into_owned());
    } else if !status.success() && outcome.failures == 0 {
        return Err(format!(
            "fuzz {target} failed ({status}) without a failing input"
        ));
    }
    Ok(outcome)
}

pub fn fuzz(options: &Options) -> Result<ExitCode, String> {
    let root = workspace_root();
    say("building the fuzz tests (optimized, with overflow checks)");
    fuzz_tests(&["--no-run"]).run()?;
    let mut outcomes = Vec::new();
    for target in TARGETS {
        outcomes.push((target, run_target(target, options.seconds, &root)?));
    }
    say(format!("fuzz summary, {} s a target:", options.seconds));
    for (target, outcome) in &outcomes {
        let result = if outcome.crashed {
            "crashed (stack overflow or abort)".to_string()
        } else {
            format!(
                "{} cases, {} panics, {} failures",
                outcome.cases, outcome.panics, outcome.failures
            )
        };
        say(format!("  {target:<8} {result}"));
        for path in &outcome.saved {
            say(format!("           kept as {path}"));
        }
    }
    if outcomes.iter().all(|(_, outcome)| outcome.clean()) {
        return Ok(ExitCode::SUCCESS);
    }
    say("the failing inputs are in tests/fuzz-corpus/ and fail `cargo test` until fixed:");
    say("  cargo test -p sw-outbox --lib core::fuzz::the_corpus_still_passes");
    Ok(ExitCode::FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_summary_line() {
        let line = "fuzz merge: 13889 cases in 10.0 s, 0 panics, 2 failures (seed 17)";
        assert_eq!(read_summary("merge", line), Some((13889, 0, 2)));
        assert_eq!(read_summary("record", line), None);
        assert_eq!(read_summary("merge", "fuzz merge: started"), None);
    }

    #[test]
    fn reads_the_input_a_crash_left() {
        let mut kept = 3u64.to_le_bytes().to_vec();
        kept.extend(b"abcdef");
        assert_eq!(last_input(&kept), Some(b"abc".to_vec()));
        assert_eq!(last_input(&kept[..9]), None);
        assert_eq!(last_input(b"short"), None);
    }

    #[test]
    fn parses_seconds() {
        let parse = |words: &[&str]| {
            Options::parse(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>())
                .map(|options| options.seconds)
        };
        assert_eq!(parse(&[]), Ok(DEFAULT_SECONDS));
        assert_eq!(parse(&["--seconds", "5"]), Ok(5));
        assert!(parse(&["--seconds", "0"]).is_err());
        assert!(parse(&["--seconds"]).is_err());
        assert!(parse(&["--cases", "5"]).is_err());
    }
}
