//! The masking hash key, derived from the gateway's signing key so that hashed values stay
//! stable across restarts without a second secret to manage.

use ring::hmac;

use crate::mask::{HashKey, MIN_KEY_LEN};

/// Fixed label the key is derived over; changing it changes every hashed value.
const LABEL: &[u8] = b"sluice mask hash key v1";

// The derived key is a whole SHA-256 tag, which the hash style accepts.
const _: () = assert!(ring::digest::SHA256_OUTPUT_LEN >= MIN_KEY_LEN);

/// The `hash` masking style's key: HMAC-SHA256 keyed with the signing key's secret `seed`
/// over a fixed label. Knowing the derived key reveals nothing about the signing key.
pub fn mask_key_from_signing_key(seed: &[u8]) -> HashKey {
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, seed), LABEL);
    // A SHA-256 tag is 32 bytes, above MIN_KEY_LEN (checked at compile time above).
    HashKey::new(tag.as_ref()).expect("a SHA-256 tag is long enough for a hash key")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::{Applied, MaskStyle};

    fn hash(key: &HashKey, value: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        assert_eq!(
            MaskStyle::Hash.apply(Some(key), value, &mut out),
            Applied::Value
        );
        out
    }

    #[test]
    fn the_key_is_stable_per_seed_and_differs_between_seeds() {
        let a = mask_key_from_signing_key(&[1; 32]);
        let again = mask_key_from_signing_key(&[1; 32]);
        let b = mask_key_from_signing_key(&[2; 32]);
        assert_eq!(hash(&a, b"ann"), hash(&again, b"ann"));
        assert_ne!(hash(&a, b"ann"), hash(&b, b"ann"));
        // Not the seed used directly as the key.
        let raw = HashKey::new(&[1; 32]).unwrap();
        assert_ne!(hash(&a, b"ann"), hash(&raw, b"ann"));
    }
}
