// The peer of bench/run: panva's oidc-provider (npm, v9) issuing ES256 RFC 9068
// JWT access tokens for client_credentials + client_secret_basic, the
// configuration /work/shared/BENCH-NOTES.md describes. Token endpoint: /token.
//
// Environment:
//   OIDC_BIND     host:port to listen on (default 127.0.0.1:8091)
//   OIDC_CLIENTS  number of clients bench-1 .. bench-N (default 10)
//   OIDC_SECRET   the secret every one of them uses
//   OIDC_SCOPES   allowed scopes (default "transaction confirmation annulment")
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const [host, port] = (process.env.OIDC_BIND ?? '127.0.0.1:8091').split(':');
const count = Number(process.env.OIDC_CLIENTS ?? 10);
const secret = process.env.OIDC_SECRET;
const scope = process.env.OIDC_SCOPES ?? 'transaction confirmation annulment';
if (!secret) throw new Error('OIDC_SECRET is required');

const issuer = `http://${host}:${port}`;
const audience = 'urn:ficha:bench';
const jwk = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });

const clients = [];
for (let i = 1; i <= count; i += 1) {
  clients.push({
    client_id: `bench-${i}`,
    client_secret: secret,
    token_endpoint_auth_method: 'client_secret_basic',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope,
    // The only key is P-256; the default RS256 would make the client invalid.
    id_token_signed_response_alg: 'ES256',
  });
}

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [{ ...jwk, alg: 'ES256', use: 'sig' }] },
  scopes: scope.split(' '),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope,
        audience,
        accessTokenTTL: 1200,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
});

createServer(provider.callback()).listen(Number(port), host, () => {
  console.error(`oidc-provider listening on ${issuer}`);
});
