//! `cargo sim pool create`: a new pool in an image file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use engine::spa::Pool;

use super::{EXIT_FAILURE, EXIT_USAGE, host_clock, host_random};
use crate::file_device::FileDevice;

/// Manage pool image files.
#[derive(Debug, Args)]
pub struct PoolArgs {
    #[command(subcommand)]
    pub command: PoolCommand,
}

#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// Create a pool in a new image file (sparse), with its root filesystem.
    Create(CreateArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The image file to create; it must not exist.
    pub image: PathBuf,
    /// Pool name (default: the image file's stem).
    #[arg(long)]
    pub name: Option<String>,
    /// Image size in bytes; K, M, G suffixes accepted (default 256M).
    #[arg(long, default_value = "256M", value_parser = parse_size)]
    pub size: u64,
    /// Sector size of the image: 512 or 4096.
    #[arg(long, default_value_t = 512)]
    pub sector_size: u64,
    /// Seed for the pool's random guids (default: from the current time).
    #[arg(long)]
    pub seed: Option<u64>,
    /// A property of the root filesystem, which every filesystem inherits
    /// unless it sets its own (see `cargo sim set --help`).
    #[arg(short = 'O', value_name = "PROP=VALUE")]
    pub props: Vec<String>,
}

/// Parses `1048576`, `64K`, `256M`, `2G`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let (digits, shift) = match text.chars().last() {
        Some('K' | 'k') => (&text[..text.len() - 1], 10),
        Some('M' | 'm') => (&text[..text.len() - 1], 20),
        Some('G' | 'g') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a size"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("{text:?} is too large"))
}

pub fn run(args: &PoolArgs) -> ExitCode {
    match &args.command {
        PoolCommand::Create(args) => create(args),
    }
}

fn create(args: &CreateArgs) -> ExitCode {
    let name = match &args.name {
        Some(name) => name.clone(),
        None => match args.image.file_stem().and_then(|s| s.to_str()) {
            Some(stem) => stem.to_string(),
            None => {
                eprintln!(
                    "pool create: cannot take a pool name from {}",
                    args.image.display()
                );
                return ExitCode::from(EXIT_USAGE);
            }
        },
    };
    if args.sector_size != 512 && args.sector_size != 4096 {
        eprintln!("pool create: sector size must be 512 or 4096");
        return ExitCode::from(EXIT_USAGE);
    }
    if args.image.exists() {
        eprintln!("pool create: {} already exists", args.image.display());
        return ExitCode::from(EXIT_USAGE);
    }
    if let Err(e) = super::props::check_all(&args.props) {
        eprintln!("pool create: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let dev = match FileDevice::create(&args.image, args.size, args.sector_size) {
        Ok(dev) => dev,
        Err(e) => {
            eprintln!("pool create: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let pool = Pool::create(Box::new(dev), &name, host_clock(), host_random(args.seed))
        .map_err(|e| e.to_string());
    let result = pool.and_then(|mut pool| {
        super::props::set_all(&mut pool, &name, &args.props)?;
        let guid = pool.guid;
        pool.export().map(|_| guid).map_err(|e| e.to_string())
    });
    match result {
        Ok(guid) => {
            println!(
                "created pool {name} (guid {guid:#x}) in {}",
                args.image.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = std::fs::remove_file(&args.image);
            eprintln!("pool create: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
