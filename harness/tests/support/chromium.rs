//! Headless Chromium, as a person's browser: renders a page (a report file
//! or a page of `faultline serve`) to a screenshot, to prove it renders,
//! and dumps its DOM after layout, to assert its charts and tables are
//! there. `scripts/setup.sh` installs Debian's `chromium`.
//!
//! With `FAULTLINE_SCREENSHOTS=DIR` set, each screenshot is also copied to
//! `DIR/<name>.png`: that is how the README's pictures under `docs/img/`
//! are made (`scripts/screenshots.sh`).

use std::path::{Path, PathBuf};
use std::process::Command;

const CHROMIUM: &str = "/usr/bin/chromium";
/// Bound on one Chromium run, in seconds (`timeout`).
const CHROMIUM_TIMEOUT_S: &str = "120";

/// What Chromium made of a page.
pub struct Rendered {
    pub dom: String,
    pub png: PathBuf,
}

fn chromium(profile: &Path, extra: &[String], url: &str) -> std::process::Output {
    assert!(Path::new(CHROMIUM).exists(), "{CHROMIUM} not found: run scripts/setup.sh (Debian package chromium)");
    // The flags of a headless run on a machine with no network: no
    // background connections, no sandbox (CI runs as root).
    let out = Command::new("timeout")
        .args([CHROMIUM_TIMEOUT_S, CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic"])
        .args(["--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .args(["--hide-scrollbars", "--disable-extensions"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("runs chromium");
    assert!(out.status.success(), "chromium failed on {url}: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Renders `url` into `dir/<name>.png` (`height` pixels tall) and returns
/// the PNG's path and the DOM.
pub fn render(url: &str, dir: &Path, name: &str, height: u32) -> Rendered {
    let profile = dir.join(format!("chromium-{name}"));
    let dom = String::from_utf8(chromium(&profile, &["--dump-dom".to_owned()], url).stdout).expect("DOM is UTF-8");
    let png = dir.join(format!("{name}.png"));
    let shot = [format!("--screenshot={}", png.display()), format!("--window-size=1100,{height}")];
    chromium(&profile, &shot, url);
    let bytes = std::fs::read(&png).expect("chromium wrote the screenshot");
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000, "{} is no real screenshot", png.display());
    if let Some(out) = std::env::var_os("FAULTLINE_SCREENSHOTS") {
        std::fs::copy(&png, Path::new(&out).join(format!("{name}.png"))).expect("copies the screenshot");
    }
    let _ = std::fs::remove_dir_all(&profile);
    Rendered { dom, png }
}

/// The DOM from the element with `id` to the end of that element's tag
/// name's next closing tag at the same depth: enough to count what is in a
/// chart or a table.
pub fn element<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no element #{id} in the page"));
    let open = dom[..start].rfind('<').expect("an id is inside a tag");
    let tag: String = dom[open + 1..].chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    let (opening, closing) = (format!("<{tag}"), format!("</{tag}>"));
    let (mut depth, mut at) = (0usize, open);
    loop {
        let next_open = dom[at + 1..].find(&opening).map(|i| i + at + 1);
        let next_close = dom[at + 1..].find(&closing).map(|i| i + at + 1).expect("the element closes");
        match next_open {
            Some(o) if o < next_close => {
                depth += 1;
                at = o;
            }
            _ if depth == 0 => return &dom[open..next_close + closing.len()],
            _ => {
                depth -= 1;
                at = next_close;
            }
        }
    }
}
