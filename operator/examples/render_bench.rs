//! Render benchmark: `gatehouse-operator render -f DIR` over 1,000 generated resources.
//!
//! Generates Gateways, EdgeServices and Aggregators (20 routes or endpoints each, with path
//! templates, header edits, weighted backends, retries, redirects, direct responses, Aggregator
//! backends and aggregation steps with jq rules), writes one YAML file per resource, then times
//! `gatehouse_operator::render::render_paths` — exactly what `render -f DIR` runs: read and
//! admit every file (schema + CEL), validate and compile every resource, build its objects and
//! print them as YAML. Reports wall time and the process's peak resident memory (`VmHWM`),
//! then (after the peak was read) a breakdown of the same work by phase.
//!
//! ```text
//! cargo run --release -p gatehouse-operator --example render_bench [-- RESOURCES]
//! cargo run --release -p gatehouse-operator --example render_bench -- contracts [CONTRACTS [ROUTES]]
//! ```
//! The second form measures one Gateway exposing CONTRACTS Contract resources (default 200) of
//! ROUTES routes each (default 50): see [`contracts`].
//! `bench/render/run.sh` runs it three times in fresh processes.
#![forbid(unsafe_code)]
#![allow(missing_docs)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gatehouse_api::compile::CompileContext;
use gatehouse_api::resource::Resource;
use gatehouse_operator::objects;
use gatehouse_operator::render::{input_files, read_bundle, render_paths};
use gatehouse_operator::settings::ProxySettings;

const ROUTES_PER_RESOURCE: usize = 20;

