//! What the model knows of a ZPL filesystem: its names, and for each file,
//! directory or symlink its mode, size, target and extended attributes;
//! link counts and directory sizes follow from the names. This is what a
//! walk of the filesystem must list ([`Tree::listing`]); the objects that
//! hold it are in the dataset's objects like any others.
//!
//! Object numbers are the engine's choice, taken when the step that makes
//! an object succeeds, as for any allocated object.

use std::collections::{BTreeMap, BTreeSet};

use engine::error::Errno;
use engine::zpl::MAXPATHLEN;
use engine::zpl::vnops::NAME_MAX;

use crate::step::Step;

/// What a name is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink(Vec<u8>),
}

/// A file, directory or symlink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: Kind,
    /// Permission bits (`mode & 07777`).
    pub mode: u64,
    /// A file's length (a symlink's is its target's).
    pub size: u64,
    /// The hidden attribute directory, once one is made.
    pub xattr_dir: Option<u64>,
    /// Attribute name → (the file holding it, its value).
    pub xattrs: BTreeMap<String, (u64, Vec<u8>)>,
}

impl Node {
    pub fn new(kind: Kind, mode: u64) -> Node {
        let size = match &kind {
            Kind::Symlink(t) => t.len() as u64,
            _ => 0,
        };
        Node {
            kind,
            mode,
            size,
            xattr_dir: None,
            xattrs: BTreeMap::new(),
        }
    }
}

/// One line of a listing: what `engine::zpl::walk` must find at a path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Listed {
    pub path: String,
    pub kind: &'static str,
    pub mode: u64,
    pub size: u64,
    pub nlink: u64,
    pub object: u64,
    pub target: Option<Vec<u8>>,
    pub xattrs: BTreeMap<String, Vec<u8>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tree {
    /// The master node's objects: itself, the delete queue, the root and
    /// the shares directory.
    pub master: u64,
    pub unlinked_set: u64,
    pub root: u64,
    pub shares: u64,
    /// Every name ("a/b/c", relative to the root) and the object it names.
    pub names: BTreeMap<String, u64>,
    pub nodes: BTreeMap<u64, Node>,
    /// Attribute directories on the delete queue, with their files.
    pub queued: BTreeMap<u64, Vec<u64>>,
}

/// The directory part of a path ("" for the root).
pub fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(p, _)| p)
}

impl Tree {
    pub fn new(master: u64, unlinked_set: u64, root: u64, shares: u64) -> Tree {
        Tree {
            master,
            unlinked_set,
            root,
            shares,
            names: BTreeMap::new(),
            nodes: BTreeMap::from([(root, Node::new(Kind::Dir, 0o755))]),
            queued: BTreeMap::new(),
        }
    }

    /// The object a path names; "" is the root.
    pub fn lookup(&self, path: &str) -> Option<u64> {
        if path.is_empty() {
            Some(self.root)
        } else {
            self.names.get(path).copied()
        }
    }

