//! Session tokens: minting and strict verification of gateway-signed EdDSA JWTs.
