//! The agent's log, bounded while it runs. A client-started agent's stderr is `agent.log`
//! (see stagepass-client's launcher), and a flood of refused requests or failing accepts must
//! not fill the disk with it, so every write first checks the file's size and, past the cap,
//! keeps only its last part.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
#[cfg(unix)]
use std::os::fd::AsFd as AsOwnable;
#[cfg(unix)]
use std::os::unix::fs::FileExt;
#[cfg(windows)]
use std::os::windows::fs::FileExt;
#[cfg(windows)]
use std::os::windows::io::AsHandle as AsOwnable;
use std::sync::Arc;

/// A writer for `tracing_subscriber` (`.with_writer(log.clone())`): stderr, kept under
/// [`BoundedLog::CAP`] when stderr is a regular file. A terminal or a pipe is written as is.
#[derive(Clone)]
pub struct BoundedLog {
    file: Arc<File>,
    cap: u64,
}

impl BoundedLog {
    /// The most the log may hold.
    pub const CAP: u64 = 1 << 20;

    /// Writes to this process's stderr (through a duplicate of the descriptor, which shares
    /// its file and offset).
    pub fn stderr() -> std::io::Result<BoundedLog> {
        #[cfg(unix)]
        let fd = std::io::stderr().as_fd().try_clone_to_owned()?;
        #[cfg(windows)]
        let fd = std::io::stderr().as_handle().try_clone_to_owned()?;
        Ok(BoundedLog::new(File::from(fd), BoundedLog::CAP))
    }

    fn new(file: File, cap: u64) -> BoundedLog {
        BoundedLog {
            file: Arc::new(file),
            cap,
        }
    }

    /// Past the cap, keeps the last quarter (from a line start) behind a note saying so.
    fn bound(&self, incoming: usize) -> std::io::Result<()> {
        let meta = self.file.metadata()?;
        if !meta.is_file() || meta.len() + incoming as u64 <= self.cap {
            return Ok(());
        }
        let keep = self.cap / 4;
        let mut tail = vec![0; usize::try_from(keep).unwrap_or(0)];
        // Readable when the launcher opened it so; otherwise the cap holds all the same.
        let read = read_at(&self.file, &mut tail, meta.len().saturating_sub(keep)).unwrap_or(0);
        tail.truncate(read);
        let from = tail
            .iter()
            .position(|&byte| byte == b'\n')
            .map_or(tail.len(), |newline| newline + 1);
        let mut file = &*self.file;
        file.set_len(0)?;
        // With O_APPEND (how the launcher opens it) the next write lands at the new end
        // anyway; without it, the offset must go back too or the file turns sparse.
        file.seek(SeekFrom::Start(0))?;
        let note = format!(
            "[agent.log reached {} bytes; only its last part was kept]\n",
            meta.len()
        );
        file.write_all(note.as_bytes())?;
        file.write_all(&tail[from..])
    }
}

#[cfg(unix)]
fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> std::io::Result<usize> {
    file.read_at(buffer, offset)
}

/// Moves the file's offset, which the next write of an append-mode handle ignores.
#[cfg(windows)]
fn read_at(file: &File, buffer: &mut [u8], offset: u64) -> std::io::Result<usize> {
    file.seek_read(buffer, offset)
}

impl Write for BoundedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Logging must go on even when the size cannot be checked.
        let _ = self.bound(buf.len());
        (&*self.file).write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        (&*self.file).flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BoundedLog {
    type Writer = BoundedLog;

    fn make_writer(&'a self) -> BoundedLog {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::fs::OpenOptions;

    use super::*;

    #[test]
    fn a_flood_of_lines_keeps_the_file_under_the_cap_with_its_latest_lines() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("agent.log");
        // As the launcher opens it: readable, so the latest lines can be kept.
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .unwrap();
        let mut log = BoundedLog::new(file, 64 * 1024);
        for line in 0..50_000 {
            writeln!(log, "WARN accept failed: Too many open files ({line})").unwrap();
        }
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.len() <= 64 * 1024, "{} bytes", text.len());
        assert!(text.ends_with("(49999)\n"));
        assert!(text.contains("only its last part was kept"));
        // Whole lines only after the note.
        let after_note = text.lines().nth(1).unwrap();
        assert!(after_note.starts_with("WARN accept failed"), "{after_note}");
    }
}
