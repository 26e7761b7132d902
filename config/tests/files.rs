//! Config files round-trip, and every kind of bad file is rejected with an error naming the
//! field at fault.

use rand::{rngs::StdRng, SeedableRng};
use std::path::{Path, PathBuf};
use weft_config::*;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    write_file(&p, text.as_bytes(), SECRET_MODE).unwrap();
    p
}

fn committee_json(dir: &Path) -> serde_json::Value {
    let (_, file) = local_committee(4, 1, 5000, &mut StdRng::seed_from_u64(1));
    let p = dir.join("committee.json");
    save_committee(&p, &file).unwrap();
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn generated_files_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let (keys, file) = local_committee(4, 2, 6000, &mut StdRng::seed_from_u64(2));
    let cp = dir.path().join("committee.json");
    save_committee(&cp, &file).unwrap();
    let committee = load_committee(&cp).unwrap();
    assert_eq!(committee.size(), 4);
    assert_eq!(committee.num_workers(), 2);

    let kp = dir.path().join("keys.json");
    save_keys(&kp, &keys[0]).unwrap();
    let loaded = load_keys(&kp).unwrap();
    assert_eq!(loaded.protocol.public(), keys[0].protocol.public());
    assert_eq!(loaded.network.public(), keys[0].network.public());
    assert!(committee
        .index_of_protocol_key(&loaded.protocol.public())
        .is_some());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&kp).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key files must not be world-readable");

    let pp = dir.path().join("parameters.json");
    let params = Parameters {
        gc_depth: 77,
        ..Default::default()
    };
    save_parameters(&pp, &params).unwrap();
    assert_eq!(load_parameters(&pp).unwrap(), params);
}

#[test]
fn partial_parameters_take_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "p.json",
        r#"{"batch_size": 1000000, "max_message_size": 8000000}"#,
    );
    let params = load_parameters(&p).unwrap();
    assert_eq!(params.batch_size, 1_000_000);
    assert_eq!(params.gc_depth, Parameters::default().gc_depth);
}

