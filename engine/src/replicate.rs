//! `zfs send -R` (and `-R -I`): a replication stream, as libzfs writes it
//! on top of the kernel's streams. A compound BEGIN whose payload is an
//! XDR nvlist describing the tree sent (`tosnap`, `fromsnap`, and per
//! filesystem `fss`: its name, guid, origin, properties and snapshots),
//! its END; then, filesystem by filesystem (parents before children,
//! origins before clones), a full or clone stream of its first snapshot in
//! range and an incremental stream of each one after; then an END whose
//! checksum is zero.

use std::collections::BTreeSet;
use std::io::Write;

use crate::checksum::ZioCksum;
use crate::dsl::dataset::{RECVD_SUFFIX, prop_to_nv};
use crate::dsl::{DatasetId, DirId, split_snapshot_name};
use crate::error::{Errno, Result, fail};
use crate::nvlist::{NvList, NvValue, pack_xdr};
use crate::send::{NoInterrupt, SendOptions};
use crate::spa::Pool;
use crate::stream::{
    ByteOrder, DMU_COMPOUNDSTREAM, DrrBegin, DrrEnd, MAXNAMELEN, Record, StreamWriter,
};

/// One filesystem of the tree sent: its head and the snapshots in range.
struct Sent {
    head: DatasetId,
    /// In order; the first is sent whole (or as a clone stream from its
    /// origin), each later one from the one before.
    snaps: Vec<DatasetId>,
}

/// What a replication stream is made of, for a sender that writes it a
/// piece at a time: the header substream, then each substream in order
/// (a kernel stream of `snap`, incremental from `from` when there is one:
/// a snapshot of the same filesystem, or a clone's origin), then the final
/// END. [`Pool::send_replication`] writes exactly this.
#[derive(Clone, Debug)]
pub struct ReplicationPlan {
    /// The compound BEGIN with its nvlist payload, and its own END.
    pub header: Vec<u8>,
    pub substreams: Vec<Substream>,
    /// The closing END, checksum zero.
    pub end: Vec<u8>,
}

/// One kernel stream of a replication stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Substream {
    pub snap: DatasetId,
    pub from: Option<DatasetId>,
}

impl Pool {
    /// `zfs send -R POOL/FS@SNAP [-I @FROM]` into `out`: `tosnap` and every
    /// filesystem below it, each with its snapshots up to the one of the
    /// same name (from `@FROM` on, with `from`). A descendant without that
    /// snapshot is ENOENT, before anything is written.
    pub fn send_replication(
        &mut self,
        tosnap: &str,
        from: Option<&str>,
        out: &mut impl Write,
        options: &SendOptions,
    ) -> Result<()> {
        let plan = self.replication_plan(tosnap, from, options.byte_order)?;
        // unreached: only the command line's `send -R` writes to a stdout that can fail; the misuse
        // step writes into a sink, and the simulation uses replication_plan
        let io = |e: std::io::Error| crate::error::Error::new(Errno::EIO, e.to_string());
        out.write_all(&plan.header).map_err(io)?;
        for sub in &plan.substreams {
            self.send_impl(sub.snap, sub.from, out, options, None, &mut NoInterrupt)?;
        }
        out.write_all(&plan.end).map_err(io)?;
        out.flush().map_err(io)
    }

