//! Dyno sizes: spellings, limits (today's `DYNO_SIZES` and `DISK_FACTORS` tables) and
//! round-trip properties.

use proptest::prelude::*;

use super::DynoSize;

fn check(input: &str, expected: Option<DynoSize>) {
    let parsed = input.parse::<DynoSize>();
    match expected {
        Some(size) => assert_eq!(parsed, Ok(size), "{input:?}"),
        None => assert_eq!(parsed.map_err(|error| error.size), Err(input.to_owned())),
    }
}

#[test]
fn sizes_parse_in_any_case_and_with_herokus_aliases() {
    check("eco", Some(DynoSize::Eco));
    check("Eco", Some(DynoSize::Eco));
    check("basic", Some(DynoSize::Basic));
    check("standard-1x", Some(DynoSize::Standard1X));
    check("Standard-1X", Some(DynoSize::Standard1X));
    check("STANDARD-2X", Some(DynoSize::Standard2X));
    check("1X", Some(DynoSize::Standard1X));
    check("2x", Some(DynoSize::Standard2X));
    check("performance-m", Some(DynoSize::PerformanceM));
    check("Performance-L", Some(DynoSize::PerformanceL));
    check("", None);
    check("standard", None);
    check("standard-3x", None);
    check("performance-xl", None);
    check("free", None);
    check(" eco", None);
    check("standard_1x", None);
}

#[test]
fn an_unknown_size_says_which_sizes_exist() {
    assert_eq!(
        "huge".parse::<DynoSize>().unwrap_err().to_string(),
        "Unknown dyno size huge. Use one of: eco, basic, standard-1x, standard-2x, performance-m, performance-l."
    );
}

#[test]
fn limits_are_herokus() {
    // (size, memory MB, pids, disk factor, display name): the core's tables before this crate.
    let table = [
        (DynoSize::Eco, 512, 256, 1, "Eco"),
        (DynoSize::Basic, 512, 256, 1, "Basic"),
        (DynoSize::Standard1X, 512, 256, 1, "Standard-1X"),
        (DynoSize::Standard2X, 1024, 512, 2, "Standard-2X"),
        (DynoSize::PerformanceM, 2560, 16384, 4, "Performance-M"),
        (DynoSize::PerformanceL, 14336, 32768, 8, "Performance-L"),
    ];
    assert_eq!(table.len(), DynoSize::ALL.len());
    for (size, memory_mb, pids, disk_factor, display_name) in table {
        assert_eq!(size.memory_mb(), memory_mb, "{size}");
        assert_eq!(size.memory_bytes(), memory_mb * 1024 * 1024, "{size}");
        assert_eq!(size.pids(), pids, "{size}");
        assert_eq!(size.disk_factor(), disk_factor, "{size}");
        assert_eq!(size.display_name(), display_name, "{size}");
        assert_eq!(display_name.parse(), Ok(size));
    }
}

#[test]
fn all_is_ordered_smallest_first() {
    let mut sorted = DynoSize::ALL;
    sorted.sort();
    assert_eq!(sorted, DynoSize::ALL);
    assert!(DynoSize::ALL
        .windows(2)
        .all(|pair| pair[0].memory_mb() <= pair[1].memory_mb()));
}

#[test]
fn serde_is_the_lowercase_name_and_reads_any_spelling() {
    assert_eq!(
        serde_json::to_string(&DynoSize::Standard2X).unwrap(),
        "\"standard-2x\""
    );
    assert_eq!(
        serde_json::from_str::<DynoSize>("\"Standard-2X\"").unwrap(),
        DynoSize::Standard2X
    );
    assert!(serde_json::from_str::<DynoSize>("\"huge\"").is_err());
}

proptest! {
    #[test]
    fn parsing_never_panics(input in ".*") {
        let _ = input.parse::<DynoSize>();
    }

    #[test]
    fn every_spelling_round_trips(index in 0..DynoSize::ALL.len(), upper: bool) {
        let size = DynoSize::ALL[index];
        let text = if upper { size.display_name().to_owned() } else { size.to_string() };
        prop_assert_eq!(text.parse::<DynoSize>(), Ok(size));
        prop_assert_eq!(size.to_string().parse::<DynoSize>(), Ok(size));
    }
}
