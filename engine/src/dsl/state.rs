//! The DSL's records (`dsl_dir_phys_t`, `dsl_dataset_phys_t` in spirit) and
//! their on-disk encoding: one little-endian record, versioned, read back
//! with every length checked (a corrupt record is EIO, never a panic).

use std::collections::{BTreeMap, BTreeSet};

use crate::error::{Errno, Error, Result};
use crate::zio::{BLKPTR_SIZE, Blkptr};

pub type DirId = u64;
pub type DatasetId = u64;

/// A property value as set on a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PropValue {
    Number(u64),
    Text(String),
}

/// `dsl_dir`: a node of the name tree, with its head dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DslDir {
    pub id: DirId,
    /// The last component of the name (the pool name for the root).
    pub name: String,
    pub parent: Option<DirId>,
    pub head: DatasetId,
    /// For a clone: the snapshot it was cloned from.
    pub origin: Option<DatasetId>,
    pub children: BTreeMap<String, DirId>,
    pub props: BTreeMap<String, PropValue>,
}

/// `dsl_dataset`: a head (the live filesystem) or a snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DslDataset {
    pub id: DatasetId,
    pub dir: DirId,
    /// `Some(name)` for a snapshot.
    pub snapname: Option<String>,
    pub prev_snap: Option<DatasetId>,
    /// Creation txg of `prev_snap` (for a clone head without snapshots of
    /// its own, of its origin); 0 when there is none.
    pub prev_snap_txg: u64,
    /// For a snapshot: the next snapshot of the same head, or the head.
    pub next_snap: Option<DatasetId>,
    /// For a snapshot: clones made from it.
    pub next_clones: BTreeSet<DatasetId>,
    pub creation_time: u64,
    pub creation_txg: u64,
    pub guid: u64,
    pub flags: u64,
    /// The objset.
    pub bp: Blkptr,
    pub referenced_bytes: u64,
    pub compressed_bytes: u64,
    pub uncompressed_bytes: u64,
    pub unique_bytes: u64,
    /// Blocks this dataset stopped referencing that an earlier snapshot
    /// still holds (`ds_deadlist`).
    pub deadlist: Vec<Blkptr>,
    /// User holds: tag -> time.
    pub userrefs: BTreeMap<String, u64>,
}

impl DslDataset {
    pub fn is_snapshot(&self) -> bool {
        self.snapname.is_some()
    }
}

/// Every directory and dataset of a pool.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DslState {
    pub dirs: BTreeMap<DirId, DslDir>,
    pub datasets: BTreeMap<DatasetId, DslDataset>,
    pub next_id: u64,
}

const MAGIC: u64 = 0x7a73_696d_6473_6c31; // "zsimdsl1"

struct Enc(Vec<u8>);

impl Enc {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn opt(&mut self, v: Option<u64>) {
        self.u64(v.map_or(u64::MAX, |v| v));
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }
    fn bp(&mut self, bp: &Blkptr) {
        let mut buf = [0u8; BLKPTR_SIZE];
        bp.encode(&mut buf);
        self.0.extend_from_slice(&buf);
    }
}

struct Dec<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Dec<'_> {
    fn corrupt(&self, what: &str) -> Error {
        Error::new(
            Errno::EIO,
            format!("corrupt DSL record at byte {}: {what}", self.pos),
        )
    }
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        if self.buf.len() - self.pos < n {
            return Err(self.corrupt("truncated"));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn opt(&mut self) -> Result<Option<u64>> {
        Ok(Some(self.u64()?).filter(|&v| v != u64::MAX))
    }
    /// A count of items of at least `min_size` bytes each, checked against
    /// what is left so a corrupt count cannot make us allocate.
    fn count(&mut self, min_size: usize) -> Result<usize> {
        let n = self.u64()?;
        if n > ((self.buf.len() - self.pos) / min_size.max(1)) as u64 {
            return Err(self.corrupt("count exceeds the record"));
        }
        Ok(n as usize)
    }
    fn str(&mut self) -> Result<String> {
        let n = self.count(1)?;
        let bytes = self.take(n)?.to_vec();
        String::from_utf8(bytes).map_err(|_| self.corrupt("name is not UTF-8"))
    }
    fn bp(&mut self) -> Result<Blkptr> {
        Ok(Blkptr::decode(self.take(BLKPTR_SIZE)?))
    }
}

