//! TEMPORARY: replaced by the LZJB/ZLE module.
use crate::error::Result;
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ZioCompress {
    Inherit = 0,
    On = 1,
    Off = 2,
    Lzjb = 3,
    Empty = 4,
    Zle = 14,
}
impl ZioCompress {
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::Inherit,
            1 => Self::On,
            2 => Self::Off,
            3 => Self::Lzjb,
            4 => Self::Empty,
            14 => Self::Zle,
            _ => return None,
        })
    }
}
pub enum Compressed {
    Hole,
    Stored {
        data: Vec<u8>,
        compress: ZioCompress,
    },
}
pub fn compress_block(c: ZioCompress, src: &[u8]) -> Result<Compressed> {
    if c != ZioCompress::Off && src.iter().all(|&b| b == 0) {
        return Ok(Compressed::Hole);
    }
    Ok(Compressed::Stored {
        data: src.to_vec(),
        compress: ZioCompress::Off,
    })
}
pub fn decompress_block(_c: ZioCompress, src: &[u8], _lsize: usize) -> Result<Vec<u8>> {
    Ok(src.to_vec())
}
impl ZioCompress {
    pub fn select(child: ZioCompress, parent: ZioCompress) -> ZioCompress {
        match child {
            ZioCompress::Inherit => parent,
            ZioCompress::On => ZioCompress::Lzjb,
            c => c,
        }
    }
}
impl ZioCompress {
    pub fn from_name(n: &str) -> Option<Self> {
        Some(match n {
            "on" => Self::On,
            "off" => Self::Off,
            "lzjb" => Self::Lzjb,
            "empty" => Self::Empty,
            "zle" => Self::Zle,
            _ => return None,
        })
    }
    pub fn is_supported(self) -> bool {
        true
    }
}
