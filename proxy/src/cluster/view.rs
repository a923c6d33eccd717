//! What the Kubernetes API has shown of the proxy's own objects, and what to do about it. Pure:
//! the watch tasks report changes, this decides which Secrets to watch and which table (with
//! which Secrets) to offer the store, once each.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use gatehouse_api::route_table::{FILE_NAME, RouteTable, digest_of};
use gatehouse_api::table_file::{COMPRESSED_FILE_NAME, UnpackError, unpack};

use crate::clients::SecretFiles;

/// One watched object as the API has shown it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seen<T> {
    /// Not listed yet: the watch has not completed its first listing.
    Unknown,
    /// Listed, and there is no such object.
    Absent,
    /// The object's content.
    Present(T),
}

impl<T> Seen<T> {
    /// The same knowledge of `f` of the content.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Seen<U> {
        match self {
            Self::Unknown => Seen::Unknown,
            Self::Absent => Seen::Absent,
            Self::Present(content) => Seen::Present(f(content)),
        }
    }
}

/// The data of a Secret: data key → value.
pub type SecretData = BTreeMap<String, Vec<u8>>;

/// A change one of the watches saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// The route ConfigMap's table as stored: `routes.json.gz` (gzipped) or `routes.json`
    /// (empty when it holds neither).
    ConfigMap(Seen<Vec<u8>>),
    /// A client Secret.
    Secret(String, Seen<SecretData>),
}

/// A table to offer the store.
#[derive(Debug)]
pub struct Delivery {
    /// `sha256:…` of the table's JSON (unpacked).
    pub digest: String,
    /// The parsed table, or why the ConfigMap does not hold one.
    pub table: Result<RouteTable, String>,
    /// The Secrets the table names that exist.
    pub secrets: SecretFiles,
}

/// The table the ConfigMap holds. Its parse is handed to the first delivery, not kept: a
/// 10,000-route table is tens of MiB parsed, and the store builds its own form of it. A later
/// delivery of the same ConfigMap (a Secret changed) parses the bytes again.
#[derive(Debug)]
struct Parsed {
    bytes: Vec<u8>,
    digest: String,
    /// Why the ConfigMap holds no table, if it does not.
    error: Option<String>,
    /// The parse, until a delivery takes it.
    table: Option<RouteTable>,
}

/// The proxy's objects as the API has shown them.
#[derive(Debug)]
pub struct ClusterView {
    config_map: String,
    routes: Seen<Parsed>,
    secrets: BTreeMap<String, Seen<SecretData>>,
    /// The Secrets of the last table that parsed (kept while a broken one is in the ConfigMap).
    wanted: BTreeSet<String>,
    /// Digest and Secrets of the last delivery, so each is made once.
    delivered: Option<(String, SecretFiles)>,
}

impl ClusterView {
    /// Nothing seen yet of the ConfigMap `config_map`.
    pub fn new(config_map: &str) -> Self {
        Self {
            config_map: config_map.to_owned(),
            routes: Seen::Unknown,
            secrets: BTreeMap::new(),
            wanted: BTreeSet::new(),
            delivered: None,
        }
    }

    /// Takes in a change.
    pub fn apply(&mut self, change: Change) {
        match change {
            Change::ConfigMap(Seen::Present(bytes)) => {
                if let Seen::Present(parsed) = &self.routes
                    && parsed.bytes == bytes
                {
                    return;
                }
                let parsed = self.parse(bytes);
                if let Some(table) = &parsed.table {
                    self.wanted = table.secrets();
                }
                self.routes = Seen::Present(parsed);
            }
            Change::ConfigMap(Seen::Absent) => self.routes = Seen::Absent,
            Change::ConfigMap(Seen::Unknown) => self.routes = Seen::Unknown,
            Change::Secret(name, seen) => {
                if self.wanted.contains(&name) {
                    self.secrets.insert(name, seen);
                }
            }
        }
    }

    fn parse(&self, bytes: Vec<u8>) -> Parsed {
        let unpacked = unpack(&bytes);
        // The digest names the table, not its packing (the operator's annotation is the same).
        let digest = digest_of(unpacked.as_ref().map_or(&bytes[..], |json| json));
        let (table, error) = match self.table_of(&bytes, unpacked) {
            Ok(table) => (Some(table), None),
            Err(error) => (None, Some(error)),
        };
        Parsed {
            bytes,
            digest,
            error,
            table,
        }
    }

