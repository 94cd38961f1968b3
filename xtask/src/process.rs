//! Running other programs from the workspace root, and showing the user
//! exactly what ran so that any step can be rerun by hand.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;

/// Prints one progress line, prefixed so it stands out from tool output.
pub fn say(message: impl std::fmt::Display) {
    println!("xtask: {message}");
}

/// The workspace root, whatever directory `cargo xtask` was started from.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// A cargo command from its arguments separated by spaces.
pub fn cargo(arguments: &str) -> CommandLine {
    CommandLine::new("cargo").arguments(arguments.split_whitespace())
}

/// A command together with the environment it needs, kept as text so the
/// same value both runs and prints as a copy-pasteable line.
#[derive(Clone, Debug)]
pub struct CommandLine {
    program: String,
    arguments: Vec<String>,
    environment: Vec<(String, String)>,
    /// Variables taken out of the inherited environment.
    removed: Vec<String>,
}

impl CommandLine {
    pub fn new(program: impl Into<String>) -> Self {
        CommandLine {
            program: program.into(),
            arguments: Vec::new(),
            environment: Vec::new(),
            removed: Vec::new(),
        }
    }

    pub fn arguments<I, S>(mut self, arguments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.arguments.extend(arguments.into_iter().map(Into::into));
        self
    }

    pub fn environment(mut self, name: &str, value: impl Into<String>) -> Self {
        self.environment.push((name.to_string(), value.into()));
        self
    }

    /// Runs the program without `name` in its environment, even when the
    /// user's shell sets it.
    pub fn without_environment(mut self, name: &str) -> Self {
        self.removed.push(name.to_string());
        self
    }

    /// The same command run through a wrapper, `program arguments... command`
    /// (e.g. `xvfb-run -a`), with the same environment.
    pub fn through(self, program: &str, arguments: &[&str]) -> Self {
        let mut words: Vec<String> = arguments.iter().map(|word| word.to_string()).collect();
        words.push(self.program);
        words.extend(self.arguments);
        CommandLine {
            program: program.to_string(),
            arguments: words,
            ..self
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        for name in &self.removed {
            command.env_remove(name);
        }
        command
            .args(&self.arguments)
            .envs(self.environment.iter().map(|(name, value)| (name, value)))
            .current_dir(workspace_root());
        command
    }

    /// Runs with the terminal attached; fails, naming the command, when the
    /// program cannot start or exits unsuccessfully.
    pub fn run(&self) -> Result<(), String> {
        let status = self.status()?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("`{}` failed ({status})", self.display()))
        }
    }

    /// Starts the program with the terminal attached, without waiting.
    pub fn spawn(&self) -> Result<Child, String> {
        self.command()
            .spawn()
            .map_err(|error| self.start_error(&error))
    }

    /// Runs with the terminal attached and returns how the program exited.
    pub fn status(&self) -> Result<ExitStatus, String> {
        self.command()
            .status()
            .map_err(|error| self.start_error(&error))
    }

    /// Runs and returns standard output, or `None` when the program is not
    /// installed or fails: callers use it to probe for tools.
    pub fn probe(&self) -> Option<String> {
        let output = self.probe_bytes()?;
        Some(String::from_utf8_lossy(&output).into_owned())
    }

    pub fn probe_bytes(&self) -> Option<Vec<u8>> {
        let output = self.command().stderr(Stdio::null()).output().ok()?;
        output.status.success().then_some(output.stdout)
    }

    /// Runs while copying the program's output to the terminal as it comes,
    /// and hands every complete line (both streams) to `on_line`.
    pub fn run_streaming(&self, on_line: impl Fn(&str) + Sync) -> Result<ExitStatus, String> {
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|error| self.start_error(&error))?;
        let standard_output = child.stdout.take().expect("stdout is piped");
        let standard_error = child.stderr.take().expect("stderr is piped");
        thread::scope(|scope| {
            scope.spawn(|| forward_lines(standard_error, io::stderr(), &on_line));
            forward_lines(standard_output, io::stdout(), &on_line);
        });
        child
            .wait()
            .map_err(|error| format!("waiting for `{}` failed: {error}", self.display()))
    }

    fn start_error(&self, error: &io::Error) -> String {
        format!("could not start `{}`: {error}", self.display())
    }

    /// The command as a shell line, environment first.
    pub fn display(&self) -> String {
        let removed = (!self.removed.is_empty()).then(|| {
            let unset = self.removed.iter().map(|name| format!("-u {name}"));
            std::iter::once("env".to_string())
                .chain(unset)
                .collect::<Vec<_>>()
                .join(" ")
        });
        let environment = self
            .environment
            .iter()
            .map(|(name, value)| format!("{name}={}", shell_quote(value)));
        let environment = removed.into_iter().chain(environment);
        let words = std::iter::once(shell_quote(&self.program))
            .chain(self.arguments.iter().map(|argument| shell_quote(argument)));
        environment.chain(words).collect::<Vec<_>>().join(" ")
    }
}

/// Copies raw chunks straight through (so progress output is not held back
/// until a newline) and reports complete lines separately.
fn forward_lines(mut source: impl Read, mut sink: impl Write, on_line: &impl Fn(&str)) {
    let mut buffer = [0u8; 8192];
    let mut pending_line = Vec::new();
    loop {
        let count = match source.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(count) => count,
        };
        let chunk = &buffer[..count];
        // A closed terminal must not stop the child from being drained.
        let _ = sink.write_all(chunk).and_then(|()| sink.flush());
        for &byte in chunk {
            if byte == b'\n' {
                on_line(&String::from_utf8_lossy(&pending_line));
                pending_line.clear();
            } else {
                pending_line.push(byte);
            }
        }
    }
    if !pending_line.is_empty() {
        on_line(&String::from_utf8_lossy(&pending_line));
    }
}

fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|character| character.is_ascii_alphanumeric() || "-_./=:,+@%".contains(character));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::{shell_quote, CommandLine};

    #[test]
    fn displays_a_copy_pasteable_line() {
        let line = CommandLine::new("node")
            .arguments(["--test", "--test-name-pattern", "queued offline"])
            .environment("CHROMIUM", "/usr/bin/chromium");
        assert_eq!(
            line.display(),
            "CHROMIUM=/usr/bin/chromium node --test --test-name-pattern 'queued offline'"
        );
    }

    #[test]
    fn displays_removed_variables_and_wrappers() {
        let line = CommandLine::new("cargo")
            .arguments(["test"])
            .environment("SAFARIDRIVER", "/usr/bin/WebKitWebDriver")
            .without_environment("GECKODRIVER")
            .through("xvfb-run", &["-a"]);
        assert_eq!(
            line.display(),
            "env -u GECKODRIVER SAFARIDRIVER=/usr/bin/WebKitWebDriver xvfb-run -a cargo test"
        );
    }

    #[test]
    fn quotes_single_quotes() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
