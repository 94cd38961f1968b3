//! `cargo xtask build`: the wasm runtime, its glue and loader in one
//! synchronously-loading script, the page shim, the ready `sw.js`, and the
//! reference server the tests and demo run against.

use crate::prerequisites::{Tools, CHROMIUM, WASM_TARGET};
use crate::process::{cargo, say, workspace_root, CommandLine};
use std::fs;
use std::path::Path;

/// The `[lib] name` of the sw-outbox crate, which names the wasm file.
const LIBRARY_NAME: &str = "outbox";
const BINDGEN_DIRECTORY: &str = "target/outbox-bindgen";
pub const DIST_DIRECTORY: &str = "dist/outbox";
pub const DEMO_SERVER: &str = "target/debug/outbox-demo";

/// `node` with what the browser tests and harnesses read from the
/// environment: the reference server, the built `dist/outbox` and Chromium.
pub fn node_for_browser_runs() -> CommandLine {
    let root = workspace_root();
    CommandLine::new("node")
        .environment("OUTBOX_SERVER", root.join(DEMO_SERVER).to_string_lossy())
        .environment("OUTBOX_DIST", root.join(DIST_DIRECTORY).to_string_lossy())
        .environment("CHROMIUM", CHROMIUM)
}
const LOADER: &str = "sw/loader.js";
/// Files copied unchanged into dist/outbox, as (source, name in dist).
const COPIED_FILES: [(&str, &str); 3] = [
    ("app-shim/outbox.js", "outbox.js"),
    ("app-shim/outbox.d.ts", "outbox.d.ts"),
    ("sw/sw.js", "sw.js"),
];
/// The features rustc enables for wasm32 by default (Rust 1.82 and later).
/// wasm-opt must be told: without reference types it rejects the externref
/// table wasm-bindgen emits, and without multivalue the functions that
/// return pairs.
const WASM_FEATURES: [&str; 6] = [
    "--enable-bulk-memory",
    "--enable-multivalue",
    "--enable-mutable-globals",
    "--enable-nontrapping-float-to-int",
    "--enable-reference-types",
    "--enable-sign-ext",
];

pub fn build(tools: &Tools) -> Result<(), String> {
    let root = workspace_root();
    let dist = root.join(DIST_DIRECTORY);
    // Removed before anything can fail, so a failed build never leaves an
    // older runtime behind for the tests or the demo to pick up.
    if dist.exists() {
        fs::remove_dir_all(&dist)
            .map_err(|error| format!("cannot remove {}: {error}", dist.display()))?;
    }
    let missing: Vec<&str> = std::iter::once(LOADER)
        .chain(COPIED_FILES.iter().map(|(source, _)| *source))
        .filter(|source| !root.join(source).is_file())
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "cannot build {DIST_DIRECTORY}: missing source file(s) {}",
            missing.join(", ")
        ));
    }

    say(format!(
        "building the wasm runtime (release, {WASM_TARGET})..."
    ));
    cargo(&format!(
        "build --release --target {WASM_TARGET} -p sw-outbox --lib"
    ))
    .run()?;
    let compiled = format!("target/{WASM_TARGET}/release/{LIBRARY_NAME}.wasm");

    say("generating the JavaScript glue (wasm-bindgen --target no-modules)...");
    CommandLine::new(tools.wasm_bindgen.to_string_lossy())
        .arguments(["--target", "no-modules", "--no-typescript"])
        .arguments([
            "--out-dir",
            BINDGEN_DIRECTORY,
            "--out-name",
            LIBRARY_NAME,
            &compiled,
        ])
        .run()?;
    let bound = format!("{BINDGEN_DIRECTORY}/{LIBRARY_NAME}_bg.wasm");
    let optimized = format!("{BINDGEN_DIRECTORY}/{LIBRARY_NAME}_optimized.wasm");

    say("optimizing the wasm for size (wasm-opt -Oz from npm binaryen)...");
    // Debian's older wasm-opt corrupts wasm-bindgen's externref table, so
    // only the pinned npm build is used.
    CommandLine::new("node_modules/.bin/wasm-opt")
        .arguments(["-Oz"])
        .arguments(WASM_FEATURES)
        .arguments([bound.as_str(), "-o", &optimized])
        .run()?;

    say(format!("assembling {DIST_DIRECTORY}/..."));
    assemble(&root.join(optimized), &dist)?;

    say("building the reference server (outbox-demo)...");
    cargo("build -p outbox-demo").run()
}

