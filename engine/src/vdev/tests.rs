//! The devices' own tests: geometry checks, the media model of a crash,
//! shared handles.

use super::*;
use crate::context::{RandomSource, SplitMix64};
use crate::error::{Errno, Result};
use std::collections::BTreeSet;
use std::fmt;

const SS: u64 = 512;

fn sector(byte: u8) -> Vec<u8> {
    vec![byte; SS as usize]
}

fn read_at(dev: &mut impl BlockDevice, offset: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    dev.read(offset, &mut buf).unwrap();
    buf
}

fn errno<T: fmt::Debug>(r: Result<T>) -> Errno {
    r.unwrap_err().errno()
}

/// The first byte of each of the first `n` sectors.
fn sector_marks(bytes: &[u8], n: usize) -> Vec<u8> {
    (0..n).map(|s| bytes[s * SS as usize]).collect()
}

#[test]
fn misaligned_and_out_of_range_requests_are_refused() {
    let mut devs: Vec<Box<dyn BlockDevice>> = vec![
        Box::new(MemDevice::new(8 * SS, SS)),
        Box::new(CrashDevice::new(8 * SS, SS)),
    ];
    for dev in &mut devs {
        let mut buf = vec![0; SS as usize];
        assert_eq!(errno(dev.read(1, &mut buf)), Errno::EINVAL);
        assert_eq!(errno(dev.write(100, &buf)), Errno::EINVAL);
        assert_eq!(errno(dev.read(0, &mut buf[..100])), Errno::EINVAL);
        assert_eq!(errno(dev.write(0, &buf[..511])), Errno::EINVAL);
        assert_eq!(errno(dev.read(8 * SS, &mut buf)), Errno::EIO);
        assert_eq!(
            errno(dev.write(7 * SS, &vec![0; 2 * SS as usize])),
            Errno::EIO
        );
        // An offset near u64::MAX must not overflow.
        let far = u64::MAX / SS * SS;
        assert_eq!(errno(dev.read(far, &mut buf)), Errno::EIO);
        // Zero-length requests are aligned and in range.
        dev.read(8 * SS, &mut []).unwrap();
        dev.write(0, &[]).unwrap();
        dev.flush().unwrap();
    }
    let err = check_io(4096, 1 << 20, 512, 4096).unwrap_err();
    assert!(err.reason().contains("not aligned"), "{err}");
}

#[test]
fn mem_device_round_trips() {
    let mut dev = MemDevice::new(16 * SS + 100, SS);
    assert_eq!(dev.size(), 16 * SS, "size is rounded down to sectors");
    assert_eq!(dev.sector_size(), SS);
    let data: Vec<u8> = (0..3 * SS).map(|i| (i * 7) as u8).collect();
    dev.write(5 * SS, &data).unwrap();
    assert_eq!(read_at(&mut dev, 5 * SS, data.len()), data);
    assert_eq!(read_at(&mut dev, 4 * SS, SS as usize), sector(0));

    let bytes = dev.clone().into_bytes();
    assert_eq!(bytes, dev.as_bytes());
    let mut again = MemDevice::from_bytes(bytes, SS).unwrap();
    assert_eq!(read_at(&mut again, 5 * SS, data.len()), data);
    assert_eq!(
        errno(MemDevice::from_bytes(vec![0; 1000], SS)),
        Errno::EINVAL
    );
    assert_eq!(
        errno(MemDevice::from_bytes(vec![0; 1536], 768)),
        Errno::EINVAL
    );
}

#[test]
fn boxes_and_borrows_are_devices() {
    fn fill(mut dev: impl BlockDevice, byte: u8) {
        dev.write(0, &sector(byte)).unwrap();
        dev.flush().unwrap();
    }
    let mut dev = MemDevice::new(4 * SS, SS);
    fill(&mut dev, 1);
    assert_eq!(dev.as_bytes()[0], 1);
    let mut boxed: Box<dyn BlockDevice> = Box::new(dev);
    fill(&mut boxed, 2);
    fill(&mut *boxed, 3);
    assert_eq!(read_at(&mut boxed, 0, SS as usize), sector(3));
}

