// The Ajv half of test_openapi.py: compile every schema of an OpenAPI 3.1 document and validate
// values against schemas named by JSON pointers into it.
//
//   node openapi_check.mjs TOOLS_DIR INPUT.json
//
// TOOLS_DIR is `scripts/node-tools.sh dir` (its node_modules holds ajv and ajv-formats). INPUT is
// {"document": {...}, "checks": [{"id": any, "pointer": "#/components/schemas/Task", "data": any,
// "closed": bool}, ...]}. Prints {"compiled": [pointer, ...], "compile_errors": [{"pointer",
// "error"}], "results": [{"id", "valid", "errors": [text, ...]}]} and exits 0; a check naming a
// schema that does not compile is a result with valid false.
//
// Ajv runs in strict mode with Ajv2020 (JSON Schema 2020-12, the dialect of OpenAPI 3.1), formats
// checked: a keyword it does not know (3.0's `nullable` included), a format it does not know or
// a schema that is not well-formed fails to compile. The document's own keys (openapi, paths, ...)
// and the keywords OpenAPI 3.1 adds to JSON Schema (discriminator, xml, externalDocs, example)
// are known as annotations.
//
// "closed": true validates against a copy of the document in which every object schema that
// lists `properties` and says nothing of others gets `additionalProperties: false`: an answer
// may carry only documented fields. (The document itself leaves objects open, so that clients
// keep working when a field is added; the test holds the server to what the document names.)
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const [toolsDir, inputPath] = process.argv.slice(2);
if (!toolsDir || !inputPath) {
    process.stderr.write("usage: node openapi_check.mjs TOOLS_DIR INPUT.json\n");
    process.exit(2);
}
const require = createRequire(path.join(path.resolve(toolsDir), "node_modules", "noop.js"));
const Ajv2020 = require("ajv/dist/2020").default;
const addFormats = require("ajv-formats").default;

const input = JSON.parse(readFileSync(inputPath, "utf8"));
const doc = input.document;

const OPEN = "https://taskd.invalid/openapi.json";
const CLOSED = "https://taskd.invalid/openapi-closed.json";
const DOCUMENT_KEYS = ["openapi", "info", "jsonSchemaDialect", "servers", "paths", "webhooks",
    "components", "security", "tags"];
const OAS_KEYWORDS = ["discriminator", "xml", "externalDocs", "example"];

function escape(key) {
    return key.replace(/~/g, "~0").replace(/\//g, "~1");
}

// The pointers of every Schema Object: components.schemas.*, and every `schema` of a
// parameter, header or media type (not looking inside schemas themselves).
function schemaPointers(node, pointer, out) {
    if (Array.isArray(node)) {
        node.forEach((v, i) => schemaPointers(v, `${pointer}/${i}`, out));
    } else if (node && typeof node === "object") {
        for (const [key, value] of Object.entries(node)) {
            const p = `${pointer}/${escape(key)}`;
            if (key === "example" || key === "examples") continue;
            if (key === "schema") out.push(p);
            else if (pointer === "#/components" && key === "schemas")
                for (const name of Object.keys(value)) out.push(`${p}/${escape(name)}`);
            else schemaPointers(value, p, out);
        }
    }
    return out;
}

function lookup(pointer, root) {
    let node = root;
    for (const part of pointer.slice(2).split("/")) {
        if (node === undefined) return undefined;
        node = node[part.replace(/~1/g, "/").replace(/~0/g, "~")];
    }
    return node;
}

// additionalProperties: false on every object schema with properties and no word on others.
function close(schema) {
    if (Array.isArray(schema)) {
        schema.forEach(close);
    } else if (schema && typeof schema === "object") {
        const types = [].concat(schema.type ?? []);
        if (schema.properties && types.includes("object") && !("additionalProperties" in schema) &&
            !("unevaluatedProperties" in schema))
            schema.additionalProperties = false;
        for (const [key, value] of Object.entries(schema)) {
            if (key !== "enum" && key !== "const" && key !== "default" && key !== "examples")
                close(value);
        }
    }
}

const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
addFormats(ajv);
ajv.removeKeyword("nullable"); // Ajv knows OpenAPI 3.0's nullable; in 3.1 it is no keyword
ajv.addVocabulary([...DOCUMENT_KEYS, ...OAS_KEYWORDS]);

const pointers = schemaPointers(doc, "#", []);
const closed = structuredClone(doc);
for (const p of pointers) close(lookup(p, closed));
ajv.addSchema(doc, OPEN);
ajv.addSchema(closed, CLOSED);

function message(e) {
    return e instanceof Error ? e.message : String(e);
}

const compiled = [];
const compileErrors = [];
for (const base of [OPEN, CLOSED]) {
    for (const p of pointers) {
        try {
            if (!ajv.getSchema(base + p)) throw new Error("no schema at this pointer");
            if (base === OPEN) compiled.push(p);
        } catch (e) {
            compileErrors.push({ pointer: p, closed: base === CLOSED, error: message(e) });
        }
    }
}

const results = [];
for (const check of input.checks ?? []) {
    const result = { id: check.id, valid: false, errors: [] };
    try {
        const validate = ajv.getSchema((check.closed ? CLOSED : OPEN) + check.pointer);
        if (!validate) throw new Error(`no schema at ${check.pointer}`);
        result.valid = validate(check.data);
        for (const e of validate.errors ?? [])
            result.errors.push(`${e.instancePath || "(root)"} ${e.message} ${JSON.stringify(e.params)}`);
    } catch (e) {
        result.errors.push(message(e));
    }
    results.push(result);
}

process.stdout.write(JSON.stringify({ compiled, compile_errors: compileErrors, results }));
