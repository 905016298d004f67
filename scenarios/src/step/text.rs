//! A step's one-line text form: `Display` writes it, `FromStr` reads it
//! back.

use std::fmt;
use std::str::FromStr;

use super::{Misuse, Shape, Step};

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "type={} blksz={} bonustype={} bonuslen={}",
            self.dn_type, self.blksz, self.bonustype, self.bonuslen
        )
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::CreateFs { fs } => write!(f, "create {fs}"),
            Step::ZplInit { fs } => write!(f, "zpl-init {fs}"),
            Step::Mkdir { fs, path, mode } => write!(f, "mkdir {fs} path={path} mode={mode:o}"),
            Step::MkFile {
                fs,
                path,
                mode,
                blksz,
                count,
            } => {
                write!(f, "mkfile {fs} path={path} mode={mode:o} blksz={blksz}")?;
                if *count > 1 {
                    write!(f, " count={count}")?;
                }
                Ok(())
            }
            Step::Symlink { fs, path, target } => {
                write!(f, "symlink {fs} path={path} target={target}")
            }
            Step::Link { fs, path, existing } => write!(f, "link {fs} path={path} to={existing}"),
            Step::Xattr {
                fs,
                path,
                name,
                len,
                fill,
            } => write!(
                f,
                "xattr {fs} path={path} name={name} len={len} fill={fill}"
            ),
            Step::Unlink { fs, path } => write!(f, "unlink {fs} path={path}"),
            Step::Rmdir { fs, path } => write!(f, "rmdir {fs} path={path}"),
            Step::Alloc {
                fs,
                object: None,
                shape,
            } => write!(f, "alloc {fs} {shape}"),
            Step::Alloc {
                fs,
                object: Some(o),
                shape,
            } => write!(f, "claim {fs} obj={o} {shape}"),
            Step::Reclaim { fs, object, shape } => write!(f, "reclaim {fs} obj={object} {shape}"),
            Step::Write {
                fs,
                object,
                offset,
                len,
                fill,
            } => write!(
                f,
                "write {fs} obj={object} off={offset} len={len} fill={fill}"
            ),
            Step::Punch {
                fs,
                object,
                offset,
                len,
            } => write!(f, "punch {fs} obj={object} off={offset} len={len}"),
            Step::Truncate { fs, object, offset } => {
                write!(f, "truncate {fs} obj={object} off={offset}")
            }
            Step::FreeObject { fs, object } => write!(f, "free {fs} obj={object}"),
            Step::Bonus { fs, object, fill } => write!(f, "bonus {fs} obj={object} fill={fill}"),
            Step::Spill {
                fs,
                object,
                len,
                fill,
            } => write!(f, "spill {fs} obj={object} len={len} fill={fill}"),
            Step::Props {
                fs,
                object,
                checksum,
                compress,
            } => write!(
                f,
                "props {fs} obj={object} checksum={checksum} compress={compress}"
            ),
            Step::Snapshot {
                snap,
                recursive: false,
            } => write!(f, "snapshot {snap}"),
            Step::Snapshot {
                snap,
                recursive: true,
            } => write!(f, "snapshot -r {snap}"),
            Step::Clone { origin, fs } => write!(f, "clone {origin} {fs}"),
            Step::SetProp { fs, prop, value } => write!(f, "set {fs} prop={prop} value={value}"),
            Step::Send {
                snap,
                from,
                target,
                dedup,
                force,
                origin,
                intermediate,
                replicate,
            } => {
                write!(f, "send {snap}")?;
                if let Some(from) = from {
                    write!(f, " from={from}")?;
                }
                write!(f, " to={target}")?;
                if let Some(origin) = origin {
                    write!(f, " origin={origin}")?;
                }
                if *dedup {
                    f.write_str(" dedup")?;
                }
                if *intermediate {
                    f.write_str(" intermediate")?;
                }
                if *replicate {
                    f.write_str(" replicate")?;
                }
                if *force {
                    f.write_str(" force")?;
                }
                Ok(())
            }
            Step::Rollback { fs } => write!(f, "rollback {fs}"),
            Step::Destroy { name } => write!(f, "destroy {name}"),
            Step::Wait { ms } => write!(f, "wait ms={ms}"),
            Step::Crash { pool } => write!(f, "crash {pool}"),
            Step::Scrub { pool } => write!(f, "scrub {pool}"),
            Step::Misuse(m) => write!(f, "misuse {m}"),
            Step::Race(r) => write!(f, "race {r}"),
        }
    }
}

