//! Retiring a version clients still call: refused, unless its object's annotation says to
//! retire it anyway (then recorded, for the operator's Warning Event). See [`crate::usage`].

use std::collections::BTreeSet;

use crate::route_table::RouteEntry;
use crate::usage::{InUse, RETIRE_IN_USE_ANNOTATION};
use crate::validate::Problem;
use crate::versioning;

/// What retiring versions of one contract comes to.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Retirements {
    /// The retirements refused, one per version (kind `VersionInUse`).
    pub refused: Vec<Problem>,
    /// The retirements made anyway, in the words of their Event.
    pub anyway: Vec<String>,
}

/// The retirements from `before` to `after`, the compiled routes of contract `contract`
/// (`None`: the resource's inline contracts; `owner` says whose in messages), with paths under
/// `field`. `anyway` lists the versions its annotation lets go although in use.
pub(super) fn check<'a>(
    field: &str,
    (contract, owner): (Option<&str>, &str),
    before: impl IntoIterator<Item = &'a RouteEntry>,
    after: impl IntoIterator<Item = &'a RouteEntry>,
    in_use: Option<&InUse>,
    anyway: &BTreeSet<String>,
) -> Retirements {
    let mut retirements = Retirements::default();
    let Some(in_use) = in_use else {
        return retirements;
    };
    for version in versioning::ended(before, after) {
        let Some(why) = in_use.refusal(contract, version) else {
            continue;
        };
        if anyway.contains(version) {
            retirements.anyway.push(format!(
                "{owner} version {version} retired or removed although {why} ({RETIRE_IN_USE_ANNOTATION})"
            ));
        } else {
            retirements.refused.push(Problem::in_use(
                format!("{field}[version={version}]"),
                format!(
                    "version {version} may not be retired or removed yet: {why}; wait until they \
                     have moved on, or list {version} in the annotation {RETIRE_IN_USE_ANNOTATION} \
                     of {owner} to retire it anyway"
                ),
            ));
        }
    }
    retirements
}
