//! `cargo xtask bench`: builds everything, then runs the side-by-side
//! benchmark (`bench/run.mjs`) in headless Chromium: sw-outbox against
//! Workbox BackgroundSync, a bare IndexedDB worker (the limit) and no
//! worker at all. It prints the table and writes `bench/results/latest.*`
//! (a `--quick` run writes `target/bench/quick.*` instead).

use crate::build::{build, node_for_browser_runs};
use crate::engines::Engine;
use crate::prerequisites;
use crate::process::say;
use std::process::ExitCode;

const SCRIPT: &str = "bench/run.mjs";

#[derive(Debug, Default, PartialEq)]
pub struct Options {
    /// A small workload and one repetition: a look in a minute or two.
    quick: bool,
    /// Repetitions of each measure (the table shows their median).
    reps: Option<u32>,
}

impl Options {
    pub fn parse(arguments: &[String]) -> Result<Self, String> {
        let mut options = Options::default();
        let mut arguments = arguments.iter();
        while let Some(argument) = arguments.next() {
            match argument.as_str() {
                "--quick" => options.quick = true,
                "--reps" => {
                    let value = arguments.next().ok_or("--reps needs a number")?;
                    match value.parse::<u32>() {
                        Ok(reps) if reps > 0 => options.reps = Some(reps),
                        _ => {
                            return Err(format!(
                                "--reps must be a whole number of at least 1, not `{value}`"
                            ))
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "unknown bench option `{other}`; usage: cargo xtask bench [--quick] [--reps <n>]"
                    ))
                }
            }
        }
        Ok(options)
    }

    /// The same options for the node script.
    fn script_arguments(&self) -> Vec<String> {
        let mut arguments = Vec::new();
        if self.quick {
            arguments.push("--quick".to_string());
        }
        if let Some(reps) = self.reps {
            arguments.extend(["--reps".to_string(), reps.to_string()]);
        }
        arguments
    }
}

pub fn bench(options: &Options) -> Result<ExitCode, String> {
    let tools = prerequisites::ensure_build_tools()?;
    prerequisites::ensure_browsers(&[Engine::Chromium])?;
    build(&tools)?;
    let run = node_for_browser_runs()
        .arguments([SCRIPT])
        .arguments(options.script_arguments());
    say(format!("running the benchmark: {}", run.display()));
    let status = run.status()?;
    if status.success() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "xtask: the benchmark failed ({status}); rerun it with: {}",
            run.display()
        );
        Ok(ExitCode::FAILURE)
    }
}

#[cfg(test)]
mod tests {
    use super::Options;

    fn parse(arguments: &[&str]) -> Result<Options, String> {
        let arguments: Vec<String> = arguments
            .iter()
            .map(|argument| argument.to_string())
            .collect();
        Options::parse(&arguments)
    }

    #[test]
    fn parses_options() {
        assert_eq!(parse(&[]), Ok(Options::default()));
        let options = parse(&["--quick", "--reps", "3"]).unwrap();
        assert_eq!(
            options,
            Options {
                quick: true,
                reps: Some(3)
            }
        );
        assert_eq!(options.script_arguments(), ["--quick", "--reps", "3"]);
        assert!(parse(&["--reps"]).is_err());
        assert!(parse(&["--reps", "0"]).is_err());
        assert!(parse(&["--reps", "many"]).is_err());
        assert!(parse(&["--fast"]).is_err());
    }
}
