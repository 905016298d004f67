//! `cargo sim create`, `set` and `get`: filesystems and their properties
//! in a pool image, as `zfs create`, `zfs set` and `zfs get` do.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use engine::spa::Pool;

use super::{EXIT_FAILURE, EXIT_USAGE, host_clock, host_random};
use crate::file_device::import_image;

/// Create a filesystem in a pool image (`zfs create`), with properties set
/// on it (`-o`). Its parent must exist.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The pool image file.
    pub image: PathBuf,
    /// pool/fs
    pub fs: String,
    /// A property to set on it: compression, checksum, recordsize, dedup,
    /// copies, atime, mountpoint, or a user property (module:name).
    #[arg(short = 'o', value_name = "PROP=VALUE")]
    pub props: Vec<String>,
}

/// Set a property of a filesystem in a pool image (`zfs set`); its
/// descendants inherit it unless they set their own.
///
/// compression (off, on, lzjb, zle, gzip-1..9) and checksum (on, off,
/// fletcher2, fletcher4, sha256) apply to the blocks written from then on,
/// recordsize (512 to 128K, a power of two) to files created from then on,
/// dedup (on, off, sha256) to what `send -D` may refer back to. copies,
/// atime and mountpoint are kept and inherited but change nothing: zsim
/// writes one copy of each block and mounts nothing. A user property is
/// any name with a colon (`org.example:note`).
#[derive(Debug, Args)]
pub struct SetArgs {
    /// The pool image file.
    pub image: PathBuf,
    /// PROP=VALUE
    pub assignment: String,
    /// pool/fs
    pub fs: String,
}

/// Show properties of a filesystem or snapshot in a pool image (`zfs get`):
/// NAME, PROPERTY, VALUE and SOURCE (local, received, inherited from FS,
/// default; `-` for a user property set nowhere).
#[derive(Debug, Args)]
pub struct GetArgs {
    /// The pool image file.
    pub image: PathBuf,
    /// `all`, or properties separated by commas.
    pub props: String,
    /// pool/fs or pool/fs@snap
    pub name: String,
    /// Scripting: no header, fields separated by a tab.
    #[arg(short = 'H')]
    pub scripted: bool,
}

/// `PROP=VALUE`, split.
pub fn assignment(text: &str) -> Result<(&str, &str), String> {
    text.split_once('=')
        .filter(|(p, _)| !p.is_empty())
        .ok_or_else(|| format!("{text:?} is not PROP=VALUE"))
}

fn open(image: &Path) -> Result<Pool, String> {
    import_image(image, host_clock(), host_random(None))
}

/// Runs `f` on the pool in `image` and writes the pool back.
fn change(
    command: &str,
    image: &Path,
    f: impl FnOnce(&mut Pool) -> Result<(), String>,
) -> ExitCode {
    let mut pool = match open(image) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("{command}: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let result = f(&mut pool);
    let exported = pool.export();
    match (result, exported) {
        (Err(e), _) => {
            eprintln!("{command}: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
        (Ok(()), Err(e)) => {
            eprintln!("{command}: cannot write the pool back: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
        (Ok(()), Ok(_)) => ExitCode::SUCCESS,
    }
}

/// Checks `PROP=VALUE` assignments as `zfs set` does, before a pool is
/// touched.
pub fn check_all(assignments: &[String]) -> Result<(), String> {
    for a in assignments {
        let (prop, value) = assignment(a)?;
        engine::dsl::dataset::parse_prop(prop, value).map_err(|e| format!("{prop}: {e}"))?;
    }
    Ok(())
}

/// Sets `PROP=VALUE` assignments (checked by [`check_all`]) on `fs`.
pub fn set_all(pool: &mut Pool, fs: &str, assignments: &[String]) -> Result<(), String> {
    for a in assignments {
        let (prop, value) = assignment(a)?;
        pool.set_prop(fs, prop, value)
            .map_err(|e| format!("cannot set {prop} on {fs}: {e}"))?;
    }
    Ok(())
}

pub fn create(args: &CreateArgs) -> ExitCode {
    if let Err(e) = check_all(&args.props) {
        eprintln!("create: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    change("create", &args.image, |pool| {
        pool.create_fs(&args.fs)
            .map_err(|e| format!("cannot create {}: {e}", args.fs))?;
        set_all(pool, &args.fs, &args.props)
    })
}

pub fn set(args: &SetArgs) -> ExitCode {
    if let Err(e) = check_all(std::slice::from_ref(&args.assignment)) {
        eprintln!("set: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    change("set", &args.image, |pool| {
        set_all(pool, &args.fs, std::slice::from_ref(&args.assignment))
    })
}

pub fn get(args: &GetArgs) -> ExitCode {
    let pool = match open(&args.image) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("get: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    if let Err(e) = pool.lookup(&args.name) {
        eprintln!("get: cannot open {}: {e}", args.name);
        return ExitCode::from(EXIT_FAILURE);
    }
    let rows = if args.props == "all" {
        pool.all_props(&args.name)
    } else {
        args.props
            .split(',')
            .map(|p| {
                pool.get_prop(&args.name, p)
                    .map(|(value, source)| (p.to_string(), value, source))
            })
            .collect()
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            eprintln!("get: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if args.scripted {
        for (prop, value, source) in &rows {
            println!("{}\t{prop}\t{value}\t{source}", args.name);
        }
        return ExitCode::SUCCESS;
    }
    let width = |f: &dyn Fn(&(String, String, String)) -> usize, header: &str| {
        rows.iter().map(f).max().unwrap_or(0).max(header.len())
    };
    let name_w = args.name.len().max(4);
    let prop_w = width(&|r| r.0.len(), "PROPERTY");
    let value_w = width(&|r| r.1.len(), "VALUE");
    println!(
        "{:<name_w$}  {:<prop_w$}  {:<value_w$}  SOURCE",
        "NAME", "PROPERTY", "VALUE"
    );
    for (prop, value, source) in &rows {
        println!(
            "{:<name_w$}  {prop:<prop_w$}  {value:<value_w$}  {source}",
            args.name
        );
    }
    ExitCode::SUCCESS
}