#[test]
fn bad_parameters_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (r#"{"gc_depth": "fifty"}"#, "gc_depth"),
        (r#"{"gc_depth": -1}"#, "gc_depth"),
        (r#"{"gc_depth": 0}"#, "gc_depth"),
        (r#"{"batch_size": 10000000}"#, "max_message_size"),
        (r#"{"max_header_dealy_ms": 10}"#, "max_header_dealy_ms"),
        (r#"{"max_batch_delay_ms": 0}"#, "max_batch_delay_ms"),
    ];
    for (text, field) in cases {
        let p = write(dir.path(), "p.json", text);
        let e = load_parameters(&p).unwrap_err();
        assert_eq!(e.field(), Some(field), "{text} gave {e}");
        assert!(
            e.to_string().contains("p.json"),
            "error names the file: {e}"
        );
    }
    // A misspelled field is named, and the message lists the fields that exist.
    let p = write(dir.path(), "p.json", r#"{"max_header_dealy_ms": 10}"#);
    assert!(load_parameters(&p)
        .unwrap_err()
        .to_string()
        .contains("expected one of"));
}

#[test]
fn bad_committees_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let base = committee_json(dir.path());
    type Mutation = Box<dyn Fn(&mut serde_json::Value)>;
    let cases: Vec<(Mutation, &str)> = vec![
        (
            Box::new(|v| v["authorities"][1]["stake"] = "ten".into()),
            "authorities[1].stake",
        ),
        (
            Box::new(|v| v["authorities"][2]["stake"] = 0.into()),
            "authorities[2].stake",
        ),
        (
            Box::new(|v| v["authorities"][0]["protocol_key"] = "zz".into()),
            "authorities[0].protocol_key",
        ),
        (
            Box::new(|v| v["authorities"][3]["network_key"] = "00".into()),
            "authorities[3].network_key",
        ),
        (
            Box::new(|v| v["authorities"][1]["primary_address"] = "localhost".into()),
            "authorities[1].primary_address",
        ),
        (Box::new(|v| v["epoch"] = "x".into()), "epoch"),
        (
            Box::new(|v| v["authorities"] = serde_json::json!([])),
            "authorities",
        ),
        (
            Box::new(|v| {
                v["authorities"][2]["worker_addresses"] =
                    serde_json::json!({"0": "127.0.0.1:1", "1": "127.0.0.1:2"})
            }),
            "authorities[2].worker_addresses",
        ),
        (
            Box::new(|v| {
                let a = v["authorities"][0]["primary_address"].clone();
                v["authorities"][3]["primary_address"] = a;
            }),
            "authorities[3].primary_address",
        ),
    ];
    for (mutate, field) in cases {
        let mut v = base.clone();
        mutate(&mut v);
        let p = write(dir.path(), "c.json", &v.to_string());
        let e = load_committee(&p).unwrap_err();
        assert_eq!(e.field(), Some(field), "expected {field}, got {e}");
    }
}

#[test]
fn bad_key_files_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate(&mut StdRng::seed_from_u64(3));
    let p = dir.path().join("k.json");
    save_keys(&p, &keys).unwrap();
    let good: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();

    let mut v = good.clone();
    v["network_key"] = "abc".into();
    let e = load_keys(&write(dir.path(), "k.json", &v.to_string())).unwrap_err();
    assert_eq!(e.field(), Some("network_key"));

    let mut v = good.clone();
    v["protocol_public_key"] = good["network_public_key"].clone();
    let e = load_keys(&write(dir.path(), "k.json", &v.to_string())).unwrap_err();
    assert_eq!(e.field(), Some("protocol_public_key"));

    let e = load_keys(&dir.path().join("missing.json")).unwrap_err();
    assert!(matches!(e, ConfigError::Read { .. }));
}

/// Authorities alone on their hosts all use the ports from the base (containers of one
/// committee look alike); those sharing a host get the next free ones; and `listen_host`
/// keeps the committee's port on another IP.
#[test]
fn committees_on_hosts_share_ports_only_across_hosts() {
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let hosts = [ip("10.0.0.1"), ip("10.0.0.2"), ip("10.0.0.1")];
    let (_, file) = committee_on(&hosts, 1, 7000, &mut StdRng::seed_from_u64(3));
    let primaries: Vec<String> = file
        .authorities
        .iter()
        .map(|a| a.primary_address.to_string())
        .collect();
    assert_eq!(
        primaries,
        ["10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.1:7003"]
    );
    assert_eq!(
        file.authorities[2].transaction_addresses[&0].to_string(),
        "10.0.0.1:7005"
    );
    let parameters = Parameters {
        listen_host: Some(ip("0.0.0.0")),
        ..Parameters::default()
    };
    assert_eq!(
        parameters
            .listen_address("10.0.0.2:7001".parse().unwrap())
            .to_string(),
        "0.0.0.0:7001"
    );
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o777
}

/// A key file is born 0600 (no window in which it is readable by others), leaves no temporary
/// file behind, and a link planted where it goes is replaced, not written through.
#[test]
fn key_files_are_private_from_the_start_and_never_follow_a_link() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate(&mut StdRng::seed_from_u64(4));
    let p = dir.path().join("keys.json");
    save_keys(&p, &keys).unwrap();
    assert_eq!(mode(&p), 0o600);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("keys.json")]);

    let victim = dir.path().join("victim");
    std::fs::write(&victim, "untouched").unwrap();
    let planted = dir.path().join("planted.json");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    save_keys(&planted, &keys).unwrap();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    assert!(!std::fs::symlink_metadata(&planted).unwrap().is_symlink());
    assert_eq!(mode(&planted), 0o600);
    load_keys(&planted).unwrap();
}

/// A key file group or others can read is refused with a reason that says how to fix it;
/// 0600 and 0400 load.
#[test]
fn key_files_others_can_read_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::generate(&mut StdRng::seed_from_u64(5));
    let p = dir.path().join("keys.json");
    save_keys(&p, &keys).unwrap();
    for (bits, refused) in [
        (0o600, false),
        (0o400, false),
        (0o640, true),
        (0o604, true),
        (0o660, true),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(bits)).unwrap();
        match load_keys(&p) {
            Err(ConfigError::Exposed { reason, .. }) if refused => {
                assert!(reason.contains("chmod 600"), "{reason}")
            }
            Ok(_) if !refused => {}
            other => panic!("mode {bits:o}: {other:?}"),
        }
    }
}

/// The ownership rule, PostgreSQL's: a file of this user must be 0600/0400; root's may be
/// group-readable (a Kubernetes secret under `fsGroup`); any other owner is refused, as is
/// anything not a regular file.
#[test]
fn secret_ownership_rules() {
    let (me, root, other) = (1000, 0, 1001);
    let file = 0o100000;
    assert_eq!(exposure(me, file | 0o600, me), None);
    assert_eq!(exposure(root, file | 0o440, me), None);
    assert_eq!(exposure(root, file | 0o640, me), None);
    assert!(exposure(root, file | 0o444, me).is_some());
    assert!(exposure(root, file | 0o460, me).is_some());
    assert!(exposure(other, file | 0o400, me).is_some());
    assert!(exposure(me, 0o040000 | 0o700, me).is_some());
    assert_eq!(exposure(root, file | 0o600, root), None);
}
