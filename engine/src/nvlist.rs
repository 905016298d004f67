//! libnvpair name-value lists as they travel inside ZFS send streams.
//!
//! A compound (`zfs send -R`) stream carries the list of datasets and
//! snapshots as an nvlist packed with `NV_ENCODE_XDR` in its first BEGIN
//! record; this module decodes and re-encodes that packing with the same
//! acceptance rules and byte layout as the illumos/zfs-fuse libnvpair, and
//! prints it exactly like `nvlist_print`, which is what `zstreamdump` shows.

use std::fmt;

/// The only nvlist implementation version libnvpair ever wrote.
pub const NV_VERSION: i32 = 0;
/// `nvl_nvflag` bit: names are unique within the list.
pub const NV_UNIQUE_NAME: u32 = 0x1;
/// `nvl_nvflag` bit: (name, type) pairs are unique within the list.
pub const NV_UNIQUE_NAME_TYPE: u32 = 0x2;
/// Deepest nesting `unpack_xdr` accepts; libnvpair has no limit, but every
/// real ZFS list is a handful of levels deep and the decoder recurses.
pub const MAX_DEPTH: usize = 64;

const NV_ENCODE_NATIVE: u8 = 0;
const NV_ENCODE_XDR: u8 = 1;
/// Header endianness byte of a little-endian packer (x86, where every
/// zfs-fuse stream comes from); meaningless for XDR but part of the bytes.
const HOST_LITTLE_ENDIAN: u8 = 1;

/// `sizeof (nvpair_t)`: the in-memory pair header that the packed "decoded
/// size" field accounts for.
const NVPAIR_HDR: u64 = 16;
/// `sizeof (nvlist_t)`, the per-list cost inside a decoded pair.
const NVLIST_T: u64 = 24;
/// libnvpair keeps names' `nvp_name_sz` (length + NUL) in an int16.
const MAX_NAME_SZ: usize = i16::MAX as usize;

/// One nvpair value; one variant per `data_type_t` of sys/nvpair.h.
#[derive(Debug, Clone, PartialEq)]
pub enum NvValue {
    /// DATA_TYPE_BOOLEAN: presence alone is the value.
    Boolean,
    BooleanValue(bool),
    Byte(u8),
    Int8(i8),
    Uint8(u8),
    Int16(i16),
    Uint16(u16),
    Int32(i32),
    Uint32(u32),
    Int64(i64),
    Uint64(u64),
    /// hrtime_t, a signed 64-bit nanosecond count.
    HrTime(i64),
    /// Userland-only type; the kernel never packs it.
    Double(f64),
    String(String),
    NvList(NvList),
    BooleanArray(Vec<bool>),
    ByteArray(Vec<u8>),
    Int8Array(Vec<i8>),
    Uint8Array(Vec<u8>),
    Int16Array(Vec<i16>),
    Uint16Array(Vec<u16>),
    Int32Array(Vec<i32>),
    Uint32Array(Vec<u32>),
    Int64Array(Vec<i64>),
    Uint64Array(Vec<u64>),
    StringArray(Vec<String>),
    NvListArray(Vec<NvList>),
}

// data_type_t numbering of sys/nvpair.h (this is what the packed form carries).
const DT_BOOLEAN: i32 = 1;
const DT_BYTE: i32 = 2;
const DT_INT16: i32 = 3;
const DT_UINT16: i32 = 4;
const DT_INT32: i32 = 5;
const DT_UINT32: i32 = 6;
const DT_INT64: i32 = 7;
const DT_UINT64: i32 = 8;
const DT_STRING: i32 = 9;
const DT_BYTE_ARRAY: i32 = 10;
const DT_INT16_ARRAY: i32 = 11;
const DT_UINT16_ARRAY: i32 = 12;
const DT_INT32_ARRAY: i32 = 13;
const DT_UINT32_ARRAY: i32 = 14;
const DT_INT64_ARRAY: i32 = 15;
const DT_UINT64_ARRAY: i32 = 16;
const DT_STRING_ARRAY: i32 = 17;
const DT_HRTIME: i32 = 18;
const DT_NVLIST: i32 = 19;
const DT_NVLIST_ARRAY: i32 = 20;
const DT_BOOLEAN_VALUE: i32 = 21;
const DT_INT8: i32 = 22;
const DT_UINT8: i32 = 23;
const DT_BOOLEAN_ARRAY: i32 = 24;
const DT_INT8_ARRAY: i32 = 25;
const DT_UINT8_ARRAY: i32 = 26;
const DT_DOUBLE: i32 = 27;

impl NvValue {
    /// The `data_type_t` number libnvpair stores for this value.
    pub fn data_type(&self) -> i32 {
        match self {
            NvValue::Boolean => DT_BOOLEAN,
            NvValue::BooleanValue(_) => DT_BOOLEAN_VALUE,
            NvValue::Byte(_) => DT_BYTE,
            NvValue::Int8(_) => DT_INT8,
            NvValue::Uint8(_) => DT_UINT8,
            NvValue::Int16(_) => DT_INT16,
            NvValue::Uint16(_) => DT_UINT16,
            NvValue::Int32(_) => DT_INT32,
            NvValue::Uint32(_) => DT_UINT32,
            NvValue::Int64(_) => DT_INT64,
            NvValue::Uint64(_) => DT_UINT64,
            NvValue::HrTime(_) => DT_HRTIME,
            NvValue::Double(_) => DT_DOUBLE,
            NvValue::String(_) => DT_STRING,
            NvValue::NvList(_) => DT_NVLIST,
            NvValue::BooleanArray(_) => DT_BOOLEAN_ARRAY,
            NvValue::ByteArray(_) => DT_BYTE_ARRAY,
            NvValue::Int8Array(_) => DT_INT8_ARRAY,
            NvValue::Uint8Array(_) => DT_UINT8_ARRAY,
            NvValue::Int16Array(_) => DT_INT16_ARRAY,
            NvValue::Uint16Array(_) => DT_UINT16_ARRAY,
            NvValue::Int32Array(_) => DT_INT32_ARRAY,
            NvValue::Uint32Array(_) => DT_UINT32_ARRAY,
            NvValue::Int64Array(_) => DT_INT64_ARRAY,
            NvValue::Uint64Array(_) => DT_UINT64_ARRAY,
            NvValue::StringArray(_) => DT_STRING_ARRAY,
            NvValue::NvListArray(_) => DT_NVLIST_ARRAY,
        }
    }

    /// `nvp_value_elem`: 0 for BOOLEAN, 1 for scalars, the length for arrays.
    fn nelem(&self) -> usize {
        match self {
            NvValue::Boolean => 0,
            NvValue::BooleanArray(v) => v.len(),
            NvValue::ByteArray(v) | NvValue::Uint8Array(v) => v.len(),
            NvValue::Int8Array(v) => v.len(),
            NvValue::Int16Array(v) => v.len(),
            NvValue::Uint16Array(v) => v.len(),
            NvValue::Int32Array(v) => v.len(),
            NvValue::Uint32Array(v) => v.len(),
            NvValue::Int64Array(v) => v.len(),
            NvValue::Uint64Array(v) => v.len(),
            NvValue::StringArray(v) => v.len(),
            NvValue::NvListArray(v) => v.len(),
            _ => 1,
        }
    }
}

/// An nvlist: header fields plus pairs in stream order (duplicates kept,
/// as libnvpair's decoder keeps them).
#[derive(Debug, Clone, PartialEq)]
pub struct NvList {
    /// `nvl_version`; decoding takes it from the stream unchecked and
    /// `nvlist_print` shows it.
    pub version: i32,
    /// `nvl_nvflag` (NV_UNIQUE_NAME...), carried verbatim.
    pub nvflag: u32,
    pub pairs: Vec<(String, NvValue)>,
}

impl Default for NvList {
    fn default() -> Self {
        Self::new()
    }
}

impl NvList {
    /// An empty list as ZFS allocates them (`nvlist_alloc(.., NV_UNIQUE_NAME, ..)`).
    pub fn new() -> Self {
        NvList {
            version: NV_VERSION,
            nvflag: NV_UNIQUE_NAME,
            pairs: Vec::new(),
        }
    }

