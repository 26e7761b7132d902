//! `weft keys generate` and `weft committee new`.

use anyhow::{bail, Context, Result};
use rand::{rngs::OsRng, rngs::StdRng, SeedableRng};
use std::path::Path;
use weft_config::{committee_on, save_committee, save_keys, save_parameters, Keys, Parameters};
use weft_types::Committee;

pub fn keys(out: &Path) -> Result<()> {
    if out.exists() {
        bail!("{} exists; refusing to overwrite a key file", out.display());
    }
    let keys = Keys::generate(&mut OsRng);
    save_keys(out, &keys)?;
    println!("protocol key {}", keys.protocol.public());
    println!("network key  {}", keys.network.public());
    Ok(())
}

pub fn committee(
    authorities: usize,
    workers: u32,
    base_port: u16,
    hosts: &[std::net::IpAddr],
    out_dir: &Path,
) -> Result<()> {
    let hosts = match hosts {
        [] => vec![std::net::IpAddr::from([127, 0, 0, 1]); authorities],
        given if given.len() == authorities => given.to_vec(),
        given => bail!(
            "--hosts names {} hosts for {authorities} authorities",
            given.len()
        ),
    };
    if authorities == 0 || authorities > Committee::MAX_AUTHORITIES {
        bail!(
            "--authorities must be between 1 and {}",
            Committee::MAX_AUTHORITIES
        );
    }
    if workers == 0 || workers as usize > Committee::MAX_WORKERS {
        bail!("--workers must be between 1 and {}", Committee::MAX_WORKERS);
    }
    let ports = authorities as u64 * (1 + 2 * workers as u64);
    if base_port as u64 + ports > u16::MAX as u64 || base_port < 1024 {
        bail!("--base-port {base_port} leaves no room for {ports} ports below 65536 (and must be ≥ 1024)");
    }
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let (keys, file) = committee_on(&hosts, workers, base_port, &mut StdRng::from_rng(OsRng)?);
    // Validate what we write, so a generated committee is always loadable.
    Committee::new(file.clone())?;
    for (i, k) in keys.iter().enumerate() {
        save_keys(&out_dir.join(format!("keys-{i}.json")), k)?;
    }
    save_committee(&out_dir.join("committee.json"), &file)?;
    save_parameters(&out_dir.join("parameters.json"), &Parameters::default())?;
    println!(
        "wrote committee.json, parameters.json and keys-0..{}.json to {} ({} authorities × {} workers, ports from {})",
        authorities - 1,
        out_dir.display(),
        authorities,
        workers,
        base_port,
    );
    Ok(())
}
