// A real OpenID Connect provider (oidc-provider, OpenID-certified) shaped like NHS login, for the
// tests of crates/oidc and of the web sign-in routes; runnable by hand too:
//
//   CLIENT_ID=portico CLIENT_JWKS='{"keys":[...]}' REDIRECT_URIS='["https://portico.example/cb"]' \
//   ACCOUNTS='{"p9":{"nhs_number":"9990000018","vot":"P9.Cp.Cd","identity_proofing_level":"P9"}}' \
//   node provider.mjs 0
//
// The tests start it through oidc::testing (cargo feature `testing`). It listens on 127.0.0.1
// only, on the port given as the first argument or PROVIDER_PORT (0 picks a free one), and
// prints "ready <port>" once it serves; the issuer is http://127.0.0.1:<port>.
//
// Settings (environment):
//   CLIENT_ID              the one client, authenticated with private_key_jwt
//   CLIENT_JWKS            its public JWKS (JSON)
//   REDIRECT_URIS          JSON array of its redirect URIs
//   ACCOUNTS               JSON object: account id -> claims (nhs_number, vot,
//                          identity_proofing_level, birthdate, email, ...)
//   CLIENT_AUTH_ALGS       JSON array of accepted client assertion algorithms (default RS512, RS256)
//   ID_TOKEN_ALG           ID token signature algorithm (default RS512, as NHS login)
//   ID_TOKEN_CLAIMS        "userinfo" (default: profile claims only at the userinfo endpoint) or
//                          "id_token" (every granted claim in the ID token too)
//   EXIT_WITH_STDIN        "1": exit when standard input closes, so that a test process that
//                          dies leaves no provider behind
//
// Sign-in is a minimal interaction a test drives with plain HTTP:
//   GET  /interaction/<uid>          -> {"uid", "prompt": "login"|"consent", "params": {...}}
//   POST /interaction/<uid>/login    form login=<account id>  -> 303 back to the provider
//   POST /interaction/<uid>/confirm  (grants what was asked)  -> 303 back to the provider
//   POST /interaction/<uid>/abort    (the person cancels)     -> 303, then error=access_denied
// The signing keys are generated at every start; nothing secret is stored.

import crypto from 'node:crypto';
import http from 'node:http';
import Provider from 'oidc-provider';

function setting(name, fallback) {
  const value = process.env[name];
  if (value !== undefined && value !== '') return value;
  if (fallback !== undefined) return fallback;
  console.error(`provider.mjs: ${name} is not set`);
  process.exit(2);
}

function jsonSetting(name, fallback) {
  const text = setting(name, fallback);
  try {
    return JSON.parse(text);
  } catch (error) {
    console.error(`provider.mjs: ${name} is not valid JSON: ${error.message}`);
    process.exit(2);
  }
}

const port = Number(process.argv[2] ?? setting('PROVIDER_PORT', '0'));
const clientId = setting('CLIENT_ID');
const clientJwks = jsonSetting('CLIENT_JWKS');
const redirectUris = jsonSetting('REDIRECT_URIS');
const accounts = jsonSetting('ACCOUNTS');
const clientAuthAlgs = jsonSetting('CLIENT_AUTH_ALGS', '["RS512","RS256"]');
const idTokenAlg = setting('ID_TOKEN_ALG', 'RS512');
const idTokenClaims = setting('ID_TOKEN_CLAIMS', 'userinfo');

if (process.env.EXIT_WITH_STDIN === '1') {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
  process.stdin.resume();
}

function signingKey(type, options, prefix) {
  const jwk = crypto.generateKeyPairSync(type, options).privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: `${prefix}-${crypto.randomUUID()}`, use: 'sig' };
}

const configuration = {
  clients: [{
    client_id: clientId,
    token_endpoint_auth_method: 'private_key_jwt',
    jwks: clientJwks,
    redirect_uris: redirectUris,
    response_types: ['code'],
    grant_types: ['authorization_code'],
    id_token_signed_response_alg: idTokenAlg,
  }],
  jwks: {
    keys: [
      signingKey('rsa', { modulusLength: 2048 }, 'rsa'),
      signingKey('ec', { namedCurve: 'P-256' }, 'ec'),
    ],
  },
  enabledJWA: {
    clientAuthSigningAlgValues: clientAuthAlgs,
    idTokenSigningAlgValues: ['RS256', 'RS512', 'ES256'],
  },
  // NHS login's shape: the vector of trust is part of every sign-in (ID token); the profile
  // scope carries the NHS number, birth date and identity proofing level.
  claims: {
    openid: ['sub', 'vot'],
    profile: ['nhs_number', 'family_name', 'birthdate', 'identity_proofing_level'],
    email: ['email', 'email_verified'],
  },
  conformIdTokenClaims: idTokenClaims !== 'id_token',
  extraParams: ['vtr', 'asserted_login_identity'],
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
  async findAccount(ctx, id) {
    const account = accounts[id];
    if (!account) return undefined;
    return { accountId: id, claims: async () => ({ ...account, sub: id }) };
  },
};

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function interactionRoutes(provider) {
  return async (ctx, next) => {
    const match = /^\/interaction\/([^/]+)(?:\/(login|confirm|abort))?$/.exec(ctx.path);
    if (!match) return next();
    const [, uid, action] = match;
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== uid) ctx.throw(400, 'interaction id does not match the cookie');
    const { prompt, params, session, grantId } = details;

    if (!action) {
      if (ctx.method !== 'GET') ctx.throw(405);
      ctx.body = { uid, prompt: prompt.name, params };
      return undefined;
    }
    if (ctx.method !== 'POST') ctx.throw(405);

    let result;
    if (action === 'abort') {
      result = { error: 'access_denied', error_description: 'End-User aborted interaction' };
    } else if (action === 'login') {
      if (prompt.name !== 'login') ctx.throw(400, `expected prompt ${prompt.name}, not login`);
      const login = (await readForm(ctx.req)).get('login');
      if (!login || !Object.hasOwn(accounts, login)) ctx.throw(400, 'unknown test account');
      result = { login: { accountId: login } };
    } else {
      if (prompt.name !== 'consent') ctx.throw(400, `expected prompt ${prompt.name}, not consent`);
      const grant = grantId
        ? await provider.Grant.find(grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = prompt.details;
      if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
      if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      result = { consent: { grantId: await grant.save() } };
    }
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, {
      mergeWithLastSubmission: action === 'confirm',
    });
    ctx.status = 303;
    ctx.redirect(returnTo);
    return undefined;
  };
}

const server = http.createServer();
server.on('error', (error) => {
  console.error(`provider.mjs: cannot listen on 127.0.0.1:${port}: ${error.message}`);
  process.exit(1);
});
server.listen(port, '127.0.0.1', () => {
  const actual = server.address().port;
  const provider = new Provider(`http://127.0.0.1:${actual}`, configuration);
  provider.use(interactionRoutes(provider));
  server.on('request', provider.callback());
  console.log(`ready ${actual}`);
});
