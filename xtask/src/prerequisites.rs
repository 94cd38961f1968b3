//! Finds or installs every tool the other commands need, before they need
//! it. What cannot be installed here is printed as a command to run by hand.

use crate::engines::Engine;
use crate::process::{cargo, say, workspace_root, CommandLine};
use std::env;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub const WASM_TARGET: &str = "wasm32-unknown-unknown";
pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const WEBKIT_WEBDRIVER: &str = "/usr/bin/WebKitWebDriver";

/// Tools located by [`ensure_build_tools`].
pub struct Tools {
    pub wasm_bindgen: PathBuf,
}

pub fn ensure_build_tools() -> Result<Tools, String> {
    ensure_wasm_target()?;
    let wasm_bindgen = ensure_wasm_bindgen()?;
    ensure_npm_packages()?;
    Ok(Tools { wasm_bindgen })
}

fn ensure_wasm_target() -> Result<(), String> {
    let add = CommandLine::new("rustup").arguments(["target", "add", WASM_TARGET]);
    let installed = CommandLine::new("rustup")
        .arguments(["target", "list", "--installed"])
        .probe()
        .ok_or_else(|| {
            format!(
                "rustup was not found; install Rust with rustup (https://rustup.rs), then run `{}`",
                add.display()
            )
        })?;
    if installed.lines().any(|line| line.trim() == WASM_TARGET) {
        return Ok(());
    }
    say(format!(
        "installing the {WASM_TARGET} target ({})...",
        add.display()
    ));
    add.run()
        .map_err(|error| format!("{error}\ninstall it by hand: {}", add.display()))
}

/// The wasm-bindgen CLI must be exactly the version of the `wasm-bindgen`
/// crate in Cargo.lock, or the glue it generates does not fit the module.
fn ensure_wasm_bindgen() -> Result<PathBuf, String> {
    let lock_path = workspace_root().join("Cargo.lock");
    let lock = fs::read_to_string(&lock_path)
        .map_err(|error| format!("cannot read {}: {error}", lock_path.display()))?;
    let wanted = locked_version(&lock, "wasm-bindgen")?;
    let found = installed_wasm_bindgens();
    let binary = match found.iter().find(|(_, version)| *version == wanted) {
        Some((binary, _)) => binary.clone(),
        None => install_wasm_bindgen(&wanted, &found)?,
    };
    let directory = binary.parent().expect("a binary has a directory");
    // Cargo finds the test runner configured in .cargo/config.toml
    // (`wasm-bindgen-test-runner`) on PATH; it must be the one installed
    // beside this wasm-bindgen, so that directory goes first for every
    // program started from here on.
    let path = env::var_os("PATH").unwrap_or_default();
    let directories = std::iter::once(directory.to_path_buf()).chain(env::split_paths(&path));
    let joined: OsString = env::join_paths(directories)
        .map_err(|error| format!("cannot add {} to PATH: {error}", directory.display()))?;
    env::set_var("PATH", joined);
    Ok(binary)
}

fn install_wasm_bindgen(wanted: &str, found: &[(PathBuf, String)]) -> Result<PathBuf, String> {
    // Not `--locked`: one of the CLI's pinned dependencies is missing from
    // the registry here, while the unlocked build works. A debug build: it
    // is built in about 2 minutes instead of 6 on 2 cores, and writes the
    // same glue and wasm (it takes about a second for the runtime, and
    // the test runner about 10 seconds more per test binary).
    let install = cargo(&format!(
        "install wasm-bindgen-cli --version {wanted} --debug"
    ));
    let reason = match found.first() {
        Some((binary, version)) => format!("{} is {version}", binary.display()),
        None => "it is not installed".to_string(),
    };
    say(format!(
        "installing wasm-bindgen-cli {wanted} to match Cargo.lock ({reason}), a debug build; about 2 minutes..."
    ));
    install
        .run()
        .map_err(|error| format!("{error}\ninstall it by hand: {}", install.display()))?;
    installed_wasm_bindgens()
        .into_iter()
        .find(|(_, version)| version == wanted)
        .map(|(binary, _)| binary)
        .ok_or_else(|| {
            format!(
                "`{}` finished, but no wasm-bindgen {wanted} was found on PATH or in cargo's bin folder",
                install.display()
            )
        })
}

