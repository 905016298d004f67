//! `cargo sim zdb`: what a pool image holds, and whether it is consistent.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use engine::check::check;
use engine::spa::Pool;

use super::{EXIT_FAILURE, host_clock, host_random};
use crate::file_device::FileDevice;

/// Inspect a pool image: its datasets and snapshots (guid, creation txg and
/// time, space), with -d the objects of each dataset, with -b a check of every
/// block (checksums, leaks, double references, space accounting).
#[derive(Debug, Args)]
pub struct ZdbArgs {
    /// The pool image file.
    pub image: PathBuf,
    /// Only this dataset (pool/fs or pool/fs@snap).
    pub dataset: Option<String>,
    /// List objects: -d for a table of objects, -dd adds their bonus lengths
    /// and block pointers' levels.
    #[arg(short = 'd', action = clap::ArgAction::Count)]
    pub objects: u8,
    /// Check every block and the space accounting; exit 1 on any problem.
    #[arg(short = 'b')]
    pub blocks: bool,
}

pub fn run(args: &ZdbArgs) -> ExitCode {
    let dev = match FileDevice::open(&args.image) {
        Ok(dev) => dev,
        Err(e) => {
            eprintln!("zdb: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let mut pool = match Pool::import(Box::new(dev), host_clock(), host_random(Some(0))) {
        Ok(pool) => pool,
        Err(e) => {
            eprintln!("zdb: cannot import {}: {e}", args.image.display());
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    let (allocated, capacity) = pool.space();
    println!(
        "pool {} guid {:#x} txg {} allocated {} of {} bytes",
        pool.name,
        pool.guid,
        pool.synced_txg(),
        allocated,
        capacity
    );
    let datasets = match &args.dataset {
        Some(name) => match pool.lookup(name) {
            Ok(id) => vec![pool.info(id)],
            Err(e) => {
                eprintln!("zdb: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        },
        None => pool.list(),
    };
    println!();
    println!(
        "{:<40} {:>18} {:>8} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "DATASET", "GUID", "TXG", "CREATION", "USED", "REFER", "UNIQUE", "WRITTEN"
    );
    for ds in &datasets {
        let space = match pool.space_info(ds.id) {
            Ok(space) => space,
            Err(e) => {
                eprintln!("zdb: {}: {e}", ds.name);
                return ExitCode::from(EXIT_FAILURE);
            }
        };
        println!(
            "{:<40} {:>18x} {:>8} {:>12} {:>12} {:>12} {:>12} {:>12}",
            ds.name,
            ds.guid,
            ds.creation_txg,
            ds.creation_time,
            space.used,
            space.referenced,
            space.unique,
            space.written
        );
    }
    if args.objects > 0 {
        for ds in &datasets {
            println!();
            println!(
                "Dataset {}, {} objects",
                ds.name,
                object_count(&mut pool, ds.id)
            );
            println!(
                "{:>10} {:>4} {:>6} {:>6} {:>10} {:>5} {:>8}{}",
                "OBJECT",
                "LVL",
                "IBLK",
                "DBLK",
                "MAXBLKID",
                "TYPE",
                "BONUS",
                if args.objects > 1 {
                    "  BONUSTYPE NBLKPTR"
                } else {
                    ""
                }
            );
            let dmu = match pool.dmu(ds.id) {
                Ok(dmu) => dmu,
                Err(e) => {
                    eprintln!("zdb: {}: {e}", ds.name);
                    return ExitCode::from(EXIT_FAILURE);
                }
            };
            for object in dmu.objects() {
                let info = dmu.object_info(object).expect("listed objects exist");
                print!(
                    "{:>10} {:>4} {:>6} {:>6} {:>10} {:>5} {:>8}",
                    object,
                    info.nlevels,
                    1u32 << info.indblkshift,
                    info.datablksz,
                    info.maxblkid,
                    info.dn_type,
                    info.bonuslen
                );
                if args.objects > 1 {
                    print!("  {:>9} {:>7}", info.bonustype, info.nblkptr);
                }
                println!();
            }
        }
    }
    if args.blocks {
        println!();
        match check(&mut pool) {
            Ok(report) => {
                print!("{report}");
                if !report.is_clean() {
                    return ExitCode::from(EXIT_FAILURE);
                }
            }
            Err(e) => {
                eprintln!("zdb: check failed: {e}");
                return ExitCode::from(EXIT_FAILURE);
            }
        }
    }
    ExitCode::SUCCESS
}

fn object_count(pool: &mut Pool, id: u64) -> usize {
    pool.dmu(id).map(|d| d.objects().len()).unwrap_or(0)
}
