//! agreement: what the ready proxy replicas said about the route table they serve, summed up
//! against the table the route ConfigMap holds. Pure.
//!
//! The summary is deterministic (digests, errors and replicas sorted, no timestamps), so the
//! same answers give the same status and no patch is sent.

use std::collections::{BTreeMap, BTreeSet};

use gatehouse_api::crd::ProxiesStatus;
use serde::Deserialize;

/// `Programmed` reason when every ready replica serves the current table.
pub const SERVING: &str = "Programmed";
/// `Programmed` reason while some ready replica does not serve it yet (or none is ready).
pub const PENDING: &str = "Pending";
/// `Programmed` reason when a ready replica refused the current table.
pub const REFUSED: &str = "Refused";

/// The part of a proxy's admin `/config` report the operator reads. Other fields are ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct ConfigReport {
    /// Digest of the table it serves; absent while it serves none.
    #[serde(default)]
    pub digest: Option<String>,
    /// The newest table it was given, when it refused it.
    #[serde(default)]
    pub refused: Option<RefusedTable>,
}

/// A table a proxy refused.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct RefusedTable {
    /// Digest of the refused table, when the proxy could tell.
    #[serde(default)]
    pub digest: Option<String>,
    /// The proxy's reason.
    #[serde(default)]
    pub error: String,
}

/// One ready replica's answer, or why there was none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Answer {
    /// The replica as a person finds it: `pod (ip:port)`, or the address alone.
    pub replica: String,
    /// Its report, or the error that kept it from answering.
    pub report: Result<ConfigReport, String>,
}

/// Where the replicas stand as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Every ready replica serves the current table (and at least one is ready).
    Serving,
    /// Some ready replica serves another table or did not answer, or no replica is ready.
    Pending,
    /// A ready replica refused the current table.
    Refused,
}

impl Verdict {
    /// The `Programmed` reason.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Serving => SERVING,
            Self::Pending => PENDING,
            Self::Refused => REFUSED,
        }
    }
}

/// The answers of every ready replica, summed up against one digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agreement {
    digest: String,
    /// The counts for `status.proxies`.
    pub counts: ProxiesStatus,
    /// Replicas serving another table, by that table's digest.
    stale: BTreeMap<String, i32>,
    /// Replicas serving no table at all.
    empty: i32,
    /// The distinct errors of the replicas that refused the current table.
    refusals: BTreeSet<String>,
    /// `(replica, error)` of every replica that did not answer, sorted.
    unanswered: Vec<(String, String)>,
}

/// Sums up `answers` against the table whose digest is `digest`.
pub fn summarize(digest: &str, answers: &[Answer]) -> Agreement {
    let mut agreement = Agreement {
        digest: digest.to_owned(),
        counts: ProxiesStatus::default(),
        stale: BTreeMap::new(),
        empty: 0,
        refusals: BTreeSet::new(),
        unanswered: Vec::new(),
    };
    for answer in answers {
        agreement.counts.ready += 1;
        let report = match &answer.report {
            Ok(report) => report,
            Err(error) => {
                agreement.counts.unreachable += 1;
                agreement
                    .unanswered
                    .push((answer.replica.clone(), error.clone()));
                continue;
            }
        };
        let refused = report
            .refused
            .as_ref()
            .filter(|r| r.digest.as_deref() == Some(digest));
        if report.digest.as_deref() == Some(digest) {
            agreement.counts.current += 1;
        } else if let Some(refused) = refused {
            agreement.counts.refused += 1;
            agreement.refusals.insert(refused.error.clone());
        } else {
            agreement.counts.stale += 1;
            match &report.digest {
                Some(other) => *agreement.stale.entry(other.clone()).or_insert(0) += 1,
                None => agreement.empty += 1,
            }
        }
    }
    agreement.unanswered.sort();
    agreement
}

/// `serves` or `serve`, as `count` wants.
fn verb(count: i32, singular: &'static str, plural: &'static str) -> &'static str {
    if count == 1 { singular } else { plural }
}

