// The registration flood, in a worker thread of its own so that sending it does not delay the event loop
// that measures the token endpoint's latency. Plain JavaScript: a worker needs no TypeScript loader.
import { parentPort, workerData } from 'node:worker_threads'
import { Pool } from 'undici'

const { origin, burst, concurrency, redirectUri } = workerData
const pool = new Pool(origin, { connections: concurrency, pipelining: 1 })
const counts = {}
const add = (k) => { counts[k] = (counts[k] ?? 0) + 1 }
let next = 0
const t0 = performance.now()
async function worker () {
  while (next < burst) {
    const i = next++
    try {
      const res = await pool.request({
        method: 'POST',
        path: '/register',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ client_name: `Flood ${i}`, redirect_uris: [redirectUri], token_endpoint_auth_method: 'none', grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'] })
      })
      await res.body.dump()
      add(res.statusCode)
    } catch (err) {
      add(`error: ${String(err.message).slice(0, 80)}`)
    }
  }
}
await Promise.all(Array.from({ length: concurrency }, worker))
const ms = performance.now() - t0
await pool.close()
parentPort.postMessage({ counts, ms })
