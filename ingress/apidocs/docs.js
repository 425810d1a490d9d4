// The API reference, rendered in the browser from the ingress's own OpenAPI document
// (/api/openapi.json): nothing fetched from anywhere else.
const main = document.getElementById("main");
const nav = document.getElementById("nav");

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

// `code` spans in the document's Markdown-ish descriptions; everything else as text.
function prose(text) {
  const p = el("p");
  String(text || "").split(/(`[^`]+`)/).forEach((part) => {
    p.append(part.startsWith("`") && part.endsWith("`") ? el("code", {}, part.slice(1, -1)) : part);
  });
  return p;
}

function resolve(doc, node) {
  while (node && node.$ref) {
    node = node.$ref.replace(/^#\//, "").split("/")
      .reduce((at, key) => at[key.replace(/~1/g, "/").replace(/~0/g, "~")], doc);
  }
  return node;
}

function schemaName(node) {
  if (!node) return "";
  if (node.$ref) return node.$ref.split("/").pop();
  if (node.oneOf) return node.oneOf.map(schemaName).join(" | ");
  const type = Array.isArray(node.type) ? node.type.join(" | ") : node.type || "";
  return node.enum ? `${type} (${node.enum.join(", ")})` : type;
}

function operation(doc, path, method, op) {
  const id = op.operationId || `${method}-${path}`;
  nav.append(el("a", { href: `#${id}` }, `${method.toUpperCase()} ${path}`));
  const box = el("section", { class: "op", id },
    el("h3", {}, el("span", { class: `method ${method}` }, method), " ", el("code", {}, path)),
    el("p", {}, el("strong", {}, op.summary || "")), prose(op.description));
  const params = op.parameters || [];
  if (params.length) {
    const table = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"),
      el("th", {}, "type"), el("th", {}, "description")));
    for (const raw of params) {
      const p = resolve(doc, raw);
      table.append(el("tr", {}, el("td", {}, el("code", {}, p.name + (p.required ? " *" : ""))),
        el("td", {}, p.in), el("td", {}, schemaName(p.schema)), el("td", {}, prose(p.description))));
    }
    box.append(el("h4", {}, "Parameters"), table);
  }
  const body = op.requestBody && resolve(doc, op.requestBody);
  if (body) {
    const schema = body.content?.["application/json"]?.schema;
    box.append(el("h4", {}, "Body"), el("p", {}, el("code", {}, schemaName(schema))));
  }
  const table = el("table", {}, el("tr", {}, el("th", {}, "status"), el("th", {}, "body"),
    el("th", {}, "meaning")));
  for (const [status, raw] of Object.entries(op.responses || {})) {
    const r = resolve(doc, raw);
    const schema = r.content?.["application/json"]?.schema;
    table.append(el("tr", {}, el("td", {}, status), el("td", {}, el("code", {}, schemaName(schema))),
      el("td", {}, prose(r.description))));
  }
  box.append(el("h4", {}, "Responses"), table);
  const auth = op.security && op.security.length === 0 ? "no key needed"
    : "Authorization: Bearer <API key> (beyond loopback)";
  box.append(el("p", { class: "muted" }, auth));
  return box;
}

async function render() {
  const response = await fetch("/api/openapi.json");
  const doc = await response.json();
  main.replaceChildren(el("h1", {}, doc.info.title), prose(doc.info.description));
  for (const [name, scheme] of Object.entries(doc.components?.securitySchemes || {})) {
    main.append(el("h2", {}, `Authentication (${name})`), prose(scheme.description));
  }
  const tags = doc.tags || [{ name: "" }];
  for (const tag of tags) {
    const ops = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        if ((op.tags || [""])[0] === tag.name) ops.push([path, method, op]);
      }
    }
    if (!ops.length) continue;
    nav.append(el("p", { class: "muted" }, tag.name));
    main.append(el("h2", {}, tag.name), prose(tag.description));
    for (const [path, method, op] of ops) main.append(operation(doc, path, method, op));
  }
  main.append(el("h2", {}, "Schemas"));
  for (const [name, schema] of Object.entries(doc.components?.schemas || {})) {
    main.append(el("h3", { id: `schema-${name}` }, name),
      el("pre", {}, JSON.stringify(schema, null, 2)));
  }
}

render().catch((err) => {
  main.replaceChildren(el("p", {}, `Could not load /api/openapi.json: ${err}`));
});