impl fmt::Display for Misuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misuse::Step(step) => write!(f, "{step}"),
            Misuse::Blocksize { fs, object, blksz } => {
                write!(f, "blocksize {fs} obj={object} blksz={blksz}")
            }
            Misuse::Bonuslen { fs, object, len } => {
                write!(f, "bonuslen {fs} obj={object} len={len}")
            }
            Misuse::DestroyHeld { snap } => write!(f, "destroy-held {snap}"),
            Misuse::HoldTwice { name } => write!(f, "hold-twice {name}"),
            Misuse::ReleaseUnheld { name } => write!(f, "release-unheld {name}"),
            Misuse::SendOnly { snap, from } => write_send(f, "send-only", snap, from),
            Misuse::SendReplicate { snap } => write!(f, "send-only-r {snap}"),
            Misuse::Estimate { snap, from } => write_send(f, "send-estimate", snap, from),
            Misuse::DestroyDeferred { name } => write!(f, "destroy-deferred {name}"),
        }
    }
}

/// `VERB SNAP [from=FROM]`: a send misuse's text.
fn write_send(
    f: &mut fmt::Formatter<'_>,
    verb: &str,
    snap: &str,
    from: &Option<String>,
) -> fmt::Result {
    write!(f, "{verb} {snap}")?;
    match from {
        Some(from) => write!(f, " from={from}"),
        None => Ok(()),
    }
}

impl FromStr for Misuse {
    type Err = String;

    /// A misuse's own verbs, or any ordinary step line.
    fn from_str(line: &str) -> Result<Misuse, String> {
        let w = Words::new(line.trim());
        let verb = line.split_whitespace().next().unwrap_or("");
        Ok(match verb {
            "blocksize" => Misuse::Blocksize {
                fs: w.name(0)?,
                object: w.num("obj")?,
                blksz: w.num("blksz")?,
            },
            "bonuslen" => Misuse::Bonuslen {
                fs: w.name(0)?,
                object: w.num("obj")?,
                len: w.num("len")?,
            },
            "destroy-held" => Misuse::DestroyHeld { snap: w.name(0)? },
            "hold-twice" => Misuse::HoldTwice { name: w.name(0)? },
            "release-unheld" => Misuse::ReleaseUnheld { name: w.name(0)? },
            "send-only" => Misuse::SendOnly {
                snap: w.name(0)?,
                from: w.opt("from").map(str::to_string),
            },
            "send-only-r" => Misuse::SendReplicate { snap: w.name(0)? },
            "send-estimate" => Misuse::Estimate {
                snap: w.name(0)?,
                from: w.opt("from").map(str::to_string),
            },
            "destroy-deferred" => Misuse::DestroyDeferred { name: w.name(0)? },
            "misuse" => return Err(format!("{line:?}: a misuse of a misuse")),
            _ => Misuse::Step(Box::new(line.parse()?)),
        })
    }
}

/// The words of a step line: positional names and `key=value` options.
struct Words<'a> {
    line: &'a str,
    names: Vec<&'a str>,
    keys: Vec<(&'a str, &'a str)>,
    flags: Vec<&'a str>,
}

