//! `launch.toml` `[[processes]]` as Slipway process types: each process becomes the shell
//! command a dyno runs (`bash -c`), its words quoted so it runs exactly the argv the buildpack
//! declared; a `default = true` process is also `web` when nothing else is.

use std::collections::BTreeMap;
use std::str::FromStr;

use libcnb_data::launch::{Launch, WorkingDirectory};

use super::env::quote;

/// The process types `launches` declare, later buildpacks' processes replacing earlier ones of
/// the same type, and the type of the default process, if one is marked `default`. A type
/// Slipway cannot run (its process-type rule) is an error naming it.
pub(crate) fn process_types(
    launches: &[(String, Launch)],
) -> Result<(BTreeMap<String, String>, Option<String>), String> {
    let mut types = BTreeMap::new();
    let mut default = None;
    for (buildpack, launch) in launches {
        for process in &launch.processes {
            let name = process.r#type.to_string();
            if let Err(error) = slipway_model::ProcessType::from_str(&name) {
                return Err(format!(
                    "buildpack {buildpack} declares process type {name:?} in launch.toml: {error}"
                ));
            }
            if process.command.is_empty() {
                return Err(format!(
                    "buildpack {buildpack} declares process type {name:?} with an empty command"
                ));
            }
            let words: Vec<String> = process
                .command
                .iter()
                .chain(&process.args)
                .map(|word| shell_word(word))
                .collect();
            let mut command = words.join(" ");
            if let WorkingDirectory::Directory(dir) = &process.working_directory {
                let dir = dir.to_string_lossy();
                command = format!("cd {} && {command}", shell_word(&dir));
            }
            if process.default {
                default = Some(name.clone());
            }
            types.insert(name, command);
        }
    }
    Ok((types, default))
}

/// `word` for the shell: its `$(NAME)` references (Kubernetes style, which the lifecycle's
/// launcher expands in a process's command and args) become `"${NAME}"`, `$$(NAME)` stays a
/// literal `$(NAME)`, and the rest is literal.
fn shell_word(word: &str) -> String {
    let mut rendered = String::new();
    let mut literal = String::new();
    let mut rest = word;
    while let Some(at) = rest.find("$(") {
        let escaped = rest[..at].ends_with('$');
        let after = &rest[at + 2..];
        let reference = after
            .find(')')
            .map(|end| &after[..end])
            .filter(|name| super::env::is_valid_name(name));
        match reference {
            Some(name) if escaped => {
                literal.push_str(&rest[..at - 1]);
                literal.push_str(&format!("$({name})"));
                rest = &after[name.len() + 1..];
            }
            Some(name) => {
                literal.push_str(&rest[..at]);
                if !literal.is_empty() {
                    rendered.push_str(&literal_word(&literal));
                    literal.clear();
                }
                rendered.push_str(&format!("\"${{{name}}}\""));
                rest = &after[name.len() + 1..];
            }
            None => {
                literal.push_str(&rest[..at + 2]);
                rest = after;
            }
        }
    }
    literal.push_str(rest);
    if !literal.is_empty() || rendered.is_empty() {
        rendered.push_str(&literal_word(&literal));
    }
    rendered
}

/// `word` as is when the shell reads it as one literal word, else single-quoted.
fn literal_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '-' | '.' | '/' | ':' | '@' | ',' | '+' | '%')
        });
    if plain {
        word.to_string()
    } else {
        quote(word)
    }
}
