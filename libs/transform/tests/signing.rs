//! imgproxy-style URL signatures.
#![allow(clippy::unwrap_used)]

use pinhole_transform::{KeyError, Signer, is_unsigned, parse_key_pairs};

const KEY: &str = "943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881";
const SALT: &str = "520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5";
const ID: &str = "0190a5b4-7c1e-7d3a-9f00-123456789abc";

fn signer() -> Signer {
    Signer::new(parse_key_pairs(&format!("{KEY}:{SALT}")).unwrap()).unwrap()
}

/// Expected value computed independently with Python's standard library:
///
/// ```text
/// python3 -c "import hmac,hashlib,base64
/// key=bytes.fromhex('943b421c9eb07c830af81030552c86009268de4e532ba2ee2eab8247c6da0881')
/// salt=bytes.fromhex('520f986b998545b4785e0defbc4f3c1203f22de2374a3d53cb7a7fe9fea309c5')
/// path='/rs:fill:300:400,q:80/0190a5b4-7c1e-7d3a-9f00-123456789abc.webp'
/// print(base64.urlsafe_b64encode(hmac.new(key, salt+path.encode(), hashlib.sha256).digest()).rstrip(b'=').decode())"
/// ```
#[test]
fn known_answer() {
    let s = signer();
    let sig = s.sign_path("rs:fill:300:400,q:80", ID, "webp");
    assert_eq!(sig, "FQuNVniqiyr0T_dCIJybE8bdypkcM5s2SSHuT3-rQeA");
    assert_eq!(
        s.url_path("rs:fill:300:400,q:80", ID, "webp"),
        format!("/t/{sig}/rs:fill:300:400,q:80/{ID}.webp")
    );
    assert!(s.verify_parts(&sig, "rs:fill:300:400,q:80", ID, "webp"));
    assert!(s.verify(&sig, &format!("/rs:fill:300:400,q:80/{ID}.webp")));
    assert_eq!(s.sign(&format!("/rs:fill:300:400,q:80/{ID}.webp")), sig);
    // `Display` ids work the same as strings.
    let uuid: uuid::Uuid = ID.parse().unwrap();
    assert_eq!(s.sign_path("rs:fill:300:400,q:80", uuid, "webp"), sig);
}

#[test]
fn wrong_or_tampered_signatures_are_rejected() {
    let s = signer();
    let sig = s.sign_path("rs:fit:640:640", ID, "jpg");
    assert!(s.verify_parts(&sig, "rs:fit:640:640", ID, "jpg"));
    // tampered path
    assert!(!s.verify_parts(&sig, "rs:fit:6400:6400", ID, "jpg"));
    assert!(!s.verify_parts(&sig, "rs:fit:640:640", ID, "png"));
    assert!(!s.verify_parts(
        &sig,
        "rs:fit:640:640",
        "0190a5b4-7c1e-7d3a-9f00-123456789abd",
        "jpg"
    ));
    // tampered signature: one character changed, truncated, padded, garbage
    let mut bytes = sig.clone().into_bytes();
    bytes[5] = if bytes[5] == b'A' { b'B' } else { b'A' };
    assert!(!s.verify_parts(
        &String::from_utf8(bytes).unwrap(),
        "rs:fit:640:640",
        ID,
        "jpg"
    ));
    assert!(!s.verify_parts(&sig[..sig.len() - 1], "rs:fit:640:640", ID, "jpg"));
    assert!(!s.verify_parts(&format!("{sig}="), "rs:fit:640:640", ID, "jpg"));
    assert!(!s.verify_parts("not base64!", "rs:fit:640:640", ID, "jpg"));
    assert!(!s.verify_parts("", "rs:fit:640:640", ID, "jpg"));
    // another key signs differently
    let other = Signer::new(vec![(b"other key".to_vec(), b"salt".to_vec())]).unwrap();
    assert!(!other.verify_parts(&sig, "rs:fit:640:640", ID, "jpg"));
}

#[test]
fn rotation_accepts_any_pair_and_signs_with_the_first() {
    let old = Signer::new(vec![(b"old key".to_vec(), b"old salt".to_vec())]).unwrap();
    let new = Signer::new(vec![(b"new key".to_vec(), b"new salt".to_vec())]).unwrap();
    let rotating = Signer::new(vec![
        (b"new key".to_vec(), b"new salt".to_vec()),
        (b"old key".to_vec(), b"old salt".to_vec()),
    ])
    .unwrap();
    let old_sig = old.sign_path("_", ID, "jpg");
    let new_sig = new.sign_path("_", ID, "jpg");
    assert_ne!(old_sig, new_sig);
    assert!(rotating.verify_parts(&old_sig, "_", ID, "jpg"));
    assert!(rotating.verify_parts(&new_sig, "_", ID, "jpg"));
    assert_eq!(rotating.sign_path("_", ID, "jpg"), new_sig);
    assert!(!new.verify_parts(&old_sig, "_", ID, "jpg"));
}

#[test]
fn key_pairs_from_config() {
    let pairs = parse_key_pairs("0a0b:0c, ff:").unwrap();
    assert_eq!(pairs, vec![(vec![10, 11], vec![12]), (vec![255], vec![])]);
    assert!(matches!(
        parse_key_pairs("0a0b"),
        Err(KeyError::Malformed(1, _))
    ));
    assert!(matches!(
        parse_key_pairs("0a:0b,zz:00"),
        Err(KeyError::Malformed(2, _))
    ));
    assert!(matches!(parse_key_pairs(":00"), Err(KeyError::EmptyKey(1))));
    assert!(matches!(Signer::new(vec![]), Err(KeyError::Empty)));
    // Debug output does not reveal keys.
    let dbg = format!("{:?}", signer());
    assert!(
        !dbg.contains("943b") && dbg.contains("key_pairs: 1"),
        "{dbg}"
    );
}

#[test]
fn unsigned_markers() {
    assert!(is_unsigned("_"));
    assert!(is_unsigned("unsafe"));
    assert!(!is_unsigned("FQuNVniqiyr0T_dCIJybE8bdypkcM5s2SSHuT3-rQeA"));
}
