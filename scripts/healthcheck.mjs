// The image's HEALTHCHECK: exit 0 when this container's service answers GET /health/ready with 200 on
// 127.0.0.1:$PORT, else 1. Plain Node (global fetch), no dependencies, a 3 s timeout.
const port = process.env.PORT ?? '3000'
try {
  const res = await fetch(`http://127.0.0.1:${port}/health/ready`, { signal: AbortSignal.timeout(3000) })
  process.exit(res.ok ? 0 : 1)
} catch {
  process.exit(1)
}
