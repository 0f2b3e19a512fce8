//! How a data packet is sealed: NSCA's encryption methods, its key derivation
//! from the password (mcrypt's), and its XOR obfuscation.

use std::fmt;
use std::str::FromStr;

use cfb8::cipher::{AsyncStreamCipher, KeyIvInit};

use super::packet::IV_LEN;
use super::NscaError;

/// How the data packet is encrypted; must match the server's `decryption_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encryption {
    /// Method 0: plain text.
    None,
    /// Method 1: XOR with the IV, then with the password (obfuscation only).
    Xor,
    /// Method 2: DES, 8-bit CFB (mcrypt "cfb"), 8-byte key.
    Des,
    /// Method 3: 3DES EDE, 8-bit CFB, 24-byte key (a password of 8 bytes or less
    /// leaves keys 2 and 3 zero, equal, so this is then plain DES: as in NSCA).
    TripleDes,
    /// Method 14: mcrypt's RIJNDAEL-128 with its 32-byte key, i.e. AES-256, 8-bit CFB.
    Rijndael128,
}

impl Encryption {
    /// The method number used in `send_nsca.cfg` and `nsca.cfg`.
    pub fn method_number(self) -> u32 {
        match self {
            Encryption::None => 0,
            Encryption::Xor => 1,
            Encryption::Des => 2,
            Encryption::TripleDes => 3,
            Encryption::Rijndael128 => 14,
        }
    }

    /// Maps an NSCA method number; the other mcrypt methods (4-26) are refused.
    pub fn from_method_number(n: u32) -> Result<Self, NscaError> {
        match n {
            0 => Ok(Encryption::None),
            1 => Ok(Encryption::Xor),
            2 => Ok(Encryption::Des),
            3 => Ok(Encryption::TripleDes),
            14 => Ok(Encryption::Rijndael128),
            _ => Err(NscaError::UnsupportedEncryption(n.to_string())),
        }
    }

    /// Lower-case name, as accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Encryption::None => "none",
            Encryption::Xor => "xor",
            Encryption::Des => "des",
            Encryption::TripleDes => "3des",
            Encryption::Rijndael128 => "rijndael-128",
        }
    }
}

impl fmt::Display for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.method_number(), self.name())
    }
}

impl FromStr for Encryption {
    type Err = NscaError;

    /// Accepts a method number (`"14"`) or a name (`"rijndael-128"`, any case).
    fn from_str(s: &str) -> Result<Self, NscaError> {
        let t = s.trim();
        if let Ok(n) = t.parse::<u32>() {
            return Encryption::from_method_number(n);
        }
        match t.to_ascii_lowercase().replace('_', "-").as_str() {
            "none" | "plain" => Ok(Encryption::None),
            "xor" => Ok(Encryption::Xor),
            "des" => Ok(Encryption::Des),
            "3des" | "tripledes" | "triple-des" => Ok(Encryption::TripleDes),
            "rijndael-128" | "rijndael128" => Ok(Encryption::Rijndael128),
            _ => Err(NscaError::UnsupportedEncryption(s.to_string())),
        }
    }
}

/// The password as the C code sees it: a C string, so it ends at the first NUL.
fn c_password(password: &[u8]) -> &[u8] {
    let end = password
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(password.len());
    &password[..end]
}

/// mcrypt's key: the password truncated or zero-padded to the cipher's key size.
fn mcrypt_key<const N: usize>(password: &[u8]) -> [u8; N] {
    let pw = c_password(password);
    let mut key = [0u8; N];
    let n = pw.len().min(N);
    key[..n].copy_from_slice(&pw[..n]);
    key
}

/// NSCA's method 1; its own inverse.
fn xor_in_place(buf: &mut [u8], iv: &[u8; IV_LEN], password: &[u8]) {
    // Two passes in this order, as NSCA's encrypt_buffer does: IV, then password.
    for (b, k) in buf.iter_mut().zip(iv.iter().cycle()) {
        *b ^= k;
    }
    let pw = c_password(password);
    if !pw.is_empty() {
        for (b, k) in buf.iter_mut().zip(pw.iter().cycle()) {
            *b ^= k;
        }
    }
}