    /// The pieces of `zfs send -R tosnap [-I @from]` in `order`: the tree
    /// sent is fixed here, before any substream is written.
    pub fn replication_plan(
        &self,
        tosnap: &str,
        from: Option<&str>,
        order: ByteOrder,
    ) -> Result<ReplicationPlan> {
        let Some((top, snapname)) = split_snapshot_name(tosnap) else {
            return fail(Errno::EINVAL, "send -R needs a snapshot (pool/fs@snap)");
        };
        let from = from.map(|f| f.trim_start_matches('@'));
        self.lookup(tosnap)?;
        let tree = self.tree_sent(top, snapname, from)?;
        let nvlist = self.replication_header(&tree, snapname, from);
        let payload = pack_xdr(&nvlist);

        let mut begin = DrrBegin {
            versioninfo: DMU_COMPOUNDSTREAM,
            payloadlen: payload.len() as u32,
            ..DrrBegin::default()
        };
        if tosnap.len() >= MAXNAMELEN {
            // unreached: only a receive into a long target makes a name of 256 bytes or more (it
            // checks components, not the whole name); the simulation's names are short and no
            // fuzzer sends -R
            return fail(Errno::ENAMETOOLONG, format!("{tosnap}: name too long"));
        }
        begin.set_toname(tosnap);
        // unreached: both writers here write into a Vec, whose io::Write never fails
        let io = |e: std::io::Error| crate::error::Error::new(Errno::EIO, e.to_string());
        // The header is a substream of its own: its END checks it alone.
        let mut writer = StreamWriter::new(Vec::new(), order);
        writer
            .write_record(&Record::Begin(Box::new(begin)), &payload)
            .map_err(io)?;
        writer.write_end(0).map_err(io)?;
        writer.flush().map_err(io)?;
        let header = writer.into_inner();

        let mut substreams = Vec::new();
        for fs in &tree {
            let mut prev = from.and_then(|f| self.snapshot_named(fs.head, f));
            for &snap in &fs.snaps {
                let from = match prev {
                    Some(p) => Some(p),
                    None => self.clone_origin(fs.head),
                };
                substreams.push(Substream { snap, from });
                prev = Some(snap);
            }
        }
        let mut writer = StreamWriter::new(Vec::new(), order);
        writer
            .write_record(
                &Record::End(DrrEnd {
                    checksum: ZioCksum::ZERO,
                    toguid: 0,
                }),
                &[],
            )
            .map_err(io)?;
        writer.flush().map_err(io)?;
        Ok(ReplicationPlan {
            header,
            substreams,
            end: writer.into_inner(),
        })
    }

    /// The filesystems sent, parents before children and origins before
    /// their clones, each with its snapshots in range.
    fn tree_sent(&self, top: &str, snapname: &str, from: Option<&str>) -> Result<Vec<Sent>> {
        // `tosnap` was found, so `top` exists and is no `%` clone.
        let names = std::iter::once(top.to_string()).chain(self.filesystems_below(top));
        let mut pending: Vec<Sent> = Vec::new();
        for name in names {
            let head = self.lookup(&name)?;
            let all = self.snapshots_of(head);
            let Some(last) = all.iter().position(|&s| self.snapname(s) == snapname) else {
                // zfs-fuse warns "could not send FS@SNAP: does not exist"
                // and fails; nothing is written here.
                return fail(
                    Errno::ENOENT,
                    format!("could not send {name}@{snapname}: does not exist"),
                );
            };
            let first = match from {
                Some(f) => match all.iter().position(|&s| self.snapname(s) == f) {
                    Some(i) => i + 1,
                    // A filesystem new since @FROM goes whole.
                    None => 0,
                },
                None => 0,
            };
            pending.push(Sent {
                head,
                snaps: all[first..=last].to_vec(),
            });
        }
        // Origins first: a clone waits until the filesystem of its origin
        // is in (or is not sent at all), and a child until its parent is
        // (a child of a clone waits with it).
        let sent_dirs: BTreeSet<DirId> = pending
            .iter()
            .map(|s| self.dsl.datasets[&s.head].dir)
            .collect();
        let mut order = Vec::new();
        let mut done: BTreeSet<DirId> = BTreeSet::new();
        while !pending.is_empty() {
            let before = pending.len();
            let mut rest = Vec::new();
            for s in pending {
                let dir = self.dsl.datasets[&s.head].dir;
                let origin_dir = self.clone_origin(s.head).map(|o| self.dsl.datasets[&o].dir);
                let waits_for = [origin_dir, self.dsl.dirs[&dir].parent];
                let ready = waits_for
                    .into_iter()
                    .flatten()
                    .all(|d| !sent_dirs.contains(&d) || done.contains(&d));
                if ready {
                    done.insert(dir);
                    order.push(s);
                } else {
                    rest.push(s);
                }
            }
            if rest.len() == before {
                // unreached: only a hand-made image can have origins that depend on each other; the
                // engine makes each dir after its parent and after its origin's dir
                return fail(Errno::EINVAL, "clones whose origins depend on each other");
            }
            pending = rest;
        }
        Ok(order)
    }

