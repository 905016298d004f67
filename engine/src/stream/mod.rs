//! The ZFS send-stream format of the seed's era, byte-exact: record headers in
//! either byte order ([`record`]), a bounded streaming reader that keeps the
//! stream checksum ([`reader`]), a writer that produces the same bytes as a
//! ZFS sender ([`writer`]), and a `zstreamdump`-identical listing ([`dump`]).

pub mod dump;
pub mod reader;
pub mod record;
pub mod writer;

pub use reader::{ChecksumPolicy, Entry, Next, RecordFeed, StreamError, StreamReader};
pub use record::*;
pub use writer::StreamWriter;
