//! Crash-safe files in the key directory. A key file is written to a
//! temporary file in the same directory (mode 0600 from its creation),
//! flushed to disk, then renamed (or linked) to its final name and the
//! directory flushed, so a process killed at any point leaves either no file
//! under the final name or the whole one, never half a key. The temporary
//! files such a kill leaves behind never end in a final name's suffix, are
//! never read, and are removed by [`sweep_temp_files`] when the ring loads.

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context as _;

/// What a temporary file's name carries after the final name.
const TEMP_MARK: &str = ".tmp.";

/// A temporary file left this long is stale whoever wrote it: a key file
/// takes microseconds to write.
const STALE_AFTER: Duration = Duration::from_secs(60);

/// How a finished temporary file takes its final name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Finish {
    /// Renamed over the final name (names that are unique, like a kid).
    Replace,
    /// Linked to the final name only if none exists: of two processes
    /// creating the same file at once, the first one's stays whole, and the
    /// second gets [`ErrorKind::AlreadyExists`].
    NoClobber,
}

/// Writes `contents` to `path`, readable by its owner only, crash-safely.
pub(super) fn write_private_file(
    path: &Path,
    contents: &[u8],
    finish: Finish,
) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    ensure_dir(dir)?;
    let name = path
        .file_name()
        .and_then(OsStr::to_str)
        .ok_or_else(|| anyhow::anyhow!("{} is not a file name", path.display()))?;
    let temp = dir.join(format!(
        ".{name}{TEMP_MARK}{}.{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let written = write_synced(&temp, contents).and_then(|()| match finish {
        Finish::Replace => std::fs::rename(&temp, path)
            .with_context(|| format!("Failed to move the new key file to {}", path.display())),
        Finish::NoClobber => link_new(&temp, path),
    });
    // After a rename the temporary name is gone; after a link or a failure
    // it is removed here (a kill before this line leaves it to the sweep).
    let _ = std::fs::remove_file(&temp);
    written?;
    sync_dir(dir)
}

/// Creates the key directory if needed, and makes its own entry durable.
fn ensure_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)
        .with_context(|| format!("Failed to create the key directory {}", dir.display()))?;
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        sync_dir(parent)?;
    }
    Ok(())
}

fn write_synced(temp: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(temp)
        .with_context(|| format!("Failed to create {}", temp.display()))?;
    f.write_all(contents)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("Failed to write {}", temp.display()))
}

/// `link(2)` fails when the target exists, which makes it an atomic
/// create-if-absent of a complete file.
fn link_new(temp: &Path, path: &Path) -> anyhow::Result<()> {
    match std::fs::hard_link(temp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            Err(anyhow::Error::new(e).context(format!("{} already exists", path.display())))
        }
        // A file system without hard links: a rename, checked first, is the
        // closest; only a concurrent creator could slip in between.
        Err(_) if !path.exists() => std::fs::rename(temp, path)
            .with_context(|| format!("Failed to move the new key file to {}", path.display())),
        Err(e) => {
            Err(anyhow::Error::new(e).context(format!("Failed to create {}", path.display())))
        }
    }
}

/// Flushes a directory's entries (a rename is durable only once its
/// directory is). Not every platform can open a directory; there the
/// rename's own ordering is all there is.
fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("Failed to flush the key directory {}", dir.display()))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Whether `name` is a temporary file of [`write_private_file`], and if so
/// the id of the process that wrote it.
fn temp_writer(name: &str) -> Option<Option<u32>> {
    let rest = name.strip_prefix('.')?;
    let (_, tail) = rest.rsplit_once(TEMP_MARK)?;
    let (pid, random) = tail.split_once('.')?;
    (random.len() == 16 && random.bytes().all(|b| b.is_ascii_hexdigit())).then(|| pid.parse().ok())
}

/// Whether the process that wrote a temporary file is gone. Only Linux
/// answers through `/proc`; elsewhere the file's age alone decides.
fn writer_gone(pid: Option<u32>) -> bool {
    let proc_fs = Path::new("/proc/self");
    match pid {
        Some(pid) if proc_fs.exists() => {
            pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()
        }
        _ => false,
    }
}

/// Removes the temporary files a killed writer left in `dir`: those whose
/// writer is no longer running, and any older than a minute at `now` (unix
/// seconds). Returns what it removed; a missing directory has nothing to
/// sweep.
pub(super) fn sweep_temp_files(dir: &Path, now: i64) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(now).unwrap_or(0));
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_writer) else {
            continue;
        };
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|at| now.duration_since(at).ok())
            .is_some_and(|age| age >= STALE_AFTER);
        if (stale || writer_gone(pid)) && std::fs::remove_file(entry.path()).is_ok() {
            removed.push(entry.path());
        }
    }
    if !removed.is_empty() {
        let _ = sync_dir(dir);
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_written_file_is_whole_private_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/abc.pem");
        write_private_file(&path, b"first", Finish::Replace).unwrap();
        write_private_file(&path, b"second", Finish::Replace).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(names(&dir.path().join("keys")), ["abc.pem"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn no_clobber_keeps_the_first_file_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("claims.key");
        write_private_file(&path, b"first", Finish::NoClobber).unwrap();
        let err = write_private_file(&path, b"second", Finish::NoClobber).unwrap_err();
        assert!(err
            .chain()
            .filter_map(|e| e.downcast_ref::<std::io::Error>())
            .any(|e| e.kind() == ErrorKind::AlreadyExists));
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        assert_eq!(names(dir.path()), ["claims.key"]);
    }

    #[test]
    fn the_sweep_removes_what_dead_or_old_writers_left_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // A pid no Linux system hands out (above pid_max's ceiling, 2^22).
        let dead = d.join(".abc.pem.tmp.4294967295.00000000000000ff");
        let live = d.join(format!(
            ".def.pem.tmp.{}.00000000000000ff",
            std::process::id()
        ));
        let old_live = d.join(format!(
            ".ghi.pem.tmp.{}.0000000000000aaa",
            std::process::id()
        ));
        for p in [&dead, &live, &old_live] {
            std::fs::write(p, b"half a ke").unwrap();
        }
        // "Now" as the file system tells it: the fresh files' own time.
        let written = std::fs::metadata(&live).unwrap().modified().unwrap();
        let now = written
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + 1;
        let long_ago = written - Duration::from_secs(3600);
        File::options()
            .write(true)
            .open(&old_live)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        for keep in ["abc.pem", "claims.key", ".hidden", ".x.tmp.1.nothex"] {
            std::fs::write(d.join(keep), b"k").unwrap();
        }
        let removed = sweep_temp_files(d, now);
        let mut expected = vec![old_live.clone()];
        if Path::new("/proc/self").exists() {
            expected.push(dead.clone());
        }
        expected.sort();
        let mut removed = removed;
        removed.sort();
        assert_eq!(removed, expected);
        assert!(live.exists());
        assert!(d.join("abc.pem").exists() && d.join(".x.tmp.1.nothex").exists());
        assert!(sweep_temp_files(&d.join("missing"), now).is_empty());
    }
}