    /// The header's nvlist: `fromsnap`, `tosnap`, and `fss`.
    fn replication_header(&self, tree: &[Sent], snapname: &str, from: Option<&str>) -> NvList {
        let mut fss = NvList::new();
        for fs in tree {
            let dir = self.dsl.datasets[&fs.head].dir;
            let mut nv = NvList::new();
            nv.push("name", NvValue::String(self.dir_name(dir)));
            // The guid of the parent's snapshot the stream starts from (its
            // last one sent when there is no @FROM).
            let parent_snap = self.dsl.dirs[&dir]
                .parent
                .and_then(|p| self.snapshot_in(p, from.unwrap_or(snapname)))
                .map_or(0, |s| self.dsl.datasets[&s].guid);
            nv.push("parentfromsnap", NvValue::Uint64(parent_snap));
            if let Some(origin) = self.clone_origin(fs.head) {
                nv.push("origin", NvValue::Uint64(self.dsl.datasets[&origin].guid));
            }
            nv.push("props", NvValue::NvList(self.sent_props(dir)));
            let mut snaps = NvList::new();
            let mut snapprops = NvList::new();
            for s in self.snapshots_of(fs.head) {
                let short = self.snapname(s);
                snaps.push(short, NvValue::Uint64(self.dsl.datasets[&s].guid));
                snapprops.push(short, NvValue::NvList(NvList::new()));
            }
            nv.push("snaps", NvValue::NvList(snaps));
            nv.push("snapprops", NvValue::NvList(snapprops));
            let guid = self.dsl.datasets[&fs.head].guid;
            fss.push(format!("0x{guid:x}"), NvValue::NvList(nv));
        }
        let mut header = NvList::new();
        if let Some(f) = from {
            header.push("fromsnap", NvValue::String(f.to_string()));
        }
        header.push("tosnap", NvValue::String(snapname.to_string()));
        header.push("fss", NvValue::NvList(fss));
        header
    }

    /// The properties set on a filesystem itself, locally or received, as
    /// libzfs sends them: index properties by number, the others as
    /// numbers or strings.
    fn sent_props(&self, dir: DirId) -> NvList {
        let mut out = NvList::new();
        let props = &self.dsl.dirs[&dir].props;
        let mut names: Vec<&str> = props
            .keys()
            .map(|k| k.trim_end_matches(RECVD_SUFFIX))
            .collect();
        names.dedup();
        for name in names {
            let received = format!("{name}{RECVD_SUFFIX}");
            let Some(value) = props.get(name).or_else(|| props.get(&received)) else {
                continue;
            };
            let nv = prop_to_nv(name, value);
            if let Some(nv) = nv {
                out.push(name.to_string(), nv);
            }
        }
        out
    }

    /// A filesystem's snapshot by its short name.
    fn snapshot_named(&self, head: DatasetId, short: &str) -> Option<DatasetId> {
        self.snapshot_in(self.dsl.datasets[&head].dir, short)
    }

    /// A snapshot's name after the `@`.
    fn snapname(&self, snap: DatasetId) -> &str {
        self.dsl.datasets[&snap]
            .snapname
            .as_deref()
            .unwrap_or_default()
    }

    /// The origin of a clone's first snapshot (its directory's origin).
    fn clone_origin(&self, head: DatasetId) -> Option<DatasetId> {
        self.dsl.dirs[&self.dsl.datasets[&head].dir].origin
    }
}
