// An agent on the official TypeScript SDK client (@modelcontextprotocol/client), for the tests.
//
//   node ts_agent.mjs <MCP server URL>
//
// It connects with OAuth (dynamic registration, PKCE, resource), picks the tool that writes an
// entry from tools/list by its input schema and by the scopes its _meta says it needs beyond the
// token (no tool name is known in advance), calls it, and steps up when the server answers 403.
// The browser is $BROWSER (tests/clients/browser.py), which signs in, approves and follows the
// redirect to this script's loopback callback. Prints one JSON object on stdout.
import { spawn } from "node:child_process";
import http from "node:http";
import { Client, StreamableHTTPClientTransport, UnauthorizedError } from "@modelcontextprotocol/client";

const REQUIRED_SCOPES = "io.github.django-mcp-scopes/requiredScopes";
const serverUrl = new URL(process.argv[2]);

const codes = [];
let codeArrived = () => {};
const callback = http.createServer((request, response) => {
  const params = new URL(request.url, "http://127.0.0.1").searchParams;
  codes.push(params);
  response.end("You may close this window.");
  codeArrived();
});
await new Promise((resolve) => callback.listen(0, "127.0.0.1", resolve));
const redirectUrl = `http://127.0.0.1:${callback.address().port}/callback`;

async function nextCallback() {
  while (codes.length === 0) await new Promise((resolve) => (codeArrived = resolve));
  return codes.shift();
}

const authorizations = [];
const provider = {
  stored: {},
  get redirectUrl() {
    return redirectUrl;
  },
  get clientMetadata() {
    return {
      client_name: "TypeScript SDK agent (tests)",
      redirect_uris: [redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  },
  clientInformation() {
    return this.stored.client;
  },
  saveClientInformation(client) {
    this.stored.client = client;
  },
  tokens() {
    return this.stored.tokens;
  },
  saveTokens(tokens) {
    this.stored.tokens = tokens;
  },
  saveCodeVerifier(verifier) {
    this.stored.verifier = verifier;
  },
  codeVerifier() {
    return this.stored.verifier;
  },
  discoveryState() {
    return this.stored.discovery;
  },
  saveDiscoveryState(state) {
    this.stored.discovery = state;
  },
  redirectToAuthorization(url) {
    authorizations.push(url.href);
    spawn(process.env.BROWSER, [url.href], { stdio: "ignore" });
  },
};

// Run fn; when the SDK needs the person at the browser, wait for the callback, finish, run again.
async function authorized(transport, fn) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (!(error instanceof UnauthorizedError) || attempt >= 2) throw error;
      const params = await nextCallback();
      await transport.finishAuth(params.get("code"), params.get("iss") ?? undefined);
    }
  }
}

let transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
let client = new Client({ name: "ts-agent", version: "1.0.0" });
try {
  await client.connect(transport);
} catch (error) {
  if (!(error instanceof UnauthorizedError)) throw error;
  const params = await nextCallback();
  await transport.finishAuth(params.get("code"), params.get("iss") ?? undefined);
  transport = new StreamableHTTPClientTransport(serverUrl, { authProvider: provider });
  client = new Client({ name: "ts-agent", version: "1.0.0" });
  await client.connect(transport);
}

const granted = new Set((provider.stored.tokens.scope ?? "").split(" ").filter(Boolean));
const { tools } = await authorized(transport, () => client.listTools());
const writers = tools.filter((tool) => {
  const required = tool.inputSchema.required ?? [];
  const needs = tool._meta?.[REQUIRED_SCOPES] ?? [];
  return required.includes("title") && required.includes("content") && needs.some((scope) => !granted.has(scope));
});
if (writers.length !== 1) throw new Error(`expected one tool that writes an entry, got ${writers.map((t) => t.name)}`);
const chosen = writers[0];
const result = await authorized(transport, () =>
  client.callTool({ name: chosen.name, arguments: { title: "From TypeScript", content: "Picked from tools/list." } }),
);
console.log(
  JSON.stringify({
    listed: tools.map((tool) => tool.name),
    chosen: chosen.name,
    needs: chosen._meta[REQUIRED_SCOPES],
    firstScope: [...granted].sort().join(" "),
    finalScope: provider.stored.tokens.scope,
    authorizations,
    result: result.structuredContent,
    isError: result.isError ?? false,
  }),
);
await client.close();
callback.close();
