//! The DMU: objsets of objects, each a dnode with a tree of blocks.

pub mod dnode;
pub mod objset;
