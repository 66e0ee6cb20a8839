//! A large output file (a city's `members.parquet`: gigabytes) written by a thread of its own,
//! bypassing the page cache where the file system allows it (`O_DIRECT`).
//!
//! Why: a buffered `write` copies every byte into the kernel's page cache on the thread that
//! calls it. For a 10,000-member city that copy (5.7 GB) was the largest single cost of the
//! members.parquet encoder's thread in a profile, and the output directory is synced at commit
//! anyway ([`crate::output`]), so the page cache only delays the same disk writes. With
//! `O_DIRECT` the device takes the bytes from our buffers; the writes, in aligned chunks, block
//! a thread that does nothing else. Where the file system refuses `O_DIRECT` (tmpfs, some
//! network file systems), the same thread writes through the page cache.
//!
//! The encoder fills a chunk ([`StreamFile::write`]), hands it over when full and fills a spare
//! one; at most [`MAX_CHUNKS`] chunks exist, so a slow disk holds the encoder back instead of
//! growing memory. The last chunk's unaligned tail is written after `O_DIRECT` is cleared.
//!
//! Must never: reorder or drop a byte, or report success before every byte is written
//! ([`StreamFile::finish`] returns the writer thread's first error).

use std::fs::File;
use std::io::{self, Seek, Write};
use std::path::Path;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Alignment of every direct write's buffer, length and file offset (the largest logical block
/// size of common devices).
const ALIGN: usize = 4096;

/// Bytes per chunk: large writes, few system calls.
const CHUNK_BYTES: usize = 8 << 20;

/// Chunks that exist at once: one filled, one queued, one being written, one spare.
const MAX_CHUNKS: usize = 4;

/// A buffer whose window `start .. start + capacity` is [`ALIGN`]ed.
struct Chunk {
    raw: Vec<u8>,
    start: usize,
    capacity: usize,
    len: usize,
}

impl Chunk {
    fn new(capacity: usize) -> Self {
        let raw = vec![0u8; capacity + ALIGN];
        // Always < ALIGN for bytes; if the platform could not say, the window is unaligned and
        // a direct write fails with EINVAL, which the writer handles.
        let start = raw.as_ptr().align_offset(ALIGN).min(ALIGN);
        Self {
            raw,
            start,
            capacity,
            len: 0,
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }

    /// Copy as much of `buf` as fits; how much.
    fn push(&mut self, buf: &[u8]) -> usize {
        let n = buf.len().min(self.capacity - self.len);
        let at = self.start + self.len;
        self.raw[at..at + n].copy_from_slice(&buf[..n]);
        self.len += n;
        n
    }
}

/// See the module doc.
pub struct StreamFile {
    chunk: Chunk,
    chunk_bytes: usize,
    allocated: usize,
    full: Option<SyncSender<Chunk>>,
    spare: Receiver<Chunk>,
    writer: Option<std::thread::JoinHandle<io::Result<()>>>,
}

impl std::fmt::Debug for StreamFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamFile")
            .field("chunk_bytes", &self.chunk_bytes)
            .finish_non_exhaustive()
    }
}

impl StreamFile {
    /// Create (or truncate) `path`, written directly where the file system allows it.
    pub fn create(path: &Path) -> io::Result<Self> {
        Self::create_with(path, CHUNK_BYTES, true)
    }

    /// [`StreamFile::create`] with chunks of `chunk_bytes` (a multiple of [`ALIGN`]), and
    /// through the page cache when `direct` is false.
    fn create_with(path: &Path, chunk_bytes: usize, direct: bool) -> io::Result<Self> {
        let chunk_bytes = chunk_bytes.div_ceil(ALIGN).max(1) * ALIGN;
        let (file, direct) = open(path, direct)?;
        let (full, full_rx) = sync_channel::<Chunk>(1);
        let (spare_tx, spare) = sync_channel::<Chunk>(MAX_CHUNKS);
        let writer = std::thread::Builder::new()
            .name("output writer".into())
            .spawn(move || write_chunks(file, direct, &full_rx, &spare_tx))?;
        Ok(Self {
            chunk: Chunk::new(chunk_bytes),
            chunk_bytes,
            allocated: 1,
            full: Some(full),
            spare,
            writer: Some(writer),
        })
    }

