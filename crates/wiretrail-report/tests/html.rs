//! The HTML report: self-contained, complete, and inert whatever the logs
//! and packets contain.

mod common;

use common::*;
use wiretrail_report::render_html;

fn html(r: &wiretrail_correlate::model::Report) -> String {
    let mut out = Vec::new();
    render_html(r, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

const TAGS: &[&str] = &[
    "!DOCTYPE", "html", "head", "meta", "title", "style", "body", "header", "div", "section", "h1",
    "h2", "h3", "code", "table", "thead", "tbody", "tr", "th", "td", "a", "span", "b", "ul", "li",
    "p", "details", "summary", "svg", "defs", "marker", "path", "g", "rect", "text", "line",
    "circle",
];
const ATTRS: &[&str] = &[
    "lang",
    "charset",
    "http-equiv",
    "content",
    "name",
    "class",
    "id",
    "href",
    "style",
    "title",
    "colspan",
    "open",
    "width",
    "height",
    "viewBox",
    "role",
    "aria-label",
    "x",
    "y",
    "x1",
    "y1",
    "x2",
    "y2",
    "rx",
    "cx",
    "cy",
    "r",
    "d",
    "refX",
    "refY",
    "markerUnits",
    "markerWidth",
    "markerHeight",
    "orient",
    "fill",
    "marker-end",
    "stroke-dasharray",
    "html",
];

/// Every tag in the document, as (name, [(attr, value)]). Attribute values
/// are double-quoted and escaped by the renderer, so `>` never occurs inside
/// one; `<style>` content holds no `<`.
fn tags(doc: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find('<') {
        let after = &rest[i + 1..];
        let end = after.find('>').expect("unclosed tag");
        let inner = &after[..end];
        rest = &after[end + 1..];
        if inner.starts_with('/') {
            continue;
        }
        let (name, mut attrs_s) = inner.split_once([' ', '\n']).unwrap_or((inner, ""));
        let mut attrs = Vec::new();
        loop {
            attrs_s = attrs_s.trim_start();
            if attrs_s.is_empty() || attrs_s == "/" {
                break;
            }
            let eq = attrs_s
                .find(|c: char| c == '=' || c.is_whitespace())
                .unwrap_or(attrs_s.len());
            let an = &attrs_s[..eq];
            if attrs_s[eq..].starts_with("=\"") {
                let v = &attrs_s[eq + 2..];
                let close = v.find('"').expect("unterminated attribute");
                attrs.push((an.to_owned(), v[..close].to_owned()));
                attrs_s = &v[close + 1..];
            } else {
                attrs.push((an.to_owned(), String::new()));
                attrs_s = &attrs_s[eq..];
            }
        }
        out.push((name.to_owned(), attrs));
    }
    out
}

fn assert_inert(doc: &str) {
    for (name, attrs) in tags(doc) {
        assert!(TAGS.contains(&name.as_str()), "unexpected element <{name}>");
        for (a, v) in attrs {
            assert!(
                ATTRS.contains(&a.as_str()),
                "unexpected attribute {a}={v:?} on <{name}>"
            );
            if a == "href" {
                assert!(v.starts_with('#'), "external link {v}");
            }
            if a == "marker-end" {
                assert!(v.starts_with("url(#"), "{v}");
            }
        }
    }
    for banned in [
        "http://", "https://", "@import", "url(http", "<script", "<img", "<link", "<iframe",
    ] {
        assert!(!doc.contains(banned), "found {banned:?}");
    }
}

#[test]
fn seed_report_is_self_contained_and_complete() {
    let r = two_incident_report();
    let doc = html(&r);
    assert_inert(&doc);
    assert!(doc.starts_with("<!DOCTYPE html>"));
    assert!(
        doc.contains(r#"content="default-src &#x27;none&#x27;"#)
            || doc.contains("default-src 'none'")
    );
    // Incident list links to both incidents.
    assert!(
        doc.contains(r##"<a href="#inc-1">1</a>"##) && doc.contains(r##"<a href="#inc-2">2</a>"##)
    );
    assert!(doc.contains(r#"<section class="incident" id="inc-1">"#));
    // Ladders, one per incident, with the lanes.
    assert_eq!(doc.matches(r#"<svg class="ladder""#).count(), 2);
    for lane in ["client", "proxy", "backend-01", "backend-02", "backend-03"] {
        // Lane names are the only text at y=25 in a ladder.
        assert!(doc.contains(&format!(r#"y="25">{lane}</text>"#)), "{lane}");
    }
    assert!(
        doc.contains(">stray: no handshake</text>") && doc.contains(">owner: saw handshake</text>")
    );
    // Marks: stray segment, RSTs with crosses, duplicates folded in, retransmission badge, the 502.
    assert!(doc.contains(r#"<g class="ev stray">"#));
    assert!(doc.matches(r#"<path class="cross""#).count() >= 3);
    assert!(doc.contains(">×2</text>"));
    assert!(doc.contains(r#"<g class="badge rtx">"#));
    assert!(doc.contains("502 · [1]"));
    assert!(doc.contains("s later ⋯"), "clock jumps are shown");
    // The table lists every event of the seed incident.
    let seed_events = r.incidents[0].timeline.len();
    let inc1 = &doc[doc.find(r#"id="inc-1""#).unwrap()..doc.find(r#"id="inc-2""#).unwrap()];
    let rows = inc1.matches("<tr class=\"").count();
    assert_eq!(rows, seed_events);
    // Findings with evidence, log lines, clock offsets.
    assert!(inc1.contains("003.cap</td><td class=\"num mono\">3113700</td>"));
    assert!(doc.contains("+0.012300 s"));
    assert!(inc1.contains("use of closed network connection"));
    assert!(doc.contains("truncated last record"));
}

#[test]
fn hostile_content_stays_text() {
    let doc = html(&hostile_report());
    assert_inert(&doc);
    for h in HOSTILE {
        assert!(!doc.contains(h), "raw hostile string in output: {h:?}");
    }
    assert!(
        doc.contains("&lt;script&gt;alert(&#x27;xss1&#x27;)&lt;&#x2F;script&gt;")
            || doc.contains("&lt;script&gt;alert(&#x27;xss1&#x27;)&lt;/script&gt;")
    );
    assert!(doc.contains("&lt;/style&gt;&lt;b id=&quot;xss3&quot;&gt;"));
    assert!(!doc.contains('\u{202e}') && doc.contains("evil\\u{202e}gnp.exe"));
    assert!(!doc
        .chars()
        .any(|c| (c < ' ' && c != '\n') || ('\u{7f}'..='\u{9f}').contains(&c)));
    // Attribute contexts: the hostile file name lands in title="..." escaped.
    assert!(
        doc.contains(
            r#"title="/captures/&quot;&gt;&lt;img src=x onerror=alert(&#x27;xss2&#x27;)&gt;"#
        ),
        "attribute escaping"
    );
}

#[test]
fn large_incident_caps_the_ladder_and_keeps_the_table() {
    let r = big_report(2000);
    let n = r.incidents[0].timeline.len();
    let doc = html(&r);
    eprintln!("{n} events -> {} bytes of HTML", doc.len());
    assert_inert(&doc);
    assert!(doc.contains("the ladder draws at most 300"));
    let arrows = doc.matches(r#"<line class="arrow""#).count();
    assert_eq!(arrows, 300);
    assert!(doc.contains("events not drawn (see the table)"));
    assert_eq!(doc.matches("<tr class=\"").count(), n);
    assert!(
        doc.contains(&format!("<details><summary>Timeline ({n} events")),
        "large tables start collapsed"
    );
    // The telling events survive the cap.
    for frame in ["#3113698 ", "#3113700 ", "#3841966 "] {
        assert!(doc.contains(frame), "{frame}");
    }
}

#[test]
fn json_round_trips() {
    let r = two_incident_report();
    let mut out = Vec::new();
    wiretrail_report::render_json(&r, &mut out).unwrap();
    assert!(out.ends_with(b"}\n"));
    let back: wiretrail_correlate::model::Report = serde_json::from_slice(&out).unwrap();
    assert_eq!(back, r);
}

/// With the proxy's own capture, its packets are stubs at the proxy lane
/// (the receiving node is unknown from there), not a lane of their own.
#[test]
fn proxy_capture_draws_stubs_not_a_lane() {
    use wiretrail_capture::Direction;
    use wiretrail_correlate::model::{IncidentNode, NodeRole};
    let mut r = seed_report();
    let inc = &mut r.incidents[0];
    inc.nodes.insert(
        0,
        IncidentNode {
            name: "proxy-01".into(),
            role: NodeRole::Proxy,
            saw_connection: true,
            covered: true,
        },
    );
    let t = inc.timeline[1].t_ns - wiretrail_capture::Duration::from_micros(20);
    inc.timeline.push(pkt(
        t,
        "proxy-01",
        "/captures/proxy/p.pcapng",
        9,
        Direction::ToBackend,
        wiretrail_capture::TcpFlags::SYN,
        0,
        0,
        0,
        64240,
        Some(1825820041),
        None,
        vec![],
    ));
    inc.timeline.sort_by_key(|e| e.t_ns);
    let doc = html(&r);
    assert_inert(&doc);
    assert!(
        !doc.contains(">proxy-01</text>"),
        "the proxy capture is not a lane"
    );
    let ev = doc.find("proxy-01 #9 ").expect("proxy capture drawn");
    let g = &doc[doc[..ev].rfind("<g class=\"ev").unwrap()..ev];
    assert!(g.contains(r#"stroke-dasharray="6 3""#), "stub arrow: {g}");
}
