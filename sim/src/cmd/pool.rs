//! `cargo sim pool create`: a new pool in an image file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use engine::spa::Pool;
use engine::vdev::BlockDevice;

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
    /// Make the pool a mirror of IMAGE and these one or two images
    /// (created too, same size): every block is written to each. The
    /// labels record each image's absolute path, so every command that
    /// takes IMAGE opens the others itself.
    #[arg(long, value_name = "IMAGE", num_args = 1..=2)]
    pub mirror: Vec<PathBuf>,
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
    let images: Vec<&PathBuf> = std::iter::once(&args.image).chain(&args.mirror).collect();
    for (i, image) in images.iter().enumerate() {
        if image.exists() {
            eprintln!("pool create: {} already exists", image.display());
            return ExitCode::from(EXIT_USAGE);
        }
        if images[..i].contains(image) {
            eprintln!("pool create: {} is given twice", image.display());
            return ExitCode::from(EXIT_USAGE);
        }
    }
    if let Err(e) = super::props::check_all(&args.props) {
        eprintln!("pool create: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let remove_all = || {
        for image in &images {
            let _ = std::fs::remove_file(image);
        }
    };
    let mut devices: Vec<(String, Box<dyn BlockDevice>)> = Vec::new();
    for image in &images {
        let created = FileDevice::create(image, args.size, args.sector_size).and_then(|dev| {
            // Absolute, so the pool is found from any directory.
            let path = std::fs::canonicalize(image).map_err(|e| {
                engine::error::Error::new(
                    engine::error::Errno::EIO,
                    format!("{}: {e}", image.display()),
                )
            })?;
            Ok((path.display().to_string(), dev))
        });
        match created {
            Ok((path, dev)) => devices.push((path, Box::new(dev))),
            Err(e) => {
                // Only what this command created.
                for made in &images[..devices.len()] {
                    let _ = std::fs::remove_file(made);
                }
                eprintln!("pool create: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        }
    }
    let pool = if devices.len() == 1 {
        let (_, dev) = devices.pop().expect("one");
        Pool::create(dev, &name, host_clock(), host_random(args.seed))
    } else {
        Pool::create_mirror(devices, &name, host_clock(), host_random(args.seed))
    }
    .map_err(|e| e.to_string());
    let result = pool.and_then(|mut pool| {
        super::props::set_all(&mut pool, &name, &args.props)?;
        let guid = pool.guid;
        pool.export().map(|_| guid).map_err(|e| e.to_string())
    });
    match result {
        Ok(guid) => {
            let names: Vec<String> = images.iter().map(|i| i.display().to_string()).collect();
            if names.len() == 1 {
                println!("created pool {name} (guid {guid:#x}) in {}", names[0]);
            } else {
                println!(
                    "created pool {name} (guid {guid:#x}) on a mirror of {}",
                    names.join(", ")
                );
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            remove_all();
            eprintln!("pool create: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
