// `refresh-client-metadata`: the operator fetches a client's metadata document (CIMD) again now. The
// documents are served over https by a local server whose certificate a test CA signed (as the token
// service's own CIMD tests do); the command goes through the issuer's own resolver and client lookup.
import t from 'tap'
import { testRedis, testEnv } from '@uspl/testing'
import { testCa, documentServer, loopbackResolver } from '@uspl/testing/documents'
import { ClientStore } from '@uspl/core'
import { loadConfig } from '@uspl/token/config'
import { createCimdResolver } from '@uspl/token/lib/cimd/index'
import { ClientResolver } from '@uspl/token/lib/clients'
import { runCommand } from '../src/cli.ts'

const ca = testCa(t)

function claudeDocument (url: string): Record<string, unknown> {
  return {
    client_id: url,
    client_name: 'Claude Code',
    client_uri: 'https://claude.ai',
    redirect_uris: ['http://localhost/callback', 'http://127.0.0.1/callback'],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'none'
  }
}

t.test('operator refresh from the command line records the changed document', async (t) => {
  const docs = await documentServer(t, ca)
  const r = await testRedis(t)
  const config = loadConfig(testEnv(r, { CIMD_ALLOW_PRIVATE_HOSTS: 'claude.test', CIMD_FETCH_TIMEOUT_MS: '800', CIMD_HOST_FETCHES_PER_MINUTE: '1000' }))
  const fetchOverrides = { ca: ca.ca, resolver: loopbackResolver }
  const clients = new ClientStore(r.redis, config.CLIENT_IDLE_TTL_S)
  const url = `${docs.origin('claude.test')}/cli.json`
  docs.json('/cli.json', claudeDocument(url))
  // first use, as the token service records it when the client signs a user in
  await new ClientResolver(clients, createCimdResolver(r.redis, config, fetchOverrides)).find(url)
  docs.json('/cli.json', { ...claudeDocument(url), client_name: 'Claude Code 2' })
  const result = await runCommand(r.redis, config, 'refresh-client-metadata', [url], {}, fetchOverrides)
  t.match(result.text, /refreshed .* Claude Code 2/)
  t.equal((await clients.get(url))?.metadata.client_name, 'Claude Code 2', 'the recorded client shows the new name')
  await t.rejects(runCommand(r.redis, config, 'refresh-client-metadata', [`${docs.origin('evil.test')}/x.json`], {}, fetchOverrides), /cannot be used \(host_not_allowed\)/)
})
