//! The three browser engines the tests run in, and what each needs on the
//! machine.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Chromium,
    Firefox,
    WebKit,
}

impl Engine {
    pub const ALL: [Engine; 3] = [Engine::Chromium, Engine::Firefox, Engine::WebKit];

    /// The name the tests know it by (`OUTBOX_ENGINE`).
    pub fn name(self) -> &'static str {
        match self {
            Engine::Chromium => "chromium",
            Engine::Firefox => "firefox",
            Engine::WebKit => "webkit",
        }
    }

    pub fn parse(name: &str) -> Result<Engine, String> {
        Engine::ALL
            .into_iter()
            .find(|engine| engine.name() == name)
            .ok_or_else(|| {
                format!("unknown engine `{name}`; the engines are chromium, firefox and webkit")
            })
    }

    /// Files that must exist, each with the Debian package that installs it.
    pub fn debian_files(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Engine::Chromium => &[
                ("/usr/bin/chromium", "chromium"),
                ("/usr/bin/chromedriver", "chromium-driver"),
            ],
            Engine::Firefox => &[("/usr/bin/firefox-esr", "firefox-esr")],
            Engine::WebKit => &[
                ("/usr/bin/WebKitWebDriver", "webkit2gtk-driver"),
                ("/usr/bin/xvfb-run", "xvfb"),
                ("/usr/bin/xauth", "xauth"),
                // The test browser (tests/e2e/engines/webkit-browser.py) is
                // Python with GTK bindings, run by Debian's own python3.
                ("/usr/bin/python3", "python3"),
                (
                    "/usr/lib/python3/dist-packages/gi/__init__.py",
                    "python3-gi",
                ),
                (WEBKIT_TYPELIB, "gir1.2-webkit2-4.1"),
            ],
        }
    }

    /// WebKitGTK has no headless mode: its runs go under a virtual display.
    pub fn needs_display(self) -> bool {
        self == Engine::WebKit
    }
}

const WEBKIT_TYPELIB: &str = "/usr/lib/x86_64-linux-gnu/girepository-1.0/WebKit2-4.1.typelib";

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Engines from `--engine` options; all three when none was given.
pub fn chosen(names: &[String]) -> Result<Vec<Engine>, String> {
    if names.is_empty() {
        return Ok(Engine::ALL.to_vec());
    }
    let mut engines = Vec::new();
    for name in names {
        for part in name.split(',') {
            let engine = Engine::parse(part.trim())?;
            if !engines.contains(&engine) {
                engines.push(engine);
            }
        }
    }
    Ok(engines)
}

#[cfg(test)]
mod tests {
    use super::{chosen, Engine};

    #[test]
    fn parses_names_and_lists() {
        assert_eq!(chosen(&[]).unwrap(), Engine::ALL.to_vec());
        let names = ["webkit,firefox".to_string(), "webkit".to_string()];
        assert_eq!(
            chosen(&names).unwrap(),
            vec![Engine::WebKit, Engine::Firefox]
        );
        assert!(chosen(&["safari".to_string()])
            .unwrap_err()
            .contains("safari"));
    }
}