    /// The table of the ConfigMap's `bytes` (`unpacked`: them unzipped), or why there is none.
    fn table_of(
        &self,
        bytes: &[u8],
        unpacked: Result<Cow<'_, [u8]>, UnpackError>,
    ) -> Result<RouteTable, String> {
        let name = &self.config_map;
        match &unpacked {
            _ if bytes.is_empty() => Err(format!(
                "ConfigMap {name} holds no {FILE_NAME} or {COMPRESSED_FILE_NAME}"
            )),
            Err(e) => Err(format!("ConfigMap {name}: {e}")),
            Ok(json) => RouteTable::from_bytes(json).map_err(|e| {
                let file = match json {
                    Cow::Borrowed(_) => FILE_NAME,
                    Cow::Owned(_) => COMPRESSED_FILE_NAME,
                };
                format!("ConfigMap {name}: {file}: {e}")
            }),
        }
    }

    /// The Secrets to watch: those the current table names.
    pub fn wanted(&self) -> &BTreeSet<String> {
        &self.wanted
    }

    /// Forgets what was seen of the Secrets no longer wanted.
    pub fn forget_unwanted(&mut self) {
        let wanted = &self.wanted;
        self.secrets.retain(|name, _| wanted.contains(name));
    }

    /// The table to offer the store, when there is one it was not offered yet: the ConfigMap
    /// is listed and every Secret its table names is too (present or not), so a table is
    /// never served without the keys of a client that has them.
    pub fn delivery(&mut self) -> Option<Delivery> {
        let Seen::Present(parsed) = &self.routes else {
            return None;
        };
        let mut secrets = SecretFiles::new();
        if parsed.error.is_none() {
            for name in &self.wanted {
                match self.secrets.get(name) {
                    None | Some(Seen::Unknown) => return None,
                    Some(Seen::Absent) => {}
                    Some(Seen::Present(data)) => {
                        secrets.insert(name.clone(), data.clone());
                    }
                }
            }
        }
        let key = (parsed.digest.clone(), secrets);
        if self.delivered.as_ref() == Some(&key) {
            return None;
        }
        let (digest, secrets) = key.clone();
        self.delivered = Some(key);
        let Seen::Present(parsed) = &mut self.routes else {
            unreachable!("checked above");
        };
        let table = match (&parsed.error, parsed.table.take()) {
            (Some(error), _) => Err(error.clone()),
            (None, Some(table)) => Ok(table),
            // Delivered before: parse the same bytes again (they parsed then).
            (None, None) => {
                let bytes = std::mem::take(&mut parsed.bytes);
                let table = self.table_of(&bytes, unpack(&bytes));
                if let Seen::Present(parsed) = &mut self.routes {
                    parsed.bytes = bytes;
                }
                table
            }
        };
        Some(Delivery {
            digest,
            table,
            secrets,
        })
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_api::route_table::{ApiKeyEntry, ClientEntry, FORMAT, TableSource};

    use super::*;

    fn table(secrets: &[&str]) -> Vec<u8> {
        RouteTable {
            contracts: Vec::new(),
            tls: None,
            https_redirect_port: None,
            client_address: None,
            source_ranges: None,
            redis: None,
            format: FORMAT.to_owned(),
            source: TableSource {
                kind: "Gateway".to_owned(),
                namespace: "shop".to_owned(),
                name: "public".to_owned(),
                generation: Some(1),
            },
            edge_client: None,
            clients: secrets
                .iter()
                .map(|secret| ClientEntry {
                    name: format!("client-{secret}"),
                    api_key: Some(ApiKeyEntry {
                        secret: (*secret).to_owned(),
                        header: "x-api-key".to_owned(),
                    }),
                    jwt: None,
                    certificate: None,
                    max_in_flight: None,
                    rate_limit: None,
                })
                .collect(),
            routes: Vec::new(),
        }
        .to_bytes()
    }

    fn data(key: &str) -> Seen<SecretData> {
        Seen::Present([("key".to_owned(), key.as_bytes().to_vec())].into())
    }

    #[test]
    fn a_table_is_delivered_once_its_secrets_are_listed_and_once_only() {
        let mut view = ClusterView::new("gw-public");
        assert!(view.delivery().is_none(), "nothing listed yet");
        let bytes = table(&["web-keys", "partner-keys"]);
        view.apply(Change::ConfigMap(Seen::Present(bytes.clone())));
        let wanted: Vec<&str> = view.wanted().iter().map(String::as_str).collect();
        assert_eq!(wanted, ["partner-keys", "web-keys"]);
        assert!(view.delivery().is_none(), "the Secrets are not listed yet");
        view.apply(Change::Secret("web-keys".to_owned(), data("k1")));
        assert!(view.delivery().is_none(), "partner-keys is not listed yet");
        view.apply(Change::Secret("partner-keys".to_owned(), Seen::Absent));
        let delivery = view.delivery().expect("everything is listed");
        assert_eq!(delivery.digest, digest_of(&bytes));
        assert!(delivery.table.is_ok());
        assert_eq!(
            delivery.secrets.keys().collect::<Vec<_>>(),
            ["web-keys"],
            "an absent Secret is not in the delivery"
        );
        assert!(view.delivery().is_none(), "delivered once");
        view.apply(Change::ConfigMap(Seen::Present(bytes)));
        assert!(
            view.delivery().is_none(),
            "the same content is not delivered again"
        );
    }

    #[test]
    fn a_changed_or_deleted_secret_is_delivered_with_the_same_table() {
        let mut view = ClusterView::new("gw-public");
        view.apply(Change::ConfigMap(Seen::Present(table(&["web-keys"]))));
        view.apply(Change::Secret("web-keys".to_owned(), data("k1")));
        let first = view.delivery().expect("the table is delivered");
        view.apply(Change::Secret("web-keys".to_owned(), data("k2")));
        let rotated = view.delivery().expect("a rotated key is delivered");
        assert_eq!(rotated.secrets["web-keys"]["key"], b"k2");
        // The first delivery took the parse; the next ones parse the same bytes again.
        assert_eq!(rotated.table, first.table);
        assert_eq!(rotated.digest, first.digest);
        view.apply(Change::Secret("web-keys".to_owned(), Seen::Absent));
        let revoked = view.delivery().expect("a deleted Secret is delivered");
        assert!(revoked.secrets.is_empty());
        assert_eq!(revoked.table, first.table);
    }

    #[test]
    fn a_broken_table_is_delivered_as_its_error_and_keeps_the_secrets_watched() {
        let mut view = ClusterView::new("gw-public");
        view.apply(Change::ConfigMap(Seen::Present(table(&["web-keys"]))));
        view.apply(Change::ConfigMap(Seen::Present(b"{not json".to_vec())));
        let delivery = view.delivery().expect("the error is delivered");
        let error = delivery.table.unwrap_err();
        assert!(
            error.starts_with("ConfigMap gw-public: routes.json: "),
            "{error}"
        );
        assert_eq!(delivery.digest, digest_of(b"{not json"));
        assert_eq!(
            view.wanted().len(),
            1,
            "the last good table's Secrets stay watched"
        );
        view.apply(Change::ConfigMap(Seen::Present(Vec::new())));
        let error = view.delivery().unwrap().table.unwrap_err();
        assert_eq!(
            error,
            "ConfigMap gw-public holds no routes.json or routes.json.gz"
        );
    }

    /// Large tables come gzipped (`routes.json.gz`): delivered under the digest of their JSON,
    /// which is what the operator annotates and reports.
    fn gzipped(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn a_gzipped_table_is_delivered_under_the_digest_of_its_json() {
        let mut view = ClusterView::new("gw-public");
        let json = table(&[]);
        view.apply(Change::ConfigMap(Seen::Present(gzipped(&json))));
        let delivery = view.delivery().expect("delivered");
        assert_eq!(delivery.digest, digest_of(&json));
        assert_eq!(
            delivery.table.unwrap(),
            RouteTable::from_bytes(&json).unwrap()
        );

        let mut broken = gzipped(&json);
        broken.truncate(broken.len() - 12);
        view.apply(Change::ConfigMap(Seen::Present(broken)));
        let error = view.delivery().unwrap().table.unwrap_err();
        assert!(
            error.starts_with("ConfigMap gw-public: routes.json.gz does not decompress: "),
            "{error}"
        );
        view.apply(Change::ConfigMap(Seen::Present(gzipped(b"{not json"))));
        let error = view.delivery().unwrap().table.unwrap_err();
        assert!(
            error.starts_with("ConfigMap gw-public: routes.json.gz: "),
            "{error}"
        );
    }

    #[test]
    fn a_secret_no_table_names_is_ignored_and_forgotten() {
        let mut view = ClusterView::new("gw-public");
        view.apply(Change::ConfigMap(Seen::Present(table(&["web-keys"]))));
        view.apply(Change::Secret("other".to_owned(), data("x")));
        view.apply(Change::Secret("web-keys".to_owned(), data("k1")));
        assert_eq!(view.delivery().unwrap().secrets.len(), 1);
        view.apply(Change::ConfigMap(Seen::Present(table(&[]))));
        view.forget_unwanted();
        assert!(view.wanted().is_empty());
        let delivery = view.delivery().expect("the new table");
        assert!(delivery.secrets.is_empty());
        view.apply(Change::ConfigMap(Seen::Absent));
        assert!(
            view.delivery().is_none(),
            "a deleted ConfigMap delivers nothing"
        );
    }
}
