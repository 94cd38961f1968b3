//! `cargo xtask <command>`: builds the service-worker runtime, runs every
//! test suite and starts the demo, installing what is missing on the way.
//!
//! It only uses std so that it compiles in a second on a fresh clone.

mod bench;
mod build;
mod demo;
mod engines;
mod fuzz;
mod prerequisites;
mod process;
mod soak;
mod test;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  build                      build dist/outbox/ (wasm, glue, loader, page shim) and the demo server
  test [--e2e-only] [--filter <pattern>] [--engine <chromium|firefox|webkit>[,...]]
                             run fmt, clippy, native, wasm-in-browser and end-to-end tests, the last two in
                             Chromium, Firefox and WebKit (or only the engines named);
                             --filter is passed to the end-to-end tests as --test-name-pattern
  fuzz [--seconds <n>]       run each fuzz target (record, message, config, merge) for n seconds (default 60);
                             failing inputs are kept in tests/fuzz-corpus/, which cargo test replays
  demo [--port <port>]       build, then serve the demo site (default port 8080; control port is port + 1)
  screenshots                build, then run the demo's end-to-end test, which regenerates docs/demo.png
  bench [--quick] [--reps <n>]
                             build, then benchmark sw-outbox against Workbox, a bare IndexedDB worker and
                             no worker in headless Chromium; writes bench/results/latest.{json,md}
  soak [--seed <n>] [--mutations <n>] [--entities <n>] [--tabs <n>] [--kills <n>] [--restarts <n>]
       [--offline <n>] [--downs <n>] [--fails <n>] [--drops <n>] [--quiet]
                             build, then run the chaos soak (default 10,000 mutations over 500 entities from
                             3 tabs) in headless Chromium under worker kills, browser restarts, offline spells,
                             server outages and injected 500/503/429 and dropped connections";

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    match run(&arguments) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("xtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(arguments: &[String]) -> Result<ExitCode, String> {
    let Some((command, options)) = arguments.split_first() else {
        println!("{USAGE}");
        return Ok(ExitCode::FAILURE);
    };
    match command.as_str() {
        "build" => {
            reject_options(options)?;
            let tools = prerequisites::ensure_build_tools()?;
            build::build(&tools)?;
            Ok(ExitCode::SUCCESS)
        }
        "test" => Ok(test::test(test::Options::parse(options)?)),
        "fuzz" => fuzz::fuzz(&fuzz::Options::parse(options)?),
        "demo" => demo::demo(demo::parse_port(options)?),
        "screenshots" => {
            reject_options(options)?;
            demo::screenshots()
        }
        "bench" => bench::bench(&bench::Options::parse(options)?),
        "soak" => soak::soak(&soak::Options::parse(options)?),
        "help" | "--help" | "-h" => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        other => Err(format!("unknown command `{other}`\n{USAGE}")),
    }
}

fn reject_options(options: &[String]) -> Result<(), String> {
    match options.first() {
        Some(option) => Err(format!("unexpected argument `{option}`\n{USAGE}")),
        None => Ok(()),
    }
}
