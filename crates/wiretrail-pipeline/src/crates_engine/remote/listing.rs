//! One round trip per node: which of `wiretrail` and `tcpdump` the host
//! has, and the directory's files (`find -printf`: size, mtime, name, each
//! record ended by a NUL byte, the one byte a file name cannot hold).

use super::ssh::sh_quote;
use wiretrail_capture::Timestamp;

/// One file as the remote listing shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteFile {
    pub name: String,
    pub size: u64,
    /// Modification time, ns since the epoch (node clock).
    pub mtime: Timestamp,
}

/// A listing: the files, and the names that are not UTF-8 (skipped, and
/// said so: they cannot be named in a report).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Listing {
    pub files: Vec<RemoteFile>,
    pub unusable_names: Vec<String>,
}

/// Parse `find -printf '%s %T@ %f\0'` output: one record per NUL-ended
/// entry, so a name may hold newlines and spaces.
pub fn parse_listing(bytes: &[u8]) -> Result<Listing, String> {
    let mut out = Listing::default();
    for (i, rec) in bytes.split(|&b| b == 0).enumerate() {
        if rec.is_empty() {
            continue;
        }
        let shown = || String::from_utf8_lossy(rec).into_owned();
        let mut it = rec.splitn(3, |&b| b == b' ');
        let (Some(size), Some(mtime), Some(name)) = (it.next(), it.next(), it.next()) else {
            return Err(format!("record {}: {:?}", i + 1, shown()));
        };
        let text = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_string);
        let size: u64 = text(size)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("record {}: size in {:?}", i + 1, shown()))?;
        let mtime = text(mtime)
            .and_then(|m| parse_mtime(&m))
            .ok_or_else(|| format!("record {}: mtime in {:?}", i + 1, shown()))?;
        match std::str::from_utf8(name) {
            Ok(name) => out.files.push(RemoteFile {
                name: name.to_string(),
                size,
                mtime,
            }),
            Err(_) => out
                .unusable_names
                .push(String::from_utf8_lossy(name).into_owned()),
        }
    }
    Ok(out)
}

/// `find`'s `%T@`: seconds with a fraction, to nanoseconds.
fn parse_mtime(m: &str) -> Option<Timestamp> {
    let (secs, frac) = m.split_once('.').unwrap_or((m, "0"));
    let secs: i64 = secs.parse().ok()?;
    let frac9: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let nanos: u32 = frac9.parse().ok()?;
    Timestamp::from_secs_nanos(secs, nanos)
}

/// What the host offers besides a shell, from the listing's round trip.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostTools {
    /// Path of `wiretrail` on the host's `PATH`.
    pub wiretrail: Option<String>,
    /// Path of `tcpdump` (the `PATH`, else `/usr/sbin`, where older Debian
    /// puts it out of a normal user's `PATH`).
    pub tcpdump: Option<String>,
}

/// The one remote command that probes the tools and lists `dir`: `tool`
/// records first (a listing record starts with a digit, so they cannot be
/// confused), then `find`'s, whose exit status is the command's; every
/// record ends with a NUL byte. Run by `sh -c` so a login shell such as
/// fish or csh does not matter.
pub fn listing_command(dir: &str) -> String {
    let script = format!(
        "for t in wiretrail tcpdump /usr/sbin/tcpdump; do p=$(command -v \"$t\" 2>/dev/null) && printf 'tool %s %s\\0' \"${{t##*/}}\" \"$p\"; done; \
         find {}/ -maxdepth 1 -type f -printf '%s %T@ %f\\0'",
        sh_quote(dir)
    );
    format!("sh -c {}", sh_quote(&script))
}

/// Split [`listing_command`]'s output into the tools and the listing.
pub fn parse_probe(out: &[u8]) -> (HostTools, Vec<u8>) {
    let mut tools = HostTools::default();
    let mut listing = Vec::with_capacity(out.len());
    for rec in out.split(|&b| b == 0).filter(|r| !r.is_empty()) {
        let tool = std::str::from_utf8(rec)
            .ok()
            .and_then(|r| r.strip_prefix("tool "))
            .and_then(|r| r.split_once(' '));
        match tool {
            Some(("wiretrail", p)) => {
                tools.wiretrail.get_or_insert_with(|| p.to_string());
            }
            Some(("tcpdump", p)) => {
                tools.tcpdump.get_or_insert_with(|| p.to_string());
            }
            _ => {
                listing.extend_from_slice(rec);
                listing.push(0);
            }
        }
    }
    (tools, listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    #[test]
    fn listing_and_quoting() {
        let l =
            parse_listing(b"1234 1683279187.5000000000 cap 1.pcap\x0099 1683279188 b.pcapng\x00")
                .unwrap()
                .files;
        assert_eq!(
            l[0],
            RemoteFile {
                name: "cap 1.pcap".into(),
                size: 1234,
                mtime: Timestamp::from_nanos(1683279187 * S + S / 2)
            }
        );
        assert_eq!(l[1].mtime, Timestamp::from_nanos(1683279188 * S));
        assert!(parse_listing(b"x y\x00").is_err());
        // D14: names may hold newlines, even ones that look like records;
        // a name that is not UTF-8 is set aside, not fatal.
        let l = parse_listing(b"1 1683279187 a\nb.pcap\x002 1683279188 c.pcap\n3 1683279189 d.pcap\x004 1683279190 \xff.pcap\x00")
            .unwrap();
        assert_eq!(
            l.files.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
            ["a\nb.pcap", "c.pcap\n3 1683279189 d.pcap"]
        );
        assert_eq!(l.unusable_names, ["\u{fffd}.pcap"]);
    }

    #[test]
    fn the_probe_and_the_listing_share_one_output() {
        let (tools, listing) = parse_probe(
            b"tool tcpdump /usr/bin/tcpdump\0tool tcpdump /usr/sbin/tcpdump\x0012 1683279187 cap.pcap\0",
        );
        assert_eq!(
            tools,
            HostTools {
                wiretrail: None,
                tcpdump: Some("/usr/bin/tcpdump".into())
            }
        );
        assert_eq!(parse_listing(&listing).unwrap().files.len(), 1);
        assert!(listing_command("/cap dir").starts_with("sh -c '"));
    }
}
