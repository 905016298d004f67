//! `cargo sim zdb`: what a pool image holds, and whether it is consistent.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use engine::check::check;
use engine::dsl::dataset::DatasetInfo;
use engine::spa::Pool;

use super::{EXIT_FAILURE, host_clock, host_random};
use crate::file_device::import_image;

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
    match zdb(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_FAILURE),
        Err(e) => {
            eprintln!("zdb: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Prints what was asked; `Ok(false)` when `-b` found a problem.
fn zdb(args: &ZdbArgs) -> Result<bool, String> {
    let mut pool = import_image(&args.image, host_clock(), host_random(Some(0)))?;
    // zdb only looks: a bad copy it reads past stays as it is (`cargo sim
    // scrub` repairs).
    pool.zio_mut().self_heal = false;
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
        Some(name) => vec![pool.info(pool.lookup(name).map_err(|e| e.to_string())?)],
        None => pool.list(),
    };
    print_datasets(&mut pool, &datasets)?;
    if args.objects > 0 {
        for ds in &datasets {
            print_objects(&mut pool, ds, args.objects > 1)?;
        }
    }
    if args.blocks {
        println!();
        let report = check(&mut pool).map_err(|e| format!("check failed: {e}"))?;
        print!("{report}");
        return Ok(report.is_clean());
    }
    Ok(true)
}

/// The datasets' table: guid, creation, space.
fn print_datasets(pool: &mut Pool, datasets: &[DatasetInfo]) -> Result<(), String> {
    println!();
    println!(
        "{:<40} {:>18} {:>8} {:>12} {:>12} {:>12} {:>12} {:>12}",
        "DATASET", "GUID", "TXG", "CREATION", "USED", "REFER", "UNIQUE", "WRITTEN"
    );
    for ds in datasets {
        let space = pool
            .space_info(ds.id)
            .map_err(|e| format!("{}: {e}", ds.name))?;
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
    Ok(())
}

/// `-d`: one line per object (`-dd`: with bonus type and block pointers).
fn print_objects(pool: &mut Pool, ds: &DatasetInfo, detail: bool) -> Result<(), String> {
    println!();
    println!("Dataset {}, {} objects", ds.name, object_count(pool, ds.id));
    println!(
        "{:>10} {:>4} {:>6} {:>6} {:>10} {:>5} {:>8}{}",
        "OBJECT",
        "LVL",
        "IBLK",
        "DBLK",
        "MAXBLKID",
        "TYPE",
        "BONUS",
        if detail { "  BONUSTYPE NBLKPTR" } else { "" }
    );
    let dmu = pool.dmu(ds.id).map_err(|e| format!("{}: {e}", ds.name))?;
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
        if detail {
            print!("  {:>9} {:>7}", info.bonustype, info.nblkptr);
        }
        println!();
    }
    Ok(())
}

fn object_count(pool: &mut Pool, id: u64) -> usize {
    pool.dmu(id).map(|d| d.objects().len()).unwrap_or(0)
}
