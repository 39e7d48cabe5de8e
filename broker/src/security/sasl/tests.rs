use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256, Sha512};

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

const SECRET: [u8; 32] = [7u8; 32];

fn server(mech: ScramMechanism) -> ScramServer {
    ScramServer::new(mech, Arc::new(SECRET))
}

fn cont(x: Result<Exchange, SaslError>) -> Result<String, Box<dyn std::error::Error>> {
    match x? {
        Exchange::Continue(bytes) => Ok(String::from_utf8(bytes)?),
        other => Err(format!("expected Continue, got {other:?}").into()),
    }
}

// ---- an independent minimal client (RFC 5802 §3), built straight on the crates ----

fn c_hmac(
    m: ScramMechanism,
    key: &[u8],
    data: &[u8],
) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    Ok(match m {
        ScramMechanism::Sha256 => {
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)?;
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        ScramMechanism::Sha512 => {
            let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(key)?;
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
    })
}

fn c_hash(m: ScramMechanism, data: &[u8]) -> Vec<u8> {
    match m {
        ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
        ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
    }
}

fn c_hi(m: ScramMechanism, pw: &[u8], salt: &[u8], i: u32) -> Vec<u8> {
    match m {
        ScramMechanism::Sha256 => pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(pw, salt, i).to_vec(),
        ScramMechanism::Sha512 => pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(pw, salt, i).to_vec(),
    }
}

/// Returns (client-final, expected server-final).
fn client_final(
    m: ScramMechanism,
    gs2: &str,
    bare: &str,
    server_first: &str,
    password: &[u8],
) -> Result<(String, String), Box<dyn std::error::Error>> {
    let mut nonce = "";
    let mut salt = Vec::new();
    let mut iters = 0u32;
    for attr in server_first.split(',') {
        match attr.split_once('=') {
            Some(("r", v)) => nonce = v,
            Some(("s", v)) => salt = B64.decode(v)?,
            Some(("i", v)) => iters = v.parse()?,
            _ => return Err("bad server-first".into()),
        }
    }
    let without_proof = format!("c={},r={}", B64.encode(gs2), nonce);
    let auth = format!("{bare},{server_first},{without_proof}");
    let salted = c_hi(m, password, &salt, iters);
    let client_key = c_hmac(m, &salted, b"Client Key")?;
    let sig = c_hmac(m, &c_hash(m, &client_key), auth.as_bytes())?;
    let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
    let server_key = c_hmac(m, &salted, b"Server Key")?;
    let server_sig = c_hmac(m, &server_key, auth.as_bytes())?;
    Ok((
        format!("{without_proof},p={}", B64.encode(proof)),
        format!("v={}", B64.encode(server_sig)),
    ))
}

/// Runs a whole exchange; returns the final step's result.
fn exchange(
    m: ScramMechanism,
    gs2: &str,
    bare: &str,
    password: &[u8],
    lookup: &dyn Fn(&str) -> Option<ScramCredential>,
) -> Result<Result<Exchange, SaslError>, Box<dyn std::error::Error>> {
    let mut s = server(m);
    let first = cont(s.step(format!("{gs2}{bare}").as_bytes(), lookup))?;
    let (fin, _) = client_final(m, gs2, bare, &first, password)?;
    Ok(s.step(fin.as_bytes(), lookup))
}

fn users(m: ScramMechanism) -> impl Fn(&str) -> Option<ScramCredential> {
    let alice = ScramCredential::from_password(m, b"alice-secret", 4096);
    let odd = ScramCredential::from_password(m, b"odd", 8192);
    move |name| match name {
        "alice" => Some(alice.clone()),
        "a,b=c" => Some(odd.clone()),
        _ => None,
    }
}

fn generic(m: ScramMechanism, reason: &'static str) -> SaslError {
    SaslError::InvalidCredentials {
        mechanism: m.name(),
        reason,
    }
}