#[path = "render_bench/contracts.rs"]
mod contracts;
const NAMESPACE: &str = "bench";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = std::env::temp_dir().join(format!("gatehouse-render-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = match args.first().map(String::as_str) {
        Some("contracts") => {
            let count = |i: usize, default| args.get(i).map_or(Ok(default), |a| a.parse());
            contracts::run(&dir, count(1, 200)?, count(2, 50)?)
        }
        Some(resources) => run(&dir, resources.parse()?),
        None => run(&dir, 1000),
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run(dir: &Path, resources: usize) -> anyhow::Result<()> {
    let mix = write_resources(dir, resources)?;
    let input_bytes: u64 = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    let rss_before = memory_kib("VmRSS:");
    let settings = ProxySettings::default();
    let paths = [dir.to_path_buf()];

    let cpu_before = cpu_time();
    let started = Instant::now();
    let rendered = render_paths(&paths, NAMESPACE, &settings)
        .map_err(|e| anyhow::anyhow!("render refused the generated resources: {e}"))?;
    // As `render` does with its standard output.
    let mut out = std::io::BufWriter::new(std::fs::File::create("/dev/null")?);
    rendered.write_to(&mut out)?;
    let wall = started.elapsed();
    let cpu = cpu_time().saturating_sub(cpu_before);
    let peak = memory_kib("VmHWM:");
    let output_bytes = rendered.len();
    let documents = rendered.to_string().matches("---\n").count();
    drop(rendered);

    println!(
        "resources: {resources} ({mix}), {ROUTES_PER_RESOURCE} routes/endpoints each, {} KiB of YAML in",
        input_bytes / 1024
    );
    println!(
        "render_paths: {:.1} ms wall, {:.0} ms CPU, peak RSS (VmHWM) {:.1} MiB (RSS before: {:.1} MiB); {documents} manifests, {:.1} MiB of YAML out",
        ms(wall),
        ms(cpu),
        peak as f64 / 1024.0,
        rss_before as f64 / 1024.0,
        output_bytes as f64 / 1_048_576.0
    );
    let (read, compile, build, print) = phases(&paths, &settings)?;
    println!(
        "phases (second pass, warm): read+admit {:.1} ms, validate+compile {:.1} ms, build objects {:.1} ms, YAML {:.1} ms",
        ms(read),
        ms(compile),
        ms(build),
        ms(print)
    );
    println!(
        "RESULT wall_ms={:.1} cpu_ms={:.0} peak_mib={:.1}",
        ms(wall),
        ms(cpu),
        peak as f64 / 1024.0
    );
    Ok(())
}

/// The work of `render_paths`, timed by phase.
fn phases(
    paths: &[PathBuf],
    settings: &ProxySettings,
) -> anyhow::Result<(Duration, Duration, Duration, Duration)> {
    let started = Instant::now();
    let bundle = read_bundle(&input_files(paths)?, NAMESPACE)?;
    let resources = bundle.resources;
    let read = started.elapsed();

    // Every Aggregator is in the input (as `render` assumes), on the default port.
    let context = CompileContext {
        cluster_domain: settings.cluster_domain.clone(),
        aggregator_ports: resources
            .iter()
            .filter(|r| matches!(r, Resource::Aggregator(_)))
            .map(|r| (r.name().to_owned(), 80))
            .collect(),
        catalog: bundle.catalog,
        ..CompileContext::default()
    };
    let started = Instant::now();
    let tables = resources
        .iter()
        .map(|r| r.compile(&context))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|problems| anyhow::anyhow!("{problems:?}"))?;
    let compile = started.elapsed();

    let started = Instant::now();
    let objects: Vec<_> = resources
        .iter()
        .zip(&tables)
        .map(|(resource, table)| objects::render(resource, table, settings))
        .collect();
    let build = started.elapsed();

    let started = Instant::now();
    let mut out = String::new();
    for manifest in objects.iter().map(|o| o.manifests()) {
        for manifest in manifest? {
            out.push_str("---\n");
            out.push_str(&serde_saphyr::to_string(&manifest)?);
        }
    }
    let print = started.elapsed();
    anyhow::ensure!(!out.is_empty(), "nothing printed");
    Ok((read, compile, build, print))
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// User + system CPU time of the process so far (`/proc/self/stat`, 10 ms ticks; zero where
/// there is no procfs). Unlike wall time it does not grow when other processes share the CPUs.
fn cpu_time() -> Duration {
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let user: u64 = fields.get(11)?.parse().ok()?;
            let system: u64 = fields.get(12)?.parse().ok()?;
            Some(user + system)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// A `/proc/self/status` field in KiB (0 where there is no procfs).
fn memory_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with(field))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// Writes `count` resources, one file each: 2 in 5 Gateways, 2 in 5 EdgeServices, 1 in 5
/// Aggregators. Returns a description of the mix.
fn write_resources(dir: &Path, count: usize) -> anyhow::Result<String> {
    let aggregators = count / 5;
    let (mut gateways, mut edges) = (0, 0);
    for i in 0..count {
        let (name, yaml) = if i < aggregators {
            (format!("page-{i}"), aggregator(i))
        } else if i % 2 == 0 {
            gateways += 1;
            (format!("gateway-{i}"), gateway(i, aggregators))
        } else {
            edges += 1;
            (format!("edge-{i}"), edge_service(i, aggregators))
        };
        std::fs::write(dir.join(format!("{name}.yaml")), yaml)?;
    }
    Ok(format!(
        "{gateways} Gateways, {edges} EdgeServices, {aggregators} Aggregators"
    ))
}

fn gateway(i: usize, aggregators: usize) -> String {
    let mut yaml = format!(
        "apiVersion: gatehouse.dev/v1alpha1\nkind: Gateway\nmetadata:\n  name: gateway-{i}\n  labels: {{team: team-{}}}\nspec:\n  clients:\n",
        i % 7
    );
    for client in ["web", "partner", "backoffice"] {
        let _ = write!(
            yaml,
            "    - name: {client}\n      apiKeys:\n        secretRef: {{name: {client}-{i}-keys}}\n      rateLimit: {{requestsPerSecond: 200, burst: 400}}\n"
        );
    }
    yaml.push_str("  contracts:\n    - version: v1\n      routes:\n");
    routes(&mut yaml, i, aggregators);
    yaml.push_str(
        "  deployment:\n    autoscaling: {minReplicas: 2, maxReplicas: 10, targetCPUUtilizationPercentage: 70}\n    disruptionBudget: {maxUnavailable: 1}\n  service:\n    type: ClusterIP\n    port: 80\n    annotations: {team: shop}\n",
    );
    yaml
}

fn edge_service(i: usize, aggregators: usize) -> String {
    let mut yaml = format!(
        "apiVersion: gatehouse.dev/v1alpha1\nkind: EdgeService\nmetadata:\n  name: edge-{i}\nspec:\n  client:\n    name: app-{i}\n    apiKeys:\n      secretRef: {{name: app-{i}-keys}}\n    rateLimit: {{requestsPerSecond: 100, burst: 200}}\n  contracts:\n    - version: v2\n      routes:\n"
    );
    routes(&mut yaml, i, aggregators);
    yaml.push_str(
        "  deployment:\n    autoscaling: {minReplicas: 2, maxReplicas: 20, targetCPUUtilizationPercentage: 60}\n",
    );
    yaml
}

/// 20 routes of five kinds, four each, on disjoint paths.
fn routes(yaml: &mut String, i: usize, aggregators: usize) {
    routes_of(yaml, i, aggregators, ROUTES_PER_RESOURCE);
}

/// `count` routes of five kinds, on disjoint paths (see [`routes`]).
fn routes_of(yaml: &mut String, i: usize, aggregators: usize, count: usize) {
    for r in 0..count {
        let service = format!("svc-{}", (i + r) % 40);
        let _ = match r % 5 {
            // A templated proxy route with header edits and retries.
            0 => write!(
                yaml,
                r#"        - name: product-{r}
          match: {{path: "/catalog{r}/products/{{id}}", methods: [GET, HEAD]}}
          backend: {{service: {service}, port: 8080, path: "/items/{{id}}"}}
          requestHeaders:
            set: {{x-client: "{{client}}", x-request-id: "{{requestId}}"}}
            add: {{x-product: "{{id}}"}}
            remove: [cookie]
          responseHeaders:
            set: {{cache-control: "public, max-age=60"}}
            remove: [x-powered-by, server]
          timeout: 2s
          retries: {{attempts: 2}}
"#
            ),
            // A weighted migration on a prefix, with a header condition.
            1 => write!(
                yaml,
                r#"        - name: orders-{r}
          match:
            path: /orders{r}
            pathType: Prefix
            headers: [{{name: x-tenant}}]
          backends:
            - {{service: {service}, port: 8080, weight: 90}}
            - {{service: {service}-v2, port: 8080, path: /api/orders{r}, weight: 10}}
          requestHeaders:
            set: {{x-client: "{{client}}"}}
          timeout: 5s
"#
            ),
            // An inline aggregation: product, then its seller; reviews optional.
            2 => write!(
                yaml,
                r#"        - name: card-{r}
          match: {{path: "/cards{r}/{{id}}", methods: [GET]}}
          aggregate:
            steps:
              - name: product
                call: {{service: {service}, port: 8080, path: "/items/{{id}}"}}
                filter: "{{id, title, price, image: .images[0]}}"
                timeout: 400ms
              - name: seller
                call: {{service: sellers, port: 8080, path: "/sellers/{{product.sellerId}}"}}
                after: [product]
                timeout: 300ms
              - name: reviews
                call: {{service: reviews, port: 8080, path: "/reviews?product={{id}}"}}
                optional: true
                timeout: 300ms
            response: "{{id: .product.id, title: .product.title, seller: .seller.name, stars: ((.reviews // []) | map(.stars) | add)}}"
            timeout: 1s
          responseHeaders:
            set: {{x-served-by: "edge-{{client}}"}}
"#
            ),
            // An Aggregator backend.
            3 => write!(
                yaml,
                r#"        - name: page-{r}
          match: {{path: "/pages{r}/{{id}}", methods: [GET]}}
          backend: {{aggregator: page-{}}}
          timeout: 3s
"#,
                (i + r) % aggregators.max(1)
            ),
            // A redirect or a direct response.
            _ if r % 2 == 0 => write!(
                yaml,
                r#"        - name: moved-{r}
          match: {{path: "/old{r}/{{id}}"}}
          redirect: {{path: "/v1/new{r}/{{id}}", statusCode: 308}}
"#
            ),
            _ => write!(
                yaml,
                r#"        - name: status-{r}
          match: {{path: /status{r}, methods: [GET, HEAD]}}
          respond:
            status: 200
            body: '{{"status":"ok","route":{r}}}'
            contentType: application/json
          responseHeaders:
            add: {{x-route: "status-{r}"}}
"#
            ),
        };
    }
}

fn aggregator(i: usize) -> String {
    let mut yaml = format!(
        "apiVersion: gatehouse.dev/v1alpha1\nkind: Aggregator\nmetadata:\n  name: page-{i}\nspec:\n  endpoints:\n"
    );
    for e in 0..ROUTES_PER_RESOURCE {
        let _ = write!(
            yaml,
            r#"    - name: page-{e}
      match: {{path: "/pages{e}/{{id}}", methods: [GET]}}
      steps:
        - name: product
          call: {{service: catalog-{}, port: 8080, path: "/items/{{id}}"}}
          timeout: 500ms
        - name: reviews
          call: {{service: reviews, port: 8080, path: "/reviews?product={{id}}"}}
          optional: true
          timeout: 300ms
          filter: "map({{stars, text}})"
        - name: seller
          call: {{service: sellers, port: 8080, path: "/sellers/{{product.sellerId}}", headers: {{x-request-id: "{{requestId}}"}}}}
          after: [product]
          timeout: 500ms
      response: >-
        {{id: .product.id, title: .product.title, price: .product.price,
         seller: .seller.name, reviews: (.reviews // [])}}
      timeout: 2s
      failurePolicy: bestEffort
"#,
            (i + e) % 40
        );
    }
    yaml.push_str("  deployment:\n    replicas: 2\n");
    yaml
}
