//! What the workers search an input for: Go's phrase and the other
//! formats' needles. A leaf: the input keeps its searcher, the scan uses it.

use crate::config::Formats;
use crate::formats::Needle;
use crate::record::SourceFormat;
use memchr::memmem::Finder;
use std::sync::LazyLock;

/// What to look for: the phrase everywhere; in a journald JSON export
/// (an input whose first line is a journald record) also `"MESSAGE":[`, a
/// message journald kept as an array of bytes because it is not UTF-8. The
/// choice is made per input, not per block, so the result does not depend on
/// where chunks and blocks begin.
///
/// No search looks for CRI `P` or Docker partial entries: a split line is
/// joined when the part holding the phrase opens it, and runtimes split at
/// 16 KiB while Go's `log` puts the phrase within the first hundred bytes.
/// A part that holds the phrase further on is still found (with its own
/// stamp); only a phrase cut in two by the split is missed.
///
/// The phrase is searched without its trailing `: `: only lines holding the
/// whole phrase are proxy errors (see `parse_line`), and the longer needle
/// gives the search rarer bytes to look for than `proxy error` (which every
/// `proxy[812]:` of a journald log would nearly match): 15 % faster.
static PHRASE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"http: proxy error"));

/// What the workers search one input for: the needles of the formats it
/// holds ([`crate::formats::sniff`], or the formats the configuration
/// names).
#[derive(Debug)]
pub(crate) enum Searcher {
    /// Go's phrase alone (a Go proxy's log): one `memmem`, the fastest.
    Phrase,
    /// Several needles in one pass (Aho-Corasick, SIMD-prefiltered like
    /// ripgrep's literals): Go's phrase when Go is read, and each other
    /// format's needles with the check of the bytes around a hit.
    Many {
        ac: aho_corasick::AhoCorasick,
        checks: Vec<fn(&[u8], usize) -> bool>,
    },
    /// No format at all: nothing is a candidate.
    Nothing,
}

impl Searcher {
    pub(crate) fn new(formats: Formats) -> Searcher {
        let go = formats.contains(SourceFormat::Go);
        let others: Vec<&'static Needle> = crate::formats::needles(formats).collect();
        if others.is_empty() {
            return if go {
                Searcher::Phrase
            } else {
                Searcher::Nothing
            };
        }
        let mut pats: Vec<&'static str> = Vec::with_capacity(others.len() + 1);
        let mut checks: Vec<fn(&[u8], usize) -> bool> = Vec::with_capacity(others.len() + 1);
        if go {
            pats.push("http: proxy error");
            checks.push(|_, _| true);
        }
        for n in others {
            pats.push(n.text);
            checks.push(n.check);
        }
        let ac = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::Standard)
            .build(&pats)
            .expect("the needles are a few short literals");
        Searcher::Many { ac, checks }
    }

    /// Where the first candidate in `hay` is (any byte of its line).
    pub(super) fn find(&self, hay: &[u8]) -> Option<usize> {
        match self {
            Searcher::Phrase => PHRASE.find(hay),
            Searcher::Many { ac, checks } => ac
                .find_overlapping_iter(hay)
                .find(|m| checks[m.pattern().as_usize()](hay, m.start()))
                .map(|m| m.start()),
            Searcher::Nothing => None,
        }
    }
}