    /// Appends without replacing an existing name, like decoding does.
    pub fn push(&mut self, name: impl Into<String>, value: NvValue) {
        self.pairs.push((name.into(), value));
    }

    /// First pair with this name (the only one in a NV_UNIQUE_NAME list).
    pub fn get(&self, name: &str) -> Option<&NvValue> {
        self.pairs.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    pub fn get_u64(&self, name: &str) -> Option<u64> {
        match self.get(name)? {
            NvValue::Uint64(v) => Some(*v),
            _ => None,
        }
    }

    pub fn get_str(&self, name: &str) -> Option<&str> {
        match self.get(name)? {
            NvValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn get_nvlist(&self, name: &str) -> Option<&NvList> {
        match self.get(name)? {
            NvValue::NvList(l) => Some(l),
            _ => None,
        }
    }
}

/// Why a packed nvlist was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NvError {
    /// Byte offset into the buffer given to `unpack_xdr` (header included).
    pub offset: usize,
    pub reason: String,
}

impl fmt::Display for NvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bad XDR nvlist at byte offset {}: {}",
            self.offset, self.reason
        )
    }
}

impl std::error::Error for NvError {}

fn align4(n: u64) -> u64 {
    (n + 3) & !3
}

fn align8(n: u64) -> u64 {
    (n + 7) & !7
}

/// What C sees of a Rust string: everything before the first NUL.
fn c_str(s: &str) -> &str {
    match s.find('\0') {
        Some(i) => &s[..i],
        None => s,
    }
}

/// `i_get_value_size` without the data: the in-memory size a (type, nelem)
/// claims, or None where libnvpair rejects the combination.
fn claimed_value_size(dtype: i32, nelem: u32) -> Option<u64> {
    let n = u64::from(nelem);
    let size = match dtype {
        DT_BOOLEAN => return (nelem == 0).then_some(0),
        DT_BOOLEAN_VALUE | DT_BYTE | DT_INT8 | DT_UINT8 | DT_INT16 | DT_UINT16 | DT_INT32
        | DT_UINT32 | DT_INT64 | DT_UINT64 | DT_STRING | DT_HRTIME | DT_NVLIST | DT_DOUBLE => {
            if nelem != 1 {
                return None;
            }
            match dtype {
                DT_BYTE | DT_INT8 | DT_UINT8 => 1,
                DT_INT16 | DT_UINT16 => 2,
                DT_BOOLEAN_VALUE | DT_INT32 | DT_UINT32 => 4,
                DT_STRING => 0,
                DT_NVLIST => NVLIST_T,
                _ => 8,
            }
        }
        DT_BYTE_ARRAY | DT_INT8_ARRAY | DT_UINT8_ARRAY => n,
        DT_INT16_ARRAY | DT_UINT16_ARRAY => n * 2,
        DT_BOOLEAN_ARRAY | DT_INT32_ARRAY | DT_UINT32_ARRAY => n * 4,
        DT_INT64_ARRAY | DT_UINT64_ARRAY | DT_STRING_ARRAY => n * 8,
        DT_NVLIST_ARRAY => n * (8 + NVLIST_T),
        _ => return None,
    };
    (size <= i32::MAX as u64).then_some(size)
}

/// `i_get_value_size` with the data: the in-memory size of a value, which
/// fixes the "decoded size" a packed pair must announce.
fn value_size(v: &NvValue) -> u64 {
    let n = v.nelem() as u64;
    match v {
        NvValue::Boolean => 0,
        NvValue::Byte(_) | NvValue::Int8(_) | NvValue::Uint8(_) => 1,
        NvValue::Int16(_) | NvValue::Uint16(_) => 2,
        NvValue::BooleanValue(_) | NvValue::Int32(_) | NvValue::Uint32(_) => 4,
        NvValue::Int64(_) | NvValue::Uint64(_) | NvValue::HrTime(_) | NvValue::Double(_) => 8,
        NvValue::String(s) => c_str(s).len() as u64 + 1,
        NvValue::NvList(_) => NVLIST_T,
        NvValue::StringArray(a) => n * 8 + a.iter().map(|s| c_str(s).len() as u64 + 1).sum::<u64>(),
        _ => array_elem_size(v) * n,
    }
}

/// In-memory bytes per element of an array type (0 for non-arrays).
fn array_elem_size(v: &NvValue) -> u64 {
    match v {
        NvValue::ByteArray(_) | NvValue::Int8Array(_) | NvValue::Uint8Array(_) => 1,
        NvValue::Int16Array(_) | NvValue::Uint16Array(_) => 2,
        NvValue::BooleanArray(_) | NvValue::Int32Array(_) | NvValue::Uint32Array(_) => 4,
        NvValue::Int64Array(_) | NvValue::Uint64Array(_) | NvValue::StringArray(_) => 8,
        NvValue::NvListArray(_) => 8 + NVLIST_T,
        _ => 0,
    }
}

/// The "decoded size" field of a packed pair (`NVP_SIZE_CALC`).
fn decoded_pair_size(name: &str, v: &NvValue) -> u64 {
    align8(NVPAIR_HDR + name.len() as u64 + 1) + align8(value_size(v))
}

// ---------------------------------------------------------------------------
// Decoding

/// Largest decoded pair libnvpair believes `avail` packed bytes can hold
/// (`NVS_XDR_MAX_LEN`); it bounds every allocation the decoder makes.
fn max_decoded_len(avail: usize) -> u64 {
    let data = (avail as u64).saturating_sub(20);
    24 + data * 2 + align4(data / 4)
}

struct Xdr<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Xdr<'a> {
    fn fail<T>(&self, at: usize, reason: impl Into<String>) -> Result<T, NvError> {
        Err(NvError {
            offset: at,
            reason: reason.into(),
        })
    }

    fn avail(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], NvError> {
        if n > self.avail() {
            return self.fail(
                self.pos,
                format!("truncated: {what} needs {n} bytes, {} left", self.avail()),
            );
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u32(&mut self, what: &str) -> Result<u32, NvError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i32(&mut self, what: &str) -> Result<i32, NvError> {
        Ok(self.u32(what)? as i32)
    }

    /// XDR hyper: high word first.
    fn u64(&mut self, what: &str) -> Result<u64, NvError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    /// Fixed-size opaque data; the pad bytes are skipped unread, as the
    /// C library does.
    fn opaque(&mut self, n: usize, what: &str) -> Result<&'a [u8], NvError> {
        let data = self.take(n, what)?;
        self.take(align4(n as u64) as usize - n, what)?;
        Ok(data)
    }

    /// `xdr_string` into a buffer with room for `maxsize` bytes plus NUL.
    /// Returns the raw bytes (which land in the pair's memory) and the C
    /// string they amount to, i.e. cut at the first NUL.
    fn string(&mut self, maxsize: u64, what: &str) -> Result<(&'a [u8], String), NvError> {
        let at = self.pos;
        let size = self.u32(what)?;
        if u64::from(size) > maxsize {
            return self.fail(
                at,
                format!("{what} length {size} exceeds the {maxsize} bytes the pair has room for"),
            );
        }
        let raw = self.opaque(size as usize, what)?;
        let c = match raw.iter().position(|&b| b == 0) {
            Some(i) => &raw[..i],
            None => raw,
        };
        match std::str::from_utf8(c) {
            Ok(s) => Ok((raw, s.to_owned())),
            Err(_) => self.fail(at + 4, format!("{what} is not valid UTF-8")),
        }
    }
}

/// What the zero-filled in-memory pair holds at `off` before the value is
/// decoded: the raw name bytes (which may run past the name's C length when
/// they contain a NUL), zero elsewhere. libnvpair reads some of these bytes
/// back (array elements the stream did not supply, embedded list versions).
fn residue(raw_name: &[u8], off: u64) -> u8 {
    off.checked_sub(NVPAIR_HDR)
        .and_then(|i| raw_name.get(usize::try_from(i).ok()?))
        .copied()
        .unwrap_or(0)
}

/// Little-endian (x86 memory) integer made of residue bytes at `off`.
fn residue_le(raw_name: &[u8], off: u64, width: u64) -> u64 {
    (0..width).fold(0u64, |acc, k| {
        acc | u64::from(residue(raw_name, off + k)) << (8 * k)
    })
}

