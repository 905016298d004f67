//! The file listings `cargo sim verify` and `cargo sim ls` print: one line
//! per file for people, or JSON for programs, with the fields the fixture
//! manifests use so the two can be compared directly.
//!
//! ZFS names are bytes, not necessarily UTF-8: text shows other bytes (and
//! control characters) as `\xHH`; JSON adds the exact bytes in hex as
//! `path_hex` / `target_hex` next to such a name.

use std::io::{self, Write};

use engine::zpl::{FileEntry, FileType};

/// A name for a line of text: UTF-8 as it is, anything else escaped.
pub fn display_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => {
                    let mut buf = [0u8; 4];
                    for b in c.encode_utf8(&mut buf).bytes() {
                        out.push_str(&format!("\\x{b:02x}"));
                    }
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes one snapshot's listing: a title line, then per file its type,
/// mode, size, SHA-256 (or `-`) and path, with ` -> target` for a symlink.
pub fn write_text(out: &mut dyn Write, name: &str, files: &[FileEntry]) -> io::Result<()> {
    writeln!(out, "{name}: {} entries", files.len())?;
    for f in files {
        let sum = f.sha256_hex().unwrap_or_else(|| "-".to_string());
        let target = match &f.target {
            Some(t) => format!(" -> {}", display_bytes(t)),
            None => String::new(),
        };
        writeln!(
            out,
            "  {:<7} {} {:>12}  {:<64}  {}{target}",
            f.file_type.as_str(),
            f.mode_octal(),
            f.size,
            sum,
            display_bytes(&f.path),
        )?;
    }
    Ok(())
}

/// A JSON value whose objects keep their keys in the order given.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Num(u64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    pub fn obj<K: Into<String>>(fields: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Obj(fields.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    pub fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// Pretty-printed, two spaces per level; a value holding no array is
    /// kept on one line, so each file is one line of the document.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out.push('\n');
        out
    }

    fn has_array(&self) -> bool {
        match self {
            Json::Arr(_) => true,
            Json::Obj(fields) => fields.iter().any(|(_, v)| v.has_array()),
            _ => false,
        }
    }

    fn write(&self, out: &mut String, level: usize) {
        let pretty = self.has_array();
        let pad = |out: &mut String, level: usize| {
            out.push('\n');
            out.push_str(&"  ".repeat(level));
        };
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Num(n) => out.push_str(&n.to_string()),
            Json::Str(s) => out.push_str(&quote(s)),
            Json::Arr(items) if items.is_empty() => out.push_str("[]"),
            Json::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    pad(out, level + 1);
                    item.write(out, level + 1);
                }
                pad(out, level);
                out.push(']');
            }
            Json::Obj(fields) if fields.is_empty() => out.push_str("{}"),
            Json::Obj(fields) => {
                out.push('{');
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                        if !pretty {
                            out.push(' ');
                        }
                    }
                    if pretty {
                        pad(out, level + 1);
                    }
                    out.push_str(&quote(k));
                    out.push_str(": ");
                    v.write(out, level + 1);
                }
                if pretty {
                    pad(out, level);
                }
                out.push('}');
            }
        }
    }
}

/// A JSON string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A name as JSON fields: `key` always, `key_hex` when it is not UTF-8.
fn name_fields(key: &str, bytes: &[u8], fields: &mut Vec<(String, Json)>) {
    match std::str::from_utf8(bytes) {
        Ok(s) => fields.push((key.to_string(), Json::str(s))),
        Err(_) => {
            fields.push((key.to_string(), Json::str(display_bytes(bytes))));
            fields.push((format!("{key}_hex"), Json::str(hex(bytes))));
        }
    }
}

/// One file as the manifests describe it: path, type, mode, size, sha256
/// (regular files, when hashed) or target (symlinks), then the znode's
/// object number, link count, owner, mtime and any extended attributes.
pub fn file_json(f: &FileEntry) -> Json {
    let mut fields = Vec::new();
    name_fields("path", &f.path, &mut fields);
    fields.push(("type".into(), Json::str(f.file_type.as_str())));
    fields.push(("mode".into(), Json::str(f.mode_octal())));
    fields.push(("size".into(), Json::Num(f.size)));
    if let Some(sum) = f.sha256_hex() {
        fields.push(("sha256".into(), Json::str(sum)));
    }
    if let Some(target) = &f.target {
        name_fields("target", target, &mut fields);
    }
    if let FileType::Other { format } = f.file_type {
        fields.push(("format".into(), Json::str(format!("{format:o}"))));
    }
    for (k, v) in [
        ("object", f.object),
        ("nlink", f.nlink),
        ("uid", f.uid),
        ("gid", f.gid),
        ("mtime", f.mtime.secs),
        ("mtime_nsec", f.mtime.nsecs),
    ] {
        fields.push((k.into(), Json::Num(v)));
    }
    if !f.xattrs.is_empty() {
        let xattrs = f
            .xattrs
            .iter()
            .map(|(name, value)| {
                let sum = engine::checksum::sha256(value);
                let sum: String = sum.0.iter().map(|w| format!("{w:016x}")).collect();
                (
                    String::from_utf8_lossy(name).into_owned(),
                    Json::obj([
                        ("size", Json::Num(value.len() as u64)),
                        ("sha256", Json::str(sum)),
                    ]),
                )
            })
            .collect();
        fields.push(("xattrs".into(), Json::Obj(xattrs)));
    }
    Json::Obj(fields)
}

/// `{"name": ..., "files": [...]}`.
pub fn snapshot_json(name: &str, files: &[FileEntry]) -> Json {
    Json::obj([
        ("name", Json::str(name)),
        ("files", Json::Arr(files.iter().map(file_json).collect())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_utf8_are_escaped_and_kept_in_hex() {
        assert_eq!(display_bytes(b"plain/\xc3\xbc"), "plain/\u{fc}");
        assert_eq!(display_bytes(b"a\xffb\n\\"), "a\\xffb\\x0a\\\\");
        let mut fields = Vec::new();
        name_fields("path", b"a\xff", &mut fields);
        assert_eq!(fields[0].1, Json::str("a\\xff"));
        assert_eq!(fields[1], ("path_hex".to_string(), Json::str("61ff")));
    }

    #[test]
    fn json_keeps_key_order_and_puts_array_free_values_on_one_line() {
        let doc = Json::obj([
            ("ok", Json::Bool(true)),
            ("error", Json::Null),
            (
                "list",
                Json::Arr(vec![Json::obj([
                    ("b", Json::Num(1)),
                    ("a", Json::str("x\"\u{1}")),
                ])]),
            ),
        ]);
        assert_eq!(
            doc.render(),
            "{\n  \"ok\": true,\n  \"error\": null,\n  \"list\": [\n    {\"b\": 1, \"a\": \"x\\\"\\u0001\"}\n  ]\n}\n"
        );
        let parsed: serde_json::Value = serde_json::from_str(&doc.render()).unwrap();
        assert_eq!(parsed["list"][0]["a"], "x\"\u{1}");
    }
}