impl<'a> Words<'a> {
    fn new(line: &'a str) -> Words<'a> {
        let mut words = Words {
            line,
            names: Vec::new(),
            keys: Vec::new(),
            flags: Vec::new(),
        };
        for word in line.split_whitespace().skip(1) {
            match word.split_once('=') {
                Some((k, v)) => words.keys.push((k, v)),
                None if word.contains(['/', '@']) || word.chars().all(|c| c.is_alphanumeric()) => {
                    if matches!(word, "dedup" | "force" | "intermediate" | "replicate") {
                        words.flags.push(word);
                    } else {
                        words.names.push(word);
                    }
                }
                None => words.flags.push(word),
            }
        }
        words
    }

    fn name(&self, i: usize) -> Result<String, String> {
        self.names
            .get(i)
            .map(|s| s.to_string())
            .ok_or_else(|| format!("{:?}: missing name {}", self.line, i + 1))
    }

    fn opt(&self, key: &str) -> Option<&'a str> {
        self.keys.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn num<T: FromStr>(&self, key: &str) -> Result<T, String> {
        let v = self
            .opt(key)
            .ok_or_else(|| format!("{:?}: missing {key}=", self.line))?;
        v.parse()
            .map_err(|_| format!("{:?}: {key}={v} is not a number", self.line))
    }

    fn text(&self, key: &str) -> Result<String, String> {
        self.opt(key)
            .map(str::to_string)
            .ok_or_else(|| format!("{:?}: missing {key}=", self.line))
    }

    fn mode(&self) -> Result<u64, String> {
        let v = self.text("mode")?;
        u64::from_str_radix(&v, 8)
            .map_err(|_| format!("{:?}: mode={v} is not an octal mode", self.line))
    }

    fn flag(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }

    fn shape(&self) -> Result<Shape, String> {
        Ok(Shape {
            dn_type: self.num("type")?,
            blksz: self.num("blksz")?,
            bonustype: self.num("bonustype")?,
            bonuslen: self.num("bonuslen")?,
        })
    }
}

impl FromStr for Step {
    type Err = String;

