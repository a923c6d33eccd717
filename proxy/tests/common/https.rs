//! A `gatehouse-proxy` with an HTTPS listener: its table and certificate Secrets mounted as the
//! kubelet mounts them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use super::tables;
use super::tls::Leaf;
use super::{ConfigMapDir, Proxy, free_port, temp_dir};
use gatehouse_api::route_table::{
    CertificateEntry, RouteEntry, RouteTable, TlsEntry, TlsVersion, UnknownServerName,
};

/// A Secret's files: data key and value.
pub type SecretData<'a> = &'a [(&'a str, &'a [u8])];

/// A proxy with an HTTPS listener, its table and Secrets mounted under its folder.
pub struct Https {
    pub proxy: Proxy,
    pub tls: SocketAddr,
    pub routes: ConfigMapDir,
    pub secrets: PathBuf,
    pub mounts: Vec<ConfigMapDir>,
}

impl Https {
    /// Starts the proxy on `table` with each `(secret, leaf)` mounted.
    pub async fn start(name: &str, table: &RouteTable, certificates: &[(&str, &Leaf)]) -> Self {
        Self::start_with(name, table, certificates, &[]).await
    }

    pub async fn start_with(
        name: &str,
        table: &RouteTable,
        certificates: &[(&str, &Leaf)],
        flags: &[&str],
    ) -> Self {
        Self::start_mounted(name, table, certificates, &[], flags).await
    }

    /// Starts the proxy with `others` mounted too: each a Secret's name and its files.
    pub async fn start_mounted(
        name: &str,
        table: &RouteTable,
        certificates: &[(&str, &Leaf)],
        others: &[(&str, SecretData<'_>)],
        flags: &[&str],
    ) -> Self {
        let dir = temp_dir(name);
        let secrets = dir.join("secrets");
        let mut mounts: Vec<ConfigMapDir> = certificates
            .iter()
            .map(|(secret, leaf)| mount_certificate(&secrets, secret, leaf))
            .collect();
        for (secret, files) in others {
            let mut mount = ConfigMapDir::new(&secrets.join(secret));
            mount.publish_files(files);
            mounts.push(mount);
        }
        let mut routes = ConfigMapDir::new(&dir.join("routes"));
        routes.publish(&table.to_bytes());
        let tls: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut args = vec![
            "--routes".to_owned(),
            routes.root.to_str().unwrap().to_owned(),
            "--secrets-dir".to_owned(),
            secrets.to_str().unwrap().to_owned(),
            "--listen-tls".to_owned(),
            tls.to_string(),
        ];
        args.extend(flags.iter().map(|f| (*f).to_owned()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let proxy = Proxy::start(&args, &dir).await;
        proxy.wait_admin("/readyz", 200).await;
        Self {
            proxy,
            tls,
            routes,
            secrets,
            mounts,
        }
    }

    /// Waits until `count` handshakes ended with `outcome` (counted once the server side of a
    /// handshake ends, which may follow the client's).
    pub async fn wait_handshakes(&self, outcome: &str, count: usize) {
        let line = format!("gatehouse_tls_handshakes_total{{outcome=\"{outcome}\"}} {count}");
        self.proxy
            .wait_for("/metrics", |r| r.text().contains(&line))
            .await;
    }

    /// Publishes a new table and waits until it serves.
    pub async fn publish(&mut self, table: &RouteTable, generation: u64) {
        self.routes.publish(&table.to_bytes());
        self.proxy.wait_generation(generation).await;
    }
}

/// Mounts `leaf` as the kubelet mounts Secret `secret` under `secrets`.
pub fn mount_certificate(secrets: &Path, secret: &str, leaf: &Leaf) -> ConfigMapDir {
    let mut mount = ConfigMapDir::new(&secrets.join(secret));
    mount.publish_files(&[
        ("tls.crt", leaf.cert_pem.as_bytes()),
        ("tls.key", leaf.key_pem.as_bytes()),
    ]);
    mount
}

/// Replaces the certificate in `mount`, as the kubelet does when its Secret changes.
pub fn publish_certificate(mount: &mut ConfigMapDir, leaf: &Leaf) {
    mount.publish_files(&[
        ("tls.crt", leaf.cert_pem.as_bytes()),
        ("tls.key", leaf.key_pem.as_bytes()),
    ]);
}

/// A table serving `routes` over HTTPS with `certificates` (Secret, host names).
pub fn tls_table(
    routes: Vec<RouteEntry>,
    certificates: &[(&str, &[&str])],
    unknown_server_name: UnknownServerName,
    min_version: TlsVersion,
) -> RouteTable {
    let mut table = tables::table(routes);
    table.tls = Some(TlsEntry {
        certificates: certificates
            .iter()
            .map(|(secret, hosts)| CertificateEntry {
                secret: (*secret).to_owned(),
                hosts: hosts.iter().map(|h| (*h).to_owned()).collect(),
            })
            .collect(),
        unknown_server_name,
        min_version,
    });
    table
}
