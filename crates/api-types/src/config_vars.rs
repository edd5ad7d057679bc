//! Config vars: `GET/PATCH /apps/{app}/config-vars` (a flat JSON object).

use std::collections::BTreeMap;

/// The config vars of an app or release, as returned by GET and PATCH.
pub type ConfigVars = BTreeMap<String, String>;

/// Body of `PATCH /apps/{app}/config-vars`: a value sets the key, `null` removes it.
pub type ConfigVarsUpdate = BTreeMap<String, Option<String>>;

/// Whether `key` is a valid config var name (`^\w+$`: ASCII letters, digits, underscore).
pub fn config_var_key_is_valid(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::config_var_key_is_valid;

    #[test]
    fn config_var_key_rule() {
        let cases = [
            ("FOO", true),
            ("foo_bar", true),
            ("_X1", true),
            ("1A", true),
            ("", false),
            ("A-B", false),
            ("A B", false),
            ("A=B", false),
            ("É", false),
        ];
        for (key, expected) in cases {
            assert_eq!(config_var_key_is_valid(key), expected, "key {key:?}");
        }
    }
}
