//! Kubernetes Events for condition transitions and route table changes.

use gatehouse_api::crd::ProxyStatus;
use kube::runtime::events::{Event, EventType};

use super::agreement::PENDING;
use super::status::{PROGRAMMED, READY};

/// Events for every condition whose status flipped (or appeared) or that changed its reason
/// (`Programmed` going from `NotAccepted` to `NameConflict` is news), plus one when a new route
/// table was written. A `False` condition is a warning, except `Ready` on a proxy that was never
/// ready (pods starting is not a problem) and `Programmed` while replicas are `Pending` (a new
/// table on its way to them is not a problem either; `Refused` is).
pub fn transition_events(
    previous: Option<&ProxyStatus>,
    next: &ProxyStatus,
    table_written: bool,
) -> Vec<Event> {
    let mut events: Vec<Event> = next
        .conditions
        .iter()
        .filter_map(|condition| {
            let before =
                previous.and_then(|p| p.conditions.iter().find(|c| c.type_ == condition.type_));
            if before.is_some_and(|b| b.status == condition.status && b.reason == condition.reason)
            {
                return None;
            }
            let healthy = condition.status == "True"
                || (condition.type_ == READY && before.is_none())
                || (condition.type_ == PROGRAMMED && condition.reason == PENDING);
            Some(Event {
                type_: if healthy {
                    EventType::Normal
                } else {
                    EventType::Warning
                },
                reason: condition.reason.clone(),
                note: Some(condition.message.clone()),
                action: "Reconcile".to_owned(),
                secondary: None,
            })
        })
        .collect();
    if table_written {
        events.push(Event {
            type_: EventType::Normal,
            reason: "RouteTableUpdated".to_owned(),
            note: next
                .route_table_digest
                .as_ref()
                .map(|d| format!("the route ConfigMap now holds route table {d}")),
            action: "ApplyRouteTable".to_owned(),
            secondary: None,
        });
    }
    events
}

/// `RetiredInUse`: a Warning for each contract version retired or removed although clients
/// called it within the usage window (its object's annotation allowed it), once the table
/// without it is written.
pub fn retired_in_use_events(retired: &[String]) -> impl Iterator<Item = Event> + '_ {
    retired.iter().map(|note| Event {
        type_: EventType::Warning,
        reason: "RetiredInUse".to_owned(),
        note: Some(note.clone()),
        action: "RetireVersion".to_owned(),
        secondary: None,
    })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn status(conditions: &[(&str, &str, &str)]) -> ProxyStatus {
        ProxyStatus {
            conditions: conditions
                .iter()
                .map(|(type_, status, reason)| Condition {
                    type_: (*type_).to_owned(),
                    status: (*status).to_owned(),
                    reason: (*reason).to_owned(),
                    message: String::new(),
                    observed_generation: None,
                    last_transition_time: Time(Timestamp::UNIX_EPOCH),
                })
                .collect(),
            ..ProxyStatus::default()
        }
    }

    fn summary(events: &[Event]) -> Vec<(String, bool)> {
        events
            .iter()
            .map(|e| (e.reason.clone(), e.type_ == EventType::Warning))
            .collect()
    }

    #[test]
    fn only_flips_make_events() {
        let first = status(&[
            ("Accepted", "True", "Accepted"),
            ("Ready", "False", "DeploymentUnavailable"),
        ]);
        assert_eq!(
            summary(&transition_events(None, &first, true)),
            [
                ("Accepted".to_owned(), false),
                ("DeploymentUnavailable".to_owned(), false),
                ("RouteTableUpdated".to_owned(), false)
            ]
        );
        assert!(transition_events(Some(&first), &first, false).is_empty());
        let invalid = status(&[
            ("Accepted", "False", "Invalid"),
            ("Ready", "False", "DeploymentUnavailable"),
        ]);
        assert_eq!(
            summary(&transition_events(Some(&first), &invalid, false)),
            [("Invalid".to_owned(), true)]
        );
        // Still False, for another reason: the news is told once.
        let conflict = status(&[
            ("Accepted", "True", "Accepted"),
            ("Ready", "False", "DeploymentMissing"),
        ]);
        assert_eq!(
            summary(&transition_events(Some(&first), &conflict, false)),
            [("DeploymentMissing".to_owned(), true)]
        );
        assert!(transition_events(Some(&conflict), &conflict, false).is_empty());
    }

    #[test]
    fn a_table_on_its_way_is_news_a_refused_one_a_warning() {
        let programmed = status(&[("Programmed", "True", "Programmed")]);
        let pending = status(&[("Programmed", "False", "Pending")]);
        let refused = status(&[("Programmed", "False", "Refused")]);
        assert_eq!(
            summary(&transition_events(Some(&programmed), &pending, true)),
            [
                ("Pending".to_owned(), false),
                ("RouteTableUpdated".to_owned(), false)
            ]
        );
        assert_eq!(
            summary(&transition_events(Some(&pending), &programmed, false)),
            [("Programmed".to_owned(), false)]
        );
        assert_eq!(
            summary(&transition_events(Some(&pending), &refused, false)),
            [("Refused".to_owned(), true)]
        );
    }
}