/// Writes dist/outbox from the optimized wasm, the glue and the hand-written
/// sources, and reports the size that pages pay for.
fn assemble(optimized: &Path, dist: &Path) -> Result<(), String> {
    let root = workspace_root();
    let version = package_version(&read_text(&root.join("Cargo.toml"))?)?;
    let wasm = fs::read(optimized)
        .map_err(|error| format!("cannot read {}: {error}", optimized.display()))?;
    let glue = read_text(&root.join(format!("{BINDGEN_DIRECTORY}/{LIBRARY_NAME}.js")))?;
    let loader = read_text(&root.join(LOADER))?;
    let script = service_worker_script(&version, &wasm, &with_retire_hook(&glue)?, &loader);
    fs::create_dir_all(dist)
        .map_err(|error| format!("cannot create {}: {error}", dist.display()))?;
    let script_path = dist.join("outbox-sw.js");
    fs::write(&script_path, &script)
        .map_err(|error| format!("cannot write {}: {error}", script_path.display()))?;
    for (source, name) in COPIED_FILES {
        fs::copy(root.join(source), dist.join(name))
            .map_err(|error| format!("cannot copy {source} to {DIST_DIRECTORY}/{name}: {error}"))?;
    }
    say(format!(
        "wasm {} optimized, outbox-sw.js {} raw, {} gzip -9",
        describe_size(wasm.len()),
        describe_size(script.len()),
        gzip_size(&script_path).map_or_else(|| "unknown (gzip failed)".to_string(), describe_size),
    ));
    Ok(())
}

/// The end of wasm-bindgen's no-modules glue, where the retire hook goes.
const GLUE_END: &str = "    return Object.assign(__wbg_init, { initSync }, exports);";

/// Gives the glue `__outboxRetire()`: after a trap the loader retires the
/// instance, whose leftover callbacks then fail with a plain `Error` instead
/// of trapping again.
fn with_retire_hook(glue: &str) -> Result<String, String> {
    if glue.matches(GLUE_END).count() != 1 {
        return Err(format!(
            "the wasm-bindgen glue does not end with `{}`; the retire hook cannot be added",
            GLUE_END.trim()
        ));
    }
    Ok(glue.replace(
        GLUE_END,
        &format!(
            "    exports.__outboxRetire = function () {{\n\
             \x20       wasm = new Proxy({{}}, {{ get() {{ throw new Error('outbox: a retired wasm instance was called'); }} }});\n\
             \x20   }};\n{GLUE_END}"
        ),
    ))
}

/// One classic script holding the wasm bytes, the glue and the loader, so a
/// single `importScripts` starts the runtime synchronously, even offline.
/// The glue sits in a function so the loader can create a fresh instance
/// when it needs one.
fn service_worker_script(version: &str, wasm: &[u8], glue: &str, loader: &str) -> String {
    format!(
        "// sw-outbox {version} — service-worker runtime (generated by cargo xtask build)\n\
         self.__outboxWasmBytes = (function (text) {{ \
         const bytes = new Uint8Array(text.length); \
         for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i); \
         return bytes; }})(\"{bytes}\");\n\
         function __outboxBindings() {{\n{glue}\nreturn wasm_bindgen;\n}}\n\
         {loader}\n",
        bytes = byte_string(wasm),
        glue = glue.trim_end(),
        loader = loader.trim_end(),
    )
}

