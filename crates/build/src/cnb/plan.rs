//! The build plan: what `bin/detect` writes (`provides`/`requires`, with `or` alternatives),
//! its resolution across a group as the lifecycle does it, and the Buildpack Plan each
//! participating buildpack's `bin/build` reads.
//!
//! libcnb-data's `BuildPlan` is the buildpack's side (it only serializes), so the platform's
//! side, which reads it, is declared here with the same shape.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// A `bin/detect`'s build plan (`$CNB_BUILD_PLAN_PATH`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub(crate) struct DetectPlan {
    #[serde(default)]
    provides: Vec<Provide>,
    #[serde(default)]
    requires: Vec<Require>,
    #[serde(default)]
    or: Vec<Alternative>,
}

/// One way a buildpack can take part: what it provides and what it requires.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub(crate) struct Alternative {
    #[serde(default)]
    pub(crate) provides: Vec<Provide>,
    #[serde(default)]
    pub(crate) requires: Vec<Require>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub(crate) struct Provide {
    pub(crate) name: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub(crate) struct Require {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) metadata: toml::Table,
}

impl DetectPlan {
    /// Parses what `bin/detect` wrote; an empty file is an empty plan.
    pub(crate) fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The alternatives in the order the lifecycle tries them: the top-level one, then each
    /// `[[or]]`.
    pub(crate) fn alternatives(self) -> Vec<Alternative> {
        let mut alternatives = vec![Alternative {
            provides: self.provides,
            requires: self.requires,
        }];
        alternatives.extend(self.or);
        alternatives
    }
}

/// A buildpack that passed detection, as resolution sees it.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// The buildpack's id, for messages.
    pub(crate) id: String,
    pub(crate) optional: bool,
    pub(crate) alternatives: Vec<Alternative>,
}

/// A resolved group: which candidates take part (their indices, in group order) and with
/// which alternative.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Resolution {
    pub(crate) participants: Vec<(usize, Alternative)>,
}

/// The most combinations of alternatives tried: each buildpack's `or` list multiplies them,
/// and the plans are tenant input.
const MAX_TRIALS: usize = 4096;

/// Resolves the plan of a group whose candidates passed detection: the first combination of
/// alternatives (in order) where every name provided is required and every name required is
/// provided, after leaving out optional buildpacks whose part is unmet. `Err` lists, for the
/// message, why the last combination tried failed.
pub(crate) fn resolve(candidates: &[Candidate]) -> Result<Resolution, Vec<String>> {
    let mut reasons = Vec::new();
    let mut choice = vec![0usize; candidates.len()];
    for _ in 0..MAX_TRIALS {
        let trial: Vec<(usize, &Alternative)> = choice
            .iter()
            .enumerate()
            .map(|(index, alt)| (index, &candidates[index].alternatives[*alt]))
            .collect();
        match run_trial(candidates, trial) {
            Ok(resolution) => return Ok(resolution),
            Err(why) => reasons = why,
        }
        // The next combination, the last buildpack's alternatives varying fastest.
        let mut position = candidates.len();
        loop {
            if position == 0 {
                return Err(reasons);
            }
            position -= 1;
            choice[position] += 1;
            if choice[position] < candidates[position].alternatives.len() {
                break;
            }
            choice[position] = 0;
        }
    }
    reasons.push(format!(
        "gave up after {MAX_TRIALS} combinations of build plan alternatives"
    ));
    Err(reasons)
}

fn run_trial(
    candidates: &[Candidate],
    mut trial: Vec<(usize, &Alternative)>,
) -> Result<Resolution, Vec<String>> {
    loop {
        let mut provided: BTreeSet<&str> = BTreeSet::new();
        let mut required: BTreeSet<&str> = BTreeSet::new();
        for (_, alternative) in &trial {
            provided.extend(alternative.provides.iter().map(|p| p.name.as_str()));
            required.extend(alternative.requires.iter().map(|r| r.name.as_str()));
        }
        let mut unmet: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        for (index, alternative) in &trial {
            let id = &candidates[*index].id;
            for provide in &alternative.provides {
                if !required.contains(provide.name.as_str()) {
                    unmet
                        .entry(*index)
                        .or_default()
                        .push(format!("{id} provides unused {}", provide.name));
                }
            }
            for require in &alternative.requires {
                if !provided.contains(require.name.as_str()) {
                    unmet
                        .entry(*index)
                        .or_default()
                        .push(format!("{id} requires {}", require.name));
                }
            }
        }
        if unmet.is_empty() {
            return Ok(Resolution {
                participants: trial
                    .into_iter()
                    .map(|(index, alternative)| (index, alternative.clone()))
                    .collect(),
            });
        }
        if unmet.keys().any(|index| !candidates[*index].optional) {
            return Err(unmet.into_values().flatten().collect());
        }
        trial.retain(|(index, _)| !unmet.contains_key(index));
    }
}

/// The Buildpack Plan a participant's `bin/build` reads (`$CNB_BP_PLAN_PATH`): for each name
/// it provides that no earlier buildpack met, every requirement of that name in the group,
/// in group order.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub(crate) struct BuildpackPlan {
    pub(crate) entries: Vec<Require>,
}

impl BuildpackPlan {
    pub(crate) fn for_participant(
        resolution: &Resolution,
        participant: usize,
        met: &BTreeSet<String>,
    ) -> Self {
        let Some((_, alternative)) = resolution.participants.get(participant) else {
            return Self::default();
        };
        let names: BTreeSet<&str> = alternative
            .provides
            .iter()
            .map(|p| p.name.as_str())
            .filter(|name| !met.contains(*name))
            .collect();
        let mut entries = Vec::new();
        let mut seen = BTreeSet::new();
        for name in alternative.provides.iter().map(|p| p.name.as_str()) {
            if !names.contains(name) || !seen.insert(name) {
                continue;
            }
            for (_, other) in &resolution.participants {
                entries.extend(other.requires.iter().filter(|r| r.name == name).cloned());
            }
        }
        BuildpackPlan { entries }
    }

    /// The plan as TOML.
    pub(crate) fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string(self)
    }
}

/// What a buildpack's `build.toml` may say: entries of its plan it did not meet, which later
/// providers of the same name then get.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub(crate) struct BuildToml {
    #[serde(default)]
    pub(crate) unmet: Vec<Unmet>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub(crate) struct Unmet {
    pub(crate) name: String,
}
