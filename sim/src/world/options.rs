//! Every knob of the simulated world, one options struct per device.
//!
//! A run is its seed plus a [`WorldOptions`]: the disk's rates, latencies
//! and crash windows, the pipe's size, chunking, short I/O, stalls and
//! damage, the transfer's signal and byte-order draws, the clock's txg
//! timeout and think time, the rate of the engine's probes. The swarm
//! generator ([`FaultSpec::resolve`]) draws the fault rates from the seed
//! and [`WorldOptions::from_plan`] puts
//! them beside the defaults; `run` prints the whole struct and a failure
//! file stores it whole, so a saved failure replays on exactly the world it
//! failed in. Each device reads its own part and makes every decision to
//! inject itself (see the top of `disk.rs`, `pipe.rs` and `transfer.rs`).
//!
//! Units are last in the names (`_bytes`, `_us`, `_ms`); a `_probability`
//! is per opportunity, as [`FaultKind::opportunity`] says.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[cfg(test)]
use super::faults::FaultSpec;
use super::faults::{FaultKind, FaultPlan};
use super::pipe::DamageKind;

/// The simulated disk under each pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskOptions {
    /// 48 MiB: room for every workload.
    pub size_bytes: u64,
    pub sector_size_bytes: u64,
    /// Virtual time every read, write and flush costs, so that the
    /// timeline (txg timeouts, creation times) moves with the I/O.
    pub read_latency_us: u64,
    pub write_latency_us: u64,
    /// Added per sector read or written.
    pub sector_latency_us: u64,
    pub flush_latency_us: u64,
    /// Per read: it fails with EIO and moves no data.
    pub read_eio_probability: f64,
    /// Per write: it fails with EIO and writes nothing.
    pub write_eio_probability: f64,
    /// Per write: it lands whole at another sector-aligned offset.
    pub write_misdirect_probability: f64,
    /// Per step: a power loss armed to strike during it, its unflushed
    /// writes all lost, all kept or kept sector by sector.
    pub crash_probability: f64,
    /// Per step: a power loss that keeps every unflushed write but tears
    /// the last one.
    pub torn_probability: f64,
    /// An armed power loss strikes after 0 to this many further writes: a
    /// small txg sync has about a dozen, so crashes land anywhere from the
    /// first block to the uberblocks.
    pub crash_writes_max: u64,
    /// Per step: one sector's bits flip at rest.
    pub rot_probability: f64,
    /// Rot picks among the sectors of this many most recent writes, so
    /// that it usually hits live data.
    pub rot_recent_writes: u64,
    /// Disks per pool: 1, or a 2- or 3-way mirror. Absent from failure
    /// files older than mirrors: 1.
    #[serde(default = "one_device")]
    pub devices: u8,
    /// Per step, on a mirror pool: one device pulled for 1 to 6 steps
    /// (its every request fails), then put back and resilvered.
    #[serde(default)]
    pub disk_loss_probability: f64,
}

fn one_device() -> u8 {
    1
}

/// The pipe between `zfs send` and `zfs receive`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipeOptions {
    /// 64 KiB, a Linux pipe's default.
    pub capacity_bytes: u64,
    /// The sender's writes into the pipe.
    pub send_chunk_bytes: u64,
    /// The receiver's reads from it.
    pub recv_chunk_bytes: u64,
    /// Per read or write: a short one, or (reads) a stall first.
    pub short_io_probability: f64,
    pub stall_ms_min: u64,
    pub stall_ms_max: u64,
    /// Per transfer: one damage in transit.
    pub damage_probability: f64,
    /// Which damage a transfer draws among.
    pub damage_kinds: Vec<DamageKind>,
    /// Dropped or duplicated spans are 1 to this many bytes.
    pub damage_span_max_bytes: u64,
}

/// The faults of a transfer that are not the pipe's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferOptions {
    /// Per send: the stream is written in the other byte order.
    pub endian_probability: f64,
    /// Per transfer: a signal to one side at a drawn moment.
    pub signal_probability: f64,
    /// Damage offsets are drawn within the send's estimate, and at least
    /// within this many bytes.
    pub fault_window_min_bytes: u64,
    /// A signal comes within this much virtual time per KiB of the send's
    /// estimate (at least 1 ms) after the transfer starts; it may come after
    /// its side is done, and then it is not delivered. Absent from older
    /// failure files: the default.
    #[serde(default = "default_signal_window_us_per_kib")]
    pub signal_window_us_per_kib: u64,
    /// Per transfer: the sender rewrites one record into one the receiver
    /// must refuse. Absent from failure files older than the kind: 0.
    #[serde(default)]
    pub hostile_probability: f64,
    /// Per transfer: the sender rewrites one directory, master node or
    /// znode into one a reader must refuse. Absent from failure files
    /// older than the kind: 0.
    #[serde(default)]
    pub malformed_probability: f64,
}

fn default_signal_window_us_per_kib() -> u64 {
    WorldOptions::default().transfer.signal_window_us_per_kib
}

