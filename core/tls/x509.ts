/**
 * Key pairs, certificate requests and certificates (ECDSA P-256, SHA-256). Node's crypto
 * parses X.509 but cannot make it; `@peculiar/x509` signs with WebCrypto keys, which Node and
 * Lambda both have. Keys leave this module as PKCS#8 PEM, certificates as PEM.
 *
 * @example
 *   const key = await generateKeyPair();
 *   const csr = await createCsr(key, 'web-01');   // sent with the registration key
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as never);

type CryptoKey = webcrypto.CryptoKey;

export const KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;

export interface KeyPair {
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
  /** PKCS#8 PEM of the private key: what is kept on disk (mode 0600). */
  readonly privateKeyPem: string;
}

export async function generateKeyPair(): Promise<KeyPair> {
  const keys = (await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  return { privateKey: keys.privateKey, publicKey: keys.publicKey, privateKeyPem: x509.PemConverter.encode(pkcs8, 'PRIVATE KEY') };
}

/** Imports a PKCS#8 PEM private key (P-256) for signing. */
export async function importPrivateKey(pem: string): Promise<CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', x509.PemConverter.decodeFirst(pem), KEY_ALGORITHM, false, ['sign']) as Promise<CryptoKey>;
}

/** A PKCS#10 request for `commonName`, signed by the key (proof that its holder asks). */
export async function createCsr(keys: KeyPair, commonName: string): Promise<string> {
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: [{ CN: [commonName] }],
    keys: { privateKey: keys.privateKey, publicKey: keys.publicKey },
    signingAlgorithm: SIGNING_ALGORITHM,
  });
  return csr.toString('pem');
}

export { x509 };