/// Where a pair's value lives in libnvpair's zero-filled in-memory pair:
/// its offset, the room the announced size leaves it, and the raw name
/// bytes that may lie under it.
struct Slot<'a> {
    valoff: u64,
    room: u64,
    raw_name: &'a [u8],
}

/// Decode an `xdr_array` of `width`-byte elements into exactly `nelem`
/// elements: libnvpair trusts the stream's own count only up to the room in
/// the pair, keeps the first `nelem` and leaves the rest as memory was.
fn decode_array<T>(
    x: &mut Xdr<'_>,
    nelem: u64,
    slot: &Slot<'_>,
    width: u64,
    conv: impl Fn(u64) -> T,
) -> Result<Vec<T>, NvError> {
    let at = x.pos;
    let count = u64::from(x.u32("array count")?);
    let max = slot.room / width;
    if count > max {
        return x.fail(
            at,
            format!("array count {count} exceeds the {max} elements the pair has room for"),
        );
    }
    let mut out = Vec::new();
    for i in 0..count {
        // Elements narrower than 64 bits travel as one XDR int each.
        let raw = if width == 8 {
            x.u64("array element")?
        } else {
            u64::from(x.u32("array element")?)
        };
        if i < nelem {
            out.push(conv(raw));
        }
    }
    for i in count..nelem {
        let off = slot.valoff + i * width;
        out.push(conv(residue_le(slot.raw_name, off, width)));
    }
    Ok(out)
}

fn to_bool(v: i32, x: &Xdr<'_>, at: usize) -> Result<bool, NvError> {
    match v {
        0 => Ok(false),
        1 => Ok(true),
        _ => x.fail(at, format!("boolean value {v} is neither 0 nor 1")),
    }
}

fn decode_list(x: &mut Xdr<'_>, depth: usize) -> Result<NvList, NvError> {
    if depth > MAX_DEPTH {
        return x.fail(x.pos, format!("nvlists nested deeper than {MAX_DEPTH}"));
    }
    let version = x.i32("nvlist version")?;
    let nvflag = x.u32("nvlist flags")?;
    let mut pairs = Vec::new();
    loop {
        let start = x.pos;
        let _encoded_len = x.i32("pair encoded size")?;
        let decoded_len = x.i32("pair decoded size")?;
        if decoded_len == 0 {
            break;
        }
        // A negative size is a huge size_t to libnvpair.
        let limit = max_decoded_len(x.avail());
        if decoded_len < 0 || decoded_len as u64 > limit {
            return x.fail(
                start + 4,
                format!(
                    "pair decoded size {decoded_len} exceeds the limit {limit} for the bytes left"
                ),
            );
        }
        let dec = decoded_len as u64;
        if dec < align8(NVPAIR_HDR + 1) {
            return x.fail(start + 4, format!("pair decoded size {dec} is too small"));
        }
        pairs.push(decode_pair(x, dec, depth, start)?);
    }
    Ok(NvList {
        version,
        nvflag,
        pairs,
    })
}

fn decode_pair(
    x: &mut Xdr<'_>,
    dec: u64,
    depth: usize,
    start: usize,
) -> Result<(String, NvValue), NvError> {
    let (raw_name, name) = x.string(dec - NVPAIR_HDR - 1, "pair name")?;
    if name.len() + 1 > MAX_NAME_SZ {
        return x.fail(
            start + 8,
            format!("pair name of {} bytes is too long", name.len()),
        );
    }
    let type_at = x.pos;
    let dtype = x.i32("pair type")?;
    let nelem_raw = x.i32("pair element count")?;
    // nvp_value_elem is signed, but libnvpair sizes values with it unsigned.
    let nelem = nelem_raw as u32;
    let Some(claimed) = claimed_value_size(dtype, nelem) else {
        return x.fail(
            type_at,
            format!("invalid type {dtype} with {nelem_raw} elements"),
        );
    };
    let valoff = align8(NVPAIR_HDR + name.len() as u64 + 1);
    let n = u64::from(nelem);

    let value = if nelem == 0 {
        match dtype {
            DT_BOOLEAN => NvValue::Boolean,
            DT_BOOLEAN_ARRAY => NvValue::BooleanArray(Vec::new()),
            DT_BYTE_ARRAY => NvValue::ByteArray(Vec::new()),
            DT_INT8_ARRAY => NvValue::Int8Array(Vec::new()),
            DT_UINT8_ARRAY => NvValue::Uint8Array(Vec::new()),
            DT_INT16_ARRAY => NvValue::Int16Array(Vec::new()),
            DT_UINT16_ARRAY => NvValue::Uint16Array(Vec::new()),
            DT_INT32_ARRAY => NvValue::Int32Array(Vec::new()),
            DT_UINT32_ARRAY => NvValue::Uint32Array(Vec::new()),
            DT_INT64_ARRAY => NvValue::Int64Array(Vec::new()),
            DT_UINT64_ARRAY => NvValue::Uint64Array(Vec::new()),
            DT_STRING_ARRAY => NvValue::StringArray(Vec::new()),
            DT_NVLIST_ARRAY => NvValue::NvListArray(Vec::new()),
            _ => return x.fail(type_at, format!("type {dtype} cannot have 0 elements")),
        }
    } else {
        if dec <= valoff {
            return x.fail(start + 4, "pair decoded size leaves no room for the value");
        }
        let room = dec - valoff;
        if room < claimed {
            return x.fail(
                start + 4,
                format!("pair decoded size leaves {room} bytes for a {claimed}-byte value"),
            );
        }
        let slot = Slot {
            valoff,
            room,
            raw_name,
        };
        decode_value(x, dtype, n, &slot, depth)?
    };

    // i_validate_nvpair: the announced size must be exactly what the
    // contents occupy in memory.
    if dec < valoff || dec - valoff != align8(value_size(&value)) {
        return x.fail(
            start + 4,
            format!(
                "pair decoded size {dec} should be {} for its contents",
                decoded_pair_size(&name, &value)
            ),
        );
    }
    Ok((name, value))
}

fn decode_value(
    x: &mut Xdr<'_>,
    dtype: i32,
    n: u64,
    slot: &Slot<'_>,
    depth: usize,
) -> Result<NvValue, NvError> {
    let at = x.pos;
    let v = match dtype {
        // xdr_char / xdr_short move a whole XDR int and keep the low bits.
        DT_BYTE => NvValue::Byte(x.u32("byte value")? as u8),
        DT_INT8 => NvValue::Int8(x.u32("int8 value")? as i8),
        DT_UINT8 => NvValue::Uint8(x.u32("uint8 value")? as u8),
        DT_INT16 => NvValue::Int16(x.u32("int16 value")? as i16),
        DT_UINT16 => NvValue::Uint16(x.u32("uint16 value")? as u16),
        DT_INT32 => NvValue::Int32(x.i32("int32 value")?),
        DT_UINT32 => NvValue::Uint32(x.u32("uint32 value")?),
        DT_BOOLEAN_VALUE => {
            let v = x.i32("boolean value")?;
            NvValue::BooleanValue(to_bool(v, x, at)?)
        }
        DT_INT64 => NvValue::Int64(x.u64("int64 value")? as i64),
        DT_UINT64 => NvValue::Uint64(x.u64("uint64 value")?),
        DT_HRTIME => NvValue::HrTime(x.u64("hrtime value")? as i64),
        DT_DOUBLE => NvValue::Double(f64::from_bits(x.u64("double value")?)),
        DT_STRING => NvValue::String(x.string(slot.room - 1, "string value")?.1),
        DT_BYTE_ARRAY => NvValue::ByteArray(x.opaque(n as usize, "byte array")?.to_vec()),
        DT_INT8_ARRAY => NvValue::Int8Array(decode_array(x, n, slot, 1, |v| v as i8)?),
        DT_UINT8_ARRAY => NvValue::Uint8Array(decode_array(x, n, slot, 1, |v| v as u8)?),
        DT_INT16_ARRAY => NvValue::Int16Array(decode_array(x, n, slot, 2, |v| v as i16)?),
        DT_UINT16_ARRAY => NvValue::Uint16Array(decode_array(x, n, slot, 2, |v| v as u16)?),
        DT_INT32_ARRAY => NvValue::Int32Array(decode_array(x, n, slot, 4, |v| v as i32)?),
        DT_UINT32_ARRAY => NvValue::Uint32Array(decode_array(x, n, slot, 4, |v| v as u32)?),
        DT_BOOLEAN_ARRAY => {
            let raw = decode_array(x, n, slot, 4, |v| v as i32)?;
            let mut out = Vec::with_capacity(raw.len());
            for v in raw {
                out.push(to_bool(v, x, at)?);
            }
            NvValue::BooleanArray(out)
        }
        DT_INT64_ARRAY => NvValue::Int64Array(decode_array(x, n, slot, 8, |v| v as i64)?),
        DT_UINT64_ARRAY => NvValue::Uint64Array(decode_array(x, n, slot, 8, |v| v)?),
        DT_STRING_ARRAY => {
            // Strings follow a table of nelem pointers, each one right after
            // the previous string's NUL.
            let mut out = Vec::new();
            let mut left = slot.room;
            let mut skip = n * 8;
            for _ in 0..n {
                if left <= skip {
                    return x.fail(x.pos, "string array overruns the pair's decoded size");
                }
                left -= skip;
                let s = x.string(left - 1, "string array element")?.1;
                skip = s.len() as u64 + 1;
                out.push(s);
            }
            NvValue::StringArray(out)
        }
        DT_NVLIST => {
            check_embedded_version(x, slot.raw_name, slot.valoff)?;
            NvValue::NvList(decode_list(x, depth + 1)?)
        }
        DT_NVLIST_ARRAY => {
            let mut out = Vec::new();
            for i in 0..n {
                check_embedded_version(x, slot.raw_name, slot.valoff + n * 8 + i * NVLIST_T)?;
                out.push(decode_list(x, depth + 1)?);
            }
            NvValue::NvListArray(out)
        }
        _ => return x.fail(at, format!("invalid type {dtype}")),
    };
    Ok(v)
}

