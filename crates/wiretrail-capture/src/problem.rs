//! What went wrong with a node's captures, typed: the report must say which
//! file, where in it, and what it means for the time the file covered.
//!
//! Two things are kept apart:
//! - a [`Loss`]: capture data for a stretch of time is gone (an unreadable,
//!   truncated, corrupt or missing rotation). Packets there are *unknown*;
//!   the node does not cover that stretch.
//! - a [`CaptureProblem`]: everything worth telling, losses included (kind
//!   [`ProblemKind::CaptureGap`]), plus sources that gave nothing, records
//!   that did not decode, files still being written, cache trouble.

use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// What kind of trouble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Capture data of a stretch of time is lost (see [`Loss`]).
    CaptureGap,
    /// A configured source (directory, glob, file) gave nothing usable.
    UnusableSource,
    /// Part of a file could not be decoded: skipped and counted.
    Undecodable,
    /// The file is still being written: what comes after the read is not in this run.
    Growing,
    /// The index cache could not be read or written (the run went on without it).
    Cache,
}

/// One problem, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureProblem {
    pub kind: ProblemKind,
    /// The node, when the problem belongs to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The file, directory or pattern.
    pub path: String,
    /// Byte offset in the file (decompressed stream for `.gz`/`.zst`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The stretch of time affected (capture gaps), node clock, exclusive
    /// bounds: packets strictly between them are unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub span: Option<(Timestamp, Timestamp)>,
    /// One line: what happened and what it means.
    pub message: String,
}

impl CaptureProblem {
    pub fn new(kind: ProblemKind, path: impl Into<String>, message: impl Into<String>) -> Self {
        CaptureProblem {
            kind,
            node: None,
            path: path.into(),
            offset: None,
            span: None,
            message: message.into(),
        }
    }

    pub fn at(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    pub fn of_node(mut self, node: &str) -> Self {
        self.node = Some(node.to_string());
        self
    }
}

impl std::fmt::Display for CaptureProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(n) = &self.node {
            write!(f, "{n}: ")?;
        }
        match self.offset {
            Some(o) => write!(f, "{} @{o}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

/// Why capture data is lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossReason {
    /// The file exists but cannot be read (permission, I/O error).
    Unreadable,
    /// The file ends inside a record and nobody is writing it any more.
    Truncated,
    /// A rotation is missing from a numbered or timed series.
    Missing,
    /// The header or records are not a capture we can read.
    Corrupt,
}

impl LossReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LossReason::Unreadable => "unreadable",
            LossReason::Truncated => "truncated",
            LossReason::Missing => "missing",
            LossReason::Corrupt => "corrupt",
        }
    }
}

/// A stretch of a node's capture known to be lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Loss {
    /// The file the data was (or, for a missing rotation, would be) in.
    pub file: PathBuf,
    /// Node clock, ns: packets strictly between the bounds are unknown.
    /// `Timestamp::MIN` / `Timestamp::MAX` stand for "no bound on that side"; `None`
    /// when nothing bounds it at all (a lone unreadable file): it may have
    /// held any time.
    pub span: Option<(Timestamp, Timestamp)>,
    pub reason: LossReason,
    /// Byte offset where the damage starts, when it is inside a file.
    pub offset: Option<u64>,
    /// What happened ("permission denied", "cut inside a record at byte 4096").
    pub detail: String,
}