#[test]
fn rfc7677_test_vector() -> TestResult {
    let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==")?;
    let cred =
        ScramCredential::from_password_with_salt(ScramMechanism::Sha256, b"pencil", salt, 4096);
    let lookup = move |name: &str| (name == "user").then(|| cred.clone());
    let mut s = server(ScramMechanism::Sha256).with_fixed_nonce("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0");
    let first = cont(s.step(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO", &lookup))?;
    assert_eq!(
        first,
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    );
    let fin = s.step(
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
          p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        &lookup,
    )?;
    assert_eq!(
        fin,
        Exchange::Done {
            response: b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=".to_vec(),
            authorization_id: "user".into(),
            token_auth: false,
        }
    );
    assert!(s.is_complete());
    assert_eq!(
        s.step(b"again", &lookup),
        Err(SaslError::IllegalState("COMPLETE"))
    );
    Ok(())
}

#[test]
fn round_trip_both_mechanisms() -> TestResult {
    for m in ScramMechanism::ALL {
        let lookup = users(m);
        let mut s = server(m);
        let bare = "n=alice,r=clientNonce123";
        let first = cont(s.step(format!("n,,{bare}").as_bytes(), &lookup))?;
        assert!(first.starts_with("r=clientNonce123"), "{first}");
        let (fin, expected) = client_final(m, "n,,", bare, &first, b"alice-secret")?;
        match s.step(fin.as_bytes(), &lookup)? {
            Exchange::Done {
                response,
                authorization_id,
                token_auth,
            } => {
                assert_eq!(String::from_utf8(response)?, expected);
                assert_eq!(authorization_id, "alice");
                assert!(!token_auth);
            }
            other => return Err(format!("{other:?}").into()),
        }
    }
    Ok(())
}

#[test]
fn gs2_variants_and_escaped_names() -> TestResult {
    let m = ScramMechanism::Sha512;
    let lookup = users(m);
    for gs2 in ["y,,", "n,a=alice,"] {
        let res = exchange(m, gs2, "n=alice,r=abc", b"alice-secret", &lookup)?;
        assert!(matches!(res, Ok(Exchange::Done { .. })), "{gs2}: {res:?}");
    }
    assert_eq!(scram::encode_saslname("a,b=c"), "a=2Cb=3Dc");
    let res = exchange(m, "n,a=a=2Cb=3Dc,", "n=a=2Cb=3Dc,r=abc", b"odd", &lookup)?;
    match res? {
        Exchange::Done {
            authorization_id, ..
        } => assert_eq!(authorization_id, "a,b=c"),
        other => return Err(format!("{other:?}").into()),
    }
    Ok(())
}

#[test]
fn wrong_password_and_unknown_user_fail_identically() -> TestResult {
    let m = ScramMechanism::Sha256;
    let lookup = users(m);
    let wrong = exchange(m, "n,,", "n=alice,r=abc", b"nope", &lookup)?;
    let unknown = exchange(m, "n,,", "n=mallory,r=abc", b"nope", &lookup)?;
    assert_eq!(wrong, Err(generic(m, "invalid client proof")));
    assert_eq!(wrong, unknown);
    let msg = unknown.err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(
        msg,
        "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-256"
    );
    // A low-iteration stored credential is indistinguishable from no credential.
    let weak = ScramCredential::from_password(m, b"pw", 1000);
    let weak_lookup = move |_: &str| Some(weak.clone());
    let res = exchange(m, "n,,", "n=weak,r=abc", b"pw", &weak_lookup)?;
    assert_eq!(res, Err(generic(m, "invalid client proof")));
    Ok(())
}

#[test]
fn fake_salt_is_stable_per_name_and_secret() -> TestResult {
    let salt_of = |secret: [u8; 32], name: &str| -> Result<String, Box<dyn std::error::Error>> {
        let mut s = ScramServer::new(ScramMechanism::Sha256, Arc::new(secret));
        let first = cont(s.step(format!("n,,n={name},r=xyz").as_bytes(), &|_| None))?;
        let (_, rest) = first.split_once(",s=").ok_or("no salt")?;
        Ok(rest.to_owned())
    };
    let a1 = salt_of(SECRET, "ghost")?;
    assert_eq!(a1, salt_of(SECRET, "ghost")?);
    assert_ne!(a1, salt_of(SECRET, "ghost2")?);
    assert_ne!(a1, salt_of([8u8; 32], "ghost")?);
    let (salt_b64, iters) = a1.split_once(",i=").ok_or("no iterations")?;
    assert_eq!(iters, "4096");
    // Same shape as a Kafka salt: base-36 text of a 130-bit number.
    let salt = String::from_utf8(B64.decode(salt_b64)?)?;
    assert!(
        salt.len() <= 26
            && salt
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    );
    Ok(())
}

#[test]
fn nonce_and_channel_binding_checks() -> TestResult {
    let m = ScramMechanism::Sha256;
    let lookup = users(m);
    let bare = "n=alice,r=abc";
    let attempt = |edit: &dyn Fn(String) -> String| -> Result<Result<Exchange, SaslError>, Box<dyn std::error::Error>> {
        let mut s = server(m);
        let first = cont(s.step(format!("n,,{bare}").as_bytes(), &lookup))?;
        let (fin, _) = client_final(m, "n,,", bare, &first, b"alice-secret")?;
        Ok(s.step(edit(fin).as_bytes(), &lookup))
    };
    // Kafka's endsWith check would accept a prefixed nonce; we do not.
    let res = attempt(&|f| f.replacen("r=abc", "r=Xabc", 1))?;
    assert_eq!(res, Err(generic(m, "nonce mismatch")));
    let res = attempt(&|f| f.replacen("r=abc", "r=abd", 1))?;
    assert_eq!(res, Err(generic(m, "nonce mismatch")));
    // c= must echo the gs2 header ("y,," here instead of "n,,").
    let res = attempt(&|f| f.replacen("c=biws", "c=eSws", 1))?;
    assert_eq!(
        res,
        Err(generic(m, "channel binding does not match gs2 header"))
    );
    let res = attempt(&|f| format!("{}A", f.trim_end_matches('=')))?;
    assert!(res.is_err());
    // Channel binding proper ("p=") is refused at client-first.
    let mut s = server(m);
    let res = s.step(b"p=tls-unique,,n=alice,r=abc", &lookup);
    assert_eq!(res, Err(generic(m, "channel binding is not supported")));
    assert_eq!(
        s.step(b"c=biws", &lookup),
        Err(SaslError::IllegalState("FAILED"))
    );
    Ok(())
}

#[test]
fn authzid_must_equal_username() -> TestResult {
    let m = ScramMechanism::Sha256;
    let lookup = users(m);
    for user in ["alice", "nobody"] {
        let res = server(m).step(format!("n,a=bob,n={user},r=abc").as_bytes(), &lookup);
        assert_eq!(res, Err(SaslError::AuthorizationIdMismatch));
    }
    assert_eq!(
        SaslError::AuthorizationIdMismatch.to_string(),
        "Authentication failed: Client requested an authorization id that is different from username"
    );
    Ok(())
}

#[test]
fn extensions_and_token_auth() -> TestResult {
    let m = ScramMechanism::Sha256;
    let token = DelegationTokenCredential {
        credential: ScramCredential::from_password(m, b"hmac-of-token", 4096),
        owner: "owner".into(),
        expiry_timestamp_ms: 1234,
    };
    let tokens = move |id: &str| (id == "tok1").then(|| token.clone());
    let lookup = users(m);
    let bare = "n=tok1,r=abc,tokenauth=true";
    let mut s = server(m);
    let first = cont(s.step_with_tokens(format!("n,,{bare}").as_bytes(), &lookup, &tokens))?;
    let (fin, _) = client_final(m, "n,,", bare, &first, b"hmac-of-token")?;
    let done = s.step_with_tokens(fin.as_bytes(), &lookup, &tokens)?;
    assert!(
        matches!(done, Exchange::Done { ref authorization_id, token_auth: true, .. } if authorization_id == "owner")
    );
    assert_eq!(s.token_expiry_timestamp_ms(), Some(1234));
    // Without a token store the same client is rejected like a bad password.
    let res = exchange(m, "n,,", bare, b"hmac-of-token", &lookup)?;
    assert_eq!(res, Err(generic(m, "invalid client proof")));
    // Unknown extensions are ignored and covered by the proof.
    let res = exchange(
        m,
        "n,,",
        "n=alice,r=abc,foo=bar=baz",
        b"alice-secret",
        &lookup,
    )?;
    assert!(matches!(
        res,
        Ok(Exchange::Done {
            token_auth: false,
            ..
        })
    ));
    Ok(())
}

#[test]
fn malformed_client_first_rejected() {
    let m = ScramMechanism::Sha256;
    let lookup = users(m);
    for bad in [
        &b""[..],
        b"n",
        b"n,",
        b"n,,",
        b"x,,n=alice,r=abc",
        b"n,b=alice,n=alice,r=abc",
        b"n,,m=ext,n=alice,r=abc",
        b"n,,n=,r=abc",
        b"n,,n=al=ice,r=abc",
        b"n,,n=al=2,r=abc",
        b"n,,n=alice",
        b"n,,n=alice,r=",
        b"n,,n=alice,r=a b",
        b"n,,r=abc,n=alice",
        b"n,,n=alice,r=abc,",
        b"n,,n=alice,r=abc,1=x",
        b"n,,n=alice,r=abc,k=",
        b"n,,n=\xff,r=abc",
    ] {
        assert!(
            server(m).step(bad, &lookup).is_err(),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let huge = vec![b'a'; MAX_MESSAGE_BYTES + 1];
    assert!(matches!(
        server(m).step(&huge, &lookup),
        Err(SaslError::MessageTooLarge { .. })
    ));
}

/// Deterministic xorshift so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, alphabet: &[u8]) -> Vec<u8> {
        let len = usize::try_from(self.next() % 64).unwrap_or(0);
        (0..len)
            .filter_map(|_| {
                let i = usize::try_from(self.next()).unwrap_or(0) % alphabet.len().max(1);
                alphabet.get(i).copied()
            })
            .collect()
    }
}

#[test]
fn fuzzish_inputs_never_panic() -> TestResult {
    let m = ScramMechanism::Sha256;
    let lookup = users(m);
    let plain_lookup = |name: &str| lookup(name).map(|c| vec![c]);
    let first_msg = b"n,a=alice,n=alice,r=abc,tokenauth=true";
    let mut s = server(m);
    let first = cont(s.step(b"n,,n=alice,r=abc", &lookup))?;
    let (fin, _) = client_final(m, "n,,", "n=alice,r=abc", &first, b"alice-secret")?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let alphabet: Vec<u8> = b"nyamrpcis=,23CD\0\xff\xc3abc+/".to_vec();
    let mut inputs: Vec<Vec<u8>> = (0..=first_msg.len())
        .filter_map(|i| first_msg.get(..i).map(<[u8]>::to_vec))
        .collect();
    for _ in 0..2000 {
        inputs.push(rng.bytes(&alphabet));
        let mut mutated = fin.clone().into_bytes();
        let pos = usize::try_from(rng.next()).unwrap_or(0) % mutated.len().max(1);
        if let Some(b) = mutated.get_mut(pos) {
            *b = alphabet.get(pos % alphabet.len()).copied().unwrap_or(0);
        }
        inputs.push(mutated);
    }
    for (n, input) in inputs.iter().enumerate() {
        let _ = server(m).step(input, &lookup);
        // PLAIN may run a full PBKDF2 per input; a sample keeps debug runs quick.
        if n % 16 == 0 {
            let _ = plain_authenticate(input, &plain_lookup);
        }
        // Second-step parsing after a valid first message.
        let mut s = server(m);
        let _ = s.step(b"n,,n=alice,r=abc", &lookup);
        if input.as_slice() != fin.as_bytes() {
            assert!(s.step(input, &lookup).is_err());
        }
    }
    for i in 0..fin.len() {
        let mut s = server(m);
        let _ = s.step(b"n,,n=alice,r=abc", &lookup);
        assert!(s
            .step(fin.as_bytes().get(..i).unwrap_or_default(), &lookup)
            .is_err());
    }
    Ok(())
}

#[test]
fn credential_construction_and_serde() -> TestResult {
    for m in ScramMechanism::ALL {
        let salt = b"fixed-salt".to_vec();
        let a = ScramCredential::from_password_with_salt(m, b"pw", salt.clone(), 4096);
        let salted = c_hi(m, b"pw", &salt, 4096);
        assert_eq!(
            ScramCredential::from_salted_password(m, &salted, salt, 4096),
            a
        );
        assert_eq!(a.stored_key.len(), m.output_len());
        assert!(a.verify_password(b"pw") && !a.verify_password(b"px"));
        let r1 = ScramCredential::from_password(m, b"pw", 4096);
        let r2 = ScramCredential::from_password(m, b"pw", 4096);
        assert_ne!(r1.salt, r2.salt);
        assert!(r1.verify_password(b"pw"));
        let json = serde_json::to_string(&a)?;
        assert!(json.contains(&format!("\"{}\"", m.name())));
        assert!(json.contains(&format!("\"salt\":\"{}\"", B64.encode(b"fixed-salt"))));
        assert_eq!(serde_json::from_str::<ScramCredential>(&json)?, a);
    }
    let too_many = ScramCredential::from_password(ScramMechanism::Sha256, b"pw", 16385);
    assert!(!too_many.verify_password(b"pw"));
    Ok(())
}

#[test]
fn mechanism_table_and_helpers() {
    use ScramMechanism::*;
    assert_eq!(
        (Sha256.name(), Sha512.name()),
        ("SCRAM-SHA-256", "SCRAM-SHA-512")
    );
    assert_eq!(ScramMechanism::from_name("SCRAM-SHA-512"), Some(Sha512));
    assert_eq!(ScramMechanism::from_name("scram-sha-512"), None);
    assert_eq!((Sha256.code(), Sha512.code()), (1, 2));
    assert_eq!(ScramMechanism::from_code(0), None);
    assert_eq!(ScramMechanism::from_code(2), Some(Sha512));
    assert_eq!(Sha256.min_iterations(), 4096);
    assert_eq!(validate_iterations(Sha256, 4095), Err("Too few iterations"));
    assert_eq!(validate_iterations(Sha512, 16384), Ok(()));
    assert_eq!(
        validate_iterations(Sha512, 16385),
        Err("Too many iterations")
    );
    assert_eq!(base36_130([0; 17]), "0");
    assert_eq!(base36_130([0xff; 17]), "1omfro7zwmumr3umxudzyj6scf");
    assert_ne!(secure_random_string(), secure_random_string());
}
