//! Lists every place in `src/` that creates an engine error, for the
//! error-site coverage reports: what `Error::new` and `fail` record at run
//! time (the file and line of their caller, with `#[track_caller]`) is
//! what this finds in the source, so the two join on `file:line`.
//!
//! A site is a call of `Error::new(`, `fail(` or of another function the
//! same file marks `#[track_caller]`, outside that function's own body and
//! outside test code (a `#[cfg(test)] mod ... {` to the end of its file,
//! `tests.rs` files) and the fuzz targets' bodies. Its errno is the first
//! `Errno::X` on its line or the next two, when one is there.
//!
//! A site no campaign or fuzzer can reach says why in a comment block that
//! begins `// unreached:` and ends at most three lines above it (the lines
//! between being the start of its statement). The reason goes into the
//! list, so the coverage report tells a documented gap from an unexplored
//! one. A marker that no site claims, or that two sites would share, stops
//! the build: a reason must stay next to the code it explains.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    collect(&root.join("src"), &mut files);
    files.sort();
    let mut out = String::from("&[\n");
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
        let rel = file.strip_prefix(root).expect("under the crate");
        let name = format!("engine/{}", rel.display());
        if name.ends_with("/tests.rs")
            || name == "engine/src/fuzz.rs"
            || name.starts_with("engine/src/fuzz/")
        {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("a source file");
        let found = sites(&text);
        let reasons = unreached_reasons(&text, &found, &name);
        for ((line, errno), reason) in found.into_iter().zip(reasons) {
            let errno = errno.map_or("None".to_string(), |e| format!("Some(Errno::{e})"));
            let reason = reason.map_or("None".to_string(), |r| format!("Some({r:?})"));
            let _ = writeln!(
                out,
                "    SiteInfo {{ file: {name:?}, line: {line}, errno: {errno}, unreached: {reason} }},"
            );
        }
    }
    out.push(']');
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("OUT_DIR")).join("error_sites.rs");
    std::fs::write(dest, out).expect("write the site list");
    println!("cargo:rerun-if-changed=src");
}

fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source directory") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            collect(&path, files);
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
}

/// The sites of one file: (line, errno), lines counted from 1.
fn sites(text: &str) -> Vec<(usize, Option<String>)> {
    let lines: Vec<&str> = text.lines().collect();
    let end = test_module_start(&lines).unwrap_or(lines.len());
    let wrappers = track_caller_fns(&lines[..end]);
    let mut callees: Vec<String> = vec!["Error::new(".into()];
    // `fail`, unless the file shadows it with a closure of its own.
    if !text.contains("let fail = |") {
        callees.extend(["fail(".into(), "fail::<".into()]);
    }
    for (name, _, _, _) in &wrappers {
        // `Error::new` and `fail` are the mechanism itself.
        if name != "new" && name != "fail" {
            callees.push(format!("{name}("));
        }
    }
    let mut found = Vec::new();
    for (i, line) in lines[..end].iter().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        if code.trim_start().starts_with("fn ") || code.contains(" fn ") {
            continue;
        }
        let inside_wrapper = wrappers.iter().any(|(_, a, b, _)| (*a..=*b).contains(&i));
        // A `#[track_caller]` function's body passes its caller's site on.
        let Some(callee) = callees.iter().find(|callee| calls(code, callee)) else {
            continue;
        };
        if inside_wrapper {
            continue;
        }
        let errno = lines[i..(i + 3).min(end)]
            .iter()
            .find_map(|l| errno_in(l.split("//").next().unwrap_or("")))
            .or_else(|| {
                // A wrapper that always sets one errno.
                wrappers
                    .iter()
                    .find(|(name, ..)| format!("{name}(") == *callee)
                    .and_then(|(.., errno)| errno.clone())
            });
        found.push((i + 1, errno));
    }
    found
}

/// For each site, the reason of the `// unreached:` block above it. Panics
/// on a marker no site claims or two sites claim.
fn unreached_reasons(
    text: &str,
    sites: &[(usize, Option<String>)],
    file: &str,
) -> Vec<Option<String>> {
    let lines: Vec<&str> = text.lines().collect();
    let is_comment = |i: usize| lines[i].trim_start().starts_with("//");
    let mut claimed: Vec<usize> = Vec::new();
    let mut reasons = Vec::new();
    for &(line, _) in sites {
        let at = line - 1;
        // The nearest comment line above, within three lines.
        let end = (at.saturating_sub(3)..at).rev().find(|&i| is_comment(i));
        let reason = end.and_then(|end| {
            let mut start = end;
            while start > 0 && is_comment(start - 1) {
                start -= 1;
            }
            let first = lines[start].trim_start().trim_start_matches("//").trim();
            let first = first.strip_prefix("unreached:")?;
            claimed.push(start);
            let rest = lines[start + 1..=end]
                .iter()
                .map(|l| l.trim_start().trim_start_matches("//").trim());
            let words: Vec<&str> = std::iter::once(first.trim()).chain(rest).collect();
            Some(words.join(" "))
        });
        reasons.push(reason);
    }
    let mut sorted = claimed.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        claimed.len(),
        "{file}: one `// unreached:` comment stands above two error sites; give each its own"
    );
    for (i, l) in lines.iter().enumerate() {
        if l.trim_start().starts_with("// unreached:") && !sorted.contains(&i) {
            panic!(
                "{file}:{}: `// unreached:` must end at most three lines above the error site it explains",
                i + 1
            );
        }
    }
    reasons
}

/// Whether `code` calls `callee` (not as the tail of a longer name, and
/// `fail` not as another type's method).
fn calls(code: &str, callee: &str) -> bool {
    code.match_indices(callee).any(|(at, _)| {
        let before = code[..at].chars().last();
        let method = before == Some('.') && callee.starts_with("fail");
        !method && !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

fn errno_in(code: &str) -> Option<String> {
    let at = code.find("Errno::")? + "Errno::".len();
    let name: String = code[at..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Where a `#[cfg(test)]` module with a body begins.
fn test_module_start(lines: &[&str]) -> Option<usize> {
    (0..lines.len()).find(|&i| {
        lines[i].trim() == "#[cfg(test)]"
            && lines
                .get(i + 1)
                .is_some_and(|l| l.trim_start().starts_with("mod ") && l.trim_end().ends_with('{'))
    })
}

/// Functions marked `#[track_caller]`: name, first and last line index, and
/// the errno their body sets when it names exactly one.
fn track_caller_fns(lines: &[&str]) -> Vec<(String, usize, usize, Option<String>)> {
    let mut out = Vec::new();
    for i in 0..lines.len() {
        if lines[i].trim() != "#[track_caller]" {
            continue;
        }
        let Some(def) = (i + 1..lines.len()).find(|&j| lines[j].contains("fn ")) else {
            continue;
        };
        let after = lines[def].split("fn ").nth(1).unwrap_or("");
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let indent = lines[def].len() - lines[def].trim_start().len();
        let close = (def..lines.len())
            .find(|&j| lines[j].trim_end() == format!("{}}}", " ".repeat(indent)))
            .unwrap_or(def);
        let mut errnos: Vec<String> = lines[def..=close]
            .iter()
            .filter_map(|l| errno_in(l.split("//").next().unwrap_or("")))
            .collect();
        errnos.dedup();
        let errno = (errnos.len() == 1).then(|| errnos.remove(0));
        out.push((name, def, close, errno));
    }
    out
}