    /// Hand the current chunk to the writer and take an empty one.
    fn hand_over(&mut self) -> io::Result<()> {
        let next = if self.allocated < MAX_CHUNKS {
            self.allocated += 1;
            Chunk::new(self.chunk_bytes)
        } else {
            match self.spare.recv() {
                Ok(mut c) => {
                    c.len = 0;
                    c
                }
                Err(_) => return Err(self.stopped()),
            }
        };
        let full = std::mem::replace(&mut self.chunk, next);
        let sent = self.full.as_ref().map(|tx| tx.send(full));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => Err(self.stopped()),
        }
    }

    /// The writer thread's error, once it has stopped early.
    fn stopped(&mut self) -> io::Error {
        self.full = None;
        match self.writer.take().map(std::thread::JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => io::Error::other("the output writer thread panicked"),
            _ => io::Error::other("the output writer stopped"),
        }
    }

    /// Write what is left, wait for every byte to be written, and close the file.
    pub fn finish(mut self) -> io::Result<()> {
        if self.chunk.len > 0 {
            let last = std::mem::replace(&mut self.chunk, Chunk::new(0));
            let sent = self.full.as_ref().map(|tx| tx.send(last));
            if !matches!(sent, Some(Ok(()))) {
                return Err(self.stopped());
            }
        }
        self.full = None;
        match self.writer.take().map(std::thread::JoinHandle::join) {
            Some(Ok(done)) => done,
            Some(Err(_)) => Err(io::Error::other("the output writer thread panicked")),
            None => Err(io::Error::other("the output writer stopped")),
        }
    }
}

impl Write for StreamFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.chunk.len == self.chunk.capacity {
            self.hand_over()?;
        }
        Ok(self.chunk.push(buf))
    }

    /// Bytes reach the file in chunks, and the last ones at [`StreamFile::finish`]: a direct
    /// file cannot take a partial chunk in the middle.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for StreamFile {
    /// An unfinished file (the run failed): the writer ends with what it was given.
    fn drop(&mut self) {
        self.full = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Open `path` for writing, with `O_DIRECT` when `direct` and the file system accepts it;
/// whether it is direct.
fn open(path: &Path, direct: bool) -> io::Result<(File, bool)> {
    #[cfg(target_os = "linux")]
    if direct {
        use std::os::unix::fs::OpenOptionsExt;
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        match opened {
            Ok(f) => return Ok((f, true)),
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {}
            Err(e) => return Err(e),
        }
    }
    let _ = direct;
    Ok((File::create(path)?, false))
}

/// The writer thread: each chunk in order, then back as a spare.
fn write_chunks(
    mut file: File,
    mut direct: bool,
    full: &Receiver<Chunk>,
    spare: &SyncSender<Chunk>,
) -> io::Result<()> {
    let mut written = 0u64;
    for chunk in full {
        let bytes = chunk.bytes();
        let aligned = if direct {
            bytes.len() - bytes.len() % ALIGN
        } else {
            bytes.len()
        };
        if let Err(e) = file.write_all(&bytes[..aligned]) {
            // Refused before anything was written (a file system that opens O_DIRECT files but
            // does not write them): through the page cache instead.
            let refused = direct
                && written == 0
                && e.raw_os_error() == Some(libc::EINVAL)
                && file.stream_position().is_ok_and(|at| at == 0);
            if !refused {
                return Err(e);
            }
            clear_direct(&file)?;
            direct = false;
            file.write_all(&bytes[..aligned])?;
        }
        if aligned < bytes.len() {
            // The unaligned tail: only the last chunk has one.
            clear_direct(&file)?;
            direct = false;
            file.write_all(&bytes[aligned..])?;
        }
        written += bytes.len() as u64;
        let _ = spare.try_send(chunk);
    }
    Ok(())
}

fn clear_direct(file: &File) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
        let flags = fcntl_getfl(file)?;
        fcntl_setfl(file, flags - OFlags::DIRECT)?;
    }
    let _ = file;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A fresh directory of this test's own under the system's temporary directory (a real
    /// file system: where `O_DIRECT` is refused the test still checks the buffered path).
    fn scratch(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("scg-stream-file-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Bytes that differ from their neighbours at every offset.
    fn data(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| {
                (i as u64)
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    .rotate_left(17) as u8
            })
            .collect()
    }

    /// Every byte in order, written directly or not, across chunk boundaries, with and without
    /// an unaligned tail, in pieces of many sizes.
    #[test]
    fn a_stream_file_holds_every_byte_in_order() {
        let dir = scratch("order");
        let path = dir.join("f");
        for direct in [true, false] {
            for len in [0, 1, ALIGN, 3 * ALIGN, 5 * 8192 + 77, 200_000] {
                let want = data(len);
                let mut f = StreamFile::create_with(&path, 2 * ALIGN, direct).unwrap();
                let mut at = 0;
                let mut piece = 1;
                while at < want.len() {
                    let end = (at + piece).min(want.len());
                    f.write_all(&want[at..end]).unwrap();
                    at = end;
                    piece = piece * 3 % 10_007 + 1;
                }
                f.finish().unwrap();
                assert_eq!(std::fs::read(&path).unwrap(), want, "{len} bytes, {direct}");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A file dropped unfinished (a failed run) does not hang, and a rewrite replaces it.
    #[test]
    fn an_unfinished_stream_file_is_dropped_cleanly() {
        let dir = scratch("drop");
        let path = dir.join("f");
        let mut f = StreamFile::create_with(&path, ALIGN, true).unwrap();
        f.write_all(&data(10 * ALIGN + 5)).unwrap();
        drop(f);
        let mut f = StreamFile::create(&path).unwrap();
        f.write_all(b"parquet").unwrap();
        f.finish().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"parquet");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