    pub fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.get(&self.lookup(path)?)
    }

    pub fn is_dir(&self, path: &str) -> bool {
        self.node(path).is_some_and(|n| n.kind == Kind::Dir)
    }

    /// Whether `object` is a regular file of this tree.
    pub fn is_file(&self, object: u64) -> bool {
        self.nodes
            .get(&object)
            .is_some_and(|n| n.kind == Kind::File)
    }

    /// Whether `object` holds part of the filesystem (a node, an attribute
    /// directory or file, or one of the master node's objects), which only
    /// ZPL steps may change.
    pub fn owns(&self, object: u64) -> bool {
        self.objects().contains(&object)
    }

    /// Every object the filesystem is made of.
    pub fn objects(&self) -> BTreeSet<u64> {
        let mut out = BTreeSet::from([self.master, self.unlinked_set, self.root, self.shares]);
        for (&o, n) in &self.nodes {
            out.insert(o);
            out.extend(n.xattr_dir);
            out.extend(n.xattrs.values().map(|(f, _)| *f));
        }
        for (&d, files) in &self.queued {
            out.insert(d);
            out.extend(files);
        }
        out
    }

    /// The objects that are ZAPs: the master node, the delete queue and
    /// every directory, attribute directories included.
    pub fn zap_objects(&self) -> BTreeSet<u64> {
        let mut out = BTreeSet::from([self.master, self.unlinked_set, self.shares]);
        for (&o, n) in &self.nodes {
            if n.kind == Kind::Dir {
                out.insert(o);
            }
            out.extend(n.xattr_dir);
        }
        out.extend(self.queued.keys());
        out
    }

    /// Every object with a znode that is not a directory: files, symlinks,
    /// attribute files.
    pub fn leaf_znodes(&self) -> BTreeSet<u64> {
        let mut out = BTreeSet::new();
        for (&o, n) in &self.nodes {
            if n.kind != Kind::Dir {
                out.insert(o);
            }
            out.extend(n.xattrs.values().map(|(f, _)| *f));
        }
        out
    }

    /// Entries of a directory (by its path).
    pub fn entries_of(&self, dir: &str) -> usize {
        self.names.keys().filter(|p| parent_of(p) == dir).count()
    }

    fn subdirs_of(&self, dir: &str) -> u64 {
        self.names
            .iter()
            .filter(|(p, o)| parent_of(p) == dir && self.nodes[o].kind == Kind::Dir)
            .count() as u64
    }

    /// Paths of every directory, the root ("") first.
    pub fn dirs(&self) -> Vec<String> {
        let mut out = vec![String::new()];
        out.extend(
            self.names
                .iter()
                .filter(|(_, o)| self.nodes[o].kind == Kind::Dir)
                .map(|(p, _)| p.clone()),
        );
        out
    }

    /// Paths of everything that is not a directory.
    pub fn non_dirs(&self) -> Vec<String> {
        self.names
            .iter()
            .filter(|(_, o)| self.nodes[o].kind != Kind::Dir)
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// A new name for `object`.
    pub fn add(&mut self, path: &str, object: u64, node: Option<Node>) {
        self.names.insert(path.to_string(), object);
        if let Some(node) = node {
            self.nodes.insert(object, node);
        }
    }

    /// A name goes; returns the object if that was its last name, after
    /// moving its attribute directory, if any, to the delete queue.
    pub fn remove(&mut self, path: &str) -> Option<u64> {
        let object = self.names.remove(path)?;
        if self.names.values().any(|&o| o == object) {
            return None;
        }
        let node = self.nodes.remove(&object)?;
        if let Some(dir) = node.xattr_dir {
            self.queued
                .insert(dir, node.xattrs.values().map(|(f, _)| *f).collect());
        }
        Some(object)
    }

    /// What a walk must list, sorted by path.
    pub fn listing(&self) -> Vec<Listed> {
        let mut out = Vec::new();
        let mut push = |path: &str, object: u64| {
            let node = &self.nodes[&object];
            let (kind, size, nlink, target) = match &node.kind {
                Kind::Dir => (
                    "dir",
                    self.entries_of(path) as u64 + 2,
                    2 + self.subdirs_of(path),
                    None,
                ),
                Kind::File | Kind::Symlink(_) => {
                    let links = self.names.values().filter(|&&o| o == object).count() as u64;
                    match &node.kind {
                        Kind::Symlink(t) => ("symlink", node.size, links, Some(t.clone())),
                        _ => ("file", node.size, links, None),
                    }
                }
            };
            out.push(Listed {
                path: if path.is_empty() {
                    ".".to_string()
                } else {
                    path.to_string()
                },
                kind,
                mode: node.mode,
                size,
                nlink,
                object,
                target,
                xattrs: node
                    .xattrs
                    .iter()
                    .map(|(k, (_, v))| (k.clone(), v.clone()))
                    .collect(),
            });
        };
        push("", self.root);
        for (path, &object) in &self.names {
            push(path, object);
        }
        out.sort();
        out
    }
}