/// The bytes as the body of a double-quoted JavaScript string whose
/// characters U+0000–U+00FF are the bytes. Worker scripts are decoded as
/// UTF-8, and unlike base64 this keeps the bytes aligned, so the script
/// compresses nearly as well as the wasm itself.
fn byte_string(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 5 / 4);
    for &byte in bytes {
        match byte {
            b'\\' => text.push_str("\\\\"),
            b'"' => text.push_str("\\\""),
            b'\n' => text.push_str("\\n"),
            b'\r' => text.push_str("\\r"),
            0 => text.push_str("\\x00"),
            _ => text.push(char::from(byte)),
        }
    }
    text
}

/// The `version` of the `[package]` table in a Cargo.toml.
fn package_version(manifest: &str) -> Result<String, String> {
    let mut in_package = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_package = line == "[package]";
        } else if let Some(value) = in_package
            .then(|| line.strip_prefix("version"))
            .flatten()
            .and_then(|rest| rest.trim_start().strip_prefix('='))
        {
            return Ok(value.trim().trim_matches('"').to_string());
        }
    }
    Err("Cargo.toml has no [package] version".to_string())
}

fn read_text(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
}

fn gzip_size(path: &Path) -> Option<usize> {
    let compressed = CommandLine::new("gzip")
        .arguments(["-9", "-c", &path.to_string_lossy()])
        .probe_bytes()?;
    Some(compressed.len())
}

fn describe_size(bytes: usize) -> String {
    format!("{bytes} bytes ({:.1} KiB)", bytes as f64 / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::{byte_string, package_version, service_worker_script, with_retire_hook, GLUE_END};

    #[test]
    fn reads_the_package_version_only() {
        let manifest = "[workspace]\nversion = \"9\"\n\n[package]\nname = \"sw-outbox\"\nversion = \"0.1.0\"\n";
        assert_eq!(package_version(manifest), Ok("0.1.0".to_string()));
        assert!(package_version("[dependencies]\nversion = \"1\"\n").is_err());
    }

    #[test]
    fn the_retire_hook_goes_before_the_end_of_the_glue() {
        let glue = format!(
            "let wasm_bindgen = (function(exports) {{\n    let wasm;\n{GLUE_END}\n}})({{}});\n"
        );
        let hooked = with_retire_hook(&glue).unwrap();
        let hook = hooked
            .find("exports.__outboxRetire = function () {")
            .unwrap();
        assert!(hook < hooked.find(GLUE_END).unwrap());
        assert!(hooked.contains("        wasm = new Proxy({}, "));
        assert!(with_retire_hook("let wasm_bindgen = 1;").is_err());
    }

    #[test]
    fn bytes_become_a_string_of_the_same_code_units() {
        assert_eq!(
            byte_string(&[0, b'a', b'"', b'\\', b'\n', b'\r', 0x7f, 0x80, 0xff]),
            "\\x00a\\\"\\\\\\n\\r\u{7f}\u{80}\u{ff}"
        );
    }

    #[test]
    fn wraps_the_glue_between_the_bytes_and_the_loader() {
        let script = service_worker_script("0.1.0", b"abc", "let wasm_bindgen;\n", "Outbox = 1;\n");
        let lines: Vec<&str> = script.lines().collect();
        assert_eq!(
            lines[0],
            "// sw-outbox 0.1.0 — service-worker runtime (generated by cargo xtask build)"
        );
        assert_eq!(
            lines[1],
            "self.__outboxWasmBytes = (function (text) { const bytes = new Uint8Array(text.length); for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i); return bytes; })(\"abc\");"
        );
        assert_eq!(
            &lines[2..],
            [
                "function __outboxBindings() {",
                "let wasm_bindgen;",
                "return wasm_bindgen;",
                "}",
                "Outbox = 1;"
            ]
        );
    }
}