#[test]
fn reads_see_unflushed_writes_newest_first() {
    let mut dev = CrashDevice::new(8 * SS, SS);
    dev.write(0, &[sector(1), sector(1), sector(1)].concat())
        .unwrap();
    dev.write(SS, &sector(2)).unwrap();
    assert_eq!(dev.pending_writes(), 2);
    assert_eq!(dev.pending_sectors(), 3);
    // A read spanning cached and never-written sectors.
    let got = read_at(&mut dev, 0, 5 * SS as usize);
    assert_eq!(sector_marks(&got, 5), [1, 2, 1, 0, 0]);
    assert_eq!(dev.current_bytes()[..5 * SS as usize], got[..]);
    assert!(dev.durable_bytes().iter().all(|&b| b == 0));

    dev.flush().unwrap();
    assert_eq!(dev.pending_writes(), 0);
    assert_eq!(sector_marks(&dev.durable_bytes(), 5), [1, 2, 1, 0, 0]);
}

#[test]
fn lose_all_drops_exactly_the_unflushed_writes() {
    let mut dev = CrashDevice::new(8 * SS, SS);
    dev.write(0, &[sector(1), sector(1)].concat()).unwrap();
    dev.flush().unwrap();
    dev.write(SS, &[sector(2), sector(2)].concat()).unwrap();
    dev.write(4 * SS, &sector(3)).unwrap();
    let outcome = dev.crash(CrashMode::LoseAll, 7);
    assert_eq!(outcome.pending_writes, 2);
    assert_eq!((outcome.sectors_kept, outcome.sectors_lost), (0, 3));
    assert_eq!(dev.pending_writes(), 0);
    let got = read_at(&mut dev, 0, 8 * SS as usize);
    assert_eq!(sector_marks(&got, 8), [1, 1, 0, 0, 0, 0, 0, 0]);
    assert_eq!(dev.stats().crashes, 1);
}

#[test]
fn keep_all_keeps_every_write_in_order() {
    let mut dev = CrashDevice::new(8 * SS, SS);
    dev.write(0, &[sector(1), sector(1)].concat()).unwrap();
    dev.write(SS, &sector(2)).unwrap();
    dev.crash(CrashMode::KeepAll, 0);
    assert_eq!(sector_marks(&dev.durable_bytes(), 3), [1, 2, 0]);
}

/// 64 one-sector writes and two 8-sector ones, then a crash.
fn keep_some(seed: u64) -> (Vec<u8>, CrashOutcome) {
    let mut dev = CrashDevice::new(128 * SS, SS);
    dev.write(127 * SS, &sector(9)).unwrap();
    dev.flush().unwrap();
    for s in 0..64 {
        dev.write(s * SS, &sector(s as u8 + 1)).unwrap();
    }
    dev.write(64 * SS, &vec![100; 8 * SS as usize]).unwrap();
    dev.write(64 * SS, &vec![200; 8 * SS as usize]).unwrap();
    let outcome = dev.crash(CrashMode::KeepSome, seed);
    (dev.into_durable_bytes(), outcome)
}

#[test]
fn keep_some_is_a_deterministic_function_of_the_seed() {
    let (a, out_a) = keep_some(1);
    let (b, _) = keep_some(2);
    let (a_again, out_again) = keep_some(1);
    assert_eq!(a, a_again);
    assert_eq!(out_a, out_again);
    assert_ne!(a, b, "different seeds keep different sectors");
    assert_eq!(out_a.pending_writes, 66);
    assert_eq!(out_a.sectors_kept + out_a.sectors_lost, 80);
    assert!(out_a.sectors_kept > 0 && out_a.sectors_lost > 0);
    // Flushed data survives; every sector is old or new, never a mix.
    assert_eq!(a[127 * SS as usize], 9);
    for s in 0..72 {
        let bytes = &a[s * SS as usize..(s + 1) * SS as usize];
        assert!(bytes.iter().all(|&b| b == bytes[0]), "sector {s} mixed");
        let allowed: &[u8] = if s < 64 {
            &[0, s as u8 + 1]
        } else {
            &[0, 100, 200]
        };
        assert!(allowed.contains(&bytes[0]), "sector {s}: {}", bytes[0]);
    }
    // Some seed keeps the older of two writes of a sector and loses the
    // newer one: the cache destaged out of order.
    assert!((0..64).any(|seed| {
        let (img, _) = keep_some(seed);
        (64..72).any(|s| img[s * SS as usize] == 100)
    }));
}

