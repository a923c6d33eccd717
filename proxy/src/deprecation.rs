//! A route's deprecation as its responses announce it: `Deprecation: @SECONDS` (RFC 9745),
//! `Sunset: HTTP-DATE` (RFC 8594) and `Link` with the relations `deprecation` and `sunset`,
//! on every response; and, for a retired version or after a sunset that says so, `410 Gone`
//! with a problem body naming the successor.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gatehouse_api::route_table::{DeprecationEntry, RouteEntry, VersionState};
use http::{HeaderName, HeaderValue};

/// `Deprecation` (RFC 9745).
pub const DEPRECATION: HeaderName = HeaderName::from_static("deprecation");
/// `Sunset` (RFC 8594).
pub const SUNSET: HeaderName = HeaderName::from_static("sunset");

/// What a route's responses announce, prepared when the table loads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    /// Added to every response of the route.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// From when (Unix seconds) the route answers `410 Gone`; `i64::MIN`: always (retired).
    gone_from: Option<i64>,
    /// What the 410 body says.
    detail: String,
    /// The version to move to.
    pub successor: Option<String>,
}

/// Why a deprecation cannot be announced.
#[derive(Debug, thiserror::Error)]
#[error("route {route}: its deprecation's {what} cannot be sent as a header: {value:?}")]
pub struct AnnouncementError {
    route: String,
    what: &'static str,
    value: String,
}

/// The announcement of `entry`; `None` when it is neither deprecated nor retired.
pub fn announcement(entry: &RouteEntry) -> Result<Option<Announcement>, AnnouncementError> {
    let retired = entry.state == Some(VersionState::Retired);
    let Some(deprecation) = entry.deprecation.as_ref() else {
        return Ok(retired.then(|| Announcement {
            headers: Vec::new(),
            gone_from: Some(i64::MIN),
            detail: retired_detail(entry, None),
            successor: None,
        }));
    };
    let headers = headers(entry, deprecation)?;
    let gone_from = if retired {
        Some(i64::MIN)
    } else {
        deprecation.sunset.filter(|_| deprecation.gone_after_sunset)
    };
    let detail = if retired {
        retired_detail(entry, deprecation.successor.as_deref())
    } else {
        format!(
            "this route of version {} was sunset on {}{}",
            entry.contract.as_deref().unwrap_or("?"),
            deprecation.sunset.map(http_date).unwrap_or_default(),
            successor_text(deprecation.successor.as_deref())
        )
    };
    Ok(Some(Announcement {
        headers,
        gone_from,
        detail,
        successor: deprecation.successor.clone(),
    }))
}

fn retired_detail(entry: &RouteEntry, successor: Option<&str>) -> String {
    format!(
        "version {} of this API is retired{}",
        entry.contract.as_deref().unwrap_or("?"),
        successor_text(successor)
    )
}

fn successor_text(successor: Option<&str>) -> String {
    successor.map_or(String::new(), |s| format!("; use version {s}"))
}

/// `seconds` as an HTTP-date (`Sun, 06 Nov 1994 08:49:37 GMT`); dates before 1970 as 1970.
fn http_date(seconds: i64) -> String {
    let at = UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    httpdate::fmt_http_date(at)
}

fn headers(
    entry: &RouteEntry,
    deprecation: &DeprecationEntry,
) -> Result<Vec<(HeaderName, HeaderValue)>, AnnouncementError> {
    let value = |what: &'static str, text: String| {
        HeaderValue::try_from(text.as_str()).map_err(|_| AnnouncementError {
            route: entry.id.clone(),
            what,
            value: text,
        })
    };
    let mut headers = vec![(
        DEPRECATION,
        value("date", format!("@{}", deprecation.since))?,
    )];
    if let Some(sunset) = deprecation.sunset {
        headers.push((SUNSET, value("sunset", http_date(sunset))?));
    }
    for (url, relation) in [
        (&deprecation.link, "deprecation"),
        (&deprecation.sunset_link, "sunset"),
    ] {
        if let Some(url) = url {
            let link = format!("<{url}>; rel=\"{relation}\"; type=\"text/html\"");
            headers.push((http::header::LINK, value("link", link)?));
        }
    }
    Ok(headers)
}

impl Announcement {
    /// The detail of the `410 Gone` answer, when the route answers one at `now`.
    pub fn gone(&self, now: SystemTime) -> Option<&str> {
        let from = self.gone_from?;
        let now = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        (now >= from).then_some(self.detail.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(state: Option<VersionState>, deprecation: Option<DeprecationEntry>) -> RouteEntry {
        let mut entry: RouteEntry = serde_json::from_value(serde_json::json!({
            "id": "v1/product", "contract": "v1", "pathKind": "exact", "path": "/v1/product",
            "action": {"type": "respond", "status": 200, "contentType": "text/plain"},
            "timeoutMs": 1000
        }))
        .unwrap();
        entry.state = state;
        entry.deprecation = deprecation.map(Box::new);
        entry
    }

    fn deprecation(sunset: Option<i64>, gone: bool) -> DeprecationEntry {
        DeprecationEntry {
            since: 1_798_761_600,
            sunset,
            link: Some("https://developer.example.com/v2".into()),
            sunset_link: None,
            successor: Some("v2".into()),
            gone_after_sunset: gone,
        }
    }

    #[test]
    fn headers_are_written_as_the_rfcs_write_them() {
        let announced = announcement(&entry(
            Some(VersionState::Deprecated),
            Some(deprecation(Some(1_814_400_000), false)),
        ))
        .unwrap()
        .unwrap();
        let shown: Vec<(&str, &str)> = announced
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            shown,
            [
                ("deprecation", "@1798761600"),
                ("sunset", "Thu, 01 Jul 2027 00:00:00 GMT"),
                (
                    "link",
                    "<https://developer.example.com/v2>; rel=\"deprecation\"; type=\"text/html\""
                ),
            ]
        );
        assert_eq!(
            announced.gone(SystemTime::now() + Duration::from_secs(1 << 32)),
            None
        );
    }

    #[test]
    fn gone_after_the_sunset_when_asked_and_always_once_retired() {
        let sunset = 1_814_400_000;
        let announced = announcement(&entry(
            Some(VersionState::Deprecated),
            Some(deprecation(Some(sunset), true)),
        ))
        .unwrap()
        .unwrap();
        let at = |s: u64| UNIX_EPOCH + Duration::from_secs(s);
        assert_eq!(announced.gone(at(1_814_399_999)), None);
        assert_eq!(
            announced.gone(at(1_814_400_000)),
            Some(
                "this route of version v1 was sunset on Thu, 01 Jul 2027 00:00:00 GMT; use version v2"
            )
        );
        let retired = announcement(&entry(Some(VersionState::Retired), None))
            .unwrap()
            .unwrap();
        assert_eq!(
            retired.gone(at(0)),
            Some("version v1 of this API is retired")
        );
        assert_eq!(
            announcement(&entry(Some(VersionState::Published), None)).unwrap(),
            None
        );
    }
}
