//! One Gateway exposing many Contract resources (issue 16's scale: 200 Contracts, 10,000
//! routes): the operator's work for it, as its reconcile does it — compile over the previous
//! table and build the objects, the route ConfigMap (gzipped) among them.
//!
//! Measured: reading and admitting the files; the first plan (no previous table); the plan after
//! one Contract changed (a new generation with one route changed), over the first table; the
//! ConfigMap's stored bytes against the 1 MiB an object may hold; the process's peak RSS.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use gatehouse_api::crd::ExposureState;
use gatehouse_api::exposure::Catalog;
use gatehouse_api::route_table::MAX_TABLE_BYTES;
use gatehouse_operator::plan::{Found, Plan, plan_over};
use gatehouse_operator::render::{input_files, read_bundle};
use gatehouse_operator::settings::ProxySettings;

use super::{NAMESPACE, cpu_time, memory_kib, ms, routes_of};

/// Aggregators the generated routes call (assumed to exist, on port 80).
const AGGREGATORS: usize = 10;
/// Plans after one change, timed; the median is reported.
const CHANGES: usize = 5;

/// Contract `c` of `routes` routes, labelled to be exposed, under `/team-C`.
fn contract(c: usize, routes: usize) -> String {
    let mut yaml = format!(
        "apiVersion: gatehouse.dev/v1alpha1\nkind: Contract\nmetadata:\n  name: team-{c}\n  labels: {{exposed: bench}}\nspec:\n  versions:\n    - version: v1\n      basePath: /team-{c}\n      routes:\n"
    );
    routes_of(&mut yaml, c, AGGREGATORS, routes);
    yaml
}

/// The Gateway: three clients (the routes' header edits name `{client}`), every Contract
/// labelled `exposed: bench`.
fn gateway() -> String {
    let mut yaml = String::from(
        "apiVersion: gatehouse.dev/v1alpha1\nkind: Gateway\nmetadata:\n  name: platform\nspec:\n  clients:\n",
    );
    for client in ["web", "partner", "backoffice"] {
        let _ = write!(
            yaml,
            "    - name: {client}\n      apiKeys:\n        secretRef: {{name: {client}-keys}}\n"
        );
    }
    yaml.push_str("  expose:\n    - selector: {matchLabels: {exposed: bench}}\n");
    yaml
}

/// What dereference would find: the Aggregators, and the catalog; with what the last plan made
/// of the Contracts, as the operator remembers it.
fn found(catalog: Arc<Catalog>, compiled: Option<&Plan>) -> Found {
    Found {
        aggregators: (0..AGGREGATORS)
            .map(|a| (format!("page-{a}"), 80))
            .collect(),
        catalog,
        compiled: compiled.map(|plan| Arc::new(plan.contracts.clone())),
        ..Found::default()
    }
}

/// `found` without what the last plan made of the Contracts.
fn found_fresh(found: &Found) -> Found {
    Found {
        compiled: None,
        ..found.clone()
    }
}

/// The ConfigMap's data bytes, as the API server stores them.
fn stored_bytes(plan: &Plan) -> usize {
    let config_map = &plan.objects.config_map;
    let plain: usize = config_map.data.iter().flatten().map(|(_, v)| v.len()).sum();
    let packed: usize = (config_map.binary_data.iter().flatten())
        .map(|(_, v)| v.0.len())
        .sum();
    plain + packed
}