/// libnvpair refuses an embedded list whose in-memory version is not
/// NV_VERSION *before* reading it from the stream, so only leftover name
/// bytes can trip this.
fn check_embedded_version(x: &Xdr<'_>, raw_name: &[u8], off: u64) -> Result<(), NvError> {
    if residue_le(raw_name, off, 4) != 0 {
        return x.fail(x.pos, "embedded nvlist overlaps its pair's name bytes");
    }
    Ok(())
}

/// Decode an `NV_ENCODE_XDR` packed nvlist, accepting and rejecting exactly
/// what libnvpair's `nvlist_unpack` does (bytes after the list are ignored),
/// except that non-UTF-8 names or strings and nesting beyond `MAX_DEPTH`
/// are errors here.
pub fn unpack_xdr(buf: &[u8]) -> Result<NvList, NvError> {
    let mut x = Xdr { buf, pos: 0 };
    if buf.len() < 4 {
        return x.fail(
            0,
            format!("{} bytes is too short for the nvlist header", buf.len()),
        );
    }
    match buf[0] {
        NV_ENCODE_XDR => {}
        NV_ENCODE_NATIVE => return x.fail(0, "native nvlist encoding is not supported"),
        e => return x.fail(0, format!("unknown nvlist encoding {e}")),
    }
    x.pos = 4;
    decode_list(&mut x, 0)
}

// ---------------------------------------------------------------------------
// Encoding

/// Packed size of a list body as libnvpair's GETSIZE pass counts it.
fn list_encoded_size(l: &NvList) -> u64 {
    16 + l
        .pairs
        .iter()
        .map(|(n, v)| pair_encoded_size(c_str(n), v))
        .sum::<u64>()
}

/// The "encoded size" field. It counts an array's XDR length word even for
/// empty arrays, whose value libnvpair then does not write at all.
fn pair_encoded_size(name: &str, v: &NvValue) -> u64 {
    let n = v.nelem() as u64;
    let value = match v {
        NvValue::Boolean => 0,
        NvValue::BooleanValue(_)
        | NvValue::Byte(_)
        | NvValue::Int8(_)
        | NvValue::Uint8(_)
        | NvValue::Int16(_)
        | NvValue::Uint16(_)
        | NvValue::Int32(_)
        | NvValue::Uint32(_) => 4,
        NvValue::Int64(_) | NvValue::Uint64(_) | NvValue::HrTime(_) | NvValue::Double(_) => 8,
        NvValue::String(s) => 4 + align4(c_str(s).len() as u64),
        NvValue::ByteArray(_) => align4(n),
        NvValue::BooleanArray(_)
        | NvValue::Int8Array(_)
        | NvValue::Uint8Array(_)
        | NvValue::Int16Array(_)
        | NvValue::Uint16Array(_)
        | NvValue::Int32Array(_)
        | NvValue::Uint32Array(_) => 4 + 4 * n,
        NvValue::Int64Array(_) | NvValue::Uint64Array(_) => 4 + 8 * n,
        NvValue::StringArray(a) => a.iter().map(|s| 4 + align4(c_str(s).len() as u64)).sum(),
        NvValue::NvList(l) => list_encoded_size(l),
        NvValue::NvListArray(a) => a.iter().map(list_encoded_size).sum(),
    };
    4 + 4 + 4 + align4(name.len() as u64) + 4 + 4 + value
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_opaque(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(b);
    out.resize(out.len() + (align4(b.len() as u64) as usize - b.len()), 0);
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    let s = c_str(s);
    put_u32(out, s.len() as u32);
    put_opaque(out, s.as_bytes());
}

fn encode_list(l: &NvList, out: &mut Vec<u8>) {
    put_u32(out, l.version as u32);
    put_u32(out, l.nvflag);
    for (name, v) in &l.pairs {
        encode_pair(c_str(name), v, out);
    }
    put_u32(out, 0);
    put_u32(out, 0);
}

fn encode_pair(name: &str, v: &NvValue, out: &mut Vec<u8>) {
    put_u32(out, pair_encoded_size(name, v) as u32);
    put_u32(out, decoded_pair_size(name, v) as u32);
    put_string(out, name);
    put_u32(out, v.data_type() as u32);
    put_u32(out, v.nelem() as u32);
    if v.nelem() == 0 {
        return;
    }
    // xdr_char takes a (signed) char and xdr_short a short: both sign-extend
    // to the XDR int, even for the unsigned byte/uint8 types.
    let char32 = |b: u8| b as i8 as i32 as u32;
    match v {
        NvValue::Boolean => {}
        NvValue::BooleanValue(b) => put_u32(out, u32::from(*b)),
        NvValue::Byte(b) | NvValue::Uint8(b) => put_u32(out, char32(*b)),
        NvValue::Int8(b) => put_u32(out, *b as i32 as u32),
        NvValue::Int16(s) => put_u32(out, *s as i32 as u32),
        NvValue::Uint16(s) => put_u32(out, u32::from(*s)),
        NvValue::Int32(i) => put_u32(out, *i as u32),
        NvValue::Uint32(i) => put_u32(out, *i),
        NvValue::Int64(i) | NvValue::HrTime(i) => put_u64(out, *i as u64),
        NvValue::Uint64(i) => put_u64(out, *i),
        NvValue::Double(d) => put_u64(out, d.to_bits()),
        NvValue::String(s) => put_string(out, s),
        NvValue::ByteArray(a) => put_opaque(out, a),
        NvValue::BooleanArray(a) => put_array(out, a, |o, b| put_u32(o, u32::from(*b))),
        NvValue::Int8Array(a) => put_array(out, a, |o, b| put_u32(o, *b as i32 as u32)),
        NvValue::Uint8Array(a) => put_array(out, a, |o, b| put_u32(o, char32(*b))),
        NvValue::Int16Array(a) => put_array(out, a, |o, s| put_u32(o, *s as i32 as u32)),
        NvValue::Uint16Array(a) => put_array(out, a, |o, s| put_u32(o, u32::from(*s))),
        NvValue::Int32Array(a) => put_array(out, a, |o, i| put_u32(o, *i as u32)),
        NvValue::Uint32Array(a) => put_array(out, a, |o, i| put_u32(o, *i)),
        NvValue::Int64Array(a) => put_array(out, a, |o, i| put_u64(o, *i as u64)),
        NvValue::Uint64Array(a) => put_array(out, a, |o, i| put_u64(o, *i)),
        NvValue::StringArray(a) => a.iter().for_each(|s| put_string(out, s)),
        NvValue::NvList(l) => encode_list(l, out),
        NvValue::NvListArray(a) => a.iter().for_each(|l| encode_list(l, out)),
    }
}

fn put_array<T>(out: &mut Vec<u8>, a: &[T], put: impl Fn(&mut Vec<u8>, &T)) {
    put_u32(out, a.len() as u32);
    for e in a {
        put(out, e);
    }
}

/// Pack like `nvlist_pack(.., NV_ENCODE_XDR, ..)` on a little-endian host.
/// Names and strings stop at an embedded NUL, as they would in C.
pub fn pack_xdr(nvl: &NvList) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + list_encoded_size(nvl) as usize);
    out.extend_from_slice(&[NV_ENCODE_XDR, HOST_LITTLE_ENDIAN, 0, 0]);
    encode_list(nvl, &mut out);
    out
}