impl DslState {
    pub fn encode(&self) -> Vec<u8> {
        let mut e = Enc(Vec::new());
        e.u64(MAGIC);
        e.u64(self.next_id);
        e.u64(self.dirs.len() as u64);
        for d in self.dirs.values() {
            e.u64(d.id);
            e.str(&d.name);
            e.opt(d.parent);
            e.u64(d.head);
            e.opt(d.origin);
            e.u64(d.children.len() as u64);
            for (name, id) in &d.children {
                e.str(name);
                e.u64(*id);
            }
            e.u64(d.props.len() as u64);
            for (name, value) in &d.props {
                e.str(name);
                match value {
                    PropValue::Number(n) => {
                        e.u64(0);
                        e.u64(*n);
                    }
                    PropValue::Text(s) => {
                        e.u64(1);
                        e.str(s);
                    }
                }
            }
        }
        e.u64(self.datasets.len() as u64);
        for ds in self.datasets.values() {
            e.u64(ds.id);
            e.u64(ds.dir);
            match &ds.snapname {
                Some(name) => {
                    e.u64(1);
                    e.str(name);
                }
                None => e.u64(0),
            }
            e.opt(ds.prev_snap);
            e.u64(ds.prev_snap_txg);
            e.opt(ds.next_snap);
            e.u64(ds.next_clones.len() as u64);
            for c in &ds.next_clones {
                e.u64(*c);
            }
            for v in [
                ds.creation_time,
                ds.creation_txg,
                ds.guid,
                ds.flags,
                ds.referenced_bytes,
                ds.compressed_bytes,
                ds.uncompressed_bytes,
                ds.unique_bytes,
            ] {
                e.u64(v);
            }
            e.bp(&ds.bp);
            e.u64(ds.deadlist.len() as u64);
            for bp in &ds.deadlist {
                e.bp(bp);
            }
            e.u64(ds.userrefs.len() as u64);
            for (tag, time) in &ds.userrefs {
                e.str(tag);
                e.u64(*time);
            }
        }
        e.0
    }

    pub fn decode(buf: &[u8]) -> Result<DslState> {
        let mut d = Dec { buf, pos: 0 };
        if d.u64()? != MAGIC {
            return Err(d.corrupt("bad magic"));
        }
        let mut state = DslState {
            next_id: d.u64()?,
            ..DslState::default()
        };
        for _ in 0..d.count(40)? {
            let id = d.u64()?;
            let name = d.str()?;
            let parent = d.opt()?;
            let head = d.u64()?;
            let origin = d.opt()?;
            let mut children = BTreeMap::new();
            for _ in 0..d.count(16)? {
                let name = d.str()?;
                children.insert(name, d.u64()?);
            }
            let mut props = BTreeMap::new();
            for _ in 0..d.count(24)? {
                let name = d.str()?;
                let value = match d.u64()? {
                    0 => PropValue::Number(d.u64()?),
                    1 => PropValue::Text(d.str()?),
                    _ => return Err(d.corrupt("property kind")),
                };
                props.insert(name, value);
            }
            let dir = DslDir {
                id,
                name,
                parent,
                head,
                origin,
                children,
                props,
            };
            state.dirs.insert(id, dir);
        }
        for _ in 0..d.count(100)? {
            let id = d.u64()?;
            let dir = d.u64()?;
            let snapname = match d.u64()? {
                0 => None,
                1 => Some(d.str()?),
                _ => return Err(d.corrupt("snapshot flag")),
            };
            let prev_snap = d.opt()?;
            let prev_snap_txg = d.u64()?;
            let next_snap = d.opt()?;
            let mut next_clones = BTreeSet::new();
            for _ in 0..d.count(8)? {
                next_clones.insert(d.u64()?);
            }
            let mut ds = DslDataset {
                id,
                dir,
                snapname,
                prev_snap,
                prev_snap_txg,
                next_snap,
                next_clones,
                creation_time: d.u64()?,
                creation_txg: d.u64()?,
                guid: d.u64()?,
                flags: d.u64()?,
                referenced_bytes: d.u64()?,
                compressed_bytes: d.u64()?,
                uncompressed_bytes: d.u64()?,
                unique_bytes: d.u64()?,
                bp: d.bp()?,
                deadlist: Vec::new(),
                userrefs: BTreeMap::new(),
            };
            let n = d.count(BLKPTR_SIZE)?;
            ds.deadlist.reserve(n);
            for _ in 0..n {
                ds.deadlist.push(d.bp()?);
            }
            for _ in 0..d.count(16)? {
                let tag = d.str()?;
                ds.userrefs.insert(tag, d.u64()?);
            }
            state.datasets.insert(id, ds);
        }
        if d.pos != buf.len() {
            return Err(d.corrupt("trailing bytes"));
        }
        state.validate()?;
        Ok(state)
    }

