//! Packet captures, as operators actually keep them: rotated pcap and pcapng
//! files (plain, `.gz`, `.zst`) per node, tens of gigabytes a day.
//!
//! This crate reads them (every link type a Linux capture box produces),
//! catalogs each node's files by their true time span (cached, so a re-run
//! plans without reading packets), extracts every packet of many flows in a
//! single pass per file, and writes merged pcapng slices (one interface per
//! node).
//!
//! It does not interpret TCP conversations (that is `wiretrail-correlate`)
//! and does no network I/O.

pub mod catalog;
pub mod decode;
pub mod extract;
pub mod obs;
pub mod pcapng;
pub mod problem;
pub mod query;
pub mod read;
pub mod time;

pub use obs::{Direction, LinkInfo, PacketObs, SeqNumber, TcpFlags, TcpOpts};
pub use query::{FlowQuery, FlowTarget};
pub use time::{Duration, Timestamp};