// ---------------------------------------------------------------------------
// Printing

/// C's `%f`, including glibc's spelling of infinities and NaNs.
fn c_percent_f(d: f64) -> String {
    if d.is_nan() {
        if d.is_sign_negative() { "-nan" } else { "nan" }.to_owned()
    } else if d.is_infinite() {
        if d < 0.0 { "-inf" } else { "inf" }.to_owned()
    } else {
        format!("{d:.6}")
    }
}

fn indent(out: &mut impl fmt::Write, depth: usize) -> fmt::Result {
    (0..depth).try_for_each(|_| out.write_char('\t'))
}

fn print_items<T>(out: &mut impl fmt::Write, items: &[T], f: impl Fn(&T) -> String) -> fmt::Result {
    items.iter().try_for_each(|e| write!(out, " {}", f(e)))
}

fn print_at(nvl: &NvList, out: &mut impl fmt::Write, depth: usize) -> fmt::Result {
    indent(out, depth)?;
    writeln!(out, "nvlist version: {}", nvl.version)?;
    for (name, v) in &nvl.pairs {
        let name = c_str(name);
        indent(out, depth)?;
        write!(out, "\t{name} =")?;
        match v {
            NvValue::Boolean => write!(out, " 1")?,
            NvValue::BooleanValue(b) => write!(out, " {}", u8::from(*b))?,
            NvValue::Byte(b) => write!(out, " 0x{b:02x}")?,
            NvValue::Int8(i) => write!(out, " {i}")?,
            NvValue::Uint8(u) => write!(out, " 0x{u:x}")?,
            NvValue::Int16(i) => write!(out, " {i}")?,
            NvValue::Uint16(u) => write!(out, " 0x{u:x}")?,
            NvValue::Int32(i) => write!(out, " {i}")?,
            NvValue::Uint32(u) => write!(out, " 0x{u:x}")?,
            NvValue::Int64(i) => write!(out, " {i}")?,
            NvValue::Uint64(u) => write!(out, " 0x{u:x}")?,
            NvValue::HrTime(t) => write!(out, " 0x{:x}", *t as u64)?,
            // Yes, "0x" in front of a decimal: that is what libnvpair prints.
            NvValue::Double(d) => write!(out, " 0x{}", c_percent_f(*d))?,
            NvValue::String(s) => write!(out, " {}", c_str(s))?,
            NvValue::BooleanArray(a) => print_items(out, a, |b| u8::from(*b).to_string())?,
            NvValue::ByteArray(a) => print_items(out, a, |b| format!("0x{b:02x}"))?,
            NvValue::Int8Array(a) => print_items(out, a, |i| i.to_string())?,
            NvValue::Uint8Array(a) => print_items(out, a, |u| format!("0x{u:x}"))?,
            NvValue::Int16Array(a) => print_items(out, a, |i| i.to_string())?,
            NvValue::Uint16Array(a) => print_items(out, a, |u| format!("0x{u:x}"))?,
            NvValue::Int32Array(a) => print_items(out, a, |i| i.to_string())?,
            NvValue::Uint32Array(a) => print_items(out, a, |u| format!("0x{u:x}"))?,
            NvValue::Int64Array(a) => print_items(out, a, |i| i.to_string())?,
            NvValue::Uint64Array(a) => print_items(out, a, |u| format!("0x{u:x}"))?,
            NvValue::StringArray(a) => print_items(out, a, |s| c_str(s).to_owned())?,
            NvValue::NvList(l) => {
                writeln!(out, " (embedded nvlist)")?;
                print_at(l, out, depth + 1)?;
                indent(out, depth + 1)?;
                writeln!(out, "(end {name})")?;
            }
            NvValue::NvListArray(a) => {
                writeln!(out, " (array of embedded nvlists)")?;
                for (i, l) in a.iter().enumerate() {
                    indent(out, depth + 1)?;
                    writeln!(out, "(start {name}[{i}])")?;
                    print_at(l, out, depth + 1)?;
                    indent(out, depth + 1)?;
                    writeln!(out, "(end {name}[{i}])")?;
                }
            }
        }
        out.write_char('\n')?;
    }
    Ok(())
}