/// Every `wasm-bindgen` on PATH or in cargo's bin folders, with its version.
fn installed_wasm_bindgens() -> Vec<(PathBuf, String)> {
    let mut directories: Vec<PathBuf> =
        env::split_paths(&env::var_os("PATH").unwrap_or_default()).collect();
    directories.extend(cargo_bin_directories());
    let mut binaries: Vec<PathBuf> = Vec::new();
    for directory in directories {
        let binary = directory.join("wasm-bindgen");
        if binary.is_file() && !binaries.contains(&binary) {
            binaries.push(binary);
        }
    }
    binaries
        .into_iter()
        .filter_map(|binary| {
            let output = CommandLine::new(binary.to_string_lossy())
                .arguments(["--version"])
                .probe()?;
            // The output reads "wasm-bindgen 0.2.130".
            let version = output.split_whitespace().nth(1)?.to_string();
            Some((binary, version))
        })
        .collect()
}

/// Where `cargo install` puts binaries, in the order cargo itself picks.
fn cargo_bin_directories() -> Vec<PathBuf> {
    let mut roots = Vec::new();
    if let Some(root) = env::var_os("CARGO_INSTALL_ROOT") {
        roots.push(PathBuf::from(root));
    }
    if let Some(home) = env::var_os("CARGO_HOME") {
        roots.push(PathBuf::from(home));
    }
    if let Some(home) = env::var_os("HOME") {
        roots.push(Path::new(&home).join(".cargo"));
    }
    roots.into_iter().map(|root| root.join("bin")).collect()
}

/// The version of `package` in a Cargo.lock; an error when it is absent or
/// locked at more than one version.
fn locked_version(lock: &str, package: &str) -> Result<String, String> {
    let mut versions = Vec::new();
    for entry in lock.split("[[package]]").skip(1) {
        let field = |name: &str| {
            entry.lines().find_map(|line| {
                let value = line.strip_prefix(name)?.trim_start().strip_prefix('=')?;
                Some(value.trim().trim_matches('"').to_string())
            })
        };
        if field("name").as_deref() == Some(package) {
            versions.extend(field("version"));
        }
    }
    match versions.as_slice() {
        [version] => Ok(version.clone()),
        [] => Err(format!(
            "Cargo.lock has no `{package}` package; run `cargo generate-lockfile`"
        )),
        several => Err(format!(
            "Cargo.lock has `{package}` at several versions ({}); the wasm-bindgen CLI can match only one",
            several.join(", ")
        )),
    }
}

/// `npm ci` when node_modules is missing or older than package-lock.json.
fn ensure_npm_packages() -> Result<(), String> {
    let root = workspace_root();
    let lock_path = root.join("package-lock.json");
    let lock_time = modified(&lock_path).ok_or_else(|| {
        format!(
            "{} is missing; run `npm install` to create it",
            lock_path.display()
        )
    })?;
    let modules = root.join("node_modules");
    // npm rewrites its hidden lockfile on every install, even when the
    // folder's own entries (and so its time) did not change.
    let modules_time = [modules.clone(), modules.join(".package-lock.json")]
        .iter()
        .filter_map(|path| modified(path))
        .max();
    let binaries_present = ["wasm-opt", "tsc"]
        .iter()
        .all(|name| modules.join(".bin").join(name).exists());
    if binaries_present && modules_time.is_some_and(|time| time >= lock_time) {
        return Ok(());
    }
    let clean_install = CommandLine::new("npm").arguments(["ci", "--no-audit", "--no-fund"]);
    if CommandLine::new("npm")
        .arguments(["--version"])
        .probe()
        .is_none()
    {
        return Err(format!(
            "npm was not found; install Node.js 20 or newer with npm (Debian: `apt-get install -y nodejs npm`), then run `{}`",
            clean_install.display()
        ));
    }
    say(format!(
        "installing npm packages ({})...",
        clean_install.display()
    ));
    clean_install
        .run()
        .map_err(|error| format!("{error}\ninstall them by hand: {}", clean_install.display()))
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path)
        .and_then(|metadata| metadata.modified())
        .ok()
}

