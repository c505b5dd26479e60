//! The shared-memory region of counters: created by the master (`memfd_create`), inherited by
//! every worker as a file descriptor, mapped `MAP_SHARED` by each. Workers add to their own
//! slot with atomic operations; the master (and `portico ctl status`, through the master)
//! reads every slot and sums them, without asking the workers anything.
//!
//! Layout, version 1 (all integers little-endian as the machine writes them, 8-byte cells):
//!
//! ```text
//! offset 0     header: magic "PORTICO\0" (u64), version (u64), slots (u64),
//!              cells per slot (u64), 4 reserved cells          = 8 cells, 64 bytes
//! offset 64    slot 0: counters of workers that have exited (folded in by the master)
//! offset 64+S  slot 1 … slot SLOTS-1: one live worker each (S = CELLS_PER_SLOT × 8 bytes)
//! ```
//!
//! A slot is 64 cells (512 bytes, a whole number of cache lines, so workers never share a
//! line); the meaning of each cell is `telemetry::counters::Counter`. A change to the meaning
//! of an existing cell or to the sizes bumps `VERSION`; new counters take unused cells and keep
//! the version (readers ignore cells they do not know). A worker refuses a region whose magic
//! or version differs from its own (a binary upgrade creates a new region).
//!
//! The mapping is made once per process and never unmapped before exit, so the `&[AtomicU64]`
//! handed out lives as long as the [`Region`].

use std::fs::File;
use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies a portico counter region.
const MAGIC: u64 = u64::from_le_bytes(*b"PORTICO\0");
/// Layout version (see the module documentation).
pub const VERSION: u64 = 1;
/// Slots in the region: slot 0 for exited workers, the rest one per live worker.
pub const SLOTS: usize = 256;
/// Cells per slot.
pub const CELLS_PER_SLOT: usize = 64;
const HEADER_CELLS: usize = 8;
const CELLS: usize = HEADER_CELLS + SLOTS * CELLS_PER_SLOT;
const BYTES: usize = CELLS * 8;

/// A mapped counter region.
pub struct Region {
    ptr: NonNull<u8>,
    fd: OwnedFd,
}

// SAFETY: the mapping is plain shared memory accessed only through `AtomicU64` (see
// `cells`); the pointer is never used to hand out non-atomic references.
#[allow(unsafe_code)]
unsafe impl Send for Region {}
// SAFETY: as above: every access is atomic, so sharing between threads is sound.
#[allow(unsafe_code)]
unsafe impl Sync for Region {}

impl Region {
    /// Creates a zeroed region with its header (the master, or a single process).
    pub fn create() -> io::Result<Region> {
        let fd = nix::sys::memfd::memfd_create(
            c"portico-counters",
            nix::sys::memfd::MFdFlags::MFD_CLOEXEC,
        )
        .map_err(io::Error::from)?;
        File::from(fd.try_clone()?).set_len(BYTES as u64)?;
        let region = Region::map(fd)?;
        let cells = region.cells();
        cells[0].store(MAGIC, Ordering::Relaxed);
        cells[1].store(VERSION, Ordering::Relaxed);
        cells[2].store(SLOTS as u64, Ordering::Relaxed);
        cells[3].store(CELLS_PER_SLOT as u64, Ordering::Relaxed);
        Ok(region)
    }

    /// Maps a region the master created (a worker, given the inherited descriptor); refuses
    /// one of another layout.
    pub fn open(fd: OwnedFd) -> io::Result<Region> {
        let len = File::from(fd.try_clone()?).metadata()?.len();
        if len != BYTES as u64 {
            return Err(io::Error::other(format!(
                "counter region has {len} bytes, expected {BYTES}"
            )));
        }
        let region = Region::map(fd)?;
        let cells = region.cells();
        let (magic, version) = (
            cells[0].load(Ordering::Relaxed),
            cells[1].load(Ordering::Relaxed),
        );
        if magic != MAGIC || version != VERSION {
            return Err(io::Error::other(format!(
                "counter region version {version} (magic {magic:#x}); this binary uses {VERSION}"
            )));
        }
        Ok(region)
    }

    #[allow(unsafe_code)]
    fn map(fd: OwnedFd) -> io::Result<Region> {
        let len = NonZeroUsize::new(BYTES).expect("the region is not empty");
        // SAFETY: a fresh shared mapping of a memfd we hold, `BYTES` long (its size was checked
        // or set above); no other mapping in this process aliases it, and it is only accessed
        // through atomics (`cells`).
        let ptr = unsafe {
            nix::sys::mman::mmap(
                None,
                len,
                nix::sys::mman::ProtFlags::PROT_READ | nix::sys::mman::ProtFlags::PROT_WRITE,
                nix::sys::mman::MapFlags::MAP_SHARED,
                &fd,
                0,
            )
        }
        .map_err(io::Error::from)?;
        Ok(Region {
            ptr: ptr.cast(),
            fd,
        })
    }

    /// The descriptor to hand to workers.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Every cell of the region.
    #[allow(unsafe_code)]
    fn cells(&self) -> &[AtomicU64] {
        // SAFETY: the mapping is `BYTES` long, page-aligned (so aligned for u64), lives until
        // the process exits (never unmapped), and `AtomicU64` has the size, alignment and bit
        // validity of `u64`. All processes touch it only through atomic operations.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<AtomicU64>(), CELLS) }
    }

    /// The cells of slot `index` (0 = exited workers).
    pub fn slot(&self, index: usize) -> &[AtomicU64] {
        let start = HEADER_CELLS + index.min(SLOTS - 1) * CELLS_PER_SLOT;
        &self.cells()[start..start + CELLS_PER_SLOT]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_mapping_sees_the_first_ones_counts() {
        let master = Region::create().unwrap();
        let fd = master.fd().try_clone_to_owned().unwrap();
        let worker = Region::open(fd).unwrap();
        worker.slot(3)[5].fetch_add(7, Ordering::Relaxed);
        worker.slot(3)[5].fetch_add(1, Ordering::Relaxed);
        assert_eq!(master.slot(3)[5].load(Ordering::Relaxed), 8);
        assert_eq!(master.slot(2)[5].load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_region_of_another_layout_is_refused() {
        let master = Region::create().unwrap();
        master.cells()[1].store(VERSION + 1, Ordering::Relaxed);
        let fd = master.fd().try_clone_to_owned().unwrap();
        let err = Region::open(fd).err().expect("refused");
        assert!(err.to_string().contains("version"), "{err}");
        let not_a_region =
            nix::sys::memfd::memfd_create(c"other", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
                .unwrap();
        assert!(Region::open(not_a_region).is_err());
    }
}