/// The engine's BUGGIFY probes (`probes.rs`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineOptions {
    /// Per block allocation and per transaction assignment: ENOSPC.
    pub enospc_probability: f64,
}

/// Time in the world.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockOptions {
    /// `zfs_txg_timeout`: the txg-sync task's period.
    pub txg_timeout_ms: u64,
    /// Before each step the workload thinks for 1 ms up to (not including)
    /// this.
    pub think_time_ms_max: u64,
}

/// The whole simulated world of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorldOptions {
    pub disk: DiskOptions,
    pub pipe: PipeOptions,
    pub transfer: TransferOptions,
    pub clock: ClockOptions,
    /// Absent from failure files saved before the probes existed.
    #[serde(default)]
    pub engine: EngineOptions,
}

impl Default for WorldOptions {
    /// The world with every fault off.
    fn default() -> WorldOptions {
        WorldOptions {
            disk: DiskOptions {
                size_bytes: 48 << 20,
                sector_size_bytes: 512,
                read_latency_us: 20,
                write_latency_us: 10,
                sector_latency_us: 2,
                flush_latency_us: 200,
                read_eio_probability: 0.0,
                write_eio_probability: 0.0,
                write_misdirect_probability: 0.0,
                crash_probability: 0.0,
                torn_probability: 0.0,
                crash_writes_max: 48,
                rot_probability: 0.0,
                rot_recent_writes: 1024,
                devices: 1,
                disk_loss_probability: 0.0,
            },
            pipe: PipeOptions {
                capacity_bytes: 64 << 10,
                send_chunk_bytes: 32 << 10,
                recv_chunk_bytes: 32 << 10,
                short_io_probability: 0.0,
                stall_ms_min: 1,
                stall_ms_max: 50,
                damage_probability: 0.0,
                damage_kinds: DamageKind::ALL.to_vec(),
                damage_span_max_bytes: 4096,
            },
            transfer: TransferOptions {
                endian_probability: 0.0,
                signal_probability: 0.0,
                fault_window_min_bytes: 4096,
                signal_window_us_per_kib: 64,
                hostile_probability: 0.0,
                malformed_probability: 0.0,
            },
            clock: ClockOptions {
                txg_timeout_ms: 5000,
                think_time_ms_max: 300,
            },
            engine: EngineOptions::default(),
        }
    }
}

impl WorldOptions {
    /// The default world with the plan's rates.
    pub fn from_plan(plan: &FaultPlan) -> WorldOptions {
        let mut options = WorldOptions::default();
        for (kind, rate) in plan.kinds() {
            *options.rate_mut(kind) = rate;
        }
        options
    }

    /// The rates as a plan: what reports and replay commands show.
    pub fn plan(&self) -> FaultPlan {
        FaultPlan::from_rates(FaultKind::ALL.into_iter().map(|k| (k, self.rate(k))))
    }

    /// The probability of `kind` at each of its opportunities.
    pub fn rate(&self, kind: FaultKind) -> f64 {
        let mut copy = self.clone();
        *copy.rate_mut(kind)
    }

    fn rate_mut(&mut self, kind: FaultKind) -> &mut f64 {
        match kind {
            FaultKind::Crash => &mut self.disk.crash_probability,
            FaultKind::Torn => &mut self.disk.torn_probability,
            FaultKind::EioRead => &mut self.disk.read_eio_probability,
            FaultKind::EioWrite => &mut self.disk.write_eio_probability,
            FaultKind::Corrupt => &mut self.disk.rot_probability,
            FaultKind::Misdirect => &mut self.disk.write_misdirect_probability,
            FaultKind::Signal => &mut self.transfer.signal_probability,
            FaultKind::Endian => &mut self.transfer.endian_probability,
            FaultKind::ShortIo => &mut self.pipe.short_io_probability,
            FaultKind::PipeDamage => &mut self.pipe.damage_probability,
            FaultKind::Hostile => &mut self.transfer.hostile_probability,
            FaultKind::Enospc => &mut self.engine.enospc_probability,
            FaultKind::Malformed => &mut self.transfer.malformed_probability,
            FaultKind::DiskLoss => &mut self.disk.disk_loss_probability,
        }
    }

    /// The same world with one fault kind off (for shrinking).
    pub fn without(&self, kind: FaultKind) -> WorldOptions {
        let mut options = self.clone();
        *options.rate_mut(kind) = 0.0;
        options
    }

