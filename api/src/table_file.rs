//! How a route table is stored: in its ConfigMap (and so in the proxy's mounted volume), and in
//! the files `--routes` reads.
//!
//! A table of up to [`COMPRESS_ABOVE`] bytes is stored as it is, under `routes.json`, readable
//! with `kubectl get configmap -o yaml` and in `render` output. A larger one is stored gzipped
//! under `routes.json.gz` (`binaryData`): a route table compresses 10–40×, and every write of
//! the ConfigMap costs the API server in proportion to its size — for 2,000 routes, 620 KB
//! written in 125–185 ms against 16 KB in 15–18 ms on the same server (`bench/RESULTS.md`,
//! "Live configuration"). It also lets a table of more than 1 MiB fit in a ConfigMap. The
//! digest is always the one of the uncompressed JSON: it names the table, not its packing.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::ConfigMap;

use crate::route_table::FILE_NAME;

/// Name of the gzipped table inside the route ConfigMap (`binaryData`) and its volume.
pub const COMPRESSED_FILE_NAME: &str = "routes.json.gz";

/// Tables larger than this many bytes are stored gzipped.
pub const COMPRESS_ABOVE: usize = 64 * 1024;

/// A gzipped table that unpacks to more than this is refused: no table comes near it, and it
/// bounds what a hostile ConfigMap could make a proxy allocate.
pub const MAX_UNPACKED_BYTES: usize = 64 * 1024 * 1024;

/// The first two bytes of every gzip stream (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// A serialised table, packed for its ConfigMap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    /// `routes.json`, as serialised.
    Plain(String),
    /// `routes.json.gz`, gzipped.
    Compressed(Vec<u8>),
}

/// Why stored bytes are not a table's JSON.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// Starts like gzip but does not decompress.
    #[error("{COMPRESSED_FILE_NAME} does not decompress: {0}")]
    Corrupt(#[from] std::io::Error),
    /// Decompresses to more than [`MAX_UNPACKED_BYTES`].
    #[error("{COMPRESSED_FILE_NAME} unpacks to more than {MAX_UNPACKED_BYTES} bytes")]
    TooLarge,
}

impl Stored {
    /// Packs a table's bytes ([`crate::route_table::RouteTable::to_bytes`]): as they are up
    /// to [`COMPRESS_ABOVE`], gzipped above. The same bytes always pack the same way.
    pub fn pack(bytes: Vec<u8>) -> Self {
        if bytes.len() <= COMPRESS_ABOVE {
            // serde_json writes UTF-8; the lossy path is never taken.
            return Self::Plain(
                String::from_utf8(bytes)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
            );
        }
        // The default level (6): ~6 ms for 620 KB. Not level 1: zlib-ng, flate2's backend
        // wherever Pingora is linked, packs level 1 with fixed Huffman codes, which leave
        // text without repeats (long templates, keys of many different letters) as large as
        // it was. flate2 writes no timestamp or file name: one build packs the same bytes the
        // same way.
        let mut encoder =
            GzEncoder::new(Vec::with_capacity(bytes.len() / 8), Compression::default());
        // Writing into memory cannot fail.
        let _ = encoder.write_all(&bytes);
        Self::Compressed(encoder.finish().unwrap_or_default())
    }

    /// Puts it into a ConfigMap, as its only entry.
    pub fn into_config_map(self, config_map: &mut ConfigMap) {
        match self {
            Self::Plain(text) => {
                config_map.data = Some(BTreeMap::from([(FILE_NAME.to_owned(), text)]));
                config_map.binary_data = None;
            }
            Self::Compressed(bytes) => {
                config_map.data = None;
                config_map.binary_data = Some(BTreeMap::from([(
                    COMPRESSED_FILE_NAME.to_owned(),
                    ByteString(bytes),
                )]));
            }
        }
    }
}