    /// Cross-references must point at records that exist: a corrupt record
    /// is caught here rather than by a panic later.
    fn validate(&self) -> Result<()> {
        let bad = |what: String| Err(Error::new(Errno::EIO, format!("corrupt DSL: {what}")));
        for dir in self.dirs.values() {
            if !self.datasets.contains_key(&dir.head) {
                return bad(format!("directory {} has no head dataset", dir.id));
            }
            if dir.parent.is_some_and(|p| !self.dirs.contains_key(&p)) {
                return bad(format!("directory {} has no parent", dir.id));
            }
            if dir.children.values().any(|c| !self.dirs.contains_key(c)) {
                return bad(format!("directory {} has a missing child", dir.id));
            }
            if dir.origin.is_some_and(|o| !self.datasets.contains_key(&o)) {
                return bad(format!("directory {} has a missing origin", dir.id));
            }
        }
        for ds in self.datasets.values() {
            let missing = |id: Option<u64>| id.is_some_and(|i| !self.datasets.contains_key(&i));
            if !self.dirs.contains_key(&ds.dir) || missing(ds.prev_snap) || missing(ds.next_snap) {
                return bad(format!("dataset {} refers to a missing record", ds.id));
            }
            if ds
                .next_clones
                .iter()
                .any(|c| !self.datasets.contains_key(c))
            {
                return bad(format!("dataset {} has a missing clone", ds.id));
            }
        }
        Ok(())
    }

    pub fn alloc_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_refuses_damage() {
        let mut s = DslState::default();
        let dir = s.alloc_id();
        let ds = s.alloc_id();
        let mut props = BTreeMap::new();
        props.insert("compression".to_string(), PropValue::Text("lzjb".into()));
        props.insert("recordsize".to_string(), PropValue::Number(8192));
        s.dirs.insert(
            dir,
            DslDir {
                id: dir,
                name: "tank".into(),
                parent: None,
                head: ds,
                origin: None,
                children: BTreeMap::new(),
                props,
            },
        );
        let mut userrefs = BTreeMap::new();
        userrefs.insert("keep".to_string(), 17);
        s.datasets.insert(
            ds,
            DslDataset {
                id: ds,
                dir,
                snapname: None,
                prev_snap: None,
                prev_snap_txg: 0,
                next_snap: None,
                next_clones: BTreeSet::new(),
                creation_time: 5,
                creation_txg: 1,
                guid: 0xabc,
                flags: 0,
                bp: Blkptr::HOLE,
                referenced_bytes: 1,
                compressed_bytes: 2,
                uncompressed_bytes: 3,
                unique_bytes: 4,
                deadlist: vec![Blkptr {
                    birth: 3,
                    ..Blkptr::HOLE
                }],
                userrefs,
            },
        );
        let bytes = s.encode();
        assert_eq!(DslState::decode(&bytes).unwrap(), s);
        for cut in 0..bytes.len() {
            assert_eq!(
                DslState::decode(&bytes[..cut]).unwrap_err().errno(),
                Errno::EIO
            );
        }
        let mut damaged = bytes.clone();
        damaged[16] = 0xff; // the directory count
        assert!(DslState::decode(&damaged).is_err());
    }

    /// A count is held to what the rest of the record can hold, before
    /// anything is allocated for it: 40 bytes left hold five 8-byte items,
    /// not six.
    #[test]
    fn a_count_past_the_record_is_refused_before_anything_is_read() {
        let record = |n: u64| {
            let mut buf = n.to_le_bytes().to_vec();
            buf.extend_from_slice(&[0u8; 40]);
            buf
        };
        let fits = record(5);
        assert_eq!(Dec { buf: &fits, pos: 0 }.count(8).unwrap(), 5);
        let past = record(6);
        let e = Dec { buf: &past, pos: 0 }.count(8).unwrap_err();
        assert!(e.to_string().contains("count exceeds the record"), "{e}");
    }
}
