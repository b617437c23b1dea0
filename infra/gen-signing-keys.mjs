#!/usr/bin/env node
// Prints a private ES256 JWK set for the token service's SIGNING_KEYS_FILE:
//   node infra/gen-signing-keys.mjs > signing-keys.json
// Each key's kid is its RFC 7638 thumbprint. Pass a number to print that many keys (rotation:
// append a new key to the set, and drop the old one once every token it signed has expired).
import { createHash, generateKeyPairSync } from 'node:crypto'

const count = Number(process.argv[2] ?? 1)
if (!Number.isInteger(count) || count < 1) {
  console.error('usage: node infra/gen-signing-keys.mjs [number of keys]')
  process.exit(1)
}

const keys = []
for (let i = 0; i < count; i++) {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const jwk = privateKey.export({ format: 'jwk' })
  const thumbprint = JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })
  const kid = createHash('sha256').update(thumbprint).digest('base64url')
  keys.push({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y, d: jwk.d, kid, alg: 'ES256', use: 'sig' })
}
process.stdout.write(JSON.stringify({ keys }, null, 2) + '\n')