/// The table's JSON from stored bytes: gzip (by its magic bytes) is decompressed, anything else
/// is taken as it is (`routes.json`, or a file a user wrote).
pub fn unpack(bytes: &[u8]) -> Result<Cow<'_, [u8]>, UnpackError> {
    if !bytes.starts_with(&GZIP_MAGIC) {
        return Ok(Cow::Borrowed(bytes));
    }
    let mut unpacked = Vec::with_capacity(bytes.len() * 8);
    let limit = u64::try_from(MAX_UNPACKED_BYTES).unwrap_or(u64::MAX) + 1;
    GzDecoder::new(bytes)
        .take(limit)
        .read_to_end(&mut unpacked)?;
    if unpacked.len() > MAX_UNPACKED_BYTES {
        return Err(UnpackError::TooLarge);
    }
    Ok(Cow::Owned(unpacked))
}

/// The table's JSON held by a route ConfigMap: `routes.json.gz` when it has one, else
/// `routes.json` (what operators before 0.2 wrote); `None` when it holds neither.
pub fn from_config_map(config_map: &ConfigMap) -> Option<Result<Vec<u8>, UnpackError>> {
    let compressed = config_map
        .binary_data
        .as_ref()
        .and_then(|data| data.get(COMPRESSED_FILE_NAME));
    if let Some(ByteString(bytes)) = compressed {
        return Some(unpack(bytes).map(Cow::into_owned));
    }
    config_map
        .data
        .as_ref()
        .and_then(|data| data.get(FILE_NAME))
        .map(|text| Ok(text.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_like(bytes: usize) -> Vec<u8> {
        let mut json = b"{\"routes\":[".to_vec();
        let mut i = 0;
        while json.len() < bytes {
            json.extend(format!("{{\"id\":\"v1/r{i}\",\"path\":\"/v1/r{i}\"}},").as_bytes());
            i += 1;
        }
        json.extend(b"{}]}\n");
        json
    }

    #[test]
    fn small_tables_stay_readable_and_large_ones_are_gzipped_both_ways() {
        let small = table_like(COMPRESS_ABOVE - 100);
        let Stored::Plain(text) = Stored::pack(small.clone()) else {
            panic!("a small table is stored as it is");
        };
        assert_eq!(text.as_bytes(), small);

        let large = table_like(600 * 1024);
        let stored = Stored::pack(large.clone());
        let Stored::Compressed(bytes) = &stored else {
            panic!("a large table is gzipped");
        };
        assert!(bytes.len() * 5 < large.len(), "{} bytes", bytes.len());
        assert_eq!(stored, Stored::pack(large.clone()), "deterministic");
        assert_eq!(unpack(bytes).unwrap(), large);

        let mut config_map = ConfigMap::default();
        stored.into_config_map(&mut config_map);
        assert!(config_map.data.is_none());
        assert_eq!(from_config_map(&config_map).unwrap().unwrap(), large);
        Stored::Plain(text).into_config_map(&mut config_map);
        assert!(config_map.binary_data.is_none(), "one entry only");
        assert_eq!(from_config_map(&config_map).unwrap().unwrap(), small);
        assert!(from_config_map(&ConfigMap::default()).is_none());
    }

    #[test]
    fn broken_and_oversized_gzip_is_refused() {
        let Stored::Compressed(mut bytes) = Stored::pack(table_like(200 * 1024)) else {
            panic!("gzipped");
        };
        bytes.truncate(bytes.len() / 2);
        assert!(matches!(unpack(&bytes), Err(UnpackError::Corrupt(_))));

        // A bomb: 65 MiB of zeros packs into a few dozen KiB.
        let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
        encoder.write_all(&vec![0; MAX_UNPACKED_BYTES + 1]).unwrap();
        let bomb = encoder.finish().unwrap();
        assert!(bomb.len() < 256 * 1024);
        assert!(matches!(unpack(&bomb), Err(UnpackError::TooLarge)));
    }
}
