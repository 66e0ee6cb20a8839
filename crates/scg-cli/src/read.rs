//! Bounded reading of user files: the one place the `scg` binary reads a file a user names
//! (a scenario, the files a scenario references, ACN sessions, orders, prices, flex assets).
//!
//! Why one place: every input is hostile until read. Here a file must be a regular file (no
//! directory, device such as `/dev/zero`, FIFO or socket: the type is checked on the path before
//! opening, the file is opened non-blocking so a FIFO swapped in meanwhile cannot hang us, and
//! the type is checked again on the open descriptor), at most [`MAX_FILE_BYTES`] on disk and,
//! when gzip-compressed, at most [`MAX_TEXT_BYTES`] inflated (read through `take(cap + 1)`, so a
//! gzip bomb stops at the cap). Files a scenario names must resolve (symlinks followed) inside
//! the scenario's directory; only paths typed on the command line may point anywhere.
//!
//! It must never echo file content in an error: messages name the path and what was wrong,
//! never the bytes (a path such as `/proc/self/environ` must not leak through an error).

use anyhow::{Context, bail};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest file read from disk, bytes (256 MiB): a year of 1-minute data in CSV is ~20 MiB, the
/// full ACN-Data export ~60 MiB, so this leaves room while keeping a run far below the memory
/// budget (docs/scenario.md).
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Largest text after gzip decompression, bytes (256 MiB, the same as on disk).
pub const MAX_TEXT_BYTES: u64 = 256 * 1024 * 1024;

/// Where a path came from, which decides where it may point.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Typed by the user on the command line: any regular file the user can read.
    CommandLine,
    /// Named inside a scenario file: relative paths resolve against `base_dir`, and the
    /// resolved file must lie inside it.
    Scenario {
        /// The scenario file's directory.
        base_dir: PathBuf,
    },
}

/// Read a user file as UTF-8 text within the bounds above (gunzipping it when it starts with
/// the gzip magic bytes).
pub fn read_text(path: &Path, origin: &Origin) -> anyhow::Result<String> {
    read_text_capped(path, origin, MAX_FILE_BYTES, MAX_TEXT_BYTES)
}

