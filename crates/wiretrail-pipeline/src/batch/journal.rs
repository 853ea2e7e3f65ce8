//! The batch checkpoint as an append-only journal (JSON lines).
//!
//! Line 1 is the [`JournalHeader`] (which run the journal belongs to); every
//! further line is one [`ChunkRecord`], appended when its chunk is finished.
//! Recording a chunk costs one small `write` (and an `fsync`), whatever the
//! number of chunks already done: a day in 1-minute chunks no longer
//! rewrites the whole list 1440 times.
//!
//! A kill (or power loss) can leave the last line torn: a line that does
//! not end in `\n`, or a last line that does not parse. It is dropped with a
//! warning and cut off the file, so its chunk is simply redone (its output
//! file is written atomically and has a deterministic name, so redoing it
//! changes nothing). A bad line anywhere else is corruption and an error.
//!
//! Format 2 (this one) is not the pretty-printed single object of format 1,
//! which is refused with a hint (`--fresh`): format-1 runs split incidents at
//! chunk boundaries, so their chunk reports cannot be mixed with these.

use crate::files::{write_atomic, WriteError};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const FORMAT: &str = "wiretrail-batch-journal";
pub const VERSION: u32 = 2;

/// What the checkpoint holds: the run it belongs to and its finished chunks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub version: u32,
    /// Identifies the run: range, chunk size, log source and nodes.
    pub fingerprint: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub chunk_s: i64,
    pub completed: Vec<ChunkRecord>,
}

/// One finished chunk (one line of the journal).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkRecord {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Relative to the output directory; `None` when the chunk had no errors.
    pub file: Option<String>,
    /// Errors analysed, carried ones included.
    pub errors: u64,
    pub incidents: u64,
    /// The stamp of the last error this chunk carried over its end (the
    /// end of a burst that started in it); `None` when it carried none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carried_until: Option<DateTime<Utc>>,
}

/// Whether a run takes up the journal it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// Resume from the journal when it is this run's (refuse another run's).
    #[default]
    Resume,
    /// Ignore (and replace) whatever journal is there (`--fresh`).
    Fresh,
}

/// Whether an appended record is flushed to the disk before going on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// `fsync` now: the record names an output file.
    Synced,
    /// Left to the next synced append or [`Journal::sync`].
    Buffered,
}

/// A checkpoint that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file could not be read, written or synced.
    #[error("checkpoint {}: {what}", path.display())]
    Io {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The file is another run's journal, of another format, or damaged.
    #[error("checkpoint {}: {why}", path.display())]
    Invalid { path: PathBuf, why: String },
    #[error(transparent)]
    Write(#[from] WriteError),
}

/// The first line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalHeader {
    pub format: String,
    pub version: u32,
    /// Identifies the run: range, chunk size, log source, nodes, settings.
    pub fingerprint: String,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub chunk_s: i64,
}

/// An open journal, positioned for appending.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
}

/// What [`Journal::open`] found.
#[derive(Debug)]
pub struct Opened {
    pub journal: Journal,
    pub checkpoint: Checkpoint,
    /// A torn last line was dropped (say so; its chunk is redone).
    pub warning: Option<String>,
}

fn err(path: &Path, why: impl Into<String>) -> JournalError {
    JournalError::Invalid {
        path: path.into(),
        why: why.into(),
    }
}

fn io<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(std::io::Error) -> JournalError + 'a {
    move |source| JournalError::Io {
        path: path.into(),
        what,
        source,
    }
}

