// A real OpenID provider (oidc-provider) for the JWT access token tests, started by tests/test_jwt_live.py.
//
//   node server.mjs <config.json>
//
// The config file names the issuer, the port, the private signing keys (a JWKS; the first key signs),
// and the static clients. It is read again on every resource lookup, so a test can add the MCP
// endpoint's URL ("resources": {url: "space-separated scopes"}) after both servers are up.
// Access tokens for a listed resource are RFC 9068 JWTs (typ at+jwt, aud = the resource URL,
// scope = the granted scopes); the client "jwt-live-short" gets ones that expire after two seconds.
// Login and consent are oidc-provider's development forms (any login and password).
import { readFileSync } from 'node:fs';

import Provider, { errors } from 'oidc-provider';

const configPath = process.argv[2];
const readConfig = () => JSON.parse(readFileSync(configPath, 'utf8'));
const config = readConfig();

const provider = new Provider(config.issuer, {
  jwks: config.jwks,
  clients: config.clients,
  // The API's scopes are the resource server's (getResourceServerInfo), not OpenID scopes.
  scopes: ['openid', 'offline_access'],
  pkce: { required: () => true },
  findAccount: async (ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  extraTokenClaims: async () => ({ tenant: 'test-tenant' }),
  features: {
    devInteractions: { enabled: true },
    registration: { enabled: true },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (ctx, client, oneOf) => (oneOf ? oneOf[0] : undefined),
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator, client) => {
        const scope = readConfig().resources[resourceIndicator];
        if (scope === undefined) throw new errors.InvalidTarget();
        return {
          audience: resourceIndicator,
          scope,
          accessTokenFormat: 'jwt',
          accessTokenTTL: client.clientId === 'jwt-live-short' ? 2 : 600,
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
});
provider.proxy = false;

// The MCP client registers with the scopes of its first challenge. A client pinned to those could
// never be granted more at step-up (it would get invalid_scope), so, like providers whose scope
// policy lives with the API rather than the client, registration here keeps no scope.
provider.use(async (ctx, next) => {
  if (ctx.method === 'POST' && ctx.path === '/reg' && ctx.is('application/json')) {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    const metadata = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    delete metadata.scope;
    ctx.request.body = metadata;
  }
  await next();
});

const server = provider.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`listening ${config.issuer}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
