//! Hostile input for the spec parser and validator, generated: no input may panic, hang or
//! take more than a moment. Runs as part of the unit tests (a fixed number of cases, bounded
//! time); `PROPTEST_CASES=100000 cargo test --lib fuzz` runs it longer.

use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::parse_spec;

const VALID: &str = "region: eu-west-1\naccount_id: \"123456789012\"\nprofile: terraform\nbucket:\n  name: my-state\n  encryption: { kms_key: alias/x, create_key: true }\n  tags: { team: platform }\naccess:\n  users: [terraform]\n  roles: [\"arn:aws:iam::123456789012:role/ci\"]\n  exclusive: true\n  break_glass_role: glass\nbackend:\n  key: app/terraform.tfstate\n  workspace_key_prefix: ws\n";

/// Parses and reports how long it took; a panic fails the property by itself.
fn parse_timed(text: &str) -> Duration {
    let started = Instant::now();
    let _ = parse_spec("environments/fuzz.yaml", "fuzz", text);
    started.elapsed()
}

fn yaml_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("&a ".to_owned()),
        Just("*a".to_owned()),
        Just("<<: *a\n".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just(": ".to_owned()),
        Just("- ".to_owned()),
        Just("\n  ".to_owned()),
        Just("\t".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("!!binary ".to_owned()),
        Just("? ".to_owned()),
        Just("%YAML 1.2\n---\n".to_owned()),
        Just("\0".to_owned()),
        Just("\u{feff}".to_owned()),
        Just("secret_key: x\n".to_owned()),
        Just("AKIAIOSFODNN7EXAMPLE".to_owned()),
        "[a-z_]{1,12}".prop_map(|s| s),
        "[0-9]{1,20}".prop_map(|s| s),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        prop_assert!(parse_timed(&text) < Duration::from_secs(2));
    }

    #[test]
    fn yaml_shaped_noise_never_panics(fragments in proptest::collection::vec(yaml_fragment(), 0..64)) {
        prop_assert!(parse_timed(&fragments.concat()) < Duration::from_secs(2));
    }

    #[test]
    fn a_valid_spec_with_edits_never_panics(edits in proptest::collection::vec((0usize..VALID.len(), yaml_fragment()), 1..8)) {
        let mut text = VALID.to_owned();
        for (at, fragment) in edits {
            let mut at = at.min(text.len());
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            text.insert_str(at, &fragment);
        }
        prop_assert!(parse_timed(&text) < Duration::from_secs(2));
    }

    #[test]
    fn arbitrary_bytes_as_lossy_text_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        prop_assert!(parse_timed(&String::from_utf8_lossy(&bytes)) < Duration::from_secs(2));
    }
}

#[test]
fn the_fuzz_seed_is_itself_valid() {
    parse_spec("environments/fuzz.yaml", "fuzz", VALID).unwrap();
}

#[test]
fn huge_scalars_and_many_keys_are_bounded() {
    let huge = format!("region: {}\n", "a".repeat(8 << 20));
    assert!(parse_timed(&huge) < Duration::from_secs(5));
    let many: String = (0..60_000).map(|i| format!("k{i}: v\n")).collect();
    assert!(parse_timed(&many) < Duration::from_secs(5));
}
