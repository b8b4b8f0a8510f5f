//! Reading the facts `check` needs from an ELF file, read-only and without trusting it.
//!
//! ELF32 and ELF64, little and big endian: `e_type`, `e_machine`, `PT_INTERP`, and from the
//! dynamic section `DT_NEEDED`, `DT_SONAME`, `DT_RPATH`, `DT_RUNPATH`, the version needs
//! (`DT_VERNEED`: which file, which version names) and the version definitions
//! (`DT_VERDEF`: what `libc.so.6` and `libstdc++.so.6` offer). Everything is found through
//! the program headers and the dynamic section, as `ld.so` finds it, so stripped files and
//! files without section headers read the same. Every offset, count and string is bounds
//! checked; a malformed file gives an [`ElfError`], never a panic. Pure: reads go through
//! [`ReadAt`], implemented for byte slices (and, by the caller, for a spooled file).

use serde::{Deserialize, Serialize};

/// The magic bytes of an ELF file.
pub const MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];

/// Most entries read from any one table: a bound on loops over hostile input.
const MAX_ENTRIES: usize = 1 << 16;
/// Longest string read from the dynamic string table.
const MAX_STRING: usize = 1 << 20;

/// Random access to a file's bytes.
pub trait ReadAt {
    /// File length.
    fn size(&self) -> u64;
    /// Fills `buf` from `offset`.
    ///
    /// # Errors
    /// Reading past the end, or an I/O failure, as text.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), String>;
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        let start = usize::try_from(offset).map_err(|_| "offset out of range".to_string())?;
        let end = start
            .checked_add(buf.len())
            .filter(|e| *e <= self.len())
            .ok_or_else(|| format!("{} bytes at {offset} are past the end", buf.len()))?;
        buf.copy_from_slice(&self[start..end]);
        Ok(())
    }
}

/// `ld.so` facts about one ELF file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ElfFacts {
    /// 32 or 64.
    pub class: u8,
    /// Big endian.
    pub big_endian: bool,
    /// `e_type`: 1 relocatable, 2 executable, 3 shared object (or PIE), 4 core.
    pub e_type: u16,
    /// `e_machine` (62 x86-64, 183 AArch64, …).
    pub machine: u16,
    /// `PT_INTERP`: the program interpreter.
    pub interp: Option<String>,
    /// Whether the file has a dynamic section.
    pub dynamic: bool,
    /// `DT_NEEDED`, in order.
    pub needed: Vec<String>,
    /// `DT_SONAME`.
    pub soname: Option<String>,
    /// `DT_RPATH`, split at `:`.
    pub rpath: Vec<String>,
    /// `DT_RUNPATH`, split at `:`.
    pub runpath: Vec<String>,
    /// Version needs: (file, version names), as in `.gnu.version_r`.
    pub version_needs: Vec<(String, Vec<String>)>,
    /// Version definitions (the base definition, the soname, left out).
    pub version_defs: Vec<String>,
}

/// Why a file that starts like an ELF file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed ELF: {0}")]
pub struct ElfError(pub String);

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const DT_NULL: u64 = 0;
const DT_NEEDED: u64 = 1;
const DT_STRTAB: u64 = 5;
const DT_STRSZ: u64 = 10;
const DT_SONAME: u64 = 14;
const DT_RPATH: u64 = 15;
const DT_RUNPATH: u64 = 29;
const DT_VERDEF: u64 = 0x6fff_fffc;
const DT_VERDEFNUM: u64 = 0x6fff_fffd;
const DT_VERNEED: u64 = 0x6fff_fffe;
const DT_VERNEEDNUM: u64 = 0x6fff_ffff;
/// `VER_FLG_BASE`: the definition naming the file itself.
const VER_FLG_BASE: u16 = 1;

/// One loadable segment: file offset, virtual address, size in the file.
#[derive(Debug, Clone, Copy)]
struct Load {
    offset: u64,
    vaddr: u64,
    filesz: u64,
}

struct Reader<'a, R: ReadAt + ?Sized> {
    src: &'a R,
    class64: bool,
    big: bool,
}

