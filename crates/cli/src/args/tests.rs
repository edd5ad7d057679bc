//! Data-driven tests of the argument parsers, including the error messages users see.

use slipway_api_types::FormationQuantity::{Absolute, Relative};
use slipway_api_types::{FormationQuantity, FormationUpdateItem};

use super::*;

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

#[test]
fn config_pairs() {
    type Expected = Result<Vec<(&'static str, &'static str)>, &'static str>;
    let cases: Vec<(&[&str], Expected)> = vec![
        (&["FOO=bar"], Ok(vec![("FOO", "bar")])),
        (&["FOO=bar", "BAZ=qux"], Ok(vec![("FOO", "bar"), ("BAZ", "qux")])),
        (&["FOO="], Ok(vec![("FOO", "")])),
        (&["URL=a=b=c"], Ok(vec![("URL", "a=b=c")])),
        (&["FOO=1", "FOO=2"], Ok(vec![("FOO", "2")])),
        (&["MSG=hello world"], Ok(vec![("MSG", "hello world")])),
        (&["FOO"], Err("FOO is invalid. Must be in the format FOO=bar.")),
        (&["A=1", "B"], Err("B is invalid. Must be in the format FOO=bar.")),
        (&["=bar"], Err("Invalid config var key \"\": keys must match ^[A-Za-z_][A-Za-z0-9_]*$ (start with a letter or underscore, then only letters, digits and underscores).")),
        (&["MY-KEY=1"], Err("Invalid config var key \"MY-KEY\": keys must match ^[A-Za-z_][A-Za-z0-9_]*$ (start with a letter or underscore, then only letters, digits and underscores).")),
        // The core's rule: a key that cannot be a shell variable is refused before it is sent.
        (&["1A=x"], Err("Invalid config var key \"1A\": keys must match ^[A-Za-z_][A-Za-z0-9_]*$ (start with a letter or underscore, then only letters, digits and underscores).")),
        (&[], Err("No config vars given. Usage: slipway config:set KEY1=VALUE1 [KEY2=VALUE2 ...] -a APP")),
    ];
    for (args, expected) in cases {
        let got = parse_config_pairs(&strings(args))
            .map(|pairs| {
                pairs
                    .into_iter()
                    .map(|(k, v)| (String::from(k), v))
                    .collect::<Vec<_>>()
            })
            .map_err(|e| e.to_string());
        let expected = expected
            .map(|pairs| {
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect::<Vec<_>>()
            })
            .map_err(str::to_owned);
        assert_eq!(got, expected, "args {args:?}");
    }
}

#[test]
fn config_keys() {
    assert_eq!(
        parse_config_keys(&strings(&["FOO", "BAR"])).unwrap(),
        ["FOO", "BAR"]
    );
    assert_eq!(
        parse_config_keys(&strings(&["FOO=bar"]))
            .unwrap_err()
            .to_string(),
        "Invalid config var key \"FOO=bar\": keys must match ^[A-Za-z_][A-Za-z0-9_]*$ (start with a letter or underscore, then only letters, digits and underscores)."
    );
    assert!(parse_config_keys(&strings(&["1A"])).is_err());
    assert!(parse_config_keys(&[]).is_err());
}

