//! `gatehouse-operator diff OLD NEW`: every change between two sets of resource files to the
//! contract versions they publish, each with its class, as the operator classifies them when
//! they are applied ([`gatehouse_api::versioning`]) — for a pull request's CI, before anything
//! reaches a cluster.

use std::fmt::Write as _;
use std::path::PathBuf;

use gatehouse_api::versioning::{Class, ObjectChanges, changes};

use crate::render::{RenderError, input_files, read_bundle};

/// The class from which `diff` fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Fail on a breaking change (the default).
    Breaking,
    /// Fail on a possibly breaking change too.
    PossiblyBreaking,
}

impl FailOn {
    fn class(self) -> Class {
        match self {
            Self::Breaking => Class::Breaking,
            Self::PossiblyBreaking => Class::PossiblyBreaking,
        }
    }
}

/// What `diff` found.
#[derive(Debug)]
pub struct Diff {
    /// The changes, by object.
    pub objects: Vec<ObjectChanges>,
}

impl Diff {
    /// Whether a change of class `fail_on` or worse is among them.
    pub fn fails(&self, fail_on: FailOn) -> bool {
        self.changes().any(|c| c.class >= fail_on.class())
    }

    fn changes(&self) -> impl Iterator<Item = &gatehouse_api::versioning::Change> {
        self.objects.iter().flat_map(|o| &o.changes)
    }

    /// The report: each object with its changes, one line each, then the counts.
    pub fn report(&self) -> String {
        let mut out = String::new();
        for object in &self.objects {
            let _ = writeln!(out, "{}", object.object);
            for change in &object.changes {
                let _ = writeln!(out, "  {:<18} {change}", change.class.as_str());
            }
        }
        let count = |class| self.changes().filter(|c| c.class == class).count();
        let _ = writeln!(
            out,
            "{} breaking, {} possibly breaking, {} passive",
            count(Class::Breaking),
            count(Class::PossiblyBreaking),
            count(Class::Passive)
        );
        out
    }
}

/// Reads both sides (files, or folders of `*.yaml`; objects without a namespace get
/// `namespace`) and classifies every change from `old` to `new`.
pub fn diff_paths(old: &[PathBuf], new: &[PathBuf], namespace: &str) -> Result<Diff, RenderError> {
    let old = read_bundle(&input_files(old)?, namespace)?;
    let new = read_bundle(&input_files(new)?, namespace)?;
    Ok(Diff {
        objects: changes(&old, &new),
    })
}
