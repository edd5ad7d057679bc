//! Config vars: `GET/PATCH /apps/{app}/config-vars` (a flat JSON object).
//!
//! Keys stay strings on the wire; which keys are valid is `slipway_model::ConfigKey`'s rule,
//! checked where a request is parsed.

use std::collections::BTreeMap;

/// The config vars of an app or release, as returned by GET and PATCH.
pub type ConfigVars = BTreeMap<String, String>;

/// Body of `PATCH /apps/{app}/config-vars`: a value sets the key, `null` removes it.
pub type ConfigVarsUpdate = BTreeMap<String, Option<String>>;