#[test]
fn scale_args() {
    fn item(t: &str, q: FormationQuantity, size: Option<&str>) -> FormationUpdateItem {
        FormationUpdateItem {
            process_type: t.to_owned(),
            quantity: Some(q),
            size: size.map(str::to_owned),
            dyno_size: None,
        }
    }
    let cases: Vec<(&str, Result<FormationUpdateItem, &str>)> = vec![
        ("web=2", Ok(item("web", Absolute(2), None))),
        ("web=0", Ok(item("web", Absolute(0), None))),
        ("worker+1", Ok(item("worker", Relative(1), None))),
        ("worker-1", Ok(item("worker", Relative(-1), None))),
        ("web=+2", Ok(item("web", Relative(2), None))),
        ("web=2:Standard-2X", Ok(item("web", Absolute(2), Some("Standard-2X")))),
        ("web=2:standard-2x", Ok(item("web", Absolute(2), Some("Standard-2X")))),
        ("web=1:2X", Ok(item("web", Absolute(1), Some("Standard-2X")))),
        ("web=1:eco", Ok(item("web", Absolute(1), Some("Eco")))),
        ("worker+1:Standard-2X", Ok(item("worker", Relative(1), Some("Standard-2X")))),
        ("clock-worker=1", Ok(item("clock-worker", Absolute(1), None))),
        ("clock-worker+3", Ok(item("clock-worker", Relative(3), None))),
        ("web=abc", Err("Invalid dyno quantity in \"web=abc\": \"abc\" is not a whole number")),
        ("web=1.5", Err("Invalid dyno quantity in \"web=1.5\": \"1.5\" is not a whole number")),
        ("web", Err("\"web\" is not a valid scale argument: use TYPE=N, TYPE+N or TYPE-N, optionally with :SIZE (e.g. web=2, worker+1, web=1:Standard-2X)")),
        ("web=", Err("\"web=\" is not a valid scale argument: use TYPE=N, TYPE+N or TYPE-N, optionally with :SIZE (e.g. web=2, worker+1, web=1:Standard-2X)")),
        ("=2", Err("\"=2\" is not a valid scale argument: use TYPE=N, TYPE+N or TYPE-N, optionally with :SIZE (e.g. web=2, worker+1, web=1:Standard-2X)")),
        ("web=2:", Err("\"web=2:\" is not a valid scale argument: use TYPE=N, TYPE+N or TYPE-N, optionally with :SIZE (e.g. web=2, worker+1, web=1:Standard-2X)")),
        ("web=1:huge", Err("Unknown dyno size huge. Use one of: eco, basic, standard-1x, standard-2x, performance-m, performance-l.")),
        ("web.1=2", Err("\"web.1=2\" is not a valid scale argument: use TYPE=N, TYPE+N or TYPE-N, optionally with :SIZE (e.g. web=2, worker+1, web=1:Standard-2X)")),
        ("we b=2", Err("\"we b=2\" is not a valid scale argument: use TYPE=N, TYPE+N or TYPE-N, optionally with :SIZE (e.g. web=2, worker+1, web=1:Standard-2X)")),
    ];
    for (arg, expected) in cases {
        let got = parse_scale_args(&strings(&[arg])).map(|mut items| items.remove(0));
        assert_eq!(
            got.map_err(|e| e.to_string()),
            expected.map_err(str::to_owned),
            "arg {arg:?}"
        );
    }
}

#[test]
fn release_versions() {
    let cases = [
        ("v3", Some(3)),
        ("3", Some(3)),
        ("v12", Some(12)),
        ("v0", None),
        ("v", None),
        ("", None),
        ("v-1", None),
        ("v+1", None),
        ("three", None),
        ("V3", None),
    ];
    for (arg, expected) in cases {
        assert_eq!(parse_release_version(arg).ok(), expected, "arg {arg:?}");
    }
    assert_eq!(
        parse_release_version("x").unwrap_err().to_string(),
        "\"x\" is not a release version: use vN or N, e.g. v3"
    );
}

#[test]
fn git_remote_urls() {
    let cases = [
        ("http://127.0.0.1:5000/demo.git", Some("demo")),
        ("https://git.example.com/my-app.git", Some("my-app")),
        ("git@git.example.com:demo.git", Some("demo")),
        ("ssh://git@git.example.com/demo.git\n", Some("demo")),
        ("https://github.com/someone/project", None),
        ("https://host/Bad_Name.git", None),
        ("", None),
    ];
    for (url, expected) in cases {
        assert_eq!(app_from_git_url(url).as_deref(), expected, "url {url:?}");
    }
}