impl Agreement {
    /// Where the replicas stand.
    pub fn verdict(&self) -> Verdict {
        if self.counts.refused > 0 {
            Verdict::Refused
        } else if self.counts.ready > 0 && self.counts.current == self.counts.ready {
            Verdict::Serving
        } else {
            Verdict::Pending
        }
    }

    /// True when some ready replica may still move on its own (it serves another table or did
    /// not answer): worth asking again soon.
    pub fn lagging(&self) -> bool {
        self.counts.stale > 0 || self.counts.unreachable > 0
    }

    /// The `Programmed` message; `routes` is the route count of the current table.
    pub fn message(&self, routes: usize) -> String {
        let ProxiesStatus {
            ready,
            current,
            refused,
            ..
        } = self.counts;
        let table = format!("route table {} ({routes} routes)", self.digest);
        if ready == 0 {
            return format!("{table} is in the route ConfigMap; no ready replica serves it yet");
        }
        let of_ready = format!("of {ready} ready {}", verb(ready, "replica", "replicas"));
        let mut parts = Vec::new();
        if refused > 0 {
            let errors: Vec<&str> = self.refusals.iter().map(String::as_str).collect();
            parts.push(format!(
                "{refused} {of_ready} refused {table}: {}",
                errors.join(" | ")
            ));
            if current > 0 {
                parts.push(format!("{current} {} it", verb(current, "serves", "serve")));
            }
        } else {
            parts.push(format!(
                "{current} {of_ready} {} {table}",
                verb(current, "serves", "serve")
            ));
        }
        for (digest, count) in &self.stale {
            parts.push(format!(
                "{count} still {} {digest}",
                verb(*count, "serves", "serve")
            ));
        }
        if self.empty > 0 {
            parts.push(format!(
                "{} {} no route table yet",
                self.empty,
                verb(self.empty, "serves", "serve")
            ));
        }
        if !self.unanswered.is_empty() {
            let each: Vec<String> = self
                .unanswered
                .iter()
                .map(|(replica, error)| format!("{replica}: {error}"))
                .collect();
            parts.push(format!(
                "{} did not answer ({})",
                self.unanswered.len(),
                each.join(", ")
            ));
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CURRENT: &str = "sha256:new";

    fn serving(replica: &str, digest: Option<&str>) -> Answer {
        Answer {
            replica: replica.to_owned(),
            report: Ok(ConfigReport {
                digest: digest.map(str::to_owned),
                refused: None,
            }),
        }
    }

    fn refusing(replica: &str, serves: &str, refused: &str, error: &str) -> Answer {
        Answer {
            replica: replica.to_owned(),
            report: Ok(ConfigReport {
                digest: Some(serves.to_owned()),
                refused: Some(RefusedTable {
                    digest: Some(refused.to_owned()),
                    error: error.to_owned(),
                }),
            }),
        }
    }

    fn silent(replica: &str, error: &str) -> Answer {
        Answer {
            replica: replica.to_owned(),
            report: Err(error.to_owned()),
        }
    }

    fn counts(
        ready: i32,
        current: i32,
        stale: i32,
        refused: i32,
        unreachable: i32,
    ) -> ProxiesStatus {
        ProxiesStatus {
            ready,
            current,
            stale,
            refused,
            unreachable,
        }
    }

    #[test]
    fn every_replica_serving_the_table_is_programmed() {
        let answers = ["a", "b", "c"].map(|r| serving(r, Some(CURRENT)));
        let agreement = summarize(CURRENT, &answers);
        assert_eq!(agreement.verdict(), Verdict::Serving);
        assert_eq!(agreement.counts, counts(3, 3, 0, 0, 0));
        assert!(!agreement.lagging());
        assert_eq!(
            agreement.message(6),
            "3 of 3 ready replicas serve route table sha256:new (6 routes)"
        );
        let one = summarize(CURRENT, &[serving("a", Some(CURRENT))]);
        assert_eq!(
            one.message(1),
            "1 of 1 ready replica serves route table sha256:new (1 routes)"
        );
    }

    #[test]
    fn no_ready_replica_is_pending() {
        let agreement = summarize(CURRENT, &[]);
        assert_eq!(agreement.verdict(), Verdict::Pending);
        assert_eq!(agreement.counts, counts(0, 0, 0, 0, 0));
        assert!(!agreement.lagging(), "nothing to ask again");
        assert_eq!(
            agreement.message(6),
            "route table sha256:new (6 routes) is in the route ConfigMap; no ready replica serves \
             it yet"
        );
    }

    #[test]
    fn lagging_replicas_are_grouped_by_the_table_they_serve() {
        let answers = [
            serving("e", Some("sha256:old")),
            serving("a", Some(CURRENT)),
            serving("d", Some("sha256:older")),
            serving("b", Some(CURRENT)),
            serving("c", Some("sha256:old")),
            serving("f", None),
            silent("h", "connection refused"),
            silent("g", "no answer within 2 s"),
        ];
        let agreement = summarize(CURRENT, &answers);
        assert_eq!(agreement.verdict(), Verdict::Pending);
        assert_eq!(agreement.counts, counts(8, 2, 4, 0, 2));
        assert!(agreement.lagging());
        assert_eq!(
            agreement.message(6),
            "2 of 8 ready replicas serve route table sha256:new (6 routes); 2 still serve \
             sha256:old; 1 still serves sha256:older; 1 serves no route table yet; 2 did not \
             answer (g: no answer within 2 s, h: connection refused)"
        );
        let mut reversed = answers.clone();
        reversed.reverse();
        assert_eq!(
            summarize(CURRENT, &reversed),
            agreement,
            "the order of the answers does not matter"
        );
    }

    #[test]
    fn a_refusal_of_the_current_table_carries_the_proxys_error() {
        let answers = [
            serving("a", Some(CURRENT)),
            refusing("b", "sha256:old", CURRENT, "route 3: bad jq"),
            refusing("c", "sha256:old", CURRENT, "route 3: bad jq"),
            serving("d", Some("sha256:old")),
        ];
        let agreement = summarize(CURRENT, &answers);
        assert_eq!(agreement.verdict(), Verdict::Refused);
        assert_eq!(agreement.counts, counts(4, 1, 1, 2, 0));
        assert_eq!(
            agreement.message(6),
            "2 of 4 ready replicas refused route table sha256:new (6 routes): route 3: bad jq; \
             1 serves it; 1 still serves sha256:old"
        );
    }

    #[test]
    fn a_refusal_of_an_older_table_is_only_lag() {
        let answers = [
            refusing("a", CURRENT, "sha256:bad", "broken"),
            refusing("b", "sha256:old", "sha256:bad", "broken"),
        ];
        let agreement = summarize(CURRENT, &answers);
        assert_eq!(agreement.verdict(), Verdict::Pending);
        assert_eq!(agreement.counts, counts(2, 1, 1, 0, 0));
    }

    #[test]
    fn reports_parse_leniently() {
        let full: ConfigReport = serde_json::from_str(
            r#"{"loaded": true, "digest": "sha256:a", "generation": 3, "routes": 10,
                "source": {"kind": "Gateway"}, "feed": "kubernetes",
                "refused": {"digest": "sha256:b", "error": "no", "at": 1}}"#,
        )
        .unwrap();
        assert_eq!(
            full,
            ConfigReport {
                digest: Some("sha256:a".to_owned()),
                refused: Some(RefusedTable {
                    digest: Some("sha256:b".to_owned()),
                    error: "no".to_owned()
                }),
            }
        );
        let empty: ConfigReport =
            serde_json::from_str(r#"{"loaded": false, "digest": null, "refused": null}"#).unwrap();
        assert_eq!(empty, ConfigReport::default());
        let unknown_refusal: ConfigReport =
            serde_json::from_str(r#"{"digest": "sha256:a", "refused": {"error": "bad"}}"#).unwrap();
        assert_eq!(unknown_refusal.refused.unwrap().digest, None);
    }
}
