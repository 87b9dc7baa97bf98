// The server as Claude Desktop, VS Code, Cursor and the MCP Inspector see it: the official
// TypeScript SDK client over stdio. Driven by the pytest tests (and bench/), it prints one JSON
// document on stdout.
//
//   node client.mjs list              tools/list: token counts (cl100k) and strict-ajv schema problems
//   node client.mjs calls PLAN.json   list tools, then run the plan's calls in order, one result each
//
// The server is `$MLOPS_PYTHON -m mcp_server` (default python3) with this process's environment.
import { readFileSync } from "node:fs";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { getEncoding } from "js-tiktoken";
import Ajv2020 from "ajv/dist/2020.js";

const encoding = getEncoding("cl100k_base");
const tokens = (value) => encoding.encode(typeof value === "string" ? value : JSON.stringify(value)).length;

async function connect() {
  const transport = new StdioClientTransport({
    command: process.env.MLOPS_PYTHON || "python3",
    args: ["-m", "mcp_server"],
    env: { ...process.env },
    stderr: "inherit",
  });
  const client = new Client({ name: "ts-sdk-test", version: "1.0.0" });
  await client.connect(transport);
  return client;
}

// JSON Schema 2020-12 (what pydantic writes, the MCP default). Strict mode refuses unknown
// keywords (e.g. OpenAPI's `discriminator`, pydantic's `gt`) and
// other schema mistakes that the SDK's lenient default would let through.
function strictProblems(tools) {
  const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true });
  const problems = [];
  for (const tool of tools) {
    for (const [part, schema] of [["inputSchema", tool.inputSchema], ["outputSchema", tool.outputSchema]]) {
      if (!schema) continue;
      try {
        ajv.compile(schema);
      } catch (error) {
        problems.push(`${tool.name}.${part}: ${error.message}`);
      }
    }
  }
  return problems;
}

async function list() {
  const client = await connect();
  try {
    const result = await client.listTools();
    const perTool = Object.fromEntries(result.tools.map((tool) => [tool.name, tokens(tool)]));
    return {
      tools: result.tools.length,
      characters: JSON.stringify(result).length,
      tokens: tokens(result),
      per_tool: perTool,
      strict_problems: strictProblems(result.tools),
    };
  } finally {
    await client.close();
  }
}

function withoutImageData(result) {
  const content = result.content.map((c) => (c.type === "image" ? { ...c, data: `<${c.data.length} base64 chars>` } : c));
  return { ...result, content };
}

async function calls(planPath) {
  const plan = JSON.parse(readFileSync(planPath, "utf8"));
  const client = await connect();
  const results = [];
  try {
    await client.listTools(); // caches the output-schema validators, as every real client does
    for (const call of plan.calls) {
      try {
        const result = await client.callTool({ name: call.name, arguments: call.arguments });
        const text = result.content.filter((c) => c.type === "text").map((c) => c.text).join("\n");
        results.push({
          name: call.name,
          isError: result.isError === true,
          text,
          textTokens: tokens(text), // what a model reads of the result
          structuredContent: result.structuredContent ?? null,
          meta: result._meta ?? null,
          contentTypes: result.content.map((c) => c.type),
          tokens: tokens(withoutImageData(result)), // the whole result, images aside (not text to a model)
          thrown: null,
        });
      } catch (error) {
        // What a user of the SDK would see instead of the tool's message.
        results.push({ name: call.name, thrown: String(error?.message ?? error) });
      }
    }
  } finally {
    await client.close();
  }
  return { results };
}

const [command, argument] = process.argv.slice(2);
const output = command === "list" ? await list() : command === "calls" ? await calls(argument) : null;
if (output === null) {
  console.error("usage: node client.mjs list | calls PLAN.json");
  process.exit(2);
}
process.stdout.write(JSON.stringify(output) + "\n");
