// Runs graphql-http's server audits against the URL given and prints every result as JSON.
// AUDIT_TOKEN, when set, is sent as a bearer token with each request.
import { auditServer } from 'graphql-http';

const url = process.argv[2];
const token = process.env.AUDIT_TOKEN;
const fetchFn = (input, init = {}) =>
  fetch(input, {
    ...init,
    headers: { ...(init.headers || {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
  });

const out = [];
for (const result of await auditServer({ url, fetchFn })) {
  const item = { id: result.id, name: result.name, status: result.status };
  if (result.status !== 'ok') {
    item.reason = result.reason;
    try {
      item.response = { status: result.response.status, body: await result.response.text() };
    } catch {
      // the body was read by the audit already
    }
  }
  out.push(item);
}
console.log(JSON.stringify(out));