/// An earlier write and then an 8-sector write, torn.
fn torn_last(seed: u64) -> Vec<u8> {
    let mut dev = CrashDevice::new(16 * SS, SS);
    dev.write(0, &sector(1)).unwrap();
    dev.write(8 * SS, &vec![2; 8 * SS as usize]).unwrap();
    let outcome = dev.crash(CrashMode::TornLast, seed);
    assert_eq!(outcome.sectors_kept + outcome.sectors_lost, 9);
    sector_marks(&dev.durable_bytes(), 16)
}

#[test]
fn torn_last_tears_the_last_write_at_sector_boundaries() {
    let mut tears = 0;
    let mut prefixes = 0;
    for seed in 0..64 {
        let marks = torn_last(seed);
        assert_eq!(marks[0], 1, "earlier writes are kept");
        assert_eq!(marks, torn_last(seed), "seed {seed} is reproducible");
        let last = &marks[8..];
        let kept = last.iter().filter(|&&m| m == 2).count();
        if kept > 0 && kept < 8 {
            tears += 1;
            if last[..kept].iter().all(|&m| m == 2) {
                prefixes += 1;
            }
        }
    }
    assert!(tears > 0, "some seed keeps some sectors and not others");
    assert!(
        prefixes > 0 && prefixes < tears,
        "prefixes and subsets both occur"
    );
}

#[test]
fn a_power_loss_keeps_the_power_off_until_recover() {
    let mut dev = CrashDevice::new(8 * SS, SS);
    dev.write(0, &sector(9)).unwrap();
    dev.flush().unwrap();
    for s in 1..=3 {
        dev.write(s * SS, &sector(s as u8)).unwrap();
    }
    let outcome = dev.power_loss(CrashMode::KeepAll, 0);
    assert!(dev.is_down());
    assert_eq!((outcome.pending_writes, outcome.sectors_kept), (3, 3));
    // Down: everything fails and nothing lands.
    assert_eq!(errno(dev.write(4 * SS, &sector(4))), Errno::EIO);
    assert_eq!(errno(dev.flush()), Errno::EIO);
    let mut buf = sector(0);
    assert_eq!(errno(dev.read(0, &mut buf)), Errno::EIO);
    assert_eq!(
        dev.stats().writes,
        4,
        "the write before the flush, then three"
    );
    // A second loss while off changes nothing.
    assert_eq!(dev.power_loss(CrashMode::LoseAll, 1), outcome);
    assert_eq!(dev.stats().crashes, 1);

    dev.recover();
    assert!(!dev.is_down());
    let got = read_at(&mut dev, 0, 8 * SS as usize);
    assert_eq!(sector_marks(&got, 6), [9, 1, 2, 3, 0, 0]);
    dev.write(4 * SS, &sector(4)).unwrap();
}

#[test]
fn crash_after_a_power_loss_only_powers_on() {
    let mut dev = CrashDevice::new(8 * SS, SS);
    dev.write(0, &sector(1)).unwrap();
    dev.power_loss(CrashMode::LoseAll, 0);
    // The loss already dropped the pending write; KeepAll cannot bring it
    // back.
    let outcome = dev.crash(CrashMode::KeepAll, 0);
    assert_eq!(outcome.mode, CrashMode::LoseAll);
    assert_eq!((outcome.pending_writes, outcome.sectors_lost), (1, 1));
    assert!(!dev.is_down());
    assert_eq!(read_at(&mut dev, 0, SS as usize), sector(0));
    assert_eq!(dev.stats().crashes, 1);
}

