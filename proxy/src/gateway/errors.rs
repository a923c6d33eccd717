//! Which problem a Pingora error is, from the client's point of view.

use pingora::{Error, ErrorSource, ErrorType};

use crate::problem::ProblemKind;

/// The problem to answer with, or `None` when the client is gone.
pub fn classify(e: &Error) -> Option<ProblemKind> {
    match (e.esource(), e.etype()) {
        (_, ErrorType::HTTPStatus(503)) => Some(ProblemKind::NoHealthyUpstream),
        (_, ErrorType::HTTPStatus(status)) if *status >= 500 => Some(ProblemKind::UpstreamFailed),
        (_, ErrorType::HTTPStatus(_)) => Some(ProblemKind::BadRequest),
        (
            ErrorSource::Upstream,
            ErrorType::ConnectTimedout | ErrorType::ReadTimedout | ErrorType::WriteTimedout,
        ) => Some(ProblemKind::UpstreamTimeout),
        (ErrorSource::Upstream, _) => Some(ProblemKind::UpstreamFailed),
        (
            ErrorSource::Downstream,
            ErrorType::ReadError | ErrorType::WriteError | ErrorType::ConnectionClosed,
        ) => None,
        (ErrorSource::Downstream, _) => Some(ProblemKind::BadRequest),
        (ErrorSource::Internal | ErrorSource::Unset, _) => Some(ProblemKind::Internal),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_errors_map_to_gateway_statuses() {
        let up = |t| {
            let mut e = Error::new(t);
            e.as_up();
            e
        };
        assert_eq!(
            classify(&up(ErrorType::ConnectRefused)),
            Some(ProblemKind::UpstreamFailed)
        );
        assert_eq!(
            classify(&up(ErrorType::ConnectTimedout)),
            Some(ProblemKind::UpstreamTimeout)
        );
        assert_eq!(
            classify(&up(ErrorType::ReadTimedout)),
            Some(ProblemKind::UpstreamTimeout)
        );
        assert_eq!(
            classify(&Error::new(ErrorType::HTTPStatus(503))),
            Some(ProblemKind::NoHealthyUpstream)
        );
        let mut gone = Error::new(ErrorType::ConnectionClosed);
        gone.as_down();
        assert_eq!(classify(&gone), None);
    }
}
