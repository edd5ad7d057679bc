//! Turning a [`Txn`]'s branch into etcd requests, and the append-only guard: pure, so each
//! rule is a table test.
//!
//! etcd refuses a transaction that puts one key twice or puts a key inside a range it also
//! deletes ("duplicate key given in txn request"), where the SQLite store applies ops one
//! after the other. [`plan_branch`] gives the same end state in a form etcd accepts: a later
//! write to a key replaces an earlier one, a delete inside a range already deleted is
//! dropped, and a put after a range delete that covers it splits the range around the key.
//!
//! etcd has no triggers, so the ledger's guard travels with every write: each key under an
//! append-only prefix that a branch puts or deletes, and each part of such a prefix that a
//! range delete covers, becomes a [`Guard`] that must find nothing there for the writes to
//! run (see the parent module).

use crate::{LeaseId, Op};

/// One write in etcd's terms. Keys are full keys (namespace included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Write {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        lease: Option<LeaseId>,
    },
    Delete {
        key: Vec<u8>,
    },
    /// Deletes `[from, to)`; `to == None` is "every key from `from` on".
    DeleteRange {
        from: Vec<u8>,
        to: Option<Vec<u8>>,
    },
}

/// A part of the ledger a branch would change: it must hold no key for the branch to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Guard {
    Key(Vec<u8>),
    Range { from: Vec<u8>, to: Option<Vec<u8>> },
}

/// What one branch of a [`crate::Txn`] becomes.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Branch {
    pub(crate) writes: Vec<Write>,
    pub(crate) guards: Vec<Guard>,
}

/// The smallest key greater than every key starting with `prefix`; `None` if there is none
/// (an empty prefix, or one of only `0xff` bytes). etcd orders keys as bytes.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let last = prefix.iter().rposition(|b| *b < 0xff)?;
    let mut end = prefix[..=last].to_vec();
    end[last] += 1;
    Some(end)
}

/// etcd's lowest key: a range's start cannot be empty.
pub(crate) fn range_start(from: &[u8]) -> Vec<u8> {
    if from.is_empty() {
        vec![0]
    } else {
        from.to_vec()
    }
}

fn in_range(key: &[u8], from: &[u8], to: Option<&[u8]>) -> bool {
    key >= from && to.is_none_or(|to| key < to)
}

/// The part of `[a_from, a_to)` inside `[b_from, b_to)`, if any.
fn intersect(
    a_from: &[u8],
    a_to: Option<&[u8]>,
    b_from: &[u8],
    b_to: Option<&[u8]>,
) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
    let from = a_from.max(b_from);
    let to = match (a_to, b_to) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (Some(x), None) | (None, Some(x)) => Some(x),
        (None, None) => None,
    };
    match to {
        Some(to) if from >= to => None,
        _ => Some((from.to_vec(), to.map(<[u8]>::to_vec))),
    }
}

/// Plans one branch: `namespace` is prepended to every key; `ledgers` are the append-only
/// prefixes relative to the namespace.
pub(crate) fn plan_branch(namespace: &str, ledgers: &[String], ops: &[Op]) -> Branch {
    let full = |key: &str| [namespace.as_bytes(), key.as_bytes()].concat();
    let ledger_ranges: Vec<(Vec<u8>, Option<Vec<u8>>)> = ledgers
        .iter()
        .map(|p| {
            let from = full(p);
            let to = prefix_end(&from);
            (from, to)
        })
        .collect();
    let in_ledger = |key: &[u8]| {
        ledger_ranges
            .iter()
            .any(|(from, to)| in_range(key, from, to.as_deref()))
    };
    let mut branch = Branch::default();
    let guard = |branch: &mut Branch, g: Guard| {
        if !branch.guards.contains(&g) {
            branch.guards.push(g);
        }
    };
    for op in ops {
        match op {
            Op::Put { key, value, lease } => {
                let key = full(key);
                if in_ledger(&key) {
                    guard(&mut branch, Guard::Key(key.clone()));
                }
                forget_key(&mut branch.writes, &key);
                split_ranges_around(&mut branch.writes, &key);
                branch.writes.push(Write::Put {
                    key,
                    value: value.clone(),
                    lease: *lease,
                });
            }
            Op::Delete { key } => {
                let key = full(key);
                if in_ledger(&key) {
                    guard(&mut branch, Guard::Key(key.clone()));
                }
                forget_key(&mut branch.writes, &key);
                let covered = branch.writes.iter().any(|w| match w {
                    Write::DeleteRange { from, to } => in_range(&key, from, to.as_deref()),
                    _ => false,
                });
                if !covered {
                    branch.writes.push(Write::Delete { key });
                }
            }
            Op::DeletePrefix { prefix } => {
                let from = full(prefix);
                let to = prefix_end(&from);
                for (l_from, l_to) in &ledger_ranges {
                    if let Some((g_from, g_to)) =
                        intersect(&from, to.as_deref(), l_from, l_to.as_deref())
                    {
                        guard(
                            &mut branch,
                            Guard::Range {
                                from: g_from,
                                to: g_to,
                            },
                        );
                    }
                }
                branch.writes.retain(|w| match w {
                    Write::Put { key, .. } | Write::Delete { key } => {
                        !in_range(key, &from, to.as_deref())
                    }
                    Write::DeleteRange { .. } => true,
                });
                branch.writes.push(Write::DeleteRange { from, to });
            }
        }
    }
    branch
}

/// Drops earlier puts and deletes of `key`: a later write decides its end state.
fn forget_key(writes: &mut Vec<Write>, key: &[u8]) {
    writes.retain(|w| match w {
        Write::Put { key: k, .. } | Write::Delete { key: k } => k != key,
        Write::DeleteRange { .. } => true,
    });
}

/// Cuts `key` out of every range delete that covers it, so a put of `key` can follow.
fn split_ranges_around(writes: &mut Vec<Write>, key: &[u8]) {
    let mut out = Vec::with_capacity(writes.len() + 1);
    for w in writes.drain(..) {
        match w {
            Write::DeleteRange { from, to } if in_range(key, &from, to.as_deref()) => {
                if from.as_slice() < key {
                    out.push(Write::DeleteRange {
                        from: from.clone(),
                        to: Some(key.to_vec()),
                    });
                }
                // The next key after `key` in byte order is `key` followed by a zero byte.
                let after = [key, &[0]].concat();
                if to.as_deref().is_none_or(|to| after.as_slice() < to) {
                    out.push(Write::DeleteRange { from: after, to });
                }
            }
            other => out.push(other),
        }
    }
    *writes = out;
}
