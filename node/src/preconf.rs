//! `weft preconf verify`: checks pre-confirmations offline, against a committee file alone.

use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;
use weft_attest::Preconfirmation;

/// Reads pre-confirmations from `input` (a file, or stdin for `-`): one JSON object, a JSON
/// array of them, or one per line; each may be wrapped in a JSON-RPC response (`{"result":
/// ...}`). Prints one verdict per pre-confirmation; fails if any is not valid.
pub fn verify(committee: &Path, input: &Path) -> Result<()> {
    let committee = weft_config::load_committee(committee)
        .with_context(|| format!("loading the committee {}", committee.display()))?;
    let mut text = String::new();
    if input == Path::new("-") {
        std::io::stdin()
            .read_to_string(&mut text)
            .context("reading stdin")?;
    } else {
        text = std::fs::read_to_string(input)
            .with_context(|| format!("reading {}", input.display()))?;
    }
    let values = parse(&text)?;
    if values.is_empty() {
        bail!("no pre-confirmation in the input");
    }
    let mut failed = 0;
    for (n, value) in values.into_iter().enumerate() {
        let verdict = serde_json::from_value::<Preconfirmation>(value)
            .map_err(|e| format!("not a pre-confirmation: {e}"))
            .and_then(|p| {
                p.verify(&committee).map_err(|e| e.to_string())?;
                Ok(p)
            });
        match verdict {
            Ok(p) => println!(
                "valid: transaction {} is transaction {} of sub-DAG {}",
                p.tx_hash, p.tx_index, p.sub_dag_index
            ),
            Err(e) => {
                failed += 1;
                println!("INVALID pre-confirmation {n}: {e}");
            }
        }
    }
    if failed > 0 {
        bail!("{failed} pre-confirmation(s) do not verify");
    }
    Ok(())
}

/// The pre-confirmation objects of the input, unwrapped from JSON-RPC responses.
fn parse(text: &str) -> Result<Vec<serde_json::Value>> {
    let values: Vec<serde_json::Value> = match serde_json::from_str(text) {
        Ok(serde_json::Value::Array(values)) => values,
        Ok(value) => vec![value],
        Err(_) => text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(n, l)| {
                serde_json::from_str(l).with_context(|| format!("line {} is not JSON", n + 1))
            })
            .collect::<Result<_>>()?,
    };
    Ok(values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::Object(mut o) if o.contains_key("jsonrpc") => {
                o.remove("result").unwrap_or(serde_json::Value::Null)
            }
            v => v,
        })
        .collect())
}