impl Tree {
    /// `check_name`: a file name the ZPL takes.
    fn name_refusal(name: &str) -> Option<Errno> {
        if name.is_empty() || name == "." || name == ".." || name.contains('/') {
            Some(Errno::EINVAL)
        } else if name.len() > NAME_MAX {
            Some(Errno::ENAMETOOLONG)
        } else {
            None
        }
    }

    /// The directory a path names, walked a component at a time (empty
    /// components skipped): ENOENT at a missing one, ENOTDIR at one that
    /// is not a directory.
    fn resolve_dir(&self, path: &str) -> Result<String, Errno> {
        let mut at = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            let next = if at.is_empty() {
                part.to_string()
            } else {
                format!("{at}/{part}")
            };
            match self.node(&next) {
                None => return Err(Errno::ENOENT),
                Some(n) if n.kind != Kind::Dir => return Err(Errno::ENOTDIR),
                Some(_) => at = next,
            }
        }
        Ok(at)
    }

    /// The parent directory and last name of a path.
    fn resolve_parent<'p>(&self, path: &'p str) -> Result<(String, &'p str), Errno> {
        let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
        if let Some(e) = Tree::name_refusal(name) {
            return Err(e);
        }
        Ok((self.resolve_dir(parent)?, name))
    }

    fn child(dir: &str, name: &str) -> String {
        if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        }
    }

    /// A path that must not exist yet.
    fn resolve_new(&self, path: &str) -> Option<Errno> {
        match self.resolve_parent(path) {
            Err(e) => Some(e),
            Ok((dir, name)) => self.lookup(&Tree::child(&dir, name)).map(|_| Errno::EEXIST),
        }
    }

    /// A path that must exist: what it names.
    fn resolve_existing(&self, path: &str) -> Result<&Node, Errno> {
        let (dir, name) = self.resolve_parent(path)?;
        self.node(&Tree::child(&dir, name)).ok_or(Errno::ENOENT)
    }

    /// The errno `engine::zpl::vnops` refuses a ZPL step with on this
    /// namespace, in the order it checks, or `None`.
    pub fn refusal(&self, step: &Step) -> Option<Errno> {
        match step {
            Step::Mkdir { path, .. } => self.resolve_new(path),
            Step::MkFile { path, count, .. } => {
                // A batch stops at its first refusal, after the names before it.
                (*count == 1).then(|| self.resolve_new(path)).flatten()
            }
            Step::Symlink { path, target, .. } => {
                if target.len() as u64 > MAXPATHLEN {
                    return Some(Errno::ENAMETOOLONG);
                }
                self.resolve_new(path)
            }
            Step::Link { path, existing, .. } => match self.resolve_existing(existing) {
                Err(e) => Some(e),
                Ok(n) if n.kind == Kind::Dir => Some(Errno::EPERM),
                Ok(_) => self.resolve_new(path),
            },
            Step::Unlink { path, .. } => match self.resolve_existing(path) {
                Err(e) => Some(e),
                Ok(n) => (n.kind == Kind::Dir).then_some(Errno::EPERM),
            },
            Step::Rmdir { path, .. } => match self.resolve_existing(path) {
                Err(e) => Some(e),
                Ok(n) if n.kind != Kind::Dir => Some(Errno::ENOTDIR),
                // Solaris ZFS: a directory that is not empty is EEXIST.
                Ok(_) => (self.entries_of(path.trim_matches('/')) > 0).then_some(Errno::EEXIST),
            },
            Step::Xattr {
                path, name, len, ..
            } => {
                if let Some(e) = Tree::name_refusal(name) {
                    return Some(e);
                }
                match self.resolve_existing(path) {
                    Err(e) => Some(e),
                    Ok(n) => (*len == 0 && !n.xattrs.contains_key(name)).then_some(Errno::ENOENT),
                }
            }
            _ => None,
        }
    }
}