/// [`read_text`] with explicit caps (tests use small ones).
pub fn read_text_capped(
    path: &Path,
    origin: &Origin,
    max_file_bytes: u64,
    max_text_bytes: u64,
) -> anyhow::Result<String> {
    let full = resolve(path, origin)?;
    let shown = full.display().to_string();
    let bytes = read_regular_file(&full, max_file_bytes)?;
    let text = if bytes.starts_with(&[0x1f, 0x8b]) {
        inflate(&bytes, max_text_bytes).with_context(|| format!("{shown}: gzip"))?
    } else {
        bytes
    };
    String::from_utf8(text).map_err(|e| {
        anyhow::anyhow!(
            "{shown}: not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// The path to open: relative scenario paths against the scenario's directory, and a scenario
/// path must stay inside that directory once symlinks and `..` are resolved.
fn resolve(path: &Path, origin: &Origin) -> anyhow::Result<PathBuf> {
    match origin {
        Origin::CommandLine => Ok(path.to_path_buf()),
        Origin::Scenario { base_dir } => {
            let full = if path.is_absolute() {
                path.to_path_buf()
            } else {
                base_dir.join(path)
            };
            let base = canonical(base_dir)?;
            let real = canonical(&full)?;
            if !real.starts_with(&base) {
                bail!(
                    "{}: a scenario may only name files inside its own directory ({}); \
                     this path resolves to {} (pass files outside it on the command line \
                     or copy them next to the scenario)",
                    path.display(),
                    base.display(),
                    real.display()
                );
            }
            Ok(full)
        }
    }
}

fn canonical(path: &Path) -> anyhow::Result<PathBuf> {
    // An empty base (a scenario given as a bare file name) is the current directory.
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    std::fs::canonicalize(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Why a path is not a regular file, in words.
fn kind(ft: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if ft.is_char_device() || ft.is_block_device() {
            return "a device";
        }
        if ft.is_socket() {
            return "a socket";
        }
    }
    if ft.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

fn check_metadata(shown: &str, meta: &std::fs::Metadata, max_bytes: u64) -> anyhow::Result<()> {
    if !meta.file_type().is_file() {
        bail!(
            "{shown}: is {}, expected a regular file",
            kind(meta.file_type())
        );
    }
    if meta.len() > max_bytes {
        bail!(
            "{shown}: {} bytes, more than the {} bytes (≈{} MiB) scg reads from one file",
            meta.len(),
            max_bytes,
            max_bytes / (1024 * 1024)
        );
    }
    Ok(())
}

fn read_regular_file(path: &Path, max_bytes: u64) -> anyhow::Result<Vec<u8>> {
    let shown = path.display().to_string();
    // Before opening: opening a FIFO for reading would block until a writer appears.
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {shown}"))?;
    check_metadata(&shown, &meta, max_bytes)?;
    let file = open_nonblocking(path).with_context(|| format!("cannot read {shown}"))?;
    // Again on the descriptor: the path may have been swapped since the first check.
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read {shown}"))?;
    check_metadata(&shown, &meta, max_bytes)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // `take` bounds a file that grows while we read it.
    file.take(max_bytes + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {shown}"))?;
    if bytes.len() as u64 > max_bytes {
        bail!("{shown}: grew past {max_bytes} bytes while being read");
    }
    Ok(bytes)
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

fn inflate(bytes: &[u8], max_bytes: u64) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .take(max_bytes + 1)
        .read_to_end(&mut out)
        .context("not a valid gzip file")?;
    if out.len() as u64 > max_bytes {
        bail!(
            "inflates to more than {max_bytes} bytes (≈{} MiB), the most scg reads from one file",
            max_bytes / (1024 * 1024)
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("scg-read-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reads_plain_and_gzip_text() {
        let dir = temp_dir("plain");
        std::fs::write(dir.join("a.csv"), "x\n1\n").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"y\n2\n").unwrap();
        std::fs::write(dir.join("b.csv.gz"), gz.finish().unwrap()).unwrap();
        let origin = Origin::Scenario {
            base_dir: dir.clone(),
        };
        assert_eq!(read_text(Path::new("a.csv"), &origin).unwrap(), "x\n1\n");
        assert_eq!(read_text(Path::new("b.csv.gz"), &origin).unwrap(), "y\n2\n");
    }

    #[test]
    fn refuses_escape_from_scenario_dir_without_echoing_content() {
        let dir = temp_dir("escape");
        let inner = dir.join("inner");
        std::fs::create_dir_all(&inner).unwrap();
        std::fs::write(dir.join("secret.txt"), "TOP-SECRET").unwrap();
        let origin = Origin::Scenario { base_dir: inner };
        let e = format!(
            "{:#}",
            read_text(Path::new("../secret.txt"), &origin).unwrap_err()
        );
        assert!(e.contains("inside its own directory"), "{e}");
        assert!(!e.contains("TOP-SECRET"), "{e}");
        // The same file is fine when typed on the command line.
        let text = read_text(&dir.join("secret.txt"), &Origin::CommandLine).unwrap();
        assert_eq!(text, "TOP-SECRET");
    }

    #[test]
    fn refuses_directories_devices_and_oversize() {
        let dir = temp_dir("kinds");
        let e = format!("{:#}", read_text(&dir, &Origin::CommandLine).unwrap_err());
        assert!(e.contains("a directory"), "{e}");
        let e = format!(
            "{:#}",
            read_text(Path::new("/dev/zero"), &Origin::CommandLine).unwrap_err()
        );
        assert!(e.contains("a device"), "{e}");
        std::fs::write(dir.join("big"), vec![b'1'; 100]).unwrap();
        let e = format!(
            "{:#}",
            read_text_capped(&dir.join("big"), &Origin::CommandLine, 99, 99).unwrap_err()
        );
        assert!(e.contains("100 bytes"), "{e}");
    }

    #[test]
    fn stops_a_gzip_bomb_at_the_cap() {
        let dir = temp_dir("bomb");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut gz, &vec![b'0'; 1 << 20]).unwrap();
        std::fs::write(dir.join("bomb.gz"), gz.finish().unwrap()).unwrap();
        let e = format!(
            "{:#}",
            read_text_capped(&dir.join("bomb.gz"), &Origin::CommandLine, 1 << 20, 1000)
                .unwrap_err()
        );
        assert!(e.contains("inflates to more than 1000 bytes"), "{e}");
    }
}
