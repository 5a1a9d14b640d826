//! Known-answer vectors from the standards that define each primitive, and property tests that
//! every round trip works and every single-bit change is caught.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::*;

fn bytes<const N: usize>(text: &str) -> [u8; N] {
    hex::decode(text).unwrap().try_into().unwrap()
}

/// RFC 8032 section 7.1, TEST 1 (empty message), TEST 2 (one byte) and TEST 3 (two bytes).
#[test]
fn ed25519_matches_rfc_8032() {
    let cases = [
        (
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        ),
        (
            "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
            "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
        ),
        (
            "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
            "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
        ),
    ];
    for (secret, public, message, signature) in cases {
        let key = SigningKey::from_seed(&bytes(secret));
        assert_eq!(hex::encode(key.verifying_key().to_bytes()), public);
        let message = hex::decode(message).unwrap();
        let signed = key.sign(&message);
        assert_eq!(hex::encode(signed), signature);
        let public = VerifyingKey::from_bytes(&bytes(public)).unwrap();
        public.verify(&message, &signed).unwrap();
        public.verify_batch(&[&message], &[signed]).unwrap();
    }
}

/// RFC 7748 section 5.2 (the X25519 function, first vector) and section 6.1 (a key agreement).
#[test]
fn x25519_matches_rfc_7748() {
    let scalar = AgreementSecret::from_bytes(bytes(
        "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
    ));
    let u = AgreementPublicKey::from_bytes(bytes(
        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
    ));
    assert_eq!(
        hex::encode(*scalar.diffie_hellman(&u)),
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552"
    );

    let alice = AgreementSecret::from_bytes(bytes(
        "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
    ));
    let bob = AgreementSecret::from_bytes(bytes(
        "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb",
    ));
    assert_eq!(
        hex::encode(alice.public_key().to_bytes()),
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    );
    assert_eq!(
        hex::encode(bob.public_key().to_bytes()),
        "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    );
    let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
    assert_eq!(
        hex::encode(*alice.diffie_hellman(&bob.public_key())),
        shared
    );
    assert_eq!(
        hex::encode(*bob.diffie_hellman(&alice.public_key())),
        shared
    );
}

/// The GCM specification's (McGrew and Viega) Test Case 16: AES-256 with associated data.
#[test]
fn aes_256_gcm_matches_the_gcm_specification() {
    let key = SymmetricKey::from_bytes(bytes(
        "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
    ));
    let plaintext = hex::decode(
        "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72\
         1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
    )
    .unwrap();
    let aad = hex::decode("feedfacedeadbeeffeedfacedeadbeefabaddad2").unwrap();
    let sealed = key.seal_with_nonce(bytes("cafebabefacedbaddecaf888"), &plaintext, &aad);
    assert_eq!(
        hex::encode(&sealed[1 + NONCE_LEN..]),
        "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa\
         8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662\
         76fc6ece0f4e1768cddf8853bb2d551b"
    );
    assert_eq!(key.open(&sealed, &aad).unwrap().as_slice(), plaintext);
}

/// RFC 5869 appendix A.1, HKDF-SHA256 Test Case 1, through the same construction `seal_to` uses.
#[test]
fn hkdf_sha256_matches_rfc_5869() {
    let ikm = [0x0bu8; 22];
    let salt = hex::decode("000102030405060708090a0b0c").unwrap();
    let info = hex::decode("f0f1f2f3f4f5f6f7f8f9").unwrap();
    let mut okm = [0u8; 42];
    Hkdf::<Sha256>::new(Some(&salt), &ikm)
        .expand(&info, &mut okm)
        .unwrap();
    assert_eq!(
        hex::encode(okm),
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    );
}

/// did:key forms from the did:key test data in Hyperledger Aries Cloud Agent (acapy,
/// `aries_cloudagent/did/tests/test_dids.py`): a key's base58 bytes and its DID.
#[test]
fn did_keys_match_published_examples() {
    let ed25519: [u8; 32] = bs58::decode("8HH5gYEeNc3z7PYXmd54d4x6qAfCNrqQqEB3nS7Zfu7K")
        .into_vec()
        .unwrap()
        .try_into()
        .unwrap();
    let key = VerifyingKey::from_bytes(&ed25519).unwrap();
    let did = "did:key:z6MkmjY8GnV5i9YTDtPETC2uUAW6ejw3nk5mXF5yci5ab7th";
    assert_eq!(key.did_key(), did);
    assert_eq!(
        key.kid(),
        "kid:z6MkmjY8GnV5i9YTDtPETC2uUAW6ejw3nk5mXF5yci5ab7th"
    );
    assert_eq!(VerifyingKey::from_did_key(did).unwrap(), key);
    assert_eq!(VerifyingKey::from_did_key(&key.kid()).unwrap(), key);
    assert_eq!(
        VerifyingKey::from_did_key(&format!(
            "{did}#z6MkmjY8GnV5i9YTDtPETC2uUAW6ejw3nk5mXF5yci5ab7th"
        ))
        .unwrap(),
        key
    );

    let x25519: [u8; 32] = bs58::decode("79CXkde3j8TNuMXxPdV7nLUrT2g7JAEjH5TreyVY7GEZ")
        .into_vec()
        .unwrap()
        .try_into()
        .unwrap();
    let agreement = AgreementPublicKey::from_bytes(x25519);
    let did = "did:key:z6LShpNhGwSupbB7zjuivH156vhLJBDDzmQtA4BY9S94pe1K";
    assert_eq!(agreement.did_key(), did);
    assert_eq!(AgreementPublicKey::from_did_key(did).unwrap(), agreement);

    // A key of the other type, or not a did:key at all, is refused.
    assert!(VerifyingKey::from_did_key(did).is_err());
    assert!(VerifyingKey::from_did_key("did:web:example.com").is_err());
    assert!(VerifyingKey::from_did_key("did:key:z0OIl").is_err());
}

#[test]
fn sealed_data_is_bound_to_its_key_and_associated_data() {
    let key = SymmetricKey::generate();
    let sealed = key.seal(b"hunter2", b"secret 1");
    assert_eq!(
        key.open(&sealed, b"secret 1").unwrap().as_slice(),
        b"hunter2"
    );
    assert_eq!(key.open(&sealed, b"secret 2"), Err(CryptoError::Open));
    assert_eq!(
        SymmetricKey::generate().open(&sealed, b"secret 1"),
        Err(CryptoError::Open)
    );
    // Two seals of the same value differ: the nonce is fresh each time.
    assert_ne!(sealed, key.seal(b"hunter2", b"secret 1"));
    for short in [&sealed[..0], &sealed[..1], &sealed[..28]] {
        assert_eq!(key.open(short, b"secret 1"), Err(CryptoError::Open));
    }
    let wrapped = key.wrap(&SymmetricKey::from_bytes([7; 32]), b"user 1");
    assert_eq!(
        key.unwrap_key(&wrapped, b"user 1").unwrap().as_bytes(),
        &[7; 32]
    );
    assert!(key.unwrap_key(&wrapped, b"user 2").is_err());
}

#[test]
fn keys_never_print_their_secret() {
    let key = SymmetricKey::from_bytes([0xab; 32]);
    assert!(!format!("{key:?}").contains("ab"));
    let signing = SigningKey::from_seed(&[0xcd; 32]);
    assert!(!format!("{signing:?}").to_lowercase().contains("cdcd"));
    assert!(format!("{signing:?}").contains("did:key:z6Mk"));
}

#[test]
fn sealing_to_a_low_order_point_is_refused_when_opened() {
    // The all-zero public key makes every shared secret zero: no key agreement at all.
    let sealed = seal_to(&AgreementPublicKey::from_bytes([0; 32]), b"x", b"");
    let mut forged = sealed.clone();
    forged[1..33].copy_from_slice(&[0; 32]);
    assert!(AgreementSecret::generate().open(&forged, b"").is_err());
}

fn flip(bytes: &mut [u8], bit: usize) {
    let bit = bit % (bytes.len() * 8);
    bytes[bit / 8] ^= 1 << (bit % 8);
}

#[test]
fn batches_verify_and_name_no_bad_signature_as_good() {
    let key = SigningKey::generate();
    let public = key.verifying_key();
    let messages: Vec<Vec<u8>> = (0..200)
        .map(|i| format!("entry {i}").into_bytes())
        .collect();
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let mut signatures: Vec<Signature> = messages.iter().map(|m| key.sign(m)).collect();
    public.verify_batch(&refs, &signatures).unwrap();
    public.verify_batch(&[], &[]).unwrap();
    assert!(public.verify_batch(&refs[..2], &signatures[..1]).is_err());
    // One bad signature anywhere fails the batch: a flipped bit, another key's, another
    // message's, a non-canonical s.
    for i in [0, 57, 199] {
        let saved = signatures[i];
        signatures[i][40] ^= 4;
        assert!(public.verify_batch(&refs, &signatures).is_err());
        signatures[i] = SigningKey::generate().sign(&messages[i]);
        assert!(public.verify_batch(&refs, &signatures).is_err());
        signatures[i] = key.sign(b"something else");
        assert!(public.verify_batch(&refs, &signatures).is_err());
        signatures[i][32..].copy_from_slice(&[0xff; 32]);
        assert!(public.verify_batch(&refs, &signatures).is_err());
        signatures[i] = saved;
    }
    // Messages swapped between signatures.
    let mut swapped = refs.clone();
    swapped.swap(3, 4);
    assert!(public.verify_batch(&swapped, &signatures).is_err());
    public.verify_batch(&refs, &signatures).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn symmetric_seal_round_trips_and_any_bit_flip_fails(
        plaintext in proptest::collection::vec(any::<u8>(), 0..512),
        aad in proptest::collection::vec(any::<u8>(), 0..64),
        bit in any::<usize>(),
    ) {
        let key = SymmetricKey::generate();
        let sealed = key.seal(&plaintext, &aad);
        let opened = key.open(&sealed, &aad).unwrap();
        prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
        let mut changed = sealed.clone();
        flip(&mut changed, bit);
        prop_assert!(key.open(&changed, &aad).is_err());
        if !aad.is_empty() {
            let mut other = aad.clone();
            flip(&mut other, bit);
            prop_assert!(key.open(&sealed, &other).is_err());
        }
    }

    #[test]
    fn seal_to_round_trips_and_any_bit_flip_fails(
        plaintext in proptest::collection::vec(any::<u8>(), 0..512),
        aad in proptest::collection::vec(any::<u8>(), 0..64),
        bit in any::<usize>(),
    ) {
        let recipient = AgreementSecret::generate();
        let sealed = seal_to(&recipient.public_key(), &plaintext, &aad);
        let opened = recipient.open(&sealed, &aad).unwrap();
        prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
        prop_assert!(AgreementSecret::generate().open(&sealed, &aad).is_err());
        let mut changed = sealed.clone();
        flip(&mut changed, bit);
        prop_assert!(recipient.open(&changed, &aad).is_err());
    }

    #[test]
    fn signatures_verify_and_any_bit_flip_fails(
        message in proptest::collection::vec(any::<u8>(), 0..512),
        bit in any::<usize>(),
    ) {
        let key = SigningKey::generate();
        let public = key.verifying_key();
        let signature = key.sign(&message);
        prop_assert!(public.verify(&message, &signature).is_ok());
        let mut bad = signature;
        flip(&mut bad, bit);
        prop_assert!(public.verify(&message, &bad).is_err());
        prop_assert!(public.verify_batch(&[&message], &[bad]).is_err());
        if !message.is_empty() {
            let mut changed = message.clone();
            flip(&mut changed, bit);
            prop_assert!(public.verify(&changed, &signature).is_err());
        }
        prop_assert!(SigningKey::generate().verifying_key().verify(&message, &signature).is_err());
    }
}