#[test]
fn corrupt_sector_flips_bits_at_rest() {
    let mut dev = CrashDevice::new(8 * SS, SS);
    dev.write(0, &[sector(0x0f), sector(0x0f)].concat())
        .unwrap();
    dev.flush().unwrap();
    dev.corrupt_sector(1).unwrap();
    assert_eq!(read_at(&mut dev, 0, SS as usize), sector(0x0f));
    assert_eq!(read_at(&mut dev, SS, SS as usize), sector(0xf0));
    // A pending write hides the damage, and its flush repairs it.
    dev.write(SS, &sector(7)).unwrap();
    dev.corrupt_sector(1).unwrap();
    assert_eq!(read_at(&mut dev, SS, SS as usize), sector(7));
    dev.flush().unwrap();
    assert_eq!(read_at(&mut dev, SS, SS as usize), sector(7));
    assert_eq!(errno(dev.corrupt_sector(8)), Errno::EINVAL);
}

#[test]
fn a_power_loss_puts_back_old_data_and_zeros_never_written() {
    // Sector 2 holds old data; the rest were never written, and a write
    // over them keeps no copy of their zeros.
    let mut dev = CrashDevice::new(16 * SS, SS);
    dev.write(2 * SS, &sector(5)).unwrap();
    dev.flush().unwrap();
    dev.write(0, &vec![7; 4 * SS as usize]).unwrap();
    dev.write(8 * SS, &sector(8)).unwrap();
    dev.write(8 * SS, &sector(9)).unwrap();
    let mut before = vec![0; 16];
    before[2] = 5;
    assert_eq!(sector_marks(&dev.durable_bytes(), 16), before);
    // Damage at rest beneath a pending write over zeros is kept there.
    dev.corrupt_sector(8).unwrap();
    assert_eq!(read_at(&mut dev, 8 * SS, SS as usize), sector(9));
    dev.crash(CrashMode::LoseAll, 0);
    before[8] = 0xff;
    assert_eq!(sector_marks(&dev.durable_bytes(), 16), before);
    // Kept writes come back whole over both.
    dev.recover();
    dev.write(0, &vec![3; 4 * SS as usize]).unwrap();
    dev.write(8 * SS, &sector(4)).unwrap();
    dev.crash(CrashMode::KeepAll, 0);
    let marks = sector_marks(&dev.durable_bytes(), 16);
    assert_eq!(&marks[..4], [3; 4]);
    assert_eq!(marks[8], 4);
}

#[test]
fn read_with_sees_what_read_copies_and_counts_the_same() {
    let mut dev = CrashDevice::new(8 * SS, SS);
    dev.write(SS, &sector(3)).unwrap();
    assert!(dev.lends());
    let mut seen = Vec::new();
    dev.read_with(0, 2 * SS as usize, &mut |b| seen = b.to_vec())
        .unwrap();
    assert_eq!(seen, read_at(&mut dev, 0, 2 * SS as usize));
    assert_eq!(seen[SS as usize..], sector(3)[..]);
    assert_eq!((dev.stats().reads, dev.stats().bytes_read), (2, 4 * SS));
    // Refused as a read is, without calling back.
    let mut called = false;
    let e = dev.read_with(1, SS as usize, &mut |_| called = true);
    assert_eq!(errno(e), Errno::EINVAL);
    dev.power_loss(CrashMode::LoseAll, 0);
    let e = dev.read_with(0, SS as usize, &mut |_| called = true);
    assert_eq!(errno(e), Errno::EIO);
    assert!(!called);
    // A device that copies says so; its default lends a copy.
    let mut mem = MemDevice::new(8 * SS, SS);
    assert!(!mem.lends());
    mem.read_with(0, SS as usize, &mut |b| called = b == &sector(0)[..])
        .unwrap();
    assert!(called);
}