impl<R: ReadAt + ?Sized> Reader<'_, R> {
    fn bytes<const N: usize>(&self, off: u64) -> Result<[u8; N], ElfError> {
        let mut b = [0u8; N];
        self.src.read_at(off, &mut b).map_err(ElfError)?;
        Ok(b)
    }
    fn u16(&self, off: u64) -> Result<u16, ElfError> {
        let b = self.bytes::<2>(off)?;
        Ok(if self.big {
            u16::from_be_bytes(b)
        } else {
            u16::from_le_bytes(b)
        })
    }
    fn u32(&self, off: u64) -> Result<u32, ElfError> {
        let b = self.bytes::<4>(off)?;
        Ok(if self.big {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    }
    fn u64(&self, off: u64) -> Result<u64, ElfError> {
        let b = self.bytes::<8>(off)?;
        Ok(if self.big {
            u64::from_be_bytes(b)
        } else {
            u64::from_le_bytes(b)
        })
    }
    /// A word: 4 bytes in ELF32, 8 in ELF64.
    fn word(&self, off: u64) -> Result<u64, ElfError> {
        if self.class64 {
            self.u64(off)
        } else {
            self.u32(off).map(u64::from)
        }
    }
    /// A NUL-terminated string at `off`, not past `end`: read in growing chunks, so short
    /// names cost one small read and long ones (C++ symbol names run past 4 KiB) still fit.
    fn cstr(&self, off: u64, end: u64) -> Result<String, ElfError> {
        let limit = end.min(off.saturating_add(MAX_STRING as u64));
        if off >= limit {
            return Err(ElfError(format!("string at {off} is outside its table")));
        }
        let mut out: Vec<u8> = Vec::new();
        let mut chunk = 256u64;
        let mut at = off;
        while at < limit {
            let n = chunk.min(limit - at);
            let len = usize::try_from(n).map_err(|_| ElfError("string too long".into()))?;
            let mut buf = vec![0u8; len];
            self.src.read_at(at, &mut buf).map_err(ElfError)?;
            if let Some(z) = buf.iter().position(|b| *b == 0) {
                out.extend_from_slice(&buf[..z]);
                return Ok(String::from_utf8_lossy(&out).into_owned());
            }
            out.extend_from_slice(&buf);
            at += n;
            chunk = chunk.saturating_mul(4);
        }
        Err(ElfError(format!("unterminated string at {off}")))
    }
}

fn add(a: u64, b: u64) -> Result<u64, ElfError> {
    a.checked_add(b)
        .ok_or_else(|| ElfError("offset overflows".into()))
}

/// Whether `head` starts with the ELF magic.
#[must_use]
pub fn is_elf(head: &[u8]) -> bool {
    head.starts_with(&MAGIC)
}

/// Reads the facts of the ELF file in `src`.
///
/// # Errors
/// [`ElfError`] for anything out of bounds or inconsistent.
pub fn parse<R: ReadAt + ?Sized>(src: &R) -> Result<ElfFacts, ElfError> {
    let mut ident = [0u8; 16];
    src.read_at(0, &mut ident)
        .map_err(|e| ElfError(format!("no ELF header: {e}")))?;
    if !is_elf(&ident) {
        return Err(ElfError("no ELF magic".into()));
    }
    let class64 = match ident[4] {
        1 => false,
        2 => true,
        c => return Err(ElfError(format!("unknown class {c}"))),
    };
    let big = match ident[5] {
        1 => false,
        2 => true,
        d => return Err(ElfError(format!("unknown data encoding {d}"))),
    };
    let r = Reader { src, class64, big };
    let e_type = r.u16(16)?;
    let machine = r.u16(18)?;
    let (phoff, phentsize, phnum) = if class64 {
        (r.u64(32)?, r.u16(54)?, r.u16(56)?)
    } else {
        (u64::from(r.u32(28)?), r.u16(42)?, r.u16(44)?)
    };
    let mut facts = ElfFacts {
        class: if class64 { 64 } else { 32 },
        big_endian: big,
        e_type,
        machine,
        interp: None,
        dynamic: false,
        needed: Vec::new(),
        soname: None,
        rpath: Vec::new(),
        runpath: Vec::new(),
        version_needs: Vec::new(),
        version_defs: Vec::new(),
    };
    if phnum == 0 {
        return Ok(facts);
    }
    let min_ent = if class64 { 56 } else { 32 };
    if usize::from(phentsize) < min_ent {
        return Err(ElfError(format!(
            "program header size {phentsize} too small"
        )));
    }
    let mut loads = Vec::new();
    let mut dynamic = None;
    for i in 0..u64::from(phnum) {
        let at = add(phoff, i * u64::from(phentsize))?;
        let p_type = r.u32(at)?;
        let (offset, vaddr, filesz) = if class64 {
            (r.u64(at + 8)?, r.u64(at + 16)?, r.u64(at + 32)?)
        } else {
            (
                u64::from(r.u32(at + 4)?),
                u64::from(r.u32(at + 8)?),
                u64::from(r.u32(at + 16)?),
            )
        };
        match p_type {
            PT_LOAD => loads.push(Load {
                offset,
                vaddr,
                filesz,
            }),
            PT_DYNAMIC => dynamic = Some((offset, filesz)),
            PT_INTERP => {
                let end = add(offset, filesz)?;
                facts.interp = Some(r.cstr(offset, end)?);
            }
            _ => {}
        }
    }
    let Some((dyn_off, dyn_size)) = dynamic else {
        return Ok(facts);
    };
    facts.dynamic = true;
    let ent = if class64 { 16 } else { 8 };
    let mut tags: Vec<(u64, u64)> = Vec::new();
    for i in 0..(dyn_size / ent).min(MAX_ENTRIES as u64) {
        let at = add(dyn_off, i * ent)?;
        let tag = r.word(at)?;
        let val = r.word(at + ent / 2)?;
        if tag == DT_NULL {
            break;
        }
        tags.push((tag, val));
    }
    let one = |t: u64| tags.iter().find(|(k, _)| *k == t).map(|(_, v)| *v);
    let to_off = |vaddr: u64| -> Result<u64, ElfError> {
        loads
            .iter()
            .find(|l| vaddr >= l.vaddr && vaddr - l.vaddr < l.filesz)
            .map(|l| l.offset + (vaddr - l.vaddr))
            .ok_or_else(|| ElfError(format!("address {vaddr:#x} is in no loaded segment")))
    };
    let names = tags.iter().any(|(t, _)| {
        matches!(
            *t,
            DT_NEEDED | DT_SONAME | DT_RPATH | DT_RUNPATH | DT_VERNEED | DT_VERDEF
        )
    });
    if !names {
        return Ok(facts);
    }
    let strtab = to_off(one(DT_STRTAB).ok_or_else(|| ElfError("no DT_STRTAB".into()))?)?;
    let strsz = one(DT_STRSZ).unwrap_or(src.size().saturating_sub(strtab));
    let strend = add(strtab, strsz)?.min(src.size());
    let s = |idx: u64| r.cstr(add(strtab, idx)?, strend);
    for &(tag, val) in &tags {
        match tag {
            DT_NEEDED => facts.needed.push(s(val)?),
            DT_SONAME => facts.soname = Some(s(val)?),
            DT_RPATH => facts.rpath.extend(split_path(&s(val)?)),
            DT_RUNPATH => facts.runpath.extend(split_path(&s(val)?)),
            _ => {}
        }
    }
    if let Some(vn) = one(DT_VERNEED) {
        let count = one(DT_VERNEEDNUM).unwrap_or(0).min(MAX_ENTRIES as u64);
        let mut at = to_off(vn)?;
        for _ in 0..count {
            let cnt = r.u16(at + 2)?;
            let file = s(u64::from(r.u32(at + 4)?))?;
            let mut aux = add(at, u64::from(r.u32(at + 8)?))?;
            let mut versions = Vec::new();
            for _ in 0..cnt {
                versions.push(s(u64::from(r.u32(aux + 8)?))?);
                let next = r.u32(aux + 12)?;
                if next == 0 {
                    break;
                }
                aux = add(aux, u64::from(next))?;
            }
            facts.version_needs.push((file, versions));
            let next = r.u32(at + 12)?;
            if next == 0 {
                break;
            }
            at = add(at, u64::from(next))?;
        }
    }
    if let Some(vd) = one(DT_VERDEF) {
        let count = one(DT_VERDEFNUM).unwrap_or(0).min(MAX_ENTRIES as u64);
        let mut at = to_off(vd)?;
        for _ in 0..count {
            let flags = r.u16(at + 2)?;
            let cnt = r.u16(at + 6)?;
            if cnt > 0 && flags & VER_FLG_BASE == 0 {
                let aux = add(at, u64::from(r.u32(at + 12)?))?;
                facts.version_defs.push(s(u64::from(r.u32(aux)?))?);
            }
            let next = r.u32(at + 16)?;
            if next == 0 {
                break;
            }
            at = add(at, u64::from(next))?;
        }
    }
    Ok(facts)
}

fn split_path(s: &str) -> Vec<String> {
    s.split(':')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The Debian multiarch triplet of an ELF machine (for library directories).
#[must_use]
pub fn triplet(machine: u16, class: u8, big_endian: bool) -> Option<&'static str> {
    Some(match (machine, class) {
        (62, 64) => "x86_64-linux-gnu",
        (3, 32) => "i386-linux-gnu",
        (183, 64) => "aarch64-linux-gnu",
        (40, 32) => "arm-linux-gnueabihf",
        (21, 64) if !big_endian => "powerpc64le-linux-gnu",
        (22, 64) => "s390x-linux-gnu",
        (243, 64) => "riscv64-linux-gnu",
        _ => return None,
    })
}

/// The ELF machine of an OCI architecture name.
#[must_use]
pub fn machine_of_arch(arch: &str) -> Option<u16> {
    Some(match arch {
        "amd64" => 62,
        "386" => 3,
        "arm64" => 183,
        "arm" => 40,
        "ppc64le" => 21,
        "s390x" => 22,
        "riscv64" => 243,
        _ => return None,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a small ELF64 LE shared object by hand: one PT_LOAD covering the file, a
    /// PT_DYNAMIC, optional PT_INTERP, a string table, version needs and definitions.
    #[derive(Default)]
    pub(crate) struct ElfBuilder {
        pub(crate) needed: Vec<String>,
        pub(crate) soname: Option<String>,
        pub(crate) runpath: Option<String>,
        pub(crate) rpath: Option<String>,
        pub(crate) interp: Option<String>,
        pub(crate) needs: Vec<(String, Vec<String>)>,
        pub(crate) defs: Vec<String>,
        pub(crate) machine: u16,
        pub(crate) class32: bool,
    }

    impl ElfBuilder {
        pub(crate) fn new() -> Self {
            Self {
                machine: 62,
                ..Self::default()
            }
        }
        pub(crate) fn needed(mut self, n: &str) -> Self {
            self.needed.push(n.into());
            self
        }
        pub(crate) fn soname(mut self, n: &str) -> Self {
            self.soname = Some(n.into());
            self
        }
        pub(crate) fn runpath(mut self, n: &str) -> Self {
            self.runpath = Some(n.into());
            self
        }
        pub(crate) fn rpath(mut self, n: &str) -> Self {
            self.rpath = Some(n.into());
            self
        }
        pub(crate) fn interp(mut self, n: &str) -> Self {
            self.interp = Some(n.into());
            self
        }
        pub(crate) fn need(mut self, file: &str, versions: &[&str]) -> Self {
            self.needs.push((
                file.into(),
                versions.iter().map(|v| (*v).to_string()).collect(),
            ));
            self
        }
        pub(crate) fn defs(mut self, versions: &[&str]) -> Self {
            self.defs = versions.iter().map(|v| (*v).to_string()).collect();
            self
        }

        /// ELF64 LE (or ELF32 LE when `class32`); vaddr == offset.
        pub(crate) fn build(&self) -> Vec<u8> {
            let c64 = !self.class32;
            let (ehsize, phsize, dynent) = if c64 { (64, 56, 16) } else { (52, 32, 8) };
            let mut strtab = vec![0u8];
            let mut intern = |s: &str| {
                let at = strtab.len() as u64;
                strtab.extend_from_slice(s.as_bytes());
                strtab.push(0);
                at
            };
            let mut dyns: Vec<(u64, u64)> = Vec::new();
            for n in &self.needed {
                dyns.push((DT_NEEDED, intern(n)));
            }
            if let Some(s) = &self.soname {
                dyns.push((DT_SONAME, intern(s)));
            }
            if let Some(s) = &self.rpath {
                dyns.push((DT_RPATH, intern(s)));
            }
            if let Some(s) = &self.runpath {
                dyns.push((DT_RUNPATH, intern(s)));
            }
            // Version needs.
            let mut verneed = Vec::new();
            for (i, (file, versions)) in self.needs.iter().enumerate() {
                let file_at = intern(file) as u32;
                let last = i + 1 == self.needs.len();
                let size = 16 + 16 * versions.len() as u32;
                verneed.extend_from_slice(&1u16.to_le_bytes());
                verneed.extend_from_slice(&(versions.len() as u16).to_le_bytes());
                verneed.extend_from_slice(&file_at.to_le_bytes());
                verneed.extend_from_slice(&16u32.to_le_bytes());
                verneed.extend_from_slice(&(if last { 0 } else { size }).to_le_bytes());
                for (j, v) in versions.iter().enumerate() {
                    let name = intern(v) as u32;
                    verneed.extend_from_slice(&0u32.to_le_bytes());
                    verneed.extend_from_slice(&0u16.to_le_bytes());
                    verneed.extend_from_slice(&2u16.to_le_bytes());
                    verneed.extend_from_slice(&name.to_le_bytes());
                    let next: u32 = if j + 1 == versions.len() { 0 } else { 16 };
                    verneed.extend_from_slice(&next.to_le_bytes());
                }
            }
            // Version definitions: a base one (the soname), then each.
            let mut verdef = Vec::new();
            if !self.defs.is_empty() {
                let base = intern(self.soname.as_deref().unwrap_or("lib.so"));
                let all: Vec<(u16, u64)> = std::iter::once((VER_FLG_BASE, base))
                    .chain(self.defs.iter().map(|d| (0, intern(d))))
                    .collect();
                for (i, (flags, name)) in all.iter().enumerate() {
                    let last = i + 1 == all.len();
                    verdef.extend_from_slice(&1u16.to_le_bytes());
                    verdef.extend_from_slice(&flags.to_le_bytes());
                    verdef.extend_from_slice(&(i as u16 + 1).to_le_bytes());
                    verdef.extend_from_slice(&1u16.to_le_bytes());
                    verdef.extend_from_slice(&0u32.to_le_bytes());
                    verdef.extend_from_slice(&20u32.to_le_bytes());
                    verdef.extend_from_slice(&(if last { 0u32 } else { 28 }).to_le_bytes());
                    verdef.extend_from_slice(&(*name as u32).to_le_bytes());
                    verdef.extend_from_slice(&0u32.to_le_bytes());
                }
            }
            let interp = self.interp.as_ref().map(|i| {
                let mut b = i.as_bytes().to_vec();
                b.push(0);
                b
            });
            let phnum = 2 + u16::from(interp.is_some());
            let ph_end = ehsize + phsize * u64::from(phnum);
            let interp_at = ph_end;
            let str_at = interp_at + interp.as_ref().map_or(0, |i| i.len() as u64);
            let vn_at = str_at + strtab.len() as u64;
            let vd_at = vn_at + verneed.len() as u64;
            let dyn_at = vd_at + verdef.len() as u64;
            dyns.push((DT_STRTAB, str_at));
            dyns.push((DT_STRSZ, strtab.len() as u64));
            if !self.needs.is_empty() {
                dyns.push((DT_VERNEED, vn_at));
                dyns.push((DT_VERNEEDNUM, self.needs.len() as u64));
            }
            if !self.defs.is_empty() {
                dyns.push((DT_VERDEF, vd_at));
                dyns.push((DT_VERDEFNUM, self.defs.len() as u64 + 1));
            }
            dyns.push((DT_NULL, 0));
            let dyn_size = dynent * dyns.len() as u64;
            let total = dyn_at + dyn_size;

            let mut out = Vec::new();
            let word = |out: &mut Vec<u8>, v: u64| {
                if c64 {
                    out.extend_from_slice(&v.to_le_bytes());
                } else {
                    out.extend_from_slice(&(v as u32).to_le_bytes());
                }
            };
            out.extend_from_slice(&MAGIC);
            out.extend_from_slice(&[if c64 { 2 } else { 1 }, 1, 1, 0]);
            out.extend_from_slice(&[0u8; 8]);
            out.extend_from_slice(&3u16.to_le_bytes());
            out.extend_from_slice(&self.machine.to_le_bytes());
            out.extend_from_slice(&1u32.to_le_bytes());
            word(&mut out, 0); // entry
            word(&mut out, ehsize); // phoff
            word(&mut out, 0); // shoff
            out.extend_from_slice(&0u32.to_le_bytes());
            out.extend_from_slice(&(ehsize as u16).to_le_bytes());
            out.extend_from_slice(&(phsize as u16).to_le_bytes());
            out.extend_from_slice(&phnum.to_le_bytes());
            out.extend_from_slice(&[0u8; 6]);
            assert_eq!(out.len() as u64, ehsize);
            let ph = |out: &mut Vec<u8>, t: u32, off: u64, size: u64| {
                out.extend_from_slice(&t.to_le_bytes());
                if c64 {
                    out.extend_from_slice(&4u32.to_le_bytes());
                    for v in [off, off, off, size, size, 8] {
                        out.extend_from_slice(&v.to_le_bytes());
                    }
                } else {
                    for v in [off, off, off, size, size, 4, 4] {
                        out.extend_from_slice(&(v as u32).to_le_bytes());
                    }
                }
            };
            ph(&mut out, PT_LOAD, 0, total);
            ph(&mut out, PT_DYNAMIC, dyn_at, dyn_size);
            if let Some(i) = &interp {
                ph(&mut out, PT_INTERP, interp_at, i.len() as u64);
            }
            if let Some(i) = &interp {
                out.extend_from_slice(i);
            }
            out.extend_from_slice(&strtab);
            out.extend_from_slice(&verneed);
            out.extend_from_slice(&verdef);
            for (t, v) in dyns {
                word(&mut out, t);
                word(&mut out, v);
            }
            assert_eq!(out.len() as u64, total);
            out
        }
    }

    fn parsed(b: &[u8]) -> ElfFacts {
        match parse(b) {
            Ok(f) => f,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn reads_dynamic_facts() {
        let b = ElfBuilder::new()
            .needed("libfoo.so.1")
            .needed("libc.so.6")
            .soname("libbar.so.2")
            .runpath("$ORIGIN/../lib:/opt/x")
            .interp("/lib64/ld-linux-x86-64.so.2")
            .need("libc.so.6", &["GLIBC_2.2.5", "GLIBC_2.34"])
            .need("libstdc++.so.6", &["GLIBCXX_3.4.30"])
            .build();
        let f = parsed(&b);
        assert_eq!(f.class, 64);
        assert_eq!(f.machine, 62);
        assert_eq!(f.needed, ["libfoo.so.1", "libc.so.6"]);
        assert_eq!(f.soname.as_deref(), Some("libbar.so.2"));
        assert_eq!(f.runpath, ["$ORIGIN/../lib", "/opt/x"]);
        assert!(f.rpath.is_empty());
        assert_eq!(f.interp.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
        assert_eq!(
            f.version_needs,
            [
                (
                    "libc.so.6".to_string(),
                    vec!["GLIBC_2.2.5".to_string(), "GLIBC_2.34".to_string()]
                ),
                (
                    "libstdc++.so.6".to_string(),
                    vec!["GLIBCXX_3.4.30".to_string()]
                )
            ]
        );
    }

    #[test]
    fn reads_version_definitions_and_elf32() {
        let mut b = ElfBuilder::new()
            .soname("libc.so.6")
            .defs(&["GLIBC_2.2.5", "GLIBC_2.28"]);
        b.class32 = true;
        b.machine = 3;
        let f = parsed(&b.build());
        assert_eq!(f.class, 32);
        assert_eq!(f.machine, 3);
        assert_eq!(f.version_defs, ["GLIBC_2.2.5", "GLIBC_2.28"]);
    }

    #[test]
    fn big_endian_headers_read_big_endian() {
        // ELF32 MSB, ET_EXEC, EM_MIPS (8), no program headers.
        let mut b = vec![0u8; 52];
        b[..4].copy_from_slice(&MAGIC);
        b[4] = 1;
        b[5] = 2;
        b[16..18].copy_from_slice(&2u16.to_be_bytes());
        b[18..20].copy_from_slice(&8u16.to_be_bytes());
        let f = parsed(&b);
        assert!(f.big_endian);
        assert_eq!((f.class, f.e_type, f.machine), (32, 2, 8));
        assert!(!f.dynamic);
    }

    #[test]
    fn malformed_files_are_errors_not_panics() {
        let good = ElfBuilder::new()
            .needed("libfoo.so.1")
            .need("libc.so.6", &["GLIBC_2.34"])
            .defs(&["V1"])
            .build();
        // Every truncation and every single-byte corruption: an error or facts, never a panic.
        for n in 0..good.len() {
            let _ = parse(&good[..n]);
        }
        for i in 0..good.len() {
            for v in [0u8, 0xff, 0x7f] {
                let mut b = good.clone();
                b[i] = v;
                let _ = parse(b.as_slice());
            }
        }
        assert!(parse(b"\x7fELF libc".as_slice()).is_err());
        assert!(parse(b"\x7fELF\x02\x01\x01\0 x86_64 core".as_slice()).is_err());
        assert!(parse(b"#!/bin/sh".as_slice()).is_err());
    }

    #[test]
    fn the_hosts_own_libc_reads() {
        // A real file when the machine has one: definitions include GLIBC_2.2.5.
        let p = std::path::Path::new("/usr/lib/x86_64-linux-gnu/libc.so.6");
        let Ok(bytes) = std::fs::read(p) else { return };
        let f = parsed(&bytes);
        assert!(f.version_defs.iter().any(|v| v == "GLIBC_2.2.5"), "{f:?}");
        assert_eq!(f.soname.as_deref(), Some("libc.so.6"));
    }
    /// Every ELF file under the machine's /usr/bin and /usr/lib parses (run by hand:
    /// `cargo test -p composer --lib check::elf -- --ignored`).
    #[test]
    #[ignore = "reads the whole of /usr/bin and /usr/lib"]
    fn every_elf_file_of_this_machine_parses() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            let Ok(rd) = std::fs::read_dir(dir) else {
                return;
            };
            for e in rd.flatten() {
                let Ok(t) = e.file_type() else { continue };
                if t.is_dir() && !e.path().starts_with("/usr/lib/debug") {
                    walk(&e.path(), out);
                } else if t.is_file() {
                    out.push(e.path());
                }
            }
        }
        let mut files = Vec::new();
        walk(std::path::Path::new("/usr/bin"), &mut files);
        walk(std::path::Path::new("/usr/lib"), &mut files);
        let (mut ok, mut bad) = (0, Vec::new());
        for f in files {
            let Ok(bytes) = std::fs::read(&f) else {
                continue;
            };
            if !is_elf(&bytes) {
                continue;
            }
            match parse(bytes.as_slice()) {
                Ok(_) => ok += 1,
                Err(e) => bad.push(format!("{}: {e}", f.display())),
            }
        }
        assert!(
            bad.is_empty(),
            "{ok} parsed, {} failed:\n{}",
            bad.len(),
            bad.join("\n")
        );
        assert!(ok > 100, "{ok}");
    }
}