/// The browsers of `engines` and their drivers, from Debian's packages (one
/// `apt-get install` for everything missing), and for Firefox geckodriver
/// from crates.io, which the in-browser wasm tests drive it with (its path
/// is the result).
pub fn ensure_browsers(engines: &[Engine]) -> Result<Option<PathBuf>, String> {
    let missing: Vec<(&str, &str)> = engines
        .iter()
        .flat_map(|engine| engine.debian_files().iter().copied())
        .filter(|(path, _)| !Path::new(path).exists())
        .collect();
    if !missing.is_empty() {
        install_debian_packages(&missing)?;
    }
    if engines.contains(&Engine::Firefox) {
        return ensure_geckodriver().map(Some);
    }
    Ok(None)
}

fn install_debian_packages(missing: &[(&str, &str)]) -> Result<(), String> {
    let mut packages: Vec<&str> = missing.iter().map(|(_, package)| *package).collect();
    packages.dedup();
    let by_hand = format!(
        "apt-get update && apt-get install -y {}",
        packages.join(" ")
    );
    let files: Vec<&str> = missing.iter().map(|(path, _)| *path).collect();
    let running_as_root = CommandLine::new("id")
        .arguments(["-u"])
        .probe()
        .is_some_and(|user| user.trim() == "0");
    if !running_as_root {
        return Err(format!(
            "{} missing; install them by hand, then rerun: sudo sh -c '{by_hand}'",
            files.join(", ")
        ));
    }
    say(format!(
        "installing browsers and drivers (apt-get install {})...",
        packages.join(" ")
    ));
    let mut install = vec!["install", "-y"];
    install.extend(&packages);
    for arguments in [vec!["update"], install] {
        CommandLine::new("apt-get")
            .arguments(arguments)
            .environment("DEBIAN_FRONTEND", "noninteractive")
            .run()
            .map_err(|error| format!("{error}\ninstall them by hand: {by_hand}"))?;
    }
    match files.into_iter().find(|path| !Path::new(path).exists()) {
        Some(path) => Err(format!("{path} is still missing after `{by_hand}`")),
        None => Ok(()),
    }
}

/// geckodriver on PATH or in cargo's bin folder, else `cargo install`ed.
fn ensure_geckodriver() -> Result<PathBuf, String> {
    if let Some(found) = find_geckodriver() {
        return Ok(found);
    }
    // `--locked`: geckodriver's own lock file builds here; unlocked
    // dependency versions have not been tried. A debug build: it only relays
    // WebDriver commands, and is built in under 2 minutes instead of 4.
    let install = cargo("install geckodriver --locked --debug");
    say(format!(
        "installing geckodriver for the in-browser tests in Firefox ({}); about 2 minutes...",
        install.display()
    ));
    install
        .run()
        .map_err(|error| format!("{error}\ninstall it by hand: {}", install.display()))?;
    find_geckodriver().ok_or_else(|| {
        format!(
            "`{}` finished, but no geckodriver was found on PATH or in cargo's bin folder",
            install.display()
        )
    })
}

fn find_geckodriver() -> Option<PathBuf> {
    env::split_paths(&env::var_os("PATH").unwrap_or_default())
        .chain(cargo_bin_directories())
        .map(|directory| directory.join("geckodriver"))
        .find(|binary| binary.is_file())
}

#[cfg(test)]
mod tests {
    use super::locked_version;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "wasm-bindgen"
version = "0.2.130"
source = "registry+https://github.com/rust-lang/crates.io-index"
dependencies = [
 "wasm-bindgen-macro",
]

[[package]]
name = "wasm-bindgen-macro"
version = "0.2.130"
"#;

    #[test]
    fn reads_the_locked_version() {
        assert_eq!(
            locked_version(LOCK, "wasm-bindgen"),
            Ok("0.2.130".to_string())
        );
    }

    #[test]
    fn does_not_match_a_name_prefix() {
        assert!(locked_version(LOCK, "wasm").is_err());
    }

    #[test]
    fn refuses_two_versions() {
        let lock = format!("{LOCK}\n[[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.100\"\n");
        let error = locked_version(&lock, "wasm-bindgen").unwrap_err();
        assert!(error.contains("0.2.130, 0.2.100"), "{error}");
    }
}