/// Write `nvl` exactly as libnvpair's `nvlist_print` does (and so as
/// `zstreamdump` shows a compound stream's nvlist). Writes to a
/// `fmt::Write` because the output is text: build a `String`, or adapt an
/// `io::Write` with `write!`.
pub fn print(nvl: &NvList, out: &mut impl fmt::Write) -> fmt::Result {
    print_at(nvl, out, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/zfs-fuse");

    /// The BEGIN payload of the real `zfs send -R` fixture.
    fn fixture_payload() -> Vec<u8> {
        let stream = std::fs::read(format!("{FIXTURES}/replication_R.zsend")).unwrap();
        assert_eq!(u32::from_le_bytes(stream[0..4].try_into().unwrap()), 0);
        let len = u32::from_le_bytes(stream[4..8].try_into().unwrap()) as usize;
        stream[312..312 + len].to_vec()
    }

    /// Lines 12 up to the first "END checksum" of the real zstreamdump output.
    fn fixture_zstreamdump_nvlist() -> String {
        let text =
            std::fs::read_to_string(format!("{FIXTURES}/replication_R.zstreamdump.txt")).unwrap();
        let mut out = String::new();
        for line in text.split('\n').skip(11) {
            if line.starts_with("END checksum") {
                break;
            }
            out.push_str(line);
            out.push('\n');
        }
        out
    }

    fn printed(l: &NvList) -> String {
        let mut s = String::new();
        print(l, &mut s).unwrap();
        s
    }

    #[test]
    fn fixture_prints_exactly_like_zstreamdump() {
        let expected = fixture_zstreamdump_nvlist();
        assert!(expected.starts_with("nvlist version: 0\n\ttosnap = r2\n"));
        let l = unpack_xdr(&fixture_payload()).unwrap();
        assert_eq!(printed(&l), expected);
    }

    #[test]
    fn fixture_repacks_byte_for_byte() {
        let payload = fixture_payload();
        assert_eq!(pack_xdr(&unpack_xdr(&payload).unwrap()), payload);
    }

    #[test]
    fn fixture_contents_are_reachable() {
        let l = unpack_xdr(&fixture_payload()).unwrap();
        assert_eq!((l.version, l.nvflag), (0, NV_UNIQUE_NAME));
        assert_eq!(l.get_str("tosnap"), Some("r2"));
        let fs = l.get_nvlist("fss").unwrap();
        let root = fs.get_nvlist("0xe9d83a9b832e79ba").unwrap();
        assert_eq!(root.get_str("name"), Some("fxp/rep"));
        assert_eq!(root.get_u64("parentfromsnap"), Some(0));
        let snaps = root.get_nvlist("snaps").unwrap();
        assert_eq!(snaps.get_u64("r1"), Some(0x85bf5a07faa3a9f3));
        assert_eq!(snaps.get_u64("r2"), Some(0x6c72ea86fc8c0542));
        let kid = fs.get_nvlist("0x63229d084e353e77").unwrap();
        assert_eq!(kid.get_str("name"), Some("fxp/rep/kid"));
        let props = kid.get_nvlist("props").unwrap();
        assert_eq!(props.get("compression"), Some(&NvValue::Uint64(1)));
        assert_eq!(l.get("nope"), None);
        assert_eq!(l.get_u64("tosnap"), None);
    }

    /// One pair of every type, with the edge values that matter for printing.
    fn every_type() -> NvList {
        use NvValue::*;
        let mut inner = super::NvList::new();
        inner.push("deep", Uint64(1));
        inner.push("empty", NvList(super::NvList::new()));
        let mut odd = super::NvList::new();
        odd.version = 7;
        odd.nvflag = 0;
        odd.push("k", String("v".into()));
        let mut e1 = super::NvList::new();
        e1.push("a", String("first".into()));
        e1.push("sub", NvList(inner.clone()));
        let mut l = super::NvList::new();
        l.push("bool", Boolean);
        l.push("bv_t", BooleanValue(true));
        l.push("bv_f", BooleanValue(false));
        l.push("byte", Byte(0xff));
        l.push("byte7", Byte(7));
        l.push("i8", Int8(-128));
        l.push("u8", Uint8(0xff));
        l.push("i16", Int16(-32768));
        l.push("u16", Uint16(65535));
        l.push("i32", Int32(i32::MIN));
        l.push("i32p", Int32(42));
        l.push("u32", Uint32(0xdeadbeef));
        l.push("i64", Int64(i64::MIN));
        l.push("i64p", Int64(1234567890123));
        l.push("u64", Uint64(u64::MAX));
        l.push("u64z", Uint64(0));
        l.push("hr", HrTime(-1));
        l.push("hr2", HrTime(1234567890123));
        l.push("d", Double(1.5));
        l.push("dtie", Double(-0.0078125));
        l.push("dbig", Double(1e20));
        l.push("dnan", Double(f64::NAN));
        l.push("dninf", Double(f64::NEG_INFINITY));
        l.push("s", String("hello world".into()));
        l.push("sempty", String("".into()));
        l.push("ba", BooleanArray(vec![true, false, true]));
        l.push("bae", BooleanArray(vec![]));
        l.push("bya", ByteArray(vec![0, 1, 0x7f, 0x80, 0xff]));
        l.push("byae", ByteArray(vec![]));
        l.push("i8a", Int8Array(vec![-1, 0, 127, -128]));
        l.push("i8ae", Int8Array(vec![]));
        l.push("u8a", Uint8Array(vec![0, 0x80, 0xff]));
        l.push("u8ae", Uint8Array(vec![]));
        l.push("i16a", Int16Array(vec![-1, 300, -32768]));
        l.push("i16ae", Int16Array(vec![]));
        l.push("u16a", Uint16Array(vec![0, 0xffff, 0x1234]));
        l.push("u16ae", Uint16Array(vec![]));
        l.push("i32a", Int32Array(vec![-5, 0, i32::MAX]));
        l.push("i32ae", Int32Array(vec![]));
        l.push("u32a", Uint32Array(vec![1, 0xffffffff]));
        l.push("u32ae", Uint32Array(vec![]));
        l.push("i64a", Int64Array(vec![-1, i64::MAX]));
        l.push("i64ae", Int64Array(vec![]));
        l.push("u64a", Uint64Array(vec![0, 0x85bf5a07faa3a9f3, u64::MAX]));
        l.push("u64ae", Uint64Array(vec![]));
        l.push("sa", StringArray(vec!["a".into(), "".into(), "b c".into()]));
        l.push("sae", StringArray(vec![]));
        l.push("nested", NvList(inner));
        l.push("odd", NvList(odd));
        l.push("nla", NvListArray(vec![e1, super::NvList::new()]));
        l.push("nlae", NvListArray(vec![]));
        l.push("", Int32(1));
        l.push("dup", Uint64(1));
        l.push("dup", String("again".into()));
        l
    }

    /// What /usr/sbin/zstreamdump (zfs-fuse 0.7.0) printed for
    /// `pack_xdr(&every_type())` wrapped in a compound-stream BEGIN record.
    const EVERY_TYPE_ZSTREAMDUMP: &[&str] = &[
        "nvlist version: 0",
        "\tbool = 1",
        "\tbv_t = 1",
        "\tbv_f = 0",
        "\tbyte = 0xff",
        "\tbyte7 = 0x07",
        "\ti8 = -128",
        "\tu8 = 0xff",
        "\ti16 = -32768",
        "\tu16 = 0xffff",
        "\ti32 = -2147483648",
        "\ti32p = 42",
        "\tu32 = 0xdeadbeef",
        "\ti64 = -9223372036854775808",
        "\ti64p = 1234567890123",
        "\tu64 = 0xffffffffffffffff",
        "\tu64z = 0x0",
        "\thr = 0xffffffffffffffff",
        "\thr2 = 0x11f71fb04cb",
        "\td = 0x1.500000",
        "\tdtie = 0x-0.007812",
        "\tdbig = 0x100000000000000000000.000000",
        "\tdnan = 0xnan",
        "\tdninf = 0x-inf",
        "\ts = hello world",
        "\tsempty = ",
        "\tba = 1 0 1",
        "\tbae =",
        "\tbya = 0x00 0x01 0x7f 0x80 0xff",
        "\tbyae =",
        "\ti8a = -1 0 127 -128",
        "\ti8ae =",
        "\tu8a = 0x0 0x80 0xff",
        "\tu8ae =",
        "\ti16a = -1 300 -32768",
        "\ti16ae =",
        "\tu16a = 0x0 0xffff 0x1234",
        "\tu16ae =",
        "\ti32a = -5 0 2147483647",
        "\ti32ae =",
        "\tu32a = 0x1 0xffffffff",
        "\tu32ae =",
        "\ti64a = -1 9223372036854775807",
        "\ti64ae =",
        "\tu64a = 0x0 0x85bf5a07faa3a9f3 0xffffffffffffffff",
        "\tu64ae =",
        "\tsa = a  b c",
        "\tsae =",
        "\tnested = (embedded nvlist)",
        "\tnvlist version: 0",
        "\t\tdeep = 0x1",
        "\t\tempty = (embedded nvlist)",
        "\t\tnvlist version: 0",
        "\t\t(end empty)",
        "",
        "\t(end nested)",
        "",
        "\todd = (embedded nvlist)",
        "\tnvlist version: 7",
        "\t\tk = v",
        "\t(end odd)",
        "",
        "\tnla = (array of embedded nvlists)",
        "\t(start nla[0])",
        "\tnvlist version: 0",
        "\t\ta = first",
        "\t\tsub = (embedded nvlist)",
        "\t\tnvlist version: 0",
        "\t\t\tdeep = 0x1",
        "\t\t\tempty = (embedded nvlist)",
        "\t\t\tnvlist version: 0",
        "\t\t\t(end empty)",
        "",
        "\t\t(end sub)",
        "",
        "\t(end nla[0])",
        "\t(start nla[1])",
        "\tnvlist version: 0",
        "\t(end nla[1])",
        "",
        "\tnlae = (array of embedded nvlists)",
        "",
        "\t = 1",
        "\tdup = 0x1",
        "\tdup = again",
    ];

    fn lines(l: &[&str]) -> String {
        l.iter().map(|s| format!("{s}\n")).collect()
    }

    #[test]
    fn every_type_prints_like_zstreamdump() {
        let l = every_type();
        assert_eq!(printed(&l), lines(EVERY_TYPE_ZSTREAMDUMP));
        // ... and so does what comes back from the packed form.
        assert_eq!(
            printed(&unpack_xdr(&pack_xdr(&l)).unwrap()),
            lines(EVERY_TYPE_ZSTREAMDUMP)
        );
    }

    #[test]
    fn every_type_round_trips() {
        let l = every_type();
        let packed = pack_xdr(&l);
        let back = unpack_xdr(&packed).unwrap();
        assert_eq!(pack_xdr(&back), packed);
        // NaN aside, the model survives unchanged.
        let no_nan = |l: &NvList| {
            let mut l = l.clone();
            l.pairs.retain(|(n, _)| n != "dnan");
            l
        };
        assert_eq!(no_nan(&back), no_nan(&l));
        match back.get("dnan") {
            Some(NvValue::Double(d)) => assert!(d.is_nan()),
            other => panic!("dnan came back as {other:?}"),
        }
        assert_eq!(
            l.pairs.iter().map(|(_, v)| v.data_type()).max(),
            Some(DT_DOUBLE)
        );
    }

    // --- hand-made packed buffers --------------------------------------

    fn w(v: u32) -> Vec<u8> {
        v.to_be_bytes().to_vec()
    }

    fn xstr(b: &[u8]) -> Vec<u8> {
        let mut v = w(b.len() as u32);
        v.extend_from_slice(b);
        v.resize(v.len() + (4 - b.len() % 4) % 4, 0);
        v
    }

    /// A packed pair; the encoded-size field is ignored by decoders.
    fn pair(raw_name: &[u8], dtype: i32, nelem: u32, value: &[u8], decoded: u32) -> Vec<u8> {
        let mut v = w(0);
        v.extend(w(decoded));
        v.extend(xstr(raw_name));
        v.extend(w(dtype as u32));
        v.extend(w(nelem));
        v.extend_from_slice(value);
        v
    }

    fn body(version: i32, flag: u32, pairs: &[Vec<u8>]) -> Vec<u8> {
        let mut v = w(version as u32);
        v.extend(w(flag));
        pairs.iter().for_each(|p| v.extend_from_slice(p));
        v.extend(w(0));
        v.extend(w(0));
        v
    }

    fn packed(pairs: &[Vec<u8>]) -> Vec<u8> {
        let mut v = vec![1, 1, 0, 0];
        v.extend(body(0, 1, pairs));
        v
    }

    fn words(ws: &[u32]) -> Vec<u8> {
        ws.iter().flat_map(|x| x.to_be_bytes()).collect()
    }

    fn print_of(buf: &[u8]) -> String {
        printed(&unpack_xdr(buf).unwrap())
    }

    #[test]
    fn pack_layout_matches_libnvpair() {
        let mut l = NvList::new();
        l.push("a", NvValue::Uint8(0xff));
        l.push("e", NvValue::Int32Array(vec![]));
        l.push("s", NvValue::String("xyz".into()));
        let mut expected = vec![1, 1, 0, 0];
        expected.extend(words(&[0, 1]));
        // uint8 0xff goes through xdr_char, a signed char: sign-extended.
        expected.extend(words(&[28, 32, 1, 0x6100_0000, 23, 1, 0xffff_ffff]));
        // Empty array: the encoded size counts a length word that is never
        // written.
        expected.extend(words(&[28, 24, 1, 0x6500_0000, 13, 0]));
        expected.extend(words(&[32, 32, 1, 0x7300_0000, 9, 1, 3, 0x7879_7a00]));
        expected.extend(words(&[0, 0]));
        assert_eq!(pack_xdr(&l), expected);
        assert_eq!(unpack_xdr(&expected).unwrap(), l);
    }

    #[test]
    fn embedded_nul_ends_names_and_strings_like_c() {
        let mut l = NvList::new();
        l.push("ab\0cd", NvValue::String("x\0y".into()));
        assert_eq!(printed(&l), "nvlist version: 0\n\tab = x\n");
        let mut short = NvList::new();
        short.push("ab", NvValue::String("x".into()));
        assert_eq!(pack_xdr(&l), pack_xdr(&short));
    }

    // Each case below was fed to the real zstreamdump; the expectations are
    // what it printed, or that it failed to unpack.

    #[test]
    fn short_array_count_leaves_zeros() {
        let buf = packed(&[pair(b"a", DT_INT32_ARRAY, 3, &words(&[1, 7]), 40)]);
        assert_eq!(print_of(&buf), "nvlist version: 0\n\ta = 7 0 0\n");
    }

    #[test]
    fn long_array_count_is_cut_to_nelem() {
        let buf = packed(&[pair(
            b"a",
            DT_UINT8_ARRAY,
            3,
            &words(&[5, 1, 2, 3, 4, 5]),
            32,
        )]);
        assert_eq!(print_of(&buf), "nvlist version: 0\n\ta = 0x1 0x2 0x3\n");
        let over = packed(&[pair(b"a", DT_UINT8_ARRAY, 3, &words(&[9; 10]), 32)]);
        assert!(unpack_xdr(&over).is_err());
    }

    #[test]
    fn name_bytes_past_a_nul_show_through() {
        let name = b"a\0BCDEFGHIJ";
        let buf = packed(&[pair(name, DT_INT32_ARRAY, 2, &w(0), 32)]);
        assert_eq!(print_of(&buf), "nvlist version: 0\n\ta = 4868424 0\n");
        let buf = packed(&[pair(name, DT_INT16_ARRAY, 4, &words(&[1, 0xfffe]), 32)]);
        assert_eq!(print_of(&buf), "nvlist version: 0\n\ta = -2 74 0 0\n");
        // An embedded list whose version word is covered by name bytes is
        // refused; all-zero leftovers are fine.
        let buf = packed(&[pair(name, DT_NVLIST, 1, &body(0, 1, &[]), 48)]);
        assert!(unpack_xdr(&buf).is_err());
        let buf = packed(&[pair(
            b"a\0BCDEF\0\0\0\0",
            DT_NVLIST,
            1,
            &body(0, 1, &[]),
            48,
        )]);
        assert_eq!(
            print_of(&buf),
            "nvlist version: 0\n\ta = (embedded nvlist)\n\tnvlist version: 0\n\t(end a)\n\n"
        );
        let mut name = b"a\0".to_vec();
        name.extend([0; 14]);
        name.extend(b"ZZ");
        let buf = packed(&[pair(&name, DT_NVLIST_ARRAY, 1, &body(0, 1, &[]), 56)]);
        assert!(unpack_xdr(&buf).is_err());
        name.truncate(16);
        name.extend([0, 0]);
        let buf = packed(&[pair(&name, DT_NVLIST_ARRAY, 1, &body(0, 1, &[]), 56)]);
        assert_eq!(
            print_of(&buf),
            "nvlist version: 0\n\ta = (array of embedded nvlists)\n\t(start a[0])\n\
             \tnvlist version: 0\n\t(end a[0])\n\n"
        );
    }

    #[test]
    fn narrow_ints_keep_low_bits() {
        let buf = packed(&[
            pair(b"b", DT_BYTE, 1, &w(0x1ff), 32),
            pair(b"s", DT_INT16, 1, &w(0x18001), 32),
        ]);
        assert_eq!(
            print_of(&buf),
            "nvlist version: 0\n\tb = 0xff\n\ts = -32767\n"
        );
    }

    #[test]
    fn strings_stop_at_nul_but_raw_length_must_fit() {
        let buf = packed(&[pair(b"s", DT_STRING, 1, &xstr(b"ab\0cde"), 32)]);
        assert_eq!(print_of(&buf), "nvlist version: 0\n\ts = ab\n");
        let buf = packed(&[pair(b"s", DT_STRING, 1, &xstr(b"ab\0cdefgh"), 32)]);
        assert!(unpack_xdr(&buf).is_err());
        let mut v = xstr(b"x\0yz");
        v.extend(xstr(b"q"));
        let buf = packed(&[pair(b"a", DT_STRING_ARRAY, 2, &v, 48)]);
        assert_eq!(print_of(&buf), "nvlist version: 0\n\ta = x q\n");
        let mut v = xstr(b"x\0yzzzzz");
        v.extend(xstr(b"q"));
        let buf = packed(&[pair(b"a", DT_STRING_ARRAY, 2, &v, 48)]);
        assert!(unpack_xdr(&buf).is_err());
    }

    #[test]
    fn versions_and_flags_are_taken_as_they_come() {
        let mut buf = vec![1, 1, 0, 0];
        let inner = body(5, 0x8000_0000, &[]);
        let mut p = pair(b"n", DT_NVLIST, 1, &inner, 48);
        // 24 bytes of pair header and name, 16 of empty embedded list.
        p[0..4].copy_from_slice(&w(40));
        buf.extend(body(-3, 0, &[p]));
        let l = unpack_xdr(&buf).unwrap();
        assert_eq!((l.version, l.nvflag), (-3, 0));
        assert_eq!(l.get_nvlist("n").unwrap().nvflag, 0x8000_0000);
        assert_eq!(
            printed(&l),
            "nvlist version: -3\n\tn = (embedded nvlist)\n\tnvlist version: 5\n\t(end n)\n\n"
        );
        assert_eq!(pack_xdr(&l), buf);
    }

    #[test]
    fn ignored_fields_and_trailing_bytes_are_ignored() {
        // Garbage encoded size, an end marker with a non-zero encoded size,
        // bytes after the list, and odd header endian/reserved bytes.
        let mut p = pair(b"b", DT_UINT64, 1, &words(&[0, 5]), 32);
        p[0..4].copy_from_slice(&w(0x7fff_ffff));
        let mut buf = vec![1, 0, 7, 9];
        buf.extend(body(0, 1, &[p]));
        let end = buf.len() - 8;
        buf[end..end + 4].copy_from_slice(&w(99));
        buf.extend(b"junkjunk");
        assert_eq!(print_of(&buf), "nvlist version: 0\n\tb = 0x5\n");
        // An empty array followed by a stray length word: the word reads as
        // the next pair's encoded size.
        let buf = packed(&[pair(b"a", DT_INT32_ARRAY, 0, &w(0), 24)]);
        assert_eq!(print_of(&buf), "nvlist version: 0\n\ta =\n");
    }

    #[test]
    fn libnvpair_rejections_are_rejected() {
        let cases: Vec<(&str, Vec<u8>)> = vec![
            (
                "boolean_value 2",
                packed(&[pair(b"b", DT_BOOLEAN_VALUE, 1, &w(2), 32)]),
            ),
            (
                "boolean with a value",
                packed(&[pair(b"a", DT_BOOLEAN, 1, &[], 24)]),
            ),
            (
                "wrong decoded size",
                packed(&[pair(b"b", DT_UINT64, 1, &words(&[0, 5]), 40)]),
            ),
            (
                "negative nelem",
                packed(&[pair(b"a", DT_INT32_ARRAY, u32::MAX, &w(0), 24)]),
            ),
            ("type 0", packed(&[pair(b"a", 0, 1, &w(0), 32)])),
            ("type 28", packed(&[pair(b"a", 28, 1, &w(0), 32)])),
            (
                "scalar nelem 2",
                packed(&[pair(b"a", DT_INT32, 2, &words(&[1, 2]), 32)]),
            ),
            (
                "decoded size 16",
                packed(&[pair(b"a", DT_BOOLEAN, 0, &[], 16)]),
            ),
            (
                "negative decoded size",
                packed(&[pair(b"a", DT_BOOLEAN, 0, &[], 0x8000_0000)]),
            ),
            (
                "native encoding",
                vec![0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ),
            ("encoding 2", vec![2, 1, 0, 0]),
            ("short header", vec![1, 1, 0]),
            (
                "bad utf-8",
                packed(&[pair(b"\xff", DT_BOOLEAN, 0, &[], 24)]),
            ),
        ];
        for (what, buf) in cases {
            let err = unpack_xdr(&buf).expect_err(what);
            assert!(err.offset <= buf.len(), "{what}: {err}");
        }
    }

    #[test]
    fn errors_say_where() {
        let payload = fixture_payload();
        let err = unpack_xdr(&payload[..500]).unwrap_err();
        assert_eq!(err.offset, 500);
        let msg = err.to_string();
        assert!(
            msg.contains("offset 500") && msg.contains("truncated"),
            "{msg}"
        );
    }

    // --- robustness ----------------------------------------------------

    #[test]
    fn every_truncation_of_the_fixture_fails() {
        let payload = fixture_payload();
        for len in 0..payload.len() {
            assert!(unpack_xdr(&payload[..len]).is_err(), "length {len}");
        }
    }

    #[test]
    fn absurd_counts_fail_before_allocating() {
        // 2^31 - 1 one-byte elements claimed in a ~60-byte buffer, with a
        // decoded size either beyond the buffer's means or too small for it.
        for dec in [0x7fff_fff0, 64] {
            let buf = packed(&[pair(b"a", DT_INT8_ARRAY, 0x7fff_ffff, &w(0), dec)]);
            assert!(buf.len() < 100);
            assert!(unpack_xdr(&buf).is_err());
        }
        let buf = packed(&[pair(b"a", DT_NVLIST_ARRAY, 1 << 31, &[], 64)]);
        assert!(unpack_xdr(&buf).is_err());
        let buf = packed(&[pair(b"a", DT_STRING_ARRAY, 1 << 28, &[], 64)]);
        assert!(unpack_xdr(&buf).is_err());
    }

    /// Nested BOOLEAN-free lists: `n = { n = { ... } }`, `levels` deep.
    fn nested(levels: usize) -> Vec<u8> {
        let mut buf = vec![1, 1, 0, 0];
        for _ in 0..levels {
            buf.extend(words(&[0, 1, 0, 48, 1, 0x6e00_0000, DT_NVLIST as u32, 1]));
        }
        buf.extend(words(&[0, 1, 0, 0]));
        for _ in 0..levels {
            buf.extend(words(&[0, 0]));
        }
        buf
    }

    #[test]
    fn nesting_is_bounded() {
        assert!(unpack_xdr(&nested(MAX_DEPTH)).is_ok());
        let err = unpack_xdr(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert!(err.reason.contains("nested"), "{err}");
        assert!(unpack_xdr(&nested(100_000)).is_err());
    }

    /// Rough heap bytes held by a decoded list.
    fn footprint(l: &NvList) -> usize {
        use std::mem::size_of;
        let mut n = l.pairs.capacity() * size_of::<(String, NvValue)>();
        for (name, v) in &l.pairs {
            n += name.capacity();
            n += match v {
                NvValue::String(s) => s.capacity(),
                NvValue::NvList(l) => footprint(l),
                NvValue::NvListArray(a) => {
                    a.capacity() * size_of::<NvList>() + a.iter().map(footprint).sum::<usize>()
                }
                NvValue::StringArray(a) => {
                    a.capacity() * size_of::<String>()
                        + a.iter().map(|s| s.capacity()).sum::<usize>()
                }
                NvValue::BooleanArray(a) => a.capacity(),
                NvValue::ByteArray(a) | NvValue::Uint8Array(a) => a.capacity(),
                NvValue::Int8Array(a) => a.capacity(),
                NvValue::Int16Array(a) => a.capacity() * 2,
                NvValue::Uint16Array(a) => a.capacity() * 2,
                NvValue::Int32Array(a) => a.capacity() * 4,
                NvValue::Uint32Array(a) => a.capacity() * 4,
                NvValue::Int64Array(a) => a.capacity() * 8,
                NvValue::Uint64Array(a) => a.capacity() * 8,
                _ => 0,
            };
        }
        n
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn random_damage_never_panics_or_balloons() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for original in [fixture_payload(), pack_xdr(&every_type())] {
            let (mut ok, mut bad) = (0, 0);
            for _ in 0..4000 {
                let mut buf = original.clone();
                for _ in 0..1 + rng.next() % 4 {
                    let at = (rng.next() % buf.len() as u64) as usize;
                    match rng.next() % 3 {
                        0 => buf[at] ^= 1 << (rng.next() % 8),
                        1 => buf[at] = rng.next() as u8,
                        // Nudge a whole word: sizes, counts, types.
                        _ => {
                            let at = at & !3;
                            let old = u32::from_be_bytes(buf[at..at + 4].try_into().unwrap());
                            let new = old.wrapping_add((rng.next() % 33) as u32).wrapping_sub(16);
                            buf[at..at + 4].copy_from_slice(&new.to_be_bytes());
                        }
                    }
                }
                match unpack_xdr(&buf) {
                    Ok(l) => {
                        ok += 1;
                        assert!(footprint(&l) <= 16 * buf.len() + 4096);
                        let mut s = String::new();
                        print(&l, &mut s).unwrap();
                        // Whatever decodes re-packs to something that
                        // decodes to the same thing.
                        let again = unpack_xdr(&pack_xdr(&l)).unwrap();
                        assert_eq!(pack_xdr(&again), pack_xdr(&l));
                    }
                    Err(e) => {
                        bad += 1;
                        assert!(e.offset <= buf.len());
                    }
                }
            }
            assert!(ok > 100 && bad > 100, "ok {ok} bad {bad}");
        }
    }
}