    fn from_str(line: &str) -> Result<Step, String> {
        let w = Words::new(line.trim());
        let verb = line.split_whitespace().next().unwrap_or("");
        Ok(match verb {
            "create" => Step::CreateFs { fs: w.name(0)? },
            "zpl-init" => Step::ZplInit { fs: w.name(0)? },
            "mkdir" => Step::Mkdir {
                fs: w.name(0)?,
                path: w.text("path")?,
                mode: w.mode()?,
            },
            "mkfile" => Step::MkFile {
                fs: w.name(0)?,
                path: w.text("path")?,
                mode: w.mode()?,
                blksz: w.num("blksz")?,
                count: match w.opt("count") {
                    Some(_) => w.num("count")?,
                    None => 1,
                },
            },
            "symlink" => Step::Symlink {
                fs: w.name(0)?,
                path: w.text("path")?,
                target: w.text("target")?,
            },
            "link" => Step::Link {
                fs: w.name(0)?,
                path: w.text("path")?,
                existing: w.text("to")?,
            },
            "xattr" => Step::Xattr {
                fs: w.name(0)?,
                path: w.text("path")?,
                name: w.text("name")?,
                len: w.num("len")?,
                fill: w.num("fill")?,
            },
            "unlink" => Step::Unlink {
                fs: w.name(0)?,
                path: w.text("path")?,
            },
            "rmdir" => Step::Rmdir {
                fs: w.name(0)?,
                path: w.text("path")?,
            },
            "alloc" => Step::Alloc {
                fs: w.name(0)?,
                object: None,
                shape: w.shape()?,
            },
            "claim" => Step::Alloc {
                fs: w.name(0)?,
                object: Some(w.num("obj")?),
                shape: w.shape()?,
            },
            "reclaim" => Step::Reclaim {
                fs: w.name(0)?,
                object: w.num("obj")?,
                shape: w.shape()?,
            },
            "write" => Step::Write {
                fs: w.name(0)?,
                object: w.num("obj")?,
                offset: w.num("off")?,
                len: w.num("len")?,
                fill: w.num("fill")?,
            },
            "punch" => Step::Punch {
                fs: w.name(0)?,
                object: w.num("obj")?,
                offset: w.num("off")?,
                len: w.num("len")?,
            },
            "truncate" => Step::Truncate {
                fs: w.name(0)?,
                object: w.num("obj")?,
                offset: w.num("off")?,
            },
            "free" => Step::FreeObject {
                fs: w.name(0)?,
                object: w.num("obj")?,
            },
            "bonus" => Step::Bonus {
                fs: w.name(0)?,
                object: w.num("obj")?,
                fill: w.num("fill")?,
            },
            "spill" => Step::Spill {
                fs: w.name(0)?,
                object: w.num("obj")?,
                len: w.num("len")?,
                fill: w.num("fill")?,
            },
            "props" => Step::Props {
                fs: w.name(0)?,
                object: w.num("obj")?,
                checksum: w.num("checksum")?,
                compress: w.num("compress")?,
            },
            "snapshot" => Step::Snapshot {
                snap: w.name(0)?,
                recursive: w.flag("-r"),
            },
            "set" => Step::SetProp {
                fs: w.name(0)?,
                prop: w.text("prop")?,
                value: w.text("value")?,
            },
            "clone" => Step::Clone {
                origin: w.name(0)?,
                fs: w.name(1)?,
            },
            "send" => Step::Send {
                snap: w.name(0)?,
                from: w.opt("from").map(str::to_string),
                target: w
                    .opt("to")
                    .ok_or_else(|| format!("{line:?}: missing to="))?
                    .to_string(),
                dedup: w.flag("dedup"),
                force: w.flag("force"),
                origin: w.opt("origin").map(str::to_string),
                intermediate: w.flag("intermediate"),
                replicate: w.flag("replicate"),
            },
            "rollback" => Step::Rollback { fs: w.name(0)? },
            "destroy" => Step::Destroy { name: w.name(0)? },
            "wait" => Step::Wait { ms: w.num("ms")? },
            "crash" => Step::Crash { pool: w.name(0)? },
            "scrub" => Step::Scrub { pool: w.name(0)? },
            "misuse" => Step::Misuse(
                line.trim()
                    .strip_prefix("misuse")
                    .unwrap_or_default()
                    .parse()?,
            ),
            "race" => Step::Race(
                line.trim()
                    .strip_prefix("race")
                    .unwrap_or_default()
                    .parse()?,
            ),
            other => return Err(format!("{line:?}: unknown step {other:?}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::step::Race;

    /// Long because it lists one example of every step form, side by side
    /// with its text: the table is the specification.
    #[test]
    fn every_step_prints_and_parses_back() {
        let shape = Shape {
            dn_type: 19,
            blksz: 4096,
            bonustype: 44,
            bonuslen: 64,
        };
        let fs = "src/fs0".to_string();
        let steps = vec![
            Step::CreateFs { fs: fs.clone() },
            Step::ZplInit { fs: fs.clone() },
            Step::Mkdir {
                fs: fs.clone(),
                path: "d1".into(),
                mode: 0o755,
            },
            Step::MkFile {
                fs: fs.clone(),
                path: "d1/f2".into(),
                mode: 0o4755,
                blksz: 4096,
                count: 1,
            },
            Step::MkFile {
                fs: fs.clone(),
                path: "d1/g".into(),
                mode: 0o644,
                blksz: 512,
                count: 90,
            },
            Step::Symlink {
                fs: fs.clone(),
                path: "l3".into(),
                target: "../d1/f2".into(),
            },
            Step::Link {
                fs: fs.clone(),
                path: "h4".into(),
                existing: "d1/f2".into(),
            },
            Step::Xattr {
                fs: fs.clone(),
                path: "d1".into(),
                name: "user.a".into(),
                len: 30,
                fill: 5,
            },
            Step::Unlink {
                fs: fs.clone(),
                path: "h4".into(),
            },
            Step::Rmdir {
                fs: fs.clone(),
                path: "d1".into(),
            },
            Step::Alloc {
                fs: fs.clone(),
                object: None,
                shape,
            },
            Step::Alloc {
                fs: fs.clone(),
                object: Some(9),
                shape,
            },
            Step::Reclaim {
                fs: fs.clone(),
                object: 9,
                shape,
            },
            Step::Write {
                fs: fs.clone(),
                object: 3,
                offset: 512,
                len: 100,
                fill: 7,
            },
            Step::Punch {
                fs: fs.clone(),
                object: 3,
                offset: 0,
                len: 1,
            },
            Step::Truncate {
                fs: fs.clone(),
                object: 3,
                offset: 5,
            },
            Step::FreeObject {
                fs: fs.clone(),
                object: 3,
            },
            Step::Bonus {
                fs: fs.clone(),
                object: 3,
                fill: 1,
            },
            Step::Spill {
                fs: fs.clone(),
                object: 3,
                len: 512,
                fill: 2,
            },
            Step::Props {
                fs: fs.clone(),
                object: 3,
                checksum: 7,
                compress: 3,
            },
            Step::Snapshot {
                snap: "src/fs0@s1".into(),
                recursive: false,
            },
            Step::Snapshot {
                snap: "src@s2".into(),
                recursive: true,
            },
            Step::Clone {
                origin: "src/fs0@s1".into(),
                fs: "src/c0".into(),
            },
            Step::SetProp {
                fs: "src/c0".into(),
                prop: "org.zsim:a".into(),
                value: "v3".into(),
            },
            Step::Send {
                snap: "src/c0@s2".into(),
                from: Some("src/fs0@s1".into()),
                target: "dst/r1".into(),
                dedup: true,
                force: true,
                origin: Some("dst/r0@s1".into()),
                intermediate: false,
                replicate: false,
            },
            Step::Send {
                snap: "src/fs0@s4".into(),
                from: Some("src/fs0@s1".into()),
                target: "dst/r0".into(),
                dedup: true,
                force: false,
                origin: None,
                intermediate: true,
                replicate: false,
            },
            Step::Send {
                snap: "src/fs0@s1".into(),
                from: None,
                target: "dst/r0".into(),
                dedup: false,
                force: false,
                origin: None,
                intermediate: false,
                replicate: false,
            },
            Step::Send {
                snap: "src@s6".into(),
                from: Some("src@s2".into()),
                target: "dst/r3".into(),
                dedup: false,
                force: false,
                origin: None,
                intermediate: true,
                replicate: true,
            },
            Step::Rollback { fs: fs.clone() },
            Step::Destroy {
                name: "src/fs0@s1".into(),
            },
            Step::Wait { ms: 5000 },
            Step::Crash { pool: "dst".into() },
            Step::Scrub { pool: "src".into() },
            Step::Race(Race {
                send: Box::new(Step::Send {
                    snap: "src/fs0@s2".into(),
                    from: Some("src/fs0@s1".into()),
                    target: "dst/r0".into(),
                    dedup: false,
                    force: true,
                    origin: None,
                    intermediate: false,
                    replicate: false,
                }),
                at_record: 3,
                actor: Box::new(Step::Destroy {
                    name: "src/fs0@s2".into(),
                }),
            }),
            Step::Misuse(Misuse::Step(Box::new(Step::CreateFs {
                fs: format!("src/{}", "x".repeat(260)),
            }))),
            Step::Misuse(Misuse::Step(Box::new(Step::Destroy {
                name: "src/fs0@s1".into(),
            }))),
            Step::Misuse(Misuse::Step(Box::new(Step::Send {
                snap: "src/fs0@s1".into(),
                from: None,
                target: "dst/r0".into(),
                dedup: false,
                force: true,
                origin: None,
                intermediate: false,
                replicate: false,
            }))),
            Step::Misuse(Misuse::Blocksize {
                fs: fs.clone(),
                object: 3,
                blksz: 4096,
            }),
            Step::Misuse(Misuse::Bonuslen {
                fs: fs.clone(),
                object: 3,
                len: 400,
            }),
            Step::Misuse(Misuse::DestroyHeld {
                snap: "src/fs0@s1".into(),
            }),
            Step::Misuse(Misuse::SendOnly {
                snap: "src/fs0@s1".into(),
                from: Some("src/fs0@s4".into()),
            }),
            Step::Misuse(Misuse::SendOnly {
                snap: "src/fs0".into(),
                from: None,
            }),
            Step::Misuse(Misuse::SendReplicate {
                snap: "src/fs0@s2".into(),
            }),
            Step::Misuse(Misuse::HoldTwice {
                name: "src/fs0@s2".into(),
            }),
            Step::Misuse(Misuse::ReleaseUnheld {
                name: "src/fs0".into(),
            }),
            Step::Misuse(Misuse::Estimate {
                snap: "src/fs0@s1".into(),
                from: Some("src/fs0@s1".into()),
            }),
            Step::Misuse(Misuse::Estimate {
                snap: "src/fs0".into(),
                from: None,
            }),
            Step::Misuse(Misuse::DestroyDeferred {
                name: "src/fs0".into(),
            }),
        ];
        for step in steps {
            let line = step.to_string();
            assert_eq!(line.parse::<Step>(), Ok(step.clone()), "{line}");
            assert!(Step::KINDS.contains(&step.kind()), "{line}");
        }
        assert!("write src/fs0 obj=x".parse::<Step>().is_err());
        assert!("jump".parse::<Step>().unwrap_err().contains("unknown step"));
        assert!(
            "misuse misuse create src/a"
                .parse::<Step>()
                .unwrap_err()
                .contains("misuse of a misuse")
        );
    }
}
