//! A small reader of the `.BTF` section of an ELF object: enough to list structs with their
//! members' offsets, so a test can compare the Rust twins with what clang compiled.

use std::collections::HashMap;

/// One struct member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Member name.
    pub name: String,
    /// Offset in bits from the start of the struct.
    pub bit_offset: usize,
}

/// One struct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Struct {
    /// Size in bytes.
    pub size: usize,
    /// Members in declaration order.
    pub members: Vec<Member>,
}

/// The structs of an object's BTF.
#[derive(Debug, Default)]
pub struct Btf {
    structs: HashMap<String, Struct>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The bytes of a named section of a little-endian ELF64 object.
fn elf_section<'a>(elf: &'a [u8], want: &str) -> Option<&'a [u8]> {
    if elf.get(0..4)? != b"\x7fELF" || *elf.get(4)? != 2 || *elf.get(5)? != 1 {
        return None;
    }
    let shoff = usize::try_from(u64_at(elf, 0x28)?).ok()?;
    let shentsize = usize::from(u16_at(elf, 0x3a)?);
    let shnum = usize::from(u16_at(elf, 0x3c)?);
    let shstrndx = usize::from(u16_at(elf, 0x3e)?);
    let sh = |i: usize| -> Option<(u32, usize, usize)> {
        let at = shoff + i * shentsize;
        Some((
            u32_at(elf, at)?,
            usize::try_from(u64_at(elf, at + 24)?).ok()?,
            usize::try_from(u64_at(elf, at + 32)?).ok()?,
        ))
    };
    let (_, stroff, strsize) = sh(shstrndx)?;
    let strtab = elf.get(stroff..stroff + strsize)?;
    (0..shnum).find_map(|i| {
        let (name, off, size) = sh(i)?;
        let n = cstr(strtab, usize::try_from(name).ok()?)?;
        (n == want).then(|| elf.get(off..off + size)).flatten()
    })
}

fn cstr(b: &[u8], at: usize) -> Option<&str> {
    let s = b.get(at..)?;
    let end = s.iter().position(|&c| c == 0)?;
    std::str::from_utf8(&s[..end]).ok()
}

impl Btf {
    /// Parses the `.BTF` section of an ELF object; `None` when absent or malformed.
    pub fn from_elf(elf: &[u8]) -> Option<Self> {
        Self::parse(elf_section(elf, ".BTF")?)
    }

    /// Parses raw BTF (kernel `Documentation/bpf/btf.rst`).
    pub fn parse(b: &[u8]) -> Option<Self> {
        if u16_at(b, 0)? != 0xeb9f {
            return None;
        }
        let hdr_len = usize::try_from(u32_at(b, 4)?).ok()?;
        let type_off = usize::try_from(u32_at(b, 8)?).ok()?;
        let type_len = usize::try_from(u32_at(b, 12)?).ok()?;
        let str_off = usize::try_from(u32_at(b, 16)?).ok()?;
        let str_len = usize::try_from(u32_at(b, 20)?).ok()?;
        let types = b.get(hdr_len + type_off..hdr_len + type_off + type_len)?;
        let strs = b.get(hdr_len + str_off..hdr_len + str_off + str_len)?;
        let name = |off: u32| cstr(strs, usize::try_from(off).ok()?).map(str::to_owned);
        let mut btf = Btf::default();
        let mut at = 0;
        while at < types.len() {
            let name_off = u32_at(types, at)?;
            let info = u32_at(types, at + 4)?;
            let size = u32_at(types, at + 8)?;
            let vlen = usize::try_from(info & 0xffff).ok()?;
            let kind = (info >> 24) & 0x1f;
            let kflag = info >> 31 == 1;
            at += 12;
            let extra = match kind {
                1 | 14 | 17 => 4,
                3 => 12,
                4 | 5 | 15 | 19 => 12 * vlen,
                6 | 13 => 8 * vlen,
                _ => 0,
            };
            if kind == 4 {
                let mut members = Vec::with_capacity(vlen);
                for i in 0..vlen {
                    let m = at + 12 * i;
                    let off = u32_at(types, m + 8)?;
                    let bit_offset = if kflag { off & 0x00ff_ffff } else { off };
                    members.push(Member {
                        name: name(u32_at(types, m)?)?,
                        bit_offset: usize::try_from(bit_offset).ok()?,
                    });
                }
                btf.structs.insert(
                    name(name_off)?,
                    Struct {
                        size: usize::try_from(size).ok()?,
                        members,
                    },
                );
            }
            at += extra;
        }
        Some(btf)
    }

    /// A struct by name (without the `struct` keyword).
    pub fn struct_by_name(&self, name: &str) -> Option<&Struct> {
        self.structs.get(name)
    }
}