/// Encrypts a data packet in place with the server's IV and the password.
///
/// The mcrypt methods are 8-bit CFB with the IV's first block-size bytes; key
/// sizes are mcrypt's maximum for the algorithm (DES 8, 3DES 24, RIJNDAEL-128 32).
pub fn encrypt(packet: &mut [u8], iv: &[u8; IV_LEN], password: &[u8], method: Encryption) {
    match method {
        Encryption::None => {}
        Encryption::Xor => xor_in_place(packet, iv, password),
        Encryption::Des => {
            let key = mcrypt_key::<8>(password);
            cfb8::Encryptor::<des::Des>::new(&key.into(), iv[..8].into()).encrypt(packet);
        }
        Encryption::TripleDes => {
            let key = mcrypt_key::<24>(password);
            cfb8::Encryptor::<des::TdesEde3>::new(&key.into(), iv[..8].into()).encrypt(packet);
        }
        Encryption::Rijndael128 => {
            let key = mcrypt_key::<32>(password);
            cfb8::Encryptor::<aes::Aes256>::new(&key.into(), iv[..16].into()).encrypt(packet);
        }
    }
}

/// Inverse of [`encrypt`]: what the server does (used to verify captures).
pub fn decrypt(packet: &mut [u8], iv: &[u8; IV_LEN], password: &[u8], method: Encryption) {
    match method {
        Encryption::None => {}
        Encryption::Xor => xor_in_place(packet, iv, password),
        Encryption::Des => {
            let key = mcrypt_key::<8>(password);
            cfb8::Decryptor::<des::Des>::new(&key.into(), iv[..8].into()).decrypt(packet);
        }
        Encryption::TripleDes => {
            let key = mcrypt_key::<24>(password);
            cfb8::Decryptor::<des::TdesEde3>::new(&key.into(), iv[..8].into()).decrypt(packet);
        }
        Encryption::Rijndael128 => {
            let key = mcrypt_key::<32>(password);
            cfb8::Decryptor::<aes::Aes256>::new(&key.into(), iv[..16].into()).decrypt(packet);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::nsca::PACKET_LEN;

    const ALL: [Encryption; 5] = [
        Encryption::None,
        Encryption::Xor,
        Encryption::Des,
        Encryption::TripleDes,
        Encryption::Rijndael128,
    ];

    #[test]
    fn method_numbers_round_trip() {
        for n in [0, 1, 2, 3, 14] {
            let e = Encryption::from_method_number(n).expect("supported");
            assert_eq!(e.method_number(), n);
            assert_eq!(e.name().parse::<Encryption>().expect("name"), e);
            assert_eq!(n.to_string().parse::<Encryption>().expect("number"), e);
        }
    }

    #[test]
    fn unsupported_methods_are_refused() {
        for n in [4, 8, 13, 15, 16, 26, 99] {
            let err = Encryption::from_method_number(n).expect_err("unsupported");
            assert!(err
                .to_string()
                .contains("unsupported NSCA encryption method"));
        }
        assert!("blowfish".parse::<Encryption>().is_err());
        assert!("".parse::<Encryption>().is_err());
    }

    #[test]
    fn encryption_names() {
        assert_eq!("XOR".parse::<Encryption>().ok(), Some(Encryption::Xor));
        assert_eq!(
            "tripledes".parse::<Encryption>().ok(),
            Some(Encryption::TripleDes)
        );
        assert_eq!(
            "RIJNDAEL_128".parse::<Encryption>().ok(),
            Some(Encryption::Rijndael128)
        );
        assert_eq!(Encryption::Rijndael128.to_string(), "14 (rijndael-128)");
    }

    #[test]
    fn encrypt_decrypt_round_trip() {
        let iv: [u8; IV_LEN] = std::array::from_fn(|i| (i * 7) as u8);
        // The ciphers do not care what the bytes mean: a patterned packet will do.
        let plain: Vec<u8> = (0..PACKET_LEN).map(|i| (i % 251) as u8).collect();
        for e in ALL {
            let mut p = plain.clone();
            encrypt(&mut p, &iv, b"pw", e);
            if e != Encryption::None {
                assert_ne!(p, plain, "{e}");
            }
            decrypt(&mut p, &iv, b"pw", e);
            assert_eq!(p, plain, "{e}");
        }
    }

    #[test]
    fn xor_is_iv_then_password() {
        let iv = [0x0Fu8; IV_LEN];
        let mut buf = [0u8; 4];
        encrypt(&mut buf, &iv, b"ab", Encryption::Xor);
        assert_eq!(buf, [0x0F ^ b'a', 0x0F ^ b'b', 0x0F ^ b'a', 0x0F ^ b'b']);
        // An empty password (C: XOR with the terminating NUL) changes nothing.
        let mut buf = [0u8; 2];
        encrypt(&mut buf, &iv, b"", Encryption::Xor);
        assert_eq!(buf, [0x0F, 0x0F]);
    }

    #[test]
    fn password_ends_at_nul_and_pads_with_zeros() {
        assert_eq!(mcrypt_key::<4>(b"ab\0cd"), *b"ab\0\0");
        assert_eq!(mcrypt_key::<2>(b"abcd"), *b"ab");
    }
}