pub fn run(dir: &Path, contracts: usize, routes: usize) -> anyhow::Result<()> {
    for c in 0..contracts {
        std::fs::write(dir.join(format!("team-{c}.yaml")), contract(c, routes))?;
    }
    std::fs::write(dir.join("gateway.yaml"), gateway())?;
    let settings = ProxySettings::default();

    let started = Instant::now();
    let bundle = read_bundle(&input_files(&[dir.to_path_buf()])?, NAMESPACE)?;
    let read = started.elapsed();
    anyhow::ensure!(bundle.contract_problems().is_empty(), "invalid Contracts");
    let gateway = &bundle.resources[0];

    let cpu_before = cpu_time();
    let started = Instant::now();
    // As the API server would hold them: each with a uid and a generation.
    let stored: Vec<_> = bundle
        .catalog
        .contracts()
        .map(|c| {
            let mut c = (**c).clone();
            c.metadata.uid = c.metadata.name.as_ref().map(|n| format!("uid-{n}"));
            c.metadata.generation = Some(1);
            Arc::new(c)
        })
        .collect();
    let catalog = Arc::new(Catalog::new(stored, Vec::new()));
    let first = plan_over(gateway, &found(catalog.clone(), None), &settings, None)
        .map_err(|p| anyhow::anyhow!("{p:?}"))?;
    let cold = started.elapsed();
    let cold_cpu = cpu_time().saturating_sub(cpu_before);
    let served = first
        .exposed
        .iter()
        .filter(|e| e.state == ExposureState::Served)
        .count();
    anyhow::ensure!(
        served == contracts && first.unresolved.is_empty(),
        "{served} of {contracts} Contracts served"
    );
    anyhow::ensure!(first.table.routes.len() == contracts * routes);

    // One team changes its Contract: a new generation, one route's timeout changed.
    let (mut changes, mut compiles) = (Vec::new(), Vec::new());
    let mut last = first.clone();
    for change in 0..CHANGES {
        let team = (change * 37) % contracts;
        let mut changed: Vec<_> = catalog.contracts().cloned().collect();
        let at = changed
            .iter()
            .position(|c| c.metadata.name.as_deref() == Some(format!("team-{team}").as_str()))
            .expect("the changed Contract");
        let mut contract = (*changed[at]).clone();
        contract.metadata.generation = Some(2 + change as i64);
        contract.spec.versions[0].routes[0].timeout = Some(format!("{}s", 3 + change));
        changed[at] = Arc::new(contract);
        let catalog = Arc::new(Catalog::new(changed, Vec::new()));
        let found = found(catalog, Some(&last));
        // The compile alone, then the whole plan (compile, table bytes, gzip, digest, objects).
        let started = Instant::now();
        let compiled = gateway
            .compile_over(&found.compile_context(&settings), Some(&last.table))
            .map_err(|p| anyhow::anyhow!("{p:?}"))?;
        compiles.push(started.elapsed());
        drop(compiled);
        let started = Instant::now();
        let plan = plan_over(gateway, &found, &settings, Some(&last.table))
            .map_err(|p| anyhow::anyhow!("{p:?}"))?;
        changes.push(started.elapsed());
        anyhow::ensure!(
            plan.table.digest() != last.table.digest(),
            "the change changed nothing"
        );
        // The same table as a plan that reuses nothing.
        let scratch = plan_over(gateway, &found_fresh(&found), &settings, Some(&last.table))
            .map_err(|p| anyhow::anyhow!("{p:?}"))?;
        anyhow::ensure!(
            scratch.table == plan.table,
            "reusing the Contracts changed the table"
        );
        last = plan;
    }
    changes.sort();
    compiles.sort();
    let change = changes[changes.len() / 2];
    let compile = compiles[compiles.len() / 2];
    let peak = memory_kib("VmHWM:");
    let stored = stored_bytes(&first);
    let json = first.table.to_bytes().len();

    println!(
        "one Gateway exposing {contracts} Contracts of {routes} routes ({} routes): read+admit {:.1} ms",
        first.table.routes.len(),
        ms(read)
    );
    println!(
        "first plan (compile + objects, no previous table): {:.1} ms wall, {:.0} ms CPU",
        ms(cold),
        ms(cold_cpu)
    );
    println!(
        "plan after one Contract changed, over the previous table: median {:.1} ms of {CHANGES} ({})",
        ms(change),
        changes
            .iter()
            .map(|d| format!("{:.1}", ms(*d)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "of which the compile alone (the unchanged Contracts reused): median {:.1} ms; the rest is the table's bytes, gzip, digest and objects",
        ms(compile)
    );
    println!(
        "route table: {:.1} KiB JSON, {:.1} KiB stored in the ConfigMap ({:.0} % of the {} KiB limit)",
        json as f64 / 1024.0,
        stored as f64 / 1024.0,
        100.0 * stored as f64 / MAX_TABLE_BYTES as f64,
        MAX_TABLE_BYTES / 1024
    );
    println!(
        "RESULT contracts={contracts} routes={} read_ms={:.1} cold_ms={:.1} change_ms={:.1} stored_kib={:.1} peak_mib={:.1}",
        first.table.routes.len(),
        ms(read),
        ms(cold),
        ms(change),
        stored as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    Ok(())
}
