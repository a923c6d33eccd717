//! hosts(5) files: one `ADDRESS NAME [ALIAS]...` per line, `#` to the end of a line is a
//! comment, names compare case-insensitively, and the first line naming a host wins (as the C
//! library reads `/etc/hosts`). Lines whose address does not parse are skipped, as the C library
//! skips them. `--hosts-file` feeds these to the address book.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

/// A parsed hosts file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostsFile {
    names: HashMap<String, IpAddr>,
}

impl HostsFile {
    /// Parses hosts(5) text.
    pub fn parse(text: &str) -> Self {
        let mut names = HashMap::new();
        for line in text.lines() {
            let line = line.split_once('#').map_or(line, |(before, _)| before);
            let mut fields = line.split_ascii_whitespace();
            let Some(Ok(address)) = fields.next().map(str::parse::<IpAddr>) else {
                continue;
            };
            for name in fields {
                names.entry(name.to_ascii_lowercase()).or_insert(address);
            }
        }
        Self { names }
    }

    /// Reads and parses the file at `path`.
    pub fn read(path: &Path) -> std::io::Result<Self> {
        Ok(Self::parse(&std::fs::read_to_string(path)?))
    }

    /// The address of `name`, when the file names it.
    pub fn lookup(&self, name: &str) -> Option<IpAddr> {
        self.names.get(&name.to_ascii_lowercase()).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_aliases_comments_and_the_first_line_wins() {
        let hosts = HostsFile::parse(
            "# a comment line\n\
             127.0.0.1   localhost\n\
             10.0.0.7\torders.shop.svc Orders-Alias # trailing comment\n\
             ::1 v6.shop.svc\n\
             10.0.0.8 orders.shop.svc\n\
             not-an-address skipped.svc\n\
             10.0.0.9\n",
        );
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert_eq!(hosts.lookup("orders.shop.svc"), ip("10.0.0.7"));
        assert_eq!(hosts.lookup("orders-alias"), ip("10.0.0.7"));
        assert_eq!(hosts.lookup("ORDERS.shop.svc"), ip("10.0.0.7"));
        assert_eq!(hosts.lookup("v6.shop.svc"), ip("::1"));
        assert_eq!(hosts.lookup("skipped.svc"), None);
        assert_eq!(hosts.lookup("comment"), None);
        assert_eq!(hosts.lookup("missing.svc"), None);
    }
}