impl Journal {
    /// Open the journal of the run `want` describes, creating it (or, with
    /// [`Start::Fresh`], replacing it) when needed. Refuses a journal of
    /// another run.
    pub fn open(path: &Path, want: &JournalHeader, start: Start) -> Result<Opened, JournalError> {
        let text = match std::fs::read(path) {
            Ok(t) if start == Start::Resume => Some(t),
            Ok(_) => None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(path, "cannot be read")(e)),
        };
        let empty = Checkpoint {
            version: want.version,
            fingerprint: want.fingerprint.clone(),
            since: want.since,
            until: want.until,
            chunk_s: want.chunk_s,
            completed: Vec::new(),
        };
        let Some(text) = text else {
            write_atomic(path, |w| {
                serde_json::to_writer(&mut *w, want).map_err(std::io::Error::other)?;
                w.write_all(b"\n")
            })?;
            return Ok(Opened {
                journal: Journal::append_to(path)?,
                checkpoint: empty,
                warning: None,
            });
        };
        let (completed, torn) = parse(path, &text, want)?;
        let warning = match torn {
            Some((offset, line, len)) => {
                // Cut the torn bytes off, or the next append would glue
                // its record onto them.
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .and_then(|f| f.set_len(offset as u64).and_then(|_| f.sync_all()))
                    .map_err(io(path, "cutting the torn last line"))?;
                Some(format!(
                    "checkpoint {}: line {line} (byte {offset}, {len} bytes) is torn (the run was killed while recording a chunk); ignored, that chunk is redone",
                    path.display()
                ))
            }
            None => None,
        };
        Ok(Opened {
            journal: Journal::append_to(path)?,
            checkpoint: Checkpoint { completed, ..empty },
            warning,
        })
    }

    fn append_to(path: &Path) -> Result<Journal, JournalError> {
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io(path, "opening for append"))?;
        Ok(Journal {
            path: path.into(),
            file,
        })
    }

    /// Record a finished chunk: one line, one `write`, then `fsync` when
    /// [`Durability::Synced`] (a record that names an output file must
    /// survive a power loss; an empty chunk's record may be lost and the
    /// chunk redone for free, so those are synced in bulk by the next
    /// synced append or [`Journal::sync`]).
    pub fn append(
        &mut self,
        rec: &ChunkRecord,
        durability: Durability,
    ) -> Result<(), JournalError> {
        let mut line = serde_json::to_vec(rec).map_err(|e| err(&self.path, e.to_string()))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(io(&self.path, "appending"))?;
        if durability == Durability::Synced {
            self.sync()?;
        }
        Ok(())
    }

    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.file.sync_data().map_err(io(&self.path, "fsync"))
    }
}

/// The records of `text`, and the torn last line if any (byte offset,
/// 1-based line number, length).
#[allow(clippy::type_complexity)]
fn parse(
    path: &Path,
    text: &[u8],
    want: &JournalHeader,
) -> Result<(Vec<ChunkRecord>, Option<(usize, usize, usize)>), JournalError> {
    let first_end = text.iter().position(|&b| b == b'\n');
    let header: Option<JournalHeader> =
        first_end.and_then(|n| serde_json::from_slice(&text[..n]).ok());
    let Some(header) = header.filter(|h| h.format == FORMAT) else {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(text) {
            if v.get("version").and_then(|v| v.as_u64()) == Some(1) {
                return Err(err(
                    path,
                    "a format-1 checkpoint of an older wiretrail (its chunks split incidents at chunk boundaries); pass --fresh to start over",
                ));
            }
        }
        return Err(err(
            path,
            "line 1 is not a wiretrail batch journal header; remove it or pass --fresh",
        ));
    };
    if header.version != VERSION {
        return Err(err(
            path,
            format!(
                "journal format version {} (this wiretrail reads {VERSION}); pass --fresh",
                header.version
            ),
        ));
    }
    if header.fingerprint != want.fingerprint {
        return Err(err(
            path,
            format!(
                "belongs to another run ({} .. {}, other settings); pass --fresh to start over or use another --out",
                header.since, header.until
            ),
        ));
    }
    let mut out = Vec::new();
    let mut offset = first_end.unwrap_or(0) + 1;
    let mut line = 1;
    while offset < text.len() {
        line += 1;
        let rest = &text[offset..];
        let (body, complete) = match rest.iter().position(|&b| b == b'\n') {
            Some(n) => (&rest[..n], true),
            None => (rest, false),
        };
        let last = offset + body.len() + usize::from(complete) >= text.len();
        match serde_json::from_slice::<ChunkRecord>(body) {
            Ok(r) if complete => out.push(r),
            Ok(_) => return Ok((out, Some((offset, line, body.len())))),
            Err(_) if last => return Ok((out, Some((offset, line, body.len())))),
            Err(e) => {
                return Err(err(
                    path,
                    format!("line {line} (byte {offset}) is not a chunk record: {e}; remove the file or pass --fresh"),
                ))
            }
        }
        offset += body.len() + 1;
    }
    Ok((out, None))
}
