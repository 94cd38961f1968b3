//! `cargo xtask demo`: builds everything, then serves the demo site with
//! the reference server until Ctrl-C.

use crate::build::{build, DEMO_SERVER, DIST_DIRECTORY};
use crate::prerequisites;
use crate::process::{say, workspace_root, CommandLine};
use std::fs;
use std::process::ExitCode;

const SITE_DIRECTORY: &str = "demo/site";
const DEFAULT_PORT: u16 = 8080;

/// Shown only until the real demo site exists.
const PLACEHOLDER_PAGE: &str = "<!doctype html>
<html lang=\"en\">
<meta charset=\"utf-8\">
<title>sw-outbox demo</title>
<h1>sw-outbox demo</h1>
<p>The demo site is not written yet. This placeholder was created by <code>cargo xtask demo</code>.</p>
</html>
";

/// Reads `--port <port>`; the control port is the next one, so it must
/// exist too.
pub fn parse_port(arguments: &[String]) -> Result<u16, String> {
    match arguments {
        [] => Ok(DEFAULT_PORT),
        [flag, port] if flag == "--port" => match port.parse::<u16>() {
            Ok(port) if port > 0 && port < u16::MAX => Ok(port),
            _ => Err(format!(
                "--port must be a number from 1 to {}, not `{port}`",
                u16::MAX - 1
            )),
        },
        _ => Err("usage: cargo xtask demo [--port <port>]".to_string()),
    }
}

pub fn demo(port: u16) -> Result<ExitCode, String> {
    let tools = prerequisites::ensure_build_tools()?;
    build(&tools)?;
    let site = workspace_root().join(SITE_DIRECTORY);
    if !site.exists() {
        say(format!(
            "creating a placeholder {SITE_DIRECTORY}/index.html"
        ));
        fs::create_dir_all(&site)
            .and_then(|()| fs::write(site.join("index.html"), PLACEHOLDER_PAGE))
            .map_err(|error| format!("cannot create {}: {error}", site.display()))?;
    }
    let control_port = port + 1;
    let server =
        CommandLine::new(workspace_root().join(DEMO_SERVER).to_string_lossy()).arguments([
            "--port".to_string(),
            port.to_string(),
            "--control-port".to_string(),
            control_port.to_string(),
            "--site".to_string(),
            SITE_DIRECTORY.to_string(),
            "--outbox".to_string(),
            DIST_DIRECTORY.to_string(),
        ]);
    say(format!("starting {}", server.display()));
    println!("sw-outbox demo: http://127.0.0.1:{port}/");
    println!(
        "Try first: open it, switch DevTools → Network to Offline and save something; the page gets \
         202 at once and the outbox sends it when you go back online. Fault injection listens on \
         http://127.0.0.1:{control_port}/. Stop with Ctrl-C."
    );
    let mut running = server.spawn()?;
    ignore_interrupts();
    let status = running
        .wait()
        .map_err(|error| format!("waiting for the demo server failed: {error}"))?;
    if status.success() || interrupted(status) {
        say("demo stopped");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("xtask: the demo server exited ({status})");
        Ok(ExitCode::FAILURE)
    }
}

/// SIGINT's number on Linux and macOS.
#[cfg(unix)]
const INTERRUPT_SIGNAL: i32 = 2;

/// Ctrl-C reaches the server directly, as it shares the terminal's process
/// group. xtask itself ignores it (only after starting the server, which
/// would otherwise inherit that), so it keeps waiting while the server shuts
/// down and the shell prompt does not return early.
#[cfg(unix)]
fn ignore_interrupts() {
    const SIG_IGN: usize = 1;
    extern "C" {
        fn signal(signal_number: i32, handler: usize) -> usize;
    }
    // SAFETY: installs libc's own "ignore" disposition; no handler code runs.
    unsafe {
        signal(INTERRUPT_SIGNAL, SIG_IGN);
    }
}

#[cfg(not(unix))]
fn ignore_interrupts() {}

#[cfg(unix)]
fn interrupted(status: std::process::ExitStatus) -> bool {
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(INTERRUPT_SIGNAL)
}

#[cfg(not(unix))]
fn interrupted(_status: std::process::ExitStatus) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::parse_port;

    #[test]
    fn reads_the_port() {
        assert_eq!(parse_port(&[]), Ok(8080));
        assert_eq!(
            parse_port(&["--port".to_string(), "9000".to_string()]),
            Ok(9000)
        );
        assert!(parse_port(&["--port".to_string(), "65535".to_string()]).is_err());
        assert!(parse_port(&["--port".to_string(), "http".to_string()]).is_err());
        assert!(parse_port(&["9000".to_string()]).is_err());
    }
}