    /// The options as TOML tables (`[disk]`, `[pipe]`, ...), as `run`
    /// prints them and a failure file stores them.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("world options serialize")
    }

    /// One line per device, `device: field=value ...`, as `run` prints the
    /// world it simulates.
    pub fn describe(&self) -> Vec<String> {
        let value = toml::Value::try_from(self).expect("world options serialize");
        let Some(devices) = value.as_table() else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        for (device, fields) in devices {
            let Some(fields) = fields.as_table() else {
                continue;
            };
            let fields: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            lines.push(format!("{device}: {}", fields.join(" ")));
        }
        lines
    }

    /// Refuses options no device can run with, naming the field.
    pub fn check(&self) -> Result<(), String> {
        let d = &self.disk;
        let p = &self.pipe;
        let mut errors = Vec::new();
        if !d.sector_size_bytes.is_power_of_two() || d.sector_size_bytes < 512 {
            errors.push("disk.sector_size_bytes must be a power of two, at least 512");
        }
        // A smaller disk cannot hold a pool (`SPA_MINDEVSIZE`).
        if d.size_bytes < engine::spa::SPA_MINDEVSIZE {
            errors.push("disk.size_bytes must be at least 8 MiB (SPA_MINDEVSIZE)");
        }
        if !(1..=engine::vdev::MIRROR_MAX_CHILDREN as u8).contains(&d.devices) {
            errors.push("disk.devices must be 1, 2 or 3");
        }
        if d.rot_recent_writes == 0 {
            errors.push("disk.rot_recent_writes must be at least 1");
        }
        if p.capacity_bytes == 0 || p.send_chunk_bytes == 0 || p.recv_chunk_bytes == 0 {
            errors.push("pipe.capacity_bytes and the chunk sizes must be at least 1");
        }
        if p.stall_ms_min > p.stall_ms_max {
            errors.push("pipe.stall_ms_min must not exceed pipe.stall_ms_max");
        }
        if p.damage_span_max_bytes == 0 {
            errors.push("pipe.damage_span_max_bytes must be at least 1");
        }
        if p.damage_kinds.is_empty() && p.damage_probability > 0.0 {
            errors.push("pipe.damage_kinds is empty but pipe.damage_probability is not 0");
        }
        if self.clock.txg_timeout_ms == 0 || self.clock.think_time_ms_max < 2 {
            errors.push("clock.txg_timeout_ms must be at least 1, think_time_ms_max at least 2");
        }
        for kind in FaultKind::ALL {
            let rate = self.rate(kind);
            if !(0.0..=1.0).contains(&rate) {
                errors.push("every _probability must be between 0 and 1");
                break;
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// The txg-sync period as a duration.
    pub fn txg_timeout(&self) -> Duration {
        Duration::from_millis(self.clock.txg_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::streams::Streams;

    #[test]
    fn a_plan_goes_in_and_comes_back_out() {
        for seed in 0..50 {
            let plan = FaultSpec::Swarm.resolve(&Streams::new(seed));
            let options = WorldOptions::from_plan(&plan);
            assert_eq!(options.plan(), plan, "seed {seed}");
            assert_eq!(options.plan().to_string(), plan.to_string());
        }
    }

    #[test]
    fn options_round_trip_through_toml_exactly() {
        let plan = FaultSpec::all().resolve(&Streams::new(7));
        let mut options = WorldOptions::from_plan(&plan);
        options.pipe.capacity_bytes = 777;
        options.pipe.damage_kinds = vec![DamageKind::Truncate];
        let text = options.to_toml();
        let back: WorldOptions = toml::from_str(&text).unwrap();
        assert_eq!(back, options);
        assert!(text.contains("[disk]") && text.contains("capacity_bytes = 777"));
    }

    #[test]
    fn described_one_line_per_device_with_every_field() {
        let lines = WorldOptions::default().describe();
        assert_eq!(lines.len(), 5, "{lines:?}");
        let disk = lines.iter().find(|l| l.starts_with("disk: ")).unwrap();
        assert!(disk.contains("crash_writes_max=48"), "{disk}");
        let pipe = lines.iter().find(|l| l.starts_with("pipe: ")).unwrap();
        assert!(
            pipe.contains(r#"damage_kinds=["bit-flip", "truncate", "drop", "duplicate"]"#),
            "{pipe}"
        );
    }

    #[test]
    fn nonsense_is_refused_by_name() {
        let mut options = WorldOptions::default();
        assert_eq!(options.check(), Ok(()));
        options.pipe.stall_ms_min = 60;
        options.disk.sector_size_bytes = 1000;
        let err = options.check().unwrap_err();
        assert!(err.contains("pipe.stall_ms_min") && err.contains("disk.sector_size_bytes"));
        let mut options = WorldOptions::default();
        options.disk.crash_probability = 1.5;
        assert!(options.check().unwrap_err().contains("_probability"));
        // No pool fits on a disk under SPA_MINDEVSIZE.
        let mut options = WorldOptions::default();
        options.disk.size_bytes = 6 << 20;
        assert!(options.check().unwrap_err().contains("disk.size_bytes"));
    }

    #[test]
    fn turning_a_kind_off_touches_only_its_rate() {
        let options = WorldOptions::from_plan(&FaultSpec::all().resolve(&Streams::new(3)));
        let off = options.without(FaultKind::ShortIo);
        assert_eq!(off.pipe.short_io_probability, 0.0);
        assert_eq!(off.plan(), options.plan().without(FaultKind::ShortIo));
    }
}
