//! `logs.format`: which proxies' lines a pipeline reads.

use wiretrail_logs::{Formats, SourceFormat};
use wiretrail_pipeline::config::Pipeline;

fn load(format_line: &str) -> Result<Pipeline, String> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("p.toml");
    let text = format!(
        "tz = \"UTC\"\n[logs]\nsource = \"files\"\npaths = [\"logs/error.log\"]\n{format_line}\n[[nodes]]\nname = \"b1\"\ncaptures = \"caps/b1\"\n"
    );
    std::fs::write(&p, text).unwrap();
    Pipeline::load(&p).map_err(|e| e.to_string().replace(&p.display().to_string(), "p.toml"))
}

#[test]
fn every_format_unless_named() {
    assert_eq!(load("").unwrap().log_formats, Formats::ALL);
    assert_eq!(load("format = \"auto\"").unwrap().log_formats, Formats::ALL);
}

#[test]
fn one_format_or_a_list() {
    assert_eq!(
        load("format = \"nginx\"").unwrap().log_formats,
        Formats::only(SourceFormat::Nginx)
    );
    assert_eq!(
        load("format = [\"haproxy\", \"go\"]").unwrap().log_formats,
        Formats::only(SourceFormat::Haproxy).with(SourceFormat::Go)
    );
}

#[test]
fn unknown_names_point_at_the_value() {
    let e = load("format = \"ngnix\"").unwrap_err();
    assert!(e.contains("p.toml:5"), "{e}");
    assert!(e.contains("`ngnix` is not a log format"), "{e}");
    assert!(e.contains("caddy, traefik, nginx, haproxy, envoy"), "{e}");
    let e = load("format = []").unwrap_err();
    assert!(e.contains("reads nothing"), "{e}");
}

#[test]
fn the_shipped_nginx_pipeline_names_its_format() {
    let p =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../pipelines/nginx-demo.toml");
    let p = Pipeline::load(&p).unwrap();
    assert_eq!(p.log_formats, Formats::only(SourceFormat::Nginx));
}
