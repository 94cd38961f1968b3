//! `cargo xtask soak`: builds everything, then runs the full chaos soak
//! (`soak/run.mjs`): 10,000 mutations over 500 entities from 3 tabs in
//! headless Chromium against the reference server, while the worker is
//! stopped, the browser restarted, the network and the server taken away and
//! the server made to fail or drop connections. It ends with one line of
//! figures; a failure prints the seed and the command that replays it.

use crate::build::{build, node_for_browser_runs};
use crate::engines::Engine;
use crate::prerequisites;
use crate::process::say;
use std::process::ExitCode;
use std::time::Instant;

const SCRIPT: &str = "soak/run.mjs";

/// The options that take a whole number, passed on to the script as they are.
const NUMBER_OPTIONS: [&str; 10] = [
    "--seed",
    "--mutations",
    "--entities",
    "--tabs",
    "--kills",
    "--restarts",
    "--offline",
    "--downs",
    "--fails",
    "--drops",
];

const USAGE: &str =
    "cargo xtask soak [--seed <n>] [--mutations <n>] [--entities <n>] [--tabs <n>] \
[--kills <n>] [--restarts <n>] [--offline <n>] [--downs <n>] [--fails <n>] [--drops <n>] [--quiet]";

#[derive(Debug, Default, PartialEq)]
pub struct Options {
    /// Options for the script, in the order given.
    script_arguments: Vec<String>,
}

impl Options {
    pub fn parse(arguments: &[String]) -> Result<Self, String> {
        let mut options = Options::default();
        let mut arguments = arguments.iter();
        while let Some(argument) = arguments.next() {
            if argument == "--quiet" {
                options.script_arguments.push(argument.clone());
            } else if NUMBER_OPTIONS.contains(&argument.as_str()) {
                let value = arguments
                    .next()
                    .ok_or(format!("{argument} needs a number"))?;
                if value.parse::<u64>().is_err() {
                    return Err(format!("{argument} must be a whole number, not `{value}`"));
                }
                options
                    .script_arguments
                    .extend([argument.clone(), value.clone()]);
            } else {
                return Err(format!("unknown soak option `{argument}`; usage: {USAGE}"));
            }
        }
        Ok(options)
    }
}

pub fn soak(options: &Options) -> Result<ExitCode, String> {
    let tools = prerequisites::ensure_build_tools()?;
    prerequisites::ensure_browsers(&[Engine::Chromium])?;
    build(&tools)?;
    let run = node_for_browser_runs()
        .arguments([SCRIPT])
        .arguments(options.script_arguments.iter().cloned());
    say(format!("running the chaos soak: {}", run.display()));
    let started = Instant::now();
    let status = run.status()?;
    let seconds = started.elapsed().as_secs_f64();
    if status.success() {
        say(format!("the soak passed in {seconds:.1} s"));
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "xtask: the soak failed after {seconds:.1} s ({status}); the lines above give the seed and the command that replays it"
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
        let options = parse(&["--seed", "42", "--mutations", "500", "--quiet"]).unwrap();
        assert_eq!(
            options.script_arguments,
            ["--seed", "42", "--mutations", "500", "--quiet"]
        );
        assert!(parse(&["--seed"]).is_err());
        assert!(parse(&["--kills", "-1"]).is_err());
        assert!(parse(&["--tabs", "three"]).is_err());
        assert!(parse(&["--chaos"]).is_err());
    }
}