#[test]
fn counters_count_successful_requests() {
    let mut dev = CrashDevice::new(8 * SS, SS);
    dev.write(0, &vec![1; 2 * SS as usize]).unwrap();
    let _ = dev.write(1, &sector(1));
    read_at(&mut dev, 0, SS as usize);
    dev.flush().unwrap();
    let stats = dev.stats();
    assert_eq!(
        stats,
        DeviceStats {
            reads: 1,
            writes: 1,
            flushes: 1,
            bytes_read: SS,
            bytes_written: 2 * SS,
            crashes: 0,
        }
    );
    dev.reset_stats();
    assert_eq!(dev.stats(), DeviceStats::default());
}

#[test]
fn shared_handles_see_one_device_and_refuse_io_while_borrowed() {
    let disk = SharedDevice::new(CrashDevice::new(8 * SS, SS));
    let mut other = disk.clone();
    other.write(0, &sector(5)).unwrap();
    assert_eq!(disk.borrow().pending_writes(), 1);
    {
        let _held = disk.borrow_mut();
        assert_eq!(other.size(), 8 * SS);
        assert_eq!(errno(other.flush()), Errno::EBUSY);
    }
    let disk = disk.try_into_inner().unwrap_err();
    drop(other);
    let dev = disk.try_into_inner().unwrap();
    assert_eq!(dev.current_bytes()[0], 5);
}

#[test]
fn splitmix_matches_the_published_sequence() {
    // The reference values of splitmix64 seeded with 0.
    let mut rng = SplitMix64::new(0);
    assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
    assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
}

/// Eight two-sector writes (marks 1 to 8) over one flushed sector, then a
/// crash: which writes persisted, each checked to be whole.
fn whole_writes(mode: CrashMode, seed: u64) -> Vec<bool> {
    let mut dev = CrashDevice::new(32 * SS, SS);
    dev.write(31 * SS, &sector(9)).unwrap();
    dev.flush().unwrap();
    for w in 0..8u64 {
        dev.write(2 * w * SS, &vec![w as u8 + 1; 2 * SS as usize])
            .unwrap();
    }
    let outcome = dev.crash(mode, seed);
    assert_eq!(outcome.pending_writes, 8);
    let marks = sector_marks(&dev.durable_bytes(), 32);
    assert_eq!(marks[31], 9, "flushed data survives");
    (0..8)
        .map(|w| {
            let pair = (marks[2 * w], marks[2 * w + 1]);
            assert!(
                pair == (0, 0) || pair == (w as u8 + 1, w as u8 + 1),
                "write {w} torn: {pair:?}"
            );
            pair.0 != 0
        })
        .collect()
}

#[test]
fn keep_writes_keeps_whole_writes_in_any_order() {
    let kept: Vec<Vec<bool>> = (0..64)
        .map(|s| whole_writes(CrashMode::KeepWrites, s))
        .collect();
    assert_eq!(
        kept[5],
        whole_writes(CrashMode::KeepWrites, 5),
        "reproducible"
    );
    // A newer write persists while an older one is lost.
    assert!(kept.iter().any(|k| k.windows(2).any(|p| !p[0] && p[1])));
    assert!(
        kept.iter()
            .any(|k| k.iter().any(|&x| x) && k.iter().any(|&x| !x))
    );
}

#[test]
fn keep_oldest_keeps_a_prefix_of_the_writes() {
    let mut lengths = BTreeSet::new();
    for seed in 0..64 {
        let kept = whole_writes(CrashMode::KeepOldest, seed);
        let n = kept.iter().take_while(|&&x| x).count();
        assert!(
            kept[n..].iter().all(|&x| !x),
            "seed {seed}: {kept:?} is no prefix"
        );
        lengths.insert(n);
    }
    assert!(
        lengths.contains(&0) && lengths.contains(&8) && lengths.len() > 4,
        "{lengths:?}"
    );
}
